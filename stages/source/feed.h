// feed: where a source's samples come from in train.mode: stream. A feed
// reads its input (the training IDX set in file order, y4m video, CSV rows,
// UDP datagrams, or frames PUSHed by any program) on a thread of its own
// into a bounded queue, so a camera or sensor is drained however busy the
// pipeline is; the source pops samples from the queue. It never blocks the
// source's thread, and bad input is counted, never fatal.
#ifndef FFS_FEED_H
#define FFS_FEED_H
#include <stddef.h>
#include <stdint.h>

#include "ffs_idx.h"
#include "ffs_yaml.h"
#include "ffs_topo.h"

typedef enum {
  FFS_FEED_IDX = 0, // the data set's training split, once, in file order
  FFS_FEED_Y4M,     // YUV4MPEG2 video from a file, standard input or a command
  FFS_FEED_CSV,     // rows of numbers from a file, standard input or a command
  FFS_FEED_UDP,     // one CSV row per datagram on a bound address
  FFS_FEED_ZMQ,     // DATA frames PUSHed to an endpoint the source binds (proto/README.md)
} ffs_feed_kind_t;

typedef enum {
  FFS_OVERFLOW_BLOCK = 0,   // the reader waits for room: nothing is dropped
  FFS_OVERFLOW_DROP_OLDEST, // the oldest waiting sample makes room, counted
} ffs_overflow_t;

// A source's feed options: its stage entry's keys (stages/source/feed.c
// reads them), kept in the stage's kind_cfg.
typedef struct {
  int kind;           // ffs_feed_kind_t (`feed:`, default idx)
  char input[256];    // y4m/csv: a file path, "-" = standard input
  char command[512];  // y4m/csv: a shell command whose standard output is read
  char bind[128];     // udp: "udp://HOST:PORT"; zmq: an endpoint to bind (PULL)
  char labels[256];   // y4m: a side file, one integer label per line by frame
                      // index ("" = unlabelled; frames past its end too)
  int width, height;  // y4m: the frame size the header must give
  int all_planes;     // y4m: planes: luma (0) | all (1, Y then Cb then Cr)
  int columns;        // csv/udp: numbers per row, label included
  int label_column;   // csv/udp: 0-based column of the label, -1 = none
  int header;         // csv: 1 yes, 0 no, -1 auto (a first row that is not numbers)
  int window, hop;    // csv/udp: rows per input vector, rows between vectors
  int overflow;       // ffs_overflow_t (default: block; udp: drop_oldest)
  int queue;          // samples held while the pipeline is busy (default 64)
} ffs_feed_cfg_t;
_Static_assert(sizeof(ffs_feed_cfg_t) <= FFS_KIND_CFG_MAX, "feed options fit kind_cfg");

// The source's keys: reads feed, input, command, bind, labels, width,
// height, planes, columns, label_column, header, window, hop, overflow,
// queue from item into *cfg and sets *dim to the row width the feed's shape
// gives (0 when it has none: idx and zmq rows are data.dim wide). Errors as
// FILE:LINE through c, naming who.
int ffs_feed_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_feed_cfg_t *cfg, int *dim);

// A human-readable name: "idx", "y4m", ...
const char *ffs_feed_kind_str(int kind);

typedef struct ffs_feed ffs_feed_t;

// What travels with a sample.
typedef struct {
  uint64_t index;  // its place in the input: frame, window or row count, from 0
  uint64_t ts_ns;  // when the feed received it (CLOCK_MONOTONIC, ns)
  int label;       // its label, or -1 when unknown
} ffs_feed_meta_t;

// Opens the input (a file, the labels file, a bound socket: their errors
// come at once) without reading it yet. dim: floats per sample; classes:
// labels must be below it; train: the data set an idx feed plays (borrowed,
// outlives the feed; NULL for the others). NULL with the reason in err.
ffs_feed_t *ffs_feed_new(const ffs_feed_cfg_t *cfg, int dim, int classes,
                         const ffs_dataset_t *train, char *err, size_t errlen);
// Starts reading (and a command): when the stream begins, so that nothing is
// queued or dropped while the pipeline starts. Returns 0, or -1 with err.
int ffs_feed_start(ffs_feed_t *f, char *err, size_t errlen);
// A file descriptor that polls readable while samples wait (or the input ended).
int ffs_feed_fd(const ffs_feed_t *f);
// Pops the oldest waiting sample into x (dim floats) and *m. Returns 1, 0
// when none is waiting yet, or -1 when the input has ended and none is left.
int ffs_feed_pop(ffs_feed_t *f, float *x, ffs_feed_meta_t *m);
// Why the input ended: "" for a clean end (end of file, an end MARK), else
// the error ("clip.y4m: frame 12: truncated ..."). Valid once pop gave -1.
const char *ffs_feed_end_reason(const ffs_feed_t *f);
// Samples dropped by drop_oldest, and rows, datagrams or frames refused as bad input.
void ffs_feed_counts(ffs_feed_t *f, uint64_t *dropped, uint64_t *skipped);
// The latest refused input's message ("" when none), for the log.
const char *ffs_feed_last_skip(ffs_feed_t *f, char *buf, size_t cap);
// Stops reading (a command is terminated) and frees the feed.
void ffs_feed_destroy(ffs_feed_t **self_p);

#endif
