/* SPDX-License-Identifier: AGPL-3.0-only */
/* NAT domain: what other parts of the agent (and its REST routes) use. */
#ifndef ES_NAT_H
#define ES_NAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/conntrack.h"
#include "abi/nat.h"

struct nat_cfg;

/* Enabled rules of a config. */
size_t nat_rules_enabled(const struct nat_cfg *n);

/* The pinned NAT_SESSIONS map (new fd, caller closes) or -errno. */
int nat_sessions_fd(void);

/*
 * Expire idle session pairs (network.md §4.3): a translated flow stays while
 * conntrack has a live entry for either of its wire tuples (ct_active), else
 * while it saw a packet within the protocol timeout of ct. Returns the number
 * of sessions removed.
 */
size_t nat_sessions_expire(int fd, const struct es_ct_config *ct, bool ct_active);
/* Sessions as REST objects (at most limit). */
json_t *nat_sessions_list(int fd, uint64_t limit);
/* Delete every session; returns how many. */
size_t nat_sessions_flush(int fd);

#endif
