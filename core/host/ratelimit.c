#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One window's call log: a ring of the last `limit` call times. */
typedef struct window_log {
	char *key;                 /* "provider\nuser\nseconds" or "provider\n*\nseconds" */
	int64_t *times;
	int limit, count, head;    /* head = oldest */
	struct window_log *next;
} window_log;

#define BUCKETS 1024

struct wsync_ratelimiter {
	pthread_mutex_t lock;
	window_log *buckets[BUCKETS];
};

wsync_ratelimiter *wsync_ratelimiter_new(void)
{
	wsync_ratelimiter *rl = calloc(1, sizeof *rl);
	if (rl)
		pthread_mutex_init(&rl->lock, NULL);
	return rl;
}

void wsync_ratelimiter_free(wsync_ratelimiter *rl)
{
	if (!rl)
		return;
	for (int i = 0; i < BUCKETS; i++)
		for (window_log *w = rl->buckets[i], *n; w; w = n) {
			n = w->next;
			free(w->key);
			free(w->times);
			free(w);
		}
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % BUCKETS;
}

static window_log *lookup(wsync_ratelimiter *rl, const char *key, int limit)
{
	unsigned b = hash(key);
	window_log *w;
	for (w = rl->buckets[b]; w; w = w->next)
		if (!strcmp(w->key, key))
			break;
	if (w && w->limit != limit) { /* limit changed by a reload: start over */
		free(w->times);
		w->times = NULL;
	}
	if (!w) {
		if (!(w = calloc(1, sizeof *w)) || !(w->key = strdup(key)))
			abort();
		w->next = rl->buckets[b];
		rl->buckets[b] = w;
	}
	if (!w->times) {
		if (!(w->times = calloc((size_t)limit, sizeof *w->times)))
			abort();
		w->limit = limit;
		w->count = w->head = 0;
	}
	return w;
}

/* Milliseconds until this window admits one more call (0 = now). */
static int64_t wait_for(const window_log *w, int64_t window_ms, int64_t now)
{
	int64_t oldest;
	if (w->count < w->limit)
		return 0;
	oldest = w->times[w->head];
	return oldest + window_ms > now ? oldest + window_ms - now : 0;
}

static void record(window_log *w, int64_t now)
{
	if (w->count < w->limit) {
		w->times[(w->head + w->count) % w->limit] = now;
		w->count++;
	} else {
		w->times[w->head] = now;
		w->head = (w->head + 1) % w->limit;
	}
}

/* Add the windows of one kind to logs/spans, a duration listed twice
 * keeping its smallest limit.  `fmt` makes the key from provider, user
 * (ignored by the app format) and seconds. */
static int add_windows(wsync_ratelimiter *rl, window_log **logs, int64_t *spans, int n,
                       const char *provider, const char *user_id, int per_user,
                       const wsync_rate_window *w, int n_w)
{
	char key[512];
	if (n_w > WSYNC_MAX_APP_WINDOWS)
		n_w = WSYNC_MAX_APP_WINDOWS;
	for (int i = 0; i < n_w; i++) {
		int limit = w[i].limit, dup = 0;
		if (limit <= 0 || w[i].seconds <= 0)
			continue;
		for (int j = 0; j < n_w; j++)
			if (j != i && w[j].seconds == w[i].seconds && w[j].limit > 0) {
				if (j < i)
					dup = 1; /* counted at its first listing */
				if (w[j].limit < limit)
					limit = w[j].limit;
			}
		if (dup)
			continue;
		if (per_user)
			snprintf(key, sizeof key, "%s\n%s\n%d", provider, user_id, w[i].seconds);
		else
			snprintf(key, sizeof key, "%s\n*\n%d", provider, w[i].seconds);
		logs[n] = lookup(rl, key, limit);
		spans[n++] = (int64_t)w[i].seconds * 1000;
	}
	return n;
}

int64_t wsync_ratelimit_try_windows(wsync_ratelimiter *rl, const char *provider,
                                    const char *user_id,
                                    const wsync_rate_window *user, int n_user,
                                    const wsync_rate_window *app, int n_app,
                                    int64_t now_ms)
{
	window_log *logs[2 * WSYNC_MAX_APP_WINDOWS];
	int64_t spans[2 * WSYNC_MAX_APP_WINDOWS], wait = 0;
	int n = 0;

	pthread_mutex_lock(&rl->lock);
	if (user_id)
		n = add_windows(rl, logs, spans, n, provider, user_id, 1, user, n_user);
	n = add_windows(rl, logs, spans, n, provider, NULL, 0, app, n_app);
	for (int i = 0; i < n; i++) {
		int64_t w = wait_for(logs[i], spans[i], now_ms);
		if (w > wait)
			wait = w;
	}
	if (wait == 0)
		for (int i = 0; i < n; i++)
			record(logs[i], now_ms);
	pthread_mutex_unlock(&rl->lock);
	return wait;
}

int64_t wsync_ratelimit_try(wsync_ratelimiter *rl, const char *provider,
                            const char *user_id, int per_user_per_minute,
                            const wsync_rate_window *app, int n_app,
                            int64_t now_ms)
{
	wsync_rate_window minute = {per_user_per_minute, 60};
	return wsync_ratelimit_try_windows(rl, provider, user_id, &minute,
	                                   per_user_per_minute > 0, app, n_app, now_ms);
}
