/*
 * plugins.c -- `wsyncctl plugins`: every configured instance with its
 * file, plugin version, ABI version and state, and why a wsyncd has
 * quarantined it (host/isolate.h; `--release` is in wsyncctl.c).
 */
#include "ctl.h"
#include "host/host.h"
#include "host/isolate.h"
#include "host/plugin_loader.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

/* Quarantines recorded by the nodes (migration 0010), or NULL. */
static PGresult *quarantines(PGconn *db)
{
	PGresult *r;
	if (!db)
		return NULL;
	r = PQexec(db, "SELECT provider, node, quarantine_reason FROM sync_provider_nodes"
	               " WHERE quarantined_at IS NOT NULL ORDER BY provider, node");
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		return r;
	PQclear(r); /* not migrated to 0010: nothing to say */
	return NULL;
}

/* "node: reason" of the first node that quarantined `name`, or NULL. */
static const char *quarantine_of(const PGresult *q, const char *name, char *buf, size_t len)
{
	for (int i = 0; q && i < PQntuples(q); i++)
		if (!strcmp(PQgetvalue(q, i, 0), name)) {
			snprintf(buf, len, "%s (node %s)", PQgetvalue(q, i, 2), PQgetvalue(q, i, 1));
			return buf;
		}
	return NULL;
}

static const char *state_of(const wsync_plugin_instance *in, const char *quarantine)
{
	return !in->loaded ? "refused" : quarantine ? "quarantined"
	       : in->enabled ? "loaded" : "disabled";
}

static json_object *instance_json(const wsync_plugin_instance *in, const char *quarantine)
{
	json_object *o = json_object_new_object();
	char abi[32] = "";
	if (in->desc)
		snprintf(abi, sizeof abi, "%u.%u", in->desc->abi_major, in->desc->abi_minor);
	json_object_object_add(o, "name", json_object_new_string(in->name));
	json_object_object_add(o, "file", json_object_new_string(in->file ? in->file : ""));
	json_object_object_add(o, "plugin", in->desc ? json_object_new_string(in->desc->name) : NULL);
	json_object_object_add(o, "version", in->desc ? json_object_new_string(in->desc->version) : NULL);
	json_object_object_add(o, "abi", in->desc ? json_object_new_string(abi) : NULL);
	json_object_object_add(o, "state", json_object_new_string(state_of(in, quarantine)));
	json_object_object_add(o, "error", in->refusal ? json_object_new_string(in->refusal) : NULL);
	json_object_object_add(o, "quarantine",
	                       quarantine ? json_object_new_string(quarantine) : NULL);
	return o;
}

static void print_table(wsync_registry *reg, const PGresult *q)
{
	char buf[1200];
	printf("%-16s %-11s %-8s %-5s %s\n", "PROVIDER", "STATE", "VERSION", "ABI",
	       "FILE / REASON");
	for (size_t i = 0; i < wsync_registry_count(reg); i++) {
		wsync_plugin_instance *in = wsync_registry_at(reg, i);
		const char *quarantine = quarantine_of(q, in->name, buf, sizeof buf);
		char abi[32] = "-";
		if (in->desc)
			snprintf(abi, sizeof abi, "%u.%u", in->desc->abi_major, in->desc->abi_minor);
		printf("%-16s %-11s %-8s %-5s %s\n", in->name, state_of(in, quarantine),
		       in->desc ? in->desc->version : "-", abi,
		       !in->loaded ? in->refusal : quarantine ? quarantine : in->file);
	}
}

int wsync_ctl_plugins(const wsync_config *cfg, PGconn *db, int argc, char **argv)
{
	int json = 0, bad = 0;
	wsync_registry *reg;
	PGresult *q;
	char buf[1200];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--help")) {
			puts("Usage: wsyncctl plugins [--json]\n"
			     "       wsyncctl plugins --release NAME\n"
			     "Load every conf.d instance as wsyncd would and list it with its file,\n"
			     "plugin version, ABI version and state: loaded, disabled, refused, or\n"
			     "quarantined (a wsyncd stopped calling a plugin that crashed or hung\n"
			     "too often; its entries wait, they are not failed).\n"
			     "--release NAME lifts NAME's quarantine on every node: each starts the\n"
			     "plugin again with its next call (a SIGHUP to wsyncd does it too).\n"
			     "Exit 0 when all load, 1 when one is refused or quarantined (or the\n"
			     "release found nothing to release), 2 on bad arguments.");
			return 0;
		} else {
			fprintf(stderr, "wsyncctl plugins: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	/* As wsyncd loads them: init() runs in the plugin's own process. */
	reg = wsync_isolate_load(cfg, &(wsync_isolation){.channels = 1});
	q = quarantines(db);
	if (json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < wsync_registry_count(reg); i++) {
			wsync_plugin_instance *in = wsync_registry_at(reg, i);
			json_object_array_add(arr, instance_json(in, quarantine_of(q, in->name, buf,
			                                                           sizeof buf)));
		}
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
		json_object_put(arr);
	} else {
		print_table(reg, q);
	}
	for (size_t i = 0; i < wsync_registry_count(reg); i++) {
		wsync_plugin_instance *in = wsync_registry_at(reg, i);
		bad |= !in->loaded || quarantine_of(q, in->name, buf, sizeof buf) != NULL;
	}
	PQclear(q);
	wsync_registry_free(reg);
	return bad ? 1 : 0;
}
