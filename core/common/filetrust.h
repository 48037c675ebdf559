/*
 * filetrust.h -- who may have written a file wsyncd trusts.
 *
 * Like sudo and PAM with their plugins: wsyncd.ini, the conf.d directory and
 * its files, the plugin directory and each plugin, and every *_file secret
 * must be owned by root or by the effective uid, and not writable by group
 * or others (a sticky 1777 directory counts as writable).  Secret files must
 * also be unreadable by group and others.  A symlink is judged by its target
 * (the callers stat what they open).  `--insecure-files` turns the owner and
 * write checks off for development; the secret readability check stays.
 */
#ifndef WSYNC_FILETRUST_H
#define WSYNC_FILETRUST_H

#include <stddef.h>
#include <sys/stat.h>

typedef enum wsync_trust_kind {
	WSYNC_TRUST_FILE,    /* configuration file or plugin */
	WSYNC_TRUST_DIR,     /* conf.d or the plugin directory */
	WSYNC_TRUST_SECRET,  /* a *_file secret */
} wsync_trust_kind;

/* Judge `st` (of the file at `path`, which only names it in the message).
 * 0 when trusted; -1 with "PATH: what was found ...; the fix" in err. */
int wsync_trust_stat(const char *path, const struct stat *st, wsync_trust_kind kind,
                     char *err, size_t errlen);
/* stat(path) (symlinks followed) then wsync_trust_stat; a DIR must be a
 * directory. */
int wsync_trust_path(const char *path, wsync_trust_kind kind, char *err, size_t errlen);

/* Process-wide: 1 skips the owner and write checks (--insecure-files). */
void wsync_trust_set_insecure(int on);
int wsync_trust_insecure(void);

#endif
