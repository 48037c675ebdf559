/*
 * test_testhost_responder.c -- wsync_testhost_set_responder(): a plugin's
 * HTTP calls answered from a function, with the core's real handling of
 * the answer after the socket (classification, Retry-After and
 * X-RateLimit-Reset, header size limit, secret masking, recordings), and
 * the network back once the responder is removed.
 *
 *   test_testhost_responder HTTP_FIXTURE_SO
 *
 * Links only libwsync-testhost, as a plugin author's test would.
 */
#include "sdk_test.h"

#define TOKEN "responder-token-4f7c2a91"

typedef struct canned {
	int32_t status;
	const char *headers;
	const char *body;
	int calls;
	char url[256];
	char method[16];
} canned;

static void respond(void *ctx, const char *url, const wsync_http_request *req,
                    wsync_testhost_answer *a)
{
	canned *c = ctx;
	c->calls++;
	snprintf(c->url, sizeof c->url, "%s", url);
	snprintf(c->method, sizeof c->method, "%s", req->method ? req->method : "GET");
	a->status = c->status;
	a->headers = c->headers;
	a->body = c->body;
	a->body_len = c->body ? strlen(c->body) : 0;
}

static int32_t sync_once(wsync_testhost *th, const wsync_workout_entity *w)
{
	return wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                           &(wsync_testhost_request){.workout = w});
}

int main(int argc, char **argv)
{
	char err[1024], *big;
	const char *so;
	wsync_testhost *th;
	const wsync_workout_entity *w;
	const wsync_testhost_outcome *r;
	const wsync_testhost_http *h;
	canned c = {0};

	if (argc < 2) {
		fprintf(stderr, "usage: test_testhost_responder HTTP_FIXTURE_SO\n");
		return 2;
	}
	so = sdk_stage_plugin(argv[1], "http_fixture");
	/* Port 9 on loopback: nothing listens, for the network case below. */
	th = wsync_testhost_load(so, "[provider]\nbase_url = http://127.0.0.1:9\n"
	                         "allow_insecure_http = true\n", err, sizeof err);
	if (!th) {
		fprintf(stderr, "load: %s\n", err);
		return 1;
	}
	w = wsync_testhost_workout(th, &(wsync_workout_entity){.workout_text = "- 20m 85%"},
	                           err, sizeof err);
	CHECK(w != NULL);
	wsync_testhost_set_token(th, TOKEN);
	wsync_testhost_set_responder(th, respond, &c);
	r = wsync_testhost_result(th);

	/* A 200: its body is the fixture's provider id; the responder saw the
	 * request as it would have gone out. */
	c.status = 200;
	c.headers = "Content-Type: text/plain\r\n";
	c.body = "plan-7";
	CHECK_INT(sync_once(th, w), WSYNC_OK);
	CHECK_INT(c.calls, 1);
	CHECK_STR(c.url, "http://127.0.0.1:9/ping");
	CHECK_STR(c.method, "GET");
	CHECK_STR(r->provider_id, "plan-7");
	h = wsync_testhost_http_at(th, 0);
	CHECK(h != NULL);
	if (h) {
		CHECK_INT(h->status, 200);
		CHECK_STR(h->response_body, "plan-7");
		CHECK_STR(wsync_testhost_http_header(h, "Authorization"), "Bearer *****");
	}

	/* 429: Retry-After is read from the header lines. */
	c.status = 429;
	c.headers = "Retry-After: 120\r\nX-RateLimit-Reset: 300\r\n";
	c.body = "{\"error\":\"slow down\"}";
	CHECK_INT(sync_once(th, w), WSYNC_E_RATE_LIMIT);
	CHECK_STR(r->error_type, "rate_limit");
	CHECK_INT(r->retry_after_s, 120);

	/* X-RateLimit-Reset counts on a 429 only (header lines may end in a
	 * bare "\n", and the last may lack it). */
	c.headers = "X-RateLimit-Reset: 60, 300\nX-Other: x";
	CHECK_INT(sync_once(th, w), WSYNC_E_RATE_LIMIT);
	CHECK_INT(r->retry_after_s, 300);
	c.status = 200;
	c.body = "plan-8";
	CHECK_INT(sync_once(th, w), WSYNC_OK);
	CHECK_INT(wsync_testhost_http_at(th, 3)->retry_after_s, 0);

	/* A provider echoing the token: masked in the message. */
	c.status = 500;
	c.headers = NULL;
	c.body = "{\"error\":\"bad token " TOKEN "\"}";
	CHECK_INT(sync_once(th, w), WSYNC_E_PROVIDER);
	CHECK_HAS(r->message, "HTTP 500");
	CHECK(strstr(r->message, TOKEN) == NULL);

	/* Status 0: no answer, a transport error, retried. */
	c.status = 0;
	CHECK_INT(sync_once(th, w), WSYNC_E_PROVIDER);
	CHECK_HAS(r->message, "no answer");
	CHECK_INT(wsync_testhost_http_at(th, 5)->status, 0);

	/* Headers over the core's 100 KiB: refused as a real answer would be. */
	big = malloc(200 * 1024);
	CHECK(big != NULL);
	if (big) {
		size_t n = 0;
		while (n + 40 < 200 * 1024)
			n += (size_t)sprintf(big + n, "X-Filler-%06zu: 0123456789abcdef\r\n", n);
		c.status = 200;
		c.headers = big;
		c.body = "plan-9";
		CHECK_INT(sync_once(th, w), WSYNC_E_PROVIDER);
		CHECK_HAS(r->message, "response header too large");
		CHECK(r->provider_id == NULL);
	}
	CHECK_INT(c.calls, 7);

	/* Removed: the network again (loopback port 9 refuses). */
	wsync_testhost_set_responder(th, NULL, NULL);
	CHECK_INT(sync_once(th, w), WSYNC_E_PROVIDER);
	CHECK_HAS(r->message, "curl error 7");
	CHECK_INT(c.calls, 7);

	wsync_testhost_free(th);
	free(big);
	return sdk_done();
}
