/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * REST routes as data. Domains list their routes in a table; the HTTP server
 * registers them, runs the shared middleware (auth, role, rate limit, body
 * parsing) and calls the handler with a parsed request. Handlers never see
 * the HTTP library.
 */
#ifndef ES_ROUTE_H
#define ES_ROUTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Route flags. */
#define ES_RT_PUBLIC 0x01   /* never authenticated */
#define ES_RT_WRITE 0x02    /* operator or admin */
#define ES_RT_NS 0x04	    /* namespace rule of interfaces.md §4.4 (handler checks scope) */
#define ES_RT_JSON 0x08	    /* body must be a JSON document */
#define ES_RT_METRICS 0x10  /* authenticated only with auth.metrics_auth_required */
#define ES_RT_BODY_OPT 0x20 /* JSON body optional (empty accepted) */

struct es_identity {
	char sub[256];
	int role;	   /* enum es_role in api/auth.h */
	char **namespaces; /* NULL = unrestricted */
	bool authenticated;
};

struct es_req {
	const char *method;
	const char *path; /* decoded path */
	json_t *body;	  /* parsed JSON body (ES_RT_JSON), or NULL */
	const char *raw_body;
	size_t raw_len;
	const struct es_identity *identity; /* NULL when auth is off */
	const char *client_ip;
	/* Path parameters (percent-decoded) and query parameters. */
	const char *(*param)(const struct es_req *req, const char *name);
	const char *(*query)(const struct es_req *req, const char *name);
	const char *(*header)(const struct es_req *req, const char *name);
	void *impl;
};

struct es_resp {
	int status;
	json_t *json; /* serialized compactly; owned */
	char *text;   /* alternative body; owned */
	size_t text_len;
	const char *content_type;
	const void *static_body; /* not owned (embedded assets) */
	size_t static_len;
	char *headers[8][2]; /* extra headers; owned */
	int n_headers;
};

typedef void (*es_handler_fn)(const struct es_req *req, struct es_resp *resp);

struct es_route {
	const char *method; /* GET, POST, PATCH, PUT, DELETE */
	const char *path;   /* OpenAPI form: /api/v1/firewall/rules/{id} */
	es_handler_fn fn;
	unsigned flags;
};

/* Response helpers. Each takes ownership of json arguments. */
void es_resp_json(struct es_resp *r, int status, json_t *body);
/* Standard error body {"error":{"code","message"}}. */
void es_resp_error(struct es_resp *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void es_resp_text(struct es_resp *r, int status, const char *content_type, const char *text);
void es_resp_header(struct es_resp *r, const char *name, const char *value);
void es_resp_clear(struct es_resp *r);

struct es_cfg;
/*
 * A REST body rejected by the config accessors (core/cfg.h): missing fields
 * and wrong types answer 422 INVALID_BODY, bad values 400 VALIDATION_ERROR
 * with "invalid <what>: <field>: <reason>".
 */
void es_resp_cfg_error(struct es_resp *resp, const struct es_cfg *c, const char *what);

/*
 * Query parameter helpers with the INVALID_QUERY error model: return 0 with
 * *out set (default when absent) or -EINVAL after writing a 400 response.
 */
int es_query_u64(const struct es_req *req, struct es_resp *resp, const char *name, uint64_t def,
		 uint64_t *out);
int es_query_bool(const struct es_req *req, struct es_resp *resp, const char *name, int def,
		  int *out);

#endif
