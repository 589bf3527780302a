/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The REST server: ulfius on libmicrohttpd, one thread per connection (capped),
 * our own router over the domains' route tables so 404/405/415/413 and the
 * error model are uniform. Optional TLS 1.3 through GnuTLS.
 */
#ifndef ES_HTTP_H
#define ES_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "api/route.h"

#define ES_HTTP_BODY_LIMIT (64 * 1024)
#define ES_HTTP_MAX_CONNECTIONS 256

struct es_http_opts {
	const char *bind_address;
	uint16_t port;
	bool tls; /* HTTPS with the material of api/tls.h (es_tls_load first) */
};

/*
 * Middleware hooks, set by the auth domain. authenticate() fills identity and
 * returns 0, or writes a 401 into resp and returns -EACCES. authorize() checks
 * the route's role requirement (403). limit_write() applies the write limiter
 * (429). Each is optional.
 */
struct es_http_hooks {
	bool (*auth_required)(const struct es_route *route);
	int (*authenticate)(const struct es_req *req, struct es_identity *id, struct es_resp *resp);
	int (*authorize)(const struct es_route *route, const struct es_identity *id,
			 struct es_resp *resp);
	void (*free_identity)(struct es_identity *id);
	int (*limit_write)(const struct es_req *req, struct es_resp *resp);
};

void es_http_set_hooks(const struct es_http_hooks *hooks);

/* Route tables served, NULL-method terminated; the server copies the list. */
int es_http_add_routes(const struct es_route *routes);
/* Every registered route (for the OpenAPI coverage check). */
const struct es_route *const *es_http_routes(unsigned *n);

int es_http_start(const struct es_http_opts *opts);
void es_http_stop(void);

/*
 * Dispatch a request through the router and middleware without the network
 * (unit tests and the CLI's own tests). Exposed for tests.
 */
void es_http_dispatch(const char *method, const char *path, const char *query,
		      const char *content_type, const char *body, size_t body_len,
		      struct es_resp *resp);
/* Same with request headers ("Name: value", NULL-terminated) and a client address. */
void es_http_dispatch_ex(const char *method, const char *path, const char *query,
			 const char *content_type, const char *const *headers,
			 const char *client_ip, const char *body, size_t body_len,
			 struct es_resp *resp);

/* Match a route pattern against a decoded path; fills up to 4 params. */
bool es_route_match(const char *pattern, const char *path, char params[][2][256], int *nparams);

#endif
