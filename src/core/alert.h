/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The alert object (interfaces.md §3.4 "Alert", §7.2) and the one way to
 * raise an alert. Engines fill a struct es_alert and call es_alert_emit();
 * the alerting domain installs the pipeline (enrich, count, store, stream,
 * dedup, throttle, route, deliver) as the sink. Until a sink is installed,
 * alerts are counted as dropped and logged at debug level.
 */
#ifndef ES_ALERT_H
#define ES_ALERT_H

#include <stdbool.h>
#include <stdint.h>

enum es_severity {
	ES_SEV_LOW = 0,
	ES_SEV_MEDIUM,
	ES_SEV_HIGH,
	ES_SEV_CRITICAL,
};

enum es_alert_action {
	ES_ALERT_ACT_ALERT = 0,
	ES_ALERT_ACT_BLOCK,
};

/* Optional fields present (omitted from JSON otherwise). */
#define ES_AF_SRC_DOMAIN 0x0001u
#define ES_AF_DST_DOMAIN 0x0002u
#define ES_AF_SRC_DOMAIN_SCORE 0x0004u
#define ES_AF_DST_DOMAIN_SCORE 0x0008u
#define ES_AF_SRC_GEO 0x0010u
#define ES_AF_DST_GEO 0x0020u
#define ES_AF_CONFIDENCE 0x0040u
#define ES_AF_THREAT_TYPE 0x0080u
#define ES_AF_DATA_TYPE 0x0100u
#define ES_AF_PID 0x0200u
#define ES_AF_TGID 0x0400u
#define ES_AF_DIRECTION 0x0800u
#define ES_AF_MATCHED_DOMAIN 0x1000u
#define ES_AF_ATTACK_TYPE 0x2000u
#define ES_AF_PEAK_PPS 0x4000u
#define ES_AF_CURRENT_PPS 0x8000u
#define ES_AF_MITIGATION_STATUS 0x10000u
#define ES_AF_TOTAL_PACKETS 0x20000u

struct es_alert {
	char id[160];	       /* "<timestamp_ns>-<rule_id>"; filled by es_alert_emit when empty */
	uint64_t timestamp_ns; /* wall clock; filled when 0 */
	char component[32];    /* "ids", "dlp", "ddos", ... */
	enum es_severity severity;
	char rule_id[128];
	enum es_alert_action action;
	uint32_t src_addr[4]; /* addr4 encoding (interfaces.md §0) */
	uint32_t dst_addr[4];
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t protocol;
	bool is_ipv6;
	bool false_positive;
	char message[512];

	uint32_t has; /* ES_AF_* */
	char src_domain[256];
	char dst_domain[256];
	double src_domain_score;
	double dst_domain_score;
	char src_geo[128];
	char dst_geo[128];
	uint8_t confidence;
	char threat_type[32];
	char data_type[32];
	uint32_t pid;
	uint32_t tgid;
	uint8_t direction; /* 0 write, 1 read */
	char matched_domain[256];
	char attack_type[32];
	uint64_t peak_pps;
	uint64_t current_pps;
	char mitigation_status[16];
	uint64_t total_packets;
};

/* The pipeline entry; must not block (queue and return). Thread-safe. */
typedef void (*es_alert_sink_fn)(const struct es_alert *a);

void es_alert_set_sink(es_alert_sink_fn fn);
/* Raise an alert: fills id and timestamp when empty, then hands it to the sink. */
void es_alert_emit(struct es_alert *a);

/*
 * Enrichment hook points (interfaces.md §7.3 step 1): features that can add
 * context (DNS names, reputation, GeoIP) register a function; the pipeline
 * runs them in registration order on its own thread before counting.
 * Register at start; returns 0 or -ENOSPC (at most 8).
 */
typedef void (*es_alert_enrich_fn)(struct es_alert *a);
int es_alert_add_enricher(es_alert_enrich_fn fn);
void es_alert_enrich(struct es_alert *a);

const char *es_severity_name(enum es_severity s); /* lower case */
/* "low"/"info", "medium"/"warning", "high", "critical"/"crit", case-insensitive. */
int es_severity_parse(const char *s, enum es_severity *out);

#endif
