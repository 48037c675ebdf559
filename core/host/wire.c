/*
 * wire.c -- frames between wsyncd and a plugin's child process (wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NULL_LEN 0xffffffffu

void wsync_wire_reset(wsync_wire *w)
{
	w->len = w->pos = 0;
	w->oom = w->bad = 0;
}

void wsync_wire_free(wsync_wire *w)
{
	free(w->p);
	memset(w, 0, sizeof *w);
}

static int reserve(wsync_wire *w, size_t more)
{
	size_t cap = w->cap ? w->cap : 256;
	char *grown;
	if (w->oom || more > WSYNC_WIRE_MAX || w->len + more > WSYNC_WIRE_MAX)
		return w->oom = 1, -1;
	if (w->len + more <= w->cap)
		return 0;
	while (cap < w->len + more)
		cap *= 2;
	if (!(grown = realloc(w->p, cap)))
		return w->oom = 1, -1;
	w->p = grown;
	w->cap = cap;
	return 0;
}

static void put(wsync_wire *w, const void *data, size_t len)
{
	if (reserve(w, len) == 0) {
		memcpy(w->p + w->len, data, len);
		w->len += len;
	}
}

void wsync_wire_i64(wsync_wire *w, int64_t v)
{
	put(w, &v, sizeof v);
}

void wsync_wire_bytes(wsync_wire *w, const char *s, size_t len)
{
	uint32_t n = s ? (uint32_t)len : NULL_LEN;
	if (s && len >= NULL_LEN) {
		w->oom = 1;
		return;
	}
	put(w, &n, sizeof n);
	if (s) {
		put(w, s, len);
		put(w, "", 1);
	}
}

void wsync_wire_str(wsync_wire *w, const char *s)
{
	wsync_wire_bytes(w, s, s ? strlen(s) : 0);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t k = send(fd, p, len, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

int wsync_wire_send(int fd, uint32_t type, const wsync_wire *w)
{
	uint32_t head[2] = {(uint32_t)(w->len + 4), type};
	struct iovec iov[2] = {{head, sizeof head}, {w->p, w->len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = w->len ? 2 : 1};
	ssize_t k;
	if (w->oom)
		return -1;
	/* One system call for a whole small frame: a call is a few of them. */
	do
		k = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -1;
	if ((size_t)k < sizeof head)
		return write_all(fd, (const char *)head + k, sizeof head - (size_t)k) < 0 ||
		       (w->len && write_all(fd, w->p, w->len) < 0) ? -1 : 0;
	k -= (ssize_t)sizeof head;
	return (size_t)k < w->len ? write_all(fd, w->p + k, w->len - (size_t)k) : 0;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly len bytes before `until` (ms, < 0: no limit).  1 done,
 * 0 closed before the first byte, -1 error or closed midway, -2 timeout.
 * Without a deadline a blocking receive is the wait (a poll first would be
 * one more system call per frame).  With one, what is there already is
 * taken without a poll (a frame's body after its head), and what is
 * awaited (`wait_first`: the next frame) is polled for without a try
 * first; a deadline already passed still takes what is there.  The
 * descriptor is blocking. */
static int read_all(int fd, char *p, size_t len, long long until, int wait_first)
{
	size_t got = 0;
	while (got < len) {
		ssize_t k;
		if (until >= 0 && wait_first) {
			struct pollfd pfd = {fd, POLLIN, 0};
			long long left = until - mono_ms();
			int r = poll(&pfd, 1, left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left);
			if (r < 0 && errno != EINTR)
				return -1;
			if (r == 0 && until - mono_ms() <= 0)
				return -2;
			if (r <= 0)
				continue;
		}
		k = recv(fd, p + got, len - got, until >= 0 ? MSG_DONTWAIT : 0);
		if (k > 0) {
			got += (size_t)k;
			wait_first = 0;
		} else if (k == 0) {
			return got ? -1 : 0;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			wait_first = 1;
		} else if (errno != EINTR) {
			return -1;
		}
	}
	return 1;
}

int wsync_wire_recv(int fd, int timeout_ms, uint32_t *type, wsync_wire *w)
{
	long long until = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
	uint32_t head[2];
	size_t body;
	int r = read_all(fd, (char *)head, sizeof head, until, 1);
	if (r <= 0 && r != -2)
		return r;
	if (r == -2)
		return -2;
	if (head[0] < 4 || head[0] - 4 > WSYNC_WIRE_MAX)
		return -1;
	body = head[0] - 4;
	wsync_wire_reset(w);
	if (reserve(w, body + 1) < 0)
		return -1;
	r = read_all(fd, w->p, body, until, 0);
	if (r == 0)
		r = body ? -1 : 1;
	if (r < 0)
		return r;
	w->len = body;
	*type = head[1];
	return 1;
}

static const char *take(wsync_wire *w, size_t len)
{
	const char *at;
	if (w->bad || len > w->len - w->pos)
		return w->bad = 1, NULL;
	at = w->p + w->pos;
	w->pos += len;
	return at;
}

int64_t wsync_wire_get_i64(wsync_wire *w)
{
	const char *at = take(w, sizeof(int64_t));
	int64_t v = 0;
	if (at)
		memcpy(&v, at, sizeof v);
	return v;
}

const char *wsync_wire_get_str(wsync_wire *w, size_t *len)
{
	const char *at = take(w, sizeof(uint32_t)), *s;
	uint32_t n;
	if (len)
		*len = 0;
	if (!at)
		return NULL;
	memcpy(&n, at, sizeof n);
	if (n == NULL_LEN)
		return NULL;
	if (!(s = take(w, (size_t)n + 1)) || s[n] != '\0')
		return w->bad = 1, NULL;
	if (len)
		*len = n;
	return s;
}
