/*
 * test_helpers.c -- the ABI 1.1 host helpers as a plugin uses them, through
 * the test host: a plugin with no init() reaching the host from the request,
 * the JSON writer's escaping and numbers, reading ids that are strings or
 * numbers (json-c gives "" for the number 77 with get_string_len: we must
 * not), path segments that cannot climb or add a query, excerpts that cut
 * no character in half, every message made one line of valid UTF-8, the
 * expanded-step iterator, the daemon's 404 rules, and the static inline
 * helpers every plugin shares: sport names and when to reconcile.
 *
 *   test_helpers HELPERS_FIXTURE_SO
 */
#include "sdk_test.h"

#include <wsync/plugin_util.h>

typedef struct script {
	struct { int32_t status; const char *body; } a[4];
	int n, calls;
	char url[512], method[16], body[4096];
} script;

static void respond(void *ctx, const char *url, const wsync_http_request *req,
                    wsync_testhost_answer *out)
{
	script *s = ctx;
	int i = s->calls < s->n ? s->calls : s->n - 1;
	s->calls++;
	snprintf(s->url, sizeof s->url, "%s", url);
	snprintf(s->method, sizeof s->method, "%s", req->method);
	snprintf(s->body, sizeof s->body, "%.*s", (int)req->body_len, req->body ? req->body : "");
	out->status = s->a[i].status;
	out->headers = "Content-Type: application/json\r\n";
	out->body = s->a[i].body;
	out->body_len = strlen(s->a[i].body);
}

static void answer(script *s, int32_t status, const char *body)
{
	memset(s, 0, sizeof *s);
	s->a[0].status = status;
	s->a[0].body = body;
	s->n = 1;
}

static int32_t sync_w(wsync_testhost *th, const wsync_workout_entity *w, const char *link)
{
	return wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                           &(wsync_testhost_request){.workout = w,
	                                                     .workout_provider_id = link});
}

int main(int argc, char **argv)
{
	char err[1024], expect[2048];
	wsync_testhost *th;
	const wsync_workout_entity *w;
	const wsync_scheduled_entity *sw;
	const wsync_testhost_outcome *r;
	script sc;

	if (argc < 2) {
		fprintf(stderr, "usage: test_helpers HELPERS_FIXTURE_SO\n");
		return 2;
	}
	th = wsync_testhost_load(sdk_stage_plugin(argv[1], "helpers_fixture"),
	                         "[provider]\nbase_url = http://127.0.0.1:9\n"
	                         "allow_insecure_http = true\n", err, sizeof err);
	if (!th) {
		fprintf(stderr, "load: %s\n", err);
		return 1;
	}
	CHECK_INT(wsync_testhost_plugin(th)->abi_minor, WSYNC_PLUGIN_ABI_MINOR);
	CHECK_INT(wsync_testhost_plugin(th)->struct_size, sizeof(wsync_plugin));
	wsync_testhost_set_responder(th, respond, &sc);
	r = wsync_testhost_result(th);

	/* 1 + 3 x 2 + 1 = 8 steps expanded; a name that needs every escape. */
	w = wsync_testhost_workout(th, &(wsync_workout_entity){
		.id = "6f1c0e3e-0000-4000-8000-000000000001",
		.name = "Q \"x\" \\ \n\t\x01 \xc3\xa9 \xff end",
		.workout_text = "Warmup\n- 5m 50%\n\nMain Set 3x\n- 1m 100%\n- 30s 50%\n\n"
		                "Cooldown\n- 4m 60%\n"}, err, sizeof err);
	CHECK(w != NULL);
	if (!w)
		return sdk_done();
	CHECK_INT(w->structure->expanded_steps, 8);
	answer(&sc, 201, "{\"data\":{\"id\":77}}");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_OK);
	CHECK_STR(r->provider_id, "77");
	CHECK_STR(sc.method, "POST");
	snprintf(expect, sizeof expect,
	         "{\"name\":\"Q \\\"x\\\" \\\\ \\u000a\\u0009\\u0001 \xc3\xa9 \xef\xbf\xbd end\","
	         "\"key\":\"6f1c0e3e-0000-4000-8000-000000000001\",\"none\":null,"
	         "\"ratio\":0.1,\"reconcile\":false,\"steps\":["
	         "{\"i\":0,\"pass\":0,\"s\":300},"
	         "{\"i\":1,\"pass\":1,\"s\":60},{\"i\":2,\"pass\":1,\"s\":30},"
	         "{\"i\":3,\"pass\":2,\"s\":60},{\"i\":4,\"pass\":2,\"s\":30},"
	         "{\"i\":5,\"pass\":3,\"s\":60},{\"i\":6,\"pass\":3,\"s\":30},"
	         "{\"i\":7,\"pass\":0,\"s\":240}]}");
	CHECK_STR(sc.body, expect);

	/* ids as strings, decimals as written, nothing for null or non-JSON */
	answer(&sc, 200, "{\"data\":{\"id\":\"abc-1\"}}");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_OK);
	CHECK_STR(r->provider_id, "abc-1");
	answer(&sc, 200, " {\"data\": {\"id\": 12.50}}\n");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_OK);
	CHECK_STR(r->provider_id, "12.50");
	answer(&sc, 200, "{\"data\":{\"id\":9007199254740993}}");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_OK);
	CHECK_STR(r->provider_id, "9007199254740993");
	answer(&sc, 200, "{\"data\":{\"id\":null}}");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_E_PROVIDER);
	CHECK_STR(r->error_type, "provider_error");
	answer(&sc, 200, "{\"data\":{\"id\":1}} trailing");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_E_PROVIDER);
	CHECK_HAS(r->message, "no data.id in the answer: {\"data\":{\"id\":1}} tra");
	/* the excerpt stops before a character the limit would cut in two, and
	 * the message is one line of valid UTF-8 */
	answer(&sc, 200, "a\n\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_E_PROVIDER);
	CHECK_STR(r->message, "no data.id in the answer: a \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");

	/* An update whose object is gone: created again, as wsyncd does. */
	memset(&sc, 0, sizeof sc);
	sc.a[0].status = 404;
	sc.a[0].body = "{}";
	sc.a[1].status = 201;
	sc.a[1].body = "{\"data\":{\"id\":\"new-5\"}}";
	sc.n = 2;
	CHECK_INT(sync_w(th, w, "old-4"), WSYNC_OK);
	CHECK_INT(sc.calls, 2);
	CHECK_INT(r->recreated, 1);
	CHECK_INT(r->operation, WSYNC_OP_CREATE);
	CHECK_STR(r->provider_id, "new-5");
	/* ...while a create answered 404 stays a provider_error */
	answer(&sc, 404, "{}");
	CHECK_INT(sync_w(th, w, NULL), WSYNC_E_NOT_FOUND);
	CHECK_STR(r->error_type, "provider_error");
	CHECK_INT(r->recreated, 0);

	/* path segments: no '/', '?', '#', and no dot-segment */
	sw = wsync_testhost_scheduled(th, &(wsync_scheduled_entity){
		.scheduled_date = "2024-05-01"}, w, err, sizeof err);
	CHECK(sw != NULL);
	answer(&sc, 200, "{\"list\":[{\"id\":1},{\"id\":\"z9\"}]}");
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.workout = w, .scheduled = sw,
	                                    .workout_provider_id = "a/b?c#d e"}), WSYNC_OK);
	CHECK_STR(sc.url, "http://127.0.0.1:9/items/a%2Fb%3Fc%23d%20e/on/2024-05-01");
	CHECK_STR(r->provider_id, "2:z9");
	answer(&sc, 204, "");
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_WORKOUT,
	          &(wsync_testhost_request){.workout_provider_id = ".."}), WSYNC_OK);
	CHECK_STR(sc.url, "http://127.0.0.1:9/items/%2E%2E");
	/* a delete answered 404 is done, as wsyncd counts it */
	answer(&sc, 404, "{\"error\":\"gone\"}");
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_WORKOUT,
	          &(wsync_testhost_request){.workout_provider_id = "x1"}), WSYNC_OK);
	CHECK(r->error_type == NULL);

	/* set_error cleans what a plugin copies in */
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.scheduled_provider_id = "p1"}), WSYNC_E_INVALID);
	CHECK_STR(r->message, "bad answer ??p1");
	CHECK_STR(r->error_type, "invalid_request");

	/* one sport text, one meaning: case, spaces, tabs, '-' and '_' do not
	 * count; the first matching key wins; nothing else matches */
	{
		static const wsync_sport_name t[] = {{"trailrun", "RUN"}, {"run", "RUN2"},
		                                     {"bike", "BIKE"}};
		CHECK_STR(wsync_sport_lookup("Trail Run", t, 3, "X"), "RUN");
		CHECK_STR(wsync_sport_lookup("trail_run", t, 3, "X"), "RUN");
		CHECK_STR(wsync_sport_lookup(" TRAIL-\tRUN ", t, 3, "X"), "RUN");
		CHECK_STR(wsync_sport_lookup("run", t, 3, "X"), "RUN2");
		CHECK_STR(wsync_sport_lookup("BIKE", t, 3, "X"), "BIKE");
		CHECK_STR(wsync_sport_lookup("bikes", t, 3, "X"), "X");
		CHECK_STR(wsync_sport_lookup("bik", t, 3, "X"), "X");
		CHECK_STR(wsync_sport_lookup("", t, 3, "X"), "X");
		CHECK(wsync_sport_lookup(NULL, t, 3, NULL) == NULL);
	}
	/* reconcile: when the host says so, or on any attempt after the first */
	{
		wsync_request q = {.struct_size = sizeof q, .attempt = 1};
		CHECK_INT(wsync_must_reconcile(&q), 0);
		q.reconcile = 1;
		CHECK_INT(wsync_must_reconcile(&q), 1);
		q.reconcile = 0;
		q.attempt = 2;
		CHECK_INT(wsync_must_reconcile(&q), 1);
		q.struct_size = offsetof(wsync_request, reconcile); /* a 1.0 host */
		q.attempt = 1;
		q.reconcile = 1;
		CHECK_INT(wsync_must_reconcile(&q), 0);
	}

	wsync_testhost_free(th);
	return sdk_done();
}
