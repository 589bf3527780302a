/* SPDX-License-Identifier: AGPL-3.0-only */
/* Audit domain (interfaces.md §8): configuration, the sink, the stores it runs. */
#ifndef ES_AUDIT_DOMAIN_H
#define ES_AUDIT_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct audit_log;
struct rule_history;

struct audit_cfg {
	bool enabled;
	uint32_t retention_days;
	uint64_t buffer_size;
	char *storage_path;
};

/*
 * The running stores for the query endpoints; NULL when not open (503).
 * audit_flush() first writes the entries still queued, so a query sees
 * everything recorded before it.
 */
struct audit_log *audit_running_log(void);
struct rule_history *audit_running_history(void);
void audit_flush(void);

/* File names of the stores for a storage_path: "<dir>/<stem>.db", "<dir>/rule_changes.db". */
void audit_store_paths(const char *storage_path, char *log_path, char *history_path, size_t len);

#endif
