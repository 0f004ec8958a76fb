/* sha256_of (digest.h). */
#include "base/digest.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>

static EVP_MD *sha256;
static pthread_key_t contexts; /* each thread's EVP_MD_CTX, freed as it exits */
static pthread_once_t fetched = PTHREAD_ONCE_INIT;

static void free_context(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void fetch(void)
{
    if (pthread_key_create(&contexts, free_context) == 0)
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The calling thread's context, made on its first call; NULL out of memory. */
static EVP_MD_CTX *context(void)
{
    pthread_once(&fetched, fetch);
    if (!sha256)
        return NULL;
    EVP_MD_CTX *ctx = pthread_getspecific(contexts);
    if (!ctx && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(contexts, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

void sha256_of(const void *data, size_t len, uint8_t out[32])
{
    EVP_MD_CTX *ctx = context();
    unsigned int n;
    if (!ctx || EVP_DigestInit_ex2(ctx, sha256, NULL) != 1 ||
        EVP_DigestUpdate(ctx, data, len) != 1 || EVP_DigestFinal_ex(ctx, out, &n) != 1)
        SHA256(data, len, out);
}
