// SPDX-License-Identifier: AGPL-3.0-only
/* Configuration loading: closed top level, the agent section, domain sections. */
#define ES_LOG_TARGET "ebpfsentinel::config"
#include "agent/config.h"
#include "agent/domain.h"
#include "core/net.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Top-level keys in the reference's declaration order (used in its error text). */
static const char *const top_keys[] = {
    "agent",	   "firewall", "ids",	  "ips",	  "l7",	   "alerting", "ratelimit",
    "threatintel", "audit",    "auth",	  "dlp",	  "dns",   "ddos",     "conntrack",
    "nat",	   "zones",    "routing", "loadbalancer", "geoip", NULL,
};

/* Global count limits of interfaces.md §2.1, checked before any domain parses. */
static const struct {
	const char *section, *key;
	size_t max;
} count_limits[] = {
    {"firewall", "rules", 4096},   {"ids", "rules", 50000},	{"ips", "rules", 50000},
    {"l7", "rules", 10000},	   {"dlp", "patterns", 1000},	{"threatintel", "feeds", 100},
    {"ratelimit", "rules", 10000}, {"alerting", "routes", 100}, {"firewall", "aliases", 1000},
    {"zones", "zones", 64},
};

static const char *const agent_keys[] = {
    "interfaces", "bind_address", "http_port",	"grpc_port",	    "metrics_port",
    "log_level",  "log_format",	  "swagger_ui", "ebpf_program_dir", "tls",
    "xdp_mode",	  "bpffs_dir",	  NULL,
};

static void mask_secrets(json_t *root);

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const format_names[] = {"json", "text", NULL};
static const char *const xdp_mode_names[] = {"auto", "native", "generic", NULL};

static void agent_cfg_free(struct es_agent_cfg *a)
{
	es_strv_free(a->interfaces);
	free(a->bind_address);
	free(a->ebpf_program_dir);
	free(a->tls.cert_path);
	free(a->tls.key_path);
	free(a->bpffs_dir);
	memset(a, 0, sizeof(*a));
}

static int parse_tls(struct es_cfg *c, const json_t *agent, struct es_tls_cfg *t)
{
	static const char *const keys[] = {"enabled", "cert_path", "key_path", NULL};
	json_t *node;

	if (es_cfg_expect_object(c, agent, "agent", "tls", &node))
		return -EINVAL;
	es_cfg_check_keys(c, node, "agent.tls", keys);
	if (es_cfg_bool(c, node, "agent.tls", "enabled", &t->enabled, false) ||
	    es_cfg_str(c, node, "agent.tls", "cert_path", &t->cert_path, "") ||
	    es_cfg_str(c, node, "agent.tls", "key_path", &t->key_path, ""))
		return -EINVAL;
	if (!t->enabled)
		return 0;
	if (!t->cert_path[0])
		return es_cfg_fail(c, ES_ERR_VALIDATION, node ? node : agent, "agent.tls",
				   node ? "cert_path" : "tls", 0,
				   "TLS is enabled but cert_path is not set");
	if (!t->key_path[0])
		return es_cfg_fail(c, ES_ERR_VALIDATION, node ? node : agent, "agent.tls",
				   node ? "key_path" : "tls", 0,
				   "TLS is enabled but key_path is not set");
	return 0;
}

static int parse_agent(struct es_cfg *c, const json_t *root, struct es_agent_cfg *a)
{
	json_t *agent;
	int lvl, fmt, mode;
	struct es_addr addr;

	if (es_cfg_expect_object(c, root, "", "agent", &agent))
		return -EINVAL;
	if (!agent) {
		es_cfg_fail(c, ES_ERR_PARSE, root, "", "", SIZE_MAX, "missing field `agent`");
		return -EINVAL;
	}
	es_cfg_check_keys(c, agent, "agent", agent_keys);
	if (json_object_get(agent, "host") || json_object_get(agent, "port"))
		es_cfg_warn(c, "agent.host and agent.port are not configuration keys: use "
			       "agent.bind_address and agent.http_port");

	if (!json_object_get(agent, "interfaces") ||
	    json_is_null(json_object_get(agent, "interfaces")))
		return es_cfg_fail(c, ES_ERR_PARSE, agent, "agent", "", SIZE_MAX,
				   "missing field `interfaces`");
	if (es_cfg_strv(c, agent, "agent", "interfaces", &a->interfaces, &a->n_interfaces))
		return -EINVAL;
	if (a->n_interfaces == 0)
		return es_cfg_fail(c, ES_ERR_VALIDATION, agent, "agent", "interfaces", 0,
				   "at least one interface is required");
	for (size_t i = 0; i < a->n_interfaces; i++) {
		if (!a->interfaces[i][0] || strlen(a->interfaces[i]) >= 16) {
			char p[64];

			es_path_key(p, sizeof(p), "agent", "interfaces");
			return es_cfg_fail(c, ES_ERR_VALIDATION,
					   json_object_get(agent, "interfaces"), p, NULL, i,
					   "invalid interface name '%s'", a->interfaces[i]);
		}
	}

	if (es_cfg_str(c, agent, "agent", "bind_address", &a->bind_address, "127.0.0.1"))
		return -EINVAL;
	if (es_addr_parse(a->bind_address, &addr))
		return es_cfg_fail(c, ES_ERR_VALIDATION, agent, "agent", "bind_address", 0,
				   "invalid IP address '%s'", a->bind_address);
	if (es_cfg_u16(c, agent, "agent", "http_port", &a->http_port, 8080) ||
	    es_cfg_u16(c, agent, "agent", "grpc_port", &a->grpc_port, 50051) ||
	    es_cfg_u16(c, agent, "agent", "metrics_port", &a->metrics_port, 9090))
		return -EINVAL;
	if (a->grpc_port == a->http_port)
		return es_cfg_fail(c, ES_ERR_VALIDATION, agent, "agent", "grpc_port", 0,
				   "port %u conflicts with agent.http_port", a->grpc_port);
	if (a->metrics_port == a->http_port)
		return es_cfg_fail(c, ES_ERR_VALIDATION, agent, "agent", "metrics_port", 0,
				   "port %u conflicts with agent.http_port", a->metrics_port);
	if (a->metrics_port == a->grpc_port)
		return es_cfg_fail(c, ES_ERR_VALIDATION, agent, "agent", "metrics_port", 0,
				   "port %u conflicts with agent.grpc_port", a->metrics_port);

	if (es_cfg_enum_exact(c, agent, "agent", "log_level", level_names, &lvl, ES_LOG_INFO) ||
	    es_cfg_enum_exact(c, agent, "agent", "log_format", format_names, &fmt, ES_LOG_JSON) ||
	    es_cfg_bool(c, agent, "agent", "swagger_ui", &a->swagger_ui, false) ||
	    es_cfg_str(c, agent, "agent", "ebpf_program_dir", &a->ebpf_program_dir, NULL) ||
	    es_cfg_enum(c, agent, "agent", "xdp_mode", xdp_mode_names, &mode, ES_XDP_AUTO) ||
	    es_cfg_str(c, agent, "agent", "bpffs_dir", &a->bpffs_dir, NULL))
		return -EINVAL;
	a->log_level = lvl;
	a->log_format = fmt;
	a->xdp_mode = mode;
	if (a->bpffs_dir && a->bpffs_dir[0] != '/')
		return es_cfg_fail(c, ES_ERR_VALIDATION, agent, "agent", "bpffs_dir", 0,
				   "must be an absolute path");
	return parse_tls(c, agent, &a->tls);
}

static int check_top_level(struct es_cfg *c, const json_t *root)
{
	const char *k;
	json_t *v;

	if (!json_is_object(root)) {
		char d[64];

		es_json_describe(root, d, sizeof(d));
		return es_cfg_fail(c, ES_ERR_PARSE, NULL, "", "", SIZE_MAX,
				   "invalid type: %s, expected struct AgentConfig", d);
	}
	json_object_foreach ((json_t *)root, k, v) {
		const char *const *p;
		char list[512] = "";

		for (p = top_keys; *p; p++)
			if (!strcmp(*p, k))
				break;
		if (*p)
			continue;
		for (p = top_keys; *p; p++) {
			size_t l = strlen(list);

			snprintf(list + l, sizeof(list) - l, "%s`%s`", p == top_keys ? "" : ", ",
				 *p);
		}
		es_cfg_fail(c, ES_ERR_PARSE, root, "", k, 0,
			    "unknown field `%s`, expected one of %s", k, list);
		c->err.path[0] = '\0';
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(count_limits) / sizeof(count_limits[0]); i++) {
		const json_t *sec = json_object_get(root, count_limits[i].section);
		const json_t *list =
		    json_is_object(sec) ? json_object_get(sec, count_limits[i].key) : NULL;
		size_t n = json_is_array(list)	  ? json_array_size(list)
			   : json_is_object(list) ? json_object_size(list)
						  : 0;

		if (n > count_limits[i].max)
			return es_cfg_fail(c, ES_ERR_VALIDATION, sec, count_limits[i].section,
					   count_limits[i].key, 0, "count %zu exceeds maximum %zu",
					   n, count_limits[i].max);
	}
	return 0;
}

void es_config_put(struct es_config *cfg)
{
	if (!cfg ||
	    atomic_fetch_sub_explicit((_Atomic int *)&cfg->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < es_n_domains; i++)
		if (cfg->dcfg[i] && es_domains[i]->free_cfg)
			es_domains[i]->free_cfg(cfg->dcfg[i]);
	agent_cfg_free(&cfg->agent);
	es_doc_free(&cfg->doc);
	es_strv_free(cfg->warnings);
	free(cfg->path);
	free(cfg);
}

struct es_config *es_config_ref(struct es_config *cfg)
{
	if (cfg)
		atomic_fetch_add_explicit((_Atomic int *)&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

/*
 * The node of a section: a top-level key, or a nested one written with a dot
 * ("firewall.scrub") for domains that live inside another section.
 */
static int section_node(struct es_cfg *c, const json_t *root, const char *section, json_t **out)
{
	const char *dot = strchr(section, '.');
	char parent[64];
	json_t *p;

	if (!dot)
		return es_cfg_expect_object(c, root, "", section, out);
	snprintf(parent, sizeof(parent), "%.*s", (int)(dot - section), section);
	if (es_cfg_expect_object(c, root, "", parent, &p))
		return -EINVAL;
	*out = NULL;
	return p ? es_cfg_expect_object(c, p, parent, dot + 1, out) : 0;
}

static struct es_config *build(struct es_doc *doc, const char *path, struct es_error *err)
{
	struct es_config *cfg = calloc(1, sizeof(*cfg));
	struct es_cfg c;

	if (!cfg) {
		es_doc_free(doc);
		err->kind = ES_ERR_IO;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return NULL;
	}
	cfg->refs = 1;
	cfg->doc = *doc;
	cfg->path = strdup(path ? path : "");
	es_cfg_init(&c, &cfg->doc);

	if (check_top_level(&c, cfg->doc.root) || parse_agent(&c, cfg->doc.root, &cfg->agent))
		goto fail;
	for (unsigned i = 0; i < es_n_domains; i++) {
		const struct es_domain *d = es_domains[i];
		json_t *node = NULL;

		if (!d->section || !d->parse)
			continue;
		if (section_node(&c, cfg->doc.root, d->section, &node))
			goto fail;
		cfg->dcfg[i] = d->parse(&c, node, d->section, cfg->doc.root);
		if (!cfg->dcfg[i]) {
			if (!es_cfg_failed(&c))
				es_cfg_fail(&c, ES_ERR_VALIDATION, cfg->doc.root, "", d->section, 0,
					    "could not build configuration (out of memory?)");
			goto fail;
		}
	}
	cfg->warnings = calloc(c.n_warnings + 1, sizeof(char *));
	for (size_t i = 0; cfg->warnings && i < c.n_warnings; i++) {
		cfg->warnings[i] = c.warnings[i];
		c.warnings[i] = NULL;
	}
	cfg->n_warnings = cfg->warnings ? c.n_warnings : 0;
	es_cfg_release(&c);
	return cfg;
fail:
	*err = c.err;
	es_cfg_release(&c);
	es_config_put(cfg);
	return NULL;
}

struct es_config *es_config_parse(const char *text, size_t len, const char *path,
				  struct es_error *err)
{
	struct es_doc doc;

	if (es_doc_parse_yaml(text, len, &doc, err))
		return NULL;
	return build(&doc, path, err);
}

struct es_config *es_config_load(const char *path, struct es_error *err)
{
	struct es_doc doc;

	if (es_doc_load_file(path, &doc, err))
		return NULL;
	return build(&doc, path, err);
}

/* ---- published configuration ------------------------------------------------ */

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct es_config *current;

struct es_config *es_config_current(void)
{
	struct es_config *c;

	pthread_mutex_lock(&current_lock);
	c = es_config_ref(current);
	pthread_mutex_unlock(&current_lock);
	return c;
}

void es_config_publish(struct es_config *cfg)
{
	struct es_config *old;

	es_config_ref(cfg);
	pthread_mutex_lock(&current_lock);
	old = current;
	current = cfg;
	pthread_mutex_unlock(&current_lock);
	es_config_put(old);
}

const void *es_config_domain(const struct es_config *cfg, const char *name)
{
	int i = es_domain_index(name);

	return cfg && i >= 0 ? cfg->dcfg[i] : NULL;
}

json_t *es_config_to_json(const struct es_config *cfg)
{
	const struct es_agent_cfg *a = &cfg->agent;
	json_t *root = json_object(), *agent = json_object(), *ifs = json_array();
	json_t *tls = json_object();

	for (size_t i = 0; i < a->n_interfaces; i++)
		json_array_append_new(ifs, json_string(a->interfaces[i]));
	json_object_set_new(agent, "interfaces", ifs);
	json_object_set_new(agent, "bind_address", json_string(a->bind_address));
	json_object_set_new(agent, "http_port", json_integer(a->http_port));
	json_object_set_new(agent, "grpc_port", json_integer(a->grpc_port));
	json_object_set_new(agent, "metrics_port", json_integer(a->metrics_port));
	json_object_set_new(agent, "log_level", json_string(level_names[a->log_level]));
	json_object_set_new(agent, "log_format", json_string(format_names[a->log_format]));
	json_object_set_new(agent, "swagger_ui", json_boolean(a->swagger_ui));
	json_object_set_new(agent, "ebpf_program_dir",
			    a->ebpf_program_dir ? json_string(a->ebpf_program_dir) : json_null());
	json_object_set_new(tls, "enabled", json_boolean(a->tls.enabled));
	json_object_set_new(tls, "cert_path", json_string(a->tls.cert_path));
	json_object_set_new(tls, "key_path", json_string(a->tls.key_path[0] ? "***" : ""));
	json_object_set_new(agent, "tls", tls);
	json_object_set_new(agent, "xdp_mode", json_string(xdp_mode_names[a->xdp_mode]));
	json_object_set_new(agent, "bpffs_dir",
			    a->bpffs_dir ? json_string(a->bpffs_dir) : json_null());
	json_object_set_new(root, "agent", agent);

	for (unsigned i = 0; i < es_n_domains; i++) {
		const struct es_domain *d = es_domains[i];

		const char *dot;

		if (!d->section || !d->to_json || !cfg->dcfg[i])
			continue;
		dot = strchr(d->section, '.');
		if (!dot) {
			json_object_set_new(root, d->section, d->to_json(cfg->dcfg[i]));
		} else {
			char parent[64];
			json_t *p;

			snprintf(parent, sizeof(parent), "%.*s", (int)(dot - d->section),
				 d->section);
			p = json_object_get(root, parent);
			if (!json_is_object(p)) {
				p = json_object();
				json_object_set_new(root, parent, p);
			}
			json_object_set_new(p, dot + 1, d->to_json(cfg->dcfg[i]));
		}
	}
	mask_secrets(root);
	return root;
}

/* ---- secret masking -------------------------------------------------------------- */

static void mask_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v) && json_string_length(v) > 0)
		json_object_set_new(obj, key, json_string("***"));
}

static void mask_each(json_t *arr, const char *key)
{
	size_t i;
	json_t *it;

	json_array_foreach (arr, i, it)
		if (json_is_object(it))
			mask_str(it, key);
}

/*
 * Secrets masked in GET /api/v1/config (interfaces.md §3.4), applied to the
 * assembled document so no domain can leak one by forgetting.
 */
static void mask_secrets(json_t *root)
{
	json_t *auth = json_object_get(root, "auth"), *al = json_object_get(root, "alerting");
	json_t *ti = json_object_get(root, "threatintel"), *geo = json_object_get(root, "geoip");
	size_t i;
	json_t *route;

	if (json_is_object(auth))
		mask_each(json_object_get(auth, "api_keys"), "key");
	if (json_is_object(al)) {
		json_t *smtp = json_object_get(al, "smtp");

		if (json_is_object(smtp))
			mask_str(smtp, "password");
		json_array_foreach (json_object_get(al, "routes"), i, route) {
			json_t *h = json_is_object(route)
					? json_object_get(route, "webhook_headers")
					: NULL;
			const char *k;
			json_t *v;

			if (json_is_object(h))
				json_object_foreach (h, k, v)
					json_object_set_new(h, k, json_string("***"));
		}
	}
	if (json_is_object(ti))
		mask_each(json_object_get(ti, "feeds"), "auth_header");
	if (json_is_object(geo)) {
		json_t *src = json_object_get(geo, "source");

		if (json_is_object(src))
			mask_str(src, "license_key");
		json_t *acct = json_is_object(src) ? json_object_get(src, "maxmind_account") : NULL;

		if (json_is_object(acct))
			mask_str(acct, "license_key");
	}
}

/* ---- pending domains ---------------------------------------------------------- */

struct pending_cfg {
	json_t *node;
	bool enabled;
};

void *es_pending_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct pending_cfg *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (es_cfg_bool(c, node, path, "enabled", &p->enabled, false)) {
		free(p);
		return NULL;
	}
	p->node = node ? json_deep_copy(node) : json_object();
	return p;
}

void es_pending_free(void *cfg)
{
	struct pending_cfg *p = cfg;

	if (!p)
		return;
	json_decref(p->node);
	free(p);
}

json_t *es_pending_to_json(const void *cfg)
{
	const struct pending_cfg *p = cfg;

	return json_deep_copy(p->node);
}

bool es_pending_enabled(const void *cfg)
{
	return ((const struct pending_cfg *)cfg)->enabled;
}
