// ffs_frame: the wire format of every ffstream message (protocol version 1).
// One ZeroMQ message = a MessagePack map (the header) immediately followed by
// the payload: rows*cols little-endian float32. proto/README.md is the spec.
// Decoding never trusts a count: every length is checked against the bytes
// present and the caller's limits before anything is read; it never allocates.
#ifndef FFS_FRAME_H
#define FFS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FFS_PROTO_VERSION 1
#define FFS_LABEL_NONE 255 // "no label": unknown true label, or a neutral row

typedef enum {
  FFS_FRAME_DATA = 1,     // activity rows flowing forward (source -> layers)
  FFS_FRAME_REPORT = 2,   // a layer's per-row goodness (+ activity) to the readout
  FFS_FRAME_FEEDBACK = 3, // a vector flowing backward (later stage -> earlier)
  FFS_FRAME_MARK = 4,     // end of an epoch's stream (rows = 0), flows forward
  FFS_FRAME_PARTIAL = 5,  // a shard's partial sums (1 row) to its sibling shards
} ffs_frame_kind_t;

#define FFS_FRAME_MAX_SHARDS 16 // slices one frame may be cut into

typedef enum {
  FFS_POL_NEUTRAL = 0,    // neutral label (0.1 in every label pixel)
  FFS_POL_POSITIVE = 1,   // true label overlaid
  FFS_POL_NEGATIVE = 2,   // wrong label overlaid
  FFS_POL_CANDIDATES = 3, // evaluation: one row per candidate label (cands[])
  FFS_POL_PAIR = 4,       // training (train.pairs): rows = 2n, n positive rows,
                          // then the same n samples' negative rows
  FFS_POL_TRIPLE = 5,     // training (train.triples): rows = 3n, a pair's 2n rows,
                          // then the same n samples' neutral rows
} ffs_pol_t;

typedef enum { FFS_MODE_TRAIN = 0, FFS_MODE_EVAL = 1 } ffs_mode_t;

// The header fields. Arrays are per row and optional (NULL = absent).
typedef struct {
  uint8_t kind;    // ffs_frame_kind_t
  uint8_t pol;     // ffs_pol_t
  uint8_t mode;    // ffs_mode_t
  uint64_t seq;    // sequence number assigned by the source, per frame
  uint32_t epoch;  // epoch the frame belongs to (0-based)
  uint32_t tick;   // recurrent tick (0 for feed-forward topologies)
  uint32_t stage;  // index of the sending stage in the topology
  uint32_t rows;   // rows in the payload (samples in the micro-batch)
  uint32_t cols;   // floats per row
  uint32_t aux;    // REPORT: number of leading goodness columns; else 0
  // A slice of a frame, sent by one shard of a sharded layer (nshards > 1):
  // its columns are [col0, col0 + cols) of the whole frame. The receiver
  // gathers the nshards slices with the same seq (stages/ffs_stage.c).
  uint8_t shard;   // 0..nshards-1
  uint8_t nshards; // 0 or 1 = a whole frame (the keys are then not sent)
  uint32_t col0;   // first column of this slice
  uint64_t ts;     // when the source emitted the frame (ns, CLOCK_MONOTONIC of
                   // its host; 0 = not stamped); copied on, for latency
  uint64_t work_ns; // compute spent on the frame along its path so far (ns):
                    // each stage adds its own, so latency - work = transport
} ffs_frame_hdr_t;

// A decoded frame. All pointers borrow from the message buffer and may be
// unaligned: use ffs_frame_copy_payload / ffs_frame_id to read them.
typedef struct {
  ffs_frame_hdr_t h;
  const uint8_t *labels;  // (rows) true label per row, or NULL
  const uint8_t *cands;   // (rows) label overlaid in the row's input, or NULL
  const uint8_t *ids;     // (rows) sample ids, uint32 LE each, or NULL
  const uint8_t *payload; // (rows, cols) float32 LE; NULL when rows*cols == 0
} ffs_frame_t;

// What the receiver will accept. A zero field means "no constraint".
typedef struct {
  uint32_t max_rows; // reject frames with more rows
  uint32_t cols;     // exact cols required for DATA/FEEDBACK frames (0 = any);
                     // a slice must end at or before it
  uint32_t max_cols; // reject frames (slices: col0 + cols) with more cols
} ffs_frame_limits_t;

// Encodes hdr (+ optional per-row arrays + payload) into buf[0..cap).
// labels/cands: rows bytes; ids: rows uint32; payload: rows*cols floats.
// Returns the number of bytes written, or 0 when cap is too small.
size_t ffs_frame_encode(uint8_t *buf, size_t cap, const ffs_frame_hdr_t *hdr,
                        const uint8_t *labels, const uint8_t *cands,
                        const uint32_t *ids, const float *payload);

// An upper bound on ffs_frame_encode's output for rows x cols with all arrays.
size_t ffs_frame_encoded_max(uint32_t rows, uint32_t cols);

// Decodes buf[0..len) into out. Returns 0, or -1 with a one-line reason in
// err (e.g. "payload holds 396 bytes, header declares 2x50 floats = 400").
// Never reads outside buf, never allocates; unknown header keys are skipped.
int ffs_frame_decode(ffs_frame_t *out, const uint8_t *buf, size_t len,
                     const ffs_frame_limits_t *lim, char *err, size_t errlen);

// Copies the payload into dst (rows*cols floats). Returns 0, or -1 when a
// value is NaN or infinite (dst is then partly written).
int ffs_frame_copy_payload(float *dst, const ffs_frame_t *f);

// Reads the payload into dst with every row scaled to unit RMS:
// dst[r] = row r / (sqrt(mean of its squares) + eps) (ffs_rms_normalize,
// straight from the payload, no copy of it made): what a layer does first
// with its input. Returns 0, or -1 when a value is NaN or infinite (dst is
// then untouched).
int ffs_frame_payload_rms(float *dst, const ffs_frame_t *f, float eps);

// Reads sample id i (0 when the frame has no ids).
uint32_t ffs_frame_id(const ffs_frame_t *f, uint32_t i);

// Human-readable name of a kind ("data", "report", ...; "?" when unknown).
const char *ffs_frame_kind_str(int kind);

#endif
