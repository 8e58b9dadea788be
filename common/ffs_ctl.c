// ffs_ctl: encoder and decoder of the control messages (the table of types
// and keys is FFS_CTL_KEYS in ffs_ctl.h). The launcher and every stage call
// it on each control message. The decoder uses its own bounded MessagePack
// reader (never msgpack-c's unpacker, which allocates by declared counts)
// and must never crash on what a socket hands it: it refuses with a reason.
#include "ffs_ctl.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "ffs_sink.h"

#define S_MAX_ENTRIES 64 // entries allowed in a message's map
#define S_MAX_KEY 32     // bytes allowed in a key
#define S_MAX_DEPTH 4    // nesting allowed inside a skipped value
#define S_MAX_SKIP 1024  // objects allowed in all skipped values together

// ---- the table ----

typedef struct {
  ffs_ctl_type_t type;
  const char *key;
  ffs_ctl_kind_t kind;
  size_t offset, size; // of the field in ffs_ctl_msg_t
  const char *round;   // F64 / LAYERS: printf format the value travels rounded to
} s_field_t;

#define S_FIELD(T, u, m, k, r)                                                                 \
  {FFS_CTL_##T, #m, FFS_CTL_##k, offsetof(ffs_ctl_msg_t, u.m), sizeof(((ffs_ctl_msg_t *)0)->u.m), r},
static const s_field_t s_fields[] = {FFS_CTL_KEYS(S_FIELD)};
#undef S_FIELD
#define S_N_FIELDS ((int)(sizeof s_fields / sizeof s_fields[0]))
_Static_assert(sizeof s_fields / sizeof s_fields[0] <= 64, "the decoder's seen-mask is 64 bits");

#define S_NAME(T) #T,
static const char *const s_type_names[FFS_CTL_N_TYPES] = {FFS_CTL_TYPES(S_NAME)};
#undef S_NAME

const char *ffs_ctl_type_str(int type) {
  return type >= 0 && type < FFS_CTL_N_TYPES ? s_type_names[type] : "?";
}

static void *s_at(ffs_ctl_msg_t *m, const s_field_t *f) { return (char *)m + f->offset; }
static const void *s_cat(const ffs_ctl_msg_t *m, const s_field_t *f) {
  return (const char *)m + f->offset;
}

// v as the text protocol carried it: printed with fmt and read back.
static double s_rounded(double v, const char *fmt) {
  if (!fmt) return v;
  char b[64];
  snprintf(b, sizeof b, fmt, v);
  return strtod(b, NULL);
}

// ---- encoder ----


static int s_pack_str(msgpack_packer *pk, const char *s, size_t cap) {
  size_t n = strnlen(s, cap);
  return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int s_pack_value(msgpack_packer *pk, const ffs_ctl_msg_t *m, const s_field_t *f) {
  const void *p = s_cat(m, f);
  switch (f->kind) {
  case FFS_CTL_I32: return msgpack_pack_int64(pk, *(const int32_t *)p);
  case FFS_CTL_U64: return msgpack_pack_uint64(pk, *(const uint64_t *)p);
  case FFS_CTL_F64: return msgpack_pack_double(pk, s_rounded(*(const double *)p, f->round));
  case FFS_CTL_STR: return s_pack_str(pk, p, f->size);
  case FFS_CTL_MODE: return s_pack_str(pk, *(const int32_t *)p ? "eval" : "train", 8);
  case FFS_CTL_LAYERS: {
    int n = m->result.n_layers;
    assert(n >= 0 && n <= FFS_MAX_STAGES);
    if (msgpack_pack_array(pk, (size_t)n)) return -1;
    for (int i = 0; i < n; i++) {
      const ffs_ctl_layer_t *L = &m->result.layers[i];
      if (msgpack_pack_array(pk, 4) || s_pack_str(pk, L->name, sizeof L->name) ||
          msgpack_pack_double(pk, s_rounded(L->energy, f->round)) ||
          msgpack_pack_double(pk, s_rounded(L->softmax, f->round)) ||
          msgpack_pack_double(pk, s_rounded(L->cosine, f->round)))
        return -1;
    }
    return 0;
  }
  }
  return -1;
}

size_t ffs_ctl_encode(uint8_t *buf, size_t cap, const ffs_ctl_msg_t *m) {
  assert(buf && m && m->type >= 0 && m->type < FFS_CTL_N_TYPES);
  ffs_sink_t sink = {buf, cap, 0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sink, ffs_sink_write);
  size_t n = 1;
  for (int i = 0; i < S_N_FIELDS; i++) n += s_fields[i].type == m->type;
  if (msgpack_pack_map(&pk, n) || s_pack_str(&pk, "type", 8) ||
      s_pack_str(&pk, s_type_names[m->type], 16))
    return 0;
  for (int i = 0; i < S_N_FIELDS; i++) {
    const s_field_t *f = &s_fields[i];
    if (f->type != m->type) continue;
    if (s_pack_str(&pk, f->key, S_MAX_KEY) || s_pack_value(&pk, m, f)) return 0;
  }
  return sink.len;
}

// ---- a bounded MessagePack reader ----

typedef struct {
  const uint8_t *p;
  size_t left;  // bytes remaining after p
  int skipped;  // objects consumed by s_skip so far (bounded by S_MAX_SKIP)
  char *why;
  size_t whylen;
} s_reader_t;

// Text that quotes bytes off the wire stays one printable line: every
// control character (a newline could forge a log line) becomes '?'.
static void s_one_line(char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

__attribute__((format(printf, 2, 3))) static int s_fail(s_reader_t *r, const char *fmt, ...) {
  if (r->why && r->whylen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, r->whylen, fmt, ap);
    va_end(ap);
    s_one_line(r->why);
  }
  return -1;
}

// Reads an n-byte big-endian unsigned integer (n <= 8).
static int s_read_be(s_reader_t *r, size_t n, uint64_t *v, const char *what) {
  if (r->left < n) return s_fail(r, "truncated: %s needs %zu bytes, %zu left", what, n, r->left);
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) x = x << 8 | r->p[i];
  r->p += n, r->left -= n;
  *v = x;
  return 0;
}

static int s_read_byte(s_reader_t *r, uint8_t *b, const char *what) {
  uint64_t v = 0;
  if (s_read_be(r, 1, &v, what)) return -1;
  *b = (uint8_t)v;
  return 0;
}

static int s_advance(s_reader_t *r, uint64_t n, const char *what) {
  if (n > r->left)
    return s_fail(r, "truncated: %s declares %llu bytes, %zu left", what, (unsigned long long)n,
                  r->left);
  r->p += n, r->left -= (size_t)n;
  return 0;
}

// Reads a str: *s points into the buffer, *n its length.
static int s_read_str(s_reader_t *r, const char **s, size_t *n, const char *what) {
  uint8_t b = 0;
  uint64_t len = 0;
  if (s_read_byte(r, &b, what)) return -1;
  if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f;
  else if (b >= 0xd9 && b <= 0xdb) {
    if (s_read_be(r, (size_t)1 << (b - 0xd9), &len, what)) return -1; // 1, 2 or 4 bytes
  } else
    return s_fail(r, "%s: type byte 0x%02x, expected a str", what, b);
  *s = (const char *)r->p;
  *n = (size_t)len;
  return s_advance(r, len, what);
}

// Reads any MessagePack int; *neg says it is below zero (then *v holds it as int64).
static int s_read_int(s_reader_t *r, uint64_t *v, int *neg, const char *what) {
  uint8_t b = 0;
  uint64_t x = 0;
  *neg = 0;
  if (s_read_byte(r, &b, what)) return -1;
  if (b <= 0x7f) x = b;
  else if (b >= 0xe0) x = (uint64_t)(int64_t)(int8_t)b, *neg = 1;
  else if (b >= 0xcc && b <= 0xcf) {
    if (s_read_be(r, (size_t)1 << (b - 0xcc), &x, what)) return -1;
  } else if (b >= 0xd0 && b <= 0xd3) {
    size_t n = (size_t)1 << (b - 0xd0);
    if (s_read_be(r, n, &x, what)) return -1;
    if (n < 8 && (x >> (8 * n - 1)) & 1) x |= ~0ULL << (8 * n); // sign-extend
    *neg = (int64_t)x < 0;
  } else
    return s_fail(r, "%s: type byte 0x%02x, expected an int", what, b);
  *v = x;
  return 0;
}

static int s_read_f64(s_reader_t *r, double *v, const char *what) {
  uint8_t b = 0;
  uint64_t x = 0;
  if (s_read_byte(r, &b, what)) return -1;
  if (b == 0xca) {
    if (s_read_be(r, 4, &x, what)) return -1;
    uint32_t u = (uint32_t)x;
    float f;
    memcpy(&f, &u, 4);
    *v = f;
    return 0;
  }
  if (b != 0xcb) return s_fail(r, "%s: type byte 0x%02x, expected a float", what, b);
  if (s_read_be(r, 8, &x, what)) return -1;
  memcpy(v, &x, 8);
  return 0;
}

// Reads an array (is_map 0) or map header: its count.
static int s_read_count(s_reader_t *r, int is_map, uint64_t *n, const char *what) {
  uint8_t b = 0;
  if (s_read_byte(r, &b, what)) return -1;
  uint8_t fix = is_map ? 0x80 : 0x90, c16 = is_map ? 0xde : 0xdc;
  if ((b & 0xf0) == fix) {
    *n = b & 0x0f;
    return 0;
  }
  if (b == c16 || b == c16 + 1) return s_read_be(r, b == c16 ? 2 : 4, n, what);
  return s_fail(r, "%s: type byte 0x%02x, expected %s", what, b, is_map ? "a map" : "an array");
}

// Skips one object (an unknown key's value); bounded in depth and count.
static int s_skip(s_reader_t *r, int depth, const char *key) {
  if (++r->skipped > S_MAX_SKIP)
    return s_fail(r, "value of unknown key '%s' holds more than %d objects", key, S_MAX_SKIP);
  uint8_t b = 0;
  uint64_t n = 0;
  if (!r->left) return s_fail(r, "truncated: value of key '%s' missing", key);
  b = r->p[0];
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return s_advance(r, 1, key);
  if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) {
    const char *s;
    size_t len;
    return s_read_str(r, &s, &len, key);
  }
  if ((b >= 0xcc && b <= 0xd3) || b == 0xca || b == 0xcb) {
    static const uint8_t body[] = {1, 2, 4, 8, 1, 2, 4, 8}; // 0xcc .. 0xd3
    return s_advance(r, 1 + (b == 0xca ? 4 : b == 0xcb ? 8 : body[b - 0xcc]), key);
  }
  if (b >= 0xc4 && b <= 0xc6) { // bin8/16/32
    r->p++, r->left--;
    return s_read_be(r, (size_t)1 << (b - 0xc4), &n, key) ? -1 : s_advance(r, n, key);
  }
  int is_map = (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
  if (!is_map && (b & 0xf0) != 0x90 && b != 0xdc && b != 0xdd)
    return s_fail(r, "value of unknown key '%s': type byte 0x%02x is not allowed", key, b);
  if (s_read_count(r, is_map, &n, key)) return -1;
  if (depth >= S_MAX_DEPTH)
    return s_fail(r, "value of unknown key '%s' nests deeper than %d", key, S_MAX_DEPTH);
  uint64_t objects = is_map ? 2 * n : n; // each takes a byte at least: a larger count lies
  if (objects > r->left)
    return s_fail(r, "value of unknown key '%s': %llu entries in %zu bytes", key,
                  (unsigned long long)n, r->left);
  for (uint64_t i = 0; i < objects; i++)
    if (s_skip(r, depth + 1, key)) return -1;
  return 0;
}

// ---- decoder ----

static int s_copy_str(s_reader_t *r, char *dst, size_t cap, const char *what) {
  const char *s;
  size_t n;
  if (s_read_str(r, &s, &n, what)) return -1;
  if (n >= cap) return s_fail(r, "%s: a str of %zu bytes, at most %zu allowed", what, n, cap - 1);
  if (memchr(s, 0, n)) return s_fail(r, "%s: a str with a NUL byte", what);
  memcpy(dst, s, n);
  dst[n] = 0;
  return 0;
}

static int s_read_layers(s_reader_t *r, ffs_ctl_msg_t *m) {
  uint64_t n = 0, k = 0;
  if (s_read_count(r, 0, &n, "layers")) return -1;
  if (n > FFS_MAX_STAGES)
    return s_fail(r, "layers: %llu entries, at most %d allowed", (unsigned long long)n,
                  FFS_MAX_STAGES);
  for (uint64_t i = 0; i < n; i++) {
    ffs_ctl_layer_t *L = &m->result.layers[i];
    if (s_read_count(r, 0, &k, "layers entry")) return -1;
    if (k != 3 && k != 4)
      return s_fail(r, "layers entry %llu: %llu items, expected [name, energy, softmax] or "
                    "[name, energy, softmax, cosine]", (unsigned long long)i,
                    (unsigned long long)k);
    if (s_copy_str(r, L->name, sizeof L->name, "layers name") ||
        s_read_f64(r, &L->energy, "layers energy") || s_read_f64(r, &L->softmax, "layers softmax"))
      return -1;
    L->cosine = -2.0;
    if (k == 4 && s_read_f64(r, &L->cosine, "layers cosine")) return -1;
  }
  m->result.n_layers = (int32_t)n;
  return 0;
}

static int s_read_value(s_reader_t *r, ffs_ctl_msg_t *m, const s_field_t *f) {
  void *p = s_at(m, f);
  uint64_t v = 0;
  int neg = 0;
  switch (f->kind) {
  case FFS_CTL_I32:
    if (s_read_int(r, &v, &neg, f->key)) return -1;
    if (neg ? (int64_t)v < INT32_MIN : v > INT32_MAX)
      return s_fail(r, "key '%s': %s%llu does not fit 32 bits", f->key, neg ? "-" : "",
                    neg ? 0ULL - (unsigned long long)v : (unsigned long long)v);
    *(int32_t *)p = (int32_t)(int64_t)v;
    return 0;
  case FFS_CTL_U64:
    if (s_read_int(r, &v, &neg, f->key)) return -1;
    if (neg) return s_fail(r, "key '%s': a negative count", f->key);
    *(uint64_t *)p = v;
    return 0;
  case FFS_CTL_F64: return s_read_f64(r, p, f->key);
  case FFS_CTL_STR: return s_copy_str(r, p, f->size, f->key);
  case FFS_CTL_MODE: {
    char mode[8];
    if (s_copy_str(r, mode, sizeof mode, f->key)) return -1;
    if (strcmp(mode, "train") && strcmp(mode, "eval"))
      return s_fail(r, "key '%s': '%s', expected train or eval", f->key, mode);
    *(int32_t *)p = !strcmp(mode, "eval");
    return 0;
  }
  case FFS_CTL_LAYERS: return s_read_layers(r, m);
  }
  return -1;
}

static int s_find(ffs_ctl_type_t type, const char *key) {
  for (int i = 0; i < S_N_FIELDS; i++)
    if (s_fields[i].type == type && !strcmp(s_fields[i].key, key)) return i;
  return -1;
}

int ffs_ctl_decode(ffs_ctl_msg_t *out, const uint8_t *buf, size_t len, char *why, size_t whylen) {
  assert(out && (buf || !len));
  s_reader_t r = {buf, len, 0, why, whylen};
  memset(out, 0, sizeof *out);
  uint64_t n = 0;
  if (s_read_count(&r, 1, &n, "the message")) return -1;
  if (n < 1 || n > S_MAX_ENTRIES)
    return s_fail(&r, "a map of %llu entries, expected 1 to %d", (unsigned long long)n,
                  S_MAX_ENTRIES);
  char key[S_MAX_KEY + 1], name[16];
  if (s_copy_str(&r, key, sizeof key, "the first key")) return -1;
  if (strcmp(key, "type")) return s_fail(&r, "first key '%s', expected 'type'", key);
  if (s_copy_str(&r, name, sizeof name, "type")) return -1;
  int type = 0;
  while (type < FFS_CTL_N_TYPES && strcmp(s_type_names[type], name)) type++;
  if (type == FFS_CTL_N_TYPES) return s_fail(&r, "unknown message type '%s'", name);
  out->type = (ffs_ctl_type_t)type;
  uint64_t seen = 0;
  for (uint64_t e = 1; e < n; e++) {
    if (s_copy_str(&r, key, sizeof key, "a key")) return -1;
    int i = s_find(out->type, key);
    if (i < 0) {
      if (s_skip(&r, 0, key)) return -1; // unknown: a newer peer's, skipped
      continue;
    }
    if (seen >> i & 1) return s_fail(&r, "%s: key '%s' twice", name, key);
    seen |= 1ULL << i;
    if (s_read_value(&r, out, &s_fields[i])) return -1;
  }
  if (r.left) return s_fail(&r, "%zu bytes after the message", r.left);
  for (int i = 0; i < S_N_FIELDS; i++)
    if (s_fields[i].type == out->type && !(seen >> i & 1))
      return s_fail(&r, "%s: key '%s' missing", name, s_fields[i].key);
  return 0;
}

// ---- text form ----

const char *ffs_ctl_str(const ffs_ctl_msg_t *m, char *out, size_t outlen) {
  assert(m && out && outlen > 0);
  size_t n = (size_t)snprintf(out, outlen, "%s", ffs_ctl_type_str(m->type));
  for (int i = 0; i < S_N_FIELDS && n < outlen; i++) {
    const s_field_t *f = &s_fields[i];
    if (f->type != m->type) continue;
    const void *p = s_cat(m, f);
    char *o = out + n;
    size_t left = outlen - n;
    switch (f->kind) {
    case FFS_CTL_I32: n += (size_t)snprintf(o, left, " %s=%d", f->key, *(const int32_t *)p); break;
    case FFS_CTL_U64:
      n += (size_t)snprintf(o, left, " %s=%llu", f->key, (unsigned long long)*(const uint64_t *)p);
      break;
    case FFS_CTL_F64: n += (size_t)snprintf(o, left, " %s=%g", f->key, *(const double *)p); break;
    case FFS_CTL_STR: n += (size_t)snprintf(o, left, " %s=%.*s", f->key, (int)f->size, (const char *)p); break;
    case FFS_CTL_MODE:
      n += (size_t)snprintf(o, left, " %s=%s", f->key, *(const int32_t *)p ? "eval" : "train");
      break;
    case FFS_CTL_LAYERS:
      for (int k = 0; k < m->result.n_layers && k < FFS_MAX_STAGES && n < outlen; k++) {
        const ffs_ctl_layer_t *L = &m->result.layers[k];
        n += (size_t)snprintf(out + n, outlen - n, " layer=%.*s:%g:%g:%g", (int)sizeof L->name,
                              L->name, L->energy, L->softmax, L->cosine);
      }
      break;
    }
  }
  s_one_line(out); // strings off the wire (an ERROR's text, a name) stay one line
  return out;
}
