/*
 * wsync/testhost.h -- exercise a provider plugin without wsyncd or a database.
 *
 * libwsync-testhost (pkg-config: wsync-testhost) is for plugin AUTHORS and
 * their unit tests; plugins themselves never link it (they link nothing of
 * wsync's).  A test program:
 *
 *   1. loads the plugin .so with an INI text, exactly as wsyncd would load it
 *      from conf.d/ (same file checks, same validation order, same error
 *      messages, the same configuration checks against the plugin's schema),
 *      and init() runs;
 *   2. builds the entities an operation receives (the workout text is parsed
 *      by the core's own parser, as in wsyncd);
 *   3. calls an operation with a real `wsync_call`: host->http() really sends
 *      the request with the core's HTTP client to the INI's base_url (point
 *      it at a local test server) and classifies the answer as wsyncd does;
 *   4. reads back what happened: every log line, every HTTP exchange, and the
 *      outcome (status, message, retry-after, provider id).
 *
 * Differences from wsyncd, all on purpose:
 *   - no database: the access token is an in-memory string
 *     (wsync_testhost_set_token); there is no token refresh, so a 401
 *     answer is simply WSYNC_E_AUTH;
 *   - no rate limiter ([provider] rate_limit_per_minute, user_rate_limits
 *     and app_rate_limits are validated but not enforced);
 *   - no queue: one call is one operation.  The engine's rules around an
 *     operation are described (not applied) at wsync_testhost_call().
 *
 * Minimal use (error handling trimmed):
 *
 *   char err[1024];
 *   wsync_testhost *th = wsync_testhost_load("./myplugin.so",
 *       "[provider]\nplugin = myplugin\nbase_url = http://127.0.0.1:8080\n",
 *       err, sizeof err);
 *   const wsync_workout_entity *w = wsync_testhost_workout(th,
 *       &(wsync_workout_entity){.name = "Sweet spot",
 *                               .workout_text = "Main Set\n- 20m 90%\n"},
 *       err, sizeof err);
 *   int32_t st = wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
 *       &(wsync_testhost_request){.workout = w});
 *   const wsync_testhost_outcome *r = wsync_testhost_result(th);
 *   // st == r->status; r->provider_id, wsync_testhost_http_at(th, 0)->url ...
 *   wsync_testhost_free(th);
 *
 * OWNERSHIP: every pointer this API returns is owned by the test host and
 * stays valid until wsync_testhost_free() unless stated otherwise (results:
 * until the next call; records: until wsync_testhost_clear()).  Every
 * pointer passed in is borrowed for the duration of the function and copied
 * when kept.
 *
 * THREADING: one wsync_testhost is used from one thread at a time.  The
 * plugin itself may log from threads of its own; recording is locked.
 * Several test hosts may live in one process.
 *
 * ABI: this is a library API, not part of the plugin ABI.  It follows the
 * project version (semantic versioning) and is only ever extended.
 */
#ifndef WSYNC_TESTHOST_H
#define WSYNC_TESTHOST_H

#include <stddef.h>
#include <stdint.h>

#include "wsync/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wsync_testhost wsync_testhost;

/* ---------------------------------------------------------------------------
 * Loading.
 */

/*
 * Load the plugin at `so_path` as one instance configured by `ini_text`, and
 * run its init().
 *
 * The file must be named <plugin>.so, where <plugin> is the descriptor's
 * name (wsyncd loads <plugins dir>/<[provider] plugin>.so and insists on the
 * match).  The instance (provider) name is the same <plugin>.  `ini_text`
 * is the content of conf.d/<plugin>.ini; when it has no `[provider] plugin`
 * key, `plugin = <plugin>` is added (at the end, so line numbers in error
 * messages match your text).  NULL or "" means an INI with no keys.
 *
 * Internally the INI is written to a private temporary directory as
 * conf.d/<plugin>.ini next to a minimal wsyncd.ini whose plugin directory
 * is the .so's directory, and wsyncd's own configuration reader and plugin
 * loader run on it; the directory is removed before this function returns.
 * So the .so's directory must pass wsyncd's checks too (not writable by
 * group or others, unless sticky).
 *
 * Returns a new test host, or NULL with the reason in err (if err is not
 * NULL): configuration errors (".../conf.d/x.ini:3: [x] y: unknown key"),
 * refusals ("x.so: built for plugin ABI 1.1, this wsyncd speaks ABI 1.0;
 * ..."), a failed init().  Every log line (the loader's and the plugin's) is
 * also printed on stderr as wsyncd prints it, at info level and above, so
 * the lines a failed init() wrote are there.  Free with
 * wsync_testhost_free().
 */
wsync_testhost *wsync_testhost_load(const char *so_path, const char *ini_text,
                                    char *err, size_t errlen);

/* Call the plugin's destroy() (its log lines are still recorded), then
 * free everything the test host owns.  NULL is a no-op. */
void wsync_testhost_free(wsync_testhost *th);

/* The descriptor as wsyncd keeps it (a copy of the plugin's, zero-filled
 * past its struct_size): name, version, abi_major, abi_minor, flags... */
const wsync_plugin *wsync_testhost_plugin(const wsync_testhost *th);

/* The instance's configuration value as the plugin's config_get_string()
 * sees it (after defaults), or NULL. */
const char *wsync_testhost_config(const wsync_testhost *th, const char *section,
                                  const char *key);

/* The access token handed to operations (wsync_request.access_token) and
 * sent as "Authorization: Bearer <token>" by host->http() with auth = 1.
 * Copied.  Default "testhost-access-token"; NULL means the user has none
 * (wsyncd would not even call the plugin then: it answers auth_error). */
void wsync_testhost_set_token(wsync_testhost *th, const char *token);

/* Fix the clock every test host reports (host->now(), wsync_request.now)
 * to `unix_seconds`; 0 returns to the real clock.  Process-wide, because
 * host->now() has no context argument. */
void wsync_testhost_set_clock(int64_t unix_seconds);

/* ---------------------------------------------------------------------------
 * Answering HTTP without a server (unit tests of answer handling, fuzzing).
 */

/* One answer, filled in by a responder.  Zero-initialised before each call. */
typedef struct wsync_testhost_answer {
	int32_t status;          /* 100..999; anything else (0) means no answer
	                            arrived: a transport error, as when the
	                            connection is refused */
	int32_t reserved0;
	const char *headers;     /* "Name: value" lines, each ended by "\n" or
	                            "\r\n"; NULL for none */
	const char *body;        /* body_len bytes, may hold NULs; NULL: none */
	size_t body_len;
} wsync_testhost_answer;

/* Called for each host->http() of the plugin, on the calling thread, with
 * the URL the request would go to and the request as the plugin made it
 * (borrowed for the call).  What it sets in `answer` must stay valid until
 * the responder is called again or wsync_testhost_free(). */
typedef void (*wsync_testhost_responder)(void *ctx, const char *url,
                                         const wsync_http_request *req,
                                         wsync_testhost_answer *answer);

/*
 * From now on, answer host->http() with `fn` instead of the network (NULL:
 * the network again).  Only the socket is replaced: the request is checked
 * and built as usual (a request wsyncd would refuse to send is refused), and
 * the answer goes through the core's header capture (Retry-After,
 * X-RateLimit-Reset), size limits (8 MiB body, 100 KiB headers),
 * classification and masking of secrets, then into the recordings, as a
 * real answer would.  No server, no port, no thread: the cheapest way to
 * feed a plugin any answer, including malformed ones.
 */
void wsync_testhost_set_responder(wsync_testhost *th, wsync_testhost_responder fn,
                                  void *ctx);

/* ---------------------------------------------------------------------------
 * Entities.  Both return a new entity owned by the test host (valid until
 * wsync_testhost_free), with every string copied, or NULL with the reason
 * in err (if not NULL).
 */

/*
 * A workout entity from `fields`: id, user_id, name, description, sport,
 * workout_text and updated_at are taken from it; struct_size and structure
 * are ignored and set by the host.  workout_text is required and parsed with
 * the core's parser into `structure`; text the core cannot read is an error
 * ("line 2, col 5: ...") -- in wsyncd such a workout never reaches a plugin
 * (the entry fails with invalid_workout).  Defaults: id a new random UUID,
 * user_id WSYNC_TESTHOST_USER, updated_at the clock's now.
 */
const wsync_workout_entity *wsync_testhost_workout(wsync_testhost *th,
                                                   const wsync_workout_entity *fields,
                                                   char *err, size_t errlen);

/*
 * A scheduled-workout entity from `fields` (struct_size ignored).
 * scheduled_date ("YYYY-MM-DD") is required; scheduled_time may be NULL.
 * Defaults: id a new random UUID, user_id WSYNC_TESTHOST_USER, workout_id
 * the id of `workout` when given (may be NULL).
 */
const wsync_scheduled_entity *wsync_testhost_scheduled(wsync_testhost *th,
                                                       const wsync_scheduled_entity *fields,
                                                       const wsync_workout_entity *workout,
                                                       char *err, size_t errlen);

/* The user id used when none is given. */
#define WSYNC_TESTHOST_USER "00000000-0000-4000-8000-000000000001"

/* ---------------------------------------------------------------------------
 * Calling an operation.
 */

enum {
	WSYNC_TESTHOST_SYNC_WORKOUT = 0,
	WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT = 1,
	WSYNC_TESTHOST_DELETE_WORKOUT = 2,
	WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT = 3
};

/* What the engine would have loaded for a queue entry.  All borrowed for the
 * duration of wsync_testhost_call(); zero-initialise and set what applies. */
typedef struct wsync_testhost_request {
	const wsync_workout_entity *workout;     /* sync_workout: required;
	                                            sync_scheduled_workout: the
	                                            scheduled workout's workout,
	                                            required; deletes: not passed
	                                            on (wsyncd never loads the
	                                            entity of a delete), only its
	                                            user_id is used */
	const wsync_scheduled_entity *scheduled; /* sync_scheduled_workout:
	                                            required; otherwise not
	                                            passed on, as in wsyncd */
	const char *workout_provider_id;         /* the stored link of the
	                                            workout, or NULL */
	const char *scheduled_provider_id;       /* the stored link of the
	                                            scheduled workout, or NULL */
	const char *user_id;                     /* NULL: the entity's, else
	                                            WSYNC_TESTHOST_USER */
	int32_t attempt;                         /* 0 means 1 (first attempt) */
	int32_t reserved0;
} wsync_testhost_request;

/*
 * Call one operation of the plugin and return its status (WSYNC_OK,
 * WSYNC_NOT_APPLICABLE or WSYNC_E_*); the details are in
 * wsync_testhost_result().
 *
 * The wsync_request the plugin gets is built as wsyncd builds it:
 * operation is WSYNC_OP_DELETE for deletes, WSYNC_OP_UPDATE for a sync when
 * the entity's own provider id is set (workout_provider_id for
 * sync_workout, scheduled_provider_id for sync_scheduled_workout), else
 * WSYNC_OP_CREATE; provider is the instance name; access_token the test
 * host's token; queue_id a new UUID; now the clock; reconcile 0 and
 * external_key the entity's id (see wsync_testhost_call_reconcile).  The outcome is reset
 * before the call, and the returned status wins over a status recorded with
 * set_error() or by host->http(), as in wsyncd.  Serial plugins
 * (WSYNC_PLUGIN_SERIAL) are called under the instance's lock.
 *
 * Like wsyncd, the plugin is NOT called for a delete whose own provider id
 * is NULL (nothing was ever synced there): the result is
 * WSYNC_NOT_APPLICABLE with called = 0.  A request missing a required
 * entity is a mistake in the test: WSYNC_E_UNEXPECTED, called = 0, and a
 * message starting with "testhost:".
 *
 * The call goes through the daemon's own code (core/host/invoke.c), so the
 * outcome is classified exactly as wsyncd classifies it: WSYNC_E_NOT_FOUND
 * from a delete is WSYNC_OK (already gone); from an update, the operation
 * is called again at once as a create without the link (result.recreated
 * = 1, result.operation = WSYNC_OP_CREATE); from a create it stands
 * (provider_error).  Not applied here: a scheduled workout's workout is
 * not synced first when it has no link (call sync_workout yourself), and
 * nothing is stored.
 */
int32_t wsync_testhost_call(wsync_testhost *th, int32_t op,
                            const wsync_testhost_request *in);

/*
 * wsync_testhost_call() with the EXACTLY ONCE members of wsync_request (ABI
 * 1.1, see plugin.h) under the test's control, to play "an earlier attempt
 * may have reached the provider":
 *
 *   reconcile     copied to wsync_request.reconcile (non-zero: look up by
 *                 external_key before creating).  WSYNC_TESTHOST_ABI_1_0
 *                 plays a 1.0 host instead: struct_size ends before
 *                 `reconcile`, so WSYNC_HAS(req, reconcile) is false;
 *   external_key  wsync_request.external_key; NULL means what wsyncd passes:
 *                 the entity's id (the workout's for sync_workout, the
 *                 scheduled workout's for sync_scheduled_workout; for
 *                 deletes NULL).
 *
 * wsync_testhost_call(th, op, in) is wsync_testhost_call_reconcile(th, op,
 * in, 0, NULL).  Everything else is as wsync_testhost_call().
 */
#define WSYNC_TESTHOST_ABI_1_0 (-1)
int32_t wsync_testhost_call_reconcile(wsync_testhost *th, int32_t op,
                                      const wsync_testhost_request *in, int32_t reconcile,
                                      const char *external_key);

/* The outcome of the last wsync_testhost_call() (all zero before the
 * first).  Valid until the next call or wsync_testhost_free(). */
typedef struct wsync_testhost_outcome {
	int32_t status;          /* what the operation returned */
	int32_t called;          /* 1: the plugin's operation ran */
	int32_t operation;       /* the WSYNC_OP_* the plugin got (last) */
	int32_t recreated;       /* 1: an update answered WSYNC_E_NOT_FOUND
	                            was called again as a create, as wsyncd
	                            does (the old link is dropped) */
	const char *error_type;  /* the queue's error_type for status alone
	                            ("provider_error", "rate_limit", ...), NULL
	                            for WSYNC_OK and WSYNC_NOT_APPLICABLE */
	const char *message;     /* from set_error() or host->http()'s
	                            classification; never NULL ("" when none).
	                            As in wsyncd, an error status without a
	                            message gets "plugin X returned status N
	                            without a message" */
	int64_t retry_after_s;   /* from set_error() / host->http(), or 0 */
	const char *provider_id; /* from set_provider_id(), or NULL (whatever
	                            the status; wsyncd keeps it only on OK, and
	                            fails a create answered OK without one) */
} wsync_testhost_outcome;

const wsync_testhost_outcome *wsync_testhost_result(const wsync_testhost *th);

/* ---------------------------------------------------------------------------
 * Recordings.  Everything from wsync_testhost_load() on (init's log lines
 * included) is kept, in order, until wsync_testhost_clear().  Index i runs
 * from 0 to count - 1; _at() returns NULL past the end.  Records are valid
 * until wsync_testhost_clear() or wsync_testhost_free().
 */

typedef struct wsync_testhost_log {
	int32_t level;           /* WSYNC_LOG_* */
	int32_t reserved0;
	const char *text;        /* the formatted line, without the instance
	                            tag, timestamp or newline */
} wsync_testhost_log;

size_t wsync_testhost_log_count(const wsync_testhost *th);
const wsync_testhost_log *wsync_testhost_log_at(const wsync_testhost *th, size_t i);
/* The first recorded log line containing `needle`, or NULL. */
const wsync_testhost_log *wsync_testhost_log_find(const wsync_testhost *th,
                                                  const char *needle);

/* One host->http() call: the request as sent, the answer as received, and
 * the host's classification. */
typedef struct wsync_testhost_http {
	const char *method;                /* "GET", ... */
	const char *url;                   /* base_url + path (or the absolute
	                                      URL the plugin gave) */
	const wsync_http_header *headers;  /* the headers wsync sends, in order:
	                                      Content-Type (when set), the
	                                      plugin's own, User-Agent,
	                                      Authorization.  Every Authorization
	                                      value is masked: "Bearer *****" */
	size_t n_headers;
	const char *body;                  /* request body (NUL-terminated copy;
	                                      "" when none) */
	size_t body_len;
	int32_t status;                    /* HTTP status; 0 when no answer */
	int32_t classification;            /* what host->http() returned:
	                                      WSYNC_OK or WSYNC_E_* */
	const char *response_body;         /* NUL-terminated copy; "" when none */
	size_t response_body_len;
	int64_t retry_after_s;             /* parsed from the answer's headers */
	const char *error;                 /* transport error ("curl error 7
	                                      ..."), or "" */
} wsync_testhost_http;

size_t wsync_testhost_http_count(const wsync_testhost *th);
const wsync_testhost_http *wsync_testhost_http_at(const wsync_testhost *th, size_t i);
/* Value of header `name` (case-insensitive) of a recorded request, or NULL. */
const char *wsync_testhost_http_header(const wsync_testhost_http *h, const char *name);

/* Forget every recorded log line and HTTP exchange. */
void wsync_testhost_clear(wsync_testhost *th);

/* ---------------------------------------------------------------------------
 * Crashes and hangs.
 *
 * A plugin that crashes or never returns must not leave its author with a
 * bare "Segmentation fault" or a test that hangs until CI kills it.  Every
 * call the test host makes into the plugin -- init() (inside
 * wsync_testhost_load), each operation (wsync_testhost_call*) and destroy()
 * (inside wsync_testhost_free) -- is watched:
 *
 *   CRASH  SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT on the calling thread
 *          during such a call prints one line on stderr,
 *
 *            wsync-testhost: plugin acme (instance acme) crashed with
 *            signal 11 (SIGSEGV) in sync_workout
 *
 *          (one line; the operation is init, sync_workout,
 *          sync_scheduled_workout, delete_workout, delete_scheduled_workout
 *          or destroy).  Then the signal goes where it would have gone
 *          without the test host: to the handler installed before the first
 *          test host was created, if any (a sanitizer's stack trace, a
 *          fuzzer's crash file: they still come, after the line), else to
 *          the default action: the process dies of the same signal, so the
 *          exit status ("killed by signal 11") and a core dump are those of
 *          the fault itself.  A stack overflow is reported too: the calling
 *          thread gets an alternate signal stack for the call when it has
 *          none.  A crash anywhere else (in the test program, or on a thread
 *          the plugin started) gets no line, only that earlier handler or
 *          the default.
 *
 *   HANG   a call that has not returned after the call timeout (default 30
 *          s) prints
 *
 *            wsync-testhost: plugin acme (instance acme) did not return
 *            within 30 s in sync_workout
 *
 *          and the test host's watchdog thread calls abort(): the process
 *          is killed by SIGABRT (or an earlier SIGABRT handler runs first);
 *          a core dump shows every thread, the stuck one included.
 *
 * The handlers of those five signals are installed (sigaction) when the
 * first test host of the process is created and the previous ones are put
 * back when the last one is freed: install your own before the first
 * wsync_testhost_load(), not in between.  Debuggers see the signals first,
 * as usual.
 */

/*
 * Limit every later call into the plugin (each operation, destroy()) to
 * `seconds` of wall-clock time; 0 means no limit (e.g. while you step
 * through the plugin in a debugger).  The limit applies to one
 * wsync_testhost_call*() as a whole (an update re-created as a create
 * included).
 *
 * The default, also for the init() inside wsync_testhost_load(), is 30 s,
 * or the value of the environment variable WSYNC_TESTHOST_CALL_TIMEOUT
 * (whole seconds, 0 to 604800; anything else makes wsync_testhost_load()
 * fail with the reason), so a debugging session needs no rebuild:
 *   WSYNC_TESTHOST_CALL_TIMEOUT=0 gdb ./test_myplugin
 */
void wsync_testhost_set_call_timeout(wsync_testhost *th, uint32_t seconds);

#ifdef __cplusplus
}
#endif
#endif /* WSYNC_TESTHOST_H */
