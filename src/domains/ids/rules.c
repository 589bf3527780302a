// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The IDS rule schema (detection.md §0.1, §1.1), shared by IPS (§2.1), plus
 * the pure decisions of §1.3: sampling and threshold emission.
 */
#include "domains/ids/ids.h"
#include "core/net.h"
#include "domains/ids/match.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const rule_keys[] = {
    "id",	 "severity",	   "description",	"mode",
    "protocol",	 "dst_port",	   "pattern",		"enabled",
    "threshold", "domain_pattern", "domain_match_mode", "country_thresholds",
    NULL,
};
static const char *const mode_names[] = {"alert", "monitor", "observe", "block", "enforce", NULL};
static const char *const proto_names[] = {"tcp", "udp", "icmp", "any", "*", NULL};
static const uint8_t proto_nums[] = {6, 17, 1, 0, 0};
static const char *const thr_names[] = {"limit", "threshold", "both", NULL};
static const char *const track_names[] = {"src_ip", "dst_ip", "both", NULL};
static const char *const dm_names[] = {"exact", "wildcard", "regex", NULL};
static const char *const sample_names[] = {"none", "random", "hash", "country_based", NULL};

int ids_proto_parse(const char *s)
{
	for (int i = 0; proto_names[i]; i++)
		if (!strcasecmp(s, proto_names[i]))
			return proto_nums[i];
	return -1;
}

const char *ids_proto_name(uint8_t p)
{
	switch (p) {
	case 0: return "any";
	case 1: return "icmp";
	case 6: return "tcp";
	case 17: return "udp";
	default: return "other";
	}
}

static int mode_from_index(int i)
{
	return i >= 3 ? IDS_MODE_BLOCK : IDS_MODE_ALERT;
}

static int sev_field(struct es_cfg *c, const json_t *obj, const char *path, enum es_severity *out)
{
	const json_t *v = json_object_get(obj, "severity");
	char full[300];

	if (!v || json_is_null(v))
		return es_cfg_fail(c, ES_ERR_PARSE, obj, path, "", SIZE_MAX,
				   "missing field `severity`");
	if (json_is_string(v) && !es_severity_parse(json_string_value(v), out))
		return 0;
	es_path_key(full, sizeof(full), path, "severity");
	es_cfg_fail(
	    c, ES_ERR_RAW, obj, path, "severity", 0,
	    "invalid value '%s' for field '%s': expected one of low, medium, high, critical",
	    json_is_string(v) ? json_string_value(v) : "?", full);
	c->err.path[0] = '\0';
	return -EINVAL;
}

static int parse_threshold(struct es_cfg *c, const json_t *node, const char *path,
			   struct ids_threshold *t)
{
	int type, track;
	uint64_t count;

	if (!json_is_object(node))
		return es_cfg_fail(c, ES_ERR_PARSE, node, path, "", SIZE_MAX,
				   "invalid type: expected struct ThresholdConfig");
	if (!json_object_get(node, "type"))
		return es_cfg_fail(c, ES_ERR_PARSE, node, path, "", SIZE_MAX,
				   "missing field `type`");
	if (es_cfg_enum(c, node, path, "type", thr_names, &type, 0) ||
	    es_cfg_req_u64(c, node, path, "count", &count) ||
	    es_cfg_req_u64(c, node, path, "window_secs", &t->window_secs) ||
	    es_cfg_enum(c, node, path, "track_by", track_names, &track, 0))
		return -EINVAL;
	if (count == 0 || count > UINT32_MAX)
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "count", 0,
				   "count must be > 0");
	if (t->window_secs == 0)
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "window_secs", 0,
				   "window_secs must be > 0");
	t->set = true;
	t->type = (enum ids_thr_type)type;
	t->count = (uint32_t)count;
	t->track_by = (enum ids_track)track;
	return 0;
}

/* §6.3: `*.suffix` or an exact name; letters, digits, '-', '_' and dots. */
static bool domain_pattern_ok(const char *p)
{
	const char *s = p;

	if (!strncmp(s, "*.", 2))
		s += 2;
	if (!*s || *s == '.' || s[strlen(s) - 1] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static int parse_rule(struct es_cfg *c, const json_t *node, const char *path, bool ips,
		      struct ids_rule *r)
{
	json_t *thr, *ct;
	int mode = -1, proto, dm;
	bool has_dp, has_dm;
	char why[512];

	if (!json_is_object(node))
		return es_cfg_fail(c, ES_ERR_PARSE, node, path, "", SIZE_MAX,
				   "invalid type: expected struct IdsRule");
	es_cfg_check_keys(c, node, path, rule_keys);
	r->domain_mode = IDS_DM_NONE;
	if (es_cfg_req_str(c, node, path, "id", &r->id))
		return -EINVAL;
	if (!r->id[0])
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "id", 0,
				   "rule id must not be empty");
	if (!es_id_valid(r->id))
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "id", 0,
				   "invalid rule id '%s': only letters, digits, '-' and '_' are "
				   "allowed",
				   r->id);
	if (sev_field(c, node, path, &r->severity) ||
	    es_cfg_str(c, node, path, "description", &r->description, "") ||
	    es_cfg_enum(c, node, path, "mode", mode_names, &mode, -1) ||
	    es_cfg_enum(c, node, path, "protocol", proto_names, &proto, 3) ||
	    es_cfg_str(c, node, path, "pattern", &r->pattern, "") ||
	    es_cfg_bool(c, node, path, "enabled", &r->enabled, true) ||
	    es_cfg_expect_object(c, node, path, "threshold", &thr))
		return -EINVAL;
	r->mode = mode < 0 ? IDS_MODE_INHERIT : mode_from_index(mode);
	r->protocol = proto_nums[proto];
	if (json_object_get(node, "dst_port") && !json_is_null(json_object_get(node, "dst_port"))) {
		if (es_cfg_u16(c, node, path, "dst_port", &r->dst_port, 0))
			return -EINVAL;
		if (r->dst_port == 0)
			return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "dst_port", 0,
					   "dst_port must be between 1 and 65535");
		r->has_port = true;
	}
	if (r->pattern[0] && ids_regex_check(r->pattern, why, sizeof(why)))
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "pattern", 0, "%s", why);
	if (thr) {
		char p[300];

		es_path_key(p, sizeof(p), path, "threshold");
		if (parse_threshold(c, thr, p, &r->threshold))
			return -EINVAL;
	}
	if (ips)
		return 0;

	has_dp = json_object_get(node, "domain_pattern") &&
		 !json_is_null(json_object_get(node, "domain_pattern"));
	has_dm = json_object_get(node, "domain_match_mode") &&
		 !json_is_null(json_object_get(node, "domain_match_mode"));
	if (has_dp != has_dm)
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path,
				   has_dp ? "domain_match_mode" : "domain_pattern", 0,
				   "domain_pattern and domain_match_mode must be set together");
	if (has_dp) {
		if (es_cfg_str(c, node, path, "domain_pattern", &r->domain_pattern, NULL) ||
		    es_cfg_enum(c, node, path, "domain_match_mode", dm_names, &dm, 0))
			return -EINVAL;
		r->domain_mode = (enum ids_domain_mode)dm;
		for (char *q = r->domain_pattern; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		if (!r->domain_pattern[0] ||
		    (dm != IDS_DM_REGEX && !domain_pattern_ok(r->domain_pattern)))
			return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "domain_pattern", 0,
					   "invalid domain pattern '%s'", r->domain_pattern);
		if (dm == IDS_DM_REGEX && ids_regex_check(r->domain_pattern, why, sizeof(why)))
			return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "domain_pattern", 0,
					   "%s", why);
	}
	if (es_cfg_expect_object(c, node, path, "country_thresholds", &ct))
		return -EINVAL;
	if (ct) {
		const char *k;
		json_t *v;
		char p[300], pk[340];
		size_t i = 0;

		es_path_key(p, sizeof(p), path, "country_thresholds");
		r->country = calloc(json_object_size(ct) + 1, sizeof(*r->country));
		if (!r->country)
			return -ENOMEM;
		json_object_foreach (ct, k, v) {
			if (strlen(k) != 2)
				return es_cfg_fail(c, ES_ERR_VALIDATION, ct, p, k, 0,
						   "country code must have 2 characters");
			memcpy(r->country[i].cc, k, 3);
			es_path_key(pk, sizeof(pk), p, k);
			if (parse_threshold(c, v, pk, &r->country[i].thr))
				return -EINVAL;
			r->n_country = ++i;
		}
	}
	return 0;
}

void ids_rules_free(struct ids_rule *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++) {
		free(r[i].id);
		free(r[i].description);
		free(r[i].pattern);
		free(r[i].domain_pattern);
		free(r[i].country);
	}
	free(r);
}

int ids_rules_parse(struct es_cfg *c, const json_t *arr, const char *path, bool ips,
		    struct ids_rule **out, size_t *n)
{
	size_t cnt = arr ? json_array_size(arr) : 0;
	struct ids_rule *r = calloc(cnt ? cnt : 1, sizeof(*r));
	json_t *seen;

	*out = NULL;
	*n = 0;
	if (!r)
		return -ENOMEM;
	seen = json_object();
	for (size_t i = 0; i < cnt; i++) {
		char p[300];

		es_path_idx(p, sizeof(p), path, i);
		if (parse_rule(c, json_array_get(arr, i), p, ips, &r[i]) ||
		    es_cfg_unique_id(c, seen, json_array_get(arr, i), p, r[i].id,
				     "duplicate rule id '%s'", r[i].id)) {
			ids_rules_free(r, i + 1);
			json_decref(seen);
			return -EINVAL;
		}
	}
	json_decref(seen);
	*out = r;
	*n = cnt;
	return 0;
}

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

int ids_rules_dup(const struct ids_rule *src, size_t n, struct ids_rule **out)
{
	struct ids_rule *r = calloc(n ? n : 1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r[i] = src[i];
		r[i].id = dup0(src[i].id);
		r[i].description = dup0(src[i].description);
		r[i].pattern = dup0(src[i].pattern);
		r[i].domain_pattern = dup0(src[i].domain_pattern);
		r[i].country = NULL;
		if (src[i].n_country) {
			r[i].country = calloc(src[i].n_country, sizeof(*r[i].country));
			if (r[i].country)
				memcpy(r[i].country, src[i].country,
				       src[i].n_country * sizeof(*r[i].country));
		}
		if (!r[i].id || !r[i].description || !r[i].pattern ||
		    (src[i].domain_pattern && !r[i].domain_pattern) ||
		    (src[i].n_country && !r[i].country)) {
			ids_rules_free(r, i + 1);
			return -ENOMEM;
		}
	}
	*out = r;
	return 0;
}

static int rate_field(struct es_cfg *c, const json_t *sec, const char *path, const char *key,
		      double *out, double def)
{
	if (es_cfg_double(c, sec, path, key, out, def))
		return -EINVAL;
	if (*out < 0.0 || *out > 1.0)
		return es_cfg_fail(c, ES_ERR_VALIDATION, sec, path, key, 0,
				   "%s must be between 0.0 and 1.0", key);
	return 0;
}

int ids_sampling_parse(struct es_cfg *c, const json_t *sec, const char *path,
		       struct ids_sampling *s)
{
	int mode;

	memset(s, 0, sizeof(*s));
	s->high_risk_rate = 1.0;
	s->default_rate = 0.1;
	if (!sec)
		return 0;
	if (!json_is_object(sec))
		return es_cfg_fail(c, ES_ERR_PARSE, sec, path, "", SIZE_MAX,
				   "invalid type: expected struct SamplingConfig");
	if (es_cfg_enum(c, sec, path, "mode", sample_names, &mode, 0) ||
	    rate_field(c, sec, path, "high_risk_rate", &s->high_risk_rate, 1.0) ||
	    rate_field(c, sec, path, "default_rate", &s->default_rate, 0.1) ||
	    es_cfg_strv(c, sec, path, "high_risk_countries", &s->high_risk_countries, NULL))
		return -EINVAL;
	s->mode = (enum ids_sample_mode)mode;
	if (s->mode == IDS_SAMPLE_RANDOM || s->mode == IDS_SAMPLE_HASH) {
		if (!json_object_get(sec, "rate"))
			return es_cfg_fail(c, ES_ERR_VALIDATION, sec, path, "rate", 0,
					   "rate is required for %s sampling",
					   sample_names[s->mode]);
	}
	return rate_field(c, sec, path, "rate", &s->rate, 1.0);
}

void ids_sampling_free(struct ids_sampling *s)
{
	es_strv_free(s->high_risk_countries);
	s->high_risk_countries = NULL;
}

json_t *ids_sampling_json(const struct ids_sampling *s)
{
	json_t *hr = json_array();

	for (char **p = s->high_risk_countries; p && *p; p++)
		json_array_append_new(hr, json_string(*p));
	return json_pack("{s:s,s:f,s:o,s:f,s:f}", "mode", sample_names[s->mode], "rate", s->rate,
			 "high_risk_countries", hr, "high_risk_rate", s->high_risk_rate,
			 "default_rate", s->default_rate);
}

static json_t *thr_json(const struct ids_threshold *t)
{
	return json_pack("{s:s,s:I,s:I,s:s}", "type", thr_names[t->type], "count",
			 (json_int_t)t->count, "window_secs", (json_int_t)t->window_secs,
			 "track_by", track_names[t->track_by]);
}

json_t *ids_rule_cfg_json(const struct ids_rule *r)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:b}", "id", r->id, "severity",
			      es_severity_name(r->severity), "description", r->description,
			      "protocol", ids_proto_name(r->protocol), "dst_port",
			      r->has_port ? json_integer(r->dst_port) : json_null(), "pattern",
			      r->pattern, "enabled", r->enabled);

	if (r->mode != IDS_MODE_INHERIT)
		json_object_set_new(o, "mode",
				    json_string(r->mode == IDS_MODE_BLOCK ? "block" : "alert"));
	if (r->threshold.set)
		json_object_set_new(o, "threshold", thr_json(&r->threshold));
	if (r->domain_pattern) {
		json_object_set_new(o, "domain_pattern", json_string(r->domain_pattern));
		json_object_set_new(o, "domain_match_mode", json_string(dm_names[r->domain_mode]));
	}
	if (r->n_country) {
		json_t *ct = json_object();

		for (size_t i = 0; i < r->n_country; i++)
			json_object_set_new(ct, r->country[i].cc, thr_json(&r->country[i].thr));
		json_object_set_new(o, "country_thresholds", ct);
	}
	return o;
}

/* ---- decisions (detection.md §1.3) ---------------------------------------------- */

static bool listed(char *const *list, const char *cc)
{
	for (; cc && list && *list; list++)
		if (!strcasecmp(*list, cc))
			return true;
	return false;
}

bool ids_sample_keep(const struct ids_sampling *s, uint32_t src0, uint32_t dst0,
		     const char *src_country)
{
	double rate;
	uint32_t h;

	switch (s->mode) {
	case IDS_SAMPLE_HASH: rate = s->rate; break;
	case IDS_SAMPLE_COUNTRY:
		rate = listed(s->high_risk_countries, src_country) ? s->high_risk_rate
								   : s->default_rate;
		break;
	default: return true; /* none; random is decided in the kernel */
	}
	if (rate >= 1.0)
		return true;
	h = (uint32_t)((uint64_t)(src0 ^ dst0) * 2654435761ull);
	return (double)h / 4294967295.0 < rate;
}

bool ids_threshold_emit(enum ids_thr_type type, uint32_t n, uint64_t count, bool *alerted)
{
	switch (type) {
	case IDS_THR_LIMIT: return count <= n;
	case IDS_THR_THRESHOLD: return count % n == 0;
	case IDS_THR_BOTH:
		if (*alerted || count < n)
			return false;
		*alerted = true;
		return true;
	}
	return false;
}
