/*
 * config.c -- read wsyncd.ini and conf.d/<name>.ini.
 *
 * One table (rows[] below) knows every core key; a small INI reader of our
 * own reads the files bounded.  Errors accumulate in cfg->errors so that
 * one `wsyncd --check` shows every mistake at once.
 */
#include "config.h"

#include "filetrust.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ---------------------------------------------------- */

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d) {
		fputs("wsync: out of memory\n", stderr);
		abort();
	}
	return d;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

void wsync_config_error(wsync_config *cfg, const char *fmt, ...)
{
	char line[1024];
	size_t old = cfg->errors ? strlen(cfg->errors) : 0;
	va_list ap;
	char *grown;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	grown = realloc(cfg->errors, old + strlen(line) + 2);
	if (!grown)
		return;
	memcpy(grown + old, line, strlen(line));
	grown[old + strlen(line)] = '\n';
	grown[old + strlen(line) + 1] = 0;
	cfg->errors = grown;
}

int wsync_config_ok(const wsync_config *cfg)
{
	return cfg && (!cfg->errors || !*cfg->errors);
}

const char *wsync_config_errors(const wsync_config *cfg)
{
	return cfg && cfg->errors ? cfg->errors : "";
}

/* ---- value parsers ---------------------------------------------------- */

int wsync_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

int wsync_parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int wsync_parse_duration(const char *s, int *out)
{
	char *end;
	long long v, mult = 1;
	while (*s == ' ' || *s == '\t')
		s++;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	switch (*end) {
	case 0: case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	default: return -1;
	}
	if (*end && end[1] && strspn(end + 1, " \t") != strlen(end + 1))
		return -1;
	if (v > INT_MAX / mult)
		return -1;
	*out = (int)(v * mult);
	return 0;
}

/* Split a comma list and hand each trimmed item to `fn`; an empty item
 * ("2m,,10m", a trailing comma) is an error, not skipped. */
static int each_item(const char *s, int (*fn)(const char *item, void *ctx),
                     void *ctx)
{
	char *buf = xstrdup(s), *tok = buf;
	int rc = 0;
	for (;;) {
		char *comma = strchr(tok, ',');
		char *start = tok, *end;
		if (comma)
			*comma = 0;
		end = start + strlen(start);
		while (*start == ' ' || *start == '\t')
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = 0;
		if (!*start || fn(start, ctx) < 0) {
			rc = -1;
			break;
		}
		if (!comma)
			break;
		tok = comma + 1;
	}
	free(buf);
	return rc;
}

struct list_ctx {
	void *out;
	int max, n;
};

static int backoff_item(const char *item, void *p)
{
	struct list_ctx *c = p;
	int v;
	if (c->n >= c->max || wsync_parse_duration(item, &v) < 0 || v <= 0)
		return -1;
	((int *)c->out)[c->n++] = v;
	return 0;
}

/* Both list parsers fill a scratch array and copy it out only when the
 * whole list is good: a bad line must not leave a half-written list (a
 * zero-second window) next to the count of the previous good one. */
int wsync_parse_backoff(const char *s, int *out, int max, int *n)
{
	int *tmp = calloc(max > 0 ? (size_t)max : 1, sizeof *tmp);
	struct list_ctx c = {tmp, max, 0};
	int rc = -1;
	if (!tmp)
		abort();
	if (each_item(s, backoff_item, &c) == 0 && c.n > 0) {
		memcpy(out, tmp, (size_t)c.n * sizeof *tmp);
		*n = c.n;
		rc = 0;
	}
	free(tmp);
	return rc;
}

static int window_item(const char *item, void *p)
{
	struct list_ctx *c = p;
	wsync_rate_window *w = (wsync_rate_window *)c->out + c->n;
	const char *slash = strchr(item, '/');
	char num[32];
	long long limit;
	if (!slash || c->n >= c->max || (size_t)(slash - item) >= sizeof num)
		return -1;
	memcpy(num, item, (size_t)(slash - item));
	num[slash - item] = 0;
	if (wsync_parse_int(num, 1, 1000000000, &limit) < 0)
		return -1;
	/* "200/5m": a bare unit means one of it. */
	if (isdigit((unsigned char)slash[1])) {
		if (wsync_parse_duration(slash + 1, &w->seconds) < 0)
			return -1;
	} else {
		char one[16];
		snprintf(one, sizeof one, "1%s", slash + 1);
		if (wsync_parse_duration(one, &w->seconds) < 0)
			return -1;
	}
	if (w->seconds <= 0)
		return -1;
	w->limit = (int)limit;
	c->n++;
	return 0;
}

int wsync_parse_rate_windows(const char *s, wsync_rate_window *out, int max, int *n)
{
	wsync_rate_window *tmp;
	struct list_ctx c;
	int rc = -1;
	if (!*s) {
		*n = 0;
		return 0;
	}
	tmp = calloc(max > 0 ? (size_t)max : 1, sizeof *tmp);
	if (!tmp)
		abort();
	c = (struct list_ctx){tmp, max, 0};
	if (each_item(s, window_item, &c) == 0) {
		memcpy(out, tmp, (size_t)c.n * sizeof *tmp);
		*n = c.n;
		rc = 0;
	}
	free(tmp);
	return rc;
}

static char *read_bounded(const char *path, size_t max, int trust, size_t *len,
                          char *err, size_t errlen);

#define SECRET_MAX_BYTES 4096

char *wsync_read_secret_file(const char *path, char *err, size_t errlen)
{
	char why[768], *buf;
	size_t n;

	buf = read_bounded(path, SECRET_MAX_BYTES, WSYNC_TRUST_SECRET, &n, why, sizeof why);
	if (!buf) {
		if (*why == ':')
			snprintf(err, errlen, "secret file %s%s", path, why);
		else
			snprintf(err, errlen, "%s", why);
		return NULL;
	}
	if (memchr(buf, 0, n)) {
		snprintf(err, errlen, "secret file %s holds a NUL byte", path);
		free(buf);
		return NULL;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (n == 0) {
		snprintf(err, errlen, "secret file %s is empty", path);
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- conninfo ------------------------------------------------------------ */

static int conninfo_valid(const char *ci)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(ci, &msg);
	PQfreemem(msg);
	if (!opts)
		return -1;
	PQconninfoFree(opts);
	return 0;
}

/* Append `v` to an open memstream, quoted as libpq reads it when needed:
 * libpq splits unquoted values at every isspace() byte, \v and \f too. */
static void put_value(FILE *f, const char *v)
{
	if (*v && !strpbrk(v, " \t\n\r\v\f'\\")) {
		fputs(v, f);
		return;
	}
	fputc('\'', f);
	for (; *v; v++) {
		if (*v == '\'' || *v == '\\')
			fputc('\\', f);
		fputc(*v, f);
	}
	fputc('\'', f);
}

int wsync_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	unsigned char addr[16];
	char h[64], *end;
	size_t n;
	long p;
	if (!colon || colon == s)
		return -1;
	n = (size_t)(colon - s);
	if (s[0] == '[') { /* [IPv6]:port */
		if (n < 3 || s[n - 1] != ']')
			return -1;
		s++;
		n -= 2;
	}
	if (n >= sizeof h)
		return -1;
	memcpy(h, s, n);
	h[n] = 0;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p < 0 || p > 65535)
		return -1;
	if (!strcmp(h, "localhost"))
		snprintf(h, sizeof h, "127.0.0.1");
	if (inet_pton(AF_INET, h, addr) != 1 && inet_pton(AF_INET6, h, addr) != 1)
		return -1;
	if (strlen(h) >= hostlen)
		return -1;
	snprintf(host, hostlen, "%s", h);
	*port = (int)p;
	return 0;
}

char *wsync_conninfo_masked(const char *ci)
{
	char *msg = NULL, *out = NULL;
	size_t len = 0;
	PQconninfoOption *opts;
	FILE *f;
	int first = 1;

	if (!ci)
		return xstrdup("(unset)");
	/* libpq's own parser, so every form it accepts (spaces around '=',
	 * quotes, URIs with user:password@) is masked the way libpq reads it. */
	opts = PQconninfoParse(ci, &msg);
	PQfreemem(msg);
	if (!opts)
		return xstrdup("(not a valid conninfo; not shown)");
	f = open_memstream(&out, &len);
	if (!f)
		abort();
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		fprintf(f, "%s%s=", first ? "" : " ", o->keyword);
		first = 0;
		/* dispchar "*" is libpq's mark for a password field. */
		if (o->dispchar && o->dispchar[0] == '*')
			fputs("****", f);
		else
			put_value(f, o->val);
	}
	fclose(f);
	PQconninfoFree(opts);
	return out;
}

/* ---- the table of core keys ------------------------------------------ */

#define MAIN(field) WSYNC_SCOPE_MAIN, offsetof(wsync_config, field)
#define INST(field) WSYNC_SCOPE_INSTANCE, offsetof(wsync_provider_config, field)

/* One row per key, in the order of docs/configuration.md.  The columns after
 * the type: min, max, default, documented default, required, scope+field,
 * help.  tests/config fails when the doc shows another default. */
static const struct key_row {
	const char *section, *key;
	wsync_core_key_type type;
	long long min, max;
	const char *def, *doc_def;
	int required;
	wsync_core_key_scope scope;
	size_t offset;
	const char *help;
} rows[] = {
	{"database", "conninfo", WSYNC_KEY_CONNINFO, 0, 0, NULL, NULL, 1, MAIN(conninfo),
	 "libpq conninfo or postgresql:// URI; WSYNC_DATABASE_URL overrides it"},
	{"engine", "interval_minutes", WSYNC_KEY_INT, 1, 1440, "10", NULL, 0, MAIN(interval_minutes),
	 "fallback poll; WORKOUT_SYNC_INTERVAL_MINUTES overrides"},
	{"engine", "workers", WSYNC_KEY_INT, 1, 256, "8", NULL, 0, MAIN(workers),
	 "call threads: provider calls in flight at most"},
	{"engine", "batch_size", WSYNC_KEY_INT, 1, 10000, "100", NULL, 0, MAIN(batch_size),
	 "entries claimed and loaded per statement"},
	{"engine", "lease_seconds", WSYNC_KEY_INT, 3, 86400, "10", NULL, 0, MAIN(lease_seconds),
	 "a claimed entry is claimable again this long after its process stops renewing it"},
	{"engine", "listen", WSYNC_KEY_BOOL, 0, 0, "true", NULL, 0, MAIN(listen),
	 "LISTEN on channel wsync_queue for immediate pickup"},
	{"engine", "max_retries", WSYNC_KEY_INT, 0, WSYNC_MAX_BACKOFF, "3", NULL, 0, MAIN(max_retries),
	 "retries of provider_error / unexpected_error"},
	{"engine", "backoff", WSYNC_KEY_BACKOFF, 0, 0, "2m, 10m, 1h", NULL, 0, MAIN(backoff_s),
	 "delay before retry 1, 2, 3... (the last one repeats; +-10 % jitter)"},
	{"plugins", "dir", WSYNC_KEY_PATH, 0, 0, WSYNC_DEFAULT_PLUGIN_DIR, "$libdir/wsync/plugins",
	 0, MAIN(plugin_dir), "plugin .so files; relative to the folder of wsyncd.ini"},
	{"plugins", "conf_dir", WSYNC_KEY_PATH, 0, 0, WSYNC_DEFAULT_CONF_DIR,
	 "$sysconfdir/wsync/conf.d", 0, MAIN(conf_dir),
	 "one INI per provider instance; relative to the folder of wsyncd.ini"},
	{"plugins", "isolate", WSYNC_KEY_BOOL, 0, 0, "true", NULL, 0, MAIN(plugin_isolate),
	 "run each instance's plugin in a child process of its own; false: inside wsyncd"},
	{"plugins", "user", WSYNC_KEY_STRING, 0, 0, "nobody", NULL, 0, MAIN(plugin_user),
	 "when wsyncd runs as root, the plugins' child processes run as this user"},
	{"plugins", "memory_limit_mb", WSYNC_KEY_INT, 0, 1048576, "1024", NULL, 0,
	 MAIN(plugin_memory_limit_mb), "address space of each plugin process (0 = no limit)"},
	{"log", "level", WSYNC_KEY_LOG_LEVEL, 0, 0, "info", NULL, 0, MAIN(log_level),
	 "debug, info, warning or error"},
	{"metrics", "listen", WSYNC_KEY_LISTEN, 0, 0, "", NULL, 0, MAIN(metrics_listen),
	 "HOST:PORT of the Prometheus endpoint (/metrics, /healthz, /readyz); empty = off"},

	{"provider", "plugin", WSYNC_KEY_STRING, 0, 0, NULL, NULL, 1, INST(plugin),
	 "the plugin file name without .so"},
	{"provider", "enabled", WSYNC_KEY_BOOL, 0, 0, "true", NULL, 0, INST(enabled),
	 "false: loaded and checked, but not served"},
	{"provider", "base_url", WSYNC_KEY_URL, 0, 0, NULL, NULL, 0, INST(base_url),
	 "provider API root, https://"},
	{"provider", "allow_insecure_http", WSYNC_KEY_BOOL, 0, 0, "false", NULL, 0,
	 INST(allow_insecure_http),
	 "true lets base_url and token_url be clear-text http:// (development only)"},
	{"provider", "rate_limit_per_minute", WSYNC_KEY_INT, 1, 100000, "30", NULL, 0,
	 INST(rate_limit_per_minute),
	 "calls per (user, provider) per minute; the same as user_rate_limits = N/1m"},
	{"provider", "user_rate_limits", WSYNC_KEY_RATE_WINDOWS, 1, WSYNC_MAX_APP_WINDOWS, NULL,
	 "30/1m", 0, INST(user_windows),
	 "per (user, provider) windows, e.g. 30/1m, 1000/1d; replaces rate_limit_per_minute"},
	{"provider", "app_rate_limits", WSYNC_KEY_RATE_WINDOWS, 0, WSYNC_MAX_APP_WINDOWS, NULL, NULL, 0,
	 INST(app_windows), "app-wide windows, e.g. 200/5m, 1000/1h, 5000/1d"},
	{"provider", "connect_timeout_seconds", WSYNC_KEY_INT, 1, 300, "10", NULL, 0,
	 INST(connect_timeout_s), "TCP and TLS connection"},
	{"provider", "timeout_seconds", WSYNC_KEY_INT, 1, 3600, "30", NULL, 0, INST(timeout_s),
	 "whole request"},
	{"provider", "ca_file", WSYNC_KEY_STRING, 0, 0, NULL, "system store", 0, INST(ca_file),
	 "trust store; TLS verification is always on"},
	{"provider", "call_timeout_seconds", WSYNC_KEY_INT, 1, 86400, NULL,
	 "timeout_seconds + 30", 0, INST(call_timeout_s),
	 "a plugin holding one call longer (its HTTP time not counted) is killed"},
	{"provider", "quarantine_after_crashes", WSYNC_KEY_INT, 0, 1000, "5", NULL, 0,
	 INST(quarantine_after),
	 "crashes or hangs within quarantine_window_seconds that stop the plugin (0 = never)"},
	{"provider", "quarantine_window_seconds", WSYNC_KEY_INT, 1, 86400, "600", NULL, 0,
	 INST(quarantine_window_s), "the window of quarantine_after_crashes"},
	{"oauth", "token_url", WSYNC_KEY_URL, 0, 0, NULL, NULL, 0, INST(token_url),
	 "refresh endpoint, https://; without it tokens are never refreshed"},
	{"oauth", "client_id", WSYNC_KEY_STRING, 0, 0, NULL, NULL, 0, INST(client_id),
	 "OAuth client id (needed with token_url)"},
	{"oauth", "client_secret_file", WSYNC_KEY_SECRET_FILE, 0, 0, NULL, NULL, 0,
	 INST(client_secret_file),
	 "file holding the client secret (needed with token_url); mode 600"},
	{"oauth", "client_secret", WSYNC_KEY_FORBIDDEN, 0, 0, NULL, "(refused)", 0,
	 INST(client_secret),
	 "secrets are never written inline; put it in a file readable only by wsyncd "
	 "and set client_secret_file"},
};

#define N_ROWS (sizeof rows / sizeof rows[0])

/* The public view of the rows; built once (the struct layouts differ only so
 * that the table above stays one line per column group). */
static wsync_core_key keys[N_ROWS];

const wsync_core_key *wsync_core_keys(size_t *n)
{
	if (!keys[0].key)
		for (size_t i = 0; i < N_ROWS; i++)
			keys[i] = (wsync_core_key){rows[i].scope, rows[i].section, rows[i].key,
			                           rows[i].type, rows[i].min, rows[i].max,
			                           rows[i].def, rows[i].doc_def, rows[i].required,
			                           rows[i].offset, rows[i].help};
	*n = N_ROWS;
	return keys;
}

const char *wsync_core_key_shown_default(const wsync_core_key *k)
{
	if (k->required)
		return "(required)";
	if (k->doc_def)
		return k->doc_def;
	return k->def ? k->def : "";
}

static const wsync_core_key *find_key(wsync_core_key_scope scope, const char *sec,
                                      const char *key)
{
	size_t n;
	const wsync_core_key *all = wsync_core_keys(&n);
	for (size_t i = 0; i < n; i++)
		if (all[i].scope == scope && !strcmp(all[i].section, sec) &&
		    !strcmp(all[i].key, key))
			return &all[i];
	return NULL;
}

static int section_known(wsync_core_key_scope scope, const char *sec)
{
	size_t n;
	const wsync_core_key *all = wsync_core_keys(&n);
	for (size_t i = 0; i < n; i++)
		if (all[i].scope == scope && !strcmp(all[i].section, sec))
			return 1;
	return 0;
}

/* ---- setting one key -------------------------------------------------- */

struct parse_ctx {
	wsync_config *cfg;
	wsync_provider_config *prov;   /* NULL for wsyncd.ini */
	const char *file;
	int line;
};

#define CERR(ctx, fmt, ...)                                                    \
	wsync_config_error((ctx)->cfg, "%s:%d: " fmt, (ctx)->file, (ctx)->line, \
	                   __VA_ARGS__)

static int has_scheme(const char *v, const char *scheme)
{
	size_t n = strlen(scheme);
	return strncasecmp(v, scheme, n) == 0 && v[n] && v[n] != '/';
}

/* Check `v` and store it in the field of `k` in `base`.  With ctx NULL (the
 * defaults of the table) a bad value is a bug, caught by the tests. */
static void set_key(struct parse_ctx *ctx, const wsync_core_key *k, const char *v,
                    void *base)
{
	void *field = (char *)base + k->offset;
	const char *sec = k->section, *key = k->key;
	long long x;
	int b;

	switch (k->type) {
	case WSYNC_KEY_STRING:
	case WSYNC_KEY_PATH:
	case WSYNC_KEY_SECRET_FILE:
		if (!*v && ctx) {
			CERR(ctx, "[%s] %s: empty value (%s)", sec, key, k->help);
			return;
		}
		set_str(field, v);
		return;
	case WSYNC_KEY_CONNINFO:
		if (ctx && conninfo_valid(v) < 0) {
			CERR(ctx, "[%s] %s: not a valid libpq conninfo or postgresql:// URI "
			     "(check quoting and key names; the value is not shown, it may hold "
			     "a password)", sec, key);
		}
		set_str(field, v);
		return;
	case WSYNC_KEY_INT:
		if (wsync_parse_int(v, k->min, k->max, &x) < 0) {
			if (ctx)
				CERR(ctx, "[%s] %s = '%s': expected an integer from %lld to %lld",
				     sec, key, v, k->min, k->max);
			return;
		}
		*(int *)field = (int)x;
		return;
	case WSYNC_KEY_BOOL:
		if (wsync_parse_bool(v, &b) < 0) {
			if (ctx)
				CERR(ctx, "[%s] %s = '%s': expected true or false", sec, key, v);
			return;
		}
		*(int *)field = b;
		return;
	case WSYNC_KEY_BACKOFF: {
		wsync_config *c = base;
		if (wsync_parse_backoff(v, c->backoff_s, WSYNC_MAX_BACKOFF, &c->n_backoff) < 0 && ctx)
			CERR(ctx, "[%s] %s = '%s': expected a comma list of at most %d durations "
			     "such as 2m, 10m, 1h (no empty item)", sec, key, v, WSYNC_MAX_BACKOFF);
		return;
	}
	case WSYNC_KEY_RATE_WINDOWS: {
		/* The count is the int right after the array (asserted below). */
		int *count = (int *)((char *)field + sizeof(wsync_rate_window) * (size_t)k->max);
		wsync_rate_window tmp[WSYNC_MAX_APP_WINDOWS];
		int n = 0;
		if (wsync_parse_rate_windows(v, tmp, (int)k->max, &n) < 0 || n < k->min) {
			if (ctx)
				CERR(ctx, "[%s] %s = '%s': expected a comma list of %s%lld windows "
				     "such as 30/1m, 1000/1h, 5000/1d (no empty item)", sec, key, v,
				     k->min ? "1 to " : "at most ", k->max);
			return;
		}
		memcpy(field, tmp, (size_t)n * sizeof *tmp);
		*count = n;
		return;
	}
	case WSYNC_KEY_LOG_LEVEL:
		b = wsync_log_level_parse(v);
		if (b < 0) {
			if (ctx)
				CERR(ctx, "[%s] %s = '%s': expected debug, info, warning or error",
				     sec, key, v);
			return;
		}
		*(int *)field = b;
		return;
	case WSYNC_KEY_URL:
		/* http:// is checked once the whole file is read: the
		 * allow_insecure_http line may come later. */
		if (!has_scheme(v, "https://") && !has_scheme(v, "http://") && ctx) {
			CERR(ctx, "[%s] %s = '%s': expected an https:// URL", sec, key, v);
			return;
		}
		set_str(field, v);
		return;
	case WSYNC_KEY_LISTEN: {
		char host[64];
		int port;
		if (*v && wsync_parse_listen(v, host, sizeof host, &port) < 0) {
			if (ctx)
				CERR(ctx, "[%s] %s = '%s': expected HOST:PORT with an IP address "
				     "(127.0.0.1:9465, [::1]:9465) or localhost, or nothing to turn "
				     "it off", sec, key, v);
			return;
		}
		set_str(field, v);
		return;
	}
	case WSYNC_KEY_FORBIDDEN:
		if (ctx)
			CERR(ctx, "[%s] %s: %s", sec, key, k->help);
		return;
	}
}

static void set_defaults(wsync_core_key_scope scope, void *base)
{
	size_t n;
	const wsync_core_key *all = wsync_core_keys(&n);
	for (size_t i = 0; i < n; i++)
		if (all[i].scope == scope && all[i].def)
			set_key(NULL, &all[i], all[i].def, base);
}

static int main_key(struct parse_ctx *ctx, const char *sec, const char *key,
                    const char *v)
{
	const wsync_core_key *k = find_key(WSYNC_SCOPE_MAIN, sec, key);
	if (k)
		set_key(ctx, k, v, ctx->cfg);
	else if (!section_known(WSYNC_SCOPE_MAIN, sec))
		CERR(ctx, "[%s] %s: unknown section [%s] (wsyncd.ini has [database], "
		     "[engine], [plugins], [log] and [metrics]; see docs/configuration.md)",
		     sec, key, sec);
	else
		CERR(ctx, "[%s] %s: unknown key (see docs/configuration.md for the keys "
		     "of wsyncd.ini)", sec, key);
	return 0;
}

static void add_entry(wsync_provider_config *p, const char *sec, const char *key,
                      const char *v, int line, int core)
{
	wsync_config_entry *grown = realloc(p->entries, (p->n_entries + 1) * sizeof *grown);
	if (!grown)
		abort();
	p->entries = grown;
	grown[p->n_entries++] = (wsync_config_entry){
		xstrdup(sec), xstrdup(key), xstrdup(v), line, core, NULL};
}

static int provider_key(struct parse_ctx *ctx, const char *sec, const char *key,
                        const char *v)
{
	const wsync_core_key *k = find_key(WSYNC_SCOPE_INSTANCE, sec, key);
	if (k)
		set_key(ctx, k, v, ctx->prov);
	/* Keys the core does not know are the plugin's; the loader checks them
	 * against the plugin's schema once it knows which plugin this is. */
	add_entry(ctx->prov, sec, key, v, ctx->line, k != NULL);
	return 0;
}

/* ---- reading files ------------------------------------------------------ */

/* Read a whole regular file of at most `max` bytes that passes the trust
 * policy `trust` (a wsync_trust_kind, filetrust.h).  O_NONBLOCK so that a
 * FIFO named by mistake cannot hang the open; fstat on the open descriptor
 * so that what is checked is what is read (a symlink is judged by its
 * target).  Returns a NUL-terminated buffer (caller frees; *len excludes
 * the terminator) or NULL with err: ": why" after the path, or a whole
 * sentence naming the path for a trust refusal. */
static char *read_bounded(const char *path, size_t max, int trust, size_t *len,
                          char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, ": cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, ": not a regular file (%s); give the path of a file",
		         S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" :
		         S_ISCHR(st.st_mode) ? "a character device" :
		         S_ISSOCK(st.st_mode) ? "a socket" : "a special file");
		close(fd);
		return NULL;
	}
	if ((unsigned long long)st.st_size > max) {
		snprintf(err, errlen, ": too large (%lld bytes, at most %zu)",
		         (long long)st.st_size, max);
		close(fd);
		return NULL;
	}
	if (wsync_trust_stat(path, &st, (wsync_trust_kind)trust, err, errlen) < 0) {
		close(fd);
		return NULL;
	}
	buf = malloc(max + 2);
	if (!buf)
		abort();
	/* Read one byte more than allowed to see a file that grew. */
	while (n <= max) {
		ssize_t got = read(fd, buf + n, max + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, ": cannot read: %s", strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (n > max) {
		snprintf(err, errlen, ": too large (more than %zu bytes)", max);
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Trim blanks (and a CR) from both ends of [s, *end); returns the new start. */
static char *trim(char *s, char **end)
{
	while (s < *end && is_blank(*s))
		s++;
	while (*end > s && (is_blank((*end)[-1]) || (*end)[-1] == '\r'))
		(*end)--;
	**end = 0;
	return s;
}

/* An inline comment starts with ';' after a blank, as in inih. */
static void cut_comment(char *s, char **end)
{
	for (char *p = s + 1; p < *end; p++)
		if (*p == ';' && is_blank(p[-1])) {
			*end = p;
			break;
		}
}

typedef int (*key_fn)(struct parse_ctx *ctx, const char *sec, const char *key,
                      const char *v);

/* The first control character of [s, end) other than a tab, or NULL. */
static const char *control_char(const char *s, const char *end)
{
	for (; s < end; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return s;
	return NULL;
}

/* One line, NUL-terminated at `end` by the caller's buffer. */
static void parse_line(struct parse_ctx *ctx, char *s, char *end, char *section,
                       size_t seclen, int *bad_section, key_fn fn)
{
	char *eq, *key, *kend, *val;
	const char *bad;

	s = trim(s, &end);
	if (s == end || *s == ';' || *s == '#')
		return;
	if (*s == '[') {
		char *close = memchr(s, ']', (size_t)(end - s));
		char *rest;
		*bad_section = 1;
		if (!close) {
			CERR(ctx, "'%s': unterminated section header (expected ']'); the keys "
			     "below it are ignored until the next section", s);
			return;
		}
		rest = close + 1;
		cut_comment(rest - 1, &end);
		*end = 0;
		while (rest < end && is_blank(*rest))
			rest++;
		*close = 0;
		if (rest < end || close == s + 1 || strlen(s + 1) >= seclen ||
		    control_char(s + 1, close)) {
			CERR(ctx, "'[%s]%s': expected a section header such as [engine]", s + 1, rest);
			return;
		}
		snprintf(section, seclen, "%s", s + 1);
		*bad_section = 0;
		return;
	}
	for (eq = s; eq < end && *eq != '=' && *eq != ':'; eq++)
		;
	if (eq >= end) {
		CERR(ctx, "%s", "not an INI line: expected [section], key = value, or a "
		     "; comment (the line is not shown, it may hold a secret)");
		return;
	}
	kend = eq;
	key = trim(s, &kend);
	val = eq + 1;
	cut_comment(val - 1, &end);
	val = trim(val, &end);
	if (!*key || control_char(key, kend)) {
		CERR(ctx, "%s", "not an INI line: expected [section], key = value, or a "
		     "; comment (the line is not shown, it may hold a secret)");
		return;
	}
	if ((bad = control_char(val, end))) {
		CERR(ctx, "[%s] %s: the value holds a %s (byte 0x%02x at column %d); "
		     "values are text on one line", section, key,
		     *bad ? "control character" : "NUL byte", (unsigned char)*bad,
		     (int)(bad - s) + 1);
		return;
	}
	if (*bad_section)
		return;
	if (!*section) {
		CERR(ctx, "%s: key outside any section; put it under its [section]", key);
		return;
	}
	fn(ctx, section, key, val);
}

/* Read ctx->file and hand every key to `fn`.  The core reads INI itself (not
 * with inih, whose distribution builds cut lines at 200 bytes) so that lines
 * have no length limit but the file's, NUL bytes are seen, and a broken
 * section header is reported as such. */
static int parse_file(struct parse_ctx *ctx, key_fn fn)
{
	char err[768], section[128] = "";
	size_t len;
	int bad_section = 0;
	char *buf = read_bounded(ctx->file, WSYNC_CONFIG_MAX_BYTES, WSYNC_TRUST_FILE, &len,
	                         err, sizeof err);
	char *p, *stop;

	if (!buf) {
		wsync_config_error(ctx->cfg, "%s%s", *err == ':' ? ctx->file : "", err);
		return -1;
	}
	p = buf;
	stop = buf + len;
	if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	for (ctx->line = 1; p < stop; ctx->line++) {
		char *nl = memchr(p, '\n', (size_t)(stop - p));
		char *end = nl ? nl : stop;
		*end = 0;
		parse_line(ctx, p, end, section, sizeof section, &bad_section, fn);
		p = end + 1;
	}
	free(buf);
	return 0;
}

/* set_key finds a window list's count right after its array. */
_Static_assert(offsetof(wsync_provider_config, n_app_windows) ==
               offsetof(wsync_provider_config, app_windows) +
               sizeof(wsync_rate_window) * WSYNC_MAX_APP_WINDOWS, "n_app_windows");
_Static_assert(offsetof(wsync_provider_config, n_user_windows) ==
               offsetof(wsync_provider_config, user_windows) +
               sizeof(wsync_rate_window) * WSYNC_MAX_APP_WINDOWS, "n_user_windows");

/* call_timeout_seconds follows timeout_seconds unless set: one HTTP
 * request's worth of plugin time, and a margin. */
static void derive_call_timeout(wsync_provider_config *p)
{
	if (p->call_timeout_s == 0)
		p->call_timeout_s = p->timeout_s + 30;
}

/* The per-user windows: user_rate_limits, or rate_limit_per_minute/1m.
 * Both set is refused rather than combined: two keys for the same minute
 * window would leave the reader guessing which one holds.  Two windows of
 * one duration are refused too (which limit was meant?). */
static void check_user_windows(wsync_config *cfg, wsync_provider_config *p)
{
	const wsync_config_entry *per_min =
		wsync_config_entry_find(p, "provider", "rate_limit_per_minute");
	const wsync_config_entry *user = wsync_config_entry_find(p, "provider", "user_rate_limits");

	/* No key, or a value already refused (its error is reported): the
	 * minute window of rate_limit_per_minute, so every field stays valid. */
	if (!user || p->n_user_windows == 0) {
		p->user_windows[0] = (wsync_rate_window){p->rate_limit_per_minute, 60};
		p->n_user_windows = 1;
		return;
	}
	if (per_min) {
		wsync_config_error(cfg, "%s:%d: [provider] user_rate_limits: rate_limit_per_minute "
		                   "is set too (line %d); rate_limit_per_minute = N is the same "
		                   "as user_rate_limits = N/1m: keep only user_rate_limits",
		                   p->path, user->line, per_min->line);
		return;
	}
	p->rate_limit_per_minute = 0;
	for (int i = 0; i < p->n_user_windows; i++) {
		for (int j = 0; j < i; j++)
			if (p->user_windows[j].seconds == p->user_windows[i].seconds)
				wsync_config_error(cfg, "%s:%d: [provider] user_rate_limits = '%s': two "
				                   "windows of %d seconds; give each duration once",
				                   p->path, user->line, user->value,
				                   p->user_windows[i].seconds);
		if (p->user_windows[i].seconds == 60)
			p->rate_limit_per_minute = p->user_windows[i].limit;
	}
}

/* Every http:// URL of an instance needs allow_insecure_http. */
static void check_insecure(wsync_config *cfg, wsync_provider_config *p)
{
	static const char *const urls[][2] = {{"provider", "base_url"}, {"oauth", "token_url"}};
	for (size_t i = 0; i < 2; i++) {
		const wsync_config_entry *e = wsync_config_entry_find(p, urls[i][0], urls[i][1]);
		if (!e || !has_scheme(e->value, "http://") || p->allow_insecure_http)
			continue;
		wsync_config_error(cfg, "%s:%d: [%s] %s = '%s': clear-text http is refused; "
		                   "use an https:// URL (or, for a local development endpoint "
		                   "only, set allow_insecure_http = true in [provider])",
		                   p->path, e->line, urls[i][0], urls[i][1], e->value);
	}
}

void wsync_config_warn_insecure(const wsync_config *cfg)
{
	for (size_t i = 0; cfg && i < cfg->n_providers; i++) {
		const wsync_provider_config *p = &cfg->providers[i];
		const char *urls[] = {p->base_url, p->token_url};
		for (size_t u = 0; u < 2; u++)
			if (urls[u] && has_scheme(urls[u], "http://"))
				wsync_warn("provider %s: %s is clear-text http (allow_insecure_http = "
				           "true in %s): tokens and workouts travel unencrypted; "
				           "development only", p->name, urls[u], p->path);
	}
}

/* Every required key of the table must have been set (string fields). */
static void check_required(wsync_config *cfg, wsync_core_key_scope scope, void *base,
                           const char *file)
{
	size_t n;
	const wsync_core_key *all = wsync_core_keys(&n);
	for (size_t i = 0; i < n; i++)
		if (all[i].scope == scope && all[i].required &&
		    !*(char **)((char *)base + all[i].offset))
			wsync_config_error(cfg, "%s: [%s] %s: missing required key (%s)", file,
			                   all[i].section, all[i].key, all[i].help);
}

/* ---- conf.d ----------------------------------------------------------- */

static int valid_instance_name(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
		    s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_secret(wsync_config *cfg, wsync_provider_config *p)
{
	char err[512];
	if (!p->client_secret_file)
		return;
	p->client_secret = wsync_read_secret_file(p->client_secret_file, err, sizeof err);
	if (!p->client_secret) {
		const wsync_config_entry *e = wsync_config_entry_find(p, "oauth", "client_secret_file");
		wsync_config_error(cfg, "%s:%d: [oauth] client_secret_file: %s", p->path,
		                   e ? e->line : 0, err);
	}
}

static void load_instance(wsync_config *cfg, const char *dir, const char *fname)
{
	size_t stem = strlen(fname) - 4;
	wsync_provider_config *grown, *p;
	struct parse_ctx ctx = {0};
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s", dir, fname);
	if (!valid_instance_name(fname, stem)) {
		wsync_config_error(cfg, "%s: the file name is the provider name and must be "
		                   "lowercase letters, digits, '_' or '-' (at most 63)", path);
		return;
	}
	grown = realloc(cfg->providers, (cfg->n_providers + 1) * sizeof *grown);
	if (!grown)
		abort();
	cfg->providers = grown;
	p = &grown[cfg->n_providers++];
	memset(p, 0, sizeof *p);
	p->name = strndup(fname, stem);
	p->path = xstrdup(path);
	set_defaults(WSYNC_SCOPE_INSTANCE, p);
	ctx.cfg = cfg;
	ctx.prov = p;
	ctx.file = p->path;
	if (parse_file(&ctx, provider_key) < 0)
		return;
	check_required(cfg, WSYNC_SCOPE_INSTANCE, p, path);
	check_insecure(cfg, p);
	check_user_windows(cfg, p);
	derive_call_timeout(p);
	if (p->token_url && (!p->client_id || !p->client_secret_file))
		wsync_config_error(cfg, "%s: [oauth] token_url needs client_id and "
		                   "client_secret_file too", path);
	load_secret(cfg, p);
}

static void load_conf_dir(wsync_config *cfg)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, err[768];
	size_t n = 0;
	struct stat st;

	/* A missing directory is reported by opendir below. */
	if (stat(cfg->conf_dir, &st) == 0 &&
	    wsync_trust_path(cfg->conf_dir, WSYNC_TRUST_DIR, err, sizeof err) < 0) {
		wsync_config_error(cfg, "%s: [plugins] conf_dir: %s",
		                   cfg->path ? cfg->path : "(environment)", err);
		return;
	}
	d = opendir(cfg->conf_dir);
	if (!d) {
		wsync_config_error(cfg, "%s: [plugins] conf_dir = '%s': cannot open: %s",
		                   cfg->path ? cfg->path : "(environment)", cfg->conf_dir,
		                   strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char **grown;
		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".ini"))
			continue;
		grown = realloc(names, (n + 1) * sizeof *names);
		if (!grown)
			abort();
		names = grown;
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, by_name);
	for (size_t i = 0; i < n; i++) {
		load_instance(cfg, cfg->conf_dir, names[i]);
		free(names[i]);
	}
	free(names);
}

/* ---- the whole configuration ------------------------------------------ */

/* Relative paths in wsyncd.ini are relative to the file's directory. */
static void resolve_relative(wsync_config *cfg, char **p)
{
	const char *slash;
	char buf[PATH_MAX];
	if (!*p || (*p)[0] == '/' || !cfg->path || !(slash = strrchr(cfg->path, '/')))
		return;
	snprintf(buf, sizeof buf, "%.*s/%s", (int)(slash - cfg->path), cfg->path, *p);
	set_str(p, buf);
}

static void apply_environment(wsync_config *cfg)
{
	const char *url = getenv("WSYNC_DATABASE_URL");
	const char *iv = getenv("WORKOUT_SYNC_INTERVAL_MINUTES");
	const wsync_core_key *k = find_key(WSYNC_SCOPE_MAIN, "engine", "interval_minutes");
	long long x;
	if (url && *url) {
		if (conninfo_valid(url) < 0)
			wsync_config_error(cfg, "environment: WSYNC_DATABASE_URL: not a valid libpq "
			                   "conninfo or postgresql:// URI (the value is not shown, it "
			                   "may hold a password)");
		set_str(&cfg->conninfo, url);
	}
	if (iv && *iv) {
		if (wsync_parse_int(iv, k->min, k->max, &x) < 0)
			wsync_config_error(cfg, "environment: WORKOUT_SYNC_INTERVAL_MINUTES = '%s': "
			                   "expected an integer from %lld to %lld", iv, k->min, k->max);
		else
			cfg->interval_minutes = (int)x;
	}
}

wsync_config *wsync_config_load(const char *path)
{
	wsync_config *cfg = calloc(1, sizeof *cfg);
	struct parse_ctx ctx = {0};
	if (!cfg)
		return NULL;
	set_defaults(WSYNC_SCOPE_MAIN, cfg);
	if (path) {
		cfg->path = xstrdup(path);
		ctx.cfg = cfg;
		ctx.file = path;
		if (parse_file(&ctx, main_key) < 0)
			return cfg;
	}
	apply_environment(cfg);
	check_required(cfg, WSYNC_SCOPE_MAIN, cfg, path ? path : "(no config file)");
	resolve_relative(cfg, &cfg->plugin_dir);
	resolve_relative(cfg, &cfg->conf_dir);
	load_conf_dir(cfg);
	return cfg;
}

static void free_provider(wsync_provider_config *p)
{
	for (size_t i = 0; i < p->n_entries; i++) {
		free(p->entries[i].section);
		free(p->entries[i].key);
		free(p->entries[i].value);
		free(p->entries[i].secret);
	}
	free(p->entries);
	free(p->name);
	free(p->path);
	free(p->plugin);
	free(p->base_url);
	free(p->ca_file);
	free(p->token_url);
	free(p->client_id);
	free(p->client_secret_file);
	free(p->client_secret);
}

void wsync_config_free(wsync_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_providers; i++)
		free_provider(&cfg->providers[i]);
	free(cfg->providers);
	free(cfg->path);
	free(cfg->conninfo);
	free(cfg->plugin_dir);
	free(cfg->conf_dir);
	free(cfg->metrics_listen);
	free(cfg->plugin_user);
	free(cfg->errors);
	free(cfg);
}

const wsync_provider_config *wsync_config_provider(const wsync_config *cfg,
                                                   const char *name)
{
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (!strcmp(cfg->providers[i].name, name))
			return &cfg->providers[i];
	return NULL;
}

const wsync_config_entry *wsync_config_entry_find(const wsync_provider_config *p,
                                                  const char *section,
                                                  const char *key)
{
	/* The last occurrence wins, as in the INI file. */
	for (size_t i = p->n_entries; i-- > 0;)
		if (!strcmp(p->entries[i].section, section) && !strcmp(p->entries[i].key, key))
			return &p->entries[i];
	return NULL;
}

/* ---- printing --------------------------------------------------------- */

/* "120" -> "2m": the largest unit that divides the seconds. */
static void print_duration(FILE *f, int s)
{
	if (s % 86400 == 0)
		fprintf(f, "%dd", s / 86400);
	else if (s % 3600 == 0)
		fprintf(f, "%dh", s / 3600);
	else if (s % 60 == 0)
		fprintf(f, "%dm", s / 60);
	else
		fprintf(f, "%ds", s);
}

/* One key's effective value, in the syntax of the INI file. */
static void print_value(FILE *f, const wsync_core_key *k, const void *base)
{
	const void *field = (const char *)base + k->offset;
	char *masked;

	switch (k->type) {
	case WSYNC_KEY_CONNINFO:
		masked = wsync_conninfo_masked(*(char *const *)field);
		fputs(masked, f);
		free(masked);
		break;
	case WSYNC_KEY_INT:
		fprintf(f, "%d", *(const int *)field);
		break;
	case WSYNC_KEY_BOOL:
		fputs(*(const int *)field ? "true" : "false", f);
		break;
	case WSYNC_KEY_LOG_LEVEL:
		fputs((const char *[]){"debug", "info", "warning", "error"}[*(const int *)field & 3], f);
		break;
	case WSYNC_KEY_BACKOFF: {
		const wsync_config *c = base;
		for (int i = 0; i < c->n_backoff; i++) {
			fputs(i ? ", " : "", f);
			print_duration(f, c->backoff_s[i]);
		}
		break;
	}
	case WSYNC_KEY_RATE_WINDOWS: {
		const wsync_rate_window *w = field;
		int n = *(const int *)(w + k->max);
		for (int i = 0; i < n; i++) {
			fprintf(f, "%s%d/", i ? ", " : "", w[i].limit);
			print_duration(f, w[i].seconds);
		}
		break;
	}
	case WSYNC_KEY_FORBIDDEN:
		break;
	default: {
		const char *str = *(char *const *)field;
		fputs(str ? str : "", f);
		break;
	}
	}
}

static void print_scope(FILE *f, wsync_core_key_scope scope, const void *base)
{
	size_t n;
	const wsync_core_key *all = wsync_core_keys(&n);
	const char *sec = "";
	for (size_t i = 0; i < n; i++) {
		const wsync_core_key *k = &all[i];
		if (k->scope != scope || k->type == WSYNC_KEY_FORBIDDEN)
			continue;
		if (strcmp(sec, k->section))
			fprintf(f, "[%s]\n", sec = k->section);
		fprintf(f, "%s = ", k->key);
		print_value(f, k, base);
		fputc('\n', f);
	}
}

void wsync_config_print(const wsync_config *cfg, void *file)
{
	FILE *f = file;
	print_scope(f, WSYNC_SCOPE_MAIN, cfg);
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const wsync_provider_config *p = &cfg->providers[i];
		const char *sec = "";
		fprintf(f, "\n; %s\n", p->path);
		print_scope(f, WSYNC_SCOPE_INSTANCE, p);
		/* The plugin's keys as written; its schema (listed by --check)
		 * has them as *_file paths, never as secrets. */
		for (size_t k = 0; k < p->n_entries; k++) {
			const wsync_config_entry *e = &p->entries[k];
			int secret = strstr(e->key, "secret") || strstr(e->key, "token") ||
			             strstr(e->key, "password");
			int is_file = strlen(e->key) > 5 && !strcmp(e->key + strlen(e->key) - 5, "_file");
			if (e->core)
				continue;
			if (strcmp(e->section, sec))
				fprintf(f, "[%s]\n", sec = e->section);
			fprintf(f, "%s = %s\n", e->key, secret && !is_file ? "*****" : e->value);
		}
	}
}
