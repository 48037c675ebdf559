/*
 * example.c -- the smallest useful wsync provider plugin (ABI 1.1).
 *
 * It logs every operation it receives and answers success, with a provider
 * id derived from the entity id ("ex-<uuid>"), so links and deletes are
 * exercised end to end.  It keeps no state: the host and the instance come
 * with every request (req->host, req->instance).  Copy it to start a real
 * plugin: replace the body of answer() with calls to req->host->http()
 * (docs/plugin-guide.md walks through a REST provider).
 */
#include <wsync/plugin.h>

#include <stdio.h>

static const wsync_config_key keys[] = {
	{"example", "id_prefix", WSYNC_CONFIG_STRING, 0, "ex-",
	 "prefix of the provider ids this plugin invents"},
};

static const char *const op_names[] = {"create", "update", "delete"};

/* Log the call and answer with a provider id made from the entity id. */
static int32_t answer(wsync_call *call, const wsync_request *req, const char *what,
                      const char *entity_id)
{
	const wsync_host *h = req->host;
	char id[128];
	h->log(req->instance, WSYNC_LOG_INFO, "%s %s %s for user %s (attempt %d)",
	       op_names[req->operation], what, entity_id ? entity_id : "?", req->user_id,
	       req->attempt);
	if (req->operation != WSYNC_OP_DELETE) {
		snprintf(id, sizeof id, "%s%s",
		         h->config_get_string(req->instance, "example", "id_prefix"), entity_id);
		h->set_provider_id(call, id);
	}
	return WSYNC_OK;
}

static int32_t sync_workout(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	return answer(call, req, "workout", req->workout->id);
}

static int32_t sync_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	return answer(call, req, "scheduled workout", req->scheduled->id);
}

static int32_t delete_workout(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	return answer(call, req, "workout", req->workout_provider_id);
}

static int32_t delete_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)st;
	return answer(call, req, "scheduled workout", req->scheduled_provider_id);
}

WSYNC_PLUGIN_DESCRIPTOR(.name = "example", .version = "1.0.0",
                        .description = "logs each operation and answers success",
                        .config_keys = keys, .n_config_keys = 1,
                        .sync_workout = sync_workout,
                        .sync_scheduled_workout = sync_scheduled,
                        .delete_workout = delete_workout,
                        .delete_scheduled_workout = delete_scheduled)
