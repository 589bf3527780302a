// SPDX-License-Identifier: AGPL-3.0-only
/* NAT_SESSIONS from the agent's side: expiry by pairs, listing, flush. */
#include "domains/conntrack/ct_table.h"
#include "domains/nat/nat.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* Grace for a TCP pair whose conntrack entries are gone (RST, flush). */
#define TCP_GONE_GRACE_NS (10ull * 1000000000ull)

/* The other half of a pair: the key its packets arrive with. */
static void partner_key(const struct es_nat_key *k, const struct es_nat_session *s,
			struct es_nat_key *pk)
{
	memset(pk, 0, sizeof(*pk));
	memcpy(pk->src, s->new_dst, 16);
	memcpy(pk->dst, s->new_src, 16);
	pk->sport = s->new_dport;
	pk->dport = s->new_sport;
	pk->proto = k->proto;
}

struct keys {
	struct es_nat_key *k;
	size_t n, cap;
};

static int keys_push(struct keys *v, const struct es_nat_key *k)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		void *p = realloc(v->k, cap * sizeof(*v->k));

		if (!p)
			return -1;
		v->k = p;
		v->cap = cap;
	}
	v->k[v->n++] = *k;
	return 0;
}

struct expire_ctx {
	int fd;
	const struct es_ct_config *ct;
	bool ct_active;
	struct ct_maps m;
	uint64_t now;
	struct keys gone;
};

static uint64_t idle_timeout(const struct expire_ctx *x, uint8_t proto)
{
	if (proto == IPPROTO_TCP)
		return x->ct_active ? TCP_GONE_GRACE_NS : x->ct->tcp_est_ns;
	if (proto == IPPROTO_UDP)
		return x->ct->udp_stream_ns;
	return x->ct->icmp_ns;
}

static int expire_one(const void *key, const void *val, void *arg)
{
	const struct es_nat_key *k = key;
	const struct es_nat_session *s = val;
	struct expire_ctx *x = arg;
	struct es_nat_session ps;
	struct es_nat_key pk;
	uint64_t last = s->last_seen_ns;
	bool have_partner;

	partner_key(k, s, &pk);
	have_partner = bpf_map_lookup_elem(x->fd, &pk, &ps) == 0;
	/* A pair is judged once, from its original half (orphans on their own). */
	if (s->dir == ES_NAT_DIR_REPLY && have_partner)
		return 0;
	if (have_partner && ps.last_seen_ns > last)
		last = ps.last_seen_ns;
	if (x->ct_active &&
	    (ct_tuple_live(&x->m, x->ct, k->src, k->dst, k->sport, k->dport, k->proto) ||
	     (have_partner &&
	      ct_tuple_live(&x->m, x->ct, pk.src, pk.dst, pk.sport, pk.dport, pk.proto))))
		return 0;
	if (x->now <= last || x->now - last <= idle_timeout(x, k->proto))
		return 0;
	if (keys_push(&x->gone, k) || (have_partner && keys_push(&x->gone, &pk)))
		return -1;
	return 0;
}

size_t nat_sessions_expire(int fd, const struct es_ct_config *ct, bool ct_active)
{
	struct expire_ctx x = {.fd = fd, .ct = ct, .ct_active = ct_active, .now = ct_now_ns()};
	size_t n = 0;

	if (ct_active)
		ct_maps_open(&x.m);
	es_map_walk(fd, sizeof(struct es_nat_key), sizeof(struct es_nat_session), expire_one, &x);
	for (size_t i = 0; i < x.gone.n; i++)
		n += bpf_map_delete_elem(fd, &x.gone.k[i]) == 0;
	if (ct_active)
		ct_maps_close(&x.m);
	free(x.gone.k);
	return n;
}

struct list_ctx {
	json_t *arr;
	uint64_t limit, now;
};

static const char *type_name(uint8_t t)
{
	switch (t) {
	case ES_NAT_T_SNAT: return "snat";
	case ES_NAT_T_MASQUERADE: return "masquerade";
	case ES_NAT_T_REDIRECT: return "redirect";
	case ES_NAT_T_ONE_TO_ONE: return "onetoone";
	default: return "dnat";
	}
}

static json_t *addr_str(const uint8_t b[16])
{
	static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct es_addr a;
	char s[64];

	memcpy(a.b, b, 16);
	a.family = memcmp(b, pfx, 12) ? 6 : 4;
	es_addr_format(&a, s, sizeof(s));
	return json_string(s);
}

static int list_one(const void *key, const void *val, void *arg)
{
	const struct es_nat_key *k = key;
	const struct es_nat_session *s = val;
	struct list_ctx *l = arg;

	if (json_array_size(l->arr) >= l->limit)
		return 1;
	json_array_append_new(
	    l->arr, json_pack("{s:o,s:o,s:i,s:i,s:i,s:o,s:o,s:i,s:i,s:s,s:s,s:I}", "src_ip",
			      addr_str(k->src), "dst_ip", addr_str(k->dst), "src_port", k->sport,
			      "dst_port", k->dport, "protocol", k->proto, "new_src_ip",
			      addr_str(s->new_src), "new_dst_ip", addr_str(s->new_dst),
			      "new_src_port", s->new_sport, "new_dst_port", s->new_dport,
			      "nat_type", type_name(s->nat_type), "direction",
			      s->dir == ES_NAT_DIR_REPLY ? "reply" : "original", "idle_secs",
			      (json_int_t)(l->now > s->last_seen_ns
					       ? (l->now - s->last_seen_ns) / 1000000000ull
					       : 0)));
	return json_array_size(l->arr) >= l->limit;
}

json_t *nat_sessions_list(int fd, uint64_t limit)
{
	struct list_ctx l = {.arr = json_array(), .limit = limit, .now = ct_now_ns()};

	if (fd >= 0 && limit)
		es_map_walk(fd, sizeof(struct es_nat_key), sizeof(struct es_nat_session), list_one,
			    &l);
	return l.arr;
}

static int collect(const void *key, const void *val, void *arg)
{
	return keys_push(arg, key);
}

size_t nat_sessions_flush(int fd)
{
	struct keys v = {0};
	size_t n = 0;

	es_map_walk(fd, sizeof(struct es_nat_key), sizeof(struct es_nat_session), collect, &v);
	for (size_t i = 0; i < v.n; i++)
		n += bpf_map_delete_elem(fd, &v.k[i]) == 0;
	free(v.k);
	return n;
}
