/*
 * invoke.c -- one plugin operation, as wsyncd calls it (see invoke.h).
 */
#include "invoke.h"

#include "common/log.h"
#include "isolate.h"

#include <pthread.h>
#include <stdio.h>

static const char *const op_names[] = {"sync_workout", "sync_scheduled_workout",
                                       "delete_workout", "delete_scheduled_workout"};

static wsync_operation_fn operation(const wsync_plugin *d, int which)
{
	switch (which) {
	case WSYNC_INVOKE_SYNC_WORKOUT: return d->sync_workout;
	case WSYNC_INVOKE_SYNC_SCHEDULED_WORKOUT: return d->sync_scheduled_workout;
	case WSYNC_INVOKE_DELETE_WORKOUT: return d->delete_workout;
	default: return d->delete_scheduled_workout;
	}
}

const char *wsync_invoke_op_name(int which)
{
	return which >= 0 && which < (int)(sizeof op_names / sizeof op_names[0])
	       ? op_names[which] : "?";
}

int32_t wsync_invoke_once(wsync_plugin_instance *inst, wsync_call *call, int which,
                          const wsync_request *req)
{
	int serial = (inst->desc->flags & WSYNC_PLUGIN_SERIAL) != 0;
	const wsync_plugin_instance *outer = wsync_current_instance;
	wsync_operation_fn op = operation(inst->desc, which);
	int32_t st;
	wsync_call_reset_outcome(call);
	if (inst->child)
		return call->status = wsync_child_call(inst->child, call, which, req);
	if (serial)
		pthread_mutex_lock(&inst->serial_lock);
	wsync_current_instance = inst; /* a crash in there names the plugin */
	st = op(inst->state, call, req);
	wsync_current_instance = outer;
	if (serial)
		pthread_mutex_unlock(&inst->serial_lock);
	/* The returned status wins; the recorded message explains it. */
	call->status = st;
	return st;
}

int32_t wsync_invoke(wsync_plugin_instance *inst, wsync_call *call, int which,
                     wsync_request *req, int *recreated)
{
	int is_delete = which == WSYNC_INVOKE_DELETE_WORKOUT ||
	                which == WSYNC_INVOKE_DELETE_SCHEDULED_WORKOUT;
	int32_t st;

	if (recreated)
		*recreated = 0;
	if (which < WSYNC_INVOKE_SYNC_WORKOUT || which > WSYNC_INVOKE_DELETE_SCHEDULED_WORKOUT) {
		wsync_call_reset_outcome(call);
		snprintf(call->message, sizeof call->message, "unknown operation %d", which);
		return call->status = WSYNC_E_UNEXPECTED;
	}
	req->host = wsync_instance_host(inst);
	req->instance = inst;
	st = wsync_invoke_once(inst, call, which, req);
	if (st == WSYNC_E_NOT_FOUND && is_delete) {
		st = call->status = WSYNC_OK; /* already gone: that is what we wanted */
	} else if (st == WSYNC_E_NOT_FOUND && req->operation == WSYNC_OP_UPDATE) {
		/* The linked object vanished on the provider: create it again. */
		wsync_info("%s %s %s: linked object gone on the provider, creating it again",
		           req->provider, which == WSYNC_INVOKE_SYNC_WORKOUT ? "workout"
		           : "scheduled_workout", req->external_key ? req->external_key : "?");
		if (which == WSYNC_INVOKE_SYNC_WORKOUT)
			req->workout_provider_id = NULL;
		else
			req->scheduled_provider_id = NULL;
		req->operation = WSYNC_OP_CREATE;
		if (recreated)
			*recreated = 1;
		st = wsync_invoke_once(inst, call, which, req);
	}
	if (st != WSYNC_OK && st != WSYNC_NOT_APPLICABLE && !call->message[0])
		snprintf(call->message, sizeof call->message,
		         "plugin %s returned status %d without a message (%s)", inst->desc->name,
		         st, op_names[which]);
	return st;
}
