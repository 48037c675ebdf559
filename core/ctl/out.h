/*
 * out.h -- print any query result as an aligned table, as records, or as
 * JSON (every wsyncctl report).
 */
#ifndef WSYNC_CTL_OUT_H
#define WSYNC_CTL_OUT_H

#include <libpq-fe.h>
#include <stdio.h>

typedef enum wsync_out_mode {
	WSYNC_OUT_TABLE,    /* aligned columns, a header, "(N rows)" */
	WSYNC_OUT_RECORDS,  /* one "column  value" block per row */
	WSYNC_OUT_JSON      /* a JSON array of objects */
} wsync_out_mode;

/* Print every row of a PGRES_TUPLES_OK result.  In JSON, booleans, integers
 * and numerics become JSON booleans and numbers, SQL NULL becomes null,
 * everything else a string.  Returns 0, or -1 when out of memory. */
int wsync_out_rows(FILE *f, const PGresult *r, wsync_out_mode mode);

#endif
