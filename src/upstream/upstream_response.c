/* Upstream responses: header lines and the decisions taken on them (see upstream_response.h). */
#include "upstream/upstream_response.h"
#include "base/parse.h"
#include "url/url.h"
#include "url/filename.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void response_reset(struct upstream_response *r)
{
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    r->stale_if_error = r->stale_while_revalidate = -1;
}

/* `name=N` at d (len bytes): N, digits only (RFC 9111 1.2.2 delta-seconds), capped at
 * TTL_MAX; -1 when d is not that directive or N is malformed. */
static int64_t delta_seconds(const char *d, size_t len, const char *name)
{
    size_t n = strlen(name);
    int64_t v = 0;
    if (len <= n + 1 || strncasecmp(d, name, n) != 0 || d[n] != '=')
        return -1;
    for (size_t i = n + 1; i < len; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -1;
        v = v > TTL_MAX / 10 ? TTL_MAX : v * 10 + (d[i] - '0');
    }
    return v > TTL_MAX ? TTL_MAX : v;
}

void response_cache_control(struct upstream_response *r, const char *value)
{
    static const char *const never[] = {"must-revalidate", "proxy-revalidate", "no-cache",
                                        "no-store"};
    for (const char *d = value; *d;) {
        d += strspn(d, " \t,");
        size_t len = strcspn(d, ",");
        while (len > 0 && (d[len - 1] == ' ' || d[len - 1] == '\t'))
            len--;
        int64_t v;
        for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
            if (len == strlen(never[i]) && !strncasecmp(d, never[i], len))
                r->stale_if_error = r->stale_while_revalidate = 0; /* never, whatever else */
        if ((v = delta_seconds(d, len, "stale-if-error")) >= 0 && r->stale_if_error != 0)
            r->stale_if_error = v;
        if ((v = delta_seconds(d, len, "stale-while-revalidate")) >= 0 &&
            r->stale_while_revalidate != 0)
            r->stale_while_revalidate = v;
        d += strcspn(d, ",");
    }
}

bool response_is_status_line(const char *line)
{
    return strncasecmp(line + strspn(line, " \t"), "HTTP/", 5) == 0;
}

/* As curl reads it (its " HTTP/%1d.%1d%c%3d%c" scan): blanks before, "HTTP/" in any case, the
 * version, blanks, then three digits that a fourth does not follow; what comes after them
 * ("200OK", "200\tOK") is the reason, which nobody reads. */
long response_status_line(const char *line)
{
    const char *p = line + strspn(line, " \t");
    if (!response_is_status_line(p))
        return 0;
    p += 5 + strcspn(p + 5, " \t"); /* past the version */
    p += strspn(p, " \t");
    if (p[0] < '1' || p[0] > '9' || !isdigit((unsigned char)p[1]) ||
        !isdigit((unsigned char)p[2]) || isdigit((unsigned char)p[3]))
        return 0;
    return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* True when `line` is header `name`; *value then points at its value. */
static bool header_is(const char *line, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    *value = line + n + 1;
    while (**value == ' ' || **value == '\t')
        (*value)++;
    return true;
}

/* Whether the comma-separated list `v` holds `token` (any case, blanks around items). */
static bool token_listed(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (*v) {
        v += strspn(v, " \t,");
        size_t len = strcspn(v, ",");
        size_t end = len;
        while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == n && strncasecmp(v, token, n) == 0)
            return true;
        v += len;
    }
    return false;
}

/* -1 (field emptied) when the value, trailing blanks aside, does not fit whole. */
static int keep_value(char *field, size_t size, const char *value)
{
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len >= size) {
        field[0] = '\0';
        return -1;
    }
    memcpy(field, value, len);
    field[len] = '\0';
    return 0;
}

/* RFC 9110 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E /
 * obs-text. obs-text (bytes >= 0x80) is left out too: arca echoes the ETag to clients and in
 * If-None-Match / If-Range, and no origin it serves needs one. */
static bool entity_tag_ok(const char *v)
{
    if (!strncmp(v, "W/", 2))
        v += 2;
    size_t len = strlen(v);
    if (len < 2 || v[0] != '"' || v[len - 1] != '"')
        return false;
    for (size_t i = 1; i + 1 < len; i++)
        if ((unsigned char)v[i] < 0x21 || v[i] == '"' || (unsigned char)v[i] > 0x7e)
            return false;
    return true;
}

const char *response_header(struct upstream_response *r, const char *line)
{
    static const struct {
        const char *name;
        size_t offset, size;
    } kept[] = {
        {"Content-Type", offsetof(struct upstream_response, content_type), HEADER_TYPE_MAX},
        {"Content-Encoding", offsetof(struct upstream_response, content_encoding),
         HEADER_ENCODING_MAX},
        {"Last-Modified", offsetof(struct upstream_response, last_modified), HEADER_DATE_MAX},
        {"Date", offsetof(struct upstream_response, date), HEADER_DATE_MAX},
    };
    const char *v;
    if (header_is(line, "content-length", &v)) {
        if (parse_content_length(v, &r->content_length) < 0)
            r->content_length = -1; /* anything but a plain number counts as "unknown" */
    } else if (header_is(line, "content-range", &v)) {
        r->has_range =
            parse_content_range(v, &r->range_first, &r->range_last, &r->range_total) == 0;
    } else if (header_is(line, "accept-ranges", &v)) {
        r->accept_ranges = token_listed(v, "bytes");
    } else if (header_is(line, "content-disposition", &v)) {
        disposition_filename(v, r->filename, sizeof(r->filename));
    } else if (header_is(line, "location", &v)) {
        r->location = true;
    } else if (header_is(line, "cache-control", &v)) {
        response_cache_control(r, v);
    } else if (header_is(line, "etag", &v)) {
        /* an invalid one is dropped: never passed on to a client, nor asked about upstream */
        const char *too_long = keep_value(r->etag, sizeof(r->etag), v) < 0 ? "ETag" : NULL;
        if (!entity_tag_ok(r->etag))
            r->etag[0] = '\0';
        return too_long;
    } else {
        for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
            if (header_is(line, kept[i].name, &v))
                return keep_value((char *)r + kept[i].offset, kept[i].size, v) < 0 ? kept[i].name
                                                                                   : NULL;
    }
    return NULL;
}

bool status_retryable(long status)
{
    static const long codes[] = {408, 413, 425, 429, 500, 502, 503, 504, 507, 509, 529, 598};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i] == status)
            return true;
    return false;
}

bool status_outage(long status)
{
    return status == 0 || status_retryable(status);
}

bool connection_broke(CURLcode rc)
{
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

/* Refusals, TLS failures, protocol errors and our own limits are final. */
bool error_retryable(CURLcode rc, bool retryable_status, bool refused, bool past_deadline)
{
    if (retryable_status || connection_broke(rc))
        return true;
    if (rc == CURLE_COULDNT_CONNECT)
        return !refused;
    return rc == CURLE_OPERATION_TIMEDOUT && !past_deadline;
}

bool resolve_retryable(CURLcode rc, bool asked_again, bool past_deadline)
{
    return rc == CURLE_COULDNT_RESOLVE_HOST && !asked_again && !past_deadline;
}

int64_t retry_backoff_ms(int64_t delay_ms, int attempts)
{
    int shift = attempts - 1 < 15 ? attempts - 1 : 15;
    int64_t delay = delay_ms << (shift > 0 ? shift : 0);
    return delay < MAX_BACKOFF_MS ? delay : MAX_BACKOFF_MS;
}

struct upstream_error error_for_clients(CURLcode rc, bool headers_ready, bool past_deadline)
{
    if (connection_broke(rc))
        return headers_ready ? (struct upstream_error){504, "upstream body truncated"}
                             : (struct upstream_error){502, "upstream connection failed"};
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return (struct upstream_error){504, past_deadline
                                                ? "download took longer than --download-timeout"
                                                : "upstream timed out"};
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        return (struct upstream_error){502, "upstream TLS verification failed"};
    case CURLE_TOO_MANY_REDIRECTS:
        return (struct upstream_error){502, "too many upstream redirects"};
    case CURLE_COULDNT_RESOLVE_HOST:
        return (struct upstream_error){502, "cannot resolve host"};
    case CURLE_UNSUPPORTED_PROTOCOL:
        return (struct upstream_error){502,
                                       "upstream redirected to a scheme other than http/https"};
    default:
        return (struct upstream_error){502, "upstream unreachable"};
    }
}

bool host_never_resolves(const char *host, size_t len)
{
    while (len > 0 && host[len - 1] == '.')
        len--; /* "invalid." is the same name */
    return (len == 7 && !strncasecmp(host, "invalid", 7)) ||
           (len > 8 && !strncasecmp(host + len - 8, ".invalid", 8));
}

void failure_summary(char *out, size_t size, const char *who, int attempts, int64_t elapsed_ms,
                     const char *why)
{
    snprintf(out, size, "%s failed after %d attempt%s in %lld.%lld s: %s", who, attempts,
             attempts == 1 ? "" : "s", (long long)(elapsed_ms / 1000),
             (long long)(elapsed_ms % 1000 / 100), why);
}

void validators_of(const struct upstream_response *r, struct validators *out)
{
    int64_t modified, date;
    snprintf(out->etag, sizeof(out->etag), "%s", r->etag);
    snprintf(out->encoding, sizeof(out->encoding), "%s", r->content_encoding);
    out->last_modified[0] = '\0';
    if (parse_http_date(r->last_modified, &modified) == 0 && parse_http_date(r->date, &date) == 0 &&
        date - modified >= 1)
        snprintf(out->last_modified, sizeof(out->last_modified), "%s", r->last_modified);
}

const char *resume_validator(const struct validators *v)
{
    if (v->etag[0] == '"')
        return v->etag;
    return v->last_modified[0] ? v->last_modified : NULL;
}

/* Whether two Content-Encoding values name the same coding ("" and "identity": none). */
static bool same_encoding(const char *a, const char *b)
{
    if (!strcasecmp(a, "identity"))
        a = "";
    if (!strcasecmp(b, "identity"))
        b = "";
    return strcasecmp(a, b) == 0;
}

const char *resume_mismatch(const struct resume_ask *sent, long status,
                            const struct upstream_response *r)
{
    const struct validators *k = sent->kept;
    const char *validator = resume_validator(k);
    if (status != 206)
        return "upstream sent the whole body again (range ignored, or the file changed)";
    if (!validator)
        return "nothing proves the kept bytes are upstream's file";
    if (!r->has_range || r->range_first != sent->offset)
        return "upstream answered the resume with another range";
    if (sent->length >= 0 && r->range_total != sent->length)
        return "upstream's file has another length now";
    /* resumed on a strong ETag, that ETag alone proves it; on a date, the date and the ETag
     * (weak, or none) the kept body had, both unchanged (a parent's sha256 tag aside) */
    if (strcmp(r->etag, k->etag) != 0 &&
        !(sent->parent_tag && validator != k->etag && r->etag[0] == '"'))
        return "upstream's ETag changed";
    if (validator != k->etag && strcmp(r->last_modified, k->last_modified) != 0)
        return "upstream's Last-Modified changed";
    if (!same_encoding(r->content_encoding, k->encoding))
        return "upstream answered in another encoding";
    return NULL;
}

struct verdict response_verdict(const struct upstream_response *r, long status,
                                const struct resume_ask *sent)
{
    struct verdict v = {VERDICT_FAIL, 502, ""};
    const char *mismatch;
    if (status < 200 || (status >= 300 && status < 400 && r->location))
        v.kind = VERDICT_SKIP;
    else if (status_retryable(status))
        v = (struct verdict){VERDICT_RETRY, (int)status, ""};
    else if (status >= 300)
        snprintf(v.reason, sizeof(v.reason), "%s %ld",
                 status >= 400 ? "upstream answered" : "unexpected upstream status", status),
            v.status = status >= 400 ? (int)status : 502;
    else if (status == 206 && sent->offset == 0)
        snprintf(v.reason, sizeof(v.reason),
                 "upstream answered 206 to a request for the whole "
                 "object");
    else if (sent->offset == 0)
        v.kind = VERDICT_BODY;
    else if (!(mismatch = resume_mismatch(sent, status, r)))
        v.kind = VERDICT_CONTINUE;
    else {
        v.kind = status == 206 ? VERDICT_REFETCH : VERDICT_RESTART;
        snprintf(v.reason, sizeof(v.reason), "%s", mismatch);
    }
    return v;
}
