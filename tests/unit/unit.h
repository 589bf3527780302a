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

#ifdef CRITERION_H_
#include <stdio.h>
/* MIN_AGENT + section must be rejected with an error containing want. */
static inline void unit_expect_cfg_error(const char *section, const char *want)
{
	char yaml[4096], err[1024];
	struct es_config *c;

	snprintf(yaml, sizeof(yaml), MIN_AGENT "%s", section);
	c = unit_cfg(yaml, err, sizeof(err));
	cr_expect_null(c, "accepted: %s", section);
	es_config_put(c);
	cr_expect(strstr(err, want), "error '%s' lacks '%s'", err, want);
}
#endif

#endif
