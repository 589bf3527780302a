// SPDX-License-Identifier: AGPL-3.0-only
/*
 * API documentation: the OpenAPI document (src/api/openapi.base.json plus each
 * domain's openapi.json, merged at build time) at /api-docs/openapi.json and
 * Swagger UI at /swagger-ui/, both embedded in the binary. Served only when
 * agent.swagger_ui is true.
 */
#include "api/docs.h"

#include <string.h>

#define ASSET_DECL(n) extern const char es_asset_##n[], es_asset_##n##_end[]
ASSET_DECL(openapi);
ASSET_DECL(swagger_css);
ASSET_DECL(swagger_bundle);
ASSET_DECL(swagger_preset);
ASSET_DECL(swagger_favicon);

static const char index_html[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\">\n"
    "<title>eBPFsentinel Agent API</title>\n"
    "<link rel=\"stylesheet\" type=\"text/css\" href=\"./swagger-ui.css\" />\n"
    "<link rel=\"icon\" type=\"image/png\" href=\"./favicon-32x32.png\" sizes=\"32x32\" />\n"
    "</head>\n<body>\n<div id=\"swagger-ui\"></div>\n"
    "<script src=\"./swagger-ui-bundle.js\" charset=\"UTF-8\"></script>\n"
    "<script src=\"./swagger-ui-standalone-preset.js\" charset=\"UTF-8\"></script>\n"
    "<script src=\"./swagger-initializer.js\" charset=\"UTF-8\"></script>\n"
    "</body>\n</html>\n";

static const char initializer_js[] =
    "window.onload = function () {\n"
    "  window.ui = SwaggerUIBundle({\n"
    "    url: \"/api-docs/openapi.json\",\n"
    "    dom_id: \"#swagger-ui\",\n"
    "    deepLinking: true,\n"
    "    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],\n"
    "    plugins: [SwaggerUIBundle.plugins.DownloadUrl],\n"
    "    layout: \"StandaloneLayout\",\n"
    "  });\n"
    "};\n";

const char *es_docs_openapi(size_t *len)
{
	*len = (size_t)(es_asset_openapi_end - es_asset_openapi);
	return es_asset_openapi;
}

static void serve(struct es_resp *r, const char *ct, const void *p, size_t n)
{
	r->status = 200;
	r->content_type = ct;
	r->static_body = p;
	r->static_len = n;
}

static void h_openapi(const struct es_req *req, struct es_resp *resp)
{
	size_t n;
	const char *doc = es_docs_openapi(&n);

	serve(resp, "application/json", doc, n);
}

static void h_redirect(const struct es_req *req, struct es_resp *resp)
{
	serve(resp, "text/plain; charset=utf-8", "", 0);
	resp->status = 301;
	es_resp_header(resp, "Location", "/swagger-ui/");
}

static void h_index(const struct es_req *req, struct es_resp *resp)
{
	serve(resp, "text/html; charset=utf-8", index_html, sizeof(index_html) - 1);
}

static void h_file(const struct es_req *req, struct es_resp *resp)
{
	const char *f = req->param(req, "file");

#define FILE_CASE(name, ct, asset)                                                                 \
	if (!strcmp(f, name)) {                                                                    \
		serve(resp, ct, es_asset_##asset,                                                  \
		      (size_t)(es_asset_##asset##_end - es_asset_##asset));                        \
		return;                                                                            \
	}
	FILE_CASE("swagger-ui.css", "text/css; charset=utf-8", swagger_css);
	FILE_CASE("swagger-ui-bundle.js", "application/javascript; charset=utf-8", swagger_bundle);
	FILE_CASE("swagger-ui-standalone-preset.js", "application/javascript; charset=utf-8",
		  swagger_preset);
	FILE_CASE("favicon-32x32.png", "image/png", swagger_favicon);
#undef FILE_CASE
	if (!strcmp(f, "index.html")) {
		h_index(req, resp);
		return;
	}
	if (!strcmp(f, "swagger-initializer.js")) {
		serve(resp, "application/javascript; charset=utf-8", initializer_js,
		      sizeof(initializer_js) - 1);
		return;
	}
	es_resp_error(resp, 404, "NOT_FOUND", "no such file: %s", f);
}

const struct es_route es_docs_routes[] = {
    {"GET", "/api-docs/openapi.json", h_openapi, ES_RT_PUBLIC},
    {"GET", "/swagger-ui", h_redirect, ES_RT_PUBLIC},
    {"GET", "/swagger-ui/", h_index, ES_RT_PUBLIC},
    {"GET", "/swagger-ui/{file}", h_file, ES_RT_PUBLIC},
    {NULL, NULL, NULL, 0},
};
