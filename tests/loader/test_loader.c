/* The plugin loader against fixture plugins built by the test suite: each
 * refusal names the file and the reason, and the others still load. */
#include "testlib.h"

#include "common/config.h"
#include "host/host.h"
#include "host/plugin_loader.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fixtures, *wsyncd;
static char *dir;

static void copy_plugin(const char *name, const char *as, unsigned mode)
{
	char *argv[5], src[512], dst[512];
	snprintf(src, sizeof src, "%s/%s.so", fixtures, name);
	snprintf(dst, sizeof dst, "%s/plugins/%s.so", dir, as);
	argv[0] = "/bin/cp";
	argv[1] = src;
	argv[2] = dst;
	argv[3] = NULL;
	T_EQ_INT(t_run(argv, NULL), 0);
	chmod(dst, (mode_t)mode);
}

static void instance(const char *name, const char *body)
{
	char path[512];
	snprintf(path, sizeof path, "%s/conf.d/%s.ini", dir, name);
	t_write_file(path, body, 0644);
}

static const char *refusal(wsync_registry *r, const char *name)
{
	for (size_t i = 0; i < wsync_registry_count(r); i++) {
		wsync_plugin_instance *in = wsync_registry_at(r, i);
		if (!strcmp(in->name, name))
			return in->loaded ? "LOADED" : in->refusal;
	}
	return "MISSING";
}

static void setup(void)
{
	char p[512];
	snprintf(p, sizeof p, "%s/plugins", dir);
	mkdir(p, 0755);
	chmod(p, 0755);
	snprintf(p, sizeof p, "%s/conf.d", dir);
	mkdir(p, 0755);
	copy_plugin("good", "good", 0755);
	copy_plugin("abi2", "abi2", 0755);
	copy_plugin("newer_minor", "newer_minor", 0755);
	copy_plugin("entry_v2", "entry_v2", 0755);
	copy_plugin("init_fails", "init_fails", 0755);
	copy_plugin("good", "writable", 0775);
	snprintf(p, sizeof p, "%s/plugins/notelf.so", dir);
	t_write_file(p, "this is not an ELF file\n", 0755);
	instance("good", "[provider]\nplugin = good\n[fixture]\ncolor = red\n");
	instance("good2", "[provider]\nplugin = good\nenabled = false\n");
	instance("abi2", "[provider]\nplugin = abi2\n");
	instance("newer", "[provider]\nplugin = newer_minor\n");
	instance("entry", "[provider]\nplugin = entry_v2\n");
	instance("initfail", "[provider]\nplugin = init_fails\n");
	instance("writable", "[provider]\nplugin = writable\n");
	instance("notelf", "[provider]\nplugin = notelf\n");
	instance("missing", "[provider]\nplugin = nosuch\n");
	instance("badkey", "[provider]\nplugin = good\n[fixture]\nflavour = x\n");
	instance("badint", "[provider]\nplugin = good\n[fixture]\ncount = ten\n");
	snprintf(p, sizeof p, "%s/wsyncd.ini", dir);
	t_write_file(p, "[database]\nconninfo = dbname=none\n[plugins]\ndir = plugins\n"
	             "conf_dir = conf.d\n", 0644);
}

static void load_all(void)
{
	char p[512];
	wsync_config *cfg;
	wsync_registry *r;
	snprintf(p, sizeof p, "%s/wsyncd.ini", dir);
	cfg = wsync_config_load(p);
	T_CHECK(wsync_config_ok(cfg));
	r = wsync_registry_load(cfg, wsync_host_services());
	T_EQ_STR(refusal(r, "good"), "LOADED");
	T_EQ_STR(refusal(r, "good2"), "LOADED"); /* one plugin, two instances */
	T_CHECK(wsync_registry_find(r, "good") != NULL);
	T_CHECK(wsync_registry_find(r, "good2") == NULL); /* disabled */
	{
		/* both versions named, and the SDK to use as pkg-config names it */
		char want[160];
		snprintf(want, sizeof want, "abi2.so: built for plugin ABI 2.%d, this wsyncd "
		         "speaks ABI 1.%d; rebuild it against wsync-plugin 1.%d",
		         WSYNC_PLUGIN_ABI_MINOR, WSYNC_PLUGIN_ABI_MINOR, WSYNC_PLUGIN_ABI_MINOR);
		T_CONTAINS(refusal(r, "abi2"), want);
	}
	{
		/* the host's ABI follows plugin.h, its single source */
		char want[128];
		snprintf(want, sizeof want, "newer_minor.so: built for plugin ABI 1.99, this wsyncd "
		         "speaks ABI %d.%d", WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR);
		T_CONTAINS(refusal(r, "newer"), want);
	}
	T_CONTAINS(refusal(r, "entry"), "entry_v2.so: exports wsync_plugin_v2 but not wsync_plugin_v1");
	T_CONTAINS(refusal(r, "initfail"), "init_fails.so: init() of plugin init_fails failed");
	T_CONTAINS(refusal(r, "writable"), "writable.so: writable by group or others (mode 775)");
	T_CONTAINS(refusal(r, "notelf"), "notelf.so: cannot load:");
	T_CONTAINS(refusal(r, "missing"), "nosuch.so: cannot open: No such file");
	T_CONTAINS(refusal(r, "badkey"), "badkey.ini:4: [fixture] flavour: unknown key");
	T_CONTAINS(refusal(r, "badint"), "badint.ini:4: [fixture] count 'ten': expected an integer");
	T_EQ_INT(wsync_registry_failures(r), 9);
	{
		wsync_plugin_instance *in = wsync_registry_find(r, "good");
		T_EQ_STR(wsync_host_services()->config_get_string(in, "fixture", "color"), "red");
		T_EQ_INT(wsync_host_services()->config_get_int(in, "fixture", "count", 0), 1);
	}
	wsync_registry_free(r);
	wsync_config_free(cfg);
}

static void check_command(void)
{
	char p[512], *out = NULL;
	char *argv[5];
	snprintf(p, sizeof p, "%s/wsyncd.ini", dir);
	argv[0] = (char *)wsyncd;
	argv[1] = "-c";
	argv[2] = p;
	argv[3] = "--check";
	argv[4] = NULL;
	/* Unknown plugin keys are configuration errors: exit 2. */
	T_EQ_INT(t_run(argv, &out), 2);
	T_CONTAINS(out, "good             ok");
	{
		char want[32];
		snprintf(want, sizeof want, "ABI %d.%d", WSYNC_PLUGIN_ABI_MAJOR,
		         WSYNC_PLUGIN_ABI_MINOR);
		T_CONTAINS(out, want);
	}
	T_CONTAINS(out, "built for plugin ABI 2");
	/* The probes and the children start side by side (isolate.c): each
	 * refusal still lands on its own instance, among instances that run,
	 * and a file two instances share is probed once for both. */
	T_CONTAINS(out, "init_fails.so: init() of plugin init_fails failed");
	T_CONTAINS(out, "notelf.so: cannot load:");
	T_CONTAINS(out, "writable.so: writable by group or others (mode 775)");
	T_CONTAINS(out, "good2            ok");
	free(out);

	/* Only load failures left: exit 1; all good: exit 0. */
	snprintf(p, sizeof p, "%s/conf.d/badkey.ini", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/conf.d/badint.ini", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/wsyncd.ini", dir);
	T_EQ_INT(t_run(argv, NULL), 1);
	{
		const char *keep[] = {"good", "good2"};
		const char *all[] = {"abi2", "newer", "entry", "initfail", "writable", "notelf", "missing"};
		(void)keep;
		for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
			char q[512];
			snprintf(q, sizeof q, "%s/conf.d/%s.ini", dir, all[i]);
			unlink(q);
		}
	}
	T_EQ_INT(t_run(argv, &out), 0);
	T_CONTAINS(out, "good2            ok");
	free(out);

	/* A broken INI line: exit 2 naming file and line. */
	snprintf(p, sizeof p, "%s/conf.d/good.ini", dir);
	t_write_file(p, "[provider]\nplugin = good\nthis line is broken\n", 0644);
	snprintf(p, sizeof p, "%s/wsyncd.ini", dir);
	T_EQ_INT(t_run(argv, &out), 2);
	T_CONTAINS(out, "good.ini:3: not an INI line");
	free(out);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: test_loader FIXTURE_DIR WSYNCD\n");
		return 2;
	}
	fixtures = argv[1];
	wsyncd = argv[2];
	dir = t_tempdir();
	setup();
	load_all();
	check_command();
	return t_done();
}
