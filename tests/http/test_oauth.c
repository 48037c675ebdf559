/*
 * test_oauth.c -- core/host/oauth.c against a real PostgreSQL (run under
 * tests/pg_harness.sh) and a scripted token endpoint on 127.0.0.1.
 */
#include "mock_server.h"
#include "host/oauth.h"
#include "testlib.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>

#define NOW 2000000000LL
#define USER "11111111-1111-1111-1111-111111111111"
#define SECRET "s3cr/et+&=\n"   /* as read from a file, newline included */

static const char granted[] =
	"{\"access_token\":\"new-access\",\"refresh_token\":\"new-refresh\","
	"\"expires_in\":7200,\"token_type\":\"Bearer\",\"scope\":\"plans_write\"}";

static mock_server *srv;
static char token_url[96];

static wsync_provider_config provider(void)
{
	wsync_provider_config p = {
		.name = "wahoo",
		.path = "/etc/wsync/conf.d/wahoo.ini",
		.token_url = token_url,
		.client_id = "client 1",
		.client_secret = SECRET,
		.connect_timeout_s = 2,
		.timeout_s = 5,
	};
	return p;
}

static void answer(const char *status_line, const char *body, int delay_ms)
{
	char raw[1024];
	int n = snprintf(raw, sizeof raw,
	                 "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\n\r\n%s",
	                 status_line, strlen(body), body);
	mock_set(srv, raw, (size_t)n, delay_ms, MOCK_KEEP);
}

/* A fresh row for `user`: expired token "old-access" / "old-refresh". */
static void seed(PGconn *db, const char *user, const char *access, const char *refresh)
{
	const char *params[3] = {user, access, refresh};
	t_exec(db, "DELETE FROM provider_tokens WHERE user_id = $1", 1, params);
	t_exec(db,
	       "INSERT INTO provider_tokens (user_id, provider, access_token, "
	       "refresh_token, expires_at, updated_at) VALUES ($1, 'wahoo', $2, $3, "
	       "to_timestamp(1000), '2001-01-01')",
	       3, params);
}

static char *row(PGconn *db, const char *user)
{
	const char *params[1] = {user};
	return t_query_str(db,
	                   "SELECT concat_ws('|', coalesce(access_token, ''), "
	                   "coalesce(refresh_token, ''), "
	                   "coalesce(extract(epoch FROM expires_at)::bigint::text, ''), "
	                   "needs_reconnect, "
	                   "updated_at > '2001-01-01') FROM provider_tokens "
	                   "WHERE user_id = $1 AND provider = 'wahoo'",
	                   1, params);
}

static void check_no_secrets(const char *msg)
{
	T_CHECK(strstr(msg, "old-refresh") == NULL);
	T_CHECK(strstr(msg, "new-refresh") == NULL);
	T_CHECK(strstr(msg, "old-access") == NULL);
	T_CHECK(strstr(msg, "s3cr") == NULL);
}

static void test_load(PGconn *db)
{
	wsync_token t;
	char err[256];

	seed(db, USER, "old-access", "old-refresh");
	T_EQ_INT(wsync_token_load(db, USER, "wahoo", &t, err, sizeof err), 0);
	T_EQ_INT(t.found, 1);
	T_EQ_STR(t.access_token, "old-access");
	T_EQ_STR(t.refresh_token, "old-refresh");
	T_EQ_INT(t.expires_at, 1000);
	T_EQ_INT(t.enabled, 1);
	T_EQ_INT(t.needs_reconnect, 0);
	wsync_token_clear(&t);
	T_CHECK(t.access_token == NULL && t.found == 0);

	T_EQ_INT(wsync_token_load(db, USER, "garmin", &t, err, sizeof err), 0);
	T_EQ_INT(t.found, 0);
	T_CHECK(t.access_token == NULL);
	wsync_token_clear(&t);

	/* NULL expiry: 0 ("never expires"). */
	t_exec(db, "UPDATE provider_tokens SET expires_at = NULL, "
	           "upload_workouts_enabled = false", 0, NULL);
	T_EQ_INT(wsync_token_load(db, USER, "wahoo", &t, err, sizeof err), 0);
	T_EQ_INT(t.expires_at, 0);
	T_EQ_INT(t.enabled, 0);
	wsync_token_clear(&t);

	T_EQ_INT(wsync_token_load(db, "not-a-uuid", "wahoo", &t, err, sizeof err), -1);
	T_CONTAINS(err, "uuid");
}

static void test_success(PGconn *db, wsync_http_client *http)
{
	wsync_provider_config p = provider();
	wsync_token t = {0};
	char msg[512], *r, *head, *body;
	int before = mock_requests(srv);

	seed(db, USER, "old-access", "old-refresh");
	answer("200 OK", granted, 0);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_OK);
	T_EQ_INT(mock_requests(srv) - before, 1);
	T_EQ_STR(t.access_token, "new-access");
	T_EQ_STR(t.refresh_token, "new-refresh");
	T_EQ_INT(t.expires_at, NOW + 7200);
	T_EQ_INT(t.found, 1);
	r = row(db, USER);
	T_EQ_STR(r, "new-access|new-refresh|2000007200|f|t");
	free(r);
	T_EQ_INT(PQtransactionStatus(db), PQTRANS_IDLE);

	/* What the endpoint saw: a form post, the secret without its newline. */
	head = mock_last_head(srv);
	body = mock_last_body(srv, NULL);
	T_CHECK(strncmp(head, "POST /oauth/token HTTP/1.1\r\n", 28) == 0);
	T_CONTAINS(head, "\r\nContent-Type: application/x-www-form-urlencoded\r\n");
	T_CONTAINS(head, "\r\nUser-Agent: wsync/");
	T_CONTAINS(head, "\r\nAccept: application/json\r\n");
	T_CHECK(strstr(head, "Authorization") == NULL);
	T_EQ_STR(body, "grant_type=refresh_token&refresh_token=old-refresh"
	               "&client_id=client%201&client_secret=s3cr%2Fet%2B%26%3D");
	free(head);
	free(body);
	wsync_token_clear(&t);

	/* No refresh_token in the answer: the stored one is kept; expires_in
	 * as a string; no expires_in at all means "unknown". */
	seed(db, USER, "old-access", "old-refresh");
	answer("200 OK", "{\"access_token\":\"a2\",\"expires_in\":\"600\"}", 0);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_OK);
	T_EQ_STR(t.refresh_token, "old-refresh");
	T_EQ_INT(t.expires_at, NOW + 600);
	r = row(db, USER);
	T_EQ_STR(r, "a2|old-refresh|2000000600|f|t");
	free(r);

	/* stale_access may point into *t itself. */
	answer("200 OK", "{\"access_token\":\"a3\",\"refresh_token\":\"r3\"}", 0);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, t.access_token, &t, msg, sizeof msg,
	                             NOW + 7000),
	         WSYNC_OK);
	T_EQ_STR(t.access_token, "a3");
	T_EQ_INT(t.expires_at, 0);
	r = row(db, USER);
	T_EQ_STR(r, "a3|r3||f|t");
	free(r);
	wsync_token_clear(&t);
}

static void test_already_refreshed(PGconn *db, wsync_http_client *http)
{
	const char *params[1] = {USER};
	wsync_provider_config p = provider();
	wsync_token t = {0};
	char msg[512];
	int before;

	seed(db, USER, "newer-access", "newer-refresh");
	t_exec(db, "UPDATE provider_tokens SET expires_at = to_timestamp(2000003600) "
	           "WHERE user_id = $1", 1, params);
	before = mock_requests(srv);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_OK);
	T_EQ_INT(mock_requests(srv), before);
	T_EQ_STR(t.access_token, "newer-access");
	T_EQ_INT(t.expires_at, 2000003600);
	wsync_token_clear(&t);

	/* The same token the caller saw fail (a 401 before expiry): refresh. */
	answer("200 OK", granted, 0);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "newer-access", &t, msg, sizeof msg,
	                             NOW),
	         WSYNC_OK);
	T_EQ_INT(mock_requests(srv), before + 1);
	T_EQ_STR(t.access_token, "new-access");
	wsync_token_clear(&t);

	/* A different one that has expired meanwhile: refresh as well. */
	seed(db, USER, "other-access", "old-refresh");
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_OK);
	T_EQ_INT(mock_requests(srv), before + 2);
	wsync_token_clear(&t);
}

static void test_refused(PGconn *db, wsync_http_client *http)
{
	static const char *const bodies[] = {
		"{\"error\":\"invalid_grant\",\"error_description\":\"old-refresh revoked\"}",
		"",     /* Wahoo's opaque 400 */
		"<html>no</html>",
	};
	wsync_provider_config p = provider();
	wsync_token t = {0};
	char msg[512], *r;

	for (size_t i = 0; i < 3; i++) {
		seed(db, USER, "old-access", "old-refresh");
		answer(i == 2 ? "401 Unauthorized" : "400 Bad Request", bodies[i], 0);
		T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg,
		                             sizeof msg, NOW),
		         WSYNC_E_AUTH);
		T_CONTAINS(msg, "must reconnect");
		check_no_secrets(msg);
		T_CHECK(t.access_token == NULL);
		r = row(db, USER);
		T_EQ_STR(r, "old-access|old-refresh|1000|t|t");
		free(r);
		T_EQ_INT(PQtransactionStatus(db), PQTRANS_IDLE);
	}
	T_CONTAINS(msg, "HTTP 401");

	/* invalid_client is the operator's problem: no user is flagged. */
	seed(db, USER, "old-access", "old-refresh");
	answer("401 Unauthorized", "{\"error\":\"invalid_client\"}", 0);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_E_UNEXPECTED);
	T_CONTAINS(msg, "client_secret_file");
	check_no_secrets(msg);
	r = row(db, USER);
	T_EQ_STR(r, "old-access|old-refresh|1000|f|f");
	free(r);

	/* A successful refresh clears the flag again. */
	t_exec(db, "UPDATE provider_tokens SET needs_reconnect = true", 0, NULL);
	answer("200 OK", granted, 0);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_OK);
	r = row(db, USER);
	T_EQ_STR(r, "new-access|new-refresh|2000007200|f|t");
	free(r);
	wsync_token_clear(&t);
}

static void test_transient(PGconn *db, wsync_http_client *http)
{
	wsync_provider_config p = provider();
	wsync_token t = {0};
	char msg[512], *r, dead_url[96];
	static const char *const cases[][2] = {
		{"503 Service Unavailable", "{\"error\":\"maintenance\"}"},
		{"500 Internal Server Error", ""},
		{"429 Too Many Requests", ""},
		{"200 OK", "{\"access_token\": "},             /* malformed */
		{"200 OK", "{\"token_type\":\"Bearer\"}"},     /* no access_token */
		{"200 OK", "{\"access_token\":\"bad\\r\\ntoken\"}"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		seed(db, USER, "old-access", "old-refresh");
		answer(cases[i][0], cases[i][1], 0);
		T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg,
		                             sizeof msg, NOW),
		         WSYNC_E_PROVIDER);
		check_no_secrets(msg);
		r = row(db, USER);
		T_EQ_STR(r, "old-access|old-refresh|1000|f|f");   /* untouched */
		free(r);
		T_EQ_INT(PQtransactionStatus(db), PQTRANS_IDLE);
	}

	/* Nobody listening; then an answer slower than the timeout. */
	snprintf(dead_url, sizeof dead_url, "http://127.0.0.1:1/oauth/token");
	p.token_url = dead_url;
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_E_PROVIDER);
	T_CONTAINS(msg, "curl error 7");
	p = provider();
	p.timeout_s = 1;
	answer("200 OK", granted, 2500);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_E_PROVIDER);
	T_CONTAINS(msg, "curl error 28");
	r = row(db, USER);
	T_EQ_STR(r, "old-access|old-refresh|1000|f|f");
	free(r);
	T_CHECK(t.access_token == NULL);
}

static void test_cannot_refresh(PGconn *db, wsync_http_client *http)
{
	const char *params[1] = {USER};
	wsync_provider_config p = provider();
	wsync_token t = {0};
	char msg[512], *r;
	int before = mock_requests(srv);

	/* No token_url: the provider offers no refresh, so only the user can
	 * fix it; the row is left to the engine, which flags every final
	 * auth_error (tests/e2e/test_auth_secrets.c). */
	seed(db, USER, "old-access", "old-refresh");
	p.token_url = NULL;
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_E_AUTH);
	T_CONTAINS(msg, "token_url");
	T_CONTAINS(msg, "the user must reconnect");
	r = row(db, USER);
	T_EQ_STR(r, "old-access|old-refresh|1000|f|f");
	free(r);

	/* No refresh token stored: the user must reconnect. */
	p = provider();
	t_exec(db, "UPDATE provider_tokens SET refresh_token = NULL WHERE user_id = $1", 1,
	       params);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_E_AUTH);
	T_CONTAINS(msg, "must reconnect");
	r = row(db, USER);
	T_EQ_STR(r, "old-access||1000|t|t");
	free(r);

	/* No row at all. */
	t_exec(db, "DELETE FROM provider_tokens WHERE user_id = $1", 1, params);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_E_AUTH);
	T_EQ_INT(mock_requests(srv), before);

	/* Inside a caller's transaction: refused, nothing done. */
	seed(db, USER, "old-access", "old-refresh");
	t_exec(db, "BEGIN", 0, NULL);
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, msg, sizeof msg, NOW),
	         WSYNC_E_UNEXPECTED);
	t_exec(db, "ROLLBACK", 0, NULL);
	T_EQ_INT(mock_requests(srv), before);

	/* A database error (not a uuid) is unexpected_error, connection idle. */
	T_EQ_INT(wsync_oauth_refresh(db, http, &p, "nope", "old-access", &t, msg, sizeof msg,
	                             NOW),
	         WSYNC_E_UNEXPECTED);
	T_CONTAINS(msg, "uuid");
	T_EQ_INT(PQtransactionStatus(db), PQTRANS_IDLE);
	T_CHECK(t.access_token == NULL);
}

/* ---- four workers refreshing the same user at once ---- */

#define WORKERS 4

typedef struct worker {
	pthread_t thread;
	pthread_barrier_t *start;
	int32_t status;
	char access[64];
	char msg[512];
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	PGconn *db = t_db();
	wsync_http_client *http = wsync_http_client_new();
	wsync_provider_config p = provider();
	wsync_token t = {0};

	pthread_barrier_wait(w->start);
	w->status = wsync_oauth_refresh(db, http, &p, USER, "old-access", &t, w->msg,
	                                sizeof w->msg, NOW);
	snprintf(w->access, sizeof w->access, "%s", t.access_token ? t.access_token : "");
	wsync_token_clear(&t);
	wsync_http_client_free(http);
	PQfinish(db);
	return NULL;
}

static void test_concurrent(PGconn *db)
{
	pthread_barrier_t start;
	worker w[WORKERS];
	char *r;
	int before;

	seed(db, USER, "old-access", "old-refresh");
	/* Slow enough that all four are waiting while the first one calls. */
	answer("200 OK", granted, 300);
	before = mock_requests(srv);
	pthread_barrier_init(&start, NULL, WORKERS);
	for (int i = 0; i < WORKERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].start = &start;
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < WORKERS; i++)
		pthread_join(w[i].thread, NULL);
	pthread_barrier_destroy(&start);

	T_EQ_INT(mock_requests(srv) - before, 1);
	for (int i = 0; i < WORKERS; i++) {
		T_EQ_INT(w[i].status, WSYNC_OK);
		T_EQ_STR(w[i].access, "new-access");
	}
	r = row(db, USER);
	T_EQ_STR(r, "new-access|new-refresh|2000007200|f|t");
	free(r);
}

int main(void)
{
	PGconn *db;
	wsync_http_client *http;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	setenv("NO_PROXY", "*", 1);
	setenv("no_proxy", "*", 1);
	db = t_db();
	t_migrate(db);
	srv = mock_start();
	snprintf(token_url, sizeof token_url, "http://127.0.0.1:%d/oauth/token",
	         mock_port(srv));
	http = wsync_http_client_new();

	test_load(db);
	test_success(db, http);
	test_already_refreshed(db, http);
	test_refused(db, http);
	test_transient(db, http);
	test_cannot_refresh(db, http);
	test_concurrent(db);

	wsync_http_client_free(http);
	mock_stop(srv);
	PQfinish(db);
	curl_global_cleanup();
	return t_done();
}
