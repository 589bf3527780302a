// SPDX-License-Identifier: AGPL-3.0-only
/* The `conntrack:` section (network.md §3.1): defaults, extension keys,
 * validation texts and the compatibility warnings. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "agent/domain.h"
#include "unit.h"

static json_t *section(const struct es_config *c)
{
	int i = es_domain_index("conntrack");

	cr_assert_geq(i, 0);
	return es_domains[i]->to_json(c->dcfg[i]);
}

Test(conntrack_cfg, defaults_when_absent)
{
	char err[1024];
	struct es_config *c = unit_cfg(MIN_AGENT, err, sizeof(err));
	json_t *s;

	cr_assert(c, "%s", err);
	s = section(c);
	cr_expect(json_is_false(json_object_get(s, "enabled")));
	cr_expect_eq(json_integer_value(json_object_get(s, "tcp_established_timeout_secs")),
		     432000);
	cr_expect_eq(json_integer_value(json_object_get(s, "tcp_syn_timeout_secs")), 120);
	cr_expect_eq(json_integer_value(json_object_get(s, "tcp_fin_timeout_secs")), 120);
	cr_expect_eq(json_integer_value(json_object_get(s, "udp_timeout_secs")), 30);
	cr_expect_eq(json_integer_value(json_object_get(s, "udp_stream_timeout_secs")), 120);
	cr_expect_eq(json_integer_value(json_object_get(s, "icmp_timeout_secs")), 30);
	cr_expect_eq(json_integer_value(json_object_get(s, "max_src_states")), 0);
	cr_expect_eq(json_integer_value(json_object_get(s, "max_src_conn_rate")), 0);
	cr_expect_eq(json_integer_value(json_object_get(s, "conn_rate_window_secs")), 5);
	cr_expect_eq(json_integer_value(json_object_get(s, "overload_ttl_secs")), 3600);
	cr_expect_eq(json_integer_value(json_object_get(s, "half_open_threshold")), 100);
	cr_expect_eq(json_integer_value(json_object_get(s, "ack_threshold")), 200);
	cr_expect_eq(c->n_warnings, 0);
	json_decref(s);
	es_config_put(c);
}

Test(conntrack_cfg, spec_example_and_compat_thresholds)
{
	char err[1024];
	struct es_config *c =
	    unit_cfg(MIN_AGENT "conntrack: { enabled: true, udp_timeout_secs: 20, max_src_states: "
			       "200, rst_threshold: 9 }\n",
		     err, sizeof(err));
	json_t *s;

	cr_assert(c, "%s", err);
	s = section(c);
	cr_expect(json_is_true(json_object_get(s, "enabled")));
	cr_expect_eq(json_integer_value(json_object_get(s, "udp_timeout_secs")), 20);
	cr_expect_eq(json_integer_value(json_object_get(s, "max_src_states")), 200);
	cr_expect_eq(json_integer_value(json_object_get(s, "rst_threshold")), 9);
	cr_assert_eq(c->n_warnings, 1, "thresholds are accepted with a warning");
	cr_expect(strstr(c->warnings[0], "conntrack.rst_threshold"), "%s", c->warnings[0]);
	json_decref(s);
	es_config_put(c);
}

Test(conntrack_cfg, rejections_name_key_and_line)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
	    {"conntrack:\n  enabled: true\n  udp_timeout_secs: 0\n",
	     "validation error: conntrack.udp_timeout_secs: must be greater than 0 at line 5"},
	    {"conntrack:\n  tcp_established_timeout_secs: 0\n",
	     "conntrack.tcp_established_timeout_secs: must be greater than 0"},
	    {"conntrack:\n  overload_ttl_secs: 0\n",
	     "conntrack.overload_ttl_secs: must be greater"},
	    {"conntrack:\n  conn_rate_window_secs: 0\n",
	     "conntrack.conn_rate_window_secs: must be greater"},
	    {"conntrack:\n  max_src_states: -1\n", "invalid value: integer `-1`"},
	    {"conntrack:\n  icmp_timeout_secs: soon\n", "invalid type: string \"soon\""},
	    {"conntrack:\n  enabled: maybe\n", "invalid type"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[512], err[1024];
		struct es_config *c;

		snprintf(yaml, sizeof(yaml), MIN_AGENT "%s", cases[i].yaml);
		c = unit_cfg(yaml, err, sizeof(err));
		cr_expect_null(c, "accepted: %s", cases[i].yaml);
		if (c) {
			es_config_put(c);
			continue;
		}
		cr_expect(strstr(err, cases[i].want), "case %zu: got '%s', want '%s'", i, err,
			  cases[i].want);
	}
}
