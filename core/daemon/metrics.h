/*
 * metrics.h -- what wsyncd counts, and the HTTP endpoint that shows it.
 *
 * `[metrics] listen = HOST:PORT` serves, with libmicrohttpd:
 *   GET /metrics  Prometheus text format (0.0.4); names follow Prometheus
 *                 conventions (wsync_*_total counters, *_seconds units);
 *   GET /healthz  200 while the process runs;
 *   GET /readyz   200 when the database answers and a plugin is loaded,
 *                 else 503 with the reason.
 * Counters live in memory and are bumped by the engine's threads; the queue
 * gauges come from one query, cached for a few seconds, so scrapes cost the
 * database almost nothing.  docs/operators.md lists every series.
 *
 * Thread-safe.  Every string passed in is copied or only read during the
 * call.
 */
#ifndef WSYNC_DAEMON_METRICS_H
#define WSYNC_DAEMON_METRICS_H

#include <stddef.h>

typedef struct wsync_metrics wsync_metrics;

/* conninfo is copied (for the queue gauges).  NULL when out of memory. */
wsync_metrics *wsync_metrics_new(const char *conninfo);
/* Stops the endpoint first.  NULL is ignored. */
void wsync_metrics_free(wsync_metrics *m);

/* What else happened to an entry, for wsync_metrics_outcome. */
enum {
	WSYNC_METRIC_DEFERRED = 1,     /* wsync's own rate limiter deferred it */
	WSYNC_METRIC_REFRESHED = 2,    /* its calls refreshed the user's token */
	WSYNC_METRIC_ABANDONED = 4,    /* failed: wsyncd died inside its calls 3 times */
	WSYNC_METRIC_PLUGIN_DIED = 8   /* its plugin's process crashed or hung in it */
};

/* One entry's outcome: outcome is "ok", "not_applicable" or its error_type;
 * call_seconds the time in the plugin (< 0: no call was made); flags
 * WSYNC_METRIC_*. */
void wsync_metrics_outcome(wsync_metrics *m, const char *provider, const char *operation,
                           const char *outcome, double call_seconds, unsigned flags);
void wsync_metrics_db_reconnect(wsync_metrics *m);

/* What /readyz reports: both must hold. */
void wsync_metrics_set_ready(wsync_metrics *m, int db_ok, int plugins_loaded);

/* Serve on listen ("HOST:PORT"; port 0 = any free one).  Returns the port
 * bound, or -1 with the reason in err. */
int wsync_metrics_start(wsync_metrics *m, const char *listen, char *err, size_t errlen);

#endif
