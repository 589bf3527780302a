// SPDX-License-Identifier: AGPL-3.0-only
/* libFuzzer: the whole configuration loader (YAML, closed top level, agent
 * section, every domain's section parser, error rendering). */
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct es_error err;
	struct es_config *c;
	char msg[2048];

	es_log_setup(ES_LOG_ERROR, ES_LOG_JSON);
	c = es_config_parse((const char *)data, size, "fuzz.yaml", &err);
	if (c) {
		json_t *j = es_config_to_json(c);

		json_decref(j);
		es_config_put(c);
	} else {
		es_error_format(&err, msg, sizeof(msg));
	}
	return 0;
}
