/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Kernel test harness: a private pin directory per test process (under the
 * host bpffs, removed afterwards) and BPF_PROG_TEST_RUN wrappers.
 */
#ifndef ES_KT_H
#define ES_KT_H

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "kernel/kernel.h"
#include "pkt.h"

static char kt_pin[128];

/* Pin directories of test processes that died before their teardown. */
static inline void kt_remove_stale(void)
{
	DIR *d = opendir("/sys/fs/bpf");
	struct dirent *de;
	char path[300];

	while (d && (de = readdir(d))) {
		int pid;

		if (sscanf(de->d_name, "es-ktest-%d", &pid) != 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (access(path, F_OK) == 0)
			continue;
		snprintf(path, sizeof(path), "/sys/fs/bpf/%s", de->d_name);
		rmdir(path); /* empty ones only: a live test's pins are never touched */
	}
	if (d)
		closedir(d);
}

/* Prepare a private pin directory (mounting bpffs if the host has none). */
static inline void kt_setup(void)
{
	char *none[] = {NULL};

	kt_remove_stale();
	snprintf(kt_pin, sizeof(kt_pin), "/sys/fs/bpf/es-ktest-%d", getpid());
	cr_assert_eq(es_kernel_init(&(struct es_kernel_opts){.pin_dir = kt_pin, .ifnames = none}),
		     0, "cannot prepare %s", kt_pin);
}

static inline void kt_teardown(void)
{
	es_kernel_shutdown(true);
}

/* Open options that pin shared maps into the test's directory. */
#define KT_OPEN_OPTS(name) LIBBPF_OPTS(bpf_object_open_opts, name, .pin_root_path = kt_pin)

struct kt_run {
	__u32 retval;
	__u8 out[2048];
	__u32 out_len;
};

/* Run an XDP program once on the frame. */
static inline void kt_xdp(int prog_fd, const struct pb *p, struct kt_run *r)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .repeat = 1);

	cr_assert_eq(bpf_prog_test_run_opts(prog_fd, &o), 0, "test run failed: %s",
		     strerror(errno));
	r->retval = o.retval;
	r->out_len = o.data_size_out;
}

/*
 * Run a TC (SCHED_CLS) program once on the frame; ctx (may be NULL) sets the
 * skb fields test_run accepts (mark, priority, ingress_ifindex, ifindex, cb,
 * gso_segs...) and receives them back. retval is the TC verdict.
 */
static inline void kt_tc(int prog_fd, const struct pb *p, struct __sk_buff *ctx, struct kt_run *r)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .repeat = 1);

	if (ctx) {
		o.ctx_in = ctx;
		o.ctx_size_in = sizeof(*ctx);
		o.ctx_out = ctx;
		o.ctx_size_out = sizeof(*ctx);
	}
	cr_assert_eq(bpf_prog_test_run_opts(prog_fd, &o), 0, "test run failed: %s",
		     strerror(errno));
	r->retval = o.retval;
	r->out_len = o.data_size_out;
}

/* CLOCK_BOOTTIME in ns: the clock of the kernel programs' timestamps. */
static inline __u64 kt_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

/* Sum of one per-CPU u64 slot. */
static inline uint64_t kt_percpu(int map_fd, __u32 key)
{
	uint64_t v = 0;

	cr_assert_eq(es_percpu_sum(map_fd, key, &v), 0);
	return v;
}

#endif
