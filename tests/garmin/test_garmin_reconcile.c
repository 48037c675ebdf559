/*
 * test_garmin_reconcile.c -- exactly once toward Garmin (plugin.h, EXACTLY
 * ONCE): the garmin plugin through the SDK's test host against
 * wsync-sandbox, which deduplicates nothing.  Schedules are reconciled
 * through the documented list by date range (workoutId + date); workouts
 * have no documented lookup, so a reconcile create of a workout says so and
 * creates (README, "Exactly once").
 *
 *   test_garmin_reconcile GARMIN_SO   (under tests/pg_harness.sh, env from meson)
 */
#include "e2e.h"

#include <wsync/testhost.h>

#include <stdlib.h>

static const char *so_path;
static e2e *sb;

static wsync_testhost *load(void)
{
	char ini[1024], err[1024];
	wsync_testhost *th;
	/* 1 s timeout: a "slow" fault plays an answer lost after Garmin acted */
	snprintf(ini, sizeof ini,
	         "[provider]\nplugin = garmin\nbase_url = %s\nallow_insecure_http = true\n"
	         "timeout_seconds = 1\n", sb->base_url);
	th = wsync_testhost_load(so_path, ini, err, sizeof err);
	if (!th) {
		t_fail(__FILE__, __LINE__, "load: %s", err);
		exit(t_done());
	}
	return th;
}

static const wsync_workout_entity *workout(wsync_testhost *th, const char *name)
{
	char err[256];
	const wsync_workout_entity *w = wsync_testhost_workout(
		th, &(wsync_workout_entity){.name = name, .sport = "bike",
		                            .workout_text = "- 10m 60%\n- 5m 90%\n"},
		err, sizeof err);
	if (!w) {
		t_fail(__FILE__, __LINE__, "workout: %s", err);
		exit(t_done());
	}
	return w;
}

static const wsync_scheduled_entity *sched(wsync_testhost *th, const wsync_workout_entity *w,
                                           const char *date)
{
	char err[256];
	const wsync_scheduled_entity *s = wsync_testhost_scheduled(
		th, &(wsync_scheduled_entity){.scheduled_date = date}, w, err, sizeof err);
	if (!s) {
		t_fail(__FILE__, __LINE__, "scheduled: %s", err);
		exit(t_done());
	}
	return s;
}

/* /_sandbox/counts -> garmin -> `map` -> `key` (0 when absent). */
static long long count_of(const char *map, const char *key)
{
	json_object *c = e2e_sandbox_json(sb, "/_sandbox/counts"), *v = NULL, *g = NULL,
		    *m = NULL;
	long long n = 0;
	if (json_object_object_get_ex(c, "garmin", &g) && json_object_object_get_ex(g, map, &m) &&
	    json_object_object_get_ex(m, key, &v))
		n = json_object_get_int64(v);
	json_object_put(c);
	return n;
}

static long long schedules_of(const char *wid, const char *date)
{
	char key[96];
	snprintf(key, sizeof key, "%s/%s", wid, date);
	return count_of("schedules_by_workout_date", key);
}

static int calls(wsync_testhost *th, const char *method, const char *part)
{
	int n = 0;
	for (size_t i = 0; i < wsync_testhost_http_count(th); i++) {
		const wsync_testhost_http *h = wsync_testhost_http_at(th, i);
		if (!strcmp(h->method, method) && strstr(h->url, part))
			n++;
	}
	return n;
}

static int32_t create_workout(wsync_testhost *th, const wsync_workout_entity *w, int rec)
{
	wsync_testhost_clear(th);
	return wsync_testhost_call_reconcile(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                                     &(wsync_testhost_request){.workout = w}, rec, NULL);
}

static int32_t create_sched(wsync_testhost *th, const wsync_scheduled_entity *s,
                            const wsync_workout_entity *w, const char *wid, int rec)
{
	wsync_testhost_clear(th);
	return wsync_testhost_call_reconcile(
		th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
		&(wsync_testhost_request){.workout = w, .scheduled = s, .workout_provider_id = wid},
		rec, NULL);
}

static void schedules(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Garmin");
	const wsync_scheduled_entity *s;
	char wid[32], other[32];

	T_EQ_INT(create_workout(th, w, 0), WSYNC_OK);
	snprintf(wid, sizeof wid, "%s", wsync_testhost_result(th)->provider_id);

	/* (a) the answer is lost after Garmin scheduled it: adopted, no POST */
	s = sched(th, w, "2030-03-01");
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/training-api/schedule\","
	              "\"action\":\"slow\",\"delay_ms\":2000}");
	T_EQ_INT(create_sched(th, s, w, wid, 0), WSYNC_E_PROVIDER);
	T_EQ_INT(schedules_of(wid, "2030-03-01"), 1);
	T_EQ_INT(create_sched(th, s, w, wid, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/training-api/schedule?startDate=2030-03-01&endDate=2030-03-01"),
	         1);
	T_EQ_INT(calls(th, "POST", "/training-api/schedule"), 0);
	T_EQ_INT(schedules_of(wid, "2030-03-01"), 1);
	T_CHECK(wsync_testhost_result(th)->provider_id != NULL);

	/* (b) nothing there: one lookup, one POST */
	s = sched(th, w, "2030-03-02");
	T_EQ_INT(create_sched(th, s, w, wid, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/training-api/schedule?"), 1);
	T_EQ_INT(calls(th, "POST", "/training-api/schedule"), 1);
	T_EQ_INT(schedules_of(wid, "2030-03-02"), 1);
	/* a schedule of another workout on that day is not ours */
	T_EQ_INT(create_workout(th, workout(th, "Other"), 0), WSYNC_OK);
	snprintf(other, sizeof other, "%s", wsync_testhost_result(th)->provider_id);
	s = sched(th, w, "2030-03-03");
	T_EQ_INT(create_sched(th, sched(th, w, "2030-03-03"), w, other, 0), WSYNC_OK);
	T_EQ_INT(create_sched(th, s, w, wid, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "POST", "/training-api/schedule"), 1);
	T_EQ_INT(schedules_of(wid, "2030-03-03"), 1);

	/* (c) a 2xx answer without a usable id: provider_error, then adopted */
	s = sched(th, w, "2030-03-04");
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/training-api/schedule\","
	              "\"status\":200,\"process\":true,\"headers\":{\"Content-Type\":\"text/html\"},"
	              "\"body\":\"<html>ok</html>\"}");
	T_EQ_INT(create_sched(th, s, w, wid, 0), WSYNC_E_PROVIDER);
	T_EQ_STR(wsync_testhost_result(th)->error_type, "provider_error");
	T_CONTAINS(wsync_testhost_result(th)->message, "without a schedule id");
	T_EQ_INT(create_sched(th, s, w, wid, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "POST", "/training-api/schedule"), 0);
	T_EQ_INT(schedules_of(wid, "2030-03-04"), 1);

	/* a failed lookup is not a blind POST */
	s = sched(th, w, "2030-03-05");
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/training-api/schedule\","
	              "\"status\":500}");
	T_EQ_INT(create_sched(th, s, w, wid, 1), WSYNC_E_PROVIDER);
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/training-api/schedule\","
	              "\"status\":200,\"body\":{\"schedules\":[]}}");
	T_EQ_INT(create_sched(th, s, w, wid, 1), WSYNC_E_PROVIDER);
	T_CONTAINS(wsync_testhost_result(th)->message, "not creating blindly");
	T_EQ_INT(calls(th, "POST", "/training-api/schedule"), 0);
	T_EQ_INT(schedules_of(wid, "2030-03-05"), 0);

	/* a 1.0 host on a first attempt: no lookup */
	wsync_testhost_clear(th);
	T_EQ_INT(wsync_testhost_call_reconcile(
		         th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
		         &(wsync_testhost_request){.workout = w, .scheduled = s,
		                                   .workout_provider_id = wid},
		         WSYNC_TESTHOST_ABI_1_0, NULL), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/training-api/schedule"), 0);
	T_EQ_INT(schedules_of(wid, "2030-03-05"), 1);
	wsync_testhost_free(th);
}

/* Garmin has no workout lookup: a reconcile create warns and creates; a 2xx
 * answer without workoutId is provider_error. */
static void workouts(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "No lookup");
	T_EQ_INT(create_workout(th, w, 1), WSYNC_OK);
	T_CHECK(wsync_testhost_log_find(th, "has no lookup for workouts") != NULL);
	T_EQ_INT(calls(th, "GET", "/"), 0);
	T_EQ_INT(calls(th, "POST", "/workoutportal/workout/v2"), 1);
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/workoutportal\",\"status\":200,"
	              "\"body\":\"{\\\"workoutName\\\":\\\"x\\\"\"}");
	T_EQ_INT(create_workout(th, w, 0), WSYNC_E_PROVIDER);
	T_CONTAINS(wsync_testhost_result(th)->message, "without workoutId");
	wsync_testhost_free(th);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s garmin.so\n", argv[0]);
		return 2;
	}
	so_path = argv[1];
	sb = e2e_start(0);
	schedules();
	workouts();
	e2e_stop(sb);
	return t_done();
}
