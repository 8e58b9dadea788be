// ffs_shm: large frames between the processes of one host through shared
// memory (transport ipc, `shm: true`). The sender encodes a frame straight
// into one of its send buffers, each a memfd mapping of its own; ZeroMQ
// carries only a 45-byte descriptor naming the buffer (sender pid, fd, a
// random token, a generation, the length, the reader's slot and the
// incarnation of the receiving stage it was meant for). The receiver maps
// the buffer once through /proc/<pid>/fd/<fd>, decodes the frame in place,
// and hands the buffer back by clearing its slot's bit in the buffer's
// reader mask; the sender reuses a buffer only when no bit is left (and
// waits on a futex for that). When a receiving stage dies (kill -9) the
// sender is told and clears that stage's bits itself (ffs_shm_buf_reclaim):
// the restarted receiver is a new incarnation and drops every descriptor
// meant for the old one, so a buffer is never reclaimed under a reader. What the kernel
// and ZeroMQ's I/O thread copied before (a 200-row frame is 0.8 MB, copied
// into the socket, out of it, and into a message) is no longer copied.
// Wire layout of the descriptor: proto/README.md, "Shared-memory frames".
// Part of the stage runtime; stage kinds never see it.
#ifndef FFS_SHM_H
#define FFS_SHM_H

#include <stddef.h>
#include <stdint.h>

#define FFS_SHM_DESC_LEN 45 // bytes of a descriptor on the wire
#define FFS_SHM_SLOTS 32    // readers of one buffer: one bit each in its mask

typedef struct ffs_shm_hdr ffs_shm_hdr_t; // the shared header before the data

// A sender's buffer. fd < 0: not open.
typedef struct {
  int fd;
  ffs_shm_hdr_t *h;
  size_t map_len;
  uint8_t *data; // cap bytes after the header
  size_t cap;
} ffs_shm_buf_t;

// Opens b as a fresh buffer of cap data bytes. 0, or -1 with a message.
int ffs_shm_buf_open(ffs_shm_buf_t *b, size_t cap, char *err, size_t errlen);
// Unmaps and closes b (receivers keep their own mappings alive).
void ffs_shm_buf_close(ffs_shm_buf_t *b);
// 1 when no receiver still reads the frame last sent from b.
int ffs_shm_buf_idle(const ffs_shm_buf_t *b);
// Waits at most timeout_ms for b to become idle; returns ffs_shm_buf_idle(b).
int ffs_shm_buf_wait(const ffs_shm_buf_t *b, int timeout_ms);
// Marks the frame in b as sent to the readers whose slots are set in mask
// (bit k = slot k, k < FFS_SHM_SLOTS): a new generation of the buffer.
void ffs_shm_buf_send(ffs_shm_buf_t *b, uint32_t mask);
// Writes the descriptor (FFS_SHM_DESC_LEN bytes) of b's current frame, len
// bytes, for the reader in `slot`, a stage in its `incarnation`.
void ffs_shm_buf_desc(const ffs_shm_buf_t *b, size_t len, int slot, uint32_t incarnation,
                      uint8_t *desc);
// The sender takes slot's bit back (its reader died, or the descriptor was
// never sent). Returns 1 when the bit was still set.
int ffs_shm_buf_reclaim(ffs_shm_buf_t *b, int slot);

// The reader in `slot` is done with the frame.
void ffs_shm_release(ffs_shm_hdr_t *h, int slot);

// 1 when msg (n bytes) has the shape of a descriptor, not of a frame.
int ffs_shm_is_desc(const void *msg, size_t n);

// A receiver's mapped buffers, kept until it closes.
typedef struct ffs_shm_maps ffs_shm_maps_t;
ffs_shm_maps_t *ffs_shm_maps_new(void);
void ffs_shm_maps_free(ffs_shm_maps_t *m);
// Resolves descriptor desc (n bytes), received by a stage in its
// `incarnation`, to the frame's bytes in the sender's buffer (*data, *len),
// its header and the reader's slot (*h, *slot: to release once decoded).
// 0, or -1 with why: a malformed descriptor, one meant for an earlier
// incarnation of this stage (nothing is released: its sender reclaims it),
// a buffer that cannot be mapped (its sender gone), a token or generation
// that does not match or a slot already released, a length beyond the
// buffer.
int ffs_shm_resolve(ffs_shm_maps_t *m, const void *desc, size_t n, uint32_t incarnation,
                    uint8_t **data, size_t *len, ffs_shm_hdr_t **h, int *slot, char *why,
                    size_t whylen);

// Checks that a child process can map a buffer of this one (what a stage
// does with its upstream's: /proc/<pid>/fd must be open to it). 0, or -1
// with why (the launcher then runs every frame through ZeroMQ).
int ffs_shm_probe(char *why, size_t whylen);

#endif
