/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Authentication and RBAC of the control plane (interfaces.md §4), enforced
 * in one place: the HTTP middleware hooks installed from here, the scope
 * check the firewall handlers call for ES_RT_NS routes, and the bearer check
 * of the gRPC server. The auth domain (src/domains/auth) provides the
 * credential verification (JWT, OIDC, API keys) as an es_auth_provider.
 */
#ifndef ES_API_AUTH_H
#define ES_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "api/route.h"

enum es_role {
	ES_ROLE_VIEWER = 0,
	ES_ROLE_OPERATOR,
	ES_ROLE_ADMIN,
};

/* "viewer", "operator", "admin". */
const char *es_role_name(int role);
/* Case-insensitive role name. 0 or -EINVAL. */
int es_role_parse(const char *s, enum es_role *out);

struct es_auth_provider {
	bool (*enabled)(void);		/* auth.enabled as running */
	bool (*metrics_required)(void); /* auth.metrics_auth_required as running */
	/*
	 * Verify a credential (JWT or API key, whichever header carried it).
	 * 0 with *id filled (namespaces owned by id, see es_identity_clear), or
	 * -EACCES with the 401 message in msg ("token expired", "invalid token: …").
	 */
	int (*verify)(const char *credential, struct es_identity *id, char *msg, size_t len);
};

/* Install the provider and the HTTP middleware hooks (auth, RBAC, write limiter). */
void es_auth_install(const struct es_auth_provider *p);
bool es_auth_enabled(void);
void es_identity_clear(struct es_identity *id);

/* ---- RBAC decisions (pure; interfaces.md §4.4) ---- */

enum es_authz {
	ES_AUTHZ_ALLOW = 0,
	ES_AUTHZ_VIEWER_WRITE, /* 403 INSUFFICIENT_ROLE: viewer role cannot perform write … */
	ES_AUTHZ_SCOPE_NEEDS_ADMIN,  /* 403 INSUFFICIENT_ROLE: global and interface scopes … */
	ES_AUTHZ_NAMESPACE_FORBIDDEN /* 403 NAMESPACE_FORBIDDEN: access denied for namespace … */
};

/*
 * May id call a route with these flags and method? ES_RT_WRITE and any
 * non-GET method are writes (operator, admin). ES_RT_NS routes pass: their
 * handler applies the namespace rule, viewer refusal included, with
 * es_auth_check_scope() once it knows the scope.
 */
enum es_authz es_authz_route(const struct es_identity *id, const char *method, unsigned flags);
/*
 * May id write a firewall rule of this scope ("global", "interface:X",
 * "namespace:X"; anything else means interface)? *ns points into scope for
 * the namespace case.
 */
enum es_authz es_authz_scope(const struct es_identity *id, const char *scope, const char **ns);

/*
 * For handlers of ES_RT_NS routes: check the namespace rule for `scope` (the
 * body's scope on create, the stored rule's scope on delete). Returns 0 when
 * allowed (always, with auth off), or -EACCES after writing the 403 response.
 */
int es_auth_check_scope(const struct es_req *req, struct es_resp *resp, const char *scope);

/*
 * For the gRPC server: with auth on, check the `authorization` metadata value
 * ("Bearer <credential>"). 0 with *id filled (es_identity_clear it), or
 * -EACCES with the UNAUTHENTICATED message in msg. Always 0 with auth off
 * (id->authenticated false).
 */
int es_auth_check_bearer(const char *authorization, struct es_identity *id, char *msg, size_t len);

/* ---- write rate limiter (interfaces.md §3.1) ---- */

#define ES_WLIMIT_BURST 60
/*
 * Take one write token for client ip at now_ms. 0, or -EAGAIN with the
 * seconds to wait in *retry_s.
 */
int es_wlimit_take(const char *ip, unsigned long long now_ms, unsigned *retry_s);
void es_wlimit_reset(void);

#endif
