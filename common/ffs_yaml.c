// ffs_yaml: a YAML file into a node tree that keeps every node's line (see
// ffs_yaml.h). Three parts: libyaml events -> the tree; "KEY=VALUE"
// overrides spliced into it; typed readers that fail with one line naming
// FILE:LINE (or the override). Size, depth and node count are capped, and
// nothing here asserts on what the file says.
#include "ffs_yaml.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_MAX_FILE_BYTES (1 << 20) // a real topology file is a few KiB
#define S_MAX_DEPTH 16             // a real one nests 4 deep (root/stages/stage/energy)
#define S_MAX_NODES 10000          // a real one has a few hundred nodes

// ---- errors ----

// Copies src into dst for quoting in a message: at most cap-4 bytes, control
// characters replaced by '?', "..." when cut, so a message stays one line.
void ffs_yaml_clip(char *dst, size_t cap, const char *src) {
  size_t i = 0, max = cap - 4;
  for (; src[i] && i < max; i++) {
    unsigned char ch = (unsigned char)src[i];
    dst[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  if (src[i]) {
    memcpy(dst + i, "...", 3);
    i += 3;
  }
  dst[i] = 0;
}

// Writes the error (only the first one sticks) and returns -1. The prefix is
// "--set OVERRIDE: " for origin, "PATH:LINE: " for line > 0, else "PATH: ".
static int s_vfail(ffs_yaml_ctx_t *c, const char *origin, int line, const char *fmt, va_list ap) {
  if (c->failed) return -1;
  c->failed = 1;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (origin) {
    char ov[128];
    ffs_yaml_clip(ov, sizeof ov, origin);
    snprintf(c->err, c->errlen, "--set %s: %s", ov, msg);
  } else if (line > 0) {
    snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line, msg);
  } else {
    snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
  }
  return -1;
}

int ffs_yaml_failf(ffs_yaml_ctx_t *c, const char *origin, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_vfail(c, origin, line, fmt, ap);
  va_end(ap);
  return -1;
}

// An error located at node at (its file line, or the override that made it).
int ffs_yaml_fail(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_vfail(c, at ? at->origin : NULL, at ? at->line : 0, fmt, ap);
  va_end(ap);
  return -1;
}

// "line 12" or "--set KEY=VALUE": where a node came from, for "(first at ...)".
const char *ffs_yaml_where(const ffs_yaml_node_t *n, char *buf, size_t cap) {
  if (n->line > 0) {
    snprintf(buf, cap, "line %d", n->line);
  } else {
    char ov[96];
    ffs_yaml_clip(ov, sizeof ov, n->origin ? n->origin : "?");
    snprintf(buf, cap, "--set %s", ov);
  }
  return buf;
}

// Joins a NULL-terminated word list as "a, b, c".
const char *ffs_yaml_join(char *buf, size_t cap, const char *const *words) {
  size_t at = 0;
  buf[0] = 0;
  for (int i = 0; words[i] && at < cap; i++) {
    int k = snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", words[i]);
    if (k < 0) break;
    at += (size_t)k;
  }
  return buf;
}

// ---- node tree: building ----

static void s_node_free(ffs_yaml_node_t *n) {
  if (!n) return;
  for (int i = 0; i < n->n; i++)
    s_node_free(n->kids[i]);
  free(n->kids);
  free(n->str);
  free(n);
}

static ffs_yaml_node_t *s_node_new(ffs_yaml_ctx_t *c, int type, int line, const char *origin) {
  if (c->n_nodes >= S_MAX_NODES) {
    ffs_yaml_failf(c, origin, line, "more than %d YAML nodes (a topology file needs a few hundred)",
                   S_MAX_NODES);
    return NULL;
  }
  ffs_yaml_node_t *n = calloc(1, sizeof *n);
  if (!n) {
    ffs_yaml_failf(c, origin, line, "out of memory");
    return NULL;
  }
  c->n_nodes++;
  n->type = type;
  n->line = origin ? 0 : line;
  n->origin = origin;
  return n;
}

// A scalar node holding a copy of text[0..len).
static ffs_yaml_node_t *s_scalar_new(ffs_yaml_ctx_t *c, const char *text, size_t len, int plain,
                                     int line, const char *origin) {
  ffs_yaml_node_t *n = s_node_new(c, FFS_YAML_SCALAR, line, origin);
  if (!n) return NULL;
  n->str = malloc(len + 1);
  if (!n->str) {
    s_node_free(n);
    ffs_yaml_failf(c, origin, line, "out of memory");
    return NULL;
  }
  memcpy(n->str, text, len);
  n->str[len] = 0;
  n->plain = plain;
  return n;
}

// Appends kid to parent's slots; the parent owns it on success only.
static int s_node_push(ffs_yaml_ctx_t *c, ffs_yaml_node_t *parent, ffs_yaml_node_t *kid) {
  if (parent->n == parent->cap) {
    int cap = parent->cap ? 2 * parent->cap : 8;
    ffs_yaml_node_t **kids = realloc(parent->kids, (size_t)cap * sizeof *kids);
    if (!kids) return ffs_yaml_fail(c, kid, "out of memory");
    parent->kids = kids;
    parent->cap = cap;
  }
  parent->kids[parent->n++] = kid;
  return 0;
}

int ffs_yaml_is_null(const ffs_yaml_node_t *n) {
  if (n->type != FFS_YAML_SCALAR || !n->plain) return 0;
  const char *s = n->str;
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

// Slot of key in map (the value is at slot + 1), or -1.
int ffs_yaml_map_find(const ffs_yaml_node_t *map, const char *key) {
  if (!map || map->type != FFS_YAML_MAP) return -1;
  for (int i = 0; i + 1 < map->n; i += 2)
    if (!strcmp(map->kids[i]->str, key)) return i;
  return -1;
}

const ffs_yaml_node_t *ffs_yaml_map_get(const ffs_yaml_node_t *map, const char *key) {
  int i = ffs_yaml_map_find(map, key);
  return i < 0 ? NULL : map->kids[i + 1];
}

const char *ffs_yaml_got(const ffs_yaml_node_t *v, char *buf, size_t cap) {
  if (v->type == FFS_YAML_SEQ) return v->n ? "a sequence" : "an empty sequence";
  if (v->type == FFS_YAML_MAP) return "a mapping";
  if (ffs_yaml_is_null(v)) return "nothing";
  char clip[64];
  ffs_yaml_clip(clip, sizeof clip, v->str);
  snprintf(buf, cap, "'%s'", clip);
  return buf;
}

// Reports libyaml's problem as one line with the line it happened on.
static int s_yaml_error(ffs_yaml_ctx_t *c, const yaml_parser_t *p, const char *origin,
                        const char *buf, size_t len) {
  const char *problem = p->problem ? p->problem : "unknown problem";
  if (p->error == YAML_MEMORY_ERROR)
    return ffs_yaml_failf(c, origin, 1, "out of memory reading YAML");
  if (p->error == YAML_READER_ERROR) {
    // the reader reports a byte offset, not a mark: count the lines to it
    size_t end = p->problem_offset < len ? p->problem_offset : len;
    int line = 1;
    for (size_t i = 0; i < end; i++)
      line += buf[i] == '\n';
    if (p->problem_value >= 0)
      return ffs_yaml_failf(c, origin, line, "not valid YAML text: %s (byte 0x%02x at offset %zu)",
                            problem, (unsigned)p->problem_value & 0xffu, p->problem_offset);
    return ffs_yaml_failf(c, origin, line, "not valid YAML text: %s (at offset %zu)", problem,
                          p->problem_offset);
  }
  int line = (int)p->problem_mark.line + 1;
  if (p->context)
    return ffs_yaml_failf(c, origin, line, "YAML syntax error: %s (%s at line %d)", problem,
                          p->context, (int)p->context_mark.line + 1);
  return ffs_yaml_failf(c, origin, line, "YAML syntax error: %s", problem);
}

// Attaches a freshly made node under the open container (or as the root),
// checking mapping keys: scalars only, no duplicates. Frees node on failure.
static int s_attach(ffs_yaml_ctx_t *c, ffs_yaml_node_t **stack, int depth, ffs_yaml_node_t **root_p,
                    ffs_yaml_node_t *node) {
  if (depth == 0) {
    if (*root_p) { // libyaml gives one root per document; kept as a guard
      int rc = ffs_yaml_fail(c, node, "more than one top-level node");
      s_node_free(node);
      return rc;
    }
    *root_p = node;
    return 0;
  }
  ffs_yaml_node_t *parent = stack[depth - 1];
  if (parent->type == FFS_YAML_MAP && parent->n % 2 == 0) { // node is a key
    if (node->type != FFS_YAML_SCALAR) {
      int rc = ffs_yaml_fail(c, node, "a mapping key must be a plain word, not a %s",
                             node->type == FFS_YAML_SEQ ? "sequence" : "mapping");
      s_node_free(node);
      return rc;
    }
    int first = ffs_yaml_map_find(parent, node->str);
    if (first >= 0) {
      char key[64], where[128];
      ffs_yaml_clip(key, sizeof key, node->str);
      int rc = ffs_yaml_fail(c, node,
                             "duplicate key '%s' (first at %s; a key may appear once per mapping)",
                             key, ffs_yaml_where(parent->kids[first], where, sizeof where));
      s_node_free(node);
      return rc;
    }
  }
  if (s_node_push(c, parent, node) < 0) {
    s_node_free(node);
    return -1;
  }
  return 0;
}

// The parse of one document: the open containers and what was seen so far.
typedef struct {
  const char *origin; // the override's text, or NULL for file lines
  ffs_yaml_node_t *stack[S_MAX_DEPTH];
  int depth, n_docs, done;
  ffs_yaml_node_t *root;
} s_parse_t;

// Refuses what the tree does not model: anchors, aliases and tags.
static int s_refuse_decorations(ffs_yaml_ctx_t *c, const char *origin, int line,
                                const yaml_char_t *anchor, const yaml_char_t *tag) {
  char name[48];
  if (anchor) {
    ffs_yaml_clip(name, sizeof name, (const char *)anchor);
    return ffs_yaml_failf(c, origin, line, "anchor '&%s': anchors and aliases are not supported",
                          name);
  }
  if (tag) {
    ffs_yaml_clip(name, sizeof name, (const char *)tag);
    return ffs_yaml_failf(c, origin, line,
                          "tag '%s': YAML tags are not supported (write a plain value)", name);
  }
  return 0;
}

// Turns one event into a new node in *node_p (NULL when the event makes
// none: stream, document and container ends). Returns 0 or -1.
static int s_event(ffs_yaml_ctx_t *c, s_parse_t *ps, const yaml_event_t *ev,
                   ffs_yaml_node_t **node_p) {
  const char *origin = ps->origin;
  int line = (int)ev->start_mark.line + 1;
  const yaml_char_t *anchor = NULL, *tag = NULL;
  *node_p = NULL;
  switch (ev->type) {
  case YAML_STREAM_END_EVENT:
    ps->done = 1;
    return 0;
  case YAML_DOCUMENT_START_EVENT:
    if (++ps->n_docs > 1)
      return ffs_yaml_failf(c, origin, line,
                            "a second YAML document (expected exactly one; remove the '---')");
    return 0;
  case YAML_ALIAS_EVENT: {
    char name[48];
    ffs_yaml_clip(name, sizeof name, (const char *)ev->data.alias.anchor);
    return ffs_yaml_failf(c, origin, line,
                          "alias '*%s': anchors and aliases are not supported "
                          "(write the value out)",
                          name);
  }
  case YAML_SCALAR_EVENT:
    anchor = ev->data.scalar.anchor;
    tag = ev->data.scalar.tag;
    if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length))
      return ffs_yaml_failf(c, origin, line, "a value contains a NUL character");
    if (s_refuse_decorations(c, origin, line, anchor, tag) < 0) return -1;
    *node_p = s_scalar_new(c, (const char *)ev->data.scalar.value, ev->data.scalar.length,
                           ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, line, origin);
    return *node_p ? 0 : -1;
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT:
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
      anchor = ev->data.sequence_start.anchor;
      tag = ev->data.sequence_start.tag;
    } else {
      anchor = ev->data.mapping_start.anchor;
      tag = ev->data.mapping_start.tag;
    }
    if (s_refuse_decorations(c, origin, line, anchor, tag) < 0) return -1;
    if (ps->depth == S_MAX_DEPTH)
      return ffs_yaml_failf(c, origin, line,
                            "nested deeper than %d levels (a topology file needs 4)", S_MAX_DEPTH);
    *node_p = s_node_new(c, ev->type == YAML_SEQUENCE_START_EVENT ? FFS_YAML_SEQ : FFS_YAML_MAP,
                         line, origin);
    return *node_p ? 0 : -1;
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    if (ps->depth > 0) ps->depth--;
    return 0;
  default:
    return 0;
  }
}

// Reads one YAML document from buf into a tree. Returns 0 with *root_p set
// (NULL when the text holds no document), or -1 with the error written.
// Nodes get origin (an override's text) when it is not NULL, else file lines.
static int s_parse(ffs_yaml_ctx_t *c, const char *buf, size_t len, const char *origin,
                   ffs_yaml_node_t **root_p) {
  yaml_parser_t p;
  yaml_event_t ev;
  s_parse_t ps = {.origin = origin};
  *root_p = NULL;
  if (!yaml_parser_initialize(&p)) return ffs_yaml_failf(c, origin, 0, "out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  while (!ps.done) {
    if (!yaml_parser_parse(&p, &ev)) {
      s_yaml_error(c, &p, origin, buf, len);
      goto fail;
    }
    ffs_yaml_node_t *node = NULL;
    int rc = s_event(c, &ps, &ev, &node);
    yaml_event_delete(&ev);
    if (rc < 0) goto fail;
    if (node) {
      if (s_attach(c, ps.stack, ps.depth, &ps.root, node) < 0) goto fail;
      if (node->type != FFS_YAML_SCALAR) ps.stack[ps.depth++] = node;
    }
  }
  yaml_parser_delete(&p);
  *root_p = ps.root;
  return 0;
fail:
  yaml_parser_delete(&p);
  s_node_free(ps.root);
  return -1;
}

// Reads path whole (at most S_MAX_FILE_BYTES) into a new buffer.
static int s_read_file(ffs_yaml_ctx_t *c, char **buf_p, size_t *len_p) {
  *buf_p = NULL;
  FILE *f = fopen(c->path, "rb");
  if (!f) return ffs_yaml_failf(c, NULL, 0, "cannot open: %s", strerror(errno));
  char *buf = malloc(S_MAX_FILE_BYTES + 1);
  if (!buf) {
    fclose(f);
    return ffs_yaml_failf(c, NULL, 0, "out of memory");
  }
  size_t len = fread(buf, 1, S_MAX_FILE_BYTES + 1, f);
  int rc = 0;
  if (ferror(f))
    rc = ffs_yaml_failf(c, NULL, 0, "cannot read: %s", strerror(errno));
  else if (len > S_MAX_FILE_BYTES)
    rc = ffs_yaml_failf(c, NULL, 0, "larger than %d KiB (a topology file is a few KiB)",
                        S_MAX_FILE_BYTES / 1024);
  fclose(f);
  if (rc < 0) {
    free(buf);
    return -1;
  }
  *buf_p = buf;
  *len_p = len;
  return 0;
}

int ffs_yaml_load(ffs_yaml_ctx_t *c, ffs_yaml_node_t **root_p) {
  assert(c && c->path && c->err && c->errlen > 0 && root_p);
  char *buf = NULL;
  size_t len = 0;
  *root_p = NULL;
  if (s_read_file(c, &buf, &len) < 0) return -1;
  int rc = s_parse(c, buf, len, NULL, root_p);
  free(buf); // the nodes hold copies of their text
  return rc;
}

void ffs_yaml_destroy(ffs_yaml_node_t **root_p) {
  assert(root_p);
  s_node_free(*root_p);
  *root_p = NULL;
}

// ---- scalar readers: each fails with "LABEL: expected ..., got ..." ----

int ffs_yaml_in_list(const char *s, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (!strcmp(s, list[i])) return 1;
  return 0;
}

int ffs_yaml_int(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, long long lo,
                 long long hi, int *out) {
  if (v->type == FFS_YAML_SCALAR && !ffs_yaml_is_null(v)) {
    const char *s = v->str;
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*d >= '0' && *d <= '9') {
      char *end;
      errno = 0;
      long long x = strtoll(s, &end, 10);
      if (!*end && !errno && x >= lo && x <= hi) {
        *out = (int)x;
        return 0;
      }
    }
  }
  char range[64], got[80];
  if (hi >= INT_MAX)
    snprintf(range, sizeof range, ">= %lld", lo);
  else
    snprintf(range, sizeof range, "in %lld..%lld", lo, hi);
  return ffs_yaml_fail(c, v, "%s: expected an integer %s, got %s", label, range,
                       ffs_yaml_got(v, got, sizeof got));
}

int ffs_yaml_u64(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, uint64_t *out) {
  if (v->type == FFS_YAML_SCALAR && v->str[0] >= '0' && v->str[0] <= '9') {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->str, &end, 10);
    if (!*end && !errno) {
      *out = (uint64_t)x;
      return 0;
    }
  }
  char got[80];
  return ffs_yaml_fail(c, v, "%s: expected an integer in 0..18446744073709551615, got %s", label,
                       ffs_yaml_got(v, got, sizeof got));
}

int ffs_yaml_num(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, int range,
                 float *out) {
  static const char *const desc[] = {"> 0", ">= 0", "in [0, 1)"};
  if (v->type == FFS_YAML_SCALAR && v->str[0] && strchr("+-.0123456789", v->str[0])) {
    char *end;
    double x = strtod(v->str, &end);
    int ok = !*end && isfinite(x) && fabs(x) <= FLT_MAX;
    if (ok && range == FFS_YAML_POSITIVE) ok = x > 0 && (float)x > 0;
    if (ok && range == FFS_YAML_NONNEG) ok = x >= 0;
    if (ok && range == FFS_YAML_UNIT) ok = x >= 0 && (float)x < 1;
    if (ok) {
      *out = (float)x;
      return 0;
    }
  }
  char got[80];
  return ffs_yaml_fail(c, v, "%s: expected a number %s, got %s", label, desc[range],
                       ffs_yaml_got(v, got, sizeof got));
}

int ffs_yaml_bool(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, int *out) {
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                    "YES",  "on",   "On",   "ON",  NULL};
  static const char *const no[] = {"false", "False", "FALSE", "no",  "No",
                                   "NO",    "off",   "Off",   "OFF", NULL};
  if (v->type == FFS_YAML_SCALAR && ffs_yaml_in_list(v->str, yes)) {
    *out = 1;
    return 0;
  }
  if (v->type == FFS_YAML_SCALAR && ffs_yaml_in_list(v->str, no)) {
    *out = 0;
    return 0;
  }
  char got[80];
  return ffs_yaml_fail(c, v, "%s: expected true or false, got %s", label,
                       ffs_yaml_got(v, got, sizeof got));
}

// Index of the scalar in names (NULL-terminated).
int ffs_yaml_enum(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label,
                  const char *const *names, int *out) {
  if (v->type == FFS_YAML_SCALAR)
    for (int i = 0; names[i]; i++)
      if (!strcmp(v->str, names[i])) {
        *out = i;
        return 0;
      }
  char list[256], got[80];
  return ffs_yaml_fail(c, v, "%s: expected one of %s, got %s", label,
                       ffs_yaml_join(list, sizeof list, names), ffs_yaml_got(v, got, sizeof got));
}

// A non-empty string without control characters that fits in dst.
int ffs_yaml_str(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, char *dst,
                 size_t cap) {
  if (v->type == FFS_YAML_SCALAR && !ffs_yaml_is_null(v) && strlen(v->str) < cap) {
    int ok = 1;
    for (const char *s = v->str; *s; s++)
      ok &= (unsigned char)*s >= 0x20 && *s != 0x7f;
    if (ok) {
      snprintf(dst, cap, "%s", v->str);
      return 0;
    }
  }
  char got[80];
  return ffs_yaml_fail(c, v, "%s: expected text of 1..%zu characters, got %s", label, cap - 1,
                       ffs_yaml_got(v, got, sizeof got));
}

int ffs_yaml_name_ok(const char *s, int dot, size_t cap) {
  size_t n = strlen(s);
  if (n < 1 || n >= cap) return 0;
  for (; *s; s++) {
    char ch = *s;
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-' || (dot && ch == '.');
    if (!ok) return 0;
  }
  return 1;
}

int ffs_yaml_name(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, int dot,
                  char *dst, size_t cap) {
  if (v->type == FFS_YAML_SCALAR && !ffs_yaml_is_null(v) && ffs_yaml_name_ok(v->str, dot, cap)) {
    snprintf(dst, cap, "%s", v->str);
    return 0;
  }
  char got[80];
  return ffs_yaml_fail(c, v, "%s: expected 1..%d characters of A-Z a-z 0-9 _ -%s, got %s", label,
                       (int)cap - 1, dot ? " ." : "", ffs_yaml_got(v, got, sizeof got));
}

// Fails on the first key of map that is not in keys. label may be NULL.
int ffs_yaml_check_keys(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *map, const char *label,
                        const char *const *keys) {
  for (int i = 0; i + 1 < map->n; i += 2) {
    const ffs_yaml_node_t *k = map->kids[i];
    if (ffs_yaml_in_list(k->str, keys)) continue;
    char list[512], key[64];
    ffs_yaml_clip(key, sizeof key, k->str);
    return ffs_yaml_fail(c, k, "%s%sunknown key '%s' (expected one of: %s)", label ? label : "",
                         label ? ": " : "", key, ffs_yaml_join(list, sizeof list, keys));
  }
  return 0;
}

// The mapping under root[key], or NULL (absent or empty: all defaults).
int ffs_yaml_block(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, const char *key,
                   const char *const *keys, const ffs_yaml_node_t **map_p) {
  *map_p = NULL;
  const ffs_yaml_node_t *v = ffs_yaml_map_get(root, key);
  if (!v || ffs_yaml_is_null(v)) return 0;
  if (v->type != FFS_YAML_MAP) {
    char list[256], got[80];
    return ffs_yaml_fail(c, v, "%s: expected a mapping of keys (%s), got %s", key,
                         ffs_yaml_join(list, sizeof list, keys), ffs_yaml_got(v, got, sizeof got));
  }
  if (ffs_yaml_check_keys(c, v, key, keys) < 0) return -1;
  *map_p = v;
  return 0;
}

// ---- overrides ----

// Sets map[key] = val, adding the key when absent. Takes val in every case.
static int s_map_set(ffs_yaml_ctx_t *c, ffs_yaml_node_t *map, const char *key, ffs_yaml_node_t *val,
                     const char *origin) {
  int slot = ffs_yaml_map_find(map, key);
  if (slot >= 0) {
    s_node_free(map->kids[slot + 1]);
    map->kids[slot + 1] = val;
    return 0;
  }
  ffs_yaml_node_t *k = s_scalar_new(c, key, strlen(key), 1, 0, origin);
  if (!k) goto fail;
  if (s_node_push(c, map, k) < 0) {
    s_node_free(k);
    goto fail;
  }
  if (s_node_push(c, map, val) < 0) { // undo the key so the map stays in pairs
    map->n--;
    s_node_free(k);
    goto fail;
  }
  return 0;
fail:
  s_node_free(val);
  return -1;
}

// The mapping in root[items_key] whose name is name, or NULL.
static ffs_yaml_node_t *s_find_item(const ffs_yaml_node_t *root, const char *items_key,
                                    const char *name) {
  const ffs_yaml_node_t *stages = ffs_yaml_map_get(root, items_key);
  if (!stages || stages->type != FFS_YAML_SEQ) return NULL;
  for (int i = 0; i < stages->n; i++) {
    ffs_yaml_node_t *st = stages->kids[i];
    const ffs_yaml_node_t *v = ffs_yaml_map_get(st, "name");
    if (v && v->type == FFS_YAML_SCALAR && !strcmp(v->str, name)) return st;
  }
  return NULL;
}

// Applies one "KEY=VALUE" to the tree. KEY is a top-level key, BLOCK.KEY or
// STAGE.KEY; VALUE is read as YAML so "[l2, l3]" is a sequence. The new
// nodes carry ov as their origin, so validation errors name the override.
int ffs_yaml_override(ffs_yaml_ctx_t *c, ffs_yaml_node_t *root, const char *ov,
                      const ffs_yaml_override_spec_t *spec) {
  assert(c && root && ov && spec);
  static const char *const usage = "expected KEY=VALUE where KEY is a top-level key, BLOCK.KEY "
                                   "or STAGE.KEY (e.g. seed=2, train.epochs=3, l1.units=500)";
  const char *eq = strchr(ov, '=');
  char key[128];
  size_t klen = eq ? (size_t)(eq - ov) : 0;
  if (!eq || klen == 0 || klen >= sizeof key) return ffs_yaml_failf(c, ov, 0, "%s", usage);
  memcpy(key, ov, klen);
  key[klen] = 0;
  for (size_t i = 0; i < klen; i++) { // keys and stage names are all words, so
    char one[2] = {key[i], 0};        // the key is safe to echo in messages
    if (!ffs_yaml_name_ok(one, 1, sizeof one)) return ffs_yaml_failf(c, ov, 0, "%s", usage);
  }
  char *sub = strchr(key, '.');
  if (sub) {
    *sub++ = 0;
    if (!*key || !*sub || strchr(sub, '.')) return ffs_yaml_failf(c, ov, 0, "%s", usage);
  }
  ffs_yaml_node_t *target = NULL; // the mapping that receives the key
  const char *tkey = sub ? sub : key;
  if (ffs_yaml_in_list(key, spec->top_keys)) {
    if (!sub) {
      target = root;
    } else if (!ffs_yaml_in_list(key, spec->block_keys)) {
      char list[128];
      return ffs_yaml_failf(c, ov, 0,
                            "'%s' is not a block (blocks: %s; a stage is addressed by its name)",
                            key, ffs_yaml_join(list, sizeof list, spec->block_keys));
    } else {
      int slot = ffs_yaml_map_find(root, key);
      if (slot < 0 || ffs_yaml_is_null(root->kids[slot + 1])) { // absent block: make it
        ffs_yaml_node_t *m = s_node_new(c, FFS_YAML_MAP, 0, ov);
        if (!m || s_map_set(c, root, key, m, ov) < 0) return -1;
        slot = ffs_yaml_map_find(root, key);
      }
      target = root->kids[slot + 1];
      if (target->type != FFS_YAML_MAP) {
        char where[128];
        return ffs_yaml_failf(c, ov, 0, "'%s' (%s) is not a mapping", key,
                              ffs_yaml_where(target, where, sizeof where));
      }
    }
  } else {
    target = s_find_item(root, spec->items_key, key);
    if (!target) return ffs_yaml_failf(c, ov, 0, "no stage or top-level block named '%s'", key);
    if (!sub)
      return ffs_yaml_failf(c, ov, 0,
                            "a stage is set one key at a time (expected %s.KEY=VALUE, "
                            "e.g. %s.units=500)",
                            key, key);
  }
  ffs_yaml_node_t *val = NULL;
  if (s_parse(c, eq + 1, strlen(eq + 1), ov, &val) < 0) return -1;
  if (!val && !(val = s_scalar_new(c, "", 0, 1, 0, ov))) return -1; // "KEY=" is an empty value
  return s_map_set(c, target, tkey, val, ov);
}
