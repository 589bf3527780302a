// SPDX-License-Identifier: AGPL-3.0-only
/* Sinks for alerts and audit records, installed by their domains at start. */
#define ES_LOG_TARGET "ebpfsentinel::alerts"
#include "core/alert.h"
#include "core/audit.h"
#include "core/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static _Atomic(es_alert_sink_fn) alert_sink;
static _Atomic(const struct es_audit_sink *) audit_sink;
static __thread const char *audit_actor;

void es_alert_set_sink(es_alert_sink_fn fn)
{
	atomic_store(&alert_sink, fn);
}

void es_alert_emit(struct es_alert *a)
{
	es_alert_sink_fn fn = atomic_load(&alert_sink);

	if (!a->timestamp_ns) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		a->timestamp_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	if (!a->id[0])
		snprintf(a->id, sizeof(a->id), "%llu-%s", (unsigned long long)a->timestamp_ns,
			 a->rule_id);
	if (fn)
		fn(a);
	else
		pr_debug("alert without a pipeline", LF_STR("rule_id", a->rule_id),
			 LF_STR("component", a->component));
}

static _Atomic(es_alert_enrich_fn) enrichers[8];

int es_alert_add_enricher(es_alert_enrich_fn fn)
{
	for (size_t i = 0; i < sizeof(enrichers) / sizeof(enrichers[0]); i++) {
		es_alert_enrich_fn expected = NULL;

		if (atomic_load(&enrichers[i]) == fn ||
		    atomic_compare_exchange_strong(&enrichers[i], &expected, fn))
			return 0;
	}
	return -ENOSPC;
}

void es_alert_enrich(struct es_alert *a)
{
	for (size_t i = 0; i < sizeof(enrichers) / sizeof(enrichers[0]); i++) {
		es_alert_enrich_fn fn = atomic_load(&enrichers[i]);

		if (!fn)
			break;
		fn(a);
	}
}

static const char *const sev_names[] = {"low", "medium", "high", "critical"};

const char *es_severity_name(enum es_severity s)
{
	return s <= ES_SEV_CRITICAL ? sev_names[s] : "low";
}

int es_severity_parse(const char *s, enum es_severity *out)
{
	static const struct {
		const char *name;
		enum es_severity sev;
	} names[] = {
	    {"low", ES_SEV_LOW},	{"info", ES_SEV_LOW},  {"medium", ES_SEV_MEDIUM},
	    {"warning", ES_SEV_MEDIUM}, {"high", ES_SEV_HIGH}, {"critical", ES_SEV_CRITICAL},
	    {"crit", ES_SEV_CRITICAL},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(s, names[i].name)) {
			*out = names[i].sev;
			return 0;
		}
	}
	return -EINVAL;
}

void es_audit_set_sink(const struct es_audit_sink *sink)
{
	atomic_store(&audit_sink, sink);
}

void es_audit(const struct es_audit_entry *e)
{
	const struct es_audit_sink *s = atomic_load(&audit_sink);

	if (s && s->entry)
		s->entry(e);
}

void es_audit_rule_change(const struct es_rule_change *c)
{
	const struct es_audit_sink *s = atomic_load(&audit_sink);

	if (s && s->rule_change)
		s->rule_change(c);
}

void es_audit_set_actor(const char *sub)
{
	audit_actor = sub;
}

const char *es_audit_actor(void)
{
	return audit_actor;
}

void es_audit_rule_json(const char *component, const char *rule_id, const char *action,
			const json_t *before, const json_t *after)
{
	char *b = before ? json_dumps(before, JSON_COMPACT) : NULL;
	char *a = after ? json_dumps(after, JSON_COMPACT) : NULL;

	es_audit_rule_change(&(struct es_rule_change){
	    .component = component,
	    .rule_id = rule_id,
	    .action = action,
	    .actor = "api",
	    .before = b,
	    .after = a,
	});
	free(b);
	free(a);
}
