/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The event path: a reader thread drains the pinned ring buffers in batches,
 * validates each record's common header and copies good records into a
 * bounded queue (ES_EVENTS_QUEUE_CAP); a worker thread dispatches them by
 * type to the handler a domain registered, so a slow engine never stalls the
 * rings. Malformed records and queue overflow are counted, never trusted.
 */
#ifndef ES_EVENTS_H
#define ES_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#define ES_EVENTS_QUEUE_CAP 10000

typedef void (*es_event_fn)(const void *rec, size_t len, void *arg);

struct es_events_stats {
	uint64_t records;    /* read from the rings (or submitted) */
	uint64_t dispatched; /* handed to a handler */
	uint64_t short_records;
	uint64_t bad_version;
	uint64_t unknown_type;
	uint64_t queue_full; /* valid records dropped because the queue was full */
	uint64_t queue_depth;
};

/* Register the handler for an event type; records shorter than min_len or of
 * another layout version are rejected. Call before es_events_start(). */
int es_events_register(uint16_t type, uint8_t version, size_t min_len, es_event_fn fn, void *arg);
/* Add a ring (map fd) to drain; the common `events` ring is added by start. */
int es_events_add_ring(int map_fd);
/* Open the pinned `events` ring and start the threads. 0 or -errno. */
int es_events_start(void);
/* Stop: drain the rings and then the queue, each bounded by timeout_ms. */
void es_events_stop(int timeout_ms);
void es_events_get_stats(struct es_events_stats *out);
/* Validate and dispatch one record synchronously (tests). */
int es_events_dispatch(const void *data, size_t len);
/* Validate one record and queue it for the worker (the reader's path). 0, or
 * -ENOBUFS when the queue is full, -EINVAL when the record is rejected. */
int es_events_submit(const void *data, size_t len);
/* Dispatch everything queued on the calling thread (tests, shutdown). */
size_t es_events_flush(void);

#endif
