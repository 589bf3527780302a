// SPDX-License-Identifier: AGPL-3.0-only
/* IDS (detection.md §0.2, §1): rule validation, the regex dialect, Vectorscan
 * agreeing with PCRE2, sampling, thresholds, the kernel table compile and the
 * engine turning events into alerts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "abi/ids.h"
#include "domains/ids/ids_int.h"
#include "unit.h"

Test(ids, rule_validation_errors)
{
	unit_expect_cfg_error(
	    "ids:\n  rules:\n    - {id: a, severity: high, threshold: {type: limit, count: "
	    "0, window_secs: 5}}\n",
	    "validation error: ids.rules[0].threshold.count: count must be > 0");
	unit_expect_cfg_error(
	    "ids:\n  rules:\n    - {id: a, severity: high, pattern: '(unclosed'}\n",
	    "validation error: ids.rules[0].pattern: invalid regex: ");
	unit_expect_cfg_error(
	    "ids:\n  rules:\n    - {id: a, severity: high, domain_pattern: x.example}\n",
	    "domain_pattern and domain_match_mode must be set together");
	unit_expect_cfg_error("ids:\n  rules:\n    - {id: a, severity: high, dst_port: 0}\n",
			      "validation error: ids.rules[0].dst_port");
	unit_expect_cfg_error(
	    "ids:\n  rules:\n    - {id: a, severity: high}\n    - {id: a, severity: low}\n",
	    "validation error: ids.rules[1].id: duplicate rule id 'a'");
	unit_expect_cfg_error("ids:\n  rules:\n    - {id: 'a b', severity: high}\n",
			      "validation error: ids.rules[0].id");
	unit_expect_cfg_error("ids:\n  rules:\n    - {id: a, severity: loud}\n",
			      "invalid value 'loud' for field 'ids.rules[0].severity'");
	unit_expect_cfg_error(
	    "ids:\n  rules:\n    - {id: a, severity: high, threshold: {type: limit, count: "
	    "1, window_secs: 0}}\n",
	    "ids.rules[0].threshold.window_secs: window_secs must be > 0");
	unit_expect_cfg_error("ids:\n  sampling: {mode: hash}\n", "ids.sampling.rate");
	unit_expect_cfg_error("ids:\n  sampling: {mode: random, rate: 1.5}\n", "ids.sampling.rate");
	unit_expect_cfg_error(
	    "ids:\n  rules:\n    - {id: a, severity: high, domain_pattern: 'a*b', "
	    "domain_match_mode: wildcard}\n",
	    "invalid domain pattern");
}

Test(ids, aliases_and_defaults)
{
	char err[1024];
	struct es_config *c = unit_cfg(
	    MIN_AGENT "ids:\n  mode: Enforce\n  rules:\n    - {id: r-1, severity: WARNING, "
		      "protocol: '*', mode: observe}\n    - {id: r_2, severity: crit, protocol: "
		      "ICMP, dst_port: 7, domain_pattern: '*.Bad.Example', domain_match_mode: "
		      "WildCard}\n",
	    err, sizeof(err));
	const struct ids_cfg *i;

	cr_assert(c, "%s", err);
	i = es_config_domain(c, "ids");
	cr_expect_eq(i->mode, IDS_MODE_BLOCK);
	cr_expect_eq(i->rules[0].severity, ES_SEV_MEDIUM);
	cr_expect_eq(i->rules[0].protocol, 0);
	cr_expect_eq(i->rules[0].mode, IDS_MODE_ALERT);
	cr_expect_eq(i->rules[1].severity, ES_SEV_CRITICAL);
	cr_expect_eq(i->rules[1].protocol, 1);
	cr_expect_eq(i->rules[1].mode, IDS_MODE_INHERIT);
	cr_expect_str_eq(i->rules[1].domain_pattern, "*.bad.example");
	cr_expect(i->load_prog);
	es_config_put(c);
}

Test(ids, regex_dialect_rejections)
{
	static const struct {
		const char *re;
		bool ok;
		const char *why;
	} cases[] = {
	    {"(?i)union\\s+select", true, NULL},
	    {"\\bselect\\b.{0,20}from", true, NULL},
	    {"[\\d]{3}-\\w+", true, NULL},
	    {"(a)\\1", false, "backreferences"},
	    {"(?P<x>a)(?P=x)", false, "backreferences"},
	    {"\\k<x>", false, "backreferences"},
	    {"foo(?=bar)", false, "look-around"},
	    {"foo(?!bar)", false, "look-around"},
	    {"(?<=a)b", false, "look-around"},
	    {"(?<!a)b", false, "look-around"},
	    {"(?>ab)", false, "atomic"},
	    {"(a|(?R))", false, "recursion"},
	    {"[(?=]x", true, NULL}, /* inside a class: literal characters */
	    {"\\(?=x", true, NULL}, /* escaped parenthesis */
	    {"(?i", false, "invalid regex"},
	};
	char why[512];

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int r = ids_regex_check(cases[k].re, why, sizeof(why));

		if (cases[k].ok) {
			cr_expect_eq(r, 0, "%s rejected: %s", cases[k].re, why);
		} else {
			cr_expect_eq(r, -EINVAL, "%s accepted", cases[k].re);
			cr_expect(strstr(why, cases[k].why), "%s: '%s'", cases[k].re, why);
			cr_expect(!strncmp(why, "invalid regex: ", 15));
		}
	}
	/* Nesting beyond 200. */
	{
		char deep[1024] = "";

		for (int i = 0; i < 210; i++)
			strcat(deep, "(");
		strcat(deep, "a");
		for (int i = 0; i < 210; i++)
			strcat(deep, ")");
		cr_expect_eq(ids_regex_check(deep, why, sizeof(why)), -EINVAL);
	}
}

Test(ids, vectorscan_prefilter_agrees_with_pcre2)
{
	static const char *const pats[] = {
	    "(?i)union\\s+select",
	    "\\bselect\\b.{0,20}from",
	    "etc/passwd",
	    "^GET /admin",
	    "[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{4}",
	    "a|b{3,5}c",
	    "(?s)x.y",
	    "x.y",
	    "end$",
	    "(?m)^line2",
	    "\\x00\\xff",
	    "(?i)ÉTÉ",
	    "ab*",
	    "colou?r",
	    "\\d+\\.\\d+\\.\\d+",
	};
	static const char *const corpus[] = {
	    "GET /index.php?id=1 UNION   SELECT pass FROM users",
	    "select name from t",
	    "selection from",
	    "cat ../../etc/passwd",
	    "GET /admin HTTP/1.1",
	    " GET /admin",
	    "card 4111-1111-1111-1111 ok",
	    "bbbbc",
	    "x\ny",
	    "xzy",
	    "the end\n",
	    "the end.",
	    "line1\nline2",
	    "",
	    "colour color colr",
	    "ver 1.2.3",
	    "été",
	};
	size_t np = sizeof(pats) / sizeof(pats[0]);
	char why[256];
	struct ids_matcher *m = ids_matcher__new(pats, np, why, sizeof(why));
	struct ids_scan *s = ids_scan__new();
	unsigned hits = 0;

	cr_assert_not_null(m, "%s", why);
	cr_expect_eq(ids_matcher_count(m), np);
	for (size_t c = 0; c < sizeof(corpus) / sizeof(corpus[0]); c++) {
		const uint8_t *d = (const uint8_t *)corpus[c];
		size_t len = strlen(corpus[c]);

		cr_assert_eq(ids_scan_run(s, m, d, len), 0);
		for (size_t p = 0; p < np; p++) {
			int want = ids_pcre2_match(m, p, d, len, s);
			bool got = ids_scan_hit(s, p);

			cr_expect_eq(got, want == 1,
				     "pattern %s on '%s': prefilter+confirm %d, "
				     "PCRE2 %d",
				     pats[p], corpus[c], got, want);
			hits += got;
		}
	}
	cr_expect_gt(hits, 15, "the corpus exercises matches");
	/* One payload with a NUL and 0xff in it. */
	{
		const uint8_t bin[] = {'a', 0x00, 0xff, 'b'};

		ids_scan_run(s, m, bin, sizeof(bin));
		cr_expect(ids_scan_hit(s, 10));
	}
	ids_scan__free(s);
	ids_matcher__free(m);
}

Test(ids, sampling_formula)
{
	struct ids_sampling none = {.mode = IDS_SAMPLE_NONE}, h0 = {.mode = IDS_SAMPLE_HASH},
			    h1 = {.mode = IDS_SAMPLE_HASH, .rate = 1.0},
			    half = {.mode = IDS_SAMPLE_HASH, .rate = 0.5};
	char *risky[] = {"KP", NULL};
	struct ids_sampling cb = {.mode = IDS_SAMPLE_COUNTRY,
				  .high_risk_countries = risky,
				  .high_risk_rate = 1.0,
				  .default_rate = 0.0};
	unsigned kept = 0;

	for (uint32_t i = 0; i < 1000; i++) {
		cr_expect(ids_sample_keep(&none, i, 7, NULL));
		cr_expect_not(ids_sample_keep(&h0, i * 7919, 3, NULL), "rate 0 keeps nothing");
		cr_expect(ids_sample_keep(&h1, i * 7919, 3, NULL), "rate 1 keeps everything");
		kept += ids_sample_keep(&half, i * 7919 + 1, 0xC6336401, NULL);
	}
	cr_expect(kept > 350 && kept < 650, "rate 0.5 keeps about half (%u)", kept);
	/* h = ((src ^ dst) * 2654435761) mod 2^32; keep iff h / 4294967295 < rate. */
	{
		uint32_t src = 0xC6336402, dst = 0xC6336401;
		uint32_t h = (uint32_t)((uint64_t)(src ^ dst) * 2654435761ull);
		struct ids_sampling just_above = {.mode = IDS_SAMPLE_HASH,
						  .rate = (double)h / 4294967295.0 + 1e-9};
		struct ids_sampling at = {.mode = IDS_SAMPLE_HASH,
					  .rate = (double)h / 4294967295.0};

		cr_expect(ids_sample_keep(&just_above, src, dst, NULL));
		cr_expect_not(ids_sample_keep(&at, src, dst, NULL));
	}
	cr_expect(ids_sample_keep(&cb, 1, 2, "KP"), "high-risk country at rate 1");
	cr_expect(ids_sample_keep(&cb, 1, 2, "kp"));
	cr_expect_not(ids_sample_keep(&cb, 1, 2, "FR"), "default rate 0");
	cr_expect_not(ids_sample_keep(&cb, 1, 2, NULL), "no country: default rate");
}

static unsigned run_window(enum ids_thr_type t, uint32_t n, unsigned matches)
{
	bool alerted = false;
	unsigned out = 0;

	for (uint64_t c = 1; c <= matches; c++)
		out += ids_threshold_emit(t, n, c, &alerted);
	return out;
}

Test(ids, threshold_modes_over_nine_matches)
{
	cr_expect_eq(run_window(IDS_THR_THRESHOLD, 3, 9), 3, "every 3rd");
	cr_expect_eq(run_window(IDS_THR_LIMIT, 2, 9), 2, "first 2");
	cr_expect_eq(run_window(IDS_THR_BOTH, 3, 9), 1, "once, at the 3rd");
	cr_expect_eq(run_window(IDS_THR_BOTH, 10, 9), 0);
}

static struct ids_cfg *cfg_of(const char *section, struct es_config **keep)
{
	char yaml[4096], err[1024];

	snprintf(yaml, sizeof(yaml), MIN_AGENT "%s", section);
	*keep = unit_cfg(yaml, err, sizeof(err));
	cr_assert(*keep, "%s", err);
	return (struct ids_cfg *)es_config_domain(*keep, "ids");
}

static const struct ids_kentry *find(const struct ids_kentry *e, size_t n, uint16_t port,
				     uint8_t proto)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].port == port && e[i].proto == proto)
			return &e[i];
	return NULL;
}

Test(ids, kernel_table_covering_sets)
{
	struct es_config *c;
	struct ids_cfg *ic =
	    cfg_of("ids:\n  mode: block\n  rules:\n"
		   "    - {id: r0, severity: low, protocol: tcp, dst_port: 8080, pattern: 'x'}\n"
		   "    - {id: r1, severity: high, protocol: tcp, dst_port: 2222}\n"
		   "    - {id: r2, severity: high, protocol: tcp, dst_port: 2323, mode: alert}\n"
		   "    - {id: r3, severity: medium, protocol: icmp}\n"
		   "    - {id: r4, severity: low, protocol: any, dst_port: 53}\n"
		   "    - {id: r5, severity: low, protocol: udp, dst_port: 9, enabled: false}\n",
		   &c);
	struct ids_rule ipsr = {.id = "ips-1",
				.description = "",
				.pattern = "",
				.severity = ES_SEV_HIGH,
				.mode = IDS_MODE_INHERIT,
				.protocol = 6,
				.has_port = true,
				.dst_port = 5900,
				.enabled = true,
				.domain_mode = IDS_DM_NONE};
	struct ids_ips_view ips = {
	    .enabled = true, .mode = IDS_MODE_BLOCK, .rules = &ipsr, .n_rules = 1};
	struct ids_kentry e[64];
	char why[256];
	struct ids_snap *s = ids_snap__new(ic, &ips, why, sizeof(why));
	const struct ids_kentry *k;
	size_t n;
	uint32_t cand[16];

	cr_assert_not_null(s, "%s", why);
	n = ids_snap_kernel(s, e, 64);
	cr_expect_eq(n, 7, "8080, 2222, 2323, icmp v4+v6, 53/any, 5900");
	k = find(e, n, 8080, 6);
	cr_assert_not_null(k);
	cr_expect_eq(k->action, ES_IDS_ACT_ALERT, "pattern rules never drop in the kernel");
	cr_expect_eq(k->flags, ES_IDS_F_WANT_PAYLOAD | ES_IDS_F_SAMPLE);
	cr_expect_eq(k->rule_id, 0);
	k = find(e, n, 2222, 6);
	cr_expect_eq(k->action, ES_IDS_ACT_DROP, "section block and rule inherits");
	cr_expect_eq(k->rule_id, 1);
	cr_expect_eq(find(e, n, 2323, 6)->action, ES_IDS_ACT_ALERT, "rule mode alert");
	k = find(e, n, 0, 1);
	cr_assert_not_null(k);
	cr_expect_eq(k->flags, ES_IDS_F_SAMPLE | ES_IDS_F_SYN_ONLY, "port-less: SYN only");
	cr_expect_not_null(find(e, n, 0, 58), "icmp rules cover ICMPv6 [Gap]");
	cr_expect_eq(find(e, n, 53, 0)->rule_id, 4);
	cr_expect_null(find(e, n, 9, 17), "disabled rules are not installed");
	k = find(e, n, 5900, 6);
	cr_expect_eq(k->rule_id, 6, "IPS rules follow IDS rules");
	cr_expect_eq(k->flags & ES_IDS_F_SAMPLE, 0, "IPS rules are not sampled in the kernel");
	cr_expect_eq(k->action, ES_IDS_ACT_DROP);
	/* Candidates for ICMPv6 echo: the icmp rule. For UDP/53: r4. */
	cr_expect_eq(ids_snap_candidates(s, 58, 0, cand, 16), 1);
	cr_expect_eq(cand[0], 3);
	cr_expect_eq(ids_snap_candidates(s, 17, 53, cand, 16), 1);
	cr_expect_eq(cand[0], 4);
	ids_snap_put(s);
	es_config_put(c);
}

static struct es_alert got[64];
static unsigned n_got;

static void capture(const struct es_alert *a)
{
	if (n_got < 64)
		got[n_got++] = *a;
}

static void ev_init(struct es_ids_event *ev, uint16_t dport, uint8_t proto, bool syn,
		    const char *payload)
{
	memset(ev, 0, sizeof(*ev));
	ev->pkt.hdr = (struct es_event_hdr){
	    .type = ES_EV_IDS, .version = 1, .len = (uint16_t)ES_IDS_EVENT_MIN_LEN};
	ev->pkt.hdr.flags = syn ? ES_EVF_SYN : 0;
	ev->pkt.src_addr[0] = 0xC6336402;
	ev->pkt.dst_addr[0] = 0xC6336401;
	ev->pkt.src_port = 40000;
	ev->pkt.dst_port = dport;
	ev->pkt.protocol = proto;
	if (payload) {
		ev->payload_len = (uint16_t)strlen(payload);
		memcpy(ev->payload, payload, ev->payload_len);
		ev->pkt.hdr.len = (uint16_t)sizeof(*ev);
	}
}

Test(ids, engine_turns_events_into_alerts)
{
	struct es_config *c;
	struct ids_cfg *ic = cfg_of(
	    "ids:\n  rules:\n"
	    "    - {id: sqli, severity: critical, protocol: tcp, dst_port: 8080, pattern: "
	    "'(?i)union\\s+select'}\n"
	    "    - {id: other, severity: low, protocol: tcp, dst_port: 8080, pattern: 'DROP'}\n"
	    "    - {id: anyport, severity: medium, protocol: tcp}\n"
	    "    - {id: thr, severity: high, protocol: udp, dst_port: 9, threshold: {type: "
	    "threshold, count: 3, window_secs: 60}}\n",
	    &c);
	struct es_ids_event ev;

	es_alert_set_sink(capture);
	cr_assert_eq(ids_engine_start(ic), 0);
	n_got = 0;
	ev_init(&ev, 8080, 6, false, "GET /?q=1 union  SELECT x");
	ids_engine_event(&ev, ev.pkt.hdr.len);
	cr_assert_eq(n_got, 1, "only the matching pattern rule; port-less needs a SYN");
	cr_expect_str_eq(got[0].rule_id, "sqli");
	cr_expect_str_eq(got[0].component, "ids");
	cr_expect_eq(got[0].severity, ES_SEV_CRITICAL);
	cr_expect_str_eq(got[0].message,
			 "IDS rule sqli matched: 198.51.100.2:40000 -> 198.51.100.1:8080");
	n_got = 0;
	ev_init(&ev, 8080, 6, true, NULL);
	ids_engine_event(&ev, ev.pkt.hdr.len);
	cr_assert_eq(n_got, 1, "a SYN without payload: the port-less rule only");
	cr_expect_str_eq(got[0].rule_id, "anyport");
	n_got = 0;
	ev_init(&ev, 8080, 6, false, "UNION SELECT ... DROP table");
	ids_engine_event(&ev, ev.pkt.hdr.len);
	cr_expect_eq(n_got, 2, "two pattern rules on one port alert independently");
	n_got = 0;
	for (int i = 0; i < 9; i++) {
		ev_init(&ev, 9, 17, false, NULL);
		ids_engine_event(&ev, ev.pkt.hdr.len);
	}
	cr_expect_eq(n_got, 3, "threshold count 3 over 9 matches");
	n_got = 0;
	ev_init(&ev, 9, 17, false, NULL);
	ev.pkt.rule_id = 99;
	ids_engine_event(&ev, ev.pkt.hdr.len);
	cr_expect_eq(n_got, 0, "rule index out of range (reload race) is ignored");
	ids_engine_stop();
	es_alert_set_sink(NULL);
	es_config_put(c);
}
