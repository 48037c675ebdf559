/*
 * plugin_loader.c -- find, validate and instantiate provider plugins.
 *
 * Validation follows a fixed order and reports only the first failure, with
 * the file and both sides' values: dlopen, entry symbol, magic, ABI major,
 * descriptor size, ABI minor, mandatory operations.  A refused plugin or
 * instance never stops the others.
 */
#include "plugin_loader.h"

#include "common/filetrust.h"
#include "common/log.h"
#include "isolate.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Smallest descriptor ABI 1.0 allows: up to the last mandatory operation. */
#define MIN_DESC_SIZE                                                          \
	(offsetof(wsync_plugin, delete_scheduled_workout) + sizeof(wsync_operation_fn))

_Thread_local const wsync_plugin_instance *wsync_current_instance;

/* One opened .so, shared by the instances that use it. */
typedef struct loaded_file {
	char *path;
	void *handle;
	void *probed;         /* the probe's copy of the descriptor's strings */
	wsync_plugin desc;    /* copy of struct_size bytes, zero-filled beyond */
	char *refusal;
} loaded_file;

struct wsync_registry {
	const wsync_config *cfg;
	const wsync_host *host;
	wsync_load_options opts;
	loaded_file **files;      /* separately allocated: instances point into them */
	size_t n_files;
	wsync_plugin_instance **instances;
	size_t n_instances;
};

/* A plugin runs as wsyncd: refuse one, or a directory, that someone else
 * could have written (common/filetrust.h). */
static int check_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char dir[PATH_MAX];
	char *slash;

	if (lstat(path, &st) < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file (symlinks, devices and "
		         "directories are refused)", path);
		return -1;
	}
	if (wsync_trust_stat(path, &st, WSYNC_TRUST_FILE, err, errlen) < 0)
		return -1;
	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	return wsync_trust_path(slash ? dir : ".", WSYNC_TRUST_DIR, err, errlen);
}

/* When wsync_plugin_v1 is missing, name any other generation found. */
static void missing_entry(void *h, const char *path, char *err, size_t errlen)
{
	char sym[32];
	for (int v = 9; v >= 0; v--) {
		if (v == WSYNC_PLUGIN_ABI_MAJOR)
			continue;
		snprintf(sym, sizeof sym, "wsync_plugin_v%d", v);
		if (dlsym(h, sym)) {
			snprintf(err, errlen, "%s: exports %s but not wsync_plugin_v%d: built "
			         "for plugin ABI %d, this wsyncd speaks ABI %d.%d; rebuild it "
			         "against wsync-plugin %d.%d", path, sym, WSYNC_PLUGIN_ABI_MAJOR,
			         v, WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR,
			         WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR);
			return;
		}
	}
	snprintf(err, errlen, "%s: no entry symbol wsync_plugin_v%d: not a wsync "
	         "plugin, or built without WSYNC_EXPORT", path, WSYNC_PLUGIN_ABI_MAJOR);
}

static int check_descriptor(const wsync_plugin *d, const char *path, char *err,
                            size_t errlen)
{
	if (!d) {
		snprintf(err, errlen, "%s: wsync_plugin_v1() returned NULL", path);
	} else if (d->magic != WSYNC_PLUGIN_MAGIC) {
		snprintf(err, errlen, "%s: bad magic 0x%08x (expected 0x%08x): not a "
		         "wsync plugin descriptor", path, d->magic, WSYNC_PLUGIN_MAGIC);
	} else if (d->abi_major != WSYNC_PLUGIN_ABI_MAJOR) {
		snprintf(err, errlen, "%s: built for plugin ABI %u.%u, this wsyncd speaks "
		         "ABI %d.%d; rebuild it against wsync-plugin %d.%d", path,
		         d->abi_major, d->abi_minor, WSYNC_PLUGIN_ABI_MAJOR,
		         WSYNC_PLUGIN_ABI_MINOR, WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR);
	} else if (d->struct_size < MIN_DESC_SIZE) {
		snprintf(err, errlen, "%s: descriptor is %u bytes, ABI %d needs at least "
		         "%zu", path, d->struct_size, WSYNC_PLUGIN_ABI_MAJOR, MIN_DESC_SIZE);
	} else if (d->abi_minor > WSYNC_PLUGIN_ABI_MINOR) {
		snprintf(err, errlen, "%s: built for plugin ABI %u.%u, this wsyncd speaks "
		         "ABI %d.%d; upgrade wsyncd or rebuild the plugin against "
		         "wsync-plugin %d.%d", path, d->abi_major, d->abi_minor,
		         WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR,
		         WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR);
	} else if (!d->name || !*d->name || !d->version) {
		snprintf(err, errlen, "%s: descriptor has no name or version", path);
	} else if (!d->sync_workout || !d->sync_scheduled_workout || !d->delete_workout ||
	           !d->delete_scheduled_workout) {
		snprintf(err, errlen, "%s: mandatory operation missing (sync_workout, "
		         "sync_scheduled_workout, delete_workout and delete_scheduled_workout "
		         "must all be set; return WSYNC_NOT_APPLICABLE where nothing applies)",
		         path);
	} else {
		return 0;
	}
	return -1;
}

/* Open and validate; on success `copy` holds the descriptor as the plugin
 * compiled it, zero-filled past its struct_size. */
static int open_plugin(const char *path, const char *open_path, void **handle,
                       wsync_plugin *copy, char *err, size_t errlen)
{
	wsync_plugin_entry_v1 entry;
	const wsync_plugin *d;
	void *h;

	if (!open_path && check_file(path, err, errlen) < 0)
		return -1;
	h = dlopen(open_path ? open_path : path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror(), *at = open_path ? strstr(why, open_path) : NULL;
		/* dlerror names what was opened: /proc/self/fd/N says nothing to
		 * the operator, the file's own name does (it leads the message). */
		if (at == why)
			why += strlen(open_path) + (why[strlen(open_path)] == ':') +
			       (why[strlen(open_path)] == ':' && why[strlen(open_path) + 1] == ' ');
		snprintf(err, errlen, "%s: cannot load: %s (check its libraries with ldd)",
		         path, why);
		return -1;
	}
	*(void **)&entry = dlsym(h, "wsync_plugin_v1");
	if (!entry) {
		missing_entry(h, path, err, errlen);
		dlclose(h);
		return -1;
	}
	d = entry();
	if (check_descriptor(d, path, err, errlen) < 0) {
		dlclose(h);
		return -1;
	}
	memset(copy, 0, sizeof *copy);
	memcpy(copy, d, d->struct_size < sizeof *copy ? d->struct_size : sizeof *copy);
	*handle = h;
	return 0;
}

int wsync_plugin_probe(const char *path, const char *open_path, wsync_plugin *copy,
                       char *err, size_t errlen)
{
	void *h;
	return open_plugin(path, open_path, &h, copy, err, errlen);
}

/* The descriptor of the file at path: from a probe (the parent of isolated
 * plugins: no plugin code here), or by dlopen. */
static int describe(wsync_registry *r, loaded_file *f, char *err, size_t errlen)
{
	if (!r->opts.probe)
		return open_plugin(f->path, r->opts.open_path, &f->handle, &f->desc, err, errlen);
	if (check_file(f->path, err, errlen) < 0)
		return -1;
	return r->opts.probe(r->opts.probe_arg, f->path, &f->desc, &f->probed, err, errlen);
}

/* [provider] plugin names a file in the plugin directory, never a path. */
static int plugin_name_ok(const char *plugin)
{
	return !strchr(plugin, '/') && plugin[0] != '.';
}

static void plugin_path(const wsync_registry *r, const char *plugin, char *path, size_t len)
{
	snprintf(path, len, "%s/%s.so", r->cfg->plugin_dir, plugin);
}

/* Tell opts.probe_ahead every file the instances will ask for, once each,
 * so their probes run side by side; what fails here is reported by the
 * instance's own pass (get_file). */
static void announce_probes(wsync_registry *r)
{
	const wsync_config *cfg = r->cfg;
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const char *plugin = cfg->providers[i].plugin;
		char path[PATH_MAX], err[1024];
		size_t k = 0;
		if (!plugin || !plugin_name_ok(plugin))
			continue;
		while (k < i && !(cfg->providers[k].plugin &&
		                  !strcmp(cfg->providers[k].plugin, plugin)))
			k++;
		plugin_path(r, plugin, path, sizeof path);
		if (k == i && check_file(path, err, sizeof err) == 0)
			r->opts.probe_ahead(r->opts.probe_arg, path);
	}
}

static loaded_file *get_file(wsync_registry *r, const char *plugin)
{
	char path[PATH_MAX], err[1024] = "";
	loaded_file **grown, *f;

	plugin_path(r, plugin, path, sizeof path);
	for (size_t i = 0; i < r->n_files; i++)
		if (!strcmp(r->files[i]->path, path))
			return r->files[i];
	grown = realloc(r->files, (r->n_files + 1) * sizeof *grown);
	if (!grown || !(f = calloc(1, sizeof *f)))
		abort();
	r->files = grown;
	grown[r->n_files++] = f;
	f->path = strdup(path);
	if (!plugin_name_ok(plugin))
		snprintf(err, sizeof err, "%s: plugin name '%s' must be a file name, not a path",
		         path, plugin);
	else if (describe(r, f, err, sizeof err) == 0 &&
	         strcmp(f->desc.name, plugin) != 0)
		snprintf(err, sizeof err, "%s: declares plugin name '%s', expected '%s' "
		         "(one plugin per name: rename the file or fix [provider] plugin)",
		         path, f->desc.name, plugin);
	if (*err)
		f->refusal = strdup(err);
	return f;
}

static const wsync_config_key *schema_key(const wsync_plugin *d, const char *sec,
                                          const char *key)
{
	for (uint32_t i = 0; d->config_keys && i < d->n_config_keys; i++)
		if (!strcmp(d->config_keys[i].section, sec) && !strcmp(d->config_keys[i].key, key))
			return &d->config_keys[i];
	return NULL;
}

static int check_value(wsync_config_entry *e, const wsync_config_key *k, char *err,
                       size_t errlen)
{
	long long x;
	int b;
	switch (k->type) {
	case WSYNC_CONFIG_INT:
		if (wsync_parse_int(e->value, INT64_MIN, INT64_MAX, &x) < 0) {
			snprintf(err, errlen, "'%s': expected an integer", e->value);
			return -1;
		}
		break;
	case WSYNC_CONFIG_BOOL:
		if (wsync_parse_bool(e->value, &b) < 0) {
			snprintf(err, errlen, "'%s': expected true or false", e->value);
			return -1;
		}
		break;
	case WSYNC_CONFIG_SECRET:
		free(e->secret);
		e->secret = wsync_read_secret_file(e->value, err, errlen);
		return e->secret ? 0 : -1;
	default:
		break;
	}
	return 0;
}

/* Check the instance's plugin keys against the plugin's schema. */
static int check_plugin_keys(wsync_plugin_instance *in, const wsync_plugin *d)
{
	wsync_provider_config *p = (wsync_provider_config *)in->cfg;
	char err[1024], why[600];

	for (size_t i = 0; i < p->n_entries; i++) {
		wsync_config_entry *e = &p->entries[i];
		const wsync_config_key *k;
		if (e->core)
			continue;
		k = schema_key(d, e->section, e->key);
		if (!k) {
			snprintf(err, sizeof err, "%s:%d: [%s] %s: unknown key (neither a core key "
			         "nor one declared by plugin %s; `wsyncd --check` lists them)",
			         p->path, e->line, e->section, e->key, d->name);
			in->refusal = strdup(err);
			return -1;
		}
		if (check_value(e, k, why, sizeof why) < 0) {
			snprintf(err, sizeof err, "%s:%d: [%s] %s %s", p->path, e->line,
			         e->section, e->key, why);
			in->refusal = strdup(err);
			return -1;
		}
	}
	for (uint32_t i = 0; d->config_keys && i < d->n_config_keys; i++) {
		const wsync_config_key *k = &d->config_keys[i];
		if (k->required && !k->default_value &&
		    !wsync_config_entry_find(p, k->section, k->key)) {
			snprintf(err, sizeof err, "%s: [%s] %s: missing required key of plugin "
			         "%s (%s)", p->path, k->section, k->key, d->name,
			         k->help ? k->help : "no help");
			in->refusal = strdup(err);
			return -1;
		}
	}
	return 0;
}

static void refuse(wsync_plugin_instance *in, const char *why, int config_error)
{
	if (!in->refusal && why)
		in->refusal = strdup(why);
	in->config_error = config_error;
	wsync_error("provider %s refused: %s", in->name, in->refusal);
}

static void init_instance(wsync_registry *r, wsync_plugin_instance *in,
                          const wsync_provider_config *p)
{
	loaded_file *f = get_file(r, p->plugin);
	int32_t st;

	in->file = strdup(f->path);
	if (f->refusal)
		{ refuse(in, f->refusal, 0); return; }
	for (size_t i = 0; i < r->n_instances; i++)
		if (r->instances[i] != in && !strcmp(r->instances[i]->name, in->name)) {
			char err[512];
			snprintf(err, sizeof err, "%s: a provider named '%s' already exists "
			         "(from %s)", p->path, in->name, r->instances[i]->cfg->path);
			{ refuse(in, err, 1); return; }
		}
	/* In the child the parent has checked the keys and read the secrets. */
	if (!r->opts.open_path && check_plugin_keys(in, &f->desc) < 0)
		{ refuse(in, NULL, 1); return; }
	in->desc = &f->desc;
	wsync_current_instance = in;
	st = f->desc.init && !r->opts.validate_only ? f->desc.init(r->host, in, &in->state)
	                                            : WSYNC_OK;
	wsync_current_instance = NULL;
	if (st != WSYNC_OK) {
		char err[512];
		in->desc = NULL;
		/* WSYNC_E_INVALID: a value the schema cannot check (a range, a
		 * choice) is wrong, which is a configuration error like any other. */
		if (st == WSYNC_E_INVALID)
			snprintf(err, sizeof err, "%s: plugin %s refused its configuration "
			         "(the plugin's log lines above name the key)", in->cfg->path,
			         f->desc.name);
		else
			snprintf(err, sizeof err, "%s: init() of plugin %s failed with status %d "
			         "(see the plugin's log lines above)", f->path, f->desc.name, st);
		{ refuse(in, err, st == WSYNC_E_INVALID); return; }
	}
	in->loaded = 1;
	wsync_info("provider %s: plugin %s %s (ABI %u.%u) from %s%s", in->name,
	           f->desc.name, f->desc.version, f->desc.abi_major, f->desc.abi_minor,
	           f->path, in->enabled ? "" : " (disabled)");
}

wsync_registry *wsync_registry_load(const wsync_config *cfg, const wsync_host *host)
{
	return wsync_registry_load_opts(cfg, host, NULL);
}

wsync_registry *wsync_registry_load_opts(const wsync_config *cfg, const wsync_host *host,
                                         const wsync_load_options *opts)
{
	wsync_registry *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->cfg = cfg;
	r->host = host;
	if (opts)
		r->opts = *opts;
	r->instances = calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof *r->instances);
	if (!r->instances)
		abort();
	if (r->opts.probe && r->opts.probe_ahead)
		announce_probes(r);
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const wsync_provider_config *p = &cfg->providers[i];
		wsync_plugin_instance *in = calloc(1, sizeof *in);
		if (!in)
			abort();
		in->name = strdup(p->name);
		in->cfg = p;
		in->enabled = p->enabled;
		in->registry = r;
		pthread_mutex_init(&in->serial_lock, NULL);
		r->instances[r->n_instances++] = in;
		if (!p->plugin)
			refuse(in, "no [provider] plugin key", 1);
		else
			init_instance(r, in, p);
	}
	return r;
}

void wsync_registry_free(wsync_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_instances; i++) {
		wsync_plugin_instance *in = r->instances[i];
		wsync_child_free(in->child); /* its destroy() runs there */
		if (in->loaded && in->desc->destroy && !r->opts.validate_only)
			in->desc->destroy(in->state);
		pthread_mutex_destroy(&in->serial_lock);
		free(in->name);
		free(in->file);
		free(in->refusal);
		free(in);
	}
	/* The .so files stay mapped: a plugin may have left something behind
	 * (atexit handlers of its libraries) that must not point into unmapped
	 * code. */
	for (size_t i = 0; i < r->n_files; i++) {
		if (r->files[i]->probed && r->opts.probe_free)
			r->opts.probe_free(r->files[i]->probed);
		free(r->files[i]->path);
		free(r->files[i]->refusal);
		free(r->files[i]);
	}
	free(r->files);
	free(r->instances);
	free(r);
}

size_t wsync_registry_count(const wsync_registry *r)
{
	return r ? r->n_instances : 0;
}

wsync_plugin_instance *wsync_registry_at(wsync_registry *r, size_t i)
{
	return i < r->n_instances ? r->instances[i] : NULL;
}

wsync_plugin_instance *wsync_registry_find(wsync_registry *r, const char *name)
{
	for (size_t i = 0; r && i < r->n_instances; i++)
		if (r->instances[i]->loaded && r->instances[i]->enabled &&
		    !strcmp(r->instances[i]->name, name))
			return r->instances[i];
	return NULL;
}

size_t wsync_registry_failures(const wsync_registry *r)
{
	size_t n = 0;
	for (size_t i = 0; r && i < r->n_instances; i++)
		n += !r->instances[i]->loaded;
	return n;
}

const char *wsync_instance_config_string(const wsync_plugin_instance *in,
                                         const char *section, const char *key)
{
	const wsync_config_entry *e = wsync_config_entry_find(in->cfg, section, key);
	const wsync_config_key *k = in->desc ? schema_key(in->desc, section, key) : NULL;
	if (e)
		return e->secret ? e->secret : e->value;
	return k ? k->default_value : NULL;
}

const wsync_host *wsync_instance_host(const wsync_plugin_instance *inst)
{
	return inst && inst->registry ? inst->registry->host : NULL;
}
