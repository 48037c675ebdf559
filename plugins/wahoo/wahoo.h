/*
 * wahoo.h -- internals shared by the Wahoo plugin's files (not installed).
 */
#ifndef WAHOO_H
#define WAHOO_H

#include <wsync/plugin.h>
#include <wsync/plugin_util.h>

#include <stddef.h>
#include <stdint.h>

/* Wahoo family / location ids (plan header, plan object). */
enum { WAHOO_FAMILY_BIKE = 0, WAHOO_FAMILY_RUN = 1 };
enum { WAHOO_LOCATION_INDOOR = 0, WAHOO_LOCATION_OUTDOOR = 1 };

/* The instance's settings, read once in init() and read-only afterwards. */
typedef struct wahoo_cfg {
	int location;            /* WAHOO_LOCATION_* */
	int64_t ftp;             /* header.ftp in watts; 0 = not sent */
	char start_time[9];      /* "HH:MM:SS", UTC, for a schedule without time */
	int64_t bike_type_id;    /* workout_type_id for bike workouts */
	int64_t run_type_id;     /* workout_type_id for run workouts */
	int64_t open_step_s;     /* seconds a lap-button step lasts on Wahoo */
	int64_t ramp_steps;      /* most segments a ramp is cut into; 1 = range */
	int64_t max_intervals;   /* most interval objects in one plan file */
} wahoo_cfg;

/* A growable byte buffer; `oom` sticks once an allocation failed. */
typedef struct wahoo_buf {
	char *p;
	size_t len, cap;
	int oom;
} wahoo_buf;

void wahoo_buf_add(wahoo_buf *b, const char *s, size_t n);
void wahoo_buf_str(wahoo_buf *b, const char *s);
void wahoo_buf_free(wahoo_buf *b);

/* WAHOO_FAMILY_* for a workouts.sport value (bike when unknown or NULL). */
int wahoo_sport_family(const char *sport);

/*
 * The plan file (format 1.0.0) for a workout, as a malloc'ed JSON text in
 * *out (its length in *out_len).  Returns WSYNC_OK, or a WSYNC_E_* status
 * with a message in err (WSYNC_E_INVALID_WORKOUT for a structure Wahoo cannot
 * hold, WSYNC_E_UNEXPECTED for out of memory).
 */
int32_t wahoo_plan_json(const wahoo_cfg *cfg, const wsync_workout_entity *w,
                        char **out, size_t *out_len, char *err, size_t errlen);

#endif
