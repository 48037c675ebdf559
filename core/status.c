/*
 * status.c -- report queries (wsyncctl, client status API) and the generic
 * printer that turns any PGresult into a table, records or JSON, so each
 * wsyncctl report is one query and one call.
 */
#include "status.h"

#include <json.h>
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
		"SELECT provider, state, synced, pending, failed, enabled, error_type,"
		"  error_message, wsync_iso8601(last_attempt) AS last_attempt,"
		"  wsync_iso8601(next_retry_at) AS next_retry_at, retry_count,"
		"  provider_entity_id, operation, queue_id, user_id"
		" FROM wsync_sync_status($1, $2::uuid, $3)",
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
		"  extract(epoch FROM now() - min(created_at))::bigint AS oldest_age_s"
		" FROM workout_sync_queue WHERE processed_at IS NULL"
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

/* ---- output ------------------------------------------------------------------ */

/* PostgreSQL type oids (pg_type.h is not part of libpq's public headers). */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_FLOAT4 = 700,
       OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

static int is_int(Oid t)
{
	return t == OID_INT2 || t == OID_INT4 || t == OID_INT8;
}

static int is_number(Oid t)
{
	return is_int(t) || t == OID_FLOAT4 || t == OID_FLOAT8 || t == OID_NUMERIC;
}

static const char *cell(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return "-";
	if (PQftype(r, col) == OID_BOOL)
		return PQgetvalue(r, row, col)[0] == 't' ? "true" : "false";
	return PQgetvalue(r, row, col);
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static void pad(FILE *f, size_t n)
{
	while (n--)
		fputc(' ', f);
}

static void print_cell(FILE *f, const char *s, size_t w, int right, int last)
{
	size_t sw = width(s);
	if (right)
		pad(f, w - sw);
	fputs(s, f);
	if (!right && !last)
		pad(f, w - sw);
	if (!last)
		fputs("  ", f);
}

static int out_table(FILE *f, const PGresult *r)
{
	int rows = PQntuples(r), cols = PQnfields(r);
	size_t *w = calloc((size_t)cols ? (size_t)cols : 1, sizeof *w);
	if (!w)
		return -1;
	for (int c = 0; c < cols; c++) {
		w[c] = width(PQfname(r, c));
		for (int i = 0; i < rows; i++)
			if (width(cell(r, i, c)) > w[c])
				w[c] = width(cell(r, i, c));
	}
	for (int c = 0; c < cols; c++)
		print_cell(f, PQfname(r, c), w[c], is_number(PQftype(r, c)), c == cols - 1);
	fputc('\n', f);
	for (int c = 0; c < cols; c++) {
		for (size_t k = 0; k < w[c]; k++)
			fputc('-', f);
		fputs(c == cols - 1 ? "\n" : "  ", f);
	}
	for (int i = 0; i < rows; i++) {
		for (int c = 0; c < cols; c++)
			print_cell(f, cell(r, i, c), w[c], is_number(PQftype(r, c)),
			           c == cols - 1);
		fputc('\n', f);
	}
	fprintf(f, "(%d row%s)\n", rows, rows == 1 ? "" : "s");
	free(w);
	return 0;
}

static int out_records(FILE *f, const PGresult *r)
{
	int rows = PQntuples(r), cols = PQnfields(r);
	size_t w = 0;
	for (int c = 0; c < cols; c++)
		if (width(PQfname(r, c)) > w)
			w = width(PQfname(r, c));
	for (int i = 0; i < rows; i++) {
		if (i)
			fputc('\n', f);
		for (int c = 0; c < cols; c++) {
			print_cell(f, PQfname(r, c), w, 0, 0);
			fprintf(f, "%s\n", cell(r, i, c));
		}
	}
	if (!rows)
		fputs("(0 rows)\n", f);
	return 0;
}

static json_object *json_cell(const PGresult *r, int row, int col)
{
	const char *v = PQgetvalue(r, row, col);
	Oid t = PQftype(r, col);
	if (PQgetisnull(r, row, col))
		return NULL;
	if (t == OID_BOOL)
		return json_object_new_boolean(v[0] == 't');
	if (is_int(t))
		return json_object_new_int64(strtoll(v, NULL, 10));
	/* Keep PostgreSQL's text ("97.6"), not the nearest double's 17 digits. */
	if (is_number(t))
		return json_object_new_double_s(strtod(v, NULL), v);
	return json_object_new_string(v);
}

static int out_json(FILE *f, const PGresult *r)
{
	json_object *arr = json_object_new_array();
	int rows = PQntuples(r), cols = PQnfields(r);
	if (!arr)
		return -1;
	for (int i = 0; i < rows; i++) {
		json_object *o = json_object_new_object();
		if (!o) {
			json_object_put(arr);
			return -1;
		}
		for (int c = 0; c < cols; c++)
			json_object_object_add(o, PQfname(r, c), json_cell(r, i, c));
		json_object_array_add(arr, o);
	}
	fprintf(f, "%s\n",
	        json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
	                                               JSON_C_TO_STRING_SPACED |
	                                               JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	return 0;
}

int wsync_out_rows(FILE *f, const PGresult *r, wsync_out_mode mode)
{
	switch (mode) {
	case WSYNC_OUT_JSON:
		return out_json(f, r);
	case WSYNC_OUT_RECORDS:
		return out_records(f, r);
	default:
		return out_table(f, r);
	}
}
