/*
 * test_ratelimit_db.c -- the cluster-wide limiter, wsync_rate_take()
 * (migrations/0003_rate_limits.sql, 0009_user_windows.sql), with an
 * injected clock:
 *   - the per-user window, call by call (the same cases as the in-process
 *     limiter's test), users and providers independent;
 *   - app-wide windows;
 *   - a long random run answered exactly like the in-process limiter
 *     (core/host/ratelimit.c), and never over any limit;
 *   - several connections (threads) taking at once: together they never
 *     exceed a limit, and nobody deadlocks;
 *   - per-user windows beyond a minute (5/1m, 40/1h, 200/1d): a random
 *     run over days answered exactly like the in-process limiter; grants
 *     and takes together never exceed a daily window;
 *   - refused calls record nothing, old rows are pruned, bad arguments.
 *
 *   tests/pg_harness.sh test_ratelimit_db
 */
#include "host/ratelimit.h"
#include "testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static PGconn *db;
static const char *conninfo;

/* Milliseconds since the epoch -> the function's `now`. */
static const char TAKE_SQL[] =
	"SELECT wsync_rate_take($1, $2::uuid, $3::int, $4::int[], $5::int[],"
	" timestamptz 'epoch' + $6::bigint * interval '1 millisecond')";

/* A fixed uuid per small number, so tests read like the in-process ones. */
static void user_uuid(char *out, size_t len, int n)
{
	snprintf(out, len, "00000000-0000-4000-8000-%012d", n);
}

/* Take on `c`; -2 on a database error (reported). */
static long long take_on(PGconn *c, const char *provider, int user, int per_user,
                         const char *limits, const char *seconds, long long now_ms)
{
	char u[40], pu[16], now[24];
	const char *p[6] = {provider, u, pu, limits, seconds, now};
	PGresult *r;
	long long v = -2;
	user_uuid(u, sizeof u, user);
	snprintf(pu, sizeof pu, "%d", per_user);
	snprintf(now, sizeof now, "%lld", now_ms);
	r = PQexecParams(c, TAKE_SQL, 6, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		t_fail(__FILE__, __LINE__, "wsync_rate_take failed: %s", PQerrorMessage(c));
	PQclear(r);
	return v;
}

static long long take(const char *provider, int user, int per_user, const char *limits,
                      const char *seconds, long long now_ms)
{
	return take_on(db, provider, user, per_user, limits, seconds, now_ms);
}

static long long rows(const char *provider)
{
	const char *p[1] = {provider};
	return t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = $1", 1, p);
}

/* The in-process test's cases, answered by the database. */
static void test_per_user_minute(void)
{
	const long long t0 = 1000000;
	int allowed = 0;
	for (int i = 0; i < 30; i++) /* 30 calls spread over 29 s */
		if (take("pu", 1, 30, "{}", "{}", t0 + i * 1000) == 0)
			allowed++;
	T_EQ_INT(allowed, 30);
	/* 31st at t0+30 s: waits until the first call (t0) leaves the window. */
	T_EQ_INT(take("pu", 1, 30, "{}", "{}", t0 + 30000), 30000);
	T_CHECK(take("pu", 1, 30, "{}", "{}", t0 + 59999) > 0);
	T_EQ_INT(take("pu", 1, 30, "{}", "{}", t0 + 60000), 0);
	/* The next one waits for the second call (t0 + 1 s) to leave. */
	T_EQ_INT(take("pu", 1, 30, "{}", "{}", t0 + 60000), 1000);
	/* User 2 and another provider are not blocked by user 1. */
	T_EQ_INT(take("pu", 2, 30, "{}", "{}", t0 + 60000), 0);
	T_EQ_INT(take("pu2", 1, 30, "{}", "{}", t0 + 60000), 0);
	/* Refusals recorded nothing: user 1 took 31 calls (numbered 1..31), of
	 * which the newest 30 are kept; user 2 took one. */
	T_EQ_INT(t_query_int(db, "SELECT max(seq) FROM wsync_rate_calls WHERE provider = 'pu'"
	                         " AND scope = 'user:00000000-0000-4000-8000-000000000001'", 0, NULL),
	         31);
	T_EQ_INT(rows("pu"), 31);
	/* No limits at all: always 0, nothing recorded. */
	T_EQ_INT(take("nolimit", 1, 0, "{}", "{}", t0), 0);
	T_EQ_INT(take("nolimit", 1, 0, NULL, NULL, t0), 0);
	T_EQ_INT(rows("nolimit"), 0);
}

static void test_app_windows(void)
{
	const long long t0 = 5000000;
	int allowed = 0;
	/* 250 different users, one call each within 10 s: only 200 pass. */
	for (int i = 0; i < 250; i++)
		if (take("app", 100 + i, 30, "{200,1000}", "{300,3600}", t0 + i * 40) == 0)
			allowed++;
	T_EQ_INT(allowed, 200);
	/* The 201st waits until the first call leaves the 5-minute window. */
	T_EQ_INT(take("app", 9999, 30, "{200,1000}", "{300,3600}", t0 + 10000), 300000 - 10000);
	T_EQ_INT(take("app", 9999, 30, "{200,1000}", "{300,3600}", t0 + 300000), 0);
	/* The hour window: 1000 calls, then a wait for the first to leave it. */
	allowed = 0;
	for (int i = 0; i < 900; i++) /* 200 per 5 min: one every 1.5 s */
		if (take("app", 2000 + i, 30, "{200,1000}", "{300,3600}",
		         t0 + 300000 + (i + 1) * 1500LL) == 0)
			allowed++;
	T_EQ_INT(allowed, 799); /* 201 + 799 = 1000 in the hour */
	T_EQ_INT(take("app", 5000, 30, "{200,1000}", "{300,3600}", t0 + 1800000),
	         3600000 - 1800000);
	/* A window listed twice keeps its smallest limit. */
	T_EQ_INT(take("dup", 1, 0, "{5,2}", "{60,60}", t0), 0);
	T_EQ_INT(take("dup", 2, 0, "{5,2}", "{60,60}", t0 + 1), 0);
	T_EQ_INT(take("dup", 3, 0, "{5,2}", "{60,60}", t0 + 2), 60000 - 2);
}

/* Random arrivals over a long simulated run: the database answers exactly
 * like the in-process limiter, no window ever holds more than its limit,
 * and the calls keep flowing. */
static void test_random_run_matches_in_process(void)
{
	enum { USERS = 4, STEPS = 4000, MAXC = STEPS };
	static const wsync_rate_window app[2] = {{50, 120}, {300, 900}};
	static long long taken_user[USERS][MAXC], taken_app[MAXC];
	int n_user[USERS] = {0}, n_app = 0, differ = 0, violations = 0;
	wsync_ratelimiter *rl = wsync_ratelimiter_new();
	long long now = 100000000;
	srand(4242);
	for (int step = 0; step < STEPS; step++) {
		int u = rand() % USERS;
		char name[40];
		long long want, got;
		now += rand() % 800; /* ~400 ms between arrivals, bursts included */
		user_uuid(name, sizeof name, 500 + u);
		want = wsync_ratelimit_try(rl, "rnd", name, 30, app, 2, now);
		got = take("rnd", 500 + u, 30, "{50,300}", "{120,900}", now);
		if (want != got && differ++ < 5)
			t_fail(__FILE__, __LINE__, "step %d: in-process %lld, database %lld",
			       step, want, got);
		if (got == 0) {
			taken_user[u][n_user[u]++] = now;
			taken_app[n_app++] = now;
		}
	}
	T_EQ_INT(differ, 0);
	for (int u = 0; u < USERS; u++)
		for (int i = 30; i < n_user[u]; i++)
			violations += taken_user[u][i] - taken_user[u][i - 30] < 60000;
	for (int i = 50; i < n_app; i++)
		violations += taken_app[i] - taken_app[i - 50] < 120000;
	for (int i = 300; i < n_app; i++)
		violations += taken_app[i] - taken_app[i - 300] < 900000;
	T_EQ_INT(violations, 0);
	/* ~1600 s simulated: the 15-minute window allows about 300 per 900 s. */
	T_CHECK(n_app >= 450);
	printf("random run: %d of %d calls taken over %lld s simulated\n", n_app, STEPS,
	       (now - 100000000) / 1000);
	/* Old rows were pruned: a scope keeps at most its newest L calls. */
	T_CHECK(t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'rnd'"
	                        " AND scope LIKE 'user:%'", 0, NULL) <= USERS * 30);
	T_CHECK(t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'rnd'"
	                        " AND scope = 'app:900'", 0, NULL) <= 300);
	wsync_ratelimiter_free(rl);
}

/* ---- per-user windows beyond one minute (migrations/0009) ---- */

static const char TAKE_WINDOWS_SQL[] =
	"SELECT wsync_rate_take($1, $2::uuid, 0, $3::int[], $4::int[],"
	" timestamptz 'epoch' + $5::bigint * interval '1 millisecond', $6::int[], $7::int[])";

/* Take with per-user windows given as arrays ("{5,40,200}", "{60,3600,86400}"). */
static long long take_windows(const char *provider, int user, const char *ulimits,
                              const char *useconds, const char *alimits,
                              const char *aseconds, long long now_ms)
{
	char u[40], now[24];
	const char *p[7] = {provider, u, alimits, aseconds, now, ulimits, useconds};
	PGresult *r;
	long long v = -2;
	user_uuid(u, sizeof u, user);
	snprintf(now, sizeof now, "%lld", now_ms);
	r = PQexecParams(db, TAKE_WINDOWS_SQL, 7, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		t_fail(__FILE__, __LINE__, "wsync_rate_take failed: %s", PQerrorMessage(db));
	PQclear(r);
	return v;
}

/* Calls of one user's log more than `limit` inside any `window` ms. */
static int over(const long long *at, int n, int limit, long long window)
{
	int v = 0;
	for (int i = limit; i < n; i++)
		v += at[i] - at[i - limit] < window;
	return v;
}

/* A random run over four simulated days with 5/1m, 40/1h, 200/1d per user
 * and 500/1h app-wide: the database answers every call exactly like the
 * in-process limiter, and no window ever holds more than its limit.  The
 * occasional sweep of idle scopes (1 % of takes, so dozens of times here)
 * must leave the daily rows alone: deleting one would let the database
 * admit a call the in-process limiter refuses. */
static void test_daily_window_random_run(void)
{
	enum { USERS = 3, STEPS = 6000 };
	static const wsync_rate_window user[3] = {{5, 60}, {40, 3600}, {200, 86400}};
	static const wsync_rate_window app[1] = {{500, 3600}};
	static long long at[USERS][STEPS];
	int n[USERS] = {0}, differ = 0, violations = 0, total = 0, daily_waits = 0;
	char last_user[40] = "";
	wsync_ratelimiter *rl = wsync_ratelimiter_new();
	long long now = 700000000;
	srand(1414);
	for (int step = 0; step < STEPS; step++) {
		int u = rand() % USERS;
		char name[40];
		long long want, got;
		/* Bursts (to fill the minute) between gaps of up to 4 minutes. */
		now += rand() % 2 == 0 ? rand() % 300 : rand() % 240000;
		user_uuid(name, sizeof name, 800 + u);
		want = wsync_ratelimit_try_windows(rl, "daily", name, user, 3, app, 1, now);
		got = take_windows("daily", 800 + u, "{5,40,200}", "{60,3600,86400}", "{500}",
		                   "{3600}", now);
		if (want != got && differ++ < 5)
			t_fail(__FILE__, __LINE__, "step %d: in-process %lld, database %lld", step,
			       want, got);
		daily_waits += got > 3600000;
		if (got == 0) {
			at[u][n[u]++] = now;
			total++;
			snprintf(last_user, sizeof last_user, "%s", name);
		}
	}
	T_EQ_INT(differ, 0);
	for (int u = 0; u < USERS; u++) {
		violations += over(at[u], n[u], 5, 60000);
		violations += over(at[u], n[u], 40, 3600000);
		violations += over(at[u], n[u], 200, 86400000);
	}
	T_EQ_INT(violations, 0);
	/* The daily window did bind (waits longer than an hour), and calls
	 * kept flowing: about 200 per user per simulated day. */
	T_CHECK(daily_waits > 100);
	T_CHECK(total >= USERS * 200 * 3);
	printf("daily run: %d of %d calls taken over %lld h simulated, %d waits beyond an hour\n",
	       total, STEPS, (now - 700000000) / 3600000, daily_waits);
	/* The scopes: the minute one as in 0003, the others named by their
	 * window; each keeps at most its newest L calls.  The random sweep may
	 * already have removed the minute scope of a user idle for two minutes,
	 * so only the user who took the last call is sure to have one. */
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'daily'"
	                         " AND scope !~ '^(app:3600|user:[0-9a-f-]{36}(:(3600|86400))?)$'",
	                     0, NULL),
	         0);
	T_CHECK(t_query_int(db, "SELECT count(DISTINCT scope) FROM wsync_rate_calls WHERE"
	                        " provider = 'daily' AND scope ~ '^user:[0-9a-f-]{36}$'", 0, NULL) <=
	        USERS);
	{
		char scope[64];
		snprintf(scope, sizeof scope, "user:%s", last_user);
		T_CHECK(t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'daily'"
		                        " AND scope = $1", 1, (const char *[]){scope}) >= 1);
	}
	T_CHECK(t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'daily'"
	                        " AND scope LIKE 'user:%:86400'", 0, NULL) <= USERS * 200);
	T_CHECK(t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'daily'"
	                        " AND scope LIKE 'user:%:86400'", 0, NULL) > USERS * 100);
	wsync_ratelimiter_free(rl);
}

/* Grant `wanted` calls to one user at now_ms; the number granted. */
static long long grant(const char *provider, int user, int wanted, const char *ulimits,
                       const char *useconds, long long now_ms)
{
	char u[48], w[16], now[24];
	const char *p[6] = {provider, u, w, ulimits, useconds, now};
	PGresult *r;
	long long v = -2;
	user_uuid(u + 1, sizeof u - 2, user);
	u[0] = '{';
	strcat(u, "}");
	snprintf(w, sizeof w, "{%d}", wanted);
	snprintf(now, sizeof now, "%lld", now_ms);
	r = PQexecParams(db, "SELECT granted FROM wsync_rate_grant($1, $2::uuid[], $3::int[], 0,"
	                 " '{}', '{}', $4::int[], $5::int[],"
	                 " timestamptz 'epoch' + $6::bigint * interval '1 millisecond')",
	                 6, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else
		t_fail(__FILE__, __LINE__, "wsync_rate_grant failed: %s", PQerrorMessage(db));
	PQclear(r);
	return v;
}

/* 10/1m, 25/1d: two grants and a take never exceed the day, and a grant
 * counts in every window exactly like that many takes. */
static void test_grant_daily_window(void)
{
	const long long t0 = 900000000, min = 60000, day = 86400000;
	T_EQ_INT(grant("gday", 1, 8, "{10,25}", "{60,86400}", t0), 8);
	/* The minute window caps the second grant at 10 of 20; the day has 17. */
	T_EQ_INT(grant("gday", 1, 20, "{10,25}", "{60,86400}", t0 + 2 * min), 10);
	T_EQ_INT(take_windows("gday", 1, "{10,25}", "{60,86400}", "{}", "{}", t0 + 4 * min), 0);
	/* 19 used: the day admits 6 more, whatever the minute allows. */
	T_EQ_INT(grant("gday", 1, 20, "{10,25}", "{60,86400}", t0 + 6 * min), 6);
	T_EQ_INT(grant("gday", 1, 20, "{10,25}", "{60,86400}", t0 + 7 * min), 0);
	/* Other users' takes (which sweep idle scopes now and then) leave the
	 * day's rows alone. */
	for (int i = 0; i < 1000; i++)
		take_windows("gday", 100 + i, "{10,25}", "{60,86400}", "{}", "{}", t0 + 8 * min);
	/* A take waits until the grant at t0 leaves the day. */
	T_EQ_INT(take_windows("gday", 1, "{10,25}", "{60,86400}", "{}", "{}", t0 + 8 * min),
	         day - 8 * min);
	/* A day later the 8 of t0 are back, and only them. */
	T_EQ_INT(grant("gday", 1, 20, "{10,25}", "{60,86400}", t0 + day), 8);
	T_EQ_INT(grant("gday", 1, 20, "{10,25}", "{60,86400}", t0 + day + min), 0);
	/* A call written for 0008 (per-minute argument, no arrays) still
	 * resolves, with its minute window. */
	T_EQ_INT(t_query_int(db, "SELECT sum(granted) FROM wsync_rate_grant('g8',"
	                         " ARRAY[gen_random_uuid()], '{50}', 30, '{}', '{}')", 0, NULL), 30);
	/* Unequal arrays are refused. */
	PGresult *r = PQexec(db, "SELECT wsync_rate_take('x', gen_random_uuid(), 0, '{}', '{}',"
	                         " now(), '{1,2}', '{60}')");
	T_EQ_INT(PQresultStatus(r), PGRES_FATAL_ERROR);
	T_CONTAINS(PQerrorMessage(db), "user_limits has 2 elements, user_seconds 1");
	PQclear(r);
}

/* ---- concurrency: several connections take at once ---- */

enum { THREADS = 4, PER_THREAD = 400, CUSERS = 3, C_MAX = THREADS * PER_THREAD };

typedef struct shared {
	atomic_llong clock;            /* next simulated ms */
	long long step_ms;
	const char *provider;
	pthread_mutex_t lock;
	long long user_at[CUSERS][C_MAX];
	int n_user[CUSERS];
	long long app_at[C_MAX];
	int n_app;
	atomic_int errors;
} shared;

typedef struct thread_arg {
	shared *s;
	int index;
} thread_arg;

static void *taker(void *p)
{
	thread_arg *a = p;
	shared *s = a->s;
	PGconn *c = PQconnectdb(conninfo);
	unsigned seed = 77u + (unsigned)a->index;
	if (PQstatus(c) != CONNECTION_OK) {
		atomic_fetch_add(&s->errors, 1);
		PQfinish(c);
		return NULL;
	}
	for (int i = 0; i < PER_THREAD; i++) {
		int u = (int)(rand_r(&seed) % CUSERS);
		/* The clock reading comes before the call, as in wsyncd: a take
		 * that waits for the lock may record an older time than the
		 * take that held it. */
		long long now = atomic_fetch_add(&s->clock, s->step_ms);
		long long w = take_on(c, s->provider, 700 + u, 30, "{60}", "{60}", now);
		if (w < 0) {
			atomic_fetch_add(&s->errors, 1);
			continue;
		}
		if (w == 0) {
			pthread_mutex_lock(&s->lock);
			s->user_at[u][s->n_user[u]++] = now;
			s->app_at[s->n_app++] = now;
			pthread_mutex_unlock(&s->lock);
		}
	}
	PQfinish(c);
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* Calls more than `limit` inside any `window` ms. */
static int over_limit(long long *at, int n, int limit, long long window)
{
	int v = 0;
	qsort(at, (size_t)n, sizeof *at, cmp_ll);
	for (int i = limit; i < n; i++)
		v += at[i] - at[i - limit] < window;
	return v;
}

static void run_threads(shared *s)
{
	pthread_t th[THREADS];
	thread_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i] = (thread_arg){s, i};
		pthread_create(&th[i], NULL, taker, &args[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
}

static void test_concurrent_connections(void)
{
	static shared burst, run;
	int v = 0;

	/* A burst: 1600 attempts within 1.6 simulated seconds.  Exactly the
	 * app limit (60 per minute) is taken, never more; each user at most 30. */
	burst.clock = 200000000;
	burst.step_ms = 1;
	burst.provider = "conc";
	pthread_mutex_init(&burst.lock, NULL);
	run_threads(&burst);
	T_EQ_INT(atomic_load(&burst.errors), 0);
	T_EQ_INT(burst.n_app, 60);
	for (int u = 0; u < CUSERS; u++)
		T_CHECK(burst.n_user[u] <= 30);
	T_EQ_INT(t_query_int(db, "SELECT max(seq) FROM wsync_rate_calls"
	                         " WHERE provider = 'conc' AND scope = 'app:60'", 0, NULL), 60);

	/* A long run: 1600 attempts 0.5 s apart (800 s simulated), readings
	 * and commits out of order between the threads. */
	run.clock = 300000000;
	run.step_ms = 500;
	run.provider = "conc2";
	pthread_mutex_init(&run.lock, NULL);
	run_threads(&run);
	T_EQ_INT(atomic_load(&run.errors), 0);
	for (int u = 0; u < CUSERS; u++)
		v += over_limit(run.user_at[u], run.n_user[u], 30, 60000);
	v += over_limit(run.app_at, run.n_app, 60, 60000);
	T_EQ_INT(v, 0);
	/* 800 s at 60 per minute: about 800; the limiter keeps them flowing. */
	T_CHECK(run.n_app >= 600);
	/* Stamps never decrease along seq, whatever order the readings came in. */
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM (SELECT at < lag(at) OVER (PARTITION BY"
	                         " provider, scope ORDER BY seq) AS back FROM wsync_rate_calls"
	                         " WHERE provider LIKE 'conc%') x WHERE back", 0, NULL), 0);
	printf("concurrent: burst %d taken; long run %d of %d taken\n", burst.n_app, run.n_app,
	       C_MAX);
}

static void test_bad_arguments(void)
{
	PGresult *r = PQexec(db, "SELECT wsync_rate_take('x', gen_random_uuid(), 30,"
	                         " '{1,2}', '{60}', now())");
	T_EQ_INT(PQresultStatus(r), PGRES_FATAL_ERROR);
	T_CONTAINS(PQerrorMessage(db), "app_limits has 2 elements, app_seconds 1");
	PQclear(r);
	r = PQexec(db, "SELECT wsync_rate_take(NULL, gen_random_uuid(), 30, '{}', '{}', now())");
	T_EQ_INT(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	/* now NULL: the database's clock. */
	T_EQ_INT(t_query_int(db, "SELECT wsync_rate_take('clock', gen_random_uuid(), 30, '{}',"
	                         " '{}', NULL)", 0, NULL), 0);
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'clock'"
	                         " AND at > now() - interval '1 minute'", 0, NULL), 1);
}

static double ms_since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* The cost of one take on this server, for the record (not asserted):
 * the default configuration (per-user window only), and the app windows of
 * shared/providers.md kept full (each take scans up to their limits). */
static void measure(void)
{
	struct timespec a;
	enum { N = 500 };
	int taken = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < N; i++)
		taken += take("cost", 900 + i % 50, 30, "{}", "{}", 400000000 + i * 100LL) == 0;
	printf("wsync_rate_take, per-user window only: %.3f ms per call (%d of %d taken)\n",
	       ms_since(&a) / N, taken, N);
	taken = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < N; i++)
		taken += take("cost2", 900 + i % 50, 30, "{200,1000,5000}", "{300,3600,86400}",
		              400000000 + i * 1000LL) == 0;
	printf("wsync_rate_take, per-user + 200/5m, 1000/1h, 5000/1d: %.3f ms per call"
	       " (%d of %d taken)\n", ms_since(&a) / N, taken, N);
}

int main(void)
{
	conninfo = getenv("WSYNC_TEST_CONNINFO");
	db = t_db();
	t_migrate(db);
	test_per_user_minute();
	test_app_windows();
	test_random_run_matches_in_process();
	test_daily_window_random_run();
	test_grant_daily_window();
	test_concurrent_connections();
	test_bad_arguments();
	measure();
	PQfinish(db);
	return t_done();
}
