/*
 * abi_table.h -- the layout and constants of plugin ABI 1.0 as one
 * compilation saw them.  abi_table.c is compiled twice, against the frozen
 * 1.0 headers (abi_frozen) and against include/ (abi_current), and
 * abi_layout.c compares the two.
 */
#ifndef WSYNC_ABI_TABLE_H
#define WSYNC_ABI_TABLE_H

#include <stddef.h>

enum { ABI_STRUCT = 0, ABI_MEMBER = 1, ABI_CONSTANT = 2 };

typedef struct abi_row {
	int kind;            /* ABI_* */
	const char *name;    /* "wsync_plugin", "wsync_plugin.name", "WSYNC_OK" */
	size_t offset;       /* member offset; constant value */
	size_t size;         /* sizeof the struct or member */
} abi_row;

extern const abi_row abi_frozen[];
extern const abi_row abi_current[];

#endif
