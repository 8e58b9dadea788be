// ffs_ckpt: safetensors writer and reader for per-stage checkpoints.
// Layout: u64 LE header length N | N bytes of JSON (space-padded so the data
// starts 8-byte aligned) | tensors back to back, F32 little-endian.
// Saves go through "<path>.tmp.<pid>" + fsync + rename + fsync(dir), so a
// crash leaves the old checkpoint or the new one, never half of one. The
// reader trusts nothing in the file: every offset and shape is checked.
#include "ffs_ckpt.h"

#include "ffs_log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

// Same limit as the reference safetensors implementation.
#define FFS_CKPT_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
// Longest shape we parse for any tensor in a header (ours are rank 1 or 2).
#define FFS_CKPT_MAX_RANK 16

// ---- helpers ----


static int s_host_is_le(void) {
  const uint16_t one = 1;
  uint8_t first;
  memcpy(&first, &one, 1);
  return first == 1;
}

static uint32_t s_bswap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

static uint64_t s_tensor_numel(const ffs_tensor_ref_t *t) {
  return t->ndim == 1 ? (uint64_t)t->shape[0] : (uint64_t)t->shape[0] * (uint64_t)t->shape[1];
}

// Writes "[a,b]" (or "[a]") into out.
static void s_shape_str(char *out, size_t outlen, const uint64_t *dims, int ndim) {
  size_t at = 0;
  int k = snprintf(out, outlen, "[");
  at = k > 0 ? (size_t)k : 0;
  for (int i = 0; i < ndim && at < outlen; i++) {
    k = snprintf(out + at, outlen - at, "%s%" PRIu64, i ? "," : "", dims[i]);
    if (k < 0) return;
    at += (size_t)k;
  }
  if (at < outlen) snprintf(out + at, outlen - at, "]");
}

static void s_ref_shape_str(char *out, size_t outlen, const ffs_tensor_ref_t *t) {
  uint64_t dims[2] = {(uint64_t)t->shape[0], (uint64_t)(t->ndim == 2 ? t->shape[1] : 0)};
  s_shape_str(out, outlen, dims, t->ndim);
}

// Strict UTF-8 check (no overlongs, no surrogates, <= U+10FFFF): JSON
// readers such as serde_json refuse anything else.
static int s_utf8_valid(const char *str) {
  const uint8_t *s = (const uint8_t *)str;
  while (*s) {
    uint8_t c = *s;
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      s++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    for (int i = 1; i <= extra; i++) {
      if ((s[i] & 0xC0) != 0x80) return 0; // also stops at the NUL
      cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    s += 1 + extra;
  }
  return 1;
}

// ---- JSON header writer ----

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} s_buf_t;

static void s_buf_put(s_buf_t *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void s_buf_puts(s_buf_t *b, const char *s) { s_buf_put(b, s, strlen(s)); }

static void s_buf_u64(s_buf_t *b, uint64_t v) {
  char tmp[32];
  int k = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
  s_buf_put(b, tmp, (size_t)k);
}

// Appends s as a quoted JSON string (s must be valid UTF-8).
static void s_buf_json_str(s_buf_t *b, const char *s) {
  s_buf_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    switch (c) {
    case '"': s_buf_put(b, "\\\"", 2); break;
    case '\\': s_buf_put(b, "\\\\", 2); break;
    case '\b': s_buf_put(b, "\\b", 2); break;
    case '\f': s_buf_put(b, "\\f", 2); break;
    case '\n': s_buf_put(b, "\\n", 2); break;
    case '\r': s_buf_put(b, "\\r", 2); break;
    case '\t': s_buf_put(b, "\\t", 2); break;
    default:
      if (c < 0x20 || c == 0x7F) {
        snprintf(esc, sizeof esc, "\\u%04x", c);
        s_buf_put(b, esc, 6);
      } else {
        s_buf_put(b, s, 1);
      }
    }
  }
  s_buf_put(b, "\"", 1);
}

// Writes n floats as little-endian F32.
static int s_write_f32(FILE *f, const float *x, size_t n) {
  if (s_host_is_le()) return fwrite(x, sizeof *x, n, f) == n ? 0 : -1;
  uint32_t tmp[1024];
  while (n > 0) {
    size_t k = n < 1024 ? n : 1024;
    memcpy(tmp, x, k * sizeof *x);
    for (size_t i = 0; i < k; i++) tmp[i] = s_bswap32(tmp[i]);
    if (fwrite(tmp, sizeof *tmp, k, f) != k) return -1;
    x += k;
    n -= k;
  }
  return 0;
}

// fsyncs the directory holding path so that a rename into it is durable.
static int s_fsync_dir(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

// ---- save ----

int ffs_ckpt_save(const char *path, const ffs_tensor_ref_t *t, int n,
                  const char *const *meta, int n_meta, char *err, size_t errlen) {
  assert(path);
  assert(n >= 0 && n <= FFS_CKPT_MAX_TENSORS && (n == 0 || t));
  assert(n_meta >= 0 && (n_meta == 0 || meta));
  s_buf_t hdr = {0};
  char tmp[4200];
  FILE *f = NULL;
  int tmp_made = 0;

  for (int i = 0; i < n; i++) {
    assert(t[i].name && (t[i].ndim == 1 || t[i].ndim == 2));
    assert(t[i].shape[0] >= 0 && (t[i].ndim == 1 || t[i].shape[1] >= 0));
    assert(t[i].data || s_tensor_numel(&t[i]) == 0);
    if (!t[i].name[0] || !strcmp(t[i].name, "__metadata__") || !s_utf8_valid(t[i].name)) {
      ffs_errf(err, errlen, "%s: tensor %d has an invalid name \"%s\" (expected non-empty UTF-8, "
            "not \"__metadata__\")", path, i, t[i].name);
      goto fail;
    }
    for (int j = 0; j < i; j++) {
      if (!strcmp(t[i].name, t[j].name)) {
        ffs_errf(err, errlen, "%s: tensor name '%s' given twice (expected unique names)", path,
              t[i].name);
        goto fail;
      }
    }
  }
  for (int k = 0; k < 2 * n_meta; k++) {
    assert(meta[k]);
    if (!s_utf8_valid(meta[k])) {
      ffs_errf(err, errlen, "%s: metadata %s %d is not valid UTF-8", path, k % 2 ? "value" : "key",
            k / 2);
      goto fail;
    }
    if (k % 2 == 0) {
      for (int j = 0; j < k; j += 2) {
        if (!strcmp(meta[k], meta[j])) {
          ffs_errf(err, errlen, "%s: metadata key '%s' given twice (expected unique keys)", path,
                meta[k]);
          goto fail;
        }
      }
    }
  }

  // ---- header ----
  s_buf_puts(&hdr, "{");
  int first = 1;
  if (n_meta > 0) {
    s_buf_puts(&hdr, "\"__metadata__\":{");
    for (int k = 0; k < n_meta; k++) {
      if (k) s_buf_puts(&hdr, ",");
      s_buf_json_str(&hdr, meta[2 * k]);
      s_buf_puts(&hdr, ":");
      s_buf_json_str(&hdr, meta[2 * k + 1]);
    }
    s_buf_puts(&hdr, "}");
    first = 0;
  }
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    uint64_t bytes = 4 * s_tensor_numel(&t[i]);
    if (!first) s_buf_puts(&hdr, ",");
    first = 0;
    s_buf_json_str(&hdr, t[i].name);
    s_buf_puts(&hdr, ":{\"dtype\":\"F32\",\"shape\":[");
    s_buf_u64(&hdr, (uint64_t)t[i].shape[0]);
    if (t[i].ndim == 2) {
      s_buf_puts(&hdr, ",");
      s_buf_u64(&hdr, (uint64_t)t[i].shape[1]);
    }
    s_buf_puts(&hdr, "],\"data_offsets\":[");
    s_buf_u64(&hdr, offset);
    s_buf_puts(&hdr, ",");
    s_buf_u64(&hdr, offset + bytes);
    s_buf_puts(&hdr, "]}");
    offset += bytes;
  }
  s_buf_puts(&hdr, "}");
  while (hdr.len % 8 != 0) s_buf_puts(&hdr, " "); // 8 + len is then 8-aligned
  if (hdr.oom) {
    ffs_errf(err, errlen, "%s: out of memory building the header", path);
    goto fail;
  }
  if (hdr.len > FFS_CKPT_MAX_HEADER) {
    ffs_errf(err, errlen, "%s: header of %zu bytes is over the 100 MB safetensors limit", path,
          hdr.len);
    goto fail;
  }

  // ---- temp file ----
  int k = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (k < 0 || (size_t)k >= sizeof tmp) {
    ffs_errf(err, errlen, "%s: path too long", path);
    goto fail;
  }
  f = fopen(tmp, "wb");
  if (!f) {
    ffs_errf(err, errlen, "%s: cannot create temp file %s: %s", path, tmp, strerror(errno));
    goto fail;
  }
  tmp_made = 1;
  uint8_t len_le[8];
  for (int b = 0; b < 8; b++) len_le[b] = (uint8_t)((uint64_t)hdr.len >> (8 * b));
  int bad = fwrite(len_le, 1, 8, f) != 8 || fwrite(hdr.p, 1, hdr.len, f) != hdr.len;
  for (int i = 0; i < n && !bad; i++)
    bad = s_write_f32(f, t[i].data, (size_t)s_tensor_numel(&t[i])) != 0;
  if (bad || fflush(f) != 0) {
    ffs_errf(err, errlen, "%s: write to %s failed: %s", path, tmp, strerror(errno));
    goto fail;
  }
  if (fsync(fileno(f)) != 0) {
    ffs_errf(err, errlen, "%s: fsync of %s failed: %s", path, tmp, strerror(errno));
    goto fail;
  }
  int rc = fclose(f);
  f = NULL;
  if (rc != 0) {
    ffs_errf(err, errlen, "%s: closing %s failed: %s", path, tmp, strerror(errno));
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    ffs_errf(err, errlen, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    goto fail;
  }
  tmp_made = 0;
  // The new file is in place; a failed directory fsync only weakens
  // durability across a power cut, so it is reported but not fatal.
  if (s_fsync_dir(path) != 0)
    ffs_warn("%s: fsync of the containing directory failed: %s", path, strerror(errno));
  free(hdr.p);
  return 0;

fail:
  if (f) fclose(f);
  if (tmp_made) unlink(tmp);
  free(hdr.p);
  return -1;
}

// ---- header parser ----
// A bounded parser for exactly the safetensors header shape: a top-level
// object whose values are either the "__metadata__" object of string pairs or
// a tensor object {"dtype": string, "shape": [uint...], "data_offsets": [uint,
// uint]}. No recursion, no allocation; strings are unescaped in place.

typedef struct {
  char *p, *start, *end; // cursor, header start and end
  const char *path;
  char *err;
  size_t errlen;
} s_json_t;

static void s_ws(s_json_t *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int s_bad(s_json_t *j, const char *what) {
  if (j->p < j->end) {
    unsigned char c = (unsigned char)*j->p;
    if (c >= 0x20 && c < 0x7F)
      ffs_errf(j->err, j->errlen, "%s: corrupt header: expected %s at byte %td, found '%c'",
            j->path, what, j->p - j->start, c);
    else
      ffs_errf(j->err, j->errlen, "%s: corrupt header: expected %s at byte %td, found byte 0x%02x",
            j->path, what, j->p - j->start, c);
  } else {
    ffs_errf(j->err, j->errlen, "%s: corrupt header: expected %s at byte %td, found the end",
          j->path, what, j->p - j->start);
  }
  return -1;
}

// Skips whitespace and consumes c; returns 0, or -1 when the next byte is not c.
static int s_eat(s_json_t *j, char c) {
  s_ws(j);
  if (j->p < j->end && *j->p == c) {
    j->p++;
    return 0;
  }
  return -1;
}

static int s_hex4(s_json_t *j, uint32_t *out) {
  if (j->end - j->p < 4) return -1;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = j->p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return -1;
  }
  j->p += 4;
  *out = v;
  return 0;
}

// Parses a JSON string, unescaping it in place (the decoded form is never
// longer than the escaped one). *out is NUL-terminated; *len counts bytes
// (an escaped \u0000 may sit inside).
static int s_string(s_json_t *j, char **out, size_t *len) {
  s_ws(j);
  if (j->p >= j->end || *j->p != '"') return s_bad(j, "a string");
  j->p++;
  char *w = j->p, *begin = j->p;
  for (;;) {
    if (j->p >= j->end) return s_bad(j, "a closing '\"'");
    unsigned char c = (unsigned char)*j->p;
    if (c == '"') break;
    if (c < 0x20) return s_bad(j, "no raw control character in a string");
    if (c != '\\') {
      *w++ = *j->p++;
      continue;
    }
    j->p++;
    if (j->p >= j->end) return s_bad(j, "an escape character");
    char e = *j->p++;
    switch (e) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case '/': *w++ = '/'; break;
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (s_hex4(j, &cp) != 0) return s_bad(j, "4 hex digits after \\u");
      if (cp >= 0xDC00 && cp <= 0xDFFF) return s_bad(j, "no lone low surrogate");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
          return s_bad(j, "a low surrogate \\uDC00-\\uDFFF");
        j->p += 2;
        if (s_hex4(j, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
          return s_bad(j, "a low surrogate \\uDC00-\\uDFFF");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      if (cp < 0x80) {
        *w++ = (char)cp;
      } else if (cp < 0x800) {
        *w++ = (char)(0xC0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
      } else {
        *w++ = (char)(0xF0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *w++ = (char)(0x80 | (cp & 0x3F));
      }
      break;
    }
    default: j->p--; return s_bad(j, "a valid escape (one of \"\\/bfnrtu)");
    }
  }
  j->p++; // closing quote; w <= its old position, so the NUL fits
  *w = 0;
  *out = begin;
  *len = (size_t)(w - begin);
  return 0;
}

// Parses a non-negative JSON integer that fits in 64 bits.
static int s_uint(s_json_t *j, uint64_t *out) {
  s_ws(j);
  if (j->p >= j->end || *j->p < '0' || *j->p > '9')
    return s_bad(j, "a non-negative integer");
  if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
    return s_bad(j, "an integer without leading zeros");
  uint64_t v = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    unsigned d = (unsigned)(*j->p - '0');
    if (v > (UINT64_MAX - d) / 10) return s_bad(j, "an integer below 2^64");
    v = v * 10 + d;
    j->p++;
  }
  if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
    return s_bad(j, "an integer (no fraction or exponent)");
  *out = v;
  return 0;
}

// Parses [u, u, ...] with at most max entries.
static int s_uint_array(s_json_t *j, uint64_t *vals, int max, int *count) {
  *count = 0;
  if (s_eat(j, '[') != 0) return s_bad(j, "'['");
  if (s_eat(j, ']') == 0) return 0;
  for (;;) {
    if (*count >= max) return s_bad(j, "a shorter array");
    if (s_uint(j, &vals[*count]) != 0) return -1;
    (*count)++;
    if (s_eat(j, ']') == 0) return 0;
    if (s_eat(j, ',') != 0) return s_bad(j, "',' or ']'");
  }
}

// Parses the "__metadata__" object: string keys to string values.
static int s_metadata(s_json_t *j) {
  char *s;
  size_t len;
  if (s_eat(j, '{') != 0) return s_bad(j, "'{' opening __metadata__");
  if (s_eat(j, '}') == 0) return 0;
  for (;;) {
    if (s_string(j, &s, &len) != 0) return -1;
    if (s_eat(j, ':') != 0) return s_bad(j, "':'");
    if (s_string(j, &s, &len) != 0) return -1;
    if (s_eat(j, '}') == 0) return 0;
    if (s_eat(j, ',') != 0) return s_bad(j, "',' or '}'");
  }
}

typedef struct {
  char *dtype;
  size_t dtype_len;
  uint64_t shape[FFS_CKPT_MAX_RANK];
  int ndim;
  uint64_t offsets[2];
} s_entry_t;

// Parses {"dtype":..., "shape":[...], "data_offsets":[b,e]}; name is for errors.
static int s_entry(s_json_t *j, const char *name, s_entry_t *e) {
  int have_dtype = 0, have_shape = 0, have_offsets = 0;
  char *key;
  size_t len;
  if (s_eat(j, '{') != 0) return s_bad(j, "'{' opening a tensor entry");
  if (s_eat(j, '}') != 0) {
    for (;;) {
      if (s_string(j, &key, &len) != 0) return -1;
      if (s_eat(j, ':') != 0) return s_bad(j, "':'");
      if (!strcmp(key, "dtype") && len == 5 && !have_dtype) {
        if (s_string(j, &e->dtype, &e->dtype_len) != 0) return -1;
        have_dtype = 1;
      } else if (!strcmp(key, "shape") && len == 5 && !have_shape) {
        if (s_uint_array(j, e->shape, FFS_CKPT_MAX_RANK, &e->ndim) != 0) return -1;
        have_shape = 1;
      } else if (!strcmp(key, "data_offsets") && len == 12 && !have_offsets) {
        int count;
        if (s_uint_array(j, e->offsets, 2, &count) != 0) return -1;
        if (count != 2) {
          ffs_errf(j->err, j->errlen,
                "%s: tensor '%.64s': data_offsets has %d entries (expected [begin, end])", j->path,
                name, count);
          return -1;
        }
        have_offsets = 1;
      } else {
        ffs_errf(j->err, j->errlen,
              "%s: tensor '%.64s': unexpected or repeated key \"%.40s\" (expected dtype, shape, "
              "data_offsets once each)",
              j->path, name, key);
        return -1;
      }
      if (s_eat(j, '}') == 0) break;
      if (s_eat(j, ',') != 0) return s_bad(j, "',' or '}'");
    }
  }
  if (!have_dtype || !have_shape || !have_offsets) {
    ffs_errf(j->err, j->errlen, "%s: tensor '%.64s': missing %s", j->path, name,
          !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return -1;
  }
  return 0;
}

// Parses the whole header. For each t[i] found, sets begin[i] (byte offset in
// the data section) after checking dtype, shape and offsets.
static int s_parse_header(s_json_t *j, uint64_t data_size, const ffs_tensor_ref_t *t, int n,
                          uint64_t *begin, int *found) {
  int have_meta = 0;
  if (s_eat(j, '{') != 0) return s_bad(j, "'{' opening the header");
  if (s_eat(j, '}') != 0) {
    for (;;) {
      char *name;
      size_t len;
      if (s_string(j, &name, &len) != 0) return -1;
      if (s_eat(j, ':') != 0) return s_bad(j, "':'");
      if (len == 12 && !strcmp(name, "__metadata__")) {
        if (have_meta) {
          ffs_errf(j->err, j->errlen, "%s: corrupt header: __metadata__ appears twice", j->path);
          return -1;
        }
        have_meta = 1;
        if (s_metadata(j) != 0) return -1;
      } else {
        s_entry_t e = {0};
        if (s_entry(j, name, &e) != 0) return -1;
        if (e.offsets[0] > e.offsets[1] || e.offsets[1] > data_size) {
          ffs_errf(j->err, j->errlen,
                "%s: tensor '%.64s': data_offsets [%" PRIu64 ",%" PRIu64
                "] lie outside the data section of %" PRIu64 " bytes",
                j->path, name, e.offsets[0], e.offsets[1], data_size);
          return -1;
        }
        for (int i = 0; i < n; i++) {
          if (len != strlen(t[i].name) || memcmp(name, t[i].name, len) != 0) continue;
          char want[64], got[64];
          uint64_t want_dims[2] = {(uint64_t)t[i].shape[0],
                                   (uint64_t)(t[i].ndim == 2 ? t[i].shape[1] : 0)};
          s_ref_shape_str(want, sizeof want, &t[i]);
          s_shape_str(got, sizeof got, e.shape, e.ndim);
          if (found[i]) {
            ffs_errf(j->err, j->errlen, "%s: tensor '%s' appears twice in the header", j->path,
                  t[i].name);
            return -1;
          }
          if (e.dtype_len != 3 || strcmp(e.dtype, "F32") != 0) {
            ffs_errf(j->err, j->errlen, "%s: tensor '%s' has dtype %.16s, expected F32", j->path,
                  t[i].name, e.dtype);
            return -1;
          }
          if (e.ndim != t[i].ndim || e.shape[0] != want_dims[0] ||
              (e.ndim == 2 && e.shape[1] != want_dims[1])) {
            ffs_errf(j->err, j->errlen, "%s: tensor '%s' has shape %s, expected %s", j->path,
                  t[i].name, got, want);
            return -1;
          }
          uint64_t bytes = 4 * s_tensor_numel(&t[i]);
          if (e.offsets[1] - e.offsets[0] != bytes) {
            ffs_errf(j->err, j->errlen,
                  "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64 "] span %" PRIu64
                  " bytes, expected %" PRIu64 " for F32 %s",
                  j->path, t[i].name, e.offsets[0], e.offsets[1], e.offsets[1] - e.offsets[0],
                  bytes, want);
            return -1;
          }
          found[i] = 1;
          begin[i] = e.offsets[0];
        }
      }
      if (s_eat(j, '}') == 0) break;
      if (s_eat(j, ',') != 0) return s_bad(j, "',' or '}'");
    }
  }
  s_ws(j);
  if (j->p != j->end) return s_bad(j, "only space padding after the header object");
  return 0;
}

// ---- load ----

int ffs_ckpt_load(const char *path, const ffs_tensor_ref_t *t, int n, char *err,
                  size_t errlen) {
  return ffs_ckpt_load_some(path, t, n, n, NULL, err, errlen);
}

int ffs_ckpt_load_some(const char *path, const ffs_tensor_ref_t *t, int n, int n_required,
                       int *n_loaded, char *err, size_t errlen) {
  assert(n_required >= 0 && n_required <= n);
  int ends[2] = {n_required, n};
  unsigned loaded = 0;
  if (ffs_ckpt_load_groups(path, t, ends, 2, &loaded, err, errlen) < 0) return -1;
  if (n_loaded) *n_loaded = loaded & 2u ? n : n_required;
  return 0;
}

int ffs_ckpt_load_groups(const char *path, const ffs_tensor_ref_t *t, const int *ends,
                         int n_groups, unsigned *loaded, char *err, size_t errlen) {
  assert(path && ends && n_groups >= 1 && n_groups <= 32);
  for (int g = 0; g < n_groups; g++) assert(ends[g] >= (g ? ends[g - 1] : 0));
  int n = ends[n_groups - 1];
  assert(n >= 0 && n <= FFS_CKPT_MAX_TENSORS && (n == 0 || t));
  for (int i = 0; i < n; i++) {
    assert(t[i].name && (t[i].ndim == 1 || t[i].ndim == 2));
    assert(t[i].shape[0] >= 0 && (t[i].ndim == 1 || t[i].shape[1] >= 0));
    assert(t[i].data || s_tensor_numel(&t[i]) == 0);
  }
  char *hdr = NULL;
  uint64_t begin[FFS_CKPT_MAX_TENSORS] = {0};
  int found[FFS_CKPT_MAX_TENSORS] = {0};

  FILE *f = fopen(path, "rb");
  if (!f) {
    ffs_errf(err, errlen, "%s: cannot open: %s (expected a safetensors checkpoint)", path,
          strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    ffs_errf(err, errlen, "%s: not a regular file (expected a safetensors checkpoint)", path);
    goto fail;
  }
  uint64_t size = (uint64_t)st.st_size;
  uint8_t len_le[8];
  if (size < 8 || fread(len_le, 1, 8, f) != 8) {
    ffs_errf(err, errlen,
          "%s: truncated: %" PRIu64 " bytes, too short for the 8-byte safetensors header length",
          path, size);
    goto fail;
  }
  uint64_t hlen = 0;
  for (int b = 7; b >= 0; b--) hlen = hlen << 8 | len_le[b];
  if (hlen > FFS_CKPT_MAX_HEADER) {
    ffs_errf(err, errlen,
          "%s: corrupt header: declared length %" PRIu64 " is over the 100 MB limit", path, hlen);
    goto fail;
  }
  if (hlen > size - 8) {
    ffs_errf(err, errlen,
          "%s: truncated: header declares %" PRIu64 " bytes of JSON, file holds %" PRIu64
          " after the length",
          path, hlen, size - 8);
    goto fail;
  }
  hdr = malloc((size_t)hlen + 1);
  if (!hdr) {
    ffs_errf(err, errlen, "%s: out of memory for a %" PRIu64 "-byte header", path, hlen);
    goto fail;
  }
  if (fread(hdr, 1, (size_t)hlen, f) != (size_t)hlen) {
    ffs_errf(err, errlen, "%s: read error in the header: %s", path,
          ferror(f) ? strerror(errno) : "file shrank");
    goto fail;
  }
  hdr[hlen] = 0;
  uint64_t data_size = size - 8 - hlen;
  s_json_t j = {hdr, hdr, hdr + hlen, path, err, errlen};
  if (s_parse_header(&j, data_size, t, n, begin, found) != 0) goto fail;

  // each optional group: all of it or none of it
  int use[FFS_CKPT_MAX_TENSORS] = {0};
  unsigned got = 1u;
  for (int g = 0; g < n_groups; g++) {
    int i0 = g ? ends[g - 1] : 0, have = 0;
    for (int i = i0; i < ends[g]; i++) have += found[i];
    int take = g == 0 || have > 0; // a group partly there is read, to name what is missing
    if (g > 0 && have > 0) got |= 1u << g;
    for (int i = i0; i < ends[g]; i++) use[i] = take;
  }
  for (int i = 0; i < n; i++) {
    if (use[i] && !found[i]) {
      char want[64];
      s_ref_shape_str(want, sizeof want, &t[i]);
      ffs_errf(err, errlen, "%s: tensor '%s' not found (expected F32 %s)", path, t[i].name, want);
      goto fail;
    }
  }
  for (int i = 0; i < n; i++) {
    size_t numel = (size_t)s_tensor_numel(&t[i]);
    if (!use[i] || numel == 0) continue;
    if (fseeko(f, (off_t)(8 + hlen + begin[i]), SEEK_SET) != 0 ||
        fread(t[i].data, sizeof(float), numel, f) != numel) {
      ffs_errf(err, errlen, "%s: tensor '%s': short read of %zu floats: %s", path, t[i].name, numel,
            ferror(f) ? strerror(errno) : "file shrank");
      goto fail;
    }
    if (!s_host_is_le()) {
      for (size_t k = 0; k < numel; k++) {
        uint32_t w;
        memcpy(&w, &t[i].data[k], 4);
        w = s_bswap32(w);
        memcpy(&t[i].data[k], &w, 4);
      }
    }
  }
  free(hdr);
  fclose(f);
  if (loaded) *loaded = got;
  return 0;

fail:
  free(hdr);
  fclose(f);
  return -1;
}
