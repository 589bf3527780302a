// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Aliases (network.md §2.4): parsing and validation of firewall.aliases,
 * resolution to address or port lists (nested flattened), and the runtime
 * contents of the aliases fetched while running (url_table, dynamic_dns,
 * interface_group) with the thread that refreshes them. A failed refresh
 * keeps the previous contents.
 */
#define ES_LOG_TARGET "ebpfsentinel::firewall"
#include "domains/firewall/fw.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const fw_alias_type_names[] = {
    "ip_set", "port_set", "nested", "url_table", "geoip", "dynamic_dns", "interface_group", NULL,
};

static const char *const alias_keys[] = {
    "type",	     "values",	  "aliases",	"url",	       "refresh_interval",
    "country_codes", "hostnames", "interfaces", "description", NULL,
};

#define FAIL(c, o, path, key, ...) es_cfg_fail(c, ES_ERR_VALIDATION, o, path, key, 0, __VA_ARGS__)
#define URL_TABLE_MAX_BYTES (8u << 20)
#define URL_TABLE_MAX_ENTRIES 65536

static void alias_free(struct fw_alias *a)
{
	free(a->name);
	free(a->description);
	free(a->cidrs);
	free(a->ports);
	es_strv_free(a->members);
	free(a->url);
	es_strv_free(a->countries);
	es_strv_free(a->hostnames);
	es_strv_free(a->interfaces);
	memset(a, 0, sizeof(*a));
}

void fw_aliases_free(struct fw_aliases *a)
{
	for (size_t i = 0; i < a->n; i++)
		alias_free(&a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

const struct fw_alias *fw_alias_find(const struct fw_aliases *a, const char *name)
{
	for (size_t i = 0; a && name && i < a->n; i++)
		if (!strcmp(a->v[i].name, name))
			return &a->v[i];
	return NULL;
}

static int need_list(struct es_cfg *c, const json_t *o, const char *path, const char *key,
		     json_t **arr, const char *what)
{
	if (es_cfg_array(c, o, path, key, arr))
		return -EINVAL;
	if (!*arr || !json_array_size(*arr))
		return FAIL(c, o, path, key, "%s alias needs at least one entry in `%s`", what,
			    key);
	return 0;
}

static int parse_values(struct es_cfg *c, const json_t *o, const char *path, struct fw_alias *a)
{
	json_t *arr, *item;
	char full[300], why[128];
	size_t i;

	if (need_list(c, o, path, "values", &arr, fw_alias_type_names[a->type]))
		return -EINVAL;
	es_path_key(full, sizeof(full), path, "values");
	if (a->type == FW_AT_IP_SET) {
		a->cidrs = calloc(json_array_size(arr), sizeof(*a->cidrs));
		if (!a->cidrs)
			return -ENOMEM;
		json_array_foreach (arr, i, item) {
			if (!json_is_string(item))
				return es_cfg_fail(c, ES_ERR_PARSE, arr, full, NULL, i,
						   "invalid type: expected a string");
			if (es_cidr_parse(json_string_value(item), &a->cidrs[i], why, sizeof(why)))
				return es_cfg_fail(c, ES_ERR_VALIDATION, arr, full, NULL, i,
						   "invalid CIDR notation '%s': %s",
						   json_string_value(item), why);
		}
		a->n_cidrs = json_array_size(arr);
		return 0;
	}
	a->ports = calloc(json_array_size(arr), sizeof(*a->ports));
	if (!a->ports)
		return -ENOMEM;
	json_array_foreach (arr, i, item) {
		struct es_port_range *r = &a->ports[i];

		if (json_is_integer(item)) {
			json_int_t v = json_integer_value(item);

			if (v < 0 || v > 65535)
				return es_cfg_fail(c, ES_ERR_VALIDATION, arr, full, NULL, i,
						   "invalid port %lld: must be 0-65535",
						   (long long)v);
			r->start = r->end = (uint16_t)v;
		} else if (json_is_string(item)) {
			if (es_port_range_parse(json_string_value(item), r, why, sizeof(why)))
				return es_cfg_fail(c, ES_ERR_VALIDATION, arr, full, NULL, i,
						   "invalid port range '%s': %s",
						   json_string_value(item), why);
		} else {
			return es_cfg_fail(c, ES_ERR_PARSE, arr, full, NULL, i,
					   "invalid type: expected a port or \"a-b\"");
		}
	}
	a->n_ports = json_array_size(arr);
	return 0;
}

static int parse_refresh(struct es_cfg *c, const json_t *o, const char *path, struct fw_alias *a)
{
	if (!json_object_get(o, "refresh_interval"))
		return es_cfg_req_u32(c, o, path, "refresh_interval", &a->refresh_secs);
	if (es_cfg_u32(c, o, path, "refresh_interval", &a->refresh_secs, 0))
		return -EINVAL;
	if (!a->refresh_secs)
		return FAIL(c, o, path, "refresh_interval", "refresh_interval must be > 0");
	return 0;
}

static int parse_strv_nonempty(struct es_cfg *c, const json_t *o, const char *path, const char *key,
			       char ***out, const char *what)
{
	json_t *arr;

	if (need_list(c, o, path, key, &arr, what))
		return -EINVAL;
	return es_cfg_strv(c, o, path, key, out, NULL);
}

static int parse_one(struct es_cfg *c, const char *name, const json_t *o, const char *path,
		     struct fw_alias *a)
{
	int type;

	if (!json_is_object(o)) {
		char d[320];

		es_json_describe(o, d, sizeof(d));
		return es_cfg_fail(c, ES_ERR_PARSE, o, path, "", SIZE_MAX,
				   "invalid type: %s, expected struct Alias", d);
	}
	a->name = strdup(name);
	if (!a->name)
		return -ENOMEM;
	es_cfg_check_keys(c, o, path, alias_keys);
	if (!json_object_get(o, "type")) {
		char *t = NULL;

		return es_cfg_req_str(c, o, path, "type", &t);
	}
	if (es_cfg_enum_exact(c, o, path, "type", fw_alias_type_names, &type, 0) ||
	    es_cfg_str(c, o, path, "description", &a->description, NULL))
		return -EINVAL;
	a->type = (enum fw_alias_type)type;
	a->kind = FW_AK_IP;
	switch (a->type) {
	case FW_AT_IP_SET: return parse_values(c, o, path, a);
	case FW_AT_PORT_SET: a->kind = FW_AK_PORT; return parse_values(c, o, path, a);
	case FW_AT_NESTED: return parse_strv_nonempty(c, o, path, "aliases", &a->members, "nested");
	case FW_AT_URL_TABLE:
		if (es_cfg_req_str(c, o, path, "url", &a->url))
			return -EINVAL;
		if (strncasecmp(a->url, "http://", 7) && strncasecmp(a->url, "https://", 8) &&
		    strncasecmp(a->url, "file://", 7))
			return FAIL(c, o, path, "url",
				    "invalid url '%s': expected http://, https:// or file://",
				    a->url);
		return parse_refresh(c, o, path, a);
	case FW_AT_GEOIP:
		if (parse_strv_nonempty(c, o, path, "country_codes", &a->countries, "geoip"))
			return -EINVAL;
		for (size_t i = 0; a->countries[i]; i++) {
			const char *cc = a->countries[i];

			if (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' ||
			    cc[1] > 'Z')
				return FAIL(c, o, path, "country_codes",
					    "invalid country code '%s': expected two upper-case "
					    "letters",
					    cc);
		}
		return 0;
	case FW_AT_DYNAMIC_DNS:
		if (parse_strv_nonempty(c, o, path, "hostnames", &a->hostnames, "dynamic_dns"))
			return -EINVAL;
		return parse_refresh(c, o, path, a);
	case FW_AT_INTERFACE_GROUP:
		return parse_strv_nonempty(c, o, path, "interfaces", &a->interfaces,
					   "interface_group");
	}
	return 0;
}

/* Kind of an alias, following nested members; -ELOOP on a cycle, -EINVAL on a mix. */
static int alias_kind(const struct fw_aliases *as, const struct fw_alias *a, int depth, char *why,
		      size_t whylen)
{
	int kind = -1;

	if (a->type != FW_AT_NESTED)
		return a->kind;
	if (depth > (int)as->n) {
		snprintf(why, whylen, "alias cycle through '%s'", a->name);
		return -ELOOP;
	}
	for (size_t i = 0; a->members[i]; i++) {
		const struct fw_alias *m = fw_alias_find(as, a->members[i]);
		int k;

		if (!m) {
			snprintf(why, whylen, "nested alias '%s' names unknown alias '%s'", a->name,
				 a->members[i]);
			return -ENOENT;
		}
		if (m == a) {
			snprintf(why, whylen, "alias cycle: '%s' contains itself", a->name);
			return -ELOOP;
		}
		k = alias_kind(as, m, depth + 1, why, whylen);
		if (k < 0)
			return k;
		if (kind >= 0 && k != kind) {
			snprintf(why, whylen, "nested alias '%s' mixes address and port aliases",
				 a->name);
			return -EINVAL;
		}
		kind = k;
	}
	return kind;
}

int fw_aliases_parse(struct es_cfg *c, const json_t *node, const char *path, struct fw_aliases *out)
{
	const char *name;
	json_t *v;
	char p[300], why[256];
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (!node || json_is_null(node))
		return 0;
	if (!json_is_object(node)) {
		char d[320];

		es_json_describe(node, d, sizeof(d));
		return es_cfg_fail(c, ES_ERR_PARSE, node, path, "", SIZE_MAX,
				   "invalid type: %s, expected a map", d);
	}
	out->v = calloc(json_object_size(node) + 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	json_object_foreach ((json_t *)node, name, v) {
		es_path_key(p, sizeof(p), path, name);
		if (!es_id_valid(name)) {
			es_cfg_fail(c, ES_ERR_VALIDATION, node, path, name, 0,
				    "invalid alias name '%s': letters, digits, '-' and '_' only",
				    name);
			goto fail;
		}
		out->n = i + 1;
		if (parse_one(c, name, v, p, &out->v[i]))
			goto fail;
		i++;
	}
	for (i = 0; i < out->n; i++) {
		int k = alias_kind(out, &out->v[i], 0, why, sizeof(why));

		if (k < 0) {
			es_path_key(p, sizeof(p), path, out->v[i].name);
			es_cfg_fail(c, ES_ERR_VALIDATION, json_object_get(node, out->v[i].name), p,
				    "aliases", 0, "%s", why);
			goto fail;
		}
		out->v[i].kind = (enum fw_alias_kind)k;
	}
	return 0;
fail:
	fw_aliases_free(out);
	return -EINVAL;
}

json_t *fw_alias_to_json(const struct fw_alias *a)
{
	json_t *o = json_pack("{s:s}", "type", fw_alias_type_names[a->type]), *arr;
	char buf[64];

	if (a->description)
		json_object_set_new(o, "description", json_string(a->description));
	switch (a->type) {
	case FW_AT_IP_SET:
		arr = json_array();
		for (size_t i = 0; i < a->n_cidrs; i++) {
			es_cidr_format(&a->cidrs[i], buf, sizeof(buf));
			json_array_append_new(arr, json_string(buf));
		}
		json_object_set_new(o, "values", arr);
		break;
	case FW_AT_PORT_SET:
		arr = json_array();
		for (size_t i = 0; i < a->n_ports; i++) {
			es_port_range_format(&a->ports[i], buf, sizeof(buf));
			json_array_append_new(arr, json_string(buf));
		}
		json_object_set_new(o, "values", arr);
		break;
	case FW_AT_NESTED:
		arr = json_array();
		for (size_t i = 0; a->members[i]; i++)
			json_array_append_new(arr, json_string(a->members[i]));
		json_object_set_new(o, "aliases", arr);
		break;
	case FW_AT_URL_TABLE:
		json_object_set_new(o, "url", json_string(a->url));
		json_object_set_new(o, "refresh_interval", json_integer(a->refresh_secs));
		break;
	case FW_AT_GEOIP:
		arr = json_array();
		for (size_t i = 0; a->countries[i]; i++)
			json_array_append_new(arr, json_string(a->countries[i]));
		json_object_set_new(o, "country_codes", arr);
		break;
	case FW_AT_DYNAMIC_DNS:
		arr = json_array();
		for (size_t i = 0; a->hostnames[i]; i++)
			json_array_append_new(arr, json_string(a->hostnames[i]));
		json_object_set_new(o, "hostnames", arr);
		json_object_set_new(o, "refresh_interval", json_integer(a->refresh_secs));
		break;
	case FW_AT_INTERFACE_GROUP:
		arr = json_array();
		for (size_t i = 0; a->interfaces[i]; i++)
			json_array_append_new(arr, json_string(a->interfaces[i]));
		json_object_set_new(o, "interfaces", arr);
		break;
	}
	return o;
}

/* ---- runtime contents ------------------------------------------------------------ */

struct dyn {
	char *name;
	struct es_cidr *c;
	size_t n;
	bool have;
	int64_t last_ok, last_try;
	char error[256];
};

static pthread_mutex_t dyn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dyn *dyns;
static size_t n_dyns;

static struct dyn *dyn_slot(const char *name, bool create)
{
	struct dyn *nv;

	for (size_t i = 0; i < n_dyns; i++)
		if (!strcmp(dyns[i].name, name))
			return &dyns[i];
	if (!create)
		return NULL;
	nv = realloc(dyns, (n_dyns + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	dyns = nv;
	memset(&dyns[n_dyns], 0, sizeof(dyns[0]));
	dyns[n_dyns].name = strdup(name);
	if (!dyns[n_dyns].name)
		return NULL;
	return &dyns[n_dyns++];
}

void fw_alias_dyn_set(const char *name, const struct es_cidr *c, size_t n)
{
	struct es_cidr *copy = n ? malloc(n * sizeof(*copy)) : NULL;
	struct dyn *d;

	if (n && !copy)
		return;
	if (n)
		memcpy(copy, c, n * sizeof(*copy));
	pthread_mutex_lock(&dyn_lock);
	d = dyn_slot(name, true);
	if (d) {
		free(d->c);
		d->c = copy;
		d->n = n;
		d->have = true;
		d->last_ok = d->last_try = (int64_t)time(NULL);
		d->error[0] = '\0';
		copy = NULL;
	}
	pthread_mutex_unlock(&dyn_lock);
	free(copy);
}

void fw_alias_dyn_fail(const char *name, const char *error)
{
	struct dyn *d;

	pthread_mutex_lock(&dyn_lock);
	d = dyn_slot(name, true);
	if (d) {
		d->last_try = (int64_t)time(NULL);
		snprintf(d->error, sizeof(d->error), "%s", error);
	}
	pthread_mutex_unlock(&dyn_lock);
}

int fw_alias_dyn_get(const char *name, struct es_cidr **out, size_t *n)
{
	struct dyn *d;
	int r = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&dyn_lock);
	d = dyn_slot(name, false);
	if (d && d->n) {
		*out = malloc(d->n * sizeof(**out));
		if (*out) {
			memcpy(*out, d->c, d->n * sizeof(**out));
			*n = d->n;
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&dyn_lock);
	return r;
}

bool fw_alias_dyn_info(const char *name, struct fw_alias_dyn_info *out)
{
	struct dyn *d;
	bool have = false;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&dyn_lock);
	d = dyn_slot(name, false);
	if (d) {
		have = d->have;
		out->n = d->n;
		out->last_ok = d->last_ok;
		out->last_try = d->last_try;
		snprintf(out->error, sizeof(out->error), "%s", d->error);
	}
	pthread_mutex_unlock(&dyn_lock);
	return have;
}

void fw_alias_dyn_forget_all(void)
{
	pthread_mutex_lock(&dyn_lock);
	for (size_t i = 0; i < n_dyns; i++) {
		free(dyns[i].name);
		free(dyns[i].c);
	}
	free(dyns);
	dyns = NULL;
	n_dyns = 0;
	pthread_mutex_unlock(&dyn_lock);
}

/* ---- resolution ----------------------------------------------------------------- */

struct acc {
	struct es_cidr *c;
	size_t nc, capc;
	struct es_port_range *p;
	size_t np, capp;
};

static int acc_cidrs(struct acc *a, const struct es_cidr *c, size_t n)
{
	if (a->nc + n > a->capc) {
		size_t cap = (a->nc + n) * 2;
		struct es_cidr *nv = realloc(a->c, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->c = nv;
		a->capc = cap;
	}
	if (n)
		memcpy(a->c + a->nc, c, n * sizeof(*c));
	a->nc += n;
	return 0;
}

static int acc_ports(struct acc *a, const struct es_port_range *p, size_t n)
{
	if (a->np + n > a->capp) {
		size_t cap = (a->np + n) * 2;
		struct es_port_range *nv = realloc(a->p, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->p = nv;
		a->capp = cap;
	}
	if (n)
		memcpy(a->p + a->np, p, n * sizeof(*p));
	a->np += n;
	return 0;
}

static int resolve(const struct fw_aliases *as, const struct fw_alias *a, struct acc *acc,
		   int depth)
{
	struct es_cidr *dc;
	size_t dn;
	int r = 0;

	if (depth > 64)
		return -ELOOP;
	switch (a->type) {
	case FW_AT_IP_SET: return acc_cidrs(acc, a->cidrs, a->n_cidrs);
	case FW_AT_PORT_SET: return acc_ports(acc, a->ports, a->n_ports);
	case FW_AT_NESTED:
		for (size_t i = 0; a->members[i] && !r; i++) {
			const struct fw_alias *m = fw_alias_find(as, a->members[i]);

			r = m ? resolve(as, m, acc, depth + 1) : -ENOENT;
		}
		return r;
	case FW_AT_GEOIP: return 0; /* inactive until the GeoIP engine provides networks */
	case FW_AT_URL_TABLE:
	case FW_AT_DYNAMIC_DNS:
	case FW_AT_INTERFACE_GROUP:
		if ((r = fw_alias_dyn_get(a->name, &dc, &dn)))
			return r;
		r = acc_cidrs(acc, dc, dn);
		free(dc);
		return r;
	}
	return 0;
}

int fw_alias_resolve(const struct fw_aliases *as, const char *name, struct es_cidr **cidrs,
		     size_t *n_cidrs, struct es_port_range **ports, size_t *n_ports)
{
	const struct fw_alias *a = fw_alias_find(as, name);
	struct acc acc = {0};
	int r;

	*cidrs = NULL;
	*ports = NULL;
	*n_cidrs = *n_ports = 0;
	if (!a)
		return -ENOENT;
	r = resolve(as, a, &acc, 0);
	if (r) {
		free(acc.c);
		free(acc.p);
		return r;
	}
	*cidrs = acc.c;
	*n_cidrs = acc.nc;
	*ports = acc.p;
	*n_ports = acc.np;
	return 0;
}

bool fw_alias_active(const struct fw_aliases *as, const char *name)
{
	const struct fw_alias *a = fw_alias_find(as, name);
	struct fw_alias_dyn_info info;

	if (!a)
		return false;
	switch (a->type) {
	case FW_AT_GEOIP: return false;
	case FW_AT_URL_TABLE:
	case FW_AT_DYNAMIC_DNS:
	case FW_AT_INTERFACE_GROUP: return fw_alias_dyn_info(a->name, &info);
	case FW_AT_NESTED:
		for (size_t i = 0; a->members[i]; i++)
			if (!fw_alias_active(as, a->members[i]))
				return false;
		return true;
	default: return true;
	}
}

int fw_url_table_parse(const char *text, size_t len, struct es_cidr **out, size_t *n)
{
	struct acc acc = {0};
	const char *p = text, *end = text + len;
	char line[256], why[128];

	*out = NULL;
	*n = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *s = line, *e;
		struct es_cidr c;

		if (l >= sizeof(line))
			l = sizeof(line) - 1;
		memcpy(line, p, l);
		line[l] = '\0';
		p = nl ? nl + 1 : end;
		if ((e = strpbrk(s, "#;")))
			*e = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = '\0';
		if (!*s)
			continue;
		if (es_cidr_parse(s, &c, why, sizeof(why)))
			continue; /* feeds carry junk lines; skip them */
		if (acc.nc >= URL_TABLE_MAX_ENTRIES)
			break;
		if (acc_cidrs(&acc, &c, 1)) {
			free(acc.c);
			return -ENOMEM;
		}
	}
	*out = acc.c;
	*n = acc.nc;
	return 0;
}

/* ---- refresher ------------------------------------------------------------------- */

static pthread_mutex_t rf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rf_cond = PTHREAD_COND_INITIALIZER;
static pthread_t rf_thread;
static bool rf_running;
static atomic_bool rf_stop;
static struct fw_aliases rf_set;
static bool rf_set_changed;
static void (*rf_changed)(void);

struct fetch_buf {
	char *p;
	size_t n;
	bool too_big;
};

static size_t fetch_write(char *d, size_t sz, size_t nm, void *arg)
{
	struct fetch_buf *b = arg;
	size_t n = sz * nm;
	char *np;

	if (b->n + n > URL_TABLE_MAX_BYTES) {
		b->too_big = true;
		return 0;
	}
	np = realloc(b->p, b->n + n + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

static int fetch_abort(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	return atomic_load(&rf_stop) ? 1 : 0;
}

static int fetch_url(const char *url, struct es_cidr **out, size_t *n, char *err, size_t errlen)
{
	struct fetch_buf b = {0};
	CURL *h = curl_easy_init();
	long code = 0;
	CURLcode cr;
	int r;

	if (!h) {
		snprintf(err, errlen, "curl init failed");
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, fetch_abort);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	cr = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (cr != CURLE_OK) {
		snprintf(err, errlen, "%s",
			 b.too_big ? "response too large" : curl_easy_strerror(cr));
		free(b.p);
		return -EIO;
	}
	if (code && (code < 200 || code >= 300)) {
		snprintf(err, errlen, "HTTP status %ld", code);
		free(b.p);
		return -EIO;
	}
	r = fw_url_table_parse(b.p ? b.p : "", b.n, out, n);
	free(b.p);
	if (r)
		snprintf(err, errlen, "out of memory");
	return r;
}

static int resolve_dns(char *const *hosts, struct es_cidr **out, size_t *n, char *err,
		       size_t errlen)
{
	struct acc acc = {0};
	int failures = 0, total = 0;

	for (size_t i = 0; hosts[i]; i++) {
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
		int r;

		total++;
		r = getaddrinfo(hosts[i], NULL, &hints, &res);
		if (r) {
			failures++;
			snprintf(err, errlen, "%s: %s", hosts[i], gai_strerror(r));
			continue;
		}
		for (ai = res; ai; ai = ai->ai_next) {
			struct es_cidr c = {0};

			if (ai->ai_family == AF_INET) {
				c.addr.family = 4;
				c.addr.b[10] = c.addr.b[11] = 0xff;
				memcpy(c.addr.b + 12,
				       &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
				c.plen = 32;
			} else if (ai->ai_family == AF_INET6) {
				c.addr.family = 6;
				memcpy(c.addr.b, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
				       16);
				c.plen = 128;
			} else {
				continue;
			}
			if (acc_cidrs(&acc, &c, 1)) {
				freeaddrinfo(res);
				free(acc.c);
				return -ENOMEM;
			}
		}
		freeaddrinfo(res);
	}
	/* All names failing is a failed refresh (keep the old list); some is partial. */
	if (total && failures == total) {
		free(acc.c);
		return -EIO;
	}
	*out = acc.c;
	*n = acc.nc;
	return 0;
}

static int iface_addrs(char *const *ifs, struct es_cidr **out, size_t *n)
{
	struct ifaddrs *ifa = NULL, *p;
	struct acc acc = {0};

	if (getifaddrs(&ifa))
		return -errno;
	for (p = ifa; p; p = p->ifa_next) {
		struct es_cidr c = {0};
		bool listed = false;

		if (!p->ifa_addr || !p->ifa_name)
			continue;
		for (size_t i = 0; ifs[i]; i++)
			listed |= !strcmp(ifs[i], p->ifa_name);
		if (!listed)
			continue;
		if (p->ifa_addr->sa_family == AF_INET) {
			c.addr.family = 4;
			c.addr.b[10] = c.addr.b[11] = 0xff;
			memcpy(c.addr.b + 12, &((struct sockaddr_in *)p->ifa_addr)->sin_addr, 4);
			c.plen = 32;
		} else if (p->ifa_addr->sa_family == AF_INET6) {
			c.addr.family = 6;
			memcpy(c.addr.b, &((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr, 16);
			c.plen = 128;
		} else {
			continue;
		}
		if (acc_cidrs(&acc, &c, 1)) {
			freeifaddrs(ifa);
			free(acc.c);
			return -ENOMEM;
		}
	}
	freeifaddrs(ifa);
	*out = acc.c;
	*n = acc.nc;
	return 0;
}

static bool same_list(const char *name, const struct es_cidr *c, size_t n)
{
	struct es_cidr *old;
	size_t on;
	struct fw_alias_dyn_info info;
	bool same;

	if (!fw_alias_dyn_info(name, &info))
		return false;
	if (fw_alias_dyn_get(name, &old, &on))
		return false;
	same = on == n && (!n || !memcmp(old, c, n * sizeof(*c)));
	free(old);
	return same;
}

/* Refresh one alias when due; true when its contents changed. */
static bool refresh_one(const struct fw_alias *a, int64_t now)
{
	struct fw_alias_dyn_info info;
	struct es_cidr *c = NULL;
	size_t n = 0;
	char err[256] = "";
	bool have = fw_alias_dyn_info(a->name, &info);
	int64_t period = a->type == FW_AT_INTERFACE_GROUP ? 5 : a->refresh_secs;
	int r;

	if (have && info.last_try && now - info.last_try < period)
		return false;
	if (!have && info.last_try && now - info.last_try < 5)
		return false; /* never succeeded: retry every 5 s */
	if (a->type == FW_AT_URL_TABLE)
		r = fetch_url(a->url, &c, &n, err, sizeof(err));
	else if (a->type == FW_AT_DYNAMIC_DNS)
		r = resolve_dns(a->hostnames, &c, &n, err, sizeof(err));
	else
		r = iface_addrs(a->interfaces, &c, &n);
	if (r) {
		if (!err[0])
			snprintf(err, sizeof(err), "%s", strerror(-r));
		pr_warn("alias refresh failed; keeping its previous contents",
			LF_STR("alias", a->name), LF_STR("error", err));
		fw_alias_dyn_fail(a->name, err);
		return false;
	}
	if (same_list(a->name, c, n)) {
		fw_alias_dyn_set(a->name, c, n); /* refresh timestamps */
		free(c);
		return false;
	}
	fw_alias_dyn_set(a->name, c, n);
	free(c);
	pr_info("alias contents changed", LF_STR("alias", a->name), LF_UINT("entries", n));
	return true;
}

/* Copy the aliases the refresher works on (fetched ones) into dst, replacing it. */
static int copy_dynamic(struct fw_aliases *dst, const struct fw_aliases *src)
{
	fw_aliases_free(dst);
	dst->v = calloc(src->n + 1, sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		const struct fw_alias *s = &src->v[i];
		struct fw_alias *d = &dst->v[dst->n];

		if (s->type != FW_AT_URL_TABLE && s->type != FW_AT_DYNAMIC_DNS &&
		    s->type != FW_AT_INTERFACE_GROUP)
			continue;
		d->name = strdup(s->name);
		d->type = s->type;
		d->refresh_secs = s->refresh_secs;
		d->url = s->url ? strdup(s->url) : NULL;
		d->hostnames = s->hostnames ? es_strv_dup(s->hostnames) : NULL;
		d->interfaces = s->interfaces ? es_strv_dup(s->interfaces) : NULL;
		dst->n++;
		if (!d->name || (s->url && !d->url) || (s->hostnames && !d->hostnames) ||
		    (s->interfaces && !d->interfaces))
			return -ENOMEM;
	}
	return 0;
}

static void *refresher(void *arg)
{
	struct fw_aliases set = {0};

	pthread_mutex_lock(&rf_lock);
	while (!atomic_load(&rf_stop)) {
		struct timespec ts;
		bool changed = false;

		if (rf_set_changed) {
			copy_dynamic(&set, &rf_set);
			rf_set_changed = false;
		}
		pthread_mutex_unlock(&rf_lock);
		for (size_t i = 0; i < set.n && !atomic_load(&rf_stop); i++)
			changed |= refresh_one(&set.v[i], (int64_t)time(NULL));
		if (changed && rf_changed && !atomic_load(&rf_stop))
			rf_changed();
		pthread_mutex_lock(&rf_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!atomic_load(&rf_stop) && !rf_set_changed)
			pthread_cond_timedwait(&rf_cond, &rf_lock, &ts);
	}
	pthread_mutex_unlock(&rf_lock);
	fw_aliases_free(&set);
	return NULL;
}

int fw_alias_refresher_set(const struct fw_aliases *a)
{
	int r;

	pthread_mutex_lock(&rf_lock);
	r = copy_dynamic(&rf_set, a);
	rf_set_changed = true;
	pthread_cond_signal(&rf_cond);
	pthread_mutex_unlock(&rf_lock);
	return r;
}

int fw_alias_refresher_start(void (*changed)(void))
{
	int r;

	if (rf_running)
		return 0;
	rf_changed = changed;
	atomic_store(&rf_stop, false);
	r = pthread_create(&rf_thread, NULL, refresher, NULL);
	if (r)
		return -r;
	rf_running = true;
	return 0;
}

void fw_alias_refresher_stop(void)
{
	if (!rf_running)
		return;
	pthread_mutex_lock(&rf_lock);
	atomic_store(&rf_stop, true);
	pthread_cond_signal(&rf_cond);
	pthread_mutex_unlock(&rf_lock);
	pthread_join(rf_thread, NULL);
	rf_running = false;
	pthread_mutex_lock(&rf_lock);
	fw_aliases_free(&rf_set);
	pthread_mutex_unlock(&rf_lock);
}
