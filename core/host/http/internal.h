/*
 * http/internal.h -- what the parts of the core's HTTP client share and
 * nobody else needs: locale-free character tests (plugins must not change
 * the locale, but the core does not rely on that either) and the limits the
 * parts agree on.  The public face of the HTTP client is core/host/http.h;
 * the classification it implements is the table in include/wsync/plugin.h.
 *
 *   perform.c      libcurl: one easy handle per worker, request checks,
 *                  header capture, transport failures
 *   status.c       an answer -> WSYNC_* status and one-line message
 *   retry_after.c  Retry-After, X-RateLimit-Reset, HTTP-date
 *   encode.c       URL joining, url-encoding, base64
 *   excerpt.c      a body as one line of valid UTF-8 for messages
 *   redact.c       secrets masked out of messages and log lines
 */
#ifndef WSYNC_HTTP_INTERNAL_H
#define WSYNC_HTTP_INTERNAL_H

#include <stddef.h>
#include <string.h>

#define WSYNC_HTTP_HEADER_VALUE_MAX 256 /* captured header values */
#define WSYNC_HTTP_BODY_EXCERPT 200     /* bytes of body in a message */

static inline int http_ascii_lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static inline int http_ascii_ncaseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (http_ascii_lower((unsigned char)a[i]) !=
		    http_ascii_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

static inline int http_is_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static inline int http_is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* Up to `max` bytes of `body` as one line of valid UTF-8 into out (outlen
 * >= 4 * max + 8 keeps every byte): control bytes become spaces, invalid
 * bytes '?', trailing blanks dropped.  excerpt.c. */
void wsync_http_body_excerpt(const char *body, size_t len, size_t max,
                             char *out, size_t outlen);

#endif
