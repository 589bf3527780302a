/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * TLS material of the listeners (interfaces.md §9): one certificate chain and
 * key for REST and gRPC, TLS 1.3 only, no client certificates. The material
 * is handed to GnuTLS per handshake through es_tls_retrieve, so a reload that
 * replaces it applies to the next handshake of every listener; a reload that
 * fails leaves the running pair in place.
 */
#ifndef ES_TLS_H
#define ES_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

/* The only protocol version offered (interfaces.md §12 item 45). */
#define ES_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3"

/*
 * Read and check a PEM certificate chain (leaf first) and its private key
 * (PKCS#8, PKCS#1 RSA or SEC1 EC), then make them the material of every new
 * handshake. 0, or -errno with the reason in err and the old material kept.
 */
int es_tls_load(const char *cert_path, const char *key_path, char *err, size_t errlen);
bool es_tls_loaded(void);
/* Bumped each time new material is published (an unchanged pair is not). */
unsigned es_tls_generation(void);
/*
 * Copies of the running PEM texts, for listeners configured with PEM (the
 * gRPC server). Free cert with free() and key with es_tls_pem_free (wiped).
 * 0 or -ENOKEY when nothing is loaded.
 */
int es_tls_pem(char **cert, char **key);
void es_tls_pem_free(char *key_pem);
/* Free every set ever loaded (at shutdown, when no handshake can run). */
void es_tls_free(void);

/* For gnutls_certificate_set_retrieve_function2 (and MHD_OPTION_HTTPS_CERT_CALLBACK). */
int es_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
		    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
		    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey);

#endif
