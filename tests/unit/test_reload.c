// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Reload apply (interfaces.md §10.2): table order, rollback newest first when
 * a domain fails, nothing audited unless every domain took the new config,
 * and one audit entry plus one rule change per domain on success.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/domain.h"
#include "core/log.h"
#include "core/audit.h"

static char calls[512];
static const char *fail_on;
static int n_entries, n_changes;
static char last_detail[256], last_after[256], last_rule[64], last_actor[32];

static int apply(const char *name, const void *o, const void *n)
{
	size_t l = strlen(calls);

	snprintf(calls + l, sizeof(calls) - l, "%s%s:%s>%s", l ? " " : "", name,
		 o ? (const char *)o : "-", (const char *)n);
	return fail_on && !strcmp(fail_on, name) && !strcmp((const char *)n, "new") ? -EIO : 0;
}

static int apply_a(const void *o, const void *n)
{
	return apply("a", o, n);
}
static int apply_b(const void *o, const void *n)
{
	return apply("b", o, n);
}
static int apply_c(const void *o, const void *n)
{
	return apply("c", o, n);
}

static json_t *summary(const void *cfg)
{
	return json_pack("{s:i,s:s}", "rule_count", 3, "mode", (const char *)cfg);
}

static json_t *to_json(const void *cfg)
{
	return json_pack("{s:[{},{}],s:s}", "rules", "mode", "alert");
}

static bool enabled(const void *cfg)
{
	return true;
}

static const struct es_domain da = {.name = "a", .apply = apply_a, .summary = summary};
static const struct es_domain dnone = {.name = "none"}; /* no apply: skipped */
static const struct es_domain db = {
    .name = "b", .apply = apply_b, .to_json = to_json, .enabled = enabled};
static const struct es_domain dc = {.name = "c", .apply = apply_c};
static const struct es_domain *const table[] = {&da, &dnone, &db, &dc};

static void on_entry(const struct es_audit_entry *e)
{
	n_entries++;
	snprintf(last_detail, sizeof(last_detail), "%s", e->detail);
	snprintf(last_rule, sizeof(last_rule), "%s", e->rule_id);
	cr_expect_str_eq(e->component, "config");
	cr_expect_str_eq(e->action, "config_changed");
}

static void on_change(const struct es_rule_change *c)
{
	n_changes++;
	snprintf(last_after, sizeof(last_after), "%s", c->after ? c->after : "null");
	snprintf(last_actor, sizeof(last_actor), "%s", c->actor);
	cr_expect_str_eq(c->action, "rule_updated");
}

static const struct es_audit_sink test_sink = {.entry = on_entry, .rule_change = on_change};

static void setup(void)
{
	es_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
	calls[0] = '\0';
	fail_on = NULL;
	n_entries = n_changes = 0;
	es_audit_set_sink(&test_sink);
}

static void teardown(void)
{
	es_audit_set_sink(NULL);
}

TestSuite(reload, .init = setup, .fini = teardown);

static void *olds[] = {"old", "old", "old", "old"};
static void *news[] = {"new", "new", "new", "new"};

Test(reload, applies_in_table_order_and_audits_each_domain)
{
	char why[256] = "";

	cr_assert_eq(es_reload_apply(table, 4, olds, news, why, sizeof(why)), 0);
	cr_expect_str_eq(calls, "a:old>new b:old>new c:old>new");
	cr_expect_eq(n_entries, 3);
	cr_expect_eq(n_changes, 3);
	/* The last one (c) has neither summary nor to_json: an empty count. */
	cr_expect_str_eq(last_detail, "c reloaded: 0 rules");
	cr_expect_str_eq(last_rule, "c-config");
	cr_expect_str_eq(last_actor, "config_reload");
}

Test(reload, summary_and_derived_summary_texts)
{
	char why[256];
	const struct es_domain *t1[] = {&da}, *t2[] = {&db};

	cr_assert_eq(es_reload_apply(t1, 1, olds, news, why, sizeof(why)), 0);
	cr_expect_str_eq(last_detail, "a reloaded: 3 rules, mode=new");
	cr_expect_str_eq(last_after, "{\"mode\":\"new\",\"rule_count\":3}");
	cr_assert_eq(es_reload_apply(t2, 1, olds, news, why, sizeof(why)), 0);
	cr_expect_str_eq(last_detail, "b reloaded: 2 rules, mode=alert");
	cr_expect_str_eq(last_after, "{\"enabled\":true,\"mode\":\"alert\",\"rule_count\":2}");
}

Test(reload, failure_rolls_back_applied_domains_newest_first_and_audits_nothing)
{
	char why[256] = "";

	fail_on = "c";
	cr_expect_eq(es_reload_apply(table, 4, olds, news, why, sizeof(why)), -EIO);
	cr_expect_str_eq(calls, "a:old>new b:old>new c:old>new b:new>old a:new>old");
	cr_expect(strstr(why, "c: apply failed") != NULL, "%s", why);
	cr_expect_eq(n_entries, 0);
	cr_expect_eq(n_changes, 0);
}

Test(reload, first_domain_failing_touches_nothing_else)
{
	char why[256] = "";

	fail_on = "a";
	cr_expect_eq(es_reload_apply(table, 4, olds, news, why, sizeof(why)), -EIO);
	cr_expect_str_eq(calls, "a:old>new");
}

Test(reload, the_real_table_follows_the_spec_order)
{
	/* interfaces.md §10.2: data-plane domains, then authentication, then alerting. */
	static const char *const order[] = {
	    "firewall", "ids",		"l7",  "ratelimit",   "ddos", "conntrack", "nat",
	    "routing",	"loadbalancer", "ips", "threatintel", "auth", "alerting"};
	int prev = -1;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int idx = es_domain_index(order[i]);

		cr_expect_gt(idx, prev, "%s is out of order", order[i]);
		prev = idx;
	}
}
