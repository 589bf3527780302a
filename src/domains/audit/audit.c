// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Audit domain (interfaces.md §8): the `audit` section, the two stores, and
 * the sink behind es_audit()/es_audit_rule_change(). Entries are mirrored to
 * the log at once and queued for a writer thread that stores them in batches;
 * rule changes are stored synchronously (their version numbers are read back
 * by the history endpoint right after a change). Retention: the count bound on
 * every batch, the age bound at start and every hour.
 */
#define ES_LOG_TARGET "ebpfsentinel::audit"
#include "domains/audit/audit.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/audit.h"
#include "core/log.h"
#include "domains/audit/store.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 8192
#define BATCH_MAX 256
#define PURGE_INTERVAL_S 3600

static const char *const audit_keys[] = {"enabled", "buffer_size", "retention_days", "storage_path",
					 NULL};

/* The running state: set at start, read by the sink and the endpoints. */
static struct {
	struct audit_cfg cfg; /* copy of the start-time settings (restart to change) */
	struct audit_log *log;
	struct rule_history *history;
	atomic_bool recording;

	pthread_mutex_t store_lock; /* orders batches: drain and write under it */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct audit_rec *queue; /* ring of QUEUE_MAX */
	size_t q_head, q_len;
	bool stopping;
	pthread_t writer;
	bool writer_running;
} st = {
    .store_lock = PTHREAD_MUTEX_INITIALIZER,
    .q_lock = PTHREAD_MUTEX_INITIALIZER,
    .q_cond = PTHREAD_COND_INITIALIZER,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- configuration --------------------------------------------------------------- */

static void audit_free_cfg(void *cfg)
{
	struct audit_cfg *a = cfg;

	if (!a)
		return;
	free(a->storage_path);
	free(a);
}

static void *audit_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct audit_cfg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	es_cfg_check_keys(c, node, path, audit_keys);
	if (es_cfg_bool(c, node, path, "enabled", &a->enabled, true) ||
	    es_cfg_u32(c, node, path, "retention_days", &a->retention_days, 90) ||
	    es_cfg_u64(c, node, path, "buffer_size", &a->buffer_size, 100000) ||
	    es_cfg_str(c, node, path, "storage_path", &a->storage_path, "data/audit.redb")) {
		audit_free_cfg(a);
		return NULL;
	}
	return a;
}

static json_t *audit_to_json(const void *cfg)
{
	const struct audit_cfg *a = cfg;

	return json_pack("{s:b,s:I,s:I,s:s}", "enabled", a->enabled, "retention_days",
			 (json_int_t)a->retention_days, "buffer_size", (json_int_t)a->buffer_size,
			 "storage_path", a->storage_path);
}

static bool audit_enabled(const void *cfg)
{
	return ((const struct audit_cfg *)cfg)->enabled;
}

void audit_store_paths(const char *storage_path, char *log_path, char *history_path, size_t len)
{
	char a[4096], b[4096], *dir, *base, *dot;

	snprintf(a, sizeof(a), "%s", storage_path);
	snprintf(b, sizeof(b), "%s", storage_path);
	dir = dirname(a);
	base = basename(b);
	dot = strrchr(base, '.');
	if (dot && dot != base)
		*dot = '\0';
	snprintf(log_path, len, "%s/%s.db", dir, base);
	snprintf(history_path, len, "%s/rule_changes.db", dir);
}

/* ---- the writer ------------------------------------------------------------------------ */

/* Take up to max queued records (caller holds store_lock). */
static size_t take(struct audit_rec *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&st.q_lock);
	while (n < max && st.q_len) {
		out[n++] = st.queue[st.q_head];
		memset(&st.queue[st.q_head], 0, sizeof(st.queue[0]));
		st.q_head = (st.q_head + 1) % QUEUE_MAX;
		st.q_len--;
	}
	pthread_mutex_unlock(&st.q_lock);
	return n;
}

/* Write everything queued so far, in order. */
static void drain(void)
{
	struct audit_rec batch[BATCH_MAX];
	size_t n;

	pthread_mutex_lock(&st.store_lock);
	while ((n = take(batch, BATCH_MAX)) > 0) {
		if (st.log)
			audit_log_append(st.log, batch, n, st.cfg.buffer_size);
		for (size_t i = 0; i < n; i++)
			audit_rec_clear(&batch[i]);
	}
	pthread_mutex_unlock(&st.store_lock);
}

void audit_flush(void)
{
	drain();
}

static void purge(void)
{
	int64_t n;

	pthread_mutex_lock(&st.store_lock);
	n = st.log ? audit_log_purge(st.log, now_ns(), st.cfg.retention_days) : 0;
	pthread_mutex_unlock(&st.store_lock);
	if (n > 0)
		pr_info("audit entries past retention purged", LF_INT("count", n),
			LF_UINT("retention_days", st.cfg.retention_days));
}

static void *writer_main(void *arg)
{
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	next.tv_sec += PURGE_INTERVAL_S;
	for (;;) {
		struct timespec now;
		bool stop;

		pthread_mutex_lock(&st.q_lock);
		while (!st.q_len && !st.stopping) {
			if (pthread_cond_timedwait(&st.q_cond, &st.q_lock, &next) == ETIMEDOUT)
				break;
		}
		stop = st.stopping;
		pthread_mutex_unlock(&st.q_lock);
		drain();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec >= next.tv_sec) {
			purge();
			next.tv_sec = now.tv_sec + PURGE_INTERVAL_S;
		}
		if (stop)
			return NULL;
	}
}

/* ---- the sink ---------------------------------------------------------------------- */

static void dropped(const char *reason)
{
	es_metric_add(es_metric_family("ebpfsentinel_events_dropped",
				       "Events lost before processing", ES_M_COUNTER, "reason"),
		      1, reason);
}

static void sink_entry(const struct es_audit_entry *e)
{
	struct es_audit_entry copy = *e;
	struct audit_rec rec;

	if (!atomic_load(&st.recording))
		return;
	if (!copy.actor_sub)
		copy.actor_sub = es_audit_actor();
	if (audit_rec_fill(&rec, &copy, now_ns())) {
		dropped("audit_out_of_memory");
		return;
	}
	/* The log mirror (§8.2): every entry, also when the store is unavailable. */
	pr_info(rec.detail, LF_STR("event_type", "audit"), LF_STR("component", rec.component),
		LF_STR("action", rec.action), LF_STR("rule_id", rec.rule_id),
		LF_UINT("src_ip", rec.src_ip), LF_UINT("dst_ip", rec.dst_ip),
		LF_UINT("src_port", rec.src_port), LF_UINT("dst_port", rec.dst_port),
		LF_UINT("protocol", rec.protocol), LF_STR("sub", rec.sub ? rec.sub : ""));
	if (!st.log) {
		audit_rec_clear(&rec);
		return;
	}
	pthread_mutex_lock(&st.q_lock);
	if (st.q_len == QUEUE_MAX || !st.queue) {
		pthread_mutex_unlock(&st.q_lock);
		audit_rec_clear(&rec);
		dropped("audit_queue_full");
		return;
	}
	st.queue[(st.q_head + st.q_len) % QUEUE_MAX] = rec;
	st.q_len++;
	pthread_cond_signal(&st.q_cond);
	pthread_mutex_unlock(&st.q_lock);
}

static void sink_rule_change(const struct es_rule_change *c)
{
	const char *sub = c->actor_sub ? c->actor_sub : es_audit_actor();

	if (!atomic_load(&st.recording))
		return;
	pthread_mutex_lock(&st.store_lock);
	if (st.history)
		rule_history_append(st.history, c, sub, now_ns());
	pthread_mutex_unlock(&st.store_lock);
	/*
	 * A change through the API is also an audit entry (§8.2), made here once
	 * for every domain: config / rule_added|… / "add rule <id> by api".
	 */
	if (c->actor && (!strcmp(c->actor, "api") || !strcmp(c->actor, "cli")) && c->action) {
		const char *verb = !strcmp(c->action, "rule_added")	? "add"
				   : !strcmp(c->action, "rule_removed") ? "delete"
				   : !strcmp(c->action, "rule_updated") ? "update"
									: c->action;
		char detail[AUDIT_DETAIL_MAX];

		snprintf(detail, sizeof(detail), "%s rule %s by api", verb,
			 c->rule_id ? c->rule_id : "");
		sink_entry(&(struct es_audit_entry){
		    .component = "config",
		    .action = c->action,
		    .rule_id = c->rule_id,
		    .detail = detail,
		    .actor_sub = sub,
		});
	}
}

static const struct es_audit_sink sink = {
    .entry = sink_entry,
    .rule_change = sink_rule_change,
};

struct audit_log *audit_running_log(void)
{
	return st.log;
}

struct rule_history *audit_running_history(void)
{
	return st.history;
}

/* ---- lifecycle --------------------------------------------------------------------- */

static int audit_start(const void *cfg)
{
	const struct audit_cfg *a = cfg;
	char log_path[4200], hist_path[4200];

	st.cfg = *a;
	st.cfg.storage_path = strdup(a->storage_path);
	audit_store_paths(a->storage_path, log_path, hist_path, sizeof(log_path));
	/* A store that cannot be opened only degrades its endpoints (503). */
	if (a->storage_path[0]) {
		st.log = audit_log__open(log_path);
		if (!st.log)
			pr_warn("audit store unavailable: audit queries answer 503",
				LF_STR("path", log_path), LF_STR("error", strerror(errno)));
		st.history = rule_history__open(hist_path);
		if (!st.history)
			pr_warn("rule change store unavailable: history queries answer 503",
				LF_STR("path", hist_path), LF_STR("error", strerror(errno)));
	}
	st.queue = calloc(QUEUE_MAX, sizeof(*st.queue));
	if (st.log && st.queue) {
		purge();
		st.stopping = false;
		st.writer_running = !pthread_create(&st.writer, NULL, writer_main, NULL);
	}
	atomic_store(&st.recording, a->enabled);
	es_audit_set_sink(&sink);
	pr_info("audit trail ready", LF_BOOL("recording", a->enabled),
		LF_BOOL("store", st.log != NULL), LF_BOOL("rule_history", st.history != NULL),
		LF_STR("path", log_path));
	return 0;
}

static void audit_stop(void)
{
	atomic_store(&st.recording, false);
	es_audit_set_sink(NULL);
	if (st.writer_running) {
		pthread_mutex_lock(&st.q_lock);
		st.stopping = true;
		pthread_cond_signal(&st.q_cond);
		pthread_mutex_unlock(&st.q_lock);
		pthread_join(st.writer, NULL);
		st.writer_running = false;
	}
	drain();
	pthread_mutex_lock(&st.store_lock);
	audit_log__free(st.log);
	rule_history__free(st.history);
	st.log = NULL;
	st.history = NULL;
	pthread_mutex_lock(&st.q_lock);
	for (size_t i = 0; i < st.q_len; i++)
		audit_rec_clear(&st.queue[(st.q_head + i) % QUEUE_MAX]);
	free(st.queue);
	st.queue = NULL;
	st.q_head = st.q_len = 0;
	pthread_mutex_unlock(&st.q_lock);
	free(st.cfg.storage_path);
	st.cfg.storage_path = NULL;
	pthread_mutex_unlock(&st.store_lock);
}

static void audit_status(json_t *o)
{
	json_object_set_new(o, "active", json_boolean(atomic_load(&st.recording)));
	json_object_set_new(o, "store", json_boolean(st.log != NULL));
	json_object_set_new(o, "rule_history", json_boolean(st.history != NULL));
}

extern const struct es_route audit_routes[];

const struct es_domain es_domain_audit = {
    .name = "audit",
    .section = "audit",
    .flags = ES_DOMAIN_EARLY | ES_DOMAIN_RESTART,
    .parse = audit_parse,
    .free_cfg = audit_free_cfg,
    .to_json = audit_to_json,
    .enabled = audit_enabled,
    .start = audit_start,
    .stop = audit_stop,
    .status = audit_status,
    .routes = audit_routes,
};
