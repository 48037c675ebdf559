#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One window's call log: a ring of the last `limit` call times. */
typedef struct window_log {
	char *key;                 /* "provider\nuser" or "provider\n*\nseconds" */
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

int64_t wsync_ratelimit_try(wsync_ratelimiter *rl, const char *provider,
                            const char *user_id, int per_user_per_minute,
                            const wsync_rate_window *app, int n_app,
                            int64_t now_ms)
{
	window_log *logs[WSYNC_MAX_APP_WINDOWS + 1];
	int64_t spans[WSYNC_MAX_APP_WINDOWS + 1], wait = 0;
	char key[512];
	int n = 0;

	pthread_mutex_lock(&rl->lock);
	if (per_user_per_minute > 0) {
		snprintf(key, sizeof key, "%s\n%s", provider, user_id);
		logs[n] = lookup(rl, key, per_user_per_minute);
		spans[n++] = 60000;
	}
	for (int i = 0; i < n_app && i < WSYNC_MAX_APP_WINDOWS; i++) {
		snprintf(key, sizeof key, "%s\n*\n%d", provider, app[i].seconds);
		logs[n] = lookup(rl, key, app[i].limit);
		spans[n++] = (int64_t)app[i].seconds * 1000;
	}
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
