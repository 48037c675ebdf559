/*
 * client.c -- the C client API (include/wsync/client.h): a thin layer over
 * the SQL API of migrations/0002_api.sql, so that C and every other language
 * share one implementation of the rules.
 */
#include "wsync/client.h"

#include "report.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wsync_client {
	PGconn *conn;
	int owns_conn;
	char err[512];
};

/* ---- errors ------------------------------------------------------------- */

static int fail(wsync_client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(wsync_client *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return code;
}

static void chomp(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
}

/* Map a failed result to a return code and a one-line message: the SQL
 * API's RAISEs carry SQLSTATEs that tell the caller's mistakes (class 22:
 * bad argument) from the database's. */
static int fail_result(wsync_client *c, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *hint = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL;
	int code = WSYNC_CLIENT_EDB;

	if (!msg) {
		fail(c, code, "%s", PQerrorMessage(c->conn));
		chomp(c->err);
		return code;
	}
	/* Undefined function or table: the schema is older than this library. */
	if (state && (!strcmp(state, "42883") || !strcmp(state, "42P01")))
		return fail(c, code, "%s (is the database migrated? run `wsyncctl migrate`)", msg);
	if (state && !strncmp(state, "22", 2))
		code = WSYNC_CLIENT_EINVAL;
	else if (state && !strcmp(state, "P0002"))
		code = WSYNC_CLIENT_ENOTFOUND;
	else if (state && !strcmp(state, "55000"))
		code = WSYNC_CLIENT_ESTATE;
	if (hint)
		return fail(c, code, "%s (%s)", msg, hint);
	return fail(c, code, "%s", msg);
}

/* ---- argument checks ---------------------------------------------------- */

int wsync_uuid_valid(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};
	size_t i, d = 0;
	if (!s || strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (d < 4 && (int)i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int check_uuid(wsync_client *c, const char *what, const char *s)
{
	if (!s)
		return fail(c, WSYNC_CLIENT_EINVAL, "%s must not be NULL", what);
	if (!wsync_uuid_valid(s))
		return fail(c, WSYNC_CLIENT_EINVAL,
		            "malformed %s \"%s\" (expected a UUID like "
		            "123e4567-e89b-12d3-a456-426614174000)", what, s);
	return 0;
}

static int check_entity_type(wsync_client *c, const char *s)
{
	if (s && (!strcmp(s, "workout") || !strcmp(s, "workout_scheduled")))
		return 0;
	return fail(c, WSYNC_CLIENT_EINVAL,
	            "unknown entity type \"%s\" (expected workout or workout_scheduled)",
	            s ? s : "(null)");
}

static int check_operation(wsync_client *c, const char *s)
{
	if (s && (!strcmp(s, "create") || !strcmp(s, "update") || !strcmp(s, "delete")))
		return 0;
	return fail(c, WSYNC_CLIENT_EINVAL,
	            "unknown operation \"%s\" (expected create, update or delete)",
	            s ? s : "(null)");
}

/* ---- connection ------------------------------------------------------------ */

static wsync_client *client_new(PGconn *conn, int owns)
{
	wsync_client *c = calloc(1, sizeof *c);
	if (c) {
		c->conn = conn;
		c->owns_conn = owns;
	}
	return c;
}

wsync_client *wsync_client_connect(const char *conninfo, char *errbuf, size_t errlen)
{
	PGconn *conn = PQconnectdb(conninfo ? conninfo : "");
	wsync_client *c;

	if (errbuf && errlen)
		errbuf[0] = 0;
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		if (errbuf && errlen) {
			snprintf(errbuf, errlen, "%s",
			         conn ? PQerrorMessage(conn) : "out of memory");
			chomp(errbuf);
		}
		PQfinish(conn);
		return NULL;
	}
	if (!(c = client_new(conn, 1))) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "out of memory");
		PQfinish(conn);
	}
	return c;
}

wsync_client *wsync_client_wrap(struct pg_conn *conn)
{
	return conn ? client_new(conn, 0) : NULL;
}

void wsync_client_close(wsync_client *c)
{
	if (!c)
		return;
	if (c->owns_conn)
		PQfinish(c->conn);
	free(c);
}

struct pg_conn *wsync_client_conn(wsync_client *c)
{
	return c->conn;
}

const char *wsync_client_errmsg(const wsync_client *c)
{
	return c ? c->err : "no client";
}

/* ---- calls ----------------------------------------------------------------- */

/* Run a query returning one integer; 0 or a WSYNC_CLIENT_E* code. */
static int query_int(wsync_client *c, const char *sql, int n, const char *const *params,
                     int *out)
{
	PGresult *r = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		rc = fail_result(c, r);
	else if (out)
		*out = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return rc;
}

int wsync_client_enqueue(wsync_client *c, const char *user_id, const char *entity_type,
                         const char *entity_id, const char *operation,
                         const char *provider, int *written)
{
	const char *p[5] = {user_id, entity_type, entity_id, operation, provider};
	int rc;
	c->err[0] = 0;
	if ((rc = check_uuid(c, "user_id", user_id)) || (rc = check_entity_type(c, entity_type)) ||
	    (rc = check_uuid(c, "entity_id", entity_id)) || (rc = check_operation(c, operation)))
		return rc;
	if (provider)
		return query_int(c, "SELECT wsync_enqueue($1::uuid, $2, $3::uuid, $4, $5)", 5, p,
		                 written);
	return query_int(c, "SELECT wsync_enqueue($1::uuid, $2, $3::uuid, $4)", 4, p, written);
}

int wsync_client_is_provider_enabled(wsync_client *c, const char *user_id,
                                     const char *provider, bool *enabled)
{
	const char *p[2] = {user_id, provider};
	int v = 0, rc;
	c->err[0] = 0;
	if ((rc = check_uuid(c, "user_id", user_id)))
		return rc;
	if (!provider)
		return fail(c, WSYNC_CLIENT_EINVAL, "provider must not be NULL");
	rc = query_int(c, "SELECT wsync_provider_enabled($1::uuid, $2)::int", 2, p, &v);
	if (!rc && enabled)
		*enabled = v != 0;
	return rc;
}

int wsync_client_retry(wsync_client *c, const char *queue_id, int *written)
{
	const char *p[1] = {queue_id};
	int rc;
	c->err[0] = 0;
	if ((rc = check_uuid(c, "queue id", queue_id)))
		return rc;
	return query_int(c, "SELECT wsync_retry($1::uuid)", 1, p, written);
}

int wsync_client_retry_failed(wsync_client *c, const char *user_id, const char *provider,
                              int *written)
{
	const char *p[2] = {user_id, provider};
	int rc;
	c->err[0] = 0;
	if ((rc = check_uuid(c, "user_id", user_id)))
		return rc;
	return query_int(c, "SELECT wsync_retry_failed($1::uuid, $2)", 2, p, written);
}

/* ---- status ------------------------------------------------------------------ */

static const char *const STATE_NAMES[] = {"never_synced", "pending", "retrying", "synced",
                                          "failed"};

const char *wsync_sync_state_name(wsync_sync_state s)
{
	if ((int)s < 0 || (size_t)s >= sizeof STATE_NAMES / sizeof *STATE_NAMES)
		return "unknown";
	return STATE_NAMES[s];
}

static wsync_sync_state state_parse(const char *s)
{
	for (size_t i = 0; i < sizeof STATE_NAMES / sizeof *STATE_NAMES; i++)
		if (!strcmp(s, STATE_NAMES[i]))
			return (wsync_sync_state)i;
	return WSYNC_STATE_NEVER_SYNCED;
}

/* Copy of a column, NULL for SQL NULL; *oom set when strdup fails. */
static char *col_str(const PGresult *r, int row, const char *name, int *oom)
{
	int col = PQfnumber(r, name);
	char *s;
	if (col < 0 || PQgetisnull(r, row, col))
		return NULL;
	if (!(s = strdup(PQgetvalue(r, row, col))))
		*oom = 1;
	return s;
}

static bool col_bool(const PGresult *r, int row, const char *name)
{
	int col = PQfnumber(r, name);
	return col >= 0 && !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static void status_clear(wsync_sync_status *s)
{
	free(s->provider);
	free(s->error_type);
	free(s->error_message);
	free(s->last_attempt);
	free(s->next_retry_at);
	free(s->provider_entity_id);
	free(s->operation);
	free(s->queue_id);
	free(s->user_id);
	memset(s, 0, sizeof *s);
}

/* Fill *s from row `row`; returns 0 or -1 when out of memory. */
static int status_from_row(wsync_sync_status *s, const PGresult *r, int row)
{
	int oom = 0, col = PQfnumber(r, "state");
	memset(s, 0, sizeof *s);
	s->provider = col_str(r, row, "provider", &oom);
	s->state = state_parse(PQgetvalue(r, row, col));
	s->synced = col_bool(r, row, "synced");
	s->pending = col_bool(r, row, "pending");
	s->failed = col_bool(r, row, "failed");
	s->enabled = col_bool(r, row, "enabled");
	s->error_type = col_str(r, row, "error_type", &oom);
	s->error_message = col_str(r, row, "error_message", &oom);
	s->last_attempt = col_str(r, row, "last_attempt", &oom);
	s->next_retry_at = col_str(r, row, "next_retry_at", &oom);
	s->retry_count = atoi(PQgetvalue(r, row, PQfnumber(r, "retry_count")));
	s->provider_entity_id = col_str(r, row, "provider_entity_id", &oom);
	s->operation = col_str(r, row, "operation", &oom);
	s->queue_id = col_str(r, row, "queue_id", &oom);
	s->user_id = col_str(r, row, "user_id", &oom);
	if (oom || !s->provider) {
		status_clear(s);
		return -1;
	}
	return 0;
}

/* Run the status query; on success *res is the result (caller PQclear()s). */
static int status_query(wsync_client *c, const char *entity_type, const char *entity_id,
                        const char *provider, PGresult **res)
{
	int rc;
	*res = NULL;
	c->err[0] = 0;
	if ((rc = check_entity_type(c, entity_type)) || (rc = check_uuid(c, "entity_id", entity_id)))
		return rc;
	*res = wsync_report_status(c->conn, entity_type, entity_id, provider);
	if (PQresultStatus(*res) != PGRES_TUPLES_OK) {
		rc = fail_result(c, *res);
		PQclear(*res);
		*res = NULL;
	}
	return rc;
}

int wsync_client_get_sync_status(wsync_client *c, const char *entity_type,
                                 const char *entity_id, const char *provider,
                                 wsync_sync_status **out)
{
	PGresult *r;
	int rc, n;
	*out = NULL;
	if (!provider) {
		c->err[0] = 0;
		return fail(c, WSYNC_CLIENT_EINVAL, "provider must not be NULL");
	}
	if ((rc = status_query(c, entity_type, entity_id, provider, &r)))
		return rc;
	if ((n = PQntuples(r)) != 1) {
		PQclear(r);
		return fail(c, WSYNC_CLIENT_EDB, "status query returned %d rows", n);
	}
	if (!(*out = malloc(sizeof **out)) || status_from_row(*out, r, 0) < 0) {
		free(*out);
		*out = NULL;
		rc = fail(c, WSYNC_CLIENT_ENOMEM, "out of memory");
	}
	PQclear(r);
	return rc;
}

int wsync_client_get_all_sync_statuses(wsync_client *c, const char *entity_type,
                                       const char *entity_id,
                                       wsync_sync_status_list **out)
{
	PGresult *r;
	wsync_sync_status_list *l;
	int rc, n;
	*out = NULL;
	if ((rc = status_query(c, entity_type, entity_id, NULL, &r)))
		return rc;
	n = PQntuples(r);
	if (!(l = calloc(1, sizeof *l)) ||
	    (n && !(l->items = calloc((size_t)n, sizeof *l->items)))) {
		free(l);
		PQclear(r);
		return fail(c, WSYNC_CLIENT_ENOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++, l->count++) {
		if (status_from_row(&l->items[i], r, i) < 0) {
			wsync_sync_status_list_free(l);
			PQclear(r);
			return fail(c, WSYNC_CLIENT_ENOMEM, "out of memory");
		}
	}
	PQclear(r);
	*out = l;
	return 0;
}

void wsync_sync_status_free(wsync_sync_status *s)
{
	if (!s)
		return;
	status_clear(s);
	free(s);
}

void wsync_sync_status_list_free(wsync_sync_status_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++)
		status_clear(&l->items[i]);
	free(l->items);
	free(l);
}
