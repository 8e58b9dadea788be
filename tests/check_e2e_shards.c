// check_e2e_shards: sharded layers, pair and triple frames and shared
// memory from the outside, through the `ffstream` binary: each changes
// nothing but speed (the same test errors as the run it stands for); and
// the planner's choice, kept by a resumed run.
#include "t_e2e_util.h"
#include <math.h>
#include <sched.h>

// ---- sharded layers ----

// configs/mnist-ff.yaml small, with random negatives and no feedback, so
// that the run is deterministic.
// The forms these runs compare are named in full: every layer whole and a
// frame per role unless a run's own --set says otherwise (later sets win),
// so that the planner's choices (shards: auto, the frame form) stay out.
static const char *const s_shard_sets[] = {
    "--set", "train.epochs=1", "--set", "data.train_limit=1000", "--set", "data.test_limit=1000",
    "--set", "train.negatives=random", "--set", "feedback=[]", "--set", "train.ckpt_every_s=0",
    "--set", "l1.shards=1", "--set", "l2.shards=1", "--set", "l3.shards=1",
    "--set", "train.pairs=false", NULL};

// Two runs' test errors, overall and per layer, agree within 0.1 pp.
static void s_assert_same_errors(const char *json_a, const char *json_b, const char *a_is,
                                 const char *b_is) {
  const char *keys[][2] = {{NULL, "test_error"}, {"\"l1\"", "energy"}, {"\"l2\"", "energy"},
                           {"\"l2\"", "softmax"}, {"\"l3\"", "energy"}};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    double a = s_json(json_a, keys[i][0], keys[i][1]), b = s_json(json_b, keys[i][0], keys[i][1]);
    ck_assert_msg(a >= 0 && a < 0.9 && fabs(a - b) <= 0.001 + 1e-9,
                  "%s %s: %s %g, %s %g (expected within 0.1 pp)", keys[i][0] ? keys[i][0] : "",
                  keys[i][1], a_is, a, b_is, b);
  }
}

START_TEST(test_sharding_changes_nothing_but_speed) {
  const char *cfg = "configs/mnist-ff.yaml";
  char *whole = strdup(s_run_named("whole", cfg, s_shard_sets, NULL, NULL, NULL, NULL));
  char *sharded =
      strdup(s_run_named("sharded", cfg, s_shard_sets, "l1.shards=2", "l2.shards=3", NULL, NULL));
  // the shards ran as processes of their own and lost nothing
  const char *names[] = {"l1.0", "l1.1", "l2.0", "l2.1", "l2.2", "l3", "out"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char at[64];
    snprintf(at, sizeof at, "\"name\": \"%s\"", names[i]);
    ck_assert_msg(s_json(sharded, at, "frames") > 0, "%s did not run:\n%s", names[i], sharded);
    ck_assert_msg(s_json(sharded, at, "bad_frames") == 0, "%s dropped frames:\n%s", names[i],
                  sharded);
  }
  // and reached the unsharded run's test error, overall and per layer
  s_assert_same_errors(whole, sharded, "unsharded", "sharded");
  free(whole), free(sharded);
}
END_TEST

// Pair frames (train.pairs: positive and negative rows in one frame) are
// update: pair's arithmetic sent as one frame: the same test errors, whole
// and with a sharded layer.
START_TEST(test_pair_frames_change_nothing_but_speed) {
  const char *cfg = "configs/mnist-ff.yaml";
  char *apart = strdup(s_run_named("apart", cfg, s_shard_sets, "layer.update=pair", NULL, NULL, NULL));
  char *paired = strdup(s_run_named("paired", cfg, s_shard_sets, "train.pairs=true", NULL, NULL, NULL));
  char *paired_sh = strdup(
      s_run_named("paired_sh", cfg, s_shard_sets, "train.pairs=true", "l2.shards=2", NULL, NULL));
  s_assert_same_errors(apart, paired, "update: pair", "pair frames");
  s_assert_same_errors(apart, paired_sh, "update: pair", "pair frames, l2 in 2 shards");
  free(apart), free(paired), free(paired_sh);
}
END_TEST

// Triple frames (train.triples: a pair frame with the batch's neutral rows
// after it) change what the layers learn not at all: the neutral rows only
// go on. The layers' energy errors are the pair frames' exactly; the softmax
// readout learns from neutral rows seen before the pair's step instead of
// after it, so its error may move a little. A layer handles one frame per
// training batch instead of two. Sharded, the same errors as whole.
START_TEST(test_triple_frames_change_what_the_readout_sees_only) {
  const char *cfg = "configs/mnist-ff.yaml";
  char *paired =
      strdup(s_run_named("paired3", cfg, s_shard_sets, "train.pairs=true", NULL, NULL, NULL));
  char *triple =
      strdup(s_run_named("triple", cfg, s_shard_sets, "train.triples=true", NULL, NULL, NULL));
  char *triple_sh = strdup(
      s_run_named("triple_sh", cfg, s_shard_sets, "train.triples=true", "l2.shards=2", NULL, NULL));
  const char *layers[] = {"\"l1\"", "\"l2\"", "\"l3\""};
  for (int i = 0; i < 3; i++) {
    double a = s_json(paired, layers[i], "energy"), b = s_json(triple, layers[i], "energy");
    ck_assert_msg(a >= 0 && a < 0.9 && a == b, "%s energy: pair frames %g, triple frames %g "
                  "(expected the same)", layers[i], a, b);
  }
  double sa = s_json(paired, "\"l2\"", "softmax"), sb = s_json(triple, "\"l2\"", "softmax");
  ck_assert_msg(sa >= 0 && sa < 0.5 && sb >= 0 && fabs(sa - sb) <= 0.02,
                "l2 softmax: pair frames %g, triple frames %g (expected within 2 pp)", sa, sb);
  // 1000 samples in batches of 100: 10 pair + 10 neutral frames, or 10 triples
  double fa = s_json(paired, "\"name\": \"l1\"", "frames");
  double fb = s_json(triple, "\"name\": \"l1\"", "frames");
  ck_assert_msg(fa - fb == 10, "l1 frames: pair frames %g, triple frames %g (expected 10 fewer)",
                fa, fb);
  // every report the readout took was of neutral rows (a positive or negative
  // row shows its label, and the readout refuses it in a neutral report)
  ck_assert_msg(s_json(triple, "\"name\": \"l1\"", "bad_frames") == 0, "%s", triple);
  ck_assert_msg(s_json(triple, "\"name\": \"out\"", "bad_frames") == 0, "%s", triple);
  s_assert_same_errors(triple, triple_sh, "triple frames", "triple frames, l2 in 2 shards");
  free(paired), free(triple), free(triple_sh);
}
END_TEST

// Frames through shared memory (transport ipc, shm: true, the default) are
// the frames ZeroMQ would have carried: the same test errors as shm: false,
// and the shared path was really taken (every layer got frames through it).
START_TEST(test_shared_memory_changes_nothing_but_speed) {
  const char *cfg = "configs/mnist-ff.yaml";
  char *copied = strdup(s_run_named("copied", cfg, s_shard_sets, "shm=false", NULL, NULL, NULL));
  char *shared = strdup(s_run_named("shared", cfg, s_shard_sets, "l2.shards=2", NULL, NULL, NULL));
  char *copied_sh = strdup(
      s_run_named("copied_sh", cfg, s_shard_sets, "shm=false", "l2.shards=2", NULL, NULL));
  const char *names[] = {"l1", "l2.0", "l2.1", "l3", "out"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char at[64];
    snprintf(at, sizeof at, "\"name\": \"%s\"", names[i]);
    ck_assert_msg(s_json(shared, at, "shm_frames") > 0, "%s got no frame through shared memory:\n%s",
                  names[i], shared);
    ck_assert_msg(s_json(shared, at, "bad_frames") == 0, "%s dropped frames:\n%s", names[i], shared);
    ck_assert_msg(s_json(copied_sh, at, "shm_frames") == 0, "%s: shm: false, yet:\n%s", names[i],
                  copied_sh);
  }
  s_assert_same_errors(copied_sh, shared, "shm: false", "shm: true");
  s_assert_same_errors(copied, shared, "unsharded, shm: false", "sharded, shm: true");
  free(copied), free(shared), free(copied_sh);
}
END_TEST

// ---- the planner ----

// The stage names of a summary.json, in order ("src l1.0 l1.1 l2 ...").
static void s_stage_names(const char *json, char *out, size_t cap) {
  out[0] = 0;
  const char *p = json ? strstr(json, "\"stages\"") : NULL;
  while (p && (p = strstr(p, "\"name\": \""))) {
    p += 9;
    size_t n = strcspn(p, "\""), used = strlen(out);
    if (used + n + 2 < cap) snprintf(out + used, cap - used, "%.*s ", (int)n, p);
  }
}

// A run planned on every core it may use, stopped after its first epoch,
// resumes on one core with the plan it started with (OUT/plan): the same
// stages load the checkpoints their shards wrote. summary.json says what
// the plan was and that the resumed run kept it.
START_TEST(test_resume_keeps_the_plan) {
  char out[300], log[300], progress[400], path[400], first[512], then[512];
  snprintf(out, sizeof out, "%s/planned", s_tmp);
  snprintf(log, sizeof log, "%s/planned.log", s_tmp);
  snprintf(progress, sizeof progress, "%s/progress", out);
  const char *argv[] = {"", "run", "configs/mnist-ff-hinton.yaml", "--quiet", "--out", out,
                        S_SMALL_SETS, "--set", "feedback=[]", "--set", "train.negatives=random",
                        NULL};
  pid_t pid = s_start(argv, log);
  ck_assert_msg(s_wait_first_eval(progress, 60), "epoch 1 was never evaluated:\n%s",
                s_slurp(log));
  kill(pid, SIGTERM);
  ck_assert_int_eq(s_wait(pid, 30), 130);
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert_msg(json && strstr(json, "\"plan\": {") && strstr(json, "\"form\": \"triples\""), "%s",
                json ? json : "(no summary)");
  s_stage_names(json, first, sizeof first);
  snprintf(path, sizeof path, "%s/plan", out);
  char *plan = strdup(s_slurp(path) ? s_slurp(path) : "");
  ck_assert_msg(strstr(plan, "train.triples=true"), "plan file: '%s'", plan);

  cpu_set_t all, one;
  ck_assert_int_eq(sched_getaffinity(0, sizeof all, &all), 0);
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all)) {
      CPU_SET(c, &one);
      break;
    }
  ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0); // the child inherits one core
  const char *again[] = {"", "run", "configs/mnist-ff-hinton.yaml", "--quiet", "--resume", out,
                         S_SMALL_SETS, "--set", "feedback=[]", "--set", "train.negatives=random",
                         NULL};
  int rc = s_wait(s_start(again, log), 120);
  sched_setaffinity(0, sizeof all, &all);
  ck_assert_msg(rc == 0, "resume exited %d:\n%s", rc, s_slurp(log));
  ck_assert_msg(strstr(s_slurp(log), "(the resumed run's plan)"), "%s", s_slurp(log));
  json = s_summary_learned(out, "after resuming with the first run's plan");
  ck_assert_msg(strstr(json, "\"kept\": true") && strstr(json, "\"epochs_completed\": 3"), "%s",
                json);
  s_stage_names(json, then, sizeof then);
  ck_assert_msg(!strcmp(first, then), "stages before: %s; after resuming on one core: %s", first,
                then);
  snprintf(path, sizeof path, "%s/plan", out);
  ck_assert_str_eq(s_slurp(path), plan);
  free(plan);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("e2e_shards");
  TCase *shards = s_tcase(s, "shards", 300);
  tcase_add_test(shards, test_sharding_changes_nothing_but_speed);
  tcase_add_test(shards, test_pair_frames_change_nothing_but_speed);
  tcase_add_test(shards, test_triple_frames_change_what_the_readout_sees_only);
  tcase_add_test(shards, test_shared_memory_changes_nothing_but_speed);
  tcase_add_test(shards, test_resume_keeps_the_plan);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
