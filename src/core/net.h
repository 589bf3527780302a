/* SPDX-License-Identifier: AGPL-3.0-only */
/* Addresses, CIDRs and port ranges. Addresses are 16 bytes, network order,
 * IPv4 mapped (::ffff:a.b.c.d), matching the kernel's keys. */
#ifndef ES_NET_H
#define ES_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct es_addr {
	uint8_t b[16];
	uint8_t family; /* 4 or 6 */
};

struct es_cidr {
	struct es_addr addr; /* host bits cleared */
	uint8_t plen;	     /* family prefix length: 0-32 or 0-128 */
};

struct es_port_range {
	uint16_t start;
	uint16_t end;
};

/* Parse an IP literal (IPv6 with or without brackets). 0 or -EINVAL. */
int es_addr_parse(const char *s, struct es_addr *out);
/* Format an address without brackets. */
void es_addr_format(const struct es_addr *a, char *buf, size_t len);
/* Host-order words of interfaces.md §0 ("addr4"): IPv4 in word 0. */
void es_addr_words(const struct es_addr *a, uint32_t w[4]);
void es_addr_from_words(struct es_addr *a, const uint32_t w[4], bool v6);

/*
 * Parse "a.b.c.d/n", "x::/n" or a bare address (a host route). Host bits are
 * cleared. On failure returns -EINVAL and writes the reason into why.
 */
int es_cidr_parse(const char *s, struct es_cidr *out, char *why, size_t whylen);
/* Host routes print without prefix, others as addr/plen. */
void es_cidr_format(const struct es_cidr *c, char *buf, size_t len);
/* Always addr/plen. */
void es_cidr_format_full(const struct es_cidr *c, char *buf, size_t len);
bool es_cidr_contains(const struct es_cidr *c, const struct es_addr *a);
/* Prefix length over the 128-bit mapped form (IPv4 /n is 96 + n). */
static inline unsigned es_cidr_plen128(const struct es_cidr *c)
{
	return c->addr.family == 4 ? 96u + c->plen : c->plen;
}

/*
 * Parse "80" or "80-443" (start <= end, each 0-65535). -EINVAL with the
 * reason in why.
 */
int es_port_range_parse(const char *s, struct es_port_range *out, char *why, size_t whylen);
void es_port_range_format(const struct es_port_range *r, char *buf, size_t len);

/* ISO 3166 alpha-2 shape: two ASCII letters, either case. */
bool es_country_code_valid(const char *s);

/* Rule identifiers: non-empty, [A-Za-z0-9_-], at most 256 bytes. */
bool es_id_valid(const char *s);

#endif
