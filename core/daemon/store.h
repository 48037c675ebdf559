/*
 * store.h -- every statement the daemon runs on the queue, the links and the
 * application's tables.  The rest of the daemon never sees SQL: dispatch
 * turns a loaded job into a result without touching the database, and the
 * engine moves jobs between the store and the call threads.
 *
 * The hot path is set-based: one statement claims a batch and loads
 * everything its entries need (entity rows, links, tokens); one statement
 * records the intents of the calls about to start; one transaction writes
 * the outcomes of every call that finished meanwhile (group commit).
 *
 * Ownership: a wsync_job and every string in it belong to the job; free it
 * with wsync_job_free().  Arrays of job pointers are the caller's.
 */
#ifndef WSYNC_DAEMON_STORE_H
#define WSYNC_DAEMON_STORE_H

#include "common/config.h"
#include "host/classify.h"
#include "host/oauth.h"
#include "wsync/plugin.h"

#include <libpq-fe.h>
#include <stddef.h>

/* One queue entry, as claimed. */
typedef struct wsync_entry {
	char id[40];
	char user_id[40];
	char entity_type[24];
	char entity_id[40];
	char operation[8];
	char provider[64];
	int retry_count;
	int attempts;                /* calls started before this claim */
	int reconcile;               /* an earlier call may have reached the
	                                provider (its intent is recorded) */
	char lease_token[24];
	long long seq;
	char *provider_entity_id;    /* captured at enqueue for deletes, or NULL */
} wsync_entry;

typedef enum { LINK_KEEP, LINK_SET, LINK_DROP } wsync_link_action;

/* What a job's calls produced, written by wsync_store_write_outcomes(). */
typedef struct wsync_result {
	int32_t status;                /* WSYNC_* or WSYNC_E_RECORD_GONE */
	int64_t retry_after_s;
	int deferred;                  /* our own limiter deferred it */
	int app_bound;                 /* ... because an app window was full
	                                  (known only when deferred at its claim) */
	char message[1024];
	wsync_link_action link;        /* for the entry's own entity */
	char *provider_id;             /* LINK_SET: malloc'ed */
	int relinked;                  /* a vanished workout was created again:
	                                  its schedules must follow the new id */
	char *workout_link;            /* a scheduled workout's entry created its
	                                  workout first: that link, malloc'ed */
	int mark_reconnect;            /* a final auth_error: flag the token */
	int started;                   /* the intent was recorded */
	int sent;                      /* the calls handed a request to libcurl:
	                                  it may have reached the provider */
	int refreshed;                 /* the calls refreshed the user's token */
	int plugin_died;               /* the plugin's process died in a call */
} wsync_result;

/* A claimed entry with everything its calls need. */
typedef struct wsync_job {
	wsync_entry entry;
	/* loaded; NULL when absent */
	char *workout_id, *workout_user_id, *name, *description, *sport, *workout_text;
	long long workout_updated_at;
	int has_workout;
	char *sched_workout_id, *scheduled_date, *scheduled_time;
	int has_sched;
	char *workout_link, *sched_link;
	wsync_token token;
	struct wsync_workout *structure; /* the parsed workout_text */
	int rate_budget;               /* provider calls already granted by the
	                                  cluster-wide limiter (wsync_rate_grant) */
	char key[112];                 /* provider + workout: calls that may create
	                                  or change that workout run one at a time */
	/* produced */
	wsync_result res;
	wsync_outcome outcome;
	struct wsync_job *next;        /* the engine's lists */
} wsync_job;

void wsync_job_free(wsync_job *job);

/* Prepare the hot path's statements on a new connection: claim, start
 * calls and write outcomes need them (the other functions run plain
 * statements).  Returns 0, or -1 (PQerrorMessage says why).  flags, for
 * the session: */
/* Commits are asynchronous: the starter's intents, which must survive
 * wsyncd dying (they do), not the database server crashing. */
#define WSYNC_STORE_ASYNC_COMMIT 1
/* Generic plans, and no sequential scan where an index serves: every
 * statement of the store probes by key, and a custom plan per batch cost
 * as much planning as execution.  A generic plan is made once, maybe while
 * a table is empty: without enable_seqscan it still probes by key when the
 * table has grown.  No JIT either: the generic claim's estimate sits near
 * jit_above_cost, and compiling it took 25 ms against 1 ms to run it. */
#define WSYNC_STORE_GENERIC_PLANS 2
int wsync_store_prepare(PGconn *db, int flags);

/* Claim up to `limit` due entries of the given providers and load them,
 * skipping held_ids (a uuid[] literal, "{...}", of the n_held entries this
 * process still holds).  Per-entity order holds, and a workout's entries never run beside
 * its scheduled workouts' on one provider, across every node.  Returns the
 * number claimed (jobs in *out, malloc'ed array of malloc'ed jobs, in queue
 * order), or -1 on a database error. */
int wsync_store_claim(PGconn *db, const char *worker, const char *const *providers,
                      size_t n_providers, int limit, int lease_seconds,
                      const char *held_ids, size_t n_held, wsync_job ***out);

/* Record the intents of the calls about to start (asynchronous commit) and
 * count their attempts.  started[i] = 1 when job i's lease was still ours
 * (call it), 0 when not (drop it).  Returns 0, or -1 on a database error
 * (then nothing may be called). */
int wsync_store_start_calls(PGconn *db, wsync_job *const *jobs, size_t n, int *started);

/* Write the outcomes of n jobs in one transaction: queue rows (only where
 * the lease is still ours; a success clears the intent), links, schedules
 * following a re-created workout, needs_reconnect.  Returns 0 or -1 (nothing
 * written: try again after reconnecting). */
int wsync_store_write_outcomes(PGconn *db, wsync_job *const *jobs, size_t n);

/* Grant the jobs of one provider (all `provider`'s, in `jobs`) one call
 * each from the cluster-wide rate limiter, in one statement
 * (migrations/0008, 0009): job->rate_budget = 1 for those granted.  user
 * (n_user windows, per user) and app (n_app windows) are the instance's
 * limits.  Returns 0, or -1 when the database could not answer (the jobs
 * then take their calls one by one). */
int wsync_store_rate_grant(PGconn *db, const char *provider, wsync_job *const *jobs, size_t n,
                           const wsync_rate_window *user, int n_user,
                           const wsync_rate_window *app, int n_app);

/*
 * How long each job's user must wait for its next call to `provider`
 * (migration 0015: read only, nothing recorded): wait_ms[i] for jobs[i], 0
 * when a window has room, -1 when unknown; app_wait_ms[i] the part of it
 * the app windows alone make.  user, app: as for the grant.  Returns 0, or
 * -1 when the database could not answer (every wait -1).
 */
int wsync_store_rate_wait(PGconn *db, const char *provider, wsync_job *const *jobs, size_t n,
                          const wsync_rate_window *user, int n_user,
                          const wsync_rate_window *app, int n_app, int64_t *wait_ms,
                          int64_t *app_wait_ms);

/* Give claimed, never-started entries back: claimable at once. */
int wsync_store_release(PGconn *db, wsync_job *const *jobs, size_t n);

/* After a reconnect: give back every entry still leased to `worker` except
 * held_ids (outcomes still to write).  Returns how many, or -1. */
int wsync_store_give_back(PGconn *db, const char *worker, const char *held_ids);

/* Heartbeat: extend the leases of the entries in ids/leases (uuid[] and
 * bigint[] literals).  Returns how many were still ours, or -1. */
int wsync_store_extend_leases(PGconn *db, const char *ids, const char *leases,
                              int lease_seconds);

/* Seconds until the earliest pending entry is due (0 if one is due now),
 * or -1 when nothing is pending or on error. */
long wsync_store_next_due(PGconn *db);

/* Register loaded provider instances in sync_providers. */
int wsync_store_register_provider(PGconn *db, const char *name, const char *plugin,
                                  int enabled);

/* The holders (locked_by, "host:pid:nonce") of live leases whose name starts
 * with host_prefix ("host:"): a NULL-terminated malloc'ed array of
 * malloc'ed strings in *holders (caller frees), their number, or -1. */
int wsync_store_lease_holders(PGconn *db, const char *host_prefix, char ***holders);
/* Release every pending entry leased to `holder` (a process known to be
 * gone): claimable at once.  Returns how many, or -1. */
int wsync_store_release_holder(PGconn *db, const char *holder);

/* Quarantine (host/isolate.h) as the operator sees it (migration 0010):
 * record this node's quarantine of `provider` (reason NULL: lifted); clear
 * every one of this node (start, reload); and whether the operator lifted
 * it (`wsyncctl plugins --release`): 1 yes, 0 no, -1 on error. */
int wsync_store_quarantine(PGconn *db, const char *node, const char *provider,
                           const char *reason);
int wsync_store_quarantine_clear(PGconn *db, const char *node);
int wsync_store_quarantine_lifted(PGconn *db, const char *node, const char *provider);

#endif
