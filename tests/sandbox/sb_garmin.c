/* wsync-sandbox: Garmin Connect Training API V2 (workouts, schedules). */
#include "sandbox.h"

#include <math.h> /* isfinite only: no libm needed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sb_coll gworkouts, gschedules;
static long long next_gworkout_id = 3000001, next_schedule_id = 4000001, next_step_id = 9000001;

void sb_garmin_reset_locked(void)
{
    sb_coll_clear(&gworkouts);
    sb_coll_clear(&gschedules);
}

static bool has_prefix(const char *path, const char *pre)
{
    size_t n = strlen(pre);
    return strncmp(path, pre, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool sb_garmin_owns_path(const char *path)
{
    return has_prefix(path, "/workoutportal") || has_prefix(path, "/training-api") ||
           has_prefix(path, "/userPermissions") || has_prefix(path, "/wellness-api");
}

static void route_failed(sb_reply *rep)
{
    sb_reply_error(rep, 500, "message", "RouteFailed");
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const char *const SPORTS[] = { "RUNNING", "CYCLING", "LAP_SWIMMING", "STRENGTH_TRAINING",
                                      "CARDIO_TRAINING", "GENERIC", "YOGA", "PILATES",
                                      "MULTI_SPORT", NULL };
static const char *const INTENSITY[] = { "REST", "WARMUP", "COOLDOWN", "RECOVERY", "ACTIVE",
                                         "INTERVAL", "MAIN", NULL };
static const char *const DURATIONS[] = { "TIME", "DISTANCE", "HR_LESS_THAN", "HR_GREATER_THAN",
                                         "CALORIES", "OPEN", "POWER_LESS_THAN",
                                         "POWER_GREATER_THAN", "TIME_AT_VALID_CDA", "FIXED_REST",
                                         "REPS", "REPETITION_SWIM_CSS_OFFSET",
                                         "FIXED_REPETITION", NULL };
static const char *const TARGETS[] = { "SPEED", "HEART_RATE", "CADENCE", "POWER", "GRADE",
                                       "RESISTANCE", "POWER_3S", "POWER_10S", "POWER_30S",
                                       "POWER_LAP", "SPEED_LAP", "HEART_RATE_LAP", "OPEN", "PACE",
                                       NULL };
static const char *const SECONDARY[] = { "SPEED", "HEART_RATE", "CADENCE", "POWER", "GRADE",
                                         "RESISTANCE", "POWER_3S", "POWER_10S", "POWER_30S",
                                         "POWER_LAP", "SPEED_LAP", "HEART_RATE_LAP", "OPEN",
                                         "PACE", "SWIM_INSTRUCTION", "SWIM_CSS_OFFSET",
                                         "PACE_ZONE", NULL };
static const char *const REPEATS[] = { "REPEAT_UNTIL_STEPS_CMPLT", "REPEAT_UNTIL_TIME",
                                       "REPEAT_UNTIL_DISTANCE", "REPEAT_UNTIL_CALORIES",
                                       "REPEAT_UNTIL_HR_LESS_THAN", "REPEAT_UNTIL_HR_GREATER_THAN",
                                       "REPEAT_UNTIL_POWER_LESS_THAN",
                                       "REPEAT_UNTIL_POWER_GREATER_THAN",
                                       "REPEAT_UNTIL_POWER_LAST_LAP_LESS_THAN",
                                       "REPEAT_UNTIL_MAX_POWER_LAST_LAP_LESS_THAN", NULL };
static const char *const TOP_KEYS[] = { "workoutId", "ownerId", "workoutName", "description",
                                        "updatedDate", "createdDate", "sport",
                                        "estimatedDurationInSecs", "estimatedDistanceInMeters",
                                        "poolLength", "poolLengthUnit", "workoutProvider",
                                        "workoutSourceId", "isSessionTransitionEnabled",
                                        "segments", NULL };

typedef struct gctx {
    int steps;
    bool swim;
    double secs, meters;
    int status;
    char err[300];
} gctx;

static bool fail(gctx *c, int status, const char *fmt, const char *a, const char *b)
{
    c->status = status;
    snprintf(c->err, sizeof c->err, fmt, a, b);
    return false;
}

static bool opt_enum(json_object *o, const char *key, const char *const *list)
{
    json_object *v = sb_jget(o, key);
    return !v || (json_object_is_type(v, json_type_string) && in_list(json_object_get_string(v), list));
}

static bool opt_num(json_object *o, const char *key)
{
    json_object *v = sb_jget(o, key);
    return !v || json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

static void truncate_str(json_object *o, const char *key, size_t maxchars)
{
    json_object *v = sb_jget(o, key);
    if (!v || !json_object_is_type(v, json_type_string))
        return;
    const char *s = json_object_get_string(v);
    if (sb_utf8_chars(s) <= maxchars)
        return;
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == maxchars)
                break;
            chars++;
        }
    }
    json_object_object_add(o, key, json_object_new_string_len(s, (int)i));
}

/* Validates steps[] in place (assigning stepIds), accumulating counts. */
static bool check_steps(gctx *c, json_object *steps, const char *where, int depth, double mult)
{
    if (!steps || !json_object_is_type(steps, json_type_array) ||
        json_object_array_length(steps) == 0)
        return fail(c, 400, "%s.steps must be a non-empty array%s", where, "");
    if (depth > 5)
        return fail(c, 400, "%s: repeat steps nested too deeply%s", where, "");
    for (size_t i = 0; i < json_object_array_length(steps); i++) {
        json_object *st = json_object_array_get_idx(steps, i);
        char at[200];
        snprintf(at, sizeof at, "%s.steps[%zu]", where, i);
        c->steps++;
        if (!json_object_is_type(st, json_type_object))
            return fail(c, 400, "%s must be an object%s", at, "");
        json_object *ty = sb_jget(st, "type");
        if (!ty || !json_object_is_type(ty, json_type_string))
            return fail(c, 400, "%s.type is required (WorkoutStep or WorkoutRepeatStep)%s", at, "");
        const char *type = json_object_get_string(ty);
        long long iv;
        if (sb_jget(st, "stepOrder") &&
            (!json_object_is_type(sb_jget(st, "stepOrder"), json_type_int) ||
             !sb_jv_int(sb_jget(st, "stepOrder"), &iv) || iv < 1))
            return fail(c, 400, "%s.stepOrder must be a positive integer%s", at, "");
        if (!opt_enum(st, "intensity", INTENSITY))
            return fail(c, 400, "%s.intensity is not a valid value%s", at, "");
        if (sb_jget(st, "description") && !json_object_is_type(sb_jget(st, "description"), json_type_string))
            return fail(c, 400, "%s.description must be a string%s", at, "");
        truncate_str(st, "description", 512);
        json_object_object_add(st, "stepId", json_object_new_int64(next_step_id++));
        if (strcmp(type, "WorkoutRepeatStep") == 0) {
            json_object *rt = sb_jget(st, "repeatType");
            if (!rt || !opt_enum(st, "repeatType", REPEATS))
                return fail(c, 400, "%s.repeatType is required and must be a REPEAT_UNTIL_* value%s", at, "");
            json_object *rv = sb_jget(st, "repeatValue");
            double reps;
            if (!rv || !sb_jv_num(rv, &reps) || json_object_is_type(rv, json_type_string) || reps < 0)
                return fail(c, 400, "%s.repeatValue is required and must be a number >= 0%s", at, "");
            if (sb_jget(st, "skipLastRestStep") &&
                !json_object_is_type(sb_jget(st, "skipLastRestStep"), json_type_boolean))
                return fail(c, 400, "%s.skipLastRestStep must be a boolean%s", at, "");
            double m = strcmp(json_object_get_string(rt), "REPEAT_UNTIL_STEPS_CMPLT") == 0 ? reps : 1;
            if (!check_steps(c, sb_jget(st, "steps"), at, depth + 1, mult * m))
                return false;
            continue;
        }
        if (strcmp(type, "WorkoutStep") != 0)
            return fail(c, 400, "%s.type '%.40s' is not WorkoutStep or WorkoutRepeatStep", at, type);
        if (sb_jget(st, "steps"))
            return fail(c, 400, "%s: only WorkoutRepeatStep may contain steps%s", at, "");
        json_object *dt = sb_jget(st, "durationType");
        if (!dt || !opt_enum(st, "durationType", DURATIONS))
            return fail(c, 400, "%s.durationType is required and must be a valid value%s", at, "");
        const char *dts = json_object_get_string(dt);
        json_object *dv = sb_jget(st, "durationValue");
        if (!opt_num(st, "durationValue"))
            return fail(c, 400, "%s.durationValue must be a number%s", at, "");
        if (!dv && strcmp(dts, "OPEN") != 0 && strcmp(dts, "REPS") != 0)
            return fail(c, 400, "%s.durationValue is required for durationType %s", at, dts);
        if (dv && json_object_get_double(dv) < 0)
            return fail(c, 400, "%s.durationValue must be >= 0%s", at, "");
        if (sb_jget(st, "durationValueType") &&
            !json_object_is_type(sb_jget(st, "durationValueType"), json_type_string))
            return fail(c, 400, "%s.durationValueType must be a string%s", at, "");
        if (dv && strcmp(dts, "TIME") == 0)
            c->secs += json_object_get_double(dv) * mult;
        if (dv && strcmp(dts, "DISTANCE") == 0)
            c->meters += json_object_get_double(dv) * mult;
        if (!opt_enum(st, "targetType", TARGETS))
            return fail(c, 400, "%s.targetType is not a valid value%s", at, "");
        json_object *tt = sb_jget(st, "targetType");
        if (tt && c->swim)
            return fail(c, 400, "%s.targetType must be null for swim workouts%s", at, "");
        static const char *const nums[] = { "targetValue", "targetValueLow", "targetValueHigh",
                                            "secondaryTargetValue", "secondaryTargetValueLow",
                                            "secondaryTargetValueHigh", "weightValue", NULL };
        for (int k = 0; nums[k]; k++)
            if (!opt_num(st, nums[k]))
                return fail(c, 400, "%s.%s must be a number", at, nums[k]);
        json_object *lo = sb_jget(st, "targetValueLow"), *hi = sb_jget(st, "targetValueHigh");
        if (lo && hi && json_object_get_double(hi) < json_object_get_double(lo))
            return fail(c, 400, "%s: targetValueHigh must be >= targetValueLow%s", at, "");
        if ((lo || hi) && !tt)
            return fail(c, 400, "%s: targetValueLow/High given without targetType%s", at, "");
        json_object *zv = sb_jget(st, "targetValue");
        if (tt && zv && !lo && !hi) {
            const char *t = json_object_get_string(tt);
            double z = json_object_get_double(zv);
            if (strcmp(t, "HEART_RATE") == 0 && (z < 1 || z > 5 || !sb_is_whole(z)))
                return fail(c, 400, "%s.targetValue: heart-rate zone must be 1..5%s", at, "");
            if (strcmp(t, "POWER") == 0 && (z < 1 || z > 7 || !sb_is_whole(z)))
                return fail(c, 400, "%s.targetValue: power zone must be 1..7%s", at, "");
        }
        if (!opt_enum(st, "secondaryTargetType", SECONDARY))
            return fail(c, 400, "%s.secondaryTargetType is not a valid value%s", at, "");
        json_object *stt = sb_jget(st, "secondaryTargetType");
        if (stt) {
            if (tt && strcmp(json_object_get_string(stt), json_object_get_string(tt)) == 0)
                return fail(c, 400, "%s: secondaryTargetType must differ from targetType%s", at, "");
            if (tt && strcmp(json_object_get_string(tt), "OPEN") == 0)
                return fail(c, 400, "%s: OPEN primary target not allowed with a secondary target%s", at, "");
        }
        json_object *slo = sb_jget(st, "secondaryTargetValueLow"),
                    *shi = sb_jget(st, "secondaryTargetValueHigh");
        if (slo && shi && json_object_get_double(shi) < json_object_get_double(slo))
            return fail(c, 400, "%s: secondaryTargetValueHigh must be >= Low%s", at, "");
    }
    return true;
}

/* Validates a workout body; on success fills the server fields into w. */
static bool check_workout(gctx *c, json_object *w)
{
    memset(c, 0, sizeof *c);
    if (!json_object_is_type(w, json_type_object))
        return fail(c, 400, "workout must be a JSON object%s%s", "", "");
    if (sb_jhas(w, "steps"))
        return fail(c, 500, "Unrecognized field \"steps\" at top level (steps belong inside segments[])%s%s", "", "");
    json_object_object_foreach(w, key, val)
    {
        (void)val;
        if (!in_list(key, TOP_KEYS))
            return fail(c, 500, "Unrecognized field \"%.60s\"%s", key, "");
    }
    static const char *const prov[] = { "workoutProvider", "workoutSourceId", NULL };
    for (int i = 0; prov[i]; i++) {
        json_object *v = sb_jget(w, prov[i]);
        if (v && !json_object_is_type(v, json_type_string))
            return fail(c, 400, "%s must be a string%s", prov[i], "");
        if (v && sb_utf8_chars(json_object_get_string(v)) > 20)
            return fail(c, 500, "%s longer than 20 characters%s", prov[i], "");
    }
    json_object *name = sb_jget(w, "workoutName");
    if (!name || !json_object_is_type(name, json_type_string) || !*json_object_get_string(name))
        return fail(c, 400, "workoutName is required%s%s", "", "");
    json_object *d = sb_jget(w, "description");
    if (d && !json_object_is_type(d, json_type_string))
        return fail(c, 400, "description must be a string%s%s", "", "");
    truncate_str(w, "description", 1024);
    json_object *sport = sb_jget(w, "sport");
    if (!sport || !opt_enum(w, "sport", SPORTS))
        return fail(c, 400, "sport is required and must be one of RUNNING, CYCLING, LAP_SWIMMING, "
                            "STRENGTH_TRAINING, CARDIO_TRAINING, GENERIC, YOGA, PILATES, MULTI_SPORT%s%s",
                    "", "");
    bool multi = strcmp(json_object_get_string(sport), "MULTI_SPORT") == 0;
    if (!opt_enum(w, "poolLengthUnit", (const char *const[]){ "YARD", "METER", NULL }) ||
        !opt_num(w, "poolLength"))
        return fail(c, 400, "poolLength/poolLengthUnit invalid%s%s", "", "");
    json_object *segs = sb_jget(w, "segments");
    if (!segs || !json_object_is_type(segs, json_type_array) || json_object_array_length(segs) == 0)
        return fail(c, 400, "segments must be a non-empty array (steps live inside segments)%s%s", "", "");
    if (json_object_array_length(segs) > 25)
        return fail(c, 400, "too many segments (max 25)%s%s", "", "");
    for (size_t i = 0; i < json_object_array_length(segs); i++) {
        json_object *sg = json_object_array_get_idx(segs, i);
        char at[64];
        snprintf(at, sizeof at, "segments[%zu]", i);
        if (!json_object_is_type(sg, json_type_object))
            return fail(c, 400, "%s must be an object%s", at, "");
        long long so;
        if (sb_jget(sg, "segmentOrder") && (!json_object_is_type(sb_jget(sg, "segmentOrder"), json_type_int) ||
                                            !sb_jv_int(sb_jget(sg, "segmentOrder"), &so) || so < 1))
            return fail(c, 400, "%s.segmentOrder must be a positive integer%s", at, "");
        if (!opt_enum(sg, "sport", SPORTS))
            return fail(c, 400, "%s.sport is not a valid value%s", at, "");
        json_object *ss = sb_jget(sg, "sport");
        const char *segsport = ss ? json_object_get_string(ss) : json_object_get_string(sport);
        if (!multi && ss && strcmp(segsport, json_object_get_string(sport)) != 0)
            return fail(c, 400, "%s.sport differs from the workout sport%s", at, "");
        c->swim = strcmp(segsport, "LAP_SWIMMING") == 0;
        if (!check_steps(c, sb_jget(sg, "steps"), at, 0, 1))
            return false;
    }
    int limit = multi ? 250 : 100;
    if (c->steps > limit) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%d", c->steps);
        snprintf(b, sizeof b, "%d", limit);
        return fail(c, 400, "too many steps: %s (limit %s)", a, b);
    }
    json_object_object_add(w, "estimatedDurationInSecs",
                           c->secs > 0 ? json_object_new_int64((long long)(c->secs + 0.5)) : NULL);
    json_object_object_add(w, "estimatedDistanceInMeters",
                           c->meters > 0 ? json_object_new_double(c->meters) : NULL);
    return true;
}

static void garmin_date(char *buf, size_t n)
{
    sb_fmt_iso_ms(sb_now(), buf, n);
    /* 2024-01-02T03:04:05.000Z -> 2024-01-02T03:04:05.0 (the spec's example shape) */
    char *dot = strchr(buf, '.');
    if (dot && (size_t)(dot - buf) + 3 <= n)
        strcpy(dot, ".0");
}

static json_object *parse_json_body(sb_req *r, sb_reply *rep)
{
    if (!sb_ctype_is(r->ctype, "application/json")) {
        sb_reply_error(rep, 415, "message", "Content-Type must be application/json");
        return NULL;
    }
    char err[200];
    json_object *o = sb_json_parse_strict(r->body, r->body_len, err, sizeof err);
    if (!o)
        sb_reply_error(rep, 500, "message", "Could not read JSON: %s", err);
    else if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
        sb_reply_error(rep, 500, "message", "Could not read JSON: object expected");
    }
    return o;
}

/* --------------------------------------------------------------- workouts */

static void workout_create(sb_req *r, sb_reply *rep, long long user)
{
    json_object *w = parse_json_body(r, rep);
    if (!w)
        return;
    gctx c;
    pthread_mutex_lock(&g_lock);
    if (sb_jget(w, "workoutId")) {
        sb_reply_error(rep, 400, "message", "workoutId must not be set on create");
    } else if (!check_workout(&c, w)) {
        sb_reply_error(rep, c.status, "message", "%s", c.err);
    } else if (!sb_store_has_room_locked(&gworkouts, r->body_len * 2 + 512)) {
        sb_reply_error(rep, 507, "message", "sandbox store is full");
    } else {
        char now[40];
        garmin_date(now, sizeof now);
        long long id = next_gworkout_id++;
        json_object_object_add(w, "workoutId", json_object_new_int64(id));
        json_object_object_add(w, "ownerId", json_object_new_int64(user));
        json_object_object_add(w, "createdDate", json_object_new_string(now));
        json_object_object_add(w, "updatedDate", json_object_new_string(now));
        sb_coll_add(&gworkouts, id, user, json_object_get(w), r->body_len * 2 + 512);
        sb_reply_json(rep, 200, json_object_get(w));
    }
    json_object_put(w); /* shared with the store: release under the lock */
    pthread_mutex_unlock(&g_lock);
}

static void workout_by_id(sb_req *r, sb_reply *rep, long long user, long long id)
{
    json_object *w = NULL;
    if (sb_method(r, "PUT")) {
        w = parse_json_body(r, rep);
        if (!w)
            return;
    }
    pthread_mutex_lock(&g_lock);
    sb_obj *ob = sb_coll_find(&gworkouts, id);
    if (ob && ob->owner != user)
        ob = NULL;
    if (!ob) {
        sb_reply_error(rep, 404, "message", "Workout not found");
    } else if (sb_method(r, "GET")) {
        sb_reply_json(rep, 200, json_object_get(ob->o));
    } else if (sb_method(r, "DELETE")) {
        for (size_t i = gschedules.n; i-- > 0;) {
            long long wid;
            if (sb_jv_int(sb_jget(gschedules.v[i].o, "workoutId"), &wid) && wid == id)
                sb_coll_del(&gschedules, gschedules.v[i].id);
        }
        sb_coll_del(&gworkouts, id);
        sb_reply_raw(rep, 204, NULL, NULL, 0);
    } else if (w) {
        long long owner, wid;
        gctx c;
        json_object *ov = sb_jget(w, "ownerId");
        if (!ov) {
            sb_reply_error(rep, 400, "message", "ownerId is required on update");
        } else if (!sb_jv_int(ov, &owner) || owner != ob->owner) {
            sb_reply_error(rep, 403, "message", "ownerId does not match the workout's owner");
        } else if (sb_jget(w, "workoutId") && (!sb_jv_int(sb_jget(w, "workoutId"), &wid) || wid != id)) {
            sb_reply_error(rep, 400, "message", "workoutId in the body does not match the path");
        } else if (!check_workout(&c, w)) {
            sb_reply_error(rep, c.status, "message", "%s", c.err);
        } else {
            char now[40];
            garmin_date(now, sizeof now);
            json_object_object_add(w, "workoutId", json_object_new_int64(id));
            json_object_object_add(w, "ownerId", json_object_new_int64(ob->owner));
            json_object_object_add(w, "createdDate", json_object_get(sb_jget(ob->o, "createdDate")));
            json_object_object_add(w, "updatedDate", json_object_new_string(now));
            json_object_put(ob->o);
            ob->o = json_object_get(w);
            sb_obj_set_acct(ob, r->body_len * 2 + 512);
            sb_reply_json(rep, 200, json_object_get(w));
        }
    } else {
        route_failed(rep);
    }
    json_object_put(w);
    pthread_mutex_unlock(&g_lock);
}

/* -------------------------------------------------------------- schedules */

static bool schedule_fields_locked(json_object *b, long long user, long long *wid, const char **date,
                                   sb_reply *rep)
{
    int y, m, d;
    json_object *wv = sb_jget(b, "workoutId"), *dv = sb_jget(b, "date");
    if (!wv || !json_object_is_type(wv, json_type_int) || !sb_jv_int(wv, wid)) {
        sb_reply_error(rep, 400, "message", "workoutId is required (number)");
        return false;
    }
    if (!dv || !json_object_is_type(dv, json_type_string) ||
        !sb_parse_ymd(json_object_get_string(dv), &y, &m, &d)) {
        sb_reply_error(rep, 400, "message", "date is required (YYYY-MM-DD)");
        return false;
    }
    sb_obj *w = sb_coll_find(&gworkouts, *wid);
    if (!w || w->owner != user) {
        sb_reply_error(rep, 400, "message", "workoutId %lld not found", *wid);
        return false;
    }
    *date = json_object_get_string(dv);
    return true;
}

static json_object *schedule_obj(long long sid, long long wid, const char *date)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "scheduleId", json_object_new_int64(sid));
    json_object_object_add(o, "workoutId", json_object_new_int64(wid));
    json_object_object_add(o, "date", json_object_new_string(date));
    return o;
}

static void schedule_create(sb_req *r, sb_reply *rep, long long user)
{
    json_object *b = parse_json_body(r, rep);
    if (!b)
        return;
    long long wid;
    const char *date;
    pthread_mutex_lock(&g_lock);
    if (sb_jget(b, "scheduleId")) {
        sb_reply_error(rep, 400, "message", "scheduleId must not be set on create");
    } else if (schedule_fields_locked(b, user, &wid, &date, rep)) {
        if (!sb_store_has_room_locked(&gschedules, 256)) {
            sb_reply_error(rep, 507, "message", "sandbox store is full");
        } else {
            long long sid = next_schedule_id++;
            sb_coll_add(&gschedules, sid, user, schedule_obj(sid, wid, date), 256);
            json_object *ans;
            switch (g_settings.garmin_schedule_shape) {
            case SB_SHAPE_WORKOUT_SCHEDULE_ID:
                ans = json_object_new_object();
                json_object_object_add(ans, "workoutScheduleId", json_object_new_int64(sid));
                break;
            case SB_SHAPE_SCHEDULE_ID:
                ans = json_object_new_object();
                json_object_object_add(ans, "scheduleId", json_object_new_int64(sid));
                break;
            case SB_SHAPE_ID:
                ans = json_object_new_object();
                json_object_object_add(ans, "id", json_object_new_int64(sid));
                break;
            default:
                ans = json_object_new_int64(sid);
                break;
            }
            sb_reply_json(rep, 200, ans);
        }
    }
    pthread_mutex_unlock(&g_lock);
    json_object_put(b);
}

static void schedule_list(sb_req *r, sb_reply *rep, long long user)
{
    const char *s = sb_query(r, "startDate"), *e = sb_query(r, "endDate");
    int y, m, d;
    if (!s || !e || !sb_parse_ymd(s, &y, &m, &d) || !sb_parse_ymd(e, &y, &m, &d)) {
        sb_reply_error(rep, 400, "message", "startDate and endDate (YYYY-MM-DD) are required");
        return;
    }
    json_object *arr = json_object_new_array();
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < gschedules.n; i++) {
        const char *dt = json_object_get_string(sb_jget(gschedules.v[i].o, "date"));
        if (gschedules.v[i].owner == user && strcmp(dt, s) >= 0 && strcmp(dt, e) <= 0)
            json_object_array_add(arr, json_object_get(gschedules.v[i].o));
    }
    sb_reply_json(rep, 200, arr); /* shares nodes with the store */
    pthread_mutex_unlock(&g_lock);
}

static void schedule_by_id(sb_req *r, sb_reply *rep, long long user, long long id)
{
    json_object *b = NULL;
    if (sb_method(r, "PUT")) {
        b = parse_json_body(r, rep);
        if (!b)
            return;
    }
    pthread_mutex_lock(&g_lock);
    sb_obj *ob = sb_coll_find(&gschedules, id);
    if (ob && ob->owner != user)
        ob = NULL;
    long long wid, sid;
    const char *date;
    if (!ob) {
        sb_reply_error(rep, 404, "message", "Schedule not found");
    } else if (sb_method(r, "GET")) {
        sb_reply_json(rep, 200, json_object_get(ob->o));
    } else if (sb_method(r, "DELETE")) {
        sb_coll_del(&gschedules, id);
        sb_reply_raw(rep, 204, NULL, NULL, 0);
    } else if (b) {
        if (sb_jget(b, "scheduleId") && (!sb_jv_int(sb_jget(b, "scheduleId"), &sid) || sid != id)) {
            sb_reply_error(rep, 400, "message", "scheduleId in the body does not match the path");
        } else if (schedule_fields_locked(b, user, &wid, &date, rep)) {
            json_object_put(ob->o);
            ob->o = schedule_obj(id, wid, date);
            sb_reply_json(rep, 200, json_object_get(ob->o));
        }
    } else {
        route_failed(rep);
    }
    pthread_mutex_unlock(&g_lock);
    json_object_put(b);
}

/* --------------------------------------------------------------- dispatch */

bool sb_garmin_handle(sb_req *r, sb_reply *rep)
{
    if (!sb_garmin_owns_path(r->path) && g_providers != SB_P_GARMIN)
        return false;
    long long id;
    enum { R_NONE, R_CREATE, R_WORKOUT, R_SCHED_CREATE, R_SCHED_LIST, R_SCHED, R_PERMS, R_USERID } route = R_NONE;
    const char *m = r->method;
    if (r->nseg == 3 && sb_seg_is(r, 0, "workoutportal") && sb_seg_is(r, 1, "workout") &&
        sb_seg_is(r, 2, "v2") && strcmp(m, "POST") == 0)
        route = R_CREATE;
    else if (r->nseg == 4 && sb_seg_is(r, 0, "training-api") && sb_seg_is(r, 1, "workout") &&
             sb_seg_is(r, 2, "v2") &&
             (!strcmp(m, "GET") || !strcmp(m, "PUT") || !strcmp(m, "DELETE")))
        route = R_WORKOUT;
    else if (r->nseg == 2 && sb_seg_is(r, 0, "training-api") && sb_seg_is(r, 1, "schedule") &&
             !strcmp(m, "POST"))
        route = R_SCHED_CREATE;
    else if (r->nseg == 2 && sb_seg_is(r, 0, "training-api") && sb_seg_is(r, 1, "schedule") &&
             !strcmp(m, "GET"))
        route = R_SCHED_LIST;
    else if (r->nseg == 3 && sb_seg_is(r, 0, "training-api") && sb_seg_is(r, 1, "schedule") &&
             (!strcmp(m, "GET") || !strcmp(m, "PUT") || !strcmp(m, "DELETE")))
        route = R_SCHED;
    else if (r->nseg == 1 && sb_seg_is(r, 0, "userPermissions") && !strcmp(m, "GET"))
        route = R_PERMS;
    else if (r->nseg == 4 && sb_seg_is(r, 0, "wellness-api") && sb_seg_is(r, 1, "rest") &&
             sb_seg_is(r, 2, "user") && sb_seg_is(r, 3, "id") && !strcmp(m, "GET"))
        route = R_USERID;
    if (route == R_NONE) {
        route_failed(rep);
        return true;
    }
    if ((route == R_WORKOUT || route == R_SCHED) && !sb_seg_id(r, r->nseg - 1, &id)) {
        sb_reply_error(rep, 400, "message", "id must be a number");
        return true;
    }
    sb_auth auth;
    if (!sb_auth_check(r, &auth)) {
        sb_reply_error(rep, 401, "message", "User access token does not exist (%s)", auth.reason);
        sb_auth_free(&auth);
        return true;
    }
    if (route == R_PERMS) {
        sb_reply_json(rep, 200, json_object_get(auth.permissions));
        sb_auth_free(&auth);
        return true;
    }
    if (route == R_USERID) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", auth.user_id);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "userId", json_object_new_string(buf));
        sb_reply_json(rep, 200, o);
        sb_auth_free(&auth);
        return true;
    }
    pthread_mutex_lock(&g_lock);
    bool need_perm = g_settings.require_permission;
    pthread_mutex_unlock(&g_lock);
    if (need_perm && !auth.perm_workout_import) {
        sb_reply_error(rep, 412, "message", "User permission error: WORKOUT_IMPORT not granted");
        sb_auth_free(&auth);
        return true;
    }
    switch (route) {
    case R_CREATE: workout_create(r, rep, auth.user_id); break;
    case R_WORKOUT: workout_by_id(r, rep, auth.user_id, id); break;
    case R_SCHED_CREATE: schedule_create(r, rep, auth.user_id); break;
    case R_SCHED_LIST: schedule_list(r, rep, auth.user_id); break;
    case R_SCHED: schedule_by_id(r, rep, auth.user_id, id); break;
    default: route_failed(rep); break;
    }
    sb_auth_free(&auth);
    return true;
}

json_object *sb_garmin_store_json_locked(void)
{
    json_object *g = json_object_new_object();
    json_object *wa = json_object_new_array(), *sa = json_object_new_array();
    for (size_t i = 0; i < gworkouts.n; i++)
        json_object_array_add(wa, json_object_get(gworkouts.v[i].o));
    for (size_t i = 0; i < gschedules.n; i++)
        json_object_array_add(sa, json_object_get(gschedules.v[i].o));
    json_object_object_add(g, "workouts", wa);
    json_object_object_add(g, "schedules", sa);
    return g;
}

/* Schedules per "workoutId/date" (two of one workout on one day are a
 * duplicate) and workouts per workoutName (Garmin has no external key, so a
 * name shared by two workouts may be legitimate). */
json_object *sb_garmin_counts_json_locked(void)
{
    json_object *o = json_object_new_object();
    json_object *byname = json_object_new_object(), *bywd = json_object_new_object();
    char key[96];
    for (size_t i = 0; i < gworkouts.n; i++)
        sb_count_add(byname, json_object_get_string(sb_jget(gworkouts.v[i].o, "workoutName")));
    for (size_t i = 0; i < gschedules.n; i++) {
        json_object *s = gschedules.v[i].o;
        snprintf(key, sizeof key, "%lld/%s", (long long)json_object_get_int64(sb_jget(s, "workoutId")),
                 json_object_get_string(sb_jget(s, "date")));
        sb_count_add(bywd, key);
    }
    json_object_object_add(o, "workouts", json_object_new_int64((long long)gworkouts.n));
    json_object_object_add(o, "schedules", json_object_new_int64((long long)gschedules.n));
    json_object_object_add(o, "duplicate_schedules", json_object_new_int64(sb_count_extra(bywd)));
    json_object_object_add(o, "workouts_by_name", byname);
    json_object_object_add(o, "schedules_by_workout_date", bywd);
    return o;
}
