/*
 * workout_json.c -- wsync_workout as JSON (json-c).
 *
 * Kept apart from the parser so that the parser itself needs no JSON
 * library.  The shape is documented in workout_parse.h; names are stable
 * lowercase strings because logs, the status API and tests compare them.
 */
#include "workout_parse.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *wsync_length_kind_name(int32_t length_kind)
{
	switch (length_kind) {
	case WSYNC_LENGTH_TIME: return "time";
	case WSYNC_LENGTH_DISTANCE: return "distance";
	case WSYNC_LENGTH_OPEN: return "open";
	default: return "unknown";
	}
}

const char *wsync_target_kind_name(int32_t target_kind)
{
	static const char *const names[] = {
		[WSYNC_TARGET_NONE] = "none",
		[WSYNC_TARGET_PERCENT_FTP] = "percent_ftp",
		[WSYNC_TARGET_WATTS] = "watts",
		[WSYNC_TARGET_POWER_ZONE] = "power_zone",
		[WSYNC_TARGET_PERCENT_MAX_HR] = "percent_max_hr",
		[WSYNC_TARGET_PERCENT_LTHR] = "percent_lthr",
		[WSYNC_TARGET_HR_ZONE] = "hr_zone",
		[WSYNC_TARGET_PERCENT_PACE] = "percent_pace",
		[WSYNC_TARGET_PACE_ZONE] = "pace_zone",
		[WSYNC_TARGET_PACE] = "pace",
	};
	if (target_kind < 0 ||
	    (size_t)target_kind >= sizeof names / sizeof names[0])
		return "unknown";
	return names[target_kind];
}

/* Whole numbers as JSON integers (600, not 600.0); others with at most six
 * decimals, so that 4.5 mi reads 7242.048 rather than 7242.0480000000007. */
static struct json_object *num(double d)
{
	char buf[64];
	size_t n;

	if (d > -1e15 && d < 1e15 && (double)(int64_t)d == d)
		return json_object_new_int64((int64_t)d);
	snprintf(buf, sizeof buf, "%.6f", d);
	n = strlen(buf);
	while (n > 1 && buf[n - 1] == '0')
		buf[--n] = '\0';
	return json_object_new_double_s(d, buf);
}

/* Add v under key; on any failure v is released and -1 returned, so that
 * callers can chain additions and check once. */
static int put(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -1;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int push(struct json_object *a, struct json_object *v)
{
	if (!v)
		return -1;
	if (json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* A string or JSON null; NULL only when out of memory. */
static struct json_object *str_or_null(const char *s, int *ok)
{
	struct json_object *o;
	if (!s)
		return NULL; /* json-c's null */
	o = json_object_new_string(s);
	if (!o)
		*ok = 0;
	return o;
}

/* json-c represents JSON null as a NULL pointer, so a NULL value is only
 * an error when *ok says so. */
static int put_nullable(struct json_object *o, const char *key,
                        struct json_object *v, int ok)
{
	if (!ok)
		return -1;
	if (json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static struct json_object *length_json(const wsync_step *s)
{
	struct json_object *o = json_object_new_object();
	int rc;
	if (!o)
		return NULL;
	rc = put(o, "kind", json_object_new_string(
	                 wsync_length_kind_name(s->length_kind)));
	if (s->length_kind == WSYNC_LENGTH_TIME)
		rc |= put(o, "seconds", num(s->length));
	else if (s->length_kind == WSYNC_LENGTH_DISTANCE)
		rc |= put(o, "metres", num(s->length));
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *target_json(const wsync_step *s)
{
	struct json_object *o = json_object_new_object();
	int rc;
	if (!o)
		return NULL;
	rc = put(o, "kind", json_object_new_string(
	                 wsync_target_kind_name(s->target_kind)));
	if (s->target_kind != WSYNC_TARGET_NONE) {
		rc |= put(o, "low", num(s->target_low));
		rc |= put(o, "high", num(s->target_high));
		rc |= put(o, "ramp", json_object_new_boolean(s->ramp != 0));
	}
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int add_cadence(struct json_object *o, const wsync_step *s)
{
	struct json_object *c;
	if (s->cadence_low <= 0 && s->cadence_high <= 0)
		return put_nullable(o, "cadence", NULL, 1);
	c = json_object_new_object();
	if (!c)
		return -1;
	if (put(c, "low", num(s->cadence_low)) ||
	    put(c, "high", num(s->cadence_high))) {
		json_object_put(c);
		return -1;
	}
	return put(o, "cadence", c);
}

/* Fields every entry has: kind, line, section. */
static struct json_object *entry_json(const wsync_step *s, const char *kind)
{
	struct json_object *o = json_object_new_object();
	int ok = 1;
	if (!o)
		return NULL;
	if (put(o, "kind", json_object_new_string(kind)) ||
	    put(o, "line", json_object_new_int64(s->line)) ||
	    put_nullable(o, "section", str_or_null(s->section, &ok), ok)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *step_json(const wsync_step *s)
{
	struct json_object *o = entry_json(s, "step");
	int ok = 1, rc;
	if (!o)
		return NULL;
	rc = put_nullable(o, "cue", str_or_null(s->cue, &ok), ok);
	rc |= put(o, "intensity",
	          json_object_new_string(wsync_intensity_name(s->intensity)));
	rc |= put(o, "length", length_json(s));
	rc |= put(o, "target", target_json(s));
	rc |= add_cadence(o, s);
	rc |= put(o, "freeride", json_object_new_boolean(s->freeride != 0));
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Entries [first, last) as an array; repeats nest their children. */
static struct json_object *steps_json(const wsync_workout *w, uint32_t first,
                                      uint32_t last);

static struct json_object *repeat_json(const wsync_workout *w, uint32_t i,
                                       uint32_t last)
{
	const wsync_step *s = wsync_workout_step(w, i);
	struct json_object *o = entry_json(s, "repeat");
	uint32_t end = i + 1 + s->child_count;
	if (!o)
		return NULL;
	if (end > last) /* not from our parser; stay inside the array */
		end = last;
	if (put(o, "repeat", json_object_new_int64(s->repeat_count)) ||
	    put(o, "steps", steps_json(w, i + 1, end))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *steps_json(const wsync_workout *w, uint32_t first,
                                      uint32_t last)
{
	struct json_object *a = json_object_new_array();
	uint32_t i;
	if (!a)
		return NULL;
	for (i = first; i < last; i = wsync_step_next(w, i)) {
		const wsync_step *s = wsync_workout_step(w, i);
		struct json_object *e = s->kind == WSYNC_STEP_REPEAT ?
		                        repeat_json(w, i, last) : step_json(s);
		if (push(a, e)) {
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

static struct json_object *totals_json(const wsync_workout *w)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	if (put(o, "seconds", num(w->total_seconds)) ||
	    put(o, "metres", num(w->total_metres)) ||
	    put(o, "steps", json_object_new_int64(w->expanded_steps))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *wsync_workout_to_json_object(const wsync_workout *w)
{
	struct json_object *o;
	if (!w)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	if (put(o, "steps", steps_json(w, 0, w->n_steps)) ||
	    put(o, "totals", totals_json(w))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *wsync_workout_to_json(const wsync_workout *w)
{
	struct json_object *o = wsync_workout_to_json_object(w);
	const char *s;
	char *copy = NULL;
	if (!o)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s)
		copy = strdup(s);
	json_object_put(o);
	return copy;
}
