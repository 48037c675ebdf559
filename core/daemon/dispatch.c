#include "dispatch.h"

#include "host/classify.h"
#include "host/host.h"
#include "common/log.h"
#include "common/workout_parse.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What one entry needs, loaded from the database.  Strings point into the
 * PGresults, which live as long as this struct. */
typedef struct loaded {
	PGresult *workout_row, *sched_row;
	wsync_workout_entity workout;
	wsync_scheduled_entity sched;
	wsync_workout *structure;
	char *workout_link, *sched_link;
	wsync_token token;
} loaded;

static const char *val(PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? NULL : PQgetvalue(r, 0, col);
}

static PGresult *query(PGconn *db, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		return NULL;
	}
	return r;
}

/* 1 found, 0 gone, -1 database error. */
static int load_workout(PGconn *db, const char *id, loaded *l)
{
	const char *p[1] = {id};
	PGresult *r = query(db, "SELECT id, user_id, name, description, sport, workout_text,"
	                        " extract(epoch FROM updated_at)::bigint"
	                        " FROM workouts WHERE id = $1", 1, p);
	if (!r)
		return -1;
	if (!PQntuples(r))
		return PQclear(r), 0;
	l->workout_row = r;
	l->workout = (wsync_workout_entity){
		.struct_size = sizeof(wsync_workout_entity),
		.id = val(r, 0), .user_id = val(r, 1), .name = val(r, 2),
		.description = val(r, 3), .sport = val(r, 4), .workout_text = val(r, 5),
		.updated_at = atoll(PQgetvalue(r, 0, 6))};
	return 1;
}

static int load_scheduled(PGconn *db, const char *id, loaded *l)
{
	const char *p[1] = {id};
	PGresult *r = query(db, "SELECT id, user_id, workout_id, scheduled_date::text,"
	                        " scheduled_time::text FROM workouts_scheduled WHERE id = $1",
	                    1, p);
	if (!r)
		return -1;
	if (!PQntuples(r))
		return PQclear(r), 0;
	l->sched_row = r;
	l->sched = (wsync_scheduled_entity){
		.struct_size = sizeof(wsync_scheduled_entity),
		.id = val(r, 0), .user_id = val(r, 1), .workout_id = val(r, 2),
		.scheduled_date = val(r, 3), .scheduled_time = val(r, 4)};
	return load_workout(db, l->sched.workout_id, l);
}

/* *out = the stored provider id (malloc'ed) or NULL when there is none.
 * Returns 0, or -1 when the database could not say: a failed read must
 * never look like "not linked", which would create a duplicate. */
static int load_link(PGconn *db, const char *provider, const char *type, const char *id,
                     char **out)
{
	const char *p[3] = {provider, type, id};
	PGresult *r = query(db, "SELECT provider_entity_id FROM workout_sync_links"
	                        " WHERE provider = $1 AND entity_type = $2 AND entity_id = $3",
	                    3, p);
	int ok = r != NULL;
	free(*out);
	*out = ok && PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
	PQclear(r);
	return ok ? 0 : -1;
}

static void loaded_free(loaded *l)
{
	PQclear(l->workout_row);
	PQclear(l->sched_row);
	wsync_workout_free(l->structure);
	free(l->workout_link);
	free(l->sched_link);
	wsync_token_clear(&l->token);
}

int wsync_link_write(PGconn *db, const char *provider, const char *entity_type,
                     const char *entity_id, const char *user_id,
                     wsync_link_action action, const char *provider_id)
{
	const char *p[5] = {provider, entity_type, entity_id, user_id, provider_id};
	PGresult *r;
	int ok;
	if (action == LINK_KEEP)
		return 0;
	r = action == LINK_SET
		? PQexecParams(db, "INSERT INTO workout_sync_links (provider, entity_type,"
		               " entity_id, user_id, provider_entity_id) VALUES ($1,$2,$3,$4,$5)"
		               " ON CONFLICT (provider, entity_type, entity_id) DO UPDATE SET"
		               " provider_entity_id = EXCLUDED.provider_entity_id, updated_at = now()",
		               5, NULL, p, NULL, NULL, 0)
		: PQexecParams(db, "DELETE FROM workout_sync_links WHERE provider = $1"
		               " AND entity_type = $2 AND entity_id = $3", 3, NULL, p, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return ok ? 0 : -1;
}

static int32_t fail(wsync_dispatch_result *res, int32_t status, const char *msg)
{
	res->status = status;
	snprintf(res->message, sizeof res->message, "%s", msg);
	return status;
}

/* Call one plugin operation with a fresh outcome; serial plugins get a lock. */
static int32_t call_op(wsync_plugin_instance *inst, wsync_call *call,
                       wsync_operation_fn op, const wsync_request *req)
{
	int32_t st;
	int serial = (inst->desc->flags & WSYNC_PLUGIN_SERIAL) != 0;
	const wsync_plugin_instance *outer = wsync_current_instance;
	wsync_call_reset_outcome(call);
	if (serial)
		pthread_mutex_lock(&inst->serial_lock);
	wsync_current_instance = inst; /* a crash in there names the plugin */
	st = op(inst->state, call, req);
	wsync_current_instance = outer;
	if (serial)
		pthread_mutex_unlock(&inst->serial_lock);
	/* The returned status wins; the recorded message explains it. */
	call->status = st;
	return st;
}

static void base_request(wsync_request *req, const wsync_entry *e, loaded *l,
                         int32_t op)
{
	memset(req, 0, sizeof *req);
	req->struct_size = sizeof *req;
	req->operation = op;
	req->queue_id = e->id;
	req->provider = e->provider;
	req->user_id = e->user_id;
	req->access_token = l->token.access_token;
	req->workout = l->workout_row ? &l->workout : NULL;
	req->scheduled = l->sched_row ? &l->sched : NULL;
	req->workout_provider_id = l->workout_link;
	req->scheduled_provider_id = l->sched_link;
	req->attempt = e->attempts + 1; /* calls started before, plus this one */
	req->now = (int64_t)time(NULL);
	req->reconcile = e->reconcile;
	req->external_key = e->entity_id;
}

/* Everything that creates or changes a workout on a provider holds this
 * session lock: the workout's own entries and a scheduled workout syncing
 * its workout first.  Whoever holds it re-reads the link and commits a new
 * one before letting go, so the workout is never created twice. */
static void workout_lock(PGconn *db, const char *provider, const char *workout_id, int take)
{
	const char *p[2] = {provider, workout_id};
	PQclear(PQexecParams(db, take ? "SELECT pg_advisory_lock(hashtext($1), hashtext($2))"
	                              : "SELECT pg_advisory_unlock(hashtext($1), hashtext($2))",
	                     2, NULL, p, NULL, NULL, 0));
}

/* A scheduled workout needs its workout on the provider first. */
static int32_t ensure_workout_linked(wsync_worker *w, wsync_plugin_instance *inst,
                                     wsync_call *call, const wsync_entry *e, loaded *l,
                                     wsync_dispatch_result *res)
{
	wsync_request req;
	int32_t st;
	workout_lock(w->db, e->provider, l->sched.workout_id, 1);
	if (load_link(w->db, e->provider, "workout", l->sched.workout_id, &l->workout_link) < 0) {
		fail(res, WSYNC_E_UNEXPECTED, PQerrorMessage(w->db));
	} else if (!l->workout_link) {
		base_request(&req, e, l, WSYNC_OP_CREATE);
		req.scheduled = NULL;
		req.external_key = l->sched.workout_id;
		/* The workout's own entries carry its intent; a crash here is
		 * covered by the schedule's intent, so look the workout up too. */
		st = call_op(inst, call, inst->desc->sync_workout, &req);
		if (st == WSYNC_OK && call->provider_id) {
			l->workout_link = strdup(call->provider_id);
			wsync_link_write(w->db, e->provider, "workout", l->sched.workout_id,
			                 e->user_id, LINK_SET, call->provider_id);
			wsync_info("Synced %s workout %s first for scheduled workout %s",
			           e->provider, l->sched.workout_id, e->entity_id);
		} else if (st != WSYNC_OK && st != WSYNC_NOT_APPLICABLE) {
			res->status = st;
			res->retry_after_s = call->retry_after_s;
			res->deferred = call->deferred;
			snprintf(res->message, sizeof res->message, "syncing its workout first: %.990s",
			         call->message);
		}
	}
	workout_lock(w->db, e->provider, l->sched.workout_id, 0);
	return res->status;
}

static int is_delete(const wsync_entry *e)
{
	return !strcmp(e->operation, "delete");
}

static int is_workout(const wsync_entry *e)
{
	return !strcmp(e->entity_type, "workout");
}

/* Load everything; returns WSYNC_OK or the status that ends the entry. */
static int32_t prepare(wsync_worker *w, const wsync_entry *e, loaded *l,
                       wsync_dispatch_result *res)
{
	char err[512];
	wsync_parse_error perr;
	int found = 0;

	if (!is_delete(e)) {
		found = is_workout(e) ? load_workout(w->db, e->entity_id, l)
		                      : load_scheduled(w->db, e->entity_id, l);
		if (found < 0) {
			res->db_lost = PQstatus(w->db) != CONNECTION_OK;
			return fail(res, WSYNC_E_UNEXPECTED, PQerrorMessage(w->db));
		}
		if (found == 0)
			return fail(res, WSYNC_E_RECORD_GONE, is_workout(e)
			            ? "workout no longer exists" : "scheduled workout (or its workout) no longer exists");
	}
	if (wsync_token_load(w->db, e->user_id, e->provider, &l->token, err, sizeof err) < 0) {
		res->db_lost = PQstatus(w->db) != CONNECTION_OK;
		return fail(res, WSYNC_E_UNEXPECTED, err);
	}
	if (!l->token.found || !l->token.access_token)
		return fail(res, WSYNC_E_AUTH, "the user has no connected account on this provider");
	if (l->token.needs_reconnect)
		return fail(res, WSYNC_E_AUTH, "the user must reconnect this provider "
		            "(provider_tokens.needs_reconnect is set)");
	if (l->workout_row && !is_delete(e) &&
	    wsync_workout_parse(l->workout.workout_text, strlen(l->workout.workout_text),
	                        &l->structure, &perr) < 0)
		return fail(res, WSYNC_E_INVALID_WORKOUT, perr.message);
	l->workout.structure = l->structure;
	/* A delete of a scheduled workout needs only its own link. */
	if (((is_workout(e) || l->sched_row) &&
	     load_link(w->db, e->provider, "workout",
	               is_workout(e) ? e->entity_id : l->sched.workout_id, &l->workout_link) < 0) ||
	    (!is_workout(e) &&
	     load_link(w->db, e->provider, "workout_scheduled", e->entity_id, &l->sched_link) < 0)) {
		res->db_lost = PQstatus(w->db) != CONNECTION_OK;
		return fail(res, WSYNC_E_UNEXPECTED, PQerrorMessage(w->db));
	}
	/* A delete uses the id captured at enqueue when the link is gone. */
	if (is_delete(e) && e->provider_entity_id) {
		char **own = is_workout(e) ? &l->workout_link : &l->sched_link;
		if (!*own)
			*own = strdup(e->provider_entity_id);
	}
	return WSYNC_OK;
}

static void run(wsync_plugin_instance *inst, wsync_call *call,
                const wsync_entry *e, loaded *l, wsync_dispatch_result *res)
{
	const wsync_plugin *d = inst->desc;
	char *own = is_workout(e) ? l->workout_link : l->sched_link;
	wsync_request req;
	int32_t st;

	if (is_delete(e)) {
		if (!own) { /* never synced there: nothing to delete */
			res->status = WSYNC_NOT_APPLICABLE;
			return;
		}
		base_request(&req, e, l, WSYNC_OP_DELETE);
		st = call_op(inst, call, is_workout(e) ? d->delete_workout
		                                         : d->delete_scheduled_workout, &req);
		if (st == WSYNC_E_NOT_FOUND) /* already gone: that is what we wanted */
			st = WSYNC_OK;
		res->link = st == WSYNC_OK ? LINK_DROP : LINK_KEEP;
	} else {
		wsync_operation_fn op = is_workout(e) ? d->sync_workout : d->sync_scheduled_workout;
		/* Create of something linked is an update: no duplicate after a crash
		 * between the provider call and our commit. */
		base_request(&req, e, l, own ? WSYNC_OP_UPDATE : WSYNC_OP_CREATE);
		st = call_op(inst, call, op, &req);
		if (st == WSYNC_E_NOT_FOUND && own) {
			/* The linked object vanished on the provider: create it again. */
			wsync_info("%s %s %s: linked object gone on the provider, creating it again",
			           e->provider, e->entity_type, e->entity_id);
			if (is_workout(e))
				req.workout_provider_id = NULL;
			else
				req.scheduled_provider_id = NULL;
			req.operation = WSYNC_OP_CREATE;
			res->link = LINK_DROP;
			st = call_op(inst, call, op, &req);
		}
		if (st == WSYNC_OK && call->provider_id) {
			res->relinked = res->link == LINK_DROP && is_workout(e);
			res->link = LINK_SET;
			res->provider_id = strdup(call->provider_id);
		}
	}
	res->status = st;
	res->retry_after_s = call->retry_after_s;
	res->deferred = call->deferred;
	snprintf(res->message, sizeof res->message, "%s", call->message);
}

/* Record the intent before the first plugin call of this entry (see
 * migrations/0005_exactly_once.sql).  Without it no call is made. */
static int32_t start_calls(wsync_worker *w, const wsync_entry *e, wsync_dispatch_result *res)
{
	int rc = wsync_queue_call_start(w->db, e);
	if (rc == 1) {
		res->started = 1;
		return WSYNC_OK;
	}
	if (rc < 0) {
		res->db_lost = 1;
		return fail(res, WSYNC_E_UNEXPECTED, PQerrorMessage(w->db));
	}
	res->db_lost = 1; /* lease lost: someone else has it; write nothing */
	return fail(res, WSYNC_E_UNEXPECTED, "lease lost before the call started");
}

/* An auth_error that ends an entry: whatever refused the credentials (a 401
 * that stands after a refresh, a 403 or 412, a refused refresh, no refresh
 * endpoint, the plugin's own verdict), only the user can fix it by
 * connecting again.  Flag the token so the application can ask for that,
 * and say so in the message. */
static void needs_reconnect(wsync_worker *w, const wsync_entry *e,
                            wsync_dispatch_result *res)
{
	char err[256], msg[sizeof res->message];

	if (wsync_token_mark_reconnect(w->db, e->user_id, e->provider, err, sizeof err) < 0)
		wsync_warn("entry %s: %s", e->id, err);
	if (!strstr(res->message, "must reconnect")) {
		snprintf(msg, sizeof msg, "the user must reconnect %s: %s", e->provider,
		         res->message[0] ? res->message : "credentials refused");
		memcpy(res->message, msg, sizeof msg);
	}
}

void wsync_dispatch(wsync_worker *w, wsync_plugin_instance *inst, const wsync_entry *e,
                    wsync_dispatch_result *res)
{
	loaded l = {0};
	wsync_call call;

	memset(res, 0, sizeof *res);
	wsync_call_init(&call, inst);
	call.http = w->http;
	call.db = w->db;
	call.limiter = w->limiter;
	call.user_id = e->user_id;
	/* prepare() reads the links, so it runs under the workout's lock. */
	if (is_workout(e))
		workout_lock(w->db, e->provider, e->entity_id, 1);
	if (prepare(w, e, &l, res) == WSYNC_OK && start_calls(w, e, res) == WSYNC_OK) {
		call.token = &l.token;
		if (!is_workout(e) && !is_delete(e))
			ensure_workout_linked(w, inst, &call, e, &l, res);
		if (res->status == WSYNC_OK)
			run(inst, &call, e, &l, res);
		if (res->status == WSYNC_E_AUTH)
			needs_reconnect(w, e, res);
		/* Commit the workout's new link before the lock goes; the
		 * caller's transaction writes it again, which is harmless. */
		if (is_workout(e) && res->link != LINK_KEEP)
			wsync_link_write(w->db, e->provider, e->entity_type, e->entity_id,
			                 e->user_id, res->link, res->provider_id);
	}
	if (is_workout(e))
		workout_lock(w->db, e->provider, e->entity_id, 0);
	if (res->status != WSYNC_OK && res->status != WSYNC_NOT_APPLICABLE && !res->message[0])
		snprintf(res->message, sizeof res->message, "plugin %s returned status %d without a message",
		         inst->desc->name, res->status);
	/* The message goes to the log and the queue row: no secret in it. */
	wsync_call_redact(&call, res->message);
	wsync_call_clean(&call);
	loaded_free(&l);
}
