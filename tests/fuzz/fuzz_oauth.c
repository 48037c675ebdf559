/*
 * fuzz_oauth.c -- libFuzzer target for the token endpoint's answers
 * (core/host/oauth.c): the 2xx JSON answer of a refresh, and the "error"
 * code of a 400/401 refusal.  The input is the answer body, as many bytes
 * as the endpoint sent (it may hold NULs).
 *
 * Checks, beyond the sanitizers (abort() when one fails):
 *   - an accepted answer has an access token of printable ASCII without
 *     blanks (it goes into an Authorization header), a refresh token that is
 *     absent or the same kind, and expires_in from 0 to 10 years;
 *   - a refused answer leaves the struct zeroed;
 *   - the error code is "" or 1..64 bytes of [A-Za-z0-9_.-], and it is cut
 *     to nothing rather than truncated when the buffer is too small.
 */
#include "host/oauth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEN_YEARS (10LL * 365 * 86400)
#define CODE_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

static int usable(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
			return 0;
	return 1;
}

static void check_answer(const char *body, size_t len)
{
	wsync_token_answer a;

	if (wsync_oauth_parse_answer(body, len, &a) == 0) {
		if (!usable(a.access_token) || (a.refresh_token && !usable(a.refresh_token)) ||
		    a.expires_in < 0 || a.expires_in > TEN_YEARS)
			abort();
	} else if (a.access_token || a.refresh_token || a.expires_in) {
		abort();
	}
	wsync_token_answer_clear(&a);
	if (a.access_token || a.refresh_token)
		abort();
}

static void check_error_code(const char *body, size_t len)
{
	char code[72], small[8];
	size_t n;

	memset(code, 'x', sizeof code);
	wsync_oauth_error_code(body, len, code, sizeof code);
	n = strlen(code);
	if (n > 64 || strspn(code, CODE_CHARS) != n)
		abort();
	memset(small, 'x', sizeof small);
	wsync_oauth_error_code(body, len, small, sizeof small);
	/* Same code when it fits, else nothing: never a truncated code. */
	if (n < sizeof small ? strcmp(small, code) != 0 : small[0] != '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_answer((const char *)data, size);
	check_error_code((const char *)data, size);
	return 0;
}
