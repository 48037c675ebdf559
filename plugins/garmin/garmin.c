/*
 * garmin.c -- wsync provider plugin for the Garmin Connect Training API V2.
 *
 *   workout           -> Training API workout
 *                        create  POST   /workoutportal/workout/v2
 *                        update  GET + PUT /training-api/workout/v2/{workoutId}
 *                        delete  DELETE /training-api/workout/v2/{workoutId}
 *   scheduled workout -> schedule
 *                        create  POST   /training-api/schedule/
 *                        update  PUT    /training-api/schedule/{scheduleId}
 *                        delete  DELETE /training-api/schedule/{scheduleId}
 *
 * Links: the workout's link is Garmin's workoutId, the scheduled workout's
 * its scheduleId, both as decimal text.  Garmin requires ownerId on a
 * workout update; it is read with a GET right before the PUT (which also
 * finds a workout deleted on Garmin's side: 404, and the core creates it
 * again).  See README.md for the mapping and every decision.
 */
#include "garmin.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_WORKOUT_CREATE "/workoutportal/workout/v2"
#define PATH_WORKOUT "/training-api/workout/v2/"
#define PATH_SCHEDULE "/training-api/schedule/"

static const wsync_config_key keys[] = {
	{"garmin", "provider_name", WSYNC_CONFIG_STRING, 0, "wsync",
	 "workoutProvider and workoutSourceId Garmin shows with each workout (1 to 20 characters)"},
	{"garmin", "default_sport", WSYNC_CONFIG_STRING, 0, "GENERIC",
	 "Training API sport for a workout whose sport is not recognised (RUNNING, CYCLING, "
	 "LAP_SWIMMING, STRENGTH_TRAINING, CARDIO_TRAINING, GENERIC, YOGA, PILATES)"},
	{"garmin", "active_intensity", WSYNC_CONFIG_STRING, 0, "INTERVAL",
	 "intensity sent for work steps: INTERVAL or ACTIVE"},
};

/* ------------------------------------------------------------- lifecycle */

static int valid_utf8_text(const char *s)
{
	return garmin_utf8_text(s, 247);
}

static int32_t init(const wsync_host *host, const wsync_instance *inst, void **state)
{
	garmin_cfg *cfg;
	const char *name = host->config_get_string(inst, "garmin", "provider_name");
	const char *sport = host->config_get_string(inst, "garmin", "default_sport");
	const char *act = host->config_get_string(inst, "garmin", "active_intensity");
	size_t chars;

	if (!name || !*name) {
		host->log(inst, WSYNC_LOG_ERROR, "[garmin] provider_name is empty: Garmin needs "
		          "1 to %d characters for workoutProvider and workoutSourceId",
		          GARMIN_PROVIDER_MAX);
		return WSYNC_E_INVALID;
	}
	chars = garmin_utf8_chars(name);
	if (chars > GARMIN_PROVIDER_MAX) {
		host->log(inst, WSYNC_LOG_ERROR, "[garmin] provider_name '%.80s' has %zu characters: "
		          "Garmin allows at most %d in workoutProvider and workoutSourceId "
		          "(it answers 500 to longer ones)", name, chars, GARMIN_PROVIDER_MAX);
		return WSYNC_E_INVALID;
	}
	if (!valid_utf8_text(name)) {
		host->log(inst, WSYNC_LOG_ERROR, "[garmin] provider_name must be printable UTF-8 "
		          "text without control characters");
		return WSYNC_E_INVALID;
	}
	if (!garmin_sport_valid(sport)) {
		host->log(inst, WSYNC_LOG_ERROR, "[garmin] default_sport '%.40s' is not a Training "
		          "API sport: expected RUNNING, CYCLING, LAP_SWIMMING, STRENGTH_TRAINING, "
		          "CARDIO_TRAINING, GENERIC, YOGA or PILATES", sport ? sport : "");
		return WSYNC_E_INVALID;
	}
	if (!act || (strcmp(act, "INTERVAL") && strcmp(act, "ACTIVE"))) {
		host->log(inst, WSYNC_LOG_ERROR, "[garmin] active_intensity '%.40s': expected "
		          "INTERVAL or ACTIVE", act ? act : "");
		return WSYNC_E_INVALID;
	}
	/* The state is the settings alone: the host and the instance come
	 * with every request (req->host, req->instance). */
	cfg = calloc(1, sizeof *cfg);
	if (!cfg)
		return WSYNC_E_UNEXPECTED;
	cfg->provider_name = name;
	cfg->default_sport = sport;
	cfg->active_intensity = act;
	*state = cfg;
	return WSYNC_OK;
}

static void destroy(void *state)
{
	free(state);
}

/* ------------------------------------------------------------------ HTTP */

/* One API call through the host.  The host classifies the answer; this
 * only sharpens the message where Garmin's status has a known meaning. */
static int32_t api(const wsync_request *req, wsync_call *call, const char *method, const char *path,
                   const char *text, wsync_http_response *resp)
{
	static const wsync_http_header accept[] = {{"Accept", "application/json"}};
	const char *excerpt;
	int32_t st = wsync_http_send(req, call, method, path, "application/json", text, accept, 1,
	                             resp);

	if (st == WSYNC_E_AUTH && resp->http_status == 412)
		return req->host->set_error(
			call, WSYNC_E_AUTH, 0,
			"HTTP 412 from %s %s: the user has not granted the Workout Import permission "
			"(WORKOUT_IMPORT) to this app. They must allow Workout Import for it in Garmin "
			"Connect (or reconnect and grant it); syncing resumes after that",
			method, path);
	if (st == WSYNC_E_AUTH && resp->http_status == 403) {
		excerpt = req->host->excerpt(call, resp->body, resp->body_len, 200);
		return req->host->set_error(
			call, WSYNC_E_AUTH, 0,
			"HTTP 403 from %s %s: not allowed (the app may lack Training API access, or "
			"the object belongs to another Garmin user): %s", method, path,
			excerpt[0] ? excerpt : "(empty body)");
	}
	return st;
}

/* A stored link, or a member read with the host's json_get (a number as
 * its decimal text), as a Garmin id; 0 on success. */
static int parse_link(const char *link, int64_t *out)
{
	long long x;
	char *end;
	if (!link || !isdigit((unsigned char)*link))
		return -1;
	x = strtoll(link, &end, 10);
	if (*end || x < 1 || x == LLONG_MAX)
		return -1;
	*out = (int64_t)x;
	return 0;
}

/* A member of an object answer (NULL when the answer is not an object). */
static const char *member(const wsync_request *req, wsync_call *call,
                          const wsync_http_response *resp, const char *name)
{
	if (req->host->json_length(call, resp->body, resp->body_len, "") < 0 ||
	    req->host->json_get(call, resp->body, resp->body_len, "") != NULL)
		return NULL; /* not an object or array */
	return req->host->json_get(call, resp->body, resp->body_len, name);
}

/* The id in a schedule-create answer, from every shape seen: a bare number
 * (also quoted), or an object with workoutScheduleId, scheduleId or id.
 * 0 on success. */
static int schedule_id(const wsync_request *req, wsync_call *call, const wsync_http_response *resp,
                       int64_t *out)
{
	static const char *const names[] = {"workoutScheduleId", "scheduleId", "id"};
	const char *bare = req->host->json_get(call, resp->body, resp->body_len, "");
	if (bare)
		return parse_link(bare, out);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (parse_link(member(req, call, resp, names[i]), out) == 0)
			return 0;
	return -1;
}

static int32_t no_id(const wsync_request *req, wsync_call *call, const char *method,
                     const char *path, const char *what, const wsync_http_response *resp)
{
	const char *excerpt = req->host->excerpt(call, resp->body, resp->body_len, 200);
	return req->host->set_error(call, WSYNC_E_PROVIDER, 0,
	                            "Garmin's answer without %s (HTTP %d from %s %s): %s", what,
	                            resp->http_status, method, path,
	                            excerpt[0] ? excerpt : "(empty body)");
}

static void set_id(const wsync_request *req, wsync_call *call, int64_t id)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)id);
	req->host->set_provider_id(call, buf);
}

/* ------------------------------------------------------------- workouts */

/* The workout object's text (owned by the object). */
static const char *json_text(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

static int32_t create_workout(const wsync_request *req, const garmin_cfg *cfg, wsync_call *call,
                              const wsync_workout_entity *w)
{
	wsync_http_response resp;
	json_object *body = garmin_workout_json(cfg, w, 0, 0);
	int64_t id = 0;
	int32_t st;

	if (!body)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	st = api(req, call, "POST", PATH_WORKOUT_CREATE, json_text(body), &resp);
	json_object_put(body);
	if (st != WSYNC_OK)
		return st;
	if (parse_link(member(req, call, &resp, "workoutId"), &id) < 0)
		return no_id(req, call, "POST", PATH_WORKOUT_CREATE, "workoutId", &resp);
	set_id(req, call, id);
	return WSYNC_OK;
}

static int32_t update_workout(const wsync_request *req, const garmin_cfg *cfg, wsync_call *call,
                              const wsync_workout_entity *w, const char *link)
{
	wsync_http_response resp;
	json_object *body;
	char path[96];
	int64_t id, owner = 0;
	int32_t st;

	if (parse_link(link, &id) < 0)
		return req->host->set_error(call, WSYNC_E_NOT_FOUND, 0,
		                            "stored Garmin workout id '%.40s' is not a number: "
		                            "creating the workout again", link ? link : "");
	snprintf(path, sizeof path, PATH_WORKOUT "%lld", (long long)id);
	/* ownerId is required on update and is not the OAuth user: read it. */
	st = api(req, call, "GET", path, NULL, &resp);
	if (st != WSYNC_OK)
		return st;
	if (parse_link(member(req, call, &resp, "ownerId"), &owner) < 0)
		return no_id(req, call, "GET", path, "ownerId", &resp);
	body = garmin_workout_json(cfg, w, id, owner);
	if (!body)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	st = api(req, call, "PUT", path, json_text(body), &resp);
	json_object_put(body);
	if (st != WSYNC_OK)
		return st;
	set_id(req, call, id);
	return WSYNC_OK;
}

static int32_t sync_workout(void *state, wsync_call *call, const wsync_request *req)
{
	const garmin_cfg *cfg = state;
	const wsync_workout_entity *w = req->workout;
	uint32_t n;

	if (!w || !w->structure)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                            "sync_workout called without a parsed workout");
	/* Checked before any request: Garmin would answer 400 anyway. */
	n = garmin_step_count(w->structure);
	if (n > GARMIN_MAX_STEPS)
		return req->host->set_error(call, WSYNC_E_INVALID_WORKOUT, 0,
		                            "Garmin allows %d steps, this workout has %u (every step "
		                            "counts, and each repeat counts once as well)",
		                            GARMIN_MAX_STEPS, n);
	if (req->operation == WSYNC_OP_UPDATE && req->workout_provider_id)
		return update_workout(req, cfg, call, w, req->workout_provider_id);
	if (wsync_must_reconcile(req))
		/* Garmin documents no workout lookup and no external id (README,
		 * "Exactly once"): the exposure is the one call that was in
		 * flight.  Say so where an operator will look. */
		req->host->log(req->instance, WSYNC_LOG_WARNING, "workout %s: an earlier attempt may have "
		               "created it on Garmin, which has no lookup for workouts; creating it "
		               "(check the user's Garmin library for a duplicate)", w->id ? w->id : "?");
	return create_workout(req, cfg, call, w);
}

static int32_t delete_workout(void *state, wsync_call *call, const wsync_request *req)
{
	wsync_http_response resp;
	char path[96];
	int64_t id;

	(void)state;
	if (parse_link(req->workout_provider_id, &id) < 0)
		return req->host->set_error(call, WSYNC_E_NOT_FOUND, 0,
		                            "stored Garmin workout id '%.40s' is not a number: "
		                            "nothing to delete", req->workout_provider_id
		                            ? req->workout_provider_id : "");
	snprintf(path, sizeof path, PATH_WORKOUT "%lld", (long long)id);
	return api(req, call, "DELETE", path, NULL, &resp);
}

/* ------------------------------------------------------------ schedules */

/* "YYYY-MM-DD" and nothing else. */
static int valid_date(const char *d)
{
	if (!d || strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)d[i]))
			return 0;
	return 1;
}

/*
 * Reconcile a schedule create: GET /training-api/schedule?startDate=D&
 * endDate=D (Garmin's documented list by date range) and find the schedule
 * of workout `wid` on that day.  1 found (id in *sid), 0 certainly none, or
 * a status < 0 meaning "stop: return -status" (the lookup failed: creating
 * now could duplicate).
 */
static int find_schedule(const wsync_request *req, wsync_call *call, int64_t wid, const char *date,
                         int64_t *sid)
{
	wsync_http_response resp;
	char path[128], at[64];
	int32_t st;
	int64_t i, n, found = 0;

	snprintf(path, sizeof path, "/training-api/schedule?startDate=%s&endDate=%s", date, date);
	st = api(req, call, "GET", path, NULL, &resp);
	if (st != WSYNC_OK && st != WSYNC_E_NOT_FOUND)
		return -st; /* the host recorded why */
	n = st == WSYNC_OK ? req->host->json_length(call, resp.body, resp.body_len, "") : -1;
	/* the documented answer is an array (JSON that starts with '[') */
	if (n < 0 || resp.body[strspn(resp.body, " \t\r\n")] != '[')
		return -no_id(req, call, "GET", path, "the schedule list (not creating blindly: "
		              "it may exist already)", &resp);
	for (i = 0; i < n; i++) {
		int64_t w = 0, id = 0;
		const char *d;
		snprintf(at, sizeof at, "%lld.workoutId", (long long)i);
		if (parse_link(req->host->json_get(call, resp.body, resp.body_len, at), &w) < 0 ||
		    w != wid)
			continue;
		snprintf(at, sizeof at, "%lld.date", (long long)i);
		d = req->host->json_get(call, resp.body, resp.body_len, at);
		snprintf(at, sizeof at, "%lld.scheduleId", (long long)i);
		if (!d || strncmp(d, date, 10) ||
		    parse_link(req->host->json_get(call, resp.body, resp.body_len, at), &id) < 0)
			continue;
		if (found++ == 0)
			*sid = id;
	}
	if (found > 1)
		req->host->log(req->instance, WSYNC_LOG_WARNING, "%lld schedules of workout %lld on %s: "
		               "adopting %lld", (long long)found, (long long)wid, date, (long long)*sid);
	return found ? 1 : 0;
}

/* The schedule object, written by the host: scheduleId (update only),
 * workoutId and date are all a schedule holds.  NULL when out of memory. */
static const char *schedule_body(const wsync_request *req, wsync_call *call, int64_t sid,
                                 int64_t wid, const char *date)
{
	wsync_json *j = req->host->json_begin(call);
	if (sid)
		req->host->json_int(j, "scheduleId", sid);
	req->host->json_int(j, "workoutId", wid);
	req->host->json_string(j, "date", date);
	return req->host->json_end(j, NULL);
}

static int32_t sync_scheduled(void *state, wsync_call *call, const wsync_request *req)
{
	const wsync_host *h = req->host;
	const wsync_scheduled_entity *s = req->scheduled;
	const char *body;
	wsync_http_response resp;
	char path[96];
	int64_t wid, sid = 0;
	int32_t st;

	(void)state;
	if (!s)
		return h->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                    "sync_scheduled_workout called without the scheduled workout");
	if (parse_link(req->workout_provider_id, &wid) < 0)
		return h->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                    "the workout of this scheduled workout has no usable Garmin "
		                    "workoutId (link '%.40s')", req->workout_provider_id
		                    ? req->workout_provider_id : "none");
	if (!valid_date(s->scheduled_date))
		return h->set_error(call, WSYNC_E_INVALID, 0,
		                    "scheduled_date '%.40s' is not YYYY-MM-DD",
		                    s->scheduled_date ? s->scheduled_date : "");
	if (req->operation == WSYNC_OP_UPDATE && req->scheduled_provider_id) {
		if (parse_link(req->scheduled_provider_id, &sid) < 0)
			return h->set_error(call, WSYNC_E_NOT_FOUND, 0,
			                    "stored Garmin schedule id '%.40s' is not a number: "
			                    "scheduling again", req->scheduled_provider_id);
		if (!(body = schedule_body(req, call, sid, wid, s->scheduled_date)))
			return h->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
		snprintf(path, sizeof path, PATH_SCHEDULE "%lld", (long long)sid);
		st = api(req, call, "PUT", path, body, &resp);
		if (st == WSYNC_OK)
			set_id(req, call, sid);
		return st;
	}
	if (wsync_must_reconcile(req)) {
		int r = find_schedule(req, call, wid, s->scheduled_date, &sid);
		if (r < 0)
			return (int32_t)-r;
		if (r == 1) {
			/* workoutId and date are all a schedule holds: nothing to PUT */
			h->log(req->instance, WSYNC_LOG_INFO, "schedule of workout %lld on %s already "
			       "exists as %lld (an earlier attempt reached Garmin): adopting it",
			       (long long)wid, s->scheduled_date, (long long)sid);
			set_id(req, call, sid);
			return WSYNC_OK;
		}
	}
	if (!(body = schedule_body(req, call, 0, wid, s->scheduled_date)))
		return h->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	st = api(req, call, "POST", PATH_SCHEDULE, body, &resp);
	if (st != WSYNC_OK)
		return st;
	/* The answer's shape is not documented: every shape seen is read. */
	if (schedule_id(req, call, &resp, &sid) < 0)
		return no_id(req, call, "POST", PATH_SCHEDULE, "a schedule id", &resp);
	set_id(req, call, sid);
	return WSYNC_OK;
}

static int32_t delete_scheduled(void *state, wsync_call *call, const wsync_request *req)
{
	wsync_http_response resp;
	char path[96];
	int64_t sid;

	(void)state;
	if (parse_link(req->scheduled_provider_id, &sid) < 0)
		return req->host->set_error(call, WSYNC_E_NOT_FOUND, 0,
		                            "stored Garmin schedule id '%.40s' is not a number: "
		                            "nothing to delete", req->scheduled_provider_id
		                            ? req->scheduled_provider_id : "");
	snprintf(path, sizeof path, PATH_SCHEDULE "%lld", (long long)sid);
	return api(req, call, "DELETE", path, NULL, &resp);
}

/* ------------------------------------------------------------ descriptor */

WSYNC_PLUGIN_DESCRIPTOR(.name = "garmin", .version = "1.0.0",
                        .description = "Garmin Connect Training API V2: workouts and schedules",
                        .config_keys = keys, .n_config_keys = sizeof keys / sizeof keys[0],
                        .init = init, .destroy = destroy, .sync_workout = sync_workout,
                        .sync_scheduled_workout = sync_scheduled, .delete_workout = delete_workout,
                        .delete_scheduled_workout = delete_scheduled)
