/*
 * sdk_test.h -- checks for the SDK tests.  These programs link only
 * libwsync-testhost (as a plugin author's tests would), not the core, so
 * they carry their own few helpers instead of tests/testlib.
 */
#ifndef WSYNC_SDK_TEST_H
#define WSYNC_SDK_TEST_H

#include <wsync/testhost.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int sdk_checks, sdk_failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		sdk_checks++;                                                  \
		if (!(cond)) {                                                 \
			sdk_failures++;                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_INT(a, b)                                                        \
	do {                                                                   \
		long long a_ = (long long)(a), b_ = (long long)(b);            \
		sdk_checks++;                                                  \
		if (a_ != b_) {                                                \
			sdk_failures++;                                        \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n",  \
			        __FILE__, __LINE__, #a, a_, b_);               \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *a_ = (a), *b_ = (b);                               \
		sdk_checks++;                                                  \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                       \
			sdk_failures++;                                        \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
			        __FILE__, __LINE__, #a, a_ ? a_ : "(null)",    \
			        b_ ? b_ : "(null)");                           \
		}                                                              \
	} while (0)

#define CHECK_HAS(hay, needle)                                                 \
	do {                                                                   \
		const char *h_ = (hay), *n_ = (needle);                        \
		sdk_checks++;                                                  \
		if (!h_ || !strstr(h_, n_)) {                                  \
			sdk_failures++;                                        \
			fprintf(stderr, "%s:%d: %s == \"%s\" lacks \"%s\"\n",  \
			        __FILE__, __LINE__, #hay, h_ ? h_ : "(null)", n_); \
		}                                                              \
	} while (0)

static char *sdk_dir;
static char *sdk_staged[16];
static int sdk_n_staged;

/* Print the tally, remove the staged plugins, and give the exit code. */
static inline int sdk_done(void)
{
	for (int i = 0; i < sdk_n_staged; i++) {
		unlink(sdk_staged[i]);
		free(sdk_staged[i]);
	}
	if (sdk_dir)
		rmdir(sdk_dir);
	free(sdk_dir);
	printf("%d checks, %d failed\n", sdk_checks, sdk_failures);
	return sdk_failures ? 1 : 0;
}

/* Copy a plugin into a private directory as <as>.so, mode 0755, as an
 * operator drops it into the plugin directory (the build directory may be
 * group-writable under some umasks, and wsyncd refuses that).  Returns the
 * new path, owned here until sdk_done(). */
static inline const char *sdk_stage_plugin(const char *src, const char *as)
{
	char *dir = sdk_dir;
	char *dst;
	FILE *in, *out;
	char buf[65536];
	size_t n;

	if (!dir) {
		const char *tmp = getenv("TMPDIR");
		dir = malloc(512);
		snprintf(dir, 512, "%s/wsync-sdk-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(1);
		}
		chmod(dir, 0755);
		sdk_dir = dir;
	}
	dst = malloc(strlen(dir) + strlen(as) + 8);
	sprintf(dst, "%s/%s.so", dir, as);
	in = fopen(src, "rb");
	out = fopen(dst, "wb");
	if (!in || !out) {
		fprintf(stderr, "cannot copy %s to %s: %s\n", src, dst, strerror(errno));
		exit(1);
	}
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
	chmod(dst, 0755);
	if (sdk_n_staged < 16)
		sdk_staged[sdk_n_staged++] = dst;
	return dst;
}

#endif
