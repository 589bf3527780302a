// SPDX-License-Identifier: AGPL-3.0-only
/* Process sampler (interfaces.md §6): RSS and CPU share over the last period,
 * plus the standard metric families registered once at startup. */
#include "agent/agent.h"
#include "api/metrics.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned long long last_proc, last_total;

static bool read_proc_ticks(unsigned long long *proc)
{
	FILE *f = fopen("/proc/self/stat", "re");
	char buf[1024], *p;
	unsigned long long ut, st;
	bool ok = false;

	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
		*proc = ut + st;
		ok = true;
	}
	fclose(f);
	return ok;
}

static bool read_total_ticks(unsigned long long *total)
{
	FILE *f = fopen("/proc/stat", "re");
	unsigned long long v[10] = {0};
	bool ok;

	if (!f)
		return false;
	ok = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		    &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 4;
	fclose(f);
	*total = 0;
	for (int i = 0; i < 8; i++) /* guest time is already counted in user */
		*total += v[i];
	return ok;
}

void es_process_sample(void)
{
	unsigned long long proc, total, pages_res = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%*u %llu", &pages_res) != 1)
			pages_res = 0;
		fclose(f);
	}
	es_metric_set(es_metric_find("ebpfsentinel_memory_usage_bytes"),
		      (double)pages_res * (double)sysconf(_SC_PAGESIZE));
	if (read_proc_ticks(&proc) && read_total_ticks(&total)) {
		if (last_total && total > last_total)
			es_metric_set(es_metric_find("ebpfsentinel_cpu_usage_percent"),
				      100.0 * (double)(proc - last_proc) /
					  (double)(total - last_total));
		last_proc = proc;
		last_total = total;
	}
}
