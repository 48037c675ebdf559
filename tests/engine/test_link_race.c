/*
 * Links between a workout and its scheduled workouts.
 *
 * race: a workout and its scheduled workouts written in one transaction:
 * one worker runs the workout's create while another syncs the same workout
 * first for a schedule.  The provider must see exactly one create of each
 * workout.
 *
 * resync: a workout change reaches its upcoming linked schedules (trigger),
 * and a workout re-created on the provider after a 404 (new provider id)
 * re-queues its schedules even when nothing else changed.
 */
#include "testlib.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_lines(const char *path, const char *prefix)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		n += !strncmp(line, prefix, strlen(prefix));
	fclose(f);
	return n;
}

static char *wsyncd_args[5];

static void drain(void)
{
	char *out = NULL;
	T_EQ_INT(t_run(wsyncd_args, &out), 0);
	free(out);
}

static const char *scheduled_update_sql =
	"SELECT count(*) FROM workout_sync_queue WHERE entity_type = 'workout_scheduled'"
	" AND operation = 'update' AND entity_id = $1";

static void resync(PGconn *db, const char *calls)
{
	char *w, *upcoming, *past;
	const char *p[1];
	w = t_query_str(db, "INSERT INTO workouts (user_id, name, description, workout_text)"
	                    " VALUES ('11111111-1111-1111-1111-111111111111', 'resync',"
	                    " 'update=not_found', '- 10m 80%') RETURNING id", 0, NULL);
	p[0] = w;
	upcoming = t_query_str(db, "INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)"
	                           " VALUES ('11111111-1111-1111-1111-111111111111', $1,"
	                           " current_date + 3) RETURNING id", 1, p);
	past = t_query_str(db, "INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)"
	                       " VALUES ('11111111-1111-1111-1111-111111111111', $1,"
	                       " current_date - 3) RETURNING id", 1, p);
	drain();
	t_shared_file(calls);

	/* A rename queues the upcoming schedule, not the past one. */
	t_exec(db, "UPDATE workouts SET name = 'renamed' WHERE id = $1", 1, p);
	p[0] = upcoming;
	T_EQ_INT(t_query_int(db, scheduled_update_sql, 1, p), 1);
	p[0] = past;
	T_EQ_INT(t_query_int(db, scheduled_update_sql, 1, p), 0);
	drain();
	/* The update met a 404, so the workout was created again; then the
	 * schedule was pushed (after the workout: claim order). */
	T_EQ_INT(count_lines(calls, "update workout "), 1);
	T_EQ_INT(count_lines(calls, "create workout "), 1);
	T_EQ_INT(count_lines(calls, "update workout_scheduled "), 1);

	/* Re-created with nothing else changing (an operator's re-sync with
	 * the triggers off): the engine itself re-queues the schedule. */
	t_shared_file(calls);
	p[0] = w;
	t_exec(db, "BEGIN", 0, NULL);
	t_exec(db, "SET LOCAL wsync.triggers = off", 0, NULL);
	t_exec(db, "SELECT wsync_enqueue('11111111-1111-1111-1111-111111111111', 'workout', $1,"
	           " 'update', 'scripted')", 1, p);
	t_exec(db, "COMMIT", 0, NULL);
	p[0] = upcoming;
	T_EQ_INT(t_query_int(db, scheduled_update_sql, 1, p), 1);
	drain();
	T_EQ_INT(t_query_int(db, scheduled_update_sql, 1, p), 2);
	T_EQ_INT(count_lines(calls, "create workout "), 1);
	T_EQ_INT(count_lines(calls, "update workout_scheduled "), 1);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL"
	                         " OR error_type IS NOT NULL", 0, NULL), 0);
	free(w);
	free(upcoming);
	free(past);
}

int main(int argc, char **argv)
{
	char *dir, ini[4096], path[512], calls[512], *out = NULL;
	PGconn *db;
	char *args[5];
	int round;

	if (argc < 3)
		return 2;
	dir = t_tempdir();
	db = t_db();
	t_migrate(db);
	snprintf(calls, sizeof calls, "%s/calls.log", dir);
	snprintf(path, sizeof path, "%s/conf.d", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/conf.d/scripted.ini", dir);
	snprintf(ini, sizeof ini, "[provider]\nplugin = scripted\n[scripted]\nrecord_file = %s\n"
	         "delay_ms = 150\n", calls);
	t_write_file(path, ini, 0644);
	t_shared_file(calls);
	snprintf(path, sizeof path, "%s/wsyncd.ini", dir);
	snprintf(ini, sizeof ini, "[database]\nconninfo = %s\n[engine]\nworkers = 4\n"
	         "batch_size = 4\n[plugins]\ndir = %s\nconf_dir = conf.d\n",
	         getenv("WSYNC_TEST_CONNINFO"), argv[2]);
	t_write_file(path, ini, 0644);
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('scripted', 'scripted')", 0, NULL);
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token)"
	           " VALUES ('11111111-1111-1111-1111-111111111111', 'scripted', 'tok')", 0, NULL);
	/* Several rounds: each a workout and two schedules in one transaction,
	 * so workers race on the workout. */
	for (round = 0; round < 3; round++)
		t_exec(db, "WITH w AS (INSERT INTO workouts (user_id, name, workout_text)"
		           "  VALUES ('11111111-1111-1111-1111-111111111111', 'race', '- 10m 80%')"
		           "  RETURNING id, user_id)"
		           " INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)"
		           " SELECT user_id, id, current_date + d FROM w, generate_series(1, 2) d",
		       0, NULL);
	args[0] = argv[1];
	args[1] = "-c";
	args[2] = path;
	args[3] = "--once";
	args[4] = NULL;
	T_EQ_INT(t_run(args, &out), 0);
	free(out);
	/* One create per workout, whoever made it; the workout entries that
	 * found the link made an update instead. */
	T_EQ_INT(count_lines(calls, "create workout "), 3);
	T_EQ_INT(count_lines(calls, "create workout_scheduled "), 6);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_links WHERE entity_type = 'workout'",
	                     0, NULL), 3);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE processed_at IS NULL"
	                         " OR error_type IS NOT NULL", 0, NULL), 0);
	memcpy(wsyncd_args, args, sizeof args);
	resync(db, calls);
	PQfinish(db);
	free(dir);
	return t_done();
}
