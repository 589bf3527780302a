/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The whole configuration: the `agent` section typed here, every other
 * section parsed by its domain. A loaded config is immutable and
 * reference-counted; readers take a reference with es_config_get().
 */
#ifndef ES_CONFIG_H
#define ES_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/cfg.h"
#include "core/log.h"

#define ES_DEFAULT_CONFIG_PATH "/etc/ebpfsentinel/config.yaml"
#define ES_MAX_DOMAINS 32

enum es_xdp_mode {
	ES_XDP_AUTO = 0,
	ES_XDP_NATIVE,
	ES_XDP_GENERIC,
};

struct es_tls_cfg {
	bool enabled;
	char *cert_path;
	char *key_path;
};

struct es_agent_cfg {
	char **interfaces; /* NULL-terminated */
	size_t n_interfaces;
	char *bind_address;
	uint16_t http_port;
	uint16_t grpc_port;
	uint16_t metrics_port;
	enum es_log_level log_level;
	enum es_log_format log_format;
	bool swagger_ui;
	char *ebpf_program_dir; /* NULL when unset */
	struct es_tls_cfg tls;
	/* Extensions (unknown agent keys are ignored upstream, so configs stay portable). */
	enum es_xdp_mode xdp_mode; /* interfaces.md §12 item 10 */
	char *bpffs_dir;	   /* pin directory */
};

struct es_config {
	int refs;
	char *path;
	struct es_doc doc;
	struct es_agent_cfg agent;
	void *dcfg[ES_MAX_DOMAINS]; /* by index in es_domains[] */
	char **warnings;	    /* to log once logging runs */
	size_t n_warnings;
};

/*
 * Load, parse and validate a configuration file. Returns a config with one
 * reference, or NULL with err filled (render it with es_error_format()).
 */
struct es_config *es_config_load(const char *path, struct es_error *err);
/* Same from text (tests, fuzzing). */
struct es_config *es_config_parse(const char *text, size_t len, const char *path,
				  struct es_error *err);
void es_config_put(struct es_config *cfg);
struct es_config *es_config_ref(struct es_config *cfg);

/* The published (running) configuration. */
struct es_config *es_config_current(void);     /* new reference or NULL */
void es_config_publish(struct es_config *cfg); /* takes a reference */

/* A domain's parsed section in cfg, by domain name. */
const void *es_config_domain(const struct es_config *cfg, const char *name);

/* Effective configuration as JSON, secrets masked (GET /api/v1/config). */
json_t *es_config_to_json(const struct es_config *cfg);

#endif
