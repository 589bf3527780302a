// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Token and API-key checks (interfaces.md §4.3). Parsing and signatures are
 * rhonabwy's; the algorithm is pinned to RS256 before any key is touched, no
 * remote key (jku, x5u, embedded jwk) is ever honoured, and the claims are
 * checked here against the caller's clock so the tests can move time.
 */
#include "domains/auth/token.h"
#include "api/auth.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <rhonabwy.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth_key {
	char *kid;  /* NULL in JWT (PEM) mode */
	char *json; /* the JWK; a fresh jwk_t is built per check, so threads share nothing */
};

struct auth_keyset {
	atomic_int refs;
	size_t n;
	struct auth_key keys[];
};

/* ---- key sets ------------------------------------------------------------------- */

static struct auth_keyset *keyset_new(size_t n)
{
	struct auth_keyset *ks = calloc(1, sizeof(*ks) + n * sizeof(ks->keys[0]));

	if (ks)
		atomic_init(&ks->refs, 1);
	return ks;
}

struct auth_keyset *auth_keyset_ref(struct auth_keyset *ks)
{
	if (ks)
		atomic_fetch_add(&ks->refs, 1);
	return ks;
}

void auth_keyset_put(struct auth_keyset *ks)
{
	if (!ks || atomic_fetch_sub(&ks->refs, 1) != 1)
		return;
	for (size_t i = 0; i < ks->n; i++) {
		free(ks->keys[i].kid);
		free(ks->keys[i].json);
	}
	free(ks);
}

size_t auth_keyset_size(const struct auth_keyset *ks)
{
	return ks ? ks->n : 0;
}

/* An RSA public key? Remote material is never fetched. */
static bool rsa_public(jwk_t *jwk, unsigned *bits)
{
	int t = r_jwk_key_type(jwk, bits, R_FLAG_IGNORE_REMOTE);

	return (t & R_KEY_TYPE_RSA) && (t & R_KEY_TYPE_PUBLIC);
}

/* Keep only the public RSA members: a JWKS may carry x5u/x5c/jku we never use. */
static char *export_public(jwk_t *jwk)
{
	static const char *const keep[] = {"kty", "n", "e", "kid", NULL};
	json_t *src = r_jwk_export_to_json_t(jwk), *dst = json_object();
	char *s = NULL;

	for (const char *const *k = keep; src && dst && *k; k++)
		if (json_object_get(src, *k))
			json_object_set(dst, *k, json_object_get(src, *k));
	if (src && dst)
		s = json_dumps(dst, JSON_COMPACT);
	json_decref(src);
	json_decref(dst);
	return s;
}

struct auth_keyset *auth_keyset_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	struct auth_keyset *ks = NULL;
	jwk_t *jwk = NULL;
	unsigned bits = 0;

	if (r_jwk_init(&jwk) != RHN_OK) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (r_jwk_import_from_pem_der(jwk, R_X509_TYPE_PUBKEY, R_FORMAT_PEM,
				      (const unsigned char *)pem, len) != RHN_OK) {
		/* A certificate holding the key is accepted too. */
		r_jwk_free(jwk);
		r_jwk_init(&jwk);
		if (!jwk || r_jwk_import_from_pem_der(jwk, R_X509_TYPE_CERTIFICATE, R_FORMAT_PEM,
						      (const unsigned char *)pem, len) != RHN_OK) {
			snprintf(err, errlen, "not a PEM public key or certificate");
			goto out;
		}
	}
	if (!rsa_public(jwk, &bits)) {
		snprintf(err, errlen, "not an RSA public key (RS256 needs one)");
		goto out;
	}
	ks = keyset_new(1);
	if (!ks || !(ks->keys[0].json = export_public(jwk))) {
		snprintf(err, errlen, "out of memory");
		auth_keyset_put(ks);
		ks = NULL;
		goto out;
	}
	ks->n = 1;
out:
	r_jwk_free(jwk);
	return ks;
}

struct auth_keyset *auth_keyset_from_jwks(const char *json, size_t len, char *err, size_t errlen)
{
	json_t *doc = json_loadb(json, len, 0, NULL), *keys, *k;
	struct auth_keyset *ks = NULL;
	size_t i;

	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys)) {
		snprintf(err, errlen, "not a JWKS document (no \"keys\" array)");
		goto out;
	}
	ks = keyset_new(json_array_size(keys));
	if (!ks) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	json_array_foreach (keys, i, k) {
		const char *kid = json_string_value(json_object_get(k, "kid"));
		const char *use = json_string_value(json_object_get(k, "use"));
		jwk_t *jwk = NULL;
		unsigned bits = 0;

		if (!kid || (use && strcmp(use, "sig")))
			continue;
		if (r_jwk_init(&jwk) == RHN_OK && r_jwk_import_from_json_t(jwk, k) == RHN_OK &&
		    rsa_public(jwk, &bits)) {
			ks->keys[ks->n].kid = strdup(kid);
			ks->keys[ks->n].json = export_public(jwk);
			if (ks->keys[ks->n].kid && ks->keys[ks->n].json)
				ks->n++;
		}
		r_jwk_free(jwk);
	}
	if (ks->n == 0) {
		snprintf(err, errlen, "no usable RSA signing key with a kid");
		auth_keyset_put(ks);
		ks = NULL;
	}
out:
	json_decref(doc);
	return ks;
}

/* ---- tokens ------------------------------------------------------------------------ */

bool auth_jwt_shaped(const char *c)
{
	int dots = 0;

	for (; *c; c++)
		dots += *c == '.';
	return dots == 2;
}

static enum auth_verdict fail(char *msg, size_t len, enum auth_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum auth_verdict fail(char *msg, size_t len, enum auth_verdict v, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (v != AUTH_EXPIRED)
		n = snprintf(msg, len, "invalid token: ");
	va_start(ap, fmt);
	vsnprintf(msg + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return v;
}

static bool is_number(const json_t *v)
{
	return json_is_integer(v) || json_is_real(v);
}

static double num(const json_t *v)
{
	return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

static bool audience_ok(const json_t *aud, const char *want)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	json_array_foreach (aud, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), want))
			return true;
	return false;
}

/* The claims of §4.3 against now_s; fills the identity. */
static enum auth_verdict check_claims(const json_t *cl, const struct auth_claims_cfg *cc,
				      int64_t now_s, struct es_identity *id, char *msg, size_t len)
{
	const json_t *sub = json_object_get(cl, "sub"), *exp = json_object_get(cl, "exp");
	const json_t *nbf = json_object_get(cl, "nbf"), *iss = json_object_get(cl, "iss");
	const json_t *aud = json_object_get(cl, "aud"), *role = json_object_get(cl, "role");
	const json_t *nss = json_object_get(cl, "namespaces"), *v;
	enum es_role r;
	size_t i;

	if (!is_number(exp))
		return fail(msg, len, AUTH_INVALID, "missing or invalid 'exp' claim");
	if (num(exp) + AUTH_LEEWAY_S <= (double)now_s)
		return fail(msg, len, AUTH_EXPIRED, "token expired");
	if (nbf && (!is_number(nbf) || num(nbf) - AUTH_LEEWAY_S > (double)now_s))
		return fail(msg, len, AUTH_INVALID, "token not yet valid (nbf)");
	if (!json_is_string(sub) || !json_string_length(sub))
		return fail(msg, len, AUTH_INVALID, "missing or invalid 'sub' claim");
	if (json_string_length(sub) >= sizeof(id->sub))
		return fail(msg, len, AUTH_INVALID, "'sub' claim too long");
	if (cc->issuer && (!json_is_string(iss) || strcmp(json_string_value(iss), cc->issuer)))
		return fail(msg, len, AUTH_INVALID, "invalid issuer");
	if (cc->audience && !audience_ok(aud, cc->audience))
		return fail(msg, len, AUTH_INVALID, "invalid audience");
	if (nss && !json_is_array(nss))
		return fail(msg, len, AUTH_INVALID,
			    "'namespaces' claim must be an array of strings");
	json_array_foreach (nss, i, v)
		if (!json_is_string(v))
			return fail(msg, len, AUTH_INVALID,
				    "'namespaces' claim must be an array of strings");

	snprintf(id->sub, sizeof(id->sub), "%s", json_string_value(sub));
	id->role = !es_role_parse(json_string_value(role), &r) ? (int)r : ES_ROLE_VIEWER;
	id->namespaces = NULL; /* absent: unrestricted */
	if (nss) {
		/* Present, even empty: exactly these namespaces. */
		id->namespaces = calloc(json_array_size(nss) + 1, sizeof(char *));
		if (!id->namespaces)
			return fail(msg, len, AUTH_INVALID, "out of memory");
		json_array_foreach (nss, i, v)
			if (!(id->namespaces[i] = strdup(json_string_value(v))))
				return fail(msg, len, AUTH_INVALID, "out of memory");
	}
	return AUTH_OK;
}

static const struct auth_key *pick_key(const struct auth_keyset *ks, const char *kid)
{
	for (size_t i = 0; i < ks->n; i++)
		if (!kid || (ks->keys[i].kid && !strcmp(ks->keys[i].kid, kid)))
			return &ks->keys[i];
	return NULL;
}

enum auth_verdict auth_jwt_verify(const struct auth_keyset *ks, const struct auth_claims_cfg *cc,
				  const char *token, int64_t now_s, struct es_identity *id,
				  char *msg, size_t len)
{
	const struct auth_key *key;
	enum auth_verdict v;
	const char *alg, *kid;
	jwt_t *jwt = NULL;
	jwk_t *jwk = NULL;
	json_t *claims = NULL;

	if (strlen(token) > AUTH_CREDENTIAL_MAX)
		return fail(msg, len, AUTH_INVALID, "token too long");
	if (r_jwt_init(&jwt) != RHN_OK)
		return fail(msg, len, AUTH_INVALID, "out of memory");
	/* R_PARSE_NONE: no unsigned tokens, no keys taken from the token's header. */
	if (r_jwt_advanced_parse(jwt, token, R_PARSE_NONE, R_FLAG_IGNORE_REMOTE) != RHN_OK ||
	    r_jwt_get_type(jwt) != R_JWT_TYPE_SIGN) {
		v = fail(msg, len, AUTH_INVALID, "malformed token");
		goto out;
	}
	alg = r_jwt_get_header_str_value(jwt, "alg");
	if (!alg || strcmp(alg, "RS256") || r_jwt_get_sign_alg(jwt) != R_JWA_ALG_RS256) {
		v = fail(msg, len, AUTH_INVALID,
			 "unsupported algorithm '%s' (only RS256 is accepted)", alg ? alg : "");
		goto out;
	}
	claims = r_jwt_get_header_json_t_value(jwt, "crit");
	if (claims) {
		v = fail(msg, len, AUTH_INVALID, "unsupported critical header");
		goto out;
	}
	kid = r_jwt_get_header_str_value(jwt, "kid");
	if (cc->need_kid && !kid) {
		v = fail(msg, len, AUTH_INVALID, "token missing 'kid' header");
		goto out;
	}
	key = ks ? pick_key(ks, cc->need_kid ? kid : NULL) : NULL;
	if (!key) {
		v = cc->need_kid
			? fail(msg, len, AUTH_UNKNOWN_KID, "no JWK found for kid '%s'", kid)
			: fail(msg, len, AUTH_INVALID, "no verification key");
		goto out;
	}
	if (r_jwk_init(&jwk) != RHN_OK || r_jwk_import_from_json_str(jwk, key->json) != RHN_OK) {
		v = fail(msg, len, AUTH_INVALID, "verification key unusable");
		goto out;
	}
	if (r_jwt_verify_signature(jwt, jwk, R_FLAG_IGNORE_REMOTE) != RHN_OK) {
		v = fail(msg, len, AUTH_INVALID, "signature verification failed");
		goto out;
	}
	claims = r_jwt_get_full_claims_json_t(jwt);
	if (!json_is_object(claims)) {
		v = fail(msg, len, AUTH_INVALID, "claims are not a JSON object");
		goto out;
	}
	v = check_claims(claims, cc, now_s, id, msg, len);
out:
	json_decref(claims);
	r_jwk_free(jwk);
	r_jwt_free(jwt);
	return v;
}

/* ---- API keys ---------------------------------------------------------------------- */

void auth_apikey_digest(const char *key, unsigned char out[32])
{
	gnutls_hash_fast(GNUTLS_DIG_SHA256, key, strlen(key), out);
}

int auth_apikey_match(const struct auth_apikey *keys, size_t n, const char *credential,
		      struct es_identity *id)
{
	unsigned char d[32];
	const struct auth_apikey *hit = NULL;

	auth_apikey_digest(credential, d);
	/* Every key is compared in full: timing says nothing about which matched. */
	for (size_t i = 0; i < n; i++) {
		unsigned char diff = 0;

		for (size_t k = 0; k < sizeof(d); k++)
			diff |= (unsigned char)(d[k] ^ keys[i].digest[k]);
		if (!diff && !hit)
			hit = &keys[i];
	}
	if (!hit)
		return -EACCES;
	snprintf(id->sub, sizeof(id->sub), "%s", hit->name);
	id->role = hit->role;
	id->namespaces = NULL;
	if (hit->namespaces) {
		size_t c = 0;

		while (hit->namespaces[c])
			c++;
		id->namespaces = calloc(c + 1, sizeof(char *));
		for (size_t i = 0; id->namespaces && i < c; i++)
			id->namespaces[i] = strdup(hit->namespaces[i]);
	}
	return 0;
}
