/*
 * classify.h -- what happens to a queue entry after an operation returned
 * `status` (DESIGN section 5).  Pure functions: unit-tested directly.
 *
 *   status               error_type        retry  next attempt
 *   OK, NOT_APPLICABLE   (none)            -      processed
 *   E_NOT_FOUND (entity) record_not_found  no     processed
 *   E_RATE_LIMIT         rate_limit        yes    retry_after (else 60 s); no retry used
 *   E_AUTH               auth_error        no     processed (user must reconnect)
 *   E_PROVIDER           provider_error    yes    backoff[retry_count], then permanent
 *   E_UNEXPECTED         unexpected_error  yes    backoff[retry_count], then permanent
 *   E_INVALID            invalid_request   no     processed (400/422: same request fails again)
 *   E_INVALID_WORKOUT    invalid_workout   no     processed (fix the text)
 */
#ifndef WSYNC_CLASSIFY_H
#define WSYNC_CLASSIFY_H

#include <stdint.h>

/* Status the engine uses when the entity row no longer exists. */
#define WSYNC_E_RECORD_GONE 100

typedef struct wsync_outcome {
	int processed;            /* 1: processed_at = now (success or permanent) */
	const char *error_type;   /* NULL on success */
	int64_t delay_s;          /* next_retry_at = now + delay_s when !processed */
	int retry_count;          /* new retry_count */
	int uses_attempt;         /* 0: give the claim's attempt back (deferrals) */
} wsync_outcome;

/* `jitter` in [-1, 1] spreads retries of many entries (+-10 %). */
wsync_outcome wsync_classify(int32_t status, int retry_count, int max_retries,
                             const int *backoff_s, int n_backoff,
                             int64_t retry_after_s, double jitter);

/* error_type string of a status, NULL for success. */
const char *wsync_error_type(int32_t status);

#endif
