/* Session-ticket keys (tls.h): a ring of TLS_TICKET_KEYS keys, the first one sealing new tickets,
 * rotated every TLS_TICKET_ROTATE_S when a ticket is next sealed. OpenSSL's own ticket key is
 * made once per context and never changes: a key that never rotates lets whoever learns it read
 * every session it ever sealed, and a SIGHUP's new context would forget every ticket. */
#include "tls/tls_tickets.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    int64_t born;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct ticket_key ring[TLS_TICKET_KEYS]; /* ring[0] seals; born 0: no key there */

/* Lock held. A new key in front when the first is due (or there is none): false when the
 * random bytes for it could not be had. */
static bool rotate_if_due(int64_t now)
{
    struct ticket_key k;
    if (ring[0].born && now - ring[0].born < TLS_TICKET_ROTATE_S)
        return true;
    if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
        RAND_bytes(k.hmac, sizeof(k.hmac)) != 1)
        return false;
    k.born = now;
    memmove(&ring[1], &ring[0], sizeof(ring[0]) * (TLS_TICKET_KEYS - 1));
    ring[0] = k;
    return true;
}

/* The key sealing new tickets (false: none could be made), or the one named `name` with its
 * place in the ring (-1: none of them). */
static bool sealing_key(struct ticket_key *out)
{
    bool ok;
    pthread_mutex_lock(&lock);
    ok = rotate_if_due((int64_t)time(NULL));
    if (ok)
        *out = ring[0];
    pthread_mutex_unlock(&lock);
    return ok;
}

static int named_key(const unsigned char name[16], struct ticket_key *out)
{
    int at = -1;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < TLS_TICKET_KEYS && at < 0; i++)
        if (ring[i].born && !memcmp(ring[i].name, name, sizeof(ring[i].name)))
            at = i;
    if (at >= 0)
        *out = ring[at];
    pthread_mutex_unlock(&lock);
    return at;
}

static bool set_mac(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"sha256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb's: seal with the first key (1), or open with the key the
 * ticket names (1; 2 when it is an older one, so that the client gets a new ticket; 0 when none
 * is known any more: a full handshake). -1: an error, the handshake fails. */
int tls_ticket_cb(SSL *s, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                  EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    struct ticket_key k;
    int at = 0, rc = -1;
    (void)s;
    if (enc) {
        if (!sealing_key(&k) || RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(name, k.name, sizeof(k.name));
        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
            set_mac(hctx, k.hmac))
            rc = 1;
    } else if ((at = named_key(name, &k)) < 0) {
        rc = 0;
    } else if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k.aes, iv) == 1 &&
               set_mac(hctx, k.hmac)) {
        rc = at == 0 ? 1 : 2;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}
