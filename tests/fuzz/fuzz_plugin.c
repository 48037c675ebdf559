/*
 * fuzz_plugin.c -- libFuzzer target for a provider plugin's handling of the
 * provider's answers, through the SDK's test host.  Built once per plugin
 * (tests/fuzz/plugins/meson.build): FUZZ_PLUGIN_SO is the .so,
 * FUZZ_PLUGIN_INI its conf.d text with '|' for line ends; the environment variable WSYNC_FUZZ_PLUGIN overrides the
 * .so (e.g. an installed or hand-built one), and WSYNC_FUZZ_VERBOSE=1
 * prints each input's outcome (to check what a new seed reaches).
 *
 * The plugin is loaded with wsync_testhost_load() and its HTTP calls are
 * answered from the input by wsync_testhost_set_responder(): no socket, so
 * thousands of runs a second, and everything after the socket (header
 * capture, Retry-After, size limits, classification, masking) is the core's
 * real code.  Input format (text, so seeds are readable):
 *
 *   line 1      operation: its first byte modulo 8 picks one of ops[] below
 *               (the rest of the line is a comment)
 *   then        the answers to the plugin's calls, in order, separated by a
 *               line "%%".  Each answer: a status line ("200"), header lines
 *               ("Retry-After: 30"), an empty line, the body.  A call after
 *               the last answer gets no answer (a transport error).
 *
 * Checks, beyond the sanitizers (abort() when one fails):
 *   - the status is one of the WSYNC_* codes, and an error has a message;
 *   - the access token appears in no message, log line or transport error,
 *     whatever the provider echoes (a provider id is the provider's data,
 *     stored as given: not checked);
 *   - a successful create leaves a non-empty provider id, and any provider
 *     id set is printable ASCII (it is stored and put into later URLs);
 *   - once the answers run out, the plugin soon stops calling (at most
 *     MAX_UNANSWERED calls without an answer): an operation cannot loop.
 */
#include <wsync/testhost.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "fuzz-access-token-Zq81"
/* Fixed ids, so that an answer can name them (Wahoo's lookups). */
#define WORKOUT_ID "00000000-0000-4000-8000-00000000aaaa"
#define SCHEDULED_ID "00000000-0000-4000-8000-00000000bbbb"
#define MAX_ANSWERS 64
#define MAX_UNANSWERED 4

typedef struct op {
	int32_t op;
	int with_workout_link, with_scheduled_link;
	int32_t attempt;
} op;

static const op ops[8] = {
	{WSYNC_TESTHOST_SYNC_WORKOUT, 0, 0, 1},               /* create */
	{WSYNC_TESTHOST_SYNC_WORKOUT, 1, 0, 1},               /* update */
	{WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT, 1, 0, 1},     /* create */
	{WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT, 1, 1, 1},     /* update */
	{WSYNC_TESTHOST_DELETE_WORKOUT, 1, 0, 1},
	{WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT, 1, 1, 1},
	{WSYNC_TESTHOST_SYNC_WORKOUT, 0, 0, 2},               /* create, retry */
	{WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT, 1, 0, 2},     /* create, retry */
};

/* The answers cut out of one input. */
typedef struct script {
	char *buf;                      /* the input, NUL-terminated, cut up */
	struct {
		long status;
		char *headers;
		char *body;
		size_t body_len;
	} a[MAX_ANSWERS];
	size_t n, next;
} script;

static char *find(char *s, char *end, const char *needle)
{
	size_t n = strlen(needle);
	for (; s + n <= end; s++)
		if (!memcmp(s, needle, n))
			return s;
	return NULL;
}

/* One answer from [s, end): status line, headers, blank line, body. */
static void cut_answer(script *sc, char *s, char *end)
{
	char *nl = memchr(s, '\n', (size_t)(end - s)), *blank;

	if (sc->n == MAX_ANSWERS)
		return;
	sc->a[sc->n].status = strtol(s, NULL, 10);
	sc->a[sc->n].headers = NULL;
	sc->a[sc->n].body = end;
	sc->a[sc->n].body_len = 0;
	if (nl) {
		char *h = nl + 1;
		blank = h < end && *h == '\n' ? h - 1 : find(h, end, "\n\n");
		if (!blank) {
			*end = '\0';
			sc->a[sc->n].headers = h;
		} else {
			blank[1] = '\0';        /* headers keep their last '\n' */
			sc->a[sc->n].headers = h;
			sc->a[sc->n].body = blank + 2;
			sc->a[sc->n].body_len = (size_t)(end - blank - 2);
		}
	}
	sc->n++;
}

static void cut_script(script *sc, char *s, char *end)
{
	for (;;) {
		char *sep = find(s, end, "\n%%\n");
		if (sep)
			*sep = '\0';
		cut_answer(sc, s, sep ? sep : end);
		if (!sep)
			break;
		s = sep + 4;
	}
}

static void respond(void *ctx, const char *url, const wsync_http_request *req,
                    wsync_testhost_answer *answer)
{
	script *sc = ctx;
	(void)url;
	(void)req;
	if (sc->next >= sc->n) {
		sc->next++;                 /* counted: no answer */
		return;
	}
	answer->status = (int32_t)sc->a[sc->next].status;
	answer->headers = sc->a[sc->next].headers;
	answer->body = sc->a[sc->next].body;
	answer->body_len = sc->a[sc->next].body_len;
	sc->next++;
}

static int leaks_secret(const char *s)
{
	return s && strstr(s, TOKEN);
}

static void check(wsync_testhost *th, int32_t st, const script *sc)
{
	const wsync_testhost_outcome *r = wsync_testhost_result(th);

	if (st < WSYNC_OK || st > WSYNC_E_INVALID_WORKOUT || st != r->status)
		abort();
	if (st != WSYNC_OK && st != WSYNC_NOT_APPLICABLE && (!r->message || !*r->message))
		abort();
	if (leaks_secret(r->message))
		abort();
	for (size_t i = 0; i < wsync_testhost_log_count(th); i++)
		if (leaks_secret(wsync_testhost_log_at(th, i)->text))
			abort();
	for (size_t i = 0; i < wsync_testhost_http_count(th); i++)
		if (leaks_secret(wsync_testhost_http_at(th, i)->error))
			abort();
	/* A create that succeeded must leave the link (an update may keep the
	 * stored one); any id set is printable. */
	if (st == WSYNC_OK && r->called && r->operation == WSYNC_OP_CREATE &&
	    (!r->provider_id || !*r->provider_id))
		abort();
	for (const char *id = r->provider_id; id && *id; id++)
		if ((unsigned char)*id < 0x21 || (unsigned char)*id > 0x7E)
			abort();
	if (sc->next > sc->n + MAX_UNANSWERED || wsync_testhost_http_count(th) < sc->next)
		abort();
}

/* FUZZ_PLUGIN_INI with its '|' turned into line ends. */
static const char *plugin_ini(void)
{
	static char ini[512];
	if (!ini[0]) {
		snprintf(ini, sizeof ini, "%s", FUZZ_PLUGIN_INI);
		for (char *p = ini; *p; p++)
			if (*p == '|')
				*p = '\n';
	}
	return ini;
}

static const char *plugin_path(void)
{
	const char *env = getenv("WSYNC_FUZZ_PLUGIN");
	return env && *env ? env : FUZZ_PLUGIN_SO;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void *pinned;
	char err[1024];
	script sc;
	wsync_testhost *th;
	const wsync_workout_entity *w;
	const wsync_scheduled_entity *s;
	const op *o;
	char *nl;
	int32_t st;

	if (size == 0)
		return 0;
	/* Held open for the whole run, so that the test host's dlclose() never
	 * unmaps the plugin: libFuzzer keeps pointers to its coverage counters,
	 * and loading it again costs time.  The plugin's state is per instance
	 * (init/destroy), not per mapping. */
	if (!pinned && !(pinned = dlopen(plugin_path(), RTLD_NOW))) {
		fprintf(stderr, "fuzz_plugin: %s\n", dlerror());
		abort();
	}
	wsync_testhost_set_clock(1767225600); /* 2026-01-01T00:00:00Z */
	/* A new instance per input, so no state (a plugin's cache) carries
	 * over and every failure replays from its input alone. */
	th = wsync_testhost_load(plugin_path(), plugin_ini(), err, sizeof err);
	if (!th) {
		fprintf(stderr, "fuzz_plugin: %s\n", err);
		abort();
	}
	o = &ops[data[0] % 8];
	memset(&sc, 0, sizeof sc);
	sc.buf = malloc(size + 1);
	if (!sc.buf)
		abort();
	memcpy(sc.buf, data, size);
	sc.buf[size] = '\0';
	nl = memchr(sc.buf, '\n', size);
	if (nl)
		cut_script(&sc, nl + 1, sc.buf + size);

	w = wsync_testhost_workout(th, &(wsync_workout_entity){
		.id = WORKOUT_ID, .name = "Fuzz intervals", .description = "over-unders", .sport = "cycling",
		.workout_text = "Warmup\n- 10m ramp 50-75% 90rpm\nMain Set 3x\n- 5m 95-105%\n"
		                "- Recovery 3m 55% spin easy\nCooldown\n- 5m 60%\n- Let it go 2km freeride\n"},
		err, sizeof err);
	s = w ? wsync_testhost_scheduled(th, &(wsync_scheduled_entity){
		.id = SCHEDULED_ID, .scheduled_date = "2026-01-05", .scheduled_time = "06:30:00"}, w, err, sizeof err)
	      : NULL;
	if (!w || !s) {
		fprintf(stderr, "fuzz_plugin: %s\n", err);
		abort();
	}
	wsync_testhost_set_token(th, TOKEN);
	wsync_testhost_set_responder(th, respond, &sc);
	st = wsync_testhost_call(th, o->op, &(wsync_testhost_request){
		.workout = w, .scheduled = s,
		.workout_provider_id = o->with_workout_link ? "12345" : NULL,
		.scheduled_provider_id = o->with_scheduled_link ? "67890" : NULL,
		.attempt = o->attempt});
	if (getenv("WSYNC_FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_plugin: op %d -> status %d, %zu calls, %zu answers, "
		        "provider id %s, message: %s\n", data[0] % 8, st,
		        wsync_testhost_http_count(th), sc.n,
		        wsync_testhost_result(th)->provider_id ? wsync_testhost_result(th)->provider_id
		                                               : "(none)",
		        wsync_testhost_result(th)->message);
	check(th, st, &sc);
	wsync_testhost_free(th);
	free(sc.buf);
	return 0;
}
