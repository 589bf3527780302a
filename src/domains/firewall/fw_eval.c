// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Two evaluators used to check the compiler: fw_image_lookup() walks a
 * compiled image exactly as xdp_firewall does, and fw_rule_matches() states
 * what a rule means, directly from its definition. Tests compare both on
 * random rule sets and packets, and the kernel tests compare the real program
 * with them.
 */
#include "domains/firewall/fw.h"

#include <stdlib.h>
#include <string.h>

static uint32_t trie_class(const struct fw_image *img, unsigned t, const uint8_t *a, bool v6)
{
	unsigned d = v6 ? 0 : 12;
	uint16_t e = img->trie[t * ES_FW_TRIE_L0 + (a[d] << 8 | a[d + 1])];

	d += 2;
	for (int i = 0; i < ES_FW_TRIE_MAX_STEPS; i++) {
		if (!(e & ES_FW_TE_PTR))
			return e;
		if (e & ES_FW_TE_SKIP) {
			const struct es_fw_skip *s = &img->skip[e & (ES_FW_SKIPS_PER_BANK - 1)];
			__u64 w[2];

			memcpy(w, a, 16);
			if (((w[0] ^ s->val[0]) & s->mask[0]) | ((w[1] ^ s->val[1]) & s->mask[1]))
				return s->miss;
			e = s->next;
			d = s->depth;
		} else {
			e = img->trie[ES_FW_TRIE_CHUNKS_OFF +
				      (e & (ES_FW_CHUNKS_PER_BANK - 1)) * 256 + a[d & 15]];
			d++;
		}
	}
	return ES_FW_CLS_NONE;
}

static uint32_t mac_class(const struct fw_image *img, const uint8_t *mac, int dir)
{
	for (size_t i = 0; i < img->n_macs; i++)
		if (img->macs[i].k.dir == dir && !memcmp(img->macs[i].k.mac, mac, 6))
			return img->macs[i].cls;
	return img->vtab[dir ? ES_FW_VT_DMAC_MISS : ES_FW_VT_SMAC_MISS];
}

static uint32_t ctz64(__u64 x)
{
	return (uint32_t)__builtin_ctzll(x);
}

int fw_image_lookup(const struct fw_image *img, const struct fw_pkt_view *p)
{
	const struct es_fw_cls *rs[ES_FW_D__COUNT];
	uint32_t cls[ES_FW_D__COUNT], dims, groups;
	__u64 visited = 0, limit = ~0ull;
	int best = -1, v6 = p->v6;

	if (!img->hdr.n_rules)
		return -1;
	dims = img->hdr.dims[v6];
	groups = img->hdr.groups[v6];
	for (int d = 0; d < ES_FW_D__COUNT; d++)
		cls[d] = ES_FW_CLS_ALL;
	if (dims & (1u << ES_FW_D_SRC))
		cls[ES_FW_D_SRC] = trie_class(img, v6 ? ES_FW_T_SRC6 : ES_FW_T_SRC4, p->src, v6);
	if (dims & (1u << ES_FW_D_DST))
		cls[ES_FW_D_DST] = trie_class(img, v6 ? ES_FW_T_DST6 : ES_FW_T_DST4, p->dst, v6);
	if (dims & (1u << ES_FW_D_PROTO))
		cls[ES_FW_D_PROTO] = img->vtab[(v6 ? ES_FW_VT_PROTO6 : ES_FW_VT_PROTO) + p->proto];
	if (dims & (1u << ES_FW_D_SPORT))
		cls[ES_FW_D_SPORT] =
		    img->vtab[ES_FW_VT_SPORT + (p->ports ? p->sport : ES_FW_VT_NONE_PORT)];
	if (dims & (1u << ES_FW_D_DPORT))
		cls[ES_FW_D_DPORT] =
		    img->vtab[ES_FW_VT_DPORT + (p->ports ? p->dport : ES_FW_VT_NONE_PORT)];
	if (dims & (1u << ES_FW_D_ICMP))
		cls[ES_FW_D_ICMP] =
		    img->vtab[ES_FW_VT_ICMP + (p->icmp
						   ? ((uint32_t)p->icmp_type << 8 | p->icmp_code)
						   : ES_FW_VT_NONE_ICMP)];
	if (dims & (1u << ES_FW_D_TCPF))
		cls[ES_FW_D_TCPF] = img->vtab[ES_FW_VT_TCPF + (p->tcp ? (p->tcp_flags & 0x3f)
								      : ES_FW_VT_NONE_TCPF)];
	if (dims & (1u << ES_FW_D_DSCP))
		cls[ES_FW_D_DSCP] = img->vtab[ES_FW_VT_DSCP + (p->dscp & 0x3f)];
	if (dims & (1u << ES_FW_D_VLAN))
		cls[ES_FW_D_VLAN] = img->vtab[ES_FW_VT_VLAN + (p->vlan & 0xfff)];
	if (dims & (1u << ES_FW_D_CT))
		cls[ES_FW_D_CT] = img->vtab[ES_FW_VT_CT + p->ct_state];
	if (dims & (1u << ES_FW_D_IFACE))
		cls[ES_FW_D_IFACE] = img->vtab[ES_FW_VT_IFACE + p->ifpos];
	if (dims & (1u << ES_FW_D_SMAC))
		cls[ES_FW_D_SMAC] = mac_class(img, p->smac, 0);
	if (dims & (1u << ES_FW_D_DMAC))
		cls[ES_FW_D_DMAC] = mac_class(img, p->dmac, 1);
	for (int d = 0; d < ES_FW_D__COUNT; d++) {
		if (cls[d] >= img->n_cls)
			return -2; /* a table points past the records: a compiler bug */
		rs[d] = &img->cls[cls[d]];
	}

	for (int g = 0; g < ES_FW_G__COUNT; g++) {
		__u64 s = limit & ~visited;

		if (!(groups & (1u << g)))
			continue;
		for (int d = 0; d < ES_FW_D__COUNT; d++)
			s &= rs[d]->summ[g];
		while (s) {
			__u64 low = s & -s, bits = ~0ull;
			uint32_t w = ctz64(low);

			visited |= low;
			for (int d = 0; d < ES_FW_D__COUNT; d++)
				bits &= rs[d]->w[w];
			if (bits) {
				best = (int)(w * 64 + ctz64(bits));
				limit = low - 1;
				break;
			}
			s &= s - 1;
		}
	}
	return best;
}

/* ---- the reference ------------------------------------------------------------------ */

static bool in_list(const struct es_cidr *c, size_t n, const uint8_t *addr, bool v6)
{
	struct es_addr a = {.family = v6 ? 6 : 4};

	memcpy(a.b, addr, 16);
	for (size_t i = 0; i < n; i++)
		if (es_cidr_contains(&c[i], &a))
			return true;
	return false;
}

static bool side_matches(const struct fw_compile_in *in, bool has, const struct es_cidr *cidr,
			 const char *alias, bool negate, const uint8_t *addr, bool v6)
{
	bool inside = true;

	if (!has && !alias)
		return true;
	if (has)
		inside = in_list(cidr, 1, addr, v6);
	if (alias) {
		struct es_cidr *c = NULL;
		struct es_port_range *p = NULL;
		size_t nc = 0, np = 0;

		if (fw_alias_resolve(in->aliases, alias, &c, &nc, &p, &np))
			return false;
		inside = inside && in_list(c, nc, addr, v6);
		free(c);
		free(p);
	}
	return negate ? !inside : inside;
}

static bool port_matches(const struct fw_compile_in *in, const struct fw_ports *explicit,
			 const char *alias, bool has_ports, uint16_t port)
{
	bool ok = true;

	if (!explicit->n && !alias)
		return true;
	if (!has_ports)
		return false;
	if (explicit->n)
		ok = port >= explicit->r[0].start && port <= explicit->r[0].end;
	if (ok && alias) {
		struct es_cidr *c = NULL;
		struct es_port_range *p = NULL;
		size_t nc = 0, np = 0;
		bool hit = false;

		if (fw_alias_resolve(in->aliases, alias, &c, &nc, &p, &np))
			return false;
		for (size_t i = 0; i < np; i++)
			hit |= port >= p[i].start && port <= p[i].end;
		free(c);
		free(p);
		ok = hit;
	}
	return ok;
}

static bool scope_matches(const struct fw_compile_in *in, const struct fw_rule *r, uint32_t pos)
{
	const struct fw_alias *grp;
	const char *ifn;

	if (r->scope == FW_SCOPE_GLOBAL)
		return true;
	if (pos >= in->n_ifnames || pos >= ES_FW_MAX_IFACES)
		return false;
	ifn = in->ifnames[pos];
	if (r->scope == FW_SCOPE_NS)
		return !strncmp(ifn, r->scope_name, strlen(r->scope_name));
	grp = fw_alias_find(in->aliases, r->scope_name);
	if (grp && grp->type == FW_AT_INTERFACE_GROUP) {
		for (size_t k = 0; grp->interfaces[k]; k++)
			if (!strcmp(grp->interfaces[k], ifn))
				return true;
		return false;
	}
	return !strcmp(ifn, r->scope_name);
}

bool fw_rule_matches(const struct fw_compile_in *in, const struct fw_rule *r,
		     const struct fw_pkt_view *p)
{
	int fam = p->v6 ? 6 : 4;

	if ((r->has_src && r->src.addr.family != fam) || (r->has_dst && r->dst.addr.family != fam))
		return false;
	if (!side_matches(in, r->has_src, &r->src, r->src_alias, r->negate_src, p->src, p->v6) ||
	    !side_matches(in, r->has_dst, &r->dst, r->dst_alias, r->negate_dst, p->dst, p->v6))
		return false;
	switch (r->proto) {
	case FW_PROTO_TCP:
		if (p->proto != 6)
			return false;
		break;
	case FW_PROTO_UDP:
		if (p->proto != 17)
			return false;
		break;
	case FW_PROTO_ICMP:
		if (p->proto != (p->v6 ? 58 : 1))
			return false;
		break;
	default: break;
	}
	if (!port_matches(in, &r->sports, r->src_port_alias, p->ports, p->sport) ||
	    !port_matches(in, &r->dports, r->dst_port_alias, p->ports, p->dport))
		return false;
	if ((r->icmp_type >= 0 || r->icmp_code >= 0) &&
	    (!p->icmp || (r->icmp_type >= 0 && p->icmp_type != r->icmp_type) ||
	     (r->icmp_code >= 0 && p->icmp_code != r->icmp_code)))
		return false;
	if (r->has_flags && (!p->tcp || (p->tcp_flags & r->flags_mask) != r->flags_set))
		return false;
	if (r->dscp_match >= 0 && p->dscp != r->dscp_match)
		return false;
	if (r->vlan_id && p->vlan != r->vlan_id)
		return false;
	if (r->ct_mask && (p->ct_state >= 4 || !(r->ct_mask & (1u << p->ct_state))))
		return false;
	if (!scope_matches(in, r, p->ifpos))
		return false;
	if (r->has_smac && memcmp(r->smac, p->smac, 6))
		return false;
	if (r->has_dmac && memcmp(r->dmac, p->dmac, 6))
		return false;
	return true;
}
