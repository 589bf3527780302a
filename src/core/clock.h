/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Clocks (detection.md §0.4: windows and TTLs on one monotonic boot-time
 * clock; wall clock only for display) and a bounded condition wait.
 */
#ifndef ES_CLOCK_H
#define ES_CLOCK_H

#include <pthread.h>
#include <stdint.h>

#define ES_NS_PER_SEC 1000000000ull

uint64_t es_mono_ns(void); /* CLOCK_MONOTONIC */
uint64_t es_boot_ns(void); /* CLOCK_BOOTTIME, the kernel's bpf_ktime_get_boot_ns() */
uint64_t es_wall_ns(void); /* CLOCK_REALTIME */
/* pthread_cond_timedwait for at most ms milliseconds (lock held). */
void es_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int ms);

#endif
