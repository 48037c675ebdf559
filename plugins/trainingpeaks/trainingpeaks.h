/*
 * trainingpeaks.h -- internals shared by the TrainingPeaks plugin's files
 * (not installed): trainingpeaks.c holds the operations, trainingpeaks_map.c
 * the mapping of the workout model to TrainingPeaks' objects.
 */
#ifndef WSYNC_TRAININGPEAKS_H
#define WSYNC_TRAININGPEAKS_H

#include <wsync/plugin.h>
#include <wsync/plugin_util.h>

/* TrainingPeaks' WorkoutType for a workouts.sport value (case, ' ', '-' and
 * '_' ignored); `fallback` when unrecognised or NULL. */
const char *tp_workout_type(const char *sport, const char *fallback);

/* The Structure string (malloc'ed; the caller frees it), or NULL for a
 * workout without steps.  *err set when out of memory. */
char *tp_structure_string(const wsync_workout *w, int *err);

/* The planned-workout object as JSON text (malloc'ed; the caller frees it;
 * NULL when out of memory): every field wsync manages, so that a PUT (a full
 * replace) never nulls one of them.  id > 0 adds "Id" (update). */
char *tp_plan_json(const char *default_type, const wsync_request *req, long long athlete_id,
                   long long id, const char *structure);

#endif
