/*
 * classify.h -- what happens to a queue entry after an operation returned
 * `status`: its error_type, whether it is retried, and when.  The normative
 * table is "HTTP CLASSIFICATION" in include/wsync/plugin.h (its columns
 * error_type, retried and wait); tests/engine/test_classify_ratelimit.c
 * checks this code against it.  Beyond that table: WSYNC_NOT_APPLICABLE is
 * a success, WSYNC_E_INVALID_WORKOUT is invalid_workout (not retried), and
 * WSYNC_E_RECORD_GONE below is record_not_found (not retried),
 * WSYNC_E_CREATED_WITHOUT_ID is unexpected_error (not retried).  Statuses
 * the table does not know are unexpected_error, retried with backoff.
 * Pure functions: unit-tested directly.
 */
#ifndef WSYNC_CLASSIFY_H
#define WSYNC_CLASSIFY_H

#include <stdint.h>

/* Status the engine uses when the entity row no longer exists (the
 * workout or scheduled workout was deleted before its entry ran). */
#define WSYNC_E_RECORD_GONE 100
/* Status the engine uses when a plugin answered a create with success but
 * never called set_provider_id: the provider may hold the object, which
 * wsync cannot name, so creating it again could make a second one.  Not
 * retried; the operator looks at the provider (and the plugin). */
#define WSYNC_E_CREATED_WITHOUT_ID 101

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
