// SPDX-License-Identifier: AGPL-3.0-only
/* The DDoS detector driven by scripted events and ticks: EWMA values, every
 * transition at the specified tick counts, history; and policy validation. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "abi/ddos.h"
#include "domains/ddos/ddos.h"
#include "unit.h"

static const uint8_t src1[16] = {[10] = 0xff, [11] = 0xff, 198, 51, 100, 2};

struct trace {
	enum ddos_status seq[16];
	int n;
};

static void on_change(const struct ddos_tracker *t, enum ddos_status from,
		      const struct ddos_policy *p, void *arg)
{
	struct trace *tr = arg;

	if (from != t->status && tr->n < 16)
		tr->seq[tr->n++] = t->status;
}

static struct ddos_policy pol(const char *id, enum ddos_attack a, uint64_t thr)
{
	struct ddos_policy p = {
	    .id = (char *)id, .attack = a, .threshold_pps = thr, .enabled = true};
	return p;
}

/* One tick with n events of attack a. */
static void second(struct ddos_detector *d, const struct ddos_policy *p, size_t np,
		   enum ddos_attack a, int n, struct trace *tr)
{
	for (int i = 0; i < n; i++)
		ddos_det_event(d, a, src1, 1000);
	ddos_det_tick(d, p, np, on_change, tr);
}

Test(ddos_detect, ewma_and_full_life_cycle)
{
	struct ddos_policy p = pol("syn", DDOS_SYN_FLOOD, 500);
	struct ddos_detector d = {0};
	struct trace tr = {0};
	json_t *h;

	second(&d, &p, 1, DDOS_SYN_FLOOD, 1000, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->current_pps, 300);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->status, DDOS_DETECTING);
	second(&d, &p, 1, DDOS_SYN_FLOOD, 1000, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->current_pps, 510);
	second(&d, &p, 1, DDOS_SYN_FLOOD, 1000, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->current_pps, 657);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->status, DDOS_DETECTING, "two ticks above only");
	second(&d, &p, 1, DDOS_SYN_FLOOD, 1000, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->status, DDOS_ACTIVE, "third tick above");
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->peak_pps, 759);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->total, 4000);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->n_src, 1);

	/* Flood stops: the EWMA falls below 500 on the 2nd quiet tick (531, 371). */
	for (int i = 0; i < 30; i++)
		second(&d, &p, 1, DDOS_SYN_FLOOD, 0, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->status, DDOS_ACTIVE, "29 ticks below");
	second(&d, &p, 1, DDOS_SYN_FLOOD, 0, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->status, DDOS_MITIGATED, "30 ticks below");
	/* Expired at 300 consecutive ticks below, counted from the first. */
	for (int i = 0; i < 269; i++)
		second(&d, &p, 1, DDOS_SYN_FLOOD, 0, &tr);
	cr_expect_not_null(d.active[DDOS_SYN_FLOOD]);
	second(&d, &p, 1, DDOS_SYN_FLOOD, 0, &tr);
	cr_expect_null(d.active[DDOS_SYN_FLOOD], "expired trackers leave the active table");
	cr_expect_eq(d.total_mitigated, 1);
	cr_expect_eq(tr.n, 3);
	cr_expect_eq(tr.seq[0], DDOS_ACTIVE);
	cr_expect_eq(tr.seq[1], DDOS_MITIGATED);
	cr_expect_eq(tr.seq[2], DDOS_EXPIRED);
	h = ddos_history_json(&d, 100);
	cr_expect_eq(json_array_size(h), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "status")),
			 "expired");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "attack_type")),
			 "synflood");
	json_decref(h);
	ddos_det_reset(&d);
}

Test(ddos_detect, mitigated_returns_to_active_after_three_ticks_above)
{
	struct ddos_policy p = pol("icmp", DDOS_ICMP_FLOOD, 10);
	struct ddos_detector d = {0};
	struct trace tr = {0};

	for (int i = 0; i < 3; i++)
		second(&d, &p, 1, DDOS_ICMP_FLOOD, 100, &tr);
	cr_assert_eq(d.active[DDOS_ICMP_FLOOD]->status, DDOS_ACTIVE);
	for (int i = 0; i < 40; i++)
		second(&d, &p, 1, DDOS_ICMP_FLOOD, 0, &tr);
	cr_assert_eq(d.active[DDOS_ICMP_FLOOD]->status, DDOS_MITIGATED);
	second(&d, &p, 1, DDOS_ICMP_FLOOD, 100, &tr);
	second(&d, &p, 1, DDOS_ICMP_FLOOD, 100, &tr);
	cr_expect_eq(d.active[DDOS_ICMP_FLOOD]->status, DDOS_MITIGATED);
	second(&d, &p, 1, DDOS_ICMP_FLOOD, 100, &tr);
	cr_expect_eq(d.active[DDOS_ICMP_FLOOD]->status, DDOS_ACTIVE);
	ddos_det_reset(&d);
}

Test(ddos_detect, detecting_without_attack_is_discarded_without_history)
{
	struct ddos_policy p = pol("rst", DDOS_RST_FLOOD, 1000);
	struct ddos_detector d = {0};
	struct trace tr = {0};

	second(&d, &p, 1, DDOS_RST_FLOOD, 50, &tr);
	for (int i = 0; i < 298; i++)
		second(&d, &p, 1, DDOS_RST_FLOOD, 0, &tr);
	cr_expect_not_null(d.active[DDOS_RST_FLOOD]);
	second(&d, &p, 1, DDOS_RST_FLOOD, 0, &tr);
	cr_expect_null(d.active[DDOS_RST_FLOOD]);
	cr_expect_eq(d.hist_n, 0);
	cr_expect_eq(d.total_mitigated, 0);
	ddos_det_reset(&d);
}

Test(ddos_detect, event_mapping_and_policy_choice)
{
	struct ddos_policy ps[3] = {pol("zz", DDOS_SYN_FLOOD, 5), pol("aa", DDOS_SYN_FLOOD, 9),
				    pol("bb", DDOS_SYN_FLOOD, 7)};

	cr_expect_eq(ddos_event_attack(ES_EV_DDOS_SYN, ES_DDOS_EV_SYNCOOKIE), DDOS_SYN_FLOOD);
	cr_expect_eq(ddos_event_attack(ES_EV_DDOS_ICMP, ES_DDOS_EV_DROP), DDOS_ICMP_FLOOD);
	cr_expect_eq(ddos_event_attack(ES_EV_DDOS_AMP, ES_DDOS_EV_DROP), DDOS_UDP_AMPLIFICATION);
	cr_expect_eq(ddos_event_attack(ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_HALF_OPEN), DDOS_SYN_FLOOD);
	cr_expect_eq(ddos_event_attack(ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_RST), DDOS_RST_FLOOD);
	cr_expect_eq(ddos_event_attack(ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_FIN), DDOS_FIN_FLOOD);
	cr_expect_eq(ddos_event_attack(ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_ACK), DDOS_ACK_FLOOD);
	cr_expect_eq(ddos_event_attack(ES_EV_FIREWALL, 1), -1);
	cr_expect_str_eq(ddos_policy_for(ps, 3, DDOS_SYN_FLOOD)->id, "aa", "first by id");
	ps[1].enabled = false;
	cr_expect_str_eq(ddos_policy_for(ps, 3, DDOS_SYN_FLOOD)->id, "bb", "enabled only");
	cr_expect_null(ddos_policy_for(ps, 3, DDOS_ICMP_FLOOD));
}

Test(ddos_cfg, sections_and_policy_rejections)
{
	static const struct {
		const char *yaml, *want;
	} bad[] = {
	    {"  policies:\n    - { id: p, attack_type: teardrop, detection_threshold_pps: 5 }",
	     "invalid value 'teardrop' for field 'ddos.policies[0].attack_type'"},
	    {"  policies:\n    - { id: p, attack_type: syn_flood, detection_threshold_pps: 0 }",
	     "ddos.policies[0].detection_threshold_pps: must be > 0"},
	    {"  policies:\n    - { id: p, attack_type: syn_flood, detection_threshold_pps: 1 }\n"
	     "    - { id: p, attack_type: icmp_flood, detection_threshold_pps: 1 }",
	     "duplicate policy id 'p'"},
	    {"  policies:\n    - { id: p, attack_type: syn_flood, detection_threshold_pps: 1,"
	     " mitigation_action: nuke }",
	     "mitigation_action"},
	    {"  policies:\n    - { id: p, attack_type: syn_flood, detection_threshold_pps: 1,"
	     " country_thresholds: { F1: 3 } }",
	     "invalid country code 'F1'"},
	    {"  policies:\n    - { attack_type: syn_flood, detection_threshold_pps: 1 }",
	     "missing field `id`"},
	    {"  amplification_protection: { enabled: true, ports: [ { port: 0 } ] }",
	     "ddos.amplification_protection.ports[0].port: must be > 0"},
	};
	char yaml[1024], err[1024];
	struct es_config *c;
	json_t *j, *d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), MIN_AGENT "ddos:\n  enabled: true\n%s\n", bad[i].yaml);
		c = unit_cfg(yaml, err, sizeof(err));
		cr_expect_null(c, "%s accepted", bad[i].yaml);
		cr_expect(strstr(err, bad[i].want), "got %s, want %s", err, bad[i].want);
		es_config_put(c);
	}
	snprintf(yaml, sizeof(yaml),
		 MIN_AGENT
		 "ddos:\n  enabled: true\n  syn_protection: { enabled: true, "
		 "threshold_pps: 2000 }\n  amplification_protection: { enabled: true, "
		 "ports: [ { port: 123, max_pps: 50 } ] }\n  policies:\n    - { id: g, "
		 "attack_type: SynFlood, detection_threshold_pps: 500, mitigation_action: "
		 "drop, auto_block_duration_secs: 600 }\n");
	c = unit_cfg(yaml, err, sizeof(err));
	cr_assert(c, "%s", err);
	j = es_config_to_json(c);
	d = json_object_get(j, "ddos");
	cr_expect_eq(json_integer_value(
			 json_object_get(json_object_get(d, "syn_protection"), "threshold_pps")),
		     2000);
	cr_expect(
	    json_is_true(json_object_get(json_object_get(d, "syn_protection"), "threshold_mode")));
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "icmp_protection"),
							"max_payload_size")),
		     64);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "connection_tracking"),
							"ack_threshold")),
		     200);
	cr_expect_str_eq(
	    json_string_value(json_object_get(json_array_get(json_object_get(d, "policies"), 0),
					      "mitigation_action")),
	    "block");
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(d, "policies"), 0), "attack_type")),
			 "synflood");
	json_decref(j);
	es_config_put(c);
}

Test(ddos_detect, short_test_ticks_keep_rates_per_second)
{
	struct ddos_policy p = pol("syn", DDOS_SYN_FLOOD, 500);
	struct ddos_detector d = {.tick_ns = 100000000}; /* 100 ms */
	struct trace tr = {0};

	second(&d, &p, 1, DDOS_SYN_FLOOD, 100, &tr); /* 100 in 100 ms = 1000/s */
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->current_pps, 300);
	second(&d, &p, 1, DDOS_SYN_FLOOD, 100, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->current_pps, 510);
	second(&d, &p, 1, DDOS_SYN_FLOOD, 100, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->status, DDOS_DETECTING);
	second(&d, &p, 1, DDOS_SYN_FLOOD, 100, &tr);
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->status, DDOS_ACTIVE, "tick counts unchanged");
	cr_expect_eq(d.active[DDOS_SYN_FLOOD]->peak_pps, 759);
	ddos_det_reset(&d);
	cr_expect_eq(d.tick_ns, 100000000, "the tick length survives a reset");
}
