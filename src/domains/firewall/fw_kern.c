// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Installing a compiled image: the classifier maps are mmapped, the image is
 * copied into the bank the kernel is not reading, the bank header written,
 * then one aligned store of the control word switches banks. An update of a
 * map-in-map afterwards returns only once every program run that could
 * still hold the old bank has finished (the kernel's synchronize_rcu for
 * map-in-map updates), so the next install may overwrite it.
 *
 * Per-rule hit counters live per slot; before a bank is rewritten its counts
 * are added to per-rule-id totals, so counts survive recompiles.
 */
#define ES_LOG_TARGET "ebpfsentinel::firewall"
#include "domains/firewall/fw.h"
#include "core/log.h"
#include "abi/conntrack.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
	M_CTL,
	M_CLS,
	M_TRIE,
	M_SKIP,
	M_VTAB,
	M_R4,
	M_R6,
	M_SYS,
	M_SYS_PORT,
	M__MMAP,
};

static const char *const mmap_names[M__MMAP] = {
    "fw_ctl",	"fw_cls",      "fw_trie", "fw_skip",	 "fw_vtab",
    "fw_rules", "fw_rules_v6", "fw_sys",  "fw_sys_port",
};

struct hit_total {
	char *id;
	uint64_t n;
};

struct fw_kern {
	void *mem[M__MMAP];
	size_t len[M__MMAP];
	int fd_bank, fd_mac, fd_ifpos, fd_hits, fd_sys_hits;
	int fd_rule_slot; /* FW_RULE_SLOT (rule_id → slot), -1 when absent */
	int sync_fd;
	struct es_fw_mac_key *macs[ES_FW_BANKS];
	size_t n_macs[ES_FW_BANKS];
	char **ids[ES_FW_BANKS]; /* rule id per position, per bank */
	size_t n_ids[ES_FW_BANKS];
	char **sys_ids[ES_FW_BANKS];
	size_t n_sys_ids[ES_FW_BANKS];
	struct hit_total *tot;
	size_t n_tot;
	pthread_mutex_t lock;
};

static int map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

void fw_kern_close(struct fw_kern *k)
{
	if (!k)
		return;
	for (int i = 0; i < M__MMAP; i++)
		if (k->mem[i] && k->mem[i] != MAP_FAILED)
			munmap(k->mem[i], k->len[i]);
	if (k->sync_fd >= 0)
		close(k->sync_fd);
	for (int b = 0; b < ES_FW_BANKS; b++) {
		free(k->macs[b]);
		es_strv_free(k->ids[b]);
		es_strv_free(k->sys_ids[b]);
	}
	for (size_t i = 0; i < k->n_tot; i++)
		free(k->tot[i].id);
	free(k->tot);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* A map-in-map whose updates wait for running programs (synchronize_rcu). */
static int make_sync_map(void)
{
	int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "fw_sync_in", 4, 4, 1, NULL);
	LIBBPF_OPTS(bpf_map_create_opts, o, .inner_map_fd = inner);
	int fd;

	if (inner < 0)
		return -errno;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "fw_sync", 4, 4, 1, &o);
	if (fd < 0) {
		fd = -errno;
		close(inner);
		return fd;
	}
	{
		__u32 zero = 0;
		int v = inner;

		if (bpf_map_update_elem(fd, &zero, &v, BPF_ANY)) {
			int e = -errno;

			close(fd);
			close(inner);
			return e;
		}
	}
	close(inner); /* the outer map holds it */
	return fd;
}

int fw_kern_open(struct bpf_object *obj, struct fw_kern **out)
{
	struct fw_kern *k = calloc(1, sizeof(*k));
	int ret;

	*out = NULL;
	if (!k)
		return -ENOMEM;
	k->sync_fd = -1;
	pthread_mutex_init(&k->lock, NULL);
	for (int i = 0; i < M__MMAP; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(obj, mmap_names[i]);
		size_t elem, pg = (size_t)sysconf(_SC_PAGESIZE);

		if (!m) {
			ret = -ENOENT;
			goto fail;
		}
		elem = (bpf_map__value_size(m) + 7) & ~(size_t)7;
		k->len[i] = (elem * bpf_map__max_entries(m) + pg - 1) & ~(pg - 1);
		k->mem[i] =
		    mmap(NULL, k->len[i], PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
		if (k->mem[i] == MAP_FAILED) {
			ret = -errno;
			k->mem[i] = NULL;
			pr_error("cannot map firewall table", LF_STR("map", mmap_names[i]),
				 LF_STR("error", strerror(-ret)));
			goto fail;
		}
	}
	k->fd_bank = map_fd(obj, "fw_bank");
	k->fd_mac = map_fd(obj, "fw_mac");
	k->fd_ifpos = map_fd(obj, "fw_ifpos");
	k->fd_hits = map_fd(obj, "fw_hits");
	k->fd_sys_hits = map_fd(obj, "fw_sys_hits");
	k->fd_rule_slot = map_fd(obj, "fw_rule_slot");
	if (k->fd_bank < 0 || k->fd_mac < 0 || k->fd_ifpos < 0 || k->fd_hits < 0 ||
	    k->fd_sys_hits < 0) {
		ret = -ENOENT;
		goto fail;
	}
	k->sync_fd = make_sync_map();
	if (k->sync_fd < 0) {
		ret = k->sync_fd;
		goto fail;
	}
	*out = k;
	return 0;
fail:
	fw_kern_close(k);
	return ret;
}

int fw_kern_active_bank(struct fw_kern *k)
{
	volatile __u32 *ctl = k->mem[M_CTL];

	return (int)(*ctl >> 31);
}

static struct hit_total *total_slot(struct fw_kern *k, const char *id)
{
	struct hit_total *nv;

	for (size_t i = 0; i < k->n_tot; i++)
		if (!strcmp(k->tot[i].id, id))
			return &k->tot[i];
	nv = realloc(k->tot, (k->n_tot + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	k->tot = nv;
	nv[k->n_tot].id = strdup(id);
	nv[k->n_tot].n = 0;
	if (!nv[k->n_tot].id)
		return NULL;
	return &nv[k->n_tot++];
}

/* Move the counts of bank b's slots into the per-id totals and zero them. */
static void fold_hits(struct fw_kern *k, int b)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *zero = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*zero)) : NULL;

	if (!zero)
		return;
	for (int pass = 0; pass < 2; pass++) {
		char **ids = pass ? k->sys_ids[b] : k->ids[b];
		size_t n = pass ? k->n_sys_ids[b] : k->n_ids[b];
		int fd = pass ? k->fd_sys_hits : k->fd_hits;
		__u32 base = (__u32)b * (pass ? ES_FW_SYS_MAX : ES_FW_MAX_RULES);

		for (size_t p = 0; p < n; p++) {
			__u32 slot = base + (__u32)p;
			uint64_t v = 0;
			struct hit_total *t;

			if (es_percpu_sum(fd, slot, &v) || !v)
				continue;
			t = total_slot(k, ids[p]);
			if (t)
				t->n += v;
			bpf_map_update_elem(fd, &slot, zero, BPF_ANY);
		}
	}
	free(zero);
}

static char **ids_of(const struct fw_image *img, bool sys, size_t *n)
{
	size_t cnt = sys ? img->hdr.n_sys : img->hdr.n_rules;
	char **v = calloc(cnt + 1, sizeof(*v));

	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < cnt; i++) {
		v[i] = strdup(sys ? img->sys_rule[i]->id : img->pos_rule[i]->id);
		if (!v[i]) {
			es_strv_free(v);
			return NULL;
		}
	}
	*n = cnt;
	return v;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * FW_RULE_SLOT after a switch to bank b: rule_id → the first slot of that
 * rule in b (a rule may hold several positions). tc_conntrack records it in
 * the flows a rule admits and the XDP limit check counts max_states there, so
 * both agree whichever position matched. Ids no longer installed go away.
 */
static void write_rule_slots(struct fw_kern *k, int b, const struct fw_image *img)
{
	uint32_t n = img->hdr.n_rules, *ids, key, next, *prev = NULL;
	size_t n_gone = 0;

	if (k->fd_rule_slot < 0)
		return;
	ids = calloc(n + 1, sizeof(*ids));
	if (!ids)
		return;
	for (uint32_t i = n; i-- > 0;) {
		uint32_t slot = (uint32_t)b * ES_FW_MAX_RULES + i;

		ids[i] = img->r4[i].rule_id;
		/* Descending: the lowest position of a rule is written last. */
		bpf_map_update_elem(k->fd_rule_slot, &ids[i], &slot, BPF_ANY);
	}
	qsort(ids, n, sizeof(*ids), u32_cmp);
	{
		uint32_t *gone = calloc(ES_FW_RULE_SLOTS, sizeof(*gone));

		while (gone && bpf_map_get_next_key(k->fd_rule_slot, prev, &next) == 0 &&
		       n_gone < ES_FW_RULE_SLOTS) {
			key = next;
			prev = &key;
			if (!bsearch(&key, ids, n, sizeof(*ids), u32_cmp))
				gone[n_gone++] = key;
		}
		for (size_t i = 0; i < n_gone; i++)
			bpf_map_delete_elem(k->fd_rule_slot, &gone[i]);
		free(gone);
	}
	free(ids);
}

static int write_macs(struct fw_kern *k, int b, const struct fw_image *img)
{
	struct es_fw_mac_key *keep;

	for (size_t i = 0; i < k->n_macs[b]; i++)
		bpf_map_delete_elem(k->fd_mac, &k->macs[b][i]);
	free(k->macs[b]);
	k->macs[b] = NULL;
	k->n_macs[b] = 0;
	if (!img->n_macs)
		return 0;
	keep = calloc(img->n_macs, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < img->n_macs; i++) {
		struct es_fw_mac_key key = img->macs[i].k;
		__u16 cls = img->macs[i].cls;

		key.bank = (__u8)b;
		if (bpf_map_update_elem(k->fd_mac, &key, &cls, BPF_ANY)) {
			int e = -errno;

			k->macs[b] = keep;
			k->n_macs[b] = i;
			return e;
		}
		keep[i] = key;
	}
	k->macs[b] = keep;
	k->n_macs[b] = img->n_macs;
	return 0;
}

int fw_kern_install(struct fw_kern *k, const struct fw_image *img)
{
	volatile __u32 *ctl = k->mem[M_CTL];
	__u32 b, word, zero = 0;
	struct es_fw_bank hdr = img->hdr;
	char **ids, **sys_ids;
	size_t n_ids, n_sys_ids;
	int ret, inner;

	pthread_mutex_lock(&k->lock);
	b = !(*ctl >> 31);
	ids = ids_of(img, false, &n_ids);
	sys_ids = ids_of(img, true, &n_sys_ids);
	if (!ids || !sys_ids) {
		ret = -ENOMEM;
		goto fail;
	}
	fold_hits(k, (int)b);

	memcpy((char *)k->mem[M_CLS] + (size_t)b * ES_FW_CLS_PER_BANK * sizeof(struct es_fw_cls),
	       img->cls, (size_t)img->n_cls * sizeof(struct es_fw_cls));
	{
		__u16 *t = (__u16 *)k->mem[M_TRIE] + (size_t)b * ES_FW_TRIE_PER_BANK;

		memcpy(t, img->trie, (ES_FW_TRIE_CHUNKS_OFF + (size_t)img->n_chunks * 256) * 2);
	}
	memcpy((struct es_fw_skip *)k->mem[M_SKIP] + (size_t)b * ES_FW_SKIPS_PER_BANK, img->skip,
	       img->n_skip * sizeof(struct es_fw_skip));
	memcpy((__u16 *)k->mem[M_VTAB] + (size_t)b * ES_FW_VT_ROWS * 256, img->vtab,
	       (size_t)ES_FW_VT_ROWS * 256 * 2);
	memcpy((struct es_fw_rule_v4 *)k->mem[M_R4] + (size_t)b * ES_FW_MAX_RULES, img->r4,
	       img->hdr.n_rules * sizeof(struct es_fw_rule_v4));
	memcpy((struct es_fw_rule_v6 *)k->mem[M_R6] + (size_t)b * ES_FW_MAX_RULES, img->r6,
	       img->hdr.n_rules * sizeof(struct es_fw_rule_v6));
	memcpy((struct es_fw_sys_rule *)k->mem[M_SYS] + (size_t)b * ES_FW_SYS_MAX, img->sys,
	       img->hdr.n_sys * sizeof(struct es_fw_sys_rule));
	memcpy((__u16 *)k->mem[M_SYS_PORT] + (size_t)b * 65536, img->sys_port, 65536 * 2);
	if ((ret = write_macs(k, (int)b, img)))
		goto fail;
	if (bpf_map_update_elem(k->fd_bank, &b, &hdr, BPF_ANY)) {
		ret = -errno;
		goto fail;
	}

	/* The switch: one aligned store, after every write above. */
	word = b << 31 | (hdr.n_rules & ES_FW_CTL_COUNT);
	__atomic_store_n(ctl, word, __ATOMIC_SEQ_CST);
	/* Wait for runs that read the old word (synchronize_rcu in the kernel). */
	inner = -1;
	{
		__u32 id = 0;

		if (!bpf_map_lookup_elem(k->sync_fd, &zero, &id))
			inner = bpf_map_get_fd_by_id(id);
	}
	if (inner < 0 || bpf_map_update_elem(k->sync_fd, &zero, &inner, BPF_ANY))
		usleep(50 * 1000); /* fallback grace period */
	if (inner >= 0)
		close(inner);
	write_rule_slots(k, (int)b, img);

	es_strv_free(k->ids[b]);
	es_strv_free(k->sys_ids[b]);
	k->ids[b] = ids;
	k->n_ids[b] = n_ids;
	k->sys_ids[b] = sys_ids;
	k->n_sys_ids[b] = n_sys_ids;
	pthread_mutex_unlock(&k->lock);
	return 0;
fail:
	es_strv_free(ids);
	es_strv_free(sys_ids);
	pthread_mutex_unlock(&k->lock);
	return ret;
}

int fw_kern_set_ifaces(struct fw_kern *k, const int *ifindex, size_t n)
{
	int ret = 0;

	for (size_t i = 0; i < n && i < ES_FW_MAX_IFACES; i++) {
		__u32 key = (__u32)ifindex[i], pos = (__u32)i;

		if (key && bpf_map_update_elem(k->fd_ifpos, &key, &pos, BPF_ANY))
			ret = -errno;
	}
	return ret;
}

uint64_t fw_kern_hits(struct fw_kern *k, const char *rule_id)
{
	uint64_t total = 0;
	int b;

	pthread_mutex_lock(&k->lock);
	b = fw_kern_active_bank(k);
	for (size_t i = 0; i < k->n_tot; i++)
		if (!strcmp(k->tot[i].id, rule_id))
			total += k->tot[i].n;
	for (int pass = 0; pass < 2; pass++) {
		char **ids = pass ? k->sys_ids[b] : k->ids[b];
		size_t n = pass ? k->n_sys_ids[b] : k->n_ids[b];
		__u32 base = (__u32)b * (pass ? ES_FW_SYS_MAX : ES_FW_MAX_RULES);

		for (size_t p = 0; p < n; p++) {
			uint64_t v = 0;

			if (!strcmp(ids[p], rule_id) &&
			    !es_percpu_sum(pass ? k->fd_sys_hits : k->fd_hits, base + (__u32)p, &v))
				total += v;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return total;
}
