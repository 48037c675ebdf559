/*
 * engine_internal.h -- what engine.c (lifecycle, supervisor, reload) and
 * flow.c (the threads that move jobs) share.  Not for other files.
 *
 * A job's life (store.h, dispatch.h):
 *
 *   claim+load (claimer thread) -> prepare -> loaded
 *     -> intent recorded for as many jobs as there are idle call threads
 *        (starter thread, one statement) -> runnable
 *     -> plugin calls (a call thread, no database connection) -> done
 *     -> outcome written with every other done job (writer thread, one
 *        transaction) -> freed
 *
 * `key` (provider + workout) keeps two jobs that may create or change the
 * same workout on a provider from running at once; the claim does the same
 * across processes.  Every list below is guarded by `mu`.
 */
#ifndef WSYNC_DAEMON_ENGINE_INTERNAL_H
#define WSYNC_DAEMON_ENGINE_INTERNAL_H

#include "engine.h"

#include "dispatch.h"
#include "host/dbpool.h"
#include "metrics.h"
#include "host/plugin_loader.h"
#include "host/ratelimit.h"
#include "stagger.h"
#include "store.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct job_list {
	wsync_job *head, *tail;
	size_t n;
} job_list;

struct wsync_engine {
	wsync_config *cfg;
	char *config_path;
	char *conninfo;                 /* fixed at start: a reload keeps it */
	wsync_registry *registry;
	wsync_ratelimiter *limiter;
	wsync_dbpool *pool;             /* token refresh, cluster-wide limiter */
	wsync_stagger *stagger;         /* when deferred entries come back */
	wsync_metrics *metrics;         /* counters, and the endpoint when
	                                   [metrics] listen is set */
	pthread_rwlock_t swap_lock;     /* writers: reload swaps cfg/registry */
	atomic_int stopping;
	atomic_int reload_requested;
	atomic_int db_failed;           /* once: the database was never reached */
	int once;
	int pipe_fd[2];                 /* self-pipe from signal handlers */
	char name[160];                 /* host:pid:nonce, the lease holder */
	char node[PATH_MAX + 300];      /* host:config path, as registered
	                                   (providers.c); fixed at start */
	int n_threads;                  /* call threads (cfg workers at start) */

	pthread_mutex_t mu;
	pthread_cond_t store_cv;        /* the claimer waits here */
	pthread_cond_t starter_cv;      /* the starter waits here */
	pthread_cond_t call_cv;         /* call threads wait here */
	pthread_cond_t writer_cv;       /* the writer waits here */
	unsigned long generation;       /* wake-ups from the supervisor */
	unsigned long committed;        /* outcome batches written */
	job_list loaded;                /* claimed, waiting for a thread and key */
	job_list runnable;              /* intent recorded, waiting for a thread */
	job_list done;                  /* calls made, outcome to write */
	size_t n_running, n_writing;
	int idle_threads;
	int claimer_done;               /* no more claims (stop, or --once done) */
	int store_done, calls_done, writer_done;
	char **busy_keys;               /* keys of runnable..writing jobs */
	size_t n_busy, cap_busy;
	wsync_job *alone;               /* a suspect job (flow.c, `suspect`):
	                                   nothing else starts from its start
	                                   until its outcome is written */
	wsync_job **held;               /* every job in this process */
	size_t n_held, cap_held;
};

/* flow.c */
void *wsync_flow_claimer(void *engine);
void *wsync_flow_starter(void *engine);
void *wsync_flow_call(void *engine);
void *wsync_flow_writer(void *engine);
void *wsync_flow_heartbeat(void *engine);

/* engine.c */
/* A connection, or NULL with the reason in why (may be NULL); `who` (the
 * thread it is for) names it in pg_stat_activity ("wsyncd writer").
 * Non-zero store_flags make it a store session: the store's statements
 * prepared with those flags (store.h, wsync_store_prepare); 0, a plain one. */
PGconn *wsync_engine_open(wsync_engine *e, const char *who, int store_flags, char *why,
                          size_t why_len);
/* The same, retrying every second (logged once a minute) until it works
 * or the engine stops; NULL then, or at once when running --once. */
PGconn *wsync_engine_connect(wsync_engine *e, const char *who, int store_flags);
void wsync_engine_sleep(wsync_engine *e, int seconds);

#endif
