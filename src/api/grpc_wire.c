// SPDX-License-Identifier: AGPL-3.0-only
/*
 * gRPC wire pieces that need no socket: length-prefixed message framing,
 * grpc-timeout, grpc-message encoding, the AlertEvent encoding and filter of
 * interfaces.md §5.2, and server reflection over the embedded descriptor set.
 */
#include "api/grpc.h"
#include "ebpfsentinel/v1/alerts.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- framing --------------------------------------------------------------------- */

int es_grpc_deframe(struct es_grpc_deframer *d, const uint8_t *data, size_t len, size_t max,
		    es_grpc_msg_fn fn, void *arg)
{
	size_t off = 0;
	int r = 0;

	if (len) {
		if (d->len + len > d->cap) {
			size_t cap = d->cap ? d->cap : 256;
			uint8_t *nb;

			while (cap < d->len + len)
				cap *= 2;
			if (cap > max + 5 + 65536)
				cap = d->len + len; /* the size check below rejects oversize */
			nb = realloc(d->buf, cap);
			if (!nb)
				return -ENOMEM;
			d->buf = nb;
			d->cap = cap;
		}
		memcpy(d->buf + d->len, data, len);
		d->len += len;
	}
	while (d->len - off >= 5) {
		const uint8_t *p = d->buf + off;
		uint32_t n =
		    (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];

		if (n > max) {
			d->len = 0;
			return -EMSGSIZE;
		}
		if (d->len - off - 5 < n)
			break;
		r = fn(p + 5, n, p[0] & 1, arg);
		off += 5 + n;
		if (r)
			break;
	}
	memmove(d->buf, d->buf + off, d->len - off);
	d->len -= off;
	return r;
}

void es_grpc_deframer_free(struct es_grpc_deframer *d)
{
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

int es_grpc_parse_timeout(const char *v, uint64_t *ns)
{
	size_t n = strlen(v);
	uint64_t x = 0, mul;

	if (n < 2 || n > 9)
		return -EINVAL;
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H': mul = 3600ull * 1000000000ull; break;
	case 'M': mul = 60ull * 1000000000ull; break;
	case 'S': mul = 1000000000ull; break;
	case 'm': mul = 1000000ull; break;
	case 'u': mul = 1000ull; break;
	case 'n': mul = 1; break;
	default: return -EINVAL;
	}
	*ns = x > UINT64_MAX / mul ? UINT64_MAX : x * mul;
	return 0;
}

void es_grpc_encode_message(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 4 < len; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c > 0x7e || c == '%')
			o += (size_t)snprintf(out + o, len - o, "%%%02X", c);
		else
			out[o++] = (char)c;
	}
	out[o < len ? o : len - 1] = '\0';
}

/* ---- AlertStreamService ------------------------------------------------------------- */

uint8_t *es_grpc_alert_event(const struct es_alert *a, size_t *len)
{
	Ebpfsentinel__V1__AlertEvent e = EBPFSENTINEL__V1__ALERT_EVENT__INIT;
	uint32_t src[4], dst[4];
	uint8_t *buf;

	memcpy(src, a->src_addr, sizeof(src));
	memcpy(dst, a->dst_addr, sizeof(dst));
	e.id = (char *)a->id;
	e.timestamp_ns = a->timestamp_ns;
	e.component = (char *)a->component;
	e.severity = (char *)es_severity_name(a->severity);
	e.rule_id = (char *)a->rule_id;
	e.action = a->action == ES_ALERT_ACT_BLOCK ? "block" : "alert";
	e.n_src_addr = 4;
	e.src_addr = src;
	e.n_dst_addr = 4;
	e.dst_addr = dst;
	e.src_port = a->src_port;
	e.dst_port = a->dst_port;
	e.protocol = a->protocol;
	e.message = (char *)a->message;
	e.is_ipv6 = a->is_ipv6;
	e.false_positive = a->false_positive;
#define STR(flag, f) e.f = (char *)((a->has & (flag)) ? a->f : "")
	STR(ES_AF_SRC_DOMAIN, src_domain);
	STR(ES_AF_DST_DOMAIN, dst_domain);
	STR(ES_AF_SRC_GEO, src_geo);
	STR(ES_AF_DST_GEO, dst_geo);
	STR(ES_AF_THREAT_TYPE, threat_type);
	STR(ES_AF_DATA_TYPE, data_type);
	STR(ES_AF_MATCHED_DOMAIN, matched_domain);
	STR(ES_AF_ATTACK_TYPE, attack_type);
	STR(ES_AF_MITIGATION_STATUS, mitigation_status);
#undef STR
	/* Absent numbers: -1 for scores, confidence and direction, else 0 (§5.2). */
	e.src_domain_score = a->has & ES_AF_SRC_DOMAIN_SCORE ? a->src_domain_score : -1;
	e.dst_domain_score = a->has & ES_AF_DST_DOMAIN_SCORE ? a->dst_domain_score : -1;
	e.confidence = a->has & ES_AF_CONFIDENCE ? a->confidence : -1;
	e.direction = a->has & ES_AF_DIRECTION ? a->direction : -1;
	e.pid = a->has & ES_AF_PID ? a->pid : 0;
	e.tgid = a->has & ES_AF_TGID ? a->tgid : 0;
	e.peak_pps = a->has & ES_AF_PEAK_PPS ? a->peak_pps : 0;
	e.current_pps = a->has & ES_AF_CURRENT_PPS ? a->current_pps : 0;
	e.total_packets = a->has & ES_AF_TOTAL_PACKETS ? a->total_packets : 0;
	*len = ebpfsentinel__v1__alert_event__get_packed_size(&e);
	buf = malloc(*len ? *len : 1);
	if (buf)
		ebpfsentinel__v1__alert_event__pack(&e, buf);
	return buf;
}

void es_grpc_filter_init(struct es_grpc_filter *f, const char *min_severity, const char *component)
{
	static const char *const names[] = {"medium", "high", "critical"};

	f->min_severity = -1;
	for (int i = 0; min_severity && i < 3; i++)
		if (!strcasecmp(min_severity, names[i]))
			f->min_severity = i + 1;
	snprintf(f->component, sizeof(f->component), "%s", component ? component : "");
}

bool es_grpc_filter_match(const struct es_grpc_filter *f, const struct es_alert *a)
{
	if (f->min_severity >= 0 && (int)a->severity < f->min_severity)
		return false;
	return !f->component[0] || !strcasecmp(f->component, a->component);
}

/* ---- reflection ------------------------------------------------------------------ */

extern const unsigned char es_grpc_descriptors[];
extern const size_t es_grpc_descriptors_len;

/* A length-delimited field walk over protobuf bytes (descriptor protos only). */
struct pb {
	const uint8_t *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
	*v = 0;
	for (int s = 0; s < 64 && b->p < b->end; s += 7) {
		uint8_t c = *b->p++;

		*v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			return 0;
	}
	return -EINVAL;
}

/* Next field: its number and, for LEN fields, the bytes. 1 field, 0 end, -EINVAL. */
static int pb_next(struct pb *b, uint32_t *field, struct pb *val)
{
	uint64_t key, n;

	if (b->p >= b->end)
		return 0;
	if (pb_varint(b, &key))
		return -EINVAL;
	*field = (uint32_t)(key >> 3);
	val->p = val->end = NULL;
	switch (key & 7) {
	case 0: return pb_varint(b, &n) ? -EINVAL : 1;
	case 1: b->p += 8; break;
	case 5: b->p += 4; break;
	case 2:
		if (pb_varint(b, &n) || n > (uint64_t)(b->end - b->p))
			return -EINVAL;
		val->p = b->p;
		val->end = b->p + n;
		b->p += n;
		return 1;
	default: return -EINVAL;
	}
	return b->p <= b->end ? 1 : -EINVAL;
}

static bool str_eq(const struct pb *v, const char *s)
{
	size_t n = strlen(s);

	return v->p && (size_t)(v->end - v->p) == n && !memcmp(v->p, s, n);
}

/* The name (field 1) of a descriptor message. */
static struct pb name_of(struct pb m)
{
	struct pb v, none = {0};
	uint32_t f;

	while (pb_next(&m, &f, &v) == 1)
		if (f == 1)
			return v;
	return none;
}

/* Does descriptor message m (a message, enum or service) define symbol sym
 * below prefix? Services also own their methods; messages nested types. */
static bool defines(struct pb m, const char *prefix, const char *sym, bool service)
{
	struct pb name = name_of(m), v;
	char full[512];
	uint32_t f;

	if (!name.p)
		return false;
	snprintf(full, sizeof(full), "%s%s%.*s", prefix, prefix[0] ? "." : "",
		 (int)(name.end - name.p), (const char *)name.p);
	if (!strcmp(full, sym))
		return true;
	while (pb_next(&m, &f, &v) == 1) {
		if (service && f == 2) {
			struct pb mn = name_of(v);
			size_t fl = strlen(full), ml = mn.p ? (size_t)(mn.end - mn.p) : 0;

			/* "<service>.<method>" */
			if (mn.p && strlen(sym) == fl + 1 + ml && !strncmp(sym, full, fl) &&
			    sym[fl] == '.' && !memcmp(sym + fl + 1, mn.p, ml))
				return true;
		}
		if (!service && (f == 3 || f == 4) && defines(v, full, sym, false))
			return true;
	}
	return false;
}

/* Visit each file of the embedded FileDescriptorSet. */
static bool file_matches(struct pb file, const char *filename, const char *symbol)
{
	struct pb v, pkg = {0};
	char prefix[256] = "";
	uint32_t f;
	struct pb it = file;

	while (pb_next(&it, &f, &v) == 1) {
		if (f == 1 && filename && str_eq(&v, filename))
			return true;
		if (f == 2)
			pkg = v;
	}
	if (!symbol)
		return false;
	if (pkg.p)
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(pkg.end - pkg.p),
			 (const char *)pkg.p);
	it = file;
	while (pb_next(&it, &f, &v) == 1)
		if ((f == 4 || f == 5 || f == 6) && defines(v, prefix, symbol, f == 6))
			return true;
	return false;
}

/* Services listed by reflection: the product's, health and reflection itself. */
static const char *const services[] = {
    "ebpfsentinel.v1.AlertStreamService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
};

uint8_t *es_grpc_reflect(const uint8_t *req, size_t len, size_t *out_len)
{
	Grpc__Reflection__V1__ServerReflectionRequest *rq =
	    grpc__reflection__v1__server_reflection_request__unpack(NULL, len, req);
	Grpc__Reflection__V1__ServerReflectionResponse rs =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse ls =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse svc[3], *svcp[3];
	Grpc__Reflection__V1__FileDescriptorResponse fd =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	ProtobufCBinaryData files[8];
	uint8_t *out = NULL;

	if (!rq)
		return NULL;
	rs.valid_host = rq->host;
	rs.original_request = rq;
	switch (rq->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		for (int i = 0; i < 3; i++) {
			grpc__reflection__v1__service_response__init(&svc[i]);
			svc[i].name = (char *)services[i];
			svcp[i] = &svc[i];
		}
		ls.n_service = 3;
		ls.service = svcp;
		rs.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
		rs.list_services_response = &ls;
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
		bool by_name =
		    rq->message_request_case ==
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
		struct pb set = {es_grpc_descriptors,
				 es_grpc_descriptors + es_grpc_descriptors_len};
		struct pb v;
		uint32_t f;

		while (pb_next(&set, &f, &v) == 1 && fd.n_file_descriptor_proto < 8) {
			if (f != 1 || !file_matches(v, by_name ? rq->file_by_filename : NULL,
						    by_name ? NULL : rq->file_containing_symbol))
				continue;
			files[fd.n_file_descriptor_proto].data = (uint8_t *)v.p;
			files[fd.n_file_descriptor_proto++].len = (size_t)(v.end - v.p);
		}
		if (fd.n_file_descriptor_proto) {
			fd.file_descriptor_proto = files;
			rs.message_response_case =
			    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
			rs.file_descriptor_response = &fd;
			break;
		}
		er.error_code = ES_GRPC_NOT_FOUND;
		er.error_message = by_name ? "file not found" : "symbol not found";
		rs.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		rs.error_response = &er;
		break;
	}
	default:
		er.error_code = ES_GRPC_UNIMPLEMENTED;
		er.error_message = "request not supported";
		rs.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		rs.error_response = &er;
	}
	*out_len = grpc__reflection__v1__server_reflection_response__get_packed_size(&rs);
	out = malloc(*out_len ? *out_len : 1);
	if (out)
		grpc__reflection__v1__server_reflection_response__pack(&rs, out);
	grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
	return out;
}
