/*
 * config.h -- wsyncd.ini and conf.d/<instance>.ini.
 *
 * Every core key is one row of a single table (wsync_core_keys()): its type,
 * bounds, default and help drive parsing, defaults and `wsyncd --check`, and
 * tests/config checks docs/configuration.md against it.  Files are read
 * bounded (regular files only, at most WSYNC_CONFIG_MAX_BYTES) by the core's
 * own INI reader, so lines have no length limit of their own.
 *
 * Every error names the file, the line, the key and what was expected; the
 * caller prints wsync_config_errors() and exits 2.  Environment overrides:
 *   WSYNC_DATABASE_URL             replaces [database] conninfo
 *   WORKOUT_SYNC_INTERVAL_MINUTES  replaces [engine] interval_minutes
 */
#ifndef WSYNC_CONFIG_H
#define WSYNC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define WSYNC_MAX_BACKOFF 16
#define WSYNC_MAX_APP_WINDOWS 8
/* A config file larger than this is refused (a /dev/zero or a log given by
 * mistake must fail fast, not fill memory). */
#define WSYNC_CONFIG_MAX_BYTES (1024 * 1024)

/* One key as read from a file, kept so the plugin loader can check plugin
 * keys against the plugin's schema and report their line. */
typedef struct wsync_config_entry {
	char *section;
	char *key;
	char *value;
	int line;
	int core;       /* 1: a key the core knows and has validated */
	char *secret;   /* for *_file secret keys: the file's content */
} wsync_config_entry;

typedef struct wsync_rate_window {
	int limit;        /* calls */
	int seconds;      /* per this many seconds */
} wsync_rate_window;

typedef struct wsync_provider_config {
	char *name;       /* instance name = file stem; the queue's provider */
	char *path;       /* conf.d/<name>.ini */
	char *plugin;     /* [provider] plugin */
	int enabled;
	char *base_url;
	int allow_insecure_http;                   /* http:// endpoints allowed */
	int rate_limit_per_minute;                 /* the 60 s window of user_windows
	                                              (0: none) */
	wsync_rate_window app_windows[WSYNC_MAX_APP_WINDOWS];
	int n_app_windows;                         /* app-wide, per provider */
	/* Per (user, provider): user_rate_limits, or rate_limit_per_minute/1m
	 * when that key is not set; distinct durations, at least one window. */
	wsync_rate_window user_windows[WSYNC_MAX_APP_WINDOWS];
	int n_user_windows;
	int connect_timeout_s;
	int timeout_s;
	char *ca_file;                             /* NULL: system CA store */
	char *token_url;                           /* [oauth]; NULL = no refresh */
	char *client_id;
	char *client_secret_file;
	char *client_secret;                       /* file content; never print */
	int call_timeout_s;                        /* plugin time per call (isolate.h) */
	int quarantine_after;                      /* crashes/hangs in the window; 0 never */
	int quarantine_window_s;
	wsync_config_entry *entries;
	size_t n_entries;
} wsync_provider_config;

typedef struct wsync_config {
	char *path;
	char *conninfo;
	int interval_minutes;
	int workers;
	int batch_size;
	int lease_seconds;
	int listen;
	int max_retries;
	int backoff_s[WSYNC_MAX_BACKOFF];
	int n_backoff;
	char *plugin_dir;
	char *conf_dir;
	int plugin_isolate;                        /* 1: a child process per instance */
	char *plugin_user;                         /* the children's user under root */
	int plugin_memory_limit_mb;                /* RLIMIT_AS of a child; 0 none */
	int log_level;                             /* WSYNC_LOG_* */
	char *metrics_listen;                      /* NULL or "" = off */
	wsync_provider_config *providers;
	size_t n_providers;
	char *errors;                              /* accumulated error lines */
} wsync_config;

/* ---- the core keys ---------------------------------------------------- */

typedef enum wsync_core_key_type {
	WSYNC_KEY_STRING,       /* any text */
	WSYNC_KEY_CONNINFO,     /* libpq conninfo or URI; printed masked */
	WSYNC_KEY_PATH,         /* relative to the folder of wsyncd.ini */
	WSYNC_KEY_INT,          /* integer from min to max */
	WSYNC_KEY_BOOL,         /* true/false, yes/no, on/off, 1/0 */
	WSYNC_KEY_BACKOFF,      /* comma list of durations */
	WSYNC_KEY_RATE_WINDOWS, /* comma list of N/duration; min..max windows; the
	                           count is the int right after the array */
	WSYNC_KEY_LOG_LEVEL,    /* debug, info, warning, error */
	WSYNC_KEY_URL,          /* https:// (http:// with allow_insecure_http) */
	WSYNC_KEY_SECRET_FILE,  /* path of a file holding a secret */
	WSYNC_KEY_LISTEN,       /* empty (off) or HOST:PORT, HOST an IP literal */
	WSYNC_KEY_FORBIDDEN,    /* always an error; help says what to do */
} wsync_core_key_type;

typedef enum wsync_core_key_scope {
	WSYNC_SCOPE_MAIN,       /* wsyncd.ini, fields of wsync_config */
	WSYNC_SCOPE_INSTANCE,   /* conf.d/<name>.ini, fields of wsync_provider_config */
} wsync_core_key_scope;

typedef struct wsync_core_key {
	wsync_core_key_scope scope;
	const char *section;
	const char *key;
	wsync_core_key_type type;
	long long min, max;     /* WSYNC_KEY_INT; RATE_WINDOWS: how many */
	const char *def;        /* default, as written in an INI; NULL: none */
	const char *doc_def;    /* the docs' default when `def` is build-dependent
	                           or absent but something else applies; NULL: derived */
	int required;
	size_t offset;          /* of the field in its struct */
	const char *help;       /* one line */
} wsync_core_key;

/* The table of every core key, in documentation order; static storage. */
const wsync_core_key *wsync_core_keys(size_t *n);
/* The default as docs/configuration.md shows it: "(required)", doc_def, def,
 * or "" when there is none.  Static storage. */
const char *wsync_core_key_shown_default(const wsync_core_key *k);

/* ---- loading -------------------------------------------------------------- */

/* Load `path` and every *.ini of its conf_dir.  Returns the config (never
 * NULL unless out of memory); check wsync_config_ok().  Caller frees. */
wsync_config *wsync_config_load(const char *path);
int wsync_config_ok(const wsync_config *cfg);
/* All errors, one per line ("file:line: ..."), or "" when none. */
const char *wsync_config_errors(const wsync_config *cfg);
/* Append an error line (printf-style) to cfg->errors. */
void wsync_config_error(wsync_config *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void wsync_config_free(wsync_config *cfg);

/* Find a provider instance by name, or NULL. */
const wsync_provider_config *wsync_config_provider(const wsync_config *cfg,
                                                   const char *name);
/* Find an entry of an instance, or NULL. */
const wsync_config_entry *wsync_config_entry_find(const wsync_provider_config *p,
                                                  const char *section,
                                                  const char *key);

/* Parsers shared with the plugin loader and tests.  Return 0 on success. */
int wsync_parse_bool(const char *s, int *out);
int wsync_parse_int(const char *s, long long min, long long max, long long *out);
/* "HOST:PORT" (IPv4, [IPv6] or localhost; port 0-65535, 0 = any free one)
 * into a numeric host and a port.  Returns 0, or -1 when malformed. */
int wsync_parse_listen(const char *s, char *host, size_t hostlen, int *port);

/* "90", "90s", "2m", "1h", "1d" -> seconds */
int wsync_parse_duration(const char *s, int *out);
/* "2m, 10m, 1h" */
int wsync_parse_backoff(const char *s, int *out, int max, int *n);
/* "200/5m, 1000/1h, 5000/1d" */
int wsync_parse_rate_windows(const char *s, wsync_rate_window *out, int max, int *n);
/* Read a secret file, refusing one that group or others can read, one that
 * is not a regular file, larger than 4 KiB, or holding a NUL byte.  Returns
 * the content without trailing white space (caller frees) or NULL with err. */
char *wsync_read_secret_file(const char *path, char *err, size_t errlen);

/* Print the effective configuration, secrets masked. */
void wsync_config_print(const wsync_config *cfg, void *file /* FILE* */);
/* A conninfo or postgresql:// URI rebuilt as keyword='value' pairs with every
 * password replaced by ****; "(unset)" for NULL, and a fixed text, never the
 * input, when libpq cannot parse it.  Caller frees. */
char *wsync_conninfo_masked(const char *conninfo);
/* Log a warning for every instance that talks clear-text http because of
 * allow_insecure_http (called when wsyncd starts and reloads). */
void wsync_config_warn_insecure(const wsync_config *cfg);

#endif
