/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The gRPC server (interfaces.md §5) on nghttp2 + protobuf-c: cleartext
 * HTTP/2 (prior knowledge) or TLS 1.3 with ALPN h2 (GnuTLS). Services:
 * ebpfsentinel.v1.AlertStreamService/StreamAlerts, grpc.health.v1.Health
 * (Check, Watch) and server reflection (v1 and v1alpha). One thread owns the
 * listener and every connection; the alert pipeline publishes into bounded
 * per-subscriber buffers and never waits for a client.
 */
#ifndef ES_GRPC_H
#define ES_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alert.h"

#define ES_GRPC_MAX_CONNECTIONS 256
#define ES_GRPC_MAX_STREAMS 100	       /* SETTINGS_MAX_CONCURRENT_STREAMS per connection */
#define ES_GRPC_SUB_BUFFER 1000	       /* alerts buffered per subscriber (§5.2) */
#define ES_GRPC_MAX_MESSAGE (4u << 20) /* largest request message accepted */

/* gRPC status codes used here. */
enum es_grpc_status {
	ES_GRPC_OK = 0,
	ES_GRPC_CANCELLED = 1,
	ES_GRPC_INVALID_ARGUMENT = 3,
	ES_GRPC_DEADLINE_EXCEEDED = 4,
	ES_GRPC_NOT_FOUND = 5,
	ES_GRPC_RESOURCE_EXHAUSTED = 8,
	ES_GRPC_UNIMPLEMENTED = 12,
	ES_GRPC_INTERNAL = 13,
	ES_GRPC_UNAVAILABLE = 14,
	ES_GRPC_UNAUTHENTICATED = 16,
};

struct es_grpc_opts {
	const char *bind_address;
	uint16_t port;
	const char *tls_cert_pem; /* NULL: cleartext HTTP/2 */
	const char *tls_key_pem;
};

/* Bind and start the server thread. 0, or -errno (a bind failure is fatal, §1.3). */
int es_grpc_start(const struct es_grpc_opts *o);
/* Stop: end open streams, GOAWAY every connection, drain up to drain_ms. */
void es_grpc_stop(int drain_ms);

/* Publish an alert to the live subscribers whose filters match; never blocks
 * (a full subscriber buffer drops its oldest alert). */
void es_grpc_publish(const struct es_alert *a);

/*
 * Authentication hook (issue 7 wires auth here). Called for every
 * AlertStreamService call before any message is read or sent, with the
 * `authorization` metadata value (NULL when absent). Return 0 to accept, or
 * -EACCES with the reason in msg: the call then ends with UNAUTHENTICATED
 * and that message (trailers-only). Health and reflection are never
 * authenticated (§4.5). NULL (the default) accepts everything.
 */
typedef int (*es_grpc_auth_fn)(const char *authorization, char *msg, size_t len);
void es_grpc_set_auth_hook(es_grpc_auth_fn fn);

/*
 * Replace the TLS certificate/key for new connections (reload, §9). Only
 * when the server runs with TLS. 0, or -errno with the old pair kept.
 */
int es_grpc_set_tls(const char *cert_pem, const char *key_pem);

/* ---- wire helpers (grpc_wire.c; exposed for tests and fuzzing) ---- */

/* Length-prefixed messages across DATA frames. */
struct es_grpc_deframer {
	uint8_t *buf;
	size_t len, cap;
};
typedef int (*es_grpc_msg_fn)(const uint8_t *msg, size_t len, bool compressed, void *arg);
/*
 * Append data and call fn for every complete message. Returns 0, the first
 * non-zero value fn returned, or -EMSGSIZE when a message announces more
 * than max bytes (nothing of it is buffered).
 */
int es_grpc_deframe(struct es_grpc_deframer *d, const uint8_t *data, size_t len, size_t max,
		    es_grpc_msg_fn fn, void *arg);
void es_grpc_deframer_free(struct es_grpc_deframer *d);
/* grpc-timeout ("1-8 digits" + H/M/S/m/u/n) in ns. 0 or -EINVAL. */
int es_grpc_parse_timeout(const char *v, uint64_t *ns);
/* Percent-encode a grpc-message value. */
void es_grpc_encode_message(const char *in, char *out, size_t len);

/* A serialized AlertEvent (field values of §5.2); caller frees. NULL on ENOMEM. */
uint8_t *es_grpc_alert_event(const struct es_alert *a, size_t *len);
/* StreamAlertsRequest filter (§5.2). */
struct es_grpc_filter {
	int min_severity; /* -1 all */
	char component[32];
};
void es_grpc_filter_init(struct es_grpc_filter *f, const char *min_severity, const char *component);
bool es_grpc_filter_match(const struct es_grpc_filter *f, const struct es_alert *a);

/* Reflection: answer one serialized ServerReflectionRequest. */
uint8_t *es_grpc_reflect(const uint8_t *req, size_t len, size_t *out_len);

#endif
