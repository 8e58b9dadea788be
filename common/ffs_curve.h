// ffs_curve: the security of a run's tcp sockets. Every process of a run holds
// the same CURVE key pair (the run's key, DIR/NAME.key); a server socket speaks
// CURVE and accepts only clients whose public key is one of DIR/*.pub, asked
// through a ZAP handler (one thread per ZeroMQ context) that also watches the
// servers' monitors so that a refused peer is always counted and logged. Key
// files are hostile input: a bad one is refused with a message, never asserted.
#ifndef FFS_CURVE_H
#define FFS_CURVE_H

#include <stddef.h>
#include <stdint.h>

#define FFS_CURVE_Z85 41 // a Z85 key: 40 characters and the NUL
#define FFS_CURVE_MAX_ALLOWED 64
#define FFS_CURVE_NAME_MAX 64 // a pair's NAME, NUL included: [A-Za-z0-9._-], no leading '.'
#define FFS_ZAP_WHAT_MAX 64   // a server's name in the refusal logs, NUL included (cut to fit)

typedef struct {
  char pub[FFS_CURVE_Z85], sec[FFS_CURVE_Z85]; // this process's pair (the run's)
  int n_allowed;                               // client public keys accepted
  char allowed[FFS_CURVE_MAX_ALLOWED][FFS_CURVE_Z85];
} ffs_curve_keys_t;

// ---- keys ----

// 1 when this libzmq can do CURVE (zmq_has("curve")).
int ffs_curve_available(void);

// Writes a fresh pair: DIR/NAME.key (mode 0600; both keys, text format below)
// and DIR/NAME.pub (mode 0644; public key only). DIR is created (0700, and
// its missing parents) when missing. Refuses to overwrite an existing
// NAME.key unless force (the .pub is always replaced). 0 or -1.
//
//   # ffstream CURVE key pair: keep this file secret (mode 0600)
//   public-key = <40 Z85 characters>
//   secret-key = <40 Z85 characters>
//
// A .pub holds a comment line and the public-key line. Blank lines and lines
// starting with '#' are skipped when read; any other line is an error.
int ffs_curve_write_pair(const char *dir, const char *name, int force, char *err, size_t errlen);

// Loads DIR/NAME.key as this process's pair; every DIR/*.pub (hidden files
// skipped) is an allowed client key (its own .pub included; its public key is
// allowed even when its .pub is missing). Refuses, naming the file: a missing
// key file, a key file that group or others may read (mode & 077), a
// malformed key (not 40 Z85 characters, or public not matching secret), a
// .pub holding a secret key, an unknown line (file:line), more than
// FFS_CURVE_MAX_ALLOWED .pub files. 0 or -1 (then *k is zeroed).
int ffs_curve_load(const char *dir, const char *name, ffs_curve_keys_t *k, char *err,
                   size_t errlen);

// Makes sock a CURVE client of a server holding the run's pair (server key =
// k->pub, client pair = k's). Call before zmq_connect. 0 or -1 (errno says why).
int ffs_curve_client(const ffs_curve_keys_t *k, void *sock);

// ---- the ZAP handler ----

typedef struct ffs_zap ffs_zap_t;

// Starts the ZAP handler of context zctx (a thread with a REP socket bound at
// inproc://zeromq.zap.01; one per context; libzmq 4.3 lets any key in when no
// handler is bound, so start it before any CURVE server binds): a CURVE client
// whose public key is in k->allowed is accepted (200, its user id is its Z85
// public key), any other request refused (400), PLAIN and NULL included. Each
// refusal is counted and logged (ffs_warn) with the peer's address, the
// socket's `what` and the first 8 characters of the refused key: the first 10
// refusals, then one line every 100 with the total. k is copied. NULL + err
// on failure (no CURVE, a handler already bound in zctx, a malformed k).
ffs_zap_t *ffs_zap_start(void *zctx, const ffs_curve_keys_t *k, char *err, size_t errlen);

// Makes sock (a socket of the handler's context) a CURVE server with the
// run's secret key and ZAP domain "ffstream:<what>" (the handler reads the
// socket's name from it; no other code sees the domain); `what` names it in
// the refusal logs ("l1 input"). Also puts a socket monitor on it (inproc,
// an endpoint unique per socket, read by the handler's thread) so that a
// peer refused before ZAP is asked (a plaintext peer, a CURVE peer with
// another server key, a failed or malformed handshake) is counted and logged
// too: "refused a peer that does not speak CURVE with the run's key on
// <endpoint> (<what>): <why>". Call before zmq_bind. 0 or -1 (errno says
// why; EMFILE: 256 servers are watched already, their slots free as they close).
int ffs_zap_server(ffs_zap_t *z, void *sock, const char *what);

// Peers refused so far (by ZAP or by the monitors); safe from any thread.
uint64_t ffs_zap_refused(const ffs_zap_t *z);

// Stops the thread and closes its sockets; call after the sockets given to
// ffs_zap_server were closed and before zmq_ctx_term. Idempotent, NULLs *z_p.
void ffs_zap_destroy(ffs_zap_t **z_p);

// ---- the command line ----

// `ffstream keys DIR [NAME] [--force]`: the command-line entry (argv[0] is
// "keys"); writes the pair (NAME defaults to "run") and prints what it wrote
// and how a run uses it. Returns the process exit code (0 ok, 2 usage,
// 1 failure); `--help` prints the usage and returns 0.
int ffs_curve_cmd_keys(int argc, char **argv);

#endif
