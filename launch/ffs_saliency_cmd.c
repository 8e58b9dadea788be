// ffs_saliency_cmd: `ffstream saliency RUN_DIR`: opens a finished run (its
// topology from summary.json, its overrides from RUN_DIR/sets, its
// checkpoints from RUN_DIR/ckpt), then either draws the maps of the first
// test images (PNG pictures, per-class means, one grid, saliency.json) or
// runs the deletion test (a table, deletion.csv). Every problem with the
// run folder, the files or the flags is one line back to the caller.
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ffs_idx.h"
#include "ffs_log.h"
#include "ffs_math.h"
#include "ffs_png.h"
#include "ffs_saliency.h"

#define S_MAX_SETS 128
#define S_SET_LEN 512
#define S_GAP 2 // pixels between the grid's tiles, in units of the scale

// ---- the run ----

// The topology the run was started with: summary.json's "topology" (a path
// as the run was given it, relative to the folder it was started in).
static int s_summary_topology(const char *run, char *out, size_t outlen, char *err,
                              size_t errlen) {
  char path[FFS_PATH_MAX + 32], text[8192];
  snprintf(path, sizeof path, "%s/summary.json", run);
  FILE *f = fopen(path, "r");
  if (!f) {
    ffs_errf(err, errlen, "%s: cannot read: %s (expected the output folder of a finished "
             "`ffstream run`; --topology FILE names the topology instead)", path,
             strerror(errno));
    return -1;
  }
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  const char *key = "\"topology\": \"", *at = strstr(text, key), *end;
  if (!at || !(end = strchr(at + strlen(key), '"')) || end == at + strlen(key) ||
      (size_t)(end - at - strlen(key)) >= outlen) {
    ffs_errf(err, errlen, "%s: no \"topology\" path in it (give --topology FILE)", path);
    return -1;
  }
  at += strlen(key);
  memcpy(out, at, (size_t)(end - at));
  out[end - at] = 0;
  struct stat st;
  if (stat(out, &st) < 0) {
    ffs_errf(err, errlen, "%s: topology '%s': %s here (a relative path is relative to the "
             "folder the run was started in: start from there, or give --topology FILE)", path,
             out, strerror(errno));
    return -1;
  }
  return 0;
}

// RUN_DIR/sets, one override a line (none when the file is absent: a run
// from before the launcher wrote it), into sets[*n...].
static int s_run_sets(const char *run, char (*sets)[S_SET_LEN], int *n, char *err,
                      size_t errlen) {
  char path[FFS_PATH_MAX + 32], line[S_SET_LEN + 2];
  snprintf(path, sizeof path, "%s/sets", run);
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) {
      ffs_warn("%s: not there (a run from before it was written): the topology loads "
               "without the run's --set overrides; give them with --set", path);
      return 0;
    }
    ffs_errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    return -1;
  }
  int lineno = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strcspn(line, "\n");
    if (line[len] != '\n' && !feof(f)) {
      ffs_errf(err, errlen, "%s:%d: line longer than %d characters", path, lineno, S_SET_LEN - 1);
      rc = -1;
    } else if (len && *n == S_MAX_SETS) {
      ffs_errf(err, errlen, "%s:%d: more than %d overrides", path, lineno, S_MAX_SETS);
      rc = -1;
    } else if (len) {
      line[len] = 0;
      memcpy(sets[(*n)++], line, len + 1);
    }
  }
  fclose(f);
  return rc;
}

// mkdir -p. 0 or -1 (errno).
static int s_mkdirs(const char *path) {
  char p[FFS_PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *c = p + 1; *c; c++)
    if (*c == '/') {
      *c = 0;
      if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
      *c = '/';
    }
  return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

// ---- pictures ----

// One pixel of a signed map, v / vmax in [-1, 1]: white at 0, red for
// positive, blue for negative (the ends of ColorBrewer's RdBu scale).
static void s_diverging(uint8_t *rgb, float v, float vmax) {
  static const float red[3] = {178, 24, 43}, blue[3] = {33, 102, 172};
  float t = vmax > 0.0f ? v / vmax : 0.0f;
  t = t > 1.0f ? 1.0f : t < -1.0f ? -1.0f : t;
  const float *end = t >= 0.0f ? red : blue;
  float a = fabsf(t);
  for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lroundf(255.0f * (1.0f - a) + end[c] * a);
}

typedef struct {
  uint8_t *px; // (height, width, 3)
  int width, height;
} s_canvas_t;

// Draws image (h, w) at (x0, y0) of the canvas, each pixel scale x scale:
// as grey levels (v in [0, 1], 0 black) when vmax < 0, else as a signed map
// scaled to vmax.
static void s_draw(s_canvas_t *cv, int x0, int y0, const float *image, int h, int w, int scale,
                   float vmax) {
  for (int r = 0; r < h * scale; r++)
    for (int c = 0; c < w * scale; c++) {
      float v = image[(r / scale) * w + c / scale];
      uint8_t *o = cv->px + (((size_t)(y0 + r) * (size_t)cv->width) + (size_t)(x0 + c)) * 3;
      if (vmax < 0.0f) {
        float g = v < 0.0f ? 0.0f : v > 1.0f ? 255.0f : 255.0f * v;
        o[0] = o[1] = o[2] = (uint8_t)lroundf(g);
      } else {
        s_diverging(o, v, vmax);
      }
    }
}

static float s_max_abs(const float *v, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; i++) m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
  return m;
}

// Writes one picture, dir/name: image (h, w) grey (signed 0) or a signed
// map scaled to its largest magnitude.
static int s_picture(const char *dir, const char *name, const float *image, int h, int w,
                     int scale, int is_signed, char *err, size_t errlen) {
  s_canvas_t cv = {NULL, w * scale, h * scale};
  cv.px = malloc((size_t)cv.width * (size_t)cv.height * 3);
  if (!cv.px) return ffs_errf(err, errlen, "%s/%s: out of memory", dir, name), -1;
  s_draw(&cv, 0, 0, image, h, w, scale, is_signed ? s_max_abs(image, h * w) : -1.0f);
  char path[FFS_PATH_MAX + 128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int rc = ffs_png_write_rgb(path, cv.px, cv.width, cv.height, err, errlen);
  free(cv.px);
  return rc;
}

// ---- maps ----

typedef struct {
  const ffs_saliency_opts_t *o;
  const ffs_topo_t *t;
  ffs_ffnet_t *net;
  ffs_saliency_t *sal;
  const ffs_dataset_t *test;
  char out[FFS_PATH_MAX];
  int h, w, n;       // image shape; images used
} s_ctx_t;

static void s_json_floats(FILE *f, const float *v, int n) {
  fputc('[', f);
  for (int i = 0; i < n; i++) fprintf(f, "%s%.6g", i ? ", " : "", (double)v[i]);
  fputc(']', f);
}

// A JSON string: s with quotes and backslashes escaped (paths and names).
static void s_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    if ((unsigned char)*s >= 0x20) fputc(*s, f);
  }
  fputc('"', f);
}

// Everything the maps write: per image its input, occlusion, attribution,
// attribution x input (the first-order estimate of each pixel's occlusion
// drop) and per-layer attribution pictures; per class the mean maps; the
// grid (a row per image: input | occlusion | attribution | attribution x
// input); saliency.json.
static int s_maps(s_ctx_t *x, char *err, size_t errlen) {
  const int D = x->test->dim, C = x->t->classes, K = ffs_ffnet_n_layers(x->net), S = x->o->scale;
  const int tile = x->h * S, gap = S_GAP * S;
  size_t per_image = (size_t)D * (size_t)(3 + K);
  float *maps = malloc(sizeof(float) * per_image * (size_t)x->n); // occl | attr | axi | layers
  float *sums = calloc((size_t)C * 2 * (size_t)D, sizeof(float));
  float *scores = malloc(sizeof(float) * (size_t)x->n * (size_t)C);
  float *per_layer = malloc(sizeof(float) * (size_t)x->n * (size_t)K * (size_t)C);
  int *count = calloc((size_t)C, sizeof(int));
  s_canvas_t grid = {NULL, 4 * x->w * S + 5 * gap, x->n * tile + (x->n + 1) * gap};
  grid.px = malloc((size_t)grid.width * (size_t)grid.height * 3);
  char path[FFS_PATH_MAX + 64], name[160];
  snprintf(path, sizeof path, "%s/saliency.json", x->out);
  FILE *json = NULL;
  int rc = -1;
  if (!maps || !sums || !scores || !per_layer || !count || !grid.px) {
    ffs_errf(err, errlen, "out of memory for the maps of %d images", x->n);
    goto done;
  }
  if (!(json = fopen(path, "w"))) {
    ffs_errf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    goto done;
  }
  memset(grid.px, 160, (size_t)grid.width * (size_t)grid.height * 3); // grey between tiles
  ffs_ffnet_scores(x->net, x->test->x, x->n, scores, per_layer);
  fprintf(json, "{\n  \"run\": "), s_json_str(json, x->o->run_dir);
  fprintf(json, ",\n  \"topology\": "), s_json_str(json, x->t->path);
  fprintf(json, ",\n  \"data\": "), s_json_str(json, x->t->data_dir);
  fprintf(json, ",\n  \"classes\": %d,\n  \"patch\": %d,\n  \"scale\": %d,\n", C, x->o->patch, S);
  fprintf(json, "  \"class\": \"%s\",\n  \"layers\": [", x->o->cls < 0 ? "predicted" : "given");
  for (int k = 0; k < K; k++) {
    fprintf(json, "%s{\"name\": ", k ? ", " : "");
    s_json_str(json, ffs_ffnet_layer_name(x->net, k));
    fprintf(json, ", \"energy_sign\": %g}", (double)ffs_ffnet_energy_sign(x->net, k));
  }
  fprintf(json, "],\n  \"masked_pixels\": %d,\n  \"images\": [\n", ffs_saliency_masked(x->sal));
  for (int i = 0; i < x->n; i++) {
    const float *img = x->test->x + (size_t)i * D;
    float *occ = maps + (size_t)i * per_image, *att = occ + D, *axi = att + D, *lay = axi + D;
    int label = x->test->y[i], pred = ffs_argmax(scores + (size_t)i * C, C);
    int c = x->o->cls >= 0 ? x->o->cls : pred;
    ffs_saliency_occlusion(x->sal, img, c, occ);
    ffs_saliency_attribution(x->sal, img, c, lay, att);
    for (int p = 0; p < D; p++) axi[p] = att[p] * img[p];
    count[c]++;
    for (int p = 0; p < D; p++)
      sums[(size_t)c * 2 * D + p] += occ[p], sums[(size_t)c * 2 * D + D + p] += att[p];
    char base[64];
    snprintf(base, sizeof base, "%04d-label%d-pred%d", i, label, pred);
    fprintf(json, "    {\"index\": %d, \"label\": %d, \"predicted\": %d, \"class\": %d, ", i,
            label, pred, c);
    fprintf(json, "\"goodness\": "), s_json_floats(json, scores + (size_t)i * C, C);
    fprintf(json, ", \"goodness_per_layer\": {");
    for (int k = 0; k < K; k++) {
      fprintf(json, "%s", k ? ", " : ""), s_json_str(json, ffs_ffnet_layer_name(x->net, k));
      fprintf(json, ": "), s_json_floats(json, per_layer + ((size_t)i * K + k) * C, C);
    }
    snprintf(name, sizeof name, "%s-input.png", base);
    if (s_picture(x->out, name, img, x->h, x->w, S, 0, err, errlen) < 0) goto done;
    fprintf(json, "},\n     \"files\": {\"input\": \"%s\"", name);
    snprintf(name, sizeof name, "%s-class%d-occlusion.png", base, c);
    if (s_picture(x->out, name, occ, x->h, x->w, S, 1, err, errlen) < 0) goto done;
    fprintf(json, ", \"occlusion\": \"%s\"", name);
    snprintf(name, sizeof name, "%s-class%d-attribution.png", base, c);
    if (s_picture(x->out, name, att, x->h, x->w, S, 1, err, errlen) < 0) goto done;
    fprintf(json, ", \"attribution\": \"%s\"", name);
    snprintf(name, sizeof name, "%s-class%d-attribution-x-input.png", base, c);
    if (s_picture(x->out, name, axi, x->h, x->w, S, 1, err, errlen) < 0) goto done;
    fprintf(json, ", \"attribution_x_input\": \"%s\"", name);
    for (int k = 0; k < K; k++) {
      const char *ln = ffs_ffnet_layer_name(x->net, k);
      snprintf(name, sizeof name, "%s-class%d-attribution-%s.png", base, c, ln);
      if (s_picture(x->out, name, lay + (size_t)k * D, x->h, x->w, S, 1, err, errlen) < 0)
        goto done;
      fprintf(json, ", \"attribution_%s\": \"%s\"", ln, name);
    }
    fprintf(json, "}}%s\n", i + 1 < x->n ? "," : "");
    int y0 = gap + i * (tile + gap);
    s_draw(&grid, gap, y0, img, x->h, x->w, S, -1.0f);
    s_draw(&grid, 2 * gap + tile, y0, occ, x->h, x->w, S, s_max_abs(occ, D));
    s_draw(&grid, 3 * gap + 2 * tile, y0, att, x->h, x->w, S, s_max_abs(att, D));
    s_draw(&grid, 4 * gap + 3 * tile, y0, axi, x->h, x->w, S, s_max_abs(axi, D));
    printf("  %04d: label %d, predicted %d, maps for class %d\n", i, label, pred, c);
  }
  fprintf(json, "  ],\n  \"class_means\": [");
  for (int c = 0, first = 1; c < C; c++) {
    if (!count[c]) continue;
    float *m = sums + (size_t)c * 2 * D;
    for (int p = 0; p < 2 * D; p++) m[p] /= (float)count[c];
    fprintf(json, "%s\n    {\"class\": %d, \"images\": %d", first ? "" : ",", c, count[c]);
    first = 0;
    static const char *const what[2] = {"occlusion", "attribution"};
    for (int k = 0; k < 2; k++) {
      snprintf(name, sizeof name, "mean-class%d-%s.png", c, what[k]);
      if (s_picture(x->out, name, m + (size_t)k * D, x->h, x->w, S, 1, err, errlen) < 0)
        goto done;
      fprintf(json, ", \"%s\": \"%s\"", what[k], name);
    }
    fputc('}', json);
  }
  snprintf(path, sizeof path, "%s/grid.png", x->out);
  if (ffs_png_write_rgb(path, grid.px, grid.width, grid.height, err, errlen) < 0) goto done;
  fprintf(json, "\n  ],\n  \"grid\": \"grid.png\",\n  \"grid_columns\": [\"input\", "
          "\"occlusion\", \"attribution\", \"attribution_x_input\"]\n}\n");
  rc = 0;
done:
  if (json && fclose(json) != 0 && rc == 0) {
    ffs_errf(err, errlen, "%s/saliency.json: write failed: %s", x->out, strerror(errno));
    rc = -1;
  }
  free(maps), free(sums), free(scores), free(per_layer), free(count), free(grid.px);
  return rc;
}

// ---- the deletion test ----

enum { S_OCCLUSION = 0, S_ATTRIBUTION, S_ATTR_X_INPUT, S_RANDOM, S_ORDERS };
static const char *const s_order_names[S_ORDERS] = {"occlusion", "attribution",
                                                    "attribution_x_input", "random"};

static int s_deletion(s_ctx_t *x, char *err, size_t errlen) {
  const int D = x->test->dim, C = x->t->classes, S = FFS_SALIENCY_STEPS;
  float *buf = malloc(sizeof(float) * (size_t)(3 * D + C + S_ORDERS * S));
  int *orders = malloc(sizeof(int) * (size_t)S_ORDERS * (size_t)D);
  double sum_p[S_ORDERS][FFS_SALIENCY_STEPS] = {{0}};
  double sum_a[S_ORDERS] = {0}, sum_a2[S_ORDERS] = {0};
  if (!buf || !orders) {
    free(buf), free(orders);
    return ffs_errf(err, errlen, "out of memory for the deletion test"), -1;
  }
  float *occ = buf, *att = occ + D, *axi = att + D, *sc = axi + D, *p = sc + C;
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 1, 0); // the random order: the same on every run
  int wrong = 0;
  for (int i = 0; i < x->n; i++) {
    const float *img = x->test->x + (size_t)i * D;
    ffs_ffnet_scores(x->net, img, 1, sc, NULL);
    int pred = ffs_argmax(sc, C);
    wrong += pred != x->test->y[i];
    ffs_saliency_occlusion(x->sal, img, pred, occ);
    ffs_saliency_attribution(x->sal, img, pred, NULL, att);
    for (int q = 0; q < D; q++) axi[q] = att[q] * img[q];
    ffs_saliency_order(x->sal, occ, orders + (size_t)S_OCCLUSION * D);
    ffs_saliency_order(x->sal, att, orders + (size_t)S_ATTRIBUTION * D);
    ffs_saliency_order(x->sal, axi, orders + (size_t)S_ATTR_X_INPUT * D);
    ffs_saliency_random_order(x->sal, &rng, orders + (size_t)S_RANDOM * D);
    ffs_saliency_deletion(x->sal, img, pred, orders, S_ORDERS, p);
    for (int m = 0; m < S_ORDERS; m++) {
      double a = ffs_saliency_auc(p + (size_t)m * S);
      sum_a[m] += a, sum_a2[m] += a * a;
      for (int k = 0; k < S; k++) sum_p[m][k] += p[(size_t)m * S + k];
    }
  }
  free(buf), free(orders);
  char path[FFS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/deletion.csv", x->out);
  FILE *f = fopen(path, "w");
  if (!f) return ffs_errf(err, errlen, "%s: cannot write: %s", path, strerror(errno)), -1;
  fprintf(f, "map,images,auc,auc_se");
  for (int k = 0; k < S; k++) fprintf(f, ",p%03d", k * 100 / (S - 1));
  fputc('\n', f);
  printf("deletion test: the first %d test images of %s, predicted class (energy test error "
         "on them %.2f %%), pixels set to 0 most salient first in 5 %% steps\n", x->n,
         x->t->data_dir, 100.0 * wrong / x->n);
  printf("| map | AUC (lower = better) | p at 0 %% | 10 %% | 25 %% | 50 %% |\n"
         "| --- | --- | --- | --- | --- | --- |\n");
  for (int m = 0; m < S_ORDERS; m++) {
    double mean = sum_a[m] / x->n, var = sum_a2[m] / x->n - mean * mean;
    double se = x->n > 1 && var > 0 ? sqrt(var / (x->n - 1)) : 0.0;
    fprintf(f, "%s,%d,%.6f,%.6f", s_order_names[m], x->n, mean, se);
    for (int k = 0; k < S; k++) fprintf(f, ",%.6f", sum_p[m][k] / x->n);
    fputc('\n', f);
    printf("| FF %s | %.4f +- %.4f | %.3f | %.3f | %.3f | %.3f |\n", s_order_names[m], mean, se,
           sum_p[m][0] / x->n, sum_p[m][2] / x->n, sum_p[m][5] / x->n, sum_p[m][10] / x->n);
  }
  if (fclose(f) != 0)
    return ffs_errf(err, errlen, "%s: write failed: %s", path, strerror(errno)), -1;
  printf("table: %s\n", path);
  return 0;
}

// ---- the command ----

int ffs_saliency_run(const ffs_saliency_opts_t *o, char *err, size_t errlen) {
  assert(o && o->run_dir && err && o->images >= 1 && o->test_limit >= 1);
  assert(o->patch >= 1 && o->scale >= 1 && o->cls >= -1 && (o->n_sets == 0 || o->sets));
  struct stat st;
  if (stat(o->run_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    ffs_errf(err, errlen, "%s: %s (expected the output folder of `ffstream run`)", o->run_dir,
             stat(o->run_dir, &st) < 0 ? strerror(errno) : "not a folder");
    return -1;
  }
  char topo_path[FFS_PATH_MAX], ckpt[FFS_PATH_MAX + 16];
  const char *set_ptrs[S_MAX_SETS];
  int n_sets = 0, rc = -1;
  s_ctx_t x = {.o = o};
  ffs_topo_t *t = malloc(sizeof *t);
  char (*sets)[S_SET_LEN] = malloc(sizeof *sets * S_MAX_SETS); // RUN_DIR/sets
  ffs_dataset_t *test = NULL;
  if (!t || !sets) {
    ffs_errf(err, errlen, "out of memory");
    goto done;
  }
  if (o->topology) snprintf(topo_path, sizeof topo_path, "%s", o->topology);
  else if (s_summary_topology(o->run_dir, topo_path, sizeof topo_path, err, errlen) < 0)
    goto done;
  if (s_run_sets(o->run_dir, sets, &n_sets, err, errlen) < 0) goto done;
  for (int k = 0; k < n_sets; k++) set_ptrs[k] = sets[k];
  for (int k = 0; k < o->n_sets; k++) { // the command line's after the run's: they win
    if (n_sets == S_MAX_SETS) {
      ffs_errf(err, errlen, "more than %d overrides with %s/sets", S_MAX_SETS, o->run_dir);
      goto done;
    }
    set_ptrs[n_sets++] = o->sets[k];
  }
  if (ffs_topo_load(t, topo_path, set_ptrs, n_sets, err, errlen) < 0) goto done;
  x.t = t;
  if (!(x.net = ffs_ffnet_new(t, 1024, err, errlen))) goto done;
  snprintf(ckpt, sizeof ckpt, "%s/ckpt", o->run_dir);
  if (ffs_ffnet_load(x.net, ckpt, err, errlen) < 0) goto done;
  int want = o->deletion ? o->test_limit : o->images;
  if (!(test = ffs_dataset_load(t->data_dir, "t10k", want, t->classes, err, errlen))) goto done;
  if (test->dim != ffs_ffnet_dim(x.net)) {
    ffs_errf(err, errlen, "%s: test images have %d pixels, the network's input %d (data.dim)",
             t->data_dir, test->dim, ffs_ffnet_dim(x.net));
    goto done;
  }
  x.test = test, x.n = test->n < want ? test->n : want;
  x.h = 1, x.w = test->dim; // square when the pixel count is a square (28 x 28)
  for (int side = 1; side * side <= test->dim; side++)
    if (side * side == test->dim) x.h = x.w = side;
  if (o->patch > x.h || o->patch > x.w) {
    ffs_errf(err, errlen, "--patch %d: larger than the %d x %d images", o->patch, x.h, x.w);
    goto done;
  }
  if (o->cls >= t->classes) {
    ffs_errf(err, errlen, "--class %d: the run has classes 0..%d", o->cls, t->classes - 1);
    goto done;
  }
  if (!(x.sal = ffs_saliency_new(x.net, x.h, x.w, o->patch))) {
    ffs_errf(err, errlen, "out of memory for the maps");
    goto done;
  }
  if (o->out_dir) snprintf(x.out, sizeof x.out, "%s", o->out_dir);
  else snprintf(x.out, sizeof x.out, "%s/saliency", o->run_dir);
  if (s_mkdirs(x.out) < 0) {
    ffs_errf(err, errlen, "%s: cannot create: %s", x.out, strerror(errno));
    goto done;
  }
  if (o->deletion) {
    rc = s_deletion(&x, err, errlen);
  } else {
    printf("saliency: %s (%s), the first %d test images of %s\n", o->run_dir, t->path, x.n,
           t->data_dir);
    rc = s_maps(&x, err, errlen);
    if (rc == 0) printf("pictures: %s (grid.png, saliency.json)\n", x.out);
  }
done:
  ffs_saliency_destroy(&x.sal);
  ffs_ffnet_destroy(&x.net);
  ffs_dataset_destroy(&test);
  free(t), free(sets);
  return rc;
}
