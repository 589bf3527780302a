// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The alert pipeline (interfaces.md §7.3): es_alert_emit() queues into a
 * bounded intake (AL_INTAKE_CAP, overflow counted); the alert thread enriches,
 * counts, stores, publishes to gRPC subscribers, then dedups, throttles,
 * routes and hands deliveries to the sender thread. The sender thread runs
 * webhook and e-mail deliveries concurrently with libcurl multi, retries
 * 1 s / 5 s / 30 s, and keeps one circuit breaker per destination type. A dead
 * destination never slows intake: its queue fills and further deliveries are
 * counted as dropped.
 */
#define ES_LOG_TARGET "ebpfsentinel::alerts"
#include "domains/alerting/alerting_int.h"
#include "api/grpc.h"
#include "api/metrics.h"
#include "core/cfg.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/strbuf.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AL_INTAKE_CAP 1000
#define AL_SENDER_QUEUE_CAP 1000
#define AL_BATCH 128

static const char *const dest_names[AL_DEST__COUNT] = {"log", "email", "webhook"};

/* ---- shared state ------------------------------------------------------------ */

static pthread_mutex_t in_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t in_cond = PTHREAD_COND_INITIALIZER;
static struct es_alert intake[AL_INTAKE_CAP];
static size_t in_head, in_len;

static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct al_cfg *cfg; /* the pipeline's own copy */

static pthread_t alert_thread, send_thread;
static atomic_bool stop_alerts, stop_sender;
static bool running;

static struct al_dedup *dedup;
static struct al_throttle *throttle;

static struct es_mfam *m_alerts, *m_by_rule, *m_dropped, *m_events_dropped, *m_circuit,
    *m_deliveries;

/* ---- configuration copies ------------------------------------------------------- */

static char *dup0(const char *s)
{
	return s ? strdup(s) : NULL;
}

static struct al_cfg *cfg_clone(const struct al_cfg *s)
{
	struct al_cfg *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	*c = *s;
	c->routes = calloc(s->n_routes ? s->n_routes : 1, sizeof(*c->routes));
	c->smtp.host = dup0(s->smtp.host);
	c->smtp.username = dup0(s->smtp.username);
	c->smtp.password = dup0(s->smtp.password);
	c->smtp.from_address = dup0(s->smtp.from_address);
	c->store_path = dup0(s->store_path);
	if (!c->routes) {
		c->n_routes = 0;
		al_cfg_free(c);
		return NULL;
	}
	for (size_t i = 0; i < s->n_routes; i++) {
		const struct al_route *f = &s->routes[i];
		struct al_route *r = &c->routes[i];

		r->name = dup0(f->name);
		r->dest = f->dest;
		r->min_severity = f->min_severity;
		r->event_types = f->event_types ? es_strv_dup(f->event_types) : NULL;
		r->webhook_url = dup0(f->webhook_url);
		r->email_to = dup0(f->email_to);
		r->header_names = f->header_names ? es_strv_dup(f->header_names) : NULL;
		r->header_values = f->header_values ? es_strv_dup(f->header_values) : NULL;
	}
	return c;
}

/* ---- intake (the es_alert sink) ------------------------------------------------- */

static void sink(const struct es_alert *a)
{
	pthread_mutex_lock(&in_lock);
	if (in_len >= AL_INTAKE_CAP) {
		pthread_mutex_unlock(&in_lock);
		es_metric_add(m_events_dropped, 1, "alert_channel_full");
		return;
	}
	intake[(in_head + in_len) % AL_INTAKE_CAP] = *a;
	in_len++;
	pthread_cond_signal(&in_cond);
	pthread_mutex_unlock(&in_lock);
}

/* ---- sender thread ------------------------------------------------------------ */

struct job {
	struct job *next;
	enum al_dest dest;
	char *url;
	struct curl_slist *hdrs; /* webhook headers */
	struct curl_slist *rcpt; /* e-mail recipient */
	char *body;
	size_t body_len, body_off;
	char *mail_from, *user, *pass;
	bool require_tls;
	unsigned attempt; /* attempts finished */
	uint64_t next_at;
	uint32_t retry_ms[AL_MAX_RETRIES];
	CURL *h;
	char alert_id[160];
	char route[64];
};

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job *incoming;		/* handed over by the alert thread */
static unsigned queued[AL_DEST__COUNT]; /* pending + in flight, per destination */
static CURLM *multi;
static struct al_breaker breakers[AL_DEST__COUNT];

static void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->h) {
		curl_multi_remove_handle(multi, j->h);
		curl_easy_cleanup(j->h);
	}
	free(j->url);
	curl_slist_free_all(j->hdrs);
	curl_slist_free_all(j->rcpt);
	free(j->body);
	free(j->mail_from);
	free(j->user);
	free(j->pass);
	pthread_mutex_lock(&job_lock);
	queued[j->dest]--;
	pthread_mutex_unlock(&job_lock);
	free(j);
}

static void gauge(enum al_dest d)
{
	es_metric_set(m_circuit, breakers[d].state, dest_names[d]);
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
	return sz * n;
}

static size_t upload(char *buf, size_t sz, size_t n, void *ud)
{
	struct job *j = ud;
	size_t left = j->body_len - j->body_off, k = sz * n < left ? sz * n : left;

	memcpy(buf, j->body + j->body_off, k);
	j->body_off += k;
	return k;
}

static int start_attempt(struct job *j)
{
	CURL *h = curl_easy_init();

	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, j->url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PRIVATE, j);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	if (j->dest == AL_DEST_WEBHOOK) {
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, j->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)j->body_len);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->hdrs);
	} else {
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		curl_easy_setopt(h, CURLOPT_MAIL_FROM, j->mail_from);
		curl_easy_setopt(h, CURLOPT_MAIL_RCPT, j->rcpt);
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, upload);
		curl_easy_setopt(h, CURLOPT_READDATA, j);
		curl_easy_setopt(h, CURLOPT_USE_SSL,
				 j->require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
		if (j->user && j->pass) {
			curl_easy_setopt(h, CURLOPT_USERNAME, j->user);
			curl_easy_setopt(h, CURLOPT_PASSWORD, j->pass);
		}
		j->body_off = 0;
	}
	j->h = h;
	curl_multi_add_handle(multi, h);
	return 0;
}

static void finish(struct job *j, bool ok, const char *why)
{
	uint64_t now = es_mono_ns();

	al_breaker_result(&breakers[j->dest], ok, now);
	gauge(j->dest);
	es_metric_add(m_deliveries, 1, dest_names[j->dest], ok ? "success" : "failure");
	if (!ok)
		pr_warn("alert delivery failed", LF_STR("destination", dest_names[j->dest]),
			LF_STR("route", j->route), LF_STR("alert_id", j->alert_id),
			LF_UINT("attempts", j->attempt), LF_STR("error", why));
}

static void attempt_done(struct job *j, CURLcode cr, struct job **pending)
{
	long status = 0;
	bool ok = cr == CURLE_OK;
	char why[128];

	curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &status);
	if (ok && j->dest == AL_DEST_WEBHOOK)
		ok = status >= 200 && status <= 299;
	if (cr != CURLE_OK)
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(cr));
	else
		snprintf(why, sizeof(why), "status %ld", status);
	curl_multi_remove_handle(multi, j->h);
	curl_easy_cleanup(j->h);
	j->h = NULL;
	j->attempt++;
	if (!ok && j->attempt <= AL_MAX_RETRIES) {
		j->next_at = es_mono_ns() + (uint64_t)j->retry_ms[j->attempt - 1] * 1000000ull;
		pr_debug("alert delivery failed; retrying", LF_STR("route", j->route),
			 LF_STR("error", why), LF_UINT("attempt", j->attempt));
		j->next = *pending;
		*pending = j;
		return;
	}
	finish(j, ok, why);
	job_free(j);
}

static void *run_sender(void *arg)
{
	struct job *pending = NULL;

	while (!atomic_load(&stop_sender)) {
		struct job *in, **pp;
		uint64_t now, next = UINT64_MAX;
		CURLMsg *msg;
		int running_n, left;

		pthread_mutex_lock(&job_lock);
		in = incoming;
		incoming = NULL;
		pthread_mutex_unlock(&job_lock);
		while (in) {
			struct job *j = in;

			in = in->next;
			j->next = pending;
			pending = j;
		}
		now = es_mono_ns();
		for (pp = &pending; *pp;) {
			struct job *j = *pp;

			if (j->next_at > now) {
				if (j->next_at < next)
					next = j->next_at;
				pp = &j->next;
				continue;
			}
			*pp = j->next;
			if (j->attempt == 0 && !al_breaker_allow(&breakers[j->dest], now)) {
				gauge(j->dest);
				es_metric_add(m_deliveries, 1, dest_names[j->dest], "rejected");
				pr_warnf("circuit breaker open for destination '%s'",
					 dest_names[j->dest]);
				job_free(j);
				continue;
			}
			if (j->attempt == 0)
				gauge(j->dest);
			if (start_attempt(j)) {
				finish(j, false, "out of memory");
				job_free(j);
			}
		}
		curl_multi_perform(multi, &running_n);
		while ((msg = curl_multi_info_read(multi, &left))) {
			struct job *j;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			attempt_done(j, msg->data.result, &pending);
		}
		now = es_mono_ns();
		{
			int wait = 200;

			if (next != UINT64_MAX)
				wait = next <= now ? 0 : (int)((next - now) / 1000000ull) + 1;
			if (wait > 200)
				wait = 200;
			curl_multi_poll(multi, NULL, 0, wait, NULL);
		}
	}
	/* Shutdown: abandon what is left (delivery is best effort). */
	while (pending) {
		struct job *j = pending;

		pending = j->next;
		job_free(j);
	}
	return NULL;
}

static void enqueue_job(struct job *j)
{
	pthread_mutex_lock(&job_lock);
	if (queued[j->dest] >= AL_SENDER_QUEUE_CAP) {
		pthread_mutex_unlock(&job_lock);
		es_metric_add(m_dropped, 1, "sender_queue_full");
		queued[j->dest]++; /* job_free decrements */
		job_free(j);
		return;
	}
	queued[j->dest]++;
	j->next = incoming;
	incoming = j;
	pthread_mutex_unlock(&job_lock);
	curl_multi_wakeup(multi);
}

static char *crlf(const char *s, size_t *len)
{
	struct es_sb sb = ES_SB_INIT;

	for (; *s; s++) {
		if (*s == '\n')
			es_sb_putc(&sb, '\r');
		es_sb_putc(&sb, *s);
	}
	*len = sb.len;
	return es_sb_steal(&sb);
}

static struct job *make_job(const struct al_cfg *c, const struct al_route *r,
			    const struct es_alert *a)
{
	struct job *j = calloc(1, sizeof(*j));
	json_t *doc = al_alert_json(a, true);
	char *s = NULL;

	if (!j || !doc)
		goto fail;
	j->dest = r->dest;
	memcpy(j->retry_ms, c->retry_ms, sizeof(j->retry_ms));
	snprintf(j->alert_id, sizeof(j->alert_id), "%s", a->id);
	snprintf(j->route, sizeof(j->route), "%s", r->name);
	if (r->dest == AL_DEST_WEBHOOK) {
		j->url = strdup(r->webhook_url);
		j->body = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!j->url || !j->body)
			goto fail;
		j->body_len = strlen(j->body);
		j->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
		for (size_t i = 0; r->header_names && r->header_names[i]; i++) {
			char h[1024];

			snprintf(h, sizeof(h), "%s: %s", r->header_names[i], r->header_values[i]);
			j->hdrs = curl_slist_append(j->hdrs, h);
		}
	} else {
		struct es_sb sb = ES_SB_INIT;
		const char *host = c->smtp.host;
		bool v6 = strchr(host, ':') != NULL;
		char url[512], date[64];
		time_t now = time(NULL);
		struct tm tm;

		snprintf(url, sizeof(url), "%s://%s%s%s:%u",
			 c->smtp.tls && c->smtp.port == 465 ? "smtps" : "smtp", v6 ? "[" : "", host,
			 v6 ? "]" : "", c->smtp.port);
		j->url = strdup(url);
		j->require_tls = c->smtp.tls && c->smtp.port != 465;
		j->mail_from = strdup(c->smtp.from_address);
		j->rcpt = curl_slist_append(NULL, r->email_to);
		if (c->smtp.username && c->smtp.password) {
			j->user = strdup(c->smtp.username);
			j->pass = strdup(c->smtp.password);
		}
		s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		es_sb_printf(&sb,
			     "From: %s\nTo: %s\nSubject: [eBPFsentinel] %s alert: %s (%s)\n"
			     "Date: %s\nMIME-Version: 1.0\n"
			     "Content-Type: text/plain; charset=utf-8\n\n%s\n",
			     c->smtp.from_address, r->email_to, al_severity_cap(a->severity),
			     a->rule_id, a->component, date, s ? s : "");
		j->body = crlf(es_sb_str(&sb), &j->body_len);
		es_sb_free(&sb);
		if (!j->url || !j->mail_from || !j->rcpt || !j->body)
			goto fail;
	}
	free(s);
	json_decref(doc);
	return j;
fail:
	free(s);
	json_decref(doc);
	if (j) {
		pthread_mutex_lock(&job_lock);
		queued[j->dest]++; /* balance job_free */
		pthread_mutex_unlock(&job_lock);
		job_free(j);
	}
	return NULL;
}

/* ---- alert thread ------------------------------------------------------------ */

static void deliver_log(const struct al_route *r, const struct es_alert *a)
{
	char src[64], dst[64];

	al_addr_str(a->src_addr, a->is_ipv6, src, sizeof(src));
	al_addr_str(a->dst_addr, a->is_ipv6, dst, sizeof(dst));
	pr_info("alert sent to log", LF_STR("alert_id", a->id), LF_STR("rule_id", a->rule_id),
		LF_STR("severity", es_severity_name(a->severity)),
		LF_STR("component", a->component), LF_STR("route", r->name), LF_STR("src_ip", src),
		LF_STR("dst_ip", dst), LF_UINT("src_port", a->src_port),
		LF_UINT("dst_port", a->dst_port), LF_UINT("protocol", a->protocol),
		LF_STR("action", a->action == ES_ALERT_ACT_BLOCK ? "block" : "alert"),
		LF_STR("alert_message", a->message));
	es_metric_add(m_deliveries, 1, "log", "success");
}

static void route_one(const struct al_cfg *c, const struct es_alert *a, uint64_t now)
{
	bool any = false;

	if (al_dedup_check(dedup, a, c->dedup_window_secs * AL_NS, now) ||
	    al_throttle_check(throttle, a->rule_id, c->throttle_window_secs * AL_NS,
			      c->throttle_max, now)) {
		es_metric_add(m_dropped, 1, "no_route");
		return;
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		const struct al_route *r = &c->routes[i];
		struct job *j;

		if (!al_route_matches(r, a))
			continue;
		any = true;
		if (r->dest == AL_DEST_LOG) {
			deliver_log(r, a);
			continue;
		}
		if ((j = make_job(c, r, a)))
			enqueue_job(j);
	}
	if (!any)
		es_metric_add(m_dropped, 1, "no_route");
}

static void process(struct es_alert *batch, size_t n)
{
	const struct es_alert *ptrs[AL_BATCH];
	uint64_t now = es_mono_ns();

	for (size_t i = 0; i < n; i++) {
		struct es_alert *a = &batch[i];

		es_alert_enrich(a);
		es_metric_add(m_alerts, 1, a->component, es_severity_name(a->severity));
		es_metric_add(m_by_rule, 1, a->component, a->rule_id);
		ptrs[i] = a;
	}
	if (al_store_ready())
		al_store_insert(ptrs, n);
	/* Live subscribers see every alert, before dedup and throttling (§5.2). */
	for (size_t i = 0; i < n; i++)
		es_grpc_publish(&batch[i]);
	pthread_mutex_lock(&cfg_lock);
	for (size_t i = 0; i < n; i++)
		route_one(cfg, &batch[i], now);
	pthread_mutex_unlock(&cfg_lock);
}

static size_t take(struct es_alert *out, size_t max, int wait_ms)
{
	size_t n = 0;

	pthread_mutex_lock(&in_lock);
	if (!in_len && wait_ms > 0)
		es_cond_wait_ms(&in_cond, &in_lock, wait_ms);
	while (in_len && n < max) {
		out[n++] = intake[in_head];
		in_head = (in_head + 1) % AL_INTAKE_CAP;
		in_len--;
	}
	pthread_mutex_unlock(&in_lock);
	return n;
}

static void *run_alerts(void *arg)
{
	static struct es_alert batch[AL_BATCH];

	while (!atomic_load(&stop_alerts)) {
		size_t n = take(batch, AL_BATCH, 100);

		if (n)
			process(batch, n);
	}
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

static void metrics_init(void)
{
	m_alerts = es_metric_family("ebpfsentinel_alerts", "Alerts produced (before dedup)",
				    ES_M_COUNTER, "component,severity");
	m_by_rule = es_metric_family("ebpfsentinel_alerts_by_rule", "Alerts per rule", ES_M_COUNTER,
				     "component,rule_id");
	m_dropped = es_metric_family("ebpfsentinel_alerts_dropped",
				     "Alerts not delivered to any sender", ES_M_COUNTER, "reason");
	m_events_dropped = es_metric_family(
	    "ebpfsentinel_events_dropped", "Events lost before processing", ES_M_COUNTER, "reason");
	m_circuit = es_metric_family("ebpfsentinel_alert_sender_circuit_state",
				     "0 closed, 1 half-open, 2 open", ES_M_GAUGE, "destination");
	m_deliveries = es_metric_family("ebpfsentinel_alert_deliveries",
					"Alert deliveries by destination and outcome (success, "
					"failure after retries, rejected by the circuit breaker)",
					ES_M_COUNTER, "destination,result");
}

int al_pipeline_start(const struct al_cfg *c)
{
	int r;

	metrics_init();
	cfg = cfg_clone(c);
	dedup = al_dedup__new();
	throttle = al_throttle__new();
	multi = curl_multi_init();
	if (!cfg || !dedup || !throttle || !multi) {
		r = -ENOMEM;
		goto fail;
	}
	memset(breakers, 0, sizeof(breakers));
	gauge(AL_DEST_WEBHOOK);
	gauge(AL_DEST_EMAIL);
	atomic_store(&stop_alerts, false);
	atomic_store(&stop_sender, false);
	if ((r = -pthread_create(&send_thread, NULL, run_sender, NULL)))
		goto fail;
	if ((r = -pthread_create(&alert_thread, NULL, run_alerts, NULL))) {
		atomic_store(&stop_sender, true);
		curl_multi_wakeup(multi);
		pthread_join(send_thread, NULL);
		goto fail;
	}
	running = true;
	es_alert_set_sink(sink);
	return 0;
fail:
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
	al_throttle__free(throttle);
	al_dedup__free(dedup);
	al_cfg_free(cfg);
	cfg = NULL;
	return r;
}

void al_pipeline_apply(const struct al_cfg *c)
{
	struct al_cfg *n = cfg_clone(c), *old;

	if (!n)
		return;
	pthread_mutex_lock(&cfg_lock);
	old = cfg;
	cfg = n;
	pthread_mutex_unlock(&cfg_lock);
	al_cfg_free(old);
}

void al_pipeline_tick(void)
{
	static unsigned ticks;
	uint64_t now = es_mono_ns();

	if (!running || ++ticks % 10)
		return;
	pthread_mutex_lock(&cfg_lock);
	al_dedup_prune(dedup, cfg->dedup_window_secs * AL_NS, now);
	al_throttle_prune(throttle, cfg->throttle_window_secs * AL_NS, now);
	pthread_mutex_unlock(&cfg_lock);
	if (ticks % 3600 == 0)
		al_store_purge();
}

void al_pipeline_stop(int drain_ms)
{
	static struct es_alert batch[AL_BATCH];
	uint64_t deadline = es_mono_ns() + (uint64_t)drain_ms * 1000000ull;
	size_t n;

	if (!running)
		return;
	es_alert_set_sink(NULL);
	atomic_store(&stop_alerts, true);
	pthread_join(alert_thread, NULL);
	/* Drain what intake still holds, bounded in time. */
	while ((n = take(batch, AL_BATCH, 0))) {
		if (es_mono_ns() > deadline)
			continue; /* dropped at shutdown */
		process(batch, n);
	}
	atomic_store(&stop_sender, true);
	curl_multi_wakeup(multi);
	pthread_join(send_thread, NULL);
	curl_multi_cleanup(multi);
	multi = NULL;
	al_dedup__free(dedup);
	al_throttle__free(throttle);
	dedup = NULL;
	throttle = NULL;
	al_cfg_free(cfg);
	cfg = NULL;
	running = false;
}
