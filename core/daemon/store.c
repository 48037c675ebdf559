#include "store.h"

#include "common/log.h"
#include "common/workout_parse.h"
#include "host/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growing string, for array literals -------------------------------- */

typedef struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = realloc(b->s, cap))) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* One element of a PostgreSQL array literal: NULL, or a double-quoted
 * string with " and \ escaped (so commas, braces and quotes in messages
 * are safe). */
static void sb_elem(sbuf *b, const char *v)
{
	if (b->len > 1 || (b->len == 1 && b->s[0] != '{'))
		sb_put(b, ",", 1);
	if (!v) {
		sb_str(b, "NULL");
		return;
	}
	sb_put(b, "\"", 1);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_put(b, "\\", 1);
		sb_put(b, p, 1);
	}
	sb_put(b, "\"", 1);
}

static void sb_int(sbuf *b, long long v)
{
	char n[24];
	snprintf(n, sizeof n, "%lld", v);
	sb_elem(b, n);
}

/* An array of n columns, built together. */
typedef struct arrays {
	sbuf col[10];
	int n;
} arrays;

static void arrays_open(arrays *a, int n)
{
	memset(a, 0, sizeof *a);
	a->n = n;
	for (int i = 0; i < n; i++)
		sb_str(&a->col[i], "{");
}

/* Closes every column; -1 when out of memory. */
static int arrays_close(arrays *a)
{
	int oom = 0;
	for (int i = 0; i < a->n; i++) {
		sb_str(&a->col[i], "}");
		oom |= a->col[i].oom;
	}
	return oom ? -1 : 0;
}

static void arrays_free(arrays *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->col[i].s);
}

/* Invalid UTF-8 in a message would fail the whole outcome transaction:
 * replace each bad byte with '?' (the host's own UTF-8 rule). */
static void utf8_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n = strlen(s);
	while (n) {
		size_t k = wsync_utf8_len(p, n);
		if (!k) {
			*p = '?';
			k = 1;
		}
		p += k;
		n -= k;
	}
}

/* ---- statements ------------------------------------------------------------ */

/* The hot path's statements, prepared on each connection (see STMTS). */
enum stmt_id { ST_CLAIM, ST_START, ST_OUTCOME, ST_LINK_SET, ST_LINK_DROP, ST_RESYNC,
               ST_RECONNECT, ST_OUTCOME_LINKS, ST_COUNT };

static PGresult *run(PGconn *db, enum stmt_id id, int n, const char *const *p);

static int exec_ok(PGconn *db, const char *sql, int n, const char *const *p, int tuples)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == (tuples ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
	if (!ok)
		wsync_debug("store: %s", PQerrorMessage(db));
	PQclear(r);
	return ok ? 0 : -1;
}

static int exec_count(PGconn *db, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? atoi(PQcmdTuples(r)) : -1;
	PQclear(r);
	return rc;
}

/*
 * The claim, with everything the batch needs, in one statement.
 *
 * c picks due rows with SKIP LOCKED in (next_retry_at, seq) order, skipping
 * a row that has an older unprocessed entry of the same (entity, provider)
 * (per-entity order however many nodes claim), a scheduled workout with an
 * older entry of its workout (pushed with the workout's current id), and
 * any row whose workout is being worked on elsewhere: a workout entry while
 * one of its scheduled workouts is leased on that provider, and the other
 * way round (either may create the workout on the provider).  $5 lists
 * what this process still holds (a call finishing, an outcome waiting for
 * the database).  A lease ends at locked_until, which the holder's
 * heartbeat keeps pushing forward, so a dead process's entries fall free
 * within one lease.  No attempt is counted here: attempts count calls
 * started (wsync_call_start), so batch-mates of a crashing entry lose
 * nothing.
 */
static const char CLAIM_PICK_SQL[] =
	/* The first due rows in queue order, read along the claim index
	 * whatever the statistics say (a queue's are always stale), with the
	 * columns the conditions need: those run on these few rows only, and
	 * only the rows they keep are fetched again to be locked.  $6 leaves
	 * room for rows they reject. */
	"WITH cand AS MATERIALIZED ("
	"  SELECT q.id, q.user_id, q.entity_type, q.entity_id, q.operation, q.provider,"
	"    q.seq, q.next_retry_at FROM workout_sync_queue q"
	"  WHERE q.processed_at IS NULL AND q.next_retry_at <= now()"
	"    AND (q.locked_until IS NULL OR q.locked_until < now())"
	"    AND q.provider = ANY($2::text[])"
	"  ORDER BY q.next_retry_at, q.seq"
	"  LIMIT $6),"
	/* Every probe goes from the candidate to its entity's entries by key:
	 * the EXISTS nest, each with OFFSET 0, so that PostgreSQL neither turns
	 * them into anti-joins nor reorders their joins.  A generic plan would
	 * otherwise hash every pending entry, or scan every scheduled workout's
	 * entry, once per claim or even once per candidate. */
	" pick AS MATERIALIZED ("
	"  SELECT q.id, q.next_retry_at, q.seq FROM cand q"
	"  WHERE q.id <> ALL($5::uuid[])"
	"    AND NOT EXISTS (SELECT 1 FROM workout_sync_queue o"
	"        WHERE o.entity_type = q.entity_type AND o.entity_id = q.entity_id"
	"          AND o.provider = q.provider AND o.processed_at IS NULL"
	"          AND o.seq < q.seq OFFSET 0)"
	"    AND NOT (q.entity_type = 'workout_scheduled' AND EXISTS ("
	"        SELECT 1 FROM workouts_scheduled s WHERE s.id = q.entity_id AND EXISTS ("
	"          SELECT 1 FROM workout_sync_queue o"
	"          WHERE o.entity_type = 'workout' AND o.entity_id = s.workout_id"
	"            AND o.provider = q.provider AND o.processed_at IS NULL"
	"            AND (o.seq < q.seq OR o.locked_until >= now()) OFFSET 0) OFFSET 0))"
	"    AND NOT (q.entity_type = 'workout' AND EXISTS ("
	"        SELECT 1 FROM workouts_scheduled s WHERE s.workout_id = q.entity_id AND EXISTS ("
	"          SELECT 1 FROM workout_sync_queue o"
	"          WHERE o.entity_type = 'workout_scheduled' AND o.entity_id = s.id"
	"            AND o.provider = q.provider AND o.processed_at IS NULL"
	"            AND o.locked_until >= now() OFFSET 0) OFFSET 0))"
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
	"  LIMIT $3),"
	/* Locked, and checked again: another node may have taken or finished a
	 * row since cand read it.  Probed by key, in pick's order, whatever the
	 * plan's estimates: a generic plan cannot see the LIMITs and would join
	 * the queue whole. */
	" c AS MATERIALIZED ("
	"  SELECT l.id FROM pick CROSS JOIN LATERAL ("
	"    SELECT q.id FROM workout_sync_queue q WHERE q.id = pick.id"
	"      AND q.processed_at IS NULL"
	"      AND (q.locked_until IS NULL OR q.locked_until < now())"
	"    FOR NO KEY UPDATE OF q SKIP LOCKED) l),";

/* The second half of the claim: lease the rows c locked, and load what
 * their calls need. */
static const char CLAIM_LOAD_SQL[] =
	" u AS (UPDATE workout_sync_queue q SET locked_by = $1,"
	"   locked_until = now() + make_interval(secs => $4::int),"
	"   lease_token = nextval('workout_sync_lease_seq'), updated_at = now()"
	" WHERE q.id = ANY (ARRAY(SELECT c.id FROM c))"
	" RETURNING q.id, q.user_id, q.entity_type, q.entity_id, q.operation, q.provider,"
	"   q.retry_count, q.attempts, q.lease_token, q.provider_entity_id, q.intent_at, q.seq)"
	" SELECT u.id, u.user_id, u.entity_type, u.entity_id, u.operation, u.provider,"      /* 0-5 */
	"   u.retry_count, u.attempts, u.lease_token, u.provider_entity_id,"                  /* 6-9 */
	"   u.intent_at IS NOT NULL, u.seq,"                                                   /* 10-11 */
	"   s.id IS NOT NULL, s.workout_id, s.scheduled_date::text, s.scheduled_time::text,"  /* 12-15 */
	"   w.id IS NOT NULL, w.id, w.user_id, w.name, w.description, w.sport,"               /* 16-21 */
	"   w.workout_text, extract(epoch FROM w.updated_at)::bigint,"                        /* 22-23 */
	"   wl.provider_entity_id, sl.provider_entity_id,"                                    /* 24-25 */
	"   t.user_id IS NOT NULL, t.access_token, t.refresh_token,"                          /* 26-28 */
	"   floor(extract(epoch FROM t.expires_at))::bigint,"                                  /* 29 */
	"   t.upload_workouts_enabled, t.needs_reconnect"                                      /* 30-31 */
	/* Each row is fetched through its key, one index probe per entry:
	 * OFFSET 0 keeps the planner from turning these into hash joins that
	 * read whole tables (workouts, links) for a batch of a hundred rows. */
	" FROM u"
	" LEFT JOIN LATERAL (SELECT s.id, s.workout_id, s.scheduled_date, s.scheduled_time"
	"   FROM workouts_scheduled s WHERE u.entity_type = 'workout_scheduled'"
	"   AND s.id = u.entity_id OFFSET 0) s ON true"
	" LEFT JOIN LATERAL (SELECT w.id, w.user_id, w.name, w.description, w.sport,"
	"   w.workout_text, w.updated_at FROM workouts w"
	"   WHERE w.id = CASE WHEN u.entity_type = 'workout' THEN u.entity_id"
	"                     ELSE s.workout_id END OFFSET 0) w ON true"
	" LEFT JOIN LATERAL (SELECT wl.provider_entity_id FROM workout_sync_links wl"
	"   WHERE wl.provider = u.provider AND wl.entity_type = 'workout'"
	"   AND wl.entity_id = CASE WHEN u.entity_type = 'workout' THEN u.entity_id"
	"                           ELSE s.workout_id END OFFSET 0) wl ON true"
	" LEFT JOIN LATERAL (SELECT sl.provider_entity_id FROM workout_sync_links sl"
	"   WHERE u.entity_type = 'workout_scheduled' AND sl.provider = u.provider"
	"   AND sl.entity_type = 'workout_scheduled' AND sl.entity_id = u.entity_id"
	"   OFFSET 0) sl ON true"
	" LEFT JOIN LATERAL (SELECT t.user_id, t.access_token, t.refresh_token, t.expires_at,"
	"   t.upload_workouts_enabled, t.needs_reconnect FROM provider_tokens t"
	"   WHERE t.user_id = u.user_id AND t.provider = u.provider OFFSET 0) t ON true"
	" ORDER BY u.seq";

/* Postgres array literal of provider names (names are [a-z0-9_-] only). */
static char *text_array(const char *const *items, size_t n)
{
	sbuf b = {0};
	sb_str(&b, "{");
	for (size_t i = 0; i < n; i++)
		sb_elem(&b, items[i]);
	sb_str(&b, "}");
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

static void copy(char *dst, size_t len, const PGresult *r, int row, int col)
{
	snprintf(dst, len, "%s", PQgetvalue(r, row, col));
}

/* strdup of a column, NULL for SQL NULL; sets *oom on failure. */
static char *dup_col(const PGresult *r, int row, int col, int *oom)
{
	char *s;
	if (PQgetisnull(r, row, col))
		return NULL;
	if (!(s = strdup(PQgetvalue(r, row, col))))
		*oom = 1;
	return s;
}

static int is_true(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static wsync_job *job_from_row(const PGresult *r, int i)
{
	wsync_job *j = calloc(1, sizeof *j);
	wsync_entry *e;
	int oom = 0;
	if (!j)
		return NULL;
	e = &j->entry;
	copy(e->id, sizeof e->id, r, i, 0);
	copy(e->user_id, sizeof e->user_id, r, i, 1);
	copy(e->entity_type, sizeof e->entity_type, r, i, 2);
	copy(e->entity_id, sizeof e->entity_id, r, i, 3);
	copy(e->operation, sizeof e->operation, r, i, 4);
	copy(e->provider, sizeof e->provider, r, i, 5);
	e->retry_count = atoi(PQgetvalue(r, i, 6));
	e->attempts = atoi(PQgetvalue(r, i, 7));
	copy(e->lease_token, sizeof e->lease_token, r, i, 8);
	e->provider_entity_id = dup_col(r, i, 9, &oom);
	e->reconcile = is_true(r, i, 10);
	e->seq = atoll(PQgetvalue(r, i, 11));
	j->has_sched = is_true(r, i, 12);
	j->sched_workout_id = dup_col(r, i, 13, &oom);
	j->scheduled_date = dup_col(r, i, 14, &oom);
	j->scheduled_time = dup_col(r, i, 15, &oom);
	j->has_workout = is_true(r, i, 16);
	j->workout_id = dup_col(r, i, 17, &oom);
	j->workout_user_id = dup_col(r, i, 18, &oom);
	j->name = dup_col(r, i, 19, &oom);
	j->description = dup_col(r, i, 20, &oom);
	j->sport = dup_col(r, i, 21, &oom);
	j->workout_text = dup_col(r, i, 22, &oom);
	j->workout_updated_at = PQgetisnull(r, i, 23) ? 0 : atoll(PQgetvalue(r, i, 23));
	j->workout_link = dup_col(r, i, 24, &oom);
	j->sched_link = dup_col(r, i, 25, &oom);
	j->token.found = is_true(r, i, 26);
	j->token.access_token = dup_col(r, i, 27, &oom);
	j->token.refresh_token = dup_col(r, i, 28, &oom);
	j->token.expires_at = PQgetisnull(r, i, 29) ? 0 : atoll(PQgetvalue(r, i, 29));
	j->token.enabled = is_true(r, i, 30);
	j->token.needs_reconnect = is_true(r, i, 31);
	if (oom) {
		wsync_job_free(j);
		return NULL;
	}
	/* The workout whose provider object this entry may create or change. */
	if (!strcmp(e->entity_type, "workout"))
		snprintf(j->key, sizeof j->key, "%s:%s", e->provider, e->entity_id);
	else if (j->sched_workout_id)
		snprintf(j->key, sizeof j->key, "%s:%s", e->provider, j->sched_workout_id);
	return j;
}

void wsync_job_free(wsync_job *j)
{
	if (!j)
		return;
	free(j->entry.provider_entity_id);
	free(j->workout_id);
	free(j->workout_user_id);
	free(j->name);
	free(j->description);
	free(j->sport);
	free(j->workout_text);
	free(j->sched_workout_id);
	free(j->scheduled_date);
	free(j->scheduled_time);
	free(j->workout_link);
	free(j->sched_link);
	wsync_token_clear(&j->token);
	wsync_workout_free(j->structure);
	free(j->res.provider_id);
	free(j->res.workout_link);
	free(j);
}

int wsync_store_claim(PGconn *db, const char *worker, const char *const *providers,
                      size_t n_providers, int limit, int lease_seconds,
                      const char *held_ids, size_t n_held, wsync_job ***out)
{
	char lim[16], lease[16], window[24];
	char *arr = text_array(providers, n_providers);
	const char *params[6] = {worker, arr, lim, lease, held_ids ? held_ids : "{}", window};
	PGresult *r;
	int n;

	*out = NULL;
	if (!arr)
		return -1;
	snprintf(lim, sizeof lim, "%d", limit);
	snprintf(lease, sizeof lease, "%d", lease_seconds);
	/* Held rows are leased (cand skips them) unless a lease ran out in an
	 * outage; rows blocked behind another entry are rare. */
	snprintf(window, sizeof window, "%zu", (size_t)limit + n_held / 4 + 32);
	r = run(db, ST_CLAIM, 6, params);
	free(arr);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return -1;
	}
	n = PQntuples(r);
	if (n && !(*out = calloc((size_t)n, sizeof **out))) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (!((*out)[i] = job_from_row(r, i))) {
			/* Out of memory mid-batch: the claimed rows go back with
			 * their lease (they fall free when it ends). */
			for (int k = 0; k < i; k++)
				wsync_job_free((*out)[k]);
			free(*out);
			*out = NULL;
			PQclear(r);
			return -1;
		}
	PQclear(r);
	return n;
}

/* ids and leases of n jobs as uuid[] / bigint[] literals in a. */
static int id_lease_arrays(arrays *a, wsync_job *const *jobs, size_t n)
{
	arrays_open(a, 2);
	for (size_t i = 0; i < n; i++) {
		sb_elem(&a->col[0], jobs[i]->entry.id);
		sb_elem(&a->col[1], jobs[i]->entry.lease_token);
	}
	return arrays_close(a);
}

int wsync_store_start_calls(PGconn *db, wsync_job *const *jobs, size_t n, int *started)
{
	arrays a;
	PGresult *r = NULL;
	int rc = -1;
	for (size_t i = 0; i < n; i++)
		started[i] = 0;
	if (n == 0)
		return 0;
	if (id_lease_arrays(&a, jobs, n) == 0) {
		const char *p[2] = {a.col[0].s, a.col[1].s};
		r = run(db, ST_START, 2, p);
	}
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
		for (int k = 0; k < PQntuples(r); k++)
			for (size_t i = 0; i < n; i++)
				if (!strcmp(PQgetvalue(r, k, 0), jobs[i]->entry.id))
					started[i] = 1;
		rc = 0;
	}
	PQclear(r);
	arrays_free(&a);
	return rc;
}

/* ---- outcomes -------------------------------------------------------------- */

static const char OUTCOME_SQL[] =
	"UPDATE workout_sync_queue q SET"
	"  processed_at = CASE WHEN o.processed THEN now() END,"
	"  next_retry_at = CASE WHEN o.processed THEN q.next_retry_at"
	"                  ELSE now() + make_interval(secs => o.delay) END,"
	"  retry_count = o.retries, error_type = o.error_type, error_message = o.message,"
	"  attempts = greatest(q.attempts - o.give_back, 0),"
	"  intent_at = CASE WHEN o.clear_intent THEN NULL ELSE q.intent_at END,"
	/* not NULL: a claimed row never re-enters the coalescing index, so a
	 * later enqueue cannot rewrite it */
	"  locked_until = now() - interval '1 second', locked_by = NULL, updated_at = now()"
	" FROM unnest($1::uuid[], $2::bigint[], $3::bool[], $4::bigint[], $5::int[], $6::text[],"
	"             $7::text[], $8::int[], $9::bool[])"
	"   AS o(id, lease, processed, delay, retries, error_type, message, give_back,"
	"        clear_intent)"
	" WHERE q.id = o.id AND q.lease_token = o.lease AND q.processed_at IS NULL";

/* One row per link to set; a later row for the same link wins. */
static const char LINK_SET_SQL[] =
	"INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	"  provider_entity_id)"
	" SELECT DISTINCT ON (l.provider, l.entity_type, l.entity_id)"
	"   l.provider, l.entity_type, l.entity_id, l.user_id, l.pid"
	" FROM unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::text[])"
	"   WITH ORDINALITY AS l(provider, entity_type, entity_id, user_id, pid, ord)"
	" ORDER BY l.provider, l.entity_type, l.entity_id, l.ord DESC"
	" ON CONFLICT (provider, entity_type, entity_id) DO UPDATE SET"
	"   provider_entity_id = EXCLUDED.provider_entity_id, updated_at = now()";

static const char LINK_DROP_SQL[] =
	"DELETE FROM workout_sync_links k USING unnest($1::text[], $2::text[], $3::uuid[])"
	"   AS l(provider, entity_type, entity_id)"
	" WHERE k.provider = l.provider AND k.entity_type = l.entity_type"
	"   AND k.entity_id = l.entity_id";

static const char RESYNC_SQL[] =
	"SELECT wsync_resync_schedules(l.id, l.provider)"
	" FROM unnest($1::uuid[], $2::text[]) AS l(id, provider)";

static const char RECONNECT_SQL[] =
	"UPDATE provider_tokens t SET needs_reconnect = true, updated_at = now()"
	" FROM unnest($1::uuid[], $2::text[]) AS l(user_id, provider)"
	" WHERE t.user_id = l.user_id AND t.provider = l.provider AND NOT t.needs_reconnect";

/* Intents, on the starter's connection, whose commits are asynchronous
 * (wsync_store_prepare): they survive wsyncd dying, which is what they are
 * for.  The same statement as wsync_call_start() (migration 0005), without
 * a function call per batch. */
static const char START_SQL[] =
	"UPDATE workout_sync_queue q"
	"   SET intent_at = now(), attempts = q.attempts + 1,"
	"       last_attempt_at = now(), updated_at = now()"
	"  FROM unnest($1::uuid[], $2::bigint[]) AS i(id, lease)"
	" WHERE q.id = i.id AND q.lease_token = i.lease AND q.processed_at IS NULL"
	" RETURNING q.id::text";

/* Every per-user window in the arrays of 0009, none as the old per-minute
 * argument.  Not prepared, as EXTEND_SQL: each is one function call (its
 * own plans are cached), and against a schema older than 0009 (a rolling
 * upgrade) the grant fails alone, the jobs then take their calls one by
 * one, where a refused PREPARE would keep wsyncd from connecting at all. */
static const char RATE_GRANT_SQL[] =
	"SELECT user_id::text, granted FROM wsync_rate_grant($1,"
	" $2::uuid[], $3::int[], 0, $4::int[], $5::int[], $6::int[], $7::int[])";

/* Read-only (migration 0015): not prepared, like RATE_GRANT_SQL, so a
 * schema without it fails this statement alone. */
static const char RATE_WAIT_SQL[] =
	"SELECT user_id::text, wait_ms, app_wait_ms FROM wsync_rate_wait($1,"
	" $2::uuid[], $3::int[], $4::int[], $5::int[], $6::int[])";

static const char EXTEND_SQL[] =
	"SELECT wsync_lease_extend($1::uuid[], $2::bigint[], $3::int)";

/* ---- prepared statements ---------------------------------------------------- */

/* The hot path's statements, prepared once per connection
 * (wsync_store_prepare): each batch then costs no parse and, in the
 * store's sessions (generic plans), no planning. */
static const struct stmt_def {
	const char *name;
	/* Concatenated (a C string literal has a length limit); each part's
	 * parameters $N become $(N + shift), so that one statement can be
	 * built of two that number theirs from $1. */
	struct {
		const char *sql;
		int shift;
	} part[4];
} STMTS[ST_COUNT] = {
	[ST_CLAIM] = {"wsync_claim", {{CLAIM_PICK_SQL, 0}, {CLAIM_LOAD_SQL, 0}}},
	[ST_START] = {"wsync_start", {{START_SQL, 0}}},
	[ST_OUTCOME] = {"wsync_outcome", {{OUTCOME_SQL, 0}}},
	[ST_LINK_SET] = {"wsync_link_set", {{LINK_SET_SQL, 0}}},
	[ST_LINK_DROP] = {"wsync_link_drop", {{LINK_DROP_SQL, 0}}},
	[ST_RESYNC] = {"wsync_resync", {{RESYNC_SQL, 0}}},
	[ST_RECONNECT] = {"wsync_reconnect", {{RECONNECT_SQL, 0}}},
	/* The common outcome batch (links to set, nothing to drop, re-sync or
	 * flag) in one statement, so one round trip and its own commit: the
	 * links ($10-$14) and the queue rows ($1-$9), as ST_LINK_SET and
	 * ST_OUTCOME in a transaction would write them. */
	[ST_OUTCOME_LINKS] = {"wsync_outcome_links",
	                      {{"WITH l AS (", 0}, {LINK_SET_SQL, 9}, {" RETURNING 1) ", 0},
	                       {OUTCOME_SQL, 0}}},
};

/* The statement of def, its parts joined and renumbered; malloc'ed, or
 * NULL when out of memory.  The store's SQL has no '$' but parameters. */
static char *stmt_text(const struct stmt_def *def)
{
	sbuf b = {0};
	for (size_t i = 0; i < sizeof def->part / sizeof *def->part && def->part[i].sql; i++)
		for (const char *p = def->part[i].sql; *p; p++) {
			char num[16], *end;
			long n;
			if (*p != '$' || p[1] < '1' || p[1] > '9') {
				sb_put(&b, p, 1);
				continue;
			}
			n = strtol(p + 1, &end, 10);
			snprintf(num, sizeof num, "$%ld", n + def->part[i].shift);
			sb_str(&b, num);
			p = end - 1;
		}
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

int wsync_store_prepare(PGconn *db, int flags)
{
	for (int i = 0; i < ST_COUNT; i++) {
		char *sql = stmt_text(&STMTS[i]);
		PGresult *r;
		int ok;
		if (!sql)
			return -1;
		r = PQprepare(db, STMTS[i].name, sql, 0, NULL);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		free(sql);
		if (!ok)
			return -1;
	}
	if (flags) {
		char sql[160];
		PGresult *r;
		int ok;
		snprintf(sql, sizeof sql, "%s%s",
		         flags & WSYNC_STORE_GENERIC_PLANS ? "SET plan_cache_mode = force_generic_plan;"
		                                             "SET enable_seqscan = off; SET jit = off;" : "",
		         flags & WSYNC_STORE_ASYNC_COMMIT ? "SET synchronous_commit = off;" : "");
		r = PQexec(db, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok)
			return -1;
	}
	return 0;
}

static PGresult *run(PGconn *db, enum stmt_id id, int n, const char *const *p)
{
	return PQexecPrepared(db, STMTS[id].name, n, p, NULL, NULL, 0);
}

static int run_ok(PGconn *db, enum stmt_id id, int n, const char *const *p, int tuples)
{
	PGresult *r = run(db, id, n, p);
	int ok = PQresultStatus(r) == (tuples ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
	if (!ok)
		wsync_debug("store: %s: %s", STMTS[id].name, PQerrorMessage(db));
	PQclear(r);
	return ok ? 0 : -1;
}

static void add_outcome(arrays *a, wsync_job *j)
{
	const wsync_outcome *o = &j->outcome;
	utf8_clean(j->res.message);
	sb_elem(&a->col[0], j->entry.id);
	sb_elem(&a->col[1], j->entry.lease_token);
	sb_elem(&a->col[2], o->processed ? "t" : "f");
	sb_int(&a->col[3], (long long)o->delay_s);
	sb_int(&a->col[4], o->retry_count);
	sb_elem(&a->col[5], o->error_type);
	sb_elem(&a->col[6], o->error_type ? j->res.message : NULL);
	/* A deferral returns the attempt its intent counted. */
	sb_int(&a->col[7], j->res.started && !o->uses_attempt ? 1 : 0);
	/* The intent goes with a success, and with an attempt that sent
	 * nothing (deferred by wsync's own limiter, refused before its
	 * request) unless an earlier attempt left it: the next attempt then
	 * does not look up what cannot exist. */
	sb_elem(&a->col[8], (o->processed && !o->error_type) ||
	                    (!j->res.sent && !j->entry.reconcile) ? "t" : "f");
}

static void add_link(arrays *a, const wsync_job *j, const char *type, const char *id,
                     const char *pid)
{
	sb_elem(&a->col[0], j->entry.provider);
	sb_elem(&a->col[1], type);
	sb_elem(&a->col[2], id);
	if (a->n > 3) { /* a link to set: who and what */
		sb_elem(&a->col[3], j->entry.user_id);
		sb_elem(&a->col[4], pid);
	}
}

static int run_arrays(PGconn *db, enum stmt_id id, arrays *a, int tuples)
{
	const char *p[10];
	if (arrays_close(a) < 0)
		return -1;
	for (int i = 0; i < a->n; i++)
		p[i] = a->col[i].s;
	return run_ok(db, id, a->n, p, tuples);
}

/* One outcome batch: the queue rows and what goes with them, as arrays. */
typedef struct outcome_batch {
	arrays q, set, drop, resync, reconnect;
	int n_set, n_drop, n_resync, n_reconnect;
} outcome_batch;

static void batch_collect(outcome_batch *b, wsync_job *const *jobs, size_t n)
{
	memset(b, 0, sizeof *b);
	arrays_open(&b->q, 9);
	arrays_open(&b->set, 5);
	arrays_open(&b->drop, 3);
	arrays_open(&b->resync, 2);
	arrays_open(&b->reconnect, 2);
	for (size_t i = 0; i < n; i++) {
		wsync_job *j = jobs[i];
		const wsync_result *r = &j->res;
		add_outcome(&b->q, j);
		if (r->workout_link && j->sched_workout_id) {
			add_link(&b->set, j, "workout", j->sched_workout_id, r->workout_link);
			b->n_set++;
		}
		if (r->link == LINK_SET) {
			add_link(&b->set, j, j->entry.entity_type, j->entry.entity_id, r->provider_id);
			b->n_set++;
		} else if (r->link == LINK_DROP) {
			add_link(&b->drop, j, j->entry.entity_type, j->entry.entity_id, NULL);
			b->n_drop++;
		}
		if (r->relinked) {
			sb_elem(&b->resync.col[0], j->entry.entity_id);
			sb_elem(&b->resync.col[1], j->entry.provider);
			b->n_resync++;
		}
		if (r->mark_reconnect) {
			sb_elem(&b->reconnect.col[0], j->entry.user_id);
			sb_elem(&b->reconnect.col[1], j->entry.provider);
			b->n_reconnect++;
		}
	}
}

static void batch_free(outcome_batch *b)
{
	arrays_free(&b->q);
	arrays_free(&b->set);
	arrays_free(&b->drop);
	arrays_free(&b->resync);
	arrays_free(&b->reconnect);
}

/* The common batch (links to set, nothing else): one statement, one round
 * trip, its own transaction. */
static int batch_write_one(PGconn *db, outcome_batch *b)
{
	const char *p[14];
	if (arrays_close(&b->q) < 0 || arrays_close(&b->set) < 0)
		return -1;
	for (int i = 0; i < 9; i++)
		p[i] = b->q.col[i].s;
	for (int i = 0; i < 5; i++)
		p[9 + i] = b->set.col[i].s;
	return run_ok(db, ST_OUTCOME_LINKS, 14, p, 0);
}

/* Links dropped, schedules re-synced, tokens flagged: every statement in
 * one transaction, links first (a link is worth keeping even when the
 * lease went to another claim: the object exists on the provider). */
static int batch_write_txn(PGconn *db, outcome_batch *b)
{
	if (exec_ok(db, "BEGIN", 0, NULL, 0) < 0)
		return -1;
	if ((b->n_drop && run_arrays(db, ST_LINK_DROP, &b->drop, 0) < 0) ||
	    (b->n_set && run_arrays(db, ST_LINK_SET, &b->set, 0) < 0) ||
	    (b->n_resync && run_arrays(db, ST_RESYNC, &b->resync, 1) < 0) ||
	    (b->n_reconnect && run_arrays(db, ST_RECONNECT, &b->reconnect, 0) < 0) ||
	    run_arrays(db, ST_OUTCOME, &b->q, 0) < 0 || exec_ok(db, "COMMIT", 0, NULL, 0) < 0) {
		PQclear(PQexec(db, "ROLLBACK"));
		return -1;
	}
	return 0;
}

/* Write the outcomes of n jobs, all or nothing; -1 when refused. */
static int write_txn(PGconn *db, wsync_job *const *jobs, size_t n)
{
	outcome_batch b;
	int rc;
	batch_collect(&b, jobs, n);
	rc = !b.n_drop && !b.n_resync && !b.n_reconnect ? batch_write_one(db, &b)
	                                                 : batch_write_txn(db, &b);
	batch_free(&b);
	return rc;
}

int wsync_store_write_outcomes(PGconn *db, wsync_job *const *jobs, size_t n)
{
	if (n == 0 || write_txn(db, jobs, n) == 0)
		return 0;
	if (PQstatus(db) != CONNECTION_OK)
		return -1;
	/* The database is there but refused the batch: one bad row must not
	 * hold back the others.  Write them one by one; a row refused even
	 * alone gets a plain message (its error text was the trouble). */
	wsync_warn("store: a batch of %zu outcomes was refused (%.*s); writing them one by one",
	           n, (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
	for (size_t i = 0; i < n; i++) {
		if (write_txn(db, &jobs[i], 1) == 0)
			continue;
		if (PQstatus(db) != CONNECTION_OK)
			return -1;
		snprintf(jobs[i]->res.message, sizeof jobs[i]->res.message,
		         "the outcome's message could not be stored");
		if (write_txn(db, &jobs[i], 1) < 0) {
			wsync_error("store: entry %s: outcome refused: %.*s", jobs[i]->entry.id,
			            (int)strcspn(PQerrorMessage(db), "\n"), PQerrorMessage(db));
			if (PQstatus(db) != CONNECTION_OK)
				return -1;
		}
	}
	return 0;
}

/* ---- rate limits ------------------------------------------------------------- */

/* The limiter's windows as two int[] columns each, app then user, from
 * column `at`: what wsync_rate_grant() and wsync_rate_wait() take. */
static void add_windows(arrays *a, int at, const wsync_rate_window *user, int n_user,
                        const wsync_rate_window *app, int n_app)
{
	for (int i = 0; i < n_app; i++) {
		sb_int(&a->col[at], app[i].limit);
		sb_int(&a->col[at + 1], app[i].seconds);
	}
	for (int i = 0; i < n_user; i++) {
		sb_int(&a->col[at + 2], user[i].limit);
		sb_int(&a->col[at + 3], user[i].seconds);
	}
}

int wsync_store_rate_grant(PGconn *db, const char *provider, wsync_job *const *jobs, size_t n,
                           const wsync_rate_window *user, int n_user,
                           const wsync_rate_window *app, int n_app)
{
	arrays a;
	PGresult *r = NULL;
	int rc = -1;
	if (n == 0)
		return 0;
	arrays_open(&a, 6);
	for (size_t i = 0; i < n; i++) {
		sb_elem(&a.col[0], jobs[i]->entry.user_id);
		sb_int(&a.col[1], 1);
	}
	add_windows(&a, 2, user, n_user, app, n_app);
	if (arrays_close(&a) == 0) {
		const char *p[7] = {provider, a.col[0].s, a.col[1].s, a.col[2].s, a.col[3].s,
		                    a.col[4].s, a.col[5].s};
		r = PQexecParams(db, RATE_GRANT_SQL, 7, NULL, p, NULL, NULL, 0);
	}
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
		/* Hand each user's grant out to its jobs in queue order. */
		for (int k = 0; k < PQntuples(r); k++) {
			const char *user = PQgetvalue(r, k, 0);
			int left = atoi(PQgetvalue(r, k, 1));
			for (size_t i = 0; i < n && left > 0; i++)
				if (!strcmp(jobs[i]->entry.user_id, user)) {
					jobs[i]->rate_budget = 1;
					left--;
				}
		}
		rc = 0;
	}
	PQclear(r);
	arrays_free(&a);
	return rc;
}

int wsync_store_rate_wait(PGconn *db, const char *provider, wsync_job *const *jobs, size_t n,
                          const wsync_rate_window *user, int n_user,
                          const wsync_rate_window *app, int n_app, int64_t *wait_ms,
                          int64_t *app_wait_ms)
{
	arrays a;
	PGresult *r = NULL;
	int rc = -1;
	for (size_t i = 0; i < n; i++)
		wait_ms[i] = app_wait_ms[i] = -1;
	if (n == 0)
		return 0;
	arrays_open(&a, 5);
	for (size_t i = 0; i < n; i++)
		sb_elem(&a.col[0], jobs[i]->entry.user_id);
	add_windows(&a, 1, user, n_user, app, n_app);
	if (arrays_close(&a) == 0) {
		const char *p[6] = {provider, a.col[0].s, a.col[1].s, a.col[2].s, a.col[3].s,
		                    a.col[4].s};
		r = PQexecParams(db, RATE_WAIT_SQL, 6, NULL, p, NULL, NULL, 0);
	}
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
		for (int k = 0; k < PQntuples(r); k++) {
			const char *u = PQgetvalue(r, k, 0);
			long long w = strtoll(PQgetvalue(r, k, 1), NULL, 10);
			long long app = strtoll(PQgetvalue(r, k, 2), NULL, 10);
			for (size_t i = 0; i < n; i++)
				if (!strcmp(jobs[i]->entry.user_id, u)) {
					wait_ms[i] = w;
					app_wait_ms[i] = app;
				}
		}
		rc = 0;
	}
	PQclear(r);
	arrays_free(&a);
	return rc;
}

/* ---- leases ------------------------------------------------------------------ */

int wsync_store_release(PGconn *db, wsync_job *const *jobs, size_t n)
{
	arrays a;
	int rc = -1;
	if (n == 0)
		return 0;
	if (id_lease_arrays(&a, jobs, n) == 0) {
		const char *p[2] = {a.col[0].s, a.col[1].s};
		rc = exec_count(db,
			"UPDATE workout_sync_queue q SET locked_until = now() - interval '1 second',"
			"  locked_by = NULL, updated_at = now()"
			" FROM unnest($1::uuid[], $2::bigint[]) AS l(id, lease)"
			" WHERE q.id = l.id AND q.lease_token = l.lease AND q.processed_at IS NULL",
			2, p);
	}
	arrays_free(&a);
	return rc;
}

int wsync_store_give_back(PGconn *db, const char *worker, const char *held_ids)
{
	const char *p[2] = {worker, held_ids ? held_ids : "{}"};
	return exec_count(db,
		"UPDATE workout_sync_queue SET locked_until = now() - interval '1 second',"
		"  locked_by = NULL, updated_at = now()"
		" WHERE locked_by = $1 AND processed_at IS NULL AND id <> ALL($2::uuid[])", 2, p);
}

int wsync_store_extend_leases(PGconn *db, const char *ids, const char *leases,
                              int lease_seconds)
{
	char secs[16];
	const char *p[3] = {ids, leases, secs};
	PGresult *r;
	int rc = -1;
	snprintf(secs, sizeof secs, "%d", lease_seconds);
	r = PQexecParams(db, EXTEND_SQL, 3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

long wsync_store_next_due(PGconn *db)
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

int wsync_store_register_provider(PGconn *db, const char *name, const char *plugin,
                                  int enabled)
{
	const char *p[3] = {name, plugin, enabled ? "t" : "f"};
	return exec_count(db,
		"INSERT INTO sync_providers (name, plugin, enabled) VALUES ($1, $2, $3::bool)"
		" ON CONFLICT (name) DO UPDATE SET plugin = EXCLUDED.plugin,"
		"   enabled = EXCLUDED.enabled, updated_at = now()", 3, p) < 0 ? -1 : 0;
}

int wsync_store_quarantine(PGconn *db, const char *node, const char *provider,
                           const char *reason)
{
	const char *p[3] = {node, provider, reason};
	PGresult *r = PQexecParams(db, "SELECT wsync_provider_quarantine($1, $2, $3)", 3, NULL, p,
	                           NULL, NULL, 0);
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
	PQclear(r);
	return rc;
}

int wsync_store_quarantine_clear(PGconn *db, const char *node)
{
	return exec_count(db, "UPDATE sync_provider_nodes SET quarantined_at = NULL,"
	                      " quarantine_reason = NULL WHERE node = $1"
	                      " AND quarantined_at IS NOT NULL", 1, &node);
}

int wsync_store_quarantine_lifted(PGconn *db, const char *node, const char *provider)
{
	const char *p[2] = {node, provider};
	PGresult *r = PQexecParams(db, "SELECT quarantined_at IS NULL FROM sync_provider_nodes"
	                               " WHERE node = $1 AND provider = $2", 2, NULL, p, NULL,
	                           NULL, 0);
	int rc = PQresultStatus(r) != PGRES_TUPLES_OK ? -1
	         : PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return rc;
}

int wsync_store_lease_holders(PGconn *db, const char *host_prefix, char ***holders)
{
	const char *p[1] = {host_prefix};
	PGresult *r = PQexecParams(db,
		"SELECT DISTINCT locked_by FROM workout_sync_queue"
		" WHERE processed_at IS NULL AND locked_until > now()"
		"   AND starts_with(locked_by, $1)", 1, NULL, p, NULL, NULL, 0);
	int n = -1;
	*holders = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK &&
	    (*holders = calloc((size_t)PQntuples(r) + 1, sizeof **holders))) {
		for (n = 0; n < PQntuples(r); n++)
			if (!((*holders)[n] = strdup(PQgetvalue(r, n, 0))))
				break;
	}
	PQclear(r);
	return n;
}

int wsync_store_release_holder(PGconn *db, const char *holder)
{
	return exec_count(db,
		"UPDATE workout_sync_queue SET locked_until = now() - interval '1 second',"
		"  locked_by = NULL, updated_at = now()"
		" WHERE locked_by = $1 AND processed_at IS NULL", 1, &holder);
}
