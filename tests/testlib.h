/*
 * testlib.h -- the few helpers every wsync test uses.
 *
 * A test program runs named checks; each failed check prints file:line and
 * what differed; main() ends with `return t_done();`, which prints
 * "N checks, N failed" and returns non-zero if any failed.  Database tests
 * run under tests/pg_harness.sh and get their database from
 * WSYNC_TEST_CONNINFO (t_db()).
 */
#ifndef WSYNC_TESTLIB_H
#define WSYNC_TESTLIB_H

#include <libpq-fe.h>
#include <sys/types.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int t_checks, t_failures;

void t_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int t_done(void);

#define T_CHECK(cond)                                                          \
	do {                                                                   \
		t_checks++;                                                    \
		if (!(cond))                                                   \
			t_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
	} while (0)

#define T_EQ_INT(a, b)                                                         \
	do {                                                                   \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);        \
		t_checks++;                                                    \
		if (t_a_ != t_b_)                                              \
			t_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", \
			       #a, t_a_, #b, t_b_);                            \
	} while (0)

#define T_EQ_STR(a, b)                                                         \
	do {                                                                   \
		const char *t_a_ = (a), *t_b_ = (b);                           \
		t_checks++;                                                    \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                 \
			t_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", \
			       #a, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); \
	} while (0)

#define T_CONTAINS(hay, needle)                                                \
	do {                                                                   \
		const char *t_h_ = (hay), *t_n_ = (needle);                    \
		t_checks++;                                                    \
		if (!t_h_ || !strstr(t_h_, t_n_))                              \
			t_fail(__FILE__, __LINE__, "%s == \"%s\" does not contain \"%s\"", \
			       #hay, t_h_ ? t_h_ : "(null)", t_n_);            \
	} while (0)

/* The example of the workout-text syntax page (docs/workout-text.md):
 * 43 minutes, a warm-up ramp, a 5x repeat, a cool-down. */
#define T_SYNTAX_EXAMPLE                                                       \
	"Warmup\n"                                                              \
	"- 10m ramp 50-75% 90rpm\n"                                             \
	"\n"                                                                    \
	"Main Set 5x\n"                                                         \
	"- 3m 120% 100rpm\n"                                                    \
	"- Recovery 2m Z1 85rpm\n"                                              \
	"\n"                                                                    \
	"Cooldown\n"                                                            \
	"- 8m 50%\n"

/* ---- database helpers (abort the test on connection failure) ---- */

/* Connect to WSYNC_TEST_CONNINFO.  Caller PQfinish()es. */
PGconn *t_db(void);
/* Run SQL with optional text parameters; fail the test (and return 0) on
 * error.  Returns 1 on success. */
int t_exec(PGconn *c, const char *sql, int n, const char *const *params);
/* First column of the first row as a malloc'ed string ("" for no row, NULL
 * for SQL NULL); caller frees. */
char *t_query_str(PGconn *c, const char *sql, int n, const char *const *params);
/* First column of the first row as a number (-1 when no row or NULL). */
long long t_query_int(PGconn *c, const char *sql, int n, const char *const *params);
/* Apply every migration of the source tree to the test database. */
void t_migrate(PGconn *c);

/* ---- process helpers ---- */

/* Run argv (argv[0] a path), capture stdout and stderr together into a
 * malloc'ed string (*out, may be NULL), return the exit status (or 128+sig). */
int t_run(char *const argv[], char **out);
/* The whole file as a malloc'ed string ("" when it does not exist). */
char *t_read_file(const char *path);
/* Write `text` to a new file `path` with mode `mode`. */
void t_write_file(const char *path, const char *text, unsigned mode);
/* A fresh temp directory (malloc'ed path). */
char *t_tempdir(void);
/* An empty file anyone may write (truncated if it exists): what a plugin
 * writes to from its child process, which runs as [plugins] user (nobody)
 * when the tests run as root (core/host/isolate.h). */
void t_shared_file(const char *path);

/* Processes and time, for the tests that run wsyncd. */
long long t_now_ms(void);                 /* monotonic clock */
void t_sleep_ms(long ms);
/* Exit status of pid (its code, or 128 + signal) once it ended; -1 when it
 * still runs after timeout_ms, -2 when it is not our child. */
int t_wait_exit(pid_t pid, int timeout_ms);
int t_running(pid_t pid);                 /* our child, not ended yet */
int t_file_contains(const char *path, const char *needle);
/* After a server restart: the session back (PQreset until it answers, at
 * most 60 s; exit 1 when it never does), then `setup` (SQL, may be NULL)
 * run on it.  Nothing when the session still answers. */
void t_db_back(PGconn *db, const char *setup);
/* SIGTERM, then SIGKILL after 60 s: its exit status, or -1 when it had to
 * be killed. */
int t_stop(pid_t pid);
/* Start `wsyncd -c ini [arg]` as our child, its output appended to `log`:
 * no core file, WORKOUT_SYNC_INTERVAL_MINUTES and WSYNC_DATABASE_URL unset
 * (the ini says what the test means), then `env` ("NAME=VALUE", NULL-ended,
 * may be NULL) added.  Its pid. */
pid_t t_spawn_wsyncd(const char *wsyncd, const char *ini, const char *log, const char *arg,
                     const char *const *env);
/* Cases of a long test: t_case announces one, with the time since the
 * first (a failure's log shows where the time went); t_case_failed says
 * whether a check failed since (not in an earlier case). */
void t_case(const char *what);
int t_case_failed(void);
/* The last `bytes` of a log file on stderr, framed (after a failure). */
void t_show_tail(const char *path, size_t bytes);

#endif
