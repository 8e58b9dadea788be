// ffs_frame: the wire format of every ffstream message (protocol version 2).
// One ZeroMQ message = a MessagePack map (the header) immediately followed by
// the payload: rows*cols little-endian float32. proto/README.md is the spec.
// Decoding never trusts a count: every length is checked against the bytes
// present and the caller's limits before anything is read; it never allocates.
#ifndef FFS_FRAME_H
#define FFS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FFS_PROTO_VERSION 2
#define FFS_LABEL_NONE 255 // "no label": unknown true label, or a neutral row

typedef enum {
  FFS_FRAME_DATA = 1,     // activity rows flowing forward (source -> layers)
  FFS_FRAME_REPORT = 2,   // a layer's per-row goodness (+ activity) to the readout
  FFS_FRAME_FEEDBACK = 3, // a vector flowing backward (later stage -> earlier)
  FFS_FRAME_MARK = 4,     // end of an epoch's stream (rows = 0), flows forward
  FFS_FRAME_PARTIAL = 5,  // a shard's partial sums (1 row) to its sibling shards
} ffs_frame_kind_t;

#define FFS_FRAME_MAX_SHARDS 16 // slices one frame may be cut into

// What a row is for (the `roles` array, one byte per row). A frame's rows run
// in this order: its positive rows first, then negative, neutral, candidate
// (each run may be empty), so role values never decrease along the rows. A
// frame without `roles` is all neutral. The learning rules pair the i-th
// positive row with the i-th negative row where they pair rows at all.
typedef enum {
  FFS_ROW_POSITIVE = 0,  // the true label overlaid: raise its goodness
  FFS_ROW_NEGATIVE = 1,  // a wrong label overlaid: lower its goodness
  FFS_ROW_NEUTRAL = 2,   // no label (1/classes in every label pixel)
  FFS_ROW_CANDIDATE = 3, // evaluation: the sample with candidate label cands[r]
  FFS_N_ROW_ROLES = 4
} ffs_row_role_t;

// What the frame's phase is: training (layers learn from positive and
// negative rows) or evaluation (nothing learns).
typedef enum { FFS_PHASE_TRAIN = 0, FFS_PHASE_EVAL = 1 } ffs_phase_t;

// The header fields. Arrays are per row and optional (NULL = absent).
typedef struct {
  uint8_t kind;    // ffs_frame_kind_t
  uint8_t phase;   // ffs_phase_t
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
  float damp;       // FEEDBACK from a dp_layer to a dampened one: the damping
                    // L >= 0 of the sender's weights (0 = none; other kinds: 0)
} ffs_frame_hdr_t;

// The per-row arrays a sender gives the encoder (each NULL = absent). roles,
// labels and cands hold `rows` bytes; ids `rows` ids.
typedef struct {
  const uint8_t *roles;  // ffs_row_role_t per row (absent: every row neutral)
  const uint8_t *labels; // true label per row, or FFS_LABEL_NONE
  const uint8_t *cands;  // label overlaid in the row's input, or FFS_LABEL_NONE
  const uint32_t *ids;   // sample id per row
} ffs_frame_rows_t;

// A decoded frame. All pointers borrow from the message buffer and may be
// unaligned: use ffs_frame_copy_payload / ffs_frame_id to read them.
typedef struct {
  ffs_frame_hdr_t h;
  // rows of each role (ffs_row_role_t); they run in role order, so role k's
  // rows start at the sum of n_role[0..k) (ffs_frame_role_start)
  uint32_t n_role[FFS_N_ROW_ROLES];
  const uint8_t *roles;   // (rows) ffs_row_role_t per row, or NULL (all neutral)
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

// Encodes hdr (+ the per-row arrays of rows, NULL = none, + payload) into
// buf[0..cap). payload: rows*cols floats. Returns the number of bytes
// written, or 0 when cap is too small.
size_t ffs_frame_encode(uint8_t *buf, size_t cap, const ffs_frame_hdr_t *hdr,
                        const ffs_frame_rows_t *rows, const float *payload);

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

// The first row of role's run (rows of that role are [start, start + n_role)).
uint32_t ffs_frame_role_start(const ffs_frame_t *f, int role);

// Human-readable name of a role ("positive", ...; "?" when unknown).
const char *ffs_frame_role_str(int role);

// Reads sample id i (0 when the frame has no ids).
uint32_t ffs_frame_id(const ffs_frame_t *f, uint32_t i);

// The frame's own per-row arrays, to pass on as they are with a frame of the
// same rows; its sample ids are read into ids (room for f's rows).
ffs_frame_rows_t ffs_frame_rows_of(const ffs_frame_t *f, uint32_t *ids);

// Human-readable name of a kind ("data", "report", ...; "?" when unknown).
const char *ffs_frame_kind_str(int kind);

#endif
