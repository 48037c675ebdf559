/*
 * log.h -- one line per event on stderr: "2026-11-28T17:00:00Z INFO  text".
 * When stderr is the systemd journal (JOURNAL_STREAM names it), the line
 * carries the journald priority instead of the time: "<6>INFO    text"
 * (debug <7>, info <6>, warning <4>, error <3>).
 * The level threshold is process-wide (set once at start and on SIGHUP).
 * Never pass a token or secret to these functions.
 */
#ifndef WSYNC_LOG_H
#define WSYNC_LOG_H

#include <stdarg.h>

void wsync_log_set_level(int level);   /* WSYNC_LOG_* of plugin.h */
int wsync_log_level(void);
int wsync_log_level_parse(const char *s); /* -1 when unknown */
void wsync_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void wsync_vlog(int level, const char *prefix, const char *fmt, va_list ap);
/* 1 when stderr is the journal: a line written there without wsync_log
 * should start with its "<N>" priority too. */
int wsync_log_to_journal(void);

#define wsync_debug(...) wsync_log(0, __VA_ARGS__)
#define wsync_info(...) wsync_log(1, __VA_ARGS__)
#define wsync_warn(...) wsync_log(2, __VA_ARGS__)
#define wsync_error(...) wsync_log(3, __VA_ARGS__)

#endif
