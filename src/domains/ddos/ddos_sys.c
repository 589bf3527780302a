// SPDX-License-Identifier: AGPL-3.0-only
/*
 * What SYN flood defence needs from the network namespace the agent runs in
 * (docs/ddos.md): net.ipv4.tcp_syncookies=2, so local listeners accept the
 * ACKs of cookies XDP issued; and, when the namespace forwards, netfilter
 * SYNPROXY rules in chains of our own, which finish for forwarded services
 * the handshakes XDP answered. Previous sysctl values are restored and our
 * chains removed on stop. Only this namespace is touched.
 */
#define ES_LOG_TARGET "ebpfsentinel::ddos"
#include "domains/ddos/ddos_sys.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SYSCTL_COOKIES "/proc/sys/net/ipv4/tcp_syncookies"
#define SYSCTL_LOOSE "/proc/sys/net/netfilter/nf_conntrack_tcp_loose"
#define CHAIN_RAW "ES_SYNPROXY_RAW"
#define CHAIN_FWD "ES_SYNPROXY"

static struct {
	bool active;
	char cookies_old[16]; /* "" when we did not change it */
	char loose_old[16];
	bool v4_rules, v6_rules;
} st;

static int read_sysctl(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_sysctl(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		r = -errno;
	close(fd);
	return r;
}

/* Set a sysctl, remembering the previous value in old (once). */
static int set_sysctl(const char *path, const char *v, char *old, size_t oldlen)
{
	char cur[16];
	int r = read_sysctl(path, cur, sizeof(cur));

	if (r)
		return r;
	if (!strcmp(cur, v))
		return 0;
	if (!old[0])
		snprintf(old, oldlen, "%s", cur);
	return write_sysctl(path, v);
}

/* Run an iptables-family command quietly; its exit status, or -errno. */
static int run(const char *const *argv)
{
	posix_spawn_file_actions_t fa;
	int status, r;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return -r;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -EINTR;
}

#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

static void remove_rules(const char *ipt)
{
	RUN(ipt, "-w", "-t", "raw", "-D", "PREROUTING", "-j", CHAIN_RAW);
	RUN(ipt, "-w", "-t", "raw", "-F", CHAIN_RAW);
	RUN(ipt, "-w", "-t", "raw", "-X", CHAIN_RAW);
	RUN(ipt, "-w", "-D", "FORWARD", "-j", CHAIN_FWD);
	RUN(ipt, "-w", "-F", CHAIN_FWD);
	RUN(ipt, "-w", "-X", CHAIN_FWD);
}

static int install_rules(const char *ipt, char *const *ifnames)
{
	int r = 0;

	/* Chains of our own (created, or flushed when a crashed agent left them). */
	if (RUN(ipt, "-w", "-t", "raw", "-N", CHAIN_RAW))
		RUN(ipt, "-w", "-t", "raw", "-F", CHAIN_RAW);
	if (RUN(ipt, "-w", "-N", CHAIN_FWD))
		RUN(ipt, "-w", "-F", CHAIN_FWD);
	for (char *const *i = ifnames; i && *i && !r; i++) {
		r = RUN(ipt, "-w", "-t", "raw", "-A", CHAIN_RAW, "-i", *i, "-p", "tcp", "--syn",
			"-j", "CT", "--notrack");
		if (!r)
			r = RUN(ipt, "-w", "-A", CHAIN_FWD, "-i", *i, "-p", "tcp", "-m",
				"conntrack", "--ctstate", "INVALID,UNTRACKED", "-j", "SYNPROXY",
				"--sack-perm", "--timestamp", "--wscale", "7", "--mss", "1460");
		if (!r)
			r = RUN(ipt, "-w", "-A", CHAIN_FWD, "-i", *i, "-p", "tcp", "-m",
				"conntrack", "--ctstate", "INVALID", "-j", "DROP");
	}
	if (!r && RUN(ipt, "-w", "-t", "raw", "-C", "PREROUTING", "-j", CHAIN_RAW))
		r = RUN(ipt, "-w", "-t", "raw", "-I", "PREROUTING", "-j", CHAIN_RAW);
	if (!r && RUN(ipt, "-w", "-C", "FORWARD", "-j", CHAIN_FWD))
		r = RUN(ipt, "-w", "-I", "FORWARD", "-j", CHAIN_FWD);
	if (r) {
		remove_rules(ipt);
		return r < 0 ? r : -EIO;
	}
	return 0;
}

static bool forwarding(const char *path)
{
	char v[16];

	return !read_sysctl(path, v, sizeof(v)) && strcmp(v, "0");
}

int ddos_sys_setup(char *const *ifnames, struct ddos_sys_state *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (st.active)
		ddos_sys_teardown();
	memset(&st, 0, sizeof(st));
	st.active = true;

	r = set_sysctl(SYSCTL_COOKIES, "2", st.cookies_old, sizeof(st.cookies_old));
	if (r)
		pr_warn("cannot set net.ipv4.tcp_syncookies=2: SYN cookies only in threshold mode",
			LF_STR("error", strerror(-r)));
	out->cookies = r == 0;

	if (forwarding("/proc/sys/net/ipv4/ip_forward") ||
	    forwarding("/proc/sys/net/ipv6/conf/all/forwarding")) {
		/* SYNPROXY needs conntrack to treat unknown ACKs as INVALID. */
		r = set_sysctl(SYSCTL_LOOSE, "0", st.loose_old, sizeof(st.loose_old));
		if (!r && !(r = install_rules("iptables", ifnames)))
			st.v4_rules = true;
		if (!r && !(r = install_rules("ip6tables", ifnames)))
			st.v6_rules = true;
		if (r) {
			pr_warn(
			    "cannot install the SYNPROXY rules: SYNs to forwarded services over "
			    "the threshold are dropped instead of answered",
			    LF_INT("error", r));
			if (st.v4_rules)
				remove_rules("iptables");
			st.v4_rules = st.v6_rules = false;
		}
		out->synproxy = st.v4_rules && st.v6_rules;
	}
	pr_info("SYN flood defence set up", LF_BOOL("syncookies", out->cookies),
		LF_BOOL("synproxy", out->synproxy));
	return 0;
}

void ddos_sys_teardown(void)
{
	if (!st.active)
		return;
	if (st.v4_rules)
		remove_rules("iptables");
	if (st.v6_rules)
		remove_rules("ip6tables");
	if (st.loose_old[0])
		write_sysctl(SYSCTL_LOOSE, st.loose_old);
	if (st.cookies_old[0])
		write_sysctl(SYSCTL_COOKIES, st.cookies_old);
	memset(&st, 0, sizeof(st));
}
