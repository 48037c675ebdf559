/*
 * dispatch.h -- run one claimed entry through its plugin.
 *
 * Loads the entity (a scheduled workout with its workout), the user's token
 * and the stored links, parses workout_text, turns a create of something
 * already linked into an update, syncs a scheduled workout's workout first
 * when the provider has no link for it yet, calls the plugin operation and
 * reports the outcome.  Link changes are written by the caller in the same
 * transaction as the queue update.
 */
#ifndef WSYNC_DISPATCH_H
#define WSYNC_DISPATCH_H

#include "common/config.h"
#include "host/http.h"
#include "host/plugin_loader.h"
#include "queue.h"
#include "host/ratelimit.h"

#include <libpq-fe.h>

typedef struct wsync_worker {
	PGconn *db;
	wsync_http_client *http;
	wsync_ratelimiter *limiter;
	wsync_registry *registry;
	const wsync_config *cfg;
	char name[96];                 /* host:pid:wN */
} wsync_worker;

typedef enum { LINK_KEEP, LINK_SET, LINK_DROP } wsync_link_action;

typedef struct wsync_dispatch_result {
	int32_t status;                /* WSYNC_* or WSYNC_E_RECORD_GONE */
	int64_t retry_after_s;
	int deferred;                  /* our own limiter deferred it */
	char message[1024];
	wsync_link_action link;        /* for the entry's own entity */
	int relinked;                  /* a vanished workout was created again:
	                                  its schedules must follow the new id */
	char *provider_id;             /* LINK_SET: malloc'ed */
	int started;                   /* the intent was recorded: a plugin call
	                                  may have reached the provider, so the
	                                  outcome must be written, never dropped */
	int db_lost;                   /* the database failed before the call
	                                  started: give the entry back */
} wsync_dispatch_result;

void wsync_dispatch(wsync_worker *w, wsync_plugin_instance *inst,
                    const wsync_entry *e, wsync_dispatch_result *res);

/* Store or drop a link (caller's transaction).  Returns 0 or -1. */
int wsync_link_write(PGconn *db, const char *provider, const char *entity_type,
                     const char *entity_id, const char *user_id,
                     wsync_link_action action, const char *provider_id);

#endif
