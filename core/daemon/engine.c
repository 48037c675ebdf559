#include "engine.h"

#include "host/classify.h"
#include "dispatch.h"
#include "host/host.h"
#include "common/log.h"
#include "host/plugin_loader.h"
#include "notify.h"
#include "queue.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* An entry claimed this many times without ever completing (its worker
 * died, or its lease ran out) is failed for good instead of looping. */
#define MAX_ABANDONED_CLAIMS 3

/* Each worker's signal stack (see worker_main). */
#define ALT_STACK_SIZE (64 * 1024)

struct wsync_engine {
	wsync_config *cfg;
	char *config_path;
	wsync_registry *registry;
	wsync_ratelimiter *limiter;
	pthread_rwlock_t swap_lock;     /* writers: reload swaps cfg/registry */
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	unsigned long generation;       /* bumped at every wake-up */
	atomic_int stopping;
	atomic_int reload_requested;
	atomic_int db_failed;           /* once: a worker never reached the DB */
	int once;
	int pipe_fd[2];                 /* self-pipe from signal handlers */
};

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

static void wake_workers(wsync_engine *e)
{
	pthread_mutex_lock(&e->wake_lock);
	e->generation++;
	pthread_cond_broadcast(&e->wake);
	pthread_mutex_unlock(&e->wake_lock);
}

static void wait_for_work(wsync_engine *e, unsigned long seen, int max_s)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += max_s;
	pthread_mutex_lock(&e->wake_lock);
	while (e->generation == seen && !atomic_load(&e->stopping))
		if (pthread_cond_timedwait(&e->wake, &e->wake_lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&e->wake_lock);
}

static void sleep_s(wsync_engine *e, int s)
{
	for (int i = 0; i < s * 10 && !atomic_load(&e->stopping); i++) {
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
		wsync_notify_watchdog(); /* the main thread waiting for the database */
	}
}

/* libpq messages end in a newline and may span lines: log the first. */
static const char *first_line(const char *msg, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s", (int)strcspn(msg, "\n"), msg);
	return buf;
}

/* Connect, retrying with backoff (1, 2, 4 .. 30 s) unless running once. */
static PGconn *connect_db(wsync_engine *e, const char *who)
{
	int delay = 1;
	while (!atomic_load(&e->stopping)) {
		PGconn *c = PQconnectdb(e->cfg->conninfo);
		char line[512];
		if (PQstatus(c) == CONNECTION_OK)
			return c;
		first_line(PQerrorMessage(c), line, sizeof line);
		wsync_error("%s: cannot connect to the database: %s", who, line);
		wsync_notify_status("waiting for the database: %s", line);
		PQfinish(c);
		if (e->once) {
			atomic_store(&e->db_failed, 1);
			return NULL;
		}
		sleep_s(e, delay);
		delay = delay < 16 ? delay * 2 : 30;
	}
	return NULL;
}

static int exec_simple(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok ? 0 : -1;
}

static double jitter(void)
{
	return (double)(rand() % 2001 - 1000) / 1000.0;
}

static void log_outcome(const wsync_entry *en, const wsync_dispatch_result *res,
                        const wsync_outcome *o, int max_retries)
{
	if (!o->error_type)
		return;
	if (o->processed)
		wsync_error("Sync failed for entry %s (%s %s %s %s): %s: %s; permanent failure%s",
		            en->id, en->provider, en->entity_type, en->entity_id, en->operation,
		            o->error_type, res->message,
		            !strcmp(o->error_type, "auth_error") ? ", the user must reconnect" : "");
	else if (!strcmp(o->error_type, "rate_limit"))
		wsync_warn("Sync deferred for entry %s (%s %s %s): rate_limit: %s; next attempt in %lld s",
		           en->id, en->provider, en->entity_type, en->entity_id, res->message,
		           (long long)o->delay_s);
	else
		wsync_warn("Sync failed for entry %s (%s %s %s %s): %s: %s; retry %d of %d in %lld s",
		           en->id, en->provider, en->entity_type, en->entity_id, en->operation,
		           o->error_type, res->message, o->retry_count, max_retries,
		           (long long)o->delay_s);
}

/* A workout re-created under a new provider id: its scheduled workouts on
 * that provider still point at the old one (migration 0004). */
static int resync_schedules(PGconn *db, const wsync_entry *en)
{
	const char *p[2] = {en->entity_id, en->provider};
	PGresult *r = PQexecParams(db, "SELECT wsync_resync_schedules($1, $2)", 2, NULL, p,
	                           NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	return ok ? 0 : -1;
}

/* Store the link and the outcome together. */
static int record(wsync_worker *w, const wsync_entry *en, const wsync_dispatch_result *res,
                  const wsync_outcome *o)
{
	int rc;
	if (exec_simple(w->db, "BEGIN") < 0)
		return -1;
	if (res->link != LINK_KEEP &&
	    wsync_link_write(w->db, en->provider, en->entity_type, en->entity_id, en->user_id,
	                     res->link, res->provider_id) < 0) {
		exec_simple(w->db, "ROLLBACK");
		return -1;
	}
	if (res->relinked && resync_schedules(w->db, en) < 0) {
		exec_simple(w->db, "ROLLBACK");
		return -1;
	}
	rc = wsync_queue_complete(w->db, en, o, res->message);
	if (rc < 0 || exec_simple(w->db, "COMMIT") < 0) {
		exec_simple(w->db, "ROLLBACK");
		return -1;
	}
	if (rc == 0)
		wsync_warn("entry %s: lease lost (another worker took it over); outcome not recorded",
		           en->id);
	return 0;
}

/* Returns 1 succeeded, 0 failed or deferred, -1 database trouble. */
static int process(wsync_engine *e, wsync_worker *w, const wsync_entry *en)
{
	wsync_plugin_instance *inst = wsync_registry_find(w->registry, en->provider);
	wsync_dispatch_result res;
	wsync_outcome o;
	int rc;

	if (!inst) {
		wsync_queue_release(w->db, en);
		return 0;
	}
	memset(&res, 0, sizeof res);
	if (en->attempts - 1 - en->retry_count >= MAX_ABANDONED_CLAIMS) {
		res.status = WSYNC_E_UNEXPECTED;
		snprintf(res.message, sizeof res.message, "abandoned: claimed %d times without "
		         "completing (a worker died or its lease expired while processing it)",
		         en->attempts - 1 - en->retry_count);
		o = (wsync_outcome){1, "unexpected_error", 0, en->retry_count, 1};
	} else {
		wsync_info("Processing %s %s %s %s (attempt %d)", en->provider, en->entity_type,
		           en->entity_id, en->operation, en->attempts);
		wsync_dispatch(w, inst, en, &res);
		o = wsync_classify(res.status, en->retry_count, e->cfg->max_retries,
		                   e->cfg->backoff_s, e->cfg->n_backoff, res.retry_after_s, jitter());
	}
	log_outcome(en, &res, &o, e->cfg->max_retries);
	rc = record(w, en, &res, &o);
	free(res.provider_id);
	if (rc < 0)
		return -1;
	return o.error_type ? 0 : 1;
}

static size_t provider_names(wsync_registry *r, const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < wsync_registry_count(r) && n < max; i++) {
		wsync_plugin_instance *in = wsync_registry_at(r, i);
		if (in->loaded && in->enabled)
			names[n++] = in->name;
	}
	return n;
}

/* Claim and run one batch.  Returns the number claimed, -1 on DB trouble;
 * then `started` names the entry whose processing had begun (its plugin
 * call may have reached the provider) when the database went away. */
static int drain_batch(wsync_engine *e, wsync_worker *w, char *started, size_t len)
{
	const char *names[256];
	size_t np = provider_names(w->registry, names, 256);
	int per_worker = e->cfg->batch_size / e->cfg->workers;
	wsync_entry *batch;
	int n, ok = 0, failed = 0, i;

	if (np == 0)
		return 0;
	n = wsync_queue_claim(w->db, w->name, names, np, per_worker > 0 ? per_worker : 1,
	                      e->cfg->lease_seconds, &batch);
	if (n <= 0)
		return n;
	wsync_info("Starting scheduled workout batch sync...");
	for (i = 0; i < n && !atomic_load(&e->stopping); i++) {
		int r = process(e, w, &batch[i]);
		if (r < 0) {
			snprintf(started, len, "%s", batch[i].id);
			break;
		}
		r ? ok++ : failed++;
	}
	for (; i < n; i++) /* stopping, or the database went away */
		wsync_queue_release(w->db, &batch[i]);
	wsync_info("Batch sync complete: %d operations (%d succeeded, %d failed)", ok + failed,
	           ok, failed);
	wsync_entries_free(batch, n);
	return n;
}

/* The database's clock, as text, or "" when it cannot be read. */
static void db_clock(PGconn *db, char *out, size_t len)
{
	PGresult *r = PQexec(db, "SELECT clock_timestamp()::text");
	snprintf(out, len, "%s", PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
	                         ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
}

/*
 * After a reconnect: entries this worker claimed but could neither complete
 * nor release while the connection was down (and claims whose answer was
 * lost with it) are still leased to its name.  The worker is processing
 * none of them now, so they go back at once instead of waiting out the
 * lease.  `started` (its plugin call may have happened) keeps its counted
 * attempt, as after a crash; the others get theirs back.  `since` (the
 * database's clock when this worker first connected) leaves alone rows of
 * an earlier process that had the same host:pid:wN name.
 */
static void give_back(wsync_worker *w, const char *since, const char *started)
{
	const char *p[3] = {w->name, since, started};
	PGresult *r;
	if (!*since)
		return;
	r = PQexecParams(w->db,
		"UPDATE workout_sync_queue SET locked_until = now() - interval '1 second',"
		"  locked_by = NULL, updated_at = now(),"
		"  attempts = CASE WHEN id::text = $3 THEN attempts"
		"             ELSE greatest(attempts - 1, 0) END"
		" WHERE locked_by = $1 AND processed_at IS NULL"
		"   AND last_attempt_at >= $2::timestamptz", 3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_COMMAND_OK && atoi(PQcmdTuples(r)) > 0)
		wsync_warn("%s: gave back %s entries left leased to this worker when the "
		           "database connection was lost", w->name, PQcmdTuples(r));
	PQclear(r);
}

typedef struct worker_arg {
	wsync_engine *e;
	int index;
} worker_arg;

static void *worker_main(void *p)
{
	worker_arg *a = p;
	wsync_engine *e = a->e;
	wsync_worker w = {0};
	char host[64] = "localhost", since[64] = "", started[40] = "";
	/* Plugins run on this thread: wsyncd's fatal-signal handler, which
	 * names the plugin, must run even after a stack overflow in one. */
	stack_t alt = {.ss_sp = malloc(ALT_STACK_SIZE), .ss_size = ALT_STACK_SIZE, .ss_flags = 0};

	if (alt.ss_sp)
		sigaltstack(&alt, NULL);
	gethostname(host, sizeof host - 1);
	snprintf(w.name, sizeof w.name, "%s:%d:w%d", host, (int)getpid(), a->index);
	w.http = wsync_http_client_new();
	w.limiter = e->limiter;
	w.db = connect_db(e, w.name);
	if (w.db)
		db_clock(w.db, since, sizeof since);
	while (w.db && !atomic_load(&e->stopping)) {
		unsigned long seen;
		int n;
		pthread_mutex_lock(&e->wake_lock);
		seen = e->generation;
		pthread_mutex_unlock(&e->wake_lock);
		pthread_rwlock_rdlock(&e->swap_lock);
		w.registry = e->registry;
		w.cfg = e->cfg;
		n = drain_batch(e, &w, started, sizeof started);
		pthread_rwlock_unlock(&e->swap_lock);
		if (n < 0 || PQstatus(w.db) != CONNECTION_OK) {
			char line[512];
			wsync_error("%s: database error: %s; reconnecting", w.name,
			            first_line(PQerrorMessage(w.db), line, sizeof line));
			PQfinish(w.db);
			if (!e->once)
				sleep_s(e, 1);
			w.db = connect_db(e, w.name);
			if (w.db) {
				give_back(&w, since, started);
				started[0] = 0;
			}
		} else if (n == 0) {
			if (e->once)
				break;
			/* The supervisor wakes us on NOTIFY, when a retry falls due
			 * and every interval; the timeout is only a safety net. */
			wait_for_work(e, seen, e->cfg->interval_minutes * 60);
		}
	}
	PQfinish(w.db);
	wsync_http_client_free(w.http);
	if (alt.ss_sp) {
		stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
		free(alt.ss_sp);
	}
	return NULL;
}

/* READY=1 (systemd): the database answered and the plugins are loaded. */
static void notify_ready(wsync_engine *e)
{
	size_t loaded = 0, n = wsync_registry_count(e->registry);
	for (size_t i = 0; i < n; i++)
		loaded += wsync_registry_at(e->registry, i)->loaded ? 1 : 0;
	wsync_notify_status("ready: %zu of %zu provider instances loaded, %d workers", loaded, n,
	                    e->cfg->workers);
	wsync_notify_ready();
}

static void register_providers(wsync_engine *e, PGconn *db)
{
	for (size_t i = 0; i < wsync_registry_count(e->registry); i++) {
		wsync_plugin_instance *in = wsync_registry_at(e->registry, i);
		if (in->loaded &&
		    wsync_queue_register_provider(db, in->name, in->desc->name, in->enabled) < 0)
			wsync_error("cannot register provider %s: %s", in->name, PQerrorMessage(db));
	}
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
	reg = wsync_registry_load(cfg, wsync_host_services());
	e->registry = reg;
	if (db)
		register_providers(e, db);
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
			db = connect_db(e, "listener");
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
		due = wsync_queue_next_due(db);
		timeout_ms = e->cfg->interval_minutes * 60 * 1000;
		if (due >= 0 && due * 1000 < timeout_ms)
			timeout_ms = due < 1 ? 1000 : (int)(due * 1000) + 200;
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
	if (!e)
		return NULL;
	e->cfg = cfg;
	e->config_path = config_path ? strdup(config_path) : NULL;
	e->limiter = wsync_ratelimiter_new();
	pthread_rwlock_init(&e->swap_lock, NULL);
	pthread_mutex_init(&e->wake_lock, NULL);
	pthread_cond_init(&e->wake, NULL);
	if (pipe(e->pipe_fd) < 0) {
		free(e);
		return NULL;
	}
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	e->registry = wsync_registry_load(cfg, wsync_host_services());
	return e;
}

void wsync_engine_free(wsync_engine *e)
{
	if (!e)
		return;
	wsync_registry_free(e->registry);
	wsync_ratelimiter_free(e->limiter);
	wsync_config_free(e->cfg);
	pthread_rwlock_destroy(&e->swap_lock);
	pthread_mutex_destroy(&e->wake_lock);
	pthread_cond_destroy(&e->wake);
	close(e->pipe_fd[0]);
	close(e->pipe_fd[1]);
	free(e->config_path);
	free(e);
}

int wsync_engine_run(wsync_engine *e, int once)
{
	int n = e->cfg->workers;
	pthread_t *threads = calloc((size_t)n, sizeof *threads);
	worker_arg *args = calloc((size_t)n, sizeof *args);
	PGconn *db;

	e->once = once;
	wsync_notify_status("connecting to the database");
	db = connect_db(e, "wsyncd");
	if (!db) {
		free(threads);
		free(args);
		return 1;
	}
	register_providers(e, db);
	PQfinish(db);
	notify_ready(e);
	for (int i = 0; i < n; i++) {
		args[i] = (worker_arg){e, i};
		pthread_create(&threads[i], NULL, worker_main, &args[i]);
	}
	if (!once)
		supervise(e);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	free(args);
	return atomic_load(&e->db_failed) ? 1 : 0;
}
