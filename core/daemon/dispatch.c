#include "dispatch.h"

#include "common/log.h"
#include "common/workout_parse.h"
#include "host/host.h"
#include "host/invoke.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int32_t fail(wsync_result *res, int32_t status, const char *msg)
{
	res->status = status;
	snprintf(res->message, sizeof res->message, "%s", msg);
	return status;
}

static int is_delete(const wsync_entry *e)
{
	return !strcmp(e->operation, "delete");
}

static int is_workout(const wsync_entry *e)
{
	return !strcmp(e->entity_type, "workout");
}

int32_t wsync_dispatch_prepare(wsync_job *j)
{
	const wsync_entry *e = &j->entry;
	wsync_parse_error perr;

	if (!is_delete(e)) {
		if (!j->has_workout || (!is_workout(e) && !j->has_sched))
			return fail(&j->res, WSYNC_E_RECORD_GONE, is_workout(e)
			            ? "workout no longer exists"
			            : "scheduled workout (or its workout) no longer exists");
	} else {
		/* A delete sends ids only: the rows may be gone, and a scheduled
		 * workout's delete needs only its own link. */
		j->has_workout = j->has_sched = 0;
		if (!is_workout(e)) {
			free(j->workout_link);
			j->workout_link = NULL;
		}
		/* The id captured at enqueue, when the link is gone already. */
		char **own = is_workout(e) ? &j->workout_link : &j->sched_link;
		if (!*own && e->provider_entity_id && !(*own = strdup(e->provider_entity_id)))
			return fail(&j->res, WSYNC_E_UNEXPECTED, "out of memory");
	}
	if (!j->token.found || !j->token.access_token)
		return fail(&j->res, WSYNC_E_AUTH, "the user has no connected account on this provider");
	if (j->token.needs_reconnect)
		return fail(&j->res, WSYNC_E_AUTH,
		            "the user must reconnect this provider (token refresh failed)");
	if (!is_delete(e) && j->workout_text &&
	    wsync_workout_parse(j->workout_text, strlen(j->workout_text), &j->structure,
	                        &perr) < 0)
		return fail(&j->res, WSYNC_E_INVALID_WORKOUT, perr.message);
	return WSYNC_OK;
}

/* The plugin's view of the job's entities; strings point into the job. */
typedef struct entities {
	wsync_workout_entity workout;
	wsync_scheduled_entity sched;
} entities;

static void entities_of(const wsync_job *j, entities *v)
{
	v->workout = (wsync_workout_entity){
		.struct_size = sizeof(wsync_workout_entity),
		.id = j->workout_id, .user_id = j->workout_user_id, .name = j->name,
		.description = j->description, .sport = j->sport, .workout_text = j->workout_text,
		.updated_at = j->workout_updated_at, .structure = j->structure};
	v->sched = (wsync_scheduled_entity){
		.struct_size = sizeof(wsync_scheduled_entity),
		.id = j->entry.entity_id, .user_id = j->entry.user_id,
		.workout_id = j->sched_workout_id, .scheduled_date = j->scheduled_date,
		.scheduled_time = j->scheduled_time};
}

static void base_request(wsync_request *req, const wsync_job *j, const entities *v,
                         int32_t op)
{
	const wsync_entry *e = &j->entry;
	memset(req, 0, sizeof *req);
	req->struct_size = sizeof *req;
	req->operation = op;
	req->queue_id = e->id;
	req->provider = e->provider;
	req->user_id = e->user_id;
	req->access_token = j->token.access_token;
	req->workout = j->has_workout ? &v->workout : NULL;
	req->scheduled = j->has_sched ? &v->sched : NULL;
	req->workout_provider_id = j->workout_link;
	req->scheduled_provider_id = j->sched_link;
	req->attempt = e->attempts + 1; /* calls started before, plus this one */
	req->now = (int64_t)time(NULL);
	req->reconcile = e->reconcile;
	req->external_key = e->entity_id;
}

static void take_answer(wsync_result *res, const wsync_call *call, int32_t st)
{
	res->status = st;
	res->retry_after_s = call->retry_after_s;
	res->deferred = call->deferred;
	snprintf(res->message, sizeof res->message, "%s", call->message);
}

/* wsync_invoke for a sync operation.  A create answered with success must
 * name what it made: without an id there is no link, and the next change
 * of the entity would create it on the provider again.  Failing it for
 * good (never retried) makes no second object; the message tells the
 * operator where to look. */
static int32_t invoke_sync(wsync_plugin_instance *inst, wsync_call *call, int which,
                           wsync_request *req, int *recreated)
{
	int32_t st = wsync_invoke(inst, call, which, req, recreated);
	/* req->operation: a 404 on an update made it a create */
	if (st != WSYNC_OK || call->provider_id || req->operation != WSYNC_OP_CREATE)
		return st;
	snprintf(call->message, sizeof call->message,
	         "plugin %s answered %s (create) with success but no provider id"
	         " (set_provider_id was not called): the provider may hold an object wsync"
	         " cannot link, so it is not created again; check the provider and the plugin",
	         inst->desc->name, wsync_invoke_op_name(which));
	return call->status = WSYNC_E_CREATED_WITHOUT_ID;
}

/* A scheduled workout needs its workout on the provider first.  Nothing
 * else in this process or the cluster works on that workout meanwhile (the
 * claim and the engine's keys see to it), so the loaded link is current. */
static int32_t ensure_workout_linked(wsync_plugin_instance *inst, wsync_call *call,
                                     wsync_job *j, const entities *v)
{
	wsync_request req;
	int32_t st;
	if (j->workout_link)
		return WSYNC_OK;
	base_request(&req, j, v, WSYNC_OP_CREATE);
	req.scheduled = NULL;
	/* The schedule's intent covers this call too: reconcile it alike. */
	req.external_key = j->sched_workout_id;
	st = invoke_sync(inst, call, WSYNC_INVOKE_SYNC_WORKOUT, &req, NULL);
	if (st == WSYNC_OK) {
		if (!(j->res.workout_link = strdup(call->provider_id)) ||
		    !(j->workout_link = strdup(call->provider_id)))
			return fail(&j->res, WSYNC_E_UNEXPECTED, "out of memory");
		wsync_info("Synced %s workout %s first for scheduled workout %s",
		           j->entry.provider, j->sched_workout_id, j->entry.entity_id);
	} else if (st != WSYNC_NOT_APPLICABLE) {
		take_answer(&j->res, call, st);
		snprintf(j->res.message, sizeof j->res.message, "syncing its workout first: %.990s",
		         call->message);
	}
	return j->res.status;
}

int wsync_dispatch_may_call(const wsync_job *j)
{
	return !is_delete(&j->entry) || (is_workout(&j->entry) ? j->workout_link : j->sched_link);
}

static void run_delete(wsync_plugin_instance *inst, wsync_call *call, wsync_job *j,
                       const entities *v)
{
	wsync_request req;
	int32_t st;
	if (!wsync_dispatch_may_call(j)) {
		j->res.status = WSYNC_NOT_APPLICABLE; /* never synced there */
		return;
	}
	base_request(&req, j, v, WSYNC_OP_DELETE);
	/* a 404 is success there: already gone, which is what we wanted */
	st = wsync_invoke(inst, call, is_workout(&j->entry) ? WSYNC_INVOKE_DELETE_WORKOUT
	                  : WSYNC_INVOKE_DELETE_SCHEDULED_WORKOUT, &req, NULL);
	j->res.link = st == WSYNC_OK ? LINK_DROP : LINK_KEEP;
	take_answer(&j->res, call, st);
}

static void run_sync(wsync_plugin_instance *inst, wsync_call *call, wsync_job *j,
                     const entities *v)
{
	int workout = is_workout(&j->entry);
	const char *own = workout ? j->workout_link : j->sched_link;
	wsync_request req;
	int recreated;
	int32_t st;

	/* Create of something linked is an update: no duplicate after a crash
	 * between the provider call and our commit.  An update answered 404 is
	 * repeated as a create by wsync_invoke: the old link goes. */
	base_request(&req, j, v, own ? WSYNC_OP_UPDATE : WSYNC_OP_CREATE);
	st = invoke_sync(inst, call, workout ? WSYNC_INVOKE_SYNC_WORKOUT
	                 : WSYNC_INVOKE_SYNC_SCHEDULED_WORKOUT, &req, &recreated);
	if (recreated)
		j->res.link = LINK_DROP;
	if (st == WSYNC_OK && call->provider_id) {
		j->res.relinked = j->res.link == LINK_DROP && workout;
		j->res.link = LINK_SET;
		if (!(j->res.provider_id = strdup(call->provider_id)))
			st = WSYNC_E_UNEXPECTED;
	}
	take_answer(&j->res, call, st);
}

/* An auth_error that ends an entry: whatever refused the credentials (a 401
 * that stands after a refresh, a 403 or 412, a refused refresh, no refresh
 * endpoint, the plugin's own verdict), only the user can fix it by
 * connecting again.  The outcome flags the token so the application can ask
 * for that, and the message says so. */
static void needs_reconnect(wsync_job *j)
{
	char msg[sizeof j->res.message];
	j->res.mark_reconnect = 1;
	if (!strstr(j->res.message, "must reconnect")) {
		snprintf(msg, sizeof msg, "the user must reconnect %s: %s", j->entry.provider,
		         j->res.message[0] ? j->res.message : "credentials refused");
		memcpy(j->res.message, msg, sizeof msg);
	}
}

void wsync_dispatch_call(wsync_plugin_instance *inst, const wsync_call_env *env, wsync_job *j)
{
	wsync_call call;
	entities v;

	entities_of(j, &v);
	wsync_call_init(&call, inst);
	call.http = env->http;
	call.pool = env->pool;
	call.limiter = env->limiter;
	call.user_id = j->entry.user_id;
	call.token = &j->token;
	call.rate_budget = &j->rate_budget;
	if (is_delete(&j->entry))
		run_delete(inst, &call, j, &v);
	else if (is_workout(&j->entry) || ensure_workout_linked(inst, &call, j, &v) == WSYNC_OK)
		run_sync(inst, &call, j, &v);
	if (j->res.status == WSYNC_E_AUTH)
		needs_reconnect(j);
	j->res.refreshed = call.refreshed;
	j->res.sent = call.requests > 0;
	j->res.plugin_died = call.plugin_died;
	/* The message goes to the log and the queue row: no secret in it. */
	wsync_call_redact(&call, j->res.message);
	wsync_call_clean(&call);
}
