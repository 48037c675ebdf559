#include "testlib.h"

#include "ctl/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int t_checks, t_failures;

/* The first failures, said again by t_done: a long test's own output (a
 * daemon log it dumps) must not push them out of a CI log's tail. */
enum { RECAP_MAX = 20 };
static char recap[RECAP_MAX][300];

void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	if (t_failures < RECAP_MAX) {
		int k = snprintf(recap[t_failures], sizeof recap[0], "FAIL %s:%d: ", file, line);
		va_start(ap, fmt);
		if (k >= 0 && (size_t)k < sizeof recap[0])
			vsnprintf(recap[t_failures] + k, sizeof recap[0] - (size_t)k, fmt, ap);
		va_end(ap);
	}
	t_failures++;
	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int t_done(void)
{
	if (t_failures)
		fprintf(stderr, "---- failed checks%s ----\n", t_failures > RECAP_MAX
		        ? " (the first 20)" : "");
	for (int i = 0; i < t_failures && i < RECAP_MAX; i++)
		fprintf(stderr, "%s\n", recap[i]);
	printf("%d checks, %d failed\n", t_checks, t_failures);
	return t_failures ? 1 : 0;
}

PGconn *t_db(void)
{
	const char *ci = getenv("WSYNC_TEST_CONNINFO");
	PGconn *c;
	if (!ci) {
		fprintf(stderr, "WSYNC_TEST_CONNINFO not set: run under tests/pg_harness.sh\n");
		exit(1);
	}
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect to test database: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static PGresult *run(PGconn *c, const char *sql, int n, const char *const *params)
{
	return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

int t_exec(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = run(c, sql, n, params);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	t_checks++;
	if (!ok)
		t_fail(__FILE__, __LINE__, "SQL failed: %s\n  %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok;
}

char *t_query_str(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = run(c, sql, n, params);
	char *s = NULL;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		t_fail(__FILE__, __LINE__, "SQL failed: %s\n  %s", sql, PQerrorMessage(c));
		s = strdup("");
	} else if (PQntuples(r) == 0) {
		s = strdup("");
	} else if (!PQgetisnull(r, 0, 0)) {
		s = strdup(PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return s;
}

long long t_query_int(PGconn *c, const char *sql, int n, const char *const *params)
{
	char *s = t_query_str(c, sql, n, params);
	long long v = (s && *s) ? strtoll(s, NULL, 10) : -1;
	free(s);
	return v;
}

void t_migrate(PGconn *c)
{
	char err[1024];
	const char *dir = getenv("WSYNC_MIGRATIONS_DIR");
	if (wsync_migrate(c, dir ? dir : WSYNC_SOURCE_ROOT "/migrations", NULL, err,
	                  sizeof err) < 0) {
		fprintf(stderr, "migrate failed: %s\n", err);
		exit(1);
	}
}

int t_run(char *const argv[], char **out)
{
	char path[] = "/tmp/wsync-t-run.XXXXXX";
	int fd = mkstemp(path), status = 0;
	pid_t pid;
	if (fd < 0)
		return -1;
	unlink(path);
	pid = fork();
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (out) {
		off_t len = lseek(fd, 0, SEEK_END);
		*out = calloc(1, (size_t)len + 1);
		if (*out && len > 0 && pread(fd, *out, (size_t)len, 0) < 0)
			(*out)[0] = 0;
	}
	close(fd);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

char *t_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n)
		s[0] = 0;
	fclose(f);
	return s;
}

void t_write_file(const char *path, const char *text, unsigned mode)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

void t_shared_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd < 0 || fchmod(fd, 0666) < 0) {
		fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

long long t_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void t_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int t_wait_exit(pid_t pid, int timeout_ms)
{
	long long until = t_now_ms() + timeout_ms;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0 && errno != EINTR)
			return -2;
		if (t_now_ms() >= until)
			return -1;
		t_sleep_ms(20);
	}
}

int t_running(pid_t pid)
{
	int status;
	return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

static int db_answers(PGconn *db)
{
	PGresult *r;
	int ok;
	if (PQstatus(db) != CONNECTION_OK)
		return 0;
	r = PQexec(db, "SELECT 1");
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok;
}

void t_db_back(PGconn *db, const char *setup)
{
	long long until = t_now_ms() + 60000;
	if (db_answers(db))
		return;
	while (t_now_ms() < until) {
		PQreset(db);
		if (PQstatus(db) == CONNECTION_OK)
			break;
		t_sleep_ms(100);
	}
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "cannot reconnect to the test database\n");
		exit(1);
	}
	if (setup)
		PQclear(PQexec(db, setup));
}

static long long case_epoch_ms;
static int case_failures_before;

void t_case(const char *what)
{
	if (!case_epoch_ms)
		case_epoch_ms = t_now_ms();
	case_failures_before = t_failures;
	printf("[%6.1f s] %s\n", (double)(t_now_ms() - case_epoch_ms) / 1000.0, what);
	fflush(stdout);
}

int t_case_failed(void)
{
	return t_failures > case_failures_before;
}

pid_t t_spawn_wsyncd(const char *wsyncd, const char *ini, const char *log, const char *arg,
                     const char *const *env)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
		char *argv[] = {(char *)wsyncd, "-c", (char *)ini, (char *)arg, NULL};
		setrlimit(RLIMIT_CORE, &no_core);
		unsetenv("WORKOUT_SYNC_INTERVAL_MINUTES");
		unsetenv("WSYNC_DATABASE_URL");
		for (; env && *env; env++)
			putenv((char *)*env);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

int t_stop(pid_t pid)
{
	int rc;
	kill(pid, SIGTERM);
	rc = t_wait_exit(pid, 60000);
	if (rc == -1) {
		kill(pid, SIGKILL);
		t_wait_exit(pid, 10000);
	}
	return rc;
}

void t_show_tail(const char *path, size_t bytes)
{
	char *s = t_read_file(path);
	size_t len = s ? strlen(s) : 0;
	fprintf(stderr, "---- %s (last %zu bytes) ----\n%s\n----\n", path, bytes,
	        s ? (len > bytes ? s + len - bytes : s) : "");
	free(s);
}

int t_file_contains(const char *path, const char *needle)
{
	char *s = t_read_file(path);
	int found = s && strstr(s, needle) != NULL;
	free(s);
	return found;
}

char *t_tempdir(void)
{
	char *d = strdup("/tmp/wsync-test.XXXXXX");
	if (!d || !mkdtemp(d)) {
		fprintf(stderr, "mkdtemp failed\n");
		exit(1);
	}
	chmod(d, 0755);
	return d;
}
