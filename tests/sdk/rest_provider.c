/*
 * rest_provider.c -- a JSON REST provider in under 80 logical lines, written
 * from docs/plugin-guide.md section 14 with the ABI 1.1 helpers only.
 *
 *   workouts   POST /v1/workouts, PUT/DELETE /v1/workouts/{id}
 *   calendar   POST /v1/calendar, PUT/DELETE /v1/calendar/{id}
 *
 * A create answers {"id": ...} (a string or a number); that id is the link.
 * tests/sdk/count_logical_lines.sh keeps the line count honest.
 */
#include <wsync/plugin.h>

#include <stdio.h>

/* One request: METHOD base[/id] with an optional JSON body; on a create,
 * the answer's "id" becomes the link. */
static int32_t rest(wsync_call *call, const wsync_request *req, const char *method,
                    const char *base, const char *id, wsync_json *j)
{
	const wsync_host *h = req->host;
	char path[512];
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = method,
	                         .path = path};
	wsync_http_response resp = {.struct_size = sizeof resp};
	const char *new_id;
	int32_t rc;
	snprintf(path, sizeof path, "%s%s%s", base, id ? "/" : "",
	         id ? h->path_segment(call, id) : "");
	if (j) {
		rq.content_type = "application/json";
		rq.body = h->json_end(j, &rq.body_len);
	}
	if ((rc = h->http(call, &rq, &resp)) != WSYNC_OK || id)
		return rc; /* errors are classified and recorded by the host */
	if (!(new_id = h->json_get(call, resp.body, resp.body_len, "id")))
		return h->set_error(call, WSYNC_E_PROVIDER, 0, "POST %s: no id in %s", base,
		                    h->excerpt(call, resp.body, resp.body_len, 200));
	h->set_provider_id(call, new_id);
	return WSYNC_OK;
}

static int32_t sync_workout(void *st, wsync_call *call, const wsync_request *req)
{
	const wsync_host *h = req->host;
	const wsync_workout_entity *w = req->workout;
	wsync_json *j = h->json_begin(call);
	wsync_step_iter it;
	const wsync_step *s;
	(void)st;
	h->json_string(j, "name", w->name);
	h->json_string(j, "description", w->description);
	h->json_string(j, "sport", w->sport);
	h->json_string(j, "external_id", req->external_key);
	h->json_open(j, "steps", 1);
	wsync_step_iter_init(&it, w->structure);
	while ((s = wsync_step_iter_next(&it))) {
		h->json_open(j, NULL, 0);
		h->json_number(j, "seconds", s->length_kind == WSYNC_LENGTH_TIME ? s->length : 0);
		h->json_int(j, "target_kind", s->target_kind);
		h->json_number(j, "low", s->target_low);
		h->json_number(j, "high", s->target_high);
		h->json_close(j);
	}
	return rest(call, req, req->workout_provider_id ? "PUT" : "POST", "/v1/workouts",
	            req->workout_provider_id, j);
}

static int32_t sync_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	const wsync_host *h = req->host;
	wsync_json *j = h->json_begin(call);
	(void)st;
	h->json_string(j, "workout_id", req->workout_provider_id);
	h->json_string(j, "date", req->scheduled->scheduled_date);
	h->json_string(j, "time", req->scheduled->scheduled_time);
	h->json_string(j, "external_id", req->external_key);
	return rest(call, req, req->scheduled_provider_id ? "PUT" : "POST", "/v1/calendar",
	            req->scheduled_provider_id, j);
}

static int32_t delete_workout(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	return rest(call, req, "DELETE", "/v1/workouts", req->workout_provider_id, NULL);
}

static int32_t delete_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	return rest(call, req, "DELETE", "/v1/calendar", req->scheduled_provider_id, NULL);
}

WSYNC_PLUGIN_DESCRIPTOR(.name = "rest_provider", .version = "1.0.0",
                        .description = "a JSON REST provider (plugin guide, section 14)",
                        .sync_workout = sync_workout,
                        .sync_scheduled_workout = sync_scheduled,
                        .delete_workout = delete_workout,
                        .delete_scheduled_workout = delete_scheduled)
