/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The event thread: drains the pinned ring buffers, validates each record's
 * common header and dispatches it by type to the handler a domain registered.
 * Malformed records are counted, never trusted.
 */
#ifndef ES_EVENTS_H
#define ES_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef void (*es_event_fn)(const void *rec, size_t len, void *arg);

struct es_events_stats {
	uint64_t records;
	uint64_t dispatched;
	uint64_t short_records;
	uint64_t bad_version;
	uint64_t unknown_type;
};

/* Register the handler for an event type; records shorter than min_len or of
 * another layout version are rejected. Call before es_events_start(). */
int es_events_register(uint16_t type, uint8_t version, size_t min_len, es_event_fn fn, void *arg);
/* Add a ring (map fd) to drain; the common `events` ring is added by start. */
int es_events_add_ring(int map_fd);
/* Open the pinned `events` ring and start the thread. 0 or -errno. */
int es_events_start(void);
/* Stop after draining what is pending (bounded by timeout_ms). */
void es_events_stop(int timeout_ms);
void es_events_get_stats(struct es_events_stats *out);
/* Validate and dispatch one record (the thread's callback; exposed for tests). */
int es_events_dispatch(const void *data, size_t len);

#endif
