/*
 * schemas.h -- two schemas side by side, for the SQL tests that compare the
 * old and the new form of one rule (test_bulk.c: 0005 against every migration;
 * test_rategrant.c: 0011 against 0012).
 */
#ifndef WSYNC_TEST_SCHEMAS_H
#define WSYNC_TEST_SCHEMAS_H

#include "ctl/migrate.h"
#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A connection to database `name` of the test cluster (each schema lives in
 * a database of its own).  Caller PQfinish()es. */
static inline PGconn *sqlt_db_named(const char *name)
{
	char ci[2048];
	PGconn *c;
	snprintf(ci, sizeof ci, "%s dbname=%s", getenv("WSYNC_TEST_CONNINFO"), name);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect %s: %s", name, PQerrorMessage(c));
		exit(1);
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

/* A directory of symlinks to the source tree's migrations numbered <= max.
 * Caller frees. */
static inline char *sqlt_migrations_upto(int max)
{
	const char *root = getenv("WSYNC_SOURCE_ROOT");
	char src[4096], from[8192], to[8192];
	char *dir = t_tempdir();
	DIR *d;
	struct dirent *e;
	snprintf(src, sizeof src, "%s/migrations", root ? root : ".");
	d = opendir(src);
	T_CHECK(d != NULL);
	while (d && (e = readdir(d))) {
		if (strlen(e->d_name) < 6 || atoi(e->d_name) < 1 || atoi(e->d_name) > max)
			continue;
		snprintf(from, sizeof from, "%s/%s", src, e->d_name);
		snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
		T_CHECK(symlink(from, to) == 0);
	}
	if (d)
		closedir(d);
	return dir;
}

/* Migrate db with the files of dir; exits when that fails. */
static inline void sqlt_migrate_dir(PGconn *db, const char *dir)
{
	char err[1024];
	if (wsync_migrate(db, dir, NULL, err, sizeof err) < 0) {
		fprintf(stderr, "migrate %s failed: %s\n", dir, err);
		exit(1);
	}
}

#endif
