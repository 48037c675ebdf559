/*
 * test_testhost_crash.c -- a plugin that crashes or hangs inside a call of
 * the test host: the test program dies of the fault's own signal (or of
 * SIGABRT for a hang) after ONE line on stderr that names the plugin, the
 * instance, the operation and the signal.  Each case runs in a child (this
 * program again, `... child NAME ARG`) whose stderr is read back through a
 * pipe; the child runs with the sanitizers' signal handlers off, as a
 * plain build would (with them, the sanitizer's report follows the line and
 * the child exits 1: the "chain" case checks that an earlier handler still
 * runs).  Crashes outside a plugin call reach the program's own handler
 * unannounced, and the handlers are put back when the last test host is
 * freed.
 *
 * usage: test_testhost_crash MISBEHAVE_SO
 */
#include "sdk_test.h"

#include <signal.h>
#include <sys/wait.h>

#define WHO "wsync-testhost: plugin misbehave (instance misbehave)"

static const char *so;
static const char *self;

static wsync_testhost *load(const char *where, const char *how)
{
	char ini[256], err[1024] = "";
	wsync_testhost *th;
	snprintf(ini, sizeof ini, "[misbehave]\nwhere = %s\nhow = %s\n", where, how);
	th = wsync_testhost_load(so, ini, err, sizeof err);
	if (!th) {
		fprintf(stderr, "child: load failed: %s\n", err);
		_exit(3);
	}
	return th;
}

static void call(wsync_testhost *th, int32_t op)
{
	char err[256];
	const wsync_workout_entity *w = wsync_testhost_workout(th,
		&(wsync_workout_entity){.name = "w", .workout_text = "- 10m 70%\n"}, err, sizeof err);
	const wsync_scheduled_entity *s = wsync_testhost_scheduled(th,
		&(wsync_scheduled_entity){.scheduled_date = "2024-05-01"}, w, err, sizeof err);
	wsync_testhost_call(th, op, &(wsync_testhost_request){
		.workout = w, .scheduled = s, .workout_provider_id = "p-w",
		.scheduled_provider_id = "p-s"});
}

/* Run child `name` with `arg` (this program again) with stderr on a pipe;
 * returns the wait status and the child's stderr (malloc'ed, in *out). */
static int in_child(const char *name, const char *arg, char **out)
{
	int fds[2], status = 0;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;
	pid_t pid;

	fflush(NULL);
	if (pipe(fds) < 0 || (pid = fork()) < 0) {
		perror("pipe/fork");
		exit(1);
	}
	if (pid == 0) {
		const char *asan = getenv("ASAN_OPTIONS");
		char opts[1024];
		snprintf(opts, sizeof opts, "%s%shandle_segv=0:handle_sigbus=0:handle_sigfpe=0:"
		         "handle_sigill=0:handle_abort=0:detect_leaks=0", asan ? asan : "",
		         asan && *asan ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		close(fds[1]);
		execl(self, self, so, "child", name, arg, (char *)NULL);
		perror(self);
		_exit(4);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf + len, cap - len - 1)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
		if (cap - len < 1024)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*out = buf;
	return status;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The child died of `sig` and said `line` once, its only testhost line. */
static void expect_death(const char *what, int status, const char *out, int sig,
                         const char *line)
{
	int failures = sdk_failures;
	printf("  %s\n", what);
	CHECK(WIFSIGNALED(status));
	if (WIFSIGNALED(status))
		CHECK_INT(WTERMSIG(status), sig);
	else
		fprintf(stderr, "  child exited with %d\n", WEXITSTATUS(status));
	CHECK_HAS(out, line);
	CHECK_INT(count(out, "wsync-testhost:"), 1);
	if (sdk_failures > failures)
		fprintf(stderr, "---- child's stderr ----\n%s------------------------\n", out);
}

/* ---- the children ---------------------------------------------------------- */

static const struct { const char *where, *how; int32_t op; } cases[] = {
	{"sync_workout", "null_write", WSYNC_TESTHOST_SYNC_WORKOUT},
	{"sync_scheduled_workout", "fpe", WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT},
	{"delete_workout", "overflow", WSYNC_TESTHOST_DELETE_WORKOUT},
	{"delete_scheduled_workout", "bus", WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT},
	{"init", "abort", -1},
	{"destroy", "trap", -1},
};

static void child_case(const char *arg)
{
	int i = atoi(arg);
	wsync_testhost *th;
	if (!strcmp(cases[i].how, "overflow")) {
		/* A thread without an alternate stack (the sanitizers give the
		 * main thread one): the test host must bring its own. */
		stack_t off = {.ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
	}
	th = load(cases[i].where, cases[i].how);
	if (cases[i].op >= 0)
		call(th, cases[i].op);
	wsync_testhost_free(th);
}

static void child_hang(const char *where)
{
	wsync_testhost *th;
	if (!strcmp(where, "init"))
		setenv("WSYNC_TESTHOST_CALL_TIMEOUT", "1", 1);
	th = load(where, "loop");
	wsync_testhost_set_call_timeout(th, 1);
	call(th, WSYNC_TESTHOST_SYNC_WORKOUT);
	wsync_testhost_free(th);
}

/* Two hosts; the first freed before the second crashes: still reported. */
static void child_two_hosts(const char *unused)
{
	wsync_testhost *a = load("nowhere", "null_write");
	wsync_testhost *b = load("sync_workout", "null_write");
	(void)unused;
	call(a, WSYNC_TESTHOST_SYNC_WORKOUT);
	wsync_testhost_free(a);
	call(b, WSYNC_TESTHOST_SYNC_WORKOUT);
	wsync_testhost_free(b);
}

static void own_handler(int sig)
{
	static const char msg[] = "child: own handler\n";
	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
	}
	_exit(77);
}

/* A fault of the program itself while a test host lives: the program's own
 * handler gets it, and no plugin is blamed. */
static void child_outside(const char *how)
{
	struct sigaction sa;
	wsync_testhost *th;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = own_handler;
	sigemptyset(&sa.sa_mask);
	if (!strcmp(how, "own"))
		sigaction(SIGSEGV, &sa, NULL);
	else
		signal(SIGSEGV, SIG_DFL);
	th = load("nowhere", "null_write");
	call(th, WSYNC_TESTHOST_SYNC_WORKOUT);
	raise(SIGSEGV);
	wsync_testhost_free(th);
}

/* A plugin crash with a handler of the program's own (a fuzzer's, a
 * sanitizer's): the line, then that handler. */
static void child_chain(const char *unused)
{
	struct sigaction sa;
	wsync_testhost *th;
	(void)unused;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = own_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	th = load("sync_workout", "null_write");
	call(th, WSYNC_TESTHOST_SYNC_WORKOUT);
	wsync_testhost_free(th);
}

static const struct {
	const char *name;
	void (*fn)(const char *);
} children[] = {
	{"case", child_case}, {"hang", child_hang}, {"two_hosts", child_two_hosts},
	{"outside", child_outside}, {"chain", child_chain},
};

static int run_child(const char *name, const char *arg)
{
	for (size_t i = 0; i < sizeof children / sizeof children[0]; i++)
		if (!strcmp(children[i].name, name)) {
			children[i].fn(arg);
			fprintf(stderr, "child: returned\n");
			return 0;
		}
	fprintf(stderr, "child: no child %s\n", name);
	return 2;
}

/* ---- the checks ---------------------------------------------------------------- */

static void crashes(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		static const int sigs[] = {SIGSEGV, SIGFPE, SIGSEGV, SIGBUS, SIGABRT, SIGILL};
		static const char *const names[] = {"SIGSEGV", "SIGFPE", "SIGSEGV", "SIGBUS",
		                                    "SIGABRT", "SIGILL"};
		char arg[8], what[128], line[256];
		char *out;
		int st;
		snprintf(arg, sizeof arg, "%zu", i);
		snprintf(what, sizeof what, "%s in %s", cases[i].how, cases[i].where);
		snprintf(line, sizeof line, WHO " crashed with signal %d (%s) in %s\n", sigs[i],
		         names[i], cases[i].where);
		st = in_child("case", arg, &out);
		expect_death(what, st, out, sigs[i], line);
		free(out);
	}
}

static void hangs(void)
{
	char *out;
	int st = in_child("hang", "sync_workout", &out);
	expect_death("endless loop in sync_workout, limit 1 s", st, out, SIGABRT,
	             WHO " did not return within 1 s in sync_workout\n");
	free(out);
	st = in_child("hang", "init", &out);
	expect_death("endless loop in init, WSYNC_TESTHOST_CALL_TIMEOUT=1", st, out, SIGABRT,
	             WHO " did not return within 1 s in init\n");
	free(out);
}

static void two_hosts(void)
{
	char *out;
	int st = in_child("two_hosts", "", &out);
	expect_death("two hosts, the first freed, the second crashes", st, out, SIGSEGV,
	             WHO " crashed with signal 11 (SIGSEGV) in sync_workout\n");
	free(out);
}

static void outside(void)
{
	char *out;
	int st = in_child("outside", "own", &out);
	printf("  a fault outside the plugin goes to the program's handler\n");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 77);
	CHECK_HAS(out, "child: own handler");
	CHECK_INT(count(out, "wsync-testhost:"), 0);
	free(out);
	st = in_child("outside", "default", &out);
	printf("  ... or to the default action\n");
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	CHECK_INT(count(out, "wsync-testhost:"), 0);
	free(out);
	st = in_child("chain", "", &out);
	printf("  a plugin crash: the line, then the program's own handler\n");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 77);
	CHECK_HAS(out, WHO " crashed with signal 11 (SIGSEGV) in sync_workout\n"
	          "child: own handler\n");
	CHECK_INT(count(out, "wsync-testhost:"), 1);
	free(out);
}

/* In this process: the handlers before the first host are back after the
 * last one is freed. */
static void restored(void)
{
	struct sigaction mine, before, after;
	wsync_testhost *a, *b;
	char err[512];
	printf("  handlers restored after the last free\n");
	memset(&mine, 0, sizeof mine);
	mine.sa_handler = own_handler;
	sigemptyset(&mine.sa_mask);
	sigaction(SIGBUS, &mine, &before);
	a = wsync_testhost_load(so, NULL, err, sizeof err);
	b = wsync_testhost_load(so, NULL, err, sizeof err);
	CHECK(a && b);
	sigaction(SIGBUS, NULL, &after);
	CHECK(after.sa_handler != own_handler); /* the test host's, now */
	wsync_testhost_free(a);
	sigaction(SIGBUS, NULL, &after);
	CHECK(after.sa_handler != own_handler); /* b still lives */
	wsync_testhost_free(b);
	sigaction(SIGBUS, NULL, &after);
	CHECK(after.sa_handler == own_handler);
	sigaction(SIGBUS, &before, NULL);
}

static void bad_timeout_env(void)
{
	char err[512] = "";
	wsync_testhost *th;
	printf("  a bad WSYNC_TESTHOST_CALL_TIMEOUT is refused\n");
	setenv("WSYNC_TESTHOST_CALL_TIMEOUT", "30s", 1);
	th = wsync_testhost_load(so, NULL, err, sizeof err);
	CHECK(th == NULL);
	CHECK_HAS(err, "WSYNC_TESTHOST_CALL_TIMEOUT=30s: expected a whole number of seconds");
	wsync_testhost_free(th);
	unsetenv("WSYNC_TESTHOST_CALL_TIMEOUT");
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[2], "child")) {
		so = argv[1];
		return run_child(argv[3], argv[4]);
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s MISBEHAVE_SO\n", argv[0]);
		return 2;
	}
	self = "/proc/self/exe";
	so = sdk_stage_plugin(argv[1], "misbehave");
	crashes();
	hangs();
	two_hosts();
	outside();
	restored();
	bad_timeout_env();
	return sdk_done();
}
