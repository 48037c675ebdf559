/*
 * test_auth_secrets.c -- the real wsyncd --once, the Wahoo plugin, the
 * sandbox and a throwaway PostgreSQL:
 *
 *  - secrets never leave: the provider (sandbox fault rules) echoes the
 *    user's access token, refresh token and wsync's client secret in error
 *    bodies and headers, of the API and of the token endpoint; no log line
 *    of wsyncd and no stored error_message may contain any 8 consecutive
 *    characters of any of them.
 *  - every final auth failure (403, 412, a 401 that stands after a
 *    refresh, a 401 on an instance without a refresh endpoint, a refused
 *    refresh) sets provider_tokens.needs_reconnect and says that the user
 *    must reconnect.
 */
#include "e2e.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT "at-Zq81SECRETaccess-0f9e"
#define RT "rt-" AT                     /* e2e_user's refresh token */
#define CS "cs-Kp77CLIENTsecret-x1"

static const char *instance_ini =
	"[provider]\n"
	"plugin = wahoo\n"
	"base_url = @BASE@\n"
	"rate_limit_per_minute = 600\n"
	"[oauth]\n"
	"token_url = @BASE@/oauth/token\n"
	"client_id = wsync-test\n"
	"client_secret_file = @DIR@/wahoo.secret\n"
	"[wahoo]\n"
	"ftp = 250\n";

/* The same plugin on a provider without a refresh endpoint. */
static const char *norefresh_ini =
	"[provider]\n"
	"plugin = wahoo\n"
	"base_url = @BASE@\n"
	"rate_limit_per_minute = 600\n"
	"[wahoo]\n"
	"ftp = 250\n";

static char *all_logs;   /* every wsyncd run's output */

static void run(e2e *t)
{
	char *out = NULL;
	size_t had = all_logs ? strlen(all_logs) : 0;
	T_EQ_INT(e2e_wsyncd_once(t, &out), 0);
	all_logs = realloc(all_logs, had + strlen(out ? out : "") + 1);
	strcpy(all_logs + had, out ? out : "");
	free(out);
}

/* T_EQ_STR on a malloc'ed answer, freed. */
#define EQ_FREE(got, want)                                                     \
	do {                                                                   \
		char *got_ = (got);                                            \
		T_EQ_STR(got_ ? got_ : "(null)", want);                        \
		free(got_);                                                    \
	} while (0)

static void clear_faults(e2e *t)
{
	char *body = NULL;
	T_EQ_INT(e2e_sandbox(t, "DELETE", "/_sandbox/faults", NULL, &body), 200);
	free(body);
}

static char *queue_message(e2e *t, const char *entity, const char *provider)
{
	const char *p[2] = {entity, provider};
	return t_query_str(t->db, "SELECT coalesce(error_message, '') FROM workout_sync_queue"
	                   " WHERE entity_id = $1 AND provider = $2"
	                   " ORDER BY created_at DESC, id DESC LIMIT 1", 2, p);
}

static char *reconnect_flag(e2e *t, const char *user, const char *provider)
{
	const char *p[2] = {user, provider};
	return t_query_str(t->db, "SELECT needs_reconnect::text FROM provider_tokens"
	                   " WHERE user_id = $1 AND provider = $2", 2, p);
}

/* A user connected to `provider` with token AT, and one workout. */
static char *user_with_workout(e2e *t, const char *provider, char **workout)
{
	char *user = strdup(e2e_user(t, provider, AT));
	*workout = strdup(e2e_workout(t, user, "Threshold", "bike", "- 10m 60%"));
	return user;
}

/* The rule's body and headers echo every secret, in plain and in the shapes
 * of JSON members, form fields and an Authorization header. */
static void echo_fault(e2e *t, const char *path, int status)
{
	char rule[2048];
	snprintf(rule, sizeof rule,
	         "{\"path_prefix\":\"%s\",\"status\":%d,\"count\":0,"
	         "\"headers\":{\"X-Echo\":\"Bearer " AT "\","
	         "\"WWW-Authenticate\":\"Bearer error=\\\"invalid_token\\\" token=" AT "\","
	         "\"Retry-After\":\"" RT "\"},"
	         "\"body\":\"" AT " " RT " " CS " {\\\"access_token\\\":\\\"" AT "\\\","
	         "\\\"refresh_token\\\":\\\"" RT "\\\",\\\"client_secret\\\":\\\"" CS "\\\","
	         "\\\"form\\\":\\\"grant_type=refresh_token&refresh_token=" RT
	         "&client_secret=" CS "\\\"}\"}",
	         path, status);
	e2e_fault(t, rule);
}

/* The token cut by the 200-byte body excerpt: its first characters must
 * not leak either. */
static void cut_fault(e2e *t, int status)
{
	char rule[1024], pad[190];
	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	snprintf(rule, sizeof rule,
	         "{\"path_prefix\":\"/v1/\",\"status\":%d,\"count\":0,\"body\":\"%s " AT "\"}",
	         status, pad);
	e2e_fault(t, rule);
}

/* No 8 consecutive characters of a secret anywhere in `text`. */
static void no_secret_in(const char *what, const char *text)
{
	static const char *const secrets[] = {AT, RT, CS};
	for (size_t k = 0; k < 3; k++) {
		size_t len = strlen(secrets[k]);
		for (size_t i = 0; i + 8 <= len; i++) {
			char window[9];
			memcpy(window, secrets[k] + i, 8);
			window[8] = '\0';
			if (strstr(text, window)) {
				const char *at = strstr(text, window);
				fprintf(stderr, "%s leaks \"%s\" of a secret: ...%.120s\n", what,
				        window, at > text + 60 ? at - 60 : text);
				T_CHECK(0);
				return;
			}
		}
	}
}

static void secrets_never_leave(e2e *t)
{
	char *u1, *u2, *u3, *w1, *w2, *w3, *m, *all;
	const char *p[1];

	/* 400 (permanent) and 503 (retried) answers echoing everything */
	u1 = user_with_workout(t, "wahoo", &w1);
	echo_fault(t, "/v1/", 400);
	run(t);
	clear_faults(t);
	EQ_FREE(e2e_queue_state(t, w1, "wahoo"), "processed|invalid_request|0");
	m = queue_message(t, w1, "wahoo");
	T_CONTAINS(m, "HTTP 400 from ");
	T_CONTAINS(m, "***");            /* the echo was there, and masked */
	free(m);

	u2 = user_with_workout(t, "wahoo", &w2);
	echo_fault(t, "/v1/", 503);
	run(t);
	clear_faults(t);
	m = queue_message(t, w2, "wahoo");
	T_CONTAINS(m, "HTTP 503 from ");
	T_CONTAINS(m, "***");
	free(m);

	/* a token cut by the excerpt */
	u3 = user_with_workout(t, "wahoo", &w3);
	cut_fault(t, 422);
	run(t);
	clear_faults(t);
	m = queue_message(t, w3, "wahoo");
	T_CONTAINS(m, "HTTP 422 from ");
	T_CONTAINS(m, "xxx ***");
	free(m);

	/* the token endpoint echoes the refresh token and the client secret */
	free(u1);
	free(w1);
	u1 = user_with_workout(t, "wahoo", &w1);
	p[0] = u1;
	t_exec(t->db, "UPDATE provider_tokens SET expires_at = now() - interval '1 hour'"
	              " WHERE user_id = $1", 1, p);
	echo_fault(t, "/oauth/token", 400);
	run(t);
	clear_faults(t);
	EQ_FREE(e2e_queue_state(t, w1, "wahoo"), "processed|auth_error|0");

	all = t_query_str(t->db, "SELECT coalesce(string_agg(coalesce(error_message, ''),"
	                  " E'\\n'), '') FROM workout_sync_queue", 0, NULL);
	T_CHECK(all && strlen(all) > 0);
	no_secret_in("workout_sync_queue.error_message", all ? all : "");
	no_secret_in("wsyncd's log", all_logs ? all_logs : "");
	T_CONTAINS(all_logs, "HTTP 400 from ");   /* the failures were logged */
	free(all);
	free(u1); free(u2); free(u3); free(w1); free(w2); free(w3);
}

/* One final auth failure: the entry fails with auth_error, the flag is
 * set, and the message tells the application why. */
static void final_auth(e2e *t, const char *provider, const char *rule)
{
	char *w, *user = user_with_workout(t, provider, &w), *m, *flag;

	EQ_FREE(reconnect_flag(t, user, provider), "false");
	e2e_fault(t, rule);
	run(t);
	clear_faults(t);
	EQ_FREE(e2e_queue_state(t, w, provider), "processed|auth_error|0");
	flag = reconnect_flag(t, user, provider);
	if (strcmp(flag, "true"))
		fprintf(stderr, "needs_reconnect not set after %s on %s\n", rule, provider);
	T_EQ_STR(flag, "true");
	m = queue_message(t, w, provider);
	T_CONTAINS(m, "the user must reconnect");
	T_CHECK(strstr(m, "check [oauth]") == NULL);
	free(m);
	free(flag);
	free(user);
	free(w);
}

static void reconnect_on_every_final_auth_failure(e2e *t)
{
	final_auth(t, "wahoo", "{\"path_prefix\":\"/v1/\",\"status\":403,\"count\":0}");
	final_auth(t, "wahoo", "{\"path_prefix\":\"/v1/\",\"status\":412,\"count\":0}");
	/* refreshed, then refused again */
	final_auth(t, "wahoo", "{\"path_prefix\":\"/v1/\",\"status\":401,\"count\":0}");
	/* no refresh endpoint */
	final_auth(t, "norefresh", "{\"path_prefix\":\"/v1/\",\"status\":401,\"count\":0}");
	/* the refresh itself refused */
	final_auth(t, "wahoo", "[{\"path_prefix\":\"/v1/\",\"status\":401,\"count\":0},"
	                       "{\"path_prefix\":\"/oauth/token\",\"status\":400,\"count\":0,"
	                       "\"body\":{\"error\":\"invalid_grant\"}}]");
}

int main(int argc, char **argv)
{
	e2e *t;

	if (argc < 2)
		return 2;
	t = e2e_start(0);
	snprintf(t->extra_main_ini, sizeof t->extra_main_ini, "[log]\nlevel = debug\n");
	e2e_add_plugin(t, argv[1]);
	e2e_secret(t, "wahoo", CS "\n");
	e2e_instance(t, "wahoo", "wahoo", instance_ini);
	e2e_instance(t, "norefresh", "wahoo", norefresh_ini);
	secrets_never_leave(t);
	reconnect_on_every_final_auth_failure(t);
	e2e_stop(t);
	free(all_logs);
	return t_done();
}
