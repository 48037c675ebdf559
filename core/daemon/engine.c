#include "engine.h"

#include "host/classify.h"
#include "dispatch.h"
#include "host/host.h"
#include "common/log.h"
#include "host/plugin_loader.h"
#include "providers.h"
#include "queue.h"

#include <errno.h>
#include <limits.h>
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
	atomic_int workers_done;        /* the heartbeat thread may stop */
	int once;
	int pipe_fd[2];                 /* self-pipe from signal handlers */
	/* What each worker holds (claimed, in flight, or an outcome not yet
	 * written), for the heartbeat thread, which keeps those leases alive. */
	pthread_mutex_t held_lock;
	const wsync_entry **held;       /* workers * HELD_PER_WORKER slots */
	size_t held_per_worker;
	size_t n_workers;               /* fixed at start (reload keeps it) */
	unsigned nonce;                 /* tells this process's worker names apart */
};

/* The entries a worker holds: its claimed batch plus one held outcome. */
static void held_set(wsync_engine *e, int worker, const wsync_entry *batch, int n,
                     const wsync_entry *extra)
{
	const wsync_entry **slot = e->held + (size_t)worker * e->held_per_worker;
	size_t k = 0;
	pthread_mutex_lock(&e->held_lock);
	for (int i = 0; i < n && k + 1 < e->held_per_worker; i++)
		slot[k++] = &batch[i];
	if (extra)
		slot[k++] = extra;
	while (k < e->held_per_worker)
		slot[k++] = NULL;
	pthread_mutex_unlock(&e->held_lock);
}

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
	}
}

/* libpq messages end in a newline and may span lines: log the first. */
static const char *first_line(const char *msg, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s", (int)strcspn(msg, "\n"), msg);
	return buf;
}

/* Connect, retrying every second unless running once: work (and outcomes
 * held in memory) must resume within seconds of the database coming back.
 * A long outage is logged once a minute, not every second. */
static PGconn *connect_db(wsync_engine *e, const char *who)
{
	for (int tries = 0; !atomic_load(&e->stopping); tries++) {
		PGconn *c = PQconnectdb(e->cfg->conninfo);
		char line[512];
		if (PQstatus(c) == CONNECTION_OK) {
			if (tries)
				wsync_info("%s: connected to the database again", who);
			return c;
		}
		if (tries % 60 == 0)
			wsync_error("%s: cannot connect to the database: %s%s", who,
			            first_line(PQerrorMessage(c), line, sizeof line),
			            e->once ? "" : "; retrying every second");
		PQfinish(c);
		if (e->once) {
			atomic_store(&e->db_failed, 1);
			return NULL;
		}
		sleep_s(e, 1);
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

/* An outcome whose write failed (the database went away) after its call
 * started: the provider may hold the object, so the outcome is kept in
 * memory, its lease kept alive, and written once the database is back.
 * Dropping it would make the next attempt create the object again. */
typedef struct held_outcome {
	int active;
	wsync_entry entry;             /* copy; owns provider_entity_id */
	wsync_dispatch_result res;     /* owns provider_id */
	wsync_outcome o;
} held_outcome;

typedef struct worker_state {
	wsync_engine *e;
	int index;
	wsync_worker w;
	held_outcome held;
} worker_state;

static void hold(worker_state *ws, const wsync_entry *en, const wsync_dispatch_result *res,
                 const wsync_outcome *o)
{
	ws->held = (held_outcome){1, *en, *res, *o};
	ws->held.entry.provider_entity_id =
		en->provider_entity_id ? strdup(en->provider_entity_id) : NULL;
	held_set(ws->e, ws->index, NULL, 0, &ws->held.entry);
	wsync_warn("entry %s (%s %s %s %s): the database went away after the provider call; "
	           "keeping its outcome (%s%s%s) to write when it is back", en->id, en->provider,
	           en->entity_type, en->entity_id, en->operation,
	           o->error_type ? o->error_type : "success", res->provider_id ? ", provider id " : "",
	           res->provider_id ? res->provider_id : "");
}

static void held_clear(worker_state *ws)
{
	free(ws->held.entry.provider_entity_id);
	free(ws->held.res.provider_id);
	memset(&ws->held, 0, sizeof ws->held);
	held_set(ws->e, ws->index, NULL, 0, NULL);
}

/* Write the held outcome.  Returns 0 when written (or when the lease went to
 * a newer claim, which reconciles), -1 while the database is still away. */
static int flush_held(worker_state *ws)
{
	held_outcome *h = &ws->held;
	if (!h->active)
		return 0;
	if (record(&ws->w, &h->entry, &h->res, &h->o) < 0)
		return -1;
	wsync_info("entry %s: outcome written after the database came back", h->entry.id);
	held_clear(ws);
	return 0;
}

/* A worker died inside this entry's plugin call this many times. */
static int crashed_calls(const wsync_entry *en)
{
	return en->attempts - en->retry_count;
}

/* Returns 1 succeeded, 0 failed or deferred, -1 database trouble (the
 * outcome of a started call is then held in ws->held). */
static int process(worker_state *ws, const wsync_entry *en)
{
	wsync_engine *e = ws->e;
	wsync_worker *w = &ws->w;
	wsync_plugin_instance *inst = wsync_registry_find(w->registry, en->provider);
	wsync_dispatch_result res;
	wsync_outcome o;
	int rc;

	if (!inst) {
		wsync_queue_release(w->db, en);
		return 0;
	}
	memset(&res, 0, sizeof res);
	if (crashed_calls(en) >= MAX_ABANDONED_CLAIMS) {
		res.status = WSYNC_E_UNEXPECTED;
		snprintf(res.message, sizeof res.message, "abandoned: %d calls of plugin %s "
		         "(provider %s, %s %s) started and never returned: the process died "
		         "inside the plugin", crashed_calls(en), inst->desc->name, en->provider,
		         en->operation, en->entity_type);
		o = (wsync_outcome){1, "unexpected_error", 0, en->retry_count, 1};
	} else {
		wsync_info("Processing %s %s %s %s (attempt %d%s)", en->provider, en->entity_type,
		           en->entity_id, en->operation, en->attempts + 1,
		           en->reconcile ? ", reconciling first" : "");
		wsync_dispatch(w, inst, en, &res);
		if (res.db_lost && !res.started)
			return -1; /* nothing reached the provider: given back later */
		o = wsync_classify(res.status, en->retry_count, e->cfg->max_retries,
		                   e->cfg->backoff_s, e->cfg->n_backoff, res.retry_after_s, jitter());
	}
	log_outcome(en, &res, &o, e->cfg->max_retries);
	rc = record(w, en, &res, &o);
	if (rc < 0 && res.started) {
		hold(ws, en, &res, &o); /* takes res.provider_id */
		return -1;
	}
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

/* "{id,...}" of every entry this process holds, for the claim to skip;
 * malloc'ed (NULL when out of memory: the claim then skips nothing, and
 * the leases, still valid in the common case, protect the entries). */
static char *held_ids(wsync_engine *e)
{
	size_t total = e->n_workers * e->held_per_worker, len = 3, off = 0;
	char *s;
	pthread_mutex_lock(&e->held_lock);
	for (size_t i = 0; i < total; i++)
		if (e->held[i])
			len += strlen(e->held[i]->id) + 1;
	if ((s = malloc(len))) {
		s[off++] = '{';
		for (size_t i = 0; i < total; i++)
			if (e->held[i])
				off += (size_t)snprintf(s + off, len - off, "%s%s", off > 1 ? "," : "",
				                        e->held[i]->id);
		s[off++] = '}';
		s[off] = 0;
	}
	pthread_mutex_unlock(&e->held_lock);
	return s;
}

/* Claim and run one batch.  Returns the number claimed, -1 on DB trouble. */
static int drain_batch(worker_state *ws)
{
	wsync_engine *e = ws->e;
	wsync_worker *w = &ws->w;
	const char *names[256];
	size_t np = provider_names(w->registry, names, 256);
	int per_worker = e->cfg->batch_size / e->cfg->workers;
	wsync_entry *batch;
	char *held;
	int n, ok = 0, failed = 0, i, rc = 0;

	if (np == 0)
		return 0;
	/* A reload may raise batch_size: never claim more than the heartbeat
	 * has slots for (sized at start). */
	if (per_worker < 1)
		per_worker = 1;
	if ((size_t)per_worker > e->held_per_worker - 1)
		per_worker = (int)e->held_per_worker - 1;
	held = held_ids(e);
	n = wsync_queue_claim(w->db, w->name, names, np, per_worker, e->cfg->lease_seconds, held,
	                      &batch);
	free(held);
	if (n <= 0)
		return n;
	held_set(e, ws->index, batch, n, NULL);
	wsync_info("Starting scheduled workout batch sync...");
	for (i = 0; i < n && !atomic_load(&e->stopping); i++) {
		int r = process(ws, &batch[i]);
		if (r < 0) {
			rc = -1;
			break;
		}
		r ? ok++ : failed++;
	}
	/* Stopping: the rest goes back at once.  Database trouble: the
	 * release fails too, and give_back() frees them after reconnecting. */
	for (i = rc < 0 ? n : i; i < n; i++)
		wsync_queue_release(w->db, &batch[i]);
	wsync_info("Batch sync complete: %d operations (%d succeeded, %d failed)", ok + failed,
	           ok, failed);
	held_set(e, ws->index, NULL, 0, ws->held.active ? &ws->held.entry : NULL);
	wsync_entries_free(batch, n);
	return rc < 0 ? -1 : n;
}

/*
 * After a reconnect: entries this worker claimed but never started (the
 * rest of its batch, claims whose answer was lost with the connection) are
 * still leased to its name, which is unique to this process.  Nobody is
 * processing them, so they go back at once instead of waiting out the lease.
 * Their attempts were never counted.
 */
static void give_back(wsync_worker *w)
{
	const char *p[1] = {w->name};
	PGresult *r = PQexecParams(w->db,
		"UPDATE workout_sync_queue SET locked_until = now() - interval '1 second',"
		"  locked_by = NULL, updated_at = now()"
		" WHERE locked_by = $1 AND processed_at IS NULL", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_COMMAND_OK && atoi(PQcmdTuples(r)) > 0)
		wsync_warn("%s: gave back %s entries left leased to this worker when the "
		           "database connection was lost", w->name, PQcmdTuples(r));
	PQclear(r);
}

/* Reconnect after database trouble; the held outcome is written first, then
 * the unstarted claims go back.  Returns 0, or -1 when stopping (once: when
 * the database stays away). */
static int recover(worker_state *ws)
{
	wsync_engine *e = ws->e;
	char line[512];
	for (;;) {
		wsync_error("%s: database error: %s; reconnecting", ws->w.name,
		            first_line(PQerrorMessage(ws->w.db), line, sizeof line));
		PQfinish(ws->w.db);
		ws->w.db = NULL;
		if (!e->once)
			sleep_s(e, 1);
		if (!(ws->w.db = connect_db(e, ws->w.name)))
			return -1;
		if (flush_held(ws) == 0)
			break;
	}
	give_back(&ws->w);
	return 0;
}

/* Stopping with an outcome still held: keep trying for a while, since
 * dropping it means the provider call will be made again (reconciled). */
static void flush_before_exit(worker_state *ws)
{
	for (int i = 0; ws->held.active && i < 10; i++) {
		PQfinish(ws->w.db);
		ws->w.db = PQconnectdb(ws->e->cfg->conninfo);
		if (PQstatus(ws->w.db) == CONNECTION_OK && flush_held(ws) == 0)
			return;
		sleep(1);
	}
	if (ws->held.active) {
		wsync_error("entry %s: exiting with its outcome unwritten (database away); the "
		            "next attempt reconciles with the provider before creating",
		            ws->held.entry.id);
		held_clear(ws);
	}
}

static void *worker_main(void *p)
{
	worker_state *ws = p;
	wsync_engine *e = ws->e;
	wsync_worker *w = &ws->w;
	char host[64] = "localhost";
	/* Plugins run on this thread: wsyncd's fatal-signal handler, which
	 * names the plugin, must run even after a stack overflow in one. */
	stack_t alt = {.ss_sp = malloc(ALT_STACK_SIZE), .ss_size = ALT_STACK_SIZE, .ss_flags = 0};

	if (alt.ss_sp)
		sigaltstack(&alt, NULL);
	gethostname(host, sizeof host - 1);
	snprintf(w->name, sizeof w->name, "%s:%d:%08x:w%d", host, (int)getpid(), e->nonce,
	         ws->index);
	w->http = wsync_http_client_new();
	w->limiter = e->limiter;
	w->db = connect_db(e, w->name);
	while (w->db && !atomic_load(&e->stopping)) {
		unsigned long seen;
		int n;
		pthread_mutex_lock(&e->wake_lock);
		seen = e->generation;
		pthread_mutex_unlock(&e->wake_lock);
		pthread_rwlock_rdlock(&e->swap_lock);
		w->registry = e->registry;
		w->cfg = e->cfg;
		n = drain_batch(ws);
		pthread_rwlock_unlock(&e->swap_lock);
		if (n < 0 || PQstatus(w->db) != CONNECTION_OK) {
			if (recover(ws) < 0)
				break;
		} else if (n == 0) {
			if (e->once)
				break;
			/* The supervisor wakes us on NOTIFY, when a retry falls due
			 * and every interval; the timeout is only a safety net. */
			wait_for_work(e, seen, e->cfg->interval_minutes * 60);
		}
	}
	flush_before_exit(ws);
	PQfinish(w->db);
	wsync_http_client_free(w->http);
	if (alt.ss_sp) {
		stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
		free(alt.ss_sp);
	}
	return NULL;
}

/* Copy the held entries' ids and lease tokens (the workers may free theirs
 * as soon as the lock is released).  Returns how many; *out malloc'ed. */
static size_t held_snapshot(wsync_engine *e, wsync_entry **out)
{
	size_t total = e->n_workers * e->held_per_worker, n = 0;
	pthread_mutex_lock(&e->held_lock);
	*out = calloc(total ? total : 1, sizeof **out);
	for (size_t i = 0; *out && i < total; i++)
		if (e->held[i]) {
			snprintf((*out)[n].id, sizeof (*out)[n].id, "%s", e->held[i]->id);
			snprintf((*out)[n].lease_token, sizeof (*out)[n].lease_token, "%s",
			         e->held[i]->lease_token);
			n++;
		}
	pthread_mutex_unlock(&e->held_lock);
	return n;
}

/* Heartbeat: every third of a lease, push forward the leases of everything
 * this process holds, so a call longer than lease_seconds is never claimed
 * twice while a dead process's entries fall free within one lease. */
static void *heartbeat_main(void *p)
{
	wsync_engine *e = p;
	PGconn *db = NULL;
	while (!atomic_load(&e->stopping) && !atomic_load(&e->workers_done)) {
		wsync_entry *snap = NULL;
		size_t n = held_snapshot(e, &snap);
		int lease, period;
		pthread_rwlock_rdlock(&e->swap_lock); /* a reload swaps cfg */
		lease = e->cfg->lease_seconds;
		if (n && (!db || PQstatus(db) != CONNECTION_OK)) {
			PQfinish(db);
			db = PQconnectdb(e->cfg->conninfo);
		}
		pthread_rwlock_unlock(&e->swap_lock);
		period = lease / 3 > 0 ? lease / 3 : 1;
		if (n && PQstatus(db) == CONNECTION_OK) {
			const wsync_entry **ptrs = calloc(n, sizeof *ptrs);
			for (size_t i = 0; ptrs && i < n; i++)
				ptrs[i] = &snap[i];
			if (ptrs && wsync_queue_extend_leases(db, ptrs, n, lease) < 0)
				wsync_warn("heartbeat: cannot extend %zu leases: %s", n, PQerrorMessage(db));
			free(ptrs);
		}
		free(snap);
		for (int i = 0; i < period * 10 && !atomic_load(&e->stopping) &&
		                !atomic_load(&e->workers_done); i++) {
			struct timespec ts = {0, 100000000};
			nanosleep(&ts, NULL);
		}
	}
	PQfinish(db);
	return NULL;
}

/* Tell the database what this node's configuration serves; a provider
 * whose INI is gone is marked removed for this node (providers.c). */
static void register_providers(wsync_engine *e, PGconn *db)
{
	char node[PATH_MAX + 300];
	wsync_node_name(e->config_path, node, sizeof node);
	wsync_providers_register(db, node, e->registry);
}

static void reload(wsync_engine *e, PGconn *db)
{
	wsync_config *cfg = wsync_config_load(e->config_path);
	wsync_registry *reg;
	if (!wsync_config_ok(cfg)) {
		wsync_error("reload refused, keeping the running configuration:\n%s",
		            wsync_config_errors(cfg));
		wsync_config_free(cfg);
		return;
	}
	wsync_info("SIGHUP: reloading %s", e->config_path);
	pthread_rwlock_wrlock(&e->swap_lock);
	wsync_registry_free(e->registry);
	/* Keep fields a running engine cannot change in flight. */
	cfg->workers = e->cfg->workers;
	wsync_config_free(e->cfg);
	e->cfg = cfg;
	wsync_log_set_level(cfg->log_level);
	wsync_config_warn_insecure(cfg);
	reg = wsync_registry_load(cfg, wsync_host_services());
	e->registry = reg;
	if (db)
		register_providers(e, db);
	pthread_rwlock_unlock(&e->swap_lock);
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
	e->nonce = (unsigned)rand();
	pthread_mutex_init(&e->held_lock, NULL);
	e->n_workers = (size_t)(cfg->workers > 0 ? cfg->workers : 1);
	e->held_per_worker = (size_t)cfg->batch_size / e->n_workers + 2;
	e->held = calloc(e->n_workers * e->held_per_worker, sizeof *e->held);
	if (!e->held) {
		wsync_ratelimiter_free(e->limiter);
		close(e->pipe_fd[0]);
		close(e->pipe_fd[1]);
		free(e->config_path);
		free(e);
		return NULL;
	}
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
	pthread_mutex_destroy(&e->held_lock);
	free(e->held);
	close(e->pipe_fd[0]);
	close(e->pipe_fd[1]);
	free(e->config_path);
	free(e);
}

int wsync_engine_run(wsync_engine *e, int once)
{
	int n = e->cfg->workers;
	pthread_t *threads = calloc((size_t)n, sizeof *threads), heartbeat;
	worker_state *states = calloc((size_t)n, sizeof *states);
	PGconn *db;

	e->once = once;
	db = threads && states ? connect_db(e, "wsyncd") : NULL;
	if (!db) {
		free(threads);
		free(states);
		return 1;
	}
	register_providers(e, db);
	PQfinish(db);
	pthread_create(&heartbeat, NULL, heartbeat_main, e);
	for (int i = 0; i < n; i++) {
		states[i].e = e;
		states[i].index = i;
		pthread_create(&threads[i], NULL, worker_main, &states[i]);
	}
	if (!once)
		supervise(e);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	atomic_store(&e->workers_done, 1);
	pthread_join(heartbeat, NULL);
	free(threads);
	free(states);
	return atomic_load(&e->db_failed) ? 1 : 0;
}
