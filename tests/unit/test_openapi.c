// SPDX-License-Identifier: AGPL-3.0-only
/* Every route the server registers is described in the OpenAPI document with
 * its method; the document is the one embedded in the binary. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

#include "agent/domain.h"
#include "api/docs.h"

static void check_routes(const json_t *paths, const struct es_route *r, const char *owner)
{
	for (; r && r->method; r++) {
		char m[16];
		size_t i;

		for (i = 0; r->method[i] && i < sizeof(m) - 1; i++)
			m[i] = (char)tolower((unsigned char)r->method[i]);
		m[i] = '\0';
		json_t *item = json_object_get(paths, r->path);

		cr_expect_not_null(item, "%s: %s %s missing from openapi.json", owner, r->method,
				   r->path);
		cr_expect_not_null(json_object_get(item, m), "%s: method %s of %s undocumented",
				   owner, r->method, r->path);
	}
}

Test(openapi, every_registered_route_is_documented)
{
	size_t len;
	const char *doc = es_docs_openapi(&len);
	json_error_t e;
	json_t *root = json_loadb(doc, len, 0, &e), *paths;

	cr_assert_not_null(root, "embedded document does not parse: %s", e.text);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(root, "info"), "title")),
			 "eBPFsentinel Agent API");
	paths = json_object_get(root, "paths");
	for (unsigned i = 0; i < es_n_domains; i++)
		check_routes(paths, es_domains[i]->routes, es_domains[i]->name);
	check_routes(paths, es_docs_routes, "docs");
	json_decref(root);
}
