/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * A small hash table with fixed-size byte keys and fixed-size inline values
 * (trackers, dedup windows, blacklists). Not thread-safe: callers lock.
 */
#ifndef ES_HMAP_H
#define ES_HMAP_H

#include <stdbool.h>
#include <stddef.h>

struct es_hmap;

/* NULL with errno on allocation failure. */
struct es_hmap *es_hmap__new(size_t key_size, size_t val_size);
void es_hmap__free(struct es_hmap *m);

/* The value stored under key, or NULL. */
void *es_hmap_get(const struct es_hmap *m, const void *key);
/* The value under key, inserted zeroed when absent (*created tells). NULL on ENOMEM. */
void *es_hmap_put(struct es_hmap *m, const void *key, bool *created);
/* 0, or -ENOENT. */
int es_hmap_del(struct es_hmap *m, const void *key);
size_t es_hmap_count(const struct es_hmap *m);
void es_hmap_clear(struct es_hmap *m);

/* Visit every entry; entries for which fn returns true are deleted. */
void es_hmap_sweep(struct es_hmap *m, bool (*fn)(const void *key, void *val, void *arg), void *arg);

#endif
