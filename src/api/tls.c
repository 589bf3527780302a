// SPDX-License-Identifier: AGPL-3.0-only
/*
 * TLS material (interfaces.md §9). Sets are immutable once published; a
 * handshake may still use a set after a reload published the next one, and
 * GnuTLS does not say when it is done with it, so replaced sets are kept
 * until shutdown (a certificate renewal adds a few KiB).
 */
#define ES_LOG_TARGET "ebpfsentinel::tls"
#include "api/tls.h"
#include "core/log.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CHAIN 16
#define MAX_PEM (1 << 20)

struct tls_set {
	gnutls_pcert_st chain[MAX_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
	unsigned char digest[32]; /* of the two files: an unchanged pair is not republished */
	char *cert_pem, *key_pem; /* for listeners that take PEM text (gRPC) */
	struct tls_set *older;	  /* every set loaded, for es_tls_free */
};

static _Atomic(struct tls_set *) current;
static atomic_uint generation;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static int read_pem(const char *path, gnutls_datum_t *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	long n = 0;
	int r = 0;

	out->data = NULL;
	out->size = 0;
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) || n > MAX_PEM ||
	    !(out->data = gnutls_malloc((size_t)n + 1)) ||
	    fread(out->data, 1, (size_t)n, f) != (size_t)n) {
		r = n > MAX_PEM ? -EFBIG : -EIO;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		gnutls_free(out->data);
		out->data = NULL;
	} else {
		out->data[n] = '\0';
		out->size = (unsigned)n;
	}
	fclose(f);
	return r;
}

static void set_free(struct tls_set *s)
{
	for (unsigned i = 0; i < s->n; i++)
		gnutls_pcert_deinit(&s->chain[i]);
	if (s->key)
		gnutls_privkey_deinit(s->key);
	free(s->cert_pem);
	es_tls_pem_free(s->key_pem);
	free(s);
}

/* Does the key belong to the leaf certificate? Compared on the public keys. */
static bool key_matches(gnutls_privkey_t key, gnutls_pubkey_t leaf)
{
	gnutls_datum_t a = {0}, b = {0};
	gnutls_pubkey_t pub;
	bool same = false;

	if (gnutls_pubkey_init(&pub) < 0)
		return false;
	if (gnutls_pubkey_import_privkey(pub, key, 0, 0) >= 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) >= 0 &&
	    gnutls_pubkey_export2(leaf, GNUTLS_X509_FMT_DER, &b) >= 0)
		same = a.size == b.size && !memcmp(a.data, b.data, a.size);
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_pubkey_deinit(pub);
	return same;
}

int es_tls_load(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	gnutls_datum_t cert = {0}, key = {0};
	struct tls_set *s = calloc(1, sizeof(*s));
	struct stat sb;
	int r, g;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((r = read_pem(cert_path, &cert, err, errlen)) ||
	    (r = read_pem(key_path, &key, err, errlen)))
		goto fail;
	s->n = MAX_CHAIN;
	g = gnutls_pcert_list_import_x509_raw(s->chain, &s->n, &cert, GNUTLS_X509_FMT_PEM, 0);
	if (g < 0 || s->n == 0) {
		s->n = 0;
		snprintf(err, errlen, "no certificate in %s: %s", cert_path, gnutls_strerror(g));
		r = -EINVAL;
		goto fail;
	}
	if ((g = gnutls_privkey_init(&s->key)) < 0 ||
	    (g = gnutls_privkey_import_x509_raw(s->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "no usable private key in %s: %s", key_path,
			 gnutls_strerror(g));
		r = -EINVAL;
		goto fail;
	}
	if (!key_matches(s->key, s->chain[0].pubkey)) {
		snprintf(err, errlen, "the key in %s does not match the certificate in %s",
			 key_path, cert_path);
		r = -EINVAL;
		goto fail;
	}
	if (!stat(key_path, &sb) && (sb.st_mode & S_IROTH))
		pr_warn("file is world-readable", LF_STR("path", key_path),
			LF_STR("file", "agent.tls.key_path"));
	{
		gnutls_hash_hd_t h;

		if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) >= 0) {
			gnutls_hash(h, cert.data, cert.size);
			gnutls_hash(h, key.data, key.size);
			gnutls_hash_deinit(h, s->digest);
		}
	}
	pthread_mutex_lock(&load_lock);
	s->older = atomic_load(&current);
	if (s->older && !memcmp(s->older->digest, s->digest, sizeof(s->digest))) {
		pthread_mutex_unlock(&load_lock);
		r = 0; /* same files: keep the running set */
		goto fail;
	}
	s->cert_pem = strndup((const char *)cert.data, cert.size);
	s->key_pem = strndup((const char *)key.data, key.size);
	if (!s->cert_pem || !s->key_pem) {
		pthread_mutex_unlock(&load_lock);
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	atomic_store(&current, s);
	atomic_fetch_add(&generation, 1);
	pthread_mutex_unlock(&load_lock);
	gnutls_memset(key.data, 0, key.size);
	gnutls_free(key.data);
	gnutls_free(cert.data);
	return 0;
fail:
	if (key.data)
		gnutls_memset(key.data, 0, key.size);
	gnutls_free(key.data);
	gnutls_free(cert.data);
	set_free(s);
	return r;
}

unsigned es_tls_generation(void)
{
	return atomic_load(&generation);
}

int es_tls_pem(char **cert, char **key)
{
	int r = 0;

	pthread_mutex_lock(&load_lock);
	{
		struct tls_set *s = atomic_load(&current);

		*cert = s ? strdup(s->cert_pem) : NULL;
		*key = s ? strdup(s->key_pem) : NULL;
	}
	pthread_mutex_unlock(&load_lock);
	if (!*cert || !*key) {
		free(*cert);
		es_tls_pem_free(*key);
		*cert = *key = NULL;
		r = -ENOKEY;
	}
	return r;
}

void es_tls_pem_free(char *key_pem)
{
	if (!key_pem)
		return;
	gnutls_memset(key_pem, 0, strlen(key_pem));
	free(key_pem);
}

bool es_tls_loaded(void)
{
	return atomic_load(&current) != NULL;
}

void es_tls_free(void)
{
	struct tls_set *s;

	pthread_mutex_lock(&load_lock);
	s = atomic_exchange(&current, NULL);
	pthread_mutex_unlock(&load_lock);
	while (s) {
		struct tls_set *older = s->older;

		set_free(s);
		s = older;
	}
}

int es_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
		    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
		    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	struct tls_set *s = atomic_load(&current);

	if (!s)
		return -1;
	*pcert = s->chain;
	*pcert_length = s->n;
	*pkey = s->key;
	return 0;
}
