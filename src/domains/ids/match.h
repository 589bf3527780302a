/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Payload matching (detection.md §0.2): RE2-style patterns checked at load
 * (backreferences and look-around rejected, nesting <= 200, compiled size
 * <= 10 MiB), compiled with PCRE2 (JIT) as the reference engine and with
 * Vectorscan as a multi-pattern prefilter, so a payload is scanned once for
 * all patterns and only prefilter hits are confirmed by PCRE2. Payloads with
 * bytes >= 0x80 skip the prefilter (a Vectorscan 5.4.9 defect, see match.c).
 */
#ifndef ES_IDS_MATCH_H
#define ES_IDS_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDS_REGEX_MAX_SIZE (10u << 20)
#define IDS_REGEX_MAX_NEST 200
#define IDS_REGEX_MATCH_LIMIT 1000000

/* Validate one pattern. 0, or -EINVAL with "invalid regex: <reason>" in why. */
int ids_regex_check(const char *pattern, char *why, size_t len);

struct ids_matcher;
struct ids_scan;

/* Compile n patterns (all already valid). NULL + -errno on failure, why filled. */
struct ids_matcher *ids_matcher__new(const char *const *patterns, size_t n, char *why, size_t len);
void ids_matcher__free(struct ids_matcher *m);
size_t ids_matcher_count(const struct ids_matcher *m);
/* Patterns Vectorscan could not take (always confirmed with PCRE2 alone). */
size_t ids_matcher_fallbacks(const struct ids_matcher *m);

/* Per-thread scan state (Vectorscan scratch, PCRE2 match data, hit bits). */
struct ids_scan *ids_scan__new(void);
void ids_scan__free(struct ids_scan *s);

/*
 * Scan data once: afterwards ids_scan_hit(s, i) tells whether pattern i
 * matches (prefilter hit confirmed by PCRE2, lazily and once per pattern).
 * 0 or -errno.
 */
int ids_scan_run(struct ids_scan *s, const struct ids_matcher *m, const uint8_t *data, size_t len);
bool ids_scan_hit(struct ids_scan *s, size_t i);
/* The patterns matching the scanned data (confirmed), at most max; O(hits). */
size_t ids_scan_matches(struct ids_scan *s, uint32_t *out, size_t max);
/* Reference: PCRE2 alone on one pattern (tests, benchmarks). 1 match, 0 no, -errno. */
int ids_pcre2_match(const struct ids_matcher *m, size_t i, const uint8_t *data, size_t len,
		    struct ids_scan *s);
/* Case-insensitive unanchored search of a (validated) pattern: 1, 0, -errno. */
int ids_regex_search_ci(const char *pattern, const char *subject);
/* PCRE2 match-limit hits since start (counted as errors, treated as no match). */
uint64_t ids_match_errors(void);

#endif
