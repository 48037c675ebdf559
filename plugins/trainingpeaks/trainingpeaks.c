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

#include "trainingpeaks.h"

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

/* What init() reads and the operations share; the host and the instance
 * come with every request (req->host, req->instance). */
typedef struct tp {
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

static int32_t tp_http(const tp *t, const wsync_request *req, wsync_call *call,
                       const char *method, const char *path, const char *body,
                       wsync_http_response *resp)
{
	/* An explicit User-Agent header replaces the core's default (libcurl uses
	 * a caller's header instead of the one it would generate). */
	const wsync_http_header headers[] = {
		{"User-Agent", t->user_agent},
		{"Accept", "application/json"},
	};
	return wsync_http_send(req, call, method, path, "application/json", body, headers,
	                       sizeof headers / sizeof headers[0], resp);
}

/* An id -- a stored link, or a member read with the host's json_get (a
 * number as its decimal text) -- as a positive long long; 0 on success. */
static int id_text(const char *s, long long *out)
{
	long long x;
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end || x <= 0)
		return -1;
	*out = x;
	return 0;
}

/* The "Id" of a JSON object answer; 0 on success. */
static int answer_id(const wsync_request *req, wsync_call *call,
                     const wsync_http_response *resp, long long *out)
{
	if (req->host->json_length(call, resp->body, resp->body_len, "") < 0 ||
	    resp->body[strspn(resp->body, " \t\r\n")] != '{')
		return -1;
	return id_text(req->host->json_get(call, resp->body, resp->body_len, "Id"), out);
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

static int32_t fetch_profile(const tp *t, const wsync_request *req, wsync_call *call, long long *id)
{
	wsync_http_response resp;
	int32_t st = tp_http(t, req, call, "GET", "/v1/athlete/profile", NULL, &resp);
	if (st != WSYNC_OK)
		return st;
	if (answer_id(req, call, &resp, id) < 0)
		return req->host->set_error(call, WSYNC_E_PROVIDER, 0,
		                            "GET /v1/athlete/profile: answer without a usable "
		                            "\"Id\" (%s)",
		                            req->host->excerpt(call, resp.body, resp.body_len, 200));
	return WSYNC_OK;
}

/*
 * The user's athlete id.  *cached = 1 when it came from the cache (read in an
 * earlier call), 0 when this call fetched it.
 */
static int32_t athlete_id(tp *t, const wsync_request *req, wsync_call *call, long long *id,
                          int *cached)
{
	athlete *a;
	int32_t st;
	long long got = 0;

	pthread_mutex_lock(&t->lock);
	a = athlete_entry(t, req->user_id);
	if (!a) {
		pthread_mutex_unlock(&t->lock);
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
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

	st = fetch_profile(t, req, call, &got);

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
		req->host->log(req->instance, WSYNC_LOG_DEBUG, "user %s is TrainingPeaks athlete %lld",
		               req->user_id, got);
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
 * Operations
 */

static int32_t tp_sync_workout(void *state, wsync_call *call, const wsync_request *req)
{
	(void)state;
	(void)call;
	req->host->log(req->instance, WSYNC_LOG_DEBUG,
	               "workout %s: TrainingPeaks has no workout library; its scheduled "
	               "workouts carry the structure", req->workout ? req->workout->id : "?");
	return WSYNC_NOT_APPLICABLE;
}

static int32_t tp_delete_workout(void *state, wsync_call *call, const wsync_request *req)
{
	(void)state;
	(void)call;
	req->host->log(req->instance, WSYNC_LOG_DEBUG,
	               "workout %s: nothing to delete on TrainingPeaks (no workout library)",
	               req->workout_provider_id ? req->workout_provider_id : "?");
	return WSYNC_NOT_APPLICABLE;
}

static int same_text(const char *have, const char *want)
{
	if (!want || !*want)
		return !have || !*have;
	return have && !strcmp(have, want);
}

/* Member `name` of element i of the answer, read by the host. */
static const char *elem(const wsync_request *req, wsync_call *call,
                        const wsync_http_response *resp, int64_t i, const char *name)
{
	char at[64];
	snprintf(at, sizeof at, "%lld.%s", (long long)i, name);
	return req->host->json_get(call, resp->body, resp->body_len, at);
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
	const char *type = tp_workout_type(req->workout->sport, t->default_type);
	wsync_http_response resp;
	char path[96];
	int64_t i, n = -1, found = 0;
	int32_t st;

	snprintf(path, sizeof path, "/v2/workouts/%.10s/%.10s", s->scheduled_date,
	         s->scheduled_date);
	st = tp_http(t, req, call, "GET", path, NULL, &resp);
	if (st != WSYNC_OK && st != WSYNC_E_NOT_FOUND)
		return -st; /* the host recorded why */
	if (st == WSYNC_OK && resp.body && resp.body[strspn(resp.body, " \t\r\n")] == '[')
		n = req->host->json_length(call, resp.body, resp.body_len, "");
	if (n < 0)
		return -req->host->set_error(call, WSYNC_E_PROVIDER, 0,
		                             "HTTP %d from GET %s: not the documented list of "
		                             "workouts; not creating blindly (it may exist already)",
		                             (int)resp.http_status, path);
	for (i = 0; i < n; i++) {
		const char *day = elem(req, call, &resp, i, "WorkoutDay");
		const char *wt = elem(req, call, &resp, i, "WorkoutType");
		const char *done = elem(req, call, &resp, i, "Completed");
		long long x;
		if (!day || strncmp(day, s->scheduled_date, 10) ||
		    !same_text(elem(req, call, &resp, i, "Title"), req->workout->name) ||
		    !wt || strcasecmp(wt, type) || id_text(elem(req, call, &resp, i, "Id"), &x) < 0)
			continue;
		if (done && !strcmp(done, "true"))
			continue; /* a done workout is not the plan we sent */
		if (found++ == 0)
			*id = x;
	}
	if (found > 1)
		req->host->log(req->instance, WSYNC_LOG_WARNING, "%lld TrainingPeaks workouts titled '%s' on "
		               "%.10s: adopting %lld", (long long)found, req->workout->name
		               ? req->workout->name : "", s->scheduled_date, *id);
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
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                            "scheduled workout without its workout or date");
	if (parse_date(s->scheduled_date, &day) < 0)
		return req->host->set_error(call, WSYNC_E_INVALID, 0,
		                            "scheduled_date '%.40s' is not YYYY-MM-DD",
		                            s->scheduled_date);
	day_window(req->now, &lo, &hi);
	if (day < lo || day > hi) {
		fmt_date(lo, a, sizeof a);
		fmt_date(hi, b, sizeof b);
		return req->host->set_error(call, WSYNC_E_INVALID, 0,
		                            "TrainingPeaks accepts planned workouts from 7 days ago "
		                            "to 1 year ahead (%s .. %s); %.10s is outside",
		                            a, b, s->scheduled_date);
	}
	if (update) {
		const char *pid = req->scheduled_provider_id;
		if (id_text(pid, &id) < 0)
			return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
			                            "stored TrainingPeaks id '%.40s' is not a number",
			                            pid ? pid : "");
	}
	if (!update && wsync_must_reconcile(req)) {
		int r = find_planned(t, call, req, &id);
		if (r < 0)
			return (int32_t)-r;
		if (r == 1) {
			/* adopt it, and make it what we would have created (PUT is a
			 * full replace) */
			req->host->log(req->instance, WSYNC_LOG_INFO, "scheduled workout %s: TrainingPeaks "
			               "workout %lld on %.10s matches (an earlier attempt reached "
			               "TrainingPeaks): adopting and updating it", s->id, id,
			               s->scheduled_date);
			snprintf(path, sizeof path, "%lld", id);
			req->host->set_provider_id(call, path);
			update = 1;
		}
	}
	structure = tp_structure_string(req->workout->structure, &err);
	if (err)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");

	if (update)
		snprintf(path, sizeof path, "/v2/workouts/plan/%lld", id);
	else
		snprintf(path, sizeof path, "/v2/workouts/plan");
	for (int pass = 0;; pass++) {
		wsync_http_response resp;
		char *body;
		st = athlete_id(t, req, call, &athlete, &cached);
		if (st != WSYNC_OK)
			break;
		if (!(body = tp_plan_json(t->default_type, req, athlete, id, structure))) {
			st = req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
			break;
		}
		st = tp_http(t, req, call, update ? "PUT" : "POST", path, body, &resp);
		free(body);
		if (st == WSYNC_E_AUTH && resp.http_status == 403 && cached && pass == 0) {
			/* A cached athlete id may belong to an account the user has
			 * since replaced: read the profile again and retry once. */
			long long old = athlete;
			athlete_forget(t, req->user_id, old);
			st = athlete_id(t, req, call, &athlete, &cached);
			if (st != WSYNC_OK) /* the profile read's own outcome */
				break;
			if (athlete != old)
				continue;
			st = req->host->set_error(call, WSYNC_E_AUTH, 0,
			                          "TrainingPeaks refused the write (403): basic "
			                          "athletes cannot have future planned workouts, or "
			                          "the token lacks the workouts:plan scope");
		}
		if (st == WSYNC_OK && !update) {
			long long new_id;
			if (answer_id(req, call, &resp, &new_id) < 0) {
				st = req->host->set_error(call, WSYNC_E_PROVIDER, 0,
				                          "HTTP %d from POST /v2/workouts/plan: answer "
				                          "without a usable \"Id\" (%zu bytes); the workout "
				                          "may exist: the retry looks it up before creating",
				                          (int)resp.http_status, resp.body_len);
			} else {
				snprintf(path, sizeof path, "%lld", new_id);
				req->host->set_provider_id(call, path);
				req->host->log(req->instance, WSYNC_LOG_DEBUG,
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
	char path[96];

	if (!pid)
		return WSYNC_NOT_APPLICABLE;
	if (id_text(pid, &id) < 0)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                            "stored TrainingPeaks id '%.40s' is not a number", pid);
	snprintf(path, sizeof path, "/v2/workouts/id/%lld", id);
	/* 404 = already gone: the host counts that as a successful delete. */
	return tp_http(t, req, call, "DELETE", path, NULL, &resp);
}

WSYNC_PLUGIN_DESCRIPTOR(.name = "trainingpeaks", .version = TP_VERSION,
                        .description = "TrainingPeaks Partner API: scheduled workouts as "
                                       "planned workouts",
                        .config_keys = keys, .n_config_keys = sizeof keys / sizeof keys[0],
                        .init = tp_init, .destroy = tp_destroy, .sync_workout = tp_sync_workout,
                        .sync_scheduled_workout = tp_sync_scheduled,
                        .delete_workout = tp_delete_workout,
                        .delete_scheduled_workout = tp_delete_scheduled)
