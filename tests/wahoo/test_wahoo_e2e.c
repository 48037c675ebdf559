/*
 * test_wahoo_e2e.c -- the Wahoo plugin end to end: the application writes
 * workouts and scheduled workouts, `wsyncd --once` drains the queue through
 * wahoo.so against wsync-sandbox, and the sandbox's store, the queue, the
 * links and the tokens are checked.
 *
 *   test_wahoo_e2e WAHOO_SO     (under tests/pg_harness.sh, env from meson)
 */
#include "e2e.h"

#include <curl/curl.h>
#include <stdlib.h>

#define SYNTAX_EXAMPLE T_SYNTAX_EXAMPLE

static const char *instance_ini =
	"[provider]\n"
	"plugin = wahoo\n"
	"base_url = @BASE@\n"
	"rate_limit_per_minute = 600\n"
	"[oauth]\n"
	"token_url = @BASE@/oauth/token\n"
	"client_id = wsync-test\n"
	"client_secret_file = @DIR@/wahoo.secret\n"
	"[wahoo]\n"
	"ftp = 250\n";

/* A second instance of the same plugin with a 1 s timeout. */
static const char *slow_ini =
	"[provider]\n"
	"plugin = wahoo\n"
	"base_url = @BASE@\n"
	"timeout_seconds = 1\n"
	"[wahoo]\n"
	"location = outdoor\n"
	"ramp_steps = 1\n";

/* ------------------------------------------------------------------ helpers */

static char *dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int run(e2e *t)
{
	char *out = NULL;
	int rc = e2e_wsyncd_once(t, &out);
	if (rc != 0)
		fprintf(stderr, "wsyncd --once exited %d:\n%s\n", rc, out ? out : "");
	free(out);
	return rc;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (o)
		json_object_object_get_ex(o, key, &v);
	return v;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v ? json_object_get_string(v) : NULL;
}

static double dbl(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v ? json_object_get_double(v) : -1;
}

static json_object *idx(json_object *arr, size_t i)
{
	return arr && json_object_is_type(arr, json_type_array) &&
	       i < json_object_array_length(arr) ? json_object_array_get_idx(arr, i) : NULL;
}

static size_t len(json_object *arr)
{
	return arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr)
	                                                        : 0;
}

static int near(double a, double b)
{
	return a - b < 1e-6 && b - a < 1e-6;
}

/* The stored objects of `kind` ("plans", "workouts") whose `key` is `value`:
 * the first one (a new reference, caller puts) and their number in *n. */
static json_object *stored(e2e *t, const char *kind, const char *key, const char *value,
                           int *n)
{
	json_object *store = e2e_sandbox_json(t, "/_sandbox/store");
	json_object *list = get(get(store, "wahoo"), kind), *found = NULL;
	int count = 0;
	for (size_t i = 0; i < len(list); i++) {
		json_object *o = idx(list, i);
		const char *v = str(o, key);
		if (v && !strcmp(v, value)) {
			if (!found)
				found = json_object_get(o);
			count++;
		}
	}
	json_object_put(store);
	if (n)
		*n = count;
	return found;
}

static json_object *plan_of(e2e *t, const char *workout_id, int *n)
{
	return stored(t, "plans", "external_id", workout_id, n);
}

static json_object *workout_of(e2e *t, const char *scheduled_id, int *n)
{
	return stored(t, "workouts", "workout_token", scheduled_id, n);
}

static void sql(e2e *t, const char *q, const char *a, const char *b)
{
	const char *p[2] = {a, b};
	t_exec(t->db, q, b ? 2 : a ? 1 : 0, p);
}

static long long q_int(e2e *t, const char *expr, const char *entity)
{
	char q[512];
	const char *p[1] = {entity};
	snprintf(q, sizeof q, "SELECT %s FROM workout_sync_queue WHERE entity_id = $1"
	                      " ORDER BY seq DESC LIMIT 1", expr);
	return t_query_int(t->db, q, 1, p);
}

static char *q_str(e2e *t, const char *expr, const char *entity)
{
	char q[512];
	const char *p[1] = {entity};
	snprintf(q, sizeof q, "SELECT %s FROM workout_sync_queue WHERE entity_id = $1"
	                      " ORDER BY seq DESC LIMIT 1", expr);
	return t_query_str(t->db, q, 1, p);
}

static void check_state(e2e *t, const char *entity, const char *provider,
                        const char *want, int line)
{
	char *s = e2e_queue_state(t, entity, provider);
	t_checks++;
	if (!s || strcmp(s, want)) {
		char *msg = q_str(t, "coalesce(error_message, '')", entity);
		t_fail(__FILE__, line, "queue state of %s is '%s', expected '%s' (%s)", entity,
		       s ? s : "(none)", want, msg ? msg : "");
		free(msg);
	}
	free(s);
}
#define STATE(t, e, p, want) check_state(t, e, p, want, __LINE__)

/* Seconds until the entry's next attempt. */
static long long wait_s(e2e *t, const char *entity)
{
	return q_int(t, "extract(epoch FROM next_retry_at - now())::bigint", entity);
}

static void retry_now(e2e *t, const char *entity)
{
	sql(t, "UPDATE workout_sync_queue SET next_retry_at = now()"
	       " WHERE entity_id = $1 AND processed_at IS NULL", entity, NULL);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* A Wahoo API call with a bearer token, as another client would make it. */
static int api(e2e *t, const char *method, const char *path, const char *token)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h;
	char url[600], auth[300];
	long status = 0;
	snprintf(url, sizeof url, "%s%s", t->base_url, path);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
	h = curl_slist_append(NULL, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return (int)status;
}

static void control(e2e *t, const char *method, const char *path, const char *json)
{
	char *body = NULL;
	int st = e2e_sandbox(t, method, path, json, &body);
	t_checks++;
	if (st != 200)
		t_fail(__FILE__, __LINE__, "%s %s %s answered %d: %s", method, path,
		       json ? json : "", st, body ? body : "");
	free(body);
}

static long long stat_of(e2e *t, const char *key)
{
	json_object *s = e2e_sandbox_json(t, "/_sandbox/stats");
	long long v = (long long)dbl(s, key);
	json_object_put(s);
	return v;
}

/* Requests received since `seq` with this method and path prefix. */
static int requests(e2e *t, const char *method, const char *prefix, long long since)
{
	char path[300];
	json_object *r;
	int n;
	snprintf(path, sizeof path, "/_sandbox/requests?method=%s&path_prefix=%s&since=%lld",
	         method, prefix, since);
	r = e2e_sandbox_json(t, path);
	n = (int)len(r);
	json_object_put(r);
	return n;
}

static long long last_seq(e2e *t)
{
	json_object *r = e2e_sandbox_json(t, "/_sandbox/requests");
	json_object *last = idx(r, len(r) ? len(r) - 1 : 0);
	long long s = last ? (long long)dbl(last, "seq") : 0;
	json_object_put(r);
	return s;
}

static void check_target(json_object *iv, size_t i, const char *type, double lo, double hi,
                         int line)
{
	json_object *tg = idx(get(iv, "targets"), i);
	t_checks++;
	if (!tg || !str(tg, "type") || strcmp(str(tg, "type"), type) ||
	    !near(dbl(tg, "low"), lo) || !near(dbl(tg, "high"), hi))
		t_fail(__FILE__, line, "target %zu of %s is %s, expected %s %g..%g", i,
		       json_object_to_json_string(iv), tg ? json_object_to_json_string(tg) : "none",
		       type, lo, hi);
}
#define TARGET(iv, i, type, lo, hi) check_target(iv, i, type, lo, hi, __LINE__)

static void check_interval(json_object *iv, const char *trigger, double value,
                           const char *intensity, int line)
{
	t_checks++;
	if (!iv || !str(iv, "exit_trigger_type") || strcmp(str(iv, "exit_trigger_type"), trigger) ||
	    !near(dbl(iv, "exit_trigger_value"), value) ||
	    (intensity && (!str(iv, "intensity_type") ||
	                   strcmp(str(iv, "intensity_type"), intensity))))
		t_fail(__FILE__, line, "interval %s, expected %s %g %s",
		       iv ? json_object_to_json_string(iv) : "(none)", trigger, value,
		       intensity ? intensity : "");
}
#define INTERVAL(iv, trig, val, inten) check_interval(iv, trig, val, inten, __LINE__)

/* A user of `provider` with one workout; returns the workout id (malloc). */
static char *one_workout(e2e *t, const char *provider, const char *token, const char *text,
                         char **user_out)
{
	const char *u = e2e_user(t, provider, token);
	char *user = dup(u);
	char *w = dup(e2e_workout(t, user, "Fault test", "bike", text));
	if (user_out)
		*user_out = user;
	else
		free(user);
	return w;
}

/* ---------------------------------------------------------------- scenarios */

/* Create, update, reschedule and delete, with the plan file checked. */
static void lifecycle(e2e *t)
{
	const char *p[4];
	char *user = dup(e2e_user(t, "wahoo", "tok-life"));
	char *w, *s, *plan_link, *wo_link;
	json_object *plan, *file, *hdr, *iv, *rep, *wo;
	long long seq;
	int n;

	p[0] = user;
	p[1] = "VO2 5x3";
	p[2] = "A classic";
	p[3] = SYNTAX_EXAMPLE;
	w = t_query_str(t->db, "INSERT INTO workouts (user_id, name, description, sport,"
	                       " workout_text) VALUES ($1, $2, $3, 'bike', $4) RETURNING id",
	                4, p);
	s = dup(e2e_schedule(t, user, w, "2026-12-01", "07:30:00"));
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	STATE(t, s, "wahoo", "processed||0");

	plan = plan_of(t, w, &n);
	T_EQ_INT(n, 1);
	plan_link = e2e_link(t, "wahoo", "workout", w);
	T_CHECK(plan_link && plan && !strcmp(plan_link, str(plan, "id")));
	T_EQ_STR(str(plan, "filename"), "plan.json");
	T_EQ_INT(len(get(plan, "sandbox_warnings")), 0);
	T_CHECK(str(plan, "provider_updated_at") && strlen(str(plan, "provider_updated_at")) >= 20);
	file = get(plan, "file_json");
	if (getenv("E2E_VERBOSE"))
		fprintf(stderr, "plan file: %s\n", json_object_to_json_string(file));
	hdr = get(file, "header");
	T_EQ_STR(str(hdr, "name"), "VO2 5x3");
	T_EQ_STR(str(hdr, "version"), "1.0.0");
	T_EQ_STR(str(hdr, "description"), "A classic");
	T_EQ_INT(dbl(hdr, "workout_type_family"), 0);
	T_EQ_INT(dbl(hdr, "workout_type_location"), 0);
	T_EQ_INT(dbl(hdr, "ftp"), 250);

	/* warm-up ramp 50-75 % over 10 min: 10 steps of 60 s from 0.50 to 0.75,
	 * cadence second; then the repeat; then the cool-down */
	iv = get(file, "intervals");
	T_EQ_INT(len(iv), 12);
	for (size_t i = 0; i < 10; i++) {
		double v = 0.5 + 0.25 * (double)i / 9;
		v = (double)(long long)(v * 10000 + 0.5) / 10000;
		INTERVAL(idx(iv, i), "time", 60, "wu");
		TARGET(idx(iv, i), 0, "ftp", v, v);
		TARGET(idx(iv, i), 1, "rpm", 90, 90);
	}
	T_EQ_STR(str(idx(iv, 0), "name"), "Warmup");
	rep = idx(iv, 10);
	INTERVAL(rep, "repeat", 4, NULL);
	T_CHECK(get(rep, "targets") == NULL);
	T_EQ_INT(len(get(rep, "intervals")), 2);
	INTERVAL(idx(get(rep, "intervals"), 0), "time", 180, "active");
	TARGET(idx(get(rep, "intervals"), 0), 0, "ftp", 1.2, 1.2);
	TARGET(idx(get(rep, "intervals"), 0), 1, "rpm", 100, 100);
	INTERVAL(idx(get(rep, "intervals"), 1), "time", 120, "recover");
	T_EQ_STR(str(idx(get(rep, "intervals"), 1), "name"), "Recovery");
	TARGET(idx(get(rep, "intervals"), 1), 0, "ftp", 0, 0.55); /* Coggan Z1 */
	TARGET(idx(get(rep, "intervals"), 1), 1, "rpm", 85, 85);
	INTERVAL(idx(iv, 11), "time", 480, "cd");
	TARGET(idx(iv, 11), 0, "ftp", 0.5, 0.5);
	T_EQ_INT(len(get(idx(iv, 11), "targets")), 1);
	json_object_put(plan);

	/* the scheduled workout: plan_id, starts, minutes (43), type 12 */
	wo = workout_of(t, s, &n);
	T_EQ_INT(n, 1);
	wo_link = e2e_link(t, "wahoo", "workout_scheduled", s);
	T_CHECK(wo_link && wo && !strcmp(wo_link, str(wo, "id")));
	T_EQ_STR(str(wo, "plan_id"), plan_link);
	T_EQ_STR(str(wo, "starts"), "2026-12-01T07:30:00.000Z");
	T_EQ_STR(str(wo, "starts_raw"), "2026-12-01T07:30:00Z");
	T_EQ_INT(dbl(wo, "minutes"), 43);
	T_EQ_INT(dbl(wo, "workout_type_id"), 12);
	T_EQ_STR(str(wo, "name"), "VO2 5x3");
	json_object_put(wo);

	/* update: new text -> PUT, same plan */
	seq = last_seq(t);
	sql(t, "UPDATE workouts SET workout_text = '- 20m 85%', name = 'Tempo' WHERE id = $1",
	    w, NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	T_EQ_INT(requests(t, "PUT", "/v1/plans/", seq), 1);
	T_EQ_INT(requests(t, "POST", "/v1/plans", seq), 0);
	plan = plan_of(t, w, &n);
	T_EQ_INT(n, 1);
	T_EQ_STR(str(plan, "id"), plan_link);
	T_EQ_STR(str(plan, "name"), "Tempo");
	iv = get(get(plan, "file_json"), "intervals");
	T_EQ_INT(len(iv), 1);
	INTERVAL(idx(iv, 0), "time", 1200, "active");
	TARGET(idx(iv, 0), 0, "ftp", 0.85, 0.85);
	json_object_put(plan);

	/* reschedule to another day without a time -> PUT, 07:00 UTC */
	seq = last_seq(t);
	sql(t, "UPDATE workouts_scheduled SET scheduled_date = '2026-12-03',"
	       " scheduled_time = NULL WHERE id = $1", s, NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, s, "wahoo", "processed||0");
	T_EQ_INT(requests(t, "PUT", "/v1/workouts/", seq), 1);
	wo = workout_of(t, s, &n);
	T_EQ_INT(n, 1);
	T_EQ_STR(str(wo, "id"), wo_link);
	T_EQ_STR(str(wo, "starts"), "2026-12-03T07:00:00.000Z");
	T_EQ_INT(dbl(wo, "minutes"), 20);
	T_EQ_STR(str(wo, "plan_id"), plan_link);
	json_object_put(wo);

	/* deletes: gone from the store, links removed */
	sql(t, "DELETE FROM workouts_scheduled WHERE id = $1", s, NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, s, "wahoo", "processed||0");
	wo = workout_of(t, s, &n);
	T_EQ_INT(n, 0);
	json_object_put(wo);
	T_CHECK(e2e_link(t, "wahoo", "workout_scheduled", s) == NULL);

	sql(t, "DELETE FROM workouts WHERE id = $1", w, NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	plan = plan_of(t, w, &n);
	T_EQ_INT(n, 0);
	json_object_put(plan);
	T_CHECK(e2e_link(t, "wahoo", "workout", w) == NULL);

	free(plan_link);
	free(wo_link);
	free(user);
	free(w);
	free(s);
}

/* A run: family 1, heart-rate and pace targets, distance and lap steps,
 * workout type 1, default start time. */
static void run_mapping(e2e *t)
{
	char *user = dup(e2e_user(t, "wahoo", "tok-run"));
	char *w = dup(e2e_workout(t, user, "Run mix", "Running",
	                          "- 10m 70% HR\n"
	                          "- 2km 5:00/km\n"
	                          "- 5m Z2 HR\n"
	                          "- 3m 90% Pace\n"
	                          "- 3m 95% LTHR\n"
	                          "- 4m Z3 Pace\n"
	                          "- 1m 220w\n"
	                          "- press lap\n"
	                          "- 5m ramp 300-200w\n"
	                          "- 1km ramp 70-80% Pace\n"));
	char *s = dup(e2e_schedule(t, user, w, "2026-11-20", NULL));
	json_object *plan, *iv, *wo;
	int n;

	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	STATE(t, s, "wahoo", "processed||0");
	plan = plan_of(t, w, &n);
	T_EQ_INT(n, 1);
	T_EQ_INT(dbl(get(get(plan, "file_json"), "header"), "workout_type_family"), 1);
	iv = get(get(plan, "file_json"), "intervals");
	T_EQ_INT(len(iv), 8 + 5 + 4);
	INTERVAL(idx(iv, 0), "time", 600, "active");
	TARGET(idx(iv, 0), 0, "max_hr", 0.7, 0.7);
	INTERVAL(idx(iv, 1), "distance", 2000, NULL);
	TARGET(idx(iv, 1), 0, "speed", 3.333, 3.333);
	TARGET(idx(iv, 2), 0, "threshold_hr", 0.69, 0.83);
	TARGET(idx(iv, 3), 0, "threshold_speed", 0.9, 0.9);
	TARGET(idx(iv, 4), 0, "threshold_hr", 0.95, 0.95);
	TARGET(idx(iv, 5), 0, "threshold_speed", 0.877, 0.943);
	TARGET(idx(iv, 6), 0, "watts", 220, 220);
	INTERVAL(idx(iv, 7), "time", 600, NULL); /* press lap: open_step_seconds */
	T_CHECK(get(idx(iv, 7), "targets") == NULL);
	/* a 5-minute ramp going down: 5 steps of 60 s, 300 -> 200 W */
	INTERVAL(idx(iv, 8), "time", 60, NULL);
	TARGET(idx(iv, 8), 0, "watts", 300, 300);
	TARGET(idx(iv, 10), 0, "watts", 250, 250);
	TARGET(idx(iv, 12), 0, "watts", 200, 200);
	/* a 1 km ramp: 4 steps of 250 m */
	INTERVAL(idx(iv, 13), "distance", 250, NULL);
	TARGET(idx(iv, 13), 0, "threshold_speed", 0.7, 0.7);
	INTERVAL(idx(iv, 16), "distance", 250, NULL);
	TARGET(idx(iv, 16), 0, "threshold_speed", 0.8, 0.8);
	json_object_put(plan);

	wo = workout_of(t, s, &n);
	T_EQ_INT(n, 1);
	T_EQ_INT(dbl(wo, "workout_type_id"), 1);
	T_EQ_STR(str(wo, "starts"), "2026-11-20T07:00:00.000Z");
	/* 10+5+3+3+4+1+5 = 31 minutes of timed steps */
	T_EQ_INT(dbl(wo, "minutes"), 31);
	json_object_put(wo);
	free(user);
	free(w);
	free(s);
}

/* 429: Retry-After seconds, or only X-RateLimit-Reset; no retry used. */
static void rate_limits(e2e *t)
{
	char *w;
	long long wait;

	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":429,"
	             "\"headers\":{\"Retry-After\":\"120\"}}");
	w = one_workout(t, "wahoo", "tok-429a", "- 10m 60%", NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "pending|rate_limit|0");
	wait = wait_s(t, w);
	T_CHECK(wait >= 110 && wait <= 125);
	retry_now(t, w);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	free(w);

	e2e_fault(t, "{\"path_prefix\":\"/v1/\",\"status\":429,"
	             "\"headers\":{\"X-RateLimit-Reset\":\"30\"}}");
	w = one_workout(t, "wahoo", "tok-429b", "- 10m 60%", NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "pending|rate_limit|0");
	wait = wait_s(t, w);
	T_CHECK(wait >= 20 && wait <= 35);
	retry_now(t, w);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	free(w);
}

/* Register a token pair in the sandbox for a DB user. */
static void register_pair(e2e *t, const char *at, const char *rt, int expires_in)
{
	char json[400];
	snprintf(json, sizeof json, "{\"access_token\":\"%s\",\"refresh_token\":\"%s\","
	                            "\"expires_in\":%d}", at, rt, expires_in);
	control(t, "POST", "/_sandbox/tokens", json);
}

static char *token_of(e2e *t, const char *user, const char *col)
{
	char q[200];
	const char *p[1] = {user};
	snprintf(q, sizeof q, "SELECT %s FROM provider_tokens WHERE user_id = $1"
	                      " AND provider = 'wahoo'", col);
	return t_query_str(t->db, q, 1, p);
}

static void auth(e2e *t)
{
	char *w, *user, *at, *rt, *rc;
	long long refreshes, unauthorized;

	control(t, "POST", "/_sandbox/settings",
	        "{\"accept_any_token\":false,\"client_id\":\"wsync-test\","
	        "\"client_secret\":\"s3cret\"}");

	/* 401 (the sandbox expired the token) -> refresh -> repeated -> ok */
	register_pair(t, "at-401", "rt-at-401", 3600);
	control(t, "POST", "/_sandbox/tokens/expire", "{\"token\":\"at-401\"}");
	refreshes = stat_of(t, "refresh_ok");
	w = one_workout(t, "wahoo", "at-401", "- 10m 60%", &user);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	T_EQ_INT(stat_of(t, "refresh_ok"), refreshes + 1);
	at = token_of(t, user, "access_token");
	rt = token_of(t, user, "refresh_token");
	T_CHECK(at && !strncmp(at, "sbx-at-", 7));
	T_CHECK(rt && !strncmp(rt, "sbx-rt-", 7));
	rc = token_of(t, user, "needs_reconnect::text");
	T_EQ_STR(rc, "false");
	free(at);
	free(rt);
	free(rc);
	free(user);
	free(w);

	/* refresh refused (unknown refresh token) -> auth_error, reconnect */
	register_pair(t, "at-bad", "rt-other", 3600);
	control(t, "POST", "/_sandbox/tokens/revoke", "{\"token\":\"at-bad\"}");
	w = one_workout(t, "wahoo", "at-bad", "- 10m 60%", &user);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed|auth_error|0");
	rc = token_of(t, user, "needs_reconnect::text");
	T_EQ_STR(rc, "true");
	free(rc);
	free(user);
	free(w);

	/* expired in our database: refreshed before the call, no 401 seen */
	register_pair(t, "at-exp", "rt-at-exp", 3600);
	refreshes = stat_of(t, "refresh_ok");
	unauthorized = stat_of(t, "unauthorized");
	w = one_workout(t, "wahoo", "at-exp", "- 10m 60%", &user);
	sql(t, "UPDATE provider_tokens SET expires_at = now() - interval '5 minutes'"
	       " WHERE user_id = $1", user, NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	T_EQ_INT(stat_of(t, "refresh_ok"), refreshes + 1);
	T_EQ_INT(stat_of(t, "unauthorized"), unauthorized);
	at = token_of(t, user, "access_token");
	T_CHECK(at && !strncmp(at, "sbx-at-", 7));
	rc = token_of(t, user, "expires_at > now() + interval '30 minutes'");
	T_EQ_STR(rc, "t");
	free(rc);
	free(at);
	free(user);
	free(w);

	control(t, "POST", "/_sandbox/settings",
	        "{\"accept_any_token\":true,\"client_id\":null,\"client_secret\":null}");

	/* 403 -> auth_error */
	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":403}");
	w = one_workout(t, "wahoo", "tok-403", "- 10m 60%", NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed|auth_error|0");
	free(w);
}

/* One failing call; the entry must be pending with provider_error, retry 1
 * in about 2 minutes, and succeed when retried. */
static void transient(e2e *t, const char *rule, const char *provider, const char *token,
                      const char *message_part, int line)
{
	char *w, *msg;
	long long wait;
	int before = t_failures;

	e2e_fault(t, rule);
	w = one_workout(t, provider, token, "- 10m 60%", NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, provider, "pending|provider_error|1");
	wait = wait_s(t, w);
	T_CHECK(wait >= 100 && wait <= 140);
	msg = q_str(t, "error_message", w);
	if (message_part)
		T_CONTAINS(msg, message_part);
	free(msg);
	retry_now(t, w);
	T_EQ_INT(run(t), 0);
	STATE(t, w, provider, "processed||1"); /* the retry it used stays counted */
	if (t_failures != before)
		fprintf(stderr, "  (in the transient case at line %d: %s)\n", line, rule);
	free(w);
}
#define TRANSIENT(t, rule, prov, tok, part) transient(t, rule, prov, tok, part, __LINE__)

static void provider_errors(e2e *t)
{
	TRANSIENT(t, "{\"path_prefix\":\"/v1/plans\",\"status\":500}", "wahoo", "tok-500",
	          "HTTP 500");
	TRANSIENT(t, "{\"path_prefix\":\"/v1/plans\",\"status\":503}", "wahoo", "tok-503",
	          "HTTP 503");
	TRANSIENT(t, "{\"path_prefix\":\"/v1/plans\",\"action\":\"reset\"}", "wahoo", "tok-rst",
	          NULL);
	TRANSIENT(t, "{\"path_prefix\":\"/v1/plans\",\"action\":\"malformed\"}", "wahoo",
	          "tok-bad-json", "answer without id");
	TRANSIENT(t, "{\"path_prefix\":\"/v1/plans\",\"status\":200,\"body\":{\"name\":\"x\"}}",
	          "wahoo", "tok-no-id", "answer without id");
}

/* An answer that comes too late: the plan was created anyway; the retry
 * finds it (external_id / workout_token) instead of making a duplicate. */
static void slow_answers(e2e *t)
{
	char *user, *w, *s, *link;
	json_object *o;
	long long seq;
	int n;

	/* a plan */
	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"action\":\"slow\","
	             "\"delay_ms\":2500}");
	w = one_workout(t, "wahoo_slow", "tok-slow", "- 10m ramp 70-50%", &user);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo_slow", "pending|provider_error|1");
	T_CHECK(wait_s(t, w) >= 100);
	seq = last_seq(t);
	retry_now(t, w);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo_slow", "processed||1");
	/* the retry looks first: GET ?external_id=, then PUT, no second POST */
	T_EQ_INT(requests(t, "POST", "/v1/plans", seq), 0);
	T_EQ_INT(requests(t, "GET", "/v1/plans", seq), 1);
	T_EQ_INT(requests(t, "PUT", "/v1/plans/", seq), 1);
	o = plan_of(t, w, &n);
	T_EQ_INT(n, 1);
	link = e2e_link(t, "wahoo_slow", "workout", w);
	T_CHECK(o && link && !strcmp(link, str(o, "id")));
	T_EQ_INT(dbl(get(get(o, "file_json"), "header"), "workout_type_location"), 1);
	/* ramp_steps = 1: the ramp as one step with its range */
	T_EQ_INT(len(get(get(o, "file_json"), "intervals")), 1);
	TARGET(idx(get(get(o, "file_json"), "intervals"), 0), 0, "ftp", 0.5, 0.7);
	json_object_put(o);
	free(link);

	/* a scheduled workout */
	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v1/workouts\",\"action\":\"slow\","
	             "\"delay_ms\":2500}");
	s = dup(e2e_schedule(t, user, w, "2026-10-01", "18:00:00"));
	T_EQ_INT(run(t), 0);
	STATE(t, s, "wahoo_slow", "pending|provider_error|1");
	seq = last_seq(t);
	retry_now(t, s);
	T_EQ_INT(run(t), 0);
	STATE(t, s, "wahoo_slow", "processed||1");
	/* the list scanned for the workout_token, then PUT, no second POST */
	T_EQ_INT(requests(t, "GET", "/v1/workouts", seq), 1);
	T_EQ_INT(requests(t, "PUT", "/v1/workouts/", seq), 1);
	T_EQ_INT(requests(t, "POST", "/v1/workouts", seq), 0);
	o = workout_of(t, s, &n);
	T_EQ_INT(n, 1);
	link = e2e_link(t, "wahoo_slow", "workout_scheduled", s);
	T_CHECK(o && link && !strcmp(link, str(o, "id")));
	T_EQ_INT(dbl(o, "workout_type_id"), 0); /* outdoor bike: BIKING */
	json_object_put(o);
	free(link);
	free(user);
	free(w);
	free(s);
}

static void invalid(e2e *t)
{
	char *w, *msg, *user, *s;

	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":422,"
	             "\"body\":{\"error\":\"plan[file] is broken\"}}");
	w = one_workout(t, "wahoo", "tok-422", "- 10m 60%", NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed|invalid_request|0");
	msg = q_str(t, "error_message", w);
	T_CONTAINS(msg, "HTTP 422");
	T_CONTAINS(msg, "plan[file] is broken");
	free(msg);
	free(w);

	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v1/workouts\",\"status\":400}");
	w = one_workout(t, "wahoo", "tok-400", "- 10m 60%", &user);
	s = dup(e2e_schedule(t, user, w, "2026-10-02", NULL));
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	STATE(t, s, "wahoo", "processed|invalid_request|0");
	free(user);
	free(w);
	free(s);
}

/* 404 on update: the plan is created again.  Really gone -> a new plan and
 * a new link. */
static void not_found(e2e *t)
{
	char *user, *w, *old, *now_link, *s, *wo_old, *wo_new;
	char path[128];
	json_object *o;
	int n;

	w = one_workout(t, "wahoo", "tok-404", "- 10m 60%", &user);
	s = dup(e2e_schedule(t, user, w, "2026-10-05", "06:15:00"));
	T_EQ_INT(run(t), 0);
	old = e2e_link(t, "wahoo", "workout", w);
	wo_old = e2e_link(t, "wahoo", "workout_scheduled", s);
	T_CHECK(old != NULL && wo_old != NULL);

	/* the user deleted the plan on Wahoo */
	snprintf(path, sizeof path, "/v1/plans/%s", old ? old : "0");
	T_EQ_INT(api(t, "DELETE", path, "tok-404"), 200);
	sql(t, "UPDATE workouts SET workout_text = '- 12m 65%' WHERE id = $1", w, NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	now_link = e2e_link(t, "wahoo", "workout", w);
	T_CHECK(now_link && old && strcmp(now_link, old) != 0);
	o = plan_of(t, w, &n);
	T_EQ_INT(n, 1);
	T_CHECK(o && now_link && !strcmp(str(o, "id"), now_link));
	json_object_put(o);

	/* (A 404 on PUT while the plan still exists is not a case: Wahoo's 404
	 * means gone, and the sandbox, like Wahoo, does not refuse a second plan
	 * with the same external_id, so nothing would find the old one.) */

	/* the Wahoo workout vanished: reschedule creates a new one */
	snprintf(path, sizeof path, "/v1/workouts/%s", wo_old ? wo_old : "0");
	T_EQ_INT(api(t, "DELETE", path, "tok-404"), 200);
	sql(t, "UPDATE workouts_scheduled SET scheduled_date = '2026-10-06' WHERE id = $1", s,
	    NULL);
	T_EQ_INT(run(t), 0);
	STATE(t, s, "wahoo", "processed||0");
	wo_new = e2e_link(t, "wahoo", "workout_scheduled", s);
	T_CHECK(wo_new && wo_old && strcmp(wo_new, wo_old) != 0);
	o = workout_of(t, s, &n);
	T_EQ_INT(n, 1);
	T_EQ_STR(str(o, "starts"), "2026-10-06T06:15:00.000Z");
	T_EQ_STR(str(o, "plan_id"), now_link);
	json_object_put(o);

	/* 404 on delete: already gone, success, links dropped */
	e2e_fault(t, "{\"method\":\"DELETE\",\"path_prefix\":\"/v1/\",\"status\":404,\"count\":2}");
	sql(t, "DELETE FROM workouts WHERE id = $1", w, NULL); /* cascades to the schedule */
	T_EQ_INT(run(t), 0);
	STATE(t, w, "wahoo", "processed||0");
	STATE(t, s, "wahoo", "processed||0");
	T_CHECK(e2e_link(t, "wahoo", "workout", w) == NULL);
	T_CHECK(e2e_link(t, "wahoo", "workout_scheduled", s) == NULL);

	free(user);
	free(w);
	free(s);
	free(old);
	free(now_link);
	free(wo_old);
	free(wo_new);
}

int main(int argc, char **argv)
{
	e2e *t;

	if (argc < 2) {
		fprintf(stderr, "usage: test_wahoo_e2e WAHOO_SO\n");
		return 2;
	}
	t = e2e_start(0);
	e2e_add_plugin(t, argv[1]);
	e2e_secret(t, "wahoo", "s3cret\n");
	e2e_instance(t, "wahoo", "wahoo", instance_ini);
	e2e_instance(t, "wahoo_slow", "wahoo", slow_ini);

	lifecycle(t);
	run_mapping(t);
	rate_limits(t);
	auth(t);
	provider_errors(t);
	slow_answers(t);
	invalid(t);
	not_found(t);

	e2e_stop(t);
	return t_done();
}
