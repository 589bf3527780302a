/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * JWT validation (interfaces.md §4.3) on rhonabwy: RS256 only, the key from a
 * PEM file (JWT mode) or a JWKS matched by `kid` (OIDC mode), and every claim
 * check against an injectable clock. API keys compared by SHA-256 digest.
 */
#ifndef ES_AUTH_TOKEN_H
#define ES_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/route.h"

#define AUTH_LEEWAY_S 60
#define AUTH_CREDENTIAL_MAX 16384

/* An immutable set of RSA public keys (JWKs kept as JSON text), shared by reference. */
struct auth_keyset;

/* From a PEM public key or certificate. NULL with the reason in err. */
struct auth_keyset *auth_keyset_from_pem(const char *pem, size_t len, char *err, size_t errlen);
/*
 * From a JWKS document: RSA public keys with a `kid` (others skipped, `use`
 * enc skipped). NULL with the reason in err when the document is unusable.
 */
struct auth_keyset *auth_keyset_from_jwks(const char *json, size_t len, char *err, size_t errlen);
struct auth_keyset *auth_keyset_ref(struct auth_keyset *ks);
void auth_keyset_put(struct auth_keyset *ks);
size_t auth_keyset_size(const struct auth_keyset *ks);

struct auth_claims_cfg {
	const char *issuer;   /* NULL: not checked */
	const char *audience; /* NULL: not checked */
	bool need_kid;	      /* OIDC: match the header kid against the key set */
};

enum auth_verdict {
	AUTH_OK = 0,
	AUTH_INVALID,	  /* msg: "invalid token: <detail>" */
	AUTH_EXPIRED,	  /* msg: "token expired" */
	AUTH_UNKNOWN_KID, /* msg: "invalid token: no JWK found for kid '<kid>'" */
};

/*
 * Validate token at time now_s. On AUTH_OK *id is filled (sub, role,
 * namespaces owned by id); otherwise msg holds the 401 message.
 */
enum auth_verdict auth_jwt_verify(const struct auth_keyset *ks, const struct auth_claims_cfg *cc,
				  const char *token, int64_t now_s, struct es_identity *id,
				  char *msg, size_t len);

/* Three dot-separated segments (interfaces.md §12 item 27). */
bool auth_jwt_shaped(const char *credential);

struct auth_apikey {
	unsigned char digest[32]; /* SHA-256 of the key */
	char *name;
	int role;
	char **namespaces; /* NULL = unrestricted */
};

void auth_apikey_digest(const char *key, unsigned char out[32]);
/*
 * Find the key whose digest matches credential's, comparing every key in
 * constant time. Fills *id on a match and returns 0; -EACCES otherwise.
 */
int auth_apikey_match(const struct auth_apikey *keys, size_t n, const char *credential,
		      struct es_identity *id);

#endif
