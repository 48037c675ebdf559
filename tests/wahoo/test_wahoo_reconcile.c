/*
 * test_wahoo_reconcile.c -- exactly once toward Wahoo (plugin.h, EXACTLY
 * ONCE): the wahoo plugin through the SDK's test host against wsync-sandbox,
 * which, like Wahoo, deduplicates nothing.  A create with `reconcile` set
 * looks the object up by its key (plan external_id, workout workout_token)
 * and adopts it; a 2xx create answer without a usable id is provider_error,
 * and the reconciled retry ends with exactly one object and its id.
 *
 *   test_wahoo_reconcile WAHOO_SO     (under tests/pg_harness.sh, env from meson)
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
	snprintf(ini, sizeof ini,
	         "[provider]\nplugin = wahoo\nbase_url = %s\nallow_insecure_http = true\n",
	         sb->base_url);
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
		th, &(wsync_scheduled_entity){.scheduled_date = date, .scheduled_time = "06:00:00"},
		w, err, sizeof err);
	if (!s) {
		t_fail(__FILE__, __LINE__, "scheduled: %s", err);
		exit(t_done());
	}
	return s;
}

/* /_sandbox/counts -> wahoo -> `map` -> `key` (0 when absent). */
static long long count_of(const char *map, const char *key)
{
	json_object *c = e2e_sandbox_json(sb, "/_sandbox/counts"), *v = NULL, *w = NULL,
		    *m = NULL;
	long long n = 0;
	if (json_object_object_get_ex(c, "wahoo", &w) && json_object_object_get_ex(w, map, &m) &&
	    json_object_object_get_ex(m, key, &v))
		n = json_object_get_int64(v);
	json_object_put(c);
	return n;
}

static long long plans_of(const char *workout_id)
{
	return count_of("plans_by_external_id", workout_id);
}

static long long workouts_of(const char *scheduled_id)
{
	return count_of("workouts_by_token", scheduled_id);
}

/* The sandbox's id of the only plan with external_id `key` (malloc'ed). */
static char *plan_id_of(const char *key)
{
	json_object *store = e2e_sandbox_json(sb, "/_sandbox/store"), *w, *plans, *v;
	char *id = NULL;
	if (json_object_object_get_ex(store, "wahoo", &w) &&
	    json_object_object_get_ex(w, "plans", &plans))
		for (size_t i = 0; i < json_object_array_length(plans); i++) {
			json_object *p = json_object_array_get_idx(plans, i);
			if (json_object_object_get_ex(p, "external_id", &v) &&
			    !strcmp(json_object_get_string(v), key) &&
			    json_object_object_get_ex(p, "id", &v))
				id = strdup(json_object_get_string(v));
		}
	json_object_put(store);
	return id;
}

/* How many recorded HTTP calls have this method and a URL containing `part`. */
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

static int32_t create_plan(wsync_testhost *th, const wsync_workout_entity *w, int reconcile)
{
	wsync_testhost_clear(th);
	return wsync_testhost_call_reconcile(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                                     &(wsync_testhost_request){.workout = w}, reconcile,
	                                     NULL);
}

static int32_t create_sched(wsync_testhost *th, const wsync_scheduled_entity *s,
                            const wsync_workout_entity *w, const char *plan, int reconcile)
{
	wsync_testhost_clear(th);
	return wsync_testhost_call_reconcile(
		th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
		&(wsync_testhost_request){.workout = w, .scheduled = s, .workout_provider_id = plan},
		reconcile, NULL);
}

/* ---- tests ------------------------------------------------------------------ */

/* (d) The sandbox is no kinder than Wahoo: the same external_id twice
 * makes two plans.  A reconcile then adopts one and makes no third. */
static void duplicate_external_id_is_accepted(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Twice");
	T_EQ_INT(create_plan(th, w, 0), WSYNC_OK);
	T_EQ_INT(create_plan(th, w, 0), WSYNC_OK);
	T_EQ_INT(plans_of(w->id), 2);
	T_EQ_INT(create_plan(th, w, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 0);
	T_EQ_INT(calls(th, "PUT", "/v1/plans/"), 1);
	T_EQ_INT(plans_of(w->id), 2);
	T_CHECK(wsync_testhost_log_find(th, "2 plans carry external_id") != NULL);
	wsync_testhost_free(th);
}

/* (a) The earlier POST reached Wahoo but its answer was lost: the reconcile
 * create finds the plan by external_id, adopts it and PUTs the content. */
static void adopt_existing_plan(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Lost answer");
	char *id;
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"action\":\"reset\","
	              "\"process\":true}");
	T_EQ_INT(create_plan(th, w, 0), WSYNC_E_PROVIDER);
	T_EQ_INT(plans_of(w->id), 1);
	T_EQ_INT(create_plan(th, w, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/v1/plans?external_id="), 1);
	T_EQ_INT(calls(th, "PUT", "/v1/plans/"), 1);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 0);
	T_EQ_INT(plans_of(w->id), 1);
	id = plan_id_of(w->id);
	T_EQ_STR(wsync_testhost_result(th)->provider_id, id);
	free(id);
	wsync_testhost_free(th);
}

/* (b) Nothing there: one lookup, one POST, one plan. */
static void reconcile_with_nothing_creates_one(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Never reached");
	char *id;
	T_EQ_INT(create_plan(th, w, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/v1/plans?external_id="), 1);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 1);
	T_EQ_INT(plans_of(w->id), 1);
	id = plan_id_of(w->id);
	T_EQ_STR(wsync_testhost_result(th)->provider_id, id);
	free(id);
	wsync_testhost_free(th);
}

/* (c) A 2xx answer to a create without a usable id: provider_error (no
 * second POST in the call), and the reconciled retry ends with exactly one
 * plan whose id is the link. */
static void answer_without_id(const char *label, const char *rule)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, label);
	const wsync_testhost_outcome *r;
	char *id;
	e2e_fault(sb, rule);
	T_EQ_INT(create_plan(th, w, 0), WSYNC_E_PROVIDER);
	r = wsync_testhost_result(th);
	T_EQ_STR(r->error_type, "provider_error");
	T_CHECK(r->provider_id == NULL);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 1);
	T_EQ_INT(plans_of(w->id), 1);
	T_EQ_INT(create_plan(th, w, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 0);
	T_EQ_INT(plans_of(w->id), 1);
	id = plan_id_of(w->id);
	T_CHECK(id != NULL);
	T_EQ_STR(wsync_testhost_result(th)->provider_id, id);
	free(id);
	wsync_testhost_free(th);
}

static void answers_without_id(void)
{
	char *big, *rule;
	size_t n = 3u << 20, i;
	wsync_testhost *th;
	const wsync_workout_entity *w;

	answer_without_id("HTML", "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":201,"
	                          "\"process\":true,\"headers\":{\"Content-Type\":\"text/html\"},"
	                          "\"body\":\"<html><body>Created</body></html>\"}");
	answer_without_id("Truncated", "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\","
	                               "\"action\":\"truncate\",\"process\":true}");
	answer_without_id("Cut JSON", "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\","
	                              "\"status\":201,\"process\":true,\"body\":\"{\\\"id\\\": 12\"}");
	answer_without_id("No id", "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\","
	                           "\"status\":200,\"process\":true,\"body\":{\"name\":\"x\"}}");
	/* a 3 MiB JSON answer without an id */
	big = malloc(n + 200);
	rule = malloc(n + 400);
	T_CHECK(big && rule);
	if (!big || !rule)
		return;
	memcpy(big, "{\\\"padding\\\":\\\"", 15);
	for (i = 15; i < n; i++)
		big[i] = 'x';
	memcpy(big + n, "\\\"}", 4);
	snprintf(rule, n + 400, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":201,"
	                        "\"process\":true,\"body\":\"%s\"}", big);
	answer_without_id("Large", rule);
	free(big);
	free(rule);

	/* the message says what happened */
	th = load();
	w = workout(th, "Message");
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":201,"
	              "\"process\":true,\"body\":\"<html/>\"}");
	T_EQ_INT(create_plan(th, w, 0), WSYNC_E_PROVIDER);
	T_CONTAINS(wsync_testhost_result(th)->message, "HTTP 201 from POST /v1/plans: answer "
	                                               "without id");
	T_CONTAINS(wsync_testhost_result(th)->message, "looks it up before creating");
	wsync_testhost_free(th);
}

/* A lookup that fails must not turn into a blind POST. */
static void failed_lookup_does_not_create(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Lookup fails");
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/v1/plans\",\"status\":503}");
	T_EQ_INT(create_plan(th, w, 1), WSYNC_E_PROVIDER);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 0);
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/v1/plans\",\"status\":200,"
	              "\"body\":{\"plans\":[]}}");
	T_EQ_INT(create_plan(th, w, 1), WSYNC_E_PROVIDER);
	T_CONTAINS(wsync_testhost_result(th)->message, "not creating blindly");
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 0);
	T_EQ_INT(plans_of(w->id), 0);
	/* a 422 to the create stays invalid_request: it is not "exists" */
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v1/plans\",\"status\":422}");
	T_EQ_INT(create_plan(th, w, 0), WSYNC_E_INVALID);
	T_EQ_INT(calls(th, "GET", "/v1/plans"), 0);
	wsync_testhost_free(th);
}

/* A 1.0 host has no `reconcile`: the first attempt POSTs at once, a later
 * attempt looks up first. */
static void host_1_0(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Old host");
	T_EQ_INT(wsync_testhost_call_reconcile(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                                       &(wsync_testhost_request){.workout = w},
	                                       WSYNC_TESTHOST_ABI_1_0, NULL), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/v1/plans"), 0);
	wsync_testhost_clear(th);
	T_EQ_INT(wsync_testhost_call_reconcile(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                                       &(wsync_testhost_request){.workout = w, .attempt = 2},
	                                       WSYNC_TESTHOST_ABI_1_0, NULL), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/v1/plans?external_id="), 1);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 0);
	T_EQ_INT(plans_of(w->id), 1);
	wsync_testhost_free(th);
}

/* An external_key other than the entity's id is not followed: the plans
 * made before carry the workout's id. */
static void foreign_external_key(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Foreign key");
	T_EQ_INT(create_plan(th, w, 0), WSYNC_OK);
	wsync_testhost_clear(th);
	T_EQ_INT(wsync_testhost_call_reconcile(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                                       &(wsync_testhost_request){.workout = w}, 1,
	                                       "00000000-0000-4000-8000-00000000beef"),
	         WSYNC_OK);
	T_CHECK(wsync_testhost_log_find(th, "is not the entity's id") != NULL);
	T_EQ_INT(calls(th, "POST", "/v1/plans"), 0);
	T_EQ_INT(plans_of(w->id), 1);
	T_EQ_INT(plans_of("00000000-0000-4000-8000-00000000beef"), 0);
	wsync_testhost_free(th);
}

/* Scheduled workouts: no lookup by workout_token, so the list is scanned,
 * across pages, and the workout adopted. */
static void scheduled_workouts(void)
{
	wsync_testhost *th = load();
	const wsync_workout_entity *w = workout(th, "Scheduled");
	const wsync_scheduled_entity *s, *other;
	char plan[64], date[16];
	int i;

	T_EQ_INT(create_plan(th, w, 0), WSYNC_OK);
	snprintf(plan, sizeof plan, "%s", wsync_testhost_result(th)->provider_id);

	/* (b) nothing there: the scan, then one POST */
	s = sched(th, w, "2030-01-10");
	T_EQ_INT(create_sched(th, s, w, plan, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/v1/workouts?page=1"), 1);
	T_EQ_INT(calls(th, "POST", "/v1/workouts"), 1);
	T_EQ_INT(workouts_of(s->id), 1);

	/* A reset on a REUSED keep-alive connection after the provider made
	 * the workout: libcurl would silently send the POST again (a
	 * duplicate no plugin could see); the host's HTTP refuses to, so this
	 * is one workout and a provider_error whose retry reconciles. */
	s = sched(th, w, "2030-01-09");
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v1/workouts\",\"action\":\"reset\","
	              "\"process\":true}");
	T_EQ_INT(create_sched(th, s, w, plan, 0), WSYNC_E_PROVIDER);
	T_EQ_INT(workouts_of(s->id), 1);
	T_CONTAINS(wsync_testhost_result(th)->message, "not sent again");
	T_EQ_INT(create_sched(th, s, w, plan, 1), WSYNC_OK);
	T_EQ_INT(workouts_of(s->id), 1);

	/* (a) the answer was lost; 40 later workouts push ours to page 2.  A
	 * fresh connection this time. */
	wsync_testhost_free(th);
	th = load();
	w = workout(th, "Scheduled");
	s = sched(th, w, "2030-01-11");
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v1/workouts\",\"action\":\"reset\","
	              "\"process\":true}");
	T_EQ_INT(create_sched(th, s, w, plan, 0), WSYNC_E_PROVIDER);
	for (i = 0; i < 40; i++) {
		snprintf(date, sizeof date, "2030-02-%02d", 1 + i % 28);
		other = sched(th, w, date);
		T_EQ_INT(create_sched(th, other, w, plan, 0), WSYNC_OK);
	}
	T_EQ_INT(workouts_of(s->id), 1);
	T_EQ_INT(create_sched(th, s, w, plan, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "GET", "/v1/workouts?page=2"), 1);
	T_EQ_INT(calls(th, "PUT", "/v1/workouts/"), 1);
	T_EQ_INT(calls(th, "POST", "/v1/workouts"), 0);
	T_EQ_INT(workouts_of(s->id), 1);
	T_CHECK(wsync_testhost_result(th)->provider_id != NULL);

	/* (c) a 2xx without id, then the reconcile: one workout, linked */
	s = sched(th, w, "2030-01-12");
	e2e_fault(sb, "{\"method\":\"POST\",\"path_prefix\":\"/v1/workouts\",\"status\":201,"
	              "\"process\":true,\"body\":\"<html/>\"}");
	T_EQ_INT(create_sched(th, s, w, plan, 0), WSYNC_E_PROVIDER);
	T_EQ_INT(create_sched(th, s, w, plan, 1), WSYNC_OK);
	T_EQ_INT(calls(th, "POST", "/v1/workouts"), 0);
	T_EQ_INT(workouts_of(s->id), 1);

	/* a failed scan is not a blind POST */
	s = sched(th, w, "2030-01-13");
	e2e_fault(sb, "{\"method\":\"GET\",\"path_prefix\":\"/v1/workouts\",\"status\":500,"
	              "\"skip\":1}");
	T_EQ_INT(create_sched(th, s, w, plan, 1), WSYNC_E_PROVIDER);
	T_EQ_INT(calls(th, "POST", "/v1/workouts"), 0);
	T_EQ_INT(workouts_of(s->id), 0);
	T_EQ_INT(e2e_sandbox(sb, "DELETE", "/_sandbox/faults", NULL, NULL), 200);

	/* nothing counts twice anywhere */
	{
		json_object *c = e2e_sandbox_json(sb, "/_sandbox/counts"), *wa = NULL, *v = NULL;
		json_object_object_get_ex(c, "wahoo", &wa);
		json_object_object_get_ex(wa, "duplicate_workouts", &v);
		T_EQ_INT(json_object_get_int64(v), 0);
		json_object_put(c);
	}
	wsync_testhost_free(th);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s wahoo.so\n", argv[0]);
		return 2;
	}
	so_path = argv[1];
	sb = e2e_start(0);
	duplicate_external_id_is_accepted();
	adopt_existing_plan();
	reconcile_with_nothing_creates_one();
	answers_without_id();
	failed_lookup_does_not_create();
	host_1_0();
	foreign_external_key();
	scheduled_workouts();
	e2e_stop(sb);
	return t_done();
}
