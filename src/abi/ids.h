/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * IDS/IPS ABI (detection.md §1.2, §2.2): the pattern table tc_ids looks up,
 * its sampling knob, counters, the IDS event and the IPS blacklist maps
 * (written by the IPS engine, enforced by tc_ids).
 */
#ifndef ES_ABI_IDS_H
#define ES_ABI_IDS_H

#include "common.h"

/* IDS_PATTERNS key: (dst_port, proto); 0 = any for either field. */
struct es_ids_key {
	__u16 dst_port;
	__u8 proto;
	__u8 pad;
};

#define ES_IDS_F_WANT_PAYLOAD 0x01
#define ES_IDS_F_SAMPLE 0x02
#define ES_IDS_F_SYN_ONLY 0x04

#define ES_IDS_ACT_ALERT 0
#define ES_IDS_ACT_DROP 1

struct es_ids_val {
	__u8 action;   /* ES_IDS_ACT_* */
	__u8 severity; /* 0-3 */
	__u8 flags;    /* ES_IDS_F_* */
	__u8 pad;
	__u32 rule_id; /* index of the first covering rule in the combined list */
};

#define ES_IDS_MAX_KEYS 10240

/* IDS_SAMPLING_CONFIG: mode 1 = random, emit iff prandom <= rate_threshold. */
#define ES_IDS_SAMPLE_NONE 0
#define ES_IDS_SAMPLE_RANDOM 1
struct es_ids_sampling {
	__u8 mode;
	__u8 pad[3];
	__u32 rate_threshold;
};

/* IDS_METRICS per-CPU array indices. */
enum es_ids_metric {
	ES_IDS_M_MATCHED = 0,
	ES_IDS_M_DROPPED,
	ES_IDS_M_ERRORS,
	ES_IDS_M_EVENTS_DROPPED,
	ES_IDS_M_TOTAL_SEEN,
	ES_IDS_M__COUNT,
};

/* Event flags beyond ES_EVF_IPV6 / ES_EVF_VLAN: a TCP SYN without ACK. */
#define ES_EVF_SYN 0x04

#define ES_IDS_PAYLOAD_MAX 512
#define ES_IDS_EVENT_VERSION 1

/*
 * The IDS event: the packet event (action = ES_IDS_ACT_*, rule_id = the
 * kernel value's rule index) and, when the rule wants it, up to 512 bytes of
 * L4 payload. Records without payload end at `payload` (hdr.len tells).
 */
struct es_ids_event {
	struct es_pkt_event pkt;
	__u16 payload_len;
	__u8 pad[6];
	__u8 payload[ES_IDS_PAYLOAD_MAX];
};

#define ES_IDS_EVENT_MIN_LEN (sizeof(struct es_pkt_event) + 8)

/* IPS blacklist (detection.md §2.2 [Gap]): source address -> expiry (boot ns, 0 = none). */
#define ES_IPS_BLACKLIST_MAX 65536
struct es_ips_v6key {
	__u8 addr[16];
};

#ifndef __bpf__
_Static_assert(sizeof(struct es_ids_key) == 4, "ids key");
_Static_assert(sizeof(struct es_ids_val) == 8, "ids value");
_Static_assert(sizeof(struct es_ids_sampling) == 8, "ids sampling");
_Static_assert(offsetof(struct es_ids_event, payload_len) == 72, "payload_len offset");
_Static_assert(offsetof(struct es_ids_event, payload) == 80, "payload offset");
_Static_assert(sizeof(struct es_ids_event) == 592, "ids event size");
#endif

#endif
