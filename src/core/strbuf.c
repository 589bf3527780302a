// SPDX-License-Identifier: AGPL-3.0-only
#include "core/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool sb_reserve(struct es_sb *sb, size_t extra)
{
	size_t need, cap;
	char *nb;

	if (sb->failed)
		return false;
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	nb = realloc(sb->buf, cap);
	if (!nb) {
		sb->failed = true;
		return false;
	}
	sb->buf = nb;
	sb->cap = cap;
	return true;
}

void es_sb_append(struct es_sb *sb, const char *s, size_t n)
{
	if (!sb_reserve(sb, n))
		return;
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void es_sb_puts(struct es_sb *sb, const char *s)
{
	es_sb_append(sb, s, strlen(s));
}

void es_sb_putc(struct es_sb *sb, char c)
{
	es_sb_append(sb, &c, 1);
}

void es_sb_vprintf(struct es_sb *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || !sb_reserve(sb, (size_t)n))
		return;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void es_sb_printf(struct es_sb *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	es_sb_vprintf(sb, fmt, ap);
	va_end(ap);
}

void es_sb_json_str(struct es_sb *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	es_sb_putc(sb, '"');
	for (; *p; p++) {
		switch (*p) {
		case '"': es_sb_puts(sb, "\\\""); break;
		case '\\': es_sb_puts(sb, "\\\\"); break;
		case '\n': es_sb_puts(sb, "\\n"); break;
		case '\r': es_sb_puts(sb, "\\r"); break;
		case '\t': es_sb_puts(sb, "\\t"); break;
		default:
			if (*p < 0x20)
				es_sb_printf(sb, "\\u%04x", *p);
			else
				es_sb_putc(sb, (char)*p);
		}
	}
	es_sb_putc(sb, '"');
}

const char *es_sb_str(struct es_sb *sb)
{
	return sb->buf && !sb->failed ? sb->buf : "";
}

char *es_sb_steal(struct es_sb *sb)
{
	char *b = sb->failed ? NULL : sb->buf;

	if (sb->failed)
		free(sb->buf);
	else if (!b)
		b = strdup("");
	*sb = (struct es_sb)ES_SB_INIT;
	return b;
}

void es_sb_reset(struct es_sb *sb)
{
	sb->len = 0;
	sb->failed = false;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void es_sb_free(struct es_sb *sb)
{
	free(sb->buf);
	*sb = (struct es_sb)ES_SB_INIT;
}
