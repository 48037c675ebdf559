#include "metrics.h"

#include "common/config.h"
#include "common/grow.h"
#include "host/dbpool.h"
#include "wsync/plugin.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds a scrape reuses the queue gauges: a scrape every few seconds by
 * several Prometheus servers costs the database one query at most. */
#define GAUGE_TTL_S 5

/* Upper bounds of the provider-call latency histogram, in seconds. */
static const double BUCKETS[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

typedef struct counter {           /* wsync_syncs_total{provider,operation,outcome} */
	char provider[64], operation[8], outcome[24];
	unsigned long long n;
} counter;

typedef struct per_provider {
	char provider[64];
	unsigned long long buckets[N_BUCKETS], calls, deferrals, refreshes, abandoned, died;
	double sum;
} per_provider;

struct wsync_metrics {
	pthread_mutex_t lock;          /* the counters: never held across I/O */
	pthread_mutex_t gauge_lock;    /* db, gauges: a scrape's query */
	counter *counters;
	size_t n_counters, cap_counters;
	per_provider *providers;
	size_t n_providers, cap_providers;
	unsigned long long db_reconnects;
	int db_ok, plugins_loaded;
	char *conninfo;
	PGconn *db;                    /* the gauges' connection */
	char *gauges;                  /* cached text of the queue gauges */
	time_t gauges_at;
	struct MHD_Daemon *http;
};

wsync_metrics *wsync_metrics_new(const char *conninfo)
{
	wsync_metrics *m = calloc(1, sizeof *m);
	if (!m || !(m->conninfo = strdup(conninfo ? conninfo : ""))) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->gauge_lock, NULL);
	return m;
}

void wsync_metrics_free(wsync_metrics *m)
{
	if (!m)
		return;
	if (m->http)
		MHD_stop_daemon(m->http);
	PQfinish(m->db);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->gauge_lock);
	free(m->counters);
	free(m->providers);
	free(m->gauges);
	free(m->conninfo);
	free(m);
}

/* The provider's slot (caller holds the lock); NULL when out of memory. */
static per_provider *provider_slot(wsync_metrics *m, const char *provider)
{
	for (size_t i = 0; i < m->n_providers; i++)
		if (!strcmp(m->providers[i].provider, provider))
			return &m->providers[i];
	if (wsync_grow((void **)&m->providers, &m->cap_providers, m->n_providers + 1,
	         sizeof *m->providers) < 0)
		return NULL;
	memset(&m->providers[m->n_providers], 0, sizeof *m->providers);
	snprintf(m->providers[m->n_providers].provider, sizeof m->providers->provider, "%s",
	         provider);
	return &m->providers[m->n_providers++];
}

static void count_outcome(wsync_metrics *m, const char *provider, const char *operation,
                          const char *outcome)
{
	counter *c;
	for (size_t i = 0; i < m->n_counters; i++) {
		c = &m->counters[i];
		if (!strcmp(c->provider, provider) && !strcmp(c->operation, operation) &&
		    !strcmp(c->outcome, outcome)) {
			c->n++;
			return;
		}
	}
	if (wsync_grow((void **)&m->counters, &m->cap_counters, m->n_counters + 1,
	         sizeof *m->counters) < 0)
		return;
	c = &m->counters[m->n_counters++];
	snprintf(c->provider, sizeof c->provider, "%s", provider);
	snprintf(c->operation, sizeof c->operation, "%s", operation);
	snprintf(c->outcome, sizeof c->outcome, "%s", outcome);
	c->n = 1;
}

void wsync_metrics_outcome(wsync_metrics *m, const char *provider, const char *operation,
                           const char *outcome, double call_seconds, unsigned flags)
{
	per_provider *p;
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	count_outcome(m, provider, operation, outcome);
	if ((p = provider_slot(m, provider))) {
		if (call_seconds >= 0) {
			for (size_t i = 0; i < N_BUCKETS; i++)
				if (call_seconds <= BUCKETS[i])
					p->buckets[i]++;
			p->calls++;
			p->sum += call_seconds;
		}
		p->deferrals += (flags & WSYNC_METRIC_DEFERRED) != 0;
		p->refreshes += (flags & WSYNC_METRIC_REFRESHED) != 0;
		p->abandoned += (flags & WSYNC_METRIC_ABANDONED) != 0;
		p->died += (flags & WSYNC_METRIC_PLUGIN_DIED) != 0;
	}
	pthread_mutex_unlock(&m->lock);
}

void wsync_metrics_db_reconnect(wsync_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->db_reconnects++;
	pthread_mutex_unlock(&m->lock);
}

void wsync_metrics_set_ready(wsync_metrics *m, int db_ok, int plugins_loaded)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->db_ok = db_ok;
	m->plugins_loaded = plugins_loaded;
	pthread_mutex_unlock(&m->lock);
}

/* ---- the queue gauges ---------------------------------------------------------- */

static const char GAUGES_SQL[] =
	"SELECT q.provider,"
	"  count(*) AS pending,"
	"  count(*) FILTER (WHERE q.next_retry_at <= now()"
	"    AND (q.locked_until IS NULL OR q.locked_until < now())) AS due,"
	"  count(*) FILTER (WHERE q.locked_until >= now()) AS in_flight,"
	"  count(*) FILTER (WHERE q.retry_count > 0) AS retrying,"
	"  coalesce(extract(epoch FROM now() - min(q.next_retry_at)"
	"    FILTER (WHERE q.next_retry_at <= now())), 0)::float8 AS oldest_due"
	" FROM workout_sync_queue q WHERE q.processed_at IS NULL GROUP BY q.provider"
	" UNION ALL"
	/* permanent failures of the last day: failed entries are history rows,
	 * and a day bounds the scan (processed index) */
	" SELECT provider, -count(*), 0, 0, 0, 0 FROM workout_sync_queue"
	" WHERE processed_at > now() - interval '1 day' AND error_type IS NOT NULL"
	" GROUP BY provider";

static void gauge_rows(FILE *f, PGresult *r)
{
	static const char *const states[] = {"pending", "due", "in_flight", "retrying"};
	fprintf(f, "# HELP wsync_queue_entries Queue entries by provider and state "
	           "(failed: permanent failures of the last 24 hours).\n"
	           "# TYPE wsync_queue_entries gauge\n");
	for (int i = 0; i < PQntuples(r); i++) {
		long long first = atoll(PQgetvalue(r, i, 1));
		if (first < 0) {
			fprintf(f, "wsync_queue_entries{provider=\"%s\",state=\"failed\"} %lld\n",
			        PQgetvalue(r, i, 0), -first);
			continue;
		}
		for (int s = 0; s < 4; s++)
			fprintf(f, "wsync_queue_entries{provider=\"%s\",state=\"%s\"} %s\n",
			        PQgetvalue(r, i, 0), states[s], PQgetvalue(r, i, 1 + s));
	}
	fprintf(f, "# HELP wsync_queue_oldest_due_age_seconds Age of the oldest entry due "
	           "and not yet taken, by provider.\n"
	           "# TYPE wsync_queue_oldest_due_age_seconds gauge\n");
	for (int i = 0; i < PQntuples(r); i++)
		if (atoll(PQgetvalue(r, i, 1)) >= 0)
			fprintf(f, "wsync_queue_oldest_due_age_seconds{provider=\"%s\"} %s\n",
			        PQgetvalue(r, i, 0), PQgetvalue(r, i, 5));
}

static void provider_rows(FILE *f, PGresult *served, PGresult *reconnect)
{
	fprintf(f, "# HELP wsync_provider_served 1 when some wsyncd serves the provider; "
	           "0 with the reason otherwise.\n# TYPE wsync_provider_served gauge\n");
	for (int i = 0; served && i < PQntuples(served); i++) {
		const char *reason = PQgetisnull(served, i, 1) ? "" : PQgetvalue(served, i, 1);
		fprintf(f, "wsync_provider_served{provider=\"%s\",reason=\"", PQgetvalue(served, i, 0));
		for (const char *p = reason; *p; p++) /* label value escaping */
			fprintf(f, "%s", *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : *p == '\n' ? "\\n"
			                 : (char[]){*p, 0});
		fprintf(f, "\"} %d\n", *reason ? 0 : 1);
	}
	fprintf(f, "# HELP wsync_users_needing_reconnect Users whose token was refused for "
	           "good, by provider.\n# TYPE wsync_users_needing_reconnect gauge\n");
	for (int i = 0; reconnect && i < PQntuples(reconnect); i++)
		fprintf(f, "wsync_users_needing_reconnect{provider=\"%s\"} %s\n",
		        PQgetvalue(reconnect, i, 0), PQgetvalue(reconnect, i, 1));
}

static PGresult *tuples(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		return r;
	PQclear(r);
	return NULL;
}

/* Refresh the cached gauge text when stale (caller holds gauge_lock, not
 * lock: the query may wait on the database, the call threads must not). */
static void refresh_gauges(wsync_metrics *m)
{
	PGresult *q, *served, *reconnect;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	if (m->gauges && time(NULL) - m->gauges_at < GAUGE_TTL_S)
		return;
	if (!m->db || PQstatus(m->db) != CONNECTION_OK) {
		PQfinish(m->db);
		m->db = wsync_db_connect(m->conninfo, "wsyncd metrics");
	}
	if (PQstatus(m->db) != CONNECTION_OK || !(q = tuples(m->db, GAUGES_SQL)))
		return; /* keep the last values; /readyz tells the database is away */
	served = tuples(m->db, "SELECT provider, reason FROM wsync_provider_state ORDER BY 1");
	reconnect = tuples(m->db, "SELECT provider, count(*) FROM provider_tokens"
	                          " WHERE needs_reconnect GROUP BY provider ORDER BY 1");
	if ((f = open_memstream(&text, &len))) {
		gauge_rows(f, q);
		provider_rows(f, served, reconnect);
		fclose(f);
		free(m->gauges);
		m->gauges = text;
		m->gauges_at = time(NULL);
	}
	PQclear(q);
	PQclear(served);
	PQclear(reconnect);
}

/* ---- the text format ------------------------------------------------------------ */

static void counter_rows(FILE *f, const wsync_metrics *m)
{
	fprintf(f, "# HELP wsync_syncs_total Entries finished, by provider, operation and "
	           "outcome (ok, not_applicable or the error_type).\n"
	           "# TYPE wsync_syncs_total counter\n");
	for (size_t i = 0; i < m->n_counters; i++)
		fprintf(f, "wsync_syncs_total{provider=\"%s\",operation=\"%s\",outcome=\"%s\"} %llu\n",
		        m->counters[i].provider, m->counters[i].operation, m->counters[i].outcome,
		        m->counters[i].n);
}

static void histogram_rows(FILE *f, const wsync_metrics *m)
{
	fprintf(f, "# HELP wsync_provider_call_duration_seconds Time in the plugin's "
	           "operation (its provider calls), by provider.\n"
	           "# TYPE wsync_provider_call_duration_seconds histogram\n");
	for (size_t i = 0; i < m->n_providers; i++) {
		const per_provider *p = &m->providers[i];
		for (size_t b = 0; b < N_BUCKETS; b++)
			fprintf(f, "wsync_provider_call_duration_seconds_bucket{provider=\"%s\","
			           "le=\"%g\"} %llu\n", p->provider, BUCKETS[b], p->buckets[b]);
		fprintf(f, "wsync_provider_call_duration_seconds_bucket{provider=\"%s\",le=\"+Inf\"} "
		           "%llu\n", p->provider, p->calls);
		fprintf(f, "wsync_provider_call_duration_seconds_sum{provider=\"%s\"} %.6f\n",
		        p->provider, p->sum);
		fprintf(f, "wsync_provider_call_duration_seconds_count{provider=\"%s\"} %llu\n",
		        p->provider, p->calls);
	}
}

static void per_provider_counter(FILE *f, const wsync_metrics *m, const char *name,
                                 const char *help, size_t offset)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < m->n_providers; i++)
		fprintf(f, "%s{provider=\"%s\"} %llu\n", name, m->providers[i].provider,
		        *(const unsigned long long *)((const char *)&m->providers[i] + offset));
}

static char *render(wsync_metrics *m, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	if (!f)
		return NULL;
	pthread_mutex_lock(&m->gauge_lock);
	refresh_gauges(m);
	pthread_mutex_lock(&m->lock);
	fprintf(f, "# HELP wsync_build_info wsync's version and plugin ABI.\n"
	           "# TYPE wsync_build_info gauge\n"
	           "wsync_build_info{version=\"%s\",abi=\"%d.%d\"} 1\n", WSYNC_VERSION,
	        WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR);
	counter_rows(f, m);
	histogram_rows(f, m);
	per_provider_counter(f, m, "wsync_rate_limit_deferrals_total",
	                     "Entries deferred by wsync's own rate limiter.",
	                     offsetof(per_provider, deferrals));
	per_provider_counter(f, m, "wsync_token_refreshes_total",
	                     "Entries whose calls refreshed the user's token.",
	                     offsetof(per_provider, refreshes));
	per_provider_counter(f, m, "wsync_plugin_abandoned_entries_total",
	                     "Entries failed because the process died inside their plugin "
	                     "call 3 times (plugin crashes).",
	                     offsetof(per_provider, abandoned));
	per_provider_counter(f, m, "wsync_plugin_process_deaths_total",
	                     "Entries whose call was inside their plugin's process when it "
	                     "crashed or was killed for a hang ([plugins] isolate).",
	                     offsetof(per_provider, died));
	fprintf(f, "# HELP wsync_db_reconnects_total Database connections opened again after "
	           "losing one.\n# TYPE wsync_db_reconnects_total counter\n"
	           "wsync_db_reconnects_total %llu\n", m->db_reconnects);
	fprintf(f, "# HELP wsync_ready 1 when the database answers and a plugin is loaded.\n"
	           "# TYPE wsync_ready gauge\nwsync_ready %d\n", m->db_ok && m->plugins_loaded);
	pthread_mutex_unlock(&m->lock);
	if (m->gauges)
		fputs(m->gauges, f);
	pthread_mutex_unlock(&m->gauge_lock);
	fclose(f);
	return text;
}

/* ---- HTTP ------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_len, void **state)
{
	wsync_metrics *m = cls;
	static const char text[] = "text/plain; charset=utf-8";
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, 405, text, (char *)"only GET\n", 9, MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/metrics")) {
		size_t len = 0;
		char *body = render(m, &len);
		if (!body)
			return reply(c, 500, text, (char *)"out of memory\n", 14, MHD_RESPMEM_PERSISTENT);
		return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len,
		             MHD_RESPMEM_MUST_FREE);
	}
	if (!strcmp(url, "/healthz"))
		return reply(c, 200, text, (char *)"ok\n", 3, MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/readyz")) {
		int db, plugins;
		pthread_mutex_lock(&m->lock);
		db = m->db_ok;
		plugins = m->plugins_loaded;
		pthread_mutex_unlock(&m->lock);
		if (db && plugins)
			return reply(c, 200, text, (char *)"ready\n", 6, MHD_RESPMEM_PERSISTENT);
		return reply(c, 503, text, !db ? (char *)"not ready: the database does not answer\n"
		                               : (char *)"not ready: no plugin is loaded\n",
		             !db ? 40 : 31, MHD_RESPMEM_PERSISTENT);
	}
	return reply(c, 404, text, (char *)"not found: /metrics, /healthz, /readyz\n", 39,
	             MHD_RESPMEM_PERSISTENT);
}

int wsync_metrics_start(wsync_metrics *m, const char *listen, char *err, size_t errlen)
{
	char host[64];
	int port;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	memset(&ss, 0, sizeof ss);
	if (wsync_parse_listen(listen, host, sizeof host, &port) < 0) {
		snprintf(err, errlen, "[metrics] listen = '%s': expected HOST:PORT", listen);
		return -1;
	}
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &a->sin6_addr);
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &a->sin_addr);
	}
	m->http = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, m,
	                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	                           MHD_OPTION_CONNECTION_LIMIT, 16u,
	                           MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!m->http) {
		snprintf(err, errlen, "[metrics] listen = '%s': cannot listen there (in use, or "
		         "not an address of this host)", listen);
		return -1;
	}
	info = MHD_get_daemon_info(m->http, MHD_DAEMON_INFO_BIND_PORT);
	return info ? (int)info->port : port;
}
