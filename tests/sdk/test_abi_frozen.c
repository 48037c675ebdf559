/*
 * test_abi_frozen.c -- ABI stability through the test host:
 *   - frozen_v1.so, built against the frozen ABI 1.0 headers
 *     (tests/sdk/abi_v1_0), loads and works in this wsync;
 *   - with "current-headers", FROZEN_V1_SO is the same 1.0 source compiled
 *     against the current headers: it builds and works the same, declaring
 *     this minor (test abi-frozen-v1-source);
 *   - a plugin declaring a newer minor than this host, a newer major, or
 *     only a newer entry symbol is refused with both versions named.
 *
 * usage: test_abi_frozen FROZEN_V1_SO NEXT_MINOR_SO FIXTURE_DIR [current-headers]
 */
#include "sdk_test.h"

#include "mock_server.h"

#define WORKOUT_TEXT "Warmup\n- 10m ramp 50-75% 90rpm\n\nMain Set 5x\n- 3m 120% 100rpm\n" \
                     "- Recovery 2m Z1 85rpm\n\nCooldown\n- 8m 50%\n"

static char secret_path[256];

static void write_secret(void)
{
	const char *tmp = getenv("TMPDIR");
	FILE *f;
	int fd;
	snprintf(secret_path, sizeof secret_path, "%s/wsync-frozen-key.XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(secret_path);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		perror("mkstemp");
		exit(1);
	}
	fputs("s3cret\n", f);
	fclose(f);
	chmod(secret_path, 0600);
}

static const char *answer(const char *status_line, const char *headers, const char *body)
{
	static char buf[1024];
	snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n%s",
	         status_line, headers, strlen(body), body);
	return buf;
}

static void frozen_works(const char *so, int minor)
{
	mock_server *m = mock_start();
	char ini[1024], err[1024] = "", expect[512];
	const wsync_workout_entity *w;
	const wsync_scheduled_entity *s;
	const wsync_testhost_outcome *r;
	const wsync_testhost_http *h;
	const wsync_plugin *d;
	wsync_testhost *th;
	char *head;

	snprintf(ini, sizeof ini, "[provider]\nplugin = frozen_v1\nbase_url = http://127.0.0.1:%d\n"
	         "allow_insecure_http = true\n[frozen]\nlabel = L1\nloud = yes\napi_key_file = %s\n", mock_port(m), secret_path);
	th = wsync_testhost_load(so, ini, err, sizeof err);
	CHECK(th != NULL);
	if (!th) {
		fprintf(stderr, "%s\n", err);
		mock_stop(m);
		return;
	}
	d = wsync_testhost_plugin(th);
	CHECK_STR(d->name, "frozen_v1");
	CHECK_INT(d->abi_major, 1);
	CHECK_INT(d->abi_minor, minor);
	CHECK_INT(d->struct_size, 104);
	CHECK_INT(d->flags, WSYNC_PLUGIN_SERIAL);

	/* init saw every config type and host field; every level recorded. */
	snprintf(expect, sizeof expect, "ABI %d.%d, label L1, count 7, loud 1, key 6 bytes",
	         WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR);
	CHECK(wsync_testhost_log_find(th, expect) != NULL);
	CHECK_INT(wsync_testhost_log_count(th), 4);
	CHECK_INT(wsync_testhost_log_at(th, 1)->level, WSYNC_LOG_DEBUG);
	CHECK_INT(wsync_testhost_log_at(th, 2)->level, WSYNC_LOG_WARNING);
	CHECK_INT(wsync_testhost_log_at(th, 3)->level, WSYNC_LOG_ERROR);
	CHECK(wsync_testhost_log_find(th, "s3cret") == NULL);

	/* The workout model, read through the frozen header's helpers. */
	wsync_testhost_set_clock(1800000000);
	w = wsync_testhost_workout(th, &(wsync_workout_entity){.id = "w-1", .name = "Over-unders",
	                           .sport = "bike", .workout_text = WORKOUT_TEXT}, err, sizeof err);
	CHECK(w != NULL);
	CHECK_INT(w->updated_at, 1800000000);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_WORKOUT,
	                              &(wsync_testhost_request){.workout = w}), WSYNC_OK);
	wsync_testhost_set_clock(0);
	CHECK_STR(wsync_testhost_result(th)->provider_id, "frozen-w-1");
	CHECK(wsync_testhost_log_find(th, "frozen workout Over-unders (bike, with text) op 0: "
	                              "5 entries, 3 top-level, 1 repeats, 12 steps, 2580 s; "
	                              "first warmup Warmup 50-75; name64 T3Zlci11bmRlcnM=; "
	                              "now>0 1") != NULL);

	/* HTTP with a body and a header, from a frozen wsync_http_request. */
	s = wsync_testhost_scheduled(th, &(wsync_scheduled_entity){.id = "s-1",
	                             .scheduled_date = "2026-12-01", .scheduled_time = "07:30:00"},
	                             w, err, sizeof err);
	mock_set_str(m, answer("200 OK", "", "S1"), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.workout = w, .scheduled = s,
	                                    .workout_provider_id = "frozen-w-1"}), WSYNC_OK);
	CHECK_STR(wsync_testhost_result(th)->provider_id, "frozen-s-S1");
	h = wsync_testhost_http_at(th, 0);
	CHECK(h != NULL);
	if (h) {
		CHECK_STR(h->method, "PUT");
		CHECK_STR(h->body, "2026-12-01 07:30:00 w-1 frozen-w-1");
		CHECK_STR(wsync_testhost_http_header(h, "Content-Type"), "text/plain");
		CHECK_STR(wsync_testhost_http_header(h, "X-Frozen-Label"), "L1");
		CHECK_STR(wsync_testhost_http_header(h, "Authorization"), "Bearer *****");
	}
	head = mock_last_head(m);
	CHECK_HAS(head, "PUT /schedule HTTP/1.1");
	CHECK_HAS(head, "X-Frozen-Label: L1");
	free(head);
	CHECK(wsync_testhost_log_find(th, "frozen schedule s-1: HTTP 200, 2 bytes, retry after 0, "
	                              "status 0") != NULL);

	/* The response struct's retry-after, through the frozen layout. */
	mock_set_str(m, answer("429 Too Many Requests", "Retry-After: 30\r\n", ""), MOCK_KEEP);
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_SYNC_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.workout = w, .scheduled = s}), WSYNC_E_RATE_LIMIT);
	CHECK_INT(wsync_testhost_result(th)->retry_after_s, 30);
	CHECK(wsync_testhost_log_find(th, "HTTP 429, 0 bytes, retry after 30, status 3") != NULL);

	/* set_error with a retry-after; a bare status gets the host's message. */
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_WORKOUT,
	          &(wsync_testhost_request){.workout_provider_id = "p1", .attempt = 2}),
	          WSYNC_E_RATE_LIMIT);
	r = wsync_testhost_result(th);
	CHECK_INT(r->retry_after_s, 42);
	CHECK_STR(r->message, "frozen: slow down (p1, attempt 2)");
	/* NOT_FOUND from a delete is success, as wsyncd counts it */
	CHECK_INT(wsync_testhost_call(th, WSYNC_TESTHOST_DELETE_SCHEDULED_WORKOUT,
	          &(wsync_testhost_request){.scheduled_provider_id = "p2"}), WSYNC_OK);
	CHECK_INT(wsync_testhost_result(th)->called, 1);
	wsync_testhost_free(th);
	mock_stop(m);

	/* Its schema is enforced: the required key. */
	CHECK(wsync_testhost_load(so, "[frozen]\ncount = 3\n", err, sizeof err) == NULL);
	CHECK_HAS(err, "[frozen] label: missing required key of plugin frozen_v1");
	CHECK(wsync_testhost_load(so, "[frozen]\nlabel = x\nloud = maybe\n", err, sizeof err) == NULL);
	CHECK_HAS(err, "frozen_v1.ini:3: [frozen] loud 'maybe': expected true or false");
}

static void newer_refused(const char *next_minor, const char *fixture_dir)
{
	char err[1024] = "", expect[256], path[512];
	const char *so;

	/* abi_minor = WSYNC_PLUGIN_ABI_MINOR + 1: refused, both versions named. */
	CHECK(wsync_testhost_load(next_minor, NULL, err, sizeof err) == NULL);
	snprintf(expect, sizeof expect, "next_minor.so: built for plugin ABI %d.%d, this wsyncd "
	         "speaks ABI %d.%d; upgrade wsyncd or rebuild the plugin against wsync-plugin %d.%d",
	         WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR + 1, WSYNC_PLUGIN_ABI_MAJOR,
	         WSYNC_PLUGIN_ABI_MINOR, WSYNC_PLUGIN_ABI_MAJOR, WSYNC_PLUGIN_ABI_MINOR);
	CHECK_HAS(err, expect);

	snprintf(path, sizeof path, "%s/abi2.so", fixture_dir);
	so = sdk_stage_plugin(path, "abi2");
	CHECK(wsync_testhost_load(so, NULL, err, sizeof err) == NULL);
	snprintf(expect, sizeof expect, "abi2.so: built for plugin ABI 2.%d, this wsyncd "
	         "speaks ABI 1.%d; rebuild it against wsync-plugin 1.%d",
	         WSYNC_PLUGIN_ABI_MINOR, WSYNC_PLUGIN_ABI_MINOR, WSYNC_PLUGIN_ABI_MINOR);
	CHECK_HAS(err, expect);

	snprintf(path, sizeof path, "%s/entry_v2.so", fixture_dir);
	so = sdk_stage_plugin(path, "entry_v2");
	CHECK(wsync_testhost_load(so, NULL, err, sizeof err) == NULL);
	CHECK_HAS(err, "entry_v2.so: exports wsync_plugin_v2 but not wsync_plugin_v1: built for "
	          "plugin ABI 2");

	snprintf(path, sizeof path, "%s/init_fails.so", fixture_dir);
	so = sdk_stage_plugin(path, "init_fails");
	CHECK(wsync_testhost_load(so, NULL, err, sizeof err) == NULL);
	CHECK_HAS(err, "init_fails.so: init() of plugin init_fails failed");
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: test_abi_frozen FROZEN_V1_SO NEXT_MINOR_SO FIXTURE_DIR\n");
		return 2;
	}
	write_secret();
	/* "current-headers": argv[1] is the 1.0 source built against the
	 * current headers; it must work the same, declaring this minor. */
	frozen_works(sdk_stage_plugin(argv[1], "frozen_v1"),
	             argc > 4 && !strcmp(argv[4], "current-headers") ? WSYNC_PLUGIN_ABI_MINOR : 0);
	newer_refused(sdk_stage_plugin(argv[2], "next_minor"), argv[3]);
	unlink(secret_path);
	return sdk_done();
}
