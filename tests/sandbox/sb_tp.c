/* wsync-sandbox: TrainingPeaks Partner API (athlete profile, planned workouts). */
#include "sandbox.h"

#include <ctype.h>
#include <math.h> /* isfinite only: no libm needed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static sb_coll tworkouts;
static long long next_tp_id = 5000001;

void sb_tp_reset_locked(void)
{
    sb_coll_clear(&tworkouts);
}

bool sb_tp_owns_path(const char *path)
{
    return strcmp(path, "/v1/athlete/profile") == 0 || strcmp(path, "/v1/athlete/profile/") == 0 ||
           strncmp(path, "/v2/workouts", 12) == 0 || strncmp(path, "/v1/athlete", 11) == 0;
}

static void tp_error(sb_reply *rep, int status, const char *fmt, const char *a)
{
    sb_reply_error(rep, status, "Message", fmt, a);
}

static const char *const TYPES[] = { "swim", "bike", "run", "x-train", "mtb", "strength",
                                     "xc-ski", "rowing", "walk", "other", NULL };
static const char *const UNITS[] = { "meter", "mile", "kilometer", "yard", NULL };
static const char *const INT_UNITS[] = { "PercentOfFtp", "PercentOfMaxHr", "PercentOfThresholdHr",
                                         "PercentOfThresholdSpeed", "Rpe", NULL };
static const char *const INT_CLASSES[] = { "WarmUp", "CoolDown", "Active", "Rest", NULL };

static const char *in_list_ci(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(s, *list) == 0)
            return *list;
    return NULL;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* "<product>/<version>" somewhere at the start, e.g. "wsync/0.1.0 (+https://...)". */
static bool ua_ok(const char *ua)
{
    if (!ua)
        return false;
    const char *slash = strchr(ua, '/');
    if (!slash || slash == ua)
        return false;
    for (const char *p = ua; p < slash; p++)
        if (isspace((unsigned char)*p) || (unsigned char)*p < 0x21)
            return false;
    return isalnum((unsigned char)slash[1]) != 0;
}

/* WorkoutDay: yyyy-MM-dd or yyyy-MM-ddTHH:mm:ss[.fff] without a zone; time ignored. */
static bool parse_day(const char *s, long *days)
{
    int y, m, d;
    if (!s || strlen(s) < 10)
        return false;
    char date[11];
    memcpy(date, s, 10);
    date[10] = '\0';
    if (!sb_parse_ymd(date, &y, &m, &d))
        return false;
    const char *p = s + 10;
    if (*p) {
        int64_t ep;
        bool ht;
        if (*p != 'T' || strchr(p, 'Z') || strchr(p, 'z') || strchr(p, '+') || strchr(p + 1, '-'))
            return false;
        if (!sb_parse_iso8601(s, &ep, &ht) || !ht)
            return false;
    }
    *days = sb_days_from_civil(y, m, d);
    return true;
}

static void fmt_day(long days, char *buf, size_t n)
{
    int y, m, d;
    sb_civil_from_days(days, &y, &m, &d);
    snprintf(buf, n, "%04d-%02d-%02dT00:00:00", y, m, d);
}

/* Allowed window: today - 7 days .. today + 1 year. */
static bool day_in_window_locked(long day)
{
    long today = sb_today_days_locked();
    int y, m, d;
    sb_civil_from_days(today, &y, &m, &d);
    if (m == 2 && d == 29)
        d = 28;
    long max = sb_days_from_civil(y + 1, m, d);
    return day >= today - 7 && day <= max;
}

/* ------------------------------------------------------------- structure */

typedef struct sctx {
    double secs, meters;
    bool any_target, non_rpe, fraction_like;
    int steps;
    json_object *warnings;
    char err[300];
} sctx;

static bool sfail(sctx *c, const char *fmt, const char *a)
{
    snprintf(c->err, sizeof c->err, fmt, a);
    return false;
}

static bool is_num(json_object *v)
{
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
}

static bool check_struct_steps(sctx *c, json_object *arr, const char *where, int depth, double mult)
{
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0)
        return sfail(c, "Structure: %s must be a non-empty array of steps", where);
    if (depth > 3)
        return sfail(c, "Structure: %s nested too deeply", where);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *st = json_object_array_get_idx(arr, i);
        char at[160];
        snprintf(at, sizeof at, "%s[%zu]", where, i);
        if (++c->steps > 500)
            return sfail(c, "Structure: too many steps%s", "");
        if (!json_object_is_type(st, json_type_object))
            return sfail(c, "Structure: %s must be an object", at);
        json_object *ty = sb_jget(st, "Type");
        if (!ty || !json_object_is_type(ty, json_type_string) ||
            (strcmp(json_object_get_string(ty), "Step") != 0 &&
             strcmp(json_object_get_string(ty), "Repetition") != 0))
            return sfail(c, "Structure: %s.Type must be Step or Repetition", at);
        bool rep = strcmp(json_object_get_string(ty), "Repetition") == 0;
        json_object *len = sb_jget(st, "Length");
        json_object *lu = sb_jget(len, "Unit"), *lv = sb_jget(len, "Value");
        if (!len || !json_object_is_type(len, json_type_object) || !lu ||
            !json_object_is_type(lu, json_type_string) || !is_num(lv))
            return sfail(c, "Structure: %s.Length {Unit, Value} is required", at);
        const char *unit = json_object_get_string(lu);
        double val = json_object_get_double(lv);
        if (val < 0 || !sb_is_whole(val))
            return sfail(c, "Structure: %s.Length.Value must be a whole number >= 0", at);
        if (sb_jget(st, "OpenDuration") &&
            !json_object_is_type(sb_jget(st, "OpenDuration"), json_type_boolean))
            return sfail(c, "Structure: %s.OpenDuration must be a boolean", at);
        json_object *nm = sb_jget(st, "Name");
        if (nm && !json_object_is_type(nm, json_type_string))
            return sfail(c, "Structure: %s.Name must be a string", at);
        json_object *ic = sb_jget(st, "IntensityClass");
        if (ic && (!json_object_is_type(ic, json_type_string) ||
                   !in_list(json_object_get_string(ic), INT_CLASSES)))
            return sfail(c, "Structure: %s.IntensityClass must be WarmUp, CoolDown, Active or Rest", at);
        if (rep) {
            if (strcmp(unit, "Repetition") != 0 || val < 1)
                return sfail(c, "Structure: %s: a Repetition needs Length {Unit: Repetition, Value >= 1}", at);
            char nat[180];
            snprintf(nat, sizeof nat, "%s.Steps", at);
            json_object *steps = sb_jget(st, "Steps");
            if (!steps)
                return sfail(c, "Structure: %s.Steps is required", at);
            if (depth > 0 && json_object_array_length(c->warnings) < 50)
                json_object_array_add(c->warnings, json_object_new_string("nested Repetition"));
            if (!check_struct_steps(c, steps, nat, depth + 1, mult * val))
                return false;
            continue;
        }
        if (strcmp(unit, "Second") != 0 && strcmp(unit, "Meter") != 0)
            return sfail(c, "Structure: %s.Length.Unit must be Second or Meter", at);
        if (sb_jget(st, "Steps"))
            return sfail(c, "Structure: %s: only a Repetition has Steps", at);
        if (strcmp(unit, "Second") == 0)
            c->secs += val * mult;
        else
            c->meters += val * mult;
        json_object *it = sb_jget(st, "IntensityTarget");
        if (it) {
            json_object *u = sb_jget(it, "Unit");
            if (!json_object_is_type(it, json_type_object) || !u ||
                !json_object_is_type(u, json_type_string) || !in_list(json_object_get_string(u), INT_UNITS))
                return sfail(c, "Structure: %s.IntensityTarget.Unit must be PercentOfFtp, PercentOfMaxHr, "
                                "PercentOfThresholdHr, PercentOfThresholdSpeed or Rpe", at);
            json_object *v = sb_jget(it, "Value"), *mn = sb_jget(it, "MinValue"), *mx = sb_jget(it, "MaxValue");
            if (!is_num(v) || (mn && !is_num(mn)) || (mx && !is_num(mx)))
                return sfail(c, "Structure: %s.IntensityTarget needs a numeric Value (MinValue/MaxValue optional numbers)", at);
            if (mn && mx && json_object_get_double(mx) < json_object_get_double(mn))
                return sfail(c, "Structure: %s.IntensityTarget.MaxValue must be >= MinValue", at);
            if (json_object_get_double(v) < 0 || (mn && json_object_get_double(mn) < 0))
                return sfail(c, "Structure: %s.IntensityTarget values must be >= 0", at);
            c->any_target = true;
            if (strcmp(json_object_get_string(u), "Rpe") != 0) {
                c->non_rpe = true;
                double top = mx ? json_object_get_double(mx) : json_object_get_double(v);
                if (top <= 3.0)
                    c->fraction_like = true;
            }
        }
        json_object *ct = sb_jget(st, "CadenceTarget");
        if (ct) {
            json_object *u = sb_jget(ct, "Unit");
            if (!json_object_is_type(ct, json_type_object) ||
                (u && (!json_object_is_type(u, json_type_string) ||
                       strcasecmp(json_object_get_string(u), "rpm") != 0)) ||
                !is_num(sb_jget(ct, "MinValue")) || !is_num(sb_jget(ct, "MaxValue")) ||
                json_object_get_double(sb_jget(ct, "MaxValue")) <
                    json_object_get_double(sb_jget(ct, "MinValue")))
                return sfail(c, "Structure: %s.CadenceTarget must be {Unit: rpm, MinValue, MaxValue} with Max >= Min", at);
        }
    }
    return true;
}

/* ---------------------------------------------------------------- workouts */

static const char *const NUM_FIELDS[] = { "TotalTimePlanned", "DistancePlanned", "TSSPlanned",
                                          "IFPlanned", "CaloriesPlanned", "EnergyPlanned",
                                          "ElevationGainPlanned", NULL };
static const char *const PREMIUM_FIELDS[] = { "TSSPlanned", "IFPlanned", "CaloriesPlanned",
                                              "EnergyPlanned", "ElevationGainPlanned", "Tags",
                                              NULL };

/* Builds the stored object from the request body. Caller holds the lock.
 * Returns the new object (and *extras) or NULL with the reply set. */
static json_object *build_workout_locked(json_object *in, long long id, long long athlete,
                                         bool is_put, json_object **extras, sb_reply *rep)
{
    long long aid, bid;
    long day;
    json_object *v;
    if (is_put) {
        v = sb_jget(in, "Id");
        if (!v) {
            tp_error(rep, 400, "Id is required%s", "");
            return NULL;
        }
        if (!sb_jv_int(v, &bid) || bid != id) {
            tp_error(rep, 400, "Id in the body does not match the URL%s", "");
            return NULL;
        }
    }
    v = sb_jget(in, "AthleteId");
    if (!v) {
        tp_error(rep, 400, "AthleteId is required%s", "");
        return NULL;
    }
    if (!sb_jv_int(v, &aid)) {
        tp_error(rep, 400, "AthleteId must be a number%s", "");
        return NULL;
    }
    if (aid != athlete) {
        tp_error(rep, 403, "Not allowed to write workouts for this athlete%s", "");
        return NULL;
    }
    v = sb_jget(in, "WorkoutDay");
    if (!v || !json_object_is_type(v, json_type_string)) {
        tp_error(rep, 400, "WorkoutDay is required (yyyy-MM-dd)%s", "");
        return NULL;
    }
    if (!parse_day(json_object_get_string(v), &day)) {
        tp_error(rep, 400, "WorkoutDay '%.40s' is not yyyy-MM-dd or yyyy-MM-ddT00:00:00",
                 json_object_get_string(v));
        return NULL;
    }
    if (!day_in_window_locked(day)) {
        tp_error(rep, 400, "WorkoutDay must be no more than 7 days in the past and no more than 1 year in the future%s", "");
        return NULL;
    }
    if (!g_settings.tp_premium && day > sb_today_days_locked()) {
        tp_error(rep, 403, "Basic athletes cannot have future planned workouts%s", "");
        return NULL;
    }
    v = sb_jget(in, "WorkoutType");
    const char *type = v && json_object_is_type(v, json_type_string)
                           ? in_list_ci(json_object_get_string(v), TYPES) : NULL;
    if (!v) {
        tp_error(rep, 400, "WorkoutType is required%s", "");
        return NULL;
    }
    if (!type) {
        tp_error(rep, 400, "WorkoutType must be one of swim, bike, run, x-train, mtb, strength, xc-ski, rowing, walk, other%s", "");
        return NULL;
    }
    static const char *const strs[] = { "Title", "Description", NULL };
    for (int i = 0; strs[i]; i++) {
        v = sb_jget(in, strs[i]);
        if (v && !json_object_is_type(v, json_type_string)) {
            tp_error(rep, 400, "%s must be a string", strs[i]);
            return NULL;
        }
    }
    v = sb_jget(in, "StartTimePlanned");
    if (v) {
        int64_t ep;
        bool ht;
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        if (!s || !sb_parse_iso8601(s, &ep, &ht) || !ht || strchr(s, 'Z') || strchr(s, '+') ||
            strchr(s + 10, '-')) {
            tp_error(rep, 400, "StartTimePlanned must be yyyy-MM-ddTHH:mm:ss%s", "");
            return NULL;
        }
    }
    for (int i = 0; NUM_FIELDS[i]; i++) {
        v = sb_jget(in, NUM_FIELDS[i]);
        if (v && (!is_num(v) || json_object_get_double(v) < 0)) {
            tp_error(rep, 400, "%s must be a number >= 0", NUM_FIELDS[i]);
            return NULL;
        }
    }
    static const char *const bools[] = { "Locked", "Hidden", NULL };
    for (int i = 0; bools[i]; i++) {
        v = sb_jget(in, bools[i]);
        if (v && !json_object_is_type(v, json_type_boolean)) {
            tp_error(rep, 400, "%s must be a boolean", bools[i]);
            return NULL;
        }
    }
    v = sb_jget(in, "StructureDisplayUnit");
    const char *sdu = NULL;
    if (v && (!json_object_is_type(v, json_type_string) ||
              !(sdu = in_list_ci(json_object_get_string(v), UNITS)))) {
        tp_error(rep, 400, "StructureDisplayUnit must be meter, mile, kilometer or yard%s", "");
        return NULL;
    }
    v = sb_jget(in, "Tags");
    if (v) {
        bool ok = json_object_is_type(v, json_type_array);
        for (size_t i = 0; ok && i < json_object_array_length(v); i++)
            ok = json_object_is_type(json_object_array_get_idx(v, i), json_type_string);
        if (!ok) {
            tp_error(rep, 400, "Tags must be an array of strings%s", "");
            return NULL;
        }
    }
    json_object *warnings = json_object_new_array();
    json_object *sjson = NULL;
    sctx sc;
    memset(&sc, 0, sizeof sc);
    sc.warnings = warnings;
    v = sb_jget(in, "Structure");
    if (v) {
        if (!json_object_is_type(v, json_type_string)) {
            json_object_put(warnings);
            tp_error(rep, 400, "Structure must be a string containing JSON (not a JSON %s)",
                     json_object_is_type(v, json_type_array) ? "array" : "object/value");
            return NULL;
        }
        char perr[200];
        const char *txt = json_object_get_string(v);
        sjson = sb_json_parse_strict(txt, strlen(txt), perr, sizeof perr);
        if (!sjson) {
            json_object_put(warnings);
            tp_error(rep, 400, "Structure is not valid JSON: %s", perr);
            return NULL;
        }
        json_object *steps = sjson;
        if (json_object_is_type(sjson, json_type_object))
            steps = sb_jget(sjson, "Structure");
        if (!steps || !check_struct_steps(&sc, steps, "Structure", 0, 1)) {
            if (!steps)
                snprintf(sc.err, sizeof sc.err, "Structure must be an array of steps or {\"Structure\": [...]}");
            json_object_put(warnings);
            json_object_put(sjson);
            sb_reply_error(rep, 400, "Message", "%s", sc.err);
            return NULL;
        }
        if (sc.fraction_like)
            json_object_array_add(warnings, json_object_new_string(
                "IntensityTarget percent values <= 3: fractions? the wiki examples use whole percents (75 = 75%)"));
    }

    /* build: every field present, missing ones null (the API's PUT semantics) */
    json_object *o = json_object_new_object();
    char daybuf[32], now[40];
    fmt_day(day, daybuf, sizeof daybuf);
    sb_fmt_iso_ms(sb_now(), now, sizeof now);
    now[19] = '\0';
    json_object_object_add(o, "Id", json_object_new_int64(id));
    json_object_object_add(o, "AthleteId", json_object_new_int64(aid));
    json_object_object_add(o, "WorkoutDay", json_object_new_string(daybuf));
    json_object_object_add(o, "WorkoutType", json_object_new_string(type));
    for (int i = 0; strs[i]; i++)
        json_object_object_add(o, strs[i], (v = sb_jget(in, strs[i])) ? json_object_new_string(json_object_get_string(v)) : NULL);
    v = sb_jget(in, "StartTimePlanned");
    json_object_object_add(o, "StartTimePlanned", v ? json_object_new_string(json_object_get_string(v)) : NULL);
    for (int i = 0; NUM_FIELDS[i]; i++) {
        v = sb_jget(in, NUM_FIELDS[i]);
        json_object_object_add(o, NUM_FIELDS[i], v ? json_object_new_double(json_object_get_double(v)) : NULL);
    }
    json_object_object_add(o, "Structure", NULL);
    json_object_object_add(o, "StructureDisplayUnit", sdu ? json_object_new_string(sdu) : NULL);
    v = sb_jget(in, "Tags");
    json_object *tags = NULL;
    if (v)
        json_object_deep_copy(v, &tags, NULL);
    json_object_object_add(o, "Tags", tags);
    for (int i = 0; bools[i]; i++)
        json_object_object_add(o, bools[i], (v = sb_jget(in, bools[i])) ? json_object_new_boolean(json_object_get_boolean(v)) : NULL);
    json_object_object_add(o, "Completed", json_object_new_boolean(false));
    json_object_object_add(o, "LastModifiedDate", json_object_new_string(now));

    *extras = json_object_new_object();
    if (sjson) {
        /* the server computes duration/distance from a non-RPE structure */
        if (!sc.any_target || sc.non_rpe) {
            json_object_object_add(*extras, "submitted_TotalTimePlanned",
                                   json_object_get(sb_jget(o, "TotalTimePlanned")));
            json_object_object_add(*extras, "submitted_DistancePlanned",
                                   json_object_get(sb_jget(o, "DistancePlanned")));
            if (sc.secs > 0)
                json_object_object_add(o, "TotalTimePlanned", json_object_new_double(sc.secs / 3600.0));
            if (sc.meters > 0)
                json_object_object_add(o, "DistancePlanned", json_object_new_double(sc.meters));
        }
        json_object_object_add(*extras, "Structure", json_object_new_string(json_object_get_string(sb_jget(in, "Structure"))));
        json_object_object_add(*extras, "structure_json", sjson);
    } else {
        json_object_object_add(*extras, "structure_json", NULL);
    }
    if (!g_settings.tp_premium)
        for (int i = 0; PREMIUM_FIELDS[i]; i++)
            json_object_object_add(o, PREMIUM_FIELDS[i], NULL);
    json_object_object_add(*extras, "sandbox_warnings", warnings);
    return o;
}

static json_object *parse_body(sb_req *r, sb_reply *rep)
{
    if (!sb_ctype_is(r->ctype, "application/json")) {
        tp_error(rep, 415, "The request entity's media type '%.60s' is not supported for this resource.",
                 r->ctype ? r->ctype : "");
        return NULL;
    }
    char err[200];
    json_object *o = sb_json_parse_strict(r->body, r->body_len, err, sizeof err);
    if (!o) {
        tp_error(rep, 400, "The request is invalid: %s", err);
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        tp_error(rep, 400, "The request is invalid: a JSON object is expected%s", "");
        return NULL;
    }
    return o;
}

static void workout_create(sb_req *r, sb_reply *rep, long long athlete)
{
    json_object *in = parse_body(r, rep);
    if (!in)
        return;
    pthread_mutex_lock(&g_lock);
    json_object *x = NULL;
    if (!sb_store_has_room_locked(&tworkouts, r->body_len * 3 + 512)) {
        tp_error(rep, 507, "sandbox store is full%s", "");
    } else {
        json_object *o = build_workout_locked(in, next_tp_id, athlete, false, &x, rep);
        if (o) {
            sb_obj *ob = sb_coll_add(&tworkouts, next_tp_id++, athlete, o, r->body_len * 3 + 512);
            ob->x = x;
            sb_reply_json(rep, 200, json_object_get(o));
        }
    }
    json_object_put(in);
    pthread_mutex_unlock(&g_lock);
}

static void workout_update(sb_req *r, sb_reply *rep, long long athlete, long long id)
{
    json_object *in = parse_body(r, rep);
    if (!in)
        return;
    pthread_mutex_lock(&g_lock);
    sb_obj *ob = sb_coll_find(&tworkouts, id);
    long day;
    if (!ob || ob->owner != athlete) {
        tp_error(rep, 404, "Workout not found%s", "");
    } else if (parse_day(json_object_get_string(sb_jget(ob->o, "WorkoutDay")), &day) &&
               day < sb_today_days_locked() - 7) {
        tp_error(rep, 400, "Workouts more than 7 days in the past cannot be updated%s", "");
    } else {
        json_object *x = NULL;
        json_object *o = build_workout_locked(in, id, athlete, true, &x, rep);
        if (o) {
            json_object_put(ob->o);
            json_object_put(ob->x);
            ob->o = o;
            ob->x = x;
            sb_obj_set_acct(ob, r->body_len * 3 + 512);
            sb_reply_json(rep, 200, json_object_get(o));
        }
    }
    json_object_put(in);
    pthread_mutex_unlock(&g_lock);
}

bool sb_tp_handle(sb_req *r, sb_reply *rep)
{
    if (!sb_tp_owns_path(r->path) && g_providers != SB_P_TP)
        return false;
    if (!ua_ok(sb_header_get(r, "User-Agent"))) {
        tp_error(rep, 400, "A User-Agent header of the form <client_id>/<version> is required%s", "");
        return true;
    }
    long long id, aid;
    bool profile = r->nseg == 3 && sb_seg_is(r, 0, "v1") && sb_seg_is(r, 1, "athlete") &&
                   sb_seg_is(r, 2, "profile");
    bool plan = r->nseg == 3 && sb_seg_is(r, 0, "v2") && sb_seg_is(r, 1, "workouts") &&
                sb_seg_is(r, 2, "plan");
    bool plan_id = r->nseg == 4 && sb_seg_is(r, 0, "v2") && sb_seg_is(r, 1, "workouts") &&
                   sb_seg_is(r, 2, "plan") && sb_seg_id(r, 3, &id);
    bool by_id = r->nseg == 4 && sb_seg_is(r, 0, "v2") && sb_seg_is(r, 1, "workouts") &&
                 sb_seg_is(r, 2, "id") && sb_seg_id(r, 3, &id);
    bool coach_id = r->nseg == 5 && sb_seg_is(r, 0, "v2") && sb_seg_is(r, 1, "workouts") &&
                    sb_seg_id(r, 2, &aid) && sb_seg_is(r, 3, "id") && sb_seg_id(r, 4, &id);
    int y, m, d;
    bool range = r->nseg == 4 && sb_seg_is(r, 0, "v2") && sb_seg_is(r, 1, "workouts") &&
                 sb_parse_ymd(r->seg[2], &y, &m, &d) && sb_parse_ymd(r->seg[3], &y, &m, &d);
    const char *meth = r->method;
    bool ok_method = (profile && !strcmp(meth, "GET")) || (plan && !strcmp(meth, "POST")) ||
                     (plan_id && !strcmp(meth, "PUT")) ||
                     (by_id && (!strcmp(meth, "GET") || !strcmp(meth, "DELETE"))) ||
                     (coach_id && !strcmp(meth, "DELETE")) || (range && !strcmp(meth, "GET"));
    if (!ok_method) {
        if (profile || plan || plan_id || by_id || coach_id || range)
            tp_error(rep, 405, "The requested resource does not support http method '%.10s'.", meth);
        else
            tp_error(rep, 404, "No HTTP resource was found that matches the request URI%s", "");
        return true;
    }
    sb_auth auth;
    if (!sb_auth_check(r, &auth)) {
        tp_error(rep, 401, "Authorization has been denied for this request. (%s)", auth.reason);
        sb_reply_header(rep, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        sb_auth_free(&auth);
        return true;
    }
    long long athlete = auth.user_id;
    sb_auth_free(&auth);
    if (profile) {
        pthread_mutex_lock(&g_lock);
        bool premium = g_settings.tp_premium;
        pthread_mutex_unlock(&g_lock);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "Id", json_object_new_int64(athlete));
        json_object_object_add(o, "FirstName", json_object_new_string("Sandbox"));
        json_object_object_add(o, "LastName", json_object_new_string("Athlete"));
        json_object_object_add(o, "Email", json_object_new_string("athlete@example.invalid"));
        json_object_object_add(o, "TimeZone", json_object_new_string("UTC"));
        json_object_object_add(o, "IsPremium", json_object_new_boolean(premium));
        json_object_object_add(o, "CoachedBy", NULL);
        sb_reply_json(rep, 200, o);
    } else if (plan) {
        workout_create(r, rep, athlete);
    } else if (plan_id) {
        workout_update(r, rep, athlete, id);
    } else if (range) {
        long from, to;
        parse_day(r->seg[2], &from);
        parse_day(r->seg[3], &to);
        json_object *arr = json_object_new_array();
        pthread_mutex_lock(&g_lock);
        for (size_t i = 0; i < tworkouts.n; i++) {
            long dd;
            if (tworkouts.v[i].owner == athlete &&
                parse_day(json_object_get_string(sb_jget(tworkouts.v[i].o, "WorkoutDay")), &dd) &&
                dd >= from && dd <= to)
                json_object_array_add(arr, json_object_get(tworkouts.v[i].o));
        }
        sb_reply_json(rep, 200, arr);
        pthread_mutex_unlock(&g_lock);
    } else {
        pthread_mutex_lock(&g_lock);
        sb_obj *ob = sb_coll_find(&tworkouts, id);
        if (ob && (ob->owner != athlete || (coach_id && aid != athlete)))
            ob = NULL;
        if (!ob)
            tp_error(rep, 404, "Workout not found%s", "");
        else if (!strcmp(meth, "GET"))
            sb_reply_json(rep, 200, json_object_get(ob->o));
        else {
            sb_coll_del(&tworkouts, id);
            sb_reply_raw(rep, 204, NULL, NULL, 0);
        }
        pthread_mutex_unlock(&g_lock);
    }
    return true;
}

json_object *sb_tp_store_json_locked(void)
{
    json_object *t = json_object_new_object();
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < tworkouts.n; i++) {
        json_object *o = NULL;
        json_object_deep_copy(tworkouts.v[i].o, &o, NULL);
        if (!o)
            continue;
        if (tworkouts.v[i].x) {
            json_object_object_foreach(tworkouts.v[i].x, k, v)
            {
                json_object_object_add(o, k, json_object_get(v));
            }
        }
        json_object_array_add(arr, o);
    }
    json_object_object_add(t, "workouts", arr);
    return t;
}

/* Workouts per "WorkoutDay|Title", the key third-party clients dedupe on
 * (TrainingPeaks has no external id). */
json_object *sb_tp_counts_json_locked(void)
{
    json_object *o = json_object_new_object();
    json_object *by = json_object_new_object();
    char key[600];
    for (size_t i = 0; i < tworkouts.n; i++) {
        json_object *w = tworkouts.v[i].o;
        const char *day = json_object_get_string(sb_jget(w, "WorkoutDay"));
        const char *title = json_object_get_string(sb_jget(w, "Title"));
        snprintf(key, sizeof key, "%.10s|%.500s", day ? day : "", title ? title : "");
        sb_count_add(by, key);
    }
    json_object_object_add(o, "workouts", json_object_new_int64((long long)tworkouts.n));
    json_object_object_add(o, "duplicate_workouts", json_object_new_int64(sb_count_extra(by)));
    json_object_object_add(o, "workouts_by_day_title", by);
    return o;
}
