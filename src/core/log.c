// SPDX-License-Identifier: AGPL-3.0-only
#include "core/log.h"
#include "core/strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = ES_LOG_INFO;
static _Atomic int log_format = ES_LOG_JSON;
static _Atomic int log_fd = -1;

static const char *const level_upper[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
static const char *const level_lower[] = {"error", "warn", "info", "debug", "trace"};

void es_log_setup(enum es_log_level level, enum es_log_format format)
{
	atomic_store(&log_level, level);
	atomic_store(&log_format, format);
}

void es_log_set_fd(int fd)
{
	atomic_store(&log_fd, fd);
}

bool es_log_enabled(enum es_log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

enum es_log_level es_log_get_level(void)
{
	return atomic_load(&log_level);
}

const char *es_log_level_name(enum es_log_level level)
{
	return level <= ES_LOG_TRACE ? level_lower[level] : "info";
}

int es_log_level_parse(const char *s, enum es_log_level *out)
{
	for (int i = 0; i <= ES_LOG_TRACE; i++) {
		if (!strcasecmp(s, level_lower[i])) {
			*out = i;
			return 0;
		}
	}
	if (!strcasecmp(s, "warning")) {
		*out = ES_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

int es_log_format_parse(const char *s, enum es_log_format *out)
{
	if (!strcasecmp(s, "json"))
		*out = ES_LOG_JSON;
	else if (!strcasecmp(s, "text") || !strcasecmp(s, "pretty"))
		*out = ES_LOG_TEXT;
	else
		return -EINVAL;
	return 0;
}

static void put_timestamp(struct es_sb *sb)
{
	struct timespec ts;
	struct tm tm;
	char buf[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	es_sb_printf(sb, "%s.%06ldZ", buf, ts.tv_nsec / 1000);
}

static void emit(struct es_sb *sb)
{
	int fd = atomic_load(&log_fd);
	const char *p = es_sb_str(sb);
	size_t left = sb->len;

	if (fd < 0)
		fd = STDOUT_FILENO;
	while (left > 0) {
		ssize_t n = write(fd, p, left);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		left -= (size_t)n;
	}
}

static void vlog_fields(enum es_log_level level, const char *target, const char *msg, va_list ap)
{
	bool json = atomic_load(&log_format) == ES_LOG_JSON;
	struct es_sb sb = ES_SB_INIT;
	int type;

	if (json) {
		es_sb_puts(&sb, "{\"timestamp\":\"");
		put_timestamp(&sb);
		es_sb_printf(&sb, "\",\"level\":\"%s\",\"target\":", level_upper[level]);
		es_sb_json_str(&sb, target);
		es_sb_puts(&sb, ",\"message\":");
		es_sb_json_str(&sb, msg);
	} else {
		put_timestamp(&sb);
		es_sb_printf(&sb, " %5s %s: %s", level_upper[level], target, msg);
	}

	while ((type = va_arg(ap, int)) != ES_LF_END) {
		const char *key = va_arg(ap, const char *);

		if (json) {
			/* A field never shadows the line's own keys: one JSON key each. */
			char renamed[96];

			if (!strcmp(key, "timestamp") || !strcmp(key, "level") ||
			    !strcmp(key, "target") || !strcmp(key, "message")) {
				snprintf(renamed, sizeof(renamed), "field_%s", key);
				key = renamed;
			}
			es_sb_putc(&sb, ',');
			es_sb_json_str(&sb, key);
			es_sb_putc(&sb, ':');
		} else {
			es_sb_printf(&sb, " %s=", key);
		}
		switch (type) {
		case ES_LF_STR: {
			const char *v = va_arg(ap, const char *);

			if (json)
				es_sb_json_str(&sb, v ? v : "");
			else if (v && strpbrk(v, " \t\"="))
				es_sb_json_str(&sb, v);
			else
				es_sb_puts(&sb, v ? v : "");
			break;
		}
		case ES_LF_INT: es_sb_printf(&sb, "%lld", va_arg(ap, long long)); break;
		case ES_LF_UINT: es_sb_printf(&sb, "%llu", va_arg(ap, unsigned long long)); break;
		case ES_LF_BOOL: es_sb_puts(&sb, va_arg(ap, int) ? "true" : "false"); break;
		case ES_LF_DBL: es_sb_printf(&sb, "%g", va_arg(ap, double)); break;
		default: goto out; /* malformed field list: stop rather than read garbage */
		}
	}
out:
	es_sb_puts(&sb, json ? "}\n" : "\n");
	emit(&sb);
	es_sb_free(&sb);
}

void es_log(enum es_log_level level, const char *target, const char *msg, ...)
{
	va_list ap;

	if (!es_log_enabled(level))
		return;
	va_start(ap, msg);
	vlog_fields(level, target, msg, ap);
	va_end(ap);
}

static void log_fields_none(enum es_log_level level, const char *target, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	vlog_fields(level, target, msg, ap);
	va_end(ap);
}

void es_logf(enum es_log_level level, const char *target, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	if (!es_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_fields_none(level, target, buf, ES_LF_END);
}
