// ffs_frame: encoder and decoder of the ffstream wire format (protocol v2,
// spec in proto/README.md). Every stage calls it on every message it sends
// or receives, so it never allocates and never logs. The decoder treats its
// input as hostile: it uses its own bounded MessagePack reader (never the
// msgpack-c unpacker, which allocates by declared counts) and checks every
// length against the bytes present before it moves past them.
#include "ffs_frame.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "ffs_sink.h"

#include "ffs_math.h" // FFS_VECTOR_LOOP (a macro: nothing of ffs_math is linked)
#include "ffs_rms.h"

// The payload and the ids are little-endian on the wire. On a little-endian
// host (x86-64, aarch64) they are plain memcpy; elsewhere they are swapped
// value by value. Floats must be IEEE 754 binary32 either way.
_Static_assert(sizeof(float) == 4, "ffs_frame needs 4-byte IEEE 754 floats");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define S_HOST_LE 0
#else
#define S_HOST_LE 1
#endif

// Worst-case size of an encoded header with every key and all four arrays:
// fixmap (1) + 20 key strings (100) + v, kind, phase, shard, nshards as uint8
// (10) + seq, ts, work as uint64 (27) + seven uint32 values (35) + damp as
// float32 (5) + four bin32 lengths (20) = 198 bytes.
#define S_HDR_MAX 200

#define S_MAX_ENTRIES 32 // entries allowed in the header map
#define S_MAX_KEY 16     // bytes allowed in a key
#define S_MAX_DEPTH 4    // nesting allowed inside a skipped value
#define S_MAX_SKIP 1024  // objects allowed in all skipped values together

// ---- encoder ----


// Each s_pack_* writes one map entry and returns 0, or -1 when buf is full.
static int s_pack_key(msgpack_packer *pk, const char *key) {
  size_t n = strlen(key);
  if (msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, key, n)) return -1;
  return 0;
}

// msgpack_pack_uint64 picks the shortest form (fixint, uint8 ... uint64).
static int s_pack_uint(msgpack_packer *pk, const char *key, uint64_t v) {
  if (s_pack_key(pk, key) || msgpack_pack_uint64(pk, v)) return -1;
  return 0;
}

static int s_pack_float(msgpack_packer *pk, const char *key, float v) {
  if (s_pack_key(pk, key) || msgpack_pack_float(pk, v)) return -1;
  return 0;
}

static int s_pack_bytes(msgpack_packer *pk, const char *key, const uint8_t *v, size_t n) {
  if (s_pack_key(pk, key) || msgpack_pack_bin(pk, n) || msgpack_pack_bin_body(pk, v, n))
    return -1;
  return 0;
}

// "ids" is written as rows * 4 bytes, each id little-endian.
static int s_pack_ids(msgpack_packer *pk, const uint32_t *ids, uint32_t rows) {
  if (s_pack_key(pk, "ids") || msgpack_pack_bin(pk, (size_t)rows * 4)) return -1;
  for (uint32_t i = 0; i < rows; i++) {
    uint8_t le[4] = {(uint8_t)ids[i], (uint8_t)(ids[i] >> 8), (uint8_t)(ids[i] >> 16),
                     (uint8_t)(ids[i] >> 24)};
    if (msgpack_pack_bin_body(pk, le, 4)) return -1;
  }
  return 0;
}

size_t ffs_frame_encoded_max(uint32_t rows, uint32_t cols) {
  // rows * cols < 2^64 always; the byte count can still overflow size_t
  uint64_t floats = (uint64_t)rows * cols;
  uint64_t fixed = S_HDR_MAX + (uint64_t)rows * 7; // roles + labels + cands + ids
  if (floats > (SIZE_MAX - fixed) / 4) return SIZE_MAX;
  return (size_t)(fixed + floats * 4);
}

size_t ffs_frame_encode(uint8_t *buf, size_t cap, const ffs_frame_hdr_t *hdr,
                        const ffs_frame_rows_t *rows, const float *payload) {
  assert(buf || cap == 0);
  assert(hdr);
  uint64_t floats = (uint64_t)hdr->rows * hdr->cols;
  assert(payload || floats == 0);
  ffs_frame_rows_t none = {0};
  const ffs_frame_rows_t *a = rows && hdr->rows ? rows : &none;

  ffs_sink_t sink = {buf, cap, 0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sink, ffs_sink_write);

  // Keys in a fixed order, "v" first so that a receiver of another version
  // can say so before it reads anything else; absent arrays are omitted.
  int sliced = hdr->nshards > 1;
  size_t n_keys = 10 + 3 * sliced + (hdr->ts != 0) + (hdr->work_ns != 0) + (hdr->damp != 0.0f) +
                  (a->roles != NULL) + (a->labels != NULL) + (a->cands != NULL) +
                  (a->ids != NULL);
  if (msgpack_pack_map(&pk, n_keys) || s_pack_uint(&pk, "v", FFS_PROTO_VERSION) ||
      s_pack_uint(&pk, "kind", hdr->kind) || s_pack_uint(&pk, "phase", hdr->phase) ||
      s_pack_uint(&pk, "seq", hdr->seq) || s_pack_uint(&pk, "epoch", hdr->epoch) ||
      s_pack_uint(&pk, "tick", hdr->tick) || s_pack_uint(&pk, "stage", hdr->stage) ||
      s_pack_uint(&pk, "rows", hdr->rows) || s_pack_uint(&pk, "cols", hdr->cols) ||
      s_pack_uint(&pk, "aux", hdr->aux))
    return 0;
  if (sliced && (s_pack_uint(&pk, "shard", hdr->shard) || s_pack_uint(&pk, "nshards", hdr->nshards) ||
                 s_pack_uint(&pk, "col0", hdr->col0)))
    return 0;
  if (hdr->ts && s_pack_uint(&pk, "ts", hdr->ts)) return 0;
  if (hdr->work_ns && s_pack_uint(&pk, "work", hdr->work_ns)) return 0;
  if (hdr->damp != 0.0f && s_pack_float(&pk, "damp", hdr->damp)) return 0;
  if (a->roles && s_pack_bytes(&pk, "roles", a->roles, hdr->rows)) return 0;
  if (a->labels && s_pack_bytes(&pk, "labels", a->labels, hdr->rows)) return 0;
  if (a->cands && s_pack_bytes(&pk, "cands", a->cands, hdr->rows)) return 0;
  if (a->ids && s_pack_ids(&pk, a->ids, hdr->rows)) return 0;

  // the payload follows the map directly
  if (floats > (sink.cap - sink.len) / 4) return 0;
#if S_HOST_LE
  if (floats) memcpy(sink.buf + sink.len, payload, (size_t)floats * 4);
#else
  for (uint64_t i = 0; i < floats; i++) {
    uint32_t u;
    memcpy(&u, &payload[i], 4);
    uint8_t *d = sink.buf + sink.len + i * 4;
    d[0] = (uint8_t)u;
    d[1] = (uint8_t)(u >> 8);
    d[2] = (uint8_t)(u >> 16);
    d[3] = (uint8_t)(u >> 24);
  }
#endif
  return sink.len + (size_t)floats * 4;
}

// ---- bounded MessagePack reader ----

// A cursor over buf[0..len). Every read checks the remaining bytes first.
typedef struct {
  const uint8_t *p;
  size_t left;   // bytes remaining after p
  int skipped;   // objects consumed by s_skip so far (bounded by S_MAX_SKIP)
  char *err;     // NULL or the caller's error buffer
  size_t errlen;
} s_reader_t;

__attribute__((format(printf, 2, 3))) static int s_fail(s_reader_t *r, const char *fmt, ...) {
  if (r->err && r->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

// Reads an n-byte big-endian unsigned integer (n <= 8).
static int s_read_be(s_reader_t *r, size_t n, uint64_t *v, const char *what) {
  *v = 0;
  if (r->left < n)
    return s_fail(r, "header truncated: %s needs %zu bytes, %zu left", what, n, r->left);
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) x = x << 8 | r->p[i];
  r->p += n;
  r->left -= n;
  *v = x;
  return 0;
}

static int s_read_byte(s_reader_t *r, uint8_t *b, const char *what) {
  uint64_t v = 0;
  if (s_read_be(r, 1, &v, what)) return -1;
  *b = (uint8_t)v;
  return 0;
}

// Moves past the n-byte body of key's value (a what), after checking that
// the bytes are there.
static int s_advance(s_reader_t *r, uint64_t n, const char *key, const char *what) {
  if (n > r->left)
    return s_fail(r, "key \"%s\": %s declares %llu bytes, only %zu left in the message", key,
                  what, (unsigned long long)n, r->left);
  r->p += n;
  r->left -= (size_t)n;
  return 0;
}

// A short name for a MessagePack type byte, for error messages.
static const char *s_type_name(uint8_t b) {
  if (b <= 0x7f) return "positive fixint";
  if (b <= 0x8f) return "fixmap";
  if (b <= 0x9f) return "fixarray";
  if (b <= 0xbf) return "fixstr";
  if (b >= 0xe0) return "negative fixint";
  switch (b) {
  case 0xc0: return "nil";
  case 0xc2: case 0xc3: return "bool";
  case 0xc4: case 0xc5: case 0xc6: return "bin";
  case 0xc7: case 0xc8: case 0xc9: case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
    return "ext";
  case 0xca: case 0xcb: return "float";
  case 0xcc: case 0xcd: case 0xce: case 0xcf: return "uint";
  case 0xd0: case 0xd1: case 0xd2: case 0xd3: return "int";
  case 0xd9: case 0xda: case 0xdb: return "str";
  case 0xdc: case 0xdd: return "array";
  case 0xde: case 0xdf: return "map";
  default: return "never-used byte 0xc1";
  }
}

// Skips one object of any type we tolerate in an unknown key's value.
// depth counts the containers around it; S_MAX_DEPTH bounds the recursion.
static int s_skip(s_reader_t *r, int depth, const char *key) {
  if (++r->skipped > S_MAX_SKIP)
    return s_fail(r, "value of unknown key \"%s\" holds more than %d objects", key, S_MAX_SKIP);
  uint8_t b = 0;
  uint64_t n = 0;
  if (s_read_byte(r, &b, "a value")) return -1;
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return 0; // no body
  if (b >= 0xa0 && b <= 0xbf) return s_advance(r, b & 0x1f, key, "str");
  int is_map = 0;
  switch (b) {
  case 0xcc: case 0xd0: return s_advance(r, 1, key, "int");
  case 0xcd: case 0xd1: return s_advance(r, 2, key, "int");
  case 0xce: case 0xd2: case 0xca: return s_advance(r, 4, key, "number");
  case 0xcf: case 0xd3: case 0xcb: return s_advance(r, 8, key, "number");
  case 0xc4: case 0xd9: // bin8, str8
    return s_read_be(r, 1, &n, "a length") ? -1 : s_advance(r, n, key, s_type_name(b));
  case 0xc5: case 0xda: // bin16, str16
    return s_read_be(r, 2, &n, "a length") ? -1 : s_advance(r, n, key, s_type_name(b));
  case 0xc6: case 0xdb: // bin32, str32
    return s_read_be(r, 4, &n, "a length") ? -1 : s_advance(r, n, key, s_type_name(b));
  case 0xdc: if (s_read_be(r, 2, &n, "an array length")) return -1; break;
  case 0xdd: if (s_read_be(r, 4, &n, "an array length")) return -1; break;
  case 0xde: if (s_read_be(r, 2, &n, "a map length")) return -1; is_map = 1; break;
  case 0xdf: if (s_read_be(r, 4, &n, "a map length")) return -1; is_map = 1; break;
  default:
    if (b >= 0x80 && b <= 0x8f) {
      n = b & 0x0f;
      is_map = 1;
    } else if (b >= 0x90 && b <= 0x9f) {
      n = b & 0x0f;
    } else {
      return s_fail(r, "value of unknown key \"%s\": type %s (0x%02x) is not allowed", key,
                    s_type_name(b), b);
    }
  }
  // A container. Recursion is bounded by the depth limit; and since every
  // element takes at least one byte, a count larger than the bytes left is a
  // lie: reject it before looping over it.
  if (depth >= S_MAX_DEPTH)
    return s_fail(r, "value of unknown key \"%s\" nests deeper than %d containers", key,
                  S_MAX_DEPTH);
  uint64_t objects = is_map ? n * 2 : n; // n < 2^32, no overflow
  if (objects > r->left)
    return s_fail(r, "value of unknown key \"%s\": %s of %llu entries in %zu bytes", key,
                  is_map ? "map" : "array", (unsigned long long)n, r->left);
  for (uint64_t i = 0; i < objects; i++)
    if (s_skip(r, depth + 1, key)) return -1;
  return 0;
}

// Reads a key: a str (fixstr or str8) of at most S_MAX_KEY bytes, copied
// into key[] and NUL-terminated.
static int s_read_key(s_reader_t *r, char key[S_MAX_KEY + 1], uint32_t index) {
  uint8_t b = 0;
  uint64_t n = 0;
  if (s_read_byte(r, &b, "a key")) return -1;
  if (b >= 0xa0 && b <= 0xbf) {
    n = b & 0x1f;
  } else if (b == 0xd9) {
    if (s_read_be(r, 1, &n, "a key length")) return -1;
  } else {
    return s_fail(r, "header entry %u: key has type %s (0x%02x), expected a str", index,
                  s_type_name(b), b);
  }
  if (n > S_MAX_KEY)
    return s_fail(r, "header entry %u: key of %llu bytes, at most %d allowed", index,
                  (unsigned long long)n, S_MAX_KEY);
  if (n > r->left)
    return s_fail(r, "header truncated: key of %llu bytes, %zu left", (unsigned long long)n,
                  r->left);
  memcpy(key, r->p, (size_t)n);
  key[n] = 0;
  r->p += n;
  r->left -= (size_t)n;
  return 0;
}

// Reads an unsigned int value (positive fixint, uint8/16/32/64) of key.
static int s_read_uint(s_reader_t *r, uint64_t *v, const char *key) {
  uint8_t b = 0;
  if (s_read_byte(r, &b, "a value")) return -1;
  if (b <= 0x7f) {
    *v = b;
    return 0;
  }
  switch (b) {
  case 0xcc: return s_read_be(r, 1, v, key);
  case 0xcd: return s_read_be(r, 2, v, key);
  case 0xce: return s_read_be(r, 4, v, key);
  case 0xcf: return s_read_be(r, 8, v, key);
  default:
    return s_fail(r, "key \"%s\": value has type %s (0x%02x), expected an unsigned int", key,
                  s_type_name(b), b);
  }
}

// Reads a number of key: float32, float64 or an unsigned int (a sender may
// write 0 or 1 as an int). Only finite values are taken.
static int s_read_num(s_reader_t *r, double *v, const char *key) {
  uint8_t b = 0;
  if (r->left < 1) return s_read_byte(r, &b, "a value"); // fails: the header is cut short
  b = r->p[0]; // a look at the type byte: s_read_uint reads it again
  if (b == 0xca || b == 0xcb) {
    uint64_t u = 0;
    if (s_read_byte(r, &b, "a value") || s_read_be(r, b == 0xca ? 4 : 8, &u, key)) return -1;
    if (b == 0xca) {
      uint32_t u32 = (uint32_t)u;
      float f;
      memcpy(&f, &u32, 4);
      *v = f;
    } else {
      memcpy(v, &u, 8);
    }
  } else {
    uint64_t u = 0;
    if (b > 0x7f && (b < 0xcc || b > 0xcf))
      return s_fail(r, "key \"%s\": value has type %s (0x%02x), expected a number", key,
                    s_type_name(b), b);
    if (s_read_uint(r, &u, key)) return -1;
    *v = (double)u;
  }
  if (!isfinite(*v)) return s_fail(r, "key \"%s\" is not a finite number", key);
  return 0;
}

// Reads a bin value (bin8/16/32) of key: a pointer into the buffer + length.
static int s_read_bin(s_reader_t *r, const uint8_t **v, uint64_t *n, const char *key) {
  uint8_t b = 0;
  if (s_read_byte(r, &b, "a value")) return -1;
  if (b < 0xc4 || b > 0xc6)
    return s_fail(r, "key \"%s\": value has type %s (0x%02x), expected a bin", key, s_type_name(b),
                  b);
  if (s_read_be(r, (size_t)1 << (b - 0xc4), n, key)) return -1; // 1, 2 or 4 length bytes
  *v = r->p;
  return s_advance(r, *n, key, "bin");
}

// ---- decoder ----

// The keys of protocol version 2, in the order the encoder writes them.
enum {
  S_V, S_KIND, S_PHASE, S_SEQ, S_EPOCH, S_TICK, S_STAGE, S_ROWS, S_COLS, S_AUX,
  S_SHARD, S_NSHARDS, S_COL0, S_TS, S_WORK, S_DAMP, S_ROLES, S_LABELS, S_CANDS, S_IDS, S_NKEYS
};
static const char *const s_keys[S_NKEYS] = {"v",     "kind",   "phase",   "seq",   "epoch",
                                            "tick",  "stage",  "rows",    "cols",  "aux",
                                            "shard", "nshards", "col0",   "ts",    "work",
                                            "damp",  "roles",  "labels",  "cands", "ids"};

static int s_key_index(const char *key) {
  for (int i = 0; i < S_NKEYS; i++)
    if (!strcmp(key, s_keys[i])) return i;
  return -1;
}

// Largest value each scalar key may carry before the semantic checks.
static uint64_t s_key_max(int k) {
  switch (k) {
  case S_SEQ: case S_TS: case S_WORK: return UINT64_MAX;
  case S_KIND: case S_PHASE: case S_SHARD: case S_NSHARDS:
    return UINT8_MAX; // ranges checked later
  default: return UINT32_MAX;
  }
}

// Checks a roles array (n bytes for rows rows): each a role, never less than
// the row's before (the runs come in role order), and counts each role's rows.
static int s_count_roles(s_reader_t *r, uint32_t n_role[FFS_N_ROW_ROLES], const uint8_t *roles,
                         uint64_t n, uint64_t rows) {
  if (n != rows)
    return s_fail(r, "roles holds %llu bytes, expected rows = %llu", (unsigned long long)n,
                  (unsigned long long)rows);
  for (uint64_t i = 0; i < n; i++) {
    if (roles[i] >= FFS_N_ROW_ROLES)
      return s_fail(r, "roles: row %llu has role %u, expected 0..3 (positive, negative, neutral, "
                    "candidate)", (unsigned long long)i, roles[i]);
    if (i && roles[i] < roles[i - 1])
      return s_fail(r, "roles: row %llu is %s after a %s row; rows run positive, negative, "
                    "neutral, candidate", (unsigned long long)i, ffs_frame_role_str(roles[i]),
                    ffs_frame_role_str(roles[i - 1]));
    n_role[roles[i]]++;
  }
  return 0;
}

int ffs_frame_decode(ffs_frame_t *out, const uint8_t *buf, size_t len,
                     const ffs_frame_limits_t *lim, char *err, size_t errlen) {
  assert(out);
  assert(buf || len == 0);
  memset(out, 0, sizeof *out);
  if (err && errlen) err[0] = 0;
  s_reader_t r = {buf, len, 0, err, errlen};

  // the header map
  uint8_t b = 0;
  uint64_t n_entries = 0;
  if (len == 0) return s_fail(&r, "empty message, expected a MessagePack map header");
  if (s_read_byte(&r, &b, "the header")) return -1;
  if (b >= 0x80 && b <= 0x8f) {
    n_entries = b & 0x0f;
  } else if (b == 0xde || b == 0xdf) {
    if (s_read_be(&r, b == 0xde ? 2 : 4, &n_entries, "the map length")) return -1;
  } else {
    return s_fail(&r, "header has type %s (0x%02x), expected a MessagePack map", s_type_name(b), b);
  }
  if (n_entries > S_MAX_ENTRIES)
    return s_fail(&r, "header map has %llu entries, at most %d allowed",
                  (unsigned long long)n_entries, S_MAX_ENTRIES);

  uint64_t val[S_NKEYS] = {0};  // scalar values, by key index
  double damp = 0.0;            // the one float key
  const uint8_t *arr[S_NKEYS] = {0}; // bin values, by key index
  uint64_t arr_len[S_NKEYS] = {0};
  uint32_t seen = 0; // bit k: key k was present
  for (uint32_t i = 0; i < (uint32_t)n_entries; i++) {
    char key[S_MAX_KEY + 1];
    if (s_read_key(&r, key, i)) return -1;
    int k = s_key_index(key);
    if (k < 0) {
      if (s_skip(&r, 0, key)) return -1;
      continue;
    }
    if (seen & (1u << k)) return s_fail(&r, "duplicate header key \"%s\"", key);
    seen |= 1u << k;
    if (k >= S_ROLES) {
      if (s_read_bin(&r, &arr[k], &arr_len[k], key)) return -1;
      continue;
    }
    if (k == S_DAMP) {
      if (s_read_num(&r, &damp, key)) return -1;
      continue;
    }
    if (s_read_uint(&r, &val[k], key)) return -1;
    if (val[k] > s_key_max(k))
      return s_fail(&r, "key \"%s\" = %llu, at most %llu allowed", key,
                    (unsigned long long)val[k], (unsigned long long)s_key_max(k));
    // "v" comes first from conforming senders: a peer speaking another
    // version is told so before anything else is judged
    if (k == S_V && val[k] != FFS_PROTO_VERSION)
      return s_fail(&r, "protocol version %llu, expected %d", (unsigned long long)val[k],
                    FFS_PROTO_VERSION);
  }

  // required keys and ranges
  static const int required[] = {S_V, S_KIND, S_ROWS, S_COLS};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    if (!(seen & (1u << required[i])))
      return s_fail(&r, "header lacks required key \"%s\"", s_keys[required[i]]);
  uint64_t kind = val[S_KIND], rows = val[S_ROWS], cols = val[S_COLS];
  if (kind < FFS_FRAME_DATA || kind > FFS_FRAME_PARTIAL)
    return s_fail(&r, "kind %llu, expected 1..5 (data, report, feedback, mark, partial)",
                  (unsigned long long)kind);
  uint64_t nshards = val[S_NSHARDS], col0 = val[S_COL0];
  int sliced = nshards > 1;
  if (nshards > FFS_FRAME_MAX_SHARDS)
    return s_fail(&r, "nshards %llu, expected at most %d", (unsigned long long)nshards,
                  FFS_FRAME_MAX_SHARDS);
  if (sliced ? val[S_SHARD] >= nshards : val[S_SHARD] != 0 || col0 != 0)
    return s_fail(&r, "shard %llu, col0 %llu with nshards %llu (expected shard < nshards, or "
                  "shard 0 and col0 0 for a whole frame)", (unsigned long long)val[S_SHARD],
                  (unsigned long long)col0, (unsigned long long)nshards);
  if (val[S_PHASE] > FFS_PHASE_EVAL)
    return s_fail(&r, "phase %llu, expected 0 (train) or 1 (eval)", (unsigned long long)val[S_PHASE]);
  if (kind == FFS_FRAME_MARK && rows != 0)
    return s_fail(&r, "mark frame with %llu rows, expected 0", (unsigned long long)rows);
  if ((seen & (1u << S_DAMP)) && (kind != FFS_FRAME_FEEDBACK || !(damp >= 0.0 && damp <= 1e30)))
    return s_fail(&r, "damp %g on a %s frame (expected a number in [0, 1e30] on a feedback "
                  "frame only)", damp, ffs_frame_kind_str((int)kind));
  if (val[S_AUX] > cols)
    return s_fail(&r, "aux %llu exceeds cols %llu", (unsigned long long)val[S_AUX],
                  (unsigned long long)cols);

  // the receiver's limits (a slice's: its end column col0 + cols)
  uint64_t end = col0 + cols; // both < 2^32
  if (lim && lim->max_rows && rows > lim->max_rows)
    return s_fail(&r, "%s frame with %llu rows, at most %u accepted", ffs_frame_kind_str((int)kind),
                  (unsigned long long)rows, lim->max_rows);
  if (lim && lim->max_cols && end > lim->max_cols)
    return s_fail(&r, "%s frame with %llu cols%s, at most %u accepted",
                  ffs_frame_kind_str((int)kind), (unsigned long long)end,
                  sliced ? " (slice end)" : "", lim->max_cols);
  if (lim && lim->cols && (kind == FFS_FRAME_DATA || kind == FFS_FRAME_FEEDBACK) &&
      (sliced ? end > lim->cols : cols != lim->cols))
    return s_fail(&r, "%s frame with %llu cols%s, expected %s%u", ffs_frame_kind_str((int)kind),
                  (unsigned long long)end, sliced ? " (slice end)" : "", sliced ? "at most " : "",
                  lim->cols);

  // per-row arrays
  if (arr[S_ROLES] && s_count_roles(&r, out->n_role, arr[S_ROLES], arr_len[S_ROLES], rows))
    return -1;
  if (!arr[S_ROLES]) out->n_role[FFS_ROW_NEUTRAL] = (uint32_t)rows;
  if (arr[S_LABELS] && arr_len[S_LABELS] != rows)
    return s_fail(&r, "labels holds %llu bytes, expected rows = %llu",
                  (unsigned long long)arr_len[S_LABELS], (unsigned long long)rows);
  if (arr[S_CANDS] && arr_len[S_CANDS] != rows)
    return s_fail(&r, "cands holds %llu bytes, expected rows = %llu",
                  (unsigned long long)arr_len[S_CANDS], (unsigned long long)rows);
  if (arr[S_IDS] && arr_len[S_IDS] != rows * 4) // rows < 2^32: no overflow
    return s_fail(&r, "ids holds %llu bytes, expected 4 x %llu rows = %llu",
                  (unsigned long long)arr_len[S_IDS], (unsigned long long)rows,
                  (unsigned long long)(rows * 4));

  // the payload: everything after the map, exactly rows * cols floats
  uint64_t floats = rows * cols; // both < 2^32: fits in 64 bits
  if (floats > UINT64_MAX / 4)
    return s_fail(&r, "header declares %llux%llu floats, which overflows a byte count",
                  (unsigned long long)rows, (unsigned long long)cols);
  if ((uint64_t)r.left != floats * 4)
    return s_fail(&r, "payload holds %zu bytes, header declares %llux%llu floats = %llu bytes",
                  r.left, (unsigned long long)rows, (unsigned long long)cols,
                  (unsigned long long)(floats * 4));

  out->h.kind = (uint8_t)kind;
  out->h.phase = (uint8_t)val[S_PHASE];
  out->h.seq = val[S_SEQ];
  out->h.epoch = (uint32_t)val[S_EPOCH];
  out->h.tick = (uint32_t)val[S_TICK];
  out->h.stage = (uint32_t)val[S_STAGE];
  out->h.rows = (uint32_t)rows;
  out->h.cols = (uint32_t)cols;
  out->h.aux = (uint32_t)val[S_AUX];
  out->h.shard = (uint8_t)val[S_SHARD];
  out->h.nshards = (uint8_t)(sliced ? nshards : 0);
  out->h.col0 = (uint32_t)col0;
  out->h.ts = val[S_TS];
  out->h.work_ns = val[S_WORK];
  out->h.damp = (float)damp;
  out->roles = arr[S_ROLES];
  out->labels = arr[S_LABELS];
  out->cands = arr[S_CANDS];
  out->ids = arr[S_IDS];
  out->payload = floats ? r.p : NULL;
  return 0;
}

// ---- readers of a decoded frame ----

#if S_HOST_LE
// The payload sits at any address: this type reads it unaligned (and may
// alias it), so the loops below vectorize as over a plain array.
typedef uint32_t s_uword __attribute__((aligned(1), may_alias));
#define S_NONFINITE(u) (((u) & 0x7f800000u) == 0x7f800000u) // all exponent bits: Inf, NaN

// Copy and test in one pass (ffs_frame.c is built with -O3; FFS_VECTOR_LOOP
// picks AVX-512 where the CPU has it).
FFS_VECTOR_LOOP static int s_copy_finite(float *restrict dst, const uint8_t *restrict src,
                                         size_t n) {
  const s_uword *u = (const s_uword *)src;
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    bad |= S_NONFINITE(u[i]); // a bit test, immune to -ffast-math
    memcpy(&dst[i], &u[i], 4);
  }
  return bad ? -1 : 0;
}

// 1 when none of n values is Inf or NaN.
FFS_VECTOR_LOOP static int s_all_finite(const uint8_t *src, size_t n) {
  const s_uword *u = (const s_uword *)src;
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) bad |= S_NONFINITE(u[i]);
  return !bad;
}

// dst = the rows of src normalized (ffs_rms.h, as ffs_rms_normalize does).
FFS_VECTOR_LOOP static void s_rms_rows(float *dst, const uint8_t *src, int rows, int cols,
                                       float eps) {
  for (int r = 0; r < rows; r++)
    ffs_row_rms(dst + (size_t)r * cols, (const ffs_ufloat *)src + (size_t)r * cols, cols, eps);
}
#endif

int ffs_frame_payload_rms(float *dst, const ffs_frame_t *f, float eps) {
  assert(f);
  int rows = (int)f->h.rows, cols = (int)f->h.cols;
  if (rows == 0 || cols == 0) return 0;
  assert(dst && f->payload);
#if S_HOST_LE
  if (!s_all_finite(f->payload, (size_t)rows * cols)) return -1;
  s_rms_rows(dst, f->payload, rows, cols, eps);
  return 0;
#else
  if (ffs_frame_copy_payload(dst, f) < 0) return -1;
  for (int r = 0; r < rows; r++)
    ffs_row_rms(dst + (size_t)r * cols, dst + (size_t)r * cols, cols, eps);
  return 0;
#endif
}

int ffs_frame_copy_payload(float *dst, const ffs_frame_t *f) {
  assert(f);
  size_t floats = (size_t)f->h.rows * f->h.cols;
  if (floats == 0) return 0;
  assert(dst && f->payload);
#if S_HOST_LE
  return s_copy_finite(dst, f->payload, floats);
#else
  int bad = 0;
  for (size_t i = 0; i < floats; i++) {
    const uint8_t *s = f->payload + i * 4;
    uint32_t u = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
    bad |= (u & 0x7f800000u) == 0x7f800000u;
    memcpy(&dst[i], &u, 4);
  }
  return bad ? -1 : 0;
#endif
}

uint32_t ffs_frame_id(const ffs_frame_t *f, uint32_t i) {
  assert(f);
  if (!f->ids) return 0;
  assert(i < f->h.rows);
  const uint8_t *s = f->ids + (size_t)i * 4;
  return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

ffs_frame_rows_t ffs_frame_rows_of(const ffs_frame_t *f, uint32_t *ids) {
  assert(f && ids);
  ffs_frame_rows_t r = {f->roles, f->labels, f->cands, NULL};
  if (f->ids && f->h.rows) {
    for (uint32_t i = 0; i < f->h.rows; i++) ids[i] = ffs_frame_id(f, i);
    r.ids = ids;
  }
  return r;
}

const char *ffs_frame_kind_str(int kind) {
  switch (kind) {
  case FFS_FRAME_DATA: return "data";
  case FFS_FRAME_REPORT: return "report";
  case FFS_FRAME_FEEDBACK: return "feedback";
  case FFS_FRAME_MARK: return "mark";
  case FFS_FRAME_PARTIAL: return "partial";
  default: return "?";
  }
}

const char *ffs_frame_role_str(int role) {
  switch (role) {
  case FFS_ROW_POSITIVE: return "positive";
  case FFS_ROW_NEGATIVE: return "negative";
  case FFS_ROW_NEUTRAL: return "neutral";
  case FFS_ROW_CANDIDATE: return "candidate";
  default: return "?";
  }
}

uint32_t ffs_frame_role_start(const ffs_frame_t *f, int role) {
  uint32_t start = 0;
  for (int k = 0; k < role && k < FFS_N_ROW_ROLES; k++) start += f->n_role[k];
  return start;
}
