// SPDX-License-Identifier: AGPL-3.0-only
/* The pinned flow tables from the agent's side: walk, list, flush, sweep. */
#define ES_LOG_TARGET "ebpfsentinel::conntrack"
#include "domains/conntrack/ct_table.h"
#include "core/log.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000ull

static const char *const state_names[ES_CT_STATE__COUNT] = {
    "new",	"established", "related",    "invalid",	  "syn_sent",
    "syn_recv", "fin_wait",    "close_wait", "time_wait",
};

const char *ct_state_name(uint8_t state)
{
	return state < ES_CT_STATE__COUNT ? state_names[state] : "invalid";
}

uint64_t ct_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

void ct_maps_open(struct ct_maps *m)
{
	m->v4 = es_kernel_open_pinned("ct_table_v4");
	m->v6 = es_kernel_open_pinned("ct_table_v6");
	m->src = es_kernel_open_pinned("ct_src_counters");
	m->overload = es_kernel_open_pinned("ct_overload");
	m->rule_count = es_kernel_open_pinned("fw_rule_state_count");
	m->reply4 = es_kernel_open_pinned("ct_reply_to_v4");
	m->reply6 = es_kernel_open_pinned("ct_reply_to_v6");
}

void ct_maps_close(struct ct_maps *m)
{
	int *fds[] = {&m->v4,	      &m->v6,	  &m->src,   &m->overload,
		      &m->rule_count, &m->reply4, &m->reply6};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

void ct_flow_decode(struct ct_flow *f, const void *key, const void *val, bool v6)
{
	uint32_t a[4] = {0}, b[4] = {0}, n[4] = {0};
	uint16_t ap, bp;
	const struct es_ct_entry_v4 *e4 = val; /* the first 40 bytes are common */

	memset(f, 0, sizeof(*f));
	if (v6) {
		const struct es_ct_key_v6 *k = key;
		const struct es_ct_entry_v6 *e = val;

		memcpy(a, k->src_ip, 16);
		memcpy(b, k->dst_ip, 16);
		ap = k->src_port;
		bp = k->dst_port;
		f->proto = k->protocol;
		memcpy(n, e->nat_addr, 16);
		f->nat_port = e->nat_port;
		f->rule_slot = e->rule_slot;
	} else {
		const struct es_ct_key_v4 *k = key;

		a[0] = k->src_ip;
		b[0] = k->dst_ip;
		ap = k->src_port;
		bp = k->dst_port;
		f->proto = k->protocol;
		n[0] = e4->nat_addr;
		f->nat_port = e4->nat_port;
		f->rule_slot = e4->rule_slot;
	}
	f->state = e4->state;
	f->flags = e4->flags;
	f->nat_type = e4->nat_type;
	f->packets_fwd = e4->packets_fwd;
	f->packets_rev = e4->packets_rev;
	f->bytes_fwd = e4->bytes_fwd;
	f->bytes_rev = e4->bytes_rev;
	f->first_seen_ns = e4->first_seen_ns;
	f->last_seen_ns = e4->last_seen_ns;
	if (f->flags & ES_CT_F_ORIG_IS_SRC) {
		es_addr_from_words(&f->src, a, v6);
		es_addr_from_words(&f->dst, b, v6);
		f->sport = ap;
		f->dport = bp;
	} else {
		es_addr_from_words(&f->src, b, v6);
		es_addr_from_words(&f->dst, a, v6);
		f->sport = bp;
		f->dport = ap;
	}
	es_addr_from_words(&f->nat_addr, n, v6);
}

struct walk_ctx {
	bool v6;
	ct_walk_fn fn;
	void *arg;
};

static int walk_one(const void *key, const void *val, void *arg)
{
	struct walk_ctx *w = arg;
	struct ct_flow f;

	ct_flow_decode(&f, key, val, w->v6);
	return w->fn(&f, key, w->v6, w->arg);
}

static int walk_map(int fd, bool v6, ct_walk_fn fn, void *arg)
{
	struct walk_ctx w = {v6, fn, arg};

	if (fd < 0)
		return 0;
	return es_map_walk(fd, v6 ? sizeof(struct es_ct_key_v6) : sizeof(struct es_ct_key_v4),
			   v6 ? sizeof(struct es_ct_entry_v6) : sizeof(struct es_ct_entry_v4),
			   walk_one, &w);
}

int ct_table_walk(const struct ct_maps *m, ct_walk_fn fn, void *arg)
{
	int r = walk_map(m->v4, false, fn, arg);

	return r ? r : walk_map(m->v6, true, fn, arg);
}

static bool is_v4_mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return !memcmp(a, pfx, sizeof(pfx));
}

bool ct_key_make(const uint8_t src[16], const uint8_t dst[16], uint16_t sport, uint16_t dport,
		 uint8_t proto, void *key)
{
	bool v6 = !is_v4_mapped(src);
	struct es_addr a, b;
	uint32_t s[4], d[4];
	int cmp;

	memcpy(a.b, src, 16);
	memcpy(b.b, dst, 16);
	a.family = b.family = v6 ? 6 : 4;
	es_addr_words(&a, s);
	es_addr_words(&b, d);
	cmp = memcmp(a.b, b.b, 16); /* byte order = word order, most significant first */
	if (!cmp)
		cmp = sport < dport ? -1 : sport > dport;
	if (v6) {
		struct es_ct_key_v6 *k = key;

		memset(k, 0, sizeof(*k));
		memcpy(k->src_ip, cmp <= 0 ? s : d, 16);
		memcpy(k->dst_ip, cmp <= 0 ? d : s, 16);
		k->src_port = cmp <= 0 ? sport : dport;
		k->dst_port = cmp <= 0 ? dport : sport;
		k->protocol = proto;
	} else {
		struct es_ct_key_v4 *k = key;

		memset(k, 0, sizeof(*k));
		k->src_ip = cmp <= 0 ? s[0] : d[0];
		k->dst_ip = cmp <= 0 ? d[0] : s[0];
		k->src_port = cmp <= 0 ? sport : dport;
		k->dst_port = cmp <= 0 ? dport : sport;
		k->protocol = proto;
	}
	return v6;
}

bool ct_tuple_live(const struct ct_maps *m, const struct es_ct_config *c, const uint8_t src[16],
		   const uint8_t dst[16], uint16_t sport, uint16_t dport, uint8_t proto)
{
	uint8_t key[sizeof(struct es_ct_key_v6)], val[sizeof(struct es_ct_entry_v6)];
	bool v6 = ct_key_make(src, dst, sport, dport, proto, key);
	const struct es_ct_entry_v4 *e = (const void *)val;
	int fd = v6 ? m->v6 : m->v4;

	if (fd < 0 || bpf_map_lookup_elem(fd, key, val))
		return false;
	return es_ct_is_live(c, proto, e->state, e->last_seen_ns, ct_now_ns());
}

json_t *ct_flow_json(const struct ct_flow *f, uint64_t now)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} fl[] = {{ES_CT_F_SEEN_REPLY, "seen_reply"}, {ES_CT_F_ASSURED, "assured"},
		  {ES_CT_F_NAT_SRC, "nat_src"},	      {ES_CT_F_NAT_DST, "nat_dst"},
		  {ES_CT_F_REPLY_TO, "reply_to"},     {ES_CT_F_DUP_TO, "dup_to"},
		  {ES_CT_F_ROUTE_TO, "route_to"}};
	char s[64], d[64];
	json_t *o, *flags = json_array();

	es_addr_format(&f->src, s, sizeof(s));
	es_addr_format(&f->dst, d, sizeof(d));
	for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
		if (f->flags & fl[i].bit)
			json_array_append_new(flags, json_string(fl[i].name));
	o = json_pack(
	    "{s:s,s:s,s:i,s:i,s:i,s:s,s:I,s:I,s:I,s:I,s:o,s:I,s:I}", "src_ip", s, "dst_ip", d,
	    "src_port", f->sport, "dst_port", f->dport, "protocol", f->proto, "state",
	    ct_state_name(f->state), "packets_fwd", (json_int_t)f->packets_fwd, "packets_rev",
	    (json_int_t)f->packets_rev, "bytes_fwd", (json_int_t)f->bytes_fwd, "bytes_rev",
	    (json_int_t)f->bytes_rev, "flags", flags, "age_secs",
	    (json_int_t)(now > f->first_seen_ns ? (now - f->first_seen_ns) / NS_PER_SEC : 0),
	    "idle_secs",
	    (json_int_t)(now > f->last_seen_ns ? (now - f->last_seen_ns) / NS_PER_SEC : 0));
	if (o && f->nat_type) {
		char n[64];

		es_addr_format(&f->nat_addr, n, sizeof(n));
		json_object_set_new(o, "nat_type",
				    json_string(f->nat_type == ES_CT_NAT_SNAT ? "snat" : "dnat"));
		json_object_set_new(o, "nat_addr", json_string(n));
		json_object_set_new(o, "nat_port", json_integer(f->nat_port));
	}
	return o;
}

/* ---- count and flush ----------------------------------------------------------- */

struct count_ctx {
	const struct es_ct_config *cfg;
	uint64_t now, n;
};

static int count_live(const struct ct_flow *f, const void *key, bool v6, void *arg)
{
	struct count_ctx *c = arg;

	if (es_ct_is_live(c->cfg, f->proto, f->state, f->last_seen_ns, c->now))
		c->n++;
	return 0;
}

int ct_table_count(const struct ct_maps *m, const struct es_ct_config *cfg, uint64_t *count)
{
	struct count_ctx c = {.cfg = cfg, .now = ct_now_ns()};
	int r = ct_table_walk(m, count_live, &c);

	*count = c.n;
	return r;
}

/* Keys collected during a walk, deleted after it (never mutate while walking). */
struct keyvec {
	uint8_t (*k)[40];
	bool *v6;
	size_t n, cap;
};

static int keyvec_push(struct keyvec *kv, const void *key, bool v6)
{
	if (kv->n == kv->cap) {
		size_t cap = kv->cap ? kv->cap * 2 : 256;
		void *k = realloc(kv->k, cap * sizeof(*kv->k));

		if (!k)
			return -ENOMEM;
		kv->k = k;
		k = realloc(kv->v6, cap * sizeof(*kv->v6));
		if (!k)
			return -ENOMEM;
		kv->v6 = k;
		kv->cap = cap;
	}
	memcpy(kv->k[kv->n], key, v6 ? sizeof(struct es_ct_key_v6) : sizeof(struct es_ct_key_v4));
	kv->v6[kv->n++] = v6;
	return 0;
}

static void keyvec_free(struct keyvec *kv)
{
	free(kv->k);
	free(kv->v6);
	memset(kv, 0, sizeof(*kv));
}

static int collect_all(const struct ct_flow *f, const void *key, bool v6, void *arg)
{
	return keyvec_push(arg, key, v6);
}

int ct_table_flush(const struct ct_maps *m, uint64_t *count)
{
	struct keyvec kv = {0};
	int r = ct_table_walk(m, collect_all, &kv);

	*count = 0;
	for (size_t i = 0; i < kv.n; i++) {
		int fd = kv.v6[i] ? m->v6 : m->v4, rfd = kv.v6[i] ? m->reply6 : m->reply4;

		if (bpf_map_delete_elem(fd, kv.k[i]) == 0)
			(*count)++;
		if (rfd >= 0)
			bpf_map_delete_elem(rfd, kv.k[i]);
	}
	keyvec_free(&kv);
	return r;
}

/* ---- sweeper ------------------------------------------------------------------- */

struct sweep_ctx {
	const struct es_ct_config *cfg;
	uint64_t now;
	struct keyvec expired;
	struct es_ct_addr16 *srcs; /* initiator of every live flow */
	size_t n_srcs, cap_srcs;
	uint32_t *slots; /* ES_FW_RULE_SLOTS counters */
	uint64_t live;
};

static int sweep_visit(const struct ct_flow *f, const void *key, bool v6, void *arg)
{
	struct sweep_ctx *s = arg;

	if (!es_ct_is_live(s->cfg, f->proto, f->state, f->last_seen_ns, s->now))
		return keyvec_push(&s->expired, key, v6);
	s->live++;
	if (f->rule_slot < ES_FW_RULE_SLOTS)
		s->slots[f->rule_slot]++;
	if (s->n_srcs == s->cap_srcs) {
		size_t cap = s->cap_srcs ? s->cap_srcs * 2 : 1024;
		void *p = realloc(s->srcs, cap * sizeof(*s->srcs));

		if (!p)
			return -ENOMEM;
		s->srcs = p;
		s->cap_srcs = cap;
	}
	memcpy(s->srcs[s->n_srcs++].b, f->src.b, 16);
	return 0;
}

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct es_ct_addr16));
}

/* Delete the expired entries, re-checking each: a packet may have refreshed it. */
static uint64_t delete_expired(const struct ct_maps *m, struct sweep_ctx *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->expired.n; i++) {
		bool v6 = s->expired.v6[i];
		int fd = v6 ? m->v6 : m->v4;
		uint8_t val[sizeof(struct es_ct_entry_v6)];
		struct ct_flow f;

		if (bpf_map_lookup_elem(fd, s->expired.k[i], val))
			continue;
		ct_flow_decode(&f, s->expired.k[i], val, v6);
		if (es_ct_is_live(s->cfg, f.proto, f.state, f.last_seen_ns, ct_now_ns()))
			continue;
		if (bpf_map_delete_elem(fd, s->expired.k[i]) == 0)
			n++;
	}
	return n;
}

/* Source counters: conn_count = live flows initiated; idle rows go away. */
static uint64_t sync_sources(const struct ct_maps *m, struct sweep_ctx *s)
{
	struct es_ct_addr16 *uniq = s->srcs, key, next, *prev = NULL;
	uint32_t *cnt;
	bool *seen; /* uniq[i] has a row */
	size_t nu = 0;
	struct keyvec gone = {0};
	uint64_t window_ns = (uint64_t)s->cfg->conn_rate_window_secs * NS_PER_SEC;

	qsort(s->srcs, s->n_srcs, sizeof(*s->srcs), addr_cmp);
	cnt = calloc(s->n_srcs + 1, sizeof(*cnt));
	seen = calloc(s->n_srcs + 1, sizeof(*seen));
	if (!cnt || !seen) {
		free(cnt);
		free(seen);
		return 0;
	}
	for (size_t i = 0; i < s->n_srcs; i++) {
		if (nu && !addr_cmp(&uniq[nu - 1], &s->srcs[i])) {
			cnt[nu - 1]++;
			continue;
		}
		uniq[nu] = s->srcs[i];
		cnt[nu++] = 1;
	}
	if (m->src < 0)
		goto out;
	/*
	 * Existing rows: refresh their count; forget idle ones. XDP updates these
	 * rows too (rate, overload flag, window): a row is rewritten only when its
	 * count changed, so what XDP writes between our read and our write is
	 * lost only then, not on every sweep.
	 */
	while (bpf_map_get_next_key(m->src, prev, &next) == 0) {
		struct es_ct_src_counter v;
		struct es_ct_addr16 *hit;
		uint32_t want;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->src, &key, &v))
			continue;
		hit = bsearch(&key, uniq, nu, sizeof(*uniq), addr_cmp);
		want = hit ? cnt[hit - uniq] : 0;
		if (hit)
			seen[hit - uniq] = true;
		if (!want && !(v.flags & ES_CT_SRC_OVERLOADED) &&
		    s->now - v.window_start_ns > window_ns) {
			keyvec_push(&gone, &key, false);
			continue;
		}
		if (v.conn_count != want) {
			v.conn_count = want;
			bpf_map_update_elem(m->src, &key, &v, BPF_EXIST);
		}
	}
	for (size_t i = 0; i < gone.n; i++)
		bpf_map_delete_elem(m->src, gone.k[i]);
	/* Sources with flows but no row (flows that survived a restart, or rows
	 * that were evicted); one XDP created meanwhile keeps its own count. */
	for (size_t i = 0; i < nu; i++) {
		struct es_ct_src_counter v = {.conn_count = cnt[i]};

		if (!seen[i])
			bpf_map_update_elem(m->src, &uniq[i], &v, BPF_NOEXIST);
	}
out:
	keyvec_free(&gone);
	free(cnt);
	free(seen);
	return nu;
}

static void sync_slots(const struct ct_maps *m, const uint32_t *slots)
{
	uint32_t *keys;
	__u32 n = ES_FW_RULE_SLOTS;

	if (m->rule_count < 0)
		return;
	keys = malloc(sizeof(*keys) * ES_FW_RULE_SLOTS);
	if (!keys)
		return;
	for (uint32_t i = 0; i < ES_FW_RULE_SLOTS; i++)
		keys[i] = i;
	if (bpf_map_update_batch(m->rule_count, keys, slots, &n, NULL)) {
		for (uint32_t i = 0; i < ES_FW_RULE_SLOTS; i++)
			bpf_map_update_elem(m->rule_count, &keys[i], &slots[i], BPF_ANY);
	}
	free(keys);
}

static uint64_t expire_overload(const struct ct_maps *m, uint64_t now, uint32_t ttl_secs)
{
	struct es_ct_addr16 key, next, *prev = NULL;
	struct keyvec gone = {0};
	uint64_t n = 0;

	if (m->overload < 0)
		return 0;
	while (bpf_map_get_next_key(m->overload, prev, &next) == 0) {
		struct es_ct_overload v;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->overload, &key, &v) == 0 && now > v.since_ns &&
		    now - v.since_ns >= (uint64_t)ttl_secs * NS_PER_SEC)
			keyvec_push(&gone, &key, false);
	}
	for (size_t i = 0; i < gone.n; i++) {
		struct es_ct_src_counter sc;

		if (bpf_map_delete_elem(m->overload, gone.k[i]) == 0)
			n++;
		if (m->src >= 0 && bpf_map_lookup_elem(m->src, gone.k[i], &sc) == 0) {
			sc.flags &= (uint8_t)~ES_CT_SRC_OVERLOADED;
			sc.conn_rate = 0;
			sc.window_start_ns = now;
			bpf_map_update_elem(m->src, gone.k[i], &sc, BPF_EXIST);
		}
	}
	keyvec_free(&gone);
	return n;
}

/* reply_to records outlive nothing: drop those whose flow is gone. */
static void prune_reply_to(int rfd, int tfd, size_t ksz)
{
	uint8_t key[40], next[40], val[sizeof(struct es_ct_entry_v6)];
	struct keyvec gone = {0};
	void *prev = NULL;

	if (rfd < 0 || tfd < 0)
		return;
	while (bpf_map_get_next_key(rfd, prev, next) == 0) {
		memcpy(key, next, ksz);
		prev = key;
		if (bpf_map_lookup_elem(tfd, key, val))
			keyvec_push(&gone, key, ksz == sizeof(struct es_ct_key_v6));
	}
	for (size_t i = 0; i < gone.n; i++)
		bpf_map_delete_elem(rfd, gone.k[i]);
	keyvec_free(&gone);
}

int ct_sweep(const struct ct_maps *m, const struct es_ct_config *cfg, uint32_t overload_ttl_secs,
	     struct ct_sweep_stats *st)
{
	struct sweep_ctx s = {.cfg = cfg, .now = ct_now_ns()};
	int r;

	memset(st, 0, sizeof(*st));
	s.slots = calloc(ES_FW_RULE_SLOTS, sizeof(*s.slots));
	if (!s.slots)
		return -ENOMEM;
	r = ct_table_walk(m, sweep_visit, &s);
	if (r)
		goto out;
	st->live = s.live;
	st->expired = delete_expired(m, &s);
	st->sources = sync_sources(m, &s);
	sync_slots(m, s.slots);
	st->overload_expired = expire_overload(m, s.now, overload_ttl_secs);
	prune_reply_to(m->reply4, m->v4, sizeof(struct es_ct_key_v4));
	prune_reply_to(m->reply6, m->v6, sizeof(struct es_ct_key_v6));
out:
	keyvec_free(&s.expired);
	free(s.srcs);
	free(s.slots);
	return r;
}
