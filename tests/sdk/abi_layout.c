/*
 * abi_layout.c -- test abi-layout.
 *
 * Compiling this file against include/ runs the _Static_asserts that pin
 * every ABI struct in plugin.h and workout.h (tests/sdk/abi_asserts.sh
 * checks that every struct has them).  Running it compares the layout
 * and constants of the frozen ABI 1.0 headers (tests/sdk/abi_v1_0) with
 * the current ones: every 1.0 member keeps its offset and size, every
 * constant its value, and a struct may only grow (appends).  A frozen
 * plugin relies on exactly this.
 */
#include <wsync/plugin.h>
#include <wsync/workout.h>

#include "abi_table.h"

#include <stdio.h>
#include <string.h>

#if WSYNC_PLUGIN_ABI_MAJOR != 1
#error "a new ABI major: freeze its headers and start a new table"
#endif

static const abi_row *find(const abi_row *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

int main(void)
{
	int rows = 0, failed = 0;

	for (const abi_row *f = abi_frozen; f->name; f++, rows++) {
		const abi_row *c = find(abi_current, f->name);
		if (!c) {
			printf("FAIL %s: in ABI 1.0, gone now\n", f->name);
			failed++;
		} else if (f->kind == ABI_STRUCT && c->size < f->size) {
			printf("FAIL %s: %zu bytes in ABI 1.0, %zu now (structs only grow)\n",
			       f->name, f->size, c->size);
			failed++;
		} else if (f->kind == ABI_MEMBER && (c->offset != f->offset || c->size != f->size)) {
			printf("FAIL %s: offset %zu size %zu in ABI 1.0, offset %zu size %zu now\n",
			       f->name, f->offset, f->size, c->offset, c->size);
			failed++;
		} else if (f->kind == ABI_CONSTANT && c->offset != f->offset) {
			printf("FAIL %s: %zu in ABI 1.0, %zu now\n", f->name, f->offset, c->offset);
			failed++;
		}
	}
	printf("ABI %d.%d against frozen 1.0: %d rows compared, %d differ\n",
	       WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR, rows, failed);
	return failed ? 1 : 0;
}
