/*
 * wsync/client.h -- the C client API of libwsync, for applications.
 *
 * Everything here is a thin layer over the SQL API of migrations/0002_api.sql
 * (wsync_enqueue, wsync_provider_enabled, wsync_sync_status, wsync_retry,
 * wsync_retry_failed); an application in another language calls those SQL
 * functions directly and gets the same behaviour.  docs/applications.md
 * explains the rules (what the triggers enqueue, coalescing, status).
 *
 * Link with -lwsync (it brings libpq).  C99; the header includes no libpq
 * header: a PGconn is passed as `struct pg_conn *`, which is what libpq's
 * `PGconn` typedef names.
 *
 * ERRORS
 *   Every function that can fail returns 0 on success or a negative
 *   WSYNC_CLIENT_E* code.  wsync_client_errmsg() then describes the failure
 *   in one line.  WSYNC_CLIENT_EINVAL means the caller passed something
 *   wrong (malformed UUID, unknown entity type, operation or provider):
 *   retrying the same call cannot succeed.
 *
 * THREADS
 *   A wsync_client is not thread-safe (neither is a PGconn): use one per
 *   thread, or serialize calls.  Different clients may be used concurrently.
 *
 * OWNERSHIP (every returned pointer)
 *   - wsync_client_connect() / wsync_client_wrap(): the caller owns the
 *     client and releases it with wsync_client_close().
 *   - wsync_client_errmsg(): owned by the client; valid until the next call
 *     on that client or its close.  Never NULL.
 *   - wsync_sync_state_name(): a static string; never free it.
 *   - wsync_client_get_sync_status(): *out is owned by the caller; free it
 *     with wsync_sync_status_free() (which also frees its strings).
 *   - wsync_client_get_all_sync_statuses(): *out is owned by the caller; free
 *     it with wsync_sync_status_list_free() (which frees every item and
 *     string).  Do not free items of a list one by one.
 *   - Every `char *` inside a status is owned by its status object.
 *   - Input strings are only read during the call; the client keeps no
 *     pointer to them.
 */
#ifndef WSYNC_CLIENT_H
#define WSYNC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pg_conn; /* libpq's PGconn */

/* Marks what libwsync.so exports.  The library is built with
 * -fvisibility=hidden, so a function without this mark stays private:
 * tests/lib/test_exports.sh fails when the exports and this header differ. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define WSYNC_API __attribute__((visibility("default")))
#else
#define WSYNC_API
#endif

typedef struct wsync_client wsync_client;

/* Return codes. */
enum {
	WSYNC_CLIENT_OK = 0,
	WSYNC_CLIENT_EINVAL = -1,  /* bad argument: fix the call */
	WSYNC_CLIENT_EDB = -2,     /* database error (connection lost, SQL error) */
	WSYNC_CLIENT_ENOMEM = -3,  /* out of memory */
	WSYNC_CLIENT_ENOTFOUND = -4, /* no such queue entry (retry) */
	WSYNC_CLIENT_ESTATE = -5   /* entry not in a state that allows this (retry) */
};

/* Suggested size of the errbuf given to wsync_client_connect(). */
#define WSYNC_CLIENT_ERRBUF_SIZE 256

/*
 * Open a new database connection.  conninfo: a libpq conninfo string or
 * postgresql:// URI (PG* environment variables apply; "" = libpq defaults).
 * Returns the client, or NULL with a message in errbuf (errlen bytes,
 * always NUL-terminated when errlen > 0; errbuf may be NULL).  The caller
 * owns the client: wsync_client_close() it.
 */
WSYNC_API wsync_client *wsync_client_connect(const char *conninfo, char *errbuf, size_t errlen);

/*
 * Use an application's existing libpq connection, so that enqueues join the
 * application's own open transaction (the change and its queue entry then
 * commit or roll back together).  The connection stays the application's:
 * wsync_client_close() does not close it, and it must outlive the client.
 * Returns NULL only when out of memory or conn is NULL.
 */
WSYNC_API wsync_client *wsync_client_wrap(struct pg_conn *conn);

/* Close the client (and its connection, if wsync_client_connect() opened
 * it).  NULL is ignored. */
WSYNC_API void wsync_client_close(wsync_client *client);

/* The connection the client uses (owned by the client or, for a wrapped
 * client, by the application).  For LISTEN, transactions, etc. */
WSYNC_API struct pg_conn *wsync_client_conn(wsync_client *client);

/* One line describing the last failure on this client ("" after success).
 * Owned by the client: valid until its next call or close. */
WSYNC_API const char *wsync_client_errmsg(const wsync_client *client);

/*
 * Enqueue `operation` ("create", "update" or "delete") of an entity
 * (entity_type "workout" or "workout_scheduled"; ids in canonical UUID form
 * 8-4-4-4-12 hex digits).  provider NULL: every provider enabled for the
 * user (the seed's router); otherwise that provider only (nothing is queued
 * when it is not enabled for the user).  Coalescing applies (see
 * docs/applications.md): a delete of something no provider ever had only
 * removes its pending create.
 *
 * *written (may be NULL) receives the number of queue rows inserted,
 * folded into or cancelled (0: nothing needed doing).  Runs in the
 * connection's current transaction if one is open (autocommit otherwise).
 */
WSYNC_API int wsync_client_enqueue(wsync_client *client, const char *user_id,
                                   const char *entity_type, const char *entity_id,
                                   const char *operation, const char *provider, int *written);

/*
 * *enabled = the provider is registered and enabled, and the user has a
 * provider_tokens row with upload_workouts_enabled.  Unknown provider:
 * *enabled = false, return 0 (a provider may be registered later).
 */
WSYNC_API int wsync_client_is_provider_enabled(wsync_client *client, const char *user_id,
                                               const char *provider, bool *enabled);

/*
 * Sync state of one entity on one provider.  The "current entry" is the
 * oldest unprocessed queue entry of (entity, provider), or when none is
 * pending, the newest processed one.
 */
typedef enum wsync_sync_state {
	/* Nothing pending, nothing failed, no link: the provider has never had
	 * the object (or it was deleted there). */
	WSYNC_STATE_NEVER_SYNCED = 0,
	/* The current entry is unprocessed and has not failed yet. */
	WSYNC_STATE_PENDING = 1,
	/* The current entry is unprocessed and its last attempt failed; the
	 * engine tries again at next_retry_at.  error_type says why. */
	WSYNC_STATE_RETRYING = 2,
	/* Nothing pending, the newest entry succeeded, a link exists. */
	WSYNC_STATE_SYNCED = 3,
	/* Nothing pending and the newest processed entry failed for good
	 * (auth_error, invalid_workout, invalid_request, record_not_found, or
	 * retries used up).  Re-queue with wsync_client_retry*(). */
	WSYNC_STATE_FAILED = 4
} wsync_sync_state;

/* "never_synced", "pending", "retrying", "synced", "failed"; "unknown" for
 * any other value.  Static string. */
WSYNC_API const char *wsync_sync_state_name(wsync_sync_state state);

typedef struct wsync_sync_status {
	char *provider;            /* provider name; never NULL */
	wsync_sync_state state;
	/* The seed's booleans, derived from state:
	 *   synced  = state == SYNCED
	 *   pending = state == PENDING || state == RETRYING
	 *   failed  = state == FAILED */
	bool synced;
	bool pending;
	bool failed;
	/* wsync_provider_enabled() for the entity's user (taken from the entity
	 * row, else its newest queue entry, else its link; false if unknown). */
	bool enabled;
	/* Error class and message of the current entry when state is RETRYING
	 * or FAILED (record_not_found, rate_limit, auth_error, provider_error,
	 * unexpected_error, invalid_workout, invalid_request); NULL otherwise. */
	char *error_type;
	char *error_message;
	/* Newest attempt over all entries of this entity and provider, ISO-8601
	 * UTC ("2026-11-28T17:00:00Z"); NULL when never attempted. */
	char *last_attempt;
	/* When the engine will try the current entry, ISO-8601 UTC; NULL when
	 * nothing is pending. */
	char *next_retry_at;
	/* retry_count of the current entry (0 when there is none). */
	int retry_count;
	/* The provider's id of the object (from workout_sync_links); NULL when
	 * the provider has none.  May be set while state is FAILED (an older
	 * version of the entity is on the provider). */
	char *provider_entity_id;
	/* Operation and queue id of the current entry; NULL when none. */
	char *operation;
	char *queue_id;
	/* The entity's user, or NULL when it cannot be told. */
	char *user_id;
} wsync_sync_status;

typedef struct wsync_sync_status_list {
	size_t count;
	wsync_sync_status *items;  /* count items, in provider name order */
} wsync_sync_status_list;

/*
 * Status of one entity on one provider.  Unknown entity type or provider:
 * WSYNC_CLIENT_EINVAL.  An entity wsync has never heard of is not an error:
 * its state is WSYNC_STATE_NEVER_SYNCED.  On success *out is a new object
 * owned by the caller (wsync_sync_status_free); on failure *out = NULL.
 */
WSYNC_API int wsync_client_get_sync_status(wsync_client *client, const char *entity_type,
                                           const char *entity_id, const char *provider,
                                           wsync_sync_status **out);

/*
 * Status of one entity on every registered provider (one item per row of
 * sync_providers, whether or not the user enabled it: see `enabled`).
 * On success *out is a new list owned by the caller
 * (wsync_sync_status_list_free); on failure *out = NULL.
 */
WSYNC_API int wsync_client_get_all_sync_statuses(wsync_client *client, const char *entity_type,
                                                 const char *entity_id,
                                                 wsync_sync_status_list **out);

/* Free a status from wsync_client_get_sync_status().  NULL is ignored. */
WSYNC_API void wsync_sync_status_free(wsync_sync_status *status);
/* Free a list and all its items.  NULL is ignored. */
WSYNC_API void wsync_sync_status_list_free(wsync_sync_status_list *list);

/*
 * Re-queue one permanently failed entry (queue_id): a fresh entry is
 * enqueued for its entity, provider and operation through the usual rules;
 * the failed row stays as history.  *written (may be NULL) = queue rows
 * written (0 when the provider is not enabled for the user).
 * WSYNC_CLIENT_ENOTFOUND: no such entry; WSYNC_CLIENT_ESTATE: it is still
 * pending or it succeeded.
 */
WSYNC_API int wsync_client_retry(wsync_client *client, const char *queue_id, int *written);

/*
 * Re-queue every current permanent failure of a user on a provider (after
 * the user reconnected).  Failures already superseded by a newer entry, and
 * record_not_found ones, are skipped.  *written as above.
 */
WSYNC_API int wsync_client_retry_failed(wsync_client *client, const char *user_id,
                                        const char *provider, int *written);

/* 1 if s is a UUID in canonical 8-4-4-4-12 hex form, else 0. */
WSYNC_API int wsync_uuid_valid(const char *s);

#ifdef __cplusplus
}
#endif

#endif
