// SPDX-License-Identifier: AGPL-3.0-only
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int es_addr_parse(const char *s, struct es_addr *out)
{
	char tmp[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(s);

	memset(out, 0, sizeof(*out));
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, out->b) != 1)
			return -EINVAL;
		out->family = 6;
		return 0;
	}
	if (inet_pton(AF_INET, s, out->b + 12) == 1) {
		out->b[10] = out->b[11] = 0xff;
		out->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->b) == 1) {
		out->family = 6;
		return 0;
	}
	return -EINVAL;
}

void es_addr_format(const struct es_addr *a, char *buf, size_t len)
{
	if (a->family == 4)
		inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a->b, buf, (socklen_t)len);
}

void es_addr_words(const struct es_addr *a, uint32_t w[4])
{
	const uint8_t *p = a->family == 4 ? a->b + 12 : a->b;

	memset(w, 0, 4 * sizeof(*w));
	for (int i = 0; i < (a->family == 4 ? 1 : 4); i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
}

void es_addr_from_words(struct es_addr *a, const uint32_t w[4], bool v6)
{
	memset(a, 0, sizeof(*a));
	a->family = v6 ? 6 : 4;
	if (!v6) {
		a->b[10] = a->b[11] = 0xff;
		a->b[12] = w[0] >> 24;
		a->b[13] = w[0] >> 16;
		a->b[14] = w[0] >> 8;
		a->b[15] = w[0];
		return;
	}
	for (int i = 0; i < 4; i++) {
		a->b[4 * i] = w[i] >> 24;
		a->b[4 * i + 1] = w[i] >> 16;
		a->b[4 * i + 2] = w[i] >> 8;
		a->b[4 * i + 3] = w[i];
	}
}

static void mask_host_bits(struct es_cidr *c)
{
	unsigned plen = es_cidr_plen128(c);

	for (unsigned bit = plen; bit < 128; bit++)
		c->addr.b[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
}

int es_cidr_parse(const char *s, struct es_cidr *out, char *why, size_t whylen)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long plen;
	char *end;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(why, whylen, "invalid IP address");
		return -EINVAL;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (es_addr_parse(addr, &out->addr)) {
		snprintf(why, whylen, "invalid IP address syntax");
		return -EINVAL;
	}
	if (!slash) {
		out->plen = out->addr.family == 4 ? 32 : 128;
		return 0;
	}
	if (!slash[1] || slash[1] == '-' || slash[1] == '+') {
		snprintf(why, whylen, "invalid prefix length");
		return -EINVAL;
	}
	errno = 0;
	plen = strtoul(slash + 1, &end, 10);
	if (*end || errno) {
		snprintf(why, whylen, "invalid prefix length");
		return -EINVAL;
	}
	if (plen > (out->addr.family == 4 ? 32u : 128u)) {
		snprintf(why, whylen, "prefix length %lu exceeds maximum %u for IPv%u", plen,
			 out->addr.family == 4 ? 32u : 128u, out->addr.family);
		return -EINVAL;
	}
	out->plen = (uint8_t)plen;
	mask_host_bits(out);
	return 0;
}

void es_cidr_format_full(const struct es_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	es_addr_format(&c->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, c->plen);
}

void es_cidr_format(const struct es_cidr *c, char *buf, size_t len)
{
	if (c->plen == (c->addr.family == 4 ? 32 : 128))
		es_addr_format(&c->addr, buf, len);
	else
		es_cidr_format_full(c, buf, len);
}

bool es_cidr_contains(const struct es_cidr *c, const struct es_addr *a)
{
	unsigned plen = es_cidr_plen128(c);

	if (a->family != c->addr.family)
		return false;
	for (unsigned i = 0; i < plen / 8; i++)
		if (a->b[i] != c->addr.b[i])
			return false;
	if (plen % 8) {
		uint8_t m = (uint8_t)(0xff00u >> (plen % 8));

		if ((a->b[plen / 8] & m) != c->addr.b[plen / 8])
			return false;
	}
	return true;
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -ERANGE;
	*out = (uint16_t)v;
	return 0;
}

int es_port_range_parse(const char *s, struct es_port_range *out, char *why, size_t whylen)
{
	const char *dash = strchr(s, '-');
	int r;

	if (!dash) {
		r = parse_port(s, strlen(s), &out->start);
		if (r) {
			snprintf(why, whylen,
				 r == -ERANGE ? "port out of range (0-65535)"
					      : "invalid port number");
			return -EINVAL;
		}
		out->end = out->start;
		return 0;
	}
	if ((r = parse_port(s, (size_t)(dash - s), &out->start)) ||
	    (r = parse_port(dash + 1, strlen(dash + 1), &out->end))) {
		snprintf(why, whylen,
			 r == -ERANGE ? "port out of range (0-65535)" : "invalid port number");
		return -EINVAL;
	}
	if (out->start > out->end) {
		snprintf(why, whylen, "start port %u is greater than end port %u", out->start,
			 out->end);
		return -EINVAL;
	}
	return 0;
}

void es_port_range_format(const struct es_port_range *r, char *buf, size_t len)
{
	if (r->start == r->end)
		snprintf(buf, len, "%u", r->start);
	else
		snprintf(buf, len, "%u-%u", r->start, r->end);
}

bool es_id_valid(const char *s)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++, n++) {
		char ch = *s;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return n <= 256;
}

bool es_country_code_valid(const char *s)
{
	return s && strlen(s) == 2 && ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') &&
	       ((s[1] | 0x20) >= 'a' && (s[1] | 0x20) <= 'z');
}
