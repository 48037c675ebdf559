/*
 * TrainingPeaks plugin through the SDK's test host (no wsyncd, no queue):
 * the mapping corners, the athlete-id cache, the date window on a fixed
 * clock, configuration checks.  The sandbox plays TrainingPeaks.
 *
 *   test_tp_host PATH/TO/trainingpeaks.so    (under tests/pg_harness.sh,
 *                                             for the e2e sandbox fixture)
 */
#include "e2e.h"

#include <wsync/testhost.h>

#include <math.h>
#include <stdlib.h>
#include <time.h>

static const char *so_path;
static e2e *sb;

static wsync_testhost *load(const char *extra)
{
	char ini[2048], err[1024];
	wsync_testhost *th;
	snprintf(ini, sizeof ini,
	         "[provider]\nplugin = trainingpeaks\nbase_url = %s\n"
	         "allow_insecure_http = true\n%s", sb->base_url,
	         extra ? extra : "[oauth]\nclient_id = unit-client\n");
	th = wsync_testhost_load(so_path, ini, err, sizeof err);
	if (!th)
		t_fail(__FILE__, __LINE__, "load: %s", err);
	return th;
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

static double jdbl(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_double(v) : -1;
}

static const wsync_scheduled_entity *sched(wsync_testhost *th, const wsync_workout_entity *w,
                                           const char *date, const char *time)
{
	char err[256];
	const wsync_scheduled_entity *s = wsync_testhost_scheduled(
		th, &(wsync_scheduled_entity){.scheduled_date = date, .scheduled_time = time}, w,
		err, sizeof err);
	if (!s)
		t_fail(__FILE__, __LINE__, "scheduled: %s", err);
	return s;
}

static const wsync_workout_entity *workout(wsync_testhost *th, const char *sport,
                                           const char *text)
{
	char err[256];
	const wsync_workout_entity *w = wsync_testhost_workout(
		th, &(wsync_workout_entity){.name = "Unit", .sport = sport, .workout_text = text},
		err, sizeof err);
	if (!w)
		t_fail(__FILE__, __LINE__, "workout: %s", err);
	return w;
}

/* UTC date of now + days. */
static const char *date_in(int days)
{
	static char buf[4][16];
	static int slot;
	time_t t = time(NULL) + (time_t)days * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	slot = (slot + 1) % 4;
	strftime(buf[slot], sizeof buf[slot], "%Y-%m-%d", &tm);
	return buf[slot];
}

static void sandbox_today(const char *day)
{
	char body[128];
	if (day)
		snprintf(body, sizeof body, "{\"today\":\"%s\"}", day);
	else
		snprintf(body, sizeof body, "{\"today\":null}");
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/settings", body, NULL), 200);
}

/* The parsed Structure of the last POST/PUT the plugin made (caller puts). */
static json_object *last_structure(wsync_testhost *th)
{
	for (size_t i = wsync_testhost_http_count(th); i-- > 0;) {
		const wsync_testhost_http *h = wsync_testhost_http_at(th, i);
		if (strcmp(h->method, "POST") && strcmp(h->method, "PUT"))
			continue;
		json_object *body = json_tokener_parse(h->body);
		json_object *s = json_tokener_parse(jstr(body, "Structure") ? jstr(body, "Structure")
		                                                            : "null");
		json_object_put(body);
		return s;
	}
	return NULL;
}

/* ---- tests ------------------------------------------------------------------ */

static void not_applicable(void)
{
	wsync_testhost *th = load(NULL);
	const wsync_workout_entity *w = workout(th, "bike", "- 10m 50%\n");
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                             &(wsync_testhost_request){.workout = w}),
	         WSYNC_NOT_APPLICABLE);
	T_EQ_INT(wsync_testhost_result(th)->called, 1);
	T_CHECK(wsync_testhost_result(th)->error_type == NULL);
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_WORKOUT,
	                             &(wsync_testhost_request){.workout_provider_id = "x"}),
	         WSYNC_NOT_APPLICABLE);
	T_EQ_INT(wsync_testhost_result(th)->called, 1);
	T_EQ_INT(wsync_testhost_http_count(th), 0);
	wsync_testhost_free(th);
}

static void mapping_corners(void)
{
	wsync_testhost *th = load(NULL);
	const wsync_workout_entity *w = workout(th, "Mountain Bike",
		"Warmup\n"
		"- 10m ramp 75-50%\n"
		"\n"
		"Main Set 2x\n"
		"- Hard 5m 220-240w 95rpm\n"
		"- 3m Z3-Z4\n"
		"- 1mi 5:00/km Pace\n"
		"- 2m Z2 HR\n"
		"- 2m freeride\n"
		"- press lap 60%\n");
	const wsync_scheduled_entity *s = sched(th, w, date_in(1), NULL);
	json_object *st, *steps, *a, *rep, *kids, *k;

	sandbox_today(date_in(0));
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
	         WSYNC_OK);
	T_CHECK(wsync_testhost_result(th)->provider_id != NULL);
	st = last_structure(th);
	steps = jget(st, "Structure");
	T_CHECK(steps && json_object_array_length(steps) == 2);
	a = json_object_array_get_idx(steps, 0);
	/* a ramp down: the range sorted, the direction in the name */
	T_EQ_STR(jstr(a, "Name"), "ramp 75-50%");
	T_CHECK(jdbl(jget(a, "IntensityTarget"), "MinValue") == 50);
	T_CHECK(jdbl(jget(a, "IntensityTarget"), "MaxValue") == 75);
	T_CHECK(jdbl(jget(a, "IntensityTarget"), "Value") == 62.5);
	rep = json_object_array_get_idx(steps, 1);
	T_EQ_STR(jstr(rep, "Type"), "Repetition");
	kids = jget(rep, "Steps");
	T_CHECK(kids && json_object_array_length(kids) == 6);
	/* watts: no TrainingPeaks unit; the target stays visible in the name */
	k = json_object_array_get_idx(kids, 0);
	T_EQ_STR(jstr(k, "Name"), "Hard (220-240 W)");
	T_CHECK(jget(k, "IntensityTarget") == NULL);
	T_CHECK(jdbl(jget(k, "CadenceTarget"), "MinValue") == 95);
	/* power zones 3-4 = 76-105 % FTP */
	k = json_object_array_get_idx(kids, 1);
	T_EQ_STR(jstr(jget(k, "IntensityTarget"), "Unit"), "PercentOfFtp");
	T_CHECK(jdbl(jget(k, "IntensityTarget"), "MinValue") == 76);
	T_CHECK(jdbl(jget(k, "IntensityTarget"), "MaxValue") == 105);
	/* absolute pace: name; a mile in metres */
	k = json_object_array_get_idx(kids, 2);
	T_EQ_STR(jstr(k, "Name"), "5:00/km");
	T_EQ_STR(jstr(jget(k, "Length"), "Unit"), "Meter");
	T_CHECK(jdbl(jget(k, "Length"), "Value") == 1609);
	/* HR zone 2 = 69-83 % of threshold HR (Coggan, wsync/workout.h) */
	k = json_object_array_get_idx(kids, 3);
	T_EQ_STR(jstr(jget(k, "IntensityTarget"), "Unit"), "PercentOfThresholdHr");
	T_CHECK(jdbl(jget(k, "IntensityTarget"), "MinValue") == 69);
	T_CHECK(jdbl(jget(k, "IntensityTarget"), "MaxValue") == 83);
	/* freeride: no target */
	k = json_object_array_get_idx(kids, 4);
	T_CHECK(jget(k, "IntensityTarget") == NULL);
	/* lap button */
	k = json_object_array_get_idx(kids, 5);
	T_CHECK(json_object_get_boolean(jget(k, "OpenDuration")));
	T_CHECK(jdbl(jget(k, "Length"), "Value") == 0);
	json_object_put(st);
	/* the POST body */
	{
		const wsync_testhost_http *h = wsync_testhost_http_at(th, 1);
		json_object *b = json_tokener_parse(h ? h->body : "null");
		T_EQ_STR(jstr(b, "WorkoutType"), "mtb");
		T_CHECK(jget(b, "Id") == NULL);
		T_CHECK(jget(b, "StartTimePlanned") == NULL);
		T_EQ_STR(wsync_testhost_http_header(h, "User-Agent"), "unit-client/1.0.0");
		json_object_put(b);
	}
	wsync_testhost_free(th);
}

/* A user who connects another TrainingPeaks account: the cached athlete id
 * is refused (403), read again, and the write repeated once. */
static void athlete_switch(void)
{
	wsync_testhost *th = load(NULL);
	const wsync_workout_entity *w = workout(th, "run", "- 20m 75% HR\n");
	const wsync_scheduled_entity *s1 = sched(th, w, date_in(2), "06:00:00");
	const wsync_scheduled_entity *s2 = sched(th, w, date_in(3), NULL);

	sandbox_today(date_in(0));
	wsync_testhost_set_token(th, "unit-a");
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s1}),
	         WSYNC_OK);
	T_EQ_INT(wsync_testhost_http_count(th), 2); /* profile, POST */
	T_CONTAINS(wsync_testhost_http_at(th, 0)->url, "/v1/athlete/profile");

	/* same wsync user, new TrainingPeaks account (athlete 77) */
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/tokens",
	                     "{\"access_token\":\"unit-b\",\"user_id\":77}", NULL), 200);
	wsync_testhost_set_token(th, "unit-b");
	wsync_testhost_clear(th);
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s2}),
	         WSYNC_OK);
	T_EQ_INT(wsync_testhost_http_count(th), 3);
	if (wsync_testhost_http_count(th) == 3) {
		T_EQ_INT(wsync_testhost_http_at(th, 0)->status, 403);
		T_CONTAINS(wsync_testhost_http_at(th, 1)->url, "/v1/athlete/profile");
		T_EQ_INT(wsync_testhost_http_at(th, 2)->status, 200);
		T_CONTAINS(wsync_testhost_http_at(th, 2)->body, "\"AthleteId\":77");
	}
	/* from now on the new id is cached: one call */
	{
		char id[64];
		const char *pid = wsync_testhost_result(th)->provider_id;
		snprintf(id, sizeof id, "%s", pid ? pid : "");
		wsync_testhost_clear(th);
		T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
		                             &(wsync_testhost_request){.workout = w, .scheduled = s2,
		                                                       .scheduled_provider_id = id}),
		         WSYNC_OK);
		T_EQ_INT(wsync_testhost_http_count(th), 1);
		if (wsync_testhost_http_count(th) == 1)
			T_EQ_STR(wsync_testhost_http_at(th, 0)->method, "PUT");
	}
	wsync_testhost_free(th);
}

/* A basic athlete: a future workout is 403, an auth_error with a reason. */
static void basic_athlete(void)
{
	wsync_testhost *th = load(NULL);
	const wsync_workout_entity *w = workout(th, "swim", "- 400mtr\n");
	const wsync_scheduled_entity *s = sched(th, w, date_in(5), NULL);
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/settings", "{\"tp_premium\":false}", NULL), 200);
	wsync_testhost_set_token(th, "unit-basic");
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
	         WSYNC_E_AUTH);
	T_EQ_STR(wsync_testhost_result(th)->error_type, "auth_error");
	T_CONTAINS(wsync_testhost_result(th)->message, "403");
	/* again, with the athlete id cached: read once more, same id, no retry */
	wsync_testhost_clear(th);
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
	         WSYNC_E_AUTH);
	T_CONTAINS(wsync_testhost_result(th)->message, "basic athletes cannot have future");
	T_EQ_INT(wsync_testhost_http_count(th), 2);
	if (wsync_testhost_http_count(th) == 2)
		T_CONTAINS(wsync_testhost_http_at(th, 1)->url, "/v1/athlete/profile");
	/* a failing profile read keeps its own class (here: 503, retried) */
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/v1/athlete/profile\",\"status\":503}");
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
	         WSYNC_E_PROVIDER);
	T_EQ_INT(e2e_sandbox(sb, "POST", "/_sandbox/settings", "{\"tp_premium\":true}", NULL), 200);
	wsync_testhost_free(th);
}

static void window_on_fixed_clock(void)
{
	wsync_testhost *th = load(NULL);
	const wsync_workout_entity *w = workout(th, "bike", "- 30m 60%\n");
	struct {
		const char *date;
		int32_t want;
	} cases[] = {
		{"2026-02-21", WSYNC_E_INVALID}, /* 8 days ago */
		{"2026-02-22", WSYNC_OK},        /* 7 days ago */
		{"2027-03-01", WSYNC_OK},        /* one year ahead */
		{"2027-03-02", WSYNC_E_INVALID},
		{"2026-02-30", WSYNC_E_INVALID}, /* no such day */
	};
	sandbox_today("2026-03-01");
	wsync_testhost_set_clock(1772366400); /* 2026-03-01T12:00:00Z */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const wsync_scheduled_entity *s = sched(th, w, cases[i].date, NULL);
		wsync_testhost_clear(th);
		T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
		                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
		         cases[i].want);
		if (cases[i].want != WSYNC_OK) {
			T_EQ_INT(wsync_testhost_http_count(th), 0);
			T_EQ_STR(wsync_testhost_result(th)->error_type, "invalid_request");
		}
	}
	wsync_testhost_clear(th);
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w,
	                                                       .scheduled = sched(th, w, "2026-02-21", NULL)}),
	         WSYNC_E_INVALID);
	T_EQ_STR(wsync_testhost_result(th)->message,
	         "TrainingPeaks accepts planned workouts from 7 days ago to 1 year ahead "
	         "(2026-02-22 .. 2027-03-01); 2026-02-21 is outside");
	/* 29 February: one year later is 28 February */
	wsync_testhost_set_clock(1835438400); /* 2028-02-29T12:00:00Z */
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w,
	                                                       .scheduled = sched(th, w, "2029-03-01", NULL)}),
	         WSYNC_E_INVALID);
	T_CONTAINS(wsync_testhost_result(th)->message, "(2028-02-22 .. 2029-02-28)");
	wsync_testhost_set_clock(0);
	sandbox_today(NULL);
	wsync_testhost_free(th);
}

static void answers(void)
{
	wsync_testhost *th = load(NULL);
	const wsync_workout_entity *w = workout(th, "bike", "- 30m 60%\n");
	const wsync_scheduled_entity *s = sched(th, w, date_in(1), NULL);

	sandbox_today(date_in(0));
	wsync_testhost_set_token(th, "unit-answers");
	/* a profile without Id: provider trouble, retried */
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/v1/athlete/profile\",\"status\":200,"
	              "\"body\":{\"FirstName\":\"x\"}}");
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
	         WSYNC_E_PROVIDER);
	T_CONTAINS(wsync_testhost_result(th)->message, "Id");
	/* a create answer without Id */
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v2/workouts/plan\",\"status\":200,"
	              "\"body\":{}}");
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
	         WSYNC_E_PROVIDER);
	/* an id as a string is fine */
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v2/workouts/plan\",\"status\":200,"
	              "\"body\":{\"Id\":\"123456\"}}");
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s}),
	         WSYNC_OK);
	T_EQ_STR(wsync_testhost_result(th)->provider_id, "123456");
	/* delete of something already gone: success, as in wsyncd */
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.scheduled_provider_id = "999"}),
	         WSYNC_OK);
	T_CONTAINS(wsync_testhost_http_at(th, wsync_testhost_http_count(th) - 1)->url,
	           "/v2/workouts/id/999");
	/* a stored id that is not TrainingPeaks' */
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.workout = w, .scheduled = s,
	                                                       .scheduled_provider_id = "ex-1"}),
	         WSYNC_E_UNEXPECTED);
	T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT,
	                             &(wsync_testhost_request){.scheduled_provider_id = "12x"}),
	         WSYNC_E_UNEXPECTED);
	wsync_testhost_free(th);
}

/* ---- exactly once (plugin.h, EXACTLY ONCE) ---------------------------------- */

static const wsync_workout_entity *titled(wsync_testhost *th, const char *title)
{
	char err[256];
	const wsync_workout_entity *w = wsync_testhost_workout(
		th, &(wsync_workout_entity){.name = title, .sport = "bike",
		                            .workout_text = "- 20m 70%\n"},
		err, sizeof err);
	if (!w)
		t_fail(__FILE__, __LINE__, "workout: %s", err);
	return w;
}

/* TrainingPeaks workouts with this day and title, per the sandbox. */
static long long tp_count(const char *day, const char *title)
{
	char key[256];
	json_object *c = e2e_sandbox_json(sb, "/_sandbox/counts");
	long long n;
	snprintf(key, sizeof key, "%s|%s", day, title);
	n = json_object_get_int64(jget(jget(jget(c, "trainingpeaks"), "workouts_by_day_title"), key));
	json_object_put(c);
	return n;
}

static int tp_calls(wsync_testhost *th, const char *method, const char *part)
{
	int n = 0;
	for (size_t i = 0; i < wsync_testhost_http_count(th); i++) {
		const wsync_testhost_http *h = wsync_testhost_http_at(th, i);
		if (!strcmp(h->method, method) && strstr(h->url, part))
			n++;
	}
	return n;
}

static int32_t tp_create(wsync_testhost *th, const wsync_workout_entity *w,
                         const wsync_scheduled_entity *s, int reconcile)
{
	wsync_testhost_clear(th);
	return wsync_testhost_call_reconcile(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                                     &(wsync_testhost_request){.workout = w, .scheduled = s},
	                                     reconcile, NULL);
}

static void exactly_once(void)
{
	/* 1 s timeout: a "slow" fault plays an answer lost after TP acted */
	wsync_testhost *th = load("[provider]\ntimeout_seconds = 1\n[oauth]\nclient_id = c\n");
	const wsync_workout_entity *w;
	const wsync_scheduled_entity *s;
	const char *day = date_in(3), *day2 = date_in(4);
	char path[64];

	sandbox_today(NULL);
	/* (a) the answer is lost: the reconcile finds day + title, adopts, PUTs */
	w = titled(th, "Reconcile lost");
	s = sched(th, w, day, NULL);
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v2/workouts/plan\","
	              "\"action\":\"slow\",\"delay_ms\":2000}");
	T_EQ_INT(tp_create(th, w, s, 0), WSYNC_E_PROVIDER);
	T_EQ_INT(tp_count(day, "Reconcile lost"), 1);
	T_EQ_INT(tp_create(th, w, s, 1), WSYNC_OK);
	snprintf(path, sizeof path, "/v2/workouts/%s/%s", day, day);
	T_EQ_INT(tp_calls(th, "GET", path), 1);
	T_EQ_INT(tp_calls(th, "PUT", "/v2/workouts/plan/"), 1);
	T_EQ_INT(tp_calls(th, "POST", "/v2/workouts/plan"), 0);
	T_EQ_INT(tp_count(day, "Reconcile lost"), 1);
	T_CHECK(wsync_testhost_result(th)->provider_id != NULL);

	/* (b) nothing with that title that day (another title is there): POST once */
	w = titled(th, "Reconcile new");
	s = sched(th, w, day, NULL);
	T_EQ_INT(tp_create(th, w, s, 1), WSYNC_OK);
	T_EQ_INT(tp_calls(th, "POST", "/v2/workouts/plan"), 1);
	T_EQ_INT(tp_count(day, "Reconcile new"), 1);
	T_EQ_INT(tp_count(day, "Reconcile lost"), 1);

	/* (c) a 2xx without a usable Id: provider_error, then one workout, linked */
	w = titled(th, "Reconcile no id");
	s = sched(th, w, day2, NULL);
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v2/workouts/plan\","
	              "\"status\":200,\"process\":true,\"body\":\"<html>OK</html>\"}");
	T_EQ_INT(tp_create(th, w, s, 0), WSYNC_E_PROVIDER);
	T_CONTAINS(wsync_testhost_result(th)->message, "answer without a usable \"Id\"");
	T_EQ_INT(tp_create(th, w, s, 1), WSYNC_OK);
	T_EQ_INT(tp_calls(th, "POST", "/v2/workouts/plan"), 0);
	T_EQ_INT(tp_count(day2, "Reconcile no id"), 1);

	/* a failed lookup is not a blind POST */
	w = titled(th, "Reconcile lookup fails");
	s = sched(th, w, day2, NULL);
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/v2/workouts/\",\"status\":503}");
	T_EQ_INT(tp_create(th, w, s, 1), WSYNC_E_PROVIDER);
	T_EQ_INT(tp_calls(th, "POST", "/v2/workouts/plan"), 0);
	T_EQ_INT(tp_count(day2, "Reconcile lookup fails"), 0);
	/* a 1.0 host's first attempt does not look */
	wsync_testhost_clear(th);
	T_EQ_INT(wsync_testhost_call_reconcile(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                                       &(wsync_testhost_request){.workout = w, .scheduled = s},
	                                       WSYNC_TESTHOST_ABI_1_0, NULL), WSYNC_OK);
	T_EQ_INT(tp_calls(th, "GET", "/v2/workouts/2"), 0);
	T_EQ_INT(tp_count(day2, "Reconcile lookup fails"), 1);
	wsync_testhost_free(th);
}

static void configuration(void)
{
	char ini[512], err[1024];
	wsync_testhost *th;

	/* no client id: a warning and a generic User-Agent */
	th = load("");
	T_CHECK(th != NULL);
	if (th) {
		T_CHECK(wsync_testhost_log_find(th, "TrainingPeaks expects <client_id>/<version>") != NULL);
		wsync_testhost_free(th);
	}
	/* an explicit User-Agent */
	th = load("[trainingpeaks]\nuser_agent = acme-tp/2.1\n");
	if (th) {
		const wsync_workout_entity *w = workout(th, "bike", "- 30m 60%\n");
		sandbox_today(date_in(0));
		wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
		                    &(wsync_testhost_request){.workout = w,
		                                              .scheduled = sched(th, w, date_in(0), NULL)});
		T_EQ_STR(wsync_testhost_http_header(wsync_testhost_http_at(th, 0), "User-Agent"),
		         "acme-tp/2.1");
		wsync_testhost_free(th);
	}
	/* refused values */
	snprintf(ini, sizeof ini, "[provider]\nplugin = trainingpeaks\nbase_url = %s\n"
	                          "allow_insecure_http = true\n[trainingpeaks]\nuser_agent = no version\n", sb->base_url);
	T_CHECK(wsync_testhost_load(so_path, ini, err, sizeof err) == NULL);
	snprintf(ini, sizeof ini, "[provider]\nplugin = trainingpeaks\nbase_url = %s\n"
	                          "allow_insecure_http = true\n[trainingpeaks]\ndefault_workout_type = kayak\n", sb->base_url);
	T_CHECK(wsync_testhost_load(so_path, ini, err, sizeof err) == NULL);
	snprintf(ini, sizeof ini, "[provider]\nplugin = trainingpeaks\nbase_url = %s\n"
	                          "allow_insecure_http = true\n[trainingpeaks]\nunknown = 1\n", sb->base_url);
	T_CHECK(wsync_testhost_load(so_path, ini, err, sizeof err) == NULL);
	T_CONTAINS(err, "unknown");
	/* default_workout_type applies to unknown sports */
	th = load("[oauth]\nclient_id = c\n[trainingpeaks]\ndefault_workout_type = x-train\n");
	if (th) {
		const wsync_workout_entity *w = workout(th, "Underwater hockey", "- 30m 60%\n");
		sandbox_today(date_in(0));
		T_EQ_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
		                             &(wsync_testhost_request){.workout = w,
		                                                       .scheduled = sched(th, w, date_in(0), NULL)}),
		         WSYNC_OK);
		T_CONTAINS(wsync_testhost_http_at(th, 1)->body, "\"WorkoutType\":\"x-train\"");
		wsync_testhost_free(th);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s trainingpeaks.so\n", argv[0]);
		return 2;
	}
	so_path = argv[1];
	sb = e2e_start(0);
	not_applicable();
	mapping_corners();
	athlete_switch();
	basic_athlete();
	window_on_fixed_clock();
	answers();
	configuration();
	exactly_once();
	e2e_stop(sb);
	return t_done();
}
