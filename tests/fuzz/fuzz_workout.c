/*
 * fuzz_workout.c -- libFuzzer target for the workout text parser.
 *
 * Workout text comes from the application's database, i.e. from users:
 * whatever the bytes, the parser must return a workout or an error with a
 * position, never crash, hang or leak.  Beyond the sanitizers, the target
 * checks what callers rely on, and abort()s when it does not hold:
 *   - error: *out NULL, line/column >= 1, message "line L, col C: ...";
 *   - workout: the flat array is well formed (repeats hold 1..100 passes
 *     and children that are steps inside the array), the totals add up,
 *     the limits hold, and the JSON rendering works.
 *
 * Also linked into a plain replay driver (fuzz_replay.c) so that builds
 * without libFuzzer (gcc) still run the seed corpus through these checks.
 */
#include "common/workout_parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const wsync_workout *w, const wsync_parse_error *e)
{
	char prefix[64];
	if (w || e->line < 1 || e->column < 1)
		abort();
	snprintf(prefix, sizeof prefix, "line %u, col %u: ", (unsigned)e->line,
	         (unsigned)e->column);
	if (strncmp(e->message, prefix, strlen(prefix)) != 0 ||
	    strlen(e->message) <= strlen(prefix))
		abort();
}

/* Returns the expanded steps of entry i and adds its time and distance. */
static uint32_t check_step(const wsync_step *s, double mult, double *secs,
                           double *metres)
{
	if (s->kind != WSYNC_STEP_STEP || s->repeat_count || s->child_count)
		abort();
	if (!s->ramp && s->target_low > s->target_high)
		abort();
	if (s->cadence_low > s->cadence_high || s->line < 1)
		abort();
	if (s->length_kind == WSYNC_LENGTH_TIME) {
		if (!(s->length > 0 && s->length <= WSYNC_WORKOUT_MAX_STEP_SECONDS))
			abort();
		*secs += s->length * mult;
	} else if (s->length_kind == WSYNC_LENGTH_DISTANCE) {
		if (!(s->length > 0))
			abort();
		*metres += s->length * mult;
	} else if (s->length_kind != WSYNC_LENGTH_OPEN || s->length != 0) {
		abort();
	}
	if (s->cue && !*s->cue)
		abort();
	return 1;
}

static void check_workout(const wsync_workout *w)
{
	double secs = 0, metres = 0;
	uint32_t expanded = 0, i, j;
	char *json;

	if (w->struct_size != sizeof *w || w->step_size != sizeof(wsync_step) ||
	    w->n_steps == 0)
		abort();
	for (i = 0; i < w->n_steps; i = wsync_step_next(w, i)) {
		const wsync_step *s = wsync_workout_step(w, i);
		if (s->kind != WSYNC_STEP_REPEAT) {
			expanded += check_step(s, 1, &secs, &metres);
			continue;
		}
		if (s->repeat_count < 1 || s->repeat_count > WSYNC_WORKOUT_MAX_REPEAT ||
		    s->child_count < 1 || s->child_count > w->n_steps - i - 1)
			abort();
		for (j = i + 1; j <= i + s->child_count; j++)
			expanded += s->repeat_count *
			            check_step(wsync_workout_step(w, j),
			                       s->repeat_count, &secs, &metres);
	}
	if (expanded != w->expanded_steps || expanded > WSYNC_WORKOUT_MAX_STEPS)
		abort();
	if (fabs(secs - w->total_seconds) > 1e-6 * (1 + secs) ||
	    fabs(metres - w->total_metres) > 1e-6 * (1 + metres))
		abort();
	json = wsync_workout_to_json(w);
	if (!json)
		abort();
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wsync_workout *w = NULL;
	wsync_parse_error err;

	if (wsync_workout_parse((const char *)data, size, &w, &err) == 0)
		check_workout(w);
	else
		check_error(w, &err);
	wsync_workout_free(w);
	return 0;
}
