/*
 * test_classify_ratelimit.c -- the classification of answers and statuses
 * (the table "HTTP CLASSIFICATION" in include/wsync/plugin.h, read from the
 * header itself and checked row by row against the code) and the rate
 * limiter with an injected clock.  No database.
 */
#include "host/classify.h"
#include "host/http.h"
#include "host/ratelimit.h"
#include "testlib.h"

#include "wsync/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int backoff[] = {120, 600, 3600};
#define NB 3
#define MAXR 3

static void test_no_retry_classes(void)
{
	static const struct {
		int32_t status;
		const char *type;
	} rows[] = {
		{WSYNC_E_RECORD_GONE, "record_not_found"},
		{WSYNC_E_AUTH, "auth_error"},
		{WSYNC_E_INVALID, "invalid_request"},
		{WSYNC_E_INVALID_WORKOUT, "invalid_workout"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		wsync_outcome o = wsync_classify(rows[i].status, 0, MAXR, backoff, NB, 0, 0.0);
		T_EQ_INT(o.processed, 1);
		T_EQ_STR(o.error_type, rows[i].type);
		T_EQ_INT(o.retry_count, 0);
		T_EQ_INT(o.uses_attempt, 1);
		/* Also with retries already used: still processed, count unchanged. */
		o = wsync_classify(rows[i].status, 2, MAXR, backoff, NB, 0, 0.0);
		T_EQ_INT(o.processed, 1);
		T_EQ_INT(o.retry_count, 2);
	}
}

static void test_success(void)
{
	wsync_outcome o = wsync_classify(WSYNC_OK, 1, MAXR, backoff, NB, 0, 0.0);
	T_EQ_INT(o.processed, 1);
	T_CHECK(o.error_type == NULL);
	o = wsync_classify(WSYNC_NOT_APPLICABLE, 0, MAXR, backoff, NB, 0, 0.0);
	T_EQ_INT(o.processed, 1);
	T_CHECK(o.error_type == NULL);
}

static void test_rate_limit(void)
{
	wsync_outcome o = wsync_classify(WSYNC_E_RATE_LIMIT, 0, MAXR, backoff, NB, 0, 0.0);
	T_EQ_INT(o.processed, 0);
	T_EQ_STR(o.error_type, "rate_limit");
	T_EQ_INT(o.delay_s, 60);
	T_EQ_INT(o.uses_attempt, 0);
	T_EQ_INT(o.retry_count, 0);

	o = wsync_classify(WSYNC_E_RATE_LIMIT, 2, MAXR, backoff, NB, 120, 0.7);
	T_EQ_INT(o.processed, 0);
	T_EQ_INT(o.delay_s, 120);
	T_EQ_INT(o.uses_attempt, 0);
	T_EQ_INT(o.retry_count, 2);

	/* Even with every retry used up, a rate limit only defers. */
	o = wsync_classify(WSYNC_E_RATE_LIMIT, MAXR, MAXR, backoff, NB, 5, 0.0);
	T_EQ_INT(o.processed, 0);
	T_EQ_INT(o.delay_s, 5);
	T_EQ_INT(o.retry_count, MAXR);
}

static void test_backoff(int32_t status, const char *type)
{
	int rc = 0;
	for (int step = 0; step < NB; step++) {
		wsync_outcome o = wsync_classify(status, rc, MAXR, backoff, NB, 0, 0.0);
		T_EQ_INT(o.processed, 0);
		T_EQ_STR(o.error_type, type);
		T_EQ_INT(o.delay_s, backoff[step]);
		T_EQ_INT(o.retry_count, rc + 1);
		T_EQ_INT(o.uses_attempt, 1);
		rc = o.retry_count;
	}
	wsync_outcome o = wsync_classify(status, rc, MAXR, backoff, NB, 0, 0.0);
	T_EQ_INT(o.processed, 1);
	T_EQ_STR(o.error_type, type);
	T_EQ_INT(o.retry_count, 3);

	/* Jitter stays within +-10 %. */
	for (int j = -1; j <= 1; j++) {
		wsync_outcome p = wsync_classify(status, 0, MAXR, backoff, NB, 0, (double)j);
		T_CHECK(p.delay_s >= 108 && p.delay_s <= 132);
	}
}

static void test_error_type_names(void)
{
	T_CHECK(wsync_error_type(WSYNC_OK) == NULL);
	T_EQ_STR(wsync_error_type(WSYNC_E_PROVIDER), "provider_error");
	T_EQ_STR(wsync_error_type(WSYNC_E_UNEXPECTED), "unexpected_error");
	T_EQ_STR(wsync_error_type(WSYNC_E_RATE_LIMIT), "rate_limit");
}

/* ---- plugin.h's HTTP CLASSIFICATION table against the code ---- */

#define MAX_ROWS 32

typedef struct table_row {
	char answer[64], status[32], error_type[32], retried[16], wait[96];
	int used;                  /* some probe matched it */
} table_row;

/* Trim blanks around s in place. */
static char *trim(char *s)
{
	char *e;
	while (*s == ' ')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int split_row(char *line, table_row *r)
{
	char *cols[5], *p = line;
	for (int i = 0; i < 5; i++) {
		cols[i] = p;
		p = i < 4 ? strchr(p, '|') : NULL;
		if (i < 4 && !p)
			return -1;
		if (p)
			*p++ = '\0';
	}
	snprintf(r->answer, sizeof r->answer, "%s", trim(cols[0]));
	snprintf(r->status, sizeof r->status, "%s", trim(cols[1]));
	snprintf(r->error_type, sizeof r->error_type, "%s", trim(cols[2]));
	snprintf(r->retried, sizeof r->retried, "%s", trim(cols[3]));
	snprintf(r->wait, sizeof r->wait, "%s", trim(cols[4]));
	return 0;
}

/* The rows of the table as the header states them. */
static int read_table(table_row *rows)
{
	char path[4096], *text, *line, *save = NULL;
	const char *root = getenv("WSYNC_SOURCE_ROOT");
	int n = 0, in_table = 0;

	T_CHECK(root != NULL);   /* set by meson's test_env */
	snprintf(path, sizeof path, "%s/include/wsync/plugin.h", root ? root : ".");
	text = t_read_file(path);
	T_CHECK(text != NULL);
	if (!text)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "HTTP CLASSIFICATION -- the normative table"))
			in_table = 1;
		if (!in_table || strncmp(line, " *   ", 5) != 0 || !strchr(line, '|')) {
			if (in_table && n > 0)
				break;   /* the first line after the rows ends it */
			continue;
		}
		if (n < MAX_ROWS && split_row(line + 5, &rows[n]) == 0 &&
		    strcmp(rows[n].answer, "answer") != 0)
			n++;
	}
	free(text);
	return n;
}

/* Does the answer cell ("404, 410", "2xx", "other 4xx", "transport error",
 * "refused", "other") cover this probe? */
static int answer_matches(const char *cell, long status, int transport)
{
	char buf[64], *tok, *save = NULL;

	if (status == 0)
		return strcmp(cell, transport ? "transport error" : "refused") == 0;
	if (strcmp(cell, "other") == 0)
		return 1;
	snprintf(buf, sizeof buf, "%s", cell);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *t = trim(tok);
		if (!strncmp(t, "other ", 6))
			t += 6;
		if (strlen(t) == 3 && t[1] == 'x' && t[2] == 'x' && status / 100 == t[0] - '0')
			return 1;
		if (strtol(t, NULL, 10) == status)
			return 1;
	}
	return 0;
}

static int32_t status_named(const char *name)
{
	static const struct { const char *name; int32_t st; } names[] = {
		{"WSYNC_OK", WSYNC_OK}, {"WSYNC_E_NOT_FOUND", WSYNC_E_NOT_FOUND},
		{"WSYNC_E_RATE_LIMIT", WSYNC_E_RATE_LIMIT}, {"WSYNC_E_AUTH", WSYNC_E_AUTH},
		{"WSYNC_E_PROVIDER", WSYNC_E_PROVIDER}, {"WSYNC_E_INVALID", WSYNC_E_INVALID},
		{"WSYNC_E_UNEXPECTED", WSYNC_E_UNEXPECTED},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(names[i].name, name))
			return names[i].st;
	return -1;
}

/* One probe through wsync_http_classify and wsync_classify, checked
 * against the row the table gives it. */
static void check_probe(table_row *rows, int n, long status, int transport)
{
	static const wsync_http_request req = {.struct_size = sizeof req, .method = "PUT",
	                                       .path = "/v1/plans/7"};
	wsync_http_result res;
	table_row *r = NULL;
	char msg[512];
	int64_t wait_hdr, wait_none;
	int32_t st, expect;

	for (int i = 0; i < n && !r; i++)
		if (answer_matches(rows[i].answer, status, transport))
			r = &rows[i];
	if (!r) {
		fprintf(stderr, "no row of plugin.h's table covers HTTP %ld (transport %d)\n",
		        status, transport);
		T_CHECK(0);
		return;
	}
	r->used = 1;
	expect = status_named(r->status);
	T_CHECK(expect >= 0);

	memset(&res, 0, sizeof res);
	res.status = status;
	res.transport_error = transport;
	res.body = (char *)"{\"error\":\"x\"}";
	res.body_len = status ? strlen(res.body) : 0;
	if (status == 0)
		snprintf(res.error, sizeof res.error, "%s",
		         transport ? "curl error 28 (Timeout)" : "request not sent: invalid header #0");
	st = wsync_http_classify(&req, &res, msg, sizeof msg, &wait_none);
	res.retry_after_s = 77;
	T_EQ_INT(wsync_http_classify(&req, &res, msg, sizeof msg, &wait_hdr), st);
	if (st != expect)
		fprintf(stderr, "HTTP %ld (transport %d): code says %d, plugin.h row \"%s\" says %s\n",
		        status, transport, st, r->answer, r->status);
	T_EQ_INT(st, expect);

	/* wait column: Retry-After honoured?  a default of 60 s? */
	T_EQ_INT(wait_hdr, strstr(r->wait, "Retry-After") ? 77 : wait_none);
	T_EQ_INT(wait_none, strstr(r->wait, "60 s") ? 60 : 0);

	/* error_type and retried columns, through the queue's classification */
	{
		wsync_outcome o = wsync_classify(st, 0, MAXR, backoff, NB, 0, 0.0);
		const char *et = wsync_error_type(st);
		T_EQ_STR(et ? et : "-", r->error_type);
		if (!strcmp(r->retried, "no") || !strcmp(r->retried, "-")) {
			T_EQ_INT(o.processed, 1);
			T_EQ_INT(o.retry_count, 0);
		} else if (!strcmp(r->retried, "backoff")) {
			T_EQ_INT(o.processed, 0);
			T_EQ_INT(o.retry_count, 1);
			T_EQ_INT(o.delay_s, backoff[0]);
			T_EQ_INT(o.uses_attempt, 1);
			o = wsync_classify(st, 0, MAXR, backoff, NB, 4000, 0.0);
			T_EQ_INT(o.delay_s, 4000);   /* "if longer" */
		} else if (!strcmp(r->retried, "free")) {
			T_EQ_INT(o.processed, 0);
			T_EQ_INT(o.retry_count, 0);
			T_EQ_INT(o.uses_attempt, 0);
			T_EQ_INT(o.delay_s, 60);
		} else {
			fprintf(stderr, "unknown retried value \"%s\" in plugin.h\n", r->retried);
			T_CHECK(0);
		}
		T_EQ_INT(wsync_error_type(st) == NULL, !strcmp(r->error_type, "-"));
	}
}

static void test_plugin_h_table(void)
{
	table_row rows[MAX_ROWS];
	int n;

	memset(rows, 0, sizeof rows);
	n = read_table(rows);
	T_CHECK(n >= 10);   /* the table is where the test looks for it */
	for (long status = 100; status <= 599; status++)
		check_probe(rows, n, status, 0);
	check_probe(rows, n, 600, 0);
	check_probe(rows, n, 0, 1);
	check_probe(rows, n, 0, 0);
	for (int i = 0; i < n; i++) {
		if (!rows[i].used)
			fprintf(stderr, "plugin.h row \"%s\" covers no answer\n", rows[i].answer);
		T_CHECK(rows[i].used);
	}
}

/* ---- rate limiter ---- */

static void test_per_user_minute(void)
{
	wsync_ratelimiter *rl = wsync_ratelimiter_new();
	int64_t t0 = 1000000;
	int allowed = 0;
	for (int i = 0; i < 30; i++) /* 30 calls spread over 29 s */
		if (wsync_ratelimit_try(rl, "p", "userA", 30, NULL, 0, t0 + i * 1000) == 0)
			allowed++;
	T_EQ_INT(allowed, 30);
	/* 31st at t0+30 s: waits until the first call (t0) leaves the window. */
	int64_t w = wsync_ratelimit_try(rl, "p", "userA", 30, NULL, 0, t0 + 30000);
	T_EQ_INT(w, 30000);
	T_CHECK(wsync_ratelimit_try(rl, "p", "userA", 30, NULL, 0, t0 + 59999) > 0);
	T_EQ_INT(wsync_ratelimit_try(rl, "p", "userA", 30, NULL, 0, t0 + 60000), 0);
	/* The next one waits for the second call (t0 + 1 s) to leave. */
	T_EQ_INT(wsync_ratelimit_try(rl, "p", "userA", 30, NULL, 0, t0 + 60000), 1000);

	/* User B and another provider are not blocked by user A. */
	T_EQ_INT(wsync_ratelimit_try(rl, "p", "userB", 30, NULL, 0, t0 + 60000), 0);
	T_EQ_INT(wsync_ratelimit_try(rl, "q", "userA", 30, NULL, 0, t0 + 60000), 0);
	wsync_ratelimiter_free(rl);
}

static void test_app_windows(void)
{
	wsync_ratelimiter *rl = wsync_ratelimiter_new();
	wsync_rate_window app[2] = {{200, 300}, {1000, 3600}};
	int64_t t0 = 5000000;
	char user[32];
	int allowed = 0;
	/* 250 different users, one call each within 10 s: only 200 pass. */
	for (int i = 0; i < 250; i++) {
		snprintf(user, sizeof user, "u%d", i);
		if (wsync_ratelimit_try(rl, "p", user, 30, app, 2, t0 + i * 40) == 0)
			allowed++;
	}
	T_EQ_INT(allowed, 200);
	/* The 201st waits until the first call leaves the 5-minute window. */
	int64_t w = wsync_ratelimit_try(rl, "p", "fresh", 30, app, 2, t0 + 10000);
	T_EQ_INT(w, 300000 - 10000);
	T_EQ_INT(wsync_ratelimit_try(rl, "p", "fresh", 30, app, 2, t0 + 300000), 0);
	/* A refused call takes nothing: the per-user window of "fresh" holds 1. */
	wsync_ratelimiter_free(rl);
}

/* Random arrivals over a simulated long run: no 60 s window ever holds more
 * than the limit, and the limiter does not starve a user (calls keep going). */
static void test_random_long_run(void)
{
	enum { LIMIT = 30, USERS = 3, MAXCALLS = 20000 };
	wsync_ratelimiter *rl = wsync_ratelimiter_new();
	static int64_t taken[USERS][MAXCALLS];
	int n[USERS] = {0};
	int64_t now = 0;
	int violations = 0, refused_wrong = 0;
	srand(12345);
	for (int step = 0; step < 100000; step++) {
		int u = rand() % USERS;
		char user[8];
		snprintf(user, sizeof user, "u%d", u);
		now += rand() % 400; /* ~200 ms between arrivals, bursts included */
		int64_t w = wsync_ratelimit_try(rl, "p", user, LIMIT, NULL, 0, now);
		if (w == 0) {
			if (n[u] < MAXCALLS)
				taken[u][n[u]++] = now;
		} else {
			/* A refusal must be justified: LIMIT calls in the last 60 s,
			 * and the wait ends when the oldest of them leaves. */
			if (n[u] < LIMIT || taken[u][n[u] - LIMIT] + 60000 <= now ||
			    taken[u][n[u] - LIMIT] + 60000 - now != w)
				refused_wrong++;
		}
		if (n[u] >= MAXCALLS)
			break;
	}
	for (int u = 0; u < USERS; u++)
		for (int i = LIMIT; i < n[u]; i++)
			if (taken[u][i] - taken[u][i - LIMIT] < 60000)
				violations++;
	T_EQ_INT(violations, 0);
	T_EQ_INT(refused_wrong, 0);
	for (int u = 0; u < USERS; u++) /* ~ (now / 60 s) * 30 calls each */
		T_CHECK(n[u] >= (int)(now / 60000) * LIMIT * 9 / 10);
	wsync_ratelimiter_free(rl);
}

int main(void)
{
	test_success();
	test_no_retry_classes();
	test_rate_limit();
	test_backoff(WSYNC_E_PROVIDER, "provider_error");
	test_backoff(WSYNC_E_UNEXPECTED, "unexpected_error");
	test_error_type_names();
	test_plugin_h_table();
	test_per_user_minute();
	test_app_windows();
	test_random_long_run();
	return t_done();
}
