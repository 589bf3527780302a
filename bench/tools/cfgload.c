// SPDX-License-Identifier: AGPL-3.0-only
/*
 * cfgload: loads and validates a configuration file `count` times with the
 * agent's own loader, for instruction counts under valgrind (the userspace
 * topic counts only inside es_config_load with --toggle-collect).
 */
#include <stdio.h>
#include <stdlib.h>

#include "agent/config.h"

int main(int argc, char **argv)
{
	int count = argc > 2 ? atoi(argv[2]) : 1;

	if (argc < 2 || count < 1) {
		fprintf(stderr, "usage: cfgload CONFIG [COUNT]\n");
		return 2;
	}
	for (int i = 0; i < count; i++) {
		struct es_error err = {0};
		struct es_config *cfg = es_config_load(argv[1], &err);
		char msg[512];

		if (!cfg) {
			es_error_format(&err, msg, sizeof(msg));
			fprintf(stderr, "cfgload: %s\n", msg);
			return 1;
		}
		es_config_put(cfg);
	}
	return 0;
}
