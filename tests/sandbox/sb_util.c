/* wsync-sandbox: small helpers (memory, replies, strict JSON, forms, dates). */
#include "sandbox.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* isfinite only: no libm needed */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ memory */

void *sb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("wsync-sandbox: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *sb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("wsync-sandbox: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *sb_xstrndup(const char *s, size_t n)
{
    char *p = sb_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sb_xstrdup(const char *s)
{
    return sb_xstrndup(s, strlen(s));
}

/* ----------------------------------------------------------------- replies */

void sb_reply_reset(sb_reply *r)
{
    free(r->body);
    for (int i = 0; i < r->nhdr; i++) {
        free(r->hdr[i].name);
        free(r->hdr[i].value);
    }
    memset(r, 0, sizeof *r);
}

bool sb_reply_has_header(const sb_reply *r, const char *name)
{
    for (int i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->hdr[i].name, name) == 0)
            return true;
    return false;
}

void sb_reply_header(sb_reply *r, const char *name, const char *value)
{
    for (int i = 0; i < r->nhdr; i++) {
        if (strcasecmp(r->hdr[i].name, name) == 0) {
            free(r->hdr[i].value);
            r->hdr[i].value = sb_xstrdup(value);
            return;
        }
    }
    if (r->nhdr >= SB_MAX_HDRS)
        return;
    r->hdr[r->nhdr].name = sb_xstrdup(name);
    r->hdr[r->nhdr].value = sb_xstrdup(value);
    r->nhdr++;
}

void sb_reply_raw(sb_reply *r, int status, const char *ctype, const char *body, size_t len)
{
    free(r->body);
    r->status = status;
    r->body = body ? sb_xstrndup(body, len) : NULL;
    r->len = body ? len : 0;
    snprintf(r->ctype, sizeof r->ctype, "%s", ctype ? ctype : "");
}

char *sb_json_text(json_object *o)
{
    const char *s = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return sb_xstrdup(s ? s : "null");
}

void sb_reply_json(sb_reply *r, int status, json_object *o)
{
    char *txt = sb_json_text(o);
    json_object_put(o);
    free(r->body);
    r->status = status;
    r->body = txt;
    r->len = strlen(txt);
    snprintf(r->ctype, sizeof r->ctype, "application/json; charset=utf-8");
}

void sb_reply_error(sb_reply *r, int status, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages may quote client input; keep the JSON valid. */
    if (!sb_utf8_valid(msg, strlen(msg)))
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
    json_object *o = json_object_new_object();
    json_object_object_add(o, key ? key : "error", json_object_new_string(msg));
    sb_reply_json(r, status, o);
}

const char *sb_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

/* ------------------------------------------------------------- strict JSON */

typedef struct jv {
    const char *p, *end;
    int depth;
    const char *err;
} jv;

static void jv_ws(jv *v)
{
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
        v->p++;
}

static bool jv_value(jv *v);

static bool jv_string(jv *v)
{
    if (v->p >= v->end || *v->p != '"') {
        v->err = "string expected";
        return false;
    }
    v->p++;
    while (v->p < v->end) {
        unsigned char c = (unsigned char)*v->p;
        if (c == '"') {
            v->p++;
            return true;
        }
        if (c < 0x20) {
            v->err = "control character in string";
            return false;
        }
        if (c == '\\') {
            v->p++;
            if (v->p >= v->end)
                break;
            char e = *v->p;
            if (e == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (v->p + i >= v->end || !isxdigit((unsigned char)v->p[i])) {
                        v->err = "bad \\u escape";
                        return false;
                    }
                }
                v->p += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                v->err = "bad escape";
                return false;
            }
        }
        v->p++;
    }
    v->err = "unterminated string";
    return false;
}

static bool jv_number(jv *v)
{
    const char *s = v->p;
    if (v->p < v->end && *v->p == '-')
        v->p++;
    if (v->p >= v->end || !isdigit((unsigned char)*v->p)) {
        v->err = "invalid number";
        return false;
    }
    if (*v->p == '0') {
        v->p++;
    } else {
        while (v->p < v->end && isdigit((unsigned char)*v->p))
            v->p++;
    }
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (v->p >= v->end || !isdigit((unsigned char)*v->p)) {
            v->err = "invalid number";
            return false;
        }
        while (v->p < v->end && isdigit((unsigned char)*v->p))
            v->p++;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
            v->p++;
        if (v->p >= v->end || !isdigit((unsigned char)*v->p)) {
            v->err = "invalid number";
            return false;
        }
        while (v->p < v->end && isdigit((unsigned char)*v->p))
            v->p++;
    }
    char tmp[64];
    size_t n = (size_t)(v->p - s);
    if (n < sizeof tmp) {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        double d = strtod(tmp, NULL);
        if (!isfinite(d)) {
            v->err = "number out of range";
            return false;
        }
    } else {
        v->err = "number too long";
        return false;
    }
    return true;
}

static bool jv_lit(jv *v, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(v->end - v->p) >= n && memcmp(v->p, lit, n) == 0) {
        v->p += n;
        return true;
    }
    v->err = "unexpected character";
    return false;
}

static bool jv_value(jv *v)
{
    jv_ws(v);
    if (v->p >= v->end) {
        v->err = "unexpected end of input";
        return false;
    }
    char c = *v->p;
    if (c == '{' || c == '[') {
        if (++v->depth > 64) {
            v->err = "nesting too deep";
            return false;
        }
        char close = c == '{' ? '}' : ']';
        v->p++;
        jv_ws(v);
        if (v->p < v->end && *v->p == close) {
            v->p++;
            v->depth--;
            return true;
        }
        for (;;) {
            if (c == '{') {
                jv_ws(v);
                if (!jv_string(v))
                    return false;
                jv_ws(v);
                if (v->p >= v->end || *v->p != ':') {
                    v->err = "':' expected";
                    return false;
                }
                v->p++;
            }
            if (!jv_value(v))
                return false;
            jv_ws(v);
            if (v->p < v->end && *v->p == ',') {
                v->p++;
                continue;
            }
            if (v->p < v->end && *v->p == close) {
                v->p++;
                v->depth--;
                return true;
            }
            v->err = c == '{' ? "',' or '}' expected" : "',' or ']' expected";
            return false;
        }
    }
    if (c == '"')
        return jv_string(v);
    if (c == 't')
        return jv_lit(v, "true");
    if (c == 'f')
        return jv_lit(v, "false");
    if (c == 'n')
        return jv_lit(v, "null");
    return jv_number(v);
}

json_object *sb_json_parse_strict(const char *s, size_t len, char *err, size_t errlen)
{
    jv v = { s, s + len, 0, NULL };
    if (!sb_utf8_valid(s, len)) {
        snprintf(err, errlen, "invalid UTF-8");
        return NULL;
    }
    if (!jv_value(&v)) {
        snprintf(err, errlen, "invalid JSON at offset %ld: %s", (long)(v.p - s), v.err);
        return NULL;
    }
    jv_ws(&v);
    if (v.p != v.end) {
        snprintf(err, errlen, "invalid JSON at offset %ld: trailing characters", (long)(v.p - s));
        return NULL;
    }
    if (len > (size_t)INT32_MAX - 1) {
        snprintf(err, errlen, "JSON too large");
        return NULL;
    }
    /* Syntax is RFC 8259; let json-c build the tree.  A NUL-terminated
     * copy lets json-c finish a top-level scalar. */
    char *copy = sb_xstrndup(s, len);
    json_tokener *tok = json_tokener_new_ex(80);
    json_object *o = json_tokener_parse_ex(tok, copy, (int)len + 1);
    enum json_tokener_error e = json_tokener_get_error(tok);
    json_tokener_free(tok);
    free(copy);
    if (e != json_tokener_success) {
        json_object_put(o);
        snprintf(err, errlen, "invalid JSON: %s", json_tokener_error_desc(e));
        return NULL;
    }
    if (!o) {
        snprintf(err, errlen, "JSON null where a value was expected");
        return NULL;
    }
    err[0] = '\0';
    return o;
}

/* ------------------------------------------------------------ UTF-8/base64 */

bool sb_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

size_t sb_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict standard base64; padding optional but, when present, must be right. */
size_t sb_base64_decode(const char *in, size_t inlen, char **out)
{
    *out = NULL;
    size_t pad = 0;
    while (inlen > 0 && in[inlen - 1] == '=' && pad < 2) {
        inlen--;
        pad++;
    }
    if (pad && (inlen + pad) % 4 != 0)
        return SIZE_MAX;
    if (inlen % 4 == 1)
        return SIZE_MAX;
    char *buf = sb_xmalloc(inlen / 4 * 3 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return SIZE_MAX;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    buf[o] = '\0';
    *out = buf;
    return o;
}

char *sb_base64_encode(const char *in, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = sb_xmalloc((len + 2) / 3 * 4 + 1);
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)s[i + 1] << 8;
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* "application/json; charset=utf-8" matches want "application/json". */
bool sb_ctype_is(const char *ctype, const char *want)
{
    if (!ctype)
        return false;
    while (*ctype == ' ')
        ctype++;
    size_t n = strlen(want);
    if (strncasecmp(ctype, want, n) != 0)
        return false;
    char c = ctype[n];
    return c == '\0' || c == ';' || c == ' ';
}

/* ------------------------------------------------------------------- forms */

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char *url_decode(const char *s, size_t n, size_t *outlen, bool *ok)
{
    char *o = sb_xmalloc(n + 1);
    size_t k = 0;
    *ok = true;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            o[k++] = ' ';
        } else if (s[i] == '%') {
            int a = i + 1 < n ? hexv(s[i + 1]) : -1;
            int b = i + 2 < n ? hexv(s[i + 2]) : -1;
            if (a < 0 || b < 0) {
                *ok = false;
                break;
            }
            o[k++] = (char)(a * 16 + b);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

/* Insert value under a Rails-style key into root.  Returns false on a key
 * conflict (e.g. "a=1&a[b]=2") or an over-deep key. */
static bool form_put(json_object *root, const char *key, json_object *val)
{
    char names[5][128];
    int depth = 0;
    bool push = false;
    const char *p = strchr(key, '[');
    size_t n = p ? (size_t)(p - key) : strlen(key);
    if (n == 0 || n >= sizeof names[0])
        return false;
    memcpy(names[depth], key, n);
    names[depth++][n] = '\0';
    while (p && *p == '[') {
        const char *q = strchr(p, ']');
        if (!q)
            return false;
        n = (size_t)(q - p - 1);
        if (n == 0) {
            if (q[1] != '\0')
                return false; /* "a[][b]" not supported */
            push = true;
            p = q + 1;
            break;
        }
        if (depth >= 5 || n >= sizeof names[0])
            return false;
        memcpy(names[depth], p + 1, n);
        names[depth++][n] = '\0';
        p = q + 1;
    }
    if (p && *p)
        return false;
    json_object *cur = root;
    for (int i = 0; i < depth - 1; i++) {
        json_object *next = NULL;
        if (!json_object_object_get_ex(cur, names[i], &next)) {
            next = json_object_new_object();
            json_object_object_add(cur, names[i], next);
        }
        if (!json_object_is_type(next, json_type_object))
            return false;
        cur = next;
    }
    const char *last = names[depth - 1];
    if (push) {
        json_object *arr = NULL;
        if (!json_object_object_get_ex(cur, last, &arr)) {
            arr = json_object_new_array();
            json_object_object_add(cur, last, arr);
        }
        if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > 1000)
            return false;
        json_object_array_add(arr, val);
        return true;
    }
    json_object *old = NULL;
    if (json_object_object_get_ex(cur, last, &old) && old &&
        !json_object_is_type(old, json_type_string))
        return false;
    json_object_object_add(cur, last, val); /* last one wins, like Rack */
    return true;
}

json_object *sb_form_parse(const char *body, size_t len, char *err, size_t errlen)
{
    json_object *root = json_object_new_object();
    size_t i = 0;
    int pairs = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j > i) {
            if (++pairs > 4096) {
                snprintf(err, errlen, "too many form fields");
                json_object_put(root);
                return NULL;
            }
            const char *eq = memchr(body + i, '=', j - i);
            size_t klen = eq ? (size_t)(eq - (body + i)) : j - i;
            size_t kl, vl;
            bool ok1, ok2;
            char *k = url_decode(body + i, klen, &kl, &ok1);
            char *v = eq ? url_decode(eq + 1, (size_t)(body + j - eq - 1), &vl, &ok2)
                         : (ok2 = true, vl = 0, sb_xstrdup(""));
            if (!ok1 || !ok2) {
                snprintf(err, errlen, "invalid %%-encoding in form body");
                free(k);
                free(v);
                json_object_put(root);
                return NULL;
            }
            if (kl == 0) { /* "=x" or "&&": ignored, like Rack */
                free(k);
                free(v);
                i = j + 1;
                continue;
            }
            if (!sb_utf8_valid(k, kl) || !sb_utf8_valid(v, vl) || strlen(k) != kl ||
                strlen(v) != vl) {
                snprintf(err, errlen, "invalid byte sequence in form parameter");
                free(k);
                free(v);
                json_object_put(root);
                return NULL;
            }
            json_object *val = json_object_new_string_len(v, (int)vl);
            if (!form_put(root, k, val)) {
                json_object_put(val);
                snprintf(err, errlen, "conflicting or malformed form key '%.64s'", k);
                free(k);
                free(v);
                json_object_put(root);
                return NULL;
            }
            free(k);
            free(v);
        }
        i = j + 1;
    }
    err[0] = '\0';
    return root;
}

/* --------------------------------------------------------- JSON coercion */

json_object *sb_jget(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

bool sb_jhas(json_object *o, const char *key)
{
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, NULL);
}

static bool str_is_int(const char *s, long long *out)
{
    if (!*s)
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || isspace((unsigned char)*s))
        return false;
    *out = v;
    return true;
}

bool sb_jv_int(json_object *v, long long *out)
{
    if (!v)
        return false;
    switch (json_object_get_type(v)) {
    case json_type_int:
        errno = 0;
        *out = json_object_get_int64(v);
        return errno == 0;
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d) || d > 9e15 || d < -9e15 || !sb_is_whole(d))
            return false;
        *out = (long long)d;
        return true;
    }
    case json_type_string:
        return str_is_int(json_object_get_string(v), out);
    default:
        return false;
    }
}

bool sb_jv_num(json_object *v, double *out)
{
    if (!v)
        return false;
    switch (json_object_get_type(v)) {
    case json_type_int:
        *out = (double)json_object_get_int64(v);
        return true;
    case json_type_double:
        *out = json_object_get_double(v);
        return isfinite(*out);
    case json_type_string: {
        const char *s = json_object_get_string(v);
        if (!*s || isspace((unsigned char)*s))
            return false;
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (errno || *end || !isfinite(d))
            return false;
        *out = d;
        return true;
    }
    default:
        return false;
    }
}

const char *sb_jv_text(json_object *v, char *buf, size_t buflen)
{
    if (!v)
        return NULL;
    switch (json_object_get_type(v)) {
    case json_type_string:
        return json_object_get_string(v);
    case json_type_int:
        snprintf(buf, buflen, "%lld", (long long)json_object_get_int64(v));
        return buf;
    case json_type_double:
        snprintf(buf, buflen, "%.17g", json_object_get_double(v));
        return buf;
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------------- dates */

long sb_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sb_civil_from_days(long z, int *y, int *m, int *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long yy = yoe + era * 400;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool ymd_prefix(const char *s, int *y, int *m, int *d)
{
    if (!digits(s, 4, y) || s[4] != '-' || !digits(s + 5, 2, m) || s[7] != '-' ||
        !digits(s + 8, 2, d))
        return false;
    if (*y < 1900 || *y > 2999 || *m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m))
        return false;
    return true;
}

bool sb_parse_ymd(const char *s, int *y, int *m, int *d)
{
    return s && strlen(s) == 10 && ymd_prefix(s, y, m, d);
}

bool sb_parse_iso8601(const char *s, int64_t *epoch, bool *has_time)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (!s || strlen(s) < 10 || !ymd_prefix(s, &y, &mo, &d))
        return false;
    const char *p = s + 10;
    *has_time = false;
    long off = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi))
            return false;
        p += 5;
        if (*p == ':') {
            if (!digits(p + 1, 2, &se))
                return false;
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return false;
                while (isdigit((unsigned char)*p))
                    p++;
            }
        }
        if (h > 23 || mi > 59 || se > 60)
            return false;
        *has_time = true;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om = 0;
            int sign = *p == '-' ? -1 : 1;
            p++;
            if (!digits(p, 2, &oh))
                return false;
            p += 2;
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p)) {
                if (!digits(p, 2, &om))
                    return false;
                p += 2;
            }
            if (oh > 14 || om > 59)
                return false;
            off = sign * (oh * 3600L + om * 60L);
        }
    }
    if (*p)
        return false;
    *epoch = (int64_t)sb_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    return true;
}

int64_t sb_now(void)
{
    return (int64_t)time(NULL);
}

long sb_today_days_locked(void)
{
    int y, m, d;
    if (g_settings.today[0] && sb_parse_ymd(g_settings.today, &y, &m, &d))
        return sb_days_from_civil(y, m, d);
    return (long)(sb_now() / 86400);
}

void sb_fmt_iso_ms(int64_t epoch, char *buf, size_t len)
{
    long days = (long)(epoch >= 0 ? epoch / 86400 : (epoch - 86399) / 86400);
    long rem = (long)(epoch - (int64_t)days * 86400);
    int y, m, d;
    sb_civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04d-%02d-%02dT%02ld:%02ld:%02ld.000Z", y, m, d, rem / 3600,
             rem / 60 % 60, rem % 60);
}

/* ------------------------------------------------------------------- misc */

void sb_sleep_ms(long ms)
{
    while (ms > 0 && !atomic_load(&g_stop)) {
        long step = ms > 20 ? 20 : ms;
        struct timespec ts = { 0, step * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

void sb_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf)
        nbytes = sizeof buf;
    size_t got = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, nbytes);
        if (n > 0)
            got = (size_t)n;
        close(fd);
    }
    static unsigned long long ctr;
    for (size_t i = got; i < nbytes; i++)
        buf[i] = (unsigned char)((unsigned long long)time(NULL) * 2654435761u + ++ctr * 40503u + i);
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", buf[i]);
    out[2 * nbytes] = '\0';
}

/* ------------------------------------------------------------- collections */

sb_obj *sb_coll_find(sb_coll *c, long long id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].id == id)
            return &c->v[i];
    return NULL;
}

bool sb_store_has_room_locked(const sb_coll *c, size_t acct)
{
    return c->n < SB_MAX_OBJECTS && g_store_bytes + acct <= SB_MAX_STORE_BYTES;
}

sb_obj *sb_coll_add(sb_coll *c, long long id, long long owner, json_object *o, size_t acct)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = sb_xrealloc(c->v, c->cap * sizeof *c->v);
    }
    sb_obj *ob = &c->v[c->n++];
    memset(ob, 0, sizeof *ob);
    ob->id = id;
    ob->owner = owner;
    ob->o = o;
    ob->acct = acct;
    g_store_bytes += acct;
    return ob;
}

void sb_obj_set_acct(sb_obj *ob, size_t acct)
{
    g_store_bytes -= ob->acct;
    g_store_bytes += acct;
    ob->acct = acct;
}

static void obj_free(sb_obj *ob)
{
    json_object_put(ob->o);
    json_object_put(ob->x);
    free(ob->blob);
    g_store_bytes -= ob->acct;
}

void sb_coll_del(sb_coll *c, long long id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].id == id) {
            obj_free(&c->v[i]);
            memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof *c->v);
            c->n--;
            return;
        }
    }
}

void sb_coll_clear(sb_coll *c)
{
    for (size_t i = 0; i < c->n; i++)
        obj_free(&c->v[i]);
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------- paths */

bool sb_seg_is(const sb_req *r, int i, const char *s)
{
    return i >= 0 && i < r->nseg && strcmp(r->seg[i], s) == 0;
}

bool sb_seg_id(const sb_req *r, int i, long long *id)
{
    if (i < 0 || i >= r->nseg)
        return false;
    const char *s = r->seg[i];
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        return false;
    for (size_t k = 0; k < n; k++)
        if (!isdigit((unsigned char)s[k]))
            return false;
    *id = strtoll(s, NULL, 10);
    return true;
}

bool sb_method(const sb_req *r, const char *m)
{
    return strcmp(r->method, m) == 0;
}

const char *sb_query(const sb_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *sb_header_get(const sb_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* ------------------------------------------------------------ key counts */

void sb_count_add(json_object *counts, const char *key)
{
    json_object *v = NULL;
    if (!key)
        key = "";
    if (json_object_object_get_ex(counts, key, &v) && v)
        json_object_object_add(counts, key, json_object_new_int64(json_object_get_int64(v) + 1));
    else
        json_object_object_add(counts, key, json_object_new_int64(1));
}

long long sb_count_extra(json_object *counts)
{
    long long extra = 0;
    json_object_object_foreach(counts, k, v)
    {
        (void)k;
        extra += json_object_get_int64(v) - 1;
    }
    return extra;
}
