// SPDX-License-Identifier: AGPL-3.0-only
/*
 * esgen: the benchmarks' packet generator and per-packet cost meter.
 *
 *   esgen live   send frames out of veths with BPF_PROG_TEST_RUN in live-frames
 *                mode (XDP_TX of xdp_gen), in bursts alternated A B B A over
 *                one or two targets; one JSON line per burst.
 *   esgen cost   ns per packet of an XDP program (attached to an interface or
 *                by id) minus a trivial XDP_DROP, both reached through xdp_keys
 *                so every repeat sees a different lookup key; alternated A B B A.
 *   esgen attach attach xdp_sink (pass) or xdp_drop to an interface.
 *
 * Everything runs inside the network namespace given by --netns (setns on
 * /run/netns/NAME), pinned to --cpu when given.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernel/pkt.h"
#include "bench/tools/esgen_abi.h"
#include "esgen.skel.h"

#ifndef BPF_F_TEST_XDP_LIVE_FRAMES
#define BPF_F_TEST_XDP_LIVE_FRAMES (1U << 1)
#endif

#define MAX_TARGETS 2
#define MAX_IDS 8

struct opts {
	const char *netns;
	const char *targets[MAX_TARGETS];
	int n_targets;
	const char *keys_file;
	const char *prog;
	__u32 prog_ids[MAX_IDS];
	int n_ids;
	bool v6, tcp, generic;
	int size;
	__u32 flows;
	int cpu;
	double burst_s;
	int rounds;
	__u64 repeat;
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static int enter_netns(const char *name)
{
	char path[256];
	int fd, r;

	if (!name)
		return 0;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "esgen: open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	r = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	if (r)
		fprintf(stderr, "esgen: setns %s: %s\n", name, strerror(-r));
	return r;
}

static int pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "esgen: cpu %d: %s\n", cpu, strerror(errno));
		return -errno;
	}
	return 0;
}

/* The frame every run starts from: 198.18.0.0 -> 198.18.1.1 (or 2001:db8:18::
 * -> 2001:db8:18:1::1), UDP or TCP, size bytes without FCS, valid checksums. */
static int build_frame(const struct opts *o, struct pb *p)
{
	int hdr = 14 + (o->v6 ? 40 : 20) + (o->tcp ? 20 : 8);

	if (o->size < hdr || o->size > 1514) {
		fprintf(stderr, "esgen: --size must be %d..1514 for this shape\n", hdr);
		return -EINVAL;
	}
	pb_init(p);
	pb_eth(p, o->v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (o->v6)
		pb_ipv6(p, "2001:db8:18::", "2001:db8:18:1::1", o->tcp ? IPPROTO_TCP : IPPROTO_UDP);
	else
		pb_ipv4(p, "198.18.0.0", "198.18.1.1", o->tcp ? IPPROTO_TCP : IPPROTO_UDP, 0, 0);
	if (o->tcp)
		pb_tcp(p, 1024, 9, TH_ACK);
	else
		pb_udp(p, 1024, 9);
	pb_payload(p, (size_t)(o->size - hdr), 0x5a);
	pb_finish(p);
	pb_l4_csum(p);
	return 0;
}

static struct esgen *open_skel(const struct opts *o, __u32 keys, __u32 frags)
{
	struct esgen *s = esgen__open();
	struct bpf_program *prog;

	if (!s) {
		fprintf(stderr, "esgen: open: %s\n", strerror(errno));
		return NULL;
	}
	s->rodata->gen_flows = o->flows ? o->flows : 1;
	s->rodata->keys_count = keys ? keys : 1;
	s->rodata->frame_v6 = o->v6;
	bpf_object__for_each_program (prog, s->obj) {
		bpf_program__set_flags(prog, bpf_program__flags(prog) | frags);
	}
	if (esgen__load(s)) {
		fprintf(stderr, "esgen: load: %s\n", strerror(errno));
		esgen__destroy(s);
		return NULL;
	}
	return s;
}

/* ---- live ------------------------------------------------------------------ */

/* ksoftirqd of cpu: when the receivers' softirq work is deferred to it, that
 * work runs outside the generator's timed loop and must be added back. */
static int ksoftirqd_pid(int cpu)
{
	char want[32], path[300], comm[64];
	struct dirent *d;
	DIR *dir;
	int pid = -1;

	if (cpu < 0 || !(dir = opendir("/proc")))
		return -1;
	snprintf(want, sizeof(want), "ksoftirqd/%d\n", cpu);
	while (pid < 0 && (d = readdir(dir))) {
		FILE *f;

		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, want))
			pid = atoi(d->d_name);
		fclose(f);
	}
	closedir(dir);
	return pid;
}

/* Time a task has spent on a CPU, in ns (first field of schedstat). */
static __u64 task_runtime_ns(int pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	if (pid < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

static int cmd_live(const struct opts *o)
{
	struct esgen *s = NULL;
	int ifindex[MAX_TARGETS], r = 0;
	struct pb p;
	__u64 chunk = 16384;
	int softirqd = ksoftirqd_pid(o->cpu);

	if (o->n_targets < 1) {
		fprintf(stderr, "esgen live: --dev IF[,IF] required\n");
		return -EINVAL;
	}
	r = build_frame(o, &p);
	if (r)
		return r;
	for (int t = 0; t < o->n_targets; t++) {
		ifindex[t] = (int)if_nametoindex(o->targets[t]);
		if (!ifindex[t]) {
			fprintf(stderr, "esgen: no interface %s\n", o->targets[t]);
			return -ENODEV;
		}
	}
	s = open_skel(o, 0, 0);
	if (!s)
		return -errno ? -errno : -EINVAL;

	/* A B B A A B B A ...: each target runs first as often as second. */
	int n_bursts = o->rounds * (o->n_targets == 2 ? 2 : 1);

	for (int b = 0; b < n_bursts; b++) {
		int t = o->n_targets == 2 ? ((b % 4 == 0 || b % 4 == 3) ? 0 : 1) : 0;
		/* With a context, data_end must equal the frame size. */
		struct xdp_md md = {.data_end = (__u32)p.len, .ingress_ifindex = (__u32)ifindex[t]};
		LIBBPF_OPTS(bpf_test_run_opts, ro, .data_in = p.buf, .data_size_in = (__u32)p.len,
			    .ctx_in = &md, .ctx_size_in = sizeof(md),
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
		__u64 sent = 0, busy = 0, t0 = now_ns(), t1 = t0,
		      end = t0 + (__u64)(o->burst_s * 1e9);
		__u64 sq0 = task_runtime_ns(softirqd), sq;

		while (t1 < end) {
			ro.repeat = (__u32)chunk;
			if (bpf_prog_test_run_opts(bpf_program__fd(s->progs.xdp_gen), &ro)) {
				r = -errno;
				fprintf(stderr, "esgen: live test_run on %s: %s\n", o->targets[t],
					strerror(errno));
				goto out;
			}
			sent += chunk;
			/* ro.duration: ns per frame while the runner held the CPU, the
			 * receivers' softirq work included; setup and teardown of each
			 * call (an RCU grace period on a busy host) and time lost to
			 * other tasks are not. */
			busy += (__u64)ro.duration * chunk;
			t1 = now_ns();
			/* ~100 ms of work per call: setup costs little, bursts end on time. */
			chunk = 100000000ull / (ro.duration ? ro.duration : 1);
			chunk = chunk < 1024 ? 1024 : chunk > (1u << 24) ? (1u << 24) : chunk;
		}
		sq = task_runtime_ns(softirqd) - sq0;
		printf("{\"burst\": %d, \"target\": \"%s\", \"packets\": %llu, \"ns\": %llu, "
		       "\"busy_ns\": %llu, \"ksoftirqd_ns\": %llu, \"pps\": %.0f, \"pps_wall\": "
		       "%.0f}\n",
		       b, o->targets[t], (unsigned long long)sent, (unsigned long long)(t1 - t0),
		       (unsigned long long)busy, (unsigned long long)sq,
		       busy ? (double)sent * 1e9 / (double)(busy + sq) : 0.0,
		       (double)sent * 1e9 / (double)(t1 - t0));
		fflush(stdout);
	}
out:
	esgen__destroy(s);
	return r;
}

/* ---- cost ------------------------------------------------------------------ */

static int load_keys(const struct opts *o, struct esgen *s, __u32 *count)
{
	FILE *f = fopen(o->keys_file, "r");
	char line[512], src[64], dst[64];
	unsigned sport, dport;
	__u32 n = 0;
	int r = 0;

	if (!f) {
		fprintf(stderr, "esgen: %s: %s\n", o->keys_file, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f) && n < ESGEN_MAX_KEYS) {
		struct esgen_key k = {0};
		int fam = o->v6 ? AF_INET6 : AF_INET;
		void *sa = o->v6 ? (void *)k.src : (void *)(k.src + 12);
		void *da = o->v6 ? (void *)k.dst : (void *)(k.dst + 12);

		if (sscanf(line, "%63s %63s %u %u", src, dst, &sport, &dport) != 4)
			continue;
		if (inet_pton(fam, src, sa) != 1 || inet_pton(fam, dst, da) != 1 || sport > 65535 ||
		    dport > 65535) {
			fprintf(stderr, "esgen: bad key line: %s", line);
			r = -EINVAL;
			break;
		}
		k.sport = htons((__u16)sport);
		k.dport = htons((__u16)dport);
		if (bpf_map_update_elem(bpf_map__fd(s->maps.cost_keys), &n, &k, BPF_ANY)) {
			r = -errno;
			break;
		}
		n++;
	}
	fclose(f);
	*count = n;
	if (!r && !n) {
		fprintf(stderr, "esgen: no keys in %s\n", o->keys_file);
		r = -EINVAL;
	}
	return r;
}

static int count_keys(const char *path, __u32 *n)
{
	FILE *f = fopen(path, "r");
	char line[512];

	*n = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n' && line[0] != '#')
			(*n)++;
	fclose(f);
	if (*n > ESGEN_MAX_KEYS)
		*n = ESGEN_MAX_KEYS;
	return 0;
}

/* A program under test: by id, or the one attached (native or generic) to --dev. */
static int target_prog_fd(const struct opts *o, __u32 id, int *ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int fd;

	*ifindex = 0;
	if (!id && o->n_targets) {
		*ifindex = (int)if_nametoindex(o->targets[0]);
		if (!*ifindex) {
			fprintf(stderr, "esgen: no interface %s\n", o->targets[0]);
			return -ENODEV;
		}
	}
	if (!id && *ifindex) {
		if (bpf_xdp_query(*ifindex, 0, &q))
			return -errno;
		id = q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id ? q.skb_prog_id : q.prog_id;
	}
	if (!id) {
		fprintf(stderr,
			"esgen cost: no XDP program (give --dev with one attached, or --id)\n");
		return -ENOENT;
	}
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		fprintf(stderr, "esgen: prog id %u: %s\n", id, strerror(errno));
	return fd < 0 ? -errno : fd;
}

static int run_cost(int keys_fd, int slot_fd, int prog_fd, const struct pb *p, int ifindex,
		    __u64 repeat, __u32 *ns, __u32 *verdict)
{
	struct xdp_md md = {.data_end = (__u32)p->len, .ingress_ifindex = (__u32)ifindex};
	__u8 out[2048];
	LIBBPF_OPTS(bpf_test_run_opts, ro, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = (__u32)repeat);
	__u32 zero = 0;

	if (ifindex) {
		ro.ctx_in = &md;
		ro.ctx_size_in = sizeof(md);
	}
	if (bpf_map_update_elem(slot_fd, &zero, &prog_fd, BPF_ANY))
		return -errno;
	if (bpf_prog_test_run_opts(keys_fd, &ro))
		return -errno;
	*ns = ro.duration;
	*verdict = ro.retval;
	return 0;
}

static int cmd_cost(const struct opts *o)
{
	static const char *const verdicts[] = {"ABORTED", "DROP", "PASS", "TX", "REDIRECT"};
	struct esgen *s = NULL;
	__u32 nkeys = 0, frags = 0, zero = 0;
	int target[MAX_IDS], n = o->n_ids ? o->n_ids : 1, ifindex = 0, r = 0;
	struct pb p;

	for (int t = 0; t < MAX_IDS; t++)
		target[t] = -1;

	if (!o->keys_file) {
		fprintf(stderr, "esgen cost: --keys FILE required\n");
		return -EINVAL;
	}
	r = build_frame(o, &p);
	if (r)
		return r;
	for (int t = 0; t < n; t++) {
		target[t] = target_prog_fd(o, o->n_ids ? o->prog_ids[t] : 0, &ifindex);
		if (target[t] < 0) {
			r = target[t];
			goto out;
		}
	}
	r = count_keys(o->keys_file, &nkeys);
	if (r)
		goto out;
	/* The prog array takes programs of the owner's kind only: retry with
	 * frags when the target was loaded as xdp.frags. */
	for (int attempt = 0; attempt < 2; attempt++) {
		s = open_skel(o, nkeys, frags);
		if (!s) {
			r = -EINVAL;
			goto out;
		}
		r = 0;
		for (int t = 0; t < n && !r; t++)
			if (bpf_map_update_elem(bpf_map__fd(s->maps.cost_progs), &zero, &target[t],
						BPF_ANY))
				r = -errno;
		if (!r)
			break;
		esgen__destroy(s);
		s = NULL;
		frags = BPF_F_XDP_HAS_FRAGS;
	}
	if (!s) {
		fprintf(stderr, "esgen: cannot tail-call the target: %s\n", strerror(-r));
		goto out;
	}
	r = load_keys(o, s, &nkeys);
	if (r)
		goto out;

	int keys_fd = bpf_program__fd(s->progs.xdp_keys);
	int slot_fd = bpf_map__fd(s->maps.cost_progs);
	int base = bpf_program__fd(s->progs.xdp_drop);

	/* Rounds of base, T1..Tn, Tn..T1, base: drift cancels within a round. */
	for (int i = 0; i < o->rounds; i++) {
		__u32 ns[2 * MAX_IDS + 2], v[2 * MAX_IDS + 2];
		int steps = 2 * n + 2;

		for (int k = 0; k < steps && !r; k++) {
			int t = k == 0 || k == steps - 1 ? -1 : k <= n ? k - 1 : steps - 2 - k;

			r = run_cost(keys_fd, slot_fd, t < 0 ? base : target[t], &p, ifindex,
				     o->repeat, &ns[k], &v[k]);
		}
		if (r) {
			fprintf(stderr, "esgen: cost test_run: %s\n", strerror(-r));
			goto out;
		}
		printf("{\"round\": %d, \"keys\": %u, \"repeat\": %llu, \"base_ns\": [%u, %u], "
		       "\"targets\": [",
		       i, nkeys, (unsigned long long)o->repeat, ns[0], ns[steps - 1]);
		for (int t = 0; t < n; t++) {
			__u32 vt = v[1 + t];

			if (vt == XDP_ABORTED) {
				fprintf(stderr,
					"esgen: tail call into target %d failed (ABORTED)\n", t);
				r = -EIO;
				goto out;
			}
			printf("%s{\"prog_ns\": [%u, %u], \"verdict\": \"%s\"}", t ? ", " : "",
			       ns[1 + t], ns[steps - 2 - t], vt < 5 ? verdicts[vt] : "?");
		}
		printf("]}\n");
		fflush(stdout);
	}
out:
	esgen__destroy(s);
	for (int t = 0; t < MAX_IDS; t++)
		if (target[t] >= 0)
			close(target[t]);
	return r;
}

/* ---- attach ---------------------------------------------------------------- */

static int cmd_attach(const struct opts *o)
{
	struct esgen *s;
	int fd, ifindex, r = 0;
	__u32 mode = o->generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;

	for (int t = 0; t < o->n_targets && !r; t++) {
		ifindex = (int)if_nametoindex(o->targets[t]);
		if (!ifindex) {
			fprintf(stderr, "esgen: no interface %s\n", o->targets[t]);
			return -ENODEV;
		}
	}
	s = open_skel(o, 0, 0);
	if (!s)
		return -EINVAL;
	fd = o->prog && !strcmp(o->prog, "drop") ? bpf_program__fd(s->progs.xdp_drop)
						 : bpf_program__fd(s->progs.xdp_sink);
	for (int t = 0; t < o->n_targets && !r; t++) {
		ifindex = (int)if_nametoindex(o->targets[t]);
		/* Netlink attachments outlive this process; the namespace owner removes them. */
		if (bpf_xdp_attach(ifindex, fd, mode, NULL)) {
			r = -errno;
			fprintf(stderr, "esgen: attach to %s: %s\n", o->targets[t],
				strerror(errno));
		}
	}
	esgen__destroy(s);
	return r;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: esgen live|cost|attach [options]\n"
		"  --netns NAME       run inside /run/netns/NAME\n"
		"  --dev IF[,IF]      live: target veths (two: alternate A B B A); cost: the\n"
		"                     interface whose XDP program is measured; attach: targets\n"
		"  --id N[,N...]      cost: program ids instead of --dev (up to 8)\n"
		"  --keys FILE        cost: lines 'src dst sport dport' written into frames\n"
		"  --v6 --tcp         frame shape (default IPv4 UDP)\n"
		"  --size N           frame bytes without FCS (default 64)\n"
		"  --flows N          live: distinct source address/port pairs (default 1)\n"
		"  --burst S          live: seconds per burst (default 1)\n"
		"  --rounds N         live: bursts per target; cost: rounds (default 4)\n"
		"  --repeat N         cost: repeats per measurement (default 1000000)\n"
		"  --cpu N            pin to CPU N\n"
		"  --prog sink|drop   attach: program (default sink); --generic: SKB mode\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"netns", 1, 0, 'n'},  {"dev", 1, 0, 'd'},
	    {"id", 1, 0, 'i'},	   {"keys", 1, 0, 'k'},
	    {"v6", 0, 0, '6'},	   {"tcp", 0, 0, 't'},
	    {"size", 1, 0, 's'},   {"flows", 1, 0, 'f'},
	    {"burst", 1, 0, 'b'},  {"rounds", 1, 0, 'r'},
	    {"repeat", 1, 0, 'R'}, {"cpu", 1, 0, 'c'},
	    {"prog", 1, 0, 'p'},   {"generic", 0, 0, 'g'},
	    {"help", 0, 0, 'h'},   {0},
	};
	struct opts o = {
	    .size = 64, .flows = 1, .cpu = -1, .burst_s = 1, .rounds = 4, .repeat = 1000000};
	const char *cmd;
	char *devs = NULL;
	int c, r;

	if (argc < 2) {
		usage();
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': o.netns = optarg; break;
		case 'd': devs = optarg; break;
		case 'i':
			for (char *tok = strtok(optarg, ","); tok && o.n_ids < MAX_IDS;
			     tok = strtok(NULL, ","))
				o.prog_ids[o.n_ids++] = (__u32)strtoul(tok, NULL, 0);
			break;
		case 'k': o.keys_file = optarg; break;
		case '6': o.v6 = true; break;
		case 't': o.tcp = true; break;
		case 's': o.size = atoi(optarg); break;
		case 'f': o.flows = (__u32)strtoul(optarg, NULL, 0); break;
		case 'b': o.burst_s = atof(optarg); break;
		case 'r': o.rounds = atoi(optarg); break;
		case 'R': o.repeat = strtoull(optarg, NULL, 0); break;
		case 'c': o.cpu = atoi(optarg); break;
		case 'p': o.prog = optarg; break;
		case 'g': o.generic = true; break;
		default: usage(); return 2;
		}
	}
	for (char *tok = devs ? strtok(devs, ",") : NULL; tok && o.n_targets < MAX_TARGETS;
	     tok = strtok(NULL, ","))
		o.targets[o.n_targets++] = tok;
	if (o.rounds < 1 || o.burst_s <= 0 || !o.flows || o.repeat < 1 || o.repeat > 0xffffffffu) {
		usage();
		return 2;
	}
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	if (enter_netns(o.netns) || pin_cpu(o.cpu))
		return 1;
	if (!strcmp(cmd, "live"))
		r = cmd_live(&o);
	else if (!strcmp(cmd, "cost"))
		r = cmd_cost(&o);
	else if (!strcmp(cmd, "attach"))
		r = cmd_attach(&o);
	else {
		usage();
		return 2;
	}
	return r ? 1 : 0;
}
