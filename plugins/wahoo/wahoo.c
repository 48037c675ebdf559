/*
 * wahoo.c -- the Wahoo Cloud API provider plugin.
 *
 *   workout            -> plan     POST/PUT/DELETE /v1/plans[/:id]
 *   scheduled workout  -> workout  POST/PUT/DELETE /v1/workouts[/:id]
 *
 * Requests are form-encoded with Rails-style keys (plan[file], ...), the way
 * Wahoo's own examples send them; the plan file goes as a base64 data URI.
 * Everything else (rate limits, bearer token and its refresh, classification
 * of HTTP answers) is the host's.  See README.md for the mapping and the
 * decisions taken where Wahoo's documentation is silent.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "wahoo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLAN_MAX_INTERVALS 2000 /* the sandbox's cap; Wahoo documents none */
#define SCAN_PAGES 20           /* workout list pages searched for a token */
#define SCAN_PER_PAGE 30        /* Wahoo's documented default page size */

static const wsync_config_key keys[] = {
	{"wahoo", "location", WSYNC_CONFIG_STRING, 0, "indoor",
	 "indoor or outdoor: the plans' workout_type_location and the bike workout type"},
	{"wahoo", "ftp", WSYNC_CONFIG_INT, 0, NULL,
	 "FTP in watts written to every plan header (optional; targets stay fractions)"},
	{"wahoo", "default_start_time", WSYNC_CONFIG_STRING, 0, "07:00:00",
	 "start time, UTC, of a scheduled workout without a time (HH:MM or HH:MM:SS)"},
	{"wahoo", "bike_workout_type_id", WSYNC_CONFIG_INT, 0, NULL,
	 "workout_type_id of bike workouts (default 12 BIKING_INDOOR indoors, 0 BIKING outdoors)"},
	{"wahoo", "run_workout_type_id", WSYNC_CONFIG_INT, 0, "1",
	 "workout_type_id of run workouts (1 RUNNING; 5 RUNNING_TREADMILL)"},
	{"wahoo", "open_step_seconds", WSYNC_CONFIG_INT, 0, "600",
	 "length in seconds of a 'press lap' step (Wahoo plans have no lap trigger)"},
	{"wahoo", "ramp_steps", WSYNC_CONFIG_INT, 0, "10",
	 "most steps a ramp is cut into (one per minute or 250 m); 1 = send the range"},
};

/* ---------------------------------------------------------------- settings */

/* "HH:MM" or "HH:MM:SS", optionally followed by ".fraction" (PostgreSQL's
 * time text).  Writes "HH:MM:SS".  0 ok, -1 malformed. */
static int parse_time(const char *s, char out[9])
{
	int h, m, sec = 0;
	size_t n = s ? strlen(s) : 0;
	const char *d = s;

	if (n < 5 || !(d[0] >= '0' && d[0] <= '9' && d[1] >= '0' && d[1] <= '9' &&
	               d[2] == ':' && d[3] >= '0' && d[3] <= '9' && d[4] >= '0' && d[4] <= '9'))
		return -1;
	h = (d[0] - '0') * 10 + d[1] - '0';
	m = (d[3] - '0') * 10 + d[4] - '0';
	d += 5;
	if (*d == ':') {
		if (!(d[1] >= '0' && d[1] <= '9' && d[2] >= '0' && d[2] <= '9'))
			return -1;
		sec = (d[1] - '0') * 10 + d[2] - '0';
		d += 3;
		if (*d == '.') /* fraction of a second: dropped */
			for (d++; *d >= '0' && *d <= '9'; d++)
				;
	}
	if (*d || m > 59 || sec > 60)
		return -1;
	if (h == 24 && m == 0 && sec == 0) { /* PostgreSQL allows 24:00:00 */
		h = 23;
		m = 59;
		sec = 59;
	}
	if (h > 23)
		return -1;
	if (sec == 60)
		sec = 59;
	out[0] = (char)('0' + h / 10);
	out[1] = (char)('0' + h % 10);
	out[2] = ':';
	out[3] = (char)('0' + m / 10);
	out[4] = (char)('0' + m % 10);
	out[5] = ':';
	out[6] = (char)('0' + sec / 10);
	out[7] = (char)('0' + sec % 10);
	out[8] = '\0';
	return 0;
}

static int32_t bad_setting(const wsync_host *h, const wsync_instance *inst, const char *key,
                           const char *value, const char *expected)
{
	h->log(inst, WSYNC_LOG_ERROR, "[wahoo] %s = '%s': expected %s", key, value, expected);
	return WSYNC_E_INVALID;
}

static int32_t int_setting(const wsync_host *h, const wsync_instance *inst, const char *key,
                           int64_t fallback, int64_t lo, int64_t hi, const char *expected,
                           int64_t *out)
{
	const char *raw = h->config_get_string(inst, "wahoo", key);
	*out = h->config_get_int(inst, "wahoo", key, fallback);
	if (raw && (*out < lo || *out > hi))
		return bad_setting(h, inst, key, raw, expected);
	return WSYNC_OK;
}

static int32_t read_settings(const wsync_host *h, const wsync_instance *inst, wahoo_cfg *c)
{
	const char *loc = h->config_get_string(inst, "wahoo", "location");
	const char *t = h->config_get_string(inst, "wahoo", "default_start_time");

	if (!loc || !strcmp(loc, "indoor") || !strcmp(loc, "0"))
		c->location = WAHOO_LOCATION_INDOOR;
	else if (!strcmp(loc, "outdoor") || !strcmp(loc, "1"))
		c->location = WAHOO_LOCATION_OUTDOOR;
	else
		return bad_setting(h, inst, "location", loc, "indoor or outdoor");
	if (parse_time(t ? t : "07:00:00", c->start_time) < 0)
		return bad_setting(h, inst, "default_start_time", t,
		                   "a time such as 07:00 or 07:00:00");
	if (int_setting(h, inst, "ftp", 0, 1, 5000, "watts, 1 to 5000", &c->ftp) ||
	    int_setting(h, inst, "bike_workout_type_id",
	                c->location == WAHOO_LOCATION_INDOOR ? 12 : 0, 0, 255,
	                "a Wahoo workout_type_id, 0 to 255", &c->bike_type_id) ||
	    int_setting(h, inst, "run_workout_type_id", 1, 0, 255,
	                "a Wahoo workout_type_id, 0 to 255", &c->run_type_id) ||
	    int_setting(h, inst, "open_step_seconds", 600, 1, 86400, "seconds, 1 to 86400",
	                &c->open_step_s) ||
	    int_setting(h, inst, "ramp_steps", 10, 1, 100, "1 to 100", &c->ramp_steps))
		return WSYNC_E_INVALID;
	c->max_intervals = PLAN_MAX_INTERVALS;
	return WSYNC_OK;
}

/* The state is the settings alone: the host and the instance come with
 * every request (req->host, req->instance). */
static int32_t init(const wsync_host *host, const wsync_instance *inst, void **state)
{
	wahoo_cfg *cfg = calloc(1, sizeof *cfg);
	int32_t st;
	if (!cfg)
		return WSYNC_E_UNEXPECTED;
	if ((st = read_settings(host, inst, cfg)) != WSYNC_OK) {
		free(cfg);
		return st;
	}
	*state = cfg;
	return WSYNC_OK;
}

static void destroy(void *state)
{
	free(state);
}

/* ---------------------------------------------------------------- encoding */

/* Append key=value to a form body, each percent-encoded by the host (a
 * space as %20, which forms accept too). */
static void form_add(const wsync_request *req, wsync_call *call, wahoo_buf *b, const char *key,
                     const char *value)
{
	if (b->len)
		wahoo_buf_add(b, "&", 1);
	wahoo_buf_str(b, req->host->path_segment(call, key));
	wahoo_buf_add(b, "=", 1);
	wahoo_buf_str(b, req->host->path_segment(call, value ? value : ""));
}

/* Append the form-encoded value of a base64 text: of its alphabet only
 * '+', '/' and '=' need escaping, so it is copied in runs (the plan file
 * is kilobytes: the host's general encoder would copy it twice more). */
static void form_base64(wahoo_buf *b, const char *b64)
{
	const char *run = b64, *p = b64;
	for (; *p; p++) {
		const char *esc = *p == '+' ? "%2B" : *p == '/' ? "%2F" : *p == '=' ? "%3D" : NULL;
		if (!esc)
			continue;
		wahoo_buf_add(b, run, (size_t)(p - run));
		wahoo_buf_add(b, esc, 3);
		run = p + 1;
	}
	wahoo_buf_add(b, run, (size_t)(p - run));
}

static void form_int(const wsync_request *req, wsync_call *call, wahoo_buf *b, const char *key,
                     long long v)
{
	char s[24];
	snprintf(s, sizeof s, "%lld", v);
	form_add(req, call, b, key, s);
}

/* "/v1/<collection>[/<id>]" */
static void make_path(const wsync_request *req, wsync_call *call, wahoo_buf *b,
                      const char *collection, const char *id)
{
	wahoo_buf_str(b, "/v1/");
	wahoo_buf_str(b, collection);
	if (id) {
		wahoo_buf_add(b, "/", 1);
		wahoo_buf_str(b, req->host->path_segment(call, id));
	}
}

static void iso_utc(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* ------------------------------------------------------------------- HTTP */

static int32_t wahoo_send(const wsync_request *req, wsync_call *call, const char *method,
                          const char *path, const wahoo_buf *form, wsync_http_response *resp)
{
	static const wsync_http_header accept[] = {{"Accept", "application/json"}};
	return wsync_http_send(req, call, method, path, "application/x-www-form-urlencoded",
	                       form ? form->p : NULL, accept, 1, resp);
}

/* Member `at` of the answer, read by the host (a number as its text). */
static const char *get(const wsync_request *req, wsync_call *call, const wsync_http_response *resp,
                       const char *at)
{
	return req->host->json_get(call, resp->body, resp->body_len, at);
}

/* 1 when the answer is a JSON array (the host parsed it; it starts '['). */
static int is_array(const wsync_request *req, wsync_call *call, const wsync_http_response *resp,
                    const char *at)
{
	return req->host->json_length(call, resp->body, resp->body_len, at) >= 0 &&
	       (*at || resp->body[strspn(resp->body, " \t\r\n")] == '[');
}

/* A usable id from member `<prefix>id`: a positive whole number or a short
 * string of [A-Za-z0-9._-].  0 ok, -1 none. */
static int id_of(const wsync_request *req, wsync_call *call, const wsync_http_response *resp,
                 const char *prefix, char *out, size_t outlen)
{
	char at[48];
	const char *s;
	size_t n;

	snprintf(at, sizeof at, "%sid", prefix);
	s = get(req, call, resp, at);
	if (!s || !(n = strlen(s)) || n >= outlen || strspn(s, "0") == n || s[0] == '-' ||
	    !strcmp(s, "true") || !strcmp(s, "false") ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != n)
		return -1;
	memcpy(out, s, n + 1);
	return 0;
}

/*
 * Record the id of a 2xx answer as the entity's provider id.  Without a
 * usable id the object may well exist at Wahoo: that is provider_error (never
 * a blind second POST), and the retry comes with `reconcile` set, so it looks
 * the object up by its key before creating anything.
 */
static int32_t take_id(const wsync_request *req, wsync_call *call, const wsync_http_response *resp,
                       const char *method, const char *path)
{
	char id[64];
	int json = get(req, call, resp, "") ||
	           req->host->json_length(call, resp->body, resp->body_len, "") >= 0;

	if (id_of(req, call, resp, "", id, sizeof id) != 0)
		return req->host->set_error(call, WSYNC_E_PROVIDER, 0,
		                            "HTTP %d from %s %s: answer without id (%s, %zu bytes); "
		                            "the object may exist: the retry looks it up before "
		                            "creating", (int)resp->http_status, method, path,
		                            json ? "no usable \"id\"" : "not strict JSON",
		                            resp->body_len);
	req->host->set_provider_id(call, id);
	return WSYNC_OK;
}

/* The key sent on create and looked up on reconcile: the entity's id, which
 * every create has always sent.  ABI 1.1's external_key is that same UUID; a
 * host passing another one is told so and not followed, because plans and
 * workouts made before carry the entity's id. */
static const char *key_of(const wsync_request *req, const char *entity_id)
{
	if (WSYNC_HAS(req, external_key) && req->external_key && strcmp(req->external_key,
	                                                                entity_id))
		req->host->log(req->instance, WSYNC_LOG_WARNING, "external_key %s is not the entity's id "
		               "%s: using the entity's id", req->external_key, entity_id);
	return entity_id;
}

/* A lookup that could not answer: a create now might duplicate, so the
 * entry fails for now (rate limit and 5xx as classified; a refusal as
 * itself) and is retried. */
static int32_t lookup_failed(const wsync_request *req, wsync_call *call, int32_t st,
                             const char *what, const wsync_http_response *resp)
{
	if (st == WSYNC_E_NOT_FOUND || st == WSYNC_OK)
		return req->host->set_error(call, WSYNC_E_PROVIDER, 0,
		                            "HTTP %d from %s: %s; not creating blindly (it may "
		                            "exist already)", (int)resp->http_status, what,
		                            st == WSYNC_OK ? "answer is not the documented list"
		                                          : "list not found");
	return st; /* the host recorded its message */
}

/* -------------------------------------------------------------------- plans */

/* The plan form; external_id only on create (Wahoo's update takes none). */
static int32_t plan_form(const wsync_request *req, const wahoo_cfg *cfg, wsync_call *call,
                         const wsync_workout_entity *w, const char *external_id,
                         wahoo_buf *form, size_t *plan_len)
{
	char err[512], when[32];
	char *json, *b64;
	size_t len;
	int32_t st = wahoo_plan_json(cfg, w, &json, &len, err, sizeof err);

	if (st != WSYNC_OK)
		return req->host->set_error(call, st, 0, "workout %s: %s", w->id, err);
	b64 = req->host->base64_encode(json, len);
	free(json);
	if (!b64)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory (base64)");
	iso_utc(w->updated_at > 0 ? w->updated_at : req->host->now(), when);
	form_add(req, call, form, "plan[file]", "data:application/json;base64,");
	form_base64(form, b64);
	form_add(req, call, form, "plan[filename]", "plan.json");
	if (external_id)
		form_add(req, call, form, "plan[external_id]", external_id);
	form_add(req, call, form, "plan[provider_updated_at]", when);
	req->host->free_string(b64);
	*plan_len = len;
	if (form->oom)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory (form)");
	return WSYNC_OK;
}

static int32_t put_plan(const wsync_request *req, const wahoo_cfg *cfg, wsync_call *call,
                        const wsync_workout_entity *w, const char *plan_id)
{
	wahoo_buf form = {0}, path = {0};
	wsync_http_response resp;
	size_t len = 0;
	int32_t st = plan_form(req, cfg, call, w, NULL, &form, &len);

	make_path(req, call, &path, "plans", plan_id);
	if (st == WSYNC_OK && path.oom)
		st = req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	if (st == WSYNC_OK) {
		req->host->log(req->instance, WSYNC_LOG_DEBUG, "PUT %s for workout %s (plan file %zu bytes)",
		               path.p, w->id, len);
		st = wahoo_send(req, call, "PUT", path.p, &form, &resp);
		if (st == WSYNC_OK)
			st = take_id(req, call, &resp, "PUT", path.p);
	}
	wahoo_buf_free(&form);
	wahoo_buf_free(&path);
	return st;
}

/*
 * Look the plan up by external_id (GET /v1/plans?external_id=X, a bare
 * array).  1 found (its id in out), 0 certainly none, or a status < 0
 * meaning "stop: return -status" (the lookup failed: creating now could
 * duplicate).  Wahoo does not promise external_id is unique: when plans
 * from before share it, the first live one is adopted.
 */
static int find_plan(const wsync_request *req, wsync_call *call, const char *key, char *out,
                     size_t outlen)
{
	wahoo_buf path = {0};
	wsync_http_response resp;
	size_t live = 0;
	int64_t i, n;
	int32_t st;

	out[0] = '\0';
	wahoo_buf_str(&path, "/v1/plans?external_id=");
	wahoo_buf_str(&path, req->host->path_segment(call, key));
	if (path.oom) {
		wahoo_buf_free(&path);
		return -req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	}
	st = wahoo_send(req, call, "GET", path.p, NULL, &resp);
	wahoo_buf_free(&path);
	if (st != WSYNC_OK || !is_array(req, call, &resp, ""))
		return -lookup_failed(req, call, st, "GET /v1/plans?external_id=", &resp);
	n = req->host->json_length(call, resp.body, resp.body_len, "");
	for (i = 0; i < n; i++) {
		char id[64], at[48], pre[24];
		const char *ext, *del;
		/* the filter is the server's; check it anyway */
		snprintf(pre, sizeof pre, "%lld.", (long long)i);
		snprintf(at, sizeof at, "%sexternal_id", pre);
		if (!(ext = get(req, call, &resp, at)) || strcmp(ext, key))
			continue;
		snprintf(at, sizeof at, "%sdeleted", pre);
		if ((del = get(req, call, &resp, at)) && !strcmp(del, "true"))
			continue;
		if (id_of(req, call, &resp, pre, id, sizeof id) != 0)
			continue;
		if (live++ == 0)
			snprintf(out, outlen, "%s", id);
	}
	if (live > 1)
		req->host->log(req->instance, WSYNC_LOG_WARNING, "%zu plans carry external_id %s: "
		               "adopting %s, the others are duplicates made before", live, key, out);
	return out[0] ? 1 : 0;
}

static int32_t sync_workout(void *state, wsync_call *call, const wsync_request *req)
{
	const wahoo_cfg *cfg = state;
	const wsync_workout_entity *w = req->workout;
	wahoo_buf form = {0};
	wsync_http_response resp;
	char found[64];
	const char *key;
	size_t len = 0;
	int32_t st;

	if (!w || !w->id)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "no workout in the request");
	if (req->operation == WSYNC_OP_UPDATE && req->workout_provider_id)
		return put_plan(req, cfg, call, w, req->workout_provider_id);

	key = key_of(req, w->id);
	if (wsync_must_reconcile(req)) {
		int r = find_plan(req, call, key, found, sizeof found);
		if (r < 0)
			return (int32_t)-r;
		if (r == 1) {
			req->host->log(req->instance, WSYNC_LOG_INFO, "plan with external_id %s already "
			               "exists as %s (an earlier attempt reached Wahoo): adopting and "
			               "updating it", key, found);
			req->host->set_provider_id(call, found);
			return put_plan(req, cfg, call, w, found);
		}
	}
	st = plan_form(req, cfg, call, w, key, &form, &len);
	if (st == WSYNC_OK) {
		req->host->log(req->instance, WSYNC_LOG_DEBUG, "POST /v1/plans for workout %s "
		               "(plan file %zu bytes)", w->id, len);
		/* A 422 stays invalid_request: Wahoo does not document it as "exists". */
		st = wahoo_send(req, call, "POST", "/v1/plans", &form, &resp);
		if (st == WSYNC_OK)
			st = take_id(req, call, &resp, "POST", "/v1/plans");
	}
	wahoo_buf_free(&form);
	return st;
}

/* ----------------------------------------------------------------- workouts */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "YYYY-MM-DD" + time -> "YYYY-MM-DDTHH:MM:SSZ"; -1 when malformed. */
static int starts_of(const wahoo_cfg *cfg, const wsync_scheduled_entity *sc, char out[32])
{
	const char *d = sc->scheduled_date;
	char t[9];
	int i;

	if (!d || strlen(d) != 10 || d[4] != '-' || d[7] != '-')
		return -1;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !is_digit(d[i]))
			return -1;
	if (sc->scheduled_time) {
		if (parse_time(sc->scheduled_time, t) < 0)
			return -1;
	} else {
		memcpy(t, cfg->start_time, sizeof t);
	}
	snprintf(out, 32, "%.10sT%sZ", d, t);
	return 0;
}

static long long minutes_of(const wsync_workout_entity *w)
{
	double s = w && w->structure ? w->structure->total_seconds : 0;
	long long m;
	if (!(s > 0) || s > 1e9)
		return 1;
	m = (long long)(s / 60);
	if ((double)m * 60 < s)
		m++;
	return m < 1 ? 1 : m;
}

/* A whole number from a member of the answer, or -1. */
static long long json_count(const wsync_request *req, wsync_call *call,
                            const wsync_http_response *resp, const char *at)
{
	const char *s = get(req, call, resp, at);
	if (!s || !is_digit(s[0]))
		return -1;
	return strtoll(s, NULL, 10);
}

/*
 * A create that may follow one that reached Wahoo.  Wahoo has no lookup by
 * workout_token, so scan the workout list (newest starts first) for ours,
 * page by page until the list ends (`total`, or a short or empty page), at
 * most SCAN_PAGES pages.  1 found (id in out), 0 not found, or a status < 0
 * meaning "stop: return -status" (the scan failed: creating now could
 * duplicate).
 */
static int find_by_token(const wsync_request *req, wsync_call *call, const char *token, char *out,
                         size_t outlen)
{
	for (int page = 1; page <= SCAN_PAGES; page++) {
		char path[96];
		wsync_http_response resp;
		int64_t i, n;
		long long total, per;
		int found = 0;
		int32_t st;

		snprintf(path, sizeof path, "/v1/workouts?page=%d&per_page=%d", page,
		         SCAN_PER_PAGE);
		st = wahoo_send(req, call, "GET", path, NULL, &resp);
		if (st != WSYNC_OK || !is_array(req, call, &resp, "workouts"))
			return -lookup_failed(req, call, st, "GET /v1/workouts", &resp);
		n = req->host->json_length(call, resp.body, resp.body_len, "workouts");
		for (i = 0; i < n && !found; i++) {
			char at[48], pre[32];
			const char *tk;
			snprintf(pre, sizeof pre, "workouts.%lld.", (long long)i);
			snprintf(at, sizeof at, "%sworkout_token", pre);
			tk = get(req, call, &resp, at);
			if (tk && !strcmp(tk, token) && id_of(req, call, &resp, pre, out, outlen) == 0)
				found = 1;
		}
		total = json_count(req, call, &resp, "total");
		per = json_count(req, call, &resp, "per_page");
		if (found)
			return 1;
		/* the end: an empty page, past `total`, or a page shorter than the
		 * page size the server says it used */
		if (n == 0 || (total >= 0 && (long long)page * (per > 0 ? per : (long long)n) >= total) ||
		    (total < 0 && (long long)n < (per > 0 ? per : SCAN_PER_PAGE)))
			return 0;
	}
	req->host->log(req->instance, WSYNC_LOG_WARNING, "workout_token %s not in the first %d "
	               "workouts of the list (Wahoo has no lookup by token): creating",
	               token, SCAN_PAGES * SCAN_PER_PAGE);
	return 0;
}

static int32_t sync_scheduled(void *state, wsync_call *call, const wsync_request *req)
{
	const wahoo_cfg *cfg = state;
	const wsync_scheduled_entity *sc = req->scheduled;
	const wsync_workout_entity *w = req->workout;
	const char *wid = req->operation == WSYNC_OP_UPDATE ? req->scheduled_provider_id : NULL;
	wahoo_buf form = {0}, path = {0};
	wsync_http_response resp;
	char starts[32], found[64];
	const char *token;
	long long type;
	int32_t st;

	if (!sc || !sc->id || !w)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                            "no scheduled workout in the request");
	if (!req->workout_provider_id)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                            "workout %s has no plan on %s yet", sc->workout_id
		                            ? sc->workout_id : "?", req->provider);
	if (starts_of(cfg, sc, starts) < 0)
		return req->host->set_error(call, WSYNC_E_INVALID, 0,
		                            "scheduled workout %s: date '%s' / time '%s' not usable",
		                            sc->id, sc->scheduled_date ? sc->scheduled_date : "",
		                            sc->scheduled_time ? sc->scheduled_time : "");
	token = key_of(req, sc->id);
	if (!wid && wsync_must_reconcile(req)) {
		int r = find_by_token(req, call, token, found, sizeof found);
		if (r < 0)
			return (int32_t)-r;
		if (r == 1) {
			req->host->log(req->instance, WSYNC_LOG_INFO, "workout with token %s already exists "
			               "as %s (an earlier attempt reached Wahoo): adopting and updating "
			               "it", token, found);
			req->host->set_provider_id(call, found);
			wid = found;
		}
	}
	type = wahoo_sport_family(w->sport) == WAHOO_FAMILY_RUN ? cfg->run_type_id
	                                                          : cfg->bike_type_id;
	form_add(req, call, &form, "workout[name]", w->name && *w->name ? w->name : "Workout");
	form_add(req, call, &form, "workout[workout_token]", token);
	form_int(req, call, &form, "workout[workout_type_id]", type);
	form_add(req, call, &form, "workout[starts]", starts);
	form_int(req, call, &form, "workout[minutes]", minutes_of(w));
	form_add(req, call, &form, "workout[plan_id]", req->workout_provider_id);
	make_path(req, call, &path, "workouts", wid);
	if (form.oom || path.oom) {
		st = req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	} else {
		const char *method = wid ? "PUT" : "POST";
		req->host->log(req->instance, WSYNC_LOG_DEBUG, "%s %s for scheduled workout %s (%s)",
		               method, path.p, sc->id, starts);
		st = wahoo_send(req, call, method, path.p, &form, &resp);
		if (st == WSYNC_OK)
			st = take_id(req, call, &resp, method, path.p);
	}
	wahoo_buf_free(&form);
	wahoo_buf_free(&path);
	return st;
}

/* ------------------------------------------------------------------ deletes */

static int32_t delete_obj(const wsync_request *req, wsync_call *call, const char *collection,
                          const char *id)
{
	wahoo_buf path = {0};
	wsync_http_response resp;
	int32_t st;

	if (!id || !*id)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0,
		                            "delete without a %s id", collection);
	make_path(req, call, &path, collection, id);
	if (path.oom)
		return req->host->set_error(call, WSYNC_E_UNEXPECTED, 0, "out of memory");
	/* 404 comes back as WSYNC_E_NOT_FOUND: the host counts it as done */
	st = wahoo_send(req, call, "DELETE", path.p, NULL, &resp);
	wahoo_buf_free(&path);
	return st;
}

static int32_t delete_workout(void *state, wsync_call *call, const wsync_request *req)
{
	(void)state;
	return delete_obj(req, call, "plans", req->workout_provider_id);
}

static int32_t delete_scheduled(void *state, wsync_call *call, const wsync_request *req)
{
	(void)state;
	return delete_obj(req, call, "workouts", req->scheduled_provider_id);
}

WSYNC_PLUGIN_DESCRIPTOR(.name = "wahoo", .version = "1.0.0",
                        .description = "Wahoo Cloud API: workouts as plans, scheduled workouts "
                                       "as workouts",
                        .config_keys = keys, .n_config_keys = sizeof keys / sizeof keys[0],
                        .init = init, .destroy = destroy, .sync_workout = sync_workout,
                        .sync_scheduled_workout = sync_scheduled, .delete_workout = delete_workout,
                        .delete_scheduled_workout = delete_scheduled)
