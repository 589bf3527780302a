/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Metrics registry and exposition (interfaces.md §6). Families are registered
 * once by name; samples are keyed by their label values. Rendered as the
 * Prometheus text format, or OpenMetrics when the scraper asks for it.
 * Thread-safe.
 */
#ifndef ES_METRICS_H
#define ES_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/strbuf.h"

enum es_mtype {
	ES_M_COUNTER,
	ES_M_GAUGE,
	ES_M_HISTOGRAM,
};

struct es_mfam;

/*
 * Register (or find) a family. `name` excludes the counter `_total` suffix;
 * `labels` is a comma-separated list of label names, or NULL.
 */
struct es_mfam *es_metric_family(const char *name, const char *help, enum es_mtype type,
				 const char *labels);
struct es_mfam *es_metric_find(const char *name);

/* Label values follow in the family's label order. */
void es_metric_add(struct es_mfam *f, double v, ...);
void es_metric_set(struct es_mfam *f, double v, ...);
void es_metric_observe(struct es_mfam *f, double v, ...);
/*
 * Mirror a kernel counter: `raw` is the current sum; the sample grows by the
 * increase since the last call (or by raw when the source was reset), so the
 * exposed counter stays monotonic across program reloads.
 */
void es_metric_mirror(struct es_mfam *f, uint64_t raw, ...);
/*
 * Mirror n kernel counters of one map (interfaces.md §6 part b) into
 * ebpfsentinel_packets_total{interface=<map>, action=<names[i]>}.
 */
void es_metric_mirror_packets(const char *map, const char *const *names, const uint64_t *v,
			      unsigned n);
/* Read a sample (tests). Returns false when absent. */
bool es_metric_get(struct es_mfam *f, double *v, ...);

/* Called before each render, in registration order. */
void es_metrics_add_collector(void (*fn)(void));
void es_metrics_collect(void);
void es_metrics_render(struct es_sb *out, bool openmetrics);
/* Forget every family (tests). */
void es_metrics_reset(void);

#define ES_CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define ES_CT_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

#endif
