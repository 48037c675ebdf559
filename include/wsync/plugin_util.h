/*
 * wsync/plugin_util.h -- conveniences over plugin.h that every provider
 * plugin otherwise writes itself (ABI 1.1).
 *
 * Everything here is static inline and built only from plugin.h's members:
 * nothing crosses the ABI, nothing links against wsync, and a plugin that
 * does not include this header loses nothing but the typing.
 */
#ifndef WSYNC_PLUGIN_UTIL_H
#define WSYNC_PLUGIN_UTIL_H

#include "wsync/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Whether a create must first look for what an earlier attempt may have
 * made (plugin.h, EXACTLY ONCE): the host's `reconcile`, or any attempt
 * after the first -- a 1.0 host has no `reconcile`, and one lookup costs
 * less than a duplicate on an athlete's calendar.
 */
static inline int wsync_must_reconcile(const wsync_request *req)
{
	if (req->attempt > 1)
		return 1;
	return WSYNC_HAS(req, reconcile) && req->reconcile;
}

/*
 * One authenticated request through req->host->http(): `body` is a
 * NUL-terminated text sent as `content_type` (NULL: no body), `headers` the
 * n_headers extra headers (Accept, a User-Agent...).  *resp is readied here
 * and filled by the host; the return value is the host's classification
 * (plugin.h, HTTP CLASSIFICATION), its message already recorded.
 */
static inline int32_t wsync_http_send(const wsync_request *req, wsync_call *call,
                                      const char *method, const char *path,
                                      const char *content_type, const char *body,
                                      const wsync_http_header *headers, uint32_t n_headers,
                                      wsync_http_response *resp)
{
	wsync_http_request rq = {0};
	wsync_http_response empty = {0};
	size_t len = 0;

	while (body && body[len])
		len++;
	rq.struct_size = sizeof rq;
	rq.auth = 1;
	rq.method = method;
	rq.path = path;
	rq.content_type = body ? content_type : NULL;
	rq.body = body;
	rq.body_len = len;
	rq.headers = headers;
	rq.n_headers = n_headers;
	*resp = empty;
	resp->struct_size = sizeof *resp;
	return req->host->http(call, &rq, resp);
}

#ifdef __cplusplus
}
#endif
#endif /* WSYNC_PLUGIN_UTIL_H */
