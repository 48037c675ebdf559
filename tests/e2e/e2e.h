/*
 * e2e.h -- end-to-end fixtures: a sandbox provider server, a migrated test
 * database, a wsyncd configuration in a temp dir, and `wsyncd --once` runs.
 *
 * Run under tests/pg_harness.sh (WSYNC_TEST_CONNINFO).  Paths of built
 * programs come from the environment meson sets for these tests:
 *   WSYNC_SANDBOX_EXE   wsync-sandbox
 *   WSYNC_WSYNCD        wsyncd
 */
#ifndef WSYNC_E2E_H
#define WSYNC_E2E_H

#include "testlib.h"

#include <json-c/json.h>
#include <sys/types.h>

typedef struct e2e {
	char *dir;             /* temp dir: wsyncd.ini, conf.d/, plugins/, secrets */
	char base_url[64];     /* sandbox root, "http://127.0.0.1:PORT" */
	int tls;               /* sandbox serves https; cert at dir/cert.pem */
	pid_t sandbox_pid;
	PGconn *db;            /* test database, migrated */
	char extra_main_ini[1024]; /* appended to wsyncd.ini (e.g. "[engine]\n...") */
} e2e;

/* Temp dir, migrated database, sandbox started (provider "all"; tls=1 for
 * HTTPS with a throwaway self-signed cert).  Aborts the test on failure. */
e2e *e2e_start(int tls);
/* Stop the sandbox, close the database, remove nothing (dir kept for
 * post-mortems under /tmp). */
void e2e_stop(e2e *t);

/* Copy a built plugin .so into the private plugin dir (mode 0755). */
void e2e_add_plugin(e2e *t, const char *so_path);
/* Write conf.d/<name>.ini; every "@BASE@" in body becomes base_url and
 * "@DIR@" the temp dir.  Also registers the provider in sync_providers.
 * With the plain-http sandbox (not tls) a body holding "http://" gets
 * "[provider] allow_insecure_http = true" appended. */
void e2e_instance(e2e *t, const char *name, const char *plugin, const char *body);
/* Write a secret file (mode 0600) under dir, return its path (static buf). */
const char *e2e_secret(e2e *t, const char *name, const char *content);

/* Run `wsyncd -c dir/wsyncd.ini --once`; returns its exit status; its
 * combined output in *out when out != NULL (caller frees). */
int e2e_wsyncd_once(e2e *t, char **out);
/* Path of dir/wsyncd.ini (written by e2e_wsyncd_once and e2e_write_config). */
const char *e2e_write_config(e2e *t);

/* Control API of the sandbox.  Returns the HTTP status; *body (may be
 * NULL) gets the answer, caller frees. */
int e2e_sandbox(e2e *t, const char *method, const char *path, const char *json, char **body);
/* GET a sandbox path and parse it; caller json_object_put()s. */
json_object *e2e_sandbox_json(e2e *t, const char *path);
/* POST /_sandbox/faults with `rule_json`; checks the answer. */
void e2e_fault(e2e *t, const char *rule_json);

/* A new user (random uuid, returned in a static buffer) connected to
 * `provider` with `access_token` (and refresh token "rt-<token>",
 * expires in an hour), upload enabled. */
const char *e2e_user(e2e *t, const char *provider, const char *access_token);
/* Insert a workout (triggers enqueue it for every enabled provider);
 * returns its id (static buffer). */
const char *e2e_workout(e2e *t, const char *user_id, const char *name, const char *sport,
                        const char *workout_text);
/* Schedule a workout on `date` (YYYY-MM-DD) and optional time (NULL). */
const char *e2e_schedule(e2e *t, const char *user_id, const char *workout_id,
                         const char *date, const char *time);

/* The queue's latest entry for (entity, provider) as "state|error_type|retry_count"
 * (state: pending, processed), malloc'ed. */
char *e2e_queue_state(e2e *t, const char *entity_id, const char *provider);
/* The stored link, malloc'ed, or NULL. */
char *e2e_link(e2e *t, const char *provider, const char *entity_type, const char *entity_id);

#endif
