// SPDX-License-Identifier: AGPL-3.0-only
/* libFuzzer: what a gRPC client controls. The input is split into DATA-like
 * chunks (sizes from its first bytes) and deframed; every message is decoded
 * as each request type the server accepts, and answered by reflection. */
#include <stdlib.h>
#include <string.h>

#include "api/grpc.h"
#include "ebpfsentinel/v1/alerts.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

static int on_msg(const uint8_t *m, size_t len, bool compressed, void *arg)
{
	Ebpfsentinel__V1__StreamAlertsRequest *a =
	    ebpfsentinel__v1__stream_alerts_request__unpack(NULL, len, m);
	Grpc__Health__V1__HealthCheckRequest *h =
	    grpc__health__v1__health_check_request__unpack(NULL, len, m);
	struct es_grpc_filter f;
	size_t n;
	uint8_t *r;

	if (a) {
		es_grpc_filter_init(&f, a->min_severity, a->component);
		ebpfsentinel__v1__stream_alerts_request__free_unpacked(a, NULL);
	}
	if (h)
		grpc__health__v1__health_check_request__free_unpacked(h, NULL);
	r = es_grpc_reflect(m, len, &n);
	free(r);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct es_grpc_deframer d = {0};
	char t[16];
	uint64_t ns;
	size_t off = 2;

	if (size < 2)
		return 0;
	memcpy(t, data, size < 15 ? size : 15);
	t[size < 15 ? size : 15] = '\0';
	es_grpc_parse_timeout(t, &ns);
	while (off < size) {
		size_t chunk = 1 + (size_t)data[off % 2] % 64;

		if (chunk > size - off)
			chunk = size - off;
		if (es_grpc_deframe(&d, data + off, chunk, 1 << 16, on_msg, NULL))
			break;
		off += chunk;
	}
	es_grpc_deframer_free(&d);
	return 0;
}
