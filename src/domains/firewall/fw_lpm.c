// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The LPM coordinator (network.md §2.4): one table of block-list prefixes
 * with their owners, mirrored into the pinned LPM tries (fw_lpm_{src,dst}_v4/6)
 * and their sizes (fw_globals, so the XDP program skips empty tries). Also the
 * other fw_globals switch, the zone gate.
 */
#define ES_LOG_TARGET "ebpfsentinel::firewall"
#include "domains/firewall/firewall.h"
#include "domains/firewall/fw.h"
#include "abi/firewall.h"
#include "core/cfg.h"
#include "core/log.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct lpm_entry {
	struct es_cidr c;
	bool dst;
	uint8_t action;
	char **owners; /* NULL-terminated */
	uint8_t *actions;
	size_t n_owners;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct lpm_entry *tab;
static size_t n_tab;
static bool kernel_on;

static int trie_of(const struct lpm_entry *e)
{
	return e->c.addr.family == 4 ? (e->dst ? ES_FW_LPM_DST4 : ES_FW_LPM_SRC4)
				     : (e->dst ? ES_FW_LPM_DST6 : ES_FW_LPM_SRC6);
}

static const char *const trie_names[4] = {"fw_lpm_src_v4", "fw_lpm_dst_v4", "fw_lpm_src_v6",
					  "fw_lpm_dst_v6"};

/* Strictest of the owners' actions: drop, then log, then pass. */
static uint8_t strictest(const struct lpm_entry *e)
{
	uint8_t best = ES_FW_ACT_PASS;

	for (size_t i = 0; i < e->n_owners; i++) {
		if (e->actions[i] == ES_FW_ACT_DROP)
			return ES_FW_ACT_DROP;
		if (e->actions[i] == ES_FW_ACT_LOG)
			best = ES_FW_ACT_LOG;
	}
	return best;
}

static int kernel_write(const struct lpm_entry *e, bool del)
{
	int fd = es_kernel_open_pinned(trie_names[trie_of(e)]), r = 0;
	struct es_fw_lpm_v6 k6 = {0};
	struct es_fw_lpm_v4 k4 = {0};
	struct es_fw_lpm_val v = {.action = e->action};
	void *key;

	if (fd < 0)
		return fd;
	if (e->c.addr.family == 4) {
		k4.prefixlen = e->c.plen;
		memcpy(k4.addr, e->c.addr.b + 12, 4);
		key = &k4;
	} else {
		k6.prefixlen = e->c.plen;
		memcpy(k6.addr, e->c.addr.b, 16);
		key = &k6;
	}
	if (del ? bpf_map_delete_elem(fd, key) : bpf_map_update_elem(fd, key, &v, BPF_ANY))
		r = -errno;
	close(fd);
	return del && r == -ENOENT ? 0 : r;
}

/* One aligned store into fw_globals (pinned, mmapped). */
static int globals_store(size_t off, __u32 v)
{
	int fd = es_kernel_open_pinned("fw_globals");
	long pg = sysconf(_SC_PAGESIZE);
	void *m;

	if (fd < 0)
		return fd;
	m = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	__atomic_store_n((__u32 *)((char *)m + off), v, __ATOMIC_SEQ_CST);
	munmap(m, (size_t)pg);
	return 0;
}

static void kernel_counts(void)
{
	__u32 cnt[4] = {0};

	for (size_t i = 0; i < n_tab; i++)
		cnt[trie_of(&tab[i])]++;
	for (int i = 0; i < 4; i++)
		globals_store(offsetof(struct es_fw_globals, lpm) + (size_t)i * 4, cnt[i]);
}

int fw_set_zone_gate(bool on)
{
	return globals_store(offsetof(struct es_fw_globals, zones), on);
}

static struct lpm_entry *find(const struct es_cidr *c, bool dst)
{
	for (size_t i = 0; i < n_tab; i++)
		if (tab[i].dst == dst && tab[i].c.plen == c->plen &&
		    tab[i].c.addr.family == c->addr.family &&
		    !memcmp(tab[i].c.addr.b, c->addr.b, 16))
			return &tab[i];
	return NULL;
}

static void entry_free(struct lpm_entry *e)
{
	es_strv_free(e->owners);
	free(e->actions);
}

int fw_lpm_add(const char *owner, const struct es_cidr *c, bool dst, uint8_t action)
{
	struct lpm_entry *e;
	int r = 0;

	if (!owner || !*owner || action > ES_FW_ACT_LOG)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	e = find(c, dst);
	if (!e) {
		struct lpm_entry *nv = realloc(tab, (n_tab + 1) * sizeof(*nv));

		if (!nv) {
			r = -ENOMEM;
			goto out;
		}
		tab = nv;
		e = &tab[n_tab++];
		memset(e, 0, sizeof(*e));
		e->c = *c;
		e->dst = dst;
		e->owners = calloc(1, sizeof(char *));
		if (!e->owners) {
			n_tab--;
			r = -ENOMEM;
			goto out;
		}
	}
	{
		size_t i;

		for (i = 0; i < e->n_owners; i++)
			if (!strcmp(e->owners[i], owner))
				break;
		if (i == e->n_owners) {
			char **no = realloc(e->owners, (e->n_owners + 2) * sizeof(*no));
			uint8_t *na;

			if (!no) {
				r = -ENOMEM;
				goto out;
			}
			e->owners = no;
			na = realloc(e->actions, e->n_owners + 1);
			if (!na) {
				r = -ENOMEM;
				goto out;
			}
			e->actions = na;
			e->owners[e->n_owners] = strdup(owner);
			e->owners[e->n_owners + 1] = NULL;
			if (!e->owners[e->n_owners]) {
				r = -ENOMEM;
				goto out;
			}
			e->n_owners++;
		}
		e->actions[i] = action;
	}
	e->action = strictest(e);
	if (kernel_on) {
		r = kernel_write(e, false);
		kernel_counts();
	}
out:
	pthread_mutex_unlock(&lock);
	return r;
}

/* Drop owner from entry i; removes the entry (and its kernel prefix) when none is left. */
static int drop_owner(size_t i, const char *owner, bool *gone)
{
	struct lpm_entry *e = &tab[i];
	size_t k;

	*gone = false;
	for (k = 0; k < e->n_owners; k++)
		if (!strcmp(e->owners[k], owner))
			break;
	if (k == e->n_owners)
		return -ENOENT;
	free(e->owners[k]);
	memmove(&e->owners[k], &e->owners[k + 1], (e->n_owners - k) * sizeof(char *));
	memmove(&e->actions[k], &e->actions[k + 1], e->n_owners - k - 1);
	e->n_owners--;
	if (e->n_owners) {
		e->action = strictest(e);
		return kernel_on ? kernel_write(e, false) : 0;
	}
	if (kernel_on)
		kernel_write(e, true);
	entry_free(e);
	memmove(&tab[i], &tab[i + 1], (n_tab - i - 1) * sizeof(*tab));
	n_tab--;
	*gone = true;
	return 0;
}

int fw_lpm_remove(const char *owner, const struct es_cidr *c, bool dst)
{
	struct lpm_entry *e;
	bool gone;
	int r;

	pthread_mutex_lock(&lock);
	e = find(c, dst);
	r = e ? drop_owner((size_t)(e - tab), owner, &gone) : -ENOENT;
	if (kernel_on)
		kernel_counts();
	pthread_mutex_unlock(&lock);
	return r;
}

int fw_lpm_remove_owner(const char *owner)
{
	int n = 0;
	bool gone;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_tab;) {
		if (!drop_owner(i, owner, &gone)) {
			n++;
			if (gone)
				continue;
		}
		i++;
	}
	if (kernel_on)
		kernel_counts();
	pthread_mutex_unlock(&lock);
	return n;
}

json_t *fw_lpm_list(const char *owner)
{
	static const char *const act[] = {"pass", "drop", "log"};
	json_t *arr = json_array();

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_tab; i++) {
		const struct lpm_entry *e = &tab[i];
		json_t *owners = json_array();
		bool hit = !owner;
		char buf[64];

		for (size_t k = 0; k < e->n_owners; k++) {
			json_array_append_new(owners, json_string(e->owners[k]));
			hit |= owner && !strcmp(owner, e->owners[k]);
		}
		if (!hit) {
			json_decref(owners);
			continue;
		}
		es_cidr_format_full(&e->c, buf, sizeof(buf));
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o}", "cidr", buf, "direction",
						     e->dst ? "dst" : "src", "action",
						     act[e->action], "owners", owners));
	}
	pthread_mutex_unlock(&lock);
	return arr;
}

void fw_lpm_kernel_attach(bool on)
{
	pthread_mutex_lock(&lock);
	kernel_on = on;
	if (on) {
		for (size_t i = 0; i < n_tab; i++)
			if (kernel_write(&tab[i], false))
				pr_warn("cannot install an LPM block-list prefix");
		kernel_counts();
	}
	pthread_mutex_unlock(&lock);
}
