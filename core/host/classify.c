#include "classify.h"

#include "wsync/plugin.h"

const char *wsync_error_type(int32_t status)
{
	switch (status) {
	case WSYNC_OK:
	case WSYNC_NOT_APPLICABLE: return NULL;
	case WSYNC_E_RECORD_GONE: return "record_not_found";
	case WSYNC_E_RATE_LIMIT: return "rate_limit";
	case WSYNC_E_AUTH: return "auth_error";
	case WSYNC_E_PROVIDER:
	case WSYNC_E_NOT_FOUND: return "provider_error";
	case WSYNC_E_INVALID: return "invalid_request";
	case WSYNC_E_INVALID_WORKOUT: return "invalid_workout";
	default: return "unexpected_error";
	}
}

/* Transient trouble and unknown statuses are retried with backoff. */
static int retried(int32_t status)
{
	switch (status) {
	case WSYNC_OK:
	case WSYNC_NOT_APPLICABLE:
	case WSYNC_E_RECORD_GONE:
	case WSYNC_E_RATE_LIMIT:
	case WSYNC_E_AUTH:
	case WSYNC_E_INVALID:
	case WSYNC_E_INVALID_WORKOUT:
	case WSYNC_E_CREATED_WITHOUT_ID:
		return 0;
	default:
		return 1;
	}
}

wsync_outcome wsync_classify(int32_t status, int retry_count, int max_retries,
                             const int *backoff_s, int n_backoff,
                             int64_t retry_after_s, double jitter)
{
	wsync_outcome o = {1, wsync_error_type(status), 0, retry_count, 1};

	if (status == WSYNC_E_RATE_LIMIT) {
		o.processed = 0;
		o.delay_s = retry_after_s > 0 ? retry_after_s : 60;
		o.uses_attempt = 0;
	} else if (retried(status)) {
		if (retry_count < max_retries && n_backoff > 0) {
			int step = retry_count < n_backoff ? retry_count : n_backoff - 1;
			double base = backoff_s[step];
			o.processed = 0;
			o.retry_count = retry_count + 1;
			o.delay_s = (int64_t)(base + base * 0.1 * jitter);
			if (retry_after_s > o.delay_s)
				o.delay_s = retry_after_s;
			if (o.delay_s < 1)
				o.delay_s = 1;
		}
	}
	return o;
}
