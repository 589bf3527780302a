/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The domain contract. Each security domain exports one `const struct
 * es_domain`; the agent keeps a static table (domains.c) and drives every
 * domain through it: parse+validate its config section, start, apply a new
 * validated config on reload, stop, report status and metrics, serve routes.
 * Adding a domain means adding a folder and one line in the table.
 */
#ifndef ES_DOMAIN_H
#define ES_DOMAIN_H

#include <jansson.h>
#include <stdbool.h>

#include "api/route.h"
#include "core/cfg.h"

struct es_config;

/* Domain flags. */
#define ES_DOMAIN_EARLY 0x01   /* started before the listeners (stores, identity) */
#define ES_DOMAIN_FATAL 0x02   /* a failing start stops the agent (exit 1) */
#define ES_DOMAIN_RESTART 0x04 /* section changes take effect after a restart only */

struct es_domain {
	const char *name;    /* also the metrics/audit component name */
	const char *section; /* top-level config key it owns, or NULL */
	unsigned flags;	     /* ES_DOMAIN_* */

	/*
	 * Parse and validate `node` (the section, NULL when absent: defaults).
	 * `root` is the whole document, for the few cross-section checks.
	 * Returns an owned config or NULL with the error recorded in c.
	 */
	void *(*parse)(struct es_cfg *c, const json_t *node, const char *path, const json_t *root);
	void (*free_cfg)(void *cfg);
	/* The effective section with defaults filled in and secrets masked. */
	json_t *(*to_json)(const void *cfg);
	bool (*enabled)(const void *cfg);

	/*
	 * Runtime. All optional. start/apply return 0 or -errno; a failing
	 * start degrades only this domain (unless ES_DOMAIN_FATAL).
	 *
	 * apply(old, new) brings the running domain from old to new on reload
	 * (and back, for rollback): atomic for its readers, and complete — a
	 * feature enabled by the new config loads and attaches its programs, a
	 * disabled one detaches them, without a restart. On failure it leaves
	 * the domain as it was under old.
	 */
	int (*start)(const void *cfg);
	int (*apply)(const void *old_cfg, const void *new_cfg);
	/*
	 * The `after` document of the reload audit record (`<name>-config`),
	 * e.g. {"rule_count":N,"mode":"alert"}. Optional: derived from to_json
	 * when absent.
	 */
	json_t *(*summary)(const void *cfg);
	void (*stop)(void);
	/* Add runtime status fields to obj (at least "active"). */
	void (*status)(json_t *obj);
	/* Refresh this domain's metric samples before a scrape. */
	void (*metrics)(void);
	/* Called once a second on the main thread (timers, sweeps, refreshes). */
	void (*tick)(void);

	const struct es_route *routes; /* terminated by a NULL method */
};

/* The table, in reload-apply order (interfaces.md §10.2). */
extern const struct es_domain *const es_domains[];
extern const unsigned es_n_domains;

/* Index of a domain by name, or -1. */
int es_domain_index(const char *name);

/*
 * A domain whose section is accepted and checked for shape, but whose engine
 * is not built yet; it reports itself inactive in status.
 */
#define ES_DOMAIN_PENDING(var, nm)                                                                 \
	const struct es_domain var = {                                                             \
	    .name = nm,                                                                            \
	    .section = nm,                                                                         \
	    .parse = es_pending_parse,                                                             \
	    .free_cfg = es_pending_free,                                                           \
	    .to_json = es_pending_to_json,                                                         \
	    .enabled = es_pending_enabled,                                                         \
	}

void *es_pending_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root);
void es_pending_free(void *cfg);
json_t *es_pending_to_json(const void *cfg);
bool es_pending_enabled(const void *cfg);

#endif
