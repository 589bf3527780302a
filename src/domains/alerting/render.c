// SPDX-License-Identifier: AGPL-3.0-only
/* The alert as JSON: REST (§3.4) and webhook/e-mail (§7.4) forms. */
#include "domains/alerting/alerting_int.h"
#include "core/net.h"

#include <stdio.h>

const char *al_severity_cap(enum es_severity s)
{
	static const char *const n[] = {"Low", "Medium", "High", "Critical"};

	return s <= ES_SEV_CRITICAL ? n[s] : "Low";
}

void al_addr_str(const uint32_t w[4], bool v6, char *buf, size_t len)
{
	struct es_addr a;

	es_addr_from_words(&a, w, v6);
	es_addr_format(&a, buf, len);
}

static json_t *addr4(const uint32_t w[4])
{
	return json_pack("[IIII]", (json_int_t)w[0], (json_int_t)w[1], (json_int_t)w[2],
			 (json_int_t)w[3]);
}

json_t *al_alert_json(const struct es_alert *a, bool webhook)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(a->id));
	json_object_set_new(o, "timestamp_ns", json_integer((json_int_t)a->timestamp_ns));
	json_object_set_new(o, "component", json_string(a->component));
	json_object_set_new(
	    o, "severity",
	    json_string(webhook ? al_severity_cap(a->severity) : es_severity_name(a->severity)));
	json_object_set_new(o, "rule_id", json_string(a->rule_id));
	json_object_set_new(o, "action",
			    json_string(a->action == ES_ALERT_ACT_BLOCK
					    ? (webhook ? "Block" : "block")
					    : (webhook ? "Alert" : "alert")));
	json_object_set_new(o, "src_addr", addr4(a->src_addr));
	json_object_set_new(o, "dst_addr", addr4(a->dst_addr));
	json_object_set_new(o, "src_port", json_integer(a->src_port));
	json_object_set_new(o, "dst_port", json_integer(a->dst_port));
	json_object_set_new(o, "protocol", json_integer(a->protocol));
	json_object_set_new(o, "is_ipv6", json_boolean(a->is_ipv6));
	json_object_set_new(o, "message", json_string(a->message));
	json_object_set_new(o, "false_positive", json_boolean(a->false_positive));
#define OPT_STR(flag, f)                                                                           \
	if (a->has & (flag))                                                                       \
		json_object_set_new(o, #f, json_string(a->f));
#define OPT_INT(flag, f)                                                                           \
	if (a->has & (flag))                                                                       \
		json_object_set_new(o, #f, json_integer((json_int_t)a->f));
	OPT_STR(ES_AF_SRC_DOMAIN, src_domain)
	OPT_STR(ES_AF_DST_DOMAIN, dst_domain)
	if (a->has & ES_AF_SRC_DOMAIN_SCORE)
		json_object_set_new(o, "src_domain_score", json_real(a->src_domain_score));
	if (a->has & ES_AF_DST_DOMAIN_SCORE)
		json_object_set_new(o, "dst_domain_score", json_real(a->dst_domain_score));
	OPT_STR(ES_AF_SRC_GEO, src_geo)
	OPT_STR(ES_AF_DST_GEO, dst_geo)
	OPT_INT(ES_AF_CONFIDENCE, confidence)
	OPT_STR(ES_AF_THREAT_TYPE, threat_type)
	OPT_STR(ES_AF_DATA_TYPE, data_type)
	OPT_INT(ES_AF_PID, pid)
	OPT_INT(ES_AF_TGID, tgid)
	OPT_INT(ES_AF_DIRECTION, direction)
	OPT_STR(ES_AF_MATCHED_DOMAIN, matched_domain)
	OPT_STR(ES_AF_ATTACK_TYPE, attack_type)
	OPT_INT(ES_AF_PEAK_PPS, peak_pps)
	OPT_INT(ES_AF_CURRENT_PPS, current_pps)
	OPT_STR(ES_AF_MITIGATION_STATUS, mitigation_status)
	OPT_INT(ES_AF_TOTAL_PACKETS, total_packets)
#undef OPT_STR
#undef OPT_INT
	return o;
}
