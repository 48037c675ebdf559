/* Config parsing: good files, and every kind of mistake named with file,
 * line, key and what was expected. */
#include "testlib.h"

#include "common/config.h"

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
	T_CONTAINS(wsync_config_errors(c), "wsyncd.ini:6: [metrics] listen = '127.0.0.1:9465': reserved for the metrics endpoint, which is not built yet");
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
}

int main(void)
{
	dir = t_tempdir();
	good_files();
	errors_name_file_line_key();
	missing_conninfo_and_env();
	secrets();
	parsers();
	return t_done();
}
