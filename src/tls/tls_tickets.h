/*
 * tls_tickets.h — the session-ticket keys every context of tls.c seals and opens tickets with.
 *
 * Contract: tls_ticket_cb is SSL_CTX_set_tlsext_ticket_key_evp_cb's, callable on any thread;
 * the keys rotate every TLS_TICKET_ROTATE_S and TLS_TICKET_KEYS of them are accepted.
 */
#ifndef ARCA_TLS_TICKETS_H
#define ARCA_TLS_TICKETS_H

#include <openssl/evp.h>
#include <openssl/ssl.h>

#define TLS_TICKET_ROTATE_S 3600
#define TLS_TICKET_KEYS 3 /* the key in use and the two before it */

int tls_ticket_cb(SSL *s, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                  EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc);

#endif
