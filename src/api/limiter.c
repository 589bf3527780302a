// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The write limiter of interfaces.md §3.1: a token bucket per client IP, 60
 * deep, refilled one token per second. Buckets live in a fixed table probed
 * from the address hash; a full (refilled) bucket is the same as none, so
 * those slots are reused first, then the least recently used of the probe
 * window. Memory stays bounded whatever the number of clients.
 */
#include "api/auth.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define SLOTS 4096
#define PROBE 8
#define MILLI_PER_TOKEN 1000ull
#define CAP (ES_WLIMIT_BURST * MILLI_PER_TOKEN)

struct bucket {
	char ip[48];
	unsigned long long tokens; /* thousandths of a token */
	unsigned long long last_ms;
};

static struct bucket table[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void refill(struct bucket *b, unsigned long long now_ms)
{
	unsigned long long add = now_ms > b->last_ms ? now_ms - b->last_ms : 0;

	b->tokens = b->tokens + add > CAP ? CAP : b->tokens + add;
	b->last_ms = now_ms;
}

static struct bucket *find(const char *ip, unsigned long long now_ms)
{
	unsigned h = hash(ip);
	struct bucket *victim = NULL;

	for (unsigned i = 0; i < PROBE; i++) {
		struct bucket *b = &table[(h + i) % SLOTS];

		if (b->ip[0] && !strcmp(b->ip, ip)) {
			refill(b, now_ms);
			return b;
		}
	}
	for (unsigned i = 0; i < PROBE; i++) {
		struct bucket *b = &table[(h + i) % SLOTS];

		if (!b->ip[0]) {
			victim = b;
			break;
		}
		if (b->tokens + (now_ms > b->last_ms ? now_ms - b->last_ms : 0) >= CAP) {
			victim = b;
			break;
		}
		if (!victim || b->last_ms < victim->last_ms)
			victim = b;
	}
	memset(victim, 0, sizeof(*victim));
	strncpy(victim->ip, ip, sizeof(victim->ip) - 1);
	victim->tokens = CAP;
	victim->last_ms = now_ms;
	return victim;
}

int es_wlimit_take(const char *ip, unsigned long long now_ms, unsigned *retry_s)
{
	struct bucket *b;
	int r = 0;

	pthread_mutex_lock(&lock);
	b = find(ip, now_ms);
	if (b->tokens >= MILLI_PER_TOKEN) {
		b->tokens -= MILLI_PER_TOKEN;
	} else {
		unsigned long long wait = MILLI_PER_TOKEN - b->tokens;

		*retry_s = (unsigned)((wait + 999) / 1000);
		r = -EAGAIN;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

void es_wlimit_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(table, 0, sizeof(table));
	pthread_mutex_unlock(&lock);
}
