// SPDX-License-Identifier: AGPL-3.0-only
/*
 * YAML (libyaml events) to a jansson tree, recording the position of every
 * mapping key and sequence item. Scalars resolve per the YAML 1.2 core schema
 * (plain null/bool/int/float, everything quoted is a string), as serde_yaml
 * does, so configurations load exactly as they did with the reference.
 */
#include "core/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* ---- position map ---------------------------------------------------------- */

struct lm_entry {
	const void *container;
	char *key; /* NULL for sequence items */
	size_t index;
	int line, column;
	struct lm_entry *next;
};

struct es_linemap {
	struct lm_entry **buckets;
	size_t nbuckets;
	size_t count;
};

static size_t lm_hash(const void *container, const char *key, size_t index)
{
	size_t h = (size_t)(uintptr_t)container * 0x9E3779B97F4A7C15ull;

	if (key) {
		for (const unsigned char *p = (const unsigned char *)key; *p; p++)
			h = (h ^ *p) * 0x100000001B3ull;
	} else {
		h ^= index * 0xff51afd7ed558ccdull;
	}
	return h;
}

static int lm_put(struct es_linemap *lm, const void *container, const char *key, size_t index,
		  int line, int column)
{
	struct lm_entry *e;
	size_t b;

	if (lm->count + 1 > lm->nbuckets * 2) {
		size_t nb = lm->nbuckets ? lm->nbuckets * 4 : 256;
		struct lm_entry **nbk = calloc(nb, sizeof(*nbk));

		if (!nbk)
			return -ENOMEM;
		for (size_t i = 0; i < lm->nbuckets; i++) {
			struct lm_entry *n;

			for (e = lm->buckets[i]; e; e = n) {
				n = e->next;
				b = lm_hash(e->container, e->key, e->index) % nb;
				e->next = nbk[b];
				nbk[b] = e;
			}
		}
		free(lm->buckets);
		lm->buckets = nbk;
		lm->nbuckets = nb;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->container = container;
	e->key = key ? strdup(key) : NULL;
	if (key && !e->key) {
		free(e);
		return -ENOMEM;
	}
	e->index = index;
	e->line = line;
	e->column = column;
	b = lm_hash(container, key, index) % lm->nbuckets;
	e->next = lm->buckets[b];
	lm->buckets[b] = e;
	lm->count++;
	return 0;
}

static void lm_free(struct es_linemap *lm)
{
	if (!lm)
		return;
	for (size_t i = 0; i < lm->nbuckets; i++) {
		struct lm_entry *e, *n;

		for (e = lm->buckets[i]; e; e = n) {
			n = e->next;
			free(e->key);
			free(e);
		}
	}
	free(lm->buckets);
	free(lm);
}

bool es_doc_pos(const struct es_doc *doc, const json_t *container, const char *key, size_t index,
		int *line, int *column)
{
	const struct es_linemap *lm = doc ? doc->lines : NULL;

	if (!lm || !lm->nbuckets)
		return false;
	for (struct lm_entry *e = lm->buckets[lm_hash(container, key, index) % lm->nbuckets]; e;
	     e = e->next) {
		if (e->container != container || e->index != index)
			continue;
		if ((key == NULL) != (e->key == NULL) || (key && strcmp(key, e->key)))
			continue;
		*line = e->line;
		*column = e->column;
		return true;
	}
	return false;
}

/* ---- scalar resolution ------------------------------------------------------- */

static bool match_any(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return true;
	return false;
}

static json_t *resolve_int(const char *s)
{
	const char *p = s;
	int base = 10;
	bool neg = false;
	char *end;

	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
		if (s != p)
			return NULL; /* no sign on hex/octal in the core schema */
		base = p[1] == 'x' ? 16 : 8;
		p += 2;
	}
	if (!*p)
		return NULL;
	for (const char *q = p; *q; q++) {
		bool ok = base == 16 ? (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
					   (*q >= 'A' && *q <= 'F')
			  : base == 8 ? *q >= '0' && *q <= '7'
				      : *q >= '0' && *q <= '9';
		if (!ok)
			return NULL;
	}
	errno = 0;
	if (neg) {
		long long v = strtoll(s, &end, base);

		if (errno == ERANGE)
			return json_real(strtod(s, NULL));
		return json_integer(v);
	} else {
		unsigned long long v = strtoull(p, &end, base);

		if (errno == ERANGE || v > (unsigned long long)INT64_MAX)
			return json_real((double)v); /* beyond json_int_t: kept approximately */
		return json_integer((json_int_t)v);
	}
}

static json_t *resolve_float(const char *s)
{
	static const char *const pinf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
	static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
	static const char *const nan_[] = {".nan", ".NaN", ".NAN", NULL};
	const char *p = s;
	bool digits = false, dot = false;
	char *end;

	if (match_any(s, pinf) || match_any(s, ninf) || match_any(s, nan_))
		return NULL; /* JSON has no representation; treat as string */
	if (*p == '+' || *p == '-')
		p++;
	for (; *p && *p != 'e' && *p != 'E'; p++) {
		if (*p == '.') {
			if (dot)
				return NULL;
			dot = true;
		} else if (*p >= '0' && *p <= '9') {
			digits = true;
		} else {
			return NULL;
		}
	}
	if (!digits)
		return NULL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!*p)
			return NULL;
		for (; *p; p++)
			if (*p < '0' || *p > '9')
				return NULL;
	}
	double v = strtod(s, &end);

	if (*end || !isfinite(v))
		return NULL;
	return json_real(v);
}

static json_t *resolve_scalar(const yaml_event_t *ev)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	const char *s = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	json_t *v;

	if (tag && !strcmp(tag, YAML_STR_TAG))
		return json_stringn(s, ev->data.scalar.length);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, ev->data.scalar.length);
	if (match_any(s, nulls))
		return json_null();
	if (match_any(s, trues))
		return json_true();
	if (match_any(s, falses))
		return json_false();
	v = resolve_int(s);
	if (v)
		return v;
	v = resolve_float(s);
	if (v)
		return v;
	return json_stringn(s, ev->data.scalar.length);
}

/* ---- tree building -------------------------------------------------------------- */

struct anchor {
	char *name;
	json_t *value;
	struct anchor *next;
};

struct builder {
	yaml_parser_t parser;
	struct es_linemap *lm;
	struct anchor *anchors;
	struct es_error *err;
	int depth;
};

static int fail_at(struct builder *b, yaml_mark_t mark, const char *fmt, const char *arg)
{
	b->err->kind = ES_ERR_PARSE;
	b->err->line = (int)mark.line + 1;
	b->err->column = (int)mark.column + 1;
	snprintf(b->err->msg, sizeof(b->err->msg), fmt, arg);
	return -EINVAL;
}

static int parser_fail(struct builder *b)
{
	yaml_parser_t *p = &b->parser;

	b->err->kind = ES_ERR_PARSE;
	b->err->line = (int)p->problem_mark.line + 1;
	b->err->column = (int)p->problem_mark.column + 1;
	if (p->context)
		snprintf(b->err->msg, sizeof(b->err->msg), "%s %s",
			 p->problem ? p->problem : "error", p->context);
	else
		snprintf(b->err->msg, sizeof(b->err->msg), "%s",
			 p->problem ? p->problem : "invalid YAML");
	return -EINVAL;
}

static int remember_anchor(struct builder *b, const yaml_char_t *name, json_t *v)
{
	struct anchor *a;

	if (!name)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->name = strdup((const char *)name);
	a->value = json_incref(v);
	a->next = b->anchors;
	b->anchors = a;
	return a->name ? 0 : -ENOMEM;
}

static int build_node(struct builder *b, yaml_event_t *ev, json_t **out);

static int next_event(struct builder *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev))
		return parser_fail(b);
	return 0;
}

static int build_mapping(struct builder *b, yaml_event_t *start, json_t **out)
{
	json_t *obj = json_object();
	int ret = 0;

	if (!obj)
		return -ENOMEM;
	lm_put(b->lm, obj, NULL, SIZE_MAX, (int)start->start_mark.line + 1,
	       (int)start->start_mark.column + 1);
	for (;;) {
		yaml_event_t kev, vev;
		json_t *val = NULL;
		char *key;

		if ((ret = next_event(b, &kev)))
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			break;
		}
		if (kev.type != YAML_SCALAR_EVENT) {
			ret = fail_at(b, kev.start_mark, "%s", "mapping keys must be scalars");
			yaml_event_delete(&kev);
			goto fail;
		}
		key = strndup((const char *)kev.data.scalar.value, kev.data.scalar.length);
		if (!key) {
			yaml_event_delete(&kev);
			ret = -ENOMEM;
			goto fail;
		}
		if (json_object_get(obj, key)) {
			ret = fail_at(b, kev.start_mark, "duplicate entry with key \"%s\"", key);
			free(key);
			yaml_event_delete(&kev);
			goto fail;
		}
		lm_put(b->lm, obj, key, 0, (int)kev.start_mark.line + 1,
		       (int)kev.start_mark.column + 1);
		yaml_event_delete(&kev);
		if ((ret = next_event(b, &vev))) {
			free(key);
			goto fail;
		}
		ret = build_node(b, &vev, &val);
		yaml_event_delete(&vev);
		if (ret) {
			free(key);
			goto fail;
		}
		json_object_set_new(obj, key, val);
		free(key);
	}
	*out = obj;
	return 0;
fail:
	json_decref(obj);
	return ret;
}

static int build_sequence(struct builder *b, yaml_event_t *start, json_t **out)
{
	json_t *arr = json_array();
	int ret = 0;

	if (!arr)
		return -ENOMEM;
	lm_put(b->lm, arr, NULL, SIZE_MAX, (int)start->start_mark.line + 1,
	       (int)start->start_mark.column + 1);
	for (size_t i = 0;; i++) {
		yaml_event_t ev;
		json_t *val = NULL;

		if ((ret = next_event(b, &ev)))
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		lm_put(b->lm, arr, NULL, i, (int)ev.start_mark.line + 1,
		       (int)ev.start_mark.column + 1);
		ret = build_node(b, &ev, &val);
		yaml_event_delete(&ev);
		if (ret)
			goto fail;
		json_array_append_new(arr, val);
	}
	*out = arr;
	return 0;
fail:
	json_decref(arr);
	return ret;
}

static int build_node(struct builder *b, yaml_event_t *ev, json_t **out)
{
	const yaml_char_t *anchor = NULL;
	int ret;

	if (++b->depth > 128) {
		b->depth--;
		return fail_at(b, ev->start_mark, "%s", "recursion limit exceeded");
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		*out = resolve_scalar(ev);
		anchor = ev->data.scalar.anchor;
		ret = *out ? 0 : -ENOMEM;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		ret = build_mapping(b, ev, out);
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		ret = build_sequence(b, ev, out);
		break;
	case YAML_ALIAS_EVENT: {
		struct anchor *a;

		for (a = b->anchors; a; a = a->next)
			if (!strcmp(a->name, (const char *)ev->data.alias.anchor))
				break;
		if (!a) {
			ret = fail_at(b, ev->start_mark, "unknown anchor %s",
				      (const char *)ev->data.alias.anchor);
			break;
		}
		*out = json_deep_copy(a->value);
		ret = *out ? 0 : -ENOMEM;
		break;
	}
	default: ret = fail_at(b, ev->start_mark, "%s", "unexpected YAML event");
	}
	b->depth--;
	if (!ret && anchor)
		ret = remember_anchor(b, anchor, *out);
	return ret;
}

int es_doc_parse_yaml(const char *text, size_t len, struct es_doc *doc, struct es_error *err)
{
	struct builder b = {.err = err};
	yaml_event_t ev;
	json_t *root = NULL;
	int ret = 0;

	memset(doc, 0, sizeof(*doc));
	memset(err, 0, sizeof(*err));
	b.lm = calloc(1, sizeof(*b.lm));
	if (!b.lm || !yaml_parser_initialize(&b.parser)) {
		free(b.lm);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);

	/* STREAM-START, then DOCUMENT-START or STREAM-END (empty file). */
	for (;;) {
		if ((ret = next_event(&b, &ev)))
			goto out;
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			root = json_null();
			break;
		}
		ret = build_node(&b, &ev, &root);
		yaml_event_delete(&ev);
		break;
	}
	if (ret)
		goto out;
	/* Reject a second document: one configuration per file. */
	if ((ret = next_event(&b, &ev)))
		goto out;
	if (ev.type == YAML_DOCUMENT_END_EVENT) {
		yaml_event_delete(&ev);
		if ((ret = next_event(&b, &ev)))
			goto out;
	}
	if (ev.type == YAML_DOCUMENT_START_EVENT)
		ret = fail_at(
		    &b, ev.start_mark, "%s",
		    "deserializing from YAML containing more than one document is not supported");
	yaml_event_delete(&ev);
out:
	yaml_parser_delete(&b.parser);
	while (b.anchors) {
		struct anchor *n = b.anchors->next;

		free(b.anchors->name);
		json_decref(b.anchors->value);
		free(b.anchors);
		b.anchors = n;
	}
	if (ret) {
		if (ret == -ENOMEM && err->kind == ES_ERR_NONE) {
			err->kind = ES_ERR_PARSE;
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		}
		json_decref(root);
		lm_free(b.lm);
		return -EINVAL;
	}
	doc->root = root;
	doc->lines = b.lm;
	return 0;
}

#define ES_CONFIG_MAX_BYTES (16u << 20)

int es_doc_load_file(const char *path, struct es_doc *doc, struct es_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	int fd, ret;

	memset(err, 0, sizeof(*err));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;

		err->kind = ES_ERR_IO;
		snprintf(err->msg, sizeof(err->msg), "%s (os error %d)", strerror(e), e);
		if (fd >= 0)
			close(fd);
		return -e;
	}
	if (S_ISDIR(st.st_mode) || st.st_size > ES_CONFIG_MAX_BYTES) {
		err->kind = ES_ERR_IO;
		snprintf(err->msg, sizeof(err->msg), "%s",
			 S_ISDIR(st.st_mode) ? "Is a directory (os error 21)" : "file too large");
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	ret = es_doc_parse_yaml(buf, off, doc, err);
	free(buf);
	return ret;
}

void es_doc_free(struct es_doc *doc)
{
	if (!doc)
		return;
	json_decref(doc->root);
	lm_free(doc->lines);
	doc->root = NULL;
	doc->lines = NULL;
}
