// SPDX-License-Identifier: AGPL-3.0-only
/* Gateway health probes (network.md §2.7): ICMP echo over a raw socket, TCP
 * connect; both bound to the gateway's interface so the probe takes its path. */
#include "domains/routing/health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void to_sockaddr(const struct es_addr *a, uint16_t port, struct sockaddr_storage *ss,
			socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, a->b + 12, 4);
		*len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		memcpy(&s->sin6_addr, a->b, 16);
		*len = sizeof(*s);
	}
}

static int bind_dev(int fd, const char *ifname)
{
	if (!ifname || !*ifname)
		return 0;
	return setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname))
		   ? -errno
		   : 0;
}

static uint16_t icmp_csum(const uint8_t *d, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)d[i] << 8 | d[i + 1];
	if (n & 1)
		s += (uint32_t)d[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons((uint16_t)~s);
}

static int probe_icmp(const struct es_addr *t, const char *ifname, unsigned timeout_ms,
		      uint16_t ident)
{
	static uint16_t seq;
	bool v6 = t->family == 6;
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC,
			v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	struct sockaddr_storage ss;
	socklen_t sl;
	uint8_t pkt[16] = {0}, buf[1500];
	uint16_t my_seq = ++seq;
	uint64_t deadline = now_ms() + timeout_ms;
	int r;

	if (fd < 0)
		return -errno;
	if ((r = bind_dev(fd, ifname)))
		goto out;
	if (v6) {
		/* Only echo replies wake us up; the kernel fills the checksum. */
		struct icmp6_filter f;

		ICMP6_FILTER_SETBLOCKALL(&f);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
		setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
	}
	pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
	pkt[4] = (uint8_t)(ident >> 8);
	pkt[5] = (uint8_t)ident;
	pkt[6] = (uint8_t)(my_seq >> 8);
	pkt[7] = (uint8_t)my_seq;
	memcpy(pkt + 8, "esgwprob", 8);
	if (!v6) {
		uint16_t c = icmp_csum(pkt, sizeof(pkt));

		memcpy(pkt + 2, &c, 2);
	}
	to_sockaddr(t, 0, &ss, &sl);
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&ss, sl) < 0) {
		r = -errno;
		goto out;
	}
	r = -ETIMEDOUT;
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		const uint8_t *ic;
		ssize_t n;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			break;
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			continue;
		ic = buf;
		if (!v6) { /* IPv4 raw sockets deliver the IP header too */
			size_t ihl = (size_t)(buf[0] & 0x0f) * 4;

			if ((size_t)n < ihl + 8 || memcmp(buf + 12, t->b + 12, 4))
				continue;
			ic = buf + ihl;
			n -= (ssize_t)ihl;
		} else if (memcmp(&((struct sockaddr_in6 *)&from)->sin6_addr, t->b, 16)) {
			continue;
		}
		if (n >= 8 && ic[0] == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) &&
		    (ic[4] << 8 | ic[5]) == ident && (ic[6] << 8 | ic[7]) == my_seq) {
			r = 0;
			break;
		}
	}
out:
	close(fd);
	return r;
}

static int probe_tcp(const struct es_addr *t, uint16_t port, const char *ifname,
		     unsigned timeout_ms)
{
	int fd = socket(t->family == 6 ? AF_INET6 : AF_INET,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	struct pollfd p;
	socklen_t sl, el = sizeof(int);
	int r, err = 0;

	if (fd < 0)
		return -errno;
	if ((r = bind_dev(fd, ifname)))
		goto out;
	to_sockaddr(t, port, &ss, &sl);
	if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
		r = 0;
		goto out;
	}
	if (errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, (int)timeout_ms) <= 0) {
		r = -ETIMEDOUT;
		goto out;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	r = -err;
out:
	close(fd);
	return r;
}

int health_probe(enum health_proto proto, const struct es_addr *target, uint16_t port,
		 const char *ifname, unsigned timeout_ms, uint16_t ident)
{
	if (proto == HEALTH_TCP)
		return probe_tcp(target, port, ifname, timeout_ms);
	return probe_icmp(target, ifname, timeout_ms, ident);
}
