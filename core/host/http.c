/*
 * http.c -- the core's HTTP client: one libcurl easy handle per worker.
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
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef WSYNC_VERSION
#define WSYNC_VERSION "0"
#endif

#define BODY_CAP ((size_t)8 << 20)       /* larger answers are refused */
#define BODY_INITIAL ((size_t)16 << 10)
#define HEADER_VALUE_MAX 256
#define DEFAULT_CONNECT_TIMEOUT_S 10L
#define DEFAULT_TIMEOUT_S 30L
#define RETRY_AFTER_MAX_S 86400          /* longer waits are nonsense */
#define RATE_LIMIT_DEFAULT_S 60
#define BODY_EXCERPT 200
#define EPOCH_THRESHOLD 1000000000LL     /* see parse_ratelimit_reset */

struct wsync_http_client {
	CURL *curl;
	char *body;                /* NUL-terminated, body_len bytes before it */
	size_t body_len;
	size_t body_cap;
	int body_overflow;         /* the answer passed BODY_CAP */
	int body_oom;
	char retry_after[HEADER_VALUE_MAX];
	char ratelimit_reset[HEADER_VALUE_MAX];
	char errbuf[CURL_ERROR_SIZE];
};

/* ---------------------------------------------------------------------------
 * Small locale-free helpers (plugins must not change the locale, but the
 * core does not rely on that either).
 */

static int ascii_lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int ascii_ncaseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static int is_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* RFC 9110 tchar: what a method or a header name may contain. */
static int is_tchar(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       is_digit(ch) || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
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

	if (len <= nl || line[nl] != ':' || !ascii_ncaseeq(line, name, nl))
		return;
	for (v = line + nl + 1; v < end && is_space((unsigned char)*v); v++)
		;
	while (end > v && is_space((unsigned char)end[-1]))
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
		return len;
	}
	capture_header(line, len, "Retry-After", c->retry_after);
	capture_header(line, len, "X-RateLimit-Reset", c->ratelimit_reset);
	return len;
}

/* ---------------------------------------------------------------------------
 * Building one request.
 */

static int is_absolute_url(const char *path)
{
	return ascii_ncaseeq(path, "https://", 8) || ascii_ncaseeq(path, "http://", 7);
}

char *wsync_http_url(const wsync_http_settings *s, const char *path, char *err,
                     size_t errlen)
{
	const char *base = s ? s->base_url : NULL;
	size_t blen, plen;
	char *url;

	if (!path)
		path = "";
	if (is_absolute_url(path))
		return strdup(path);
	if (!base || !*base) {
		snprintf(err, errlen, "relative path and no base_url configured");
		return NULL;
	}
	blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	while (*path == '/')
		path++;
	plen = strlen(path);
	url = malloc(blen + plen + 2);
	if (!url) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(url, base, blen);
	url[blen] = '/';
	memcpy(url + blen + 1, path, plen + 1);
	return url;
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

static CURLcode set_method(CURL *h, const wsync_http_request *req,
                           const char *method)
{
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
	return set_method(h, req, method);
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

static int transport_failure(wsync_http_client *c, wsync_http_result *res,
                             CURLcode rc)
{
	const char *detail = c->errbuf[0] ? c->errbuf : "";

	if (c->body_overflow)
		detail = "response body larger than 8 MiB";
	else if (c->body_oom)
		detail = "out of memory storing the response body";
	else if (rc == CURLE_FILESIZE_EXCEEDED)
		detail = "response body larger than 8 MiB";
	res->transport_error = 1;
	res->status = 0;
	c->body_len = 0;
	c->body[0] = '\0';
	res->body = c->body;
	res->body_len = 0;
	snprintf(res->error, sizeof res->error, "curl error %d (%s)%s%.180s", (int)rc,
	         curl_easy_strerror(rc), *detail ? ": " : "", detail);
	return -1;
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
	curl_easy_reset(c->curl);
	rc = set_options(c, s, url, req, method, headers);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(c->curl);
	/* The handle keeps pointers to both; drop them before freeing. */
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	free_headers(headers);
	free(url);
	if (rc != CURLE_OK)
		return transport_failure(c, res, rc);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
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

/* ---------------------------------------------------------------------------
 * classify
 */

static int32_t status_class(long status)
{
	if (status >= 200 && status <= 299)
		return WSYNC_OK;
	switch (status) {
	case 401: case 403: case 412:
		return WSYNC_E_AUTH;
	case 404: case 410:
		return WSYNC_E_NOT_FOUND;
	case 429:
		return WSYNC_E_RATE_LIMIT;
	case 408:               /* the server timed out waiting: transient */
		return WSYNC_E_PROVIDER;
	default:
		break;
	}
	if (status >= 400 && status <= 499)
		return WSYNC_E_INVALID;
	if (status >= 500 && status <= 599)
		return WSYNC_E_PROVIDER;
	return WSYNC_E_UNEXPECTED;   /* 1xx, 3xx (not followed), nonsense */
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char b = p[0];
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (b < 0x80)
		return 1;
	if (b >= 0xC2 && b <= 0xDF)
		len = 2;
	else if (b >= 0xE0 && b <= 0xEF)
		len = 3;
	else if (b >= 0xF0 && b <= 0xF4)
		len = 4;
	else
		return 0;
	if (b == 0xE0)
		lo = 0xA0;
	else if (b == 0xED)
		hi = 0x9F;      /* no surrogates */
	else if (b == 0xF0)
		lo = 0x90;
	else if (b == 0xF4)
		hi = 0x8F;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

/* Up to `max` bytes of `body` as one line of valid UTF-8 (the message ends
 * up in a PostgreSQL text column and in logs): control bytes become spaces,
 * invalid bytes '?'. */
static void body_excerpt(const char *body, size_t len, size_t max, char *out,
                         size_t outlen)
{
	const unsigned char *p = (const unsigned char *)body;
	size_t o = 0, i = 0;

	if (len > max)
		len = max;
	while (i < len && o + 5 < outlen) {
		size_t n = utf8_len(p + i, len - i);
		if (n == 0) {
			out[o++] = '?';
			i++;
		} else if (n == 1) {
			out[o++] = (p[i] < 0x20 || p[i] == 0x7F) ? ' ' : (char)p[i];
			i++;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		}
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
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

int32_t wsync_http_classify(const wsync_http_request *req,
                            const wsync_http_result *res, char *msg,
                            size_t msglen, int64_t *retry_after_s)
{
	char target[192], excerpt[BODY_EXCERPT * 4 + 8];
	char scratch[8];
	int32_t st;
	int64_t wait = 0;

	if (!msg || msglen == 0) {
		msg = scratch;
		msglen = sizeof scratch;
	}
	describe_target(req, target, sizeof target);
	if (res->status == 0) {
		st = res->transport_error ? WSYNC_E_PROVIDER : WSYNC_E_UNEXPECTED;
		snprintf(msg, msglen, "%s failed: %s", target,
		         res->error[0] ? res->error : "no answer");
	} else {
		st = status_class(res->status);
		body_excerpt(res->body ? res->body : "", res->body ? res->body_len : 0,
		             BODY_EXCERPT, excerpt, sizeof excerpt);
		snprintf(msg, msglen, "HTTP %ld from %s: %s%s", res->status, target,
		         excerpt[0] ? excerpt : "(empty body)",
		         res->status >= 300 && res->status <= 399
		                 ? " (redirects are not followed: check base_url)"
		                 : "");
	}
	if (st == WSYNC_E_RATE_LIMIT)
		wait = res->retry_after_s > 0 ? res->retry_after_s : RATE_LIMIT_DEFAULT_S;
	else if (st == WSYNC_E_PROVIDER)
		wait = res->retry_after_s;  /* a 503's Retry-After, else 0 */
	if (retry_after_s)
		*retry_after_s = wait;
	return st;
}

/* ---------------------------------------------------------------------------
 * Retry-After and X-RateLimit-Reset
 */

/* An optionally signed decimal integer, blanks around it; saturates. */
static int parse_integer(const char *s, const char *end, int64_t *out)
{
	int neg = 0, digits = 0;
	int64_t v = 0;

	while (s < end && is_space((unsigned char)*s))
		s++;
	while (end > s && is_space((unsigned char)end[-1]))
		end--;
	if (s < end && (*s == '-' || *s == '+'))
		neg = *s++ == '-';
	for (; s < end && is_digit((unsigned char)*s); s++, digits++)
		if (v < 1000000000000LL)
			v = v * 10 + (*s - '0');
	if (!digits || s != end)
		return -1;
	*out = neg ? -v : v;
	return 0;
}

static int month_index(const char *m)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (int i = 0; i < 12; i++)
		if (memcmp(months + 3 * i, m, 3) == 0)
			return i;
	return -1;
}

static int two_digits(const char *s, int *out)
{
	if (!is_digit((unsigned char)s[0]) || !is_digit((unsigned char)s[1]))
		return -1;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

/* IMF-fixdate, fixed positions: "Wed, 21 Oct 2026 07:28:00 GMT". */
static int parse_imf_fixdate(const char *s, size_t len, int64_t *out)
{
	struct tm tm;
	int day, year_hi, year_lo, hour, min, sec, mon;
	time_t t;

	if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
	    s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
	    memcmp(s + 25, " GMT", 4) != 0)
		return -1;
	mon = month_index(s + 8);
	if (mon < 0 || two_digits(s + 5, &day) || two_digits(s + 12, &year_hi) ||
	    two_digits(s + 14, &year_lo) || two_digits(s + 17, &hour) ||
	    two_digits(s + 20, &min) || two_digits(s + 23, &sec))
		return -1;
	if (day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = year_hi * 100 + year_lo - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t;
	return 0;
}

/* Retry-After: delta-seconds, or an HTTP-date.  RFC 9110 says recipients
 * accept the two obsolete date forms too (RFC 850, asctime); those are rare
 * enough to leave to curl_getdate(), which is locale-free. */
static int parse_retry_after_value(const char *s, int64_t now, int64_t *out)
{
	const char *end = s + strlen(s);
	char buf[HEADER_VALUE_MAX];
	int64_t when;
	time_t t;

	if (parse_integer(s, end, out) == 0)
		return 0;
	while (s < end && is_space((unsigned char)*s))
		s++;
	while (end > s && is_space((unsigned char)end[-1]))
		end--;
	if (parse_imf_fixdate(s, (size_t)(end - s), &when) == 0) {
		*out = when - now;
		return 0;
	}
	if ((size_t)(end - s) >= sizeof buf)
		return -1;
	memcpy(buf, s, (size_t)(end - s));
	buf[end - s] = '\0';
	t = curl_getdate(buf, NULL);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t - now;
	return 0;
}

/*
 * X-RateLimit-Reset: Wahoo documents one value, the seconds until the limit
 * resets.  Two shapes seen elsewhere are accepted as well:
 *  - a comma list (one value per window, like Wahoo's X-RateLimit-Limit and
 *    -Remaining): the LARGEST value is taken.  A 429 says some window is
 *    used up without saying which; only the largest reset is sure to be past
 *    it, and an early retry would burn calls from the app-wide quota that
 *    every user shares.  The result is capped at a day anyway.
 *  - a unix timestamp (GitHub style): no "seconds until" is >= 10^9 (31
 *    years), so such a value is taken as an absolute time.
 */
static int parse_ratelimit_reset(const char *s, int64_t now, int64_t *out)
{
	int64_t best = 0, v;
	int found = 0;

	for (;;) {
		const char *comma = strchr(s, ',');
		const char *end = comma ? comma : s + strlen(s);
		if (parse_integer(s, end, &v) < 0)
			return -1;
		if (v >= EPOCH_THRESHOLD)
			v -= now;
		if (!found || v > best)
			best = v;
		found = 1;
		if (!comma)
			break;
		s = comma + 1;
	}
	*out = best;
	return 0;
}

static int64_t clamp_wait(int64_t v)
{
	if (v < 0)
		return 0;
	return v > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : v;
}

int64_t wsync_parse_retry_after(const char *retry_after,
                                const char *ratelimit_reset, int64_t now)
{
	int64_t v;

	if (retry_after && parse_retry_after_value(retry_after, now, &v) == 0)
		return clamp_wait(v);
	if (ratelimit_reset && parse_ratelimit_reset(ratelimit_reset, now, &v) == 0)
		return clamp_wait(v);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Encoders
 */

char *wsync_url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len, o = 0;
	char *out;

	if (!s)
		return NULL;
	len = strlen(s);
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		/* RFC 3986 unreserved characters stay as they are. */
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    is_digit(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 0x0F];
		}
	}
	out[o] = '\0';
	return out;
}

char *wsync_base64_encode(const void *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = data;
	size_t o = 0, i;
	char *out;

	if (!data && len)
		return NULL;
	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}
