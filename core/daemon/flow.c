/*
 * flow.c -- the threads that move jobs: a claimer (claims and loads
 * batches), a starter (records intents), the call threads (plugin calls, no
 * database), a writer (outcomes, in group commits) and a heartbeat
 * (leases).  Four connections (and a small pool for token refreshes and the
 * limiter) serve any number of calls in flight.  See engine_internal.h.
 */
#include "engine_internal.h"

#include "host/isolate.h"

#include "common/grow.h"
#include "common/log.h"
#include "host/host.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A job whose plugin calls started this many times without returning (the
 * process died inside the plugin) is failed for good instead of looping. */
#define MAX_ABANDONED_CALLS 3

/* Each call thread's signal stack (see wsync_flow_call). */
#define ALT_STACK_SIZE (64 * 1024)

/* The store's sessions (store.h): every statement probes by key; the
 * starter's intents commit asynchronously. */
#define STORE_SESSION WSYNC_STORE_GENERIC_PLANS
#define STARTER_SESSION (WSYNC_STORE_ASYNC_COMMIT | WSYNC_STORE_GENERIC_PLANS)

/* Most jobs whose intents one statement records. */
#define MAX_START 256

/* The writer waits GATHER_NS for more outcomes when fewer than GATHER_MIN
 * are done and calls are still running (never when idle: a lone entry is
 * written at once). */
#define GATHER_MIN 16
#define GATHER_NS 2000000L

/* ---- lists, keys, the held set (all under e->mu) ------------------------- */

static void list_push(job_list *l, wsync_job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->n++;
}

static wsync_job *list_pop(job_list *l)
{
	wsync_job *j = l->head;
	if (j) {
		l->head = j->next;
		if (!l->head)
			l->tail = NULL;
		l->n--;
		j->next = NULL;
	}
	return j;
}

static int key_busy(const wsync_engine *e, const char *key)
{
	for (size_t i = 0; key[0] && i < e->n_busy; i++)
		if (!strcmp(e->busy_keys[i], key))
			return 1;
	return 0;
}

/* Returns -1 when out of memory (the job then waits). */
static int key_take(wsync_engine *e, wsync_job *j)
{
	if (!j->key[0])
		return 0;
	if (wsync_grow((void **)&e->busy_keys, &e->cap_busy, e->n_busy + 1,
	               sizeof *e->busy_keys) < 0)
		return -1;
	e->busy_keys[e->n_busy++] = j->key;
	return 0;
}

static void key_free(wsync_engine *e, const wsync_job *j)
{
	for (size_t i = 0; j->key[0] && i < e->n_busy; i++)
		if (e->busy_keys[i] == j->key) {
			e->busy_keys[i] = e->busy_keys[--e->n_busy];
			return;
		}
}

static int held_add(wsync_engine *e, wsync_job *j)
{
	if (wsync_grow((void **)&e->held, &e->cap_held, e->n_held + 1, sizeof *e->held) < 0)
		return -1;
	e->held[e->n_held++] = j;
	return 0;
}

static void held_remove(wsync_engine *e, const wsync_job *j)
{
	for (size_t i = 0; i < e->n_held; i++)
		if (e->held[i] == j) {
			e->held[i] = e->held[--e->n_held];
			return;
		}
}

/* "{...}" literals of the held jobs' ids (and lease tokens); malloc'ed. */
static char *held_literal(const wsync_engine *e, int leases)
{
	size_t len = 3, off = 0;
	char *s;
	for (size_t i = 0; i < e->n_held; i++)
		len += (leases ? strlen(e->held[i]->entry.lease_token) : 36) + 1;
	if (!(s = malloc(len)))
		return NULL;
	s[off++] = '{';
	for (size_t i = 0; i < e->n_held; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%s", i ? "," : "",
		                        leases ? e->held[i]->entry.lease_token : e->held[i]->entry.id);
	snprintf(s + off, len - off, "}");
	return s;
}

/* ---- outcomes ---------------------------------------------------------------- */

static double jitter(void)
{
	return (double)(rand() % 2001 - 1000) / 1000.0;
}

static void log_outcome(const wsync_job *j, int max_retries)
{
	const wsync_entry *en = &j->entry;
	const wsync_outcome *o = &j->outcome;
	if (!o->error_type)
		return;
	if (o->processed)
		wsync_error("Sync failed for entry %s (%s %s %s %s): %s: %s; permanent failure",
		            en->id, en->provider, en->entity_type, en->entity_id, en->operation,
		            o->error_type, j->res.message);
	else if (!strcmp(o->error_type, "rate_limit"))
		/* wsync's own limiter at work, as configured, is no warning: a
		 * backlog makes one of these per entry and window. */
		wsync_log(j->res.deferred ? WSYNC_LOG_INFO : WSYNC_LOG_WARNING,
		          "Sync deferred for entry %s (%s %s %s): rate_limit: %s; next attempt in %lld s",
		          en->id, en->provider, en->entity_type, en->entity_id, j->res.message,
		          (long long)o->delay_s);
	else
		wsync_warn("Sync failed for entry %s (%s %s %s %s): %s: %s; retry %d of %d in %lld s",
		           en->id, en->provider, en->entity_type, en->entity_id, en->operation,
		           o->error_type, j->res.message, o->retry_count, max_retries,
		           (long long)o->delay_s);
}

/* The outcome of j's status under the running configuration (caller holds
 * swap_lock). */
static void classify(wsync_engine *e, wsync_job *j)
{
	const wsync_config *c = e->cfg;
	j->outcome = wsync_classify(j->res.status, j->entry.retry_count, c->max_retries,
	                            c->backoff_s, c->n_backoff, j->res.retry_after_s, jitter());
	if (j->res.deferred && !j->outcome.processed) {
		/* wsync's own limiter: the backlog comes back in waves, the
		 * user's, or the provider's when an app window holds it ("*" is
		 * no user id) */
		const wsync_plugin_instance *inst = wsync_registry_find(e->registry,
		                                                        j->entry.provider);
		int app = j->res.app_bound;
		if (inst)
			j->outcome.delay_s = wsync_stagger_delay(
				e->stagger, j->entry.provider, app ? "*" : j->entry.user_id,
				j->outcome.delay_s, app ? inst->cfg->app_windows : inst->cfg->user_windows,
				app ? inst->cfg->n_app_windows : inst->cfg->n_user_windows,
				(int64_t)time(NULL));
	}
	log_outcome(j, c->max_retries);
}

/* The job's outcome in the metrics: "ok", "not_applicable" or its
 * error_type; call_seconds < 0 when no call was made. */
static void count_job(wsync_engine *e, const wsync_job *j, double call_seconds, int abandoned)
{
	const char *outcome = j->outcome.error_type ? j->outcome.error_type
	                    : j->res.status == WSYNC_NOT_APPLICABLE ? "not_applicable" : "ok";
	unsigned flags = (j->res.deferred ? WSYNC_METRIC_DEFERRED : 0) |
	                 (j->res.refreshed ? WSYNC_METRIC_REFRESHED : 0) |
	                 (abandoned ? WSYNC_METRIC_ABANDONED : 0) |
	                 (j->res.plugin_died ? WSYNC_METRIC_PLUGIN_DIED : 0);
	wsync_metrics_outcome(e->metrics, j->entry.provider, j->entry.operation, outcome,
	                      call_seconds, flags);
}

/* A started job that will not run (its provider was unloaded, or wsyncd is
 * stopping): back to the queue at once, its attempt returned. */
static void give_back_outcome(wsync_job *j)
{
	j->outcome = (wsync_outcome){0, NULL, 0, j->entry.retry_count, 0};
}

/* Checks that end a job without a call; returns 1 when it needs its calls. */
static int admit(wsync_engine *e, wsync_job *j)
{
	const wsync_entry *en = &j->entry;
	int crashed = en->attempts - en->retry_count;
	if (crashed >= MAX_ABANDONED_CALLS) {
		wsync_plugin_instance *inst = wsync_registry_find(e->registry, en->provider);
		j->res.status = WSYNC_E_UNEXPECTED;
		snprintf(j->res.message, sizeof j->res.message, "abandoned: %d calls of plugin %s "
		         "(provider %s, %s %s) started and never returned: the process died inside "
		         "the plugin", crashed, inst ? inst->desc->name : "?", en->provider,
		         en->operation, en->entity_type);
		j->outcome = (wsync_outcome){1, "unexpected_error", 0, en->retry_count, 1};
		log_outcome(j, e->cfg->max_retries);
		count_job(e, j, -1, 1);
		return 0;
	}
	if (wsync_dispatch_prepare(j) != WSYNC_OK) {
		classify(e, j);
		count_job(e, j, -1, 0);
		return 0;
	}
	return 1;
}

/* ---- the claimer and the starter ----------------------------------------------- */

/*
 * A crash counts against every job whose call had started and whose outcome
 * was not written, not only the one inside the crashing plugin: a batch-mate
 * that was in flight at three crashes would be abandoned with the culprit.
 * So a job whose calls already started MAX_ABANDONED_CALLS - 1 times without
 * returning runs alone: it starts when no other call is running or waiting
 * for its commit, and nothing else starts until its own outcome is written.
 * Its next crash is then its own, and an innocent job gathers at most
 * MAX_ABANDONED_CALLS - 1 crashes before running alone and succeeding.
 */
static int suspect(const wsync_job *j)
{
	return j->entry.attempts - j->entry.retry_count >= MAX_ABANDONED_CALLS - 1;
}

static void unlink_loaded(wsync_engine *e, wsync_job *j, wsync_job *prev)
{
	if (prev)
		prev->next = j->next;
	else
		e->loaded.head = j->next;
	if (e->loaded.tail == j)
		e->loaded.tail = prev;
	e->loaded.n--;
	j->next = NULL;
}

/* A suspect whose key is free, started alone once every other call is
 * written; returns 1 when one is waiting for that (start nothing else). */
static int pick_alone(wsync_engine *e, wsync_job **out, size_t *n)
{
	wsync_job *j = e->loaded.head, *prev = NULL;
	for (; j && (!suspect(j) || key_busy(e, j->key)); prev = j, j = j->next)
		;
	if (!j)
		return 0;
	if (e->n_running || e->runnable.n || e->done.n || e->n_writing ||
	    e->idle_threads < 1 || key_take(e, j) < 0)
		return 1;
	unlink_loaded(e, j, prev);
	e->alone = j;
	out[(*n)++] = j;
	return 1;
}

/* Move up to `max` loaded jobs whose key is free onto `out`, one per call
 * thread that is idle and not already promised a job. */
static size_t pick_startable(wsync_engine *e, wsync_job **out, size_t max)
{
	long free_threads = (long)e->idle_threads - (long)e->runnable.n;
	wsync_job *j = e->loaded.head, *prev = NULL, *next;
	size_t n = 0;
	if (e->alone || (max > 0 && pick_alone(e, out, &n)))
		return n;
	for (; j && n < max && (long)n < free_threads; j = next) {
		next = j->next;
		if (suspect(j) || key_busy(e, j->key) || key_take(e, j) < 0) {
			prev = j;
			continue;
		}
		unlink_loaded(e, j, prev);
		out[n++] = j;
	}
	return n;
}

/* Record the intents of `jobs` and hand them to the call threads.  -1 on
 * database trouble: they go back to the front of `loaded`. */
static int start_jobs(wsync_engine *e, PGconn *db, wsync_job **jobs, size_t n)
{
	int started[MAX_START];
	int rc = wsync_store_start_calls(db, jobs, n, started);
	size_t woken = 0;
	pthread_mutex_lock(&e->mu);
	for (size_t i = n; i-- > 0;) {
		wsync_job *j = jobs[i];
		if (rc < 0 || !started[i])
			e->alone = e->alone == j ? NULL : e->alone;
		if (rc < 0) {
			key_free(e, j);
			j->next = e->loaded.head;
			e->loaded.head = j;
			if (!e->loaded.tail)
				e->loaded.tail = j;
			e->loaded.n++;
		} else if (!started[i]) {
			wsync_warn("entry %s: lease lost before its call started; left to its new "
			           "holder", j->entry.id);
			key_free(e, j);
			held_remove(e, j);
			wsync_job_free(j);
			jobs[i] = NULL;
		} else {
			j->res.started = 1;
		}
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (jobs[i]) {
			list_push(&e->runnable, jobs[i]);
			woken++;
		}
	pthread_mutex_unlock(&e->mu);
	/* One wake-up per job (a broadcast woke every idle call thread to
	 * fight over e->mu for a job or two), once e->mu is free: a thread
	 * woken while it is held only goes back to sleep on it. */
	while (woken-- > 0)
		pthread_cond_signal(&e->call_cv);
	return rc;
}

static size_t provider_names(wsync_registry *r, const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < wsync_registry_count(r) && n < max; i++) {
		wsync_plugin_instance *in = wsync_registry_at(r, i);
		/* A quarantined plugin's entries stay pending, unclaimed. */
		if (in->loaded && in->enabled && !wsync_child_quarantined(in->child, NULL, 0))
			names[n++] = in->name;
	}
	return n;
}

/* A job deferred by wsync's own limiter before it started (caller holds
 * swap_lock). */
static void defer_unstarted(wsync_engine *e, const wsync_plugin_instance *inst, wsync_job *j,
                            int64_t wait_ms, int64_t app_wait_ms)
{
	j->res.status = WSYNC_E_RATE_LIMIT;
	j->res.deferred = 1;
	j->res.app_bound = app_wait_ms >= wait_ms;
	j->res.retry_after_s = (wait_ms + 999) / 1000;
	wsync_rate_deferral_message(j->res.message, sizeof j->res.message, j->entry.provider,
	                            inst->cfg);
	classify(e, j);
	count_job(e, j, -1, 0);
}

/*
 * Of one provider's jobs the grant just served, those it left without a
 * call and that will call (wsync_dispatch_may_call): one read of the
 * limiter tells their users' waits, and a job whose user must wait longer
 * than a call would sleep for is deferred here, before any start, intent
 * or plugin call.  Each used to start, run its plugin and ask
 * wsync_rate_take() from inside its request, only to learn that wait.  The
 * others keep their place: a short wait is slept through by the call, and
 * an unknown one (a schema before 0015, the database busy) asked there, as
 * before.  `same` is reordered; wait and app have room for k.
 */
static void defer_denied(wsync_engine *e, PGconn *db, const wsync_plugin_instance *inst,
                         wsync_job **same, size_t k, int64_t *wait, int64_t *app)
{
	const wsync_provider_config *p = inst->cfg;
	size_t d = 0;
	for (size_t i = 0; i < k; i++)
		if (same[i]->rate_budget == 0 && wsync_dispatch_may_call(same[i]))
			same[d++] = same[i];
	if (d == 0)
		return;
	if (wsync_store_rate_wait(db, inst->name, same, d, p->user_windows, p->n_user_windows,
	                          p->app_windows, p->n_app_windows, wait, app) < 0)
		wsync_debug("store: no rate wait for %s: %.*s", inst->name,
		            (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
	for (size_t i = 0; i < d; i++)
		if (wait[i] > WSYNC_RATE_SLEEP_MAX_MS)
			defer_unstarted(e, inst, same[i], wait[i], app[i]);
}

/* One statement per provider grants each admitted job its call from the
 * cluster-wide rate limiter, and the jobs it denies are settled at once
 * (defer_denied; caller holds swap_lock).  A failed grant costs nothing
 * but speed: the jobs then take their calls one by one. */
static void grant_calls(wsync_engine *e, PGconn *db, wsync_job **jobs, size_t n)
{
	size_t cap = n ? n : 1;
	wsync_job **same = calloc(cap, sizeof *same);
	int64_t *wait = calloc(cap, sizeof *wait), *app = calloc(cap, sizeof *app);
	for (size_t i = 0; same && i < n; i++) {
		const char *prov = jobs[i]->entry.provider;
		const wsync_plugin_instance *inst = wsync_registry_find(e->registry, prov);
		size_t k = 0, first = 1;
		for (size_t m = 0; m < i; m++) /* this provider done already? */
			first &= strcmp(jobs[m]->entry.provider, prov) != 0;
		if (!first || !inst || (inst->cfg->n_user_windows == 0 &&
		                        inst->cfg->n_app_windows == 0))
			continue;
		for (size_t m = i; m < n; m++)
			if (!strcmp(jobs[m]->entry.provider, prov))
				same[k++] = jobs[m];
		if (wsync_store_rate_grant(db, prov, same, k, inst->cfg->user_windows,
		                           inst->cfg->n_user_windows, inst->cfg->app_windows,
		                           inst->cfg->n_app_windows) < 0)
			wsync_debug("store: no batch grant for %s: %.*s", prov,
			            (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
		if (wait && app)
			defer_denied(e, db, inst, same, k, wait, app);
	}
	free(same);
	free(wait);
	free(app);
}

/* Drop from `jobs` (keeping their order) those the limiter deferred;
 * returns how many are left. */
static size_t drop_deferred(wsync_job **jobs, size_t n)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (!jobs[i]->res.deferred)
			jobs[kept++] = jobs[i];
	return kept;
}

/* Claim and load one batch.  Returns how many, or -1 on database trouble. */
static int claim_batch(wsync_engine *e, PGconn *db, int *limit)
{
	const char *names[256];
	wsync_job **jobs = NULL, **admitted;
	char *held;
	size_t np, na = 0, n_held;
	int n, ended = 0;

	pthread_rwlock_rdlock(&e->swap_lock);
	np = provider_names(e->registry, names, 256);
	*limit = e->cfg->batch_size;
	pthread_mutex_lock(&e->mu);
	held = held_literal(e, 0);
	n_held = e->n_held;
	pthread_mutex_unlock(&e->mu);
	n = np && held ? wsync_store_claim(db, e->name, names, np, *limit, e->cfg->lease_seconds,
	                                   held, n_held, &jobs)
	               : 0;
	free(held);
	admitted = calloc(n > 0 ? (size_t)n : 1, sizeof *admitted);
	for (int i = 0; i < n; i++) {
		wsync_job *j = jobs[i];
		wsync_debug("Processing %s %s %s %s (attempt %d%s)", j->entry.provider,
		            j->entry.entity_type, j->entry.entity_id, j->entry.operation,
		            j->entry.attempts + 1, j->entry.reconcile ? ", reconciling first" : "");
		if (admitted && admit(e, j))
			admitted[na++] = j;
		else if (!admitted) /* out of memory: back to the queue when it ends */
			give_back_outcome(j);
	}
	grant_calls(e, db, admitted, na);
	na = drop_deferred(admitted, na);
	pthread_mutex_lock(&e->mu);
	for (int i = 0, k = 0; i < n; i++) {
		held_add(e, jobs[i]); /* out of memory: its lease alone protects it */
		if (k < (int)na && admitted[k] == jobs[i]) {
			list_push(&e->loaded, jobs[i]);
			k++;
		} else {
			list_push(&e->done, jobs[i]);
			ended++;
		}
	}
	if (ended)
		pthread_cond_signal(&e->writer_cv);
	pthread_mutex_unlock(&e->mu);
	pthread_rwlock_unlock(&e->swap_lock);
	free(admitted);
	free(jobs);
	return n;
}

/* After database trouble: reconnect; the claimer (`who`) then gives back
 * claims this process made but does not hold (their answer was lost with
 * the connection).  Only the claimer: it alone claims, so nothing it is
 * about to hold can be given back under it. */
static PGconn *store_reconnect(wsync_engine *e, PGconn *db, const char *who, int give_back,
                               int store_flags)
{
	char *held;
	int n;
	wsync_error("%s: database error: %.*s; reconnecting", who,
	            (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
	PQfinish(db);
	if (!e->once)
		wsync_engine_sleep(e, 1);
	wsync_metrics_set_ready(e->metrics, 0, 1);
	if (!(db = wsync_engine_connect(e, who, store_flags)))
		return NULL;
	wsync_metrics_db_reconnect(e->metrics);
	wsync_metrics_set_ready(e->metrics, 1, 1);
	if (!give_back)
		return db;
	pthread_mutex_lock(&e->mu);
	held = held_literal(e, 0);
	pthread_mutex_unlock(&e->mu);
	if (held && (n = wsync_store_give_back(db, e->name, held)) > 0)
		wsync_warn("%s: gave back %d entries claimed when the connection was lost", who, n);
	free(held);
	return db;
}

/* Stopping: loaded jobs never started go back; runnable ones too. */
static void store_shutdown(wsync_engine *e, PGconn *db)
{
	wsync_job **arr = NULL, *j;
	size_t n = 0;
	pthread_mutex_lock(&e->mu);
	if (e->loaded.n)
		arr = calloc(e->loaded.n, sizeof *arr);
	while (arr && (j = list_pop(&e->loaded)))
		arr[n++] = j;
	while ((j = list_pop(&e->runnable))) {
		give_back_outcome(j);
		list_push(&e->done, j);
	}
	e->store_done = 1;
	pthread_cond_broadcast(&e->call_cv);
	pthread_cond_broadcast(&e->writer_cv);
	pthread_mutex_unlock(&e->mu);
	if (db && n && wsync_store_release(db, arr, n) < 0)
		wsync_warn("store: could not give %zu claimed entries back; their leases end in "
		           "%d s", n, e->cfg->lease_seconds);
	pthread_mutex_lock(&e->mu);
	for (size_t i = 0; i < n; i++) {
		held_remove(e, arr[i]);
		wsync_job_free(arr[i]);
	}
	pthread_cond_broadcast(&e->writer_cv);
	pthread_mutex_unlock(&e->mu);
	free(arr);
}

/* A bounded wait on cv (the caller holds e->mu): a missed signal costs a
 * second at most, and `stopping` is seen. */
static void timed_wait(wsync_engine *e, pthread_cond_t *cv)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_cond_timedwait(cv, &e->mu, &until);
}

/* The claimer keeps a batch or so claimed and loaded ahead of the call
 * threads, on a connection of its own, so claiming never holds up the
 * intents.  It rests when the last claim found less than it asked for, until
 * a wake-up (NOTIFY, a retry due) or an outcome batch written (which may
 * unblock newer entries of the same entities). */
void *wsync_flow_claimer(void *p)
{
	wsync_engine *e = p;
	PGconn *db = wsync_engine_connect(e, "claimer", STORE_SESSION);
	unsigned long seen_gen = 0, seen_commit = 0;
	int exhausted = 0;

	while (db) {
		int limit = 0, got;
		size_t ahead;
		pthread_mutex_lock(&e->mu);
		if (atomic_load(&e->stopping)) {
			pthread_mutex_unlock(&e->mu);
			break;
		}
		if (exhausted && (e->generation != seen_gen || e->committed != seen_commit))
			exhausted = 0;
		if (e->once && exhausted && e->n_held == 0) {
			pthread_mutex_unlock(&e->mu);
			break; /* --once: nothing due is left */
		}
		ahead = (size_t)(e->n_threads > e->cfg->batch_size ? e->n_threads : e->cfg->batch_size);
		if (exhausted || e->loaded.n >= ahead) {
			timed_wait(e, &e->store_cv);
			pthread_mutex_unlock(&e->mu);
			continue;
		}
		seen_gen = e->generation;
		seen_commit = e->committed;
		pthread_mutex_unlock(&e->mu);
		if ((got = claim_batch(e, db, &limit)) < 0) {
			db = store_reconnect(e, db, "claimer", 1, STORE_SESSION);
			continue;
		}
		if (got < limit)
			exhausted = 1;
		if (got > 0) {
			pthread_mutex_lock(&e->mu);
			pthread_cond_signal(&e->starter_cv);
			pthread_mutex_unlock(&e->mu);
		}
	}
	PQfinish(db);
	pthread_mutex_lock(&e->mu);
	if (!db && e->once)
		atomic_store(&e->db_failed, 1);
	e->claimer_done = 1;
	pthread_cond_broadcast(&e->starter_cv);
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* The starter records the intents of loaded jobs for the call threads that
 * are idle, in one statement, and hands the jobs over.  When the claimer is
 * done (stop, or --once with nothing left), it gives back what was claimed
 * but never started and lets the call threads finish. */
void *wsync_flow_starter(void *p)
{
	wsync_engine *e = p;
	PGconn *db = wsync_engine_connect(e, "starter", STARTER_SESSION);

	while (db) {
		wsync_job *start[MAX_START];
		size_t n_start;
		pthread_mutex_lock(&e->mu);
		if (atomic_load(&e->stopping) || (e->claimer_done && !e->loaded.n)) {
			pthread_mutex_unlock(&e->mu);
			break;
		}
		n_start = pick_startable(e, start, MAX_START);
		if (!n_start) {
			timed_wait(e, &e->starter_cv);
			pthread_mutex_unlock(&e->mu);
			continue;
		}
		pthread_mutex_unlock(&e->mu);
		if (start_jobs(e, db, start, n_start) < 0)
			db = store_reconnect(e, db, "starter", 0, STARTER_SESSION);
	}
	pthread_mutex_lock(&e->mu); /* the claimer may still be adding jobs */
	while (!e->claimer_done)
		timed_wait(e, &e->starter_cv);
	pthread_mutex_unlock(&e->mu);
	store_shutdown(e, db);
	PQfinish(db);
	return NULL;
}

/* ---- call threads ------------------------------------------------------------- */

static void run_job(wsync_engine *e, const wsync_call_env *env, wsync_job *j)
{
	wsync_plugin_instance *inst;
	pthread_rwlock_rdlock(&e->swap_lock);
	inst = wsync_registry_find(e->registry, j->entry.provider);
	if (!inst) {
		/* unloaded by a reload since the claim */
		give_back_outcome(j);
	} else {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		wsync_dispatch_call(inst, env, j);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		classify(e, j);
		count_job(e, j, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, 0);
	}
	pthread_rwlock_unlock(&e->swap_lock);
}

void *wsync_flow_call(void *p)
{
	wsync_engine *e = p;
	wsync_call_env env = {wsync_http_client_new(), e->limiter, e->pool};
	/* Plugins run on this thread: wsyncd's fatal-signal handler, which
	 * names the plugin, must run even after a stack overflow in one. */
	stack_t alt = {.ss_sp = malloc(ALT_STACK_SIZE), .ss_size = ALT_STACK_SIZE, .ss_flags = 0};
	if (alt.ss_sp)
		sigaltstack(&alt, NULL);
	pthread_mutex_lock(&e->mu);
	for (;;) {
		wsync_job *j;
		while (!e->runnable.n && !e->store_done) {
			e->idle_threads++;
			pthread_cond_signal(&e->starter_cv);
			pthread_cond_wait(&e->call_cv, &e->mu);
			e->idle_threads--;
		}
		if (!(j = list_pop(&e->runnable)))
			break; /* the store is done and nothing is left */
		e->n_running++;
		pthread_mutex_unlock(&e->mu);
		run_job(e, &env, j);
		pthread_mutex_lock(&e->mu);
		e->n_running--;
		list_push(&e->done, j);
		/* The writer wakes once e->mu is free, not to wait for it. */
		pthread_mutex_unlock(&e->mu);
		pthread_cond_signal(&e->writer_cv);
		pthread_mutex_lock(&e->mu);
	}
	e->calls_done++;
	pthread_cond_broadcast(&e->writer_cv);
	pthread_mutex_unlock(&e->mu);
	wsync_http_client_free(env.http);
	if (alt.ss_sp) {
		stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
		free(alt.ss_sp);
	}
	return NULL;
}

/* ---- the writer --------------------------------------------------------------- */

/* A committed job's links reach the loaded jobs that wait for its key: they
 * were loaded before it, and must not create the workout again. */
static void pass_links(wsync_engine *e, const wsync_job *done)
{
	const char *link = NULL;
	int set = 0;
	if (!done->key[0])
		return;
	if (!strcmp(done->entry.entity_type, "workout") && done->res.link != LINK_KEEP) {
		set = 1;
		link = done->res.link == LINK_SET ? done->res.provider_id : NULL;
	} else if (done->res.workout_link) {
		set = 1;
		link = done->res.workout_link;
	}
	for (wsync_job *j = e->loaded.head; set && j; j = j->next)
		if (!strcmp(j->key, done->key)) {
			char *copy = link ? strdup(link) : NULL;
			if (link && !copy)
				continue; /* out of memory: keeps the loaded link */
			free(j->workout_link);
			j->workout_link = copy;
		}
}

/* Write, reconnecting every second while the database is away: these
 * calls may have reached providers, so their outcomes are kept.  Only a
 * stop with the database away for 10 s more drops them (the next attempts
 * reconcile). */
static int write_until_done(wsync_engine *e, PGconn **db, wsync_job **jobs, size_t n)
{
	int stop_tries = 0;
	while (wsync_store_write_outcomes(*db, jobs, n) < 0) {
		wsync_error("writer: database error: %.*s; keeping %zu outcomes to write after "
		            "reconnecting", (int)strcspn(PQerrorMessage(*db), "\n"),
		            PQerrorMessage(*db), n);
		PQfinish(*db);
		*db = NULL;
		while (!*db) {
			if (atomic_load(&e->stopping) && stop_tries++ >= 10)
				return -1;
			sleep(1);
			*db = wsync_engine_open(e, "writer", STORE_SESSION, NULL, 0);
		}
		wsync_info("writer: connected to the database again");
		wsync_metrics_db_reconnect(e->metrics);
	}
	return 0;
}

static void finish_batch(wsync_engine *e, wsync_job **jobs, size_t n, int written)
{
	int ok = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (!written)
			wsync_error("entry %s: exiting with its outcome unwritten (database away); "
			            "the next attempt reconciles before creating", jobs[i]->entry.id);
		jobs[i]->outcome.error_type ? failed++ : ok++;
	}
	pthread_mutex_lock(&e->mu);
	for (size_t i = 0; i < n; i++) {
		if (e->alone == jobs[i])
			e->alone = NULL; /* its outcome is written: others may start */
		key_free(e, jobs[i]);
		pass_links(e, jobs[i]);
		held_remove(e, jobs[i]);
		wsync_job_free(jobs[i]);
	}
	e->n_writing = 0;
	e->committed++;
	pthread_mutex_unlock(&e->mu);
	pthread_cond_broadcast(&e->store_cv);
	pthread_cond_signal(&e->starter_cv);
	wsync_info("Batch sync complete: %d operations (%d succeeded, %d failed)", ok + failed, ok,
	           failed);
}

void *wsync_flow_writer(void *p)
{
	wsync_engine *e = p;
	PGconn *db = wsync_engine_open(e, "writer", STORE_SESSION, NULL, 0); /* NULL: write_until_done connects */
	wsync_job **jobs = NULL;
	size_t cap = 0;

	pthread_mutex_lock(&e->mu);
	for (;;) {
		size_t n = 0;
		wsync_job *j;
		while (!e->done.n && !(e->store_done && e->calls_done == e->n_threads))
			pthread_cond_wait(&e->writer_cv, &e->mu);
		if (!e->done.n)
			break;
		if (e->done.n < GATHER_MIN && e->n_running > 0 && !e->store_done) {
			/* Group commit: more outcomes are on their way, and each
			 * commit costs the database a flush and a statement
			 * whatever its size.  One short nap gathers them. */
			struct timespec nap = {0, GATHER_NS};
			pthread_mutex_unlock(&e->mu);
			nanosleep(&nap, NULL);
			pthread_mutex_lock(&e->mu);
		}
		if (wsync_grow((void **)&jobs, &cap, e->done.n, sizeof *jobs) < 0) {
			pthread_mutex_unlock(&e->mu);
			sleep(1); /* out of memory: try again */
			pthread_mutex_lock(&e->mu);
			continue;
		}
		while ((j = list_pop(&e->done)))
			jobs[n++] = j;
		e->n_writing = n;
		pthread_mutex_unlock(&e->mu);
		finish_batch(e, jobs, n, write_until_done(e, &db, jobs, n) == 0);
		pthread_mutex_lock(&e->mu);
	}
	e->writer_done = 1;
	pthread_mutex_unlock(&e->mu);
	free(jobs);
	PQfinish(db);
	return NULL;
}

/* ---- heartbeat ---------------------------------------------------------------- */

/* Every third of a lease, push forward the leases of every job this process
 * holds, so a call longer than lease_seconds is never claimed twice, while
 * a dead process's entries fall free within one lease. */
void *wsync_flow_heartbeat(void *p)
{
	wsync_engine *e = p;
	PGconn *db = NULL;
	for (;;) {
		char *ids = NULL, *leases = NULL;
		int lease, done;
		pthread_mutex_lock(&e->mu);
		done = e->writer_done;
		if (e->n_held) {
			ids = held_literal(e, 0);
			leases = held_literal(e, 1);
		}
		pthread_mutex_unlock(&e->mu);
		if (done)
			break;
		pthread_rwlock_rdlock(&e->swap_lock); /* a reload swaps cfg */
		lease = e->cfg->lease_seconds;
		if (ids && leases && (!db || PQstatus(db) != CONNECTION_OK)) {
			PQfinish(db);
			db = wsync_engine_open(e, "heartbeat", 0, NULL, 0); /* a plain call, not prepared */
		}
		pthread_rwlock_unlock(&e->swap_lock);
		if (ids && leases && PQstatus(db) == CONNECTION_OK &&
		    wsync_store_extend_leases(db, ids, leases, lease) < 0)
			wsync_warn("heartbeat: cannot extend leases: %.*s",
			           (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
		free(ids);
		free(leases);
		for (int i = 0; i < (lease / 3 > 0 ? lease / 3 : 1) * 10; i++) {
			struct timespec ts = {0, 100000000};
			pthread_mutex_lock(&e->mu);
			done = e->writer_done;
			pthread_mutex_unlock(&e->mu);
			if (done)
				break;
			nanosleep(&ts, NULL);
		}
	}
	PQfinish(db);
	return NULL;
}
