/*
 * mock_server.h -- a scripted HTTP/1.1 server on 127.0.0.1 for the HTTP and
 * OAuth tests.
 *
 * It listens on an ephemeral port, serves each connection on its own thread
 * (requests on one connection in turn, so keep-alive can be observed) and
 * answers every request with the current scripted raw response, byte for
 * byte, until the script is changed.  It records each request and counts
 * connections and requests.
 */
#ifndef WSYNC_MOCK_SERVER_H
#define WSYNC_MOCK_SERVER_H

#include <stddef.h>

enum {
	MOCK_KEEP = 0,   /* write the response, wait for the next request */
	MOCK_CLOSE = 1,  /* write the response, then close (FIN) */
	MOCK_RESET = 2   /* write the response (may be empty), then RST */
};

typedef struct mock_server mock_server;

/* Start listening; aborts the test program on failure. */
mock_server *mock_start(void);
/* Stop, close every connection, join every thread, free. */
void mock_stop(mock_server *m);
int mock_port(const mock_server *m);

/* Answer every following request with `raw` (len bytes; copied) after
 * waiting delay_ms (the wait ends early when the client goes away). */
void mock_set(mock_server *m, const char *raw, size_t len, int delay_ms,
              int action);
/* mock_set with a NUL-terminated response and no delay. */
void mock_set_str(mock_server *m, const char *raw, int action);

int mock_accepts(mock_server *m);   /* connections accepted so far */
int mock_requests(mock_server *m);  /* complete requests read so far */

/* The last request: its head (request line and headers, NUL-terminated) and
 * its body.  Both malloc'ed copies; *body_len may be NULL. */
char *mock_last_head(mock_server *m);
char *mock_last_body(mock_server *m, size_t *body_len);

#endif
