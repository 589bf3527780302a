// SPDX-License-Identifier: AGPL-3.0-only
/* Typed accessors over a parsed document, with serde-compatible error texts. */
#include "core/cfg.h"
#include "core/net.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void es_cfg_init(struct es_cfg *c, const struct es_doc *doc)
{
	memset(c, 0, sizeof(*c));
	c->doc = doc;
}

void es_cfg_release(struct es_cfg *c)
{
	for (size_t i = 0; i < c->n_warnings; i++)
		free(c->warnings[i]);
	free(c->warnings);
	c->warnings = NULL;
	c->n_warnings = 0;
}

void es_path_key(char *out, size_t len, const char *path, const char *key)
{
	if (path && *path)
		snprintf(out, len, "%s.%s", path, key);
	else
		snprintf(out, len, "%s", key);
}

void es_path_idx(char *out, size_t len, const char *path, size_t index)
{
	snprintf(out, len, "%s[%zu]", path ? path : "", index);
}

int es_cfg_fail(struct es_cfg *c, enum es_err_kind kind, const json_t *obj, const char *path,
		const char *key, size_t index, const char *fmt, ...)
{
	struct es_error *e = &c->err;
	va_list ap;

	if (e->kind != ES_ERR_NONE)
		return -EINVAL;
	e->kind = kind;
	if (key && *key)
		es_path_key(e->path, sizeof(e->path), path, key);
	else if (!key && index != SIZE_MAX)
		es_path_idx(e->path, sizeof(e->path), path, index);
	else
		snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->line = e->column = 0;
	if (c->doc && obj) {
		/* The key's own position, else the container's. */
		if (!es_doc_pos(c->doc, obj, key && *key ? key : NULL, key && *key ? 0 : index,
				&e->line, &e->column))
			es_doc_pos(c->doc, obj, NULL, SIZE_MAX, &e->line, &e->column);
	}
	return -EINVAL;
}

int es_cfg_unique_id(struct es_cfg *c, json_t *seen, const json_t *item, const char *path,
		     const char *id, const char *fmt, ...)
{
	char msg[sizeof(c->err.msg)];
	va_list ap;

	if (!json_object_get(seen, id))
		return json_object_set_new(seen, id, json_true())
			   ? es_cfg_fail(c, ES_ERR_VALIDATION, item, path, "id", 0, "out of memory")
			   : 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return es_cfg_fail(c, ES_ERR_VALIDATION, item, path, "id", 0, "%s", msg);
}

void es_cfg_warn(struct es_cfg *c, const char *fmt, ...)
{
	char buf[512], **nv;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	nv = realloc(c->warnings, (c->n_warnings + 1) * sizeof(*nv));
	if (!nv)
		return;
	c->warnings = nv;
	nv[c->n_warnings] = strdup(buf);
	if (nv[c->n_warnings])
		c->n_warnings++;
}

void es_error_format(const struct es_error *e, char *buf, size_t len)
{
	char pos[64] = "";

	if (e->line > 0)
		snprintf(pos, sizeof(pos), " at line %d column %d", e->line, e->column);
	switch (e->kind) {
	case ES_ERR_IO: snprintf(buf, len, "I/O error reading config: %s", e->msg); break;
	case ES_ERR_PARSE:
		if (e->path[0])
			snprintf(buf, len, "YAML parse error: %s: %s%s", e->path, e->msg, pos);
		else
			snprintf(buf, len, "YAML parse error: %s%s", e->msg, pos);
		break;
	case ES_ERR_VALIDATION:
		snprintf(buf, len, "validation error: %s: %s%s", e->path, e->msg, pos);
		break;
	case ES_ERR_RAW:
		if (e->path[0])
			snprintf(buf, len, "%s (%s%s)", e->msg, e->path, pos[0] ? pos : "");
		else
			snprintf(buf, len, "%s%s", e->msg, pos);
		break;
	default: snprintf(buf, len, "no error");
	}
}

void es_json_describe(const json_t *v, char *buf, size_t len)
{
	switch (json_typeof(v)) {
	case JSON_STRING: snprintf(buf, len, "string \"%s\"", json_string_value(v)); break;
	case JSON_INTEGER:
		snprintf(buf, len, "integer `%lld`", (long long)json_integer_value(v));
		break;
	case JSON_REAL: snprintf(buf, len, "floating point `%g`", json_real_value(v)); break;
	case JSON_TRUE:
	case JSON_FALSE:
		snprintf(buf, len, "boolean `%s`", json_is_true(v) ? "true" : "false");
		break;
	case JSON_NULL: snprintf(buf, len, "unit value"); break;
	case JSON_ARRAY: snprintf(buf, len, "sequence"); break;
	case JSON_OBJECT: snprintf(buf, len, "map"); break;
	}
}

static int type_fail(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		     const json_t *v, const char *expected)
{
	char d[320];

	es_json_describe(v, d, sizeof(d));
	return es_cfg_fail(c, ES_ERR_PARSE, obj, path, key, 0, "invalid type: %s, expected %s", d,
			   expected);
}

static int missing(struct es_cfg *c, const json_t *obj, const char *path, const char *key)
{
	/* serde: "<path>: missing field `key`", positioned at the mapping. */
	struct es_error *e = &c->err;

	if (e->kind != ES_ERR_NONE)
		return -EINVAL;
	es_cfg_fail(c, ES_ERR_PARSE, obj, path, "", SIZE_MAX, "missing field `%s`", key);
	if (c->doc && obj)
		es_doc_pos(c->doc, obj, NULL, SIZE_MAX, &e->line, &e->column);
	return -EINVAL;
}

static const json_t *field(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return v && !json_is_null(v) ? v : NULL;
}

void es_cfg_check_keys(struct es_cfg *c, const json_t *obj, const char *path,
		       const char *const *known)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj))
		return;
	json_object_foreach ((json_t *)obj, k, v) {
		const char *const *p;

		for (p = known; *p; p++)
			if (!strcmp(*p, k))
				break;
		if (!*p) {
			int line = 0, col = 0;
			char full[300];

			es_path_key(full, sizeof(full), path, k);
			if (c->doc && es_doc_pos(c->doc, obj, k, 0, &line, &col))
				es_cfg_warn(c, "unknown configuration key '%s' ignored (line %d)",
					    full, line);
			else
				es_cfg_warn(c, "unknown configuration key '%s' ignored", full);
		}
	}
}

int es_cfg_expect_object(struct es_cfg *c, const json_t *parent, const char *ppath, const char *key,
			 json_t **out)
{
	const json_t *v = field(parent, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_object(v))
		return type_fail(c, parent, ppath, key, v, key[0] ? "a map" : "struct");
	*out = (json_t *)v;
	return 0;
}

int es_cfg_bool(struct es_cfg *c, const json_t *obj, const char *path, const char *key, bool *out,
		bool def)
{
	const json_t *v = field(obj, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return type_fail(c, obj, path, key, v, "a boolean");
	*out = json_is_true(v);
	return 0;
}

static int read_uint(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		     uint64_t max, const char *tname, uint64_t *out, bool *present)
{
	const json_t *v = field(obj, key);
	json_int_t i;

	*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_integer(v))
		return type_fail(c, obj, path, key, v, tname);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max) {
		return es_cfg_fail(c, ES_ERR_PARSE, obj, path, key, 0,
				   "invalid value: integer `%lld`, expected %s", (long long)i,
				   tname);
	}
	*out = (uint64_t)i;
	return 0;
}

int es_cfg_u64(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
	       uint64_t *out, uint64_t def)
{
	bool present;
	uint64_t v = 0;

	if (read_uint(c, obj, path, key, UINT64_MAX, "u64", &v, &present))
		return -EINVAL;
	*out = present ? v : def;
	return 0;
}

int es_cfg_u32(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
	       uint32_t *out, uint32_t def)
{
	bool present;
	uint64_t v = 0;

	if (read_uint(c, obj, path, key, UINT32_MAX, "u32", &v, &present))
		return -EINVAL;
	*out = present ? (uint32_t)v : def;
	return 0;
}

int es_cfg_u16(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
	       uint16_t *out, uint16_t def)
{
	bool present;
	uint64_t v = 0;

	if (read_uint(c, obj, path, key, UINT16_MAX, "u16", &v, &present))
		return -EINVAL;
	*out = present ? (uint16_t)v : def;
	return 0;
}

int es_cfg_u8(struct es_cfg *c, const json_t *obj, const char *path, const char *key, uint8_t *out,
	      uint8_t def)
{
	bool present;
	uint64_t v = 0;

	if (read_uint(c, obj, path, key, UINT8_MAX, "u8", &v, &present))
		return -EINVAL;
	*out = present ? (uint8_t)v : def;
	return 0;
}

int es_cfg_req_u32(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   uint32_t *out)
{
	if (!field(obj, key))
		return missing(c, obj, path, key);
	return es_cfg_u32(c, obj, path, key, out, 0);
}

int es_cfg_req_u64(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   uint64_t *out)
{
	if (!field(obj, key))
		return missing(c, obj, path, key);
	return es_cfg_u64(c, obj, path, key, out, 0);
}

int es_cfg_double(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		  double *out, double def)
{
	const json_t *v = field(obj, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_number(v))
		return type_fail(c, obj, path, key, v, "f64");
	*out = json_number_value(v);
	return 0;
}

int es_cfg_str(struct es_cfg *c, const json_t *obj, const char *path, const char *key, char **out,
	       const char *def)
{
	const json_t *v = field(obj, key);

	*out = NULL;
	if (!v) {
		if (def && !(*out = strdup(def)))
			return -ENOMEM;
		return 0;
	}
	if (!json_is_string(v))
		return type_fail(c, obj, path, key, v, "a string");
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

int es_cfg_req_str(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   char **out)
{
	*out = NULL;
	if (!field(obj, key))
		return missing(c, obj, path, key);
	return es_cfg_str(c, obj, path, key, out, NULL);
}

int es_cfg_array(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		 json_t **out)
{
	const json_t *v = field(obj, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return type_fail(c, obj, path, key, v, "a sequence");
	*out = (json_t *)v;
	return 0;
}

int es_cfg_strv(struct es_cfg *c, const json_t *obj, const char *path, const char *key, char ***out,
		size_t *n)
{
	json_t *arr, *item;
	char **v, full[300];
	size_t i;

	*out = NULL;
	if (n)
		*n = 0;
	if (es_cfg_array(c, obj, path, key, &arr))
		return -EINVAL;
	v = calloc((arr ? json_array_size(arr) : 0) + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	es_path_key(full, sizeof(full), path, key);
	json_array_foreach (arr, i, item) {
		if (!json_is_string(item)) {
			char d[320];

			es_json_describe(item, d, sizeof(d));
			es_cfg_fail(c, ES_ERR_PARSE, arr, full, NULL, i,
				    "invalid type: %s, expected a string", d);
			es_strv_free(v);
			return -EINVAL;
		}
		v[i] = strdup(json_string_value(item));
		if (!v[i]) {
			es_strv_free(v);
			return -ENOMEM;
		}
	}
	*out = v;
	if (n)
		*n = arr ? json_array_size(arr) : 0;
	return 0;
}

static int enum_common(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		       const char *const *names, int *out, int def, bool exact)
{
	const json_t *v = field(obj, key);
	char list[512] = "", full[300];
	const char *s;

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_string(v))
		return type_fail(c, obj, path, key, v, "a string");
	s = json_string_value(v);
	for (int i = 0; names[i]; i++) {
		if (exact ? !strcmp(s, names[i]) : !strcasecmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	for (int i = 0; names[i]; i++) {
		size_t l = strlen(list);

		snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", names[i]);
	}
	es_path_key(full, sizeof(full), path, key);
	/* The path is already in the message; keep it out of the suffix. */
	es_cfg_fail(c, ES_ERR_RAW, obj, path, key, 0,
		    "invalid value '%s' for field '%s': expected one of %s", s, full, list);
	c->err.path[0] = '\0';
	return -EINVAL;
}

int es_cfg_enum(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		const char *const *names, int *out, int def)
{
	return enum_common(c, obj, path, key, names, out, def, false);
}

int es_cfg_enum_exact(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		      const char *const *names, int *out, int def)
{
	return enum_common(c, obj, path, key, names, out, def, true);
}

void es_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

char **es_strv_dup(char *const *v)
{
	size_t n = 0;
	char **out;

	while (v && v[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i]) {
			es_strv_free(out);
			return NULL;
		}
	}
	return out;
}

int es_cfg_port_range(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		      struct es_port_range *out, bool *present)
{
	const json_t *v = field(obj, key);
	char buf[64], why[128], sub[256];

	*present = false;
	out->start = out->end = 0;
	if (!v)
		return 0;
	*present = true;
	if (json_is_object(v)) {
		es_path_key(sub, sizeof(sub), path, key);
		if (es_cfg_u16(c, v, sub, "start", &out->start, 0) ||
		    es_cfg_u16(c, v, sub, "end", &out->end, 0))
			return -EINVAL;
		if (!json_object_get(v, "start") || !json_object_get(v, "end"))
			return es_cfg_fail(c, ES_ERR_PARSE, v, sub, "", SIZE_MAX,
					   "missing field `%s`",
					   json_object_get(v, "start") ? "end" : "start");
		if (out->start > out->end)
			return es_cfg_fail(c, ES_ERR_RAW, obj, path, key, 0,
					   "invalid port range '%u-%u': start port %u is greater "
					   "than end port %u",
					   out->start, out->end, out->start, out->end);
		return 0;
	}
	if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
	else if (json_is_string(v))
		snprintf(buf, sizeof(buf), "%s", json_string_value(v));
	else {
		es_json_describe(v, why, sizeof(why));
		return es_cfg_fail(c, ES_ERR_PARSE, obj, path, key, 0,
				   "invalid type: %s, expected a port or a port range", why);
	}
	if (es_port_range_parse(buf, out, why, sizeof(why)))
		return es_cfg_fail(c, ES_ERR_RAW, obj, path, key, 0, "invalid port range '%s': %s",
				   buf, why);
	return 0;
}

int es_cfg_item(struct es_cfg *c, const json_t *obj, const char *path, const char *type)
{
	char d[64];

	if (json_is_object(obj))
		return 0;
	es_json_describe(obj, d, sizeof(d));
	return es_cfg_fail(c, ES_ERR_PARSE, obj, path, "", SIZE_MAX,
			   "invalid type: %s, expected struct %s", d, type);
}

int es_cfg_max_len(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   size_t max)
{
	const json_t *v = field(obj, key);

	if (json_is_string(v) && json_string_length(v) > max)
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, key, 0,
				   "%s exceeds maximum length of %zu characters (got %zu)", key,
				   max, json_string_length(v));
	return 0;
}

int es_cfg_rule_id(struct es_cfg *c, const json_t *obj, const char *path, char **out)
{
	if (es_cfg_max_len(c, obj, path, "id", 256) || es_cfg_req_str(c, obj, path, "id", out))
		return -EINVAL;
	if (es_id_valid(*out))
		return 0;
	es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "id", 0,
		    "invalid id '%s': must be non-empty and contain only letters, digits, '-' and "
		    "'_'",
		    *out);
	free(*out);
	*out = NULL;
	return -EINVAL;
}
