// check_pin: the placement plan (ffs_pin_plan). Layers go heaviest first
// onto the least loaded core, weighed by in_dim x units; a stage's `core:`
// wins, modulo the cores there are; the plan says how many stages share.
#include "ffs_check.h"
#include <string.h>

#include "ffs_pin.h"
#include "ffs_topo.h"

static char s_err[1024];

// configs/mnist-ff-hinton.yaml (784-1000x3) with overrides.
static void s_hinton(ffs_topo_t *t, const char *const *ov, int n_ov) {
  char path[1024];
  snprintf(path, sizeof path, "%s/configs/mnist-ff-hinton.yaml", FFS_SOURCE_DIR);
  ck_assert_msg(ffs_topo_load(t, path, ov, n_ov, s_err, sizeof s_err) == 0, "%s", s_err);
}

// Each core's load: the in_dim x units of the ff_layers placed on it.
static void s_loads(const ffs_topo_t *t, const int *cores, int ncores, double *load) {
  for (int c = 0; c < ncores; c++) load[c] = 0.0;
  for (int i = 0; i < t->n_stages; i++)
    if (t->stages[i].kind == FFS_STAGE_FF_LAYER)
      load[cores[i]] += (double)t->stages[i].in_dim * t->stages[i].units;
}

START_TEST(test_l1_in_two_shards_balances_two_cores) {
  // l1.0 + l2 and l1.1 + l3: 392 000 + 1 000 000 weights on each core
  ffs_topo_t t;
  const char *ov[] = {"l1.shards=2"};
  s_hinton(&t, ov, 1);
  ck_assert_int_eq(t.n_stages, 6);
  int cores[FFS_MAX_STAGES];
  ck_assert_int_eq(ffs_pin_plan(&t, 2, cores), 4); // 6 stages, 2 cores
  double load[2];
  s_loads(&t, cores, 2, load);
  ck_assert_msg(load[0] == load[1], "core loads %g and %g", load[0], load[1]);
  int l10 = ffs_topo_find(&t, "l1.0"), l11 = ffs_topo_find(&t, "l1.1");
  int l2 = ffs_topo_find(&t, "l2"), l3 = ffs_topo_find(&t, "l3");
  ck_assert(l10 >= 0 && l11 >= 0 && l2 >= 0 && l3 >= 0);
  ck_assert_int_ne(cores[l10], cores[l11]);
  ck_assert_int_ne(cores[l2], cores[l3]);
}
END_TEST

START_TEST(test_heaviest_layers_spread_first) {
  // l2 in 2 shards: l3 (1 000 000) and l1 (784 000) go to different cores
  // first; the halves of l2 then even out what they can (1.28 M and 1.5 M)
  ffs_topo_t t;
  const char *ov[] = {"l2.shards=2"};
  s_hinton(&t, ov, 1);
  int cores[FFS_MAX_STAGES];
  ffs_pin_plan(&t, 2, cores);
  ck_assert_int_ne(cores[ffs_topo_find(&t, "l1")], cores[ffs_topo_find(&t, "l3")]);
  double load[2];
  s_loads(&t, cores, 2, load);
  double hi = load[0] > load[1] ? load[0] : load[1], lo = load[0] + load[1] - hi;
  ck_assert_msg(hi == 1500000.0 && lo == 1284000.0, "core loads %g and %g", hi, lo);
}
END_TEST

START_TEST(test_one_core_each_or_all_on_one) {
  ffs_topo_t t;
  s_hinton(&t, NULL, 0);
  int cores[FFS_MAX_STAGES];
  ck_assert_int_eq(ffs_pin_plan(&t, 16, cores), 0);
  for (int i = 0; i < t.n_stages; i++)
    for (int j = 0; j < i; j++) ck_assert_int_ne(cores[i], cores[j]);
  ck_assert_int_eq(ffs_pin_plan(&t, 1, cores), t.n_stages - 1);
  for (int i = 0; i < t.n_stages; i++) ck_assert_int_eq(cores[i], 0);
  ck_assert_int_eq(ffs_pin_plan(&t, 0, cores), t.n_stages - 1); // no core reported: one
}
END_TEST

START_TEST(test_a_stage_core_wins_modulo_the_cores) {
  ffs_topo_t t;
  const char *ov[] = {"l3.core=5"};
  s_hinton(&t, ov, 1);
  int cores[FFS_MAX_STAGES];
  ffs_pin_plan(&t, 2, cores);
  ck_assert_int_eq(cores[ffs_topo_find(&t, "l3")], 1);
  ffs_pin_plan(&t, 8, cores);
  ck_assert_int_eq(cores[ffs_topo_find(&t, "l3")], 5);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pin");
  TCase *tc = tcase_create("plan");
  tcase_add_test(tc, test_l1_in_two_shards_balances_two_cores);
  tcase_add_test(tc, test_heaviest_layers_spread_first);
  tcase_add_test(tc, test_one_core_each_or_all_on_one);
  tcase_add_test(tc, test_a_stage_core_wins_modulo_the_cores);
  suite_add_tcase(s, tc);
  return ffs_check_run(s);
}
