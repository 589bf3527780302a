// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Schedules (network.md §2.5): `<name>: {entries: [{days, time: "HH:MM-HH:MM"}]}`
 * in the agent's local time; an end before the start wraps midnight. The
 * clock can be replaced (tests) with fw_sched_set_clock().
 */
#include "domains/firewall/fw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const day_short[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
static const char *const day_long[] = {"monday", "tuesday",  "wednesday", "thursday",
				       "friday", "saturday", "sunday"};

#define FAIL(c, o, path, key, ...) es_cfg_fail(c, ES_ERR_VALIDATION, o, path, key, 0, __VA_ARGS__)

static int parse_day(const char *s)
{
	for (int i = 0; i < 7; i++)
		if (!strcasecmp(s, day_short[i]) || !strcasecmp(s, day_long[i]))
			return i;
	return -1;
}

static int parse_hm(const char *s, size_t n, uint16_t *out, bool allow_24)
{
	unsigned h, m;

	if (n != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
		return -EINVAL;
	h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m || !allow_24)))
		return -EINVAL;
	*out = (uint16_t)(h * 60 + m);
	return 0;
}

/* "HH:MM-HH:MM"; 24:00 is accepted as an end. */
static int parse_range(const char *s, uint16_t *start, uint16_t *end)
{
	const char *dash = strchr(s, '-');

	if (!dash || parse_hm(s, (size_t)(dash - s), start, false) ||
	    parse_hm(dash + 1, strlen(dash + 1), end, true) || *start == *end)
		return -EINVAL;
	return 0;
}

static int parse_entry(struct es_cfg *c, const json_t *o, const char *path,
		       struct fw_sched_entry *e)
{
	static const char *const keys[] = {"days", "time", NULL};
	char **days = NULL, *time_s = NULL;
	size_t n;
	int r = -EINVAL;

	if (!json_is_object(o))
		return es_cfg_fail(c, ES_ERR_PARSE, o, path, "", SIZE_MAX,
				   "invalid type: expected a map with days and time");
	es_cfg_check_keys(c, o, path, keys);
	if (es_cfg_strv(c, o, path, "days", &days, &n) ||
	    es_cfg_req_str(c, o, path, "time", &time_s))
		goto out;
	if (!n) {
		FAIL(c, o, path, "days", "a schedule entry needs at least one day");
		goto out;
	}
	e->days = 0;
	for (size_t i = 0; i < n; i++) {
		int d = parse_day(days[i]);

		if (d < 0) {
			FAIL(c, o, path, "days",
			     "invalid day '%s': expected mon..sun or monday..sunday", days[i]);
			goto out;
		}
		e->days |= (uint8_t)(1u << d);
	}
	if (parse_range(time_s, &e->start, &e->end)) {
		FAIL(c, o, path, "time", "invalid time range '%s': expected HH:MM-HH:MM", time_s);
		goto out;
	}
	r = 0;
out:
	es_strv_free(days);
	free(time_s);
	return r;
}

int fw_schedules_parse(struct es_cfg *c, const json_t *node, const char *path,
		       struct fw_schedules *out)
{
	const char *name;
	json_t *v;
	char p[300], ep[320];

	memset(out, 0, sizeof(*out));
	if (!node || json_is_null(node))
		return 0;
	if (!json_is_object(node))
		return es_cfg_fail(c, ES_ERR_PARSE, node, path, "", SIZE_MAX,
				   "invalid type: expected a map");
	out->v = calloc(json_object_size(node) + 1, sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	json_object_foreach ((json_t *)node, name, v) {
		struct fw_schedule *s = &out->v[out->n++];
		json_t *entries, *item;
		size_t i;

		es_path_key(p, sizeof(p), path, name);
		s->name = strdup(name);
		if (!s->name)
			goto fail;
		if (!json_is_object(v)) {
			es_cfg_fail(c, ES_ERR_PARSE, node, path, name, 0,
				    "invalid type: expected a map with entries");
			goto fail;
		}
		if (es_cfg_array(c, v, p, "entries", &entries))
			goto fail;
		if (!entries || !json_array_size(entries)) {
			FAIL(c, v, p, "entries", "schedule '%s' needs at least one entry", name);
			goto fail;
		}
		s->e = calloc(json_array_size(entries), sizeof(*s->e));
		if (!s->e)
			goto fail;
		es_path_key(ep, sizeof(ep), p, "entries");
		json_array_foreach (entries, i, item) {
			char ip[340];

			es_path_idx(ip, sizeof(ip), ep, i);
			if (parse_entry(c, item, ip, &s->e[i]))
				goto fail;
			s->n++;
		}
	}
	return 0;
fail:
	fw_schedules_free(out);
	return -EINVAL;
}

void fw_schedules_free(struct fw_schedules *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].e);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

const struct fw_schedule *fw_schedule_find(const struct fw_schedules *s, const char *name)
{
	for (size_t i = 0; s && name && i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			return &s->v[i];
	return NULL;
}

bool fw_schedule_active(const struct fw_schedule *s, const struct tm *tm)
{
	/* tm_wday: 0 = Sunday; our bit 0 = Monday. */
	unsigned day = (unsigned)(tm->tm_wday + 6) % 7;
	uint16_t now = (uint16_t)(tm->tm_hour * 60 + tm->tm_min);

	for (size_t i = 0; i < s->n; i++) {
		const struct fw_sched_entry *e = &s->e[i];

		if (!(e->days & (1u << day)))
			continue;
		if (e->start < e->end ? (now >= e->start && now < e->end)
				      : (now >= e->start || now < e->end))
			return true;
	}
	return false;
}

json_t *fw_schedule_to_json(const struct fw_schedule *s)
{
	json_t *entries = json_array();

	for (size_t i = 0; i < s->n; i++) {
		const struct fw_sched_entry *e = &s->e[i];
		json_t *days = json_array();
		char t[16];

		for (int d = 0; d < 7; d++)
			if (e->days & (1u << d))
				json_array_append_new(days, json_string(day_short[d]));
		snprintf(t, sizeof(t), "%02u:%02u-%02u:%02u", e->start / 60, e->start % 60,
			 e->end / 60, e->end % 60);
		json_array_append_new(entries, json_pack("{s:o,s:s}", "days", days, "time", t));
	}
	return json_pack("{s:o}", "entries", entries);
}

static time_t sys_clock(void)
{
	return time(NULL);
}

static fw_clock_fn clock_fn = sys_clock;

void fw_sched_set_clock(fw_clock_fn fn)
{
	clock_fn = fn ? fn : sys_clock;
}

time_t fw_sched_now(void)
{
	return clock_fn();
}
