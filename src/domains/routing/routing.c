// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Policy routing domain (network.md §2.7): the `routing:` section, one
 * health-check thread per probed gateway (failure/recovery thresholds), the
 * gateway table served over REST, and FW_ROUTE_TARGETS kept pointing at the
 * best usable gateway for every route_to rule.
 *
 * Gateway state lives in `gws` under `lock`; health threads update it and,
 * when a gateway changes between usable and down, rewrite the targets.
 */
#define ES_LOG_TARGET "ebpfsentinel::routing"
#include "domains/routing/routing.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"
#include "core/net.h"
#include "domains/routing/health.h"
#include "domains/routing/routing_int.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const routing_keys[] = {"enabled", "gateways", NULL};
static const char *const gw_keys[] = {
    "id",
    "name",
    "interface",
    "gateway_ip",
    "priority",
    "enabled",
    "preferred_for_countries",
    "health_check",
    NULL,
};
static const char *const hc_keys[] = {
    "target",	    "protocol",		 "interval_secs",
    "timeout_secs", "failure_threshold", "recovery_threshold",
    NULL,
};

/* ---- configuration -------------------------------------------------------------- */

static void cfg_free(struct routing_cfg *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_gw; i++) {
		free(r->gw[i].name);
		es_strv_free(r->gw[i].countries);
	}
	free(r->gw);
	free(r);
}

static int parse_addr(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		      bool req, struct es_addr *out, bool *present)
{
	char *s = NULL;
	int r;

	*present = false;
	if (req ? es_cfg_req_str(c, obj, path, key, &s) : es_cfg_str(c, obj, path, key, &s, NULL))
		return -EINVAL;
	if (!s)
		return 0;
	*present = true;
	r = es_addr_parse(s, out);
	if (r)
		es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, key, 0, "invalid IP address '%s'", s);
	free(s);
	return r ? -EINVAL : 0;
}

static int parse_health(struct es_cfg *c, const json_t *gwobj, const char *gpath,
			struct routing_gw_cfg *g)
{
	json_t *hc;
	char path[160], *proto = NULL;
	bool have_target;

	g->interval_secs = 10;
	g->timeout_secs = 5;
	g->failure_threshold = 3;
	g->recovery_threshold = 2;
	g->target = g->gateway_ip;
	if (es_cfg_expect_object(c, gwobj, gpath, "health_check", &hc))
		return -EINVAL;
	if (!hc)
		return 0;
	g->probed = true;
	es_path_key(path, sizeof(path), gpath, "health_check");
	es_cfg_check_keys(c, hc, path, hc_keys);
	if (parse_addr(c, hc, path, "target", false, &g->target, &have_target) ||
	    es_cfg_str(c, hc, path, "protocol", &proto, "icmp") ||
	    es_cfg_u32(c, hc, path, "interval_secs", &g->interval_secs, 10) ||
	    es_cfg_u32(c, hc, path, "timeout_secs", &g->timeout_secs, 5) ||
	    es_cfg_u32(c, hc, path, "failure_threshold", &g->failure_threshold, 3) ||
	    es_cfg_u32(c, hc, path, "recovery_threshold", &g->recovery_threshold, 2)) {
		free(proto);
		return -EINVAL;
	}
	if (!have_target)
		g->target = g->gateway_ip;
	g->proto = HEALTH_ICMP;
	if (!strncasecmp(proto, "tcp:", 4)) {
		char *end;
		unsigned long port = strtoul(proto + 4, &end, 10);

		if (*end || !proto[4] || port == 0 || port > 65535)
			es_cfg_warn(c, "%s.protocol: invalid '%s', using icmp", path, proto);
		else {
			g->proto = HEALTH_TCP;
			g->tcp_port = (uint16_t)port;
		}
	} else if (strcasecmp(proto, "icmp")) {
		es_cfg_warn(c, "%s.protocol: invalid '%s', using icmp", path, proto);
	}
	free(proto);
	{
		static const char *const positive[] = {"interval_secs", "timeout_secs",
						       "failure_threshold", "recovery_threshold"};
		uint32_t v[] = {g->interval_secs, g->timeout_secs, g->failure_threshold,
				g->recovery_threshold};

		for (size_t i = 0; i < 4; i++)
			if (!v[i])
				return es_cfg_fail(c, ES_ERR_VALIDATION, hc, path, positive[i], 0,
						   "must be greater than 0");
	}
	if (g->target.family != g->gateway_ip.family)
		return es_cfg_fail(c, ES_ERR_VALIDATION, hc, path, "target", 0,
				   "target and gateway_ip must be of one address family");
	return 0;
}

static int parse_gateway(struct es_cfg *c, const json_t *obj, const char *path,
			 struct routing_gw_cfg *g)
{
	uint8_t id;
	char *ifn = NULL;
	bool have;
	int r;

	es_cfg_check_keys(c, obj, path, gw_keys);
	if (!json_object_get(obj, "id"))
		return es_cfg_fail(c, ES_ERR_PARSE, obj, path, "", SIZE_MAX, "missing field `id`");
	if (es_cfg_u8(c, obj, path, "id", &id, 0) ||
	    es_cfg_str(c, obj, path, "name", &g->name, "") ||
	    es_cfg_req_str(c, obj, path, "interface", &ifn) ||
	    parse_addr(c, obj, path, "gateway_ip", true, &g->gateway_ip, &have) ||
	    es_cfg_u32(c, obj, path, "priority", &g->priority, 100) ||
	    es_cfg_bool(c, obj, path, "enabled", &g->enabled, true) ||
	    es_cfg_strv(c, obj, path, "preferred_for_countries", &g->countries, &g->n_countries)) {
		free(ifn);
		return -EINVAL;
	}
	g->id = id;
	r = !ifn[0] || strlen(ifn) >= sizeof(g->ifname)
		? es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "interface", 0,
			      "invalid interface name '%s'", ifn)
		: 0;
	snprintf(g->ifname, sizeof(g->ifname), "%s", ifn);
	free(ifn);
	return r ? r : parse_health(c, obj, path, g);
}

static void *routing_parse(struct es_cfg *c, const json_t *node, const char *path,
			   const json_t *root)
{
	struct routing_cfg *r = calloc(1, sizeof(*r));
	json_t *list, *item;
	char gpath[160], ipath[176];
	size_t i;

	if (!r)
		return NULL;
	es_cfg_check_keys(c, node, path, routing_keys);
	if (es_cfg_bool(c, node, path, "enabled", &r->enabled, false) ||
	    es_cfg_array(c, node, path, "gateways", &list))
		goto fail;
	if (list && json_array_size(list) > 256) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "gateways", 0,
			    "count %zu exceeds maximum 256", json_array_size(list));
		goto fail;
	}
	r->gw = calloc(list ? json_array_size(list) + 1 : 1, sizeof(*r->gw));
	if (!r->gw)
		goto fail;
	es_path_key(gpath, sizeof(gpath), path, "gateways");
	json_array_foreach (list, i, item) {
		struct routing_gw_cfg *g = &r->gw[r->n_gw++];

		es_path_idx(ipath, sizeof(ipath), gpath, i);
		if (!json_is_object(item)) {
			char d[64];

			es_json_describe(item, d, sizeof(d));
			es_cfg_fail(c, ES_ERR_PARSE, list, gpath, NULL, i,
				    "invalid type: %s, expected struct Gateway", d);
			goto fail;
		}
		if (parse_gateway(c, item, ipath, g))
			goto fail;
		for (size_t j = 0; j + 1 < r->n_gw; j++)
			if (r->gw[j].id == g->id) {
				es_cfg_fail(c, ES_ERR_VALIDATION, item, ipath, "id", 0,
					    "duplicate gateway id %u", g->id);
				goto fail;
			}
	}
	return r;
fail:
	cfg_free(r);
	return NULL;
}

static void routing_free(void *cfg)
{
	cfg_free(cfg);
}

static json_t *addr_json(const struct es_addr *a)
{
	char b[64];

	es_addr_format(a, b, sizeof(b));
	return json_string(b);
}

static json_t *routing_to_json(const void *cfg)
{
	const struct routing_cfg *r = cfg;
	json_t *o = json_pack("{s:b,s:[]}", "enabled", r->enabled, "gateways");

	for (size_t i = 0; i < r->n_gw; i++) {
		const struct routing_gw_cfg *g = &r->gw[i];
		json_t *countries = json_array(), *e;
		char proto[16];

		for (size_t k = 0; k < g->n_countries; k++)
			json_array_append_new(countries, json_string(g->countries[k]));
		e = json_pack("{s:i,s:s,s:s,s:o,s:I,s:b,s:o}", "id", g->id, "name", g->name,
			      "interface", g->ifname, "gateway_ip", addr_json(&g->gateway_ip),
			      "priority", (json_int_t)g->priority, "enabled", g->enabled,
			      "preferred_for_countries", countries);
		if (g->probed) {
			snprintf(proto, sizeof(proto), g->proto == HEALTH_TCP ? "tcp:%u" : "icmp",
				 g->tcp_port);
			json_object_set_new(
			    e, "health_check",
			    json_pack("{s:o,s:s,s:I,s:I,s:I,s:I}", "target", addr_json(&g->target),
				      "protocol", proto, "interval_secs",
				      (json_int_t)g->interval_secs, "timeout_secs",
				      (json_int_t)g->timeout_secs, "failure_threshold",
				      (json_int_t)g->failure_threshold, "recovery_threshold",
				      (json_int_t)g->recovery_threshold));
		}
		json_array_append_new(json_object_get(o, "gateways"), e);
	}
	return o;
}

static bool routing_enabled(const void *cfg)
{
	return ((const struct routing_cfg *)cfg)->enabled;
}

/* ---- runtime state --------------------------------------------------------------- */

struct gw_state {
	struct routing_gw_cfg cfg; /* copy without the owned strings (name, countries) */
	char name[64];
	enum routing_status status;
	uint32_t fails, oks;
	uint64_t checks, last_check_ms;
	int last_error;
	pthread_t thread;
	bool thread_on;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct gw_state *gws; /* under lock */
static size_t n_gws;
static bool enabled, stopping;
static struct routing_binding *binds; /* under lock */
static unsigned n_binds;

static struct gw_state *find_gw(const char *ref, int family)
{
	struct es_addr a;
	char *end;
	unsigned long id = strtoul(ref, &end, 10);

	if (*ref && !*end) {
		for (size_t i = 0; i < n_gws; i++)
			if (gws[i].cfg.id == id)
				return &gws[i];
		return NULL;
	}
	if (es_addr_parse(ref, &a))
		return NULL;
	for (size_t i = 0; i < n_gws; i++)
		if (!memcmp(gws[i].cfg.gateway_ip.b, a.b, 16))
			return &gws[i];
	(void)family;
	return NULL;
}

static bool usable(const struct gw_state *g)
{
	return g->cfg.enabled && g->status != ROUTING_DOWN;
}

/* The gateway route_to uses for ref: itself while usable, else the best usable
 * one of its family (lowest priority, then lowest id). Under lock. */
static struct gw_state *effective_gw(const char *ref, int family)
{
	struct gw_state *want = find_gw(ref, family), *best = NULL;
	int fam;

	if (!want)
		return NULL; /* unknown reference: ordinary routing */
	if (usable(want))
		return want;
	fam = want->cfg.gateway_ip.family;
	for (size_t i = 0; i < n_gws; i++) {
		struct gw_state *g = &gws[i];

		if (!usable(g) || g->cfg.gateway_ip.family != fam)
			continue;
		if (!best || g->cfg.priority < best->cfg.priority ||
		    (g->cfg.priority == best->cfg.priority && g->cfg.id < best->cfg.id))
			best = g;
	}
	return best;
}

static int resolve_locked(const struct routing_binding *b, struct es_route_target *t)
{
	memset(t, 0, sizeof(*t));
	if (b->kind == ROUTING_ROUTE_TO && b->gateway[0]) {
		struct gw_state *g = enabled ? effective_gw(b->gateway, b->family) : NULL;

		if (!g)
			return -ENOENT;
		t->ifindex = if_nametoindex(g->cfg.ifname);
		t->family = (uint8_t)g->cfg.gateway_ip.family;
		es_addr_words(&g->cfg.gateway_ip, t->gw);
		return t->ifindex ? 0 : -ENOENT;
	}
	if (b->interface[0]) {
		t->ifindex = if_nametoindex(b->interface);
		return t->ifindex ? 0 : -ENOENT;
	}
	return b->kind == ROUTING_REPLY_TO ? 0 : -ENOENT; /* reply_to: true = the ingress */
}

int routing_resolve(const struct routing_binding *b, struct es_route_target *out)
{
	int r;

	pthread_mutex_lock(&lock);
	r = resolve_locked(b, out);
	pthread_mutex_unlock(&lock);
	return r;
}

/* FW_DEVMAP slots handed out so far: slot i holds devslot_if[i] (0 = free). */
static uint32_t devslot_if[ES_DEVMAP_MAX];

/* The FW_DEVMAP slot of ifindex, filling a free one (under lock); -1 when full. */
static int devmap_slot_locked(int devfd, uint32_t ifindex)
{
	int free_slot = -1;

	for (int i = 0; i < ES_DEVMAP_MAX; i++) {
		if (devslot_if[i] == ifindex)
			return i;
		if (!devslot_if[i] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0 || devfd < 0)
		return -1;
	{
		uint32_t key = (uint32_t)free_slot;

		if (bpf_map_update_elem(devfd, &key, &ifindex, BPF_ANY))
			return -1;
	}
	devslot_if[free_slot] = ifindex;
	return free_slot;
}

/* Rewrite FW_ROUTE_TARGETS from the bindings (under lock). Targets that do not
 * resolve are removed: the packet then follows the ordinary routing table.
 * route_to targets get the FW_DEVMAP slot of their interface (XDP redirect). */
static void write_targets_locked(void)
{
	int fd = es_kernel_ready() ? es_kernel_open_pinned("fw_route_targets") : -1;
	int devfd = es_kernel_ready() ? es_kernel_open_pinned("fw_devmap") : -1;

	for (unsigned i = 0; fd >= 0 && i < n_binds; i++) {
		struct es_route_target t;

		if (resolve_locked(&binds[i], &t) == 0) {
			if (binds[i].kind == ROUTING_ROUTE_TO) {
				int slot = devmap_slot_locked(devfd, t.ifindex);

				/* No slot (map full or absent): XDP passes to the stack. */
				t.devmap_slot = slot < 0 ? 0xFF : (uint8_t)slot;
			}
			bpf_map_update_elem(fd, &binds[i].rule_id, &t, BPF_ANY);
		} else {
			bpf_map_delete_elem(fd, &binds[i].rule_id);
		}
	}
	if (fd >= 0)
		close(fd);
	if (devfd >= 0)
		close(devfd);
}

int routing_set_bindings(const struct routing_binding *b, unsigned n)
{
	struct routing_binding *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	int fd;

	if (n && !copy)
		return -ENOMEM;
	if (n)
		memcpy(copy, b, n * sizeof(*copy));
	pthread_mutex_lock(&lock);
	/* Drop targets of rules that no longer bind. */
	fd = es_kernel_ready() ? es_kernel_open_pinned("fw_route_targets") : -1;
	for (unsigned i = 0; fd >= 0 && i < n_binds; i++) {
		bool kept = false;

		for (unsigned j = 0; j < n && !kept; j++)
			kept = copy[j].rule_id == binds[i].rule_id;
		if (!kept)
			bpf_map_delete_elem(fd, &binds[i].rule_id);
	}
	if (fd >= 0)
		close(fd);
	free(binds);
	binds = copy;
	n_binds = n;
	write_targets_locked();
	pthread_mutex_unlock(&lock);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *status_name(enum routing_status s)
{
	return s == ROUTING_HEALTHY ? "healthy" : s == ROUTING_DEGRADED ? "degraded" : "down";
}

/* Apply one probe outcome (under lock). Returns true when usability changed. */
static bool record(struct gw_state *g, int err)
{
	bool was = usable(g);
	enum routing_status before = g->status;

	g->checks++;
	g->last_check_ms = mono_ms();
	g->last_error = err;
	if (err) {
		g->oks = 0;
		g->fails++;
		if (g->status != ROUTING_DOWN)
			g->status =
			    g->fails >= g->cfg.failure_threshold ? ROUTING_DOWN : ROUTING_DEGRADED;
	} else {
		g->fails = 0;
		g->oks++;
		if (g->status == ROUTING_DEGRADED ||
		    (g->status == ROUTING_DOWN && g->oks >= g->cfg.recovery_threshold))
			g->status = ROUTING_HEALTHY;
	}
	if (g->status != before)
		pr_info("gateway status", LF_UINT("id", g->cfg.id), LF_STR("name", g->cfg.name),
			LF_STR("status", status_name(g->status)),
			LF_STR("error", err ? strerror(-err) : "none"));
	return was != usable(g);
}

int routing_record_probe(uint8_t id, int err)
{
	int r = -ENOENT;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_gws; i++) {
		if (gws[i].cfg.id != id)
			continue;
		if (record(&gws[i], err))
			write_targets_locked();
		r = 0;
		break;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static void *health_loop(void *arg)
{
	size_t idx = (size_t)(uintptr_t)arg;

	pthread_mutex_lock(&lock);
	while (!stopping) {
		struct routing_gw_cfg c = gws[idx].cfg;
		struct timespec until;
		int err;

		pthread_mutex_unlock(&lock);
		err = health_probe(c.proto, &c.target, c.tcp_port, c.ifname, c.timeout_secs * 1000,
				   (uint16_t)(getpid() ^ (c.id << 8)));
		pthread_mutex_lock(&lock);
		if (stopping)
			break;
		if (record(&gws[idx], err))
			write_targets_locked();
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += c.interval_secs;
		while (!stopping && pthread_cond_timedwait(&wake, &lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void stop_threads(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n_gws; i++)
		if (gws[i].thread_on)
			pthread_join(gws[i].thread, NULL);
	pthread_mutex_lock(&lock);
	stopping = false;
	free(gws);
	gws = NULL;
	n_gws = 0;
	pthread_mutex_unlock(&lock);
}

static int start_threads(const struct routing_cfg *r)
{
	struct gw_state *ng = calloc(r->n_gw + 1, sizeof(*ng));

	if (!ng)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_gw; i++) {
		ng[i].cfg = r->gw[i];
		snprintf(ng[i].name, sizeof(ng[i].name), "%s", r->gw[i].name);
		ng[i].cfg.name = ng[i].name;
		ng[i].cfg.countries = NULL;
		ng[i].status = ROUTING_HEALTHY; /* initially healthy (§2.7) */
	}
	pthread_mutex_lock(&lock);
	gws = ng;
	n_gws = r->n_gw;
	enabled = r->enabled;
	write_targets_locked();
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; r->enabled && i < r->n_gw; i++) {
		if (!r->gw[i].enabled || !r->gw[i].probed)
			continue;
		if (pthread_create(&ng[i].thread, NULL, health_loop, (void *)(uintptr_t)i) == 0)
			ng[i].thread_on = true;
		else
			pr_error("cannot start a gateway health check", LF_UINT("id", r->gw[i].id));
	}
	return 0;
}

static int routing_start(const void *cfg)
{
	return start_threads(cfg);
}

static int routing_apply(const void *old_cfg, const void *new_cfg)
{
	stop_threads();
	return start_threads(new_cfg);
}

static void routing_stop(void)
{
	stop_threads();
	pthread_mutex_lock(&lock);
	free(binds);
	binds = NULL;
	n_binds = 0;
	enabled = false;
	pthread_mutex_unlock(&lock);
}

void routing_snapshot(struct routing_gw_view *out, size_t *n, size_t max)
{
	pthread_mutex_lock(&lock);
	*n = 0;
	for (size_t i = 0; i < n_gws && *n < max; i++) {
		out[*n].id = gws[i].cfg.id;
		out[*n].status = gws[i].cfg.enabled ? gws[i].status : ROUTING_DOWN;
		out[*n].checks = gws[i].checks;
		out[*n].fails = gws[i].fails;
		(*n)++;
	}
	pthread_mutex_unlock(&lock);
}

const char *routing_status_name(enum routing_status s)
{
	return status_name(s);
}

static void routing_status(json_t *o)
{
	pthread_mutex_lock(&lock);
	json_object_set_new(o, "active", json_boolean(enabled));
	json_object_set_new(o, "route_bindings", json_integer(n_binds));
	pthread_mutex_unlock(&lock);
}

extern const struct es_route routing_routes[];

const struct es_domain es_domain_routing = {
    .name = "routing",
    .section = "routing",
    .parse = routing_parse,
    .free_cfg = routing_free,
    .to_json = routing_to_json,
    .enabled = routing_enabled,
    .start = routing_start,
    .apply = routing_apply,
    .stop = routing_stop,
    .status = routing_status,
    .routes = routing_routes,
};
