/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The audit trail's two SQLite stores (WAL): audit entries, bounded by count
 * and age, and rule history, unbounded, with a per-rule version counter.
 * Each handle is safe to use from several threads.
 */
#ifndef ES_AUDIT_STORE_H
#define ES_AUDIT_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/audit.h"

#define AUDIT_DETAIL_MAX 512

/* One audit entry as stored (strings owned by the record). */
struct audit_rec {
	uint64_t timestamp_ns;
	char *component;
	char *action;
	char *rule_id; /* "" when none */
	char *detail;  /* at most AUDIT_DETAIL_MAX bytes */
	char *sub;     /* acting identity, or NULL */
	uint32_t src_ip, dst_ip;
	uint16_t src_port, dst_port;
	uint8_t protocol;
};

/* Copy an entry point record into rec (detail truncated on a UTF-8 boundary). 0 or -ENOMEM. */
int audit_rec_fill(struct audit_rec *rec, const struct es_audit_entry *e, uint64_t ts_ns);
void audit_rec_clear(struct audit_rec *rec);

struct audit_query {
	uint64_t from_ns, to_ns; /* inclusive; to_ns 0 = no bound */
	const char *component;	 /* NULL = any */
	const char *action;
	const char *rule_id;
	uint64_t limit, offset;
};

struct audit_log;

/* Open (creating, mode 0600) the audit entry store at path. NULL with errno. */
struct audit_log *audit_log__open(const char *path);
void audit_log__free(struct audit_log *l);
/*
 * Append n records in one transaction, then evict the oldest beyond
 * max_entries. 0 or -EIO.
 */
int audit_log_append(struct audit_log *l, const struct audit_rec *recs, size_t n,
		     uint64_t max_entries);
/* Delete entries older than now_ns - retention_days (0 = no age bound). Removed count or -EIO. */
int64_t audit_log_purge(struct audit_log *l, uint64_t now_ns, uint32_t retention_days);
/* Newest first; *entries is a new JSON array, *total the unfiltered count. 0 or -EIO. */
int audit_log_query(struct audit_log *l, const struct audit_query *q, json_t **entries,
		    uint64_t *total);

struct rule_history;

struct rule_history *rule_history__open(const char *path);
void rule_history__free(struct rule_history *h);
/* Record a change as the rule's next version. 0 or -EIO. */
int rule_history_append(struct rule_history *h, const struct es_rule_change *c, const char *sub,
			uint64_t ts_ns);
/* Newest version first, at most limit. 0 or -EIO. */
int rule_history_query(struct rule_history *h, const char *rule_id, uint64_t limit,
		       json_t **entries);

#endif
