/* url_normalize: what it accepts is an absolute http(s) URL with nothing a request line may not
 * carry (no blank, control or non-ASCII byte), and its normal form is a fixed point.
 * url_redact (what every shown URL goes through): it stays within its buffer, whatever it is
 * given, always ends the string, is never cut in url_shown's buffer, and a redacted URL
 * redacts to itself (nothing it shows would be hidden on a second look: no secret was left).
 * fold_url (url/fold.h): a normal form, folded as far as it goes. */
#include "fuzz.h"
#include "url/url.h"
#include "url/fold.h"

#include <strings.h>

static bool fetchable(const char *u)
{
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

static void check_redact(const char *s)
{
    size_t len = strlen(s), size = 3 * len + 64, n;
    char *out = malloc(size), *again = malloc(size), small[8];
    if (out && again) {
        n = url_redact(s, out, size);
        if (n != strlen(out) || n >= size - 1 || url_redact(out, again, size) != n ||
            strcmp(out, again) != 0)
            abort();
        n = url_redact(s, small, sizeof(small));
        if (n >= sizeof(small) || n != strlen(small))
            abort();
    }
    free(again);
    free(out);
}

/* fold_url of a normal form: a normal form again, and folded as far as it goes (folding it once
 * more changes nothing), or nothing to fold. */
static void check_fold(const char *url)
{
    int failed;
    char *folded = fold_url(url, &failed);
    if (folded && (!fetchable(folded) || fold_url(folded, &failed) != NULL))
        abort();
    free(folded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size), *out = NULL, *again = NULL;
    int status;
    const char *why;
    if (s)
        check_redact(s);
    if (s && (out = malloc(URL_BUF_SIZE(strlen(s)))) &&
        url_normalize(s, strlen(s), out, URL_BUF_SIZE(strlen(s)), &status, &why) == 0) {
        size_t len = strlen(out);
        if (!fetchable(out) || !(again = malloc(URL_BUF_SIZE(len))) ||
            url_normalize(out, len, again, URL_BUF_SIZE(len), &status, &why) < 0 ||
            strcmp(again, out) != 0)
            abort();
        check_fold(out);
    }
    free(again);
    free(out);
    free(s);
    return 0;
}
