/*
 * test_isolation.c -- plugin isolation (issue 12), end to end: the real
 * wsyncd, a real PostgreSQL, the real wahoo, garmin and trainingpeaks
 * plugins against wsync-sandbox, and test plugins that misbehave.
 *
 *   crash    a crashing instance ("stride", the scripted fixture answering
 *            crash) beside wahoo, garmin and trainingpeaks, a mixed backlog
 *            (the same workouts on every provider), wsyncd in daemon mode:
 *            the healthy three drain with 0 failures, as fast as the same
 *            backlog without stride (a baseline run); each stride entry is
 *            failed naming plugin, provider, operation and entry, or waits
 *            while stride is quarantined, wsyncd never exits; the
 *            operator's release lifts the quarantine
 *   hang     an entry whose plugin spins forever (call_timeout_seconds = 2)
 *            beside another instance's entries: cut off at 2 s, the others
 *            keep flowing
 *   snoop    a hostile plugin (tests/fixtures/snoop.c) reads its
 *            environment and command line, scans its descriptors and
 *            memory and tries the database's socket and the OAuth secret
 *            file: no conninfo, no database descriptor, no secret, not root,
 *            no new privileges
 *   frozen   the frozen ABI 1.0 fixture plugin loads and syncs under
 *            isolation (wsyncd --once, default [plugins])
 *
 *   tests/pg_harness.sh test_isolation WAHOO_SO GARMIN_SO TP_SO FIXTURE_DIR
 *       FROZEN_SO [CASES]        (env from meson: WSYNC_WSYNCD, WSYNC_SANDBOX_EXE)
 *
 * The tests run as root, so the plugin children run as [plugins] user
 * (nobody): what a plugin writes is pre-created with t_shared_file().
 * Waits are polls with generous timeouts; no timing is asserted but upper
 * bounds with large margins.
 */
#include "e2e.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *wsyncd, *fixture_dir, *conninfo;
static e2e *sb;
static PGconn *db;
static char plugin_dir[600];

static double secs_since(long long t0)
{
	return (double)(t_now_ms() - t0) / 1000.0;
}

static long long qint(const char *sql, const char *a, const char *b)
{
	const char *p[2] = {a, b};
	return t_query_int(db, sql, a ? (b ? 2 : 1) : 0, p);
}

static char *qstr(const char *sql, const char *a, const char *b)
{
	const char *p[2] = {a, b};
	return t_query_str(db, sql, a ? (b ? 2 : 1) : 0, p);
}

static int alive(pid_t pid);

/* The wsyncd a case runs in daemon mode: polls stop waiting when it died. */
static pid_t watched;

/* Poll `sql` (one number) until it is >= want; the last value. */
static long long poll_at_least(const char *sql, const char *a, const char *b, long long want,
                               int timeout_ms)
{
	long long until = t_now_ms() + timeout_ms, v;
	for (;;) {
		v = qint(sql, a, b);
		if (v >= want || t_now_ms() >= until)
			return v;
		if (watched > 0 && !alive(watched)) {
			t_fail(__FILE__, __LINE__, "wsyncd (pid %d) exited while the test waited",
			       (int)watched);
			watched = 0;
			return v;
		}
		t_sleep_ms(50);
	}
}

/* Poll a file until it contains `needle`; 1 when it did within timeout_ms. */
static int poll_file(const char *path, const char *needle, int timeout_ms)
{
	long long until = t_now_ms() + timeout_ms;
	while (!t_file_contains(path, needle))
		if (t_now_ms() >= until)
			return 0;
		else
			t_sleep_ms(100);
	return 1;
}

/* ---- wsyncd nodes ---------------------------------------------------------- */

typedef struct node {
	char dir[512], ini[600], log[600], conf_dir[600];
	pid_t pid;
} node;

/* A node directory with wsyncd.ini: `engine` goes into [engine], `plugins`
 * into [plugins] (both may be ""). */
static void make_node(node *n, const char *tag, const char *engine, const char *plugins)
{
	char text[4096];
	memset(n, 0, sizeof *n);
	snprintf(n->dir, sizeof n->dir, "%s/%s", sb->dir, tag);
	snprintf(n->conf_dir, sizeof n->conf_dir, "%s/conf.d", n->dir);
	snprintf(n->ini, sizeof n->ini, "%s/wsyncd.ini", n->dir);
	snprintf(n->log, sizeof n->log, "%s/wsyncd.log", n->dir);
	mkdir(n->dir, 0755);
	chmod(n->dir, 0755);
	mkdir(n->conf_dir, 0755);
	snprintf(text, sizeof text,
	         "[database]\nconninfo = %s\n[engine]\n%s\n[plugins]\ndir = %s\nconf_dir = %s\n"
	         "%s\n[log]\nlevel = info\n",
	         conninfo, engine, plugin_dir, n->conf_dir, plugins);
	t_write_file(n->ini, text, 0644);
}

/* conf.d/<name>.ini of the node: `body` after "[provider]\nplugin = P\n",
 * "@BASE@" there being the sandbox's URL; the provider is registered. */
static void instance(node *n, const char *name, const char *plugin, const char *body)
{
	char path[700], text[4096], *at;
	const char *p[2] = {name, plugin};
	int k = snprintf(text, sizeof text, "[provider]\nplugin = %s\n", plugin);
	for (const char *b = body; *b && k < (int)sizeof text - 64;)
		if ((at = strstr(b, "@BASE@")) == b) {
			k += snprintf(text + k, sizeof text - (size_t)k, "%s", sb->base_url);
			b += 6;
		} else {
			text[k++] = *b++;
		}
	text[k] = 0;
	snprintf(path, sizeof path, "%s/%s.ini", n->conf_dir, name);
	t_write_file(path, text, 0644);
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ($1, $2)"
	           " ON CONFLICT (name) DO NOTHING", 2, p);
}

static void wahoo_instance(node *n, const char *name)
{
	instance(n, name, "wahoo", "base_url = @BASE@\nallow_insecure_http = true\n"
	                           "rate_limit_per_minute = 100000\n[wahoo]\nftp = 250\n");
}

static void garmin_instance(node *n, const char *name)
{
	instance(n, name, "garmin", "base_url = @BASE@\nallow_insecure_http = true\n"
	                            "rate_limit_per_minute = 100000\n"
	                            "[garmin]\nprovider_name = wsync-isolation\n");
}

/* TrainingPeaks refreshes through the sandbox's token endpoint with a
 * client secret; the tokens of the tests never expire, so it is read only. */
static void tp_instance(node *n, const char *name, const char *secret_file)
{
	char body[1500];
	snprintf(body, sizeof body,
	         "base_url = @BASE@\nallow_insecure_http = true\nrate_limit_per_minute = 100000\n"
	         "[oauth]\ntoken_url = @BASE@/oauth/token\nclient_id = wsync-test-client\n"
	         "client_secret_file = %s\n", secret_file);
	instance(n, name, "trainingpeaks", body);
}

/* The scripted fixture (tests/fixtures/scripted.c): the workout's
 * description chooses the answer; `extra` more lines of [provider]. */
static void scripted_instance(node *n, const char *name, const char *extra, const char *scripted)
{
	char body[1500];
	snprintf(body, sizeof body, "rate_limit_per_minute = 100000\n%s\n[scripted]\n%s\n",
	         extra ? extra : "", scripted ? scripted : "");
	instance(n, name, "scripted", body);
}

/* Start wsyncd in daemon mode (or with `arg`, e.g. "--once"); its output
 * goes to the node's log.  `env` ("NAME=VALUE" strings, NULL-ended) is
 * added to its environment. */
static pid_t spawn(node *n, const char *arg, const char *const *env)
{
	pid_t pid = t_spawn_wsyncd(wsyncd, n->ini, n->log, arg, env);
	n->pid = pid;
	watched = arg ? 0 : pid;
	return pid;
}

/* Running, without reaping it when it is not. */
static int alive(pid_t pid)
{
	siginfo_t info = {0};
	return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       info.si_pid == 0;
}

/* A /proc file (their size reads as 0, so t_read_file cannot), its NUL
 * separators made newlines; malloc'ed, "" when unreadable. */
static char *read_proc(const char *path)
{
	size_t cap = 65536, n = 0;
	char *buf = calloc(1, cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;
	while (buf && fd >= 0 && n + 1 < cap && (r = read(fd, buf + n, cap - n - 1)) > 0)
		n += (size_t)r;
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; buf && i < n; i++)
		if (!buf[i])
			buf[i] = '\n';
	return buf;
}

/* A child process of `parent` (the first /proc shows), 0 when none. */
static pid_t child_of(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	while (d && !found && (e = readdir(d))) {
		char path[300], *stat, *close_paren;
		int ppid = 0;
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		stat = read_proc(path);
		/* "pid (comm) state ppid ...": comm may hold anything but ')' last */
		close_paren = strrchr(stat, ')');
		if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == parent)
			found = (pid_t)atoi(e->d_name);
		free(stat);
	}
	if (d)
		closedir(d);
	return found;
}

/* SIGTERM, then SIGKILL: no daemon outlives its case. */
static int stop(node *n)
{
	int rc;
	if (n->pid <= 0)
		return -1;
	if (watched == n->pid)
		watched = 0;
	rc = t_stop(n->pid);
	n->pid = 0;
	return rc;
}

static void show_log(const node *n)
{
	t_show_tail(n->log, 8000);
}

/* ---- data ------------------------------------------------------------------ */

/* `users` users with a token (valid for a day: no refresh) for each of
 * `providers` (a SQL text array, e.g. "{wahoo,garmin}"), `n` workouts
 * over them whose description is `description`, and a scheduled workout
 * 3 days ahead for each of the first `n_sched`.  Rows go to t_work and
 * t_sched under `tag`; nothing is queued (the session's triggers are off). */
static void make_workouts(const char *tag, const char *providers, int users, int n, int n_sched,
                          const char *description)
{
	char u[16], c[16], s[16];
	snprintf(u, sizeof u, "%d", users);
	snprintf(c, sizeof c, "%d", n);
	snprintf(s, sizeof s, "%d", n_sched);
	t_exec(db, "INSERT INTO t_users SELECT $1, gen_random_uuid(), g - 1"
	           " FROM generate_series(1, $2::int) g", 2, (const char *[]){tag, u});
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token, refresh_token,"
	           "  expires_at, upload_workouts_enabled)"
	           " SELECT u.user_id, p, 'at-' || p || '-' || u.k, 'rt-' || p || '-' || u.k,"
	           "  now() + interval '1 day', true"
	           " FROM t_users u CROSS JOIN unnest($2::text[]) p WHERE u.tag = $1",
	       2, (const char *[]){tag, providers});
	t_exec(db, "WITH w AS (INSERT INTO workouts (user_id, name, sport, description, workout_text)"
	           "  SELECT u.user_id, $1 || ' ' || g, 'bike', $4, '- 10m ramp 50-75%\n- 5m 90%'"
	           "  FROM generate_series(1, $3::int) g"
	           "  JOIN t_users u ON u.tag = $1 AND u.k = g % $2::int"
	           "  RETURNING id, user_id, name)"
	           " INSERT INTO t_work SELECT $1, id, user_id, split_part(name, ' ', 2)::int FROM w",
	       4, (const char *[]){tag, u, c, description});
	t_exec(db, "WITH s AS (INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)"
	           "  SELECT user_id, id, (now() AT TIME ZONE 'UTC')::date + 3"
	           "  FROM t_work WHERE tag = $1 AND n <= $2::int ORDER BY n"
	           "  RETURNING id, user_id, workout_id)"
	           " INSERT INTO t_sched SELECT $1, s.id, s.user_id, w.n FROM s"
	           "  JOIN t_work w ON w.id = s.workout_id",
	       2, (const char *[]){tag, s});
}

/* Queue creates for `providers` (SQL text array): the tag's workouts
 * numbered up to `max_n` (0: all), then, with `sched`, their scheduled
 * workouts, in workout order. */
static void queue_creates(const char *tag, const char *providers, int max_n, int sched)
{
	char m[16];
	snprintf(m, sizeof m, "%d", max_n > 0 ? max_n : 1 << 30);
	t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           "  provider)"
	           " SELECT user_id, 'workout', id, 'create', p FROM t_work"
	           " CROSS JOIN unnest($2::text[]) p WHERE tag = $1 AND n <= $3::int ORDER BY n, p",
	       3, (const char *[]){tag, providers, m});
	if (sched)
		t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
		           "  provider)"
		           " SELECT user_id, 'workout_scheduled', id, 'create', p FROM t_sched"
		           " CROSS JOIN unnest($2::text[]) p WHERE tag = $1 AND n <= $3::int"
		           " ORDER BY n, p", 3, (const char *[]){tag, providers, m});
}

static const char OK_SQL[] =
	"SELECT count(*) FROM workout_sync_queue WHERE provider = ANY($1::text[])"
	" AND processed_at IS NOT NULL AND error_type IS NULL";

static long long entries(const char *providers)
{
	return qint("SELECT count(*) FROM workout_sync_queue WHERE provider = ANY($1::text[])",
	            providers, NULL);
}

static long long failed_entries(const char *providers)
{
	return qint("SELECT count(*) FROM workout_sync_queue WHERE provider = ANY($1::text[])"
	            " AND processed_at IS NOT NULL AND error_type IS NOT NULL", providers, NULL);
}

/* An empty sandbox answering in 20-50 ms, with the day the tests'
 * scheduled workouts count from (TrainingPeaks checks dates against it). */
static void sandbox_fresh(void)
{
	char body[128], *day = qstr("SELECT (now() AT TIME ZONE 'UTC')::date::text", NULL, NULL);
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/reset", "{}", NULL), 200);
	snprintf(body, sizeof body, "{\"today\":\"%s\",\"latency_ms\":[20,50]}", day);
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/settings", body, NULL), 200);
	free(day);
}

/* ---- 1. a crashing plugin beside wahoo, garmin and trainingpeaks ------------- */

#define HEALTHY "{wahoo,garmin,trainingpeaks}"

/* The healthy three's backlog (WORKOUTS workouts, SCHEDS of them
 * scheduled, on each) on a node of their own, no stride: how long a drain
 * takes on this machine now.  Instances named <provider>_b. */
enum { USERS = 20, WORKOUTS = 200, SCHEDS = 100, STRIDE = 30 };

static long long baseline_ms(void)
{
	node n;
	long long t0, ok, expected = (long long)(WORKOUTS + SCHEDS) * 3;
	make_node(&n, "baseline", "workers = 8\nbatch_size = 50\n", "");
	wahoo_instance(&n, "wahoo_b");
	garmin_instance(&n, "garmin_b");
	tp_instance(&n, "trainingpeaks_b", e2e_secret(sb, "tp", "tp-client-secret\n"));
	make_workouts("base", "{wahoo_b,garmin_b,trainingpeaks_b}", USERS, WORKOUTS, SCHEDS,
	              "answer=ok");
	queue_creates("base", "{wahoo_b,garmin_b,trainingpeaks_b}", 0, 1);
	t0 = t_now_ms();
	spawn(&n, NULL, NULL);
	ok = poll_at_least(OK_SQL, "{wahoo_b,garmin_b,trainingpeaks_b}", NULL, expected, 300000);
	t0 = t_now_ms() - t0;
	T_EQ_INT(ok, expected);
	T_EQ_INT(stop(&n), 0);
	if (t_case_failed())
		show_log(&n);
	return t0;
}

static long long count_in(const char *path, const char *needle)
{
	char *log = t_read_file(path);
	long long k = 0;
	for (const char *p = log; (p = strstr(p, needle)); p++)
		k++;
	free(log);
	return k;
}

/* Run `wsyncctl -c INI ARGS...` (WSYNC_WSYNCCTL); its stdout (caller frees)
 * and exit status in *rc. */
static char *ctl(const node *n, const char *a1, const char *a2, const char *a3, int *rc)
{
	const char *exe = getenv("WSYNC_WSYNCCTL");
	char *argv[] = {(char *)exe, "-c", (char *)n->ini, (char *)a1, (char *)a2, (char *)a3, NULL};
	char *out = calloc(1, 65536);
	size_t len = 0;
	int pipefd[2], status = 0;
	pid_t pid;
	ssize_t k;
	*rc = -1;
	if (!exe || !out || pipe(pipefd) < 0)
		return out;
	if ((pid = fork()) == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execv(exe, argv);
		_exit(127);
	}
	close(pipefd[1]);
	while ((k = read(pipefd[0], out + len, 65535 - len)) > 0)
		len += (size_t)k;
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	*rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return out;
}

static void test_crash(void)
{
	static const char CRASHED[] = "provider stride: plugin scripted crashed with signal 11";
	node n;
	long long t0, healthy_ms = -1, q_ms = -1, total, ok, bad, quarantined_at, base_ms;
	long long crashes, crashes_during, released_ms, expected = (long long)(WORKOUTS + SCHEDS) * 3;
	char *reason, *log, asan[600];
	const char *env[] = {asan, NULL};
	PGresult *r;
	int checked = 0, msg_ok = 0, pending = 0, failed_n = 0;

	t_case("crash: a crashing plugin instance (stride) beside wahoo, garmin and trainingpeaks");
	sandbox_fresh();
	base_ms = baseline_ms();
	printf("  baseline: the healthy backlog alone drains in %.1f s\n", (double)base_ms / 1000.0);
	make_node(&n, "crash", "workers = 8\nbatch_size = 50\nmax_retries = 2\nbackoff = 1s\n", "");
	wahoo_instance(&n, "wahoo");
	garmin_instance(&n, "garmin");
	tp_instance(&n, "trainingpeaks", e2e_secret(sb, "tp", "tp-client-secret\n"));
	scripted_instance(&n, "stride", NULL, NULL);
	/* The same workouts everywhere: each scripts a crash, which only the
	 * scripted plugin reads; stride gets the first STRIDE of them. */
	make_workouts("mix", "{wahoo,garmin,trainingpeaks,stride}", USERS, WORKOUTS, SCHEDS,
	              "answer=crash");
	queue_creates("mix", HEALTHY, 0, 1);
	queue_creates("mix", "{stride}", STRIDE, 0);
	/* The stride entries interleaved with the healthy ones: first in line. */
	t_exec(db, "UPDATE workout_sync_queue SET next_retry_at = now() - interval '1 minute'"
	           " WHERE provider = 'stride'", 0, NULL);
	T_EQ_INT(entries(HEALTHY), expected);
	T_EQ_INT(entries("{stride}"), STRIDE);
	/* A sanitizer build would turn the plugin's SIGSEGV into its report and
	 * exit(1); the plugin's process dies of the signal as in production. */
	snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%shandle_segv=0",
	         getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
	         getenv("ASAN_OPTIONS") ? ":" : "");

	t0 = t_now_ms();
	spawn(&n, NULL, env);
	/* The healthy three drain. */
	ok = poll_at_least(OK_SQL, HEALTHY, NULL, expected, 300000);
	healthy_ms = t_now_ms() - t0;
	crashes_during = count_in(n.log, CRASHED);
	T_EQ_INT(ok, expected);
	T_EQ_INT(failed_entries(HEALTHY), 0);
	T_CHECK(t_running(n.pid));
	/* stride: quarantined after its crashes (5 within 600 s by default,
	 * with back-offs of 1, 2, 4, 8 s between them). */
	quarantined_at = poll_at_least("SELECT count(*) FROM sync_provider_nodes WHERE provider ="
	                               " 'stride' AND quarantined_at IS NOT NULL", NULL, NULL, 1,
	                               120000);
	q_ms = t_now_ms() - t0;
	T_EQ_INT(quarantined_at, 1);
	T_CHECK(t_running(n.pid));
	reason = qstr("SELECT quarantine_reason FROM sync_provider_nodes WHERE provider = 'stride'",
	              NULL, NULL);
	T_CONTAINS(reason, "quarantined: 5 crashes or hangs within 600 s");
	T_CONTAINS(reason, "signal 11");
	T_CONTAINS(reason, "wsyncctl plugins --release stride");
	/* No healthy instance is quarantined. */
	T_EQ_INT(qint("SELECT count(*) FROM sync_provider_nodes WHERE quarantined_at IS NOT NULL",
	              NULL, NULL), 1);

	/* Each stride entry: failed as unexpected_error naming the plugin, the
	 * provider, the operation and the entry, or still pending. */
	r = PQexec(db, "SELECT id::text, processed_at IS NOT NULL, coalesce(error_type, ''),"
	               " coalesce(error_message, ''), attempts FROM workout_sync_queue"
	               " WHERE provider = 'stride'");
	for (int i = 0; i < PQntuples(r); i++) {
		const char *id = PQgetvalue(r, i, 0), *type = PQgetvalue(r, i, 2);
		const char *msg = PQgetvalue(r, i, 3);
		int done = PQgetvalue(r, i, 1)[0] == 't', named;
		checked++;
		named = strstr(msg, "plugin scripted") && strstr(msg, "provider stride") &&
		        strstr(msg, "sync_workout") && strstr(msg, id) && strstr(msg, "signal 11");
		if (done) {
			failed_n++;
			T_EQ_STR(type, "unexpected_error");
			msg_ok += named != 0;
			if (!named)
				t_fail(__FILE__, __LINE__, "stride entry %s: \"%s\" does not name the plugin,"
				       " provider, operation, entry and signal", id, msg);
		} else {
			pending++;
			/* An attempt cut short by a crash says so too. */
			if (*msg && strstr(msg, "crashed"))
				msg_ok += named != 0;
		}
	}
	PQclear(r);
	T_EQ_INT(checked, STRIDE);
	T_EQ_INT(failed_n + pending, STRIDE);
	T_CHECK(msg_ok > 0);
	/* Each crash logged naming plugin, provider and signal (the one that
	 * quarantines in the quarantine's line), and each entry it cut short
	 * naming the operation and the entry as well. */
	crashes = count_in(n.log, CRASHED) +
	          count_in(n.log, "provider stride: plugin scripted quarantined: 5 crashes or hangs"
	                          " within 600 s, the last: crashed with signal 11");
	T_CHECK(crashes >= 5);
	log = t_read_file(n.log);
	T_CONTAINS(log, "provider stride: plugin scripted quarantined");
	T_CONTAINS(log, "unexpected_error: plugin scripted (provider stride) crashed with signal 11"
	                " (Segmentation fault), during sync_workout of entry ");
	free(log);
	printf("  healthy: %lld of %lld processed OK in %.1f s (baseline %.1f s), %lld failed;"
	       " stride crashed %lld times meanwhile\n", ok, expected, (double)healthy_ms / 1000.0,
	       (double)base_ms / 1000.0, failed_entries(HEALTHY), crashes_during);
	/* Full speed: the crashes beside it do not slow the drain down beyond
	 * noise.  The bound is loose on purpose (a loaded CI box); the figures
	 * are printed for the record. */
	T_CHECK(healthy_ms <= 3 * base_ms + 10000);
	T_CHECK(crashes_during >= 1);
	printf("  stride: %lld crashes logged, quarantined after %.1f s; entries: %d failed, %d "
	       "pending; %d of them cut short by a crash, each message naming plugin, provider, "
	       "operation, entry and signal\n", crashes, (double)q_ms / 1000.0, failed_n, pending,
	       msg_ok);
	printf("  reason: %s\n", reason);
	free(reason);

	/* While quarantined its entries wait: none is failed meanwhile. */
	total = failed_entries("{stride}");
	t_sleep_ms(3000);
	T_EQ_INT(failed_entries("{stride}"), total);
	T_CHECK(t_running(n.pid));

	/* The operator fixes the cause (the workouts no longer script a
	 * crash) and releases stride: its waiting entries go through. */
	t_exec(db, "UPDATE workouts SET description = 'answer=ok' WHERE id IN"
	           " (SELECT entity_id FROM workout_sync_queue WHERE provider = 'stride')", 0, NULL);
	/* The operator's view: `wsyncctl plugins` says quarantined and why
	 * (exit 1), `wsyncctl queue` says why stride waits. */
	{
		int rc;
		char *out = ctl(&n, "plugins", NULL, NULL, &rc);
		T_EQ_INT(rc, 1);
		T_CONTAINS(out, "quarantined");
		T_CONTAINS(out, "wsyncctl plugins --release stride");
		free(out);
		out = ctl(&n, "queue", NULL, NULL, &rc);
		T_EQ_INT(rc, 0);
		T_CONTAINS(out, "plugin quarantined:");
		free(out);
		t0 = t_now_ms();
		out = ctl(&n, "plugins", "--release", "stride", &rc);
		T_EQ_INT(rc, 0);
		T_CONTAINS(out, "released stride on 1 node");
		free(out);
		out = ctl(&n, "plugins", "--release", "stride", &rc);
		T_EQ_INT(rc, 1); /* nothing left to release */
		free(out);
	}
	T_CHECK(poll_file(n.log, "provider stride: released by the operator", 15000));
	printf("  released: logged after %.1f s\n", secs_since(t0));
	T_EQ_INT(poll_at_least(OK_SQL, "{stride}", NULL, pending, 180000), pending);
	released_ms = t_now_ms() - t0;
	printf("  after the release: %d waiting stride entries processed OK in %.1f s\n", pending,
	       (double)released_ms / 1000.0);
	/* Soon, not after the deferral of a quarantined call (it was 60 s). */
	T_CHECK(released_ms <= 30000);
	T_EQ_INT(qint("SELECT count(*) FROM sync_provider_nodes WHERE provider = 'stride'"
	              " AND quarantined_at IS NOT NULL", NULL, NULL), 0);
	T_CHECK(t_running(n.pid));
	bad = failed_entries(HEALTHY);
	T_EQ_INT(bad, 0);
	T_EQ_INT(stop(&n), 0);
	if (t_case_failed())
		show_log(&n);
}

/* ---- 2. a plugin that loops forever ---------------------------------------------- */

static void test_hang(void)
{
	enum { FLOW = 300 };
	node n;
	char *msg, *hang_entry, *log;
	long long during, took;

	t_case("hang: a plugin spinning forever, call_timeout_seconds = 2, beside another instance");
	make_node(&n, "hang", "workers = 4\nbatch_size = 50\nmax_retries = 0\n", "");
	scripted_instance(&n, "spin", "call_timeout_seconds = 2", NULL);
	scripted_instance(&n, "flow", NULL, "delay_ms = 30");
	make_workouts("spin", "{spin}", 1, 1, 0, "answer=loop");
	make_workouts("flow", "{flow}", 10, FLOW, 0, "answer=ok");
	queue_creates("spin", "{spin}", 0, 0);
	queue_creates("flow", "{flow}", 0, 0);
	hang_entry = qstr("SELECT id::text FROM workout_sync_queue WHERE provider = 'spin'", NULL,
	                  NULL);

	spawn(&n, NULL, NULL);
	T_EQ_INT(poll_at_least("SELECT count(*) FROM workout_sync_queue WHERE provider = 'spin'"
	                       " AND processed_at IS NOT NULL", NULL, NULL, 1, 120000), 1);
	T_EQ_INT(poll_at_least(OK_SQL, "{flow}", NULL, FLOW, 180000), FLOW);
	T_CHECK(t_running(n.pid));
	msg = qstr("SELECT error_type || ': ' || error_message FROM workout_sync_queue"
	           " WHERE provider = 'spin'", NULL, NULL);
	T_CONTAINS(msg, "unexpected_error: ");
	T_CONTAINS(msg, "did not answer within 2 s");
	T_CONTAINS(msg, "plugin scripted");
	T_CONTAINS(msg, "provider spin");
	T_CONTAINS(msg, "sync_workout");
	T_CONTAINS(msg, hang_entry);
	/* The call was cut off at its timeout, not at some later limit. */
	took = qint("SELECT (1000 * extract(epoch FROM processed_at - last_attempt_at))::bigint"
	            " FROM workout_sync_queue WHERE provider = 'spin'", NULL, NULL);
	T_CHECK(took >= 2000 && took < 30000);
	/* The other instance's entries went on meanwhile. */
	during = qint("SELECT count(*) FROM workout_sync_queue f, workout_sync_queue s"
	              " WHERE f.provider = 'flow' AND s.provider = 'spin'"
	              " AND f.processed_at > s.last_attempt_at AND f.processed_at < s.processed_at",
	              NULL, NULL);
	T_CHECK(during > 0);
	T_EQ_INT(failed_entries("{flow}"), 0);
	log = t_read_file(n.log);
	T_CONTAINS(log, "provider spin: plugin scripted was killed: a call did not answer within 2 s");
	free(log);
	printf("  spin: cut off after %lld ms: %s\n", took, msg);
	printf("  flow: %d of %d processed OK, %lld of them while the spinning call was held\n",
	       FLOW, FLOW, during);
	T_CHECK(t_running(n.pid));
	T_EQ_INT(stop(&n), 0);
	if (t_case_failed())
		show_log(&n);
	free(msg);
	free(hang_entry);
}

/* ---- 3. a hostile plugin ---------------------------------------------------------- */

static void hex(char *out, size_t len, const char *s)
{
	size_t k = 0;
	for (; *s && k + 3 < len; s++)
		k += (size_t)snprintf(out + k, len - k, "%02x", (unsigned char)*s);
	out[k] = 0;
}

/* Lines of `report` starting with `prefix`, one at a time: *at advances. */
static const char *next_line(const char **at, const char *prefix, char *line, size_t len)
{
	while (**at) {
		const char *nl = strchr(*at, '\n'), *start = *at;
		size_t n = nl ? (size_t)(nl - start) : strlen(start);
		*at = nl ? nl + 1 : start + n;
		if (!strncmp(start, prefix, strlen(prefix))) {
			snprintf(line, len, "%.*s", (int)n, start);
			return line;
		}
	}
	return NULL;
}

static void test_snoop(void)
{
	static const char SECRET[] = "s3cret-of-the-isolation-test-7f3a9c";
	const char *pghost = getenv("WSYNC_TEST_PGHOST");
	struct passwd *nobody = getpwnam("nobody");
	struct stat st;
	node n;
	char body[4096], sock[600], report[700], needles[1400], h1[200], h2[600], h3[100], h4[100];
	char line[1200], *text, *state, *cmdline, *environ_, *id;
	const char *at;
	const char *env[] = {"PGPASSWORD=pg-password-of-the-test", NULL, NULL, NULL, NULL};
	char pghost_env[700], url_env[800], ctor_log[700], ctor_env[720];
	int rc, sockets = 0, to_parent = 0, envs = 0, memscans = 0;
	long long hits[2][4] = {{-1, -1, -1, -1}, {-1, -1, -1, -1}};
	int section = 0;
	pid_t child = 0;

	t_case("snoop: a hostile plugin looks for the database, the conninfo and the secret");
	if (!pghost || stat(pghost, &st) < 0) {
		t_fail(__FILE__, __LINE__, "WSYNC_TEST_PGHOST not set (tests/pg_harness.sh)");
		return;
	}
	/* What a careless deployment puts in wsyncd's environment. */
	snprintf(pghost_env, sizeof pghost_env, "PGHOST=%s", pghost);
	snprintf(url_env, sizeof url_env, "WSYNC_DATABASE_URL=%s", conninfo);
	env[1] = pghost_env;
	env[2] = url_env;
	/* Where the plugin's constructor would say that it ran in wsyncd. */
	snprintf(ctor_log, sizeof ctor_log, "%s/snoop-ctor.log", sb->dir);
	snprintf(ctor_env, sizeof ctor_env, "WSYNC_SNOOP_CTOR_LOG=%s", ctor_log);
	unlink(ctor_log);
	env[3] = ctor_env;

	/* One call thread: its two calls run one after the other, in order. */
	make_node(&n, "snoop", "workers = 1\nbatch_size = 10\n", "");
	snprintf(sock, sizeof sock, "%s/.s.PGSQL.5432", pghost);
	snprintf(report, sizeof report, "%s/snoop.report", n.dir);
	t_shared_file(report);
	hex(h1, sizeof h1, SECRET);
	hex(h2, sizeof h2, conninfo);
	/* The two users' tokens: workout 1 is user 1's, workout 2 user 0's.
	 * Each call's scan must find its own token (so the scan works) and
	 * not the other user's (the second call runs in the same process).
	 * User 1's is the longer: what is looked for is its tail, which a
	 * shorter token written over the same buffer would leave behind. */
	hex(h3, sizeof h3, "-tail-of-the-first-users-token-Qx7");
	hex(h4, sizeof h4, "at-snoop-0");
	snprintf(needles, sizeof needles, "%s,%s,%s,%s", h1, h2, h3, h4);
	/* The OAuth client secret, 0600 root: the parent reads it, the plugin
	 * is told its path only (and tries to open it). */
	e2e_secret(sb, "snoop", SECRET);
	snprintf(body, sizeof body,
	         "base_url = @BASE@\nallow_insecure_http = true\n"
	         "[oauth]\ntoken_url = @BASE@/oauth/token\nclient_id = wsync-test-client\n"
	         "client_secret_file = %s/snoop.secret\n"
	         "[snoop]\nreport_file = %s\ndb_socket = %s\nsecret_path = %s/snoop.secret\n"
	         "needles_hex = %s\n",
	         sb->dir, report, sock, sb->dir, needles);
	instance(&n, "snoop", "snoop", body);
	make_workouts("snoop", "{snoop}", 2, 2, 0, "snoop");
	t_exec(db, "UPDATE provider_tokens SET access_token = access_token ||"
	           " '-tail-of-the-first-users-token-Qx7' WHERE access_token = 'at-snoop-1'", 0,
	       NULL);
	queue_creates("snoop", "{snoop}", 0, 0);

	/* Only postgres (and root: wsyncd) may reach the database's socket. */
	chmod(pghost, 0700);
	spawn(&n, "--once", env);
	/* The plugin's process, for its command line and environment as the
	 * parent started it. */
	cmdline = environ_ = NULL;
	for (long long until = t_now_ms() + 60000; !environ_ && t_now_ms() < until; t_sleep_ms(20)) {
		char path[100];
		/* The instance's process, not the short-lived one that probed the
		 * file first ("--plugin-host probe"). */
		if (!alive(n.pid))
			break;
		if ((child = child_of(n.pid)) <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/cmdline", (int)child);
		free(cmdline);
		cmdline = read_proc(path);
		if (!strstr(cmdline, "--plugin-host\nsnoop"))
			continue;
		snprintf(path, sizeof path, "/proc/%d/environ", (int)child);
		environ_ = read_proc(path);
	}
	rc = t_wait_exit(n.pid, 120000);
	chmod(pghost, st.st_mode & 07777);
	T_EQ_INT(rc, 0);
	for (int i = 1; i <= 2; i++) {
		char k[4];
		snprintf(k, sizeof k, "%d", i);
		id = qstr("SELECT id::text FROM t_work WHERE tag = 'snoop' AND n = $1::int", k, NULL);
		state = e2e_queue_state(sb, id, "snoop");
		T_EQ_STR(state, "processed||0");
		free(state);
		free(id);
	}

	/* No plugin code ran in wsyncd: the file was described by a process
	 * of its own, not dlopen'ed there. */
	T_CHECK(access(ctor_log, F_OK) != 0);
	if (access(ctor_log, F_OK) == 0) {
		char *ran = t_read_file(ctor_log);
		printf("  %s", ran);
		free(ran);
	}

	/* What the parent gave it, read from outside while it ran. */
	T_CHECK(child > 0);
	T_CONTAINS(cmdline, "--plugin-host\nsnoop");
	T_CONTAINS(environ_, "LD_LIBRARY_PATH=");
	T_CHECK(cmdline && !strstr(cmdline, SECRET) && !strstr(cmdline, "host=") &&
	        !strstr(cmdline, "PG"));
	T_CHECK(environ_ && !strstr(environ_, SECRET) && !strstr(environ_, "PG") &&
	        !strstr(environ_, "host=") && !strstr(environ_, "WSYNC_DATABASE_URL"));
	for (char *c = cmdline; c && *c; c++)
		*c = *c == '\n' ? ' ' : *c;
	printf("  its process %d (parent %d) seen from outside: cmdline \"%s\", %zu bytes of "
	       "environment\n", (int)child, (int)n.pid, cmdline ? cmdline : "",
	       environ_ ? strlen(environ_) : 0);

	text = t_read_file(report);
	T_CONTAINS(text, "\nend\n");
	T_CHECK(!strstr(text, SECRET));
	T_CHECK(!strstr(text, conninfo));
	/* Who it is. */
	at = text;
	T_CHECK(next_line(&at, "id ", line, sizeof line) != NULL);
	{
		int uid = -1, euid = -1, gid = -1;
		T_EQ_INT(sscanf(line, "id %d %d %d", &uid, &euid, &gid), 3);
		T_CHECK(uid != 0 && euid != 0);
		if (nobody)
			T_EQ_INT(uid, nobody->pw_uid);
		printf("  runs as uid %d euid %d gid %d\n", uid, euid, gid);
	}
	T_CONTAINS(text, "status NoNewPrivs:\t1\n");
	T_CONTAINS(text, "status Seccomp:\t2\n"); /* a filter is installed */
	/* Its environment. */
	at = text;
	while (next_line(&at, "env ", line, sizeof line)) {
		envs++;
		if (strstr(line, "conninfo") || !strncmp(line, "env PG", 6) ||
		    strstr(line, "WSYNC_DATABASE_URL") || strstr(line, "host=") ||
		    strstr(line, SECRET) || strstr(line, "PGPASSWORD"))
			t_fail(__FILE__, __LINE__, "the plugin's environment has \"%s\"", line);
	}
	printf("  environment: %d variables, none of PG*, WSYNC_DATABASE_URL, conninfo, secret\n",
	       envs);
	at = text;
	T_CHECK(next_line(&at, "cmdline ", line, sizeof line) != NULL);
	printf("  %s\n", line);
	/* Its descriptors: the sockets lead to wsyncd, nothing to PostgreSQL. */
	at = text;
	while (next_line(&at, "fd ", line, sizeof line)) {
		const char *peer = strstr(line, " peer ");
		printf("  %s\n", line);
		if (strstr(line, "PGSQL") || strstr(line, pghost))
			t_fail(__FILE__, __LINE__, "a descriptor to the database: %s", line);
		if (!strstr(line, "socket:"))
			continue;
		sockets++;
		if (peer && atoi(peer + 6) == (int)n.pid)
			to_parent++;
		else
			t_fail(__FILE__, __LINE__, "a socket not to wsyncd (pid %d): %s", (int)n.pid,
			       line);
	}
	T_CHECK(sockets >= 2); /* its control socket and a channel */
	T_EQ_INT(to_parent, sockets);
	/* The database's socket and the secret file are out of reach: the
	 * seccomp filter refuses the plugin any socket of its own (and the
	 * socket directory, closed to its user, would refuse the connect). */
	snprintf(body, sizeof body, "connect %s socket() EPERM\n", sock);
	T_CONTAINS(text, body);
	snprintf(body, sizeof body, "open %s/snoop.secret EACCES\n", sb->dir);
	T_CONTAINS(text, body);
	/* Its memory, in each call: neither the secret nor the conninfo, nor
	 * the other user's token, while the scan does find the call's own. */
	at = text;
	while (next_line(&at, "", line, sizeof line) && section < 2) {
		int k = -1;
		long long h = -1, regions = 0, bytes = 0;
		if (!strcmp(line, "end")) {
			section++;
			continue;
		}
		if (strncmp(line, "memscan ", 8))
			continue;
		if (sscanf(line, "memscan %d hits %lld regions %lld bytes %lld", &k, &h, &regions,
		           &bytes) == 4 && k >= 0 && k < 4) {
			hits[section][k] = h;
			memscans++;
			T_CHECK(regions > 0 && bytes > 0);
		}
		printf("  call %d: %s (%s)\n", section + 1, line,
		       (const char *[]){"the OAuth client secret", "the conninfo", "user 1's token",
		                        "user 0's token"}[k >= 0 && k < 4 ? k : 0]);
	}
	T_EQ_INT(memscans, 8);
	T_EQ_INT(hits[0][0], 0);
	T_EQ_INT(hits[0][1], 0);
	T_CHECK(hits[0][2] >= 1); /* call 1: user 1's own */
	T_EQ_INT(hits[0][3], 0);  /* user 0's: not sent yet */
	T_EQ_INT(hits[1][0], 0);
	T_EQ_INT(hits[1][1], 0);
	T_EQ_INT(hits[1][2], 0);  /* call 2: user 1's token is gone */
	T_CHECK(hits[1][3] >= 1); /* its own */
	if (t_case_failed()) {
		fprintf(stderr, "---- report ----\n%s----\n", text);
		show_log(&n);
	}
	free(text);
	free(cmdline);
	free(environ_);
}

/* ---- 4. the frozen ABI 1.0 plugin ---------------------------------------------------- */

static void test_frozen(void)
{
	node n;
	char *id, *state, *link;
	int rc;

	t_case("frozen: the ABI 1.0 fixture plugin loads and syncs in its own process");
	make_node(&n, "frozen", "workers = 2\nbatch_size = 10\n", "");
	instance(&n, "frozen", "frozen_v1", "[frozen]\nlabel = isolated\n");
	make_workouts("frozen", "{frozen}", 1, 1, 0, "frozen");
	queue_creates("frozen", "{frozen}", 0, 0);
	spawn(&n, "--once", NULL);
	rc = t_wait_exit(n.pid, 120000);
	T_EQ_INT(rc, 0);
	id = qstr("SELECT id::text FROM t_work WHERE tag = 'frozen'", NULL, NULL);
	state = e2e_queue_state(sb, id, "frozen");
	T_EQ_STR(state, "processed||0");
	link = e2e_link(sb, "frozen", "workout", id);
	{
		char want[100];
		snprintf(want, sizeof want, "frozen-%s", id);
		T_EQ_STR(link, want);
	}
	/* It ran in a child: the plugin's own log line came through. */
	T_CHECK(t_file_contains(n.log, "frozen init: host"));
	T_CHECK(t_file_contains(n.log, "frozen workout frozen 1"));
	printf("  frozen_v1: entry %s, link %s\n", state, link ? link : "(none)");
	if (t_case_failed())
		show_log(&n);
	free(id);
	free(state);
	free(link);
}

int main(int argc, char **argv)
{
	char src[700];

	conninfo = getenv("WSYNC_TEST_CONNINFO");
	wsyncd = getenv("WSYNC_WSYNCD");
	if (argc < 6 || !conninfo || !wsyncd) {
		fprintf(stderr, "usage: pg_harness.sh %s WAHOO_SO GARMIN_SO TP_SO FIXTURE_DIR FROZEN_SO"
		        " [CASES] (env from meson)\n", argv[0]);
		return 2;
	}
	fixture_dir = argv[4];
	signal(SIGPIPE, SIG_IGN);
	sb = e2e_start(0);
	db = sb->db;
	t_exec(db, "SET wsync.triggers = off", 0, NULL); /* the tests queue the rows */
	t_exec(db, "CREATE TABLE t_users (tag text, user_id uuid, k int)", 0, NULL);
	t_exec(db, "CREATE TABLE t_work (tag text, id uuid, user_id uuid, n int)", 0, NULL);
	t_exec(db, "CREATE TABLE t_sched (tag text, id uuid, user_id uuid, n int)", 0, NULL);
	for (int i = 1; i <= 3; i++)
		e2e_add_plugin(sb, argv[i]);
	e2e_add_plugin(sb, argv[5]);
	snprintf(src, sizeof src, "%s/scripted.so", fixture_dir);
	e2e_add_plugin(sb, src);
	snprintf(src, sizeof src, "%s/snoop.so", fixture_dir);
	e2e_add_plugin(sb, src);
	snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", sb->dir);

	/* An optional argument picks cases by name, e.g. "hang,snoop". */
#define WANT(name) (argc < 7 || strstr(argv[6], name))
	if (WANT("frozen"))
		test_frozen();
	if (WANT("snoop"))
		test_snoop();
	if (WANT("hang"))
		test_hang();
	if (WANT("crash"))
		test_crash();

	t_case("done");
	e2e_stop(sb);
	return t_done();
}
