// SPDX-License-Identifier: AGPL-3.0-only
/* The ratelimit section and rule bodies: defaults, aliases, every rejection
 * with its key path, the kernel value encoding, and the REST error model. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "abi/ratelimit.h"
#include "api/http.h"
#include "domains/ratelimit/ratelimit.h"
#include "unit.h"

extern const struct es_route rl_routes[];

static struct es_config *load(const char *section, char *err, size_t len)
{
	char yaml[4096];

	snprintf(yaml, sizeof(yaml), MIN_AGENT "%s", section);
	return unit_cfg(yaml, err, len);
}

Test(ratelimit_cfg, defaults_and_effective_json)
{
	char err[1024];
	struct es_config *c = load("", err, sizeof(err));
	json_t *j;

	cr_assert(c, "%s", err);
	j = es_config_to_json(c);
	cr_expect_str_eq(json_string_value(
			     json_object_get(json_object_get(j, "ratelimit"), "default_algorithm")),
			 "token_bucket");
	cr_expect_eq(
	    json_integer_value(json_object_get(json_object_get(j, "ratelimit"), "default_rate")),
	    1000);
	cr_expect_eq(
	    json_integer_value(json_object_get(json_object_get(j, "ratelimit"), "default_burst")),
	    2000);
	cr_expect(json_is_false(json_object_get(json_object_get(j, "ratelimit"), "enabled")));
	json_decref(j);
	es_config_put(c);
}

Test(ratelimit_cfg, aliases_are_normalised)
{
	static const struct {
		const char *yaml, *key, *want;
	} cases[] = {
	    {"action: deny", "action", "drop"},
	    {"action: block", "action", "drop"},
	    {"action: allow", "action", "pass"},
	    {"scope: per-ip", "scope", "source_ip"},
	    {"scope: per_ip", "scope", "source_ip"},
	    {"scope: GLOBAL", "scope", "global"},
	    {"algorithm: syncookie", "algorithm", "syn_cookie"},
	    {"algorithm: leakybucket", "algorithm", "leaky_bucket"},
	    {"algorithm: Fixed_Window", "algorithm", "fixed_window"},
	    {"src_ip: 203.0.113.7", "src_ip", "203.0.113.7/32"},
	    {"src_ip: 2001:db8::/32", "src_ip", "2001:db8::/32"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sec[512], err[1024];
		struct es_config *c;
		json_t *j, *rule;

		snprintf(sec, sizeof(sec),
			 "ratelimit:\n  rules:\n    - { id: r, rate: 5, burst: 5, %s }\n",
			 cases[i].yaml);
		c = load(sec, err, sizeof(err));
		cr_assert(c, "%s: %s", cases[i].yaml, err);
		j = es_config_to_json(c);
		rule = json_array_get(json_object_get(json_object_get(j, "ratelimit"), "rules"), 0);
		cr_expect_str_eq(json_string_value(json_object_get(rule, cases[i].key)),
				 cases[i].want, "%s", cases[i].yaml);
		json_decref(j);
		es_config_put(c);
	}
}

Test(ratelimit_cfg, rejections_name_the_key_and_line)
{
	static const struct {
		const char *rules, *want;
	} cases[] = {
	    {"- { id: a, rate: 0, burst: 1 }",
	     "validation error: ratelimit.rules[0].rate: invalid rate: must be between 1 and "
	     "1000000000 (got 0) at line 6 column 16"},
	    {"- { id: a, rate: 1000000001, burst: 1 }", "ratelimit.rules[0].rate: invalid rate"},
	    {"- { id: a, rate: 1, burst: 0 }", "ratelimit.rules[0].burst: invalid burst"},
	    {"- { id: a, rate: 1, burst: 1, src_ip: 10.0.0.0/40 }",
	     "invalid CIDR notation '10.0.0.0/40': prefix length 40 exceeds maximum 32 for IPv4"},
	    {"- { id: 'a b', rate: 1, burst: 1 }", "ratelimit.rules[0].id: invalid id 'a b'"},
	    {"- { id: a, rate: 1, burst: 1 }\n    - { id: a, rate: 2, burst: 2 }",
	     "ratelimit.rules[1].id: duplicate rule id 'a'"},
	    {"- { id: a, rate: 1, burst: 1, algorithm: magic }",
	     "invalid value 'magic' for field 'ratelimit.rules[0].algorithm'"},
	    {"- { id: a, rate: x, burst: 1 }", "invalid type: string \"x\", expected u64"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sec[512], err[1024];
		struct es_config *c;

		snprintf(sec, sizeof(sec), "ratelimit:\n  enabled: true\n  rules:\n    %s\n",
			 cases[i].rules);
		c = load(sec, err, sizeof(err));
		cr_expect_null(c, "%s accepted", cases[i].rules);
		cr_expect(strstr(err, cases[i].want), "%s\n  got:  %s\n  want: %s", cases[i].rules,
			  err, cases[i].want);
		es_config_put(c);
	}
}

Test(ratelimit_cfg, tiers_are_validated)
{
	static const struct {
		const char *tier, *want;
	} cases[] = {
	    {"{ tier_id: 16, country_codes: [FR], rate: 1, burst: 1 }", "tier_id"},
	    {"{ tier_id: 1, country_codes: [], rate: 1, burst: 1 }", "country_codes: must not"},
	    {"{ tier_id: 1, country_codes: [FRA], rate: 1, burst: 1 }", "invalid country code"},
	    {"{ tier_id: 1, country_codes: [FR], rate: 0, burst: 1 }", "invalid rate"},
	    {"{ tier_id: 1, country_codes: [FR], rate: 1, burst: 0 }", "invalid burst"},
	};
	char err[1024];
	struct es_config *c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sec[512];

		snprintf(sec, sizeof(sec), "ratelimit:\n  country_tiers:\n    - %s\n",
			 cases[i].tier);
		c = load(sec, err, sizeof(err));
		cr_expect_null(c, "%s accepted", cases[i].tier);
		cr_expect(strstr(err, cases[i].want), "%s: %s", cases[i].tier, err);
		es_config_put(c);
	}
	c = load("ratelimit:\n  country_tiers:\n    - { tier_id: 3, country_codes: [FR, de], rate: "
		 "5, burst: 9, algorithm: fixed_window }\n",
		 err, sizeof(err));
	cr_expect(c, "%s", err);
	es_config_put(c);
}

Test(ratelimit_cfg, unknown_default_algorithm_falls_back_with_a_warning)
{
	char err[1024];
	struct es_config *c =
	    load("ratelimit:\n  default_algorithm: quantum\n  mode: legacy\n", err, sizeof(err));
	json_t *j;
	int warned = 0;

	cr_assert(c, "%s", err);
	for (size_t i = 0; i < c->n_warnings; i++)
		warned += strstr(c->warnings[i], "default_algorithm") != NULL;
	cr_expect_eq(warned, 1);
	j = es_config_to_json(c);
	cr_expect_str_eq(json_string_value(
			     json_object_get(json_object_get(j, "ratelimit"), "default_algorithm")),
			 "token_bucket");
	json_decref(j);
	es_config_put(c);
}

Test(ratelimit_cfg, kernel_value_encoding)
{
	struct es_rl_config v;

	es_rl_config_fill(&v, 1000, 2000, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP,
			  ES_RL_SCOPE_SOURCE, 7);
	cr_expect_eq(v.ns_per_token, 1000000);
	cr_expect_eq(v.burst, 2000);
	cr_expect_eq(v.tag, 7);
	es_rl_config_fill(&v, 300, 300, ES_RL_ALGO_SLIDING_WINDOW, ES_RL_ACT_PASS,
			  ES_RL_SCOPE_GLOBAL, 1);
	cr_expect_eq(v.ns_per_token, 300, "window algorithms store the rate");
	cr_expect_eq(v.action, ES_RL_ACT_PASS);
	cr_expect_eq(v.scope, ES_RL_SCOPE_GLOBAL);
	es_rl_config_fill(&v, 1000000000, 1, ES_RL_ALGO_SYN_COOKIE, ES_RL_ACT_DROP,
			  ES_RL_SCOPE_SOURCE, 1);
	cr_expect_eq(v.ns_per_token, 1);
}

static void post(const char *body, struct es_resp *r)
{
	memset(r, 0, sizeof(*r));
	es_http_dispatch("POST", "/api/v1/ratelimit/rules", NULL, "application/json", body,
			 strlen(body), r);
}

Test(ratelimit_rest, create_list_delete_and_errors)
{
	struct es_resp r;

	es_http_add_routes(rl_routes);
	post("{\"id\":\"a\",\"rate\":10,\"burst\":20,\"src_ip\":\"198.51.100.0/24\"}", &r);
	cr_expect_eq(r.status, 201);
	cr_expect_str_eq(json_string_value(json_object_get(r.json, "src_ip")), "198.51.100.0/24");
	es_resp_clear(&r);
	post("{\"id\":\"a\",\"rate\":10,\"burst\":20}", &r);
	cr_expect_eq(r.status, 409);
	es_resp_clear(&r);
	post("{\"id\":\"b\",\"rate\":10}", &r);
	cr_expect_eq(r.status, 422);
	cr_expect_str_eq(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
	    "missing field `burst`");
	es_resp_clear(&r);
	post("{\"id\":\"b\",\"rate\":10,\"burst\":0}", &r);
	cr_expect_eq(r.status, 400);
	cr_expect_str_eq(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
	    "invalid rule: burst: invalid burst: must be > 0");
	es_resp_clear(&r);
	memset(&r, 0, sizeof(r));
	es_http_dispatch("GET", "/api/v1/ratelimit/rules", NULL, NULL, NULL, 0, &r);
	cr_expect_eq(json_array_size(r.json), 1);
	es_resp_clear(&r);
	es_http_dispatch("DELETE", "/api/v1/ratelimit/rules/a", NULL, NULL, NULL, 0, &r);
	cr_expect_eq(r.status, 204);
	es_resp_clear(&r);
	es_http_dispatch("DELETE", "/api/v1/ratelimit/rules/a", NULL, NULL, NULL, 0, &r);
	cr_expect_eq(r.status, 404);
	es_resp_clear(&r);
}

/* State tables: full size up to 8 CPUs, then halved so ~128 Ki sources per table in all. */
Test(ratelimit_tables, sets_per_cpu_stay_bounded_on_many_cores)
{
	cr_expect_eq(es_rl_sets_for(1), ES_RL_SETS);
	cr_expect_eq(es_rl_sets_for(2), ES_RL_SETS);
	cr_expect_eq(es_rl_sets_for(8), ES_RL_SETS);
	cr_expect_eq(es_rl_sets_for(9), ES_RL_SETS / 2);
	cr_expect_eq(es_rl_sets_for(16), ES_RL_SETS / 2);
	cr_expect_eq(es_rl_sets_for(64), ES_RL_SETS / 8);
	cr_expect_eq(es_rl_sets_for(4096), ES_RL_SETS_MIN, "never below the floor");
	for (int n = 1; n <= 256; n++) {
		__u32 s = es_rl_sets_for(n);

		cr_expect_eq(s & (s - 1), 0, "%d CPUs: a power of two", n);
		cr_expect_geq((__u64)s * ES_RL_WAYS * (__u64)n, 65536,
			      "%d CPUs: the spec's capacity", n);
	}
}

/* A bucket holds at least one tick's worth, or each tick would spill what it brought. */
Test(ratelimit_tables, buckets_hold_at_least_one_tick)
{
	static const struct {
		__u64 rate, burst, tick, want;
		__u8 algo;
		const char *why;
	} cases[] = {
	    {1000, 1, 4000000, 4, ES_RL_ALGO_TOKEN_BUCKET, "1 000/s, burst 1: four tokens a tick"},
	    {300, 1, 4000000, 2, ES_RL_ALGO_TOKEN_BUCKET, "300/s: 1.2 tokens a tick, rounded up"},
	    {1000, 50, 4000000, 50, ES_RL_ALGO_TOKEN_BUCKET,
	     "a burst above a tick's worth is kept"},
	    {1000, 1, 4000000, 4, ES_RL_ALGO_LEAKY_BUCKET, "leaky: drains four a tick"},
	    {1000, 1, 4000000, 1, ES_RL_ALGO_FIXED_WINDOW, "windows count, they hold nothing"},
	    {1000, 1, 0, 1, ES_RL_ALGO_TOKEN_BUCKET, "an exact clock needs no floor"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct es_rl_config c;

		es_rl_config_fill(&c, cases[i].rate, cases[i].burst, cases[i].algo, ES_RL_ACT_DROP,
				  0, 0);
		es_rl_config_tick_floor(&c, cases[i].tick);
		cr_expect_eq(c.burst, cases[i].want, "%s", cases[i].why);
	}
}
