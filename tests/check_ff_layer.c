// check_ff_layer: one ff_layer's local update against finite differences of
// its own loss, the update rule itself, and that repeated local steps raise
// positive goodness above negative goodness (the layer learns).
#include "ffs_check.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ff_layer.h"
#include "ffs_math.h"
#include "ffs_rng.h"

enum { IN = 12, UNITS = 8, ROWS = 5 };

static ffs_layer_cfg_t s_cfg(ffs_goodness_t g) {
  return (ffs_layer_cfg_t){.goodness = g, .theta = 4.0f, .temp = 1.0f, .opt = FFS_OPT_SGD,
                           .lr = 0.1f, .momentum = 0.0f, .weight_decay = 0.0f,
                           .peer_lambda = 0.0f, .peer_decay = 0.9f};
}

static void s_input(float *x, int rows, uint64_t seed) {
  ffs_rng_t rng;
  ffs_rng_seed(&rng, seed, 3);
  for (int i = 0; i < rows * IN; i++) x[i] = ffs_rng_normal(&rng);
}

// Loss of the layer on x (rows labeled lab; NULL = no label term).
static float s_loss_at(ffs_ff_layer_t *l, const float *x, const uint8_t *lab, int positive) {
  ffs_ff_layer_forward_labeled(l, x, ROWS, lab);
  return ffs_ff_layer_loss(l, ROWS, positive);
}

// Checks every stride-th entry of param[0..n) against central finite
// differences of the loss; analytic is the gradient computed beforehand.
// Returns the number of entries checked.
static int s_check_grad(ffs_ff_layer_t *l, const float *x, const uint8_t *lab, int pos,
                        float *param, const float *analytic, int n, int stride,
                        const char *what) {
  const float h = 2e-3f;
  int checked = 0;
  for (int i = 0; i < n; i += stride) {
    float keep = param[i];
    param[i] = keep + h;
    float lp = s_loss_at(l, x, lab, pos);
    param[i] = keep - h;
    float lm = s_loss_at(l, x, lab, pos);
    param[i] = keep;
    float fd = (lp - lm) / (2 * h);
    ck_assert_msg(fabsf(fd - analytic[i]) <= 2e-3f + 0.03f * fabsf(fd),
                  "%s pos %d [%d]: analytic %g, finite difference %g", what, pos, i,
                  (double)analytic[i], (double)fd);
    checked++;
  }
  return checked;
}

START_TEST(test_grad_matches_finite_differences) {
  ffs_goodness_t kinds[3] = {FFS_GOODNESS_SSQ, FFS_GOODNESS_MSQ, FFS_GOODNESS_MIN_SSQ};
  for (int k = 0; k < 3; k++)
    for (int pos = 0; pos < 2; pos++) {
      ffs_layer_cfg_t cfg = s_cfg(kinds[k]);
      if (kinds[k] == FFS_GOODNESS_MSQ) cfg.theta = 0.5f;
      ffs_ff_layer_t *l = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 11, (uint64_t)k);
      float x[ROWS * IN], gw[UNITS * IN], gb[UNITS];
      s_input(x, ROWS, 5 + (uint64_t)k);
      ffs_ff_layer_forward(l, x, ROWS);
      ffs_ff_layer_grad(l, ROWS, pos, gw, gb);
      char what[32];
      snprintf(what, sizeof what, "kind %d w", k);
      int checked = s_check_grad(l, x, NULL, pos, ffs_ff_layer_weights(l), gw, UNITS * IN, 7, what);
      snprintf(what, sizeof what, "kind %d b", k);
      s_check_grad(l, x, NULL, pos, ffs_ff_layer_bias(l), gb, UNITS, 1, what);
      ck_assert_int_gt(checked, 10);
      ffs_ff_layer_destroy(&l);
      ck_assert_ptr_null(l);
    }
}
END_TEST

START_TEST(test_learn_applies_the_gradient) {
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  ffs_ff_layer_t *l = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 3, 0);
  float x[ROWS * IN], gw[UNITS * IN], gb[UNITS], w0[UNITS * IN];
  s_input(x, ROWS, 9);
  ffs_ff_layer_forward(l, x, ROWS);
  ffs_ff_layer_grad(l, ROWS, 1, gw, gb);
  memcpy(w0, ffs_ff_layer_weights(l), sizeof w0);
  float loss0 = ffs_ff_layer_learn(l, ROWS, 1, 0.5f); // lr factor 0.5 -> step 0.05
  const float *w = ffs_ff_layer_weights(l);
  for (int i = 0; i < UNITS * IN; i++) ck_assert_float_eq_tol(w[i], w0[i] - 0.05f * gw[i], 1e-6f);
  // the step lowered the loss on the same rows
  ck_assert(s_loss_at(l, x, NULL, 1) < loss0);
  ffs_ff_layer_destroy(&l);
}
END_TEST

START_TEST(test_peer_normalization_moves_a_dead_unit) {
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  cfg.peer_lambda = 0.03f;
  ffs_ff_layer_t *l = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 3, 0);
  // kill unit 0: strongly negative bias, so it is never active
  ffs_ff_layer_bias(l)[0] = -100.0f;
  float x[ROWS * IN];
  s_input(x, ROWS, 4);
  float b_before = ffs_ff_layer_bias(l)[0];
  for (int step = 0; step < 20; step++) {
    ffs_ff_layer_forward(l, x, ROWS);
    ffs_ff_layer_learn(l, ROWS, 1, 1.0f);
  }
  // its running mean fell below the layer's, and the ungated peer term
  // pushed its bias up even though the relu blocks the FF gradient
  ck_assert(ffs_ff_layer_peer_mean(l)[0] < 0.5f);
  ck_assert(ffs_ff_layer_bias(l)[0] > b_before);
  ffs_ff_layer_destroy(&l);
}
END_TEST

START_TEST(test_layer_separates_positive_from_negative) {
  // positives: inputs with a fixed pattern; negatives: its mirror image
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  cfg.theta = 0;
  cfg.lr = 0.05f;
  ffs_ff_layer_t *l = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 8, 0);
  float pos[ROWS * IN], neg[ROWS * IN];
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 1, 1);
  for (int r = 0; r < ROWS; r++)
    for (int i = 0; i < IN; i++) {
      float noise = 0.1f * ffs_rng_normal(&rng);
      pos[r * IN + i] = (i < IN / 2 ? 1.0f : 0.0f) + noise;
      neg[r * IN + i] = (i < IN / 2 ? 0.0f : 1.0f) + noise;
    }
  for (int step = 0; step < 300; step++) {
    ffs_ff_layer_forward(l, pos, ROWS);
    ffs_ff_layer_learn(l, ROWS, 1, 1.0f);
    ffs_ff_layer_forward(l, neg, ROWS);
    ffs_ff_layer_learn(l, ROWS, 0, 1.0f);
  }
  ffs_ff_layer_forward(l, pos, ROWS);
  float gp = ffs_ff_layer_goodness(l)[0];
  ffs_ff_layer_forward(l, neg, ROWS);
  float gn = ffs_ff_layer_goodness(l)[0];
  ck_assert_msg(gp > ffs_ff_layer_theta(l) && gn < ffs_ff_layer_theta(l),
                "goodness pos %g neg %g theta %g", (double)gp, (double)gn,
                (double)ffs_ff_layer_theta(l));
  // the activity sent on is RMS-normalized
  ffs_ff_layer_forward(l, pos, ROWS);
  const float *yn = ffs_ff_layer_output(l);
  float ms = 0;
  for (int j = 0; j < UNITS; j++) ms += yn[j] * yn[j];
  ck_assert_float_eq_tol(ms / UNITS, 1.0f, 1e-4f);
  ffs_ff_layer_destroy(&l);
}
END_TEST

// ---- FFCL: label weights ----

START_TEST(test_label_grad_matches_finite_differences) {
  enum { NL = 3 };
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  ffs_ff_layer_t *l = ffs_ff_layer_new_labeled(IN, UNITS, NL, ROWS, &cfg, 4, 1);
  ck_assert_int_eq(ffs_ff_layer_n_labels(l), NL);
  float x[ROWS * IN], gw[UNITS * IN], gb[UNITS];
  const uint8_t lab[ROWS] = {0, 2, 1, 2, 255}; // the last row: no label term
  s_input(x, ROWS, 21);
  for (int pos = 0; pos < 2; pos++) {
    ffs_ff_layer_forward_labeled(l, x, ROWS, lab);
    ffs_ff_layer_grad(l, ROWS, pos, gw, gb);
    float gu[NL * UNITS];
    memcpy(gu, ffs_ff_layer_label_grad(l), sizeof gu);
    s_check_grad(l, x, lab, pos, ffs_ff_layer_label_weights(l), gu, NL * UNITS, 1, "u");
    s_check_grad(l, x, lab, pos, ffs_ff_layer_weights(l), gw, UNITS * IN, 5, "w");
  }
  ffs_ff_layer_destroy(&l);
}
END_TEST

START_TEST(test_label_goodness_scores_every_label_from_one_pass) {
  enum { NL = 4 };
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  ffs_ff_layer_t *l = ffs_ff_layer_new_labeled(IN, UNITS, NL, ROWS, &cfg, 6, 2);
  float x[ROWS * IN], all[ROWS * NL], yn_free[ROWS * UNITS];
  s_input(x, ROWS, 9);
  ffs_ff_layer_forward_labeled(l, x, ROWS, NULL);
  memcpy(yn_free, ffs_ff_layer_output(l), sizeof yn_free);
  ffs_ff_layer_label_goodness(l, ROWS, all);
  for (int c = 0; c < NL; c++) {
    // one forward per label, the slow way, must give the same goodness
    uint8_t lab[ROWS];
    memset(lab, c, sizeof lab);
    ffs_ff_layer_forward_labeled(l, x, ROWS, lab);
    const float *g = ffs_ff_layer_goodness(l), *yn = ffs_ff_layer_output(l);
    for (int r = 0; r < ROWS; r++) {
      ck_assert_float_eq_tol(all[r * NL + c], g[r], 1e-4f * (1.0f + g[r]));
      // the activity sent on is label-free: the same whatever the label
      for (int j = 0; j < UNITS; j++) ck_assert_float_eq(yn[r * UNITS + j], yn_free[r * UNITS + j]);
    }
  }
  // and the label term matters: two labels give different goodness
  ck_assert(fabsf(all[0] - all[1]) > 1e-6f);
  ffs_ff_layer_destroy(&l);
}
END_TEST

START_TEST(test_pair_update_steps_once_on_both_gradients) {
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  cfg.momentum = 0.9f, cfg.weight_decay = 0.01f, cfg.update = FFS_UPDATE_PAIR;
  ffs_ff_layer_t *pair = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 3, 1);
  cfg.update = FFS_UPDATE_FRAME;
  ffs_ff_layer_t *ref = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 3, 1);
  float xp[ROWS * IN], xn[ROWS * IN], w0[UNITS * IN];
  float gp[UNITS * IN], bp[UNITS], gn[UNITS * IN], bn[UNITS];
  s_input(xp, ROWS, 11), s_input(xn, ROWS, 12);
  memcpy(w0, ffs_ff_layer_weights(pair), sizeof w0);
  // the positive frame alone changes nothing yet
  ffs_ff_layer_forward(pair, xp, ROWS);
  ffs_ff_layer_learn(pair, ROWS, 1, 1.0f);
  ck_assert_mem_eq(ffs_ff_layer_weights(pair), w0, sizeof w0);
  ffs_ff_layer_forward(pair, xn, ROWS);
  ffs_ff_layer_learn(pair, ROWS, 0, 1.0f);
  // the negative one steps once on the sum: m = 0.1 (gp + gn), w -= lr (m + wd w)
  ffs_ff_layer_forward(ref, xp, ROWS);
  ffs_ff_layer_grad(ref, ROWS, 1, gp, bp);
  ffs_ff_layer_forward(ref, xn, ROWS);
  ffs_ff_layer_grad(ref, ROWS, 0, gn, bn);
  const float *w = ffs_ff_layer_weights(pair);
  for (int i = 0; i < UNITS * IN; i++) {
    float m = 0.1f * (gp[i] + gn[i]);
    ck_assert_float_eq_tol(w[i], w0[i] - cfg.lr * (m + cfg.weight_decay * w0[i]), 1e-6f);
  }
  for (int j = 0; j < UNITS; j++)
    ck_assert_float_eq_tol(ffs_ff_layer_bias(pair)[j], -cfg.lr * 0.1f * (bp[j] + bn[j]), 1e-6f);
  ffs_ff_layer_destroy(&pair);
  ffs_ff_layer_destroy(&ref);
}
END_TEST

// What a checkpoint keeps: a layer given another's parameters and
// optimizer state (its buffers and scalars) after some frames continues
// exactly as that one does: with momentum and weight decay, frames of 1 row
// (gradient factors) and of 5, stepping per frame and per pair (saved while
// a positive frame waits for its negative), sgd and adam.
START_TEST(test_optimizer_state_carries_a_layer_on_exactly) {
  for (int opt = 0; opt < 2; opt++)
    for (int up = 0; up < 2; up++)
      for (int rows = 1; rows <= ROWS; rows += ROWS - 1) {
        ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
        cfg.opt = opt ? FFS_OPT_ADAM : FFS_OPT_SGD;
        cfg.momentum = 0.9f, cfg.weight_decay = 0.01f, cfg.lr = opt ? 0.01f : 0.1f;
        cfg.update = up ? FFS_UPDATE_PAIR : FFS_UPDATE_FRAME;
        cfg.peer_lambda = 0.03f;
        ffs_ff_layer_t *a = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 4, 1);
        ffs_ff_layer_t *b = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 5, 1); // other weights
        ffs_ff_layer_t *c = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 5, 1); // parameters only
        float x[ROWS * IN];
        for (int f = 0; f < 5; f++) { // ends on a positive frame: a pair waits
          s_input(x, rows, 500 + (uint64_t)f);
          ffs_ff_layer_forward(a, x, rows);
          ffs_ff_layer_learn(a, rows, f % 2 == 0, 1.0f);
        }
        // a's state into b, as a checkpoint and its load carry it
        ffs_ff_layer_settle(a);
        float sc[FFS_FF_LAYER_OPT_SCALARS];
        ffs_ff_layer_opt_scalars(a, sc);
        ck_assert_int_eq(ffs_ff_layer_set_opt_scalars(b, sc), 0);
        ffs_ff_layer_t *to[2] = {b, c};
        for (int k = 0; k < 2; k++) {
          memcpy(ffs_ff_layer_weights(to[k]), ffs_ff_layer_weights(a), sizeof(float) * UNITS * IN);
          memcpy(ffs_ff_layer_bias(to[k]), ffs_ff_layer_bias(a), sizeof(float) * UNITS);
          memcpy(ffs_ff_layer_peer_mean(to[k]), ffs_ff_layer_peer_mean(a), sizeof(float) * UNITS);
        }
        ffs_ff_layer_opt_t oa = ffs_ff_layer_opt(a), ob = ffs_ff_layer_opt(b);
        float *src[] = {oa.m_w, oa.v_w, oa.g_w, oa.m_b, oa.v_b, oa.g_b};
        float *dst[] = {ob.m_w, ob.v_w, ob.g_w, ob.m_b, ob.v_b, ob.g_b};
        for (int k = 0; k < 6; k++) {
          ck_assert((src[k] == NULL) == (dst[k] == NULL));
          if (src[k]) memcpy(dst[k], src[k], sizeof(float) * (k < 3 ? UNITS * IN : UNITS));
        }
        for (int f = 5; f < 9; f++) {
          s_input(x, rows, 500 + (uint64_t)f);
          ffs_ff_layer_forward(a, x, rows);
          ffs_ff_layer_learn(a, rows, f % 2 == 0, 1.0f);
          for (int k = 0; k < 2; k++) {
            ffs_ff_layer_forward(to[k], x, rows);
            ffs_ff_layer_learn(to[k], rows, f % 2 == 0, 1.0f);
          }
        }
        ck_assert_msg(!memcmp(ffs_ff_layer_weights(a), ffs_ff_layer_weights(b),
                              sizeof(float) * UNITS * IN),
                      "%s, update %s, %d rows: the restored layer went another way",
                      opt ? "adam" : "sgd", up ? "pair" : "frame", rows);
        ck_assert(!memcmp(ffs_ff_layer_bias(a), ffs_ff_layer_bias(b), sizeof(float) * UNITS));
        // and the state carried something: without it, c went another way
        ck_assert(memcmp(ffs_ff_layer_weights(a), ffs_ff_layer_weights(c),
                         sizeof(float) * UNITS * IN));
        ffs_ff_layer_destroy(&a);
        ffs_ff_layer_destroy(&b);
        ffs_ff_layer_destroy(&c);
      }
  // scalars that are not a state are refused
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  ffs_ff_layer_t *l = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 4, 1);
  const float bad[][FFS_FF_LAYER_OPT_SCALARS] = {
      {-1, 0, 0, 0}, {0.5f, 0, 0, 0}, {0, 0, 2, 0}, {0, 0, 0, NAN}, {1 << 20, 0, 0, 0}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    ck_assert_int_eq(ffs_ff_layer_set_opt_scalars(l, bad[k]), -1);
  ffs_ff_layer_destroy(&l);
}
END_TEST

START_TEST(test_pair_frame_steps_as_a_positive_and_a_negative_frame) {
  // One pair frame (positive rows, then the same number of negative rows)
  // must step exactly as update: pair does on the positive frame and the
  // negative frame sent apart: same weights, biases, label weights and peer
  // means, over several steps, for a plain and a labeled (FFCL) layer.
  for (int nl = 0; nl <= 10; nl += 10) {
    ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
    cfg.momentum = 0.9f, cfg.weight_decay = 0.01f, cfg.peer_lambda = 0.03f;
    cfg.update = FFS_UPDATE_PAIR;
    ffs_ff_layer_t *two = ffs_ff_layer_new_labeled(IN, UNITS, nl, ROWS, &cfg, 9, 1);
    ffs_ff_layer_t *one = ffs_ff_layer_new_labeled(IN, UNITS, nl, 2 * ROWS, &cfg, 9, 1);
    float x[2 * ROWS * IN];
    uint8_t lab[2 * ROWS] = {1, 2, 3, 4, 5, 0, 9, 8, 7, 6};
    for (int step = 0; step < 4; step++) {
      s_input(x, 2 * ROWS, 700 + (uint64_t)step);
      ffs_ff_layer_forward_labeled(two, x, ROWS, nl ? lab : NULL);
      float lp = ffs_ff_layer_learn(two, ROWS, 1, 1.0f);
      ffs_ff_layer_forward_labeled(two, x + ROWS * IN, ROWS, nl ? lab + ROWS : NULL);
      float ln = ffs_ff_layer_learn(two, ROWS, 0, 1.0f);
      ffs_ff_layer_forward_labeled(one, x, 2 * ROWS, nl ? lab : NULL);
      float l2 = ffs_ff_layer_learn_pair(one, 2 * ROWS, ROWS, 1.0f);
      ck_assert_float_eq_tol(l2, lp + ln, 1e-5f);
      const float *wa = ffs_ff_layer_weights(two), *wb = ffs_ff_layer_weights(one);
      for (int i = 0; i < UNITS * IN; i++) ck_assert_float_eq_tol(wb[i], wa[i], 1e-6f);
      for (int j = 0; j < UNITS; j++) {
        ck_assert_float_eq_tol(ffs_ff_layer_bias(one)[j], ffs_ff_layer_bias(two)[j], 1e-6f);
        ck_assert_float_eq_tol(ffs_ff_layer_peer_mean(one)[j], ffs_ff_layer_peer_mean(two)[j],
                               1e-6f);
      }
      for (int i = 0; i < nl * UNITS; i++)
        ck_assert_float_eq_tol(ffs_ff_layer_label_weights(one)[i],
                               ffs_ff_layer_label_weights(two)[i], 1e-6f);
    }
    ffs_ff_layer_destroy(&two);
    ffs_ff_layer_destroy(&one);
  }
}
END_TEST

START_TEST(test_shards_compute_the_whole_layer) {
  // a layer cut into shards of 3, 3 and 2 units, with the partial sums
  // added up between them, must follow the whole layer step for step:
  // same goodness, same normalized output, same weights after each update
  static const ffs_goodness_t kinds[] = {FFS_GOODNESS_SSQ, FFS_GOODNESS_MSQ,
                                         FFS_GOODNESS_MIN_SSQ};
  enum { K = 3 };
  const int units[K] = {3, 3, 2}, unit0[K] = {0, 3, 6};
  for (int g = 0; g < 3; g++) {
    ffs_layer_cfg_t cfg = s_cfg(kinds[g]);
    cfg.theta = 0.0f, cfg.momentum = 0.9f, cfg.weight_decay = 0.01f, cfg.peer_lambda = 0.03f;
    ffs_ff_layer_t *whole = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 7, 1001), *sh[K];
    for (int k = 0; k < K; k++)
      sh[k] = ffs_ff_layer_new_shard(IN, units[k], unit0[k], UNITS, ROWS, &cfg, 7, 1001);
    ck_assert_float_eq(ffs_ff_layer_theta(sh[1]), ffs_ff_layer_theta(whole));
    float x[ROWS * IN], part[K][ROWS + 2], tot[ROWS + 2];
    for (int step = 0; step < 6; step++) {
      // a positive frame, a negative frame, a pair frame (2 positive rows, 3 negative)
      int kind = step % 3, n_pos = kind == 0 ? ROWS : kind == 2 ? 2 : 0;
      s_input(x, ROWS, 100 + (uint64_t)step);
      ffs_ff_layer_forward(whole, x, ROWS);
      for (int k = 0; k < K; k++) {
        ffs_ff_layer_forward(sh[k], x, ROWS);
        ck_assert_int_eq(ffs_ff_layer_partials(sh[k], ROWS, n_pos ? n_pos : ROWS, part[k]),
                         ROWS + 2);
      }
      for (int i = 0; i < ROWS + 2; i++) tot[i] = part[0][i] + part[1][i] + part[2][i];
      for (int k = 0; k < K; k++) ffs_ff_layer_set_totals(sh[k], ROWS, tot);
      for (int k = 0; k < K; k++) {
        const float *gw = ffs_ff_layer_goodness(whole), *gs = ffs_ff_layer_goodness(sh[k]);
        for (int r = 0; r < ROWS; r++) ck_assert_float_eq_tol(gs[r], gw[r], 1e-4f * (1 + gw[r]));
        const float *yw = ffs_ff_layer_output(whole), *ys = ffs_ff_layer_output(sh[k]);
        for (int r = 0; r < ROWS; r++)
          for (int j = 0; j < units[k]; j++)
            ck_assert_float_eq_tol(ys[r * units[k] + j], yw[r * UNITS + unit0[k] + j], 1e-5f);
      }
      for (int k = -1; k < K; k++) {
        ffs_ff_layer_t *l = k < 0 ? whole : sh[k];
        if (kind == 2) ffs_ff_layer_learn_pair(l, ROWS, n_pos, 1.0f);
        else ffs_ff_layer_learn(l, ROWS, kind == 0, 1.0f);
      }
      for (int k = 0; k < K; k++) {
        const float *ww = ffs_ff_layer_weights(whole), *ws = ffs_ff_layer_weights(sh[k]);
        for (int i = 0; i < units[k] * IN; i++)
          ck_assert_float_eq_tol(ws[i], ww[unit0[k] * IN + i], 1e-5f);
        for (int j = 0; j < units[k]; j++) {
          ck_assert_float_eq_tol(ffs_ff_layer_bias(sh[k])[j], ffs_ff_layer_bias(whole)[unit0[k] + j],
                                 1e-5f);
          ck_assert_float_eq_tol(ffs_ff_layer_peer_mean(sh[k])[j],
                                 ffs_ff_layer_peer_mean(whole)[unit0[k] + j], 1e-6f);
        }
      }
    }
    ffs_ff_layer_destroy(&whole);
    for (int k = 0; k < K; k++) ffs_ff_layer_destroy(&sh[k]);
  }
}
END_TEST

START_TEST(test_sgd_steps_follow_the_rule_for_small_and_large_frames) {
  // Smoothed-gradient descent, m = 0.9 m + 0.1 g, w -= lr (m + wd w), over
  // several frames: frames of 1 row keep the gradient as factors until the
  // step, frames of 12 rows go through sgemm into m. Both, stepping per
  // frame and per pair, must follow the rule computed the long way.
  enum { BIG = 12 };
  const int rows_of[2] = {1, BIG};
  for (int ri = 0; ri < 2; ri++)
    for (int up = 0; up < 2; up++) {
      const int rows = rows_of[ri];
      ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
      cfg.momentum = 0.9f, cfg.weight_decay = 0.01f;
      cfg.update = up ? FFS_UPDATE_PAIR : FFS_UPDATE_FRAME;
      ffs_ff_layer_t *l = ffs_ff_layer_new(IN, UNITS, BIG, &cfg, 5, 1);
      ffs_ff_layer_t *ref = ffs_ff_layer_new(IN, UNITS, BIG, &cfg, 5, 1);
      float x[BIG * IN], g[UNITS * IN], gsum[UNITS * IN], gb[UNITS];
      float m[UNITS * IN] = {0}, w0[UNITS * IN];
      memset(gsum, 0, sizeof gsum);
      for (int f = 0; f < 6; f++) {
        int pos = f % 2 == 0;
        s_input(x, rows, 300 + (uint64_t)f);
        // the gradient at the layer's current weights, from a copy
        memcpy(w0, ffs_ff_layer_weights(l), sizeof w0);
        memcpy(ffs_ff_layer_weights(ref), w0, sizeof w0);
        memcpy(ffs_ff_layer_bias(ref), ffs_ff_layer_bias(l), sizeof(float) * UNITS);
        ffs_ff_layer_forward(ref, x, rows);
        ffs_ff_layer_grad(ref, rows, pos, g, gb);
        for (int i = 0; i < UNITS * IN; i++) gsum[i] += g[i];
        ffs_ff_layer_forward(l, x, rows);
        ffs_ff_layer_learn(l, rows, pos, 1.0f);
        const float *w = ffs_ff_layer_weights(l);
        if (up && pos) { // pair: nothing moves until the negative frame
          ck_assert_mem_eq(w, w0, sizeof w0);
          continue;
        }
        for (int i = 0; i < UNITS * IN; i++) {
          m[i] = 0.9f * m[i] + 0.1f * gsum[i];
          float want = w0[i] - cfg.lr * (m[i] + cfg.weight_decay * w0[i]);
          ck_assert_msg(fabsf(w[i] - want) <= 1e-6f + 1e-5f * fabsf(want),
                        "rows %d, update %s, frame %d, w[%d] %g, want %g", rows,
                        up ? "pair" : "frame", f, i, (double)w[i], (double)want);
        }
        memset(gsum, 0, sizeof gsum);
      }
      ffs_ff_layer_destroy(&l);
      ffs_ff_layer_destroy(&ref);
    }
}
END_TEST

// A forward on an input normalized into the layer's own buffer (what a stage
// does when it decodes a frame) is the forward on the raw input.
START_TEST(test_forward_on_a_normalized_input_is_the_forward) {
  ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
  ffs_ff_layer_t *a = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 9, 2);
  ffs_ff_layer_t *b = ffs_ff_layer_new(IN, UNITS, ROWS, &cfg, 9, 2);
  float x[ROWS * IN];
  s_input(x, ROWS, 77);
  ffs_ff_layer_forward(a, x, ROWS);
  ffs_rms_normalize(ffs_ff_layer_input(b), x, ROWS, IN, 1e-8f);
  ffs_ff_layer_forward_normalized(b, ROWS, NULL);
  ck_assert_mem_eq(ffs_ff_layer_goodness(a), ffs_ff_layer_goodness(b), sizeof(float) * ROWS);
  ck_assert_mem_eq(ffs_ff_layer_output(a), ffs_ff_layer_output(b), sizeof(float) * ROWS * UNITS);
  // and it learns the same step
  ffs_ff_layer_learn(a, ROWS, 1, 1.0f);
  ffs_ff_layer_learn(b, ROWS, 1, 1.0f);
  ck_assert_mem_eq(ffs_ff_layer_weights(a), ffs_ff_layer_weights(b), sizeof(float) * UNITS * IN);
  ffs_ff_layer_destroy(&a);
  ffs_ff_layer_destroy(&b);
}
END_TEST

START_TEST(test_eval_average_tracks_the_weights_and_serves_evaluation) {
  // eval_average d: every 4th step the averages take in the weights with
  // keep d^4 (avg = keep avg + (1 - keep) w), from the initial weights; an
  // evaluation forward computes with the averages, a training forward with
  // the weights. Labeled (FFCL) layers average their label weights too.
  for (int labeled = 0; labeled < 2; labeled++) {
    ffs_layer_cfg_t cfg = s_cfg(FFS_GOODNESS_SSQ);
    cfg.momentum = 0.9f, cfg.eval_average = 0.9f;
    int nl = labeled ? 10 : 0;
    ffs_ff_layer_t *l = ffs_ff_layer_new_labeled(IN, UNITS, nl, ROWS, &cfg, 7, 1);
    cfg.eval_average = 0.0f;
    ffs_ff_layer_t *plain = ffs_ff_layer_new_labeled(IN, UNITS, nl, ROWS, &cfg, 7, 1);
    ck_assert_ptr_null(ffs_ff_layer_avg_weights(plain));
    float wa[UNITS * IN], ba[UNITS] = {0}, ua[10 * UNITS], x[ROWS * IN];
    uint8_t lab[ROWS] = {1, 2, 3, 4, 5};
    memcpy(wa, ffs_ff_layer_weights(l), sizeof wa);
    if (nl) memcpy(ua, ffs_ff_layer_label_weights(l), sizeof ua);
    const float keep = powf(0.9f, 4.0f);
    for (int step = 1; step <= 12; step++) {
      s_input(x, ROWS, 500 + (uint64_t)step);
      ffs_ff_layer_forward_labeled(l, x, ROWS, nl ? lab : NULL);
      ffs_ff_layer_learn(l, ROWS, step % 2, 1.0f);
      if (step % 4) continue;
      const float *w = ffs_ff_layer_weights(l), *b = ffs_ff_layer_bias(l);
      for (int i = 0; i < UNITS * IN; i++) wa[i] = keep * wa[i] + (1.0f - keep) * w[i];
      for (int j = 0; j < UNITS; j++) ba[j] = keep * ba[j] + (1.0f - keep) * b[j];
      for (int i = 0; i < nl * UNITS; i++)
        ua[i] = keep * ua[i] + (1.0f - keep) * ffs_ff_layer_label_weights(l)[i];
      for (int i = 0; i < UNITS * IN; i++)
        ck_assert_float_eq_tol(ffs_ff_layer_avg_weights(l)[i], wa[i], 1e-6f);
      for (int j = 0; j < UNITS; j++) ck_assert_float_eq_tol(ffs_ff_layer_avg_bias(l)[j], ba[j], 1e-6f);
      for (int i = 0; i < nl * UNITS; i++)
        ck_assert_float_eq_tol(ffs_ff_layer_avg_label_weights(l)[i], ua[i], 1e-6f);
    }
    // the averages lag the weights, so the two forwards must differ ...
    ck_assert_float_ne(ffs_ff_layer_avg_weights(l)[0], ffs_ff_layer_weights(l)[0]);
    // ... and an evaluation forward is a plain layer's forward on the averages
    memcpy(ffs_ff_layer_weights(plain), wa, sizeof wa);
    memcpy(ffs_ff_layer_bias(plain), ba, sizeof ba);
    if (nl) memcpy(ffs_ff_layer_label_weights(plain), ua, sizeof ua);
    float g_eval[ROWS], g_train[ROWS];
    ffs_ff_layer_set_eval(l, 1);
    ffs_ff_layer_forward_labeled(l, x, ROWS, nl ? lab : NULL);
    memcpy(g_eval, ffs_ff_layer_goodness(l), sizeof g_eval);
    ffs_ff_layer_forward_labeled(plain, x, ROWS, nl ? lab : NULL);
    for (int r = 0; r < ROWS; r++)
      ck_assert_float_eq_tol(g_eval[r], ffs_ff_layer_goodness(plain)[r], 1e-4f);
    ffs_ff_layer_set_eval(l, 0);
    ffs_ff_layer_forward_labeled(l, x, ROWS, nl ? lab : NULL);
    memcpy(g_train, ffs_ff_layer_goodness(l), sizeof g_train);
    int differ = 0;
    for (int r = 0; r < ROWS; r++) differ |= fabsf(g_train[r] - g_eval[r]) > 1e-4f;
    ck_assert_msg(differ, "a training forward used the averaged weights");
    // restarting the averages (weights loaded without them) makes them the weights
    ffs_ff_layer_restart_average(l);
    ck_assert_int_eq(memcmp(ffs_ff_layer_avg_weights(l), ffs_ff_layer_weights(l), sizeof wa), 0);
    ck_assert_int_eq(memcmp(ffs_ff_layer_avg_bias(l), ffs_ff_layer_bias(l), sizeof ba), 0);
    if (nl)
      ck_assert_int_eq(
          memcmp(ffs_ff_layer_avg_label_weights(l), ffs_ff_layer_label_weights(l), sizeof ua), 0);
    ffs_ff_layer_restart_average(plain); // off: nothing to restart
    ffs_ff_layer_destroy(&l);
    ffs_ff_layer_destroy(&plain);
  }
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("ff_layer");
  TCase *core = tcase_create("core");
  tcase_add_test(core, test_forward_on_a_normalized_input_is_the_forward);
  tcase_add_test(core, test_optimizer_state_carries_a_layer_on_exactly);
  tcase_add_test(core, test_grad_matches_finite_differences);
  tcase_add_test(core, test_learn_applies_the_gradient);
  tcase_add_test(core, test_peer_normalization_moves_a_dead_unit);
  tcase_add_test(core, test_layer_separates_positive_from_negative);
  tcase_add_test(core, test_label_grad_matches_finite_differences);
  tcase_add_test(core, test_label_goodness_scores_every_label_from_one_pass);
  tcase_add_test(core, test_shards_compute_the_whole_layer);
  tcase_add_test(core, test_pair_update_steps_once_on_both_gradients);
  tcase_add_test(core, test_pair_frame_steps_as_a_positive_and_a_negative_frame);
  tcase_add_test(core, test_sgd_steps_follow_the_rule_for_small_and_large_frames);
  tcase_add_test(core, test_eval_average_tracks_the_weights_and_serves_evaluation);
  suite_add_tcase(s, core);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
