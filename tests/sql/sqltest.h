/*
 * sqltest.h -- fixtures shared by the SQL API tests: providers in every
 * state, one user, and short queries over the queue.
 *
 * Providers for user U:
 *   wahoo, garmin  registered, enabled, connected with uploads on
 *   tp             registered, enabled, user not connected (no token row)
 *   coros          registered but disabled in sync_providers (token row)
 *   suunto         connected with upload_workouts_enabled = false
 * So "every enabled provider" means exactly wahoo and garmin.
 */
#ifndef WSYNC_SQLTEST_H
#define WSYNC_SQLTEST_H

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>

#define U "11111111-1111-1111-1111-111111111111"

static inline void sqlt_setup(PGconn *db)
{
	t_migrate(db);
	t_exec(db,
		"INSERT INTO sync_providers (name, plugin, enabled) VALUES"
		" ('wahoo', 'wahoo', true), ('garmin', 'garmin', true), ('tp', 'trainingpeaks', true),"
		" ('coros', 'coros', false), ('suunto', 'suunto', true)", 0, NULL);
	t_exec(db,
		"INSERT INTO provider_tokens (user_id, provider, access_token,"
		" upload_workouts_enabled) VALUES"
		" ('" U "', 'wahoo', 'x', true), ('" U "', 'garmin', 'x', true),"
		" ('" U "', 'coros', 'x', true), ('" U "', 'suunto', 'x', false)", 0, NULL);
}

/* Pending entries of an entity (any provider, claimed or not). */
static inline long long sqlt_pending(PGconn *db, const char *id)
{
	const char *p[1] = {id};
	return t_query_int(db, "SELECT count(*) FROM workout_sync_queue"
	                       " WHERE entity_id = $1::uuid AND processed_at IS NULL", 1, p);
}

/* Operations of an entity's pending entries on one provider, oldest first,
 * comma-separated ("" when none).  Caller frees. */
static inline char *sqlt_ops(PGconn *db, const char *id, const char *provider)
{
	const char *p[2] = {id, provider};
	return t_query_str(db, "SELECT coalesce(string_agg(operation, ',' ORDER BY seq), '')"
	                       " FROM workout_sync_queue WHERE entity_id = $1::uuid"
	                       " AND provider = $2 AND processed_at IS NULL", 2, p);
}

#define T_OPS(db, id, provider, expected)                      \
	do {                                                   \
		char *ops_ = sqlt_ops(db, id, provider);       \
		T_EQ_STR(ops_, expected);                      \
		free(ops_);                                    \
	} while (0)

/* What a worker does after syncing: every pending entry of the entity
 * processed, links written for `linked` providers ("" for none). */
static inline void sqlt_sync_done(PGconn *db, const char *type, const char *id,
                                  const char *linked_csv)
{
	const char *p[3] = {type, id, linked_csv};
	t_exec(db, "UPDATE workout_sync_queue SET processed_at = now(),"
	           " locked_until = now() - interval '1 second', last_attempt_at = now()"
	           " WHERE entity_id = $1::uuid AND processed_at IS NULL", 1, p + 1);
	t_exec(db, "INSERT INTO workout_sync_links (provider, entity_type, entity_id, user_id,"
	           " provider_entity_id)"
	           " SELECT name, $1, $2::uuid, '" U "', name || '-' || left($2::text, 8)"
	           " FROM unnest(string_to_array($3, ',')) AS name WHERE name <> ''"
	           " ON CONFLICT DO NOTHING", 3, p);
}

/* SQLSTATE of running sql ("" when it succeeded); caller frees. */
static inline char *sqlt_sqlstate(PGconn *db, const char *sql, int n, const char *const *p,
                                  char *msg, size_t msglen)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
	const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	char *out = strdup(s ? s : "");
	if (msg)
		snprintf(msg, msglen, "%s", m ? m : "");
	PQclear(r);
	return out;
}

/* The notifications `l` (which LISTENs on wsync_queue) receives within
 * `ms` milliseconds: their payloads, comma-separated in arrival order, into
 * out (truncated to len); returns how many. */
static inline int sqlt_notifies(PGconn *l, int ms, char *out, size_t len)
{
	size_t off = 0;
	int n = 0;
	if (len)
		out[0] = '\0';
	for (int waited = 0; waited < ms; waited += 50) {
		fd_set fds;
		struct timeval tv = {0, 50000};
		PGnotify *nt;
		FD_ZERO(&fds);
		FD_SET(PQsocket(l), &fds);
		select(PQsocket(l) + 1, &fds, NULL, NULL, &tv);
		PQconsumeInput(l);
		while ((nt = PQnotifies(l))) {
			T_EQ_STR(nt->relname, "wsync_queue");
			if (off < len)
				off += (size_t)snprintf(out + off, len - off, "%s%s", n ? "," : "",
				                        nt->extra);
			n++;
			PQfreemem(nt);
		}
	}
	return n;
}

#endif
