// SPDX-License-Identifier: AGPL-3.0-only
/*
 * IDS payload matching throughput (bench topic `ids`): N patterns over a
 * corpus of 512-byte HTTP-like payloads, scanned once by the Vectorscan
 * prefilter with PCRE2 confirmation (what the engine does), against a loop
 * of PCRE2 (JIT) matches, one per pattern (the baseline). Prints one JSON
 * object: MB/s of each and the hits of each, which must agree.
 *   idsmatch N_PATTERNS MEGABYTES
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domains/ids/match.h"

static const char *const words[] = {
    "select", "union",	"insert", "delete", "update", "drop",	 "passwd", "shadow", "admin",
    "script", "alert",	"eval",	  "exec",   "system", "cmd",	 "shell",  "wget",   "curl",
    "chmod",  "base64", "onload", "iframe", "cookie", "session", "token",  "secret",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))
/* Ordinary request text the payloads are made of. */
static const char *const text[] = {
    "the",    "value",	 "data",    "page",    "item", "user",	"lang", "json", "html",
    "accept", "gzip",	 "Mozilla", "Firefox", "keep", "alive", "max",	"age",	"no",
    "cache",  "charset", "utf",	    "product", "list", "view",	"home", "news", "price",
};
#define NTEXT (sizeof(text) / sizeof(text[0]))

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Signature-like patterns: a rare literal anchor, then a little regex. */
static char *pattern(unsigned i)
{
	char *p = malloc(128);

	switch (i % 4) {
	case 0:
		snprintf(p, 128, "(?i)%s\\s+%s%u", words[i % NWORDS], words[(i / 7) % NWORDS], i);
		break;
	case 1: snprintf(p, 128, "/%s%u\\.php\\?id=\\d+", words[i % NWORDS], i); break;
	case 2: snprintf(p, 128, "%s_%u[=:][A-Za-z0-9]{8,}", words[(i * 3) % NWORDS], i); break;
	default:
		snprintf(p, 128, "\\b%u%s\\b.{0,16}%s", i, words[i % NWORDS],
			 words[(i + 5) % NWORDS]);
	}
	return p;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
	double mb = argc > 2 ? atof(argv[2]) : 8;
	size_t npay = 2048, plen = 512, rounds;
	const char **pats = calloc(n, sizeof(*pats));
	uint8_t *corpus = malloc(npay * plen);
	struct ids_matcher *m;
	struct ids_scan *s = ids_scan__new();
	char why[256];
	unsigned long hits_fast = 0, hits_ref = 0;
	uint32_t *matched = calloc(n, sizeof(*matched));
	double t0, t_fast, t_ref;

	srand(42);
	for (unsigned i = 0; i < n; i++)
		pats[i] = pattern(i);
	for (size_t k = 0; k < npay; k++) {
		char *p = (char *)corpus + k * plen;
		int o = snprintf(
		    p, plen, "GET /index.php?q=%d HTTP/1.1\r\nHost: www.example.org\r\n", rand());

		while ((size_t)o < plen - 16) {
			/* mostly ordinary text, a signature word now and then */
			const char *w = rand() % 16 ? text[rand() % NTEXT] : words[rand() % NWORDS];

			o += snprintf(p + o, plen - (size_t)o, "%s%c", w, " =&/\n"[rand() % 5]);
		}
		memset(p + o, 'x', plen - (size_t)o);
		/* One payload in 64 carries a real signature. */
		if (k % 64 == 0) {
			unsigned i = (unsigned)rand() % n;

			if (i % 4 == 1)
				snprintf(p + 100, 64, "/%s%u.php?id=42 ", words[i % NWORDS], i);
		}
	}
	m = ids_matcher__new(pats, n, why, sizeof(why));
	if (!m || !s) {
		fprintf(stderr, "idsmatch: %s\n", m ? "out of memory" : why);
		return 1;
	}
	rounds = (size_t)(mb * 1e6 / (double)(npay * plen)) + 1;
	t0 = now();
	for (size_t r = 0; r < rounds; r++)
		for (size_t k = 0; k < npay; k++) {
			ids_scan_run(s, m, corpus + k * plen, plen);
			hits_fast += ids_scan_matches(s, matched, n);
		}
	t_fast = now() - t0;
	/* The baseline gets a smaller share of the corpus when slow; figures are per byte. */
	{
		size_t ref_pay = npay;
		double budget = t_fast * 200 > 20 ? 20 : t_fast * 200;

		t0 = now();
		for (size_t r = 0; r < rounds; r++) {
			for (size_t k = 0; k < npay; k++) {
				for (unsigned i = 0; i < n; i++)
					hits_ref +=
					    ids_pcre2_match(m, i, corpus + k * plen, plen, s) == 1;
				if (now() - t0 > budget) {
					ref_pay = r * npay + k + 1;
					goto done;
				}
			}
		}
		ref_pay = rounds * npay;
	done:
		t_ref = now() - t0;
		printf("{\"patterns\": %u, \"prefilter_fallbacks\": %zu, "
		       "\"fast_bytes\": %zu, \"fast_seconds\": %.6f, \"fast_mb_s\": %.3f, "
		       "\"ref_bytes\": %zu, \"ref_seconds\": %.6f, \"ref_mb_s\": %.3f, "
		       "\"fast_hits\": %lu, \"ref_hits\": %lu, \"ref_complete\": %s}\n",
		       n, ids_matcher_fallbacks(m), rounds * npay * plen, t_fast,
		       (double)(rounds * npay * plen) / t_fast / 1e6, ref_pay * plen, t_ref,
		       (double)(ref_pay * plen) / t_ref / 1e6, hits_fast, hits_ref,
		       ref_pay == rounds * npay ? "true" : "false");
	}
	ids_scan__free(s);
	ids_matcher__free(m);
	for (unsigned i = 0; i < n; i++)
		free((char *)pats[i]);
	free(pats);
	free(corpus);
	free(matched);
	return 0;
}
