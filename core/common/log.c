#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The threshold is the one piece of process-wide state: every thread logs,
 * and SIGHUP may change it while they do. */
static atomic_int log_threshold = 1;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

/* syslog(3) priorities of the levels, as journald reads them from a
 * "<N>" line prefix (sd-daemon(3)): debug 7, info 6, warning 4, error 3. */
static const int journal_priority[] = {7, 6, 4, 3};

/* -1 not decided yet, 0 plain lines, 1 journald prefixes. */
static atomic_int journal_mode = -1;

/*
 * stderr is connected to the journal when JOURNAL_STREAM ("DEV:INODE", set
 * by systemd for StandardError=journal) names the very file stderr is:
 * a child whose stderr was redirected elsewhere inherits the variable but
 * must not get prefixes (systemd.exec(5), "JOURNAL_STREAM").
 */
static int stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int journal(void)
{
	int mode = atomic_load(&journal_mode);
	if (mode < 0) { /* racing threads compute the same answer */
		mode = stderr_is_journal();
		atomic_store(&journal_mode, mode);
	}
	return mode;
}

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

int wsync_log_to_journal(void)
{
	return journal();
}

void wsync_vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	int n;

	if (level < atomic_load(&log_threshold) || level < 0 || level > 3)
		return;
	if (journal()) {
		/* The journal stamps each line itself. */
		n = snprintf(line, sizeof line, "<%d>%-7s %s%s", journal_priority[level],
		             level_names[level], prefix ? prefix : "", prefix ? ": " : "");
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
		n = snprintf(line, sizeof line, "%s %-7s %s%s", stamp, level_names[level],
		             prefix ? prefix : "", prefix ? ": " : "");
	}
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
