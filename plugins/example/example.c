/*
 * example.c -- the smallest useful wsync provider plugin.
 *
 * It logs every operation it receives and answers success, with a provider
 * id derived from the entity id ("ex-<uuid>"), so links and deletes are
 * exercised end to end.  Copy it to start a real plugin: replace the bodies
 * of the four operations with calls to host->http().
 */
#include <wsync/plugin.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct example {
	const wsync_host *host;
	const wsync_instance *inst;
	const char *prefix; /* [example] id_prefix, host-owned */
} example;

static const wsync_config_key keys[] = {
	{"example", "id_prefix", WSYNC_CONFIG_STRING, 0, "ex-",
	 "prefix of the provider ids this plugin invents"},
};

static int32_t init(const wsync_host *host, const wsync_instance *inst, void **state)
{
	example *ex = calloc(1, sizeof *ex);
	if (!ex)
		return WSYNC_E_UNEXPECTED;
	ex->host = host;
	ex->inst = inst;
	ex->prefix = host->config_get_string(inst, "example", "id_prefix");
	*state = ex;
	return WSYNC_OK;
}

static void destroy(void *state)
{
	free(state);
}

static const char *const op_names[] = {"create", "update", "delete"};

/* Log the call and answer with a provider id made from the entity id. */
static int32_t answer(void *state, wsync_call *call, const wsync_request *req,
                      const char *what, const char *entity_id)
{
	example *ex = state;
	char id[128];
	ex->host->log(ex->inst, WSYNC_LOG_INFO, "%s %s %s for user %s (attempt %d)",
	              op_names[req->operation], what, entity_id ? entity_id : "?",
	              req->user_id, req->attempt);
	if (req->operation != WSYNC_OP_DELETE) {
		snprintf(id, sizeof id, "%s%s", ex->prefix, entity_id);
		ex->host->set_provider_id(call, id);
	}
	return WSYNC_OK;
}

static int32_t sync_workout(void *st, wsync_call *call, const wsync_request *req)
{
	return answer(st, call, req, "workout", req->workout->id);
}

static int32_t sync_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	return answer(st, call, req, "scheduled workout", req->scheduled->id);
}

static int32_t delete_workout(void *st, wsync_call *call, const wsync_request *req)
{
	return answer(st, call, req, "workout", req->workout_provider_id);
}

static int32_t delete_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	return answer(st, call, req, "scheduled workout", req->scheduled_provider_id);
}

static const wsync_plugin descriptor = {
	.magic = WSYNC_PLUGIN_MAGIC,
	.abi_major = WSYNC_PLUGIN_ABI_MAJOR,
	.abi_minor = WSYNC_PLUGIN_ABI_MINOR,
	.struct_size = sizeof(wsync_plugin),
	.name = "example",
	.version = "1.0.0",
	.description = "logs each operation and answers success",
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
