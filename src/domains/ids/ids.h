/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * IDS domain: what other parts of the agent may ask of it. The rule schema
 * is shared with IPS (detection.md §2.1: IPS rules are IDS rules minus the
 * domain keys), and IPS rules are evaluated by the IDS engine and compiled
 * into the same kernel table (§1.3, §2.2).
 */
#ifndef ES_IDS_H
#define ES_IDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alert.h"
#include "core/cfg.h"

enum ids_mode {
	IDS_MODE_INHERIT = -1,
	IDS_MODE_ALERT = 0,
	IDS_MODE_BLOCK = 1,
};

enum ids_thr_type { IDS_THR_LIMIT = 0, IDS_THR_THRESHOLD, IDS_THR_BOTH };
enum ids_track { IDS_TRACK_SRC = 0, IDS_TRACK_DST, IDS_TRACK_BOTH };
enum ids_domain_mode { IDS_DM_NONE = -1, IDS_DM_EXACT = 0, IDS_DM_WILDCARD, IDS_DM_REGEX };
enum ids_sample_mode {
	IDS_SAMPLE_NONE = 0,
	IDS_SAMPLE_RANDOM,
	IDS_SAMPLE_HASH,
	IDS_SAMPLE_COUNTRY
};

struct ids_threshold {
	bool set;
	enum ids_thr_type type;
	uint32_t count;
	uint64_t window_secs;
	enum ids_track track_by;
};

struct ids_country_thr {
	char cc[3];
	struct ids_threshold thr;
};

struct ids_rule {
	char *id;
	char *description;
	enum es_severity severity;
	enum ids_mode mode;
	uint8_t protocol; /* 0 any, 1 icmp (and icmpv6), 6, 17 */
	bool has_port;
	uint16_t dst_port;
	char *pattern; /* "" = none */
	bool enabled;
	struct ids_threshold threshold;
	char *domain_pattern; /* NULL = none */
	enum ids_domain_mode domain_mode;
	struct ids_country_thr *country;
	size_t n_country;
};

struct ids_sampling {
	enum ids_sample_mode mode;
	double rate;
	char **high_risk_countries; /* NULL-terminated, may be NULL */
	double high_risk_rate;
	double default_rate;
};

/* Parse a rules list with the IDS schema (ips = no domain keys). */
int ids_rules_parse(struct es_cfg *c, const json_t *arr, const char *path, bool ips,
		    struct ids_rule **out, size_t *n);
void ids_rules_free(struct ids_rule *r, size_t n);
int ids_rules_dup(const struct ids_rule *src, size_t n, struct ids_rule **out);
int ids_sampling_parse(struct es_cfg *c, const json_t *sec, const char *path,
		       struct ids_sampling *out);
void ids_sampling_free(struct ids_sampling *s);
json_t *ids_sampling_json(const struct ids_sampling *s);
/* Config-file form of a rule (GET /api/v1/config). */
json_t *ids_rule_cfg_json(const struct ids_rule *r);
const char *ids_proto_name(uint8_t proto); /* lower case */
/* "tcp"/"udp"/"icmp"/"any"/"*" (ci) -> number; -1 unknown. */
int ids_proto_parse(const char *s);

/* The sampling decision of detection.md §1.3 step 3 (keep?). */
bool ids_sample_keep(const struct ids_sampling *s, uint32_t src0, uint32_t dst0,
		     const char *src_country);
/* The threshold emit rule of §1.3 step 5 given the window's count (after ++)
 * and whether it already alerted (both). */
bool ids_threshold_emit(enum ids_thr_type type, uint32_t n, uint64_t count, bool *alerted);

/* The IPS side of the engine: its rules, sampling, mode and whether it runs. */
struct ids_ips_view {
	bool enabled;
	enum ids_mode mode;
	const struct ids_rule *rules;
	size_t n_rules;
	const struct ids_sampling *sampling;
};
/* Install IPS's part (copied) and resync the kernel table. 0 or -errno. */
int ids_set_ips(const struct ids_ips_view *v);
/* Called for every emitted alert while IPS is enabled (record_detection). */
typedef void (*ids_detection_fn)(const uint32_t src[4], bool v6);
void ids_set_detection_hook(ids_detection_fn fn);

/* Country of an address (GeoIP registers it); false = no country. */
typedef bool (*ids_country_fn)(const uint32_t addr[4], bool v6, char cc[3]);
void ids_set_country_fn(ids_country_fn fn);
bool ids_country_of(const uint32_t addr[4], bool v6, char cc[3]);
/* Domains the DNS cache maps to an address (DNS registers it): up to max
 * names written (owned by the caller afterwards, free() each); count returned. */
typedef size_t (*ids_reverse_fn)(const uint32_t addr[4], bool v6, char **names, size_t max);
void ids_set_reverse_dns_fn(ids_reverse_fn fn);

/* Is tc_ids loaded? */
bool ids_program_loaded(void);

#endif
