/*
 * http/redact.c -- secrets masked out of text that leaves the process
 * (log lines, workout_sync_queue.error_message).  A provider may echo the
 * bearer token, the refresh token or the client secret in an error body;
 * the core masks the values it knows and whatever looks like a credential.
 */
#include "host/http.h"
#include "host/http/internal.h"

/* Credential names whose value follows as JSON ("access_token": "x") or as
 * a form or query field (access_token=x). */
static const char *const secret_keys[] = {
	"access_token", "refresh_token", "client_secret", "id_token",
};

#define MASK "***"
#define MIN_SECRET_LEN 4   /* shorter values would mask ordinary words */

static int ident_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       http_is_digit(ch) || ch == '_' || ch == '-';
}

/* Characters of a bearer token (RFC 6750 b64token) or a field value. */
static int value_char(int ch)
{
	return ch > 0x20 && ch != 0x7F && ch != '"' && ch != '\\' && ch != '&' &&
	       ch != ',' && ch != ';' && ch != '}' && ch != '\'';
}

/* Length of `secret` without the line end a secret file usually has. */
static size_t secret_len(const char *secret)
{
	size_t n = strlen(secret);
	while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
		n--;
	return n;
}

/* Length of the occurrence of a known secret at s (0: none).  A secret cut
 * off by the end of the text (a truncated excerpt) counts too. */
static size_t known_at(const char *s, const char *const *secrets, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		size_t len, i;
		if (!secrets[k] || (len = secret_len(secrets[k])) < MIN_SECRET_LEN)
			continue;
		for (i = 0; i < len && s[i] && s[i] == secrets[k][i]; i++)
			;
		if (i == len || (s[i] == '\0' && i >= MIN_SECRET_LEN))
			return i;
	}
	return 0;
}

/* At s, "Bearer <token>" or "<key>" + separators + ':' or '=' + separators:
 * the length up to the value (0: none). */
static size_t prefix_at(const char *s, const char *start)
{
	size_t i;

	if (s > start && ident_char((unsigned char)s[-1]))
		return 0;
	if (http_ascii_ncaseeq(s, "bearer ", 7)) {
		for (i = 7; s[i] == ' '; i++)
			;
		return i;
	}
	for (size_t k = 0; k < sizeof secret_keys / sizeof secret_keys[0]; k++) {
		size_t kl = strlen(secret_keys[k]);
		if (!http_ascii_ncaseeq(s, secret_keys[k], kl) ||
		    ident_char((unsigned char)s[kl]))
			continue;
		/* "key":"v", \"key\": \"v\", key=v, key: v */
		for (i = kl; s[i] == '"' || s[i] == '\\' || s[i] == ' '; i++)
			;
		if (s[i] != ':' && s[i] != '=')
			return 0;
		for (i++; s[i] == '"' || s[i] == '\\' || s[i] == ' '; i++)
			;
		return i;
	}
	return 0;
}

size_t wsync_redact(char *s, const char *const *secrets, size_t n)
{
	size_t i = 0, o = 0, masked = 0, len;
	const char *start = s;

	if (!s)
		return 0;
	/* Output never outgrows input (o <= i), so the text is rewritten in
	 * place: a mask is at most as long as what it replaces. */
	while (s[i]) {
		if ((len = known_at(s + i, secrets, n)) > 0) {
			memcpy(s + o, MASK, 3);
			o += 3;
			i += len;
			masked++;
			continue;
		}
		if ((len = prefix_at(s + i, start)) > 0 &&
		    value_char((unsigned char)s[i + len])) {
			size_t v = 0;
			memmove(s + o, s + i, len);
			o += len;
			i += len;
			while (value_char((unsigned char)s[i + v]))
				v++;
			memset(s + o, '*', v < 3 ? v : 3);
			o += v < 3 ? v : 3;
			i += v;
			masked++;
			continue;
		}
		s[o++] = s[i++];
	}
	s[o] = '\0';
	return masked;
}
