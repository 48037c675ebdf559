/*
 * workout_parse.c -- the plain-text workout syntax -> wsync_workout.
 *
 * The text is read line by line.  A line is blank (ends a repeat block), a
 * step (starts with '-') or a section header (optionally ending in "Nx",
 * which opens a repeat block).  A step line is cut into whitespace-separated
 * tokens, and tokens into "items": a length (duration, distance, press lap),
 * a target, a cadence, the ramp or freeride keyword, or plain text.  Some
 * items span two tokens ("70% HR", "Z2 Pace", "press lap").
 *
 * The steps are collected in a growing array and their strings in a growing
 * pool; at the end both are copied into ONE allocation behind the
 * wsync_workout header, so that the workout is freed with one free() and a
 * plugin never owns anything.
 *
 * Every input byte is checked before use: the text is validated as UTF-8 up
 * front, so columns can be counted in characters and every string handed to
 * plugins (cue, section) is valid UTF-8.
 */
#include "workout_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_INDEX ((size_t)-1)
#define QUOTE_MAX 40 /* bytes of a token quoted in a message */

enum item_type {
	IT_TEXT,     /* plain text: cue or trailing text */
	IT_BAD,      /* looks like a number but is no known form */
	IT_LENGTH,   /* duration, distance or press lap */
	IT_TARGET,   /* %FTP, watts, zones, HR, pace */
	IT_CADENCE,  /* rpm */
	IT_RAMP,     /* the ramp keyword */
	IT_FREERIDE  /* the freeride keyword */
};

enum section_class { SC_OTHER, SC_WARMUP, SC_COOLDOWN };

enum unit { U_NONE, U_PERCENT, U_WATTS, U_RPM };

struct tok {
	const char *s, *e;
};

struct item {
	enum item_type type;
	const char *s, *e;   /* source span, one or two tokens */
	int32_t kind;        /* WSYNC_LENGTH_* or WSYNC_TARGET_* */
	double lo, hi;       /* value or range; a length is in lo */
	int ranged;          /* written as a range (low-high) */
	const char *problem; /* the value is out of bounds: why, else NULL */
};

/* A step under construction. */
struct build {
	wsync_step s;
	int have_length, have_target, have_cadence, ranged;
	const char *ramp_at;     /* the ramp keyword, NULL if none */
	const char *freeride_at; /* the freeride keyword, NULL if none */
	struct tok target;       /* where the target was written */
};

struct pstep {
	wsync_step s;
	size_t cue, section; /* offsets into the pool, NO_INDEX for NULL */
};

struct parser {
	const char *text, *end;
	wsync_parse_error *err;
	struct pstep *steps;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t lineno;             /* current line */
	const char *line, *line_end; /* its text, without "\r\n" */
	size_t section;              /* current section name (pool), or NO_INDEX */
	enum section_class section_class;
	size_t repeat;               /* open repeat (index into steps) or NO_INDEX */
	uint32_t repeat_line, repeat_col;
	uint32_t expanded;
	double seconds, metres;
};

/* ---------------------------------------------------------------- errors */

/* Cut a message that vsnprintf truncated back to a whole UTF-8 character,
 * so that the message stays valid UTF-8 for logs and JSON. */
static void trim_partial_utf8(char *msg, size_t size)
{
	size_t n = strlen(msg), i = n;
	size_t need;
	if (n + 1 < size || n == 0)
		return;
	while (i > 0 && ((unsigned char)msg[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return;
	need = (unsigned char)msg[i - 1] >= 0xF0 ? 4 :
	       (unsigned char)msg[i - 1] >= 0xE0 ? 3 :
	       (unsigned char)msg[i - 1] >= 0xC0 ? 2 : 1;
	if (n - (i - 1) < need)
		msg[i - 1] = '\0';
}

__attribute__((format(printf, 4, 5)))
static int fail_lc(struct parser *p, uint32_t line, uint32_t col,
                   const char *fmt, ...)
{
	wsync_parse_error *e = p->err;
	va_list ap;
	int n;

	e->line = line;
	e->column = col;
	n = snprintf(e->message, sizeof e->message, "line %u, col %u: ",
	             (unsigned)line, (unsigned)col);
	if (n < 0 || (size_t)n >= sizeof e->message)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->message + n, sizeof e->message - (size_t)n, fmt, ap);
	va_end(ap);
	trim_partial_utf8(e->message, sizeof e->message);
	return -1;
}

/* Column of `at` in the line starting at `line`, counting characters. */
static uint32_t column_of(const char *line, const char *at)
{
	uint32_t col = 1;
	for (; line < at; line++)
		if (((unsigned char)*line & 0xC0) != 0x80)
			col++;
	return col;
}

__attribute__((format(printf, 3, 4)))
static int fail_at(struct parser *p, const char *at, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	trim_partial_utf8(msg, sizeof msg);
	return fail_lc(p, p->lineno, column_of(p->line, at), "%s", msg);
}

/* Quote a token for a message, cut to QUOTE_MAX bytes on a character
 * boundary so a pasted paragraph does not swamp the message. */
static const char *quote(char buf[QUOTE_MAX + 4], const char *s, const char *e)
{
	size_t n = (size_t)(e - s);
	const char *more = "";
	if (n > QUOTE_MAX) {
		n = QUOTE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		more = "...";
	}
	memcpy(buf, s, n);
	strcpy(buf + n, more);
	return buf;
}

/* "<what>, found '<item>'" at the item. */
static int fail_found(struct parser *p, const struct item *it, const char *what)
{
	char q[QUOTE_MAX + 4];
	return fail_at(p, it->s, "%s, found '%s'", what, quote(q, it->s, it->e));
}

/* "<what>, but '<item>' is a second one" at the item. */
static int fail_second(struct parser *p, const struct item *it,
                       const char *what)
{
	char q[QUOTE_MAX + 4];
	return fail_at(p, it->s, "%s, but '%s' is a second one", what,
	               quote(q, it->s, it->e));
}

static int fail_oom(struct parser *p)
{
	return fail_lc(p, p->lineno ? p->lineno : 1, 1, "out of memory");
}

const char *wsync_parse_error_text(const wsync_parse_error *err)
{
	const char *m = err->message, *c;
	/* The prefix is ours ("line L, col C: "), so the first ": " ends it. */
	if (strncmp(m, "line ", 5) != 0 || !(c = strstr(m, ": ")))
		return m;
	return c + 2;
}

/* ------------------------------------------------------- UTF-8, spaces */

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 when
 * invalid: overlong forms, surrogates, > U+10FFFF and NUL (which would cut
 * the strings handed to plugins) are refused. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (c >= 0x01 && c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

static int check_utf8(struct parser *p)
{
	const char *s = p->text, *line = s;
	uint32_t lineno = 1;

	while (s < p->end) {
		size_t n = utf8_seq((const unsigned char *)s, (size_t)(p->end - s));
		if (n == 0 && *s == '\0')
			return fail_lc(p, lineno, column_of(line, s),
			               "NUL character in text");
		if (n == 0)
			return fail_lc(p, lineno, column_of(line, s),
			               "invalid UTF-8 (byte 0x%02x)",
			               (unsigned)(unsigned char)*s);
		if (*s == '\n') {
			lineno++;
			line = s + 1;
		}
		s += n;
	}
	return 0;
}

/* Length of the white space character at s (s < e), or 0.  No-break and
 * thin spaces count too: they arrive with text pasted from web pages. */
static size_t space_len(const char *s, const char *e)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t avail = (size_t)(e - s);

	if (*u == ' ' || *u == '\t' || *u == '\r' || *u == '\v' || *u == '\f')
		return 1;
	if (avail >= 2 && u[0] == 0xC2 && u[1] == 0xA0) /* U+00A0 */
		return 2;
	if (avail >= 3 && u[0] == 0xE2 && u[1] == 0x80 &&
	    (u[2] == 0x89 || u[2] == 0xAF)) /* U+2009, U+202F */
		return 3;
	return 0;
}

static const char *skip_space(const char *s, const char *e)
{
	size_t n;
	while (s < e && (n = space_len(s, e)) > 0)
		s += n;
	return s;
}

/* End of the text between s and e without trailing white space. */
static const char *trim_end(const char *s, const char *e)
{
	const char *last = s;
	while (s < e) {
		size_t n = space_len(s, e);
		if (n) {
			s += n;
		} else {
			s++;
			last = s;
		}
	}
	return last;
}

static int next_tok(const char *pos, const char *end, struct tok *t)
{
	pos = skip_space(pos, end);
	if (pos == end)
		return 0;
	t->s = pos;
	while (pos < end && !space_len(pos, end))
		pos++;
	t->e = pos;
	return 1;
}

/* ------------------------------------------------------- small lexing */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive: is [s, e) exactly the keyword kw (lowercase)? */
static int word_is(const char *s, const char *e, const char *kw)
{
	size_t n = strlen(kw), i;
	if ((size_t)(e - s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower(s[i]) != kw[i])
			return 0;
	return 1;
}

static int tok_is(const struct tok *t, const char *kw)
{
	return t && word_is(t->s, t->e, kw);
}

/* Case-insensitive prefix match; advances *pp past it. */
static int eat(const char **pp, const char *e, const char *kw)
{
	size_t n = strlen(kw);
	if ((size_t)(e - *pp) < n || !word_is(*pp, *pp + n, kw))
		return 0;
	*pp += n;
	return 1;
}

/* A decimal number: up to 9 integer digits and 6 decimals, so that every
 * value is exact enough and no product can overflow. */
static int scan_num(const char **pp, const char *e, double *v)
{
	const char *p = *pp;
	double mant = 0, div = 1;
	int digits = 0, decimals = 0;

	while (p < e && is_digit(*p)) {
		if (++digits > 9)
			return 0;
		mant = mant * 10 + (*p++ - '0');
	}
	if (!digits)
		return 0;
	if (p + 1 < e && *p == '.' && is_digit(p[1])) {
		p++;
		while (p < e && is_digit(*p)) {
			if (++decimals > 6)
				return 0;
			mant = mant * 10 + (*p++ - '0');
			div *= 10;
		}
	}
	*v = mant / div;
	*pp = p;
	return 1;
}

/* Whole number of at most `max_digits` digits. */
static int scan_uint(const char **pp, const char *e, int max_digits,
                     unsigned *v)
{
	const char *p = *pp;
	unsigned x = 0;
	int digits = 0;
	while (p < e && is_digit(*p)) {
		if (++digits > max_digits)
			return 0;
		x = x * 10 + (unsigned)(*p++ - '0');
	}
	if (!digits)
		return 0;
	*v = x;
	*pp = p;
	return 1;
}

/* A token that the writer surely meant as a value: it starts with a digit
 * or is a zone ("Z" and a digit).  Such a token is never silently text. */
static int looks_numeric(const struct tok *t)
{
	if (is_digit(*t->s))
		return 1;
	return t->e - t->s >= 2 && lower(t->s[0]) == 'z' && is_digit(t->s[1]);
}

/* --------------------------------------------------------- token forms */

/* Time: 1h, 10m, 30s, 1h2m30s, 1m30 (90 s), 5', 30", 1'30".  'm' is
 * always minutes.  Units come in order h, m, s; a bare number may follow
 * minutes and counts as seconds. */
static int read_time(const struct tok *t, const struct tok *nx,
                     struct item *it)
{
	static const double scale[] = { 0, 3600, 60, 1 };
	const char *p = t->s;
	double total = 0, v;
	int last = 0, rank;

	(void)nx;
	while (p < t->e) {
		if (!scan_num(&p, t->e, &v))
			return 0;
		if (p == t->e) { /* bare seconds after minutes: 1m30 */
			if (last != 2)
				return 0;
			total += v;
			last = 3;
			break;
		}
		switch (lower(*p++)) {
		case 'h': rank = 1; break;
		case 'm': case '\'': rank = 2; break;
		case 's': case '"': rank = 3; break;
		default: return 0;
		}
		if (rank <= last)
			return 0;
		total += v * scale[rank];
		last = rank;
	}
	it->type = IT_LENGTH;
	it->kind = WSYNC_LENGTH_TIME;
	it->lo = it->hi = total;
	if (total <= 0)
		it->problem = "a duration must be more than 0";
	else if (total > WSYNC_WORKOUT_MAX_STEP_SECONDS)
		it->problem = "a step lasts at most 24h";
	return 1;
}

/* Distance: 2km, 0.4km, 500mtr, 1mi, 4.5mi. */
static int read_distance(const struct tok *t, const struct tok *nx,
                         struct item *it)
{
	const char *p = t->s;
	double v, unit;

	(void)nx;
	if (!scan_num(&p, t->e, &v))
		return 0;
	if (word_is(p, t->e, "km"))
		unit = 1000;
	else if (word_is(p, t->e, "mtr"))
		unit = 1;
	else if (word_is(p, t->e, "mi"))
		unit = 1609.344;
	else
		return 0;
	it->type = IT_LENGTH;
	it->kind = WSYNC_LENGTH_DISTANCE;
	it->lo = it->hi = v * unit;
	if (v <= 0)
		it->problem = "a distance must be more than 0";
	return 1;
}

/* Consume a keyword token following a value ("70% HR"). */
static int take_suffix(const struct tok *nx, struct item *it, const char *kw)
{
	if (!tok_is(nx, kw))
		return 0;
	it->e = nx->e;
	return 1;
}

/* M:SS, seconds < 60. */
static int scan_mmss(const char **pp, const char *e, double *v)
{
	const char *p = *pp;
	unsigned m, s;
	if (!scan_uint(&p, e, 3, &m) || p >= e || *p++ != ':')
		return 0;
	if (e - p < 2 || !is_digit(p[0]) || !is_digit(p[1]))
		return 0;
	s = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
	if (s >= 60)
		return 0;
	*v = m * 60.0 + s;
	*pp = p + 2;
	return 1;
}

/* The part after '/' of an absolute pace, as the factor that turns
 * "seconds per that" into seconds per km: km, mi, or N metres (100m). */
static int pace_unit(const char *p, const char *e, double *factor)
{
	unsigned n;
	if (word_is(p, e, "km")) {
		*factor = 1;
		return 1;
	}
	if (word_is(p, e, "mi")) {
		*factor = 1 / 1.609344;
		return 1;
	}
	if (!scan_uint(&p, e, 5, &n) || n == 0)
		return 0;
	if (!word_is(p, e, "m") && !word_is(p, e, "mtr"))
		return 0;
	*factor = 1000.0 / n;
	return 1;
}

/* Absolute pace: 5:00/km, 1:45/100m, 4:50-5:10/km, "Pace" optional. */
static int read_pace(const struct tok *t, const struct tok *nx, struct item *it)
{
	const char *p = t->s;
	double a, b, f;

	if (!scan_mmss(&p, t->e, &a))
		return 0;
	b = a;
	if (p < t->e && *p == '-') {
		p++;
		if (!scan_mmss(&p, t->e, &b))
			return 0;
		it->ranged = 1;
	}
	if (p >= t->e || *p++ != '/' || !pace_unit(p, t->e, &f))
		return 0;
	it->type = IT_TARGET;
	it->kind = WSYNC_TARGET_PACE;
	it->lo = a * f;
	it->hi = b * f;
	if (a <= 0 || b <= 0)
		it->problem = "a pace must be more than 0:00";
	take_suffix(nx, it, "pace");
	return 1;
}

/* Zones: Z2, Z3-Z4, Z3-4, each optionally followed by HR or Pace. */
static int read_zone(const struct tok *t, const struct tok *nx, struct item *it)
{
	const char *p = t->s + 1;
	unsigned a, b, max = 7;

	if (lower(*t->s) != 'z' || !scan_uint(&p, t->e, 3, &a))
		return 0;
	b = a;
	if (p < t->e && *p == '-') {
		p++;
		if (p < t->e && lower(*p) == 'z')
			p++;
		if (!scan_uint(&p, t->e, 3, &b))
			return 0;
		it->ranged = 1;
	}
	if (p != t->e)
		return 0;
	it->type = IT_TARGET;
	it->kind = WSYNC_TARGET_POWER_ZONE;
	it->problem = "a power zone is 1 to 7";
	if (take_suffix(nx, it, "hr")) {
		it->kind = WSYNC_TARGET_HR_ZONE;
		it->problem = "a heart-rate zone is 1 to 5";
		max = 5;
	} else if (take_suffix(nx, it, "pace")) {
		it->kind = WSYNC_TARGET_PACE_ZONE;
		it->problem = "a pace zone is 1 to 7";
	}
	if (a >= 1 && b >= 1 && a <= max && b <= max)
		it->problem = NULL;
	it->lo = a;
	it->hi = b;
	return 1;
}

static enum unit scan_unit(const char **pp, const char *e)
{
	if (*pp < e && **pp == '%') {
		(*pp)++;
		return U_PERCENT;
	}
	if (eat(pp, e, "rpm"))
		return U_RPM;
	if (eat(pp, e, "w"))
		return U_WATTS;
	return U_NONE;
}

/* What a percentage is of: FTP unless HR, LTHR or Pace follows, attached
 * ("70%HR") or as the next token ("70% HR"). */
static int32_t percent_kind(const char *p, const char *e,
                            const struct tok *nx, struct item *it)
{
	static const struct {
		const char *kw;
		int32_t kind;
	} of[] = {
		{ "ftp", WSYNC_TARGET_PERCENT_FTP },
		{ "hr", WSYNC_TARGET_PERCENT_MAX_HR },
		{ "lthr", WSYNC_TARGET_PERCENT_LTHR },
		{ "pace", WSYNC_TARGET_PERCENT_PACE },
	};
	size_t i;

	for (i = 0; i < sizeof of / sizeof of[0]; i++)
		if (p < e ? word_is(p, e, of[i].kw) : take_suffix(nx, it, of[i].kw))
			return of[i].kind;
	return p < e ? -1 : WSYNC_TARGET_PERCENT_FTP;
}

/* Values with a unit: 75%, 95-105%, 50%-75%, 220w, 200-240W, 90rpm,
 * 90-100rpm, and the percentages of HR, LTHR and pace. */
static int read_value(const struct tok *t, const struct tok *nx,
                      struct item *it)
{
	const char *p = t->s;
	double a, b;
	enum unit u, u2;

	if (!scan_num(&p, t->e, &a))
		return 0;
	u = scan_unit(&p, t->e);
	b = a;
	if (p < t->e && *p == '-') {
		p++;
		if (!scan_num(&p, t->e, &b))
			return 0;
		u2 = scan_unit(&p, t->e);
		if (u2 == U_NONE || (u != U_NONE && u != u2))
			return 0;
		u = u2;
		it->ranged = 1;
	}
	if (u == U_NONE || (u != U_PERCENT && p != t->e))
		return 0;
	it->lo = a;
	it->hi = b;
	if (a <= 0 || b <= 0)
		it->problem = "a target must be more than 0";
	if (u == U_RPM) {
		it->type = IT_CADENCE;
		if (it->problem)
			it->problem = "a cadence must be more than 0";
		return 1;
	}
	it->type = IT_TARGET;
	it->kind = u == U_WATTS ? WSYNC_TARGET_WATTS : percent_kind(p, t->e, nx, it);
	return it->kind >= 0;
}

typedef int (*reader_fn)(const struct tok *t, const struct tok *nx,
                         struct item *it);

/* Classify the item starting with token t (nx: the token after it, or
 * NULL).  Never fails: anything unknown is text, or "bad" when it looks
 * like a value.  Each reader gets a fresh item, so a reader that gives up
 * half-way leaves nothing behind. */
static void classify(const struct tok *t, const struct tok *nx, struct item *it)
{
	static const reader_fn readers[] = {
		read_time, read_distance, read_pace, read_zone, read_value,
	};
	size_t i;

	memset(it, 0, sizeof *it);
	it->s = t->s;
	it->e = t->e;
	if (tok_is(t, "ramp")) {
		it->type = IT_RAMP;
		return;
	}
	if (tok_is(t, "freeride")) {
		it->type = IT_FREERIDE;
		return;
	}
	if (tok_is(t, "press") && tok_is(nx, "lap")) {
		it->type = IT_LENGTH;
		it->kind = WSYNC_LENGTH_OPEN;
		it->e = nx->e;
		return;
	}
	for (i = 0; i < sizeof readers / sizeof readers[0]; i++) {
		struct item v = { .s = t->s, .e = t->e };
		if (readers[i](t, nx, &v)) {
			*it = v;
			return;
		}
	}
	it->type = looks_numeric(t) ? IT_BAD : IT_TEXT;
}

/* The next item after pos on [pos, end); 0 at the end of the line. */
static int next_item(const char *pos, const char *end, struct item *it)
{
	struct tok t, nx;
	if (!next_tok(pos, end, &t))
		return 0;
	classify(&t, next_tok(t.e, end, &nx) ? &nx : NULL, it);
	return 1;
}

/* ------------------------------------------------------------ storage */

static int pool_add(struct parser *p, const char *s, const char *e,
                    size_t *off)
{
	size_t n = (size_t)(e - s);
	if (p->pool_len + n + 1 > p->pool_cap) {
		size_t cap = p->pool_cap ? p->pool_cap : 256;
		char *np;
		while (cap < p->pool_len + n + 1)
			cap *= 2;
		np = realloc(p->pool, cap);
		if (!np)
			return fail_oom(p);
		p->pool = np;
		p->pool_cap = cap;
	}
	memcpy(p->pool + p->pool_len, s, n);
	p->pool[p->pool_len + n] = '\0';
	*off = p->pool_len;
	p->pool_len += n + 1;
	return 0;
}

/* Append a step entry; its index is p->n - 1 afterwards. */
static int push_step(struct parser *p, const wsync_step *s, size_t cue)
{
	struct pstep *ps;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct pstep *ns = realloc(p->steps, cap * sizeof *ns);
		if (!ns)
			return fail_oom(p);
		p->steps = ns;
		p->cap = cap;
	}
	ps = &p->steps[p->n++];
	ps->s = *s;
	ps->s.line = p->lineno;
	ps->cue = cue;
	ps->section = p->section;
	return 0;
}

/* ------------------------------------------------------------ headers */

/* Warm-up and cool-down sections are known by name; the comparison ignores
 * case, spaces and punctuation ("Warm-up:", "WARM UP", "WU"). */
static enum section_class classify_section(const char *s, const char *e)
{
	char norm[16];
	size_t n = 0;
	for (; s < e; s++) {
		char c = lower(*s);
		if ((c < 'a' || c > 'z') && !is_digit(c))
			continue;
		if (n + 1 >= sizeof norm)
			return SC_OTHER;
		norm[n++] = c;
	}
	norm[n] = '\0';
	if (!strcmp(norm, "warmup") || !strcmp(norm, "wu"))
		return SC_WARMUP;
	if (!strcmp(norm, "cooldown") || !strcmp(norm, "cd"))
		return SC_COOLDOWN;
	return SC_OTHER;
}

/* A repeat block ends at a blank line, a header or the end of the text; a
 * block without steps is a mistake the writer must hear about. */
static int close_repeat(struct parser *p)
{
	size_t r = p->repeat;
	if (r == NO_INDEX)
		return 0;
	p->repeat = NO_INDEX;
	if (p->steps[r].s.child_count == 0)
		return fail_lc(p, p->repeat_line, p->repeat_col,
		               "repeat %ux has no steps: its steps must follow it "
		               "directly, before any blank line",
		               (unsigned)p->steps[r].s.repeat_count);
	return 0;
}

static int is_repeat_tok(const struct tok *t)
{
	const char *p = t->s;
	while (p < t->e && is_digit(*p))
		p++;
	return p > t->s && p + 1 == t->e && lower(*p) == 'x';
}

static int open_repeat(struct parser *p, const struct tok *t)
{
	const char *q = t->s;
	unsigned count;
	wsync_step s;
	char buf[QUOTE_MAX + 4];

	/* more than 3 digits is out of range anyway */
	if (!scan_uint(&q, t->e - 1, 3, &count) || count < 1 ||
	    count > WSYNC_WORKOUT_MAX_REPEAT)
		return fail_at(p, t->s, "a repeat count is 1 to %u, found '%s'",
		               WSYNC_WORKOUT_MAX_REPEAT, quote(buf, t->s, t->e));
	memset(&s, 0, sizeof s);
	s.kind = WSYNC_STEP_REPEAT;
	s.repeat_count = count;
	s.intensity = p->section_class == SC_WARMUP ? WSYNC_INTENSITY_WARMUP :
	              p->section_class == SC_COOLDOWN ? WSYNC_INTENSITY_COOLDOWN :
	              WSYNC_INTENSITY_ACTIVE;
	if (push_step(p, &s, NO_INDEX) < 0)
		return -1;
	p->repeat = p->n - 1;
	p->repeat_line = p->lineno;
	p->repeat_col = column_of(p->line, t->s);
	return 0;
}

static int set_section(struct parser *p, const char *s, const char *e)
{
	if (pool_add(p, s, e, &p->section) < 0)
		return -1;
	p->section_class = classify_section(s, e);
	return 0;
}

/* "Main Set", "Main Set 5x" or "5x" (which keeps the current section). */
static int parse_header(struct parser *p, const char *s)
{
	const char *e = trim_end(s, p->line_end), *pos = s;
	struct tok t, last = { s, s };

	if (close_repeat(p) < 0)
		return -1;
	while (next_tok(pos, e, &t)) {
		last = t;
		pos = t.e;
	}
	if (!is_repeat_tok(&last))
		return set_section(p, s, e);
	if (last.s > s && set_section(p, s, trim_end(s, last.s)) < 0)
		return -1;
	return open_repeat(p, &last);
}

/* -------------------------------------------------------------- steps */

static int apply_length(struct parser *p, struct build *b,
                        const struct item *it)
{
	if (b->have_length)
		return fail_second(p, it, "a step has exactly one duration or "
		                          "distance");
	if (it->problem)
		return fail_found(p, it, it->problem);
	b->have_length = 1;
	b->s.length_kind = it->kind;
	b->s.length = it->kind == WSYNC_LENGTH_OPEN ? 0 : it->lo;
	return 0;
}

static int apply_target(struct parser *p, struct build *b,
                        const struct item *it)
{
	if (b->have_target)
		return fail_second(p, it, "a step has one target");
	if (b->freeride_at)
		return fail_found(p, it, "a freeride step has no target");
	if (it->problem)
		return fail_found(p, it, it->problem);
	b->have_target = 1;
	b->ranged = it->ranged;
	b->target.s = it->s;
	b->target.e = it->e;
	b->s.target_kind = it->kind;
	b->s.target_low = it->lo;
	b->s.target_high = it->hi;
	return 0;
}

static int apply_cadence(struct parser *p, struct build *b,
                         const struct item *it)
{
	if (b->have_cadence)
		return fail_second(p, it, "a step has one cadence");
	if (it->problem)
		return fail_found(p, it, it->problem);
	b->have_cadence = 1;
	b->s.cadence_low = it->lo < it->hi ? it->lo : it->hi;
	b->s.cadence_high = it->lo < it->hi ? it->hi : it->lo;
	return 0;
}

static int apply(struct parser *p, struct build *b, const struct item *it)
{
	switch (it->type) {
	case IT_TEXT:
		return 0; /* trailing text is a note for the reader only */
	case IT_BAD:
		return fail_found(p, it, "expected a target such as 75%, 220w, "
		                         "Z2 or 90rpm");
	case IT_LENGTH:
		return apply_length(p, b, it);
	case IT_TARGET:
		return apply_target(p, b, it);
	case IT_CADENCE:
		return apply_cadence(p, b, it);
	case IT_RAMP:
		b->ramp_at = it->s;
		return 0;
	case IT_FREERIDE:
		if (b->have_target)
			return fail_at(p, it->s, "a freeride step has no target, "
			               "but this one has one");
		b->freeride_at = it->s;
		return 0;
	}
	return 0;
}

/* The ramp keyword needs a range; without it a range is sorted. */
static int finish_target(struct parser *p, struct build *b)
{
	char q[QUOTE_MAX + 4];
	double lo = b->s.target_low, hi = b->s.target_high;

	if (b->ramp_at && !b->have_target)
		return fail_at(p, b->ramp_at, "ramp needs a target range such as "
		               "50-75%%");
	if (b->ramp_at && !b->ranged)
		return fail_at(p, b->target.s, "ramp needs a target range such as "
		               "50-75%%, found '%s'",
		               quote(q, b->target.s, b->target.e));
	b->s.ramp = b->ramp_at != NULL;
	b->s.freeride = b->freeride_at != NULL;
	if (!b->s.ramp && lo > hi) {
		b->s.target_low = hi;
		b->s.target_high = lo;
	}
	return 0;
}

static int32_t step_intensity(const struct parser *p, const wsync_step *s)
{
	double top = s->target_low > s->target_high ? s->target_low :
	             s->target_high;
	if (p->section_class == SC_WARMUP)
		return WSYNC_INTENSITY_WARMUP;
	if (p->section_class == SC_COOLDOWN)
		return WSYNC_INTENSITY_COOLDOWN;
	if ((s->target_kind == WSYNC_TARGET_PERCENT_FTP && top <= 55) ||
	    (s->target_kind == WSYNC_TARGET_POWER_ZONE && top <= 1))
		return WSYNC_INTENSITY_RECOVERY;
	return WSYNC_INTENSITY_ACTIVE;
}

/* Scan the tokens up to the first length.  Everything before it is cue
 * text, unless every token there is a known form ("- Z2 10m", "- ramp 10m
 * 50-75%"): then those are read as tokens, not as a cue. */
struct scan {
	const char *len_at;   /* the first length item, NULL if none */
	const char *cue_end;  /* end of the last item before it */
	const char *bad_at, *bad_end; /* first value-like unknown token */
	int all_known;
};

static void scan_to_length(const char *pos, const char *end, struct scan *sc)
{
	struct item it;
	memset(sc, 0, sizeof *sc);
	sc->all_known = 1;
	while (next_item(pos, end, &it)) {
		if (it.type == IT_LENGTH) {
			sc->len_at = it.s;
			return;
		}
		if (it.type == IT_TEXT || it.type == IT_BAD)
			sc->all_known = 0;
		if (it.type == IT_BAD && !sc->bad_at) {
			sc->bad_at = it.s;
			sc->bad_end = it.e;
		}
		sc->cue_end = it.e;
		pos = it.e;
	}
}

static int add_step(struct parser *p, struct build *b, const char *at,
                    size_t cue)
{
	uint32_t mult = 1;
	if (p->repeat != NO_INDEX)
		mult = p->steps[p->repeat].s.repeat_count;
	if (p->expanded + mult > WSYNC_WORKOUT_MAX_STEPS)
		return fail_at(p, at, "the workout has more than %u steps after "
		               "expanding repeats", WSYNC_WORKOUT_MAX_STEPS);
	b->s.kind = WSYNC_STEP_STEP;
	b->s.intensity = step_intensity(p, &b->s);
	if (push_step(p, &b->s, cue) < 0)
		return -1;
	if (p->repeat != NO_INDEX)
		p->steps[p->repeat].s.child_count++;
	p->expanded += mult;
	if (b->s.length_kind == WSYNC_LENGTH_TIME)
		p->seconds += b->s.length * mult;
	else if (b->s.length_kind == WSYNC_LENGTH_DISTANCE)
		p->metres += b->s.length * mult;
	return 0;
}

/* "- [cue] LENGTH [target] [cadence] [text]", tokens in any order after
 * the cue. */
static int parse_step(struct parser *p, const char *dash)
{
	const char *end = trim_end(dash, p->line_end), *pos;
	struct scan sc;
	struct build b;
	struct item it;
	size_t cue = NO_INDEX;
	struct tok first;
	char q[QUOTE_MAX + 4];

	scan_to_length(dash + 1, end, &sc);
	if (!sc.len_at && sc.bad_at)
		return fail_at(p, sc.bad_at, "expected a duration such as 10m or "
		               "30s, found '%s'", quote(q, sc.bad_at, sc.bad_end));
	if (!sc.len_at)
		return fail_at(p, end, "expected a duration such as 10m or 30s, "
		               "found end of line");
	pos = sc.all_known ? dash + 1 : sc.len_at;
	if (!sc.all_known && next_tok(dash + 1, end, &first) &&
	    pool_add(p, first.s, sc.cue_end, &cue) < 0)
		return -1;
	memset(&b, 0, sizeof b);
	while (next_item(pos, end, &it)) {
		if (apply(p, &b, &it) < 0)
			return -1;
		pos = it.e;
	}
	if (finish_target(p, &b) < 0)
		return -1;
	return add_step(p, &b, dash, cue);
}

/* --------------------------------------------------------------- lines */

static int parse_line(struct parser *p)
{
	const char *s = skip_space(p->line, p->line_end);
	if (s == p->line_end)
		return close_repeat(p);
	if (*s == '-')
		return parse_step(p, s);
	return parse_header(p, s);
}

static int parse_lines(struct parser *p)
{
	const char *s = p->text;
	for (;;) {
		const char *nl = memchr(s, '\n', (size_t)(p->end - s));
		p->line = s;
		p->line_end = nl ? nl : p->end;
		if (p->line_end > s && p->line_end[-1] == '\r')
			p->line_end--;
		p->lineno++;
		if (parse_line(p) < 0)
			return -1;
		if (!nl)
			break;
		s = nl + 1;
	}
	if (close_repeat(p) < 0)
		return -1;
	if (p->n == 0)
		return fail_lc(p, 1, 1, "the workout has no steps (a step is a "
		               "line starting with '-', such as '- 10m 75%%')");
	return 0;
}

/* The 64 KiB limit is checked before anything else; the position reported
 * is that of the first byte past the limit. */
static int check_size(struct parser *p, size_t len)
{
	const char *s = p->text, *line = s, *limit = s + WSYNC_WORKOUT_MAX_TEXT;
	uint32_t lineno = 1;
	if (len <= WSYNC_WORKOUT_MAX_TEXT)
		return 0;
	for (; s < limit; s++)
		if (*s == '\n') {
			lineno++;
			line = s + 1;
		}
	return fail_lc(p, lineno, column_of(line, limit),
	               "the text is longer than 64 KiB (%u bytes)",
	               WSYNC_WORKOUT_MAX_TEXT);
}

/* Copy steps and strings behind the header in one allocation. */
static wsync_workout *build_workout(const struct parser *p)
{
	size_t head = (sizeof(wsync_workout) + _Alignof(wsync_step) - 1) &
	              ~(_Alignof(wsync_step) - 1);
	size_t steps_size = p->n * sizeof(wsync_step), i;
	char *mem = malloc(head + steps_size + p->pool_len + 1);
	wsync_workout *w = (wsync_workout *)(void *)mem;
	wsync_step *st;
	char *pool;

	if (!mem)
		return NULL;
	st = (wsync_step *)(void *)(mem + head);
	pool = mem + head + steps_size;
	if (p->pool_len)
		memcpy(pool, p->pool, p->pool_len);
	for (i = 0; i < p->n; i++) {
		st[i] = p->steps[i].s;
		st[i].cue = p->steps[i].cue == NO_INDEX ? NULL : pool + p->steps[i].cue;
		st[i].section = p->steps[i].section == NO_INDEX ? NULL :
		                pool + p->steps[i].section;
	}
	memset(w, 0, sizeof *w);
	w->struct_size = sizeof(wsync_workout);
	w->step_size = sizeof(wsync_step);
	w->steps = st;
	w->n_steps = (uint32_t)p->n;
	w->expanded_steps = p->expanded;
	w->total_seconds = p->seconds;
	w->total_metres = p->metres;
	return w;
}

static int parse(struct parser *p, size_t len, wsync_workout **out)
{
	if (check_size(p, len) < 0)
		return -1;
	/* A byte-order mark is invisible in editors: skip it, so that line 1
	 * columns match what the writer sees. */
	if (len >= 3 && !memcmp(p->text, "\xEF\xBB\xBF", 3))
		p->text += 3;
	if (check_utf8(p) < 0 || parse_lines(p) < 0)
		return -1;
	*out = build_workout(p);
	return *out ? 0 : fail_oom(p);
}

int wsync_workout_parse(const char *text, size_t len, wsync_workout **out,
                        wsync_parse_error *err)
{
	wsync_parse_error scratch;
	struct parser p;
	int rc;

	if (!err)
		err = &scratch;
	memset(err, 0, sizeof *err);
	memset(&p, 0, sizeof p);
	p.err = err;
	if (!out)
		return fail_lc(&p, 1, 1, "invalid arguments: no place for the "
		               "workout");
	*out = NULL;
	p.text = text ? text : "";
	p.end = p.text + (text ? len : 0);
	p.section = NO_INDEX;
	p.repeat = NO_INDEX;
	rc = parse(&p, text ? len : 0, out);
	free(p.steps);
	free(p.pool);
	return rc;
}

void wsync_workout_free(wsync_workout *w)
{
	free(w);
}
