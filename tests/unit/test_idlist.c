// SPDX-License-Identifier: AGPL-3.0-only
/* core/idlist: the find / grow / remove steps of the domains' runtime lists. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "core/idlist.h"

struct rec {
	char *id;
	int v;
};

Test(idlist, grow_refuses_duplicates_and_the_cap_and_remove_closes_the_gap)
{
	struct rec *a = NULL;
	size_t n = 0;
	char *ids[] = {"a", "b", "c"};

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(es_idlist_grow((void **)&a, n, sizeof(*a), 3, ids[i]), 0);
		a[n++] = (struct rec){ids[i], i};
	}
	cr_expect_eq(es_idlist_grow((void **)&a, n, sizeof(*a), 4, "b"), -EEXIST);
	cr_expect_eq(es_idlist_grow((void **)&a, n, sizeof(*a), 3, "d"), -ENOSPC);
	cr_expect_eq(es_idlist_find(a, n, sizeof(*a), "c"), 2);
	cr_expect_eq(es_idlist_find(a, n, sizeof(*a), "z"), -1);
	es_idlist_remove(a, &n, sizeof(*a), 0);
	cr_expect_eq(n, 2);
	cr_expect_str_eq(a[0].id, "b");
	cr_expect_eq(a[1].v, 2);
	cr_expect_eq(es_idlist_find(a, n, sizeof(*a), "a"), -1);
	es_idlist_remove(a, &n, sizeof(*a), 1);
	cr_expect_eq(n, 1);
	cr_expect_str_eq(a[0].id, "b");
	free(a);
}
