/*
 * dbpool.h -- a few database connections shared by many provider calls.
 *
 * A provider call needs the database only now and then: the cluster-wide
 * rate limiter (one statement) and a token refresh.  The engine runs many
 * calls at once on few connections, so a call borrows a connection for one
 * of those steps and gives it back at once.  Connections open lazily, up to
 * `max`; a broken one is closed on release and reopened on demand.
 * Thread-safe.
 */
#ifndef WSYNC_HOST_DBPOOL_H
#define WSYNC_HOST_DBPOOL_H

#include <libpq-fe.h>

typedef struct wsync_dbpool wsync_dbpool;

/* PQconnectdb(conninfo) that names the session in pg_stat_activity and the
 * server's log as `application` (fallback_application_name: one set in
 * conninfo wins).  Every wsyncd connection says what it is for. */
PGconn *wsync_db_connect(const char *conninfo, const char *application);

/* conninfo is copied.  Returns NULL when out of memory. */
wsync_dbpool *wsync_dbpool_new(const char *conninfo, int max);
/* Closes every connection; none may be borrowed any more. */
void wsync_dbpool_free(wsync_dbpool *pool);

/* A connection (waits while all `max` are borrowed), or NULL when a new one
 * cannot be opened: the caller then does without the database.  Give it
 * back with wsync_dbpool_release(), in autocommit state. */
PGconn *wsync_dbpool_acquire(wsync_dbpool *pool);
void wsync_dbpool_release(wsync_dbpool *pool, PGconn *db);

#endif
