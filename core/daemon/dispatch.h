/*
 * dispatch.h -- one loaded job through its plugin: checks, calls, result.
 *
 * No database here: the store loaded everything (store.h) and writes the
 * result.  A scheduled workout whose workout has no link on the provider
 * syncs the workout first; a create of something already linked becomes an
 * update; a delete answered 404 is success; an update answered 404 drops
 * the link and creates the object again.
 */
#ifndef WSYNC_DAEMON_DISPATCH_H
#define WSYNC_DAEMON_DISPATCH_H

#include "host/dbpool.h"
#include "host/http.h"
#include "host/plugin_loader.h"
#include "host/ratelimit.h"
#include "store.h"

/* What a call thread lends a call. */
typedef struct wsync_call_env {
	wsync_http_client *http;       /* the thread's, keep-alive */
	wsync_ratelimiter *limiter;    /* fallback when the database cannot answer */
	wsync_dbpool *pool;            /* token refresh, cluster-wide limiter */
} wsync_call_env;

/* The checks that need no provider call: the entity still exists, the user
 * is connected, the workout text parses (job->structure).  Returns WSYNC_OK
 * when the job needs its calls; otherwise job->res says why it ends. */
int32_t wsync_dispatch_prepare(wsync_job *job);

/* 0 when a prepared job certainly calls no provider: a delete of what was
 * never synced there (it succeeds without a call); 1 otherwise. */
int wsync_dispatch_may_call(const wsync_job *job);

/* Make the job's plugin calls (its intent is recorded) and fill job->res. */
void wsync_dispatch_call(wsync_plugin_instance *inst, const wsync_call_env *env,
                         wsync_job *job);

#endif
