/*
 * wsync-sandbox: local HTTP(S) server that plays the Wahoo, Garmin and
 * TrainingPeaks APIs for wsync's tests and demo.  See README.md.
 *
 * This file: command line, libmicrohttpd setup, request plumbing, fault
 * injection, request log and the /_sandbox/ control API.
 */
#include "sandbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
sb_settings g_settings;
sb_stats g_stats;
int g_providers = SB_P_ALL;
unsigned g_port;
bool g_tls;
atomic_int g_stop;
size_t g_store_bytes;

static FILE *g_log;
static pthread_mutex_t g_loglock = PTHREAD_MUTEX_INITIALIZER;

#define LOG_MAX_ENTRIES 1000
#define LOG_MAX_BODY (64u * 1024u)
#define MAX_FAULTS 256

/* ------------------------------------------------------------------ log */

void sb_logf(const char *fmt, ...)
{
    if (!g_log)
        return;
    char ts[40];
    sb_fmt_iso_ms(sb_now(), ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&g_loglock);
    fprintf(g_log, "%s ", ts);
    vfprintf(g_log, fmt, ap);
    fputc('\n', g_log);
    fflush(g_log);
    pthread_mutex_unlock(&g_loglock);
    va_end(ap);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!g_log)
        return;
    pthread_mutex_lock(&g_loglock);
    fputs("libmicrohttpd: ", g_log);
    vfprintf(g_log, fmt, ap);
    fflush(g_log);
    pthread_mutex_unlock(&g_loglock);
}

/* ------------------------------------------------------------- settings */

void sb_settings_defaults_locked(void)
{
    free(g_settings.client_id);
    free(g_settings.client_secret);
    memset(&g_settings, 0, sizeof g_settings);
    g_settings.accept_any_token = true;
    g_settings.garmin_schedule_shape = SB_SHAPE_NUMBER;
    g_settings.require_permission = false;
    g_settings.token_expires_in = 3600;
    g_settings.refresh_delay_ms = 0;
    g_settings.user_id = 4242;
    g_settings.tp_premium = true;
    g_settings.wahoo_rate_limits[0] = 5000;
    g_settings.wahoo_rate_limits[1] = 1000;
    g_settings.wahoo_rate_limits[2] = 200;
    g_settings.enforce_rate_limits = false;
    g_settings.wahoo_create_status = 201;
}

static const char *const SHAPES[] = { "number", "object_workoutScheduleId", "object_scheduleId",
                                      "object_id" };

static json_object *settings_json_locked(void)
{
    sb_settings *s = &g_settings;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "accept_any_token", json_object_new_boolean(s->accept_any_token));
    json_object_object_add(o, "garmin_schedule_shape",
                           json_object_new_string(SHAPES[s->garmin_schedule_shape]));
    json_object_object_add(o, "require_permission", json_object_new_boolean(s->require_permission));
    json_object_object_add(o, "client_id", s->client_id ? json_object_new_string(s->client_id) : NULL);
    json_object_object_add(o, "client_secret",
                           s->client_secret ? json_object_new_string(s->client_secret) : NULL);
    json_object_object_add(o, "token_expires_in", json_object_new_int64(s->token_expires_in));
    json_object_object_add(o, "refresh_delay_ms", json_object_new_int64(s->refresh_delay_ms));
    json_object_object_add(o, "user_id", json_object_new_int64(s->user_id));
    json_object_object_add(o, "today", s->today[0] ? json_object_new_string(s->today) : NULL);
    json_object_object_add(o, "tp_premium", json_object_new_boolean(s->tp_premium));
    json_object *rl = json_object_new_array();
    for (int i = 0; i < 3; i++)
        json_object_array_add(rl, json_object_new_int64(s->wahoo_rate_limits[i]));
    json_object_object_add(o, "wahoo_rate_limits", rl);
    json_object_object_add(o, "enforce_rate_limits", json_object_new_boolean(s->enforce_rate_limits));
    json_object_object_add(o, "wahoo_create_status", json_object_new_int64(s->wahoo_create_status));
    json_object *lat = json_object_new_array();
    json_object_array_add(lat, json_object_new_int64(s->latency_ms[0]));
    json_object_array_add(lat, json_object_new_int64(s->latency_ms[1]));
    json_object_object_add(o, "latency_ms", lat);
    return o;
}

static bool want_bool(json_object *v, bool *out)
{
    if (!v || !json_object_is_type(v, json_type_boolean))
        return false;
    *out = json_object_get_boolean(v);
    return true;
}

/* Applies a settings object atomically: either every key is valid and applied, or none. */
static bool settings_apply_locked(json_object *in, char *err, size_t errlen)
{
    if (!json_object_is_type(in, json_type_object)) {
        snprintf(err, errlen, "settings must be a JSON object");
        return false;
    }
    sb_settings s = g_settings;
    char *cid = NULL, *csec = NULL;
    bool set_cid = false, set_csec = false;
    json_object_object_foreach(in, key, v)
    {
        long long n;
        bool ok = true;
        if (!strcmp(key, "accept_any_token")) {
            ok = want_bool(v, &s.accept_any_token);
        } else if (!strcmp(key, "require_permission")) {
            ok = want_bool(v, &s.require_permission);
        } else if (!strcmp(key, "tp_premium")) {
            ok = want_bool(v, &s.tp_premium);
        } else if (!strcmp(key, "enforce_rate_limits")) {
            ok = want_bool(v, &s.enforce_rate_limits);
        } else if (!strcmp(key, "garmin_schedule_shape")) {
            ok = false;
            for (int i = 0; v && json_object_is_type(v, json_type_string) && i < 4; i++)
                if (!strcmp(json_object_get_string(v), SHAPES[i])) {
                    s.garmin_schedule_shape = i;
                    ok = true;
                }
        } else if (!strcmp(key, "client_id") || !strcmp(key, "client_secret")) {
            char **dst = !strcmp(key, "client_id") ? &cid : &csec;
            ok = !v || (json_object_is_type(v, json_type_string) && *json_object_get_string(v));
            if (ok) {
                free(*dst);
                *dst = v ? sb_xstrdup(json_object_get_string(v)) : NULL;
                if (dst == &cid)
                    set_cid = true;
                else
                    set_csec = true;
            }
        } else if (!strcmp(key, "token_expires_in")) {
            ok = v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n) && n > -1000000000LL &&
                 n < 1000000000LL;
            if (ok)
                s.token_expires_in = (long)n;
        } else if (!strcmp(key, "refresh_delay_ms")) {
            ok = v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n) && n >= 0 && n <= 60000;
            if (ok)
                s.refresh_delay_ms = (long)n;
        } else if (!strcmp(key, "user_id")) {
            ok = v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n) && n > 0;
            if (ok)
                s.user_id = n;
        } else if (!strcmp(key, "today")) {
            int y, m, d;
            if (!v) {
                s.today[0] = '\0';
            } else {
                ok = json_object_is_type(v, json_type_string) &&
                     sb_parse_ymd(json_object_get_string(v), &y, &m, &d);
                if (ok)
                    snprintf(s.today, sizeof s.today, "%s", json_object_get_string(v));
            }
        } else if (!strcmp(key, "wahoo_rate_limits")) {
            ok = v && json_object_is_type(v, json_type_array) && json_object_array_length(v) == 3;
            for (size_t i = 0; ok && i < 3; i++) {
                ok = sb_jv_int(json_object_array_get_idx(v, i), &n) && n >= 0 && n < 1000000000LL;
                if (ok)
                    s.wahoo_rate_limits[i] = (long)n;
            }
        } else if (!strcmp(key, "latency_ms")) {
            /* N or [min, max], 0..60000 each */
            long long lo = -1, hi = -1;
            if (v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n)) {
                lo = hi = n;
            } else if (v && json_object_is_type(v, json_type_array) &&
                       json_object_array_length(v) == 2 &&
                       json_object_is_type(json_object_array_get_idx(v, 0), json_type_int) &&
                       json_object_is_type(json_object_array_get_idx(v, 1), json_type_int)) {
                sb_jv_int(json_object_array_get_idx(v, 0), &lo);
                sb_jv_int(json_object_array_get_idx(v, 1), &hi);
            }
            ok = lo >= 0 && hi >= lo && hi <= 60000;
            if (ok) {
                s.latency_ms[0] = (long)lo;
                s.latency_ms[1] = (long)hi;
            }
        } else if (!strcmp(key, "wahoo_create_status")) {
            ok = v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n) && (n == 200 || n == 201);
            if (ok)
                s.wahoo_create_status = (int)n;
        } else {
            snprintf(err, errlen, "unknown setting '%.60s'", key);
            free(cid);
            free(csec);
            return false;
        }
        if (!ok) {
            snprintf(err, errlen, "invalid value for setting '%.60s'", key);
            free(cid);
            free(csec);
            return false;
        }
    }
    if (set_cid) {
        free(g_settings.client_id);
        s.client_id = cid;
    }
    if (set_csec) {
        free(g_settings.client_secret);
        s.client_secret = csec;
    }
    g_settings = s;
    return true;
}

/* --------------------------------------------------------------- faults */

enum { ACT_RESPOND, ACT_RESET, ACT_MALFORMED, ACT_TRUNCATE, ACT_SLOW };
static const char *const ACTIONS[] = { "respond", "reset", "malformed", "truncate", "slow" };

typedef struct fault {
    long long id;
    char method[16];
    char *path_prefix;
    int status;
    sb_header hdr[16];
    int nhdr;
    char *body;
    size_t body_len;
    long count;      /* remaining; <= 0 = unlimited */
    long skip;
    long delay_ms;
    int action;
    bool process;
    bool ratelimit_headers;
    long long applied;
} fault;

static fault g_faults[MAX_FAULTS];
static int g_nfaults;
static long long g_fault_serial;

static void fault_free(fault *f)
{
    free(f->path_prefix);
    free(f->body);
    for (int i = 0; i < f->nhdr; i++) {
        free(f->hdr[i].name);
        free(f->hdr[i].value);
    }
    memset(f, 0, sizeof *f);
}

static void fault_copy(fault *dst, const fault *src)
{
    *dst = *src;
    dst->path_prefix = sb_xstrdup(src->path_prefix);
    dst->body = src->body ? sb_xstrndup(src->body, src->body_len) : NULL;
    for (int i = 0; i < src->nhdr; i++) {
        dst->hdr[i].name = sb_xstrdup(src->hdr[i].name);
        dst->hdr[i].value = sb_xstrdup(src->hdr[i].value);
    }
}

static void faults_clear_locked(void)
{
    for (int i = 0; i < g_nfaults; i++)
        fault_free(&g_faults[i]);
    g_nfaults = 0;
}

static bool header_name_ok(const char *s)
{
    if (!*s || strlen(s) > 100)
        return false;
    for (; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f || *s == ':')
            return false;
    return true;
}

static bool header_value_ok(const char *s)
{
    if (strlen(s) > 4000)
        return false;
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '\0')
            return false;
    return true;
}

static bool fault_parse(json_object *in, fault *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->count = 1;
    f->ratelimit_headers = true;
    int process = -1;
    if (!json_object_is_type(in, json_type_object)) {
        snprintf(err, errlen, "a fault rule must be a JSON object");
        return false;
    }
    json_object_object_foreach(in, key, v)
    {
        long long n;
        bool ok = true;
        if (!strcmp(key, "method")) {
            ok = !v || (json_object_is_type(v, json_type_string) &&
                        strlen(json_object_get_string(v)) < sizeof f->method);
            if (ok && v) {
                snprintf(f->method, sizeof f->method, "%s", json_object_get_string(v));
                for (char *p = f->method; *p; p++)
                    if (*p >= 'a' && *p <= 'z')
                        *p = (char)(*p - 32);
                if (!strcmp(f->method, "*"))
                    f->method[0] = '\0';
            }
        } else if (!strcmp(key, "path_prefix") || !strcmp(key, "path")) {
            ok = v && json_object_is_type(v, json_type_string);
            if (ok) {
                free(f->path_prefix);
                f->path_prefix = sb_xstrdup(json_object_get_string(v));
            }
        } else if (!strcmp(key, "status")) {
            ok = v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n) && n >= 100 && n <= 599;
            if (ok)
                f->status = (int)n;
        } else if (!strcmp(key, "headers")) {
            ok = !v || json_object_is_type(v, json_type_object);
            if (ok && v) {
                json_object_object_foreach(v, hk, hv)
                {
                    char buf[64];
                    const char *val = sb_jv_text(hv, buf, sizeof buf);
                    if (!val || !header_name_ok(hk) || !header_value_ok(val) || f->nhdr >= 16 ||
                        !strcasecmp(hk, "Content-Length") || !strcasecmp(hk, "Transfer-Encoding")) {
                        snprintf(err, errlen, "invalid fault header '%.60s'", hk);
                        fault_free(f);
                        return false;
                    }
                    f->hdr[f->nhdr].name = sb_xstrdup(hk);
                    f->hdr[f->nhdr].value = sb_xstrdup(val);
                    f->nhdr++;
                }
            }
        } else if (!strcmp(key, "body")) {
            free(f->body);
            f->body = NULL;
            if (v && json_object_is_type(v, json_type_string)) {
                f->body = sb_xstrndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
                f->body_len = (size_t)json_object_get_string_len(v);
            } else if (v) {
                f->body = sb_json_text(v); /* any JSON value: sent serialized */
                f->body_len = strlen(f->body);
            }
        } else if (!strcmp(key, "count")) {
            ok = v && sb_jv_int(v, &n) && json_object_is_type(v, json_type_int);
            if (ok)
                f->count = n <= 0 ? 0 : (long)(n > 1000000000LL ? 1000000000LL : n);
        } else if (!strcmp(key, "skip")) {
            ok = v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n) && n >= 0 && n < 1000000000LL;
            if (ok)
                f->skip = (long)n;
        } else if (!strcmp(key, "delay_ms")) {
            ok = v && json_object_is_type(v, json_type_int) && sb_jv_int(v, &n) && n >= 0 && n <= 600000;
            if (ok)
                f->delay_ms = (long)n;
        } else if (!strcmp(key, "action")) {
            ok = false;
            for (int i = 0; v && json_object_is_type(v, json_type_string) && i < 5; i++)
                if (!strcmp(json_object_get_string(v), ACTIONS[i])) {
                    f->action = i;
                    ok = true;
                }
        } else if (!strcmp(key, "process")) {
            bool b;
            ok = want_bool(v, &b);
            if (ok)
                process = b;
        } else if (!strcmp(key, "ratelimit_headers")) {
            ok = want_bool(v, &f->ratelimit_headers);
        } else if (!strcmp(key, "comment") || !strcmp(key, "id")) {
            /* ignored */
        } else {
            snprintf(err, errlen, "unknown fault field '%.60s'", key);
            fault_free(f);
            return false;
        }
        if (!ok) {
            snprintf(err, errlen, "invalid value for fault field '%.60s'", key);
            fault_free(f);
            return false;
        }
    }
    if (!f->path_prefix)
        f->path_prefix = sb_xstrdup("/");
    if (f->path_prefix[0] != '/') {
        snprintf(err, errlen, "path_prefix must start with '/'");
        fault_free(f);
        return false;
    }
    if (process < 0)
        f->process = f->action == ACT_SLOW && f->status == 0;
    else
        f->process = process;
    return true;
}

static json_object *fault_json(const fault *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int64(f->id));
    json_object_object_add(o, "method", f->method[0] ? json_object_new_string(f->method) : NULL);
    json_object_object_add(o, "path_prefix", json_object_new_string(f->path_prefix));
    json_object_object_add(o, "action", json_object_new_string(ACTIONS[f->action]));
    json_object_object_add(o, "status", f->status ? json_object_new_int(f->status) : NULL);
    json_object *h = json_object_new_object();
    for (int i = 0; i < f->nhdr; i++)
        json_object_object_add(h, f->hdr[i].name, json_object_new_string(f->hdr[i].value));
    json_object_object_add(o, "headers", h);
    json_object_object_add(o, "body", f->body ? json_object_new_string_len(f->body, (int)f->body_len) : NULL);
    json_object_object_add(o, "count", f->count ? json_object_new_int64(f->count) : NULL);
    json_object_object_add(o, "skip", json_object_new_int64(f->skip));
    json_object_object_add(o, "delay_ms", json_object_new_int64(f->delay_ms));
    json_object_object_add(o, "process", json_object_new_boolean(f->process));
    json_object_object_add(o, "ratelimit_headers", json_object_new_boolean(f->ratelimit_headers));
    json_object_object_add(o, "applied", json_object_new_int64(f->applied));
    return o;
}

/* Finds the first rule matching (method, path), consumes one use and copies it out. */
static bool fault_take_locked(const char *method, const char *path, fault *out)
{
    for (int i = 0; i < g_nfaults; i++) {
        fault *f = &g_faults[i];
        if (f->method[0] && strcasecmp(f->method, method) != 0)
            continue;
        if (strncmp(path, f->path_prefix, strlen(f->path_prefix)) != 0)
            continue;
        if (f->skip > 0) {
            f->skip--;
            continue;
        }
        f->applied++;
        g_stats.faults_applied++;
        fault_copy(out, f);
        if (f->count > 0 && --f->count == 0) {
            fault_free(f);
            memmove(&g_faults[i], &g_faults[i + 1], (size_t)(g_nfaults - i - 1) * sizeof *g_faults);
            g_nfaults--;
        }
        return true;
    }
    return false;
}

/* ---------------------------------------------------------- request log */

static json_object *g_reqlog[LOG_MAX_ENTRIES];
static int g_nreqlog;
static long long g_req_seq;

static void reqlog_clear_locked(void)
{
    for (int i = 0; i < g_nreqlog; i++)
        json_object_put(g_reqlog[i]);
    g_nreqlog = 0;
}

/* Every provider's store, the tokens, the faults and the request log. */
static void reset_stores_locked(void)
{
    sb_wahoo_reset_locked();
    sb_garmin_reset_locked();
    sb_tp_reset_locked();
    sb_oauth_reset_locked();
    faults_clear_locked();
    reqlog_clear_locked();
}

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_object *o = cls;
    if (!key)
        return MHD_YES;
    char name[128];
    snprintf(name, sizeof name, "%s", key);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    const char *val = value ? value : "";
    if (!sb_utf8_valid(name, strlen(name)) || !sb_utf8_valid(val, strlen(val)))
        return MHD_YES;
    json_object_object_add(o, kind == MHD_HEADER_KIND ? name : key, json_object_new_string(val));
    return MHD_YES;
}

static void reqlog_add(const sb_req *r, int status, const char *fault_action, long long fault_id)
{
    json_object *e = json_object_new_object();
    char ts[40];
    sb_fmt_iso_ms(sb_now(), ts, sizeof ts);
    json_object_object_add(e, "time", json_object_new_string(ts));
    json_object_object_add(e, "method", json_object_new_string(r->method));
    json_object_object_add(e, "path", json_object_new_string(
                                          sb_utf8_valid(r->path, strlen(r->path)) ? r->path : "(invalid utf-8)"));
    json_object *q = json_object_new_object();
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_kv, q);
    json_object_object_add(e, "query", q);
    json_object *h = json_object_new_object();
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_kv, h);
    json_object_object_add(e, "headers", h);
    size_t n = r->body_len > LOG_MAX_BODY ? LOG_MAX_BODY : r->body_len;
    if (sb_utf8_valid(r->body, n) && strlen(r->body) >= n) {
        json_object_object_add(e, "body", json_object_new_string_len(r->body, (int)n));
    } else {
        char *b64 = sb_base64_encode(r->body, n);
        json_object_object_add(e, "body", NULL);
        json_object_object_add(e, "body_base64", json_object_new_string(b64));
        free(b64);
    }
    json_object_object_add(e, "body_length", json_object_new_int64((long long)r->body_len));
    json_object_object_add(e, "body_truncated", json_object_new_boolean(n < r->body_len));
    json_object_object_add(e, "status", status ? json_object_new_int(status) : NULL);
    json_object_object_add(e, "fault", fault_action ? json_object_new_string(fault_action) : NULL);
    json_object_object_add(e, "fault_id", fault_action ? json_object_new_int64(fault_id) : NULL);
    pthread_mutex_lock(&g_lock);
    json_object_object_add(e, "seq", json_object_new_int64(++g_req_seq));
    if (g_nreqlog == LOG_MAX_ENTRIES) {
        json_object_put(g_reqlog[0]);
        memmove(&g_reqlog[0], &g_reqlog[1], (LOG_MAX_ENTRIES - 1) * sizeof *g_reqlog);
        g_nreqlog--;
    }
    g_reqlog[g_nreqlog++] = e;
    pthread_mutex_unlock(&g_lock);
}

/* ---------------------------------------------------------- control API */

static json_object *control_body(sb_req *r, sb_reply *rep, bool allow_empty)
{
    if (r->body_len == 0 && allow_empty)
        return json_object_new_object();
    char err[200];
    json_object *o = sb_json_parse_strict(r->body, r->body_len, err, sizeof err);
    if (!o)
        sb_reply_error(rep, 400, "error", "control body: %s", err);
    return o;
}

static void ok_reply(sb_reply *rep, json_object *extra)
{
    json_object *o = extra ? extra : json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(true));
    sb_reply_json(rep, 200, o);
}

static void reply_locked_json(sb_reply *rep, json_object *o)
{
    /* o may share nodes with the store: serialize and release under the lock */
    sb_reply_json(rep, 200, o);
}

static void control_handle(sb_req *r, sb_reply *rep)
{
    const char *what = r->nseg >= 2 ? r->seg[1] : "";
    const char *sub = r->nseg >= 3 ? r->seg[2] : NULL;
    bool get = sb_method(r, "GET"), post = sb_method(r, "POST"), del = sb_method(r, "DELETE");
    char err[256];
    if (r->nseg > 3 || (sub && strcmp(what, "tokens") != 0)) {
        sb_reply_error(rep, 404, "error", "unknown control endpoint");
        return;
    }
    if (!strcmp(what, "health") && get) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "port", json_object_new_int((int)g_port));
        json_object_object_add(o, "tls", json_object_new_boolean(g_tls));
        json_object *p = json_object_new_array();
        if (g_providers & SB_P_WAHOO)
            json_object_array_add(p, json_object_new_string("wahoo"));
        if (g_providers & SB_P_GARMIN)
            json_object_array_add(p, json_object_new_string("garmin"));
        if (g_providers & SB_P_TP)
            json_object_array_add(p, json_object_new_string("trainingpeaks"));
        json_object_object_add(o, "providers", p);
        ok_reply(rep, o);
    } else if (!strcmp(what, "reset") && post) {
        json_object *b = control_body(r, rep, true);
        if (!b)
            return;
        bool keep = json_object_get_boolean(sb_jget(b, "keep_settings"));
        json_object_put(b);
        pthread_mutex_lock(&g_lock);
        reset_stores_locked();
        int inflight = g_stats.refresh_inflight;
        memset(&g_stats, 0, sizeof g_stats);
        g_stats.refresh_inflight = inflight;
        if (!keep)
            sb_settings_defaults_locked();
        pthread_mutex_unlock(&g_lock);
        ok_reply(rep, NULL);
    } else if (!strcmp(what, "settings") && (get || post)) {
        json_object *b = NULL;
        if (post && !(b = control_body(r, rep, false)))
            return;
        pthread_mutex_lock(&g_lock);
        bool ok = !b || settings_apply_locked(b, err, sizeof err);
        if (ok)
            sb_reply_json(rep, 200, settings_json_locked());
        else
            sb_reply_error(rep, 400, "error", "%s", err);
        pthread_mutex_unlock(&g_lock);
        json_object_put(b);
    } else if (!strcmp(what, "tokens") && !sub && (get || post)) {
        if (get) {
            pthread_mutex_lock(&g_lock);
            sb_reply_json(rep, 200, sb_oauth_table_json_locked());
            pthread_mutex_unlock(&g_lock);
            return;
        }
        json_object *b = control_body(r, rep, false);
        if (!b)
            return;
        pthread_mutex_lock(&g_lock);
        int rc = 0, n = 0;
        if (json_object_is_type(b, json_type_array)) {
            for (size_t i = 0; rc == 0 && i < json_object_array_length(b); i++, n++)
                rc = sb_oauth_register(json_object_array_get_idx(b, i), err, sizeof err);
        } else {
            rc = sb_oauth_register(b, err, sizeof err);
            n = 1;
        }
        pthread_mutex_unlock(&g_lock);
        json_object_put(b);
        if (rc)
            sb_reply_error(rep, 400, "error", "%s", err);
        else {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "registered", json_object_new_int(n));
            ok_reply(rep, o);
        }
    } else if (!strcmp(what, "tokens") && sub && post &&
               (!strcmp(sub, "revoke") || !strcmp(sub, "expire"))) {
        json_object *b = control_body(r, rep, false);
        if (!b)
            return;
        json_object *t = sb_jget(b, "token");
        if (!t || !json_object_is_type(t, json_type_string)) {
            sb_reply_error(rep, 400, "error", "{\"token\": \"...\"} required");
        } else {
            pthread_mutex_lock(&g_lock);
            int n = sb_oauth_set_state(json_object_get_string(t), !strcmp(sub, "revoke"),
                                       !strcmp(sub, "expire"));
            pthread_mutex_unlock(&g_lock);
            if (n == 0) {
                sb_reply_error(rep, 404, "error", "no such token");
            } else {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "matched", json_object_new_int(n));
                ok_reply(rep, o);
            }
        }
        json_object_put(b);
    } else if (!strcmp(what, "faults") && (get || post || del)) {
        if (del) {
            pthread_mutex_lock(&g_lock);
            faults_clear_locked();
            pthread_mutex_unlock(&g_lock);
            ok_reply(rep, NULL);
            return;
        }
        if (get) {
            json_object *arr = json_object_new_array();
            pthread_mutex_lock(&g_lock);
            for (int i = 0; i < g_nfaults; i++)
                json_object_array_add(arr, fault_json(&g_faults[i]));
            pthread_mutex_unlock(&g_lock);
            sb_reply_json(rep, 200, arr);
            return;
        }
        json_object *b = control_body(r, rep, false);
        if (!b)
            return;
        bool arr = json_object_is_type(b, json_type_array);
        size_t n = arr ? json_object_array_length(b) : 1;
        fault *tmp = sb_xmalloc((n + 1) * sizeof *tmp);
        size_t ok = 0;
        for (; ok < n; ok++)
            if (!fault_parse(arr ? json_object_array_get_idx(b, ok) : b, &tmp[ok], err, sizeof err))
                break;
        json_object_put(b);
        if (ok < n) {
            for (size_t i = 0; i < ok; i++)
                fault_free(&tmp[i]);
            free(tmp);
            sb_reply_error(rep, 400, "error", "fault rule %zu: %s", ok, err);
            return;
        }
        pthread_mutex_lock(&g_lock);
        if (g_nfaults + (int)n > MAX_FAULTS) {
            pthread_mutex_unlock(&g_lock);
            for (size_t i = 0; i < n; i++)
                fault_free(&tmp[i]);
            free(tmp);
            sb_reply_error(rep, 507, "error", "too many fault rules (max %d)", MAX_FAULTS);
            return;
        }
        json_object *ids = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            tmp[i].id = ++g_fault_serial;
            json_object_array_add(ids, json_object_new_int64(tmp[i].id));
            g_faults[g_nfaults++] = tmp[i];
        }
        pthread_mutex_unlock(&g_lock);
        free(tmp);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "queued", json_object_new_int((int)n));
        json_object_object_add(o, "ids", ids);
        ok_reply(rep, o);
    } else if (!strcmp(what, "store") && get) {
        pthread_mutex_lock(&g_lock);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "wahoo", sb_wahoo_store_json_locked());
        json_object_object_add(o, "garmin", sb_garmin_store_json_locked());
        json_object_object_add(o, "trainingpeaks", sb_tp_store_json_locked());
        reply_locked_json(rep, o);
        pthread_mutex_unlock(&g_lock);
    } else if (!strcmp(what, "counts") && get) {
        pthread_mutex_lock(&g_lock);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "wahoo", sb_wahoo_counts_json_locked());
        json_object_object_add(o, "garmin", sb_garmin_counts_json_locked());
        json_object_object_add(o, "trainingpeaks", sb_tp_counts_json_locked());
        reply_locked_json(rep, o);
        pthread_mutex_unlock(&g_lock);
    } else if (!strcmp(what, "requests") && (get || del)) {
        pthread_mutex_lock(&g_lock);
        if (del) {
            reqlog_clear_locked();
            pthread_mutex_unlock(&g_lock);
            ok_reply(rep, NULL);
            return;
        }
        const char *m = sb_query(r, "method"), *pp = sb_query(r, "path_prefix"),
                   *since = sb_query(r, "since");
        long long after = since ? atoll(since) : 0;
        json_object *arr = json_object_new_array();
        for (int i = 0; i < g_nreqlog; i++) {
            json_object *e = g_reqlog[i];
            if (m && strcasecmp(json_object_get_string(sb_jget(e, "method")), m) != 0)
                continue;
            if (pp && strncmp(json_object_get_string(sb_jget(e, "path")), pp, strlen(pp)) != 0)
                continue;
            if (json_object_get_int64(sb_jget(e, "seq")) <= after)
                continue;
            json_object_array_add(arr, json_object_get(e));
        }
        reply_locked_json(rep, arr);
        pthread_mutex_unlock(&g_lock);
    } else if (!strcmp(what, "stats") && get) {
        pthread_mutex_lock(&g_lock);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "requests", json_object_new_int64(g_stats.requests));
        json_object_object_add(o, "refreshes", json_object_new_int64(g_stats.refreshes));
        json_object_object_add(o, "refresh_ok", json_object_new_int64(g_stats.refresh_ok));
        json_object_object_add(o, "refresh_failed", json_object_new_int64(g_stats.refresh_failed));
        json_object_object_add(o, "max_concurrent_refreshes",
                               json_object_new_int(g_stats.max_concurrent_refreshes));
        json_object_object_add(o, "refreshes_in_flight", json_object_new_int(g_stats.refresh_inflight));
        json_object_object_add(o, "faults_applied", json_object_new_int64(g_stats.faults_applied));
        json_object_object_add(o, "unauthorized", json_object_new_int64(g_stats.unauthorized));
        json_object_object_add(o, "store_bytes", json_object_new_int64((long long)g_store_bytes));
        pthread_mutex_unlock(&g_lock);
        sb_reply_json(rep, 200, o);
    } else {
        sb_reply_error(rep, 404, "error", "unknown control endpoint or method");
    }
}

/* ------------------------------------------------------------- routing */

static void route(sb_req *r, sb_reply *rep)
{
    if (sb_oauth_is_token_path(r->path)) {
        sb_oauth_handle(r, rep);
        return;
    }
    if (r->nseg < 0) {
        sb_reply_error(rep, 404, "error", "Not Found");
        return;
    }
    if ((g_providers & SB_P_WAHOO) && sb_wahoo_handle(r, rep))
        return;
    if ((g_providers & SB_P_TP) && sb_tp_handle(r, rep))
        return;
    if ((g_providers & SB_P_GARMIN) && sb_garmin_handle(r, rep))
        return;
    sb_reply_error(rep, 404, "error", "Not Found");
}

/* -------------------------------------------------------- MHD plumbing */

typedef struct conn_ctx {
    char *body;
    size_t len, cap;
    bool too_large;
} conn_ctx;

typedef struct trunc_ctx {
    char *data;
    size_t len;
} trunc_ctx;

static ssize_t trunc_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    trunc_ctx *t = cls;
    if (pos >= t->len)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* closes the connection early */
    size_t n = t->len - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, t->data + pos, n);
    return (ssize_t)n;
}

static void trunc_free(void *cls)
{
    trunc_ctx *t = cls;
    free(t->data);
    free(t);
}

/* declared > 0: truncate mode (announce `declared` bytes, send rep->len). */
static enum MHD_Result send_reply(struct MHD_Connection *c, sb_reply *rep, size_t declared)
{
    struct MHD_Response *resp;
    if (declared > 0) {
        trunc_ctx *t = sb_xmalloc(sizeof *t);
        t->data = rep->body;
        t->len = rep->len;
        rep->body = NULL;
        rep->len = 0;
        resp = MHD_create_response_from_callback(declared, 4096, trunc_reader, t, trunc_free);
        if (!resp) {
            trunc_free(t);
            return MHD_NO;
        }
    } else {
        resp = MHD_create_response_from_buffer(rep->len, rep->body ? rep->body : (char *)"",
                                               MHD_RESPMEM_MUST_COPY);
        if (!resp)
            return MHD_NO;
    }
    if (rep->ctype[0] && rep->status != 204)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->ctype);
    for (int i = 0; i < rep->nhdr; i++)
        MHD_add_response_header(resp, rep->hdr[i].name, rep->hdr[i].value);
    MHD_add_response_header(resp, "X-Sandbox", "wsync-sandbox");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)(rep->status ? rep->status : 500), resp);
    MHD_destroy_response(resp);
    return rc;
}

static void abort_connection(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        /* Send a TCP RST now: MHD would otherwise shut the socket down
         * gracefully (FIN).  connect(AF_UNSPEC) disconnects an established
         * TCP socket with a reset and leaves the descriptor valid for MHD to
         * close; SO_LINGER {1, 0} makes the final close() abortive too. */
        struct linger lg = { 1, 0 };
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        struct sockaddr sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_family = AF_UNSPEC;
        (void)connect(ci->connect_fd, &sa, sizeof sa);
    }
}

static void split_path(sb_req *r, const char *url)
{
    r->pathbuf = sb_xstrdup(url);
    r->nseg = 0;
    char *save = NULL;
    for (char *t = strtok_r(r->pathbuf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (r->nseg >= SB_MAX_SEGS) {
            r->nseg = -1;
            return;
        }
        r->seg[r->nseg++] = t;
    }
}

static const char *default_fault_body(int action)
{
    switch (action) {
    case ACT_MALFORMED:
        return "{\"id\": 12345, \"name\": \"sandbox malformed answer\", \"items\": [1, 2,";
    case ACT_TRUNCATE:
        return "{\"id\": 12345, \"name\": \"sandbox truncated answer\", \"padding\": "
               "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
    default:
        return NULL;
    }
}

/* The latency setting's delay for one answer: uniform in [min, max] ms
 * (xorshift64*, seeded once; caller holds g_lock). */
static long latency_pick_locked(void)
{
    static uint64_t st;
    long lo = g_settings.latency_ms[0], hi = g_settings.latency_ms[1];
    if (hi <= 0)
        return 0;
    if (!st)
        st = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ull;
    st ^= st >> 12;
    st ^= st << 25;
    st ^= st >> 27;
    return lo + (long)((st * 0x2545F4914F6CDD1Dull >> 33) % (uint64_t)(hi - lo + 1));
}

static enum MHD_Result handle_api(struct MHD_Connection *c, sb_req *r)
{
    sb_reply rep;
    memset(&rep, 0, sizeof rep);
    fault f;
    memset(&f, 0, sizeof f);
    pthread_mutex_lock(&g_lock);
    g_stats.requests++;
    bool have = fault_take_locked(r->method, r->path, &f);
    long latency = latency_pick_locked();
    pthread_mutex_unlock(&g_lock);
    /* Half the latency before the request is acted on, half after: a client
     * that gives up (or dies) mid-call cannot tell whether it happened. */
    sb_sleep_ms(latency / 2);

    bool processed = false;
    if (!have || f.process) {
        route(r, &rep);
        processed = true;
    }
    size_t declared = 0;
    if (have) {
        bool keep_real = processed && (f.action == ACT_SLOW ||
                                       (f.action == ACT_TRUNCATE && !f.body && !f.status));
        if (!keep_real && f.action != ACT_RESET) {
            int status = f.status;
            if (!status)
                status = (f.action == ACT_MALFORMED || f.action == ACT_TRUNCATE) ? 200 : 500;
            const char *body = f.body ? f.body : default_fault_body(f.action);
            sb_reply_reset(&rep);
            if (body) {
                sb_reply_raw(&rep, status, "application/json", body, f.body ? f.body_len : strlen(body));
            } else {
                sb_reply_error(&rep, status, "error", "%s (sandbox fault)", sb_status_text(status));
            }
        }
        for (int i = 0; i < f.nhdr; i++) {
            if (!strcasecmp(f.hdr[i].name, "Content-Type"))
                snprintf(rep.ctype, sizeof rep.ctype, "%s", f.hdr[i].value);
            else
                sb_reply_header(&rep, f.hdr[i].name, f.hdr[i].value);
        }
        if (f.action == ACT_TRUNCATE) {
            if (processed && !f.body && !f.status) {
                declared = rep.len; /* the real answer, cut in half */
                rep.len = rep.len / 2;
                if (declared == 0)
                    declared = 1;
            } else {
                declared = rep.len + 64;
            }
        }
        if (f.ratelimit_headers && (g_providers & SB_P_WAHOO) && sb_wahoo_owns_path(r->path)) {
            pthread_mutex_lock(&g_lock);
            sb_wahoo_ratelimit_headers_locked(&rep);
            pthread_mutex_unlock(&g_lock);
        }
    }
    int logged_status = have && f.action == ACT_RESET ? 0 : rep.status;
    reqlog_add(r, logged_status, have ? ACTIONS[f.action] : NULL, have ? f.id : 0);
    sb_logf("%s %s -> %s%d%s%s", r->method, r->path, logged_status ? "" : "reset ", logged_status,
            have ? " fault=" : "", have ? ACTIONS[f.action] : "");
    if (have && f.delay_ms > 0)
        sb_sleep_ms(f.delay_ms);
    sb_sleep_ms(latency - latency / 2);
    enum MHD_Result rc;
    if (have && f.action == ACT_RESET) {
        abort_connection(c);
        rc = MHD_NO;
    } else {
        rc = send_reply(c, &rep, declared);
    }
    if (have)
        fault_free(&f);
    sb_reply_reset(&rep);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    conn_ctx *cx = *con_cls;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        *con_cls = cx;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > SB_MAX_BODY)
                cx->too_large = true;
            /* Reject before the body is sent when the client waits for
             * "100 Continue" or the body is absurd; otherwise read and
             * discard it so the client gets a clean 413. */
            if (cx->too_large && !errno && !*end && n <= 16ull * SB_MAX_BODY &&
                !MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT))
                return MHD_YES;
        }
        if (!cx->too_large)
            return MHD_YES;
        sb_reply rep;
        memset(&rep, 0, sizeof rep);
        sb_reply_error(&rep, 413, "error", "request body larger than %u bytes", SB_MAX_BODY);
        sb_reply_header(&rep, "Connection", "close");
        enum MHD_Result rc = send_reply(c, &rep, 0);
        sb_reply_reset(&rep);
        return rc;
    }
    if (*upload_data_size) {
        if (!cx->too_large) {
            if (cx->len + *upload_data_size > SB_MAX_BODY) {
                cx->too_large = true;
                free(cx->body);
                cx->body = NULL;
                cx->len = cx->cap = 0;
            } else {
                if (cx->len + *upload_data_size + 1 > cx->cap) {
                    cx->cap = (cx->len + *upload_data_size + 1) * 2;
                    if (cx->cap > SB_MAX_BODY + 1)
                        cx->cap = SB_MAX_BODY + 1;
                    cx->body = sb_xrealloc(cx->body, cx->cap);
                }
                memcpy(cx->body + cx->len, upload_data, *upload_data_size);
                cx->len += *upload_data_size;
                cx->body[cx->len] = '\0';
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    sb_reply rep;
    memset(&rep, 0, sizeof rep);
    if (cx->too_large) {
        sb_reply_error(&rep, 413, "error", "request body larger than %u bytes", SB_MAX_BODY);
        enum MHD_Result rc = send_reply(c, &rep, 0);
        sb_reply_reset(&rep);
        return rc;
    }
    sb_req r;
    memset(&r, 0, sizeof r);
    r.conn = c;
    r.method = method;
    r.path = url;
    r.body = cx->body ? cx->body : "";
    r.body_len = cx->len;
    r.ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    split_path(&r, url);
    enum MHD_Result rc;
    if (!strcmp(url, "/_sandbox") || !strncmp(url, "/_sandbox/", 10)) {
        control_handle(&r, &rep);
        rc = send_reply(c, &rep, 0);
        sb_reply_reset(&rep);
    } else {
        rc = handle_api(c, &r);
    }
    free(r.pathbuf);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn_ctx *cx = *con_cls;
    if (!cx)
        return;
    free(cx->body);
    free(cx);
    *con_cls = NULL;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *out)
{
    fputs("Usage: wsync-sandbox [OPTIONS]\n"
          "Local stand-in for the Wahoo, Garmin and TrainingPeaks APIs (tests and demo).\n"
          "Listens on 127.0.0.1 only; runs until SIGTERM or SIGINT.\n\n"
          "  --provider P      wahoo | garmin | trainingpeaks | all (default all)\n"
          "  --port N          TCP port; 0 picks a free one (default 0)\n"
          "  --port-file FILE  write the chosen port to FILE once listening\n"
          "  --tls-cert PEM    serve HTTPS with this certificate (needs --tls-key)\n"
          "  --tls-key PEM     private key for --tls-cert\n"
          "  --log FILE        append one line per request to FILE ('-' = stderr)\n"
          "  --help            show this help\n\n"
          "Control API (no auth): /_sandbox/{health,reset,settings,tokens,faults,store,counts,requests,stats}\n"
          "See tests/sandbox/README.md.\n",
          out);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            if (cap > 1024 * 1024) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = sb_xrealloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *provider = "all", *port_file = NULL, *cert_path = NULL, *key_path = NULL,
               *log_path = NULL;
    long port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        char name[64];
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
            a = name;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        bool takes = !strcmp(a, "--provider") || !strcmp(a, "--port") || !strcmp(a, "--port-file") ||
                     !strcmp(a, "--tls-cert") || !strcmp(a, "--tls-key") || !strcmp(a, "--log");
        if (!takes) {
            fprintf(stderr, "wsync-sandbox: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "wsync-sandbox: %s needs a value\n", a);
                return 2;
            }
            val = argv[++i];
        }
        if (!strcmp(a, "--provider"))
            provider = val;
        else if (!strcmp(a, "--port")) {
            char *end;
            errno = 0;
            port = strtol(val, &end, 10);
            if (errno || *end || !*val || port < 0 || port > 65535) {
                fprintf(stderr, "wsync-sandbox: --port expects 0..65535, got '%s'\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--port-file"))
            port_file = val;
        else if (!strcmp(a, "--tls-cert"))
            cert_path = val;
        else if (!strcmp(a, "--tls-key"))
            key_path = val;
        else
            log_path = val;
    }
    if (!strcmp(provider, "wahoo"))
        g_providers = SB_P_WAHOO;
    else if (!strcmp(provider, "garmin"))
        g_providers = SB_P_GARMIN;
    else if (!strcmp(provider, "trainingpeaks") || !strcmp(provider, "tp"))
        g_providers = SB_P_TP;
    else if (!strcmp(provider, "all"))
        g_providers = SB_P_ALL;
    else {
        fprintf(stderr, "wsync-sandbox: --provider expects wahoo, garmin, trainingpeaks or all, got '%s'\n",
                provider);
        return 2;
    }
    if (!!cert_path != !!key_path) {
        fprintf(stderr, "wsync-sandbox: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (log_path) {
        if (!strcmp(log_path, "-"))
            g_log = stderr;
        else if (!(g_log = fopen(log_path, "a"))) {
            fprintf(stderr, "wsync-sandbox: cannot open log %s: %s\n", log_path, strerror(errno));
            return 2;
        }
    }
    char *cert = NULL, *key = NULL;
    if (cert_path) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            fprintf(stderr, "wsync-sandbox: this libmicrohttpd has no TLS support\n");
            return 1;
        }
        cert = read_file(cert_path);
        key = read_file(key_path);
        if (!cert || !key) {
            fprintf(stderr, "wsync-sandbox: cannot read %s\n", !cert ? cert_path : key_path);
            return 2;
        }
        g_tls = true;
    }

    pthread_mutex_lock(&g_lock);
    sb_settings_defaults_locked();
    pthread_mutex_unlock(&g_lock);
    /* 0.516666666666667 rather than 0.51666666666666672 for computed values */
    json_c_set_serialization_double_format("%.15g", JSON_C_OPTION_GLOBAL);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("wsync-sandbox: socket");
        return 1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only, never anything else */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "wsync-sandbox: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
        close(fd);
        return 1;
    }
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("wsync-sandbox: getsockname");
        return 1;
    }
    g_port = ntohs(sa.sin_port);

    /* Signals: handled synchronously by main; worker threads inherit the mask. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (g_tls)
        flags |= MHD_USE_TLS;
    struct MHD_Daemon *d;
    if (g_tls)
        d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
                             MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
                             MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "wsync-sandbox: cannot start the HTTP server%s\n",
                g_tls ? " (bad certificate or key?)" : "");
        close(fd);
        return 1;
    }
    if (port_file && write_port_file(port_file, g_port) != 0) {
        fprintf(stderr, "wsync-sandbox: cannot write %s: %s\n", port_file, strerror(errno));
        MHD_stop_daemon(d);
        return 1;
    }
    fprintf(stderr, "wsync-sandbox: listening on %s://127.0.0.1:%u (provider %s)\n",
            g_tls ? "https" : "http", g_port, provider);
    sb_logf("listening on %s://127.0.0.1:%u (provider %s)", g_tls ? "https" : "http", g_port, provider);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    atomic_store(&g_stop, 1);
    sb_logf("signal %d: stopping", sig);
    MHD_stop_daemon(d);

    pthread_mutex_lock(&g_lock);
    reset_stores_locked();
    free(g_settings.client_id);
    free(g_settings.client_secret);
    pthread_mutex_unlock(&g_lock);
    free(cert);
    free(key);
    if (g_log && g_log != stderr)
        fclose(g_log);
    return 0;
}
