// check_plan: the launcher's placement planner (launch/ffs_plan.c) on the
// shipped configs: what it shards and which frame form it picks for 1 to 16
// cores, that what a file says wins over it, that forms and layers it may not
// touch stay as they are, and that a run's plan file reads back.
#include "ffs_plan.h"
#include "ffs_topo.h"

#include "ffs_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ffs_topo_t s_t;
static ffs_plan_t s_p;
static char s_err[1024];

// Loads configs/name with the overrides (NULL-terminated) and plans it for
// ncores cores.
static void s_plan(const char *name, int ncores, const char *const *sets) {
  const char *src = getenv("FFS_SOURCE_DIR");
#ifdef FFS_SOURCE_DIR
  if (!src) src = FFS_SOURCE_DIR;
#endif
  char path[512];
  snprintf(path, sizeof path, "%s/configs/%s", src ? src : "..", name);
  int n = 0;
  while (sets && sets[n]) n++;
  ck_assert_msg(ffs_topo_load(&s_t, path, sets, n, s_err, sizeof s_err) == 0, "%s", s_err);
  ffs_plan_make(&s_t, ncores, &s_p);
}

static int s_shards(const char *layer) {
  for (int l = 0; l < s_p.n_layers; l++)
    if (!strcmp(s_p.layer[l], layer)) return s_p.shards[l];
  return -1;
}

static int s_has_set(const char *set) {
  for (int k = 0; k < s_p.n_sets; k++)
    if (!strcmp(s_p.sets[k], set)) return 1;
  return 0;
}

// 784-1000x3: one core runs everything whole; on two, l1 (the lightest
// layer) in two halves puts half of it beside each of the others, the form
// the benchmarks found fastest by hand; more cores get more shards and a
// busiest core closer to an even split.
START_TEST(test_hinton_over_cores) {
  s_plan("mnist-ff-hinton.yaml", 1, NULL);
  ck_assert_int_eq(s_shards("l1") + s_shards("l2") + s_shards("l3"), 3);
  ck_assert_int_eq(s_p.form, FFS_FORM_TRIPLES);
  ck_assert(s_p.form_chosen && s_has_set("train.triples=true"));
  ck_assert_int_eq(s_p.n_sets, 1);

  s_plan("mnist-ff-hinton.yaml", 2, NULL);
  ck_assert_int_eq(s_shards("l1"), 2);
  ck_assert_int_eq(s_shards("l2"), 1);
  ck_assert_int_eq(s_shards("l3"), 1);
  ck_assert(s_has_set("l1.shards=2"));
  ck_assert_double_lt(s_p.balance, 1.10);

  double last = 1e9;
  int last_total = 0;
  for (int cores = 4; cores <= 16; cores *= 2) {
    s_plan("mnist-ff-hinton.yaml", cores, NULL);
    int total = s_shards("l1") + s_shards("l2") + s_shards("l3");
    ck_assert_msg(total > last_total, "%d cores: %d shards in all, not more than %d", cores, total,
                  last_total);
    ck_assert_msg(total <= cores + 3, "%d cores: %d layer processes", cores, total);
    ck_assert_msg(s_p.balance < 1.6, "%d cores: busiest core %.2f x even", cores, s_p.balance);
    last = s_p.balance, last_total = total;
  }
  (void)last;
}
END_TEST

// At batch 1 a shard's cost per frame outweighs its share of one row's
// work: nothing is sharded, on any number of cores; and pair frames, since a
// 3-row forward is OpenBLAS's slow path.
START_TEST(test_batch_1) {
  const char *one[] = {"train.batch=1", NULL};
  for (int cores = 2; cores <= 16; cores *= 2) {
    s_plan("mnist-ff-hinton.yaml", cores, one);
    ck_assert_int_eq(s_shards("l1") + s_shards("l2") + s_shards("l3"), 3);
    ck_assert(s_p.form_chosen && s_p.form == FFS_FORM_PAIRS);
  }
}
END_TEST

// What the file says wins: an explicit shards: k is never changed (the
// planner balances the other layers around it), and train.pairs / triples
// given (even false) leave the frame form alone.
START_TEST(test_the_file_wins) {
  const char *whole_l1[] = {"l1.shards=1", NULL};
  s_plan("mnist-ff-hinton.yaml", 2, whole_l1);
  ck_assert_int_eq(s_shards("l1"), 1);
  ck_assert(!s_p.chosen[0] && s_p.chosen[1] && s_p.chosen[2]);
  ck_assert(!s_has_set("l1.shards=2"));

  const char *l2_in_3[] = {"l2.shards=3", NULL};
  s_plan("mnist-ff-hinton.yaml", 2, l2_in_3);
  ck_assert_int_eq(s_shards("l2"), 3);
  ck_assert(!s_has_set("l2.shards=3")); // the file's own: nothing to add

  const char *no_triples[] = {"train.triples=false", NULL};
  s_plan("mnist-ff-hinton.yaml", 2, no_triples);
  ck_assert(!s_p.form_chosen && s_p.form == FFS_FORM_ROLES);
  ck_assert(!s_has_set("train.triples=true"));

  const char *pairs[] = {"train.pairs=true", NULL};
  s_plan("mnist-ff-hinton.yaml", 2, pairs);
  ck_assert(!s_p.form_chosen && s_p.form == FFS_FORM_PAIRS);
}
END_TEST

// The recurrent form sends a frame per role tick by tick and cannot be
// sharded: nothing changes. FFCL layers cannot be sharded either; a layer
// at the end of a feedback edge stays whole.
START_TEST(test_forms_it_may_not_touch) {
  s_plan("mnist-recurrent.yaml", 16, NULL);
  ck_assert_int_eq(s_p.n_sets, 0);
  ck_assert(!s_p.form_chosen && s_p.form == FFS_FORM_ROLES);
  s_plan("mnist-ffcl.yaml", 16, NULL);
  for (int l = 0; l < s_p.n_layers; l++) ck_assert_int_eq(s_p.shards[l], 1);
  s_plan("mnist-ff.yaml", 16, NULL); // feedback l3 -> l1 (and more): those stay whole
  for (int e = 0; e < s_t.n_feedback; e++) {
    const ffs_stage_cfg_t *from = &s_t.stages[s_t.feedback[e].from];
    if (from->kind == FFS_STAGE_FF_LAYER) ck_assert_int_eq(s_shards(from->name), 1);
  }
}
END_TEST

// The plan the loader is given back loads: sharded and in triples, with as
// many stages as it said.
START_TEST(test_plan_loads_back) {
  s_plan("mnist-ff-hinton.yaml", 8, NULL);
  const char *sets[FFS_PLAN_MAX_SETS + 1];
  int stages = 2; // source and readout
  for (int l = 0; l < s_p.n_layers; l++) stages += s_p.shards[l];
  for (int k = 0; k < s_p.n_sets; k++) sets[k] = s_p.sets[k];
  sets[s_p.n_sets] = NULL;
  s_plan("mnist-ff-hinton.yaml", 8, sets);
  ck_assert_int_eq(s_t.n_stages, stages);
  ck_assert(s_t.triples);
  s_plan("stream-784-500-500.yaml", 2, NULL); // batch 1: the planner's pairs
  ck_assert(s_p.form_chosen && s_p.form == FFS_FORM_PAIRS);
  s_plan("mnist-ff-2000x4.yaml", 2, NULL); // the file says pairs: false
  ck_assert(!s_p.form_chosen && s_p.form == FFS_FORM_ROLES);
}
END_TEST

// A run's plan file: written, read back the same; a file the planner did
// not write is refused.
START_TEST(test_plan_file) {
  char dir[64], path[128];
  ffs_check_mkdtemp(dir, sizeof dir, "check_plan");
  snprintf(path, sizeof path, "%s/plan", dir);
  s_plan("mnist-ff-hinton.yaml", 2, NULL);
  ck_assert_int_eq(ffs_plan_save(&s_p, path), 0);
  ffs_plan_t back = {0};
  ck_assert_int_eq(ffs_plan_load_sets(&back, path), 0);
  ck_assert_int_eq(back.n_sets, s_p.n_sets);
  for (int k = 0; k < s_p.n_sets; k++) ck_assert_str_eq(back.sets[k], s_p.sets[k]);
  FILE *f = fopen(path, "w");
  fputs("l1.shards=2\nthis is not a set\n", f);
  fclose(f);
  ck_assert_int_eq(ffs_plan_load_sets(&back, path), -1);
  char line[512];
  ck_assert(strstr(ffs_plan_str(&s_p, line, sizeof line), "l1 2 shards (auto)"));
  ffs_check_rmtree(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("plan");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_hinton_over_cores);
  tcase_add_test(tc, test_batch_1);
  tcase_add_test(tc, test_the_file_wins);
  tcase_add_test(tc, test_forms_it_may_not_touch);
  tcase_add_test(tc, test_plan_loads_back);
  tcase_add_test(tc, test_plan_file);
  suite_add_tcase(s, tc);
  return ffs_check_run(s);
}
