#include "mock_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct mock_conn {
	int fd;                 /* -1 once the connection thread closed it */
	pthread_t thread;
	struct mock_server *server;
	struct mock_conn *next;
} mock_conn;

struct mock_server {
	int listen_fd;
	int port;
	pthread_t acceptor;
	pthread_mutex_t mu;
	/* the script */
	char *raw;
	size_t raw_len;
	int delay_ms;
	int action;
	/* what happened */
	int accepts;
	int requests;
	char *last_head;
	char *last_body;
	size_t last_body_len;
	mock_conn *conns;
	int stopping;
};

static void die(const char *what)
{
	fprintf(stderr, "mock_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- reading one request ---- */

typedef struct inbuf {
	char *data;
	size_t len, cap;
} inbuf;

static int inbuf_fill(inbuf *b, int fd)
{
	ssize_t n;
	if (b->cap - b->len < 4096) {
		size_t cap = b->cap ? b->cap * 2 : 8192;
		char *p = realloc(b->data, cap);
		if (!p)
			return -1;
		b->data = p;
		b->cap = cap;
	}
	do
		n = recv(fd, b->data + b->len, b->cap - b->len - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	b->len += (size_t)n;
	b->data[b->len] = '\0';
	return 0;
}

static size_t content_length(const char *head)
{
	const char *p = head;
	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			return (size_t)strtoul(p + 15, NULL, 10);
	}
	return 0;
}

/* Read a request into *head / *body; the bytes of a following request stay
 * in b.  Returns -1 when the client closed or failed. */
static int read_request(inbuf *b, int fd, char **head, char **body, size_t *body_len)
{
	char *end;
	size_t head_len, blen, total;

	while (!b->data || !(end = strstr(b->data, "\r\n\r\n")))
		if (inbuf_fill(b, fd) < 0)
			return -1;
	head_len = (size_t)(end - b->data) + 4;
	*head = strndup(b->data, head_len);
	blen = content_length(*head);
	total = head_len + blen;
	while (b->len < total)
		if (inbuf_fill(b, fd) < 0) {
			free(*head);
			return -1;
		}
	*body = malloc(blen + 1);
	memcpy(*body, b->data + head_len, blen);
	(*body)[blen] = '\0';
	*body_len = blen;
	memmove(b->data, b->data + total, b->len - total);
	b->len -= total;
	b->data[b->len] = '\0';
	return 0;
}

/* ---- answering ---- */

static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Wait delay_ms; 1 when the client hung up (or wrote) meanwhile. */
static int client_left(int fd, int delay_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int n;
	if (delay_ms <= 0)
		return 0;
	do
		n = poll(&pfd, 1, delay_ms);
	while (n < 0 && errno == EINTR);
	return n > 0;
}

static void close_conn(mock_conn *c, int reset)
{
	mock_server *m = c->server;
	pthread_mutex_lock(&m->mu);
	if (c->fd >= 0) {
		if (reset) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		close(c->fd);
		c->fd = -1;
	}
	pthread_mutex_unlock(&m->mu);
}

static void record(mock_server *m, char *head, char *body, size_t body_len,
                   char **raw, size_t *raw_len, int *delay_ms, int *action)
{
	pthread_mutex_lock(&m->mu);
	free(m->last_head);
	free(m->last_body);
	m->last_head = head;
	m->last_body = body;
	m->last_body_len = body_len;
	m->requests++;
	*raw = malloc(m->raw_len + 1);
	memcpy(*raw, m->raw ? m->raw : "", m->raw_len);
	*raw_len = m->raw_len;
	*delay_ms = m->delay_ms;
	*action = m->action;
	pthread_mutex_unlock(&m->mu);
}

static void *conn_main(void *arg)
{
	mock_conn *c = arg;
	mock_server *m = c->server;
	inbuf b = {0};
	int fd = c->fd, action = MOCK_CLOSE;

	for (;;) {
		char *head, *body, *raw;
		size_t body_len, raw_len;
		int delay_ms, failed;

		if (read_request(&b, fd, &head, &body, &body_len) < 0)
			break;
		record(m, head, body, body_len, &raw, &raw_len, &delay_ms, &action);
		failed = client_left(fd, delay_ms) || send_all(fd, raw, raw_len) < 0;
		free(raw);
		if (failed || action != MOCK_KEEP)
			break;
	}
	free(b.data);
	close_conn(c, action == MOCK_RESET);
	return NULL;
}

static void *accept_main(void *arg)
{
	mock_server *m = arg;
	for (;;) {
		int fd = accept(m->listen_fd, NULL, NULL);
		mock_conn *c;
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;          /* shut down by mock_stop */
		}
		c = calloc(1, sizeof *c);
		c->fd = fd;
		c->server = m;
		pthread_mutex_lock(&m->mu);
		if (m->stopping) {
			pthread_mutex_unlock(&m->mu);
			close(fd);
			free(c);
			break;
		}
		m->accepts++;
		c->next = m->conns;
		m->conns = c;
		if (pthread_create(&c->thread, NULL, conn_main, c) != 0)
			die("pthread_create");
		pthread_mutex_unlock(&m->mu);
	}
	return NULL;
}

mock_server *mock_start(void)
{
	mock_server *m = calloc(1, sizeof *m);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof sa;

	pthread_mutex_init(&m->mu, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	m->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->listen_fd < 0 || bind(m->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(m->listen_fd, 64) < 0 ||
	    getsockname(m->listen_fd, (struct sockaddr *)&sa, &len) < 0)
		die("listen on 127.0.0.1");
	m->port = ntohs(sa.sin_port);
	mock_set_str(m, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", MOCK_KEEP);
	if (pthread_create(&m->acceptor, NULL, accept_main, m) != 0)
		die("pthread_create");
	return m;
}

void mock_stop(mock_server *m)
{
	mock_conn *c, *next;

	pthread_mutex_lock(&m->mu);
	m->stopping = 1;
	shutdown(m->listen_fd, SHUT_RDWR);  /* wakes accept() */
	for (c = m->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);  /* wakes recv() and poll() */
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->acceptor, NULL);
	close(m->listen_fd);
	for (c = m->conns; c; c = next) {
		next = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}
	pthread_mutex_destroy(&m->mu);
	free(m->raw);
	free(m->last_head);
	free(m->last_body);
	free(m);
}

int mock_port(const mock_server *m)
{
	return m->port;
}

void mock_set(mock_server *m, const char *raw, size_t len, int delay_ms, int action)
{
	char *copy = malloc(len + 1);
	memcpy(copy, raw, len);
	copy[len] = '\0';
	pthread_mutex_lock(&m->mu);
	free(m->raw);
	m->raw = copy;
	m->raw_len = len;
	m->delay_ms = delay_ms;
	m->action = action;
	pthread_mutex_unlock(&m->mu);
}

void mock_set_str(mock_server *m, const char *raw, int action)
{
	mock_set(m, raw, strlen(raw), 0, action);
}

int mock_accepts(mock_server *m)
{
	int n;
	pthread_mutex_lock(&m->mu);
	n = m->accepts;
	pthread_mutex_unlock(&m->mu);
	return n;
}

int mock_requests(mock_server *m)
{
	int n;
	pthread_mutex_lock(&m->mu);
	n = m->requests;
	pthread_mutex_unlock(&m->mu);
	return n;
}

char *mock_last_head(mock_server *m)
{
	char *s;
	pthread_mutex_lock(&m->mu);
	s = strdup(m->last_head ? m->last_head : "");
	pthread_mutex_unlock(&m->mu);
	return s;
}

char *mock_last_body(mock_server *m, size_t *body_len)
{
	char *s;
	size_t len;
	pthread_mutex_lock(&m->mu);
	len = m->last_body ? m->last_body_len : 0;
	s = malloc(len + 1);
	memcpy(s, m->last_body ? m->last_body : "", len);
	s[len] = '\0';
	pthread_mutex_unlock(&m->mu);
	if (body_len)
		*body_len = len;
	return s;
}
