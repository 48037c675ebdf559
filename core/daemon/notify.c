#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static pthread_t owner;
static int watchdog_ms = -1;    /* half of WATCHDOG_USEC */
static long long last_ping_ms;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The notify protocol itself (sd_notify(3), "it is recommended to
 * reimplement it" in systemd's own words): one datagram per message to the
 * AF_UNIX socket named by NOTIFY_SOCKET, a path or, with a leading '@', an
 * abstract name.  Done here rather than through libsystemd, which brought
 * about 0.9 MiB of resident libraries (libgcrypt, liblz4, liblzma, libcap
 * ...) into a daemon whose peak is measured in MiB.
 */
static void send_state(const char *state)
{
#ifdef WSYNC_HAVE_NOTIFY
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len;
	socklen_t addr_len;
	int fd;
	if (!path || (path[0] != '/' && path[0] != '@') || (len = strlen(path)) >= sizeof addr.sun_path)
		return;
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	/* Failure to notify is not worth failing for: the manager times the
	 * service out on its own if it never hears READY. */
	(void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
	close(fd);
#else
	(void)state;
#endif
}

void wsync_notify_init(void)
{
	owner = pthread_self();
#ifdef WSYNC_HAVE_NOTIFY
	{
		/* As sd_watchdog_enabled(3): WATCHDOG_USEC set, and WATCHDOG_PID,
		 * if set, is us; systemd wants a ping at least every half of it. */
		const char *usec_s = getenv("WATCHDOG_USEC"), *pid_s = getenv("WATCHDOG_PID");
		char *end;
		unsigned long long usec;
		if (!usec_s || !*usec_s)
			return;
		if (pid_s && *pid_s) {
			errno = 0;
			long long pid = strtoll(pid_s, &end, 10);
			if (errno || *end || pid != (long long)getpid())
				return;
		}
		errno = 0;
		usec = strtoull(usec_s, &end, 10);
		if (!errno && !*end && usec > 0) {
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
