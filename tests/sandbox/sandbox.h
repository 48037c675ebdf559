/*
 * wsync-sandbox: a local stand-in for the Wahoo, Garmin and TrainingPeaks APIs.
 * Shared declarations for sandbox.c (HTTP, control API, faults), sb_util.c,
 * sb_oauth.c, sb_wahoo.c, sb_garmin.c and sb_tp.c.
 *
 * Locking: one global mutex (g_lock) protects every piece of shared state
 * (store, tokens, settings, faults, request log, stats).  Functions named
 * *_locked expect the caller to hold it; all others take it themselves.
 */
#ifndef WSYNC_SANDBOX_H
#define WSYNC_SANDBOX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtok_r, SOCK_CLOEXEC, strcasecmp, nanosleep */
#endif

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdatomic.h>

#include <json-c/json.h>
#include <microhttpd.h>

#define SB_MAX_BODY        (4u * 1024u * 1024u)   /* request bodies; 413 beyond */
#define SB_MAX_OBJECTS     5000                   /* per collection; 507 beyond */
#define SB_MAX_STORE_BYTES (256u * 1024u * 1024u) /* all collections together */
#define SB_MAX_SEGS        16
#define SB_MAX_HDRS        24

enum {
    SB_P_WAHOO = 1,
    SB_P_GARMIN = 2,
    SB_P_TP = 4,
    SB_P_ALL = 7,
};

/* Garmin schedule-create answer shapes. */
enum {
    SB_SHAPE_NUMBER = 0,
    SB_SHAPE_WORKOUT_SCHEDULE_ID,
    SB_SHAPE_SCHEDULE_ID,
    SB_SHAPE_ID,
};

typedef struct sb_settings {
    bool accept_any_token;
    int garmin_schedule_shape;
    bool require_permission;
    char *client_id;      /* NULL: any non-empty client_id is accepted */
    char *client_secret;  /* NULL: not checked */
    long token_expires_in;
    long refresh_delay_ms;
    long long user_id;    /* default user / athlete / owner id */
    char today[11];       /* "" = real UTC date */
    bool tp_premium;
    long wahoo_rate_limits[3]; /* day, hour, 5 min */
    bool enforce_rate_limits;
    int wahoo_create_status;
    long latency_ms[2];   /* every API answer takes min..max ms (uniform) */
} sb_settings;

typedef struct sb_stats {
    long long requests;
    long long refreshes;
    long long refresh_ok;
    long long refresh_failed;
    int refresh_inflight;
    int max_concurrent_refreshes;
    long long faults_applied;
    long long unauthorized;
} sb_stats;

typedef struct sb_header {
    char *name;
    char *value;
} sb_header;

typedef struct sb_reply {
    int status;
    char *body;           /* malloc'd, may be NULL */
    size_t len;
    char ctype[64];
    sb_header hdr[SB_MAX_HDRS];
    int nhdr;
} sb_reply;

typedef struct sb_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *body;     /* NUL-terminated copy, never NULL */
    size_t body_len;
    const char *ctype;    /* Content-Type header or NULL */
    char *pathbuf;
    const char *seg[SB_MAX_SEGS];
    int nseg;             /* -1 when the path has too many segments */
} sb_req;

typedef struct sb_auth {
    bool ok;
    long long user_id;
    bool perm_workout_import;
    json_object *permissions; /* new reference or NULL */
    char reason[96];
} sb_auth;

/* A stored object: the API representation plus sandbox-only extras. */
typedef struct sb_obj {
    long long id;
    long long owner;
    json_object *o;       /* what the API returns */
    json_object *x;       /* extras shown only in /_sandbox/store (may be NULL) */
    char *blob;           /* raw payload (e.g. decoded Wahoo plan file) */
    size_t blob_len;
    size_t acct;          /* bytes accounted against SB_MAX_STORE_BYTES */
} sb_obj;

typedef struct sb_coll {
    sb_obj *v;
    size_t n, cap;
} sb_coll;

/* ---- globals (sandbox.c) ---- */
extern pthread_mutex_t g_lock;
extern sb_settings g_settings;
extern sb_stats g_stats;
extern int g_providers;
extern unsigned g_port;
extern bool g_tls;
extern atomic_int g_stop;
extern size_t g_store_bytes;

void sb_settings_defaults_locked(void);
void sb_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- util (sb_util.c) ---- */
void *sb_xmalloc(size_t n);
void *sb_xrealloc(void *p, size_t n);
char *sb_xstrdup(const char *s);
char *sb_xstrndup(const char *s, size_t n);

void sb_reply_reset(sb_reply *r);
void sb_reply_header(sb_reply *r, const char *name, const char *value);
bool sb_reply_has_header(const sb_reply *r, const char *name);
void sb_reply_raw(sb_reply *r, int status, const char *ctype, const char *body, size_t len);
void sb_reply_json(sb_reply *r, int status, json_object *o); /* consumes o */
void sb_reply_error(sb_reply *r, int status, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
char *sb_json_text(json_object *o); /* malloc'd compact text */
const char *sb_status_text(int status);

json_object *sb_json_parse_strict(const char *s, size_t len, char *err, size_t errlen);
bool sb_utf8_valid(const char *s, size_t len);
size_t sb_utf8_chars(const char *s);
size_t sb_base64_decode(const char *in, size_t inlen, char **out); /* SIZE_MAX on error */
char *sb_base64_encode(const char *in, size_t len);
bool sb_ctype_is(const char *ctype, const char *want);
/* true when d is a whole number within +-9e15 (no libm needed) */
static inline bool sb_is_whole(double d)
{
    return d >= -9e15 && d <= 9e15 && (double)(long long)d == d;
}

/* Rails-style form: "a[b]=1&a[c][]=2" -> {"a":{"b":"1","c":["2"]}} (strings). */
json_object *sb_form_parse(const char *body, size_t len, char *err, size_t errlen);

/* JSON value coercion (accept numbers and numeric strings, like Rails/.NET). */
bool sb_jv_int(json_object *v, long long *out);
bool sb_jv_num(json_object *v, double *out);
const char *sb_jv_text(json_object *v, char *buf, size_t buflen); /* NULL if not scalar text */
json_object *sb_jget(json_object *o, const char *key); /* NULL if absent/null */
bool sb_jhas(json_object *o, const char *key);         /* present, even if null */

/* Dates. days = days since 1970-01-01. */
long sb_days_from_civil(int y, int m, int d);
void sb_civil_from_days(long z, int *y, int *m, int *d);
bool sb_parse_ymd(const char *s, int *y, int *m, int *d); /* exactly YYYY-MM-DD */
/* ISO-8601 date or date-time; tz optional (UTC assumed).  *epoch in seconds. */
bool sb_parse_iso8601(const char *s, int64_t *epoch, bool *has_time);
long sb_today_days_locked(void);
void sb_fmt_iso_ms(int64_t epoch, char *buf, size_t len); /* 2024-01-02T03:04:05.000Z */
int64_t sb_now(void);

void sb_sleep_ms(long ms); /* interruptible by shutdown */
void sb_random_hex(char *out, size_t nbytes); /* writes 2*nbytes hex chars + NUL */

/* Objects per key, for /_sandbox/counts: counts[key] += 1 ("" for NULL). */
void sb_count_add(json_object *counts, const char *key);
/* The objects beyond the first per key: sum of (n - 1). */
long long sb_count_extra(json_object *counts);

/* Store collections (caller holds g_lock). */
sb_obj *sb_coll_find(sb_coll *c, long long id);
sb_obj *sb_coll_add(sb_coll *c, long long id, long long owner, json_object *o, size_t acct);
void sb_coll_del(sb_coll *c, long long id);
void sb_coll_clear(sb_coll *c);
void sb_obj_set_acct(sb_obj *ob, size_t acct);
bool sb_store_has_room_locked(const sb_coll *c, size_t acct);

/* Path helpers. */
bool sb_seg_is(const sb_req *r, int i, const char *s);
bool sb_seg_id(const sb_req *r, int i, long long *id);
bool sb_method(const sb_req *r, const char *m);
const char *sb_query(const sb_req *r, const char *key);
const char *sb_header_get(const sb_req *r, const char *name);

/* ---- oauth (sb_oauth.c) ---- */
void sb_oauth_reset_locked(void);
bool sb_oauth_is_token_path(const char *path);
void sb_oauth_handle(sb_req *r, sb_reply *rep);
bool sb_auth_check(const sb_req *r, sb_auth *out); /* takes the lock */
void sb_auth_free(sb_auth *a);
bool sb_oauth_revoke_bearer(const sb_req *r);
/* control API */
int sb_oauth_register(json_object *spec, char *err, size_t errlen); /* locked */
int sb_oauth_set_state(const char *token, bool revoke, bool expire);  /* locked */
json_object *sb_oauth_table_json_locked(void);

/* ---- providers ---- */
void sb_wahoo_reset_locked(void);
bool sb_wahoo_owns_path(const char *path);
bool sb_wahoo_handle(sb_req *r, sb_reply *rep);
void sb_wahoo_ratelimit_headers_locked(sb_reply *rep);
json_object *sb_wahoo_store_json_locked(void);
json_object *sb_wahoo_counts_json_locked(void);

void sb_garmin_reset_locked(void);
bool sb_garmin_owns_path(const char *path);
bool sb_garmin_handle(sb_req *r, sb_reply *rep);
json_object *sb_garmin_store_json_locked(void);
json_object *sb_garmin_counts_json_locked(void);

void sb_tp_reset_locked(void);
bool sb_tp_owns_path(const char *path);
bool sb_tp_handle(sb_req *r, sb_reply *rep);
json_object *sb_tp_store_json_locked(void);
json_object *sb_tp_counts_json_locked(void);

#endif
