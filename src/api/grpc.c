// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The gRPC server: one thread, epoll, nonblocking sockets, an nghttp2 server
 * session per connection (optionally behind GnuTLS, TLS 1.3 with ALPN h2).
 * Requests are validated at their headers (method, content type, encoding,
 * authentication) and answered trailers-only when refused; messages are
 * length-prefixed across DATA frames and responses end with grpc-status /
 * grpc-message trailers. Streams honour grpc-timeout. Subscribers of
 * StreamAlerts own a ring of ES_GRPC_SUB_BUFFER encoded alerts: a slow client
 * loses its oldest alerts, never the agent's memory.
 */
#define _GNU_SOURCE
#define ES_LOG_TARGET "ebpfsentinel::grpc"
#include "api/grpc.h"
#include "api/metrics.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ebpfsentinel/v1/alerts.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define ALERT_SVC "ebpfsentinel.v1.AlertStreamService"
#define PULL_BYTES (64 * 1024)

enum method {
	M_NONE = 0,
	M_STREAM_ALERTS,
	M_HEALTH_CHECK,
	M_HEALTH_WATCH,
	M_REFLECT,
};

struct msg {
	int refs;
	size_t len;
	uint8_t data[]; /* framed: flag, length, message */
};

struct conn;

struct stream {
	struct conn *c;
	struct stream *next; /* in the connection */
	int32_t id;
	enum method m;
	char path[160];
	char encoding[32];
	bool is_post, grpc_ct, refused;
	char *auth;
	uint64_t deadline; /* monotonic ns; 0 = none */
	struct es_grpc_deframer in;
	bool got_msg;
	struct es_sb out; /* framed bytes not yet handed to nghttp2 */
	size_t out_off;
	bool responding, deferred, finishing, done;
	int status;
	char message[256];
	/* StreamAlerts subscription (guarded by sub_lock) */
	bool subscribed;
	struct es_grpc_filter filter;
	struct msg *ring[ES_GRPC_SUB_BUFFER];
	size_t r_head, r_len;
	struct stream *sub_next, *sub_prev;
};

struct conn {
	struct conn *next;
	int fd;
	gnutls_session_t tls;
	bool handshaking;
	nghttp2_session *h2;
	uint8_t *pend;
	size_t pend_len, pend_off;
	struct stream *streams;
	bool dead;
	uint32_t events;
};

static pthread_t thread;
static int listen_fd = -1, ep = -1, wake_fd = -1;
static atomic_bool stopping;
static bool running;
static int drain_ms_req = 5000;
static struct conn *conns;
static unsigned n_conns;
static _Atomic(es_grpc_auth_fn) auth_hook;

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static gnutls_certificate_credentials_t creds;
static gnutls_certificate_credentials_t retired[16];
static unsigned n_retired;
static gnutls_priority_t prio;

static pthread_mutex_t sub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stream *subs;
static _Atomic uint64_t lagged;

void es_grpc_set_auth_hook(es_grpc_auth_fn fn)
{
	atomic_store(&auth_hook, fn);
}

/* ---- subscribers ------------------------------------------------------------------ */

static void msg_put(struct msg *m)
{
	if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(m);
}

static struct msg *msg_frame(const uint8_t *body, size_t len)
{
	struct msg *m = malloc(sizeof(*m) + 5 + len);

	if (!m)
		return NULL;
	m->refs = 1;
	m->len = 5 + len;
	m->data[0] = 0;
	m->data[1] = (uint8_t)(len >> 24);
	m->data[2] = (uint8_t)(len >> 16);
	m->data[3] = (uint8_t)(len >> 8);
	m->data[4] = (uint8_t)len;
	memcpy(m->data + 5, body, len);
	return m;
}

void es_grpc_publish(const struct es_alert *a)
{
	struct msg *m = NULL;
	bool any = false;
	uint64_t one = 1;

	pthread_mutex_lock(&sub_lock);
	for (struct stream *s = subs; s; s = s->sub_next) {
		if (!es_grpc_filter_match(&s->filter, a))
			continue;
		if (!m) {
			size_t len;
			uint8_t *body = es_grpc_alert_event(a, &len);

			m = body ? msg_frame(body, len) : NULL;
			free(body);
			if (!m)
				break;
		}
		if (s->r_len == ES_GRPC_SUB_BUFFER) {
			/* Lagging subscriber: the oldest alert goes, the newest stays. */
			msg_put(s->ring[s->r_head]);
			s->r_head = (s->r_head + 1) % ES_GRPC_SUB_BUFFER;
			s->r_len--;
			atomic_fetch_add(&lagged, 1);
		}
		__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
		s->ring[(s->r_head + s->r_len) % ES_GRPC_SUB_BUFFER] = m;
		s->r_len++;
		any = true;
	}
	pthread_mutex_unlock(&sub_lock);
	msg_put(m);
	if (any && wake_fd >= 0 && write(wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: the thread will look anyway */
	}
}

static void subscribe(struct stream *s)
{
	pthread_mutex_lock(&sub_lock);
	s->subscribed = true;
	s->sub_prev = NULL;
	s->sub_next = subs;
	if (subs)
		subs->sub_prev = s;
	subs = s;
	pthread_mutex_unlock(&sub_lock);
}

static void unsubscribe(struct stream *s)
{
	pthread_mutex_lock(&sub_lock);
	if (s->subscribed) {
		if (s->sub_prev)
			s->sub_prev->sub_next = s->sub_next;
		else
			subs = s->sub_next;
		if (s->sub_next)
			s->sub_next->sub_prev = s->sub_prev;
		while (s->r_len) {
			msg_put(s->ring[s->r_head]);
			s->r_head = (s->r_head + 1) % ES_GRPC_SUB_BUFFER;
			s->r_len--;
		}
		s->subscribed = false;
	}
	pthread_mutex_unlock(&sub_lock);
}

/* Move buffered alerts into the stream's output (at most PULL_BYTES). */
static void pull(struct stream *s)
{
	pthread_mutex_lock(&sub_lock);
	while (s->r_len && s->out.len < PULL_BYTES) {
		struct msg *m = s->ring[s->r_head];

		es_sb_append(&s->out, (const char *)m->data, m->len);
		msg_put(m);
		s->r_head = (s->r_head + 1) % ES_GRPC_SUB_BUFFER;
		s->r_len--;
	}
	pthread_mutex_unlock(&sub_lock);
}

static bool has_pending(struct stream *s)
{
	bool r;

	pthread_mutex_lock(&sub_lock);
	r = s->r_len > 0;
	pthread_mutex_unlock(&sub_lock);
	return r;
}

/* ---- responses ------------------------------------------------------------------- */

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                          \
		    NGHTTP2_NV_FLAG_NO_COPY_NAME                                                   \
	}

static ssize_t read_cb(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
		       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct stream *s = src->ptr;
	size_t avail;

	if (s->out.len == s->out_off && s->subscribed) {
		es_sb_reset(&s->out);
		s->out_off = 0;
		pull(s);
	}
	avail = s->out.len - s->out_off;
	if (avail) {
		size_t n = avail < length ? avail : length;

		memcpy(buf, s->out.buf + s->out_off, n);
		s->out_off += n;
		if (s->out_off == s->out.len) {
			es_sb_reset(&s->out);
			s->out_off = 0;
		}
		return (ssize_t)n;
	}
	if (s->finishing && !s->done) {
		char st[16], enc[512];
		nghttp2_nv tr[2] = {NV("grpc-status", st), NV("grpc-message", enc)};

		snprintf(st, sizeof(st), "%d", s->status);
		es_grpc_encode_message(s->message, enc, sizeof(enc));
		tr[0].valuelen = strlen(st);
		tr[1].valuelen = strlen(enc);
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		nghttp2_submit_trailer(h2, id, tr, s->message[0] ? 2 : 1);
		s->done = true;
		return 0;
	}
	s->deferred = true;
	return NGHTTP2_ERR_DEFERRED;
}

static void respond(struct stream *s)
{
	nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
			     NV("grpc-accept-encoding", "identity")};
	nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_cb};

	if (s->responding)
		return;
	s->responding = true;
	nghttp2_submit_response(s->c->h2, s->id, hdrs, 3, &prd);
}

static void kick(struct stream *s)
{
	if (s->responding && s->deferred) {
		s->deferred = false;
		nghttp2_session_resume_data(s->c->h2, s->id);
	}
}

/* End the call with a status: trailers after the data, or trailers-only. */
static void finish(struct stream *s, int status, const char *msg)
{
	if (s->finishing || s->done)
		return;
	unsubscribe(s);
	s->status = status;
	snprintf(s->message, sizeof(s->message), "%s", msg ? msg : "");
	s->finishing = true;
	if (!s->responding) {
		char st[16], enc[512];
		nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
				     NV("grpc-accept-encoding", "identity"), NV("grpc-status", st),
				     NV("grpc-message", enc)};

		snprintf(st, sizeof(st), "%d", status);
		es_grpc_encode_message(s->message, enc, sizeof(enc));
		hdrs[3].valuelen = strlen(st);
		hdrs[4].valuelen = strlen(enc);
		s->responding = true;
		s->done = true;
		nghttp2_submit_response(s->c->h2, s->id, hdrs, s->message[0] ? 5 : 4, NULL);
		return;
	}
	kick(s);
}

static void send_msg(struct stream *s, const uint8_t *body, size_t len)
{
	uint8_t pfx[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			  (uint8_t)len};

	es_sb_append(&s->out, (const char *)pfx, 5);
	es_sb_append(&s->out, (const char *)body, len);
	respond(s);
	kick(s);
}

static void http_error(struct stream *s, const char *status)
{
	nghttp2_nv hdrs[] = {NV(":status", status)};

	s->responding = s->done = s->finishing = true;
	nghttp2_submit_response(s->c->h2, s->id, hdrs, 1, NULL);
}

/* ---- services -------------------------------------------------------------------- */

static void health_reply(struct stream *s, const uint8_t *req, size_t len, bool watch)
{
	Grpc__Health__V1__HealthCheckRequest *rq =
	    grpc__health__v1__health_check_request__unpack(NULL, len, req);
	Grpc__Health__V1__HealthCheckResponse rs = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	uint8_t buf[16];
	size_t n;

	if (!rq) {
		finish(s, ES_GRPC_INTERNAL, "invalid HealthCheckRequest");
		return;
	}
	if (rq->service[0] && strcmp(rq->service, ALERT_SVC)) {
		char m[300];

		snprintf(m, sizeof(m), "unknown service: %s", rq->service);
		grpc__health__v1__health_check_request__free_unpacked(rq, NULL);
		finish(s, ES_GRPC_NOT_FOUND, m);
		return;
	}
	grpc__health__v1__health_check_request__free_unpacked(rq, NULL);
	/* SERVING for the process lifetime (§1.3): eBPF state is not reflected. */
	rs.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	n = grpc__health__v1__health_check_response__pack(&rs, buf);
	send_msg(s, buf, n);
	if (!watch)
		finish(s, ES_GRPC_OK, NULL);
}

static void stream_alerts(struct stream *s, const uint8_t *req, size_t len)
{
	Ebpfsentinel__V1__StreamAlertsRequest *rq =
	    ebpfsentinel__v1__stream_alerts_request__unpack(NULL, len, req);

	if (!rq) {
		finish(s, ES_GRPC_INTERNAL, "invalid StreamAlertsRequest");
		return;
	}
	es_grpc_filter_init(&s->filter, rq->min_severity, rq->component);
	ebpfsentinel__v1__stream_alerts_request__free_unpacked(rq, NULL);
	subscribe(s);
	respond(s); /* headers now: the subscription is live */
}

static int on_message(const uint8_t *m, size_t len, bool compressed, void *arg)
{
	struct stream *s = arg;

	if (compressed) {
		finish(s, ES_GRPC_INTERNAL,
		       "compressed message received without a negotiated grpc-encoding");
		return -EPROTO;
	}
	if (s->got_msg && s->m != M_REFLECT) {
		finish(s, ES_GRPC_UNIMPLEMENTED, "more than one request message");
		return -EPROTO;
	}
	s->got_msg = true;
	switch (s->m) {
	case M_STREAM_ALERTS: stream_alerts(s, m, len); break;
	case M_HEALTH_CHECK: health_reply(s, m, len, false); break;
	case M_HEALTH_WATCH: health_reply(s, m, len, true); break;
	case M_REFLECT: {
		size_t n;
		uint8_t *out = es_grpc_reflect(m, len, &n);

		if (!out) {
			finish(s, ES_GRPC_INTERNAL, "invalid ServerReflectionRequest");
			return -EPROTO;
		}
		send_msg(s, out, n);
		free(out);
		break;
	}
	default: break;
	}
	return 0;
}

static enum method route(const char *path)
{
	static const struct {
		const char *path;
		enum method m;
	} t[] = {
	    {"/" ALERT_SVC "/StreamAlerts", M_STREAM_ALERTS},
	    {"/grpc.health.v1.Health/Check", M_HEALTH_CHECK},
	    {"/grpc.health.v1.Health/Watch", M_HEALTH_WATCH},
	    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", M_REFLECT},
	    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", M_REFLECT},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(path, t[i].path))
			return t[i].m;
	return M_NONE;
}

/* The request headers are complete: accept the call or refuse it before any message. */
static void on_request(struct stream *s)
{
	char m[300];

	if (!s->is_post) {
		http_error(s, "405");
		return;
	}
	if (!s->grpc_ct) {
		http_error(s, "415");
		return;
	}
	if (s->encoding[0] && strcasecmp(s->encoding, "identity")) {
		snprintf(m, sizeof(m), "grpc-encoding '%s' is not supported", s->encoding);
		finish(s, ES_GRPC_UNIMPLEMENTED, m);
		return;
	}
	s->m = route(s->path);
	if (s->m == M_NONE) {
		snprintf(m, sizeof(m), "unknown method %s", s->path);
		finish(s, ES_GRPC_UNIMPLEMENTED, m);
		return;
	}
	if (s->m == M_STREAM_ALERTS) {
		es_grpc_auth_fn fn = atomic_load(&auth_hook);

		if (fn && fn(s->auth, m, sizeof(m))) {
			finish(s, ES_GRPC_UNAUTHENTICATED, m);
			return;
		}
	}
}

/* ---- nghttp2 callbacks --------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct conn *c = ud;
	struct stream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	s->c = c;
	s->id = f->hd.stream_id;
	s->next = c->streams;
	c->streams = s;
	nghttp2_session_set_stream_user_data(h2, s->id, s);
	return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct stream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	char v[4096];

	if (!s || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	snprintf(v, sizeof(v), "%.*s", (int)vlen, (const char *)value);
#define IS(n) (nlen == sizeof(n) - 1 && !memcmp(name, n, nlen))
	if (IS(":method"))
		s->is_post = !strcmp(v, "POST");
	else if (IS(":path"))
		snprintf(s->path, sizeof(s->path), "%.159s", v);
	else if (IS("content-type"))
		s->grpc_ct =
		    !strncmp(v, "application/grpc", 16) && (!v[16] || v[16] == '+' || v[16] == ';');
	else if (IS("grpc-encoding"))
		snprintf(s->encoding, sizeof(s->encoding), "%.31s", v);
	else if (IS("grpc-timeout")) {
		uint64_t ns;

		if (!es_grpc_parse_timeout(v, &ns))
			s->deadline = es_mono_ns() + ns;
	} else if (IS("authorization")) {
		free(s->auth);
		s->auth = strdup(v);
	}
#undef IS
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct stream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);

	if (!s)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		on_request(s);
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->finishing) {
		/* The client half-closed. */
		if (!s->got_msg && s->m != M_REFLECT)
			finish(s, ES_GRPC_INTERNAL, "missing request message");
		else if (s->m == M_REFLECT)
			finish(s, ES_GRPC_OK, NULL);
	}
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *ud)
{
	struct stream *s = nghttp2_session_get_stream_user_data(h2, id);
	int r;

	nghttp2_session_consume(h2, id, len);
	if (!s || s->finishing || s->m == M_NONE)
		return 0;
	r = es_grpc_deframe(&s->in, data, len, ES_GRPC_MAX_MESSAGE, on_message, s);
	if (r == -EMSGSIZE)
		finish(s, ES_GRPC_RESOURCE_EXHAUSTED, "request message larger than 4194304 bytes");
	else if (r == -ENOMEM)
		finish(s, ES_GRPC_RESOURCE_EXHAUSTED, "out of memory");
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud)
{
	struct conn *c = ud;
	struct stream *s = nghttp2_session_get_stream_user_data(h2, id), **pp;

	if (!s)
		return 0;
	unsubscribe(s);
	for (pp = &c->streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	es_grpc_deframer_free(&s->in);
	es_sb_free(&s->out);
	free(s->auth);
	free(s);
	return 0;
}

/* ---- connections ------------------------------------------------------------------ */

static ssize_t conn_recv(struct conn *c, uint8_t *buf, size_t len)
{
	ssize_t n;

	if (c->tls) {
		n = gnutls_record_recv(c->tls, buf, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return -EAGAIN;
		return n < 0 ? -EIO : n;
	}
	n = recv(c->fd, buf, len, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

static ssize_t conn_send(struct conn *c, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (c->tls) {
		n = gnutls_record_send(c->tls, buf, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return -EAGAIN;
		return n < 0 ? -EIO : n;
	}
	n = send(c->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

static void conn_flush(struct conn *c)
{
	while (!c->dead && c->h2) {
		if (c->pend_off == c->pend_len) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(c->h2, &data);

			if (n < 0) {
				c->dead = true;
				return;
			}
			if (n == 0)
				return;
			free(c->pend);
			c->pend = malloc((size_t)n);
			if (!c->pend) {
				c->dead = true;
				return;
			}
			memcpy(c->pend, data, (size_t)n);
			c->pend_len = (size_t)n;
			c->pend_off = 0;
		}
		while (c->pend_off < c->pend_len) {
			ssize_t w = conn_send(c, c->pend + c->pend_off, c->pend_len - c->pend_off);

			if (w == -EAGAIN)
				return;
			if (w <= 0) {
				c->dead = true;
				return;
			}
			c->pend_off += (size_t)w;
		}
	}
}

static int start_h2(struct conn *c)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry set[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, ES_GRPC_MAX_STREAMS},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
	};
	int r;

	if (nghttp2_session_callbacks_new(&cb))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	r = nghttp2_session_server_new(&c->h2, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (r)
		return -ENOMEM;
	nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, set, 2);
	return 0;
}

static void conn_events(struct conn *c)
{
	uint32_t ev = EPOLLIN;
	struct epoll_event e;

	if (c->pend_off < c->pend_len ||
	    (c->tls && c->handshaking && gnutls_record_get_direction(c->tls) == 1))
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	c->events = ev;
	e.events = ev;
	e.data.ptr = c;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_free(struct conn *c)
{
	struct conn **pp;

	for (pp = &conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	nghttp2_session_del(c->h2); /* closes the streams through on_stream_close */
	if (c->tls)
		gnutls_deinit(c->tls);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
	n_conns--;
}

static void conn_accept(void)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event e = {.events = EPOLLIN};
		struct conn *c;

		if (fd < 0)
			return;
		if (n_conns >= ES_GRPC_MAX_CONNECTIONS || atomic_load(&stopping) ||
		    !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->events = EPOLLIN;
		pthread_mutex_lock(&tls_lock);
		if (creds) {
			gnutls_datum_t h2 = {(unsigned char *)"h2", 2};

			if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK) ||
			    gnutls_priority_set(c->tls, prio) ||
			    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, creds) ||
			    gnutls_alpn_set_protocols(c->tls, &h2, 1, GNUTLS_ALPN_MANDATORY)) {
				pthread_mutex_unlock(&tls_lock);
				if (c->tls)
					gnutls_deinit(c->tls);
				close(fd);
				free(c);
				continue;
			}
			gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
			gnutls_transport_set_int(c->tls, fd);
			c->handshaking = true;
		}
		pthread_mutex_unlock(&tls_lock);
		if (!c->tls && start_h2(c)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = conns;
		conns = c;
		n_conns++;
		e.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
		conn_flush(c);
		conn_events(c);
	}
}

static void conn_io(struct conn *c)
{
	uint8_t buf[16384];

	if (c->handshaking) {
		int r = gnutls_handshake(c->tls);
		gnutls_datum_t proto;

		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return;
		if (r < 0 || gnutls_alpn_get_selected_protocol(c->tls, &proto) || proto.size != 2 ||
		    memcmp(proto.data, "h2", 2) || start_h2(c)) {
			pr_debug("gRPC TLS handshake failed",
				 LF_STR("error", r < 0 ? gnutls_strerror(r) : "no ALPN h2"));
			c->dead = true;
			return;
		}
		c->handshaking = false;
	}
	for (;;) {
		ssize_t n = conn_recv(c, buf, sizeof(buf));

		if (n == -EAGAIN)
			break;
		if (n <= 0 || nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0) {
			c->dead = true;
			return;
		}
	}
	conn_flush(c);
}

/* Push subscribers' new alerts and expire deadlines. */
static void service_streams(uint64_t now)
{
	for (struct conn *c = conns; c; c = c->next) {
		for (struct stream *s = c->streams; s; s = s->next) {
			if (s->deadline && now >= s->deadline && !s->finishing)
				finish(s, ES_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
			else if (s->subscribed && s->deferred && has_pending(s))
				kick(s);
		}
		conn_flush(c);
	}
}

static void reap(void)
{
	struct conn *c = conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (!c->dead && c->h2 && !nghttp2_session_want_read(c->h2) &&
		    !nghttp2_session_want_write(c->h2) && c->pend_off == c->pend_len)
			c->dead = true;
		if (c->dead)
			conn_free(c);
		else
			conn_events(c);
	}
}

static void begin_shutdown(void)
{
	for (struct conn *c = conns; c; c = c->next) {
		if (!c->h2) {
			c->dead = true;
			continue;
		}
		for (struct stream *s = c->streams; s; s = s->next)
			finish(s, ES_GRPC_UNAVAILABLE, "server shutting down");
		nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
				      nghttp2_session_get_last_proc_stream_id(c->h2),
				      NGHTTP2_NO_ERROR, NULL, 0);
		conn_flush(c);
	}
}

static void *run(void *arg)
{
	uint64_t drain_deadline = 0;
	bool shutting = false;

	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);
		uint64_t now;

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &listen_fd) {
				conn_accept();
			} else if (evs[i].data.ptr == &wake_fd) {
				uint64_t x;

				if (read(wake_fd, &x, sizeof(x)) < 0) {
					/* nothing pending */
				}
			} else {
				struct conn *c = evs[i].data.ptr;

				if (evs[i].events & (EPOLLERR | EPOLLHUP) &&
				    !(evs[i].events & EPOLLIN))
					c->dead = true;
				else
					conn_io(c);
			}
		}
		now = es_mono_ns();
		if (atomic_load(&stopping) && !shutting) {
			shutting = true;
			drain_deadline = now + (uint64_t)drain_ms_req * 1000000ull;
			epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL);
			begin_shutdown();
		}
		service_streams(now);
		if (shutting)
			for (struct conn *c = conns; c; c = c->next)
				if (!c->streams && c->pend_off == c->pend_len)
					c->dead = true; /* GOAWAY sent and nothing left to say */
		reap();
		if (shutting && (!conns || now >= drain_deadline))
			break;
	}
	while (conns)
		conn_free(conns);
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------- */

static int load_creds(const char *cert, const char *key, gnutls_certificate_credentials_t *out)
{
	gnutls_datum_t c = {(unsigned char *)cert, (unsigned)strlen(cert)};
	gnutls_datum_t k = {(unsigned char *)key, (unsigned)strlen(key)};
	int r;

	if (gnutls_certificate_allocate_credentials(out) < 0)
		return -ENOMEM;
	r = gnutls_certificate_set_x509_key_mem(*out, &c, &k, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		pr_error("cannot load the gRPC TLS certificate/key",
			 LF_STR("error", gnutls_strerror(r)));
		gnutls_certificate_free_credentials(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

int es_grpc_set_tls(const char *cert_pem, const char *key_pem)
{
	gnutls_certificate_credentials_t n;
	int r;

	if (!creds)
		return -EINVAL;
	if ((r = load_creds(cert_pem, key_pem, &n)))
		return r;
	pthread_mutex_lock(&tls_lock);
	/* Live sessions keep using the old pair: retire it, free it at stop. */
	if (n_retired < sizeof(retired) / sizeof(retired[0]))
		retired[n_retired++] = creds;
	creds = n;
	pthread_mutex_unlock(&tls_lock);
	return 0;
}

static void collect(void)
{
	es_metric_mirror(es_metric_family("ebpfsentinel_alerts_dropped",
					  "Alerts not delivered to any sender", ES_M_COUNTER,
					  "reason"),
			 atomic_load(&lagged), "grpc_subscriber_lagged");
}

static int bind_listener(const char *bind_address, uint16_t port)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	char addr[64];
	int fd, one = 1;

	snprintf(addr, sizeof(addr), "%s", bind_address);
	if (addr[0] == '[') {
		memmove(addr, addr + 1, strlen(addr));
		addr[strcspn(addr, "]")] = '\0';
	}
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 128)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int es_grpc_start(const struct es_grpc_opts *o)
{
	struct epoll_event e = {.events = EPOLLIN};
	int r;

	if (o->tls_cert_pem) {
		if ((r = load_creds(o->tls_cert_pem, o->tls_key_pem, &creds)))
			return r;
		if (gnutls_priority_init(&prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL) < 0) {
			r = -EINVAL;
			goto fail;
		}
	}
	listen_fd = bind_listener(o->bind_address, o->port);
	if (listen_fd < 0) {
		r = listen_fd;
		goto fail;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ep < 0 || wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	e.data.ptr = &listen_fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &e);
	e.data.ptr = &wake_fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &e);
	atomic_store(&stopping, false);
	if ((r = -pthread_create(&thread, NULL, run, NULL)))
		goto fail;
	running = true;
	es_metrics_add_collector(collect);
	return 0;
fail:
	if (wake_fd >= 0)
		close(wake_fd);
	if (ep >= 0)
		close(ep);
	if (listen_fd >= 0)
		close(listen_fd);
	wake_fd = ep = listen_fd = -1;
	if (prio)
		gnutls_priority_deinit(prio);
	if (creds)
		gnutls_certificate_free_credentials(creds);
	prio = NULL;
	creds = NULL;
	return r;
}

void es_grpc_stop(int drain_ms)
{
	uint64_t one = 1;

	if (!running)
		return;
	drain_ms_req = drain_ms;
	atomic_store(&stopping, true);
	if (write(wake_fd, &one, sizeof(one)) < 0) {
		/* the thread polls every 100 ms anyway */
	}
	pthread_join(thread, NULL);
	close(wake_fd);
	close(ep);
	close(listen_fd);
	wake_fd = ep = listen_fd = -1;
	if (prio)
		gnutls_priority_deinit(prio);
	if (creds)
		gnutls_certificate_free_credentials(creds);
	for (unsigned i = 0; i < n_retired; i++)
		gnutls_certificate_free_credentials(retired[i]);
	n_retired = 0;
	prio = NULL;
	creds = NULL;
	running = false;
}
