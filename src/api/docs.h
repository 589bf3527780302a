/* SPDX-License-Identifier: AGPL-3.0-only */
#ifndef ES_DOCS_H
#define ES_DOCS_H

#include <stddef.h>

#include "api/route.h"

/* Routes served when agent.swagger_ui is true. */
extern const struct es_route es_docs_routes[];
/* The embedded OpenAPI document (not NUL-terminated within len). */
const char *es_docs_openapi(size_t *len);

#endif
