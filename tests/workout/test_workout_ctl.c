/*
 * test_workout_ctl.c -- `wsyncctl parse-workout` end to end.
 *
 * usage: test_workout_ctl WSYNCCTL [CORPUS_DIR]
 *
 * Runs the built binary on files in a temp dir: JSON output parsed back with
 * json-c, the table, stdin, the FILE:LINE:COL error and the exit statuses
 * (0 ok, 1 unreadable file, 2 usage error or invalid workout).  With a
 * corpus dir, every file in it must give 0 with valid JSON or 2.
 */
#include "testlib.h"

#include <dirent.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <unistd.h>

static const char EXAMPLE[] =
	T_SYNTAX_EXAMPLE;

static const char *ctl;
static char *dir;

static char *path_of(const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (!p)
		abort();
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Run `wsyncctl parse-workout ARGS...`; output (stdout+stderr) in *out. */
static int run(char **out, const char *a1, const char *a2, const char *a3)
{
	char *argv[] = { (char *)ctl, "parse-workout", (char *)a1, (char *)a2,
	                 (char *)a3, NULL };
	return t_run(argv, out);
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static void check_example_json(const char *out)
{
	struct json_object *o = json_tokener_parse(out), *steps, *rep;
	T_CHECK(o != NULL);
	if (!o) {
		fprintf(stderr, "output was: %s\n", out);
		return;
	}
	steps = get(o, "steps");
	T_EQ_INT(json_object_array_length(steps), 3);
	rep = json_object_array_get_idx(steps, 1);
	T_EQ_STR(json_object_get_string(get(rep, "kind")), "repeat");
	T_EQ_INT(json_object_get_int(get(rep, "repeat")), 5);
	T_EQ_STR(json_object_get_string(get(json_object_array_get_idx(
	                 get(rep, "steps"), 1), "cue")), "Recovery");
	T_EQ_INT(json_object_get_int(get(get(o, "totals"), "seconds")), 2580);
	T_EQ_INT(json_object_get_int(get(get(o, "totals"), "steps")), 12);
	json_object_put(o);
}

static void test_json_and_table(void)
{
	char *file = path_of("example.txt"), *out = NULL, cmd[1024];
	char *sh[] = { "/bin/sh", "-c", cmd, NULL };

	t_write_file(file, EXAMPLE, 0644);
	T_EQ_INT(run(&out, file, "--json", NULL), 0);
	check_example_json(out);
	free(out);

	T_EQ_INT(run(&out, "--json", file, NULL), 0); /* options in any order */
	check_example_json(out);
	free(out);

	T_EQ_INT(run(&out, file, NULL, NULL), 0);
	T_CONTAINS(out, "[Main Set]");
	T_CONTAINS(out, "ramp 50-75% FTP");
	T_CONTAINS(out, "recovery  Recovery");
	T_CONTAINS(out, "total: 43m (2580 s), 12 steps after repeats");
	free(out);

	/* stdin, by default and as "-" */
	snprintf(cmd, sizeof cmd, "'%s' parse-workout --json < '%s'", ctl, file);
	T_EQ_INT(t_run(sh, &out), 0);
	check_example_json(out);
	free(out);
	snprintf(cmd, sizeof cmd, "'%s' parse-workout - --json < '%s'", ctl, file);
	T_EQ_INT(t_run(sh, &out), 0);
	check_example_json(out);
	free(out);
	unlink(file);
	free(file);
}

static void test_crlf(void)
{
	char *file = path_of("crlf.txt"), *out = NULL;
	t_write_file(file, "Warmup\r\n- 10m ramp 50-75% 90rpm\r\n\r\n"
	                   "Main Set 5x\r\n- 3m 120% 100rpm\r\n"
	                   "- Recovery 2m Z1 85rpm\r\n\r\nCooldown\r\n- 8m 50%\r\n",
	             0644);
	T_EQ_INT(run(&out, file, "--json", NULL), 0);
	check_example_json(out);
	free(out);
	unlink(file);
	free(file);
}

static void test_errors(void)
{
	char *file = path_of("bad.txt"), *out = NULL, expect[1024];

	t_write_file(file, "Warmup\n- 10m 50%\n\n- Recov 10x\n", 0644);
	T_EQ_INT(run(&out, file, "--json", NULL), 2);
	snprintf(expect, sizeof expect, "%s:4:9: expected a duration such as "
	         "10m or 30s, found '10x'\n", file);
	T_EQ_STR(out, expect);
	free(out);
	unlink(file);

	T_EQ_INT(run(&out, file, NULL, NULL), 1); /* gone now */
	T_CONTAINS(out, "No such file or directory");
	free(out);

	T_EQ_INT(run(&out, dir, NULL, NULL), 1); /* a directory */
	T_CONTAINS(out, dir);
	free(out);

	T_EQ_INT(run(&out, "--bogus", NULL, NULL), 2);
	T_CONTAINS(out, "unknown option '--bogus'");
	T_CONTAINS(out, "usage:");
	free(out);

	T_EQ_INT(run(&out, "a.txt", "b.txt", NULL), 2);
	T_CONTAINS(out, "one FILE only");
	free(out);

	T_EQ_INT(run(&out, "--help", NULL, NULL), 0);
	T_CONTAINS(out, "usage: wsyncctl parse-workout [FILE|-] [--json]");
	free(out);
	free(file);
}

/* Every corpus file: 0 with JSON, or 2 with one FILE:LINE:COL line. */
static void test_corpus(const char *corpus)
{
	DIR *d = opendir(corpus);
	struct dirent *e;
	int files = 0;

	T_CHECK(d != NULL);
	while (d && (e = readdir(d))) {
		char path[4096], *out = NULL;
		int rc;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", corpus, e->d_name);
		rc = run(&out, "--json", path, NULL);
		files++;
		t_checks++;
		if (rc == 0) {
			struct json_object *o = json_tokener_parse(out);
			if (!o || !get(o, "totals"))
				t_fail(__FILE__, __LINE__, "%s: bad JSON: %s", path, out);
			json_object_put(o);
		} else if (rc != 2 || strncmp(out, path, strlen(path)) != 0) {
			t_fail(__FILE__, __LINE__, "%s: exit %d: %s", path, rc, out);
		}
		free(out);
	}
	if (d)
		closedir(d);
	T_CHECK(files > 0);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s WSYNCCTL [CORPUS_DIR]\n", argv[0]);
		return 2;
	}
	ctl = argv[1];
	dir = t_tempdir();
	test_json_and_table();
	test_crlf();
	test_errors();
	if (argc > 2)
		test_corpus(argv[2]);
	rmdir(dir);
	free(dir);
	return t_done();
}
