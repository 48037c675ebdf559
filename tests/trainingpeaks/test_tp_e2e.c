/*
 * TrainingPeaks end to end: an application writes workouts and scheduled
 * workouts to PostgreSQL, the real `wsyncd --once` drains the queue through
 * trainingpeaks.so into the sandbox's TrainingPeaks API, and the test checks
 * what the sandbox stored and which requests it received.
 *
 *   test_tp_e2e PATH/TO/trainingpeaks.so     (under tests/pg_harness.sh)
 */
#include "e2e.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

#define PROVIDER "trainingpeaks"
#define CLIENT_ID "wsync-test-client"

/* The example of the workout-text syntax page. */
static const char *const SYNTAX_EXAMPLE =
	T_SYNTAX_EXAMPLE;

/* ---- helpers ---------------------------------------------------------- */

/* UTC today + days as YYYY-MM-DD (the database computes it). */
static const char *day_from_today(e2e *t, int days)
{
	static char out[4][16];
	static int slot;
	char n[16];
	const char *p[1] = {n};
	char *s;
	snprintf(n, sizeof n, "%d", days);
	s = t_query_str(t->db, "SELECT ((now() AT TIME ZONE 'UTC')::date + $1::int)::text", 1, p);
	slot = (slot + 1) % 4;
	snprintf(out[slot], sizeof out[slot], "%s", s ? s : "");
	free(s);
	return out[slot];
}

static const char *one_year_ahead(e2e *t)
{
	static char out[16];
	char *s = t_query_str(t->db, "SELECT ((now() AT TIME ZONE 'UTC')::date"
	                             " + interval '1 year')::date::text", 0, NULL);
	snprintf(out, sizeof out, "%s", s ? s : "");
	free(s);
	return out;
}

static void sandbox_today(e2e *t)
{
	char body[128], *ans = NULL;
	snprintf(body, sizeof body, "{\"today\":\"%s\"}", day_from_today(t, 0));
	T_EQ_INT(e2e_sandbox(t, "POST", "/_sandbox/settings", body, &ans), 200);
	free(ans);
}

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static long long jint(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? (long long)json_object_get_int64(v) : -1;
}

static double jdbl(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_double(v) : -1;
}

/* The sandbox's stored TrainingPeaks workout with this Id (a new reference,
 * caller puts) or NULL. */
static json_object *stored(e2e *t, const char *id)
{
	json_object *store = e2e_sandbox_json(t, "/_sandbox/store"), *found = NULL;
	json_object *arr = jget(jget(store, "trainingpeaks"), "workouts");
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *w = json_object_array_get_idx(arr, i);
		if (id && jint(w, "Id") == atoll(id))
			found = json_object_get(w);
	}
	json_object_put(store);
	return found;
}

static size_t stored_count(e2e *t)
{
	json_object *store = e2e_sandbox_json(t, "/_sandbox/store");
	json_object *arr = jget(jget(store, "trainingpeaks"), "workouts");
	size_t n = arr ? json_object_array_length(arr) : 0;
	json_object_put(store);
	return n;
}

/* Requests the sandbox received (method NULL = any), made with `token`
 * (NULL = any token).  Returns the matching entries (caller puts). */
static json_object *requests(e2e *t, const char *method, const char *prefix, const char *token)
{
	char path[300], bearer[200];
	json_object *all, *out = json_object_new_array();
	snprintf(path, sizeof path, "/_sandbox/requests?path_prefix=%s", prefix);
	snprintf(bearer, sizeof bearer, "Bearer %s", token ? token : "");
	all = e2e_sandbox_json(t, path);
	for (size_t i = 0; all && i < json_object_array_length(all); i++) {
		json_object *r = json_object_array_get_idx(all, i);
		const char *auth = jstr(jget(r, "headers"), "authorization");
		if (method && (!jstr(r, "method") || strcmp(jstr(r, "method"), method)))
			continue;
		if (token && (!auth || strcmp(auth, bearer)))
			continue;
		json_object_array_add(out, json_object_get(r));
	}
	json_object_put(all);
	return out;
}

static size_t count_requests(e2e *t, const char *method, const char *prefix, const char *token)
{
	json_object *r = requests(t, method, prefix, token);
	size_t n = json_object_array_length(r);
	json_object_put(r);
	return n;
}

static char *error_message(e2e *t, const char *entity_id)
{
	const char *p[2] = {entity_id, PROVIDER};
	return t_query_str(t->db, "SELECT error_message FROM workout_sync_queue"
	                          " WHERE entity_id = $1 AND provider = $2"
	                          " ORDER BY seq DESC LIMIT 1", 2, p);
}

static void drain(e2e *t)
{
	char *out = NULL;
	int rc = e2e_wsyncd_once(t, &out);
	T_EQ_INT(rc, 0);
	if (rc != 0 && out)
		fprintf(stderr, "%s\n", out);
	free(out);
}

static e2e *setup(const char *so)
{
	e2e *t = e2e_start(0);
	char ini[1024];
	sandbox_today(t);
	e2e_add_plugin(t, so);
	e2e_secret(t, "tp", "sandbox-secret\n");
	snprintf(ini, sizeof ini,
	         "[provider]\n"
	         "plugin = trainingpeaks\n"
	         "base_url = @BASE@\n"
	         "rate_limit_per_minute = 600\n"
	         "[oauth]\n"
	         "token_url = @BASE@/oauth/token\n"
	         "client_id = " CLIENT_ID "\n"
	         "client_secret_file = @DIR@/tp.secret\n");
	e2e_instance(t, PROVIDER, "trainingpeaks", ini);
	return t;
}

/* ---- the structure of the syntax-page example ---------------------------- */

static void check_target(json_object *it, const char *unit, double value, double lo, double hi)
{
	T_EQ_STR(jstr(it, "Unit"), unit);
	T_CHECK(fabs(jdbl(it, "Value") - value) < 1e-9);
	if (lo >= 0) {
		T_CHECK(fabs(jdbl(it, "MinValue") - lo) < 1e-9);
		T_CHECK(fabs(jdbl(it, "MaxValue") - hi) < 1e-9);
	} else {
		T_CHECK(jget(it, "MinValue") == NULL);
	}
}

static void check_cadence(json_object *ct, double lo, double hi)
{
	T_EQ_STR(jstr(ct, "Unit"), "rpm");
	T_CHECK(jdbl(ct, "MinValue") == lo);
	T_CHECK(jdbl(ct, "MaxValue") == hi);
}

static void check_example_structure(json_object *w)
{
	json_object *sj = jget(w, "structure_json");
	json_object *steps = jget(sj, "Structure"), *s, *rep, *kids;
	T_CHECK(sj && json_object_is_type(sj, json_type_object));
	T_CHECK(steps && json_object_array_length(steps) == 3);
	if (!steps || json_object_array_length(steps) != 3)
		return;
	T_EQ_STR(jstr(sj, "PrimaryIntensityMetric"), "PercentOfFtp");

	/* 10 min warm-up ramp 50 -> 75 % FTP at 90 rpm */
	s = json_object_array_get_idx(steps, 0);
	T_EQ_STR(jstr(s, "Type"), "Step");
	T_EQ_STR(jstr(s, "IntensityClass"), "WarmUp");
	T_EQ_STR(jstr(jget(s, "Length"), "Unit"), "Second");
	T_EQ_INT(jint(jget(s, "Length"), "Value"), 600);
	check_target(jget(s, "IntensityTarget"), "PercentOfFtp", 62.5, 50, 75);
	check_cadence(jget(s, "CadenceTarget"), 90, 90);
	T_CONTAINS(jstr(s, "Name"), "ramp 50-75%");

	/* 5 x (3 min 120 % at 100 rpm, 2 min recovery Z1 at 85 rpm) */
	rep = json_object_array_get_idx(steps, 1);
	T_EQ_STR(jstr(rep, "Type"), "Repetition");
	T_EQ_STR(jstr(jget(rep, "Length"), "Unit"), "Repetition");
	T_EQ_INT(jint(jget(rep, "Length"), "Value"), 5);
	kids = jget(rep, "Steps");
	T_CHECK(kids && json_object_array_length(kids) == 2);
	if (kids && json_object_array_length(kids) == 2) {
		s = json_object_array_get_idx(kids, 0);
		T_EQ_STR(jstr(s, "IntensityClass"), "Active");
		T_EQ_INT(jint(jget(s, "Length"), "Value"), 180);
		check_target(jget(s, "IntensityTarget"), "PercentOfFtp", 120, -1, -1);
		check_cadence(jget(s, "CadenceTarget"), 100, 100);
		s = json_object_array_get_idx(kids, 1);
		T_EQ_STR(jstr(s, "IntensityClass"), "Rest");
		T_EQ_STR(jstr(s, "Name"), "Recovery");
		T_EQ_INT(jint(jget(s, "Length"), "Value"), 120);
		/* power zone 1 = 40-55 % FTP (Coggan), see the plugin README */
		check_target(jget(s, "IntensityTarget"), "PercentOfFtp", 27.5, 0, 55);
		check_cadence(jget(s, "CadenceTarget"), 85, 85);
	}

	/* 8 min cool-down at 50 % */
	s = json_object_array_get_idx(steps, 2);
	T_EQ_STR(jstr(s, "IntensityClass"), "CoolDown");
	T_EQ_INT(jint(jget(s, "Length"), "Value"), 480);
	check_target(jget(s, "IntensityTarget"), "PercentOfFtp", 50, -1, -1);
	T_CHECK(jget(s, "CadenceTarget") == NULL);

	/* whole percents: the sandbox warns when values look like fractions */
	T_EQ_INT(json_object_array_length(jget(w, "sandbox_warnings")), 0);
	/* 43 minutes, computed by the server from the structure */
	T_CHECK(fabs(jdbl(w, "TotalTimePlanned") - 43.0 / 60.0) < 1e-6);
	T_CHECK(fabs(jdbl(w, "submitted_TotalTimePlanned") - 43.0 / 60.0) < 1e-3);
}

/* ---- lifecycle: create, reschedule, text change, delete ------------------ */

static void lifecycle(const char *so)
{
	e2e *t = setup(so);
	const char *user;
	char w[64], s[64], day1[16], day2[16], daybuf[32];
	char *state, *link, *wlink;
	json_object *o, *reqs;
	const char *p[3];

	user = e2e_user(t, PROVIDER, "tok-life");
	snprintf(w, sizeof w, "%s", e2e_workout(t, user, "Over-unders", "Cycling", SYNTAX_EXAMPLE));
	p[0] = w;
	t_exec(t->db, "UPDATE workouts SET description = 'Syntax page example' WHERE id = $1",
	       1, p);
	snprintf(day1, sizeof day1, "%s", day_from_today(t, 3));
	snprintf(s, sizeof s, "%s", e2e_schedule(t, user, w, day1, "07:30:00"));

	/* ---- create */
	drain(t);
	state = e2e_queue_state(t, s, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	/* The workout itself: processed, not applicable, no error, no link. */
	state = e2e_queue_state(t, w, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	wlink = e2e_link(t, PROVIDER, "workout", w);
	T_CHECK(wlink == NULL);
	free(wlink);
	/* Exactly one profile read and one POST: nothing for the workout. */
	T_EQ_INT(count_requests(t, NULL, "/", "tok-life"), 2);
	T_EQ_INT(count_requests(t, "GET", "/v1/athlete/profile", "tok-life"), 1);
	T_EQ_INT(count_requests(t, "POST", "/v2/workouts/plan", "tok-life"), 1);

	link = e2e_link(t, PROVIDER, "workout_scheduled", s);
	T_CHECK(link != NULL);
	o = stored(t, link);
	T_CHECK(o != NULL);
	snprintf(daybuf, sizeof daybuf, "%sT00:00:00", day1);
	T_EQ_INT(jint(o, "AthleteId"), 4242);
	T_EQ_STR(jstr(o, "WorkoutDay"), daybuf);
	T_EQ_STR(jstr(o, "WorkoutType"), "bike");
	T_EQ_STR(jstr(o, "Title"), "Over-unders");
	T_EQ_STR(jstr(o, "Description"), "Syntax page example");
	snprintf(daybuf, sizeof daybuf, "%sT07:30:00", day1);
	T_EQ_STR(jstr(o, "StartTimePlanned"), daybuf);
	T_CHECK(jget(o, "Structure") && json_object_is_type(jget(o, "Structure"), json_type_string));
	check_example_structure(o);
	json_object_put(o);

	/* The User-Agent TrainingPeaks requires, <client_id>/<version>, on every
	 * request; JSON in both directions. */
	reqs = requests(t, NULL, "/", "tok-life");
	for (size_t i = 0; i < json_object_array_length(reqs); i++) {
		json_object *h = jget(json_object_array_get_idx(reqs, i), "headers");
		T_EQ_STR(jstr(h, "user-agent"), CLIENT_ID "/1.0.0");
		T_EQ_STR(jstr(h, "accept"), "application/json");
	}
	json_object_put(reqs);
	reqs = requests(t, "POST", "/v2/workouts/plan", "tok-life");
	T_CONTAINS(jstr(jget(json_object_array_get_idx(reqs, 0), "headers"), "content-type"),
	           "application/json");
	json_object_put(reqs);

	/* ---- reschedule: a PUT of the full object */
	snprintf(day2, sizeof day2, "%s", day_from_today(t, 10));
	p[0] = day2;
	p[1] = s;
	t_exec(t->db, "UPDATE workouts_scheduled SET scheduled_date = $1::date WHERE id = $2",
	       2, p);
	e2e_sandbox(t, "DELETE", "/_sandbox/requests", NULL, NULL);
	drain(t);
	state = e2e_queue_state(t, s, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	reqs = requests(t, "PUT", "/v2/workouts/plan/", "tok-life");
	T_EQ_INT(json_object_array_length(reqs), 1);
	T_EQ_INT(count_requests(t, "POST", "/v2/workouts/plan", "tok-life"), 0);
	if (json_object_array_length(reqs) == 1) {
		json_object *r = json_object_array_get_idx(reqs, 0);
		json_object *body = json_tokener_parse(jstr(r, "body") ? jstr(r, "body") : "null");
		char want[64];
		snprintf(want, sizeof want, "/v2/workouts/plan/%s", link);
		T_EQ_STR(jstr(r, "path"), want);
		T_EQ_STR(jstr(r, "method"), "PUT");
		/* full object: every field wsync manages */
		T_EQ_INT(jint(body, "Id"), atoll(link));
		T_EQ_INT(jint(body, "AthleteId"), 4242);
		T_CHECK(jstr(body, "WorkoutType") != NULL);
		T_CHECK(jstr(body, "Title") != NULL);
		T_CHECK(jstr(body, "Description") != NULL);
		T_CHECK(jstr(body, "StartTimePlanned") != NULL);
		T_CHECK(jstr(body, "Structure") != NULL);
		T_CHECK(jget(body, "TotalTimePlanned") != NULL);
		json_object_put(body);
	}
	json_object_put(reqs);
	o = stored(t, link);
	snprintf(daybuf, sizeof daybuf, "%sT00:00:00", day2);
	T_EQ_STR(jstr(o, "WorkoutDay"), daybuf);
	/* nothing nulled by the full replace */
	T_EQ_STR(jstr(o, "Title"), "Over-unders");
	T_EQ_STR(jstr(o, "Description"), "Syntax page example");
	T_EQ_STR(jstr(o, "WorkoutType"), "bike");
	snprintf(daybuf, sizeof daybuf, "%sT07:30:00", day2);
	T_EQ_STR(jstr(o, "StartTimePlanned"), daybuf);
	check_example_structure(o);
	json_object_put(o);
	/* same TrainingPeaks workout, same link */
	{
		char *l2 = e2e_link(t, PROVIDER, "workout_scheduled", s);
		T_EQ_STR(l2, link);
		free(l2);
	}

	/* ---- a change of the workout's text and name.  The workout's own entry
	 * is not applicable here (no library, no request for it); the change
	 * reaches TrainingPeaks through the scheduled workout, which the
	 * triggers queue for an update as well (migration 0004): one PUT with
	 * the new title and structure. */
	p[0] = "Main Set\n- 30m 70%\n";
	p[1] = w;
	t_exec(t->db, "UPDATE workouts SET workout_text = $1, name = 'Endurance' WHERE id = $2",
	       2, p);
	e2e_sandbox(t, "DELETE", "/_sandbox/requests", NULL, NULL);
	drain(t);
	state = e2e_queue_state(t, w, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	state = e2e_queue_state(t, s, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	T_EQ_INT(count_requests(t, "PUT", "/v2/workouts/plan/", "tok-life"), 1);
	T_EQ_INT(count_requests(t, "POST", "/", "tok-life"), 0);
	o = stored(t, link);
	T_EQ_STR(jstr(o, "Title"), "Endurance");
	snprintf(daybuf, sizeof daybuf, "%sT00:00:00", day2);
	T_EQ_STR(jstr(o, "WorkoutDay"), daybuf);
	{
		json_object *steps = jget(jget(o, "structure_json"), "Structure");
		json_object *st0 = steps ? json_object_array_get_idx(steps, 0) : NULL;
		T_CHECK(steps && json_object_array_length(steps) == 1);
		T_EQ_INT(jint(jget(st0, "Length"), "Value"), 1800);
		T_EQ_INT(jint(jget(st0, "IntensityTarget"), "Value"), 70);
		T_EQ_STR(jstr(st0, "IntensityClass"), "Active");
	}
	json_object_put(o);

	/* ---- delete */
	e2e_sandbox(t, "DELETE", "/_sandbox/requests", NULL, NULL);
	p[0] = s;
	t_exec(t->db, "DELETE FROM workouts_scheduled WHERE id = $1", 1, p);
	drain(t);
	state = e2e_queue_state(t, s, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	o = stored(t, link);
	T_CHECK(o == NULL);
	json_object_put(o);
	reqs = requests(t, "DELETE", "/v2/workouts/id/", "tok-life");
	T_EQ_INT(json_object_array_length(reqs), 1);
	if (json_object_array_length(reqs) == 1) {
		char want[64];
		snprintf(want, sizeof want, "/v2/workouts/id/%s", link);
		T_EQ_STR(jstr(json_object_array_get_idx(reqs, 0), "path"), want);
		T_EQ_INT(jint(json_object_array_get_idx(reqs, 0), "status"), 204);
	}
	json_object_put(reqs);
	{
		char *l2 = e2e_link(t, PROVIDER, "workout_scheduled", s);
		T_CHECK(l2 == NULL);
		free(l2);
	}
	free(link);

	/* ---- deleting the workout: nothing to do on TrainingPeaks */
	e2e_sandbox(t, "DELETE", "/_sandbox/requests", NULL, NULL);
	p[0] = w;
	t_exec(t->db, "DELETE FROM workouts WHERE id = $1", 1, p);
	drain(t);
	T_EQ_INT(count_requests(t, NULL, "/", "tok-life"), 0);
	e2e_stop(t);
}

/* ---- the athlete profile is read once per user ---------------------------- */

static void profile_once(const char *so)
{
	e2e *t = setup(so);
	const char *user;
	char w[64], s[64];
	char *state;

	user = e2e_user(t, PROVIDER, "tok-many");
	snprintf(w, sizeof w, "%s", e2e_workout(t, user, "Run", "Running",
	                                        "- 10m 70% HR\n- 2km 80% Pace\n- press lap Z2 HR\n"));
	for (int i = 1; i <= 4; i++)
		snprintf(s, sizeof s, "%s", e2e_schedule(t, user, w, day_from_today(t, i), NULL));
	drain(t);
	T_EQ_INT(count_requests(t, "GET", "/v1/athlete/profile", "tok-many"), 1);
	T_EQ_INT(count_requests(t, "POST", "/v2/workouts/plan", "tok-many"), 4);
	T_EQ_INT(stored_count(t), 4);
	state = e2e_queue_state(t, s, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);

	/* mapping of a run: WorkoutType run, HR/pace targets, distance, lap step */
	{
		char *link = e2e_link(t, PROVIDER, "workout_scheduled", s);
		json_object *o = stored(t, link);
		json_object *steps = jget(jget(o, "structure_json"), "Structure");
		json_object *a, *b, *c;
		T_EQ_STR(jstr(o, "WorkoutType"), "run");
		T_CHECK(jget(o, "StartTimePlanned") == NULL || json_object_get_type(jget(o, "StartTimePlanned")) == json_type_null);
		T_CHECK(steps && json_object_array_length(steps) == 3);
		a = steps ? json_object_array_get_idx(steps, 0) : NULL;
		b = steps ? json_object_array_get_idx(steps, 1) : NULL;
		c = steps ? json_object_array_get_idx(steps, 2) : NULL;
		T_EQ_STR(jstr(jget(a, "IntensityTarget"), "Unit"), "PercentOfMaxHr");
		T_EQ_INT(jint(jget(a, "IntensityTarget"), "Value"), 70);
		T_EQ_STR(jstr(jget(b, "Length"), "Unit"), "Meter");
		T_EQ_INT(jint(jget(b, "Length"), "Value"), 2000);
		T_EQ_STR(jstr(jget(b, "IntensityTarget"), "Unit"), "PercentOfThresholdSpeed");
		T_EQ_INT(jint(jget(b, "IntensityTarget"), "Value"), 80);
		T_CHECK(jget(c, "OpenDuration") && json_object_get_boolean(jget(c, "OpenDuration")));
		T_EQ_STR(jstr(jget(c, "IntensityTarget"), "Unit"), "PercentOfThresholdHr");
		T_CHECK(jdbl(jget(c, "IntensityTarget"), "MinValue") == 69);
		T_CHECK(jdbl(jget(c, "IntensityTarget"), "MaxValue") == 83);
		T_CHECK(fabs(jdbl(o, "DistancePlanned") - 2000) < 1e-9);
		json_object_put(o);
		free(link);
	}
	e2e_stop(t);
}

/* ---- the date window ---------------------------------------------------------- */

static void date_window(const char *so)
{
	e2e *t = setup(so);
	const char *user;
	char w[64], past[64], far[64], edge_past[64], edge_future[64];
	char *state, *msg, *link;

	user = e2e_user(t, PROVIDER, "tok-window");
	snprintf(w, sizeof w, "%s", e2e_workout(t, user, "Swim", "swim", "- 400mtr 80% Pace\n"));
	snprintf(past, sizeof past, "%s", e2e_schedule(t, user, w, day_from_today(t, -8), NULL));
	snprintf(far, sizeof far, "%s", e2e_schedule(t, user, w, day_from_today(t, 400), NULL));
	drain(t);
	/* refused before sending: not a single request for this user */
	T_EQ_INT(count_requests(t, NULL, "/", "tok-window"), 0);
	T_EQ_INT(stored_count(t), 0);
	state = e2e_queue_state(t, past, PROVIDER);
	T_EQ_STR(state, "processed|invalid_request|0");
	free(state);
	state = e2e_queue_state(t, far, PROVIDER);
	T_EQ_STR(state, "processed|invalid_request|0");
	free(state);
	msg = error_message(t, past);
	T_CONTAINS(msg, "TrainingPeaks accepts planned workouts from 7 days ago to 1 year ahead");
	T_CONTAINS(msg, day_from_today(t, -8));
	T_CONTAINS(msg, "is outside");
	free(msg);
	msg = error_message(t, far);
	T_CONTAINS(msg, day_from_today(t, 400));
	free(msg);

	/* the edges are inside: 7 days ago and the same day next year */
	snprintf(edge_past, sizeof edge_past, "%s",
	         e2e_schedule(t, user, w, day_from_today(t, -7), NULL));
	snprintf(edge_future, sizeof edge_future, "%s",
	         e2e_schedule(t, user, w, one_year_ahead(t), NULL));
	drain(t);
	state = e2e_queue_state(t, edge_past, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	state = e2e_queue_state(t, edge_future, PROVIDER);
	T_EQ_STR(state, "processed||0");
	free(state);
	T_EQ_INT(stored_count(t), 2);
	link = e2e_link(t, PROVIDER, "workout_scheduled", edge_future);
	{
		json_object *o = stored(t, link);
		T_EQ_STR(jstr(o, "WorkoutType"), "swim");
		json_object_put(o);
	}
	free(link);
	e2e_stop(t);
}

/* ---- provider answers the core classifies ----------------------------------------- */

static void provider_errors(const char *so)
{
	e2e *t = setup(so);
	const char *user;
	char w[64], s1[64], s2[64];
	char *state, *link;

	user = e2e_user(t, PROVIDER, "tok-err");
	snprintf(w, sizeof w, "%s", e2e_workout(t, user, "Gym", "Strength", "- 20m\n"));
	/* a 400 from TrainingPeaks is permanent (invalid_request) */
	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v2/workouts/plan\",\"status\":400,"
	             "\"body\":{\"Message\":\"bad\"}}");
	snprintf(s1, sizeof s1, "%s", e2e_schedule(t, user, w, day_from_today(t, 1), NULL));
	drain(t);
	state = e2e_queue_state(t, s1, PROVIDER);
	T_EQ_STR(state, "processed|invalid_request|0");
	free(state);
	/* a 503 is retried later (provider_error, retry 1) */
	e2e_fault(t, "{\"method\":\"POST\",\"path_prefix\":\"/v2/workouts/plan\",\"status\":503}");
	snprintf(s2, sizeof s2, "%s", e2e_schedule(t, user, w, day_from_today(t, 2), NULL));
	drain(t);
	state = e2e_queue_state(t, s2, PROVIDER);
	T_EQ_STR(state, "pending|provider_error|1");
	free(state);
	/* an object deleted on TrainingPeaks is created again on update */
	t_exec(t->db, "UPDATE workout_sync_queue SET next_retry_at = now() WHERE processed_at IS NULL",
	       0, NULL);
	drain(t);
	link = e2e_link(t, PROVIDER, "workout_scheduled", s2);
	T_CHECK(link != NULL);
	if (link) {
		const char *p[2] = {day_from_today(t, 5), s2};
		json_object *o = stored(t, link);
		T_EQ_STR(jstr(o, "WorkoutType"), "strength");
		json_object_put(o);
		/* the athlete deleted it on TrainingPeaks (here: the sandbox forgets
		 * every object), then the application moves it */
		e2e_sandbox(t, "POST", "/_sandbox/reset", "{\"keep_settings\":true}", NULL);
		t_exec(t->db, "UPDATE workouts_scheduled SET scheduled_date = $1::date WHERE id = $2",
		       2, p);
		drain(t);
		state = e2e_queue_state(t, s2, PROVIDER);
		T_EQ_STR(state, "processed||0");
		free(state);
		{
			char *l2 = e2e_link(t, PROVIDER, "workout_scheduled", s2);
			T_CHECK(l2 && strcmp(l2, link) != 0);
			T_EQ_INT(stored_count(t), 1);
			free(l2);
		}
		free(link);
	}
	e2e_stop(t);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s trainingpeaks.so\n", argv[0]);
		return 2;
	}
	lifecycle(argv[1]);
	profile_once(argv[1]);
	date_window(argv[1]);
	provider_errors(argv[1]);
	return t_done();
}
