// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The domain table. Order = reload apply order (interfaces.md §10.2): the
 * data-plane domains, then authentication material and API keys, then
 * alerting routes (TLS material last, in reload.c). Start order is the same
 * except that ES_DOMAIN_EARLY domains (stores, identity, the alert pipeline)
 * start first, before the listeners, so engines can alert and audit from
 * their first packet.
 */
#include "agent/domain.h"

#include <string.h>

extern const struct es_domain es_domain_firewall;
extern const struct es_domain es_domain_audit;
extern const struct es_domain es_domain_auth;
extern const struct es_domain es_domain_conntrack;
extern const struct es_domain es_domain_alerting;
extern const struct es_domain es_domain_ids;
extern const struct es_domain es_domain_nat;
extern const struct es_domain es_domain_scrub;
extern const struct es_domain es_domain_routing;
extern const struct es_domain es_domain_ips;
extern const struct es_domain es_domain_zones;
extern const struct es_domain es_domain_ratelimit;
extern const struct es_domain es_domain_ddos;

ES_DOMAIN_PENDING(es_domain_geoip, "geoip");
ES_DOMAIN_PENDING(es_domain_l7, "l7");
ES_DOMAIN_PENDING(es_domain_loadbalancer, "loadbalancer");
ES_DOMAIN_PENDING(es_domain_threatintel, "threatintel");
ES_DOMAIN_PENDING(es_domain_dlp, "dlp");
ES_DOMAIN_PENDING(es_domain_dns, "dns");

extern const struct es_domain es_domain_agent;

const struct es_domain *const es_domains[] = {
    &es_domain_agent,	&es_domain_audit,	 &es_domain_geoip, &es_domain_firewall,
    &es_domain_zones,	&es_domain_ids,		 &es_domain_l7,	   &es_domain_ratelimit,
    &es_domain_ddos,	&es_domain_conntrack,	 &es_domain_nat,   &es_domain_scrub,
    &es_domain_routing, &es_domain_loadbalancer, &es_domain_ips,   &es_domain_threatintel,
    &es_domain_dlp,	&es_domain_dns,		 &es_domain_auth,  &es_domain_alerting,
};

const unsigned es_n_domains = sizeof(es_domains) / sizeof(es_domains[0]);

_Static_assert(sizeof(es_domains) / sizeof(es_domains[0]) <= 32, "raise ES_MAX_DOMAINS");

int es_domain_index(const char *name)
{
	for (unsigned i = 0; i < es_n_domains; i++)
		if (!strcmp(es_domains[i]->name, name))
			return (int)i;
	return -1;
}
