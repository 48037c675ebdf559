/*
 * child.c -- the plugin's side of isolation (isolate.h): `wsyncd
 * --plugin-host` loads one instance's plugin with the parent's setup,
 * drops what it does not need, and runs operations as the parent sends
 * them, one thread per channel.  Its host services are the in-process ones
 * (host.c, helpers.c) except http(), which asks the parent.
 */
#include "isolate.h"

#include "common/log.h"
#include "common/workout_parse.h"
#include "invoke.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CONTROL_FD 3
#define FIRST_CHANNEL_FD 4

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* What the parent sent in SETUP; strings point into `frame`. */
typedef struct setup {
	wsync_wire frame;
	int channels, log_level, drop, cpu_per_call_s;
	long long uid, gid, memory_limit_mb;
	const char *file;
	wsync_provider_config provider;
	wsync_config cfg;
	char plugin_dir[4096];
} setup;

/* This thread's channel and the frame its last HTTP answer lives in (the
 * body a plugin reads is valid until its next http() call). */
static _Thread_local int channel_fd = -1;
static _Thread_local wsync_wire *answer_frame;

/* The SETUP frame already in s->frame. */
static int read_setup(setup *s)
{
	wsync_wire *w = &s->frame;
	int64_t n;
	s->channels = (int)wsync_wire_get_i64(w);
	s->log_level = (int)wsync_wire_get_i64(w);
	s->drop = (int)wsync_wire_get_i64(w);
	s->uid = wsync_wire_get_i64(w);
	s->gid = wsync_wire_get_i64(w);
	s->memory_limit_mb = wsync_wire_get_i64(w);
	s->cpu_per_call_s = (int)wsync_wire_get_i64(w);
	s->file = wsync_wire_get_str(w, NULL);
	s->provider.name = (char *)wsync_wire_get_str(w, NULL);
	s->provider.path = (char *)wsync_wire_get_str(w, NULL);
	s->provider.plugin = (char *)wsync_wire_get_str(w, NULL);
	s->provider.enabled = (int)wsync_wire_get_i64(w);
	n = wsync_wire_get_i64(w);
	if (w->bad || n < 0 || n > 100000 || s->channels < 1 || s->channels > 4096 || !s->file ||
	    !s->provider.name || !s->provider.plugin)
		return -1;
	s->provider.entries = calloc((size_t)n + 1, sizeof *s->provider.entries);
	if (!s->provider.entries)
		return -1;
	s->provider.n_entries = (size_t)n;
	for (int64_t i = 0; i < n; i++) {
		wsync_config_entry *e = &s->provider.entries[i];
		e->section = (char *)wsync_wire_get_str(w, NULL);
		e->key = (char *)wsync_wire_get_str(w, NULL);
		e->value = (char *)wsync_wire_get_str(w, NULL);
		e->line = (int)wsync_wire_get_i64(w);
		e->core = (int)wsync_wire_get_i64(w);
		e->secret = (char *)wsync_wire_get_str(w, NULL);
		if (!e->section || !e->key || !e->value)
			w->bad = 1;
	}
	return w->bad ? -1 : 0;
}

/* Give up root for the [plugins] user, and keep /proc/self/fd readable
 * (the plugin is opened through it). */
static int drop_privileges(const setup *s, char *err, size_t len)
{
	if (!s->drop)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid((gid_t)s->gid) < 0 || setuid((uid_t)s->uid) < 0 ||
	    getuid() != (uid_t)s->uid || geteuid() != (uid_t)s->uid) {
		snprintf(err, len, "cannot switch to uid %lld gid %lld: %s", s->uid, s->gid,
		         strerror(errno));
		return -1;
	}
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}

static void set_limits(const setup *s)
{
	struct rlimit files = {(rlim_t)s->channels + 64, (rlim_t)s->channels + 64};
	struct rlimit core = {0, 0};
	setrlimit(RLIMIT_NOFILE, &files);
	setrlimit(RLIMIT_CORE, &core); /* a crash must not dump tokens to disk */
#ifndef UNDER_ASAN /* AddressSanitizer reserves terabytes of address space */
	if (s->memory_limit_mb > 0) {
		struct rlimit as = {(rlim_t)s->memory_limit_mb << 20, (rlim_t)s->memory_limit_mb << 20};
		setrlimit(RLIMIT_AS, &as);
	}
#endif
}

/*
 * A seccomp filter (the process has no-new-privs already): a plugin makes
 * its HTTP requests through wsyncd, so it has no use for a socket of its
 * own, nor for tracing or signalling another process.  socket(),
 * socketpair(), connect(), bind(), listen() and accept() fail with EPERM,
 * so a plugin cannot reach the database even where local connections are
 * trusted; ptrace(), execve() and process_vm_readv/writev() fail too (the
 * first two not under AddressSanitizer, whose leak check traces the
 * process's own threads and whose symbolizer is a program);
 * kill() and tgkill() work only on this process (abort() still does).
 */
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define DENY BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define ON(nr, skip_if_not) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, (skip_if_not))
/* Two instructions: load the first argument; skip one unless it is v. */
#define ARG0_IS(v)                                                                   \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),  \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (v), 0, 1)

static int install_filter(char *err, size_t len)
{
#if defined(__x86_64__)
	const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
	const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
	(void)err, (void)len;
	return 0; /* no filter written for this architecture */
#endif
	const uint32_t self = (uint32_t)getpid();
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		ON(__NR_socket, 1), DENY,
		ON(__NR_socketpair, 1), DENY,
		ON(__NR_connect, 1), DENY,
		ON(__NR_bind, 1), DENY,
		ON(__NR_listen, 1), DENY,
		ON(__NR_accept4, 1), DENY,
#ifndef UNDER_ASAN /* its leak check traces threads, its symbolizer is a program */
		ON(__NR_ptrace, 1), DENY,
		ON(__NR_execve, 1), DENY,
		ON(__NR_execveat, 1), DENY,
#endif
		ON(__NR_process_vm_readv, 1), DENY,
		ON(__NR_process_vm_writev, 1), DENY,
#ifdef __NR_accept
		ON(__NR_accept, 1), DENY,
#endif
		/* kill(pid, sig), tgkill(tgid, tid, sig): only this process. */
		ON(__NR_kill, 4), ARG0_IS(self), ALLOW, DENY,
		ON(__NR_tgkill, 4), ARG0_IS(self), ALLOW, DENY,
		ALLOW,
	};
	struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
		snprintf(err, len, "cannot install the seccomp filter: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* A call may use call_timeout_seconds of CPU, on top of what the process
 * used so far, times the calls that may run at once: a plugin spinning
 * where the parent's clock does not reach (a thread of its own) still
 * gets SIGXCPU. */
static void raise_cpu_limit(int seconds, int channels)
{
	struct rusage ru;
	struct rlimit cpu;
	if (seconds <= 0 || getrusage(RUSAGE_SELF, &ru) < 0 || getrlimit(RLIMIT_CPU, &cpu) < 0)
		return;
	rlim_t want = (rlim_t)ru.ru_utime.tv_sec + (rlim_t)ru.ru_stime.tv_sec + 1 +
	              (rlim_t)seconds * (rlim_t)channels;
	if (cpu.rlim_max != RLIM_INFINITY && want > cpu.rlim_max)
		want = cpu.rlim_max;
	if (cpu.rlim_cur == RLIM_INFINITY || cpu.rlim_cur < want) {
		cpu.rlim_cur = want;
		setrlimit(RLIMIT_CPU, &cpu);
	}
}

/* ---- http() through the parent --------------------------------------------- */

static int32_t broken(wsync_call *call, const char *what)
{
	call->status = WSYNC_E_UNEXPECTED;
	snprintf(call->message, sizeof call->message, "plugin host: %s", what);
	return call->status;
}

static int32_t child_http(wsync_call *call, const wsync_http_request *req,
                          wsync_http_response *resp)
{
	wsync_wire *w = answer_frame;
	uint32_t type = 0, n = req->n_headers;
	const char *body, *msg;
	size_t body_len;
	int32_t st;

	if (!w || channel_fd < 0)
		return broken(call, "http() outside an operation");
	if (n > 64)
		return broken(call, "more than 64 request headers");
	wsync_wire_reset(w);
	wsync_wire_i64(w, req->auth);
	wsync_wire_str(w, req->method);
	wsync_wire_str(w, req->path);
	wsync_wire_str(w, req->content_type);
	wsync_wire_bytes(w, req->body, req->body ? req->body_len : 0);
	wsync_wire_i64(w, n);
	for (uint32_t i = 0; i < n; i++) {
		wsync_wire_str(w, req->headers[i].name);
		wsync_wire_str(w, req->headers[i].value);
	}
	if (w->oom)
		return broken(call, "request too large (over 24 MiB) or out of memory");
	if (wsync_wire_send(channel_fd, WSYNC_WIRE_HTTP, w) < 0 ||
	    wsync_wire_recv(channel_fd, -1, &type, w) != 1 || type != WSYNC_WIRE_ANSWER)
		_exit(3); /* the parent is gone or confused: nothing to answer to */
	st = (int32_t)wsync_wire_get_i64(w);
	call->result.status = (long)wsync_wire_get_i64(w);
	body = wsync_wire_get_str(w, &body_len);
	call->result.retry_after_s = wsync_wire_get_i64(w);
	call->retry_after_s = wsync_wire_get_i64(w);
	msg = wsync_wire_get_str(w, NULL);
	if (w->bad)
		_exit(3);
	call->result.body = (char *)body;
	call->result.body_len = body_len;
	snprintf(call->message, sizeof call->message, "%s", msg ? msg : "");
	if (resp) {
		resp->http_status = (int32_t)call->result.status;
		resp->body = body ? body : "";
		resp->body_len = body_len;
		resp->retry_after_s = call->result.retry_after_s;
	}
	return call->status = st;
}

static wsync_host child_services;

static void services_fill(void)
{
	child_services = *wsync_host_services();
	child_services.http = child_http;
}

/* ---- operations -------------------------------------------------------------- */

typedef struct channel {
	pthread_t thread;
	int fd;
	wsync_plugin_instance *inst;
	const setup *setup;
} channel;

static int get_workout(wsync_wire *w, wsync_workout_entity *x, char *err, size_t len)
{
	wsync_parse_error perr;
	const char *text;
	if (!wsync_wire_get_i64(w))
		return 0;
	*x = (wsync_workout_entity){.struct_size = sizeof *x};
	x->id = wsync_wire_get_str(w, NULL);
	x->user_id = wsync_wire_get_str(w, NULL);
	x->name = wsync_wire_get_str(w, NULL);
	x->description = wsync_wire_get_str(w, NULL);
	x->sport = wsync_wire_get_str(w, NULL);
	x->workout_text = text = wsync_wire_get_str(w, NULL);
	x->updated_at = wsync_wire_get_i64(w);
	/* The parent parsed it already; the structure is not sent, it is
	 * made again here from the same text. */
	if (text && wsync_workout_parse(text, strlen(text), (wsync_workout **)&x->structure,
	                                &perr) < 0) {
		snprintf(err, len, "workout text: %s", perr.message);
		return -1;
	}
	return 1;
}

static int get_scheduled(wsync_wire *w, wsync_scheduled_entity *x)
{
	if (!wsync_wire_get_i64(w))
		return 0;
	*x = (wsync_scheduled_entity){.struct_size = sizeof *x};
	x->id = wsync_wire_get_str(w, NULL);
	x->user_id = wsync_wire_get_str(w, NULL);
	x->workout_id = wsync_wire_get_str(w, NULL);
	x->scheduled_date = wsync_wire_get_str(w, NULL);
	x->scheduled_time = wsync_wire_get_str(w, NULL);
	return 1;
}

/* One CALL frame in w: run it, answer DONE (in `out`). */
static int run_call(channel *ch, wsync_wire *w, wsync_wire *out)
{
	wsync_workout_entity workout;
	wsync_scheduled_entity sched;
	wsync_request req = {.struct_size = sizeof req};
	wsync_token token = {0};
	wsync_call call;
	char err[300] = "";
	int which, has_w, has_s;
	int32_t st;

	which = (int)wsync_wire_get_i64(w);
	req.operation = (int32_t)wsync_wire_get_i64(w);
	req.queue_id = wsync_wire_get_str(w, NULL);
	req.provider = wsync_wire_get_str(w, NULL);
	req.user_id = wsync_wire_get_str(w, NULL);
	req.access_token = wsync_wire_get_str(w, NULL);
	has_w = get_workout(w, &workout, err, sizeof err);
	has_s = get_scheduled(w, &sched);
	req.workout = has_w > 0 ? &workout : NULL;
	req.scheduled = has_s ? &sched : NULL;
	req.workout_provider_id = wsync_wire_get_str(w, NULL);
	req.scheduled_provider_id = wsync_wire_get_str(w, NULL);
	req.attempt = (int32_t)wsync_wire_get_i64(w);
	req.now = wsync_wire_get_i64(w);
	req.reconcile = (int32_t)wsync_wire_get_i64(w);
	req.external_key = wsync_wire_get_str(w, NULL);
	req.host = &child_services;
	req.instance = ch->inst;
	if (w->bad)
		return -1;

	wsync_call_init(&call, ch->inst);
	token.access_token = (char *)req.access_token; /* masked in log lines */
	call.token = &token;
	raise_cpu_limit(ch->setup->cpu_per_call_s, ch->setup->channels);
	if (has_w < 0 || which < WSYNC_INVOKE_SYNC_WORKOUT ||
	    which > WSYNC_INVOKE_DELETE_SCHEDULED_WORKOUT)
		st = broken(&call, has_w < 0 ? err : "unknown operation");
	else
		st = wsync_invoke_once(ch->inst, &call, which, &req);
	wsync_wire_reset(out);
	wsync_wire_i64(out, st);
	wsync_wire_i64(out, call.retry_after_s);
	wsync_wire_str(out, call.message);
	wsync_wire_str(out, call.provider_id);
	call.token = NULL;
	wsync_call_clean(&call);
	if (has_w > 0)
		wsync_workout_free((wsync_workout *)workout.structure);
	return wsync_wire_send(ch->fd, WSYNC_WIRE_DONE, out);
}

static void *channel_main(void *arg)
{
	channel *ch = arg;
	wsync_wire in = {0}, answer = {0};
	uint32_t type;
	channel_fd = ch->fd;
	answer_frame = &answer;
	/* Until the parent closes the channel (it stops, or gave up on us). */
	while (wsync_wire_recv(ch->fd, -1, &type, &in) == 1)
		if (type != WSYNC_WIRE_CALL || run_call(ch, &in, &answer) < 0)
			break;
	wsync_wire_free(&in);
	wsync_wire_free(&answer);
	return NULL;
}

/* ---- main -------------------------------------------------------------------- */

static int ready(int ok, const char *why, int config_error)
{
	wsync_wire w = {0};
	int rc;
	wsync_wire_i64(&w, ok);
	wsync_wire_str(&w, why);
	wsync_wire_i64(&w, config_error);
	rc = wsync_wire_send(CONTROL_FD, WSYNC_WIRE_READY, &w);
	wsync_wire_free(&w);
	return rc;
}

/* The one-provider configuration the loader reads. */
static void make_config(setup *s)
{
	const char *slash = strrchr(s->file, '/');
	snprintf(s->plugin_dir, sizeof s->plugin_dir, "%.*s",
	         slash ? (int)(slash - s->file) : 1, slash ? s->file : ".");
	s->cfg.plugin_dir = s->plugin_dir;
	s->cfg.providers = &s->provider;
	s->cfg.n_providers = 1;
}

/* One thread per channel, then READY, then wait for the control socket to
 * close (wsyncd stops us, or died: then the parent-death signal came
 * first).  A plugin's stack is 1 MiB: hundreds of channels must fit in
 * [plugins] memory_limit_mb. */
static void serve(setup *s, wsync_plugin_instance *inst)
{
	channel *chans = calloc((size_t)s->channels, sizeof *chans);
	wsync_wire w = {0};
	pthread_attr_t attr;
	uint32_t type;
	int started = 0;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1u << 20);
	for (int i = 0; chans && i < s->channels; i++) {
		chans[i] = (channel){.fd = FIRST_CHANNEL_FD + i, .inst = inst, .setup = s};
		if (pthread_create(&chans[i].thread, &attr, channel_main, &chans[i]) != 0)
			break;
		started++;
	}
	pthread_attr_destroy(&attr);
	if (started < s->channels) {
		char err[200];
		snprintf(err, sizeof err, "the plugin process could start only %d of %d call "
		         "threads (raise [plugins] memory_limit_mb)", started, s->channels);
		ready(0, err, 0);
		for (int i = 0; i < started; i++) /* they end when we exit */
			pthread_detach(chans[i].thread);
		free(chans);
		return;
	}
	if (ready(1, NULL, 0) == 0)
		while (wsync_wire_recv(CONTROL_FD, -1, &type, &w) == 1)
			;
	wsync_wire_free(&w);
	for (int i = 0; i < started; i++)
		pthread_join(chans[i].thread, NULL);
	free(chans);
}

/* Open the plugin file (before giving up root: the plugin user need not
 * read the plugin directory), then become what a plugin runs as: the
 * [plugins] user, the limits, the seccomp filter.  The file's descriptor,
 * or -1 with err. */
static int confine(const setup *s, char *err, size_t len)
{
	int so = open(s->file, O_RDONLY | O_CLOEXEC);
	if (so < 0) {
		snprintf(err, len, "%s: cannot open: %s", s->file, strerror(errno));
		return -1;
	}
	if (drop_privileges(s, err, len) < 0 || (set_limits(s), install_filter(err, len)) < 0) {
		close(so);
		return -1;
	}
	return so;
}

/* PROBE: describe the plugin file (the loader's checks, as `path`), then
 * exit: wsyncd validates the configuration against the schema. */
static int probe(setup *s)
{
	wsync_wire *w = &s->frame, out = {0};
	char err[600], open_path[64];
	wsync_plugin d;
	int so, rc;
	s->drop = (int)wsync_wire_get_i64(w);
	s->uid = wsync_wire_get_i64(w);
	s->gid = wsync_wire_get_i64(w);
	s->memory_limit_mb = wsync_wire_get_i64(w);
	s->file = wsync_wire_get_str(w, NULL);
	s->channels = 1;
	if (w->bad || !s->file)
		return 2;
	so = confine(s, err, sizeof err);
	snprintf(open_path, sizeof open_path, "/proc/self/fd/%d", so);
	if (so < 0 || wsync_plugin_probe(s->file, open_path, &d, err, sizeof err) < 0) {
		wsync_wire_i64(&out, 0);
		wsync_wire_str(&out, err);
	} else {
		wsync_wire_i64(&out, 1);
		wsync_wire_i64(&out, d.magic);
		wsync_wire_i64(&out, d.abi_major);
		wsync_wire_i64(&out, d.abi_minor);
		wsync_wire_i64(&out, d.struct_size);
		wsync_wire_i64(&out, d.flags);
		wsync_wire_str(&out, d.name);
		wsync_wire_str(&out, d.version);
		wsync_wire_str(&out, d.description);
		wsync_wire_i64(&out, d.config_keys ? d.n_config_keys : 0);
		for (uint32_t i = 0; d.config_keys && i < d.n_config_keys; i++) {
			const wsync_config_key *k = &d.config_keys[i];
			wsync_wire_str(&out, k->section);
			wsync_wire_str(&out, k->key);
			wsync_wire_i64(&out, k->type);
			wsync_wire_i64(&out, k->required);
			wsync_wire_str(&out, k->default_value);
			wsync_wire_str(&out, k->help);
		}
	}
	rc = wsync_wire_send(CONTROL_FD, WSYNC_WIRE_DESCRIPTOR, &out) < 0;
	wsync_wire_free(&out);
	if (so >= 0)
		close(so);
	return rc;
}

int wsync_plugin_host_main(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	setup s;
	char err[600], open_path[64];
	wsync_registry *reg;
	wsync_plugin_instance *inst;
	uint32_t type = 0;
	int so;

	memset(&s, 0, sizeof s);
	if (wsync_wire_recv(CONTROL_FD, 30000, &type, &s.frame) == 1 && type == WSYNC_WIRE_PROBE) {
		int rc = probe(&s);
		wsync_wire_free(&s.frame);
		return rc;
	}
	if (type != WSYNC_WIRE_SETUP || read_setup(&s) < 0) {
		fprintf(stderr, "wsync-plugin-host: no valid setup on fd 3 (this program is "
		        "started by wsyncd, not by hand)\n");
		free(s.provider.entries);
		wsync_wire_free(&s.frame);
		return 2;
	}
	wsync_log_set_level(s.log_level);
	pthread_once(&once, services_fill);
	if ((so = confine(&s, err, sizeof err)) < 0) {
		ready(0, err, 0);
	} else {
		snprintf(open_path, sizeof open_path, "/proc/self/fd/%d", so);
		make_config(&s);
		reg = wsync_registry_load_opts(&s.cfg, &child_services,
		                               &(wsync_load_options){.open_path = open_path});
		inst = reg ? wsync_registry_at(reg, 0) : NULL;
		if (!inst || !inst->loaded)
			ready(0, inst && inst->refusal ? inst->refusal : "out of memory",
			      inst ? inst->config_error : 0);
		else
			serve(&s, inst);
		wsync_registry_free(reg);
		close(so);
	}
	free(s.provider.entries);
	wsync_wire_free(&s.frame);
	return 0;
}
