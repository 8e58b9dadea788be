// y4m: a YUV4MPEG2 reader on a file descriptor (a file, stdin, or a pipe from
// `ffmpeg -f yuv4mpegpipe -`) for the source stage's live video feed. Frames
// come out as floats in [0, 1], planes concatenated. Pure input parsing: no
// threads, no sockets. Never trusts the stream (every malformed byte gets a
// message naming the input and the frame), never allocates after ffs_y4m_new.
#ifndef FFS_Y4M_H
#define FFS_Y4M_H

#include <stddef.h>
#include <stdint.h>

typedef enum { FFS_Y4M_MONO = 0, FFS_Y4M_420, FFS_Y4M_422, FFS_Y4M_444 } ffs_y4m_chroma_t;

typedef struct {
  int width, height;       // W, H: 1..16384 each
  int fps_num, fps_den;    // F (0/0 when absent or given as F0:0)
  ffs_y4m_chroma_t chroma; // C (absent = 420, as the spec says)
  size_t frame_bytes;      // bytes of one frame's planes (8 bits per sample)
} ffs_y4m_hdr_t;

typedef struct ffs_y4m ffs_y4m_t;

// Reads and parses the stream header line from fd (which destroy does not
// close). `what` names the input in errors (a path, "stdin", or a command).
// Header rules: "YUV4MPEG2 " then space-separated tags; W and H required
// (1..16384); F is N:D; C one of mono, 420jpeg, 420paldv, 420mpeg2, 420,
// 422, 444 (16-bit and other layouts refused); I, A, X and unknown tags
// ignored; the line is at most 256 bytes and ends with '\n'.
// Returns NULL with "what: header: ..." in err.
ffs_y4m_t *ffs_y4m_new(int fd, const char *what, char *err, size_t errlen);
const ffs_y4m_hdr_t *ffs_y4m_header(const ffs_y4m_t *y);

// Floats per frame: luma only (all_planes 0) = W*H; all planes = W*H + 2 *
// the chroma plane size (420: ceil(W/2)*ceil(H/2); 422: ceil(W/2)*H;
// 444: W*H; mono: no chroma, so just W*H).
int ffs_y4m_dim(const ffs_y4m_hdr_t *h, int all_planes);

// Reads the next frame into x (ffs_y4m_dim(h, all_planes) floats, each byte
// / 255, planes concatenated: Y, then Cb, then Cr). Returns 1 (a frame), 0
// (the stream ended cleanly at a frame boundary; again on every later call),
// or -1 with err naming the input and the 0-based frame index: a truncated
// frame ("clip.y4m: frame 12: truncated: 300 of 1176 bytes"), a malformed
// FRAME line, a size change (a FRAME line whose W or H parameter differs, or
// a second "YUV4MPEG2" header of another size or chroma in place of FRAME;
// a repeated header of the same geometry, as `cat a.y4m b.y4m` makes, is
// skipped), or a read error. An error is final: later calls repeat it.
// FRAME parameters other than W and H are ignored. Blocks on a pipe until a
// whole frame is in; EINTR is retried, and a non-blocking fd is waited on.
int ffs_y4m_read(ffs_y4m_t *y, float *x, int all_planes, char *err, size_t errlen);

uint64_t ffs_y4m_frames(const ffs_y4m_t *y); // frames read so far

void ffs_y4m_destroy(ffs_y4m_t **self_p);

#endif
