/*
 * The seed's six trigger rules on workouts and workouts_scheduled, the
 * "enabled" rule, turning triggers off, rollback, NOTIFY and argument
 * checks of the SQL API (migrations/0002_api.sql).
 */
#include "sqltest.h"


static char *new_workout(PGconn *db)
{
	return t_query_str(db, "INSERT INTO workouts (user_id, name, workout_text)"
	                       " VALUES ('" U "', 'Sweet spot', '- 10m 50%') RETURNING id",
	                   0, NULL);
}

static char *new_scheduled(PGconn *db, const char *workout_id)
{
	const char *p[1] = {workout_id};
	return t_query_str(db, "INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)"
	                       " VALUES ('" U "', $1::uuid, '2026-12-01') RETURNING id", 1, p);
}

/* Run an UPDATE/DELETE with the entity id as $1. */
static void exec_id(PGconn *db, const char *sql, const char *id)
{
	const char *p[1] = {id};
	t_exec(db, sql, 1, p);
}

static void test_workout_insert(PGconn *db)
{
	char *id = new_workout(db);
	T_OPS(db, id, "wahoo", "create");
	T_OPS(db, id, "garmin", "create");
	/* Not connected, disabled provider, uploads off: nothing. */
	T_OPS(db, id, "tp", "");
	T_OPS(db, id, "coros", "");
	T_OPS(db, id, "suunto", "");
	T_EQ_INT(sqlt_pending(db, id), 2);
	free(id);
}

static void test_workout_update_only_if_changed(PGconn *db)
{
	static const char *const changes[] = {
		"UPDATE workouts SET workout_text = '- 20m 60%' WHERE id = $1::uuid",
		"UPDATE workouts SET name = 'Threshold' WHERE id = $1::uuid",
		"UPDATE workouts SET description = 'hard' WHERE id = $1::uuid",
		"UPDATE workouts SET sport = 'run' WHERE id = $1::uuid",
	};
	char *id = new_workout(db);
	sqlt_sync_done(db, "workout", id, "wahoo,garmin");

	exec_id(db, "UPDATE workouts SET updated_at = now() + interval '1 minute'"
	            " WHERE id = $1::uuid", id);
	T_EQ_INT(sqlt_pending(db, id), 0);
	exec_id(db, "UPDATE workouts SET workout_text = workout_text, name = name"
	            " WHERE id = $1::uuid", id);
	T_EQ_INT(sqlt_pending(db, id), 0);

	for (size_t i = 0; i < sizeof changes / sizeof *changes; i++) {
		exec_id(db, changes[i], id);
		T_OPS(db, id, "wahoo", "update");
		T_OPS(db, id, "garmin", "update");
		T_EQ_INT(sqlt_pending(db, id), 2);
		sqlt_sync_done(db, "workout", id, "");
	}
	free(id);
}

static void test_workout_delete_only_if_synced(PGconn *db)
{
	char *id = new_workout(db), *pid;
	const char *p[1] = {id};
	/* Synced to wahoo only (garmin's create was processed but made nothing). */
	sqlt_sync_done(db, "workout", id, "wahoo");
	exec_id(db, "DELETE FROM workouts WHERE id = $1::uuid", id);
	T_OPS(db, id, "wahoo", "delete");
	T_OPS(db, id, "garmin", "");
	/* The provider id is captured at enqueue, for after the link is gone. */
	pid = t_query_str(db, "SELECT provider_entity_id FROM workout_sync_queue"
	                      " WHERE entity_id = $1::uuid AND processed_at IS NULL", 1, p);
	T_CHECK(pid && !strncmp(pid, "wahoo-", 6));
	free(pid);
	free(id);

	/* Never synced anywhere: the pending creates go, nothing is queued. */
	id = new_workout(db);
	p[0] = id;
	exec_id(db, "DELETE FROM workouts WHERE id = $1::uuid", id);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                         " WHERE entity_id = $1::uuid", 1, p), 0);
	free(id);
}

static void test_scheduled(PGconn *db)
{
	char *w = new_workout(db), *w2 = new_workout(db), *s;
	const char *p[2];
	sqlt_sync_done(db, "workout", w, "wahoo,garmin");
	sqlt_sync_done(db, "workout", w2, "wahoo,garmin");

	s = new_scheduled(db, w);
	T_OPS(db, s, "wahoo", "create");
	T_OPS(db, s, "garmin", "create");
	T_OPS(db, s, "tp", "");
	sqlt_sync_done(db, "workout_scheduled", s, "wahoo,garmin");

	exec_id(db, "UPDATE workouts_scheduled SET updated_at = now() + interval '1 hour'"
	            " WHERE id = $1::uuid", s);
	T_EQ_INT(sqlt_pending(db, s), 0);

	exec_id(db, "UPDATE workouts_scheduled SET scheduled_date = scheduled_date + 1"
	            " WHERE id = $1::uuid", s);
	T_OPS(db, s, "wahoo", "update");
	T_OPS(db, s, "garmin", "update");
	sqlt_sync_done(db, "workout_scheduled", s, "");

	exec_id(db, "UPDATE workouts_scheduled SET scheduled_time = '06:30' WHERE id = $1::uuid", s);
	T_OPS(db, s, "wahoo", "update");
	sqlt_sync_done(db, "workout_scheduled", s, "");

	p[0] = s;
	p[1] = w2;
	t_exec(db, "UPDATE workouts_scheduled SET workout_id = $2::uuid WHERE id = $1::uuid", 2, p);
	T_OPS(db, s, "garmin", "update");
	sqlt_sync_done(db, "workout_scheduled", s, "");

	/* Delete only where synced: drop wahoo's link first. */
	exec_id(db, "DELETE FROM workout_sync_links WHERE provider = 'wahoo'"
	            " AND entity_id = $1::uuid", s);
	exec_id(db, "DELETE FROM workouts_scheduled WHERE id = $1::uuid", s);
	T_OPS(db, s, "wahoo", "");
	T_OPS(db, s, "garmin", "delete");
	free(s);

	/* Never synced: nothing at all. */
	s = new_scheduled(db, w);
	exec_id(db, "DELETE FROM workouts_scheduled WHERE id = $1::uuid", s);
	p[0] = s;
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                         " WHERE entity_id = $1::uuid", 1, p), 0);
	free(s);

	/* Deleting a workout cascades to its schedule: both deletes queued. */
	s = new_scheduled(db, w);
	sqlt_sync_done(db, "workout_scheduled", s, "wahoo,garmin");
	exec_id(db, "DELETE FROM workouts WHERE id = $1::uuid", w);
	T_OPS(db, w, "wahoo", "delete");
	T_OPS(db, s, "wahoo", "delete");
	T_OPS(db, s, "garmin", "delete");
	free(s);
	free(w);
	free(w2);
}

static void test_enabled(PGconn *db)
{
	static const struct { const char *provider; const char *want; } cases[] = {
		{"wahoo", "t"}, {"garmin", "t"}, {"tp", "f"}, {"coros", "f"}, {"suunto", "f"},
		{"nope", "f"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *p[1] = {cases[i].provider};
		char *v = t_query_str(db, "SELECT wsync_provider_enabled('" U "', $1)", 1, p);
		T_EQ_STR(v, cases[i].want);
		free(v);
	}
	/* Asking one disabled or unconnected provider queues nothing. */
	T_EQ_INT(t_query_int(db, "SELECT wsync_enqueue('" U "', 'workout',"
	                         " gen_random_uuid(), 'create', 'tp')", 0, NULL), 0);
	T_EQ_INT(t_query_int(db, "SELECT wsync_enqueue('" U "', 'workout',"
	                         " gen_random_uuid(), 'create', 'coros')", 0, NULL), 0);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                         " WHERE provider IN ('tp', 'coros', 'suunto')", 0, NULL), 0);
}

static void test_triggers_off(PGconn *db)
{
	char *id;
	t_exec(db, "BEGIN", 0, NULL);
	t_exec(db, "SET LOCAL wsync.triggers = off", 0, NULL);
	id = new_workout(db);
	t_exec(db, "COMMIT", 0, NULL);
	T_EQ_INT(sqlt_pending(db, id), 0);

	/* The setting ended with the transaction: the next change enqueues.  The
	 * provider never saw this workout, so the update is queued as a create. */
	exec_id(db, "UPDATE workouts SET workout_text = '- 5m 40%' WHERE id = $1::uuid", id);
	T_OPS(db, id, "wahoo", "create");
	sqlt_sync_done(db, "workout", id, "wahoo,garmin");
	free(id);

	/* Session-wide, any false-ish spelling. */
	t_exec(db, "SET wsync.triggers = 'false'", 0, NULL);
	id = new_workout(db);
	T_EQ_INT(sqlt_pending(db, id), 0);
	t_exec(db, "RESET wsync.triggers", 0, NULL);
	free(id);

	/* Or per trigger, by name. */
	t_exec(db, "ALTER TABLE workouts DISABLE TRIGGER wsync_workouts_insert", 0, NULL);
	id = new_workout(db);
	T_EQ_INT(sqlt_pending(db, id), 0);
	t_exec(db, "ALTER TABLE workouts ENABLE TRIGGER wsync_workouts_insert", 0, NULL);
	free(id);
	id = new_workout(db);
	T_EQ_INT(sqlt_pending(db, id), 2);
	free(id);
}

static void test_rollback(PGconn *db)
{
	char *id;
	const char *p[1];
	t_exec(db, "BEGIN", 0, NULL);
	id = new_workout(db);
	T_EQ_INT(sqlt_pending(db, id), 2);
	t_exec(db, "ROLLBACK", 0, NULL);
	p[0] = id;
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                         " WHERE entity_id = $1::uuid", 1, p), 0);
	free(id);

	id = new_workout(db);
	sqlt_sync_done(db, "workout", id, "wahoo,garmin");
	t_exec(db, "BEGIN", 0, NULL);
	exec_id(db, "UPDATE workouts SET workout_text = '- 1m' WHERE id = $1::uuid", id);
	exec_id(db, "DELETE FROM workouts WHERE id = $1::uuid", id);
	T_OPS(db, id, "wahoo", "delete");
	t_exec(db, "ROLLBACK", 0, NULL);
	T_EQ_INT(sqlt_pending(db, id), 0);
	free(id);
}

/* Collect notifications for up to `ms`; returns how many arrived and
 * ORs 1 (wahoo) / 2 (garmin) / 4 (other) into *seen. */
static int drain_notifies(PGconn *l, int ms, int *seen)
{
	char got[256];
	int n = sqlt_notifies(l, ms, got, sizeof got);
	for (char *p = strtok(got, ","); p; p = strtok(NULL, ","))
		*seen |= !strcmp(p, "wahoo") ? 1 : !strcmp(p, "garmin") ? 2 : 4;
	return n;
}

static void test_notify(PGconn *db)
{
	PGconn *l = t_db();
	int seen = 0;
	char *id;
	t_exec(l, "LISTEN wsync_queue", 0, NULL);

	t_exec(db, "BEGIN", 0, NULL);
	free(new_workout(db));
	t_exec(db, "ROLLBACK", 0, NULL);
	T_EQ_INT(drain_notifies(l, 300, &seen), 0);

	id = new_workout(db);
	T_EQ_INT(drain_notifies(l, 2000, &seen), 2);
	T_EQ_INT(seen, 3);
	free(id);

	/* Many changes in one transaction: still one notification per provider. */
	seen = 0;
	t_exec(db, "INSERT INTO workouts (user_id, name) SELECT '" U "', 'bulk ' || i"
	           " FROM generate_series(1, 20) i", 0, NULL);
	T_EQ_INT(drain_notifies(l, 2000, &seen), 2);
	T_EQ_INT(seen, 3);
	PQfinish(l);
}

static void expect_error(PGconn *db, const char *sql, const char *state, const char *text)
{
	char msg[512];
	char *got = sqlt_sqlstate(db, sql, 0, NULL, msg, sizeof msg);
	T_EQ_STR(got, state);
	T_CONTAINS(msg, text);
	free(got);
}

static void test_validation(PGconn *db)
{
	expect_error(db, "SELECT wsync_enqueue('" U "', 'plan', gen_random_uuid(), 'create')",
	             "22023", "unknown entity_type \"plan\"");
	expect_error(db, "SELECT wsync_enqueue('" U "', 'workout', gen_random_uuid(), 'upsert')",
	             "22023", "unknown operation \"upsert\"");
	expect_error(db, "SELECT wsync_enqueue(NULL, 'workout', gen_random_uuid(), 'create')",
	             "22004", "user_id must not be NULL");
	expect_error(db, "SELECT wsync_enqueue('" U "', 'workout', NULL, 'create')",
	             "22004", "entity_id must not be NULL");
	expect_error(db, "SELECT wsync_enqueue('" U "', NULL, gen_random_uuid(), 'create')",
	             "22004", "entity_type must not be NULL");
	expect_error(db, "SELECT wsync_enqueue('" U "', 'workout', gen_random_uuid(), 'create',"
	                 " 'strava')", "22023", "unknown provider \"strava\"");
	expect_error(db, "SELECT wsync_enqueue('" U "', 'workout', 'not-a-uuid', 'create')",
	             "22P02", "uuid");
	expect_error(db, "SELECT * FROM wsync_sync_status('plan', gen_random_uuid())",
	             "22023", "unknown entity_type");
}

/* Migration 0013: a queue or link row must name a provider of
 * sync_providers, and a provider some row names cannot leave it, as the
 * foreign keys it replaced (SQLSTATE 23503, at the end of the statement). */
static void test_provider_references(PGconn *db)
{
	char msg[512], *st, *id = new_workout(db);
	const char *p[1] = {id};
	static const char *const refused[] = {
		"INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider)"
		" VALUES ('" U "', 'workout', $1::uuid, 'create', 'nosuch')",
		/* one bad row among good ones, none of them the workout's */
		"INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation, provider)"
		" SELECT '" U "', 'workout', gen_random_uuid(), 'update', p"
		" FROM unnest(ARRAY['wahoo', 'nosuch', 'garmin']) AS p WHERE $1::text IS NOT NULL",
		"UPDATE workout_sync_queue SET provider = 'nosuch'"
		" WHERE entity_id = $1::uuid AND provider = 'garmin'",
		"INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
		" provider_entity_id) VALUES ('nosuch', 'workout', $1::uuid, '" U "', 'x')",
		"DELETE FROM sync_providers WHERE name = 'wahoo' AND $1::text IS NOT NULL",
		"UPDATE sync_providers SET name = 'wahoo2' WHERE name = 'wahoo' AND $1::text IS NOT NULL",
	};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		st = sqlt_sqlstate(db, refused[i], 1, p, msg, sizeof msg);
		T_EQ_STR(st, "23503");
		T_CHECK(strstr(msg, "nosuch") || strstr(msg, "'wahoo'"));
		free(st);
	}
	/* Nothing of the refused statements stayed. */
	T_OPS(db, id, "wahoo", "create");
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE provider = 'nosuch'",
	                     0, NULL), 0);
	/* What names a real provider passes; a provider nothing names can go. */
	st = sqlt_sqlstate(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id,"
	                       " user_id, provider_entity_id)"
	                       " VALUES ('garmin', 'workout', $1::uuid, '" U "', 'g1')", 1, p, msg,
	                   sizeof msg);
	T_EQ_STR(st, "");
	free(st);
	st = sqlt_sqlstate(db, "TRUNCATE sync_providers CASCADE", 0, NULL, msg, sizeof msg);
	T_EQ_STR(st, "0A000");
	free(st);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM sync_providers WHERE name = 'wahoo'", 0, NULL),
	         1);
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('unused', 'unused')", 0, NULL);
	st = sqlt_sqlstate(db, "DELETE FROM sync_providers WHERE name = 'unused'", 0, NULL, msg,
	                   sizeof msg);
	T_EQ_STR(st, "");
	free(st);
	free(id);
}

int main(void)
{
	PGconn *db = t_db();
	sqlt_setup(db);
	test_workout_insert(db);
	test_workout_update_only_if_changed(db);
	test_workout_delete_only_if_synced(db);
	test_scheduled(db);
	test_enabled(db);
	test_triggers_off(db);
	test_rollback(db);
	test_notify(db);
	test_validation(db);
	test_provider_references(db);
	PQfinish(db);
	return t_done();
}
