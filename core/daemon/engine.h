/*
 * engine.h -- wsyncd's drain loop: worker threads, wake-ups, reloads.
 *
 * Each worker thread has its own PostgreSQL connection and HTTP client,
 * claims a batch, dispatches each entry and records the outcome.  The main
 * thread LISTENs on channel `wsync_queue` and wakes the workers on NOTIFY,
 * at the earliest next_retry_at, and every interval_minutes as a fallback.
 */
#ifndef WSYNC_ENGINE_H
#define WSYNC_ENGINE_H

#include "common/config.h"

typedef struct wsync_engine wsync_engine;

/* Takes ownership of cfg.  `config_path` is re-read on reload. */
wsync_engine *wsync_engine_new(wsync_config *cfg, const char *config_path);
void wsync_engine_free(wsync_engine *e);

/*
 * Run until stopped (or, with once, until nothing is due).  Returns the
 * process exit code: 0 ok, 1 database unreachable (once) or fatal error.
 */
int wsync_engine_run(wsync_engine *e, int once);

/* Async-signal-safe requests, for signal handlers. */
void wsync_engine_request_stop(wsync_engine *e);
void wsync_engine_request_reload(wsync_engine *e);

#endif
