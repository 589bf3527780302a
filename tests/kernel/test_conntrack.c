// SPDX-License-Identifier: AGPL-3.0-only
/*
 * tc_conntrack / tc_conntrack_egress through BPF_PROG_TEST_RUN: every
 * transition of network.md §3.2 for IPv4 and IPv6, per-direction counters,
 * removal on RST, expiry on lookup, RELATED hits, the disabled switch and the
 * forwarded-packet rule (tracked once, at ingress, unless NAT changed it).
 */
#include "kt_ct.h"
#include "abi/conntrack.h"
#include "skel/conntrack.skel.h"

static struct es_conntrack *sk;

#define NS KT_NS

static void set_config(int enabled)
{
	kt_ct_config(bpf_map__fd(sk->maps.ct_config), enabled);
}

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	kt_setup();
	sk = es_conntrack__open_opts(&oo);
	cr_assert_not_null(sk);
	cr_assert_eq(es_kernel_prepare_obj(sk->obj), 0);
	cr_assert_eq(es_conntrack__load(sk), 0, "conntrack programs do not load on this kernel");
	set_config(1);
}

static void teardown(void)
{
	es_conntrack__destroy(sk);
	kt_teardown();
}

TestSuite(conntrack, .init = setup, .fini = teardown);

/* ---- packets --------------------------------------------------------------------- */

#define C4 "198.51.100.1" /* lower address: the key's src endpoint */
#define S4 "198.51.100.2"
#define C6 "2001:db8::1"
#define S6 "2001:db8::2"
#define CP 40000
#define SP 80

struct fam {
	int v6;
	const char *c, *s;
};
static const struct fam fams[] = {{0, C4, S4}, {1, C6, S6}};

static void l3(struct pb *p, const struct fam *f, int from_c, uint8_t proto)
{
	pb_init(p);
	pb_eth(p, f->v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (f->v6)
		pb_ipv6(p, from_c ? f->c : f->s, from_c ? f->s : f->c, proto);
	else
		pb_ipv4(p, from_c ? f->c : f->s, from_c ? f->s : f->c, proto, 0, 0);
}

static void tcp(struct pb *p, const struct fam *f, int from_c, uint8_t flags)
{
	l3(p, f, from_c, IPPROTO_TCP);
	pb_tcp(p, from_c ? CP : SP, from_c ? SP : CP, flags);
	pb_finish(p);
}

static void udp(struct pb *p, const struct fam *f, int from_c, size_t payload)
{
	l3(p, f, from_c, IPPROTO_UDP);
	pb_udp(p, from_c ? CP : SP, from_c ? SP : CP);
	pb_payload(p, payload, 0x5a);
	pb_finish(p);
}

static void echo(struct pb *p, const struct fam *f, int from_c, int request)
{
	l3(p, f, from_c, f->v6 ? 58 : IPPROTO_ICMP);
	pb_icmp(p, f->v6 ? (request ? 128 : 129) : (request ? 8 : 0), 0);
	pb_finish(p);
}

/* ---- the table ---------------------------------------------------------------------- */

union entry {
	struct es_ct_entry_v4 v4;
	struct es_ct_entry_v6 v6;
};

static void words(const char *s, int v6, __u32 w[4])
{
	unsigned char b[16] = {0};

	memset(w, 0, 16);
	inet_pton(v6 ? AF_INET6 : AF_INET, s, b);
	for (int i = 0; i < (v6 ? 4 : 1); i++)
		w[i] = (__u32)b[4 * i] << 24 | (__u32)b[4 * i + 1] << 16 |
		       (__u32)b[4 * i + 2] << 8 | b[4 * i + 3];
}

/* The key of the C:CP ↔ S:SP flow (C is the lower endpoint). */
static int key_of(const struct fam *f, uint8_t proto, __u16 cport, __u16 sport, void *key)
{
	__u32 a[4], b[4];

	words(f->c, f->v6, a);
	words(f->s, f->v6, b);
	if (f->v6) {
		struct es_ct_key_v6 *k = key;

		memset(k, 0, sizeof(*k));
		memcpy(k->src_ip, a, 16);
		memcpy(k->dst_ip, b, 16);
		k->src_port = cport;
		k->dst_port = sport;
		k->protocol = proto;
		return bpf_map__fd(sk->maps.ct_table_v6);
	}
	struct es_ct_key_v4 *k = key;

	memset(k, 0, sizeof(*k));
	k->src_ip = a[0];
	k->dst_ip = b[0];
	k->src_port = cport;
	k->dst_port = sport;
	k->protocol = proto;
	return bpf_map__fd(sk->maps.ct_table_v4);
}

/* Look the flow up; returns 0 when present. The head is the same for both families. */
static int get(const struct fam *f, uint8_t proto, __u16 cp, __u16 sp, union entry *e)
{
	__u8 key[40];
	int fd = key_of(f, proto, cp, sp, key);

	return bpf_map_lookup_elem(fd, key, e);
}

static void put(const struct fam *f, uint8_t proto, __u16 cp, __u16 sp, const union entry *e)
{
	__u8 key[40];
	int fd = key_of(f, proto, cp, sp, key);

	cr_assert_eq(bpf_map_update_elem(fd, key, e, BPF_ANY), 0);
}

static uint64_t metric(int idx)
{
	return kt_percpu(bpf_map__fd(sk->maps.ct_metrics), (__u32)idx);
}

static void in(const struct pb *p)
{
	struct kt_run r;

	kt_tc(bpf_program__fd(sk->progs.tc_conntrack), p, NULL, &r);
	cr_assert_eq((int)r.retval, -1, "TC_ACT_UNSPEC expected, got %d", (int)r.retval);
	cr_assert_eq(r.out_len, p->len);
	cr_assert_arr_eq(r.out, p->buf, p->len, "conntrack never rewrites packets");
}

static void out(const struct pb *p, struct __sk_buff *ctx)
{
	struct kt_run r;

	kt_tc(bpf_program__fd(sk->progs.tc_conntrack_egress), p, ctx, &r);
	cr_assert_eq((int)r.retval, -1, "TC_ACT_UNSPEC expected, got %d", (int)r.retval);
}

/* ---- transitions ---------------------------------------------------------------------- */

/*
 * One step of a scenario: the packet (from the client or the server, TCP flags
 * or a UDP/ICMP kind), and the expected entry afterwards (-1: no entry).
 */
struct step {
	int from_c;
	uint8_t flags;
	int state;
	uint8_t flags_set; /* entry flags that must be set */
};

struct scenario {
	const char *what;
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP, or 1 for ICMP echo */
	struct step steps[6];
	int n;
};

#define NONE (-1)
#define SA (TH_SYN | TH_ACK)
#define FA (TH_FIN | TH_ACK)
#define RA (TH_RST | TH_ACK)
#define OS ES_CT_F_ORIG_IS_SRC

static const struct scenario scenarios[] = {
    {"handshake, client initiates",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS},
      {1, TH_SYN, ES_CT_SYN_SENT, OS}, /* retransmitted SYN */
      {0, SA, ES_CT_SYN_RECV, OS | ES_CT_F_SEEN_REPLY},
      {1, TH_ACK, ES_CT_ESTABLISHED, OS | ES_CT_F_SEEN_REPLY | ES_CT_F_ASSURED}},
     4},
    {"handshake initiated by the higher address",
     IPPROTO_TCP,
     {{0, TH_SYN, ES_CT_SYN_SENT, 0},
      {1, SA, ES_CT_SYN_RECV, ES_CT_F_SEEN_REPLY},
      {0, TH_ACK, ES_CT_ESTABLISHED, ES_CT_F_ASSURED}},
     3},
    {"unsolicited ACK creates nothing", IPPROTO_TCP, {{1, TH_ACK, NONE, 0}}, 1},
    {"SYN+ACK without a SYN creates nothing", IPPROTO_TCP, {{0, SA, NONE, 0}}, 1},
    {"ACK while SYN_SENT does not establish",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS}, {1, TH_ACK, ES_CT_SYN_SENT, OS}},
     2},
    {"client closes first",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS},
      {0, SA, ES_CT_SYN_RECV, OS},
      {1, TH_ACK, ES_CT_ESTABLISHED, OS},
      {1, FA, ES_CT_FIN_WAIT, OS},
      {0, FA, ES_CT_TIME_WAIT, OS},
      {1, TH_ACK, ES_CT_TIME_WAIT, OS}},
     6},
    {"server closes first",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS},
      {0, SA, ES_CT_SYN_RECV, OS},
      {1, TH_ACK, ES_CT_ESTABLISHED, OS},
      {0, FA, ES_CT_CLOSE_WAIT, OS},
      {1, FA, ES_CT_TIME_WAIT, OS}},
     5},
    {"the same side's second FIN does not finish the close",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS},
      {0, SA, ES_CT_SYN_RECV, OS},
      {1, TH_ACK, ES_CT_ESTABLISHED, OS},
      {1, FA, ES_CT_FIN_WAIT, OS},
      {1, FA, ES_CT_FIN_WAIT, OS}},
     5},
    {"RST removes an established flow",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS},
      {0, SA, ES_CT_SYN_RECV, OS},
      {1, TH_ACK, ES_CT_ESTABLISHED, OS},
      {0, RA, NONE, 0}},
     4},
    {"RST answering a SYN removes it",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS}, {0, RA, NONE, 0}},
     2},
    {"a new SYN reuses a TIME_WAIT tuple",
     IPPROTO_TCP,
     {{1, TH_SYN, ES_CT_SYN_SENT, OS},
      {0, SA, ES_CT_SYN_RECV, OS},
      {1, TH_ACK, ES_CT_ESTABLISHED, OS},
      {1, FA, ES_CT_FIN_WAIT, OS},
      {0, FA, ES_CT_TIME_WAIT, OS},
      {0, TH_SYN, ES_CT_SYN_SENT, 0}},
     6},
    {"UDP: new, then established by a reply",
     IPPROTO_UDP,
     {{1, 0, ES_CT_NEW, OS},
      {1, 0, ES_CT_NEW, OS},
      {0, 0, ES_CT_ESTABLISHED, OS | ES_CT_F_SEEN_REPLY | ES_CT_F_ASSURED},
      {1, 0, ES_CT_ESTABLISHED, OS}},
     4},
    {"ICMP echo: request new, reply established",
     1,
     {{1, 1, ES_CT_NEW, OS}, {0, 0, ES_CT_ESTABLISHED, OS | ES_CT_F_SEEN_REPLY}},
     2},
    {"an echo reply nobody asked for creates nothing", 1, {{0, 0, NONE, 0}}, 1},
};

static void run_scenarios(const struct fam *f)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *sc = &scenarios[i];
		uint8_t proto = sc->proto == 1 ? (f->v6 ? 58 : IPPROTO_ICMP) : sc->proto;
		__u16 cp = sc->proto == 1 ? 1 : CP, spt = sc->proto == 1 ? 1 : SP;

		for (int s = 0; s < sc->n; s++) {
			const struct step *st = &sc->steps[s];
			union entry e;
			struct pb p;
			int r;

			if (sc->proto == IPPROTO_TCP)
				tcp(&p, f, st->from_c, st->flags);
			else if (sc->proto == IPPROTO_UDP)
				udp(&p, f, st->from_c, 10);
			else
				echo(&p, f, st->from_c, st->flags);
			in(&p);
			r = get(f, proto, cp, spt, &e);
			if (st->state == NONE) {
				cr_expect_neq(r, 0, "v%d %s, step %d: entry should be gone",
					      f->v6 ? 6 : 4, sc->what, s + 1);
				continue;
			}
			cr_expect_eq(r, 0, "v%d %s, step %d: no entry", f->v6 ? 6 : 4, sc->what,
				     s + 1);
			if (r)
				continue;
			cr_expect_eq(e.v4.state, st->state, "v%d %s, step %d: state %u, want %d",
				     f->v6 ? 6 : 4, sc->what, s + 1, e.v4.state, st->state);
			cr_expect_eq(e.v4.flags & st->flags_set, st->flags_set,
				     "v%d %s, step %d: flags 0x%x lack 0x%x", f->v6 ? 6 : 4,
				     sc->what, s + 1, e.v4.flags, st->flags_set);
			if (s == 0 && !(st->flags_set & OS))
				cr_expect_not(e.v4.flags & OS,
					      "v%d %s: initiator is the higher address",
					      f->v6 ? 6 : 4, sc->what);
		}
		/* Clean slate for the next scenario. */
		union entry e;
		__u8 key[40];
		int fd = key_of(f, proto, cp, spt, key);

		if (bpf_map_lookup_elem(fd, key, &e) == 0)
			bpf_map_delete_elem(fd, key);
	}
}

Test(conntrack, transitions_ipv4)
{
	run_scenarios(&fams[0]);
}

Test(conntrack, transitions_ipv6)
{
	run_scenarios(&fams[1]);
}

Test(conntrack, counters_per_direction_and_metrics)
{
	for (int i = 0; i < 2; i++) {
		const struct fam *f = &fams[i];
		uint64_t new0 = metric(ES_CT_M_NEW), est0 = metric(ES_CT_M_ESTABLISHED),
			 closed0 = metric(ES_CT_M_CLOSED), inv0 = metric(ES_CT_M_INVALID);
		struct pb syn, synack, ack, data, rst, stray;
		union entry e;
		__u64 t0 = kt_boot_ns();

		tcp(&syn, f, 1, TH_SYN);
		tcp(&synack, f, 0, SA);
		tcp(&ack, f, 1, TH_ACK);
		l3(&data, f, 0, IPPROTO_TCP);
		pb_tcp(&data, SP, CP, TH_ACK | TH_PSH);
		pb_payload(&data, 100, 0x42);
		pb_finish(&data);
		tcp(&rst, f, 1, RA);
		tcp(&stray, f, 1, TH_ACK);

		in(&syn);
		in(&synack);
		in(&ack);
		in(&data);
		cr_assert_eq(get(f, IPPROTO_TCP, CP, SP, &e), 0);
		cr_expect_eq(e.v4.packets_fwd, 2, "SYN and ACK from the initiator");
		cr_expect_eq(e.v4.packets_rev, 2, "SYN+ACK and data from the responder");
		cr_expect_eq(e.v4.bytes_fwd, syn.len + ack.len);
		cr_expect_eq(e.v4.bytes_rev, synack.len + data.len);
		cr_expect_geq(e.v4.first_seen_ns, t0);
		cr_expect_geq(e.v4.last_seen_ns, e.v4.first_seen_ns);
		cr_expect_leq(e.v4.last_seen_ns, kt_boot_ns());
		cr_expect_eq(f->v6 ? e.v6.rule_slot : e.v4.rule_slot, ES_CT_RULE_SLOT_NONE,
			     "no firewall metadata: no rule slot");
		cr_expect_eq(metric(ES_CT_M_NEW), new0 + 1);
		cr_expect_eq(metric(ES_CT_M_ESTABLISHED), est0 + 1);

		in(&rst);
		cr_expect_neq(get(f, IPPROTO_TCP, CP, SP, &e), 0, "RST removes the entry");
		cr_expect_eq(metric(ES_CT_M_CLOSED), closed0 + 1);
		in(&stray);
		cr_expect_eq(metric(ES_CT_M_INVALID), inv0 + 1, "ACK after the RST is invalid");
	}
	cr_expect_geq(metric(ES_CT_M_LOOKUPS), metric(ES_CT_M_HITS));
	cr_expect_eq(metric(ES_CT_M_TOTAL_SEEN), 12, "six packets per family");
}

Test(conntrack, gso_packets_count_their_segments)
{
	struct __sk_buff ctx = {.gso_segs = 3, .gso_size = 100};
	struct pb p;
	union entry e;

	udp(&p, &fams[0], 1, 300);
	out(&p, &ctx);
	cr_assert_eq(get(&fams[0], IPPROTO_UDP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.packets_fwd, 3);
}

Test(conntrack, idle_entries_expire_on_lookup)
{
	const struct fam *f = &fams[0];
	union entry e = {.v4 = {.state = ES_CT_ESTABLISHED,
				.flags = OS | ES_CT_F_SEEN_REPLY | ES_CT_F_ASSURED,
				.packets_fwd = 7,
				.rule_slot = ES_CT_RULE_SLOT_NONE}};
	struct pb p;

	/* 13 s idle > udp_stream 12 s: the packet from the server starts a new flow. */
	e.v4.first_seen_ns = e.v4.last_seen_ns = kt_boot_ns() - 13 * NS;
	put(f, IPPROTO_UDP, CP, SP, &e);
	udp(&p, f, 0, 10);
	in(&p);
	cr_assert_eq(get(f, IPPROTO_UDP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.state, ES_CT_NEW);
	cr_expect_eq(e.v4.packets_fwd, 1);
	cr_expect_not(e.v4.flags & OS, "the server initiated the new flow");

	/* 11 s idle: more than the 3 s of an unanswered flow. */
	e.v4.first_seen_ns = e.v4.last_seen_ns = kt_boot_ns() - 11 * NS;
	e.v4.state = ES_CT_NEW;
	e.v4.flags = OS;
	put(f, IPPROTO_UDP, CP, SP, &e);
	in(&p);
	cr_assert_eq(get(f, IPPROTO_UDP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.state, ES_CT_NEW, "3 s timeout of an unanswered flow: it expired");

	e.v4.first_seen_ns = e.v4.last_seen_ns = kt_boot_ns() - 2 * NS;
	e.v4.flags = OS;
	e.v4.packets_rev = 0;
	put(f, IPPROTO_UDP, CP, SP, &e);
	in(&p);
	cr_assert_eq(get(f, IPPROTO_UDP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.state, ES_CT_ESTABLISHED);
	cr_expect_eq(e.v4.packets_rev, 1);
}

Test(conntrack, icmp_errors_hit_the_flow_they_quote)
{
	const struct fam *f = &fams[0];
	uint64_t hits0, look0;
	union entry e;
	struct pb p;

	udp(&p, f, 1, 10);
	in(&p);
	hits0 = metric(ES_CT_M_HITS);
	look0 = metric(ES_CT_M_LOOKUPS);
	/* Port unreachable from the server quoting the client's datagram. */
	l3(&p, f, 0, IPPROTO_ICMP);
	pb_icmp(&p, 3, 3);
	pb_u8(&p, 0x45);
	pb_u8(&p, 0);
	pb_be16(&p, 38);
	pb_be32(&p, 0);
	pb_u8(&p, 64);
	pb_u8(&p, IPPROTO_UDP);
	pb_be16(&p, 0);
	pb_be32(&p, 0xc6336401);
	pb_be32(&p, 0xc6336402);
	pb_be16(&p, CP);
	pb_be16(&p, SP);
	pb_be16(&p, 18);
	pb_be16(&p, 0);
	pb_finish(&p);
	in(&p);
	cr_expect_eq(metric(ES_CT_M_HITS), hits0 + 1);
	cr_expect_eq(metric(ES_CT_M_LOOKUPS), look0 + 1);
	cr_assert_eq(get(f, IPPROTO_UDP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.state, ES_CT_NEW, "an error is no reply");
	cr_expect_eq(e.v4.packets_rev, 0);
}

Test(conntrack, disabled_tracks_nothing)
{
	struct pb p;
	union entry e;

	set_config(0);
	tcp(&p, &fams[0], 1, TH_SYN);
	in(&p);
	out(&p, NULL);
	cr_expect_neq(get(&fams[0], IPPROTO_TCP, CP, SP, &e), 0);
}

Test(conntrack, egress_tracks_local_traffic_too)
{
	const struct fam *f = &fams[1];
	struct pb p;
	union entry e;

	tcp(&p, f, 1, TH_SYN); /* locally generated: no ingress interface */
	out(&p, NULL);
	tcp(&p, f, 0, SA);
	in(&p);
	tcp(&p, f, 1, TH_ACK);
	out(&p, NULL);
	cr_assert_eq(get(f, IPPROTO_TCP, CP, SP, &e), 0);
	cr_expect_eq(e.v6.state, ES_CT_ESTABLISHED);
	cr_expect_eq(e.v6.packets_fwd, 2);
	cr_expect_eq(e.v6.packets_rev, 1);
}

Test(conntrack, forwarded_packets_are_tracked_once)
{
	const struct fam *f = &fams[0];
	__u32 agent_if = 7, other_if = 9, one = 1;
	struct __sk_buff ctx = {.ingress_ifindex = agent_if};
	struct pb p;
	union entry e;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ct_ifaces), &agent_if, &one, BPF_ANY),
		     0);
	tcp(&p, f, 1, TH_SYN);
	in(&p);	       /* ingress of agent interface 7 ... */
	out(&p, &ctx); /* ... then egress of another one: not counted again */
	cr_assert_eq(get(f, IPPROTO_TCP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.packets_fwd, 1);

	/* Forwarded from an interface without tc_conntrack: egress tracks it. */
	ctx = (struct __sk_buff){.ingress_ifindex = other_if};
	out(&p, &ctx);
	cr_assert_eq(get(f, IPPROTO_TCP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.packets_fwd, 2);

	/* NAT translated it on the way (tc_nat_egress said so): egress tracks it. */
	ctx = (struct __sk_buff){.ingress_ifindex = agent_if, .cb = {ES_TC_CB_NAT_FLOW}};
	out(&p, &ctx);
	cr_assert_eq(get(f, IPPROTO_TCP, CP, SP, &e), 0);
	cr_expect_eq(e.v4.packets_fwd, 3);
	cr_expect_eq(ctx.cb[0], 0, "the NAT mark is consumed");
}

/* ---- the agent's side: count, flush, sweep ----------------------------------------- */

#include "domains/conntrack/ct_table.h"

static struct es_ct_config cfg_now(void)
{
	struct es_ct_config c;
	__u32 zero = 0;

	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.ct_config), &zero, &c), 0);
	return c;
}

static void put_aged(const struct fam *f, uint8_t proto, __u16 cp, __u16 sp, uint8_t state,
		     uint8_t flags, uint64_t idle_secs, __u16 slot)
{
	union entry e = {0};

	e.v4.state = state;
	e.v4.flags = flags;
	e.v4.first_seen_ns = e.v4.last_seen_ns = kt_boot_ns() - idle_secs * NS;
	if (f->v6)
		e.v6.rule_slot = slot;
	else
		e.v4.rule_slot = slot;
	put(f, proto, cp, sp, &e);
}

static struct es_ct_addr16 a16(const char *s)
{
	struct es_addr a;
	struct es_ct_addr16 k;

	cr_assert_eq(es_addr_parse(s, &a), 0);
	memcpy(k.b, a.b, 16);
	return k;
}

Test(conntrack, sweep_expires_and_recounts)
{
	struct es_ct_config c = cfg_now();
	struct ct_sweep_stats st;
	struct ct_maps m;
	union entry e;
	struct es_ct_src_counter sc;
	struct es_ct_addr16 client = a16(C4), server = a16(S4), gone = a16("203.0.113.9");
	struct es_ct_src_counter stale = {.conn_count = 9, .window_start_ns = 1};
	struct es_ct_overload old = {.since_ns = kt_boot_ns() - 11 * NS},
			      fresh = {.since_ns = kt_boot_ns()};
	struct es_ct_src_counter over = {.flags = ES_CT_SRC_OVERLOADED, .window_start_ns = 1};
	__u32 slot = 5, cnt;
	uint64_t n;

	/* Client-initiated: two live TCP flows (rule slot 5), one expired UDP flow. */
	put_aged(&fams[0], IPPROTO_TCP, CP, SP, ES_CT_ESTABLISHED, OS, 20, 5);
	put_aged(&fams[0], IPPROTO_TCP, CP + 1, SP, ES_CT_SYN_SENT, OS, 1, 5);
	put_aged(&fams[0], IPPROTO_UDP, CP, 53, ES_CT_NEW, OS, 4, ES_CT_RULE_SLOT_NONE);
	/* Server-initiated (ORIG_IS_SRC clear): one live UDP flow. */
	put_aged(&fams[0], IPPROTO_UDP, 5353, 5353, ES_CT_ESTABLISHED, 0, 1, ES_CT_RULE_SLOT_NONE);
	/* IPv6: one expired closing flow. */
	put_aged(&fams[1], IPPROTO_TCP, CP, SP, ES_CT_TIME_WAIT, OS, 13, ES_CT_RULE_SLOT_NONE);
	cr_assert_eq(
	    bpf_map_update_elem(bpf_map__fd(sk->maps.ct_src_counters), &gone, &stale, BPF_ANY), 0);
	cr_assert_eq(
	    bpf_map_update_elem(bpf_map__fd(sk->maps.ct_src_counters), &server, &over, BPF_ANY), 0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ct_overload), &server, &old, BPF_ANY),
		     0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ct_overload), &gone, &fresh, BPF_ANY),
		     0);

	ct_maps_open(&m);
	cr_assert_geq(m.v4, 0);
	cr_assert_eq(ct_table_count(&m, &c, &n), 0);
	cr_expect_eq(n, 3, "three live flows before the sweep");
	cr_assert_eq(ct_sweep(&m, &c, 10, &st), 0);
	cr_expect_eq(st.live, 3);
	cr_expect_eq(st.expired, 2);
	cr_expect_eq(st.sources, 2);
	cr_expect_eq(st.overload_expired, 1);

	cr_expect_eq(get(&fams[0], IPPROTO_UDP, CP, 53, &e), -ENOENT, "expired UDP removed");
	cr_expect_eq(get(&fams[1], IPPROTO_TCP, CP, SP, &e), -ENOENT, "expired TIME_WAIT removed");
	cr_expect_eq(get(&fams[0], IPPROTO_TCP, CP, SP, &e), 0, "idle established kept");

	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.ct_src_counters), &client, &sc), 0);
	cr_expect_eq(sc.conn_count, 2, "the client initiated two live flows");
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.ct_src_counters), &server, &sc), 0);
	cr_expect_eq(sc.conn_count, 1, "the server initiated one");
	cr_expect_not(sc.flags & ES_CT_SRC_OVERLOADED, "overload expired after the TTL");
	cr_expect_neq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.ct_src_counters), &gone, &sc), 0,
		      "a source without flows or state is forgotten");
	cr_expect_neq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.ct_overload), &server, &fresh), 0);
	cr_expect_eq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.ct_overload), &gone, &fresh), 0,
		     "a fresh overload entry stays");
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.fw_rule_state_count), &slot, &cnt),
		     0);
	cr_expect_eq(cnt, 2, "two live flows admitted by rule slot 5");

	cr_assert_eq(ct_table_flush(&m, &n), 0);
	cr_expect_eq(n, 3);
	cr_assert_eq(ct_table_count(&m, &c, &n), 0);
	cr_expect_eq(n, 0);
	ct_maps_close(&m);
}

struct listed {
	int n;
	struct ct_flow f[4];
};

static int collect(const struct ct_flow *f, const void *key, bool v6, void *arg)
{
	struct listed *l = arg;

	if (l->n < 4)
		l->f[l->n++] = *f;
	return 0;
}

Test(conntrack, flows_are_listed_from_their_initiator)
{
	struct listed l = {0};
	struct ct_maps m;
	char a[64], b[64];
	json_t *j;

	put_aged(&fams[1], IPPROTO_TCP, CP, SP, ES_CT_ESTABLISHED, 0, 1, ES_CT_RULE_SLOT_NONE);
	ct_maps_open(&m);
	cr_assert_eq(ct_table_walk(&m, collect, &l), 0);
	ct_maps_close(&m);
	cr_assert_eq(l.n, 1);
	es_addr_format(&l.f[0].src, a, sizeof(a));
	es_addr_format(&l.f[0].dst, b, sizeof(b));
	cr_expect_str_eq(a, S6, "ORIG_IS_SRC clear: the key's dst endpoint initiated");
	cr_expect_str_eq(b, C6);
	cr_expect_eq(l.f[0].sport, SP);
	cr_expect_eq(l.f[0].dport, CP);
	j = ct_flow_json(&l.f[0], kt_boot_ns());
	cr_expect_str_eq(json_string_value(json_object_get(j, "state")), "established");
	cr_expect_str_eq(json_string_value(json_object_get(j, "src_ip")), S6);
	cr_expect_eq(json_integer_value(json_object_get(j, "protocol")), IPPROTO_TCP);
	json_decref(j);
}
