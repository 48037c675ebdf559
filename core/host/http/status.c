/*
 * http/status.c -- the classification of an HTTP answer: the table
 * "HTTP CLASSIFICATION" in include/wsync/plugin.h is the normative text,
 * `answers` below is that table as data, and
 * tests/engine/test_classify_ratelimit.c walks every row of the header's
 * table through wsync_http_classify() so that the two cannot drift.
 */
#include "host/http.h"
#include "host/http/internal.h"

#include <stdio.h>

#define RATE_LIMIT_DEFAULT_S 60

/* How long the answer asks wsync to wait before the next attempt. */
enum wait_rule {
	WAIT_NONE,            /* a Retry-After is ignored */
	WAIT_HEADER,          /* Retry-After, else 0 (retry_after_s) */
	WAIT_HEADER_OR_60     /* Retry-After / X-RateLimit-Reset, else 60 s */
};

/* HTTP statuses lo..hi are classified `status`; the first row that
 * matches wins, so single statuses come before their class. */
static const struct answer_row {
	long lo, hi;
	int32_t status;
	enum wait_rule wait;
} answers[] = {
	{200, 299, WSYNC_OK, WAIT_NONE},
	{401, 401, WSYNC_E_AUTH, WAIT_NONE},   /* after one refresh (host.c) */
	{403, 403, WSYNC_E_AUTH, WAIT_NONE},
	{412, 412, WSYNC_E_AUTH, WAIT_NONE},   /* TrainingPeaks: consent gone */
	{404, 404, WSYNC_E_NOT_FOUND, WAIT_NONE},
	{410, 410, WSYNC_E_NOT_FOUND, WAIT_NONE},
	{408, 408, WSYNC_E_PROVIDER, WAIT_HEADER}, /* the server timed out */
	{429, 429, WSYNC_E_RATE_LIMIT, WAIT_HEADER_OR_60},
	{400, 499, WSYNC_E_INVALID, WAIT_NONE},
	{500, 599, WSYNC_E_PROVIDER, WAIT_HEADER},
};

/* No answer: a transport error (timeout, reset, DNS, TLS, truncated or
 * oversized answer) is the provider's trouble; a request refused before
 * sending is a bug.  Any status no row covers (1xx, 3xx: redirects are not
 * followed) is unexpected. */
static const struct answer_row transport_row = {0, 0, WSYNC_E_PROVIDER, WAIT_NONE};
static const struct answer_row unexpected_row = {0, 0, WSYNC_E_UNEXPECTED, WAIT_NONE};

static const struct answer_row *find_row(const wsync_http_result *res)
{
	if (res->status == 0)
		return res->transport_error ? &transport_row : &unexpected_row;
	for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
		if (res->status >= answers[i].lo && res->status <= answers[i].hi)
			return &answers[i];
	return &unexpected_row;
}

static int64_t wait_of(const struct answer_row *row, int64_t retry_after_s)
{
	switch (row->wait) {
	case WAIT_HEADER:
		return retry_after_s > 0 ? retry_after_s : 0;
	case WAIT_HEADER_OR_60:
		return retry_after_s > 0 ? retry_after_s : RATE_LIMIT_DEFAULT_S;
	default:
		return 0;
	}
}

/* "POST /v1/plans" -- the query string is left out: it may carry secrets. */
static void describe_target(const wsync_http_request *req, char *out,
                            size_t outlen)
{
	const char *path = req->path ? req->path : "";
	size_t plen = strcspn(path, "?#");

	if (plen > 160)
		plen = 160;
	snprintf(out, outlen, "%s %.*s", req->method ? req->method : "GET",
	         (int)plen, path);
}

static void describe_answer(const wsync_http_request *req,
                            const wsync_http_result *res, char *msg,
                            size_t msglen)
{
	char target[192], excerpt[WSYNC_HTTP_BODY_EXCERPT * 4 + 8];

	describe_target(req, target, sizeof target);
	if (res->status == 0) {
		snprintf(msg, msglen, "%s failed: %s", target,
		         res->error[0] ? res->error : "no answer");
		return;
	}
	wsync_http_body_excerpt(res->body ? res->body : "",
	                        res->body ? res->body_len : 0,
	                        WSYNC_HTTP_BODY_EXCERPT, excerpt, sizeof excerpt);
	/* A provider may echo the request's token or a secret in its error
	 * body; what is recognisable as one is masked here, the call's own
	 * values by the host (host.c), which knows them. */
	wsync_redact(excerpt, NULL, 0);
	snprintf(msg, msglen, "HTTP %ld from %s: %s%s", res->status, target,
	         excerpt[0] ? excerpt : "(empty body)",
	         res->status >= 300 && res->status <= 399
	                 ? " (redirects are not followed: check base_url)"
	                 : "");
}

int32_t wsync_http_classify(const wsync_http_request *req,
                            const wsync_http_result *res, char *msg,
                            size_t msglen, int64_t *retry_after_s)
{
	const struct answer_row *row = find_row(res);

	if (msg && msglen > 0)
		describe_answer(req, res, msg, msglen);
	if (retry_after_s)
		*retry_after_s = wait_of(row, res->retry_after_s);
	return row->status;
}
