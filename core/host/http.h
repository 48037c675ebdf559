/*
 * http.h -- the core's HTTP client (libcurl) behind wsync_host.http.
 *
 * One wsync_http_client per worker thread (it owns a keep-alive curl easy
 * handle); never share one between threads.  TLS verification is always on;
 * `ca_file` only chooses the trust store.  Proxies come from the usual
 * environment variables (libcurl's default behaviour).
 */
#ifndef WSYNC_HTTP_H
#define WSYNC_HTTP_H

#include "wsync/plugin.h"

#include <stddef.h>
#include <stdint.h>

typedef struct wsync_http_client wsync_http_client;

typedef struct wsync_http_settings {
	const char *base_url;      /* prefix for relative request paths */
	const char *ca_file;       /* NULL: system store */
	long connect_timeout_s;    /* 0: 10 s */
	long timeout_s;            /* total; 0: 30 s */
	const char *user_agent;    /* full User-Agent header value */
} wsync_http_settings;

typedef struct wsync_http_result {
	long status;               /* HTTP status, 0 when no answer arrived */
	char *body;                /* NUL-terminated, owned by the client:
	                              valid until its next perform() */
	size_t body_len;
	int64_t retry_after_s;     /* from Retry-After (seconds or HTTP-date),
	                              any status; else from X-RateLimit-Reset
	                              on a 429 only (Wahoo sends it on every
	                              answer); 0 when absent */
	int transport_error;       /* 1: timeout, reset, DNS, TLS, truncated,
	                              body over 8 MiB, headers over 100 KiB */
	char error[256];           /* transport error text, "" otherwise */
} wsync_http_result;

wsync_http_client *wsync_http_client_new(void);
void wsync_http_client_free(wsync_http_client *c);

/*
 * Perform `req`.  `bearer` (may be NULL) is sent as
 * "Authorization: Bearer ..." and never logged.  `now` (unix seconds) is
 * used to turn an HTTP-date Retry-After into seconds.  Returns 0 when an
 * HTTP answer arrived (any status), -1 on a transport error (details in
 * res->error, transport_error = 1).  -1 with transport_error = 0 means the
 * request was refused before anything was sent (CR/LF in a header or the
 * token, bad method, relative path without base_url): a bug, not provider
 * trouble.  Expects curl_global_init() to have run once before threads.
 */
int wsync_http_perform(wsync_http_client *c, const wsync_http_settings *s,
                       const wsync_http_request *req, const char *bearer,
                       wsync_http_result *res, int64_t now);

/*
 * A canned answer instead of the network, for tests and fuzzing (the SDK's
 * test host exposes it as wsync_testhost_set_responder).  With a responder
 * set, wsync_http_perform() checks and builds the request exactly as usual,
 * then asks the responder instead of libcurl, and feeds the answer through
 * the same header and body capture (Retry-After, X-RateLimit-Reset, size
 * caps) so that everything after the socket is the real code path.
 *   status    the answer's status, 100..999 as libcurl accepts it; 0 (or
 *             anything else) is a transport error "no answer"
 *   headers   header lines ("Name: value", each ended by "\n" or "\r\n";
 *             the last one may lack it), NULL for none
 *   body      body_len bytes, may contain NULs; NULL for none
 * The responder's strings are borrowed until it is called again or the
 * client is freed.  `url` is the URL the request would go to.
 */
typedef struct wsync_http_canned {
	long status;
	const char *headers;
	const char *body;
	size_t body_len;
} wsync_http_canned;

typedef void (*wsync_http_responder)(void *ctx, const char *url,
                                     const wsync_http_request *req,
                                     wsync_http_canned *answer);

/* Set (fn non-NULL) or remove (NULL) the responder of client c. */
void wsync_http_client_set_responder(wsync_http_client *c, wsync_http_responder fn,
                                     void *ctx);

/*
 * Classify an answer.  The mapping (status, delay) is the table "HTTP
 * CLASSIFICATION" in include/wsync/plugin.h, which is normative; this
 * function implements it (http/status.c) and does not look at the body: a
 * 2xx with an empty or malformed body is WSYNC_OK.  Writes a one-line
 * message such as "HTTP 503 from POST /v1/plans: <first 200 bytes of body>"
 * (valid UTF-8, no query string, credentials recognisable as such masked
 * with wsync_redact) into msg (may be NULL) and the delay into
 * *retry_after_s (may be NULL).
 */
int32_t wsync_http_classify(const wsync_http_request *req,
                            const wsync_http_result *res, char *msg,
                            size_t msglen, int64_t *retry_after_s);

/* Retry-After value (delta seconds or HTTP-date), else X-RateLimit-Reset
 * (seconds; of a comma list the largest; a value >= 10^9 is a unix time),
 * as seconds from `now`, clamped to 0 .. 86400; 0 when neither parses.
 * Either may be NULL. */
int64_t wsync_parse_retry_after(const char *retry_after,
                                const char *ratelimit_reset, int64_t now);

/* The URL a request goes to: an absolute http(s):// path as it is, else
 * base_url + path with exactly one '/' between them.  malloc'ed; NULL with
 * a message in err when a relative path has no base_url. */
char *wsync_http_url(const wsync_http_settings *s, const char *path, char *err,
                     size_t errlen);

/* URL-encode for form bodies; malloc'ed. */
char *wsync_url_encode(const char *s);

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if it is
 * not one (overlong, surrogate, cut short).  http/excerpt.c. */
size_t wsync_utf8_len(const unsigned char *p, size_t n);
/* Base64 with padding; malloc'ed. */
char *wsync_base64_encode(const void *data, size_t len);

/*
 * Mask secrets in the NUL-terminated text `s`, in place (the text never
 * grows): every occurrence of each of the `n` values in `secrets` (NULL
 * entries, and values shorter than 4 bytes, are skipped; a trailing line
 * end of a value is ignored; a value cut off by the end of the text is
 * masked too), and the value after "Bearer ", and after access_token,
 * refresh_token, client_secret or id_token written as a JSON member or a
 * form field.  A mask reads "***".  Returns how many were masked.
 */
size_t wsync_redact(char *s, const char *const *secrets, size_t n);

#endif
