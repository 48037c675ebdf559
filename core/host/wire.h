/*
 * wire.h -- the frames wsyncd and a plugin's child process exchange over a
 * socketpair (isolate.h is the parent's side, child.c the child's).
 *
 * A frame is a 4-byte length (of what follows), a 4-byte type, then fields:
 * a string is a 4-byte length and its bytes plus a NUL (length 0xffffffff:
 * NULL), an integer 8 bytes.  Both ends are the same binary on the same
 * machine, so integers travel in native byte order.  A frame is at most
 * WSYNC_WIRE_MAX bytes: an HTTP body is capped at 8 MiB by the host, and a
 * request body a plugin builds is refused above that.
 */
#ifndef WSYNC_HOST_WIRE_H
#define WSYNC_HOST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WSYNC_WIRE_MAX (24u << 20)

/* Frame types. */
enum {
	WSYNC_WIRE_SETUP = 1,     /* parent -> child: the instance to load */
	WSYNC_WIRE_READY = 2,     /* child -> parent: loaded, or why not */
	WSYNC_WIRE_CALL = 3,      /* parent -> child: one operation */
	WSYNC_WIRE_HTTP = 4,      /* child -> parent: an HTTP request to make */
	WSYNC_WIRE_ANSWER = 5,    /* parent -> child: that request's answer */
	WSYNC_WIRE_DONE = 6,      /* child -> parent: the operation's outcome */
	WSYNC_WIRE_PROBE = 7,     /* parent -> child: describe this plugin file */
	WSYNC_WIRE_DESCRIPTOR = 8 /* child -> parent: its descriptor, or why not */
};

/* A frame being built or read.  `p` is malloc'ed and owned; `oom` sticks
 * once an append failed (the frame is then not sent). */
typedef struct wsync_wire {
	char *p;
	size_t len, cap;
	size_t pos;        /* read cursor */
	int oom;           /* an append failed */
	int bad;           /* a read ran past the end: a malformed frame */
} wsync_wire;

void wsync_wire_reset(wsync_wire *w);  /* empty, keep the buffer */
void wsync_wire_free(wsync_wire *w);

void wsync_wire_i64(wsync_wire *w, int64_t v);
/* `s` of `len` bytes (may hold NULs); s NULL is sent as NULL. */
void wsync_wire_bytes(wsync_wire *w, const char *s, size_t len);
void wsync_wire_str(wsync_wire *w, const char *s);

/* Send w's fields as one frame of `type`.  0, or -1 (peer gone, or oom). */
int wsync_wire_send(int fd, uint32_t type, const wsync_wire *w);

/*
 * Receive one frame into w (replacing what it held) and its type.  Waits at
 * most timeout_ms (< 0: for ever).  Returns 1 with a frame, 0 when the peer
 * closed, -1 on an error or a malformed frame, -2 on timeout.
 */
int wsync_wire_recv(int fd, int timeout_ms, uint32_t *type, wsync_wire *w);

/* Read the next field.  Strings point into w (NUL-terminated, valid until
 * the next recv or reset); *len may be NULL.  A read past the end sets
 * w->bad and returns 0 / NULL. */
int64_t wsync_wire_get_i64(wsync_wire *w);
const char *wsync_wire_get_str(wsync_wire *w, size_t *len);

#endif
