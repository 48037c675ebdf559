/*
 * frozen_v1.c -- the ABI stability fixture.  Built against the FROZEN copy
 * of the first released SDK headers (tests/sdk/abi_v1_0/, plugin ABI 1.0),
 * never against include/: it must keep loading and working in every later
 * wsync (test abi-frozen-v1).  It touches every part of ABI 1.0: each config
 * type, each log level, the workout model and its inline helpers, both
 * entities, HTTP with a body and headers, set_error with a retry-after,
 * set_provider_id, now, base64, WSYNC_HAS and the SERIAL flag.
 */
#include <wsync/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FROZEN_V1_SOURCE: the second build, of this unchanged 1.0 source against
 * the current headers (a 1.0 plugin's source must still compile and run). */
#if WSYNC_PLUGIN_ABI_MAJOR != 1 || (WSYNC_PLUGIN_ABI_MINOR != 0 && !defined(FROZEN_V1_SOURCE))
#error "frozen_v1.c must be built against tests/sdk/abi_v1_0 (ABI 1.0)"
#endif

typedef struct frozen {
	const wsync_host *host;
	const wsync_instance *inst;
	const char *label;
	int64_t count;
	int32_t loud;
	const char *key;   /* secret, never logged */
} frozen;

static const wsync_config_key keys[] = {
	{"frozen", "label", WSYNC_CONFIG_STRING, 1, NULL, "required string"},
	{"frozen", "count", WSYNC_CONFIG_INT, 0, "7", "integer with a default"},
	{"frozen", "loud", WSYNC_CONFIG_BOOL, 0, "false", "log at every level"},
	{"frozen", "api_key_file", WSYNC_CONFIG_SECRET, 0, NULL, "secret file"},
};

static int32_t init(const wsync_host *host, const wsync_instance *inst, void **state)
{
	frozen *f;
	if (!WSYNC_HAS(host, free_string))
		return WSYNC_E_UNEXPECTED;
	f = calloc(1, sizeof *f);
	if (!f)
		return WSYNC_E_UNEXPECTED;
	f->host = host;
	f->inst = inst;
	f->label = host->config_get_string(inst, "frozen", "label");
	f->count = host->config_get_int(inst, "frozen", "count", -1);
	f->loud = host->config_get_bool(inst, "frozen", "loud", 0);
	f->key = host->config_get_string(inst, "frozen", "api_key_file");
	host->log(inst, WSYNC_LOG_INFO, "frozen init: host %s ABI %u.%u, label %s, count %lld, "
	          "loud %d, key %zu bytes", host->host_version, host->abi_major, host->abi_minor,
	          f->label, (long long)f->count, (int)f->loud, f->key ? strlen(f->key) : 0);
	if (f->loud) {
		host->log(inst, WSYNC_LOG_DEBUG, "frozen loud: debug");
		host->log(inst, WSYNC_LOG_WARNING, "frozen loud: warning");
		host->log(inst, WSYNC_LOG_ERROR, "frozen loud: error");
	}
	*state = f;
	return WSYNC_OK;
}

static void destroy(void *state)
{
	free(state);
}

static int32_t sync_workout(void *st, wsync_call *call, const wsync_request *req)
{
	frozen *f = st;
	const wsync_workout *w = req->workout->structure;
	const wsync_step *first = wsync_workout_step(w, 0);
	uint32_t top = 0, repeats = 0;
	char id[160], *b64;

	for (uint32_t i = 0; i < w->n_steps; i = wsync_step_next(w, i)) {
		top++;
		repeats += wsync_workout_step(w, i)->kind == WSYNC_STEP_REPEAT;
	}
	b64 = f->host->base64_encode(req->workout->name, strlen(req->workout->name));
	f->host->log(f->inst, WSYNC_LOG_INFO, "frozen workout %s (%s, %s) op %d: %u entries, "
	             "%u top-level, %u repeats, %u steps, %.0f s; first %s %s %.0f-%.0f; "
	             "name64 %s; now>0 %d", req->workout->name, req->workout->sport,
	             req->workout->workout_text ? "with text" : "no text", (int)req->operation,
	             w->n_steps, top, repeats, wsync_workout_expanded_steps(w),
	             wsync_workout_total_seconds(w), wsync_intensity_name(first->intensity),
	             first->section ? first->section : "-", first->target_low,
	             first->target_high, b64, f->host->now() > 0 && req->now > 0);
	f->host->free_string(b64);
	snprintf(id, sizeof id, "frozen-%s", req->workout->id);
	f->host->set_provider_id(call, id);
	return WSYNC_OK;
}

static int32_t sync_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	frozen *f = st;
	const wsync_scheduled_entity *s = req->scheduled;
	const wsync_http_header hdr[] = {{"X-Frozen-Label", f->label}};
	wsync_http_request rq = {.struct_size = sizeof rq, .auth = 1, .method = "PUT",
	                         .path = "/schedule", .content_type = "text/plain",
	                         .headers = hdr, .n_headers = 1};
	wsync_http_response resp = {.struct_size = sizeof resp};
	char body[256], id[160];
	int32_t rc;

	snprintf(body, sizeof body, "%s %s %s %s", s->scheduled_date,
	         s->scheduled_time ? s->scheduled_time : "anytime", s->workout_id,
	         req->workout_provider_id ? req->workout_provider_id : "-");
	rq.body = body;
	rq.body_len = strlen(body);
	rc = f->host->http(call, &rq, &resp);
	f->host->log(f->inst, WSYNC_LOG_INFO, "frozen schedule %s: HTTP %d, %zu bytes, "
	             "retry after %lld, status %d", s->id, (int)resp.http_status,
	             resp.body_len, (long long)resp.retry_after_s, (int)rc);
	if (rc != WSYNC_OK)
		return rc;
	snprintf(id, sizeof id, "frozen-s-%s", resp.body);
	f->host->set_provider_id(call, id);
	return WSYNC_OK;
}

static int32_t delete_workout(void *st, wsync_call *call, const wsync_request *req)
{
	frozen *f = st;
	return f->host->set_error(call, WSYNC_E_RATE_LIMIT, 42, "frozen: slow down (%s, "
	                          "attempt %d)", req->workout_provider_id, (int)req->attempt);
}

static int32_t delete_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	(void)call;
	(void)req;
	return WSYNC_E_NOT_FOUND;
}

static const wsync_plugin descriptor = {
	.magic = WSYNC_PLUGIN_MAGIC,
	.abi_major = WSYNC_PLUGIN_ABI_MAJOR,
	.abi_minor = WSYNC_PLUGIN_ABI_MINOR,
	.struct_size = sizeof(wsync_plugin),
	.flags = WSYNC_PLUGIN_SERIAL,
	.name = "frozen_v1",
	.version = "1.0.0",
	.description = "built against the frozen ABI 1.0 headers",
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
