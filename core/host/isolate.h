/*
 * isolate.h -- a provider instance's plugin in a child process of its own.
 *
 * wsyncd keeps the database, the claims, the outcomes, the tokens and their
 * refresh, and the rate limiter.  The child (`wsyncd --plugin-host`, a
 * fresh exec of the same binary: nothing of the parent's memory survives)
 * loads the one plugin, runs its init() and operations, and asks the parent
 * for every HTTP request over its channel (wire.h); the parent makes the
 * request with the call's token, limiter and classification, exactly as for
 * a plugin in-process.  So the child never holds the conninfo, a database
 * descriptor, another user's token or the OAuth client secret: it gets the
 * instance's configuration without [oauth] client_secret_file's content,
 * and per call the entities and the access token of that call.
 *
 * wsyncd never dlopens a plugin itself: a short-lived child of the same
 * kind ("probe", one per file, all started before any is waited for) loads
 * the file, runs the loader's checks and describes it (wsync_plugin_probe),
 * so no constructor or entry function of a plugin runs where the conninfo
 * is.
 *
 * One child per instance, with one channel per call thread, so calls run
 * concurrently as they did in-process (a WSYNC_PLUGIN_SERIAL plugin still
 * gets one call at a time: the child takes the instance's lock).
 *
 * Failure:
 *   crash   the child died (a signal, an exit, a broken frame): every call
 *           that was inside it ends unexpected_error naming the plugin, the
 *           provider, the operation, the entry and the signal; the child is
 *           started again on the next call, after a back-off (1, 2, 4 ...
 *           30 s) during which the instance's calls are deferred (no
 *           attempt used).  Other instances never notice.
 *   hang    a call that holds the plugin longer than call_timeout_seconds
 *           (time spent on the parent's HTTP requests does not count) gets
 *           the child killed: "plugin did not answer within N s"; the
 *           other calls inside it end as after a crash.
 *   quarantine  quarantine_after_crashes crashes or hangs within
 *           quarantine_window_seconds: no new child.  The instance's
 *           entries are not claimed (they stay pending, not failed) until
 *           a reload (SIGHUP) or `wsyncctl plugins --release NAME`.
 *
 * Least privilege, applied by the child before it loads the plugin:
 * PR_SET_NO_NEW_PRIVS, the parent-death signal (SIGKILL), no inherited
 * descriptor but its channels and stdin (/dev/null), stdout and stderr
 * (the log), an environment of LD_LIBRARY_PATH, TZ, JOURNAL_STREAM and the
 * sanitizers' options only, RLIMIT_NOFILE, RLIMIT_AS ([plugins]
 * memory_limit_mb), RLIMIT_CORE 0, a CPU-time limit raised per call, and,
 * when wsyncd runs as root, the [plugins] user's uid and gid (no
 * supplementary groups).
 */
#ifndef WSYNC_HOST_ISOLATE_H
#define WSYNC_HOST_ISOLATE_H

#include "host.h"

#include <sys/types.h>

typedef struct wsync_child wsync_child;

/* What every child of a registry shares (from the [plugins] section). */
typedef struct wsync_isolation {
	int channels;          /* concurrent calls: wsyncd's call threads */
	uid_t uid;             /* drop to these when running as root */
	gid_t gid;
	int drop;              /* 1: uid/gid apply */
	long memory_limit_mb;  /* RLIMIT_AS of the child; 0: none */
	void (*changed)(void *arg); /* a child was quarantined (the engine
	                               records it and stops claiming) */
	void *changed_arg;
} wsync_isolation;

/*
 * Load cfg's instances as wsyncd runs them: with [plugins] isolate, each
 * loaded instance in its child (as [plugins] user when running as root;
 * an unknown user refuses every instance), else in this process.
 * iso->memory_limit_mb, uid, gid and drop are filled from cfg.  Never NULL
 * unless out of memory; free with wsync_registry_free (stops the children).
 */
wsync_registry *wsync_isolate_load(const wsync_config *cfg, wsync_isolation *iso);

/*
 * Give every loaded instance of `reg` (loaded with validate_only) its child
 * and wait for it to load the plugin and run init().  The children load
 * side by side: the wait is the slowest child's, not the sum.  An instance
 * whose child refuses (init() failed, the file cannot be loaded as the
 * plugin user) becomes refused with the child's reason, as in-process.
 * Returns the number of instances that run.
 */
size_t wsync_isolate_registry(wsync_registry *reg, const wsync_isolation *iso);

/* Stop the child: it runs destroy() and exits (SIGKILL after 5 s). */
void wsync_child_free(wsync_child *c);

/*
 * One operation in the child: sends `req`, serves its HTTP requests with
 * `call` (the parent's context: token, limiter, pool), and takes the
 * outcome (status, message, retry-after, provider id) onto `call`.
 * While the child restarts or is quarantined the call is deferred:
 * WSYNC_E_RATE_LIMIT (no retry used) with retry_after_s and a message
 * saying why.
 */
int32_t wsync_child_call(wsync_child *c, wsync_call *call, int which,
                         const wsync_request *req);

/* Quarantined: 1 and the reason in why; 0 when calls may go. */
int wsync_child_quarantined(wsync_child *c, char *why, size_t len);
/* Once per quarantine: 1 and the reason, for the engine to record it. */
int wsync_child_quarantine_news(wsync_child *c, char *why, size_t len);
/* Lift the quarantine: the next call starts a child. */
void wsync_child_release(wsync_child *c);

/* The child's main (wsyncd --plugin-host): never returns to wsyncd's. */
int wsync_plugin_host_main(void);

#endif
