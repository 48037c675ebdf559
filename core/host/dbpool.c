#include "dbpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct wsync_dbpool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	char *conninfo;
	int max;
	int open;          /* connections that exist (idle or borrowed) */
	int n_idle;
	PGconn **idle;     /* max slots */
};

PGconn *wsync_db_connect(const char *conninfo, const char *application)
{
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const values[] = {conninfo ? conninfo : "", application, NULL};
	return PQconnectdbParams(keys, values, 1); /* 1: dbname holds the conninfo */
}

wsync_dbpool *wsync_dbpool_new(const char *conninfo, int max)
{
	wsync_dbpool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->max = max > 0 ? max : 1;
	p->conninfo = strdup(conninfo ? conninfo : "");
	p->idle = calloc((size_t)p->max, sizeof *p->idle);
	if (!p->conninfo || !p->idle) {
		free(p->conninfo);
		free(p->idle);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	return p;
}

void wsync_dbpool_free(wsync_dbpool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n_idle; i++)
		PQfinish(p->idle[i]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	free(p->idle);
	free(p->conninfo);
	free(p);
}

PGconn *wsync_dbpool_acquire(wsync_dbpool *p)
{
	PGconn *db = NULL;
	pthread_mutex_lock(&p->lock);
	while (!p->n_idle && p->open >= p->max)
		pthread_cond_wait(&p->freed, &p->lock);
	if (p->n_idle) {
		db = p->idle[--p->n_idle];
		pthread_mutex_unlock(&p->lock);
		return db;
	}
	p->open++; /* reserve the slot, connect outside the lock */
	pthread_mutex_unlock(&p->lock);
	db = wsync_db_connect(p->conninfo, "wsyncd pool");
	if (PQstatus(db) == CONNECTION_OK)
		return db;
	PQfinish(db);
	pthread_mutex_lock(&p->lock);
	p->open--;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void wsync_dbpool_release(wsync_dbpool *p, PGconn *db)
{
	if (!db)
		return;
	pthread_mutex_lock(&p->lock);
	if (PQstatus(db) == CONNECTION_OK && PQtransactionStatus(db) == PQTRANS_IDLE &&
	    p->n_idle < p->max) {
		p->idle[p->n_idle++] = db;
		db = NULL;
	} else {
		p->open--;
	}
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
	PQfinish(db);
}
