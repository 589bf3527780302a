// SPDX-License-Identifier: AGPL-3.0-only
#include "api/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 4
#define HIST_BUCKETS 10

struct sample {
	char *vals[MAX_LABELS];
	double v;
	uint64_t last_raw; /* mirror source */
	uint64_t buckets[HIST_BUCKETS];
	uint64_t count;
};

struct es_mfam {
	char *name;
	char *help;
	enum es_mtype type;
	int nlabels;
	char *labels[MAX_LABELS];
	struct sample *samples;
	size_t n, cap;
	struct es_mfam *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct es_mfam *families, **families_tail = &families;
static void (*collectors[64])(void);
static int n_collectors;

/* 1e-6 s to 1e-2 s, 10 exponential buckets (factor 10^(4/9) ≈ 2.78). */
static double hist_bound(int i)
{
	return 1e-6 * pow(10.0, 4.0 * i / (HIST_BUCKETS - 1));
}

struct es_mfam *es_metric_find(const char *name)
{
	struct es_mfam *f;

	pthread_mutex_lock(&lock);
	for (f = families; f; f = f->next)
		if (!strcmp(f->name, name))
			break;
	pthread_mutex_unlock(&lock);
	return f;
}

struct es_mfam *es_metric_family(const char *name, const char *help, enum es_mtype type,
				 const char *labels)
{
	struct es_mfam *f = es_metric_find(name);

	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->name = strdup(name);
	f->help = strdup(help);
	f->type = type;
	if (labels && *labels) {
		char *dup = strdup(labels), *save = NULL;

		for (char *t = strtok_r(dup, ",", &save); t && f->nlabels < MAX_LABELS;
		     t = strtok_r(NULL, ",", &save))
			f->labels[f->nlabels++] = strdup(t);
		free(dup);
	}
	pthread_mutex_lock(&lock);
	*families_tail = f;
	families_tail = &f->next;
	pthread_mutex_unlock(&lock);
	return f;
}

/* Find or create the sample for these values; caller holds the lock. */
static struct sample *sample_for(struct es_mfam *f, const char **vals, bool create)
{
	for (size_t i = 0; i < f->n; i++) {
		int k;

		for (k = 0; k < f->nlabels; k++)
			if (strcmp(f->samples[i].vals[k], vals[k]))
				break;
		if (k == f->nlabels)
			return &f->samples[i];
	}
	if (!create)
		return NULL;
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 8;
		struct sample *ns = realloc(f->samples, nc * sizeof(*ns));

		if (!ns)
			return NULL;
		f->samples = ns;
		f->cap = nc;
	}
	struct sample *s = &f->samples[f->n];

	memset(s, 0, sizeof(*s));
	for (int k = 0; k < f->nlabels; k++) {
		s->vals[k] = strdup(vals[k] ? vals[k] : "");
		if (!s->vals[k]) {
			while (k--)
				free(s->vals[k]);
			return NULL;
		}
	}
	f->n++;
	return s;
}

static void collect_vals(struct es_mfam *f, va_list ap, const char **vals)
{
	for (int k = 0; k < f->nlabels; k++)
		vals[k] = va_arg(ap, const char *);
}

void es_metric_add(struct es_mfam *f, double v, ...)
{
	const char *vals[MAX_LABELS];
	struct sample *s;
	va_list ap;

	if (!f)
		return;
	va_start(ap, v);
	collect_vals(f, ap, vals);
	va_end(ap);
	pthread_mutex_lock(&lock);
	if ((s = sample_for(f, vals, true)))
		s->v += v;
	pthread_mutex_unlock(&lock);
}

void es_metric_set(struct es_mfam *f, double v, ...)
{
	const char *vals[MAX_LABELS];
	struct sample *s;
	va_list ap;

	if (!f)
		return;
	va_start(ap, v);
	collect_vals(f, ap, vals);
	va_end(ap);
	pthread_mutex_lock(&lock);
	if ((s = sample_for(f, vals, true)))
		s->v = v;
	pthread_mutex_unlock(&lock);
}

void es_metric_observe(struct es_mfam *f, double v, ...)
{
	const char *vals[MAX_LABELS];
	struct sample *s;
	va_list ap;

	if (!f)
		return;
	va_start(ap, v);
	collect_vals(f, ap, vals);
	va_end(ap);
	pthread_mutex_lock(&lock);
	if ((s = sample_for(f, vals, true))) {
		for (int i = 0; i < HIST_BUCKETS; i++)
			if (v <= hist_bound(i))
				s->buckets[i]++;
		s->count++;
		s->v += v;
	}
	pthread_mutex_unlock(&lock);
}

void es_metric_mirror(struct es_mfam *f, uint64_t raw, ...)
{
	const char *vals[MAX_LABELS];
	struct sample *s;
	va_list ap;

	if (!f)
		return;
	va_start(ap, raw);
	collect_vals(f, ap, vals);
	va_end(ap);
	pthread_mutex_lock(&lock);
	if ((s = sample_for(f, vals, true))) {
		s->v += (double)(raw >= s->last_raw ? raw - s->last_raw : raw);
		s->last_raw = raw;
	}
	pthread_mutex_unlock(&lock);
}

void es_metric_mirror_packets(const char *map, const char *const *names, const uint64_t *v,
			      unsigned n)
{
	struct es_mfam *f =
	    es_metric_family("ebpfsentinel_packets", "Packets seen, by source and outcome",
			     ES_M_COUNTER, "interface,action");

	for (unsigned i = 0; i < n; i++)
		es_metric_mirror(f, v[i], map, names[i]);
}

bool es_metric_get(struct es_mfam *f, double *v, ...)
{
	const char *vals[MAX_LABELS];
	struct sample *s;
	va_list ap;

	if (!f)
		return false;
	va_start(ap, v);
	collect_vals(f, ap, vals);
	va_end(ap);
	pthread_mutex_lock(&lock);
	s = sample_for(f, vals, false);
	if (s)
		*v = f->type == ES_M_HISTOGRAM ? (double)s->count : s->v;
	pthread_mutex_unlock(&lock);
	return s != NULL;
}

void es_metrics_add_collector(void (*fn)(void))
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < n_collectors; i++)
		if (collectors[i] == fn)
			goto out;
	if (n_collectors < 64)
		collectors[n_collectors++] = fn;
out:
	pthread_mutex_unlock(&lock);
}

void es_metrics_collect(void)
{
	void (*fns[64])(void);
	int n;

	pthread_mutex_lock(&lock);
	n = n_collectors;
	memcpy(fns, collectors, sizeof(fns));
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < n; i++)
		fns[i]();
}

static void put_escaped(struct es_sb *sb, const char *s, bool help)
{
	for (; *s; s++) {
		if (*s == '\\')
			es_sb_puts(sb, "\\\\");
		else if (*s == '\n')
			es_sb_puts(sb, "\\n");
		else if (*s == '"' && !help)
			es_sb_puts(sb, "\\\"");
		else
			es_sb_putc(sb, *s);
	}
}

static void put_labels(struct es_sb *sb, const struct es_mfam *f, const struct sample *s,
		       const char *extra_k, const char *extra_v)
{
	bool any = f->nlabels > 0 || extra_k;

	if (!any)
		return;
	es_sb_putc(sb, '{');
	for (int k = 0; k < f->nlabels; k++) {
		es_sb_printf(sb, "%s%s=\"", k ? "," : "", f->labels[k]);
		put_escaped(sb, s->vals[k], false);
		es_sb_putc(sb, '"');
	}
	if (extra_k)
		es_sb_printf(sb, "%s%s=\"%s\"", f->nlabels ? "," : "", extra_k, extra_v);
	es_sb_putc(sb, '}');
}

static void put_value(struct es_sb *sb, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		es_sb_printf(sb, " %.0f\n", v);
	else
		es_sb_printf(sb, " %.17g\n", v);
}

void es_metrics_render(struct es_sb *sb, bool openmetrics)
{
	static const char *const tnames[] = {"counter", "gauge", "histogram"};

	pthread_mutex_lock(&lock);
	for (struct es_mfam *f = families; f; f = f->next) {
		bool counter = f->type == ES_M_COUNTER;
		const char *meta = counter && !openmetrics ? "_total" : "";

		es_sb_printf(sb, "# HELP %s%s ", f->name, meta);
		put_escaped(sb, f->help, true);
		es_sb_printf(sb, "\n# TYPE %s%s %s\n", f->name, meta, tnames[f->type]);
		for (size_t i = 0; i < f->n; i++) {
			const struct sample *s = &f->samples[i];

			if (f->type != ES_M_HISTOGRAM) {
				es_sb_printf(sb, "%s%s", f->name, counter ? "_total" : "");
				put_labels(sb, f, s, NULL, NULL);
				put_value(sb, s->v);
				continue;
			}
			for (int b = 0; b <= HIST_BUCKETS; b++) {
				char le[32];

				if (b < HIST_BUCKETS)
					snprintf(le, sizeof(le), "%g", hist_bound(b));
				else
					snprintf(le, sizeof(le), "+Inf");
				es_sb_printf(sb, "%s_bucket", f->name);
				put_labels(sb, f, s, "le", le);
				put_value(sb,
					  (double)(b < HIST_BUCKETS ? s->buckets[b] : s->count));
			}
			es_sb_printf(sb, "%s_sum", f->name);
			put_labels(sb, f, s, NULL, NULL);
			es_sb_printf(sb, " %.17g\n", s->v);
			es_sb_printf(sb, "%s_count", f->name);
			put_labels(sb, f, s, NULL, NULL);
			put_value(sb, (double)s->count);
		}
	}
	if (openmetrics)
		es_sb_puts(sb, "# EOF\n");
	pthread_mutex_unlock(&lock);
}

void es_metrics_reset(void)
{
	pthread_mutex_lock(&lock);
	while (families) {
		struct es_mfam *f = families;

		families = f->next;
		for (size_t i = 0; i < f->n; i++)
			for (int k = 0; k < f->nlabels; k++)
				free(f->samples[i].vals[k]);
		for (int k = 0; k < f->nlabels; k++)
			free(f->labels[k]);
		free(f->samples);
		free(f->name);
		free(f->help);
		free(f);
	}
	families_tail = &families;
	n_collectors = 0;
	pthread_mutex_unlock(&lock);
}
