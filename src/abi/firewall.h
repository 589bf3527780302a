/* SPDX-License-Identifier: AGPL-3.0-only */
/* Firewall ABI: counters and event values shared by xdp_firewall and the agent. */
#ifndef ES_ABI_FIREWALL_H
#define ES_ABI_FIREWALL_H

#include "common.h"

/* FIREWALL_METRICS per-CPU array indices (network.md §2.2). */
enum es_fw_metric {
	ES_FW_M_PASSED = 0,
	ES_FW_M_DROPPED,
	ES_FW_M_ERRORS,
	ES_FW_M_EVENTS_DROPPED,
	ES_FW_M_TOTAL_SEEN,
	ES_FW_M__COUNT,
};

/* Firewall event actions (es_pkt_event.action). */
#define ES_FW_ACT_PASS 0
#define ES_FW_ACT_DROP 1
#define ES_FW_ACT_LOG 2

/* Reserved rule ids for drops not caused by a configured rule. */
#define ES_FW_RULE_DEFAULT 0u
#define ES_FW_RULE_LPM 0xFFFFFF01u
#define ES_FW_RULE_ZONE 0xFFFFFF02u
#define ES_FW_RULE_CONN_LIMIT 0xFFFFFF03u

#endif
