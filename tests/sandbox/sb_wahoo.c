/* wsync-sandbox: Wahoo Cloud API (plans, workouts, rate-limit headers). */
#include "sandbox.h"

#include <math.h> /* isfinite only: no libm needed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static sb_coll plans, workouts;
static long long next_plan_id = 1000001, next_workout_id = 2000001;

/* Rate-limit windows: day, hour, 5 min (X-RateLimit-* list them in that order). */
static const long rl_len[3] = { 86400, 3600, 300 };
static int64_t rl_start[3];
static long rl_count[3];

void sb_wahoo_reset_locked(void)
{
    sb_coll_clear(&plans);
    sb_coll_clear(&workouts);
    memset(rl_start, 0, sizeof rl_start);
    memset(rl_count, 0, sizeof rl_count);
}

bool sb_wahoo_owns_path(const char *path)
{
    static const char *pre[] = { "/v1/plans", "/v1/workouts", "/v1/permissions", "/v1/user",
                                 "/uploads/plan/file/" };
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++) {
        size_t n = strlen(pre[i]);
        if (strncmp(path, pre[i], n) == 0 &&
            (path[n] == '\0' || path[n] == '/' || pre[i][n - 1] == '/'))
            return true;
    }
    return false;
}

static void rl_roll(int64_t now)
{
    for (int i = 0; i < 3; i++) {
        int64_t start = now - now % rl_len[i];
        if (rl_start[i] != start) {
            rl_start[i] = start;
            rl_count[i] = 0;
        }
    }
}

static void rl_count_request_locked(void)
{
    rl_roll(sb_now());
    for (int i = 0; i < 3; i++)
        rl_count[i]++;
}

/* Seconds until the first exhausted window resets, 0 if none is. */
static long rl_exhausted_locked(void)
{
    int64_t now = sb_now();
    rl_roll(now);
    for (int i = 0; i < 3; i++)
        if (rl_count[i] > g_settings.wahoo_rate_limits[i])
            return (long)(rl_start[i] + rl_len[i] - now);
    return 0;
}

void sb_wahoo_ratelimit_headers_locked(sb_reply *rep)
{
    int64_t now = sb_now();
    rl_roll(now);
    char buf[128];
    long *lim = g_settings.wahoo_rate_limits;
    if (!sb_reply_has_header(rep, "X-RateLimit-Limit")) {
        snprintf(buf, sizeof buf, "%ld, %ld, %ld", lim[0], lim[1], lim[2]);
        sb_reply_header(rep, "X-RateLimit-Limit", buf);
    }
    if (!sb_reply_has_header(rep, "X-RateLimit-Remaining")) {
        long rem[3];
        for (int i = 0; i < 3; i++)
            rem[i] = lim[i] - rl_count[i] > 0 ? lim[i] - rl_count[i] : 0;
        snprintf(buf, sizeof buf, "%ld, %ld, %ld", rem[0], rem[1], rem[2]);
        sb_reply_header(rep, "X-RateLimit-Remaining", buf);
    }
    if (!sb_reply_has_header(rep, "X-RateLimit-Reset")) {
        snprintf(buf, sizeof buf, "%ld", (long)(rl_start[2] + rl_len[2] - now));
        sb_reply_header(rep, "X-RateLimit-Reset", buf);
    }
}

static void now_iso(char *buf, size_t n)
{
    sb_fmt_iso_ms(sb_now(), buf, n);
}

/* ------------------------------------------------------ plan file checking */

typedef struct pctx {
    json_object *header;
    json_object *warnings;
    int count;
    char *err;
    size_t errlen;
} pctx;

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const char *const TRIGGERS[] = { "time", "distance", "kj", "repeat", NULL };
static const char *const INTENSITIES[] = { "active", "wu", "tempo", "lt", "map", "ac",
                                           "nm", "ftp", "cd", "recover", "rest", NULL };
static const char *const ABS_TARGETS[] = { "rpm", "rpe", "watts", "hr", "speed", NULL };
static const char *const REL_TARGETS[] = { "ftp", "map", "ac", "nm", "threshold_hr",
                                           "max_hr", "threshold_speed", NULL };

static bool is_number(json_object *v)
{
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
}

static void warn(pctx *c, const char *fmt, const char *where, const char *what)
{
    if (json_object_array_length(c->warnings) >= 50)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, fmt, where, what);
    json_object_array_add(c->warnings, json_object_new_string(buf));
}

static bool check_intervals(pctx *c, json_object *arr, const char *where, int depth)
{
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0) {
        snprintf(c->err, c->errlen, "%s must be a non-empty array", where);
        return false;
    }
    if (depth > 8) {
        snprintf(c->err, c->errlen, "%s: intervals nested too deeply", where);
        return false;
    }
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        char at[160];
        snprintf(at, sizeof at, "%s[%zu]", where, i);
        json_object *iv = json_object_array_get_idx(arr, i);
        if (++c->count > 2000) {
            snprintf(c->err, c->errlen, "too many intervals");
            return false;
        }
        if (!json_object_is_type(iv, json_type_object)) {
            snprintf(c->err, c->errlen, "%s must be an object", at);
            return false;
        }
        json_object *v = sb_jget(iv, "name");
        if (v && !json_object_is_type(v, json_type_string)) {
            snprintf(c->err, c->errlen, "%s.name must be a string", at);
            return false;
        }
        json_object *tt = sb_jget(iv, "exit_trigger_type");
        if (!tt || !json_object_is_type(tt, json_type_string) ||
            !in_list(json_object_get_string(tt), TRIGGERS)) {
            snprintf(c->err, c->errlen,
                     "%s.exit_trigger_type is required and must be one of time, distance, kj, repeat",
                     at);
            return false;
        }
        const char *trig = json_object_get_string(tt);
        bool repeat = strcmp(trig, "repeat") == 0;
        json_object *tv = sb_jget(iv, "exit_trigger_value");
        if (!is_number(tv)) {
            snprintf(c->err, c->errlen, "%s.exit_trigger_value is required and must be a number", at);
            return false;
        }
        double val = json_object_get_double(tv);
        if (repeat) {
            if (val < 0 || !sb_is_whole(val) || val > 1000) {
                snprintf(c->err, c->errlen,
                         "%s.exit_trigger_value for repeat must be a whole number >= 0 (extra passes)",
                         at);
                return false;
            }
        } else if (!(val > 0)) {
            snprintf(c->err, c->errlen, "%s.exit_trigger_value must be > 0 for %s", at, trig);
            return false;
        }
        v = sb_jget(iv, "intensity_type");
        if (v && (!json_object_is_type(v, json_type_string) ||
                  !in_list(json_object_get_string(v), INTENSITIES))) {
            snprintf(c->err, c->errlen,
                     "%s.intensity_type must be one of active, wu, tempo, lt, map, ac, nm, ftp, cd, "
                     "recover, rest",
                     at);
            return false;
        }
        json_object *targets = sb_jget(iv, "targets");
        if (targets) {
            if (!json_object_is_type(targets, json_type_array)) {
                snprintf(c->err, c->errlen, "%s.targets must be an array", at);
                return false;
            }
            size_t nt = json_object_array_length(targets);
            if (repeat && nt > 0) {
                snprintf(c->err, c->errlen, "%s: targets are not allowed on repeat intervals", at);
                return false;
            }
            for (size_t k = 0; k < nt; k++) {
                json_object *t = json_object_array_get_idx(targets, k);
                char tat[200];
                snprintf(tat, sizeof tat, "%s.targets[%zu]", at, k);
                if (!json_object_is_type(t, json_type_object)) {
                    snprintf(c->err, c->errlen, "%s must be an object", tat);
                    return false;
                }
                json_object *ty = sb_jget(t, "type");
                if (!ty || !json_object_is_type(ty, json_type_string)) {
                    snprintf(c->err, c->errlen, "%s.type is required", tat);
                    return false;
                }
                const char *type = json_object_get_string(ty);
                bool rel = in_list(type, REL_TARGETS);
                if (!rel && !in_list(type, ABS_TARGETS)) {
                    snprintf(c->err, c->errlen, "%s.type '%.40s' is not a known target type", tat,
                             type);
                    return false;
                }
                json_object *lo = sb_jget(t, "low"), *hi = sb_jget(t, "high");
                if (!is_number(lo) || !is_number(hi)) {
                    snprintf(c->err, c->errlen, "%s.low and .high are required numbers", tat);
                    return false;
                }
                double l = json_object_get_double(lo), h = json_object_get_double(hi);
                if (l < 0) {
                    snprintf(c->err, c->errlen, "%s.low must be >= 0", tat);
                    return false;
                }
                if (h < l) {
                    snprintf(c->err, c->errlen, "%s.high must be >= low", tat);
                    return false;
                }
                if (strcmp(type, "rpe") == 0 && (l < 1 || h > 10)) {
                    snprintf(c->err, c->errlen, "%s: rpe targets must lie within 1..10", tat);
                    return false;
                }
                if (rel) {
                    if (!sb_jget(c->header, type))
                        warn(c, "%s: relative target needs header.%s", tat, type);
                    if (h > 5)
                        warn(c, "%s: relative target %s above 5.0 (fractions: 1.0 = 100%%)", tat,
                             type);
                }
                if (k == 0 && nt > 1 && (strcmp(type, "rpm") == 0 || strcmp(type, "rpe") == 0))
                    warn(c, "%s: first target is %s; devices only use the first target", tat, type);
            }
        }
        json_object *controls = sb_jget(iv, "controls");
        if (controls) {
            if (!json_object_is_type(controls, json_type_array)) {
                snprintf(c->err, c->errlen, "%s.controls must be an array", at);
                return false;
            }
            for (size_t k = 0; k < json_object_array_length(controls); k++) {
                json_object *ct = json_object_array_get_idx(controls, k);
                json_object *cty = sb_jget(ct, "type");
                if (!cty || !json_object_is_type(cty, json_type_string) ||
                    strcmp(json_object_get_string(cty), "grade") != 0 ||
                    !is_number(sb_jget(ct, "value"))) {
                    snprintf(c->err, c->errlen,
                             "%s.controls[%zu] must be {\"type\":\"grade\",\"value\":<number>}", at,
                             k);
                    return false;
                }
            }
        }
        json_object *nested = sb_jget(iv, "intervals");
        if (repeat) {
            char nat[200];
            snprintf(nat, sizeof nat, "%s.intervals", at);
            if (!nested) {
                snprintf(c->err, c->errlen, "%s: a repeat interval needs nested intervals", at);
                return false;
            }
            if (!check_intervals(c, nested, nat, depth + 1))
                return false;
        } else if (nested && (!json_object_is_type(nested, json_type_array) ||
                              json_object_array_length(nested) > 0)) {
            snprintf(c->err, c->errlen, "%s: nested intervals are only allowed on repeat intervals",
                     at);
            return false;
        }
    }
    return true;
}

static bool version_ok(const char *s)
{
    int dots = 0, digits = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (!digits)
                return false;
            dots++;
            digits = 0;
        } else if (*p >= '0' && *p <= '9') {
            digits++;
        } else {
            return false;
        }
    }
    return dots == 2 && digits > 0;
}

/* Validates the decoded plan file; returns the parsed JSON or NULL (err set). */
static json_object *check_plan_file(const char *txt, size_t len, json_object *warnings, char *err,
                                    size_t errlen)
{
    char perr[200];
    json_object *f = sb_json_parse_strict(txt, len, perr, sizeof perr);
    if (!f) {
        snprintf(err, errlen, "plan[file]: content is not strict JSON (%s)", perr);
        return NULL;
    }
    if (!json_object_is_type(f, json_type_object)) {
        snprintf(err, errlen, "plan[file]: content must be a JSON object");
        goto bad;
    }
    json_object *h = sb_jget(f, "header");
    if (!h || !json_object_is_type(h, json_type_object)) {
        snprintf(err, errlen, "plan[file]: header object is required");
        goto bad;
    }
    json_object *v = sb_jget(h, "name");
    if (!v || !json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
        snprintf(err, errlen, "plan[file]: header.name is required");
        goto bad;
    }
    v = sb_jget(h, "version");
    if (!v || !json_object_is_type(v, json_type_string) || !version_ok(json_object_get_string(v))) {
        snprintf(err, errlen, "plan[file]: header.version is required (semver string, e.g. \"1.0.0\")");
        goto bad;
    }
    if (json_object_get_string(v)[0] != '1' || json_object_get_string(v)[1] != '.') {
        snprintf(err, errlen, "plan[file]: unsupported plan format version %.20s (major must be 1)",
                 json_object_get_string(v));
        goto bad;
    }
    long long fam;
    v = sb_jget(h, "workout_type_family");
    if (!v || !json_object_is_type(v, json_type_int) || !sb_jv_int(v, &fam) || (fam != 0 && fam != 1)) {
        snprintf(err, errlen, "plan[file]: header.workout_type_family is required (0 = biking, 1 = running)");
        goto bad;
    }
    if (sb_jhas(h, "workout_type_location")) {
        long long loc;
        v = sb_jget(h, "workout_type_location");
        if (!v || !json_object_is_type(v, json_type_int) || !sb_jv_int(v, &loc) ||
            (loc != 0 && loc != 1)) {
            snprintf(err, errlen, "plan[file]: header.workout_type_location must be 0 (indoor) or 1 (outdoor)");
            goto bad;
        }
    } else {
        json_object_array_add(warnings,
                              json_object_new_string("header.workout_type_location missing (documented as required)"));
    }
    v = sb_jget(h, "description");
    if (v && (!json_object_is_type(v, json_type_string) ||
              sb_utf8_chars(json_object_get_string(v)) > 5000)) {
        snprintf(err, errlen, "plan[file]: header.description must be a string of at most 5000 characters");
        goto bad;
    }
    static const char *const ints[] = { "duration_s", "distance_m", NULL };
    for (int i = 0; ints[i]; i++) {
        long long x;
        v = sb_jget(h, ints[i]);
        if (v && (!sb_jv_int(v, &x) || !is_number(v) || x < 0)) {
            snprintf(err, errlen, "plan[file]: header.%s must be a non-negative integer", ints[i]);
            goto bad;
        }
    }
    static const char *const refs[] = { "ftp", "map", "ac", "nm", "threshold_hr", "max_hr",
                                        "threshold_speed", NULL };
    for (int i = 0; refs[i]; i++) {
        v = sb_jget(h, refs[i]);
        if (v && (!is_number(v) || !(json_object_get_double(v) > 0))) {
            snprintf(err, errlen, "plan[file]: header.%s must be a positive number", refs[i]);
            goto bad;
        }
    }
    json_object *iv = sb_jget(f, "intervals");
    if (!iv) {
        snprintf(err, errlen, "plan[file]: intervals array is required");
        goto bad;
    }
    pctx c = { h, warnings, 0, err, errlen };
    char cerr[300];
    c.err = cerr;
    c.errlen = sizeof cerr;
    if (!check_intervals(&c, iv, "intervals", 0)) {
        snprintf(err, errlen, "plan[file]: %s", cerr);
        goto bad;
    }
    return f;
bad:
    json_object_put(f);
    return NULL;
}

/* ------------------------------------------------------------ parameters */

/* Parses the request body into {"plan":{...}} / {"workout":{...}}.
 * allow_json: accept application/json as well as form encoding. */
static json_object *parse_params(sb_req *r, sb_reply *rep, bool allow_json)
{
    char err[200];
    json_object *p = NULL;
    if (sb_ctype_is(r->ctype, "application/x-www-form-urlencoded")) {
        p = sb_form_parse(r->body, r->body_len, err, sizeof err);
        if (!p)
            sb_reply_error(rep, 400, "error", "%s", err);
        return p;
    }
    if (sb_ctype_is(r->ctype, "application/json")) {
        if (!allow_json) {
            sb_reply_error(rep, 422, "error",
                           "plans must be sent form-encoded (application/x-www-form-urlencoded) "
                           "with plan[file] as a data URI");
            return NULL;
        }
        p = sb_json_parse_strict(r->body, r->body_len, err, sizeof err);
        if (!p) {
            sb_reply_error(rep, 400, "error", "%s", err);
            return NULL;
        }
        if (!json_object_is_type(p, json_type_object)) {
            json_object_put(p);
            sb_reply_error(rep, 400, "error", "JSON body must be an object");
            return NULL;
        }
        return p;
    }
    if (r->body_len == 0)
        return json_object_new_object();
    sb_reply_error(rep, 422, "error", "unsupported Content-Type '%.60s'%s",
                   r->ctype ? r->ctype : "(none)",
                   allow_json ? " (use application/x-www-form-urlencoded or application/json)"
                              : " (use application/x-www-form-urlencoded)");
    return NULL;
}

static const char *str_param(json_object *o, const char *key, char *buf, size_t buflen)
{
    return sb_jv_text(sb_jget(o, key), buf, buflen);
}

/* ------------------------------------------------------------------ plans */

static sb_obj *plan_find_owned(long long id, long long user)
{
    sb_obj *ob = sb_coll_find(&plans, id);
    return ob && ob->owner == user ? ob : NULL;
}

typedef struct plan_in {
    char *file_txt;
    size_t file_len;
    json_object *file_json;
    json_object *warnings;
    const char *filename;
    const char *external_id;
    const char *updated_at;
} plan_in;

static void plan_in_free(plan_in *pi)
{
    free(pi->file_txt);
    json_object_put(pi->file_json);
    json_object_put(pi->warnings);
}

static bool decode_plan_file(const char *file, plan_in *pi, sb_reply *rep)
{
    static const char prefix[] = "data:application/json;base64,";
    if (strncasecmp(file, prefix, sizeof prefix - 1) != 0) {
        sb_reply_error(rep, 422, "error",
                       "plan[file] must be a data URI starting with data:application/json;base64,");
        return false;
    }
    const char *b64 = file + sizeof prefix - 1;
    size_t n = sb_base64_decode(b64, strlen(b64), &pi->file_txt);
    if (n == SIZE_MAX) {
        sb_reply_error(rep, 422, "error",
                       "plan[file]: invalid base64 (was '+' sent unescaped in the form body?)");
        return false;
    }
    pi->file_len = n;
    char err[400];
    pi->warnings = json_object_new_array();
    pi->file_json = check_plan_file(pi->file_txt, n, pi->warnings, err, sizeof err);
    if (!pi->file_json) {
        sb_reply_error(rep, 422, "error", "%s", err);
        return false;
    }
    return true;
}

static void plan_apply(sb_obj *ob, plan_in *pi, bool create, long long user)
{
    char now[40], tokhex[33], url[256];
    now_iso(now, sizeof now);
    json_object *o = ob->o;
    json_object *h = sb_jget(pi->file_json, "header");
    json_object_object_add(o, "id", json_object_new_int64(ob->id));
    json_object_object_add(o, "user_id", json_object_new_int64(user));
    json_object_object_add(o, "name", json_object_get(sb_jget(h, "name")));
    json_object_object_add(o, "description", json_object_get(sb_jget(h, "description")));
    sb_random_hex(tokhex, 16);
    snprintf(url, sizeof url, "%s://127.0.0.1:%u/uploads/plan/file/%s/plan.json",
             g_tls ? "https" : "http", g_port, tokhex);
    json_object *file = json_object_new_object();
    json_object_object_add(file, "url", json_object_new_string(url));
    json_object_object_add(o, "file", file);
    json_object_object_add(o, "workout_type_family_id",
                           json_object_get(sb_jget(h, "workout_type_family")));
    json_object_object_add(o, "workout_type_location_id",
                           json_object_get(sb_jget(h, "workout_type_location")));
    if (pi->external_id)
        json_object_object_add(o, "external_id", json_object_new_string(pi->external_id));
    json_object_object_add(o, "provider_updated_at", json_object_new_string(pi->updated_at));
    json_object_object_add(o, "deleted", json_object_new_boolean(false));
    if (create)
        json_object_object_add(o, "created_at", json_object_new_string(now));
    json_object_object_add(o, "updated_at", json_object_new_string(now));

    json_object_put(ob->x);
    ob->x = json_object_new_object();
    json_object_object_add(ob->x, "file_json", json_object_get(pi->file_json));
    json_object_object_add(ob->x, "file_token", json_object_new_string(tokhex));
    json_object_object_add(ob->x, "filename",
                           pi->filename ? json_object_new_string(pi->filename) : NULL);
    json_object_object_add(ob->x, "sandbox_warnings", json_object_get(pi->warnings));
    free(ob->blob);
    ob->blob = pi->file_txt;
    ob->blob_len = pi->file_len;
    pi->file_txt = NULL;
    sb_obj_set_acct(ob, ob->blob_len * 3 + 1024);
}

static void plan_create(sb_req *r, sb_reply *rep, long long user)
{
    json_object *p = parse_params(r, rep, false);
    if (!p)
        return;
    json_object *plan = sb_jget(p, "plan");
    char b1[64], b2[64], b3[64], b4[64];
    plan_in pi = { 0 };
    const char *file = plan ? str_param(plan, "file", b1, sizeof b1) : NULL;
    if (!plan || !json_object_is_type(plan, json_type_object)) {
        sb_reply_error(rep, 422, "error", "param is missing: plan (send plan[file], plan[external_id], plan[provider_updated_at])");
        goto out;
    }
    if (!file || !*file) {
        sb_reply_error(rep, 422, "error", "plan[file] is required");
        goto out;
    }
    pi.external_id = str_param(plan, "external_id", b2, sizeof b2);
    if (!pi.external_id || !*pi.external_id) {
        sb_reply_error(rep, 422, "error", "plan[external_id] is required");
        goto out;
    }
    pi.updated_at = str_param(plan, "provider_updated_at", b3, sizeof b3);
    int64_t ep;
    bool ht;
    if (!pi.updated_at || !*pi.updated_at) {
        sb_reply_error(rep, 422, "error", "plan[provider_updated_at] is required");
        goto out;
    }
    if (!sb_parse_iso8601(pi.updated_at, &ep, &ht)) {
        sb_reply_error(rep, 422, "error", "plan[provider_updated_at] is not an ISO-8601 time");
        goto out;
    }
    pi.filename = str_param(plan, "filename", b4, sizeof b4);
    if (!decode_plan_file(file, &pi, rep))
        goto out;
    pthread_mutex_lock(&g_lock);
    /* Wahoo documents no uniqueness of external_id: a second POST with the
     * same one makes a second plan.  Clients look up with
     * GET /v1/plans?external_id=X first (the documented best practice). */
    if (!sb_store_has_room_locked(&plans, pi.file_len * 3 + 1024)) {
        sb_reply_error(rep, 507, "error", "sandbox store is full");
    } else {
        sb_obj *ob = sb_coll_add(&plans, next_plan_id++, user, json_object_new_object(), 0);
        plan_apply(ob, &pi, true, user);
        sb_reply_json(rep, g_settings.wahoo_create_status, json_object_get(ob->o));
    }
    pthread_mutex_unlock(&g_lock);
out:
    /* p and pi may share nodes with the store: release them under the lock */
    pthread_mutex_lock(&g_lock);
    plan_in_free(&pi);
    json_object_put(p);
    pthread_mutex_unlock(&g_lock);
}

static void plan_update(sb_req *r, sb_reply *rep, long long user, long long id)
{
    json_object *p = parse_params(r, rep, false);
    if (!p)
        return;
    json_object *plan = sb_jget(p, "plan");
    char b1[64], b2[64], b3[64], b4[64];
    plan_in pi = { 0 };
    const char *file = plan ? str_param(plan, "file", b1, sizeof b1) : NULL;
    pthread_mutex_lock(&g_lock);
    bool exists = plan_find_owned(id, user) != NULL;
    pthread_mutex_unlock(&g_lock);
    int64_t ep;
    bool ht;
    if (!exists) {
        sb_reply_error(rep, 404, "error", "Not Found");
        goto out;
    }
    if (!plan || !json_object_is_type(plan, json_type_object)) {
        sb_reply_error(rep, 422, "error", "param is missing: plan");
        goto out;
    }
    if (!file || !*file) {
        sb_reply_error(rep, 422, "error", "plan[file] is required");
        goto out;
    }
    pi.updated_at = str_param(plan, "provider_updated_at", b3, sizeof b3);
    if (!pi.updated_at || !*pi.updated_at) {
        sb_reply_error(rep, 422, "error", "plan[provider_updated_at] is required");
        goto out;
    }
    if (!sb_parse_iso8601(pi.updated_at, &ep, &ht)) {
        sb_reply_error(rep, 422, "error", "plan[provider_updated_at] is not an ISO-8601 time");
        goto out;
    }
    pi.external_id = str_param(plan, "external_id", b2, sizeof b2);
    if (pi.external_id && !*pi.external_id)
        pi.external_id = NULL;
    pi.filename = str_param(plan, "filename", b4, sizeof b4);
    if (!decode_plan_file(file, &pi, rep))
        goto out;
    pthread_mutex_lock(&g_lock);
    sb_obj *ob = plan_find_owned(id, user);
    if (!ob) {
        sb_reply_error(rep, 404, "error", "Not Found");
    } else if (!sb_store_has_room_locked(&plans, pi.file_len * 3 + 1024)) {
        sb_reply_error(rep, 507, "error", "sandbox store is full");
    } else {
        plan_apply(ob, &pi, false, user);
        sb_reply_json(rep, 200, json_object_get(ob->o));
    }
    pthread_mutex_unlock(&g_lock);
out:
    /* p and pi may share nodes with the store: release them under the lock */
    pthread_mutex_lock(&g_lock);
    plan_in_free(&pi);
    json_object_put(p);
    pthread_mutex_unlock(&g_lock);
}

static void workouts_of_plan_unlink_locked(long long plan_id)
{
    for (size_t i = 0; i < workouts.n; i++) {
        json_object *o = workouts.v[i].o;
        long long pid;
        if (sb_jv_int(sb_jget(o, "plan_id"), &pid) && pid == plan_id)
            json_object_object_add(o, "plan_id", NULL);
        json_object *ids = sb_jget(o, "plan_ids");
        if (ids && json_object_is_type(ids, json_type_array)) {
            json_object *n = json_object_new_array();
            for (size_t k = 0; k < json_object_array_length(ids); k++) {
                json_object *e = json_object_array_get_idx(ids, k);
                if (!sb_jv_int(e, &pid) || pid != plan_id)
                    json_object_array_add(n, json_object_get(e));
            }
            json_object_object_add(o, "plan_ids", n);
        }
    }
}

static void plans_route(sb_req *r, sb_reply *rep, long long user)
{
    long long id;
    if (r->nseg == 2) {
        if (sb_method(r, "POST")) {
            plan_create(r, rep, user);
        } else if (sb_method(r, "GET")) {
            const char *ext = sb_query(r, "external_id");
            json_object *arr = json_object_new_array();
            pthread_mutex_lock(&g_lock);
            for (size_t i = 0; i < plans.n; i++) {
                if (plans.v[i].owner != user)
                    continue;
                json_object *e = sb_jget(plans.v[i].o, "external_id");
                if (ext && (!e || strcmp(json_object_get_string(e), ext) != 0))
                    continue;
                json_object_array_add(arr, json_object_get(plans.v[i].o));
            }
            sb_reply_json(rep, 200, arr); /* shares nodes with the store */
            pthread_mutex_unlock(&g_lock);
        } else {
            sb_reply_error(rep, 405, "error", "Method Not Allowed");
        }
        return;
    }
    if (r->nseg != 3 || !sb_seg_id(r, 2, &id)) {
        sb_reply_error(rep, 404, "error", "Not Found");
        return;
    }
    if (sb_method(r, "PUT") || sb_method(r, "PATCH")) {
        plan_update(r, rep, user, id);
        return;
    }
    pthread_mutex_lock(&g_lock);
    sb_obj *ob = plan_find_owned(id, user);
    if (!ob) {
        sb_reply_error(rep, 404, "error", "Not Found");
    } else if (sb_method(r, "GET")) {
        sb_reply_json(rep, 200, json_object_get(ob->o));
    } else if (sb_method(r, "DELETE")) {
        json_object *o = json_object_get(ob->o);
        json_object_object_add(o, "deleted", json_object_new_boolean(true));
        workouts_of_plan_unlink_locked(id);
        sb_coll_del(&plans, id);
        sb_reply_json(rep, 200, o);
    } else {
        sb_reply_error(rep, 405, "error", "Method Not Allowed");
    }
    pthread_mutex_unlock(&g_lock);
}

/* --------------------------------------------------------------- workouts */

/* Validates/apply workout fields from w (object of params) into o.
 * create: enforce required fields.  Caller holds the lock. */
static bool workout_fields_locked(json_object *w, json_object *o, bool create, long long user,
                                  sb_reply *rep)
{
    char buf[64];
    const char *s;
    long long iv;
    double dv;
    /* name, workout_token */
    static const char *const texts[] = { "name", "workout_token", NULL };
    for (int i = 0; texts[i]; i++) {
        bool has = sb_jhas(w, texts[i]);
        s = str_param(w, texts[i], buf, sizeof buf);
        if ((create && (!s || !*s)) || (!create && has && (!s || !*s))) {
            sb_reply_error(rep, 422, "error", "workout[%s] is required", texts[i]);
            return false;
        }
        if (s && strlen(s) > 1000) {
            sb_reply_error(rep, 422, "error", "workout[%s] is too long", texts[i]);
            return false;
        }
    }
    json_object *v = sb_jget(w, "workout_type_id");
    if ((create || sb_jhas(w, "workout_type_id")) &&
        (!sb_jv_int(v, &iv) || iv < 0 || iv > 255)) {
        sb_reply_error(rep, 422, "error", "workout[workout_type_id] is required and must be an integer 0..255");
        return false;
    }
    v = sb_jget(w, "starts");
    int64_t starts = 0;
    bool ht;
    s = sb_jv_text(v, buf, sizeof buf);
    if ((create || sb_jhas(w, "starts")) && (!s || !sb_parse_iso8601(s, &starts, &ht))) {
        sb_reply_error(rep, 422, "error", "workout[starts] is required and must be an ISO-8601 time");
        return false;
    }
    v = sb_jget(w, "minutes");
    if ((create || sb_jhas(w, "minutes")) && (!sb_jv_num(v, &dv) || dv < 0 || dv > 100000)) {
        sb_reply_error(rep, 422, "error", "workout[minutes] is required and must be a number >= 0");
        return false;
    }
    v = sb_jget(w, "day_code");
    if (v && (!sb_jv_int(v, &iv) || iv < 1)) {
        sb_reply_error(rep, 422, "error", "workout[day_code] must be an integer >= 1");
        return false;
    }
    v = sb_jget(w, "route_id");
    if (v && !(json_object_is_type(v, json_type_string) && !*json_object_get_string(v)) &&
        !sb_jv_int(v, &iv)) {
        sb_reply_error(rep, 422, "error", "workout[route_id] must be an integer");
        return false;
    }
    /* plan_id: must name an existing plan of this user; "" / null clears. */
    json_object *pidv = sb_jget(w, "plan_id");
    bool clear_plan = sb_jhas(w, "plan_id") &&
                      (!pidv || (json_object_is_type(pidv, json_type_string) &&
                                 !*json_object_get_string(pidv)));
    long long plan_id = 0;
    if (pidv && !clear_plan) {
        if (!sb_jv_int(pidv, &plan_id)) {
            sb_reply_error(rep, 422, "error", "workout[plan_id] must be an integer");
            return false;
        }
        if (!plan_find_owned(plan_id, user)) {
            sb_reply_error(rep, 422, "error", "workout[plan_id] %lld does not exist", plan_id);
            return false;
        }
    }
    json_object *pids = sb_jget(w, "plan_ids");
    json_object *plan_ids = NULL;
    if (pids) {
        if (!json_object_is_type(pids, json_type_array)) {
            sb_reply_error(rep, 422, "error", "workout[plan_ids] must be an array");
            return false;
        }
        plan_ids = json_object_new_array();
        for (size_t k = 0; k < json_object_array_length(pids); k++) {
            long long x;
            if (!sb_jv_int(json_object_array_get_idx(pids, k), &x) || !plan_find_owned(x, user)) {
                json_object_put(plan_ids);
                sb_reply_error(rep, 422, "error", "workout[plan_ids] contains an unknown plan id");
                return false;
            }
            json_object_array_add(plan_ids, json_object_new_int64(x));
        }
    }

    /* apply */
    for (int i = 0; texts[i]; i++) {
        s = str_param(w, texts[i], buf, sizeof buf);
        if (s)
            json_object_object_add(o, texts[i], json_object_new_string(s));
    }
    if (sb_jv_int(sb_jget(w, "workout_type_id"), &iv))
        json_object_object_add(o, "workout_type_id", json_object_new_int64(iv));
    if ((s = sb_jv_text(sb_jget(w, "starts"), buf, sizeof buf)) && sb_parse_iso8601(s, &starts, &ht)) {
        char iso[40];
        sb_fmt_iso_ms(starts, iso, sizeof iso);
        json_object_object_add(o, "starts", json_object_new_string(iso));
    }
    if (sb_jv_num(sb_jget(w, "minutes"), &dv))
        json_object_object_add(o, "minutes", sb_is_whole(dv) ? json_object_new_int64((long long)dv)
                                                             : json_object_new_double(dv));
    if (sb_jv_int(sb_jget(w, "day_code"), &iv))
        json_object_object_add(o, "day_code", json_object_new_int64(iv));
    if (sb_jhas(w, "route_id"))
        json_object_object_add(o, "route_id", sb_jv_int(sb_jget(w, "route_id"), &iv)
                                                  ? json_object_new_int64(iv) : NULL);
    if (clear_plan) {
        json_object_object_add(o, "plan_id", NULL);
        if (!plan_ids)
            json_object_object_add(o, "plan_ids", json_object_new_array());
    } else if (pidv) {
        json_object_object_add(o, "plan_id", json_object_new_int64(plan_id));
        if (!plan_ids) {
            json_object *a = json_object_new_array();
            json_object_array_add(a, json_object_new_int64(plan_id));
            json_object_object_add(o, "plan_ids", a);
        }
    }
    if (plan_ids) {
        json_object_object_add(o, "plan_ids", plan_ids);
        if (!pidv && !clear_plan)
            json_object_object_add(o, "plan_id",
                                   json_object_array_length(plan_ids)
                                       ? json_object_get(json_object_array_get_idx(plan_ids, 0))
                                       : NULL);
    }
    if (sb_jhas(w, "workout_summary") &&
        json_object_is_type(sb_jget(w, "workout_summary"), json_type_object))
        json_object_object_add(o, "workout_summary", json_object_get(sb_jget(w, "workout_summary")));
    return true;
}

static void workouts_route(sb_req *r, sb_reply *rep, long long user)
{
    long long id;
    char now[40];
    now_iso(now, sizeof now);
    if (r->nseg == 2) {
        if (sb_method(r, "POST")) {
            json_object *p = parse_params(r, rep, true);
            if (!p)
                return;
            json_object *w = sb_jget(p, "workout");
            if (!w || !json_object_is_type(w, json_type_object)) {
                sb_reply_error(rep, 422, "error", "param is missing: workout");
                json_object_put(p);
                return;
            }
            pthread_mutex_lock(&g_lock);
            if (!sb_store_has_room_locked(&workouts, r->body_len + 512)) {
                sb_reply_error(rep, 507, "error", "sandbox store is full");
            } else {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64(next_workout_id));
                json_object_object_add(o, "starts", NULL);
                json_object_object_add(o, "minutes", NULL);
                json_object_object_add(o, "name", NULL);
                json_object_object_add(o, "plan_id", NULL);
                json_object_object_add(o, "plan_ids", json_object_new_array());
                json_object_object_add(o, "route_id", NULL);
                json_object_object_add(o, "workout_token", NULL);
                json_object_object_add(o, "workout_type_id", NULL);
                json_object_object_add(o, "workout_summary", NULL);
                json_object_object_add(o, "day_code", NULL);
                if (workout_fields_locked(w, o, true, user, rep)) {
                    json_object_object_add(o, "created_at", json_object_new_string(now));
                    json_object_object_add(o, "updated_at", json_object_new_string(now));
                    sb_obj *ob = sb_coll_add(&workouts, next_workout_id++, user, o,
                                             r->body_len + 512);
                    ob->x = json_object_new_object();
                    json_object_object_add(ob->x, "starts_raw", json_object_get(sb_jget(w, "starts")));
                    sb_reply_json(rep, g_settings.wahoo_create_status, json_object_get(o));
                } else {
                    json_object_put(o);
                }
            }
            json_object_put(p);
            pthread_mutex_unlock(&g_lock);
        } else if (sb_method(r, "GET")) {
            long long page = 1, per = 30;
            const char *q;
            if ((q = sb_query(r, "page")))
                page = atoll(q) > 0 ? atoll(q) : 1;
            if ((q = sb_query(r, "per_page")))
                per = atoll(q) > 0 && atoll(q) <= 1000 ? atoll(q) : 30;
            pthread_mutex_lock(&g_lock);
            /* sorted by starts, descending (ISO strings sort lexically) */
            size_t n = 0;
            sb_obj **mine = sb_xmalloc((workouts.n + 1) * sizeof *mine);
            for (size_t i = 0; i < workouts.n; i++)
                if (workouts.v[i].owner == user)
                    mine[n++] = &workouts.v[i];
            for (size_t i = 1; i < n; i++)
                for (size_t k = i; k > 0; k--) {
                    const char *a = json_object_get_string(sb_jget(mine[k - 1]->o, "starts"));
                    const char *b = json_object_get_string(sb_jget(mine[k]->o, "starts"));
                    if (strcmp(a ? a : "", b ? b : "") >= 0)
                        break;
                    sb_obj *t = mine[k];
                    mine[k] = mine[k - 1];
                    mine[k - 1] = t;
                }
            json_object *arr = json_object_new_array();
            for (long long i = (page - 1) * per; i < (long long)n && i < page * per; i++)
                json_object_array_add(arr, json_object_get(mine[i]->o));
            free(mine);
            json_object *o = json_object_new_object();
            json_object_object_add(o, "workouts", arr);
            json_object_object_add(o, "total", json_object_new_int64((long long)n));
            json_object_object_add(o, "page", json_object_new_int64(page));
            json_object_object_add(o, "per_page", json_object_new_int64(per));
            json_object_object_add(o, "order", json_object_new_string("descending"));
            json_object_object_add(o, "sort", json_object_new_string("starts"));
            sb_reply_json(rep, 200, o); /* shares nodes with the store */
            pthread_mutex_unlock(&g_lock);
        } else {
            sb_reply_error(rep, 405, "error", "Method Not Allowed");
        }
        return;
    }
    if (!sb_seg_id(r, 2, &id) || r->nseg > 4 || (r->nseg == 4 && !sb_seg_is(r, 3, "plans"))) {
        sb_reply_error(rep, 404, "error", "Not Found");
        return;
    }
    json_object *p = NULL;
    if (r->nseg == 3 && (sb_method(r, "PUT") || sb_method(r, "PATCH"))) {
        p = parse_params(r, rep, true);
        if (!p)
            return;
    }
    pthread_mutex_lock(&g_lock);
    sb_obj *ob = sb_coll_find(&workouts, id);
    if (ob && ob->owner != user)
        ob = NULL;
    if (!ob) {
        sb_reply_error(rep, 404, "error", "Not Found");
    } else if (r->nseg == 4) {
        if (!sb_method(r, "GET")) {
            sb_reply_error(rep, 405, "error", "Method Not Allowed");
        } else {
            json_object *arr = json_object_new_array();
            json_object *ids = sb_jget(ob->o, "plan_ids");
            for (size_t k = 0; ids && k < json_object_array_length(ids); k++) {
                long long pid;
                sb_obj *pl;
                if (sb_jv_int(json_object_array_get_idx(ids, k), &pid) &&
                    (pl = plan_find_owned(pid, user)))
                    json_object_array_add(arr, json_object_get(pl->o));
            }
            sb_reply_json(rep, 200, arr);
        }
    } else if (sb_method(r, "GET")) {
        sb_reply_json(rep, 200, json_object_get(ob->o));
    } else if (sb_method(r, "DELETE")) {
        json_object *o = json_object_get(ob->o);
        sb_coll_del(&workouts, id);
        sb_reply_json(rep, 200, o);
    } else if (p) {
        json_object *w = sb_jget(p, "workout");
        if (!w || !json_object_is_type(w, json_type_object)) {
            sb_reply_error(rep, 422, "error", "param is missing: workout");
        } else {
            json_object *copy = NULL;
            json_object_deep_copy(ob->o, &copy, NULL);
            if (copy && workout_fields_locked(w, copy, false, user, rep)) {
                json_object_object_add(copy, "updated_at", json_object_new_string(now));
                json_object_put(ob->o);
                ob->o = copy;
                if (sb_jhas(w, "starts") && ob->x)
                    json_object_object_add(ob->x, "starts_raw", json_object_get(sb_jget(w, "starts")));
                sb_reply_json(rep, 200, json_object_get(ob->o));
            } else {
                json_object_put(copy);
            }
        }
    } else {
        sb_reply_error(rep, 405, "error", "Method Not Allowed");
    }
    json_object_put(p);
    pthread_mutex_unlock(&g_lock);
}

/* --------------------------------------------------------------- dispatch */

bool sb_wahoo_handle(sb_req *r, sb_reply *rep)
{
    if (!sb_wahoo_owns_path(r->path))
        return false;

    /* CDN-style plan file download: no auth, no rate limit. */
    if (strncmp(r->path, "/uploads/plan/file/", 19) == 0) {
        bool found = false;
        if (r->nseg == 5 && sb_seg_is(r, 4, "plan.json") && sb_method(r, "GET")) {
            pthread_mutex_lock(&g_lock);
            for (size_t i = 0; i < plans.n && !found; i++) {
                json_object *t = sb_jget(plans.v[i].x, "file_token");
                if (t && strcmp(json_object_get_string(t), r->seg[3]) == 0) {
                    sb_reply_raw(rep, 200, "application/json", plans.v[i].blob, plans.v[i].blob_len);
                    found = true;
                }
            }
            pthread_mutex_unlock(&g_lock);
        }
        if (!found)
            sb_reply_raw(rep, 404, "application/xml",
                         "<Error><Code>NoSuchKey</Code></Error>", 37);
        return true;
    }

    pthread_mutex_lock(&g_lock);
    rl_count_request_locked();
    long wait = g_settings.enforce_rate_limits ? rl_exhausted_locked() : 0;
    pthread_mutex_unlock(&g_lock);
    if (wait > 0) {
        char buf[32];
        sb_reply_error(rep, 429, "error", "Too Many Requests");
        snprintf(buf, sizeof buf, "%ld", wait);
        sb_reply_header(rep, "X-RateLimit-Reset", buf);
    } else {
        sb_auth auth;
        if (!sb_auth_check(r, &auth)) {
            sb_reply_error(rep, 401, "error", "Unauthorized: %s", auth.reason);
            sb_reply_header(rep, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        } else if (r->nseg < 0) {
            sb_reply_error(rep, 404, "error", "Not Found");
        } else if (sb_seg_is(r, 1, "plans")) {
            plans_route(r, rep, auth.user_id);
        } else if (sb_seg_is(r, 1, "workouts")) {
            workouts_route(r, rep, auth.user_id);
        } else if (sb_seg_is(r, 1, "permissions") && r->nseg == 2 && sb_method(r, "DELETE")) {
            sb_oauth_revoke_bearer(r);
            sb_reply_json(rep, 200, json_object_new_object());
        } else if (sb_seg_is(r, 1, "user") && r->nseg == 2 && sb_method(r, "GET")) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "id", json_object_new_int64(auth.user_id));
            json_object_object_add(o, "first", json_object_new_string("Sandbox"));
            json_object_object_add(o, "last", json_object_new_string("User"));
            json_object_object_add(o, "email", json_object_new_string("sandbox@example.invalid"));
            sb_reply_json(rep, 200, o);
        } else {
            sb_reply_error(rep, 404, "error", "Not Found");
        }
        sb_auth_free(&auth);
    }
    pthread_mutex_lock(&g_lock);
    sb_wahoo_ratelimit_headers_locked(rep);
    pthread_mutex_unlock(&g_lock);
    return true;
}

json_object *sb_wahoo_store_json_locked(void)
{
    json_object *w = json_object_new_object();
    json_object *pa = json_object_new_array();
    for (size_t i = 0; i < plans.n; i++) {
        json_object *o = NULL;
        json_object_deep_copy(plans.v[i].o, &o, NULL);
        if (!o)
            continue;
        json_object_object_foreach(plans.v[i].x, k, v)
        {
            if (strcmp(k, "file_token") != 0)
                json_object_object_add(o, k, json_object_get(v));
        }
        json_object_array_add(pa, o);
    }
    json_object *wa = json_object_new_array();
    for (size_t i = 0; i < workouts.n; i++) {
        json_object *o = NULL;
        json_object_deep_copy(workouts.v[i].o, &o, NULL);
        if (!o)
            continue;
        if (workouts.v[i].x) {
            json_object_object_foreach(workouts.v[i].x, k, v)
            {
                json_object_object_add(o, k, json_object_get(v));
            }
        }
        json_object_array_add(wa, o);
    }
    json_object_object_add(w, "plans", pa);
    json_object_object_add(w, "workouts", wa);
    return w;
}

/* Plans per external_id and workouts per workout_token: more than one is a
 * duplicate (Wahoo itself accepts them). */
json_object *sb_wahoo_counts_json_locked(void)
{
    json_object *o = json_object_new_object();
    json_object *byext = json_object_new_object(), *bytok = json_object_new_object();
    for (size_t i = 0; i < plans.n; i++)
        sb_count_add(byext, json_object_get_string(sb_jget(plans.v[i].o, "external_id")));
    for (size_t i = 0; i < workouts.n; i++)
        sb_count_add(bytok, json_object_get_string(sb_jget(workouts.v[i].o, "workout_token")));
    json_object_object_add(o, "plans", json_object_new_int64((long long)plans.n));
    json_object_object_add(o, "workouts", json_object_new_int64((long long)workouts.n));
    json_object_object_add(o, "duplicate_plans", json_object_new_int64(sb_count_extra(byext)));
    json_object_object_add(o, "duplicate_workouts", json_object_new_int64(sb_count_extra(bytok)));
    json_object_object_add(o, "plans_by_external_id", byext);
    json_object_object_add(o, "workouts_by_token", bytok);
    return o;
}
