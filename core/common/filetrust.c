/*
 * filetrust.c -- owner and mode policy of the files wsyncd trusts
 * (filetrust.h says which and why).
 */
#include "filetrust.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int insecure;

void wsync_trust_set_insecure(int on)
{
	insecure = on;
}

int wsync_trust_insecure(void)
{
	return insecure;
}

/* "nobody" for a known uid, else "no such user". */
static const char *user_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);
	return pw ? pw->pw_name : "no such user";
}

int wsync_trust_stat(const char *path, const struct stat *st, wsync_trust_kind kind,
                     char *err, size_t errlen)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);
	uid_t me = geteuid();

	if (!insecure && st->st_uid != 0 && st->st_uid != me) {
		snprintf(err, errlen, "%s: owned by uid %u (%s), neither root nor wsyncd's "
		         "user (uid %u): refused, anyone who owns it can change what wsyncd "
		         "runs; run chown %u %s (or start with --insecure-files, development "
		         "only)", path, (unsigned)st->st_uid, user_name(st->st_uid),
		         (unsigned)me, (unsigned)me, path);
		return -1;
	}
	/* Kept with --insecure-files: a readable secret is a leak, not a
	 * development convenience. */
	if (kind == WSYNC_TRUST_SECRET && (st->st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, errlen, "secret file %s is readable by group or others "
		         "(mode %03o); run chmod 600 %s", path, mode, path);
		return -1;
	}
	if (!insecure && (st->st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen, "%s: writable by group or others (mode %03o): refused%s; "
		         "run chmod go-w %s", path, mode,
		         (st->st_mode & S_ISVTX) ? " (the sticky bit does not stop new files)" : "",
		         path);
		return -1;
	}
	return 0;
}

int wsync_trust_path(const char *path, wsync_trust_kind kind, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (kind == WSYNC_TRUST_DIR && !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", path);
		return -1;
	}
	return wsync_trust_stat(path, &st, kind, err, errlen);
}
