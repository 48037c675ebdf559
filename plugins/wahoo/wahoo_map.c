/*
 * wahoo_map.c -- the structured workout as a Wahoo plan file (JSON format
 * 1.0.0: a header and nested intervals).  See README.md for the mapping and
 * the choices made where Wahoo has no equivalent (ramps, lap-button steps,
 * zones).
 */
#include "wahoo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Power and heart-rate zones are the SDK's model (wsync/workout.h, ZONES);
 * pace zones, as fractions of threshold speed: {low, high}. */
static const double pace_band[8][2] = { /* of threshold speed */
	{0, 0}, {0.60, 0.775}, {0.775, 0.877}, {0.877, 0.943}, {0.943, 1.00},
	{1.00, 1.034}, {1.034, 1.115}, {1.115, 1.30},
};

#define MAX_DEPTH 8
#define DESCRIPTION_MAX 5000 /* characters, header.description */

/* ------------------------------------------------------------------ buffer */

void wahoo_buf_add(wahoo_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void wahoo_buf_str(wahoo_buf *b, const char *s)
{
	wahoo_buf_add(b, s, strlen(s));
}

void wahoo_buf_free(wahoo_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------- sport */

int wahoo_sport_family(const char *sport)
{
	/* bike, cycling, ride and anything else: Wahoo plans are bike or run */
	static const wsync_sport_name runs[] = {
		{"run", "run"}, {"running", "run"}, {"trailrun", "run"},
		{"virtualrun", "run"}, {"treadmill", "run"},
	};
	return wsync_sport_lookup(sport, runs, sizeof runs / sizeof runs[0], NULL)
	               ? WAHOO_FAMILY_RUN
	               : WAHOO_FAMILY_BIKE;
}

/* ----------------------------------------------------------------- numbers */

static int finite(double x)
{
	return x == x && x - x == 0;
}

/* x rounded to `dec` decimals (no libm). */
static double rnd(double x, int dec)
{
	double f = 1, y;
	while (dec-- > 0)
		f *= 10;
	y = x * f;
	if (y > 9e15 || y < -9e15)
		return x;
	return (double)(long long)(y >= 0 ? y + 0.5 : y - 0.5) / f;
}

/* ------------------------------------------------------------------ builder */

typedef struct target {
	const char *type;  /* Wahoo target type */
	double lo, hi;     /* for a ramp: start and end value */
	int dec;           /* decimals kept */
} target;

typedef struct plan_ctx {
	const wahoo_cfg *cfg;
	const wsync_workout *w;
	int split_ramps;
	int64_t intervals; /* interval objects made so far */
	wahoo_buf out;     /* the plan file, written as it is built */
	char *err;
	size_t errlen;
} plan_ctx;

/*
 * The plan file is written straight into c->out, member by member, in the
 * order a reader sees it: a plan is small and written once, and building it
 * as a tree of json-c objects first (a hash table per object) cost more
 * than the rest of the call (bench/README.md).
 */

static void raw(plan_ctx *c, const char *s)
{
	wahoo_buf_str(&c->out, s);
}

/* A JSON string: '"', '\\' and the control characters escaped; UTF-8 as is. */
static void str_n(plan_ctx *c, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	wahoo_buf_add(&c->out, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[7] = {'\\', 0};
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		wahoo_buf_add(&c->out, s + run, i - run);
		run = i + 1;
		switch (ch) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
		}
		wahoo_buf_add(&c->out, esc, strlen(esc));
	}
	wahoo_buf_add(&c->out, s + run, n - run);
	wahoo_buf_add(&c->out, "\"", 1);
}

/* `"key":` after a comma unless `first`. */
static void key(plan_ctx *c, const char *k, int first)
{
	if (!first)
		raw(c, ",");
	str_n(c, k, strlen(k));
	raw(c, ":");
}

static void key_str(plan_ctx *c, const char *k, const char *v, int first)
{
	key(c, k, first);
	str_n(c, v, strlen(v));
}

/* v / 10^decimals in decimal, written backwards from the end of s[0..31]
 * without trailing zeros after the point; returns where it starts. */
static char *decimal(char *s, long long v, int decimals)
{
	char *p = s + 31;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	*p = '\0';
	while (decimals > 0 && u % 10 == 0) {
		u /= 10;
		decimals--;
	}
	for (int i = 0; i < decimals; i++, u /= 10)
		*--p = (char)('0' + u % 10);
	if (decimals > 0)
		*--p = '.';
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		*--p = '-';
	return p;
}

/* A JSON number: integral values as integers, others with at most 10
 * significant digits (0.55, not 0.55000000000000004), as "%.10g" writes
 * them.  The values here are rounded to 4 decimals (rnd), so the common
 * case is x == k / 10^4 for a whole k: written from k's digits, which is
 * what "%.10g" gives for such an x below 10^6 (and it costs a tenth). */
static void key_num(plan_ctx *c, const char *k, double x, int first)
{
	char s[32];
	const char *text = s;
	double y = x * 1e4;
	if (x >= -1e15 && x <= 1e15 && x == (double)(long long)x)
		text = decimal(s, (long long)x, 0);
	else if (x > -1e6 && x < 1e6 && (double)(long long)(y >= 0 ? y + 0.5 : y - 0.5) / 1e4 == x)
		text = decimal(s, (long long)(y >= 0 ? y + 0.5 : y - 0.5), 4);
	else
		snprintf(s, sizeof s, "%.10g", x);
	key(c, k, first);
	raw(c, text);
}

static int zone_ok(double z, int max)
{
	return z >= 1 && z <= max && z == (double)(int)z;
}

/* Zone z as fractions {low, high}: the SDK's model for power and heart
 * rate, pace_band for pace. */
static int zone_band(int32_t kind, int z, double band[2])
{
	if (kind == WSYNC_TARGET_PACE_ZONE) {
		if (!zone_ok(z, 7))
			return -1;
		band[0] = pace_band[z][0];
		band[1] = pace_band[z][1];
		return 0;
	}
	if (wsync_zone_percent(kind, z, &band[0], &band[1]) < 0)
		return -1;
	band[0] /= 100.0;
	band[1] /= 100.0;
	return 0;
}

/* A zone range (or, for a ramp, the zones' midpoints) as fractions. */
static int zone_target(const wsync_step *s, target *t)
{
	double a[2], b[2];
	int za = (int)s->target_low, zb = (int)s->target_high;
	if (s->target_low != za || s->target_high != zb || zone_band(s->target_kind, za, a) < 0 ||
	    zone_band(s->target_kind, zb, b) < 0)
		return -1;
	if (s->ramp) {
		t->lo = (a[0] + a[1]) / 2;
		t->hi = (b[0] + b[1]) / 2;
	} else {
		t->lo = za < zb ? a[0] : b[0];
		t->hi = za < zb ? b[1] : a[1];
	}
	t->dec = 4;
	return 1;
}

/* The step's primary target in Wahoo terms: 0 none, 1 set, -1 unmappable.
 * For a ramp, lo is the start value and hi the end value. */
static int primary_target(const wsync_step *s, target *t)
{
	double lo = s->target_low, hi = s->target_high;

	if (!finite(lo) || !finite(hi) || lo < 0 || hi < 0)
		return -1;
	t->dec = 4;
	switch (s->target_kind) {
	case WSYNC_TARGET_NONE:
		return 0;
	case WSYNC_TARGET_PERCENT_FTP:
		t->type = "ftp";
		break;
	case WSYNC_TARGET_WATTS:
		t->type = "watts";
		t->lo = lo;
		t->hi = hi;
		t->dec = 1;
		return 1;
	case WSYNC_TARGET_POWER_ZONE:
		t->type = "ftp";
		return zone_target(s, t);
	case WSYNC_TARGET_PERCENT_MAX_HR:
		t->type = "max_hr";
		break;
	case WSYNC_TARGET_PERCENT_LTHR:
		t->type = "threshold_hr";
		break;
	case WSYNC_TARGET_HR_ZONE:
		t->type = "threshold_hr";
		return zone_target(s, t);
	case WSYNC_TARGET_PERCENT_PACE:
		t->type = "threshold_speed";
		break;
	case WSYNC_TARGET_PACE_ZONE:
		t->type = "threshold_speed";
		return zone_target(s, t);
	case WSYNC_TARGET_PACE:
		/* seconds per km -> metres per second; the slower pace (more
		 * seconds) is the lower speed */
		if (lo <= 0 || hi <= 0)
			return -1;
		t->type = "speed";
		t->dec = 3;
		if (s->ramp) {
			t->lo = 1000.0 / lo;
			t->hi = 1000.0 / hi;
		} else {
			t->lo = 1000.0 / hi;
			t->hi = 1000.0 / lo;
		}
		return 1;
	default:
		return -1;
	}
	/* percent -> fraction (1.0 = 100 %) */
	t->lo = lo / 100.0;
	t->hi = hi / 100.0;
	return 1;
}

/* A target object, after a comma unless `first`. */
static void target_obj(plan_ctx *c, const char *type, double lo, double hi, int dec, int first)
{
	lo = rnd(lo, dec);
	hi = rnd(hi, dec);
	if (hi < lo) {
		double x = lo;
		lo = hi;
		hi = x;
	}
	raw(c, first ? "{" : ",{");
	key_str(c, "type", type, 1);
	key_num(c, "low", lo, 0);
	key_num(c, "high", hi, 0);
	raw(c, "}");
}

static const char *intensity_type(int32_t intensity)
{
	switch (intensity) {
	case WSYNC_INTENSITY_WARMUP: return "wu";
	case WSYNC_INTENSITY_COOLDOWN: return "cd";
	case WSYNC_INTENSITY_RECOVERY: return "recover";
	default: return "active";
	}
}

static const char *step_name(const wsync_step *s)
{
	if (s->cue && *s->cue)
		return s->cue;
	if (s->section && *s->section)
		return s->section;
	return NULL;
}

/* An element of the array being written: its comma unless it is the first. */
static void element(plan_ctx *c, int *first)
{
	raw(c, *first ? "{" : ",{");
	*first = 0;
}

/* One interval of a step; t NULL = no primary target.  Power (or the other
 * primary target) always comes first: devices use only the first. */
static void emit(plan_ctx *c, int *first, const wsync_step *s, const char *trigger,
                 double value, const target *t, double lo, double hi)
{
	const char *name = step_name(s);
	int cadence = s->cadence_low > 0 && finite(s->cadence_low) && finite(s->cadence_high);

	c->intervals++;
	element(c, first);
	if (name)
		key_str(c, "name", name, 1);
	key_str(c, "exit_trigger_type", trigger, !name);
	key_num(c, "exit_trigger_value", value, 0);
	key_str(c, "intensity_type", intensity_type(s->intensity), 0);
	if (t || cadence) {
		key(c, "targets", 0);
		raw(c, "[");
		if (t)
			target_obj(c, t->type, lo, hi, t->dec, 1);
		if (cadence)
			target_obj(c, "rpm", s->cadence_low,
			           s->cadence_high > s->cadence_low ? s->cadence_high : s->cadence_low,
			           1, !t);
		raw(c, "]");
	}
	raw(c, "}");
}

/* Segments a ramp of length L is cut into: one per minute (time) or per
 * 250 m (distance), at least 2 and at most ramp_steps; 0 = do not cut. */
static int ramp_segments(const plan_ctx *c, int is_time, double len)
{
	double unit = is_time ? 60.0 : 250.0;
	int64_t n;
	if (!c->split_ramps || c->cfg->ramp_steps < 2)
		return 0;
	n = (int64_t)(len / unit);
	if (n > c->cfg->ramp_steps)
		n = c->cfg->ramp_steps;
	if (n < 2)
		n = 2;
	if (n > (int64_t)len) /* at least 1 s or 1 m each */
		n = (int64_t)len;
	return n >= 2 ? (int)n : 0;
}

/* Boundary k of n over len: whole seconds/metres when len is whole. */
static double boundary(double len, int k, int n)
{
	double x = len * k / n;
	if (len == (double)(long long)len)
		return (double)(long long)(x + 0.5);
	return rnd(x, 3);
}

static int add_step(plan_ctx *c, int *first, const wsync_step *s)
{
	const char *trigger;
	double len = s->length;
	target t = {NULL, 0, 0, 4};
	int has, n, k;

	switch (s->length_kind) {
	case WSYNC_LENGTH_TIME:
		trigger = "time";
		break;
	case WSYNC_LENGTH_DISTANCE:
		trigger = "distance";
		break;
	case WSYNC_LENGTH_OPEN:
		/* Wahoo has no lap-button trigger: a fixed time (README) */
		trigger = "time";
		len = (double)c->cfg->open_step_s;
		break;
	default:
		snprintf(c->err, c->errlen, "line %u: unknown step length kind %d", s->line,
		         s->length_kind);
		return WSYNC_E_INVALID_WORKOUT;
	}
	if (!finite(len) || len <= 0) {
		snprintf(c->err, c->errlen, "line %u: step length must be more than 0", s->line);
		return WSYNC_E_INVALID_WORKOUT;
	}
	if (s->length_kind != WSYNC_LENGTH_OPEN)
		len = rnd(len, 3);
	has = primary_target(s, &t);
	if (has < 0) {
		snprintf(c->err, c->errlen, "line %u: target kind %d cannot be expressed on Wahoo",
		         s->line, s->target_kind);
		return WSYNC_E_INVALID_WORKOUT;
	}
	n = has && s->ramp ? ramp_segments(c, trigger[0] == 't', len) : 0;
	if (n == 0) {
		/* no ramp, or a ramp sent as its range: sorted low..high */
		emit(c, first, s, trigger, len, has ? &t : NULL, has ? t.lo : 0, has ? t.hi : 0);
		return WSYNC_OK;
	}
	/* A ramp as a staircase from its start value to its end value. */
	for (k = 0; k < n; k++) {
		double v = t.lo + (t.hi - t.lo) * k / (n - 1);
		double seg = boundary(len, k + 1, n) - boundary(len, k, n);
		emit(c, first, s, trigger, rnd(seg, 3), &t, v, v);
	}
	return WSYNC_OK;
}

/* Entries [from, to) of the flat array into the array being written (its
 * first element not yet written while *first); repeats nest. */
static int add_range(plan_ctx *c, int *first, uint32_t from, uint32_t to, int depth)
{
	uint32_t i = from;
	int32_t st;

	while (i < to) {
		const wsync_step *s = wsync_workout_step(c->w, i);
		if (s->kind == WSYNC_STEP_REPEAT) {
			uint32_t end = i + 1 + s->child_count;
			int kids_first = 1;
			if (end > to || end < i) {
				snprintf(c->err, c->errlen, "line %u: repeat claims more steps than exist",
				         s->line);
				return WSYNC_E_INVALID_WORKOUT;
			}
			if (s->repeat_count <= 1) { /* one pass: no repeat needed */
				if ((st = add_range(c, first, i + 1, end, depth)) != WSYNC_OK)
					return st;
				i = end;
				continue;
			}
			if (depth >= MAX_DEPTH) {
				snprintf(c->err, c->errlen, "line %u: repeats nested too deep", s->line);
				return WSYNC_E_INVALID_WORKOUT;
			}
			c->intervals++;
			element(c, first);
			if (s->section && *s->section)
				key_str(c, "name", s->section, 1);
			key_str(c, "exit_trigger_type", "repeat", !(s->section && *s->section));
			/* passes after the first */
			key_num(c, "exit_trigger_value", (double)s->repeat_count - 1, 0);
			key(c, "intervals", 0);
			raw(c, "[");
			if ((st = add_range(c, &kids_first, i + 1, end, depth + 1)) != WSYNC_OK)
				return st;
			raw(c, "]}");
			i = end;
		} else {
			if ((st = add_step(c, first, s)) != WSYNC_OK)
				return st;
			i++;
		}
	}
	return WSYNC_OK;
}

/* Bytes of the first `max` UTF-8 characters of s. */
static size_t utf8_prefix(const char *s, size_t max)
{
	size_t i = 0, chars = 0;
	while (s[i]) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (chars == max)
				break;
			chars++;
		}
		i++;
	}
	return i;
}

static void header(plan_ctx *c, const wsync_workout_entity *w)
{
	const char *name = w->name && *w->name ? w->name : "Workout";

	raw(c, "{");
	key_str(c, "name", name, 1);
	key_str(c, "version", "1.0.0", 0);
	if (w->description && *w->description) {
		key(c, "description", 0);
		str_n(c, w->description, utf8_prefix(w->description, DESCRIPTION_MAX));
	}
	key_num(c, "workout_type_family", wahoo_sport_family(w->sport), 0);
	key_num(c, "workout_type_location", c->cfg->location, 0);
	if (c->cfg->ftp > 0)
		key_num(c, "ftp", (double)c->cfg->ftp, 0);
	raw(c, "}");
}

/* The whole plan file into c->out (emptied first). */
static int32_t build(plan_ctx *c, const wsync_workout_entity *w)
{
	int first = 1;
	int32_t st;

	c->intervals = 0;
	c->out.len = 0;
	raw(c, "{\"header\":");
	header(c, w);
	raw(c, ",\"intervals\":[");
	st = add_range(c, &first, 0, c->w->n_steps, 0);
	raw(c, "]}");
	if (st == WSYNC_OK && c->out.oom) {
		snprintf(c->err, c->errlen, "out of memory building the plan file");
		st = WSYNC_E_UNEXPECTED;
	}
	return st;
}

int32_t wahoo_plan_json(const wahoo_cfg *cfg, const wsync_workout_entity *w,
                        char **out, size_t *out_len, char *err, size_t errlen)
{
	plan_ctx c = {cfg, NULL, 1, 0, {0}, err, errlen};
	int32_t st;

	*out = NULL;
	*out_len = 0;
	if (!w || !w->structure) {
		snprintf(err, errlen, "the workout has no parsed structure");
		return WSYNC_E_UNEXPECTED;
	}
	c.w = w->structure;
	if (c.w->step_size < sizeof(wsync_step)) {
		snprintf(err, errlen, "workout structure from an older producer (step size %u)",
		         c.w->step_size);
		return WSYNC_E_UNEXPECTED;
	}
	if (c.w->n_steps == 0) {
		snprintf(err, errlen, "the workout has no steps");
		return WSYNC_E_INVALID_WORKOUT;
	}
	st = build(&c, w);
	if (st == WSYNC_OK && c.intervals > cfg->max_intervals) {
		/* Too many once ramps are cut: send ramps as ranges instead. */
		c.split_ramps = 0;
		st = build(&c, w);
		if (st == WSYNC_OK && c.intervals > cfg->max_intervals) {
			snprintf(err, errlen, "the plan would have %lld intervals, more than %lld",
			         (long long)c.intervals, (long long)cfg->max_intervals);
			st = WSYNC_E_INVALID_WORKOUT;
		}
	}
	if (st != WSYNC_OK) {
		wahoo_buf_free(&c.out);
		return st;
	}
	*out = c.out.p; /* NUL-terminated by wahoo_buf_add */
	*out_len = c.out.len;
	return WSYNC_OK;
}
