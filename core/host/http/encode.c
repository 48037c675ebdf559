/*
 * http/encode.c -- URL joining, url-encoding for form bodies, base64.
 */
#include "host/http.h"
#include "host/http/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_absolute_url(const char *path)
{
	return http_ascii_ncaseeq(path, "https://", 8) || http_ascii_ncaseeq(path, "http://", 7);
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
		    http_is_digit(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
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
