/* A request's header as libmicrohttpd 0.9.75 parses it in place, through request_lines_* (the
 * smuggling checks: http_request_check.h), then the client its X-Forwarded-For lines name
 * behind a trusted proxy (policy_forwarded_client).
 *
 * The parse below does what libmicrohttpd's get_next_header_line, process_header_line and
 * process_broken_line do: lines end at CRLF or a bare LF, both overwritten with NULs, as is each
 * line's first colon; spaces and tabs after it are skipped; a folded line's name is moved to a
 * block of its own, its old bytes zeroed, and the fold appended to it.
 *
 * What must hold: a header the checks accept is one any parser reads the same way (checked on
 * the bytes as sent: no CR, no fold, no NUL, names that are tokens, one framing; but for the one
 * case the parse makes unseeable, NULs at a line's end where CRs could be); and whatever lines a
 * client sent, a line the proxy appends names the client. */
#include "config.h"
#include "fuzz.h"
#include "http_request_check.h"
#include "policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#define MAX_LINES 256

struct parsed {
    char *buf;       /* the input, parsed in place */
    size_t len, pos; /* its size, and where the next line begins */
    char *moved;     /* folded names: libmicrohttpd's new pool block */
    size_t moved_len;
    char *last_moved; /* the block grown in place by the next fold */
    const char *key[MAX_LINES], *value[MAX_LINES];
    int n;
    const char *version;
    char *block;        /* the request line's first byte */
    size_t header_size; /* from there to the blank line's end */
};

/* The next line, its end overwritten with NULs, and its length; NULL when none ends before
 * the input does. */
static char *next_line(struct parsed *p, size_t *len)
{
    for (size_t i = p->pos; i < p->len; i++) {
        size_t end = 0;
        if (p->buf[i] == '\r' && i + 1 < p->len && p->buf[i + 1] == '\n')
            end = 2;
        else if (p->buf[i] == '\n')
            end = 1;
        if (end) {
            char *line = p->buf + p->pos;
            *len = i - p->pos;
            memset(p->buf + i, 0, end);
            p->pos = i + end;
            return line;
        }
    }
    return NULL;
}

/* A line's name and value; false when it has no colon (libmicrohttpd answers 400 itself). */
static bool split(struct parsed *p, char *line)
{
    char *colon = strchr(line, ':');
    if (!colon || p->n == MAX_LINES)
        return false;
    *colon++ = '\0';
    while (*colon == ' ' || *colon == '\t')
        colon++;
    p->key[p->n] = line;
    p->value[p->n++] = colon;
    return true;
}

/* process_broken_line: the fold, without its leading blanks, glued to the line's name. */
static void fold(struct parsed *p, const char *line)
{
    char *name = (char *)p->key[p->n - 1];
    size_t len = strlen(name);
    while (*line == ' ' || *line == '\t')
        line++;
    if (name != p->last_moved) { /* moved to a new block, the old bytes zeroed */
        char *block = p->moved + p->moved_len;
        memcpy(block, name, len + 1);
        memset(name, 0, len + 1);
        p->key[p->n - 1] = name = p->last_moved = block;
    }
    memcpy(name + len, line, strlen(line) + 1);
    p->moved_len = (size_t)(name - p->moved) + len + strlen(line) + 1;
}

/* parse_initial_message_line: the version is the request line's last word, HTTP/1.x. */
static bool request_line(struct parsed *p, char *line, size_t len)
{
    char *sp = memrchr(line, ' ', len);
    if (!sp || line + len - (sp + 1) != 8 || memcmp(sp + 1, "HTTP/1.", 7) || sp[8] < '0' ||
        sp[8] > '9')
        return false;
    *sp = '\0';
    p->version = sp + 1;
    p->block = line;
    return true;
}

/* false when libmicrohttpd would not hand this request to arca (incomplete, or refused). */
static bool parse(struct parsed *p)
{
    size_t len;
    char *line;
    do /* empty lines (and lines that begin with a NUL) before the request line are skipped */
        line = next_line(p, &len);
    while (line && !*line);
    if (!line || !request_line(p, line, len))
        return false;
    for (bool first = true;; first = false) {
        if (!(line = next_line(p, &len)))
            return false;
        if (!*line)
            break;
        if (!first && (line[0] == ' ' || line[0] == '\t'))
            fold(p, line);
        else if (!split(p, line))
            return false;
    }
    p->header_size = (size_t)(p->buf + p->pos - p->block);
    return true;
}

static bool is_token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* One header line as sent (without its line end): what an accepted request may hold. Counts
 * the framing lines; the Transfer-Encoding must be "chunked". */
static void check_sent_line(const char *l, size_t len, int *lengths, int *codings)
{
    const char *colon = memchr(l, ':', len), *nul = memchr(l, '\0', len);
    if (!colon || colon == l || memchr(l, '\r', len) || l[0] == ' ' || l[0] == '\t')
        abort();
    for (const char *c = l; c < colon; c++)
        if (!is_token_char((unsigned char)*c))
            abort();
    if (nul)
        abort();
    if (colon - l == 14 && !strncasecmp(l, "Content-Length", 14))
        (*lengths)++;
    if (colon - l == 17 && !strncasecmp(l, "Transfer-Encoding", 17)) {
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if ((size_t)(l + len - v) != 7 || strncasecmp(v, "chunked", 7))
            abort();
        (*codings)++;
    }
}

/* The bytes as sent, line by line, against what the checks accepted. */
static void check_accepted(const uint8_t *data, size_t size, const char *version)
{
    const char *s = (const char *)data, *end = s + size;
    int lengths = 0, codings = 0;
    bool request_line = true;
    while (s < end) {
        const char *lf = memchr(s, '\n', (size_t)(end - s));
        size_t len = (size_t)(lf - s);
        if (len && s[len - 1] == '\r')
            len--;
        while (len && s[len - 1] == '\0')
            len--; /* NULs at a line's end leave what CRs leave: unseeable, and hide nothing */
        if (!request_line && len == 0)
            break;
        if (!request_line)
            check_sent_line(s, len, &lengths, &codings);
        request_line = false;
        s = lf + 1;
    }
    if (lengths > 1 || codings > 1 || (lengths && codings) ||
        (codings && !strcmp(version, "HTTP/1.0")))
        abort();
}

static struct sockaddr_in proxy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static struct config cfg;
    char err[CONFIG_ERR_LEN];
    (void)argc, (void)argv;
    config_defaults(&cfg);
    config_set(&cfg, "trusted-proxy", "127.0.0.0/8", err);
    config_set(&cfg, "trusted-proxy", "fd00::/8", err);
    policy_init(&cfg);
    proxy.sin_family = AF_INET;
    proxy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

/* The client of lines[0..n) plus one line the proxy appends: `appended` must win. */
static void check_forwarded(const char **lines, int n, const char *appended, const char *expect)
{
    struct sockaddr_storage out;
    const struct sockaddr *c;
    struct in_addr want;
    lines[n] = appended;
    c = policy_forwarded_client((const struct sockaddr *)&proxy, lines, n + 1, &out);
    if (!expect) {
        if (c)
            abort();
        return;
    }
    inet_pton(AF_INET, expect, &want);
    if (c != (struct sockaddr *)&out || c->sa_family != AF_INET ||
        ((const struct sockaddr_in *)c)->sin_addr.s_addr != want.s_addr)
        abort();
}

static void forwarded(const struct parsed *p)
{
    const char *lines[MAX_LINES + 1];
    struct sockaddr_storage out;
    const struct sockaddr *c;
    int n = 0;
    for (int i = 0; i < p->n; i++)
        if (!strcasecmp(p->key[i], "X-Forwarded-For"))
            lines[n++] = p->value[i];
    c = policy_forwarded_client((const struct sockaddr *)&proxy, lines, n, &out);
    if (c && c != (const struct sockaddr *)&proxy &&
        (c != (struct sockaddr *)&out || (c->sa_family != AF_INET && c->sa_family != AF_INET6)))
        abort();
    check_forwarded(lines, n, "203.0.113.9", "203.0.113.9");
    check_forwarded(lines, n, "203.0.113.9, 127.0.0.2", "203.0.113.9");
    check_forwarded(lines, n, "not-an-address", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct parsed p = {.len = size};
    struct request_lines s;
    const char *reason;
    unsigned int status;
    if (!(p.buf = malloc(size + 1)) || !(p.moved = malloc(2 * size + 1)))
        goto out;
    memcpy(p.buf, data, size);
    p.buf[size] = '\0';
    if (!parse(&p))
        goto out;
    request_lines_begin(&s, p.block, p.header_size, p.version);
    for (int i = 0; i < p.n && request_lines_add(&s, p.key[i], strlen(p.key[i]), p.value[i],
                                                 strlen(p.value[i]));
         i++)
        ;
    status = request_lines_end(&s, &reason);
    if (status == 0) {
        check_accepted(data + (p.block - p.buf), p.header_size, p.version);
        forwarded(&p);
    } else if (!reason || (status != 400 && status != 501)) {
        abort();
    }
out:
    free(p.buf);
    free(p.moved);
    return 0;
}
