// SPDX-License-Identifier: AGPL-3.0-only
/* libFuzzer: CIDR, address and port-range parsers (config and REST input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[128], why[128], out[128];
	struct es_cidr c;
	struct es_port_range r;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!es_cidr_parse(s, &c, why, sizeof(why))) {
		es_cidr_format(&c, out, sizeof(out));
		/* A formatted CIDR parses back to itself. */
		struct es_cidr c2;

		if (es_cidr_parse(out, &c2, why, sizeof(why)) ||
		    memcmp(&c.addr.b, &c2.addr.b, 16) || c.plen != c2.plen)
			abort();
	}
	if (!es_port_range_parse(s, &r, why, sizeof(why)) && r.start > r.end)
		abort();
	es_id_valid(s);
	return 0;
}
