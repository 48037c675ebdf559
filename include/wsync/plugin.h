/*
 * wsync/plugin.h -- the provider plugin ABI, version 1.
 *
 * A provider plugin is a shared object (`<name>.so`) that wsyncd loads from its
 * plugin directory with dlopen(RTLD_NOW | RTLD_LOCAL), in a process of the
 * plugin's own (see PROCESS below).  It exports exactly one
 * symbol, the entry function wsync_plugin_v1(), which returns a pointer to a
 * `static const wsync_plugin` descriptor.  Everything the plugin needs from the
 * host (logging, configuration, HTTP, error reporting, clock) reaches it through
 * the `wsync_host` table handed to init(): a plugin links against nothing of
 * wsync's, so it must be built with -fvisibility=hidden and -Wl,--no-undefined.
 *
 * This header is C99 with fixed-width types only (WSYNC_HAS uses the GNU
 * __typeof__ that gcc and clang accept in every mode; the layout asserts
 * need C11 and are skipped before it).  It includes no libcurl, json-c or
 * libpq type: what crosses the boundary is plain data.
 *
 * ---------------------------------------------------------------------------
 * VERSIONING POLICY
 *
 *   WSYNC_PLUGIN_ABI_MINOR goes up whenever a member is APPENDED to the end of
 *   wsync_plugin, wsync_host, wsync_request, wsync_http_request or
 *   wsync_http_response.  A plugin built against minor N loads in any host
 *   speaking minor >= N.  A plugin may test for newer host services with
 *   WSYNC_HAS(host, member) and degrade gracefully.
 *
 *   WSYNC_PLUGIN_ABI_MAJOR, and with it the NAME of the entry symbol
 *   (wsync_plugin_v1 -> wsync_plugin_v2), changes for any other change: a
 *   member moved, retyped or removed, a signature changed, or a change in
 *   meaning (ownership, threading, call order).  A host finding only an older
 *   entry symbol says which one and that the plugin must be rebuilt.
 *
 *   Members are never reordered, retyped or removed within a major.
 *
 * LIFECYCLE
 *
 *   1. wsync_plugin_v1() is called once after dlopen.  It must do nothing but
 *      return its descriptor: no allocation, threads or I/O.
 *   2. The host validates, in this order, and refuses the file with a message
 *      naming it at the first failure: dlopen error, missing entry symbol (any
 *      older wsync_plugin_vN found is named), magic, abi_major, struct_size,
 *      abi_minor, mandatory operations (the four sync/delete operations).
 *   3. For each conf.d/<instance>.ini whose `[provider] plugin` names this
 *      plugin, the host checks every key against the core keys and the
 *      plugin's config_keys schema, then calls init() once.  One plugin may
 *      serve several instances (a sandbox and a production account).
 *   4. Operations are called for queue entries (see THREADING).
 *   5. destroy() is called once per successful init(), after every call on
 *      that instance has returned.  The .so stays mapped until exit.
 *
 * THREADING
 *
 *   Operations may run concurrently on one instance from several worker
 *   threads, unless the descriptor's flags contain WSYNC_PLUGIN_SERIAL, in
 *   which case the host never overlaps two calls on one instance.
 *   init() and destroy() never overlap any call on the same instance.
 *   Every host service is thread-safe.  A plugin must not install signal
 *   handlers, call exit(), change process-wide state (locale, cwd, rlimits),
 *   or keep per-call state in static variables.  A plugin that starts threads
 *   joins them in destroy().
 *
 * PROCESS
 *
 *   wsyncd runs each instance's plugin in a process of its own (unless the
 *   operator sets [plugins] isolate = false): init(), the operations and
 *   destroy() run there, and host->http() is answered by wsyncd, which
 *   keeps the tokens, the rate limits and the database.  In that process a
 *   plugin cannot open sockets (socket(), connect() fail with EPERM), start
 *   programs, trace or signal other processes; it runs as the [plugins]
 *   user, with an address-space limit and no core dumps.  So: every
 *   network request goes through host->http(); state lives in memory and
 *   dies with the process (a crash or hang restarts it, calling init()
 *   again); files a plugin writes must be writable by that user.  A crash
 *   or hang costs only the entries whose calls were in flight in it.
 *
 * OWNERSHIP
 *
 *   Every pointer the host passes in is BORROWED: valid only until the
 *   function it was passed to returns, unless stated otherwise.  Everything a
 *   plugin hands back goes through host functions that COPY it (set_error,
 *   set_provider_id), so no memory crosses allocators.
 */
#ifndef WSYNC_PLUGIN_H
#define WSYNC_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "wsync/workout.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WSYNC_PLUGIN_MAGIC 0x57535943u /* "WSYC" */
#define WSYNC_PLUGIN_ABI_MAJOR 1
#define WSYNC_PLUGIN_ABI_MINOR 1

#if defined(__GNUC__)
#define WSYNC_EXPORT __attribute__((visibility("default")))
#define WSYNC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WSYNC_EXPORT
#define WSYNC_PRINTF(fmt, args)
#endif

/*
 * WSYNC_HAS(tbl, member): true when the struct `tbl` points to, as its
 * producer compiled it, is large enough to contain `member`.  Works on every
 * ABI struct that starts with `uint32_t struct_size`.  Use it before touching
 * any member added after the minor your code requires.
 */
#define WSYNC_HAS(tbl, member)                                                  \
	((tbl) != NULL && (tbl)->struct_size >=                                 \
	 offsetof(__typeof__(*(tbl)), member) + sizeof((tbl)->member))

/* ---------------------------------------------------------------------------
 * Status codes.  Every operation returns one of these; the host maps them to
 * the error_type stored in workout_sync_queue.
 */
enum {
	WSYNC_OK = 0,              /* done; a new provider id may have been set */
	WSYNC_NOT_APPLICABLE = 1,  /* nothing to do on this provider (e.g. no
	                              workout library): processed, no error */
	WSYNC_E_NOT_FOUND = 2,     /* the provider object is gone (HTTP 404,
	                              410).  The host decides by operation: see
	                              "HTTP CLASSIFICATION" below */
	WSYNC_E_RATE_LIMIT = 3,    /* retry no sooner than retry_after_s; does not
	                              use up a retry (error_type rate_limit) */
	WSYNC_E_AUTH = 4,          /* credentials refused: user must reconnect
	                              (auth_error, no retry) */
	WSYNC_E_PROVIDER = 5,      /* transient provider trouble: 5xx, timeout,
	                              reset, malformed answer (provider_error,
	                              retried with backoff) */
	WSYNC_E_INVALID = 6,       /* the provider rejected the request as wrong
	                              (400, 422, any 4xx without its own row
	                              below) or the plugin knows it would: not
	                              retried (error_type invalid_request) */
	WSYNC_E_UNEXPECTED = 7,    /* a bug or a state the plugin cannot handle
	                              (unexpected_error, retried with backoff) */
	WSYNC_E_INVALID_WORKOUT = 8 /* the workout cannot be expressed on this
	                              provider (too many steps, ...): permanent
	                              (error_type invalid_workout) */
};

/* ---------------------------------------------------------------------------
 * HTTP CLASSIFICATION -- the normative table.  What host->http() returns for
 * an answer, and what becomes of a queue entry whose operation returns that
 * status.  core/host/http/status.c implements the first two columns as data,
 * core/host/classify.c the other three; tests/engine/test_classify_ratelimit.c
 * reads the rows below from this file and checks every HTTP status from 100
 * to 599, a transport error and a refused request against the code.  Rows
 * are matched top to bottom.
 *
 *   answer          | status             | error_type       | retried | wait before the next attempt
 *   2xx             | WSYNC_OK           | -                | -       | -
 *   401             | WSYNC_E_AUTH       | auth_error       | no      | -
 *   403, 412        | WSYNC_E_AUTH       | auth_error       | no      | -
 *   404, 410        | WSYNC_E_NOT_FOUND  | provider_error   | backoff | backoff
 *   408             | WSYNC_E_PROVIDER   | provider_error   | backoff | Retry-After if longer, else backoff
 *   429             | WSYNC_E_RATE_LIMIT | rate_limit       | free    | Retry-After, else X-RateLimit-Reset, else 60 s
 *   other 4xx       | WSYNC_E_INVALID    | invalid_request  | no      | -
 *   5xx             | WSYNC_E_PROVIDER   | provider_error   | backoff | Retry-After if longer, else backoff
 *   transport error | WSYNC_E_PROVIDER   | provider_error   | backoff | backoff
 *   refused         | WSYNC_E_UNEXPECTED | unexpected_error | backoff | backoff
 *   other           | WSYNC_E_UNEXPECTED | unexpected_error | backoff | backoff
 *
 * retried: "no" -- processed at once, a permanent failure; "backoff" -- again
 * after [engine] backoff (2 min, 10 min, 1 h by default, +-10 %), each try
 * using up one of max_retries, then permanent; "free" -- again after the
 * wait without using up a retry.  wait: the delay host->http() reports in
 * retry_after_s and records on the call; Retry-After is delta-seconds or an
 * HTTP-date, X-RateLimit-Reset (read on a 429 only) seconds or a unix time,
 * both capped at a day.
 *
 *   401             With auth = 1 the host first refreshes the token and
 *                   repeats the request once; this row is the answer after
 *                   that (or the refresh's own failure, see below).
 *   auth_error      Every final WSYNC_E_AUTH of an entry -- a 401, 403 or
 *                   412 that stands, a refresh the token endpoint refuses,
 *                   no refresh token, no [oauth] token_url, or a plugin's
 *                   own WSYNC_E_AUTH -- sets provider_tokens.needs_reconnect
 *                   and the message says that the user must reconnect.
 *   404, 410        Before the status reaches the queue the core decides by
 *                   operation: delete_* -> success (already gone, the link
 *                   is dropped); sync_* with WSYNC_OP_UPDATE -> the link is
 *                   dropped and the operation called again at once with
 *                   WSYNC_OP_CREATE; sync_* with WSYNC_OP_CREATE -> the row
 *                   above (provider_error, retried).
 *   transport error No HTTP answer: timeout, connection refused or reset,
 *                   DNS, TLS (verification is always on), a truncated
 *                   answer, a body over 8 MiB, response headers over
 *                   100 KiB.
 *   refused         The host refused to send the request (CR or LF in a
 *                   header value or the token, an invalid method, a
 *                   relative path without base_url): a bug, not provider
 *                   trouble.
 *   other           1xx, 3xx (redirects are never followed: the message
 *                   says to check base_url) and statuses outside 100..599.
 *
 * The host's own rate limiter may answer WSYNC_E_RATE_LIMIT without sending
 * anything (a wait over 5 s): same row as a 429.  The body is not looked at:
 * a 2xx with an empty or malformed body is WSYNC_OK (a plugin that needs a
 * body returns WSYNC_E_PROVIDER itself).  The recorded message reads
 * "HTTP 503 from POST /v1/plans: <first 200 bytes of the body>" or
 * "POST /v1/plans failed: <transport error>": valid UTF-8 on one line, no
 * query string, and with the call's access token, refresh token and the
 * instance's client secret masked, as in every message and log line.
 */

/* Log levels for wsync_host.log. */
enum {
	WSYNC_LOG_DEBUG = 0,
	WSYNC_LOG_INFO = 1,
	WSYNC_LOG_WARNING = 2,
	WSYNC_LOG_ERROR = 3
};

/* Operations, as stored in workout_sync_queue.operation. */
enum { WSYNC_OP_CREATE = 0, WSYNC_OP_UPDATE = 1, WSYNC_OP_DELETE = 2 };

/* Descriptor flags. */
#define WSYNC_PLUGIN_SERIAL 0x1u /* never call two operations at once */

/* Opaque host objects.  Their pointers are valid as documented below. */
typedef struct wsync_instance wsync_instance; /* one configured instance;
                                                  valid from init to destroy */
typedef struct wsync_call wsync_call;         /* one operation call; valid
                                                  until the operation returns */
typedef struct wsync_json wsync_json;         /* a JSON writer (ABI 1.1);
                                                  owned by its call */
struct wsync_host;

/* ---------------------------------------------------------------------------
 * Declarative configuration schema.  The host parses the INI file and
 * rejects unknown keys, bad values and missing required keys with file, line
 * and key before init() runs.  Core keys ([provider] plugin, enabled,
 * base_url, rate_limit_per_minute, app_rate_limits, connect_timeout_seconds,
 * timeout_seconds, ca_file and the [oauth] section) are the host's; a plugin
 * declares only its own keys, in any section name of its choosing.
 */
enum {
	WSYNC_CONFIG_STRING = 0,
	WSYNC_CONFIG_INT = 1,    /* decimal, fits int64 */
	WSYNC_CONFIG_BOOL = 2,   /* true/false/yes/no/on/off/1/0 */
	WSYNC_CONFIG_SECRET = 3  /* the key names a file (key ends in _file); the
	                            host reads it, refuses one that others can
	                            read, and never prints its content */
};

typedef struct wsync_config_key {
	const char *section;       /* INI section, e.g. "provider" */
	const char *key;           /* key name */
	int32_t type;              /* WSYNC_CONFIG_* */
	int32_t required;          /* 1: missing key is a configuration error */
	const char *default_value; /* used when absent; NULL = none */
	const char *help;          /* one line, shown by `wsyncd --check` */
} wsync_config_key;

/* ---------------------------------------------------------------------------
 * Entities handed to operations.  All strings are NUL-terminated UTF-8,
 * borrowed for the duration of the call.  NULL means "not set".
 */
typedef struct wsync_workout_entity {
	uint32_t struct_size;
	uint32_t reserved0;
	const char *id;            /* workouts.id, UUID text */
	const char *user_id;       /* UUID text */
	const char *name;
	const char *description;
	const char *sport;         /* e.g. "bike", "run", free text */
	const char *workout_text;  /* the source text */
	const wsync_workout *structure; /* parsed workout_text; never NULL for
	                                   sync operations */
	int64_t updated_at;        /* unix seconds */
} wsync_workout_entity;

typedef struct wsync_scheduled_entity {
	uint32_t struct_size;
	uint32_t reserved0;
	const char *id;            /* workouts_scheduled.id */
	const char *user_id;
	const char *workout_id;
	const char *scheduled_date; /* "YYYY-MM-DD" */
	const char *scheduled_time; /* "HH:MM:SS" or NULL (any time that day) */
} wsync_scheduled_entity;

/*
 * One operation's input.
 *
 * sync_workout:            workout set, scheduled NULL.
 * sync_scheduled_workout:  scheduled and workout (its workout) set.  The host
 *                          has already synced the workout first, so
 *                          workout_provider_id is set when the provider keeps
 *                          a workout library.
 * delete_*:                the entity may already be gone: rely on the
 *                          provider ids, not on workout/scheduled (may be
 *                          NULL).
 *
 * operation is WSYNC_OP_CREATE when this entity has no link on this provider
 * yet, WSYNC_OP_UPDATE when it has one (the host turns a create for something
 * already linked into an update), WSYNC_OP_DELETE for deletes.
 *
 * EXACTLY ONCE (ABI 1.1).  Before every operation the host durably records
 * that the call is starting (the entry's intent).  When the process dies, the
 * database goes away or the answer is ambiguous (a timeout, a reset, a 5xx, a
 * 2xx without a usable id) after that point, the provider may or may not hold
 * the object.  The next attempt then arrives with `reconcile` set: a CREATE
 * must first look the object up by `external_key` (the key it sent when
 * creating: Wahoo's plan[external_id], workout[workout_token]) and adopt it
 * with set_provider_id() when found, creating only when the provider
 * certainly has none.  A provider with no documented lookup says so in its
 * README; its exposure is limited to the one call that was in flight.
 * An attempt that handed no request to host->http() (deferred by the host's
 * rate limiter, say) cannot have reached the provider and leaves no intent.
 * Never rely on the provider rejecting a duplicate.  Test for the members
 * with WSYNC_HAS(req, reconcile): a 1.0 host does not pass them.
 */
typedef struct wsync_request {
	uint32_t struct_size;
	int32_t operation;                 /* WSYNC_OP_* */
	const char *queue_id;              /* workout_sync_queue.id, for logs */
	const char *provider;              /* instance name (conf.d file stem) */
	const char *user_id;
	const char *access_token;          /* current OAuth access token or NULL;
	                                      the host adds it to HTTP calls made
	                                      with auth = 1, refreshing it when
	                                      needed: plugins rarely read it */
	const wsync_workout_entity *workout;
	const wsync_scheduled_entity *scheduled;
	const char *workout_provider_id;   /* link of the workout, or NULL */
	const char *scheduled_provider_id; /* link of the scheduled workout */
	int32_t attempt;                   /* 1 for the first attempt */
	int32_t reserved0;
	int64_t now;                       /* unix seconds when the call began */
	/* ABI 1.1 */
	int32_t reconcile;                 /* non-zero: an earlier attempt of this
	                                      entry may have reached the provider;
	                                      look up by external_key before a
	                                      create (see EXACTLY ONCE above) */
	int32_t reserved1;
	const char *external_key;          /* stable key of the entity across
	                                      attempts and entries: the workout's
	                                      or scheduled workout's id (a UUID) */
	/* ABI 1.1: the host, reachable from every operation.  A plugin that
	 * needs nothing but host services keeps no state and has no init():
	 * `req->host->http(call, ...)`, `req->host->log(req->instance, ...)`.
	 * The instance's state (what init() stored) is the operation's first
	 * argument.  Both pointers stay valid until destroy(). */
	const struct wsync_host *host;     /* the table init() got */
	const wsync_instance *instance;    /* the instance this call is for */
} wsync_request;

/* ---------------------------------------------------------------------------
 * HTTP through the host.  The host owns the connection (libcurl, one
 * keep-alive handle per worker thread), TLS verification (always on), the
 * timeouts and proxy settings of the instance, the User-Agent, the rate
 * limiter, the bearer token and its refresh on 401, and the classification of
 * the answer.
 */
typedef struct wsync_http_header {
	const char *name;
	const char *value;
} wsync_http_header;

typedef struct wsync_http_request {
	uint32_t struct_size;
	int32_t auth;               /* 1: send "Authorization: Bearer <token>"
	                               and refresh/retry once on 401 */
	const char *method;         /* "GET", "POST", "PUT", "DELETE" */
	const char *path;           /* appended to [provider] base_url, e.g.
	                               "/v1/plans/42"; or an absolute https:// URL */
	const char *content_type;   /* NULL when there is no body */
	const char *body;           /* borrowed; may contain NULs */
	size_t body_len;
	const wsync_http_header *headers; /* extra headers, borrowed */
	uint32_t n_headers;
	uint32_t reserved0;
} wsync_http_request;

typedef struct wsync_http_response {
	uint32_t struct_size;
	int32_t http_status;        /* 0 when no answer arrived */
	const char *body;           /* host-owned, NUL-terminated copy of the
	                               body; valid until the next http() call of
	                               this operation (any response struct) or the
	                               end of the operation: copy what you keep */
	size_t body_len;
	int64_t retry_after_s;      /* from Retry-After (any status), else from
	                               X-RateLimit-Reset (429 only), or 0 */
} wsync_http_response;

/* ---------------------------------------------------------------------------
 * Host services, handed to init().  Append-only; test for members newer than
 * minor 0 with WSYNC_HAS(host, member).  The pointer stays valid until
 * destroy() returns.
 */
typedef struct wsync_host {
	uint32_t struct_size;
	uint16_t abi_major;
	uint16_t abi_minor;
	const char *host_version;   /* e.g. "0.1.0" */

	/* Log a line tagged with the instance name.  Never log tokens or secrets. */
	void (*log)(const wsync_instance *inst, int32_t level, const char *fmt, ...)
		WSYNC_PRINTF(3, 4);

	/* Configuration values of this instance, after validation and defaults.
	 * config_get_string returns a host-owned string valid until destroy(), or
	 * NULL when the key is absent and has no default.  The int and bool
	 * getters return `fallback` when the key is absent. */
	const char *(*config_get_string)(const wsync_instance *inst,
	                                 const char *section, const char *key);
	int64_t (*config_get_int)(const wsync_instance *inst, const char *section,
	                          const char *key, int64_t fallback);
	int32_t (*config_get_bool)(const wsync_instance *inst, const char *section,
	                           const char *key, int32_t fallback);

	/* Perform an HTTP request.  Returns WSYNC_OK for a 2xx answer, otherwise
	 * the host's classification (WSYNC_E_*, the table "HTTP CLASSIFICATION"
	 * above) and records it on the call as if set_error() had been called:
	 * a plugin that agrees just returns it, one that knows better calls
	 * set_error() and returns its own status. */
	int32_t (*http)(wsync_call *call, const wsync_http_request *req,
	                wsync_http_response *resp);

	/* Record the outcome's class and message (copied; at most 1 KiB kept).
	 * retry_after_s > 0 asks for the next attempt no sooner than that.
	 * Returns `status`, so `return host->set_error(call, ...)` reads well. */
	int32_t (*set_error)(wsync_call *call, int32_t status, int64_t retry_after_s,
	                     const char *fmt, ...) WSYNC_PRINTF(4, 5);

	/* Record the provider's id for the entity just created (copied).  A
	 * create that returns WSYNC_OK must call it: wsyncd fails a create
	 * answered WSYNC_OK without an id as unexpected_error and never
	 * retries it (the provider may hold an object it cannot link). */
	void (*set_provider_id)(wsync_call *call, const char *provider_id);

	/* Wall-clock time, unix seconds. */
	int64_t (*now)(void);

	/* Base64 (RFC 4648, with padding) of `len` bytes into a malloc'ed,
	 * NUL-terminated string the caller frees with free_string. */
	char *(*base64_encode)(const void *data, size_t len);
	void (*free_string)(char *s);

	/* ABI 1.1 ---------------------------------------------------------
	 * Test for these with WSYNC_HAS(host, json_begin) (a 1.0 host has
	 * none).  Everything below that returns a pointer returns memory the
	 * CALL owns: valid until the operation returns, never freed by the
	 * plugin.  None of them fails on valid input; out of memory ends the
	 * operation with WSYNC_E_UNEXPECTED recorded on the call. */

	/* JSON body writer (RFC 8259).  json_begin opens the top-level object;
	 * each value call adds one member `key` (inside an array the key is
	 * ignored: pass NULL).  Strings are escaped (quote, backslash, control
	 * characters; invalid UTF-8 becomes U+FFFD); a NULL string is `null`;
	 * a number that is not finite is `null`.  json_open starts a nested
	 * object (array = 0) or array (array = 1), json_close ends the
	 * innermost one.  json_end closes whatever is still open and returns
	 * the text (its length in *len when len is not NULL). */
	wsync_json *(*json_begin)(wsync_call *call);
	void (*json_string)(wsync_json *j, const char *key, const char *value);
	void (*json_int)(wsync_json *j, const char *key, int64_t value);
	void (*json_number)(wsync_json *j, const char *key, double value);
	void (*json_bool)(wsync_json *j, const char *key, int32_t value);
	void (*json_open)(wsync_json *j, const char *key, int32_t array);
	void (*json_close)(wsync_json *j);
	const char *(*json_end)(wsync_json *j, size_t *len);

	/* Read one member of a JSON text (typically resp.body): `path` is
	 * dot-separated member names and array indexes ("id", "data.0.id").
	 * A string member is returned as its text, a number as its decimal
	 * text as written ("77", "12.5": never the empty string that json-c's
	 * json_object_get_string_len gives a number), true/false as "true"
	 * and "false".  NULL when the text is not JSON, the member is absent,
	 * null, an object or an array.  json_length gives the number of
	 * elements of the array (or members of the object) at `path` ("" is
	 * the whole text), -1 when there is none. */
	const char *(*json_get)(wsync_call *call, const char *json, size_t len,
	                        const char *path);
	int64_t (*json_length)(wsync_call *call, const char *json, size_t len,
	                       const char *path);

	/* `s` percent-encoded for use as ONE path segment: every byte but the
	 * RFC 3986 unreserved ones (A-Z a-z 0-9 - . _ ~) becomes %XX, so an id
	 * from a provider's answer can never add "/", "?", "#" or "..". */
	const char *(*path_segment)(wsync_call *call, const char *s);

	/* At most `max` bytes of `text` (len bytes, may contain NULs) as one
	 * line of valid UTF-8 -- what belongs in a message: control bytes
	 * become spaces, invalid bytes '?', no character is cut in half.
	 * set_error() applies the same cleaning to every message. */
	const char *(*excerpt)(wsync_call *call, const char *text, size_t len,
	                       size_t max);
} wsync_host;

/* ---------------------------------------------------------------------------
 * The descriptor.  The first four members are frozen forever.
 */
typedef int32_t (*wsync_operation_fn)(void *state, wsync_call *call,
                                      const wsync_request *req);

typedef struct wsync_plugin {
	uint32_t magic;             /* WSYNC_PLUGIN_MAGIC */
	uint16_t abi_major;         /* WSYNC_PLUGIN_ABI_MAJOR */
	uint16_t abi_minor;         /* WSYNC_PLUGIN_ABI_MINOR */
	uint32_t struct_size;       /* sizeof(wsync_plugin) */
	uint32_t flags;             /* WSYNC_PLUGIN_* */

	const char *name;           /* plugin name; matches `[provider] plugin` */
	const char *version;        /* the plugin's own version, e.g. "1.2.0" */
	const char *description;    /* one line */

	const wsync_config_key *config_keys; /* static array, may be NULL */
	uint32_t n_config_keys;
	uint32_t reserved0;

	/* Optional.  Create the instance's state in *state_out (may stay NULL).
	 * inst identifies the instance in host calls until destroy().  Return
	 * WSYNC_OK, or another status after logging why: the instance is then
	 * refused and the others still load.  Return WSYNC_E_INVALID for a
	 * configuration value the schema cannot check (a range, a choice): the
	 * host reports it as a configuration error (`wsyncd --check` exits 2). */
	int32_t (*init)(const wsync_host *host, const wsync_instance *inst,
	                void **state_out);
	/* Optional.  Free what init() made. */
	void (*destroy)(void *state);

	/* Mandatory.  Return WSYNC_NOT_APPLICABLE for an operation that does not
	 * exist on this provider. */
	wsync_operation_fn sync_workout;
	wsync_operation_fn sync_scheduled_workout;
	wsync_operation_fn delete_workout;
	wsync_operation_fn delete_scheduled_workout;
} wsync_plugin;

/* The entry point every plugin defines:
 *
 *   WSYNC_EXPORT const wsync_plugin *wsync_plugin_v1(void) { return &desc; }
 */
typedef const wsync_plugin *(*wsync_plugin_entry_v1)(void);
WSYNC_EXPORT const wsync_plugin *wsync_plugin_v1(void);

/*
 * WSYNC_PLUGIN_DESCRIPTOR(...) -- the descriptor and the entry point in one
 * line, as PostgreSQL's PG_MODULE_MAGIC: the four frozen members (magic,
 * abi_major, abi_minor, struct_size) are filled from the headers the plugin
 * is compiled against; the arguments are the other members, designated:
 *
 *   WSYNC_PLUGIN_DESCRIPTOR(.name = "acme", .version = "1.0.0",
 *                           .sync_workout = sync_workout, ...)
 *
 * Use it once, at file scope.  It defines wsync_plugin_v1().
 */
#define WSYNC_PLUGIN_DESCRIPTOR(...)                                            \
	static const wsync_plugin wsync_plugin_descriptor_ = {                  \
		.magic = WSYNC_PLUGIN_MAGIC,                                    \
		.abi_major = WSYNC_PLUGIN_ABI_MAJOR,                            \
		.abi_minor = WSYNC_PLUGIN_ABI_MINOR,                            \
		.struct_size = sizeof(wsync_plugin),                            \
		__VA_ARGS__};                                                   \
	WSYNC_EXPORT const wsync_plugin *wsync_plugin_v1(void)                  \
	{                                                                       \
		return &wsync_plugin_descriptor_;                               \
	}

/* ---------------------------------------------------------------------------
 * Layout pins (x86-64 / aarch64 LP64).  A failing assert means the ABI moved:
 * that needs a new major, not a quiet rebuild.
 */
#if defined(__LP64__) && !defined(__cplusplus) && __STDC_VERSION__ >= 201112L
_Static_assert(offsetof(wsync_plugin, magic) == 0, "frozen");
_Static_assert(offsetof(wsync_plugin, abi_major) == 4, "frozen");
_Static_assert(offsetof(wsync_plugin, abi_minor) == 6, "frozen");
_Static_assert(offsetof(wsync_plugin, struct_size) == 8, "frozen");
_Static_assert(offsetof(wsync_plugin, name) == 16, "ABI v1 layout");
_Static_assert(offsetof(wsync_plugin, init) == 56, "ABI v1 layout");
_Static_assert(offsetof(wsync_plugin, delete_scheduled_workout) == 96,
               "ABI v1 layout");
_Static_assert(sizeof(wsync_plugin) == 104, "ABI v1 layout");
_Static_assert(sizeof(wsync_config_key) == 40, "ABI v1 layout");
_Static_assert(sizeof(wsync_workout_entity) == 72, "ABI v1 layout");
_Static_assert(sizeof(wsync_scheduled_entity) == 48, "ABI v1 layout");
_Static_assert(offsetof(wsync_request, now) == 80, "ABI v1 layout");
_Static_assert(offsetof(wsync_request, reconcile) == 88, "ABI v1.1 layout");
_Static_assert(offsetof(wsync_request, host) == 104, "ABI v1.1 layout");
_Static_assert(sizeof(wsync_request) == 120, "ABI v1.1 layout");
_Static_assert(sizeof(wsync_http_header) == 16, "ABI v1 layout");
_Static_assert(sizeof(wsync_http_request) == 64, "ABI v1 layout");
_Static_assert(sizeof(wsync_http_response) == 32, "ABI v1 layout");
_Static_assert(offsetof(wsync_host, log) == 16, "ABI v1 layout");
_Static_assert(offsetof(wsync_host, free_string) == 88, "ABI v1 layout");
_Static_assert(offsetof(wsync_host, json_begin) == 96, "ABI v1.1 layout");
_Static_assert(sizeof(wsync_host) == 192, "ABI v1.1 layout");
#endif

#ifdef __cplusplus
}
#endif
#endif /* WSYNC_PLUGIN_H */
