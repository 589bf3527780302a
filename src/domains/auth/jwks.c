// SPDX-License-Identifier: AGPL-3.0-only
/* Fetching an OIDC key set (interfaces.md §4.3): a plain GET of the JWKS URL. */
#define ES_LOG_TARGET "ebpfsentinel::auth"
#include "domains/auth/auth.h"
#include "core/strbuf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#define JWKS_MAX_BYTES (1 << 20)

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
	struct es_sb *sb = ud;

	if (sb->len + sz * n > JWKS_MAX_BYTES)
		return 0;
	es_sb_append(sb, p, sz * n);
	return sb->failed ? 0 : sz * n;
}

struct auth_keyset *auth_jwks_fetch(const char *url, long timeout_s, char *err, size_t errlen)
{
	struct es_sb sb = ES_SB_INIT;
	struct auth_keyset *ks = NULL;
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode cr;
	CURL *h = curl_easy_init();

	if (!h) {
		snprintf(err, errlen, "cannot initialise HTTP client");
		return NULL;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout_s);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sb);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "ebpfsentinel-agent/" ES_VERSION);
	cr = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (cr != CURLE_OK)
		snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(cr));
	else if (status != 200)
		snprintf(err, errlen, "HTTP status %ld", status);
	else if (sb.failed)
		snprintf(err, errlen, "out of memory");
	else
		ks = auth_keyset_from_jwks(es_sb_str(&sb), sb.len, err, errlen);
	es_sb_free(&sb);
	return ks;
}
