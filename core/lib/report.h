/*
 * report.h -- the report queries behind `wsyncctl status|queue|errors|failed|
 * success-rate|prune` and the client status API.  Internal to libwsync's
 * static archive: wsyncctl links them, libwsync.so does not export them.
 *
 * Every report returns the PGresult of one query (never NULL unless out of
 * memory; check PQresultStatus); the caller PQclear()s it.  Timestamps come
 * back as ISO-8601 UTC text ("2026-11-28T17:00:00Z").
 */
#ifndef WSYNC_LIB_REPORT_H
#define WSYNC_LIB_REPORT_H

#include <libpq-fe.h>
#include <stddef.h>

/* wsync_sync_status() rows (provider NULL = every registered provider):
 * provider, state, synced, pending, failed, enabled, error_type,
 * error_message, last_attempt, next_retry_at, retry_count,
 * provider_entity_id, operation, queue_id, user_id, provider_not_served (why
 * no daemon serves the provider, NULL when one does: wsync_provider_state). */
PGresult *wsync_report_status(PGconn *db, const char *entity_type, const char *entity_id,
                              const char *provider);

/* Pending entries by provider, operation and entity type: pending, due,
 * in_flight, retrying, oldest, oldest_age_s, not_served (as for status). */
PGresult *wsync_report_queue(PGconn *db);

/* Pending entries whose last attempt failed, by error_type and provider:
 * entries, max_retry_count, next_retry_at, last_message. */
PGresult *wsync_report_errors(PGconn *db);

/* Current permanent failures (processed with an error and not superseded
 * by a newer entry of the same entity and provider), newest first. */
PGresult *wsync_report_failed(PGconn *db, long limit);

/* Per registered provider, entries processed in the last since_s seconds:
 * processed, succeeded, failed, rate_pct (NULL when none). */
PGresult *wsync_report_success_rate(PGconn *db, long since_s);

/* Every provider (wsync_provider_state, migrations/0007): plugin, queued
 * (the triggers enqueue for it), operator_disabled, operator_changed_at,
 * served_by (nodes whose configuration loads it, space-separated),
 * not_served (why nothing serves it, NULL when something does). */
PGresult *wsync_report_providers(PGconn *db);

/* Delete processed entries older than older_s seconds, `batch` rows per
 * statement (each its own transaction, so locks stay short); pending
 * entries are never touched.  Returns the number deleted, or -1 with the
 * message in err.  *batches (may be NULL) = statements run. */
long long wsync_prune(PGconn *db, long older_s, long batch, long *batches, char *err,
                      size_t errlen);

#endif
