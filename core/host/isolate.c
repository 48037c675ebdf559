/*
 * isolate.c -- wsyncd's side of a plugin's child process (isolate.h): start
 * it, hold conversations with it, notice its death or silence, back off and
 * quarantine.  The child's side is child.c.
 */
#include "isolate.h"

#include "common/log.h"
#include "invoke.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 64            /* crash times kept for the quarantine */
#define READY_TIMEOUT_MS 30000   /* load + init() in the child */
#define STOP_TIMEOUT_MS 5000     /* destroy() in the child at shutdown */
#define BACKOFF_MAX_S 30

/* One child process; calls in flight hold references, so a dead one's
 * channels stay open (and their numbers unused) until the last call
 * inside it has looked at them. */
typedef struct proc {
	pid_t pid;
	int control;
	int n;
	int *fd;
	unsigned char *busy;
	int refs;            /* calls in flight, + 1 while it is current */
	int dead;
	char death[240];     /* "crashed with signal 11 (Segmentation fault)" */
} proc;

struct wsync_child {
	wsync_plugin_instance *inst;
	wsync_isolation iso;
	pthread_mutex_t mu;
	pthread_cond_t freed;      /* a channel came free, or the child changed */
	proc *cur;                 /* NULL: none running */
	int starting;              /* a thread is starting one */
	long long restart_at;      /* monotonic ms before which none starts */
	int backoff_s;
	long long events[MAX_EVENTS]; /* crashes and hangs, monotonic ms */
	int n_events;
	int quarantined;
	int published;             /* the engine has recorded this quarantine */
	char why[600];
};

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *plugin_name(const wsync_child *c)
{
	return c->inst->desc ? c->inst->desc->name : "?";
}

/* ---- starting a child ------------------------------------------------------- */

/* The child's environment: nothing secret, only what loading a plugin and
 * logging need.  Strings are the parent's (environ), valid across fork. */
static void child_env(char **envp, size_t max)
{
	static const char *const keep[] = {"LD_LIBRARY_PATH", "TZ", "JOURNAL_STREAM",
	                                   "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
	extern char **environ;
	size_t n = 0;
	for (char **e = environ; e && *e && n + 1 < max; e++)
		for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
			size_t len = strlen(keep[k]);
			if (!strncmp(*e, keep[k], len) && (*e)[len] == '=')
				envp[n++] = *e;
		}
	envp[n] = NULL;
}

/* In the forked child: async-signal-safe calls only, then exec.  The
 * control socket becomes fd 3, the channels 4..; nothing else survives. */
static void child_exec(int control, const int *ends, int *tmp, int n, pid_t parent,
                       char **argv, char **envp)
{
	sigset_t none;
	int null, base = 4 + n;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	setpgid(0, 0); /* a terminal's ^C is for wsyncd, which stops us in order */
	tmp[n] = fcntl(control, F_DUPFD, base);
	for (int i = 0; i < n; i++)
		tmp[i] = fcntl(ends[i], F_DUPFD, base);
	dup2(tmp[n], 3);
	for (int i = 0; i < n; i++)
		dup2(tmp[i], 4 + i);
	null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(2, 1);
	close_range((unsigned)base, ~0u, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	execve("/proc/self/exe", argv, envp);
	_exit(127);
}

/* What the child needs of the instance: its configuration without the
 * OAuth client secret (the parent refreshes tokens), and the limits. */
static void put_setup(wsync_wire *w, const wsync_child *c)
{
	const wsync_provider_config *p = c->inst->cfg;
	wsync_wire_i64(w, c->iso.channels);
	wsync_wire_i64(w, wsync_log_level());
	wsync_wire_i64(w, c->iso.drop);
	wsync_wire_i64(w, c->iso.uid);
	wsync_wire_i64(w, c->iso.gid);
	wsync_wire_i64(w, c->iso.memory_limit_mb);
	wsync_wire_i64(w, p->call_timeout_s);
	wsync_wire_str(w, c->inst->file);
	wsync_wire_str(w, p->name);
	wsync_wire_str(w, p->path);
	wsync_wire_str(w, p->plugin);
	wsync_wire_i64(w, p->enabled);
	wsync_wire_i64(w, (int64_t)p->n_entries);
	for (size_t i = 0; i < p->n_entries; i++) {
		const wsync_config_entry *e = &p->entries[i];
		int oauth = !strcmp(e->section, "oauth");
		wsync_wire_str(w, e->section);
		wsync_wire_str(w, e->key);
		wsync_wire_str(w, e->value);
		wsync_wire_i64(w, e->line);
		wsync_wire_i64(w, e->core);
		wsync_wire_str(w, oauth ? NULL : e->secret);
	}
}

static void describe_status(char *out, size_t len, int status)
{
	if (WIFSIGNALED(status))
		snprintf(out, len, "crashed with signal %d (%s)", WTERMSIG(status),
		         sigdescr_np(WTERMSIG(status)) ? sigdescr_np(WTERMSIG(status)) : "?");
	else if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(out, len, "ended");
}

/* Kill and reap; what ended it goes to p->death unless `why` says.  A child
 * that closed its end is given a moment to finish dying by itself, so the
 * signal that killed it is the one reported. */
static void end_proc(proc *p, const char *why)
{
	int status = 0;
	pid_t r = 0;
	for (int i = 0; i < 20 && !why && (r = waitpid(p->pid, &status, WNOHANG)) == 0; i++)
		usleep(10000);
	if (r != p->pid) {
		kill(p->pid, SIGKILL);
		while ((r = waitpid(p->pid, &status, 0)) < 0 && errno == EINTR)
			;
	}
	if (why)
		snprintf(p->death, sizeof p->death, "%s", why);
	else
		describe_status(p->death, sizeof p->death, status);
	p->dead = 1;
}

static void close_proc(proc *p)
{
	if (p->control >= 0)
		close(p->control);
	for (int i = 0; i < p->n; i++)
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	free(p->fd);
	free(p->busy);
	free(p);
}

static proc *new_proc(int n)
{
	proc *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = n;
	p->control = -1;
	p->fd = malloc(((size_t)n + 1) * sizeof *p->fd);
	p->busy = calloc((size_t)n + 1, 1);
	if (!p->fd || !p->busy) {
		free(p->fd);
		free(p->busy);
		free(p);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		p->fd[i] = -1;
	return p;
}

/* Fork and exec the child with its sockets; -1 with err set. */
static int fork_child(const char *name, proc *p, char *err, size_t errlen)
{
	int n = p->n, ctl[2], *ends = calloc((size_t)n + 1, sizeof *ends);
	int *tmp = calloc((size_t)n + 1, sizeof *tmp), rc = -1;
	char *envp[8], *argv[] = {"wsync-plugin-host", "--plugin-host", (char *)name, NULL};
	pid_t parent = getpid();

	if (!ends || !tmp || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
		snprintf(err, errlen, "cannot create its sockets: %s", strerror(errno));
		goto out;
	}
	p->control = ctl[0];
	for (int i = 0; i < n; i++) {
		int pair[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
			snprintf(err, errlen, "cannot create its sockets: %s", strerror(errno));
			for (int k = 0; k < i; k++)
				close(ends[k]);
			close(ctl[1]);
			goto out;
		}
		p->fd[i] = pair[0];
		ends[i] = pair[1];
	}
	child_env(envp, sizeof envp / sizeof envp[0]);
	p->pid = fork();
	if (p->pid == 0)
		child_exec(ctl[1], ends, tmp, n, parent, argv, envp);
	close(ctl[1]);
	for (int i = 0; i < n; i++)
		close(ends[i]);
	if (p->pid < 0)
		snprintf(err, errlen, "cannot fork: %s", strerror(errno));
	else
		rc = 0;
out:
	free(ends);
	free(tmp);
	return rc;
}

/*
 * Children are forked by one thread that lives as long as the process: the
 * parent-death signal fires when the THREAD that forked a child ends, and
 * the call threads that restart children end before wsyncd stops its
 * children in order (destroy() must still run there).
 */
typedef struct fork_job {
	const char *name;
	proc *p;
	char *err;
	size_t errlen;
	int rc, done;
	struct fork_job *next;
} fork_job;

static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fork_wanted = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fork_finished = PTHREAD_COND_INITIALIZER;
static fork_job *fork_queue;
static pthread_once_t forker_once = PTHREAD_ONCE_INIT;
static int forker_running;

static void *forker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&fork_mu);
	for (;;) {
		fork_job *job;
		while (!(job = fork_queue))
			pthread_cond_wait(&fork_wanted, &fork_mu);
		fork_queue = job->next;
		pthread_mutex_unlock(&fork_mu);
		job->rc = fork_child(job->name, job->p, job->err, job->errlen);
		pthread_mutex_lock(&fork_mu);
		job->done = 1;
		pthread_cond_broadcast(&fork_finished);
	}
	return NULL;
}

static void start_forker(void)
{
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	forker_running = pthread_create(&t, &attr, forker, NULL) == 0;
	pthread_attr_destroy(&attr);
}

static int fork_on_forker(const char *name, proc *p, char *err, size_t errlen)
{
	fork_job job = {name, p, err, errlen, -1, 0, NULL};
	pthread_once(&forker_once, start_forker);
	if (!forker_running) /* no thread to spare: this one will do */
		return fork_child(name, p, err, errlen);
	pthread_mutex_lock(&fork_mu);
	job.next = fork_queue;
	fork_queue = &job;
	pthread_cond_signal(&fork_wanted);
	while (!job.done)
		pthread_cond_wait(&fork_finished, &fork_mu);
	pthread_mutex_unlock(&fork_mu);
	return job.rc;
}

/* Start a child and hand it the instance's setup; NULL with err.  The
 * child then loads the plugin while the caller goes on (await_ready). */
static proc *launch_proc(wsync_child *c, char *err, size_t errlen)
{
	proc *p = new_proc(c->iso.channels);
	wsync_wire w = {0};
	int sent;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (fork_on_forker(c->inst->name, p, err, errlen) < 0) {
		close_proc(p);
		return NULL;
	}
	put_setup(&w, c);
	sent = wsync_wire_send(p->control, WSYNC_WIRE_SETUP, &w);
	wsync_wire_free(&w);
	if (sent < 0) {
		end_proc(p, NULL);
		snprintf(err, errlen, "its process %s while loading the plugin", p->death);
		close_proc(p);
		return NULL;
	}
	return p;
}

/* Wait until a launched child has loaded the plugin and run init().  p, or
 * NULL with err (p is then ended and freed); *refused: 1 the plugin refused,
 * 2 its configuration did. */
static proc *await_ready(proc *p, char *err, size_t errlen, int *refused)
{
	wsync_wire w = {0};
	uint32_t type = 0;
	int r = wsync_wire_recv(p->control, READY_TIMEOUT_MS, &type, &w);

	*refused = 0;
	if (r == 1 && type == WSYNC_WIRE_READY && wsync_wire_get_i64(&w) == 1 && !w.bad) {
		p->refs = 1;
		wsync_wire_free(&w);
		return p;
	}
	if (r == 1 && type == WSYNC_WIRE_READY && !w.bad) {
		const char *why = wsync_wire_get_str(&w, NULL);
		*refused = (int)wsync_wire_get_i64(&w) ? 2 : 1;
		snprintf(err, errlen, "%s", why ? why : "refused");
		end_proc(p, "refused");
	} else {
		end_proc(p, r == -2 ? "did not load within 30 s" : NULL);
		snprintf(err, errlen, "its process %s while loading the plugin", p->death);
	}
	wsync_wire_free(&w);
	close_proc(p);
	return NULL;
}

/* Start a child and wait until it has loaded the plugin; NULL with err. */
static proc *start_proc(wsync_child *c, char *err, size_t errlen, int *refused)
{
	proc *p = launch_proc(c, err, errlen);
	*refused = 0;
	return p ? await_ready(p, err, errlen, refused) : NULL;
}

/* ---- probing a plugin file ----------------------------------------------------- */

/* What a probe learnt: the descriptor's strings live in the answer frame. */
typedef struct probed {
	wsync_wire frame;
	wsync_config_key *keys;
} probed;

static void probe_free(void *owned)
{
	probed *pr = owned;
	if (!pr)
		return;
	wsync_wire_free(&pr->frame);
	free(pr->keys);
	free(pr);
}

/* The descriptor as the plugin process read it: the frozen members, the
 * flags, the strings and the config schema.  The operations stay NULL:
 * wsyncd never calls them itself. */
static int take_descriptor(probed *pr, wsync_plugin *d)
{
	wsync_wire *w = &pr->frame;
	int64_t n;
	memset(d, 0, sizeof *d);
	d->magic = (uint32_t)wsync_wire_get_i64(w);
	d->abi_major = (uint16_t)wsync_wire_get_i64(w);
	d->abi_minor = (uint16_t)wsync_wire_get_i64(w);
	d->struct_size = (uint32_t)wsync_wire_get_i64(w);
	d->flags = (uint32_t)wsync_wire_get_i64(w);
	d->name = wsync_wire_get_str(w, NULL);
	d->version = wsync_wire_get_str(w, NULL);
	d->description = wsync_wire_get_str(w, NULL);
	n = wsync_wire_get_i64(w);
	if (w->bad || n < 0 || n > 4096 || !d->name || !d->version)
		return -1;
	if (n && !(pr->keys = calloc((size_t)n, sizeof *pr->keys)))
		return -1;
	for (int64_t i = 0; i < n; i++) {
		wsync_config_key *k = &pr->keys[i];
		k->section = wsync_wire_get_str(w, NULL);
		k->key = wsync_wire_get_str(w, NULL);
		k->type = (int32_t)wsync_wire_get_i64(w);
		k->required = (int32_t)wsync_wire_get_i64(w);
		k->default_value = wsync_wire_get_str(w, NULL);
		k->help = wsync_wire_get_str(w, NULL);
		if (!k->section || !k->key)
			w->bad = 1;
	}
	d->config_keys = pr->keys;
	d->n_config_keys = (uint32_t)n;
	return w->bad ? -1 : 0;
}

/* Probes started ahead (wsync_load_options.probe_ahead), by file, until
 * the loader asks for them. */
typedef struct probe_set {
	const wsync_isolation *iso;
	struct ahead {
		char *path;
		proc *p;
	} *ahead;
	size_t n;
} probe_set;

/* A probe process for the file at path, its question sent; NULL with err. */
static proc *launch_probe(const wsync_isolation *iso, const char *path, char *err,
                          size_t errlen)
{
	proc *p = new_proc(0);
	wsync_wire w = {0};
	int sent;

	if (!p) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (fork_on_forker("probe", p, err, errlen) < 0) {
		close_proc(p);
		return NULL;
	}
	wsync_wire_i64(&w, iso->drop);
	wsync_wire_i64(&w, iso->uid);
	wsync_wire_i64(&w, iso->gid);
	wsync_wire_i64(&w, iso->memory_limit_mb);
	wsync_wire_str(&w, path);
	sent = wsync_wire_send(p->control, WSYNC_WIRE_PROBE, &w);
	wsync_wire_free(&w);
	if (sent < 0) {
		end_proc(p, NULL);
		snprintf(err, errlen, "%s: its plugin process %s while loading it", path, p->death);
		close_proc(p);
		return NULL;
	}
	return p;
}

/* wsync_load_options.probe_ahead: the loader will ask for this file; its
 * probe starts now, beside the others.  A probe that cannot start here is
 * started again, and its failure reported, when the file is asked for. */
static void probe_ahead(void *arg, const char *path)
{
	probe_set *ps = arg;
	char err[512];
	struct ahead *grown = realloc(ps->ahead, (ps->n + 1) * sizeof *grown);
	proc *p;
	if (!grown)
		return;
	ps->ahead = grown;
	if (!(p = launch_probe(ps->iso, path, err, sizeof err)))
		return;
	if (!(grown[ps->n].path = strdup(path))) {
		end_proc(p, "probed");
		close_proc(p);
		return;
	}
	grown[ps->n++].p = p;
}

/* The probe started ahead for path, taken out of the set, or NULL. */
static proc *take_ahead(probe_set *ps, const char *path)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->ahead[i].path, path)) {
			proc *p = ps->ahead[i].p;
			free(ps->ahead[i].path);
			ps->ahead[i] = ps->ahead[--ps->n];
			return p;
		}
	return NULL;
}

/* Probes the loader never asked for (it refused their instances first). */
static void drop_ahead(probe_set *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		end_proc(ps->ahead[i].p, "probed");
		close_proc(ps->ahead[i].p);
		free(ps->ahead[i].path);
	}
	free(ps->ahead);
	ps->ahead = NULL;
	ps->n = 0;
}

/* wsync_load_options.probe: a plugin process of its own opens the file
 * (with the privileges and limits of a running plugin), validates it as the
 * loader does and describes it; nothing of the plugin runs in wsyncd. */
static int probe_plugin(void *arg, const char *path, wsync_plugin *desc, void **owned,
                        char *err, size_t errlen)
{
	probe_set *ps = arg;
	proc *p = take_ahead(ps, path);
	probed *pr = calloc(1, sizeof *pr);
	uint32_t type = 0;
	int r = -1, rc = -1;

	if (!p)
		p = launch_probe(ps->iso, path, err, errlen);
	if (!p || !pr) {
		if (!pr)
			snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	r = wsync_wire_recv(p->control, READY_TIMEOUT_MS, &type, &pr->frame);
	if (r == 1 && type == WSYNC_WIRE_DESCRIPTOR) {
		int ok = (int)wsync_wire_get_i64(&pr->frame);
		const char *why = ok ? NULL : wsync_wire_get_str(&pr->frame, NULL);
		if (ok && take_descriptor(pr, desc) == 0)
			rc = 0;
		else
			snprintf(err, errlen, "%s", why ? why : "malformed answer of its plugin process");
		end_proc(p, "probed");
	} else {
		end_proc(p, r == -2 ? "did not answer within 30 s" : NULL);
		snprintf(err, errlen, "%s: its plugin process %s while loading it", path, p->death);
	}
out:
	if (p)
		close_proc(p);
	if (rc == 0)
		*owned = pr;
	else
		probe_free(pr);
	return rc;
}

/* ---- the registry --------------------------------------------------------- */

static wsync_child *child_new(wsync_plugin_instance *inst, const wsync_isolation *iso)
{
	wsync_child *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->inst = inst;
	c->iso = *iso;
	if (c->iso.channels < 1)
		c->iso.channels = 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->freed, NULL);
	return c;
}

/* The instance gets no child: it is refused with err. */
static void refuse_child(wsync_plugin_instance *in, const char *err, int refused)
{
	wsync_error("provider %s refused: %s", in->name, err);
	free(in->refusal);
	in->refusal = strdup(err);
	in->config_error = refused == 2;
	in->loaded = 0;
	wsync_child_free(in->child);
	in->child = NULL;
}

/* Every child is launched before any is waited for: they load their
 * plugins side by side, so wsyncd's start (and a reload) waits for the
 * slowest, not for the sum. */
size_t wsync_isolate_registry(wsync_registry *reg, const wsync_isolation *iso)
{
	size_t running = 0, n = wsync_registry_count(reg);
	char err[1024];
	int refused;

	for (size_t i = 0; i < n; i++) {
		wsync_plugin_instance *in = wsync_registry_at(reg, i);
		if (!in->loaded)
			continue;
		if (!(in->child = child_new(in, iso)))
			refuse_child(in, "out of memory", 0);
		else if (!(in->child->cur = launch_proc(in->child, err, sizeof err)))
			refuse_child(in, err, 0);
	}
	for (size_t i = 0; i < n; i++) {
		wsync_plugin_instance *in = wsync_registry_at(reg, i);
		if (!in->loaded)
			continue;
		if (!(in->child->cur = await_ready(in->child->cur, err, sizeof err, &refused)))
			refuse_child(in, err, refused);
		else
			running++;
	}
	return running;
}

/* When wsyncd runs as root, its plugins' children run as [plugins] user. */
static int plugin_user(const wsync_config *cfg, wsync_isolation *iso, char *err, size_t len)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int rc;
	if (geteuid() != 0)
		return 0;
	rc = getpwnam_r(cfg->plugin_user ? cfg->plugin_user : "", &pw, buf, sizeof buf, &found);
	if (!found) {
		snprintf(err, len, "[plugins] user '%s': %s (wsyncd runs as root and starts each "
		         "plugin as this user: create it, or name another)",
		         cfg->plugin_user ? cfg->plugin_user : "",
		         rc ? strerror(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, len, "[plugins] user '%s' is root: plugins must not run as root "
		         "(name an unprivileged user, e.g. nobody)", cfg->plugin_user);
		return -1;
	}
	iso->drop = 1;
	iso->uid = pw.pw_uid;
	iso->gid = pw.pw_gid;
	return 0;
}

/* The probe refused every file with `why` already (and logged it); that
 * is a configuration error. */
static void refuse_all(wsync_registry *reg, const char *why)
{
	for (size_t i = 0; i < wsync_registry_count(reg); i++) {
		wsync_plugin_instance *in = wsync_registry_at(reg, i);
		in->config_error = 1;
		if (!in->loaded)
			continue;
		in->loaded = 0;
		free(in->refusal);
		in->refusal = strdup(why);
		wsync_error("provider %s refused: %s", in->name, why);
	}
}

/* wsync_load_options.probe when the plugin user is unusable: refuse, load
 * nothing. */
static int refuse_probe(void *arg, const char *path, wsync_plugin *desc, void **owned,
                        char *err, size_t errlen)
{
	(void)path, (void)desc, (void)owned;
	snprintf(err, errlen, "%s", (const char *)arg);
	return -1;
}

wsync_registry *wsync_isolate_load(const wsync_config *cfg, wsync_isolation *iso)
{
	probe_set probes = {iso, NULL, 0};
	wsync_load_options opts = {.validate_only = 1, .probe = probe_plugin,
	                           .probe_ahead = probe_ahead, .probe_free = probe_free,
	                           .probe_arg = &probes};
	wsync_registry *reg;
	char err[400];
	if (!cfg->plugin_isolate)
		return wsync_registry_load(cfg, wsync_host_services());
	iso->memory_limit_mb = cfg->plugin_memory_limit_mb;
	if (plugin_user(cfg, iso, err, sizeof err) < 0) {
		opts.probe = refuse_probe;
		opts.probe_ahead = NULL;
		opts.probe_arg = err;
		reg = wsync_registry_load_opts(cfg, wsync_host_services(), &opts);
		refuse_all(reg, err);
		return reg;
	}
	reg = wsync_registry_load_opts(cfg, wsync_host_services(), &opts);
	drop_ahead(&probes);
	wsync_isolate_registry(reg, iso);
	return reg;
}

void wsync_child_free(wsync_child *c)
{
	proc *p;
	if (!c)
		return;
	if ((p = c->cur)) {
		int status;
		long long until = mono_ms() + STOP_TIMEOUT_MS;
		/* Closing the channels ends the child's call threads, closing the
		 * control socket asks for destroy() and exit. */
		for (int i = 0; i < p->n; i++) {
			close(p->fd[i]);
			p->fd[i] = -1;
		}
		close(p->control);
		p->control = -1;
		while (waitpid(p->pid, &status, WNOHANG) == 0 && mono_ms() < until)
			usleep(10000);
		if (waitpid(p->pid, &status, WNOHANG) == 0) {
			wsync_warn("provider %s: plugin %s did not stop within 5 s; killed",
			           c->inst->name, plugin_name(c));
			end_proc(p, "killed");
		}
		close_proc(p);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->freed);
	free(c);
}

/* ---- crashes, hangs, quarantine --------------------------------------------- */

/* A death or hang of the current child (c->mu held): count it, back off,
 * perhaps quarantine. */
static void record_death(wsync_child *c, proc *p)
{
	long long now = mono_ms(), window = (long long)c->inst->cfg->quarantine_window_s * 1000;
	int k = 0, limit = c->inst->cfg->quarantine_after;
	for (int i = 0; i < c->n_events; i++)
		if (now - c->events[i] < window)
			c->events[k++] = c->events[i];
	c->n_events = k;
	if (c->n_events < MAX_EVENTS)
		c->events[c->n_events++] = now;
	c->backoff_s = c->backoff_s ? c->backoff_s * 2 : 1;
	if (c->backoff_s > BACKOFF_MAX_S)
		c->backoff_s = BACKOFF_MAX_S;
	c->restart_at = now + c->backoff_s * 1000LL;
	if (c->cur == p) {
		c->cur = NULL;
		p->refs--;
	}
	if (limit > 0 && c->n_events >= limit && !c->quarantined) {
		c->quarantined = 1;
		snprintf(c->why, sizeof c->why, "quarantined: %d crashes or hangs within %d s, "
		         "the last: %s; its entries wait (release: SIGHUP or `wsyncctl plugins "
		         "--release %s`)", c->n_events, c->inst->cfg->quarantine_window_s,
		         p->death, c->inst->name);
		wsync_error("provider %s: plugin %s %s", c->inst->name, plugin_name(c), c->why);
		if (c->iso.changed)
			c->iso.changed(c->iso.changed_arg);
	} else {
		wsync_error("provider %s: plugin %s %s; starting it again in %d s",
		            c->inst->name, plugin_name(c), p->death, c->backoff_s);
	}
}

int wsync_child_quarantined(wsync_child *c, char *why, size_t len)
{
	int q;
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	q = c->quarantined;
	if (q && why)
		snprintf(why, len, "%s", c->why);
	pthread_mutex_unlock(&c->mu);
	return q;
}

int wsync_child_quarantine_news(wsync_child *c, char *why, size_t len)
{
	int news;
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	news = c->quarantined && !c->published;
	c->published |= news;
	if (news)
		snprintf(why, len, "%s", c->why);
	pthread_mutex_unlock(&c->mu);
	return news;
}

void wsync_child_release(wsync_child *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->quarantined)
		wsync_info("provider %s: quarantine lifted; the plugin starts with the next call",
		           c->inst->name);
	c->quarantined = 0;
	c->published = 0;
	c->n_events = 0;
	c->backoff_s = 0;
	c->restart_at = 0;
	pthread_mutex_unlock(&c->mu);
}

/* ---- calls ---------------------------------------------------------------- */

/* Back to the queue without using a retry (rate_limit's row of the
 * classification); not a deferral of wsync's rate limiter, so
 * call->deferred (its metric) stays 0. */
static int32_t defer(wsync_call *call, int64_t seconds, const char *fmt, const char *a,
                     const char *b)
{
	call->retry_after_s = seconds > 0 ? seconds : 1;
	snprintf(call->message, sizeof call->message, fmt, a, b, (long long)call->retry_after_s);
	return call->status = WSYNC_E_RATE_LIMIT;
}

/* A child to call, and a free channel of it (*ch); NULL with the call
 * deferred when none may run now. */
static proc *acquire(wsync_child *c, wsync_call *call, int *ch)
{
	proc *p;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		long long now = mono_ms();
		if (c->quarantined) {
			/* Only calls of a batch claimed as the quarantine began get
			 * here (a quarantined instance's entries are not claimed):
			 * a short deferral, so that they go soon after a release,
			 * not up to a minute later. */
			pthread_mutex_unlock(&c->mu);
			defer(call, 5, "provider %s: plugin %s is quarantined; next try in %lld s",
			      c->inst->name, plugin_name(c));
			return NULL;
		}
		if (!c->cur && (c->starting || now < c->restart_at)) {
			int64_t wait = c->starting ? 1 : (c->restart_at - now + 999) / 1000;
			pthread_mutex_unlock(&c->mu);
			defer(call, wait, "provider %s: plugin %s is starting again after a crash; "
			      "next try in %lld s", c->inst->name, plugin_name(c));
			return NULL;
		}
		if (!c->cur) {
			char err[1024];
			int refused;
			c->starting = 1;
			pthread_mutex_unlock(&c->mu);
			p = start_proc(c, err, sizeof err, &refused);
			pthread_mutex_lock(&c->mu);
			c->starting = 0;
			c->cur = p;
			if (!p) {
				proc failed = {.pid = 0};
				snprintf(failed.death, sizeof failed.death, "could not start: %.200s", err);
				record_death(c, &failed);
			} else {
				wsync_info("provider %s: plugin %s started again (pid %d)", c->inst->name,
				           plugin_name(c), (int)p->pid);
			}
			pthread_cond_broadcast(&c->freed);
			continue;
		}
		p = c->cur;
		for (int i = 0; i < p->n; i++)
			if (!p->busy[i]) {
				p->busy[i] = 1;
				p->refs++;
				*ch = i;
				pthread_mutex_unlock(&c->mu);
				return p;
			}
		pthread_cond_wait(&c->freed, &c->mu);
	}
}

static void release(wsync_child *c, proc *p, int ch, int ok)
{
	pthread_mutex_lock(&c->mu);
	p->busy[ch] = 0;
	if (ok && p == c->cur)
		c->backoff_s = 0; /* it answers again: the next crash starts the back-off over */
	if (--p->refs == 0)
		close_proc(p);
	pthread_cond_broadcast(&c->freed);
	pthread_mutex_unlock(&c->mu);
}

static void put_workout(wsync_wire *w, const wsync_workout_entity *x)
{
	wsync_wire_i64(w, x != NULL);
	if (!x)
		return;
	wsync_wire_str(w, x->id);
	wsync_wire_str(w, x->user_id);
	wsync_wire_str(w, x->name);
	wsync_wire_str(w, x->description);
	wsync_wire_str(w, x->sport);
	wsync_wire_str(w, x->workout_text);
	wsync_wire_i64(w, x->updated_at);
}

static void put_scheduled(wsync_wire *w, const wsync_scheduled_entity *x)
{
	wsync_wire_i64(w, x != NULL);
	if (!x)
		return;
	wsync_wire_str(w, x->id);
	wsync_wire_str(w, x->user_id);
	wsync_wire_str(w, x->workout_id);
	wsync_wire_str(w, x->scheduled_date);
	wsync_wire_str(w, x->scheduled_time);
}

static void put_call(wsync_wire *w, int which, const wsync_request *r)
{
	wsync_wire_i64(w, which);
	wsync_wire_i64(w, r->operation);
	wsync_wire_str(w, r->queue_id);
	wsync_wire_str(w, r->provider);
	wsync_wire_str(w, r->user_id);
	wsync_wire_str(w, r->access_token);
	put_workout(w, r->workout);
	put_scheduled(w, r->scheduled);
	wsync_wire_str(w, r->workout_provider_id);
	wsync_wire_str(w, r->scheduled_provider_id);
	wsync_wire_i64(w, r->attempt);
	wsync_wire_i64(w, r->now);
	wsync_wire_i64(w, r->reconcile);
	wsync_wire_str(w, r->external_key);
}

/* The child's HTTP request, made here with the call's token and limiter;
 * its answer goes back.  -1 when the frame is malformed or cannot go. */
static int serve_http(int fd, wsync_call *call, wsync_wire *w)
{
	wsync_http_header headers[64];
	wsync_http_request hr = {.struct_size = sizeof hr};
	wsync_http_response resp = {.struct_size = sizeof resp};
	int64_t n;
	int32_t st;

	hr.auth = (int32_t)wsync_wire_get_i64(w);
	hr.method = wsync_wire_get_str(w, NULL);
	hr.path = wsync_wire_get_str(w, NULL);
	hr.content_type = wsync_wire_get_str(w, NULL);
	hr.body = wsync_wire_get_str(w, &hr.body_len);
	n = wsync_wire_get_i64(w);
	if (n < 0 || n > 64 || w->bad)
		return -1;
	for (int64_t i = 0; i < n; i++) {
		headers[i].name = wsync_wire_get_str(w, NULL);
		headers[i].value = wsync_wire_get_str(w, NULL);
	}
	if (w->bad)
		return -1;
	hr.headers = n ? headers : NULL;
	hr.n_headers = (uint32_t)n;
	st = wsync_host_services()->http(call, &hr, &resp);
	wsync_wire_reset(w);
	wsync_wire_i64(w, st);
	wsync_wire_i64(w, resp.http_status);
	wsync_wire_bytes(w, resp.body ? resp.body : "", resp.body ? resp.body_len : 0);
	wsync_wire_i64(w, resp.retry_after_s);
	wsync_wire_i64(w, call->retry_after_s);
	wsync_wire_str(w, call->message);
	return wsync_wire_send(fd, WSYNC_WIRE_ANSWER, w);
}

static int take_done(wsync_call *call, wsync_wire *w)
{
	int32_t st = (int32_t)wsync_wire_get_i64(w);
	int64_t retry = wsync_wire_get_i64(w);
	const char *msg = wsync_wire_get_str(w, NULL), *id = wsync_wire_get_str(w, NULL);
	if (w->bad)
		return -1;
	call->status = st;
	call->retry_after_s = retry;
	snprintf(call->message, sizeof call->message, "%s", msg ? msg : "");
	wsync_clean_message(call->message, sizeof call->message);
	free(call->provider_id);
	call->provider_id = id ? strdup(id) : NULL;
	return 0;
}

/* The conversation of one call on channel fd.  1 done, 0 the child died or
 * broke the protocol, -2 it held the call past its budget. */
static int converse(int fd, wsync_call *call, int which, const wsync_request *req,
                    int budget_ms)
{
	wsync_wire w = {0};
	uint32_t type;
	int rc = 0;
	put_call(&w, which, req);
	if (wsync_wire_send(fd, WSYNC_WIRE_CALL, &w) < 0)
		goto out;
	for (;;) {
		long long t0 = mono_ms();
		int r = wsync_wire_recv(fd, budget_ms, &type, &w);
		/* Spent: the next wait only takes what is there already (a
		 * negative timeout would mean no limit). */
		budget_ms -= (int)(mono_ms() - t0);
		if (budget_ms < 0)
			budget_ms = 0;
		if (r == -2) {
			rc = -2;
			break;
		}
		if (r != 1)
			break;
		if (type == WSYNC_WIRE_DONE) {
			rc = take_done(call, &w) == 0;
			break;
		}
		/* Time on the provider's side is not the plugin's. */
		if (type != WSYNC_WIRE_HTTP || serve_http(fd, call, &w) < 0)
			break;
	}
out:
	wsync_wire_free(&w);
	return rc;
}

int32_t wsync_child_call(wsync_child *c, wsync_call *call, int which,
                         const wsync_request *req)
{
	const wsync_provider_config *cfg = c->inst->cfg;
	const char *op = wsync_invoke_op_name(which), *entry = req->queue_id ? req->queue_id : "?";
	int ch = 0, r, hung = 0;
	proc *p = acquire(c, call, &ch);

	if (!p)
		return call->status;
	r = converse(p->fd[ch], call, which, req, cfg->call_timeout_s * 1000);
	if (r == 1) {
		release(c, p, ch, 1);
		return call->status;
	}
	pthread_mutex_lock(&c->mu);
	if (!p->dead) { /* the first to notice ends it, once */
		char why[160];
		snprintf(why, sizeof why, "was killed: a call did not answer within %d s",
		         cfg->call_timeout_s);
		end_proc(p, r == -2 ? why : NULL);
		record_death(c, p);
		hung = r == -2;
	}
	if (hung)
		snprintf(call->message, sizeof call->message, "plugin %s (provider %s) did not "
		         "answer within %d s in %s of entry %s; its process was killed",
		         plugin_name(c), c->inst->name, cfg->call_timeout_s, op, entry);
	else
		snprintf(call->message, sizeof call->message, "plugin %s (provider %s) %s, during "
		         "%s of entry %s", plugin_name(c), c->inst->name, p->death, op, entry);
	call->retry_after_s = 0;
	call->plugin_died = 1;
	free(call->provider_id);
	call->provider_id = NULL;
	pthread_mutex_unlock(&c->mu);
	release(c, p, ch, 0);
	return call->status = WSYNC_E_UNEXPECTED;
}
