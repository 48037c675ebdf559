#include "queue.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The claim: a fenced (MATERIALIZED) CTE picks due rows with SKIP LOCKED, in
 * (next_retry_at, seq) order, skipping any row that has an older unprocessed
 * entry for the same (entity_type, entity_id, provider): per-entity order
 * holds however many workers and nodes claim.  A scheduled workout also
 * waits for older entries of its workout on that provider, so it is pushed
 * with the workout's current provider id.
 *
 * A lease ends at locked_until, which the holder's heartbeat keeps pushing
 * forward, so a dead process's entries fall free within one lease.  After a
 * long database outage leases may have run out while this process still
 * holds the entries (a call finishing, an outcome waiting to be written):
 * $5 lists them, and the claim skips them.  Another node claiming one runs
 * it with reconcile set (its intent is recorded), so it looks the object up
 * before creating.  Attempts are not counted here but when a call starts
 * (wsync_queue_call_start), so batch-mates of a crashing entry lose nothing.
 */
static const char CLAIM_SQL[] =
	"WITH c AS MATERIALIZED ("
	"  SELECT q.id FROM workout_sync_queue q"
	"  WHERE q.processed_at IS NULL AND q.next_retry_at <= now()"
	"    AND (q.locked_until IS NULL OR q.locked_until < now())"
	"    AND q.id <> ALL($5::uuid[])"
	"    AND q.provider = ANY($2::text[])"
	"    AND NOT EXISTS (SELECT 1 FROM workout_sync_queue o"
	"        WHERE o.entity_type = q.entity_type AND o.entity_id = q.entity_id"
	"          AND o.provider = q.provider AND o.processed_at IS NULL"
	"          AND o.seq < q.seq)"
	"    AND NOT (q.entity_type = 'workout_scheduled' AND EXISTS ("
	"        SELECT 1 FROM workouts_scheduled s JOIN workout_sync_queue o"
	"          ON o.entity_type = 'workout' AND o.entity_id = s.workout_id"
	"        WHERE s.id = q.entity_id AND o.provider = q.provider"
	"          AND o.processed_at IS NULL AND o.seq < q.seq))"
	/* lifecycle (migration 0007): a workout's delete waits while a delete
	 * of a scheduled workout of the same user is unfinished on that
	 * provider, so calendar entries go before their workout.  No seq bound:
	 * ON DELETE CASCADE queues the workout's delete first.  The schedule
	 * rows are gone by then, so "its schedules" widens to the user's. */
	"    AND NOT (q.entity_type = 'workout' AND q.operation = 'delete' AND EXISTS ("
	"        SELECT 1 FROM workout_sync_queue o"
	"        WHERE o.user_id = q.user_id AND o.provider = q.provider"
	"          AND o.entity_type = 'workout_scheduled' AND o.operation = 'delete'"
	"          AND o.processed_at IS NULL))"
	"  ORDER BY q.next_retry_at, q.seq"
	"  LIMIT $3"
	"  FOR NO KEY UPDATE SKIP LOCKED)"
	" UPDATE workout_sync_queue q SET locked_by = $1,"
	"   locked_until = now() + make_interval(secs => $4::int),"
	"   lease_token = nextval('workout_sync_lease_seq'), updated_at = now()"
	" FROM c WHERE q.id = c.id"
	" RETURNING q.id, q.user_id, q.entity_type, q.entity_id, q.operation,"
	"   q.provider, q.retry_count, q.attempts, q.lease_token, q.provider_entity_id,"
	"   q.intent_at IS NOT NULL";

/* Postgres array literal of provider names (names are [a-z0-9_-] only). */
static char *text_array(const char *const *items, size_t n)
{
	size_t len = 3;
	char *s, *p;
	for (size_t i = 0; i < n; i++)
		len += strlen(items[i]) + 3;
	if (!(s = malloc(len)))
		return NULL;
	p = s;
	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s\"%s\"", i ? "," : "", items[i]);
	*p++ = '}';
	*p = 0;
	return s;
}

static void copy(char *dst, size_t len, const PGresult *r, int row, int col)
{
	snprintf(dst, len, "%s", PQgetvalue(r, row, col));
}

int wsync_queue_claim(PGconn *db, const char *worker, const char *const *providers,
                      size_t n_providers, int limit, int lease_seconds,
                      const char *held_ids, wsync_entry **out)
{
	char lim[16], lease[16];
	char *arr = text_array(providers, n_providers);
	const char *params[5] = {worker, arr, lim, lease, held_ids ? held_ids : "{}"};
	PGresult *r;
	int n;

	*out = NULL;
	if (!arr)
		return -1;
	snprintf(lim, sizeof lim, "%d", limit);
	snprintf(lease, sizeof lease, "%d", lease_seconds);
	r = PQexecParams(db, CLAIM_SQL, 5, NULL, params, NULL, NULL, 0);
	free(arr);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return -1;
	}
	n = PQntuples(r);
	*out = n ? calloc((size_t)n, sizeof **out) : NULL;
	for (int i = 0; i < n && *out; i++) {
		wsync_entry *e = &(*out)[i];
		copy(e->id, sizeof e->id, r, i, 0);
		copy(e->user_id, sizeof e->user_id, r, i, 1);
		copy(e->entity_type, sizeof e->entity_type, r, i, 2);
		copy(e->entity_id, sizeof e->entity_id, r, i, 3);
		copy(e->operation, sizeof e->operation, r, i, 4);
		copy(e->provider, sizeof e->provider, r, i, 5);
		e->retry_count = atoi(PQgetvalue(r, i, 6));
		e->attempts = atoi(PQgetvalue(r, i, 7));
		copy(e->lease_token, sizeof e->lease_token, r, i, 8);
		if (!PQgetisnull(r, i, 9))
			e->provider_entity_id = strdup(PQgetvalue(r, i, 9));
		e->reconcile = PQgetvalue(r, i, 10)[0] == 't';
	}
	PQclear(r);
	return n && !*out ? -1 : n;
}

void wsync_entries_free(wsync_entry *e, int n)
{
	for (int i = 0; e && i < n; i++)
		free(e[i].provider_entity_id);
	free(e);
}

static int exec_count(PGconn *db, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? atoi(PQcmdTuples(r)) : -1;
	PQclear(r);
	return rc;
}

int wsync_queue_complete(PGconn *db, const wsync_entry *e, const wsync_outcome *o,
                         const char *message)
{
	char delay[24], retries[16];
	const char *p[8] = {e->id, e->lease_token, o->processed ? "t" : "f", delay,
	                    retries, o->error_type, o->error_type ? message : NULL,
	                    o->uses_attempt ? "0" : "1"};
	int rc;
	snprintf(delay, sizeof delay, "%lld", (long long)o->delay_s);
	snprintf(retries, sizeof retries, "%d", o->retry_count);
	/* locked_until = now() - 1 s, not NULL: a claimed row never re-enters
	 * the coalescing index, so a later enqueue cannot rewrite it. */
	rc = exec_count(db,
		"UPDATE workout_sync_queue SET"
		"  processed_at = CASE WHEN $3::bool THEN now() END,"
		"  next_retry_at = CASE WHEN $3::bool THEN next_retry_at"
		"                  ELSE now() + make_interval(secs => $4::bigint) END,"
		"  retry_count = $5::int, error_type = $6, error_message = $7,"
		"  attempts = greatest(attempts - $8::int, 0),"
		"  intent_at = CASE WHEN $3::bool AND $6::text IS NULL THEN NULL ELSE intent_at END,"
		"  locked_until = now() - interval '1 second', locked_by = NULL,"
		"  updated_at = now()"
		" WHERE id = $1 AND lease_token = $2::bigint AND processed_at IS NULL",
		8, p);
	return rc < 0 ? -1 : rc > 0;
}

int wsync_queue_release(PGconn *db, const wsync_entry *e)
{
	const char *p[2] = {e->id, e->lease_token};
	return exec_count(db,
		"UPDATE workout_sync_queue SET locked_until = now() - interval '1 second',"
		"  locked_by = NULL, updated_at = now()"
		" WHERE id = $1 AND lease_token = $2::bigint AND processed_at IS NULL", 2, p);
}

/* "{a,b,c}" of n strings taken from entries at `offset` (uuids and
 * integers only: nothing to quote). */
static char *field_array(const wsync_entry *const *es, size_t n, size_t offset)
{
	size_t len = 3, off = 0;
	char *s;
	for (size_t i = 0; i < n; i++)
		len += strlen((const char *)es[i] + offset) + 1;
	if (!(s = malloc(len)))
		return NULL;
	s[off++] = '{';
	for (size_t i = 0; i < n; i++)
		off += (size_t)sprintf(s + off, "%s%s", i ? "," : "", (const char *)es[i] + offset);
	s[off++] = '}';
	s[off] = 0;
	return s;
}

/* SELECT fn($1::uuid[], $2::bigint[] [, $3]) over the entries' ids and lease
 * tokens: the number of rows still leased to us, or -1. */
static int call_array_fn(PGconn *db, const char *sql, const wsync_entry *const *es, size_t n,
                         const char *extra)
{
	char *ids = field_array(es, n, offsetof(wsync_entry, id));
	char *leases = field_array(es, n, offsetof(wsync_entry, lease_token));
	const char *p[3] = {ids, leases, extra};
	PGresult *r = NULL;
	int rc = -1;
	if (ids && leases)
		r = PQexecParams(db, sql, extra ? 3 : 2, NULL, p, NULL, NULL, 0);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	free(ids);
	free(leases);
	return rc;
}

int wsync_queue_call_start(PGconn *db, const wsync_entry *e)
{
	return call_array_fn(db, "SELECT wsync_call_start($1::uuid[], $2::bigint[])", &e, 1, NULL);
}

int wsync_queue_extend_leases(PGconn *db, const wsync_entry *const *es, size_t n,
                              int lease_seconds)
{
	char secs[16];
	if (n == 0)
		return 0;
	snprintf(secs, sizeof secs, "%d", lease_seconds);
	return call_array_fn(db, "SELECT wsync_lease_extend($1::uuid[], $2::bigint[], $3::int)",
	                     es, n, secs);
}

long wsync_queue_next_due(PGconn *db)
{
	PGresult *r = PQexec(db,
		"SELECT greatest(0, ceil(extract(epoch FROM min(greatest(next_retry_at,"
		"   coalesce(locked_until, next_retry_at))) - now())))::bigint"
		" FROM workout_sync_queue WHERE processed_at IS NULL");
	long v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0))
		v = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

int wsync_queue_register_provider(PGconn *db, const char *name, const char *plugin,
                                  int enabled)
{
	const char *p[3] = {name, plugin, enabled ? "t" : "f"};
	return exec_count(db,
		"INSERT INTO sync_providers (name, plugin, enabled) VALUES ($1, $2, $3::bool)"
		" ON CONFLICT (name) DO UPDATE SET plugin = EXCLUDED.plugin,"
		"   enabled = EXCLUDED.enabled, updated_at = now()", 3, p) < 0 ? -1 : 0;
}
