/*
 * wsyncd -- drains workout_sync_queue through the provider plugins.
 */
#include "common/config.h"
#include "common/filetrust.h"
#include "engine.h"
#include "host/host.h"
#include "host/isolate.h"
#include "common/log.h"
#include "host/plugin_loader.h"
#include "notify.h"

#include <curl/curl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static wsync_engine *running;
static int journal; /* stderr is the journal: fatal lines get a priority */

static void on_signal(int sig)
{
	if (!running)
		return;
	if (sig == SIGHUP)
		wsync_engine_request_reload(running);
	else
		wsync_engine_request_stop(running);
}

/* Append `s` to buf (async-signal-safe: no stdio, no allocation). */
static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (s && *s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_int(char *buf, size_t at, size_t cap, int v)
{
	char digits[12];
	int n = 0;
	unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
	if (v < 0)
		at = put(buf, at, cap, "-");
	do
		digits[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < (int)sizeof digits);
	while (n > 0 && at + 1 < cap)
		buf[at++] = digits[--n];
	return at;
}

/*
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT: say which plugin the crashing
 * thread was inside (wsync_current_instance, set around every plugin call:
 * docs/design.md, "How an entry flows", step 6), with write(2) only, then
 * die of the same signal (SA_RESETHAND restored the default action;
 * SA_NODEFER lets the re-raise through at once), so the exit status and
 * core dump stay those of the original fault.  An entry that keeps
 * crashing the daemon is failed for good after 3 claims (engine.c).
 */
static void on_fatal(int sig)
{
	const wsync_plugin_instance *in = wsync_current_instance;
	char msg[512];
	size_t n = 0;
	if (journal) /* decided before any plugin ran: no call here */
		n = put(msg, n, sizeof msg, "<2>");
	n = put(msg, n, sizeof msg, "wsyncd: fatal signal ");
	n = put_int(msg, n, sizeof msg, sig);
	if (in) {
		n = put(msg, n, sizeof msg, " inside plugin ");
		n = put(msg, n, sizeof msg, in->desc ? in->desc->name : "?");
		n = put(msg, n, sizeof msg, " (provider ");
		n = put(msg, n, sizeof msg, in->name);
		n = put(msg, n, sizeof msg, ", ");
		n = put(msg, n, sizeof msg, in->file);
		n = put(msg, n, sizeof msg, ")");
	} else {
		n = put(msg, n, sizeof msg, " (not inside a plugin)");
	}
	n = put(msg, n, sizeof msg, "\n");
	if (write(STDERR_FILENO, msg, n) < 0) {
	}
	raise(sig);
}

static void install_fatal_handlers(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	static char altstack[64 * 1024];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
	struct sigaction sa;
	/* The main thread's stack overflow still reaches the handler. */
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sa.sa_flags = (int)(SA_RESETHAND | SA_NODEFER | SA_ONSTACK);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
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
		"      --insecure-files  trust configuration, plugin and secret files\n"
		"                     whoever owns or can write them (development only)\n"
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

/* Under the journal every line carries the error priority, not the first only. */
static void print_config_errors(const char *errs)
{
	const char *pri = wsync_log_to_journal() ? "<3>" : "";
	fprintf(stderr, "%swsyncd: configuration error:\n", pri);
	while (*errs) {
		size_t len = strcspn(errs, "\n");
		fprintf(stderr, "%s%.*s\n", pri, (int)len, errs);
		errs += len + (errs[len] == '\n');
	}
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
	reg = wsync_isolate_load(cfg, &(wsync_isolation){.channels = 1});
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

/* glibc gives every thread that allocates its own arena (up to 8 per
 * core), each holding on to the pages it once used: with dozens of call
 * threads that is most of the daemon's memory.  Two arenas are plenty for
 * threads that mostly wait on the network. */
static void limit_arenas(void)
{
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 2);
#endif
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"once", no_argument, NULL, 'o'},
		{"check", no_argument, NULL, 'k'},       {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"insecure-files", no_argument, NULL, 'I'}, {NULL, 0, NULL, 0}};
	const char *path = WSYNC_DEFAULT_CONFIG;
	int once = 0, do_check = 0, c, rc;
	wsync_config *cfg;
	struct sigaction sa;

	/* A plugin's child process (host/isolate.h): the same binary, started
	 * fresh by wsyncd, so none of wsyncd's memory is in it. */
	limit_arenas();
	if (argc >= 2 && !strcmp(argv[1], "--plugin-host"))
		return wsync_plugin_host_main();
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'o': once = 1; break;
		case 'k': do_check = 1; break;
		case 'I': wsync_trust_set_insecure(1); break;
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
	if (wsync_trust_insecure())
		wsync_warn("--insecure-files: the owner and write-mode checks of wsyncd.ini, "
		           "conf.d, the plugins and the secret files are OFF: anyone who can "
		           "write them can run code as this user; development only");
	cfg = wsync_config_load(path);
	if (!wsync_config_ok(cfg)) {
		print_config_errors(wsync_config_errors(cfg));
		wsync_config_free(cfg);
		return 2;
	}
	wsync_log_set_level(cfg->log_level);
	wsync_config_warn_insecure(cfg);
	journal = wsync_log_to_journal();
	install_fatal_handlers();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (do_check) {
		rc = check(cfg);
		wsync_config_free(cfg);
		curl_global_cleanup();
		return rc;
	}
	wsync_notify_init();
	/* Not dumpable: no core file with tokens in it, and a process of the
	 * same user (a plugin's, when wsyncd does not run as root) can neither
	 * trace wsyncd nor read its memory or environment through /proc. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
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
