/*
 * backfill.c -- `wsyncctl backfill --provider NAME [--since DATE]
 * [--users FILE] [--batch N] [--json]`: queue for a provider what it never
 * had (a provider added later, a user list re-enabled), through
 * wsync_backfill() (migrations/0007), one batch per transaction, workouts
 * before scheduled workouts.
 */
#include "ctl.h"

#include "wsync/client.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "wsyncctl backfill"

static void help(void)
{
	printf("usage: wsyncctl backfill --provider NAME [--since DATE] [--users FILE]"
	       " [--batch N] [--json]\n\n"
	       "Queue a create for every workout, then every scheduled workout dated today\n"
	       "(UTC) or later, that the provider does not have yet: no link on it and no\n"
	       "entry pending for it.  Only users with a provider_tokens row for it and\n"
	       "upload_workouts_enabled.  Running it twice queues nothing new.  Each batch\n"
	       "is its own transaction, so wsyncd and the application keep working.\n\n"
	       "options:\n"
	       "  --provider NAME        the provider (a name in sync_providers)\n"
	       "  --since DATE           only rows created or changed on or after DATE\n"
	       "                         (YYYY-MM-DD, UTC)\n"
	       "  --users FILE           only these users: one UUID per line (blank lines\n"
	       "                         and lines starting with # are skipped)\n"
	       "  --batch N              entities per batch (default 500)\n"
	       "  --json                 print JSON instead of text\n"
	       "  -h, --help             this help\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'wsyncctl backfill --help'.\n", stderr);
	return WSYNC_EXIT_USAGE;
}

/* YYYY-MM-DD, a real calendar date. */
static int valid_date(const char *s)
{
	struct tm tm = {0};
	int y, m, d;
	char tail;
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return 0;
	tm.tm_year = y - 1900, tm.tm_mon = m - 1, tm.tm_mday = d, tm.tm_hour = 12;
	if (m < 1 || m > 12 || d < 1 || d > 31 || timegm(&tm) == (time_t)-1)
		return 0;
	return tm.tm_mon == m - 1 && tm.tm_mday == d; /* 2026-02-30 normalizes away */
}

/* The users file as a uuid[] literal in a->users.  Returns 0 or an exit
 * code (the message names file:line). */
static int read_users(const char *path, wsync_backfill_args *a)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t len = 1, cap = 256;
	int lineno = 0, n = 0;
	if (!f)
		return usage_error("--users %s: %s", path, strerror(errno));
	if (!(a->users = malloc(cap)))
		abort();
	strcpy(a->users, "{");
	while (fgets(line, sizeof line, f)) {
		char *s = line, *e;
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			fclose(f);
			return usage_error("%s:%d: line too long: expected one user UUID", path,
			                   lineno);
		}
		while (isspace((unsigned char)*s))
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = 0;
		if (!*s || *s == '#')
			continue;
		if (!wsync_uuid_valid(s)) {
			fclose(f);
			return usage_error("%s:%d: malformed user id '%s': expected a UUID like "
			                   "123e4567-e89b-12d3-a456-426614174000", path, lineno, s);
		}
		if (len + strlen(s) + 3 > cap) {
			char *grown = realloc(a->users, cap *= 2);
			if (!grown)
				abort();
			a->users = grown;
		}
		len += (size_t)sprintf(a->users + len, "%s%s", n++ ? "," : "", s);
	}
	fclose(f);
	strcpy(a->users + len, "}");
	if (n == 0)
		return usage_error("--users %s: no user ids in the file", path);
	return 0;
}

int wsync_ctl_backfill_args(int argc, char **argv, wsync_backfill_args *a)
{
	const char *users = NULL, *batch = NULL;
	memset(a, 0, sizeof *a);
	a->batch = 500;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL, *eq;
		static const char *const with_value[] = {"--provider", "--since", "--users",
		                                         "--batch"};
		size_t k, nlen;
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			help();
			return -1;
		}
		if (!strcmp(arg, "--json")) {
			a->json = 1;
			continue;
		}
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		for (k = 0; k < 4; k++)
			if (strlen(with_value[k]) == nlen && !strncmp(arg, with_value[k], nlen))
				break;
		if (k == 4)
			return arg[0] == '-' ? usage_error("unknown option '%s'", arg)
			                     : usage_error("unexpected argument '%s'", arg);
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return usage_error("option %s needs a value", with_value[k]);
		if (k == 0)
			a->provider = val;
		else if (k == 1)
			a->since = val;
		else if (k == 2)
			users = val;
		else
			batch = val;
	}
	if (!a->provider)
		return usage_error("missing --provider NAME");
	if (a->since && !valid_date(a->since))
		return usage_error("--since '%s': expected a date like 2026-11-28 (YYYY-MM-DD, UTC)",
		                   a->since);
	if (batch) {
		long long v;
		if (wsync_parse_int(batch, 1, 1000000, &v) < 0)
			return usage_error("--batch '%s': expected an integer from 1 to 1000000", batch);
		a->batch = (long)v;
	}
	return users ? read_users(users, a) : 0;
}

void wsync_ctl_backfill_args_free(wsync_backfill_args *a)
{
	free(a->users);
	a->users = NULL;
}

/* Exit code for a failed query, with its message. */
static int query_error(PGconn *db, const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	if (!msg) {
		fprintf(stderr, PROG ": %s", PQerrorMessage(db));
		return WSYNC_EXIT_RUNTIME;
	}
	if (state && !strncmp(state, "22", 2))
		return usage_error("%s", msg);
	fprintf(stderr, PROG ": %s%s\n", msg,
	        state && (!strcmp(state, "42883") || !strcmp(state, "42P01"))
	                ? " (is the database migrated? run `wsyncctl migrate`)" : "");
	return WSYNC_EXIT_RUNTIME;
}

/* The provider must exist and be enabled; a provider no daemon serves is
 * queued for all the same, with a warning.  Returns 0 or an exit code. */
static int check_provider(PGconn *db, const char *provider, int json, char **not_served)
{
	const char *p[1] = {provider};
	PGresult *r = PQexecParams(db,
		"SELECT (SELECT enabled FROM wsync_provider_state WHERE provider = $1),"
		"  (SELECT reason FROM wsync_provider_state WHERE provider = $1),"
		"  (SELECT coalesce(string_agg(name, ', ' ORDER BY name), 'none')"
		"     FROM sync_providers)", 1, NULL, p, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = query_error(db, r);
	else if (PQgetisnull(r, 0, 0))
		rc = usage_error("unknown provider '%s' (registered: %s)", provider,
		                 PQgetvalue(r, 0, 2));
	else if (PQgetvalue(r, 0, 0)[0] != 't') {
		fprintf(stderr, PROG ": provider %s is not enabled: %s; nothing queued\n", provider,
		        PQgetisnull(r, 0, 1) ? "disabled" : PQgetvalue(r, 0, 1));
		rc = WSYNC_EXIT_RUNTIME;
	} else if (!PQgetisnull(r, 0, 1) && json) {
		*not_served = strdup(PQgetvalue(r, 0, 1));
	} else if (!PQgetisnull(r, 0, 1))
		fprintf(stderr, PROG ": warning: provider %s: %s; entries wait until a wsyncd "
		        "serves it\n", provider, PQgetvalue(r, 0, 1));
	PQclear(r);
	return rc;
}

/* Every batch of one entity type; adds to *queued and *batches. */
static int run_type(PGconn *db, const wsync_backfill_args *a, const char *type,
                    long long *queued, long *batches)
{
	char lim[24], after[40] = "";
	char since[40];
	const char *p[6] = {a->provider, type, NULL, lim, NULL, a->users};
	snprintf(lim, sizeof lim, "%ld", a->batch);
	if (a->since) {
		snprintf(since, sizeof since, "%s 00:00:00+00", a->since);
		p[4] = since;
	}
	for (;;) {
		/* One statement, one transaction: the batch's locks end with it. */
		PGresult *r = PQexecParams(db,
			"SELECT queued, scanned, last_id FROM wsync_backfill($1, $2, $3::uuid,"
			" $4::int, $5::timestamptz, $6::uuid[])", 6, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			int rc = query_error(db, r);
			PQclear(r);
			return rc;
		}
		*queued += atoll(PQgetvalue(r, 0, 0));
		(*batches)++;
		if (PQgetisnull(r, 0, 2)) {
			PQclear(r);
			return 0;
		}
		snprintf(after, sizeof after, "%s", PQgetvalue(r, 0, 2));
		p[2] = after;
		PQclear(r);
	}
}

int wsync_ctl_backfill_run(PGconn *db, const wsync_backfill_args *a)
{
	long long workouts = 0, scheduled = 0;
	long batches = 0;
	char *not_served = NULL;
	int rc;
	if ((rc = check_provider(db, a->provider, a->json, &not_served)))
		return rc;
	/* Workouts first: their entries are older, and the engine runs a
	 * scheduled workout after older entries of its workout. */
	if ((rc = run_type(db, a, "workout", &workouts, &batches)) ||
	    (rc = run_type(db, a, "workout_scheduled", &scheduled, &batches))) {
		free(not_served);
		fprintf(stderr, PROG ": stopped; %lld workouts and %lld scheduled workouts were "
		        "queued before the error (run it again: nothing is queued twice)\n",
		        workouts, scheduled);
		return rc;
	}
	if (a->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "provider", json_object_new_string(a->provider));
		json_object_object_add(o, "workout", json_object_new_int64(workouts));
		json_object_object_add(o, "workout_scheduled", json_object_new_int64(scheduled));
		json_object_object_add(o, "batches", json_object_new_int64(batches));
		/* Why no wsyncd serves the provider yet (the text mode warns). */
		json_object_object_add(o, "not_served",
		                       not_served ? json_object_new_string(not_served) : NULL);
		free(not_served);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
		                                                     JSON_C_TO_STRING_SPACED));
		json_object_put(o);
		return 0;
	}
	printf("backfill %s: %lld workout%s and %lld scheduled workout%s queued (%ld batch%s)\n",
	       a->provider, workouts, workouts == 1 ? "" : "s", scheduled,
	       scheduled == 1 ? "" : "s", batches, batches == 1 ? "" : "es");
	return 0;
}
