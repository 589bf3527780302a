// SPDX-License-Identifier: AGPL-3.0-only
/* Regex dialect checks, PCRE2 (JIT) confirmation and the Vectorscan prefilter. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "domains/ids/match.h"

#include <errno.h>
#include <hs.h>
#include <pcre2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ids_matcher {
	size_t n;
	pcre2_code **re;
	hs_database_t *db; /* prefilter over the patterns it accepted */
	size_t *always;	   /* patterns outside the prefilter */
	size_t n_always;
};

struct ids_scan {
	const struct ids_matcher *m;
	hs_scratch_t *scratch;
	const hs_database_t *scratch_db; /* the database the scratch was sized for */
	pcre2_match_data *md;
	pcre2_match_context *mc;
	const uint8_t *data;
	size_t len;
	uint8_t *state; /* per pattern: 0 no, 1 prefilter hit, 2 confirmed, 3 refuted */
	size_t cap;
	uint32_t *touched; /* patterns whose state is not 0: reset in O(hits) */
	size_t n_touched;
};

static _Atomic uint64_t match_errors;

/*
 * RE2 has no backreferences, look-around, atomic groups, recursion,
 * conditionals or backtracking verbs: reject them by walking the pattern
 * (escapes and character classes skipped) before PCRE2 sees it.
 */
static const char *dialect_violation(const char *p)
{
	bool in_class = false;

	for (size_t i = 0; p[i]; i++) {
		char c = p[i];

		if (c == '\\') {
			char n = p[i + 1];

			if (!n)
				return "trailing backslash";
			if (!in_class && ((n >= '1' && n <= '9') || n == 'g' || n == 'k'))
				return "backreferences are not supported";
			if (!in_class && n == 'K')
				return "\\K is not supported";
			if (n == 'Q') {
				const char *e = strstr(p + i + 2, "\\E");

				if (!e)
					return NULL;
				i = (size_t)(e - p) + 1;
				continue;
			}
			i++;
			continue;
		}
		if (in_class) {
			if (c == ']')
				in_class = false;
			continue;
		}
		if (c == '[') {
			in_class = true;
			if (p[i + 1] == '^')
				i++;
			if (p[i + 1] == ']')
				i++; /* a literal ] first in the class */
			continue;
		}
		if (c != '(')
			continue;
		if (p[i + 1] == '*')
			return "backtracking control verbs are not supported";
		if (p[i + 1] != '?')
			continue;
		switch (p[i + 2]) {
		case '=':
		case '!': return "look-around assertions are not supported";
		case '<':
			if (p[i + 3] == '=' || p[i + 3] == '!')
				return "look-around assertions are not supported";
			break;
		case 'P':
			if (p[i + 3] == '=' || p[i + 3] == '>')
				return "backreferences are not supported";
			break;
		case '>': return "atomic groups are not supported";
		case '(': return "conditional patterns are not supported";
		case 'R':
		case '&':
		case '+':
		case '0' ... '9': return "recursion is not supported";
		case '|': return "branch reset groups are not supported";
		}
	}
	return NULL;
}

static pcre2_code *compile(const char *pattern, char *why, size_t len)
{
	pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
	pcre2_code *re;
	PCRE2_SIZE off;
	size_t size = 0;
	int err;

	if (!cc) {
		snprintf(why, len, "invalid regex: out of memory");
		return NULL;
	}
	pcre2_set_parens_nest_limit(cc, IDS_REGEX_MAX_NEST);
	pcre2_set_max_pattern_length(cc, 1u << 20);
	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &err, &off, cc);
	pcre2_compile_context_free(cc);
	if (!re) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(err, msg, sizeof(msg));
		snprintf(why, len, "invalid regex: %s at offset %zu", (char *)msg, (size_t)off);
		return NULL;
	}
	if (pcre2_pattern_info(re, PCRE2_INFO_SIZE, &size) == 0 && size > IDS_REGEX_MAX_SIZE) {
		snprintf(why, len, "invalid regex: compiled size %zu exceeds %u bytes", size,
			 IDS_REGEX_MAX_SIZE);
		pcre2_code_free(re);
		return NULL;
	}
	return re;
}

int ids_regex_check(const char *pattern, char *why, size_t len)
{
	const char *v = dialect_violation(pattern);
	pcre2_code *re;

	if (v) {
		snprintf(why, len, "invalid regex: %s", v);
		return -EINVAL;
	}
	re = compile(pattern, why, len);
	if (!re)
		return -EINVAL;
	pcre2_code_free(re);
	return 0;
}

void ids_matcher__free(struct ids_matcher *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		pcre2_code_free(m->re[i]);
	free(m->re);
	hs_free_database(m->db);
	free(m->always);
	free(m);
}

/* Every Vectorscan hit is confirmed by PCRE2, so results equal PCRE2's. */
static unsigned hs_flags(bool prefilter)
{
	/* No HS_FLAG_SINGLEMATCH: Vectorscan 5.4.9 misses matches with it (e.g.
	 * (?i)n\s+ after a run of high bytes; kept in the fuzz corpus). */
	return HS_FLAG_ALLOWEMPTY | (prefilter ? HS_FLAG_PREFILTER : 0);
}

struct ids_matcher *ids_matcher__new(const char *const *patterns, size_t n, char *why, size_t len)
{
	struct ids_matcher *m = calloc(1, sizeof(*m));
	const char **expr = NULL;
	unsigned *flags = NULL, *ids = NULL;
	size_t nexpr = 0;
	hs_compile_error_t *cerr = NULL;

	if (!m)
		return NULL;
	m->n = n;
	m->re = calloc(n ? n : 1, sizeof(*m->re));
	m->always = calloc(n ? n : 1, sizeof(*m->always));
	expr = calloc(n ? n : 1, sizeof(*expr));
	flags = calloc(n ? n : 1, sizeof(*flags));
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!m->re || !m->always || !expr || !flags || !ids)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		hs_database_t *one = NULL;

		m->re[i] = compile(patterns[i], why, len);
		if (!m->re[i])
			goto fail;
		pcre2_jit_compile(m->re[i], PCRE2_JIT_COMPLETE); /* interpreter when JIT fails */
		/* Prefilter mode (a guaranteed superset of PCRE2's matches: exact mode
		 * was seen to miss some, e.g. case-folded classes next to high bytes),
		 * else the PCRE2-only list. */
		flags[nexpr] = hs_flags(true);
		if (hs_compile(patterns[i], flags[nexpr], HS_MODE_BLOCK, NULL, &one, &cerr) !=
		    HS_SUCCESS) {
			hs_free_compile_error(cerr);
			cerr = NULL;
			m->always[m->n_always++] = i;
			continue;
		}
		hs_free_database(one);
		expr[nexpr] = patterns[i];
		ids[nexpr] = (unsigned)i;
		nexpr++;
	}
	if (nexpr && hs_compile_multi(expr, flags, ids, (unsigned)nexpr, HS_MODE_BLOCK, NULL,
				      &m->db, &cerr) != HS_SUCCESS) {
		/* The set as a whole failed (e.g. too large): PCRE2 for everything. */
		hs_free_compile_error(cerr);
		m->db = NULL;
		m->n_always = 0;
		for (size_t i = 0; i < n; i++)
			m->always[m->n_always++] = i;
	}
	free(expr);
	free(flags);
	free(ids);
	return m;
nomem:
	snprintf(why, len, "out of memory");
fail:
	free(expr);
	free(flags);
	free(ids);
	ids_matcher__free(m);
	return NULL;
}

size_t ids_matcher_count(const struct ids_matcher *m)
{
	return m ? m->n : 0;
}

size_t ids_matcher_fallbacks(const struct ids_matcher *m)
{
	return m ? m->n_always : 0;
}

struct ids_scan *ids_scan__new(void)
{
	struct ids_scan *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->md = pcre2_match_data_create(1, NULL);
	s->mc = pcre2_match_context_create(NULL);
	if (!s->md || !s->mc) {
		ids_scan__free(s);
		return NULL;
	}
	pcre2_set_match_limit(s->mc, IDS_REGEX_MATCH_LIMIT);
	return s;
}

void ids_scan__free(struct ids_scan *s)
{
	if (!s)
		return;
	hs_free_scratch(s->scratch);
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mc);
	free(s->state);
	free(s->touched);
	free(s);
}

int ids_pcre2_match(const struct ids_matcher *m, size_t i, const uint8_t *data, size_t len,
		    struct ids_scan *s)
{
	int r;

	if (i >= m->n)
		return -EINVAL;
	r = pcre2_match(m->re[i], data, len, 0, 0, s->md, s->mc);
	if (r >= 0)
		return 1;
	if (r == PCRE2_ERROR_NOMATCH)
		return 0;
	atomic_fetch_add(&match_errors, 1); /* match limit and the like: no match */
	return 0;
}

static int on_hit(unsigned int id, unsigned long long from, unsigned long long to,
		  unsigned int flags, void *ctx)
{
	struct ids_scan *s = ctx;

	if (id < s->m->n && !s->state[id]) {
		s->state[id] = 1;
		s->touched[s->n_touched++] = id;
	}
	return 0;
}

int ids_scan_run(struct ids_scan *s, const struct ids_matcher *m, const uint8_t *data, size_t len)
{
	if (s->cap < m->n || s->m != m) {
		uint8_t *st = s->cap < m->n ? realloc(s->state, m->n) : s->state;
		uint32_t *t = s->cap < m->n ? realloc(s->touched, m->n * sizeof(*t)) : s->touched;

		if (st)
			s->state = st;
		if (t)
			s->touched = t;
		if (!st || !t)
			return -ENOMEM;
		s->cap = m->n > s->cap ? m->n : s->cap;
		memset(s->state, 0, s->cap);
		s->n_touched = 0;
	}
	for (size_t k = 0; k < s->n_touched; k++)
		s->state[s->touched[k]] = 0;
	s->n_touched = 0;
	s->m = m;
	s->data = data;
	s->len = len;
	for (size_t k = 0; k < m->n_always; k++) {
		s->state[m->always[k]] = 1;
		s->touched[s->n_touched++] = (uint32_t)m->always[k];
	}
	if (!m->db)
		return 0;
	/*
	 * Vectorscan 5.4.9 misses literal matches next to runs of high bytes (the
	 * fuzzer found "(?i)n\s*" and plain "N" missed after 0x8e... bytes, with
	 * or without SINGLEMATCH). Results must equal PCRE2's, so payloads with
	 * any byte >= 0x80 go to PCRE2 alone; ASCII payloads take the prefilter.
	 */
	for (size_t i = 0; i < len; i++) {
		if (data[i] < 0x80)
			continue;
		for (size_t k = 0; k < m->n; k++)
			if (!s->state[k]) {
				s->state[k] = 1;
				s->touched[s->n_touched++] = (uint32_t)k;
			}
		return 0;
	}
	if (s->scratch_db != m->db) {
		if (hs_alloc_scratch(m->db, &s->scratch) != HS_SUCCESS)
			return -ENOMEM;
		s->scratch_db = m->db;
	}
	if (hs_scan(m->db, (const char *)data, (unsigned)len, 0, s->scratch, on_hit, s) !=
	    HS_SUCCESS)
		for (size_t i = 0; i < m->n; i++) /* prefilter failed: PCRE2 decides alone */
			if (!s->state[i]) {
				s->state[i] = 1;
				s->touched[s->n_touched++] = (uint32_t)i;
			}
	return 0;
}

bool ids_scan_hit(struct ids_scan *s, size_t i)
{
	if (!s->m || i >= s->m->n || !s->state[i])
		return false;
	if (s->state[i] == 1)
		s->state[i] = ids_pcre2_match(s->m, i, s->data, s->len, s) == 1 ? 2 : 3;
	return s->state[i] == 2;
}

size_t ids_scan_matches(struct ids_scan *s, uint32_t *out, size_t max)
{
	size_t n = 0;

	for (size_t k = 0; k < s->n_touched && n < max; k++)
		if (ids_scan_hit(s, s->touched[k]))
			out[n++] = s->touched[k];
	return n;
}

uint64_t ids_match_errors(void)
{
	return atomic_load(&match_errors);
}

int ids_regex_search_ci(const char *pattern, const char *subject)
{
	PCRE2_SIZE off;
	pcre2_code *re;
	pcre2_match_data *md;
	int err, r;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &err, &off,
			   NULL);
	if (!re)
		return -EINVAL;
	md = pcre2_match_data_create_from_pattern(re, NULL);
	r = md ? pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL) : -1;
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return r >= 0 ? 1 : 0;
}
