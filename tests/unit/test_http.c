// SPDX-License-Identifier: AGPL-3.0-only
/* The router and the framework-level error model (interfaces.md §3.1, §3.2, §12 item 15). */
#include <criterion/criterion.h>
#include <string.h>

#include "api/http.h"

static void h_echo(const struct es_req *req, struct es_resp *resp)
{
	const char *id = req->param(req, "id");

	es_resp_json(resp, 201, json_pack("{s:s?,s:O?}", "id", id, "body", req->body));
}

static void h_limit(const struct es_req *req, struct es_resp *resp)
{
	uint64_t limit;

	if (es_query_u64(req, resp, "limit", 100, &limit))
		return;
	es_resp_json(resp, 200, json_pack("{s:I}", "limit", (json_int_t)limit));
}

static const struct es_route routes[] = {
    {"POST", "/api/v1/things", h_echo, ES_RT_JSON | ES_RT_WRITE},
    {"DELETE", "/api/v1/things/{id}", h_echo, ES_RT_WRITE},
    {"GET", "/api/v1/things", h_limit, 0},
    {NULL, NULL, NULL, 0},
};

static void setup(void)
{
	es_http_add_routes(routes);
}

static const char *code_of(const struct es_resp *r)
{
	return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

TestSuite(http, .init = setup);

Test(http, route_matching_and_path_params)
{
	char p[4][2][256];
	int n;

	cr_expect(es_route_match("/a/{id}/b", "/a/x-1/b", p, &n));
	cr_expect_eq(n, 1);
	cr_expect_str_eq(p[0][1], "x-1");
	cr_expect_not(es_route_match("/a/{id}", "/a/", p, &n));
	cr_expect_not(es_route_match("/a/{id}", "/a/x/y", p, &n));
	cr_expect_not(es_route_match("/a", "/a/", p, &n));
}

Test(http, unknown_path_is_404_with_standard_body)
{
	struct es_resp r = {0};

	es_http_dispatch("GET", "/api/v1/nope", NULL, NULL, NULL, 0, &r);
	cr_expect_eq(r.status, 404);
	cr_expect_str_eq(code_of(&r), "NOT_FOUND");
	es_resp_clear(&r);
}

Test(http, wrong_method_is_405_with_allow)
{
	struct es_resp r = {0};

	es_http_dispatch("PUT", "/api/v1/things", NULL, NULL, NULL, 0, &r);
	cr_expect_eq(r.status, 405);
	cr_expect_str_eq(code_of(&r), "METHOD_NOT_ALLOWED");
	cr_expect_eq(r.n_headers, 1);
	cr_expect_str_eq(r.headers[0][0], "Allow");
	cr_expect_str_eq(r.headers[0][1], "POST, GET");
	es_resp_clear(&r);
}

Test(http, json_body_checks)
{
	struct es_resp r = {0};

	es_http_dispatch("POST", "/api/v1/things", NULL, "text/plain", "{}", 2, &r);
	cr_expect_eq(r.status, 415);
	cr_expect_str_eq(code_of(&r), "UNSUPPORTED_MEDIA_TYPE");
	es_resp_clear(&r);

	es_http_dispatch("POST", "/api/v1/things", NULL, "application/json", "{\"a\":", 5, &r);
	cr_expect_eq(r.status, 400);
	cr_expect_str_eq(code_of(&r), "INVALID_JSON");
	es_resp_clear(&r);

	es_http_dispatch("POST", "/api/v1/things", NULL, "application/json; charset=utf-8",
			 "{\"a\":1}", 7, &r);
	cr_expect_eq(r.status, 201);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(r.json, "body"), "a")), 1);
	es_resp_clear(&r);
}

Test(http, oversized_body_is_413)
{
	struct es_resp r = {0};
	size_t n = ES_HTTP_BODY_LIMIT + 1;
	char *big = malloc(n);

	memset(big, ' ', n);
	es_http_dispatch("POST", "/api/v1/things", NULL, "application/json", big, n, &r);
	cr_expect_eq(r.status, 413);
	cr_expect_str_eq(code_of(&r), "PAYLOAD_TOO_LARGE");
	es_resp_clear(&r);
	free(big);
}

Test(http, path_params_are_percent_decoded)
{
	struct es_resp r = {0};

	es_http_dispatch("DELETE", "/api/v1/things/%2A.evil.com", NULL, NULL, NULL, 0, &r);
	cr_expect_eq(r.status, 201);
	cr_expect_str_eq(json_string_value(json_object_get(r.json, "id")), "*.evil.com");
	es_resp_clear(&r);
}

Test(http, bad_query_value_is_400_invalid_query)
{
	struct es_resp r = {0};

	es_http_dispatch("GET", "/api/v1/things", "limit=abc", NULL, NULL, 0, &r);
	cr_expect_eq(r.status, 400);
	cr_expect_str_eq(code_of(&r), "INVALID_QUERY");
	es_resp_clear(&r);
	es_http_dispatch("GET", "/api/v1/things", "limit=7", NULL, NULL, 0, &r);
	cr_expect_eq(r.status, 200);
	cr_expect_eq(json_integer_value(json_object_get(r.json, "limit")), 7);
	es_resp_clear(&r);
}
