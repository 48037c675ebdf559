/*
 * test_rest_provider.c -- the guide's REST provider (rest_provider.c)
 * through the test host, answered by a responder (no server): every
 * operation sends the documented request, creates link the id of the
 * answer (a number as its digits, a string as is), ids in paths are escaped,
 * a delete answered 404 is done, and an answer without an id is an error.
 *
 * Usage: test_rest_provider REST_PROVIDER_SO
 */
#include <wsync/testhost.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			failures++;                                             \
		}                                                               \
	} while (0)

#define BASE "https://rest.invalid"

/* The next answer, and what the plugin sent. */
typedef struct script {
	int status;
	const char *body;
	char method[8];
	char url[256];
	char sent[4096];
	int calls;
} script;

static void respond(void *ctx, const char *url, const wsync_http_request *req,
                    wsync_testhost_answer *a)
{
	script *s = ctx;
	s->calls++;
	snprintf(s->method, sizeof s->method, "%s", req->method);
	snprintf(s->url, sizeof s->url, "%s", url);
	snprintf(s->sent, sizeof s->sent, "%.*s", (int)req->body_len, req->body ? req->body : "");
	a->status = s->status;
	a->body = s->body;
	a->body_len = s->body ? strlen(s->body) : 0;
}

static int32_t run(wsync_testhost *th, script *s, int op, const wsync_testhost_request *in,
                   int status, const char *answer)
{
	s->status = status;
	s->body = answer;
	s->calls = 0;
	s->sent[0] = s->method[0] = s->url[0] = '\0';
	return wsync_testhost_call(th, op, in);
}

static int has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

int main(int argc, char **argv)
{
	char err[1024];
	script s = {0};
	wsync_testhost *th;
	const wsync_workout_entity *w;
	const wsync_scheduled_entity *sch;
	const wsync_testhost_outcome *r;
	int32_t st;

	if (argc != 2) {
		fprintf(stderr, "usage: %s REST_PROVIDER_SO\n", argv[0]);
		return 2;
	}
	th = wsync_testhost_load(argv[1], "[provider]\nbase_url = " BASE "\n", err, sizeof err);
	if (!th) {
		fprintf(stderr, "FAIL: load: %s\n", err);
		return 1;
	}
	wsync_testhost_set_responder(th, respond, &s);
	r = wsync_testhost_result(th);
	w = wsync_testhost_workout(th, &(wsync_workout_entity){
	        .id = "11111111-1111-4111-8111-111111111111", .name = "Over \"unders\"",
	        .sport = "bike", .workout_text = "Warmup\n- 10m 60%\n\nMain Set 2x\n"
	                                         "- 2m 105%\n- 1m Z1\n"}, err, sizeof err);
	sch = wsync_testhost_scheduled(th, &(wsync_scheduled_entity){
	        .id = "22222222-2222-4222-8222-222222222222", .scheduled_date = "2026-04-01",
	        .scheduled_time = "06:30:00"}, w, err, sizeof err);
	if (!w || !sch) {
		fprintf(stderr, "FAIL: entities: %s\n", err);
		return 1;
	}

	/* create workout: POST, the body says what the user wrote, the numeric
	 * id of the answer becomes the link as its digits */
	st = run(th, &s, WSYNC_TESTHOST_SYNC_WORKOUT, &(wsync_testhost_request){.workout = w},
	         201, "{\"id\": 77, \"name\": \"x\"}");
	CHECK(st == WSYNC_OK, "create workout: %d %s", st, r->message);
	CHECK(!strcmp(s.method, "POST") && !strcmp(s.url, BASE "/v1/workouts"), "%s %s",
	      s.method, s.url);
	CHECK(has(s.sent, "\"name\":\"Over \\\"unders\\\"\""), "name not escaped: %s", s.sent);
	CHECK(has(s.sent, "\"external_id\":\"11111111-1111-4111-8111-111111111111\""), "%s",
	      s.sent);
	CHECK(has(s.sent, "\"seconds\":600") && has(s.sent, "\"low\":105"), "steps: %s", s.sent);
	{ /* 1 + 2 x 2 expanded steps */
		int n = 0;
		for (const char *p = s.sent; (p = strstr(p, "\"seconds\"")); p++)
			n++;
		CHECK(n == 5, "%d steps sent, expected 5 (repeat expanded)", n);
	}
	CHECK(r->provider_id && !strcmp(r->provider_id, "77"), "link '%s'",
	      r->provider_id ? r->provider_id : "(null)");

	/* update workout: PUT to its id, no new link */
	st = run(th, &s, WSYNC_TESTHOST_SYNC_WORKOUT,
	         &(wsync_testhost_request){.workout = w, .workout_provider_id = "77"}, 200, "{}");
	CHECK(st == WSYNC_OK && r->operation == WSYNC_OP_UPDATE, "update workout: %d", st);
	CHECK(!strcmp(s.method, "PUT") && !strcmp(s.url, BASE "/v1/workouts/77"), "%s %s",
	      s.method, s.url);
	CHECK(r->provider_id == NULL, "update set a link '%s'", r->provider_id);

	/* create calendar entry: the workout's link in the body, a string id
	 * with a slash as the new link */
	st = run(th, &s, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	         &(wsync_testhost_request){.workout = w, .scheduled = sch,
	                                   .workout_provider_id = "77"},
	         201, "{\"id\": \"cal/9\"}");
	CHECK(st == WSYNC_OK, "create entry: %d %s", st, r->message);
	CHECK(!strcmp(s.method, "POST") && !strcmp(s.url, BASE "/v1/calendar"), "%s %s",
	      s.method, s.url);
	CHECK(has(s.sent, "\"workout_id\":\"77\"") && has(s.sent, "\"date\":\"2026-04-01\"") &&
	      has(s.sent, "\"time\":\"06:30:00\""), "entry body: %s", s.sent);
	CHECK(r->provider_id && !strcmp(r->provider_id, "cal/9"), "entry link '%s'",
	      r->provider_id ? r->provider_id : "(null)");

	/* update and delete the entry: its id is one escaped path segment */
	st = run(th, &s, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	         &(wsync_testhost_request){.workout = w, .scheduled = sch,
	                                   .workout_provider_id = "77",
	                                   .scheduled_provider_id = "cal/9"}, 200, "{}");
	CHECK(st == WSYNC_OK && !strcmp(s.method, "PUT") &&
	      !strcmp(s.url, BASE "/v1/calendar/cal%2F9"), "update entry: %d %s %s", st,
	      s.method, s.url);
	st = run(th, &s, WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT,
	         &(wsync_testhost_request){.scheduled_provider_id = "cal/9"}, 204, NULL);
	CHECK(st == WSYNC_OK && !strcmp(s.method, "DELETE") &&
	      !strcmp(s.url, BASE "/v1/calendar/cal%2F9") && s.sent[0] == '\0',
	      "delete entry: %d %s %s", st, s.method, s.url);

	/* delete workout answered 404: already gone, done */
	st = run(th, &s, WSYNC_TESTHOST_DELETE_WORKOUT,
	         &(wsync_testhost_request){.workout_provider_id = "77"}, 404, "{}");
	CHECK(st == WSYNC_OK && !strcmp(s.url, BASE "/v1/workouts/77"), "delete 404: %d %s", st,
	      s.url);

	/* a create whose answer has no id: provider_error quoting the answer */
	st = run(th, &s, WSYNC_TESTHOST_SYNC_WORKOUT, &(wsync_testhost_request){.workout = w},
	         201, "{\"ok\":true}\n");
	CHECK(st == WSYNC_E_PROVIDER && r->error_type && !strcmp(r->error_type, "provider_error"),
	      "no id: %d", st);
	CHECK(has(r->message, "no id in {\"ok\":true}") && r->provider_id == NULL, "message '%s'",
	      r->message);

	/* a 422 stays the host's verdict */
	st = run(th, &s, WSYNC_TESTHOST_SYNC_WORKOUT, &(wsync_testhost_request){.workout = w},
	         422, "{\"error\":\"bad\"}");
	CHECK(st == WSYNC_E_INVALID && has(r->message, "HTTP 422"), "422: %d '%s'", st,
	      r->message);

	wsync_testhost_free(th);
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("rest_provider: create/update/delete of workouts and calendar entries ok\n");
	return 0;
}
