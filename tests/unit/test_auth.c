// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Authentication and RBAC (interfaces.md §4): every claim check of §4.3 with a
 * fake clock, forged tokens (HS256 with the public key, alg none, other key,
 * tampering), kid matching, API keys, the RBAC decision table, the middleware
 * (extraction order, 401/403 bodies) and the write limiter.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <orcania.h>
#include <rhonabwy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/domain.h"
#include "api/auth.h"
#include "api/http.h"
#include "core/log.h"
#include "domains/auth/auth.h"
#include "domains/auth/token.h"
#include "unit.h"

#define NOW 1700000000LL

static jwk_t *priv, *pub, *priv2, *pub2;
static char pem[4096];
static struct auth_keyset *ks;

static void keys_setup(void)
{
	size_t len = sizeof(pem) - 1;
	char err[128];

	es_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
	r_jwk_init(&priv);
	r_jwk_init(&pub);
	r_jwk_init(&priv2);
	r_jwk_init(&pub2);
	cr_assert_eq(r_jwk_generate_key_pair(priv, pub, R_KEY_TYPE_RSA, 2048, "k1"), RHN_OK);
	cr_assert_eq(r_jwk_generate_key_pair(priv2, pub2, R_KEY_TYPE_RSA, 2048, "k2"), RHN_OK);
	cr_assert_eq(r_jwk_export_to_pem_der(pub, R_FORMAT_PEM, (unsigned char *)pem, &len, 0),
		     RHN_OK);
	pem[len] = '\0';
	ks = auth_keyset_from_pem(pem, len, err, sizeof(err));
	cr_assert_not_null(ks, "%s", err);
}

static void keys_teardown(void)
{
	auth_keyset_put(ks);
	r_jwk_free(priv);
	r_jwk_free(pub);
	r_jwk_free(priv2);
	r_jwk_free(pub2);
}

/* A token signed with key k (RS256), claims from a JSON text, optional kid. */
static char *mint(jwk_t *k, const char *claims, const char *kid)
{
	jwt_t *jwt;
	char *t, *out;

	r_jwt_init(&jwt);
	r_jwt_set_sign_alg(jwt, R_JWA_ALG_RS256);
	r_jwt_set_full_claims_json_str(jwt, claims);
	if (kid)
		r_jwt_set_header_str_value(jwt, "kid", kid);
	t = r_jwt_serialize_signed(jwt, k, 0);
	cr_assert_not_null(t);
	out = strdup(t);
	r_free(t);
	r_jwt_free(jwt);
	return out;
}

static char *b64url(const char *s)
{
	unsigned char out[1024];
	size_t n = sizeof(out);

	cr_assert(o_base64url_encode((const unsigned char *)s, strlen(s), out, &n));
	out[n] = '\0';
	return strdup((char *)out);
}

static enum auth_verdict check(const char *token, const struct auth_claims_cfg *cc,
			       struct es_identity *id, char *msg)
{
	memset(id, 0, sizeof(*id));
	return auth_jwt_verify(ks, cc, token, NOW, id, msg, 256);
}

TestSuite(token, .init = keys_setup, .fini = keys_teardown);

Test(token, claim_checks_against_a_fake_clock)
{
	static const struct {
		const char *claims;
		enum auth_verdict want;
		const char *msg; /* expected message prefix for failures */
		const char *what;
	} cases[] = {
	    {"{\"sub\":\"alice\",\"exp\":1700000100}", AUTH_OK, NULL, "valid"},
	    {"{\"sub\":\"alice\",\"exp\":1699999941}", AUTH_OK, NULL, "expired 59 s ago: leeway"},
	    {"{\"sub\":\"alice\",\"exp\":1699999940}", AUTH_EXPIRED, "token expired",
	     "expired 60 s ago"},
	    {"{\"sub\":\"alice\",\"exp\":1600000000}", AUTH_EXPIRED, "token expired",
	     "long expired"},
	    {"{\"sub\":\"alice\"}", AUTH_INVALID, "invalid token: missing or invalid 'exp'",
	     "no exp"},
	    {"{\"sub\":\"alice\",\"exp\":\"soon\"}", AUTH_INVALID, "invalid token: missing",
	     "exp not a number"},
	    {"{\"sub\":\"alice\",\"exp\":1700000100,\"nbf\":1700000059}", AUTH_OK, NULL,
	     "nbf within leeway"},
	    {"{\"sub\":\"alice\",\"exp\":1700000100,\"nbf\":1700000061}", AUTH_INVALID,
	     "invalid token: token not yet valid", "nbf in the future"},
	    {"{\"exp\":1700000100}", AUTH_INVALID, "invalid token: missing or invalid 'sub'",
	     "no sub"},
	    {"{\"sub\":42,\"exp\":1700000100}", AUTH_INVALID, "invalid token: missing or invalid",
	     "sub not a string"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"iat\":1,\"aud\":\"other\"}", AUTH_OK, NULL,
	     "iat unchecked, aud ignored without a configured audience"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"namespaces\":\"prod\"}", AUTH_INVALID,
	     "invalid token: 'namespaces' claim", "namespaces not an array"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"namespaces\":[\"a\",1]}", AUTH_INVALID,
	     "invalid token: 'namespaces' claim", "namespaces with a number"},
	};
	struct auth_claims_cfg cc = {0};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = mint(priv, cases[i].claims, NULL), msg[256] = "";
		struct es_identity id;
		enum auth_verdict v = check(t, &cc, &id, msg);

		cr_expect_eq(v, cases[i].want, "%s: verdict %d (%s)", cases[i].what, v, msg);
		if (cases[i].msg)
			cr_expect(!strncmp(msg, cases[i].msg, strlen(cases[i].msg)), "%s: %s",
				  cases[i].what, msg);
		es_identity_clear(&id);
		free(t);
	}
}

Test(token, issuer_and_audience_when_configured)
{
	static const struct {
		const char *claims;
		enum auth_verdict want;
		const char *what;
	} cases[] = {
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"iss\":\"idp\",\"aud\":\"es\"}", AUTH_OK, "both"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"iss\":\"idp\",\"aud\":[\"x\",\"es\"]}", AUTH_OK,
	     "aud array containing it"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"iss\":\"evil\",\"aud\":\"es\"}", AUTH_INVALID,
	     "wrong iss"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"aud\":\"es\"}", AUTH_INVALID, "missing iss"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"iss\":\"idp\",\"aud\":\"other\"}", AUTH_INVALID,
	     "wrong aud"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"iss\":\"idp\",\"aud\":[\"x\"]}", AUTH_INVALID,
	     "aud array without it"},
	    {"{\"sub\":\"a\",\"exp\":1700000100,\"iss\":\"idp\"}", AUTH_INVALID, "missing aud"},
	};
	struct auth_claims_cfg cc = {.issuer = "idp", .audience = "es"};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = mint(priv, cases[i].claims, NULL), msg[256] = "";
		struct es_identity id;

		cr_expect_eq(check(t, &cc, &id, msg), cases[i].want, "%s: %s", cases[i].what, msg);
		if (cases[i].want == AUTH_INVALID)
			cr_expect(strstr(msg, "invalid issuer") || strstr(msg, "invalid audience"),
				  "%s: %s", cases[i].what, msg);
		es_identity_clear(&id);
		free(t);
	}
}

Test(token, identity_role_and_namespaces)
{
	struct auth_claims_cfg cc = {0};
	struct es_identity id;
	char msg[256], *t;

	t = mint(priv,
		 "{\"sub\":\"ops\",\"exp\":1700000100,\"role\":\"OPERATOR\",\"namespaces\":["
		 "\"prod\",\"dev\"]}",
		 NULL);
	cr_assert_eq(check(t, &cc, &id, msg), AUTH_OK, "%s", msg);
	cr_expect_str_eq(id.sub, "ops");
	cr_expect_eq(id.role, ES_ROLE_OPERATOR);
	cr_assert_not_null(id.namespaces);
	cr_expect_str_eq(id.namespaces[0], "prod");
	cr_expect_str_eq(id.namespaces[1], "dev");
	cr_expect_null(id.namespaces[2]);
	es_identity_clear(&id);
	free(t);

	t = mint(priv, "{\"sub\":\"x\",\"exp\":1700000100,\"role\":\"root\",\"namespaces\":[]}",
		 NULL);
	cr_assert_eq(check(t, &cc, &id, msg), AUTH_OK, "%s", msg);
	cr_expect_eq(id.role, ES_ROLE_VIEWER, "unknown role: viewer");
	cr_assert_not_null(id.namespaces, "an explicit empty array grants none");
	cr_expect_null(id.namespaces[0]);
	es_identity_clear(&id);
	free(t);

	t = mint(priv, "{\"sub\":\"x\",\"exp\":1700000100}", NULL);
	cr_assert_eq(check(t, &cc, &id, msg), AUTH_OK, "%s", msg);
	cr_expect_eq(id.role, ES_ROLE_VIEWER, "missing role: viewer");
	cr_expect_null(id.namespaces, "absent claim: unrestricted");
	es_identity_clear(&id);
	free(t);
}

Test(token, forged_and_malformed_tokens_are_refused)
{
	struct auth_claims_cfg cc = {0};
	const char *claims = "{\"sub\":\"mallory\",\"exp\":1700000100,\"role\":\"admin\"}";
	struct es_identity id;
	char msg[256], *t, *h, *p, buf[4096];
	jwk_t *hmac;
	jwt_t *jwt;

	/* HS256 keyed with the RSA public key PEM: the classic confusion attack. */
	r_jwk_init(&hmac);
	cr_assert_eq(r_jwk_import_from_symmetric_key(hmac, (unsigned char *)pem, strlen(pem)),
		     RHN_OK);
	r_jwt_init(&jwt);
	r_jwt_set_sign_alg(jwt, R_JWA_ALG_HS256);
	r_jwt_set_full_claims_json_str(jwt, claims);
	t = r_jwt_serialize_signed(jwt, hmac, 0);
	cr_assert_not_null(t);
	cr_expect_eq(check(t, &cc, &id, msg), AUTH_INVALID);
	cr_expect_str_eq(msg,
			 "invalid token: unsupported algorithm 'HS256' (only RS256 is accepted)");
	r_free(t);
	r_jwt_free(jwt);
	r_jwk_free(hmac);

	/* alg none, with and without a trailing dot. */
	h = b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}");
	p = b64url(claims);
	snprintf(buf, sizeof(buf), "%s.%s.", h, p);
	cr_expect_eq(check(buf, &cc, &id, msg), AUTH_INVALID, "alg none: %s", msg);
	snprintf(buf, sizeof(buf), "%s.%s", h, p);
	cr_expect_eq(check(buf, &cc, &id, msg), AUTH_INVALID);
	free(h);

	/* RS256 header over a signature of another key. */
	t = mint(priv2, claims, NULL);
	cr_expect_eq(check(t, &cc, &id, msg), AUTH_INVALID);
	cr_expect_str_eq(msg, "invalid token: signature verification failed");
	free(t);

	/* A valid token with its payload swapped for an admin one. */
	t = mint(priv, "{\"sub\":\"mallory\",\"exp\":1700000100,\"role\":\"viewer\"}", NULL);
	{
		char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');

		snprintf(buf, sizeof(buf), "%.*s.%s%s", (int)(d1 - t), t, p, d2);
	}
	cr_expect_eq(check(buf, &cc, &id, msg), AUTH_INVALID);
	cr_expect_str_eq(msg, "invalid token: signature verification failed");
	free(t);
	free(p);

	for (const char *const *bad = (const char *const[]){"", "a.b.c", "....", "x", "a.b", NULL};
	     *bad; bad++) {
		cr_expect_eq(check(*bad, &cc, &id, msg), AUTH_INVALID, "'%s'", *bad);
		cr_expect_str_eq(msg, "invalid token: malformed token");
	}
	es_identity_clear(&id);
}

Test(token, oidc_kid_is_required_and_matched)
{
	char jwks[8192], err[128], msg[256], *t;
	char *j1 = r_jwk_export_to_json_str(pub, 0), *j2 = r_jwk_export_to_json_str(pub2, 0);
	struct auth_claims_cfg cc = {.need_kid = true};
	const char *claims = "{\"sub\":\"a\",\"exp\":1700000100}";
	struct auth_keyset *set;
	struct es_identity id;

	snprintf(jwks, sizeof(jwks),
		 "{\"keys\":[%s,%s,{\"kty\":\"oct\",\"k\":\"AAAA\",\"kid\":\"h\"}]}", j1, j2);
	r_free(j1);
	r_free(j2);
	set = auth_keyset_from_jwks(jwks, strlen(jwks), err, sizeof(err));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(auth_keyset_size(set), 2, "the symmetric key is skipped");

	t = mint(priv2, claims, "k2");
	memset(&id, 0, sizeof(id));
	cr_expect_eq(auth_jwt_verify(set, &cc, t, NOW, &id, msg, sizeof(msg)), AUTH_OK, "%s", msg);
	es_identity_clear(&id);
	free(t);

	t = mint(priv2, claims, "k1"); /* kid of the other key */
	cr_expect_eq(auth_jwt_verify(set, &cc, t, NOW, &id, msg, sizeof(msg)), AUTH_INVALID);
	free(t);

	t = mint(priv, claims, NULL); /* rhonabwy puts the signing key's kid in the header */
	cr_expect_eq(auth_jwt_verify(set, &cc, t, NOW, &id, msg, sizeof(msg)), AUTH_OK, "%s", msg);
	es_identity_clear(&id);
	free(t);

	{
		jwk_t *nokid = r_jwk_copy(priv);

		r_jwk_delete_property_str(nokid, "kid");
		t = mint(nokid, claims, NULL);
		r_jwk_free(nokid);
	}
	cr_expect_eq(auth_jwt_verify(set, &cc, t, NOW, &id, msg, sizeof(msg)), AUTH_INVALID);
	cr_expect_str_eq(msg, "invalid token: token missing 'kid' header");
	free(t);

	t = mint(priv, claims, "rotated");
	cr_expect_eq(auth_jwt_verify(set, &cc, t, NOW, &id, msg, sizeof(msg)), AUTH_UNKNOWN_KID);
	cr_expect_str_eq(msg, "invalid token: no JWK found for kid 'rotated'");
	free(t);
	auth_keyset_put(set);

	cr_expect_null(auth_keyset_from_jwks("{\"keys\":[]}", 11, err, sizeof(err)));
	cr_expect_null(auth_keyset_from_jwks("[]", 2, err, sizeof(err)));
	cr_expect_null(auth_keyset_from_pem("garbage", 7, err, sizeof(err)));
}

Test(apikey, digest_match_and_identity)
{
	struct auth_apikey keys[2] = {
	    {.name = "ci", .role = ES_ROLE_OPERATOR},
	    {.name = "ro", .role = ES_ROLE_VIEWER},
	};
	char *nss[] = {"prod", NULL};
	struct es_identity id = {0};

	keys[0].namespaces = nss;
	auth_apikey_digest("s3cret-ci", keys[0].digest);
	auth_apikey_digest("s3cret-ro", keys[1].digest);
	cr_assert_eq(auth_apikey_match(keys, 2, "s3cret-ci", &id), 0);
	cr_expect_str_eq(id.sub, "ci");
	cr_expect_eq(id.role, ES_ROLE_OPERATOR);
	cr_expect_str_eq(id.namespaces[0], "prod");
	es_identity_clear(&id);
	cr_assert_eq(auth_apikey_match(keys, 2, "s3cret-ro", &id), 0);
	cr_expect_str_eq(id.sub, "ro");
	cr_expect_null(id.namespaces);
	es_identity_clear(&id);
	cr_expect_eq(auth_apikey_match(keys, 2, "s3cret-r", &id), -EACCES);
	cr_expect_eq(auth_apikey_match(keys, 2, "", &id), -EACCES);
	cr_expect(auth_jwt_shaped("a.b.c"));
	cr_expect(auth_jwt_shaped("a.b."));
	cr_expect_not(auth_jwt_shaped("a.b"));
	cr_expect_not(auth_jwt_shaped("key-with.dots.in.it"));
}

/* ---- RBAC --------------------------------------------------------------------------- */

Test(rbac, decision_table_role_by_endpoint_by_scope)
{
	char *prod[] = {"prod", NULL}, *none[] = {NULL};
	struct es_identity viewer = {.role = ES_ROLE_VIEWER};
	struct es_identity op_all = {.role = ES_ROLE_OPERATOR};
	struct es_identity op_prod = {.role = ES_ROLE_OPERATOR, .namespaces = prod};
	struct es_identity op_none = {.role = ES_ROLE_OPERATOR, .namespaces = none};
	struct es_identity admin = {.role = ES_ROLE_ADMIN, .namespaces = none};
	static const struct {
		int who; /* 0 viewer, 1 operator (all ns), 2 operator (prod), 3 operator ([]), 4 admin */
		const char *method;
		unsigned flags;
		const char *scope; /* NULL: not an NS check */
		enum es_authz want;
	} cases[] = {
	    {0, "GET", 0, NULL, ES_AUTHZ_ALLOW},
	    {0, "POST", ES_RT_WRITE, NULL, ES_AUTHZ_VIEWER_WRITE},
	    {0, "DELETE", 0, NULL, ES_AUTHZ_VIEWER_WRITE}, /* any non-GET is a write */
	    {0, "POST", ES_RT_NS, NULL, ES_AUTHZ_ALLOW},   /* the handler decides */
	    {0, "POST", ES_RT_NS, "namespace:prod", ES_AUTHZ_VIEWER_WRITE},
	    {0, "DELETE", ES_RT_NS, "global", ES_AUTHZ_VIEWER_WRITE},
	    {1, "GET", 0, NULL, ES_AUTHZ_ALLOW},
	    {1, "POST", ES_RT_WRITE, NULL, ES_AUTHZ_ALLOW},
	    {1, "POST", ES_RT_NS, "global", ES_AUTHZ_SCOPE_NEEDS_ADMIN},
	    {1, "POST", ES_RT_NS, "interface:eth0", ES_AUTHZ_SCOPE_NEEDS_ADMIN},
	    {1, "POST", ES_RT_NS, "eth0", ES_AUTHZ_SCOPE_NEEDS_ADMIN},
	    {1, "POST", ES_RT_NS, "namespace:anything", ES_AUTHZ_ALLOW},
	    {2, "POST", ES_RT_NS, "namespace:prod", ES_AUTHZ_ALLOW},
	    {2, "DELETE", ES_RT_NS, "namespace:dev", ES_AUTHZ_NAMESPACE_FORBIDDEN},
	    {2, "POST", ES_RT_NS, "global", ES_AUTHZ_SCOPE_NEEDS_ADMIN},
	    {3, "POST", ES_RT_NS, "namespace:prod", ES_AUTHZ_NAMESPACE_FORBIDDEN},
	    {4, "POST", ES_RT_WRITE, NULL, ES_AUTHZ_ALLOW},
	    {4, "POST", ES_RT_NS, "global", ES_AUTHZ_ALLOW},
	    {4, "DELETE", ES_RT_NS, "interface:eth0", ES_AUTHZ_ALLOW},
	    {4, "POST", ES_RT_NS, "namespace:dev", ES_AUTHZ_ALLOW},
	};
	const struct es_identity *ids[] = {&viewer, &op_all, &op_prod, &op_none, &admin};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct es_identity *id = ids[cases[i].who];
		enum es_authz got = es_authz_route(id, cases[i].method, cases[i].flags);
		const char *ns;

		if (got == ES_AUTHZ_ALLOW && cases[i].scope)
			got = es_authz_scope(id, cases[i].scope, &ns);
		cr_expect_eq(got, cases[i].want, "case %zu: %s %s as %s", i, cases[i].method,
			     cases[i].scope ? cases[i].scope : "-", es_role_name(id->role));
	}
}

/* ---- the middleware ---------------------------------------------------------------------- */

static int fake_verify(const char *cred, struct es_identity *id, char *msg, size_t len)
{
	static const struct {
		const char *cred, *sub;
		int role;
	} who[] = {{"view", "v", ES_ROLE_VIEWER},
		   {"op", "o", ES_ROLE_OPERATOR},
		   {"adm", "a", ES_ROLE_ADMIN}};

	for (size_t i = 0; i < 3; i++) {
		if (!strcmp(cred, who[i].cred)) {
			snprintf(id->sub, sizeof(id->sub), "%s", who[i].sub);
			id->role = who[i].role;
			id->namespaces = calloc(2, sizeof(char *));
			id->namespaces[0] = strdup("prod");
			return 0;
		}
	}
	snprintf(msg, len, "invalid token: invalid API key");
	return -EACCES;
}
static bool on(void)
{
	return true;
}
static bool off(void)
{
	return false;
}

static const struct es_auth_provider fake = {
    .enabled = on, .metrics_required = off, .verify = fake_verify};

static void h_ok(const struct es_req *req, struct es_resp *resp)
{
	const char *scope = req->query(req, "scope");

	if (scope && es_auth_check_scope(req, resp, scope))
		return;
	es_resp_json(resp, 200,
		     json_pack("{s:s?}", "sub", req->identity ? req->identity->sub : NULL));
}

static const struct es_route mw_routes[] = {
    {"GET", "/mw/open", h_ok, ES_RT_PUBLIC},
    {"GET", "/mw/metrics", h_ok, ES_RT_METRICS},
    {"GET", "/api/v1/mw", h_ok, 0},
    {"POST", "/api/v1/mw", h_ok, ES_RT_WRITE},
    {"DELETE", "/api/v1/mw/{id}", h_ok, ES_RT_NS},
    {NULL, NULL, NULL, 0},
};

static void mw_setup(void)
{
	static bool added;

	es_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
	if (!added)
		es_http_add_routes(mw_routes);
	added = true;
	es_auth_install(&fake);
	es_wlimit_reset();
}

TestSuite(middleware, .init = mw_setup);

static struct es_resp call(const char *method, const char *path, const char *query, const char *h1,
			   const char *ip)
{
	const char *hdrs[] = {h1, NULL};
	struct es_resp r = {0};

	es_http_dispatch_ex(method, path, query, NULL, hdrs, ip ? ip : "192.0.2.10", NULL, 0, &r);
	return r;
}

static const char *field(const struct es_resp *r, const char *k)
{
	return json_string_value(json_object_get(json_object_get(r->json, "error"), k));
}

Test(middleware, credential_extraction_order_and_401_bodies)
{
	static const struct {
		const char *header;
		int status;
		const char *msg;
	} cases[] = {
	    {NULL, 401, "authentication required: no token provided"},
	    {"Authorization: Basic dXNlcjpwdw==", 401,
	     "authentication required: no token provided"},
	    {"Authorization: bearer adm", 401, "authentication required: no token provided"},
	    {"Authorization: Bearer  adm", 401, "invalid token: invalid API key"},
	    {"Authorization: Bearer nope", 401, "invalid token: invalid API key"},
	    {"Authorization: Bearer adm", 200, NULL},
	    {"X-API-Key: adm", 200, NULL},
	    {"x-api-key: view", 200, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct es_resp r = call("GET", "/api/v1/mw", NULL, cases[i].header, NULL);

		cr_expect_eq(r.status, cases[i].status, "%s", cases[i].header);
		if (cases[i].msg) {
			cr_expect_str_eq(field(&r, "code"), "AUTHENTICATION_REQUIRED");
			cr_expect_str_eq(field(&r, "message"), cases[i].msg, "%s", cases[i].header);
		}
		es_resp_clear(&r);
	}
}

Test(middleware, public_and_metrics_routes_stay_open)
{
	struct es_resp r = call("GET", "/mw/open", NULL, NULL, NULL);

	cr_expect_eq(r.status, 200);
	es_resp_clear(&r);
	r = call("GET", "/mw/metrics", NULL, NULL, NULL);
	cr_expect_eq(r.status, 200, "metrics_auth_required is off");
	es_resp_clear(&r);
}

Test(middleware, roles_and_namespaces_give_exact_403_bodies)
{
	struct es_resp r = call("POST", "/api/v1/mw", NULL, "X-API-Key: view", NULL);

	cr_expect_eq(r.status, 403);
	cr_expect_str_eq(field(&r, "code"), "INSUFFICIENT_ROLE");
	cr_expect_str_eq(field(&r, "message"), "viewer role cannot perform write operations");
	es_resp_clear(&r);
	r = call("POST", "/api/v1/mw", NULL, "X-API-Key: op", NULL);
	cr_expect_eq(r.status, 200);
	cr_expect_str_eq(json_string_value(json_object_get(r.json, "sub")), "o");
	es_resp_clear(&r);
	r = call("DELETE", "/api/v1/mw/x", "scope=global", "X-API-Key: op", NULL);
	cr_expect_eq(r.status, 403);
	cr_expect_str_eq(field(&r, "message"), "global and interface scopes require admin role");
	es_resp_clear(&r);
	r = call("DELETE", "/api/v1/mw/x", "scope=namespace:dev", "X-API-Key: op", NULL);
	cr_expect_eq(r.status, 403);
	cr_expect_str_eq(field(&r, "code"), "NAMESPACE_FORBIDDEN");
	cr_expect_str_eq(field(&r, "message"), "access denied for namespace 'dev'");
	es_resp_clear(&r);
	r = call("DELETE", "/api/v1/mw/x", "scope=namespace:prod", "X-API-Key: op", NULL);
	cr_expect_eq(r.status, 200);
	es_resp_clear(&r);
	r = call("DELETE", "/api/v1/mw/x", "scope=global", "X-API-Key: adm", NULL);
	cr_expect_eq(r.status, 200);
	es_resp_clear(&r);
	r = call("DELETE", "/api/v1/mw/x", "scope=global", "X-API-Key: view", NULL);
	cr_expect_eq(r.status, 403);
	cr_expect_str_eq(field(&r, "code"), "INSUFFICIENT_ROLE");
	es_resp_clear(&r);
}

Test(middleware, write_limit_per_client_after_authentication)
{
	struct es_resp r;

	for (int i = 0; i < ES_WLIMIT_BURST; i++) {
		r = call("POST", "/api/v1/mw", NULL, "X-API-Key: adm", "198.51.100.7");
		cr_assert_eq(r.status, 200, "write %d", i);
		es_resp_clear(&r);
	}
	r = call("POST", "/api/v1/mw", NULL, "X-API-Key: adm", "198.51.100.7");
	cr_expect_eq(r.status, 429);
	cr_expect_str_eq(r.text, "Too Many Requests! Wait for 1s");
	cr_expect_str_eq(r.headers[0][0], "x-ratelimit-after");
	cr_expect_str_eq(r.headers[0][1], "1");
	cr_expect_str_eq(r.headers[1][0], "retry-after");
	es_resp_clear(&r);
	/* Reads are not limited, other clients have their own bucket, 401s cost nothing. */
	r = call("GET", "/api/v1/mw", NULL, "X-API-Key: adm", "198.51.100.7");
	cr_expect_eq(r.status, 200);
	es_resp_clear(&r);
	r = call("POST", "/api/v1/mw", NULL, "X-API-Key: adm", "198.51.100.8");
	cr_expect_eq(r.status, 200);
	es_resp_clear(&r);
	r = call("POST", "/api/v1/mw", NULL, "X-API-Key: bad", "198.51.100.7");
	cr_expect_eq(r.status, 401);
	es_resp_clear(&r);
}

Test(limiter, bucket_of_60_refilled_one_per_second)
{
	unsigned s = 0;

	es_wlimit_reset();
	for (int i = 0; i < 60; i++)
		cr_assert_eq(es_wlimit_take("203.0.113.1", 1000, &s), 0);
	cr_expect_eq(es_wlimit_take("203.0.113.1", 1000, &s), -EAGAIN);
	cr_expect_eq(s, 1);
	cr_expect_eq(es_wlimit_take("203.0.113.1", 1400, &s), -EAGAIN);
	cr_expect_eq(s, 1);
	cr_expect_eq(es_wlimit_take("203.0.113.1", 2000, &s), 0);
	cr_expect_eq(es_wlimit_take("203.0.113.1", 2000, &s), -EAGAIN);
	/* A minute later the bucket is full again, and never fuller. */
	for (int i = 0; i < 60; i++)
		cr_assert_eq(es_wlimit_take("203.0.113.1", 600000, &s), 0);
	cr_expect_eq(es_wlimit_take("203.0.113.1", 600000, &s), -EAGAIN);
	/* Many clients: the table stays bounded and each gets a fresh bucket. */
	for (int i = 0; i < 20000; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "2001:db8::%x", i);
		cr_assert_eq(es_wlimit_take(ip, 700000, &s), 0);
	}
}

/* ---- configuration ------------------------------------------------------------------------ */

Test(auth_config, validation_when_enabled)
{
	static const struct {
		const char *yaml, *err;
	} cases[] = {
	    {"auth:\n  enabled: true\n  jwt:\n    public_key_path: /k.pem\n  oidc:\n    jwks_url: "
	     "https://idp/jwks\n",
	     "validation error: auth: cannot enable both JWT and OIDC auth simultaneously"},
	    {"auth:\n  enabled: true\n",
	     "auth is enabled but no auth method configured (jwt, oidc, or api_keys)"},
	    {"auth:\n  enabled: true\n  api_keys:\n    - {name: \"\", key: k}\n",
	     "validation error: auth.api_keys[0].name: must not be empty"},
	    {"auth:\n  enabled: true\n  api_keys:\n    - {name: a, key: k}\n    - {name: b, key: "
	     "\"\"}\n",
	     "validation error: auth.api_keys[1].key: must not be empty"},
	    {"auth:\n  enabled: true\n  api_keys:\n    - {name: a, key: k, role: Admin}\n",
	     "validation error: auth.api_keys[0].role: invalid role 'Admin'"},
	    {"auth:\n  enabled: true\n  api_keys:\n    - {name: a}\n", "missing field `key`"},
	    {"auth:\n  oidc: {issuer: x}\n", "missing field `jwks_url`"},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[1024];
		struct es_config *c;

		snprintf(yaml, sizeof(yaml), MIN_AGENT "%s", cases[i].yaml);
		c = unit_cfg(yaml, err, sizeof(err));
		cr_expect_null(c, "accepted: %s", cases[i].yaml);
		cr_expect(strstr(err, cases[i].err) != NULL, "got '%s', want '%s'", err,
			  cases[i].err);
		es_config_put(c);
	}
}

Test(auth_config, disabled_is_not_validated_and_keys_are_masked)
{
	char err[512];
	struct es_config *c =
	    unit_cfg(MIN_AGENT "auth:\n  enabled: false\n  jwt:\n    "
			       "public_key_path: /k.pem\n  oidc:\n    jwks_url: "
			       "http://idp/jwks\n  api_keys:\n    - {name: \"\", key: "
			       "\"\", role: root}\n",
		     err, sizeof(err));
	const struct auth_cfg *a;
	json_t *j;

	cr_assert_not_null(c, "%s", err);
	a = es_config_domain(c, "auth");
	cr_expect_not(a->enabled);
	cr_expect_eq(a->n_keys, 1);
	es_config_put(c);

	c = unit_cfg(MIN_AGENT
		     "auth:\n  enabled: true\n  jwt: {public_key_path: /k.pem, issuer: "
		     "idp}\n  api_keys:\n    - {name: ci, key: topsecret, role: operator, "
		     "namespaces: [prod]}\n",
		     err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	a = es_config_domain(c, "auth");
	cr_expect_eq(auth_cfg_mode(a), AUTH_MODE_JWT);
	cr_expect_eq(a->keys[0].role, ES_ROLE_OPERATOR);
	j = es_config_to_json(c);
	cr_expect_str_eq(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(json_object_get(j, "auth"), "api_keys"), 0), "key")),
	    "***");
	{
		char *dump = json_dumps(j, 0);

		cr_expect_null(strstr(dump, "topsecret"));
		free(dump);
	}
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_object_get(json_object_get(j, "auth"), "jwt"), "issuer")),
			 "idp");
	json_decref(j);
	es_config_put(c);
}

/* ---- the domain's provider chain ------------------------------------------------------------ */

extern const struct es_domain es_domain_auth;

Test(auth_provider, api_keys_through_the_running_domain)
{
	char err[512], msg[256];
	struct es_identity id;
	struct es_config *c = unit_cfg(
	    MIN_AGENT "auth:\n  enabled: true\n  api_keys:\n"
		      "    - {name: any, key: k-any, role: operator}\n"
		      "    - {name: prod, key: k-prod, role: operator, namespaces: [prod]}\n",
	    err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	es_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
	cr_assert_eq(es_domain_auth.start(es_config_domain(c, "auth")), 0);
	cr_assert(es_auth_enabled());
	cr_assert_eq(es_auth_check_bearer("Bearer k-any", &id, msg, sizeof(msg)), 0, "%s", msg);
	cr_expect_str_eq(id.sub, "any");
	cr_expect_null(id.namespaces, "no namespaces configured: unrestricted");
	es_identity_clear(&id);
	cr_assert_eq(es_auth_check_bearer("Bearer k-prod", &id, msg, sizeof(msg)), 0, "%s", msg);
	cr_expect_str_eq(id.namespaces[0], "prod");
	cr_expect_null(id.namespaces[1]);
	es_identity_clear(&id);
	cr_expect_eq(es_auth_check_bearer("Bearer a.b.c", &id, msg, sizeof(msg)), -EACCES);
	cr_expect_str_eq(msg, "invalid token: invalid API key", "no token provider configured");
	cr_expect_eq(es_auth_check_bearer("k-any", &id, msg, sizeof(msg)), -EACCES);
	cr_expect_str_eq(msg, "authentication required: no Bearer token provided");
	cr_expect_eq(es_auth_check_bearer(NULL, &id, msg, sizeof(msg)), -EACCES);
	es_domain_auth.stop();
	es_config_put(c);
}
