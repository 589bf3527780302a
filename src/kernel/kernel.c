// SPDX-License-Identifier: AGPL-3.0-only
/* Pin directory, interfaces, pinned-map preparation, program status. */
#define ES_LOG_TARGET "ebpfsentinel::ebpf"
#include "kernel/kernel.h"
#include "core/log.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/magic.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define MAX_IFACES 32

static char pin_dir[256];
static bool ready;
static bool verbose;
static struct {
	char name[IF_NAMESIZE];
	int ifindex;
} ifaces[MAX_IFACES];
static unsigned n_ifaces;

const char *const es_prog_names[] = {
    "tc_conntrack",   "tc_dns",		  "tc_ids",	    "tc_nat_egress",
    "tc_nat_ingress", "tc_scrub",	  "tc_threatintel", "uprobe_dlp",
    "xdp_firewall",   "xdp_loadbalancer", "xdp_ratelimit",  NULL,
};

static const char *const reason_names[] = {
#define ES_REASON_NAME(n, s) s,
    ES_REASONS(ES_REASON_NAME)
#undef ES_REASON_NAME
};

const char *es_reason_name(unsigned r)
{
	return r < ES_R__COUNT ? reason_names[r] : "unknown";
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	if (!verbose && level != LIBBPF_WARN)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	es_log(ES_LOG_DEBUG, "ebpfsentinel::libbpf", buf, ES_LF_END);
	return 0;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int prepare_pin_dir(const char *dir)
{
	char parent[256];
	char *slash;
	int r;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return -EINVAL;
	*slash = '\0';
	if ((r = mkdir_p(parent)))
		return r;
	if (!is_bpffs(parent)) {
		/* e.g. inside `ip netns exec`, which remounts /sys: pins would be private. */
		if (mount("bpf", parent, "bpf", 0, "mode=0700")) {
			pr_error("no bpffs for pinning", LF_STR("path", parent),
				 LF_STR("error", strerror(errno)));
			return -errno;
		}
		pr_warn("mounted a bpffs for pinning: pins are private to this mount namespace",
			LF_STR("path", parent));
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int es_kernel_init(const struct es_kernel_opts *o)
{
	int r;

	verbose = o->verbose;
	es_xdp_set_attach_mode(o->mode);
	libbpf_set_print(libbpf_print);
	snprintf(pin_dir, sizeof(pin_dir), "%s", o->pin_dir ? o->pin_dir : ES_PIN_DIR_DEFAULT);
	n_ifaces = 0;
	for (char *const *p = o->ifnames; p && *p && n_ifaces < MAX_IFACES; p++) {
		snprintf(ifaces[n_ifaces].name, IF_NAMESIZE, "%s", *p);
		ifaces[n_ifaces].ifindex = (int)if_nametoindex(*p);
		if (!ifaces[n_ifaces].ifindex)
			pr_warn("interface not found: its programs will not be attached",
				LF_STR("interface", *p));
		n_ifaces++;
	}
	r = prepare_pin_dir(pin_dir);
	if (r) {
		pr_error("cannot prepare the bpffs pin directory", LF_STR("path", pin_dir),
			 LF_STR("error", strerror(-r)));
		return r;
	}
	ready = true;
	return 0;
}

bool es_kernel_ready(void)
{
	return ready;
}

const char *es_kernel_pin_dir(void)
{
	return pin_dir;
}

unsigned es_kernel_n_ifaces(void)
{
	return n_ifaces;
}

const char *es_kernel_ifname(unsigned i)
{
	return i < n_ifaces ? ifaces[i].name : NULL;
}

int es_kernel_ifindex(unsigned i)
{
	return i < n_ifaces ? ifaces[i].ifindex : 0;
}

int es_kernel_iface_pos(const char *name)
{
	for (unsigned i = 0; i < n_ifaces; i++)
		if (!strcmp(ifaces[i].name, name))
			return (int)i;
	return -1;
}

uint32_t es_kernel_iface_mask_prefix(const char *prefix)
{
	uint32_t m = 0;

	for (unsigned i = 0; i < n_ifaces; i++)
		if (!strncmp(ifaces[i].name, prefix, strlen(prefix)))
			m |= 1u << i;
	return m;
}

/* Does the pinned map at path match the object's definition of map? */
static bool pin_compatible(const char *path, const struct bpf_map *map)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);
	bool ok;

	if (fd < 0)
		return false;
	ok = !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == bpf_map__type(map) &&
	     info.key_size == bpf_map__key_size(map) &&
	     info.value_size == bpf_map__value_size(map) &&
	     info.max_entries == bpf_map__max_entries(map) &&
	     info.map_flags == bpf_map__map_flags(map);
	close(fd);
	return ok;
}

int es_kernel_prepare_obj(struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map (map, obj) {
		const char *path = bpf_map__pin_path(map);
		char buf[512];

		if (!path) {
			/* Pinned-by-name maps get their path when pin_root_path was given at
			 * open; set it here too for objects opened without one. */
			continue;
		}
		if (strncmp(path, pin_dir, strlen(pin_dir))) {
			snprintf(buf, sizeof(buf), "%s/%s", pin_dir, bpf_map__name(map));
			if (bpf_map__set_pin_path(map, buf))
				return -EINVAL;
			path = bpf_map__pin_path(map);
		}
		if (access(path, F_OK) == 0 && !pin_compatible(path, map)) {
			pr_warn("replacing an incompatible pinned map", LF_STR("path", path));
			if (unlink(path))
				return -errno;
		}
	}
	return 0;
}

static void remove_pins(void)
{
	DIR *d = opendir(pin_dir);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		if (unlink(path))
			pr_warn("cannot remove pin", LF_STR("path", path),
				LF_STR("error", strerror(errno)));
	}
	closedir(d);
	if (rmdir(pin_dir) && errno != ENOENT)
		pr_warn("cannot remove pin directory", LF_STR("path", pin_dir),
			LF_STR("error", strerror(errno)));
}

void es_kernel_shutdown(bool rm_pins)
{
	for (int r = 0; r < ES_XDP_ROLE__COUNT; r++)
		es_xdp_chain_set(r, -1, -1);
	es_tc_detach_everything();
	if (rm_pins && ready)
		remove_pins();
	ready = false;
}

/* ---- program status -------------------------------------------------------------- */

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static bool status_loaded[16];
static bool status_published;

static int prog_index(const char *name)
{
	for (int i = 0; es_prog_names[i]; i++)
		if (!strcmp(es_prog_names[i], name))
			return i;
	return -1;
}

void es_prog_status_set(const char *name, bool loaded)
{
	int i = prog_index(name);

	if (i < 0)
		return;
	pthread_mutex_lock(&status_lock);
	status_loaded[i] = loaded;
	pthread_mutex_unlock(&status_lock);
}

bool es_prog_status_get(const char *name)
{
	int i = prog_index(name);
	bool v;

	if (i < 0)
		return false;
	pthread_mutex_lock(&status_lock);
	v = status_loaded[i];
	pthread_mutex_unlock(&status_lock);
	return v;
}

void es_prog_status_publish(void)
{
	pthread_mutex_lock(&status_lock);
	status_published = true;
	pthread_mutex_unlock(&status_lock);
}

json_t *es_prog_status_json(void)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&status_lock);
	for (int i = 0; status_published && es_prog_names[i]; i++)
		json_array_append_new(arr, json_pack("{s:s,s:b}", "name", es_prog_names[i],
						     "loaded", status_loaded[i]));
	pthread_mutex_unlock(&status_lock);
	return arr;
}

/* ---- per-CPU counters ------------------------------------------------------------ */

int es_percpu_sum(int map_fd, uint32_t key, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	*out = 0;
	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map_fd, &key, vals)) {
		int e = -errno;

		free(vals);
		return e;
	}
	for (int i = 0; i < ncpu; i++)
		*out += vals[i];
	free(vals);
	return 0;
}

int es_percpu_sum_all(int map_fd, uint32_t n, uint64_t *out)
{
	for (uint32_t k = 0; k < n; k++) {
		int r = es_percpu_sum(map_fd, k, &out[k]);

		if (r)
			return r;
	}
	return 0;
}

#define WALK_BATCH 1024

static int walk_keys(int fd, uint32_t ksz, uint32_t vsz, es_map_walk_fn fn, void *arg)
{
	uint8_t *key = malloc(ksz), *next = malloc(ksz), *val = malloc(vsz);
	void *prev = NULL;
	int r = -ENOMEM;

	if (!key || !next || !val)
		goto out;
	r = 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, ksz);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, val))
			continue; /* deleted meanwhile */
		if ((r = fn(key, val, arg)))
			break;
	}
out:
	free(key);
	free(next);
	free(val);
	return r < 0 ? r : 0;
}

int es_map_walk(int fd, uint32_t ksz, uint32_t vsz, es_map_walk_fn fn, void *arg)
{
	uint8_t *keys = malloc((size_t)ksz * WALK_BATCH), *vals = malloc((size_t)vsz * WALK_BATCH);
	uint64_t in_tok = 0, out_tok = 0; /* hash maps: a bucket index */
	void *in = NULL;
	int r = 0, last = 0;

	if (!keys || !vals) {
		r = -ENOMEM;
		goto out;
	}
	while (!last) {
		LIBBPF_OPTS(bpf_map_batch_opts, o);
		__u32 n = WALK_BATCH;

		if (bpf_map_lookup_batch(fd, in, &out_tok, keys, vals, &n, &o)) {
			r = -errno;
			if (r == -ENOENT) {
				last = 1; /* the last batch may still hold entries */
				r = 0;
			} else if (!in && (r == -EINVAL || r == -ENOTSUP || r == -EOPNOTSUPP)) {
				r = walk_keys(fd, ksz, vsz, fn, arg);
				goto out;
			} else {
				goto out;
			}
		}
		for (__u32 i = 0; i < n; i++) {
			r = fn(keys + (size_t)i * ksz, vals + (size_t)i * vsz, arg);
			if (r) {
				r = r < 0 ? r : 0;
				goto out;
			}
		}
		in_tok = out_tok;
		in = &in_tok;
	}
out:
	free(keys);
	free(vals);
	return r;
}

int es_kernel_read_counters(const char *pin_name, uint32_t n, uint64_t *out)
{
	int fd = ready ? es_kernel_open_pinned(pin_name) : -ENOENT, r;

	if (fd < 0)
		return fd;
	r = es_percpu_sum_all(fd, n, out);
	close(fd);
	return r;
}

int es_kernel_open_pinned(const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

int es_kernel_set_feature(enum es_feature feat, bool on)
{
	struct es_config_flags f = {0};
	__u32 zero = 0;
	int fd = es_kernel_open_pinned("config_flags"), r = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &zero, &f) == 0) {
		f.flag[feat & 7] = on;
		if (bpf_map_update_elem(fd, &zero, &f, BPF_ANY))
			r = -errno;
	} else {
		r = -errno;
	}
	close(fd);
	return r;
}
