// ffs_ctl: the control messages between the launcher (ROUTER) and the stages
// (DEALER): every message type, its keys and their types in one table
// (FFS_CTL_KEYS), encoded as one MessagePack map {"type": "STATS", key:
// value, ...}. The decoder treats its input as hostile (it comes off a
// socket): it never allocates, checks every length against the bytes
// present, and refuses a malformed message with a reason instead of
// crashing. Unknown keys are skipped, so a newer peer may add some.
#ifndef FFS_CTL_H
#define FFS_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "ffs_topo.h" // FFS_MAX_STAGES, FFS_NAME_MAX

// Largest control message either side accepts (ZMQ_MAXMSGSIZE on both ends).
#define FFS_CTL_MSG_MAX (1 << 16)
#define FFS_CTL_TEXT_MAX 1024 // an ERROR's text, NUL included
#define FFS_CTL_EPS_MAX 12288 // BOUND's and WIRE's endpoint lists, NUL included
#define FFS_CTL_HOST_MAX 64   // BOUND's host name, NUL included
#define FFS_CTL_STATS_EVERY_S 0.5 // a stage's STATS period: its heartbeat to the launcher

// The message types. Stage -> launcher: READY .. BYE; launcher -> stage:
// EPOCH .. STOP.
#define FFS_CTL_TYPES(X)                                                                       \
  X(BOUND)   /* bound its inputs: where (its host, its endpoints) */                          \
  X(READY)   /* wired: connected its outputs; may be streamed to */                           \
  X(STATS)   /* its counters, every 0.5 s and when it stops */                                 \
  X(SENT)    /* source: finished sending a phase */                                            \
  X(TRAINED) /* readout: a training phase's MARK arrived */                                    \
  X(RESULT)  /* readout: an evaluation phase's MARK arrived; its test errors */                \
  X(ERROR)   /* the stage failed, and why */                                                   \
  X(BYE)     /* the stage stopped cleanly (checkpoint written) */                              \
  X(EPOCH)   /* source: queue phase (epoch, mode) */                                           \
  X(MARK)    /* source: re-send the MARK that ends phase (epoch, mode) */                      \
  X(WIRE)    /* the endpoints to connect its outputs to (again, after a restart) */        \
  X(LOST)    /* stage `stage` was restarted as incarnation `incarnation` */                    \
  X(CKPT)    /* write a checkpoint now */                                                      \
  X(END)     /* source: end the stream now (train.mode: stream; Ctrl-C) */                     \
  X(STOP)    /* checkpoint and exit */

typedef enum {
#define S_CTL_ENUM(T) FFS_CTL_##T,
  FFS_CTL_TYPES(S_CTL_ENUM)
#undef S_CTL_ENUM
  FFS_CTL_N_TYPES
} ffs_ctl_type_t;

// How a value travels. I32/U64: a MessagePack int (decoded only when it fits);
// F64: a float (float 32 or 64), rounded by the sender to the printf format
// the table gives, so the figures the launcher writes are those it always
// wrote; STR: a str that fits its char array with its NUL; MODE: "train" (0)
// or "eval" (1); LAYERS: RESULT's array of [name, energy, softmax] arrays.
typedef enum { FFS_CTL_I32, FFS_CTL_U64, FFS_CTL_F64, FFS_CTL_STR, FFS_CTL_MODE, FFS_CTL_LAYERS } ffs_ctl_kind_t;

typedef struct {
  char name[FFS_NAME_MAX]; // the logical layer
  double energy, softmax;  // its test errors (fractions; -1 = not measured)
  double cosine;           // mean cosine between different samples' activity (-2 = not
                           // measured): near 1, the layer collapsed
} ffs_ctl_layer_t;

// A stage's counters (STATS), as ffs_stage_stats_t keeps them.
typedef struct {
  uint64_t frames, bad, samples, fbr, fbs, fbd, tds, tdk, shm; // ffs_stage_stats_t's counters
  double busy, blocked, cpu, wall; // seconds
  double gpos, gneg;               // mean goodness of the latest positive / negative frame
  double l50, l99, h50, e50, e99, eh50; // readout latency (us): train l*, h50; eval e*
  uint64_t ln, en;                 // frames those figures cover (train, eval)
  uint64_t drop, skip, pn, pe, pub; // stream: source in_dropped, in_skipped; readout
                                    // preq_n, preq_err, published
  double pw;                        // stream: readout preq_window
  uint64_t ref;                     // tcp peers refused (CURVE: no key of the run)
  uint64_t stk, stb, stx, fbu;      // dp_layer: stash_max, stash_bytes, stash_expired,
                                    // fb_unknown
} ffs_ctl_stats_t;

// One decoded (or to-be-encoded) message: `type` says which member of the
// union holds its fields. EPOCH and MARK share `phase`.
typedef struct {
  ffs_ctl_type_t type;
  union {
    struct {
      char host[FFS_CTL_HOST_MAX]; // the host it runs on, as the run names it
      // its inputs: space-separated CHAN=ENDPOINT, CHAN one of in, fb, peer,
      // rep<group>; a channel may be bound twice (ipc for its own host, tcp
      // for the others) (ffs_wiring.h: ffs_eps_*)
      char eps[FFS_CTL_EPS_MAX];
    } bound;
    struct {
      // its outputs: space-separated EDGE=ENDPOINT, EDGE the index of the
      // edge in ffs_topo_edges' order
      char eps[FFS_CTL_EPS_MAX];
      int32_t shm; // 1: every output stays on its host: frames may go through shared memory
    } wire;
    struct {
      int32_t core, pid; // where the stage runs
      char blas[16];     // the kernels OpenBLAS chose when it loaded
    } ready;
    ffs_ctl_stats_t stats;
    struct {
      int32_t epoch, mode;
      int32_t n; // samples sent
      char why[512]; // a stream that ended early: why (its input's error); "" none
    } sent;
    struct {
      int32_t epoch;
    } trained;
    struct {
      int32_t epoch;
      uint64_t n_energy, n_softmax; // test samples behind each figure
      double energy, softmax;       // test errors of the whole stack (-1 = not measured)
      int32_t n_layers;
      ffs_ctl_layer_t layers[FFS_MAX_STAGES];
    } result;
    struct {
      char text[FFS_CTL_TEXT_MAX];
    } error;
    struct {
      int32_t epoch, mode; // mode 0 train, 1 eval
    } phase;               // EPOCH, MARK
    struct {
      int32_t stage;       // index in the topology
      int32_t incarnation; // restarts of it so far
    } lost;
  };
} ffs_ctl_msg_t;

// Every key of every message: X(TYPE, union member, field, kind, rounding).
// The key on the wire is the field's name; every key listed is required.
#define FFS_CTL_KEYS(X)                                                                        \
  X(BOUND, bound, host, STR, NULL)                                                             \
  X(BOUND, bound, eps, STR, NULL)                                                              \
  X(READY, ready, core, I32, NULL)                                                             \
  X(READY, ready, pid, I32, NULL)                                                              \
  X(READY, ready, blas, STR, NULL)                                                             \
  X(STATS, stats, frames, U64, NULL)                                                           \
  X(STATS, stats, bad, U64, NULL)                                                              \
  X(STATS, stats, busy, F64, "%.4f")                                                           \
  X(STATS, stats, blocked, F64, "%.4f")                                                        \
  X(STATS, stats, cpu, F64, "%.4f")                                                            \
  X(STATS, stats, wall, F64, "%.4f")                                                           \
  X(STATS, stats, samples, U64, NULL)                                                          \
  X(STATS, stats, gpos, F64, "%.4g")                                                           \
  X(STATS, stats, gneg, F64, "%.4g")                                                           \
  X(STATS, stats, fbr, U64, NULL)                                                              \
  X(STATS, stats, fbs, U64, NULL)                                                              \
  X(STATS, stats, fbd, U64, NULL)                                                              \
  X(STATS, stats, tds, U64, NULL)                                                              \
  X(STATS, stats, tdk, U64, NULL)                                                              \
  X(STATS, stats, l50, F64, "%.1f")                                                            \
  X(STATS, stats, l99, F64, "%.1f")                                                            \
  X(STATS, stats, h50, F64, "%.1f")                                                            \
  X(STATS, stats, ln, U64, NULL)                                                               \
  X(STATS, stats, e50, F64, "%.1f")                                                            \
  X(STATS, stats, e99, F64, "%.1f")                                                            \
  X(STATS, stats, eh50, F64, "%.1f")                                                           \
  X(STATS, stats, en, U64, NULL)                                                               \
  X(STATS, stats, shm, U64, NULL)                                                              \
  X(STATS, stats, drop, U64, NULL)                                                             \
  X(STATS, stats, skip, U64, NULL)                                                             \
  X(STATS, stats, pn, U64, NULL)                                                               \
  X(STATS, stats, pe, U64, NULL)                                                               \
  X(STATS, stats, pw, F64, "%.6f")                                                             \
  X(STATS, stats, stk, U64, NULL)                                                              \
  X(STATS, stats, stb, U64, NULL)                                                              \
  X(STATS, stats, stx, U64, NULL)                                                              \
  X(STATS, stats, fbu, U64, NULL)                                                              \
  X(STATS, stats, pub, U64, NULL)                                                              \
  X(STATS, stats, ref, U64, NULL)                                                              \
  X(SENT, sent, epoch, I32, NULL)                                                              \
  X(SENT, sent, mode, MODE, NULL)                                                              \
  X(SENT, sent, n, I32, NULL)                                                                  \
  X(SENT, sent, why, STR, NULL)                                                                \
  X(TRAINED, trained, epoch, I32, NULL)                                                        \
  X(RESULT, result, epoch, I32, NULL)                                                          \
  X(RESULT, result, n_energy, U64, NULL)                                                       \
  X(RESULT, result, energy, F64, "%.6f")                                                       \
  X(RESULT, result, n_softmax, U64, NULL)                                                      \
  X(RESULT, result, softmax, F64, "%.6f")                                                      \
  X(RESULT, result, layers, LAYERS, "%.6f")                                                    \
  X(ERROR, error, text, STR, NULL)                                                             \
  X(EPOCH, phase, epoch, I32, NULL)                                                            \
  X(EPOCH, phase, mode, MODE, NULL)                                                            \
  X(MARK, phase, epoch, I32, NULL)                                                             \
  X(MARK, phase, mode, MODE, NULL)                                                             \
  X(WIRE, wire, eps, STR, NULL)                                                                \
  X(WIRE, wire, shm, I32, NULL)                                                                \
  X(LOST, lost, stage, I32, NULL)                                                              \
  X(LOST, lost, incarnation, I32, NULL)

// Encodes m into buf. Returns the length, or 0 when it does not fit cap.
size_t ffs_ctl_encode(uint8_t *buf, size_t cap, const ffs_ctl_msg_t *m);

// Decodes one message of len bytes into *out. Returns 0, or -1 with the
// reason in why (a missing, duplicate or ill-typed key, a truncation, ...).
int ffs_ctl_decode(ffs_ctl_msg_t *out, const uint8_t *buf, size_t len, char *why, size_t whylen);

// "STATS", "EPOCH", ...; "?" for a value out of range.
const char *ffs_ctl_type_str(int type);

// A one-line text form for logs and error messages: "MARK epoch=3 mode=eval".
// Returns out.
const char *ffs_ctl_str(const ffs_ctl_msg_t *m, char *out, size_t outlen);

#endif
