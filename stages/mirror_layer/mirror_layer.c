// mirror_layer: the mirrored models' objectives (mirror_layer.h).
#include "mirror_layer.h"

#include <math.h>
#include <string.h>

#include "ffs_math.h"

static double s_norm(const float *x, int n) {
  double s = 0;
  for (int k = 0; k < n; k++) s += (double)x[k] * x[k];
  return sqrt(s) + 1e-8;
}

static double s_dot(const float *x, const float *y, int n) {
  double s = 0;
  for (int k = 0; k < n; k++) s += (double)x[k] * y[k];
  return s;
}

// dz_i += w * d cos(u_i, v) / d u_i = w (v / (|u||v|) - cos u / |u|^2)
static void s_add_dcos(float *dz, const float *u, double nu, const float *v, double nv, double cos,
                       double w, int n) {
  for (int k = 0; k < n; k++) dz[k] += (float)(w * (v[k] / (nu * nv) - cos * u[k] / (nu * nu)));
}

double ffs_mirror_hidden(const ffs_mirror_cfg_t *c, const float *u, const float *v,
                         const float *a, const uint8_t *labels, int rows, int units, float *dz,
                         float *scratch) {
  memset(dz, 0, sizeof(float) * (size_t)rows * (size_t)units);
  double loss = 0;
  if (c->objective == FFS_MIRROR_COSINE) {
    for (int i = 0; i < rows; i++) {
      const float *ui = u + (long)i * units, *vi = v + (long)i * units;
      double nu = s_norm(ui, units), nv = s_norm(vi, units);
      double cos = s_dot(ui, vi, units) / (nu * nv);
      loss += 1.0 - cos;
      s_add_dcos(dz + (long)i * units, ui, nu, vi, nv, cos, -1.0 / rows, units);
    }
  } else {
    // the cosines c_ij / t, row i's softmax over j, and each row's positives
    float *s = scratch, *nvs = scratch + (long)rows * rows;
    const double t = c->temp;
    for (int j = 0; j < rows; j++) nvs[j] = (float)s_norm(v + (long)j * units, units);
    for (int i = 0; i < rows; i++) {
      const float *ui = u + (long)i * units;
      double nu = s_norm(ui, units);
      for (int j = 0; j < rows; j++)
        s[(long)i * rows + j] = (float)(s_dot(ui, v + (long)j * units, units) / (nu * nvs[j]) / t);
    }
    for (int i = 0; i < rows; i++) {
      float *si = s + (long)i * rows;
      const float *ui = u + (long)i * units;
      double nu = s_norm(ui, units);
      double m = si[0];
      for (int j = 1; j < rows; j++) m = si[j] > m ? si[j] : m;
      double z = 0;
      for (int j = 0; j < rows; j++) z += exp(si[j] - m);
      int npos = 0;
      for (int j = 0; j < rows; j++)
        npos += c->objective == FFS_MIRROR_SUPCON ? labels[j] == labels[i] : j == i;
      for (int j = 0; j < rows; j++) {
        int pos = c->objective == FFS_MIRROR_SUPCON ? labels[j] == labels[i] : j == i;
        double logp = si[j] - m - log(z);
        if (pos) loss -= logp / npos;
        // dL_i / ds_ij = p_ij - [pos] / npos; ds_ij / du_i = dcos / t
        double g = (exp(logp) - (pos ? 1.0 / npos : 0.0)) / t / rows;
        s_add_dcos(dz + (long)i * units, ui, nu, v + (long)j * units, nvs[j], si[j] * t, g, units);
      }
    }
  }
  float w = c->twin;
  for (long k = 0; k < (long)rows * units; k++)
    dz[k] = a && a[k] <= 0.0f ? 0.0f : w * dz[k]; // relu's gate, the objective's weight
  return loss / rows;
}

double ffs_mirror_head(const float *zh, const float *wh, const float *a, const uint8_t *labels,
                       int rows, int units, int classes, double weight, float *p, float *dzh,
                       float *dz) {
  memcpy(p, zh, sizeof(float) * (size_t)rows * (size_t)classes);
  ffs_softmax_rows(p, rows, classes);
  double loss = 0;
  for (int r = 0; r < rows; r++) {
    if (labels[r] >= classes) return -1;
    const float *pr = p + (long)r * classes;
    float *g = dzh + (long)r * classes;
    loss -= log(pr[labels[r]] > 1e-30f ? pr[labels[r]] : 1e-30);
    for (int k = 0; k < classes; k++)
      g[k] = (float)(weight * ((double)pr[k] - (k == labels[r])) / rows); // d(w CE) / dz_k
    // d / d act_u = sum_k g_k wh[k][u], through relu (a > 0)
    const float *ar = a + (long)r * units;
    float *d = dz + (long)r * units;
    for (int k = 0; k < classes; k++) {
      const float *w = wh + (long)k * units;
      for (int u = 0; u < units; u++) d[u] += ar[u] > 0.0f ? g[k] * w[u] : 0.0f;
    }
  }
  return loss / rows;
}

double ffs_mirror_top(const float *z, const uint8_t *labels, int rows, int classes, float *p,
                      float *dz) {
  memcpy(p, z, sizeof(float) * (size_t)rows * (size_t)classes);
  ffs_softmax_rows(p, rows, classes);
  double loss = 0, n = (double)rows * classes;
  for (int r = 0; r < rows; r++) {
    if (labels[r] >= classes) return -1;
    const float *pr = p + (long)r * classes;
    float *d = dz + (long)r * classes;
    double gp = 0, g[256];
    for (int k = 0; k < classes; k++) {
      double y = k == labels[r], q = pr[k];
      q = q < 1e-7 ? 1e-7 : q > 1 - 1e-7 ? 1 - 1e-7 : q;
      loss -= y * log(q) + (1 - y) * log(1 - q);
      g[k] = (-y / q + (1 - y) / (1 - q)) / n; // dL / dp_k
      gp += g[k] * pr[k];
    }
    for (int k = 0; k < classes; k++) d[k] = (float)(pr[k] * (g[k] - gp)); // softmax's Jacobian
  }
  return loss / n;
}
