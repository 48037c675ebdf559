/*
 * test_testhost.c -- libwsync-testhost as a plugin author uses it: the
 * example plugin called with built entities, then a plugin that talks HTTP
 * to a scripted server on 127.0.0.1, with the exchanges and the core's
 * classification recorded.  Links only libwsync-testhost.
 *
 * usage: test_testhost EXAMPLE_SO HTTP_FIXTURE_SO
 */
#include "sdk_test.h"

#include "mock_server.h"

#define WORKOUT_TEXT "Warmup\n- 10m ramp 50-75% 90rpm\n\nMain Set 5x\n- 3m 120% 100rpm\n" \
                     "- Recovery 2m Z1 85rpm\n\nCooldown\n- 8m 50%\n"

static void example_loads(const char *so)
{
	char err[1024] = "";
	wsync_testhost *th = wsync_testhost_load(so, "[example]\nid_prefix = ex-\n", err,
	                                         sizeof err);
	const wsync_plugin *d;

	CHECK_STR(err, "");
	CHECK(th != NULL);
	if (!th)
		return;
	d = wsync_testhost_plugin(th);
	CHECK_STR(d->name, "example");
	CHECK_STR(d->version, "1.0.0");
	CHECK_INT(d->abi_major, WSYNC_PLUGIN_ABI_MAJOR);
	CHECK_INT(d->abi_minor, WSYNC_PLUGIN_ABI_MINOR);
	CHECK_STR(wsync_testhost_config(th, "example", "id_prefix"), "ex-");
	CHECK_INT(wsync_testhost_log_count(th), 0);
	CHECK_INT(wsync_testhost_result(th)->status, 0);
	CHECK_STR(wsync_testhost_result(th)->message, "");
	wsync_testhost_free(th);

	/* No INI at all: [provider] plugin is implied, the defaults apply. */
	th = wsync_testhost_load(so, NULL, err, sizeof err);
	CHECK(th != NULL);
	CHECK_STR(wsync_testhost_config(th, "example", "id_prefix"), "ex-");
	CHECK_STR(wsync_testhost_config(th, "provider", "plugin"), "example");
	wsync_testhost_free(th);
}

static void example_operations(const char *so)
{
	char err[1024] = "", expect[256];
	wsync_testhost *th = wsync_testhost_load(so, "[provider]\nplugin = example\n", err,
	                                         sizeof err);
	const wsync_workout_entity *w;
	const wsync_scheduled_entity *s;
	const wsync_testhost_outcome *r;
	const wsync_testhost_log *l;

	CHECK(th != NULL);
	if (!th) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	w = wsync_testhost_workout(th, &(wsync_workout_entity){
		.id = "11111111-1111-4111-8111-111111111111", .name = "Over-unders",
		.sport = "bike", .workout_text = WORKOUT_TEXT}, err, sizeof err);
	CHECK(w != NULL);
	if (!w)
		return;
	CHECK_INT(w->struct_size, sizeof(wsync_workout_entity));
	CHECK_STR(w->user_id, WSYNC_TESTHOST_USER);
	CHECK(w->updated_at > 0);
	CHECK(w->structure != NULL);
	CHECK_INT(w->structure->expanded_steps, 12);
	CHECK_INT((long long)w->structure->total_seconds, 43 * 60);

	/* sync_workout, never synced: a create with an "ex-<id>" provider id. */
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_OK);
	r = wsync_testhost_result(th);
	CHECK_INT(r->called, 1);
	CHECK_INT(r->operation, WSYNC_OP_CREATE);
	CHECK_STR(r->provider_id, "ex-11111111-1111-4111-8111-111111111111");
	CHECK(r->error_type == NULL);
	CHECK_STR(r->message, "");
	CHECK_INT(wsync_testhost_log_count(th), 1);
	l = wsync_testhost_log_at(th, 0);
	CHECK_INT(l->level, WSYNC_LOG_INFO);
	snprintf(expect, sizeof expect, "create workout %s for user %s (attempt 1)", w->id,
	         WSYNC_TESTHOST_USER);
	CHECK_STR(l->text, expect);
	CHECK(wsync_testhost_log_at(th, 1) == NULL);
	CHECK_INT(wsync_testhost_http_count(th), 0);

	/* Linked already: an update; attempt and user as given. */
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	          &(wsync_testhost_request){.workout = w, .workout_provider_id = "ex-old",
	                                    .attempt = 3, .user_id = "u-2"}), WSYNC_OK);
	r = wsync_testhost_result(th);
	CHECK_INT(r->operation, WSYNC_OP_UPDATE);
	snprintf(expect, sizeof expect, "update workout %s for user u-2 (attempt 3)", w->id);
	CHECK_STR(wsync_testhost_log_at(th, 1)->text, expect);

	/* A scheduled workout of that workout. */
	s = wsync_testhost_scheduled(th, &(wsync_scheduled_entity){
		.scheduled_date = "2026-12-01", .scheduled_time = "07:30:00"}, w, err, sizeof err);
	CHECK(s != NULL);
	CHECK_STR(s->workout_id, w->id);
	CHECK_INT(strlen(s->id), 36);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.workout = w, .scheduled = s,
	                                    .workout_provider_id = r->provider_id}), WSYNC_OK);
	r = wsync_testhost_result(th);
	snprintf(expect, sizeof expect, "ex-%s", s->id);
	CHECK_STR(r->provider_id, expect);
	CHECK(wsync_testhost_log_find(th, "create scheduled workout") != NULL);

	/* Deletes: by provider id; none set means wsyncd would not call. */
	wsync_testhost_clear(th);
	CHECK_INT(wsync_testhost_log_count(th), 0);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_WORKOUT,
	          &(wsync_testhost_request){.workout_provider_id = "ex-gone"}), WSYNC_OK);
	r = wsync_testhost_result(th);
	CHECK_INT(r->operation, WSYNC_OP_DELETE);
	CHECK(r->provider_id == NULL);
	CHECK_HAS(wsync_testhost_log_at(th, 0)->text, "delete workout ex-gone for user");
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.scheduled_provider_id = "ex-s"}), WSYNC_OK);
	CHECK_HAS(wsync_testhost_log_at(th, 1)->text, "delete scheduled workout ex-s");
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_WORKOUT,
	          &(wsync_testhost_request){.workout = w}), WSYNC_NOT_APPLICABLE);
	CHECK_INT(wsync_testhost_result(th)->called, 0);
	CHECK_INT(wsync_testhost_log_count(th), 2);

	/* Mistakes in the test are reported, not passed to the plugin. */
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.workout = w}), WSYNC_E_UNEXPECTED);
	CHECK_HAS(wsync_testhost_result(th)->message, "testhost: sync_scheduled_workout needs");
	CHECK_INT(wsync_testhost_call(th, 9, NULL), WSYNC_E_UNEXPECTED);
	CHECK_INT(wsync_testhost_result(th)->called, 0);

	/* Text the core cannot read never becomes an entity. */
	CHECK(wsync_testhost_workout(th, &(wsync_workout_entity){.workout_text = "- 10x"},
	                             err, sizeof err) == NULL);
	CHECK_HAS(err, "line 1");
	CHECK(wsync_testhost_scheduled(th, &(wsync_scheduled_entity){.id = "x"}, NULL, err,
	                               sizeof err) == NULL);
	wsync_testhost_free(th);
}

static void example_config(const char *so)
{
	char err[1024] = "";
	wsync_testhost *th = wsync_testhost_load(so, "[example]\nid_prefix = zz-\n", err,
	                                         sizeof err);
	const wsync_workout_entity *w;
	CHECK(th != NULL);
	if (!th)
		return;
	w = wsync_testhost_workout(th, &(wsync_workout_entity){.id = "w1",
	                           .workout_text = "- 20m 85%"}, err, sizeof err);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_OK);
	CHECK_STR(wsync_testhost_result(th)->provider_id, "zz-w1");
	wsync_testhost_free(th);

	/* wsyncd's configuration checks, with wsyncd's messages. */
	CHECK(wsync_testhost_load(so, "[example]\nid_prefx = zz-\n", err, sizeof err) == NULL);
	CHECK_HAS(err, "example.ini:2: [example] id_prefx: unknown key");
	CHECK(wsync_testhost_load(so, "[provider]\nbase_url = ftp://x\n", err, sizeof err) == NULL);
	CHECK_HAS(err, "example.ini:2: [provider] base_url = 'ftp://x': expected an https:// URL");
	CHECK(wsync_testhost_load(so, "[provider]\nplugin = other\n", err, sizeof err) == NULL);
	CHECK_HAS(err, "plugin = other, but the file is example.so");
	CHECK(wsync_testhost_load("/nonexistent/example.so", NULL, err, sizeof err) == NULL);
	CHECK_HAS(err, "/nonexistent/example.so: cannot open");
	CHECK(wsync_testhost_load("/nonexistent/example", NULL, err, sizeof err) == NULL);
	CHECK_HAS(err, "named <plugin>.so");
}

static const char *answer(const char *status_line, const char *headers, const char *body)
{
	static char buf[1024];
	snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n%s",
	         status_line, headers, strlen(body), body);
	return buf;
}

static void http_calls(const char *so)
{
	mock_server *m = mock_start();
	char ini[256], err[1024] = "", url[128];
	wsync_testhost *th;
	const wsync_workout_entity *w;
	const wsync_scheduled_entity *s;
	const wsync_testhost_outcome *r;
	const wsync_testhost_http *h;
	char *head;

	snprintf(ini, sizeof ini, "[provider]\nbase_url = http://127.0.0.1:%d/api/\n"
	         "timeout_seconds = 5\nallow_insecure_http = true\n", mock_port(m));
	th = wsync_testhost_load(so, ini, err, sizeof err);
	CHECK(th != NULL);
	if (!th) {
		fprintf(stderr, "%s\n", err);
		mock_stop(m);
		return;
	}
	/* init's debug line is recorded even below the stderr threshold. */
	CHECK_INT(wsync_testhost_log_count(th), 1);
	CHECK_INT(wsync_testhost_log_at(th, 0)->level, WSYNC_LOG_DEBUG);
	CHECK_STR(wsync_testhost_log_at(th, 0)->text, "http_fixture ready, path /ping");
	w = wsync_testhost_workout(th, &(wsync_workout_entity){.workout_text = "- 5m 60%"}, err,
	                           sizeof err);

	/* 200: the body is the provider id; the exchange is recorded. */
	mock_set_str(m, answer("200 OK", "", "pong-42"), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_OK);
	r = wsync_testhost_result(th);
	CHECK_STR(r->provider_id, "pong-42");
	CHECK_INT(wsync_testhost_http_count(th), 1);
	h = wsync_testhost_http_at(th, 0);
	CHECK_STR(h->method, "GET");
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/ping", mock_port(m));
	CHECK_STR(h->url, url);
	CHECK_STR(h->body, "");
	CHECK_INT(h->status, 200);
	CHECK_INT(h->classification, WSYNC_OK);
	CHECK_STR(h->response_body, "pong-42");
	CHECK_INT(h->response_body_len, 7);
	CHECK_STR(h->error, "");
	CHECK_STR(wsync_testhost_http_header(h, "authorization"), "Bearer *****");
	CHECK_HAS(wsync_testhost_http_header(h, "User-Agent"), "wsync/");
	CHECK(wsync_testhost_http_header(h, "Content-Type") == NULL);
	CHECK(wsync_testhost_log_find(th, "GET /ping -> 200 (status 0)") != NULL);
	/* The real token went over the wire; only the record masks it. */
	head = mock_last_head(m);
	CHECK_HAS(head, "GET /api/ping HTTP/1.1");
	CHECK_HAS(head, "Authorization: Bearer testhost-access-token");
	free(head);

	wsync_testhost_set_token(th, "tok-123");
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_OK);
	head = mock_last_head(m);
	CHECK_HAS(head, "Authorization: Bearer tok-123");
	free(head);

	/* POST with a body and the plugin's own header. */
	s = wsync_testhost_scheduled(th, &(wsync_scheduled_entity){.scheduled_date = "2026-12-02"},
	                             w, err, sizeof err);
	mock_set_str(m, answer("201 Created", "", "plan-7"), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.workout = w, .scheduled = s,
	                                    .workout_provider_id = "pong-42"}), WSYNC_OK);
	CHECK_STR(wsync_testhost_result(th)->provider_id, "plan-7");
	h = wsync_testhost_http_at(th, 2);
	CHECK(h != NULL);
	if (h) {
		CHECK_STR(h->method, "POST");
		CHECK_STR(h->body, "{\"date\":\"2026-12-02\",\"workout\":\"pong-42\"}");
		CHECK_INT(h->body_len, strlen(h->body));
		CHECK_STR(wsync_testhost_http_header(h, "Content-Type"), "application/json");
		CHECK_STR(wsync_testhost_http_header(h, "X-Fixture"), "1");
		CHECK_INT(h->status, 201);
	}
	head = mock_last_head(m);
	CHECK_HAS(head, "X-Fixture: 1");
	free(head);

	/* 503: transient provider trouble (provider_error, retried). */
	wsync_testhost_clear(th);
	mock_set_str(m, answer("503 Service Unavailable", "", "down for maintenance"), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_E_PROVIDER);
	r = wsync_testhost_result(th);
	CHECK_STR(r->error_type, "provider_error");
	CHECK_HAS(r->message, "HTTP 503");
	CHECK_HAS(r->message, "down for maintenance");
	CHECK(r->provider_id == NULL);
	h = wsync_testhost_http_at(th, 0);
	CHECK_INT(h->status, 503);
	CHECK_INT(h->classification, WSYNC_E_PROVIDER);
	CHECK_STR(h->response_body, "down for maintenance");

	/* 429 with Retry-After: rate_limit, no sooner than 120 s. */
	mock_set_str(m, answer("429 Too Many Requests", "Retry-After: 120\r\n", "slow down"),
	             MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_E_RATE_LIMIT);
	r = wsync_testhost_result(th);
	CHECK_STR(r->error_type, "rate_limit");
	CHECK_INT(r->retry_after_s, 120);
	CHECK_INT(wsync_testhost_http_at(th, 1)->retry_after_s, 120);
	CHECK_INT(wsync_testhost_http_at(th, 1)->classification, WSYNC_E_RATE_LIMIT);

	/* 401: no refresh in the test host, simply auth_error. */
	mock_set_str(m, answer("401 Unauthorized", "", "expired"), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_E_AUTH);
	CHECK_STR(wsync_testhost_result(th)->error_type, "auth_error");
	CHECK_INT(wsync_testhost_http_at(th, 2)->status, 401);
	CHECK_INT(wsync_testhost_http_count(th), 3);

	/* 404 on a delete: the plugin answers NOT_FOUND, which wsyncd and so
	 * the test host count as done. */
	mock_set_str(m, answer("404 Not Found", "", "no such plan"), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_WORKOUT,
	          &(wsync_testhost_request){.workout_provider_id = "p9"}), WSYNC_OK);
	CHECK_INT(wsync_testhost_result(th)->error_type == NULL, 1);
	h = wsync_testhost_http_at(th, 3);
	CHECK_STR(h->method, "DELETE");
	CHECK_HAS(h->url, "/api/plans/p9");

	/* 400: invalid_request, not retried. */
	mock_set_str(m, answer("400 Bad Request", "", "{\"error\":\"bad date\"}"), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_E_INVALID);
	CHECK_STR(wsync_testhost_result(th)->error_type, "invalid_request");

	/* Nobody listening: a transport error, provider_error. */
	mock_stop(m);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_E_PROVIDER);
	h = wsync_testhost_http_at(th, wsync_testhost_http_count(th) - 1);
	CHECK_INT(h->status, 0);
	CHECK_HAS(h->error, "curl error");

	/* destroy() logs are recorded too, until the host is gone. */
	wsync_testhost_free(th);
}

int main(int argc, char **argv)
{
	const char *example, *fixture;
	if (argc < 3) {
		fprintf(stderr, "usage: test_testhost EXAMPLE_SO HTTP_FIXTURE_SO\n");
		return 2;
	}
	example = sdk_stage_plugin(argv[1], "example");
	fixture = sdk_stage_plugin(argv[2], "http_fixture");
	example_loads(example);
	example_operations(example);
	example_config(example);
	http_calls(fixture);
	return sdk_done();
}
