/*
 * host.h -- the wsync_host services table and the per-call context behind
 * the plugin's opaque `wsync_call *`.
 */
#ifndef WSYNC_HOST_H
#define WSYNC_HOST_H

#include "dbpool.h"
#include "http.h"
#include "oauth.h"
#include "plugin_loader.h"
#include "ratelimit.h"
#include "wsync/plugin.h"

#include <libpq-fe.h>

/* Calls that would wait longer than this for the rate limiter are deferred
 * (the entry goes back to the queue, no retry used) instead of sleeping. */
#define WSYNC_RATE_SLEEP_MAX_MS 5000

struct wsync_call {
	wsync_plugin_instance *inst;
	wsync_http_client *http;       /* the worker's, keep-alive */
	PGconn *db;                    /* for token refresh and the cluster-wide
	                                  limiter; NULL: borrow from pool */
	struct wsync_dbpool *pool;     /* NULL with db NULL: no refresh, and
	                                  the limiter is this process's */
	wsync_ratelimiter *limiter;    /* NULL: no limits */
	int *rate_budget;              /* calls granted in advance (the daemon's
	                                  batch grant): spent before asking */
	const char *user_id;
	wsync_token *token;            /* access token in use; refreshed here */
	wsync_http_result result;      /* last answer (body owned by http) */
	int refreshed;                 /* one refresh per operation */
	int deferred;                  /* the limiter asked for a long wait */
	int requests;                  /* HTTP requests handed to libcurl during
	                                  the operation: 0 means nothing of it
	                                  can have reached the provider */
	int plugin_died;               /* the plugin's process crashed or was
	                                  killed during the call (isolate.h) */
	/* outcome */
	int32_t status;
	int64_t retry_after_s;
	char message[1024];
	char *provider_id;             /* malloc'ed; set_provider_id */
	/* what the ABI 1.1 helpers hand the plugin (host/helpers.c): freed by
	 * wsync_call_clean */
	struct wsync_call_owned *owned;
};

/* The message of an entry deferred by wsync's own limiter, into msg. */
void wsync_rate_deferral_message(char *msg, size_t len, const char *provider,
                                 const wsync_provider_config *p);

/* The table handed to every plugin's init(). */
const wsync_host *wsync_host_services(void);

/* Prepare / clean a call context (zeroed outcome).  Between the two, the
 * context is this thread's current call: the plugin's log lines are masked
 * with its tokens. */
void wsync_call_init(wsync_call *call, wsync_plugin_instance *inst);
void wsync_call_reset_outcome(wsync_call *call);
void wsync_call_clean(wsync_call *call);

/* The ABI 1.1 helper services (host/helpers.c), filled into `h`. */
void wsync_host_helpers(wsync_host *h);
/* Free what the helpers handed out on this call (wsync_call_clean). */
void wsync_call_free_owned(wsync_call *call);
/* Make `s` one line of valid UTF-8 in place (control bytes become spaces,
 * invalid bytes '?'): what every recorded message goes through. */
void wsync_clean_message(char *s, size_t size);

/* Mask the call's access and refresh tokens, the instance's client secret
 * and anything shaped like a credential in s, in place (wsync_redact).
 * Messages recorded through the host (http, set_error) and plugin log lines
 * are masked already. */
void wsync_call_redact(const wsync_call *call, char *s);

/* HTTP settings of the call's instance.  The User-Agent is
 * "wsync/<version>"; a provider that wants its own form (TrainingPeaks:
 * "<client_id>/<version>") gets it from the plugin, whose explicit
 * User-Agent request header replaces this one. */
void wsync_call_settings(const wsync_call *call, wsync_http_settings *s,
                         char *ua, size_t ualen);

#endif
