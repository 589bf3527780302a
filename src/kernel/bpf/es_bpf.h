/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Kernel-side common header: types, the maps every program shares (pinned by
 * name under the agent's pin directory, so each object that declares them gets
 * the same instance), reason counting and event emission.
 */
#ifndef ES_BPF_H
#define ES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/common.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_ARP 0x0806

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_NONE_ 59
#define IPPROTO_DSTOPTS_ 60

#define XDP_PASS_ 2

/* TC verdicts (uapi pkt_cls.h; macros are not in vmlinux.h). UNSPEC lets the
 * next filter of the chain run; OK and SHOT end it. */
#ifndef TC_ACT_UNSPEC
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#endif

#ifndef barrier_var
#define barrier_var(var) asm volatile("" : "+r"(var))
#endif

/* Reason counters, per program (see abi/common.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_REASON_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} es_reasons SEC(".maps");

/* CONFIG_FLAGS: which features the agent switched on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_config_flags);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config_flags SEC(".maps");

/* EVENTS: the one packet-event ring (network.md §1.6). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ES_EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

static __always_inline void es_count(__u32 prog, __u32 reason)
{
	__u32 key = prog * ES_REASON_STRIDE + reason;
	__u64 *v = bpf_map_lookup_elem(&es_reasons, &key);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline int es_feature_on(__u32 feat)
{
	__u32 zero = 0;
	struct es_config_flags *f = bpf_map_lookup_elem(&config_flags, &zero);

	if (!f || feat >= 8)
		return 0;
	return f->flag[feat & 7] != 0;
}

/*
 * Reserve a record on the events ring unless it is over the high-water mark.
 * Returns NULL (the caller counts events_dropped) rather than stall: verdicts
 * never depend on event delivery.
 */
static __always_inline void *es_event_reserve(__u32 size, __u16 type, __u8 version)
{
	struct es_event_hdr *h;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > ES_EVENTS_RING_HIGH_WATER)
		return NULL;
	h = bpf_ringbuf_reserve(&events, size, 0);
	if (!h)
		return NULL;
	h->type = type;
	h->version = version;
	h->flags = 0;
	h->len = size;
	h->cpu = bpf_get_smp_processor_id();
	return h;
}

/*
 * Commit a record from es_event_reserve(). The reader is woken only when the
 * pending data crosses a multiple of ES_EVENTS_RING_WAKE_BYTES; otherwise the
 * record waits for the reader's timed poll (ES_EVENTS_READER_POLL_MS). A
 * wakeup per record (the default flag 0 wakes whenever the ring was empty,
 * i.e. after every drain) costs an irq_work and a reader context switch per
 * batch: under a drop flood that halved the live drop rate (docs/firewall.md).
 */
static __always_inline void es_event_submit(void *rec)
{
	__u64 rec_bytes = (((struct es_event_hdr *)rec)->len + 8 + 7) & ~7ull; /* + ring header */
	__u64 after = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 before = after > rec_bytes ? after - rec_bytes : 0;
	int shift = __builtin_ctz(ES_EVENTS_RING_WAKE_BYTES);

	bpf_ringbuf_submit(rec, (after >> shift) != (before >> shift) ? BPF_RB_FORCE_WAKEUP
								      : BPF_RB_NO_WAKEUP);
}

#endif /* ES_BPF_H */
