// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Address tries (see fw_trie.h). The multibit form is built by recursion over
 * the binary trie: a table of 2^stride entries per node at a stride
 * boundary, leaf-pushed (an entry holds the class of the longest prefix
 * covering it unless longer prefixes lie below, in which case it points to
 * the next chunk). A chain of at least two bytes without branches or prefix
 * ends becomes one skip node instead of a chunk per byte, so isolated host
 * routes cost a compare rather than a chunk per byte.
 */
#include "domains/firewall/fw_trie.h"
#include "domains/firewall/fw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fw_btrie_init(struct fw_btrie *t, int v6)
{
	memset(t, 0, sizeof(*t));
	t->key_bit = v6 ? 0 : 96;
	t->cap = 64;
	t->n = calloc(t->cap, sizeof(*t->n));
	if (!t->n)
		return -ENOMEM;
	t->n[0] = (struct fw_bnode){.child = {-1, -1}, .parent = -1};
	t->len = 1;
	return 0;
}

void fw_btrie_free(struct fw_btrie *t)
{
	free(t->n);
	memset(t, 0, sizeof(*t));
}

static int bit_at(const uint8_t *a, unsigned bit)
{
	return (a[bit / 8] >> (7 - bit % 8)) & 1;
}

int fw_btrie_insert(struct fw_btrie *t, const uint8_t addr[16], unsigned plen)
{
	int32_t cur = 0;

	for (unsigned d = 0; d < plen; d++) {
		int b = bit_at(addr, t->key_bit + d);
		int32_t nx = t->n[cur].child[b];

		if (nx < 0) {
			if (t->len == t->cap) {
				size_t nc = t->cap * 2;
				struct fw_bnode *nv = realloc(t->n, nc * sizeof(*nv));

				if (!nv)
					return -ENOMEM;
				t->n = nv;
				t->cap = nc;
			}
			nx = (int32_t)t->len++;
			t->n[nx] = (struct fw_bnode){
			    .child = {-1, -1}, .parent = cur, .depth = (uint8_t)(d + 1)};
			t->n[cur].child[b] = nx;
		}
		cur = nx;
	}
	t->n[cur].is_prefix = 1;
	return cur;
}

struct emit_ctx {
	const struct fw_btrie *t;
	const uint32_t *cls;
	struct fw_image *img;
	char *why;
	size_t whylen;
};

static int emit_entry(struct emit_ctx *e, int32_t node, unsigned depth, uint32_t ic, uint16_t *out);

/* Fill 2^r entries for the subtree of node (at depth) with inherited class ic. */
static int fill(struct emit_ctx *e, int32_t node, unsigned depth, unsigned r, uint32_t ic,
		uint16_t *out)
{
	const struct fw_bnode *n;
	int ret;

	if (node < 0) {
		for (size_t i = 0; i < (1u << r); i++)
			out[i] = (uint16_t)ic;
		return 0;
	}
	if (r == 0)
		return emit_entry(e, node, depth, ic, out);
	n = &e->t->n[node];
	if (n->is_prefix)
		ic = e->cls[node];
	ret = fill(e, n->child[0], depth + 1, r - 1, ic, out);
	if (!ret)
		ret = fill(e, n->child[1], depth + 1, r - 1, ic, out + (1u << (r - 1)));
	return ret;
}

static int only_child(const struct fw_bnode *n)
{
	if ((n->child[0] >= 0) == (n->child[1] >= 0))
		return -1;
	return n->child[0] >= 0 ? 0 : 1;
}

/* The entry for node at a stride boundary (depth bits from the key start). */
static int emit_entry(struct emit_ctx *e, int32_t node, unsigned depth, uint32_t ic, uint16_t *out)
{
	const struct fw_bnode *n = &e->t->n[node];
	struct fw_image *img = e->img;
	unsigned chain = 0, abs = e->t->key_bit + depth;
	uint8_t bits[128];
	int32_t m = node;

	if (n->is_prefix)
		ic = e->cls[node];
	if (n->child[0] < 0 && n->child[1] < 0) {
		*out = (uint16_t)ic;
		return 0;
	}
	/* Follow a single path that holds no prefix end. */
	for (;;) {
		const struct fw_bnode *mn = &e->t->n[m];
		int b = only_child(mn);

		if (b < 0 || chain >= sizeof(bits))
			break;
		bits[chain++] = (uint8_t)b;
		m = mn->child[b];
		if (e->t->n[m].is_prefix)
			break;
	}
	if (chain / 8 >= 2) {
		unsigned bytes = chain / 8, id = img->n_skip;
		struct es_fw_skip *s;
		uint8_t val[16] = {0}, mask[16] = {0};
		int32_t at = node;
		int ret;

		if (id >= ES_FW_SKIPS_PER_BANK) {
			snprintf(e->why, e->whylen,
				 "too many distinct address paths (%u skip nodes)",
				 ES_FW_SKIPS_PER_BANK);
			return -E2BIG;
		}
		img->n_skip++;
		for (unsigned i = 0; i < bytes * 8; i++) {
			unsigned byte = (abs + i) / 8;

			val[byte] |= (uint8_t)(bits[i] << (7 - (abs + i) % 8));
			mask[byte] |= (uint8_t)(1u << (7 - (abs + i) % 8));
			at = e->t->n[at].child[bits[i]];
		}
		s = &img->skip[id];
		memset(s, 0, sizeof(*s));
		memcpy(s->val, val, 16);
		memcpy(s->mask, mask, 16);
		s->depth = (uint8_t)((abs + bytes * 8) / 8);
		s->miss = (uint16_t)ic;
		ret = emit_entry(e, at, depth + bytes * 8, ic, &s->next);
		if (ret)
			return ret;
		*out = (uint16_t)(ES_FW_TE_PTR | ES_FW_TE_SKIP | id);
		return 0;
	}
	{
		unsigned id = img->n_chunks;

		if (id >= ES_FW_CHUNKS_PER_BANK) {
			snprintf(e->why, e->whylen, "too many address branches (%u chunks)",
				 ES_FW_CHUNKS_PER_BANK);
			return -E2BIG;
		}
		img->n_chunks++;
		*out = (uint16_t)(ES_FW_TE_PTR | id);
		return fill(e, node, depth, 8, ic, img->trie + ES_FW_TRIE_CHUNKS_OFF + id * 256);
	}
}

int fw_btrie_emit(const struct fw_btrie *t, const uint32_t *cls, unsigned which,
		  struct fw_image *img, char *why, size_t whylen)
{
	struct emit_ctx e = {.t = t, .cls = cls, .img = img, .why = why, .whylen = whylen};

	return fill(&e, 0, 0, 16, cls[0], img->trie + (size_t)which * ES_FW_TRIE_L0);
}
