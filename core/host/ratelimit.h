/*
 * ratelimit.h -- sliding-window call limits per (provider, user) and per
 * provider (app-wide), with an injected clock so tests need not wait.
 *
 * Exact sliding log: a window of L calls per S seconds keeps the last L call
 * times; a new call is allowed when fewer than L fall inside the last S
 * seconds.  Thread-safe.  Limits hold per process: wsyncd uses this only
 * when the database cannot answer (the SDK's test host enforces no limits,
 * include/wsync/testhost.h).  With a database the limits hold for the
 * whole cluster: migrations/0003_rate_limits.sql and 0009_user_windows.sql,
 * wsync_rate_take(), same
 * semantics (tests/robustness/test_ratelimit_db.c checks that both answer
 * every call alike), called from host.c.
 */
#ifndef WSYNC_RATELIMIT_H
#define WSYNC_RATELIMIT_H

#include "common/config.h"

#include <stdint.h>

typedef struct wsync_ratelimiter wsync_ratelimiter;

wsync_ratelimiter *wsync_ratelimiter_new(void);
void wsync_ratelimiter_free(wsync_ratelimiter *rl);

/*
 * Take one call for (provider, user) at `now_ms` if every window allows it:
 * the per-user window `per_user_per_minute` calls per 60 s (0 = none) and
 * the app-wide `app` windows of the provider.  Returns 0 when the call was
 * taken, otherwise the milliseconds until it would be allowed (nothing is
 * taken then).
 */
int64_t wsync_ratelimit_try(wsync_ratelimiter *rl, const char *provider,
                            const char *user_id, int per_user_per_minute,
                            const wsync_rate_window *app, int n_app,
                            int64_t now_ms);

/*
 * The same with any per-user windows: `user` (n_user of them, e.g. 30 per
 * 60 s and 1000 per 86400 s, [provider] user_rate_limits), each counted per
 * (provider, user_id).  At most WSYNC_MAX_APP_WINDOWS of each kind are
 * used; a duration listed twice in one kind keeps its smallest limit, as
 * wsync_rate_take() does (migrations/0009_user_windows.sql).
 */
int64_t wsync_ratelimit_try_windows(wsync_ratelimiter *rl, const char *provider,
                                    const char *user_id,
                                    const wsync_rate_window *user, int n_user,
                                    const wsync_rate_window *app, int n_app,
                                    int64_t now_ms);

#endif
