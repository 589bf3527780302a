/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * IPS domain: what other domains may ask of it. The DNS blocklist and domain
 * reputation add their blocks here (reasons "dns-blocklist: <domain>" and
 * "reputation: <domain>", detection.md §2.3), and remove them.
 */
#ifndef ES_IPS_H
#define ES_IPS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/net.h"

/*
 * Add a blacklist entry (ttl_secs 0 = permanent). 0, or -EPERM (whitelisted),
 * -EEXIST (already present), -ENOSPC (blacklist full), -ENODEV (IPS off).
 */
int ips_blacklist_add(const struct es_addr *ip, const char *reason, uint64_t ttl_secs);
/* 0, or -ENOENT. */
int ips_blacklist_remove(const struct es_addr *ip);

#endif
