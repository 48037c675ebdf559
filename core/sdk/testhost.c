/*
 * testhost.c -- libwsync-testhost: load one plugin the way wsyncd does and
 * call its operations without a database (see include/wsync/testhost.h).
 *
 * Nothing here validates plugins or configuration: the INI goes through
 * core/common/config.c and the .so through core/host/plugin_loader.c,
 * unchanged.  The host table is the core's (core/host/host.c) with three
 * services wrapped: log (recorded), http (the core's, then recorded) and
 * now (a settable clock).
 */
#include "wsync/testhost.h"

#include "host/classify.h"
#include "common/config.h"
#include "host/host.h"
#include "host/invoke.h"
#include "host/http.h"
#include "common/log.h"
#include "host/oauth.h"
#include "host/plugin_loader.h"
#include "common/workout_parse.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#define DEFAULT_TOKEN "testhost-access-token"
#define DEFAULT_CALL_TIMEOUT_S 30u
#define TIMEOUT_ENV "WSYNC_TESTHOST_CALL_TIMEOUT"
#define MAX_CALL_TIMEOUT_S 604800u   /* a week: more is a typo */
#define ALTSTACK_SIZE (64 * 1024)

/* The call context handed to the plugin: a real wsync_call first, so the
 * core's services work on it unchanged, and the way back to the test host. */
typedef struct th_call {
	wsync_call call;
	wsync_testhost *th;
} th_call;

typedef struct http_rec {
	wsync_testhost_http pub;
	wsync_http_header *hdrs;   /* names and values malloc'ed */
} http_rec;

struct wsync_testhost {
	wsync_host host;               /* the table init() got; lives as long */
	wsync_config *cfg;
	wsync_registry *reg;
	wsync_plugin_instance *inst;   /* the one instance, loaded */
	wsync_http_client *http;
	wsync_token token;             /* access_token only */
	th_call tc;

	pthread_mutex_t mu;            /* guards the recordings */
	wsync_testhost_log **logs;
	size_t n_logs;
	http_rec **https;
	size_t n_https;

	void **pool;                   /* entities and their strings */
	size_t n_pool;
	wsync_workout **parsed;        /* structures of those entities */
	size_t n_parsed;

	wsync_testhost_outcome result;
	char *result_message;
	char *result_provider_id;

	wsync_testhost *next;          /* in the list of live test hosts */

	wsync_testhost_responder responder;   /* NULL: real HTTP */
	void *responder_ctx;

	/* Crash and hang reports (see "guarded calls" below). */
	char who[320];                 /* "wsync-testhost: plugin X (instance Y)" */
	void *altstack;                /* mmap'ed, ALTSTACK_SIZE, or NULL */
	int handlers_installed;        /* counted in n_guarded_hosts */
	uint32_t call_timeout_s;       /* 0: none */
	int watchdog_started;
	pthread_t watchdog;
	pthread_mutex_t wd_mu;         /* guards the wd_* below */
	pthread_cond_t wd_cv;          /* CLOCK_MONOTONIC */
	int wd_quit;
	int wd_armed;
	struct timespec wd_deadline;
	const char *wd_op;
	uint32_t wd_seconds;           /* the limit of the armed call */
};

/* ---- small helpers ------------------------------------------------------ */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fputs("wsync-testhost: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p) {
		fputs("wsync-testhost: out of memory\n", stderr);
		abort();
	}
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *d = xcalloc(1, n + 1);
	if (n)
		memcpy(d, s, n);
	return d;
}

static char *xstrdup(const char *s)
{
	return s ? xstrndup(s, strlen(s)) : NULL;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void new_uuid(char out[37])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

static atomic_llong fake_clock;

static int64_t th_now(void)
{
	long long t = atomic_load(&fake_clock);
	return t ? (int64_t)t : (int64_t)time(NULL);
}

void wsync_testhost_set_clock(int64_t unix_seconds)
{
	atomic_store(&fake_clock, (long long)unix_seconds);
}

/* ---- the live test hosts, for log lines that only carry the instance ---- */

static pthread_mutex_t hosts_mu = PTHREAD_MUTEX_INITIALIZER;
static wsync_testhost *hosts;

static void hosts_add(wsync_testhost *th)
{
	pthread_mutex_lock(&hosts_mu);
	th->next = hosts;
	hosts = th;
	pthread_mutex_unlock(&hosts_mu);
}

static void hosts_remove(wsync_testhost *th)
{
	pthread_mutex_lock(&hosts_mu);
	for (wsync_testhost **p = &hosts; *p; p = &(*p)->next)
		if (*p == th) {
			*p = th->next;
			break;
		}
	pthread_mutex_unlock(&hosts_mu);
}

static wsync_testhost *host_of(const wsync_instance *inst)
{
	wsync_testhost *th;
	if (!inst)
		return NULL;
	pthread_mutex_lock(&hosts_mu);
	for (th = hosts; th; th = th->next)
		if (th->cfg && th->cfg->n_providers && inst->cfg == &th->cfg->providers[0])
			break;
	pthread_mutex_unlock(&hosts_mu);
	return th;
}

/* ---- guarded calls: crash and hang reports -------------------------------
 *
 * Every call into the plugin (init() inside wsync_registry_load, each
 * operation, destroy() inside wsync_registry_free) runs between
 * guard_enter() and guard_leave().  The guard names the plugin, the
 * instance and the operation for two reporters:
 *   - on_fatal(), the handler of SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT,
 *     installed while a test host lives: on a thread inside a guarded call
 *     it writes one line first; then, everywhere, the signal goes where it
 *     would have gone without the test host: the handler that was there
 *     before (the test program's, a fuzzer's, a sanitizer's), else the
 *     default action, so the process dies of the same signal (exit status
 *     and core dump are the fault's);
 *   - the test host's watchdog thread: a call that outlives the limit gets
 *     one line and abort().
 * The guard is found through a thread-local pointer with the initial-exec
 * TLS model: reading it is a plain load, safe in a signal handler (a
 * dynamic-TLS read may allocate). */

typedef struct guard {
	const wsync_testhost *th;
	const char *op;
	const struct guard *outer;   /* a test host called from a plugin */
	int own_altstack;            /* this guard installed th->altstack */
} guard;

static _Thread_local const guard *current_guard
	__attribute__((tls_model("initial-exec")));

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static const char *const fatal_names[] = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL",
                                          "SIGABRT"};
#define N_FATAL (sizeof fatal_sigs / sizeof fatal_sigs[0])
static struct sigaction saved_actions[N_FATAL];   /* before the first host */
static int n_guarded_hosts;                       /* under hosts_mu */

/* Async-signal-safe formatting into a fixed buffer (the handler's only
 * tools, with write(2)). */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (s && *s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_uint(char *buf, size_t at, size_t cap, unsigned long v)
{
	char digits[24];
	int n = 0;
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof digits);
	while (n > 0 && at + 1 < cap)
		buf[at++] = digits[--n];
	return at;
}

static void write_all(const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, buf, n);
		if (w <= 0 && errno != EINTR)
			return;
		if (w > 0) {
			buf += w;
			n -= (size_t)w;
		}
	}
}

static void die_of(int sig)
{
	struct sigaction dfl;
	sigset_t set;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(128 + sig); /* not reached: the default action of sig terminates */
}

/* What would have happened without the test host: the handler that was
 * there before (a fuzzer's saves the input, a sanitizer's prints a stack
 * trace), else the default action. */
static void chain(size_t i, int sig, siginfo_t *info, void *uctx)
{
	const struct sigaction *prev = &saved_actions[i];
	if (prev->sa_flags & SA_SIGINFO)
		prev->sa_sigaction(sig, info, uctx);
	else if (prev->sa_handler == SIG_IGN)
		return;
	else if (prev->sa_handler == SIG_DFL)
		die_of(sig);
	else
		prev->sa_handler(sig);
}

static void on_fatal(int sig, siginfo_t *info, void *uctx)
{
	const guard *g = current_guard;
	int saved_errno = errno;
	char line[512];
	size_t i = 0, n;

	while (i < N_FATAL && fatal_sigs[i] != sig)
		i++;
	if (i == N_FATAL)
		return;
	if (!g) {
		chain(i, sig, info, uctx);
		errno = saved_errno;
		return;
	}
	n = put_str(line, 0, sizeof line, g->th->who);
	n = put_str(line, n, sizeof line, " crashed with signal ");
	n = put_uint(line, n, sizeof line, (unsigned long)sig);
	n = put_str(line, n, sizeof line, " (");
	n = put_str(line, n, sizeof line, fatal_names[i]);
	n = put_str(line, n, sizeof line, ") in ");
	n = put_str(line, n, sizeof line, g->op);
	line[n++] = '\n';
	write_all(line, n);
	/* Then as without the test host; a fault inside a plugin never goes
	 * on (a handler that returned would only fault again here). */
	current_guard = NULL;
	chain(i, sig, info, uctx);
	die_of(sig);
}

/* Install on_fatal when the first test host of the process is created;
 * the actions found then are restored when the last one is freed. */
static void handlers_install(wsync_testhost *th)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fatal;
	/* SA_ONSTACK: a stack overflow is reported too (guard_enter gives the
	 * thread an alternate stack); SA_NODEFER: die_of()'s raise() is
	 * delivered at once. */
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	pthread_mutex_lock(&hosts_mu);
	if (n_guarded_hosts++ == 0)
		for (size_t i = 0; i < N_FATAL; i++)
			sigaction(fatal_sigs[i], &sa, &saved_actions[i]);
	pthread_mutex_unlock(&hosts_mu);
	th->handlers_installed = 1;
}

static void handlers_restore(wsync_testhost *th)
{
	if (!th->handlers_installed)
		return;
	pthread_mutex_lock(&hosts_mu);
	if (--n_guarded_hosts == 0)
		for (size_t i = 0; i < N_FATAL; i++)
			sigaction(fatal_sigs[i], &saved_actions[i], NULL);
	pthread_mutex_unlock(&hosts_mu);
	th->handlers_installed = 0;
}

/* The watchdog: one thread per test host, asleep unless a call is armed. */
static void hang(wsync_testhost *th)
{
	char line[512];
	int n = snprintf(line, sizeof line, "%s did not return within %u s in %s\n", th->who,
	                 (unsigned)th->wd_seconds, th->wd_op);
	write_all(line, n > 0 && (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	/* This thread is in no plugin call: on_fatal() passes the SIGABRT on
	 * to the earlier handler (a fuzzer saves the input) or the default. */
	abort();
}

static int deadline_passed(const struct timespec *d)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

static void *watchdog_main(void *arg)
{
	wsync_testhost *th = arg;
	pthread_mutex_lock(&th->wd_mu);
	while (!th->wd_quit) {
		if (!th->wd_armed)
			pthread_cond_wait(&th->wd_cv, &th->wd_mu);
		else if (pthread_cond_timedwait(&th->wd_cv, &th->wd_mu, &th->wd_deadline) != 0 &&
		         th->wd_armed && !th->wd_quit && deadline_passed(&th->wd_deadline))
			hang(th);
	}
	pthread_mutex_unlock(&th->wd_mu);
	return NULL;
}

static int watchdog_start(wsync_testhost *th, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	int rc;
	pthread_mutex_init(&th->wd_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&th->wd_cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&th->watchdog, NULL, watchdog_main, th);
	if (rc != 0) {
		set_err(err, errlen, "testhost: cannot start the call watchdog thread: %s",
		        strerror(rc));
		pthread_cond_destroy(&th->wd_cv);
		pthread_mutex_destroy(&th->wd_mu);
		return -1;
	}
	th->watchdog_started = 1;
	return 0;
}

static void watchdog_stop(wsync_testhost *th)
{
	if (!th->watchdog_started)
		return;
	pthread_mutex_lock(&th->wd_mu);
	th->wd_quit = 1;
	pthread_cond_signal(&th->wd_cv);
	pthread_mutex_unlock(&th->wd_mu);
	pthread_join(th->watchdog, NULL);
	pthread_cond_destroy(&th->wd_cv);
	pthread_mutex_destroy(&th->wd_mu);
	th->watchdog_started = 0;
}

static void watchdog_arm(wsync_testhost *th, const char *op)
{
	if (!th->watchdog_started)
		return;
	pthread_mutex_lock(&th->wd_mu);
	th->wd_armed = th->call_timeout_s != 0;
	if (th->wd_armed) {
		clock_gettime(CLOCK_MONOTONIC, &th->wd_deadline);
		th->wd_deadline.tv_sec += (time_t)th->call_timeout_s;
		th->wd_seconds = th->call_timeout_s;
		th->wd_op = op;
		pthread_cond_signal(&th->wd_cv);
	}
	pthread_mutex_unlock(&th->wd_mu);
}

static void watchdog_disarm(wsync_testhost *th)
{
	if (!th->watchdog_started)
		return;
	/* No signal: the watchdog wakes at the old deadline, finds nothing
	 * armed and sleeps until the next call. */
	pthread_mutex_lock(&th->wd_mu);
	th->wd_armed = 0;
	pthread_mutex_unlock(&th->wd_mu);
}

/* Everything a guarded call needs, prepared before init() runs. */
static int guards_prepare(wsync_testhost *th, char *err, size_t errlen)
{
	const char *env = getenv(TIMEOUT_ENV);
	const wsync_provider_config *p = &th->cfg->providers[0];
	void *stack;

	th->call_timeout_s = DEFAULT_CALL_TIMEOUT_S;
	if (env) {
		char *end;
		unsigned long v;
		errno = 0;
		v = strtoul(env, &end, 10);
		if (!*env || *end || errno || env[0] == '-' || env[0] == '+' ||
		    v > MAX_CALL_TIMEOUT_S) {
			set_err(err, errlen, "testhost: %s=%s: expected a whole number of seconds "
			        "from 0 (no limit) to %u", TIMEOUT_ENV, env, MAX_CALL_TIMEOUT_S);
			return -1;
		}
		th->call_timeout_s = (uint32_t)v;
	}
	/* The loader insists that the descriptor's name is [provider] plugin. */
	snprintf(th->who, sizeof th->who, "wsync-testhost: plugin %.128s (instance %.128s)",
	         p->plugin, p->name);
	stack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	th->altstack = stack == MAP_FAILED ? NULL : stack; /* without: no overflow report */
	if (watchdog_start(th, err, errlen) < 0)
		return -1;
	handlers_install(th);
	return 0;
}

static void guards_release(wsync_testhost *th)
{
	watchdog_stop(th);
	handlers_restore(th);
	if (th->altstack)
		munmap(th->altstack, ALTSTACK_SIZE);
	th->altstack = NULL;
}

static void guard_enter(wsync_testhost *th, guard *g, const char *op)
{
	stack_t cur;
	g->th = th;
	g->op = op;
	g->outer = current_guard;
	g->own_altstack = 0;
	/* A thread without an alternate signal stack (any thread but those a
	 * sanitizer set one up on) gets this host's for the call. */
	if (th->altstack && sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
		stack_t ss = {.ss_sp = th->altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
		g->own_altstack = sigaltstack(&ss, NULL) == 0;
	}
	current_guard = g;
	watchdog_arm(th, op);
}

static void guard_leave(wsync_testhost *th, guard *g)
{
	watchdog_disarm(th);
	current_guard = g->outer;
	if (g->own_altstack) {
		stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
	}
}

void wsync_testhost_set_call_timeout(wsync_testhost *th, uint32_t seconds)
{
	if (th)
		th->call_timeout_s = seconds;
}

/* ---- wrapped host services ---------------------------------------------- */

static void th_log(const wsync_instance *inst, int32_t level, const char *fmt, ...)
{
	wsync_testhost *th = host_of(inst);
	char line[2048];
	va_list ap, echo;

	va_start(ap, fmt);
	va_copy(echo, ap);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* On stderr as wsyncd writes it, so test logs read the same. */
	wsync_vlog(level, inst ? inst->name : "plugin", fmt, echo);
	va_end(echo);
	if (!th)
		return;
	pthread_mutex_lock(&th->mu);
	th->logs = xrealloc(th->logs, (th->n_logs + 1) * sizeof *th->logs);
	th->logs[th->n_logs] = xcalloc(1, sizeof **th->logs);
	th->logs[th->n_logs]->level = level;
	th->logs[th->n_logs]->text = xstrdup(line);
	th->n_logs++;
	pthread_mutex_unlock(&th->mu);
}

static char *masked(const char *name, const char *value)
{
	const char *sp;
	char buf[64];
	if (strcasecmp(name, "Authorization") != 0)
		return xstrdup(value ? value : "");
	sp = value ? strchr(value, ' ') : NULL;
	snprintf(buf, sizeof buf, "%.*s*****", sp ? (int)(sp - value + 1) : 0,
	         sp && sp - value < 32 ? value : "");
	return xstrdup(buf);
}

static void add_header(http_rec *r, const char *name, const char *value)
{
	r->hdrs = xrealloc(r->hdrs, (r->pub.n_headers + 1) * sizeof *r->hdrs);
	r->hdrs[r->pub.n_headers].name = xstrdup(name);
	r->hdrs[r->pub.n_headers].value = masked(name, value);
	r->pub.n_headers++;
}

static void record_http(wsync_testhost *th, wsync_call *call,
                        const wsync_http_request *req, int32_t st)
{
	http_rec *r = xcalloc(1, sizeof *r);
	wsync_http_settings s;
	char ua[128];
	int own_ua = 0;

	wsync_call_settings(call, &s, ua, sizeof ua);
	r->pub.method = xstrdup(req->method ? req->method : "GET");
	{
		char why[128];
		char *url = wsync_http_url(&s, req->path, why, sizeof why);
		r->pub.url = xstrdup(url ? url : req->path ? req->path : "");
		free(url);
	}
	if (req->content_type)
		add_header(r, "Content-Type", req->content_type);
	for (uint32_t i = 0; req->headers && i < req->n_headers; i++) {
		add_header(r, req->headers[i].name ? req->headers[i].name : "",
		           req->headers[i].value);
		own_ua |= req->headers[i].name && !strcasecmp(req->headers[i].name, "User-Agent");
	}
	if (!own_ua)
		add_header(r, "User-Agent", s.user_agent);
	if (req->auth && call->token && call->token->access_token)
		add_header(r, "Authorization", "Bearer -");
	r->pub.headers = r->hdrs;
	r->pub.body = req->body ? xstrndup(req->body, req->body_len) : xstrdup("");
	r->pub.body_len = req->body ? req->body_len : 0;
	r->pub.status = (int32_t)call->result.status;
	r->pub.classification = st;
	r->pub.response_body = call->result.body
		? xstrndup(call->result.body, call->result.body_len) : xstrdup("");
	r->pub.response_body_len = call->result.body ? call->result.body_len : 0;
	r->pub.retry_after_s = call->result.retry_after_s;
	r->pub.error = xstrdup(call->result.error);

	pthread_mutex_lock(&th->mu);
	th->https = xrealloc(th->https, (th->n_https + 1) * sizeof *th->https);
	th->https[th->n_https++] = r;
	pthread_mutex_unlock(&th->mu);
}

/* The core's HTTP path (no limiter: call->limiter is NULL; no refresh:
 * call->db is NULL), then recorded. */
static int32_t th_http(wsync_call *call, const wsync_http_request *req,
                       wsync_http_response *resp)
{
	int32_t st = wsync_host_services()->http(call, req, resp);
	record_http(((th_call *)call)->th, call, req, st);
	return st;
}

/* ---- recordings ------------------------------------------------------------ */

static void free_http_rec(http_rec *r)
{
	for (size_t i = 0; i < r->pub.n_headers; i++) {
		free((char *)r->hdrs[i].name);
		free((char *)r->hdrs[i].value);
	}
	free(r->hdrs);
	free((char *)r->pub.method);
	free((char *)r->pub.url);
	free((char *)r->pub.body);
	free((char *)r->pub.response_body);
	free((char *)r->pub.error);
	free(r);
}

void wsync_testhost_clear(wsync_testhost *th)
{
	if (!th)
		return;
	pthread_mutex_lock(&th->mu);
	for (size_t i = 0; i < th->n_logs; i++) {
		free((char *)th->logs[i]->text);
		free(th->logs[i]);
	}
	free(th->logs);
	th->logs = NULL;
	th->n_logs = 0;
	for (size_t i = 0; i < th->n_https; i++)
		free_http_rec(th->https[i]);
	free(th->https);
	th->https = NULL;
	th->n_https = 0;
	pthread_mutex_unlock(&th->mu);
}

size_t wsync_testhost_log_count(const wsync_testhost *th)
{
	size_t n;
	if (!th)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&th->mu);
	n = th->n_logs;
	pthread_mutex_unlock((pthread_mutex_t *)&th->mu);
	return n;
}

const wsync_testhost_log *wsync_testhost_log_at(const wsync_testhost *th, size_t i)
{
	const wsync_testhost_log *l = NULL;
	if (!th)
		return NULL;
	pthread_mutex_lock((pthread_mutex_t *)&th->mu);
	if (i < th->n_logs)
		l = th->logs[i];
	pthread_mutex_unlock((pthread_mutex_t *)&th->mu);
	return l;
}

const wsync_testhost_log *wsync_testhost_log_find(const wsync_testhost *th,
                                                  const char *needle)
{
	const wsync_testhost_log *l = NULL;
	if (!th || !needle)
		return NULL;
	pthread_mutex_lock((pthread_mutex_t *)&th->mu);
	for (size_t i = 0; i < th->n_logs && !l; i++)
		if (strstr(th->logs[i]->text, needle))
			l = th->logs[i];
	pthread_mutex_unlock((pthread_mutex_t *)&th->mu);
	return l;
}

size_t wsync_testhost_http_count(const wsync_testhost *th)
{
	size_t n;
	if (!th)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&th->mu);
	n = th->n_https;
	pthread_mutex_unlock((pthread_mutex_t *)&th->mu);
	return n;
}

const wsync_testhost_http *wsync_testhost_http_at(const wsync_testhost *th, size_t i)
{
	const wsync_testhost_http *h = NULL;
	if (!th)
		return NULL;
	pthread_mutex_lock((pthread_mutex_t *)&th->mu);
	if (i < th->n_https)
		h = &th->https[i]->pub;
	pthread_mutex_unlock((pthread_mutex_t *)&th->mu);
	return h;
}

const char *wsync_testhost_http_header(const wsync_testhost_http *h, const char *name)
{
	for (size_t i = 0; h && name && i < h->n_headers; i++)
		if (!strcasecmp(h->headers[i].name, name))
			return h->headers[i].value;
	return NULL;
}

static void result_reset(wsync_testhost *th);

/* ---- loading ----------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int write_text(const char *path, const char *text, const char *mode)
{
	FILE *f = fopen(path, mode);
	int ok;
	if (!f)
		return -1;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Private files of one load: <tmp>/wsyncd.ini and <tmp>/conf.d/<name>.ini. */
typedef struct scratch {
	char dir[PATH_MAX];
	char confd[PATH_MAX];
	char main_ini[PATH_MAX];
	char inst_ini[PATH_MAX];
} scratch;

static void scratch_remove(scratch *s)
{
	if (s->inst_ini[0])
		unlink(s->inst_ini);
	if (s->main_ini[0])
		unlink(s->main_ini);
	if (s->confd[0])
		rmdir(s->confd);
	if (s->dir[0])
		rmdir(s->dir);
}

static int scratch_make(scratch *s, const char *plugin_dir, const char *name,
                        const char *ini_text, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char text[PATH_MAX * 2 + 128];

	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s/wsync-testhost.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s->dir)) {
		set_err(err, errlen, "testhost: cannot create a temporary directory in %s: %s",
		        tmp && *tmp ? tmp : "/tmp", strerror(errno));
		s->dir[0] = 0;
		return -1;
	}
	snprintf(s->confd, sizeof s->confd, "%s/conf.d", s->dir);
	if (mkdir(s->confd, 0700) < 0) {
		set_err(err, errlen, "testhost: cannot create %s: %s", s->confd, strerror(errno));
		s->confd[0] = 0;
		return -1;
	}
	snprintf(s->inst_ini, sizeof s->inst_ini, "%s/%s.ini", s->confd, name);
	snprintf(s->main_ini, sizeof s->main_ini, "%s/wsyncd.ini", s->dir);
	snprintf(text, sizeof text,
	         "; written by libwsync-testhost\n"
	         "[database]\nconninfo = dbname=unused-by-testhost\n"
	         "[plugins]\ndir = %s\nconf_dir = %s\n", plugin_dir, s->confd);
	if (write_text(s->main_ini, text, "w") < 0 ||
	    write_text(s->inst_ini, ini_text ? ini_text : "", "w") < 0) {
		set_err(err, errlen, "testhost: cannot write in %s: %s", s->dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Split so_path into an absolute directory and the plugin name. */
static int split_path(const char *so_path, char *dir, size_t dirlen, char *name,
                      size_t namelen, char *err, size_t errlen)
{
	const char *slash = strrchr(so_path, '/');
	const char *base = slash ? slash + 1 : so_path;
	size_t blen = strlen(base);
	char part[PATH_MAX], resolved[PATH_MAX];

	if (blen <= 3 || strcmp(base + blen - 3, ".so") != 0 || blen - 3 >= namelen) {
		set_err(err, errlen, "%s: a plugin file is named <plugin>.so, <plugin> being "
		        "the name in its descriptor", so_path);
		return -1;
	}
	snprintf(name, namelen, "%.*s", (int)(blen - 3), base);
	if (!slash)
		snprintf(part, sizeof part, ".");
	else if (slash == so_path)
		snprintf(part, sizeof part, "/");
	else
		snprintf(part, sizeof part, "%.*s", (int)(slash - so_path), so_path);
	if (!realpath(part, resolved)) {
		set_err(err, errlen, "%s: cannot open its directory: %s", so_path, strerror(errno));
		return -1;
	}
	if (strpbrk(resolved, "\r\n")) {
		set_err(err, errlen, "%s: a line break in the directory name", so_path);
		return -1;
	}
	snprintf(dir, dirlen, "%s", resolved);
	return 0;
}

/* The configuration errors, without the final newline. */
static void config_errors(const wsync_config *cfg, char *err, size_t errlen)
{
	const char *all = wsync_config_errors(cfg);
	size_t n = strlen(all);
	while (n > 0 && all[n - 1] == '\n')
		n--;
	set_err(err, errlen, "%.*s", (int)n, all);
}

static wsync_config *read_config(scratch *s, const char *name, char *err, size_t errlen)
{
	wsync_config *cfg = wsync_config_load(s->main_ini);
	char extra[256];

	if (!cfg) {
		set_err(err, errlen, "testhost: out of memory");
		return NULL;
	}
	/* No [provider] plugin: name the file's plugin, below the author's
	 * lines so their line numbers stay right. */
	if (cfg->n_providers == 1 && !cfg->providers[0].plugin) {
		wsync_config_free(cfg);
		snprintf(extra, sizeof extra, "\n[provider]\nplugin = %s\n", name);
		if (write_text(s->inst_ini, extra, "a") < 0) {
			set_err(err, errlen, "testhost: cannot write %s: %s", s->inst_ini,
			        strerror(errno));
			return NULL;
		}
		cfg = wsync_config_load(s->main_ini);
		if (!cfg) {
			set_err(err, errlen, "testhost: out of memory");
			return NULL;
		}
	}
	if (!wsync_config_ok(cfg)) {
		config_errors(cfg, err, errlen);
		wsync_config_free(cfg);
		return NULL;
	}
	if (cfg->n_providers != 1) {
		set_err(err, errlen, "testhost: expected one provider instance, found %zu",
		        cfg->n_providers);
		wsync_config_free(cfg);
		return NULL;
	}
	if (strcmp(cfg->providers[0].plugin, name) != 0) {
		set_err(err, errlen, "%s: [provider] plugin = %s, but the file is %s.so: wsyncd "
		        "loads <plugins dir>/<plugin>.so, so the two must match",
		        s->inst_ini, cfg->providers[0].plugin, name);
		wsync_config_free(cfg);
		return NULL;
	}
	return cfg;
}

wsync_testhost *wsync_testhost_load(const char *so_path, const char *ini_text,
                                    char *err, size_t errlen)
{
	char dir[PATH_MAX], name[128];
	wsync_testhost *th;
	scratch s;

	if (err && errlen)
		err[0] = 0;
	if (!so_path) {
		set_err(err, errlen, "testhost: no plugin path");
		return NULL;
	}
	pthread_once(&curl_once, curl_init_once);
	if (split_path(so_path, dir, sizeof dir, name, sizeof name, err, errlen) < 0)
		return NULL;
	if (scratch_make(&s, dir, name, ini_text, err, errlen) < 0) {
		scratch_remove(&s);
		return NULL;
	}

	th = xcalloc(1, sizeof *th);
	pthread_mutex_init(&th->mu, NULL);
	th->host = *wsync_host_services();
	th->host.log = th_log;
	th->host.http = th_http;
	th->host.now = th_now;
	th->token.access_token = xstrdup(DEFAULT_TOKEN);
	th->token.found = 1;
	th->tc.th = th;
	result_reset(th);

	th->cfg = read_config(&s, name, err, errlen);
	if (!th->cfg) {
		scratch_remove(&s);
		wsync_testhost_free(th);
		return NULL;
	}
	if (guards_prepare(th, err, errlen) < 0) {
		scratch_remove(&s);
		wsync_testhost_free(th);
		return NULL;
	}
	hosts_add(th);
	{
		guard g;
		guard_enter(th, &g, "init");
		th->reg = wsync_registry_load(th->cfg, &th->host);
		guard_leave(th, &g);
	}
	scratch_remove(&s);
	if (!th->reg || wsync_registry_count(th->reg) != 1) {
		set_err(err, errlen, "testhost: out of memory");
		wsync_testhost_free(th);
		return NULL;
	}
	th->inst = wsync_registry_at(th->reg, 0);
	if (!th->inst->loaded) {
		set_err(err, errlen, "%s", th->inst->refusal ? th->inst->refusal : "refused");
		wsync_testhost_free(th);
		return NULL;
	}
	th->http = wsync_http_client_new();
	if (!th->http) {
		set_err(err, errlen, "testhost: cannot create an HTTP client");
		wsync_testhost_free(th);
		return NULL;
	}
	return th;
}

void wsync_testhost_free(wsync_testhost *th)
{
	if (!th)
		return;
	/* destroy() may still log: keep the host findable until it returned. */
	if (th->reg) {
		guard g;
		guard_enter(th, &g, "destroy");
		wsync_registry_free(th->reg);
		guard_leave(th, &g);
	}
	hosts_remove(th);
	guards_release(th);
	wsync_config_free(th->cfg);
	wsync_http_client_free(th->http);
	wsync_token_clear(&th->token);
	wsync_testhost_clear(th);
	for (size_t i = 0; i < th->n_pool; i++)
		free(th->pool[i]);
	free(th->pool);
	for (size_t i = 0; i < th->n_parsed; i++)
		wsync_workout_free(th->parsed[i]);
	free(th->parsed);
	free(th->result_message);
	free(th->result_provider_id);
	pthread_mutex_destroy(&th->mu);
	free(th);
}

const wsync_plugin *wsync_testhost_plugin(const wsync_testhost *th)
{
	return th && th->inst ? th->inst->desc : NULL;
}

const char *wsync_testhost_config(const wsync_testhost *th, const char *section,
                                  const char *key)
{
	if (!th || !th->inst || !section || !key)
		return NULL;
	return wsync_instance_config_string(th->inst, section, key);
}

void wsync_testhost_set_token(wsync_testhost *th, const char *token)
{
	if (!th)
		return;
	wsync_token_clear(&th->token);
	th->token.access_token = xstrdup(token);
	th->token.found = token != NULL;
}

/* ---- entities ------------------------------------------------------------ */

static void *pool_keep(wsync_testhost *th, void *p)
{
	th->pool = xrealloc(th->pool, (th->n_pool + 1) * sizeof *th->pool);
	th->pool[th->n_pool++] = p;
	return p;
}

static const char *pool_str(wsync_testhost *th, const char *s)
{
	return s ? pool_keep(th, xstrdup(s)) : NULL;
}

static const char *pool_uuid(wsync_testhost *th, const char *given)
{
	char id[37];
	if (given)
		return pool_str(th, given);
	new_uuid(id);
	return pool_str(th, id);
}

const wsync_workout_entity *wsync_testhost_workout(wsync_testhost *th,
                                                   const wsync_workout_entity *f,
                                                   char *err, size_t errlen)
{
	wsync_workout_entity *e;
	wsync_workout *w = NULL;
	wsync_parse_error perr;

	if (!th || !f || !f->workout_text) {
		set_err(err, errlen, "testhost: a workout needs workout_text");
		return NULL;
	}
	if (wsync_workout_parse(f->workout_text, strlen(f->workout_text), &w, &perr) < 0) {
		set_err(err, errlen, "%s", perr.message);
		return NULL;
	}
	th->parsed = xrealloc(th->parsed, (th->n_parsed + 1) * sizeof *th->parsed);
	th->parsed[th->n_parsed++] = w;
	e = pool_keep(th, xcalloc(1, sizeof *e));
	e->struct_size = sizeof *e;
	e->id = pool_uuid(th, f->id);
	e->user_id = pool_str(th, f->user_id ? f->user_id : WSYNC_TESTHOST_USER);
	e->name = pool_str(th, f->name);
	e->description = pool_str(th, f->description);
	e->sport = pool_str(th, f->sport);
	e->workout_text = pool_str(th, f->workout_text);
	e->structure = w;
	e->updated_at = f->updated_at ? f->updated_at : th_now();
	return e;
}

const wsync_scheduled_entity *wsync_testhost_scheduled(wsync_testhost *th,
                                                       const wsync_scheduled_entity *f,
                                                       const wsync_workout_entity *workout,
                                                       char *err, size_t errlen)
{
	wsync_scheduled_entity *e;

	if (!th || !f || !f->scheduled_date) {
		set_err(err, errlen, "testhost: a scheduled workout needs scheduled_date");
		return NULL;
	}
	e = pool_keep(th, xcalloc(1, sizeof *e));
	e->struct_size = sizeof *e;
	e->id = pool_uuid(th, f->id);
	e->user_id = pool_str(th, f->user_id ? f->user_id
	                      : workout && workout->user_id ? workout->user_id
	                      : WSYNC_TESTHOST_USER);
	e->workout_id = pool_str(th, f->workout_id ? f->workout_id
	                         : workout ? workout->id : NULL);
	e->scheduled_date = pool_str(th, f->scheduled_date);
	e->scheduled_time = pool_str(th, f->scheduled_time);
	return e;
}

/* ---- calling ---------------------------------------------------------------- */

static void result_reset(wsync_testhost *th)
{
	free(th->result_message);
	free(th->result_provider_id);
	th->result_message = NULL;
	th->result_provider_id = NULL;
	memset(&th->result, 0, sizeof th->result);
	th->result.message = "";
}

static int32_t not_called(wsync_testhost *th, int32_t status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int32_t not_called(wsync_testhost *th, int32_t status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	th->result_message = xstrdup(msg);
	th->result.status = status;
	th->result.message = th->result_message;
	th->result.error_type = wsync_error_type(status);
	return status;
}

int32_t wsync_testhost_call(wsync_testhost *th, int32_t op,
                            const wsync_testhost_request *in)
{
	return wsync_testhost_call_reconcile(th, op, in, 0, NULL);
}

int32_t wsync_testhost_call_reconcile(wsync_testhost *th, int32_t op,
                                      const wsync_testhost_request *in, int32_t reconcile,
                                      const char *external_key)
{
	static const wsync_testhost_request none;
	wsync_plugin_instance *inst;
	wsync_call *call;
	wsync_request req;
	const char *own, *user;
	char queue_id[37];
	int is_delete = op == WSYNC_TESTHOST_DELETE_WORKOUT ||
	                op == WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT;
	int recreated;
	int32_t st;

	if (!th)
		return WSYNC_E_UNEXPECTED;
	result_reset(th);
	inst = th->inst;
	if (!in)
		in = &none;
	switch (op) {
	case WSYNC_TESTHOST_SYNC_WORKOUT:
		own = in->workout_provider_id;
		if (!in->workout || !in->workout->structure)
			return not_called(th, WSYNC_E_UNEXPECTED, "testhost: sync_workout needs a "
			                  "workout made with wsync_testhost_workout()");
		break;
	case WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT:
		own = in->scheduled_provider_id;
		if (!in->scheduled || !in->workout || !in->workout->structure)
			return not_called(th, WSYNC_E_UNEXPECTED, "testhost: sync_scheduled_workout "
			                  "needs a scheduled workout and its workout");
		break;
	case WSYNC_TESTHOST_DELETE_WORKOUT:
		own = in->workout_provider_id;
		break;
	case WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT:
		own = in->scheduled_provider_id;
		break;
	default:
		return not_called(th, WSYNC_E_UNEXPECTED, "testhost: unknown operation %d", op);
	}
	/* wsyncd never calls a delete for something it never synced. */
	if (is_delete && !own) {
		th->result.status = WSYNC_NOT_APPLICABLE;
		th->result.operation = WSYNC_OP_DELETE;
		return WSYNC_NOT_APPLICABLE;
	}

	user = in->user_id ? in->user_id
	     : in->scheduled && in->scheduled->user_id ? in->scheduled->user_id
	     : in->workout && in->workout->user_id ? in->workout->user_id
	     : WSYNC_TESTHOST_USER;
	new_uuid(queue_id);
	memset(&req, 0, sizeof req);
	req.struct_size = sizeof req;
	req.operation = is_delete ? WSYNC_OP_DELETE : own ? WSYNC_OP_UPDATE : WSYNC_OP_CREATE;
	req.queue_id = queue_id;
	req.provider = inst->name;
	req.user_id = user;
	req.access_token = th->token.access_token;
	/* As in wsyncd: deletes do not load the entity, and a workout's own
	 * sync has no scheduled workout. */
	req.workout = is_delete ? NULL : in->workout;
	req.scheduled = op == WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT ? in->scheduled : NULL;
	req.workout_provider_id = in->workout_provider_id;
	req.scheduled_provider_id = in->scheduled_provider_id;
	req.attempt = in->attempt > 0 ? in->attempt : 1;
	req.now = th_now();
	if (reconcile == WSYNC_TESTHOST_ABI_1_0) {
		/* a 1.0 host's request ends before the ABI 1.1 members */
		req.struct_size = (uint32_t)offsetof(wsync_request, reconcile);
	} else {
		/* as wsyncd: the entity's id is the stable key */
		req.reconcile = reconcile;
		req.external_key = external_key ? external_key
		                 : is_delete ? NULL
		                 : op == WSYNC_TESTHOST_SYNC_WORKOUT ? in->workout->id
		                 : in->scheduled->id;
	}

	call = &th->tc.call;
	wsync_call_init(call, inst);
	call->http = th->http;
	call->user_id = user;
	call->token = &th->token;
	/* The daemon's own path: lock, outcome, 404 rules; under our guard
	 * (a crash or a hang names the plugin and the operation). */
	{
		static const char *const op_names[] = {"sync_workout", "sync_scheduled_workout",
		                                       "delete_workout",
		                                       "delete_scheduled_workout"};
		guard g;
		guard_enter(th, &g, op_names[op]);
		st = wsync_invoke(inst, call, op, &req, &recreated);
		guard_leave(th, &g);
	}

	th->result.status = st;
	th->result.called = 1;
	th->result.operation = req.operation;
	th->result.recreated = recreated;
	th->result.error_type = wsync_error_type(st);
	th->result.retry_after_s = call->retry_after_s;
	th->result_message = xstrdup(call->message);
	th->result.message = th->result_message;
	th->result_provider_id = xstrdup(call->provider_id);
	th->result.provider_id = th->result_provider_id;
	wsync_call_clean(call);
	return st;
}

const wsync_testhost_outcome *wsync_testhost_result(const wsync_testhost *th)
{
	return th ? &th->result : NULL;
}

/* ---- canned answers ------------------------------------------------------- */

/* The core's responder hook, translated to the public answer struct. */
static void responder_trampoline(void *ctx, const char *url, const wsync_http_request *req,
                                 wsync_http_canned *out)
{
	wsync_testhost *th = ctx;
	wsync_testhost_answer a;

	memset(&a, 0, sizeof a);
	th->responder(th->responder_ctx, url, req, &a);
	out->status = a.status;
	out->headers = a.headers;
	out->body = a.body;
	out->body_len = a.body ? a.body_len : 0;
}

void wsync_testhost_set_responder(wsync_testhost *th, wsync_testhost_responder fn,
                                  void *ctx)
{
	if (!th)
		return;
	th->responder = fn;
	th->responder_ctx = ctx;
	wsync_http_client_set_responder(th->http, fn ? responder_trampoline : NULL, th);
}
