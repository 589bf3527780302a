/* Embedded assets: the merged OpenAPI document and the Swagger UI files from
 * the swagger-ui-dist npm package (installed by make deps, never committed). */
#define ASSET(name, path)                   \
	.section .rodata.es_assets, "a";    \
	.balign 16;                         \
	.global es_asset_##name;            \
	.global es_asset_##name##_end;      \
es_asset_##name:                            \
	.incbin path;                       \
es_asset_##name##_end:                      \
	.byte 0;

ASSET(openapi, "build/gen/openapi.json")
ASSET(swagger_css, "node_modules/swagger-ui-dist/swagger-ui.css")
ASSET(swagger_bundle, "node_modules/swagger-ui-dist/swagger-ui-bundle.js")
ASSET(swagger_preset, "node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js")
ASSET(swagger_favicon, "node_modules/swagger-ui-dist/favicon-32x32.png")

.section .note.GNU-stack, "", @progbits
