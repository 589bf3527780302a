// SPDX-License-Identifier: AGPL-3.0-only
#define ES_LOG_TARGET "ebpfsentinel::events"
#include "kernel/events.h"
#include "abi/common.h"
#include "core/log.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct handler {
	es_event_fn fn;
	void *arg;
	size_t min_len;
	uint8_t version;
};

static struct handler handlers[ES_EV__MAX];
static struct ring_buffer *rb;
static pthread_t thread;
static atomic_bool stop_flag;
static bool started;
static int events_fd = -1;
static _Atomic uint64_t st_records, st_dispatched, st_short, st_version, st_unknown;

int es_events_register(uint16_t type, uint8_t version, size_t min_len, es_event_fn fn, void *arg)
{
	if (type >= ES_EV__MAX || min_len < sizeof(struct es_event_hdr))
		return -EINVAL;
	handlers[type] = (struct handler){fn, arg, min_len, version};
	return 0;
}

int es_events_dispatch(const void *data, size_t len)
{
	const struct es_event_hdr *h = data;
	const struct handler *hd;

	atomic_fetch_add(&st_records, 1);
	if (len < sizeof(*h) || h->len > len || h->len < sizeof(*h)) {
		atomic_fetch_add(&st_short, 1);
		return 0;
	}
	if (h->type >= ES_EV__MAX || !handlers[h->type].fn) {
		atomic_fetch_add(&st_unknown, 1);
		return 0;
	}
	hd = &handlers[h->type];
	if (h->len < hd->min_len) {
		atomic_fetch_add(&st_short, 1);
		return 0;
	}
	if (h->version != hd->version) {
		atomic_fetch_add(&st_version, 1);
		return 0;
	}
	hd->fn(data, h->len, hd->arg);
	atomic_fetch_add(&st_dispatched, 1);
	return 0;
}

static int rb_cb(void *ctx, void *data, size_t len)
{
	return es_events_dispatch(data, len);
}

int es_events_add_ring(int map_fd)
{
	if (!rb) {
		rb = ring_buffer__new(map_fd, rb_cb, NULL, NULL);
		return rb ? 0 : -errno;
	}
	return ring_buffer__add(rb, map_fd, rb_cb, NULL);
}

static void *run(void *arg)
{
	while (!atomic_load(&stop_flag)) {
		int r = ring_buffer__poll(rb, 100);

		if (r < 0 && r != -EINTR) {
			pr_error("ring buffer poll failed", LF_INT("error", r));
			break;
		}
	}
	return NULL;
}

int es_events_start(void)
{
	char path[512];
	int r;

	snprintf(path, sizeof(path), "%s/events", es_kernel_pin_dir());
	events_fd = bpf_obj_get(path);
	if (events_fd < 0)
		return -errno;
	if ((r = es_events_add_ring(events_fd)))
		return r;
	atomic_store(&stop_flag, false);
	if ((r = pthread_create(&thread, NULL, run, NULL)))
		return -r;
	started = true;
	return 0;
}

void es_events_stop(int timeout_ms)
{
	struct timespec t0, t;

	if (!started)
		return;
	atomic_store(&stop_flag, true);
	pthread_join(thread, NULL);
	/* Drain what is already in the rings, bounded in time. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int n = ring_buffer__consume(rb);

		clock_gettime(CLOCK_MONOTONIC, &t);
		if (n <= 0 ||
		    (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
			break;
	}
	ring_buffer__free(rb);
	rb = NULL;
	if (events_fd >= 0)
		close(events_fd);
	events_fd = -1;
	started = false;
}

void es_events_get_stats(struct es_events_stats *o)
{
	o->records = atomic_load(&st_records);
	o->dispatched = atomic_load(&st_dispatched);
	o->short_records = atomic_load(&st_short);
	o->bad_version = atomic_load(&st_version);
	o->unknown_type = atomic_load(&st_unknown);
}
