// SPDX-License-Identifier: AGPL-3.0-only
#include "cli/cli.h"
#include "core/strbuf.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- HTTP ------------------------------------------------------------------------ */

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	struct es_sb *sb = ud;

	es_sb_append(sb, p, sz * n);
	return sb->failed ? 0 : sz * n;
}

static void base_url(const struct es_cli *c, char *buf, size_t len)
{
	bool v6 = strchr(c->host, ':') && c->host[0] != '[';

	snprintf(buf, len, "%s://%s%s%s:%d", c->tls ? "https" : "http", v6 ? "[" : "", c->host,
		 v6 ? "]" : "", c->port);
}

int es_cli_request(const struct es_cli *c, const char *method, const char *path, const json_t *body,
		   struct es_cli_resp *out)
{
	struct curl_slist *hdrs = NULL;
	struct es_sb sb = ES_SB_INIT;
	char url[1024], base[512], auth[4096];
	char *payload = NULL;
	CURLcode cr;
	CURL *h;

	memset(out, 0, sizeof(*out));
	base_url(c, base, sizeof(base));
	snprintf(url, sizeof(url), "%s%s", base, path);
	h = curl_easy_init();
	if (!h) {
		fprintf(stderr, "Error: cannot initialise HTTP client\n");
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sb);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->tls) {
		if (c->insecure) {
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		}
		if (c->ca_cert)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_cert);
	}
	if (c->token && *c->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "");
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	cr = curl_easy_perform(h);
	if (cr != CURLE_OK) {
		if (cr == CURLE_OPERATION_TIMEDOUT)
			fprintf(stderr, "Error: connection to agent at %s timed out\n", base);
		else if (cr == CURLE_COULDNT_CONNECT || cr == CURLE_COULDNT_RESOLVE_HOST)
			fprintf(stderr,
				"Error: cannot connect to agent at %s — is the agent running?\n",
				base);
		else
			fprintf(stderr, "Error: request to agent at %s failed: %s\n", base,
				curl_easy_strerror(cr));
		curl_slist_free_all(hdrs);
		curl_easy_cleanup(h);
		free(payload);
		es_sb_free(&sb);
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	free(payload);
	out->raw_len = sb.len;
	out->raw = es_sb_steal(&sb);
	if (out->raw && out->raw_len)
		out->body = json_loadb(out->raw, out->raw_len, 0, NULL);
	return 0;
}

void es_cli_resp_free(struct es_cli_resp *r)
{
	json_decref(r->body);
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static const char *reason_phrase(long s)
{
	switch (s) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

int es_cli_fail_status(const struct es_cli_resp *r)
{
	json_t *e = json_object_get(r->body, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *rp = reason_phrase(r->status);

	if (code && msg)
		fprintf(stderr, "Error: %s (%s): %ld%s%s\n", msg, code, r->status, *rp ? " " : "",
			rp);
	else
		fprintf(stderr, "Error: request failed with status %ld%s%s\n", r->status,
			*rp ? " " : "", rp);
	return 1;
}

/* ---- output ---------------------------------------------------------------------- */

static char *cell(const json_t *v)
{
	char buf[64];

	if (!v || json_is_null(v))
		return strdup("-");
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_boolean(v))
		return strdup(json_is_true(v) ? "true" : "false");
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		return strdup(buf);
	}
	if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		return strdup(buf);
	}
	return json_dumps(v, JSON_COMPACT);
}

static void upper(char *dst, const char *s, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		dst[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
	dst[i] = '\0';
}

static void print_table(const json_t *arr, const char *const *cols, const char *noun)
{
	size_t ncols = 0, n = json_array_size(arr);
	size_t widths[32] = {0};
	const char *dyn[33];
	char hdr[128];

	if (n == 0) {
		printf("No %s found.\n", noun ? noun : "entries");
		return;
	}
	if (!cols) {
		/* Columns from the first object's keys. */
		const char *k;
		json_t *v;

		json_object_foreach (json_array_get(arr, 0), k, v)
			if (ncols < 32)
				dyn[ncols++] = k;
		dyn[ncols] = NULL;
		cols = dyn;
	}
	for (ncols = 0; cols[ncols] && ncols < 32; ncols++)
		widths[ncols] = strlen(cols[ncols]);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < ncols; k++) {
			char *s = cell(json_object_get(json_array_get(arr, i), cols[k]));

			if (s && strlen(s) > widths[k])
				widths[k] = strlen(s);
			free(s);
		}
	}
	for (size_t k = 0; k < ncols; k++) {
		upper(hdr, cols[k], sizeof(hdr));
		printf("%-*s%s", (int)widths[k], hdr, k + 1 < ncols ? "  " : "\n");
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < ncols; k++) {
			char *s = cell(json_object_get(json_array_get(arr, i), cols[k]));

			printf("%-*s%s", (int)widths[k], s ? s : "", k + 1 < ncols ? "  " : "\n");
			free(s);
		}
	}
	printf("%zu %s\n", n, noun ? noun : "entries");
}

static void print_kv(const json_t *obj, int indent)
{
	const char *k;
	json_t *v;
	size_t w = 0;

	json_object_foreach ((json_t *)obj, k, v)
		if (strlen(k) > w)
			w = strlen(k);
	json_object_foreach ((json_t *)obj, k, v) {
		if (json_is_object(v)) {
			printf("%*s%s:\n", indent, "", k);
			print_kv(v, indent + 2);
			continue;
		}
		char *s = cell(v);

		printf("%*s%-*s  %s\n", indent, "", (int)w, k, s ? s : "");
		free(s);
	}
}

void es_cli_print(const struct es_cli *c, const json_t *doc, const char *const *columns,
		  const char *noun)
{
	if (c->json) {
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		printf("%s\n", s ? s : "null");
		free(s);
		return;
	}
	if (json_is_array(doc))
		print_table(doc, columns, noun);
	else if (json_is_object(doc))
		print_kv(doc, 0);
	else {
		char *s = cell(doc);

		printf("%s\n", s ? s : "");
		free(s);
	}
}

/* ---- dispatch ---------------------------------------------------------------------- */

static const struct es_cli_cmd *find_cmd(const char *group, const char *action)
{
	for (const struct es_cli_cmd *const *t = es_cli_tables; *t; t++) {
		for (const struct es_cli_cmd *c = *t; c->action; c++) {
			if (group ? (c->group && !strcmp(c->group, group) &&
				     !strcmp(c->action, action))
				  : (!c->group && !strcmp(c->action, action)))
				return c;
		}
	}
	return NULL;
}

bool es_cli_is_command(const char *word)
{
	for (const struct es_cli_cmd *const *t = es_cli_tables; *t; t++)
		for (const struct es_cli_cmd *c = *t; c->action; c++)
			if (!strcmp(c->group ? c->group : c->action, word))
				return true;
	return false;
}

void es_cli_usage(FILE *f)
{
	fprintf(f, "Usage: ebpfsentinel-agent [OPTIONS] [COMMAND]\n\n"
		   "Without a command, runs the agent daemon in the foreground.\n\n"
		   "Options:\n"
		   "  -c, --config <PATH>       configuration file [default: "
		   "/etc/ebpfsentinel/config.yaml]\n"
		   "  -l, --log-level <LEVEL>   error, warn, info, debug, trace\n"
		   "      --log-format <FMT>    json, text\n"
		   "      --token <TOKEN>       bearer token for client commands [env: "
		   "EBPFSENTINEL_TOKEN]\n"
		   "  -o, --output <FMT>        table, json [default: table]\n"
		   "  -h, --help                print help\n"
		   "  -V, --version             print version\n\n"
		   "Commands:\n");
	for (const struct es_cli_cmd *const *t = es_cli_tables; *t; t++)
		for (const struct es_cli_cmd *c = *t; c->action; c++)
			fprintf(f, "  %s%s%-*s %s\n", c->group ? c->group : "", c->group ? " " : "",
				(int)(c->group ? 22 - strlen(c->group) - 1 : 22), c->action,
				c->help ? c->help : "");
	fprintf(f, "\nConnection options (after the command, or between group and action):\n"
		   "  --host <HOST>   [default: 127.0.0.1, env: EBPFSENTINEL_HOST]\n"
		   "  --port <PORT>   [default: 8080, env: EBPFSENTINEL_PORT]\n"
		   "  --tls, --ca-cert <PATH>, --insecure   reach an agent serving HTTPS\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\nFor more information, try '--help'.\n");
	return 2;
}

static int run_generic(const struct es_cli *c, const struct es_cli_cmd *cmd, int argc, char **argv)
{
	struct es_cli_resp r;
	json_t *body = NULL;
	char path[1024];
	const char *id = NULL, *json_arg = NULL;
	int ret = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json_arg = argv[++i];
		else if (!strncmp(argv[i], "--json=", 7))
			json_arg = argv[i] + 7;
		else if (argv[i][0] == '-')
			return usage_error("unexpected argument '%s' found", argv[i]);
		else if (!id)
			id = argv[i];
		else
			return usage_error("unexpected argument '%s' found", argv[i]);
	}
	switch (cmd->kind) {
	case ES_CLI_ADD: {
		json_error_t je;

		if (!json_arg)
			return usage_error("the following required arguments were not provided: %s",
					   "--json <JSON>");
		body = json_loads(json_arg, JSON_DECODE_ANY, &je);
		if (!body) {
			fprintf(stderr, "Error: invalid JSON: %s\n", je.text);
			return 1;
		}
		snprintf(path, sizeof(path), "%s", cmd->path);
		break;
	}
	case ES_CLI_DELETE: {
		char *enc;
		CURL *h;

		if (!id)
			return usage_error("the following required arguments were not provided: %s",
					   "<ID>");
		h = curl_easy_init();
		enc = h ? curl_easy_escape(h, id, 0) : NULL;
		snprintf(path, sizeof(path), "%s/%s", cmd->path, enc ? enc : id);
		curl_free(enc);
		if (h)
			curl_easy_cleanup(h);
		break;
	}
	default:
		if (id)
			return usage_error("unexpected argument '%s' found", id);
		snprintf(path, sizeof(path), "%s", cmd->path);
	}

	if (es_cli_request(c,
			   cmd->kind == ES_CLI_ADD	? "POST"
			   : cmd->kind == ES_CLI_DELETE ? "DELETE"
							: "GET",
			   path, body, &r)) {
		json_decref(body);
		return 1;
	}
	json_decref(body);
	if (r.status < 200 || r.status > 299) {
		ret = es_cli_fail_status(&r);
	} else if (cmd->kind == ES_CLI_DELETE) {
		printf("%s: %s\n", cmd->msg, id);
	} else if (!r.body) {
		fprintf(stderr, "Error: failed to parse response body\n");
		ret = 1;
	} else {
		es_cli_print(c, r.body, cmd->columns, cmd->msg);
	}
	es_cli_resp_free(&r);
	return ret;
}

static int parse_port(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < 0 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

int es_cli_main(int argc, char **argv, const char *token, bool json_out)
{
	struct es_cli c = {.port = 8080, .token = token, .json = json_out};
	const char *group = NULL, *action = NULL, *env;
	const struct es_cli_cmd *cmd;
	char *rest[64];
	int nrest = 0, r;

	snprintf(c.host, sizeof(c.host), "%s",
		 (env = getenv("EBPFSENTINEL_HOST")) && *env ? env : "127.0.0.1");
	if ((env = getenv("EBPFSENTINEL_PORT")) && *env && parse_port(env, &c.port))
		return usage_error("invalid value '%s' for '--port <PORT>'", env);
	if ((env = getenv("EBPFSENTINEL_TLS")) && (!strcmp(env, "1") || !strcasecmp(env, "true")))
		c.tls = true;

	/* argv[0] is the command word; connection and global options may follow. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if ((!strcmp(a, "--host") || !strcmp(a, "--port") || !strcmp(a, "--ca-cert")) &&
		    i + 1 >= argc)
			return usage_error("a value is required for '%s' but none was supplied", a);
		if (!strcmp(a, "--host")) {
			snprintf(c.host, sizeof(c.host), "%s", argv[++i]);
		} else if (!strcmp(a, "--port")) {
			if (parse_port(argv[++i], &c.port))
				return usage_error("invalid value '%s' for '--port <PORT>'",
						   argv[i]);
		} else if (!strcmp(a, "--tls")) {
			c.tls = true;
		} else if (!strcmp(a, "--insecure")) {
			c.insecure = true;
		} else if (!strcmp(a, "--ca-cert")) {
			c.ca_cert = argv[++i];
		} else if (nrest < 63) {
			rest[nrest++] = argv[i];
		}
	}
	rest[nrest] = NULL;

	if (find_cmd(NULL, argv[0])) {
		cmd = find_cmd(NULL, argv[0]);
		action = argv[0];
	} else {
		group = argv[0];
		if (nrest == 0 || rest[0][0] == '-')
			return usage_error("'%s' requires a subcommand", group);
		action = rest[0];
		cmd = find_cmd(group, action);
		if (!cmd)
			return usage_error("unrecognized subcommand '%s'", action);
		memmove(rest, rest + 1, (size_t)nrest * sizeof(rest[0]));
		nrest--;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (cmd->kind == ES_CLI_CUSTOM)
		r = cmd->run(&c, nrest, rest);
	else
		r = run_generic(&c, cmd, nrest, rest);
	curl_global_cleanup();
	return r;
}
