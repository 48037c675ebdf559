/*
 * invoke.h -- call one plugin operation the way wsyncd does.  The daemon's
 * dispatch (core/daemon/dispatch.c) and the SDK's test host
 * (core/sdk/testhost.c) both go through wsync_invoke(), so the test host
 * reports exactly what the daemon would classify.
 */
#ifndef WSYNC_HOST_INVOKE_H
#define WSYNC_HOST_INVOKE_H

#include "host.h"

/* Which operation of the descriptor (the test host's WSYNC_TESTHOST_*
 * numbers are the same). */
enum {
	WSYNC_INVOKE_SYNC_WORKOUT = 0,
	WSYNC_INVOKE_SYNC_SCHEDULED_WORKOUT = 1,
	WSYNC_INVOKE_DELETE_WORKOUT = 2,
	WSYNC_INVOKE_DELETE_SCHEDULED_WORKOUT = 3
};

/*
 * Call operation `which` of `inst` with `req` on `call` (prepared with
 * wsync_call_init).  req->host and req->instance are filled in here.
 * Every call: a fresh outcome, the instance's lock for WSYNC_PLUGIN_SERIAL
 * plugins, wsync_current_instance set (a crash names the plugin), and the
 * returned status wins over a recorded one.  Then the rules of plugin.h's
 * "404, 410" row:
 *   delete answered WSYNC_E_NOT_FOUND   -> WSYNC_OK (already gone);
 *   update answered WSYNC_E_NOT_FOUND   -> the entity's own link is
 *        cleared in req, req->operation becomes WSYNC_OP_CREATE and the
 *        operation is called again; *recreated (may be NULL) is set to 1;
 *   create answered WSYNC_E_NOT_FOUND   -> stays (provider_error).
 * An error status without a message gets "plugin X returned status N
 * without a message (operation)".  Returns the final status; the message,
 * retry-after and provider id are on the call.
 */
int32_t wsync_invoke(wsync_plugin_instance *inst, wsync_call *call, int which,
                     wsync_request *req, int *recreated);

/* One call of operation `which`, no rule applied: in the instance's child
 * process when it has one (isolate.h), else here, with the serial lock and
 * wsync_current_instance.  A fresh outcome; the returned status wins. */
int32_t wsync_invoke_once(wsync_plugin_instance *inst, wsync_call *call, int which,
                          const wsync_request *req);

/* "sync_workout", ... for messages; "?" out of range. */
const char *wsync_invoke_op_name(int which);

#endif
