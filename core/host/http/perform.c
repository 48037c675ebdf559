/*
 * http/perform.c -- the core's HTTP client: one libcurl easy handle per
 * worker, the checks a request passes before it is sent, the capture of
 * the headers wsync reads, and transport failures.
 *
 * The code expects curl_global_init(CURL_GLOBAL_DEFAULT) to have been called
 * once, before any thread starts (wsyncd's main does it, tests do it
 * themselves): curl_global_init is not thread-safe, and curl_easy_init would
 * otherwise run it lazily from whichever worker comes first.
 *
 * Every call starts with curl_easy_reset(), so no option of a previous call
 * (a custom method, a body, a CA file) leaks into the next one; the reset
 * keeps the connection cache, the DNS cache and TLS sessions, so keep-alive
 * still works across calls.
 */
#include "host/http.h"
#include "host/http/internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef WSYNC_VERSION
#define WSYNC_VERSION "0"
#endif

#define BODY_CAP ((size_t)8 << 20)       /* larger answers are refused */
#define BODY_INITIAL ((size_t)16 << 10)
#define HEADER_VALUE_MAX WSYNC_HTTP_HEADER_VALUE_MAX
#define DEFAULT_CONNECT_TIMEOUT_S 10L
#define DEFAULT_TIMEOUT_S 30L
/* Response headers larger than this are refused with a clear message.  It
 * is libcurl's own limit for one header line (CURL_MAX_HTTP_HEADER), which
 * curl reports as "Out of memory"; applying it to the whole header block
 * keeps one message for both shapes (curl's own block limit is 300 KiB). */
#define HEADERS_CAP ((size_t)CURL_MAX_HTTP_HEADER)

struct wsync_http_client {
	CURL *curl;
	char *body;                /* NUL-terminated, body_len bytes before it */
	size_t body_len;
	size_t body_cap;
	int body_overflow;         /* the answer passed BODY_CAP */
	int body_oom;
	size_t header_bytes;       /* of the current header block */
	int in_headers;            /* a status line came, the blank line not yet */
	int headers_overflow;      /* the block passed HEADERS_CAP */
	char retry_after[HEADER_VALUE_MAX];
	char ratelimit_reset[HEADER_VALUE_MAX];
	char errbuf[CURL_ERROR_SIZE];
	const char *send;          /* a POST body, sent through on_send */
	size_t send_len, send_off;
	wsync_http_responder responder;   /* tests: answers instead of curl */
	void *responder_ctx;
};

/* A POST's body, handed to libcurl piece by piece.  libcurl silently sends
 * a request again when a reused keep-alive connection dies before any
 * answer byte: harmless for GET, PUT and DELETE, but a create the provider
 * already processed would be made twice.  So a POST's body cannot be
 * rewound: libcurl fails with CURLE_SEND_FAIL_REWIND instead of re-sending,
 * and the entry's next attempt reconciles (looks the object up) first. */
static size_t on_send(char *buf, size_t size, size_t n, void *p)
{
	wsync_http_client *c = p;
	size_t room = size * n, left = c->send_len - c->send_off;
	size_t k = left < room ? left : room;
	memcpy(buf, c->send + c->send_off, k);
	c->send_off += k;
	return k;
}

static int no_rewind(void *p, curl_off_t offset, int origin)
{
	(void)p;
	(void)offset;
	(void)origin;
	return CURL_SEEKFUNC_CANTSEEK;
}

/* ---------------------------------------------------------------------------
 * Request checks.
 */

/* RFC 9110 tchar: what a method or a header name may contain. */
static int is_tchar(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       http_is_digit(ch) || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int is_token(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return 0;
	return 1;
}

/* A header value must not smuggle a second header or a request in. */
static int is_field_value(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return 0;
	return 1;
}

static void scrub(void *p, size_t n)
{
	if (p)
		explicit_bzero(p, n);
}

/* ---------------------------------------------------------------------------
 * Client lifetime and the callbacks that fill it.
 */

wsync_http_client *wsync_http_client_new(void)
{
	wsync_http_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->curl = curl_easy_init();
	c->body = malloc(BODY_INITIAL);
	if (!c->curl || !c->body) {
		wsync_http_client_free(c);
		return NULL;
	}
	c->body_cap = BODY_INITIAL;
	c->body[0] = '\0';
	return c;
}

void wsync_http_client_free(wsync_http_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->body);
	free(c);
}

void wsync_http_client_set_responder(wsync_http_client *c, wsync_http_responder fn,
                                     void *ctx)
{
	if (!c)
		return;
	c->responder = fn;
	c->responder_ctx = fn ? ctx : NULL;
}

static int body_reserve(wsync_http_client *c, size_t need)
{
	size_t cap = c->body_cap;
	char *p;
	if (need <= cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(c->body, cap);
	if (!p)
		return -1;
	c->body = p;
	c->body_cap = cap;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	wsync_http_client *c = ud;
	size_t len = size * nmemb;      /* curl documents size == 1 */

	if (len > BODY_CAP - c->body_len) {
		c->body_overflow = 1;
		return 0;               /* aborts with CURLE_WRITE_ERROR */
	}
	if (body_reserve(c, c->body_len + len + 1) < 0) {
		c->body_oom = 1;
		return 0;
	}
	memcpy(c->body + c->body_len, data, len);
	c->body_len += len;
	c->body[c->body_len] = '\0';
	return len;
}

/* Copy the value of header `name` from `line` into out when it matches. */
static void capture_header(const char *line, size_t len, const char *name,
                           char *out)
{
	size_t nl = strlen(name), vlen;
	const char *v, *end = line + len;

	if (len <= nl || line[nl] != ':' || !http_ascii_ncaseeq(line, name, nl))
		return;
	for (v = line + nl + 1; v < end && http_is_space((unsigned char)*v); v++)
		;
	while (end > v && http_is_space((unsigned char)end[-1]))
		end--;
	vlen = (size_t)(end - v);
	if (vlen >= HEADER_VALUE_MAX)
		vlen = HEADER_VALUE_MAX - 1;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	wsync_http_client *c = ud;
	size_t len = size * nmemb;

	/* A new status line (after a 100 Continue, say) starts a new header
	 * block: only the final answer's headers count. */
	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		c->retry_after[0] = '\0';
		c->ratelimit_reset[0] = '\0';
		c->header_bytes = len;
		c->in_headers = 1;
		return len;
	}
	c->header_bytes += len;
	if (c->header_bytes > HEADERS_CAP) {
		c->headers_overflow = 1;
		return 0;               /* aborts with CURLE_WRITE_ERROR */
	}
	if (len <= 2 && (line[0] == '\r' || line[0] == '\n'))
		c->in_headers = 0;      /* the blank line ends the block */
	capture_header(line, len, "Retry-After", c->retry_after);
	capture_header(line, len, "X-RateLimit-Reset", c->ratelimit_reset);
	return len;
}


static int add_header(struct curl_slist **list, const char *name,
                      const char *value)
{
	size_t len = strlen(name) + (value ? strlen(value) : 0) + 3;
	struct curl_slist *next;
	char *line = malloc(len);

	if (!line)
		return -1;
	/* "Name;" is curl's way of sending a header with an empty value. */
	if (value && *value)
		snprintf(line, len, "%s: %s", name, value);
	else
		snprintf(line, len, "%s;", name);
	next = curl_slist_append(*list, line);
	scrub(line, len);
	free(line);
	if (!next)
		return -1;
	*list = next;
	return 0;
}

/* Append a ready-made header line.  "Name:" with nothing after it removes a
 * header curl would otherwise add on its own. */
static int append_line(struct curl_slist **list, const char *line)
{
	struct curl_slist *next = curl_slist_append(*list, line);
	if (!next)
		return -1;
	*list = next;
	return 0;
}

static int has_body(const wsync_http_request *req, const char *method)
{
	/* POST, PUT and PATCH always carry a body (possibly empty) so that a
	 * Content-Length: 0 is sent; servers answer 411 without one. */
	return req->body != NULL || strcmp(method, "POST") == 0 ||
	       strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
}

static void free_headers(struct curl_slist *list)
{
	/* The list holds the bearer token: wipe it before it goes back to
	 * the allocator. */
	for (struct curl_slist *l = list; l; l = l->next)
		scrub(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static struct curl_slist *build_headers(const wsync_http_request *req,
                                        const char *method, const char *bearer,
                                        char *err, size_t errlen)
{
	struct curl_slist *list = NULL;
	int rc = 0;

	if (req->content_type)
		rc |= add_header(&list, "Content-Type", req->content_type);
	else if (has_body(req, method))
		rc |= append_line(&list, "Content-Type:");
	/* No "Expect: 100-continue" round trip before large bodies. */
	rc |= append_line(&list, "Expect:");
	for (uint32_t i = 0; i < req->n_headers; i++)
		rc |= add_header(&list, req->headers[i].name, req->headers[i].value);
	if (bearer) {
		size_t len = strlen(bearer) + sizeof "Authorization: Bearer ";
		char *line = malloc(len);
		if (line) {
			snprintf(line, len, "Authorization: Bearer %s", bearer);
			rc |= append_line(&list, line);
			scrub(line, len);
			free(line);
		} else {
			rc = -1;
		}
	}
	if (rc != 0) {
		free_headers(list);
		snprintf(err, errlen, "out of memory building headers");
		return NULL;
	}
	return list;
}

/* Refuse what would produce a malformed or smuggled request. */
static int validate_request(const wsync_http_request *req, const char *bearer,
                            char *err, size_t errlen)
{
	const char *m = req->method ? req->method : "GET";

	if (!is_token(m)) {
		snprintf(err, errlen, "invalid HTTP method");
		return -1;
	}
	if (req->body == NULL && req->body_len != 0) {
		snprintf(err, errlen, "body_len %zu without a body", req->body_len);
		return -1;
	}
	if (req->content_type && !is_field_value(req->content_type)) {
		snprintf(err, errlen, "invalid Content-Type value");
		return -1;
	}
	if (req->n_headers > 0 && !req->headers) {
		snprintf(err, errlen, "n_headers set without headers");
		return -1;
	}
	for (uint32_t i = 0; i < req->n_headers; i++) {
		const wsync_http_header *h = &req->headers[i];
		if (!is_token(h->name) || (h->value && !is_field_value(h->value))) {
			snprintf(err, errlen, "invalid header #%u", (unsigned)i);
			return -1;
		}
	}
	if (bearer && (!*bearer || !is_field_value(bearer))) {
		/* Say nothing about the token's content. */
		snprintf(err, errlen, "unusable bearer token");
		return -1;
	}
	return 0;
}

#define SETOPT(h, opt, val)                                                    \
	do {                                                                   \
		CURLcode setopt_rc_ = curl_easy_setopt((h), (opt), (val));     \
		if (setopt_rc_ != CURLE_OK)                                    \
			return setopt_rc_;                                     \
	} while (0)

static CURLcode set_method(wsync_http_client *c, const wsync_http_request *req,
                           const char *method)
{
	CURL *h = c->curl;
	if (strcmp(method, "POST") == 0 && has_body(req, method)) {
		c->send = req->body ? req->body : "";
		c->send_len = req->body_len;
		c->send_off = 0;
		SETOPT(h, CURLOPT_POST, 1L);
		SETOPT(h, CURLOPT_POSTFIELDS, (char *)NULL);
		SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		/* libcurl's default upload buffer is 64 KiB per handle, touched
		 * by every POST: a plan is a few KiB, and the daemon keeps a
		 * handle per call thread. */
		SETOPT(h, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
		SETOPT(h, CURLOPT_READFUNCTION, on_send);
		SETOPT(h, CURLOPT_READDATA, c);
		SETOPT(h, CURLOPT_SEEKFUNCTION, no_rewind);
		SETOPT(h, CURLOPT_SEEKDATA, c);
		return CURLE_OK;
	}
	if (strcmp(method, "HEAD") == 0)
		SETOPT(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") == 0 && !req->body)
		SETOPT(h, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") != 0)
		SETOPT(h, CURLOPT_CUSTOMREQUEST, method);
	if (has_body(req, method) && strcmp(method, "HEAD") != 0) {
		/* Size first: with a size set, POSTFIELDS is binary-safe. */
		SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SETOPT(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	return CURLE_OK;
}

/* TLS, protocols, redirects: the parts that are never up to a caller. */
static CURLcode set_safety(CURL *h, const wsync_http_settings *s)
{
	SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s && s->ca_file && *s->ca_file)
		SETOPT(h, CURLOPT_CAINFO, s->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
	SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	SETOPT(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* Providers redirect http -> https; following would hide a wrong
	 * base_url and could carry a body (and a token) somewhere else. */
	SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)BODY_CAP);
	return CURLE_OK;
}

static CURLcode set_options(wsync_http_client *c, const wsync_http_settings *s,
                            const char *url, const wsync_http_request *req,
                            const char *method, struct curl_slist *headers)
{
	CURL *h = c->curl;
	long connect_s = s && s->connect_timeout_s > 0 ? s->connect_timeout_s
	                                               : DEFAULT_CONNECT_TIMEOUT_S;
	long total_s = s && s->timeout_s > 0 ? s->timeout_s : DEFAULT_TIMEOUT_S;
	const char *ua = s && s->user_agent ? s->user_agent : "wsync/" WSYNC_VERSION;
	CURLcode rc = set_safety(h, s);

	if (rc != CURLE_OK)
		return rc;
	SETOPT(h, CURLOPT_URL, url);
	SETOPT(h, CURLOPT_ERRORBUFFER, c->errbuf);
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);   /* no SIGALRM in a threaded daemon */
	SETOPT(h, CURLOPT_CONNECTTIMEOUT, connect_s);
	SETOPT(h, CURLOPT_TIMEOUT, total_s);
	SETOPT(h, CURLOPT_USERAGENT, ua);
	SETOPT(h, CURLOPT_ACCEPT_ENCODING, "");  /* every encoding curl decodes */
	SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(h, CURLOPT_HTTPHEADER, headers);
	SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(h, CURLOPT_WRITEDATA, c);
	SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(h, CURLOPT_HEADERDATA, c);
	/* A connection idle this long may have been closed by the server:
	 * open a new one rather than have a POST fail on it (see on_send). */
	SETOPT(h, CURLOPT_MAXAGE_CONN, 20L);
	return set_method(c, req, method);
}

#undef SETOPT

/* ---------------------------------------------------------------------------
 * perform
 */

static void result_reset(wsync_http_client *c, wsync_http_result *res)
{
	c->body_len = 0;
	c->body[0] = '\0';
	c->body_overflow = 0;
	c->body_oom = 0;
	c->header_bytes = 0;
	c->in_headers = 0;
	c->headers_overflow = 0;
	c->retry_after[0] = '\0';
	c->ratelimit_reset[0] = '\0';
	c->errbuf[0] = '\0';
	memset(res, 0, sizeof *res);
	res->body = c->body;
}

/* A request we refuse to send: transport_error stays 0, so classify calls it
 * a bug (WSYNC_E_UNEXPECTED), not provider trouble. */
static int refuse(wsync_http_result *res, const char *why)
{
	snprintf(res->error, sizeof res->error, "request not sent: %s", why);
	return -1;
}

/* No answer: nothing of a partial body is shown to anyone. */
static int drop_body(wsync_http_client *c, wsync_http_result *res)
{
	res->status = 0;
	c->body_len = 0;
	c->body[0] = '\0';
	res->body = c->body;
	res->body_len = 0;
	return -1;
}

static int transport_failure(wsync_http_client *c, wsync_http_result *res,
                             CURLcode rc)
{
	const char *detail = c->errbuf[0] ? c->errbuf : "";

	/* libcurl reports a header line over its limit as "Out of memory"
	 * (CURLE_TOO_LARGE, 100, from curl 8.6): say what it is. */
	if (c->headers_overflow ||
	    (c->in_headers && (rc == CURLE_OUT_OF_MEMORY || (int)rc == 100))) {
		res->transport_error = 1;
		snprintf(res->error, sizeof res->error,
		         "response header too large (over %zu bytes)", HEADERS_CAP);
		return drop_body(c, res);
	}
	if (rc == CURLE_SEND_FAIL_REWIND)
		detail = "the reused connection closed before an answer; not sent again, "
		         "since the provider may have processed it";
	else if (c->body_overflow)
		detail = "response body larger than 8 MiB";
	else if (c->body_oom)
		detail = "out of memory storing the response body";
	else if (rc == CURLE_FILESIZE_EXCEEDED)
		detail = "response body larger than 8 MiB";
	res->transport_error = 1;
	snprintf(res->error, sizeof res->error, "curl error %d (%s)%s%.180s", (int)rc,
	         curl_easy_strerror(rc), *detail ? ": " : "", detail);
	return drop_body(c, res);
}

/* The responder's answer (wsync_http_client_set_responder) through the
 * callbacks libcurl would call, with the errors libcurl would report. */
static CURLcode canned_perform(wsync_http_client *c, const char *url,
                               const wsync_http_request *req, long *status)
{
	wsync_http_canned a = {0, NULL, NULL, 0};
	char line[32], blank[] = "\r\n";
	const char *h;

	c->responder(c->responder_ctx, url, req, &a);
	if (a.status < 100 || a.status > 999) {
		snprintf(c->errbuf, sizeof c->errbuf, "no answer (test responder)");
		return CURLE_COULDNT_CONNECT;
	}
	snprintf(line, sizeof line, "HTTP/1.1 %ld\r\n", a.status);
	on_header(line, 1, strlen(line), c);
	for (h = a.headers; h && *h;) {
		const char *nl = strchr(h, '\n');
		size_t len = nl ? (size_t)(nl - h) + 1 : strlen(h);
		if (on_header((char *)h, 1, len, c) != len)
			return CURLE_WRITE_ERROR;
		h += len;
	}
	if (on_header(blank, 1, 2, c) != 2)
		return CURLE_WRITE_ERROR;
	if (a.body && a.body_len && on_body((char *)a.body, 1, a.body_len, c) != a.body_len)
		return CURLE_WRITE_ERROR;
	*status = a.status;
	return CURLE_OK;
}

int wsync_http_perform(wsync_http_client *c, const wsync_http_settings *s,
                       const wsync_http_request *req, const char *bearer,
                       wsync_http_result *res, int64_t now)
{
	const char *method;
	char why[128];
	struct curl_slist *headers;
	char *url;
	CURLcode rc;
	long status = 0;

	if (!c || !req || !res)
		return -1;
	result_reset(c, res);
	method = req->method ? req->method : "GET";
	if (validate_request(req, bearer, why, sizeof why) < 0)
		return refuse(res, why);
	url = wsync_http_url(s, req->path, why, sizeof why);
	if (!url)
		return refuse(res, why);
	headers = build_headers(req, method, bearer, why, sizeof why);
	if (!headers) {
		free(url);
		return refuse(res, why);
	}
	if (c->responder) {
		rc = canned_perform(c, url, req, &status);
	} else {
		curl_easy_reset(c->curl);
		rc = set_options(c, s, url, req, method, headers);
		if (rc == CURLE_OK)
			rc = curl_easy_perform(c->curl);
		/* The handle keeps pointers to both; drop them before freeing. */
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	}
	free_headers(headers);
	free(url);
	if (rc != CURLE_OK)
		return transport_failure(c, res, rc);
	res->status = status;
	res->body = c->body;
	res->body_len = c->body_len;
	/* X-RateLimit-Reset comes with every Wahoo answer and only means "wait"
	 * on a 429; Retry-After means "wait" whatever the status (503). */
	res->retry_after_s = wsync_parse_retry_after(
		c->retry_after[0] ? c->retry_after : NULL,
		status == 429 && c->ratelimit_reset[0] ? c->ratelimit_reset : NULL,
		now);
	return 0;
}

