/*
 * trainingpeaks.c -- wsync provider plugin for the TrainingPeaks Partner API.
 *
 * TrainingPeaks has no workout library and no separate scheduling call: a
 * planned workout is created on its date.  So:
 *
 *   sync_workout              -> WSYNC_NOT_APPLICABLE (nothing to do)
 *   delete_workout            -> WSYNC_NOT_APPLICABLE
 *   sync_scheduled_workout    -> create: POST /v2/workouts/plan
 *                                update: PUT  /v2/workouts/plan/{Id} with the
 *                                        FULL object (TrainingPeaks nulls every
 *                                        field a PUT leaves out)
 *   delete_scheduled_workout  -> DELETE /v2/workouts/id/{Id}
 *
 * The athlete id (AthleteId, required on every write) is read once per user
 * from GET /v1/athlete/profile and cached in the instance.  Dates outside
 * "7 days ago .. 1 year ahead" are refused before anything is sent.  Every
 * request carries the User-Agent TrainingPeaks requires, <client_id>/<version>.
 *
 * README.md next to this file describes the mapping and the decisions taken
 * where the provider's documentation is unsure.
 */
#define _POSIX_C_SOURCE 200809L

#include <wsync/plugin.h>

#include <json-c/json.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TP_VERSION "1.0.0"
#define TP_UA_MAX 256
#define TP_BUCKETS 256

/* ---------------------------------------------------------------------------
 * Instance state
 */

enum { ATHLETE_ABSENT = 0, ATHLETE_FETCHING = 1, ATHLETE_READY = 2 };

typedef struct athlete {
	struct athlete *next;
	int state;            /* ATHLETE_* */
	long long id;         /* valid when READY */
	char user_id[];       /* wsync user id */
} athlete;

typedef struct tp {
	const wsync_host *host;
	const wsync_instance *inst;
	char user_agent[TP_UA_MAX];
	const char *default_type;     /* host-owned */
	pthread_mutex_t lock;         /* guards buckets and every athlete entry */
	pthread_cond_t fetched;       /* a FETCHING entry changed state */
	athlete *buckets[TP_BUCKETS];
} tp;

static const char *const WORKOUT_TYPES[] = {
	"swim", "bike", "run", "x-train", "mtb", "strength", "xc-ski", "rowing", "walk",
	"other", NULL,
};

static const wsync_config_key keys[] = {
	{"trainingpeaks", "user_agent", WSYNC_CONFIG_STRING, 0, NULL,
	 "User-Agent sent to TrainingPeaks (<client_id>/<version>); default: "
	 "[oauth] client_id + '/' + the plugin version"},
	{"trainingpeaks", "default_workout_type", WSYNC_CONFIG_STRING, 0, "other",
	 "WorkoutType for a sport wsync cannot map (swim, bike, run, x-train, mtb, "
	 "strength, xc-ski, rowing, walk, other)"},
};

static int in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

/* "<product>/<version>": a token without spaces, '/', then a letter or digit,
 * and nothing a header cannot carry. */
static int user_agent_ok(const char *ua)
{
	const char *slash = strchr(ua, '/');
	if (!slash || slash == ua || !isalnum((unsigned char)slash[1]))
		return 0;
	for (const char *p = ua; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
		if (p < slash && *p == ' ')
			return 0;
	}
	return 1;
}

static int32_t tp_init(const wsync_host *host, const wsync_instance *inst, void **state)
{
	tp *t;
	const char *ua, *client_id;

	t = calloc(1, sizeof *t);
	if (!t)
		return WSYNC_E_UNEXPECTED;
	t->host = host;
	t->inst = inst;
	ua = host->config_get_string(inst, "trainingpeaks", "user_agent");
	client_id = host->config_get_string(inst, "oauth", "client_id");
	if (ua && *ua) {
		snprintf(t->user_agent, sizeof t->user_agent, "%s", ua);
	} else if (client_id && *client_id) {
		snprintf(t->user_agent, sizeof t->user_agent, "%s/%s", client_id, TP_VERSION);
	} else {
		snprintf(t->user_agent, sizeof t->user_agent, "wsync-trainingpeaks/%s",
		         TP_VERSION);
		host->log(inst, WSYNC_LOG_WARNING,
		          "no [oauth] client_id and no [trainingpeaks] user_agent: sending "
		          "User-Agent %s; TrainingPeaks expects <client_id>/<version>",
		          t->user_agent);
	}
	if (!user_agent_ok(t->user_agent)) {
		host->log(inst, WSYNC_LOG_ERROR,
		          "[trainingpeaks] user_agent = '%s': expected <client_id>/<version>, "
		          "e.g. myapp/1.0", t->user_agent);
		free(t);
		return WSYNC_E_INVALID;
	}
	t->default_type = host->config_get_string(inst, "trainingpeaks", "default_workout_type");
	if (!t->default_type || !in_list(t->default_type, WORKOUT_TYPES)) {
		host->log(inst, WSYNC_LOG_ERROR,
		          "[trainingpeaks] default_workout_type = '%s': expected one of swim, "
		          "bike, run, x-train, mtb, strength, xc-ski, rowing, walk, other",
		          t->default_type ? t->default_type : "");
		free(t);
		return WSYNC_E_INVALID;
	}
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return WSYNC_E_UNEXPECTED;
	}
	if (pthread_cond_init(&t->fetched, NULL) != 0) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return WSYNC_E_UNEXPECTED;
	}
	host->log(inst, WSYNC_LOG_DEBUG, "TrainingPeaks plugin %s, User-Agent %s", TP_VERSION,
	          t->user_agent);
	*state = t;
	return WSYNC_OK;
}

static void tp_destroy(void *state)
{
	tp *t = state;
	if (!t)
		return;
	for (size_t b = 0; b < TP_BUCKETS; b++) {
		athlete *a = t->buckets[b], *next;
		for (; a; a = next) {
			next = a->next;
			free(a);
		}
	}
	pthread_cond_destroy(&t->fetched);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* ---------------------------------------------------------------------------
 * HTTP helpers
 */

static int32_t tp_http(tp *t, wsync_call *call, const char *method, const char *path,
                       const char *body, wsync_http_response *resp)
{
	/* An explicit User-Agent header replaces the core's default (libcurl uses
	 * a caller's header instead of the one it would generate). */
	const wsync_http_header headers[] = {
		{"User-Agent", t->user_agent},
		{"Accept", "application/json"},
	};
	wsync_http_request req = {
		.struct_size = sizeof req,
		.auth = 1,
		.method = method,
		.path = path,
		.content_type = body ? "application/json" : NULL,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.headers = headers,
		.n_headers = sizeof headers / sizeof headers[0],
	};
	memset(resp, 0, sizeof *resp);
	resp->struct_size = sizeof *resp;
	return t->host->http(call, &req, resp);
}

/* A JSON number (or a string of digits) as a positive long long. */
static int json_id(json_object *v, long long *out)
{
	long long x;
	char *end;
	const char *s;
	if (!v)
		return -1;
	if (json_object_is_type(v, json_type_int)) {
		errno = 0;
		x = (long long)json_object_get_int64(v);
		if (errno || x <= 0)
			return -1;
		*out = x;
		return 0;
	}
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);
		if (!(d >= 1 && d < 9.0e18) || floor(d) != d)
			return -1;
		*out = (long long)d;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end || x <= 0)
		return -1;
	*out = x;
	return 0;
}

/* The "Id" of a JSON object answer. */
static int answer_id(const wsync_http_response *resp, long long *out)
{
	json_object *o, *v;
	int rc = -1;
	if (!resp->body || !resp->body_len)
		return -1;
	o = json_tokener_parse(resp->body);
	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "Id", &v))
		rc = json_id(v, out);
	json_object_put(o);
	return rc;
}

/* ---------------------------------------------------------------------------
 * Athlete id: read once per user, cached.  Concurrent first calls for one
 * user wait for the one fetch in flight instead of fetching again.
 */

static size_t bucket_of(const char *user_id)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)user_id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % TP_BUCKETS;
}

/* Caller holds t->lock.  NULL only when out of memory. */
static athlete *athlete_entry(tp *t, const char *user_id)
{
	size_t b = bucket_of(user_id), len = strlen(user_id);
	athlete *a;
	for (a = t->buckets[b]; a; a = a->next)
		if (!strcmp(a->user_id, user_id))
			return a;
	a = calloc(1, sizeof *a + len + 1);
	if (!a)
		return NULL;
	memcpy(a->user_id, user_id, len + 1);
	a->next = t->buckets[b];
	t->buckets[b] = a;
	return a;
}

static int32_t fetch_profile(tp *t, wsync_call *call, long long *id)
{
	wsync_http_response resp;
	int32_t st = tp_http(t, call, "GET", "/v1/athlete/profile", NULL, &resp);
	if (st != WSYNC_OK)
		return st;
	if (answer_id(&resp, id) < 0)
		return t->host->set_error(call, WSYNC_E_PROVIDER, 0,
		                          "GET /v1/athlete/profile: answer without a usable "
		                          "\"Id\" (%.200s)", resp.body ? resp.body : "");
	return WSYNC_OK;
}

/*
 * The user's athlete id.  *cached = 1 when it came from the cache (read in an
 * earlier call), 0 when this call fetched it.
 */
static int32_t athlete_id(tp *t, wsync_call *call, const char *user_id, long long *id,
                          int *cached)
{
	athlete *a;
	int32_t st;
	long long got = 0;

	pthread_mutex_lock(&t->lock);
	a = athlete_entry(t, user_id);
	if (!a) {
		pthread_mutex_unlock(&t->lock);
		return t->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	}
	while (a->state == ATHLETE_FETCHING)
		pthread_cond_wait(&t->fetched, &t->lock);
	if (a->state == ATHLETE_READY) {
		*id = a->id;
		*cached = 1;
		pthread_mutex_unlock(&t->lock);
		return WSYNC_OK;
	}
	a->state = ATHLETE_FETCHING;
	pthread_mutex_unlock(&t->lock);

	st = fetch_profile(t, call, &got);

	pthread_mutex_lock(&t->lock);
	if (st == WSYNC_OK) {
		a->id = got;
		a->state = ATHLETE_READY;
	} else {
		a->state = ATHLETE_ABSENT;
	}
	pthread_cond_broadcast(&t->fetched);
	pthread_mutex_unlock(&t->lock);
	if (st == WSYNC_OK) {
		t->host->log(t->inst, WSYNC_LOG_DEBUG, "user %s is TrainingPeaks athlete %lld",
		             user_id, got);
		*id = got;
		*cached = 0;
	}
	return st;
}

/* Forget a cached id (the user may have connected another TrainingPeaks
 * account), unless another call already replaced it. */
static void athlete_forget(tp *t, const char *user_id, long long id)
{
	athlete *a;
	pthread_mutex_lock(&t->lock);
	a = athlete_entry(t, user_id);
	if (a && a->state == ATHLETE_READY && a->id == id)
		a->state = ATHLETE_ABSENT;
	pthread_mutex_unlock(&t->lock);
}

/* ---------------------------------------------------------------------------
 * Dates
 */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long days_from_civil(long y, long m, long d)
{
	long era, yoe, doy, doe;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, int *y, int *m, int *d)
{
	long era, doe, yoe, doy, mp;
	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int leap(long y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DD" (anything after the 10th character is ignored). */
static int parse_date(const char *s, long *days)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	long y, m, d;
	if (!s || strlen(s) < 10)
		return -1;
	for (int i = 0; i < 10; i++)
		if ((i == 4 || i == 7) ? s[i] != '-' : !isdigit((unsigned char)s[i]))
			return -1;
	y = strtol(s, NULL, 10);
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap(y)))
		return -1;
	*days = days_from_civil(y, m, d);
	return 0;
}

static void fmt_date(long days, char *buf, size_t n)
{
	int y, m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, n, "%04d-%02d-%02d", y, m, d);
}

/* TrainingPeaks' day window: 7 days before today (UTC) .. the same day one
 * year later (Feb 29 -> Feb 28). */
static void day_window(int64_t now, long *lo, long *hi)
{
	long today = (long)(now >= 0 ? now / 86400 : (now - 86399) / 86400);
	int y, m, d;
	civil_from_days(today, &y, &m, &d);
	if (m == 2 && d == 29)
		d = 28;
	*lo = today - 7;
	*hi = days_from_civil(y + 1, m, d);
}

/* ---------------------------------------------------------------------------
 * JSON helpers
 */

/* A number as a JSON integer when whole, else with at most 4 decimals
 * (json-c would print 17 significant digits). */
static json_object *jnum(double v)
{
	char buf[64];
	if (!isfinite(v) || fabs(v) >= 9.0e15)
		v = 0;
	v = round(v * 10000.0) / 10000.0;
	if (floor(v) == v)
		return json_object_new_int64((int64_t)v);
	snprintf(buf, sizeof buf, "%.4f", v);
	/* drop trailing zeros: 62.5000 -> 62.5 */
	for (size_t n = strlen(buf); n > 0 && buf[n - 1] == '0'; n--)
		buf[n - 1] = '\0';
	return json_object_new_double_s(v, buf);
}

static void add_str(json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

/* ---------------------------------------------------------------------------
 * Structure: the workout model -> TrainingPeaks' Structure (PascalCase,
 * Partner API), serialized into a string.
 */

/* Zone tables used when the workout text names a zone (TrainingPeaks has no
 * zone unit in the Partner structure).  Low/high per zone, in percent. */
static const double POWER_ZONES[7][2] = { /* % FTP (Coggan) */
	{40, 55}, {56, 75}, {76, 90}, {91, 105}, {106, 120}, {121, 150}, {151, 200},
};
static const double HR_ZONES[5][2] = { /* % threshold HR (Friel) */
	{65, 84}, {85, 89}, {90, 94}, {95, 99}, {100, 106},
};
static const double PACE_ZONES[7][2] = { /* % threshold speed */
	{60, 77}, {78, 87}, {88, 94}, {95, 100}, {101, 103}, {104, 111}, {112, 130},
};

typedef struct target {
	const char *unit;   /* TrainingPeaks IntensityTarget unit, NULL = none */
	double lo, hi;
	char note[96];      /* shown in the step name: a ramp, or a target
	                       TrainingPeaks cannot carry (watts, absolute pace) */
} target;

static double zone_edge(const double (*tab)[2], int n, double zone, int hi)
{
	int z = (int)lround(zone);
	if (z < 1)
		z = 1;
	if (z > n)
		z = n;
	return tab[z - 1][hi];
}

static void fmt_pace(double s_per_km, char *buf, size_t n)
{
	int s = s_per_km > 0 && s_per_km < 360000 ? (int)lround(s_per_km) : 0;
	snprintf(buf, n, "%d:%02d", s / 60, s % 60);
}

static void map_target(const wsync_step *s, target *t)
{
	double lo = s->target_low, hi = s->target_high;
	const char *suffix = "%";
	int zone = 0;
	memset(t, 0, sizeof *t);
	if (lo > hi) { /* a ramp down keeps its order only in the note */
		double x = lo;
		lo = hi;
		hi = x;
	}
	switch (s->target_kind) {
	case WSYNC_TARGET_PERCENT_FTP:
		t->unit = "PercentOfFtp";
		break;
	case WSYNC_TARGET_POWER_ZONE:
		t->unit = "PercentOfFtp";
		lo = zone_edge(POWER_ZONES, 7, lo, 0);
		hi = zone_edge(POWER_ZONES, 7, hi, 1);
		zone = 1;
		break;
	case WSYNC_TARGET_PERCENT_MAX_HR:
		t->unit = "PercentOfMaxHr";
		suffix = "% HR";
		break;
	case WSYNC_TARGET_PERCENT_LTHR:
		t->unit = "PercentOfThresholdHr";
		suffix = "% LTHR";
		break;
	case WSYNC_TARGET_HR_ZONE:
		t->unit = "PercentOfThresholdHr";
		lo = zone_edge(HR_ZONES, 5, lo, 0);
		hi = zone_edge(HR_ZONES, 5, hi, 1);
		suffix = "% LTHR";
		zone = 1;
		break;
	case WSYNC_TARGET_PERCENT_PACE:
		t->unit = "PercentOfThresholdSpeed";
		suffix = "% pace";
		break;
	case WSYNC_TARGET_PACE_ZONE:
		t->unit = "PercentOfThresholdSpeed";
		lo = zone_edge(PACE_ZONES, 7, lo, 0);
		hi = zone_edge(PACE_ZONES, 7, hi, 1);
		suffix = "% pace";
		zone = 1;
		break;
	case WSYNC_TARGET_WATTS:
		/* No absolute-power unit in the Partner structure: keep it visible
		 * in the step name. */
		if (lo == hi)
			snprintf(t->note, sizeof t->note, "%.0f W", lo);
		else
			snprintf(t->note, sizeof t->note, "%.0f-%.0f W", lo, hi);
		return;
	case WSYNC_TARGET_PACE: {
		char a[32], b[32];
		fmt_pace(lo, a, sizeof a);
		fmt_pace(hi, b, sizeof b);
		if (lo == hi)
			snprintf(t->note, sizeof t->note, "%s/km", a);
		else
			snprintf(t->note, sizeof t->note, "%s-%s/km", a, b);
		return;
	}
	default: /* none, freeride */
		return;
	}
	t->lo = lo;
	t->hi = hi;
	if (s->ramp && zone)
		snprintf(t->note, sizeof t->note, "ramp Z%g-Z%g", s->target_low, s->target_high);
	else if (s->ramp)
		snprintf(t->note, sizeof t->note, "ramp %g-%g%s", s->target_low, s->target_high,
		         suffix);
}

static const char *intensity_class(int32_t intensity)
{
	switch (intensity) {
	case WSYNC_INTENSITY_WARMUP: return "WarmUp";
	case WSYNC_INTENSITY_COOLDOWN: return "CoolDown";
	case WSYNC_INTENSITY_RECOVERY: return "Rest";
	default: return "Active";
	}
}

static json_object *length_obj(const char *unit, double value)
{
	json_object *l = json_object_new_object();
	json_object_object_add(l, "Unit", json_object_new_string(unit));
	json_object_object_add(l, "Value", json_object_new_int64((int64_t)llround(value)));
	return l;
}

static json_object *step_obj(const wsync_step *s, const char **primary)
{
	json_object *o = json_object_new_object();
	target t;
	char name[256];

	map_target(s, &t);
	json_object_object_add(o, "Type", json_object_new_string("Step"));
	json_object_object_add(o, "IntensityClass",
	                       json_object_new_string(intensity_class(s->intensity)));
	if (s->cue && *s->cue && t.note[0])
		snprintf(name, sizeof name, "%s (%s)", s->cue, t.note);
	else
		snprintf(name, sizeof name, "%s", s->cue && *s->cue ? s->cue : t.note);
	if (name[0])
		json_object_object_add(o, "Name", json_object_new_string(name));
	switch (s->length_kind) {
	case WSYNC_LENGTH_DISTANCE:
		json_object_object_add(o, "Length", length_obj("Meter", s->length));
		break;
	case WSYNC_LENGTH_OPEN:
		/* Length is required even for a lap-button step. */
		json_object_object_add(o, "Length", length_obj("Second", 0));
		json_object_object_add(o, "OpenDuration", json_object_new_boolean(1));
		break;
	default:
		json_object_object_add(o, "Length", length_obj("Second", s->length));
		break;
	}
	if (t.unit) {
		json_object *it = json_object_new_object();
		json_object_object_add(it, "Unit", json_object_new_string(t.unit));
		json_object_object_add(it, "Value", jnum((t.lo + t.hi) / 2.0));
		if (t.lo != t.hi) {
			json_object_object_add(it, "MinValue", jnum(t.lo));
			json_object_object_add(it, "MaxValue", jnum(t.hi));
		}
		json_object_object_add(o, "IntensityTarget", it);
		if (!*primary)
			*primary = t.unit;
	}
	if (s->cadence_low > 0 || s->cadence_high > 0) {
		double lo = s->cadence_low, hi = s->cadence_high;
		json_object *ct = json_object_new_object();
		if (hi < lo)
			hi = lo;
		json_object_object_add(ct, "Unit", json_object_new_string("rpm"));
		json_object_object_add(ct, "MinValue", jnum(lo));
		json_object_object_add(ct, "MaxValue", jnum(hi));
		json_object_object_add(o, "CadenceTarget", ct);
	}
	return o;
}

/* The Structure string (malloc'ed), or NULL for a workout without steps.
 * *err set on failure. */
static char *structure_string(const wsync_workout *w, int *err)
{
	json_object *root, *steps;
	const char *primary = NULL;
	char *out;

	*err = 0;
	if (!w || !w->n_steps || !w->steps)
		return NULL;
	root = json_object_new_object();
	steps = json_object_new_array();
	for (uint32_t i = 0; i < w->n_steps; i = wsync_step_next(w, i)) {
		const wsync_step *s = wsync_workout_step(w, i);
		if (s->kind == WSYNC_STEP_REPEAT) {
			json_object *r = json_object_new_object(), *kids = json_object_new_array();
			uint32_t end = i + 1 + s->child_count;
			if (end > w->n_steps)
				end = w->n_steps;
			json_object_object_add(r, "Type", json_object_new_string("Repetition"));
			json_object_object_add(r, "IntensityClass",
			                       json_object_new_string(intensity_class(s->intensity)));
			json_object_object_add(r, "Length", length_obj("Repetition",
			                                               s->repeat_count ? s->repeat_count : 1));
			for (uint32_t c = i + 1; c < end; c++)
				json_object_array_add(kids, step_obj(wsync_workout_step(w, c), &primary));
			json_object_object_add(r, "Steps", kids);
			json_object_array_add(steps, r);
		} else {
			json_object_array_add(steps, step_obj(s, &primary));
		}
	}
	json_object_object_add(root, "Structure", steps);
	if (primary)
		json_object_object_add(root, "PrimaryIntensityMetric",
		                       json_object_new_string(primary));
	out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
	                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	if (!out)
		*err = 1;
	return out;
}

/* ---------------------------------------------------------------------------
 * Sport -> WorkoutType
 */

static const struct {
	const char *sport;   /* normalized: lowercase, no ' ', '-', '_' */
	const char *type;
} SPORTS[] = {
	{"bike", "bike"}, {"cycling", "bike"}, {"cycle", "bike"}, {"ride", "bike"},
	{"biking", "bike"}, {"virtualride", "bike"}, {"roadbike", "bike"},
	{"indoorcycling", "bike"}, {"gravel", "bike"}, {"gravelride", "bike"},
	{"mtb", "mtb"}, {"mountainbike", "mtb"}, {"mountainbiking", "mtb"},
	{"run", "run"}, {"running", "run"}, {"trailrun", "run"}, {"trailrunning", "run"},
	{"virtualrun", "run"}, {"treadmill", "run"},
	{"swim", "swim"}, {"swimming", "swim"}, {"openwaterswim", "swim"},
	{"strength", "strength"}, {"weights", "strength"}, {"weighttraining", "strength"},
	{"gym", "strength"},
	{"xtrain", "x-train"}, {"crosstrain", "x-train"}, {"crosstraining", "x-train"},
	{"xcski", "xc-ski"}, {"nordicski", "xc-ski"}, {"crosscountryskiing", "xc-ski"},
	{"skiing", "xc-ski"},
	{"row", "rowing"}, {"rowing", "rowing"}, {"virtualrow", "rowing"},
	{"walk", "walk"}, {"walking", "walk"}, {"hike", "walk"}, {"hiking", "walk"},
	{"other", "other"},
};

static const char *workout_type(const tp *t, const char *sport)
{
	char norm[64];
	size_t n = 0;
	if (!sport)
		return t->default_type;
	for (const char *p = sport; *p && n + 1 < sizeof norm; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == ' ' || c == '-' || c == '_')
			continue;
		norm[n++] = (char)tolower(c);
	}
	norm[n] = '\0';
	for (size_t i = 0; i < sizeof SPORTS / sizeof SPORTS[0]; i++)
		if (!strcmp(norm, SPORTS[i].sport))
			return SPORTS[i].type;
	return t->default_type;
}

/* ---------------------------------------------------------------------------
 * Operations
 */

static int32_t tp_sync_workout(void *state, wsync_call *call, const wsync_request *req)
{
	tp *t = state;
	(void)call;
	t->host->log(t->inst, WSYNC_LOG_DEBUG,
	             "workout %s: TrainingPeaks has no workout library; its scheduled "
	             "workouts carry the structure", req->workout ? req->workout->id : "?");
	return WSYNC_NOT_APPLICABLE;
}

static int32_t tp_delete_workout(void *state, wsync_call *call, const wsync_request *req)
{
	tp *t = state;
	(void)call;
	t->host->log(t->inst, WSYNC_LOG_DEBUG,
	             "workout %s: nothing to delete on TrainingPeaks (no workout library)",
	             req->workout_provider_id ? req->workout_provider_id : "?");
	return WSYNC_NOT_APPLICABLE;
}

/* The planned-workout object: every field wsync manages, so that a PUT (a
 * full replace) never nulls one of them.  id > 0 adds "Id" (update). */
static json_object *plan_object(tp *t, const wsync_request *req, long long athlete_id,
                                long long id, const char *structure)
{
	const wsync_workout_entity *w = req->workout;
	const wsync_scheduled_entity *s = req->scheduled;
	const wsync_workout *st = w->structure;
	json_object *o = json_object_new_object();
	char buf[64];

	if (id > 0)
		json_object_object_add(o, "Id", json_object_new_int64(id));
	json_object_object_add(o, "AthleteId", json_object_new_int64(athlete_id));
	snprintf(buf, sizeof buf, "%.10sT00:00:00", s->scheduled_date);
	json_object_object_add(o, "WorkoutDay", json_object_new_string(buf));
	json_object_object_add(o, "WorkoutType", json_object_new_string(workout_type(t, w->sport)));
	add_str(o, "Title", w->name);
	add_str(o, "Description", w->description);
	if (s->scheduled_time && strlen(s->scheduled_time) >= 8) {
		snprintf(buf, sizeof buf, "%.10sT%.8s", s->scheduled_date, s->scheduled_time);
		json_object_object_add(o, "StartTimePlanned", json_object_new_string(buf));
	}
	if (st && st->total_seconds > 0)
		json_object_object_add(o, "TotalTimePlanned", jnum(st->total_seconds / 3600.0));
	if (st && st->total_metres > 0)
		json_object_object_add(o, "DistancePlanned", jnum(st->total_metres));
	if (structure)
		json_object_object_add(o, "Structure", json_object_new_string(structure));
	return o;
}

/*
 * Whether a create must first look for what an earlier attempt may have made
 * (plugin.h, EXACTLY ONCE): the host's `reconcile` (ABI 1.1), or any attempt
 * after the first (a 1.0 host has no `reconcile`; a lookup is cheap).
 */
static int must_reconcile(const wsync_request *req)
{
	if (req->attempt > 1)
		return 1;
	return WSYNC_HAS(req, reconcile) && req->reconcile;
}

static int same_text(json_object *v, const char *want)
{
	const char *have = v && json_object_is_type(v, json_type_string)
	                 ? json_object_get_string(v) : NULL;
	if (!want || !*want)
		return !have || !*have;
	return have && !strcmp(have, want);
}

/*
 * Reconcile a create.  TrainingPeaks has no external id; the one lookup is
 * GET /v2/workouts/{day}/{day}, matched on the day, the title and the
 * workout type (what third-party clients match on).  1 found (*id), 0
 * certainly none, or a status < 0 meaning "stop: return -status" (the
 * lookup failed: creating now could duplicate).
 */
static int find_planned(tp *t, wsync_call *call, const wsync_request *req, long long *id)
{
	const wsync_scheduled_entity *s = req->scheduled;
	const char *type = workout_type(t, req->workout->sport);
	wsync_http_response resp;
	json_object *arr;
	char path[96];
	size_t i, n, found = 0;
	int32_t st;

	snprintf(path, sizeof path, "/v2/workouts/%.10s/%.10s", s->scheduled_date,
	         s->scheduled_date);
	st = tp_http(t, call, "GET", path, NULL, &resp);
	if (st != WSYNC_OK && st != WSYNC_E_NOT_FOUND)
		return -st; /* the host recorded why */
	arr = st == WSYNC_OK && resp.body ? json_tokener_parse(resp.body) : NULL;
	if (!arr || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return -t->host->set_error(call, WSYNC_E_PROVIDER, 0,
		                           "HTTP %d from GET %s: not the documented list of "
		                           "workouts; not creating blindly (it may exist already)",
		                           (int)resp.http_status, path);
	}
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		long long x;
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, "WorkoutDay", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    strncmp(json_object_get_string(v), s->scheduled_date, 10) ||
		    !json_object_object_get_ex(o, "Title", &v) || !same_text(v, req->workout->name) ||
		    !json_object_object_get_ex(o, "WorkoutType", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    strcasecmp(json_object_get_string(v), type) ||
		    !json_object_object_get_ex(o, "Id", &v) || json_id(v, &x) < 0)
			continue;
		if (json_object_object_get_ex(o, "Completed", &v) && json_object_get_boolean(v))
			continue; /* a done workout is not the plan we sent */
		if (found++ == 0)
			*id = x;
	}
	json_object_put(arr);
	if (found > 1)
		t->host->log(t->inst, WSYNC_LOG_WARNING, "%zu TrainingPeaks workouts titled '%s' on "
		             "%.10s: adopting %lld", found, req->workout->name ? req->workout->name
		             : "", s->scheduled_date, *id);
	return found ? 1 : 0;
}

static int32_t tp_sync_scheduled(void *state, wsync_call *call, const wsync_request *req)
{
	tp *t = state;
	const wsync_scheduled_entity *s = req->scheduled;
	long day, lo, hi;
	long long athlete = 0, id = 0;
	int cached = 0, err = 0, update = req->operation == WSYNC_OP_UPDATE;
	char path[96], a[16], b[16];
	char *structure;
	int32_t st;

	if (!s || !req->workout || !s->scheduled_date)
		return t->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                          "scheduled workout without its workout or date");
	if (parse_date(s->scheduled_date, &day) < 0)
		return t->host->set_error(call, WSYNC_E_INVALID, 0,
		                          "scheduled_date '%.40s' is not YYYY-MM-DD",
		                          s->scheduled_date);
	day_window(req->now, &lo, &hi);
	if (day < lo || day > hi) {
		fmt_date(lo, a, sizeof a);
		fmt_date(hi, b, sizeof b);
		return t->host->set_error(call, WSYNC_E_INVALID, 0,
		                          "TrainingPeaks accepts planned workouts from 7 days ago "
		                          "to 1 year ahead (%s .. %s); %.10s is outside",
		                          a, b, s->scheduled_date);
	}
	if (update) {
		char *end;
		const char *pid = req->scheduled_provider_id;
		errno = 0;
		id = pid ? strtoll(pid, &end, 10) : 0;
		if (!pid || errno || end == pid || *end || id <= 0)
			return t->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
			                          "stored TrainingPeaks id '%.40s' is not a number",
			                          pid ? pid : "");
	}
	if (!update && must_reconcile(req)) {
		int r = find_planned(t, call, req, &id);
		if (r < 0)
			return (int32_t)-r;
		if (r == 1) {
			/* adopt it, and make it what we would have created (PUT is a
			 * full replace) */
			t->host->log(t->inst, WSYNC_LOG_INFO, "scheduled workout %s: TrainingPeaks "
			             "workout %lld on %.10s matches (an earlier attempt reached "
			             "TrainingPeaks): adopting and updating it", s->id, id,
			             s->scheduled_date);
			snprintf(path, sizeof path, "%lld", id);
			t->host->set_provider_id(call, path);
			update = 1;
		}
	}
	structure = structure_string(req->workout->structure, &err);
	if (err)
		return t->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");

	if (update)
		snprintf(path, sizeof path, "/v2/workouts/plan/%lld", id);
	else
		snprintf(path, sizeof path, "/v2/workouts/plan");
	for (int pass = 0;; pass++) {
		wsync_http_response resp;
		json_object *o;
		st = athlete_id(t, call, req->user_id, &athlete, &cached);
		if (st != WSYNC_OK)
			break;
		o = plan_object(t, req, athlete, id, structure);
		st = tp_http(t, call, update ? "PUT" : "POST", path,
		             json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
		                                                JSON_C_TO_STRING_NOSLASHESCAPE),
		             &resp);
		json_object_put(o);
		if (st == WSYNC_E_AUTH && resp.http_status == 403 && cached && pass == 0) {
			/* A cached athlete id may belong to an account the user has
			 * since replaced: read the profile again and retry once. */
			long long old = athlete;
			athlete_forget(t, req->user_id, old);
			st = athlete_id(t, call, req->user_id, &athlete, &cached);
			if (st != WSYNC_OK) /* the profile read's own outcome */
				break;
			if (athlete != old)
				continue;
			st = t->host->set_error(call, WSYNC_E_AUTH, 0,
			                        "TrainingPeaks refused the write (403): basic "
			                        "athletes cannot have future planned workouts, or "
			                        "the token lacks the workouts:plan scope");
		}
		if (st == WSYNC_OK && !update) {
			long long new_id;
			if (answer_id(&resp, &new_id) < 0) {
				st = t->host->set_error(call, WSYNC_E_PROVIDER, 0,
				                        "HTTP %d from POST /v2/workouts/plan: answer "
				                        "without a usable \"Id\" (%zu bytes); the workout "
				                        "may exist: the retry looks it up before creating",
				                        (int)resp.http_status, resp.body_len);
			} else {
				snprintf(path, sizeof path, "%lld", new_id);
				t->host->set_provider_id(call, path);
				t->host->log(t->inst, WSYNC_LOG_DEBUG,
				             "scheduled workout %s is TrainingPeaks workout %lld on %.10s",
				             s->id, new_id, s->scheduled_date);
			}
		}
		break;
	}
	free(structure);
	return st;
}

static int32_t tp_delete_scheduled(void *state, wsync_call *call, const wsync_request *req)
{
	tp *t = state;
	const char *pid = req->scheduled_provider_id;
	wsync_http_response resp;
	long long id;
	char *end, path[96];

	if (!pid)
		return WSYNC_NOT_APPLICABLE;
	errno = 0;
	id = strtoll(pid, &end, 10);
	if (errno || end == pid || *end || id <= 0)
		return t->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                          "stored TrainingPeaks id '%.40s' is not a number", pid);
	snprintf(path, sizeof path, "/v2/workouts/id/%lld", id);
	/* 404 = already gone: the host counts that as a successful delete. */
	return tp_http(t, call, "DELETE", path, NULL, &resp);
}

static const wsync_plugin descriptor = {
	.magic = WSYNC_PLUGIN_MAGIC,
	.abi_major = WSYNC_PLUGIN_ABI_MAJOR,
	.abi_minor = WSYNC_PLUGIN_ABI_MINOR,
	.struct_size = sizeof(wsync_plugin),
	.flags = 0,
	.name = "trainingpeaks",
	.version = TP_VERSION,
	.description = "TrainingPeaks Partner API: scheduled workouts as planned workouts",
	.config_keys = keys,
	.n_config_keys = sizeof keys / sizeof keys[0],
	.init = tp_init,
	.destroy = tp_destroy,
	.sync_workout = tp_sync_workout,
	.sync_scheduled_workout = tp_sync_scheduled,
	.delete_workout = tp_delete_workout,
	.delete_scheduled_workout = tp_delete_scheduled,
};

WSYNC_EXPORT const wsync_plugin *wsync_plugin_v1(void)
{
	return &descriptor;
}
