// SPDX-License-Identifier: AGPL-3.0-only
/* Dedup, throttle, routing and circuit breaker (interfaces.md §7.3, §7.7). */
#include "domains/alerting/policy.h"
#include "core/hmap.h"

#include <stdlib.h>
#include <string.h>

const uint32_t al_default_retry_ms[AL_MAX_RETRIES] = {1000, 5000, 30000};

/* ---- dedup ---------------------------------------------------------------------- */

struct dedup_key {
	char rule_id[128];
	uint32_t src, dst;
	uint16_t dst_port;
	uint8_t protocol;
	uint8_t pad;
};

struct al_dedup {
	struct es_hmap *m; /* dedup_key -> first seen (u64) */
};

struct al_dedup *al_dedup__new(void)
{
	struct al_dedup *d = calloc(1, sizeof(*d));

	if (d && !(d->m = es_hmap__new(sizeof(struct dedup_key), sizeof(uint64_t)))) {
		free(d);
		return NULL;
	}
	return d;
}

void al_dedup__free(struct al_dedup *d)
{
	if (!d)
		return;
	es_hmap__free(d->m);
	free(d);
}

bool al_dedup_check(struct al_dedup *d, const struct es_alert *a, uint64_t window_ns, uint64_t now)
{
	struct dedup_key k;
	uint64_t *first;
	bool created;

	memset(&k, 0, sizeof(k));
	memcpy(k.rule_id, a->rule_id, strnlen(a->rule_id, sizeof(k.rule_id) - 1));
	k.src = a->src_addr[0];
	k.dst = a->dst_addr[0];
	k.dst_port = a->dst_port;
	k.protocol = a->protocol;
	first = es_hmap_put(d->m, &k, &created);
	if (!first)
		return false; /* out of memory: never lose an alert to dedup */
	if (!created && now - *first < window_ns)
		return true;
	*first = now;
	return false;
}

struct prune_arg {
	uint64_t window, now;
};

static bool dedup_expired(const void *key, void *val, void *arg)
{
	const struct prune_arg *p = arg;

	return p->now - *(uint64_t *)val >= p->window;
}

void al_dedup_prune(struct al_dedup *d, uint64_t window_ns, uint64_t now)
{
	struct prune_arg p = {window_ns, now};

	es_hmap_sweep(d->m, dedup_expired, &p);
}

size_t al_dedup_size(const struct al_dedup *d)
{
	return es_hmap_count(d->m);
}

/* ---- throttle ------------------------------------------------------------------- */

struct throttle_val {
	uint64_t start;
	uint64_t count;
};

struct al_throttle {
	struct es_hmap *m; /* rule_id[128] -> throttle_val */
};

struct al_throttle *al_throttle__new(void)
{
	struct al_throttle *t = calloc(1, sizeof(*t));

	if (t && !(t->m = es_hmap__new(128, sizeof(struct throttle_val)))) {
		free(t);
		return NULL;
	}
	return t;
}

void al_throttle__free(struct al_throttle *t)
{
	if (!t)
		return;
	es_hmap__free(t->m);
	free(t);
}

bool al_throttle_check(struct al_throttle *t, const char *rule_id, uint64_t window_ns, uint64_t max,
		       uint64_t now)
{
	char key[128] = {0};
	struct throttle_val *v;
	bool created;

	memcpy(key, rule_id, strnlen(rule_id, sizeof(key) - 1));
	v = es_hmap_put(t->m, key, &created);
	if (!v)
		return false;
	if (created || now - v->start >= window_ns) {
		v->start = now;
		v->count = 0;
	}
	v->count++;
	return v->count > max;
}

static bool throttle_expired(const void *key, void *val, void *arg)
{
	const struct prune_arg *p = arg;

	return p->now - ((struct throttle_val *)val)->start >= p->window;
}

void al_throttle_prune(struct al_throttle *t, uint64_t window_ns, uint64_t now)
{
	struct prune_arg p = {window_ns, now};

	es_hmap_sweep(t->m, throttle_expired, &p);
}

/* ---- routing -------------------------------------------------------------------- */

bool al_route_matches(const struct al_route *r, const struct es_alert *a)
{
	if (a->severity < r->min_severity)
		return false;
	if (!r->event_types)
		return true;
	for (char **e = r->event_types; *e; e++)
		if (!strcmp(*e, a->component))
			return true;
	return false;
}

/* ---- circuit breaker ------------------------------------------------------------ */

bool al_breaker_allow(struct al_breaker *b, uint64_t now)
{
	switch (b->state) {
	case AL_BREAKER_CLOSED: return true;
	case AL_BREAKER_OPEN:
		if (now - b->opened_at < AL_BREAKER_OPEN_NS)
			return false;
		b->state = AL_BREAKER_HALF_OPEN;
		b->trial_in_flight = true;
		return true;
	case AL_BREAKER_HALF_OPEN:
		if (b->trial_in_flight)
			return false;
		b->trial_in_flight = true;
		return true;
	}
	return false;
}

void al_breaker_result(struct al_breaker *b, bool ok, uint64_t now)
{
	if (ok) {
		b->state = AL_BREAKER_CLOSED;
		b->failures = 0;
		b->trial_in_flight = false;
		return;
	}
	if (b->state == AL_BREAKER_HALF_OPEN) {
		b->state = AL_BREAKER_OPEN;
		b->opened_at = now;
		b->trial_in_flight = false;
		return;
	}
	if (b->state == AL_BREAKER_OPEN)
		return; /* a delivery started before the breaker opened */
	if (++b->failures >= AL_BREAKER_THRESHOLD) {
		b->state = AL_BREAKER_OPEN;
		b->opened_at = now;
	}
}
