/*
 * wsync/workout.h -- the structured workout model.
 *
 * The core parses workouts.workout_text (the plain-text interval syntax, see
 * docs/workout-text.md) once, into this model, and hands it to plugins
 * read-only inside wsync_workout_entity.  Plugins only map it to their
 * provider's format; no plugin ever parses text.
 *
 * Part of the plugin ABI (major 1): plain C99, fixed-width types, no
 * pointers a plugin must free.  The helpers at the end are static inline so
 * that a plugin can use them without linking against wsync.
 *
 * Shape: `steps` is a flat array in document order.  A repeat is one entry of
 * kind WSYNC_STEP_REPEAT whose `child_count` following entries are its
 * children (repeats do not nest).  Top-level entries are therefore reached
 * with wsync_step_next(), which skips a repeat's children.
 */
#ifndef WSYNC_WORKOUT_H
#define WSYNC_WORKOUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { WSYNC_STEP_STEP = 0, WSYNC_STEP_REPEAT = 1 };

/* How a step ends. */
enum {
	WSYNC_LENGTH_TIME = 0,     /* length = seconds */
	WSYNC_LENGTH_DISTANCE = 1, /* length = metres */
	WSYNC_LENGTH_OPEN = 2      /* ends when the athlete presses lap; length 0 */
};

/* The step's primary target.  low <= high unless ramp is set (a ramp runs
 * from low to high over the step, and may go down).  Comparisons are
 * numeric: for an absolute pace the low value is the faster pace (fewer
 * seconds per km).  The parser accepts power and pace zones 1..7 and
 * heart-rate zones 1..5. */
enum {
	WSYNC_TARGET_NONE = 0,         /* no target; also freeride (ERG off) */
	WSYNC_TARGET_PERCENT_FTP = 1,  /* percent of FTP, 75 = 75 % */
	WSYNC_TARGET_WATTS = 2,        /* absolute watts */
	WSYNC_TARGET_POWER_ZONE = 3,   /* power zone number, 1..7 */
	WSYNC_TARGET_PERCENT_MAX_HR = 4, /* percent of maximum heart rate */
	WSYNC_TARGET_PERCENT_LTHR = 5, /* percent of threshold heart rate */
	WSYNC_TARGET_HR_ZONE = 6,      /* heart-rate zone number, 1..5 */
	WSYNC_TARGET_PERCENT_PACE = 7, /* percent of threshold pace */
	WSYNC_TARGET_PACE_ZONE = 8,    /* pace zone number */
	WSYNC_TARGET_PACE = 9          /* absolute pace, seconds per km */
};

/* Intensity class: warm-up and cool-down come from the section name; inside
 * other sections a step at or below 55 % FTP (or power zone 1) is recovery,
 * anything else active. */
enum {
	WSYNC_INTENSITY_ACTIVE = 0,
	WSYNC_INTENSITY_WARMUP = 1,
	WSYNC_INTENSITY_COOLDOWN = 2,
	WSYNC_INTENSITY_RECOVERY = 3
};

/* A repeat entry has length_kind TIME with length 0, target NONE, no
 * cadence, cue NULL, and the intensity of its section (warmup, cooldown, or
 * active); only kind, repeat_count, child_count, section and line matter. */
typedef struct wsync_step {
	int32_t kind;          /* WSYNC_STEP_STEP or WSYNC_STEP_REPEAT */
	uint32_t repeat_count; /* repeat: passes (1..100); step: 0 */
	uint32_t child_count;  /* repeat: number of entries that follow and
	                          belong to it; step: 0 */
	int32_t length_kind;   /* WSYNC_LENGTH_* (steps only) */
	double length;         /* seconds or metres (steps only) */
	int32_t target_kind;   /* WSYNC_TARGET_* */
	int32_t ramp;          /* 1: target goes linearly from low to high */
	double target_low;
	double target_high;    /* == target_low for a single value */
	double cadence_low;    /* rpm; 0 = no cadence target */
	double cadence_high;
	int32_t intensity;     /* WSYNC_INTENSITY_* */
	int32_t freeride;      /* 1: freeride (no target, ERG off) */
	const char *cue;       /* cue text before the duration, or NULL */
	const char *section;   /* section header this step is under, or NULL */
	uint32_t line;         /* 1-based source line */
	uint32_t reserved0;
} wsync_step;

typedef struct wsync_workout {
	uint32_t struct_size;      /* sizeof(wsync_workout) of the producer */
	uint32_t step_size;        /* sizeof(wsync_step) of the producer */
	const wsync_step *steps;   /* flat array, see top of file */
	uint32_t n_steps;          /* entries in steps[] */
	uint32_t expanded_steps;   /* steps after expanding repeats */
	double total_seconds;      /* sum of time steps, repeats expanded
	                              (distance and open steps excluded) */
	double total_metres;       /* sum of distance steps, repeats expanded */
} wsync_workout;

#if defined(__LP64__) && !defined(__cplusplus) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(wsync_step) == 96, "ABI v1 layout");
_Static_assert(offsetof(wsync_step, cue) == 72, "ABI v1 layout");
_Static_assert(sizeof(wsync_workout) == 40, "ABI v1 layout");
#endif

/* ---- helpers (static inline: usable without linking against wsync) ---- */

/* Entry i of the array, whatever the producer's sizeof(wsync_step). */
static inline const wsync_step *wsync_workout_step(const wsync_workout *w,
                                                   uint32_t i)
{
	return (const wsync_step *)(const void *)((const char *)w->steps +
	                                          (size_t)i * w->step_size);
}

/* Index of the next top-level entry after entry i (skips a repeat's
 * children); == n_steps at the end.  Iterate top level with
 *   for (i = 0; i < w->n_steps; i = wsync_step_next(w, i)) */
static inline uint32_t wsync_step_next(const wsync_workout *w, uint32_t i)
{
	const wsync_step *s = wsync_workout_step(w, i);
	return i + 1 + (s->kind == WSYNC_STEP_REPEAT ? s->child_count : 0);
}

/*
 * Iterate the steps the athlete performs, repeats expanded, in order:
 *
 *   wsync_step_iter it;
 *   const wsync_step *s;
 *   wsync_step_iter_init(&it, w);
 *   while ((s = wsync_step_iter_next(&it)))
 *       ... it.repeat is the enclosing repeat entry or NULL, it.pass its
 *       pass (1-based), it.index the position among expanded steps ...
 *
 * Yields exactly w->expanded_steps steps.  Plain data, no allocation
 * (ABI 1.1 helper; a static inline, so it needs no host).
 */
typedef struct wsync_step_iter {
	const wsync_workout *w;
	const wsync_step *repeat; /* the repeat the last step belongs to, or NULL */
	uint32_t pass;            /* 1-based pass of that repeat; 0 outside one */
	uint32_t index;           /* 0-based position of the last step yielded */
	uint32_t next;            /* array index of the next entry to look at */
	uint32_t rep_at;          /* array index of the current repeat entry */
	uint32_t yielded;         /* steps yielded so far */
	uint32_t reserved0;
} wsync_step_iter;

static inline void wsync_step_iter_init(wsync_step_iter *it, const wsync_workout *w)
{
	it->w = w;
	it->repeat = NULL;
	it->pass = 0;
	it->index = 0;
	it->next = 0;
	it->rep_at = 0;
	it->yielded = 0;
	it->reserved0 = 0;
}

static inline const wsync_step *wsync_step_iter_next(wsync_step_iter *it)
{
	const wsync_workout *w = it->w;
	const wsync_step *s;
	while (w) {
		if (it->repeat && it->next > it->rep_at + it->repeat->child_count) {
			/* past the repeat's last child: another pass, or leave it */
			if (it->pass < it->repeat->repeat_count) {
				it->pass++;
				it->next = it->rep_at + 1;
			} else {
				it->repeat = NULL;
				it->pass = 0;
			}
			continue;
		}
		if (it->next >= w->n_steps)
			break;
		s = wsync_workout_step(w, it->next);
		if (s->kind == WSYNC_STEP_REPEAT) {
			if (s->child_count == 0 || s->repeat_count == 0) {
				it->next = wsync_step_next(w, it->next);
				continue;
			}
			it->repeat = s;
			it->rep_at = it->next++;
			it->pass = 1;
			continue;
		}
		it->next++;
		it->index = it->yielded++;
		return s;
	}
	return NULL;
}

#if defined(__LP64__) && !defined(__cplusplus) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(wsync_step_iter) == 40, "ABI v1.1 layout");
#endif

/*
 * ZONES -- the one zone model of every plugin (ABI 1.1 helper), so that the
 * same workout text ("- 20m Z2", "- 10m Z3 HR") gives the same targets on
 * every provider.  Source: Andrew Coggan's training levels, as published in
 * Allen & Coggan, "Training and Racing with a Power Meter" (and TrainingPeaks'
 * "Coggan" zone presets):
 *
 *   power, % of FTP              heart rate, % of threshold (lactate
 *                                threshold / FTHR) heart rate
 *   Z1 active recovery   0- 55   Z1 active recovery   0- 68
 *   Z2 endurance        56- 75   Z2 endurance        69- 83
 *   Z3 tempo            76- 90   Z3 tempo            84- 94
 *   Z4 threshold        91-105   Z4 threshold        95-105
 *   Z5 VO2max          106-120   Z5 VO2max          106-115
 *   Z6 anaerobic       121-150
 *   Z7 neuromuscular   151-200
 *
 * Coggan leaves the top of the last zone open ("> 150 %", "> 106 %"); the
 * caps (200 %, 115 %) are wsync's, so that every zone is a range.  A zone
 * range "Z3-Z4" runs from the low edge of the first to the high edge of the
 * last.  Pace zones are not part of the model.
 *
 * wsync_zone_percent: the range of zone `zone` for WSYNC_TARGET_POWER_ZONE
 * (% FTP) or WSYNC_TARGET_HR_ZONE (% threshold HR) in *low and *high;
 * 0 ok, -1 for another kind or a zone that is not a whole number in range.
 */
static inline int wsync_zone_percent(int32_t target_kind, double zone, double *low,
                                     double *high)
{
	static const double power[7][2] = {{0, 55}, {56, 75}, {76, 90}, {91, 105},
	                                    {106, 120}, {121, 150}, {151, 200}};
	static const double hr[5][2] = {{0, 68}, {69, 83}, {84, 94}, {95, 105}, {106, 115}};
	const double (*tab)[2] = target_kind == WSYNC_TARGET_POWER_ZONE ? power
	                       : target_kind == WSYNC_TARGET_HR_ZONE ? hr : NULL;
	int n = target_kind == WSYNC_TARGET_POWER_ZONE ? 7 : 5;
	int z = (int)zone;
	if (!tab || zone != (double)z || z < 1 || z > n)
		return -1;
	*low = tab[z - 1][0];
	*high = tab[z - 1][1];
	return 0;
}

/* The zone (1..5) of a % of threshold heart rate in the model above: the
 * first zone whose high edge it does not pass (for a provider that takes
 * zone numbers only). */
static inline int wsync_hr_zone_of(double percent_threshold_hr)
{
	double lo, hi;
	for (int z = 1; z < 5; z++)
		if (wsync_zone_percent(WSYNC_TARGET_HR_ZONE, z, &lo, &hi) == 0 &&
		    percent_threshold_hr < hi + 1)
			return z;
	return 5;
}

/* Steps the athlete performs: repeats expanded. */
static inline uint32_t wsync_workout_expanded_steps(const wsync_workout *w)
{
	return w->expanded_steps;
}

/* Total planned time in seconds (distance and lap-button steps excluded). */
static inline double wsync_workout_total_seconds(const wsync_workout *w)
{
	return w->total_seconds;
}

/* Intensity class of a step, as a stable lowercase name. */
static inline const char *wsync_intensity_name(int32_t intensity)
{
	switch (intensity) {
	case WSYNC_INTENSITY_WARMUP: return "warmup";
	case WSYNC_INTENSITY_COOLDOWN: return "cooldown";
	case WSYNC_INTENSITY_RECOVERY: return "recovery";
	default: return "active";
	}
}

/* Midpoint of a step's target, convenient for providers wanting one value. */
static inline double wsync_step_target_mid(const wsync_step *s)
{
	return (s->target_low + s->target_high) / 2.0;
}

/*
 * SPORT NAMES (ABI 1.1 helper).  workouts.sport is free text ("Trail Run",
 * "trail_run", "TRAILRUN"); every plugin maps it to its provider's value
 * with a table of {key, value} pairs whose keys are written in lower case
 * without separators ("trailrun").  wsync_sport_lookup compares ignoring
 * ASCII case, spaces, tabs, '-' and '_', so that one sport text means the
 * same sport on every provider, and returns the value of the first key that
 * matches, or `fallback` when none does (or sport is NULL).
 */
typedef struct wsync_sport_name {
	const char *key;   /* lower case, no ' ', '\t', '-' or '_' */
	const char *value; /* the provider's value */
} wsync_sport_name;

#if defined(__LP64__) && !defined(__cplusplus) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(wsync_sport_name) == 16, "ABI v1.1 layout");
#endif

/* 1 when `sport` is `key` but for case and separators. */
static inline int wsync_sport_is(const char *sport, const char *key)
{
	for (;; sport++) {
		unsigned char c = (unsigned char)*sport;
		if (c == ' ' || c == '\t' || c == '-' || c == '_')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + ('a' - 'A'));
		if (c != (unsigned char)*key)
			return 0;
		if (!c)
			return 1;
		key++;
	}
}

static inline const char *wsync_sport_lookup(const char *sport,
                                             const wsync_sport_name *table, size_t n,
                                             const char *fallback)
{
	size_t i;
	for (i = 0; sport && i < n; i++)
		if (wsync_sport_is(sport, table[i].key))
			return table[i].value;
	return fallback;
}

#ifdef __cplusplus
}
#endif
#endif /* WSYNC_WORKOUT_H */
