/*
 * providers.c -- a node tells the database which providers its
 * configuration serves, at start and at every reload.  The rule (one node
 * removing an INI stops enqueueing only when no node has the provider
 * enabled; an operator's `wsyncctl provider disable` survives reloads) is
 * in migrations/0007_provider_lifecycle.sql; this file only sends the list
 * and logs what the database answers.
 */
#include "providers.h"

#include "common/log.h"
#include "store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void wsync_node_name(const char *config_path, char *buf, size_t len)
{
	char host[256] = "localhost", path[PATH_MAX];
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = 0;
	if (!config_path || !realpath(config_path, path))
		snprintf(path, sizeof path, "%s", config_path ? config_path : "-");
	snprintf(buf, len, "%s:%s", host, path);
}

/* Append `item` to the array literal in *s (names are [a-z0-9_-] only, plugin
 * names too: nothing to quote).  Returns 0, or -1 when out of memory. */
static int append(char **s, size_t *len, const char *item)
{
	size_t need = *len + strlen(item) + 4;
	char *grown = realloc(*s, need);
	if (!grown)
		return -1;
	*s = grown;
	*len += (size_t)sprintf(grown + *len, "%s\"%s\"", *len > 1 ? "," : "", item);
	return 0;
}

int wsync_providers_register(PGconn *db, const char *node, wsync_registry *reg)
{
	char *arr[4] = {NULL, NULL, NULL, NULL};
	size_t len[4];
	const char *p[5];
	PGresult *r;
	int rc = -1, oom = 1;

	for (int k = 0; k < 4; k++) {
		if (!(arr[k] = strdup("{")))
			goto out;
		len[k] = 1;
	}
	for (size_t i = 0; i < wsync_registry_count(reg); i++) {
		wsync_plugin_instance *in = wsync_registry_at(reg, i);
		int bad = in->loaded
			? append(&arr[0], &len[0], in->name) ||
			  append(&arr[1], &len[1], in->desc->name) ||
			  append(&arr[2], &len[2], in->enabled ? "t" : "f")
			: append(&arr[3], &len[3], in->name);
		if (bad)
			goto out;
	}
	for (int k = 0; k < 4; k++) {
		char *grown = realloc(arr[k], len[k] + 2);
		if (!grown)
			goto out;
		arr[k] = grown;
		strcpy(arr[k] + len[k], "}");
	}
	oom = 0;
	p[0] = node, p[1] = arr[0], p[2] = arr[1], p[3] = arr[2], p[4] = arr[3];
	r = PQexecParams(db,
		"SELECT provider_name, queued, note FROM wsync_providers_register("
		"$1, $2::text[], $3::text[], $4::boolean[], $5::text[])",
		5, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    !strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
	                                                    : "", "42883")) {
		/* A daemon upgraded before `wsyncctl migrate`: register as before
		 * 0007 did, so it still serves what it loads. */
		wsync_warn("the database lacks migration 0007 (run `wsyncctl migrate`): "
		           "providers registered without node tracking");
		rc = 0;
		for (size_t i = 0; i < wsync_registry_count(reg); i++) {
			wsync_plugin_instance *in = wsync_registry_at(reg, i);
			if (in->loaded && wsync_store_register_provider(db, in->name, in->desc->name,
			                                                in->enabled) < 0) {
				wsync_error("cannot register provider %s: %s", in->name,
				            PQerrorMessage(db));
				rc = -1;
			}
		}
	} else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		wsync_error("cannot register providers: %s", PQerrorMessage(db));
	} else {
		for (int i = 0; i < PQntuples(r); i++)
			if (!PQgetisnull(r, i, 2))
				wsync_warn("provider %s: %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 2));
		rc = 0;
	}
	PQclear(r);
out:
	if (oom)
		wsync_error("cannot register providers: out of memory");
	for (int k = 0; k < 4; k++)
		free(arr[k]);
	return rc;
}
