// ffs_topo: loads a topology file (YAML) into a validated ffs_topo_t.
// Three steps: libyaml events -> a small node tree where every node keeps its
// line; --set overrides spliced into that tree; the tree validated into the
// struct. File content is hostile until proven otherwise: size, depth and node
// count are capped, every error is one line naming file:line, and nothing
// here asserts on what the file says (asserts guard API misuse only).
#include "ffs_topo.h"

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

// ---- schema vocabulary ----

static const char *const s_top_keys[] = {"name",  "seed",  "transport", "shm",      "tcp",
                                         "data",  "train", "layer",     "stages",   "feedback",
                                         NULL};
// top-level keys whose value is a mapping, addressable as --set BLOCK.KEY=...
static const char *const s_block_keys[] = {"tcp", "data", "train", "layer", NULL};
static const char *const s_tcp_keys[] = {"host", "port", NULL};
static const char *const s_data_keys[] = {"set", "dir", "dim", "train_limit", "test_limit", NULL};
static const char *const s_train_keys[] = {"epochs",    "batch",      "eval_batch", "eval_every",
                                           "negatives", "hwm_frames", "ckpt_every_s", "labels",
                                           "ticks",     "timing",     "damping",    "score_ticks",
                                           "pace_us",   "pairs",      "triples",    NULL};
static const char *const s_layer_keys[] = {
    "goodness",     "theta",    "temp",        "optimizer",  "lr", "momentum",
    "weight_decay", "cooldown", "peer_lambda", "peer_decay", "update", "eval_average", NULL};
// keys a stage may carry, per kind (indexed by ffs_stage_kind_t)
static const char *const s_source_keys[] = {"name", "kind", "core", NULL};
static const char *const s_ff_layer_keys[] = {
    "name",         "kind",     "units",       "core",       "goodness",
    "theta",        "temp",     "optimizer",   "lr",         "momentum",
    "weight_decay", "cooldown", "peer_lambda", "peer_decay", "update",     "delay_ms",
    "shards",       "eval_average", NULL};
static const char *const s_readout_keys[] = {"name",    "kind",       "core",    "energy",
                                             "softmax", "softmax_lr", "primary", NULL};
static const char *const *const s_stage_keys[] = {s_source_keys, s_ff_layer_keys, s_readout_keys};
static const char *const s_feedback_keys[] = {"from", "to", NULL};

static const char *const s_kind_names[] = {"source", "ff_layer", "readout", NULL};
static const char *const s_transport_names[] = {"ipc", "inproc", "tcp", NULL};
static const char *const s_goodness_names[] = {"ssq", "msq", "min_ssq", NULL};
static const char *const s_opt_names[] = {"sgd", "adam", NULL};
static const char *const s_update_names[] = {"frame", "pair", NULL};
static const char *const s_negatives_names[] = {"random", "hard", "hybrid", NULL};
static const char *const s_infer_names[] = {"energy", "softmax", NULL};
static const char *const s_labels_names[] = {"overlay", "separate", NULL};
static const char *const s_timing_names[] = {"lockstep", "free-running", NULL};
static const char *const s_set_names[] = {"mnist", "fashion", NULL};

// ---- node tree ----

enum { S_SCALAR = 0, S_SEQ, S_MAP };

typedef struct s_node s_node_t;
struct s_node {
  int type;           // S_SCALAR | S_SEQ | S_MAP
  int line;           // 1-based line in the file; 0 = made by an override
  const char *origin; // the override text ("KEY=VALUE") when line is 0; borrowed
  char *str;          // S_SCALAR: the text, NUL-terminated (owned)
  int plain;          // S_SCALAR: unquoted, so '', '~' and 'null' mean "no value"
  int n;              // slots used in kids: S_SEQ items; S_MAP 2 per key/value pair
  int cap;            // slots allocated in kids
  s_node_t **kids;    // S_SEQ: item i at i; S_MAP: key i at 2i, its value at 2i+1
};

typedef struct {
  const char *path; // file being loaded, for "PATH:LINE:" prefixes
  char *err;        // caller's buffer for the one-line message
  size_t errlen;
  int failed;  // an error has been written; later ones are dropped
  int n_nodes; // nodes made so far, capped by S_MAX_NODES
} s_ctx_t;

// ---- errors ----

// Copies src into dst for quoting in a message: at most cap-4 bytes, control
// characters replaced by '?', "..." when cut, so a message stays one line.
static void s_clip(char *dst, size_t cap, const char *src) {
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
static int s_vfail(s_ctx_t *c, const char *origin, int line, const char *fmt, va_list ap) {
  if (c->failed) return -1;
  c->failed = 1;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (origin) {
    char ov[128];
    s_clip(ov, sizeof ov, origin);
    snprintf(c->err, c->errlen, "--set %s: %s", ov, msg);
  } else if (line > 0) {
    snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line, msg);
  } else {
    snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
  }
  return -1;
}

__attribute__((format(printf, 4, 5))) static int s_failf(s_ctx_t *c, const char *origin, int line,
                                                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_vfail(c, origin, line, fmt, ap);
  va_end(ap);
  return -1;
}

// An error located at node at (its file line, or the override that made it).
__attribute__((format(printf, 3, 4))) static int s_fail(s_ctx_t *c, const s_node_t *at,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  s_vfail(c, at ? at->origin : NULL, at ? at->line : 0, fmt, ap);
  va_end(ap);
  return -1;
}

// "line 12" or "--set KEY=VALUE": where a node came from, for "(first at ...)".
static const char *s_where(const s_node_t *n, char *buf, size_t cap) {
  if (n->line > 0) {
    snprintf(buf, cap, "line %d", n->line);
  } else {
    char ov[96];
    s_clip(ov, sizeof ov, n->origin ? n->origin : "?");
    snprintf(buf, cap, "--set %s", ov);
  }
  return buf;
}

// Joins a NULL-terminated word list as "a, b, c".
static const char *s_join(char *buf, size_t cap, const char *const *words) {
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

static void s_node_free(s_node_t *n) {
  if (!n) return;
  for (int i = 0; i < n->n; i++) s_node_free(n->kids[i]);
  free(n->kids);
  free(n->str);
  free(n);
}

static s_node_t *s_node_new(s_ctx_t *c, int type, int line, const char *origin) {
  if (c->n_nodes >= S_MAX_NODES) {
    s_failf(c, origin, line, "more than %d YAML nodes (a topology file needs a few hundred)",
            S_MAX_NODES);
    return NULL;
  }
  s_node_t *n = calloc(1, sizeof *n);
  if (!n) {
    s_failf(c, origin, line, "out of memory");
    return NULL;
  }
  c->n_nodes++;
  n->type = type;
  n->line = origin ? 0 : line;
  n->origin = origin;
  return n;
}

// A scalar node holding a copy of text[0..len).
static s_node_t *s_scalar_new(s_ctx_t *c, const char *text, size_t len, int plain, int line,
                              const char *origin) {
  s_node_t *n = s_node_new(c, S_SCALAR, line, origin);
  if (!n) return NULL;
  n->str = malloc(len + 1);
  if (!n->str) {
    s_node_free(n);
    s_failf(c, origin, line, "out of memory");
    return NULL;
  }
  memcpy(n->str, text, len);
  n->str[len] = 0;
  n->plain = plain;
  return n;
}

// Appends kid to parent's slots; the parent owns it on success only.
static int s_node_push(s_ctx_t *c, s_node_t *parent, s_node_t *kid) {
  if (parent->n == parent->cap) {
    int cap = parent->cap ? 2 * parent->cap : 8;
    s_node_t **kids = realloc(parent->kids, (size_t)cap * sizeof *kids);
    if (!kids) return s_fail(c, kid, "out of memory");
    parent->kids = kids;
    parent->cap = cap;
  }
  parent->kids[parent->n++] = kid;
  return 0;
}

static int s_is_null(const s_node_t *n) {
  if (n->type != S_SCALAR || !n->plain) return 0;
  const char *s = n->str;
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

// Slot of key in map (the value is at slot + 1), or -1.
static int s_map_find(const s_node_t *map, const char *key) {
  if (!map || map->type != S_MAP) return -1;
  for (int i = 0; i + 1 < map->n; i += 2)
    if (!strcmp(map->kids[i]->str, key)) return i;
  return -1;
}

static const s_node_t *s_map_get(const s_node_t *map, const char *key) {
  int i = s_map_find(map, key);
  return i < 0 ? NULL : map->kids[i + 1];
}

static const char *s_got(const s_node_t *v, char *buf, size_t cap) {
  if (v->type == S_SEQ) return v->n ? "a sequence" : "an empty sequence";
  if (v->type == S_MAP) return "a mapping";
  if (s_is_null(v)) return "nothing";
  char clip[64];
  s_clip(clip, sizeof clip, v->str);
  snprintf(buf, cap, "'%s'", clip);
  return buf;
}

// Reports libyaml's problem as one line with the line it happened on.
static int s_yaml_error(s_ctx_t *c, const yaml_parser_t *p, const char *origin, const char *buf,
                        size_t len) {
  const char *problem = p->problem ? p->problem : "unknown problem";
  if (p->error == YAML_MEMORY_ERROR) return s_failf(c, origin, 1, "out of memory reading YAML");
  if (p->error == YAML_READER_ERROR) {
    // the reader reports a byte offset, not a mark: count the lines to it
    size_t end = p->problem_offset < len ? p->problem_offset : len;
    int line = 1;
    for (size_t i = 0; i < end; i++) line += buf[i] == '\n';
    if (p->problem_value >= 0)
      return s_failf(c, origin, line, "not valid YAML text: %s (byte 0x%02x at offset %zu)",
                     problem, (unsigned)p->problem_value & 0xffu, p->problem_offset);
    return s_failf(c, origin, line, "not valid YAML text: %s (at offset %zu)", problem,
                   p->problem_offset);
  }
  int line = (int)p->problem_mark.line + 1;
  if (p->context)
    return s_failf(c, origin, line, "YAML syntax error: %s (%s at line %d)", problem, p->context,
                   (int)p->context_mark.line + 1);
  return s_failf(c, origin, line, "YAML syntax error: %s", problem);
}

// Attaches a freshly made node under the open container (or as the root),
// checking mapping keys: scalars only, no duplicates. Frees node on failure.
static int s_attach(s_ctx_t *c, s_node_t **stack, int depth, s_node_t **root_p, s_node_t *node) {
  if (depth == 0) {
    if (*root_p) { // libyaml gives one root per document; kept as a guard
      int rc = s_fail(c, node, "more than one top-level node");
      s_node_free(node);
      return rc;
    }
    *root_p = node;
    return 0;
  }
  s_node_t *parent = stack[depth - 1];
  if (parent->type == S_MAP && parent->n % 2 == 0) { // node is a key
    if (node->type != S_SCALAR) {
      int rc = s_fail(c, node, "a mapping key must be a plain word, not a %s",
                      node->type == S_SEQ ? "sequence" : "mapping");
      s_node_free(node);
      return rc;
    }
    int first = s_map_find(parent, node->str);
    if (first >= 0) {
      char key[64], where[128];
      s_clip(key, sizeof key, node->str);
      int rc =
          s_fail(c, node, "duplicate key '%s' (first at %s; a key may appear once per mapping)",
                 key, s_where(parent->kids[first], where, sizeof where));
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

// Reads one YAML document from buf into a tree. Returns 0 with *root_p set
// (NULL when the text holds no document), or -1 with the error written.
// Nodes get origin (an override's text) when it is not NULL, else file lines.
static int s_parse(s_ctx_t *c, const char *buf, size_t len, const char *origin, s_node_t **root_p) {
  yaml_parser_t p;
  yaml_event_t ev;
  s_node_t *stack[S_MAX_DEPTH];
  int depth = 0, n_docs = 0, done = 0;
  s_node_t *root = NULL;
  *root_p = NULL;
  if (!yaml_parser_initialize(&p)) return s_failf(c, origin, 0, "out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  while (!done) {
    if (!yaml_parser_parse(&p, &ev)) {
      s_yaml_error(c, &p, origin, buf, len);
      goto fail;
    }
    int line = (int)ev.start_mark.line + 1;
    s_node_t *node = NULL;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = 1;
      break;
    case YAML_DOCUMENT_START_EVENT:
      if (++n_docs > 1) {
        s_failf(c, origin, line, "a second YAML document (expected exactly one; remove the '---')");
        goto fail_ev;
      }
      break;
    case YAML_ALIAS_EVENT: {
      char name[48];
      s_clip(name, sizeof name, (const char *)ev.data.alias.anchor);
      s_failf(c, origin, line,
              "alias '*%s': anchors and aliases are not supported "
              "(write the value out)",
              name);
      goto fail_ev;
    }
    case YAML_SCALAR_EVENT:
      anchor = ev.data.scalar.anchor;
      tag = ev.data.scalar.tag;
      if (memchr(ev.data.scalar.value, 0, ev.data.scalar.length)) {
        s_failf(c, origin, line, "a value contains a NUL character");
        goto fail_ev;
      }
      if (!anchor && !tag) {
        node = s_scalar_new(c, (const char *)ev.data.scalar.value, ev.data.scalar.length,
                            ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE, line, origin);
        if (!node) goto fail_ev;
      }
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
      if (ev.type == YAML_SEQUENCE_START_EVENT) {
        anchor = ev.data.sequence_start.anchor;
        tag = ev.data.sequence_start.tag;
      } else {
        anchor = ev.data.mapping_start.anchor;
        tag = ev.data.mapping_start.tag;
      }
      if (!anchor && !tag) {
        if (depth == S_MAX_DEPTH) {
          s_failf(c, origin, line, "nested deeper than %d levels (a topology file needs 4)",
                  S_MAX_DEPTH);
          goto fail_ev;
        }
        node = s_node_new(c, ev.type == YAML_SEQUENCE_START_EVENT ? S_SEQ : S_MAP, line, origin);
        if (!node) goto fail_ev;
      }
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      if (depth > 0) depth--;
      break;
    default:
      break;
    }
    if (anchor) {
      char name[48];
      s_clip(name, sizeof name, (const char *)anchor);
      s_failf(c, origin, line, "anchor '&%s': anchors and aliases are not supported", name);
      goto fail_ev;
    }
    if (tag) {
      char name[48];
      s_clip(name, sizeof name, (const char *)tag);
      s_failf(c, origin, line, "tag '%s': YAML tags are not supported (write a plain value)", name);
      goto fail_ev;
    }
    yaml_event_delete(&ev);
    if (node) {
      if (s_attach(c, stack, depth, &root, node) < 0) goto fail;
      if (node->type != S_SCALAR) stack[depth++] = node;
    }
  }
  yaml_parser_delete(&p);
  *root_p = root;
  return 0;
fail_ev:
  yaml_event_delete(&ev);
fail:
  yaml_parser_delete(&p);
  s_node_free(root);
  return -1;
}

// Reads path whole (at most S_MAX_FILE_BYTES) into a new buffer.
static int s_read_file(s_ctx_t *c, char **buf_p, size_t *len_p) {
  *buf_p = NULL;
  FILE *f = fopen(c->path, "rb");
  if (!f) return s_failf(c, NULL, 0, "cannot open: %s", strerror(errno));
  char *buf = malloc(S_MAX_FILE_BYTES + 1);
  if (!buf) {
    fclose(f);
    return s_failf(c, NULL, 0, "out of memory");
  }
  size_t len = fread(buf, 1, S_MAX_FILE_BYTES + 1, f);
  int rc = 0;
  if (ferror(f))
    rc = s_failf(c, NULL, 0, "cannot read: %s", strerror(errno));
  else if (len > S_MAX_FILE_BYTES)
    rc = s_failf(c, NULL, 0, "larger than %d KiB (a topology file is a few KiB)",
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

// ---- scalar readers: each fails with "LABEL: expected ..., got ..." ----

static int s_in_list(const char *s, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (!strcmp(s, list[i])) return 1;
  return 0;
}

static int s_int(s_ctx_t *c, const s_node_t *v, const char *label, long long lo, long long hi,
                 int *out) {
  if (v->type == S_SCALAR && !s_is_null(v)) {
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
  return s_fail(c, v, "%s: expected an integer %s, got %s", label, range,
                s_got(v, got, sizeof got));
}

static int s_u64(s_ctx_t *c, const s_node_t *v, const char *label, uint64_t *out) {
  if (v->type == S_SCALAR && v->str[0] >= '0' && v->str[0] <= '9') {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->str, &end, 10);
    if (!*end && !errno) {
      *out = (uint64_t)x;
      return 0;
    }
  }
  char got[80];
  return s_fail(c, v, "%s: expected an integer in 0..18446744073709551615, got %s", label,
                s_got(v, got, sizeof got));
}

enum { S_POSITIVE = 0, S_NONNEG, S_UNIT }; // > 0 | >= 0 | in [0, 1)

static int s_num(s_ctx_t *c, const s_node_t *v, const char *label, int range, float *out) {
  static const char *const desc[] = {"> 0", ">= 0", "in [0, 1)"};
  if (v->type == S_SCALAR && v->str[0] && strchr("+-.0123456789", v->str[0])) {
    char *end;
    double x = strtod(v->str, &end);
    int ok = !*end && isfinite(x) && fabs(x) <= FLT_MAX;
    if (ok && range == S_POSITIVE) ok = x > 0 && (float)x > 0;
    if (ok && range == S_NONNEG) ok = x >= 0;
    if (ok && range == S_UNIT) ok = x >= 0 && (float)x < 1;
    if (ok) {
      *out = (float)x;
      return 0;
    }
  }
  char got[80];
  return s_fail(c, v, "%s: expected a number %s, got %s", label, desc[range],
                s_got(v, got, sizeof got));
}

static int s_bool(s_ctx_t *c, const s_node_t *v, const char *label, int *out) {
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                    "YES",  "on",   "On",   "ON",  NULL};
  static const char *const no[] = {"false", "False", "FALSE", "no",  "No",
                                   "NO",    "off",   "Off",   "OFF", NULL};
  if (v->type == S_SCALAR && s_in_list(v->str, yes)) {
    *out = 1;
    return 0;
  }
  if (v->type == S_SCALAR && s_in_list(v->str, no)) {
    *out = 0;
    return 0;
  }
  char got[80];
  return s_fail(c, v, "%s: expected true or false, got %s", label, s_got(v, got, sizeof got));
}

// Index of the scalar in names (NULL-terminated).
static int s_enum(s_ctx_t *c, const s_node_t *v, const char *label, const char *const *names,
                  int *out) {
  if (v->type == S_SCALAR)
    for (int i = 0; names[i]; i++)
      if (!strcmp(v->str, names[i])) {
        *out = i;
        return 0;
      }
  char list[256], got[80];
  return s_fail(c, v, "%s: expected one of %s, got %s", label, s_join(list, sizeof list, names),
                s_got(v, got, sizeof got));
}

// A non-empty string without control characters that fits in dst.
static int s_str(s_ctx_t *c, const s_node_t *v, const char *label, char *dst, size_t cap) {
  if (v->type == S_SCALAR && !s_is_null(v) && strlen(v->str) < cap) {
    int ok = 1;
    for (const char *s = v->str; *s; s++) ok &= (unsigned char)*s >= 0x20 && *s != 0x7f;
    if (ok) {
      snprintf(dst, cap, "%s", v->str);
      return 0;
    }
  }
  char got[80];
  return s_fail(c, v, "%s: expected text of 1..%zu characters, got %s", label, cap - 1,
                s_got(v, got, sizeof got));
}

// 1..FFS_NAME_MAX-1 characters of [A-Za-z0-9_-] (plus '.' when dot).
static int s_name_ok(const char *s, int dot) {
  size_t n = strlen(s);
  if (n < 1 || n >= FFS_NAME_MAX) return 0;
  for (; *s; s++) {
    char ch = *s;
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == '-' || (dot && ch == '.');
    if (!ok) return 0;
  }
  return 1;
}

static int s_name(s_ctx_t *c, const s_node_t *v, const char *label, int dot, char *dst) {
  if (v->type == S_SCALAR && !s_is_null(v) && s_name_ok(v->str, dot)) {
    snprintf(dst, FFS_NAME_MAX, "%s", v->str);
    return 0;
  }
  char got[80];
  return s_fail(c, v, "%s: expected 1..%d characters of A-Z a-z 0-9 _ -%s, got %s", label,
                FFS_NAME_MAX - 1, dot ? " ." : "", s_got(v, got, sizeof got));
}

// Fails on the first key of map that is not in keys. label may be NULL.
static int s_check_keys(s_ctx_t *c, const s_node_t *map, const char *label,
                        const char *const *keys) {
  for (int i = 0; i + 1 < map->n; i += 2) {
    const s_node_t *k = map->kids[i];
    if (s_in_list(k->str, keys)) continue;
    char list[512], key[64];
    s_clip(key, sizeof key, k->str);
    return s_fail(c, k, "%s%sunknown key '%s' (expected one of: %s)", label ? label : "",
                  label ? ": " : "", key, s_join(list, sizeof list, keys));
  }
  return 0;
}

// The mapping under root[key], or NULL (absent or empty: all defaults).
static int s_block(s_ctx_t *c, const s_node_t *root, const char *key, const char *const *keys,
                   const s_node_t **map_p) {
  *map_p = NULL;
  const s_node_t *v = s_map_get(root, key);
  if (!v || s_is_null(v)) return 0;
  if (v->type != S_MAP) {
    char list[256], got[80];
    return s_fail(c, v, "%s: expected a mapping of keys (%s), got %s", key,
                  s_join(list, sizeof list, keys), s_got(v, got, sizeof got));
  }
  if (s_check_keys(c, v, key, keys) < 0) return -1;
  *map_p = v;
  return 0;
}

// ---- overrides ----

// Sets map[key] = val, adding the key when absent. Takes val in every case.
static int s_map_set(s_ctx_t *c, s_node_t *map, const char *key, s_node_t *val,
                     const char *origin) {
  int slot = s_map_find(map, key);
  if (slot >= 0) {
    s_node_free(map->kids[slot + 1]);
    map->kids[slot + 1] = val;
    return 0;
  }
  s_node_t *k = s_scalar_new(c, key, strlen(key), 1, 0, origin);
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

// The stage mapping in root.stages whose name is name, or NULL.
static s_node_t *s_find_stage_node(const s_node_t *root, const char *name) {
  const s_node_t *stages = s_map_get(root, "stages");
  if (!stages || stages->type != S_SEQ) return NULL;
  for (int i = 0; i < stages->n; i++) {
    s_node_t *st = stages->kids[i];
    const s_node_t *v = s_map_get(st, "name");
    if (v && v->type == S_SCALAR && !strcmp(v->str, name)) return st;
  }
  return NULL;
}

// Applies one "KEY=VALUE" to the tree. KEY is a top-level key, BLOCK.KEY or
// STAGE.KEY; VALUE is read as YAML so "[l2, l3]" is a sequence. The new
// nodes carry ov as their origin, so validation errors name the override.
static int s_apply_override(s_ctx_t *c, s_node_t *root, const char *ov) {
  static const char *const usage = "expected KEY=VALUE where KEY is a top-level key, BLOCK.KEY "
                                   "or STAGE.KEY (e.g. seed=2, train.epochs=3, l1.units=500)";
  const char *eq = strchr(ov, '=');
  char key[128];
  size_t klen = eq ? (size_t)(eq - ov) : 0;
  if (!eq || klen == 0 || klen >= sizeof key) return s_failf(c, ov, 0, "%s", usage);
  memcpy(key, ov, klen);
  key[klen] = 0;
  for (size_t i = 0; i < klen; i++) { // keys and stage names are all words, so
    char one[2] = {key[i], 0};        // the key is safe to echo in messages
    if (!s_name_ok(one, 1)) return s_failf(c, ov, 0, "%s", usage);
  }
  char *sub = strchr(key, '.');
  if (sub) {
    *sub++ = 0;
    if (!*key || !*sub || strchr(sub, '.')) return s_failf(c, ov, 0, "%s", usage);
  }
  s_node_t *target = NULL; // the mapping that receives the key
  const char *tkey = sub ? sub : key;
  if (s_in_list(key, s_top_keys)) {
    if (!sub) {
      target = root;
    } else if (!s_in_list(key, s_block_keys)) {
      char list[128];
      return s_failf(c, ov, 0, "'%s' is not a block (blocks: %s; a stage is addressed by its name)",
                     key, s_join(list, sizeof list, s_block_keys));
    } else {
      int slot = s_map_find(root, key);
      if (slot < 0 || s_is_null(root->kids[slot + 1])) { // absent block: make it
        s_node_t *m = s_node_new(c, S_MAP, 0, ov);
        if (!m || s_map_set(c, root, key, m, ov) < 0) return -1;
        slot = s_map_find(root, key);
      }
      target = root->kids[slot + 1];
      if (target->type != S_MAP) {
        char where[128];
        return s_failf(c, ov, 0, "'%s' (%s) is not a mapping", key,
                       s_where(target, where, sizeof where));
      }
    }
  } else {
    target = s_find_stage_node(root, key);
    if (!target) return s_failf(c, ov, 0, "no stage or top-level block named '%s'", key);
    if (!sub)
      return s_failf(c, ov, 0,
                     "a stage is set one key at a time (expected %s.KEY=VALUE, "
                     "e.g. %s.units=500)",
                     key, key);
  }
  s_node_t *val = NULL;
  if (s_parse(c, eq + 1, strlen(eq + 1), ov, &val) < 0) return -1;
  if (!val && !(val = s_scalar_new(c, "", 0, 1, 0, ov))) return -1; // "KEY=" is an empty value
  return s_map_set(c, target, tkey, val, ov);
}

// ---- validation: blocks ----

// "prefix" + "key" into buf, for messages.
static const char *s_label(char *buf, size_t cap, const char *prefix, const char *key) {
  snprintf(buf, cap, "%s%s", prefix, key);
  return buf;
}

// Reads the layer keys present in m (a `layer:` block or a stage) over l.
// prefix starts each label: "layer." or "stage 'l1': ".
static int s_layer(s_ctx_t *c, const s_node_t *m, const char *prefix, ffs_layer_cfg_t *l) {
  const struct {
    const char *key;
    int range;
    float *dst;
  } nums[] = {{"theta", S_NONNEG, &l->theta},
              {"temp", S_POSITIVE, &l->temp},
              {"lr", S_POSITIVE, &l->lr},
              {"momentum", S_UNIT, &l->momentum},
              {"weight_decay", S_NONNEG, &l->weight_decay},
              {"peer_lambda", S_NONNEG, &l->peer_lambda},
              {"peer_decay", S_UNIT, &l->peer_decay},
              {"eval_average", S_UNIT, &l->eval_average}};
  char label[96];
  const s_node_t *v;
  int e;
  if ((v = s_map_get(m, "goodness"))) {
    if (s_enum(c, v, s_label(label, sizeof label, prefix, "goodness"), s_goodness_names, &e) < 0)
      return -1;
    l->goodness = (ffs_goodness_t)e;
  }
  if ((v = s_map_get(m, "optimizer"))) {
    if (s_enum(c, v, s_label(label, sizeof label, prefix, "optimizer"), s_opt_names, &e) < 0)
      return -1;
    l->opt = (ffs_opt_kind_t)e;
  }
  if ((v = s_map_get(m, "cooldown")) &&
      s_bool(c, v, s_label(label, sizeof label, prefix, "cooldown"), &l->cooldown) < 0)
    return -1;
  if ((v = s_map_get(m, "update"))) {
    if (s_enum(c, v, s_label(label, sizeof label, prefix, "update"), s_update_names, &e) < 0)
      return -1;
    l->update = (ffs_update_t)e;
  }
  for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
    if (!(v = s_map_get(m, nums[i].key))) continue;
    s_label(label, sizeof label, prefix, nums[i].key);
    if (s_num(c, v, label, nums[i].range, nums[i].dst) < 0) return -1;
  }
  return 0;
}

// Run name from the file name: the stem, with characters a name may not hold
// replaced by '_' ("configs/mnist-ff.yaml" -> "mnist-ff").
static void s_default_name(const char *path, char *dst) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot > base ? (size_t)(dot - base) : strlen(base);
  if (n > FFS_NAME_MAX - 1) n = FFS_NAME_MAX - 1;
  for (size_t i = 0; i < n; i++) {
    char one[2] = {base[i], 0};
    dst[i] = s_name_ok(one, 1) ? base[i] : '_';
  }
  dst[n] = 0;
  if (!n) snprintf(dst, FFS_NAME_MAX, "run");
}

// name, seed, transport, tcp, data, train, layer. *dim gets data.dim.
// train.labels and the recurrent keys: ticks, timing, damping, score_ticks.
static int s_recurrent(s_ctx_t *c, const s_node_t *m, ffs_topo_t *t) {
  const s_node_t *v;
  char got[80];
  int e;
  t->labels = FFS_LABELS_OVERLAY;
  t->ticks = 1;
  t->timing = FFS_TIMING_LOCKSTEP;
  t->damping = 0.7f;
  if ((v = s_map_get(m, "labels"))) {
    if (s_enum(c, v, "train.labels", s_labels_names, &e) < 0) return -1;
    t->labels = (ffs_labels_t)e;
  }
  if ((v = s_map_get(m, "ticks")) && s_int(c, v, "train.ticks", 1, 64, &t->ticks) < 0) return -1;
  if ((v = s_map_get(m, "timing"))) {
    if (s_enum(c, v, "train.timing", s_timing_names, &e) < 0) return -1;
    t->timing = (ffs_timing_t)e;
  }
  if ((v = s_map_get(m, "damping"))) {
    if (s_num(c, v, "train.damping", S_POSITIVE, &t->damping) < 0) return -1;
    if (t->damping > 1.0f)
      return s_fail(c, v, "train.damping: %g is above 1 (expected the weight of the newly "
                    "computed state, in (0, 1])", (double)t->damping);
  }
  // Hinton scores ticks 3..5 of 8: the middle of the run, after the top-down
  // signal has settled in
  t->score_from = (3 * t->ticks) / 8, t->score_to = (5 * t->ticks) / 8;
  if ((v = s_map_get(m, "score_ticks"))) {
    if (v->type != S_SEQ || v->n != 2)
      return s_fail(c, v, "train.score_ticks: expected [first, last], two tick numbers, got %s",
                    s_got(v, got, sizeof got));
    if (s_int(c, v->kids[0], "train.score_ticks[0]", 0, t->ticks - 1, &t->score_from) < 0 ||
        s_int(c, v->kids[1], "train.score_ticks[1]", t->score_from, t->ticks - 1,
              &t->score_to) < 0)
      return -1;
  }
  return 0;
}

static int s_top(s_ctx_t *c, const s_node_t *root, ffs_topo_t *t, int *dim) {
  const s_node_t *m, *v;
  int e;
  s_default_name(t->path, t->name);
  if ((v = s_map_get(root, "name")) && s_name(c, v, "name", 1, t->name) < 0) return -1;
  t->seed = 1;
  if ((v = s_map_get(root, "seed")) && s_u64(c, v, "seed", &t->seed) < 0) return -1;
  if ((v = s_map_get(root, "transport"))) {
    if (s_enum(c, v, "transport", s_transport_names, &e) < 0) return -1;
    t->transport = (ffs_transport_t)e;
  }
  t->shm = 1;
  if ((v = s_map_get(root, "shm")) && s_bool(c, v, "shm", &t->shm) < 0) return -1;

  if (s_block(c, root, "tcp", s_tcp_keys, &m) < 0) return -1;
  snprintf(t->tcp_host, sizeof t->tcp_host, "127.0.0.1");
  t->tcp_port = 5570;
  if ((v = s_map_get(m, "host")) && s_str(c, v, "tcp.host", t->tcp_host, sizeof t->tcp_host) < 0)
    return -1;
  if ((v = s_map_get(m, "port")) && s_int(c, v, "tcp.port", 1024, 65000, &t->tcp_port) < 0)
    return -1;

  if (s_block(c, root, "data", s_data_keys, &m) < 0) return -1;
  e = 0;
  if ((v = s_map_get(m, "set")) && s_enum(c, v, "data.set", s_set_names, &e) < 0) return -1;
  snprintf(t->data_set, sizeof t->data_set, "%s", s_set_names[e]);
  snprintf(t->data_dir, sizeof t->data_dir, "data/%s", s_set_names[e]);
  if ((v = s_map_get(m, "dir")) && s_str(c, v, "data.dir", t->data_dir, sizeof t->data_dir) < 0)
    return -1;
  *dim = 784;
  if ((v = s_map_get(m, "dim")) && s_int(c, v, "data.dim", 1, 1 << 20, dim) < 0) return -1;
  if ((v = s_map_get(m, "train_limit")) &&
      s_int(c, v, "data.train_limit", 0, INT_MAX, &t->train_limit) < 0)
    return -1;
  if ((v = s_map_get(m, "test_limit")) &&
      s_int(c, v, "data.test_limit", 0, INT_MAX, &t->test_limit) < 0)
    return -1;

  if (s_block(c, root, "train", s_train_keys, &m) < 0) return -1;
  t->epochs = 10;
  t->batch = 100;
  t->eval_batch = 100;
  t->eval_every = 1;
  t->negatives = FFS_NEG_RANDOM;
  t->hwm_frames = 4;
  t->ckpt_every_s = 10;
  if ((v = s_map_get(m, "epochs")) && s_int(c, v, "train.epochs", 1, INT_MAX, &t->epochs) < 0)
    return -1;
  if ((v = s_map_get(m, "batch")) && s_int(c, v, "train.batch", 1, 10000, &t->batch) < 0) return -1;
  if ((v = s_map_get(m, "eval_batch")) &&
      s_int(c, v, "train.eval_batch", 1, 1000, &t->eval_batch) < 0)
    return -1;
  if ((v = s_map_get(m, "eval_every")) &&
      s_int(c, v, "train.eval_every", 1, INT_MAX, &t->eval_every) < 0)
    return -1;
  if ((v = s_map_get(m, "negatives"))) {
    if (s_enum(c, v, "train.negatives", s_negatives_names, &e) < 0) return -1;
    t->negatives = (ffs_negatives_t)e;
  }
  if ((v = s_map_get(m, "pairs")) && s_bool(c, v, "train.pairs", &t->pairs) < 0) return -1;
  if ((v = s_map_get(m, "triples")) && s_bool(c, v, "train.triples", &t->triples) < 0) return -1;
  if (t->triples) t->pairs = 1; // a triple frame is a pair frame with the neutral rows
  if ((v = s_map_get(m, "hwm_frames")) &&
      s_int(c, v, "train.hwm_frames", 1, 1024, &t->hwm_frames) < 0)
    return -1;
  if ((v = s_map_get(m, "ckpt_every_s")) &&
      s_int(c, v, "train.ckpt_every_s", 0, 86400, &t->ckpt_every_s) < 0)
    return -1;
  if ((v = s_map_get(m, "pace_us")) && s_int(c, v, "train.pace_us", 0, 1000000, &t->pace_us) < 0)
    return -1;
  if (s_recurrent(c, m, t) < 0) return -1;

  if (s_block(c, root, "layer", s_layer_keys, &m) < 0) return -1;
  t->layer = (ffs_layer_cfg_t){.goodness = FFS_GOODNESS_SSQ,
                               .theta = 0.0f,
                               .temp = 1.0f,
                               .opt = FFS_OPT_SGD,
                               .lr = 0.01f,
                               .momentum = 0.9f,
                               .weight_decay = 0.001f,
                               .cooldown = 1,
                               .peer_lambda = 0.03f,
                               .peer_decay = 0.9f};
  return s_layer(c, m, "layer.", &t->layer);
}

// ---- validation: stages ----

// "stage 'l1'" once the name is known, else "stage 3" (1-based).
static const char *s_who(const ffs_topo_t *t, int i, char *buf, size_t cap) {
  if (t->stages[i].name[0])
    snprintf(buf, cap, "stage '%s'", t->stages[i].name);
  else
    snprintf(buf, cap, "stage %d", i + 1);
  return buf;
}

// Names of the stages of a kind, "l1, l2, l3", for "expected" lists.
static const char *s_names_of(const ffs_topo_t *t, ffs_stage_kind_t kind, char *buf, size_t cap) {
  const char *names[FFS_MAX_STAGES + 1];
  int n = 0;
  for (int i = 0; i < t->n_stages; i++)
    if (t->stages[i].kind == kind) names[n++] = t->stages[i].name;
  names[n] = NULL;
  return s_join(buf, cap, names);
}

// One stage entry: name, kind, keys allowed for that kind, values. energy
// and softmax are resolved later (they name stages that may come after).
static int s_stage(s_ctx_t *c, const s_node_t *stages, ffs_topo_t *t, int i) {
  const s_node_t *item = stages->kids[i];
  ffs_stage_cfg_t *st = &t->stages[i];
  char who[64], label[96], got[80], where[128];
  const s_node_t *v;
  int e;
  st->line = item->line;
  st->core = -1;
  st->td_from = -1;
  st->layer = t->layer;
  st->n_shards = 1, st->group = i, st->layer_index = i;
  s_who(t, i, who, sizeof who);
  if (item->type != S_MAP)
    return s_fail(c, item, "%s: expected a mapping with at least name and kind, got %s", who,
                  s_got(item, got, sizeof got));

  if (!(v = s_map_get(item, "name")))
    return s_fail(c, item, "%s: missing required key 'name'", who);
  snprintf(label, sizeof label, "%s: name", who);
  if (s_name(c, v, label, 0, st->name) < 0) return -1;
  if (s_in_list(st->name, s_top_keys))
    return s_fail(c, v,
                  "stage '%s': the name is reserved, it is a top-level key (--set %s.KEY "
                  "could not address the stage)",
                  st->name, st->name);
  for (int j = 0; j < i; j++)
    if (!strcmp(t->stages[j].name, st->name))
      return s_fail(c, v, "stage '%s': duplicate stage name (first at %s; names must be unique)",
                    st->name, s_where(s_map_get(stages->kids[j], "name"), where, sizeof where));
  s_who(t, i, who, sizeof who);
  snprintf(st->layer_name, sizeof st->layer_name, "%s", st->name);

  if (!(v = s_map_get(item, "kind")))
    return s_fail(c, item,
                  "%s: missing required key 'kind' (expected one of source, ff_layer, "
                  "readout)",
                  who);
  snprintf(label, sizeof label, "%s: kind", who);
  if (s_enum(c, v, label, s_kind_names, &e) < 0) return -1;
  st->kind = (ffs_stage_kind_t)e;

  const char *const *keys = s_stage_keys[st->kind];
  for (int k = 0; k + 1 < item->n; k += 2) {
    const s_node_t *key = item->kids[k];
    if (s_in_list(key->str, keys)) continue;
    char list[512], name[64];
    s_clip(name, sizeof name, key->str);
    s_join(list, sizeof list, keys);
    for (int other = 0; other < 3; other++)
      if (s_in_list(key->str, s_stage_keys[other]))
        return s_fail(c, key, "%s: key '%s' does not apply to a %s (expected one of: %s)", who,
                      name, s_kind_names[st->kind], list);
    return s_fail(c, key, "%s: unknown key '%s' (expected one of: %s)", who, name, list);
  }

  snprintf(label, sizeof label, "%s: core", who);
  if ((v = s_map_get(item, "core")) && s_int(c, v, label, 0, 65535, &st->core) < 0) return -1;
  if (st->kind == FFS_STAGE_FF_LAYER) {
    if (!(v = s_map_get(item, "units")))
      return s_fail(c, item,
                    "%s: missing required key 'units' (an ff_layer needs units: "
                    "1..65536)",
                    who);
    snprintf(label, sizeof label, "%s: units", who);
    if (s_int(c, v, label, 1, 65536, &st->units) < 0) return -1;
    snprintf(label, sizeof label, "%s: ", who);
    if (s_layer(c, item, label, &st->layer) < 0) return -1;
    snprintf(label, sizeof label, "%s: delay_ms", who);
    if ((v = s_map_get(item, "delay_ms")) && s_int(c, v, label, 0, 10000, &st->delay_ms) < 0)
      return -1;
    snprintf(label, sizeof label, "%s: shards", who);
    if ((v = s_map_get(item, "shards")) &&
        s_int(c, v, label, 1, FFS_MAX_SHARDS, &st->n_shards) < 0)
      return -1;
    if (st->n_shards > st->units)
      return s_fail(c, v, "%s: shards: %d shards of %d units leave a shard without units "
                    "(expected at most %d)", who, st->n_shards, st->units, st->units);
  }
  if (st->kind == FFS_STAGE_READOUT) {
    st->softmax_lr = 0.01f;
    st->primary = FFS_INFER_ENERGY;
    snprintf(label, sizeof label, "%s: softmax_lr", who);
    if ((v = s_map_get(item, "softmax_lr")) && s_num(c, v, label, S_POSITIVE, &st->softmax_lr) < 0)
      return -1;
    snprintf(label, sizeof label, "%s: primary", who);
    if ((v = s_map_get(item, "primary"))) {
      if (s_enum(c, v, label, s_infer_names, &e) < 0) return -1;
      st->primary = (ffs_infer_t)e;
    }
  }
  return 0;
}

// A readout's energy / softmax list: distinct ff_layer names; at least one
// unless allow_empty (energy: [] switches energy inference off).
static int s_layer_list(s_ctx_t *c, const ffs_topo_t *t, const s_node_t *v, const char *who,
                        const char *key, int allow_empty, int *idx, int *n_out) {
  char names[512], got[80], name[64];
  s_names_of(t, FFS_STAGE_FF_LAYER, names, sizeof names);
  if (v->type == S_SEQ && v->n == 0 && allow_empty) {
    *n_out = 0;
    return 0;
  }
  if (v->type != S_SEQ || v->n == 0)
    return s_fail(c, v, "%s: %s: expected a non-empty list of ff_layer names like [%s], got %s",
                  who, key, names, s_got(v, got, sizeof got));
  int n = 0;
  for (int i = 0; i < v->n; i++) {
    const s_node_t *it = v->kids[i];
    if (it->type != S_SCALAR)
      return s_fail(c, it, "%s: %s: expected an ff_layer name (one of: %s), got %s", who, key,
                    names, s_got(it, got, sizeof got));
    s_clip(name, sizeof name, it->str);
    int j = ffs_topo_find(t, it->str);
    if (j < 0)
      return s_fail(c, it, "%s: %s: no stage named '%s' (expected ff_layers: %s)", who, key, name,
                    names);
    if (t->stages[j].kind != FFS_STAGE_FF_LAYER)
      return s_fail(c, it, "%s: %s: '%s' is a %s, not an ff_layer (expected ff_layers: %s)", who,
                    key, name, ffs_stage_kind_str(t->stages[j].kind), names);
    for (int k = 0; k < n; k++)
      if (idx[k] == j) return s_fail(c, it, "%s: %s: '%s' is listed twice", who, key, name);
    idx[n++] = j; // distinct ff_layers, so n stays < FFS_MAX_STAGES
  }
  *n_out = n;
  return 0;
}

// The order rules: one source, first; one readout, last; ff_layers between.
static int s_graph(s_ctx_t *c, const s_node_t *stages, const ffs_topo_t *t) {
  int n = t->n_stages, src = -1, out = -1;
  char where[128];
  for (int i = 0; i < n; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    const s_node_t *at = stages->kids[i];
    if (st->kind == FFS_STAGE_SOURCE) {
      if (src >= 0)
        return s_fail(c, at,
                      "stage '%s': a second source (the first is '%s' at %s; expected "
                      "exactly one source, the first stage)",
                      st->name, t->stages[src].name,
                      s_where(stages->kids[src], where, sizeof where));
      src = i;
    }
    if (st->kind == FFS_STAGE_READOUT) {
      if (out >= 0)
        return s_fail(c, at,
                      "stage '%s': a second readout (the first is '%s' at %s; expected "
                      "exactly one readout, the last stage)",
                      st->name, t->stages[out].name,
                      s_where(stages->kids[out], where, sizeof where));
      out = i;
    }
  }
  if (src < 0)
    return s_fail(c, stages->kids[0],
                  "stages: no source (expected the first stage to have "
                  "kind: source)");
  if (src != 0)
    return s_fail(c, stages->kids[src],
                  "stage '%s': the source must be the first stage (it is "
                  "stage %d of %d)",
                  t->stages[src].name, src + 1, n);
  if (out < 0)
    return s_fail(c, stages->kids[n - 1],
                  "stages: no readout (expected the last stage to have "
                  "kind: readout)");
  if (out != n - 1)
    return s_fail(c, stages->kids[out],
                  "stage '%s': the readout must be the last stage (it is "
                  "stage %d of %d)",
                  t->stages[out].name, out + 1, n);
  return 0; // n >= 3, so at least one stage lies between, and it is an ff_layer
}

static int s_stages(s_ctx_t *c, const s_node_t *root, ffs_topo_t *t, int dim) {
  const s_node_t *stages = s_map_get(root, "stages");
  char got[80], who[64];
  if (!stages)
    return s_fail(c, root,
                  "missing required key 'stages' (expected a sequence: the source, one "
                  "or more ff_layers, the readout)");
  if (stages->type != S_SEQ)
    return s_fail(c, stages,
                  "stages: expected a sequence of stages (the source, one or more "
                  "ff_layers, the readout), got %s",
                  s_got(stages, got, sizeof got));
  if (stages->n > FFS_MAX_STAGES)
    return s_fail(c, stages->kids[FFS_MAX_STAGES],
                  "stages: more than %d stages (expected at "
                  "most %d)",
                  FFS_MAX_STAGES, FFS_MAX_STAGES);
  for (int i = 0; i < stages->n; i++) {
    if (s_stage(c, stages, t, i) < 0) return -1;
    t->n_stages = i + 1;
  }
  if (stages->n < 3)
    return s_fail(c, stages,
                  "stages: expected at least 3 stages (the source, one or more "
                  "ff_layers, the readout), got %d",
                  stages->n);
  if (s_graph(c, stages, t) < 0) return -1;

  // derived dimensions: each stage eats the previous stage's rows
  int n = t->n_stages, n_ff = 0, ff[FFS_MAX_STAGES];
  for (int i = 0; i < n; i++) {
    ffs_stage_cfg_t *st = &t->stages[i];
    if (st->kind == FFS_STAGE_SOURCE) st->out_dim = dim;
    if (st->kind == FFS_STAGE_FF_LAYER) {
      st->in_dim = t->stages[i - 1].out_dim;
      st->out_dim = st->units;
      ff[n_ff++] = i;
    }
  }

  // the readout's lists: default all ff_layers but the first (all if only one)
  ffs_stage_cfg_t *ro = &t->stages[n - 1];
  const s_node_t *item = stages->kids[n - 1], *v;
  s_who(t, n - 1, who, sizeof who);
  int skip = n_ff > 1;
  ro->n_energy = ro->n_softmax = n_ff - skip;
  memcpy(ro->energy, ff + skip, (size_t)(n_ff - skip) * sizeof *ff);
  memcpy(ro->softmax, ff + skip, (size_t)(n_ff - skip) * sizeof *ff);
  if ((v = s_map_get(item, "energy")) &&
      s_layer_list(c, t, v, who, "energy", 1, ro->energy, &ro->n_energy) < 0)
    return -1;
  if ((v = s_map_get(item, "softmax")) &&
      s_layer_list(c, t, v, who, "softmax", 0, ro->softmax, &ro->n_softmax) < 0)
    return -1;
  return 0;
}

// ---- validation: feedback edges ----

static int s_feedback(s_ctx_t *c, const s_node_t *root, ffs_topo_t *t) {
  const s_node_t *fb = s_map_get(root, "feedback");
  char got[80], who[64], names[1024], where[128];
  if (!fb || s_is_null(fb)) return 0;
  if (fb->type != S_SEQ)
    return s_fail(c, fb, "feedback: expected a sequence of edges (- from: l2 / to: l1), got %s",
                  s_got(fb, got, sizeof got));
  if (fb->n > FFS_MAX_FEEDBACK)
    return s_fail(c, fb->kids[FFS_MAX_FEEDBACK],
                  "feedback: more than %d edges (expected at "
                  "most %d)",
                  FFS_MAX_FEEDBACK, FFS_MAX_FEEDBACK);
  const char *all[FFS_MAX_STAGES + 1];
  for (int i = 0; i < t->n_stages; i++) all[i] = t->stages[i].name;
  all[t->n_stages] = NULL;
  s_join(names, sizeof names, all);
  for (int i = 0; i < fb->n; i++) {
    const s_node_t *item = fb->kids[i];
    snprintf(who, sizeof who, "feedback %d", i + 1);
    if (item->type != S_MAP)
      return s_fail(c, item, "%s: expected a mapping with from and to, got %s", who,
                    s_got(item, got, sizeof got));
    if (s_check_keys(c, item, who, s_feedback_keys) < 0) return -1;
    int end[2];
    for (int k = 0; k < 2; k++) {
      const char *key = s_feedback_keys[k];
      const s_node_t *v = s_map_get(item, key);
      if (!v)
        return s_fail(c, item, "%s: missing required key '%s' (expected a stage name: %s)", who,
                      key, names);
      end[k] = v->type == S_SCALAR ? ffs_topo_find(t, v->str) : -1;
      if (end[k] < 0)
        return s_fail(c, v, "%s: %s: no stage named %s (expected one of: %s)", who, key,
                      s_got(v, got, sizeof got), names);
    }
    const char *from = t->stages[end[0]].name, *to = t->stages[end[1]].name;
    // from later than to implies the kinds: the source is first and the
    // readout last, so from is an ff_layer or the readout, to the source or
    // an ff_layer
    if (end[0] <= end[1])
      return s_fail(c, item,
                    "feedback %s -> %s: 'from' must be a later stage than 'to' "
                    "(feedback flows backward, from a later stage to an earlier one)",
                    from, to);
    for (int j = 0; j < i; j++)
      if (t->feedback[j].from == end[0] && t->feedback[j].to == end[1])
        return s_fail(c, item, "feedback %s -> %s: duplicate edge (first at %s)", from, to,
                      s_where(fb->kids[j], where, sizeof where));
    t->feedback[i] = (ffs_feedback_cfg_t){.from = end[0], .to = end[1], .line = item->line};
    t->n_feedback = i + 1;
  }
  return 0;
}

// ---- validation: labels and recurrent loops ----

// FFCL label weights and the recurrent form: what each needs, and the
// top-down input every ff_layer gets in the recurrent form (one edge from
// an ff_layer above it at most).
static int s_validate_loops(s_ctx_t *c, const s_node_t *root, ffs_topo_t *t) {
  const s_node_t *train = s_map_get(root, "train");
  if (t->labels == FFS_LABELS_SEPARATE && t->negatives == FFS_NEG_HYBRID)
    return s_fail(c, s_map_get(train, "labels"),
                  "train.labels: separate gives each layer the label, but hybrid negatives are "
                  "unsupervised and carry none (expected labels: overlay, or negatives: random "
                  "| hard)");
  if (t->ticks == 1) return 0;
  if (t->pairs) {
    const char *key = t->triples ? "triples" : "pairs";
    return s_fail(c, s_map_get(train, key),
                  "train.%s: the recurrent form (ticks > 1) sends positive and negative "
                  "frames tick by tick, never as one %s frame (expected %s: false, or "
                  "ticks: 1)", key, key[0] == 'p' ? "pair" : "triple", key);
  }
  if (t->labels == FFS_LABELS_SEPARATE)
    return s_fail(c, s_map_get(train, "ticks"),
                  "train.ticks: the recurrent form (ticks > 1) is not implemented together with "
                  "labels: separate (expected ticks: 1, or labels: overlay)");
  int loops = 0;
  for (int k = 0; k < t->n_feedback; k++) {
    const ffs_feedback_cfg_t *e = &t->feedback[k];
    ffs_stage_cfg_t *to = &t->stages[e->to], *from = &t->stages[e->from];
    if (to->kind != FFS_STAGE_FF_LAYER) continue;
    if (from->kind != FFS_STAGE_FF_LAYER)
      return s_failf(c, NULL, e->line,
                     "feedback %s -> %s: with train.ticks > 1 an ff_layer's feedback is its "
                     "top-down input, so it must come from an ff_layer (expected from: one of "
                     "the ff_layers after %s)",
                     from->name, to->name, to->name);
    if (to->td_from >= 0)
      return s_failf(c, NULL, e->line,
                     "feedback %s -> %s: %s already takes top-down input from %s; the recurrent "
                     "form allows one edge into each ff_layer",
                     from->name, to->name, to->name, t->stages[to->td_from].name);
    to->td_from = e->from;
    to->td_dim = from->units;
    loops++;
  }
  // a lockstep layer waits on its upper neighbour, which must never be more
  // than the readout's join window (16 reports) ahead of it
  if (t->timing == FFS_TIMING_LOCKSTEP && t->hwm_frames > 8)
    return s_fail(c, s_map_get(train, "hwm_frames"),
                  "train.hwm_frames: %d is too deep for a lockstep recurrent run (expected at "
                  "most 8: a layer waiting for its top-down vector must not fall more than the "
                  "readout's 16-frame join window behind the layer above)",
                  t->hwm_frames);
  if (!loops)
    return s_fail(c, s_map_get(train, "ticks"),
                  "train.ticks: %d ticks need at least one top-down feedback edge between "
                  "ff_layers (expected e.g. feedback: - {from: l2, to: l1})",
                  t->ticks);
  return 0;
}

// ---- sharded layers ----

// Expands every ff_layer with shards: k > 1 into k consecutive stages named
// <name>.0 .. <name>.<k-1>, each owning a contiguous slice of the units, and
// renumbers the readout's lists and the feedback edges. What sharding does
// not support yet is refused here, by the line of its `shards` key.
static int s_expand_shards(s_ctx_t *c, const s_node_t *root, ffs_topo_t *t) {
  const s_node_t *stages = s_map_get(root, "stages");
  int total = 0, any = 0;
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    total += st->n_shards;
    if (st->n_shards == 1) continue;
    any = 1;
    const s_node_t *at = s_map_get(stages->kids[i], "shards");
    if (t->ticks > 1 || t->labels == FFS_LABELS_SEPARATE)
      return s_fail(c, at,
                    "stage '%s': shards: a layer cannot be sharded in %s yet (expected "
                    "shards: 1, or train.ticks: 1 and train.labels: overlay)",
                    st->name,
                    t->ticks > 1 ? "the recurrent form (train.ticks > 1)"
                                 : "the FFCL form (train.labels: separate)");
    for (int k = 0; k < t->n_feedback; k++) {
      const ffs_feedback_cfg_t *e = &t->feedback[k];
      if (e->from == i || e->to == i)
        return s_failf(c, NULL, e->line,
                       "feedback %s -> %s: '%s' is sharded (shards: %d) and a sharded layer "
                       "cannot start or end a feedback edge yet (expected shards: 1 on '%s', "
                       "or no such edge)",
                       t->stages[e->from].name, t->stages[e->to].name, st->name, st->n_shards,
                       st->name);
    }
    if (strlen(st->name) + (st->n_shards > 10 ? 3 : 2) >= FFS_NAME_MAX)
      return s_fail(c, at,
                    "stage '%s': shards: its shards' names (%s.0 ...) would be longer than %d "
                    "characters (expected a shorter stage name)",
                    st->name, st->name, FFS_NAME_MAX - 1);
  }
  if (!any) return 0;
  if (total > FFS_MAX_STAGES)
    return s_fail(c, stages,
                  "stages: with their shards the stages make %d processes (expected at most %d)",
                  total, FFS_MAX_STAGES);
  ffs_stage_cfg_t old[FFS_MAX_STAGES];
  int first[FFS_MAX_STAGES], n_old = t->n_stages, n = 0;
  memcpy(old, t->stages, sizeof(ffs_stage_cfg_t) * (size_t)n_old);
  for (int i = 0; i < n_old; i++) {
    const ffs_stage_cfg_t *o = &old[i];
    first[i] = n;
    for (int k = 0; k < o->n_shards; k++, n++) {
      ffs_stage_cfg_t *st = &t->stages[n];
      *st = *o;
      st->group = first[i], st->shard = k;
      if (o->n_shards == 1) continue;
      int base = o->units / o->n_shards, extra = o->units % o->n_shards;
      size_t len = strlen(o->name); // checked above: the suffix fits
      snprintf(st->name + len, sizeof st->name - len, ".%d", k);
      st->units = base + (k < extra);
      st->unit0 = k * base + (k < extra ? k : extra);
      if (o->core >= 0) st->core = o->core + k;
    }
  }
  t->n_stages = n; // stage names hold no '.', so shard names are new ones
  ffs_stage_cfg_t *ro = &t->stages[n - 1];
  for (int k = 0; k < ro->n_energy; k++) ro->energy[k] = first[ro->energy[k]];
  for (int k = 0; k < ro->n_softmax; k++) ro->softmax[k] = first[ro->softmax[k]];
  for (int k = 0; k < t->n_feedback; k++) {
    t->feedback[k].from = first[t->feedback[k].from];
    t->feedback[k].to = first[t->feedback[k].to];
  }
  for (int i = 0; i < n; i++)
    if (t->stages[i].td_from >= 0) t->stages[i].td_from = first[t->stages[i].td_from];
  return 0;
}

// ---- validation: whole file ----

static int s_validate(s_ctx_t *c, const s_node_t *root, ffs_topo_t *t) {
  int dim = 0;
  if (s_check_keys(c, root, NULL, s_top_keys) < 0) return -1;
  if (s_top(c, root, t, &dim) < 0) return -1;
  if (s_stages(c, root, t, dim) < 0) return -1;
  if (s_feedback(c, root, t) < 0) return -1;
  if (t->negatives == FFS_NEG_HARD) {
    // the predictions travel back on a feedback edge readout -> source
    int readout = t->n_stages - 1, edge = 0;
    for (int k = 0; k < t->n_feedback; k++)
      edge |= t->feedback[k].from == readout && t->feedback[k].to == 0;
    const s_node_t *at = s_map_get(s_map_get(root, "train"), "negatives");
    // (the readout's softmax list is never empty, so predictions exist)
    if (!edge)
      return s_fail(c, at,
                    "train.negatives: hard needs a feedback edge from the readout to the source "
                    "(expected feedback: - {from: %s, to: %s})",
                    t->stages[readout].name, t->stages[0].name);
  }
  if (s_validate_loops(c, root, t) < 0) return -1;
  if (s_expand_shards(c, root, t) < 0) return -1;
  const ffs_stage_cfg_t *ro = &t->stages[t->n_stages - 1];
  const s_node_t *ro_node = s_map_get(root, "stages")->kids[t->n_stages - 1];
  if (ro->primary == FFS_INFER_ENERGY && ro->n_energy == 0)
    return s_fail(c, s_map_get(ro_node, "primary") ? s_map_get(ro_node, "primary") : ro_node,
                  "stage '%s': primary: energy needs a non-empty energy list (expected "
                  "primary: softmax, or energy: [layers])", ro->name);
  if (t->negatives == FFS_NEG_HYBRID && ro->n_energy > 0)
    return s_fail(c, s_map_get(ro_node, "energy") ? s_map_get(ro_node, "energy") : ro_node,
                  "stage '%s': hybrid negatives carry no label, so there is no energy to "
                  "compare across labels (expected energy: [] and primary: softmax)", ro->name);
  if (t->transport == FFS_TRANSPORT_TCP) {
    // ffs_topo_endpoint gives each stage (each shard) a block of ports
    long last = (long)t->tcp_port + (long)FFS_TCP_PORTS_PER_STAGE * t->n_stages;
    if (last > 65535) {
      const s_node_t *at = s_map_get(s_map_get(root, "tcp"), "port");
      if (!at) at = s_map_get(root, "transport");
      return s_fail(c, at,
                    "tcp.port: %d leaves too few ports for %d stages (they use ports "
                    "%d..%ld; expected a first port <= %ld)",
                    t->tcp_port, t->n_stages, t->tcp_port, last, 65535 - (last - t->tcp_port));
    }
  }
  return 0;
}

// ---- public API ----

int ffs_topo_load(ffs_topo_t *t, const char *path, const char *const *overrides, int n_overrides,
                  char *err, size_t errlen) {
  assert(t && path && err && errlen > 0);
  assert(n_overrides >= 0 && (overrides || n_overrides == 0));
  s_ctx_t c = {.path = path, .err = err, .errlen = errlen};
  char *buf = NULL;
  size_t len = 0;
  s_node_t *root = NULL;
  int rc = -1;
  memset(t, 0, sizeof *t);
  err[0] = 0;
  if (strlen(path) >= sizeof t->path) {
    s_failf(&c, NULL, 0, "path longer than %zu bytes", sizeof t->path - 1);
    goto fail;
  }
  snprintf(t->path, sizeof t->path, "%s", path);
  if (s_read_file(&c, &buf, &len) < 0) goto fail;
  if (s_parse(&c, buf, len, NULL, &root) < 0) goto fail;
  if (!root || s_is_null(root)) {
    s_failf(&c, NULL, 1, "empty topology file (expected a mapping with at least 'stages')");
    goto fail;
  }
  if (root->type != S_MAP) {
    char list[256], got[80];
    s_fail(&c, root, "top level: expected a mapping of keys (%s), got %s",
           s_join(list, sizeof list, s_top_keys), s_got(root, got, sizeof got));
    goto fail;
  }
  for (int i = 0; i < n_overrides; i++) {
    assert(overrides[i]);
    if (s_apply_override(&c, root, overrides[i]) < 0) goto fail;
  }
  if (s_validate(&c, root, t) < 0) goto fail;
  rc = 0;
fail:
  s_node_free(root);
  free(buf);
  if (rc < 0) memset(t, 0, sizeof *t); // never hand back a half-validated topology
  return rc;
}

int ffs_topo_find(const ffs_topo_t *t, const char *name) {
  assert(t && name);
  for (int i = 0; i < t->n_stages; i++)
    if (!strcmp(t->stages[i].name, name)) return i;
  return -1;
}

const char *ffs_stage_kind_str(ffs_stage_kind_t k) {
  if ((int)k >= 0 && (int)k < 3) return s_kind_names[k];
  return "unknown";
}

void ffs_topo_endpoint(const ffs_topo_t *t, const char *run_dir, int stage, ffs_chan_t chan,
                       int sub, char *out, size_t outlen) {
  assert(t && out && outlen > 0);
  assert(chan == FFS_CHAN_CTL || (stage >= 0 && stage < t->n_stages));
  assert(chan != FFS_CHAN_REP || (sub >= 0 && sub < FFS_MAX_STAGES));
  if (t->transport == FFS_TRANSPORT_TCP) {
    int port = t->tcp_port;
    if (chan != FFS_CHAN_CTL)
      port += 1 + stage * FFS_TCP_PORTS_PER_STAGE +
              (chan == FFS_CHAN_IN     ? 0
               : chan == FFS_CHAN_FB   ? 1
               : chan == FFS_CHAN_PEER ? 2
                                       : 3 + sub);
    snprintf(out, outlen, "tcp://%s:%d", t->tcp_host, port);
    return;
  }
  assert(run_dir);
  const char *scheme = t->transport == FFS_TRANSPORT_INPROC ? "inproc" : "ipc";
  // an ipc path longer than the OS allows (~107) is cut here; the launcher
  // picks run dirs short enough that it never is
  switch (chan) {
  case FFS_CHAN_IN:
    snprintf(out, outlen, "%s://%s/%s.in", scheme, run_dir, t->stages[stage].name);
    break;
  case FFS_CHAN_FB:
    snprintf(out, outlen, "%s://%s/%s.fb", scheme, run_dir, t->stages[stage].name);
    break;
  case FFS_CHAN_REP:
    snprintf(out, outlen, "%s://%s/%s.rep%d", scheme, run_dir, t->stages[stage].name, sub);
    break;
  case FFS_CHAN_PEER:
    snprintf(out, outlen, "%s://%s/%s.peer", scheme, run_dir, t->stages[stage].name);
    break;
  case FFS_CHAN_CTL:
  default:
    snprintf(out, outlen, "%s://%s/ctl", scheme, run_dir);
    break;
  }
}

int ffs_topo_next(const ffs_topo_t *t, int i) {
  assert(t && i >= 0 && i < t->n_stages);
  return i + t->stages[i].n_shards - t->stages[i].shard;
}

int ffs_topo_max_rows(const ffs_topo_t *t) {
  int train = t->triples ? 3 * t->batch : t->pairs ? 2 * t->batch : t->batch;
  int eval = t->eval_batch * 10;
  return train > eval ? train : eval;
}

int ffs_topo_feedback_cols(const ffs_topo_t *t, int from) {
  assert(t && from >= 0 && from < t->n_stages);
  return t->stages[from].kind == FFS_STAGE_READOUT ? 10 : t->stages[from].out_dim;
}
