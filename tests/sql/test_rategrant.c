/*
 * The set-based wsync_rate_grant() of migrations/0012_rate_grant_set.sql
 * against a real PostgreSQL:
 *   - randomized (fixed seed) grant sequences -- users repeated or NULL in a
 *     batch, wanted -1..3, per-user windows of 60/120/300 s with limits 0-5
 *     that change between grants, app windows, a clock that sometimes
 *     stands still or steps back -- give the same grants and leave the same
 *     wsync_rate_calls rows as the per-user loop of 0009 (a database
 *     migrated up to 0011), and both match an oracle of the sliding-log
 *     semantics computed here from the rows before each grant: no window
 *     ever holds more than its limit, a user gets less than it wants only
 *     when one of its windows or the app cap is full, users are served in
 *     uuid order, and the rows written are exactly the calls granted (and
 *     the calls that leave the newest L are deleted);
 *   - after every grant, the read-only wsync_rate_wait() of 0015 tells each
 *     user (and one that never called) the wait wsync_rate_take() answers;
 *   - the same SQLSTATE as before for a NULL provider and unequal arrays;
 *   - with 100,000 rows in the table, every access of the grant (and of
 *     0015's wait) to wsync_rate_calls is a primary-key probe (auto_explain
 *     of the nested statements), with custom and generic plans.
 */
#include "schemas.h"
#include "sqltest.h"

/* ---- deterministic randomness --------------------------------------------------- */

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;

static int rnd(int n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (int)((rng >> 11) % (unsigned long long)n);
}

/* ---- one grant ------------------------------------------------------------------ */

enum { POOL = 6, MAXE = 8, MAXW = 3, MAXROWS = 8192 };

/* Users in no particular uuid order, so the serving order is the uuid's. */
static const char *const pool[POOL] = {
	"c4000000-0000-4000-8000-000000000001", "0a000000-0000-4000-8000-000000000002",
	"f0000000-0000-4000-8000-000000000003", "3f000000-0000-4000-8000-000000000004",
	"7c000000-0000-4000-8000-000000000005", "a1000000-0000-4000-8000-000000000006",
};

typedef struct grant_in {
	int n, user[MAXE], wanted[MAXE];   /* user: index into pool, -1 NULL */
	int ppm;                           /* p_per_user_per_minute */
	int nu, ulim[MAXW], usec[MAXW];    /* per-user windows (-1: NULL arrays) */
	int na, alim[MAXW], asec[MAXW];    /* app windows */
	long long now;                     /* ms since the epoch */
} grant_in;

typedef struct crow {
	char scope[64];
	long long seq, at;
} crow;

typedef struct ctable {
	crow r[MAXROWS];
	int n;
} ctable;

static int crow_cmp(const void *a, const void *b)
{
	const crow *x = a, *y = b;
	int c = strcmp(x->scope, y->scope);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* The provider's rows, by scope (byte order) and seq. */
static void load(PGconn *db, const char *prov, ctable *t)
{
	const char *p[1] = {prov};
	PGresult *r = PQexecParams(db, "SELECT scope, seq, (extract(epoch FROM at) * 1000)::bigint"
	                               " FROM wsync_rate_calls WHERE provider = $1"
	                               " ORDER BY scope COLLATE \"C\", seq", 1, NULL, p, NULL,
	                           NULL, 0);
	t->n = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) > MAXROWS) {
		t_fail(__FILE__, __LINE__, "load %s: %s", prov, PQerrorMessage(db));
	} else {
		for (int i = 0; i < PQntuples(r); i++) {
			snprintf(t->r[i].scope, sizeof t->r[i].scope, "%s", PQgetvalue(r, i, 0));
			t->r[i].seq = atoll(PQgetvalue(r, i, 1));
			t->r[i].at = atoll(PQgetvalue(r, i, 2));
		}
		t->n = PQntuples(r);
	}
	PQclear(r);
}

/* "scope seq at\n"... of a sorted table, malloc'ed. */
static char *dump(const ctable *t)
{
	size_t cap = 64 + (size_t)t->n * 100, len = 0;
	char *s = malloc(cap);
	s[0] = 0;
	for (int i = 0; i < t->n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s %lld %lld\n", t->r[i].scope,
		                        t->r[i].seq, t->r[i].at);
	return s;
}

static void int_array(char *out, size_t len, const int *v, int n)
{
	size_t k = (size_t)snprintf(out, len, "{");
	for (int i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, len - k, "%s%d", i ? "," : "", v[i]);
	snprintf(out + k, len - k, "}");
}

/* Run the grant; "uuid=g;" per result row, in the function's order,
 * malloc'ed (NULL on error). */
static char *run_grant(PGconn *db, const char *prov, const grant_in *g)
{
	char users[MAXE * 40 + 4], wanted[128], ppm[16], ul[64], us[64], al[64], as[64], now[32];
	size_t k = (size_t)snprintf(users, sizeof users, "{");
	for (int i = 0; i < g->n; i++)
		k += (size_t)snprintf(users + k, sizeof users - k, "%s%s", i ? "," : "",
		                      g->user[i] < 0 ? "NULL" : pool[g->user[i]]);
	snprintf(users + k, sizeof users - k, "}");
	int_array(wanted, sizeof wanted, g->wanted, g->n);
	snprintf(ppm, sizeof ppm, "%d", g->ppm);
	int_array(ul, sizeof ul, g->ulim, g->nu < 0 ? 0 : g->nu);
	int_array(us, sizeof us, g->usec, g->nu < 0 ? 0 : g->nu);
	int_array(al, sizeof al, g->alim, g->na);
	int_array(as, sizeof as, g->asec, g->na);
	snprintf(now, sizeof now, "%lld", g->now);
	const char *p[9] = {prov, users, wanted, ppm, al, as, g->nu < 0 ? NULL : ul,
	                    g->nu < 0 ? NULL : us, now};
	PGresult *r = PQexecParams(db, "SELECT user_id::text, granted FROM wsync_rate_grant($1,"
	                               " $2::uuid[], $3::int[], $4::int, $5::int[], $6::int[],"
	                               " $7::int[], $8::int[],"
	                               " timestamptz 'epoch' + $9::bigint * interval '1 millisecond')",
	                           9, NULL, p, NULL, NULL, 0);
	char *out = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		size_t cap = 16 + (size_t)PQntuples(r) * 48, len = 0;
		out = malloc(cap);
		out[0] = 0;
		for (int i = 0; i < PQntuples(r); i++)
			len += (size_t)snprintf(out + len, cap - len, "%s=%s;", PQgetvalue(r, i, 0),
			                        PQgetvalue(r, i, 1));
	} else {
		t_fail(__FILE__, __LINE__, "wsync_rate_grant on %s: %s", PQdb(db),
		       PQerrorMessage(db));
	}
	PQclear(r);
	return out;
}

/* ---- wsync_rate_wait (0015) against wsync_rate_take ------------------------------ */

/* g's windows as wsync_rate_wait takes them: the per-minute limit is one
 * more user window. */
static void wait_windows(const grant_in *g, char *ul, char *us, char *al, char *as, size_t len)
{
	int lim[MAXW + 1], sec[MAXW + 1], n = 0;
	for (int i = 0; i < (g->nu < 0 ? 0 : g->nu); i++, n++) {
		lim[n] = g->ulim[i];
		sec[n] = g->usec[i];
	}
	if (g->ppm > 0) {
		lim[n] = g->ppm;
		sec[n++] = 60;
	}
	int_array(ul, len, lim, n);
	int_array(us, len, sec, n);
	int_array(al, len, g->alim, g->na);
	int_array(as, len, g->asec, g->na);
}

/* wsync_rate_take() at g's instant, in a transaction rolled back (a take
 * of 0 records a call). */
static long long take_at(PGconn *db, const char *prov, const char *user, const char *al,
                         const char *as, const char *now, const char *ul, const char *us)
{
	const char *tp[7] = {prov, user, al, as, now, ul, us};
	long long taken;
	t_exec(db, "BEGIN", 0, NULL);
	taken = t_query_int(db, "SELECT wsync_rate_take($1, $2::uuid, 0, $3::int[], $4::int[],"
	                        " timestamptz 'epoch' + $5::bigint * interval '1 millisecond',"
	                        " $6::int[], $7::int[])", 7, tp);
	t_exec(db, "ROLLBACK", 0, NULL);
	return taken;
}

/* For every user of the pool, and one that never called, the wait the
 * read-only wsync_rate_wait() tells is the one wsync_rate_take() answers
 * at the same instant, and its app part the take's with the app windows
 * alone.  Counts the users told to wait, in all and for the app. */
static void check_waits(PGconn *db, const char *prov, const grant_in *g, int *waiting,
                        int *app_waiting)
{
	char ul[64], us[64], al[64], as[64], now[32], users[(POOL + 1) * 40 + 4];
	const char *stranger = "00000000-0000-4000-8000-0000000000ff";
	size_t k = (size_t)snprintf(users, sizeof users, "{%s", stranger);
	int user_waits = 0, app_waits = 0;
	for (int i = 0; i < POOL; i++)
		k += (size_t)snprintf(users + k, sizeof users - k, ",%s", pool[i]);
	snprintf(users + k, sizeof users - k, "}");
	wait_windows(g, ul, us, al, as, sizeof ul);
	snprintf(now, sizeof now, "%lld", g->now);
	const char *p[7] = {prov, users, al, as, ul, us, now};
	PGresult *r = PQexecParams(db, "SELECT user_id::text, wait_ms, app_wait_ms FROM wsync_rate_wait($1,"
	                               " $2::uuid[], $3::int[], $4::int[], $5::int[], $6::int[],"
	                               " timestamptz 'epoch' + $7::bigint * interval '1 millisecond')",
	                           7, NULL, p, NULL, NULL, 0);
	t_checks++;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != POOL + 1) {
		t_fail(__FILE__, __LINE__, "wsync_rate_wait on %s: %s", prov, PQerrorMessage(db));
		PQclear(r);
		return;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		const char *user = PQgetvalue(r, i, 0);
		long long told = atoll(PQgetvalue(r, i, 1)), told_app = atoll(PQgetvalue(r, i, 2));
		long long taken = take_at(db, prov, user, al, as, now, ul, us);
		long long taken_app = take_at(db, prov, user, al, as, now, "{}", "{}");
		t_checks += 2;
		if (told != taken || told_app != taken_app)
			t_fail(__FILE__, __LINE__, "%s, user %s at %lld: wsync_rate_wait %lld ms"
			       " (app %lld), wsync_rate_take %lld ms (app windows alone %lld)", prov,
			       user, g->now, told, told_app, taken, taken_app);
		user_waits += told > 0;
		app_waits += told_app > 0;
	}
	PQclear(r);
	t_checks++;
	if (app_waits > user_waits) /* the app's wait is part of the whole */
		t_fail(__FILE__, __LINE__, "%s: %d users wait for the app, %d in all", prov,
		       app_waits, user_waits);
	*waiting += user_waits;
	*app_waiting += app_waits;
}

/* ---- the oracle: the sliding log, from the rows ------------------------------- */

typedef struct win {
	int lim, secs;
} win;

/* Valid pairs, one per duration with its smallest limit. */
static int merge(const int *lims, const int *secs, int n, win *out, int have)
{
	for (int i = 0; i < n; i++) {
		int j;
		if (lims[i] <= 0 || secs[i] <= 0)
			continue;
		for (j = 0; j < have && out[j].secs != secs[i]; j++)
			;
		if (j == have)
			out[have++] = (win){lims[i], secs[i]};
		else if (lims[i] < out[j].lim)
			out[j].lim = lims[i];
	}
	return have;
}

static void user_scope(char *out, size_t len, int user, int secs)
{
	if (secs == 60)
		snprintf(out, len, "user:%s", pool[user]);
	else
		snprintf(out, len, "user:%s:%d", pool[user], secs);
}

/* A scope's last seq (0: none) and its `at`; its calls inside (now - secs, ...]. */
static void scope_state(const ctable *t, const char *scope, long long now, int secs,
                        long long *last, long long *last_at, int *inside)
{
	*last = 0;
	*last_at = 0;
	*inside = 0;
	for (int i = 0; i < t->n; i++) {
		if (strcmp(t->r[i].scope, scope))
			continue;
		if (t->r[i].seq > *last) {
			*last = t->r[i].seq;
			*last_at = t->r[i].at;
		}
		if (t->r[i].at > now - secs * 1000LL)
			(*inside)++;
	}
}

/* How many calls the window admits now: its limit minus the calls inside. */
static int room(const ctable *t, const char *scope, const win *w, long long now)
{
	long long last, at;
	int inside;
	scope_state(t, scope, now, w->secs, &last, &at, &inside);
	return inside >= w->lim ? 0 : w->lim - inside;
}

/* Record n calls of a window in `after` as n takes would: new seqs at
 * max(now, last at), and the calls that leave the newest lim deleted. */
static void record(const ctable *before, ctable *after, const char *scope, int n, int lim,
                   long long now)
{
	long long last, at;
	int inside, k = 0;
	if (n <= 0)
		return;
	scope_state(before, scope, now, 1, &last, &at, &inside);
	for (int i = 0; i < after->n; i++) {
		const crow *r = &after->r[i];
		if (!strcmp(r->scope, scope) && r->seq > last - lim && r->seq <= last - lim + n)
			continue;
		after->r[k++] = *r;
	}
	after->n = k;
	for (int i = 1; i <= n && after->n < MAXROWS; i++) {
		crow *r = &after->r[after->n++];
		snprintf(r->scope, sizeof r->scope, "%s", scope);
		r->seq = last + i;
		r->at = last && at > now ? at : now;
	}
}

static int uuid_cmp(const void *a, const void *b)
{
	return strcmp(pool[*(const int *)a], pool[*(const int *)b]);
}

/* What the grant must answer ("uuid=g;"...) and leave (*after), from the
 * rows before. */
static char *oracle(const ctable *before, const grant_in *g, ctable *after)
{
	win uw[MAXW + 1], aw[MAXW];
	int nuw = 0, naw, users[MAXE], nusers = 0, total = 0, granted_sum = 0;
	long long cap = -1;                            /* -1: no app window */
	char scope[64], *out = malloc(MAXE * 48 + 1);
	size_t len = 0;
	int one[1] = {g->ppm}, sixty[1] = {60};
	nuw = merge(one, sixty, 1, uw, 0);
	nuw = merge(g->ulim, g->usec, g->nu < 0 ? 0 : g->nu, uw, nuw);
	naw = merge(g->alim, g->asec, g->na, aw, 0);
	*after = *before;
	out[0] = 0;
	for (int i = 0; i < g->n; i++) {
		int seen = 0;
		total += g->wanted[i] > 0 ? g->wanted[i] : 0;
		for (int j = 0; j < nusers; j++)
			seen |= users[j] == g->user[i];
		if (g->user[i] >= 0 && !seen)
			users[nusers++] = g->user[i];
	}
	qsort(users, (size_t)nusers, sizeof users[0], uuid_cmp);
	for (int a = 0; a < naw; a++) {
		snprintf(scope, sizeof scope, "app:%d", aw[a].secs);
		int r = room(before, scope, &aw[a], g->now);
		r = r < total ? r : total;
		if (cap < 0 || r < cap)
			cap = r;
	}
	for (int u = 0; u < nusers; u++) {
		int want = 0, got;
		for (int i = 0; i < g->n; i++)
			if (g->user[i] == users[u])
				want += g->wanted[i];
		got = want > 0 ? want : 0;
		if (cap >= 0 && got > cap - granted_sum)
			got = (int)(cap - granted_sum);
		for (int w = 0; w < nuw; w++) {
			user_scope(scope, sizeof scope, users[u], uw[w].secs);
			int r = room(before, scope, &uw[w], g->now);
			if (got > r)
				got = r;
		}
		for (int w = 0; w < nuw; w++) {
			user_scope(scope, sizeof scope, users[u], uw[w].secs);
			record(before, after, scope, got, uw[w].lim, g->now);
		}
		granted_sum += got;
		len += (size_t)snprintf(out + len, MAXE * 48 + 1 - len, "%s=%d;", pool[users[u]], got);
	}
	for (int a = 0; a < naw; a++) {
		snprintf(scope, sizeof scope, "app:%d", aw[a].secs);
		record(before, after, scope, granted_sum, aw[a].lim, g->now);
	}
	qsort(after->r, (size_t)after->n, sizeof after->r[0], crow_cmp);
	return out;
}

/* The safety property on its own: after the grant, a window that received
 * calls holds at most its limit inside it. */
static void check_limit(const ctable *before, const ctable *after, const char *scope,
                        const win *w, long long now)
{
	long long l0, l1, at;
	int in0, in1;
	scope_state(before, scope, now, w->secs, &l0, &at, &in0);
	scope_state(after, scope, now, w->secs, &l1, &at, &in1);
	t_checks++;
	if (l1 > l0 && in1 > w->lim)
		t_fail(__FILE__, __LINE__, "%s: %d calls inside %d s, limit %d", scope, in1,
		       w->secs, w->lim);
}

static void check_limits(const ctable *before, const ctable *after, const grant_in *g)
{
	win uw[MAXW + 1], aw[MAXW];
	int one[1] = {g->ppm}, sixty[1] = {60};
	int nuw = merge(g->ulim, g->usec, g->nu < 0 ? 0 : g->nu, uw, merge(one, sixty, 1, uw, 0));
	int naw = merge(g->alim, g->asec, g->na, aw, 0);
	char scope[64];
	for (int u = 0; u < POOL; u++)
		for (int w = 0; w < nuw; w++) {
			user_scope(scope, sizeof scope, u, uw[w].secs);
			check_limit(before, after, scope, &uw[w], g->now);
		}
	for (int a = 0; a < naw; a++) {
		snprintf(scope, sizeof scope, "app:%d", aw[a].secs);
		check_limit(before, after, scope, &aw[a], g->now);
	}
}

/* ---- the randomized comparison ------------------------------------------------- */

static void random_windows(grant_in *g)
{
	static const int usecs[3] = {60, 120, 300}, asecs[2] = {60, 600};
	g->ppm = rnd(6) < 2 ? 0 : rnd(5);
	g->nu = rnd(8) == 0 ? -1 : rnd(3);
	for (int i = 0; i < (g->nu < 0 ? 0 : g->nu); i++) {
		g->ulim[i] = rnd(6);
		g->usec[i] = usecs[rnd(3)];
	}
	g->na = rnd(3);
	for (int i = 0; i < g->na; i++) {
		g->alim[i] = rnd(10) == 0 ? 0 : 1 + rnd(12);
		g->asec[i] = asecs[rnd(2)];
	}
}

static void test_same_as_0009(PGconn *o, PGconn *n)
{
	static ctable before, after_old, after_new, expect;
	int grants = 0, partial = 0, full_block = 0, waiting = 0, app_waiting = 0;
	for (int sc = 0; sc < 40; sc++) {
		char prov[16];
		grant_in g;
		snprintf(prov, sizeof prov, "r%02d", sc);
		memset(&g, 0, sizeof g);
		random_windows(&g);
		g.now = 1000000000000LL + sc * 7919LL;
		for (int step = 0; step < 15; step++) {
			if (rnd(10) < 3)
				random_windows(&g);
			g.n = 1 + rnd(MAXE);
			for (int i = 0; i < g.n; i++) {
				g.user[i] = rnd(10) == 0 ? -1 : rnd(POOL);
				g.wanted[i] = rnd(20) == 0 ? -1 : rnd(4);
			}
			switch (rnd(20)) {
			case 0: case 1: case 2: break;                     /* same instant */
			case 3: g.now -= rnd(5000); break;                 /* the clock steps back */
			case 4: case 5: case 6: g.now += rnd(90000); break;
			default: g.now += 10000 * rnd(9); break;           /* calls exactly S old */
			}
			load(n, prov, &before);
			char *want = oracle(&before, &g, &expect);
			char *got_old = run_grant(o, prov, &g), *got_new = run_grant(n, prov, &g);
			load(o, prov, &after_old);
			load(n, prov, &after_new);
			char *d_exp = dump(&expect), *d_old = dump(&after_old), *d_new = dump(&after_new);
			char *d_before = dump(&before);
			int differ = !got_old || !got_new || strcmp(got_old, got_new) ||
			             strcmp(got_new, want) || strcmp(d_old, d_new) || strcmp(d_new, d_exp);
			if (differ)
				t_fail(__FILE__, __LINE__,
				       "%s step %d: grants 0009 %s / 0012 %s / oracle %s;"
				       " rows 0009:\n%s0012:\n%soracle:\n%s",
				       prov, step, got_old ? got_old : "(error)",
				       got_new ? got_new : "(error)", want, d_old, d_new, d_exp);
			t_checks++;
			check_limits(&before, &after_new, &g);
			check_waits(n, prov, &g, &waiting, &app_waiting);
			grants++;
			partial += got_new && strstr(got_new, "=0;") != NULL;
			full_block += before.n > 0 && !strcmp(d_before, d_new);
			free(want);
			free(got_old);
			free(got_new);
			free(d_exp);
			free(d_old);
			free(d_new);
			free(d_before);
			if (differ)
				break;   /* the states differ from here on: one report per provider */
		}
	}
	/* The scenarios reach the interesting cases: users refused, and grants
	 * that wrote nothing over existing rows. */
	fprintf(stderr, "%d grants, %d with a user granted 0, %d wrote nothing,"
	        " %d users told to wait, %d for the app\n", grants, partial, full_block, waiting,
	        app_waiting);
	T_CHECK(partial > 50);
	T_CHECK(full_block > 10);
	T_CHECK(waiting > 100);
	T_CHECK(app_waiting > 50);
}

/* ---- errors -------------------------------------------------------------------- */

static void test_errors(PGconn *o, PGconn *n)
{
	static const char *const bad[] = {
		"SELECT * FROM wsync_rate_grant(NULL, '{" U "}', '{1}', 5, '{}', '{}')",
		"SELECT * FROM wsync_rate_grant('x', '{" U "}', '{1,2}', 5, '{}', '{}')",
		"SELECT * FROM wsync_rate_grant('x', '{" U "}', '{1}', 5, '{1}', '{}')",
		"SELECT * FROM wsync_rate_grant('x', '{" U "}', '{1}', 5, '{}', '{}', '{1}', NULL)",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char m_old[256], m_new[256];
		char *s_old = sqlt_sqlstate(o, bad[i], 0, NULL, m_old, sizeof m_old);
		char *s_new = sqlt_sqlstate(n, bad[i], 0, NULL, m_new, sizeof m_new);
		T_EQ_STR(s_new, "22023");
		T_EQ_STR(s_new, s_old);
		T_EQ_STR(m_new, m_old);
		free(s_old);
		free(s_new);
	}
	/* Every user once, granted 0 included, none for NULL, nothing written
	 * for an empty batch. */
	T_EQ_INT(t_query_int(n, "SELECT count(*) FROM wsync_rate_grant('e', ARRAY['" U "', NULL,"
	                        " '" U "', gen_random_uuid()]::uuid[], '{1,1,1,0}', 5, '{}', '{}')",
	                     0, NULL), 2);
	T_EQ_INT(t_query_int(n, "SELECT count(*) FROM wsync_rate_grant('e2', '{}', '{}', 5,"
	                        " '{3}', '{60}')", 0, NULL), 0);
	T_EQ_INT(t_query_int(n, "SELECT count(*) FROM wsync_rate_calls WHERE provider = 'e2'", 0,
	                     NULL), 0);
	/* The attributes of 0009 are kept by CREATE OR REPLACE. */
	char *cfg = t_query_str(n, "SELECT array_to_string(proconfig, ';') FROM pg_proc"
	                           " WHERE proname = 'wsync_rate_grant'", 0, NULL);
	T_CONTAINS(cfg, "enable_seqscan=off");
	T_CONTAINS(cfg, "search_path=public, pg_temp");
	free(cfg);
}

/* ---- plans --------------------------------------------------------------------- */

static char *notices;
static size_t notices_len;

static void collect_notice(void *arg, const char *msg)
{
	size_t l = strlen(msg);
	(void)arg;
	notices = realloc(notices, notices_len + l + 1);
	memcpy(notices + notices_len, msg, l + 1);
	notices_len += l;
}

/* Every plan node of the grant's statements that reads wsync_rate_calls is
 * a primary-key probe: an index scan with scope in its condition, or the
 * TID scan of the delete.  Returns how many such nodes were seen. */
static int check_plans(const char *plans)
{
	int nodes = 0;
	const char *p = plans;
	while ((p = strstr(p, " on wsync_rate_calls"))) {
		const char *bol = p, *eol = strchr(p, '\n'), *next;
		char line[512], cond[2048];
		while (bol > plans && bol[-1] != '\n')
			bol--;
		snprintf(line, sizeof line, "%.*s", (int)((eol ? eol : p + strlen(p)) - bol), bol);
		next = eol ? eol + 1 : p + strlen(p);
		const char *ncl = strchr(next, '\n');
		snprintf(cond, sizeof cond, "%.*s", ncl ? (int)(ncl - next) : (int)strlen(next), next);
		p = next;
		if (strstr(line, "Insert on") || strstr(line, "Delete on"))
			continue;
		nodes++;
		if (strstr(line, "Tid Scan") ? !strstr(cond, "TID Cond: (ctid = ANY")
		                             : (!strstr(line, "Index Scan") &&
		                                !strstr(line, "Index Only Scan")) ||
		                                   !strstr(line, "using wsync_rate_calls_pkey") ||
		                                   !strstr(cond, "Index Cond: ((provider = ") ||
		                                   !strstr(cond, "(scope = "))
			t_fail(__FILE__, __LINE__, "not a primary-key probe:\n%s\n%s", line, cond);
	}
	return nodes;
}

static void test_plans(PGconn *n)
{
	/* 5,000 users with 20 calls each an hour ago in a window of 20 per
	 * hour (the batch's users are full), a daily app window with 5,000
	 * calls. */
	t_exec(n, "INSERT INTO wsync_rate_calls (provider, scope, seq, at)"
	          " SELECT 'big', 'user:' || md5(i::text)::uuid || ':3600', s,"
	          "        timestamptz 'epoch' + interval '1000000000 s' - interval '1 hour'"
	          "   FROM generate_series(1, 5000) i, generate_series(1, 20) s", 0, NULL);
	t_exec(n, "INSERT INTO wsync_rate_calls (provider, scope, seq, at)"
	          " SELECT 'big', 'app:86400', s, timestamptz 'epoch' + interval '1000000000 s'"
	          "        - interval '1 hour' + s * interval '1 ms'"
	          "   FROM generate_series(1, 5000) s", 0, NULL);
	t_exec(n, "ANALYZE wsync_rate_calls", 0, NULL);
	T_CHECK(t_query_int(n, "SELECT count(*) FROM wsync_rate_calls", 0, NULL) >= 100000);
	t_exec(n, "LOAD 'auto_explain'", 0, NULL);
	t_exec(n, "SET auto_explain.log_min_duration = 0", 0, NULL);
	t_exec(n, "SET auto_explain.log_nested_statements = on", 0, NULL);
	t_exec(n, "SET auto_explain.log_level = notice", 0, NULL);
	t_exec(n, "SET client_min_messages = notice", 0, NULL);
	PQsetNoticeProcessor(n, collect_notice, NULL);
	static const char *const modes[] = {"auto", "force_custom_plan", "force_generic_plan"};
	for (int m = 0; m < 3; m++) {
		const char *p[1] = {modes[m]};
		t_exec(n, "SELECT set_config('plan_cache_mode', $1, false)", 1, p);
		for (int rep = 0; rep < 7; rep++) {
			char hours[16];
			snprintf(hours, sizeof hours, "%d", m * 7 + rep + 1);
			free(notices);
			notices = NULL;
			notices_len = 0;
			/* 20 calls in a window of 20 per hour: each grant records one
			 * call and deletes the oldest. */
			T_EQ_INT(t_query_int(n, "SELECT sum(granted) FROM wsync_rate_grant('big',"
			                        " ARRAY(SELECT md5(i::text)::uuid FROM generate_series(1, 95) i),"
			                        " array_fill(1, ARRAY[95]), 0, '{10000}', '{86400}',"
			                        " '{20}', '{3600}', timestamptz 'epoch'"
			                        " + interval '1000000000 s' + $1::int * interval '1 hour')",
			                     1, (const char *[]){hours}),
			         95);
			T_CHECK(notices != NULL);
			/* The last call, the window's range, the TID delete. */
			T_CHECK(notices && check_plans(notices) >= 3);
			T_CHECK(notices && strstr(notices, "Index Scan Backward using wsync_rate_calls_pkey"));
			T_CHECK(notices && strstr(notices, "Tid Scan on wsync_rate_calls"));
			/* 0015's wait for the same users under one call an hour: the
			 * call just granted holds each of them for the whole hour.
			 * Two probes per window (the last call, the L-th newest). */
			free(notices);
			notices = NULL;
			notices_len = 0;
			T_EQ_INT(t_query_int(n, "SELECT count(*) FILTER (WHERE wait_ms = 3600000"
			                        " AND app_wait_ms = 0) FROM wsync_rate_wait('big',"
			                        " ARRAY(SELECT md5(i::text)::uuid FROM generate_series(1, 95) i),"
			                        " '{10000}', '{86400}', '{1}', '{3600}', timestamptz 'epoch'"
			                        " + interval '1000000000 s' + $1::int * interval '1 hour')",
			                     1, (const char *[]){hours}),
			         95);
			T_CHECK(notices && check_plans(notices) >= 2);
		}
	}
	PQsetNoticeProcessor(n, NULL, NULL);
	free(notices);
	notices = NULL;
	t_exec(n, "RESET client_min_messages", 0, NULL);
	/* The deletes kept the newest 20 of each user's scope. */
	T_EQ_INT(t_query_int(n, "SELECT max(c) FROM (SELECT count(*) AS c FROM wsync_rate_calls"
	                        " WHERE provider = 'big' AND scope LIKE 'user:%:3600'"
	                        " GROUP BY scope) s", 0, NULL), 20);
}

int main(void)
{
	PGconn *db = t_db(), *o;
	char *dir_old = sqlt_migrations_upto(11), *dir_new = sqlt_migrations_upto(9999);
	t_exec(db, "CREATE DATABASE wsync_0011", 0, NULL);
	o = sqlt_db_named("wsync_0011");
	sqlt_migrate_dir(o, dir_old);
	sqlt_migrate_dir(db, dir_new);
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	test_same_as_0009(o, db);
	test_errors(o, db);
	test_plans(db);
	PQfinish(o);
	PQfinish(db);
	free(dir_old);
	free(dir_new);
	return t_done();
}
