/*
 * ctl.h -- wsyncctl commands implemented outside wsyncctl.c.
 *
 * A command gets the words from its own name on (argv[0] is the command
 * name, e.g. "plugins"), parses its own options (including --help and
 * --json), prints its output on stdout and its errors on stderr, and
 * returns the process exit code: WSYNC_EXIT_OK, WSYNC_EXIT_RUNTIME or
 * WSYNC_EXIT_USAGE (this enum is the exit-code contract of every wsync
 * program: docs/design.md, "Where each contract lives").
 */
#ifndef WSYNC_CTL_H
#define WSYNC_CTL_H

#include "common/config.h"

#include <libpq-fe.h>

enum {
	WSYNC_EXIT_OK = 0,       /* done */
	WSYNC_EXIT_RUNTIME = 1,  /* runtime failure (database unreachable, ...) */
	WSYNC_EXIT_USAGE = 2     /* bad arguments or configuration */
};

/* `wsyncctl plugins`: what the plugin directory holds and what would load,
 * and, when db is not NULL, which instances a wsyncd has quarantined.
 * cfg is the loaded configuration (wsync_config_ok() true), owned by the
 * caller; it is NULL only when argv holds --help, so that the help
 * prints without a configuration.  db is borrowed. */
int wsync_ctl_plugins(const wsync_config *cfg, PGconn *db, int argc, char **argv);

/* `wsyncctl backfill` (backfill.c), in two steps so that arguments are
 * checked before connecting. */
typedef struct wsync_backfill_args {
	const char *provider;   /* borrowed from argv */
	const char *since;      /* YYYY-MM-DD (checked) or NULL; borrowed */
	char *users;            /* uuid[] literal from --users FILE, or NULL; owned */
	long batch;             /* entities per batch */
	int json;
} wsync_backfill_args;

/* Parse the words from "backfill" on.  Returns 0, -1 when --help was
 * printed, or an exit code (the message printed).  Free with
 * wsync_ctl_backfill_args_free whatever it returned. */
int wsync_ctl_backfill_args(int argc, char **argv, wsync_backfill_args *a);
void wsync_ctl_backfill_args_free(wsync_backfill_args *a);
/* Queue the batches on db (borrowed) and print the result; the exit code. */
int wsync_ctl_backfill_run(PGconn *db, const wsync_backfill_args *a);

#endif
