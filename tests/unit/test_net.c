// SPDX-License-Identifier: AGPL-3.0-only
/* CIDR, address and port-range parsing. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "core/net.h"

static const struct {
	const char *in, *out; /* out NULL: must fail */
	unsigned plen;
} cidrs[] = {
    {"10.0.0.1", "10.0.0.1", 32},
    {"10.1.2.3/8", "10.0.0.0/8", 8},
    {"192.168.1.77/24", "192.168.1.0/24", 24},
    {"0.0.0.0/0", "0.0.0.0/0", 0},
    {"2001:db8::1", "2001:db8::1", 128},
    {"2001:db8:abcd::1/48", "2001:db8:abcd::/48", 48},
    {"[2001:db8::5]", "2001:db8::5", 128},
    {"::/0", "::/0", 0},
    {"10.0.0.0/33", NULL, 0},
    {"2001:db8::/129", NULL, 0},
    {"10.0.0/8", NULL, 0},
    {"10.0.0.0/", NULL, 0},
    {"10.0.0.0/-1", NULL, 0},
    {"10.0.0.0/8x", NULL, 0},
    {"", NULL, 0},
    {"/8", NULL, 0},
    {"host.example", NULL, 0},
};

Test(net, cidr_parse_and_format)
{
	for (size_t i = 0; i < sizeof(cidrs) / sizeof(cidrs[0]); i++) {
		struct es_cidr c;
		char why[128], buf[64];
		int r = es_cidr_parse(cidrs[i].in, &c, why, sizeof(why));

		if (!cidrs[i].out) {
			cr_expect_neq(r, 0, "'%s' accepted", cidrs[i].in);
			cr_expect_gt(strlen(why), 0, "'%s': no reason", cidrs[i].in);
			continue;
		}
		cr_expect_eq(r, 0, "'%s' rejected: %s", cidrs[i].in, why);
		es_cidr_format(&c, buf, sizeof(buf));
		cr_expect_str_eq(buf, cidrs[i].out, "'%s'", cidrs[i].in);
		cr_expect_eq(c.plen, cidrs[i].plen, "'%s'", cidrs[i].in);
	}
}

Test(net, cidr_contains_is_family_and_prefix_aware)
{
	struct es_cidr net;
	struct es_addr a;
	char why[64];

	cr_assert_eq(es_cidr_parse("10.0.0.0/8", &net, why, sizeof(why)), 0);
	es_addr_parse("10.1.2.3", &a);
	cr_expect(es_cidr_contains(&net, &a));
	es_addr_parse("11.0.0.1", &a);
	cr_expect_not(es_cidr_contains(&net, &a));
	es_addr_parse("::ffff:10.1.2.3", &a); /* an IPv6 literal, even if mapped */
	cr_expect_not(es_cidr_contains(&net, &a));
	cr_assert_eq(es_cidr_parse("2001:db8::/33", &net, why, sizeof(why)), 0);
	es_addr_parse("2001:db8:7fff::1", &a);
	cr_expect(es_cidr_contains(&net, &a));
	es_addr_parse("2001:db8:8000::1", &a);
	cr_expect_not(es_cidr_contains(&net, &a));
}

Test(net, addr_words_follow_the_addr4_encoding)
{
	struct es_addr a, b;
	uint32_t w[4];

	es_addr_parse("192.168.1.1", &a);
	es_addr_words(&a, w);
	cr_expect_eq(w[0], 3232235777u);
	cr_expect_eq(w[1] | w[2] | w[3], 0);
	es_addr_from_words(&b, w, false);
	cr_expect_arr_eq(a.b, b.b, 16);
	es_addr_parse("2001:db8::1", &a);
	es_addr_words(&a, w);
	cr_expect_eq(w[0], 0x20010db8u);
	cr_expect_eq(w[3], 1u);
}

Test(net, port_ranges)
{
	static const struct {
		const char *in;
		int ok;
		unsigned s, e;
		const char *why;
	} cases[] = {
	    {"80", 1, 80, 80, NULL},
	    {"0", 1, 0, 0, NULL},
	    {"65535", 1, 65535, 65535, NULL},
	    {"80-443", 1, 80, 443, NULL},
	    {"443-80", 0, 0, 0, "start port 443 is greater than end port 80"},
	    {"65536", 0, 0, 0, "port out of range (0-65535)"},
	    {"1-70000", 0, 0, 0, "port out of range (0-65535)"},
	    {"http", 0, 0, 0, "invalid port number"},
	    {"", 0, 0, 0, "invalid port number"},
	    {"-5", 0, 0, 0, "invalid port number"},
	    {"5-", 0, 0, 0, "invalid port number"},
	    {" 80", 0, 0, 0, "invalid port number"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct es_port_range r;
		char why[128] = "";
		int rc = es_port_range_parse(cases[i].in, &r, why, sizeof(why));

		if (cases[i].ok) {
			char buf[32];

			cr_expect_eq(rc, 0, "'%s': %s", cases[i].in, why);
			cr_expect_eq(r.start, cases[i].s, "'%s'", cases[i].in);
			cr_expect_eq(r.end, cases[i].e, "'%s'", cases[i].in);
			es_port_range_format(&r, buf, sizeof(buf));
			cr_expect_str_eq(buf, cases[i].in);
		} else {
			cr_expect_neq(rc, 0, "'%s' accepted", cases[i].in);
			cr_expect_str_eq(why, cases[i].why, "'%s'", cases[i].in);
		}
	}
}

Test(net, identifiers)
{
	char longid[300];

	cr_expect(es_id_valid("fw-rule_01"));
	cr_expect_not(es_id_valid(""));
	cr_expect_not(es_id_valid("has space"));
	cr_expect_not(es_id_valid("semi;colon"));
	memset(longid, 'a', 257);
	longid[257] = '\0';
	cr_expect_not(es_id_valid(longid));
	longid[256] = '\0';
	cr_expect(es_id_valid(longid));
}
