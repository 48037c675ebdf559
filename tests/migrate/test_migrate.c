/* wsyncctl migrate: fresh, re-run (no-op), and two at once. */
#include "testlib.h"

#include <pthread.h>
#include <stdlib.h>

static const char *wsyncctl;

static void *migrate_thread(void *rc)
{
	char *argv[] = {(char *)wsyncctl, "migrate", NULL};
	*(int *)rc = t_run(argv, NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	PGconn *c;
	pthread_t a, b;
	int rca = -1, rcb = -1;
	char *out = NULL;
	char *args[] = {NULL, "migrate", NULL};
	long long files;

	if (argc < 2)
		return 2;
	wsyncctl = args[0] = argv[1];
	setenv("WSYNC_DATABASE_URL", getenv("WSYNC_TEST_CONNINFO"), 1);
	c = t_db();

	/* Two nodes migrating at once: both succeed, each file applied once. */
	pthread_create(&a, NULL, migrate_thread, &rca);
	pthread_create(&b, NULL, migrate_thread, &rcb);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	T_EQ_INT(rca, 0);
	T_EQ_INT(rcb, 0);
	files = t_query_int(c, "SELECT count(*) FROM wsync_schema_migrations", 0, NULL);
	T_CHECK(files >= 2);
	T_EQ_INT(t_query_int(c, "SELECT count(*) FROM pg_tables WHERE tablename IN ('workout_sync_queue',"
	                        " 'sync_providers', 'workout_sync_links', 'provider_tokens', 'workouts',"
	                        " 'workouts_scheduled')", 0, NULL), 6);
	T_EQ_INT(t_query_int(c, "SELECT count(*) FROM pg_indexes WHERE indexname ="
	                        " 'workout_sync_queue_claim_idx'", 0, NULL), 1);

	/* Re-run: nothing to do. */
	T_EQ_INT(t_run(args, &out), 0);
	T_CHECK(out && !strstr(out, "applied 0001"));
	free(out);
	T_EQ_INT(t_query_int(c, "SELECT count(*) FROM wsync_schema_migrations", 0, NULL), files);
	PQfinish(c);
	return t_done();
}
