/* The e2e fixtures themselves, with the example plugin: an application
 * writes workouts, wsyncd --once drains, links appear; the sandbox answers
 * its control API, over HTTP and HTTPS. */
#include "e2e.h"

#include <stdlib.h>

static void drain_with_example(const char *so)
{
	e2e *t = e2e_start(0);
	const char *user, *w, *s;
	char *out = NULL, *state, *link;
	json_object *stats;

	e2e_add_plugin(t, so);
	e2e_instance(t, "example", "example", "[provider]\nplugin = example\n");
	user = e2e_user(t, "example", "tok");
	w = strdup(e2e_workout(t, user, "Tempo", "bike", "- 20m 85%"));
	s = strdup(e2e_schedule(t, user, w, "2026-12-01", "07:30:00"));
	T_EQ_INT(e2e_wsyncd_once(t, &out), 0);
	/* The schedule waits for its workout, so they may be two batches. */
	T_CONTAINS(out, "Batch sync complete: ");
	free(out);
	state = e2e_queue_state(t, w, "example");
	T_EQ_STR(state, "processed||0");
	free(state);
	state = e2e_queue_state(t, s, "example");
	T_EQ_STR(state, "processed||0");
	free(state);
	link = e2e_link(t, "example", "workout_scheduled", s);
	T_CHECK(link && !strncmp(link, "ex-", 3));
	free(link);
	stats = e2e_sandbox_json(t, "/_sandbox/stats");
	T_CHECK(stats != NULL);
	json_object_put(stats);
	free((char *)w);
	free((char *)s);
	e2e_stop(t);
}

static void sandbox_over_tls(void)
{
	e2e *t = e2e_start(1);
	char *body = NULL;
	T_CHECK(!strncmp(t->base_url, "https://", 8));
	T_EQ_INT(e2e_sandbox(t, "GET", "/_sandbox/health", NULL, &body), 200);
	free(body);
	e2e_stop(t);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	drain_with_example(argv[1]);
	sandbox_over_tls();
	return t_done();
}
