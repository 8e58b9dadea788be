// ffs_shm: frames through shared memory between the stages of one host.
// See ffs_shm.h; the descriptor's wire layout is in proto/README.md.
#include "ffs_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAGIC 0x314d485353464646ull // "FFFSSHM1"
#define S_HDR_LEN 64                  // the data starts a cache line in
#define S_MAX_MAPS 1024               // buffers one receiver maps at most
#define S_MEMFD_NAME "ffstream-frame" // what a buffer's /proc/<pid>/fd link names

struct ffs_shm_hdr {
  uint64_t magic;
  uint64_t token;      // random per buffer: a reused pid and fd never match
  uint64_t cap;        // data bytes after the header
  atomic_uint readers; // bit k: the reader in slot k has yet to release the frame
  atomic_uint gen;     // frames sent from the buffer so far
};
_Static_assert(sizeof(struct ffs_shm_hdr) <= S_HDR_LEN, "header outgrew its line");

// ---- sender ----

int ffs_shm_buf_open(ffs_shm_buf_t *b, size_t cap, char *err, size_t errlen) {
  *b = (ffs_shm_buf_t){.fd = -1};
  uint64_t token;
  if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token)
    token = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)b;
  int fd = memfd_create(S_MEMFD_NAME, MFD_CLOEXEC);
  size_t len = S_HDR_LEN + cap;
  if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
    snprintf(err, errlen, "shared frame buffer of %zu bytes: %s", len, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    snprintf(err, errlen, "mapping a shared frame buffer of %zu bytes: %s", len, strerror(errno));
    close(fd);
    return -1;
  }
  ffs_shm_hdr_t *h = p;
  h->magic = S_MAGIC, h->token = token, h->cap = cap;
  atomic_init(&h->readers, 0);
  atomic_init(&h->gen, 0);
  *b = (ffs_shm_buf_t){
      .fd = fd, .h = h, .map_len = len, .data = (uint8_t *)p + S_HDR_LEN, .cap = cap};
  return 0;
}

void ffs_shm_buf_close(ffs_shm_buf_t *b) {
  if (b->fd < 0) return;
  munmap(b->h, b->map_len);
  close(b->fd);
  *b = (ffs_shm_buf_t){.fd = -1};
}

int ffs_shm_buf_idle(const ffs_shm_buf_t *b) {
  return atomic_load_explicit(&b->h->readers, memory_order_acquire) == 0;
}

int ffs_shm_buf_wait(const ffs_shm_buf_t *b, int timeout_ms) {
  unsigned v = atomic_load_explicit(&b->h->readers, memory_order_acquire);
  if (v == 0) return 1;
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
  // a shared (not process-private) futex: the last reader wakes it
  syscall(SYS_futex, (uint32_t *)&b->h->readers, FUTEX_WAIT, v, &ts, NULL, 0);
  return ffs_shm_buf_idle(b);
}

static void s_be(uint8_t *p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t s_from_be(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v = v << 8 | p[i];
  return v;
}

// MessagePack: fixarray(8) ["shm", pid u32, fd u32, token u64, gen u32,
// len u64, slot u8, incarnation u32]
static const uint8_t s_lead[5] = {0x98, 0xa3, 's', 'h', 'm'};
enum { S_PID = 5, S_FD = 10, S_TOKEN = 15, S_GEN = 24, S_LEN = 29, S_SLOT = 38, S_INC = 40 };
_Static_assert(S_INC + 5 == FFS_SHM_DESC_LEN, "descriptor layout and length disagree");

void ffs_shm_buf_send(ffs_shm_buf_t *b, uint32_t mask) {
  atomic_fetch_add_explicit(&b->h->gen, 1, memory_order_relaxed);
  atomic_store_explicit(&b->h->readers, mask, memory_order_release);
}

void ffs_shm_buf_desc(const ffs_shm_buf_t *b, size_t len, int slot, uint32_t incarnation,
                      uint8_t *desc) {
  unsigned gen = atomic_load_explicit(&b->h->gen, memory_order_relaxed);
  memcpy(desc, s_lead, sizeof s_lead);
  desc[S_PID] = 0xce, s_be(desc + S_PID + 1, (uint64_t)getpid(), 4);
  desc[S_FD] = 0xce, s_be(desc + S_FD + 1, (uint64_t)b->fd, 4);
  desc[S_TOKEN] = 0xcf, s_be(desc + S_TOKEN + 1, b->h->token, 8);
  desc[S_GEN] = 0xce, s_be(desc + S_GEN + 1, gen, 4);
  desc[S_LEN] = 0xcf, s_be(desc + S_LEN + 1, len, 8);
  desc[S_SLOT] = 0xcc, desc[S_SLOT + 1] = (uint8_t)slot;
  desc[S_INC] = 0xce, s_be(desc + S_INC + 1, incarnation, 4);
}

// Clears slot's bit; wakes a waiting sender when it was the last one.
// Returns 1 when the bit was set.
static int s_clear(ffs_shm_hdr_t *h, int slot) {
  unsigned bit = 1u << slot;
  unsigned was = atomic_fetch_and_explicit(&h->readers, ~bit, memory_order_acq_rel);
  if (was == bit) syscall(SYS_futex, (uint32_t *)&h->readers, FUTEX_WAKE, 1, NULL, NULL, 0);
  return (was & bit) != 0;
}

int ffs_shm_buf_reclaim(ffs_shm_buf_t *b, int slot) {
  return b->fd >= 0 && slot >= 0 && slot < FFS_SHM_SLOTS && s_clear(b->h, slot);
}

// ---- receiver ----

void ffs_shm_release(ffs_shm_hdr_t *h, int slot) {
  // only this slot's bit: a descriptor replayed into a socket, or released
  // twice, cannot take another reader's frame away
  if (slot >= 0 && slot < FFS_SHM_SLOTS) s_clear(h, slot);
}

int ffs_shm_is_desc(const void *msg, size_t n) {
  const uint8_t *p = msg;
  return n == FFS_SHM_DESC_LEN && !memcmp(p, s_lead, sizeof s_lead) && p[S_PID] == 0xce &&
         p[S_FD] == 0xce && p[S_TOKEN] == 0xcf && p[S_GEN] == 0xce && p[S_LEN] == 0xcf &&
         p[S_SLOT] == 0xcc && p[S_INC] == 0xce;
}

typedef struct {
  uint32_t pid, fd;
  uint64_t token;
  ffs_shm_hdr_t *h;
  size_t len;
} s_map_t;

struct ffs_shm_maps {
  s_map_t *v;
  int n, cap;
};

ffs_shm_maps_t *ffs_shm_maps_new(void) { return calloc(1, sizeof(ffs_shm_maps_t)); }

void ffs_shm_maps_free(ffs_shm_maps_t *m) {
  if (!m) return;
  for (int i = 0; i < m->n; i++)
    munmap(m->v[i].h, m->v[i].len);
  free(m->v);
  free(m);
}

// Maps the sender's buffer pid/fd and checks that it is the one token names.
static s_map_t *s_map(ffs_shm_maps_t *m, uint32_t pid, uint32_t fd, uint64_t token, char *why,
                      size_t whylen) {
  for (int i = 0; i < m->n; i++)
    if (m->v[i].pid == pid && m->v[i].fd == fd && m->v[i].token == token) return &m->v[i];
  if (m->n == S_MAX_MAPS) {
    snprintf(why, whylen, "shared-memory frame: already %d sender buffers mapped", S_MAX_MAPS);
    return NULL;
  }
  char path[64], target[64] = "";
  snprintf(path, sizeof path, "/proc/%u/fd/%u", pid, fd);
  // only ever open a frame buffer: a memfd of ours, never whatever else a
  // descriptor off the wire may name
  ssize_t tn = readlink(path, target, sizeof target - 1);
  if (tn < 0) {
    snprintf(why, whylen, "shared-memory frame: cannot open the sender's buffer %s: %s", path,
             strerror(errno));
    return NULL;
  }
  target[tn] = 0;
  if (strncmp(target, "/memfd:" S_MEMFD_NAME " ", strlen("/memfd:" S_MEMFD_NAME " "))) {
    snprintf(why, whylen, "shared-memory frame: %s is not a frame buffer (%s)", path, target);
    return NULL;
  }
  int f = open(path, O_RDWR | O_CLOEXEC);
  struct stat st;
  if (f < 0 || fstat(f, &st) < 0) {
    snprintf(why, whylen, "shared-memory frame: cannot open the sender's buffer %s: %s", path,
             strerror(errno));
    if (f >= 0) close(f);
    return NULL;
  }
  size_t len = (size_t)st.st_size;
  void *p = len >= S_HDR_LEN && S_ISREG(st.st_mode)
                ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0)
                : MAP_FAILED;
  close(f);
  if (p == MAP_FAILED) {
    snprintf(why, whylen, "shared-memory frame: %s is not a frame buffer (%zu bytes)", path, len);
    return NULL;
  }
  ffs_shm_hdr_t *h = p;
  if (h->magic != S_MAGIC || h->token != token || h->cap != len - S_HDR_LEN) {
    snprintf(why, whylen,
             "shared-memory frame: %s is not the buffer the descriptor names "
             "(magic, token or size differ)",
             path);
    munmap(p, len);
    return NULL;
  }
  if (m->n == m->cap) {
    int cap = m->cap ? 2 * m->cap : 16;
    s_map_t *v = realloc(m->v, sizeof *v * (size_t)cap);
    if (!v) {
      snprintf(why, whylen, "shared-memory frame: out of memory");
      munmap(p, len);
      return NULL;
    }
    m->v = v, m->cap = cap;
  }
  m->v[m->n] = (s_map_t){pid, fd, token, h, len};
  return &m->v[m->n++];
}

int ffs_shm_resolve(ffs_shm_maps_t *m, const void *desc, size_t n, uint32_t incarnation,
                    uint8_t **data, size_t *len, ffs_shm_hdr_t **h, int *slot, char *why,
                    size_t whylen) {
  if (!ffs_shm_is_desc(desc, n)) {
    snprintf(why, whylen, "shared-memory frame: malformed descriptor (%zu bytes)", n);
    return -1;
  }
  const uint8_t *p = desc;
  uint64_t pid = s_from_be(p + S_PID + 1, 4), fd = s_from_be(p + S_FD + 1, 4);
  uint64_t token = s_from_be(p + S_TOKEN + 1, 8), gen = s_from_be(p + S_GEN + 1, 4);
  uint64_t bytes = s_from_be(p + S_LEN + 1, 8);
  uint64_t sl = p[S_SLOT + 1], inc = s_from_be(p + S_INC + 1, 4);
  if (inc != incarnation) {
    snprintf(why, whylen,
             "shared-memory frame: meant for incarnation %llu of this stage, which is "
             "incarnation %u (lost with a restart)",
             (unsigned long long)inc, incarnation);
    return -1;
  }
  if (sl >= FFS_SHM_SLOTS) {
    snprintf(why, whylen, "shared-memory frame: reader slot %llu out of range",
             (unsigned long long)sl);
    return -1;
  }
  if (pid == 0 || pid > 0x3fffffff || fd > 0xfffff) {
    snprintf(why, whylen, "shared-memory frame: pid %llu or fd %llu out of range",
             (unsigned long long)pid, (unsigned long long)fd);
    return -1;
  }
  s_map_t *e = s_map(m, (uint32_t)pid, (uint32_t)fd, token, why, whylen);
  if (!e) return -1;
  if (bytes > e->h->cap) {
    snprintf(why, whylen, "shared-memory frame: %llu bytes in a buffer of %llu",
             (unsigned long long)bytes, (unsigned long long)e->h->cap);
    return -1;
  }
  unsigned now = atomic_load_explicit(&e->h->gen, memory_order_acquire);
  unsigned mask = atomic_load_explicit(&e->h->readers, memory_order_acquire);
  if (now != (unsigned)gen || !(mask & (1u << sl))) {
    snprintf(why, whylen, "shared-memory frame: stale descriptor (generation %llu, buffer at %u)",
             (unsigned long long)gen, now);
    return -1;
  }
  *data = (uint8_t *)e->h + S_HDR_LEN, *len = (size_t)bytes, *h = e->h, *slot = (int)sl;
  return 0;
}

// ---- probe ----

int ffs_shm_probe(char *why, size_t whylen) {
  ffs_shm_buf_t b;
  if (ffs_shm_buf_open(&b, 64, why, whylen) < 0) return -1;
  uint8_t desc[FFS_SHM_DESC_LEN];
  b.data[0] = 42;
  ffs_shm_buf_send(&b, 1u << 3);
  ffs_shm_buf_desc(&b, 1, 3, 0, desc);
  int fds[2];
  if (pipe(fds) < 0) {
    snprintf(why, whylen, "pipe: %s", strerror(errno));
    ffs_shm_buf_close(&b);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) { // the child maps the parent's buffer, as a stage would
    close(fds[0]);
    char w[256] = "out of memory";
    ffs_shm_maps_t *m = ffs_shm_maps_new();
    uint8_t *data;
    size_t len;
    ffs_shm_hdr_t *h;
    int slot;
    int ok = m && ffs_shm_resolve(m, desc, sizeof desc, 0, &data, &len, &h, &slot, w, sizeof w) == 0;
    if (ok && data[0] != 42) ok = 0, snprintf(w, sizeof w, "the child read other bytes");
    if (ok)
      ffs_shm_release(h, slot);
    else if (write(fds[1], w, strlen(w)) < 0)
      _exit(2);
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  int status = 0, rc = -1;
  if (pid < 0) {
    snprintf(why, whylen, "fork: %s", strerror(errno));
  } else {
    char w[256];
    ssize_t n = read(fds[0], w, sizeof w - 1);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && ffs_shm_buf_idle(&b))
      rc = 0;
    else
      snprintf(why, whylen, "%.*s", n > 0 ? (int)n : 0, n > 0 ? w : "the child failed");
  }
  close(fds[0]);
  ffs_shm_buf_close(&b);
  return rc;
}
