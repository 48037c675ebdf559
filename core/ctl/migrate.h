/* migrate.h -- apply migrations/NNNN_*.sql in order, once each. */
#ifndef WSYNC_MIGRATE_H
#define WSYNC_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Apply every not-yet-applied file of `dir` (names NNNN_*.sql, in numeric
 * order), each in its own transaction, under a session advisory lock so
 * that several nodes can migrate at once.  Applied files are recorded in
 * wsync_schema_migrations.  `progress` (may be NULL) gets one line per
 * applied file.  Returns the number of files applied, or -1 with a message
 * in err.
 */
int wsync_migrate(PGconn *conn, const char *dir, FILE *progress, char *err,
                  size_t errlen);

#endif
