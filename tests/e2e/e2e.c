/* e2e.c -- see e2e.h.  Uses libcurl for the sandbox's control API. */
#include "e2e.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "e2e: %s\n", what);
	exit(1);
}

static const char *env_path(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "e2e: %s is not set (run through meson test)\n", name);
		exit(1);
	}
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void make_cert(e2e *t)
{
	char key[600], crt[600];
	char *argv[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
	                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
	                "-days", "1", "-keyout", key, "-out", crt, NULL};
	snprintf(key, sizeof key, "%s/key.pem", t->dir);
	snprintf(crt, sizeof crt, "%s/cert.pem", t->dir);
	if (t_run(argv, NULL) != 0)
		die("openssl could not make a test certificate");
}

static void start_sandbox(e2e *t)
{
	char port_file[600], log[600], crt[600], key[600];
	int port = 0;
	snprintf(port_file, sizeof port_file, "%s/sandbox.port", t->dir);
	snprintf(log, sizeof log, "%s/sandbox.log", t->dir);
	snprintf(crt, sizeof crt, "%s/cert.pem", t->dir);
	snprintf(key, sizeof key, "%s/key.pem", t->dir);
	if (t->tls)
		make_cert(t);
	t->sandbox_pid = fork();
	if (t->sandbox_pid == 0) {
		const char *exe = env_path("WSYNC_SANDBOX_EXE");
		if (t->tls)
			execl(exe, exe, "--port-file", port_file, "--log", log, "--tls-cert", crt,
			      "--tls-key", key, (char *)NULL);
		else
			execl(exe, exe, "--port-file", port_file, "--log", log, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && port == 0; i++) {
		FILE *f = fopen(port_file, "r");
		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (!port)
			sleep_ms(50);
	}
	if (!port)
		die("sandbox did not start");
	snprintf(t->base_url, sizeof t->base_url, "%s://127.0.0.1:%d", t->tls ? "https" : "http",
	         port);
}

e2e *e2e_start(int tls)
{
	e2e *t = calloc(1, sizeof *t);
	char path[600];
	if (!t)
		die("out of memory");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t->dir = t_tempdir();
	t->tls = tls;
	snprintf(path, sizeof path, "%s/plugins", t->dir);
	mkdir(path, 0755);
	chmod(path, 0755);
	snprintf(path, sizeof path, "%s/conf.d", t->dir);
	mkdir(path, 0755);
	t->db = t_db();
	t_migrate(t->db);
	start_sandbox(t);
	return t;
}

void e2e_stop(e2e *t)
{
	if (t->sandbox_pid > 0) {
		kill(t->sandbox_pid, SIGTERM);
		waitpid(t->sandbox_pid, NULL, 0);
	}
	PQfinish(t->db);
	free(t->dir);
	free(t);
	curl_global_cleanup();
}

void e2e_add_plugin(e2e *t, const char *so_path)
{
	char dst[700];
	const char *base = strrchr(so_path, '/');
	char *argv[] = {"/bin/cp", (char *)so_path, dst, NULL};
	snprintf(dst, sizeof dst, "%s/plugins/%s", t->dir, base ? base + 1 : so_path);
	if (t_run(argv, NULL) != 0)
		die("cannot copy plugin");
	chmod(dst, 0755);
}

/* Replace every @BASE@ and @DIR@; malloc'ed. */
static char *expand(const e2e *t, const char *body)
{
	size_t cap = strlen(body) * 4 + 1024, n = 0;
	char *out = malloc(cap);
	if (!out)
		die("out of memory");
	while (*body) {
		const char *rep = NULL;
		size_t skip = 1;
		if (!strncmp(body, "@BASE@", 6))
			rep = t->base_url, skip = 6;
		else if (!strncmp(body, "@DIR@", 5))
			rep = t->dir, skip = 5;
		if (rep) {
			size_t len = strlen(rep);
			if (n + len + 1 >= cap)
				die("config too long");
			memcpy(out + n, rep, len);
			n += len;
		} else {
			if (n + 2 >= cap)
				die("config too long");
			out[n++] = *body;
		}
		body += skip;
	}
	out[n] = 0;
	return out;
}

void e2e_instance(e2e *t, const char *name, const char *plugin, const char *body)
{
	char path[700];
	char *text = expand(t, body), *full;
	const char *p[2] = {name, plugin};
	snprintf(path, sizeof path, "%s/conf.d/%s.ini", t->dir, name);
	/* The plain-http sandbox needs the development opt-in; appended so the
	 * line numbers of `body` stay what the tests expect. */
	if (!t->tls && strstr(text, "http://") &&
	    asprintf(&full, "%s\n[provider]\nallow_insecure_http = true\n", text) > 0) {
		free(text);
		text = full;
	}
	t_write_file(path, text, 0644);
	free(text);
	t_exec(t->db, "INSERT INTO sync_providers (name, plugin) VALUES ($1, $2)"
	              " ON CONFLICT (name) DO NOTHING", 2, p);
}

const char *e2e_secret(e2e *t, const char *name, const char *content)
{
	static char path[700];
	snprintf(path, sizeof path, "%s/%s.secret", t->dir, name);
	t_write_file(path, content, 0600);
	return path;
}

const char *e2e_write_config(e2e *t)
{
	static char path[700];
	char text[4096];
	snprintf(path, sizeof path, "%s/wsyncd.ini", t->dir);
	snprintf(text, sizeof text,
	         "[database]\nconninfo = %s\n[engine]\nworkers = 2\nbatch_size = 20\n"
	         "[plugins]\ndir = plugins\nconf_dir = conf.d\n%s",
	         getenv("WSYNC_TEST_CONNINFO"), t->extra_main_ini);
	t_write_file(path, text, 0644);
	return path;
}

int e2e_wsyncd_once(e2e *t, char **out)
{
	const char *cfg = e2e_write_config(t);
	char *argv[] = {(char *)env_path("WSYNC_WSYNCD"), "-c", (char *)cfg, "--once", NULL};
	char *buf = NULL;
	int rc = t_run(argv, &buf);
	if (getenv("E2E_VERBOSE") && buf)
		fputs(buf, stderr);
	if (out)
		*out = buf;
	else
		free(buf);
	return rc;
}

struct buf {
	char *data;
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	char *grown = realloc(b->data, b->len + size * n + 1);
	if (!grown)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, p, size * n);
	b->len += size * n;
	b->data[b->len] = 0;
	return size * n;
}

int e2e_sandbox(e2e *t, const char *method, const char *path, const char *json, char **body)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct buf b = {NULL, 0};
	char url[800], crt[700];
	long status = 0;
	snprintf(url, sizeof url, "%s%s", t->base_url, path);
	snprintf(crt, sizeof crt, "%s/cert.pem", t->dir);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (t->tls)
		curl_easy_setopt(c, CURLOPT_CAINFO, crt);
	if (json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (body)
		*body = b.data ? b.data : strdup("");
	else
		free(b.data);
	return (int)status;
}

json_object *e2e_sandbox_json(e2e *t, const char *path)
{
	char *body = NULL;
	json_object *o;
	int st = e2e_sandbox(t, "GET", path, NULL, &body);
	if (st != 200)
		t_fail(__FILE__, __LINE__, "GET %s answered %d", path, st);
	o = json_tokener_parse(body ? body : "null");
	free(body);
	return o;
}

void e2e_fault(e2e *t, const char *rule_json)
{
	char *body = NULL;
	int st = e2e_sandbox(t, "POST", "/_sandbox/faults", rule_json, &body);
	t_checks++;
	if (st < 200 || st > 299)
		t_fail(__FILE__, __LINE__, "fault %s refused (%d): %s", rule_json, st, body);
	free(body);
}

static const char *one_value(e2e *t, const char *sql, int n, const char *const *p)
{
	static char out[64];
	char *s = t_query_str(t->db, sql, n, p);
	snprintf(out, sizeof out, "%s", s ? s : "");
	free(s);
	return out;
}

const char *e2e_user(e2e *t, const char *provider, const char *access_token)
{
	static char user[64];
	char rt[256];
	const char *p[3] = {provider, access_token, rt};
	snprintf(rt, sizeof rt, "rt-%s", access_token);
	snprintf(user, sizeof user, "%s",
	         one_value(t, "INSERT INTO provider_tokens (user_id, provider, access_token,"
	                      " refresh_token, expires_at, upload_workouts_enabled)"
	                      " VALUES (gen_random_uuid(), $1, $2, $3, now() + interval '1 hour', true)"
	                      " RETURNING user_id", 3, p));
	return user;
}

const char *e2e_workout(e2e *t, const char *user_id, const char *name, const char *sport,
                        const char *workout_text)
{
	static char id[64];
	const char *p[4] = {user_id, name, sport, workout_text};
	snprintf(id, sizeof id, "%s",
	         one_value(t, "INSERT INTO workouts (user_id, name, sport, workout_text)"
	                      " VALUES ($1, $2, $3, $4) RETURNING id", 4, p));
	return id;
}

const char *e2e_schedule(e2e *t, const char *user_id, const char *workout_id,
                         const char *date, const char *time)
{
	static char id[64];
	const char *p[4] = {user_id, workout_id, date, time};
	snprintf(id, sizeof id, "%s",
	         one_value(t, "INSERT INTO workouts_scheduled (user_id, workout_id,"
	                      " scheduled_date, scheduled_time) VALUES ($1, $2, $3::date, $4::time)"
	                      " RETURNING id", 4, p));
	return id;
}

char *e2e_queue_state(e2e *t, const char *entity_id, const char *provider)
{
	const char *p[2] = {entity_id, provider};
	return t_query_str(t->db,
		"SELECT CASE WHEN processed_at IS NULL THEN 'pending' ELSE 'processed' END"
		" || '|' || coalesce(error_type, '') || '|' || retry_count"
		" FROM workout_sync_queue WHERE entity_id = $1 AND provider = $2"
		" ORDER BY seq DESC LIMIT 1", 2, p);
}

char *e2e_link(e2e *t, const char *provider, const char *entity_type, const char *entity_id)
{
	const char *p[3] = {provider, entity_type, entity_id};
	char *s = t_query_str(t->db, "SELECT provider_entity_id FROM workout_sync_links"
	                             " WHERE provider = $1 AND entity_type = $2 AND entity_id = $3",
	                      3, p);
	if (s && !*s) {
		free(s);
		return NULL;
	}
	return s;
}
