// SPDX-License-Identifier: AGPL-3.0-only
/* The audit stores (interfaces.md §8): retention by count and age, queries, versions. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/domain.h"
#include "core/log.h"
#include "domains/audit/audit.h"
#include "domains/audit/store.h"
#include "unit.h"

extern const struct es_domain es_domain_audit;

#define DAY_NS (86400ull * 1000000000ull)

static char dir[64];

static void mkdir_tmp(void)
{
	es_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
	snprintf(dir, sizeof(dir), "/tmp/es-audit-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(audit, .init = mkdir_tmp, .fini = rm_tmp);

static struct audit_log *open_log(void)
{
	char p[128];
	struct audit_log *l;

	snprintf(p, sizeof(p), "%s/audit.db", dir);
	l = audit_log__open(p);
	cr_assert_not_null(l);
	return l;
}

static void add(struct audit_log *l, uint64_t ts, const char *comp, const char *action,
		const char *rule, uint64_t max)
{
	struct audit_rec r;

	cr_assert_eq(
	    audit_rec_fill(&r,
			   &(struct es_audit_entry){
			       .component = comp, .action = action, .rule_id = rule, .detail = "d"},
			   ts),
	    0);
	cr_assert_eq(audit_log_append(l, &r, 1, max), 0);
	audit_rec_clear(&r);
}

static uint64_t count(struct audit_log *l, const struct audit_query *q, json_t **out)
{
	json_t *e;
	uint64_t total;

	cr_assert_eq(audit_log_query(l, q, &e, &total), 0);
	if (out)
		*out = e;
	else
		json_decref(e);
	return total;
}

Test(audit, size_bound_evicts_oldest_first)
{
	struct audit_log *l = open_log();
	struct audit_query q = {.limit = 1000};
	json_t *e;

	for (int i = 1; i <= 12; i++)
		add(l, (uint64_t)i * 1000, "firewall", "drop", "r", 5);
	cr_expect_eq(count(l, &q, &e), 5);
	cr_expect_eq(json_array_size(e), 5);
	/* Newest first: 12000 … 8000 survive. */
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(e, 0), "timestamp_ns")),
		     12000);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(e, 4), "timestamp_ns")),
		     8000);
	json_decref(e);
	audit_log__free(l);
}

Test(audit, age_bound_purges_with_a_fake_clock)
{
	struct audit_log *l = open_log();
	struct audit_query q = {.limit = 1000};
	uint64_t now = 400 * DAY_NS;

	add(l, now - 91 * DAY_NS, "ids", "alert", "old", 100);
	add(l, now - 90 * DAY_NS - 1, "ids", "alert", "old", 100);
	add(l, now - 90 * DAY_NS, "ids", "alert", "edge", 100);
	add(l, now - DAY_NS, "ids", "alert", "new", 100);
	cr_expect_eq(audit_log_purge(l, now, 90), 2);
	cr_expect_eq(count(l, &q, NULL), 2);
	/* 0 days: no age bound. */
	cr_expect_eq(audit_log_purge(l, now + 1000 * DAY_NS, 0), 0);
	cr_expect_eq(count(l, &q, NULL), 2);
	audit_log__free(l);
}

Test(audit, query_filters_paging_and_total_before_filtering)
{
	struct audit_log *l = open_log();
	struct audit_query q = {.limit = 1000, .component = "config"};
	json_t *e;

	add(l, 100, "config", "rule_added", "fw-1", 100);
	add(l, 200, "config", "rule_removed", "fw-1", 100);
	add(l, 300, "ids", "alert", "ids-1", 100);
	add(l, 400, "config", "config_changed", "firewall-config", 100);
	cr_expect_eq(count(l, &q, &e), 4, "total counts every stored entry");
	cr_expect_eq(json_array_size(e), 3);
	json_decref(e);
	q = (struct audit_query){.limit = 1000, .action = "rule_removed"};
	count(l, &q, &e);
	cr_expect_eq(json_array_size(e), 1);
	json_decref(e);
	q = (struct audit_query){.limit = 1000, .rule_id = "fw-1", .from_ns = 150};
	count(l, &q, &e);
	cr_expect_eq(json_array_size(e), 1);
	json_decref(e);
	q = (struct audit_query){.limit = 1000, .from_ns = 200, .to_ns = 300};
	count(l, &q, &e);
	cr_expect_eq(json_array_size(e), 2);
	json_decref(e);
	q = (struct audit_query){.limit = 2, .offset = 1};
	count(l, &q, &e);
	cr_expect_eq(json_array_size(e), 2);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(e, 0), "timestamp_ns")),
		     300);
	json_decref(e);
	audit_log__free(l);
}

Test(audit, detail_truncated_to_512_bytes_on_a_character_boundary_and_made_valid)
{
	char big[700];
	struct audit_rec r;

	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	/* A two-byte character straddling byte 512. */
	big[511] = (char)0xC3;
	big[512] = (char)0xA9;
	cr_assert_eq(audit_rec_fill(&r, &(struct es_audit_entry){.detail = big}, 1), 0);
	cr_expect_eq(strlen(r.detail), 511);
	audit_rec_clear(&r);
	cr_assert_eq(audit_rec_fill(&r, &(struct es_audit_entry){.detail = "ok\xff\xc0\x80!"}, 1),
		     0);
	cr_expect_str_eq(r.detail, "ok??"
				   "?!");
	cr_expect_str_eq(r.component, "");
	audit_rec_clear(&r);
}

Test(audit, rule_history_versions_and_identity)
{
	char p[128];
	struct rule_history *h;
	json_t *e;

	snprintf(p, sizeof(p), "%s/rule_changes.db", dir);
	h = rule_history__open(p);
	cr_assert_not_null(h);
	cr_assert_eq(rule_history_append(h,
					 &(struct es_rule_change){.component = "firewall",
								  .rule_id = "fw-1",
								  .action = "rule_added",
								  .actor = "api",
								  .after = "{\"id\":\"fw-1\"}"},
					 "alice", 10),
		     0);
	cr_assert_eq(rule_history_append(h,
					 &(struct es_rule_change){.component = "firewall",
								  .rule_id = "fw-1",
								  .action = "rule_removed",
								  .actor = "api",
								  .before = "{\"id\":\"fw-1\"}"},
					 NULL, 20),
		     0);
	cr_assert_eq(rule_history_query(h, "fw-1", 50, &e), 0);
	cr_assert_eq(json_array_size(e), 2);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(e, 0), "version")), 2);
	cr_expect(json_is_null(json_object_get(json_array_get(e, 0), "after")));
	cr_expect_null(json_object_get(json_array_get(e, 0), "sub"));
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(e, 1), "sub")), "alice");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(e, 1), "after")),
			 "{\"id\":\"fw-1\"}");
	json_decref(e);
	cr_assert_eq(rule_history_query(h, "nope", 50, &e), 0);
	cr_expect_eq(json_array_size(e), 0);
	json_decref(e);
	rule_history__free(h);
}

Test(audit, store_files_are_private_and_named_after_storage_path)
{
	char lp[256], hp[256];
	struct stat sb;
	struct audit_log *l;

	audit_store_paths("data/audit.redb", lp, hp, sizeof(lp));
	cr_expect_str_eq(lp, "data/audit.db");
	cr_expect_str_eq(hp, "data/rule_changes.db");
	audit_store_paths("/var/lib/es/trail", lp, hp, sizeof(lp));
	cr_expect_str_eq(lp, "/var/lib/es/trail.db");
	l = open_log();
	snprintf(lp, sizeof(lp), "%s/audit.db", dir);
	cr_assert_eq(stat(lp, &sb), 0);
	cr_expect_eq(sb.st_mode & 0777, 0600);
	audit_log__free(l);
	snprintf(lp, sizeof(lp), "%s/missing/audit.db", dir);
	cr_expect_null(audit_log__open(lp), "a missing directory is not created");
}

Test(audit, section_defaults_and_types)
{
	char err[512];
	struct es_config *c = unit_cfg(MIN_AGENT, err, sizeof(err));
	const struct audit_cfg *a;

	cr_assert_not_null(c, "%s", err);
	a = es_config_domain(c, "audit");
	cr_expect(a->enabled);
	cr_expect_eq(a->retention_days, 90);
	cr_expect_eq(a->buffer_size, 100000);
	cr_expect_str_eq(a->storage_path, "data/audit.redb");
	es_config_put(c);
	c = unit_cfg(MIN_AGENT "audit:\n  retention_days: -1\n", err, sizeof(err));
	cr_expect_null(c);
	cr_expect(strstr(err, "audit.retention_days") != NULL, "%s", err);
}

Test(audit, an_api_rule_change_is_also_an_audit_entry_with_the_acting_identity)
{
	char yaml[256], err[512];
	struct es_config *c;
	struct audit_query q = {.limit = 10};
	json_t *e, *h;
	uint64_t total;

	snprintf(yaml, sizeof(yaml), MIN_AGENT "audit:\n  storage_path: %s/audit.redb\n", dir);
	c = unit_cfg(yaml, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(es_domain_audit.start(es_config_domain(c, "audit")), 0);
	es_audit_set_actor("alice");
	es_audit_rule_change(&(struct es_rule_change){.component = "firewall",
						      .rule_id = "fw-7",
						      .action = "rule_added",
						      .actor = "api",
						      .after = "{\"id\":\"fw-7\"}"});
	es_audit_set_actor(NULL);
	/* A reload's change is not an API change: no extra entry. */
	es_audit_rule_change(&(struct es_rule_change){.component = "firewall",
						      .rule_id = "firewall-config",
						      .action = "rule_updated",
						      .actor = "config_reload"});
	audit_flush();
	cr_assert_eq(audit_log_query(audit_running_log(), &q, &e, &total), 0);
	cr_assert_eq(json_array_size(e), 1);
	h = json_array_get(e, 0);
	cr_expect_str_eq(json_string_value(json_object_get(h, "component")), "config");
	cr_expect_str_eq(json_string_value(json_object_get(h, "action")), "rule_added");
	cr_expect_str_eq(json_string_value(json_object_get(h, "rule_id")), "fw-7");
	cr_expect_str_eq(json_string_value(json_object_get(h, "detail")), "add rule fw-7 by api");
	cr_expect_str_eq(json_string_value(json_object_get(h, "sub")), "alice");
	json_decref(e);
	cr_assert_eq(rule_history_query(audit_running_history(), "fw-7", 5, &e), 0);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(e, 0), "sub")), "alice");
	json_decref(e);
	es_domain_audit.stop();
	es_config_put(c);
}
