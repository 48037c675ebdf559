/*
 * wsbench: the measuring half of bench/side_by_side.sh (a benchmark tool, not
 * part of wsync; the script compiles it with cc and libpq).
 *
 *   wsbench drain CONNINFO PENDING_SQL TIMEOUT_S POLL_MS LOG -- CMD [ARGS...]
 *       Connects first, then starts CMD (the daemon) with stdout/stderr to LOG,
 *       and polls PENDING_SQL (one integer) on its own connection every
 *       POLL_MS until it answers 0, CMD exits, or TIMEOUT_S passes.  Measured
 *       time: from just before CMD is started until the poll that saw 0.
 *       Then reads CMD's peak RSS (VmHWM) and CPU time from /proc, and its
 *       child processes' (wsyncd's plugin processes) PSS and CPU, stops it
 *       with SIGTERM (SIGKILL after 30 s) and prints one line of key=value:
 *       ok secs rss_kb cpu_s exit plugins_pss_kb
 *
 *   wsbench pickup CONNINFO K SPACING_MS POLL_US INSERT_SQL DONE_SQL
 *       With the daemon already running and idle: K times, runs INSERT_SQL
 *       ($1 = i, autocommit) which must return the new entity's id, takes the
 *       time when the commit has returned, then runs DONE_SQL ($1 = that id;
 *       one integer, > 0 when processed) every POLL_US until it is, and
 *       records the difference; sleeps SPACING_MS (+-25 % jitter) between
 *       enqueues.  3 unmeasured warm-up rounds come first (i = -3..-1 are
 *       passed as K+1..K+3).  Prints: n p50_ms p90_ms p99_ms max_ms mean_ms
 *       (nearest-rank percentiles).
 *
 * Exit: 0 measured, 1 runtime failure (database, timeout), 2 usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static PGconn *connect_db(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "wsbench: cannot connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* One integer from a one-row, one-column query; -1 on error (printed). */
static long long scalar(PGconn *c, const char *sql, const char *param)
{
	const char *p[1] = {param};
	PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, p, NULL, NULL, 0);
	long long v = -1;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) < 1)
		fprintf(stderr, "wsbench: query failed: %s: %s", sql, PQerrorMessage(c));
	else
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* The "KEY:" line of /proc/PID/FILE in kB ("VmHWM" of status, "Pss" of
 * smaps_rollup: the process's share of the pages it maps, a library page
 * shared by N processes counting 1/N); 0 when unreadable. */
static long proc_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = 0;
	FILE *f;
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* utime + stime of PID in seconds (fields 14 and 15 of /proc/PID/stat). */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;
	char *p;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields count from after the ')'. */
	if (!(p = strrchr(buf, ')')))
		return 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The parent pid of PID (field 4 of /proc/PID/stat), or -1. */
static pid_t proc_ppid(pid_t pid)
{
	char path[64], buf[1024], *p;
	int ppid = -1;
	size_t n;
	FILE *f;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')) || sscanf(p + 2, "%*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* wsyncd runs each plugin in a child process of its own: their memory (as
 * PSS: they share wsyncd's binary and libraries, which VmHWM would count
 * once per process) and their CPU time, read while they run. */
static void add_children(pid_t pid, long *pss_kb, double *cpu_s)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		pid_t child = (pid_t)atoi(e->d_name);
		if (child <= 0 || proc_ppid(child) != pid)
			continue;
		*pss_kb += proc_kb(child, "smaps_rollup", "Pss");
		*cpu_s += proc_cpu_s(child);
	}
	if (d)
		closedir(d);
}

static int cmd_drain(int argc, char **argv)
{
	const char *conninfo, *sql, *logpath;
	double timeout_s, t0, t1 = 0, cpu;
	long poll_ms, hwm, plugins_kb = 0;
	int ok = 0, status = 0, exited = 0, logfd;
	pid_t pid;
	PGconn *c;
	struct rusage ru;

	if (argc < 8 || strcmp(argv[6], "--")) {
		fprintf(stderr, "usage: wsbench drain CONNINFO PENDING_SQL TIMEOUT_S POLL_MS LOG -- CMD [ARGS...]\n");
		return 2;
	}
	conninfo = argv[1];
	sql = argv[2];
	timeout_s = atof(argv[3]);
	poll_ms = atol(argv[4]);
	logpath = argv[5];
	if (timeout_s <= 0 || poll_ms <= 0) {
		fprintf(stderr, "wsbench drain: TIMEOUT_S and POLL_MS must be > 0\n");
		return 2;
	}
	if (!(c = connect_db(conninfo)))
		return 1;
	if ((logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		perror(logpath);
		return 1;
	}
	t0 = now_s();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		dup2(logfd, 1);
		dup2(logfd, 2);
		execv(argv[7], argv + 7);
		perror(argv[7]);
		_exit(127);
	}
	for (;;) {
		long long pending = scalar(c, sql, NULL);
		double t = now_s();
		if (pending == 0) {
			ok = 1;
			t1 = t;
			break;
		}
		if (pending < 0 || t - t0 > timeout_s) {
			t1 = t;
			break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			exited = 1;
			t1 = t;
			/* It may have finished everything just before exiting (--once). */
			ok = scalar(c, sql, NULL) == 0;
			break;
		}
		sleep_us(poll_ms * 1000);
	}
	hwm = exited ? 0 : proc_kb(pid, "status", "VmHWM");
	cpu = exited ? 0 : proc_cpu_s(pid);
	if (!exited)
		add_children(pid, &plugins_kb, &cpu);
	if (!exited) {
		double deadline = now_s() + 30;
		kill(pid, SIGTERM);
		while (waitpid(pid, &status, WNOHANG) != pid) {
			if (now_s() > deadline) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			sleep_us(20000);
		}
	}
	/* The children's rusage covers a daemon that exited by itself too. */
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
		if (ru.ru_maxrss > hwm)
			hwm = ru.ru_maxrss;
		if (cpu == 0)
			cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	}
	PQfinish(c);
	close(logfd);
	printf("ok=%d secs=%.3f rss_kb=%ld cpu_s=%.2f exit=%d plugins_pss_kb=%ld\n", ok, t1 - t0,
	       hwm, cpu, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	       plugins_kb);
	return ok ? 0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static double pct(const double *v, int n, double p)
{
	int k = (int)((p / 100.0) * n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

/* One enqueue and the wait for it; the latency in ms, or -1. */
static double one_pickup(PGconn *c, const char *ins, const char *done, int i, long poll_us,
                         double timeout_s)
{
	char num[16], id[128];
	const char *p[1] = {num};
	PGresult *r;
	double t0;

	snprintf(num, sizeof num, "%d", i);
	r = PQexecParams(c, ins, 1, NULL, p, NULL, NULL, 0);
	t0 = now_s(); /* the commit has returned */
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		fprintf(stderr, "wsbench pickup: insert failed: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	for (;;) {
		long long v = scalar(c, done, id);
		double t = now_s();
		if (v < 0)
			return -1;
		if (v > 0)
			return (t - t0) * 1000.0;
		if (t - t0 > timeout_s) {
			fprintf(stderr, "wsbench pickup: entity %s not processed after %.0f s\n", id,
			        timeout_s);
			return -1;
		}
		sleep_us(poll_us);
	}
}

static int cmd_pickup(int argc, char **argv)
{
	int k, i;
	long spacing_ms, poll_us;
	double *lat, sum = 0;
	PGconn *c;

	if (argc != 7) {
		fprintf(stderr, "usage: wsbench pickup CONNINFO K SPACING_MS POLL_US INSERT_SQL DONE_SQL\n");
		return 2;
	}
	k = atoi(argv[2]);
	spacing_ms = atol(argv[3]);
	poll_us = atol(argv[4]);
	if (k < 1 || spacing_ms < 0 || poll_us < 1) {
		fprintf(stderr, "wsbench pickup: K >= 1, SPACING_MS >= 0, POLL_US >= 1\n");
		return 2;
	}
	if (!(c = connect_db(argv[1])))
		return 1;
	if (!(lat = calloc((size_t)k, sizeof *lat)))
		return 1;
	srand((unsigned)getpid());
	/* Warm-up: the daemon's first call opens its HTTP connection etc. */
	for (i = 0; i < 3; i++)
		if (one_pickup(c, argv[5], argv[6], k + 1 + i, poll_us, 30) < 0)
			return 1;
	for (i = 0; i < k; i++) {
		/* Jitter, so the enqueues do not fall in step with any timer. */
		long ms = spacing_ms + (spacing_ms > 0 ? (rand() % (spacing_ms / 2 + 1)) - spacing_ms / 4 : 0);
		sleep_us(ms * 1000);
		if ((lat[i] = one_pickup(c, argv[5], argv[6], i + 1, poll_us, 30)) < 0)
			return 1;
		sum += lat[i];
	}
	PQfinish(c);
	qsort(lat, (size_t)k, sizeof *lat, cmp_double);
	printf("n=%d p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f mean_ms=%.1f\n", k,
	       pct(lat, k, 50), pct(lat, k, 90), pct(lat, k, 99), lat[k - 1], sum / k);
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "drain"))
		return cmd_drain(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "pickup"))
		return cmd_pickup(argc - 1, argv + 1);
	fprintf(stderr, "usage: wsbench drain ... | wsbench pickup ... (see the comment at the top of bench/wsbench.c)\n");
	return 2;
}
