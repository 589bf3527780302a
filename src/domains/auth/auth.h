/* SPDX-License-Identifier: AGPL-3.0-only */
/* Auth domain (interfaces.md §4): its configuration and the OIDC key fetch. */
#ifndef ES_AUTH_DOMAIN_H
#define ES_AUTH_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "domains/auth/token.h"

enum auth_mode {
	AUTH_MODE_KEYS_ONLY = 0, /* no token provider */
	AUTH_MODE_JWT,
	AUTH_MODE_OIDC,
};

struct auth_cfg {
	bool enabled;
	char *jwt_key_path; /* "" when unset */
	char *jwt_issuer;   /* NULL when unset */
	char *jwt_audience;
	bool oidc;
	char *jwks_url;
	char *oidc_issuer;
	char *oidc_audience;
	struct auth_apikey *keys;
	size_t n_keys;
	bool metrics_auth_required;
};

enum auth_mode auth_cfg_mode(const struct auth_cfg *a);

/* GET the JWKS at url. A new key set, or NULL with the reason in err. */
struct auth_keyset *auth_jwks_fetch(const char *url, long timeout_s, char *err, size_t errlen);

#endif
