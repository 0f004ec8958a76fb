/* The resume decision (upstream_response.h): what a resume stood on, and an answer's status and
 * header lines, as text:
 *   line 1: OFFSET LENGTH STATUS [PARENT]   (bytes kept, their Content-Length or -1, the
 *                                   answer's status; PARENT 1: asked of a parent arca)
 *   line 2: the kept body's ETag   (as upstream gave it: strong, weak or empty)
 *   line 3: its Last-Modified      (kept only when it was a strong validator; may be empty)
 *   then:   the answer's header lines, one per line
 * Whatever the answer says, a resume continues only on a 206 that proves it continues the kept
 * bytes (issue 22, item 4): any other outcome would splice two versions into one object. */
#include "fuzz.h"
#include "base/parse.h"
#include "upstream/upstream_response.h"

#include <stdio.h>

/* The next line of *s (NUL-terminated in place), or "" when none is left. */
static char *next_line(char **s)
{
    char *line = *s, *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *s = nl + 1;
    } else {
        *s = line + strlen(line);
    }
    return line;
}

/* What a continuing answer must carry: the strong ETag resumed with, or the date and the
 * unchanged (weak or missing) ETag; from a parent resumed on a date, its sha256 tag (a strong
 * ETag) in place of that one. */
static void check_continues(const struct resume_ask *sent, long status,
                            const struct upstream_response *r)
{
    const char *validator = resume_validator(sent->kept);
    bool parents_tag = sent->parent_tag && validator != sent->kept->etag && r->etag[0] == '"';
    if (status != 206 || !validator || !r->has_range || r->range_first != sent->offset ||
        (sent->length >= 0 && r->range_total != sent->length) ||
        (strcmp(r->etag, sent->kept->etag) != 0 && !parents_tag))
        abort();
    if (validator != sent->kept->etag &&
        (!sent->kept->last_modified[0] || strcmp(r->last_modified, sent->kept->last_modified) != 0))
        abort();
}

/* What the upstream thread does with the answer agrees with the decision. */
static void check_verdict(const struct resume_ask *sent, long status,
                          const struct upstream_response *r, const char *mismatch)
{
    struct verdict v = response_verdict(r, status, sent);
    bool resume = sent->offset > 0 && status >= 200 && status < 300;
    if ((v.kind == VERDICT_CONTINUE) != (resume && !mismatch))
        abort();
    if ((v.kind == VERDICT_REFETCH || v.kind == VERDICT_RESTART) != (resume && mismatch))
        abort();
    if ((v.kind == VERDICT_REFETCH && status != 206) ||
        (v.kind == VERDICT_RESTART && status == 206))
        abort();
    if (v.kind == VERDICT_BODY && (sent->offset != 0 || status == 206))
        abort();
}

/* A Last-Modified is kept only when the answer's Date is a second or more after it. */
static void check_validators(const struct upstream_response *r)
{
    struct validators v;
    int64_t modified, date;
    validators_of(r, &v);
    if (strcmp(v.etag, r->etag) != 0)
        abort();
    if (v.last_modified[0] && (strcmp(v.last_modified, r->last_modified) != 0 ||
                               parse_http_date(r->last_modified, &modified) < 0 ||
                               parse_http_date(r->date, &date) < 0 || date - modified < 1))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size), *rest = s;
    long long offset, length;
    long status;
    int parent = 0;
    struct validators kept = {0}; /* identity */
    struct upstream_response r;
    if (!s)
        return 0;
    if (sscanf(next_line(&rest), "%lld %lld %ld %d", &offset, &length, &status, &parent) < 3 ||
        offset < 0) {
        free(s);
        return 0;
    }
    snprintf(kept.etag, sizeof(kept.etag), "%s", next_line(&rest));
    snprintf(kept.last_modified, sizeof(kept.last_modified), "%s", next_line(&rest));
    response_reset(&r);
    while (*rest)
        response_header(&r, next_line(&rest));
    struct resume_ask sent = {offset, length < 0 ? -1 : length, &kept, parent == 1};
    const char *mismatch = resume_mismatch(&sent, status, &r);
    if (!mismatch)
        check_continues(&sent, status, &r);
    check_verdict(&sent, status, &r, mismatch);
    check_validators(&r);
    free(s);
    return 0;
}
