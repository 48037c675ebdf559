/*
 * stagger.h -- when to try again an entry that wsync's own rate limiter
 * deferred, so that a user's backlog comes back a window's worth at a time.
 *
 * The limiter answers a deferral with the wait until its next free slot.
 * Given that wait alone, every entry of a user's backlog (500 workouts
 * imported at once, 30 calls a minute) would come due at the same moment,
 * be claimed, and all but 30 would be deferred again: the whole backlog
 * claimed, started and written back once a window, for 30 calls.  Here the
 * deferrals of one (provider, user) made before their slot comes form a
 * wave: the r-th of them is due at the wave's start plus, for each of the
 * user's windows (L calls per S seconds), floor(r / L) windows -- never
 * sooner than r entries ahead of it can be served, and never sooner than
 * the limiter's own wait.  The first deferral once a wave's start has
 * passed begins a new wave.  A backlog held by an app window is one wave
 * of the provider's: user "*" (no user id) with the app windows.  An
 * estimate, per process: an entry that finds no slot is deferred again;
 * the limiter alone decides who calls.
 *
 * Thread-safe: call threads classify outcomes at once.
 */
#ifndef WSYNC_DAEMON_STAGGER_H
#define WSYNC_DAEMON_STAGGER_H

#include "common/config.h"

#include <stdint.h>

typedef struct wsync_stagger wsync_stagger;

/* NULL when out of memory. */
wsync_stagger *wsync_stagger_new(void);
void wsync_stagger_free(wsync_stagger *s);

/* Seconds from `now` (unix seconds) until the deferred entry of `user` on
 * `provider` should be tried again, at least `wait_s` (the limiter's wait).
 * `windows` are the provider's per-user windows (borrowed).  Out of memory,
 * or with no window, it is `wait_s`. */
int64_t wsync_stagger_delay(wsync_stagger *s, const char *provider, const char *user,
                            int64_t wait_s, const wsync_rate_window *windows, int n_windows,
                            int64_t now);

#endif
