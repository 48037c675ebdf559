/*
 * test_workout_parse.c -- the workout text parser, form by form.
 *
 * Every token form of docs/workout-text.md, the page's example (structure
 * and its 43 minutes), each error with its line, column and message, the
 * limits, CRLF, case-insensitivity, and the JSON rendering.  Run under
 * ASan/LSan this also proves that no error path leaks.
 */
#include "testlib.h"

#include "common/workout_parse.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>

#define T_NEAR(a, b)                                                           \
	do {                                                                   \
		double t_a_ = (a), t_b_ = (b);                                 \
		t_checks++;                                                    \
		if (fabs(t_a_ - t_b_) > 1e-6)                                  \
			t_fail(__FILE__, __LINE__, "%s == %g, expected %g", #a,  \
			       t_a_, t_b_);                                    \
	} while (0)

static const char EXAMPLE[] =
	T_SYNTAX_EXAMPLE;

/* ------------------------------------------------------------ helpers */

/* Parse text that must be valid; NULL (and a failure) otherwise. */
static wsync_workout *parse_ok_at(int line, const char *text, size_t len)
{
	wsync_workout *w = NULL;
	wsync_parse_error err;
	t_checks++;
	if (wsync_workout_parse(text, len, &w, &err) != 0 || !w) {
		t_fail(__FILE__, line, "parse failed: %s\n  text: %s", err.message,
		       text);
		return NULL;
	}
	return w;
}
#define PARSE_OK(text) parse_ok_at(__LINE__, (text), strlen(text))

static const wsync_step *step(const wsync_workout *w, uint32_t i)
{
	return wsync_workout_step(w, i);
}

/* The single step of a one-line workout, copied so the workout can go. */
static int one_at(int line, const char *text, wsync_step *out)
{
	wsync_workout *w = parse_ok_at(line, text, strlen(text));
	if (!w)
		return 0;
	*out = *step(w, 0);
	out->cue = out->section = NULL; /* would dangle */
	wsync_workout_free(w);
	return 1;
}
#define ONE(text, s) one_at(__LINE__, (text), (s))

/* Parse text that must fail at line:col with a message containing msg. */
static void err_at(int line, const char *text, size_t len, unsigned eline,
                   unsigned ecol, const char *msg)
{
	wsync_workout *w = (wsync_workout *)(uintptr_t)1;
	wsync_parse_error err;
	int rc = wsync_workout_parse(text, len, &w, &err);

	t_checks++;
	if (rc != -1 || w != NULL) {
		t_fail(__FILE__, line, "parse should fail: %s", text);
		wsync_workout_free(rc == 0 ? w : NULL);
		return;
	}
	t_checks++;
	if (err.line != eline || err.column != ecol)
		t_fail(__FILE__, line, "error at %u:%u, expected %u:%u (%s)",
		       (unsigned)err.line, (unsigned)err.column, eline, ecol,
		       err.message);
	t_checks++;
	if (!strstr(err.message, msg))
		t_fail(__FILE__, line, "message \"%s\" lacks \"%s\"", err.message,
		       msg);
}
#define ERR(text, l, c, msg) err_at(__LINE__, (text), strlen(text), l, c, msg)
#define ERRN(text, n, l, c, msg) err_at(__LINE__, (text), (n), l, c, msg)

/* ------------------------------------------------------------ example */

static void test_example(void)
{
	wsync_workout *w = PARSE_OK(EXAMPLE);
	const wsync_step *s;
	uint32_t i, top = 0;

	if (!w)
		return;
	T_EQ_INT(w->struct_size, sizeof(wsync_workout));
	T_EQ_INT(w->step_size, sizeof(wsync_step));
	T_EQ_INT(w->n_steps, 5);
	T_EQ_INT(w->expanded_steps, 12);
	T_NEAR(w->total_seconds, 2580);
	T_NEAR(wsync_workout_total_seconds(w), 43 * 60);
	T_NEAR(w->total_metres, 0);

	s = step(w, 0);
	T_EQ_INT(s->kind, WSYNC_STEP_STEP);
	T_EQ_INT(s->length_kind, WSYNC_LENGTH_TIME);
	T_NEAR(s->length, 600);
	T_EQ_INT(s->target_kind, WSYNC_TARGET_PERCENT_FTP);
	T_EQ_INT(s->ramp, 1);
	T_NEAR(s->target_low, 50);
	T_NEAR(s->target_high, 75);
	T_NEAR(s->cadence_low, 90);
	T_NEAR(s->cadence_high, 90);
	T_EQ_INT(s->intensity, WSYNC_INTENSITY_WARMUP);
	T_EQ_STR(s->section, "Warmup");
	T_CHECK(s->cue == NULL);
	T_EQ_INT(s->line, 2);

	s = step(w, 1);
	T_EQ_INT(s->kind, WSYNC_STEP_REPEAT);
	T_EQ_INT(s->repeat_count, 5);
	T_EQ_INT(s->child_count, 2);
	T_EQ_STR(s->section, "Main Set");
	T_EQ_INT(s->line, 4);

	s = step(w, 2);
	T_NEAR(s->length, 180);
	T_NEAR(s->target_low, 120);
	T_EQ_INT(s->ramp, 0);
	T_NEAR(s->cadence_low, 100);
	T_EQ_INT(s->intensity, WSYNC_INTENSITY_ACTIVE);
	T_EQ_STR(s->section, "Main Set");

	s = step(w, 3);
	T_EQ_STR(s->cue, "Recovery");
	T_NEAR(s->length, 120);
	T_EQ_INT(s->target_kind, WSYNC_TARGET_POWER_ZONE);
	T_NEAR(s->target_low, 1);
	T_NEAR(s->target_high, 1);
	T_NEAR(s->cadence_low, 85);
	T_EQ_INT(s->intensity, WSYNC_INTENSITY_RECOVERY);
	T_EQ_STR(wsync_intensity_name(s->intensity), "recovery");
	T_EQ_INT(s->line, 6);

	s = step(w, 4);
	T_NEAR(s->length, 480);
	T_NEAR(s->target_low, 50);
	T_EQ_INT(s->intensity, WSYNC_INTENSITY_COOLDOWN);
	T_EQ_STR(s->section, "Cooldown");
	T_NEAR(s->cadence_low, 0);

	for (i = 0; i < w->n_steps; i = wsync_step_next(w, i))
		top++;
	T_EQ_INT(top, 3);
	wsync_workout_free(w);
}

/* ------------------------------------------------------------ lengths */

static void test_times(void)
{
	static const struct {
		const char *tok;
		double secs;
	} cases[] = {
		{ "1h", 3600 }, { "10m", 600 }, { "30s", 30 },
		{ "1h2m30s", 3750 }, { "5m30s", 330 }, { "1m30", 90 },
		{ "5'", 300 }, { "30\"", 30 }, { "1'30\"", 90 }, { "1'30", 90 },
		{ "1h30m", 5400 }, { "1h30s", 3630 }, { "1.5h", 5400 },
		{ "0.5m", 30 }, { "90s", 90 }, { "10M", 600 }, { "2H", 7200 },
		{ "45S", 45 }, { "24h", 86400 }, { "1440m", 86400 },
		{ "1h2m30", 3750 },
	};
	size_t i;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[64];
		wsync_step s;
		snprintf(text, sizeof text, "- %s 75%%", cases[i].tok);
		if (!ONE(text, &s))
			continue;
		T_EQ_INT(s.length_kind, WSYNC_LENGTH_TIME);
		T_NEAR(s.length, cases[i].secs);
	}
}

static void test_distances(void)
{
	static const struct {
		const char *tok;
		double metres;
	} cases[] = {
		{ "2km", 2000 }, { "0.4km", 400 }, { "500mtr", 500 },
		{ "1mi", 1609.344 }, { "4.5mi", 7242.048 }, { "2KM", 2000 },
		{ "500MTR", 500 }, { "1Mi", 1609.344 }, { "10.25km", 10250 },
	};
	size_t i;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[64];
		wsync_step s;
		snprintf(text, sizeof text, "- %s Z2", cases[i].tok);
		if (!ONE(text, &s))
			continue;
		T_EQ_INT(s.length_kind, WSYNC_LENGTH_DISTANCE);
		T_NEAR(s.length, cases[i].metres);
	}
}

static void test_press_lap(void)
{
	wsync_workout *w = PARSE_OK("- Press Lap 50%\n- 10m 60%\n- 1km 70%\n"
	                            "- press lap freeride\n");
	if (!w)
		return;
	T_EQ_INT(step(w, 0)->length_kind, WSYNC_LENGTH_OPEN);
	T_NEAR(step(w, 0)->length, 0);
	T_NEAR(step(w, 0)->target_low, 50);
	T_EQ_INT(step(w, 3)->length_kind, WSYNC_LENGTH_OPEN);
	T_EQ_INT(step(w, 3)->freeride, 1);
	/* open and distance steps stay out of the time total */
	T_NEAR(w->total_seconds, 600);
	T_NEAR(w->total_metres, 1000);
	T_EQ_INT(w->expanded_steps, 4);
	wsync_workout_free(w);
}

/* ------------------------------------------------------------ targets */

struct target_case {
	const char *text;
	int32_t kind;
	double lo, hi;
	int ramp;
};

static void check_targets(const struct target_case *c, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		wsync_step s;
		if (!ONE(c[i].text, &s))
			continue;
		t_checks++;
		if (s.target_kind != c[i].kind || fabs(s.target_low - c[i].lo) > 1e-6 ||
		    fabs(s.target_high - c[i].hi) > 1e-6 || s.ramp != c[i].ramp)
			t_fail(__FILE__, __LINE__,
			       "'%s': kind %d %g..%g ramp %d, expected %d %g..%g ramp %d",
			       c[i].text, (int)s.target_kind, s.target_low,
			       s.target_high, (int)s.ramp, (int)c[i].kind, c[i].lo,
			       c[i].hi, c[i].ramp);
	}
}

static void test_power(void)
{
	static const struct target_case c[] = {
		{ "- 10m 75%", WSYNC_TARGET_PERCENT_FTP, 75, 75, 0 },
		{ "- 10m 95-105%", WSYNC_TARGET_PERCENT_FTP, 95, 105, 0 },
		{ "- 10m 50%-75%", WSYNC_TARGET_PERCENT_FTP, 50, 75, 0 },
		{ "- 10m 100-90%", WSYNC_TARGET_PERCENT_FTP, 90, 100, 0 },
		{ "- 10m 75% FTP", WSYNC_TARGET_PERCENT_FTP, 75, 75, 0 },
		{ "- 10m 87.5%", WSYNC_TARGET_PERCENT_FTP, 87.5, 87.5, 0 },
		{ "- 10m 220w", WSYNC_TARGET_WATTS, 220, 220, 0 },
		{ "- 10m 200-240W", WSYNC_TARGET_WATTS, 200, 240, 0 },
		{ "- 10m 200w-240w", WSYNC_TARGET_WATTS, 200, 240, 0 },
		{ "- 10m 240-200w", WSYNC_TARGET_WATTS, 200, 240, 0 },
		{ "- 10m Z2", WSYNC_TARGET_POWER_ZONE, 2, 2, 0 },
		{ "- 10m Z3-Z4", WSYNC_TARGET_POWER_ZONE, 3, 4, 0 },
		{ "- 10m z3-4", WSYNC_TARGET_POWER_ZONE, 3, 4, 0 },
		{ "- 10m Z4-Z3", WSYNC_TARGET_POWER_ZONE, 3, 4, 0 },
		{ "- 10m Z7", WSYNC_TARGET_POWER_ZONE, 7, 7, 0 },
		{ "- 10m ramp 50-75%", WSYNC_TARGET_PERCENT_FTP, 50, 75, 1 },
		{ "- 10m Ramp 60%-90% 85rpm", WSYNC_TARGET_PERCENT_FTP, 60, 90, 1 },
		{ "- 10m ramp 100-90%", WSYNC_TARGET_PERCENT_FTP, 100, 90, 1 },
		{ "- 10m 100-200w ramp", WSYNC_TARGET_WATTS, 100, 200, 1 },
		{ "- 10m RAMP Z1-Z3", WSYNC_TARGET_POWER_ZONE, 1, 3, 1 },
		{ "- Ramp 10m 50-75%", WSYNC_TARGET_PERCENT_FTP, 50, 75, 1 },
		{ "- Z2 10m", WSYNC_TARGET_POWER_ZONE, 2, 2, 0 },
		{ "- 10m", WSYNC_TARGET_NONE, 0, 0, 0 },
	};
	check_targets(c, sizeof c / sizeof c[0]);
}

static void test_heart_rate(void)
{
	static const struct target_case c[] = {
		{ "- 10m 70% HR", WSYNC_TARGET_PERCENT_MAX_HR, 70, 70, 0 },
		{ "- 10m 70%HR", WSYNC_TARGET_PERCENT_MAX_HR, 70, 70, 0 },
		{ "- 10m 70-80% hr", WSYNC_TARGET_PERCENT_MAX_HR, 70, 80, 0 },
		{ "- 10m 95% LTHR", WSYNC_TARGET_PERCENT_LTHR, 95, 95, 0 },
		{ "- 10m 90%-95% lthr", WSYNC_TARGET_PERCENT_LTHR, 90, 95, 0 },
		{ "- 10m Z2 HR", WSYNC_TARGET_HR_ZONE, 2, 2, 0 },
		{ "- 10m Z2-Z3 HR", WSYNC_TARGET_HR_ZONE, 2, 3, 0 },
		{ "- 10m z5 hr", WSYNC_TARGET_HR_ZONE, 5, 5, 0 },
		{ "- 10m ramp 70-85% HR", WSYNC_TARGET_PERCENT_MAX_HR, 70, 85, 1 },
	};
	check_targets(c, sizeof c / sizeof c[0]);
}

static void test_pace(void)
{
	static const struct target_case c[] = {
		{ "- 10m 80% Pace", WSYNC_TARGET_PERCENT_PACE, 80, 80, 0 },
		{ "- 10m 78-82% Pace", WSYNC_TARGET_PERCENT_PACE, 78, 82, 0 },
		{ "- 10m 80%pace", WSYNC_TARGET_PERCENT_PACE, 80, 80, 0 },
		{ "- 10m Z2 Pace", WSYNC_TARGET_PACE_ZONE, 2, 2, 0 },
		{ "- 10m Z2-Z3 PACE", WSYNC_TARGET_PACE_ZONE, 2, 3, 0 },
		{ "- 2km 5:00/km Pace", WSYNC_TARGET_PACE, 300, 300, 0 },
		{ "- 2km 5:00/km", WSYNC_TARGET_PACE, 300, 300, 0 },
		{ "- 2km 4:50-5:10/km Pace", WSYNC_TARGET_PACE, 290, 310, 0 },
		{ "- 400mtr 1:45/100m Pace", WSYNC_TARGET_PACE, 1050, 1050, 0 },
		{ "- 1mi 8:00/mi pace", WSYNC_TARGET_PACE, 480 / 1.609344,
		  480 / 1.609344, 0 },
		{ "- 2km 2:00/500m Pace", WSYNC_TARGET_PACE, 240, 240, 0 },
		{ "- 10m ramp 90-80% Pace", WSYNC_TARGET_PERCENT_PACE, 90, 80, 1 },
	};
	check_targets(c, sizeof c / sizeof c[0]);
}

static void test_cadence_freeride(void)
{
	wsync_step s;
	if (ONE("- 10m 90rpm", &s)) {
		T_NEAR(s.cadence_low, 90);
		T_NEAR(s.cadence_high, 90);
		T_EQ_INT(s.target_kind, WSYNC_TARGET_NONE);
	}
	if (ONE("- 10m 75% 90-100rpm", &s)) {
		T_NEAR(s.cadence_low, 90);
		T_NEAR(s.cadence_high, 100);
	}
	if (ONE("- 10m 100-90RPM", &s)) {
		T_NEAR(s.cadence_low, 90);
		T_NEAR(s.cadence_high, 100);
	}
	if (ONE("- 10m 75%", &s)) {
		T_NEAR(s.cadence_low, 0);
		T_NEAR(s.cadence_high, 0);
		T_EQ_INT(s.freeride, 0);
	}
	if (ONE("- 20m freeride", &s)) {
		T_EQ_INT(s.freeride, 1);
		T_EQ_INT(s.target_kind, WSYNC_TARGET_NONE);
	}
	if (ONE("- 20m FreeRide 85rpm", &s)) {
		T_EQ_INT(s.freeride, 1);
		T_NEAR(s.cadence_low, 85);
	}
}

/* ---------------------------------------------------- cue and text */

static void test_cue_and_text(void)
{
	wsync_workout *w = PARSE_OK(
		"- Recovery 2m Z1\n"
		"- Easy  spin\there 10m 60%\n"
		"- 10m 75% keep it smooth\n"
		"- 2nd effort 5m 100%\n"
		"- \xC3\x89" "chauffement progressif 5m 50%\n"
		"- Spin 0.4km 78-82% Pace trailing text\n"
		"- Hold on 10m 90rpm and smile 95%\n");
	if (!w)
		return;
	T_EQ_STR(step(w, 0)->cue, "Recovery");
	T_EQ_STR(step(w, 1)->cue, "Easy  spin\there"); /* kept as written */
	T_CHECK(step(w, 2)->cue == NULL);     /* trailing text is no cue */
	T_NEAR(step(w, 2)->target_low, 75);
	T_EQ_STR(step(w, 3)->cue, "2nd effort");
	T_NEAR(step(w, 3)->length, 300);
	T_EQ_STR(step(w, 4)->cue, "\xC3\x89" "chauffement progressif");
	T_EQ_STR(step(w, 5)->cue, "Spin");
	T_EQ_INT(step(w, 5)->target_kind, WSYNC_TARGET_PERCENT_PACE);
	/* tokens come in any order after the duration, between text */
	T_EQ_STR(step(w, 6)->cue, "Hold on");
	T_NEAR(step(w, 6)->target_low, 95);
	T_NEAR(step(w, 6)->cadence_low, 90);
	T_CHECK(step(w, 0)->section == NULL);
	wsync_workout_free(w);
}

/* No-break and thin spaces separate tokens like spaces do. */
static void test_unicode_spaces(void)
{
	wsync_step s;
	if (ONE("-\xC2\xA0" "10m\xC2\xA0" "75%\xE2\x80\xAF" "90rpm", &s)) {
		T_NEAR(s.length, 600);
		T_NEAR(s.target_low, 75);
		T_NEAR(s.cadence_low, 90);
	}
}

/* ------------------------------------------- sections and intensity */

static int32_t intensity_of(const char *header, const char *stepline)
{
	char text[256];
	wsync_workout *w;
	int32_t r = -1;
	snprintf(text, sizeof text, "%s\n%s\n", header, stepline);
	w = PARSE_OK(text);
	if (w) {
		r = step(w, 0)->intensity;
		wsync_workout_free(w);
	}
	return r;
}

static void test_intensity(void)
{
	static const char *const warm[] = { "Warmup", "Warm up", "WU", "warm-up:",
	                                    "WARMUP", "  Warm Up  " };
	static const char *const cool[] = { "Cooldown", "Cool down", "CD",
	                                    "cool-down", "COOL DOWN" };
	size_t i;

	for (i = 0; i < sizeof warm / sizeof warm[0]; i++)
		T_EQ_INT(intensity_of(warm[i], "- 10m 40%"), WSYNC_INTENSITY_WARMUP);
	for (i = 0; i < sizeof cool / sizeof cool[0]; i++)
		T_EQ_INT(intensity_of(cool[i], "- 10m 120%"), WSYNC_INTENSITY_COOLDOWN);
	T_EQ_INT(intensity_of("Main Set", "- 1m 55%"), WSYNC_INTENSITY_RECOVERY);
	T_EQ_INT(intensity_of("Main Set", "- 1m 56%"), WSYNC_INTENSITY_ACTIVE);
	T_EQ_INT(intensity_of("Main Set", "- 1m 40-50%"), WSYNC_INTENSITY_RECOVERY);
	T_EQ_INT(intensity_of("Main Set", "- 1m 50-60%"), WSYNC_INTENSITY_ACTIVE);
	T_EQ_INT(intensity_of("Main Set", "- 1m ramp 60-50%"), WSYNC_INTENSITY_ACTIVE);
	T_EQ_INT(intensity_of("Main Set", "- 1m Z1"), WSYNC_INTENSITY_RECOVERY);
	T_EQ_INT(intensity_of("Main Set", "- 1m Z1-Z2"), WSYNC_INTENSITY_ACTIVE);
	T_EQ_INT(intensity_of("Main Set", "- 1m Z1 HR"), WSYNC_INTENSITY_ACTIVE);
	T_EQ_INT(intensity_of("Main Set", "- 1m 100w"), WSYNC_INTENSITY_ACTIVE);
	T_EQ_INT(intensity_of("Main Set", "- 1m freeride"), WSYNC_INTENSITY_ACTIVE);
	T_EQ_INT(intensity_of("Warmup extra", "- 1m 50%"), WSYNC_INTENSITY_RECOVERY);
	T_EQ_INT(intensity_of("Warmup 2x", "- 1m 90%"), WSYNC_INTENSITY_WARMUP);
	/* before any header: the main-set rules */
	T_EQ_INT(intensity_of("", "- 1m 50%"), WSYNC_INTENSITY_RECOVERY);
	T_EQ_INT(intensity_of("", "- 1m 80%"), WSYNC_INTENSITY_ACTIVE);
}

/* ----------------------------------------------------------- repeats */

static void test_repeats(void)
{
	wsync_workout *w = PARSE_OK(
		"Main Set\n"          /* 1 */
		"- 5m 60%\n"          /* 2 */
		"3X\n"                /* 3: bare repeat keeps the section */
		"- 1m 120%\n"         /* 4 */
		"- 1m 50%\n"          /* 5 */
		"\n"                  /* 6: ends the block */
		"- 2m 60%\n"          /* 7: top level again */
		"Over-unders 2x\n"    /* 8 */
		"- 2m 95%\n"          /* 9 */
		"Single 1x\n"         /* 10: a header ends the block */
		"- 30s 150%\n");      /* 11 */
	const wsync_step *s;
	if (!w)
		return;
	T_EQ_INT(w->n_steps, 9);
	s = step(w, 1);
	T_EQ_INT(s->kind, WSYNC_STEP_REPEAT);
	T_EQ_INT(s->repeat_count, 3);
	T_EQ_INT(s->child_count, 2);
	T_EQ_STR(s->section, "Main Set");
	T_EQ_STR(step(w, 2)->section, "Main Set");
	T_EQ_INT(step(w, 4)->kind, WSYNC_STEP_STEP);
	T_EQ_INT(step(w, 4)->line, 7);
	T_EQ_INT(step(w, 5)->repeat_count, 2);
	T_EQ_INT(step(w, 5)->child_count, 1);
	T_EQ_STR(step(w, 5)->section, "Over-unders");
	T_EQ_INT(step(w, 7)->repeat_count, 1);
	T_EQ_STR(step(w, 7)->section, "Single");
	T_EQ_INT(w->expanded_steps, 1 + 6 + 1 + 2 + 1);
	T_NEAR(w->total_seconds, 300 + 3 * 120 + 120 + 2 * 120 + 30);
	T_EQ_INT(wsync_step_next(w, 1), 4);
	T_EQ_INT(wsync_step_next(w, 0), 1);
	wsync_workout_free(w);

	/* repeats of distance steps add metres, not seconds */
	w = PARSE_OK("4x\n- 400mtr 110%\n- 1m 50%\n");
	if (w) {
		T_NEAR(w->total_metres, 1600);
		T_NEAR(w->total_seconds, 240);
		T_EQ_INT(w->expanded_steps, 8);
		wsync_workout_free(w);
	}
}

/* -------------------------------------------------- CRLF, case, BOM */

static void test_crlf_case_bom(void)
{
	const char *crlf =
		"WARMUP\r\n- 10M RAMP 50-75% 90RPM\r\n\r\nmain set 5X\r\n"
		"- 3M 120% 100RPM\r\n- Recovery 2M z1 85Rpm\r\n\r\nCOOL DOWN\r\n"
		"- 8M 50%";
	wsync_workout *w = PARSE_OK(crlf);
	if (w) {
		T_EQ_INT(w->n_steps, 5);
		T_NEAR(w->total_seconds, 2580);
		T_EQ_INT(w->expanded_steps, 12);
		T_EQ_STR(step(w, 0)->section, "WARMUP");
		T_EQ_INT(step(w, 0)->intensity, WSYNC_INTENSITY_WARMUP);
		T_EQ_INT(step(w, 0)->ramp, 1);
		T_EQ_STR(step(w, 1)->section, "main set");
		T_EQ_STR(step(w, 3)->cue, "Recovery");
		T_EQ_INT(step(w, 4)->intensity, WSYNC_INTENSITY_COOLDOWN);
		wsync_workout_free(w);
	}
	ERR("- 10m\r\n- Oops 10x\r\n", 2, 8, "found '10x'");
	w = PARSE_OK("\xEF\xBB\xBF" "Warmup\n- 10m 50%\n");
	if (w) {
		T_EQ_STR(step(w, 0)->section, "Warmup");
		wsync_workout_free(w);
	}
	/* columns after a byte-order mark are those the writer sees */
	ERR("\xEF\xBB\xBF- 10x", 1, 3, "found '10x'");
}

/* ------------------------------------------------------------ errors */

static void test_error_example(void)
{
	wsync_workout *w = NULL;
	wsync_parse_error err;
	const char *text = "Warmup\n- 10m 50%\n\n- Recov 10x\n";
	T_EQ_INT(wsync_workout_parse(text, strlen(text), &w, &err), -1);
	T_CHECK(w == NULL);
	T_EQ_INT(err.line, 4);
	T_EQ_INT(err.column, 9);
	T_EQ_STR(err.message, "line 4, col 9: expected a duration such as 10m "
	                      "or 30s, found '10x'");
	T_EQ_STR(wsync_parse_error_text(&err),
	         "expected a duration such as 10m or 30s, found '10x'");
}

static void test_errors_length(void)
{
	ERR("- Recovery", 1, 11, "expected a duration such as 10m or 30s, found end of line");
	ERR("-", 1, 2, "found end of line");
	ERR("- 75% 90rpm", 1, 12, "found end of line");
	ERR("- 10x 75%", 1, 3, "found '10x'");
	ERR("- 1h30 75%", 1, 3, "found '1h30'");
	ERR("- 10min 75%", 1, 3, "found '10min'");
	ERR("- 10m 2km", 1, 7, "exactly one duration or distance, but '2km' is a second one");
	ERR("- 10m 75% 5m", 1, 11, "but '5m' is a second one");
	ERR("- press lap 10m", 1, 13, "but '10m' is a second one");
	ERR("- 10m press lap", 1, 7, "but 'press lap' is a second one");
	ERR("- 25h", 1, 3, "a step lasts at most 24h, found '25h'");
	ERR("- 24h1s", 1, 3, "at most 24h");
	ERR("- 1441m", 1, 3, "at most 24h");
	ERR("- 0m 50%", 1, 3, "a duration must be more than 0, found '0m'");
	ERR("- 0s", 1, 3, "more than 0");
	ERR("- 0km", 1, 3, "a distance must be more than 0, found '0km'");
	ERR("- 1234567890s", 1, 3, "expected a duration");
}

static void test_errors_target(void)
{
	ERR("- 10m 75% 80%", 1, 11, "a step has one target, but '80%' is a second one");
	ERR("- 10m Z2 220w", 1, 10, "one target");
	ERR("- 10m 90rpm 95rpm", 1, 13, "a step has one cadence, but '95rpm' is a second one");
	ERR("- 10m 95-105", 1, 7, "expected a target such as 75%, 220w, Z2 or 90rpm, found '95-105'");
	ERR("- 10m 75%x", 1, 7, "found '75%x'");
	ERR("- 10m 100% 2nd half", 1, 12, "found '2nd'");
	ERR("- 10m Z8", 1, 7, "a power zone is 1 to 7, found 'Z8'");
	ERR("- 10m Z0", 1, 7, "a power zone is 1 to 7");
	ERR("- 10m Z6 HR", 1, 7, "a heart-rate zone is 1 to 5, found 'Z6 HR'");
	ERR("- 10m Z3-Z9 Pace", 1, 7, "a pace zone is 1 to 7");
	ERR("- 10m Z2x", 1, 7, "found 'Z2x'");
	ERR("- 10m 0%", 1, 7, "a target must be more than 0");
	ERR("- 10m 0rpm", 1, 7, "a cadence must be more than 0");
	ERR("- 2km 0:00/km", 1, 7, "a pace must be more than 0:00");
	ERR("- 2km 5:75/km", 1, 7, "found '5:75/km'");
	ERR("- 10m ramp 75%", 1, 12, "ramp needs a target range such as 50-75%, found '75%'");
	ERR("- 10m ramp", 1, 7, "ramp needs a target range such as 50-75%");
	ERR("- 10m freeride 75%", 1, 16, "a freeride step has no target, found '75%'");
	ERR("- 10m 75% freeride", 1, 11, "a freeride step has no target");
}

static void test_errors_structure(void)
{
	ERR("", 1, 1, "the workout has no steps");
	ERR("\n\n  \n", 1, 1, "no steps");
	ERR("Warmup\nMain Set\n", 1, 1, "no steps");
	ERR("Main Set 5x\n\n- 1m 50%\n", 1, 10,
	    "repeat 5x has no steps: its steps must follow it directly");
	ERR("- 1m 50%\n3x", 2, 1, "repeat 3x has no steps");
	ERR("2x\nMain\n- 1m\n", 1, 1, "repeat 2x has no steps");
	ERR("Main 0x\n- 1m", 1, 6, "a repeat count is 1 to 100, found '0x'");
	ERR("Main 101x\n- 1m", 1, 6, "a repeat count is 1 to 100, found '101x'");
	ERR("99999x\n- 1m", 1, 1, "found '99999x'");
}

static void test_errors_text(void)
{
	/* columns count characters: "é" is two bytes, one column */
	ERR("- 10m \xC3\xA9 \xFF", 1, 9, "invalid UTF-8 (byte 0xff)");
	ERR("- 10m\n- 5m \xC3", 2, 6, "invalid UTF-8 (byte 0xc3)");
	ERR("- 10m \xC0\xAF", 1, 7, "invalid UTF-8 (byte 0xc0)");     /* overlong */
	ERR("- 10m \xED\xA0\x80", 1, 7, "invalid UTF-8 (byte 0xed)"); /* surrogate */
	ERR("- 10m \xF4\x90\x80\x80", 1, 7, "invalid UTF-8");          /* > U+10FFFF */
	ERRN("- 10m\0 75%", 10, 1, 6, "NUL character in text");
	ERR("- \xC3\x9Cn\xC3\xAF" "c\xC3\xB6" "d\xC3\xA9 10x", 1, 11, "found '10x'");
	ERR("- \xE2\x9C\x93 10m 2km", 1, 9, "but '2km' is a second one");
	/* a long token is quoted shortened, on a character boundary */
	ERR("- 10m 1234567890123456789012345678901234567890123456789x", 1, 7,
	    "found '1234567890123456789012345678901234567890...'");
}

static void test_error_contract(void)
{
	wsync_workout *w = (wsync_workout *)(uintptr_t)1;
	wsync_parse_error err;

	/* err may be NULL; out may not */
	T_EQ_INT(wsync_workout_parse("- 10x", 5, &w, NULL), -1);
	T_CHECK(w == NULL);
	T_EQ_INT(wsync_workout_parse("- 10m", 5, NULL, &err), -1);
	T_CONTAINS(err.message, "invalid arguments");
	T_EQ_INT(wsync_workout_parse(NULL, 0, &w, &err), -1);
	T_CONTAINS(err.message, "no steps");
	/* not NUL-terminated: only len bytes are read */
	w = parse_ok_at(__LINE__, "- 10m 75%XXXX", 9);
	if (w) {
		T_NEAR(step(w, 0)->target_low, 75);
		wsync_workout_free(w);
	}
	wsync_workout_free(NULL);
}

/* ------------------------------------------------------------ limits */

static char *repeat_text(const char *head, const char *unit, size_t times)
{
	size_t hl = strlen(head), ul = strlen(unit), i;
	char *t = malloc(hl + ul * times + 1);
	if (!t)
		abort();
	memcpy(t, head, hl);
	for (i = 0; i < times; i++)
		memcpy(t + hl + i * ul, unit, ul);
	t[hl + ul * times] = '\0';
	return t;
}

static void test_limit_text_size(void)
{
	/* exactly 64 KiB: "- 1m\n" then padding lines of 63 spaces + '\n' */
	size_t pad = (WSYNC_WORKOUT_MAX_TEXT - 5) / 64, rest;
	char *t = repeat_text("- 1m\n", "                                "
	                      "                               \n", pad);
	char *big;
	wsync_workout *w;

	rest = WSYNC_WORKOUT_MAX_TEXT - strlen(t);
	big = malloc(WSYNC_WORKOUT_MAX_TEXT + 2);
	if (!big)
		abort();
	memcpy(big, t, strlen(t));
	memset(big + strlen(t), ' ', rest + 1);
	big[WSYNC_WORKOUT_MAX_TEXT + 1] = '\0';
	w = parse_ok_at(__LINE__, big, WSYNC_WORKOUT_MAX_TEXT);
	if (w) {
		T_EQ_INT(w->expanded_steps, 1);
		wsync_workout_free(w);
	}
	/* one byte more: the error is at that byte (last line, col rest+1) */
	err_at(__LINE__, big, WSYNC_WORKOUT_MAX_TEXT + 1, (unsigned)pad + 2,
	       (unsigned)rest + 1, "the text is longer than 64 KiB");
	free(big);
	free(t);
}

static void test_limit_steps(void)
{
	char *t = repeat_text("Main 100x\n", "- 10s 90%\n", 10);
	char *more;
	wsync_workout *w = PARSE_OK(t);
	if (w) {
		T_EQ_INT(w->expanded_steps, 1000);
		T_NEAR(w->total_seconds, 10000);
		wsync_workout_free(w);
	}
	/* the 1001st step, top level after a blank line */
	more = malloc(strlen(t) + 32);
	if (!more)
		abort();
	sprintf(more, "%s\n  - 1m", t);
	ERR(more, 13, 3, "more than 1000 steps after expanding repeats");
	free(more);
	free(t);

	/* 1000 plain steps pass, 1001 do not */
	t = repeat_text("", "- 1s\n", 1000);
	w = PARSE_OK(t);
	if (w) {
		T_EQ_INT(w->n_steps, 1000);
		wsync_workout_free(w);
	}
	free(t);
	t = repeat_text("", "- 1s\n", 1001);
	ERR(t, 1001, 1, "more than 1000 steps");
	free(t);

	/* a repeat child that would overflow */
	ERR("- 1m\n100x\n- 1s\n- 1s\n- 1s\n- 1s\n- 1s\n- 1s\n- 1s\n- 1s\n- 1s\n- 1s\n",
	    12, 1, "more than 1000 steps");
}

static void test_limit_repeat(void)
{
	wsync_workout *w = PARSE_OK("100x\n- 1s\n");
	if (w) {
		T_EQ_INT(step(w, 0)->repeat_count, 100);
		wsync_workout_free(w);
	}
	w = PARSE_OK("Main 1x\n- 1s\n");
	if (w) {
		T_EQ_INT(step(w, 0)->repeat_count, 1);
		wsync_workout_free(w);
	}
}

/* -------------------------------------------------------------- JSON */

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static void test_json(void)
{
	wsync_workout *w = PARSE_OK(EXAMPLE);
	struct json_object *o, *steps, *rep, *child, *tot;
	char *js;

	if (!w)
		return;
	js = wsync_workout_to_json(w);
	T_CHECK(js != NULL);
	o = js ? json_tokener_parse(js) : NULL;
	T_CHECK(o != NULL);
	steps = get(o, "steps");
	T_EQ_INT(json_object_array_length(steps), 3);
	T_EQ_STR(json_object_get_string(get(json_object_array_get_idx(steps, 0),
	                                    "intensity")), "warmup");
	T_EQ_STR(json_object_get_string(get(get(json_object_array_get_idx(steps, 0),
	                                        "target"), "kind")), "percent_ftp");
	T_CHECK(json_object_get_boolean(get(get(json_object_array_get_idx(steps, 0),
	                                        "target"), "ramp")));
	rep = json_object_array_get_idx(steps, 1);
	T_EQ_STR(json_object_get_string(get(rep, "kind")), "repeat");
	T_EQ_INT(json_object_get_int(get(rep, "repeat")), 5);
	T_EQ_INT(json_object_array_length(get(rep, "steps")), 2);
	child = json_object_array_get_idx(get(rep, "steps"), 1);
	T_EQ_STR(json_object_get_string(get(child, "cue")), "Recovery");
	T_EQ_STR(json_object_get_string(get(get(child, "target"), "kind")),
	         "power_zone");
	T_EQ_INT(json_object_get_int(get(get(child, "length"), "seconds")), 120);
	T_EQ_INT(json_object_get_int(get(get(child, "cadence"), "low")), 85);
	tot = get(o, "totals");
	T_EQ_INT(json_object_get_int(get(tot, "seconds")), 2580);
	T_EQ_INT(json_object_get_int(get(tot, "metres")), 0);
	T_EQ_INT(json_object_get_int(get(tot, "steps")), 12);
	T_CONTAINS(js, "\"cue\":null");
	T_CONTAINS(js, "\"cadence\":null");
	json_object_put(o);
	free(js);
	wsync_workout_free(w);

	w = PARSE_OK("- 4.5mi 5:00/km\n- press lap freeride\n- 10m 70% HR\n");
	if (!w)
		return;
	js = wsync_workout_to_json(w);
	T_CONTAINS(js, "\"metres\":7242.048");
	T_CONTAINS(js, "{\"kind\":\"open\"}");
	T_CONTAINS(js, "\"kind\":\"pace\"");
	T_CONTAINS(js, "\"kind\":\"percent_max_hr\"");
	T_CONTAINS(js, "\"freeride\":true");
	T_CONTAINS(js, "\"target\":{\"kind\":\"none\"}");
	free(js);
	wsync_workout_free(w);

	T_EQ_STR(wsync_length_kind_name(WSYNC_LENGTH_OPEN), "open");
	T_EQ_STR(wsync_target_kind_name(WSYNC_TARGET_PERCENT_LTHR), "percent_lthr");
	T_EQ_STR(wsync_target_kind_name(99), "unknown");
	T_CHECK(wsync_workout_to_json(NULL) == NULL);
}

int main(void)
{
	test_example();
	test_times();
	test_distances();
	test_press_lap();
	test_power();
	test_heart_rate();
	test_pace();
	test_cadence_freeride();
	test_cue_and_text();
	test_unicode_spaces();
	test_intensity();
	test_repeats();
	test_crlf_case_bom();
	test_error_example();
	test_errors_length();
	test_errors_target();
	test_errors_structure();
	test_errors_text();
	test_error_contract();
	test_limit_text_size();
	test_limit_steps();
	test_limit_repeat();
	test_json();
	return t_done();
}
