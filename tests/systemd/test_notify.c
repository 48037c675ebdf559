/*
 * test_notify.c -- wsyncd speaks the sd_notify(3) protocol the way
 * wsyncd.service (Type=notify, WatchdogSec) relies on, and logs with
 * journald priorities when its stderr is the journal:
 *
 *   - with the database missing it says STATUS=waiting for the database
 *     and never READY=1;
 *   - once the database exists, READY=1 arrives, and by then the provider
 *     of the configured plugin is registered in it (connected and loaded);
 *   - WATCHDOG=1 pings arrive when WATCHDOG_USEC is set;
 *   - SIGHUP: RELOADING=1 then READY=1 again; SIGTERM: STOPPING=1, exit 0;
 *   - with JOURNAL_STREAM naming its stderr, lines start with "<6>" (info)
 *     or "<3>" (error) instead of a time stamp.
 *
 *   tests/pg_harness.sh test_notify WSYNCD EXAMPLE_SO
 *
 * The socket is a unix datagram socket this test binds, as systemd does.
 * Waits are polls with generous timeouts; nothing asserts a duration.
 * Exit 77 (skipped) when wsyncd was built without libsystemd.
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sock = -1;
static char received[1 << 16]; /* every datagram so far, one per line */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Receive datagrams until one contains `want` (returns 1) or timeout. */
static int await(const char *want, int timeout_ms)
{
	long long until = now_ms() + timeout_ms;
	size_t from = strlen(received);
	for (;;) {
		char buf[4096];
		struct pollfd p = {sock, POLLIN, 0};
		long long left = until - now_ms();
		ssize_t n;
		if (strstr(received + from, want))
			return 1;
		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			continue;
		n = recv(sock, buf, sizeof buf - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strlen(received) + (size_t)n + 2 < sizeof received) {
			strcat(received, buf);
			strcat(received, "\n");
		}
	}
}

static pid_t spawn(const char *wsyncd, const char *ini, const char *log, const char *notify)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
		struct stat st;
		char stream[64];
		char *argv[] = {(char *)wsyncd, "-c", (char *)ini, NULL};
		if (fd < 0 || fstat(fd, &st) < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		/* What systemd sets for StandardError=journal: stderr's dev:inode. */
		snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
		         (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", stream, 1);
		setenv("NOTIFY_SOCKET", notify, 1);
		setenv("WATCHDOG_USEC", "400000", 1); /* a ping every 200 ms */
		unsetenv("WATCHDOG_PID");
		unsetenv("WSYNC_DATABASE_URL");
		unsetenv("WORKOUT_SYNC_INTERVAL_MINUTES");
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
	long long until = now_ms() + timeout_ms;
	int status;
	while (now_ms() < until) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* The loader refuses symlinks: a real copy, mode 0644. */
static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;
	int rc = in < 0 || out < 0 ? -1 : 0;
	while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			rc = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

int main(int argc, char **argv)
{
	const char *conninfo = getenv("WSYNC_TEST_CONNINFO");
	char *tmp, path[600], ini[600], log[600], plugins[600], confd[600], text[4096];
	struct sockaddr_un addr;
	PGconn *admin, *db;
	pid_t pid;
	char *logtext;

	if (argc < 3 || !conninfo) {
		fprintf(stderr, "usage: pg_harness.sh %s WSYNCD EXAMPLE_SO\n", argv[0]);
		return 2;
	}
#ifndef WSYNC_HAVE_NOTIFY
	printf("wsyncd built with -Dsystemd=disabled: sd_notify is a no-op, skipped\n");
	return 77;
#endif
	signal(SIGPIPE, SIG_IGN);
	/* Under the harness's directory, which it removes however we end. */
	if (getenv("WSYNC_TEST_TMP")) {
		snprintf(path, sizeof path, "%s/notify", getenv("WSYNC_TEST_TMP"));
		mkdir(path, 0755);
		tmp = strdup(path);
	} else {
		tmp = t_tempdir();
	}

	/* The notify socket, as systemd makes it for a Type=notify service. */
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&addr, 0, sizeof addr);
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof addr.sun_path, "%s/notify", tmp);
	if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
		perror("notify socket");
		return 1;
	}

	/* One provider instance of the example plugin, in a private dir. */
	snprintf(plugins, sizeof plugins, "%s/plugins", tmp);
	snprintf(confd, sizeof confd, "%s/conf.d", tmp);
	mkdir(plugins, 0755);
	mkdir(confd, 0755);
	snprintf(path, sizeof path, "%s/example.so", plugins);
	if (copy_file(argv[2], path) < 0) {
		perror(argv[2]);
		return 1;
	}
	snprintf(path, sizeof path, "%s/notifyex.ini", confd);
	t_write_file(path, "[provider]\nplugin = example\n", 0644);
	/* A database that does not exist yet: wsyncd must wait for it. */
	snprintf(ini, sizeof ini, "%s/wsyncd.ini", tmp);
	snprintf(log, sizeof log, "%s/wsyncd.log", tmp);
	snprintf(text, sizeof text,
	         "[database]\nconninfo = %s dbname=wsync_notify\n[engine]\nworkers = 1\n"
	         "interval_minutes = 10\n[plugins]\ndir = %s\nconf_dir = %s\n[log]\nlevel = info\n",
	         conninfo, plugins, confd);
	t_write_file(ini, text, 0644);

	pid = spawn(argv[1], ini, log, addr.sun_path);
	T_CHECK(await("STATUS=waiting for the database", 60000));
	T_CHECK(strstr(received, "READY=1") == NULL);

	/* Now the database appears, migrated at once: it is copied from a
	 * template migrated beforehand, so wsyncd never sees it half-made. */
	admin = t_db();
	t_exec(admin, "CREATE DATABASE wsync_notify_tmpl", 0, NULL);
	snprintf(text, sizeof text, "%s dbname=wsync_notify_tmpl", conninfo);
	db = PQconnectdb(text);
	T_CHECK(PQstatus(db) == CONNECTION_OK);
	t_migrate(db);
	PQfinish(db);
	t_exec(admin, "CREATE DATABASE wsync_notify TEMPLATE wsync_notify_tmpl", 0, NULL);
	snprintf(text, sizeof text, "%s dbname=wsync_notify", conninfo);
	db = PQconnectdb(text);
	T_CHECK(PQstatus(db) == CONNECTION_OK);

	T_CHECK(await("READY=1", 60000));
	/* READY came after the registration of the loaded plugin's provider. */
	T_EQ_INT(t_query_int(db, "SELECT count(*) FROM sync_providers WHERE name = 'notifyex'"
	                     " AND plugin = 'example'", 0, NULL), 1);
	T_CHECK(strstr(received, "STATUS=ready: 1 of 1 provider instances loaded, 1 calls in flight at most") !=
	        NULL);
	T_CHECK(await("WATCHDOG=1", 30000));
	T_CHECK(await("WATCHDOG=1", 30000)); /* and again: the loop keeps pinging */

	kill(pid, SIGHUP);
	T_CHECK(await("RELOADING=1", 30000));
	T_CHECK(await("READY=1", 30000));

	kill(pid, SIGTERM);
	T_CHECK(await("STOPPING=1", 30000));
	T_EQ_INT(wait_exit(pid, 60000), 0);

	/* Journald priorities instead of time stamps. */
	logtext = t_read_file(log);
	T_CONTAINS(logtext, "<6>INFO    wsyncd ");
	T_CONTAINS(logtext, "<3>ERROR   wsyncd: cannot connect to the database");
	T_CHECK(strstr(logtext, "Z INFO") == NULL);
	if (t_failures)
		fprintf(stderr, "---- datagrams ----\n%s---- %s ----\n%s\n", received, log, logtext);
	free(logtext);

	PQfinish(db);
	t_exec(admin, "DROP DATABASE IF EXISTS wsync_notify WITH (FORCE)", 0, NULL);
	t_exec(admin, "DROP DATABASE IF EXISTS wsync_notify_tmpl", 0, NULL);
	PQfinish(admin);
	close(sock);
	free(tmp);
	return t_done();
}
