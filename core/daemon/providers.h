/*
 * providers.h -- registering this node's provider instances in the database
 * (sync_providers, sync_provider_nodes: migrations/0007).
 */
#ifndef WSYNC_PROVIDERS_H
#define WSYNC_PROVIDERS_H

#include "host/plugin_loader.h"

#include <libpq-fe.h>
#include <stddef.h>

/* This node's name in sync_provider_nodes: "<hostname>:<absolute config
 * path>" (config_path may be NULL: "-"), written into buf. */
void wsync_node_name(const char *config_path, char *buf, size_t len);

/* Register what the registry configures (wsync_providers_register): loaded
 * instances with their enabled flag, refused ones kept as they were, every
 * other provider this node had marked removed.  Logs, per provider, when
 * nothing is queued for it or this node does not serve it.  Returns 0, or
 * -1 on a database error (logged). */
int wsync_providers_register(PGconn *db, const char *node, wsync_registry *reg);

#endif
