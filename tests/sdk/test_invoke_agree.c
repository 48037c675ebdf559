/*
 * test_invoke_agree.c -- the test host and wsyncd classify alike.  One fault
 * table (every answer class of plugin.h's HTTP CLASSIFICATION, a transport
 * error, a 2xx without a usable id) goes through the daemon's dispatch
 * (wsync_dispatch_call on a loaded job, the code wsyncd runs after its
 * claim) and through libwsync-testhost, for a create, an update (whose 404
 * re-creates) and a delete (whose 404 is success); both answer from the
 * same responder behind the core's real HTTP path.  Status, error_type,
 * provider id, retry-after and the dropped link must agree on every row,
 * and the rows the rules single out are checked for their value too.
 *
 *   test_invoke_agree HELPERS_FIXTURE_SO
 */
#include "common/config.h"
#include "common/workout_parse.h"
#include "daemon/dispatch.h"
#include "host/classify.h"
#include "host/host.h"
#include "sdk_test.h"

#include <curl/curl.h>
#include <limits.h>

#define WORKOUT_ID "0b7e55f0-1111-4222-8333-444455556666"
#define USER_ID "7d1c2f30-aaaa-4bbb-8ccc-ddddeeeeffff"

typedef struct fault {
	long status;             /* 0: no answer (transport error) */
	const char *headers;
	const char *body;
} fault;

static const fault table[] = {
	{200, "", "{\"data\":{\"id\":\"p-200\"}}"},
	{201, "", "{\"data\":{\"id\":42}}"},
	{204, "", ""},                          /* 2xx without an id */
	{302, "Location: https://elsewhere.example/\r\n", ""},
	{400, "", "{\"error\":\"bad date\"}"},
	{401, "", "expired"},
	{403, "", "forbidden"},
	{404, "", "{\"error\":\"no such plan\"}"},
	{408, "", ""},
	{409, "", "conflict"},
	{410, "", "gone"},
	{412, "", ""},
	{422, "", "{\"error\":\"too long\"}"},
	{429, "Retry-After: 7\r\n", ""},
	{500, "", "oops"},
	{503, "Retry-After: 120\r\n", "maintenance"},
	{0, "", ""},
};

/* The row's answer first; after it (an update's re-create) a 201 with id. */
typedef struct responder { const fault *f; int calls; } responder;

static void answer(void *ctx, const char *url, const wsync_http_request *req,
                   wsync_http_canned *a)
{
	responder *r = ctx;
	(void)url;
	(void)req;
	if (r->calls++ == 0) {
		a->status = r->f->status;
		a->headers = r->f->headers;
		a->body = r->f->body;
		a->body_len = strlen(r->f->body);
	} else {
		a->status = 201;
		a->headers = "";
		a->body = "{\"data\":{\"id\":\"again\"}}";
		a->body_len = strlen(a->body);
	}
}

static void th_answer(void *ctx, const char *url, const wsync_http_request *req,
                      wsync_testhost_answer *a)
{
	wsync_http_canned c = {0};
	answer(ctx, url, req, &c);
	a->status = (int32_t)c.status;
	a->headers = c.headers;
	a->body = c.body;
	a->body_len = c.body_len;
}

typedef struct verdict {
	int32_t status;
	const char *error_type;
	char provider_id[64];
	int64_t retry_after_s;
	int link_dropped;
	int calls;
} verdict;

enum { OP_CREATE, OP_UPDATE, OP_DELETE };
static const char *const op_names[] = {"create", "update", "delete"};

static verdict run_daemon(wsync_plugin_instance *inst, wsync_http_client *http,
                          const fault *f, int op)
{
	wsync_job *j = calloc(1, sizeof *j);
	wsync_call_env env = {.http = http};
	responder r = {f, 0};
	verdict v = {0};

	snprintf(j->entry.id, sizeof j->entry.id, "%s", "9a9a9a9a-0000-4000-8000-000000000009");
	snprintf(j->entry.user_id, sizeof j->entry.user_id, "%s", USER_ID);
	snprintf(j->entry.entity_type, sizeof j->entry.entity_type, "workout");
	snprintf(j->entry.entity_id, sizeof j->entry.entity_id, "%s", WORKOUT_ID);
	snprintf(j->entry.operation, sizeof j->entry.operation, "%s",
	         op == OP_DELETE ? "delete" : "update");
	snprintf(j->entry.provider, sizeof j->entry.provider, "%s", inst->name);
	j->workout_id = strdup(WORKOUT_ID);
	j->workout_user_id = strdup(USER_ID);
	j->name = strdup("Tempo");
	j->workout_text = strdup("- 20m 85%");
	j->has_workout = 1;
	j->workout_link = op == OP_CREATE ? NULL : strdup("old-1");
	j->token.found = 1;
	j->token.access_token = strdup("agree-token-1234");
	wsync_http_client_set_responder(http, answer, &r);
	if (wsync_dispatch_prepare(j) == WSYNC_OK)
		wsync_dispatch_call(inst, &env, j);
	v.status = j->res.status;
	v.error_type = wsync_error_type(v.status);
	if (j->res.link == LINK_SET && j->res.provider_id)
		snprintf(v.provider_id, sizeof v.provider_id, "%s", j->res.provider_id);
	v.retry_after_s = j->res.retry_after_s;
	/* a delete's success drops the link; a re-create drops the old one */
	v.link_dropped = op == OP_DELETE ? j->res.link == LINK_DROP : j->res.relinked;
	v.calls = r.calls;
	wsync_job_free(j); /* frees the result and the parsed structure too */
	return v;
}

static verdict run_testhost(wsync_testhost *th, const wsync_workout_entity *w,
                            const fault *f, int op)
{
	responder r = {f, 0};
	const wsync_testhost_outcome *o;
	verdict v = {0};
	wsync_testhost_set_responder(th, th_answer, &r);
	v.status = wsync_testhost_call(th, op == OP_DELETE ? WSYNC_TESTHOST_DELETE_WORKOUT
	                               : WSYNC_TESTHOST_SYNC_WORKOUT,
	                               &(wsync_testhost_request){
	                                       .workout = w,
	                                       .workout_provider_id = op == OP_CREATE ? NULL
	                                                                              : "old-1"});
	o = wsync_testhost_result(th);
	v.error_type = o->error_type;
	/* wsyncd keeps the provider id only on success */
	if (v.status == WSYNC_OK && o->provider_id && op != OP_DELETE)
		snprintf(v.provider_id, sizeof v.provider_id, "%s", o->provider_id);
	v.retry_after_s = o->retry_after_s;
	v.link_dropped = op == OP_DELETE ? v.status == WSYNC_OK : o->recreated;
	v.calls = r.calls;
	return v;
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static wsync_plugin_instance *daemon_instance(const char *so, char *dir, wsync_config **cfg,
                                              wsync_registry **reg)
{
	char path[PATH_MAX * 2], confd[PATH_MAX + 16];
	FILE *f;
	snprintf(confd, sizeof confd, "%s/conf.d", dir);
	mkdir(confd, 0700);
	snprintf(path, sizeof path, "%s/agree.ini", confd);
	f = fopen(path, "w");
	fprintf(f, "[provider]\nplugin = helpers_fixture\nbase_url = http://127.0.0.1:9\n"
	           "allow_insecure_http = true\n");
	fclose(f);
	snprintf(path, sizeof path, "%s/wsyncd.ini", dir);
	f = fopen(path, "w");
	fprintf(f, "[database]\nconninfo = dbname=unused\n[plugins]\ndir = %.*s\nconf_dir = %s\n",
	        (int)(strrchr(so, '/') - so), so, confd);
	fclose(f);
	*cfg = wsync_config_load(path);
	if (!*cfg || !wsync_config_ok(*cfg)) {
		fprintf(stderr, "config: %s\n", *cfg ? wsync_config_errors(*cfg) : "oom");
		return NULL;
	}
	*reg = wsync_registry_load(*cfg, wsync_host_services());
	return *reg ? wsync_registry_find(*reg, "agree") : NULL;
}

int main(int argc, char **argv)
{
	char err[1024], dir[] = "/tmp/wsync-agree.XXXXXX", path[PATH_MAX * 2];
	const char *so;
	wsync_testhost *th;
	const wsync_workout_entity *w;
	wsync_plugin_instance *inst;
	wsync_config *cfg = NULL;
	wsync_registry *reg = NULL;
	wsync_http_client *http;
	int rows = 0, differ = 0;

	if (argc < 2 || !mkdtemp(dir)) {
		fprintf(stderr, "usage: test_invoke_agree HELPERS_FIXTURE_SO\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	so = sdk_stage_plugin(argv[1], "helpers_fixture");
	th = wsync_testhost_load(so, "[provider]\nbase_url = http://127.0.0.1:9\n"
	                         "allow_insecure_http = true\n", err, sizeof err);
	inst = daemon_instance(so, dir, &cfg, &reg);
	http = wsync_http_client_new();
	if (!th || !inst || !http) {
		fprintf(stderr, "load: %s\n", th ? "daemon side" : err);
		return 1;
	}
	w = wsync_testhost_workout(th, &(wsync_workout_entity){.id = WORKOUT_ID,
	                           .user_id = USER_ID, .name = "Tempo",
	                           .workout_text = "- 20m 85%"}, err, sizeof err);
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		for (int op = OP_CREATE; op <= OP_DELETE; op++) {
			verdict d = run_daemon(inst, http, &table[i], op);
			verdict t = run_testhost(th, w, &table[i], op);
			int ok = d.status == t.status && same(d.error_type, t.error_type) &&
			         !strcmp(d.provider_id, t.provider_id) &&
			         d.retry_after_s == t.retry_after_s &&
			         d.link_dropped == t.link_dropped && d.calls == t.calls;
			rows++;
			differ += !ok;
			sdk_checks++;
			sdk_failures += !ok;
			printf("%s HTTP %3ld %-6s wsyncd %d %-16s id '%s' wait %lld drop %d calls %d"
			       " | testhost %d %-16s id '%s' wait %lld drop %d calls %d\n",
			       ok ? "same" : "DIFF", table[i].status, op_names[op], d.status,
			       d.error_type ? d.error_type : "-", d.provider_id,
			       (long long)d.retry_after_s, d.link_dropped, d.calls, t.status,
			       t.error_type ? t.error_type : "-", t.provider_id,
			       (long long)t.retry_after_s, t.link_dropped, t.calls);
			/* the rows the 404 rules single out, by value */
			if (table[i].status == 404 && op == OP_DELETE)
				CHECK_INT(t.status, WSYNC_OK);
			if (table[i].status == 404 && op == OP_UPDATE) {
				CHECK_INT(t.status, WSYNC_OK);
				CHECK_STR(t.provider_id, "again");
				CHECK_INT(t.link_dropped, 1);
			}
			if (table[i].status == 404 && op == OP_CREATE)
				CHECK_STR(t.error_type, "provider_error");
			if (table[i].status == 429)
				CHECK_INT(t.retry_after_s, 7);
		}
	}
	printf("%d rows through wsyncd's dispatch and the test host, %d differ\n", rows, differ);
	wsync_testhost_free(th);
	wsync_registry_free(reg);
	wsync_config_free(cfg);
	wsync_http_client_free(http);
	snprintf(path, sizeof path, "%s/conf.d/agree.ini", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/conf.d", dir);
	rmdir(path);
	snprintf(path, sizeof path, "%s/wsyncd.ini", dir);
	unlink(path);
	rmdir(dir);
	return sdk_done();
}
