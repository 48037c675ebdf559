/*
 * test_zones.c -- one workout text, three providers, the same zone targets.
 *
 * The text below names power zones Z1..Z5, a zone range and a heart-rate
 * zone.  It goes through wahoo.so, garmin.so and trainingpeaks.so in the SDK's
 * test host; a responder records the body each plugin sends (no network),
 * and the body is decoded as the provider would read it:
 *   Wahoo          form field plan[file] = data URI, base64 of the plan JSON;
 *                  targets {type "ftp"|"threshold_hr", low, high} as fractions
 *   Garmin         JSON workout; steps with targetType POWER and
 *                  targetValueLow/High in % (targetValueType PERCENT)
 *   TrainingPeaks  JSON whose "Structure" string holds the steps;
 *                  IntensityTarget {Unit, MinValue, MaxValue} in %
 * Every power zone must be the same % FTP range everywhere: the range of
 * wsync/workout.h's ZONES table (Coggan), written out here as the user reads
 * it in the docs.  The HR zone must be the same % threshold HR range on Wahoo
 * and TrainingPeaks; Garmin sends the zone number (plugins/garmin/README.md,
 * "Zones: where Garmin differs").
 *
 * Usage: test_zones WAHOO_SO GARMIN_SO TRAININGPEAKS_SO
 */
#include <wsync/testhost.h>

#include <json-c/json.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			failures++;                                             \
		}                                                               \
	} while (0)

static const char WORKOUT_TEXT[] = "Main Set\n"
                                   "- 5m Z1\n"
                                   "- 5m Z2\n"
                                   "- 5m Z3\n"
                                   "- 5m Z4\n"
                                   "- 5m Z5\n"
                                   "- 5m Z2-Z3\n"
                                   "- 5m Z3 HR\n";

#define N_STEPS 7
#define HR_STEP 6

/* Expected % ranges, step by step (Coggan power zones % FTP; the HR step's
 * Z3 is 84-94 % of threshold HR). */
static const double expect[N_STEPS][2] = {
	{0, 55}, {56, 75}, {76, 90}, {91, 105}, {106, 120}, {56, 90}, {84, 94},
};

/* What a plugin got as targets, in step order. */
typedef struct got {
	int n;
	char kind[N_STEPS][32]; /* the provider's own target kind */
	double lo[N_STEPS], hi[N_STEPS];
	int zone[N_STEPS];      /* Garmin's targetValue, else 0 */
} got;

/* The responder: records the body of the last write, answers every request
 * with one JSON that carries each provider's id member. */
typedef struct recorder {
	char *body;
	size_t len;
	char method[8];
	char url[256];
	int writes;
} recorder;

static void respond(void *ctx, const char *url, const wsync_http_request *req,
                    wsync_testhost_answer *a)
{
	static const char answer[] = "{\"Id\":7,\"id\":42,\"workoutId\":43}";
	recorder *r = ctx;
	if (strcmp(req->method, "GET") != 0) {
		free(r->body);
		r->body = malloc(req->body_len + 1);
		if (r->body) {
			memcpy(r->body, req->body, req->body_len);
			r->body[req->body_len] = '\0';
		}
		r->len = req->body_len;
		snprintf(r->method, sizeof r->method, "%s", req->method);
		snprintf(r->url, sizeof r->url, "%s", url);
		r->writes++;
	}
	a->status = 200;
	a->headers = "Content-Type: application/json\r\n";
	a->body = answer;
	a->body_len = sizeof answer - 1;
}

/* ------------------------------------------------------------ decoding */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode [s, s+n) into a new string ('+' is a space in a form). */
static char *url_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	for (size_t i = 0; out && i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	if (out)
		*o = '\0';
	return out;
}

static int b64val(int c)
{
	const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(abc, c) : NULL;
	return p ? (int)(p - abc) : -1;
}

/* RFC 4648 base64 into a new NUL-terminated string, NULL when malformed. */
static char *b64_decode(const char *s)
{
	size_t n = strlen(s), k = 0;
	char *out = malloc(n / 4 * 3 + 4);
	unsigned acc = 0;
	int bits = 0;
	if (!out || n % 4)
		return free(out), NULL;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			return free(out), NULL;
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)(acc >> bits & 0xff);
		}
	}
	out[k] = '\0';
	return out;
}

/* Wahoo: the form's plan[file] value, a data URI, decoded to the plan JSON. */
static json_object *wahoo_plan(const recorder *r)
{
	static const char prefix[] = "data:application/json;base64,";
	json_object *plan = NULL;
	const char *p = r->body, *end = r->body + r->len;
	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		if (eq) {
			char *key = url_decode(p, (size_t)(eq - p));
			char *val = url_decode(eq + 1, (size_t)(stop - eq - 1));
			if (key && val && !strcmp(key, "plan[file]") &&
			    !strncmp(val, prefix, sizeof prefix - 1)) {
				char *json = b64_decode(val + sizeof prefix - 1);
				plan = json ? json_tokener_parse(json) : NULL;
				free(json);
			}
			free(key);
			free(val);
		}
		p = amp ? amp + 1 : NULL;
	}
	return plan;
}

static double num(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : NAN;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void add(got *g, const char *kind, double lo, double hi, int zone)
{
	if (g->n >= N_STEPS) {
		g->n++;
		return;
	}
	snprintf(g->kind[g->n], sizeof g->kind[g->n], "%s", kind ? kind : "");
	g->lo[g->n] = lo;
	g->hi[g->n] = hi;
	g->zone[g->n] = zone;
	g->n++;
}

/* Walk any JSON in document order, calling `visit` on every object. */
static void walk(json_object *o, got *g, void (*visit)(json_object *, got *))
{
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			walk(json_object_array_get_idx(o, i), g, visit);
	} else if (json_object_is_type(o, json_type_object)) {
		visit(o, g);
		json_object_object_foreach(o, k, v) {
			(void)k;
			walk(v, g, visit);
		}
	}
}

/* A Wahoo interval: its first target (the primary), as % (fractions * 100). */
static void wahoo_visit(json_object *o, got *g)
{
	json_object *t;
	if (str(o, "exit_trigger_type") && json_object_object_get_ex(o, "targets", &t) &&
	    json_object_array_length(t) > 0) {
		json_object *p = json_object_array_get_idx(t, 0);
		add(g, str(p, "type"), num(p, "low") * 100, num(p, "high") * 100, 0);
	}
}

/* A Garmin step: a power range in %, or an HR zone number. */
static void garmin_visit(json_object *o, got *g)
{
	const char *type = str(o, "targetType");
	double zone = num(o, "targetValue");
	if (type && str(o, "durationType"))
		add(g, type, num(o, "targetValueLow"), num(o, "targetValueHigh"),
		    isnan(zone) ? 0 : (int)zone);
}

/* A TrainingPeaks step: IntensityTarget's unit and range. */
static void tp_visit(json_object *o, got *g)
{
	json_object *it;
	const char *type = str(o, "Type");
	if (type && !strcmp(type, "Step") && json_object_object_get_ex(o, "IntensityTarget", &it))
		add(g, str(it, "Unit"), num(it, "MinValue"), num(it, "MaxValue"), 0);
}

/* ------------------------------------------------------------ running */

static wsync_testhost *load(const char *so, recorder *r)
{
	char err[1024];
	wsync_testhost *th = wsync_testhost_load(so,
	        "[provider]\nbase_url = https://provider.invalid\n", err, sizeof err);
	if (!th) {
		fprintf(stderr, "FAIL: cannot load %s: %s\n", so, err);
		exit(1);
	}
	wsync_testhost_set_responder(th, respond, r);
	return th;
}

static const wsync_workout_entity *workout(wsync_testhost *th)
{
	char err[512];
	const wsync_workout_entity *w = wsync_testhost_workout(th,
	        &(wsync_workout_entity){.name = "Zones", .sport = "bike",
	                                .workout_text = WORKOUT_TEXT},
	        err, sizeof err);
	if (!w) {
		fprintf(stderr, "FAIL: workout text refused: %s\n", err);
		exit(1);
	}
	return w;
}

/* sync_workout through `so`; the recorded body, decoded by `decode`. */
static void run_workout(const char *so, const char *name, int is_wahoo, got *g)
{
	recorder r = {0};
	wsync_testhost *th = load(so, &r);
	int32_t st = wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                                 &(wsync_testhost_request){.workout = workout(th)});
	CHECK(st == WSYNC_OK, "%s: sync_workout returned %d (%s)", name, st,
	      wsync_testhost_result(th)->message);
	CHECK(r.writes == 1, "%s: %d writes, expected one POST", name, r.writes);
	if (r.body) {
		json_object *doc = is_wahoo ? wahoo_plan(&r) : json_tokener_parse(r.body);
		CHECK(doc, "%s: body does not decode: %.200s", name, r.body);
		walk(doc, g, is_wahoo ? wahoo_visit : garmin_visit);
		json_object_put(doc);
	}
	free(r.body);
	wsync_testhost_free(th);
}

/* TrainingPeaks has no workout library: the structure goes with the
 * scheduled workout (a fixed clock keeps the date inside its window). */
static void run_tp(const char *so, got *g)
{
	char err[512];
	recorder r = {0};
	wsync_testhost *th = load(so, &r);
	const wsync_workout_entity *w = workout(th);
	const wsync_scheduled_entity *s = wsync_testhost_scheduled(th,
	        &(wsync_scheduled_entity){.scheduled_date = "2026-03-10"}, w, err, sizeof err);
	json_object *doc, *structure = NULL, *sv;
	int32_t st;
	CHECK(s, "scheduled entity: %s", err);
	st = wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	                         &(wsync_testhost_request){.workout = w, .scheduled = s});
	CHECK(st == WSYNC_OK, "trainingpeaks: sync_scheduled_workout returned %d (%s)", st,
	      wsync_testhost_result(th)->message);
	doc = r.body ? json_tokener_parse(r.body) : NULL;
	CHECK(doc, "trainingpeaks: no JSON body written");
	if (doc && json_object_object_get_ex(doc, "Structure", &sv))
		structure = json_tokener_parse(json_object_get_string(sv));
	CHECK(structure, "trainingpeaks: no parsable Structure in %.200s", r.body ? r.body : "");
	if (structure)
		walk(structure, g, tp_visit);
	json_object_put(structure);
	json_object_put(doc);
	free(r.body);
	wsync_testhost_free(th);
}

static int near(double a, double b)
{
	return fabs(a - b) < 1e-6;
}

static void check_power(const char *name, const got *g, const char *kind)
{
	CHECK(g->n == N_STEPS, "%s: %d steps with a target, expected %d", name, g->n, N_STEPS);
	for (int i = 0; i < N_STEPS && i < g->n; i++) {
		if (i == HR_STEP)
			continue;
		CHECK(!strcmp(g->kind[i], kind), "%s step %d: target kind '%s', expected '%s'",
		      name, i + 1, g->kind[i], kind);
		CHECK(near(g->lo[i], expect[i][0]) && near(g->hi[i], expect[i][1]),
		      "%s step %d: %g-%g %% FTP, expected %g-%g", name, i + 1, g->lo[i], g->hi[i],
		      expect[i][0], expect[i][1]);
	}
}

int main(int argc, char **argv)
{
	got wahoo = {0}, garmin = {0}, tp = {0};
	if (argc != 4) {
		fprintf(stderr, "usage: %s WAHOO_SO GARMIN_SO TRAININGPEAKS_SO\n", argv[0]);
		return 2;
	}
	wsync_testhost_set_clock(1772236800); /* 2026-02-28T00:00:00Z */
	run_workout(argv[1], "wahoo", 1, &wahoo);
	run_workout(argv[2], "garmin", 0, &garmin);
	run_tp(argv[3], &tp);

	check_power("wahoo", &wahoo, "ftp");
	check_power("garmin", &garmin, "POWER");
	check_power("trainingpeaks", &tp, "PercentOfFtp");

	/* Z3 HR: % threshold HR on Wahoo and TrainingPeaks, alike. */
	if (wahoo.n > HR_STEP && tp.n > HR_STEP) {
		CHECK(!strcmp(wahoo.kind[HR_STEP], "threshold_hr"), "wahoo HR step: '%s'",
		      wahoo.kind[HR_STEP]);
		CHECK(!strcmp(tp.kind[HR_STEP], "PercentOfThresholdHr"), "tp HR step: '%s'",
		      tp.kind[HR_STEP]);
		CHECK(near(wahoo.lo[HR_STEP], expect[HR_STEP][0]) &&
		      near(wahoo.hi[HR_STEP], expect[HR_STEP][1]),
		      "wahoo Z3 HR: %g-%g %%, expected %g-%g", wahoo.lo[HR_STEP],
		      wahoo.hi[HR_STEP], expect[HR_STEP][0], expect[HR_STEP][1]);
		CHECK(near(wahoo.lo[HR_STEP], tp.lo[HR_STEP]) &&
		      near(wahoo.hi[HR_STEP], tp.hi[HR_STEP]),
		      "Z3 HR differs: wahoo %g-%g, trainingpeaks %g-%g", wahoo.lo[HR_STEP],
		      wahoo.hi[HR_STEP], tp.lo[HR_STEP], tp.hi[HR_STEP]);
	}
	/* Garmin, documented exception: the athlete's own zone 3. */
	if (garmin.n > HR_STEP)
		CHECK(!strcmp(garmin.kind[HR_STEP], "HEART_RATE") && garmin.zone[HR_STEP] == 3,
		      "garmin HR step: %s zone %d, expected HEART_RATE zone 3",
		      garmin.kind[HR_STEP], garmin.zone[HR_STEP]);

	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("zones: Z1..Z5, Z2-Z3 and Z3 HR agree on wahoo, garmin, trainingpeaks\n");
	return 0;
}
