// SPDX-License-Identifier: AGPL-3.0-only
/* libFuzzer: IDS pattern handling (detection.md §0.2). The first line is a
 * pattern: dialect check, PCRE2 compile, Vectorscan prefilter; the rest is a
 * payload scanned with it, and the prefilter+confirm verdict must equal
 * PCRE2's own. */
#include <stdlib.h>
#include <string.h>

#include "domains/ids/match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - data) : size;
	char *pat = malloc(plen + 1), why[256];
	const char *pats[1];
	struct ids_matcher *m;
	struct ids_scan *s;

	if (!pat)
		return 0;
	memcpy(pat, data, plen);
	pat[plen] = '\0';
	if (strlen(pat) != plen || ids_regex_check(pat, why, sizeof(why))) {
		free(pat);
		return 0;
	}
	pats[0] = pat;
	m = ids_matcher__new(pats, 1, why, sizeof(why));
	s = ids_scan__new();
	if (m && s) {
		const uint8_t *payload = nl ? nl + 1 : data + size;
		size_t len = (size_t)(data + size - payload);
		int want = ids_pcre2_match(m, 0, payload, len, s);

		if (ids_scan_run(s, m, payload, len) == 0 && ids_scan_hit(s, 0) != (want == 1))
			abort(); /* the prefilter lost a match (or invented one) */
	}
	ids_scan__free(s);
	ids_matcher__free(m);
	free(pat);
	return 0;
}
