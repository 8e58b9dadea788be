// ffs_curve: the run's CURVE key files and the ZAP handler of its tcp sockets
// (see ffs_curve.h). Key files are read at start-up as hostile input (bounded,
// every byte checked); a secret key never reaches a log line or an error.
// The handler's thread answers ZAP and reads the servers' monitors; it never
// blocks longer than one poll (S_POLL_MS), so a new server or the stop is
// picked up within it.
#include "ffs_curve.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "ffs_log.h"

#define S_KEY_LEN 40      // Z85 characters of a key
#define S_KEY_BIN 32      // bytes of a key
#define S_FILE_MAX 4096   // bytes a key file may hold
#define S_POLL_MS 100     // the handler's poll: how soon it sees a new server or the stop
#define S_LOG_FIRST 10    // refusals logged one by one
#define S_LOG_EVERY 100   // then one line every S_LOG_EVERY refusals
#define S_MAX_SERVERS 256 // servers watched at once by one handler
#define S_ZAP_FRAMES 8    // frames of a ZAP request kept (more are read and dropped)
#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_DOMAIN "ffstream:" // ZAP domain of our servers: this, then their `what`
// what the monitors report: ZAP refusals (HANDSHAKE_FAILED_AUTH) are counted
// by the handler itself, so the monitors only see refusals that come before ZAP
#define S_MON_EVENTS                                                                               \
  (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |                    \
   ZMQ_EVENT_MONITOR_STOPPED)

static const char s_z85[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

int ffs_curve_available(void) { return zmq_has("curve") ? 1 : 0; }

// ---- names and paths ----

// A pair's NAME: 1..FFS_CURVE_NAME_MAX-1 characters of [A-Za-z0-9._-], no
// leading '.' (it is a file name in DIR, never a path). 0 or -1.
static int s_name_ok(const char *name, char *err, size_t errlen) {
  size_t n = strlen(name);
  int ok = n > 0 && n < FFS_CURVE_NAME_MAX && name[0] != '.';
  for (size_t i = 0; ok && i < n; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
  }
  if (!ok)
    ffs_errf(err, errlen,
             "bad key pair name '%s': expected 1 to %d characters of [A-Za-z0-9._-], "
             "not starting with '.'",
             name, FFS_CURVE_NAME_MAX - 1);
  return ok ? 0 : -1;
}

// out = DIR/FILE (DIR's trailing slashes dropped). 0 or -1 when it does not fit.
static int s_path(char *out, size_t outlen, const char *dir, const char *file, char *err,
                  size_t errlen) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/')
    n--;
  int len = snprintf(out, outlen, "%.*s/%s", (int)n, dir, file);
  if (len < 0 || (size_t)len >= outlen) {
    ffs_errf(err, errlen, "%s/%s: path too long", dir, file);
    return -1;
  }
  return 0;
}

// DIR/NAME.key and DIR/NAME.pub (PATH_MAX each), NAME checked. 0 or -1.
static int s_pair_paths(const char *dir, const char *name, char *key_path, char *pub_path,
                        char *err, size_t errlen) {
  if (!*dir) {
    ffs_errf(err, errlen, "an empty folder name");
    return -1;
  }
  if (s_name_ok(name, err, errlen) < 0) return -1;
  char file[FFS_CURVE_NAME_MAX + 8];
  snprintf(file, sizeof file, "%s.key", name);
  if (s_path(key_path, PATH_MAX, dir, file, err, errlen) < 0) return -1;
  snprintf(file, sizeof file, "%s.pub", name);
  return s_path(pub_path, PATH_MAX, dir, file, err, errlen);
}

// ---- reading key files ----

typedef struct {
  char pub[FFS_CURVE_Z85], sec[FFS_CURVE_Z85];
  int has_pub, has_sec;
} s_pair_t;

static int s_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Checks a key's value v[0..len): 40 Z85 characters that decode. Never
// quotes the value (it may be a secret). 0 or -1.
static int s_key_check(const char *v, size_t len, const char *path, int line, const char *key,
                       char *err, size_t errlen) {
  if (len != S_KEY_LEN) {
    ffs_errf(err, errlen, "%s:%d: %s is %zu characters long, expected %d Z85 characters", path,
             line, key, len, S_KEY_LEN);
    return -1;
  }
  for (size_t i = 0; i < len; i++)
    if (!memchr(s_z85, v[i], sizeof s_z85 - 1)) {
      ffs_errf(err, errlen, "%s:%d: %s has a character outside Z85 (character %zu of %d)", path,
               line, key, i + 1, S_KEY_LEN);
      return -1;
    }
  char z[FFS_CURVE_Z85];
  uint8_t bin[S_KEY_BIN];
  memcpy(z, v, S_KEY_LEN);
  z[S_KEY_LEN] = 0;
  int ok = zmq_z85_decode(bin, z) != NULL;
  explicit_bzero(z, sizeof z), explicit_bzero(bin, sizeof bin);
  if (!ok) ffs_errf(err, errlen, "%s:%d: %s does not decode to a 32-byte key", path, line, key);
  return ok ? 0 : -1;
}

// Parses the text of a key file (key_file: NAME.key, else a .pub) into p.
static int s_parse(const char *path, char *buf, size_t len, int key_file, s_pair_t *p, char *err,
                   size_t errlen) {
  if (memchr(buf, 0, len)) {
    ffs_errf(err, errlen, "%s: holds a NUL byte: not a text key file", path);
    return -1;
  }
  size_t at = 0;
  for (int line = 1; at < len; line++) {
    char *s = buf + at, *nl = memchr(s, '\n', len - at);
    size_t n = nl ? (size_t)(nl - s) : len - at;
    at += n + (nl != NULL);
    while (n && s_blank(s[n - 1]))
      n--;
    while (n && s_blank(*s))
      s++, n--;
    if (!n || *s == '#') continue;
    char *eq = memchr(s, '=', n);
    size_t kn = eq ? (size_t)(eq - s) : 0;
    while (kn && s_blank(s[kn - 1]))
      kn--;
    int is_pub = eq && kn == 10 && !memcmp(s, "public-key", 10);
    int is_sec = eq && kn == 10 && !memcmp(s, "secret-key", 10);
    if (!is_pub && !is_sec) {
      ffs_errf(err, errlen,
               "%s:%d: unknown line (expected 'public-key = <key>'%s, a '#' comment or nothing)",
               path, line, key_file ? ", 'secret-key = <key>'" : "");
      return -1;
    }
    if (is_sec && !key_file) {
      ffs_errf(err, errlen,
               "%s:%d: a .pub file holds a secret-key: anyone may read a .pub, so that pair "
               "is no longer secret (remove the file, make a new pair)",
               path, line);
      return -1;
    }
    const char *key = is_pub ? "public-key" : "secret-key";
    if (is_pub ? p->has_pub : p->has_sec) {
      ffs_errf(err, errlen, "%s:%d: a second %s line", path, line, key);
      return -1;
    }
    char *v = eq + 1;
    size_t vn = n - (size_t)(v - s);
    while (vn && s_blank(*v))
      v++, vn--;
    if (s_key_check(v, vn, path, line, key, err, errlen) < 0) return -1;
    char *to = is_pub ? p->pub : p->sec;
    memcpy(to, v, S_KEY_LEN);
    to[S_KEY_LEN] = 0;
    *(is_pub ? &p->has_pub : &p->has_sec) = 1;
  }
  if (!p->has_pub || (key_file && !p->has_sec)) {
    ffs_errf(err, errlen, "%s: no %s line", path, p->has_pub ? "secret-key" : "public-key");
    return -1;
  }
  if (key_file) {
    char derived[FFS_CURVE_Z85];
    if (zmq_curve_public(derived, p->sec) != 0 || strcmp(derived, p->pub) != 0) {
      ffs_errf(err, errlen,
               "%s: its public-key does not match its secret-key (edited, or mixed from two "
               "pairs?)",
               path);
      return -1;
    }
  }
  return 0;
}

// Reads and parses one key file. A NAME.key must not be readable by group or
// others; either must be a regular file of at most S_FILE_MAX bytes.
static int s_read(const char *path, int key_file, s_pair_t *p, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ffs_errf(err, errlen, "cannot read %s: %s%s", path, strerror(errno),
             key_file && errno == ENOENT ? " (`ffstream keys DIR` makes a pair)" : "");
    return -1;
  }
  char buf[S_FILE_MAX + 1];
  size_t len = 0;
  int rc = -1;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    ffs_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    ffs_errf(err, errlen, "%s: not a regular file", path);
    goto done;
  }
  if (key_file && (st.st_mode & 077)) {
    ffs_errf(err, errlen,
             "%s: group or others may read it (mode %04o), and it holds the run's secret key: "
             "chmod 600 %s",
             path, (unsigned)(st.st_mode & 07777), path);
    goto done;
  }
  for (;;) { // up to one byte past the limit, so that a longer file is seen
    ssize_t got = read(fd, buf + len, sizeof buf - len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ffs_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
      goto done;
    }
    if (got == 0) break;
    len += (size_t)got;
    if (len == sizeof buf) break;
  }
  if (len > S_FILE_MAX) {
    ffs_errf(err, errlen, "%s: more than %d bytes: not a key file", path, S_FILE_MAX);
    goto done;
  }
  rc = s_parse(path, buf, len, key_file, p, err, errlen);
done:
  explicit_bzero(buf, sizeof buf);
  close(fd);
  return rc;
}

// Adds pub to k->allowed unless it is there. 0, or -1 when the list is full.
static int s_allow(ffs_curve_keys_t *k, const char *pub) {
  for (int i = 0; i < k->n_allowed; i++)
    if (!strcmp(k->allowed[i], pub)) return 0;
  if (k->n_allowed == FFS_CURVE_MAX_ALLOWED) return -1;
  memcpy(k->allowed[k->n_allowed++], pub, FFS_CURVE_Z85);
  return 0;
}

typedef char s_file_name_t[NAME_MAX + 1];

static int s_cmp_name(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

// k->allowed = k->pub and the keys of every DIR/*.pub (in name order).
static int s_load_allowed(const char *dir, ffs_curve_keys_t *k, char *err, size_t errlen) {
  k->n_allowed = 0;
  s_allow(k, k->pub);
  DIR *d = opendir(dir);
  if (!d) {
    ffs_errf(err, errlen, "cannot list %s: %s", dir, strerror(errno));
    return -1;
  }
  s_file_name_t *names = malloc((FFS_CURVE_MAX_ALLOWED + 1) * sizeof *names);
  int n = 0, rc = -1;
  if (!names) {
    ffs_errf(err, errlen, "out of memory listing %s", dir);
    closedir(d);
    return -1;
  }
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] == '.' || len <= 4 || strcmp(e->d_name + len - 4, ".pub")) continue;
    if (n == FFS_CURVE_MAX_ALLOWED + 1) break;
    memcpy(names[n++], e->d_name, len + 1);
  }
  closedir(d);
  if (n > FFS_CURVE_MAX_ALLOWED) {
    ffs_errf(err, errlen, "%s: more than %d .pub files (allowed client keys)", dir,
             FFS_CURVE_MAX_ALLOWED);
    goto done;
  }
  qsort(names, (size_t)n, sizeof *names, s_cmp_name);
  for (int i = 0; i < n; i++) {
    char path[PATH_MAX];
    s_pair_t p;
    if (s_path(path, sizeof path, dir, names[i], err, errlen) < 0) goto done;
    if (s_read(path, 0, &p, err, errlen) < 0) goto done;
    if (s_allow(k, p.pub) < 0) {
      ffs_errf(err, errlen, "%s: more than %d allowed keys (its .pub files and the run's own)", dir,
               FFS_CURVE_MAX_ALLOWED);
      goto done;
    }
  }
  rc = 0;
done:
  free(names);
  return rc;
}

int ffs_curve_load(const char *dir, const char *name, ffs_curve_keys_t *k, char *err,
                   size_t errlen) {
  assert(dir && name && k);
  memset(k, 0, sizeof *k);
  char key_path[PATH_MAX], pub_path[PATH_MAX];
  s_pair_t own;
  if (s_pair_paths(dir, name, key_path, pub_path, err, errlen) < 0) return -1;
  if (s_read(key_path, 1, &own, err, errlen) < 0) goto fail;
  memcpy(k->pub, own.pub, sizeof k->pub);
  memcpy(k->sec, own.sec, sizeof k->sec);
  explicit_bzero(&own, sizeof own);
  if (s_load_allowed(dir, k, err, errlen) < 0) goto fail;
  return 0;
fail:
  explicit_bzero(&own, sizeof own);
  explicit_bzero(k, sizeof *k);
  return -1;
}

// ---- writing key files ----

// mkdir -p DIR: missing folders are made 0700; existing ones are left as they are.
static int s_mkdirs(const char *dir, char *err, size_t errlen) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
    ffs_errf(err, errlen, "%s: path too long", dir);
    return -1;
  }
  for (char *s = path + 1;; s++) {
    if (*s != '/' && *s) continue;
    char c = *s;
    *s = 0;
    if (mkdir(path, 0700) == 0) {
      chmod(path, 0700); // whatever the umask
    } else if (errno != EEXIST) {
      ffs_errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
      return -1;
    }
    *s = c;
    if (!c) break;
  }
  struct stat st;
  if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    ffs_errf(err, errlen, "%s: not a folder", dir);
    return -1;
  }
  return 0;
}

static int s_write_all(int fd, const char *text, size_t len) {
  while (len) {
    ssize_t put = write(fd, text, len);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return -1;
    text += put, len -= (size_t)put;
  }
  return 0;
}

// Writes text to path with exactly this mode. exclusive: refuse when path
// exists (O_EXCL); otherwise replace it at once (a temporary file renamed).
static int s_write_file(const char *path, const char *text, mode_t mode, int exclusive, char *err,
                        size_t errlen) {
  char tmp[PATH_MAX];
  int fd;
  if (exclusive) {
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  } else {
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
      ffs_errf(err, errlen, "%s: path too long", path);
      return -1;
    }
    fd = mkostemp(tmp, O_CLOEXEC); // mode 0600 until the fchmod below
  }
  if (fd < 0) {
    if (exclusive && errno == EEXIST)
      ffs_errf(err, errlen,
               "%s exists: refusing to overwrite a key pair (--force replaces it; every "
               "process of the run then needs the new one)",
               path);
    else
      ffs_errf(err, errlen, "cannot create %s: %s", exclusive ? path : tmp, strerror(errno));
    return -1;
  }
  int rc =
      fchmod(fd, mode) == 0 && s_write_all(fd, text, strlen(text)) == 0 && fsync(fd) == 0 ? 0 : -1;
  int e = errno;
  if (close(fd) < 0 && rc == 0) rc = -1, e = errno;
  if (rc == 0 && !exclusive && rename(tmp, path) < 0) rc = -1, e = errno;
  if (rc < 0) {
    unlink(exclusive ? path : tmp);
    ffs_errf(err, errlen, "cannot write %s: %s", path, strerror(e));
  }
  return rc;
}

int ffs_curve_write_pair(const char *dir, const char *name, int force, char *err, size_t errlen) {
  assert(dir && name);
  char key_path[PATH_MAX], pub_path[PATH_MAX];
  if (s_pair_paths(dir, name, key_path, pub_path, err, errlen) < 0) return -1;
  if (!ffs_curve_available()) {
    ffs_errf(err, errlen, "this libzmq was built without CURVE (zmq_has(\"curve\") is 0)");
    return -1;
  }
  if (s_mkdirs(dir, err, errlen) < 0) return -1;
  struct stat st;
  if (!force && lstat(key_path, &st) == 0) { // the O_EXCL below settles a race
    ffs_errf(err, errlen,
             "%s exists: refusing to overwrite a key pair (--force replaces it; every process "
             "of the run then needs the new one)",
             key_path);
    return -1;
  }
  char pub[FFS_CURVE_Z85], sec[FFS_CURVE_Z85], text[256];
  if (zmq_curve_keypair(pub, sec) != 0) {
    ffs_errf(err, errlen, "zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
    return -1;
  }
  snprintf(text, sizeof text,
           "# ffstream CURVE key pair: keep this file secret (mode 0600)\n"
           "public-key = %s\nsecret-key = %s\n",
           pub, sec);
  int rc = s_write_file(key_path, text, 0600, !force, err, errlen);
  explicit_bzero(text, sizeof text), explicit_bzero(sec, sizeof sec);
  if (rc < 0) return -1;
  snprintf(text, sizeof text,
           "# ffstream CURVE public key: a server of the run accepts the client holding its "
           "pair\npublic-key = %s\n",
           pub);
  return s_write_file(pub_path, text, 0644, 0, err, errlen);
}

int ffs_curve_client(const ffs_curve_keys_t *k, void *sock) {
  assert(k && sock);
  if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, k->pub, FFS_CURVE_Z85) < 0 ||
      zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k->pub, FFS_CURVE_Z85) < 0 ||
      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->sec, FFS_CURVE_Z85) < 0)
    return -1;
  return 0;
}

// ---- the ZAP handler: state ----

typedef struct {
  int used;                    // the slot holds a server's monitor
  void *pair;                  // reads its monitor (owned by the thread once used)
  char what[FFS_ZAP_WHAT_MAX]; // its name in the logs
} s_mon_t;

struct ffs_zap {
  void *zctx;                                        // the context it serves
  ffs_curve_keys_t keys;                             // the run's pair and allowed keys (a copy)
  uint8_t allowed[FFS_CURVE_MAX_ALLOWED][S_KEY_BIN]; // keys.allowed, decoded
  void *rep;                                         // bound at S_ZAP_ENDPOINT; the thread's
  pthread_t thread;
  pthread_mutex_t lock;        // guards mons, n_monitors and stop
  s_mon_t mons[S_MAX_SERVERS]; // slots never move: the thread reads a used one unlocked
  uint64_t n_monitors;         // monitors made so far: numbers their endpoints
  int stop;                    // set by destroy, or by the thread when its context ends
  _Atomic uint64_t refused;    // written by the thread only
};

// Counts one refusal and logs it: the first S_LOG_FIRST, then one in
// S_LOG_EVERY with the total. The line is written before the count is
// stored, so whoever sees the count rise finds the line in the log.
__attribute__((format(printf, 2, 3))) static void s_refused(ffs_zap_t *z, const char *fmt, ...) {
  uint64_t n = atomic_load(&z->refused) + 1;
  if (n <= S_LOG_FIRST || n % S_LOG_EVERY == 0) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < S_LOG_FIRST)
      ffs_warn("%s", line);
    else if (n == S_LOG_FIRST)
      ffs_warn("%s (%d peers refused: from now on one refusal in %d is logged)", line, S_LOG_FIRST,
               S_LOG_EVERY);
    else
      ffs_warn("%s (%llu peers refused so far)", line, (unsigned long long)n);
  }
  atomic_store(&z->refused, n);
}

// Copies a frame as a printable string (other bytes become '?').
static void s_frame_str(zmq_msg_t *m, char *out, size_t outlen) {
  size_t n = zmq_msg_size(m);
  const char *s = zmq_msg_data(m);
  if (n >= outlen) n = outlen - 1;
  for (size_t i = 0; i < n; i++)
    out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  out[n] = 0;
}

static int s_frame_is(zmq_msg_t *m, const char *s) {
  return zmq_msg_size(m) == strlen(s) && !memcmp(zmq_msg_data(m), s, strlen(s));
}

// ---- the ZAP handler: answering ----

static void s_send(void *rep, const void *data, size_t len, int more) {
  zmq_send(rep, data, len, more ? ZMQ_SNDMORE : 0);
}

// Reads one ZAP request (RFC 27) and answers it: 200 for a CURVE client whose
// key is allowed, 400 for any other peer, 500 for a malformed request.
static void s_zap_answer(ffs_zap_t *z) {
  zmq_msg_t f[S_ZAP_FRAMES];
  int n = 0, more = 1;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, z->rep, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      if (n == 0) return; // nothing to answer
      break;
    }
    more = zmq_msg_more(&m);
    if (n < S_ZAP_FRAMES)
      f[n++] = m;
    else
      zmq_msg_close(&m);
  }
  // frames: version, request id, domain, address, routing id, mechanism, credentials
  char addr[64] = "?", domain[128] = "", mech[32] = "?", key[FFS_CURVE_Z85] = "";
  if (n > 2) s_frame_str(&f[2], domain, sizeof domain);
  if (n > 3) s_frame_str(&f[3], addr, sizeof addr);
  if (n > 5) s_frame_str(&f[5], mech, sizeof mech);
  size_t prefix = strlen(S_DOMAIN);
  const char *what = !strncmp(domain, S_DOMAIN, prefix) ? domain + prefix : domain;
  if (!*what) what = "?";
  const char *status = "400", *text = "not one of the run's allowed keys";
  if (n < 6 || !s_frame_is(&f[0], "1.0")) {
    status = "500", text = "malformed ZAP request";
    ffs_error("a malformed ZAP request (%d frames) from a socket of this process", n);
  } else if (!strcmp(mech, "CURVE") && n > 6 && zmq_msg_size(&f[6]) == S_KEY_BIN) {
    zmq_z85_encode(key, zmq_msg_data(&f[6]), S_KEY_BIN);
    for (int i = 0; i < z->keys.n_allowed; i++)
      if (!memcmp(zmq_msg_data(&f[6]), z->allowed[i], S_KEY_BIN)) status = "200", text = "OK";
    if (*status != '2')
      s_refused(z,
                "refused the CURVE key %.8s... of a peer at %s (%s): not one of the run's "
                "allowed keys",
                key, addr, what);
  } else {
    text = "only CURVE with the run's key";
    s_refused(z,
              "refused a peer at %s (%s) asking with the %s mechanism: only CURVE with the "
              "run's key is accepted",
              addr, what, mech);
  }
  s_send(z->rep, "1.0", 3, 1);
  if (n > 1)
    s_send(z->rep, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), 1);
  else
    s_send(z->rep, "", 0, 1);
  s_send(z->rep, status, 3, 1);
  s_send(z->rep, text, strlen(text), 1);
  s_send(z->rep, key, *status == '2' ? strlen(key) : 0, 1); // user id: the client's key
  s_send(z->rep, "", 0, 0);                                 // metadata: none
  for (int i = 0; i < n; i++)
    zmq_msg_close(&f[i]);
}

// ---- the ZAP handler: monitors ----

static const char *s_protocol_why(uint32_t value, char *buf, size_t len) {
  if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
    return "it asked for another security mechanism (a plaintext peer?)";
  if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
    return "its handshake does not decrypt (a client of another server key?)";
  snprintf(buf, len, "ZMTP protocol error 0x%08x in the handshake", (unsigned)value);
  return buf;
}

// Reads one event off a server's monitor and counts a refusal. 0 read one,
// 1 the monitor stopped (its socket closed), -1 nothing there.
static int s_mon_read(ffs_zap_t *z, const s_mon_t *mon) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, mon->pair, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&m);
    return -1;
  }
  uint16_t event = 0;
  uint32_t value = 0;
  int ok = zmq_msg_size(&m) == 6, more = zmq_msg_more(&m);
  if (ok) memcpy(&event, zmq_msg_data(&m), 2), memcpy(&value, (char *)zmq_msg_data(&m) + 2, 4);
  zmq_msg_close(&m);
  char endpoint[256] = "?", why[96];
  for (int i = 0; more; i++) { // the endpoint, then nothing we know of
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, mon->pair, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      break;
    }
    if (i == 0) s_frame_str(&m, endpoint, sizeof endpoint);
    more = zmq_msg_more(&m);
    zmq_msg_close(&m);
  }
  if (!ok) return 0;
  if (event == ZMQ_EVENT_MONITOR_STOPPED) return 1;
  const char *reason = NULL;
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
    reason = s_protocol_why(value, why, sizeof why);
  else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    snprintf(why, sizeof why, "the handshake did not finish (%s)", strerror((int)value)),
        reason = why;
  if (reason)
    s_refused(z, "refused a peer that does not speak CURVE with the run's key on %s (%s): %s",
              endpoint, mon->what, reason);
  return 0;
}

// ---- the ZAP handler: the thread ----

static void *s_run(void *arg) {
  ffs_zap_t *z = arg;
  ffs_log_set_name("zap");
  zmq_pollitem_t items[1 + S_MAX_SERVERS];
  s_mon_t *seen[S_MAX_SERVERS];
  for (;;) {
    int n = 0;
    pthread_mutex_lock(&z->lock);
    int stop = z->stop;
    for (int i = 0; i < S_MAX_SERVERS; i++)
      if (z->mons[i].used) seen[n++] = &z->mons[i];
    pthread_mutex_unlock(&z->lock);
    if (stop) break;
    items[0] = (zmq_pollitem_t){.socket = z->rep, .events = ZMQ_POLLIN};
    for (int i = 0; i < n; i++)
      items[1 + i] = (zmq_pollitem_t){.socket = seen[i]->pair, .events = ZMQ_POLLIN};
    if (zmq_poll(items, 1 + n, S_POLL_MS) < 0) {
      if (zmq_errno() == EINTR) continue;
      if (zmq_errno() != ETERM) ffs_error("ZAP handler: zmq_poll: %s", zmq_strerror(zmq_errno()));
      break; // the context is ending: close everything so that zmq_ctx_term returns
    }
    if (items[0].revents & ZMQ_POLLIN) s_zap_answer(z);
    for (int i = 0; i < n; i++) {
      if (!(items[1 + i].revents & ZMQ_POLLIN)) continue;
      int rc = 0;
      for (int j = 0; j < 64 && rc == 0; j++)
        rc = s_mon_read(z, seen[i]);
      if (rc == 1) { // its socket closed: the slot is free again
        pthread_mutex_lock(&z->lock);
        zmq_close(seen[i]->pair);
        seen[i]->pair = NULL, seen[i]->used = 0;
        pthread_mutex_unlock(&z->lock);
      }
    }
  }
  pthread_mutex_lock(&z->lock);
  z->stop = 1;
  zmq_close(z->rep);
  z->rep = NULL;
  for (int i = 0; i < S_MAX_SERVERS; i++)
    if (z->mons[i].used) zmq_close(z->mons[i].pair), z->mons[i].pair = NULL, z->mons[i].used = 0;
  pthread_mutex_unlock(&z->lock);
  return NULL;
}

// ---- the ZAP handler: API ----

ffs_zap_t *ffs_zap_start(void *zctx, const ffs_curve_keys_t *k, char *err, size_t errlen) {
  assert(zctx && k);
  assert(k->n_allowed >= 0 && k->n_allowed <= FFS_CURVE_MAX_ALLOWED);
  if (!ffs_curve_available()) {
    ffs_errf(err, errlen, "this libzmq was built without CURVE (zmq_has(\"curve\") is 0)");
    return NULL;
  }
  ffs_zap_t *z = calloc(1, sizeof *z);
  if (!z) {
    ffs_errf(err, errlen, "out of memory");
    return NULL;
  }
  int locked = 0, zero = 0;
  z->zctx = zctx, z->keys = *k;
  if (strnlen(k->sec, FFS_CURVE_Z85) != S_KEY_LEN || strnlen(k->pub, FFS_CURVE_Z85) != S_KEY_LEN) {
    ffs_errf(err, errlen, "the run's key pair is not two 40-character Z85 keys");
    goto fail;
  }
  for (int i = 0; i < k->n_allowed; i++)
    if (strnlen(k->allowed[i], FFS_CURVE_Z85) != S_KEY_LEN ||
        !zmq_z85_decode(z->allowed[i], z->keys.allowed[i])) {
      ffs_errf(err, errlen, "allowed key %d is not a 40-character Z85 key", i);
      goto fail;
    }
  if (pthread_mutex_init(&z->lock, NULL) != 0) {
    ffs_errf(err, errlen, "pthread_mutex_init failed");
    goto fail;
  }
  locked = 1;
  z->rep = zmq_socket(zctx, ZMQ_REP);
  if (!z->rep || zmq_setsockopt(z->rep, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
      zmq_bind(z->rep, S_ZAP_ENDPOINT) < 0) {
    int e = zmq_errno();
    ffs_errf(err, errlen, "cannot bind the ZAP handler at %s: %s%s", S_ZAP_ENDPOINT,
             zmq_strerror(e), e == EADDRINUSE ? " (one already runs in this context)" : "");
    goto fail;
  }
  if (pthread_create(&z->thread, NULL, s_run, z) != 0) {
    ffs_errf(err, errlen, "cannot start the ZAP handler's thread");
    goto fail;
  }
  return z;
fail:
  if (z->rep) zmq_close(z->rep);
  if (locked) pthread_mutex_destroy(&z->lock);
  explicit_bzero(z, sizeof *z);
  free(z);
  return NULL;
}

int ffs_zap_server(ffs_zap_t *z, void *sock, const char *what) {
  assert(z && sock && what);
  int one = 1, zero = 0;
  char domain[sizeof S_DOMAIN + FFS_ZAP_WHAT_MAX], endpoint[96];
  snprintf(domain, sizeof domain, "%s%.*s", S_DOMAIN, FFS_ZAP_WHAT_MAX - 1, what);
  if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) < 0 ||
      zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->keys.sec, FFS_CURVE_Z85) < 0 ||
      zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) < 0)
    return -1;
  pthread_mutex_lock(&z->lock);
  uint64_t id = z->n_monitors++;
  pthread_mutex_unlock(&z->lock);
  snprintf(endpoint, sizeof endpoint, "inproc://ffs-zap-monitor-%p-%llu", (void *)z,
           (unsigned long long)id);
  if (zmq_socket_monitor(sock, endpoint, S_MON_EVENTS) < 0) return -1;
  void *pair = zmq_socket(z->zctx, ZMQ_PAIR);
  int e = 0;
  if (!pair || zmq_setsockopt(pair, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
      zmq_connect(pair, endpoint) < 0) {
    e = zmq_errno();
    goto fail;
  }
  pthread_mutex_lock(&z->lock);
  int slot = -1;
  for (int i = 0; i < S_MAX_SERVERS && slot < 0 && !z->stop; i++)
    if (!z->mons[i].used) slot = i;
  if (slot >= 0) {
    s_mon_t *m = &z->mons[slot];
    m->pair = pair, m->used = 1;
    snprintf(m->what, sizeof m->what, "%s", what);
  }
  e = z->stop ? ETERM : EMFILE;
  pthread_mutex_unlock(&z->lock);
  if (slot >= 0) return 0;
fail:
  if (pair) zmq_close(pair);
  zmq_socket_monitor(sock, NULL, 0);
  errno = e;
  return -1;
}

uint64_t ffs_zap_refused(const ffs_zap_t *z) {
  assert(z);
  return atomic_load(&z->refused);
}

void ffs_zap_destroy(ffs_zap_t **z_p) {
  assert(z_p);
  ffs_zap_t *z = *z_p;
  if (!z) return;
  pthread_mutex_lock(&z->lock);
  z->stop = 1;
  pthread_mutex_unlock(&z->lock);
  pthread_join(z->thread, NULL);
  pthread_mutex_destroy(&z->lock);
  explicit_bzero(z, sizeof *z);
  free(z);
  *z_p = NULL;
}

// ---- the command line ----

static const char s_usage_keys[] =
    "usage: ffstream keys DIR [NAME] [--force]\n"
    "\n"
    "Writes a fresh CURVE key pair for the tcp sockets of a run: DIR/NAME.key (both\n"
    "keys, mode 0600: keep it secret) and DIR/NAME.pub (its public key). NAME is\n"
    "\"run\" unless given; DIR is made (mode 0700) when missing.\n"
    "  --force   replace an existing NAME.key (every process of the run then needs\n"
    "            the new pair)\n";

int ffs_curve_cmd_keys(int argc, char **argv) {
  assert(argc >= 1 && argv);
  const char *pos[2] = {NULL, NULL};
  int n_pos = 0, force = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(s_usage_keys, stdout), 0;
    if (!strcmp(a, "--force")) {
      force = 1;
    } else if (a[0] == '-') {
      fprintf(stderr, "ffstream keys: unknown flag '%s'\n\n%s", a, s_usage_keys);
      return 2;
    } else if (n_pos == 2) {
      fprintf(stderr, "ffstream keys: '%s': one DIR and one NAME at most\n\n%s", a, s_usage_keys);
      return 2;
    } else {
      pos[n_pos++] = a;
    }
  }
  const char *dir = pos[0], *name = pos[1] ? pos[1] : "run";
  char err[PATH_MAX + 256];
  if (!dir || !*dir) {
    fprintf(stderr, "ffstream keys: DIR is required\n\n%s", s_usage_keys);
    return 2;
  }
  char key_path[PATH_MAX], pub_path[PATH_MAX];
  if (s_pair_paths(dir, name, key_path, pub_path, err, sizeof err) < 0) {
    fprintf(stderr, "ffstream keys: %s\n\n%s", err, s_usage_keys);
    return 2;
  }
  if (ffs_curve_write_pair(dir, name, force, err, sizeof err) < 0) {
    fprintf(stderr, "ffstream keys: %s\n", err);
    return 1;
  }
  printf("wrote %s (the run's key pair, mode 0600: keep it secret)\n"
         "wrote %s (its public key)\n"
         "\n"
         "Every process of a run over tcp loads %s: copy the folder to each host\n"
         "with its modes kept (scp -rp, rsync -a). Its tcp servers then speak CURVE with\n"
         "this pair and accept a client only when the client's public key is in a .pub\n"
         "of the folder (this pair's own key always is); a plaintext peer or one with\n"
         "another key is refused, counted and logged.\n",
         key_path, pub_path, key_path);
  return 0;
}
