// ffs_yaml: a YAML file read into a small tree where every node keeps the
// line it came from, "KEY=VALUE" overrides spliced into that tree, and typed
// readers whose errors are one line, "FILE:LINE: what was wrong (expected
// ...)". It knows YAML, not ffstream: the schema is common/ffs_topo.c.
// File content is hostile: size, depth and node count are capped, and
// nothing here asserts on what the file says (asserts guard API misuse only).
#ifndef FFS_YAML_H
#define FFS_YAML_H

#include <stddef.h>
#include <stdint.h>

enum { FFS_YAML_SCALAR = 0, FFS_YAML_SEQ, FFS_YAML_MAP };

// One node. Public because the schema walks the tree directly (a plain data
// struct, like a config struct); only this module creates or frees nodes.
typedef struct ffs_yaml_node ffs_yaml_node_t;
struct ffs_yaml_node {
  int type;               // FFS_YAML_SCALAR | FFS_YAML_SEQ | FFS_YAML_MAP
  int line;               // 1-based line in the file; 0 = made by an override
  const char *origin;     // the override text ("KEY=VALUE") when line is 0; borrowed
  char *str;              // scalar: the text, NUL-terminated (owned)
  int plain;              // scalar: unquoted, so '', '~' and 'null' mean "no value"
  int n;                  // slots used in kids: seq items; map 2 per key/value pair
  int cap;                // slots allocated in kids
  ffs_yaml_node_t **kids; // seq: item i at i; map: key i at 2i, its value at 2i+1
};

// One load: where errors go. Zero it, then set path, err and errlen.
typedef struct {
  const char *path; // file being loaded, for "PATH:LINE:" prefixes
  char *err;        // caller's buffer for the one-line message
  size_t errlen;
  int failed;  // an error has been written; later ones are dropped
  int n_nodes; // nodes made so far (capped)
} ffs_yaml_ctx_t;

// ---- the tree ----

// Reads c->path (at most 1 MiB) and parses one YAML document. Returns 0 with
// *root_p set (NULL when the file holds no document), or -1 with the error
// written. Anchors, aliases, tags and a second document are refused.
int ffs_yaml_load(ffs_yaml_ctx_t *c, ffs_yaml_node_t **root_p);
// Frees a tree; idempotent, nulls the caller's pointer.
void ffs_yaml_destroy(ffs_yaml_node_t **root_p);

int ffs_yaml_is_null(const ffs_yaml_node_t *n); // plain '', '~' or null
// Slot of key in map (the value is at slot + 1), or -1; map may be NULL.
int ffs_yaml_map_find(const ffs_yaml_node_t *map, const char *key);
// The value of key in map, or NULL (absent, or map NULL).
const ffs_yaml_node_t *ffs_yaml_map_get(const ffs_yaml_node_t *map, const char *key);

// ---- overrides ----

// What an override may address: KEY (a top-level key), BLOCK.KEY (a
// top-level key whose value is a mapping, made when absent), or ITEM.KEY
// where ITEM is the `name` of a mapping in the top-level sequence items_key.
// The messages call such an item a stage: the one tree this serves is a
// topology, and the messages are part of what its tests check.
typedef struct {
  const char *const *top_keys;   // NULL-terminated
  const char *const *block_keys; // NULL-terminated, a subset of top_keys
  const char *items_key;         // "stages"
} ffs_yaml_override_spec_t;

// Applies one "KEY=VALUE" to the tree. VALUE is read as YAML, so "[l2, l3]"
// is a sequence. The new nodes carry ov as their origin, so a later error
// about them reads "--set KEY=VALUE: ...". Returns 0 or -1.
int ffs_yaml_override(ffs_yaml_ctx_t *c, ffs_yaml_node_t *root, const char *ov,
                      const ffs_yaml_override_spec_t *spec);

// ---- errors ----

// Writes the error (only the first one sticks) and returns -1. The prefix is
// "--set OVERRIDE: " for origin, "PATH:LINE: " for line > 0, else "PATH: ".
__attribute__((format(printf, 4, 5))) int ffs_yaml_failf(ffs_yaml_ctx_t *c, const char *origin,
                                                         int line, const char *fmt, ...);
// An error located at node at (its file line, or the override that made it).
__attribute__((format(printf, 3, 4))) int
ffs_yaml_fail(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *at, const char *fmt, ...);
// Copies src into dst for quoting in a message: at most cap-4 bytes, control
// characters replaced by '?', "..." when cut, so a message stays one line.
void ffs_yaml_clip(char *dst, size_t cap, const char *src);
// "line 12" or "--set KEY=VALUE": where a node came from.
const char *ffs_yaml_where(const ffs_yaml_node_t *n, char *buf, size_t cap);
// Joins a NULL-terminated word list as "a, b, c".
const char *ffs_yaml_join(char *buf, size_t cap, const char *const *words);
// What a node holds, for "got ...": "'text'", "nothing", "a mapping", ...
const char *ffs_yaml_got(const ffs_yaml_node_t *v, char *buf, size_t cap);

// ---- typed readers: each fails with "LABEL: expected ..., got ..." ----

int ffs_yaml_in_list(const char *s, const char *const *list);
int ffs_yaml_int(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, long long lo,
                 long long hi, int *out);
int ffs_yaml_u64(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, uint64_t *out);
enum { FFS_YAML_POSITIVE = 0, FFS_YAML_NONNEG, FFS_YAML_UNIT }; // > 0 | >= 0 | in [0, 1)
int ffs_yaml_num(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, int range,
                 float *out);
int ffs_yaml_bool(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, int *out);
// Index of the scalar in names (NULL-terminated).
int ffs_yaml_enum(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label,
                  const char *const *names, int *out);
// A non-empty string without control characters that fits in dst.
int ffs_yaml_str(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, char *dst,
                 size_t cap);
// 1..cap-1 characters of [A-Za-z0-9_-] (plus '.' when dot).
int ffs_yaml_name_ok(const char *s, int dot, size_t cap);
int ffs_yaml_name(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, int dot,
                  char *dst, size_t cap);
// Fails on the first key of map that is not in keys. label may be NULL.
int ffs_yaml_check_keys(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *map, const char *label,
                        const char *const *keys);
// The mapping under root[key] with only keys in it, or NULL in *map_p
// (absent or empty: all defaults).
int ffs_yaml_block(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, const char *key,
                   const char *const *keys, const ffs_yaml_node_t **map_p);

#endif
