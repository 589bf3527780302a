// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Zones (network.md §2.6): interfaces grouped into zones and a policy per
 * (from, to) pair, enforced by xdp_firewall on forwarded packets (a FIB
 * lookup gives the egress interface). This domain validates the `zones:`
 * section, writes the pinned zone_map / zone_policy maps the firewall reads,
 * switches the firewall's zone gate, re-resolves interface indexes, and
 * serves GET /api/v1/zones.
 */
#define ES_LOG_TARGET "ebpfsentinel::zones"
#include "abi/firewall.h"
#include "agent/domain.h"
#include "core/log.h"
#include "domains/firewall/firewall.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct zone {
	char *id;
	char **interfaces; /* NULL-terminated */
	uint8_t default_policy;
};

struct zone_pol {
	uint8_t from, to; /* 1-based zone numbers */
	uint8_t policy;	  /* ES_ZONE_ALLOW / ES_ZONE_DENY */
};

struct zones_cfg {
	bool enabled;
	struct zone *z;
	size_t n;
	struct zone_pol *p;
	size_t np;
};

static const char *const keys[] = {"enabled", "zones", "policies", NULL};
static const char *const zone_keys[] = {"id", "interfaces", "default_policy", NULL};
static const char *const pol_keys[] = {"from", "to", "policy", NULL};
static const char *const words[] = {"allow", "permit", "accept", "deny", "drop", "reject", NULL};

#define FAIL(c, o, path, key, ...) es_cfg_fail(c, ES_ERR_VALIDATION, o, path, key, 0, __VA_ARGS__)

static void zones_free(void *cfg)
{
	struct zones_cfg *z = cfg;

	if (!z)
		return;
	for (size_t i = 0; i < z->n; i++) {
		free(z->z[i].id);
		es_strv_free(z->z[i].interfaces);
	}
	free(z->z);
	free(z->p);
	free(z);
}

static int find_zone(const struct zones_cfg *z, const char *id)
{
	for (size_t i = 0; i < z->n; i++)
		if (!strcmp(z->z[i].id, id))
			return (int)i;
	return -1;
}

static int policy_word(struct es_cfg *c, const json_t *o, const char *path, const char *key,
		       uint8_t *out, int def)
{
	int w;

	if (es_cfg_enum(c, o, path, key, words, &w, def))
		return -EINVAL;
	*out = w >= 3 ? ES_ZONE_DENY : ES_ZONE_ALLOW;
	return 0;
}

static int parse_zone(struct es_cfg *c, const json_t *o, const char *path, struct zones_cfg *z)
{
	struct zone *nz = &z->z[z->n];
	size_t nif = 0;

	if (!json_is_object(o))
		return es_cfg_fail(c, ES_ERR_PARSE, o, path, "", SIZE_MAX,
				   "invalid type: expected a map with id and interfaces");
	es_cfg_check_keys(c, o, path, zone_keys);
	if (es_cfg_req_str(c, o, path, "id", &nz->id))
		return -EINVAL;
	z->n++;
	if (!*nz->id)
		return FAIL(c, o, path, "id", "zone id must not be empty");
	if (find_zone(z, nz->id) != (int)z->n - 1)
		return FAIL(c, o, path, "id", "duplicate zone id '%s'", nz->id);
	if (es_cfg_strv(c, o, path, "interfaces", &nz->interfaces, &nif))
		return -EINVAL;
	if (!nif)
		return FAIL(c, o, path, "interfaces", "zone '%s' has no interfaces", nz->id);
	for (size_t i = 0; i < nif; i++) {
		for (size_t k = 0; k + 1 < z->n; k++)
			for (char **p = z->z[k].interfaces; p && *p; p++)
				if (!strcmp(*p, nz->interfaces[i]))
					return FAIL(c, o, path, "interfaces",
						    "interface '%s' is in zones '%s' and '%s'",
						    nz->interfaces[i], z->z[k].id, nz->id);
		for (size_t k = 0; k < i; k++)
			if (!strcmp(nz->interfaces[k], nz->interfaces[i]))
				return FAIL(c, o, path, "interfaces", "interface '%s' listed twice",
					    nz->interfaces[i]);
	}
	return policy_word(c, o, path, "default_policy", &nz->default_policy, 3);
}

static void *zones_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct zones_cfg *z = calloc(1, sizeof(*z));
	json_t *zs, *ps, *item;
	char p[300], ip[320];
	size_t i;

	if (!z)
		return NULL;
	es_cfg_check_keys(c, node, path, keys);
	if (es_cfg_bool(c, node, path, "enabled", &z->enabled, false) ||
	    es_cfg_array(c, node, path, "zones", &zs) ||
	    es_cfg_array(c, node, path, "policies", &ps))
		goto fail;
	if (zs && json_array_size(zs) > ES_ZONE_MAX) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "zones", 0,
			    "count %zu exceeds maximum %d", json_array_size(zs), ES_ZONE_MAX);
		goto fail;
	}
	z->z = calloc((zs ? json_array_size(zs) : 0) + 1, sizeof(*z->z));
	z->p = calloc((ps ? json_array_size(ps) : 0) + 1, sizeof(*z->p));
	if (!z->z || !z->p)
		goto fail;
	es_path_key(p, sizeof(p), path, "zones");
	json_array_foreach (zs, i, item) {
		es_path_idx(ip, sizeof(ip), p, i);
		if (parse_zone(c, item, ip, z))
			goto fail;
	}
	es_path_key(p, sizeof(p), path, "policies");
	json_array_foreach (ps, i, item) {
		struct zone_pol *zp = &z->p[z->np];
		char *from = NULL, *to = NULL;
		int f, t, r = -EINVAL;

		es_path_idx(ip, sizeof(ip), p, i);
		if (!json_is_object(item)) {
			es_cfg_fail(c, ES_ERR_PARSE, item, ip, "", SIZE_MAX,
				    "invalid type: expected a map with from, to and policy");
			goto fail;
		}
		es_cfg_check_keys(c, item, ip, pol_keys);
		if (es_cfg_req_str(c, item, ip, "from", &from) ||
		    es_cfg_req_str(c, item, ip, "to", &to))
			goto pfail;
		if ((f = find_zone(z, from)) < 0) {
			FAIL(c, item, ip, "from", "unknown zone '%s'", from);
			goto pfail;
		}
		if ((t = find_zone(z, to)) < 0) {
			FAIL(c, item, ip, "to", "unknown zone '%s'", to);
			goto pfail;
		}
		if (f == t) {
			FAIL(c, item, ip, "to", "policy from zone '%s' to itself", from);
			goto pfail;
		}
		if (!json_object_get(item, "policy")) {
			char *tmp = NULL;

			es_cfg_req_str(c, item, ip, "policy", &tmp);
			goto pfail;
		}
		if (policy_word(c, item, ip, "policy", &zp->policy, 3))
			goto pfail;
		zp->from = (uint8_t)(f + 1);
		zp->to = (uint8_t)(t + 1);
		z->np++;
		r = 0;
	pfail:
		free(from);
		free(to);
		if (r)
			goto fail;
	}
	return z;
fail:
	zones_free(z);
	return NULL;
}

static json_t *zones_to_json(const void *cfg)
{
	const struct zones_cfg *z = cfg;
	json_t *zs = json_array(), *ps = json_array();

	for (size_t i = 0; i < z->n; i++) {
		json_t *ifs = json_array();

		for (char **p = z->z[i].interfaces; p && *p; p++)
			json_array_append_new(ifs, json_string(*p));
		json_array_append_new(zs, json_pack("{s:s,s:o,s:s}", "id", z->z[i].id, "interfaces",
						    ifs, "default_policy",
						    z->z[i].default_policy ? "deny" : "allow"));
	}
	for (size_t i = 0; i < z->np; i++)
		json_array_append_new(ps,
				      json_pack("{s:s,s:s,s:s}", "from", z->z[z->p[i].from - 1].id,
						"to", z->z[z->p[i].to - 1].id, "policy",
						z->p[i].policy ? "deny" : "allow"));
	return json_pack("{s:b,s:o,s:o}", "enabled", z->enabled, "zones", zs, "policies", ps);
}

static bool zones_enabled(const void *cfg)
{
	return ((const struct zones_cfg *)cfg)->enabled;
}

/* ---- runtime ---------------------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct zones_cfg *cur; /* a copy of what is installed (or would be) */
static bool active;
static char inactive_reason[128];
static struct {
	__u32 ifindex;
	char name[IF_NAMESIZE];
	uint8_t zone;
} ifmap[ES_ZONE_MAP_MAX];
static size_t n_ifmap;
static unsigned ticks;

static struct zones_cfg *copy_cfg(const struct zones_cfg *s)
{
	struct zones_cfg *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->enabled = s->enabled;
	d->z = calloc(s->n + 1, sizeof(*d->z));
	d->p = calloc(s->np + 1, sizeof(*d->p));
	if (!d->z || !d->p)
		goto fail;
	for (size_t i = 0; i < s->n; i++, d->n++) {
		d->z[i].id = strdup(s->z[i].id);
		d->z[i].interfaces = es_strv_dup(s->z[i].interfaces);
		d->z[i].default_policy = s->z[i].default_policy;
		if (!d->z[i].id || !d->z[i].interfaces) {
			d->n++;
			goto fail;
		}
	}
	memcpy(d->p, s->p, s->np * sizeof(*d->p));
	d->np = s->np;
	return d;
fail:
	zones_free(d);
	return NULL;
}

/* Make the pinned maps say what z says (NULL or disabled: empty, gate off). */
static int install(const struct zones_cfg *z)
{
	int fd_map = es_kernel_open_pinned("zone_map");
	int fd_pol = es_kernel_open_pinned("zone_policy");
	bool on = z && z->enabled;
	__u32 key, next;
	int r = 0;

	if (fd_map < 0 || fd_pol < 0) {
		r = fd_map < 0 ? fd_map : fd_pol;
		goto out;
	}
	if (!on)
		fw_set_zone_gate(false);
	/* Policies first (a new interface never meets a missing pair), then interfaces. */
	for (size_t i = 0; on && i < z->n; i++) {
		struct es_zone_policy v = {(__u8)(i + 1), (__u8)(i + 1), z->z[i].default_policy, 0};

		key = (__u32)(i + 1) << 8 | (__u32)(i + 1);
		if (bpf_map_update_elem(fd_pol, &key, &v, BPF_ANY))
			r = -errno;
	}
	for (size_t i = 0; on && i < z->np; i++) {
		struct es_zone_policy v = {z->p[i].from, z->p[i].to, z->p[i].policy, 0};

		key = (__u32)z->p[i].from << 8 | z->p[i].to;
		if (bpf_map_update_elem(fd_pol, &key, &v, BPF_ANY))
			r = -errno;
	}
	n_ifmap = 0;
	for (size_t i = 0; on && i < z->n; i++) {
		for (char **p = z->z[i].interfaces; *p && n_ifmap < ES_ZONE_MAP_MAX; p++) {
			__u32 ifx = if_nametoindex(*p);
			__u8 zn = (__u8)(i + 1);

			snprintf(ifmap[n_ifmap].name, IF_NAMESIZE, "%s", *p);
			ifmap[n_ifmap].ifindex = ifx;
			ifmap[n_ifmap].zone = zn;
			n_ifmap++;
			if (ifx && bpf_map_update_elem(fd_map, &ifx, &zn, BPF_ANY))
				r = -errno;
		}
	}
	/* Drop entries no longer wanted. */
	for (int pass = 0; pass < 2; pass++) {
		int fd = pass ? fd_pol : fd_map;
		bool more = !bpf_map_get_next_key(fd, NULL, &key);

		while (more) {
			bool keep = false;

			more = !bpf_map_get_next_key(fd, &key, &next);
			if (on && !pass) {
				for (size_t i = 0; i < n_ifmap; i++)
					keep |= ifmap[i].ifindex == key;
			} else if (on) {
				__u32 f = key >> 8, t = key & 0xff;

				keep = f == t && f >= 1 && f <= z->n;
				for (size_t i = 0; i < z->np && !keep; i++)
					keep = z->p[i].from == f && z->p[i].to == t;
			}
			if (!keep)
				bpf_map_delete_elem(fd, &key);
			key = next;
		}
	}
	if (on && !r)
		r = fw_set_zone_gate(true);
out:
	if (fd_map >= 0)
		close(fd_map);
	if (fd_pol >= 0)
		close(fd_pol);
	return r;
}

static void apply_locked(const struct zones_cfg *z)
{
	int r;

	active = false;
	inactive_reason[0] = '\0';
	if (!z->enabled) {
		snprintf(inactive_reason, sizeof(inactive_reason), "zones disabled");
		if (es_kernel_ready())
			install(NULL);
		return;
	}
	r = es_kernel_ready() ? install(z) : -ENODEV;
	if (r) {
		snprintf(inactive_reason, sizeof(inactive_reason),
			 "zone gate unavailable (xdp_firewall not loaded): %s", strerror(-r));
		pr_warn("zones are configured but cannot be enforced",
			LF_STR("error", strerror(-r)));
		return;
	}
	active = true;
	pr_info("zones installed", LF_UINT("zones", z->n), LF_UINT("policies", z->np),
		LF_UINT("interfaces", n_ifmap));
}

static int zones_start(const void *cfg)
{
	struct zones_cfg *c = copy_cfg(cfg);

	if (!c)
		return -ENOMEM;
	pthread_mutex_lock(&lock);
	zones_free(cur);
	cur = c;
	apply_locked(cur);
	pthread_mutex_unlock(&lock);
	return 0;
}

static int zones_apply(const void *old_cfg, const void *new_cfg)
{
	return zones_start(new_cfg);
}

static void zones_stop(void)
{
	pthread_mutex_lock(&lock);
	if (cur && cur->enabled && es_kernel_ready())
		install(NULL);
	zones_free(cur);
	cur = NULL;
	active = false;
	pthread_mutex_unlock(&lock);
}

/* Every 10 s: interfaces that appeared or were re-created get their zone. */
static void zones_tick(void)
{
	bool changed = false;

	if (++ticks % 10)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; cur && cur->enabled && i < n_ifmap; i++)
		changed |= if_nametoindex(ifmap[i].name) != ifmap[i].ifindex;
	if (changed)
		apply_locked(cur);
	pthread_mutex_unlock(&lock);
}

static void zones_status(json_t *o)
{
	pthread_mutex_lock(&lock);
	json_object_set_new(o, "active", json_boolean(active));
	if (!active && inactive_reason[0])
		json_object_set_new(o, "reason", json_string(inactive_reason));
	pthread_mutex_unlock(&lock);
}

static void h_zones(const struct es_req *req, struct es_resp *resp)
{
	json_t *o, *zs = json_array(), *ps = json_array(), *im = json_array();

	pthread_mutex_lock(&lock);
	for (size_t i = 0; cur && i < cur->n; i++) {
		json_t *ifs = json_array();

		for (char **p = cur->z[i].interfaces; p && *p; p++)
			json_array_append_new(ifs, json_string(*p));
		json_array_append_new(zs,
				      json_pack("{s:s,s:i,s:o,s:s}", "id", cur->z[i].id, "index",
						(int)(i + 1), "interfaces", ifs, "default_policy",
						cur->z[i].default_policy ? "deny" : "allow"));
	}
	for (size_t i = 0; cur && i < cur->np; i++)
		json_array_append_new(ps, json_pack("{s:s,s:s,s:s}", "from",
						    cur->z[cur->p[i].from - 1].id, "to",
						    cur->z[cur->p[i].to - 1].id, "policy",
						    cur->p[i].policy ? "deny" : "allow"));
	for (size_t i = 0; cur && cur->enabled && i < n_ifmap; i++)
		json_array_append_new(im, json_pack("{s:s,s:I,s:s}", "interface", ifmap[i].name,
						    "ifindex", (json_int_t)ifmap[i].ifindex, "zone",
						    cur->z[ifmap[i].zone - 1].id));
	o = json_pack("{s:b,s:b,s:o,s:o,s:o}", "enabled", cur && cur->enabled, "active", active,
		      "zones", zs, "policies", ps, "interface_map", im);
	if (!active && inactive_reason[0])
		json_object_set_new(o, "reason", json_string(inactive_reason));
	pthread_mutex_unlock(&lock);
	es_resp_json(resp, 200, o);
}

static const struct es_route zones_routes[] = {
    {"GET", "/api/v1/zones", h_zones, 0},
    {NULL, NULL, NULL, 0},
};

const struct es_domain es_domain_zones = {
    .name = "zones",
    .section = "zones",
    .parse = zones_parse,
    .free_cfg = zones_free,
    .to_json = zones_to_json,
    .enabled = zones_enabled,
    .start = zones_start,
    .apply = zones_apply,
    .stop = zones_stop,
    .status = zones_status,
    .tick = zones_tick,
    .routes = zones_routes,
};
