/*
 * test_exactly_once.c -- exactly once toward a provider that deduplicates
 * nothing, under the failures of issue 11, with the real wsyncd (daemon
 * mode), the real wahoo plugin, a real PostgreSQL and wsync-sandbox playing
 * Wahoo with a 20-50 ms answer time:
 *
 *   kill9       kill -9 at random moments (seeded, the seed is printed),
 *               5 times during a drain of 5,000 creates; wsyncd restarted
 *               each time: nothing lost, no duplicate plan, nothing failed,
 *               and what the last dead process held is taken again within
 *               10 s of the restart (the restart releases a dead local
 *               holder's leases at once)
 *   pgrestart   PostgreSQL restarted twice (-m fast) and stopped for 8 s
 *               once, mid-drain, wsyncd left running: nothing lost, no
 *               duplicate, work resumes within 3 s of the server being back
 *   crashloop   ([plugins] isolate = false) one entry whose plugin call
 *               segfaults wsyncd, among healthy entries
 *               of its provider and of another provider; wsyncd restarted
 *               after each crash (as systemd would) until the entry is
 *               abandoned: only that entry fails
 *   longcall    a call longer than lease_seconds, two wsyncd on one
 *               database: one create, one call
 *   noid        a 2xx answer to a create without a usable id (HTML, a
 *               truncated body, JSON without "id"): retried with reconcile,
 *               one plan, the link set, never a second POST
 *
 *   tests/pg_harness.sh test_exactly_once WAHOO_SO FIXTURE_DIR [CASES]
 *   (env from meson: WSYNC_WSYNCD, WSYNC_SANDBOX_EXE; WSYNC_TEST_SEED=N
 *   replays the kill moments of a run)
 *
 * Waits are polls with generous timeouts; the only timing assertions are
 * the upper bounds the issue sets (re-take after a kill, resume after a
 * database restart), measured on the database's clock.
 */
#include "e2e.h"

#include <errno.h>
#include <fcntl.h>
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

/* The test's own session, back after a server restart. */
static void db_ok(void)
{
	t_db_back(db, "SET wsync.triggers = off");
}

static long long qint(const char *sql, const char *a, const char *b)
{
	const char *p[2] = {a, b};
	db_ok();
	return t_query_int(db, sql, a ? (b ? 2 : 1) : 0, p);
}

/* Poll `sql` (one number) until it is >= want; the last value.  Errors
 * (the server restarting) are retried. */
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
		t_sleep_ms(20);
	}
}

/* ---- wsyncd nodes ---------------------------------------------------------- */

typedef struct node {
	char dir[512], ini[600], log[600], conf_dir[600], calls[600];
	pid_t pid;
} node;

/* Extra [plugins] lines of the next make_node. */
static const char *plugins_ini = "";

/* A node directory with wsyncd.ini; `engine` goes into [engine]. */
static void make_node(node *n, const char *tag, const char *engine)
{
	char text[4096];
	memset(n, 0, sizeof *n);
	snprintf(n->dir, sizeof n->dir, "%s/%s", sb->dir, tag);
	snprintf(n->conf_dir, sizeof n->conf_dir, "%s/conf.d", n->dir);
	snprintf(n->ini, sizeof n->ini, "%s/wsyncd.ini", n->dir);
	snprintf(n->log, sizeof n->log, "%s/wsyncd.log", n->dir);
	snprintf(n->calls, sizeof n->calls, "%s/calls.log", n->dir);
	mkdir(n->dir, 0755);
	mkdir(n->conf_dir, 0755);
	snprintf(text, sizeof text,
	         "[database]\nconninfo = %s\n[engine]\n%s\n[plugins]\ndir = %s\nconf_dir = %s\n"
	         "%s[log]\nlevel = info\n",
	         conninfo, engine, plugin_dir, n->conf_dir, plugins_ini);
	t_write_file(n->ini, text, 0644);
}

static void register_provider(const char *name, const char *plugin)
{
	const char *p[2] = {name, plugin};
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ($1, $2)"
	           " ON CONFLICT (name) DO NOTHING", 2, p);
}

/* A wahoo instance against the sandbox (plain http on 127.0.0.1). */
static void wahoo_instance(node *n, const char *name)
{
	char path[700], text[2048];
	snprintf(path, sizeof path, "%s/%s.ini", n->conf_dir, name);
	snprintf(text, sizeof text,
	         "[provider]\nplugin = wahoo\nbase_url = %s\nallow_insecure_http = true\n"
	         "rate_limit_per_minute = 100000\n[wahoo]\nftp = 250\n", sb->base_url);
	t_write_file(path, text, 0644);
	register_provider(name, "wahoo");
}

/* A scripted instance (tests/fixtures/scripted.c) recording to n->calls. */
static void scripted_instance(node *n, const char *name, const char *scripted)
{
	char path[700], text[2048];
	snprintf(path, sizeof path, "%s/%s.ini", n->conf_dir, name);
	snprintf(text, sizeof text,
	         "[provider]\nplugin = scripted\nrate_limit_per_minute = 100000\n"
	         "[scripted]\nrecord_file = %s\n%s\n", n->calls, scripted ? scripted : "");
	t_write_file(path, text, 0644);
	if (access(n->calls, F_OK) != 0)
		t_shared_file(n->calls);
	register_provider(name, "scripted");
}

/* Start wsyncd in daemon mode; output appended to the node's log. */
static pid_t spawn(node *n)
{
	return n->pid = t_spawn_wsyncd(wsyncd, n->ini, n->log, NULL, NULL);
}

/* SIGTERM, then SIGKILL: no daemon outlives its case. */
static int stop(node *n)
{
	int rc;
	if (n->pid <= 0)
		return -1;
	rc = t_stop(n->pid);
	n->pid = 0;
	return rc;
}

static void show_log(const node *n)
{
	t_show_tail(n->log, 6000);
}

static int run_cmd(char *const argv[])
{
	pid_t pid = fork();
	int status = 0;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- data ------------------------------------------------------------------ */

/* n creates of `provider` spread over n_users users (tokens valid for a
 * day, so no refresh), queued in workout order.  `description` scripts the
 * scripted plugin. */
static void make_creates(const char *provider, int n_users, int n, const char *description)
{
	char users[16], count[16];
	const char *p[4] = {provider, users, count, description ? description : "answer=ok"};
	snprintf(users, sizeof users, "%d", n_users);
	snprintf(count, sizeof count, "%d", n);
	t_exec(db,
	       "WITH u AS (INSERT INTO provider_tokens (user_id, provider, access_token,"
	       "    refresh_token, expires_at, upload_workouts_enabled)"
	       "  SELECT gen_random_uuid(), $1, 'at-' || $1 || '-' || g, 'rt-' || $1 || '-' || g,"
	       "    now() + interval '1 day', true FROM generate_series(1, $2::int) g"
	       "  RETURNING user_id),"
	       " ul AS (SELECT user_id, (row_number() OVER ()) - 1 AS k FROM u),"
	       " w AS (INSERT INTO workouts (user_id, name, sport, description, workout_text)"
	       "  SELECT ul.user_id, $1 || ' ' || g, 'bike', $4, '- 10m 70%'"
	       "  FROM generate_series(1, $3::int) g JOIN ul ON ul.k = g % $2::int"
	       "  ORDER BY g RETURNING id, user_id, name)"
	       " INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider)"
	       " SELECT user_id, 'workout', id, 'create', $1 FROM w"
	       " ORDER BY split_part(name, ' ', 2)::int", 4, p);
}

static const char PROCESSED_SQL[] =
	"SELECT count(*) FROM workout_sync_queue WHERE provider = $1 AND processed_at IS NOT NULL";

/* Entries of `provider` not processed successfully (pending or failed). */
static long long not_done(const char *provider)
{
	return qint("SELECT count(*) FROM workout_sync_queue WHERE provider = $1"
	            " AND (processed_at IS NULL OR error_type IS NOT NULL)", provider, NULL);
}

static long long failed_entries(const char *provider)
{
	return qint("SELECT count(*) FROM workout_sync_queue WHERE provider = $1"
	            " AND error_type IS NOT NULL", provider, NULL);
}

static long long links(const char *provider)
{
	return qint("SELECT count(*) FROM workout_sync_links WHERE provider = $1", provider, NULL);
}

/* ---- the sandbox ------------------------------------------------------------- */

/* Empty store, faults and request log; answers take 20-50 ms. */
static void sandbox_fresh(void)
{
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/reset", "{}", NULL), 200);
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/settings", "{\"latency_ms\":[20,50]}", NULL),
	         200);
}

/* /_sandbox/counts -> wahoo -> key (a number), -1 when absent. */
static long long wahoo_count(const char *key)
{
	json_object *c = e2e_sandbox_json(sb, "/_sandbox/counts"), *w, *v;
	long long n = -1;
	if (json_object_object_get_ex(c, "wahoo", &w) && json_object_object_get_ex(w, key, &v))
		n = json_object_get_int64(v);
	json_object_put(c);
	return n;
}

/* Every Wahoo plan of the sandbox's store into table t_plans (emptied):
 * (external_id, id), to compare with the links. */
static void load_plans(void)
{
	json_object *store = e2e_sandbox_json(sb, "/_sandbox/store"), *w, *plans;
	t_exec(db, "CREATE TABLE IF NOT EXISTS t_plans (external_id text, id text)", 0, NULL);
	t_exec(db, "TRUNCATE t_plans", 0, NULL);
	if (json_object_object_get_ex(store, "wahoo", &w) &&
	    json_object_object_get_ex(w, "plans", &plans)) {
		/* One statement: the pairs as two text arrays. */
		size_t n = json_object_array_length(plans), cap = n * 80 + 16;
		char *ext = malloc(cap), *ids = malloc(cap);
		size_t ne = 0, ni = 0;
		ext[ne++] = '{';
		ids[ni++] = '{';
		for (size_t i = 0; i < n; i++) {
			json_object *p = json_object_array_get_idx(plans, i), *e, *id;
			if (!json_object_object_get_ex(p, "external_id", &e) ||
			    !json_object_object_get_ex(p, "id", &id))
				continue;
			ne += (size_t)snprintf(ext + ne, cap - ne, "%s\"%s\"", ne > 1 ? "," : "",
			                       json_object_get_string(e));
			ni += (size_t)snprintf(ids + ni, cap - ni, "%s\"%s\"", ni > 1 ? "," : "",
			                       json_object_get_string(id));
		}
		snprintf(ext + ne, cap - ne, "}");
		snprintf(ids + ni, cap - ni, "}");
		{
			const char *p[2] = {ext, ids};
			t_exec(db, "INSERT INTO t_plans SELECT * FROM unnest($1::text[], $2::text[])",
			       2, p);
		}
		free(ext);
		free(ids);
	}
	json_object_put(store);
}

/* Links of `provider` that name the one plan the sandbox holds for their
 * workout (external_id = the workout's id). */
static long long links_to_real_plans(const char *provider)
{
	load_plans();
	return qint("SELECT count(*) FROM workout_sync_links l JOIN t_plans p"
	            " ON p.external_id = l.entity_id::text AND p.id = l.provider_entity_id"
	            " WHERE l.provider = $1", provider, NULL);
}

/* Requests of the sandbox's log with this method and path prefix whose
 * query or body mentions `needle` (NULL: all of them). */
static int requests(const char *method, const char *prefix, const char *needle)
{
	char path[400];
	json_object *log;
	int n = 0;
	snprintf(path, sizeof path, "/_sandbox/requests?method=%s&path_prefix=%s", method, prefix);
	log = e2e_sandbox_json(sb, path);
	for (size_t i = 0; log && i < json_object_array_length(log); i++) {
		json_object *r = json_object_array_get_idx(log, i), *v;
		const char *body = NULL, *query = NULL;
		if (json_object_object_get_ex(r, "body", &v))
			body = json_object_get_string(v);
		if (json_object_object_get_ex(r, "query", &v))
			query = json_object_to_json_string(v);
		if (!needle || (body && strstr(body, needle)) || (query && strstr(query, needle)))
			n++;
	}
	json_object_put(log);
	return n;
}

/* ---- 1. kill -9 at random moments during a drain ---------------------------- */

static void test_kill9(unsigned seed)
{
	enum { N = 5000, USERS = 50, KILLS = 5, LEASE = 10 };
	node n;
	long long targets[KILLS], took = -1, last_stranded = 0;
	char kpid[16], k_s[8];
	int cut = 0;

	t_case("kill9: kill -9 at random moments, 5 times, during a drain of 5000 creates");
	printf("  seed %u (WSYNC_TEST_SEED=%u replays these kill moments)\n", seed, seed);
	srand(seed);
	sandbox_fresh();
	make_node(&n, "kill9", "workers = 12\nbatch_size = 100\n");
	wahoo_instance(&n, "k9");
	make_creates("k9", USERS, N, NULL);
	t_exec(db, "CREATE TABLE t_stranded (kill int, id uuid)", 0, NULL);
	t_exec(db, "CREATE TABLE t_restarts (kill int, at timestamptz)", 0, NULL);
	/* A kill in each fifth of the first 85 % of the drain, at a random
	 * point of it, then up to 150 ms more: calls in flight, intents
	 * recorded and not, outcomes waiting for their commit. */
	for (int k = 0; k < KILLS; k++)
		targets[k] = N * (5 + 16 * k) / 100 + rand() % (N * 14 / 100);

	spawn(&n);
	for (int k = 1; k <= KILLS; k++) {
		long long done = poll_at_least(PROCESSED_SQL, "k9", NULL, targets[k - 1], 180000);
		long long stranded;
		int rc;
		t_sleep_ms(rand() % 150);
		kill(n.pid, SIGKILL);
		rc = t_wait_exit(n.pid, 10000);
		T_EQ_INT(rc, 128 + SIGKILL);
		snprintf(kpid, sizeof kpid, "%d", (int)n.pid);
		snprintf(k_s, sizeof k_s, "%d", k);
		/* Its sessions end once their statement does: an outcome it had
		 * sent may still commit.  Only then is what it held known. */
		for (long long until = t_now_ms() + 10000; t_now_ms() < until &&
		     qint("SELECT count(*) FROM pg_stat_activity"
		          " WHERE application_name LIKE 'wsyncd%'", NULL, NULL) > 0;)
			t_sleep_ms(20);
		/* What the dead process held: leased to it, not processed. */
		t_exec(db, "INSERT INTO t_stranded SELECT $1::int, id FROM workout_sync_queue"
		           " WHERE provider = 'k9' AND processed_at IS NULL"
		           "   AND locked_by LIKE '%:' || $2 || ':%' AND locked_until > now()",
		       2, (const char *[]){k_s, kpid});
		stranded = qint("SELECT count(*) FROM t_stranded WHERE kill = $1::int", k_s, NULL);
		done = qint(PROCESSED_SQL, "k9", NULL);
		printf("  kill %d: %lld of %d processed, %lld leased to the dead process %s\n", k,
		       done, N, stranded, kpid);
		T_CHECK(done < N);      /* the kill came mid-drain */
		/* and usually cut something short (a kill that lands while a
		 * process just started holds nothing yet, on a loaded box) */
		cut += stranded > 0;
		last_stranded = stranded;
		t_exec(db, "INSERT INTO t_restarts VALUES ($1::int, now())", 1,
		       (const char *[]){k_s});
		spawn(&n);
	}
	printf("  %d of %d kills found entries leased to the dead process\n", cut, KILLS);
	T_CHECK(cut >= KILLS - 2);
	/* Drained by the last process. */
	T_EQ_INT(poll_at_least(PROCESSED_SQL, "k9", NULL, N, 180000), N);
	T_CHECK(t_running(n.pid));
	T_EQ_INT(stop(&n), 0);

	/* 0 lost: every entry processed OK, every workout linked. */
	T_EQ_INT(not_done("k9"), 0);
	T_EQ_INT(failed_entries("k9"), 0);
	T_EQ_INT(links("k9"), N);
	/* 0 duplicates: one plan per workout on the provider, and each link
	 * names it. */
	T_EQ_INT(wahoo_count("plans"), N);
	T_EQ_INT(wahoo_count("duplicate_plans"), 0);
	T_EQ_INT(links_to_real_plans("k9"), N);
	printf("  reconciled after a kill: %lld entries ran more than one call\n",
	       qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'k9'"
	            " AND attempts > 1", NULL, NULL));

	/* The last dead process's entries were taken again (their call
	 * started) within 10 s of the restart: the restarted wsyncd sees that
	 * the holder (a wsyncd of this host) is gone and releases its leases
	 * at once, instead of waiting for them to run out. */
	snprintf(k_s, sizeof k_s, "%d", KILLS);
	T_EQ_INT(qint("SELECT count(*) FROM t_stranded s JOIN workout_sync_queue q USING (id)"
	              " JOIN t_restarts r ON r.kill = s.kill"
	              " WHERE s.kill = $1::int AND q.last_attempt_at < r.at", k_s, NULL), 0);
	if (last_stranded == 0) {
		printf("  the last kill stranded nothing: no re-take to time\n");
	} else {
		took = qint("SELECT ceil(1000 * extract(epoch FROM max(q.last_attempt_at) - r.at))::bigint"
		            " FROM t_stranded s JOIN workout_sync_queue q USING (id)"
		            " JOIN t_restarts r ON r.kill = s.kill WHERE s.kill = $1::int GROUP BY r.at",
		            k_s, NULL);
		printf("  the last kill's stranded entries were all taken again %lld ms after the "
		       "restart (lease %d s)\n", took, LEASE);
		/* Within lease_seconds even with a start-up under a sanitizer on a
		 * loaded CI box (it takes about half a second here); waiting for
		 * the lease to run out would take up to lease_seconds plus the
		 * wake-up. */
		T_CHECK(took >= 0 && took <= LEASE * 1000);
		T_CHECK(t_file_contains(n.log, "a wsyncd of this host that is gone"));
	}
	if (t_case_failed())
		show_log(&n);
}

/* ---- 2. PostgreSQL restarted and stopped mid-drain ---------------------------- */

/* pg_ctl as the cluster's owner: "restart" (-m fast), "stop" (-m fast) or
 * "start" with the harness's options. */
static int pg_ctl(const char *action)
{
	const char *pgctl = getenv("WSYNC_TEST_PGCTL"), *data = getenv("WSYNC_TEST_PGDATA");
	const char *log = getenv("WSYNC_TEST_PGLOG"), *opts = getenv("WSYNC_TEST_PGOPTS");
	char *argv[] = {"runuser", "-u", "postgres", "--", (char *)pgctl, "-D", (char *)data,
	                "-l", (char *)log, "-m", "fast", "-w", "-t", "60", "-o",
	                (char *)(opts ? opts : ""), (char *)action, NULL};
	if (!pgctl || !data || !log || !opts) {
		fprintf(stderr, "WSYNC_TEST_PGCTL/PGDATA/PGLOG/PGOPTS not set (tests/pg_harness.sh)\n");
		return -1;
	}
	if (strcmp(action, "start") != 0) { /* -o only for start */
		argv[14] = (char *)action;
		argv[15] = NULL;
	}
	return run_cmd(geteuid() == 0 ? argv : argv + 4);
}

static void test_pg_restart(unsigned seed)
{
	enum { N = 2000, USERS = 40 };
	static const char *const how[3] = {"restart", "restart", "outage"};
	node n;
	char *log;

	t_case("pgrestart: PostgreSQL restarted twice and stopped for 8 s mid-drain");
	srand(seed + 1);
	sandbox_fresh();
	make_node(&n, "pgrestart", "workers = 12\nbatch_size = 100\n");
	wahoo_instance(&n, "pgr");
	make_creates("pgr", USERS, N, NULL);
	spawn(&n);
	for (int i = 0; i < 3; i++) {
		long long target = N * (10 + 25 * i) / 100 + rand() % (N / 10), done, back_ms;
		long long resumed_ms;
		done = poll_at_least(PROCESSED_SQL, "pgr", NULL, target, 180000);
		if (!strcmp(how[i], "restart")) {
			T_EQ_INT(pg_ctl("restart"), 0);
		} else {
			T_EQ_INT(pg_ctl("stop"), 0);
			t_sleep_ms(8000);
			T_EQ_INT(pg_ctl("start"), 0);
		}
		back_ms = t_now_ms();
		db_ok();
		/* Resumed: the first outcome written after the server started,
		 * on the server's own clock. */
		T_CHECK(poll_at_least("SELECT count(*) FROM workout_sync_queue WHERE provider = $1"
		                      " AND processed_at >= pg_postmaster_start_time()", "pgr", NULL, 1,
		                      30000) >= 1);
		resumed_ms = qint("SELECT ceil(1000 * extract(epoch FROM min(processed_at)"
		                  " - pg_postmaster_start_time()))::bigint FROM workout_sync_queue"
		                  " WHERE provider = $1 AND processed_at >= pg_postmaster_start_time()",
		                  "pgr", NULL);
		printf("  %s %d at %lld of %d processed: outcomes written again %lld ms after the "
		       "server started (test saw it back %lld ms ago)\n", how[i], i + 1, done, N,
		       resumed_ms, t_now_ms() - back_ms);
		T_CHECK(done < N);
		T_CHECK(resumed_ms >= 0 && resumed_ms <= 3000);
		T_CHECK(t_running(n.pid));
	}
	T_EQ_INT(poll_at_least(PROCESSED_SQL, "pgr", NULL, N, 180000), N);
	T_CHECK(t_running(n.pid));
	T_EQ_INT(stop(&n), 0);
	T_EQ_INT(not_done("pgr"), 0);
	T_EQ_INT(failed_entries("pgr"), 0);
	T_EQ_INT(links("pgr"), N);
	T_EQ_INT(wahoo_count("plans"), N);
	T_EQ_INT(wahoo_count("duplicate_plans"), 0);
	T_EQ_INT(links_to_real_plans("pgr"), N);
	log = t_read_file(n.log);
	T_CONTAINS(log, "reconnecting"); /* the restarts were felt */
	printf("  outcomes held across an outage: %s\n",
	       strstr(log, "after reconnecting") ? "yes" : "none this run");
	free(log);
	if (t_case_failed())
		show_log(&n);
}

/* ---- 3. a crash-looping entry --------------------------------------------------- */

/* Restart wsyncd after each crash (as systemd's Restart=on-failure would)
 * until `entry` is processed; returns the number of crashes. */
static int run_until_processed(node *n, const char *entry, int max_runs)
{
	int crashes = 0;
	for (int run = 0; run < max_runs; run++) {
		long long until = t_now_ms() + 60000;
		spawn(n);
		for (;;) {
			int rc = t_wait_exit(n->pid, 100);
			if (rc >= 0) {
				T_EQ_INT(rc, 128 + SIGSEGV);
				n->pid = 0;
				crashes++;
				break;
			}
			if (qint("SELECT count(*) FROM workout_sync_queue WHERE id = $1::uuid"
			         " AND processed_at IS NOT NULL", entry, NULL) == 1)
				return crashes;
			if (t_now_ms() > until) {
				t_fail(__FILE__, __LINE__, "neither crashed nor finished in 60 s");
				return crashes;
			}
		}
	}
	return crashes;
}

static void crashloop(const char *tag, int workers)
{
	enum { BEFORE = 10, AFTER = 30, MATES = 20 };
	node n;
	char engine[200], prov[32], mate[32], *u, *w, *q, *msg;
	int crashes;

	snprintf(engine, sizeof engine, "workers = %d\nbatch_size = 100\nlease_seconds = 3\n",
	         workers);
	snprintf(prov, sizeof prov, "%s", tag);
	snprintf(mate, sizeof mate, "%s_mate", tag);
	/* In-process: the crash is wsyncd's (isolated plugins: test_isolation.c). */
	plugins_ini = "isolate = false\n";
	make_node(&n, tag, engine);
	plugins_ini = "";
	scripted_instance(&n, prov, "delay_ms = 30");
	scripted_instance(&n, mate, "delay_ms = 30");
	/* Innocent entries of the same provider before and after the crashing
	 * one (one batch), and a healthy provider's entries beside them. */
	make_creates(prov, 5, BEFORE, "answer=ok");
	u = t_query_str(db, "SELECT user_id::text FROM provider_tokens WHERE provider = $1 LIMIT 1",
	                1, (const char *[]){prov});
	w = t_query_str(db, "INSERT INTO workouts (user_id, name, description, workout_text)"
	                    " VALUES ($1, 'crasher', 'answer=crash', '- 10m 70%') RETURNING id::text",
	                1, (const char *[]){u});
	q = t_query_str(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id,"
	                    " operation, provider) VALUES ($1, 'workout', $2, 'create', $3)"
	                    " RETURNING id::text", 3, (const char *[]){u, w, prov});
	make_creates(prov, 5, AFTER, "answer=ok");
	make_creates(mate, 5, MATES, "answer=ok");

	crashes = run_until_processed(&n, q, 8);
	/* The last run drains the rest. */
	T_EQ_INT(poll_at_least(PROCESSED_SQL, prov, NULL, BEFORE + AFTER + 1, 60000),
	         BEFORE + AFTER + 1);
	T_EQ_INT(poll_at_least(PROCESSED_SQL, mate, NULL, MATES, 60000), MATES);
	T_CHECK(t_running(n.pid));
	T_EQ_INT(stop(&n), 0);
	printf("  %d call threads: %d crashes before the entry was abandoned\n", workers, crashes);
	T_EQ_INT(crashes, 3);
	T_CHECK(t_file_contains(n.log, "fatal signal 11 inside plugin scripted"));
	/* That entry, and only it, failed: abandoned, naming the plugin, the
	 * provider and the operation. */
	msg = t_query_str(db, "SELECT error_type || ': ' || error_message FROM workout_sync_queue"
	                      " WHERE id = $1::uuid", 1, (const char *[]){q});
	T_CONTAINS(msg, "unexpected_error: abandoned");
	T_CONTAINS(msg, "plugin scripted");
	T_CONTAINS(msg, prov);
	T_CONTAINS(msg, "create workout");
	free(msg);
	/* Its batch-mates all succeeded. */
	T_EQ_INT(failed_entries(prov), 1);
	T_EQ_INT(not_done(prov), 1);
	T_EQ_INT(links(prov), BEFORE + AFTER);
	T_EQ_INT(not_done(mate), 0);
	T_EQ_INT(links(mate), MATES);
	/* A crash costs an attempt only to the calls it cut short: with one
	 * call thread, the crashing entry's alone.  With more, a batch-mate
	 * running (or waiting for its commit) at a crash loses one, but an
	 * entry cut short twice runs alone next time, so no innocent entry
	 * gets near the 3 that abandon: each took at most 2 extra attempts. */
	{
		const char *p[3] = {prov, mate, q};
		long long extra = t_query_int(db, "SELECT coalesce(sum(attempts - 1), 0) FROM"
		                                  " workout_sync_queue WHERE provider IN ($1, $2)"
		                                  " AND id <> $3::uuid", 3, p);
		printf("  extra attempts of innocent entries (cut short by a crash): %lld\n", extra);
		T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE provider"
		                         " IN ($1, $2) AND id <> $3::uuid AND (attempts < 1 OR"
		                         " attempts > $4::int)", 4,
		                     (const char *[]){prov, mate, q, workers == 1 ? "1" : "3"}), 0);
		if (workers == 1)
			T_EQ_INT(extra, 0);
	}
	if (t_case_failed())
		show_log(&n);
	free(u), free(w), free(q);
}

static void test_crashloop(void)
{
	t_case("crashloop: one entry crashes wsyncd; restarted until it is abandoned (1 call thread)");
	crashloop("crash1", 1);
	t_case("crashloop: the same with 4 call threads (batch-mates in flight at each crash)");
	crashloop("crash4", 4);
}

/* ---- 4. a call longer than lease_seconds, two daemons ----------------------------- */

static void test_long_call(void)
{
	node a, b;
	char *w;
	long long t0, took;

	t_case("longcall: an 8 s call with lease_seconds = 3, two wsyncd on one database");
	sandbox_fresh();
	make_node(&a, "long-a", "workers = 2\nbatch_size = 10\nlease_seconds = 3\n");
	make_node(&b, "long-b", "workers = 2\nbatch_size = 10\nlease_seconds = 3\n");
	wahoo_instance(&a, "longcall");
	wahoo_instance(&b, "longcall");
	/* The create is acted on at once and answered after 8 s. */
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"action\":\"slow\","
	              "\"delay_ms\":8000,\"count\":1}");
	make_creates("longcall", 1, 1, NULL);
	w = t_query_str(db, "SELECT entity_id::text FROM workout_sync_queue WHERE provider ="
	                    " 'longcall'", 0, NULL);
	t0 = t_now_ms();
	spawn(&a);
	spawn(&b);
	T_EQ_INT(poll_at_least(PROCESSED_SQL, "longcall", NULL, 1, 60000), 1);
	took = t_now_ms() - t0;
	printf("  processed after %lld ms\n", took);
	T_CHECK(took >= 8000); /* the call really outlived the lease */
	/* Both nodes stayed up and could claim all along. */
	T_CHECK(t_running(a.pid));
	T_CHECK(t_running(b.pid));
	t_sleep_ms(1000);
	T_EQ_INT(stop(&a), 0);
	T_EQ_INT(stop(&b), 0);
	T_EQ_INT(not_done("longcall"), 0);
	T_EQ_INT(qint("SELECT attempts FROM workout_sync_queue WHERE provider = 'longcall'", NULL,
	              NULL), 1);
	/* One create and one call of it: no second claim's lookup or create. */
	T_EQ_INT(requests("POST", "/v1/plans", NULL), 1);
	T_EQ_INT(requests("GET", "/v1/plans", NULL), 0);
	T_EQ_INT(requests("PUT", "/v1/plans", NULL), 0);
	T_EQ_INT(wahoo_count("plans"), 1);
	T_EQ_INT(wahoo_count("duplicate_plans"), 0);
	T_EQ_INT(links_to_real_plans("longcall"), 1);
	if (t_case_failed()) {
		show_log(&a);
		show_log(&b);
	}
	free(w);
}

/* ---- 5. a 2xx answer to a create without a usable id ------------------------------ */

static void test_no_id(void)
{
	enum { N = 3 };
	node n;
	char **ids;
	PGresult *r;

	t_case("noid: 2xx create answers without a usable id (HTML, truncated, JSON without id)");
	sandbox_fresh();
	/* Each fault acts on the POST (the plan is created) and answers one
	 * bad 2xx; one rule per create, in the order the POSTs come. */
	e2e_fault(sb, "[{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":201,"
	              "\"headers\":{\"Content-Type\":\"text/html\"},"
	              "\"body\":\"<html><body>Created</body></html>\",\"process\":true},"
	              "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"action\":\"truncate\","
	              "\"process\":true},"
	              "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":201,"
	              "\"body\":{\"name\":\"no id here\"},\"process\":true}]");
	make_node(&n, "noid", "workers = 1\nbatch_size = 10\nbackoff = 1s\n");
	wahoo_instance(&n, "noid");
	make_creates("noid", 1, N, NULL);
	spawn(&n);
	T_EQ_INT(poll_at_least("SELECT count(*) FROM workout_sync_queue WHERE provider = $1"
	                       " AND processed_at IS NOT NULL AND error_type IS NULL", "noid", NULL,
	                       N, 60000), N);
	T_EQ_INT(stop(&n), 0);
	T_EQ_INT(not_done("noid"), 0);
	/* Each create had one ambiguous answer, then a retry that looked the
	 * plan up and adopted it. */
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_queue WHERE provider = 'noid'"
	              " AND retry_count = 1 AND attempts = 2", NULL, NULL), N);
	T_EQ_INT(wahoo_count("plans"), N);
	T_EQ_INT(wahoo_count("duplicate_plans"), 0);
	T_EQ_INT(links_to_real_plans("noid"), N);
	T_EQ_INT(requests("POST", "/v1/plans", NULL), N); /* never a second POST */
	r = PQexec(db, "SELECT entity_id::text FROM workout_sync_queue WHERE provider = 'noid'");
	ids = calloc(N, sizeof *ids);
	for (int i = 0; i < PQntuples(r) && i < N; i++)
		ids[i] = strdup(PQgetvalue(r, i, 0));
	PQclear(r);
	for (int i = 0; i < N; i++) {
		T_EQ_INT(requests("POST", "/v1/plans", ids[i]), 1);
		T_EQ_INT(requests("GET", "/v1/plans", ids[i]), 1);
		free(ids[i]);
	}
	free(ids);
	if (t_case_failed())
		show_log(&n);
}

int main(int argc, char **argv)
{
	const char *seed_env = getenv("WSYNC_TEST_SEED");
	unsigned seed;
	char src[700];

	conninfo = getenv("WSYNC_TEST_CONNINFO");
	wsyncd = getenv("WSYNC_WSYNCD");
	if (argc < 3 || !conninfo || !wsyncd) {
		fprintf(stderr, "usage: pg_harness.sh %s WAHOO_SO FIXTURE_DIR (env from meson)\n",
		        argv[0]);
		return 2;
	}
	fixture_dir = argv[2];
	signal(SIGPIPE, SIG_IGN);
	seed = seed_env && *seed_env ? (unsigned)strtoul(seed_env, NULL, 10)
	                             : (unsigned)time(NULL) ^ (unsigned)getpid();
	sb = e2e_start(0);
	db = sb->db;
	t_exec(db, "SET wsync.triggers = off", 0, NULL); /* the tests queue the rows */
	e2e_add_plugin(sb, argv[1]);
	snprintf(src, sizeof src, "%s/scripted.so", fixture_dir);
	e2e_add_plugin(sb, src);
	snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", sb->dir);

	/* An optional third argument picks cases by name, e.g. "kill9,noid". */
#define WANT(name) (argc < 4 || strstr(argv[3], name))
	if (WANT("noid"))
		test_no_id();
	if (WANT("longcall"))
		test_long_call();
	if (WANT("crashloop"))
		test_crashloop();
	if (WANT("kill9"))
		test_kill9(seed);
	if (WANT("pgrestart"))
		test_pg_restart(seed);

	t_case("done");
	e2e_stop(sb);
	return t_done();
}
