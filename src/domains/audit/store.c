// SPDX-License-Identifier: AGPL-3.0-only
/* SQLite stores of the audit trail (interfaces.md §8). */
#define ES_LOG_TARGET "ebpfsentinel::audit"
#include "domains/audit/store.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS_PER_DAY (86400ull * 1000000000ull)

struct db {
	sqlite3 *h;
	pthread_mutex_t lock; /* one writer, and statements are not shared */
};

struct audit_log {
	struct db db;
};

struct rule_history {
	struct db db;
};

static const char audit_schema[] =
    "CREATE TABLE IF NOT EXISTS audit_entries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " timestamp_ns INTEGER NOT NULL, component TEXT NOT NULL, action TEXT NOT NULL,"
    " src_ip INTEGER NOT NULL, dst_ip INTEGER NOT NULL, src_port INTEGER NOT NULL,"
    " dst_port INTEGER NOT NULL, protocol INTEGER NOT NULL, rule_id TEXT NOT NULL,"
    " detail TEXT NOT NULL, sub TEXT);"
    "CREATE INDEX IF NOT EXISTS audit_entries_ts ON audit_entries(timestamp_ns);";

static const char history_schema[] =
    "CREATE TABLE IF NOT EXISTS rule_changes ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " rule_id TEXT NOT NULL, version INTEGER NOT NULL, timestamp_ns INTEGER NOT NULL,"
    " component TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,"
    " before TEXT, after TEXT, sub TEXT, UNIQUE (rule_id, version));";

/* ---- records -------------------------------------------------------------------- */

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* Longest prefix of s of at most max bytes that does not split a UTF-8 sequence. */
static size_t utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* Length of the well-formed UTF-8 sequence at p, or 0 (overlongs, surrogates rejected). */
static int utf8_seq(const unsigned char *p)
{
	static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
	uint32_t cp;
	int n;

	if (*p < 0x80)
		return 1;
	if ((*p & 0xE0) == 0xC0)
		n = 1, cp = *p & 0x1F;
	else if ((*p & 0xF0) == 0xE0)
		n = 2, cp = *p & 0x0F;
	else if ((*p & 0xF8) == 0xF0)
		n = 3, cp = *p & 0x07;
	else
		return 0;
	for (int k = 1; k <= n; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3F);
	}
	if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n + 1;
}

/* Replace bytes that are not well-formed UTF-8 with '?': JSON strings must be valid. */
static void utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (p && *p) {
		int n = utf8_seq(p);

		if (n)
			p += n;
		else
			*p++ = '?';
	}
}

int audit_rec_fill(struct audit_rec *rec, const struct es_audit_entry *e, uint64_t ts_ns)
{
	const char *d = e->detail ? e->detail : "";
	size_t dl = utf8_prefix(d, AUDIT_DETAIL_MAX);

	memset(rec, 0, sizeof(*rec));
	rec->timestamp_ns = ts_ns;
	rec->component = dup_or_empty(e->component);
	rec->action = dup_or_empty(e->action);
	rec->rule_id = dup_or_empty(e->rule_id);
	rec->detail = strndup(d, dl);
	rec->sub = e->actor_sub && *e->actor_sub ? strdup(e->actor_sub) : NULL;
	rec->src_ip = e->src_ip;
	rec->dst_ip = e->dst_ip;
	rec->src_port = e->src_port;
	rec->dst_port = e->dst_port;
	rec->protocol = e->protocol;
	if (!rec->component || !rec->action || !rec->rule_id || !rec->detail ||
	    (e->actor_sub && *e->actor_sub && !rec->sub)) {
		audit_rec_clear(rec);
		return -ENOMEM;
	}
	utf8_sanitize(rec->component);
	utf8_sanitize(rec->action);
	utf8_sanitize(rec->rule_id);
	utf8_sanitize(rec->detail);
	utf8_sanitize(rec->sub);
	return 0;
}

void audit_rec_clear(struct audit_rec *rec)
{
	free(rec->component);
	free(rec->action);
	free(rec->rule_id);
	free(rec->detail);
	free(rec->sub);
	memset(rec, 0, sizeof(*rec));
}

/* ---- database handles ------------------------------------------------------------------ */

static int db_exec(struct db *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	pr_error("audit store statement failed", LF_STR("error", msg ? msg : "?"));
	sqlite3_free(msg);
	return -EIO;
}

static int db_open(struct db *db, const char *path, const char *schema)
{
	int fd;

	/* Audit data is nobody else's business: create the file 0600. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		pr_error("cannot open audit store", LF_STR("path", path),
			 LF_STR("error", db->h ? sqlite3_errmsg(db->h) : "out of memory"));
		sqlite3_close(db->h);
		db->h = NULL;
		return -EIO;
	}
	sqlite3_busy_timeout(db->h, 5000);
	if (db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") ||
	    db_exec(db, schema)) {
		sqlite3_close(db->h);
		db->h = NULL;
		return -EIO;
	}
	pthread_mutex_init(&db->lock, NULL);
	return 0;
}

static void db_close(struct db *db)
{
	if (!db->h)
		return;
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->lock);
	db->h = NULL;
}

/* A handle whose first member is its struct db. NULL with errno. */
static void *db__new(size_t size, const char *path, const char *schema)
{
	struct db *db = calloc(1, size);
	int r;

	if (!db)
		return NULL;
	r = db_open(db, path, schema);
	if (r) {
		free(db);
		errno = -r;
		return NULL;
	}
	return db;
}

static void db__free(struct db *db)
{
	if (!db)
		return;
	db_close(db);
	free(db);
}

static sqlite3_stmt *prep(struct db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		pr_error("audit store statement failed", LF_STR("error", sqlite3_errmsg(db->h)));
		return NULL;
	}
	return st;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static json_t *col_text_or_null(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? json_string((const char *)t) : json_null();
}

/* ---- audit entries ---------------------------------------------------------------- */

struct audit_log *audit_log__open(const char *path)
{
	return db__new(sizeof(struct audit_log), path, audit_schema);
}

void audit_log__free(struct audit_log *l)
{
	db__free(l ? &l->db : NULL);
}

int audit_log_append(struct audit_log *l, const struct audit_rec *recs, size_t n,
		     uint64_t max_entries)
{
	sqlite3_stmt *ins = NULL, *evict = NULL;
	int r = -EIO;

	pthread_mutex_lock(&l->db.lock);
	if (db_exec(&l->db, "BEGIN IMMEDIATE"))
		goto out;
	ins = prep(&l->db, "INSERT INTO audit_entries (timestamp_ns, component, action, src_ip,"
			   " dst_ip, src_port, dst_port, protocol, rule_id, detail, sub)"
			   " VALUES (?,?,?,?,?,?,?,?,?,?,?)");
	/* Oldest first beyond the bound: ids only grow (AUTOINCREMENT). */
	evict = prep(&l->db, "DELETE FROM audit_entries WHERE id <= (SELECT id FROM audit_entries"
			     " ORDER BY id DESC LIMIT 1 OFFSET ?)");
	if (!ins || !evict)
		goto rollback;
	for (size_t i = 0; i < n; i++) {
		const struct audit_rec *a = &recs[i];

		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)a->timestamp_ns);
		sqlite3_bind_text(ins, 2, a->component, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 3, a->action, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 4, a->src_ip);
		sqlite3_bind_int64(ins, 5, a->dst_ip);
		sqlite3_bind_int(ins, 6, a->src_port);
		sqlite3_bind_int(ins, 7, a->dst_port);
		sqlite3_bind_int(ins, 8, a->protocol);
		sqlite3_bind_text(ins, 9, a->rule_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 10, a->detail, -1, SQLITE_STATIC);
		bind_text_or_null(ins, 11, a->sub);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto rollback;
	}
	sqlite3_bind_int64(evict, 1,
			   (sqlite3_int64)(max_entries > INT64_MAX ? INT64_MAX : max_entries));
	if (sqlite3_step(evict) != SQLITE_DONE)
		goto rollback;
	if (db_exec(&l->db, "COMMIT"))
		goto rollback;
	r = 0;
	goto out;
rollback:
	pr_error("audit entries not stored", LF_STR("error", sqlite3_errmsg(l->db.h)),
		 LF_UINT("count", n));
	db_exec(&l->db, "ROLLBACK");
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(evict);
	pthread_mutex_unlock(&l->db.lock);
	return r;
}

int64_t audit_log_purge(struct audit_log *l, uint64_t now_ns, uint32_t retention_days)
{
	uint64_t age = (uint64_t)retention_days * NS_PER_DAY;
	sqlite3_stmt *st;
	int64_t r = -EIO;

	if (!retention_days || age > now_ns)
		return 0;
	pthread_mutex_lock(&l->db.lock);
	st = prep(&l->db, "DELETE FROM audit_entries WHERE timestamp_ns < ?");
	if (st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(now_ns - age));
		if (sqlite3_step(st) == SQLITE_DONE)
			r = sqlite3_changes(l->db.h);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->db.lock);
	return r;
}

static json_t *entry_json(sqlite3_stmt *st)
{
	json_t *o = json_pack("{s:I,s:s,s:s,s:I,s:I,s:i,s:i,s:i,s:s,s:s}", "timestamp_ns",
			      (json_int_t)sqlite3_column_int64(st, 0), "component",
			      (const char *)sqlite3_column_text(st, 1), "action",
			      (const char *)sqlite3_column_text(st, 2), "src_ip",
			      (json_int_t)sqlite3_column_int64(st, 3), "dst_ip",
			      (json_int_t)sqlite3_column_int64(st, 4), "src_port",
			      sqlite3_column_int(st, 5), "dst_port", sqlite3_column_int(st, 6),
			      "protocol", sqlite3_column_int(st, 7), "rule_id",
			      (const char *)sqlite3_column_text(st, 8), "detail",
			      (const char *)sqlite3_column_text(st, 9));

	/* Beyond the reference: who acted, when auth is on (§12 item 30). */
	if (o && sqlite3_column_type(st, 10) != SQLITE_NULL)
		json_object_set_new(o, "sub",
				    json_string((const char *)sqlite3_column_text(st, 10)));
	return o;
}

int audit_log_query(struct audit_log *l, const struct audit_query *q, json_t **entries,
		    uint64_t *total)
{
	sqlite3_stmt *cnt = NULL, *st = NULL;
	json_t *arr = json_array();
	int r = -EIO, rc;

	pthread_mutex_lock(&l->db.lock);
	cnt = prep(&l->db, "SELECT COUNT(*) FROM audit_entries");
	st = prep(&l->db,
		  "SELECT timestamp_ns, component, action, src_ip, dst_ip, src_port, dst_port,"
		  " protocol, rule_id, detail, sub FROM audit_entries"
		  " WHERE timestamp_ns >= ?1 AND (?2 = 0 OR timestamp_ns <= ?2)"
		  " AND (?3 IS NULL OR component = ?3) AND (?4 IS NULL OR action = ?4)"
		  " AND (?5 IS NULL OR rule_id = ?5)"
		  " ORDER BY timestamp_ns DESC, id DESC LIMIT ?6 OFFSET ?7");
	if (!arr || !cnt || !st || sqlite3_step(cnt) != SQLITE_ROW)
		goto out;
	*total = (uint64_t)sqlite3_column_int64(cnt, 0);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(q->from_ns > INT64_MAX ? INT64_MAX : q->from_ns));
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(q->to_ns > INT64_MAX ? INT64_MAX : q->to_ns));
	bind_text_or_null(st, 3, q->component);
	bind_text_or_null(st, 4, q->action);
	bind_text_or_null(st, 5, q->rule_id);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)(q->limit > INT64_MAX ? INT64_MAX : q->limit));
	sqlite3_bind_int64(st, 7, (sqlite3_int64)(q->offset > INT64_MAX ? INT64_MAX : q->offset));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, entry_json(st));
	if (rc != SQLITE_DONE)
		goto out;
	*entries = arr;
	arr = NULL;
	r = 0;
out:
	if (r)
		pr_error("audit query failed", LF_STR("error", sqlite3_errmsg(l->db.h)));
	sqlite3_finalize(cnt);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->db.lock);
	json_decref(arr);
	return r;
}

/* ---- rule history ------------------------------------------------------------------ */

struct rule_history *rule_history__open(const char *path)
{
	return db__new(sizeof(struct rule_history), path, history_schema);
}

void rule_history__free(struct rule_history *h)
{
	db__free(h ? &h->db : NULL);
}

int rule_history_append(struct rule_history *h, const struct es_rule_change *c, const char *sub,
			uint64_t ts_ns)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	pthread_mutex_lock(&h->db.lock);
	if (db_exec(&h->db, "BEGIN IMMEDIATE"))
		goto out;
	st = prep(&h->db, "INSERT INTO rule_changes (rule_id, version, timestamp_ns, component,"
			  " action, actor, before, after, sub) VALUES (?1, (SELECT"
			  " COALESCE(MAX(version), 0) + 1 FROM rule_changes WHERE rule_id = ?1),"
			  " ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	if (!st)
		goto rollback;
	sqlite3_bind_text(st, 1, c->rule_id ? c->rule_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)ts_ns);
	sqlite3_bind_text(st, 3, c->component ? c->component : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->action ? c->action : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, c->actor ? c->actor : "api", -1, SQLITE_STATIC);
	bind_text_or_null(st, 6, c->before);
	bind_text_or_null(st, 7, c->after);
	bind_text_or_null(st, 8, sub && *sub ? sub : NULL);
	if (sqlite3_step(st) != SQLITE_DONE || db_exec(&h->db, "COMMIT"))
		goto rollback;
	r = 0;
	goto out;
rollback:
	pr_error("rule change not stored", LF_STR("error", sqlite3_errmsg(h->db.h)),
		 LF_STR("rule_id", c->rule_id ? c->rule_id : ""));
	db_exec(&h->db, "ROLLBACK");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&h->db.lock);
	return r;
}

int rule_history_query(struct rule_history *h, const char *rule_id, uint64_t limit,
		       json_t **entries)
{
	sqlite3_stmt *st;
	json_t *arr = json_array();
	int r = -EIO, rc;

	pthread_mutex_lock(&h->db.lock);
	st = prep(&h->db, "SELECT version, timestamp_ns, component, action, actor, before, after,"
			  " sub FROM rule_changes WHERE rule_id = ? ORDER BY version DESC LIMIT ?");
	if (!arr || !st)
		goto out;
	sqlite3_bind_text(st, 1, rule_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{s:I,s:I,s:s,s:s,s:s,s:o,s:o}", "version",
				      (json_int_t)sqlite3_column_int64(st, 0), "timestamp_ns",
				      (json_int_t)sqlite3_column_int64(st, 1), "component",
				      (const char *)sqlite3_column_text(st, 2), "action",
				      (const char *)sqlite3_column_text(st, 3), "actor",
				      (const char *)sqlite3_column_text(st, 4), "before",
				      col_text_or_null(st, 5), "after", col_text_or_null(st, 6));

		if (o && sqlite3_column_type(st, 7) != SQLITE_NULL)
			json_object_set_new(o, "sub",
					    json_string((const char *)sqlite3_column_text(st, 7)));
		json_array_append_new(arr, o);
	}
	if (rc != SQLITE_DONE)
		goto out;
	*entries = arr;
	arr = NULL;
	r = 0;
out:
	if (r)
		pr_error("rule history query failed", LF_STR("error", sqlite3_errmsg(h->db.h)));
	sqlite3_finalize(st);
	pthread_mutex_unlock(&h->db.lock);
	json_decref(arr);
	return r;
}
