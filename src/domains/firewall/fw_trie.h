/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Address tries for the compiler: a binary trie of the prefixes rules use,
 * then its multibit form for the kernel (16-bit level 0, 8-bit chunks, skip
 * nodes for single paths) mapping every address to the class of its longest
 * covering prefix. Used by fw_compile.c only.
 */
#ifndef ES_FW_TRIE_H
#define ES_FW_TRIE_H

#include <stddef.h>
#include <stdint.h>

struct fw_image;

struct fw_bnode {
	int32_t child[2];
	int32_t parent;
	uint8_t depth; /* bits from the key start */
	uint8_t is_prefix;
	uint16_t pad;
};

struct fw_btrie {
	struct fw_bnode *n; /* n[0] is the root (the empty prefix) */
	size_t len, cap;
	unsigned key_bit; /* 96 for IPv4 (mapped form), 0 for IPv6 */
};

int fw_btrie_init(struct fw_btrie *t, int v6);
void fw_btrie_free(struct fw_btrie *t);
/*
 * Insert addr/plen (plen over the family: 0-32 or 0-128; addr in the mapped
 * 16-byte form). Returns the node index of the prefix, or -ENOMEM. Nodes are
 * created parents first, so index order is a top-down order.
 */
int fw_btrie_insert(struct fw_btrie *t, const uint8_t addr[16], unsigned plen);

/*
 * Emit the multibit trie for trie slot `which` (ES_FW_T_*) of img. cls[i] is
 * the class of prefix node i (ignored for other nodes). 0, or -E2BIG with why
 * filled when the bank's chunk or skip pools are exhausted.
 */
int fw_btrie_emit(const struct fw_btrie *t, const uint32_t *cls, unsigned which,
		  struct fw_image *img, char *why, size_t whylen);

#endif
