// ffs_topo: a topology file (YAML) loaded into a plain, validated struct:
// the ffstream schema. Every stage process loads the same file, so
// dimensions are derived here and never typed by hand; what the stages ask
// of the graph (endpoints, widths, rows) is in ffs_wiring.h. Errors name
// file:line and what was expected; the loader never asserts on file content.
#ifndef FFS_TOPO_H
#define FFS_TOPO_H

#include <stddef.h>
#include <stdint.h>

#define FFS_MAX_STAGES 32
#define FFS_MAX_FEEDBACK 32
#define FFS_NAME_MAX 32
#define FFS_PATH_MAX 512
#define FFS_MAX_SHARDS 16 // processes one ff_layer may be split into
#define FFS_MAX_HOSTS 32
#define FFS_ADDR_MAX 64   // a host's address (an IPv4/IPv6 literal or a DNS name)

// The built-in kinds' indices in the kind table (common/ffs_kind.h, which
// lists every kind; a stage's kind is its index there).
typedef enum { FFS_STAGE_SOURCE = 0, FFS_STAGE_FF_LAYER, FFS_STAGE_READOUT } ffs_stage_kind_t;
#define FFS_KIND_CFG_MAX 1536 // bytes of options a kind of its own keeps per stage
typedef enum { FFS_TRANSPORT_IPC = 0, FFS_TRANSPORT_INPROC, FFS_TRANSPORT_TCP } ffs_transport_t;
// How `ffstream run` starts the stages (launch.launcher, --launcher).
typedef enum {
  FFS_LAUNCHER_LOCAL = 0, // child processes (or threads) on this host
  FFS_LAUNCHER_SSH,       // each stage through launch.ssh on its host
  FFS_LAUNCHER_SLURM,     // one `srun --multi-prog` step in a Slurm allocation
  FFS_LAUNCHER_MPI,       // one MPMD `mpirun` line
} ffs_launcher_t;
typedef enum { FFS_GOODNESS_SSQ = 0, FFS_GOODNESS_MSQ, FFS_GOODNESS_MIN_SSQ } ffs_goodness_t;
typedef enum { FFS_OPT_SGD = 0, FFS_OPT_ADAM } ffs_opt_kind_t;
typedef enum { FFS_UPDATE_FRAME = 0, FFS_UPDATE_PAIR } ffs_update_t;
typedef enum {
  FFS_NEG_RANDOM = 0, // a uniformly random wrong label
  FFS_NEG_HARD,       // a wrong label drawn from the readout's last softmax
                      // prediction for that sample (needs feedback out -> src)
  FFS_NEG_HYBRID,     // unsupervised: no label anywhere; negatives are two
                      // images mixed through a blurred random mask
} ffs_negatives_t;
typedef enum { FFS_INFER_ENERGY = 0, FFS_INFER_SOFTMAX } ffs_infer_t;
typedef enum {
  FFS_LABELS_OVERLAY = 0, // Hinton: the label is painted into the first data.classes pixels
  FFS_LABELS_SEPARATE,    // FFCL: pixels only; each layer adds its own label weights
} ffs_labels_t;
typedef enum {
  FFS_TIMING_LOCKSTEP = 0, // tick t waits for exactly tick t-1's top-down vector
  FFS_TIMING_FREE,         // free-running: the latest top-down vector wins
  FFS_TIMING_PIPELINED,    // dp_layers: several batches in flight (lockstep: one)
} ffs_timing_t;

// Learning hyper-parameters of one ff_layer (top-level `layer:` block gives
// the defaults; a stage may override any key).
typedef struct {
  ffs_goodness_t goodness; // ssq | msq | min_ssq
  float theta;             // goodness threshold; 0 = number of units
  float temp;              // temperature of the logistic
  ffs_opt_kind_t opt;      // sgd (smoothed gradient) | adam
  float lr;                // step size
  float momentum;          // gradient smoothing (sgd) / beta1 (adam)
  float weight_decay;      // L2 on weights (not biases)
  int cooldown;            // 1 = lr decays linearly to 0 over the 2nd half
  ffs_update_t update;     // frame: one optimizer step per training frame;
                           // pair: one per positive + negative pair of frames,
                           // their gradients summed
  float peer_lambda;       // peer normalization strength (0 = off)
  float peer_decay;        // running-mean decay of mean activity (0.9)
  float eval_average;      // evaluation frames see an exponential moving average
                           // of the weights, this decay per step (0 = the
                           // weights themselves)
} ffs_layer_cfg_t;

typedef struct {
  char name[FFS_NAME_MAX];
  ffs_stage_kind_t kind; // an index into the kind table, ffs_kinds
  int line;          // line of the stage's entry in the topology file
  int core;          // core to pin to; -1 = automatic (index mod cores)
  int host;          // index into topo.hosts (`host:`; 0, the first host, by default)
  int in_dim;        // derived: floats per input row (0 for the source)
  int out_dim;       // derived: floats per output row (the whole layer's units,
                     // also for a shard)
  // ff_layer
  int units;         // units this process computes (a shard's slice)
  ffs_layer_cfg_t layer;
  int td_from;       // derived, recurrent only: ff_layer whose activity comes
                     // back as this layer's top-down input; -1 = none
  int td_dim;        // derived: floats of top-down input per row (0 = none)
  int chain;         // which chain the layer belongs to: 0, or 1 for the second of two
                     // twin pipelines (mirror_layer `model: b`)
  int twin;          // resolved, lateral kinds: the layer at the same depth of the other
                     // chain (its lateral edge's other end); -1 = none (a top, or none)
  int in_from;       // resolved: the stage (group) whose frames come in on the
                     // data input: the chain's stage before, or the layer a
                     // side stage names; -1 = none
  char in_name[FFS_NAME_MAX]; // a side stage: the layer it names (`layer:`)
  unsigned char kind_cfg[FFS_KIND_CFG_MAX]; // a kind's own options (its parse
                                            // writes them, its ops read them)
  int live;          // source: its feed is live input, not the data set
                     // (needs train.mode: stream)
  int delay_ms;      // testing: sleep this long per data frame (a slow stage)
  // sharding: an ff_layer with `shards: k` is expanded at load time into k
  // consecutive stages named <layer>.0 .. <layer>.<k-1>, one process each,
  // each owning units [unit0, unit0 + units) of the layer's out_dim units
  char layer_name[FFS_NAME_MAX]; // the logical layer's name (= name unless sharded)
  int layer_index;   // the logical layer's index in the file (seeds its weights)
  int shard;         // 0..n_shards-1
  int n_shards;      // 1 = not sharded
  int shards_auto;   // `shards: auto` (the default): the launcher's planner may
                     // shard it (launch/ffs_plan.c); 0 = the file said k
  int group;         // index of shard 0 of this stage's group (= the stage itself
                     // unless sharded); reports and forward frames name the group
  int unit0;         // first unit this shard owns
  // readout: indices into topo.stages of the layers it uses
  int n_energy;
  int energy[FFS_MAX_STAGES];
  int n_softmax;
  int softmax[FFS_MAX_STAGES];
  float softmax_lr;   // step of the online softmax readout
  ffs_infer_t primary; // which inference gives test_error
  // resolved by the loader, so that no kind reads another's configuration:
  int report_activity; // ff_layer: the readout's softmax reads this layer's
                       // activity (it reports it with the goodness)
} ffs_stage_cfg_t;

typedef struct {
  int from, to; // stage indices (from later to earlier in the chain)
  int line;
} ffs_feedback_cfg_t;

typedef struct {
  char path[FFS_PATH_MAX]; // file it was loaded from
  char name[FFS_NAME_MAX];
  uint64_t seed;
  ffs_transport_t transport;
  int shm;           // transport ipc: large frames through shared memory, a
                     // descriptor over ZeroMQ (stages/ffs_shm.h) [1]
  char tcp_host[FFS_ADDR_MAX]; // one host, transport tcp: the address the stages
                               // bind on; also the launcher's control address
                               // when there is no hosts: block [127.0.0.1]
  int tcp_port_lo, tcp_port_hi; // tcp.ports: inputs bind the first free port of
                               // this range; 0 0 = any free port the OS gives
  // many hosts (docs/MULTIHOST.md)
  int n_hosts;       // hosts: entries; 0 = one host, this one
  struct {
    char name[FFS_NAME_MAX];
    char address[FFS_ADDR_MAX]; // where the other hosts reach it
  } hosts[FFS_MAX_HOSTS];
  ffs_launcher_t launcher; // launch.launcher [local]
  char ssh_cmd[512];  // launch.ssh: template with {host}, {address}, {cmd}
  char srun_cmd[256]; // launch.srun: the srun command and its options
  char mpirun_cmd[256]; // launch.mpirun: the mpirun command and its options
  int silent_s;       // launch.silent_s: a remote stage that sends nothing this
                      // long is lost (the run stops cleanly) [5]
  int ctl_port;       // launch.port: the control socket's tcp port (0 any) [0]
  int curve;          // security.curve: tcp sockets use CURVE [1]
  char keys_dir[FFS_PATH_MAX]; // security.keys: the run's key pair ("": the
                               // launcher makes one in OUT/keys)
  // data
  char data_set[16];           // mnist | fashion
  char data_dir[FFS_PATH_MAX]; // folder holding the IDX files (relative to cwd)
  int train_limit;             // use the first N training samples (0 = all)
  int test_limit;              // use the first N test samples (0 = all)
  int classes;                 // data.classes: labels are 0..classes-1 (2..255; default
                               // the set's own: 10 for mnist and fashion)
  // training
  int epochs;
  int batch;          // micro-batch rows per frame
  int eval_batch;     // samples per evaluation frame (x classes candidate rows)
  int eval_every;     // evaluate after every N epochs (and after the last)
  ffs_negatives_t negatives;
  int pairs;          // a training batch's positive and negative rows travel in
                      // one frame (roles: positive run, negative run): one step
  int triples;        // ... and its neutral rows after them (a neutral run);
                      // sets pairs
  int form_auto;      // neither pairs nor triples given: the launcher's planner
                      // chooses the frame form (launch/ffs_plan.c)
  int hwm_frames;     // forward high-water mark, in frames
  int ckpt_every_s;   // checkpoint every N seconds as well as at epoch ends (0 = only there)
  int stream;         // train.mode: 0 epochs (a data set, shuffled, epoch after
                      // epoch) | 1 stream (the source's feed, once, in its order,
                      // until it ends or is stopped; prequential evaluation)
  int window;         // stream: samples per rolling prequential accuracy window
  int final_test;     // stream: after the stream, evaluate once on data.set's test
                      // files (0 = no test phase: the eval phase is empty)
  int pace_us;        // the source emits a frame at most every pace_us (0 = as fast
                      // as the pipeline takes them): a stream's frame rate
  ffs_labels_t labels; // overlay (FF) | separate (FFCL label weights)
  int ticks;          // recurrent form when > 1: each image is shown for ticks frames
  ffs_timing_t timing; // recurrent: lockstep | free-running
  float damping;      // recurrent: state = (1 - damping) old + damping computed
  int score_from, score_to; // recurrent: ticks whose goodness is averaged to classify
  ffs_layer_cfg_t layer; // defaults for every ff_layer
  // graph: stages in forward order; the source is first, the readout last
  int n_stages;
  ffs_stage_cfg_t stages[FFS_MAX_STAGES];
  int readout;        // resolved: index of the readout stage
  int want_neutral;   // resolved: the readout trains a softmax (the source sends
                      // neutral rows)
  int supervised;     // resolved: the chain's layers have backward edges (dp_layer): the
                      // source sends plain labelled rows, the readout scores the top
                      // layer's class scores
  int want_candidates; // resolved: the readout does energy inference (the source
                       // sends candidate rows in evaluation)
  int n_feedback;
  ffs_feedback_cfg_t feedback[FFS_MAX_FEEDBACK];
} ffs_topo_t;

// Loads and validates path, applying overrides ("key=value" strings such as
// "train.epochs=3", "layer.lr=0.02", "l1.units=500", "data.train_limit=1000";
// a stage is addressed by its name). Returns 0, or -1 with "file:line: what
// was wrong, what was expected" in err.
int ffs_topo_load(ffs_topo_t *t, const char *path, const char *const *overrides,
                  int n_overrides, char *err, size_t errlen);

// Index of the stage named name, or -1.
int ffs_topo_find(const ffs_topo_t *t, const char *name);
// Index of the readout stage, or -1 (a loaded topology has one: t->readout).
int ffs_topo_find_readout(const ffs_topo_t *t);

const char *ffs_stage_kind_str(ffs_stage_kind_t k);

#endif
