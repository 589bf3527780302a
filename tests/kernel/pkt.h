/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * A small frame builder for kernel tests: append headers in wire order, then
 * pb_finish() fills lengths and the IPv4 header checksum.
 *
 *   struct pb p; pb_init(&p);
 *   pb_eth(&p, ETH_P_8021Q); pb_tag(&p, 100, ETH_P_IP);
 *   pb_ipv4(&p, "198.51.100.1", "198.51.100.2", IPPROTO_TCP, 0, 0);
 *   pb_tcp(&p, 1234, 80, TH_SYN); pb_finish(&p);
 */
#ifndef ES_TEST_PKT_H
#define ES_TEST_PKT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#define PB_ETH_IP 0x0800
#define PB_ETH_IPV6 0x86DD
#define PB_ETH_8021Q 0x8100
#define PB_ETH_8021AD 0x88A8
#define PB_ETH_ARP 0x0806

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

struct pb {
	uint8_t buf[2048];
	size_t len;
	int l3;	 /* offset of the IP header, -1 when none */
	int ver; /* 4 or 6 */
	int l4;	 /* offset of the L4 header, -1 when none */
	uint8_t l4proto;
};

static inline void pb_init(struct pb *p)
{
	memset(p, 0, sizeof(*p));
	p->l3 = p->l4 = -1;
}

static inline void pb_put(struct pb *p, const void *d, size_t n)
{
	memcpy(p->buf + p->len, d, n);
	p->len += n;
}

static inline void pb_u8(struct pb *p, uint8_t v)
{
	pb_put(p, &v, 1);
}
static inline void pb_be16(struct pb *p, uint16_t v)
{
	v = htons(v);
	pb_put(p, &v, 2);
}
static inline void pb_be32(struct pb *p, uint32_t v)
{
	v = htonl(v);
	pb_put(p, &v, 4);
}
static inline void pb_zero(struct pb *p, size_t n)
{
	memset(p->buf + p->len, 0, n);
	p->len += n;
}

static const uint8_t pb_dst_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static const uint8_t pb_src_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

static inline void pb_eth(struct pb *p, uint16_t type)
{
	pb_put(p, pb_dst_mac, 6);
	pb_put(p, pb_src_mac, 6);
	pb_be16(p, type);
}

/* A VLAN tag (TCI = vid) followed by the next ethertype. */
static inline void pb_tag(struct pb *p, uint16_t vid, uint16_t next)
{
	pb_be16(p, vid & 0x0fff);
	pb_be16(p, next);
}

/* IPv4 header with opt_words 32-bit words of options (NOPs) and frag = the
 * host-order flags/offset field (0x2000 = MF, low 13 bits = offset). */
static inline void pb_ipv4(struct pb *p, const char *src, const char *dst, uint8_t proto,
			   int opt_words, uint16_t frag)
{
	struct in_addr s, d;

	inet_pton(AF_INET, src, &s);
	inet_pton(AF_INET, dst, &d);
	p->l3 = (int)p->len;
	p->ver = 4;
	p->l4proto = proto;
	pb_u8(p, (uint8_t)(0x40 | (5 + opt_words)));
	pb_u8(p, 0x00); /* tos */
	pb_be16(p, 0);	/* total length: pb_finish */
	pb_be16(p, 0x1234);
	pb_be16(p, frag);
	pb_u8(p, 64);
	pb_u8(p, proto);
	pb_be16(p, 0); /* checksum: pb_finish */
	pb_put(p, &s, 4);
	pb_put(p, &d, 4);
	for (int i = 0; i < opt_words * 4; i++)
		pb_u8(p, 1); /* NOP */
}

static inline void pb_ipv6(struct pb *p, const char *src, const char *dst, uint8_t next)
{
	struct in6_addr s, d;

	inet_pton(AF_INET6, src, &s);
	inet_pton(AF_INET6, dst, &d);
	p->l3 = (int)p->len;
	p->ver = 6;
	pb_be32(p, 0x60000000);
	pb_be16(p, 0); /* payload length: pb_finish */
	pb_u8(p, next);
	pb_u8(p, 64);
	pb_put(p, &s, 16);
	pb_put(p, &d, 16);
}

/* Hop-by-hop / routing / destination options header of (len8 + 1) * 8 bytes. */
static inline void pb_ext6(struct pb *p, uint8_t next, uint8_t len8)
{
	pb_u8(p, next);
	pb_u8(p, len8);
	pb_zero(p, (size_t)(len8 + 1) * 8 - 2);
}

static inline void pb_frag6(struct pb *p, uint8_t next, uint16_t offset8, int more)
{
	pb_u8(p, next);
	pb_u8(p, 0);
	pb_be16(p, (uint16_t)(offset8 << 3 | (more ? 1 : 0)));
	pb_be32(p, 0xabcdef);
}

static inline void pb_tcp(struct pb *p, uint16_t sport, uint16_t dport, uint8_t flags)
{
	p->l4 = (int)p->len;
	p->l4proto = IPPROTO_TCP;
	pb_be16(p, sport);
	pb_be16(p, dport);
	pb_be32(p, 1000);
	pb_be32(p, flags & TH_ACK ? 2000 : 0);
	pb_u8(p, 5 << 4);
	pb_u8(p, flags);
	pb_be16(p, 65535);
	pb_be16(p, 0);
	pb_be16(p, 0);
}

static inline void pb_udp(struct pb *p, uint16_t sport, uint16_t dport)
{
	p->l4 = (int)p->len;
	p->l4proto = IPPROTO_UDP;
	pb_be16(p, sport);
	pb_be16(p, dport);
	pb_be16(p, 0); /* length: pb_finish */
	pb_be16(p, 0);
}

static inline void pb_icmp(struct pb *p, uint8_t type, uint8_t code)
{
	p->l4 = (int)p->len;
	p->l4proto = p->ver == 6 ? 58 : IPPROTO_ICMP;
	pb_u8(p, type);
	pb_u8(p, code);
	pb_be16(p, 0);
	pb_be32(p, 0x00010001);
}

static inline void pb_payload(struct pb *p, size_t n, uint8_t fill)
{
	memset(p->buf + p->len, fill, n);
	p->len += n;
}

static inline uint16_t pb_csum(const uint8_t *d, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)d[i] << 8 | d[i + 1];
	if (n & 1)
		sum += (uint32_t)d[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * The L4 checksum a correct sender would write for the frame as it stands
 * (TCP, UDP, ICMPv6 with their pseudo-header; ICMP without), computed from
 * scratch over the bytes: the reference for every rewrite test. The
 * checksum field itself is treated as zero.
 */
static inline uint16_t pb_l4_csum_of(const uint8_t *frame, size_t len, int l3, int ver, int l4,
				     uint8_t proto)
{
	uint32_t sum = 0;
	size_t l4len = len - (size_t)l4;
	int coff = proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;

	if (proto != IPPROTO_ICMP) {
		const uint8_t *a = frame + l3 + (ver == 4 ? 12 : 8);
		size_t alen = ver == 4 ? 8 : 32;

		for (size_t i = 0; i < alen; i += 2)
			sum += (uint32_t)a[i] << 8 | a[i + 1];
		sum += proto;
		sum += (uint32_t)l4len;
	}
	for (size_t i = 0; i < l4len; i += 2) {
		uint16_t w;

		if ((int)i == coff)
			continue;
		w = (uint16_t)(frame[l4 + i] << 8 | (i + 1 < l4len ? frame[l4 + i + 1] : 0));
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	/* UDP transmits an all-zero result as 0xffff (0 means "no checksum"). */
	if (proto == IPPROTO_UDP && sum == 0)
		sum = 0xffff;
	return (uint16_t)sum;
}

/* Offset of the L4 checksum field, or -1. */
static inline int pb_l4_csum_off(const struct pb *p)
{
	if (p->l4 < 0)
		return -1;
	return p->l4 + (p->l4proto == IPPROTO_TCP ? 16 : p->l4proto == IPPROTO_UDP ? 6 : 2);
}

/* Write the correct L4 checksum (after pb_finish; ICMP needs l4proto set). */
static inline void pb_fill_l4_csum(struct pb *p)
{
	int off = pb_l4_csum_off(p);
	uint16_t c;

	if (off < 0)
		return;
	c = htons(pb_l4_csum_of(p->buf, p->len, p->l3, p->ver, p->l4, p->l4proto));
	memcpy(p->buf + off, &c, 2);
}

/* Fill length fields and the IPv4 header checksum. */
static inline void pb_finish(struct pb *p)
{
	if (p->l3 >= 0 && p->ver == 4) {
		uint8_t *ip = p->buf + p->l3;
		size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
		uint16_t tot = htons((uint16_t)(p->len - (size_t)p->l3)), c;

		memcpy(ip + 2, &tot, 2);
		ip[10] = ip[11] = 0;
		c = htons(pb_csum(ip, ihl));
		memcpy(ip + 10, &c, 2);
	} else if (p->l3 >= 0 && p->ver == 6) {
		uint16_t pl = htons((uint16_t)(p->len - (size_t)p->l3 - 40));

		memcpy(p->buf + p->l3 + 4, &pl, 2);
	}
	if (p->l4 >= 0 && p->l4proto == IPPROTO_UDP) {
		uint16_t ul = htons((uint16_t)(p->len - (size_t)p->l4));

		memcpy(p->buf + p->l4 + 4, &ul, 2);
	}
}

/* TCP/UDP checksum over the pseudo-header, for frames that reach real sockets
 * (call after pb_finish). */
static inline void pb_l4_csum(struct pb *p)
{
	const uint8_t *ip = p->buf + p->l3;
	size_t l4len = p->len - (size_t)p->l4, off = p->l4proto == IPPROTO_UDP ? 6 : 16;
	uint8_t ph[40 + 1500 + 64];
	size_t alen = p->ver == 6 ? 16 : 4, n = 0;
	uint16_t c;

	if (p->l4 < 0 || (p->l4proto != IPPROTO_UDP && p->l4proto != IPPROTO_TCP) ||
	    2 * alen + 4 + l4len > sizeof(ph))
		return;
	memcpy(ph + n, ip + (p->ver == 6 ? 8 : 12), 2 * alen);
	n += 2 * alen;
	ph[n++] = (uint8_t)(l4len >> 8);
	ph[n++] = (uint8_t)l4len;
	ph[n++] = 0;
	ph[n++] = p->l4proto;
	memset(p->buf + p->l4 + off, 0, 2);
	memcpy(ph + n, p->buf + p->l4, l4len);
	c = pb_csum(ph, n + l4len);
	if (!c && p->l4proto == IPPROTO_UDP)
		c = 0xffff;
	c = htons(c);
	memcpy(p->buf + p->l4 + off, &c, 2);
}

#endif
