/*
 * http_fixture.c -- a plugin that talks HTTP through host->http(), for the
 * test host's tests (test_testhost.c):
 *   sync_workout            GET <base_url><[http_fixture] path> (auth); the
 *                           answer's body becomes the provider id
 *   sync_scheduled_workout  POST <base_url>/plans, a JSON body and an extra
 *                           header; the body becomes the provider id
 *   delete_workout          DELETE <base_url>/plans/<workout_provider_id>
 *   delete_scheduled_workout  not applicable
 * Whatever host->http() answers is returned as is: the host's
 * classification is the plugin's outcome.
 */
#include <wsync/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
	const wsync_host *host;
	const wsync_instance *inst;
	const char *path;
} fixture;

static const wsync_config_key keys[] = {
	{"http_fixture", "path", WSYNC_CONFIG_STRING, 0, "/ping", "what sync_workout GETs"},
};

static int32_t init(const wsync_host *host, const wsync_instance *inst, void **state)
{
	fixture *f = calloc(1, sizeof *f);
	if (!f)
		return WSYNC_E_UNEXPECTED;
	f->host = host;
	f->inst = inst;
	f->path = host->config_get_string(inst, "http_fixture", "path");
	host->log(inst, WSYNC_LOG_DEBUG, "http_fixture ready, path %s", f->path);
	*state = f;
	return WSYNC_OK;
}

static void destroy(void *state)
{
	fixture *f = state;
	f->host->log(f->inst, WSYNC_LOG_INFO, "http_fixture destroyed");
	free(f);
}

static int32_t answer(fixture *f, wsync_call *call, const wsync_http_request *rq)
{
	wsync_http_response resp = {.struct_size = sizeof resp};
	int32_t st = f->host->http(call, rq, &resp);
	f->host->log(f->inst, WSYNC_LOG_INFO, "%s %s -> %d (status %d)", rq->method, rq->path,
	             (int)resp.http_status, (int)st);
	if (st == WSYNC_OK && resp.body_len > 0)
		f->host->set_provider_id(call, resp.body);
	return st;
}

static int32_t sync_workout(void *st, wsync_call *call, const wsync_request *req)
{
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = "GET"};
	(void)req;
	rq.path = ((fixture *)st)->path;
	return answer(st, call, &rq);
}

static int32_t sync_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	static const wsync_http_header extra[] = {{"X-Fixture", "1"}};
	char body[256];
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = "POST",
	                         .path = "/plans", .content_type = "application/json",
	                         .headers = extra, .n_headers = 1};
	snprintf(body, sizeof body, "{\"date\":\"%s\",\"workout\":\"%s\"}",
	         req->scheduled->scheduled_date,
	         req->workout_provider_id ? req->workout_provider_id : "");
	rq.body = body;
	rq.body_len = strlen(body);
	return answer(st, call, &rq);
}

static int32_t delete_workout(void *st, wsync_call *call, const wsync_request *req)
{
	char path[256];
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = "DELETE",
	                         .path = path};
	snprintf(path, sizeof path, "/plans/%s", req->workout_provider_id);
	return answer(st, call, &rq);
}

static int32_t delete_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	(void)call;
	(void)req;
	return WSYNC_NOT_APPLICABLE;
}

static const wsync_plugin descriptor = {
	.magic = WSYNC_PLUGIN_MAGIC,
	.abi_major = WSYNC_PLUGIN_ABI_MAJOR,
	.abi_minor = WSYNC_PLUGIN_ABI_MINOR,
	.struct_size = sizeof(wsync_plugin),
	.name = "http_fixture",
	.version = "0.0.1",
	.description = "HTTP through the host, for the test host's tests",
	.config_keys = keys,
	.n_config_keys = sizeof keys / sizeof keys[0],
	.init = init,
	.destroy = destroy,
	.sync_workout = sync_workout,
	.sync_scheduled_workout = sync_scheduled,
	.delete_workout = delete_workout,
	.delete_scheduled_workout = delete_scheduled,
};

WSYNC_EXPORT const wsync_plugin *wsync_plugin_v1(void)
{
	return &descriptor;
}
