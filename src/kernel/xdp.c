// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The XDP chain: one head program per interface, the rest in tail-call slots.
 * Attachment goes through netlink (bpf_xdp_attach) so it survives an agent
 * crash; a successor recognises its predecessor's programs by name and
 * replaces them atomically. Programs that are not ours are never touched.
 */
#define ES_LOG_TARGET "ebpfsentinel::ebpf"
#include "kernel/kernel.h"
#include "core/log.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define MAX_IFACES 32

static const char *const role_prog_names[ES_XDP_ROLE__COUNT] = {
    "xdp_firewall",
    "xdp_ratelimit",
    "xdp_loadbalancer",
};
static const int role_slot[ES_XDP_ROLE__COUNT] = {-1, ES_XDP_SLOT_RATELIMIT,
						  ES_XDP_SLOT_LOADBALANCER};

static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static int role_fd[ES_XDP_ROLE__COUNT] = {-1, -1, -1};
static int head_role = -1;
static struct {
	int prog_fd;	  /* attached head (ours), -1 when none */
	__u32 mode_flags; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
} att[MAX_IFACES] = {[0 ... MAX_IFACES - 1] = {-1, 0}};

static enum es_xdp_attach_mode attach_mode = ES_ATTACH_AUTO;

static bool prog_is_ours(__u32 id)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);
	bool ours = false;

	if (fd < 0)
		return false;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		for (int r = 0; r < ES_XDP_ROLE__COUNT; r++)
			if (!strncmp(info.name, role_prog_names[r], sizeof(info.name) - 1))
				ours = true;
	}
	close(fd);
	return ours;
}

/* Attach fd as the head on interface i, replacing whatever of ours is there. */
static int attach_one(unsigned i, int fd)
{
	int ifindex = es_kernel_ifindex(i);
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_xdp_attach_opts, o);
	__u32 cur_id = 0, cur_mode = 0;
	int r, old_fd = -1;

	if (!ifindex)
		return -ENODEV;
	if (att[i].prog_fd >= 0) {
		/* Ours from this run: atomic replace in the same mode. */
		o.old_prog_fd = att[i].prog_fd;
		r = bpf_xdp_attach(ifindex, fd, att[i].mode_flags | XDP_FLAGS_REPLACE, &o);
		if (!r)
			att[i].prog_fd = fd;
		return r;
	}
	if (!bpf_xdp_query(ifindex, 0, &q)) {
		cur_mode = q.attach_mode;
		cur_id = cur_mode == XDP_ATTACHED_DRV	? q.drv_prog_id
			 : cur_mode == XDP_ATTACHED_SKB ? q.skb_prog_id
							: q.prog_id;
	}
	if (cur_id) {
		if (!prog_is_ours(cur_id)) {
			pr_error("interface already has a foreign XDP program; not replacing it",
				 LF_STR("interface", es_kernel_ifname(i)),
				 LF_UINT("prog_id", cur_id));
			return -EBUSY;
		}
		/* A predecessor's program (crash or kill): swap it atomically. */
		old_fd = bpf_prog_get_fd_by_id(cur_id);
		if (old_fd < 0)
			return -errno;
		o.old_prog_fd = old_fd;
		__u32 mf = cur_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;

		r = bpf_xdp_attach(ifindex, fd, mf | XDP_FLAGS_REPLACE, &o);
		close(old_fd);
		if (!r) {
			att[i].prog_fd = fd;
			att[i].mode_flags = mf;
			pr_info("replaced a stale XDP program left by a previous agent",
				LF_STR("interface", es_kernel_ifname(i)));
		}
		return r;
	}
	if (attach_mode != ES_ATTACH_GENERIC) {
		r = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST,
				   NULL);
		if (!r) {
			att[i].prog_fd = fd;
			att[i].mode_flags = XDP_FLAGS_DRV_MODE;
			return 0;
		}
		if (attach_mode == ES_ATTACH_NATIVE)
			return r;
		pr_debug("native XDP unavailable, falling back to generic",
			 LF_STR("interface", es_kernel_ifname(i)), LF_INT("error", r));
	}
	r = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	if (!r) {
		att[i].prog_fd = fd;
		att[i].mode_flags = XDP_FLAGS_SKB_MODE;
	}
	return r;
}

static void detach_one(unsigned i)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, o);
	int ifindex = es_kernel_ifindex(i);

	if (att[i].prog_fd < 0 || !ifindex)
		return;
	/* Only if our program is still the one attached. */
	o.old_prog_fd = att[i].prog_fd;
	if (bpf_xdp_detach(ifindex, att[i].mode_flags | XDP_FLAGS_REPLACE, &o))
		pr_warn("XDP detach failed", LF_STR("interface", es_kernel_ifname(i)),
			LF_STR("error", strerror(errno)));
	att[i].prog_fd = -1;
	att[i].mode_flags = 0;
}

int es_xdp_chain_set(enum es_xdp_role role, int prog_fd, int prog_array_fd)
{
	int new_head = -1, attached = 0;

	if (role >= ES_XDP_ROLE__COUNT)
		return -EINVAL;
	pthread_mutex_lock(&chain_lock);
	if (role_slot[role] >= 0 && prog_array_fd >= 0) {
		__u32 slot = (__u32)role_slot[role];

		if (prog_fd >= 0)
			bpf_map_update_elem(prog_array_fd, &slot, &prog_fd, BPF_ANY);
		else
			bpf_map_delete_elem(prog_array_fd, &slot);
	}
	role_fd[role] = prog_fd;
	for (int r = 0; r < ES_XDP_ROLE__COUNT; r++) {
		if (role_fd[r] >= 0) {
			new_head = r;
			break;
		}
	}
	for (unsigned i = 0; i < es_kernel_n_ifaces() && i < MAX_IFACES; i++) {
		if (new_head < 0) {
			detach_one(i);
			continue;
		}
		if (att[i].prog_fd == role_fd[new_head]) {
			attached++;
			continue;
		}
		int r = attach_one(i, role_fd[new_head]);

		if (r)
			pr_error("XDP attach failed", LF_STR("program", role_prog_names[new_head]),
				 LF_STR("interface", es_kernel_ifname(i)),
				 LF_STR("error", strerror(-r)));
		else
			attached++;
	}
	head_role = new_head;
	pthread_mutex_unlock(&chain_lock);
	return attached;
}

unsigned es_xdp_attached_count(enum es_xdp_role role)
{
	unsigned n = 0;

	pthread_mutex_lock(&chain_lock);
	if ((int)role == head_role)
		for (unsigned i = 0; i < es_kernel_n_ifaces() && i < MAX_IFACES; i++)
			n += att[i].prog_fd >= 0;
	pthread_mutex_unlock(&chain_lock);
	return n;
}

const char *es_xdp_mode_name(unsigned i)
{
	if (i >= MAX_IFACES || att[i].prog_fd < 0)
		return "none";
	return att[i].mode_flags == XDP_FLAGS_SKB_MODE ? "generic" : "native";
}

void es_xdp_set_attach_mode(enum es_xdp_attach_mode m)
{
	attach_mode = m;
}
