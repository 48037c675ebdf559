/*
 * The provider lifecycle of migrations/0007 against a real PostgreSQL:
 * backfill queues exactly what a provider never had, once; node
 * registration and the operator's override decide sync_providers.enabled
 * (and with it what the triggers queue); wsync_provider_state says why a
 * provider is not served; the claim (core/daemon/store.c) runs a workout's
 * delete after its calendar entries' deletes, and reads only its
 * candidates' entries however long the history; fixing a workout's text
 * re-queues its scheduled workouts failed with invalid_workout.
 */
#include "sqltest.h"

#include "daemon/store.h"

#define U2 "22222222-2222-2222-2222-222222222222"

static long long qint(PGconn *db, const char *sql, const char *a)
{
	const char *p[1] = {a};
	return t_query_int(db, sql, a ? 1 : 0, p);
}

static char *new_workout(PGconn *db, const char *user)
{
	const char *p[1] = {user};
	return t_query_str(db, "INSERT INTO workouts (user_id, name, workout_text)"
	                       " VALUES ($1::uuid, 'w', '- 10m 50%') RETURNING id", 1, p);
}

static char *new_scheduled(PGconn *db, const char *workout_id, const char *days_from_today)
{
	const char *p[2] = {workout_id, days_from_today};
	return t_query_str(db, "INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)"
	                       " SELECT user_id, id, (now() AT TIME ZONE 'UTC')::date + $2::int"
	                       " FROM workouts WHERE id = $1::uuid RETURNING id", 2, p);
}

/* Run every backfill batch of one type; returns the entries queued. */
static long long backfill(PGconn *db, const char *provider, const char *type,
                          const char *since, const char *users, int limit)
{
	char lim[16], after[40] = "";
	const char *p[6] = {provider, type, NULL, lim, since, users};
	long long queued = 0;
	snprintf(lim, sizeof lim, "%d", limit);
	for (int guard = 0; guard < 1000; guard++) {
		PGresult *r = PQexecParams(db, "SELECT queued, last_id FROM wsync_backfill($1, $2,"
		                               " $3::uuid, $4::int, $5::timestamptz, $6::uuid[])",
		                           6, NULL, p, NULL, NULL, 0);
		T_EQ_INT(PQresultStatus(r), PGRES_TUPLES_OK);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			fprintf(stderr, "%s", PQerrorMessage(db));
			PQclear(r);
			return -1;
		}
		queued += atoll(PQgetvalue(r, 0, 0));
		if (PQgetisnull(r, 0, 1)) {
			PQclear(r);
			return queued;
		}
		snprintf(after, sizeof after, "%s", PQgetvalue(r, 0, 1));
		p[2] = after;
		PQclear(r);
	}
	return -1;
}

static void test_backfill(PGconn *db)
{
	char *w[5], *s_future, *s_past, *s_today, *w_off;
	/* A provider added later: the existing rows were written before it. */
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('late', 'late')", 0, NULL);
	for (int i = 0; i < 5; i++)
		w[i] = new_workout(db, U);
	s_future = new_scheduled(db, w[0], "3");
	s_today = new_scheduled(db, w[1], "0");
	s_past = new_scheduled(db, w[2], "-1");
	/* A user with uploads off on it gets nothing. */
	w_off = new_workout(db, U2);
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, upload_workouts_enabled)"
	           " VALUES ('" U2 "', 'late', false)", 0, NULL);
	T_EQ_INT(qint(db, "SELECT count(*) FROM workout_sync_queue WHERE provider = 'late'", NULL),
	         0);
	/* Not connected yet: nothing. */
	T_EQ_INT(backfill(db, "late", "workout", NULL, NULL, 2), 0);

	t_exec(db, "INSERT INTO provider_tokens (user_id, provider) VALUES ('" U "', 'late')", 0,
	       NULL);
	/* One workout already linked there, one already pending: skipped. */
	{
		const char *p[2] = {w[3], w[4]};
		t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
		           " provider_entity_id) VALUES ('late', 'workout', $1::uuid, '" U "', 'L3')",
		       1, p);
		t_exec(db, "SELECT wsync_enqueue('" U "', 'workout', $1::uuid, 'update', 'late')", 1,
		       p + 1);
	}
	long long before = qint(db, "SELECT count(*) FROM workout_sync_queue", NULL);
	long long max_w_seq;
	/* Batches of 2: several transactions' worth, nothing lost between. */
	T_EQ_INT(backfill(db, "late", "workout", NULL, NULL, 2), 3);
	max_w_seq = qint(db, "SELECT max(seq) FROM workout_sync_queue", NULL);
	T_EQ_INT(backfill(db, "late", "workout_scheduled", NULL, NULL, 2), 2);
	T_EQ_INT(qint(db, "SELECT count(*) FROM workout_sync_queue", NULL) - before, 5);
	for (int i = 0; i < 3; i++)
		T_OPS(db, w[i], "late", "create");
	T_OPS(db, w[3], "late", "");
	T_OPS(db, w[4], "late", "create"); /* the pending one, not a second */
	T_OPS(db, s_future, "late", "create");
	T_OPS(db, s_today, "late", "create");
	T_OPS(db, s_past, "late", "");     /* past sessions are history */
	T_OPS(db, w_off, "late", "");
	/* Other providers untouched. */
	T_OPS(db, w[0], "garmin", "create");
	/* Workouts' entries are older than their schedules'. */
	{
		char seq[24];
		const char *p[1] = {seq};
		snprintf(seq, sizeof seq, "%lld", max_w_seq);
		T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE provider ="
		                         " 'late' AND entity_type = 'workout_scheduled'"
		                         " AND seq <= $1::bigint", 1, p), 0);
	}
	/* Twice: nothing new, even after the first entries were processed
	 * (they are linked now) or failed while still pending. */
	T_EQ_INT(backfill(db, "late", "workout", NULL, NULL, 2), 0);
	T_EQ_INT(backfill(db, "late", "workout_scheduled", NULL, NULL, 2), 0);
	sqlt_sync_done(db, "workout", w[0], "late");
	T_EQ_INT(backfill(db, "late", "workout", NULL, NULL, 500), 0);
	T_EQ_INT(qint(db, "SELECT count(*) FROM workout_sync_queue", NULL) - before, 5);

	/* --users and --since narrow it. */
	{
		char *w_new = new_workout(db, U), *w_old = new_workout(db, U);
		const char *p[1] = {w_old};
		t_exec(db, "UPDATE workouts SET created_at = now() - interval '10 days',"
		           " updated_at = now() - interval '10 days' WHERE id = $1::uuid", 1, p);
		t_exec(db, "DELETE FROM workout_sync_queue WHERE provider = 'late'"
		           " AND entity_id IN ($1::uuid)", 1, p);
		T_EQ_INT(backfill(db, "late", "workout", NULL, "{" U2 "}", 500), 0);
		T_EQ_INT(backfill(db, "late", "workout", "epoch", "{" U2 "}", 500), 0);
		/* w_new was queued by its insert trigger (late is enabled now). */
		T_OPS(db, w_new, "late", "create");
		char *yesterday = t_query_str(db, "SELECT (now() - interval '1 day')::text", 0, NULL);
		T_EQ_INT(backfill(db, "late", "workout", yesterday, "{" U "}", 500), 0);
		free(yesterday);
		T_EQ_INT(backfill(db, "late", "workout", NULL, "{" U "}", 500), 1);
		T_OPS(db, w_old, "late", "create");
		free(w_new), free(w_old);
	}
	/* Bad arguments name themselves. */
	{
		char msg[256], *st;
		st = sqlt_sqlstate(db, "SELECT * FROM wsync_backfill('nope', 'workout')", 0, NULL, msg,
		                   sizeof msg);
		T_EQ_STR(st, "22023");
		T_CONTAINS(msg, "unknown provider \"nope\"");
		free(st);
		st = sqlt_sqlstate(db, "SELECT * FROM wsync_backfill('late', 'plan')", 0, NULL, msg,
		                   sizeof msg);
		T_EQ_STR(st, "22023");
		free(st);
	}
	for (int i = 0; i < 5; i++)
		free(w[i]);
	free(s_future), free(s_past), free(s_today), free(w_off);
}

/* Register as node `node` with "name:enabled" items; returns the note of
 * `provider` ("" when none). */
static char *reg(PGconn *db, const char *node, const char *names, const char *enabled,
                 const char *provider)
{
	const char *p[4] = {node, names, enabled, provider};
	return t_query_str(db, "SELECT coalesce(note, '') FROM wsync_providers_register($1,"
	                       " $2::text[], $2::text[], $3::boolean[]) WHERE provider_name = $4",
	                   4, p);
}

static char *reason(PGconn *db, const char *provider)
{
	const char *p[1] = {provider};
	return t_query_str(db, "SELECT coalesce(reason, '') FROM wsync_provider_state"
	                       " WHERE provider = $1", 1, p);
}

#define NOTE(expr, want)                        \
	do {                                    \
		char *n_ = (expr);              \
		T_CONTAINS(n_, want);           \
		free(n_);                       \
	} while (0)

static long long enabled_flag(PGconn *db, const char *provider)
{
	return qint(db, "SELECT enabled::int FROM sync_providers WHERE name = $1", provider);
}

static void test_nodes_and_override(PGconn *db)
{
	char *w;
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider) VALUES ('" U "', 'multi')", 0,
	       NULL);
	/* Never registered: no daemon serves it, although it is a provider. */
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('multi', 'x')", 0, NULL);
	NOTE(reason(db, "multi"), "no wsyncd has registered it");

	/* Two nodes load it. */
	NOTE(reg(db, "a:/etc/w.ini", "{multi}", "{t}", "multi"), "");
	NOTE(reg(db, "b:/etc/w.ini", "{multi}", "{t}", "multi"), "");
	T_EQ_INT(enabled_flag(db, "multi"), 1);
	NOTE(reason(db, "multi"), "");
	/* Node a loses the INI: b still serves it, queueing goes on. */
	NOTE(reg(db, "a:/etc/w.ini", "{}", "{}", "multi"), "still queued for, enabled on b:/etc/w.ini");
	T_EQ_INT(enabled_flag(db, "multi"), 1);
	w = new_workout(db, U);
	T_OPS(db, w, "multi", "create");
	free(w);
	/* b too: nothing is queued, and both say so. */
	NOTE(reg(db, "b:/etc/w.ini", "{}", "{}", "multi"), "nothing is queued for it any more");
	T_EQ_INT(enabled_flag(db, "multi"), 0);
	NOTE(reason(db, "multi"), "no wsyncd serves it");
	w = new_workout(db, U);
	T_OPS(db, w, "multi", "");
	free(w);
	/* A later reload of b does not repeat old news. */
	T_EQ_INT(qint(db, "SELECT count(*) FROM wsync_providers_register('b:/etc/w.ini', '{}',"
	                  " '{}', '{}') WHERE provider_name = 'multi'", NULL), 0);
	/* enabled = false in b's INI: still not served. */
	NOTE(reg(db, "b:/etc/w.ini", "{multi}", "{f}", "multi"), "nothing is queued");
	T_EQ_INT(enabled_flag(db, "multi"), 0);
	/* A refused plugin keeps its row: queueing does not stop. */
	NOTE(reg(db, "b:/etc/w.ini", "{multi}", "{t}", "multi"), "");
	T_EQ_INT(qint(db, "SELECT count(*) FROM wsync_providers_register('b:/etc/w.ini', '{}',"
	                  " '{}', '{}', '{multi}') WHERE queued", NULL), 1);
	T_EQ_INT(enabled_flag(db, "multi"), 1);

	/* The operator's override: stops queueing, survives a reload. */
	NOTE(t_query_str(db, "SELECT note FROM wsync_provider_set_disabled('multi', true)", 0,
	                 NULL), "disabled by an operator");
	T_EQ_INT(enabled_flag(db, "multi"), 0);
	NOTE(reg(db, "b:/etc/w.ini", "{multi}", "{t}", "multi"), "disabled by an operator");
	T_EQ_INT(enabled_flag(db, "multi"), 0);
	w = new_workout(db, U);
	T_OPS(db, w, "multi", "");
	NOTE(reason(db, "multi"), "disabled by an operator");
	/* Enable: queued again. */
	T_EQ_INT(qint(db, "SELECT queued::int FROM wsync_provider_set_disabled('multi', false)",
	              NULL), 1);
	T_EQ_INT(enabled_flag(db, "multi"), 1);
	NOTE(reason(db, "multi"), "");
	{
		const char *p[1] = {w};
		t_exec(db, "UPDATE workouts SET name = 'again' WHERE id = $1::uuid", 1, p);
	}
	T_OPS(db, w, "multi", "create");
	free(w);
	/* A provider no node registered follows the override directly. */
	T_EQ_INT(enabled_flag(db, "coros"), 0);
	T_EQ_INT(qint(db, "SELECT queued::int FROM wsync_provider_set_disabled('coros', false)",
	              NULL), 1);
	T_EQ_INT(qint(db, "SELECT queued::int FROM wsync_provider_set_disabled('coros', true)",
	              NULL), 0);
}

/* Claim what is due for wahoo; returns "type:op,..." in claim order. */
static char *claim(PGconn *db)
{
	const char *prov[1] = {"wahoo"};
	wsync_job **jobs = NULL;
	int n = wsync_store_claim(db, "test:1:w0", prov, 1, 50, 60, NULL, 0, &jobs);
	char *out = calloc(1, 2048);
	if (n < 0)
		fprintf(stderr, "claim: %s", PQerrorMessage(db));
	T_CHECK(n >= 0);
	for (int i = 0; i < n; i++) {
		snprintf(out + strlen(out), 2048 - strlen(out), "%s%s:%s", i ? "," : "",
		         jobs[i]->entry.entity_type, jobs[i]->entry.operation);
		wsync_job_free(jobs[i]);
	}
	free(jobs);
	return out;
}

static void test_delete_order(PGconn *db)
{
	char *w = new_workout(db, U), *s = new_scheduled(db, w, "2"), *got;
	const char *p[1] = {w};
	/* Both on wahoo, nothing else pending. */
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second' WHERE processed_at IS NULL", 0, NULL);
	sqlt_sync_done(db, "workout", w, "wahoo");
	sqlt_sync_done(db, "workout_scheduled", s, "wahoo");
	/* ON DELETE CASCADE queues the workout's delete first. */
	t_exec(db, "DELETE FROM workouts WHERE id = $1::uuid", 1, p);
	T_OPS(db, w, "wahoo", "delete");
	T_OPS(db, s, "wahoo", "delete");
	/* Only the calendar entry's delete can run. */
	got = claim(db);
	T_EQ_STR(got, "workout_scheduled:delete");
	free(got);
	/* It fails and waits for a retry: the workout's delete still waits. */
	t_exec(db, "UPDATE workout_sync_queue SET error_type = 'provider_error', retry_count = 1,"
	           " next_retry_at = now() + interval '1 hour',"
	           " locked_until = now() - interval '1 second'"
	           " WHERE entity_type = 'workout_scheduled' AND processed_at IS NULL", 0, NULL);
	got = claim(db);
	T_EQ_STR(got, "");
	free(got);
	/* Done: now the workout's delete runs. */
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(), error_type = NULL"
	           " WHERE entity_type = 'workout_scheduled' AND processed_at IS NULL", 0, NULL);
	got = claim(db);
	T_EQ_STR(got, "workout:delete");
	free(got);
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now() WHERE processed_at IS NULL",
	       0, NULL);
	/* An application that deletes the schedule itself, then the workout,
	 * gets the same order; a workout delete with no schedule pending runs
	 * at once. */
	free(w), free(s);
	w = new_workout(db, U);
	p[0] = w;
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second' WHERE processed_at IS NULL", 0, NULL);
	sqlt_sync_done(db, "workout", w, "wahoo");
	t_exec(db, "DELETE FROM workouts WHERE id = $1::uuid", 1, p);
	got = claim(db);
	T_EQ_STR(got, "workout:delete");
	free(got);
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now() WHERE processed_at IS NULL",
	       0, NULL);
	free(w);
}

static void test_invalid_workout_requeue(PGconn *db)
{
	char *w = new_workout(db, U), *s = new_scheduled(db, w, "1"), *s_past, *s_ok;
	const char *p[1] = {w};
	s_past = new_scheduled(db, w, "-2");
	s_ok = new_scheduled(db, w, "5");
	/* The workout's and the schedules' creates failed for good on wahoo with
	 * invalid_workout, except s_ok, which is synced. */
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second', error_type = 'invalid_workout',"
	           " error_message = 'line 1' WHERE processed_at IS NULL AND provider = 'wahoo'",
	       0, NULL);
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second' WHERE processed_at IS NULL", 0, NULL);
	{
		const char *q[1] = {s_ok};
		t_exec(db, "UPDATE workout_sync_queue SET error_type = NULL WHERE entity_id = $1::uuid",
		       1, q);
		sqlt_sync_done(db, "workout_scheduled", s_ok, "wahoo");
	}
	/* A rename is not a fix of the text: only the usual updates. */
	t_exec(db, "UPDATE workouts SET name = 'renamed' WHERE id = $1::uuid", 1, p);
	T_OPS(db, s, "wahoo", "");
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second', error_type = 'invalid_workout'"
	           " WHERE processed_at IS NULL AND provider = 'wahoo' AND entity_type = 'workout'",
	       0, NULL);
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second' WHERE processed_at IS NULL", 0, NULL);
	/* The text is fixed: the workout and its failed upcoming schedule are
	 * queued (a create: the provider never had it), the workout first. */
	t_exec(db, "UPDATE workouts SET workout_text = '- 20m 60%' WHERE id = $1::uuid", 1, p);
	T_OPS(db, w, "wahoo", "create");
	T_OPS(db, s, "wahoo", "create");
	T_OPS(db, s_past, "wahoo", "");   /* history */
	T_OPS(db, s_ok, "wahoo", "update"); /* the usual resync of a linked one */
	T_OPS(db, s, "garmin", "");       /* garmin did not fail it */
	{
		const char *q[2] = {w, s};
		T_EQ_INT(t_query_int(db, "SELECT (a.seq < b.seq)::int FROM workout_sync_queue a,"
		                         " workout_sync_queue b WHERE a.entity_id = $1::uuid"
		                         " AND b.entity_id = $2::uuid AND a.provider = 'wahoo'"
		                         " AND b.provider = 'wahoo' AND a.processed_at IS NULL"
		                         " AND b.processed_at IS NULL", 2, q), 1);
	}
	/* Once only: the new entry supersedes the failure. */
	t_exec(db, "UPDATE workouts SET workout_text = '- 25m 60%' WHERE id = $1::uuid", 1, p);
	T_OPS(db, s, "wahoo", "create");
	/* With the triggers off, nothing. */
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second', error_type = 'invalid_workout'"
	           " WHERE processed_at IS NULL", 0, NULL);
	t_exec(db, "SET wsync.triggers = off", 0, NULL);
	t_exec(db, "UPDATE workouts SET workout_text = '- 30m 60%' WHERE id = $1::uuid", 1, p);
	T_OPS(db, s, "wahoo", "");
	t_exec(db, "RESET wsync.triggers", 0, NULL);
	free(w), free(s), free(s_past), free(s_ok);
}

/* Many workouts fixed in one statement (migration 0011's set form): each
 * one's failed upcoming schedule is queued, once, and the others' not. */
static void test_invalid_workout_requeue_bulk(PGconn *db)
{
	enum { N = 3 };
	char *w[N], *s[N];
	for (int i = 0; i < N; i++) {
		w[i] = new_workout(db, U);
		s[i] = new_scheduled(db, w[i], "2");
	}
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second', error_type = 'invalid_workout'"
	           " WHERE processed_at IS NULL AND provider = 'wahoo'", 0, NULL);
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second' WHERE processed_at IS NULL", 0, NULL);
	/* The first two texts change in one statement, the third's does not. */
	{
		const char *p[3] = {w[0], w[1], w[2]};
		t_exec(db, "UPDATE workouts SET workout_text = CASE WHEN id = $3::uuid"
		           " THEN workout_text ELSE '- 15m 65%' END, name = 'bulk'"
		           " WHERE id IN ($1::uuid, $2::uuid, $3::uuid)", 3, p);
	}
	T_OPS(db, s[0], "wahoo", "create");
	T_OPS(db, s[1], "wahoo", "create");
	T_OPS(db, s[2], "wahoo", "");
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second' WHERE processed_at IS NULL", 0, NULL);
	for (int i = 0; i < N; i++)
		free(w[i]), free(s[i]);
}

/* Buffers one claim of 100 (wsyncd's prepared statement, leases rolled
 * back) reads, from EXPLAIN (ANALYZE, BUFFERS); *jit set when PostgreSQL
 * compiled it. */
static long long claim_buffers(PGconn *db, int *jit)
{
	char *plan, *hit;
	long long n = -1;
	t_exec(db, "BEGIN", 0, NULL);
	plan = t_query_str(db, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, FORMAT JSON)"
	                       " EXECUTE wsync_claim('test:1:0', '{wahoo}', 100, 30, '{}', 132)",
	                   0, NULL);
	t_exec(db, "ROLLBACK", 0, NULL);
	/* The top node's counters come first; they include its children's. */
	hit = plan ? strstr(plan, "\"Shared Hit Blocks\": ") : NULL;
	if (hit) {
		const char *read = strstr(plan, "\"Shared Read Blocks\": ");
		n = atoll(hit + strlen("\"Shared Hit Blocks\": "));
		if (read)
			n += atoll(read + strlen("\"Shared Read Blocks\": "));
	}
	*jit = plan && strstr(plan, "\"JIT\"") != NULL;
	free(plan);
	return n;
}

/* A claim reads its candidates' own entries, whatever else the queue holds:
 * a long history of workouts and of scheduled workouts, thousands of
 * scheduled workouts and of pending entries not yet due.  (A plan that
 * hashed or scanned any of those per claim read them all each time.) */
static void test_claim_reads_by_key(PGconn *db)
{
	long long before, after;
	int jit = 0;
	t_exec(db, "SET wsync.triggers = off", 0, NULL);
	t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           " provider) SELECT '" U "', 'workout', gen_random_uuid(), 'create', 'wahoo'"
	           " FROM generate_series(1, 400)", 0, NULL);
	t_exec(db, "ANALYZE", 0, NULL);
	before = claim_buffers(db, &jit);
	T_CHECK(before > 0);
	T_EQ_INT(jit, 0);

	t_exec(db, "INSERT INTO workouts (id, user_id, name) SELECT md5('h' || i)::uuid, '" U "', 'h'"
	           " FROM generate_series(1, 5000) i", 0, NULL);
	t_exec(db, "INSERT INTO workouts_scheduled (id, user_id, workout_id, scheduled_date)"
	           " SELECT md5('s' || i)::uuid, '" U "', md5('h' || (i % 5000 + 1))::uuid,"
	           " current_date + 1 FROM generate_series(1, 20000) i", 0, NULL);
	t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           " provider, processed_at, locked_until, attempts)"
	           " SELECT '" U "', CASE WHEN i % 2 = 0 THEN 'workout' ELSE 'workout_scheduled' END,"
	           " gen_random_uuid(), 'create', 'wahoo', now(), now(), 1"
	           " FROM generate_series(1, 60000) i", 0, NULL);
	t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           " provider, next_retry_at, locked_until)"
	           " SELECT '" U "', 'workout_scheduled', md5('s' || i)::uuid, 'update', 'wahoo',"
	           " now() + interval '1 day', CASE WHEN i % 2 = 0 THEN now() + interval '1 hour' END"
	           " FROM generate_series(1, 20000) i", 0, NULL);
	t_exec(db, "ANALYZE", 0, NULL);
	t_exec(db, "RESET wsync.triggers", 0, NULL);
	after = claim_buffers(db, &jit);
	if (after > 2 * before + 200)
		fprintf(stderr, "claim of 100: %lld buffers on a small queue, %lld with the history\n",
		        before, after);
	T_CHECK(after > 0 && after <= 2 * before + 200);
	T_EQ_INT(jit, 0);
	t_exec(db, "TRUNCATE workout_sync_queue", 0, NULL);
	t_exec(db, "DELETE FROM workouts WHERE name = 'h'", 0, NULL);
}

int main(void)
{
	PGconn *db = t_db();
	sqlt_setup(db);
	test_backfill(db);
	test_nodes_and_override(db);
	/* The claim runs as in wsyncd's claimer session (store.h). */
	T_CHECK(wsync_store_prepare(db, WSYNC_STORE_GENERIC_PLANS) == 0);
	test_delete_order(db);
	test_invalid_workout_requeue(db);
	test_invalid_workout_requeue_bulk(db);
	test_claim_reads_by_key(db);
	PQfinish(db);
	return t_done();
}
