// SPDX-License-Identifier: AGPL-3.0-only
/*
 * TC attachment: cls_bpf direct-action filters on clsact at the fixed
 * priorities of network.md §1.3, through netlink so operators see them with
 * `tc filter show` and they survive a crash. Our filters use one handle; a
 * predecessor's filter at our (priority, handle) is replaced atomically;
 * anything else is never touched, and the clsact qdisc is never destroyed.
 */
#define ES_LOG_TARGET "ebpfsentinel::ebpf"
#include "kernel/kernel.h"
#include "core/log.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define MAX_IFACES 32
#define MAX_TC 16

static pthread_mutex_t tc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int ifindex;
	enum es_tc_dir dir;
	uint32_t prio;
	bool used;
} attached[MAX_IFACES * MAX_TC];

static bool tc_prog_is_ours(__u32 id)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);
	bool ours = false;

	if (fd < 0)
		return false;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		ours = !strncmp(info.name, "tc_", 3);
	close(fd);
	return ours;
}

static void remember(int ifindex, enum es_tc_dir dir, uint32_t prio, bool on)
{
	int free_slot = -1;

	for (int i = 0; i < MAX_IFACES * MAX_TC; i++) {
		if (attached[i].used && attached[i].ifindex == ifindex && attached[i].dir == dir &&
		    attached[i].prio == prio) {
			attached[i].used = on;
			return;
		}
		if (!attached[i].used && free_slot < 0)
			free_slot = i;
	}
	if (on && free_slot >= 0)
		attached[free_slot] = (typeof(attached[0])){ifindex, dir, prio, true};
}

int es_tc_attach_ifindex(int ifindex, enum es_tc_dir dir, uint32_t prio, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = dir == ES_TC_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = ES_TC_HANDLE, .priority = prio);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = ES_TC_HANDLE, .priority = prio, .prog_fd = prog_fd);
	int r;

	r = bpf_tc_hook_create(&hook);
	if (r && r != -EEXIST)
		return r;
	if (bpf_tc_query(&hook, &q) == 0 && q.prog_id) {
		if (!tc_prog_is_ours(q.prog_id))
			return -EBUSY;
		o.flags = BPF_TC_F_REPLACE;
	}
	pthread_mutex_lock(&tc_lock);
	r = bpf_tc_attach(&hook, &o);
	if (r == -EEXIST) {
		/* Raced with a filter appearing: replace if it is ours. */
		o.flags = BPF_TC_F_REPLACE;
		o.prog_id = 0;
		r = bpf_tc_attach(&hook, &o);
	}
	if (!r)
		remember(ifindex, dir, prio, true);
	pthread_mutex_unlock(&tc_lock);
	return r;
}

int es_tc_detach_ifindex(int ifindex, enum es_tc_dir dir, uint32_t prio)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = dir == ES_TC_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = ES_TC_HANDLE, .priority = prio);
	/* bpf_tc_detach wants only handle and priority (anything else: -EINVAL). */
	LIBBPF_OPTS(bpf_tc_opts, d, .handle = ES_TC_HANDLE, .priority = prio);
	int r = 0;

	pthread_mutex_lock(&tc_lock);
	if (bpf_tc_query(&hook, &q) == 0 && q.prog_id && tc_prog_is_ours(q.prog_id))
		r = bpf_tc_detach(&hook, &d);
	remember(ifindex, dir, prio, false);
	pthread_mutex_unlock(&tc_lock);
	return r;
}

int es_tc_attach_all(const char *name, enum es_tc_dir dir, uint32_t prio, int prog_fd)
{
	int n = 0;

	for (unsigned i = 0; i < es_kernel_n_ifaces(); i++) {
		int ifindex = es_kernel_ifindex(i), r;

		if (!ifindex)
			continue;
		r = es_tc_attach_ifindex(ifindex, dir, prio, prog_fd);
		if (r)
			pr_error("TC attach failed", LF_STR("program", name),
				 LF_STR("interface", es_kernel_ifname(i)),
				 LF_STR("direction", dir == ES_TC_INGRESS ? "ingress" : "egress"),
				 LF_UINT("priority", prio),
				 LF_STR("error", r == -EBUSY ? "a foreign filter holds our slot"
							     : strerror(-r)));
		else
			n++;
	}
	return n;
}

void es_tc_detach_all(enum es_tc_dir dir, uint32_t prio)
{
	for (unsigned i = 0; i < es_kernel_n_ifaces(); i++)
		if (es_kernel_ifindex(i))
			es_tc_detach_ifindex(es_kernel_ifindex(i), dir, prio);
}

void es_tc_detach_everything(void)
{
	for (int i = 0; i < MAX_IFACES * MAX_TC; i++) {
		if (!attached[i].used)
			continue;
		es_tc_detach_ifindex(attached[i].ifindex, attached[i].dir, attached[i].prio);
	}
}
