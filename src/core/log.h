/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Structured logging to stdout (interfaces.md §1.3): one flat JSON object per
 * line (timestamp, level, target, message, fields) or a human-readable line.
 *
 *   pr_info("agent ready", LF_STR("config_path", path), LF_INT("rules", n));
 *   pr_warnf("config reload rejected: %s", reason);
 *
 * Thread-safe: each line is written with one write(2).
 */
#ifndef ES_LOG_H
#define ES_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum es_log_level {
	ES_LOG_ERROR = 0,
	ES_LOG_WARN,
	ES_LOG_INFO,
	ES_LOG_DEBUG,
	ES_LOG_TRACE,
};

enum es_log_format {
	ES_LOG_JSON = 0,
	ES_LOG_TEXT,
};

enum es_lf_type {
	ES_LF_END = 0,
	ES_LF_STR,
	ES_LF_INT,
	ES_LF_UINT,
	ES_LF_BOOL,
	ES_LF_DBL,
};

#define LF_STR(k, v) ES_LF_STR, (const char *)(k), (const char *)(v)
#define LF_INT(k, v) ES_LF_INT, (const char *)(k), (long long)(v)
#define LF_UINT(k, v) ES_LF_UINT, (const char *)(k), (unsigned long long)(v)
#define LF_BOOL(k, v) ES_LF_BOOL, (const char *)(k), (int)(!!(v))
#define LF_DBL(k, v) ES_LF_DBL, (const char *)(k), (double)(v)

#ifndef ES_LOG_TARGET
#define ES_LOG_TARGET "ebpfsentinel"
#endif

void es_log_setup(enum es_log_level level, enum es_log_format format);
/* Redirect output (tests); fd -1 restores stdout. */
void es_log_set_fd(int fd);
bool es_log_enabled(enum es_log_level level);
enum es_log_level es_log_get_level(void);

/* Fields are (type, key, value) triples ended by ES_LF_END; the macros add it. */
void es_log(enum es_log_level level, const char *target, const char *msg, ...);
void es_logf(enum es_log_level level, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse a level name (case-insensitive, `warning` accepted). 0 or -EINVAL. */
int es_log_level_parse(const char *s, enum es_log_level *out);
/* Parse a format name (case-insensitive, `pretty` = text). 0 or -EINVAL. */
int es_log_format_parse(const char *s, enum es_log_format *out);
const char *es_log_level_name(enum es_log_level level);

#define pr_error(msg, ...) es_log(ES_LOG_ERROR, ES_LOG_TARGET, msg, ##__VA_ARGS__, ES_LF_END)
#define pr_warn(msg, ...) es_log(ES_LOG_WARN, ES_LOG_TARGET, msg, ##__VA_ARGS__, ES_LF_END)
#define pr_info(msg, ...) es_log(ES_LOG_INFO, ES_LOG_TARGET, msg, ##__VA_ARGS__, ES_LF_END)
#define pr_debug(msg, ...) es_log(ES_LOG_DEBUG, ES_LOG_TARGET, msg, ##__VA_ARGS__, ES_LF_END)
#define pr_errorf(...) es_logf(ES_LOG_ERROR, ES_LOG_TARGET, __VA_ARGS__)
#define pr_warnf(...) es_logf(ES_LOG_WARN, ES_LOG_TARGET, __VA_ARGS__)
#define pr_infof(...) es_logf(ES_LOG_INFO, ES_LOG_TARGET, __VA_ARGS__)
#define pr_debugf(...) es_logf(ES_LOG_DEBUG, ES_LOG_TARGET, __VA_ARGS__)

#endif
