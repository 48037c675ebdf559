/*
 * test_http.c -- the HTTP client of core/host/http/ against real servers on
 * 127.0.0.1: the scripted mock server (plain HTTP, fault injection) and
 * `openssl s_server` (TLS verification).
 */
#include "host/http.h"
#include "mock_server.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* 2026-10-21 07:26:30 UTC: 90 s before the HTTP-date used below. */
#define NOW 1792567590LL
#define DATE_NOW_PLUS_90 "Wed, 21 Oct 2026 07:28:00 GMT"

static mock_server *srv;
static wsync_http_client *cli;
static char base_url[64];

static wsync_http_settings settings(void)
{
	wsync_http_settings s = {
		.base_url = base_url,
		.connect_timeout_s = 2,
		.timeout_s = 5,
		.user_agent = "wsync-test/1.0",
	};
	return s;
}

static wsync_http_request request(const char *method, const char *path)
{
	wsync_http_request r = {.struct_size = sizeof r, .method = method, .path = path};
	return r;
}

/* A complete answer with a Content-Length; static buffer. */
static const char *answer(const char *status_line, const char *headers,
                          const char *body)
{
	static char buf[4096];
	snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n%s",
	         status_line, headers, strlen(body), body);
	return buf;
}

static int get(const char *path, wsync_http_result *res)
{
	wsync_http_settings s = settings();
	wsync_http_request r = request("GET", path);
	return wsync_http_perform(cli, &s, &r, NULL, res, NOW);
}

/* ---------------------------------------------------------------------------
 * Status classification and Retry-After through real answers.
 */

typedef struct status_case {
	const char *status_line;
	const char *headers;
	const char *body;
	int32_t expect;
	int64_t expect_retry;       /* from classify */
	int64_t expect_res_retry;   /* res.retry_after_s */
} status_case;

static const status_case status_cases[] = {
	{"200 OK", "Content-Type: application/json\r\n", "{\"id\": 4", WSYNC_OK, 0, 0},
	{"200 OK", "", "", WSYNC_OK, 0, 0},
	{"201 Created", "", "not json at all", WSYNC_OK, 0, 0},
	{"200 OK", "X-RateLimit-Reset: 300\r\n", "{}", WSYNC_OK, 0, 0},
	{"429 Too Many Requests", "Retry-After: 120\r\n", "", WSYNC_E_RATE_LIMIT, 120, 120},
	{"429 Too Many Requests", "Retry-After: " DATE_NOW_PLUS_90 "\r\n", "",
	 WSYNC_E_RATE_LIMIT, 90, 90},
	{"429 Too Many Requests", "X-RateLimit-Reset: 300\r\n", "", WSYNC_E_RATE_LIMIT, 300, 300},
	{"429 Too Many Requests", "x-ratelimit-reset: 86400, 3600, 300\r\n", "",
	 WSYNC_E_RATE_LIMIT, 86400, 86400},
	{"429 Too Many Requests", "Retry-After: 5\r\nX-RateLimit-Reset: 300\r\n", "",
	 WSYNC_E_RATE_LIMIT, 5, 5},
	{"429 Too Many Requests", "Retry-After: soon\r\nX-RateLimit-Reset: 300\r\n", "",
	 WSYNC_E_RATE_LIMIT, 300, 300},
	{"429 Too Many Requests", "", "slow down", WSYNC_E_RATE_LIMIT, 60, 0},
	{"401 Unauthorized", "", "{\"error\":\"expired\"}", WSYNC_E_AUTH, 0, 0},
	{"403 Forbidden", "", "", WSYNC_E_AUTH, 0, 0},
	{"412 Precondition Failed", "", "", WSYNC_E_AUTH, 0, 0},
	{"404 Not Found", "", "", WSYNC_E_NOT_FOUND, 0, 0},
	{"410 Gone", "", "", WSYNC_E_NOT_FOUND, 0, 0},
	{"400 Bad Request", "", "{\"errors\":[\"bad\"]}", WSYNC_E_INVALID, 0, 0},
	{"422 Unprocessable Entity", "", "", WSYNC_E_INVALID, 0, 0},
	{"409 Conflict", "", "", WSYNC_E_INVALID, 0, 0},
	{"408 Request Timeout", "", "", WSYNC_E_PROVIDER, 0, 0},
	{"500 Internal Server Error", "", "<html>oops</html>", WSYNC_E_PROVIDER, 0, 0},
	{"503 Service Unavailable", "Retry-After: 30\r\n", "", WSYNC_E_PROVIDER, 30, 30},
	{"503 Service Unavailable", "X-RateLimit-Reset: 300\r\n", "", WSYNC_E_PROVIDER, 0, 0},
	{"301 Moved Permanently", "Location: https://example.invalid/v1/x\r\n", "",
	 WSYNC_E_UNEXPECTED, 0, 0},
};

static void test_statuses(void)
{
	for (size_t i = 0; i < sizeof status_cases / sizeof status_cases[0]; i++) {
		const status_case *c = &status_cases[i];
		wsync_http_result res;
		wsync_http_request r = request("GET", "/v1/x");
		char msg[512];
		int64_t retry = -1;
		int before = mock_requests(srv), rc;

		mock_set_str(srv, answer(c->status_line, c->headers, c->body), MOCK_KEEP);
		rc = get("/v1/x", &res);
		T_EQ_INT(rc, 0);
		T_EQ_INT(res.transport_error, 0);
		T_EQ_INT(res.status, atoi(c->status_line));
		T_EQ_INT(res.body_len, strlen(c->body));
		T_EQ_STR(res.body, c->body);
		T_EQ_INT(res.retry_after_s, c->expect_res_retry);
		T_EQ_INT(wsync_http_classify(&r, &res, msg, sizeof msg, &retry), c->expect);
		T_EQ_INT(retry, c->expect_retry);
		/* one request each: redirects are not followed */
		T_EQ_INT(mock_requests(srv) - before, 1);
		if (c->expect != WSYNC_OK)
			T_CONTAINS(msg, "from GET /v1/x");
	}
}

static void test_classify_message(void)
{
	wsync_http_request r = request("POST", "/v1/plans?client_secret=hush");
	wsync_http_result res;
	wsync_http_settings s = settings();
	char body[600], msg[1024], expect[300];
	int64_t retry;

	/* 300 bytes with control characters and a broken UTF-8 sequence. */
	memset(body, 'b', 300);
	memcpy(body, "down\nfor\tmaint \xc3\xa9 \xff\xfe end", 24);
	body[300] = '\0';
	mock_set_str(srv, answer("503 Service Unavailable", "", body), MOCK_KEEP);
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), 0);
	T_EQ_INT(wsync_http_classify(&r, &res, msg, sizeof msg, &retry), WSYNC_E_PROVIDER);
	snprintf(expect, sizeof expect, "HTTP 503 from POST /v1/plans: down for maint \xc3\xa9 ?? end");
	T_CONTAINS(msg, expect);
	T_CHECK(strstr(msg, "hush") == NULL);       /* query left out */
	T_CHECK(strchr(msg, '\n') == NULL);
	/* 200 bytes of body at most */
	T_CHECK(strlen(msg) < strlen(expect) + 200);
	T_CHECK(strlen(msg) > strlen(expect) + 150);
	if (t_failures)
		fprintf(stderr, "  (msg: %s)\n", msg);

	mock_set_str(srv, answer("404 Not Found", "", ""), MOCK_KEEP);
	T_EQ_INT(get("/v1/gone", &res), 0);
	r = request("GET", "/v1/gone");
	T_EQ_INT(wsync_http_classify(&r, &res, msg, sizeof msg, NULL), WSYNC_E_NOT_FOUND);
	T_EQ_STR(msg, "HTTP 404 from GET /v1/gone: (empty body)");
	/* NULL msg is allowed */
	T_EQ_INT(wsync_http_classify(&r, &res, NULL, 0, NULL), WSYNC_E_NOT_FOUND);
}

/* ---------------------------------------------------------------------------
 * What goes over the wire.
 */

static void test_request_headers(void)
{
	wsync_http_settings s = settings();
	wsync_http_header extra[] = {{"X-Extra", "v1"}, {"X-Empty", ""}};
	wsync_http_request r = request("POST", "/v1/plans");
	wsync_http_result res;
	char *head, *body;
	size_t blen;

	r.content_type = "application/json";
	r.body = "{\"a\":1}";
	r.body_len = 7;
	r.headers = extra;
	r.n_headers = 2;
	mock_set_str(srv, answer("201 Created", "", "{\"id\":1}"), MOCK_KEEP);
	T_EQ_INT(wsync_http_perform(cli, &s, &r, "tok-123.abc", &res, NOW), 0);
	T_EQ_INT(res.status, 201);
	head = mock_last_head(srv);
	body = mock_last_body(srv, &blen);
	T_CHECK(strncmp(head, "POST /v1/plans HTTP/1.1\r\n", 25) == 0);
	T_CONTAINS(head, "\r\nAuthorization: Bearer tok-123.abc\r\n");
	T_CONTAINS(head, "\r\nUser-Agent: wsync-test/1.0\r\n");
	T_CONTAINS(head, "\r\nContent-Type: application/json\r\n");
	T_CONTAINS(head, "\r\nX-Extra: v1\r\n");
	T_CONTAINS(head, "\r\nX-Empty:");
	T_CONTAINS(head, "\r\nContent-Length: 7\r\n");
	T_CHECK(strstr(head, "Expect:") == NULL);
	T_EQ_INT(blen, 7);
	T_EQ_STR(body, "{\"a\":1}");
	free(head);
	free(body);

	/* No bearer: no Authorization header; a GET carries no body. */
	T_EQ_INT(get("/v1/x", &res), 0);
	head = mock_last_head(srv);
	T_CHECK(strstr(head, "Authorization") == NULL);
	T_CHECK(strncmp(head, "GET /v1/x HTTP/1.1\r\n", 20) == 0);
	T_CHECK(strstr(head, "Content-Length") == NULL);
	free(head);
}

static void test_methods(void)
{
	wsync_http_settings s = settings();
	wsync_http_request r = request("PUT", "/v1/plans/42");
	wsync_http_result res;
	char *head, *body;
	size_t blen;

	mock_set_str(srv, answer("200 OK", "", "{}"), MOCK_KEEP);
	r.content_type = "application/x-www-form-urlencoded";
	r.body = "plan%5Bname%5D=x";
	r.body_len = strlen(r.body);
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), 0);
	head = mock_last_head(srv);
	body = mock_last_body(srv, &blen);
	T_CHECK(strncmp(head, "PUT /v1/plans/42 HTTP/1.1\r\n", 27) == 0);
	T_EQ_STR(body, "plan%5Bname%5D=x");
	free(head);
	free(body);

	r = request("DELETE", "/v1/plans/42");
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), 0);
	head = mock_last_head(srv);
	T_CHECK(strncmp(head, "DELETE /v1/plans/42 HTTP/1.1\r\n", 30) == 0);
	T_CHECK(strstr(head, "Content-Length") == NULL);
	free(head);

	/* POST and PUT without a body still say Content-Length: 0, and no
	 * form Content-Type is made up for them. */
	r = request("POST", "/v1/empty");
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), 0);
	head = mock_last_head(srv);
	T_CHECK(strncmp(head, "POST /v1/empty HTTP/1.1\r\n", 25) == 0);
	T_CONTAINS(head, "\r\nContent-Length: 0\r\n");
	T_CHECK(strstr(head, "Content-Type") == NULL);
	free(head);

	/* After a PUT the handle does not stay on PUT: a GET is a GET. */
	T_EQ_INT(get("/v1/after", &res), 0);
	head = mock_last_head(srv);
	T_CHECK(strncmp(head, "GET /v1/after HTTP/1.1\r\n", 24) == 0);
	free(head);
}

static void test_binary_body(void)
{
	static const char out[] = {'a', 0, 'b', 0, (char)0xff};
	static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nx\0y\0z\0";
	wsync_http_settings s = settings();
	wsync_http_request r = request("POST", "/v1/file");
	wsync_http_result res;
	char *body;
	size_t blen;

	r.content_type = "application/octet-stream";
	r.body = out;
	r.body_len = sizeof out;
	mock_set(srv, in, sizeof in - 1, 0, MOCK_KEEP);
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), 0);
	body = mock_last_body(srv, &blen);
	T_EQ_INT(blen, sizeof out);
	T_CHECK(memcmp(body, out, sizeof out) == 0);
	T_EQ_INT(res.body_len, 6);
	T_CHECK(memcmp(res.body, "x\0y\0z\0", 7) == 0);   /* and NUL-terminated */
	free(body);
}

static void test_keepalive(void)
{
	wsync_http_result res;
	int accepts;

	mock_set_str(srv, answer("200 OK", "", "{}"), MOCK_KEEP);
	T_EQ_INT(get("/v1/warm", &res), 0);
	accepts = mock_accepts(srv);
	T_EQ_INT(get("/v1/one", &res), 0);
	T_EQ_INT(get("/v1/two", &res), 0);
	T_EQ_INT(res.status, 200);
	T_EQ_INT(mock_accepts(srv), accepts);   /* same connection */

	/* A fresh client: two calls, one connection accepted. */
	{
		wsync_http_client *c2 = wsync_http_client_new();
		wsync_http_settings s = settings();
		wsync_http_request r = request("GET", "/v1/a");
		int before = mock_accepts(srv);
		T_EQ_INT(wsync_http_perform(c2, &s, &r, NULL, &res, NOW), 0);
		r.path = "/v1/b";
		T_EQ_INT(wsync_http_perform(c2, &s, &r, NULL, &res, NOW), 0);
		T_EQ_INT(mock_accepts(srv) - before, 1);
		wsync_http_client_free(c2);
	}
}

static void test_url_joining(void)
{
	wsync_http_settings s = settings();
	wsync_http_request r = request("GET", "/v1/x");
	wsync_http_result res;
	char base[96], abs[128];
	char *head;

	mock_set_str(srv, answer("200 OK", "", ""), MOCK_KEEP);
	snprintf(base, sizeof base, "%s/api/", base_url);
	s.base_url = base;
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), 0);
	head = mock_last_head(srv);
	T_CHECK(strncmp(head, "GET /api/v1/x HTTP/1.1", 22) == 0);
	free(head);

	/* An absolute URL ignores base_url (which would not answer). */
	s.base_url = "http://192.0.2.1:9";
	snprintf(abs, sizeof abs, "%s/abs?q=1", base_url);
	r.path = abs;
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), 0);
	head = mock_last_head(srv);
	T_CHECK(strncmp(head, "GET /abs?q=1 HTTP/1.1", 21) == 0);
	free(head);
}

/* ---------------------------------------------------------------------------
 * Transport errors.
 */

static void expect_transport(const char *what, const char *needle,
                             wsync_http_result *res, int rc)
{
	wsync_http_request r = request("GET", "/v1/x");
	char msg[512];
	int64_t retry = -1;

	T_EQ_INT(rc, -1);
	T_EQ_INT(res->transport_error, 1);
	T_EQ_INT(res->status, 0);
	T_EQ_INT(res->body_len, 0);
	T_CHECK(res->body != NULL && res->body[0] == '\0');
	T_CONTAINS(res->error, needle);
	T_EQ_INT(wsync_http_classify(&r, res, msg, sizeof msg, &retry), WSYNC_E_PROVIDER);
	T_EQ_INT(retry, 0);
	T_CONTAINS(msg, "GET /v1/x failed: curl error");
	if (t_failures)
		fprintf(stderr, "  (%s: %s)\n", what, res->error);
}

static void test_transport_errors(void)
{
	wsync_http_result res;
	wsync_http_settings s = settings();
	wsync_http_request r = request("GET", "/v1/x");
	struct timespec t0, t1;
	int rc;

	mock_set_str(srv, "", MOCK_RESET);
	expect_transport("reset", "curl error 56", &res, get("/v1/x", &res));

	mock_set_str(srv, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial", MOCK_RESET);
	rc = get("/v1/x", &res);
	T_EQ_INT(rc, -1);
	T_EQ_INT(res.transport_error, 1);

	mock_set_str(srv, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", MOCK_CLOSE);
	expect_transport("truncated", "curl error 18 (Transferred a partial file)", &res,
	                 get("/v1/x", &res));

	mock_set_str(srv, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", MOCK_CLOSE);
	rc = get("/v1/x", &res);
	T_EQ_INT(rc, -1);
	T_EQ_INT(res.transport_error, 1);

	mock_set_str(srv, "", MOCK_CLOSE);
	expect_transport("nothing", "curl error 52", &res, get("/v1/x", &res));

	/* An answer slower than the timeout. */
	mock_set(srv, answer("200 OK", "", "late"), strlen(answer("200 OK", "", "late")), 3000,
	         MOCK_KEEP);
	s.timeout_s = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = wsync_http_perform(cli, &s, &r, "secret-bearer", &res, NOW);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	expect_transport("timeout", "curl error 28 (Timeout was reached)", &res, rc);
	T_CHECK(t1.tv_sec - t0.tv_sec < 3);
	T_CHECK(strstr(res.error, "secret-bearer") == NULL);
}

static int closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof sa);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void test_connect_refused(void)
{
	wsync_http_settings s = settings();
	wsync_http_request r = request("GET", "/v1/x");
	wsync_http_result res;
	char base[64];

	snprintf(base, sizeof base, "http://127.0.0.1:%d", closed_port());
	s.base_url = base;
	expect_transport("refused", "curl error 7", &res,
	                 wsync_http_perform(cli, &s, &r, NULL, &res, NOW));
}

static void test_body_cap(void)
{
	size_t big = (size_t)9 << 20, cap = (size_t)8 << 20;
	const char *head_close = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
	char *raw = malloc(big + 200);
	wsync_http_result res;
	int n;

	/* Announced too large: refused before it is read. */
	mock_set_str(srv, "HTTP/1.1 200 OK\r\nContent-Length: 9437184\r\n\r\n", MOCK_CLOSE);
	expect_transport("announced", "larger than 8 MiB", &res, get("/v1/x", &res));

	/* No length, just too many bytes. */
	memcpy(raw, head_close, strlen(head_close));
	memset(raw + strlen(head_close), 'x', big);
	mock_set(srv, raw, strlen(head_close) + big, 0, MOCK_CLOSE);
	expect_transport("streamed", "larger than 8 MiB", &res, get("/v1/x", &res));

	/* Exactly the cap is fine. */
	n = snprintf(raw, 200, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", cap);
	memset(raw + n, 'y', cap);
	mock_set(srv, raw, (size_t)n + cap, 0, MOCK_KEEP);
	T_EQ_INT(get("/v1/x", &res), 0);
	T_EQ_INT(res.body_len, cap);
	T_EQ_INT(res.body[cap], 0);
	free(raw);
}

static void test_refused_requests(void)
{
	wsync_http_settings s = settings();
	wsync_http_header bad[] = {{"X-Evil", "a\r\nHost: elsewhere"}};
	wsync_http_request r = request("GET", "/v1/x");
	wsync_http_result res;
	char msg[512];
	int before = mock_requests(srv);

	r.headers = bad;
	r.n_headers = 1;
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), -1);
	T_EQ_INT(res.transport_error, 0);
	T_EQ_INT(wsync_http_classify(&r, &res, msg, sizeof msg, NULL), WSYNC_E_UNEXPECTED);
	T_CONTAINS(msg, "request not sent");

	r = request("GET", "/v1/x");
	T_EQ_INT(wsync_http_perform(cli, &s, &r, "zq9\r\nX-Injected: 1", &res, NOW), -1);
	T_CHECK(strstr(res.error, "zq9") == NULL);
	T_CHECK(strstr(res.error, "Injected") == NULL);

	r = request("GE T", "/v1/x");
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), -1);

	r = request("GET", "/v1/x");
	s.base_url = NULL;
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), -1);
	T_EQ_INT(res.transport_error, 0);
	T_EQ_INT(mock_requests(srv), before);

	/* Only http and https. */
	s.base_url = "ftp://127.0.0.1:21";
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), -1);
	T_EQ_INT(res.transport_error, 1);
	T_CONTAINS(res.error, "curl error 1 ");
	s.base_url = "file:///etc";
	r.path = "passwd";
	T_EQ_INT(wsync_http_perform(cli, &s, &r, NULL, &res, NOW), -1);
	T_CONTAINS(res.error, "curl error 1 ");
}

/* ---------------------------------------------------------------------------
 * Pure functions.
 */

static void test_parse_retry_after(void)
{
	T_EQ_INT(wsync_parse_retry_after(NULL, NULL, NOW), 0);
	T_EQ_INT(wsync_parse_retry_after("120", NULL, NOW), 120);
	T_EQ_INT(wsync_parse_retry_after("  7 ", NULL, NOW), 7);
	T_EQ_INT(wsync_parse_retry_after("0", "300", NOW), 0);
	T_EQ_INT(wsync_parse_retry_after(DATE_NOW_PLUS_90, NULL, NOW), 90);
	T_EQ_INT(wsync_parse_retry_after(" " DATE_NOW_PLUS_90 " ", NULL, NOW), 90);
	/* the obsolete forms RFC 9110 asks recipients to accept */
	T_EQ_INT(wsync_parse_retry_after("Wednesday, 21-Oct-26 07:28:00 GMT", NULL, NOW), 90);
	T_EQ_INT(wsync_parse_retry_after("Wed Oct 21 07:28:00 2026", NULL, NOW), 90);
	/* in the past: now */
	T_EQ_INT(wsync_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NULL, NOW), 0);
	T_EQ_INT(wsync_parse_retry_after("-5", NULL, NOW), 0);
	/* absurd: a day at most */
	T_EQ_INT(wsync_parse_retry_after("99999999999999999999", NULL, NOW), 86400);
	T_EQ_INT(wsync_parse_retry_after("Wed, 21 Oct 2037 07:28:00 GMT", NULL, NOW), 86400);
	/* unparsable Retry-After falls back to X-RateLimit-Reset */
	T_EQ_INT(wsync_parse_retry_after("later", "300", NOW), 300);
	T_EQ_INT(wsync_parse_retry_after("Wed, 32 Foo 2026 07:28:00 GMT", "300", NOW), 300);
	T_EQ_INT(wsync_parse_retry_after("12s", NULL, NOW), 0);
	T_EQ_INT(wsync_parse_retry_after(NULL, "300", NOW), 300);
	T_EQ_INT(wsync_parse_retry_after(NULL, "86400, 3600, 300", NOW), 86400);
	T_EQ_INT(wsync_parse_retry_after(NULL, "30,3600,300", NOW), 3600);
	T_EQ_INT(wsync_parse_retry_after(NULL, "300, x", NOW), 0);
	T_EQ_INT(wsync_parse_retry_after(NULL, "", NOW), 0);
	/* a unix timestamp instead of seconds */
	T_EQ_INT(wsync_parse_retry_after(NULL, "1792567890", NOW), 300);
	T_EQ_INT(wsync_parse_retry_after(NULL, "1000000000", NOW), 0);
}

static void test_encoders(void)
{
	static const struct { const char *in, *out; } b64[] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	char *s;

	for (size_t i = 0; i < sizeof b64 / sizeof b64[0]; i++) {
		s = wsync_base64_encode(b64[i].in, strlen(b64[i].in));
		T_EQ_STR(s, b64[i].out);
		free(s);
	}
	s = wsync_base64_encode("\0\xff\xfe", 3);
	T_EQ_STR(s, "AP/+");
	free(s);

	s = wsync_url_encode("a b&c=d/\xc3\xa9~-._+%Z09");
	T_EQ_STR(s, "a%20b%26c%3Dd%2F%C3%A9~-._%2B%25Z09");
	free(s);
	s = wsync_url_encode("");
	T_EQ_STR(s, "");
	free(s);
	T_CHECK(wsync_url_encode(NULL) == NULL);
}

/* ---------------------------------------------------------------------------
 * TLS against openssl s_server with a throwaway self-signed certificate.
 */

static int spawn(char *const argv[], pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	int rc;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

static int run(char *const argv[])
{
	pid_t pid;
	int status;
	if (spawn(argv, &pid) != 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int port_open(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

/* Start s_server on a free port; 0 and *pid, or -1. */
static int start_s_server(const char *cert, const char *key, int *port, pid_t *pid)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		char accept_arg[32];
		char *argv[] = {"openssl", "s_server", "-accept", accept_arg, "-cert",
		                (char *)cert, "-key", (char *)key, "-www", "-quiet", NULL};
		*port = closed_port();
		snprintf(accept_arg, sizeof accept_arg, "127.0.0.1:%d", *port);
		if (spawn(argv, pid) != 0)
			return -1;
		for (int i = 0; i < 100; i++) {
			int status;
			if (port_open(*port))
				return 0;
			if (waitpid(*pid, &status, WNOHANG) == *pid)
				break;          /* port taken meanwhile: try another */
			usleep(50000);
		}
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
	}
	return -1;
}

static void test_tls(void)
{
	char *dir = t_tempdir(), cert[256], key[256], base[64], rm_arg[300];
	char *gen[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
	               "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
	               "-days", "1", "-keyout", key, "-out", cert, NULL};
	wsync_http_settings s = settings();
	wsync_http_request r = request("GET", "/");
	wsync_http_result res;
	wsync_http_client *c = wsync_http_client_new();
	int port;
	pid_t pid;

	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	T_EQ_INT(run(gen), 0);
	if (start_s_server(cert, key, &port, &pid) < 0) {
		t_fail(__FILE__, __LINE__, "cannot start openssl s_server");
		goto out;
	}
	snprintf(base, sizeof base, "https://127.0.0.1:%d", port);
	s.base_url = base;

	/* System trust store: the self-signed certificate is refused. */
	T_EQ_INT(wsync_http_perform(c, &s, &r, NULL, &res, NOW), -1);
	T_EQ_INT(res.transport_error, 1);
	T_CONTAINS(res.error, "certificate");

	/* Trusting it through ca_file: accepted. */
	s.ca_file = cert;
	T_EQ_INT(wsync_http_perform(c, &s, &r, NULL, &res, NOW), 0);
	T_EQ_INT(res.status, 200);
	T_EQ_INT(res.transport_error, 0);

	/* Trusted, but issued for another name: host verification is on. */
	snprintf(base, sizeof base, "https://localhost:%d", port);
	T_EQ_INT(wsync_http_perform(c, &s, &r, NULL, &res, NOW), -1);
	T_EQ_INT(res.transport_error, 1);
	if (t_failures)
		fprintf(stderr, "  (localhost: %s)\n", res.error);

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
out:
	wsync_http_client_free(c);
	snprintf(rm_arg, sizeof rm_arg, "%s", dir);
	{
		char *rm[] = {"rm", "-rf", rm_arg, NULL};
		run(rm);
	}
	free(dir);
}

/* Response headers over the limit: a clear message, not "Out of memory",
 * classified as a transport error (provider trouble, retried).  Both
 * shapes: one 300 KB header line, and many lines adding up to 300 KB. */
static void huge_headers(int one_line)
{
	size_t total = 300 * 1024, o = 0;
	char *raw = malloc(total + 1024), msg[512];
	wsync_http_request r = request("GET", "/huge");
	wsync_http_result res;
	int64_t retry = -1;

	o += (size_t)sprintf(raw, "HTTP/1.1 200 OK\r\n");
	while (o < total) {
		size_t n = one_line ? total - o : 1000;
		memcpy(raw + o, "X-Big: ", 7);
		memset(raw + o + 7, 'a', n);
		memcpy(raw + o + 7 + n, "\r\n", 2);
		o += n + 9;
	}
	o += (size_t)sprintf(raw + o, "Content-Length: 2\r\n\r\nok");
	mock_set(srv, raw, o, 0, MOCK_CLOSE);
	T_EQ_INT(get("/huge", &res), -1);
	T_EQ_INT(res.transport_error, 1);
	T_EQ_INT(res.status, 0);
	T_CONTAINS(res.error, "response header too large (over 102400 bytes)");
	T_CHECK(strstr(res.error, "Out of memory") == NULL);
	T_EQ_INT(wsync_http_classify(&r, &res, msg, sizeof msg, &retry), WSYNC_E_PROVIDER);
	T_CONTAINS(msg, "GET /huge failed: ");
	T_CONTAINS(msg, "response header too large");
	T_EQ_INT(retry, 0);
	/* The client is still usable afterwards. */
	mock_set_str(srv, answer("200 OK", "", "fine"), MOCK_KEEP);
	T_EQ_INT(get("/after", &res), 0);
	T_EQ_INT(res.status, 200);
	free(raw);
}

/* wsync_redact: known values (also cut off at the end), Bearer, JSON
 * members, form fields; ordinary text untouched. */
static void test_redact(void)
{
	const char *secrets[] = {"tok-123456", NULL, "sec\n", "client-secret-9\n"};
	char a[] = "x tok-123456 y tok-123456";
	char b[] = "Authorization: Bearer abc.def-ghi, next";
	char c[] = "{\"access_token\": \"AAA\", \"Refresh_Token\":\"b\",\"name\":\"tok\"}";
	char d[] = "grant_type=refresh_token&refresh_token=r1r2&client_secret=client-secret-9";
	char e[] = "cut: tok-12";
	char f[] = "the token was fine; access denied; sec is short";
	char g[] = "{\\\"id_token\\\":\\\"zz\\\"}";

	T_EQ_INT((int)wsync_redact(a, secrets, 4), 2);
	T_EQ_STR(a, "x *** y ***");
	wsync_redact(b, NULL, 0);
	T_EQ_STR(b, "Authorization: Bearer ***, next");
	wsync_redact(c, secrets, 4);
	T_EQ_STR(c, "{\"access_token\": \"***\", \"Refresh_Token\":\"*\",\"name\":\"tok\"}");
	wsync_redact(d, secrets, 4);
	T_EQ_STR(d, "grant_type=refresh_token&refresh_token=***&client_secret=***");
	wsync_redact(e, secrets, 4);
	T_EQ_STR(e, "cut: ***");
	T_EQ_INT((int)wsync_redact(f, secrets, 4), 0);
	T_EQ_STR(f, "the token was fine; access denied; sec is short");
	wsync_redact(g, NULL, 0);
	T_EQ_STR(g, "{\\\"id_token\\\":\\\"**\\\"}");
}

static void test_huge_headers(void)
{
	huge_headers(1);
	huge_headers(0);
}

int main(void)
{
	/* The daemon's main does this once; so must every program. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* Talk to 127.0.0.1 directly even where a proxy is configured. */
	setenv("NO_PROXY", "*", 1);
	setenv("no_proxy", "*", 1);
	srv = mock_start();
	cli = wsync_http_client_new();
	snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", mock_port(srv));

	test_parse_retry_after();
	test_encoders();
	test_statuses();
	test_classify_message();
	test_request_headers();
	test_methods();
	test_binary_body();
	test_keepalive();
	test_url_joining();
	test_transport_errors();
	test_connect_refused();
	test_body_cap();
	test_huge_headers();
	test_redact();
	test_refused_requests();
	test_tls();

	wsync_http_client_free(cli);
	mock_stop(srv);
	curl_global_cleanup();
	return t_done();
}
