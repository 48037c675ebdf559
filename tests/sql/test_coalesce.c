/*
 * Coalescing at enqueue: every case of the fold table, entries claimed by a
 * worker never rewritten, deletes behind an in-flight create, and
 * concurrent enqueues from several connections leaving one pending entry.
 */
#include "sqltest.h"

#include <pthread.h>

/* Enqueue `op` of workout `id` for wahoo only; returns rows written. */
static long long enq(PGconn *db, const char *id, const char *op)
{
	const char *p[2] = {id, op};
	return t_query_int(db, "SELECT wsync_enqueue('" U "', 'workout', $1::uuid, $2, 'wahoo')",
	                   2, p);
}

static char *fresh_id(PGconn *db)
{
	return t_query_str(db, "SELECT gen_random_uuid()", 0, NULL);
}

static void link(PGconn *db, const char *id)
{
	const char *p[1] = {id};
	t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	           " provider_entity_id) VALUES ('wahoo', 'workout', $1::uuid, '" U "', 'W-1')",
	       1, p);
}

/* A worker claims the entity's never-claimed entry. */
static void claim(PGconn *db, const char *id)
{
	const char *p[1] = {id};
	t_exec(db, "UPDATE workout_sync_queue SET locked_until = now() + interval '5 minutes',"
	           " locked_by = 'test:1:0', attempts = attempts + 1, last_attempt_at = now()"
	           " WHERE entity_id = $1::uuid AND processed_at IS NULL AND locked_until IS NULL",
	       1, p);
}

static char *pending_pid(PGconn *db, const char *id)
{
	const char *p[1] = {id};
	return t_query_str(db, "SELECT provider_entity_id FROM workout_sync_queue"
	                       " WHERE entity_id = $1::uuid AND processed_at IS NULL"
	                       " AND locked_until IS NULL", 1, p);
}

static long long rows(PGconn *db, const char *id)
{
	const char *p[1] = {id};
	return t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE entity_id = $1::uuid",
	                   1, p);
}

/* One case: optional link, then ops in order; expect the pending ops. */
static void fold_case(PGconn *db, int linked, const char *first, const char *second,
                      const char *want)
{
	char *id = fresh_id(db);
	if (linked)
		link(db, id);
	T_EQ_INT(enq(db, id, first), 1);
	T_EQ_INT(enq(db, id, second), 1);
	T_OPS(db, id, "wahoo", want);
	T_EQ_INT(rows(db, id), *want ? 1 : 0);
	free(id);
}

static void test_fold_table(PGconn *db)
{
	fold_case(db, 0, "create", "update", "create");
	fold_case(db, 0, "create", "create", "create");
	fold_case(db, 1, "update", "update", "update");
	fold_case(db, 1, "update", "delete", "delete");
	fold_case(db, 1, "delete", "update", "delete");
	fold_case(db, 1, "delete", "create", "update");
	/* create + delete of something never synced: nothing left to do. */
	fold_case(db, 0, "create", "delete", "");
	fold_case(db, 0, "update", "delete", "");
	/* create + delete when the provider already has it (linked). */
	fold_case(db, 1, "create", "delete", "delete");
}

static void test_single_ops(PGconn *db)
{
	char *id = fresh_id(db), *pid;
	/* A delete of something never synced costs nothing. */
	T_EQ_INT(enq(db, id, "delete"), 0);
	T_EQ_INT(rows(db, id), 0);
	/* An update the provider never saw has to create it. */
	T_EQ_INT(enq(db, id, "update"), 1);
	T_OPS(db, id, "wahoo", "create");
	free(id);

	/* A linked update stays an update; a delete captures the provider id. */
	id = fresh_id(db);
	link(db, id);
	enq(db, id, "update");
	T_OPS(db, id, "wahoo", "update");
	pid = pending_pid(db, id);
	T_CHECK(pid == NULL);
	free(pid);
	enq(db, id, "delete");
	pid = pending_pid(db, id);
	T_EQ_STR(pid, "W-1");
	free(pid);
	/* delete + create: an update of the linked object, provider id dropped. */
	enq(db, id, "create");
	T_OPS(db, id, "wahoo", "update");
	pid = pending_pid(db, id);
	T_CHECK(pid == NULL);
	free(pid);
	free(id);
}

static void test_claimed_never_rewritten(PGconn *db)
{
	char *id = fresh_id(db);
	const char *p[1] = {id};
	link(db, id);
	enq(db, id, "update");
	claim(db, id);
	T_EQ_INT(enq(db, id, "update"), 1);
	T_OPS(db, id, "wahoo", "update,update");
	T_EQ_INT(enq(db, id, "delete"), 1);
	T_OPS(db, id, "wahoo", "update,delete");
	/* The claimed row is untouched. */
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE entity_id = $1::uuid"
	                         " AND locked_by = 'test:1:0' AND operation = 'update'", 1, p), 1);
	free(id);

	/* A claimed delete: a new create waits behind it (the worker will have
	 * removed the object, so it is created again). */
	id = fresh_id(db);
	link(db, id);
	enq(db, id, "delete");
	claim(db, id);
	enq(db, id, "create");
	T_OPS(db, id, "wahoo", "delete,create");
	free(id);
}

static void test_delete_behind_in_flight_create(PGconn *db)
{
	char *id = fresh_id(db), *pid;
	const char *p[1] = {id};
	enq(db, id, "create");
	claim(db, id);
	/* Not linked yet, but the in-flight create will make the object. */
	T_EQ_INT(enq(db, id, "delete"), 1);
	T_OPS(db, id, "wahoo", "create,delete");
	pid = pending_pid(db, id);
	T_CHECK(pid == NULL); /* the engine reads the link when the delete runs */
	free(pid);
	/* Re-created before the delete ran: create (update if linked by then). */
	enq(db, id, "create");
	T_OPS(db, id, "wahoo", "create,create");
	free(id);

	/* The same when the create failed once and waits for its retry. */
	id = fresh_id(db);
	p[0] = id;
	enq(db, id, "create");
	t_exec(db, "UPDATE workout_sync_queue SET locked_until = now() - interval '1 second',"
	           " error_type = 'provider_error', retry_count = 1,"
	           " next_retry_at = now() + interval '2 minutes' WHERE entity_id = $1::uuid", 1, p);
	enq(db, id, "delete");
	T_OPS(db, id, "wahoo", "create,delete");
	free(id);
}

/* ---- concurrency ---------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 25

typedef struct {
	const char *entity;
	const char *op;       /* NULL: alternate create/update */
	int claimer;          /* claim instead of enqueue */
	int errors;
	pthread_barrier_t *start;
} worker_arg;

static int run_ok(PGconn *c, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "thread: %s", PQerrorMessage(c));
	PQclear(r);
	return ok;
}

static void *worker(void *v)
{
	worker_arg *a = v;
	PGconn *c = t_db();
	pthread_barrier_wait(a->start);
	for (int i = 0; i < ROUNDS; i++) {
		const char *op = a->op ? a->op : (i % 2 ? "update" : "create");
		const char *p[2] = {a->entity, op};
		if (a->claimer) {
			/* Claims as wsyncd does: SKIP LOCKED, never waiting. */
			a->errors += !run_ok(c,
				"UPDATE workout_sync_queue SET locked_until = now() + interval '5 minutes'"
				" WHERE id IN (SELECT id FROM workout_sync_queue"
				"  WHERE entity_id = $1::uuid AND processed_at IS NULL"
				"  AND locked_until IS NULL FOR NO KEY UPDATE SKIP LOCKED)", 1, p);
			continue;
		}
		a->errors += !run_ok(c, "BEGIN", 0, NULL);
		a->errors += !run_ok(c, "SELECT wsync_enqueue('" U "', 'workout', $1::uuid, $2)", 2, p);
		a->errors += !run_ok(c, "COMMIT", 0, NULL);
	}
	PQfinish(c);
	return NULL;
}

static int run_threads(const char *entity, const char *op, int with_claimer)
{
	pthread_t t[THREADS + 1];
	worker_arg a[THREADS + 1];
	pthread_barrier_t start;
	int n = THREADS + (with_claimer ? 1 : 0), errors = 0;
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		a[i] = (worker_arg){entity, op, i == THREADS, 0, &start};
		pthread_create(&t[i], NULL, worker, &a[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		errors += a[i].errors;
	}
	pthread_barrier_destroy(&start);
	return errors;
}

static long long never_claimed(PGconn *db, const char *id, const char *provider)
{
	const char *p[2] = {id, provider};
	return t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE entity_id = $1::uuid"
	                       " AND provider = $2 AND processed_at IS NULL"
	                       " AND locked_until IS NULL", 2, p);
}

static void test_concurrent(PGconn *db)
{
	char *id = fresh_id(db);
	T_EQ_INT(run_threads(id, NULL, 0), 0);
	/* 200 enqueues from 8 connections: one pending entry per provider. */
	T_EQ_INT(never_claimed(db, id, "wahoo"), 1);
	T_EQ_INT(never_claimed(db, id, "garmin"), 1);
	T_EQ_INT(rows(db, id), 2);
	T_OPS(db, id, "wahoo", "create");
	free(id);

	/* With a worker claiming meanwhile: never two unclaimed entries, no
	 * unique violation, and claimed rows keep their operation. */
	id = fresh_id(db);
	link(db, id);
	T_EQ_INT(run_threads(id, "update", 1), 0);
	T_CHECK(never_claimed(db, id, "wahoo") <= 1);
	T_CHECK(never_claimed(db, id, "garmin") <= 1);
	{
		const char *p[1] = {id};
		T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
		                         " WHERE entity_id = $1::uuid AND operation <> 'update'"
		                         " AND provider = 'wahoo'", 1, p), 0);
	}
	free(id);

	/* Creates (migration 0014's plain INSERT, folding when it meets a
	 * pending entry) racing each other and a claimer: no error reaches the
	 * callers, never two unclaimed entries, and every entry is a create. */
	id = fresh_id(db);
	T_EQ_INT(run_threads(id, "create", 1), 0);
	T_CHECK(never_claimed(db, id, "wahoo") <= 1);
	T_CHECK(never_claimed(db, id, "garmin") <= 1);
	T_CHECK(rows(db, id) >= 2);
	{
		const char *p[1] = {id};
		T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
		                         " WHERE entity_id = $1::uuid AND operation <> 'create'", 1, p), 0);
	}
	free(id);
}

int main(void)
{
	PGconn *db = t_db();
	sqlt_setup(db);
	test_fold_table(db);
	test_single_ops(db);
	test_claimed_never_rewritten(db);
	test_delete_behind_in_flight_create(db);
	test_concurrent(db);
	PQfinish(db);
	return t_done();
}
