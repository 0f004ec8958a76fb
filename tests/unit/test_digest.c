/* Units for base/digest.h: sha256_of gives SHA256()'s bytes, for any length, on the first call
 * of a thread and on later ones, on threads of their own (each its own context). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/digest.h"

/* Every length up to 300 bytes (a block and its padding's edges), as SHA256 gives them. */
static void *digests_agree(void *arg)
{
    char text[300];
    uint8_t ours[32], theirs[32];
    bool *same = arg;
    *same = true;
    for (size_t len = 0; len < sizeof(text); len++) {
        text[len] = (char)('a' + len % 26);
        sha256_of(text, len, ours);
        SHA256((const unsigned char *)text, len, theirs);
        *same = *same && memcmp(ours, theirs, 32) == 0;
    }
    return NULL;
}

static void sha256_of_is_sha256_on_every_thread(void **state)
{
    (void)state;
    pthread_t t[4];
    bool same[5];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, digests_agree, &same[i]), 0);
    digests_agree(&same[4]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 5; i++)
        assert_true(same[i]);
    /* the standard's example: sha256("abc") is ba7816bf...f20015ad */
    uint8_t d[32];
    sha256_of("abc", 3, d);
    assert_int_equal(d[0], 0xba);
    assert_int_equal(d[31], 0xad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_of_is_sha256_on_every_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
