/* SPDX-License-Identifier: AGPL-3.0-only */
/* Growable byte buffer. On allocation failure the buffer is marked failed and
 * further appends are no-ops; check es_sb_failed() once at the end. */
#ifndef ES_STRBUF_H
#define ES_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct es_sb {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;
};

#define ES_SB_INIT                                                                                 \
	{                                                                                          \
		0                                                                                  \
	}

void es_sb_append(struct es_sb *sb, const char *s, size_t n);
void es_sb_puts(struct es_sb *sb, const char *s);
void es_sb_putc(struct es_sb *sb, char c);
void es_sb_printf(struct es_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void es_sb_vprintf(struct es_sb *sb, const char *fmt, va_list ap);
/* Append s as a JSON string literal, quotes included. */
void es_sb_json_str(struct es_sb *sb, const char *s);
/* NUL-terminated contents ("" when empty); owned by sb. */
const char *es_sb_str(struct es_sb *sb);
/* Hand the buffer to the caller (free() it); sb is reset. NULL if failed. */
char *es_sb_steal(struct es_sb *sb);
void es_sb_reset(struct es_sb *sb);
void es_sb_free(struct es_sb *sb);
static inline bool es_sb_failed(const struct es_sb *sb)
{
	return sb->failed;
}

#endif
