/*
 * oauth.h -- OAuth2 token refresh for a (user, provider), in the core.
 *
 * Refreshes are serialized per (user, provider) across every worker and
 * node with a PostgreSQL advisory lock, and the new token pair is committed
 * to provider_tokens BEFORE it is used (Wahoo rotates refresh tokens and
 * caps live tokens).  A refresh that fails for good sets
 * provider_tokens.needs_reconnect and is an auth_error.
 */
#ifndef WSYNC_OAUTH_H
#define WSYNC_OAUTH_H

#include "common/config.h"
#include "http.h"

#include <libpq-fe.h>
#include <stdint.h>

typedef struct wsync_token {
	char *access_token;    /* NULL when none stored */
	char *refresh_token;
	int64_t expires_at;    /* unix seconds; 0 = unknown (never expires) */
	int enabled;           /* upload_workouts_enabled */
	int needs_reconnect;
	int found;             /* a provider_tokens row exists */
} wsync_token;

void wsync_token_clear(wsync_token *t);

/* Set provider_tokens.needs_reconnect of (user_id, provider), unless it is
 * set already (autocommit, or the caller's transaction).  Every final
 * auth_error of an entry calls it: the user must connect the provider
 * again.  Returns 0 (also when no row exists) or -1 (message in err). */
int wsync_token_mark_reconnect(PGconn *db, const char *user_id, const char *provider,
                               char *err, size_t errlen);

/* Read the row of (user_id, provider).  Returns 0 (t->found tells whether a
 * row exists) or -1 on a database error (message in err). */
int wsync_token_load(PGconn *db, const char *user_id, const char *provider,
                     wsync_token *t, char *err, size_t errlen);

/* The parsers of the token endpoint's answers, used by wsync_oauth_refresh;
 * public to the core for tests and the fuzz target (tests/fuzz). */

/* A 2xx answer: {"access_token": ..., "refresh_token": ..., "expires_in":
 * ...}.  Strings are malloc'ed and owned by the struct (free them with
 * wsync_token_answer_clear, which also wipes them). */
typedef struct wsync_token_answer {
	char *access_token;
	char *refresh_token;    /* NULL: keep the stored one */
	int64_t expires_in;     /* 0: unknown; else 1 .. 10 years in seconds */
} wsync_token_answer;

/* Parse `len` bytes of `body` (need not be NUL-terminated).  Returns 0 with
 * *a filled when the answer is a JSON object with a usable access_token
 * (printable ASCII, no blank) and, if present and non-empty, a usable
 * refresh_token; else -1 with *a zeroed. */
int wsync_oauth_parse_answer(const char *body, size_t len, wsync_token_answer *a);
void wsync_token_answer_clear(wsync_token_answer *a);

/* The OAuth "error" code of a refusal ("invalid_grant") into out when it is
 * a plain code of at most 64 bytes of [A-Za-z0-9_.-] that fits; "" else. */
void wsync_oauth_error_code(const char *body, size_t len, char *out, size_t outlen);

/*
 * Refresh the token of (user_id, p->name).  `stale_access` is the access
 * token the caller saw fail or expire: if, once the advisory lock is held,
 * the stored token differs (and has not expired), another worker already
 * refreshed and the stored one is returned without a call.  On success fills *t with the new token
 * and returns WSYNC_OK; otherwise returns WSYNC_E_AUTH (refresh refused
 * with 400/401, or no refresh token: needs_reconnect set; no row; no
 * token_url configured: the caller sets needs_reconnect, as for every
 * final auth_error), WSYNC_E_PROVIDER (token endpoint
 * unreachable, 5xx, other status or an answer without a usable
 * access_token: try again later) or WSYNC_E_UNEXPECTED (database; the
 * endpoint refused wsync's client with invalid_client/unauthorized_client,
 * which is the operator's to fix and flags no user), with a message that
 * never contains a token or secret.  `stale_access` may point into *t; on
 * failure *t is left as it was.  `db` must not be inside a transaction.
 */
int32_t wsync_oauth_refresh(PGconn *db, wsync_http_client *http,
                            const wsync_provider_config *p, const char *user_id,
                            const char *stale_access, wsync_token *t,
                            char *msg, size_t msglen, int64_t now);

#endif
