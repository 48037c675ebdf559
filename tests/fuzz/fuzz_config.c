/*
 * fuzz_config.c -- libFuzzer target for the INI/config layer
 * (core/common/config.c): the bytes are written, in a private temp dir, as
 * wsyncd.ini (followed by "[plugins] conf_dir = conf.d", so that the run
 * never reads the machine's conf.d) and as conf.d/fuzz.ini, and
 * wsync_config_load() reads both through the same bounded reader wsyncd
 * uses.  The input's conninfo, and the input itself as a conninfo (the
 * WSYNC_DATABASE_URL path), also go through the password masking.
 *
 * Checks, beyond the sanitizers (abort() when one fails):
 *   - every error line names one of the two files (it starts with the temp
 *     dir), so every error says where;
 *   - whatever the errors, every integer key holds a value within its
 *     documented bounds, the backoff list has 1..16 positive delays, the app
 *     rate windows 0..8 positive ones, and URLs start with http(s)://;
 *   - a configuration without errors has a conninfo, a plugin per instance,
 *     and no clear-text http:// without allow_insecure_http;
 *   - the masked conninfo parses back with libpq to the same keywords and
 *     values, with every password replaced by ****;
 *   - printing the effective configuration works.
 */
#include "common/config.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[PATH_MAX], ini[PATH_MAX], inst[PATH_MAX];

static void remove_dir(void)
{
	unlink(ini);
	unlink(inst);
	snprintf(inst, sizeof inst, "%s/conf.d", dir);
	rmdir(inst);
	rmdir(dir);
}

/* The temp dir, created on the first input and removed at exit: under
 * $TMPDIR when set (run_fuzz.sh points it at its work dir, which it keeps
 * after a failure), else in /dev/shm when there is one, because rewriting
 * a file on ext4 waits for the disk at close (auto_da_alloc) and ran this
 * target ten times slower, else /tmp. */
static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char confd[PATH_MAX];

	if (dir[0])
		return;
	if ((!tmp || !*tmp) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dir, sizeof dir, "%s/wsync-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(confd, sizeof confd, "%s/conf.d", dir);
	snprintf(ini, sizeof ini, "%s/wsyncd.ini", dir);
	snprintf(inst, sizeof inst, "%s/fuzz.ini", confd);
	if (mkdir(confd, 0700) != 0)
		abort();
	/* The environment overrides must not hide the file's values. */
	unsetenv("WSYNC_DATABASE_URL");
	unsetenv("WORKOUT_SYNC_INTERVAL_MINUTES");
	atexit(remove_dir);
}

static void write_file(const char *path, const uint8_t *data, size_t size,
                       const char *tail)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fputs(tail, f) < 0 || fclose(f) != 0)
		abort();
}

static void check_errors(const wsync_config *cfg)
{
	const char *e = wsync_config_errors(cfg);
	size_t dl = strlen(dir);

	while (*e) {
		const char *nl = strchr(e, '\n');
		if (!nl || strncmp(e, dir, dl) != 0 || e[dl] != '/')
			abort();
		e = nl + 1;
	}
}

static int is_url(const char *s)
{
	return !s || !strncasecmp(s, "https://", 8) || !strncasecmp(s, "http://", 7);
}

static void check_bounds(const wsync_config *cfg)
{
	size_t n;
	const wsync_core_key *k = wsync_core_keys(&n);

	for (size_t i = 0; i < n; i++) {
		if (k[i].type != WSYNC_KEY_INT)
			continue;
		if (k[i].scope == WSYNC_SCOPE_MAIN) {
			int v = *(const int *)((const char *)cfg + k[i].offset);
			if (v < k[i].min || v > k[i].max)
				abort();
		}
		for (size_t p = 0; k[i].scope == WSYNC_SCOPE_INSTANCE && p < cfg->n_providers; p++) {
			int v = *(const int *)((const char *)&cfg->providers[p] + k[i].offset);
			/* rate_limit_per_minute is derived from user_rate_limits when
			 * that is set: 0 there means "no minute window". */
			if (!strcmp(k[i].key, "rate_limit_per_minute") && v == 0 &&
			    cfg->providers[p].n_user_windows > 0)
				continue;
			if (v < k[i].min || v > k[i].max) {
				fprintf(stderr, "fuzz_config: [%s] %s = %d is outside %lld..%lld\n",
				        k[i].section, k[i].key, v, k[i].min, k[i].max);
				abort();
			}
		}
	}
	if (cfg->n_backoff < 1 || cfg->n_backoff > WSYNC_MAX_BACKOFF)
		abort();
	for (int i = 0; i < cfg->n_backoff; i++)
		if (cfg->backoff_s[i] <= 0)
			abort();
	for (size_t p = 0; p < cfg->n_providers; p++) {
		const wsync_provider_config *pc = &cfg->providers[p];
		if (pc->n_app_windows < 0 || pc->n_app_windows > WSYNC_MAX_APP_WINDOWS ||
		    !is_url(pc->base_url) || !is_url(pc->token_url))
			abort();
		for (int i = 0; i < pc->n_app_windows; i++)
			if (pc->app_windows[i].limit < 1 || pc->app_windows[i].seconds <= 0)
				abort();
		if (wsync_config_ok(cfg) &&
		    (!pc->plugin || (!pc->allow_insecure_http &&
		                     ((pc->base_url && !strncasecmp(pc->base_url, "http://", 7)) ||
		                      (pc->token_url && !strncasecmp(pc->token_url, "http://", 7))))))
			abort();
	}
	if (wsync_config_ok(cfg) && !cfg->conninfo)
		abort();
}

static const char *value_of(const PQconninfoOption *o, const char *kw)
{
	for (; o->keyword; o++)
		if (!strcmp(o->keyword, kw))
			return o->val;
	return NULL;
}

/* wsync_conninfo_masked(ci) reads back as ci with passwords masked. */
static void check_masked(const char *ci)
{
	char *msg = NULL, *masked;
	PQconninfoOption *orig = PQconninfoParse(ci, &msg), *back;

	PQfreemem(msg);
	masked = wsync_conninfo_masked(ci);
	if (!masked)
		abort();
	if (!orig) {
		if (strcmp(masked, "(not a valid conninfo; not shown)") != 0)
			abort();
		free(masked);
		return;
	}
	msg = NULL;
	back = PQconninfoParse(masked, &msg);
	PQfreemem(msg);
	if (!back)
		abort();
	for (const PQconninfoOption *o = orig; o->keyword; o++) {
		const char *v = value_of(back, o->keyword);
		if (o->dispchar && o->dispchar[0] == '*') {
			if (o->val ? !v || strcmp(v, "****") : v != NULL)
				abort();
		} else if (o->val ? !v || strcmp(v, o->val) : v != NULL) {
			abort();
		}
	}
	PQconninfoFree(back);
	PQconninfoFree(orig);
	free(masked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wsync_config *cfg;
	char *out = NULL, *text;
	size_t outlen = 0;
	FILE *f;

	setup();
	write_file(ini, data, size, "\n[plugins]\nconf_dir = conf.d\n");
	write_file(inst, data, size, "");
	cfg = wsync_config_load(ini);
	if (!cfg)
		abort();
	check_errors(cfg);
	check_bounds(cfg);
	if (cfg->conninfo)
		check_masked(cfg->conninfo);
	f = open_memstream(&out, &outlen);
	if (!f)
		abort();
	wsync_config_print(cfg, f);
	fclose(f);
	free(out);
	wsync_config_free(cfg);

	text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	check_masked(text);
	free(text);
	return 0;
}
