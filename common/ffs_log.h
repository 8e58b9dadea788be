// ffs_log: leveled logging to stderr, prefixed with the stage name and pid.
// Every module logs through these macros; the level is checked before any
// formatting work. Never used for per-frame output in the steady state
// (use counters, and log the first occurrence of each kind only).
#ifndef FFS_LOG_H
#define FFS_LOG_H

#include <stddef.h>

enum ffs_log_level { FFS_LOG_ERROR = 0, FFS_LOG_WARN, FFS_LOG_INFO, FFS_LOG_DEBUG };

// Sets this process's (or thread's) log prefix, e.g. the stage name.
void ffs_log_set_name(const char *name);
// Sets the global level (from FFS_LOG=error|warn|info|debug when not called).
void ffs_log_set_level(enum ffs_log_level level);
int ffs_log_enabled(enum ffs_log_level level);
void ffs_log_write(enum ffs_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Formats a one-line error message into a caller's buffer (the convention of
// every fallible function that takes `char *err, size_t errlen`); a NULL
// buffer or errlen 0 means the caller does not want it.
void ffs_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define ffs_log(level, ...)                                                    \
  do {                                                                         \
    if (ffs_log_enabled(level)) ffs_log_write(level, __VA_ARGS__);             \
  } while (0)
#define ffs_error(...) ffs_log(FFS_LOG_ERROR, __VA_ARGS__)
#define ffs_warn(...) ffs_log(FFS_LOG_WARN, __VA_ARGS__)
#define ffs_info(...) ffs_log(FFS_LOG_INFO, __VA_ARGS__)
#define ffs_debug(...) ffs_log(FFS_LOG_DEBUG, __VA_ARGS__)

#endif
