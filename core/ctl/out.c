/*
 * out.c -- the generic printer behind every wsyncctl report: any PGresult as
 * an aligned table, as records, or as JSON, so each report is one query and
 * one call.
 */
#include "out.h"

#include <json.h>
#include <stdlib.h>
#include <string.h>


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
