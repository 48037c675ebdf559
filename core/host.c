/*
 * host.c -- services the core offers plugins (wsync_host), and the HTTP path
 * every provider call takes: rate limiter, token (refreshed when expired or
 * answered 401), libcurl, classification.
 */
#include "host.h"

#include "log.h"

#include <stdarg.h>
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

static void host_log(const wsync_instance *inst, int32_t level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wsync_vlog(level, inst ? inst->name : "plugin", fmt, ap);
	va_end(ap);
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

/* Wait for the rate limiter; 0 when the call may go, -1 when deferred. */
static int rate_limit(wsync_call *call)
{
	const wsync_provider_config *p = call->inst->cfg;
	int64_t wait;
	if (!call->limiter)
		return 0;
	while ((wait = wsync_ratelimit_try(call->limiter, call->inst->name, call->user_id,
	                                   p->rate_limit_per_minute, p->app_windows,
	                                   p->n_app_windows, now_ms())) > 0) {
		if (wait > WSYNC_RATE_SLEEP_MAX_MS) {
			call->deferred = 1;
			host_set_error(call, WSYNC_E_RATE_LIMIT, (wait + 999) / 1000,
			               "deferred by wsync's own rate limit for %s (%d per minute "
			               "per user)", call->inst->name, p->rate_limit_per_minute);
			return -1;
		}
		struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int32_t refresh(wsync_call *call)
{
	char msg[512];
	int32_t st;
	if (!call->db || !call->token)
		return host_set_error(call, WSYNC_E_AUTH, 0, "token refused and no way to refresh it");
	call->refreshed = 1;
	st = wsync_oauth_refresh(call->db, call->http, call->inst->cfg, call->user_id,
	                         call->token->access_token, call->token, msg, sizeof msg,
	                         now_s());
	if (st != WSYNC_OK)
		return host_set_error(call, st, st == WSYNC_E_PROVIDER ? 60 : 0, "%s", msg);
	return WSYNC_OK;
}

static int token_expired(const wsync_call *call)
{
	const wsync_token *t = call->token;
	return t && t->expires_at > 0 && t->expires_at <= now_s() + 30;
}

static int32_t host_http(wsync_call *call, const wsync_http_request *req,
                         wsync_http_response *resp)
{
	wsync_http_settings s;
	char ua[128];
	int32_t st;

	wsync_call_settings(call, &s, ua, sizeof ua);
	if (req->auth && !call->refreshed && token_expired(call) &&
	    (st = refresh(call)) != WSYNC_OK)
		return st;
	for (;;) {
		const char *bearer = req->auth && call->token ? call->token->access_token : NULL;
		if (rate_limit(call) < 0)
			return call->status;
		wsync_http_perform(call->http, &s, req, bearer, &call->result, now_s());
		if (call->result.status == 401 && req->auth && !call->refreshed) {
			if ((st = refresh(call)) != WSYNC_OK)
				return st;
			continue;
		}
		break;
	}
	st = wsync_http_classify(req, &call->result, call->message, sizeof call->message,
	                         &call->retry_after_s);
	call->status = st;
	if (resp) {
		resp->http_status = (int32_t)call->result.status;
		resp->body = call->result.body ? call->result.body : "";
		resp->body_len = call->result.body_len;
		resp->retry_after_s = call->result.retry_after_s;
	}
	return st;
}

static const wsync_host services = {
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

const wsync_host *wsync_host_services(void)
{
	return &services;
}

void wsync_call_init(wsync_call *call, wsync_plugin_instance *inst)
{
	memset(call, 0, sizeof *call);
	call->inst = inst;
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
	free(call->provider_id);
	call->provider_id = NULL;
}
