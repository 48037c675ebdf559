/*
 * parse_workout.c -- `wsyncctl parse-workout`: show how wsync reads a
 * workout text, so that a coach or an operator can check a text (or see
 * why a queue entry failed with invalid_workout) without a database.
 */
#include "parse_workout.h"

#include "common/workout_parse.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "wsyncctl parse-workout"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " CMD " [FILE|-] [--json]\n"
	        "\n"
	        "Parse a workout text (see docs/workout-text.md) and print its\n"
	        "structure; FILE defaults to standard input.\n"
	        "\n"
	        "  --json   print the structure as JSON\n"
	        "  --help   show this help\n"
	        "\n"
	        "Exit status: 0 parsed, 1 cannot read FILE, 2 usage error or\n"
	        "invalid workout (printed as FILE:LINE:COL: message).\n");
}

/* Read at most one byte more than the parser accepts: enough for it to
 * report the size error at the right place, without slurping a huge file. */
static int read_text(FILE *f, char **text, size_t *len)
{
	size_t cap = WSYNC_WORKOUT_MAX_TEXT + 1, n = 0, got;
	char *buf = malloc(cap);

	if (!buf)
		return -1;
	while (n < cap && (got = fread(buf + n, 1, cap - n, f)) > 0)
		n += got;
	if (ferror(f)) {
		free(buf);
		return -1;
	}
	*text = buf;
	*len = n;
	return 0;
}

static int load(const char *path, char **text, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	int rc, saved;

	if (!f)
		return -1;
	rc = read_text(f, text, len);
	saved = errno;
	if (f != stdin)
		fclose(f);
	errno = saved;
	return rc;
}

/* ------------------------------------------------------------ table */

/* "1h2m30s", "10m", "45s", "2.5s": the way the syntax writes times. */
static void fmt_time(char *buf, size_t size, double secs)
{
	long whole = (long)secs, h = whole / 3600, m = whole / 60 % 60,
	     s = whole % 60;
	size_t n = 0;

	buf[0] = '\0';
	if ((double)whole != secs) {
		snprintf(buf, size, "%gs", secs);
		return;
	}
	if (h)
		n += (size_t)snprintf(buf + n, size - n, "%ldh", h);
	if (m && n < size)
		n += (size_t)snprintf(buf + n, size - n, "%ldm", m);
	if ((s || !whole) && n < size)
		snprintf(buf + n, size - n, "%lds", s);
}

/* "2 km", "7.242 km", "400 m": metres to the metre, km to three decimals. */
static void fmt_distance(char *buf, size_t size, double metres)
{
	size_t n;
	if (metres < 1000) {
		snprintf(buf, size, "%.0f m", metres);
		return;
	}
	snprintf(buf, size, "%.3f", metres / 1000);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	snprintf(buf + n, size - n, " km");
}

static void fmt_length(char *buf, size_t size, const wsync_step *s)
{
	if (s->length_kind == WSYNC_LENGTH_TIME)
		fmt_time(buf, size, s->length);
	else if (s->length_kind == WSYNC_LENGTH_DISTANCE)
		fmt_distance(buf, size, s->length);
	else
		snprintf(buf, size, "press lap");
}

/* Seconds per km as m:ss. */
static void fmt_pace(char *buf, size_t size, double spk)
{
	long s = (long)(spk + 0.5);
	snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

/* "50-75" or "75" (a ramp keeps its direction: "100-90"). */
static void fmt_range(char *buf, size_t size, const char *fmt_one,
                      double lo, double hi)
{
	char a[32], b[32];
	snprintf(a, sizeof a, fmt_one, lo);
	snprintf(b, sizeof b, fmt_one, hi);
	if (lo == hi)
		snprintf(buf, size, "%s", a);
	else
		snprintf(buf, size, "%s-%s", a, b);
}

static void fmt_target(char *buf, size_t size, const wsync_step *s)
{
	static const char *const unit[] = {
		[WSYNC_TARGET_PERCENT_FTP] = "% FTP",
		[WSYNC_TARGET_WATTS] = " W",
		[WSYNC_TARGET_PERCENT_MAX_HR] = "% max HR",
		[WSYNC_TARGET_PERCENT_LTHR] = "% LTHR",
		[WSYNC_TARGET_PERCENT_PACE] = "% pace",
		[WSYNC_TARGET_HR_ZONE] = " HR",
		[WSYNC_TARGET_PACE_ZONE] = " pace",
		[WSYNC_TARGET_POWER_ZONE] = "",
	};
	const char *ramp = s->ramp ? "ramp " : "";
	char r[80], a[32], b[32];

	if (s->target_kind == WSYNC_TARGET_NONE) {
		snprintf(buf, size, "%s", s->freeride ? "freeride" : "-");
		return;
	}
	if (s->target_kind == WSYNC_TARGET_PACE) {
		fmt_pace(a, sizeof a, s->target_low);
		fmt_pace(b, sizeof b, s->target_high);
		snprintf(buf, size, "%s%s%s%s/km", ramp, a,
		         s->target_low == s->target_high ? "" : "-",
		         s->target_low == s->target_high ? "" : b);
		return;
	}
	if (s->target_kind == WSYNC_TARGET_POWER_ZONE ||
	    s->target_kind == WSYNC_TARGET_HR_ZONE ||
	    s->target_kind == WSYNC_TARGET_PACE_ZONE) {
		snprintf(a, sizeof a, "Z%g", s->target_low);
		snprintf(b, sizeof b, "-Z%g", s->target_high);
		snprintf(buf, size, "%s%s%s%s", ramp, a,
		         s->target_low == s->target_high ? "" : b,
		         unit[s->target_kind]);
		return;
	}
	fmt_range(r, sizeof r, "%g", s->target_low, s->target_high);
	snprintf(buf, size, "%s%s%s", ramp, r,
	         s->target_kind > 0 &&
	         (size_t)s->target_kind < sizeof unit / sizeof unit[0] ?
	         unit[s->target_kind] : " ?");
}

static void fmt_cadence(char *buf, size_t size, const wsync_step *s)
{
	char r[64];
	if (s->cadence_low <= 0) {
		buf[0] = '\0';
		return;
	}
	fmt_range(r, sizeof r, "%g", s->cadence_low, s->cadence_high);
	snprintf(buf, size, "%s rpm", r);
}

/* One row, built in a buffer first so that no row ends in blanks. */
static void print_step(FILE *f, const wsync_step *s, int indent)
{
	char len[64], target[128], cad[80], row[512];
	size_t n;

	fmt_length(len, sizeof len, s);
	fmt_target(target, sizeof target, s);
	fmt_cadence(cad, sizeof cad, s);
	snprintf(row, sizeof row, "%4u  %*s%-*s %-22s %-12s %-9s", (unsigned)s->line,
	         indent, "", 12 - indent, len, target, cad,
	         wsync_intensity_name(s->intensity));
	if (s->cue) {
		fprintf(f, "%s %s\n", row, s->cue);
		return;
	}
	n = strlen(row);
	while (n > 0 && row[n - 1] == ' ')
		row[--n] = '\0';
	fprintf(f, "%s\n", row);
}

static void print_table(FILE *f, const wsync_workout *w)
{
	const char *section = NULL;
	char total[48];
	uint32_t i, j;

	fprintf(f, "%4s  %-12s %-22s %-12s %-9s %s\n", "line", "length",
	        "target", "cadence", "intensity", "cue");
	for (i = 0; i < w->n_steps; i = wsync_step_next(w, i)) {
		const wsync_step *s = wsync_workout_step(w, i);
		if (s->section && s->section != section)
			fprintf(f, "      [%s]\n", s->section);
		section = s->section;
		if (s->kind != WSYNC_STEP_REPEAT) {
			print_step(f, s, 0);
			continue;
		}
		fprintf(f, "%4u  %ux\n", (unsigned)s->line,
		        (unsigned)s->repeat_count);
		for (j = i + 1; j <= i + s->child_count && j < w->n_steps; j++)
			print_step(f, wsync_workout_step(w, j), 2);
	}
	fprintf(f, "total: ");
	if (w->total_seconds > 0 || w->total_metres <= 0) {
		fmt_time(total, sizeof total, w->total_seconds);
		fprintf(f, "%s (%g s), ", total, w->total_seconds);
	}
	if (w->total_metres > 0) {
		fmt_distance(total, sizeof total, w->total_metres);
		fprintf(f, "%s, ", total);
	}
	fprintf(f, "%u step%s after repeats\n", (unsigned)w->expanded_steps,
	        w->expanded_steps == 1 ? "" : "s");
}

static int print_json(FILE *f, const wsync_workout *w)
{
	struct json_object *o = wsync_workout_to_json_object(w);
	const char *s;
	if (!o)
		return -1;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	                                      JSON_C_TO_STRING_SPACED |
	                                      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s)
		fprintf(f, "%s\n", s);
	json_object_put(o);
	return s ? 0 : -1;
}

/* ------------------------------------------------------------ command */

struct opts {
	const char *path;
	int json;
};

/* Returns -1 to exit 0 (help), 0 to go on, 2 for a usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	int i, only_files = 0;

	o->path = NULL;
	o->json = 0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_files && !strcmp(a, "--help")) {
			usage(stdout);
			return -1;
		} else if (!only_files && !strcmp(a, "--json")) {
			o->json = 1;
		} else if (!only_files && !strcmp(a, "--")) {
			only_files = 1;
		} else if (!only_files && a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, CMD ": unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		} else if (o->path) {
			fprintf(stderr, CMD ": one FILE only, got '%s' and '%s'\n",
			        o->path, a);
			usage(stderr);
			return 2;
		} else {
			o->path = a;
		}
	}
	return 0;
}

static int report(const struct opts *o, const wsync_workout *w)
{
	if (o->json) {
		if (print_json(stdout, w) < 0) {
			fprintf(stderr, CMD ": out of memory\n");
			return 1;
		}
	} else {
		print_table(stdout, w);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, CMD ": cannot write output: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

int wsync_ctl_parse_workout(int argc, char **argv)
{
	struct opts o;
	wsync_parse_error err;
	wsync_workout *w;
	char *text;
	size_t len;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!o.path)
		o.path = "-";
	if (load(o.path, &text, &len) < 0) {
		fprintf(stderr, CMD ": %s: %s\n",
		        strcmp(o.path, "-") ? o.path : "<stdin>", strerror(errno));
		return 1;
	}
	rc = wsync_workout_parse(text, len, &w, &err);
	free(text);
	if (rc < 0) {
		fprintf(stderr, "%s:%u:%u: %s\n",
		        strcmp(o.path, "-") ? o.path : "<stdin>",
		        (unsigned)err.line, (unsigned)err.column,
		        wsync_parse_error_text(&err));
		return 2;
	}
	rc = report(&o, w);
	wsync_workout_free(w);
	return rc;
}
