// SPDX-License-Identifier: AGPL-3.0-only
/* The event path: header validation and the bounded queue with its overflow
 * counted. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "abi/common.h"
#include "kernel/events.h"

static unsigned seen;

static void count(const void *rec, size_t len, void *arg)
{
	seen++;
}

Test(events, records_are_validated_then_queued_and_overflow_counted)
{
	struct es_pkt_event ev = {.hdr = {.type = ES_EV_LB, .version = 1, .len = sizeof(ev)}};
	struct es_events_stats st0, st;
	unsigned char junk[4] = {0};

	cr_assert_eq(es_events_register(ES_EV_LB, 1, sizeof(ev), count, NULL), 0);
	es_events_get_stats(&st0);
	cr_expect_eq(es_events_submit(junk, sizeof(junk)), -EINVAL, "shorter than a header");
	ev.hdr.version = 2;
	cr_expect_eq(es_events_submit(&ev, sizeof(ev)), -EINVAL, "unknown version");
	ev.hdr.version = 1;
	ev.hdr.type = 31;
	cr_expect_eq(es_events_submit(&ev, sizeof(ev)), -EINVAL, "no handler for the type");
	ev.hdr.type = ES_EV_LB;
	ev.hdr.len = 8;
	cr_expect_eq(es_events_submit(&ev, sizeof(ev)), -EINVAL, "shorter than the type's size");
	ev.hdr.len = sizeof(ev);
	for (unsigned i = 0; i < ES_EVENTS_QUEUE_CAP; i++)
		cr_assert_eq(es_events_submit(&ev, sizeof(ev)), 0);
	cr_expect_eq(es_events_submit(&ev, sizeof(ev)), -ENOBUFS, "queue full");
	es_events_get_stats(&st);
	cr_expect_eq(st.queue_full - st0.queue_full, 1);
	cr_expect_eq(st.short_records - st0.short_records, 2);
	cr_expect_eq(st.bad_version - st0.bad_version, 1);
	cr_expect_eq(st.unknown_type - st0.unknown_type, 1);
	cr_expect_eq(st.queue_depth, ES_EVENTS_QUEUE_CAP);
	seen = 0;
	cr_expect_eq(es_events_flush(), ES_EVENTS_QUEUE_CAP);
	cr_expect_eq(seen, ES_EVENTS_QUEUE_CAP, "every queued record reaches its handler");
	es_events_get_stats(&st);
	cr_expect_eq(st.records - st0.records, ES_EVENTS_QUEUE_CAP + 5,
		     "every record is accounted for");
	cr_expect_eq(st.dispatched - st0.dispatched, ES_EVENTS_QUEUE_CAP);
}
