// SPDX-License-Identifier: AGPL-3.0-only
/*
 * libFuzzer: everything of the auth path that reads outside input — bearer
 * tokens (rhonabwy parsing, the RS256 pin, claim checks), JWKS documents
 * fetched from an IdP, PEM key files, and the credential headers through the
 * HTTP middleware. The first byte picks the target.
 */
#include <rhonabwy.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/http.h"
#include "core/log.h"
#include "domains/auth/token.h"

static struct auth_keyset *ks;

static int fz_verify(const char *cred, struct es_identity *id, char *msg, size_t len)
{
	const struct auth_claims_cfg cc = {.issuer = "idp", .audience = "es", .need_kid = true};

	return auth_jwt_verify(ks, &cc, cred, 1700000000, id, msg, len) == AUTH_OK ? 0 : -1;
}
static bool yes(void)
{
	return true;
}

static const struct es_auth_provider prov = {
    .enabled = yes, .metrics_required = yes, .verify = fz_verify};

static void h(const struct es_req *req, struct es_resp *resp)
{
	es_auth_check_scope(req, resp, req->query(req, "scope"));
}

static const struct es_route routes[] = {
    {"POST", "/api/v1/fz", h, ES_RT_NS},
    {NULL, NULL, NULL, 0},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	jwk_t *priv, *pub;
	char *j, doc[4096], err[128];

	es_log_setup(ES_LOG_ERROR, ES_LOG_JSON);
	r_jwk_init(&priv);
	r_jwk_init(&pub);
	r_jwk_generate_key_pair(priv, pub, R_KEY_TYPE_RSA, 2048, "k1");
	j = r_jwk_export_to_json_str(pub, 0);
	snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", j);
	ks = auth_keyset_from_jwks(doc, strlen(doc), err, sizeof(err));
	r_free(j);
	r_jwk_free(priv);
	r_jwk_free(pub);
	es_http_add_routes(routes);
	es_auth_install(&prov);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, msg[512], hdr[128 + 4096];
	struct es_identity id = {0};

	if (size < 1 || size > 16384)
		return 0;
	s = strndup((const char *)data + 1, size - 1);
	if (!s)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fz_verify(s, &id, msg, sizeof(msg));
		es_identity_clear(&id);
		auth_jwt_shaped(s);
		break;
	case 1: auth_keyset_put(auth_keyset_from_jwks(s, strlen(s), msg, sizeof(msg))); break;
	case 2: auth_keyset_put(auth_keyset_from_pem(s, strlen(s), msg, sizeof(msg))); break;
	default: {
		const char *hdrs[] = {hdr, NULL};
		struct es_resp r = {0};
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);

		snprintf(hdr, sizeof(hdr), "%.*s", (int)(n > 4000 ? 4000 : n), s);
		es_http_dispatch_ex("POST", "/api/v1/fz", nl ? nl + 1 : "", NULL, hdrs,
				    "198.51.100.9", NULL, 0, &r);
		es_resp_clear(&r);
		es_wlimit_reset();
	}
	}
	free(s);
	return 0;
}
