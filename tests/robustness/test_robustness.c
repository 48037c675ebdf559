/*
 * test_robustness.c -- the real wsyncd daemon under faults, against a
 * throwaway PostgreSQL, with the scripted test plugin:
 *
 *   kill9       kill -9 during a drain: nothing lost, nothing created twice
 *               except what was in flight at the kill (see README.md)
 *   pgrestart   PostgreSQL restarted mid-drain: the daemon survives,
 *               reconnects and finishes; nothing lost
 *   sighup      SIGHUP loads a plugin dropped into the plugin directory;
 *               a broken INI keeps the running configuration
 *   lifecycle   removing an instance's INI and SIGHUP stops enqueueing for it
 *               and says so; an operator's disable survives a reload
 *   sigterm     SIGTERM during a drain: exit 0, unstarted entries given back
 *               with their attempt uncounted, nothing left leased
 *   listen      an entry enqueued through wsync_enqueue (NOTIFY) is picked
 *               up at once although interval_minutes = 10
 *   crash       a plugin that crashes is named in the log; after 3 crashes
 *               the entry ends as a permanent unexpected_error "abandoned"
 *   two nodes   two daemons on one database share the per-user limit
 *
 *   tests/pg_harness.sh test_robustness WSYNCD FIXTURE_DIR EXAMPLE_SO
 *
 * Everything waits by polling with generous timeouts; the only timing
 * assertions are upper bounds (listen: 3 s for a pickup that takes
 * milliseconds).
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *wsyncd, *fixture_dir, *example_so, *conninfo;
static PGconn *db;
static char *tmp;

/* ---- small helpers ---- */

static void copy_file(const char *from, const char *to, unsigned mode)
{
	char tmpname[700], buf[65536];
	int in = open(from, O_RDONLY), out;
	ssize_t n;
	snprintf(tmpname, sizeof tmpname, "%s.part", to);
	out = open(tmpname, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0) {
		fprintf(stderr, "cannot copy %s to %s: %s\n", from, to, strerror(errno));
		exit(1);
	}
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			exit(1);
	close(in);
	close(out);
	chmod(tmpname, (mode_t)mode);
	rename(tmpname, to); /* appears whole */
}

/* The test's own session, back after a server restart. */
static void db_ok(void)
{
	t_db_back(db, "SET wsync.triggers = off");
}

static long long qint(const char *sql, const char *a, const char *b)
{
	const char *p[2] = {a, b};
	return t_query_int(db, sql, a ? (b ? 2 : 1) : 0, p);
}

/* Poll `sql` (one number, params a, b) until it is >= want; returns the last
 * value.  A failing query (server restarting) is retried. */
static long long poll_at_least(const char *sql, const char *a, const char *b, long long want,
                               int timeout_ms)
{
	long long until = t_now_ms() + timeout_ms, v = -1;
	const char *p[2] = {a, b};
	for (;;) {
		PGresult *r;
		db_ok();
		r = PQexecParams(db, sql, a ? (b ? 2 : 1) : 0, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0))
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		if (v >= want || t_now_ms() >= until)
			return v;
		t_sleep_ms(50);
	}
}

/* ---- one wsyncd "node": its config directory, log and calls file ---- */

typedef struct node {
	char dir[512], ini[600], log[600], calls[600], conf_dir[600];
	const char *provider;
	int workers;
	pid_t pid;
} node;

/* Extra [plugins] lines of the next make_node. */
static const char *plugins_ini = "";

static void write_instance(const node *n, const char *name, const char *plugin,
                           const char *extra)
{
	char path[700], text[2048];
	snprintf(path, sizeof path, "%s/%s.ini", n->conf_dir, name);
	if (!strcmp(plugin, "scripted"))
		snprintf(text, sizeof text,
		         "[provider]\nplugin = scripted\n[scripted]\nrecord_file = %s\n%s",
		         n->calls, extra ? extra : "");
	else
		snprintf(text, sizeof text, "[provider]\nplugin = %s\n%s", plugin,
		         extra ? extra : "");
	t_write_file(path, text, 0644);
}

/*
 * A node serving `provider` with the scripted plugin.  `provider_ini` goes
 * into [provider] (rate limits), `scripted_ini` into [scripted], and
 * `engine_ini` into [engine].  plugin_dir NULL: the build's fixture dir.
 */
static void make_node(node *n, const char *tag, const char *provider, int workers,
                      int batch, const char *provider_ini, const char *scripted_ini,
                      const char *engine_ini, const char *plugin_dir,
                      const char *conninfo_extra)
{
	char path[700], text[4096];
	memset(n, 0, sizeof *n);
	n->provider = provider;
	n->workers = workers;
	snprintf(n->dir, sizeof n->dir, "%s/%s", tmp, tag);
	snprintf(n->conf_dir, sizeof n->conf_dir, "%s/conf.d", n->dir);
	snprintf(n->ini, sizeof n->ini, "%s/wsyncd.ini", n->dir);
	snprintf(n->log, sizeof n->log, "%s/wsyncd.log", n->dir);
	snprintf(n->calls, sizeof n->calls, "%s/calls.log", n->dir);
	mkdir(n->dir, 0755);
	mkdir(n->conf_dir, 0755);
	t_shared_file(n->calls);
	if (provider) {
		const char *p[1] = {provider};
		snprintf(path, sizeof path, "%s/%s.ini", n->conf_dir, provider);
		snprintf(text, sizeof text,
		         "[provider]\nplugin = scripted\n%s\n[scripted]\nrecord_file = %s\n%s\n",
		         provider_ini ? provider_ini : "rate_limit_per_minute = 100000",
		         n->calls, scripted_ini ? scripted_ini : "");
		t_write_file(path, text, 0644);
		t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ($1, 'scripted')"
		           " ON CONFLICT DO NOTHING", 1, p);
	}
	snprintf(text, sizeof text,
	         "[database]\nconninfo = %s%s\n[engine]\nworkers = %d\nbatch_size = %d\n%s\n"
	         "[plugins]\ndir = %s\nconf_dir = %s\n%s[log]\nlevel = info\n",
	         conninfo, conninfo_extra ? conninfo_extra : "", workers, batch,
	         engine_ini ? engine_ini : "", plugin_dir ? plugin_dir : fixture_dir,
	         n->conf_dir, plugins_ini);
	t_write_file(n->ini, text, 0644);
}

/* Start wsyncd (daemon mode, or --once), output appended to the node's log. */
static pid_t spawn(node *n, int once)
{
	return n->pid = t_spawn_wsyncd(wsyncd, n->ini, n->log, once ? "--once" : NULL, NULL);
}

/* SIGTERM, then SIGKILL if it does not stop: no daemon outlives its test. */
static int stop(node *n)
{
	int rc;
	if (n->pid <= 0)
		return -1;
	rc = t_stop(n->pid);
	n->pid = 0;
	return rc;
}

/* Run `wsyncd --once` for the node; returns the exit status. */
static int run_once(node *n)
{
	pid_t pid = spawn(n, 1);
	int rc = t_wait_exit(pid, 120000);
	if (rc == -1) {
		kill(pid, SIGKILL);
		t_wait_exit(pid, 10000);
	}
	n->pid = 0;
	return rc;
}

static void show_log(const node *n)
{
	t_show_tail(n->log, 4000);
}

/* Run a command (argv[0] looked up in PATH); returns its exit status. */
static int run_cmd(char *const argv[])
{
	pid_t pid = fork();
	int status = 0;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- data ---- */

/* A user with a token on `provider`; malloc'ed uuid. */
static char *new_user(const char *provider)
{
	char *u = t_query_str(db, "SELECT gen_random_uuid()::text", 0, NULL);
	const char *p[2] = {u, provider};
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token)"
	           " VALUES ($1, $2, 'tok')", 2, p);
	return u;
}

/* n workouts of one user, each with a queued create for `provider`. */
static void make_entries(const char *provider, int n, const char *description)
{
	char *u = new_user(provider), count[16];
	const char *p[4] = {u, provider, count, description};
	snprintf(count, sizeof count, "%d", n);
	t_exec(db, "WITH w AS (INSERT INTO workouts (user_id, name, description, workout_text)"
	           "  SELECT $1::uuid, 'w' || g, $4, '- 10m 70%' FROM generate_series(1, $3::int) g"
	           "  RETURNING id)"
	           " INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           "  provider) SELECT $1::uuid, 'workout', id, 'create', $2 FROM w", 4, p);
	free(u);
}

/* Load a scripted record file ("op type entity attempt provider_id" lines)
 * into table `t_calls` (emptied first). */
static void load_calls(const char *path)
{
	char *s = t_read_file(path);
	PGresult *r;
	t_exec(db, "CREATE TABLE IF NOT EXISTS t_calls (op text, entity_type text, entity text,"
	           " attempt int, provider_id text)", 0, NULL);
	t_exec(db, "TRUNCATE t_calls", 0, NULL);
	r = PQexec(db, "COPY t_calls FROM STDIN WITH (FORMAT text, DELIMITER ' ')");
	T_EQ_INT(PQresultStatus(r), PGRES_COPY_IN);
	PQclear(r);
	PQputCopyData(db, s, (int)strlen(s));
	PQputCopyEnd(db, NULL);
	r = PQgetResult(db);
	T_EQ_INT(PQresultStatus(r), PGRES_COMMAND_OK);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fprintf(stderr, "COPY t_calls: %s", PQerrorMessage(db));
	PQclear(r);
	while ((r = PQgetResult(db)))
		PQclear(r);
	free(s);
}

/* Queue rows of `provider` not processed successfully. */
static long long not_done(const char *provider)
{
	return qint("SELECT count(*) FROM workout_sync_queue WHERE provider = $1"
	            " AND (processed_at IS NULL OR error_type IS NOT NULL)", provider, NULL);
}

static const char PROCESSED_SQL[] =
	"SELECT count(*) FROM workout_sync_queue WHERE provider = $1 AND processed_at IS NOT NULL";

/* ---- a. kill -9 during a drain ---- */

/*
 * "Creates nothing twice", given at-least-once delivery (README.md): a
 * create whose link (the provider's id) was committed is never repeated --
 * a rerun turns it into an update -- and an entry committed as processed
 * never runs again.  What can repeat is a call the kill cut short after the
 * provider got it: one running on each call thread, or finished and waiting
 * for the writer's group commit.  Its rerun is a create again when its link
 * was not committed yet.  Which entries those are, the database says: an
 * intent recorded, no outcome committed.
 */
static void test_kill9(void)
{
	enum { N = 300, WORKERS = 4 };
	node n;
	char pid[16];
	long long done_at_kill, leased;
	int rc;

	t_case("kill9: kill -9 during a drain");
	make_node(&n, "kill9", "kill9", WORKERS, 40, NULL, "delay_ms = 20", NULL, NULL, NULL);
	make_entries("kill9", N, "answer=ok");
	spawn(&n, 0);
	snprintf(pid, sizeof pid, "%d", (int)n.pid);
	/* Mid-drain: a good part done, most still to do. */
	T_CHECK(poll_at_least(PROCESSED_SQL, "kill9", NULL, 40, 60000) >= 40);
	kill(n.pid, SIGKILL);
	T_EQ_INT(t_wait_exit(n.pid, 10000), 128 + SIGKILL);
	n.pid = 0;

	t_exec(db, "CREATE TABLE t_done_at_kill AS SELECT entity_id::text AS entity"
	           " FROM workout_sync_queue WHERE provider = 'kill9' AND processed_at IS NOT NULL",
	           0, NULL);
	/* The window: calls started (intent recorded) whose outcome was not
	 * committed when the process died. */
	t_exec(db, "CREATE TABLE t_window_at_kill AS SELECT entity_id::text AS entity"
	           " FROM workout_sync_queue WHERE provider = 'kill9' AND processed_at IS NULL"
	           "   AND intent_at IS NOT NULL", 0, NULL);
	done_at_kill = qint("SELECT count(*) FROM t_done_at_kill", NULL, NULL);
	leased = qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'kill9'"
	              " AND processed_at IS NULL AND locked_until > now()"
	              " AND locked_by LIKE '%:' || $1 || ':%'", pid, NULL);
	printf("  at the kill: %lld of %d processed, %lld leased to the dead process\n",
	       done_at_kill, N, leased);
	T_CHECK(done_at_kill < N); /* the kill really came mid-drain */
	T_CHECK(leased > 0);

	/* What lease expiry does, without waiting lease_seconds. */
	t_exec(db, "UPDATE workout_sync_queue SET locked_until = now() - interval '1 second'"
	           " WHERE provider = 'kill9' AND processed_at IS NULL"
	           "   AND locked_by LIKE '%:' || $1 || ':%'", 1, (const char *[]){pid});
	rc = run_once(&n);
	T_EQ_INT(rc, 0);

	/* Nothing lost: every entry succeeded and is linked. */
	T_EQ_INT(not_done("kill9"), 0);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_links WHERE provider = 'kill9'",
	              NULL, NULL), N);
	/* Nothing created twice beyond the in-flight window. */
	load_calls(n.calls);
	T_EQ_INT(qint("SELECT count(DISTINCT entity) FROM t_calls WHERE op = 'create'", NULL,
	              NULL), N);
	T_EQ_INT(qint("SELECT count(*) FROM t_calls WHERE op = 'delete'", NULL, NULL), 0);
	/* Each entity is called once, or twice when it was in flight at the
	 * kill: the second call is a create when its link was not committed
	 * yet, an update when it was. */
	T_EQ_INT(qint("SELECT count(*) FROM (SELECT entity FROM t_calls"
	              " GROUP BY entity HAVING count(*) > 2) x", NULL, NULL), 0);
	long long twice = qint("SELECT count(*) FROM (SELECT entity FROM t_calls"
	                       " GROUP BY entity HAVING count(*) = 2) x", NULL, NULL);
	long long created_twice = qint("SELECT count(*) FROM (SELECT entity FROM t_calls"
	                               " WHERE op = 'create' GROUP BY entity"
	                               " HAVING count(*) = 2) x", NULL, NULL);
	printf("  called twice (in flight at the kill): %lld, of which created twice: %lld;"
	       " calls started and not committed at the kill: %lld\n", twice, created_twice,
	       qint("SELECT count(*) FROM t_window_at_kill", NULL, NULL));
	/* Only what the kill cut short runs twice: a call started (its intent
	 * recorded) whose outcome was not committed yet. */
	T_EQ_INT(qint("SELECT count(*) FROM (SELECT entity FROM t_calls GROUP BY entity"
	              " HAVING count(*) = 2) x WHERE entity NOT IN"
	              " (SELECT entity FROM t_window_at_kill)", NULL, NULL), 0);
	/* A second call is always the rerun of the claim the kill cut short. */
	T_EQ_INT(qint("SELECT count(*) FROM t_calls WHERE attempt > 2", NULL, NULL), 0);
	T_EQ_INT(qint("SELECT count(*) FROM (SELECT entity FROM t_calls GROUP BY entity"
	              " HAVING count(*) = 2 AND min(attempt) = max(attempt)) x", NULL, NULL), 0);
	/* An entry whose link was committed before the kill never ran again. */
	T_EQ_INT(qint("SELECT count(*) FROM (SELECT entity FROM t_calls JOIN t_done_at_kill"
	              " USING (entity) GROUP BY entity HAVING count(*) > 1) x", NULL, NULL), 0);
	if (t_case_failed())
		show_log(&n);
}

/* ---- b. PostgreSQL restarted mid-drain ---- */

static int restart_postgres(void)
{
	const char *pgctl = getenv("WSYNC_TEST_PGCTL"), *data = getenv("WSYNC_TEST_PGDATA");
	const char *log = getenv("WSYNC_TEST_PGLOG");
	char *as_root[] = {"runuser", "-u", "postgres", "--", (char *)pgctl, "-D", (char *)data,
	                   "-l", (char *)log, "-m", "fast", "-w", "-t", "60", "restart", NULL};
	if (!pgctl || !data || !log)
		return -1;
	return run_cmd(geteuid() == 0 ? as_root : as_root + 4);
}

static void test_pg_restart(void)
{
	enum { N = 200 };
	node n;
	long long before;
	char *log;

	t_case("pgrestart: PostgreSQL restarted mid-drain");
	make_node(&n, "pgrestart", "pgrestart", 4, 20, NULL, "delay_ms = 20", NULL, NULL, NULL);
	make_entries("pgrestart", N, "answer=ok");
	spawn(&n, 0);
	T_CHECK(poll_at_least(PROCESSED_SQL, "pgrestart", NULL, 20, 60000) >= 20);
	T_EQ_INT(restart_postgres(), 0);
	db_ok();
	before = qint(PROCESSED_SQL, "pgrestart", NULL);
	printf("  %lld of %d processed when the server came back\n", before, N);
	/* It finishes: entries in flight at the restart are given back on
	 * reconnect, not left to wait out the 300 s lease. */
	T_EQ_INT(poll_at_least(PROCESSED_SQL, "pgrestart", NULL, N, 120000), N);
	T_CHECK(t_running(n.pid));
	T_EQ_INT(not_done("pgrestart"), 0);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'pgrestart'"
	              " AND locked_until > now()", NULL, NULL), 0);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_links WHERE provider = 'pgrestart'",
	              NULL, NULL), N);
	load_calls(n.calls);
	T_EQ_INT(qint("SELECT count(DISTINCT entity) FROM t_calls", NULL, NULL), N);
	T_EQ_INT(qint("SELECT count(*) FROM (SELECT entity FROM t_calls GROUP BY entity"
	              " HAVING count(*) > 2) x", NULL, NULL), 0);
	log = t_read_file(n.log);
	T_CONTAINS(log, "reconnecting"); /* the restart was felt */
	free(log);
	T_EQ_INT(stop(&n), 0);
	if (t_case_failed())
		show_log(&n);
}

/* ---- c. SIGHUP loads a new plugin; a broken INI changes nothing ---- */

static char *enqueue_one(const char *provider, const char *user)
{
	const char *p[2] = {user, provider};
	char *w = t_query_str(db, "INSERT INTO workouts (user_id, name, description, workout_text)"
	                          " VALUES ($1, 'w', 'answer=ok', '- 10m 70%') RETURNING id::text",
	                      1, p);
	const char *q[3] = {user, w, provider};
	t_exec(db, "SELECT wsync_enqueue($1::uuid, 'workout', $2::uuid, 'create', $3)", 3, q);
	return w;
}

static const char ENTITY_DONE_SQL[] =
	"SELECT count(*) FROM workout_sync_queue WHERE entity_id = $1::uuid AND provider = $2"
	" AND processed_at IS NOT NULL AND error_type IS NULL";

static void test_sighup(void)
{
	node n;
	char plugins[600], so[700], *u_ex, *u_late, *w;

	t_case("sighup: a plugin dropped in, then a broken INI");
	/* A private plugin directory holding only the example plugin. */
	snprintf(plugins, sizeof plugins, "%s/hup-plugins", tmp);
	mkdir(plugins, 0755);
	snprintf(so, sizeof so, "%s/example.so", plugins);
	copy_file(example_so, so, 0644);
	make_node(&n, "sighup", NULL, 2, 10, NULL, NULL, NULL, plugins, NULL);
	write_instance(&n, "hupex", "example", NULL);
	spawn(&n, 0);
	T_EQ_INT(poll_at_least("SELECT count(*) FROM sync_providers WHERE name = 'hupex'", NULL,
	                       NULL, 1, 30000), 1);
	u_ex = new_user("hupex");
	w = enqueue_one("hupex", u_ex);
	T_EQ_INT(poll_at_least(ENTITY_DONE_SQL, w, "hupex", 1, 30000), 1);
	free(w);

	/* Drop scripted.so and an instance of it, then SIGHUP. */
	{
		char built[700];
		snprintf(built, sizeof built, "%s/scripted.so", fixture_dir);
		snprintf(so, sizeof so, "%s/scripted.so", plugins);
		copy_file(built, so, 0644);
	}
	write_instance(&n, "late", "scripted", NULL);
	kill(n.pid, SIGHUP);
	T_EQ_INT(poll_at_least("SELECT count(*) FROM sync_providers WHERE name = 'late'", NULL,
	                       NULL, 1, 30000), 1);
	u_late = new_user("late");
	{
		long long t0 = t_now_ms();
		w = enqueue_one("late", u_late);
		T_EQ_INT(poll_at_least(ENTITY_DONE_SQL, w, "late", 1, 30000), 1);
		printf("  new plugin's entry processed %lld ms after enqueue\n", t_now_ms() - t0);
		T_CHECK(t_file_contains(n.calls, w));
		free(w);
	}
	T_CHECK(t_file_contains(n.log, "SIGHUP: reloading"));

	/* A broken INI: refused, the running configuration stays. */
	{
		char path[700];
		snprintf(path, sizeof path, "%s/broken.ini", n.conf_dir);
		t_write_file(path, "[provider]\nplugin = scripted\nrate_limit_per_minute = lots\n",
		             0644);
		kill(n.pid, SIGHUP);
	}
	{
		long long until = t_now_ms() + 30000;
		while (!t_file_contains(n.log, "reload refused") && t_now_ms() < until)
			t_sleep_ms(50);
	}
	T_CHECK(t_file_contains(n.log, "reload refused, keeping the running configuration"));
	T_CHECK(t_file_contains(n.log, "rate_limit_per_minute = 'lots'"));
	T_CHECK(t_running(n.pid));
	w = enqueue_one("late", u_late);
	T_EQ_INT(poll_at_least(ENTITY_DONE_SQL, w, "late", 1, 30000), 1);
	free(w);
	w = enqueue_one("hupex", u_ex);
	T_EQ_INT(poll_at_least(ENTITY_DONE_SQL, w, "hupex", 1, 30000), 1);
	free(w);
	T_EQ_INT(stop(&n), 0);
	if (t_case_failed())
		show_log(&n);
	free(u_ex);
	free(u_late);
}

/* ---- c2. an INI removed, then SIGHUP; the operator's override ---- */

/* Wait until the node's log contains `needle`. */
static int log_wait(const node *n, const char *needle)
{
	long long until = t_now_ms() + 30000;
	while (!t_file_contains(n->log, needle) && t_now_ms() < until)
		t_sleep_ms(50);
	return t_file_contains(n->log, needle);
}

static const char ENABLED_SQL[] =
	"SELECT enabled::int FROM sync_providers WHERE name = $1";

static void test_lifecycle_hup(void)
{
	node n;
	char path[700], *u, *w;
	long long v;

	t_case("lifecycle: an INI removed and SIGHUP; provider disable survives a reload");
	make_node(&n, "lifecycle", NULL, 1, 10, NULL, NULL, NULL, NULL, NULL);
	write_instance(&n, "lckeep", "scripted", NULL);
	write_instance(&n, "lcgone", "scripted", NULL);
	spawn(&n, 0);
	T_EQ_INT(poll_at_least("SELECT count(*) FROM sync_providers WHERE name IN"
	                       " ('lckeep', 'lcgone') AND enabled", NULL, NULL, 2, 30000), 2);
	u = new_user("lckeep");
	{
		const char *p[1] = {u};
		t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token)"
		           " VALUES ($1, 'lcgone', 'tok')", 1, p);
	}

	/* The INI goes away; SIGHUP. */
	snprintf(path, sizeof path, "%s/lcgone.ini", n.conf_dir);
	T_EQ_INT(unlink(path), 0);
	kill(n.pid, SIGHUP);
	T_CHECK(log_wait(&n, "provider lcgone: no wsyncd has it enabled: nothing is queued for it"));
	v = qint(ENABLED_SQL, "lcgone", NULL);
	T_EQ_INT(v, 0);
	T_EQ_INT(qint(ENABLED_SQL, "lckeep", NULL), 1);
	T_EQ_INT(qint("SELECT count(*) FROM wsync_provider_state WHERE provider = 'lcgone'"
	              " AND reason LIKE 'no wsyncd serves it%'", NULL, NULL), 1);
	/* A change is queued for the provider still configured only. */
	w = t_query_str(db, "INSERT INTO workouts (user_id, name, description, workout_text)"
	                    " VALUES ($1, 'w', 'answer=ok', '- 10m 70%') RETURNING id::text", 1,
	                (const char *[]){u});
	t_exec(db, "SELECT wsync_enqueue($1::uuid, 'workout', $2::uuid, 'create')", 2,
	       (const char *[]){u, w});
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE entity_id = $1::uuid"
	              " AND provider = 'lcgone'", w, NULL), 0);
	T_EQ_INT(poll_at_least(ENTITY_DONE_SQL, w, "lckeep", 1, 30000), 1);
	free(w);

	/* The operator disables lckeep; a reload does not undo it, and says so. */
	t_exec(db, "SELECT wsync_provider_set_disabled('lckeep', true)", 0, NULL);
	kill(n.pid, SIGHUP);
	T_CHECK(log_wait(&n, "provider lckeep: disabled by an operator"));
	T_EQ_INT(qint(ENABLED_SQL, "lckeep", NULL), 0);
	T_EQ_INT(qint("SELECT wsync_enqueue($1::uuid, 'workout', gen_random_uuid(), 'create')",
	              u, NULL), 0);
	t_exec(db, "SELECT wsync_provider_set_disabled('lckeep', false)", 0, NULL);
	T_EQ_INT(qint(ENABLED_SQL, "lckeep", NULL), 1);
	/* The INI back: served and queued for again. */
	write_instance(&n, "lcgone", "scripted", NULL);
	kill(n.pid, SIGHUP);
	T_EQ_INT(poll_at_least(ENABLED_SQL, "lcgone", NULL, 1, 30000), 1);
	T_CHECK(t_running(n.pid));
	T_EQ_INT(stop(&n), 0);
	if (t_case_failed())
		show_log(&n);
	free(u);
}

/* ---- d. SIGTERM during a drain ---- */

static void test_sigterm(void)
{
	enum { N = 100 };
	node n;
	char pid[16];
	int rc;

	t_case("sigterm: SIGTERM during a drain");
	make_node(&n, "sigterm", "sigterm", 2, 40, NULL, "delay_ms = 50", NULL, NULL, NULL);
	make_entries("sigterm", N, "answer=ok");
	spawn(&n, 0);
	snprintf(pid, sizeof pid, "%d", (int)n.pid);
	T_CHECK(poll_at_least(PROCESSED_SQL, "sigterm", NULL, 10, 60000) >= 10);
	/* Its sessions say what they are for, in pg_stat_activity. */
	T_EQ_INT(qint("SELECT count(DISTINCT application_name) FROM pg_stat_activity"
	              " WHERE application_name IN ('wsyncd claimer', 'wsyncd starter',"
	              " 'wsyncd writer')", NULL, NULL), 3);
	kill(n.pid, SIGTERM);
	rc = t_wait_exit(n.pid, 60000);
	T_EQ_INT(rc, 0);
	if (rc == -1)
		kill(n.pid, SIGKILL), t_wait_exit(n.pid, 10000);
	n.pid = 0;
	T_CHECK(t_file_contains(n.log, "wsyncd stopped"));

	/* Nothing left leased, to the dead process or at all. */
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE locked_by LIKE '%:' || $1"
	              " || ':%' AND processed_at IS NULL", pid, NULL), 0);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'sigterm'"
	              " AND processed_at IS NULL AND locked_until > now()", NULL, NULL), 0);
	/* The in-flight entries finished; claimed-but-unstarted ones were
	 * given back with their attempt uncounted and no plugin call. */
	long long processed = qint(PROCESSED_SQL, "sigterm", NULL);
	long long released = qint("SELECT count(*) FROM workout_sync_queue WHERE provider ="
	                          " 'sigterm' AND processed_at IS NULL AND lease_token IS NOT NULL",
	                          NULL, NULL);
	printf("  at exit: %lld processed, %lld claimed and given back\n", processed, released);
	T_CHECK(processed < N);
	T_CHECK(released > 0);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'sigterm'"
	              " AND processed_at IS NULL AND attempts <> 0", NULL, NULL), 0);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'sigterm'"
	              " AND processed_at IS NOT NULL AND (attempts <> 1 OR error_type IS NOT NULL)",
	              NULL, NULL), 0);
	load_calls(n.calls);
	T_EQ_INT(qint("SELECT count(*) FROM t_calls", NULL, NULL), processed);
	/* The rest is done by the next run, each entity called exactly once. */
	T_EQ_INT(run_once(&n), 0);
	T_EQ_INT(not_done("sigterm"), 0);
	load_calls(n.calls);
	T_EQ_INT(qint("SELECT count(*) FROM t_calls", NULL, NULL), N);
	T_EQ_INT(qint("SELECT count(DISTINCT entity) FROM t_calls", NULL, NULL), N);
	if (t_case_failed())
		show_log(&n);
}

/* ---- e. instant pickup through LISTEN/NOTIFY ---- */

static void test_listen(void)
{
	node n;
	char *u, *w;
	long long t0, waited, idle_since = -1, until;

	t_case("listen: pickup through NOTIFY with interval_minutes = 10");
	make_node(&n, "listen", "listen", 2, 10, NULL, NULL, "interval_minutes = 10\nlisten = true",
	          NULL, " application_name=wsync-listen-test");
	u = new_user("listen");
	w = enqueue_one("listen", u); /* processed at start-up */
	spawn(&n, 0);
	T_EQ_INT(poll_at_least(ENTITY_DONE_SQL, w, "listen", 1, 30000), 1);
	free(w);
	/* Wait until the daemon is idle: its workers + listener connected and
	 * idle for a while (the listener in poll() after LISTEN). */
	until = t_now_ms() + 30000;
	while (t_now_ms() < until) {
		long long idle = qint("SELECT count(*) FROM pg_stat_activity WHERE application_name"
		                      " = 'wsync-listen-test' AND state = 'idle'", NULL, NULL);
		if (idle == n.workers + 1) {
			if (idle_since < 0)
				idle_since = t_now_ms();
			else if (t_now_ms() - idle_since >= 300)
				break;
		} else {
			idle_since = -1;
		}
		t_sleep_ms(50);
	}
	if (t_now_ms() >= until)
		printf("  (the daemon never looked idle for 300 ms; going on)\n");
	t0 = t_now_ms();
	w = enqueue_one("listen", u);
	T_EQ_INT(poll_at_least(ENTITY_DONE_SQL, w, "listen", 1, 3000), 1);
	waited = t_now_ms() - t0;
	printf("  picked up and processed %lld ms after wsync_enqueue\n", waited);
	T_CHECK(waited <= 3000);
	T_CHECK(t_running(n.pid));
	T_EQ_INT(stop(&n), 0);
	if (t_case_failed())
		show_log(&n);
	free(w);
	free(u);
}

/* ---- 3. a crashing plugin is named; the entry ends "abandoned" ---- */

/* With [plugins] isolate = false a plugin runs inside wsyncd, and its crash
 * is wsyncd's (the isolated case is tests/robustness/test_isolation.c). */
static void test_crash(void)
{
	node n;
	char *u, *w, *q, *log, *msg;
	const char *p[1];

	t_case("crash: a plugin that crashes wsyncd (isolate = false)");
	plugins_ini = "isolate = false\n";
	make_node(&n, "crash", "crash", 1, 10, NULL, NULL, NULL, NULL, NULL);
	plugins_ini = "";
	u = new_user("crash");
	{
		const char *pw[1] = {u};
		w = t_query_str(db, "INSERT INTO workouts (user_id, name, description, workout_text)"
		                    " VALUES ($1, 'w', 'answer=crash', '- 10m 70%') RETURNING id::text",
		                1, pw);
	}
	{
		const char *pq[2] = {u, w};
		q = t_query_str(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id,"
		                    " operation, provider) VALUES ($1, 'workout', $2, 'create', 'crash')"
		                    " RETURNING id::text", 2, pq);
	}
	p[0] = q;
	for (int i = 1; i <= 3; i++) {
		int rc = run_once(&n);
		T_EQ_INT(rc, 128 + SIGSEGV);
		T_EQ_INT(qint("SELECT attempts FROM workout_sync_queue WHERE id = $1", q, NULL), i);
		T_EQ_INT(qint("SELECT (processed_at IS NULL)::int FROM workout_sync_queue"
		              " WHERE id = $1", q, NULL), 1);
		/* Lease expiry, without waiting lease_seconds. */
		t_exec(db, "UPDATE workout_sync_queue SET locked_until = now() - interval '1 second'"
		           " WHERE id = $1", 1, p);
	}
	log = t_read_file(n.log);
	T_CONTAINS(log, "wsyncd: fatal signal 11 inside plugin scripted (provider crash,");
	free(log);
	/* The fourth claim gives up on it. */
	T_EQ_INT(run_once(&n), 0);
	T_EQ_INT(qint("SELECT (processed_at IS NOT NULL)::int FROM workout_sync_queue"
	              " WHERE id = $1", q, NULL), 1);
	msg = t_query_str(db, "SELECT error_type || ': ' || error_message FROM workout_sync_queue"
	                      " WHERE id = $1", 1, p);
	T_CONTAINS(msg, "unexpected_error: abandoned");
	free(msg);
	T_EQ_INT(qint("SELECT retry_count FROM workout_sync_queue WHERE id = $1", q, NULL), 0);
	T_CHECK(!t_file_contains(n.calls, w)); /* it never got as far as a call */
	if (t_case_failed())
		show_log(&n);
	free(q), free(w), free(u);
}

/* ---- two nodes share one limit ---- */

static void test_two_nodes(void)
{
	enum { N = 12, LIMIT = 5 };
	node a, b;
	int ra, rb;

	t_case("two nodes: the per-user limit holds for the cluster");
	/* The scripted plugin makes one GET through the core per call (to a
	 * closed port: the answer stays the scripted "ok"), so the core's
	 * limiter counts every call. */
	make_node(&a, "node-a", "shared", 2, 4,
	          "rate_limit_per_minute = 5\nbase_url = https://127.0.0.1:9\nconnect_timeout_seconds = 2",
	          "http = true", NULL, NULL, NULL);
	make_node(&b, "node-b", "shared", 2, 4,
	          "rate_limit_per_minute = 5\nbase_url = https://127.0.0.1:9\nconnect_timeout_seconds = 2",
	          "http = true", NULL, NULL, NULL);
	make_entries("shared", N, "answer=ok"); /* one user */
	spawn(&a, 1);
	spawn(&b, 1);
	ra = t_wait_exit(a.pid, 120000);
	rb = t_wait_exit(b.pid, 120000);
	T_EQ_INT(ra, 0);
	T_EQ_INT(rb, 0);
	/* Exactly LIMIT calls between the two nodes (per node it would be
	 * 2 x LIMIT); the rest deferred about a minute, no retry used. */
	T_EQ_INT(qint(PROCESSED_SQL, "shared", NULL), LIMIT);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'shared'"
	              " AND processed_at IS NULL AND error_type = 'rate_limit' AND retry_count = 0"
	              " AND next_retry_at > now() + interval '30 seconds'", NULL, NULL), N - LIMIT);
	{
		char *ca = t_read_file(a.calls), *cb = t_read_file(b.calls);
		int lines = 0;
		for (char *s = ca; *s; s++)
			lines += *s == '\n';
		for (char *s = cb; *s; s++)
			lines += *s == '\n';
		T_EQ_INT(lines, LIMIT);
		free(ca);
		free(cb);
	}
	T_EQ_INT(qint("SELECT count(*) FROM wsync_rate_calls WHERE provider = 'shared'", NULL,
	              NULL), LIMIT);
	if (t_case_failed()) {
		show_log(&a);
		show_log(&b);
	}
}

int main(int argc, char **argv)
{
	conninfo = getenv("WSYNC_TEST_CONNINFO");
	if (argc < 4 || !conninfo) {
		fprintf(stderr, "usage: pg_harness.sh %s WSYNCD FIXTURE_DIR EXAMPLE_SO\n", argv[0]);
		return 2;
	}
	wsyncd = argv[1];
	fixture_dir = argv[2];
	example_so = argv[3];
	signal(SIGPIPE, SIG_IGN);
	db = t_db();
	t_migrate(db);
	/* We write queue rows ourselves (wsync_enqueue where NOTIFY matters). */
	t_exec(db, "SET wsync.triggers = off", 0, NULL);
	/* Under the harness's directory, which it removes however we end. */
	if (getenv("WSYNC_TEST_TMP")) {
		static char dir[512];
		snprintf(dir, sizeof dir, "%s/robustness", getenv("WSYNC_TEST_TMP"));
		mkdir(dir, 0755);
		tmp = dir;
	} else {
		tmp = t_tempdir();
	}

	test_crash();
	test_two_nodes();
	test_listen();
	test_sigterm();
	test_sighup();
	test_lifecycle_hup();
	test_kill9();
	test_pg_restart();

	t_case("done");
	PQfinish(db);
	return t_done();
}
