/*
 * fuzz_retry_after.c -- libFuzzer target for Retry-After, X-RateLimit-Reset
 * and HTTP-date parsing (core/host/http/retry_after.c).
 *
 * Input: the Retry-After value, then a '\n', then the X-RateLimit-Reset
 * value (no '\n': only Retry-After).  A NUL ends a value, as it ends a
 * captured header.  Both are provider-controlled header values.
 *
 * Checks, beyond the sanitizers (abort() when one fails):
 *   - the wait is 0 .. 86400 seconds, for a clock anywhere from 1970 to 2100;
 *   - one second later the wait is the same or one second shorter (a
 *     delta is fixed, a date or a unix time comes one second nearer);
 *   - the same holds for each header alone;
 *   - a plain delta of digits d (no sign, no blank) is min(d, 86400).
 */
#include "host/http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DAY 86400

static void check_clock(const char *ra, const char *rr, int64_t now)
{
	int64_t w = wsync_parse_retry_after(ra, rr, now);
	int64_t later = wsync_parse_retry_after(ra, rr, now + 1);

	if (w < 0 || w > DAY || later < 0 || later > DAY)
		abort();
	if (later > w || w - later > 1)
		abort();
}

/* A string of 1..12 digits, nothing else. */
static int plain_digits(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n > 0 && n <= 12 && s[n] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t clocks[] = {0, 1000000000, 1767225600, 4102444800};
	char *buf = malloc(size + 1), *ra, *rr = NULL, *nl;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	ra = buf;
	nl = strchr(buf, '\n');
	if (nl) {
		*nl = '\0';
		rr = nl + 1;
	}
	for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		check_clock(ra, rr, clocks[i]);
		check_clock(NULL, rr, clocks[i]);
		check_clock(ra, NULL, clocks[i]);
	}
	if (plain_digits(ra)) {
		int64_t d = strtoll(ra, NULL, 10);
		if (wsync_parse_retry_after(ra, rr, 1767225600) != (d > DAY ? DAY : d))
			abort();
	}
	free(buf);
	return 0;
}
