/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Inside the firewall room: the rule, alias and schedule model, the compiler
 * that turns a rule set into a classifier image (abi/firewall.h), and the
 * kernel installer. Not for other domains (they use firewall.h).
 */
#ifndef ES_FW_H
#define ES_FW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "abi/firewall.h"
#include "api/route.h"
#include "core/cfg.h"
#include "core/net.h"

/* ---- rules ------------------------------------------------------------------ */

enum fw_proto {
	FW_PROTO_ANY = 0,
	FW_PROTO_TCP,
	FW_PROTO_UDP,
	FW_PROTO_ICMP,
};

enum fw_scope {
	FW_SCOPE_GLOBAL = 0,
	FW_SCOPE_IFACE, /* an interface, or an interface_group alias */
	FW_SCOPE_NS,	/* interfaces whose name starts with the namespace */
};

enum fw_route {
	FW_ROUTE_NONE = 0,
	FW_ROUTE_TO,
	FW_ROUTE_REPLY_TO,
	FW_ROUTE_DUP_TO,
};

struct fw_ports {
	struct es_port_range *r;
	size_t n;
};

struct fw_rule {
	char *id;
	uint32_t priority;
	uint8_t action; /* ES_FW_ACT_* as configured (alert mode downgrades at compile) */
	bool enabled;
	bool system; /* anti-lockout: not deletable */
	enum fw_proto proto;
	bool has_src, has_dst;
	struct es_cidr src, dst;
	bool negate_src, negate_dst;
	struct fw_ports sports, dports; /* explicit src_port / dst_port (one range each) */
	char *src_alias, *dst_alias, *src_port_alias, *dst_port_alias;
	uint16_t vlan_id; /* 0 = any */
	uint8_t ct_mask;  /* ES_FW_CTM_*; 0 = any state */
	bool has_flags;
	uint8_t flags_set, flags_mask;
	int icmp_type, icmp_code;  /* -1 = any */
	int dscp_match, dscp_mark; /* -1 = none */
	uint16_t max_states;
	bool has_smac, has_dmac;
	uint8_t smac[6], dmac[6];
	char *schedule;
	enum fw_scope scope;
	char *scope_name;
	enum fw_route route;
	json_t *route_cfg; /* the route_to/reply_to/dup_to value as given */
	size_t order;	   /* config order, for stable priority ties */
};

struct fw_ruleset {
	struct fw_rule *v;
	size_t n, cap;
};

/* Parse and validate one rule object (config or REST body). 0 or -EINVAL. */
int fw_rule_parse(struct es_cfg *c, const json_t *o, const char *path, struct fw_rule *out);
void fw_rule_free(struct fw_rule *r);
int fw_rule_copy(struct fw_rule *dst, const struct fw_rule *src);
/* The REST `Rule` document (interfaces.md §3.4) plus the extra keys. */
json_t *fw_rule_to_json(const struct fw_rule *r);
/* The rule as configuration (every key, for GET /api/v1/config). */
json_t *fw_rule_to_cfg_json(const struct fw_rule *r);

void fw_ruleset_free(struct fw_ruleset *s);
int fw_ruleset_push(struct fw_ruleset *s, const struct fw_rule *r); /* copies */
int fw_ruleset_copy(struct fw_ruleset *dst, const struct fw_ruleset *src);
ssize_t fw_ruleset_find(const struct fw_ruleset *s, const char *id);
void fw_ruleset_remove(struct fw_ruleset *s, size_t i);

/* ---- aliases (network.md §2.4) ------------------------------------------------- */

enum fw_alias_type {
	FW_AT_IP_SET = 0,
	FW_AT_PORT_SET,
	FW_AT_NESTED,
	FW_AT_URL_TABLE,
	FW_AT_GEOIP,
	FW_AT_DYNAMIC_DNS,
	FW_AT_INTERFACE_GROUP,
};

enum fw_alias_kind {
	FW_AK_IP = 0,
	FW_AK_PORT,
};

struct fw_alias {
	char *name;
	enum fw_alias_type type;
	enum fw_alias_kind kind; /* nested: resolved from members */
	char *description;
	struct es_cidr *cidrs; /* ip_set */
	size_t n_cidrs;
	struct es_port_range *ports; /* port_set */
	size_t n_ports;
	char **members; /* nested */
	char *url;	/* url_table */
	uint32_t refresh_secs;
	char **countries;  /* geoip */
	char **hostnames;  /* dynamic_dns */
	char **interfaces; /* interface_group */
};

struct fw_aliases {
	struct fw_alias *v;
	size_t n;
};

extern const char *const fw_alias_type_names[];

/* Parse firewall.aliases (a map). 0 or -EINVAL. */
int fw_aliases_parse(struct es_cfg *c, const json_t *node, const char *path,
		     struct fw_aliases *out);
void fw_aliases_free(struct fw_aliases *a);
const struct fw_alias *fw_alias_find(const struct fw_aliases *a, const char *name);
json_t *fw_alias_to_json(const struct fw_alias *a);

/*
 * Runtime contents of aliases whose members are fetched (url_table,
 * dynamic_dns, interface_group). Thread-safe. fw_alias_dyn_get() copies the
 * current list (NULL/0 when never resolved).
 */
struct fw_alias_dyn_info {
	size_t n;
	int64_t last_ok;  /* unix seconds, 0 = never */
	int64_t last_try; /* unix seconds */
	char error[256];
};
void fw_alias_dyn_set(const char *name, const struct es_cidr *c, size_t n);
void fw_alias_dyn_fail(const char *name, const char *error);
int fw_alias_dyn_get(const char *name, struct es_cidr **out, size_t *n);
bool fw_alias_dyn_info(const char *name, struct fw_alias_dyn_info *out);
void fw_alias_dyn_forget_all(void);

/* Parse a url_table body: one CIDR or address per line, '#' comments. */
int fw_url_table_parse(const char *text, size_t len, struct es_cidr **out, size_t *n);

/*
 * Resolve an alias to its members (nested flattened, duplicates allowed).
 * IP aliases fill cidrs, port aliases ports; caller frees both. 0 or -errno.
 */
int fw_alias_resolve(const struct fw_aliases *a, const char *name, struct es_cidr **cidrs,
		     size_t *n_cidrs, struct es_port_range **ports, size_t *n_ports);
/* Is this alias (or a member) fetched at run time or GeoIP (reported inactive)? */
bool fw_alias_active(const struct fw_aliases *a, const char *name);

/* The refresher thread (url_table, dynamic_dns, interface_group). */
int fw_alias_refresher_start(void (*changed)(void));
void fw_alias_refresher_stop(void);
/* The set it refreshes (copied). */
int fw_alias_refresher_set(const struct fw_aliases *a);

/* ---- schedules (network.md §2.5) ------------------------------------------------- */

struct fw_sched_entry {
	uint8_t days;	/* bit 0 = Monday ... bit 6 = Sunday */
	uint16_t start; /* minutes since midnight */
	uint16_t end;	/* 1..1440; end < start wraps midnight */
};

struct fw_schedule {
	char *name;
	struct fw_sched_entry *e;
	size_t n;
};

struct fw_schedules {
	struct fw_schedule *v;
	size_t n;
};

int fw_schedules_parse(struct es_cfg *c, const json_t *node, const char *path,
		       struct fw_schedules *out);
void fw_schedules_free(struct fw_schedules *s);
const struct fw_schedule *fw_schedule_find(const struct fw_schedules *s, const char *name);
/* Active at local time tm (tm_wday, tm_hour, tm_min)? */
bool fw_schedule_active(const struct fw_schedule *s, const struct tm *tm);
json_t *fw_schedule_to_json(const struct fw_schedule *s);

/* The clock schedules are evaluated against (tests inject one). */
typedef time_t (*fw_clock_fn)(void);
void fw_sched_set_clock(fw_clock_fn fn);
time_t fw_sched_now(void);

/* ---- compiler ------------------------------------------------------------------------ */

struct fw_compile_in {
	const struct fw_rule *rules; /* user rules, any order */
	size_t n_rules;
	const struct fw_rule *sys; /* system rules (anti-lockout) */
	size_t n_sys;
	const struct fw_aliases *aliases;
	const struct fw_schedules *schedules;
	const struct tm *now; /* local time for schedules; NULL = every scheduled rule active */
	bool alert_mode;      /* deny installed as log */
	uint8_t default_policy;
	/* Agent interfaces in position order (iface_mask bits, scope). */
	char *const *ifnames;
	size_t n_ifnames;
	/* Numeric rule id for a string id (stable across compiles). */
	uint32_t (*rule_num)(const char *id, void *arg);
	void *rule_num_arg;
	uint32_t generation;
};

struct fw_mac_entry {
	struct es_fw_mac_key k;
	uint16_t cls;
};

/* A compiled bank: what the kernel installer copies into the inactive bank. */
struct fw_image {
	struct es_fw_bank hdr;
	struct es_fw_cls *cls; /* n_cls records (0 = none, 1 = all) */
	uint32_t n_cls, cap_cls;
	uint16_t *trie; /* ES_FW_TRIE_PER_BANK entries; chunks in use: n_chunks */
	uint32_t n_chunks;
	struct es_fw_skip *skip;
	uint32_t n_skip;
	uint16_t *vtab; /* ES_FW_VT_ROWS * 256 entries */
	struct es_fw_rule_v4 *r4;
	struct es_fw_rule_v6 *r6;
	const struct fw_rule **pos_rule; /* position → user rule (borrowed from the input) */
	bool *pos_fam[2];		 /* position installed for IPv4 / IPv6 */
	struct es_fw_sys_rule sys[ES_FW_SYS_MAX];
	const struct fw_rule *sys_rule[ES_FW_SYS_MAX]; /* borrowed from the input */
	uint16_t *sys_port;			       /* 65536 */
	struct fw_mac_entry *macs;
	size_t n_macs;
	/* Diagnostics: rules skipped and why (disabled, unscheduled, never matches). */
	size_t n_disabled, n_unscheduled, n_never;
};

/*
 * Compile. Returns 0 with *out filled (free with fw_image_free), or -errno:
 * -E2BIG when the rule set needs more classes, chunks or skip nodes than a
 * bank holds (why says which), -ENOMEM.
 */
int fw_compile(const struct fw_compile_in *in, struct fw_image *out, char *why, size_t whylen);
void fw_image_free(struct fw_image *img);

/*
 * What the kernel would decide on the image, in plain C (tests compare it
 * with a reference matcher and with the real program). Returns the position
 * or -1; fields as the kernel sees them.
 */
struct fw_pkt_view {
	uint8_t src[16], dst[16]; /* mapped */
	bool v6;
	uint8_t proto;
	bool ports; /* TCP/UDP with an L4 header */
	uint16_t sport, dport;
	bool icmp; /* ICMP (v4) / ICMPv6 (v6) with a header */
	uint8_t icmp_type, icmp_code;
	bool tcp; /* TCP with a header */
	uint8_t tcp_flags;
	uint8_t dscp;
	uint16_t vlan;
	uint8_t ct_state; /* ES_FW_CT_* */
	uint32_t ifpos;	  /* ES_FW_VT_NONE_IFACE when not an agent interface */
	uint8_t smac[6], dmac[6];
};
int fw_image_lookup(const struct fw_image *img, const struct fw_pkt_view *p);

/* Reference: does the rule (as compiled: aliases, scope) match? For tests. */
bool fw_rule_matches(const struct fw_compile_in *in, const struct fw_rule *r,
		     const struct fw_pkt_view *p);

/* ---- kernel installer ----------------------------------------------------------------- */

struct bpf_object;
struct fw_kern;

/* Bind to the loaded maps (mmap). 0 or -errno. */
int fw_kern_open(struct bpf_object *obj, struct fw_kern **out);
void fw_kern_close(struct fw_kern *k);
/* Write img into the inactive bank, flip, wait for readers of the old bank. */
int fw_kern_install(struct fw_kern *k, const struct fw_image *img);
/* Agent interface ifindexes by position (fw_ifpos). */
int fw_kern_set_ifaces(struct fw_kern *k, const int *ifindex, size_t n);
/* Hits of the active bank's positions, plus what earlier banks counted. */
uint64_t fw_kern_hits(struct fw_kern *k, const char *rule_id);
int fw_kern_active_bank(struct fw_kern *k);

/* LPM coordinator: the firewall's maps appeared (true) or went away. */
void fw_lpm_kernel_attach(bool on);

/* ---- the domain's runtime (firewall.c), for the REST layer ---------------------------- */

struct fw_anti_lockout {
	bool enabled;
	char **interfaces; /* NULL-terminated */
	uint16_t *ports;
	size_t n_ports;
};

/* The parsed `firewall:` section. Immutable; reference-counted (the runtime keeps it). */
struct fw_cfg {
	int refs;
	bool enabled;
	int mode;	    /* enum fw_mode */
	int default_policy; /* enum fw_policy */
	struct fw_ruleset rules;
	struct fw_aliases aliases;
	struct fw_schedules schedules;
	struct fw_anti_lockout anti_lockout;
	/* firewall.scrub belongs to the scrub domain (its own nested section). */
};

/*
 * Check a rule's references: aliases exist and are of the right kind, the
 * schedule exists. 0, or -EINVAL with the offending key and message.
 */
int fw_rule_check_refs(const struct fw_rule *r, const struct fw_aliases *a,
		       const struct fw_schedules *s, const char **key, char *why, size_t len);

/* What readers (REST) see: a consistent snapshot, never blocked by a compile. */
struct fw_snap {
	int refs;
	struct fw_cfg *cfg;	 /* aliases, schedules (a reference) */
	struct fw_ruleset rules; /* user rules, by priority then config order */
	struct fw_ruleset sys;	 /* anti-lockout rules */
	bool *sched_active;	 /* per user rule: its schedule is active (true without one) */
	bool enabled, loaded;
	uint32_t generation;
	size_t installed; /* rules in the kernel (system included) */
	char last_error[256];
};

struct fw_snap *fw_snap_get(void);
void fw_snap_put(struct fw_snap *s);

/*
 * Runtime changes (REST). Each returns once the kernel runs the new set.
 * fw_rt_add: -EEXIST duplicate id, -EINVAL bad reference or compile refusal
 * (why says which). fw_rt_delete: -ENOENT, -EPERM for system rules; *before
 * gets the removed rule's JSON. fw_rt_replace: the user rule with r's id
 * becomes r (keeping its configuration order); -ENOENT, -EPERM, -EINVAL as
 * above; *before gets the replaced rule's JSON.
 */
int fw_rt_add(const struct fw_rule *r, char *why, size_t len);
int fw_rt_delete(const char *id, json_t **before);
int fw_rt_replace(const struct fw_rule *r, json_t **before, char *why, size_t len);
uint64_t fw_rt_hits(const char *id);
/* The rule by id (user or system), as REST JSON, or NULL. */
json_t *fw_rt_rule_json(const char *id, bool *system, char **scope);

extern const struct es_route fw_routes[];

#endif
