/*
 * Migrating a database that is in use, as an operator does: entries
 * pending, one claimed and in flight, a delete waiting, links and history
 * written under 0013, then every later migration (0014: the create fast
 * path, the wake-up from the queue's insert trigger, one per-entity
 * index).  Afterwards:
 *   - nothing queued before is lost or changed;
 *   - new workouts are queued, one entry per enabled provider, with one
 *     NOTIFY per provider;
 *   - a workout inserted again while its delete waits folds into that
 *     delete, as before;
 *   - a change of an in-flight workout queues behind it, not into it;
 *   - wsync_sync_status reads pending and processed rows alike;
 *   - the two per-entity indexes of 0001 and 0002 are gone, one remains.
 */
#include "schemas.h"
#include "sqltest.h"

static char *new_workout(PGconn *db, const char *id)
{
	const char *p[1] = {id};
	return t_query_str(db, "INSERT INTO workouts (id, user_id, name, workout_text)"
	                       " VALUES (coalesce($1::uuid, gen_random_uuid()), '" U "', 'w',"
	                       " '- 10m 50%') RETURNING id", 1, p);
}

static char *queue_snapshot(PGconn *db)
{
	return t_query_str(db, "SELECT string_agg(concat_ws(' ', id, entity_id, provider, operation,"
	                       " retry_count, processed_at IS NOT NULL, locked_until IS NOT NULL,"
	                       " provider_entity_id), E'\\n' ORDER BY seq) FROM workout_sync_queue",
	                   0, NULL);
}

int main(void)
{
	PGconn *db = t_db(), *l;
	char *old_dir = sqlt_migrations_upto(13), full[4096], *before, *after, *w[4], *got;
	char names[256];
	snprintf(full, sizeof full, "%s/migrations",
	         getenv("WSYNC_SOURCE_ROOT") ? getenv("WSYNC_SOURCE_ROOT") : ".");

	/* ---- life under 0013 ---- */
	sqlt_migrate_dir(db, old_dir);
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('wahoo', 'wahoo'),"
	           " ('garmin', 'garmin')", 0, NULL);
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token,"
	           " upload_workouts_enabled) VALUES ('" U "', 'wahoo', 'x', true),"
	           " ('" U "', 'garmin', 'x', true)", 0, NULL);
	for (int i = 0; i < 4; i++)
		w[i] = new_workout(db, NULL);
	/* w0 synced on both (history and links); w1 claimed on wahoo (in
	 * flight); w2 synced, then deleted: its deletes wait; w3 pending. */
	{
		const char *synced[2] = {w[0], w[2]}, *flight[1] = {w[1]}, *gone[1] = {w[2]};
		t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(), locked_until = now()"
		           " WHERE entity_id IN ($1::uuid, $2::uuid)", 2, synced);
		t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
		           " provider_entity_id) SELECT p, 'workout', e, '" U "', 'P-' || e"
		           " FROM unnest(ARRAY[$1::uuid, $2::uuid]) e, unnest(ARRAY['wahoo', 'garmin']) p",
		       2, synced);
		t_exec(db, "UPDATE workout_sync_queue SET locked_until = now() + interval '5 minutes',"
		           " locked_by = 'old:1:0', attempts = 1 WHERE entity_id = $1::uuid"
		           " AND provider = 'wahoo'", 1, flight);
		t_exec(db, "DELETE FROM workouts WHERE id = $1::uuid", 1, gone);
	}
	T_OPS(db, w[2], "wahoo", "delete");
	before = queue_snapshot(db);

	/* ---- the upgrade ---- */
	sqlt_migrate_dir(db, full);
	after = queue_snapshot(db);
	T_EQ_STR(after, before);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM pg_indexes WHERE indexname IN"
	                         " ('workout_sync_queue_entity_idx', 'workout_sync_queue_entity_all_idx')",
	                     0, NULL), 0);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM pg_indexes"
	                         " WHERE indexname = 'workout_sync_queue_entity_open_idx'", 0, NULL), 1);

	/* ---- life under the latest schema ---- */
	l = t_db();
	t_exec(l, "LISTEN wsync_queue", 0, NULL);
	t_exec(db, "INSERT INTO workouts (user_id, name) SELECT '" U "', 'new ' || i"
	           " FROM generate_series(1, 3) i", 0, NULL);
	sqlt_notifies(l, 500, names, sizeof names);
	T_CHECK(!strcmp(names, "garmin,wahoo") || !strcmp(names, "wahoo,garmin"));
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue q JOIN workouts w"
	                         " ON w.id = q.entity_id WHERE w.name LIKE 'new %'"
	                         " AND q.operation = 'create' AND q.processed_at IS NULL", 0, NULL), 6);

	/* w2 again, same id, while its deletes wait: they fold into updates. */
	free(new_workout(db, w[2]));
	T_OPS(db, w[2], "wahoo", "update");
	T_OPS(db, w[2], "garmin", "update");

	/* w1's text changes while its wahoo create is in flight: an update
	 * queued behind it there; garmin's pending create stays a create. */
	{
		const char *p[1] = {w[1]};
		t_exec(db, "UPDATE workouts SET workout_text = '- 20m 60%' WHERE id = $1::uuid", 1, p);
	}
	T_OPS(db, w[1], "wahoo", "create,update");
	T_OPS(db, w[1], "garmin", "create");

	{
		const char *p[1] = {w[0]};
		got = t_query_str(db, "SELECT string_agg(provider || '=' || state, ',' ORDER BY provider)"
		                      " FROM wsync_sync_status('workout', $1::uuid)", 1, p);
		T_EQ_STR(got, "garmin=synced,wahoo=synced");
		free(got);
		p[0] = w[3];
		got = t_query_str(db, "SELECT string_agg(provider || '=' || state, ',' ORDER BY provider)"
		                      " FROM wsync_sync_status('workout', $1::uuid)", 1, p);
		T_EQ_STR(got, "garmin=pending,wahoo=pending");
		free(got);
	}

	PQfinish(l);
	PQfinish(db);
	for (int i = 0; i < 4; i++)
		free(w[i]);
	free(before), free(after), free(old_dir);
	return t_done();
}
