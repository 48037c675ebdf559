/*
 * wsyncd -- drains workout_sync_queue through the provider plugins.
 */
#include "config.h"
#include "engine.h"
#include "host.h"
#include "log.h"
#include "plugin_loader.h"

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wsync_engine *running;

static void on_signal(int sig)
{
	if (!running)
		return;
	if (sig == SIGHUP)
		wsync_engine_request_reload(running);
	else
		wsync_engine_request_stop(running);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wsyncd [OPTIONS]\n"
		"Keep workouts in sync with training platforms: drains workout_sync_queue\n"
		"through the provider plugins of the configuration.\n\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"      --once         process everything that is due, then exit\n"
		"      --check        validate configuration and plugins, print what would\n"
		"                     load (secrets masked), exit 0 if everything loads\n"
		"  -h, --help         this help\n"
		"  -V, --version      print the version\n\n"
		"Environment: WSYNC_DATABASE_URL overrides [database] conninfo;\n"
		"WORKOUT_SYNC_INTERVAL_MINUTES overrides [engine] interval_minutes.\n"
		"Signals: SIGTERM/SIGINT finish in-flight entries and exit; SIGHUP re-reads\n"
		"the configuration and loads plugins newly dropped into the plugin directory.\n"
		"Exit codes: 0 ok, 1 runtime failure (database unreachable, plugin refused\n"
		"with --check), 2 usage or configuration error.\n",
		WSYNC_DEFAULT_CONFIG);
}

static void print_schema(const wsync_plugin *d)
{
	for (uint32_t k = 0; d->config_keys && k < d->n_config_keys; k++) {
		const wsync_config_key *ck = &d->config_keys[k];
		printf("      [%s] %s%s%s%s  %s\n", ck->section, ck->key,
		       ck->required ? " (required)" : "",
		       ck->default_value ? ", default " : "",
		       ck->default_value ? ck->default_value : "", ck->help ? ck->help : "");
	}
}

/* --check: the effective configuration, then every instance. */
static int check(wsync_config *cfg)
{
	wsync_registry *reg;
	int config_error = 0;
	size_t n;

	wsync_config_print(cfg, stdout);
	reg = wsync_registry_load(cfg, wsync_host_services());
	n = wsync_registry_count(reg);
	printf("\nplugin instances (%zu):\n", n);
	for (size_t i = 0; i < n; i++) {
		wsync_plugin_instance *in = wsync_registry_at(reg, i);
		if (in->loaded) {
			printf("  %-16s ok       %s  plugin %s %s  ABI %u.%u%s\n", in->name,
			       in->file, in->desc->name, in->desc->version, in->desc->abi_major,
			       in->desc->abi_minor, in->enabled ? "" : "  (disabled)");
			print_schema(in->desc);
		} else {
			printf("  %-16s REFUSED  %s\n", in->name, in->refusal ? in->refusal : "?");
			config_error |= in->config_error;
		}
	}
	n = wsync_registry_failures(reg);
	wsync_registry_free(reg);
	if (config_error)
		return 2;
	return n ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"once", no_argument, NULL, 'o'},
		{"check", no_argument, NULL, 'k'},       {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},     {NULL, 0, NULL, 0}};
	const char *path = WSYNC_DEFAULT_CONFIG;
	int once = 0, do_check = 0, c, rc;
	wsync_config *cfg;
	struct sigaction sa;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'o': once = 1; break;
		case 'k': do_check = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("wsyncd %s (plugin ABI %d.%d)\n", WSYNC_VERSION,
		                 WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wsyncd: unexpected argument '%s' (see wsyncd --help)\n", argv[optind]);
		return 2;
	}
	cfg = wsync_config_load(path);
	if (!wsync_config_ok(cfg)) {
		fprintf(stderr, "wsyncd: configuration error:\n%s", wsync_config_errors(cfg));
		wsync_config_free(cfg);
		return 2;
	}
	wsync_log_set_level(cfg->log_level);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (do_check) {
		rc = check(cfg);
		wsync_config_free(cfg);
		curl_global_cleanup();
		return rc;
	}
	running = wsync_engine_new(cfg, path);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	wsync_info("wsyncd %s starting (%d workers%s)", WSYNC_VERSION, cfg->workers,
	           once ? ", once" : "");
	rc = wsync_engine_run(running, once);
	wsync_info("wsyncd stopped");
	wsync_engine_free(running);
	running = NULL;
	curl_global_cleanup();
	return rc;
}
