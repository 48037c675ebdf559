/*
 * Sync status semantics (never_synced, pending, retrying, synced, failed)
 * through the C client API, with queue rows set up directly; the rest of
 * the client API (connect, wrap, enqueue, is_provider_enabled, errors) and
 * retry of permanent failures.
 */
#include "sqltest.h"

#include "wsync/client.h"

/* A queue row as the engine leaves it (claimed once: locked_until set).
 * Returns its id; caller frees. */
static char *add_entry(PGconn *db, const char *id, const char *op, int processed,
                       const char *error_type, int retry_count, const char *last_attempt)
{
	char pr[2] = {processed ? 't' : 'f', 0}, rc[16];
	const char *p[6] = {id, op, pr, error_type, rc, last_attempt};
	snprintf(rc, sizeof rc, "%d", retry_count);
	return t_query_str(db,
		"INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider,"
		" processed_at, locked_until, error_type, error_message, retry_count,"
		" last_attempt_at, next_retry_at) VALUES ('" U "', 'workout', $1::uuid, $2, 'wahoo',"
		" CASE WHEN $3::bool THEN now() END, now() - interval '1 second', $4::text,"
		" CASE WHEN $4::text IS NOT NULL THEN 'boom: ' || $4::text END, $5::int, $6::timestamptz,"
		" now() + interval '10 minutes') RETURNING id", 6, p);
}

static void link(PGconn *db, const char *id, const char *pid)
{
	const char *p[2] = {id, pid};
	t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	           " provider_entity_id) VALUES ('wahoo', 'workout', $1::uuid, '" U "', $2)",
	       2, p);
}

static char *fresh_id(PGconn *db)
{
	return t_query_str(db, "SELECT gen_random_uuid()", 0, NULL);
}

static wsync_sync_status *status(wsync_client *c, const char *id)
{
	wsync_sync_status *s = NULL;
	int rc = wsync_client_get_sync_status(c, "workout", id, "wahoo", &s);
	T_EQ_INT(rc, 0);
	if (rc)
		fprintf(stderr, "status: %s\n", wsync_client_errmsg(c));
	return s;
}

#define T_STATE(s, st, syn, pend, fail)                                         \
	do {                                                                    \
		T_EQ_STR(wsync_sync_state_name((s)->state), wsync_sync_state_name(st)); \
		T_EQ_INT((s)->synced, syn);                                     \
		T_EQ_INT((s)->pending, pend);                                   \
		T_EQ_INT((s)->failed, fail);                                    \
	} while (0)

static void test_never_synced(PGconn *db, wsync_client *c)
{
	char *id = fresh_id(db);
	const char *p[1] = {id};
	wsync_sync_status *s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_NEVER_SYNCED, 0, 0, 0);
		T_EQ_STR(s->provider, "wahoo");
		T_CHECK(!s->error_type && !s->last_attempt && !s->provider_entity_id);
		T_CHECK(!s->queue_id && !s->user_id && !s->enabled);
		T_EQ_INT(s->retry_count, 0);
	}
	wsync_sync_status_free(s);

	/* The entity row exists (written with triggers off): its user is known. */
	t_exec(db, "SET wsync.triggers = off", 0, NULL);
	t_exec(db, "INSERT INTO workouts (id, user_id) VALUES ($1::uuid, '" U "')", 1, p);
	t_exec(db, "RESET wsync.triggers", 0, NULL);
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_NEVER_SYNCED, 0, 0, 0);
		T_EQ_STR(s->user_id, U);
		T_CHECK(s->enabled);
	}
	wsync_sync_status_free(s);
	free(id);
}

static void test_pending(PGconn *db, wsync_client *c)
{
	char *id = fresh_id(db);
	wsync_sync_status *s;
	int n = -1;
	T_EQ_INT(wsync_client_enqueue(c, U, "workout", id, "create", "wahoo", &n), 0);
	T_EQ_INT(n, 1);
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_PENDING, 0, 1, 0);
		T_EQ_STR(s->operation, "create");
		T_CHECK(s->next_retry_at && s->queue_id && !s->last_attempt && !s->error_type);
	}
	wsync_sync_status_free(s);
	free(id);
}

static void test_retrying(PGconn *db, wsync_client *c)
{
	char *id = fresh_id(db);
	wsync_sync_status *s;
	free(add_entry(db, id, "create", 0, "provider_error", 2, "2026-01-02 03:04:05+00"));
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_RETRYING, 0, 1, 0);
		T_EQ_STR(s->error_type, "provider_error");
		T_EQ_STR(s->error_message, "boom: provider_error");
		T_EQ_STR(s->last_attempt, "2026-01-02T03:04:05Z");
		T_EQ_INT(s->retry_count, 2);
		T_CHECK(s->next_retry_at != NULL);
	}
	wsync_sync_status_free(s);
	free(id);
}

static void test_synced(PGconn *db, wsync_client *c)
{
	char *id = fresh_id(db);
	wsync_sync_status *s;
	free(add_entry(db, id, "create", 1, NULL, 0, "2026-03-04 05:06:07+00"));
	link(db, id, "W-9");
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_SYNCED, 1, 0, 0);
		T_EQ_STR(s->provider_entity_id, "W-9");
		T_EQ_STR(s->last_attempt, "2026-03-04T05:06:07Z");
		T_CHECK(!s->error_type && !s->next_retry_at);
	}
	wsync_sync_status_free(s);

	/* A new change is pending again, and the provider still has the object. */
	wsync_client_enqueue(c, U, "workout", id, "update", "wahoo", NULL);
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_PENDING, 0, 1, 0);
		T_EQ_STR(s->provider_entity_id, "W-9");
		T_EQ_STR(s->operation, "update");
	}
	wsync_sync_status_free(s);
	free(id);

	/* A failure followed by a success is synced. */
	id = fresh_id(db);
	free(add_entry(db, id, "create", 1, "provider_error", 3, NULL));
	free(add_entry(db, id, "create", 1, NULL, 0, NULL));
	link(db, id, "W-10");
	s = status(c, id);
	if (s)
		T_STATE(s, WSYNC_STATE_SYNCED, 1, 0, 0);
	wsync_sync_status_free(s);
	free(id);
}

static void test_failed(PGconn *db, wsync_client *c)
{
	char *id = fresh_id(db);
	wsync_sync_status *s;
	free(add_entry(db, id, "create", 1, "auth_error", 0, "2026-05-06 07:08:09+00"));
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_FAILED, 0, 0, 1);
		T_EQ_STR(s->error_type, "auth_error");
		T_EQ_STR(s->error_message, "boom: auth_error");
		T_EQ_STR(s->last_attempt, "2026-05-06T07:08:09Z");
		T_CHECK(!s->provider_entity_id);
	}
	wsync_sync_status_free(s);
	free(id);

	/* Synced once, then an update failed for good: failed, and the
	 * provider still holds the older version. */
	id = fresh_id(db);
	free(add_entry(db, id, "create", 1, NULL, 0, NULL));
	link(db, id, "W-11");
	free(add_entry(db, id, "update", 1, "invalid_workout", 0, NULL));
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_FAILED, 0, 0, 1);
		T_EQ_STR(s->error_type, "invalid_workout");
		T_EQ_STR(s->provider_entity_id, "W-11");
	}
	wsync_sync_status_free(s);
	free(id);
}

static void test_all_statuses(PGconn *db, wsync_client *c)
{
	static const char *const names[] = {"coros", "garmin", "suunto", "tp", "wahoo"};
	static const bool enabled[] = {false, true, false, false, true};
	char *id = fresh_id(db);
	wsync_sync_status_list *l = NULL;
	T_EQ_INT(wsync_client_enqueue(c, U, "workout", id, "create", NULL, NULL), 0);
	T_EQ_INT(wsync_client_get_all_sync_statuses(c, "workout", id, &l), 0);
	T_CHECK(l && l->count == 5);
	for (size_t i = 0; l && i < l->count && i < 5; i++) {
		T_EQ_STR(l->items[i].provider, names[i]);
		T_EQ_INT(l->items[i].enabled, enabled[i]);
		T_EQ_INT(l->items[i].state, enabled[i] ? WSYNC_STATE_PENDING
		                                       : WSYNC_STATE_NEVER_SYNCED);
	}
	wsync_sync_status_list_free(l);
	free(id);
}

static void test_client_errors(PGconn *db, wsync_client *c)
{
	char *id = fresh_id(db), errbuf[WSYNC_CLIENT_ERRBUF_SIZE];
	wsync_sync_status *s = (wsync_sync_status *)1;
	wsync_sync_status_list *l = (wsync_sync_status_list *)1;
	bool on = false;
	int n = -1;

	T_EQ_INT(wsync_client_get_sync_status(c, "plan", id, "wahoo", &s), WSYNC_CLIENT_EINVAL);
	T_CONTAINS(wsync_client_errmsg(c), "unknown entity type \"plan\"");
	T_CHECK(s == NULL);
	T_EQ_INT(wsync_client_get_sync_status(c, "workout", "nope", "wahoo", &s),
	         WSYNC_CLIENT_EINVAL);
	T_CONTAINS(wsync_client_errmsg(c), "malformed entity_id \"nope\"");
	T_EQ_INT(wsync_client_get_sync_status(c, "workout", id, "strava", &s), WSYNC_CLIENT_EINVAL);
	T_CONTAINS(wsync_client_errmsg(c), "unknown provider \"strava\"");
	T_EQ_INT(wsync_client_get_sync_status(c, "workout", id, NULL, &s), WSYNC_CLIENT_EINVAL);
	T_EQ_INT(wsync_client_get_all_sync_statuses(c, "plan", id, &l), WSYNC_CLIENT_EINVAL);
	T_CHECK(l == NULL);

	T_EQ_INT(wsync_client_enqueue(c, U, "workout", id, "upsert", NULL, &n), WSYNC_CLIENT_EINVAL);
	T_CONTAINS(wsync_client_errmsg(c), "unknown operation");
	T_EQ_INT(wsync_client_enqueue(c, "u", "workout", id, "create", NULL, &n),
	         WSYNC_CLIENT_EINVAL);
	T_EQ_INT(wsync_client_enqueue(c, U, "workout", id, "create", "strava", &n),
	         WSYNC_CLIENT_EINVAL);
	T_CONTAINS(wsync_client_errmsg(c), "unknown provider");
	T_EQ_INT(wsync_client_enqueue(c, U, "workout", id, "create", "tp", &n), 0);
	T_EQ_INT(n, 0);
	T_EQ_STR(wsync_client_errmsg(c), "");

	T_EQ_INT(wsync_client_is_provider_enabled(c, U, "wahoo", &on), 0);
	T_CHECK(on);
	T_EQ_INT(wsync_client_is_provider_enabled(c, U, "tp", &on), 0);
	T_CHECK(!on);
	T_EQ_INT(wsync_client_is_provider_enabled(c, "x", "tp", &on), WSYNC_CLIENT_EINVAL);

	T_CHECK(wsync_client_connect("host=/nonexistent-wsync dbname=x connect_timeout=2",
	                             errbuf, sizeof errbuf) == NULL);
	T_CHECK(errbuf[0] != 0);
	free(id);
}

/* A wrapped connection: the enqueue joins the application's transaction. */
static void test_wrap_rollback(PGconn *db)
{
	PGconn *app = t_db();
	wsync_client *c = wsync_client_wrap(app);
	char *id = fresh_id(db);
	const char *p[1] = {id};
	int n = 0;
	t_exec(app, "BEGIN", 0, NULL);
	T_EQ_INT(wsync_client_enqueue(c, U, "workout", id, "create", NULL, &n), 0);
	T_EQ_INT(n, 2);
	t_exec(app, "ROLLBACK", 0, NULL);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                         " WHERE entity_id = $1::uuid", 1, p), 0);
	wsync_client_close(c);
	T_CHECK(PQstatus(app) == CONNECTION_OK); /* still the application's */
	PQfinish(app);
	free(id);
}

static void test_retry(PGconn *db, wsync_client *c)
{
	char *id = fresh_id(db), *failed, *ok, *pend, *pid;
	const char *p[1] = {id};
	wsync_sync_status *s;
	int n = -1;

	link(db, id, "W-20");
	failed = add_entry(db, id, "update", 1, "provider_error", 3, NULL);
	T_EQ_INT(wsync_client_retry(c, failed, &n), 0);
	T_EQ_INT(n, 1);
	s = status(c, id);
	if (s) {
		T_STATE(s, WSYNC_STATE_PENDING, 0, 1, 0);
		T_EQ_STR(s->operation, "update");
		T_EQ_INT(s->retry_count, 0);
	}
	wsync_sync_status_free(s);
	/* Again: folds into the same pending entry. */
	T_EQ_INT(wsync_client_retry(c, failed, &n), 0);
	T_EQ_INT(sqlt_pending(db, id), 1);
	/* The failed row stays as history. */
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE entity_id = $1::uuid"
	                         " AND error_type = 'provider_error' AND processed_at IS NOT NULL",
	                     1, p), 1);

	pend = t_query_str(db, "SELECT id FROM workout_sync_queue WHERE entity_id = $1::uuid"
	                       " AND processed_at IS NULL", 1, p);
	T_EQ_INT(wsync_client_retry(c, pend, &n), WSYNC_CLIENT_ESTATE);
	T_CONTAINS(wsync_client_errmsg(c), "still pending");
	ok = add_entry(db, id, "update", 1, NULL, 0, NULL);
	T_EQ_INT(wsync_client_retry(c, ok, &n), WSYNC_CLIENT_ESTATE);
	T_EQ_INT(wsync_client_retry(c, "00000000-0000-0000-0000-000000000000", &n),
	         WSYNC_CLIENT_ENOTFOUND);
	T_EQ_INT(wsync_client_retry(c, "zzz", &n), WSYNC_CLIENT_EINVAL);
	free(failed);
	free(ok);
	free(pend);
	free(id);

	/* A failed delete whose link is gone keeps the captured provider id. */
	id = fresh_id(db);
	p[0] = id;
	failed = t_query_str(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id,"
	                         " operation, provider, processed_at, locked_until, error_type,"
	                         " provider_entity_id) VALUES ('" U "', 'workout', $1::uuid,"
	                         " 'delete', 'wahoo', now(), now(), 'unexpected_error', 'W-D')"
	                         " RETURNING id", 1, p);
	T_EQ_INT(wsync_client_retry(c, failed, &n), 0);
	T_EQ_INT(n, 1);
	pid = t_query_str(db, "SELECT provider_entity_id FROM workout_sync_queue"
	                      " WHERE entity_id = $1::uuid AND processed_at IS NULL", 1, p);
	T_EQ_STR(pid, "W-D");
	free(pid);
	free(failed);
	free(id);
}

static void test_retry_failed(PGconn *db, wsync_client *c)
{
	char *a = fresh_id(db), *b = fresh_id(db), *g = fresh_id(db);
	int n = -1;
	t_exec(db, "DELETE FROM workout_sync_queue", 0, NULL);
	free(add_entry(db, a, "create", 1, "auth_error", 0, NULL));          /* current */
	free(add_entry(db, b, "create", 1, "auth_error", 0, NULL));          /* superseded */
	free(add_entry(db, b, "create", 1, NULL, 0, NULL));
	free(add_entry(db, g, "update", 1, "record_not_found", 0, NULL));    /* entity gone */
	T_EQ_INT(wsync_client_retry_failed(c, U, "wahoo", &n), 0);
	T_EQ_INT(n, 1);
	T_OPS(db, a, "wahoo", "create");
	T_OPS(db, b, "wahoo", "");
	T_OPS(db, g, "wahoo", "");
	/* Twice: the failure is no longer current, nothing new. */
	T_EQ_INT(wsync_client_retry_failed(c, U, "wahoo", &n), 0);
	T_EQ_INT(n, 0);
	T_EQ_INT(sqlt_pending(db, a), 1);
	T_EQ_INT(wsync_client_retry_failed(c, U, "strava", &n), WSYNC_CLIENT_EINVAL);
	free(a);
	free(b);
	free(g);
}

int main(void)
{
	PGconn *db = t_db();
	char errbuf[WSYNC_CLIENT_ERRBUF_SIZE];
	wsync_client *c;

	sqlt_setup(db);
	c = wsync_client_connect(getenv("WSYNC_TEST_CONNINFO"), errbuf, sizeof errbuf);
	T_CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "connect: %s\n", errbuf);
		return t_done();
	}
	test_never_synced(db, c);
	test_pending(db, c);
	test_retrying(db, c);
	test_synced(db, c);
	test_failed(db, c);
	test_all_statuses(db, c);
	test_client_errors(db, c);
	test_wrap_rollback(db);
	test_retry(db, c);
	test_retry_failed(db, c);
	wsync_client_close(c);
	PQfinish(db);
	return t_done();
}
