// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The control plane's gate (interfaces.md §4.2, §4.4, §4.5): credential
 * extraction, the 401/403 responses, the RBAC decision table and the namespace
 * rule, as HTTP middleware hooks and as helpers for handlers and gRPC.
 */
#define ES_LOG_TARGET "ebpfsentinel::auth"
#include "api/auth.h"
#include "api/grpc.h"
#include "api/http.h"
#include "core/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MSG_NO_TOKEN "authentication required: no token provided"

static _Atomic(const struct es_auth_provider *) provider;

static const char *const role_names[] = {"viewer", "operator", "admin"};

const char *es_role_name(int role)
{
	return role >= ES_ROLE_VIEWER && role <= ES_ROLE_ADMIN ? role_names[role] : "viewer";
}

int es_role_parse(const char *s, enum es_role *out)
{
	for (int i = 0; i <= ES_ROLE_ADMIN; i++) {
		if (s && !strcasecmp(s, role_names[i])) {
			*out = (enum es_role)i;
			return 0;
		}
	}
	return -EINVAL;
}

void es_identity_clear(struct es_identity *id)
{
	if (id->namespaces)
		for (char **p = id->namespaces; *p; p++)
			free(*p);
	free(id->namespaces);
	memset(id, 0, sizeof(*id));
}

bool es_auth_enabled(void)
{
	const struct es_auth_provider *p = atomic_load(&provider);

	return p && p->enabled();
}

/* ---- RBAC ------------------------------------------------------------------------ */

static bool is_write(const char *method, unsigned flags)
{
	return (flags & ES_RT_WRITE) || (method && strcmp(method, "GET") && strcmp(method, "HEAD"));
}

enum es_authz es_authz_route(const struct es_identity *id, const char *method, unsigned flags)
{
	/*
	 * NS routes decide in the handler, which knows the scope (§4.4): the
	 * viewer refusal is part of that rule, and a delete of an unknown id
	 * skips it (404) as it does upstream.
	 */
	if (flags & ES_RT_NS)
		return ES_AUTHZ_ALLOW;
	if (!is_write(method, flags) || id->role >= ES_ROLE_OPERATOR)
		return ES_AUTHZ_ALLOW;
	return ES_AUTHZ_VIEWER_WRITE;
}

enum es_authz es_authz_scope(const struct es_identity *id, const char *scope, const char **ns)
{
	*ns = NULL;
	if (id->role == ES_ROLE_ADMIN)
		return ES_AUTHZ_ALLOW;
	if (id->role != ES_ROLE_OPERATOR)
		return ES_AUTHZ_VIEWER_WRITE;
	if (!scope || strncmp(scope, "namespace:", 10))
		return ES_AUTHZ_SCOPE_NEEDS_ADMIN; /* global, interface:X, anything else */
	*ns = scope + 10;
	if (!id->namespaces)
		return ES_AUTHZ_ALLOW; /* unrestricted */
	for (char **p = id->namespaces; *p; p++)
		if (!strcmp(*p, *ns))
			return ES_AUTHZ_ALLOW;
	return ES_AUTHZ_NAMESPACE_FORBIDDEN;
}

static int deny(struct es_resp *resp, enum es_authz d, const char *ns)
{
	switch (d) {
	case ES_AUTHZ_ALLOW: return 0;
	case ES_AUTHZ_VIEWER_WRITE:
		es_resp_error(resp, 403, "INSUFFICIENT_ROLE",
			      "viewer role cannot perform write operations");
		break;
	case ES_AUTHZ_SCOPE_NEEDS_ADMIN:
		es_resp_error(resp, 403, "INSUFFICIENT_ROLE",
			      "global and interface scopes require admin role");
		break;
	case ES_AUTHZ_NAMESPACE_FORBIDDEN:
		es_resp_error(resp, 403, "NAMESPACE_FORBIDDEN", "access denied for namespace '%s'",
			      ns ? ns : "");
		break;
	}
	return -EACCES;
}

int es_auth_check_scope(const struct es_req *req, struct es_resp *resp, const char *scope)
{
	const char *ns = NULL;
	enum es_authz d;

	if (!req->identity || !req->identity->authenticated)
		return 0;
	d = es_authz_scope(req->identity, scope, &ns);
	return deny(resp, d, ns);
}

/* ---- authentication ---------------------------------------------------------------- */

static int unauthorized(struct es_resp *resp, const char *msg)
{
	es_resp_error(resp, 401, "AUTHENTICATION_REQUIRED", "%s", msg);
	es_resp_header(resp, "WWW-Authenticate", "Bearer");
	return -EACCES;
}

/* `Bearer <credential>`: exactly that scheme and one space. NULL otherwise. */
static const char *bearer(const char *h)
{
	return h && !strncmp(h, "Bearer ", 7) && h[7] ? h + 7 : NULL;
}

static int verify(const char *cred, struct es_identity *id, char *msg, size_t len)
{
	const struct es_auth_provider *p = atomic_load(&provider);

	memset(id, 0, sizeof(*id));
	if (!p)
		return snprintf(msg, len, "invalid token: authentication unavailable"), -EACCES;
	if (p->verify(cred, id, msg, len)) {
		es_identity_clear(id);
		return -EACCES;
	}
	id->authenticated = true;
	return 0;
}

static bool hook_required(const struct es_route *route)
{
	const struct es_auth_provider *p = atomic_load(&provider);

	if (!p || !p->enabled() || (route->flags & ES_RT_PUBLIC))
		return false;
	return !(route->flags & ES_RT_METRICS) || p->metrics_required();
}

static int hook_authenticate(const struct es_req *req, struct es_identity *id, struct es_resp *resp)
{
	const char *cred = bearer(req->header(req, "Authorization"));
	char msg[512];

	if (!cred)
		cred = req->header(req, "X-API-Key");
	if (!cred || !*cred)
		return unauthorized(resp, MSG_NO_TOKEN);
	if (verify(cred, id, msg, sizeof(msg))) {
		pr_debug("request refused", LF_STR("reason", msg), LF_STR("path", req->path),
			 LF_STR("client_ip", req->client_ip));
		return unauthorized(resp, msg);
	}
	return 0;
}

static int hook_authorize(const struct es_route *route, const struct es_identity *id,
			  struct es_resp *resp)
{
	return deny(resp, es_authz_route(id, route->method, route->flags), NULL);
}

static void hook_free_identity(struct es_identity *id)
{
	es_identity_clear(id);
}

static unsigned long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000ull +
	       (unsigned long long)ts.tv_nsec / 1000000ull;
}

static int hook_limit_write(const struct es_req *req, struct es_resp *resp)
{
	unsigned s;
	char v[16], body[64];

	if (!es_wlimit_take(req->client_ip ? req->client_ip : "", now_ms(), &s))
		return 0;
	snprintf(v, sizeof(v), "%u", s);
	snprintf(body, sizeof(body), "Too Many Requests! Wait for %us", s);
	es_resp_text(resp, 429, "text/plain; charset=utf-8", body);
	es_resp_header(resp, "x-ratelimit-after", v);
	es_resp_header(resp, "retry-after", v);
	return -EAGAIN;
}

static const struct es_http_hooks hooks = {
    .auth_required = hook_required,
    .authenticate = hook_authenticate,
    .authorize = hook_authorize,
    .free_identity = hook_free_identity,
    .limit_write = hook_limit_write,
};

/* The gRPC server's hook: AlertStreamService needs a valid identity (§4.4). */
static int grpc_auth(const char *authorization, char *msg, size_t len)
{
	struct es_identity id;
	int r = es_auth_check_bearer(authorization, &id, msg, len);

	es_identity_clear(&id);
	return r;
}

void es_auth_install(const struct es_auth_provider *p)
{
	atomic_store(&provider, p);
	es_http_set_hooks(&hooks);
	es_grpc_set_auth_hook(grpc_auth);
}

int es_auth_check_bearer(const char *authorization, struct es_identity *id, char *msg, size_t len)
{
	const char *cred;

	memset(id, 0, sizeof(*id));
	if (!es_auth_enabled())
		return 0;
	cred = bearer(authorization);
	if (!cred) {
		snprintf(msg, len, "authentication required: no Bearer token provided");
		return -EACCES;
	}
	return verify(cred, id, msg, len);
}
