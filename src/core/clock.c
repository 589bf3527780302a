// SPDX-License-Identifier: AGPL-3.0-only
#include "core/clock.h"

#include <time.h>

static uint64_t read_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * ES_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t es_mono_ns(void)
{
	return read_ns(CLOCK_MONOTONIC);
}

uint64_t es_boot_ns(void)
{
	return read_ns(CLOCK_BOOTTIME);
}

uint64_t es_wall_ns(void)
{
	return read_ns(CLOCK_REALTIME);
}

void es_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int ms)
{
	uint64_t t = read_ns(CLOCK_REALTIME) + (uint64_t)ms * 1000000ull;
	struct timespec ts = {.tv_sec = (time_t)(t / ES_NS_PER_SEC),
			      .tv_nsec = (long)(t % ES_NS_PER_SEC)};

	pthread_cond_timedwait(cond, lock, &ts);
}
