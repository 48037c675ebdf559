/*
 * stagger.c -- waves of deferrals per (provider, user); see stagger.h.
 *
 * An open-addressing table of live waves.  A wave is dead once its start
 * has passed (the next deferral begins a new one), so the table never holds
 * more than the users deferred in the last window or so: dead waves are
 * dropped whenever it would grow.
 */
#include "stagger.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wave {
	char *key;       /* "provider\nuser", malloc'ed; NULL: free slot */
	uint64_t hash;
	int64_t start;   /* unix seconds: when its first entries are due */
	int64_t count;   /* entries deferred into it so far */
} wave;

struct wsync_stagger {
	pthread_mutex_t mu;
	wave *slots;
	size_t cap, used;
};

wsync_stagger *wsync_stagger_new(void)
{
	wsync_stagger *s = calloc(1, sizeof *s);
	if (s)
		pthread_mutex_init(&s->mu, NULL);
	return s;
}

void wsync_stagger_free(wsync_stagger *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i].key);
	free(s->slots);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static uint64_t fnv1a(const char *k)
{
	uint64_t h = 1469598103934665603ull;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

/* The slot of `key`, or the free slot where it would go (cap > used). */
static wave *slot_of(const wsync_stagger *s, const char *key, uint64_t hash)
{
	size_t i = (size_t)(hash & (s->cap - 1));
	for (;; i = (i + 1) & (s->cap - 1)) {
		wave *w = &s->slots[i];
		if (!w->key || (w->hash == hash && !strcmp(w->key, key)))
			return w;
	}
}

/* Into a table of `cap` slots (a power of two), keeping the live waves;
 * -1 when out of memory (nothing changed). */
static int rebuild(wsync_stagger *s, size_t cap, int64_t now)
{
	wave *old = s->slots;
	size_t old_cap = s->cap;
	if (!(s->slots = calloc(cap, sizeof *s->slots))) {
		s->slots = old;
		return -1;
	}
	s->cap = cap;
	s->used = 0;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].key)
			continue;
		if (old[i].start <= now) {
			free(old[i].key);
			continue;
		}
		*slot_of(s, old[i].key, old[i].hash) = old[i];
		s->used++;
	}
	free(old);
	return 0;
}

/* Room for one more wave, at most half full; -1 when out of memory. */
static int make_room(wsync_stagger *s, int64_t now)
{
	if ((s->used + 1) * 2 <= s->cap)
		return 0;
	if (s->cap && rebuild(s, s->cap, now) == 0 && (s->used + 1) * 2 <= s->cap)
		return 0;
	return rebuild(s, s->cap ? s->cap * 2 : 64, now);
}

/* How long after its wave's start the r-th entry can come: r entries go
 * before it, L of them per window of each of the user's windows. */
static int64_t behind(int64_t r, const wsync_rate_window *w, int n)
{
	int64_t most = 0;
	for (int i = 0; i < n; i++) {
		int64_t t = w[i].limit > 0 ? r / w[i].limit * w[i].seconds : 0;
		if (t > most)
			most = t;
	}
	return most;
}

int64_t wsync_stagger_delay(wsync_stagger *s, const char *provider, const char *user,
                            int64_t wait_s, const wsync_rate_window *windows, int n_windows,
                            int64_t now)
{
	char key[256];
	uint64_t hash;
	int64_t due;
	wave *w;
	if (!s || n_windows <= 0 || !provider || !user)
		return wait_s;
	snprintf(key, sizeof key, "%s\n%s", provider, user);
	hash = fnv1a(key);
	pthread_mutex_lock(&s->mu);
	if (make_room(s, now) < 0) {
		pthread_mutex_unlock(&s->mu);
		return wait_s;
	}
	w = slot_of(s, key, hash);
	if (w->key && w->start > now) {
		due = w->start + behind(w->count++, windows, n_windows);
	} else {
		if (!w->key) {
			if (!(w->key = strdup(key))) {
				pthread_mutex_unlock(&s->mu);
				return wait_s;
			}
			w->hash = hash;
			s->used++;
		}
		w->start = now + wait_s;
		w->count = 1;
		due = w->start;
	}
	pthread_mutex_unlock(&s->mu);
	return due - now > wait_s ? due - now : wait_s;
}
