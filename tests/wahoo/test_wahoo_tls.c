/*
 * TLS verification cannot be turned off by accident: against a sandbox
 * serving HTTPS with a self-signed certificate, wsyncd refuses the
 * connection (a provider_error naming the certificate, retried later)
 * unless the instance names that certificate in ca_file.
 */
#include "e2e.h"

#include <stdlib.h>

static const char *instance_without_ca =
	"[provider]\nplugin = wahoo\nbase_url = @BASE@\n";
static const char *instance_with_ca =
	"[provider]\nplugin = wahoo\nbase_url = @BASE@\nca_file = @DIR@/cert.pem\n";

int main(int argc, char **argv)
{
	e2e *t;
	char *w, *state, *msg, *link;
	const char *p[1];

	if (argc < 2)
		return 2;
	t = e2e_start(1);
	e2e_add_plugin(t, argv[1]);
	e2e_instance(t, "wahoo", "wahoo", instance_without_ca);
	w = strdup(e2e_workout(t, e2e_user(t, "wahoo", "tok-tls"), "Tempo", "bike", "- 20m 85%"));
	p[0] = w;

	T_EQ_INT(e2e_wsyncd_once(t, NULL), 0);
	state = e2e_queue_state(t, w, "wahoo");
	T_EQ_STR(state, "pending|provider_error|1");
	free(state);
	msg = t_query_str(t->db, "SELECT error_message FROM workout_sync_queue WHERE entity_id = $1",
	                  1, p);
	T_CONTAINS(msg, "certificate");
	free(msg);
	T_CHECK(e2e_link(t, "wahoo", "workout", w) == NULL);

	/* Trust the sandbox's certificate explicitly: the retry goes through. */
	e2e_instance(t, "wahoo", "wahoo", instance_with_ca);
	t_exec(t->db, "UPDATE workout_sync_queue SET next_retry_at = now() WHERE entity_id = $1",
	       1, p);
	T_EQ_INT(e2e_wsyncd_once(t, NULL), 0);
	state = e2e_queue_state(t, w, "wahoo");
	T_EQ_STR(state, "processed||1");
	free(state);
	link = e2e_link(t, "wahoo", "workout", w);
	T_CHECK(link != NULL);
	free(link);
	free(w);
	e2e_stop(t);
	return t_done();
}
