/*
 * Multi-row statements on the entity tables (statement-level triggers of
 * migrations/0006_bulk_enqueue.sql):
 *   - the same statements against a database migrated up to 0005 (row-level
 *     triggers) and one with every migration (statement-level triggers of
 *     0006, the create fast path of 0014) leave the same queue, entity by
 *     entity and provider by provider, from 40 queue/link states per
 *     (entity, provider) and users with different providers: INSERT (re-
 *     inserts over pending entries), UPDATE of all or only some rows' text,
 *     DELETE, upsert, schedules re-queued by a workout update, cascades, and
 *     wsync_enqueue's return values;
 *   - a 3-row INSERT for two users, one NOTIFY per provider;
 *   - a worker claiming while a bulk DELETE cancels: every claimed create
 *     gets a delete behind it, nothing unclaimed survives;
 *   - bulk workout updates (re-queuing schedules) racing bulk schedule
 *     updates in opposite row orders: no deadlock;
 *   - the heartbeat's lease extension (0016) skips a row another
 *     transaction is writing instead of waiting for it (it waited, and so
 *     could deadlock with wsyncd's writer).
 */
#include "schemas.h"
#include "sqltest.h"
#include "ctl/migrate.h"

#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

/* A second user: tp and wahoo enabled, garmin connected with uploads off. */
#define U2 "22222222-2222-2222-2222-222222222222"

/* The fixture of sqltest.h plus U2, on a database migrated from `dir`. */
static void setup(PGconn *db, const char *dir)
{
	sqlt_migrate_dir(db, dir);
	t_exec(db,
		"INSERT INTO sync_providers (name, plugin, enabled) VALUES"
		" ('wahoo', 'wahoo', true), ('garmin', 'garmin', true), ('tp', 'trainingpeaks', true),"
		" ('coros', 'coros', false), ('suunto', 'suunto', true)", 0, NULL);
	t_exec(db,
		"INSERT INTO provider_tokens (user_id, provider, access_token,"
		" upload_workouts_enabled) VALUES"
		" ('" U "', 'wahoo', 'x', true), ('" U "', 'garmin', 'x', true),"
		" ('" U "', 'coros', 'x', true), ('" U "', 'suunto', 'x', false),"
		" ('" U2 "', 'tp', 'x', true), ('" U2 "', 'wahoo', 'x', true),"
		" ('" U2 "', 'garmin', 'x', false)", 0, NULL);
}

/* ---- entity states ----------------------------------------------------------- */

/*
 * Entities of set `set` (a letter): ids md5(set || i), user U for even i and
 * U2 for odd i.  Each (entity, provider) of the five providers gets state
 * s = (3i + 7k) % 40 (k the provider's index):
 *   s % 2        a link (provider id 'L-<set><i>-<provider>')
 *   s / 2 % 4    pending never-claimed entry: none, create, update, delete
 *                (a delete carries provider id 'H-<set><i>')
 *   s / 8 % 5    entry in flight: none, claimed create, claimed update,
 *                claimed delete, create failed once and waiting for its retry
 * The in-flight entry is queued first (older seq), as it would be.
 */
static const char STATE_SQL[] =
	"WITH e AS ("
	"  SELECT i, md5($1 || i)::uuid AS id,"
	"         CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid AS uid,"
	"         p.name AS prov, (3 * i + 7 * p.k) % 40 AS s"
	"    FROM generate_series(0, $2::int - 1) i"
	"    CROSS JOIN (VALUES (0, 'wahoo'), (1, 'garmin'), (2, 'tp'), (3, 'coros'),"
	"                       (4, 'suunto')) AS p(k, name)"
	"), links AS ("
	"  INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	"                                  provider_entity_id)"
	"  SELECT prov, $3, id, uid, 'L-' || $1 || i || '-' || prov FROM e WHERE s % 2 = 1"
	"), flight AS ("
	"  INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider,"
	"                                  locked_until, locked_by, attempts, error_type,"
	"                                  retry_count, next_retry_at)"
	"  SELECT uid, $3, id, (ARRAY['create', 'update', 'delete', 'create'])[s / 8 % 5],"
	"         prov,"
	"         CASE WHEN s / 8 % 5 = 4 THEN now() - interval '1 minute'"
	"              ELSE now() + interval '5 minutes' END,"
	"         'test:1:0', 1,"
	"         CASE WHEN s / 8 % 5 = 4 THEN 'provider_error' END,"
	"         CASE WHEN s / 8 % 5 = 4 THEN 1 ELSE 0 END,"
	"         now() + interval '5 minutes'"
	"    FROM e WHERE s / 8 % 5 > 0 ORDER BY i, prov"
	"  RETURNING 1"
	")"
	"SELECT count(*) FROM flight";
static const char PENDING_SQL[] =
	"INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider,"
	"                                provider_entity_id)"
	"SELECT CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid, $3, md5($1 || i)::uuid,"
	"       (ARRAY['create', 'update', 'delete'])[(3 * i + 7 * p.k) % 40 / 2 % 4],"
	"       p.name,"
	"       CASE WHEN (3 * i + 7 * p.k) % 40 / 2 % 4 = 3 THEN 'H-' || $1 || i END"
	"  FROM generate_series(0, $2::int - 1) i"
	"  CROSS JOIN (VALUES (0, 'wahoo'), (1, 'garmin'), (2, 'tp'), (3, 'coros'),"
	"                     (4, 'suunto')) AS p(k, name)"
	" WHERE (3 * i + 7 * p.k) % 40 / 2 % 4 > 0"
	" ORDER BY i, p.name";

/* Queue and link states for entities of `set` (see STATE_SQL), with the
 * triggers off; `exists` also inserts the workouts (name w<i>, description
 * the set letter). */
static void make_states(PGconn *db, const char *set, int n, const char *type, int exists)
{
	char ns[16];
	const char *p[3] = {set, ns, type};
	snprintf(ns, sizeof ns, "%d", n);
	t_exec(db, "SET wsync.triggers = off", 0, NULL);
	if (exists)
		t_exec(db, "INSERT INTO workouts (id, user_id, name, description, workout_text)"
		           " SELECT md5($1 || i)::uuid,"
		           " CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid,"
		           " 'w' || i, $1, '- 10m 50%' FROM generate_series(0, $2::int - 1) i",
		       2, p);
	t_exec(db, STATE_SQL, 3, p);
	t_exec(db, PENDING_SQL, 3, p);
	t_exec(db, "RESET wsync.triggers", 0, NULL);
}

/* The queue and links, one line per row, comparable across databases. */
static char *dump(PGconn *db)
{
	return t_query_str(db,
		"SELECT coalesce(string_agg(l, E'\\n' ORDER BY l), '') FROM ("
		" SELECT format('q %s %s %s %s %s pid=%s claimed=%s done=%s by=%s',"
		"   entity_type, entity_id, provider, user_id, operation,"
		"   coalesce(provider_entity_id, '-'), locked_until IS NOT NULL,"
		"   processed_at IS NOT NULL, coalesce(locked_by, '-'))"
		"   || ' n=' || row_number() OVER (PARTITION BY entity_type, entity_id, provider"
		"                                  ORDER BY seq) AS l"
		"   FROM workout_sync_queue"
		" UNION ALL"
		" SELECT format('l %s %s %s %s', entity_type, entity_id, provider, provider_entity_id)"
		"   FROM workout_sync_links) x", 0, NULL);
}

/* The first line where the two dumps differ, or NULL. */
static void expect_same(PGconn *old_db, PGconn *new_db, const char *stage)
{
	char *a = dump(old_db), *b = dump(new_db);
	if (a && b && strcmp(a, b)) {
		const char *x = a, *y = b;
		while (*x && *x == *y) {
			x++;
			y++;
		}
		while (x > a && x[-1] != '\n') {
			x--;
			y--;
		}
		t_fail(__FILE__, __LINE__, "%s: 0005 and the latest schema differ at\n  0005:   %.160s\n  latest: %.160s",
		       stage, x, y);
	}
	T_CHECK(a && b && *a);
	free(a);
	free(b);
}

/* Run `sql` on both databases. */
static void both(PGconn *o, PGconn *n, const char *sql, int np, const char *const *p)
{
	t_exec(o, sql, np, p);
	t_exec(n, sql, np, p);
}

#define N_STATES 80 /* two rounds of the 40 states per provider */

static void test_same_as_row_triggers(PGconn *o, PGconn *n)
{
	PGconn *dbs[2] = {o, n};
	for (int d = 0; d < 2; d++) {
		make_states(dbs[d], "A", N_STATES, "workout", 1);
		make_states(dbs[d], "B", N_STATES, "workout", 1);
		make_states(dbs[d], "C", N_STATES, "workout", 0);
		make_states(dbs[d], "E", N_STATES, "workout", 1);
	}
	expect_same(o, n, "states");

	/* UPDATE changing the text of four rows in five; the fifth only gets
	 * updated_at, which is no change. */
	both(o, n, "UPDATE workouts SET updated_at = now() + interval '1 minute',"
	           " workout_text = CASE WHEN substr(name, 2)::int % 5 <> 0"
	           "                THEN workout_text || ' +' ELSE workout_text END"
	           " WHERE description = 'A'", 0, NULL);
	expect_same(o, n, "bulk UPDATE");

	both(o, n, "DELETE FROM workouts WHERE description = 'B'", 0, NULL);
	expect_same(o, n, "bulk DELETE");

	/* Inserting rows whose ids have pending entries (deleted, then restored). */
	both(o, n, "INSERT INTO workouts (id, user_id, name, description)"
	           " SELECT md5('C' || i)::uuid,"
	           " CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid, 'w' || i, 'C'"
	           " FROM generate_series(0, " "79" ") i", 0, NULL);
	expect_same(o, n, "bulk INSERT over pending entries");

	/* Upsert: half new rows, half existing (set E) whose name changes. */
	both(o, n, "INSERT INTO workouts (id, user_id, name, description)"
	           " SELECT md5(CASE WHEN i % 2 = 0 THEN 'E' ELSE 'F' END || i)::uuid,"
	           " CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid, 'v' || i, 'E'"
	           " FROM generate_series(0, 79) i"
	           " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name", 0, NULL);
	expect_same(o, n, "upsert");

	/* The same again, row by row: one statement per entity. */
	for (int i = 0; i < 40; i++) {
		char sql[256];
		snprintf(sql, sizeof sql,
		         i % 2 ? "DELETE FROM workouts WHERE id = md5('A%d')::uuid"
		               : "UPDATE workouts SET sport = 'run' WHERE id = md5('A%d')::uuid",
		         i);
		both(o, n, sql, 0, NULL);
	}
	expect_same(o, n, "single-row statements");
}

static void test_schedules_same(PGconn *o, PGconn *n)
{
	PGconn *dbs[2] = {o, n};
	for (int d = 0; d < 2; d++) {
		/* Workouts of set D (linked or not), one schedule each (set S, same
		 * i), dated in the past for every third one; schedule states as
		 * usual. */
		make_states(dbs[d], "D", N_STATES, "workout", 1);
		t_exec(dbs[d], "SET wsync.triggers = off", 0, NULL);
		t_exec(dbs[d], "INSERT INTO workouts_scheduled (id, user_id, workout_id, scheduled_date)"
		               " SELECT md5('S' || i)::uuid,"
		               " CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid,"
		               " md5('D' || i)::uuid,"
		               " (now() AT TIME ZONE 'UTC')::date + CASE WHEN i % 3 = 0 THEN -2 ELSE 3 END"
		               " FROM generate_series(0, 79) i", 0, NULL);
		t_exec(dbs[d], "RESET wsync.triggers", 0, NULL);
		{
			const char *p[3] = {"S", "80", "workout_scheduled"};
			t_exec(dbs[d], "SET wsync.triggers = off", 0, NULL);
			t_exec(dbs[d], STATE_SQL, 3, p);
			t_exec(dbs[d], PENDING_SQL, 3, p);
			t_exec(dbs[d], "RESET wsync.triggers", 0, NULL);
		}
	}
	expect_same(o, n, "schedule states");

	/* A workout change reaches its upcoming linked schedules. */
	both(o, n, "UPDATE workouts SET name = name || ' +' WHERE description = 'D'"
	           " AND substr(name, 2)::int % 4 <> 1", 0, NULL);
	expect_same(o, n, "workout UPDATE with schedules");

	both(o, n, "UPDATE workouts_scheduled SET scheduled_time = CASE"
	           " WHEN get_byte(uuid_send(id), 0) < 128 THEN '07:00'::time END,"
	           " updated_at = now()", 0, NULL);
	expect_same(o, n, "schedule UPDATE");

	both(o, n, "INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date, id)"
	           " SELECT user_id, id, current_date, md5('T' || id)::uuid FROM workouts"
	           " WHERE description = 'D'", 0, NULL);
	expect_same(o, n, "schedule INSERT");

	/* Deleting workouts cascades to their schedules. */
	both(o, n, "DELETE FROM workouts WHERE description = 'D'"
	           " AND get_byte(uuid_send(id), 2) % 3 <> 2", 0, NULL);
	expect_same(o, n, "cascading DELETE");

	/* What wsyncd calls after re-creating a workout under a new id. */
	{
		PGconn *dbs2[2] = {o, n};
		long long r[2][2];
		for (int d = 0; d < 2; d++) {
			r[d][0] = t_query_int(dbs2[d], "SELECT sum(wsync_resync_schedules(id, 'wahoo'))"
			                               " FROM workouts WHERE description = 'D'", 0, NULL);
			r[d][1] = t_query_int(dbs2[d], "SELECT sum(wsync_resync_schedules(id))"
			                               " FROM workouts WHERE description = 'D'", 0, NULL);
		}
		T_EQ_INT(r[1][0], r[0][0]);
		T_EQ_INT(r[1][1], r[0][1]);
		T_CHECK(r[1][1] > 0);
	}
	expect_same(o, n, "wsync_resync_schedules");
}

/* wsync_enqueue and wsync_retry_failed: same return values, same queue. */
static void test_api_same(PGconn *o, PGconn *n)
{
	static const char *const calls[] = {
		"SELECT sum(wsync_enqueue(CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid,"
		" 'workout', md5('G' || i)::uuid, (ARRAY['create', 'update', 'delete'])[i % 3 + 1]))"
		" FROM generate_series(0, 79) i",
		"SELECT sum(wsync_enqueue(CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid,"
		" 'workout', md5('G' || i)::uuid, (ARRAY['delete', 'create', 'update'])[i % 3 + 1],"
		" 'wahoo')) FROM generate_series(0, 79) i",
		"SELECT sum(wsync_enqueue(CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid,"
		" 'workout', md5('G' || i)::uuid, 'delete')) FROM generate_series(0, 79) i",
	};
	make_states(o, "G", N_STATES, "workout", 0);
	make_states(n, "G", N_STATES, "workout", 0);
	for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
		long long a = t_query_int(o, calls[i], 0, NULL), b = t_query_int(n, calls[i], 0, NULL);
		T_EQ_INT(b, a);
		T_CHECK(b > 0);
		expect_same(o, n, "wsync_enqueue");
	}
	/* Fail what is pending and retry it for one user. */
	both(o, n, "UPDATE workout_sync_queue SET processed_at = now(), locked_until = now(),"
	           " error_type = 'auth_error' WHERE processed_at IS NULL"
	           " AND locked_until IS NULL AND entity_id IN"
	           " (SELECT md5('G' || i)::uuid FROM generate_series(0, 79) i)", 0, NULL);
	{
		const char *sql = "SELECT wsync_retry_failed('" U2 "', 'wahoo')";
		long long a = t_query_int(o, sql, 0, NULL), b = t_query_int(n, sql, 0, NULL);
		T_EQ_INT(b, a);
		T_CHECK(b > 0);
	}
	expect_same(o, n, "wsync_retry_failed");
}

/* ---- the new database alone ------------------------------------------------------ */

static void test_three_row_insert(PGconn *db)
{
	PGconn *l = t_db();
	int seen = 0, got;
	char *ops, names[256];
	t_exec(l, "LISTEN wsync_queue", 0, NULL);
	t_exec(db, "INSERT INTO workouts (user_id, name) VALUES"
	           " ('" U "', 'three-a'), ('" U "', 'three-b'), ('" U2 "', 'three-c')", 0, NULL);
	ops = t_query_str(db, "SELECT string_agg(w.name || ':' || q.operation || ':' || q.provider,"
	                      " ',' ORDER BY w.name, q.provider)"
	                      " FROM workout_sync_queue q JOIN workouts w ON w.id = q.entity_id"
	                      " WHERE w.name LIKE 'three-%'", 0, NULL);
	T_EQ_STR(ops, "three-a:create:garmin,three-a:create:wahoo,three-b:create:garmin,"
	              "three-b:create:wahoo,three-c:create:tp,three-c:create:wahoo");
	free(ops);
	got = sqlt_notifies(l, 2000, names, sizeof names);
	for (char *p = strtok(names, ","); p; p = strtok(NULL, ","))
		seen |= !strcmp(p, "wahoo") ? 1 : !strcmp(p, "garmin") ? 2 : !strcmp(p, "tp") ? 4 : 8;
	/* One notification per provider for the statement, none for others. */
	T_EQ_INT(got, 3);
	T_EQ_INT(seen, 7);
	PQfinish(l);
}

/* ---- concurrency -------------------------------------------------------------------- */

static int run_ok(PGconn *c, const char *sql, int n, const char *const *p, const char *who)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "%s: %s", who, PQerrorMessage(c));
	PQclear(r);
	return ok;
}

typedef struct {
	const char *const *sql; /* statements, one transaction */
	int nsql;
	const char *tag;        /* $1 of every statement */
	int errors;
	pthread_barrier_t *start;
} job;

static void *run_job(void *v)
{
	job *j = v;
	PGconn *c = t_db();
	const char *p[1] = {j->tag};
	pthread_barrier_wait(j->start);
	j->errors += !run_ok(c, "BEGIN", 0, NULL, "job");
	for (int i = 0; i < j->nsql; i++)
		j->errors += !run_ok(c, j->sql[i], 1, p, "job");
	j->errors += !run_ok(c, "COMMIT", 0, NULL, "job");
	PQfinish(c);
	return NULL;
}

/* Run the jobs at once; returns the number of failed statements. */
static int run_jobs(job *jobs, int n)
{
	pthread_t t[4];
	pthread_barrier_t start;
	int errors = 0;
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		jobs[i].start = &start;
		pthread_create(&t[i], NULL, run_job, &jobs[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		errors += jobs[i].errors;
	}
	pthread_barrier_destroy(&start);
	return errors;
}

/* A worker claims creates while the application deletes the same workouts
 * in one statement.  Whichever wins each row: a create the worker holds
 * (it will make the object) must get a delete behind it, and a create it
 * did not claim must be gone (cancelled, no API call). */
static void test_claim_vs_bulk_delete(PGconn *db)
{
	static const char *const claim[] = {
		"UPDATE workout_sync_queue SET locked_until = now() + interval '5 minutes',"
		" locked_by = 'race', attempts = 1"
		" WHERE id IN (SELECT q.id FROM workout_sync_queue q JOIN workouts w"
		"  ON w.id = q.entity_id WHERE w.description = $1 AND q.processed_at IS NULL"
		"  AND q.locked_until IS NULL AND get_byte(uuid_send(q.entity_id), 1) < 128"
		"  FOR NO KEY UPDATE OF q SKIP LOCKED)",
	};
	static const char *const del[] = {"DELETE FROM workouts WHERE description = $1"};
	t_exec(db, "CREATE TEMP TABLE race_ids (id uuid, tag text)", 0, NULL);
	for (int round = 0; round < 20; round++) {
		char tag[32];
		const char *p[1] = {tag};
		job jobs[2] = {{claim, 1, tag, 0, NULL}, {del, 1, tag, 0, NULL}};
		snprintf(tag, sizeof tag, "race%d", round);
		t_exec(db, "INSERT INTO workouts (user_id, name, description)"
		           " SELECT CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid,"
		           " 'r' || i, $1 FROM generate_series(1, 200) i", 1, p);
		t_exec(db, "INSERT INTO race_ids SELECT id, description FROM workouts"
		           " WHERE description = $1", 1, p);
		T_EQ_INT(run_jobs(jobs, 2), 0);
		/* Every claimed create has a pending delete queued after it. */
		T_EQ_INT(t_query_int(db,
			"SELECT count(*) FROM workout_sync_queue c JOIN race_ids r ON r.id = c.entity_id"
			" WHERE r.tag = $1 AND c.locked_by = 'race' AND NOT EXISTS ("
			"  SELECT 1 FROM workout_sync_queue d WHERE d.entity_id = c.entity_id"
			"  AND d.provider = c.provider AND d.operation = 'delete'"
			"  AND d.processed_at IS NULL AND d.locked_until IS NULL AND d.seq > c.seq)",
			1, p), 0);
		/* Nothing else: no unclaimed create, no delete without a claimed create. */
		T_EQ_INT(t_query_int(db,
			"SELECT count(*) FROM workout_sync_queue q JOIN race_ids r ON r.id = q.entity_id"
			" WHERE r.tag = $1 AND q.locked_by IS NULL AND (q.operation <> 'delete'"
			"  OR NOT EXISTS (SELECT 1 FROM workout_sync_queue c"
			"   WHERE c.entity_id = q.entity_id AND c.provider = q.provider"
			"   AND c.locked_by = 'race'))", 1, p), 0);
	}
	/* Both sides won some rows over the rounds (the test exercised both). */
	T_CHECK(t_query_int(db, "SELECT count(*) FROM workout_sync_queue q JOIN race_ids r"
	                        " ON r.id = q.entity_id WHERE q.locked_by = 'race'", 0, NULL) > 0);
}

/* Bulk workout updates re-queue linked schedules (without locking the
 * schedule rows) while bulk schedule updates enqueue the same schedules,
 * each side's rows in the opposite order: the queue rows are locked in one
 * order, so no deadlock (SQLSTATE 40P01 would fail a statement). */
static void test_no_deadlock(PGconn *db)
{
	static const char *const upd_w_asc[] = {
		"UPDATE workouts SET workout_text = workout_text || '+' WHERE id IN"
		" (SELECT id FROM workouts WHERE description = $1 ORDER BY id FOR UPDATE)",
	};
	static const char *const upd_s_desc[] = {
		"UPDATE workouts_scheduled SET scheduled_time = coalesce(scheduled_time, '06:00') +"
		" interval '1 minute' WHERE id IN (SELECT s.id FROM workouts_scheduled s JOIN workouts w"
		" ON w.id = s.workout_id WHERE w.description = $1 ORDER BY s.id DESC FOR UPDATE OF s)",
	};
	const char *p[1] = {"dl"};
	t_exec(db, "SET wsync.triggers = off", 0, NULL);
	t_exec(db, "INSERT INTO workouts (id, user_id, name, description)"
	           " SELECT md5('dl' || i)::uuid,"
	           " CASE WHEN i % 2 = 0 THEN '" U "' ELSE '" U2 "' END::uuid, 'd' || i, $1"
	           " FROM generate_series(1, 150) i", 1, p);
	t_exec(db, "INSERT INTO workouts_scheduled (id, user_id, workout_id, scheduled_date)"
	           " SELECT md5('ds' || id)::uuid, user_id, id, current_date + 2 FROM workouts"
	           " WHERE description = $1", 1, p);
	t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	           " provider_entity_id)"
	           " SELECT t.provider, 'workout_scheduled', s.id, s.user_id, 'x' || s.id"
	           " FROM workouts_scheduled s JOIN workouts w ON w.id = s.workout_id"
	           " JOIN provider_tokens t ON t.user_id = s.user_id"
	           " WHERE w.description = $1", 1, p);
	t_exec(db, "RESET wsync.triggers", 0, NULL);
	for (int round = 0; round < 15; round++) {
		job jobs[2] = {{upd_w_asc, 1, "dl", 0, NULL}, {upd_s_desc, 1, "dl", 0, NULL}};
		T_EQ_INT(run_jobs(jobs, 2), 0);
		/* A worker takes everything between rounds, so each round both
		 * inserts new entries and folds into pending ones. */
		if (round % 2)
			t_exec(db, "UPDATE workout_sync_queue SET locked_until = now(),"
			           " processed_at = now() WHERE processed_at IS NULL", 0, NULL);
	}
	/* At most one never-claimed entry per schedule and provider, all updates. */
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue q"
	                         " JOIN workouts_scheduled s ON s.id = q.entity_id"
	                         " JOIN workouts w ON w.id = s.workout_id"
	                         " WHERE w.description = 'dl' AND q.processed_at IS NULL"
	                         " AND q.operation <> 'update'", 0, NULL), 0);
	T_CHECK(t_query_int(db, "SELECT count(*) FROM workout_sync_queue q"
	                        " JOIN workouts_scheduled s ON s.id = q.entity_id"
	                        " JOIN workouts w ON w.id = s.workout_id"
	                        " WHERE w.description = 'dl' AND q.processed_at IS NULL", 0, NULL)
	        == 150 * 2);
}

/* Three leased entries; another session is writing the second (an outcome
 * not yet committed).  The extension returns at once with the other two
 * extended, where it used to wait for the writer (and, the writer waiting
 * for a row it held, deadlock). */
static void test_lease_extend_skips_busy_rows(PGconn *db)
{
	PGconn *writer = t_db();
	char *ids, *leases;
	t_exec(db, "INSERT INTO workouts (user_id, name, description) SELECT '" U "', 'l' || i,"
	           " 'lease' FROM generate_series(1, 3) i", 0, NULL);
	t_exec(db, "UPDATE workout_sync_queue q SET locked_by = 'hb', lease_token = nextval("
	           "'workout_sync_lease_seq'), locked_until = now() + interval '10 s'"
	           " FROM workouts w WHERE w.id = q.entity_id AND w.description = 'lease'"
	           " AND q.provider = 'wahoo'", 0, NULL);
	ids = t_query_str(db, "SELECT array_agg(id ORDER BY seq)::text FROM workout_sync_queue"
	                      " WHERE locked_by = 'hb'", 0, NULL);
	leases = t_query_str(db, "SELECT array_agg(lease_token ORDER BY seq)::text"
	                         " FROM workout_sync_queue WHERE locked_by = 'hb'", 0, NULL);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE locked_by = 'hb'",
	                     0, NULL), 3);
	t_exec(writer, "BEGIN", 0, NULL);
	t_exec(writer, "UPDATE workout_sync_queue SET error_message = 'writing' WHERE id ="
	               " (SELECT id FROM workout_sync_queue WHERE locked_by = 'hb'"
	               " ORDER BY seq OFFSET 1 LIMIT 1)", 0, NULL);
	t_exec(db, "SET lock_timeout = '3s'", 0, NULL);
	long long t0 = t_now_ms();
	T_EQ_INT(t_query_int(db, "SELECT wsync_lease_extend($1::uuid[], $2::bigint[], 600)", 2,
	                     (const char *[]){ids, leases}), 2);
	T_CHECK(t_now_ms() - t0 < 2000); /* did not wait for the writer */
	t_exec(db, "RESET lock_timeout", 0, NULL);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE locked_by = 'hb'"
	                         " AND locked_until > now() + interval '500 s'", 0, NULL), 2);
	t_exec(writer, "ROLLBACK", 0, NULL);
	/* With the writer gone, the next extension reaches all three. */
	T_EQ_INT(t_query_int(db, "SELECT wsync_lease_extend($1::uuid[], $2::bigint[], 600)", 2,
	                     (const char *[]){ids, leases}), 3);
	PQfinish(writer);
	free(ids);
	free(leases);
}

int main(void)
{
	PGconn *db = t_db(), *o, *n;
	char *dir_old = sqlt_migrations_upto(5);
	char full[4096];
	snprintf(full, sizeof full, "%s/migrations",
	         getenv("WSYNC_SOURCE_ROOT") ? getenv("WSYNC_SOURCE_ROOT") : ".");
	t_exec(db, "CREATE DATABASE wsync_0005", 0, NULL);
	t_exec(db, "CREATE DATABASE wsync_latest", 0, NULL);
	o = sqlt_db_named("wsync_0005");
	n = sqlt_db_named("wsync_latest");
	setup(o, dir_old);
	setup(n, full);
	test_same_as_row_triggers(o, n);
	test_schedules_same(o, n);
	test_api_same(o, n);
	PQfinish(o);
	PQfinish(n);

	/* The rest on the test database, with every migration. */
	setup(db, full);
	test_three_row_insert(db);
	test_claim_vs_bulk_delete(db);
	test_no_deadlock(db);
	test_lease_extend_skips_busy_rows(db);
	PQfinish(db);
	free(dir_old);
	return t_done();
}
