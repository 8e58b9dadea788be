// ffstream: the command line. `run` launches a whole topology, `stage` runs
// one stage (what `run` spawns, and what other launchers call per rank),
// `check` validates a topology file. Bad flags and bad files get a message
// and a non-zero exit; nothing starts until the topology is valid.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ffs_launch.h"
#include "ffs_log.h"
#include "ffs_pin.h"
#include "ffs_plan.h"
#include "ffs_spawn.h"
#include "ffs_stage.h"
#include "ffs_topo.h"

#define S_MAX_SETS 64

static const char *s_usage_main =
    "usage: ffstream <command> [options]\n"
    "\n"
    "commands:\n"
    "  run TOPOLOGY     train and evaluate a topology, one pinned process per stage\n"
    "  stage            run one stage of a topology (what `run` spawns)\n"
    "  check TOPOLOGY   validate a topology file and print its stages\n"
    "\n"
    "`ffstream <command> --help` describes each command.\n";

static const char *s_usage_run =
    "usage: ffstream run TOPOLOGY [--epochs N] [--set key=value ...] [--out DIR]\n"
    "                             [--resume DIR] [--threads] [--quiet]\n"
    "\n"
    "  --epochs N       train for N epochs (same as --set train.epochs=N)\n"
    "  --set key=value  override a topology key: train.batch=50, layer.lr=0.02,\n"
    "                   l1.units=500, data.train_limit=5000 (stage keys by name)\n"
    "  --out DIR        write summary.json, metrics.csv and ckpt/ here\n"
    "                   (default runs/<name>-<date>-<time>)\n"
    "  --resume DIR     continue a stopped run in DIR: every stage loads its\n"
    "                   checkpoint, training goes on after the last finished epoch\n"
    "  --threads        run the stages as threads of this process over inproc://\n"
    "  --quiet          no progress line\n";

static const char *s_usage_stage =
    "usage: ffstream stage --topology FILE --name STAGE --run-dir DIR [--out DIR]\n"
    "                      [--core N] [--resume] [--set key=value ...]\n"
    "\n"
    "Runs one stage. It binds its inputs, connects to its peers and to the\n"
    "launcher's control socket (all endpoints derived from the topology and\n"
    "--run-dir), says READY, and runs until told to stop or interrupted.\n"
    "  --core N   pin to core N (-1: do not pin; default -1)\n"
    "  --resume   start from OUT/ckpt/STAGE.safetensors when it exists\n";

static const char *s_usage_check =
    "usage: ffstream check TOPOLOGY [--set key=value ...] [--cores N]\n"
    "\n"
    "Validates TOPOLOGY and prints its stages and what `run` would plan for\n"
    "them (shards: auto, the frame form) on this machine's cores, or on N;\n"
    "on an error prints FILE:LINE and what was expected, and exits 2.\n";

typedef struct {
  const char *topo, *name, *run_dir, *out;
  const char *sets[S_MAX_SETS];
  int n_sets;
  int threads, quiet, core, help;
  int cores;       // check: plan for this many cores (0 = this machine's)
  int resume;      // stage: load its checkpoint; run: the folder to resume
  const char *resume_dir;
  char epochs_set[32];
  uint32_t inc[FFS_MAX_STAGES]; // stage: --incarnations
  int n_inc;
} s_args_t;

// --incarnations: up to FFS_MAX_STAGES comma-separated counts. 0 or -1.
static int s_parse_incarnations(s_args_t *a, const char *v) {
  const char *p = v;
  for (a->n_inc = 0; *p;) {
    char *end;
    errno = 0;
    unsigned long n = strtoul(p, &end, 10);
    if (end == p || errno || n > 1000000 || (*end && *end != ',') || a->n_inc == FFS_MAX_STAGES) {
      fprintf(stderr,
              "ffstream: --incarnations: expected at most %d comma-separated counts "
              "0..1000000, got '%s'\n",
              FFS_MAX_STAGES, v);
      return -1;
    }
    a->inc[a->n_inc++] = (uint32_t)n;
    p = *end ? end + 1 : end;
  }
  return 0;
}

// Parses argv[first..]; returns 0 or prints the problem and returns -1.
static int s_parse(s_args_t *a, int argc, char **argv, int first, const char *usage) {
  a->core = -1;
  for (int i = first; i < argc; i++) {
    const char *f = argv[i];
    int has_value = i + 1 < argc;
    if (!strcmp(f, "--help") || !strcmp(f, "-h")) a->help = 1;
    else if (!strcmp(f, "--threads")) a->threads = 1;
    else if (!strcmp(f, "--quiet")) a->quiet = 1;
    else if (!strcmp(f, "--resume") && usage == s_usage_stage) a->resume = 1;
    else if (!strcmp(f, "--resume") && has_value) a->resume_dir = argv[++i];
    else if (!strcmp(f, "--set") && has_value) {
      if (a->n_sets == S_MAX_SETS) {
        fprintf(stderr, "ffstream: too many --set options (at most %d)\n", S_MAX_SETS);
        return -1;
      }
      a->sets[a->n_sets++] = argv[++i];
    } else if (!strcmp(f, "--epochs") && has_value) {
      char *end;
      errno = 0;
      long n = strtol(argv[++i], &end, 10);
      if (*end || errno || n < 1 || n > INT_MAX) {
        fprintf(stderr, "ffstream: --epochs: expected an integer 1..%d, got '%s'\n", INT_MAX,
                argv[i]);
        return -1;
      }
      snprintf(a->epochs_set, sizeof a->epochs_set, "train.epochs=%ld", n);
    } else if (!strcmp(f, "--out") && has_value) a->out = argv[++i];
    else if (!strcmp(f, "--topology") && has_value) a->topo = argv[++i];
    else if (!strcmp(f, "--name") && has_value) a->name = argv[++i];
    else if (!strcmp(f, "--incarnations") && has_value && usage == s_usage_stage) {
      if (s_parse_incarnations(a, argv[++i]) < 0) return -1;
    }
    else if (!strcmp(f, "--run-dir") && has_value) a->run_dir = argv[++i];
    else if (!strcmp(f, "--cores") && has_value && usage == s_usage_check) {
      char *end;
      long c = strtol(argv[++i], &end, 10);
      if (*end || c < 1 || c > 4096) {
        fprintf(stderr, "ffstream: --cores: expected an integer 1..4096, got '%s'\n", argv[i]);
        return -1;
      }
      a->cores = (int)c;
    }
    else if (!strcmp(f, "--core") && has_value) {
      char *end;
      long c = strtol(argv[++i], &end, 10);
      if (*end || c < -1 || c > 4096) {
        fprintf(stderr, "ffstream: --core: expected an integer -1..4096, got '%s'\n", argv[i]);
        return -1;
      }
      a->core = (int)c;
    } else if (f[0] == '-') {
      fprintf(stderr, "ffstream: unknown option or missing value: '%s'\n\n%s", f, usage);
      return -1;
    } else if (!a->topo) a->topo = f;
    else {
      fprintf(stderr, "ffstream: unexpected argument '%s'\n\n%s", f, usage);
      return -1;
    }
  }
  if (a->epochs_set[0] && a->n_sets < S_MAX_SETS) a->sets[a->n_sets++] = a->epochs_set;
  return 0;
}

static int s_load(ffs_topo_t *t, const s_args_t *a) {
  char err[1024];
  if (ffs_topo_load(t, a->topo, a->sets, a->n_sets, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  return 0;
}

// The placement plan (launch/ffs_plan.h) for the cores this run may use; a
// resumed run keeps its first run's sets (DIR/plan; none when there is no
// such file: a run from before the planner, which sharded nothing), which its
// checkpoints were written under. The sets join the --set overrides, so that
// every stage loads the topology the launcher runs; the plan then describes
// that topology. Returns 0 or -1.
static int s_apply_plan(ffs_topo_t *t, s_args_t *a, ffs_plan_t *plan) {
  static ffs_plan_t chosen; // the sets: planned now, or the resumed run's
  int ncores = ffs_pin_ncores();
  char path[PATH_MAX];
  if (!a->resume_dir) {
    ffs_plan_make(t, ncores, &chosen);
  } else {
    snprintf(path, sizeof path, "%s/plan", a->resume_dir);
    if (access(path, F_OK) == 0 && ffs_plan_load_sets(&chosen, path) < 0) {
      fprintf(stderr, "ffstream: --resume: cannot read %s: %s\n", path, strerror(errno));
      return -1;
    }
  }
  if (a->n_sets + chosen.n_sets > S_MAX_SETS) {
    fprintf(stderr, "ffstream: too many --set options with the plan's %d (at most %d)\n",
            chosen.n_sets, S_MAX_SETS);
    return -1;
  }
  for (int k = 0; k < chosen.n_sets; k++) a->sets[a->n_sets++] = chosen.sets[k];
  if (chosen.n_sets && s_load(t, a) < 0) return -1;
  if (!a->resume_dir) {
    *plan = chosen;
    return 0;
  }
  ffs_plan_make(t, ncores, plan); // what the run goes on with; the sets stay the first run's
  memcpy(plan->sets, chosen.sets, sizeof chosen.sets);
  plan->n_sets = chosen.n_sets, plan->kept = 1;
  return 0;
}

static int s_cmd_check(int argc, char **argv) {
  s_args_t a = {0};
  if (s_parse(&a, argc, argv, 2, s_usage_check) < 0) return 2;
  if (a.help) return fputs(s_usage_check, stdout), 0;
  if (!a.topo) return fputs(s_usage_check, stderr), 2;
  static ffs_topo_t t;
  if (s_load(&t, &a) < 0) return 2;
  char learns[96];
  if (t.stream)
    snprintf(learns, sizeof learns, "a stream at batch %d", t.batch);
  else
    snprintf(learns, sizeof learns, "%d epochs of batch %d on %s", t.epochs, t.batch, t.data_set);
  printf("%s: ok: '%s', %d stages, %d feedback edges, %s\n", t.path, t.name, t.n_stages,
         t.n_feedback, learns);
  for (int i = 0; i < t.n_stages; i++) {
    const ffs_stage_cfg_t *s = &t.stages[i];
    printf("  %-8s %-9s in %5d out %5d\n", s->name, ffs_stage_kind_str(s->kind), s->in_dim, s->out_dim);
  }
  for (int k = 0; k < t.n_feedback; k++)
    printf("  feedback %s -> %s\n", t.stages[t.feedback[k].from].name, t.stages[t.feedback[k].to].name);
  static ffs_plan_t plan;
  char line[512];
  ffs_plan_make(&t, a.cores ? a.cores : ffs_pin_ncores(), &plan);
  printf("  %s\n", ffs_plan_str(&plan, line, sizeof line));
  return 0;
}

static int s_cmd_run(int argc, char **argv) {
  s_args_t a = {0};
  if (s_parse(&a, argc, argv, 2, s_usage_run) < 0) return 2;
  if (a.help) return fputs(s_usage_run, stdout), 0;
  if (!a.topo) return fputs(s_usage_run, stderr), 2;
  static ffs_topo_t t;
  static ffs_plan_t plan;
  if (s_load(&t, &a) < 0 || s_apply_plan(&t, &a, &plan) < 0) return 2;
  if (a.threads) t.transport = FFS_TRANSPORT_INPROC;
  else if (t.transport == FFS_TRANSPORT_INPROC) {
    fprintf(stderr, "%s: transport inproc needs --threads (processes cannot share inproc://)\n", t.path);
    return 2;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0) return fprintf(stderr, "ffstream: cannot find my own executable\n"), 1;
  exe[n] = 0;
  // threads run in this process, whose OpenBLAS chose its kernels when it
  // loaded: start again with the ones the stages should have
  if (a.threads && ffs_spawn_set_blas_coretype()) {
    execv(exe, argv);
    fprintf(stderr, "ffstream: cannot re-execute %s: %s (going on with OpenBLAS's kernels)\n", exe,
            strerror(errno));
  }
  if (a.resume_dir && a.out && strcmp(a.resume_dir, a.out)) {
    fprintf(stderr, "ffstream: --resume DIR writes into DIR; drop --out or give the same folder\n");
    return 2;
  }
  ffs_launch_opts_t o = {.topo_path = a.topo, .sets = a.sets, .n_sets = a.n_sets,
                         .out_dir = a.resume_dir ? a.resume_dir : a.out, .threads = a.threads,
                         .quiet = a.quiet, .exe = exe, .resume = a.resume_dir != NULL,
                         .plan = &plan};
  ffs_install_signal_handlers();
  return ffs_launch_run(&o, &t);
}

static int s_cmd_stage(int argc, char **argv) {
  s_args_t a = {0};
  if (s_parse(&a, argc, argv, 2, s_usage_stage) < 0) return 2;
  if (a.help) return fputs(s_usage_stage, stdout), 0;
  if (!a.topo || !a.name || !a.run_dir) {
    fprintf(stderr, "ffstream stage: --topology, --name and --run-dir are required\n\n%s", s_usage_stage);
    return 2;
  }
  static ffs_topo_t t;
  if (s_load(&t, &a) < 0) return 2;
  int index = ffs_topo_find(&t, a.name);
  if (index < 0) {
    fprintf(stderr, "%s: no stage named '%s'\n", t.path, a.name);
    return 2;
  }
  if (a.n_inc && a.n_inc != t.n_stages) {
    fprintf(stderr, "ffstream: --incarnations: %d counts for %d stages\n", a.n_inc, t.n_stages);
    return 2;
  }
  ffs_install_signal_handlers();
  void *zctx = zmq_ctx_new();
  ffs_stage_env_t env = {.topo = &t, .index = index, .run_dir = a.run_dir,
                         .out_dir = a.out ? a.out : "", .zctx = zctx,
                         .stop = &ffs_interrupted, .core = a.core, .resume = a.resume,
                         .incarnations = a.n_inc ? a.inc : NULL};
  int rc = ffs_stage_run(&env);
  zmq_ctx_term(zctx);
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(s_usage_main, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "run")) return s_cmd_run(argc, argv);
  if (!strcmp(argv[1], "stage")) return s_cmd_stage(argc, argv);
  if (!strcmp(argv[1], "check")) return s_cmd_check(argc, argv);
  fprintf(stderr, "ffstream: unknown command '%s'\n\n%s", argv[1], s_usage_main);
  return 2;
}
