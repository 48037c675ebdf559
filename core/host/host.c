/*
 * host.c -- services the core offers plugins (wsync_host), and the HTTP path
 * every provider call takes: rate limiter, token (refreshed when expired or
 * answered 401), libcurl, classification.
 */
#include "host.h"

#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The database limiter failed (connection lost, migration 0003 missing):
 * say so at most once a minute; the call falls back to this process's
 * limiter. */
static void rate_db_warning(const char *why)
{
	static _Atomic int64_t last;
	int64_t now = now_s(), prev = atomic_load(&last);
	if (now - prev < 60 || !atomic_compare_exchange_strong(&last, &prev, now))
		return;
	wsync_warn("rate limiter: the database could not answer (%.*s); limits hold "
	           "per wsyncd process until it does", (int)strcspn(why, "\n"), why);
}

/* The call context in use on this thread (wsync_call_init to
 * wsync_call_clean): host_log masks its tokens, which it is not handed. */
static _Thread_local const wsync_call *current_call;

/* Mask the call's access and refresh tokens and the instance's client
 * secret in s (in place), plus whatever looks like a credential: a
 * provider may echo any of them in an answer a plugin logs or reports. */
static void redact(const wsync_plugin_instance *inst, const wsync_call *call, char *s)
{
	const char *secrets[3] = {NULL, NULL, NULL};
	if (call && call->token) {
		secrets[0] = call->token->access_token;
		secrets[1] = call->token->refresh_token;
	}
	if (inst && inst->cfg)
		secrets[2] = inst->cfg->client_secret;
	wsync_redact(s, secrets, 3);
}

void wsync_call_redact(const wsync_call *call, char *s)
{
	redact(call ? call->inst : NULL, call, s);
}

static void log_line(int32_t level, const char *prefix, const char *fmt, ...)
	WSYNC_PRINTF(3, 4);

static void log_line(int32_t level, const char *prefix, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wsync_vlog(level, prefix, fmt, ap);
	va_end(ap);
}

static void host_log(const wsync_instance *inst, int32_t level, const char *fmt, ...)
{
	char line[2048];
	const wsync_call *call = current_call && current_call->inst == inst ? current_call : NULL;
	va_list ap;
	/* A plugin's debug line per call is formatted and masked only when it
	 * will be written: that cost more than the call's own request. */
	if (level < wsync_log_level())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	redact(inst, call, line);
	log_line(level, inst ? inst->name : "plugin", "%s", line);
}

static const char *host_config_string(const wsync_instance *inst, const char *section,
                                      const char *key)
{
	return wsync_instance_config_string(inst, section, key);
}

static int64_t host_config_int(const wsync_instance *inst, const char *section,
                               const char *key, int64_t fallback)
{
	const char *v = wsync_instance_config_string(inst, section, key);
	long long x;
	return v && wsync_parse_int(v, INT64_MIN, INT64_MAX, &x) == 0 ? x : fallback;
}

static int32_t host_config_bool(const wsync_instance *inst, const char *section,
                                const char *key, int32_t fallback)
{
	const char *v = wsync_instance_config_string(inst, section, key);
	int b;
	return v && wsync_parse_bool(v, &b) == 0 ? b : fallback;
}

static int32_t host_set_error(wsync_call *call, int32_t status, int64_t retry_after_s,
                              const char *fmt, ...)
{
	va_list ap;
	call->status = status;
	call->retry_after_s = retry_after_s;
	va_start(ap, fmt);
	vsnprintf(call->message, sizeof call->message, fmt, ap);
	va_end(ap);
	redact(call->inst, call, call->message);
	/* One line of valid UTF-8 whatever the plugin put in (a provider's
	 * body, say): it goes into a text column and the log. */
	wsync_clean_message(call->message, sizeof call->message);
	return status;
}

static void host_set_provider_id(wsync_call *call, const char *id)
{
	free(call->provider_id);
	call->provider_id = id ? strdup(id) : NULL;
}

static char *host_base64(const void *data, size_t len)
{
	return wsync_base64_encode(data, len);
}

static void host_free_string(char *s)
{
	free(s);
}

void wsync_call_settings(const wsync_call *call, wsync_http_settings *s, char *ua,
                         size_t ualen)
{
	const wsync_provider_config *p = call->inst->cfg;
	snprintf(ua, ualen, "wsync/%s", WSYNC_VERSION);
	s->base_url = p->base_url ? p->base_url : "";
	s->ca_file = p->ca_file;
	s->connect_timeout_s = p->connect_timeout_s;
	s->timeout_s = p->timeout_s;
	s->user_agent = ua;
}

/* "{1,2,3}" from the windows' limits (or seconds). */
static void int_array(char *buf, size_t len, const wsync_rate_window *w, int n, int seconds)
{
	size_t used = 0;
	buf[used++] = '{';
	for (int i = 0; i < n && i < WSYNC_MAX_APP_WINDOWS && used + 14 < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%d", i ? "," : "",
		                         seconds ? w[i].seconds : w[i].limit);
	snprintf(buf + used, len - used, "}");
}

/*
 * The cluster-wide limiter: wsync_rate_take() (migrations/0003, per-user
 * windows of any length since 0009) on the
 * worker's connection, with the database's clock, so every wsyncd node on
 * this database shares the same windows.  Cost: one round trip and one small
 * commit per attempt to take a call, independent of the limits' size (two
 * index probes per window): measured 0.3 ms with the per-user window and
 * 0.6 ms with three app windows over a local unix socket
 * (tests/robustness/test_ratelimit_db.c prints it), plus the network round
 * trip to a remote server; next to a provider call of tens to hundreds of
 * milliseconds.  Must run outside a transaction block
 * (dispatch makes provider calls in autocommit), or its locks would be held
 * until that transaction ends.  Returns the wait in ms (0 = taken), or -1
 * when the database could not answer.
 */
/* The call's connection for one step: its own, or one borrowed from the
 * pool (give it back with call_db_done). */
static PGconn *call_db(const wsync_call *call)
{
	if (call->db)
		return call->db;
	return call->pool ? wsync_dbpool_acquire(call->pool) : NULL;
}

static void call_db_done(const wsync_call *call, PGconn *db)
{
	if (db && db != call->db)
		wsync_dbpool_release(call->pool, db);
}

static int64_t take_db(wsync_call *call, PGconn *db, const wsync_provider_config *p)
{
	char limits[WSYNC_MAX_APP_WINDOWS * 12 + 4], seconds[WSYNC_MAX_APP_WINDOWS * 12 + 4];
	char ulimits[WSYNC_MAX_APP_WINDOWS * 12 + 4], useconds[WSYNC_MAX_APP_WINDOWS * 12 + 4];
	const char *params[6] = {call->inst->name, call->user_id, limits, seconds,
	                         ulimits, useconds};
	PGresult *r;
	int64_t wait = -1;

	int_array(limits, sizeof limits, p->app_windows, p->n_app_windows, 0);
	int_array(seconds, sizeof seconds, p->app_windows, p->n_app_windows, 1);
	int_array(ulimits, sizeof ulimits, p->user_windows, p->n_user_windows, 0);
	int_array(useconds, sizeof useconds, p->user_windows, p->n_user_windows, 1);
	/* Every per-user window in the arrays (migrations/0009), none as the
	 * old per-minute argument. */
	r = PQexecParams(db, "SELECT wsync_rate_take($1, $2::uuid, 0, $3::int[], $4::int[],"
	                 " NULL, $5::int[], $6::int[])", 6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		wait = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		rate_db_warning(PQerrorMessage(db));
	PQclear(r);
	return wait;
}

/* "30/1m, 1000/1d": the windows as written in user_rate_limits. */
static void describe_windows(char *buf, size_t len, const wsync_rate_window *w, int n)
{
	static const struct { int secs; char unit; } units[] = {
		{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; i < n && used + 1 < len; i++)
		for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
			if (w[i].seconds % units[u].secs == 0) {
				int k = snprintf(buf + used, len - used, "%s%d/%d%c", i ? ", " : "",
				                 w[i].limit, w[i].seconds / units[u].secs, units[u].unit);
				used = k < 0 ? len : used + (size_t)k;
				break;
			}
	if (used >= len)
		buf[len - 1] = '\0';
}

void wsync_rate_deferral_message(char *msg, size_t len, const char *provider,
                                 const wsync_provider_config *p)
{
	char windows[WSYNC_MAX_APP_WINDOWS * 24 + 1];
	describe_windows(windows, sizeof windows, p->user_windows, p->n_user_windows);
	snprintf(msg, len, "deferred by wsync's own rate limit for %s (per user %s%s)", provider,
	         windows, p->n_app_windows ? "; app_rate_limits" : "");
}

/* Wait for the rate limiter; 0 when the call may go, -1 when deferred.
 * With a database the limits hold for the cluster (take_db); without one,
 * or when the database cannot answer, for this process (ratelimit.c). */
static int rate_limit(wsync_call *call)
{
	const wsync_provider_config *p = call->inst->cfg;
	int64_t wait;
	if (!call->limiter && !call->db && !call->pool)
		return 0;
	if (p->n_user_windows == 0 && p->n_app_windows == 0)
		return 0;
	if (call->rate_budget && *call->rate_budget > 0) {
		(*call->rate_budget)--; /* granted with its batch: no round trip */
		return 0;
	}
	for (;;) {
		PGconn *db = call->user_id ? call_db(call) : NULL;
		wait = db ? take_db(call, db, p) : -1;
		call_db_done(call, db);
		if (wait < 0 && call->limiter)
			wait = wsync_ratelimit_try_windows(call->limiter, call->inst->name,
			                                   call->user_id, p->user_windows,
			                                   p->n_user_windows, p->app_windows,
			                                   p->n_app_windows, now_ms());
		if (wait <= 0)
			return 0;
		if (wait > WSYNC_RATE_SLEEP_MAX_MS) {
			char msg[sizeof call->message];
			call->deferred = 1;
			wsync_rate_deferral_message(msg, sizeof msg, call->inst->name, p);
			host_set_error(call, WSYNC_E_RATE_LIMIT, (wait + 999) / 1000, "%s", msg);
			return -1;
		}
		struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

static int32_t refresh(wsync_call *call)
{
	char msg[512];
	int32_t st;
	PGconn *db;
	if ((!call->db && !call->pool) || !call->token)
		return host_set_error(call, WSYNC_E_AUTH, 0, "token refused and no way to refresh it");
	if (!(db = call_db(call)))
		return host_set_error(call, WSYNC_E_PROVIDER, 60, "cannot refresh the token: the "
		                      "database is not reachable");
	call->refreshed = 1;
	st = wsync_oauth_refresh(db, call->http, call->inst->cfg, call->user_id,
	                         call->token->access_token, call->token, msg, sizeof msg,
	                         now_s());
	call_db_done(call, db);
	if (st != WSYNC_OK)
		return host_set_error(call, st, st == WSYNC_E_PROVIDER ? 60 : 0, "%s", msg);
	return WSYNC_OK;
}

static int token_expired(const wsync_call *call)
{
	const wsync_token *t = call->token;
	return t && t->expires_at > 0 && t->expires_at <= now_s() + 30;
}

/* What the plugin sees of the last answer, whatever the outcome. */
static void fill_response(const wsync_call *call, wsync_http_response *resp)
{
	if (!resp)
		return;
	resp->http_status = (int32_t)call->result.status;
	resp->body = call->result.body ? call->result.body : "";
	resp->body_len = call->result.body_len;
	resp->retry_after_s = call->result.retry_after_s;
}

static int32_t host_http(wsync_call *call, const wsync_http_request *req,
                         wsync_http_response *resp)
{
	wsync_http_settings s;
	char ua[128];
	int32_t st;

	memset(&call->result, 0, sizeof call->result);
	fill_response(call, resp);
	wsync_call_settings(call, &s, ua, sizeof ua);
	if (req->auth && !call->refreshed && token_expired(call) &&
	    (st = refresh(call)) != WSYNC_OK)
		return st;
	for (;;) {
		const char *bearer = req->auth && call->token ? call->token->access_token : NULL;
		if (rate_limit(call) < 0)
			return call->status;
		call->requests++;
		wsync_http_perform(call->http, &s, req, bearer, &call->result, now_s());
		fill_response(call, resp);
		if (call->result.status == 401 && req->auth && !call->refreshed) {
			if ((st = refresh(call)) != WSYNC_OK)
				return st; /* resp still shows the 401 */
			continue;
		}
		break;
	}
	st = wsync_http_classify(req, &call->result, call->message, sizeof call->message,
	                         &call->retry_after_s);
	redact(call->inst, call, call->message);
	call->status = st;
	return st;
}

static wsync_host services = {
	.struct_size = sizeof(wsync_host),
	.abi_major = WSYNC_PLUGIN_ABI_MAJOR,
	.abi_minor = WSYNC_PLUGIN_ABI_MINOR,
	.host_version = WSYNC_VERSION,
	.log = host_log,
	.config_get_string = host_config_string,
	.config_get_int = host_config_int,
	.config_get_bool = host_config_bool,
	.http = host_http,
	.set_error = host_set_error,
	.set_provider_id = host_set_provider_id,
	.now = now_s,
	.base64_encode = host_base64,
	.free_string = host_free_string,
};

static pthread_once_t services_once = PTHREAD_ONCE_INIT;

static void services_fill(void)
{
	wsync_host_helpers(&services);
}

const wsync_host *wsync_host_services(void)
{
	pthread_once(&services_once, services_fill);
	return &services;
}

void wsync_call_init(wsync_call *call, wsync_plugin_instance *inst)
{
	memset(call, 0, sizeof *call);
	call->inst = inst;
	current_call = call;
}

void wsync_call_reset_outcome(wsync_call *call)
{
	call->status = WSYNC_OK;
	call->retry_after_s = 0;
	call->message[0] = 0;
	call->deferred = 0;
	free(call->provider_id);
	call->provider_id = NULL;
}

void wsync_call_clean(wsync_call *call)
{
	if (current_call == call)
		current_call = NULL;
	free(call->provider_id);
	call->provider_id = NULL;
	wsync_call_free_owned(call);
}
