/*
 * http/excerpt.c -- the start of a response body as one line of valid
 * UTF-8: the message it goes into ends up in a PostgreSQL text column and
 * in logs.
 */
#include "host/http/internal.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
size_t wsync_utf8_len(const unsigned char *p, size_t n)
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
void wsync_http_body_excerpt(const char *body, size_t len, size_t max,
                             char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)body;
	size_t o = 0, i = 0, full = len;

	if (len > max)
		len = max;
	while (i < len && o + 5 < outlen) {
		/* Judge a character on the whole text, so that one cut by `max`
		 * is left out rather than shown as '?'. */
		size_t n = wsync_utf8_len(p + i, full - i);
		if (n > 1 && i + n > len)
			break;
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

