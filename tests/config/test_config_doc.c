/* docs/configuration.md against the table of core keys: every key of the
 * table has a row in the doc's table of its file, with the same default,
 * and the doc has no row for a key the table does not know. */
#include "testlib.h"

#include "common/config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ROWS 64

typedef struct doc_row {
	wsync_core_key_scope scope;
	char section[64], key[64], def[128];
	int line, seen;
} doc_row;

/* Copy a table cell without the backticks and surrounding blanks. */
static void cell(const char *from, const char *to, char *out, size_t outlen)
{
	size_t n = 0;
	while (from < to && *from == ' ')
		from++;
	while (to > from && to[-1] == ' ')
		to--;
	for (; from < to && n + 1 < outlen; from++)
		if (*from != '`')
			out[n++] = *from;
	out[n] = 0;
}

/* The rows of the two key tables, by the heading above each. */
static size_t read_doc(const char *text, doc_row *rows)
{
	size_t n = 0;
	int scope = -1, line = 0;
	for (const char *p = text; *p; line++) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		if (!strncmp(p, "## ", 3))
			scope = !strncmp(p, "## wsyncd.ini", 13) ? WSYNC_SCOPE_MAIN
			      : !strncmp(p, "## conf.d/", 10) ? WSYNC_SCOPE_INSTANCE : -1;
		else if (scope >= 0 && *p == '|' && strncmp(p, "| section", 9) &&
		         strncmp(p, "|---", 4)) {
			const char *c[5] = {p};
			for (int i = 1; i < 5; i++) {
				c[i] = memchr(c[i - 1] + 1, '|', (size_t)(end - c[i - 1] - 1));
				T_CHECK(c[i] != NULL);
				if (!c[i])
					return n;
			}
			T_CHECK(n < MAX_ROWS);
			if (n >= MAX_ROWS)
				return n;
			rows[n].scope = scope;
			rows[n].line = line + 1;
			cell(c[0] + 1, c[1], rows[n].section, sizeof rows[n].section);
			cell(c[1] + 1, c[2], rows[n].key, sizeof rows[n].key);
			cell(c[2] + 1, c[3], rows[n].def, sizeof rows[n].def);
			n++;
		}
		p = eol ? eol + 1 : end;
	}
	return n;
}

/* What `wsyncd --check` prints for files that set nothing. */
static char *printed_defaults(void)
{
	char *dir = t_tempdir(), path[1024], *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	wsync_config *cfg;

	snprintf(path, sizeof path, "%s/conf.d", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/conf.d/x.ini", dir);
	t_write_file(path, "[provider]\nplugin = x\n", 0644);
	snprintf(path, sizeof path, "%s/wsyncd.ini", dir);
	t_write_file(path, "[database]\nconninfo = dbname=x\n", 0644);
	cfg = wsync_config_load(path);
	wsync_config_print(cfg, f);
	wsync_config_free(cfg);
	/* The instance, from a conf_dir that exists. */
	t_write_file(path, "[database]\nconninfo = dbname=x\n[plugins]\nconf_dir = conf.d\n", 0644);
	cfg = wsync_config_load(path);
	T_CHECK(wsync_config_ok(cfg));
	wsync_config_print(cfg, f);
	wsync_config_free(cfg);
	fclose(f);
	free(dir);
	return out;
}

int main(void)
{
	char path[1024];
	doc_row rows[MAX_ROWS];
	size_t n_keys, n_rows;
	const wsync_core_key *keys = wsync_core_keys(&n_keys);
	char *doc;

	const char *root = getenv("WSYNC_SOURCE_ROOT");
	char *printed = printed_defaults();

	snprintf(path, sizeof path, "%s/docs/configuration.md", root ? root : ".");
	doc = t_read_file(path);
	T_CHECK(*doc);
	n_rows = read_doc(doc, rows);
	T_CHECK(n_keys >= 20);

	for (size_t i = 0; i < n_keys; i++) {
		const wsync_core_key *k = &keys[i];
		doc_row *r = NULL;
		for (size_t j = 0; j < n_rows && !r; j++)
			if (rows[j].scope == k->scope && !strcmp(rows[j].section, k->section) &&
			    !strcmp(rows[j].key, k->key))
				r = &rows[j];
		if (!r) {
			t_fail(__FILE__, __LINE__, "docs/configuration.md: no row for [%s] %s "
			       "in the table of %s", k->section, k->key,
			       k->scope == WSYNC_SCOPE_MAIN ? "wsyncd.ini" : "conf.d");
			continue;
		}
		r->seen = 1;
		/* The default is one the parser takes: it is what is printed. */
		if (k->def) {
			char want[600];
			snprintf(want, sizeof want, "\n%s = %s\n", k->key, k->def);
			T_CONTAINS(printed, want);
		}
		if (strcmp(r->def, wsync_core_key_shown_default(k)))
			t_fail(__FILE__, __LINE__, "docs/configuration.md:%d: [%s] %s: the doc "
			       "says default '%s', the code '%s'", r->line, k->section, k->key,
			       r->def, wsync_core_key_shown_default(k));
		T_CHECK(k->help && *k->help);
	}
	for (size_t j = 0; j < n_rows; j++)
		if (!rows[j].seen)
			t_fail(__FILE__, __LINE__, "docs/configuration.md:%d: [%s] %s is not a "
			       "core key (see rows[] in core/common/config.c)", rows[j].line,
			       rows[j].section, rows[j].key);
	free(doc);
	free(printed);
	return t_done();
}
