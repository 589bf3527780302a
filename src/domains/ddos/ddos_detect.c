// SPDX-License-Identifier: AGPL-3.0-only
/*
 * DDoS policies and the attack detector (network.md §7.3). One tracker per
 * attack type; each 1 s tick folds the events of the last second into an
 * integer EWMA (alpha 0.3) and moves the state machine by consecutive ticks
 * above or below the policy threshold.
 */
#include "domains/ddos/ddos.h"
#include "abi/common.h"
#include "abi/ddos.h"
#include "core/clock.h"
#include "core/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const attack_in[] = {
    "syn_flood",  "synflood", "udp_amplification", "udpamplification", "icmp_flood", "icmpflood",
    "rst_flood",  "rstflood", "fin_flood",	   "finflood",	       "ack_flood",  "ackflood",
    "volumetric", NULL,
};
static const char *const attack_out[DDOS_ATTACK__COUNT] = {
    "synflood", "udpamplification", "icmpflood", "rstflood", "finflood", "ackflood", "volumetric",
};
static const char *const mit_in[] = {"alert", "log",  "throttle", "ratelimit",
				     "block", "drop", "deny",	  NULL};
static const enum ddos_mitigation mit_map[] = {
    DDOS_MIT_ALERT, DDOS_MIT_ALERT, DDOS_MIT_THROTTLE, DDOS_MIT_THROTTLE,
    DDOS_MIT_BLOCK, DDOS_MIT_BLOCK, DDOS_MIT_BLOCK,
};
static const char *const policy_keys[] = {
    "id",
    "attack_type",
    "detection_threshold_pps",
    "mitigation_action",
    "auto_block_duration_secs",
    "enabled",
    "country_thresholds",
    NULL,
};

const char *ddos_attack_name(enum ddos_attack a)
{
	return a < DDOS_ATTACK__COUNT ? attack_out[a] : "volumetric";
}

const char *ddos_status_name(enum ddos_status s)
{
	static const char *const n[] = {"detecting", "active", "mitigated", "expired", "expired"};

	return s <= DDOS_DISCARDED ? n[s] : "expired";
}

const char *ddos_mitigation_name(enum ddos_mitigation m)
{
	static const char *const n[] = {"alert", "throttle", "block"};

	return m <= DDOS_MIT_BLOCK ? n[m] : "alert";
}

int ddos_event_attack(uint16_t type, uint8_t action)
{
	switch (type) {
	case ES_EV_DDOS_SYN: return DDOS_SYN_FLOOD;
	case ES_EV_DDOS_ICMP: return DDOS_ICMP_FLOOD;
	case ES_EV_DDOS_AMP: return DDOS_UDP_AMPLIFICATION;
	case ES_EV_DDOS_CONNTRACK:
		switch (action) {
		case ES_DDOS_CT_HALF_OPEN: return DDOS_SYN_FLOOD;
		case ES_DDOS_CT_RST: return DDOS_RST_FLOOD;
		case ES_DDOS_CT_FIN: return DDOS_FIN_FLOOD;
		case ES_DDOS_CT_ACK: return DDOS_ACK_FLOOD;
		}
		return -1;
	default: return -1;
	}
}

/* ---- policies ------------------------------------------------------------------ */

void ddos_policy_clear(struct ddos_policy *p)
{
	free(p->id);
	free(p->cc);
	memset(p, 0, sizeof(*p));
}

int ddos_policy_parse(struct es_cfg *c, const json_t *obj, const char *path, bool rest,
		      struct ddos_policy *out)
{
	json_t *cct;
	int at, mit;

	memset(out, 0, sizeof(*out));
	if (es_cfg_item(c, obj, path, "DdosPolicy"))
		return -EINVAL;
	es_cfg_check_keys(c, obj, path, policy_keys);
	if (es_cfg_max_len(c, obj, path, "attack_type", 128) ||
	    es_cfg_max_len(c, obj, path, "mitigation_action", 128) ||
	    es_cfg_rule_id(c, obj, path, &out->id))
		goto fail;
	if (!json_object_get(obj, "attack_type") ||
	    json_is_null(json_object_get(obj, "attack_type"))) {
		es_cfg_fail(c, ES_ERR_PARSE, obj, path, "", SIZE_MAX,
			    "missing field `attack_type`");
		goto fail;
	}
	if (es_cfg_enum(c, obj, path, "attack_type", attack_in, &at, 0) ||
	    es_cfg_req_u64(c, obj, path, "detection_threshold_pps", &out->threshold_pps) ||
	    es_cfg_enum(c, obj, path, "mitigation_action", mit_in, &mit, 0) ||
	    es_cfg_u64(c, obj, path, "auto_block_duration_secs", &out->block_secs,
		       rest ? 0 : 300) ||
	    es_cfg_bool(c, obj, path, "enabled", &out->enabled, true) ||
	    es_cfg_expect_object(c, obj, path, "country_thresholds", &cct))
		goto fail;
	out->attack = (enum ddos_attack)(at / 2);
	out->action = mit_map[mit];
	if (!out->threshold_pps) {
		es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "detection_threshold_pps", 0,
			    "must be > 0");
		goto fail;
	}
	if (cct && json_object_size(cct)) {
		const char *k;
		json_t *v;
		char cp[300];

		out->cc = calloc(json_object_size(cct), sizeof(*out->cc));
		if (!out->cc)
			goto fail;
		es_path_key(cp, sizeof(cp), path, "country_thresholds");
		json_object_foreach (cct, k, v) {
			struct ddos_country_threshold *t = &out->cc[out->n_cc];

			if (!es_country_code_valid(k)) {
				es_cfg_fail(c, ES_ERR_VALIDATION, cct, cp, k, 0,
					    "invalid country code '%s'", k);
				goto fail;
			}
			if (es_cfg_u64(c, cct, cp, k, &t->pps, 0))
				goto fail;
			if (!t->pps) {
				es_cfg_fail(c, ES_ERR_VALIDATION, cct, cp, k, 0, "must be > 0");
				goto fail;
			}
			t->cc[0] = (char)(k[0] & ~0x20);
			t->cc[1] = (char)(k[1] & ~0x20);
			out->n_cc++;
		}
	}
	return 0;
fail:
	ddos_policy_clear(out);
	return -EINVAL;
}

json_t *ddos_policy_json(const struct ddos_policy *p)
{
	return json_pack("{s:s,s:s,s:I,s:s,s:I,s:b}", "id", p->id, "attack_type",
			 ddos_attack_name(p->attack), "detection_threshold_pps",
			 (json_int_t)p->threshold_pps, "mitigation_action",
			 ddos_mitigation_name(p->action), "auto_block_duration_secs",
			 (json_int_t)p->block_secs, "enabled", p->enabled);
}

const struct ddos_policy *ddos_policy_for(const struct ddos_policy *p, size_t n, enum ddos_attack a)
{
	const struct ddos_policy *best = NULL;

	for (size_t i = 0; i < n; i++)
		if (p[i].enabled && p[i].attack == a && (!best || strcmp(p[i].id, best->id) < 0))
			best = &p[i];
	return best;
}

/* ---- detector ------------------------------------------------------------------- */

void ddos_det_event(struct ddos_detector *d, enum ddos_attack a, const uint8_t src[16],
		    uint64_t now_ns)
{
	struct ddos_tracker *t;
	size_t i;

	if (a >= DDOS_ATTACK__COUNT)
		return;
	t = d->active[a];
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return;
		snprintf(t->id, sizeof(t->id), "ddos-%llu", (unsigned long long)++d->next_id);
		t->attack = a;
		t->status = DDOS_DETECTING;
		t->start_ns = now_ns;
		d->active[a] = t;
	}
	t->window++;
	t->total++;
	t->last_seen_ns = now_ns;
	for (i = 0; i < t->n_src; i++) {
		if (!memcmp(t->src[i].addr, src, 16)) {
			t->src[i].count++;
			return;
		}
	}
	if (t->n_src < DDOS_MAX_SOURCES) {
		memcpy(t->src[t->n_src].addr, src, 16);
		t->src[t->n_src++].count = 1;
	}
}

static uint64_t threshold_of(const struct ddos_tracker *t, const struct ddos_policy *p)
{
	if (!p)
		return UINT64_MAX;
	for (size_t i = 0; t->country[0] && i < p->n_cc; i++)
		if (!strcmp(p->cc[i].cc, t->country))
			return p->cc[i].pps;
	return p->threshold_pps;
}

static void retire(struct ddos_detector *d, struct ddos_tracker *t)
{
	if (t->status == DDOS_EXPIRED) {
		d->history[d->hist_next] = *t;
		d->hist_next = (d->hist_next + 1) % DDOS_HISTORY;
		if (d->hist_n < DDOS_HISTORY)
			d->hist_n++;
		d->total_mitigated++;
	}
	d->active[t->attack] = NULL;
	free(t);
}

void ddos_det_tick(struct ddos_detector *d, const struct ddos_policy *pols, size_t n_pols,
		   ddos_transition_fn fn, void *arg)
{
	for (int a = 0; a < DDOS_ATTACK__COUNT; a++) {
		struct ddos_tracker *t = d->active[a];
		const struct ddos_policy *p;
		enum ddos_status from;
		bool above;

		if (!t)
			continue;
		p = ddos_policy_for(pols, n_pols, t->attack);
		/* Events of this tick as a per-second rate (ticks are shorter under the
		 * test hook EBPFSENTINEL_DDOS_TICK_MS). */
		if (d->tick_ns && d->tick_ns != ES_NS_PER_SEC)
			t->window = t->window * ES_NS_PER_SEC / d->tick_ns;
		t->current_pps = (3 * t->window + 7 * t->current_pps) / 10;
		t->window = 0;
		if (t->current_pps > t->peak_pps)
			t->peak_pps = t->current_pps;
		above = t->current_pps >= threshold_of(t, p);
		if (above) {
			t->above++;
			t->below = 0;
		} else {
			t->below++;
			t->above = 0;
		}
		from = t->status;
		switch (t->status) {
		case DDOS_DETECTING:
			if (t->above >= DDOS_TICKS_TO_ACTIVE)
				t->status = DDOS_ACTIVE;
			else if (t->below >= DDOS_TICKS_TO_EXPIRED)
				t->status = DDOS_DISCARDED;
			break;
		case DDOS_ACTIVE:
			if (t->below >= DDOS_TICKS_TO_MITIGATED)
				t->status = DDOS_MITIGATED;
			break;
		case DDOS_MITIGATED:
			if (t->above >= DDOS_TICKS_TO_ACTIVE)
				t->status = DDOS_ACTIVE;
			else if (t->below >= DDOS_TICKS_TO_EXPIRED)
				t->status = DDOS_EXPIRED;
			break;
		default: break;
		}
		if (t->status == from) {
			if (fn && t->status == DDOS_ACTIVE)
				fn(t, from, p, arg); /* still active: new sources to mitigate */
			continue;
		}
		if (fn)
			fn(t, from, p, arg);
		if (t->status == DDOS_EXPIRED || t->status == DDOS_DISCARDED)
			retire(d, t);
	}
}

void ddos_det_reset(struct ddos_detector *d)
{
	uint64_t tick_ns = d->tick_ns;

	for (int a = 0; a < DDOS_ATTACK__COUNT; a++)
		free(d->active[a]);
	memset(d, 0, sizeof(*d));
	d->tick_ns = tick_ns;
}

json_t *ddos_tracker_json(const struct ddos_tracker *t)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "id", t->id, "attack_type",
			 ddos_attack_name(t->attack), "status", ddos_status_name(t->status),
			 "start_time_ns", (json_int_t)t->start_ns, "peak_pps",
			 (json_int_t)t->peak_pps, "current_pps", (json_int_t)t->current_pps,
			 "total_packets", (json_int_t)t->total, "source_count",
			 (json_int_t)t->n_src);
}

json_t *ddos_history_json(const struct ddos_detector *d, size_t limit)
{
	json_t *a = json_array();

	for (size_t i = 0; i < d->hist_n && i < limit; i++) {
		size_t k = (d->hist_next + DDOS_HISTORY - 1 - i) % DDOS_HISTORY;

		json_array_append_new(a, ddos_tracker_json(&d->history[k]));
	}
	return a;
}
