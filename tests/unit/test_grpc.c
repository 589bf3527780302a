// SPDX-License-Identifier: AGPL-3.0-only
/* gRPC wire pieces: length-prefixed messages across arbitrary DATA chunking,
 * size limits, grpc-timeout, grpc-message encoding, AlertEvent defaults, the
 * stream filter and reflection lookups. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/grpc.h"
#include "ebpfsentinel/v1/alerts.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

struct got {
	unsigned n;
	size_t lens[16];
	uint8_t first[16];
	bool compressed[16];
};

static int collect(const uint8_t *m, size_t len, bool compressed, void *arg)
{
	struct got *g = arg;

	g->lens[g->n] = len;
	g->first[g->n] = len ? m[0] : 0;
	g->compressed[g->n++] = compressed;
	return 0;
}

static size_t frame(uint8_t *out, uint8_t flag, const char *msg)
{
	size_t n = strlen(msg);

	out[0] = flag;
	out[1] = (uint8_t)(n >> 24);
	out[2] = (uint8_t)(n >> 16);
	out[3] = (uint8_t)(n >> 8);
	out[4] = (uint8_t)n;
	memcpy(out + 5, msg, n);
	return 5 + n;
}

Test(grpc, messages_survive_any_chunking)
{
	uint8_t wire[256];
	size_t len = 0;

	len += frame(wire + len, 0, "alpha");
	len += frame(wire + len, 0, "");
	len += frame(wire + len, 1, "gamma-gamma");
	for (size_t chunk = 1; chunk <= len; chunk++) {
		struct es_grpc_deframer d = {0};
		struct got g = {0};

		for (size_t off = 0; off < len; off += chunk) {
			size_t n = len - off < chunk ? len - off : chunk;

			cr_assert_eq(es_grpc_deframe(&d, wire + off, n, 1024, collect, &g), 0);
		}
		cr_expect_eq(g.n, 3, "chunk %zu: %u messages", chunk, g.n);
		cr_expect_eq(g.lens[0], 5);
		cr_expect_eq(g.first[0], 'a');
		cr_expect_eq(g.lens[1], 0, "empty messages are messages");
		cr_expect_eq(g.lens[2], 11);
		cr_expect(g.compressed[2] && !g.compressed[0], "compressed flag reported");
		cr_expect_eq(d.len, 0, "nothing left over");
		es_grpc_deframer_free(&d);
	}
}

Test(grpc, oversize_message_is_refused_before_buffering)
{
	struct es_grpc_deframer d = {0};
	struct got g = {0};
	uint8_t hdr[5] = {0, 0, 0x10, 0, 1}; /* 1 MiB + 1 */

	cr_expect_eq(es_grpc_deframe(&d, hdr, 5, 1 << 20, collect, &g), -EMSGSIZE);
	cr_expect_eq(g.n, 0);
	cr_expect_leq(d.cap, 4096, "the announced size was not allocated");
	es_grpc_deframer_free(&d);
}

Test(grpc, timeout_header)
{
	static const struct {
		const char *v;
		int r;
		uint64_t ns;
	} t[] = {
	    {"1H", 0, 3600000000000ull}, {"2M", 0, 120000000000ull}, {"3S", 0, 3000000000ull},
	    {"300m", 0, 300000000ull},	 {"7u", 0, 7000ull},	     {"99999999n", 0, 99999999ull},
	    {"100", -EINVAL, 0},	 {"S", -EINVAL, 0},	     {"123456789S", -EINVAL, 0},
	    {"-1S", -EINVAL, 0},	 {"1x", -EINVAL, 0},	     {"", -EINVAL, 0},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t ns = 0;

		cr_expect_eq(es_grpc_parse_timeout(t[i].v, &ns), t[i].r, "%s", t[i].v);
		if (!t[i].r)
			cr_expect_eq(ns, t[i].ns, "%s", t[i].v);
	}
}

Test(grpc, message_percent_encoding)
{
	char out[64];

	es_grpc_encode_message("unknown service: x", out, sizeof(out));
	cr_expect_str_eq(out, "unknown service: x");
	es_grpc_encode_message("50% off\nnow", out, sizeof(out));
	cr_expect_str_eq(out, "50%25 off%0Anow");
}

Test(grpc, alert_event_fields_and_defaults)
{
	struct es_alert a = {.timestamp_ns = 42,
			     .severity = ES_SEV_CRITICAL,
			     .action = ES_ALERT_ACT_BLOCK,
			     .src_addr = {1, 2, 3, 4},
			     .dst_port = 22,
			     .protocol = 6,
			     .is_ipv6 = true};
	Ebpfsentinel__V1__AlertEvent *e;
	uint8_t *buf;
	size_t len;

	strcpy(a.id, "42-r");
	strcpy(a.rule_id, "r");
	strcpy(a.component, "ids");
	strcpy(a.matched_domain, "x.example");
	a.has = ES_AF_MATCHED_DOMAIN | ES_AF_PID;
	a.pid = 7;
	buf = es_grpc_alert_event(&a, &len);
	cr_assert_not_null(buf);
	e = ebpfsentinel__v1__alert_event__unpack(NULL, len, buf);
	cr_assert_not_null(e);
	cr_expect_str_eq(e->id, "42-r");
	cr_expect_str_eq(e->severity, "critical");
	cr_expect_str_eq(e->action, "block");
	cr_expect_eq(e->n_src_addr, 4);
	cr_expect_eq(e->src_addr[3], 4);
	cr_expect_eq(e->dst_port, 22);
	cr_expect(e->is_ipv6);
	cr_expect_str_eq(e->matched_domain, "x.example");
	cr_expect_eq(e->pid, 7);
	cr_expect_eq(e->src_domain_score, -1);
	cr_expect_eq(e->confidence, -1);
	cr_expect_eq(e->direction, -1);
	cr_expect_str_eq(e->src_geo, "");
	cr_expect_eq(e->peak_pps, 0);
	ebpfsentinel__v1__alert_event__free_unpacked(e, NULL);
	free(buf);
}

Test(grpc, stream_filter)
{
	struct es_alert a = {.severity = ES_SEV_HIGH};
	struct es_grpc_filter f;

	strcpy(a.component, "ids");
	es_grpc_filter_init(&f, "", "");
	cr_expect(es_grpc_filter_match(&f, &a));
	es_grpc_filter_init(&f, "LOW", "");
	cr_expect(es_grpc_filter_match(&f, &a), "low = everything");
	es_grpc_filter_init(&f, "bogus", "");
	cr_expect(es_grpc_filter_match(&f, &a), "unknown = everything");
	es_grpc_filter_init(&f, "High", "IDS");
	cr_expect(es_grpc_filter_match(&f, &a));
	es_grpc_filter_init(&f, "critical", "");
	cr_expect_not(es_grpc_filter_match(&f, &a));
	es_grpc_filter_init(&f, "", "dlp");
	cr_expect_not(es_grpc_filter_match(&f, &a));
}

static Grpc__Reflection__V1__ServerReflectionResponse *reflect(const char *symbol, const char *file)
{
	Grpc__Reflection__V1__ServerReflectionRequest rq =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	uint8_t buf[512], *out;
	size_t n, on;
	Grpc__Reflection__V1__ServerReflectionResponse *rs;

	if (symbol) {
		rq.message_request_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
		rq.file_containing_symbol = (char *)symbol;
	} else {
		rq.message_request_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
		rq.file_by_filename = (char *)file;
	}
	n = grpc__reflection__v1__server_reflection_request__pack(&rq, buf);
	out = es_grpc_reflect(buf, n, &on);
	cr_assert_not_null(out);
	rs = grpc__reflection__v1__server_reflection_response__unpack(NULL, on, out);
	free(out);
	cr_assert_not_null(rs);
	return rs;
}

Test(grpc, reflection_finds_files_by_symbol_and_name)
{
	static const char *const found[] = {
	    "ebpfsentinel.v1.AlertStreamService",
	    "ebpfsentinel.v1.AlertStreamService.StreamAlerts",
	    "ebpfsentinel.v1.AlertEvent",
	    "grpc.health.v1.HealthCheckResponse.ServingStatus",
	    "grpc.health.v1.Health.Watch",
	};
	Grpc__Reflection__V1__ServerReflectionResponse *rs;

	for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) {
		rs = reflect(found[i], NULL);
		cr_expect_eq(
		    rs->message_response_case,
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE,
		    "%s not found", found[i]);
		grpc__reflection__v1__server_reflection_response__free_unpacked(rs, NULL);
	}
	rs = reflect("ebpfsentinel.v1.Nope", NULL);
	cr_expect_eq(
	    rs->message_response_case,
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
	cr_expect_eq(rs->error_response->error_code, 5);
	grpc__reflection__v1__server_reflection_response__free_unpacked(rs, NULL);
	rs = reflect(NULL, "grpc/health/v1/health.proto");
	cr_assert_eq(
	    rs->message_response_case,
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
	cr_expect_eq(rs->file_descriptor_response->n_file_descriptor_proto, 1);
	grpc__reflection__v1__server_reflection_response__free_unpacked(rs, NULL);
}
