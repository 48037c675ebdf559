/*
 * config.c -- read wsyncd.ini and conf.d/<name>.ini.
 *
 * inih does the INI syntax; this file knows the keys.  Errors accumulate in
 * cfg->errors so that one `wsyncd --check` shows every mistake at once.
 */
#include "config.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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

/* Split a comma list and hand each trimmed item to `fn`. */
static int each_item(const char *s, int (*fn)(const char *item, void *ctx),
                     void *ctx)
{
	char buf[512], *save = NULL, *tok;
	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end = tok + strlen(tok);
		while (*tok == ' ' || *tok == '\t')
			tok++;
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = 0;
		if (!*tok || fn(tok, ctx) < 0)
			return -1;
	}
	return 0;
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

int wsync_parse_backoff(const char *s, int *out, int max, int *n)
{
	struct list_ctx c = {out, max, 0};
	if (each_item(s, backoff_item, &c) < 0 || c.n == 0)
		return -1;
	*n = c.n;
	return 0;
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
	struct list_ctx c = {out, max, 0};
	if (!*s) {
		*n = 0;
		return 0;
	}
	if (each_item(s, window_item, &c) < 0)
		return -1;
	*n = c.n;
	return 0;
}

char *wsync_read_secret_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	FILE *f;
	char buf[4096];
	size_t n;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "cannot read secret file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "secret file %s is not a regular file", path);
		return NULL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
		         "secret file %s is readable by group or others (mode %03o); "
		         "run chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
		return NULL;
	}
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot read secret file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (n == 0) {
		snprintf(err, errlen, "secret file %s is empty", path);
		return NULL;
	}
	return xstrdup(buf);
}

/* ---- reading files with line numbers ---------------------------------- */

/* inih does not pass line numbers to handlers in Debian's build, so the
 * reader counts the lines it hands over. */
struct reader {
	FILE *f;
	int line;
	int too_long;       /* first over-long line, 0 when none */
};

static char *count_lines(char *str, int num, void *stream)
{
	struct reader *r = stream;
	char *got = fgets(str, num, r->f);
	size_t len;
	if (!got)
		return NULL;
	r->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		int ch;
		if (!r->too_long)
			r->too_long = r->line;
		while ((ch = fgetc(r->f)) != EOF && ch != '\n')
			;
	}
	return got;
}

struct parse_ctx {
	wsync_config *cfg;
	wsync_provider_config *prov;   /* NULL for wsyncd.ini */
	const char *file;
	struct reader rd;
};

#define CERR(ctx, fmt, ...)                                                    \
	wsync_config_error((ctx)->cfg, "%s:%d: " fmt, (ctx)->file, (ctx)->rd.line, \
	                   __VA_ARGS__)

static int want_int(struct parse_ctx *ctx, const char *sec, const char *key,
                    const char *v, long long min, long long max, int *out)
{
	long long x;
	if (wsync_parse_int(v, min, max, &x) < 0) {
		CERR(ctx, "[%s] %s = '%s': expected an integer from %lld to %lld",
		     sec, key, v, min, max);
		return 1;
	}
	*out = (int)x;
	return 1;
}

static int want_bool(struct parse_ctx *ctx, const char *sec, const char *key,
                     const char *v, int *out)
{
	if (wsync_parse_bool(v, out) < 0)
		CERR(ctx, "[%s] %s = '%s': expected true or false", sec, key, v);
	return 1;
}

static int main_key(void *user, const char *sec, const char *key, const char *v)
{
	struct parse_ctx *ctx = user;
	wsync_config *c = ctx->cfg;

	if (!strcmp(sec, "database") && !strcmp(key, "conninfo"))
		return set_str(&c->conninfo, v), 1;
	if (!strcmp(sec, "engine")) {
		if (!strcmp(key, "interval_minutes"))
			return want_int(ctx, sec, key, v, 1, 1440, &c->interval_minutes);
		if (!strcmp(key, "workers"))
			return want_int(ctx, sec, key, v, 1, 256, &c->workers);
		if (!strcmp(key, "batch_size"))
			return want_int(ctx, sec, key, v, 1, 10000, &c->batch_size);
		if (!strcmp(key, "lease_seconds"))
			return want_int(ctx, sec, key, v, 10, 86400, &c->lease_seconds);
		if (!strcmp(key, "max_retries"))
			return want_int(ctx, sec, key, v, 0, WSYNC_MAX_BACKOFF, &c->max_retries);
		if (!strcmp(key, "listen"))
			return want_bool(ctx, sec, key, v, &c->listen);
		if (!strcmp(key, "backoff")) {
			if (wsync_parse_backoff(v, c->backoff_s, WSYNC_MAX_BACKOFF, &c->n_backoff) < 0)
				CERR(ctx, "[engine] backoff = '%s': expected a comma list of "
				     "durations such as 2m, 10m, 1h", v);
			return 1;
		}
	}
	if (!strcmp(sec, "plugins")) {
		if (!strcmp(key, "dir"))
			return set_str(&c->plugin_dir, v), 1;
		if (!strcmp(key, "conf_dir"))
			return set_str(&c->conf_dir, v), 1;
	}
	if (!strcmp(sec, "log") && !strcmp(key, "level")) {
		int l = wsync_log_level_parse(v);
		if (l < 0)
			CERR(ctx, "[log] level = '%s': expected debug, info, warning or error", v);
		else
			c->log_level = l;
		return 1;
	}
	if (!strcmp(sec, "metrics") && !strcmp(key, "listen")) {
		/* Accepting an address and serving nothing would be a silent
		 * default: refuse until the endpoint exists. */
		if (*v)
			CERR(ctx, "[metrics] listen = '%s': the metrics endpoint is not "
			     "available in this version; leave the value empty", v);
		return set_str(&c->metrics_listen, v), 1;
	}
	CERR(ctx, "[%s] %s: unknown key (see docs/configuration.md for the keys of wsyncd.ini)",
	     sec, key);
	return 1;
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

static int provider_core_key(struct parse_ctx *ctx, const char *sec,
                             const char *key, const char *v)
{
	wsync_provider_config *p = ctx->prov;
	if (!strcmp(sec, "provider")) {
		if (!strcmp(key, "plugin"))
			return set_str(&p->plugin, v), 1;
		if (!strcmp(key, "enabled"))
			return want_bool(ctx, sec, key, v, &p->enabled);
		if (!strcmp(key, "base_url")) {
			if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7))
				CERR(ctx, "[provider] base_url = '%s': expected an https:// URL", v);
			return set_str(&p->base_url, v), 1;
		}
		if (!strcmp(key, "rate_limit_per_minute"))
			return want_int(ctx, sec, key, v, 1, 100000, &p->rate_limit_per_minute);
		if (!strcmp(key, "app_rate_limits")) {
			if (wsync_parse_rate_windows(v, p->app_windows, WSYNC_MAX_APP_WINDOWS,
			                             &p->n_app_windows) < 0)
				CERR(ctx, "[provider] app_rate_limits = '%s': expected a comma list "
				     "such as 200/5m, 1000/1h, 5000/1d", v);
			return 1;
		}
		if (!strcmp(key, "connect_timeout_seconds"))
			return want_int(ctx, sec, key, v, 1, 300, &p->connect_timeout_s);
		if (!strcmp(key, "timeout_seconds"))
			return want_int(ctx, sec, key, v, 1, 3600, &p->timeout_s);
		if (!strcmp(key, "ca_file"))
			return set_str(&p->ca_file, v), 1;
	}
	if (!strcmp(sec, "oauth")) {
		if (!strcmp(key, "token_url"))
			return set_str(&p->token_url, v), 1;
		if (!strcmp(key, "client_id"))
			return set_str(&p->client_id, v), 1;
		if (!strcmp(key, "client_secret_file"))
			return set_str(&p->client_secret_file, v), 1;
		if (!strcmp(key, "client_secret")) {
			CERR(ctx, "[oauth] client_secret: secrets are never written inline; "
			     "put it in a file readable only by wsyncd and set %s", "client_secret_file");
			return 1;
		}
	}
	return 0;
}

static int provider_key(void *user, const char *sec, const char *key, const char *v)
{
	struct parse_ctx *ctx = user;
	int core = provider_core_key(ctx, sec, key, v);
	/* Keys the core does not know are the plugin's; the loader checks them
	 * against the plugin's schema once it knows which plugin this is. */
	add_entry(ctx->prov, sec, key, v, ctx->rd.line, core);
	return 1;
}

static int parse_file(struct parse_ctx *ctx, ini_handler handler)
{
	int rc;
	ctx->rd.f = fopen(ctx->file, "r");
	ctx->rd.line = 0;
	ctx->rd.too_long = 0;
	if (!ctx->rd.f) {
		wsync_config_error(ctx->cfg, "%s: cannot open: %s", ctx->file, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(count_lines, &ctx->rd, handler, ctx);
	fclose(ctx->rd.f);
	if (ctx->rd.too_long)
		wsync_config_error(ctx->cfg, "%s:%d: line longer than %d characters",
		                   ctx->file, ctx->rd.too_long, INI_MAX_LINE - 1);
	if (rc > 0)
		wsync_config_error(ctx->cfg, "%s:%d: not an INI line: expected "
		                   "[section], key = value, or a ; comment", ctx->file, rc);
	return rc == 0 ? 0 : -1;
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
	p->enabled = 1;
	p->rate_limit_per_minute = 30;
	p->connect_timeout_s = 10;
	p->timeout_s = 30;
	ctx.cfg = cfg;
	ctx.prov = p;
	ctx.file = p->path;
	if (parse_file(&ctx, provider_key) < 0 && !ctx.rd.f)
		return;
	if (!p->plugin)
		wsync_config_error(cfg, "%s: [provider] plugin: missing required key "
		                   "(the plugin file name without .so)", path);
	if (p->token_url && (!p->client_id || !p->client_secret_file))
		wsync_config_error(cfg, "%s: [oauth] token_url needs client_id and "
		                   "client_secret_file too", path);
	load_secret(cfg, p);
}

static void load_conf_dir(wsync_config *cfg)
{
	DIR *d = opendir(cfg->conf_dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

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
	long long x;
	if (url && *url)
		set_str(&cfg->conninfo, url);
	if (iv && *iv) {
		if (wsync_parse_int(iv, 1, 1440, &x) < 0)
			wsync_config_error(cfg, "environment: WORKOUT_SYNC_INTERVAL_MINUTES = '%s': "
			                   "expected an integer from 1 to 1440", iv);
		else
			cfg->interval_minutes = (int)x;
	}
}

static void set_defaults(wsync_config *cfg)
{
	static const int backoff[] = {120, 600, 3600};
	cfg->interval_minutes = 10;
	cfg->workers = 8;
	cfg->batch_size = 100;
	cfg->lease_seconds = 300;
	cfg->listen = 1;
	cfg->max_retries = 3;
	memcpy(cfg->backoff_s, backoff, sizeof backoff);
	cfg->n_backoff = 3;
	cfg->plugin_dir = xstrdup(WSYNC_DEFAULT_PLUGIN_DIR);
	cfg->conf_dir = xstrdup(WSYNC_DEFAULT_CONF_DIR);
	cfg->log_level = 1;
}

wsync_config *wsync_config_load(const char *path)
{
	wsync_config *cfg = calloc(1, sizeof *cfg);
	struct parse_ctx ctx = {0};
	if (!cfg)
		return NULL;
	set_defaults(cfg);
	if (path) {
		cfg->path = xstrdup(path);
		ctx.cfg = cfg;
		ctx.file = path;
		if (parse_file(&ctx, main_key) < 0 && !ctx.rd.f)
			return cfg;
	}
	apply_environment(cfg);
	if (!cfg->conninfo)
		wsync_config_error(cfg, "%s: [database] conninfo: missing required key "
		                   "(a libpq conninfo or postgresql:// URI; or set WSYNC_DATABASE_URL)",
		                   path ? path : "(no config file)");
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

/* Passwords can hide in a conninfo: print it with password=... masked. */
static void print_conninfo(FILE *f, const char *ci)
{
	const char *pw = ci ? strstr(ci, "password=") : NULL;
	const char *at = ci ? strchr(ci, '@') : NULL;
	const char *colon = (ci && at) ? strchr(ci + 13, ':') : NULL;
	if (!ci) {
		fputs("(unset)\n", f);
	} else if (pw) {
		const char *end = pw + 9 + strcspn(pw + 9, " ");
		fprintf(f, "%.*spassword=*****%s\n", (int)(pw - ci), ci, end);
	} else if (!strncmp(ci, "postgres", 8) && at && colon && colon < at) {
		fprintf(f, "%.*s:*****%s\n", (int)(colon - ci), ci, at);
	} else {
		fprintf(f, "%s\n", ci);
	}
}

void wsync_config_print(const wsync_config *cfg, void *file)
{
	FILE *f = file;
	fprintf(f, "[database]\nconninfo = ");
	print_conninfo(f, cfg->conninfo);
	fprintf(f, "[engine]\ninterval_minutes = %d\nworkers = %d\nbatch_size = %d\n"
	        "lease_seconds = %d\nlisten = %s\nmax_retries = %d\nbackoff =",
	        cfg->interval_minutes, cfg->workers, cfg->batch_size, cfg->lease_seconds,
	        cfg->listen ? "true" : "false", cfg->max_retries);
	for (int i = 0; i < cfg->n_backoff; i++)
		fprintf(f, "%s %ds", i ? "," : "", cfg->backoff_s[i]);
	fprintf(f, "\n[plugins]\ndir = %s\nconf_dir = %s\n[log]\nlevel = %s\n",
	        cfg->plugin_dir, cfg->conf_dir,
	        (const char *[]){"debug", "info", "warning", "error"}[cfg->log_level]);
	fprintf(f, "[metrics]\nlisten = %s\n", cfg->metrics_listen ? cfg->metrics_listen : "");
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const wsync_provider_config *p = &cfg->providers[i];
		fprintf(f, "\n; %s\n", p->path);
		for (size_t k = 0; k < p->n_entries; k++) {
			const wsync_config_entry *e = &p->entries[k];
			int secret = strstr(e->key, "secret") || strstr(e->key, "token") ||
			             strstr(e->key, "password");
			int is_file = strlen(e->key) > 5 && !strcmp(e->key + strlen(e->key) - 5, "_file");
			if (k == 0 || strcmp(e->section, p->entries[k - 1].section))
				fprintf(f, "[%s]\n", e->section);
			fprintf(f, "%s = %s\n", e->key,
			        secret && !is_file && strcmp(e->key, "token_url") ? "*****" : e->value);
		}
	}
}
