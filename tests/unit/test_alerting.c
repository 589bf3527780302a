// SPDX-License-Identifier: AGPL-3.0-only
/* Alerting (interfaces.md §7): dedup, throttle, routing and circuit breaker
 * driven by a fake clock; the section's validation errors; the store. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "domains/alerting/alerting_int.h"
#include "unit.h"

#define S AL_NS

static struct es_alert mk(const char *rule, uint32_t src, uint16_t dport, enum es_severity sev,
			  const char *component)
{
	struct es_alert a = {0};

	snprintf(a.rule_id, sizeof(a.rule_id), "%s", rule);
	snprintf(a.component, sizeof(a.component), "%s", component);
	a.src_addr[0] = src;
	a.dst_addr[0] = 0xC6336401;
	a.dst_port = dport;
	a.protocol = 6;
	a.severity = sev;
	return a;
}

Test(alerting, dedup_window_from_first_sighting)
{
	struct al_dedup *d = al_dedup__new();
	struct es_alert a = mk("r1", 1, 22, ES_SEV_HIGH, "ids"),
			b = mk("r1", 2, 22, ES_SEV_HIGH, "ids");
	uint64_t w = 60 * S;

	cr_expect_not(al_dedup_check(d, &a, w, 0), "first sighting passes");
	cr_expect(al_dedup_check(d, &a, w, 30 * S), "duplicate inside the window");
	cr_expect(al_dedup_check(d, &a, w, 59 * S), "suppressed alerts do not extend the window");
	cr_expect_not(al_dedup_check(d, &a, w, 60 * S), "window elapsed: passes again");
	cr_expect(al_dedup_check(d, &a, w, 61 * S), "new window opened at 60 s");
	cr_expect_not(al_dedup_check(d, &b, w, 61 * S), "another source is another key");
	a.src_port = 9999; /* not part of the key */
	cr_expect(al_dedup_check(d, &a, w, 62 * S));
	cr_expect_not(al_dedup_check(d, &a, 0, 62 * S), "window 0 never suppresses");
	al_dedup_prune(d, w, 200 * S);
	cr_expect_eq(al_dedup_size(d), 0);
	al_dedup__free(d);
}

Test(alerting, throttle_fixed_window_per_rule)
{
	struct al_throttle *t = al_throttle__new();
	uint64_t w = 300 * S;
	int passed = 0;

	for (int i = 0; i < 10; i++)
		passed += !al_throttle_check(t, "r1", w, 3, (uint64_t)i * S);
	cr_expect_eq(passed, 3, "max 3 per window");
	cr_expect_not(al_throttle_check(t, "r2", w, 3, 10 * S), "per rule_id");
	cr_expect_not(al_throttle_check(t, "r1", w, 3, 300 * S), "window reopened at 300 s");
	cr_expect_not(al_throttle_check(t, "r1", w, 3, 301 * S));
	cr_expect_not(al_throttle_check(t, "r1", w, 3, 302 * S));
	cr_expect(al_throttle_check(t, "r1", w, 3, 303 * S));
	al_throttle__free(t);
}

Test(alerting, routes_match_severity_and_components)
{
	char *types[] = {"ids", "dlp", NULL};
	struct al_route all = {.min_severity = ES_SEV_LOW};
	struct al_route high_ids = {.min_severity = ES_SEV_HIGH, .event_types = types};
	struct es_alert a = mk("r", 1, 1, ES_SEV_MEDIUM, "ids");

	cr_expect(al_route_matches(&all, &a));
	cr_expect_not(al_route_matches(&high_ids, &a), "below min_severity");
	a.severity = ES_SEV_CRITICAL;
	cr_expect(al_route_matches(&high_ids, &a));
	snprintf(a.component, sizeof(a.component), "IDS");
	cr_expect_not(al_route_matches(&high_ids, &a), "event_types match exactly, case-sensitive");
	snprintf(a.component, sizeof(a.component), "ddos");
	cr_expect_not(al_route_matches(&high_ids, &a));
}

Test(alerting, breaker_opens_half_opens_and_closes)
{
	struct al_breaker b = {0};
	uint64_t t = 0;

	for (int i = 0; i < 4; i++) {
		cr_expect(al_breaker_allow(&b, t));
		al_breaker_result(&b, false, t);
	}
	cr_expect_eq(b.state, AL_BREAKER_CLOSED, "4 failures keep it closed");
	al_breaker_result(&b, true, t);
	cr_expect_eq(b.failures, 0, "a success resets the count");
	for (int i = 0; i < 5; i++)
		al_breaker_result(&b, false, t);
	cr_expect_eq(b.state, AL_BREAKER_OPEN, "5 consecutive failures open it");
	cr_expect_not(al_breaker_allow(&b, t + 59 * S), "open for 60 s");
	cr_expect(al_breaker_allow(&b, t + 60 * S), "first attempt after 60 s probes");
	cr_expect_eq(b.state, AL_BREAKER_HALF_OPEN);
	cr_expect_not(al_breaker_allow(&b, t + 61 * S), "one probe at a time");
	al_breaker_result(&b, false, t + 70 * S);
	cr_expect_eq(b.state, AL_BREAKER_OPEN, "failed probe reopens");
	cr_expect_not(al_breaker_allow(&b, t + 129 * S), "timer restarted at the failure");
	cr_expect(al_breaker_allow(&b, t + 130 * S));
	al_breaker_result(&b, true, t + 131 * S);
	cr_expect_eq(b.state, AL_BREAKER_CLOSED, "successful probe closes");
	cr_expect(al_breaker_allow(&b, t + 131 * S));
}

Test(alerting, retry_schedule_is_1_5_30_seconds)
{
	cr_expect_eq(al_default_retry_ms[0], 1000);
	cr_expect_eq(al_default_retry_ms[1], 5000);
	cr_expect_eq(al_default_retry_ms[2], 30000);
}

Test(alerting, section_validation_errors)
{
	unit_expect_cfg_error(
	    "alerting:\n  routes:\n    - {name: '', destination: log, min_severity: low}\n",
	    "validation error: alerting.routes[0].name");
	unit_expect_cfg_error(
	    "alerting:\n  routes:\n    - {name: a, destination: pager, min_severity: low}\n",
	    "invalid value 'pager' for field 'alerting.routes[0].destination': expected "
	    "one of log, email, webhook");
	unit_expect_cfg_error(
	    "alerting:\n  routes:\n    - {name: a, destination: log, min_severity: huge}\n",
	    "invalid value 'huge' for field 'alerting.routes[0].min_severity': expected "
	    "one of low, medium, high, critical");
	unit_expect_cfg_error("alerting:\n  routes:\n    - {name: a, destination: log}\n",
			      "missing field `min_severity`");
	unit_expect_cfg_error(
	    "alerting:\n  routes:\n    - {name: a, destination: webhook, min_severity: low}\n",
	    "validation error: alerting.routes[0].webhook_url: webhook route requires a "
	    "webhook_url");
	unit_expect_cfg_error(
	    "alerting:\n  routes:\n    - {name: a, destination: email, min_severity: low}\n",
	    "validation error: alerting.routes[0].email_to: email route requires an "
	    "email_to address");
	unit_expect_cfg_error(
	    "alerting:\n  routes:\n    - {name: a, destination: Email, min_severity: crit, "
	    "email_to: x@y}\n",
	    "validation error: alerting.smtp: email route requires smtp configuration");
}

Test(alerting, default_route_and_explicit_empty_list)
{
	char err[1024];
	struct es_config *c = unit_cfg(MIN_AGENT, err, sizeof(err));
	const struct al_cfg *a;

	cr_assert(c, "%s", err);
	a = es_config_domain(c, "alerting");
	cr_assert_eq(a->n_routes, 1);
	cr_expect_str_eq(a->routes[0].name, "default-log");
	cr_expect_eq(a->routes[0].dest, AL_DEST_LOG);
	cr_expect_eq(a->dedup_window_secs, 60);
	cr_expect_eq(a->throttle_window_secs, 300);
	cr_expect_eq(a->throttle_max, 100);
	cr_expect_str_eq(a->store_path, "data/alerts.db");
	es_config_put(c);
	c = unit_cfg(MIN_AGENT "alerting:\n  routes: []\naudit:\n  storage_path: /x/y/audit.redb\n",
		     err, sizeof(err));
	cr_assert(c, "%s", err);
	a = es_config_domain(c, "alerting");
	cr_expect_eq(a->n_routes, 0);
	cr_expect_str_eq(a->store_path, "/x/y/alerts.db");
	es_config_put(c);
}

Test(alerting, store_evicts_oldest_and_filters)
{
	char path[] = "/tmp/es-unit-alerts-XXXXXX";
	int fd = mkstemp(path);
	struct es_alert a = mk("r1", 1, 22, ES_SEV_HIGH, "ids");
	const struct es_alert *p = &a;
	struct al_query q = {
	    .min_severity = -1, .false_positive = -1, .to = UINT64_MAX, .limit = 10};
	char comp[64], rule[160];
	json_t *out;
	int err;

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(al_store_open(path, 90), 0);
	for (int i = 0; i < 5; i++) {
		a.timestamp_ns = 1000 + (uint64_t)i;
		snprintf(a.id, sizeof(a.id), "%d-r1", 1000 + i);
		a.severity = i < 3 ? ES_SEV_LOW : ES_SEV_CRITICAL;
		cr_assert_eq(al_store_insert(&p, 1), 0);
	}
	out = al_store_query(&q, &err);
	cr_assert_not_null(out);
	cr_expect_eq(json_integer_value(json_object_get(out, "total")), 5);
	cr_expect_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(out, "alerts"), 0), "id")),
			 "1004-r1", "newest first");
	json_decref(out);
	q.min_severity = ES_SEV_HIGH;
	q.component = "IDS";
	out = al_store_query(&q, &err);
	cr_expect_eq(json_array_size(json_object_get(out, "alerts")), 2);
	cr_expect_eq(json_integer_value(json_object_get(out, "total")), 5, "total before filters");
	json_decref(out);
	cr_expect_eq(al_store_mark_fp("1001-r1", comp, sizeof(comp), rule, sizeof(rule)), 1);
	cr_expect_str_eq(comp, "ids");
	cr_expect_eq(al_store_mark_fp("1001-r1", comp, sizeof(comp), rule, sizeof(rule)), 0,
		     "second marking has no side effect");
	cr_expect_eq(al_store_mark_fp("nope", comp, sizeof(comp), rule, sizeof(rule)), -ENOENT);
	q = (struct al_query){
	    .min_severity = -1, .false_positive = 1, .to = UINT64_MAX, .limit = 10};
	out = al_store_query(&q, &err);
	cr_expect_eq(json_array_size(json_object_get(out, "alerts")), 1);
	cr_expect(json_is_true(
	    json_object_get(json_array_get(json_object_get(out, "alerts"), 0), "false_positive")));
	json_decref(out);
	/* Capacity: the oldest timestamps go first. */
	{
		static struct es_alert many[1000];
		const struct es_alert *ptrs[1000];

		for (int b = 0; b < 51; b++) {
			for (int i = 0; i < 1000; i++) {
				many[i] = a;
				many[i].timestamp_ns = 2000 + (uint64_t)(b * 1000 + i);
				ptrs[i] = &many[i];
			}
			cr_assert_eq(al_store_insert(ptrs, 1000), 0);
		}
	}
	q = (struct al_query){
	    .min_severity = -1, .false_positive = -1, .to = UINT64_MAX, .limit = 1};
	out = al_store_query(&q, &err);
	cr_expect_eq(json_integer_value(json_object_get(out, "total")), AL_STORE_MAX);
	json_decref(out);
	q.to = 2999;
	out = al_store_query(&q, &err);
	cr_expect_eq(json_array_size(json_object_get(out, "alerts")), 0,
		     "the 1005 oldest alerts (ts 1000-1004, 2000-2999) were evicted");
	json_decref(out);
	al_store_close();
	unlink(path);
}
