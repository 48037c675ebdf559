/*
 * misbehave.c -- a plugin that crashes or hangs where its configuration
 * says, for the test host's crash and hang reports (test_testhost_crash.c).
 *
 *   [misbehave]
 *   where = init | sync_workout | sync_scheduled_workout | delete_workout |
 *           delete_scheduled_workout | destroy | nowhere
 *   how   = null_write | abort | overflow | trap | fpe | bus | loop
 *
 * The faults are real where they can be: a store through a NULL pointer, a
 * stack overflow, __builtin_trap(); SIGFPE and SIGBUS are raised (an
 * integer division by zero is caught by UBSan first, and a bus error needs
 * a truncated mapping).
 */
#include <wsync/plugin.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const wsync_config_key keys[] = {
	{"misbehave", "where", WSYNC_CONFIG_STRING, 0, "nowhere",
	 "the call that misbehaves"},
	{"misbehave", "how", WSYNC_CONFIG_STRING, 0, "null_write", "how it misbehaves"},
};

typedef struct state {
	char where[64];
	char how[64];
} state;

static int *volatile nowhere; /* NULL, opaque to the optimiser */
static volatile unsigned long spin;

/* UBSan would stop a NULL store before it faults: let it fault. */
__attribute__((no_sanitize("null"))) static void null_write(void)
{
	*nowhere = 42;
}

/* Deep enough to overflow any stack; not a tail call (the sum after it). */
static unsigned long recurse(unsigned long depth)
{
	volatile char frame[512];
	frame[depth % sizeof frame] = (char)depth;
	if (spin != 1)
		return recurse(depth + 1) + frame[0];
	return frame[0];
}

static void misbehave(const char *how)
{
	if (!strcmp(how, "null_write"))
		null_write();
	else if (!strcmp(how, "abort"))
		abort();
	else if (!strcmp(how, "overflow"))
		recurse(0);
	else if (!strcmp(how, "trap"))
		__builtin_trap();
	else if (!strcmp(how, "fpe"))
		raise(SIGFPE);
	else if (!strcmp(how, "bus"))
		raise(SIGBUS);
	else if (!strcmp(how, "loop"))
		for (;;)
			spin += 2;
}

static void maybe(const state *s, const char *here)
{
	if (!strcmp(s->where, here))
		misbehave(s->how);
}

static int32_t init(const wsync_host *host, const wsync_instance *inst, void **out)
{
	state *s = calloc(1, sizeof *s);
	if (!s)
		return WSYNC_E_UNEXPECTED;
	strncpy(s->where, host->config_get_string(inst, "misbehave", "where"),
	        sizeof s->where - 1);
	strncpy(s->how, host->config_get_string(inst, "misbehave", "how"), sizeof s->how - 1);
	maybe(s, "init");
	*out = s;
	return WSYNC_OK;
}

static void destroy(void *st)
{
	maybe(st, "destroy");
	free(st);
}

static int32_t sync_workout(void *st, wsync_call *call, const wsync_request *req)
{
	(void)call;
	(void)req;
	maybe(st, "sync_workout");
	return WSYNC_OK;
}

static int32_t sync_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)call;
	(void)req;
	maybe(st, "sync_scheduled_workout");
	return WSYNC_OK;
}

static int32_t delete_workout(void *st, wsync_call *call, const wsync_request *req)
{
	(void)call;
	(void)req;
	maybe(st, "delete_workout");
	return WSYNC_OK;
}

static int32_t delete_scheduled(void *st, wsync_call *call, const wsync_request *req)
{
	(void)call;
	(void)req;
	maybe(st, "delete_scheduled_workout");
	return WSYNC_OK;
}

WSYNC_PLUGIN_DESCRIPTOR(.name = "misbehave", .version = "1.0.0",
                        .description = "crashes or hangs where it is told to",
                        .config_keys = keys, .n_config_keys = 2,
                        .init = init, .destroy = destroy,
                        .sync_workout = sync_workout,
                        .sync_scheduled_workout = sync_scheduled,
                        .delete_workout = delete_workout,
                        .delete_scheduled_workout = delete_scheduled)
