/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Userspace side of the data plane: the pin directory, the agent's
 * interfaces, loading skeletons with pinned shared maps, the XDP chain, the
 * program status table and per-CPU counter reads.
 */
#ifndef ES_KERNEL_H
#define ES_KERNEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi/common.h"

struct bpf_object;

enum es_xdp_attach_mode {
	ES_ATTACH_AUTO = 0,
	ES_ATTACH_NATIVE,
	ES_ATTACH_GENERIC,
};

struct es_kernel_opts {
	const char *pin_dir; /* NULL: ES_PIN_DIR_DEFAULT */
	enum es_xdp_attach_mode mode;
	char *const *ifnames; /* NULL-terminated */
	bool verbose;	      /* libbpf messages at debug level */
};

/* Prepare the pin directory (bpffs) and resolve interfaces. 0 or -errno. */
int es_kernel_init(const struct es_kernel_opts *o);
/* Detach everything attached, and remove our pins when remove_pins. */
void es_kernel_shutdown(bool remove_pins);
const char *es_kernel_pin_dir(void);
bool es_kernel_ready(void); /* es_kernel_init succeeded */

unsigned es_kernel_n_ifaces(void);
const char *es_kernel_ifname(unsigned i);
int es_kernel_ifindex(unsigned i); /* 0 when the interface does not exist */
/* Bit i set for agent interface i whose name starts with prefix (scope masks). */
uint32_t es_kernel_iface_mask_prefix(const char *prefix);
int es_kernel_iface_pos(const char *name); /* -1 when not an agent interface */

/*
 * Before bpf_object__load(): point pinned maps at the pin directory and
 * replace pins left behind that no longer match the object's definition
 * (compatible ones are reused, so state survives an agent restart).
 */
int es_kernel_prepare_obj(struct bpf_object *obj);

/* ---- XDP chain (network.md §1.2) ---- */
enum es_xdp_role {
	ES_XDP_ROLE_FIREWALL = 0, /* head when present */
	ES_XDP_ROLE_RATELIMIT,	  /* slot 0; head without firewall */
	ES_XDP_ROLE_LOADBALANCER, /* slot 1; head without the others */
	ES_XDP_ROLE__COUNT,
};

/*
 * Install (prog_fd >= 0) or remove (-1) a role's program. Fills the tail-call
 * slot through prog_array_fd and (re)attaches the head program on every
 * interface, replacing atomically. Returns the number of interfaces the head
 * is attached to, or -errno.
 */
int es_xdp_chain_set(enum es_xdp_role role, int prog_fd, int prog_array_fd);
void es_xdp_set_attach_mode(enum es_xdp_attach_mode m);
/* Interfaces the given role's program is attached to as head. */
unsigned es_xdp_attached_count(enum es_xdp_role role);
const char *es_xdp_mode_name(unsigned iface); /* "native", "generic" or "none" */

/* ---- TC (network.md §1.3) ---- */
enum es_tc_dir {
	ES_TC_INGRESS = 0,
	ES_TC_EGRESS,
};

/* Fixed priorities of the TC chain. */
#define ES_TC_PRIO_CONNTRACK 1
#define ES_TC_PRIO_SCRUB 2
#define ES_TC_PRIO_NAT_INGRESS 3
#define ES_TC_PRIO_THREATINTEL 4
#define ES_TC_PRIO_IDS 5
#define ES_TC_PRIO_DNS 6
#define ES_TC_PRIO_NAT_EGRESS 1
#define ES_TC_PRIO_CONNTRACK_EGRESS 2
/* The handle all our filters use; (priority, handle) identifies one of ours. */
#define ES_TC_HANDLE 0xE5u

/*
 * Attach prog_fd as a direct-action filter at (dir, prio) on every agent
 * interface (creating clsact when absent). A predecessor's filter in that slot
 * (a program named tc_*) is replaced atomically; a foreign one is left and the
 * interface reported. Returns the number of interfaces attached.
 */
int es_tc_attach_all(const char *name, enum es_tc_dir dir, uint32_t prio, int prog_fd);
void es_tc_detach_all(enum es_tc_dir dir, uint32_t prio);
int es_tc_attach_ifindex(int ifindex, enum es_tc_dir dir, uint32_t prio, int prog_fd);
/* Removes only our filter (same handle and priority, a tc_* program). */
int es_tc_detach_ifindex(int ifindex, enum es_tc_dir dir, uint32_t prio);
/* Every filter attached by this process (shutdown). */
void es_tc_detach_everything(void);

/* ---- program status (GET /api/v1/ebpf/status) ---- */
void es_prog_status_set(const char *name, bool loaded);
bool es_prog_status_get(const char *name);
/* Mark loading finished: before this the status list is empty. */
void es_prog_status_publish(void);
json_t *es_prog_status_json(void);
/* The canonical program names, NULL-terminated. */
extern const char *const es_prog_names[];

/* Sum a per-CPU u64 slot. 0 or -errno. */
int es_percpu_sum(int map_fd, uint32_t key, uint64_t *out);
/* Sum all slots [0, n) of a per-CPU u64 array into out[n]. */
int es_percpu_sum_all(int map_fd, uint32_t n, uint64_t *out);

/*
 * Visit every entry of a hash-type map (batched lookups, get_next_key on
 * kernels without them). fn returns 0 to go on, 1 to stop, <0 to abort with
 * that error. Entries may change meanwhile; never delete from inside fn.
 * 0 or -errno.
 */
typedef int (*es_map_walk_fn)(const void *key, const void *val, void *arg);
int es_map_walk(int fd, uint32_t key_size, uint32_t value_size, es_map_walk_fn fn, void *arg);

/* Per-CPU sums of slots [0, n) of the pinned per-CPU array pin_name. 0 or -errno. */
int es_kernel_read_counters(const char *pin_name, uint32_t n, uint64_t *out);

const char *es_reason_name(unsigned reason);

/* Set a CONFIG_FLAGS byte (network.md §1.5) in the pinned map. 0 or -errno. */
int es_kernel_set_feature(enum es_feature feat, bool on);
/* Open a pinned map of ours by name (new fd, caller closes) or -errno. */
int es_kernel_open_pinned(const char *name);

#endif
