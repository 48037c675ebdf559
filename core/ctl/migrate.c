/*
 * migrate.c -- forward-only numbered SQL migrations.
 *
 * Each file runs once, in its own transaction, in numeric order.  A session
 * advisory lock serializes nodes that start together: the second one waits,
 * then finds nothing left to do.
 */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_lock key: "wsyncmig" as a number, far from the OAuth keys. */
#define MIGRATE_LOCK_KEY "7813029143258114407"

static int exec_ok(PGconn *c, const char *sql, int n, const char *const *params,
                   char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(err, errlen, "%s", PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static int is_migration(const char *name)
{
	size_t len = strlen(name);
	return len > 9 && isdigit((unsigned char)name[0]) && isdigit((unsigned char)name[1]) &&
	       isdigit((unsigned char)name[2]) && isdigit((unsigned char)name[3]) &&
	       name[4] == '_' && !strcmp(name + len - 4, ".sql");
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **list_files(const char *dir, size_t *n, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	*n = 0;
	if (!d) {
		snprintf(err, errlen, "migrations directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((de = readdir(d))) {
		char **grown;
		if (!is_migration(de->d_name))
			continue;
		grown = realloc(names, (*n + 1) * sizeof *names);
		if (!grown || !(grown[*n] = strdup(de->d_name)))
			abort();
		names = grown;
		(*n)++;
	}
	closedir(d);
	if (names)
		qsort(names, *n, sizeof *names, by_name);
	return names;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	long len;
	char *buf;
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		snprintf(err, errlen, "%s: read failed", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[len] = 0;
	fclose(f);
	return buf;
}

static int already_applied(PGconn *c, const char *name, char *err, size_t errlen)
{
	const char *p[1] = {name};
	PGresult *r = PQexecParams(c, "SELECT 1 FROM wsync_schema_migrations WHERE version = $1",
	                           1, NULL, p, NULL, NULL, 0);
	int found = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) > 0 : -1;
	if (found < 0)
		snprintf(err, errlen, "%s", PQerrorMessage(c));
	PQclear(r);
	return found;
}

/* One file in one transaction; the SQL itself goes through the simple query
 * protocol because a migration holds several statements. */
static int apply_one(PGconn *c, const char *dir, const char *name, char *err,
                     size_t errlen)
{
	char path[PATH_MAX], msg[512];
	const char *p[1] = {name};
	char *sql;
	PGresult *r;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!(sql = read_file(path, err, errlen)))
		return -1;
	if (exec_ok(c, "BEGIN", 0, NULL, err, errlen) < 0) {
		free(sql);
		return -1;
	}
	r = PQexec(c, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
		PQclear(r);
		PQclear(PQexec(c, "ROLLBACK"));
		snprintf(err, errlen, "%s: %s(rolled back; nothing of it was applied)", name, msg);
		return -1;
	}
	PQclear(r);
	if (exec_ok(c, "INSERT INTO wsync_schema_migrations (version) VALUES ($1)", 1, p,
	            err, errlen) < 0 ||
	    exec_ok(c, "COMMIT", 0, NULL, err, errlen) < 0) {
		PQclear(PQexec(c, "ROLLBACK"));
		return -1;
	}
	return 0;
}

int wsync_migrate(PGconn *conn, const char *dir, FILE *progress, char *err,
                  size_t errlen)
{
	size_t n = 0, i;
	char **files = list_files(dir, &n, err, errlen);
	int applied = 0, rc = 0;

	if (!files && n == 0 && *err)
		return -1;
	if (exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, err,
	            errlen) < 0 ||
	    exec_ok(conn, "CREATE TABLE IF NOT EXISTS wsync_schema_migrations ("
	                  " version text PRIMARY KEY,"
	                  " applied_at timestamptz NOT NULL DEFAULT now())",
	            0, NULL, err, errlen) < 0) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++) {
		int done = already_applied(conn, files[i], err, errlen);
		if (done < 0) {
			rc = -1;
		} else if (!done) {
			if (apply_one(conn, dir, files[i], err, errlen) < 0) {
				rc = -1;
			} else {
				applied++;
				if (progress)
					fprintf(progress, "applied %s\n", files[i]);
			}
		}
	}
	{
		char ignore[256];
		exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0, NULL,
		        ignore, sizeof ignore);
	}
out:
	for (i = 0; i < n; i++)
		free(files[i]);
	free(files);
	return rc < 0 ? -1 : applied;
}
