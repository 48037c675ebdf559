/*
 * wsyncctl -- the operator CLI: migrations, enqueue, sync status, queue
 * reports, retry and prune, plugins, parse-workout.
 *
 * Table-driven: COMMANDS names each command with its arguments, options and
 * help; one parser handles every command's options, so a handler only checks
 * values, runs its query (core/lib/report.c) and prints the result through
 * the shared table/JSON printer (out.c).  Exit codes: 0 ok, 1 runtime
 * failure, 2 usage or configuration error; argument syntax is checked before
 * connecting, so a bad argument is reported as such even when the database
 * is down.
 */
#include "common/config.h"
#include "common/filetrust.h"
#include "ctl.h"
#include "host/isolate.h"
#include "parse_workout.h"
#include "migrate.h"
#include "lib/report.h"
#include "out.h"
#include "wsync/client.h"

#include <ctype.h>
#include <json.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "wsyncctl"
#define UUID_EXAMPLE "123e4567-e89b-12d3-a456-426614174000"

/* ---- options ------------------------------------------------------------------ */

enum {
	O_JSON = 1 << 0,
	O_PROVIDER = 1 << 1,
	O_USER = 1 << 2,
	O_SINCE = 1 << 3,
	O_OLDER = 1 << 4,
	O_LIMIT = 1 << 5,
	O_BATCH = 1 << 6,
	O_DIR = 1 << 7,
};

typedef struct ctl_opts {
	int json;
	const char *provider, *user, *since, *older_than, *limit, *batch, *dir;
	char *pos[4];
	int npos;
} ctl_opts;

typedef struct optdef {
	const char *name;
	unsigned bit;
	size_t off;        /* offset of the value in ctl_opts; 0 for a flag */
	const char *meta;  /* value placeholder; NULL for a flag */
	const char *help;
} optdef;

static const optdef OPTDEFS[] = {
	{"--provider", O_PROVIDER, offsetof(ctl_opts, provider), "P",
	 "only this provider (a name in sync_providers)"},
	{"--user", O_USER, offsetof(ctl_opts, user), "UUID", "the user's id"},
	{"--since", O_SINCE, offsetof(ctl_opts, since), "DURATION",
	 "window to report, e.g. 90m, 24h, 7d (default 24h)"},
	{"--older-than", O_OLDER, offsetof(ctl_opts, older_than), "DURATION",
	 "prune entries processed longer ago than this (default 30d)"},
	{"--limit", O_LIMIT, offsetof(ctl_opts, limit), "N", "at most N rows (default 20)"},
	{"--batch", O_BATCH, offsetof(ctl_opts, batch), "N",
	 "rows deleted per statement (default 1000)"},
	{"--dir", O_DIR, offsetof(ctl_opts, dir), "DIR",
	 "migrations directory (default $WSYNC_MIGRATIONS_DIR, else " WSYNC_DEFAULT_MIGRATIONS_DIR
	 ")"},
	{"--json", O_JSON, 0, NULL, "print JSON instead of a table"},
};
#define N_OPTDEFS (sizeof OPTDEFS / sizeof *OPTDEFS)

/* ---- context and command table --------------------------------------------------- */

typedef struct ctl_cmd ctl_cmd;

typedef struct ctl_ctx {
	const char *config_path;
	int config_given;     /* -c on the command line */
	wsync_config *cfg;
	PGconn *db;
	wsync_client *client;
	const ctl_cmd *cmd;
	ctl_opts o;
} ctl_ctx;

struct ctl_cmd {
	const char *name;
	int (*run)(ctl_ctx *ctx, int argc, char **argv);
	const char *args;     /* positional synopsis */
	unsigned opts;        /* O_* accepted */
	int min_pos, max_pos;
	int raw;              /* parses its own arguments (argv from its name on) */
	const char *summary;
	const char *help;
};

static int cmd_migrate(ctl_ctx *, int, char **);
static int cmd_enqueue(ctl_ctx *, int, char **);
static int cmd_status(ctl_ctx *, int, char **);
static int cmd_queue(ctl_ctx *, int, char **);
static int cmd_errors(ctl_ctx *, int, char **);
static int cmd_failed(ctl_ctx *, int, char **);
static int cmd_success_rate(ctl_ctx *, int, char **);
static int cmd_retry(ctl_ctx *, int, char **);
static int cmd_prune(ctl_ctx *, int, char **);
static int cmd_plugins(ctl_ctx *, int, char **);
static int cmd_parse_workout(ctl_ctx *, int, char **);
static int cmd_backfill(ctl_ctx *, int, char **);
static int cmd_provider(ctl_ctx *, int, char **);

static const ctl_cmd COMMANDS[] = {
	{"migrate", cmd_migrate, "", O_DIR | O_JSON, 0, 0, 0,
	 "apply the database migrations not applied yet",
	 "Applies migrations/NNNN_*.sql in order, each once, in a transaction, under\n"
	 "an advisory lock (several nodes may run it at once)."},
	{"enqueue", cmd_enqueue, "USER_ID ENTITY_TYPE ENTITY_ID OPERATION", O_PROVIDER | O_JSON,
	 4, 4, 0, "queue a sync by hand (for every enabled provider, or --provider)",
	 "ENTITY_TYPE is workout or workout_scheduled; OPERATION is create, update\n"
	 "or delete.  Coalescing applies as for the triggers (docs/applications.md)."},
	{"status", cmd_status, "ENTITY_TYPE ID", O_PROVIDER | O_JSON, 2, 2, 0,
	 "is this entity synced, and if not why",
	 "One block per provider: state (never_synced, pending, retrying, synced,\n"
	 "failed), the last error, the last attempt, the provider's id."},
	{"queue", cmd_queue, "", O_JSON, 0, 0, 0,
	 "pending entries by provider, operation and entity type", NULL},
	{"errors", cmd_errors, "", O_JSON, 0, 0, 0,
	 "pending entries whose last attempt failed, by error type and provider", NULL},
	{"failed", cmd_failed, "", O_LIMIT | O_JSON, 0, 0, 0,
	 "permanent failures, newest first",
	 "Lists entries processed with an error that no newer entry of the same\n"
	 "entity and provider has superseded.  Re-queue them with `retry`."},
	{"success-rate", cmd_success_rate, "", O_SINCE | O_JSON, 0, 0, 0,
	 "processed entries per provider: succeeded, failed, rate", NULL},
	{"retry", cmd_retry, "[QUEUE_ID]", O_USER | O_PROVIDER | O_JSON, 0, 1, 0,
	 "re-queue permanent failures: one entry, or a user's on a provider",
	 "  wsyncctl retry QUEUE_ID\n"
	 "  wsyncctl retry --user UUID --provider P   (after the user reconnected)\n\n"
	 "A fresh entry is queued through the usual rules; the failed one stays as\n"
	 "history.  record_not_found failures are skipped by --user."},
	{"prune", cmd_prune, "", O_OLDER | O_BATCH | O_JSON, 0, 0, 0,
	 "delete old processed entries (never pending ones), in batches", NULL},
	{"backfill", cmd_backfill, "", 0, 0, 0, 1,
	 "queue for a provider the workouts and upcoming schedules it never had", NULL},
	{"provider", cmd_provider, "list | disable NAME | enable NAME", O_JSON, 1, 2, 0,
	 "list providers and who serves them; stop or resume enqueueing for one",
	 "  wsyncctl provider list              who serves each provider, and if not, why\n"
	 "  wsyncctl provider disable NAME      stop enqueueing for NAME (an operator\n"
	 "                                      override: no wsyncd start or reload undoes it)\n"
	 "  wsyncctl provider enable NAME       clear the override\n\n"
	 "Entries already queued still run while a wsyncd serves the provider.  What\n"
	 "changed while it was disabled is not queued: run `backfill` after enabling\n"
	 "to queue what it never had."},
	{"plugins", cmd_plugins, "", 0, 0, 0, 1,
	 "list plugins and provider instances, and what would load", NULL},
	{"parse-workout", cmd_parse_workout, "", 0, 0, 0, 1,
	 "parse workout text and print the structured workout", NULL},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof *COMMANDS)

/* ---- messages ---------------------------------------------------------------------- */

static int usage_error(const ctl_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const ctl_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, PROG " %s: ", ctx->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " %s --help'.\n", ctx->cmd->name);
	return WSYNC_EXIT_USAGE;
}

static int runtime_error(const ctl_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int runtime_error(const ctl_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, PROG " %s: ", ctx->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return WSYNC_EXIT_RUNTIME;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [-c FILE] COMMAND [ARGS] [--json]\n"
		"       " PROG " --help | --version\n\n"
		"Operate wsync: sync status, the queue, retries, backfill, providers,\n"
		"migrations, plugins.\n\n"
		"commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-14s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
	fprintf(f,
		"\noptions:\n"
		"  -c, --config FILE  main configuration (default " WSYNC_DEFAULT_CONFIG ")\n"
		"      --insecure-files  skip the owner and write-mode checks of the\n"
		"                     configuration and plugin files (development only)\n"
		"  -h, --help         this help\n"
		"  -V, --version      print the version\n\n"
		"environment:\n"
		"  WSYNC_DATABASE_URL    overrides [database] conninfo; enough on its own when\n"
		"                        the default config file does not exist\n"
		"  WSYNC_MIGRATIONS_DIR  migrations directory for `migrate`\n\n"
		"exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n"
		"Run '" PROG " COMMAND --help' for a command's arguments and options.\n");
}

static void cmd_help(const ctl_cmd *cmd)
{
	printf("usage: " PROG " %s%s%s", cmd->name, *cmd->args ? " " : "", cmd->args);
	for (size_t i = 0; i < N_OPTDEFS; i++)
		if (cmd->opts & OPTDEFS[i].bit)
			printf(" [%s%s%s]", OPTDEFS[i].name, OPTDEFS[i].meta ? " " : "",
			       OPTDEFS[i].meta ? OPTDEFS[i].meta : "");
	printf("\n\n%c%s.\n", toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
	if (cmd->help)
		printf("\n%s\n", cmd->help);
	printf("\noptions:\n");
	for (size_t i = 0; i < N_OPTDEFS; i++) {
		char left[64];
		if (!(cmd->opts & OPTDEFS[i].bit))
			continue;
		snprintf(left, sizeof left, "%s%s%s", OPTDEFS[i].name, OPTDEFS[i].meta ? " " : "",
		         OPTDEFS[i].meta ? OPTDEFS[i].meta : "");
		printf("  %-22s %s\n", left, OPTDEFS[i].help);
	}
	printf("  %-22s %s\n", "-h, --help", "this help");
}

/* ---- argument parsing ------------------------------------------------------------------ */

static const optdef *find_opt(const char *arg, size_t *namelen)
{
	for (size_t i = 0; i < N_OPTDEFS; i++) {
		size_t n = strlen(OPTDEFS[i].name);
		if (!strncmp(arg, OPTDEFS[i].name, n) && (arg[n] == 0 || arg[n] == '=')) {
			*namelen = n;
			return &OPTDEFS[i];
		}
	}
	return NULL;
}

/* Options may come before, between or after the positional arguments.
 * Returns 0, -1 when --help was printed, or an exit code. */
static int parse_args(ctl_ctx *ctx, int argc, char **argv)
{
	ctl_opts *o = &ctx->o;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const optdef *d;
		size_t n;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cmd_help(ctx->cmd);
			return -1;
		}
		if (a[0] != '-' || !a[1]) {
			if (o->npos >= ctx->cmd->max_pos)
				return usage_error(ctx, "unexpected argument '%s'", a);
			o->pos[o->npos++] = argv[i];
			continue;
		}
		if (!(d = find_opt(a, &n)) || !(ctx->cmd->opts & d->bit))
			return usage_error(ctx, "unknown option '%s'", a);
		if (!d->meta) {
			if (a[n] == '=')
				return usage_error(ctx, "option %s takes no value", d->name);
			o->json = 1;
			continue;
		}
		if (a[n] == '=')
			*(const char **)((char *)o + d->off) = a + n + 1;
		else if (i + 1 < argc)
			*(const char **)((char *)o + d->off) = argv[++i];
		else
			return usage_error(ctx, "option %s needs a value (%s)", d->name, d->meta);
	}
	if (o->npos < ctx->cmd->min_pos)
		return usage_error(ctx, "missing arguments: expected %s", ctx->cmd->args);
	return 0;
}

static int arg_uuid(const ctl_ctx *ctx, const char *what, const char *s)
{
	if (wsync_uuid_valid(s))
		return 0;
	return usage_error(ctx, "malformed %s '%s': expected a UUID like " UUID_EXAMPLE, what, s);
}

static int arg_entity_type(const ctl_ctx *ctx, const char *s)
{
	if (!strcmp(s, "workout") || !strcmp(s, "workout_scheduled"))
		return 0;
	return usage_error(ctx, "unknown entity type '%s': expected workout or workout_scheduled",
	                   s);
}

static int arg_operation(const ctl_ctx *ctx, const char *s)
{
	if (!strcmp(s, "create") || !strcmp(s, "update") || !strcmp(s, "delete"))
		return 0;
	return usage_error(ctx, "unknown operation '%s': expected create, update or delete", s);
}

static int arg_count(const ctl_ctx *ctx, const char *opt, const char *s, long def, long *out)
{
	long long v;
	if (!s) {
		*out = def;
		return 0;
	}
	if (wsync_parse_int(s, 1, 1000000, &v) < 0)
		return usage_error(ctx, "%s '%s': expected an integer from 1 to 1000000", opt, s);
	*out = (long)v;
	return 0;
}

static int arg_duration(const ctl_ctx *ctx, const char *opt, const char *s, const char *def,
                        long *out)
{
	int v;
	if (wsync_parse_duration(s ? s : def, &v) < 0 || v <= 0)
		return usage_error(ctx, "%s '%s': expected a positive duration like 90m, 24h or 30d",
		                   opt, s);
	*out = v;
	return 0;
}

/* ---- configuration and database ----------------------------------------------------------- */

/* Load the configuration.  Without -c, a missing default file is fine when
 * WSYNC_DATABASE_URL is set (ctx->cfg stays NULL unless need_cfg).
 * Returns 0 or an exit code. */
static int ctl_config(ctl_ctx *ctx, int need_cfg)
{
	struct stat st;
	const char *env = getenv("WSYNC_DATABASE_URL");
	int missing = stat(ctx->config_path, &st) != 0;

	if (missing && !ctx->config_given && env && *env && !need_cfg)
		return 0;
	ctx->cfg = wsync_config_load(missing && !ctx->config_given && env && *env
	                                     ? NULL : ctx->config_path);
	if (!ctx->cfg) {
		fprintf(stderr, PROG ": out of memory\n");
		return WSYNC_EXIT_RUNTIME;
	}
	if (!wsync_config_ok(ctx->cfg)) {
		fputs(wsync_config_errors(ctx->cfg), stderr);
		if (missing && !ctx->config_given)
			fprintf(stderr, PROG ": no configuration at %s: use -c FILE or set "
			                "WSYNC_DATABASE_URL\n", ctx->config_path);
		return WSYNC_EXIT_USAGE;
	}
	return 0;
}

static int ctl_db(ctl_ctx *ctx)
{
	const char *conninfo;
	int rc;
	if (ctx->db)
		return 0;
	if ((rc = ctl_config(ctx, 0)))
		return rc;
	conninfo = ctx->cfg ? ctx->cfg->conninfo : getenv("WSYNC_DATABASE_URL");
	ctx->db = PQconnectdb(conninfo ? conninfo : "");
	if (PQstatus(ctx->db) != CONNECTION_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(ctx->db));
		msg[strcspn(msg, "\n")] = 0;
		return runtime_error(ctx, "cannot connect to the database: %s", msg);
	}
	/* Keep server NOTICEs (e.g. from migrations) off the operator's screen. */
	PQclear(PQexec(ctx->db, "SET client_min_messages = warning"));
	if (!(ctx->client = wsync_client_wrap(ctx->db)))
		return runtime_error(ctx, "out of memory");
	return 0;
}

/* Exit code for a failed query: class 22 SQLSTATEs are the caller's bad
 * arguments (the SQL API raises them). */
static int query_error(const ctl_ctx *ctx, const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	if (!msg)
		return runtime_error(ctx, "%s", PQerrorMessage(ctx->db));
	if (state && !strncmp(state, "22", 2))
		return usage_error(ctx, "%s", msg);
	if (state && (!strcmp(state, "42883") || !strcmp(state, "42P01")))
		return runtime_error(ctx, "%s (is the database migrated? run `" PROG " migrate`)",
		                     msg);
	return runtime_error(ctx, "%s", msg);
}

/* The provider must be a row of sync_providers. */
static int check_provider(ctl_ctx *ctx, const char *name)
{
	const char *p[1] = {name};
	PGresult *r;
	int rc = 0;
	if (!name)
		return 0;
	r = PQexecParams(ctx->db,
		"SELECT bool_or(name = $1), coalesce(string_agg(name, ', ' ORDER BY name), '')"
		" FROM sync_providers", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = query_error(ctx, r);
	else if (PQgetvalue(r, 0, 0)[0] != 't')
		rc = usage_error(ctx, "unknown provider '%s' (registered: %s)", name,
		                 *PQgetvalue(r, 0, 1) ? PQgetvalue(r, 0, 1) : "none");
	PQclear(r);
	return rc;
}

/* Map a client API failure to an exit code, printing its message. */
static int client_error(const ctl_ctx *ctx, int rc)
{
	if (rc == WSYNC_CLIENT_EINVAL)
		return usage_error(ctx, "%s", wsync_client_errmsg(ctx->client));
	return runtime_error(ctx, "%s", wsync_client_errmsg(ctx->client));
}

/* ---- output ------------------------------------------------------------------------------- */

/* Print a report result (text in `mode`, or JSON with --json); clears r. */
static int report(ctl_ctx *ctx, PGresult *r, wsync_out_mode mode)
{
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = query_error(ctx, r);
	else if (wsync_out_rows(stdout, r, ctx->o.json ? WSYNC_OUT_JSON : mode) < 0)
		rc = runtime_error(ctx, "out of memory");
	PQclear(r);
	return rc;
}

/* --json output of an action: one object, built by the caller, freed here. */
static int print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	                                                     JSON_C_TO_STRING_SPACED |
	                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 0;
}

static json_object *json_count(const char *key, long long n)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, key, json_object_new_int64(n));
	return o;
}

/* ---- commands ------------------------------------------------------------------------------ */

static int cmd_migrate(ctl_ctx *ctx, int argc, char **argv)
{
	const char *dir = ctx->o.dir ? ctx->o.dir : getenv("WSYNC_MIGRATIONS_DIR");
	struct stat st;
	char err[1024];
	int rc, n;
	(void)argc, (void)argv;
	if (!dir || !*dir)
		dir = WSYNC_DEFAULT_MIGRATIONS_DIR;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return usage_error(ctx, "migrations directory %s does not exist", dir);
	if ((rc = ctl_db(ctx)))
		return rc;
	if ((n = wsync_migrate(ctx->db, dir, ctx->o.json ? NULL : stdout, err, sizeof err)) < 0)
		return runtime_error(ctx, "%s", err);
	if (ctx->o.json) {
		json_object *o = json_count("applied", n);
		json_object_object_add(o, "dir", json_object_new_string(dir));
		return print_json(o);
	}
	if (n)
		printf("%d migration%s applied\n", n, n == 1 ? "" : "s");
	else
		printf("database schema is up to date\n");
	return 0;
}

static int cmd_enqueue(ctl_ctx *ctx, int argc, char **argv)
{
	char **p = ctx->o.pos;
	int rc, n = 0;
	(void)argc, (void)argv;
	if ((rc = arg_uuid(ctx, "USER_ID", p[0])) || (rc = arg_entity_type(ctx, p[1])) ||
	    (rc = arg_uuid(ctx, "ENTITY_ID", p[2])) || (rc = arg_operation(ctx, p[3])) ||
	    (rc = ctl_db(ctx)) || (rc = check_provider(ctx, ctx->o.provider)))
		return rc;
	rc = wsync_client_enqueue(ctx->client, p[0], p[1], p[2], p[3], ctx->o.provider, &n);
	if (rc)
		return client_error(ctx, rc);
	if (ctx->o.json)
		return print_json(json_count("written", n));
	if (n)
		printf("%d queue entr%s written\n", n, n == 1 ? "y" : "ies");
	else if (ctx->o.provider)
		printf("nothing queued: %s is not enabled for this user, or there was nothing "
		       "to do (a delete of something it never had)\n", ctx->o.provider);
	else
		printf("nothing queued: no provider is enabled for this user, or there was "
		       "nothing to do (a delete of something no provider has)\n");
	return 0;
}

static int cmd_status(ctl_ctx *ctx, int argc, char **argv)
{
	char **p = ctx->o.pos;
	int rc;
	(void)argc, (void)argv;
	if ((rc = arg_entity_type(ctx, p[0])) || (rc = arg_uuid(ctx, "ID", p[1])) ||
	    (rc = ctl_db(ctx)) || (rc = check_provider(ctx, ctx->o.provider)))
		return rc;
	return report(ctx, wsync_report_status(ctx->db, p[0], p[1], ctx->o.provider),
	              WSYNC_OUT_RECORDS);
}

static int cmd_queue(ctl_ctx *ctx, int argc, char **argv)
{
	int rc;
	(void)argc, (void)argv;
	if ((rc = ctl_db(ctx)))
		return rc;
	return report(ctx, wsync_report_queue(ctx->db), WSYNC_OUT_TABLE);
}

static int cmd_errors(ctl_ctx *ctx, int argc, char **argv)
{
	int rc;
	(void)argc, (void)argv;
	if ((rc = ctl_db(ctx)))
		return rc;
	return report(ctx, wsync_report_errors(ctx->db), WSYNC_OUT_TABLE);
}

static int cmd_failed(ctl_ctx *ctx, int argc, char **argv)
{
	long limit = 0;
	int rc;
	(void)argc, (void)argv;
	if ((rc = arg_count(ctx, "--limit", ctx->o.limit, 20, &limit)) || (rc = ctl_db(ctx)))
		return rc;
	return report(ctx, wsync_report_failed(ctx->db, limit), WSYNC_OUT_TABLE);
}

static int cmd_success_rate(ctl_ctx *ctx, int argc, char **argv)
{
	long since = 0;
	int rc;
	(void)argc, (void)argv;
	if ((rc = arg_duration(ctx, "--since", ctx->o.since, "24h", &since)) || (rc = ctl_db(ctx)))
		return rc;
	return report(ctx, wsync_report_success_rate(ctx->db, since), WSYNC_OUT_TABLE);
}

/* After `retry --user`, say so if the user still has to reconnect: the
 * re-queued entries would only fail with auth_error again. */
static void warn_reconnect(ctl_ctx *ctx)
{
	const char *p[2] = {ctx->o.user, ctx->o.provider};
	PGresult *r = PQexecParams(ctx->db,
		"SELECT needs_reconnect FROM provider_tokens WHERE user_id = $1::uuid"
		" AND provider = $2", 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && !PQntuples(r))
		fprintf(stderr, PROG " retry: warning: user %s has not connected %s "
		        "(no provider_tokens row): nothing can sync\n", p[0], p[1]);
	else if (PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't')
		fprintf(stderr, PROG " retry: warning: user %s still needs to reconnect %s "
		        "(provider_tokens.needs_reconnect): entries will fail with auth_error "
		        "again\n", p[0], p[1]);
	PQclear(r);
}

static int cmd_retry(ctl_ctx *ctx, int argc, char **argv)
{
	const ctl_opts *o = &ctx->o;
	int rc, n = 0;
	(void)argc, (void)argv;
	if (o->npos == 1 && (o->user || o->provider))
		return usage_error(ctx, "give either QUEUE_ID or --user and --provider, not both");
	if (o->npos == 0 && (!o->user || !o->provider))
		return usage_error(ctx, "give QUEUE_ID, or both --user UUID and --provider P");
	if (o->npos == 1) {
		if ((rc = arg_uuid(ctx, "QUEUE_ID", o->pos[0])) || (rc = ctl_db(ctx)))
			return rc;
		rc = wsync_client_retry(ctx->client, o->pos[0], &n);
	} else {
		if ((rc = arg_uuid(ctx, "--user", o->user)) || (rc = ctl_db(ctx)) ||
		    (rc = check_provider(ctx, o->provider)))
			return rc;
		rc = wsync_client_retry_failed(ctx->client, o->user, o->provider, &n);
		if (!rc)
			warn_reconnect(ctx);
	}
	if (rc)
		return client_error(ctx, rc);
	if (o->json)
		return print_json(json_count("requeued", n));
	printf("%d entr%s re-queued\n", n, n == 1 ? "y" : "ies");
	return 0;
}

static int cmd_prune(ctl_ctx *ctx, int argc, char **argv)
{
	long older = 0, batch = 0, batches = 0;
	long long n;
	char err[512];
	int rc;
	(void)argc, (void)argv;
	if ((rc = arg_duration(ctx, "--older-than", ctx->o.older_than, "30d", &older)) ||
	    (rc = arg_count(ctx, "--batch", ctx->o.batch, 1000, &batch)) || (rc = ctl_db(ctx)))
		return rc;
	if ((n = wsync_prune(ctx->db, older, batch, &batches, err, sizeof err)) < 0)
		return runtime_error(ctx, "%s", err);
	if (ctx->o.json) {
		json_object *o = json_count("deleted", n);
		json_object_object_add(o, "batches", json_object_new_int64(batches));
		json_object_object_add(o, "older_than_s", json_object_new_int64(older));
		return print_json(o);
	}
	printf("%lld processed entr%s deleted in %ld batch%s\n", n, n == 1 ? "y" : "ies",
	       batches, batches == 1 ? "" : "es");
	return 0;
}

/* `plugins --release NAME`: lift every node's quarantine of NAME. */
static int release_plugin(ctl_ctx *ctx, const char *name)
{
	const char *p[1] = {name};
	PGresult *r;
	int rc;
	if ((rc = ctl_db(ctx)) || (rc = check_provider(ctx, name)))
		return rc;
	r = PQexecParams(ctx->db, "SELECT wsync_provider_release($1)", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = query_error(ctx, r);
	} else if (!strcmp(PQgetvalue(r, 0, 0), "0")) {
		rc = runtime_error(ctx, "provider %s is not quarantined on any node", name);
	} else {
		printf("released %s on %s node%s: each starts the plugin again with its next "
		       "call\n", name, PQgetvalue(r, 0, 0), strcmp(PQgetvalue(r, 0, 0), "1") ? "s" : "");
	}
	PQclear(r);
	return rc;
}

/* The database, if it answers: `plugins` lists without it otherwise. */
static PGconn *quiet_db(const ctl_ctx *ctx)
{
	PGconn *db = PQconnectdb(ctx->cfg->conninfo ? ctx->cfg->conninfo : "");
	if (PQstatus(db) == CONNECTION_OK)
		return db;
	PQfinish(db);
	return NULL;
}

static int cmd_plugins(ctl_ctx *ctx, int argc, char **argv)
{
	PGconn *db;
	int rc;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help"))
			return wsync_ctl_plugins(NULL, NULL, argc, argv);
		if (!strcmp(argv[i], "--release")) {
			if (i + 1 >= argc || argv[i + 1][0] == '-' || argc != 3)
				return usage_error(ctx, "--release takes one provider name, alone");
			return release_plugin(ctx, argv[i + 1]);
		}
	}
	if ((rc = ctl_config(ctx, 1)))
		return rc;
	db = quiet_db(ctx);
	rc = wsync_ctl_plugins(ctx->cfg, db, argc, argv);
	PQfinish(db);
	return rc;
}

static int cmd_backfill(ctl_ctx *ctx, int argc, char **argv)
{
	wsync_backfill_args a;
	int rc = wsync_ctl_backfill_args(argc, argv, &a);
	if (rc == 0 && !(rc = ctl_db(ctx)))
		rc = wsync_ctl_backfill_run(ctx->db, &a);
	wsync_ctl_backfill_args_free(&a);
	return rc < 0 ? WSYNC_EXIT_OK : rc;
}

static int cmd_provider(ctl_ctx *ctx, int argc, char **argv)
{
	const char *verb = ctx->o.pos[0], *name = ctx->o.pos[1], *p[2];
	PGresult *r;
	int rc, disable;
	(void)argc, (void)argv;
	if (!strcmp(verb, "list")) {
		if (name)
			return usage_error(ctx, "unexpected argument '%s'", name);
		if ((rc = ctl_db(ctx)))
			return rc;
		return report(ctx, wsync_report_providers(ctx->db), WSYNC_OUT_TABLE);
	}
	if (strcmp(verb, "disable") && strcmp(verb, "enable"))
		return usage_error(ctx, "unknown action '%s': expected list, disable or enable",
		                   verb);
	if (!name)
		return usage_error(ctx, "missing provider NAME after %s", verb);
	if ((rc = ctl_db(ctx)) || (rc = check_provider(ctx, name)))
		return rc;
	disable = !strcmp(verb, "disable");
	p[0] = name, p[1] = disable ? "t" : "f";
	r = PQexecParams(ctx->db, "SELECT provider_name, queued, note"
	                 " FROM wsync_provider_set_disabled($1, $2::bool)",
	                 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		rc = query_error(ctx, r);
	} else if (ctx->o.json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "provider", json_object_new_string(name));
		json_object_object_add(o, "operator_disabled", json_object_new_boolean(disable));
		json_object_object_add(o, "queued",
		                       json_object_new_boolean(PQgetvalue(r, 0, 1)[0] == 't'));
		json_object_object_add(o, "not_served", PQgetisnull(r, 0, 2) ? NULL
		                       : json_object_new_string(PQgetvalue(r, 0, 2)));
		rc = print_json(o);
	} else if (disable) {
		printf("provider %s disabled by an operator: nothing new is queued for it; "
		       "entries already queued still run ('" PROG " provider enable %s' resumes "
		       "it)\n", name, name);
	} else if (PQgetvalue(r, 0, 1)[0] == 't') {
		printf("provider %s enabled: changes are queued for it again (run '" PROG
		       " backfill --provider %s' for what it missed)\n", name, name);
		if (!PQgetisnull(r, 0, 2))
			printf("note: %s\n", PQgetvalue(r, 0, 2));
	} else {
		printf("provider %s: operator override cleared, but nothing is queued for it: "
		       "%s\n", name, PQgetisnull(r, 0, 2) ? "disabled" : PQgetvalue(r, 0, 2));
	}
	PQclear(r);
	return rc;
}

static int cmd_parse_workout(ctl_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	return wsync_ctl_parse_workout(argc, argv);
}

/* ---- main ------------------------------------------------------------------------------------ */

static const ctl_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(COMMANDS[i].name, name))
			return &COMMANDS[i];
	return NULL;
}

/* Global options before the command.  Returns the index of the command
 * word, or -1 - exit code when done (help, version, error). */
static int global_options(ctl_ctx *ctx, int argc, char **argv)
{
	int i;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return -1 - WSYNC_EXIT_OK;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf(PROG " %s\n", WSYNC_VERSION);
			return -1 - WSYNC_EXIT_OK;
		}
		if (!strcmp(a, "--insecure-files")) {
			wsync_trust_set_insecure(1);
			fprintf(stderr, PROG ": WARNING: --insecure-files: configuration, "
			        "plugin and secret files are trusted whoever owns or can write "
			        "them; development only\n");
			continue;
		}
		if (!strncmp(a, "--config=", 9)) {
			ctx->config_path = a + 9;
		} else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			if (++i >= argc) {
				fprintf(stderr, PROG ": %s needs a FILE\n", a);
				return -1 - WSYNC_EXIT_USAGE;
			}
			ctx->config_path = argv[i];
		} else {
			fprintf(stderr, PROG ": unknown option '%s'\nTry '" PROG " --help'.\n", a);
			return -1 - WSYNC_EXIT_USAGE;
		}
		ctx->config_given = 1;
	}
	if (i >= argc) {
		usage(stderr);
		return -1 - WSYNC_EXIT_USAGE;
	}
	return i;
}

int main(int argc, char **argv)
{
	ctl_ctx ctx = {.config_path = WSYNC_DEFAULT_CONFIG};
	int i, rc;

	/* `plugins` starts each plugin in a process of its own, a fresh exec
	 * of this binary (host/isolate.h), as wsyncd does. */
	if (argc >= 2 && !strcmp(argv[1], "--plugin-host"))
		return wsync_plugin_host_main();
	i = global_options(&ctx, argc, argv);
	if (i < 0)
		return -1 - i;
	if (!(ctx.cmd = find_command(argv[i]))) {
		fprintf(stderr, PROG ": unknown command '%s'\nTry '" PROG " --help'.\n", argv[i]);
		return WSYNC_EXIT_USAGE;
	}
	if (ctx.cmd->raw) {
		rc = ctx.cmd->run(&ctx, argc - i, argv + i);
	} else {
		rc = parse_args(&ctx, argc - i, argv + i);
		if (rc == 0)
			rc = ctx.cmd->run(&ctx, argc - i, argv + i);
		else if (rc < 0)
			rc = WSYNC_EXIT_OK;
	}
	wsync_client_close(ctx.client);
	PQfinish(ctx.db);
	wsync_config_free(ctx.cfg);
	return rc;
}
