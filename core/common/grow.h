/*
 * grow.h -- make room in a malloc'ed array, doubling: one rule for every
 * growing table of the core.
 */
#ifndef WSYNC_COMMON_GROW_H
#define WSYNC_COMMON_GROW_H

#include <stdlib.h>

/* Ensure *arr (of *cap elements of `elem` bytes) holds at least `need`.
 * Returns 0, or -1 when out of memory (*arr and *cap unchanged). */
static inline int wsync_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 16;
	void *p;
	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	if (!(p = realloc(*arr, c * elem)))
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

#endif
