/*
 * plugins.c -- `wsyncctl plugins`: every configured instance with its
 * file, plugin version, ABI version and state.
 */
#include "host/host.h"
#include "host/plugin_loader.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

int wsync_ctl_plugins(const wsync_config *cfg, int argc, char **argv);

static json_object *instance_json(const wsync_plugin_instance *in)
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
	json_object_object_add(o, "state", json_object_new_string(
		!in->loaded ? "refused" : in->enabled ? "loaded" : "disabled"));
	json_object_object_add(o, "error", in->refusal ? json_object_new_string(in->refusal) : NULL);
	return o;
}

int wsync_ctl_plugins(const wsync_config *cfg, int argc, char **argv)
{
	int json = 0;
	wsync_registry *reg;
	size_t failures;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--help")) {
			puts("Usage: wsyncctl plugins [--json]\n"
			     "Load every conf.d instance as wsyncd would and list it with its file,\n"
			     "plugin version, ABI version and state (loaded, disabled, refused).\n"
			     "Exit 0 when all load, 1 when one is refused.");
			return 0;
		} else {
			fprintf(stderr, "wsyncctl plugins: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	reg = wsync_registry_load(cfg, wsync_host_services());
	if (json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < wsync_registry_count(reg); i++)
			json_object_array_add(arr, instance_json(wsync_registry_at(reg, i)));
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
		json_object_put(arr);
	} else {
		printf("%-16s %-9s %-8s %-5s %s\n", "PROVIDER", "STATE", "VERSION", "ABI", "FILE / REASON");
		for (size_t i = 0; i < wsync_registry_count(reg); i++) {
			wsync_plugin_instance *in = wsync_registry_at(reg, i);
			char abi[32] = "-";
			if (in->desc)
				snprintf(abi, sizeof abi, "%u.%u", in->desc->abi_major, in->desc->abi_minor);
			printf("%-16s %-9s %-8s %-5s %s\n", in->name,
			       !in->loaded ? "refused" : in->enabled ? "loaded" : "disabled",
			       in->desc ? in->desc->version : "-", abi,
			       in->loaded ? in->file : in->refusal);
		}
	}
	failures = wsync_registry_failures(reg);
	wsync_registry_free(reg);
	return failures ? 1 : 0;
}
