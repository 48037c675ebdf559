/*
 * garmin_map.c -- the structured workout (wsync/workout.h) as a Garmin
 * Training API V2 workout.  See README.md for the mapping table and the
 * choices made where Garmin has no equivalent.
 */
#include "garmin.h"

#include <limits.h>
#include <math.h> /* isfinite only (a macro): no libm needed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ text */

size_t garmin_utf8_chars(const char *s)
{
	size_t n = 0;
	for (; s && *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

size_t garmin_utf8_prefix(const char *s, size_t max_chars)
{
	size_t chars = 0, i = 0;
	if (!s)
		return 0;
	for (; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (chars == max_chars)
				break;
			chars++;
		}
	}
	return i;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char b = p[0], lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (b < 0x80)
		return 1;
	if (b >= 0xC2 && b <= 0xDF)
		len = 2;
	else if (b >= 0xE0 && b <= 0xEF)
		len = 3;
	else if (b >= 0xF0 && b <= 0xF4)
		len = 4;
	else
		return 0;
	if (b == 0xE0)
		lo = 0xA0;
	else if (b == 0xED)
		hi = 0x9F;
	else if (b == 0xF0)
		lo = 0x90;
	else if (b == 0xF4)
		hi = 0x8F;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

int garmin_utf8_text(const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len = strlen(s), n;

	if (len > max)
		return 0;
	for (; i < len; i += n)
		if ((n = utf8_len(p + i, len - i)) == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7F)))
			return 0;
	return 1;
}

/* --------------------------------------------------------------- numbers */

/* A JSON number rounded to 3 decimals: an integer when it is whole, else a
 * double printed exactly as rounded (json-c's default %.17g would print
 * 3.3330000000000002). */
static json_object *jnum(double v)
{
	long long milli, a;
	char buf[48];
	size_t n;

	if (!isfinite(v) || v > 1e12 || v < -1e12)
		v = 0;
	milli = (long long)(v * 1000.0 + (v < 0 ? -0.5 : 0.5));
	if (milli % 1000 == 0)
		return json_object_new_int64(milli / 1000);
	a = milli < 0 ? -milli : milli;
	snprintf(buf, sizeof buf, "%s%lld.%03lld", milli < 0 ? "-" : "", a / 1000, a % 1000);
	n = strlen(buf);
	while (buf[n - 1] == '0')
		buf[--n] = '\0';
	return json_object_new_double_s((double)milli / 1000.0, buf);
}

/* A number for human text: up to one decimal, no trailing zeros. */
static void fmt_num(char *buf, size_t n, double v)
{
	long long t = (long long)(v * 10.0 + (v < 0 ? -0.5 : 0.5));
	if (t % 10 == 0)
		snprintf(buf, n, "%lld", t / 10);
	else
		snprintf(buf, n, "%lld.%lld", t / 10, (t < 0 ? -t : t) % 10);
}

/* "5:00" from seconds. */
static void fmt_mmss(char *buf, size_t n, double secs)
{
	long long s = (long long)(secs + 0.5);
	snprintf(buf, n, "%lld:%02lld", s / 60, s % 60);
}

/* "A-B" or "A" (the step's values in written order, so a ramp may go down). */
static void fmt_range(char *buf, size_t n, const wsync_step *s, const char *pre,
                      const char *post)
{
	char a[32], b[32];
	fmt_num(a, sizeof a, s->target_low);
	fmt_num(b, sizeof b, s->target_high);
	if (s->target_low == s->target_high)
		snprintf(buf, n, "%s%s%s", pre, a, post);
	else
		snprintf(buf, n, "%s%s-%s%s%s", pre, a, pre, b, post);
}

/* The target as the athlete wrote it, for step descriptions. */
static void fmt_target(char *buf, size_t n, const wsync_step *s, int swim)
{
	char a[32], b[32], r[64];
	double div = swim ? 10.0 : 1.0;
	const char *unit = swim ? "/100m" : "/km";

	switch (s->target_kind) {
	case WSYNC_TARGET_PERCENT_FTP:
		fmt_range(r, sizeof r, s, "", "");
		snprintf(buf, n, "%s%% FTP", r);
		break;
	case WSYNC_TARGET_WATTS:
		fmt_range(r, sizeof r, s, "", "");
		snprintf(buf, n, "%s W", r);
		break;
	case WSYNC_TARGET_POWER_ZONE:
		fmt_range(buf, n, s, "Z", "");
		break;
	case WSYNC_TARGET_PERCENT_MAX_HR:
		fmt_range(r, sizeof r, s, "", "");
		snprintf(buf, n, "%s%% max HR", r);
		break;
	case WSYNC_TARGET_PERCENT_LTHR:
		fmt_range(r, sizeof r, s, "", "");
		snprintf(buf, n, "%s%% LTHR", r);
		break;
	case WSYNC_TARGET_HR_ZONE:
		fmt_range(r, sizeof r, s, "Z", "");
		snprintf(buf, n, "%s HR", r);
		break;
	case WSYNC_TARGET_PERCENT_PACE:
		fmt_range(r, sizeof r, s, "", "");
		snprintf(buf, n, "%s%% threshold pace", r);
		break;
	case WSYNC_TARGET_PACE_ZONE:
		fmt_range(r, sizeof r, s, "Z", "");
		snprintf(buf, n, "pace %s", r);
		break;
	case WSYNC_TARGET_PACE:
		fmt_mmss(a, sizeof a, s->target_low / div);
		fmt_mmss(b, sizeof b, s->target_high / div);
		if (s->target_low == s->target_high)
			snprintf(buf, n, "%s%s", a, unit);
		else
			snprintf(buf, n, "%s-%s%s", a, b, unit);
		break;
	default:
		snprintf(buf, n, "no target");
		break;
	}
}

/* ----------------------------------------------------------------- sport */

/* Keys as wsync_sport_lookup (wsync/workout.h) compares them. */
static const wsync_sport_name sports[] = {
	{"bike", "CYCLING"}, {"biking", "CYCLING"}, {"cycling", "CYCLING"},
	{"cycle", "CYCLING"}, {"ride", "CYCLING"}, {"virtualride", "CYCLING"},
	{"roadbike", "CYCLING"}, {"roadcycling", "CYCLING"}, {"indoorcycling", "CYCLING"},
	{"mtb", "CYCLING"}, {"mountainbike", "CYCLING"}, {"mountainbikeride", "CYCLING"},
	{"gravel", "CYCLING"}, {"gravelride", "CYCLING"}, {"ebikeride", "CYCLING"},
	{"run", "RUNNING"}, {"running", "RUNNING"}, {"virtualrun", "RUNNING"},
	{"trailrun", "RUNNING"}, {"trailrunning", "RUNNING"}, {"treadmill", "RUNNING"},
	{"treadmillrunning", "RUNNING"},
	{"swim", "LAP_SWIMMING"}, {"swimming", "LAP_SWIMMING"},
	{"lapswimming", "LAP_SWIMMING"}, {"poolswim", "LAP_SWIMMING"},
	{"strength", "STRENGTH_TRAINING"}, {"strengthtraining", "STRENGTH_TRAINING"},
	{"weighttraining", "STRENGTH_TRAINING"},
	{"cardio", "CARDIO_TRAINING"}, {"cardiotraining", "CARDIO_TRAINING"},
	{"yoga", "YOGA"}, {"pilates", "PILATES"}, {"generic", "GENERIC"},
};

static const char *const valid_sports[] = {
	"RUNNING", "CYCLING", "LAP_SWIMMING", "STRENGTH_TRAINING", "CARDIO_TRAINING",
	"GENERIC", "YOGA", "PILATES",
};

int garmin_sport_valid(const char *name)
{
	for (size_t i = 0; name && i < sizeof valid_sports / sizeof valid_sports[0]; i++)
		if (!strcmp(name, valid_sports[i]))
			return 1;
	return 0;
}

const char *garmin_sport(const char *sport, const char *fallback)
{
	return wsync_sport_lookup(sport, sports, sizeof sports / sizeof sports[0], fallback);
}

/* ----------------------------------------------------------------- steps */

uint32_t garmin_step_count(const wsync_workout *w)
{
	return w ? w->n_steps : 0;
}

/* Zones are the SDK's model (wsync/workout.h, ZONES).  Power zones go as
 * their % FTP range, so that Z2 is 56-75 % here as on every provider.
 * Heart rate: Garmin's API takes % of MAX heart rate or the athlete's own
 * Garmin zone number, never % of threshold HR, so a heart-rate zone goes as
 * its zone number (the athlete's zones in Garmin Connect; README.md). */
static int zone_index(double z, int max)
{
	int i = (int)(z + 0.5);
	return i < 1 ? 1 : i > max ? max : i;
}

/* A step's primary target in Garmin terms. */
typedef struct gtarget {
	const char *type;       /* NULL: no primary target */
	int zone;               /* > 0: targetValue */
	double low, high;       /* range when zone == 0 */
	const char *value_type; /* "PERCENT" or NULL */
	int note;               /* approximated or dropped: say it in the text */
} gtarget;

static gtarget map_target(const wsync_step *s)
{
	gtarget t = {0};
	double lo = s->target_low < s->target_high ? s->target_low : s->target_high;
	double hi = s->target_low < s->target_high ? s->target_high : s->target_low;
	int zl, zh;

	t.low = lo;
	t.high = hi;
	switch (s->target_kind) {
	case WSYNC_TARGET_PERCENT_FTP:
		t.type = "POWER";
		t.value_type = "PERCENT";
		break;
	case WSYNC_TARGET_WATTS:
		t.type = "POWER";
		break;
	case WSYNC_TARGET_POWER_ZONE:
		t.type = "POWER";
		zl = zone_index(lo, 7);
		zh = zone_index(hi, 7);
		wsync_zone_percent(WSYNC_TARGET_POWER_ZONE, zl, &t.low, &lo);
		wsync_zone_percent(WSYNC_TARGET_POWER_ZONE, zh, &hi, &t.high);
		t.value_type = "PERCENT";
		break;
	case WSYNC_TARGET_PERCENT_MAX_HR:
		t.type = "HEART_RATE";
		t.value_type = "PERCENT";
		break;
	case WSYNC_TARGET_PERCENT_LTHR:
		t.type = "HEART_RATE";
		t.zone = wsync_hr_zone_of((lo + hi) / 2.0);
		t.note = 1;
		break;
	case WSYNC_TARGET_HR_ZONE:
		t.type = "HEART_RATE";
		zl = zone_index(lo, 5);
		zh = zone_index(hi, 5);
		t.zone = zl; /* one zone number: a range keeps its top in the text */
		t.note = zl != zh;
		break;
	case WSYNC_TARGET_PACE:
		if (lo > 0 && hi > 0) {
			/* seconds per km -> m/s; the faster pace is the higher speed */
			t.type = "PACE";
			t.low = 1000.0 / hi;
			t.high = 1000.0 / lo;
		} else {
			t.note = 1;
		}
		break;
	case WSYNC_TARGET_PERCENT_PACE:
	case WSYNC_TARGET_PACE_ZONE:
		t.note = 1; /* no threshold pace known to Garmin's API: text only */
		break;
	default:
		break;
	}
	return t;
}

typedef struct mapper {
	const garmin_cfg *cfg;
	int swim;
	int order; /* last stepOrder used */
} mapper;

static const char *intensity(const mapper *m, int32_t in)
{
	switch (in) {
	case WSYNC_INTENSITY_WARMUP: return "WARMUP";
	case WSYNC_INTENSITY_COOLDOWN: return "COOLDOWN";
	case WSYNC_INTENSITY_RECOVERY: return "RECOVERY";
	default: return m->cfg->active_intensity;
	}
}

static void add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

static void add_str(json_object *o, const char *key, const char *v)
{
	add(o, key, json_object_new_string(v));
}

/* Append "; text" (or "text") to buf. */
static void note(char *buf, size_t n, const char *text)
{
	size_t l = strlen(buf);
	if (l + 1 < n)
		snprintf(buf + l, n - l, "%s%s", l ? "; " : "", text);
}

static void add_text(json_object *o, const char *key, const char *text, size_t max_chars)
{
	size_t len = garmin_utf8_prefix(text, max_chars);
	if (len)
		add(o, key, json_object_new_string_len(text, (int)len));
}

static json_object *step_json(mapper *m, const wsync_step *s)
{
	json_object *o = json_object_new_object();
	char text[2048] = "", tgt[96], buf[160];
	gtarget t;
	int has_cad = s->cadence_low > 0 || s->cadence_high > 0;
	double cad_lo = s->cadence_low, cad_hi = s->cadence_high;

	if (!o)
		return NULL;
	if (cad_hi < cad_lo)
		cad_hi = cad_lo;
	if (cad_lo <= 0)
		cad_lo = cad_hi;
	add_str(o, "type", "WorkoutStep");
	add(o, "stepOrder", json_object_new_int(++m->order));
	add_str(o, "intensity", intensity(m, s->intensity));
	if (s->cue)
		note(text, sizeof text, s->cue);

	switch (s->length_kind) {
	case WSYNC_LENGTH_DISTANCE:
		add_str(o, "durationType", "DISTANCE");
		add(o, "durationValue", jnum(s->length));
		add_str(o, "durationValueType", "METER");
		break;
	case WSYNC_LENGTH_OPEN:
		add_str(o, "durationType", "OPEN");
		break;
	default: {
		long long secs = (long long)(s->length + 0.5);
		add_str(o, "durationType", "TIME");
		add(o, "durationValue", json_object_new_int64(secs < 1 ? 1 : secs));
		break;
	}
	}

	t = map_target(s);
	fmt_target(tgt, sizeof tgt, s, m->swim);
	if (m->swim) {
		/* Swim steps must have a null target type: targets become text. */
		if (s->target_kind != WSYNC_TARGET_NONE) {
			snprintf(buf, sizeof buf, "target %s", tgt);
			note(text, sizeof text, buf);
		}
		if (has_cad) {
			char a[32], b[32];
			fmt_num(a, sizeof a, cad_lo);
			fmt_num(b, sizeof b, cad_hi);
			snprintf(buf, sizeof buf, cad_lo == cad_hi ? "%s rpm" : "%s-%s rpm", a, b);
			note(text, sizeof text, buf);
		}
	} else {
		if (s->ramp && s->target_kind != WSYNC_TARGET_NONE) {
			snprintf(buf, sizeof buf, "ramp %s", tgt);
			note(text, sizeof text, buf);
		} else if (t.note) {
			snprintf(buf, sizeof buf, t.type ? "target %s" : "target %s (not a Garmin target)",
			         tgt);
			note(text, sizeof text, buf);
		}
		if (t.type) {
			add_str(o, "targetType", t.type);
			if (t.zone > 0) {
				add(o, "targetValue", json_object_new_int(t.zone));
			} else {
				add(o, "targetValueLow", jnum(t.low));
				add(o, "targetValueHigh", jnum(t.high));
			}
			if (t.value_type)
				add_str(o, "targetValueType", t.value_type);
			if (has_cad) {
				add_str(o, "secondaryTargetType", "CADENCE");
				add(o, "secondaryTargetValueLow", jnum(cad_lo));
				add(o, "secondaryTargetValueHigh", jnum(cad_hi));
			}
		} else if (has_cad) {
			add_str(o, "targetType", "CADENCE");
			add(o, "targetValueLow", jnum(cad_lo));
			add(o, "targetValueHigh", jnum(cad_hi));
		} else {
			add_str(o, "targetType", "OPEN");
		}
	}
	add_text(o, "description", text, GARMIN_STEP_DESCRIPTION_MAX);
	return o;
}

static json_object *repeat_json(mapper *m, const wsync_workout *w, uint32_t i)
{
	const wsync_step *r = wsync_workout_step(w, i);
	json_object *o = json_object_new_object(), *steps = json_object_new_array();

	if (!o || !steps) {
		json_object_put(o);
		json_object_put(steps);
		return NULL;
	}
	add_str(o, "type", "WorkoutRepeatStep");
	add(o, "stepOrder", json_object_new_int(++m->order));
	add_str(o, "intensity", intensity(m, r->intensity == WSYNC_INTENSITY_RECOVERY
	                                         ? WSYNC_INTENSITY_ACTIVE : r->intensity));
	add_str(o, "repeatType", "REPEAT_UNTIL_STEPS_CMPLT");
	add(o, "repeatValue", json_object_new_int64(r->repeat_count));
	for (uint32_t k = 1; k <= r->child_count && i + k < w->n_steps; k++) {
		json_object *c = step_json(m, wsync_workout_step(w, i + k));
		if (!c) {
			json_object_put(o);
			json_object_put(steps);
			return NULL;
		}
		json_object_array_add(steps, c);
	}
	add(o, "steps", steps);
	return o;
}

json_object *garmin_workout_json(const garmin_cfg *cfg, const wsync_workout_entity *w,
                                 int64_t workout_id, int64_t owner_id)
{
	const wsync_workout *st = w->structure;
	const char *sport = garmin_sport(w->sport, cfg->default_sport);
	json_object *o = json_object_new_object(), *segs = json_object_new_array(),
	            *seg = json_object_new_object(), *steps = json_object_new_array();
	mapper m = {cfg, !strcmp(sport, "LAP_SWIMMING"), 0};

	if (!o || !segs || !seg || !steps)
		goto oom;
	if (workout_id > 0) {
		add(o, "workoutId", json_object_new_int64(workout_id));
		add(o, "ownerId", json_object_new_int64(owner_id));
	}
	add_str(o, "workoutName", w->name && *w->name ? w->name : "Workout");
	if (w->description && *w->description)
		add_text(o, "description", w->description, GARMIN_DESCRIPTION_MAX);
	add_str(o, "sport", sport);
	add_str(o, "workoutProvider", cfg->provider_name);
	add_str(o, "workoutSourceId", cfg->provider_name);
	for (uint32_t i = 0; st && i < st->n_steps; i = wsync_step_next(st, i)) {
		const wsync_step *s = wsync_workout_step(st, i);
		json_object *j = s->kind == WSYNC_STEP_REPEAT ? repeat_json(&m, st, i)
		                                              : step_json(&m, s);
		if (!j)
			goto oom;
		json_object_array_add(steps, j);
	}
	add(seg, "segmentOrder", json_object_new_int(1));
	add_str(seg, "sport", sport);
	add(seg, "steps", steps);
	json_object_array_add(segs, seg);
	add(o, "segments", segs);
	return o;
oom:
	json_object_put(o);
	json_object_put(segs);
	json_object_put(seg);
	json_object_put(steps);
	return NULL;
}
