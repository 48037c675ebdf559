/*
 * notify.h -- the service manager's side channel (sd_notify(3)): READY,
 * RELOADING, STOPPING, STATUS lines and watchdog pings.
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset (not started by
 * systemd) or when wsyncd was built with -Dsystemd=disabled.  The protocol
 * is implemented in notify.c: no libsystemd.  None of these functions
 * is async-signal-safe: call them from ordinary code only.
 */
#ifndef WSYNC_NOTIFY_H
#define WSYNC_NOTIFY_H

/* Once, from main() on the main thread: reads WATCHDOG_USEC and remembers
 * the thread that owns the watchdog. */
void wsync_notify_init(void);

void wsync_notify_ready(void);      /* READY=1 (also after a reload) */
void wsync_notify_reloading(void);  /* RELOADING=1 */
void wsync_notify_stopping(void);   /* STOPPING=1 */
void wsync_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * WATCHDOG=1, at most every half of WATCHDOG_USEC, and only from the main
 * thread (the one that owns the loop the watchdog vouches for): cheap to
 * call often from anywhere.
 */
void wsync_notify_watchdog(void);

/* Half of WATCHDOG_USEC in milliseconds, or -1 without a watchdog: the
 * longest the main loop may sleep. */
int wsync_notify_watchdog_ms(void);

#endif
