/*
 * engine.c -- wsyncd's life: start the threads of the job flow (flow.c),
 * supervise (LISTEN/NOTIFY, timers, signals, reloads), stop.
 */
#include "engine_internal.h"

#include "common/log.h"
#include "host/host.h"
#include "host/isolate.h"
#include "notify.h"
#include "providers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void wsync_engine_request_stop(wsync_engine *e)
{
	char c = 's';
	atomic_store(&e->stopping, 1);
	if (write(e->pipe_fd[1], &c, 1) < 0) { /* full pipe: already woken */
	}
}

void wsync_engine_request_reload(wsync_engine *e)
{
	char c = 'r';
	atomic_store(&e->reload_requested, 1);
	if (write(e->pipe_fd[1], &c, 1) < 0) {
	}
}

/* New work may be there: the store thread claims again. */
static void wake_workers(wsync_engine *e)
{
	pthread_mutex_lock(&e->mu);
	e->generation++;
	pthread_cond_broadcast(&e->store_cv);
	pthread_cond_broadcast(&e->starter_cv);
	pthread_cond_broadcast(&e->call_cv);
	pthread_cond_broadcast(&e->writer_cv);
	pthread_mutex_unlock(&e->mu);
}

void wsync_engine_sleep(wsync_engine *e, int s)
{
	for (int i = 0; i < s * 10 && !atomic_load(&e->stopping); i++) {
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
		if (i % 10 == 0)
			wsync_notify_watchdog(); /* the main thread waiting for the database */
	}
}

PGconn *wsync_engine_open(wsync_engine *e, const char *who, int store_flags, char *why,
                          size_t why_len)
{
	char name[64] = "wsyncd"; /* the supervisor's; the others say which thread */
	PGconn *c;
	if (strcmp(who, "wsyncd"))
		snprintf(name, sizeof name, "wsyncd %s", who);
	c = wsync_db_connect(e->conninfo, name);
	if (PQstatus(c) == CONNECTION_OK && (!store_flags || wsync_store_prepare(c, store_flags) == 0))
		return c;
	if (why)
		snprintf(why, why_len, "%s%.*s",
		         PQstatus(c) == CONNECTION_OK ? "the store's statements were refused "
		                                        "(is the schema migrated? `wsyncctl migrate`): "
		                                      : "",
		         (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
	PQfinish(c);
	return NULL;
}

/* Connect, retrying every second unless running once: work (and outcomes
 * held in memory) must resume within seconds of the database coming back.
 * A long outage is logged once a minute, not every second. */
PGconn *wsync_engine_connect(wsync_engine *e, const char *who, int store_flags)
{
	for (int tries = 0; !atomic_load(&e->stopping); tries++) {
		char line[512];
		PGconn *c = wsync_engine_open(e, who, store_flags, line, sizeof line);
		if (c) {
			if (tries)
				wsync_info("%s: connected to the database again", who);
			return c;
		}
		if (tries % 60 == 0)
			wsync_error("%s: cannot connect to the database: %s%s", who, line,
			            e->once ? "" : "; retrying every second");
		wsync_notify_status("waiting for the database: %s", line);
		if (e->once) {
			atomic_store(&e->db_failed, 1);
			return NULL;
		}
		wsync_engine_sleep(e, 1);
	}
	return NULL;
}

static size_t loaded_instances(wsync_engine *e)
{
	size_t loaded = 0, n = wsync_registry_count(e->registry);
	for (size_t i = 0; i < n; i++)
		loaded += wsync_registry_at(e->registry, i)->loaded ? 1 : 0;
	return loaded;
}

/* [metrics] listen: the endpoint serves from before the database answers
 * (/healthz, and /readyz saying why it is not ready).  -1: cannot listen
 * (a configuration error). */
static int start_metrics(wsync_engine *e)
{
	char err[256];
	int port;
	if (!e->cfg->metrics_listen || !*e->cfg->metrics_listen)
		return 0;
	if (!e->metrics || (port = wsync_metrics_start(e->metrics, e->cfg->metrics_listen, err,
	                                               sizeof err)) < 0) {
		wsync_error("%s", e->metrics ? err : "metrics: out of memory");
		return -1;
	}
	wsync_info("metrics: serving /metrics, /healthz and /readyz on %s (port %d)",
	           e->cfg->metrics_listen, port);
	return 0;
}

/* READY=1 (systemd): the database answered and the plugins are loaded. */
static void notify_ready(wsync_engine *e)
{
	wsync_notify_status("ready: %zu of %zu provider instances loaded, %d calls in flight at most",
	                    loaded_instances(e), wsync_registry_count(e->registry), e->n_threads);
	wsync_notify_ready();
}

/* Tell the database what this node's configuration serves; a provider
 * whose INI is gone is marked removed for this node (providers.c).  A
 * fresh registry has no quarantine: neither has the node's record. */
static void register_providers(wsync_engine *e, PGconn *db)
{
	wsync_providers_register(db, e->node, e->registry);
	if (wsync_store_quarantine_clear(db, e->node) < 0)
		wsync_debug("quarantine records not cleared (migration 0010 missing?): %.*s",
		            (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
}

/* 1 when no process has `pid` any more (or only its zombie, not reaped
 * yet); 0 when one does, whoever it is. */
static int process_gone(long pid)
{
	char path[64], buf[512], *paren;
	FILE *f;
	size_t n;
	if (pid <= 0 || pid == (long)getpid())
		return 0;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return 1;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/*
 * A wsyncd of this host that died (kill -9, OOM, a crash) leaves leases
 * that would hold its entries until they run out (lease_seconds).  Its
 * name says its pid: when no process has that pid any more, its leases are
 * released at once, so a restarted wsyncd takes them again within a
 * second.  Holders on other hosts, and a pid that now belongs to any live
 * process, keep their leases until they run out, as before.  The entries
 * keep their intents: what may have reached the provider is reconciled.
 */
static void release_dead_holders(wsync_engine *e, PGconn *db)
{
	char prefix[80], **holders;
	size_t hlen = strcspn(e->name, ":");
	int n;
	snprintf(prefix, sizeof prefix, "%.*s:", (int)hlen, e->name);
	if ((n = wsync_store_lease_holders(db, prefix, &holders)) < 0) {
		wsync_debug("lease holders not read: %.*s", (int)strcspn(PQerrorMessage(db), "\n"),
		            PQerrorMessage(db));
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *pid_at = holders[i] + strlen(prefix);
		char *end;
		long pid = strtol(pid_at, &end, 10);
		int released;
		if (end != pid_at && *end == ':' && strcmp(holders[i], e->name) != 0 &&
		    process_gone(pid) && (released = wsync_store_release_holder(db, holders[i])) > 0)
			wsync_warn("released %d entries leased to %s, a wsyncd of this host that is "
			           "gone (pid %ld): they are taken again now, not when the lease ends",
			           released, holders[i], pid);
		free(holders[i]);
	}
	free(holders);
}

/* A plugin's child was quarantined (host/isolate.h, from a call thread):
 * the supervisor records it. */
static void child_changed(void *arg)
{
	wsync_engine *e = arg;
	if (write(e->pipe_fd[1], "q", 1) < 0) {
		/* the pipe is full: the supervisor is awake anyway */
	}
}

/* Record new quarantines for the operator, and lift those the operator
 * released (`wsyncctl plugins --release`).  Returns how many instances
 * are still quarantined. */
static int sync_quarantine(wsync_engine *e, PGconn *db)
{
	char why[600];
	int left = 0;
	pthread_rwlock_rdlock(&e->swap_lock);
	for (size_t i = 0; i < wsync_registry_count(e->registry); i++) {
		wsync_plugin_instance *in = wsync_registry_at(e->registry, i);
		if (!in->child || !wsync_child_quarantined(in->child, NULL, 0))
			continue;
		if (wsync_child_quarantine_news(in->child, why, sizeof why)) {
			if (wsync_store_quarantine(db, e->node, in->name, why) < 0)
				wsync_warn("provider %s: quarantine not recorded in the database: %.*s",
				           in->name, (int)strcspn(PQerrorMessage(db), "\n"),
				           PQerrorMessage(db));
		} else if (wsync_store_quarantine_lifted(db, e->node, in->name) == 1) {
			wsync_info("provider %s: released by the operator", in->name);
			wsync_child_release(in->child);
			wake_workers(e); /* its entries are claimed again */
			continue;
		}
		left++;
	}
	pthread_rwlock_unlock(&e->swap_lock);
	return left;
}

/* The registry the engine runs: plugins in child processes of their own
 * unless [plugins] isolate = false. */
static wsync_registry *load_registry(wsync_engine *e, const wsync_config *cfg)
{
	wsync_isolation iso = {.channels = e->n_threads, .changed = child_changed,
	                       .changed_arg = e};
	return wsync_isolate_load(cfg, &iso);
}

static void reload(wsync_engine *e, PGconn *db)
{
	wsync_config *cfg = wsync_config_load(e->config_path);
	wsync_registry *reg;
	if (!wsync_config_ok(cfg)) {
		wsync_error("reload refused, keeping the running configuration:\n%s",
		            wsync_config_errors(cfg));
		wsync_notify_status("reload refused (configuration errors, see the log); running"
		                    " configuration kept");
		wsync_config_free(cfg);
		return;
	}
	wsync_info("SIGHUP: reloading %s", e->config_path);
	wsync_notify_reloading();
	wsync_notify_status("reloading %s", e->config_path);
	pthread_rwlock_wrlock(&e->swap_lock);
	wsync_registry_free(e->registry);
	/* Keep fields a running engine cannot change in flight. */
	cfg->workers = e->cfg->workers;
	wsync_config_free(e->cfg);
	e->cfg = cfg;
	wsync_log_set_level(cfg->log_level);
	wsync_config_warn_insecure(cfg);
	reg = load_registry(e, cfg);
	e->registry = reg;
	if (db)
		register_providers(e, db);
	wsync_metrics_set_ready(e->metrics, db != NULL, loaded_instances(e) > 0);
	pthread_rwlock_unlock(&e->swap_lock);
	notify_ready(e);
	wake_workers(e);
}

/* Take the notifications libpq has queued; returns how many there were. */
static int take_notifies(PGconn *db)
{
	PGnotify *n;
	int count = 0;
	PQconsumeInput(db);
	while ((n = PQnotifies(db))) {
		PQfreemem(n);
		count++;
	}
	return count;
}

/* The main thread: LISTEN, signals, timers. */
static void supervise(wsync_engine *e)
{
	PGconn *db = NULL;
	while (!atomic_load(&e->stopping)) {
		struct pollfd fds[2] = {{e->pipe_fd[0], POLLIN, 0}, {-1, POLLIN, 0}};
		long due;
		int timeout_ms, ready, wake = 0, queued;
		char buf[64];
		if (!db || PQstatus(db) != CONNECTION_OK) {
			PQfinish(db);
			db = wsync_engine_connect(e, "listener", 0);
			if (!db)
				break;
			if (e->cfg->listen)
				PQclear(PQexec(db, "LISTEN wsync_queue"));
			wake_workers(e); /* work may have arrived while we were away */
		}
		fds[1].fd = e->cfg->listen ? PQsocket(db) : -1;
		/* Sleep until the earliest retry falls due, at most one interval.
		 * Entries due now but blocked behind an in-flight entry of the
		 * same entity are picked up by the worker finishing that one, so
		 * a 1 s floor keeps this loop from spinning on them. */
		due = wsync_store_next_due(db);
		timeout_ms = e->cfg->interval_minutes * 60 * 1000;
		if (due >= 0 && due * 1000 < timeout_ms)
			timeout_ms = due < 1 ? 1000 : (int)(due * 1000) + 200;
		/* While a plugin is quarantined, look for the operator's release
		 * every few seconds (LISTEN may be off). */
		if (sync_quarantine(e, db) > 0 && timeout_ms > 5000)
			timeout_ms = 5000;
		/* Under a systemd watchdog, wake in time to ping it. */
		wsync_notify_watchdog();
		if (wsync_notify_watchdog_ms() > 0 && wsync_notify_watchdog_ms() < timeout_ms)
			timeout_ms = wsync_notify_watchdog_ms();
		/* A NOTIFY that arrived with the answer to a query (next_due just
		 * now, a reload's registrations) already sits in libpq's queue,
		 * where poll() cannot see it. */
		queued = e->cfg->listen ? take_notifies(db) : 0;
		ready = poll(fds, 2, queued ? 0 : timeout_ms);
		if (ready < 0 && errno != EINTR)
			break;
		/* timer: a retry is due, or the interval */
		wake = queued || ready == 0;
		if (fds[0].revents & POLLIN)
			while (read(e->pipe_fd[0], buf, sizeof buf) == (ssize_t)sizeof buf)
				;
		if (atomic_exchange(&e->reload_requested, 0))
			reload(e, db); /* wakes the workers itself */
		if (fds[1].fd >= 0 && (fds[1].revents & POLLIN) && take_notifies(db))
			wake = 1;
		if (wake)
			wake_workers(e);
	}
	PQfinish(db);
	wsync_notify_stopping();
	wsync_notify_status("stopping: finishing in-flight entries");
	wake_workers(e); /* let waiting workers see `stopping` */
}

wsync_engine *wsync_engine_new(wsync_config *cfg, const char *config_path)
{
	wsync_engine *e = calloc(1, sizeof *e);
	char host[64] = "localhost";
	if (!e)
		return NULL;
	e->cfg = cfg;
	e->config_path = config_path ? strdup(config_path) : NULL;
	e->conninfo = strdup(cfg->conninfo ? cfg->conninfo : "");
	e->limiter = wsync_ratelimiter_new();
	e->stagger = wsync_stagger_new();
	/* A few connections serve every call's token refreshes and limiter. */
	e->pool = wsync_dbpool_new(e->conninfo, 8);
	e->n_threads = cfg->workers > 0 ? cfg->workers : 1;
	/* Non-blocking both ways: a signal handler or a call thread never waits
	 * on a full pipe, and the supervisor drains it without blocking. */
	if (!e->conninfo || !e->limiter || !e->stagger || !e->pool ||
	    pipe2(e->pipe_fd, O_NONBLOCK | O_CLOEXEC) < 0) {
		wsync_dbpool_free(e->pool);
		wsync_stagger_free(e->stagger);
		wsync_ratelimiter_free(e->limiter);
		free(e->conninfo);
		free(e->config_path);
		free(e);
		return NULL;
	}
	pthread_rwlock_init(&e->swap_lock, NULL);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->store_cv, NULL);
	pthread_cond_init(&e->starter_cv, NULL);
	pthread_cond_init(&e->call_cv, NULL);
	pthread_cond_init(&e->writer_cv, NULL);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	/* The lease holder's name: unique to this process, so what it gives
	 * back after a reconnect is only ever its own. */
	gethostname(host, sizeof host - 1);
	snprintf(e->name, sizeof e->name, "%s:%d:%08x", host, (int)getpid(), (unsigned)rand());
	wsync_node_name(e->config_path, e->node, sizeof e->node);
	e->registry = load_registry(e, cfg);
	e->metrics = wsync_metrics_new(e->conninfo);
	return e;
}

void wsync_engine_free(wsync_engine *e)
{
	if (!e)
		return;
	wsync_metrics_free(e->metrics); /* stops the endpoint first */
	wsync_registry_free(e->registry);
	wsync_ratelimiter_free(e->limiter);
	wsync_stagger_free(e->stagger);
	wsync_dbpool_free(e->pool);
	wsync_config_free(e->cfg);
	pthread_rwlock_destroy(&e->swap_lock);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->store_cv);
	pthread_cond_destroy(&e->starter_cv);
	pthread_cond_destroy(&e->call_cv);
	pthread_cond_destroy(&e->writer_cv);
	close(e->pipe_fd[0]);
	close(e->pipe_fd[1]);
	free(e->busy_keys);
	free(e->held);
	free(e->conninfo);
	free(e->config_path);
	free(e);
}

int wsync_engine_run(wsync_engine *e, int once)
{
	pthread_t *calls = calloc((size_t)e->n_threads, sizeof *calls);
	pthread_t claimer, starter, writer, heartbeat;
	PGconn *db;

	e->once = once;
	if (start_metrics(e) < 0) {
		free(calls);
		return 2;
	}
	wsync_notify_status("connecting to the database");
	db = calls ? wsync_engine_connect(e, "wsyncd", 0) : NULL;
	if (!db) {
		free(calls);
		return 1;
	}
	register_providers(e, db);
	release_dead_holders(e, db);
	PQfinish(db);
	wsync_metrics_set_ready(e->metrics, 1, loaded_instances(e) > 0);
	notify_ready(e);
	pthread_create(&writer, NULL, wsync_flow_writer, e);
	pthread_create(&heartbeat, NULL, wsync_flow_heartbeat, e);
	for (int i = 0; i < e->n_threads; i++)
		pthread_create(&calls[i], NULL, wsync_flow_call, e);
	pthread_create(&starter, NULL, wsync_flow_starter, e);
	pthread_create(&claimer, NULL, wsync_flow_claimer, e);
	if (!once)
		supervise(e);
	pthread_join(claimer, NULL);
	pthread_join(starter, NULL);
	for (int i = 0; i < e->n_threads; i++)
		pthread_join(calls[i], NULL);
	pthread_join(writer, NULL);
	pthread_join(heartbeat, NULL);
	free(calls);
	return atomic_load(&e->db_failed) ? 1 : 0;
}
