/*
 * http/retry_after.c -- how long a provider asks wsync to wait:
 * Retry-After (delta-seconds or an HTTP-date) and X-RateLimit-Reset.
 */
#include "host/http.h"
#include "host/http/internal.h"

#include <curl/curl.h>
#include <string.h>
#include <time.h>

#define HEADER_VALUE_MAX WSYNC_HTTP_HEADER_VALUE_MAX
#define RETRY_AFTER_MAX_S 86400          /* longer waits are nonsense */
#define EPOCH_THRESHOLD 1000000000LL     /* see parse_ratelimit_reset */

/* An optionally signed decimal integer, blanks around it; saturates. */
static int parse_integer(const char *s, const char *end, int64_t *out)
{
	int neg = 0, digits = 0;
	int64_t v = 0;

	while (s < end && http_is_space((unsigned char)*s))
		s++;
	while (end > s && http_is_space((unsigned char)end[-1]))
		end--;
	if (s < end && (*s == '-' || *s == '+'))
		neg = *s++ == '-';
	for (; s < end && http_is_digit((unsigned char)*s); s++, digits++)
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
	if (!http_is_digit((unsigned char)s[0]) || !http_is_digit((unsigned char)s[1]))
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
	while (s < end && http_is_space((unsigned char)*s))
		s++;
	while (end > s && http_is_space((unsigned char)end[-1]))
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

