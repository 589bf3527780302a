// SPDX-License-Identifier: AGPL-3.0-only
/* The `firewall.scrub` section (network.md §5), parsed by the scrub domain. */
#include <criterion/criterion.h>

#include "agent/domain.h"
#include "unit.h"

Test(scrub_cfg, nested_section_values_and_warnings)
{
	char err[1024];
	struct es_config *c =
	    unit_cfg(MIN_AGENT "firewall:\n  scrub: { enabled: true, min_ttl: 32, max_mss: 1400, "
			       "random_ip_id: true, reassemble_fragments: true }\n",
		     err, sizeof(err));
	int i = es_domain_index("scrub");
	json_t *s;

	cr_assert(c, "%s", err);
	cr_assert_geq(i, 0);
	s = es_domains[i]->to_json(c->dcfg[i]);
	cr_expect_eq(json_integer_value(json_object_get(s, "min_ttl")), 32);
	cr_expect_eq(json_integer_value(json_object_get(s, "max_mss")), 1400);
	cr_expect(json_is_true(json_object_get(s, "random_ip_id")));
	cr_expect(json_is_false(json_object_get(s, "clear_df")));
	cr_assert_eq(c->n_warnings, 1);
	cr_expect(strstr(c->warnings[0], "firewall.scrub.reassemble_fragments"), "%s",
		  c->warnings[0]);
	json_decref(s);
	es_config_put(c);

	c = unit_cfg(MIN_AGENT "firewall:\n  scrub: { enabled: true }\n", err, sizeof(err));
	cr_assert(c, "%s", err);
	cr_expect_eq(c->n_warnings, 1, "enabled with every knob off warns");
	es_config_put(c);

	cr_expect_null(
	    unit_cfg(MIN_AGENT "firewall:\n  scrub:\n    min_ttl: 300\n", err, sizeof(err)));
	cr_expect(strstr(err, "firewall.scrub.min_ttl"), "%s", err);
	cr_expect(strstr(err, "u8"), "%s", err);
	cr_expect_null(
	    unit_cfg(MIN_AGENT "firewall:\n  scrub:\n    max_mss: 70000\n", err, sizeof(err)));
	cr_expect(strstr(err, "firewall.scrub.max_mss"), "%s", err);
}
