// SPDX-License-Identifier: AGPL-3.0-only
#define ES_LOG_TARGET "ebpfsentinel::http"
#include "api/http.h"
#include "api/tls.h"
#include "core/audit.h"
#include "core/log.h"
#include "core/strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ulfius.h>

#define MAX_ROUTES 256
#define MAX_PARAMS 4

static const struct es_route *routes[MAX_ROUTES];
static unsigned n_routes;
static struct es_http_hooks hooks;
static struct _u_instance instance;
static bool running;

void es_http_set_hooks(const struct es_http_hooks *h)
{
	hooks = *h;
}

int es_http_add_routes(const struct es_route *list)
{
	for (; list && list->method; list++) {
		if (n_routes >= MAX_ROUTES)
			return -ENOSPC;
		routes[n_routes++] = list;
	}
	return 0;
}

const struct es_route *const *es_http_routes(unsigned *n)
{
	*n = n_routes;
	return routes;
}

/* ---- routing --------------------------------------------------------------- */

bool es_route_match(const char *pattern, const char *path, char params[][2][256], int *nparams)
{
	const char *p = pattern, *s = path;

	*nparams = 0;
	while (*p && *s) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			const char *se = strchr(s, '/');
			size_t nl, vl;

			if (!pe)
				return false;
			if (!se)
				se = s + strlen(s);
			nl = (size_t)(pe - p - 1);
			vl = (size_t)(se - s);
			if (vl == 0 || *nparams >= MAX_PARAMS || nl >= 256 || vl >= 256)
				return false;
			memcpy(params[*nparams][0], p + 1, nl);
			params[*nparams][0][nl] = '\0';
			memcpy(params[*nparams][1], s, vl);
			params[*nparams][1][vl] = '\0';
			(*nparams)++;
			p = pe + 1;
			s = se;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *p == '\0' && *s == '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode src[0..n) into dst (size len). Keeps '/' structure: decoding
 * happens per segment after matching, so "%2F" cannot split a segment. */
static void pct_decode(char *dst, size_t len, const char *src, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < len; i++) {
		if (src[i] == '%' && i + 2 < n && hexval(src[i + 1]) >= 0 &&
		    hexval(src[i + 2]) >= 0) {
			dst[o++] = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
			i += 2;
		} else {
			dst[o++] = src[i];
		}
	}
	dst[o] = '\0';
}

/* ---- request context ---------------------------------------------------------- */

struct req_impl {
	const struct _u_request *u; /* NULL in es_http_dispatch */
	const char *query_str;	    /* es_http_dispatch only */
	const char *content_type;   /* es_http_dispatch only */
	const char *const *headers; /* es_http_dispatch_ex only: "Name: value" */
	char params[MAX_PARAMS][2][256];
	int nparams;
	char qbuf[8][2][256];
	int nq;
};

static const char *req_param(const struct es_req *req, const char *name)
{
	struct req_impl *im = req->impl;

	for (int i = 0; i < im->nparams; i++)
		if (!strcmp(im->params[i][0], name))
			return im->params[i][1];
	return NULL;
}

static const char *req_query(const struct es_req *req, const char *name)
{
	struct req_impl *im = req->impl;

	if (im->u)
		return u_map_get(im->u->map_url, name);
	for (int i = 0; i < im->nq; i++)
		if (!strcmp(im->qbuf[i][0], name))
			return im->qbuf[i][1];
	return NULL;
}

static const char *req_header(const struct es_req *req, const char *name)
{
	struct req_impl *im = req->impl;

	size_t n = strlen(name);

	if (im->u)
		return u_map_get_case(im->u->map_header, name);
	if (!strcasecmp(name, "Content-Type"))
		return im->content_type;
	for (const char *const *h = im->headers; h && *h; h++)
		if (!strncasecmp(*h, name, n) && (*h)[n] == ':')
			return *h + n + 1 + ((*h)[n + 1] == ' ');
	return NULL;
}

static void parse_query_string(struct req_impl *im, const char *q)
{
	while (q && *q && im->nq < 8) {
		const char *amp = strchr(q, '&'), *eq;
		size_t n = amp ? (size_t)(amp - q) : strlen(q);

		eq = memchr(q, '=', n);
		if (eq) {
			pct_decode(im->qbuf[im->nq][0], 256, q, (size_t)(eq - q));
			pct_decode(im->qbuf[im->nq][1], 256, eq + 1, n - (size_t)(eq - q) - 1);
		} else {
			pct_decode(im->qbuf[im->nq][0], 256, q, n);
			im->qbuf[im->nq][1][0] = '\0';
		}
		im->nq++;
		q = amp ? amp + 1 : NULL;
	}
}

static bool content_type_is_json(const char *ct)
{
	size_t n;

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	n = strcspn(ct, "; ");
	return n == 16 && !strncasecmp(ct, "application/json", 16);
}

/* The shared pipeline: route → auth → role → limiter → body → handler. */
static void handle(struct es_req *req, const char *raw_path, struct es_resp *resp)
{
	struct req_impl *im = req->impl;
	const struct es_route *route = NULL;
	struct es_identity id;
	char allow[128] = "";
	char path[1024];
	bool have_id = false;

	/* Match on the raw path; decode each captured parameter afterwards. */
	for (unsigned i = 0; i < n_routes; i++) {
		char params[MAX_PARAMS][2][256];
		int np;

		if (!es_route_match(routes[i]->path, raw_path, params, &np))
			continue;
		if (!strcmp(routes[i]->method, req->method) ||
		    (!strcmp(req->method, "HEAD") && !strcmp(routes[i]->method, "GET"))) {
			route = routes[i];
			im->nparams = np;
			for (int k = 0; k < np; k++) {
				memcpy(im->params[k][0], params[k][0], 256);
				pct_decode(im->params[k][1], 256, params[k][1],
					   strlen(params[k][1]));
			}
			break;
		}
		if (!strstr(allow, routes[i]->method)) {
			size_t l = strlen(allow);

			snprintf(allow + l, sizeof(allow) - l, "%s%s", l ? ", " : "",
				 routes[i]->method);
		}
	}
	pct_decode(path, sizeof(path), raw_path, strlen(raw_path));
	req->path = path;
	if (!route) {
		if (allow[0]) {
			es_resp_error(resp, 405, "METHOD_NOT_ALLOWED", "method %s not allowed",
				      req->method);
			es_resp_header(resp, "Allow", allow);
		} else {
			es_resp_error(resp, 404, "NOT_FOUND", "no route for %s", path);
		}
		return;
	}

	memset(&id, 0, sizeof(id));
	if (hooks.auth_required && hooks.auth_required(route)) {
		if (hooks.authenticate(req, &id, resp))
			return;
		have_id = true;
		req->identity = &id;
		if (hooks.authorize && hooks.authorize(route, &id, resp))
			goto out;
	}
	if ((route->flags & ES_RT_WRITE || strcmp(route->method, "GET")) &&
	    !strncmp(path, "/api/v1/", 8) && hooks.limit_write && hooks.limit_write(req, resp))
		goto out;

	if (req->raw_len > ES_HTTP_BODY_LIMIT && !strncmp(path, "/api/v1/", 8)) {
		es_resp_error(resp, 413, "PAYLOAD_TOO_LARGE",
			      "request body exceeds the limit of %d bytes", ES_HTTP_BODY_LIMIT);
		goto out;
	}
	if (route->flags & ES_RT_JSON && !((route->flags & ES_RT_BODY_OPT) && req->raw_len == 0)) {
		json_error_t jerr;

		if (!content_type_is_json(req->header(req, "Content-Type"))) {
			es_resp_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE",
				      "expected Content-Type: application/json");
			goto out;
		}
		req->body = json_loadb(req->raw_body ? req->raw_body : "", req->raw_len,
				       JSON_REJECT_DUPLICATES, &jerr);
		if (!req->body) {
			es_resp_error(resp, 400, "INVALID_JSON",
				      "invalid JSON at line %d column %d: %s", jerr.line,
				      jerr.column, jerr.text);
			goto out;
		}
	}
	/* Audit records made by the handler name the caller (core/audit.h). */
	es_audit_set_actor(have_id ? id.sub : NULL);
	route->fn(req, resp);
	es_audit_set_actor(NULL);
	json_decref(req->body);
	req->body = NULL;
out:
	if (have_id && hooks.free_identity)
		hooks.free_identity(&id);
}

/* ---- ulfius glue -------------------------------------------------------------- */

static int ulfius_cb(const struct _u_request *u, struct _u_response *ur, void *data)
{
	struct req_impl im = {.u = u};
	struct es_resp resp = {0};
	struct es_req req = {0};
	char ip[INET6_ADDRSTRLEN] = "";
	const char *url = u->http_url ? u->http_url : "/";
	char raw_path[1024];
	size_t plen = strcspn(url, "?#");

	if (plen >= sizeof(raw_path))
		plen = sizeof(raw_path) - 1;
	memcpy(raw_path, url, plen);
	raw_path[plen] = '\0';
	if (u->client_address) {
		if (u->client_address->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)u->client_address)->sin_addr, ip,
				  sizeof(ip));
		else if (u->client_address->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)u->client_address)->sin6_addr,
				  ip, sizeof(ip));
	}
	req.method = u->http_verb;
	req.raw_body = u->binary_body;
	req.raw_len = u->binary_body_length;
	req.client_ip = ip;
	req.param = req_param;
	req.query = req_query;
	req.header = req_header;
	req.impl = &im;

	handle(&req, raw_path, &resp);

	for (int i = 0; i < resp.n_headers; i++)
		u_map_put(ur->map_header, resp.headers[i][0], resp.headers[i][1]);
	if (resp.json) {
		char *s = json_dumps(resp.json, JSON_COMPACT);

		u_map_put(ur->map_header, "Content-Type", "application/json");
		ulfius_set_binary_body_response(ur, (unsigned)resp.status, s ? s : "",
						s ? strlen(s) : 0);
		free(s);
	} else if (resp.text || resp.static_body) {
		u_map_put(ur->map_header, "Content-Type",
			  resp.content_type ? resp.content_type : "text/plain; charset=utf-8");
		if (resp.text)
			ulfius_set_binary_body_response(ur, (unsigned)resp.status, resp.text,
							resp.text_len);
		else
			ulfius_set_binary_body_response(ur, (unsigned)resp.status, resp.static_body,
							resp.static_len);
	} else {
		ulfius_set_empty_body_response(ur, (unsigned)(resp.status ? resp.status : 500));
	}
	/* ulfius ignores an empty binary body: set the status in every case. */
	ur->status = (long)(resp.status ? resp.status : 500);
	if (!strcmp(u->http_verb, "HEAD"))
		ulfius_set_empty_body_response(ur, (unsigned)ur->status);
	es_resp_clear(&resp);
	return U_CALLBACK_COMPLETE;
}

void es_http_dispatch(const char *method, const char *path, const char *query,
		      const char *content_type, const char *body, size_t body_len,
		      struct es_resp *resp)
{
	es_http_dispatch_ex(method, path, query, content_type, NULL, "127.0.0.1", body, body_len,
			    resp);
}

void es_http_dispatch_ex(const char *method, const char *path, const char *query,
			 const char *content_type, const char *const *headers,
			 const char *client_ip, const char *body, size_t body_len,
			 struct es_resp *resp)
{
	struct req_impl im = {.query_str = query, .content_type = content_type, .headers = headers};
	struct es_req req = {0};

	parse_query_string(&im, query);
	req.method = method;
	req.raw_body = body;
	req.raw_len = body_len;
	req.client_ip = client_ip;
	req.param = req_param;
	req.query = req_query;
	req.header = req_header;
	req.impl = &im;
	handle(&req, path, resp);
}

/* ---- TLS ---------------------------------------------------------------------- */

/* libmicrohttpd's messages (failed handshakes among them) are debug output. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	pr_debug(buf);
}

/* ---- lifecycle -------------------------------------------------------------- */

int es_http_start(const struct es_http_opts *o)
{
	struct sockaddr_in6 sa6 = {0};
	struct sockaddr_in sa4 = {0};
	unsigned flags =
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem ops[12];
	int n = 0, r;
	bool v6 = strchr(o->bind_address, ':') != NULL;
	char addr[64];

	snprintf(addr, sizeof(addr), "%s", o->bind_address);
	if (addr[0] == '[') {
		memmove(addr, addr + 1, strlen(addr));
		addr[strcspn(addr, "]")] = '\0';
	}
	if (v6) {
		sa6.sin6_family = AF_INET6;
		sa6.sin6_port = htons(o->port);
		if (inet_pton(AF_INET6, addr, &sa6.sin6_addr) != 1)
			return -EINVAL;
		if (ulfius_init_instance_ipv6(&instance, o->port, &sa6, U_USE_IPV6, NULL) != U_OK)
			return -ENOMEM;
		flags |= MHD_USE_IPv6;
	} else {
		sa4.sin_family = AF_INET;
		sa4.sin_port = htons(o->port);
		if (inet_pton(AF_INET, addr, &sa4.sin_addr) != 1)
			return -EINVAL;
		if (ulfius_init_instance(&instance, o->port, &sa4, NULL) != U_OK)
			return -ENOMEM;
	}
	/* One byte over the limit: a truncated body tells us it was too large. */
	instance.max_post_body_size = ES_HTTP_BODY_LIMIT + 1;
	instance.allowed_post_processor = U_POST_PROCESS_NONE;
	instance.check_utf8 = 0;
	ulfius_set_default_endpoint(&instance, ulfius_cb, NULL);

	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
					   (intptr_t)mhd_request_completed, NULL};
	ops[n++] =
	    (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)ulfius_uri_logger, NULL};
	ops[n++] =
	    (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, v6 ? (void *)&sa6 : (void *)&sa4};
	ops[n++] =
	    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, ES_HTTP_MAX_CONNECTIONS, NULL};
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL};
	if (o->tls) {
		/* Material per handshake (api/tls.c), so a reload reaches new connections. */
		if (!es_tls_loaded()) {
			r = -ENOKEY;
			goto fail;
		}
		flags |= MHD_USE_TLS;
		ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
						   (void *)es_tls_retrieve};
		ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
						   (void *)ES_TLS_PRIORITIES};
	}
	ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	if (ulfius_start_framework_with_mhd_options(&instance, flags, ops) != U_OK) {
		r = -EADDRINUSE;
		goto fail;
	}
	running = true;
	return 0;
fail:
	ulfius_clean_instance(&instance);
	return r;
}

void es_http_stop(void)
{
	if (!running)
		return;
	ulfius_stop_framework(&instance);
	ulfius_clean_instance(&instance);
	running = false;
}
