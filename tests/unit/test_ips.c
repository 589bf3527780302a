// SPDX-License-Identifier: AGPL-3.0-only
/* IPS configuration (detection.md §2.1): defaults and rejections. */
#include <criterion/criterion.h>
#include <errno.h>

#include "domains/ips/ips_int.h"
#include "unit.h"

Test(ips, defaults)
{
	char err[1024];
	struct es_config *c = unit_cfg(MIN_AGENT, err, sizeof(err));
	const struct ips_cfg *i;

	cr_assert(c, "%s", err);
	i = es_config_domain(c, "ips");
	cr_expect(i->enabled);
	cr_expect_eq(i->mode, IDS_MODE_ALERT);
	cr_expect_eq(i->max_duration_secs, 3600);
	cr_expect_eq(i->threshold, 3);
	cr_expect_eq(i->max_size, 10000);
	cr_expect_eq(i->n_whitelist, 0);
	es_config_put(c);
}

Test(ips, section_parses_whitelist_rules_and_countries)
{
	char err[1024];
	struct es_config *c = unit_cfg(
	    MIN_AGENT
	    "ips:\n  mode: enforce\n  auto_blacklist_threshold: 4\n"
	    "  max_blacklist_duration_secs: 0\n"
	    "  whitelist: ['198.51.100.0/24', '2001:db8::/32', '203.0.113.7']\n"
	    "  country_thresholds: {KP: 1}\n  rules:\n"
	    "    - {id: vnc-guess, severity: high, protocol: tcp, dst_port: 5900, mode: "
	    "block, threshold: {type: limit, count: 8, window_secs: 90, track_by: both}}\n",
	    err, sizeof(err));
	const struct ips_cfg *i;

	cr_assert(c, "%s", err);
	i = es_config_domain(c, "ips");
	cr_expect_eq(i->mode, IDS_MODE_BLOCK);
	cr_expect_eq(i->threshold, 4);
	cr_expect_eq(i->max_duration_secs, 0, "0 = permanent");
	cr_assert_eq(i->n_whitelist, 3);
	cr_expect_eq(i->whitelist[1].plen, 32);
	cr_expect_eq(i->whitelist[2].plen, 32);
	cr_expect_str_eq(i->country[0].cc, "KP");
	cr_expect_eq(i->country[0].threshold, 1);
	cr_expect_str_eq(i->rules[0].id, "vnc-guess");
	cr_expect_eq(i->rules[0].threshold.track_by, IDS_TRACK_BOTH);
	es_config_put(c);
}

Test(ips, rejections)
{
	unit_expect_cfg_error("ips:\n  whitelist: ['10.0.0.0/33']\n",
			      "validation error: ips.whitelist[0]: invalid CIDR notation "
			      "'10.0.0.0/33'");
	unit_expect_cfg_error("ips:\n  whitelist: [foo]\n", "ips.whitelist[0]");
	unit_expect_cfg_error("ips:\n  rules:\n    - {id: a, severity: high, pattern: '(?=x)'}\n",
			      "ips.rules[0].pattern: invalid regex: look-around");
	unit_expect_cfg_error("ips:\n  mode: sideways\n", "invalid value 'sideways' for field "
							  "'ips.mode'");
}
