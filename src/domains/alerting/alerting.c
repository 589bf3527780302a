// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Alerting domain (interfaces.md §7): the `alerting` section, the alert store
 * (its place and age bound come from the `audit` section, §8.1) and the
 * pipeline installed as the es_alert sink.
 */
#define _GNU_SOURCE
#define ES_LOG_TARGET "ebpfsentinel::alerts"
#include "agent/domain.h"
#include "core/log.h"
#include "domains/alerting/alerting_int.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const al_keys[] = {
    "enabled",
    "dedup_window_secs",
    "throttle_window_secs",
    "throttle_max",
    "smtp",
    "routes",
    "retry_delays_ms",
    NULL,
};
static const char *const smtp_keys[] = {
    "host", "port", "username", "password", "from_address", "tls", NULL,
};
static const char *const route_keys[] = {
    "name",	   "destination", "min_severity",    "event_types",
    "webhook_url", "email_to",	  "webhook_headers", NULL,
};
static const char *const dest_names[] = {"log", "email", "webhook", NULL};

static void route_free(struct al_route *r)
{
	free(r->name);
	es_strv_free(r->event_types);
	free(r->webhook_url);
	free(r->email_to);
	es_strv_free(r->header_names);
	es_strv_free(r->header_values);
}

void al_cfg_free(struct al_cfg *c)
{

	if (!c)
		return;
	for (size_t i = 0; i < c->n_routes; i++)
		route_free(&c->routes[i]);
	free(c->routes);
	free(c->smtp.host);
	free(c->smtp.username);
	free(c->smtp.password);
	free(c->smtp.from_address);
	free(c->store_path);
	free(c);
}

static void al_free(void *p)
{
	al_cfg_free(p);
}

static int parse_severity(struct es_cfg *c, const json_t *obj, const char *path,
			  enum es_severity *out)
{
	const json_t *v = json_object_get(obj, "min_severity");
	char full[300];

	if (!v || json_is_null(v))
		return es_cfg_fail(c, ES_ERR_PARSE, obj, path, "", SIZE_MAX,
				   "missing field `min_severity`");
	if (!json_is_string(v))
		return es_cfg_fail(c, ES_ERR_PARSE, obj, path, "min_severity", 0,
				   "invalid type: expected a string");
	if (es_severity_parse(json_string_value(v), out) == 0)
		return 0;
	es_path_key(full, sizeof(full), path, "min_severity");
	es_cfg_fail(
	    c, ES_ERR_RAW, obj, path, "min_severity", 0,
	    "invalid value '%s' for field '%s': expected one of low, medium, high, critical",
	    json_string_value(v), full);
	c->err.path[0] = '\0';
	return -EINVAL;
}

static int parse_route(struct es_cfg *c, const json_t *node, const char *path, struct al_route *r)
{
	json_t *hdrs;
	int dest;

	if (!json_is_object(node))
		return es_cfg_fail(c, ES_ERR_PARSE, node, path, "", SIZE_MAX,
				   "invalid type: expected struct AlertRoute");
	es_cfg_check_keys(c, node, path, route_keys);
	if (es_cfg_req_str(c, node, path, "name", &r->name))
		return -EINVAL;
	if (!r->name[0])
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "name", 0,
				   "route name must not be empty");
	if (!json_object_get(node, "destination"))
		return es_cfg_fail(c, ES_ERR_PARSE, node, path, "", SIZE_MAX,
				   "missing field `destination`");
	if (es_cfg_enum(c, node, path, "destination", dest_names, &dest, 0) ||
	    parse_severity(c, node, path, &r->min_severity))
		return -EINVAL;
	r->dest = (enum al_dest)dest;
	if (json_object_get(node, "event_types") &&
	    !json_is_null(json_object_get(node, "event_types")) &&
	    es_cfg_strv(c, node, path, "event_types", &r->event_types, NULL))
		return -EINVAL;
	if (es_cfg_str(c, node, path, "webhook_url", &r->webhook_url, NULL) ||
	    es_cfg_str(c, node, path, "email_to", &r->email_to, NULL) ||
	    es_cfg_expect_object(c, node, path, "webhook_headers", &hdrs))
		return -EINVAL;
	if (r->dest == AL_DEST_WEBHOOK && (!r->webhook_url || !r->webhook_url[0]))
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "webhook_url", 0,
				   "webhook route requires a webhook_url");
	if (r->dest == AL_DEST_WEBHOOK && strncasecmp(r->webhook_url, "http://", 7) &&
	    strncasecmp(r->webhook_url, "https://", 8))
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "webhook_url", 0,
				   "webhook_url must be an http or https URL");
	if (r->dest == AL_DEST_EMAIL && (!r->email_to || !r->email_to[0]))
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "email_to", 0,
				   "email route requires an email_to address");
	if (hdrs) {
		size_t n = json_object_size(hdrs), i = 0;
		const char *k;
		json_t *v;

		r->header_names = calloc(n + 1, sizeof(char *));
		r->header_values = calloc(n + 1, sizeof(char *));
		if (!r->header_names || !r->header_values)
			return -ENOMEM;
		json_object_foreach (hdrs, k, v) {
			char p[300];

			es_path_key(p, sizeof(p), path, "webhook_headers");
			if (!json_is_string(v) || strpbrk(k, "\r\n:") ||
			    strpbrk(json_string_value(v), "\r\n"))
				return es_cfg_fail(c, ES_ERR_VALIDATION, hdrs, p, k, 0,
						   "invalid header");
			r->header_names[i] = strdup(k);
			r->header_values[i] = strdup(json_string_value(v));
			if (!r->header_names[i] || !r->header_values[i++])
				return -ENOMEM;
		}
	}
	return 0;
}

static int parse_smtp(struct es_cfg *c, const json_t *node, const char *path, struct al_smtp *s)
{
	es_cfg_check_keys(c, node, path, smtp_keys);
	s->present = true;
	if (es_cfg_req_str(c, node, path, "host", &s->host) ||
	    es_cfg_u16(c, node, path, "port", &s->port, 587) ||
	    es_cfg_str(c, node, path, "username", &s->username, NULL) ||
	    es_cfg_str(c, node, path, "password", &s->password, NULL) ||
	    es_cfg_req_str(c, node, path, "from_address", &s->from_address) ||
	    es_cfg_bool(c, node, path, "tls", &s->tls, true))
		return -EINVAL;
	return 0;
}

/* The store sits beside the audit file (audit.storage_path, §8.1). */
static int store_from_audit(struct es_cfg *c, const json_t *root, struct al_cfg *a)
{
	const json_t *audit = json_object_get(root, "audit");
	const char *sp = "data/audit.redb";
	char buf[1024];
	json_int_t days = 90;

	if (json_is_object(audit)) {
		const json_t *p = json_object_get(audit, "storage_path");
		const json_t *d = json_object_get(audit, "retention_days");

		if (json_is_string(p) && json_string_length(p))
			sp = json_string_value(p);
		if (json_is_integer(d) && json_integer_value(d) >= 0)
			days = json_integer_value(d);
	}
	snprintf(buf, sizeof(buf), "%s", sp);
	a->retention_days = days > UINT32_MAX ? UINT32_MAX : (uint32_t)days;
	if (asprintf(&a->store_path, "%s/alerts.db", dirname(buf)) < 0) {
		a->store_path = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void *al_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct al_cfg *a = calloc(1, sizeof(*a));
	json_t *routes, *smtp, *retry;
	bool need_smtp = false;

	if (!a)
		return NULL;
	es_cfg_check_keys(c, node, path, al_keys);
	memcpy(a->retry_ms, al_default_retry_ms, sizeof(a->retry_ms));
	if (es_cfg_bool(c, node, path, "enabled", &a->enabled, true) ||
	    es_cfg_u64(c, node, path, "dedup_window_secs", &a->dedup_window_secs, 60) ||
	    es_cfg_u64(c, node, path, "throttle_window_secs", &a->throttle_window_secs, 300) ||
	    es_cfg_u64(c, node, path, "throttle_max", &a->throttle_max, 100) ||
	    es_cfg_expect_object(c, node, path, "smtp", &smtp) ||
	    es_cfg_array(c, node, path, "routes", &routes) ||
	    es_cfg_array(c, node, path, "retry_delays_ms", &retry))
		goto fail;
	if (retry) {
		char p[300];

		es_path_key(p, sizeof(p), path, "retry_delays_ms");
		if (json_array_size(retry) != AL_MAX_RETRIES) {
			es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "retry_delays_ms", 0,
				    "expected %d delays", AL_MAX_RETRIES);
			goto fail;
		}
		for (size_t i = 0; i < AL_MAX_RETRIES; i++) {
			json_t *v = json_array_get(retry, i);

			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 600000) {
				es_cfg_fail(c, ES_ERR_VALIDATION, retry, p, NULL, i,
					    "delay must be 0-600000 ms");
				goto fail;
			}
			a->retry_ms[i] = (uint32_t)json_integer_value(v);
		}
	}
	if (smtp && parse_smtp(c, smtp, "alerting.smtp", &a->smtp))
		goto fail;
	if (!json_object_get(node, "routes") || json_is_null(json_object_get(node, "routes"))) {
		/* Absent key: the one default route; an explicit [] means none. */
		a->routes = calloc(1, sizeof(*a->routes));
		if (!a->routes || !(a->routes[0].name = strdup("default-log")))
			goto fail;
		a->n_routes = 1;
	} else if (json_array_size(routes)) {
		a->routes = calloc(json_array_size(routes), sizeof(*a->routes));
		if (!a->routes)
			goto fail;
		for (size_t i = 0; i < json_array_size(routes); i++) {
			char p[300];

			es_path_idx(p, sizeof(p), "alerting.routes", i);
			a->n_routes = i + 1;
			if (parse_route(c, json_array_get(routes, i), p, &a->routes[i]))
				goto fail;
			need_smtp |= a->routes[i].dest == AL_DEST_EMAIL;
		}
	}
	if (need_smtp && !a->smtp.present) {
		es_cfg_fail(c, ES_ERR_VALIDATION, root, "alerting", "smtp", 0,
			    "email route requires smtp configuration");
		goto fail;
	}
	if (store_from_audit(c, root, a))
		goto fail;
	return a;
fail:
	al_cfg_free(a);
	return NULL;
}

static json_t *al_to_json(const void *p)
{
	const struct al_cfg *a = p;
	json_t *o = json_object(), *routes = json_array();

	json_object_set_new(o, "enabled", json_boolean(a->enabled));
	json_object_set_new(o, "dedup_window_secs", json_integer((json_int_t)a->dedup_window_secs));
	json_object_set_new(o, "throttle_window_secs",
			    json_integer((json_int_t)a->throttle_window_secs));
	json_object_set_new(o, "throttle_max", json_integer((json_int_t)a->throttle_max));
	if (a->smtp.present)
		json_object_set_new(
		    o, "smtp",
		    json_pack(
			"{s:s,s:i,s:o,s:o,s:s,s:b}", "host", a->smtp.host, "port", a->smtp.port,
			"username", a->smtp.username ? json_string(a->smtp.username) : json_null(),
			"password", a->smtp.password ? json_string(a->smtp.password) : json_null(),
			"from_address", a->smtp.from_address, "tls", a->smtp.tls));
	else
		json_object_set_new(o, "smtp", json_null());
	for (size_t i = 0; i < a->n_routes; i++) {
		const struct al_route *r = &a->routes[i];
		json_t *ro =
		    json_pack("{s:s,s:s,s:s}", "name", r->name, "destination", dest_names[r->dest],
			      "min_severity", es_severity_name(r->min_severity));
		json_t *et = json_null();

		if (r->event_types) {
			et = json_array();
			for (char **e = r->event_types; *e; e++)
				json_array_append_new(et, json_string(*e));
		}
		json_object_set_new(ro, "event_types", et);
		if (r->webhook_url)
			json_object_set_new(ro, "webhook_url", json_string(r->webhook_url));
		if (r->email_to)
			json_object_set_new(ro, "email_to", json_string(r->email_to));
		if (r->header_names) {
			json_t *h = json_object();

			for (size_t k = 0; r->header_names[k]; k++)
				json_object_set_new(h, r->header_names[k],
						    json_string(r->header_values[k]));
			json_object_set_new(ro, "webhook_headers", h);
		}
		json_array_append_new(routes, ro);
	}
	json_object_set_new(o, "routes", routes);
	return o;
}

static bool al_enabled(const void *p)
{
	return ((const struct al_cfg *)p)->enabled;
}

static int al_start(const void *p)
{
	const struct al_cfg *a = p;

	al_store_open(a->store_path, a->retention_days);
	return al_pipeline_start(a);
}

static int al_apply(const void *old, const void *p)
{
	al_pipeline_apply(p);
	return 0;
}

static void al_stop(void)
{
	al_pipeline_stop(1000);
	al_store_close();
}

static void al_status(json_t *o)
{
	json_object_set_new(o, "active", json_true());
	json_object_set_new(o, "store", json_boolean(al_store_ready()));
}

const struct es_domain es_domain_alerting = {
    .name = "alerting",
    .section = "alerting",
    .flags = ES_DOMAIN_EARLY, /* the alert store opens with the others (§1.3 step 4) */
    .parse = al_parse,
    .free_cfg = al_free,
    .to_json = al_to_json,
    .enabled = al_enabled,
    .start = al_start,
    .apply = al_apply,
    .stop = al_stop,
    .status = al_status,
    .tick = al_pipeline_tick,
    .routes = al_routes,
};
