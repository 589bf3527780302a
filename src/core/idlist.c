// SPDX-License-Identifier: AGPL-3.0-only
#include "core/idlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

ssize_t es_idlist_find(const void *items, size_t n, size_t size, const char *id)
{
	for (size_t i = 0; i < n; i++) {
		const char *rid = *(char *const *)((const char *)items + i * size);

		if (rid && !strcmp(rid, id))
			return (ssize_t)i;
	}
	return -1;
}

int es_idlist_grow(void **items, size_t n, size_t size, size_t max, const char *id)
{
	void *grown;

	if (es_idlist_find(*items, n, size, id) >= 0)
		return -EEXIST;
	if (n >= max)
		return -ENOSPC;
	grown = realloc(*items, (n + 1) * size);
	if (!grown)
		return -ENOMEM;
	*items = grown;
	return 0;
}

void es_idlist_remove(void *items, size_t *n, size_t size, size_t i)
{
	char *at = (char *)items + i * size;

	memmove(at, at + size, (*n - i - 1) * size);
	(*n)--;
}
