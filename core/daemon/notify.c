#include "notify.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#ifdef WSYNC_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static pthread_t owner;
static int watchdog_ms = -1;    /* half of WATCHDOG_USEC */
static long long last_ping_ms;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_state(const char *state)
{
#ifdef WSYNC_HAVE_LIBSYSTEMD
	/* Failure to notify is not worth failing for: the manager times the
	 * service out on its own if it never hears READY. */
	(void)sd_notify(0, state);
#else
	(void)state;
#endif
}

void wsync_notify_init(void)
{
	owner = pthread_self();
#ifdef WSYNC_HAVE_LIBSYSTEMD
	{
		uint64_t usec = 0;
		/* > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set,
		 * is us); systemd wants a ping at least every half of it. */
		if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
			unsigned long long half = usec / 2000;
			watchdog_ms = half < 1 ? 1 : half > 1000000 ? 1000000 : (int)half;
		}
	}
#endif
}

void wsync_notify_ready(void)
{
	send_state("READY=1");
}

void wsync_notify_reloading(void)
{
	send_state("RELOADING=1");
}

void wsync_notify_stopping(void)
{
	send_state("STOPPING=1");
}

void wsync_notify_status(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n = snprintf(line, sizeof line, "STATUS=");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	send_state(line);
}

void wsync_notify_watchdog(void)
{
	long long now;
	if (watchdog_ms < 0 || !pthread_equal(pthread_self(), owner))
		return;
	now = mono_ms();
	if (last_ping_ms && now - last_ping_ms < watchdog_ms)
		return;
	last_ping_ms = now;
	send_state("WATCHDOG=1");
}

int wsync_notify_watchdog_ms(void)
{
	return watchdog_ms;
}
