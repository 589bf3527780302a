/* SPDX-License-Identifier: AGPL-3.0-only */
/* Namespace set-up for SYN flood defence: sysctls and SYNPROXY rules (docs/ddos.md). */
#ifndef ES_DDOS_SYS_H
#define ES_DDOS_SYS_H

#include <stdbool.h>

struct ddos_sys_state {
	bool cookies;  /* tcp_syncookies=2 in force: local listeners accept XDP cookies */
	bool synproxy; /* SYNPROXY finishes forwarded handshakes XDP answered */
};

/*
 * Configure this namespace for the agent interfaces ifnames (NULL-terminated).
 * Failures degrade (reported in out, logged) rather than fail. Returns 0.
 */
int ddos_sys_setup(char *const *ifnames, struct ddos_sys_state *out);
/* Undo everything ddos_sys_setup changed. */
void ddos_sys_teardown(void);

#endif
