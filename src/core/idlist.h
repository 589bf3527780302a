/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Arrays of records whose first member is `char *id` (a domain's runtime
 * rules or policies): the steps their REST add and delete share. The caller
 * holds its own lock and owns the records.
 */
#ifndef ES_IDLIST_H
#define ES_IDLIST_H

#include <stddef.h>
#include <sys/types.h>

/* Index of the record with this id among n of `size` bytes, or -1. */
ssize_t es_idlist_find(const void *items, size_t n, size_t size, const char *id);

/*
 * Room for record n + 1 (the array may move): 0, -EEXIST when the id is
 * taken, -ENOSPC at max records, -ENOMEM. The new slot is not initialised.
 */
int es_idlist_grow(void **items, size_t n, size_t size, size_t max, const char *id);

/* Close the gap of record i (already cleared by the caller); *n shrinks by one. */
void es_idlist_remove(void *items, size_t *n, size_t size, size_t i);

#endif
