// SPDX-License-Identifier: AGPL-3.0-only
/* Chained hash table, FNV-1a over the key bytes, doubled at load factor 1. */
#include "core/hmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *next;
	uint64_t hash;
	unsigned char data[]; /* key, then value (aligned to 8) */
};

struct es_hmap {
	size_t key_size, val_off, val_size;
	size_t n, nb;
	struct node **b;
};

static uint64_t fnv(const void *k, size_t n)
{
	const unsigned char *p = k;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

struct es_hmap *es_hmap__new(size_t key_size, size_t val_size)
{
	struct es_hmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->key_size = key_size;
	m->val_off = (key_size + 7) & ~(size_t)7;
	m->val_size = val_size;
	m->nb = 64;
	m->b = calloc(m->nb, sizeof(*m->b));
	if (!m->b) {
		free(m);
		return NULL;
	}
	return m;
}

void es_hmap_clear(struct es_hmap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct node *n = m->b[i];

		while (n) {
			struct node *next = n->next;

			free(n);
			n = next;
		}
		m->b[i] = NULL;
	}
	m->n = 0;
}

void es_hmap__free(struct es_hmap *m)
{
	if (!m)
		return;
	es_hmap_clear(m);
	free(m->b);
	free(m);
}

static struct node **slot(const struct es_hmap *m, const void *key, uint64_t h)
{
	struct node **pp = &m->b[h & (m->nb - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && !memcmp((*pp)->data, key, m->key_size))
			break;
	return pp;
}

void *es_hmap_get(const struct es_hmap *m, const void *key)
{
	struct node *n = *slot(m, key, fnv(key, m->key_size));

	return n ? n->data + m->val_off : NULL;
}

static void grow(struct es_hmap *m)
{
	size_t nb = m->nb * 2;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* keep working with longer chains */
	for (size_t i = 0; i < m->nb; i++) {
		struct node *n = m->b[i];

		while (n) {
			struct node *next = n->next;

			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
			n = next;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

void *es_hmap_put(struct es_hmap *m, const void *key, bool *created)
{
	uint64_t h = fnv(key, m->key_size);
	struct node **pp = slot(m, key, h), *n;

	if (created)
		*created = false;
	if (*pp)
		return (*pp)->data + m->val_off;
	n = calloc(1, sizeof(*n) + m->val_off + m->val_size);
	if (!n)
		return NULL;
	n->hash = h;
	memcpy(n->data, key, m->key_size);
	*pp = n;
	m->n++;
	if (created)
		*created = true;
	if (m->n > m->nb) {
		grow(m);
		return es_hmap_get(m, key);
	}
	return n->data + m->val_off;
}

int es_hmap_del(struct es_hmap *m, const void *key)
{
	struct node **pp = slot(m, key, fnv(key, m->key_size)), *n = *pp;

	if (!n)
		return -ENOENT;
	*pp = n->next;
	free(n);
	m->n--;
	return 0;
}

size_t es_hmap_count(const struct es_hmap *m)
{
	return m->n;
}

void es_hmap_sweep(struct es_hmap *m, bool (*fn)(const void *key, void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct node **pp = &m->b[i];

		while (*pp) {
			struct node *n = *pp;

			if (fn(n->data, n->data + m->val_off, arg)) {
				*pp = n->next;
				free(n);
				m->n--;
			} else {
				pp = &n->next;
			}
		}
	}
}
