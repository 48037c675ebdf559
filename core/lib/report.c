/*
 * report.c -- report queries (wsyncctl, client status API): each report is
 * one query whose PGresult the caller prints or reads.
 */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The primary message of a failed result (one line), else libpq's. */
static void result_error(PGconn *db, const PGresult *r, char *err, size_t errlen)
{
	const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	snprintf(err, errlen, "%s", m ? m : PQerrorMessage(db));
	err[strcspn(err, "\n")] = 0;
}

/* ---- queries ---------------------------------------------------------------- */

static PGresult *run(PGconn *db, const char *sql, int n, const char *const *params)
{
	return PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
}

PGresult *wsync_report_status(PGconn *db, const char *entity_type, const char *entity_id,
                              const char *provider)
{
	const char *p[3] = {entity_type, entity_id, provider};
	return run(db,
		"SELECT s.provider, state, synced, pending, failed, s.enabled, error_type,"
		"  error_message, wsync_iso8601(last_attempt) AS last_attempt,"
		"  wsync_iso8601(next_retry_at) AS next_retry_at, retry_count,"
		"  provider_entity_id, operation, queue_id, user_id,"
		"  v.reason AS provider_not_served"
		" FROM wsync_sync_status($1, $2::uuid, $3) s"
		" LEFT JOIN wsync_provider_state v ON v.provider = s.provider"
		" ORDER BY s.provider",
		3, p);
}

PGresult *wsync_report_queue(PGconn *db)
{
	return run(db,
		"SELECT provider, operation, entity_type, count(*) AS pending,"
		"  count(*) FILTER (WHERE next_retry_at <= now()"
		"    AND (locked_until IS NULL OR locked_until < now())) AS due,"
		"  count(*) FILTER (WHERE locked_until >= now()) AS in_flight,"
		"  count(*) FILTER (WHERE error_type IS NOT NULL) AS retrying,"
		"  wsync_iso8601(min(created_at)) AS oldest,"
		"  extract(epoch FROM now() - min(created_at))::bigint AS oldest_age_s,"
		"  (SELECT v.reason FROM wsync_provider_state v WHERE v.provider = q.provider)"
		"    AS not_served"
		" FROM workout_sync_queue q WHERE processed_at IS NULL"
		" GROUP BY provider, operation, entity_type"
		" ORDER BY provider, operation, entity_type",
		0, NULL);
}

PGresult *wsync_report_errors(PGconn *db)
{
	return run(db,
		"SELECT error_type, provider, count(*) AS entries,"
		"  max(retry_count) AS max_retry_count,"
		"  wsync_iso8601(min(next_retry_at)) AS next_retry_at,"
		"  (array_agg(error_message ORDER BY updated_at DESC, seq DESC))[1]"
		"    AS last_message"
		" FROM workout_sync_queue"
		" WHERE processed_at IS NULL AND error_type IS NOT NULL"
		" GROUP BY error_type, provider"
		" ORDER BY entries DESC, error_type, provider",
		0, NULL);
}

PGresult *wsync_report_failed(PGconn *db, long limit)
{
	char lim[24];
	const char *p[1] = {lim};
	snprintf(lim, sizeof lim, "%ld", limit);
	return run(db,
		"SELECT wsync_iso8601(q.processed_at) AS failed_at, q.id, q.provider,"
		"  q.user_id, q.entity_type, q.entity_id, q.operation, q.error_type,"
		"  q.retry_count, q.error_message"
		" FROM workout_sync_queue q"
		" WHERE q.processed_at IS NOT NULL AND q.error_type IS NOT NULL"
		"   AND NOT EXISTS (SELECT 1 FROM workout_sync_queue n"
		"        WHERE n.entity_type = q.entity_type AND n.entity_id = q.entity_id"
		"          AND n.provider = q.provider AND n.seq > q.seq)"
		" ORDER BY q.processed_at DESC, q.seq DESC LIMIT $1::bigint",
		1, p);
}

PGresult *wsync_report_success_rate(PGconn *db, long since_s)
{
	char since[24];
	const char *p[1] = {since};
	snprintf(since, sizeof since, "%ld", since_s);
	return run(db,
		"SELECT p.name AS provider, count(q.id) AS processed,"
		"  count(q.id) FILTER (WHERE q.error_type IS NULL) AS succeeded,"
		"  count(q.id) FILTER (WHERE q.error_type IS NOT NULL) AS failed,"
		"  round(100.0 * count(q.id) FILTER (WHERE q.error_type IS NULL)"
		"        / nullif(count(q.id), 0), 1) AS rate_pct"
		" FROM sync_providers p"
		" LEFT JOIN workout_sync_queue q ON q.provider = p.name"
		"   AND q.processed_at >= now() - make_interval(secs => $1::bigint)"
		" GROUP BY p.name ORDER BY p.name",
		1, p);
}

PGresult *wsync_report_providers(PGconn *db)
{
	return run(db,
		"SELECT provider, plugin, enabled AS queued, operator_disabled,"
		"  wsync_iso8601(operator_changed_at) AS operator_changed_at,"
		"  array_to_string(nodes_enabled, ' ') AS served_by, reason AS not_served"
		" FROM wsync_provider_state ORDER BY provider",
		0, NULL);
}

long long wsync_prune(PGconn *db, long older_s, long batch, long *batches, char *err,
                      size_t errlen)
{
	char older[24], lim[24], *cutoff;
	const char *p[2] = {older, lim};
	long long total = 0;
	long n_batches = 0;
	PGresult *r;
	int n;

	snprintf(older, sizeof older, "%ld", older_s);
	snprintf(lim, sizeof lim, "%ld", batch);
	/* One cutoff for the whole run: rows processed while we prune are not
	 * chased, so the loop ends. */
	r = run(db, "SELECT (now() - make_interval(secs => $1::bigint))::text", 1, p);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || !(cutoff = strdup(PQgetvalue(r, 0, 0)))) {
		result_error(db, r, err, errlen);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	p[0] = cutoff;
	do {
		r = run(db,
			"DELETE FROM workout_sync_queue WHERE id IN ("
			"  SELECT id FROM workout_sync_queue"
			"   WHERE processed_at IS NOT NULL AND processed_at < $1::timestamptz"
			"   ORDER BY processed_at LIMIT $2::bigint"
			"   FOR UPDATE SKIP LOCKED)",
			2, p);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			result_error(db, r, err, errlen);
			PQclear(r);
			free(cutoff);
			return -1;
		}
		n = atoi(PQcmdTuples(r));
		PQclear(r);
		total += n;
		n_batches++;
	} while (n >= batch);
	free(cutoff);
	if (batches)
		*batches = n_batches;
	return total;
}
