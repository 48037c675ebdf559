/*
 * test_classify_ratelimit.c -- the classification of core/host/classify.c
 * and the in-process rate limiter (core/host/ratelimit.c) with an injected
 * clock.  No database.
 */
#include "host/classify.h"
#include "host/ratelimit.h"
#include "testlib.h"

#include "wsync/plugin.h"

#include <stdlib.h>

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
	test_per_user_minute();
	test_app_windows();
	test_random_long_run();
	return t_done();
}
