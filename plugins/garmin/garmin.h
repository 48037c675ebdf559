/*
 * garmin.h -- internals of the Garmin Training API V2 plugin (not installed).
 *
 * garmin_map.c turns the parsed workout into the Training API's workout JSON;
 * garmin.c holds the descriptor, the configuration and the four operations.
 */
#ifndef WSYNC_GARMIN_H
#define WSYNC_GARMIN_H

#include <wsync/plugin.h>
#include <wsync/plugin_util.h>

#include <json-c/json.h>

#include <stddef.h>
#include <stdint.h>

/* Garmin's documented limits. */
#define GARMIN_MAX_STEPS 100         /* single-sport workout, every step object */
#define GARMIN_PROVIDER_MAX 20       /* workoutProvider / workoutSourceId chars */
#define GARMIN_DESCRIPTION_MAX 1024  /* workout description chars */
#define GARMIN_STEP_DESCRIPTION_MAX 512

/* Instance settings, read once in init (strings are host-owned). */
typedef struct garmin_cfg {
	const char *provider_name;    /* workoutProvider and workoutSourceId */
	const char *default_sport;    /* sport for an unrecognised entity sport */
	const char *active_intensity; /* "INTERVAL" or "ACTIVE" */
} garmin_cfg;

/* Step objects Garmin counts against its limit: every entry of the flat
 * array (repeat containers and their children, repeats not expanded). */
uint32_t garmin_step_count(const wsync_workout *w);

/* The Training API sport for a workouts.sport value (case, spaces, '-' and
 * '_' ignored); `fallback` when unrecognised.  NULL sport -> fallback. */
const char *garmin_sport(const char *sport, const char *fallback);

/* 1 when `name` is one of the Training API's single-sport values. */
int garmin_sport_valid(const char *name);

/* Number of UTF-8 characters (code points) in s. */
size_t garmin_utf8_chars(const char *s);

/* Byte length of the longest prefix of s holding at most max_chars
 * characters (never cuts a multi-byte sequence). */
size_t garmin_utf8_prefix(const char *s, size_t max_chars);

/* The workout JSON for create (workout_id 0) or update (workout_id and
 * owner_id set).  NULL only when out of memory. */
json_object *garmin_workout_json(const garmin_cfg *cfg, const wsync_workout_entity *w,
                                 int64_t workout_id, int64_t owner_id);

/* 1 when s is valid UTF-8 of at most `max` bytes without control
 * characters (a setting Garmin shows verbatim). */
int garmin_utf8_text(const char *s, size_t max);

#endif
