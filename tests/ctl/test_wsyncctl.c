/*
 * wsyncctl against a real database: every command's --json output parsed
 * and checked, prune leaving recent and pending rows alone, bad arguments
 * exiting 2 with a clear message, an unreachable database exiting 1.
 *
 *   test_wsyncctl /path/to/wsyncctl   (under tests/pg_harness.sh)
 */
#include "testlib.h"

#include <json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

#define U "11111111-1111-1111-1111-111111111111"
#define W1 "aaaaaaaa-0000-4000-8000-000000000001"
#define W2 "aaaaaaaa-0000-4000-8000-000000000002"

static const char *ctl;

/* Run wsyncctl with the NULL-terminated arguments; *out (may be NULL) gets
 * stdout and stderr together. */
static int ctl_run(char **out, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;
	argv[n++] = (char *)ctl;
	va_start(ap, out);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	return t_run(argv, out);
}

/* Parse output as JSON; NULL (and a failed check) when it is not JSON. */
static json_object *parse(const char *out)
{
	json_object *j = out ? json_tokener_parse(out) : NULL;
	t_checks++;
	if (!j)
		t_fail(__FILE__, __LINE__, "not JSON: %s", out ? out : "(null)");
	return j;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *gstr(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static long long gint(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -999;
}

static int gbool(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

static size_t alen(json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static json_object *at(json_object *a, size_t i)
{
	return i < alen(a) ? json_object_array_get_idx(a, i) : NULL;
}

/* The array element whose `key` equals `val`, or NULL. */
static json_object *find(json_object *a, const char *key, const char *val)
{
	for (size_t i = 0; i < alen(a); i++)
		if (gstr(at(a, i), key) && !strcmp(gstr(at(a, i), key), val))
			return at(a, i);
	return NULL;
}

/* Run expecting exit 0 and JSON on stdout; caller json_object_put()s. */
#define RUN_JSON(...) run_json(__LINE__, __VA_ARGS__, NULL)

static json_object *run_json(int line, ...)
{
	char *argv[32], *out = NULL;
	int n = 0, rc;
	json_object *j;
	va_list ap;
	argv[n++] = (char *)ctl;
	va_start(ap, line);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	rc = t_run(argv, &out);
	t_checks++;
	if (rc != 0)
		t_fail(__FILE__, line, "%s %s exited %d: %s", argv[1], n > 2 ? argv[2] : "", rc,
		       out ? out : "");
	j = parse(out);
	free(out);
	return j;
}

/* Expect exit code `rc` and `text` in the output. */
#define T_RUN(rc, text, ...)                                              \
	do {                                                              \
		char *o_ = NULL;                                          \
		T_EQ_INT(ctl_run(&o_, __VA_ARGS__, NULL), rc);            \
		T_CONTAINS(o_, text);                                     \
		free(o_);                                                 \
	} while (0)

/* ---- tests ---------------------------------------------------------------- */

static void test_global(void)
{
	T_RUN(0, "wsyncctl 0.1.0\n", "--version");
	T_RUN(0, "commands:", "--help");
	T_RUN(0, "backfill", "--help");
	T_RUN(0, "provider", "--help");
	T_RUN(2, "usage:", (char *)NULL);
	T_RUN(2, "unknown command 'bogus'", "bogus");
	T_RUN(2, "unknown option '--bogus'", "--bogus", "queue");
	T_RUN(2, "cannot open", "-c", "/nonexistent/wsyncd.ini", "queue");
	for (const char *const *c = (const char *const[]){"migrate", "enqueue", "status", "queue",
	             "errors", "failed", "success-rate", "retry", "prune", "plugins",
	             "parse-workout", "backfill", "provider", NULL}; *c; c++)
		T_RUN(0, "sage", (char *)*c, "--help");
}

static void test_migrate(PGconn *db)
{
	json_object *j = RUN_JSON("migrate", "--json");
	T_CHECK(gint(j, "applied") >= 2);
	json_object_put(j);
	j = RUN_JSON("migrate", "--json");
	T_EQ_INT(gint(j, "applied"), 0);
	json_object_put(j);
	T_RUN(0, "up to date", "migrate");
	T_RUN(2, "does not exist", "migrate", "--dir", "/nonexistent-migrations");

	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('wahoo', 'wahoo'),"
	           " ('garmin', 'garmin')", 0, NULL);
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token) VALUES"
	           " ('" U "', 'wahoo', 'x'), ('" U "', 'garmin', 'x')", 0, NULL);
}

static void test_enqueue_status_queue(void)
{
	json_object *j = RUN_JSON("enqueue", U, "workout", W1, "create", "--json"), *s;
	T_EQ_INT(gint(j, "written"), 2);
	json_object_put(j);
	j = RUN_JSON("enqueue", U, "workout", W2, "update", "--provider", "wahoo", "--json");
	T_EQ_INT(gint(j, "written"), 1);
	json_object_put(j);
	T_RUN(0, "1 queue entry written", "enqueue", U, "workout", W2, "update", "--provider=wahoo");

	j = RUN_JSON("status", "workout", W1, "--json");
	T_EQ_INT(alen(j), 2);
	s = find(j, "provider", "wahoo");
	T_EQ_STR(gstr(s, "state"), "pending");
	T_EQ_INT(gbool(s, "pending"), 1);
	T_EQ_INT(gbool(s, "synced"), 0);
	T_EQ_INT(gbool(s, "failed"), 0);
	T_EQ_INT(gbool(s, "enabled"), 1);
	T_EQ_STR(gstr(s, "operation"), "create");
	T_EQ_STR(gstr(s, "user_id"), U);
	T_CHECK(get(s, "error_type") == NULL); /* JSON null */
	json_object_put(j);
	j = RUN_JSON("status", "workout", W1, "--provider", "garmin", "--json");
	T_EQ_INT(alen(j), 1);
	T_EQ_STR(gstr(at(j, 0), "provider"), "garmin");
	json_object_put(j);
	T_RUN(0, "state", "status", "workout", W1);

	j = RUN_JSON("queue", "--json");
	T_EQ_INT(alen(j), 2);
	T_EQ_STR(gstr(at(j, 0), "provider"), "garmin");
	T_EQ_INT(gint(at(j, 0), "pending"), 1);
	T_EQ_STR(gstr(at(j, 1), "provider"), "wahoo");
	T_EQ_STR(gstr(at(j, 1), "operation"), "create"); /* W2's update: never synced */
	T_EQ_STR(gstr(at(j, 1), "entity_type"), "workout");
	T_EQ_INT(gint(at(j, 1), "pending"), 2);
	T_EQ_INT(gint(at(j, 1), "due"), 2);
	T_EQ_INT(gint(at(j, 1), "in_flight"), 0);
	T_CHECK(gstr(at(j, 1), "oldest") != NULL);
	json_object_put(j);
	T_RUN(0, "(2 rows)", "queue");
}

/* Queue rows as the engine leaves them. */
static void add(PGconn *db, const char *provider, const char *processed_ago,
                const char *error_type, const char *entity)
{
	const char *p[4] = {provider, processed_ago, error_type, entity};
	t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           " provider, processed_at, locked_until, error_type, error_message, retry_count,"
	           " next_retry_at)"
	           " VALUES ('" U "', 'workout', coalesce($4::uuid, gen_random_uuid()), 'update',"
	           " $1, now() - $2::interval, now() - interval '1 second', $3,"
	           " 'it broke: ' || $3, 1, now() + interval '10 minutes')", 4, p);
}

static void test_errors(PGconn *db)
{
	json_object *j, *e;
	add(db, "wahoo", NULL, "provider_error", NULL);
	add(db, "wahoo", NULL, "provider_error", NULL);
	add(db, "garmin", NULL, "rate_limit", NULL);
	j = RUN_JSON("errors", "--json");
	T_EQ_INT(alen(j), 2);
	e = at(j, 0);
	T_EQ_STR(gstr(e, "error_type"), "provider_error");
	T_EQ_STR(gstr(e, "provider"), "wahoo");
	T_EQ_INT(gint(e, "entries"), 2);
	T_EQ_INT(gint(e, "max_retry_count"), 1);
	T_EQ_STR(gstr(e, "last_message"), "it broke: provider_error");
	T_EQ_STR(gstr(at(j, 1), "error_type"), "rate_limit");
	json_object_put(j);
}

static void test_failed(PGconn *db)
{
	json_object *j;
	const char *b = "bbbbbbbb-0000-4000-8000-000000000001";
	add(db, "wahoo", "3 hours", "auth_error", NULL);
	add(db, "wahoo", "1 hour", "invalid_request", NULL);
	add(db, "wahoo", "2 hours", "provider_error", NULL);
	/* Superseded by a later success: not a current failure. */
	add(db, "wahoo", "6 hours", "unexpected_error", b);
	add(db, "wahoo", "5 hours", NULL, b);

	j = RUN_JSON("failed", "--json");
	T_EQ_INT(alen(j), 3);
	json_object_put(j);
	j = RUN_JSON("failed", "--limit", "2", "--json");
	T_EQ_INT(alen(j), 2);
	T_EQ_STR(gstr(at(j, 0), "error_type"), "invalid_request");
	T_EQ_STR(gstr(at(j, 1), "error_type"), "provider_error");
	T_EQ_STR(gstr(at(j, 0), "provider"), "wahoo");
	T_EQ_STR(gstr(at(j, 0), "operation"), "update");
	T_EQ_INT(gint(at(j, 0), "retry_count"), 1);
	T_CHECK(gstr(at(j, 0), "id") && gstr(at(j, 0), "failed_at") && gstr(at(j, 0), "entity_id"));
	json_object_put(j);
}

static void test_success_rate(PGconn *db)
{
	json_object *j, *w, *g;
	for (int i = 0; i < 3; i++)
		add(db, "wahoo", "10 minutes", NULL, NULL);
	add(db, "wahoo", "10 minutes", "provider_error", NULL);
	add(db, "wahoo", "2 days", NULL, NULL);
	j = RUN_JSON("success-rate", "--since", "30m", "--json");
	T_EQ_INT(alen(j), 2);
	w = find(j, "provider", "wahoo");
	g = find(j, "provider", "garmin");
	T_EQ_INT(gint(w, "processed"), 4);
	T_EQ_INT(gint(w, "succeeded"), 3);
	T_EQ_INT(gint(w, "failed"), 1);
	T_CHECK(get(w, "rate_pct") && json_object_get_double(get(w, "rate_pct")) == 75.0);
	T_EQ_INT(gint(g, "processed"), 0);
	T_CHECK(g && get(g, "rate_pct") == NULL);
	json_object_put(j);
	j = RUN_JSON("success-rate", "--json");
	/* 24h default: also the failures and the superseded pair of test_failed. */
	T_EQ_INT(gint(find(j, "provider", "wahoo"), "processed"), 9);
	json_object_put(j);
}

static void test_retry(PGconn *db)
{
	json_object *j = RUN_JSON("failed", "--limit", "1", "--json");
	char *id = strdup(gstr(at(j, 0), "id") ? gstr(at(j, 0), "id") : "");
	json_object_put(j);

	j = RUN_JSON("retry", id, "--json");
	T_EQ_INT(gint(j, "requeued"), 1);
	json_object_put(j);
	j = RUN_JSON("failed", "--json");
	T_EQ_INT(alen(j), 3); /* the retried one is superseded by its new entry */
	json_object_put(j);
	j = RUN_JSON("retry", "--user", U, "--provider", "wahoo", "--json");
	T_EQ_INT(gint(j, "requeued"), 3);
	json_object_put(j);
	j = RUN_JSON("failed", "--json");
	T_EQ_INT(alen(j), 0);
	json_object_put(j);

	t_exec(db, "UPDATE provider_tokens SET needs_reconnect = true WHERE provider = 'garmin'",
	       0, NULL);
	T_RUN(0, "still needs to reconnect", "retry", "--user", U, "--provider", "garmin");
	T_RUN(1, "no queue entry", "retry", "00000000-0000-4000-8000-000000000000");
	free(id);
	id = t_query_str(db, "SELECT id FROM workout_sync_queue WHERE processed_at IS NULL LIMIT 1",
	                 0, NULL);
	T_RUN(1, "still pending", "retry", id);
	free(id);
}

static void test_prune(PGconn *db)
{
	json_object *j;
	long long before, after;
	t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           " provider, processed_at, locked_until)"
	           " SELECT '" U "', 'workout', gen_random_uuid(), 'create', 'wahoo',"
	           "  now() - interval '40 days', now() FROM generate_series(1, 5)", 0, NULL);
	/* Old but pending (a retry far in the past): never pruned. */
	t_exec(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id, operation,"
	           " provider, created_at, next_retry_at)"
	           " VALUES ('" U "', 'workout', gen_random_uuid(), 'create', 'wahoo',"
	           "  now() - interval '60 days', now() - interval '60 days')", 0, NULL);
	before = t_query_int(db, "SELECT count(*) FROM workout_sync_queue", 0, NULL);

	j = RUN_JSON("prune", "--older-than", "30d", "--batch", "2", "--json");
	T_EQ_INT(gint(j, "deleted"), 5);
	T_EQ_INT(gint(j, "batches"), 3);
	T_EQ_INT(gint(j, "older_than_s"), 30 * 86400);
	json_object_put(j);
	after = t_query_int(db, "SELECT count(*) FROM workout_sync_queue", 0, NULL);
	T_EQ_INT(after, before - 5);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                         " WHERE created_at < now() - interval '59 days'"
	                         " AND processed_at IS NULL", 0, NULL), 1);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                         " WHERE processed_at > now() - interval '3 days'", 0, NULL) > 0, 1);
	T_RUN(0, "0 processed entries deleted", "prune");
}

/* backfill and provider disable/enable end to end (migrations/0007). */
static void test_backfill_provider(PGconn *db)
{
	json_object *j, *s;
	char *dir = t_tempdir(), users[600], out[64];
	char *w;
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('bf', 'bf')", 0, NULL);
	/* Three workouts and an upcoming schedule from before bf was connected. */
	t_exec(db, "INSERT INTO workouts (user_id, name) SELECT '" U "', 'w' || g"
	           " FROM generate_series(1, 3) g", 0, NULL);
	w = t_query_str(db, "SELECT id FROM workouts WHERE user_id = '" U "' ORDER BY id LIMIT 1",
	                0, NULL);
	{
		const char *p[1] = {w};
		t_exec(db, "INSERT INTO workouts_scheduled (user_id, workout_id, scheduled_date)"
		           " VALUES ('" U "', $1::uuid, (now() AT TIME ZONE 'UTC')::date + 1)", 1, p);
	}
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token)"
	           " VALUES ('" U "', 'bf', 'x')", 0, NULL);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE provider = 'bf'",
	                     0, NULL), 0);

	/* Argument errors first, database or not. */
	T_RUN(2, "missing --provider", "backfill");
	T_RUN(2, "unknown provider 'nope'", "backfill", "--provider", "nope");
	T_RUN(2, "--since '2026-13-01': expected a date", "backfill", "--provider", "bf",
	      "--since", "2026-13-01");
	T_RUN(2, "--batch '0'", "backfill", "--provider", "bf", "--batch", "0");
	T_RUN(2, "unknown option '--bogus'", "backfill", "--provider", "bf", "--bogus");
	snprintf(users, sizeof users, "%s/users.txt", dir);
	t_write_file(users, "# team A\n" U "\nnot-a-uuid\n", 0644);
	snprintf(out, sizeof out, "users.txt:3: malformed user id 'not-a-uuid'");
	T_RUN(2, out, "backfill", "--provider", "bf", "--users", users);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE provider = 'bf'",
	                     0, NULL), 0);
	/* Another user only: nothing of U's. */
	t_write_file(users, "\n  " W2 "  \n", 0644);
	T_RUN(0, "0 workouts and 0 scheduled workouts queued", "backfill", "--provider", "bf",
	      "--users", users);

	j = RUN_JSON("backfill", "--provider", "bf", "--batch", "2", "--json");
	T_EQ_STR(gstr(j, "provider"), "bf");
	T_EQ_INT(gint(j, "workout"), 3);
	T_EQ_INT(gint(j, "workout_scheduled"), 1);
	T_EQ_INT(gint(j, "batches"), 3); /* 2 + 1 workouts, 1 schedule */
	T_CONTAINS(gstr(j, "not_served"), "no wsyncd has registered it");
	json_object_put(j);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE provider = 'bf'",
	                     0, NULL), 4);
	/* Twice: nothing new. */
	T_RUN(0, "backfill bf: 0 workouts and 0 scheduled workouts queued", "backfill",
	      "--provider", "bf", "--since", "2020-01-01");
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM workout_sync_queue WHERE provider = 'bf'",
	                     0, NULL), 4);

	T_RUN(0, "warning: provider bf: no wsyncd has registered it", "backfill", "--provider",
	      "bf");
	/* No wsyncd has registered bf: queue and status say so. */
	j = RUN_JSON("queue", "--json");
	s = find(j, "provider", "bf");
	T_CONTAINS(gstr(s, "not_served"), "no wsyncd has registered it");
	s = find(j, "provider", "wahoo");
	T_CONTAINS(gstr(s, "not_served"), "no wsyncd has registered it");
	json_object_put(j);
	/* A node registers both; bf's INI is then removed from it. */
	t_exec(db, "SELECT wsync_providers_register('n1:/etc/wsync/wsyncd.ini', '{bf,wahoo}',"
	           " '{bf,wahoo}', '{t,t}')", 0, NULL);
	j = RUN_JSON("queue", "--json");
	T_CHECK(find(j, "provider", "bf") && get(find(j, "provider", "bf"), "not_served") == NULL);
	json_object_put(j);
	t_exec(db, "SELECT wsync_providers_register('n1:/etc/wsync/wsyncd.ini', '{wahoo}',"
	           " '{wahoo}', '{t}')", 0, NULL);
	{
		char *status;
		T_EQ_INT(ctl_run(&status, "status", "workout", w, "--provider", "bf", NULL), 0);
		T_CONTAINS(status, "provider_not_served");
		T_CONTAINS(status, "no wsyncd serves it (its conf.d file was removed");
		free(status);
	}
	T_RUN(1, "provider bf is not enabled: no wsyncd serves it", "backfill", "--provider", "bf");
	T_RUN(0, "n1:/etc/wsync/wsyncd.ini", "provider", "list");

	/* The operator's override on wahoo. */
	T_RUN(0, "provider wahoo disabled by an operator", "provider", "disable", "wahoo");
	j = RUN_JSON("provider", "list", "--json");
	s = find(j, "provider", "wahoo");
	T_EQ_INT(gbool(s, "operator_disabled"), 1);
	T_EQ_INT(gbool(s, "queued"), 0);
	T_CONTAINS(gstr(s, "not_served"), "disabled by an operator");
	json_object_put(j);
	j = RUN_JSON("status", "workout", w, "--provider", "wahoo", "--json");
	T_EQ_INT(gbool(at(j, 0), "enabled"), 0);
	T_CONTAINS(gstr(at(j, 0), "provider_not_served"), "disabled by an operator");
	json_object_put(j);
	/* A reload of the node does not undo it. */
	t_exec(db, "SELECT wsync_providers_register('n1:/etc/wsync/wsyncd.ini', '{wahoo}',"
	           " '{wahoo}', '{t}')", 0, NULL);
	T_EQ_INT(t_query_int(db, "SELECT enabled::int FROM sync_providers WHERE name = 'wahoo'",
	                     0, NULL), 0);
	j = RUN_JSON("provider", "enable", "wahoo", "--json");
	T_EQ_INT(gbool(j, "queued"), 1);
	T_EQ_INT(gbool(j, "operator_disabled"), 0);
	json_object_put(j);
	T_RUN(0, "operator override cleared, but nothing is queued for it", "provider", "enable",
	      "bf");
	T_RUN(2, "unknown action 'stop'", "provider", "stop", "wahoo");
	T_RUN(2, "missing provider NAME", "provider", "disable");
	T_RUN(2, "unknown provider 'nope'", "provider", "disable", "nope");
	free(w);
	free(dir);
}

static void test_bad_args(void)
{
	T_RUN(2, "malformed ID 'not-a-uuid'", "status", "workout", "not-a-uuid");
	T_RUN(2, "unknown entity type 'plan'", "status", "plan", W1);
	T_RUN(2, "unknown provider 'strava' (registered: garmin, wahoo)", "status", "workout", W1,
	      "--provider", "strava");
	T_RUN(2, "missing arguments", "status", "workout");
	T_RUN(2, "unexpected argument 'x'", "queue", "x");
	T_RUN(2, "unknown option '--limit'", "queue", "--limit", "3");
	T_RUN(2, "malformed USER_ID 'bob'", "enqueue", "bob", "workout", W1, "create");
	T_RUN(2, "unknown operation 'upsert'", "enqueue", U, "workout", W1, "upsert");
	T_RUN(2, "unknown provider 'strava'", "enqueue", U, "workout", W1, "create", "--provider",
	      "strava");
	T_RUN(2, "--since 'yesterday'", "success-rate", "--since", "yesterday");
	T_RUN(2, "--limit '0'", "failed", "--limit", "0");
	T_RUN(2, "--limit 'ten'", "failed", "--limit", "ten");
	T_RUN(2, "needs a value", "failed", "--limit");
	T_RUN(2, "--older-than '-5d'", "prune", "--older-than", "-5d");
	T_RUN(2, "--batch 'x'", "prune", "--batch", "x");
	T_RUN(2, "give QUEUE_ID, or both", "retry");
	T_RUN(2, "not both", "retry", W1, "--user", U);
	T_RUN(2, "malformed QUEUE_ID", "retry", "123");
	T_RUN(2, "unknown provider 'strava'", "retry", "--user", U, "--provider", "strava");
}

static void test_unreachable(void)
{
	char *saved = strdup(getenv("WSYNC_DATABASE_URL"));
	setenv("WSYNC_DATABASE_URL", "host=/nonexistent-wsync-socket dbname=x", 1);
	T_RUN(1, "cannot connect to the database", "queue");
	/* Bad arguments are still usage errors, database or not. */
	T_RUN(2, "malformed ID", "status", "workout", "x");
	setenv("WSYNC_DATABASE_URL", saved, 1);
	free(saved);
}

/* A real config file (and no WSYNC_DATABASE_URL): conninfo from the file. */
static void test_config_file(void)
{
	char *dir = t_tempdir(), path[512], confd[512], text[1536];
	char *saved = strdup(getenv("WSYNC_DATABASE_URL"));
	json_object *j;
	snprintf(path, sizeof path, "%s/wsyncd.ini", dir);
	snprintf(confd, sizeof confd, "%s/conf.d", dir);
	mkdir(confd, 0755);
	snprintf(text, sizeof text,
	         "[database]\nconninfo = %s\n[plugins]\ndir = %s\nconf_dir = %s\n",
	         getenv("WSYNC_TEST_CONNINFO"), dir, confd);
	t_write_file(path, text, 0644);
	unsetenv("WSYNC_DATABASE_URL");
	j = RUN_JSON("-c", path, "queue", "--json");
	T_CHECK(json_object_is_type(j, json_type_array));
	json_object_put(j);
	j = RUN_JSON("--config", path, "plugins", "--json");
	T_CHECK(j != NULL);
	json_object_put(j);
	setenv("WSYNC_DATABASE_URL", saved, 1);
	free(saved);
	free(dir);
}

int main(int argc, char **argv)
{
	PGconn *db;
	if (argc < 2) {
		fprintf(stderr, "usage: %s WSYNCCTL\n", argv[0]);
		return 2;
	}
	ctl = argv[1];
	setenv("WSYNC_DATABASE_URL", getenv("WSYNC_TEST_CONNINFO"), 1);
	db = t_db();
	test_global();
	test_migrate(db);
	test_enqueue_status_queue();
	test_errors(db);
	test_failed(db);
	test_success_rate(db);
	test_retry(db);
	test_prune(db);
	test_bad_args();
	test_backfill_provider(db);
	test_unreachable();
	test_config_file();
	PQfinish(db);
	return t_done();
}
