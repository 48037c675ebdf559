/*
 * helpers_fixture.c -- an ABI 1.1 plugin with no state and no init(): it
 * reaches the host through req->host and uses every 1.1 helper (JSON
 * writer and reader, path segments, excerpt, the expanded-step iterator,
 * WSYNC_PLUGIN_DESCRIPTOR).  Driven by test_helpers.c.
 */
#include <wsync/plugin.h>

#include <stdio.h>
#include <string.h>

/* POST /items {"name":...,"key":...,"steps":[{"i":..,"pass":..,"s":..}],...};
 * the answer's data.id (a string or a number) becomes the provider id. */
static int32_t sync_workout(void *st, wsync_call *call, const wsync_request *req)
{
	const wsync_host *h = req->host;
	const wsync_workout *w = req->workout->structure;
	wsync_json *j = h->json_begin(call);
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = "POST",
	                         .path = "/items", .content_type = "application/json"};
	wsync_http_response resp = {.struct_size = sizeof resp};
	wsync_step_iter it;
	const wsync_step *s;
	const char *id;
	int32_t rc;

	(void)st;
	h->json_string(j, "name", req->workout->name);
	h->json_string(j, "key", req->external_key);
	h->json_string(j, "none", NULL);
	h->json_number(j, "ratio", 0.1);
	h->json_bool(j, "reconcile", req->reconcile);
	h->json_open(j, "steps", 1);
	wsync_step_iter_init(&it, w);
	while ((s = wsync_step_iter_next(&it))) {
		h->json_open(j, NULL, 0);
		h->json_int(j, "i", it.index);
		h->json_int(j, "pass", it.pass);
		h->json_number(j, "s", s->length);
		h->json_close(j);
	}
	rq.body = h->json_end(j, &rq.body_len);
	if ((rc = h->http(call, &rq, &resp)) != WSYNC_OK)
		return rc;
	if (!(id = h->json_get(call, resp.body, resp.body_len, "data.id")))
		return h->set_error(call, WSYNC_E_PROVIDER, 0, "no data.id in the answer: %s",
		                    h->excerpt(call, resp.body, resp.body_len, 24));
	h->set_provider_id(call, id);
	return WSYNC_OK;
}

/* GET /items/<workout id>/on/<date>: answers with {"list":[...]}; the
 * provider id is the list's length and its last "id". */
static int32_t sync_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	const wsync_host *h = req->host;
	char path[512], key[32], id[128];
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = "GET",
	                         .path = path};
	wsync_http_response resp = {.struct_size = sizeof resp};
	int64_t n;
	int32_t rc;

	(void)st;
	snprintf(path, sizeof path, "/items/%s/on/%s",
	         h->path_segment(call, req->workout_provider_id),
	         h->path_segment(call, req->scheduled->scheduled_date));
	if ((rc = h->http(call, &rq, &resp)) != WSYNC_OK)
		return rc;
	if ((n = h->json_length(call, resp.body, resp.body_len, "list")) < 1)
		return h->set_error(call, WSYNC_E_PROVIDER, 0, "no list");
	snprintf(key, sizeof key, "list.%lld.id", (long long)n - 1);
	snprintf(id, sizeof id, "%lld:%s", (long long)n,
	         h->json_get(call, resp.body, resp.body_len, key));
	h->set_provider_id(call, id);
	return WSYNC_OK;
}

static int32_t delete_workout(void *st, wsync_call *call, const wsync_request *req)
{
	char path[512];
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = "DELETE",
	                         .path = path};
	(void)st;
	snprintf(path, sizeof path, "/items/%s",
	         req->host->path_segment(call, req->workout_provider_id));
	return req->host->http(call, &rq, NULL);
}

/* A message with a line break and invalid UTF-8, as a careless plugin
 * would copy a provider's body: the host cleans it. */
static int32_t delete_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	return req->host->set_error(call, WSYNC_E_INVALID, 0, "bad\nanswer \xff\xfe%s",
	                            req->scheduled_provider_id);
}

WSYNC_PLUGIN_DESCRIPTOR(.name = "helpers_fixture", .version = "1.1.0",
                        .description = "uses the ABI 1.1 helpers",
                        .sync_workout = sync_workout,
                        .sync_scheduled_workout = sync_scheduled,
                        .delete_workout = delete_workout,
                        .delete_scheduled_workout = delete_scheduled)
