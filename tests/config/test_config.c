/* Config parsing: good files, and every kind of mistake named with file,
 * line, key and what was expected. */
#include "testlib.h"

#include "common/config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static wsync_config *load(const char *main_ini, const char *inst_ini)
{
	char path[512], conf[512], inst[600];
	snprintf(conf, sizeof conf, "%s/conf.d", dir);
	mkdir(conf, 0755);
	snprintf(inst, sizeof inst, "%s/conf.d/wahoo.ini", dir);
	unlink(inst);
	if (inst_ini)
		t_write_file(inst, inst_ini, 0644);
	snprintf(path, sizeof path, "%s/wsyncd.ini", dir);
	t_write_file(path, main_ini, 0644);
	return wsync_config_load(path);
}

#define MAIN_OK "[database]\nconninfo = dbname=x\n[plugins]\nconf_dir = conf.d\n"

static void good_files(void)
{
	wsync_config *c = load(MAIN_OK "[engine]\nworkers = 3\nbackoff = 1m, 5m\n"
	                       "[log]\nlevel = debug\n",
	                       "[provider]\nplugin = wahoo\nbase_url = https://api.example\n"
	                       "app_rate_limits = 200/5m, 1000/1h, 5000/1d\n"
	                       "rate_limit_per_minute = 20\n");
	T_CHECK(wsync_config_ok(c));
	T_EQ_STR(wsync_config_errors(c), "");
	T_EQ_INT(c->workers, 3);
	T_EQ_INT(c->n_backoff, 2);
	T_EQ_INT(c->backoff_s[1], 300);
	T_EQ_INT(c->interval_minutes, 10);
	T_EQ_INT(c->max_retries, 3);
	T_EQ_INT(c->log_level, 0);
	T_EQ_INT(c->n_providers, 1);
	T_EQ_STR(c->providers[0].name, "wahoo");
	T_EQ_INT(c->providers[0].rate_limit_per_minute, 20);
	T_EQ_INT(c->providers[0].n_app_windows, 3);
	T_EQ_INT(c->providers[0].app_windows[0].limit, 200);
	T_EQ_INT(c->providers[0].app_windows[0].seconds, 300);
	T_EQ_INT(c->providers[0].app_windows[2].seconds, 86400);
	wsync_config_free(c);
}

/* Per-user windows: user_rate_limits, or rate_limit_per_minute as N/1m. */
static void user_windows(void)
{
	const wsync_provider_config *p;
	/* The default: 30 per minute. */
	wsync_config *c = load(MAIN_OK, "[provider]\nplugin = wahoo\n");
	T_CHECK(wsync_config_ok(c));
	p = &c->providers[0];
	T_EQ_INT(p->n_user_windows, 1);
	T_EQ_INT(p->user_windows[0].limit, 30);
	T_EQ_INT(p->user_windows[0].seconds, 60);
	wsync_config_free(c);
	/* rate_limit_per_minute = N is N/1m. */
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nrate_limit_per_minute = 20\n");
	T_CHECK(wsync_config_ok(c));
	p = &c->providers[0];
	T_EQ_INT(p->n_user_windows, 1);
	T_EQ_INT(p->user_windows[0].limit, 20);
	T_EQ_INT(p->user_windows[0].seconds, 60);
	wsync_config_free(c);
	/* Several windows; rate_limit_per_minute follows the minute one. */
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nuser_rate_limits = 30/1m, 1000/1d\n");
	T_CHECK(wsync_config_ok(c));
	T_EQ_STR(wsync_config_errors(c), "");
	p = &c->providers[0];
	T_EQ_INT(p->n_user_windows, 2);
	T_EQ_INT(p->user_windows[1].limit, 1000);
	T_EQ_INT(p->user_windows[1].seconds, 86400);
	T_EQ_INT(p->rate_limit_per_minute, 30);
	wsync_config_free(c);
	/* A daily window alone: no minute window at all. */
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nuser_rate_limits = 200/1d\n");
	T_CHECK(wsync_config_ok(c));
	p = &c->providers[0];
	T_EQ_INT(p->n_user_windows, 1);
	T_EQ_INT(p->user_windows[0].seconds, 86400);
	T_EQ_INT(p->rate_limit_per_minute, 0);
	wsync_config_free(c);

	/* Mistakes, each with file:line and the key. */
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nuser_rate_limits = 30/1m,,1000/1d\n");
	T_CHECK(!wsync_config_ok(c));
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:3: [provider] user_rate_limits = "
	           "'30/1m,,1000/1d': expected a comma list of 1 to 8 windows");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\n\nuser_rate_limits = 30/1m, 1000/1x\n");
	T_CHECK(!wsync_config_ok(c));
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:4: [provider] user_rate_limits = "
	           "'30/1m, 1000/1x': expected");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nuser_rate_limits = 0/1d\n");
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:3: [provider] user_rate_limits = '0/1d'");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nuser_rate_limits =\n");
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:3: [provider] user_rate_limits = '': "
	           "expected a comma list of 1 to 8 windows");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nuser_rate_limits = 30/1m, 20/60s\n");
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:3: [provider] user_rate_limits = "
	           "'30/1m, 20/60s': two windows of 60 seconds");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nrate_limit_per_minute = 20\n"
	         "user_rate_limits = 30/1m, 1000/1d\n");
	T_CHECK(!wsync_config_ok(c));
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:4: [provider] user_rate_limits: "
	           "rate_limit_per_minute is set too (line 3)");
	wsync_config_free(c);
}

static void errors_name_file_line_key(void)
{
	wsync_config *c = load(MAIN_OK "[engine]\nworkers = many\nbogus = 1\n", NULL);
	T_CHECK(!wsync_config_ok(c));
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:6: [engine] workers = 'many': expected an integer");
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:7: [engine] bogus: unknown key");
	wsync_config_free(c);

	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nenabled = maybe\n");
	T_CONTAINS(wsync_config_errors(c), "conf.d/wahoo.ini:3: [provider] enabled = 'maybe': expected true or false");
	wsync_config_free(c);

	c = load(MAIN_OK, "[provider]\nenabled = true\n");
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini: [provider] plugin: missing required key");
	wsync_config_free(c);

	c = load("[database]\nconninfo = x\nthis is not ini\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:3: not an INI line");
	wsync_config_free(c);

	c = load(MAIN_OK "[metrics]\nlisten = 127.0.0.1:9465\n", NULL);
	T_CHECK(wsync_config_ok(c));
	wsync_config_free(c);
	c = load(MAIN_OK "[metrics]\nlisten = example.com:9465\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:6: [metrics] listen = 'example.com:9465': expected HOST:PORT with an IP address");
	wsync_config_free(c);
	c = load(MAIN_OK "[metrics]\nlisten = 127.0.0.1:70000\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "[metrics] listen = '127.0.0.1:70000': expected HOST:PORT");
	wsync_config_free(c);

	c = load(MAIN_OK "[engine]\nbackoff = 2m, soon\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "[engine] backoff = '2m, soon': expected a comma list");
	wsync_config_free(c);

	c = load(MAIN_OK, "[provider]\nplugin = wahoo\napp_rate_limits = lots\n");
	T_CONTAINS(wsync_config_errors(c), "app_rate_limits = 'lots'");
	wsync_config_free(c);

	c = load(MAIN_OK, "[provider]\nplugin = wahoo\n[oauth]\nclient_secret = hunter2\n");
	T_CONTAINS(wsync_config_errors(c), "secrets are never written inline");
	wsync_config_free(c);
}

static void missing_conninfo_and_env(void)
{
	wsync_config *c = load("[plugins]\nconf_dir = conf.d\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "[database] conninfo: missing required key");
	wsync_config_free(c);

	setenv("WSYNC_DATABASE_URL", "postgresql:///fromenv", 1);
	setenv("WORKOUT_SYNC_INTERVAL_MINUTES", "3", 1);
	c = load("[plugins]\nconf_dir = conf.d\n", NULL);
	T_CHECK(wsync_config_ok(c));
	T_EQ_STR(c->conninfo, "postgresql:///fromenv");
	T_EQ_INT(c->interval_minutes, 3);
	wsync_config_free(c);

	setenv("WORKOUT_SYNC_INTERVAL_MINUTES", "soon", 1);
	c = load(MAIN_OK, NULL);
	T_CONTAINS(wsync_config_errors(c), "WORKOUT_SYNC_INTERVAL_MINUTES = 'soon'");
	wsync_config_free(c);
	unsetenv("WSYNC_DATABASE_URL");
	unsetenv("WORKOUT_SYNC_INTERVAL_MINUTES");
}

static void secrets(void)
{
	char secret[512], ini[1024];
	wsync_config *c;
	snprintf(secret, sizeof secret, "%s/secret", dir);
	t_write_file(secret, "s3cr3t\n", 0644);
	snprintf(ini, sizeof ini, "[provider]\nplugin = wahoo\n[oauth]\ntoken_url = https://x/t\n"
	         "client_id = id\nclient_secret_file = %s\n", secret);
	c = load(MAIN_OK, ini);
	T_CONTAINS(wsync_config_errors(c), "readable by group or others (mode 644)");
	wsync_config_free(c);

	chmod(secret, 0600);
	c = load(MAIN_OK, ini);
	T_CHECK(wsync_config_ok(c));
	T_EQ_STR(c->providers[0].client_secret, "s3cr3t");
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		wsync_config_print(c, f);
		fclose(f);
		T_CHECK(strstr(buf, "s3cr3t") == NULL);
		T_CONTAINS(buf, "client_secret_file = ");
		free(buf);
	}
	wsync_config_free(c);
}

/* Write `len` bytes (NULs included) to `path`. */
static void write_bytes(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	T_CHECK(fd >= 0 && write(fd, buf, len) == (ssize_t)len);
	close(fd);
}

static void robust_reading(void)
{
	char path[600], *long_ini, *big;
	size_t n;
	wsync_config *c;

	/* Lines far beyond inih's 200 bytes: a 5000-character application_name. */
	long_ini = malloc(6000);
	n = (size_t)snprintf(long_ini, 6000, "[database]\nconninfo = dbname=x application_name=");
	memset(long_ini + n, 'a', 5000);
	snprintf(long_ini + n + 5000, 6000 - n - 5000, "\n[plugins]\nconf_dir = conf.d\n");
	c = load(long_ini, NULL);
	T_EQ_STR(wsync_config_errors(c), "");
	T_EQ_INT(strlen(c->conninfo), strlen("dbname=x application_name=") + 5000);
	wsync_config_free(c);
	free(long_ini);

	/* A NUL byte in a value: named with file, line and key. */
	snprintf(path, sizeof path, "%s/wsyncd.ini", dir);
	{
		static const char nul[] = MAIN_OK "[engine]\nworkers = 4\0junk\n";
		write_bytes(path, nul, sizeof nul - 1);
		c = wsync_config_load(path);
		T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:6: [engine] workers: the value "
		           "holds a NUL byte");
		wsync_config_free(c);
	}
	c = load(MAIN_OK "[engine]\nworkers = 4x\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:6: [engine] workers = '4x': expected an integer");
	wsync_config_free(c);
	c = load(MAIN_OK "[engine]\nbackoff = 2m,,10m\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:6: [engine] backoff = '2m,,10m': "
	           "expected a comma list");
	wsync_config_free(c);
	c = load(MAIN_OK "[engine]\nbackoff = 2m, 10m,\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:6: [engine] backoff = '2m, 10m,'");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\napp_rate_limits = 200/5m,,1000/1h\n");
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:3: [provider] app_rate_limits = "
	           "'200/5m,,1000/1h'");
	wsync_config_free(c);

	/* An unterminated header is reported as such, and the keys below it
	 * are not blamed on the section before. */
	c = load(MAIN_OK "[engine\nworkers = 4\n", NULL);
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:5: '[engine': unterminated section "
	           "header (expected ']')");
	T_CHECK(!strstr(wsync_config_errors(c), "unknown key"));
	T_CHECK(!strstr(wsync_config_errors(c), ":6:"));
	wsync_config_free(c);
	c = load("workers = 4\n" MAIN_OK, NULL);
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:1: workers: key outside any section");
	wsync_config_free(c);

	/* Comments, a BOM, CRLF and blanks still read as before. */
	c = load("\xEF\xBB\xBF; wsyncd\r\n[database]\r\nconninfo = dbname=x\r\n"
	         "[plugins]\nconf_dir = conf.d ; relative\n  [engine]  \n"
	         "# a comment\n\tworkers=3 ; three\n", NULL);
	T_EQ_STR(wsync_config_errors(c), "");
	T_EQ_INT(c->workers, 3);
	T_EQ_STR(c->conninfo, "dbname=x");
	wsync_config_free(c);

	/* Not regular files fail at once, and nothing too large is read. */
	c = wsync_config_load("/dev/zero");
	T_EQ_STR(wsync_config_errors(c), "/dev/zero: not a regular file (a character device); "
	         "give the path of a file\n");
	wsync_config_free(c);
	snprintf(path, sizeof path, "%s/fifo.ini", dir);
	T_EQ_INT(mkfifo(path, 0600), 0);
	c = wsync_config_load(path);
	T_CONTAINS(wsync_config_errors(c), "fifo.ini: not a regular file (a FIFO)");
	wsync_config_free(c);
	unlink(path);
	c = wsync_config_load(dir);
	T_CONTAINS(wsync_config_errors(c), "not a regular file (a directory)");
	wsync_config_free(c);
	snprintf(path, sizeof path, "%s/big.ini", dir);
	big = malloc(WSYNC_CONFIG_MAX_BYTES + 1);
	memset(big, ';', WSYNC_CONFIG_MAX_BYTES + 1);
	write_bytes(path, big, WSYNC_CONFIG_MAX_BYTES + 1);
	free(big);
	c = wsync_config_load(path);
	T_CONTAINS(wsync_config_errors(c), "big.ini: too large (1048577 bytes, at most 1048576)");
	wsync_config_free(c);
	unlink(path);
}

static void https_only(void)
{
	wsync_config *c;
	char *argv[5], *out = NULL, exe[600];

	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nbase_url = http://127.0.0.1:9\n");
	T_CONTAINS(wsync_config_errors(c), "conf.d/wahoo.ini:3: [provider] base_url = "
	           "'http://127.0.0.1:9': clear-text http is refused; use an https:// URL (or, "
	           "for a local development endpoint only, set allow_insecure_http = true in "
	           "[provider])");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nbase_url = https://a.example\n"
	         "[oauth]\ntoken_url = HTTP://127.0.0.1:9/t\nclient_id = i\n");
	T_CONTAINS(wsync_config_errors(c), "conf.d/wahoo.ini:5: [oauth] token_url = "
	           "'HTTP://127.0.0.1:9/t': clear-text http is refused");
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nbase_url = ftp://x\n");
	T_CONTAINS(wsync_config_errors(c), "wahoo.ini:3: [provider] base_url = 'ftp://x': "
	           "expected an https:// URL");
	wsync_config_free(c);
	/* The opt-in, wherever it stands in the file. */
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nbase_url = http://127.0.0.1:9\n"
	         "allow_insecure_http = true\n");
	T_EQ_STR(wsync_config_errors(c), "");
	T_EQ_INT(c->providers[0].allow_insecure_http, 1);
	wsync_config_free(c);
	c = load(MAIN_OK, "[oauth]\ntoken_url = http://127.0.0.1:9/t\n[provider]\nplugin = wahoo\n"
	         "allow_insecure_http = yes\n");
	T_CHECK(!strstr(wsync_config_errors(c), "clear-text"));
	wsync_config_free(c);

	/* wsyncd: exit 2 without the flag; a warning at start with it. */
	snprintf(exe, sizeof exe, "%s/core/daemon/wsyncd", getenv("WSYNC_BUILD_ROOT"));
	argv[0] = exe;
	argv[1] = "-c";
	argv[3] = "--check";
	argv[4] = NULL;
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nbase_url = http://127.0.0.1:9\n");
	argv[2] = c->path;
	T_EQ_INT(t_run(argv, &out), 2);
	T_CONTAINS(out, "wahoo.ini:3: [provider] base_url = 'http://127.0.0.1:9': clear-text "
	           "http is refused");
	free(out);
	wsync_config_free(c);
	c = load(MAIN_OK, "[provider]\nplugin = wahoo\nbase_url = http://127.0.0.1:9\n"
	         "allow_insecure_http = true\n");
	argv[2] = c->path;
	t_run(argv, &out);
	T_CONTAINS(out, "WARN");
	T_CONTAINS(out, "provider wahoo: http://127.0.0.1:9 is clear-text http "
	           "(allow_insecure_http = true in");
	free(out);
	wsync_config_free(c);
}

/* Every form of password libpq accepts is masked, the rest kept. */
static void conninfo_masking(void)
{
	static const struct {
		const char *in, *secret, *kept;
	} cases[] = {
		{"host=h password=s3cr3t dbname=d", "s3cr3t", "dbname=d"},
		{"host=h password = s3cr3t dbname=d", "s3cr3t", "host=h"},
		{"password='a b' dbname=d", "a b", "dbname=d"},
		{"password = 'it\\'s' user=u", "it", "user=u"},
		{"postgresql://user:s3cr3t@db.example/app", "s3cr3t", "user=user"},
		{"postgres://u:p%40ss@h:5433/app?sslmode=require", "p@ss", "sslmode=require"},
		{"postgresql://u:s3cr3t@h/app", "s3cr3t", "dbname=app"},
		{"postgresql://h/app?password=qs3cr3t", "qs3cr3t", "host=h"},
		{"postgresql:///app?host=/run/pg&password=x7y", "x7y", "host=/run/pg"},
		{"dbname=d sslpassword=k3y", "k3y", "dbname=d"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *m = wsync_conninfo_masked(cases[i].in);
		if (strstr(m, cases[i].secret))
			t_fail(__FILE__, __LINE__, "'%s' printed as '%s'", cases[i].in, m);
		T_CONTAINS(m, "password=****");
		T_CONTAINS(m, cases[i].kept);
		free(m);
	}
	{
		char *m = wsync_conninfo_masked("host=h dbname='my db'");
		/* libpq's order of keywords; quotes where a value needs them */
		T_EQ_STR(m, "dbname='my db' host=h");
		free(m);
		m = wsync_conninfo_masked("password='unterminated s3cr3t");
		T_EQ_STR(m, "(not a valid conninfo; not shown)");
		free(m);
		m = wsync_conninfo_masked(NULL);
		T_EQ_STR(m, "(unset)");
		free(m);
	}
	/* Through --check's printer, and a conninfo libpq cannot read is a
	 * configuration error that does not repeat the value. */
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *f;
		wsync_config *c = load("[database]\nconninfo = host=h password = 'a b' dbname=d\n"
		                       "[plugins]\nconf_dir = conf.d\n", NULL);
		T_EQ_STR(wsync_config_errors(c), "");
		f = open_memstream(&buf, &len);
		wsync_config_print(c, f);
		fclose(f);
		T_CONTAINS(buf, "conninfo = password=**** dbname=d host=h\n");
		T_CHECK(!strstr(buf, "a b"));
		free(buf);
		wsync_config_free(c);
		c = load("[database]\nconninfo = password='s3cr3t\n[plugins]\nconf_dir = conf.d\n", NULL);
		T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:2: [database] conninfo: not a valid "
		           "libpq conninfo");
		T_CHECK(!strstr(wsync_config_errors(c), "s3cr3t"));
		wsync_config_free(c);
	}
}

static void parsers(void)
{
	int v, n, b[4];
	T_EQ_INT(wsync_parse_duration("2m", &v), 0);
	T_EQ_INT(v, 120);
	T_EQ_INT(wsync_parse_duration("1h", &v), 0);
	T_EQ_INT(v, 3600);
	T_CHECK(wsync_parse_duration("2x", &v) < 0);
	T_EQ_INT(wsync_parse_backoff("2m, 10m, 1h", b, 4, &n), 0);
	T_EQ_INT(n, 3);
	T_EQ_INT(b[2], 3600);
	T_CHECK(wsync_parse_backoff("2m,,1h", b, 4, &n) < 0);
	T_CHECK(wsync_parse_backoff("", b, 4, &n) < 0);
	T_CHECK(wsync_parse_backoff("1m,2m,3m,4m,5m", b, 4, &n) < 0);
	/* A bad list leaves the previous good one whole (found by fuzzing:
	 * a zero-second window was left behind). */
	T_CHECK(wsync_parse_backoff("5m, 0", b, 4, &n) < 0);
	T_EQ_INT(n, 3);
	T_EQ_INT(b[0], 120);
	{
		wsync_rate_window w[4];
		T_EQ_INT(wsync_parse_rate_windows("200/5m, 1000/1h", w, 4, &n), 0);
		T_EQ_INT(n, 2);
		T_CHECK(wsync_parse_rate_windows("205/0m, 100/1h", w, 4, &n) < 0);
		T_EQ_INT(n, 2);
		T_EQ_INT(w[0].limit, 200);
		T_EQ_INT(w[0].seconds, 300);
	}
}

int main(void)
{
	dir = t_tempdir();
	good_files();
	user_windows();
	errors_name_file_line_key();
	missing_conninfo_and_env();
	secrets();
	robust_reading();
	https_only();
	conninfo_masking();
	parsers();
	return t_done();
}
