/*
 * test_garmin.c -- the Garmin plugin end to end: the application writes
 * workouts and scheduled workouts, the real `wsyncd --once` drains the queue
 * through garmin.so against the sandbox playing the Training API V2, and the
 * sandbox's store, its request log and the queue are checked.
 *
 *   test_garmin GARMIN_SO      (under tests/pg_harness.sh, env from meson)
 */
#include "e2e.h"

#include <stdlib.h>

static e2e *T;

/* ------------------------------------------------------------- helpers */

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (o && json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, key, &v);
	return v;
}

static json_object *jidx(json_object *o, size_t i)
{
	if (!o || !json_object_is_type(o, json_type_array) || i >= json_object_array_length(o))
		return NULL;
	return json_object_array_get_idx(o, i);
}

static long long jint(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
		? (long long)json_object_get_int64(v) : -1;
}

static double jdbl(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_double(v) : -1;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

#define T_NEAR(a, b)                                                           \
	do {                                                                   \
		double t_a_ = (a), t_b_ = (b);                                 \
		t_checks++;                                                    \
		if (t_a_ - t_b_ > 1e-6 || t_b_ - t_a_ > 1e-6)                  \
			t_fail(__FILE__, __LINE__, "%s == %g, expected %g", #a, t_a_, t_b_); \
	} while (0)

static char *out_last;

/* Run wsyncd --once; keep its output for messages. */
static int run_once(void)
{
	int rc;
	free(out_last);
	out_last = NULL;
	rc = e2e_wsyncd_once(T, &out_last);
	if (rc != 0)
		fprintf(stderr, "wsyncd --once exited %d:\n%s\n", rc, out_last ? out_last : "");
	return rc;
}

static void sandbox_post(const char *path, const char *json)
{
	char *body = NULL;
	int st = e2e_sandbox(T, "POST", path, json, &body);
	t_checks++;
	if (st != 200)
		t_fail(__FILE__, __LINE__, "POST %s %s answered %d: %s", path, json, st, body);
	free(body);
}

static void shape(const char *name)
{
	char json[128];
	snprintf(json, sizeof json, "{\"garmin_schedule_shape\":\"%s\"}", name);
	sandbox_post("/_sandbox/settings", json);
}

static void clear_requests(void)
{
	e2e_sandbox(T, "DELETE", "/_sandbox/requests", NULL, NULL);
}

static void clear_faults(void)
{
	e2e_sandbox(T, "DELETE", "/_sandbox/faults", NULL, NULL);
}

/* The request log, filtered; caller puts. */
static json_object *requests(const char *method, const char *prefix)
{
	char path[256];
	if (method)
		snprintf(path, sizeof path, "/_sandbox/requests?method=%s&path_prefix=%s", method,
		         prefix);
	else
		snprintf(path, sizeof path, "/_sandbox/requests?path_prefix=%s", prefix);
	return e2e_sandbox_json(T, path);
}

/* The body of the last logged request matching, parsed; caller puts. */
static json_object *last_body(const char *method, const char *prefix)
{
	json_object *log = requests(method, prefix), *e, *b = NULL;
	size_t n = log ? json_object_array_length(log) : 0;
	if (n && (e = jidx(log, n - 1)) && jstr(e, "body"))
		b = json_tokener_parse(jstr(e, "body"));
	json_object_put(log);
	return b;
}

static size_t count(const char *method, const char *prefix)
{
	json_object *log = requests(method, prefix);
	size_t n = log ? json_object_array_length(log) : 0;
	json_object_put(log);
	return n;
}

/* The Garmin store's object of `kind` ("workouts", "schedules") whose `key`
 * equals id; *root must be put by the caller. */
static json_object *stored(const char *kind, const char *key, long long id, json_object **root)
{
	json_object *arr;
	*root = e2e_sandbox_json(T, "/_sandbox/store");
	arr = jget(jget(*root, "garmin"), kind);
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
		if (jint(jidx(arr, i), key) == id)
			return jidx(arr, i);
	return NULL;
}

static long long link_id(const char *type, const char *entity)
{
	char *l = e2e_link(T, "garmin", type, entity);
	long long v = l ? atoll(l) : -1;
	free(l);
	return v;
}

/* One column of the entity's latest queue entry, malloc'ed. */
static char *qcol(const char *entity, const char *expr)
{
	char sql[512];
	const char *p[1] = {entity};
	snprintf(sql, sizeof sql, "SELECT %s FROM workout_sync_queue WHERE entity_id = $1"
	         " AND provider = 'garmin' ORDER BY seq DESC LIMIT 1", expr);
	return t_query_str(T->db, sql, 1, p);
}

static void expect_state(const char *entity, const char *state)
{
	char *s = e2e_queue_state(T, entity, "garmin");
	T_EQ_STR(s, state);
	if (!s || strcmp(s, state)) {
		char *m = qcol(entity, "coalesce(error_message, '')");
		fprintf(stderr, "  error_message: %s\n  wsyncd said:\n%s\n", m ? m : "",
		        out_last ? out_last : "");
		free(m);
	}
	free(s);
}

/* Seconds until the entity's latest entry is due again. */
static long long due_in(const char *entity)
{
	char *s = qcol(entity, "extract(epoch FROM next_retry_at - now())::bigint");
	long long v = s ? atoll(s) : -1;
	free(s);
	return v;
}

static char *strdup_or_die(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static char *user(const char *token)
{
	return strdup_or_die(e2e_user(T, "garmin", token));
}

static char *workout(const char *u, const char *name, const char *sport, const char *text)
{
	return strdup_or_die(e2e_workout(T, u, name, sport, text));
}

static char *workout_desc(const char *u, const char *name, const char *sport,
                          const char *desc, const char *text)
{
	const char *p[5] = {u, name, sport, desc, text};
	char *id = t_query_str(T->db, "INSERT INTO workouts (user_id, name, sport, description,"
	                              " workout_text) VALUES ($1, $2, $3, $4, $5) RETURNING id",
	                       5, p);
	return id;
}

static char *schedule(const char *u, const char *w, const char *date)
{
	return strdup_or_die(e2e_schedule(T, u, w, date, NULL));
}

static void sql(const char *q, const char *a, const char *b)
{
	const char *p[2] = {a, b};
	t_exec(T->db, q, b ? 2 : 1, p);
}

/* -------------------------------------------------------------- mapping */

static const char *SYNTAX_EXAMPLE =
	T_SYNTAX_EXAMPLE;

static void check_step(json_object *s, const char *type, int order, const char *intensity)
{
	T_EQ_STR(jstr(s, "type"), type);
	T_EQ_INT(jint(s, "stepOrder"), order);
	T_EQ_STR(jstr(s, "intensity"), intensity);
}

static void test_create_mapping(void)
{
	char *u = user("tok-create"), *w, *w2, *w3, *desc;
	json_object *root, *g, *seg, *steps, *s, *rep, *body, *log, *e, *hdr;
	long long id;
	size_t i;

	/* 1100 two-byte characters: cut to 1024 characters, not bytes. */
	desc = malloc(1100 * 2 + 1);
	for (i = 0; i < 1100; i++)
		memcpy(desc + 2 * i, "\xc3\xa9", 2);
	desc[2200] = 0;
	clear_requests();
	w = workout_desc(u, "Syntax example", "bike", desc, SYNTAX_EXAMPLE);
	T_EQ_INT(run_once(), 0);
	expect_state(w, "processed||0");
	id = link_id("workout", w);
	T_CHECK(id > 0);

	g = stored("workouts", "workoutId", id, &root);
	T_CHECK(g != NULL);
	T_EQ_STR(jstr(g, "workoutName"), "Syntax example");
	T_EQ_STR(jstr(g, "sport"), "CYCLING");
	T_EQ_STR(jstr(g, "workoutProvider"), "wsync-e2e-provider20");
	T_EQ_STR(jstr(g, "workoutSourceId"), "wsync-e2e-provider20");
	T_CHECK(utf8_chars(jstr(g, "workoutProvider")) <= 20);
	T_EQ_INT(utf8_chars(jstr(g, "description")), 1024);
	T_EQ_INT(jint(g, "ownerId"), 4242);
	T_EQ_INT(jint(g, "estimatedDurationInSecs"), 600 + 5 * 300 + 480);
	seg = jidx(jget(g, "segments"), 0);
	T_EQ_INT(json_object_array_length(jget(g, "segments")), 1);
	T_EQ_INT(jint(seg, "segmentOrder"), 1);
	T_EQ_STR(jstr(seg, "sport"), "CYCLING");
	steps = jget(seg, "steps");
	T_EQ_INT(json_object_array_length(steps), 3);

	/* - 10m ramp 50-75% 90rpm (warm-up) */
	s = jidx(steps, 0);
	check_step(s, "WorkoutStep", 1, "WARMUP");
	T_EQ_STR(jstr(s, "durationType"), "TIME");
	T_EQ_INT(jint(s, "durationValue"), 600);
	T_EQ_STR(jstr(s, "targetType"), "POWER");
	T_NEAR(jdbl(s, "targetValueLow"), 50);
	T_NEAR(jdbl(s, "targetValueHigh"), 75);
	T_EQ_STR(jstr(s, "targetValueType"), "PERCENT");
	T_EQ_STR(jstr(s, "secondaryTargetType"), "CADENCE");
	T_NEAR(jdbl(s, "secondaryTargetValueLow"), 90);
	T_NEAR(jdbl(s, "secondaryTargetValueHigh"), 90);
	T_EQ_STR(jstr(s, "description"), "ramp 50-75% FTP");
	T_CHECK(jint(s, "stepId") > 0);

	/* Main Set 5x */
	rep = jidx(steps, 1);
	check_step(rep, "WorkoutRepeatStep", 2, "INTERVAL");
	T_EQ_STR(jstr(rep, "repeatType"), "REPEAT_UNTIL_STEPS_CMPLT");
	T_EQ_INT(jint(rep, "repeatValue"), 5);
	T_EQ_INT(json_object_array_length(jget(rep, "steps")), 2);
	s = jidx(jget(rep, "steps"), 0); /* - 3m 120% 100rpm */
	check_step(s, "WorkoutStep", 3, "INTERVAL");
	T_EQ_INT(jint(s, "durationValue"), 180);
	T_EQ_STR(jstr(s, "targetType"), "POWER");
	T_NEAR(jdbl(s, "targetValueLow"), 120);
	T_NEAR(jdbl(s, "targetValueHigh"), 120);
	T_EQ_STR(jstr(s, "targetValueType"), "PERCENT");
	T_NEAR(jdbl(s, "secondaryTargetValueLow"), 100);
	T_CHECK(jget(s, "description") == NULL);
	s = jidx(jget(rep, "steps"), 1); /* - Recovery 2m Z1 85rpm */
	check_step(s, "WorkoutStep", 4, "RECOVERY");
	T_EQ_INT(jint(s, "durationValue"), 120);
	T_EQ_STR(jstr(s, "targetType"), "POWER");
	/* power zones go as the SDK model's % FTP range (Coggan Z1 0-55) */
	T_CHECK(jget(s, "targetValue") == NULL);
	T_NEAR(jdbl(s, "targetValueLow"), 0);
	T_NEAR(jdbl(s, "targetValueHigh"), 55);
	T_EQ_STR(jstr(s, "targetValueType"), "PERCENT");
	T_EQ_STR(jstr(s, "secondaryTargetType"), "CADENCE");
	T_NEAR(jdbl(s, "secondaryTargetValueLow"), 85);
	T_EQ_STR(jstr(s, "description"), "Recovery");

	/* - 8m 50% (cool-down) */
	s = jidx(steps, 2);
	check_step(s, "WorkoutStep", 5, "COOLDOWN");
	T_EQ_INT(jint(s, "durationValue"), 480);
	T_NEAR(jdbl(s, "targetValueLow"), 50);
	T_CHECK(jget(s, "secondaryTargetType") == NULL);
	json_object_put(root);

	/* What went over the wire. */
	log = requests("POST", "/workoutportal/workout/v2");
	T_EQ_INT(json_object_array_length(log), 1);
	e = jidx(log, 0);
	hdr = jget(e, "headers");
	T_EQ_STR(jstr(hdr, "authorization"), "Bearer tok-create");
	T_CONTAINS(jstr(hdr, "content-type"), "application/json");
	T_EQ_INT(jint(e, "status"), 200);
	body = json_tokener_parse(jstr(e, "body"));
	if (getenv("GARMIN_TEST_DUMP")) /* see what the plugin sends */
		fprintf(stderr, "POST body: %s\n", jstr(e, "body"));
	T_CHECK(jget(body, "workoutId") == NULL);
	T_CHECK(jget(body, "steps") == NULL);
	T_EQ_INT(utf8_chars(jstr(body, "description")), 1024);
	json_object_put(body);
	json_object_put(log);

	/* Other targets, sports and lengths. */
	w2 = workout(u, "Targets", "Run",
	             "- 2km 5:00-5:10/km Pace\n"
	             "- 10m Z2 HR\n"
	             "- 5m 70-80% HR\n"
	             "- 5m 90-95% LTHR\n"
	             "- Strides 5m 80% Pace\n"
	             "- 5m Z2-Z3 HR\n"
	             "- press lap 85rpm\n"
	             "- 1mi 200-240w\n"
	             "- 30s freeride\n");
	w3 = workout(u, "Pool", "swim", "- 400mtr 1:45/100m\n- 2m\n");
	T_EQ_INT(run_once(), 0);
	expect_state(w2, "processed||0");
	expect_state(w3, "processed||0");
	g = stored("workouts", "workoutId", link_id("workout", w2), &root);
	T_CHECK(g != NULL);
	T_EQ_STR(jstr(g, "sport"), "RUNNING");
	steps = jget(jidx(jget(g, "segments"), 0), "steps");
	T_EQ_INT(json_object_array_length(steps), 9);
	s = jidx(steps, 0);
	check_step(s, "WorkoutStep", 1, "INTERVAL");
	T_EQ_STR(jstr(s, "durationType"), "DISTANCE");
	T_EQ_INT(jint(s, "durationValue"), 2000);
	T_EQ_STR(jstr(s, "durationValueType"), "METER");
	T_EQ_STR(jstr(s, "targetType"), "PACE");
	T_NEAR(jdbl(s, "targetValueLow"), 3.226);  /* 5:10/km */
	T_NEAR(jdbl(s, "targetValueHigh"), 3.333); /* 5:00/km */
	s = jidx(steps, 1);
	T_EQ_STR(jstr(s, "targetType"), "HEART_RATE");
	T_EQ_INT(jint(s, "targetValue"), 2);
	s = jidx(steps, 2);
	T_EQ_STR(jstr(s, "targetType"), "HEART_RATE");
	T_NEAR(jdbl(s, "targetValueLow"), 70);
	T_NEAR(jdbl(s, "targetValueHigh"), 80);
	T_EQ_STR(jstr(s, "targetValueType"), "PERCENT");
	s = jidx(steps, 3); /* 90-95% LTHR -> zone 3, said in the text */
	T_EQ_STR(jstr(s, "targetType"), "HEART_RATE");
	T_EQ_INT(jint(s, "targetValue"), 3);
	T_EQ_STR(jstr(s, "description"), "target 90-95% LTHR");
	s = jidx(steps, 4); /* % threshold pace: no Garmin target */
	T_EQ_STR(jstr(s, "targetType"), "OPEN");
	T_EQ_STR(jstr(s, "description"), "Strides; target 80% threshold pace (not a Garmin target)");
	s = jidx(steps, 5); /* HR zone range -> its first zone, the range in the text */
	T_EQ_STR(jstr(s, "targetType"), "HEART_RATE");
	T_EQ_INT(jint(s, "targetValue"), 2);
	T_CHECK(jget(s, "targetValueType") == NULL);
	T_CONTAINS(jstr(s, "description"), "Z2-Z3");
	s = jidx(steps, 6); /* lap button, cadence only */
	T_EQ_STR(jstr(s, "durationType"), "OPEN");
	T_CHECK(jget(s, "durationValue") == NULL);
	T_EQ_STR(jstr(s, "targetType"), "CADENCE");
	T_NEAR(jdbl(s, "targetValueLow"), 85);
	s = jidx(steps, 7); /* 1 mile at 200-240 W */
	T_NEAR(jdbl(s, "durationValue"), 1609.344);
	T_EQ_STR(jstr(s, "targetType"), "POWER");
	T_NEAR(jdbl(s, "targetValueLow"), 200);
	T_NEAR(jdbl(s, "targetValueHigh"), 240);
	T_CHECK(jget(s, "targetValueType") == NULL);
	s = jidx(steps, 8);
	T_EQ_STR(jstr(s, "targetType"), "OPEN");
	json_object_put(root);

	g = stored("workouts", "workoutId", link_id("workout", w3), &root);
	T_EQ_STR(jstr(g, "sport"), "LAP_SWIMMING");
	s = jidx(jget(jidx(jget(g, "segments"), 0), "steps"), 0);
	T_CHECK(jget(s, "targetType") == NULL); /* swim: null target type */
	T_EQ_STR(jstr(s, "description"), "target 1:45/100m");
	json_object_put(root);
	free(u);
	free(w);
	free(w2);
	free(w3);
	free(desc);
}

/* ---------------------------------------------------- update and delete */

static void test_update_and_delete(void)
{
	char *u = user("tok-update"), *w, *s;
	json_object *root, *g, *body;
	long long id, sid;

	shape("number");
	w = workout(u, "Before", "bike", "- 20m 85%");
	T_EQ_INT(run_once(), 0);
	id = link_id("workout", w);
	T_CHECK(id > 0);

	clear_requests();
	sql("UPDATE workouts SET name = 'After', workout_text = '- 30m 90%' WHERE id = $1", w, NULL);
	T_EQ_INT(run_once(), 0);
	expect_state(w, "processed||0");
	T_EQ_INT(link_id("workout", w), id);
	T_EQ_INT(count("GET", "/training-api/workout/v2/"), 1);
	body = last_body("PUT", "/training-api/workout/v2/");
	T_CHECK(body != NULL);
	T_EQ_INT(jint(body, "workoutId"), id);
	T_EQ_INT(jint(body, "ownerId"), 4242);
	T_EQ_STR(jstr(body, "workoutName"), "After");
	json_object_put(body);
	g = stored("workouts", "workoutId", id, &root);
	T_EQ_STR(jstr(g, "workoutName"), "After");
	T_EQ_INT(jint(jidx(jget(jidx(jget(g, "segments"), 0), "steps"), 0), "durationValue"), 1800);
	json_object_put(root);

	/* Schedule, reschedule, unschedule, delete. */
	s = schedule(u, w, "2026-12-01");
	T_EQ_INT(run_once(), 0);
	expect_state(s, "processed||0");
	sid = link_id("workout_scheduled", s);
	T_CHECK(sid > 0);
	clear_requests();
	sql("UPDATE workouts_scheduled SET scheduled_date = '2026-12-03' WHERE id = $1", s, NULL);
	T_EQ_INT(run_once(), 0);
	expect_state(s, "processed||0");
	T_EQ_INT(link_id("workout_scheduled", s), sid);
	body = last_body("PUT", "/training-api/schedule/");
	T_EQ_INT(jint(body, "scheduleId"), sid);
	T_EQ_INT(jint(body, "workoutId"), id);
	T_EQ_STR(jstr(body, "date"), "2026-12-03");
	json_object_put(body);
	g = stored("schedules", "scheduleId", sid, &root);
	T_EQ_STR(jstr(g, "date"), "2026-12-03");
	json_object_put(root);

	clear_requests();
	sql("DELETE FROM workouts_scheduled WHERE id = $1", s, NULL);
	sql("DELETE FROM workouts WHERE id = $1", w, NULL);
	T_EQ_INT(run_once(), 0);
	expect_state(s, "processed||0");
	expect_state(w, "processed||0");
	T_EQ_INT(count("DELETE", "/training-api/schedule/"), 1);
	T_EQ_INT(count("DELETE", "/training-api/workout/v2/"), 1);
	T_CHECK(stored("schedules", "scheduleId", sid, &root) == NULL);
	json_object_put(root);
	T_CHECK(stored("workouts", "workoutId", id, &root) == NULL);
	json_object_put(root);
	T_EQ_INT(link_id("workout_scheduled", s), -1);
	T_EQ_INT(link_id("workout", w), -1);
	free(u);
	free(w);
	free(s);
}

/* ----------------------------------------------------------- schedules */

static void test_schedule_shapes(void)
{
	static const char *const shapes[] = {"number", "object_workoutScheduleId",
	                                     "object_scheduleId", "object_id"};
	for (size_t i = 0; i < 4; i++) {
		char tok[64], *u, *w, *s;
		json_object *root, *g, *body, *v;
		long long wid, sid;

		snprintf(tok, sizeof tok, "tok-shape-%zu", i);
		u = user(tok);
		shape(shapes[i]);
		w = workout(u, "Scheduled", "run", "- 40m Z2 HR");
		T_EQ_INT(run_once(), 0);
		wid = link_id("workout", w);
		T_CHECK(wid > 0);
		clear_requests();
		s = schedule(u, w, "2026-12-10");
		T_EQ_INT(run_once(), 0);
		expect_state(s, "processed||0");
		sid = link_id("workout_scheduled", s);
		T_CHECK(sid > 0);
		T_EQ_INT(count("POST", "/training-api/schedule"), 1);
		g = stored("schedules", "scheduleId", sid, &root);
		if (!g)
			fprintf(stderr, "  shape %s: schedule %lld not in the store\n", shapes[i], sid);
		T_CHECK(g != NULL);
		T_EQ_INT(jint(g, "workoutId"), wid);
		T_EQ_STR(jstr(g, "date"), "2026-12-10");
		json_object_put(root);
		body = last_body("POST", "/training-api/schedule");
		v = jget(body, "workoutId");
		T_CHECK(v && json_object_is_type(v, json_type_int)); /* a number, not text */
		T_EQ_INT(jint(body, "workoutId"), wid);
		T_EQ_STR(jstr(body, "date"), "2026-12-10");
		T_CHECK(jget(body, "scheduleId") == NULL);
		json_object_put(body);
		free(u);
		free(w);
		free(s);
	}
	shape("number");

	/* Workout and schedule written together: the core syncs the workout
	 * first for the schedule.  (Whether the workout's own entry can then
	 * create it a second time is a core question, see the README.) */
	{
		char *u = user("tok-together"), *w, *s;
		json_object *root, *g, *root2;
		long long sid;
		w = workout(u, "Together", "bike", "- 30m 70%");
		s = schedule(u, w, "2026-12-09");
		T_EQ_INT(run_once(), 0);
		expect_state(w, "processed||0");
		expect_state(s, "processed||0");
		sid = link_id("workout_scheduled", s);
		g = stored("schedules", "scheduleId", sid, &root);
		T_CHECK(g != NULL);
		T_EQ_STR(jstr(g, "date"), "2026-12-09");
		T_CHECK(stored("workouts", "workoutId", jint(g, "workoutId"), &root2) != NULL);
		json_object_put(root2);
		json_object_put(root);
		free(u);
		free(w);
		free(s);
	}

	/* Ids as strings, a bare quoted number, and no id at all. */
	{
		static const char *const bodies[] = {"{\"workoutScheduleId\":\"4900001\"}",
		                                     "\"4900002\"", "{\"scheduleId\":\"4900003\"}"};
		for (size_t i = 0; i < 3; i++) {
			char tok[64], rule[256], *u, *w, *s;
			snprintf(tok, sizeof tok, "tok-strid-%zu", i);
			u = user(tok);
			w = workout(u, "String id", "bike", "- 10m 60%");
			T_EQ_INT(run_once(), 0);
			snprintf(rule, sizeof rule, "{\"method\":\"POST\",\"path_prefix\":"
			         "\"/training-api/schedule\",\"status\":200,\"process\":true,"
			         "\"headers\":{\"Content-Type\":\"application/json\"},\"body\":%s}",
			         bodies[i][0] == '{' ? bodies[i] : "\"\\\"4900002\\\"\"");
			e2e_fault(T, rule);
			s = schedule(u, w, "2026-12-11");
			T_EQ_INT(run_once(), 0);
			expect_state(s, "processed||0");
			T_EQ_INT(link_id("workout_scheduled", s), 4900001 + (long long)i);
			clear_faults();
			free(u);
			free(w);
			free(s);
		}
	}
	{
		char *u = user("tok-noid"), *w, *s, *m;
		w = workout(u, "No id", "bike", "- 10m 60%");
		T_EQ_INT(run_once(), 0);
		e2e_fault(T, "{\"method\":\"POST\",\"path_prefix\":\"/training-api/schedule\","
		             "\"status\":200,\"body\":{\"ok\":true}}");
		s = schedule(u, w, "2026-12-12");
		T_EQ_INT(run_once(), 0);
		expect_state(s, "pending|provider_error|1");
		m = qcol(s, "error_message");
		T_CONTAINS(m, "answer without a schedule id");
		free(m);
		clear_faults();
		free(u);
		free(w);
		free(s);
	}
}

/* --------------------------------------------------------------- limits */

static void test_step_limit(void)
{
	char *u = user("tok-steps"), *ok, *bad, *m;
	char text[4096] = "Main Set 2x\n";
	int i;

	for (i = 0; i < 99; i++)
		strcat(text, "- 1m 60%\n");
	/* 1 repeat + 99 children = 100 step objects: accepted. */
	ok = workout(u, "100 steps", "bike", text);
	T_EQ_INT(run_once(), 0);
	expect_state(ok, "processed||0");
	T_CHECK(link_id("workout", ok) > 0);

	strcat(text, "- 1m 60%\n"); /* 101 */
	clear_requests();
	bad = workout(u, "101 steps", "bike", text);
	T_EQ_INT(run_once(), 0);
	expect_state(bad, "processed|invalid_workout|0");
	m = qcol(bad, "error_message");
	T_CONTAINS(m, "Garmin allows 100 steps, this workout has 101");
	free(m);
	T_EQ_INT(count(NULL, "/"), 0); /* nothing was sent */
	T_EQ_INT(link_id("workout", bad), -1);
	free(u);
	free(ok);
	free(bad);
}

/* --------------------------------------------------------------- faults */

static void test_faults(void)
{
	char *u, *w, *m, *w2;
	long long id, due;

	/* 412: Workout Import not granted. */
	sandbox_post("/_sandbox/tokens", "{\"access_token\":\"tok-noperm\",\"permissions\":[]}");
	sandbox_post("/_sandbox/settings", "{\"require_permission\":true}");
	u = user("tok-noperm");
	w = workout(u, "No permission", "bike", "- 10m 60%");
	T_EQ_INT(run_once(), 0);
	expect_state(w, "processed|auth_error|0");
	m = qcol(w, "error_message");
	T_CONTAINS(m, "412");
	T_CONTAINS(m, "Workout Import");
	T_CONTAINS(m, "WORKOUT_IMPORT");
	free(m);
	sandbox_post("/_sandbox/settings", "{\"require_permission\":false}");
	free(u);
	free(w);

	/* 429 without Retry-After: rate_limit, about 60 s, no retry used. */
	u = user("tok-429");
	e2e_fault(T, "{\"path_prefix\":\"/workoutportal\",\"status\":429}");
	w = workout(u, "Rate limited", "bike", "- 10m 60%");
	T_EQ_INT(run_once(), 0);
	expect_state(w, "pending|rate_limit|0");
	due = due_in(w);
	if (due < 50 || due > 61)
		fprintf(stderr, "  429: due in %lld s\n", due);
	T_CHECK(due >= 50 && due <= 61);
	clear_faults();
	free(u);
	free(w);

	/* 500 (Garmin's answer to malformed bodies): provider_error, retry 1. */
	u = user("tok-500");
	e2e_fault(T, "{\"path_prefix\":\"/workoutportal\",\"status\":500,"
	             "\"body\":{\"message\":\"RouteFailed\"}}");
	w = workout(u, "Server error", "bike", "- 10m 60%");
	T_EQ_INT(run_once(), 0);
	expect_state(w, "pending|provider_error|1");
	due = due_in(w);
	if (due < 105 || due > 135)
		fprintf(stderr, "  500: due in %lld s\n", due);
	T_CHECK(due >= 105 && due <= 135); /* 120 s +- 10 % jitter */
	m = qcol(w, "error_message");
	T_CONTAINS(m, "500");
	free(m);
	clear_faults();
	free(u);
	free(w);

	/* 2xx without workoutId. */
	u = user("tok-noworkoutid");
	e2e_fault(T, "{\"path_prefix\":\"/workoutportal\",\"status\":200,\"body\":{\"ok\":1}}");
	w = workout(u, "No workoutId", "bike", "- 10m 60%");
	T_EQ_INT(run_once(), 0);
	expect_state(w, "pending|provider_error|1");
	m = qcol(w, "error_message");
	T_CONTAINS(m, "answer without workoutId");
	free(m);
	clear_faults();
	free(u);
	free(w);

	/* 200 with a body that is not JSON at all. */
	u = user("tok-malformed");
	e2e_fault(T, "{\"path_prefix\":\"/workoutportal\",\"action\":\"malformed\"}");
	w = workout(u, "Malformed answer", "bike", "- 10m 60%");
	T_EQ_INT(run_once(), 0);
	expect_state(w, "pending|provider_error|1");
	m = qcol(w, "error_message");
	T_CONTAINS(m, "answer without workoutId");
	free(m);
	T_EQ_INT(link_id("workout", w), -1);
	clear_faults();
	free(u);
	free(w);

	/* 404 on delete: already gone, success. */
	u = user("tok-404del");
	w = workout(u, "Gone", "bike", "- 10m 60%");
	T_EQ_INT(run_once(), 0);
	T_CHECK(link_id("workout", w) > 0);
	e2e_fault(T, "{\"method\":\"DELETE\",\"path_prefix\":\"/training-api/workout/v2/\","
	             "\"status\":404,\"body\":{\"message\":\"Workout not found\"}}");
	sql("DELETE FROM workouts WHERE id = $1", w, NULL);
	T_EQ_INT(run_once(), 0);
	expect_state(w, "processed||0");
	T_EQ_INT(link_id("workout", w), -1);
	clear_faults();
	free(u);
	free(w);

	/* 404 on update (the GET of ownerId, then the PUT): created again. */
	u = user("tok-404upd");
	w = workout(u, "Vanished", "bike", "- 10m 60%");
	w2 = workout(u, "Vanished too", "bike", "- 10m 60%");
	T_EQ_INT(run_once(), 0);
	id = link_id("workout", w);
	T_CHECK(id > 0);
	e2e_fault(T, "{\"method\":\"GET\",\"path_prefix\":\"/training-api/workout/v2/\","
	             "\"status\":404}");
	sql("UPDATE workouts SET name = 'Vanished 2' WHERE id = $1", w, NULL);
	T_EQ_INT(run_once(), 0);
	expect_state(w, "processed||0");
	T_CHECK(link_id("workout", w) > 0 && link_id("workout", w) != id);
	clear_faults();
	id = link_id("workout", w2);
	e2e_fault(T, "{\"method\":\"PUT\",\"path_prefix\":\"/training-api/workout/v2/\","
	             "\"status\":404}");
	sql("UPDATE workouts SET name = 'Vanished too 2' WHERE id = $1", w2, NULL);
	T_EQ_INT(run_once(), 0);
	expect_state(w2, "processed||0");
	T_CHECK(link_id("workout", w2) > 0 && link_id("workout", w2) != id);
	{
		json_object *root, *g = stored("workouts", "workoutId", link_id("workout", w2), &root);
		T_EQ_STR(jstr(g, "workoutName"), "Vanished too 2");
		json_object_put(root);
	}
	clear_faults();

	/* 404 on a reschedule: scheduled again. */
	{
		char *s = schedule(u, w2, "2026-12-20");
		long long sid;
		T_EQ_INT(run_once(), 0);
		sid = link_id("workout_scheduled", s);
		T_CHECK(sid > 0);
		e2e_fault(T, "{\"method\":\"PUT\",\"path_prefix\":\"/training-api/schedule/\","
		             "\"status\":404}");
		sql("UPDATE workouts_scheduled SET scheduled_date = '2026-12-21' WHERE id = $1", s, NULL);
		T_EQ_INT(run_once(), 0);
		expect_state(s, "processed||0");
		T_CHECK(link_id("workout_scheduled", s) > 0 && link_id("workout_scheduled", s) != sid);
		clear_faults();
		free(s);
	}
	free(u);
	free(w);
	free(w2);
}

/* ---------------------------------------------------------------- config */

static void test_provider_name_too_long(void)
{
	char *argv[5], *out = NULL;
	int rc;
	e2e_instance(T, "garmin", "garmin",
	             "[provider]\nplugin = garmin\nbase_url = @BASE@\n"
	             "[garmin]\nprovider_name = this-name-is-too-long-for-garmin\n");
	argv[0] = getenv("WSYNC_WSYNCD");
	argv[1] = "-c";
	argv[2] = (char *)e2e_write_config(T);
	argv[3] = "--check";
	argv[4] = NULL;
	rc = t_run(argv, &out);
	T_EQ_INT(rc, 2); /* a configuration error, like any other */
	T_CONTAINS(out, "garmin.ini: plugin garmin refused its configuration");
	T_CONTAINS(out, "provider_name");
	T_CONTAINS(out, "at most 20");
	T_CONTAINS(out, "REFUSED");
	free(out);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_garmin GARMIN_SO\n");
		return 2;
	}
	T = e2e_start(0);
	e2e_add_plugin(T, argv[1]);
	e2e_instance(T, "garmin", "garmin",
	             "[provider]\nplugin = garmin\nbase_url = @BASE@\n"
	             "[garmin]\nprovider_name = wsync-e2e-provider20\n");
	test_create_mapping();
	test_update_and_delete();
	test_schedule_shapes();
	test_step_limit();
	test_faults();
	test_provider_name_too_long();
	e2e_stop(T);
	free(out_last);
	return t_done();
}
