/*
 * trainingpeaks_map.c -- the workout model as TrainingPeaks' planned workout
 * (Partner API): the Structure string, the zone targets, the sport's
 * WorkoutType and the planned-workout object.  No HTTP here.
 */
#define _POSIX_C_SOURCE 200809L

#include "trainingpeaks.h"

#include <json-c/json.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * JSON helpers
 */

/* A number as a JSON integer when whole, else with at most 4 decimals
 * (json-c would print 17 significant digits). */
static json_object *jnum(double v)
{
	char buf[64];
	if (!isfinite(v) || fabs(v) >= 9.0e15)
		v = 0;
	v = round(v * 10000.0) / 10000.0;
	if (floor(v) == v)
		return json_object_new_int64((int64_t)v);
	snprintf(buf, sizeof buf, "%.4f", v);
	/* drop trailing zeros: 62.5000 -> 62.5 */
	for (size_t n = strlen(buf); n > 0 && buf[n - 1] == '0'; n--)
		buf[n - 1] = '\0';
	return json_object_new_double_s(v, buf);
}

static void add_str(json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

/* ---------------------------------------------------------------------------
 * Structure: the workout model -> TrainingPeaks' Structure (PascalCase,
 * Partner API), serialized into a string.
 */

/* Zone tables used when the workout text names a zone (TrainingPeaks has no
 * zone unit in the Partner structure).  Low/high per zone, in percent. */
static const double PACE_ZONES[7][2] = { /* % threshold speed */
	{60, 77}, {78, 87}, {88, 94}, {95, 100}, {101, 103}, {104, 111}, {112, 130},
};

typedef struct target {
	const char *unit;   /* TrainingPeaks IntensityTarget unit, NULL = none */
	double lo, hi;
	char note[96];      /* shown in the step name: a ramp, or a target
	                       TrainingPeaks cannot carry (watts, absolute pace) */
} target;

static double zone_edge(const double (*tab)[2], int n, double zone, int hi)
{
	int z = (int)lround(zone);
	if (z < 1)
		z = 1;
	if (z > n)
		z = n;
	return tab[z - 1][hi];
}

/* An edge of a power or heart-rate zone in the SDK's model (wsync/workout.h,
 * ZONES); the zone number is clamped as zone_edge does. */
static double model_edge(int32_t kind, double zone, int hi)
{
	double e[2];
	int n = kind == WSYNC_TARGET_POWER_ZONE ? 7 : 5, z = (int)lround(zone);
	z = z < 1 ? 1 : z > n ? n : z;
	wsync_zone_percent(kind, z, &e[0], &e[1]);
	return e[hi];
}

static void fmt_pace(double s_per_km, char *buf, size_t n)
{
	int s = s_per_km > 0 && s_per_km < 360000 ? (int)lround(s_per_km) : 0;
	snprintf(buf, n, "%d:%02d", s / 60, s % 60);
}

static void map_target(const wsync_step *s, target *t)
{
	double lo = s->target_low, hi = s->target_high;
	const char *suffix = "%";
	int zone = 0;
	memset(t, 0, sizeof *t);
	if (lo > hi) { /* a ramp down keeps its order only in the note */
		double x = lo;
		lo = hi;
		hi = x;
	}
	switch (s->target_kind) {
	case WSYNC_TARGET_PERCENT_FTP:
		t->unit = "PercentOfFtp";
		break;
	case WSYNC_TARGET_POWER_ZONE:
		t->unit = "PercentOfFtp";
		lo = model_edge(WSYNC_TARGET_POWER_ZONE, lo, 0);
		hi = model_edge(WSYNC_TARGET_POWER_ZONE, hi, 1);
		zone = 1;
		break;
	case WSYNC_TARGET_PERCENT_MAX_HR:
		t->unit = "PercentOfMaxHr";
		suffix = "% HR";
		break;
	case WSYNC_TARGET_PERCENT_LTHR:
		t->unit = "PercentOfThresholdHr";
		suffix = "% LTHR";
		break;
	case WSYNC_TARGET_HR_ZONE:
		t->unit = "PercentOfThresholdHr";
		lo = model_edge(WSYNC_TARGET_HR_ZONE, lo, 0);
		hi = model_edge(WSYNC_TARGET_HR_ZONE, hi, 1);
		suffix = "% LTHR";
		zone = 1;
		break;
	case WSYNC_TARGET_PERCENT_PACE:
		t->unit = "PercentOfThresholdSpeed";
		suffix = "% pace";
		break;
	case WSYNC_TARGET_PACE_ZONE:
		t->unit = "PercentOfThresholdSpeed";
		lo = zone_edge(PACE_ZONES, 7, lo, 0);
		hi = zone_edge(PACE_ZONES, 7, hi, 1);
		suffix = "% pace";
		zone = 1;
		break;
	case WSYNC_TARGET_WATTS:
		/* No absolute-power unit in the Partner structure: keep it visible
		 * in the step name. */
		if (lo == hi)
			snprintf(t->note, sizeof t->note, "%.0f W", lo);
		else
			snprintf(t->note, sizeof t->note, "%.0f-%.0f W", lo, hi);
		return;
	case WSYNC_TARGET_PACE: {
		char a[32], b[32];
		fmt_pace(lo, a, sizeof a);
		fmt_pace(hi, b, sizeof b);
		if (lo == hi)
			snprintf(t->note, sizeof t->note, "%s/km", a);
		else
			snprintf(t->note, sizeof t->note, "%s-%s/km", a, b);
		return;
	}
	default: /* none, freeride */
		return;
	}
	t->lo = lo;
	t->hi = hi;
	if (s->ramp && zone)
		snprintf(t->note, sizeof t->note, "ramp Z%g-Z%g", s->target_low, s->target_high);
	else if (s->ramp)
		snprintf(t->note, sizeof t->note, "ramp %g-%g%s", s->target_low, s->target_high,
		         suffix);
}

static const char *intensity_class(int32_t intensity)
{
	switch (intensity) {
	case WSYNC_INTENSITY_WARMUP: return "WarmUp";
	case WSYNC_INTENSITY_COOLDOWN: return "CoolDown";
	case WSYNC_INTENSITY_RECOVERY: return "Rest";
	default: return "Active";
	}
}

static json_object *length_obj(const char *unit, double value)
{
	json_object *l = json_object_new_object();
	json_object_object_add(l, "Unit", json_object_new_string(unit));
	json_object_object_add(l, "Value", json_object_new_int64((int64_t)llround(value)));
	return l;
}

static json_object *step_obj(const wsync_step *s, const char **primary)
{
	json_object *o = json_object_new_object();
	target t;
	char name[256];

	map_target(s, &t);
	json_object_object_add(o, "Type", json_object_new_string("Step"));
	json_object_object_add(o, "IntensityClass",
	                       json_object_new_string(intensity_class(s->intensity)));
	if (s->cue && *s->cue && t.note[0])
		snprintf(name, sizeof name, "%s (%s)", s->cue, t.note);
	else
		snprintf(name, sizeof name, "%s", s->cue && *s->cue ? s->cue : t.note);
	if (name[0])
		json_object_object_add(o, "Name", json_object_new_string(name));
	switch (s->length_kind) {
	case WSYNC_LENGTH_DISTANCE:
		json_object_object_add(o, "Length", length_obj("Meter", s->length));
		break;
	case WSYNC_LENGTH_OPEN:
		/* Length is required even for a lap-button step. */
		json_object_object_add(o, "Length", length_obj("Second", 0));
		json_object_object_add(o, "OpenDuration", json_object_new_boolean(1));
		break;
	default:
		json_object_object_add(o, "Length", length_obj("Second", s->length));
		break;
	}
	if (t.unit) {
		json_object *it = json_object_new_object();
		json_object_object_add(it, "Unit", json_object_new_string(t.unit));
		json_object_object_add(it, "Value", jnum((t.lo + t.hi) / 2.0));
		if (t.lo != t.hi) {
			json_object_object_add(it, "MinValue", jnum(t.lo));
			json_object_object_add(it, "MaxValue", jnum(t.hi));
		}
		json_object_object_add(o, "IntensityTarget", it);
		if (!*primary)
			*primary = t.unit;
	}
	if (s->cadence_low > 0 || s->cadence_high > 0) {
		double lo = s->cadence_low, hi = s->cadence_high;
		json_object *ct = json_object_new_object();
		if (hi < lo)
			hi = lo;
		json_object_object_add(ct, "Unit", json_object_new_string("rpm"));
		json_object_object_add(ct, "MinValue", jnum(lo));
		json_object_object_add(ct, "MaxValue", jnum(hi));
		json_object_object_add(o, "CadenceTarget", ct);
	}
	return o;
}

/* The Structure string (malloc'ed), or NULL for a workout without steps.
 * *err set on failure. */
char *tp_structure_string(const wsync_workout *w, int *err)
{
	json_object *root, *steps;
	const char *primary = NULL;
	char *out;

	*err = 0;
	if (!w || !w->n_steps || !w->steps)
		return NULL;
	root = json_object_new_object();
	steps = json_object_new_array();
	for (uint32_t i = 0; i < w->n_steps; i = wsync_step_next(w, i)) {
		const wsync_step *s = wsync_workout_step(w, i);
		if (s->kind == WSYNC_STEP_REPEAT) {
			json_object *r = json_object_new_object(), *kids = json_object_new_array();
			uint32_t end = i + 1 + s->child_count;
			if (end > w->n_steps)
				end = w->n_steps;
			json_object_object_add(r, "Type", json_object_new_string("Repetition"));
			json_object_object_add(r, "IntensityClass",
			                       json_object_new_string(intensity_class(s->intensity)));
			json_object_object_add(r, "Length", length_obj("Repetition",
			                                               s->repeat_count ? s->repeat_count : 1));
			for (uint32_t c = i + 1; c < end; c++)
				json_object_array_add(kids, step_obj(wsync_workout_step(w, c), &primary));
			json_object_object_add(r, "Steps", kids);
			json_object_array_add(steps, r);
		} else {
			json_object_array_add(steps, step_obj(s, &primary));
		}
	}
	json_object_object_add(root, "Structure", steps);
	if (primary)
		json_object_object_add(root, "PrimaryIntensityMetric",
		                       json_object_new_string(primary));
	out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
	                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	if (!out)
		*err = 1;
	return out;
}

/* ---------------------------------------------------------------------------
 * Sport -> WorkoutType
 */

/* Keys as wsync_sport_lookup (wsync/workout.h) compares them. */
static const wsync_sport_name SPORTS[] = {
	{"bike", "bike"}, {"cycling", "bike"}, {"cycle", "bike"}, {"ride", "bike"},
	{"biking", "bike"}, {"virtualride", "bike"}, {"roadbike", "bike"},
	{"indoorcycling", "bike"}, {"gravel", "bike"}, {"gravelride", "bike"},
	{"mtb", "mtb"}, {"mountainbike", "mtb"}, {"mountainbiking", "mtb"},
	{"run", "run"}, {"running", "run"}, {"trailrun", "run"}, {"trailrunning", "run"},
	{"virtualrun", "run"}, {"treadmill", "run"},
	{"swim", "swim"}, {"swimming", "swim"}, {"openwaterswim", "swim"},
	{"strength", "strength"}, {"weights", "strength"}, {"weighttraining", "strength"},
	{"gym", "strength"},
	{"xtrain", "x-train"}, {"crosstrain", "x-train"}, {"crosstraining", "x-train"},
	{"xcski", "xc-ski"}, {"nordicski", "xc-ski"}, {"crosscountryskiing", "xc-ski"},
	{"skiing", "xc-ski"},
	{"row", "rowing"}, {"rowing", "rowing"}, {"virtualrow", "rowing"},
	{"walk", "walk"}, {"walking", "walk"}, {"hike", "walk"}, {"hiking", "walk"},
	{"other", "other"},
};

const char *tp_workout_type(const char *sport, const char *fallback)
{
	return wsync_sport_lookup(sport, SPORTS, sizeof SPORTS / sizeof SPORTS[0], fallback);
}

/* The planned-workout object: every field wsync manages, so that a PUT (a
 * full replace) never nulls one of them.  id > 0 adds "Id" (update). */
char *tp_plan_json(const char *default_type, const wsync_request *req, long long athlete_id,
                   long long id, const char *structure)
{
	const wsync_workout_entity *w = req->workout;
	const wsync_scheduled_entity *s = req->scheduled;
	const wsync_workout *st = w->structure;
	json_object *o = json_object_new_object();
	char buf[64], *out;

	if (id > 0)
		json_object_object_add(o, "Id", json_object_new_int64(id));
	json_object_object_add(o, "AthleteId", json_object_new_int64(athlete_id));
	snprintf(buf, sizeof buf, "%.10sT00:00:00", s->scheduled_date);
	json_object_object_add(o, "WorkoutDay", json_object_new_string(buf));
	json_object_object_add(o, "WorkoutType", json_object_new_string(tp_workout_type(w->sport, default_type)));
	add_str(o, "Title", w->name);
	add_str(o, "Description", w->description);
	if (s->scheduled_time && strlen(s->scheduled_time) >= 8) {
		snprintf(buf, sizeof buf, "%.10sT%.8s", s->scheduled_date, s->scheduled_time);
		json_object_object_add(o, "StartTimePlanned", json_object_new_string(buf));
	}
	if (st && st->total_seconds > 0)
		json_object_object_add(o, "TotalTimePlanned", jnum(st->total_seconds / 3600.0));
	if (st && st->total_metres > 0)
		json_object_object_add(o, "DistancePlanned", jnum(st->total_metres));
	if (structure)
		json_object_object_add(o, "Structure", json_object_new_string(structure));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                               JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}
