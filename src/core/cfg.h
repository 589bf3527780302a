/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Configuration documents: YAML parsed into a jansson tree that remembers where
 * every value came from, plus typed accessors that validate and record the
 * first error with its key path and line. The same accessors read REST bodies
 * (no line information there), so one validation serves both doors.
 */
#ifndef ES_CFG_H
#define ES_CFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum es_err_kind {
	ES_ERR_NONE = 0,
	ES_ERR_IO,	   /* "I/O error reading config: ..." */
	ES_ERR_PARSE,	   /* "YAML parse error: ..." (syntax, types, missing fields) */
	ES_ERR_VALIDATION, /* "validation error: <path>: ..." */
	ES_ERR_RAW,	   /* message carries its own form (CIDR, port range, enum) */
};

struct es_error {
	enum es_err_kind kind;
	int line;   /* 1-based; 0 when unknown */
	int column; /* 1-based; 0 when unknown */
	char path[256];
	char msg[768];
};

struct es_linemap;

/* A parsed document: the tree plus the positions of its keys and items. */
struct es_doc {
	json_t *root;
	struct es_linemap *lines;
};

/* Accessor context: where errors and warnings go. */
struct es_cfg {
	const struct es_doc *doc; /* NULL for REST bodies */
	struct es_error err;	  /* first error wins */
	char **warnings;	  /* logged by the caller once logging runs */
	size_t n_warnings;
};

/* Parse YAML text into doc. 0, or -EINVAL with err filled (ES_ERR_PARSE). */
int es_doc_parse_yaml(const char *text, size_t len, struct es_doc *doc, struct es_error *err);
/* Read and parse a file; I/O failures give ES_ERR_IO. */
int es_doc_load_file(const char *path, struct es_doc *doc, struct es_error *err);
void es_doc_free(struct es_doc *doc);

/* Position of `key` (or array `index` when key is NULL) inside container. */
bool es_doc_pos(const struct es_doc *doc, const json_t *container, const char *key, size_t index,
		int *line, int *column);

/* Render an error in the daemon's stderr form (without the "Error: " prefix). */
void es_error_format(const struct es_error *err, char *buf, size_t len);

void es_cfg_init(struct es_cfg *c, const struct es_doc *doc);
void es_cfg_release(struct es_cfg *c);
static inline bool es_cfg_failed(const struct es_cfg *c)
{
	return c->err.kind != ES_ERR_NONE;
}

/*
 * Record an error about `key` (or item `index` when key is NULL) of container
 * `obj` whose own path is `path`. Only the first error is kept. Returns -EINVAL.
 */
int es_cfg_fail(struct es_cfg *c, enum es_err_kind kind, const json_t *obj, const char *path,
		const char *key, size_t index, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
void es_cfg_warn(struct es_cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Child path helpers: "a.b" and "a[3]". */
void es_path_key(char *out, size_t len, const char *path, const char *key);
void es_path_idx(char *out, size_t len, const char *path, size_t index);

/* Warn about keys of obj not in the NULL-terminated list `known`. */
void es_cfg_check_keys(struct es_cfg *c, const json_t *obj, const char *path,
		       const char *const *known);

/* A section must be a mapping (or null/absent). Returns 0 or -EINVAL. */
int es_cfg_expect_object(struct es_cfg *c, const json_t *parent, const char *ppath, const char *key,
			 json_t **out);

/*
 * Typed reads of obj[key]. When the key is absent (or null) *out = def and 0 is
 * returned; the _req variants fail with "missing field `key`". Type mismatches
 * fail like serde: "invalid type: string \"x\", expected u16".
 */
int es_cfg_bool(struct es_cfg *c, const json_t *obj, const char *path, const char *key, bool *out,
		bool def);
int es_cfg_u64(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
	       uint64_t *out, uint64_t def);
int es_cfg_u32(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
	       uint32_t *out, uint32_t def);
int es_cfg_u16(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
	       uint16_t *out, uint16_t def);
int es_cfg_u8(struct es_cfg *c, const json_t *obj, const char *path, const char *key, uint8_t *out,
	      uint8_t def);
int es_cfg_double(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		  double *out, double def);
/* *out is malloc'd (or NULL when absent and def is NULL). */
int es_cfg_str(struct es_cfg *c, const json_t *obj, const char *path, const char *key, char **out,
	       const char *def);
int es_cfg_req_str(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   char **out);
int es_cfg_req_u32(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   uint32_t *out);
int es_cfg_req_u64(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   uint64_t *out);
/*
 * A port or port range: 80, "80", "1000-2000" or {start, end} (start <= end).
 * *present tells whether the key was given; bad values fail as ES_ERR_RAW
 * "invalid port range '<v>': <reason>" (types as serde type errors).
 */
struct es_port_range;
int es_cfg_port_range(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		      struct es_port_range *out, bool *present);
/* A list of strings; *out is a NULL-terminated malloc'd vector. */
int es_cfg_strv(struct es_cfg *c, const json_t *obj, const char *path, const char *key, char ***out,
		size_t *n);
/* A list value (or absent): returns the array node without copying, or NULL. */
int es_cfg_array(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		 json_t **out);
/*
 * An enum by name (case-insensitive). `names` is NULL-terminated; *out gets
 * the index. Unknown values fail as ES_ERR_RAW:
 * "invalid value 'x' for field 'path.key': expected one of a, b".
 */
int es_cfg_enum(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		const char *const *names, int *out, int def);
/* Same, but exact (case-sensitive) match. */
int es_cfg_enum_exact(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		      const char *const *names, int *out, int def);

/*
 * Checks shared by rule-like items (YAML list items and REST bodies):
 * es_cfg_item: obj must be a mapping ("expected struct <type>");
 * es_cfg_max_len: a string field at most max bytes (interfaces.md §3.2);
 * es_cfg_rule_id: the required `id`, at most 256 bytes of [A-Za-z0-9_-]
 * (*out malloc'd). Each returns 0 or -EINVAL with the error recorded.
 */
int es_cfg_item(struct es_cfg *c, const json_t *obj, const char *path, const char *type);
int es_cfg_max_len(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		   size_t max);
int es_cfg_rule_id(struct es_cfg *c, const json_t *obj, const char *path, char **out);
/*
 * Unique ids in a list. `seen` holds the ids so far: a json object used as a
 * hash set, made by the caller with json_object() and json_decref()'d after
 * (a NULL one fails as out of memory). Records `id`, or, when it is there
 * already, fails about `path`.id with the message. A set, not a search of
 * the items before: lists of thousands of rules stay linear.
 */
int es_cfg_unique_id(struct es_cfg *c, json_t *seen, const json_t *item, const char *path,
		     const char *id, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Describe a JSON value the way serde does in type errors ("string \"x\""). */
void es_json_describe(const json_t *v, char *buf, size_t len);

void es_strv_free(char **v);
char **es_strv_dup(char *const *v);

#endif
