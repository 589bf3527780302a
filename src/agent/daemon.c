// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Daemon lifecycle (interfaces.md §1.3): configuration, logging, listeners,
 * eBPF programs, then the main loop, which owns signals, the reload queue,
 * the configuration file watcher and the 1 s timer.
 */
#define ES_LOG_TARGET "ebpfsentinel::agent"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/domain.h"
#include "api/docs.h"
#include "api/grpc.h"
#include "api/http.h"
#include "api/metrics.h"
#include "api/tls.h"
#include "core/audit.h"
#include "core/log.h"
#include "domains/firewall/firewall.h"
#include "kernel/events.h"
#include "kernel/kernel.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static struct timespec started_at;
static int reload_efd = -1;
static atomic_bool reload_queued;
/* Who queued the pending REST reload (auth on), for its audit records. */
static pthread_mutex_t reload_actor_lock = PTHREAD_MUTEX_INITIALIZER;
static char reload_actor[256];

uint64_t es_daemon_uptime_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - started_at.tv_sec);
}

int es_daemon_request_reload(void)
{
	uint64_t one = 1;
	bool expected = false;

	if (reload_efd < 0 || !atomic_compare_exchange_strong(&reload_queued, &expected, true))
		return -EBUSY;
	pthread_mutex_lock(&reload_actor_lock);
	snprintf(reload_actor, sizeof(reload_actor), "%s",
		 es_audit_actor() ? es_audit_actor() : "");
	pthread_mutex_unlock(&reload_actor_lock);
	if (write(reload_efd, &one, sizeof(one)) != sizeof(one)) {
		atomic_store(&reload_queued, false);
		return -EIO;
	}
	return 0;
}

bool es_daemon_ebpf_loaded(void)
{
	struct fw_status fw;

	fw_get_status(&fw);
	if (fw.enabled)
		return fw.loaded && fw.attached > 0;
	/* Firewall disabled: ready once any enabled program is attached (§12 item 11). */
	for (int i = 0; es_prog_names[i]; i++)
		if (es_prog_status_get(es_prog_names[i]))
			return true;
	return false;
}

/* ---- startup helpers ----------------------------------------------------------- */

static void warn_world_readable(const char *path, const char *what)
{
	struct stat st;

	if (path && *path && !stat(path, &st) && (st.st_mode & S_IROTH))
		pr_warn("file is world-readable", LF_STR("path", path), LF_STR("file", what));
}

/* The objects are compiled into the binary; say so when a directory is named
 * (interfaces.md §1.4 precedence: EBPF_PROGRAM_DIR > EBPF_PROGRAM_PATH > config). */
static void note_program_dir(const struct es_config *cfg)
{
	const char *src = getenv("EBPF_PROGRAM_DIR")	? "EBPF_PROGRAM_DIR"
			  : getenv("EBPF_PROGRAM_PATH") ? "EBPF_PROGRAM_PATH"
			  : cfg->agent.ebpf_program_dir ? "agent.ebpf_program_dir"
							: NULL;

	if (src)
		pr_info(
		    "eBPF programs are embedded in the binary; the program directory is not used",
		    LF_STR("source", src));
}

static void resolve_log(const struct es_daemon_opts *o, const struct es_config *cfg,
			enum es_log_level *lvl, enum es_log_format *fmt)
{
	const char *rust_log = getenv("RUST_LOG");

	*lvl = o->have_level ? o->level : cfg->agent.log_level;
	*fmt = o->have_format ? o->format : cfg->agent.log_format;
	if (rust_log && *rust_log) {
		/* Bare level directives are honoured; target-qualified ones are ignored. */
		char buf[256], *save = NULL;

		snprintf(buf, sizeof(buf), "%s", rust_log);
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			enum es_log_level l;

			if (!strchr(t, '=') && !es_log_level_parse(t, &l))
				*lvl = l;
		}
	}
}

static int start_http(const struct es_config *cfg)
{
	struct es_http_opts ho = {
	    .bind_address = cfg->agent.bind_address,
	    .port = cfg->agent.http_port,
	    .tls = cfg->agent.tls.enabled,
	};
	char err[512];
	int r;

	for (unsigned i = 0; i < es_n_domains; i++)
		if (es_domains[i]->routes && (r = es_http_add_routes(es_domains[i]->routes)))
			return r;
	if (cfg->agent.swagger_ui)
		es_http_add_routes(es_docs_routes);
	/* TLS material before binding (§1.3 step 7): a bad pair is fatal. */
	if (ho.tls && (r = es_tls_load(cfg->agent.tls.cert_path, cfg->agent.tls.key_path, err,
				       sizeof(err)))) {
		pr_error("cannot load TLS material", LF_STR("error", err));
		fprintf(stderr, "Error: TLS: %s\n", err);
		return r;
	}
	r = es_http_start(&ho);
	if (r)
		pr_error("cannot start the HTTP listener", LF_STR("bind_address", ho.bind_address),
			 LF_UINT("port", ho.port), LF_STR("error", strerror(-r)));
	else
		pr_info("HTTP API listening", LF_STR("bind_address", ho.bind_address),
			LF_UINT("port", ho.port), LF_BOOL("tls", ho.tls));
	return r;
}

/* gRPC after HTTP, on the same address (§1.3 step 8); a bind failure is fatal. */
static int start_grpc(const struct es_config *cfg)
{
	struct es_grpc_opts go = {
	    .bind_address = cfg->agent.bind_address,
	    .port = cfg->agent.grpc_port,
	};
	char *cert = NULL, *key = NULL;
	int r;

	/* The pair the HTTP server loaded (§9: one certificate for both). */
	if (cfg->agent.tls.enabled && (r = es_tls_pem(&cert, &key)))
		return r;
	go.tls_cert_pem = cert;
	go.tls_key_pem = key;
	r = es_grpc_start(&go);
	if (r)
		pr_error("cannot start the gRPC listener", LF_STR("bind_address", go.bind_address),
			 LF_UINT("port", go.port), LF_STR("error", strerror(-r)));
	else
		pr_info("gRPC listening", LF_STR("bind_address", go.bind_address),
			LF_UINT("port", go.port), LF_BOOL("tls", cert != NULL));
	free(cert);
	es_tls_pem_free(key);
	return r;
}

/*
 * Start the domains of one phase: the early ones (stores, identity) before
 * the listeners, the others once the kernel side is up. A failing start
 * degrades only its domain, unless the domain is ES_DOMAIN_FATAL (-errno).
 */
static int start_domains(const struct es_config *cfg, bool early)
{
	for (unsigned i = 0; i < es_n_domains; i++) {
		const struct es_domain *d = es_domains[i];
		int r;

		if (!d->start || !(d->flags & ES_DOMAIN_EARLY) != !early)
			continue;
		r = d->start(cfg->dcfg[i]);
		if (!r)
			continue;
		r = r < 0 ? r : -r;
		if (d->flags & ES_DOMAIN_FATAL) {
			pr_error("domain failed to start", LF_STR("domain", d->name),
				 LF_STR("error", strerror(-r)));
			fprintf(stderr, "Error: %s failed to start: %s\n", d->name, strerror(-r));
			return r;
		}
		pr_error("domain failed to start; running degraded", LF_STR("domain", d->name),
			 LF_STR("error", strerror(-r)));
	}
	return 0;
}

static void stop_domains(void)
{
	for (unsigned i = es_n_domains; i-- > 0;)
		if (es_domains[i]->stop)
			es_domains[i]->stop();
}

/* ---- main loop ---------------------------------------------------------------- */

static void force_exit(int sig)
{
	static const char msg[] = "second termination signal: exiting immediately\n";

	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to report to */
	}
	_exit(1);
}

struct watch {
	int fd;
	int debounce_fd;
	char dir[512];
	char base[256];
};

static void watch_setup(struct watch *w, const char *path, int ep)
{
	char a[512], b[512];
	struct epoll_event ev = {.events = EPOLLIN};

	w->fd = w->debounce_fd = -1;
	snprintf(a, sizeof(a), "%s", path);
	snprintf(b, sizeof(b), "%s", path);
	snprintf(w->dir, sizeof(w->dir), "%s", dirname(a));
	snprintf(w->base, sizeof(w->base), "%s", basename(b));
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 ||
	    inotify_add_watch(w->fd, w->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) <
		0) {
		pr_warn("configuration file watcher unavailable; SIGHUP and REST reload still work",
			LF_STR("dir", w->dir), LF_STR("error", strerror(errno)));
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
		return;
	}
	w->debounce_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ev.data.fd = w->fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev);
	ev.data.fd = w->debounce_fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, w->debounce_fd, &ev);
}

/* Drain inotify; arm the 500 ms debounce when our file (or a ConfigMap's
 * ..data symlink) changed. */
static void watch_event(struct watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;

			if (e->len && (!strcmp(e->name, w->base) || !strcmp(e->name, "..data")))
				hit = true;
			p += sizeof(*e) + e->len;
		}
	}
	if (hit) {
		struct itimerspec its = {.it_value = {.tv_nsec = 500 * 1000000L}};

		timerfd_settime(w->debounce_fd, 0, &its, NULL);
	}
}

static void do_reload(const char *path, const char *trigger)
{
	char why[1024], actor[256] = "";

	if (!strcmp(trigger, "api")) {
		pthread_mutex_lock(&reload_actor_lock);
		snprintf(actor, sizeof(actor), "%s", reload_actor);
		pthread_mutex_unlock(&reload_actor_lock);
	}
	atomic_store(&reload_queued, false);
	pr_info("configuration reload", LF_STR("trigger", trigger));
	es_audit_set_actor(actor[0] ? actor : NULL);
	es_reload_from_file(path, why, sizeof(why));
	es_audit_set_actor(NULL);
}

/* The main loop's descriptors; set up before readiness is announced (§1.3 step 10). */
static struct {
	int ep, tfd;
	struct watch w;
} loop = {.ep = -1, .tfd = -1};

static void triggers_start(const char *config_path, int sfd)
{
	struct itimerspec its = {.it_interval = {.tv_sec = 1}, .it_value = {.tv_sec = 1}};
	struct epoll_event ev = {.events = EPOLLIN};

	loop.ep = epoll_create1(EPOLL_CLOEXEC);
	loop.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	timerfd_settime(loop.tfd, 0, &its, NULL);
	ev.data.fd = sfd;
	epoll_ctl(loop.ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = reload_efd;
	epoll_ctl(loop.ep, EPOLL_CTL_ADD, reload_efd, &ev);
	ev.data.fd = loop.tfd;
	epoll_ctl(loop.ep, EPOLL_CTL_ADD, loop.tfd, &ev);
	watch_setup(&loop.w, config_path, loop.ep);
}

static int main_loop(const char *config_path, int sfd)
{
	int ep = loop.ep, tfd = loop.tfd;
	struct watch w = loop.w;
	unsigned ticks = 0;

	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint64_t x;

			if (fd == sfd) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						do_reload(config_path, "SIGHUP");
						continue;
					}
					pr_info("shutdown signal received",
						LF_STR("signal", si.ssi_signo == SIGINT
								     ? "SIGINT"
								     : "SIGTERM"));
					close(tfd);
					if (w.fd >= 0)
						close(w.fd);
					if (w.debounce_fd >= 0)
						close(w.debounce_fd);
					close(ep);
					return 0;
				}
			} else if (fd == reload_efd) {
				if (read(reload_efd, &x, sizeof(x)) == sizeof(x))
					do_reload(config_path, "api");
			} else if (fd == w.fd) {
				watch_event(&w);
			} else if (fd == w.debounce_fd) {
				if (read(w.debounce_fd, &x, sizeof(x)) == sizeof(x))
					do_reload(config_path, "file_watcher");
			} else if (fd == tfd) {
				if (read(tfd, &x, sizeof(x)) != sizeof(x))
					continue;
				if (++ticks % 5 == 0)
					es_process_sample();
				for (unsigned d = 0; d < es_n_domains; d++)
					if (es_domains[d]->tick)
						es_domains[d]->tick();
			}
		}
	}
}

int es_daemon_run(const struct es_daemon_opts *o)
{
	struct es_error err;
	struct es_config *cfg;
	enum es_log_level lvl;
	enum es_log_format fmt;
	sigset_t mask;
	int sfd, r;
	char msg[1200];

	clock_gettime(CLOCK_MONOTONIC, &started_at);
	/* Block the signals we handle before anything else: early ones are queued
	 * and handled by the main loop, never fatal (§12 item 6). */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	cfg = es_config_load(o->config_path, &err);
	if (!cfg) {
		es_error_format(&err, msg, sizeof(msg));
		fprintf(stderr, "Error: %s\n", msg);
		return 1;
	}
	resolve_log(o, cfg, &lvl, &fmt);
	es_log_setup(lvl, fmt);
	pr_info("eBPFsentinel agent starting", LF_STR("config_path", o->config_path),
		LF_STR("log_level", es_log_level_name(lvl)),
		LF_STR("log_format", fmt == ES_LOG_JSON ? "json" : "text"),
		LF_STR("version", ES_VERSION));
	for (size_t i = 0; i < cfg->n_warnings; i++)
		pr_warn(cfg->warnings[i]);
	warn_world_readable(o->config_path, "configuration");
	note_program_dir(cfg);
	es_config_publish(cfg);

	/* Before any thread exists: libcurl's global set-up is not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	es_agent_metrics_init();
	es_process_sample();
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	reload_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sfd < 0 || reload_efd < 0) {
		pr_error("cannot create signal or reload descriptors",
			 LF_STR("error", strerror(errno)));
		return 1;
	}

	/* Stores and identity before the listeners (§1.3 steps 4-5). */
	if (start_domains(cfg, true) || start_http(cfg) || start_grpc(cfg)) {
		es_http_stop();
		stop_domains();
		es_config_put(cfg);
		return 1;
	}

	r = es_kernel_init(&(struct es_kernel_opts){
	    .pin_dir = cfg->agent.bpffs_dir,
	    .mode = (enum es_xdp_attach_mode)cfg->agent.xdp_mode,
	    .ifnames = cfg->agent.interfaces,
	    .verbose = lvl >= ES_LOG_DEBUG,
	});
	if (r)
		pr_error("eBPF unavailable: running without data plane (not ready)",
			 LF_STR("error", strerror(-r)));
	start_domains(cfg, false);
	if (es_kernel_ready() && (r = es_events_start()))
		pr_warn("event reader not started", LF_STR("error", strerror(-r)));
	/* Reload triggers run before readiness is announced, so no edit is missed. */
	triggers_start(o->config_path, sfd);
	/* Published last: a non-empty program list means startup is complete. */
	es_prog_status_publish();
	pr_info("agent ready, waiting for shutdown signal",
		LF_BOOL("ebpf_loaded", es_daemon_ebpf_loaded()));

	main_loop(o->config_path, sfd);

	/* A second termination signal now exits at once (§12 item 7). */
	signal(SIGTERM, force_exit);
	signal(SIGINT, force_exit);
	signal(SIGHUP, SIG_IGN);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);

	es_http_stop();
	es_grpc_stop(5000);
	es_events_stop(2000); /* pending events reach the engines and the alert pipeline */
	stop_domains();
	es_tls_free();
	es_kernel_shutdown(true);
	pr_info("agent stopped");
	es_config_put(cfg);
	close(sfd);
	close(reload_efd);
	return 0;
}
