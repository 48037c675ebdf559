/*
 * oauth.c -- OAuth2 refresh-token grant for a (user, provider).
 *
 * One refresh at a time per (user, provider) across every worker and node:
 * the refresh runs inside a transaction holding
 *
 *   pg_advisory_xact_lock(hashtext('wsync-oauth'),
 *                         hashtext(user_id || '/' || provider))
 *
 * (the two-int4 form: the first key keeps wsync's OAuth locks apart from any
 * other advisory lock; a hash collision between two users only makes them
 * wait for each other, it never mixes their tokens up) and the row locked
 * FOR UPDATE.  Whoever gets the lock second finds the new token already
 * stored and returns it without calling the provider: Wahoo revokes the old
 * pair and caps live tokens, so a second refresh would do harm.  The new pair
 * is committed before it is returned, so it is never used unstored.
 *
 * Nothing here logs or formats a token, a refresh token or the client
 * secret; messages name the provider, the user and the HTTP status only.
 */
#include "oauth.h"

#include "common/log.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef WSYNC_VERSION
#define WSYNC_VERSION "0"
#endif

/* A token expiring within this many seconds counts as expired already: the
 * call it is fetched for must still find it valid at the provider. */
#define EXPIRY_SKEW_S 30
/* expires_in beyond this is nonsense; it is capped (ten years). */
#define EXPIRES_IN_MAX_S (10LL * 365 * 86400)
/* How long to wait for another worker's refresh beyond its HTTP timeouts. */
#define LOCK_SLACK_MS 15000L

static void scrub_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void wsync_token_clear(wsync_token *t)
{
	if (!t)
		return;
	scrub_free(t->access_token);
	scrub_free(t->refresh_token);
	memset(t, 0, sizeof *t);
}

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;
	if (!msg || msglen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------------------
 * Database helpers.  Every value goes in as a parameter.
 */

static PGresult *db_exec(PGconn *db, const char *sql, int n,
                         const char *const *params)
{
	return PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
}

static int db_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* The primary message only: DETAIL lines can quote row values. */
static void db_error(PGconn *db, const PGresult *r, const char *what,
                     char *msg, size_t msglen)
{
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[256];
	size_t n;

	if (!primary) {
		snprintf(line, sizeof line, "%s", PQerrorMessage(db));
		primary = line;
	}
	n = strcspn(primary, "\n");
	set_msg(msg, msglen, "%s: %.*s", what, (int)(n > 200 ? 200 : n), primary);
}

/* Run a statement that returns nothing we need; 0 or -1 (message set). */
static int db_run(PGconn *db, const char *sql, int n, const char *const *params,
                  const char *what, char *msg, size_t msglen)
{
	PGresult *r = db_exec(db, sql, n, params);
	int ok = db_ok(r);
	if (!ok)
		db_error(db, r, what, msg, msglen);
	PQclear(r);
	return ok ? 0 : -1;
}

static void db_rollback(PGconn *db)
{
	PQclear(PQexec(db, "ROLLBACK"));
}

static int db_commit(PGconn *db, char *msg, size_t msglen)
{
	PGresult *r = PQexec(db, "COMMIT");
	/* COMMIT of a failed transaction "succeeds" as ROLLBACK. */
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK &&
	         strcmp(PQcmdStatus(r), "COMMIT") == 0;
	if (!ok)
		db_error(db, r, "cannot commit the token update", msg, msglen);
	PQclear(r);
	return ok ? 0 : -1;
}

static char *dup_value(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static int value_is_true(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

/* Columns: access_token, refresh_token, expires_at (epoch), enabled,
 * needs_reconnect. */
static const char token_columns[] =
	"access_token, refresh_token, "
	"floor(extract(epoch FROM expires_at))::bigint, "
	"upload_workouts_enabled, needs_reconnect";

static int token_from_row(const PGresult *r, wsync_token *t)
{
	memset(t, 0, sizeof *t);
	t->found = 1;
	t->access_token = dup_value(r, 0, 0);
	t->refresh_token = dup_value(r, 0, 1);
	t->expires_at = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	t->enabled = value_is_true(r, 0, 3);
	t->needs_reconnect = value_is_true(r, 0, 4);
	if ((!PQgetisnull(r, 0, 0) && !t->access_token) ||
	    (!PQgetisnull(r, 0, 1) && !t->refresh_token)) {
		wsync_token_clear(t);
		return -1;
	}
	return 0;
}

/* SELECT the row, with `suffix` (e.g. " FOR UPDATE"). */
static int token_select(PGconn *db, const char *user_id, const char *provider,
                        const char *suffix, wsync_token *t, char *err,
                        size_t errlen)
{
	const char *params[2] = {user_id, provider};
	char sql[512];
	PGresult *r;
	int rc = 0;

	snprintf(sql, sizeof sql,
	         "SELECT %s FROM provider_tokens WHERE user_id = $1 AND provider = $2%s",
	         token_columns, suffix);
	r = db_exec(db, sql, 2, params);
	memset(t, 0, sizeof *t);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_error(db, r, "cannot read provider_tokens", err, errlen);
		rc = -1;
	} else if (PQntuples(r) == 1 && token_from_row(r, t) < 0) {
		set_msg(err, errlen, "out of memory reading provider_tokens");
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int wsync_token_load(PGconn *db, const char *user_id, const char *provider,
                     wsync_token *t, char *err, size_t errlen)
{
	if (!db || !user_id || !provider || !t) {
		set_msg(err, errlen, "wsync_token_load: missing argument");
		return -1;
	}
	return token_select(db, user_id, provider, "", t, err, errlen);
}

int wsync_token_mark_reconnect(PGconn *db, const char *user_id, const char *provider,
                               char *err, size_t errlen)
{
	const char *params[2] = {user_id, provider};
	if (!db || !user_id || !provider) {
		set_msg(err, errlen, "wsync_token_mark_reconnect: missing argument");
		return -1;
	}
	return db_run(db,
	              "UPDATE provider_tokens SET needs_reconnect = true, updated_at = now() "
	              "WHERE user_id = $1 AND provider = $2 AND NOT needs_reconnect",
	              2, params, "cannot set needs_reconnect", err, errlen);
}

/* ---------------------------------------------------------------------------
 * The token endpoint call.
 */

/* grant_type=refresh_token&refresh_token=..&client_id=..&client_secret=..
 * (client_id and client_secret only when configured: public PKCE clients
 * have no secret).  malloc'ed; the caller scrubs it. */
static char *refresh_form(const wsync_provider_config *p, const char *refresh)
{
	char *secret = NULL, *enc_rt, *enc_id = NULL, *enc_secret = NULL, *body = NULL;
	size_t len;

	if (p->client_secret) {
		/* A secret file usually ends with a newline that is not part of
		 * the secret. */
		size_t n = strlen(p->client_secret);
		while (n > 0 && (p->client_secret[n - 1] == '\n' ||
		                 p->client_secret[n - 1] == '\r'))
			n--;
		secret = strndup(p->client_secret, n);
		if (!secret)
			return NULL;
	}
	enc_rt = wsync_url_encode(refresh);
	if (p->client_id && *p->client_id)
		enc_id = wsync_url_encode(p->client_id);
	if (secret && *secret)
		enc_secret = wsync_url_encode(secret);
	if (enc_rt && (enc_id || !(p->client_id && *p->client_id)) &&
	    (enc_secret || !(secret && *secret))) {
		len = strlen(enc_rt) + (enc_id ? strlen(enc_id) : 0) +
		      (enc_secret ? strlen(enc_secret) : 0) + 96;
		body = malloc(len);
		if (body)
			snprintf(body, len,
			         "grant_type=refresh_token&refresh_token=%s%s%s%s%s",
			         enc_rt, enc_id ? "&client_id=" : "",
			         enc_id ? enc_id : "", enc_secret ? "&client_secret=" : "",
			         enc_secret ? enc_secret : "");
	}
	scrub_free(secret);
	scrub_free(enc_rt);
	scrub_free(enc_id);
	scrub_free(enc_secret);
	return body;
}

static int post_refresh(wsync_http_client *http, const wsync_provider_config *p,
                        const char *refresh, wsync_http_result *res, int64_t now)
{
	static const wsync_http_header accept = {"Accept", "application/json"};
	wsync_http_settings s = {
		.base_url = NULL,
		.ca_file = p->ca_file,
		.connect_timeout_s = p->connect_timeout_s,
		.timeout_s = p->timeout_s,
		.user_agent = "wsync/" WSYNC_VERSION,
	};
	wsync_http_request req = {
		.struct_size = sizeof req,
		.method = "POST",
		.path = p->token_url,
		.content_type = "application/x-www-form-urlencoded",
		.headers = &accept,
		.n_headers = 1,
	};
	char *body = refresh_form(p, refresh);
	int rc;

	if (!body) {
		memset(res, 0, sizeof *res);
		snprintf(res->error, sizeof res->error, "out of memory");
		return -1;
	}
	req.body = body;
	req.body_len = strlen(body);
	rc = wsync_http_perform(http, &s, &req, NULL, res, now);
	scrub_free(body);
	return rc;
}

/* A token goes into an Authorization header later: printable ASCII only. */
static int token_usable(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
			return 0;
	return 1;
}

/* expires_in as a number or a numeric string (Wahoo sends decimals as
 * strings); 0 when absent or unusable, i.e. "unknown". */
static int64_t expires_in_value(json_object *v)
{
	int64_t n = 0;

	switch (v ? json_object_get_type(v) : json_type_null) {
	case json_type_int:
		n = json_object_get_int64(v);
		break;
	case json_type_double: {
		/* Casting a double outside int64_t (1e400 reads as inf, or NaN)
		 * is undefined: clamp first.  NaN fails both tests: unknown. */
		double d = json_object_get_double(v);
		if (d >= (double)EXPIRES_IN_MAX_S)
			n = EXPIRES_IN_MAX_S;
		else if (d >= 1)
			n = (int64_t)d;
		break;
	}
	case json_type_string: {
		const char *s = json_object_get_string(v);
		char *end;
		long long x = strtoll(s, &end, 10);
		if (end != s && (*end == '\0' || *end == '.'))
			n = x;
		break;
	}
	default:
		break;
	}
	if (n <= 0)
		return 0;
	return n > EXPIRES_IN_MAX_S ? EXPIRES_IN_MAX_S : n;
}

typedef wsync_token_answer token_answer;

void wsync_token_answer_clear(token_answer *a)
{
	scrub_free(a->access_token);
	scrub_free(a->refresh_token);
	memset(a, 0, sizeof *a);
}

static json_object *parse_json(const char *body, size_t len)
{
	json_tokener *tok;
	json_object *obj;

	if (len == 0 || len > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

int wsync_oauth_parse_answer(const char *body, size_t len, token_answer *a)
{
	json_object *root = parse_json(body, len), *v;
	const char *at = NULL, *rt = NULL;
	int rc = -1;

	memset(a, 0, sizeof *a);
	if (!root || !json_object_is_type(root, json_type_object))
		goto out;
	if (json_object_object_get_ex(root, "access_token", &v) &&
	    json_object_is_type(v, json_type_string))
		at = json_object_get_string(v);
	if (json_object_object_get_ex(root, "refresh_token", &v) &&
	    json_object_is_type(v, json_type_string))
		rt = json_object_get_string(v);
	if (!token_usable(at) || (rt && *rt && !token_usable(rt)))
		goto out;
	a->access_token = strdup(at);
	a->refresh_token = rt && *rt ? strdup(rt) : NULL;
	if (json_object_object_get_ex(root, "expires_in", &v))
		a->expires_in = expires_in_value(v);
	if (a->access_token && (!rt || !*rt || a->refresh_token))
		rc = 0;
	else
		wsync_token_answer_clear(a);
out:
	json_object_put(root);
	return rc;
}

/* The OAuth "error" code of a refusal ("invalid_grant"), if it is a plain
 * code; anything else (HTML, a description) is not repeated. */
void wsync_oauth_error_code(const char *body, size_t len, char *out, size_t outlen)
{
	json_object *root = parse_json(body, len), *v;
	const char *s = NULL;

	out[0] = '\0';
	if (root && json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "error", &v) &&
	    json_object_is_type(v, json_type_string))
		s = json_object_get_string(v);
	if (s && strlen(s) < outlen && strlen(s) <= 64 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == strlen(s))
		snprintf(out, outlen, "%s", s);
	json_object_put(root);
}

/* ---------------------------------------------------------------------------
 * The transaction.
 */

typedef struct refresh_ctx {
	PGconn *db;
	const wsync_provider_config *p;
	const char *user_id;
	char *msg;
	size_t msglen;
	int64_t now;
} refresh_ctx;

static int lock_row(refresh_ctx *x, wsync_token *cur)
{
	const char *params[2] = {x->user_id, x->p->name};
	long connect_s = x->p->connect_timeout_s > 0 ? x->p->connect_timeout_s : 10;
	long total_s = x->p->timeout_s > 0 ? x->p->timeout_s : 30;
	char wait[32];
	const char *wait_param[1] = {wait};

	if (db_run(x->db, "BEGIN", 0, NULL, "cannot begin", x->msg, x->msglen) < 0)
		return -1;
	/* Never wait longer than the holder's refresh can take: a stuck lock
	 * must not freeze every worker that needs this user's token. */
	snprintf(wait, sizeof wait, "%ldms", (connect_s + total_s) * 1000L + LOCK_SLACK_MS);
	if (db_run(x->db, "SELECT set_config('lock_timeout', $1, true)", 1, wait_param,
	           "cannot set lock_timeout", x->msg, x->msglen) < 0 ||
	    db_run(x->db,
	           "SELECT pg_advisory_xact_lock(hashtext('wsync-oauth'), "
	           "hashtext($1::text || '/' || $2::text))",
	           2, params, "cannot lock the token for refresh", x->msg,
	           x->msglen) < 0)
		return -1;
	return token_select(x->db, x->user_id, x->p->name, " FOR UPDATE", cur, x->msg,
	                    x->msglen);
}

static int mark_needs_reconnect(refresh_ctx *x)
{
	const char *params[2] = {x->user_id, x->p->name};
	if (db_run(x->db,
	           "UPDATE provider_tokens SET needs_reconnect = true, updated_at = now() "
	           "WHERE user_id = $1 AND provider = $2",
	           2, params, "cannot set needs_reconnect", x->msg, x->msglen) < 0)
		return -1;
	return db_commit(x->db, x->msg, x->msglen);
}

static int store_answer(refresh_ctx *x, const token_answer *a, int64_t expires_at)
{
	char exp[32];
	const char *params[5] = {x->user_id, x->p->name, a->access_token,
	                         a->refresh_token, expires_at ? exp : NULL};
	PGresult *r;
	int ok;

	snprintf(exp, sizeof exp, "%lld", (long long)expires_at);
	r = db_exec(x->db,
	            "UPDATE provider_tokens SET access_token = $3, "
	            "refresh_token = COALESCE($4, refresh_token), "
	            "expires_at = to_timestamp($5::double precision), "
	            "needs_reconnect = false, updated_at = now() "
	            "WHERE user_id = $1 AND provider = $2",
	            5, params);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "1") == 0;
	if (!ok)
		db_error(x->db, r, "cannot store the refreshed token", x->msg, x->msglen);
	PQclear(r);
	if (!ok)
		return -1;
	return db_commit(x->db, x->msg, x->msglen);
}

/* Take ownership of a's strings into t (the caller's token). */
static void fill_token(wsync_token *t, const wsync_token *cur, token_answer *a,
                       int64_t expires_at)
{
	char *old_refresh = a->refresh_token ? NULL : strdup(cur->refresh_token);
	wsync_token_clear(t);
	t->found = 1;
	t->enabled = cur->enabled;
	t->needs_reconnect = 0;
	t->expires_at = expires_at;
	t->access_token = a->access_token;
	t->refresh_token = a->refresh_token ? a->refresh_token : old_refresh;
	a->access_token = NULL;
	a->refresh_token = NULL;
}

/* 2xx from the token endpoint. */
static int32_t on_granted(refresh_ctx *x, const wsync_http_result *res,
                          const wsync_token *cur, wsync_token *t)
{
	token_answer a;
	int64_t expires_at;

	if (wsync_oauth_parse_answer(res->body, res->body_len, &a) < 0) {
		db_rollback(x->db);
		set_msg(x->msg, x->msglen,
		        "token refresh for %s: HTTP %ld answer without a usable "
		        "access_token; will retry",
		        x->p->name, res->status);
		return WSYNC_E_PROVIDER;
	}
	expires_at = a.expires_in ? x->now + a.expires_in : 0;
	if (store_answer(x, &a, expires_at) < 0) {
		db_rollback(x->db);
		wsync_token_answer_clear(&a);
		return WSYNC_E_UNEXPECTED;
	}
	fill_token(t, cur, &a, expires_at);
	wsync_token_answer_clear(&a);
	wsync_info("Refreshed %s token for user %s", x->p->name, x->user_id);
	return WSYNC_OK;
}

/* 400/401: the grant is refused, unless it is wsync's own client that is. */
static int32_t on_refused(refresh_ctx *x, const wsync_http_result *res)
{
	char code[72];

	wsync_oauth_error_code(res->body, res->body_len, code, sizeof code);
	/* A wrong client_id/secret is the operator's to fix: flagging every
	 * user for reconnection would not help and is hard to undo. */
	if (strcmp(code, "invalid_client") == 0 ||
	    strcmp(code, "unauthorized_client") == 0) {
		db_rollback(x->db);
		set_msg(x->msg, x->msglen,
		        "%s refused wsync's OAuth client (HTTP %ld, %s): check "
		        "[oauth] client_id and client_secret_file in %s",
		        x->p->name, res->status, code, x->p->path ? x->p->path : "its conf.d file");
		return WSYNC_E_UNEXPECTED;
	}
	if (mark_needs_reconnect(x) < 0) {
		db_rollback(x->db);
		return WSYNC_E_UNEXPECTED;
	}
	set_msg(x->msg, x->msglen,
	        "%s refused the token refresh (HTTP %ld%s%s): the user must "
	        "reconnect %s",
	        x->p->name, res->status, code[0] ? ", " : "", code, x->p->name);
	return WSYNC_E_AUTH;
}

static int32_t call_endpoint(refresh_ctx *x, wsync_http_client *http,
                             const wsync_token *cur, wsync_token *t)
{
	wsync_http_result res;

	if (post_refresh(http, x->p, cur->refresh_token, &res, x->now) < 0) {
		db_rollback(x->db);
		set_msg(x->msg, x->msglen, "token refresh for %s failed: %s%s",
		        x->p->name, res.error,
		        res.transport_error ? "; will retry" : "");
		return res.transport_error ? WSYNC_E_PROVIDER : WSYNC_E_UNEXPECTED;
	}
	if (res.status >= 200 && res.status <= 299)
		return on_granted(x, &res, cur, t);
	if (res.status == 400 || res.status == 401)
		return on_refused(x, &res);
	db_rollback(x->db);
	set_msg(x->msg, x->msglen,
	        "token refresh for %s: the token endpoint answered HTTP %ld; will retry",
	        x->p->name, res.status);
	return WSYNC_E_PROVIDER;
}

static int expired(const wsync_token *t, int64_t now)
{
	return t->expires_at != 0 && t->expires_at <= now + EXPIRY_SKEW_S;
}

/* Under the lock: the stored token is fresh when someone else replaced the
 * one the caller saw fail and it has not expired. */
static int refreshed_meanwhile(const wsync_token *cur, const char *stale_access,
                               int64_t now)
{
	if (!cur->access_token || !*cur->access_token || expired(cur, now))
		return 0;
	return !stale_access || strcmp(cur->access_token, stale_access) != 0;
}

static int32_t refresh_locked(refresh_ctx *x, wsync_http_client *http,
                              const char *stale_access, wsync_token *t)
{
	wsync_token cur;
	int32_t st;

	if (lock_row(x, &cur) < 0) {
		db_rollback(x->db);
		return WSYNC_E_UNEXPECTED;
	}
	if (!cur.found) {
		db_rollback(x->db);
		set_msg(x->msg, x->msglen,
		        "no %s token stored for user %s: the user must connect %s",
		        x->p->name, x->user_id, x->p->name);
		return WSYNC_E_AUTH;
	}
	if (refreshed_meanwhile(&cur, stale_access, x->now)) {
		db_rollback(x->db);     /* nothing written; releases the lock */
		wsync_token_clear(t);
		*t = cur;
		return WSYNC_OK;
	}
	if (!cur.refresh_token || !*cur.refresh_token) {
		st = mark_needs_reconnect(x) < 0 ? WSYNC_E_UNEXPECTED : WSYNC_E_AUTH;
		if (st == WSYNC_E_AUTH)
			set_msg(x->msg, x->msglen,
			        "the %s token of user %s expired and there is no refresh "
			        "token: the user must reconnect %s",
			        x->p->name, x->user_id, x->p->name);
		else
			db_rollback(x->db);
		wsync_token_clear(&cur);
		return st;
	}
	st = call_endpoint(x, http, &cur, t);
	wsync_token_clear(&cur);
	return st;
}

int32_t wsync_oauth_refresh(PGconn *db, wsync_http_client *http,
                            const wsync_provider_config *p, const char *user_id,
                            const char *stale_access, wsync_token *t,
                            char *msg, size_t msglen, int64_t now)
{
	refresh_ctx x = {db, p, user_id, msg, msglen, now};

	set_msg(msg, msglen, "%s", "");
	if (!db || !http || !p || !p->name || !user_id || !t) {
		set_msg(msg, msglen, "wsync_oauth_refresh: missing argument");
		return WSYNC_E_UNEXPECTED;
	}
	if (!p->token_url || !*p->token_url) {
		/* The provider has no refresh endpoint (no [oauth] token_url):
		 * a refused token can only be replaced by the user connecting
		 * again.  The engine sets needs_reconnect for this auth_error
		 * like for every other. */
		set_msg(msg, msglen,
		        "%s refused the token of user %s and offers no token refresh "
		        "(no [oauth] token_url): the user must reconnect %s",
		        p->name, user_id, p->name);
		return WSYNC_E_AUTH;
	}
	/* The new pair must be committed before it is used: that needs a
	 * transaction of our own. */
	if (PQtransactionStatus(db) != PQTRANS_IDLE) {
		set_msg(msg, msglen,
		        "wsync_oauth_refresh: the connection is inside a transaction");
		return WSYNC_E_UNEXPECTED;
	}
	return refresh_locked(&x, http, stale_access, t);
}
