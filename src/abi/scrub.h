/* SPDX-License-Identifier: AGPL-3.0-only */
/* Scrub ABI (network.md §5): tc_scrub's configuration and counters. */
#ifndef ES_ABI_SCRUB_H
#define ES_ABI_SCRUB_H

#include "common.h"

/* SCRUB_CONFIG[0]. Zero knobs are off. */
struct es_scrub_config {
	__u8 enabled;
	__u8 min_ttl;
	__u8 clear_df;
	__u8 random_ip_id;
	__u16 max_mss;
	__u8 min_hop_limit;
	__u8 pad;
};

/* SCRUB_METRICS per-CPU array indices. */
enum es_scrub_metric {
	ES_SCRUB_M_PACKETS = 0,
	ES_SCRUB_M_TTL_FIXED,
	ES_SCRUB_M_MSS_CLAMPED,
	ES_SCRUB_M_DF_CLEARED,
	ES_SCRUB_M_IPID_RANDOMIZED,
	ES_SCRUB_M_ERRORS,
	ES_SCRUB_M_HOP_FIXED,
	ES_SCRUB_M_TOTAL_SEEN,
	ES_SCRUB_M__COUNT,
};

/* TCP options scanned for MSS. */
#define ES_SCRUB_MAX_OPT_BYTES 40

#ifndef __bpf__
_Static_assert(sizeof(struct es_scrub_config) == 8, "scrub config is 8 bytes");
_Static_assert(offsetof(struct es_scrub_config, max_mss) == 4, "max_mss @4");
_Static_assert(offsetof(struct es_scrub_config, min_hop_limit) == 6, "min_hop_limit @6");
#endif

#endif
