/* wsync-sandbox: OAuth2 token table, refresh grant with rotation, bearer checks. */
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TOKENS 20000

enum { TOK_ACCESS = 0, TOK_REFRESH = 1 };

typedef struct tok {
    char *value;
    int kind;
    int64_t expires_at;   /* 0 = never */
    bool revoked;
    long long user_id;
    json_object *perms;   /* array of strings */
    char *pair;           /* access <-> refresh partner */
    char *prev_access;    /* revoked at the first use of this access token */
    int64_t created;
    bool registered;      /* via the control API (vs. issued by refresh / any-token) */
} tok;

static tok *toks;
static size_t ntoks, captoks;
static unsigned long long tok_serial;

static void tok_free(tok *t)
{
    free(t->value);
    json_object_put(t->perms);
    free(t->pair);
    free(t->prev_access);
}

void sb_oauth_reset_locked(void)
{
    for (size_t i = 0; i < ntoks; i++)
        tok_free(&toks[i]);
    free(toks);
    toks = NULL;
    ntoks = captoks = 0;
}

static tok *tok_find(const char *value, int kind)
{
    for (size_t i = ntoks; i-- > 0;)
        if (toks[i].kind == kind && strcmp(toks[i].value, value) == 0)
            return &toks[i];
    return NULL;
}

static bool tok_expired(const tok *t)
{
    return t->expires_at != 0 && sb_now() >= t->expires_at;
}

/* Drop revoked/expired tokens when the table is full. */
static void tok_gc(void)
{
    size_t k = 0;
    for (size_t i = 0; i < ntoks; i++) {
        if (toks[i].revoked || tok_expired(&toks[i]))
            tok_free(&toks[i]);
        else
            toks[k++] = toks[i];
    }
    ntoks = k;
}

static tok *tok_add(const char *value, int kind)
{
    tok *old = tok_find(value, kind);
    if (old) {
        tok_free(old);
        memset(old, 0, sizeof *old);
        old->value = sb_xstrdup(value);
        old->kind = kind;
        old->created = sb_now();
        return old;
    }
    if (ntoks >= MAX_TOKENS)
        tok_gc();
    if (ntoks >= MAX_TOKENS)
        return NULL;
    if (ntoks == captoks) {
        captoks = captoks ? captoks * 2 : 64;
        toks = sb_xrealloc(toks, captoks * sizeof *toks);
    }
    tok *t = &toks[ntoks++];
    memset(t, 0, sizeof *t);
    t->value = sb_xstrdup(value);
    t->kind = kind;
    t->created = sb_now();
    return t;
}

static json_object *default_perms(void)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, json_object_new_string("WORKOUT_IMPORT"));
    return a;
}

static bool perms_have(json_object *perms, const char *p)
{
    if (!perms)
        return false;
    size_t n = json_object_array_length(perms);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(perms, i);
        if (json_object_is_type(e, json_type_string) && strcmp(json_object_get_string(e), p) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ control API */

int sb_oauth_register(json_object *spec, char *err, size_t errlen)
{
    if (!json_object_is_type(spec, json_type_object)) {
        snprintf(err, errlen, "token spec must be an object");
        return -1;
    }
    json_object *jat = sb_jget(spec, "access_token"), *jrt = sb_jget(spec, "refresh_token");
    if (jat && (!json_object_is_type(jat, json_type_string) || !*json_object_get_string(jat))) {
        snprintf(err, errlen, "access_token must be a non-empty string");
        return -1;
    }
    if (jrt && (!json_object_is_type(jrt, json_type_string) || !*json_object_get_string(jrt))) {
        snprintf(err, errlen, "refresh_token must be a non-empty string");
        return -1;
    }
    if (!jat && !jrt) {
        snprintf(err, errlen, "access_token or refresh_token required");
        return -1;
    }
    long long expires_in = 3600, rexp = 0, user = g_settings.user_id;
    json_object *v;
    if ((v = sb_jget(spec, "expires_in")) && !sb_jv_int(v, &expires_in)) {
        snprintf(err, errlen, "expires_in must be an integer (seconds; <= 0 = already expired)");
        return -1;
    }
    if ((v = sb_jget(spec, "refresh_expires_in")) && !sb_jv_int(v, &rexp)) {
        snprintf(err, errlen, "refresh_expires_in must be an integer");
        return -1;
    }
    if ((v = sb_jget(spec, "user_id")) && !sb_jv_int(v, &user)) {
        snprintf(err, errlen, "user_id must be an integer");
        return -1;
    }
    json_object *perms = sb_jget(spec, "permissions");
    if (perms) {
        if (!json_object_is_type(perms, json_type_array)) {
            snprintf(err, errlen, "permissions must be an array of strings");
            return -1;
        }
        for (size_t i = 0; i < json_object_array_length(perms); i++)
            if (!json_object_is_type(json_object_array_get_idx(perms, i), json_type_string)) {
                snprintf(err, errlen, "permissions must be an array of strings");
                return -1;
            }
    }
    bool revoked = false;
    if ((v = sb_jget(spec, "revoked")))
        revoked = json_object_get_boolean(v);
    int64_t now = sb_now();
    const char *at = jat ? json_object_get_string(jat) : NULL;
    const char *rt = jrt ? json_object_get_string(jrt) : NULL;
    tok *a = NULL, *r = NULL;
    if (at) {
        a = tok_add(at, TOK_ACCESS);
        if (!a) {
            snprintf(err, errlen, "token table full");
            return -1;
        }
        a->expires_at = expires_in <= 0 ? now - 1 : now + expires_in;
        a->user_id = user;
        a->perms = perms ? json_object_get(perms) : default_perms();
        a->registered = true;
        a->revoked = revoked;
        if (rt)
            a->pair = sb_xstrdup(rt);
    }
    if (rt) {
        r = tok_add(rt, TOK_REFRESH);
        if (!r) {
            snprintf(err, errlen, "token table full");
            return -1;
        }
        r->expires_at = rexp == 0 ? 0 : (rexp < 0 ? now - 1 : now + rexp);
        r->user_id = user;
        r->perms = perms ? json_object_get(perms) : default_perms();
        r->registered = true;
        r->revoked = revoked;
        if (at)
            r->pair = sb_xstrdup(at);
    }
    return 0;
}

int sb_oauth_set_state(const char *value, bool revoke, bool expire)
{
    int n = 0;
    for (size_t i = 0; i < ntoks; i++) {
        if (strcmp(toks[i].value, value) != 0)
            continue;
        if (revoke)
            toks[i].revoked = true;
        if (expire)
            toks[i].expires_at = sb_now() - 1;
        n++;
    }
    return n;
}

json_object *sb_oauth_table_json_locked(void)
{
    json_object *arr = json_object_new_array();
    int64_t now = sb_now();
    for (size_t i = 0; i < ntoks; i++) {
        tok *t = &toks[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "token", json_object_new_string(t->value));
        json_object_object_add(o, "kind",
                               json_object_new_string(t->kind == TOK_ACCESS ? "access" : "refresh"));
        json_object_object_add(o, "user_id", json_object_new_int64(t->user_id));
        json_object_object_add(o, "expires_in",
                               t->expires_at ? json_object_new_int64(t->expires_at - now) : NULL);
        json_object_object_add(o, "expired", json_object_new_boolean(tok_expired(t)));
        json_object_object_add(o, "revoked", json_object_new_boolean(t->revoked));
        json_object_object_add(o, "registered", json_object_new_boolean(t->registered));
        json_object_object_add(o, "pair", t->pair ? json_object_new_string(t->pair) : NULL);
        json_object_object_add(o, "permissions", t->perms ? json_object_get(t->perms) : NULL);
        json_object_array_add(arr, o);
    }
    return arr;
}

/* ------------------------------------------------------------ bearer auth */

static const char *bearer_of(const sb_req *r)
{
    const char *h = sb_header_get(r, "Authorization");
    if (!h)
        return NULL;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 7;
    while (*h == ' ' || *h == '\t')
        h++;
    return *h ? h : NULL;
}

bool sb_auth_check(const sb_req *r, sb_auth *out)
{
    memset(out, 0, sizeof *out);
    const char *b = bearer_of(r);
    if (!b) {
        snprintf(out->reason, sizeof out->reason, "missing bearer token");
        return false;
    }
    char tokbuf[512];
    snprintf(tokbuf, sizeof tokbuf, "%s", b);
    /* trailing whitespace is not part of the token */
    for (size_t n = strlen(tokbuf); n > 0 && (tokbuf[n - 1] == ' ' || tokbuf[n - 1] == '\t');)
        tokbuf[--n] = '\0';
    pthread_mutex_lock(&g_lock);
    tok *t = tok_find(tokbuf, TOK_ACCESS);
    if (t) {
        if (t->revoked) {
            snprintf(out->reason, sizeof out->reason, "access token revoked");
        } else if (tok_expired(t)) {
            snprintf(out->reason, sizeof out->reason, "access token expired");
        } else {
            out->ok = true;
            out->user_id = t->user_id;
            out->perm_workout_import = perms_have(t->perms, "WORKOUT_IMPORT");
            out->permissions = NULL;
            if (t->perms)
                json_object_deep_copy(t->perms, &out->permissions, NULL);
            if (!out->permissions)
                out->permissions = json_object_new_array();
            if (t->prev_access) {
                /* Wahoo: the previous pair is revoked once the new token is used. */
                tok *p = tok_find(t->prev_access, TOK_ACCESS);
                if (p)
                    p->revoked = true;
                free(t->prev_access);
                t->prev_access = NULL;
            }
        }
    } else if (g_settings.accept_any_token) {
        out->ok = true;
        out->user_id = g_settings.user_id;
        out->perm_workout_import = true;
        out->permissions = default_perms();
    } else {
        snprintf(out->reason, sizeof out->reason, "unknown access token");
    }
    if (!out->ok)
        g_stats.unauthorized++;
    pthread_mutex_unlock(&g_lock);
    return out->ok;
}

void sb_auth_free(sb_auth *a)
{
    json_object_put(a->permissions);
    a->permissions = NULL;
}

bool sb_oauth_revoke_bearer(const sb_req *r)
{
    const char *b = bearer_of(r);
    if (!b)
        return false;
    pthread_mutex_lock(&g_lock);
    tok *t = tok_find(b, TOK_ACCESS);
    if (t) {
        t->revoked = true;
        if (t->pair) {
            tok *p = tok_find(t->pair, TOK_REFRESH);
            if (p)
                p->revoked = true;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return t != NULL;
}

/* ---------------------------------------------------------- token endpoint */

bool sb_oauth_is_token_path(const char *path)
{
    return strcasecmp(path, "/oauth/token") == 0 || strcasecmp(path, "/oauth/token/") == 0 ||
           strcasecmp(path, "/di-oauth2-service/oauth/token") == 0;
}

static void oauth_error(sb_reply *rep, int status, const char *code, const char *desc)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(code));
    json_object_object_add(o, "error_description", json_object_new_string(desc));
    sb_reply_json(rep, status, o);
    sb_reply_header(rep, "Cache-Control", "no-store");
}

static const char *param(json_object *form, const sb_req *r, const char *key)
{
    json_object *v = sb_jget(form, key);
    if (v && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return sb_query(r, key);
}

/* HTTP Basic client authentication (RFC 6749 2.3.1). */
static bool basic_client(const sb_req *r, char *id, size_t idlen, char *secret, size_t slen)
{
    const char *h = sb_header_get(r, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    h += 6;
    while (*h == ' ')
        h++;
    char *dec = NULL;
    size_t n = sb_base64_decode(h, strlen(h), &dec);
    if (n == SIZE_MAX)
        return false;
    char *colon = memchr(dec, ':', n);
    bool ok = false;
    if (colon) {
        *colon = '\0';
        snprintf(id, idlen, "%s", dec);
        snprintf(secret, slen, "%s", colon + 1);
        ok = true;
    }
    free(dec);
    return ok;
}

void sb_oauth_handle(sb_req *r, sb_reply *rep)
{
    if (!sb_method(r, "POST")) {
        oauth_error(rep, 405, "invalid_request", "the token endpoint only accepts POST");
        sb_reply_header(rep, "Allow", "POST");
        return;
    }
    if (g_providers == SB_P_TP) {
        const char *ua = sb_header_get(r, "User-Agent");
        if (!ua || !*ua) {
            oauth_error(rep, 400, "invalid_request", "User-Agent header required");
            return;
        }
    }
    json_object *form = NULL;
    if (r->body_len > 0) {
        if (!sb_ctype_is(r->ctype, "application/x-www-form-urlencoded")) {
            oauth_error(rep, 400, "invalid_request",
                        "the token endpoint expects an application/x-www-form-urlencoded body");
            return;
        }
        char err[160];
        form = sb_form_parse(r->body, r->body_len, err, sizeof err);
        if (!form) {
            oauth_error(rep, 400, "invalid_request", err);
            return;
        }
    }
    const char *grant = param(form, r, "grant_type");
    if (!grant || !*grant) {
        oauth_error(rep, 400, "invalid_request", "grant_type is required");
        json_object_put(form);
        return;
    }
    if (strcmp(grant, "refresh_token") != 0) {
        oauth_error(rep, 400, "unsupported_grant_type",
                    "the sandbox only implements grant_type=refresh_token");
        json_object_put(form);
        return;
    }

    long delay;
    pthread_mutex_lock(&g_lock);
    g_stats.refreshes++;
    g_stats.refresh_inflight++;
    if (g_stats.refresh_inflight > g_stats.max_concurrent_refreshes)
        g_stats.max_concurrent_refreshes = g_stats.refresh_inflight;
    delay = g_settings.refresh_delay_ms;
    pthread_mutex_unlock(&g_lock);
    if (delay > 0)
        sb_sleep_ms(delay);

    char bid[256] = "", bsecret[256] = "";
    bool have_basic = basic_client(r, bid, sizeof bid, bsecret, sizeof bsecret);
    const char *cid = param(form, r, "client_id");
    const char *csecret = param(form, r, "client_secret");
    if (have_basic) {
        if (!cid)
            cid = bid;
        if (!csecret)
            csecret = bsecret;
    }
    const char *rt = param(form, r, "refresh_token");

    pthread_mutex_lock(&g_lock);
    bool ok = false;
    if (!cid || !*cid) {
        oauth_error(rep, 401, "invalid_client", "client_id is required");
    } else if (g_settings.client_id && strcmp(cid, g_settings.client_id) != 0) {
        oauth_error(rep, 401, "invalid_client", "unknown client_id");
    } else if (g_settings.client_secret && (!csecret || strcmp(csecret, g_settings.client_secret) != 0)) {
        oauth_error(rep, 401, "invalid_client", "client authentication failed");
    } else if (!rt || !*rt) {
        oauth_error(rep, 400, "invalid_request", "refresh_token is required");
    } else {
        tok *old = tok_find(rt, TOK_REFRESH);
        if (old && (old->revoked || tok_expired(old))) {
            oauth_error(rep, 400, "invalid_grant",
                        old->revoked ? "the refresh token has been revoked (already used?)"
                                     : "the refresh token has expired");
        } else if (!old && !g_settings.accept_any_token) {
            oauth_error(rep, 400, "invalid_grant", "unknown refresh token");
        } else {
            if (!old) {
                /* accept_any_token: adopt the unknown refresh token so that it
                 * rotates (and a replay fails) like a registered one. */
                old = tok_add(rt, TOK_REFRESH);
                if (old) {
                    old->user_id = g_settings.user_id;
                    old->perms = default_perms();
                }
            }
            if (!old) {
                oauth_error(rep, 503, "temporarily_unavailable", "token table full");
            } else {
                long long user = old->user_id;
                json_object *perms = old->perms ? json_object_get(old->perms) : default_perms();
                char *prev_access = old->pair ? sb_xstrdup(old->pair) : NULL;
                old->revoked = true;
                char hex[33], at[64], nrt[64];
                tok_serial++;
                sb_random_hex(hex, 12);
                snprintf(at, sizeof at, "sbx-at-%llu-%s", tok_serial, hex);
                sb_random_hex(hex, 12);
                snprintf(nrt, sizeof nrt, "sbx-rt-%llu-%s", tok_serial, hex);
                long exp = g_settings.token_expires_in;
                tok *a = tok_add(at, TOK_ACCESS);
                if (a) {
                    a->expires_at = exp <= 0 ? sb_now() - 1 : sb_now() + exp;
                    a->user_id = user;
                    a->perms = json_object_get(perms);
                    a->pair = sb_xstrdup(nrt);
                    a->prev_access = prev_access;
                    prev_access = NULL;
                }
                /* tok_add may move the table: no tok pointer survives it. */
                tok *b = a ? tok_add(nrt, TOK_REFRESH) : NULL;
                if (b) {
                    b->user_id = user;
                    b->perms = json_object_get(perms);
                    b->pair = sb_xstrdup(at);
                }
                json_object_put(perms);
                free(prev_access);
                if (!a || !b) {
                    if (a)
                        sb_oauth_set_state(at, true, false);
                    oauth_error(rep, 503, "temporarily_unavailable", "token table full");
                } else {
                    json_object *o = json_object_new_object();
                    json_object_object_add(o, "access_token", json_object_new_string(at));
                    json_object_object_add(o, "refresh_token", json_object_new_string(nrt));
                    json_object_object_add(o, "expires_in", json_object_new_int64(exp));
                    json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
                    sb_reply_json(rep, 200, o);
                    sb_reply_header(rep, "Cache-Control", "no-store");
                    ok = true;
                }
            }
        }
    }
    if (ok)
        g_stats.refresh_ok++;
    else
        g_stats.refresh_failed++;
    /* In flight from handler entry to here: a client that waits for each
     * answer before the next refresh can never be counted twice. */
    g_stats.refresh_inflight--;
    pthread_mutex_unlock(&g_lock);
    json_object_put(form);
}
