// SPDX-License-Identifier: AGPL-3.0-only
/* Response helpers and query parsing with the standard error model (§3.2). */
#include "api/route.h"
#include "core/cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void es_resp_json(struct es_resp *r, int status, json_t *body)
{
	json_decref(r->json);
	r->status = status;
	r->json = body;
}

void es_resp_error(struct es_resp *r, int status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	es_resp_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void es_resp_text(struct es_resp *r, int status, const char *content_type, const char *text)
{
	free(r->text);
	r->status = status;
	r->content_type = content_type;
	r->text = strdup(text);
	r->text_len = r->text ? strlen(r->text) : 0;
}

void es_resp_header(struct es_resp *r, const char *name, const char *value)
{
	if (r->n_headers >= 8)
		return;
	r->headers[r->n_headers][0] = strdup(name);
	r->headers[r->n_headers][1] = strdup(value);
	r->n_headers++;
}

void es_resp_clear(struct es_resp *r)
{
	json_decref(r->json);
	free(r->text);
	for (int i = 0; i < r->n_headers; i++) {
		free(r->headers[i][0]);
		free(r->headers[i][1]);
	}
	memset(r, 0, sizeof(*r));
}

int es_query_u64(const struct es_req *req, struct es_resp *resp, const char *name, uint64_t def,
		 uint64_t *out)
{
	const char *v = req->query(req, name);
	unsigned long long x;
	char *end;

	if (!v) {
		*out = def;
		return 0;
	}
	errno = 0;
	x = strtoull(v, &end, 10);
	if (!*v || *end || errno || *v == '-' || *v == '+') {
		es_resp_error(resp, 400, "INVALID_QUERY",
			      "invalid query parameter '%s': '%s' is not a non-negative integer",
			      name, v);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

int es_query_bool(const struct es_req *req, struct es_resp *resp, const char *name, int def,
		  int *out)
{
	const char *v = req->query(req, name);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
		*out = 1;
	} else if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
		*out = 0;
	} else {
		es_resp_error(resp, 400, "INVALID_QUERY",
			      "invalid query parameter '%s': '%s' is not a boolean", name, v);
		return -EINVAL;
	}
	return 0;
}

void es_resp_cfg_error(struct es_resp *resp, const struct es_cfg *c, const char *what)
{
	const struct es_error *e = &c->err;

	if (e->kind == ES_ERR_PARSE)
		es_resp_error(resp, 422, "INVALID_BODY", "%s%s%s", e->path, e->path[0] ? ": " : "",
			      e->msg);
	else
		es_resp_error(resp, 400, "VALIDATION_ERROR", "invalid %s: %s%s%s", what, e->path,
			      e->path[0] ? ": " : "", e->msg);
}
