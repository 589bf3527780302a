// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The rule compiler (network.md §2.3 with the classifier of abi/firewall.h):
 * select the active rules (enabled, scheduled), order them by priority (ties
 * in config order), expand aliases, scope and families, then build for each
 * match dimension the value→class tables and the deduplicated class records
 * (bitmaps of positions plus per-group word summaries). The result is an
 * image of one bank; fw_kern.c copies it into the kernel.
 */
#include "domains/firewall/fw.h"
#include "domains/firewall/fw_trie.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W ES_FW_WORDS

/* A rule as the compiler sees it. */
struct crule {
	const struct fw_rule *r;
	uint8_t action;
	bool fam[2];
	bool src_wild, dst_wild;   /* no address condition on that side */
	struct es_cidr *src, *dst; /* prefixes (both families) */
	size_t nsrc, ndst;
	struct es_port_range *sp, *dp; /* merged, sorted */
	size_t nsp, ndp;
	bool sp_wild, dp_wild;
	bool if_wild;
	uint32_t ifmask;
	uint8_t group;
};

struct intern {
	struct fw_image *img;
	__u64 gm[ES_FW_G__COUNT][W];
	uint32_t *slots; /* class id + 1, 0 = empty */
	size_t cap;
	char *why;
	size_t whylen;
};

/* ---- bitmaps and classes -------------------------------------------------------- */

static inline void bm_set(__u64 *b, uint32_t p)
{
	b[p / 64] |= 1ull << (p % 64);
}

static inline void bm_clr(__u64 *b, uint32_t p)
{
	b[p / 64] &= ~(1ull << (p % 64));
}

static __u64 bm_hash(const __u64 *b)
{
	__u64 h = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < W; i++) {
		h ^= b[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
		h *= 0xff51afd7ed558ccdull;
	}
	return h ^ (h >> 33);
}

static int intern_grow(struct intern *in)
{
	size_t nc = in->cap ? in->cap * 2 : 1024;
	uint32_t *ns = calloc(nc, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < in->cap; i++) {
		uint32_t id = in->slots[i];
		size_t j;

		if (!id)
			continue;
		j = bm_hash(in->img->cls[id - 1].w) & (nc - 1);
		while (ns[j])
			j = (j + 1) & (nc - 1);
		ns[j] = id;
	}
	free(in->slots);
	in->slots = ns;
	in->cap = nc;
	return 0;
}

static int add_record(struct intern *in, const __u64 *b, uint32_t *out)
{
	struct fw_image *img = in->img;
	struct es_fw_cls *c;

	if (img->n_cls >= ES_FW_CLS_PER_BANK) {
		snprintf(in->why, in->whylen,
			 "rule set too complex: more than %u distinct match classes",
			 ES_FW_CLS_PER_BANK);
		return -E2BIG;
	}
	if (img->n_cls == img->cap_cls) {
		uint32_t nc = img->cap_cls ? img->cap_cls * 2 : 256;
		struct es_fw_cls *nv;

		if (nc > ES_FW_CLS_PER_BANK)
			nc = ES_FW_CLS_PER_BANK;
		nv = realloc(img->cls, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		img->cls = nv;
		img->cap_cls = nc;
	}
	c = &img->cls[img->n_cls];
	memset(c, 0, sizeof(*c));
	memcpy(c->w, b, sizeof(c->w));
	for (int g = 0; g < ES_FW_G__COUNT; g++)
		for (int i = 0; i < W; i++)
			if (b[i] & in->gm[g][i])
				c->summ[g] |= 1ull << i;
	*out = img->n_cls++;
	return 0;
}

/* The class of bitmap b, created when new. */
static int intern(struct intern *in, const __u64 *b, uint32_t *out)
{
	size_t j;
	int r;

	if ((in->img->n_cls + 1) * 2 > in->cap && (r = intern_grow(in)))
		return r;
	j = bm_hash(b) & (in->cap - 1);
	while (in->slots[j]) {
		uint32_t id = in->slots[j] - 1;

		if (!memcmp(in->img->cls[id].w, b, sizeof(in->img->cls[id].w))) {
			*out = id;
			return 0;
		}
		j = (j + 1) & (in->cap - 1);
	}
	if ((r = add_record(in, b, out)))
		return r;
	in->slots[j] = *out + 1;
	return 0;
}

/* ---- rule preparation ------------------------------------------------------------ */

static void crule_free(struct crule *c)
{
	free(c->src);
	free(c->dst);
	free(c->sp);
	free(c->dp);
}

static bool cidr_within(const struct es_cidr *outer, const struct es_cidr *inner)
{
	return outer->addr.family == inner->addr.family && outer->plen <= inner->plen &&
	       es_cidr_contains(outer, &inner->addr);
}

/*
 * The address condition of one side: the explicit CIDR, the alias members, or
 * their intersection (each pair of prefixes is nested or disjoint).
 */
static int side_prefixes(const struct fw_compile_in *in, bool has, const struct es_cidr *cidr,
			 const char *alias, bool *wild, struct es_cidr **out, size_t *n)
{
	struct es_port_range *unused = NULL;
	struct es_cidr *ac = NULL;
	size_t an = 0, nu = 0, k = 0;
	int r;

	*out = NULL;
	*n = 0;
	*wild = !has && !alias;
	if (*wild)
		return 0;
	if (!alias) {
		*out = malloc(sizeof(**out));
		if (!*out)
			return -ENOMEM;
		**out = *cidr;
		*n = 1;
		return 0;
	}
	r = fw_alias_resolve(in->aliases, alias, &ac, &an, &unused, &nu);
	free(unused);
	if (r)
		return r;
	if (!has) {
		*out = ac;
		*n = an;
		return 0;
	}
	for (size_t i = 0; i < an; i++) {
		if (cidr_within(cidr, &ac[i]))
			ac[k++] = ac[i];
		else if (cidr_within(&ac[i], cidr))
			ac[k++] = *cidr;
	}
	*out = ac;
	*n = k;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct es_port_range *x = a, *y = b;

	return x->start != y->start ? (x->start < y->start ? -1 : 1)
				    : (x->end < y->end ? -1 : x->end > y->end);
}

/* Sort and merge overlapping or adjacent ranges in place. */
static size_t merge_ranges(struct es_port_range *r, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 1; i < n; i++) {
		if ((uint32_t)r[i].start <= (uint32_t)r[k].end + 1) {
			if (r[i].end > r[k].end)
				r[k].end = r[i].end;
		} else {
			r[++k] = r[i];
		}
	}
	return k + 1;
}

/* Ports of one side: explicit range, alias ranges, or their intersection. */
static int side_ports(const struct fw_compile_in *in, const struct fw_ports *explicit,
		      const char *alias, bool *wild, struct es_port_range **out, size_t *n)
{
	struct es_cidr *unused = NULL;
	struct es_port_range *ap = NULL;
	size_t an = 0, nu = 0, k = 0;
	int r;

	*out = NULL;
	*n = 0;
	*wild = !explicit->n && !alias;
	if (*wild)
		return 0;
	if (!alias) {
		*out = malloc(sizeof(**out));
		if (!*out)
			return -ENOMEM;
		**out = explicit->r[0];
		*n = 1;
		return 0;
	}
	r = fw_alias_resolve(in->aliases, alias, &unused, &nu, &ap, &an);
	free(unused);
	if (r)
		return r;
	for (size_t i = 0; i < an; i++) {
		struct es_port_range x = ap[i];

		if (explicit->n) {
			if (x.start < explicit->r[0].start)
				x.start = explicit->r[0].start;
			if (x.end > explicit->r[0].end)
				x.end = explicit->r[0].end;
			if (x.start > x.end)
				continue;
		}
		ap[k++] = x;
	}
	*out = ap;
	*n = merge_ranges(ap, k);
	return 0;
}

/* Interface positions a scope covers (wild for global). */
static void scope_mask(const struct fw_compile_in *in, const struct fw_rule *r, bool *wild,
		       uint32_t *mask)
{
	const struct fw_alias *grp;

	*wild = r->scope == FW_SCOPE_GLOBAL;
	*mask = 0;
	if (*wild)
		return;
	grp = r->scope == FW_SCOPE_IFACE ? fw_alias_find(in->aliases, r->scope_name) : NULL;
	for (size_t i = 0; i < in->n_ifnames && i < ES_FW_MAX_IFACES; i++) {
		const char *ifn = in->ifnames[i];
		bool hit = false;

		if (r->scope == FW_SCOPE_NS)
			hit = !strncmp(ifn, r->scope_name, strlen(r->scope_name));
		else if (grp && grp->type == FW_AT_INTERFACE_GROUP)
			for (size_t k = 0; grp->interfaces[k]; k++)
				hit |= !strcmp(grp->interfaces[k], ifn);
		else
			hit = !strcmp(ifn, r->scope_name);
		if (hit)
			*mask |= 1u << i;
	}
}

static bool side_ok(bool wild, bool negate, const struct es_cidr *c, size_t n, int fam)
{
	if (wild || negate)
		return true;
	for (size_t i = 0; i < n; i++)
		if (c[i].addr.family == (fam ? 6 : 4))
			return true;
	return false;
}

/* Prepare one rule; *never set when it can match no packet. */
static int crule_init(const struct fw_compile_in *in, const struct fw_rule *r, struct crule *c,
		      bool *never)
{
	int pin = 0, ret;

	memset(c, 0, sizeof(*c));
	c->r = r;
	c->action = in->alert_mode && r->action == ES_FW_ACT_DROP ? ES_FW_ACT_LOG : r->action;
	if ((ret = side_prefixes(in, r->has_src, &r->src, r->src_alias, &c->src_wild, &c->src,
				 &c->nsrc)) ||
	    (ret = side_prefixes(in, r->has_dst, &r->dst, r->dst_alias, &c->dst_wild, &c->dst,
				 &c->ndst)) ||
	    (ret = side_ports(in, &r->sports, r->src_port_alias, &c->sp_wild, &c->sp, &c->nsp)) ||
	    (ret = side_ports(in, &r->dports, r->dst_port_alias, &c->dp_wild, &c->dp, &c->ndp)))
		return ret;
	scope_mask(in, r, &c->if_wild, &c->ifmask);
	if (r->has_src)
		pin = r->src.addr.family;
	else if (r->has_dst)
		pin = r->dst.addr.family;
	for (int f = 0; f < 2; f++)
		c->fam[f] = (!pin || pin == (f ? 6 : 4)) &&
			    side_ok(c->src_wild, r->negate_src, c->src, c->nsrc, f) &&
			    side_ok(c->dst_wild, r->negate_dst, c->dst, c->ndst, f);
	*never = (!c->fam[0] && !c->fam[1]) || (!c->sp_wild && !c->nsp) ||
		 (!c->dp_wild && !c->ndp) || (!c->if_wild && !c->ifmask);

	/* Summary group: by the selective fields the rule uses. */
	{
		bool s = !c->src_wild && !r->negate_src, d = !c->dst_wild && !r->negate_dst;

		for (size_t i = 0; s && i < c->nsrc; i++)
			s = c->src[i].plen > 0;
		for (size_t i = 0; d && i < c->ndst; i++)
			d = c->dst[i].plen > 0;
		c->group =
		    s && d ? ES_FW_G_SRC_DST
		    : s	   ? ES_FW_G_SRC
		    : d	   ? ES_FW_G_DST
		    : !c->dp_wild && !(c->ndp == 1 && !c->dp[0].start && c->dp[0].end == 65535)
			? ES_FW_G_DPORT
		    : !c->sp_wild	       ? ES_FW_G_SPORT
		    : r->proto != FW_PROTO_ANY ? ES_FW_G_PROTO
					       : ES_FW_G_OTHER;
	}
	return 0;
}

struct sel {
	const struct fw_rule *r;
	size_t idx;
};

static int cmp_sel(const void *a, const void *b)
{
	const struct sel *x = a, *y = b;

	if (x->r->priority != y->r->priority)
		return x->r->priority < y->r->priority ? -1 : 1;
	if (x->r->order != y->r->order)
		return x->r->order < y->r->order ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* ---- dimensions ------------------------------------------------------------------ */

struct ctx {
	const struct fw_compile_in *in;
	struct fw_image *img;
	struct intern it;
	struct crule *cr;
	uint32_t n;
	char *why;
	size_t whylen;
};

/* One address side of one family: binary trie → node classes → multibit trie. */
static int addr_dim(struct ctx *x, int fam, int dst)
{
	struct fw_btrie t;
	struct {
		int32_t node;
		uint32_t p;
		bool neg;
	} *upd = NULL;
	size_t nupd = 0, cap = 0;
	uint32_t *cls = NULL;
	__u64 b[W];
	bool active = false;
	int ret;

	if ((ret = fw_btrie_init(&t, fam)))
		return ret;
	memset(b, 0, sizeof(b));
	for (uint32_t p = 0; p < x->n; p++) {
		const struct crule *c = &x->cr[p];
		bool wild = dst ? c->dst_wild : c->src_wild;
		bool neg = dst ? c->r->negate_dst : c->r->negate_src;
		const struct es_cidr *pl = dst ? c->dst : c->src;
		size_t np = dst ? c->ndst : c->nsrc;

		if (!c->fam[fam]) {
			active = true; /* this dimension excludes the rule for this family */
			continue;
		}
		if (wild || neg)
			bm_set(b, p);
		if (wild)
			continue;
		active = true;
		for (size_t i = 0; i < np; i++) {
			int node;

			if (pl[i].addr.family != (fam ? 6 : 4))
				continue;
			node = fw_btrie_insert(&t, pl[i].addr.b, pl[i].plen);
			if (node < 0) {
				ret = node;
				goto out;
			}
			if (nupd == cap) {
				void *nv;

				cap = cap ? cap * 2 : 64;
				nv = realloc(upd, cap * sizeof(*upd));
				if (!nv) {
					ret = -ENOMEM;
					goto out;
				}
				upd = nv;
			}
			upd[nupd].node = node;
			upd[nupd].p = p;
			upd[nupd++].neg = neg;
		}
	}
	if (active)
		x->img->hdr.dims[fam] |= (uint16_t)(1u << (dst ? ES_FW_D_DST : ES_FW_D_SRC));
	cls = calloc(t.len, sizeof(*cls));
	if (!cls) {
		ret = -ENOMEM;
		goto out;
	}
	{
		/* Updates grouped by node: a counting sort over node indexes. */
		size_t *start = calloc(t.len + 1, sizeof(*start));
		uint32_t *order = malloc((nupd + 1) * sizeof(*order));

		if (!start || !order) {
			free(start);
			free(order);
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < nupd; i++)
			start[upd[i].node + 1]++;
		for (size_t i = 0; i < t.len; i++)
			start[i + 1] += start[i];
		{
			size_t *fillp = calloc(t.len, sizeof(*fillp));

			if (!fillp) {
				free(start);
				free(order);
				ret = -ENOMEM;
				goto out;
			}
			for (size_t i = 0; i < nupd; i++)
				order[start[upd[i].node] + fillp[upd[i].node]++] = (uint32_t)i;
			free(fillp);
		}
		/* The root (addresses no prefix covers, or /0), then prefix nodes, parents first. */
		for (size_t nd = 0; nd < t.len && !ret; nd++) {
			int32_t up = t.n[nd].parent;

			if (nd && !t.n[nd].is_prefix)
				continue;
			while (up > 0 && !t.n[up].is_prefix)
				up = t.n[up].parent;
			if (nd)
				memcpy(b, x->img->cls[cls[up]].w, sizeof(b));
			for (size_t k = start[nd]; k < start[nd + 1]; k++) {
				if (upd[order[k]].neg)
					bm_clr(b, upd[order[k]].p);
				else
					bm_set(b, upd[order[k]].p);
			}
			ret = intern(&x->it, b, &cls[nd]);
		}
		free(start);
		free(order);
		if (ret)
			goto out;
	}
	ret = fw_btrie_emit(&t, cls,
			    fam ? (dst ? ES_FW_T_DST6 : ES_FW_T_SRC6)
				: (dst ? ES_FW_T_DST4 : ES_FW_T_SRC4),
			    x->img, x->why, x->whylen);
out:
	free(cls);
	free(upd);
	fw_btrie_free(&t);
	return ret;
}

struct ivl {
	uint32_t a, b; /* inclusive */
	uint32_t p;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static size_t find_start(const uint32_t *e, size_t n, uint32_t v)
{
	size_t lo = 0, hi = n;

	while (lo + 1 < hi) {
		size_t mid = (lo + hi) / 2;

		if (e[mid] <= v)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * A dimension over [0, domain): intervals per position (disjoint within one
 * position), plus the positions without a condition (wild). Fills
 * vt[0..domain) with classes; *none_cls (if given) gets the class of wild.
 */
static int interval_dim(struct ctx *x, uint32_t domain, const struct ivl *iv, size_t n,
			const __u64 *wild, uint16_t *vt, uint32_t *none_cls)
{
	uint32_t *e = malloc((2 * n + 1) * sizeof(*e)), cls;
	__u64(*tog)[W] = NULL, cur[W], b[W];
	size_t ne = 0, k = 0;
	int ret = -ENOMEM;

	if (!e)
		return -ENOMEM;
	e[ne++] = 0;
	for (size_t i = 0; i < n; i++) {
		e[ne++] = iv[i].a;
		if (iv[i].b + 1 < domain)
			e[ne++] = iv[i].b + 1;
	}
	qsort(e, ne, sizeof(*e), cmp_u32);
	for (size_t i = 1; i < ne; i++)
		if (e[i] != e[k])
			e[++k] = e[i];
	ne = k + 1;
	tog = calloc(ne, sizeof(*tog));
	if (!tog)
		goto out;
	for (size_t i = 0; i < n; i++) {
		size_t s = find_start(e, ne, iv[i].a);

		tog[s][iv[i].p / 64] ^= 1ull << (iv[i].p % 64);
		if (iv[i].b + 1 < domain) {
			size_t t = find_start(e, ne, iv[i].b + 1);

			tog[t][iv[i].p / 64] ^= 1ull << (iv[i].p % 64);
		}
	}
	memset(cur, 0, sizeof(cur));
	for (size_t i = 0; i < ne; i++) {
		uint32_t end = i + 1 < ne ? e[i + 1] : domain;

		for (int w = 0; w < W; w++) {
			cur[w] ^= tog[i][w];
			b[w] = cur[w] | wild[w];
		}
		if ((ret = intern(&x->it, b, &cls)))
			goto out;
		for (uint32_t v = e[i]; v < end; v++)
			vt[v] = (uint16_t)cls;
	}
	ret = 0;
	if (none_cls)
		ret = intern(&x->it, wild, none_cls);
out:
	free(tog);
	free(e);
	return ret;
}

/* Grow-able interval list. */
struct ivls {
	struct ivl *v;
	size_t n, cap;
};

static int ivls_add(struct ivls *l, uint32_t a, uint32_t b, uint32_t p)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		struct ivl *nv = realloc(l->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = (struct ivl){a, b, p};
	return 0;
}

static void mark_active(struct ctx *x, uint32_t p, int dim)
{
	for (int f = 0; f < 2; f++)
		if (x->cr[p].fam[f])
			x->img->hdr.dims[f] |= (uint16_t)(1u << dim);
}

static int port_dim(struct ctx *x, int dst)
{
	struct ivls l = {0};
	__u64 wild[W] = {0};
	uint32_t none;
	uint16_t *vt = x->img->vtab + (dst ? ES_FW_VT_DPORT : ES_FW_VT_SPORT);
	int ret = 0;

	for (uint32_t p = 0; p < x->n && !ret; p++) {
		const struct crule *c = &x->cr[p];
		bool w = dst ? c->dp_wild : c->sp_wild;
		const struct es_port_range *r = dst ? c->dp : c->sp;
		size_t nr = dst ? c->ndp : c->nsp;

		if (w) {
			bm_set(wild, p);
			continue;
		}
		mark_active(x, p, dst ? ES_FW_D_DPORT : ES_FW_D_SPORT);
		for (size_t i = 0; i < nr && !ret; i++)
			ret = ivls_add(&l, r[i].start, r[i].end, p);
	}
	if (!ret)
		ret = interval_dim(x, 65536, l.v, l.n, wild, vt, &none);
	if (!ret)
		vt[ES_FW_VT_NONE_PORT] = (uint16_t)none;
	free(l.v);
	return ret;
}

static int icmp_dim(struct ctx *x)
{
	struct ivls l = {0};
	__u64 wild[W] = {0};
	uint32_t none;
	uint16_t *vt = x->img->vtab + ES_FW_VT_ICMP;
	int ret = 0;

	for (uint32_t p = 0; p < x->n && !ret; p++) {
		const struct fw_rule *r = x->cr[p].r;

		if (r->icmp_type < 0 && r->icmp_code < 0) {
			bm_set(wild, p);
			continue;
		}
		mark_active(x, p, ES_FW_D_ICMP);
		if (r->icmp_type >= 0 && r->icmp_code >= 0)
			ret = ivls_add(&l, (uint32_t)(r->icmp_type << 8 | r->icmp_code),
				       (uint32_t)(r->icmp_type << 8 | r->icmp_code), p);
		else if (r->icmp_type >= 0)
			ret = ivls_add(&l, (uint32_t)r->icmp_type << 8,
				       (uint32_t)r->icmp_type << 8 | 0xff, p);
		else
			for (uint32_t t = 0; t < 256 && !ret; t++)
				ret = ivls_add(&l, t << 8 | (uint32_t)r->icmp_code,
					       t << 8 | (uint32_t)r->icmp_code, p);
	}
	if (!ret)
		ret = interval_dim(x, 65536, l.v, l.n, wild, vt, &none);
	if (!ret)
		vt[ES_FW_VT_NONE_ICMP] = (uint16_t)none;
	free(l.v);
	return ret;
}

/* DSCP and VLAN: one value per rule (or none). */
static int point_dim(struct ctx *x, int dim)
{
	struct ivls l = {0};
	__u64 wild[W] = {0};
	uint32_t domain = dim == ES_FW_D_VLAN ? 4096 : 64;
	uint16_t *vt = x->img->vtab + (dim == ES_FW_D_VLAN ? ES_FW_VT_VLAN : ES_FW_VT_DSCP);
	int ret = 0;

	for (uint32_t p = 0; p < x->n && !ret; p++) {
		const struct fw_rule *r = x->cr[p].r;
		int v = dim == ES_FW_D_VLAN ? (r->vlan_id ? r->vlan_id : -1) : r->dscp_match;

		if (v < 0) {
			bm_set(wild, p);
			continue;
		}
		mark_active(x, p, dim);
		ret = ivls_add(&l, (uint32_t)v, (uint32_t)v, p);
	}
	if (!ret)
		ret = interval_dim(x, domain, l.v, l.n, wild, vt, NULL);
	free(l.v);
	return ret;
}

static int proto_dim(struct ctx *x)
{
	__u64 b[4][W];
	uint32_t cls[4];
	uint16_t *vt4 = x->img->vtab + ES_FW_VT_PROTO, *vt6 = x->img->vtab + ES_FW_VT_PROTO6;
	int ret = 0;

	memset(b, 0, sizeof(b));
	for (uint32_t p = 0; p < x->n; p++) {
		enum fw_proto pr = x->cr[p].r->proto;

		if (pr == FW_PROTO_ANY) {
			for (int i = 0; i < 4; i++)
				bm_set(b[i], p);
			continue;
		}
		mark_active(x, p, ES_FW_D_PROTO);
		bm_set(b[pr], p); /* FW_PROTO_TCP = 1, UDP = 2, ICMP = 3 */
	}
	for (int i = 0; i < 4 && !ret; i++)
		ret = intern(&x->it, b[i], &cls[i]);
	for (int v = 0; v < 256 && !ret; v++) {
		uint32_t c = v == 6 ? cls[FW_PROTO_TCP] : v == 17 ? cls[FW_PROTO_UDP] : cls[0];

		vt4[v] = (uint16_t)(v == 1 ? cls[FW_PROTO_ICMP] : c);
		vt6[v] = (uint16_t)(v == 58 ? cls[FW_PROTO_ICMP] : c);
	}
	return ret;
}

/* Small dimensions evaluated value by value: TCP flags, conntrack state, interface. */
static int small_dim(struct ctx *x, int dim)
{
	uint32_t nv = dim == ES_FW_D_TCPF ? 64 : dim == ES_FW_D_CT ? 4 : ES_FW_MAX_IFACES;
	uint16_t *vt = x->img->vtab + (dim == ES_FW_D_TCPF ? ES_FW_VT_TCPF
				       : dim == ES_FW_D_CT ? ES_FW_VT_CT
							   : ES_FW_VT_IFACE);
	__u64 b[W];
	uint32_t cls;
	int ret = 0;

	for (uint32_t v = 0; v <= nv && !ret; v++) {
		memset(b, 0, sizeof(b));
		for (uint32_t p = 0; p < x->n; p++) {
			const struct crule *c = &x->cr[p];
			const struct fw_rule *r = c->r;
			bool wild, hit = false;

			if (dim == ES_FW_D_TCPF) {
				wild = !r->has_flags;
				hit = v < nv && (v & r->flags_mask) == r->flags_set;
			} else if (dim == ES_FW_D_CT) {
				wild = !r->ct_mask;
				hit = v < nv && (r->ct_mask & (1u << v));
			} else {
				wild = c->if_wild;
				hit = v < nv && (c->ifmask & (1u << v));
			}
			if (!wild && v == 0)
				mark_active(x, p, dim);
			if (wild || hit)
				bm_set(b, p);
		}
		if (!(ret = intern(&x->it, b, &cls)))
			vt[v] = (uint16_t)cls;
	}
	return ret;
}

static int mac_dim(struct ctx *x, int dst)
{
	struct fw_image *img = x->img;
	__u64 wild[W] = {0}, b[W];
	uint32_t cls;
	int ret;

	for (uint32_t p = 0; p < x->n; p++) {
		const struct fw_rule *r = x->cr[p].r;

		if (!(dst ? r->has_dmac : r->has_smac))
			bm_set(wild, p);
		else
			mark_active(x, p, dst ? ES_FW_D_DMAC : ES_FW_D_SMAC);
	}
	if ((ret = intern(&x->it, wild, &cls)))
		return ret;
	img->vtab[dst ? ES_FW_VT_DMAC_MISS : ES_FW_VT_SMAC_MISS] = (uint16_t)cls;
	for (uint32_t p = 0; p < x->n; p++) {
		const struct fw_rule *r = x->cr[p].r;
		const uint8_t *mac = dst ? r->dmac : r->smac;
		bool seen = false;
		struct fw_mac_entry *nv;

		if (!(dst ? r->has_dmac : r->has_smac))
			continue;
		for (size_t i = 0; i < img->n_macs && !seen; i++)
			seen = img->macs[i].k.dir == dst && !memcmp(img->macs[i].k.mac, mac, 6);
		if (seen)
			continue;
		memcpy(b, wild, sizeof(b));
		for (uint32_t q = p; q < x->n; q++) {
			const struct fw_rule *o = x->cr[q].r;

			if ((dst ? o->has_dmac : o->has_smac) &&
			    !memcmp(dst ? o->dmac : o->smac, mac, 6))
				bm_set(b, q);
		}
		if ((ret = intern(&x->it, b, &cls)))
			return ret;
		if (img->n_macs >= ES_FW_MACS_MAX / 2) {
			snprintf(x->why, x->whylen, "too many distinct MAC addresses in rules");
			return -E2BIG;
		}
		nv = realloc(img->macs, (img->n_macs + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		img->macs = nv;
		memset(&nv[img->n_macs], 0, sizeof(nv[0]));
		memcpy(nv[img->n_macs].k.mac, mac, 6);
		nv[img->n_macs].k.dir = (uint8_t)dst;
		nv[img->n_macs++].cls = (uint16_t)cls;
	}
	return 0;
}

/* ---- entries ---------------------------------------------------------------------- */

static uint32_t v4_word(const struct es_addr *a)
{
	uint32_t w[4];

	es_addr_words(a, w);
	return w[0];
}

static void mask_words(unsigned plen, unsigned bits, uint32_t *out)
{
	for (unsigned i = 0; i < bits / 32; i++) {
		unsigned l = plen > i * 32 ? plen - i * 32 : 0;

		out[i] = l >= 32 ? 0xffffffffu : l ? ~(0xffffffffu >> l) : 0;
	}
}

static uint8_t proto_num(enum fw_proto p, int v6)
{
	return p == FW_PROTO_TCP    ? 6
	       : p == FW_PROTO_UDP  ? 17
	       : p == FW_PROTO_ICMP ? (v6 ? 58 : 1)
				    : 0;
}

/* The common tail of both entry layouts, filled through a v4 view at the tail's offset. */
#define FILL_TAIL(e, r, c, num, v6)                                                                \
	do {                                                                                       \
		(e)->src_port_start = (c)->nsp ? (c)->sp[0].start : 0;                             \
		(e)->src_port_end = (c)->nsp ? (c)->sp[0].end : 0;                                 \
		(e)->dst_port_start = (c)->ndp ? (c)->dp[0].start : 0;                             \
		(e)->dst_port_end = (c)->ndp ? (c)->dp[0].end : 0;                                 \
		(e)->protocol = proto_num((r)->proto, v6);                                         \
		(e)->match_flags = (uint8_t)(((r)->has_src ? ES_FW_MF_SRC_IP : 0) |                \
					     ((r)->has_dst ? ES_FW_MF_DST_IP : 0) |                \
					     (!(c)->sp_wild ? ES_FW_MF_SRC_PORT : 0) |             \
					     (!(c)->dp_wild ? ES_FW_MF_DST_PORT : 0) |             \
					     ((r)->proto ? ES_FW_MF_PROTO : 0) |                   \
					     ((r)->ct_mask ? ES_FW_MF_CT_STATE : 0) |              \
					     ((r)->src_alias ? ES_FW_MF_SRC_SET : 0) |             \
					     ((r)->dst_alias ? ES_FW_MF_DST_SET : 0));             \
		(e)->vlan_id = (r)->vlan_id;                                                       \
		(e)->action = (c)->action;                                                         \
		(e)->ct_state_mask = (r)->ct_mask;                                                 \
		(e)->src_set_id = (r)->src_alias ? 1 : 0;                                          \
		(e)->dst_set_id = (r)->dst_alias ? 1 : 0;                                          \
		(e)->tcp_flags_match = (r)->flags_set;                                             \
		(e)->tcp_flags_mask = (r)->flags_mask;                                             \
		(e)->icmp_type =                                                                   \
		    (r)->icmp_type >= 0 ? (uint8_t)(r)->icmp_type : ES_FW_WILDCARD_U8;             \
		(e)->icmp_code =                                                                   \
		    (r)->icmp_code >= 0 ? (uint8_t)(r)->icmp_code : ES_FW_WILDCARD_U8;             \
		(e)->match_flags2 = (uint8_t)(((r)->has_flags ? ES_FW_MF2_TCP_FLAGS : 0) |         \
					      ((r)->icmp_type >= 0 ? ES_FW_MF2_ICMP_TYPE : 0) |    \
					      ((r)->icmp_code >= 0 ? ES_FW_MF2_ICMP_CODE : 0) |    \
					      ((r)->negate_src ? ES_FW_MF2_NEGATE_SRC : 0) |       \
					      ((r)->negate_dst ? ES_FW_MF2_NEGATE_DST : 0) |       \
					      ((r)->dscp_match >= 0 ? ES_FW_MF2_DSCP : 0) |        \
					      ((r)->has_smac ? ES_FW_MF2_SRC_MAC : 0) |            \
					      ((r)->has_dmac ? ES_FW_MF2_DST_MAC : 0));            \
		(e)->dscp_match =                                                                  \
		    (r)->dscp_match >= 0 ? (uint8_t)(r)->dscp_match : ES_FW_WILDCARD_U8;           \
		(e)->max_states = (r)->max_states;                                                 \
		memcpy((e)->src_mac, (r)->smac, 6);                                                \
		memcpy((e)->dst_mac, (r)->dmac, 6);                                                \
		(e)->dscp_mark =                                                                   \
		    (r)->dscp_mark >= 0 ? (uint8_t)(r)->dscp_mark : ES_FW_WILDCARD_U8;             \
		(e)->route_action = (uint8_t)(r)->route;                                           \
		(e)->route_ifindex = 0;                                                            \
		(e)->iface_mask = (c)->if_wild ? 0 : (c)->ifmask;                                  \
		(e)->rule_id = (num);                                                              \
	} while (0)

static void fill_entries(struct ctx *x, uint32_t p)
{
	const struct crule *c = &x->cr[p];
	const struct fw_rule *r = c->r;
	struct es_fw_rule_v4 *e4 = &x->img->r4[p];
	struct es_fw_rule_v6 *e6 = &x->img->r6[p];
	uint32_t num = x->in->rule_num ? x->in->rule_num(r->id, x->in->rule_num_arg) : p + 1;

	memset(e4, 0, sizeof(*e4));
	memset(e6, 0, sizeof(*e6));
	if (r->has_src && r->src.addr.family == 4) {
		e4->src_ip = v4_word(&r->src.addr);
		mask_words(r->src.plen, 32, &e4->src_mask);
	}
	if (r->has_dst && r->dst.addr.family == 4) {
		e4->dst_ip = v4_word(&r->dst.addr);
		mask_words(r->dst.plen, 32, &e4->dst_mask);
	}
	if (r->has_src && r->src.addr.family == 6) {
		es_addr_words(&r->src.addr, e6->src_ip);
		mask_words(r->src.plen, 128, e6->src_mask);
	}
	if (r->has_dst && r->dst.addr.family == 6) {
		es_addr_words(&r->dst.addr, e6->dst_ip);
		mask_words(r->dst.plen, 128, e6->dst_mask);
	}
	FILL_TAIL(e4, r, c, num, 0);
	FILL_TAIL(e6, r, c, num, 1);
}

static int cmp_sys(const void *a, const void *b)
{
	const struct es_fw_sys_rule *x = a, *y = b;

	return x->port != y->port ? (x->port < y->port ? -1 : 1) : 0;
}

static int fill_sys(const struct fw_compile_in *in, struct fw_image *img, char *why, size_t whylen)
{
	struct crule c;
	size_t n = 0;
	bool never;

	for (size_t i = 0; i < in->n_sys; i++) {
		const struct fw_rule *r = &in->sys[i];
		struct es_fw_sys_rule *s;

		if (!r->dports.n)
			continue;
		if (crule_init(in, r, &c, &never)) {
			crule_free(&c);
			return -ENOMEM;
		}
		crule_free(&c);
		if (never)
			continue; /* its interface is not one of ours */
		if (n >= ES_FW_SYS_MAX) {
			snprintf(why, whylen, "more than %u anti-lockout rules", ES_FW_SYS_MAX);
			return -E2BIG;
		}
		img->sys_rule[n] = r;
		s = &img->sys[n++];
		memset(s, 0, sizeof(*s));
		s->rule_id = in->rule_num ? in->rule_num(r->id, in->rule_num_arg) : 0;
		s->iface_mask = c.if_wild ? 0 : c.ifmask;
		s->port = r->dports.r[0].start;
	}
	/* Insertion sort by port, keeping sys_rule[] in step (at most ES_FW_SYS_MAX). */
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0 && cmp_sys(&img->sys[j - 1], &img->sys[j]) > 0; j--) {
			struct es_fw_sys_rule t = img->sys[j];
			const struct fw_rule *tr = img->sys_rule[j];

			img->sys[j] = img->sys[j - 1];
			img->sys_rule[j] = img->sys_rule[j - 1];
			img->sys[j - 1] = t;
			img->sys_rule[j - 1] = tr;
		}
	}
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && img->sys[j].port == img->sys[i].port)
			j++;
		if (j - i > 255 || i >= 255) {
			snprintf(why, whylen, "too many anti-lockout rules on port %u",
				 img->sys[i].port);
			return -E2BIG;
		}
		img->sys_port[img->sys[i].port] = (uint16_t)((i + 1) | (j - i) << 8);
		i = j;
	}
	img->hdr.n_sys = (uint16_t)n;
	return 0;
}

/* ---- entry point ------------------------------------------------------------------- */

void fw_image_free(struct fw_image *img)
{
	if (!img)
		return;
	free(img->cls);
	free(img->trie);
	free(img->skip);
	free(img->vtab);
	free(img->r4);
	free(img->r6);
	free(img->pos_rule);
	free(img->pos_fam[0]);
	free(img->pos_fam[1]);
	free(img->sys_port);
	free(img->macs);
	memset(img, 0, sizeof(*img));
}

static int image_alloc(struct fw_image *img)
{
	memset(img, 0, sizeof(*img));
	img->trie = calloc(ES_FW_TRIE_PER_BANK, sizeof(*img->trie));
	img->skip = calloc(ES_FW_SKIPS_PER_BANK, sizeof(*img->skip));
	img->vtab = calloc((size_t)ES_FW_VT_ROWS * 256, sizeof(*img->vtab));
	img->r4 = calloc(ES_FW_MAX_RULES, sizeof(*img->r4));
	img->r6 = calloc(ES_FW_MAX_RULES, sizeof(*img->r6));
	img->pos_rule = calloc(ES_FW_MAX_RULES, sizeof(*img->pos_rule));
	img->pos_fam[0] = calloc(ES_FW_MAX_RULES, sizeof(bool));
	img->pos_fam[1] = calloc(ES_FW_MAX_RULES, sizeof(bool));
	img->sys_port = calloc(65536, sizeof(*img->sys_port));
	if (!img->trie || !img->skip || !img->vtab || !img->r4 || !img->r6 || !img->pos_rule ||
	    !img->pos_fam[0] || !img->pos_fam[1] || !img->sys_port) {
		fw_image_free(img);
		return -ENOMEM;
	}
	return 0;
}

static bool scheduled(const struct fw_compile_in *in, const struct fw_rule *r)
{
	const struct fw_schedule *s;

	if (!r->schedule || !in->now)
		return true;
	s = fw_schedule_find(in->schedules, r->schedule);
	return s && fw_schedule_active(s, in->now);
}

int fw_compile(const struct fw_compile_in *in, struct fw_image *img, char *why, size_t whylen)
{
	struct ctx x = {.in = in, .img = img, .why = why, .whylen = whylen};
	struct sel *sel = NULL;
	__u64 b[W];
	size_t ns = 0;
	uint32_t cls;
	int ret;

	why[0] = '\0';
	if ((ret = image_alloc(img)))
		return ret;
	x.it = (struct intern){.img = img, .why = why, .whylen = whylen};
	sel = calloc(in->n_rules + 1, sizeof(*sel));
	x.cr = calloc(in->n_rules + 1, sizeof(*x.cr));
	if (!sel || !x.cr) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < in->n_rules; i++) {
		const struct fw_rule *r = &in->rules[i];

		if (!r->enabled) {
			img->n_disabled++;
			continue;
		}
		if (!scheduled(in, r)) {
			img->n_unscheduled++;
			continue;
		}
		sel[ns].r = r;
		sel[ns].idx = i;
		ns++;
	}
	qsort(sel, ns, sizeof(*sel), cmp_sel);
	for (size_t i = 0; i < ns; i++) {
		bool never;

		if (x.n >= ES_FW_MAX_RULES) {
			snprintf(why, whylen, "more than %u active rules", ES_FW_MAX_RULES);
			ret = -E2BIG;
			goto out;
		}
		if ((ret = crule_init(in, sel[i].r, &x.cr[x.n], &never))) {
			crule_free(&x.cr[x.n]);
			goto out;
		}
		if (never) {
			crule_free(&x.cr[x.n]);
			img->n_never++;
			continue;
		}
		x.n++;
	}

	for (uint32_t p = 0; p < x.n; p++) {
		bm_set(x.it.gm[x.cr[p].group], p);
		for (int f = 0; f < 2; f++)
			if (x.cr[p].fam[f])
				img->hdr.groups[f] |= (uint8_t)(1u << x.cr[p].group);
	}
	/* Reserved classes: 0 matches nothing, 1 every position. */
	memset(b, 0, sizeof(b));
	if ((ret = add_record(&x.it, b, &cls)))
		goto out;
	for (uint32_t p = 0; p < x.n; p++)
		bm_set(b, p);
	if ((ret = add_record(&x.it, b, &cls)) || (ret = intern_grow(&x.it)))
		goto out;
	/* Register both reserved records in the hash so equal bitmaps reuse them. */
	for (uint32_t id = 0; id < 2; id++) {
		size_t j = bm_hash(img->cls[id].w) & (x.it.cap - 1);

		while (x.it.slots[j] &&
		       memcmp(img->cls[x.it.slots[j] - 1].w, img->cls[id].w, sizeof(b)))
			j = (j + 1) & (x.it.cap - 1);
		if (!x.it.slots[j])
			x.it.slots[j] = id + 1;
	}

	if ((ret = addr_dim(&x, 0, 0)) || (ret = addr_dim(&x, 0, 1)) ||
	    (ret = addr_dim(&x, 1, 0)) || (ret = addr_dim(&x, 1, 1)) || (ret = proto_dim(&x)) ||
	    (ret = port_dim(&x, 0)) || (ret = port_dim(&x, 1)) || (ret = icmp_dim(&x)) ||
	    (ret = small_dim(&x, ES_FW_D_TCPF)) || (ret = point_dim(&x, ES_FW_D_DSCP)) ||
	    (ret = point_dim(&x, ES_FW_D_VLAN)) || (ret = small_dim(&x, ES_FW_D_CT)) ||
	    (ret = small_dim(&x, ES_FW_D_IFACE)) || (ret = mac_dim(&x, 0)) ||
	    (ret = mac_dim(&x, 1)))
		goto out;

	for (uint32_t p = 0; p < x.n; p++) {
		fill_entries(&x, p);
		img->pos_rule[p] = x.cr[p].r;
		img->pos_fam[0][p] = x.cr[p].fam[0];
		img->pos_fam[1][p] = x.cr[p].fam[1];
	}
	if ((ret = fill_sys(in, img, why, whylen)))
		goto out;
	for (int f = 0; f < 2; f++) {
		img->hdr.nd[f] = 1; /* the source record is always read (ALL when inactive) */
		for (int d = 0; d < ES_FW_D__COUNT; d++)
			if (img->hdr.dims[f] & (1u << d))
				img->hdr.nd[f] = (uint8_t)(d + 1);
	}
	img->hdr.n_rules = x.n;
	img->hdr.default_policy = in->default_policy;
	img->hdr.flags = ES_FW_BF_META;
	img->hdr.generation = in->generation;
out:
	for (uint32_t p = 0; x.cr && p < x.n; p++)
		crule_free(&x.cr[p]);
	free(x.cr);
	free(sel);
	free(x.it.slots);
	if (ret) {
		if (ret == -ENOMEM && !why[0])
			snprintf(why, whylen, "out of memory");
		fw_image_free(img);
	}
	return ret;
}
