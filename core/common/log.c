#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The threshold is the one piece of process-wide state: every thread logs,
 * and SIGHUP may change it while they do. */
static atomic_int log_threshold = 1;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void wsync_log_set_level(int level)
{
	if (level >= 0 && level <= 3)
		atomic_store(&log_threshold, level);
}

int wsync_log_level(void)
{
	return atomic_load(&log_threshold);
}

int wsync_log_level_parse(const char *s)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	if (strcasecmp(s, "warn") == 0)
		return 2;
	return -1;
}

void wsync_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	int n;

	if (level < atomic_load(&log_threshold) || level < 0 || level > 3)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof line, "%s %-7s %s%s", stamp, level_names[level],
	             prefix ? prefix : "", prefix ? ": " : "");
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	/* One fputs per line: stdio locks the stream, so lines from several
	 * threads never interleave. */
	strncat(line, "\n", sizeof line - strlen(line) - 1);
	fputs(line, stderr);
}

void wsync_log(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wsync_vlog(level, NULL, fmt, ap);
	va_end(ap);
}
