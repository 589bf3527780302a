/* SPDX-License-Identifier: AGPL-3.0-only */
/* Connection tracking domain: what other parts of the agent may ask of it. */
#ifndef ES_CONNTRACK_H
#define ES_CONNTRACK_H

#include <stdbool.h>

#include "abi/conntrack.h"

/*
 * The effective CT_CONFIG (timeouts in ns; defaults when the section is
 * absent). NAT expires its sessions with these protocol timeouts.
 */
void ct_current_config(struct es_ct_config *out);
/* The programs are loaded (tracking may still be off: see enabled). */
bool ct_is_active(void);

#endif
