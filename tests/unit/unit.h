/* SPDX-License-Identifier: AGPL-3.0-only */
/* Shared helpers for the unit tests. */
#ifndef ES_UNIT_H
#define ES_UNIT_H

#include <string.h>

#include "agent/config.h"

/* Parse YAML text as a configuration; on failure the rendered error is in err. */
static inline struct es_config *unit_cfg(const char *yaml, char *err, size_t len)
{
	struct es_error e;
	struct es_config *c = es_config_parse(yaml, strlen(yaml), "test.yaml", &e);

	if (!c)
		es_error_format(&e, err, len);
	else
		err[0] = '\0';
	return c;
}

#define MIN_AGENT "agent:\n  interfaces: [veth0]\n"

#endif
