/*
 * test_engine.c -- the real `wsyncd --once` against PostgreSQL with the
 * scripted plugin: classification rows in the database, the full backoff
 * sequence, links, deletes, create-as-update, per-entity order with several
 * workers, abandoned entries and an unreachable database.
 *
 *   tests/pg_harness.sh test_engine WSYNCD FIXTURE_DIR
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *wsyncd, *fixture_dir;
static PGconn *db;
static char *tmp;
static char ini[512], ini4[512], calls[512], calls4[512];

#define WORKOUT_TEXT "- 10m 70%"

static void write_config(const char *dir, const char *conninfo, int workers,
                         int batch, const char *record, int delay_ms, char *ini_out)
{
	char path[600], text[2048];
	snprintf(path, sizeof path, "%s/conf.d", dir);
	mkdir(dir, 0755);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/conf.d/scripted.ini", dir);
	snprintf(text, sizeof text,
	         "[provider]\nplugin = scripted\n[scripted]\nrecord_file = %s\ndelay_ms = %d\n",
	         record, delay_ms);
	t_write_file(path, text, 0644);
	t_shared_file(record);
	snprintf(ini_out, 512, "%s/wsyncd.ini", dir);
	snprintf(text, sizeof text,
	         "[database]\nconninfo = %s\n[engine]\nworkers = %d\nbatch_size = %d\n"
	         "[plugins]\ndir = %s\nconf_dir = %s/conf.d\n",
	         conninfo, workers, batch, fixture_dir, dir);
	t_write_file(ini_out, text, 0644);
}

static int run_wsyncd(const char *config, char **out)
{
	char *argv[] = {(char *)wsyncd, "-c", (char *)config, "--once", NULL};
	return t_run(argv, out);
}

/* Run once with `config`; the exit status must be 0 (output shown on
 * failure). */
static void run_config(const char *config)
{
	char *out = NULL;
	int rc = run_wsyncd(config, &out);
	T_EQ_INT(rc, 0);
	if (rc != 0)
		fprintf(stderr, "wsyncd output:\n%s\n", out ? out : "");
	free(out);
}

static void run_once(void)
{
	run_config(ini);
}

/* A user with a token on the scripted provider. */
static char *new_user(void)
{
	char *u = t_query_str(db, "SELECT gen_random_uuid()::text", 0, NULL);
	const char *p[1] = {u};
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token,"
	           " upload_workouts_enabled) VALUES ($1, 'scripted', 'tok', true)", 1, p);
	return u;
}

static char *new_workout(const char *user, const char *description)
{
	const char *p[3] = {user, description, WORKOUT_TEXT};
	return t_query_str(db, "INSERT INTO workouts (user_id, name, description, workout_text)"
	                       " VALUES ($1, 'w', $2, $3) RETURNING id::text", 3, p);
}

/* A queue row; `claimed_before` puts it outside the coalescing index (as a
 * row that was claimed once and released). */
static char *enqueue(const char *user, const char *type, const char *id, const char *op,
                     const char *provider_entity_id, int claimed_before)
{
	const char *p[6] = {user, type, id, op, provider_entity_id, claimed_before ? "t" : "f"};
	return t_query_str(db, "INSERT INTO workout_sync_queue (user_id, entity_type, entity_id,"
	                       " operation, provider, provider_entity_id, locked_until)"
	                       " VALUES ($1, $2, $3, $4, 'scripted', $5,"
	                       "  CASE WHEN $6::bool THEN now() - interval '1 minute' END)"
	                       " RETURNING id::text", 6, p);
}

static char *qstr(const char *sql, const char *id)
{
	const char *p[1] = {id};
	return t_query_str(db, sql, 1, p);
}

static long long qint(const char *sql, const char *id)
{
	const char *p[1] = {id};
	return t_query_int(db, sql, 1, p);
}

static long long retry_count(const char *q)
{
	return qint("SELECT retry_count FROM workout_sync_queue WHERE id = $1", q);
}

static long long processed(const char *q)
{
	return qint("SELECT (processed_at IS NOT NULL)::int FROM workout_sync_queue WHERE id = $1", q);
}

/* Seconds from now to next_retry_at. */
static long long delay_s(const char *q)
{
	return qint("SELECT extract(epoch FROM next_retry_at - now())::bigint"
	            " FROM workout_sync_queue WHERE id = $1", q);
}

static void check_error_type(const char *q, const char *want, int line)
{
	char *s = qstr("SELECT error_type FROM workout_sync_queue WHERE id = $1", q);
	if (!want) {
		t_checks++;
		if (s)
			t_fail(__FILE__, line, "error_type == \"%s\", expected NULL", s);
	} else {
		t_checks++;
		if (!s || strcmp(s, want))
			t_fail(__FILE__, line, "error_type == \"%s\", expected \"%s\"",
			       s ? s : "(null)", want);
	}
	free(s);
}
#define CHECK_ERROR_TYPE(q, want) check_error_type(q, want, __LINE__)

#define T_BETWEEN(v, lo, hi)                                                   \
	do {                                                                   \
		long long t_v_ = (v);                                          \
		t_checks++;                                                    \
		if (t_v_ < (lo) || t_v_ > (hi))                                \
			t_fail(__FILE__, __LINE__, "%s == %lld, expected in [%lld, %lld]", \
			       #v, t_v_, (long long)(lo), (long long)(hi));    \
	} while (0)

static void make_due(const char *q)
{
	const char *p[1] = {q};
	t_exec(db, "UPDATE workout_sync_queue SET next_retry_at = now() WHERE id = $1", 1, p);
}

/* ---- the tests ---- */

static void test_ok_creates_link(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=ok");
	char *q = enqueue(u, "workout", w, "create", NULL, 0), *link, want[128];
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, NULL);
	T_EQ_INT(retry_count(q), 0);
	link = qstr("SELECT provider_entity_id FROM workout_sync_links WHERE provider = 'scripted'"
	            " AND entity_type = 'workout' AND entity_id = $1", w);
	snprintf(want, sizeof want, "sc-%s", w);
	T_EQ_STR(link, want);
	free(link);
	free(q), free(w), free(u);
}

static void test_backoff_sequence(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=provider_error");
	char *q = enqueue(u, "workout", w, "create", NULL, 0);
	static const long long expect[3] = {120, 600, 3600};
	for (int i = 0; i < 3; i++) {
		if (i)
			make_due(q);
		run_once();
		T_EQ_INT(retry_count(q), i + 1);
		T_EQ_INT(processed(q), 0);
		CHECK_ERROR_TYPE(q, "provider_error");
		/* +-10 % jitter, plus a few seconds of test time */
		T_BETWEEN(delay_s(q), expect[i] * 9 / 10 - 5, expect[i] * 11 / 10 + 1);
	}
	make_due(q);
	run_once();
	T_EQ_INT(processed(q), 1);
	T_EQ_INT(retry_count(q), 3);
	CHECK_ERROR_TYPE(q, "provider_error");
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_links WHERE entity_id = $1", w), 0);
	free(q), free(w), free(u);
}

static void test_rate_limit(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=rate_limit retry_after=120");
	char *q = enqueue(u, "workout", w, "create", NULL, 0);
	run_once();
	T_EQ_INT(processed(q), 0);
	T_EQ_INT(retry_count(q), 0);
	CHECK_ERROR_TYPE(q, "rate_limit");
	T_BETWEEN(delay_s(q), 110, 121);
	/* The deferral gives the claim's attempt back. */
	T_EQ_INT(qint("SELECT attempts FROM workout_sync_queue WHERE id = $1", q), 0);
	free(q), free(w), free(u);
}

static void test_auth_error(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=auth_error");
	char *q = enqueue(u, "workout", w, "create", NULL, 0);
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, "auth_error");
	T_EQ_INT(retry_count(q), 0);
	free(q), free(w), free(u);
}

static void test_no_token_is_auth_error(void)
{
	char *u = t_query_str(db, "SELECT gen_random_uuid()::text", 0, NULL);
	char *w = new_workout(u, "answer=ok"), *q = enqueue(u, "workout", w, "create", NULL, 0);
	char *log;
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, "auth_error");
	log = t_read_file(calls);
	T_CHECK(strstr(log, w) == NULL); /* no plugin call */
	free(log);
	free(q), free(w), free(u);
}

static void test_other_classes(void)
{
	static const char *const cls[][2] = {
		{"answer=invalid_request", "invalid_request"},
		{"answer=invalid_workout", "invalid_workout"},
	};
	for (int i = 0; i < 2; i++) {
		char *u = new_user(), *w = new_workout(u, cls[i][0]);
		char *q = enqueue(u, "workout", w, "create", NULL, 0);
		run_once();
		T_EQ_INT(processed(q), 1);
		CHECK_ERROR_TYPE(q, cls[i][1]);
		T_EQ_INT(retry_count(q), 0);
		free(q), free(w), free(u);
	}
	/* unexpected_error is retried like provider_error */
	char *u = new_user(), *w = new_workout(u, "answer=unexpected_error");
	char *q = enqueue(u, "workout", w, "create", NULL, 0);
	run_once();
	T_EQ_INT(processed(q), 0);
	T_EQ_INT(retry_count(q), 1);
	CHECK_ERROR_TYPE(q, "unexpected_error");
	T_BETWEEN(delay_s(q), 100, 133);
	free(q), free(w), free(u);
}

/* A create answered with success but no provider id: failed for good, and
 * the provider got one call, not a second create at the next change. */
static void test_created_without_id(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=no_id");
	char *q = enqueue(u, "workout", w, "create", NULL, 0), *msg, *log;
	size_t before = strlen((log = t_read_file(calls)) ? log : "");
	free(log);
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, "unexpected_error");
	T_EQ_INT(retry_count(q), 0);
	msg = qstr("SELECT error_message FROM workout_sync_queue WHERE id = $1", q);
	T_CONTAINS(msg, "plugin scripted answered sync_workout (create) with success but no"
	                " provider id");
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_links WHERE entity_id = $1", w), 0);
	/* one call for this workout in the scripted plugin's record */
	log = t_read_file(calls);
	{
		int n = 0;
		for (const char *p = log ? log + before : ""; (p = strstr(p, w)); p++)
			n++;
		T_EQ_INT(n, 1);
	}
	free(log), free(msg);
	free(q), free(w), free(u);
}

static void test_record_not_found(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=ok");
	char *q = enqueue(u, "workout", w, "create", NULL, 0), *log;
	const char *p[1] = {w};
	t_exec(db, "DELETE FROM workouts WHERE id = $1", 1, p);
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, "record_not_found");
	T_EQ_INT(retry_count(q), 0);
	log = t_read_file(calls);
	T_CHECK(strstr(log, w) == NULL);
	free(log);
	free(q), free(w), free(u);
}

static void test_delete_linked(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=ok"), *q, *log;
	char pid[128], line[256];
	const char *p[3] = {u, w, pid};
	snprintf(pid, sizeof pid, "sc-%s", w);
	t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	           " provider_entity_id) VALUES ('scripted', 'workout', $2, $1, $3)", 3, p);
	t_exec(db, "DELETE FROM workouts WHERE id = $2 AND user_id = $1", 2, p);
	q = enqueue(u, "workout", w, "delete", pid, 0);
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, NULL);
	snprintf(line, sizeof line, "delete workout %s ", pid);
	log = t_read_file(calls);
	T_CONTAINS(log, line);
	free(log);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_links WHERE entity_id = $1", w), 0);
	free(q), free(w), free(u);
}

static void test_create_of_linked_is_update(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=ok"), *q, *log, *link;
	char line[256], want[128];
	const char *p[2] = {u, w};
	t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	           " provider_entity_id) VALUES ('scripted', 'workout', $2, $1, 'sc-old')", 2, p);
	q = enqueue(u, "workout", w, "create", NULL, 0);
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, NULL);
	log = t_read_file(calls);
	snprintf(line, sizeof line, "update workout %s ", w);
	T_CONTAINS(log, line);
	snprintf(line, sizeof line, "create workout %s ", w);
	T_CHECK(strstr(log, line) == NULL);
	free(log);
	link = qstr("SELECT provider_entity_id FROM workout_sync_links WHERE entity_id = $1", w);
	snprintf(want, sizeof want, "sc-%s", w);
	T_EQ_STR(link, want);
	free(link);
	T_EQ_INT(qint("SELECT count(*) FROM workout_sync_links WHERE entity_id = $1", w), 1);
	free(q), free(w), free(u);
}

/* create + update of the same entity, 4 workers: the update is claimed only
 * after the create completed, the plugin sees one create then one update.
 * A test-only trigger watches every claim (a lease_token change): with a
 * fresh snapshot it looks for an older unprocessed entry of the same entity
 * (timestamps cannot tell: now() is taken before the claim's snapshot). */
static void test_order_per_entity(void)
{
	enum { N = 24 };
	char *u[N], *w[N], *qc[N], *qu[N], *log, *out = NULL;
	int rc;
	t_exec(db, "CREATE TABLE t_order_violations (id uuid, older uuid)", 0, NULL);
	t_exec(db, "CREATE FUNCTION t_check_order() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$"
	           " BEGIN"
	           "  IF NEW.lease_token IS DISTINCT FROM OLD.lease_token THEN"
	           "   INSERT INTO t_order_violations SELECT NEW.id, o.id FROM workout_sync_queue o"
	           "    WHERE o.entity_type = NEW.entity_type AND o.entity_id = NEW.entity_id"
	           "      AND o.provider = NEW.provider AND o.processed_at IS NULL"
	           "      AND o.seq < NEW.seq;"
	           "  END IF;"
	           "  RETURN NEW;"
	           " END $$", 0, NULL);
	t_exec(db, "CREATE TRIGGER t_check_order BEFORE UPDATE ON workout_sync_queue"
	           " FOR EACH ROW EXECUTE FUNCTION t_check_order()", 0, NULL);
	for (int i = 0; i < N; i++) { /* one user each: stay under 30 calls/min */
		u[i] = new_user();
		w[i] = new_workout(u[i], "answer=ok");
		qc[i] = enqueue(u[i], "workout", w[i], "create", NULL, 1);
		qu[i] = enqueue(u[i], "workout", w[i], "update", NULL, 0);
	}
	rc = run_wsyncd(ini4, &out);
	T_EQ_INT(rc, 0);
	if (rc)
		fprintf(stderr, "wsyncd output:\n%s\n", out ? out : "");
	free(out);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM t_order_violations", 0, NULL), 0);
	t_exec(db, "DROP TRIGGER t_check_order ON workout_sync_queue", 0, NULL);
	log = t_read_file(calls4);
	for (int i = 0; i < N; i++) {
		char c[128], up[128];
		const char *pc, *pu;
		T_EQ_INT(processed(qc[i]), 1);
		T_EQ_INT(processed(qu[i]), 1);
		CHECK_ERROR_TYPE(qc[i], NULL);
		CHECK_ERROR_TYPE(qu[i], NULL);
		/* the update's claim came after the create's completion */
		snprintf(c, sizeof c, "create workout %s ", w[i]);
		snprintf(up, sizeof up, "update workout %s ", w[i]);
		pc = strstr(log, c);
		pu = strstr(log, up);
		T_CHECK(pc != NULL);
		T_CHECK(pu != NULL);
		T_CHECK(pc && pu && pc < pu);
		T_CHECK(pc && strstr(pc + 1, c) == NULL); /* exactly one create */
		free(u[i]), free(w[i]), free(qc[i]), free(qu[i]);
	}
	free(log);
}

static void test_abandoned(void)
{
	char *u = new_user(), *w = new_workout(u, "answer=ok"), *q, *msg, *log;
	const char *p[1];
	q = enqueue(u, "workout", w, "create", NULL, 0);
	p[0] = q;
	t_exec(db, "UPDATE workout_sync_queue SET attempts = 3,"
	           " locked_until = now() - interval '1 minute', locked_by = 'dead:1:w0'"
	           " WHERE id = $1", 1, p);
	run_once();
	T_EQ_INT(processed(q), 1);
	CHECK_ERROR_TYPE(q, "unexpected_error");
	T_EQ_INT(retry_count(q), 0);
	msg = qstr("SELECT error_message FROM workout_sync_queue WHERE id = $1", q);
	T_CONTAINS(msg, "abandoned");
	free(msg);
	log = t_read_file(calls);
	T_CHECK(strstr(log, w) == NULL); /* not run again */
	free(log);
	free(q), free(w), free(u);
}

/* A user with a token on `provider`, malloc'ed; its uuid starts with
 * `rank` (8 hex digits), so users made with rising ranks sort in that
 * order (the batch grant serves users in uuid order). */
static char *provider_user(const char *provider, int rank)
{
	char r[16];
	const char *p[2] = {provider, r};
	char *user;
	snprintf(r, sizeof r, "%08x", (unsigned)rank);
	user = t_query_str(db, "SELECT overlay(gen_random_uuid()::text PLACING $1 FROM 1 FOR 8)",
	                   1, p + 1);
	p[1] = user;
	t_exec(db, "INSERT INTO provider_tokens (user_id, provider, access_token,"
	           " upload_workouts_enabled) VALUES ($2, $1, 'tok', true)", 2, p);
	return user;
}

/* A provider `name` (conf.d/<name>.ini, plugin scripted) whose every call
 * makes one GET through the core (to a closed port: only a deferral
 * changes the scripted answer), with the rate limit line `limits`
 * ("user_rate_limits = 1/1m"), one worker; its own config at *ini_out.
 * Returns a user with a token there. */
static char *limited_provider(const char *conninfo, const char *name, const char *limits,
                              char *ini_out)
{
	char dir[600], path[700], text[2048], rec[700];
	const char *p[1] = {name};
	snprintf(dir, sizeof dir, "%s/%s", tmp, name);
	snprintf(rec, sizeof rec, "%s/calls-%s.log", tmp, name);
	write_config(dir, conninfo, 1, 10, rec, 0, ini_out);
	snprintf(path, sizeof path, "%s/conf.d/scripted.ini", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/conf.d/%s.ini", dir, name);
	snprintf(text, sizeof text,
	         "[provider]\nplugin = scripted\n%s\n"
	         "base_url = https://127.0.0.1:9\nconnect_timeout_seconds = 2\n"
	         "[scripted]\nrecord_file = %s\nhttp = true\n", limits, rec);
	t_write_file(path, text, 0644);
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ($1, 'scripted')"
	           " ON CONFLICT DO NOTHING", 1, p);
	return provider_user(name, 0);
}

/* n creates of new workouts of `user` on `provider`, in this order. */
static void enqueue_creates(const char *provider, const char *user, int n, char **w, char **q)
{
	for (int i = 0; i < n; i++) {
		const char *p[3] = {user, NULL, provider};
		p[1] = w[i] = new_workout(user, "answer=ok");
		q[i] = t_query_str(db, "INSERT INTO workout_sync_queue (user_id, entity_type,"
		                       " entity_id, operation, provider) VALUES ($1, 'workout', $2,"
		                       " 'create', $3) RETURNING id::text", 3, p);
	}
}

/* wsync's own limiter defers an entry before its request: nothing of that
 * attempt can have reached the provider, so it leaves no intent and the
 * next attempt does not look up what cannot exist; an intent an earlier
 * attempt left stays. */
static void test_own_deferral_leaves_no_intent(const char *conninfo)
{
	char lini[512], *u, *w[3], *q[3];
	const char *p[1];
	u = limited_provider(conninfo, "limited", "user_rate_limits = 1/1m", lini);
	enqueue_creates("limited", u, 3, w, q);
	/* q[1]'s earlier attempt may have reached the provider. */
	p[0] = q[1];
	t_exec(db, "UPDATE workout_sync_queue SET intent_at = now() - interval '1 minute',"
	           " attempts = 1, locked_until = now() - interval '1 minute'"
	           " WHERE id = $1", 1, p);
	run_config(lini);
	/* The first in queue order had the user's one call of the minute. */
	T_EQ_INT(processed(q[0]), 1);
	CHECK_ERROR_TYPE(q[0], NULL);
	for (int i = 1; i < 3; i++) {
		T_EQ_INT(processed(q[i]), 0);
		CHECK_ERROR_TYPE(q[i], "rate_limit");
		T_EQ_INT(retry_count(q[i]), 0);
	}
	T_EQ_INT(qint("SELECT (intent_at IS NOT NULL)::int FROM workout_sync_queue"
	              " WHERE id = $1", q[1]), 1);
	T_EQ_INT(qint("SELECT attempts FROM workout_sync_queue WHERE id = $1", q[1]), 1);
	T_EQ_INT(qint("SELECT (intent_at IS NOT NULL)::int FROM workout_sync_queue"
	              " WHERE id = $1", q[2]), 0);
	T_EQ_INT(qint("SELECT attempts FROM workout_sync_queue WHERE id = $1", q[2]), 0);
	for (int i = 0; i < 3; i++)
		free(w[i]), free(q[i]);
	free(u);
}

/* A user's backlog deferred by wsync's own limiter (2 calls a minute) comes
 * back two entries a minute, in queue order, not all at once to be
 * deferred again; the entries the batch's grant left without a call are
 * deferred at their claim, never started. */
/* Of the n entries q (queue order) under a window of `per_minute` calls a
 * minute: the first per_minute synced, the rest deferred at their claim
 * (never started, so no attempt made) and due per_minute a minute after
 * the limiter's wait, in queue order. */
static void check_waves(char *const *q, int n, int per_minute)
{
	long long first = 0, prev = 0;
	for (int i = 0; i < per_minute; i++)
		T_EQ_INT(processed(q[i]), 1);
	for (int i = per_minute; i < n; i++) {
		long long d = delay_s(q[i]);
		int wave = (i - per_minute) / per_minute;
		T_EQ_INT(processed(q[i]), 0);
		CHECK_ERROR_TYPE(q[i], "rate_limit");
		T_EQ_INT(qint("SELECT attempts + (last_attempt_at IS NOT NULL)::int"
		              " FROM workout_sync_queue WHERE id = $1", q[i]), 0);
		if (i == per_minute)
			first = d;
		T_BETWEEN(d, first + 60 * wave - 2, first + 60 * wave + 2);
		T_CHECK(d >= prev - 2); /* queue order */
		prev = d;
	}
	T_BETWEEN(first, 40, 62); /* the limiter's own wait for the next slot */
}

static void test_backlog_comes_back_in_waves(const char *conninfo)
{
	enum { N = 9 };
	char lini[512], *u, *w[N], *q[N];
	u = limited_provider(conninfo, "waves", "user_rate_limits = 2/1m", lini);
	enqueue_creates("waves", u, N, w, q);
	run_config(lini);
	check_waves(q, N, 2);
	for (int i = 0; i < N; i++)
		free(w[i]), free(q[i]);
	free(u);
}

/* A backlog held by an app-wide window (2 calls a minute for everyone)
 * comes back two entries a minute across its users, in queue order, each
 * deferred at its claim.  (The users' uuids rise in queue order: the grant
 * serves users in uuid order.) */
static void test_app_backlog_comes_back_in_waves(const char *conninfo)
{
	enum { N = 9 };
	char lini[512], *u[N], *w[N], *q[N];
	u[0] = limited_provider(conninfo, "appwaves", "app_rate_limits = 2/1m", lini);
	for (int i = 1; i < N; i++)
		u[i] = provider_user("appwaves", i);
	for (int i = 0; i < N; i++)
		enqueue_creates("appwaves", u[i], 1, &w[i], &q[i]);
	run_config(lini);
	check_waves(q, N, 2);
	for (int i = 0; i < N; i++)
		free(u[i]), free(w[i]), free(q[i]);
}

/* Against a schema without 0015 (a rolling upgrade), the entries the grant
 * denied are deferred as before 0015: each starts, asks the limiter from
 * its request, and is deferred with its attempt given back. */
static void test_deferral_without_rate_wait(const char *conninfo)
{
	enum { N = 3 };
	char lini[512], *u, *w[N], *q[N];
	u = limited_provider(conninfo, "nowait", "user_rate_limits = 1/1m", lini);
	enqueue_creates("nowait", u, N, w, q);
	t_exec(db, "ALTER FUNCTION wsync_rate_wait(text, uuid[], integer[], integer[], integer[],"
	           " integer[], timestamptz) RENAME TO wsync_rate_wait_hidden", 0, NULL);
	run_config(lini);
	t_exec(db, "ALTER FUNCTION wsync_rate_wait_hidden(text, uuid[], integer[], integer[],"
	           " integer[], integer[], timestamptz) RENAME TO wsync_rate_wait", 0, NULL);
	T_EQ_INT(processed(q[0]), 1);
	for (int i = 1; i < N; i++) {
		T_EQ_INT(processed(q[i]), 0);
		CHECK_ERROR_TYPE(q[i], "rate_limit");
		T_EQ_INT(qint("SELECT attempts FROM workout_sync_queue WHERE id = $1", q[i]), 0);
		T_EQ_INT(qint("SELECT (last_attempt_at IS NOT NULL)::int FROM workout_sync_queue"
		              " WHERE id = $1", q[i]), 1); /* it did start */
	}
	for (int i = 0; i < N; i++)
		free(w[i]), free(q[i]);
	free(u);
}

static void test_bad_conninfo(void)
{
	char dir[600], bad_ini[512], *out = NULL;
	int rc;
	snprintf(dir, sizeof dir, "%s/bad", tmp);
	write_config(dir, "host=/nonexistent-wsync-socket-dir user=nobody dbname=none connect_timeout=2",
	             1, 10, calls, 0, bad_ini);
	rc = run_wsyncd(bad_ini, &out);
	T_EQ_INT(rc, 1);
	free(out);
}

int main(int argc, char **argv)
{
	const char *conninfo = getenv("WSYNC_TEST_CONNINFO");
	char dir[600];
	if (argc < 3 || !conninfo) {
		fprintf(stderr, "usage: pg_harness.sh %s WSYNCD FIXTURE_DIR\n", argv[0]);
		return 2;
	}
	wsyncd = argv[1];
	fixture_dir = argv[2];
	db = t_db();
	t_migrate(db);
	/* We write queue rows ourselves: keep the entity triggers quiet. */
	t_exec(db, "SET wsync.triggers = off", 0, NULL);
	t_exec(db, "INSERT INTO sync_providers (name, plugin) VALUES ('scripted', 'scripted')"
	           " ON CONFLICT DO NOTHING", 0, NULL);

	tmp = t_tempdir();
	snprintf(calls, sizeof calls, "%s/calls.log", tmp);
	snprintf(calls4, sizeof calls4, "%s/calls4.log", tmp);
	write_config(tmp, conninfo, 2, 10, calls, 0, ini);
	snprintf(dir, sizeof dir, "%s/w4", tmp);
	write_config(dir, conninfo, 4, 8, calls4, 10, ini4);

	test_ok_creates_link();
	test_backoff_sequence();
	test_rate_limit();
	test_auth_error();
	test_no_token_is_auth_error();
	test_other_classes();
	test_created_without_id();
	test_record_not_found();
	test_delete_linked();
	test_create_of_linked_is_update();
	test_order_per_entity();
	test_abandoned();
	test_own_deferral_leaves_no_intent(conninfo);
	test_backlog_comes_back_in_waves(conninfo);
	test_app_backlog_comes_back_in_waves(conninfo);
	test_deferral_without_rate_wait(conninfo);
	test_bad_conninfo();

	PQfinish(db);
	return t_done();
}
