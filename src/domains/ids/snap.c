// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Rule snapshots (detection.md §1.3): the combined rule list (IDS, then IPS),
 * its patterns compiled once, an index of rules by (port, protocol) for the
 * candidate search, and the kernel table derived from it: each key K gets a
 * value computed over the rules covering it, C(K) = rules keyed K,
 * (K.port, any), (any, K.proto) and (any, any).
 */
#include "core/hmap.h"
#include "domains/ids/ids_int.h"
#include "abi/ids.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gkey {
	uint16_t port;
	uint8_t proto;
	uint8_t pad;
};

static struct gkey key_of(const struct ids_rule *r)
{
	return (struct gkey){.port = r->has_port ? r->dst_port : 0, .proto = r->protocol};
}

static void list_free(const void *k, void *v)
{
	free(((struct ids_list *)v)->idx);
}

static bool free_lists(const void *k, void *v, void *arg)
{
	list_free(k, v);
	return true;
}

void ids_snap_put(struct ids_snap *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL))
		return;
	ids_rules_free(s->rules, s->n);
	ids_sampling_free(&s->ids_sampling);
	ids_sampling_free(&s->ips_sampling);
	ids_matcher__free(s->m);
	free(s->pat);
	if (s->by_key) {
		es_hmap_sweep(s->by_key, free_lists, NULL);
		es_hmap__free(s->by_key);
	}
	free(s);
}

static int copy_sampling(struct ids_sampling *dst, const struct ids_sampling *src)
{
	*dst = *src;
	dst->high_risk_countries = NULL;
	if (src->high_risk_countries &&
	    !(dst->high_risk_countries = es_strv_dup(src->high_risk_countries)))
		return -ENOMEM;
	return 0;
}

static bool section_on(const struct ids_snap *s, size_t i)
{
	return i < s->n_ids ? s->ids_enabled : s->ips_enabled;
}

bool ids_snap_blocks(const struct ids_snap *s, size_t i)
{
	enum ids_mode sec = i < s->n_ids ? s->ids_mode : s->ips_mode;
	enum ids_mode m = s->rules[i].mode == IDS_MODE_INHERIT ? sec : s->rules[i].mode;

	return sec == IDS_MODE_BLOCK && m == IDS_MODE_BLOCK;
}

struct ids_snap *ids_snap__new(const struct ids_cfg *ids, const struct ids_ips_view *ips, char *why,
			       size_t len)
{
	struct ids_snap *s = calloc(1, sizeof(*s));
	size_t n_ids = ids ? ids->n_rules : 0, n_ips = ips ? ips->n_rules : 0, np = 0;
	const char **pats = NULL;
	struct ids_rule *a = NULL, *b = NULL;

	if (!s)
		goto nomem;
	s->refs = 1;
	s->ids_enabled = ids && ids->enabled;
	s->ids_mode = ids ? ids->mode : IDS_MODE_ALERT;
	s->ips_enabled = ips && ips->enabled;
	s->ips_mode = ips ? ips->mode : IDS_MODE_ALERT;
	if ((ids && copy_sampling(&s->ids_sampling, &ids->sampling)) ||
	    (ips && ips->sampling && copy_sampling(&s->ips_sampling, ips->sampling)))
		goto nomem;
	if (ids_rules_dup(ids ? ids->rules : NULL, n_ids, &a) ||
	    ids_rules_dup(ips ? ips->rules : NULL, n_ips, &b))
		goto nomem;
	s->rules = calloc(n_ids + n_ips + 1, sizeof(*s->rules));
	s->pat = calloc(n_ids + n_ips + 1, sizeof(*s->pat));
	pats = calloc(n_ids + n_ips + 1, sizeof(*pats));
	s->by_key = es_hmap__new(sizeof(struct gkey), sizeof(struct ids_list));
	if (!s->rules || !s->pat || !pats || !s->by_key)
		goto nomem;
	memcpy(s->rules, a, n_ids * sizeof(*a));
	memcpy(s->rules + n_ids, b, n_ips * sizeof(*b));
	free(a);
	free(b);
	a = b = NULL;
	s->n = n_ids + n_ips;
	s->n_ids = n_ids;
	for (size_t i = 0; i < s->n; i++) {
		const struct ids_rule *r = &s->rules[i];
		struct gkey k = key_of(r);
		struct ids_list *l;

		s->pat[i] = -1;
		if (!r->enabled || !section_on(s, i))
			continue;
		if (r->pattern[0]) {
			s->pat[i] = (int)np;
			pats[np++] = r->pattern;
		}
		l = es_hmap_put(s->by_key, &k, NULL);
		if (!l)
			goto nomem;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 4;
			uint32_t *x = realloc(l->idx, cap * sizeof(*x));

			if (!x)
				goto nomem;
			l->idx = x;
			l->cap = cap;
		}
		l->idx[l->n++] = (uint32_t)i;
	}
	s->m = ids_matcher__new(pats, np, why, len);
	if (!s->m)
		goto fail;
	free(pats);
	return s;
nomem:
	snprintf(why, len, "out of memory");
fail:
	ids_rules_free(a, n_ids);
	ids_rules_free(b, n_ips);
	free(pats);
	ids_snap_put(s);
	return NULL;
}

static const struct ids_list *group(const struct ids_snap *s, uint16_t port, uint8_t proto)
{
	struct gkey k = {.port = port, .proto = proto};

	return es_hmap_get(s->by_key, &k);
}

/* Merge up to four sorted index lists (config order), without duplicates. */
static size_t merge(const struct ids_list *const *ls, int nl, uint32_t *out, size_t max)
{
	size_t pos[4] = {0}, n = 0;

	for (;;) {
		uint32_t best = UINT32_MAX;

		for (int i = 0; i < nl; i++)
			if (ls[i] && pos[i] < ls[i]->n && ls[i]->idx[pos[i]] < best)
				best = ls[i]->idx[pos[i]];
		if (best == UINT32_MAX || n >= max)
			return n;
		out[n++] = best;
		for (int i = 0; i < nl; i++)
			if (ls[i] && pos[i] < ls[i]->n && ls[i]->idx[pos[i]] == best)
				pos[i]++;
	}
}

static uint8_t norm_proto(uint8_t p)
{
	return p == 58 ? 1 : p; /* icmp rules cover ICMPv6 [Gap] */
}

size_t ids_snap_candidates(const struct ids_snap *s, uint8_t proto, uint16_t port, uint32_t *out,
			   size_t max)
{
	const struct ids_list *ls[4];
	uint8_t p = norm_proto(proto);

	ls[0] = group(s, port, p);
	ls[1] = port ? group(s, port, 0) : NULL;
	ls[2] = port ? group(s, 0, p) : NULL;
	ls[3] = p ? group(s, 0, 0) : NULL;
	return merge(ls, 4, out, max);
}

struct summary {
	bool any;
	uint32_t first;
	uint8_t severity;
	bool pattern, ips, drop;
};

static void summarize(const struct ids_snap *s, const struct ids_list *l, struct summary *sum)
{
	for (size_t k = 0; l && k < l->n; k++) {
		size_t i = l->idx[k];
		const struct ids_rule *r = &s->rules[i];

		if (!sum->any || i < sum->first) {
			sum->first = (uint32_t)i;
			sum->severity = (uint8_t)r->severity;
		}
		sum->any = true;
		sum->pattern |= r->pattern[0] != '\0';
		sum->ips |= i >= s->n_ids;
		/* Port-less and pattern/domain rules never drop in the kernel. */
		sum->drop |=
		    r->has_port && !r->pattern[0] && !r->domain_pattern && ids_snap_blocks(s, i);
	}
}

struct kctx {
	const struct ids_snap *s;
	struct ids_kentry *out;
	size_t max, n, total;
};

static void emit_key(struct kctx *k, uint16_t port, uint8_t kproto)
{
	const struct ids_snap *s = k->s;
	uint8_t p = norm_proto(kproto);
	struct summary sum = {0};

	for (size_t i = 0; i < k->n; i++)
		if (k->out[i].port == port && k->out[i].proto == kproto)
			return;
	summarize(s, group(s, port, p), &sum);
	if (p)
		summarize(s, group(s, port, 0), &sum);
	if (port)
		summarize(s, group(s, 0, p), &sum);
	if (port && p)
		summarize(s, group(s, 0, 0), &sum);
	k->total++;
	if (k->n >= k->max)
		return;
	k->out[k->n++] = (struct ids_kentry){
	    .port = port,
	    .proto = kproto,
	    .action = sum.drop ? ES_IDS_ACT_DROP : ES_IDS_ACT_ALERT,
	    .severity = sum.severity,
	    .flags = (uint8_t)((sum.pattern ? ES_IDS_F_WANT_PAYLOAD : 0) |
			       (sum.ips ? 0 : ES_IDS_F_SAMPLE) | (port ? 0 : ES_IDS_F_SYN_ONLY)),
	    .rule_id = sum.first,
	};
}

static bool each_group(const void *key, void *val, void *arg)
{
	const struct gkey *g = key;

	if (g->proto == 1) {
		emit_key(arg, g->port, 1);
		emit_key(arg, g->port, 58);
	} else {
		emit_key(arg, g->port, g->proto);
	}
	return false;
}

size_t ids_snap_kernel(const struct ids_snap *s, struct ids_kentry *out, size_t max)
{
	struct kctx k = {.s = s, .out = out, .max = max};

	es_hmap_sweep(s->by_key, each_group, &k);
	return k.total;
}
