/*
 * workout_parse.h -- read workouts.workout_text into the structured model.
 *
 * The syntax is described for users in docs/workout-text.md.  The parser
 * reads the text once, in the core; plugins only ever see the resulting
 * wsync_workout (include/wsync/workout.h).  Text that cannot be read is an
 * error with a line and a column, never a crash: the parser is fuzzed
 * (tests/fuzz/fuzz_workout.c).
 *
 * Thread-safe: no global state.
 */
#ifndef WSYNC_WORKOUT_PARSE_H
#define WSYNC_WORKOUT_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "wsync/workout.h"

/* Limits of the syntax; each violation is a parse error. */
#define WSYNC_WORKOUT_MAX_TEXT 65536u        /* bytes of text */
#define WSYNC_WORKOUT_MAX_STEPS 1000u        /* steps after expanding repeats */
#define WSYNC_WORKOUT_MAX_REPEAT 100u        /* passes of one repeat */
#define WSYNC_WORKOUT_MAX_STEP_SECONDS 86400 /* one step lasts at most 24 h */

typedef struct wsync_parse_error {
	uint32_t line;     /* 1-based */
	uint32_t column;   /* 1-based, in UTF-8 characters (not bytes) */
	char message[256]; /* whole text: "line 4, col 9: expected ..." */
} wsync_parse_error;

/*
 * Parse `len` bytes of UTF-8 text (need not be NUL-terminated; a leading
 * UTF-8 byte-order mark is skipped).  On success *out is a new workout, to be
 * released with wsync_workout_free(), and 0 is returned.  On error *out is
 * NULL, *err (if err is not NULL) says where and why, -1 is returned, and
 * nothing stays allocated.
 */
int wsync_workout_parse(const char *text, size_t len, wsync_workout **out,
                        wsync_parse_error *err);

/* Release a workout from wsync_workout_parse(); NULL is a no-op.  The workout
 * is one allocation (steps and strings included), but callers must not rely
 * on that: always use this function. */
void wsync_workout_free(wsync_workout *w);

/* The message of an error without its "line L, col C: " prefix, for callers
 * that print the position their own way (FILE:LINE:COL: message). */
const char *wsync_parse_error_text(const wsync_parse_error *err);

/*
 * The workout as JSON text (compact, UTF-8), malloc'ed: the caller frees it
 * with free().  NULL when out of memory.  Shape:
 *
 *   {"steps": [STEP | REPEAT, ...],
 *    "totals": {"seconds": 2580, "metres": 0, "steps": 12}}
 *   STEP   = {"kind": "step", "line": 2, "section": "Warmup" | null,
 *             "cue": "Recovery" | null, "intensity": "warmup",
 *             "length": {"kind": "time", "seconds": 600}
 *                     | {"kind": "distance", "metres": 2000}
 *                     | {"kind": "open"},
 *             "target": {"kind": "percent_ftp", "low": 50, "high": 75,
 *                        "ramp": true},
 *             "cadence": {"low": 90, "high": 90} | null,
 *             "freeride": false}
 *   REPEAT = {"kind": "repeat", "line": 4, "section": "Main Set" | null,
 *             "repeat": 5, "steps": [STEP, ...]}
 *
 * Names (kinds, intensity) are the stable lowercase ones below.
 */
char *wsync_workout_to_json(const wsync_workout *w);

/* The same as a json-c object (a new reference the caller puts), for callers
 * that want to embed or pretty-print it.  NULL when out of memory. */
struct json_object;
struct json_object *wsync_workout_to_json_object(const wsync_workout *w);

/* Stable lowercase names: "time", "distance", "open" and "none",
 * "percent_ftp", "watts", "power_zone", "percent_max_hr", "percent_lthr",
 * "hr_zone", "percent_pace", "pace_zone", "pace".  Unknown values give
 * "unknown". */
const char *wsync_length_kind_name(int32_t length_kind);
const char *wsync_target_kind_name(int32_t target_kind);

#endif /* WSYNC_WORKOUT_PARSE_H */
