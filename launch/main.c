// ffstream: the command line. `run` launches a whole topology, `stage` runs
// one stage (what `run` spawns, and what other launchers call per rank),
// `check` validates a topology file, `keys` writes a run's CURVE key pair,
// `slurm-script` prints an sbatch script, `saliency` draws what a finished
// run's network looks at (launch/ffs_saliency.h). Bad flags and bad files get a
// message and a non-zero exit; nothing starts until the topology is valid.
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "ffs_curve.h"
#include "ffs_kind.h"
#include "ffs_launch.h"
#include "ffs_log.h"
#include "ffs_pin.h"
#include "ffs_plan.h"
#include "ffs_saliency.h"
#include "ffs_spawn.h"
#include "ffs_stage.h"
#include "ffs_topo.h"
#include "ffs_topo_hosts.h"
#include "ffs_wiring.h"

#define S_MAX_SETS 64

static const char *s_usage_main =
    "usage: ffstream <command> [options]\n"
    "\n"
    "commands:\n"
    "  run TOPOLOGY     train and evaluate a topology, one pinned process per stage\n"
    "  stage            run one stage of a topology (what `run` spawns)\n"
    "  check TOPOLOGY   validate a topology file and print its stages\n"
    "  keys DIR         write a CURVE key pair for runs over tcp (DIR/run.key)\n"
    "  slurm-script TOPOLOGY  print an sbatch script that runs TOPOLOGY\n"
    "  saliency RUN_DIR saliency maps of a finished run, and the deletion test\n"
    "\n"
    "`ffstream <command> --help` describes each command.\n";

static const char *s_usage_run =
    "usage: ffstream run TOPOLOGY [--epochs N] [--set key=value ...] [--out DIR]\n"
    "                             [--resume DIR] [--threads] [--quiet]\n"
    "                             [--launcher local|ssh|slurm|mpi]\n"
    "\n"
    "  --epochs N       train for N epochs (same as --set train.epochs=N)\n"
    "  --set key=value  override a topology key: train.batch=50, layer.lr=0.02,\n"
    "                   l1.units=500, data.train_limit=5000 (stage keys by name)\n"
    "  --out DIR        write summary.json, metrics.csv and ckpt/ here\n"
    "                   (default runs/<name>-<date>-<time>)\n"
    "  --resume DIR     continue a stopped run in DIR: every stage loads its\n"
    "                   checkpoint, training goes on after the last finished epoch\n"
    "  --threads        run the stages as threads of this process over inproc://\n"
    "  --quiet          no progress line\n"
    "  --launcher L     how the stages start (launch.launcher): local children,\n"
    "                   ssh (launch.ssh on each stage's host), slurm (one srun\n"
    "                   step in this allocation), mpi (one MPMD mpirun line);\n"
    "                   docs/MULTIHOST.md\n";

static const char *s_usage_stage =
    "usage: ffstream stage --topology FILE [--name STAGE] --run-dir DIR [--out DIR]\n"
    "                      [--core N|local] [--resume] [--set key=value ...]\n"
    "                      [--ctl ENDPOINT] [--host NAME] [--bind ADDRESS]\n"
    "                      [--keys DIR] [--silent-s N] [--cwd DIR]\n"
    "\n"
    "Runs one stage. It connects to the launcher's control socket, binds its\n"
    "inputs, says where (BOUND), connects its outputs where the launcher says\n"
    "(WIRE), says READY, and runs until told to stop or interrupted.\n"
    "  --name S     the stage; without it, the stage of this rank: SLURM_PROCID,\n"
    "               OMPI_COMM_WORLD_RANK, PMIX_RANK or PMI_RANK (stages in file order)\n"
    "  --core N     pin to core N (-1: do not pin; default -1); local: this\n"
    "               rank's place on its node (SLURM_LOCALID, OMPI_COMM_WORLD_LOCAL_RANK)\n"
    "  --resume     start from OUT/ckpt/STAGE.safetensors when it exists\n"
    "  --ctl EP     the launcher's control endpoint (default: the local one in\n"
    "               --run-dir); a tcp one makes the inputs bind tcp too\n"
    "  --host NAME  the host it runs on, as the topology names it\n"
    "  --bind ADDR  the address its tcp inputs bind (default: this host's address\n"
    "               on the route to the launcher)\n"
    "  --keys DIR   the run's CURVE keys (DIR/run.key): every socket uses CURVE\n"
    "  --silent-s N the launcher unreachable for 3 x N s: checkpoint and stop\n"
    "  --cwd DIR    run in DIR (the topology's relative paths are relative to it)\n";

static const char *s_usage_check =
    "usage: ffstream check TOPOLOGY [--set key=value ...] [--cores N]\n"
    "\n"
    "Validates TOPOLOGY and prints its stages and what `run` would plan for\n"
    "them (shards: auto, the frame form) on this machine's cores, or on N;\n"
    "on an error prints FILE:LINE and what was expected, and exits 2.\n";

typedef struct {
  const char *topo, *name, *run_dir, *out;
  const char *ctl, *host, *bind, *keys, *cwd; // stage: a networked run's
  int silent_s, core_local;                   // stage
  char launcher_set[48];                      // run: --launcher as a --set
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
    else if (!strcmp(f, "--launcher") && has_value && usage == s_usage_run) {
      ffs_launcher_t l;
      if (ffs_launcher_parse(argv[++i], &l) < 0) {
        fprintf(stderr, "ffstream: --launcher: expected local, ssh, slurm or mpi, got '%s'\n",
                argv[i]);
        return -1;
      }
      snprintf(a->launcher_set, sizeof a->launcher_set, "launch.launcher=%s", argv[i]);
    } else if (usage == s_usage_stage && has_value &&
               (!strcmp(f, "--ctl") || !strcmp(f, "--host") || !strcmp(f, "--bind") ||
                !strcmp(f, "--keys") || !strcmp(f, "--cwd"))) {
      const char **dst = f[2] == 'c' ? (f[3] == 't' ? &a->ctl : &a->cwd)
                         : f[2] == 'h' ? &a->host
                         : f[2] == 'b' ? &a->bind
                                       : &a->keys;
      *dst = argv[++i];
    } else if (!strcmp(f, "--silent-s") && has_value && usage == s_usage_stage) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > 3600) {
        fprintf(stderr, "ffstream: --silent-s: expected 1..3600 seconds, got '%s'\n", argv[i]);
        return -1;
      }
      a->silent_s = (int)v;
    } else if (!strcmp(f, "--core") && has_value && !strcmp(argv[i + 1], "local") &&
               usage == s_usage_stage) {
      a->core_local = 1, i++;
    }
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
  if (a->launcher_set[0] && a->n_sets < S_MAX_SETS) a->sets[a->n_sets++] = a->launcher_set;
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
  static ffs_edge_t e[FFS_MAX_EDGES];
  int n = ffs_topo_edges(&t, e, FFS_MAX_EDGES);
  for (int k = 0; k < n && k < FFS_MAX_EDGES; k++) // the edges a kind declares (dp_layer)
    if (e[k].type == FFS_EDGE_FEEDBACK && (ffs_kind_of(t.stages[e[k].from].kind)->backward ||
                                           ffs_kind_of(t.stages[e[k].from].kind)->lateral))
      printf("  %s %s -> %s (reliable, %d wide)\n",
             ffs_kind_of(t.stages[e[k].from].kind)->backward ? "backward" : "lateral",
             t.stages[e[k].from].name, t.stages[e[k].to].name, e[k].width);
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

// ---- one stage ----

// The first of the environment variables names that holds a number 0..max,
// or -1 (none set); *which names it.
static int s_env_rank(const char *const *names, int max, const char **which) {
  for (int k = 0; names[k]; k++) {
    const char *v = getenv(names[k]);
    if (!v || !v[0]) continue;
    char *end;
    long n = strtol(v, &end, 10);
    *which = names[k];
    return *end || n < 0 || n > max ? -2 : (int)n;
  }
  return -1;
}

// The address of this host on the route to the launcher's tcp endpoint ep
// (a UDP socket "connected" there: nothing is sent). 0 or -1.
static int s_route_addr(const char *ep, char *out, size_t outlen) {
  char host[FFS_EP_MAX];
  const char *p = strncmp(ep, "tcp://", 6) ? NULL : ep + 6, *colon = p ? strrchr(p, ':') : NULL;
  if (!colon || (size_t)(colon - p) >= sizeof host) return -1;
  memcpy(host, p, (size_t)(colon - p));
  host[colon - p] = 0;
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
  if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) return -1;
  int fd = socket(AF_INET, SOCK_DGRAM, 0), rc = -1;
  struct sockaddr_in me;
  socklen_t len = sizeof me;
  if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
      inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)outlen))
    rc = 0;
  if (fd >= 0) close(fd);
  freeaddrinfo(ai);
  return rc;
}

static int s_cmd_stage(int argc, char **argv) {
  s_args_t a = {0};
  static const char *const ranks[] = {"SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                                      "PMI_RANK", NULL};
  static const char *const local_ranks[] = {"SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK",
                                            "MPI_LOCALRANKID", NULL};
  if (s_parse(&a, argc, argv, 2, s_usage_stage) < 0) return 2;
  if (a.help) return fputs(s_usage_stage, stdout), 0;
  if (!a.topo || !a.run_dir) {
    fprintf(stderr, "ffstream stage: --topology and --run-dir are required\n\n%s", s_usage_stage);
    return 2;
  }
  if (a.cwd && chdir(a.cwd) < 0) {
    fprintf(stderr, "ffstream stage: --cwd %s: %s\n", a.cwd, strerror(errno));
    return 2;
  }
  static ffs_topo_t t;
  if (s_load(&t, &a) < 0) return 2;
  int index;
  const char *which = "";
  if (a.name) {
    if ((index = ffs_topo_find(&t, a.name)) < 0) {
      fprintf(stderr, "%s: no stage named '%s'\n", t.path, a.name);
      return 2;
    }
  } else if ((index = s_env_rank(ranks, t.n_stages - 1, &which)) < 0) {
    if (index == -1)
      fprintf(stderr, "ffstream stage: no --name, and no rank in SLURM_PROCID, "
              "OMPI_COMM_WORLD_RANK, PMIX_RANK or PMI_RANK\n");
    else
      fprintf(stderr, "ffstream stage: %s='%s': expected a rank 0..%d (%s has %d stages)\n",
              which, getenv(which), t.n_stages - 1, t.path, t.n_stages);
    return 2;
  }
  if (a.core_local) {
    int lr = s_env_rank(local_ranks, 1 << 20, &which);
    a.core = lr >= 0 ? lr % ffs_pin_ncores() : -1;
  }
  if (a.n_inc && a.n_inc != t.n_stages) {
    fprintf(stderr, "ffstream: --incarnations: %d counts for %d stages\n", a.n_inc, t.n_stages);
    return 2;
  }
  char bind[64];
  if (!a.bind && a.ctl && !strncmp(a.ctl, "tcp://", 6)) {
    if (s_route_addr(a.ctl, bind, sizeof bind) < 0) {
      fprintf(stderr, "ffstream stage '%s': no route to the launcher at %s (give --bind)\n",
              t.stages[index].name, a.ctl);
      return 1;
    }
    a.bind = bind;
  }
  static ffs_curve_keys_t keys;
  char err[512];
  if (a.keys && ffs_curve_load(a.keys, "run", &keys, err, sizeof err) < 0) {
    fprintf(stderr, "ffstream stage '%s': %s\n", t.stages[index].name, err);
    return 1;
  }
  ffs_install_signal_handlers();
  void *zctx = zmq_ctx_new();
  ffs_stage_env_t env = {.topo = &t, .index = index, .run_dir = a.run_dir,
                         .out_dir = a.out ? a.out : "", .zctx = zctx,
                         .stop = &ffs_interrupted, .core = a.core, .resume = a.resume,
                         .incarnations = a.n_inc ? a.inc : NULL, .ctl_ep = a.ctl,
                         .host = a.host, .bind_addr = a.bind, .keys = a.keys ? &keys : NULL,
                         .silent_s = a.silent_s};
  int rc = ffs_stage_run(&env);
  zmq_ctx_term(zctx);
  return rc == 0 ? 0 : 1;
}

// ---- slurm-script ----

static const char *s_usage_slurm =
    "usage: ffstream slurm-script TOPOLOGY [--set key=value ...] [--epochs N] [--out DIR]\n"
    "\n"
    "Prints an sbatch script that runs TOPOLOGY with one task per stage: the\n"
    "launcher runs in the batch script, on the allocation's first node, and\n"
    "starts the stages in one `srun --multi-prog` step (--launcher slurm).\n"
    "  sbatch <(ffstream slurm-script configs/mnist-ff.yaml)\n";

static int s_cmd_slurm_script(int argc, char **argv) {
  s_args_t a = {0};
  if (s_parse(&a, argc, argv, 2, s_usage_slurm) < 0) return 2;
  if (a.help) return fputs(s_usage_slurm, stdout), 0;
  if (!a.topo) return fputs(s_usage_slurm, stderr), 2;
  static ffs_topo_t t;
  static ffs_plan_t plan; // planned here, for this machine's cores: the script carries its
                          // sets, so that the run's stages are the tasks it asks for
  if (s_load(&t, &a) < 0 || s_apply_plan(&t, &a, &plan) < 0) return 2;
  char exe[PATH_MAX], topo[PATH_MAX], cwd[PATH_MAX], line[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0 || !realpath(a.topo, topo) || !getcwd(cwd, sizeof cwd))
    return fprintf(stderr, "ffstream: cannot resolve the paths: %s\n", strerror(errno)), 1;
  exe[n] = 0;
  const char *words[2 * S_MAX_SETS + 8] = {exe, "run", topo, "--launcher", "slurm", "--quiet"};
  int w = 6;
  for (int k = 0; k < a.n_sets; k++) words[w++] = "--set", words[w++] = a.sets[k];
  words[w] = NULL;
  if (ffs_spawn_shell_join(words, line, sizeof line) < 0)
    return fprintf(stderr, "ffstream: the command line is too long\n"), 1;
  printf("#!/bin/bash\n"
         "# ffstream: %s, one Slurm task per stage (%d), one core each\n"
         "#SBATCH --job-name=%s\n#SBATCH --ntasks=%d\n#SBATCH --cpus-per-task=1\n"
         "#SBATCH --output=%s-%%j.log\n"
         "set -euo pipefail\ncd '%s'\n", t.path, t.n_stages, t.name, t.n_stages, t.name, cwd);
  char out[PATH_MAX + 8];
  if (a.out) {
    const char *o[] = {a.out, NULL};
    if (ffs_spawn_shell_join(o, out, sizeof out) < 0) return 1;
  } else {
    snprintf(out, sizeof out, "runs/%s-\"$SLURM_JOB_ID\"", t.name);
  }
  int tcp_host_set = 0;
  for (int k = 0; k < a.n_sets; k++) tcp_host_set |= !strncmp(a.sets[k], "tcp.host=", 9);
  if (t.n_hosts)
    printf("# the launcher's control socket binds on the first host of hosts: (%s)\n"
           "exec %s --out %s\n", t.hosts[0].address, line, out);
  else if (tcp_host_set)
    printf("# the launcher's control socket binds on tcp.host (%s)\nexec %s --out %s\n",
           t.tcp_host, line, out);
  else
    printf("# the launcher's control socket binds on this node's first address\n"
           "exec %s --out %s --set tcp.host=\"$(hostname -I | cut -d' ' -f1)\"\n", line, out);
  return 0;
}

// ---- saliency ----

static const char *s_usage_saliency =
    "usage: ffstream saliency RUN_DIR [--images N] [--class auto|C] [--patch P] [--out DIR]\n"
    "                         [--topology FILE] [--set key=value ...]\n"
    "       ffstream saliency RUN_DIR --deletion [--test-limit N] [--out DIR] ...\n"
    "\n"
    "Saliency maps of a finished run's FF network (docs/SALIENCY.md): for each of\n"
    "the first N test images, goodness occlusion (the drop in the class's energy\n"
    "when a pixel, or a P x P patch, is set to 0) and goodness attribution (the\n"
    "gradient of the energy layers' goodness with respect to the pixels), as PNG\n"
    "pictures, per-class means, one grid.png and saliency.json in DIR.\n"
    "  --images N       the first N test images [8]\n"
    "  --class C        maps for class C; auto: each image's predicted class [auto]\n"
    "  --patch P        occlusion by P x P patches [1]\n"
    "  --out DIR        where the files go [RUN_DIR/saliency]\n"
    "  --topology FILE  the run's topology [summary.json's, from where the run started]\n"
    "  --set key=value  an override after the run's own (RUN_DIR/sets)\n"
    "  --deletion       the deletion test instead: for each image's predicted class,\n"
    "                   pixels set to 0 in the order of each map, 5 % steps; prints\n"
    "                   the area under the class's probability curve (lower =\n"
    "                   better), writes DIR/deletion.csv\n"
    "  --test-limit N   the deletion test's images: the first N [1000]\n";

// A whole number lo..hi from flag's value v into *out; 0, or -1 said.
static int s_int_flag(const char *flag, const char *v, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (!*v || *end || errno || n < lo || n > hi) {
    fprintf(stderr, "ffstream saliency: %s: expected an integer %ld..%ld, got '%s'\n", flag, lo,
            hi, v);
    return -1;
  }
  *out = (int)n;
  return 0;
}

static int s_cmd_saliency(int argc, char **argv) {
  const char *sets[S_MAX_SETS];
  ffs_saliency_opts_t o = {.sets = sets, .images = 8, .cls = -1, .patch = 1,
                           .test_limit = 1000, .scale = 4};
  for (int i = 2; i < argc; i++) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 0;
    if (!strcmp(f, "--help") || !strcmp(f, "-h")) return fputs(s_usage_saliency, stdout), 0;
    else if (!strcmp(f, "--deletion")) o.deletion = 1;
    else if (!v && f[0] == '-') {
      fprintf(stderr, "ffstream saliency: %s needs a value\n\n%s", f, s_usage_saliency);
      return 2;
    } else if (!strcmp(f, "--images")) rc = s_int_flag(f, argv[++i], 1, 10000, &o.images);
    else if (!strcmp(f, "--test-limit")) rc = s_int_flag(f, argv[++i], 1, 10000, &o.test_limit);
    else if (!strcmp(f, "--patch")) rc = s_int_flag(f, argv[++i], 1, 1024, &o.patch);
    else if (!strcmp(f, "--class") && !strcmp(v, "auto")) o.cls = -1, i++;
    else if (!strcmp(f, "--class")) rc = s_int_flag(f, argv[++i], 0, 254, &o.cls);
    else if (!strcmp(f, "--out")) o.out_dir = argv[++i];
    else if (!strcmp(f, "--topology")) o.topology = argv[++i];
    else if (!strcmp(f, "--set")) {
      if (o.n_sets == S_MAX_SETS) {
        fprintf(stderr, "ffstream saliency: too many --set options (at most %d)\n", S_MAX_SETS);
        return 2;
      }
      sets[o.n_sets++] = argv[++i];
    } else if (f[0] == '-' || o.run_dir) {
      fprintf(stderr, "ffstream saliency: unexpected '%s'\n\n%s", f, s_usage_saliency);
      return 2;
    } else o.run_dir = f;
    if (rc < 0) return 2;
  }
  if (!o.run_dir) return fputs(s_usage_saliency, stderr), 2;
  char err[1024];
  if (ffs_saliency_run(&o, err, sizeof err) < 0) {
    fprintf(stderr, "ffstream saliency: %s\n", err);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(s_usage_main, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "run")) return s_cmd_run(argc, argv);
  if (!strcmp(argv[1], "stage")) return s_cmd_stage(argc, argv);
  if (!strcmp(argv[1], "check")) return s_cmd_check(argc, argv);
  if (!strcmp(argv[1], "keys")) return ffs_curve_cmd_keys(argc - 1, argv + 1);
  if (!strcmp(argv[1], "slurm-script")) return s_cmd_slurm_script(argc, argv);
  if (!strcmp(argv[1], "saliency")) return s_cmd_saliency(argc, argv);
  fprintf(stderr, "ffstream: unknown command '%s'\n\n%s", argv[1], s_usage_main);
  return 2;
}
