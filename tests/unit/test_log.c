// SPDX-License-Identifier: AGPL-3.0-only
/* Structured logging: the JSON line shape of interfaces.md §1.3. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static char *capture(void (*fn)(void))
{
	char tmpl[] = "/tmp/es-log-XXXXXX", *buf = calloc(1, 4096);
	int fd = mkstemp(tmpl);

	cr_assert_geq(fd, 0);
	unlink(tmpl);
	es_log_set_fd(fd);
	fn();
	es_log_set_fd(-1);
	lseek(fd, 0, SEEK_SET);
	cr_assert_geq(read(fd, buf, 4095), 0);
	close(fd);
	return buf;
}

static void emit_json(void)
{
	es_log_setup(ES_LOG_INFO, ES_LOG_JSON);
	pr_info("alert sent to log", LF_STR("rule_id", "r1"), LF_UINT("dst_port", 22),
		LF_BOOL("ok", true), LF_STR("message", "the alert's own text"));
	pr_debug("not shown at info");
}

Test(log, json_line_is_flat_with_unique_keys)
{
	char *out = capture(emit_json);
	json_error_t e;
	json_t *j = json_loads(out, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &e);

	cr_assert_not_null(j, "not one JSON object without duplicate keys: %s (%s)", e.text, out);
	cr_expect_str_eq(json_string_value(json_object_get(j, "level")), "INFO");
	cr_expect_str_eq(json_string_value(json_object_get(j, "target")), "ebpfsentinel");
	cr_expect_str_eq(json_string_value(json_object_get(j, "message")), "alert sent to log");
	cr_expect_str_eq(json_string_value(json_object_get(j, "field_message")),
			 "the alert's own text");
	cr_expect_str_eq(json_string_value(json_object_get(j, "rule_id")), "r1");
	cr_expect_eq(json_integer_value(json_object_get(j, "dst_port")), 22);
	cr_expect(json_is_true(json_object_get(j, "ok")));
	cr_expect_eq(strlen(json_string_value(json_object_get(j, "timestamp"))), 27);
	cr_expect_null(strstr(out, "not shown"));
	cr_expect_eq(strchr(out, '\n') - out + 1, (long)strlen(out), "one line: %s", out);
	json_decref(j);
	free(out);
}

static void emit_text(void)
{
	es_log_setup(ES_LOG_DEBUG, ES_LOG_TEXT);
	pr_debugf("count=%d", 3);
	pr_warn("spaced value", LF_STR("path", "/a b"));
	es_log_setup(ES_LOG_INFO, ES_LOG_JSON);
}

Test(log, text_lines)
{
	char *out = capture(emit_text);

	cr_expect_not_null(strstr(out, " DEBUG ebpfsentinel: count=3\n"), "%s", out);
	cr_expect_not_null(strstr(out, "  WARN ebpfsentinel: spaced value path=\"/a b\"\n"), "%s",
			   out);
	free(out);
}

Test(log, level_names)
{
	enum es_log_level l;
	enum es_log_format f;

	cr_expect_eq(es_log_level_parse("WARNING", &l), 0);
	cr_expect_eq(l, ES_LOG_WARN);
	cr_expect_eq(es_log_level_parse("Trace", &l), 0);
	cr_expect_eq(l, ES_LOG_TRACE);
	cr_expect_neq(es_log_level_parse("verbose", &l), 0);
	cr_expect_eq(es_log_format_parse("Pretty", &f), 0);
	cr_expect_eq(f, ES_LOG_TEXT);
	cr_expect_neq(es_log_format_parse("xml", &f), 0);
}
