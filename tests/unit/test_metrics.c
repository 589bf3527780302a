// SPDX-License-Identifier: AGPL-3.0-only
/* Metrics exposition: Prometheus text and OpenMetrics forms of interfaces.md §6. */
#include <criterion/criterion.h>
#include <string.h>

#include "api/metrics.h"

static char *render(bool om)
{
	struct es_sb sb = ES_SB_INIT;

	es_metrics_render(&sb, om);
	return es_sb_steal(&sb);
}

Test(metrics, counter_families_and_label_escaping, .fini = es_metrics_reset)
{
	struct es_mfam *c = es_metric_family("ebpfsentinel_alerts", "Alerts produced", ES_M_COUNTER,
					     "component,severity");
	struct es_mfam *g =
	    es_metric_family("ebpfsentinel_ips_blacklist_size", "size", ES_M_GAUGE, NULL);
	char *s;

	es_metric_add(c, 1, "ids", "high");
	es_metric_add(c, 2, "ids", "high");
	es_metric_add(c, 1, "we\"ird\\", "low");
	es_metric_set(g, 7);
	s = render(false);
	cr_expect_not_null(strstr(s, "# TYPE ebpfsentinel_alerts_total counter\n"), "%s", s);
	cr_expect_not_null(
	    strstr(s, "ebpfsentinel_alerts_total{component=\"ids\",severity=\"high\"} 3\n"), "%s",
	    s);
	cr_expect_not_null(strstr(s, "component=\"we\\\"ird\\\\\""), "%s", s);
	cr_expect_not_null(strstr(s, "# TYPE ebpfsentinel_ips_blacklist_size "
				     "gauge\nebpfsentinel_ips_blacklist_size 7\n"),
			   "%s", s);
	cr_expect_null(strstr(s, "# EOF"));
	free(s);
	s = render(true);
	cr_expect_not_null(strstr(s, "# TYPE ebpfsentinel_alerts counter\n"), "%s", s);
	cr_expect_not_null(
	    strstr(s, "ebpfsentinel_alerts_total{component=\"ids\",severity=\"high\"} 3\n"));
	cr_expect(strlen(s) > 6 && !strcmp(s + strlen(s) - 6, "# EOF\n"), "%s", s);
	free(s);
}

Test(metrics, family_without_samples_emits_only_metadata, .fini = es_metrics_reset)
{
	char *s;

	es_metric_family("ebpfsentinel_false_positives", "markings", ES_M_COUNTER,
			 "component,rule_id");
	s = render(false);
	cr_expect_str_eq(s, "# HELP ebpfsentinel_false_positives_total markings\n"
			    "# TYPE ebpfsentinel_false_positives_total counter\n");
	free(s);
}

Test(metrics, mirror_stays_monotonic_across_source_resets, .fini = es_metrics_reset)
{
	struct es_mfam *f =
	    es_metric_family("ebpfsentinel_packets", "p", ES_M_COUNTER, "interface,action");
	double v;

	es_metric_mirror(f, 10, "FIREWALL_METRICS", "passed");
	es_metric_mirror(f, 15, "FIREWALL_METRICS", "passed");
	cr_expect(es_metric_get(f, &v, "FIREWALL_METRICS", "passed"));
	cr_expect_eq(v, 15);
	es_metric_mirror(f, 4, "FIREWALL_METRICS", "passed"); /* program reloaded: restarted at 0 */
	es_metric_get(f, &v, "FIREWALL_METRICS", "passed");
	cr_expect_eq(v, 19);
	es_metric_mirror(f, 4, "FIREWALL_METRICS", "passed");
	es_metric_get(f, &v, "FIREWALL_METRICS", "passed");
	cr_expect_eq(v, 19);
}

Test(metrics, histogram_buckets, .fini = es_metrics_reset)
{
	struct es_mfam *h = es_metric_family("ebpfsentinel_packet_processing_duration_seconds",
					     "latency", ES_M_HISTOGRAM, "program");
	char *s;

	es_metric_observe(h, 5e-7, "ids");
	es_metric_observe(h, 2e-3, "ids");
	es_metric_observe(h, 1.0, "ids");
	s = render(false);
	cr_expect_not_null(strstr(s, "_bucket{program=\"ids\",le=\"1e-06\"} 1\n"), "%s", s);
	cr_expect_not_null(strstr(s, "_bucket{program=\"ids\",le=\"0.01\"} 2\n"), "%s", s);
	cr_expect_not_null(strstr(s, "_bucket{program=\"ids\",le=\"+Inf\"} 3\n"), "%s", s);
	cr_expect_not_null(strstr(s, "_count{program=\"ids\"} 3\n"), "%s", s);
	free(s);
}
