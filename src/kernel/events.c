// SPDX-License-Identifier: AGPL-3.0-only
#define ES_LOG_TARGET "ebpfsentinel::events"
#include "kernel/events.h"
#include "abi/common.h"
#include "api/metrics.h"
#include "core/clock.h"
#include "core/log.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct handler {
	es_event_fn fn;
	void *arg;
	size_t min_len;
	uint8_t version;
};

struct slot {
	void *data;
	uint32_t len;
};

static struct handler handlers[ES_EV__MAX];
static pthread_t reader, worker;
static atomic_bool stop_reader, stop_worker;
static bool started;
static int events_fd = -1;
static _Atomic uint64_t st_records, st_dispatched, st_short, st_version, st_unknown, st_full;

/* The bounded queue between the reader and the worker. */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct slot queue[ES_EVENTS_QUEUE_CAP];
static size_t q_head, q_len;

int es_events_register(uint16_t type, uint8_t version, size_t min_len, es_event_fn fn, void *arg)
{
	if (type >= ES_EV__MAX || min_len < sizeof(struct es_event_hdr))
		return -EINVAL;
	handlers[type] = (struct handler){fn, arg, min_len, version};
	return 0;
}

/* The handler for a well-formed record, or NULL after counting why not. */
static const struct handler *validate(const void *data, size_t len)
{
	const struct es_event_hdr *h = data;
	const struct handler *hd;

	atomic_fetch_add(&st_records, 1);
	if (len < sizeof(*h) || h->len > len || h->len < sizeof(*h)) {
		atomic_fetch_add(&st_short, 1);
		return NULL;
	}
	if (h->type >= ES_EV__MAX || !handlers[h->type].fn) {
		atomic_fetch_add(&st_unknown, 1);
		return NULL;
	}
	hd = &handlers[h->type];
	if (h->len < hd->min_len) {
		atomic_fetch_add(&st_short, 1);
		return NULL;
	}
	if (h->version != hd->version) {
		atomic_fetch_add(&st_version, 1);
		return NULL;
	}
	return hd;
}

int es_events_dispatch(const void *data, size_t len)
{
	const struct handler *hd = validate(data, len);

	if (hd) {
		hd->fn(data, ((const struct es_event_hdr *)data)->len, hd->arg);
		atomic_fetch_add(&st_dispatched, 1);
	}
	return 0;
}

int es_events_submit(const void *data, size_t len)
{
	const struct handler *hd = validate(data, len);
	uint32_t n;
	void *copy;

	if (!hd)
		return -EINVAL;
	n = ((const struct es_event_hdr *)data)->len;
	pthread_mutex_lock(&q_lock);
	if (q_len >= ES_EVENTS_QUEUE_CAP || !(copy = malloc(n))) {
		pthread_mutex_unlock(&q_lock);
		atomic_fetch_add(&st_full, 1);
		return -ENOBUFS;
	}
	memcpy(copy, data, n);
	queue[(q_head + q_len) % ES_EVENTS_QUEUE_CAP] = (struct slot){copy, n};
	q_len++;
	pthread_mutex_unlock(&q_lock);
	return 0;
}

/* Take up to max queued records (waiting up to wait_ms when empty). */
static size_t take(struct slot *out, size_t max, int wait_ms)
{
	size_t n = 0;

	pthread_mutex_lock(&q_lock);
	if (!q_len && wait_ms > 0)
		es_cond_wait_ms(&q_cond, &q_lock, wait_ms);
	while (q_len && n < max) {
		out[n++] = queue[q_head];
		q_head = (q_head + 1) % ES_EVENTS_QUEUE_CAP;
		q_len--;
	}
	pthread_mutex_unlock(&q_lock);
	return n;
}

static void run_batch(struct slot *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct es_event_hdr *h = b[i].data;

		handlers[h->type].fn(b[i].data, b[i].len, handlers[h->type].arg);
		atomic_fetch_add(&st_dispatched, 1);
		free(b[i].data);
	}
}

size_t es_events_flush(void)
{
	struct slot b[256];
	size_t n, total = 0;

	while ((n = take(b, 256, 0))) {
		run_batch(b, n);
		total += n;
	}
	return total;
}

/*
 * The reader's view of the `events` ring, mapped as libbpf maps it: the
 * consumer page read-write, the producer page and the data area (mapped twice
 * so a record that wraps stays contiguous) read-only. Unlike libbpf 1.1's
 * ring_buffer__consume(), which stores the consumer position after every
 * record, this publishes it once per ES_RING_PUBLISH records: each store
 * pulls the cache line away from the producing CPU, whose next reserve then
 * misses on it (docs/firewall.md, "Ring-buffer wakeups").
 */
#define ES_RING_PUBLISH 256

struct ring {
	int epfd;
	unsigned long *consumer_pos;
	const unsigned long *producer_pos;
	const uint8_t *data;
	size_t mask, page, size;
};

static struct ring ring = {.epfd = -1};

int es_events_add_ring(int map_fd)
{
	struct bpf_map_info info = {0};
	__u32 ilen = sizeof(info);
	struct epoll_event ev = {.events = EPOLLIN};
	void *p;

	if (ring.epfd >= 0)
		return -EBUSY; /* one ring: the common `events` */
	if (bpf_obj_get_info_by_fd(map_fd, &info, &ilen))
		return -errno;
	if (info.type != BPF_MAP_TYPE_RINGBUF)
		return -EINVAL;
	ring.page = (size_t)sysconf(_SC_PAGESIZE);
	ring.size = info.max_entries;
	ring.mask = info.max_entries - 1;
	p = mmap(NULL, ring.page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	ring.consumer_pos = p;
	p = mmap(NULL, ring.page + 2 * ring.size, PROT_READ, MAP_SHARED, map_fd, (off_t)ring.page);
	if (p == MAP_FAILED) {
		int e = -errno;

		munmap(ring.consumer_pos, ring.page);
		return e;
	}
	ring.producer_pos = p;
	ring.data = (const uint8_t *)p + ring.page;
	ring.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ring.epfd < 0 || epoll_ctl(ring.epfd, EPOLL_CTL_ADD, map_fd, &ev)) {
		int e = -errno;

		if (ring.epfd >= 0)
			close(ring.epfd);
		ring.epfd = -1;
		munmap(ring.consumer_pos, ring.page);
		munmap((void *)ring.producer_pos, ring.page + 2 * ring.size);
		return e;
	}
	return 0;
}

static void ring_close(void)
{
	if (ring.epfd < 0)
		return;
	close(ring.epfd);
	munmap(ring.consumer_pos, ring.page);
	munmap((void *)ring.producer_pos, ring.page + 2 * ring.size);
	ring.epfd = -1;
}

/* Drain every committed record into the queue; the number of records read. */
static long ring_consume(void)
{
	unsigned long cons = __atomic_load_n(ring.consumer_pos, __ATOMIC_ACQUIRE), prod;
	long n = 0;

	while (cons < (prod = __atomic_load_n(ring.producer_pos, __ATOMIC_ACQUIRE))) {
		while (cons < prod) {
			const uint32_t *hdr = (const uint32_t *)(ring.data + (cons & ring.mask));
			uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

			if (len & BPF_RINGBUF_BUSY_BIT)
				goto out; /* reserved, not yet committed */
			cons +=
			    (((len & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ) + 7) & ~7ul;
			if (!(len & BPF_RINGBUF_DISCARD_BIT))
				es_events_submit((const uint8_t *)hdr + BPF_RINGBUF_HDR_SZ, len);
			if (++n % ES_RING_PUBLISH == 0)
				__atomic_store_n(ring.consumer_pos, cons, __ATOMIC_RELEASE);
		}
	}
out:
	__atomic_store_n(ring.consumer_pos, cons, __ATOMIC_RELEASE);
	return n;
}

static void *run_reader(void *arg)
{
	while (!atomic_load(&stop_reader)) {
		/* epoll wakes on notifications, which producers send only when the
		 * pending data crosses ES_EVENTS_RING_WAKE_BYTES (es_event_submit);
		 * the timeout bounds the latency of the records below it, which
		 * ring_consume() collects either way. */
		struct epoll_event ev;
		int r = epoll_wait(ring.epfd, &ev, 1, ES_EVENTS_READER_POLL_MS);

		if (r < 0 && errno != EINTR) {
			pr_error("ring buffer poll failed", LF_INT("error", -errno));
			break;
		}
		ring_consume();
		pthread_mutex_lock(&q_lock);
		if (q_len)
			pthread_cond_signal(&q_cond);
		pthread_mutex_unlock(&q_lock);
	}
	return NULL;
}

static void *run_worker(void *arg)
{
	struct slot b[256];

	while (!atomic_load(&stop_worker)) {
		size_t n = take(b, 256, 100);

		run_batch(b, n);
	}
	return NULL;
}

/* Userspace losses go to events_dropped by reason; the received and
 * dispatched totals (extensions) let an operator check that none vanish. */
static void collect(void)
{
	struct es_mfam *dropped = es_metric_family(
	    "ebpfsentinel_events_dropped", "Events lost before processing", ES_M_COUNTER, "reason");
	struct es_mfam *stage = es_metric_family(
	    "ebpfsentinel_events", "Kernel event records read from the rings and dispatched",
	    ES_M_COUNTER, "stage");
	struct es_events_stats st;

	es_events_get_stats(&st);
	es_metric_mirror(dropped, st.queue_full, "event_queue_full");
	es_metric_mirror(dropped, st.short_records, "short_record");
	es_metric_mirror(dropped, st.bad_version, "bad_version");
	es_metric_mirror(dropped, st.unknown_type, "unknown_type");
	es_metric_mirror(stage, st.records, "received");
	es_metric_mirror(stage, st.dispatched, "dispatched");
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
	atomic_store(&stop_reader, false);
	atomic_store(&stop_worker, false);
	if ((r = pthread_create(&worker, NULL, run_worker, NULL))) {
		ring_close();
		return -r;
	}
	if ((r = pthread_create(&reader, NULL, run_reader, NULL))) {
		atomic_store(&stop_worker, true);
		pthread_join(worker, NULL);
		ring_close();
		return -r;
	}
	started = true;
	es_metrics_add_collector(collect);
	return 0;
}

void es_events_stop(int timeout_ms)
{
	uint64_t deadline = es_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct slot b[256];
	size_t n;

	if (!started)
		return;
	atomic_store(&stop_reader, true);
	pthread_join(reader, NULL);
	/* Drain what is already in the rings, then what is queued, bounded in time. */
	while (ring_consume() > 0 && es_mono_ns() < deadline)
		;
	atomic_store(&stop_worker, true);
	pthread_join(worker, NULL);
	while ((n = take(b, 256, 0))) {
		if (es_mono_ns() < deadline) {
			run_batch(b, n);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			free(b[i].data);
	}
	ring_close();
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
	o->queue_full = atomic_load(&st_full);
	pthread_mutex_lock(&q_lock);
	o->queue_depth = q_len;
	pthread_mutex_unlock(&q_lock);
}
