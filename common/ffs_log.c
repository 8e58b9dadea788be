// ffs_log: stderr logger with a per-thread name prefix (stages may run as
// threads of one process in --threads mode, so the name is thread-local).
#include "ffs_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Thread_local char s_name[48] = "ffstream";
static int s_level = -1; // written once at start-up, before any thread starts

static int s_level_from_env(void) {
  const char *v = getenv("FFS_LOG");
  if (!v) return FFS_LOG_INFO;
  if (!strcmp(v, "error")) return FFS_LOG_ERROR;
  if (!strcmp(v, "warn")) return FFS_LOG_WARN;
  if (!strcmp(v, "debug")) return FFS_LOG_DEBUG;
  return FFS_LOG_INFO;
}

void ffs_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

void ffs_log_set_name(const char *name) {
  snprintf(s_name, sizeof s_name, "%s", name ? name : "ffstream");
}

void ffs_log_set_level(enum ffs_log_level level) { s_level = (int)level; }

int ffs_log_enabled(enum ffs_log_level level) {
  if (s_level < 0) s_level = s_level_from_env();
  return (int)level <= s_level;
}

void ffs_log_write(enum ffs_log_level level, const char *fmt, ...) {
  static const char *tag[] = {"error", "warn", "info", "debug"};
  char line[1024];
  int n = snprintf(line, sizeof line, "[%s %d] %s: ", s_name, (int)getpid(), tag[level]);
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  // one write per line so lines from several processes do not interleave
  size_t len = strlen(line);
  if (len + 1 < sizeof line) {
    line[len++] = '\n';
    line[len] = 0;
  }
  fputs(line, stderr);
}
