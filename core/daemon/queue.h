/*
 * queue.h -- claiming and completing workout_sync_queue entries.
 *
 * A claim takes a lease (locked_until, lease_token) and counts the attempt;
 * every completion presents the lease token, so a worker whose lease expired
 * and was taken over cannot overwrite the newer claim.
 */
#ifndef WSYNC_QUEUE_H
#define WSYNC_QUEUE_H

#include "host/classify.h"

#include <libpq-fe.h>
#include <stddef.h>

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
	char *provider_entity_id;    /* captured for deletes; malloc'ed or NULL */
} wsync_entry;

/* Claim up to `limit` due entries of the given providers, skipping the ids
 * of held_ids (a PostgreSQL uuid[] literal, "{...}", or NULL): what this
 * process still holds.  Returns the number claimed (entries in *out,
 * malloc'ed array; free with wsync_entries_free), or -1 on a database
 * error. */
int wsync_queue_claim(PGconn *db, const char *worker, const char *const *providers,
                      size_t n_providers, int limit, int lease_seconds,
                      const char *held_ids, wsync_entry **out);
void wsync_entries_free(wsync_entry *e, int n);

/* Record the outcome (inside the caller's transaction if one is open).  A
 * success clears the intent.  Returns 1 when the lease was still ours, 0
 * when it was lost, -1 on error. */
int wsync_queue_complete(PGconn *db, const wsync_entry *e, const wsync_outcome *o,
                         const char *message);

/* Give a claimed entry back untouched (shutdown, plugin gone, its call never
 * started): claimable at once. */
int wsync_queue_release(PGconn *db, const wsync_entry *e);

/* Durably record that the entry's provider call is starting (its intent) and
 * count the attempt.  Returns 1, 0 when the lease was lost (do not call), or
 * -1 on a database error (do not call either). */
int wsync_queue_call_start(PGconn *db, const wsync_entry *e);

/* Heartbeat: push the leases of the entries this process holds forward by
 * lease_seconds.  Returns how many were still ours, or -1 on error. */
int wsync_queue_extend_leases(PGconn *db, const wsync_entry *const *es, size_t n,
                              int lease_seconds);

/* Seconds until the earliest pending entry is due (0 if one is due now),
 * or -1 when nothing is pending or on error. */
long wsync_queue_next_due(PGconn *db);

/* Register loaded provider instances in sync_providers. */
int wsync_queue_register_provider(PGconn *db, const char *name, const char *plugin,
                                  int enabled);

#endif
