/* SPDX-License-Identifier: AGPL-3.0-only */
/* The daemon: lifecycle, reload triggers and process-wide facts. */
#ifndef ES_AGENT_H
#define ES_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"

struct es_daemon_opts {
	const char *config_path;
	bool have_level;
	enum es_log_level level;
	bool have_format;
	enum es_log_format format;
};

/* Run the daemon in the foreground; returns the process exit status. */
int es_daemon_run(const struct es_daemon_opts *o);

/* Queue a configuration reload. 0, or -EBUSY when one is already queued. */
int es_daemon_request_reload(void);
uint64_t es_daemon_uptime_seconds(void);
/* interfaces.md §1.3 and §12 item 11. */
bool es_daemon_ebpf_loaded(void);

/*
 * Reload from path: validate the whole file, apply domain by domain, roll
 * back on failure, publish on success. 0, or -errno with the reason in why.
 */
int es_reload_from_file(const char *path, char *why, size_t whylen);

struct es_domain;
/*
 * The apply step of a reload over a domain table (exposed for tests): apply
 * new_cfg[i] over old_cfg[i] in table order, roll back the applied domains
 * newest first when one fails, count every outcome, and audit each domain
 * once all succeeded. 0, or -errno with the reason in why.
 */
int es_reload_apply(const struct es_domain *const *table, unsigned n, void *const *old_cfg,
		    void *const *new_cfg, char *why, size_t whylen);

/* Register the standard metric families and collectors (once, at startup). */
void es_agent_metrics_init(void);
/* Process sampler (5 s): RSS and CPU share. */
void es_process_sample(void);

#endif
