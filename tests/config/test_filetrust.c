/* The owner and mode policy of trusted files (common/filetrust.h), through
 * the real readers: wsyncd.ini, conf.d and its files, secrets, plugins. */
#include "testlib.h"

#include "common/config.h"
#include "common/filetrust.h"

#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;
static char main_ini[600], conf[600], inst[600], secret[600];
static uid_t nobody;

static wsync_config *load(void)
{
	return wsync_config_load(main_ini);
}

/* A good tree: everything root-owned, 0755 / 0644 / 0600. */
static void reset(void)
{
	char text[1200];
	mkdir(conf, 0755);
	T_EQ_INT(chown(conf, 0, 0), 0);
	T_EQ_INT(chmod(conf, 0755), 0);
	snprintf(text, sizeof text, "[database]\nconninfo = dbname=x\n[plugins]\nconf_dir = conf.d\n");
	t_write_file(main_ini, text, 0644);
	T_EQ_INT(chown(main_ini, 0, 0), 0);
	T_EQ_INT(chmod(main_ini, 0644), 0);
	t_write_file(secret, "s3cr3t\n", 0600);
	T_EQ_INT(chown(secret, 0, 0), 0);
	T_EQ_INT(chmod(secret, 0600), 0);
	snprintf(text, sizeof text, "[provider]\nplugin = wahoo\n[oauth]\n"
	         "token_url = https://x/t\nclient_id = i\nclient_secret_file = %s\n", secret);
	t_write_file(inst, text, 0644);
	T_EQ_INT(chown(inst, 0, 0), 0);
	T_EQ_INT(chmod(inst, 0644), 0);
}

static void expect_refusal(const char *what, const char *needle)
{
	wsync_config *c = load();
	if (!strstr(wsync_config_errors(c), needle))
		t_fail(__FILE__, __LINE__, "%s: errors '%s' lack '%s'", what,
		       wsync_config_errors(c), needle);
	wsync_config_free(c);
}

int main(void)
{
	struct passwd *pw = getpwnam("nobody");
	char want[1200], link[600];
	wsync_config *c;

	T_CHECK(geteuid() == 0);   /* the suite runs as root */
	T_CHECK(pw != NULL);
	if (!pw || geteuid() != 0)
		return t_done();
	nobody = pw->pw_uid;
	dir = t_tempdir();
	T_EQ_INT(chmod(dir, 0755), 0);
	snprintf(main_ini, sizeof main_ini, "%s/wsyncd.ini", dir);
	snprintf(conf, sizeof conf, "%s/conf.d", dir);
	snprintf(inst, sizeof inst, "%s/conf.d/wahoo.ini", dir);
	snprintf(secret, sizeof secret, "%s/secret", dir);

	reset();
	c = load();
	T_EQ_STR(wsync_config_errors(c), "");
	T_EQ_STR(c->providers[0].client_secret, "s3cr3t");
	wsync_config_free(c);

	/* Owned by someone else: each file names itself, the owner and the fix. */
	T_EQ_INT(chown(main_ini, nobody, 0), 0);
	snprintf(want, sizeof want, "%s: owned by uid %u (nobody), neither root nor wsyncd's "
	         "user (uid 0): refused", main_ini, (unsigned)nobody);
	expect_refusal("wsyncd.ini owned by nobody", want);
	expect_refusal("wsyncd.ini owned by nobody", "run chown 0 ");
	reset();
	T_EQ_INT(chown(conf, nobody, 0), 0);
	expect_refusal("conf.d owned by nobody", "[plugins] conf_dir: ");
	expect_refusal("conf.d owned by nobody", "conf.d: owned by uid");
	reset();
	T_EQ_INT(chown(inst, nobody, 0), 0);
	expect_refusal("instance owned by nobody", "conf.d/wahoo.ini: owned by uid");
	reset();
	T_EQ_INT(chown(secret, nobody, 0), 0);
	expect_refusal("secret owned by nobody", "secret: owned by uid");

	/* Writable by group or others, sticky or not. */
	reset();
	T_EQ_INT(chmod(main_ini, 0664), 0);
	expect_refusal("wsyncd.ini 664", "wsyncd.ini: writable by group or others (mode 664): "
	               "refused; run chmod go-w ");
	reset();
	T_EQ_INT(chmod(inst, 0646), 0);
	expect_refusal("instance 646", "wahoo.ini: writable by group or others (mode 646)");
	reset();
	T_EQ_INT(chmod(conf, 01777), 0);
	expect_refusal("conf.d 1777", "conf.d: writable by group or others (mode 1777): refused "
	               "(the sticky bit does not stop new files)");
	reset();
	T_EQ_INT(chmod(secret, 0640), 0);
	expect_refusal("secret 640", "secret file ");
	expect_refusal("secret 640", "is readable by group or others (mode 640); run chmod 600");

	/* A symlink is judged by its target. */
	reset();
	snprintf(link, sizeof link, "%s/link.ini", dir);
	T_EQ_INT(symlink(main_ini, link), 0);
	c = wsync_config_load(link);
	T_EQ_STR(wsync_config_errors(c), "");
	wsync_config_free(c);
	T_EQ_INT(chown(main_ini, nobody, 0), 0);
	c = wsync_config_load(link);
	T_CONTAINS(wsync_config_errors(c), "link.ini: owned by uid");
	wsync_config_free(c);

	/* --insecure-files: owner and write checks off, secret mode kept. */
	reset();
	T_EQ_INT(chown(main_ini, nobody, 0), 0);
	T_EQ_INT(chmod(inst, 0666), 0);
	T_EQ_INT(chmod(conf, 0777), 0);
	wsync_trust_set_insecure(1);
	c = load();
	T_EQ_STR(wsync_config_errors(c), "");
	wsync_config_free(c);
	T_EQ_INT(chmod(secret, 0644), 0);
	expect_refusal("secret 644 with --insecure-files", "readable by group or others");
	wsync_trust_set_insecure(0);
	reset();
	unlink(link);
	return t_done();
}
