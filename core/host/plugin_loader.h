/*
 * plugin_loader.h -- find, validate and instantiate provider plugins.
 *
 * For every conf.d/<name>.ini whose [provider] plugin = X, the loader opens
 * <plugins.dir>/X.so (once per plugin file, shared by its instances),
 * validates it in a fixed order and calls init().  Every refusal is recorded
 * with the file and the reason, and the other plugins still load.
 */
#ifndef WSYNC_PLUGIN_LOADER_H
#define WSYNC_PLUGIN_LOADER_H

#include "common/config.h"
#include "wsync/plugin.h"

#include <pthread.h>
#include <stddef.h>

typedef struct wsync_registry wsync_registry;

/* Host-side state of one configured instance: the plugin gets a pointer to
 * it as its opaque `const wsync_instance *`. */
typedef struct wsync_instance wsync_plugin_instance;
struct wsync_instance {
	char *name;                        /* instance = provider name */
	char *file;                        /* path of the .so */
	const wsync_plugin *desc;          /* NULL when refused */
	const wsync_provider_config *cfg;  /* borrowed from the wsync_config */
	void *state;                       /* from init() */
	int loaded;                        /* 1: init() succeeded */
	int enabled;                       /* [provider] enabled */
	char *refusal;                     /* why it did not load, or NULL */
	pthread_mutex_t serial_lock;       /* for WSYNC_PLUGIN_SERIAL */
	int config_error;                  /* refusal is a configuration error */
	wsync_registry *registry;          /* owner */
	struct wsync_child *child;         /* the process the plugin runs in
	                                      (isolate.h), or NULL: in-process */
};

/* The instance whose plugin code this thread is running (set around init()
 * and every operation), or NULL: wsyncd's fatal-signal handler names it, so
 * a crash names the culprit. */
extern _Thread_local const wsync_plugin_instance *wsync_current_instance;

/*
 * Load every instance of `cfg` (which must outlive the registry) with host
 * services `host`.  Never NULL unless out of memory.  Refusals are logged at
 * error level and kept in each instance's `refusal`.
 */
wsync_registry *wsync_registry_load(const wsync_config *cfg,
                                    const wsync_host *host);

/* How wsyncd loads when plugins run in child processes (isolate.h). */
typedef struct wsync_load_options {
	int validate_only;      /* the parent: check files, descriptors and
	                           keys, never call init() or destroy() (the
	                           child does); instances count as loaded */
	const char *open_path;  /* the child: dlopen this instead of the
	                           configured file (/proc/self/fd/N, opened
	                           before dropping privileges), which the
	                           parent has checked already */
	/* The parent: instead of dlopen, learn a file's descriptor from a
	 * process of its own (isolate.c), so no plugin code runs here.  0 with
	 * *desc filled (its strings and config_keys in *owned, released with
	 * probe_free when the registry goes), or -1 with the refusal in err. */
	int (*probe)(void *arg, const char *path, wsync_plugin *desc, void **owned,
	             char *err, size_t errlen);
	/* Optional, with probe: called once per file the loader will probe,
	 * once the file has passed the trust checks and before the first
	 * probe, so the probes can run side by side (probe then collects
	 * them).  It reports nothing: probe does. */
	void (*probe_ahead)(void *arg, const char *path);
	void (*probe_free)(void *owned);
	void *probe_arg;
} wsync_load_options;

wsync_registry *wsync_registry_load_opts(const wsync_config *cfg, const wsync_host *host,
                                         const wsync_load_options *opts);
/* destroy() every loaded instance; the .so files stay mapped. */
void wsync_registry_free(wsync_registry *r);

size_t wsync_registry_count(const wsync_registry *r);
wsync_plugin_instance *wsync_registry_at(wsync_registry *r, size_t i);
/* Loaded and enabled instance by provider name, or NULL. */
wsync_plugin_instance *wsync_registry_find(wsync_registry *r, const char *name);
/* Number of instances that were refused. */
size_t wsync_registry_failures(const wsync_registry *r);

/* Configuration getters behind wsync_host (values validated at load). */
const char *wsync_instance_config_string(const wsync_plugin_instance *inst,
                                         const char *section, const char *key);

/* The host services table the instance's init() got (the test host's own
 * wrapped table in the SDK): what every operation finds in req->host. */
const wsync_host *wsync_instance_host(const wsync_plugin_instance *inst);

/* Inspect one plugin file without instantiating it (a plugin process's
 * answer to a probe): dlopen open_path (the file, already checked, as
 * /proc/self/fd/N) and validate it as `path`.  Fills *copy (its pointers
 * into the mapped file) or writes the refusal into err; 0 when the file is
 * acceptable. */
int wsync_plugin_probe(const char *path, const char *open_path, wsync_plugin *copy,
                       char *err, size_t errlen);

#endif
