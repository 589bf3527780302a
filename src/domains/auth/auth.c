// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Auth domain (interfaces.md §4): the `auth` section, the credential
 * providers (JWT with a PEM key, or OIDC with a fetched JWKS; then API keys)
 * and their key material, reloaded in place. The gate itself (headers, 401,
 * 403, RBAC, write limiter) is api/auth.c; this domain plugs in as its
 * provider at start, before the listeners.
 */
#define ES_LOG_TARGET "ebpfsentinel::auth"
#include "domains/auth/auth.h"
#include "agent/domain.h"
#include "api/auth.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <rhonabwy.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define JWKS_REFRESH_S 3600
#define JWKS_KID_REFRESH_MIN_S 60
#define JWKS_TIMEOUT_S 10
#define JWKS_KID_TIMEOUT_S 5

static const char *const auth_keys[] = {
    "enabled", "jwt", "oidc", "api_keys", "metrics_auth_required", NULL};
static const char *const jwt_keys[] = {"public_key_path", "issuer", "audience", NULL};
static const char *const oidc_keys[] = {"jwks_url", "issuer", "audience", NULL};
static const char *const key_keys[] = {"name", "key", "role", "namespaces", NULL};
static const char *const mode_names[] = {"api_keys", "jwt", "oidc"};

/* API keys as running: replaced whole on reload, shared by reference. */
struct apikeys {
	atomic_int refs;
	size_t n;
	struct auth_apikey *keys; /* owned copies */
};

/*
 * Running state. The mode, issuer, audience and switches are fixed at start
 * (changing them needs a restart, §10.3); the key material is swapped.
 */
static struct {
	bool enabled, metrics;
	enum auth_mode mode;
	char *issuer, *audience;
	pthread_mutex_t lock; /* guards the two pointers below and jwks_url */
	struct auth_keyset *tokens;
	struct apikeys *apikeys;
	char *jwks_url;
	pthread_mutex_t refresh_lock;	   /* one JWKS fetch at a time */
	time_t last_fetch, last_kid_fetch; /* CLOCK_MONOTONIC seconds */
} st = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .refresh_lock = PTHREAD_MUTEX_INITIALIZER,
};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

enum auth_mode auth_cfg_mode(const struct auth_cfg *a)
{
	if (a->oidc)
		return AUTH_MODE_OIDC;
	return a->jwt_key_path[0] ? AUTH_MODE_JWT : AUTH_MODE_KEYS_ONLY;
}

/* ---- configuration ------------------------------------------------------------------- */

static void apikey_array_free(struct auth_apikey *k, size_t n)
{
	for (size_t i = 0; k && i < n; i++) {
		free(k[i].name);
		es_strv_free(k[i].namespaces);
	}
	free(k);
}

static void auth_free_cfg(void *cfg)
{
	struct auth_cfg *a = cfg;

	if (!a)
		return;
	free(a->jwt_key_path);
	free(a->jwt_issuer);
	free(a->jwt_audience);
	free(a->jwks_url);
	free(a->oidc_issuer);
	free(a->oidc_audience);
	apikey_array_free(a->keys, a->n_keys);
	free(a);
}

static int parse_keys(struct es_cfg *c, const json_t *node, const char *path, struct auth_cfg *a)
{
	char lp[64], ip[96];
	json_t *list, *it;
	size_t i;

	if (es_cfg_array(c, node, path, "api_keys", &list))
		return -EINVAL;
	es_path_key(lp, sizeof(lp), path, "api_keys");
	a->keys = calloc(json_array_size(list) + 1, sizeof(*a->keys));
	if (!a->keys)
		return -ENOMEM;
	json_array_foreach (list, i, it) {
		struct auth_apikey *k = &a->keys[i];
		char *name = NULL, *key = NULL, *role = NULL, **nss = NULL;
		size_t nn = 0;
		enum es_role r = ES_ROLE_VIEWER;
		int ret = -EINVAL;

		es_path_idx(ip, sizeof(ip), lp, i);
		if (!json_is_object(it)) {
			es_cfg_fail(c, ES_ERR_PARSE, list, lp, NULL, i,
				    "invalid type: expected struct ApiKeyConfig");
			return -EINVAL;
		}
		es_cfg_check_keys(c, it, ip, key_keys);
		if (es_cfg_req_str(c, it, ip, "name", &name) ||
		    es_cfg_req_str(c, it, ip, "key", &key) ||
		    es_cfg_str(c, it, ip, "role", &role, "viewer") ||
		    es_cfg_strv(c, it, ip, "namespaces", &nss, &nn))
			goto next;
		if (a->enabled && !name[0]) {
			es_cfg_fail(c, ES_ERR_VALIDATION, it, ip, "name", 0, "must not be empty");
			goto next;
		}
		if (a->enabled && !key[0]) {
			es_cfg_fail(c, ES_ERR_VALIDATION, it, ip, "key", 0, "must not be empty");
			goto next;
		}
		/* Exactly one of the three names (§4.1), unlike JWT role claims. */
		if (strcmp(role, "admin") && strcmp(role, "operator") && strcmp(role, "viewer")) {
			if (a->enabled) {
				es_cfg_fail(c, ES_ERR_VALIDATION, it, ip, "role", 0,
					    "invalid role '%s': expected admin, operator or viewer",
					    role);
				goto next;
			}
		} else {
			es_role_parse(role, &r);
		}
		auth_apikey_digest(key, k->digest);
		k->name = name;
		name = NULL;
		k->role = (int)r;
		k->namespaces = nn ? nss : NULL; /* empty = unrestricted */
		if (nn)
			nss = NULL;
		a->n_keys++;
		ret = 0;
	next:
		if (key)
			memset(key, 0, strlen(key));
		free(name);
		free(key);
		free(role);
		es_strv_free(nss);
		if (ret)
			return ret;
	}
	return 0;
}

static void *auth_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct auth_cfg *a = calloc(1, sizeof(*a));
	json_t *jwt = NULL, *oidc = NULL;

	if (!a)
		return NULL;
	es_cfg_check_keys(c, node, path, auth_keys);
	if (es_cfg_bool(c, node, path, "enabled", &a->enabled, false) ||
	    es_cfg_bool(c, node, path, "metrics_auth_required", &a->metrics_auth_required, false) ||
	    es_cfg_expect_object(c, node, path, "jwt", &jwt) ||
	    es_cfg_expect_object(c, node, path, "oidc", &oidc))
		goto fail;
	es_cfg_check_keys(c, jwt, "auth.jwt", jwt_keys);
	if (es_cfg_str(c, jwt, "auth.jwt", "public_key_path", &a->jwt_key_path, "") ||
	    es_cfg_str(c, jwt, "auth.jwt", "issuer", &a->jwt_issuer, NULL) ||
	    es_cfg_str(c, jwt, "auth.jwt", "audience", &a->jwt_audience, NULL))
		goto fail;
	if (oidc) {
		a->oidc = true;
		es_cfg_check_keys(c, oidc, "auth.oidc", oidc_keys);
		if (es_cfg_req_str(c, oidc, "auth.oidc", "jwks_url", &a->jwks_url) ||
		    es_cfg_str(c, oidc, "auth.oidc", "issuer", &a->oidc_issuer, NULL) ||
		    es_cfg_str(c, oidc, "auth.oidc", "audience", &a->oidc_audience, NULL))
			goto fail;
		if (strncmp(a->jwks_url, "https://", 8))
			es_cfg_warn(c,
				    "auth.oidc.jwks_url '%s' is not https: the key set is not "
				    "protected in transit",
				    a->jwks_url);
	}
	if (parse_keys(c, node, path, a))
		goto fail;
	if (!a->enabled)
		return a;
	if (a->oidc && a->jwt_key_path[0]) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "", 0,
			    "cannot enable both JWT and OIDC auth simultaneously");
		goto fail;
	}
	if (!a->oidc && !a->jwt_key_path[0] && !a->n_keys) {
		es_cfg_fail(
		    c, ES_ERR_VALIDATION, node, path, "", 0,
		    "auth is enabled but no auth method configured (jwt, oidc, or api_keys)");
		goto fail;
	}
	return a;
fail:
	auth_free_cfg(a);
	return NULL;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *auth_to_json(const void *cfg)
{
	const struct auth_cfg *a = cfg;
	json_t *keys = json_array();
	json_t *o = json_pack("{s:b,s:{s:s,s:o,s:o},s:b}", "enabled", a->enabled, "jwt",
			      "public_key_path", a->jwt_key_path, "issuer",
			      str_or_null(a->jwt_issuer), "audience", str_or_null(a->jwt_audience),
			      "metrics_auth_required", a->metrics_auth_required);

	for (size_t i = 0; i < a->n_keys; i++) {
		const struct auth_apikey *k = &a->keys[i];
		json_t *ns = json_array();

		for (char **p = k->namespaces; p && *p; p++)
			json_array_append_new(ns, json_string(*p));
		/* The secret itself is not kept (only its digest): always masked. */
		json_array_append_new(keys,
				      json_pack("{s:s,s:s,s:s,s:o}", "name", k->name, "key", "***",
						"role", es_role_name(k->role), "namespaces", ns));
	}
	json_object_set_new(o, "api_keys", keys);
	if (a->oidc)
		json_object_set_new(o, "oidc",
				    json_pack("{s:s,s:o,s:o}", "jwks_url", a->jwks_url, "issuer",
					      str_or_null(a->oidc_issuer), "audience",
					      str_or_null(a->oidc_audience)));
	return o;
}

static bool auth_enabled_cfg(const void *cfg)
{
	return ((const struct auth_cfg *)cfg)->enabled;
}

static json_t *auth_summary(const void *cfg)
{
	const struct auth_cfg *a = cfg;

	return json_pack("{s:s,s:b,s:I}", "mode", a->enabled ? mode_names[auth_cfg_mode(a)] : "off",
			 "enabled", a->enabled, "api_key_count", (json_int_t)a->n_keys);
}

/* ---- key material ------------------------------------------------------------------- */

static void apikeys_put(struct apikeys *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	apikey_array_free(k->keys, k->n);
	free(k);
}

static struct apikeys *apikeys_from(const struct auth_cfg *a)
{
	struct apikeys *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	atomic_init(&k->refs, 1);
	k->keys = calloc(a->n_keys + 1, sizeof(*k->keys));
	if (!k->keys) {
		free(k);
		return NULL;
	}
	for (size_t i = 0; i < a->n_keys; i++) {
		k->keys[i] = a->keys[i];
		k->keys[i].name = strdup(a->keys[i].name);
		/* NULL (unrestricted) stays NULL: an empty vector would grant none. */
		k->keys[i].namespaces =
		    a->keys[i].namespaces ? es_strv_dup(a->keys[i].namespaces) : NULL;
		k->n++;
		if (!k->keys[i].name || (a->keys[i].namespaces && !k->keys[i].namespaces)) {
			apikeys_put(k);
			return NULL;
		}
	}
	return k;
}

/* Read and convert the JWT public key. 0 or -errno (reason logged). */
static int load_pem(const char *path, struct auth_keyset **out)
{
	char err[256];
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f) {
		r = -errno;
		pr_error("cannot read JWT public key", LF_STR("path", path),
			 LF_STR("error", strerror(-r)));
		return r;
	}
	if (!fstat(fileno(f), &sb) && (sb.st_mode & S_IROTH))
		pr_warn("file is world-readable", LF_STR("path", path),
			LF_STR("file", "auth.jwt.public_key_path"));
	buf = calloc(1, 65536);
	if (buf)
		len = fread(buf, 1, 65535, f);
	fclose(f);
	if (!buf)
		return -ENOMEM;
	*out = auth_keyset_from_pem(buf, len, err, sizeof(err));
	free(buf);
	if (!*out) {
		pr_error("invalid JWT public key", LF_STR("path", path), LF_STR("error", err));
		return -EINVAL;
	}
	return 0;
}

static void set_tokens(struct auth_keyset *ks)
{
	struct auth_keyset *old;

	pthread_mutex_lock(&st.lock);
	old = st.tokens;
	st.tokens = ks;
	pthread_mutex_unlock(&st.lock);
	auth_keyset_put(old);
}

/*
 * Fetch the JWKS again (caller holds refresh_lock). A failure keeps the keys
 * in use. 0 or -EIO.
 */
static int refetch(const char *why, long timeout_s)
{
	struct auth_keyset *ks;
	char err[256], url[2048];

	pthread_mutex_lock(&st.lock);
	snprintf(url, sizeof(url), "%s", st.jwks_url ? st.jwks_url : "");
	pthread_mutex_unlock(&st.lock);
	st.last_fetch = mono_s();
	ks = auth_jwks_fetch(url, timeout_s, err, sizeof(err));
	if (!ks) {
		pr_warn("JWKS refresh failed; keeping the current keys", LF_STR("trigger", why),
			LF_STR("url", url), LF_STR("error", err));
		return -EIO;
	}
	pr_info("JWKS refreshed", LF_STR("trigger", why), LF_UINT("keys", auth_keyset_size(ks)));
	set_tokens(ks);
	return 0;
}

/* ---- the provider ---------------------------------------------------------------------- */

static bool prov_enabled(void)
{
	return st.enabled;
}

static bool prov_metrics(void)
{
	return st.metrics;
}

static void take_refs(struct auth_keyset **ks, struct apikeys **ak)
{
	pthread_mutex_lock(&st.lock);
	*ks = auth_keyset_ref(st.tokens);
	*ak = st.apikeys;
	if (*ak)
		atomic_fetch_add(&(*ak)->refs, 1);
	pthread_mutex_unlock(&st.lock);
}

static enum auth_verdict check_token(const char *cred, struct es_identity *id, char *msg,
				     size_t len)
{
	const struct auth_claims_cfg cc = {
	    .issuer = st.issuer, .audience = st.audience, .need_kid = st.mode == AUTH_MODE_OIDC};
	struct auth_keyset *ks;
	struct apikeys *ak;
	enum auth_verdict v;

	take_refs(&ks, &ak);
	apikeys_put(ak);
	v = auth_jwt_verify(ks, &cc, cred, (int64_t)time(NULL), id, msg, len);
	auth_keyset_put(ks);
	return v;
}

/*
 * An unknown kid may mean the IdP rotated its keys: refetch, at most once a
 * minute. Threads arriving meanwhile wait for that fetch, then retry too.
 */
static void refresh_for_kid(void)
{
	time_t now;

	pthread_mutex_lock(&st.refresh_lock);
	now = mono_s();
	if (!st.last_kid_fetch || now - st.last_kid_fetch >= JWKS_KID_REFRESH_MIN_S) {
		st.last_kid_fetch = now;
		refetch("unknown_kid", JWKS_KID_TIMEOUT_S);
	}
	pthread_mutex_unlock(&st.refresh_lock);
}

static int prov_verify(const char *cred, struct es_identity *id, char *msg, size_t len)
{
	bool token = st.mode != AUTH_MODE_KEYS_ONLY, have_keys;
	char tmsg[384] = "";
	struct auth_keyset *ks;
	struct apikeys *ak;
	enum auth_verdict v = AUTH_INVALID;
	int r;

	/* Token provider first (§4.2), only for credentials shaped like a JWT. */
	if (token && auth_jwt_shaped(cred)) {
		v = check_token(cred, id, tmsg, sizeof(tmsg));
		if (v == AUTH_UNKNOWN_KID && st.mode == AUTH_MODE_OIDC) {
			refresh_for_kid();
			es_identity_clear(id);
			v = check_token(cred, id, tmsg, sizeof(tmsg));
		}
		if (v == AUTH_OK)
			return 0;
		es_identity_clear(id);
	} else if (token) {
		snprintf(tmsg, sizeof(tmsg), "invalid token: malformed token");
	}
	take_refs(&ks, &ak);
	auth_keyset_put(ks);
	have_keys = ak && ak->n;
	r = have_keys ? auth_apikey_match(ak->keys, ak->n, cred, id) : -EACCES;
	apikeys_put(ak);
	if (!r)
		return 0;
	/* Which error to report (§12 item 27). */
	if (token && (!have_keys || auth_jwt_shaped(cred)))
		snprintf(msg, len, "%s", tmsg);
	else
		snprintf(msg, len, "invalid token: invalid API key");
	return -EACCES;
}

static const struct es_auth_provider provider = {
    .enabled = prov_enabled,
    .metrics_required = prov_metrics,
    .verify = prov_verify,
};

/* ---- lifecycle ------------------------------------------------------------------------ */

static int auth_start(const void *cfg)
{
	const struct auth_cfg *a = cfg;
	struct auth_keyset *ks = NULL;
	char err[256];
	int r;

	r_global_init();
	st.enabled = a->enabled;
	st.metrics = a->enabled && a->metrics_auth_required;
	st.mode = auth_cfg_mode(a);
	/* The write limiter is part of the gate: installed even with auth off. */
	es_auth_install(&provider);
	if (!a->enabled) {
		pr_info("authentication disabled: every endpoint is open");
		return 0;
	}
	if (st.mode == AUTH_MODE_JWT) {
		if ((r = load_pem(a->jwt_key_path, &ks)))
			return r;
		st.issuer = a->jwt_issuer ? strdup(a->jwt_issuer) : NULL;
		st.audience = a->jwt_audience ? strdup(a->jwt_audience) : NULL;
	} else if (st.mode == AUTH_MODE_OIDC) {
		st.jwks_url = strdup(a->jwks_url);
		ks = auth_jwks_fetch(a->jwks_url, JWKS_TIMEOUT_S, err, sizeof(err));
		if (!ks) {
			pr_error("cannot fetch the OIDC key set", LF_STR("url", a->jwks_url),
				 LF_STR("error", err));
			return -EIO;
		}
		st.last_fetch = mono_s();
		st.issuer = a->oidc_issuer ? strdup(a->oidc_issuer) : NULL;
		st.audience = a->oidc_audience ? strdup(a->oidc_audience) : NULL;
	}
	set_tokens(ks);
	pthread_mutex_lock(&st.lock);
	st.apikeys = apikeys_from(a);
	pthread_mutex_unlock(&st.lock);
	if (!st.apikeys)
		return -ENOMEM;
	pr_info("authentication enabled", LF_STR("mode", mode_names[st.mode]),
		LF_UINT("token_keys", auth_keyset_size(ks)), LF_UINT("api_keys", a->n_keys),
		LF_BOOL("metrics_auth_required", st.metrics));
	return 0;
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

static int auth_apply(const void *old_cfg, const void *new_cfg)
{
	const struct auth_cfg *o = old_cfg, *n = new_cfg;
	struct apikeys *keys, *prev;
	struct auth_keyset *ks;
	int r;

	if (o->enabled != n->enabled || auth_cfg_mode(o) != auth_cfg_mode(n) ||
	    o->metrics_auth_required != n->metrics_auth_required ||
	    str_differs(o->jwt_issuer, n->jwt_issuer) ||
	    str_differs(o->jwt_audience, n->jwt_audience) ||
	    str_differs(o->oidc_issuer, n->oidc_issuer) ||
	    str_differs(o->oidc_audience, n->oidc_audience))
		pr_warn("changes to auth.enabled, the auth method, issuer, audience or "
			"metrics_auth_required take effect after a restart");
	if (!st.enabled)
		return 0;
	/* Key material of the running mode, from the new file. */
	if (st.mode == AUTH_MODE_JWT && n->jwt_key_path[0]) {
		if ((r = load_pem(n->jwt_key_path, &ks)))
			return r;
		set_tokens(ks);
	} else if (st.mode == AUTH_MODE_OIDC && n->oidc) {
		pthread_mutex_lock(&st.refresh_lock);
		pthread_mutex_lock(&st.lock);
		free(st.jwks_url);
		st.jwks_url = strdup(n->jwks_url);
		pthread_mutex_unlock(&st.lock);
		refetch("reload", JWKS_TIMEOUT_S);
		pthread_mutex_unlock(&st.refresh_lock);
	}
	keys = apikeys_from(n);
	if (!keys)
		return -ENOMEM;
	pthread_mutex_lock(&st.lock);
	prev = st.apikeys;
	st.apikeys = keys;
	pthread_mutex_unlock(&st.lock);
	apikeys_put(prev);
	return 0;
}

static void auth_tick(void)
{
	if (!st.enabled || st.mode != AUTH_MODE_OIDC || mono_s() - st.last_fetch < JWKS_REFRESH_S)
		return;
	if (pthread_mutex_trylock(&st.refresh_lock))
		return;
	refetch("hourly", JWKS_KID_TIMEOUT_S);
	pthread_mutex_unlock(&st.refresh_lock);
}

static void auth_stop(void)
{
	struct apikeys *k;

	set_tokens(NULL);
	pthread_mutex_lock(&st.lock);
	k = st.apikeys;
	st.apikeys = NULL;
	free(st.jwks_url);
	st.jwks_url = NULL;
	pthread_mutex_unlock(&st.lock);
	apikeys_put(k);
	free(st.issuer);
	free(st.audience);
	st.issuer = st.audience = NULL;
}

static void auth_status(json_t *o)
{
	struct auth_keyset *ks;
	struct apikeys *ak;

	take_refs(&ks, &ak);
	json_object_set_new(o, "active", json_boolean(st.enabled));
	json_object_set_new(o, "mode", json_string(st.enabled ? mode_names[st.mode] : "off"));
	json_object_set_new(o, "token_keys", json_integer((json_int_t)auth_keyset_size(ks)));
	json_object_set_new(o, "api_keys", json_integer(ak ? (json_int_t)ak->n : 0));
	auth_keyset_put(ks);
	apikeys_put(ak);
}

const struct es_domain es_domain_auth = {
    .name = "auth",
    .section = "auth",
    .flags = ES_DOMAIN_EARLY | ES_DOMAIN_FATAL,
    .parse = auth_parse,
    .free_cfg = auth_free_cfg,
    .to_json = auth_to_json,
    .enabled = auth_enabled_cfg,
    .start = auth_start,
    .apply = auth_apply,
    .summary = auth_summary,
    .stop = auth_stop,
    .tick = auth_tick,
    .status = auth_status,
};
