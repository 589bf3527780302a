// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The alert store (interfaces.md §3.4 "Alerts", §7.3 step 3): SQLite in WAL
 * mode, at most AL_STORE_MAX alerts (oldest timestamp_ns evicted), age bound
 * from audit.retention_days. Each row keeps the REST document; the
 * false-positive flag lives in its own column and is patched in on read.
 */
#define ES_LOG_TARGET "ebpfsentinel::alerts"
#include "domains/alerting/alerting_int.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sqlite3 *db;
static sqlite3_stmt *st_insert;
static uint32_t retention;
static int64_t rows; /* cached count(*): eviction must not scan the table per batch */

static int64_t count_rows(void)
{
	sqlite3_stmt *st;
	int64_t n = 0;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM alerts", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return n;
}

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS alerts ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL, ts INTEGER NOT NULL, component TEXT NOT NULL,"
    " severity INTEGER NOT NULL, rule_id TEXT NOT NULL, fp INTEGER NOT NULL DEFAULT 0,"
    " doc TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS alerts_ts ON alerts(ts);"
    "CREATE INDEX IF NOT EXISTS alerts_id ON alerts(id);";

int al_store_open(const char *path, uint32_t retention_days)
{
	char *err = NULL;
	int r;

	pthread_mutex_lock(&lock);
	if (db) {
		retention = retention_days;
		pthread_mutex_unlock(&lock);
		return 0;
	}
	r = sqlite3_open_v2(
	    path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (r != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 2000);
	if ((r = sqlite3_exec(db, schema, NULL, NULL, &err)) != SQLITE_OK)
		goto fail;
	r = sqlite3_prepare_v2(db,
			       "INSERT INTO alerts(id, ts, component, severity, rule_id, fp, doc) "
			       "VALUES (?, ?, ?, ?, ?, ?, ?)",
			       -1, &st_insert, NULL);
	if (r != SQLITE_OK)
		goto fail;
	retention = retention_days;
	rows = count_rows();
	pthread_mutex_unlock(&lock);
	return 0;
fail:
	pr_error("alert store unavailable: alert endpoints answer 503", LF_STR("path", path),
		 LF_STR("error", err ? err : (db ? sqlite3_errmsg(db) : sqlite3_errstr(r))));
	sqlite3_free(err);
	sqlite3_close(db);
	db = NULL;
	pthread_mutex_unlock(&lock);
	return -EIO;
}

void al_store_close(void)
{
	pthread_mutex_lock(&lock);
	sqlite3_finalize(st_insert);
	st_insert = NULL;
	sqlite3_close(db);
	db = NULL;
	pthread_mutex_unlock(&lock);
}

bool al_store_ready(void)
{
	bool r;

	pthread_mutex_lock(&lock);
	r = db != NULL;
	pthread_mutex_unlock(&lock);
	return r;
}

static void evict_locked(void)
{
	char sql[160];

	if (rows <= AL_STORE_MAX)
		return;
	snprintf(sql, sizeof(sql),
		 "DELETE FROM alerts WHERE seq IN (SELECT seq FROM alerts ORDER BY ts, seq "
		 "LIMIT %lld)",
		 (long long)(rows - AL_STORE_MAX));
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		rows = AL_STORE_MAX;
}

int al_store_insert(const struct es_alert *const *a, size_t n)
{
	int r = 0;

	pthread_mutex_lock(&lock);
	if (!db) {
		pthread_mutex_unlock(&lock);
		return -ENODEV;
	}
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		json_t *doc = al_alert_json(a[i], false);
		char *s;

		json_object_del(doc, "false_positive");
		s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(doc);
		if (!s) {
			r = -ENOMEM;
			continue;
		}
		sqlite3_bind_text(st_insert, 1, a[i]->id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st_insert, 2, (sqlite3_int64)a[i]->timestamp_ns);
		sqlite3_bind_text(st_insert, 3, a[i]->component, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st_insert, 4, (int)a[i]->severity);
		sqlite3_bind_text(st_insert, 5, a[i]->rule_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st_insert, 6, a[i]->false_positive);
		sqlite3_bind_text(st_insert, 7, s, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st_insert) != SQLITE_DONE)
			r = -EIO;
		else
			rows++;
		sqlite3_reset(st_insert);
		free(s);
	}
	evict_locked();
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		r = -EIO;
	pthread_mutex_unlock(&lock);
	return r;
}

void al_store_purge(void)
{
	struct timespec ts;
	sqlite3_stmt *st;
	uint64_t cutoff;

	pthread_mutex_lock(&lock);
	if (!db || !retention) {
		pthread_mutex_unlock(&lock);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	cutoff = ((uint64_t)ts.tv_sec - (uint64_t)retention * 86400ull) * 1000000000ull;
	if (sqlite3_prepare_v2(db, "DELETE FROM alerts WHERE ts < ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)cutoff);
		sqlite3_step(st);
		sqlite3_finalize(st);
		rows = count_rows();
	}
	pthread_mutex_unlock(&lock);
}

json_t *al_store_query(const struct al_query *q, int *err)
{
	char sql[1024];
	sqlite3_stmt *st = NULL;
	json_t *alerts = NULL, *out = NULL;
	sqlite3_int64 total = 0;
	int k = 1;

	*err = 0;
	snprintf(sql, sizeof(sql),
		 "SELECT doc, fp FROM alerts WHERE ts >= ? AND ts <= ?%s%s%s%s "
		 "ORDER BY ts DESC, seq DESC LIMIT ? OFFSET ?",
		 q->component ? " AND component = ? COLLATE NOCASE" : "",
		 q->min_severity >= 0 ? " AND severity >= ?" : "",
		 q->rule_id ? " AND rule_id = ?" : "", q->false_positive >= 0 ? " AND fp = ?" : "");
	pthread_mutex_lock(&lock);
	if (!db) {
		*err = -ENODEV;
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM alerts", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		*err = -EIO;
		goto out;
	}
	total = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		*err = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, k++, (sqlite3_int64)(q->from > INT64_MAX ? INT64_MAX : q->from));
	sqlite3_bind_int64(st, k++, (sqlite3_int64)(q->to > INT64_MAX ? INT64_MAX : q->to));
	if (q->component)
		sqlite3_bind_text(st, k++, q->component, -1, SQLITE_TRANSIENT);
	if (q->min_severity >= 0)
		sqlite3_bind_int(st, k++, q->min_severity);
	if (q->rule_id)
		sqlite3_bind_text(st, k++, q->rule_id, -1, SQLITE_TRANSIENT);
	if (q->false_positive >= 0)
		sqlite3_bind_int(st, k++, q->false_positive);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)q->limit);
	sqlite3_bind_int64(st, k++, (sqlite3_int64)(q->offset > INT64_MAX ? INT64_MAX : q->offset));
	alerts = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *doc = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		json_t *ordered;
		const char *key;
		json_t *v;

		if (!doc)
			continue;
		/* false_positive goes back after message, where the REST shape has it. */
		ordered = json_object();
		json_object_foreach (doc, key, v) {
			json_object_set(ordered, key, v);
			if (!strcmp(key, "message"))
				json_object_set_new(ordered, "false_positive",
						    json_boolean(sqlite3_column_int(st, 1)));
		}
		json_decref(doc);
		json_array_append_new(alerts, ordered);
	}
	out = json_pack("{s:o,s:I,s:I,s:I}", "alerts", alerts, "total", (json_int_t)total, "limit",
			(json_int_t)q->limit, "offset", (json_int_t)q->offset);
	alerts = NULL;
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&lock);
	json_decref(alerts);
	return out;
}

int al_store_mark_fp(const char *id, char *component, size_t clen, char *rule_id, size_t rlen)
{
	sqlite3_stmt *st = NULL;
	int r = -ENOENT;

	pthread_mutex_lock(&lock);
	if (!db) {
		r = -ENODEV;
		goto out;
	}
	if (sqlite3_prepare_v2(db, "SELECT component, rule_id, fp FROM alerts WHERE id = ? LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	snprintf(component, clen, "%s", sqlite3_column_text(st, 0));
	snprintf(rule_id, rlen, "%s", sqlite3_column_text(st, 1));
	if (sqlite3_column_int(st, 2)) {
		r = 0;
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "UPDATE alerts SET fp = 1 WHERE id = ?", -1, &st, NULL) !=
	    SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	r = sqlite3_step(st) == SQLITE_DONE ? 1 : -EIO;
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&lock);
	return r;
}
