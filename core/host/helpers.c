/*
 * helpers.c -- the ABI 1.1 host services that spare every plugin its own
 * copy of the same plumbing: a JSON body writer, reading a member of an
 * answer (numbers as their decimal text), one path segment escaped, a
 * one-line UTF-8 excerpt.  What they hand out belongs to the call and is
 * freed by wsync_call_clean(), so a plugin frees nothing.
 */
#include "host.h"
#include "host/http/internal.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory the call owns ---------------------------------------------- */

typedef struct wsync_call_owned {
	void *p;
	void (*release)(void *p);
	struct wsync_call_owned *next;
} call_owned;

/* Hand `p` to the call; on failure release it now and return NULL. */
static void *own(wsync_call *call, void *p, void (*release)(void *))
{
	call_owned *o;
	if (!p)
		return NULL;
	if (!(o = malloc(sizeof *o))) {
		release(p);
		return NULL;
	}
	*o = (call_owned){p, release, call->owned};
	call->owned = o;
	return p;
}

void wsync_call_free_owned(wsync_call *call)
{
	while (call->owned) {
		call_owned *o = call->owned;
		call->owned = o->next;
		o->release(o->p);
		free(o);
	}
}

/* ---- messages ------------------------------------------------------------ */

void wsync_clean_message(char *s, size_t size)
{
	size_t len = strnlen(s, size), cap = len + 6;
	char tmp[2048];
	char *out = cap <= sizeof tmp ? tmp : malloc(cap);
	if (!out)
		return;
	wsync_http_body_excerpt(s, len, len, out, cap);
	snprintf(s, size, "%s", out);
	if (out != tmp)
		free(out);
}

static const char *host_excerpt(wsync_call *call, const char *text, size_t len, size_t max)
{
	char *out;
	if (!text)
		len = 0;
	if (max > len)
		max = len;
	if (!(out = own(call, malloc(max + 6), free)))
		return NULL;
	wsync_http_body_excerpt(text ? text : "", len, max, out, max + 6);
	return out;
}

static const char *host_path_segment(wsync_call *call, const char *s)
{
	/* "." and ".." are unreserved characters but dot-segments: a URL
	 * normaliser would climb the path with them. */
	if (s && (!strcmp(s, ".") || !strcmp(s, "..")))
		return s[1] ? "%2E%2E" : "%2E";
	return own(call, wsync_url_encode(s ? s : ""), free);
}

/* ---- JSON writer ----------------------------------------------------------- */

#define JSON_DEPTH 32

struct wsync_json {
	char *buf;
	size_t len, cap;
	int depth;                 /* open containers; 0 after json_end */
	unsigned char array[JSON_DEPTH];
	unsigned char used[JSON_DEPTH]; /* a member was written at that level */
	int failed;                /* out of memory, or nesting too deep */
};

static void json_release(void *p)
{
	wsync_json *j = p;
	free(j->buf);
	free(j);
}

static void put(wsync_json *j, const char *s, size_t n)
{
	if (j->failed)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 256;
		char *b;
		while (cap < j->len + n + 1)
			cap *= 2;
		if (!(b = realloc(j->buf, cap))) {
			j->failed = 1;
			return;
		}
		j->buf = b;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = 0;
}

static void puts_(wsync_json *j, const char *s)
{
	put(j, s, strlen(s));
}

/* A JSON string: RFC 8259 escapes; invalid UTF-8 becomes U+FFFD. */
static void put_string(wsync_json *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;
	put(j, "\"", 1);
	while (i < n) {
		size_t k = wsync_utf8_len(p + i, n - i);
		char esc[8];
		if (k == 0) {
			puts_(j, "\xEF\xBF\xBD");
			i++;
		} else if (k > 1) {
			put(j, s + i, k);
			i += k;
		} else {
			if (p[i] == '"' || p[i] == '\\') {
				esc[0] = '\\';
				esc[1] = (char)p[i];
				put(j, esc, 2);
			} else if (p[i] < 0x20) {
				snprintf(esc, sizeof esc, "\\u%04x", p[i]);
				puts_(j, esc);
			} else {
				put(j, s + i, 1);
			}
			i++;
		}
	}
	put(j, "\"", 1);
}

/* Separator and key before a value at the current level. */
static int member(wsync_json *j, const char *key)
{
	if (j->failed || j->depth == 0)
		return -1;
	if (j->used[j->depth - 1])
		put(j, ",", 1);
	j->used[j->depth - 1] = 1;
	if (!j->array[j->depth - 1]) {
		put_string(j, key ? key : "");
		put(j, ":", 1);
	}
	return 0;
}

static void open_level(wsync_json *j, int array)
{
	if (j->depth >= JSON_DEPTH) {
		j->failed = 1;
		return;
	}
	put(j, array ? "[" : "{", 1);
	j->array[j->depth] = (unsigned char)array;
	j->used[j->depth] = 0;
	j->depth++;
}

static wsync_json *host_json_begin(wsync_call *call)
{
	wsync_json *j = own(call, calloc(1, sizeof(wsync_json)), json_release);
	if (j)
		open_level(j, 0);
	return j;
}

static void host_json_string(wsync_json *j, const char *key, const char *value)
{
	if (!j || member(j, key) < 0)
		return;
	if (value)
		put_string(j, value);
	else
		puts_(j, "null");
}

static void host_json_int(wsync_json *j, const char *key, int64_t value)
{
	char num[32];
	if (!j || member(j, key) < 0)
		return;
	snprintf(num, sizeof num, "%lld", (long long)value);
	puts_(j, num);
}

static void host_json_number(wsync_json *j, const char *key, double value)
{
	char num[40];
	if (!j || member(j, key) < 0)
		return;
	if (!isfinite(value)) {
		puts_(j, "null");
		return;
	}
	/* The shortest of %.15g / %.17g that reads back as the same value. */
	snprintf(num, sizeof num, "%.15g", value);
	if (strtod(num, NULL) != value)
		snprintf(num, sizeof num, "%.17g", value);
	puts_(j, num);
}

static void host_json_bool(wsync_json *j, const char *key, int32_t value)
{
	if (j && member(j, key) == 0)
		puts_(j, value ? "true" : "false");
}

static void host_json_open(wsync_json *j, const char *key, int32_t array)
{
	if (j && member(j, key) == 0)
		open_level(j, array != 0);
}

static void host_json_close(wsync_json *j)
{
	if (!j || j->failed || j->depth <= 1)
		return; /* the top-level object ends in json_end */
	j->depth--;
	put(j, j->array[j->depth] ? "]" : "}", 1);
}

static const char *host_json_end(wsync_json *j, size_t *len)
{
	if (!j)
		return NULL;
	while (!j->failed && j->depth > 0) {
		j->depth--;
		put(j, j->array[j->depth] ? "]" : "}", 1);
	}
	if (len)
		*len = j->failed ? 0 : j->len;
	return j->failed ? NULL : j->buf;
}

/* ---- JSON reading ---------------------------------------------------------- */

static void doc_release(void *p)
{
	json_object_put(p);
}

/* The parsed text, kept by the call: strings returned point into it. */
static json_object *parse(wsync_call *call, const char *json, size_t len)
{
	json_tokener *tok;
	json_object *doc;
	if (!json || len > INT32_MAX)
		return NULL;
	if (!(tok = json_tokener_new()))
		return NULL;
	size_t end;
	doc = json_tokener_parse_ex(tok, json, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (!doc && json_tokener_get_error(tok) == json_tokener_continue) {
		/* a number ends the text: the whole text was its value (the
		 * parse end is now relative to this one-byte chunk) */
		doc = json_tokener_parse_ex(tok, "", 1);
		end = len;
	}
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(doc);
		doc = NULL;
	} else if (end < len) {
		/* trailing bytes: only white space may follow the value */
		for (size_t i = end; i < len && doc; i++)
			if (!http_is_space((unsigned char)json[i])) {
				json_object_put(doc);
				doc = NULL;
			}
	}
	json_tokener_free(tok);
	/* `null` parses to NULL: nothing to keep, nothing to find */
	return doc ? own(call, doc, doc_release) : NULL;
}

/* Walk `path` ("a.b.0.c"; "" is the root). */
static json_object *walk(json_object *o, const char *path)
{
	while (o && path && *path) {
		size_t n = strcspn(path, ".");
		char name[256];
		if (n >= sizeof name)
			return NULL;
		memcpy(name, path, n);
		name[n] = 0;
		if (json_object_is_type(o, json_type_object)) {
			if (!json_object_object_get_ex(o, name, &o))
				return NULL;
		} else if (json_object_is_type(o, json_type_array)) {
			char *end;
			unsigned long i = strtoul(name, &end, 10);
			if (!n || *end || !http_is_digit((unsigned char)name[0]) ||
			    i >= json_object_array_length(o))
				return NULL;
			o = json_object_array_get_idx(o, i);
		} else {
			return NULL;
		}
		path += n + (path[n] == '.');
	}
	return o;
}

static const char *host_json_get(wsync_call *call, const char *json, size_t len,
                                 const char *path)
{
	json_object *o = walk(parse(call, json, len), path);
	switch (o ? json_object_get_type(o) : json_type_null) {
	case json_type_string:
		return json_object_get_string(o);
	case json_type_int:
	case json_type_double:
		/* the number as written ("77", "12.5"), kept by the document */
		return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	case json_type_boolean:
		return json_object_get_boolean(o) ? "true" : "false";
	default:
		return NULL;
	}
}

static int64_t host_json_length(wsync_call *call, const char *json, size_t len,
                                const char *path)
{
	json_object *o = walk(parse(call, json, len), path);
	if (json_object_is_type(o, json_type_array))
		return (int64_t)json_object_array_length(o);
	if (o && json_object_is_type(o, json_type_object))
		return json_object_object_length(o);
	return -1;
}

void wsync_host_helpers(wsync_host *h)
{
	h->json_begin = host_json_begin;
	h->json_string = host_json_string;
	h->json_int = host_json_int;
	h->json_number = host_json_number;
	h->json_bool = host_json_bool;
	h->json_open = host_json_open;
	h->json_close = host_json_close;
	h->json_end = host_json_end;
	h->json_get = host_json_get;
	h->json_length = host_json_length;
	h->path_segment = host_path_segment;
	h->excerpt = host_excerpt;
}
