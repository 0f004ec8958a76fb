/* Units for sending an answer's body (send.c) as a client reads it off a socket: a chunked
 * body's last chunk carries the answer's trailer lines (answer_trailer), from a spanner or a
 * reader alike, and only well-formed ones; a body with a length, or an HTTP/1.0 one, never
 * asks for them. And an answer's header lines (answer.c): one that could split the head is
 * refused, the others kept in order however many. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/engine_internal.h"

#define BODY "hello, world"

/* A body given in pieces of `piece` bytes (a spanner's from a file, a reader's from memory),
 * and the trailer its answer writes. */
struct source {
    int fd;
    size_t piece;
    const char *trailer; /* what the trailer function writes (NULL: it says "none") */
    size_t trailer_len;  /* ... and the length it returns (0: strlen) */
    int asked;           /* times the trailer function was asked */
};

static ssize_t spans(void *cls, uint64_t pos, size_t max, int *fd, int64_t *off)
{
    struct source *s = cls;
    size_t left = strlen(BODY) - (size_t)pos;
    if (left == 0)
        return ANSWER_END;
    *fd = s->fd;
    *off = (int64_t)pos;
    return (ssize_t)(left < s->piece ? left : s->piece < max ? s->piece : max);
}

static ssize_t reads(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct source *s = cls;
    size_t left = strlen(BODY) - (size_t)pos, n = left < max ? left : max;
    (void)s;
    if (left == 0)
        return ANSWER_END;
    memcpy(buf, BODY + pos, n);
    return (ssize_t)n;
}

static size_t trailer(void *cls, char *buf, size_t size)
{
    struct source *s = cls;
    size_t n = s->trailer_len ? s->trailer_len : s->trailer ? strlen(s->trailer) : 0;
    s->asked++;
    assert_int_equal(size, ANSWER_TRAILER_MAX);
    if (!s->trailer)
        return 0;
    /* copies what it has (a claim past it writes nothing more), returns what it claims */
    size_t have = strlen(s->trailer);
    memcpy(buf, s->trailer, have < size ? have : size);
    return n;
}

static struct source source(size_t piece, const char *lines)
{
    struct source s = {.fd = memfd_create("body", 0), .piece = piece, .trailer = lines};
    assert_true(s.fd >= 0);
    assert_int_equal(write(s.fd, BODY, strlen(BODY)), (ssize_t)strlen(BODY));
    return s;
}

/* Send `a` to a client (HTTP/1.1 unless http10) and return what it reads after the head;
 * *head gets the head. */
static char *send_answer(struct answer *a, bool http10, char *head, size_t head_size)
{
    static struct worker w;
    struct conn c = {0};
    struct exchange *x = calloc(1, sizeof(*x));
    static char got[8192];
    int sv[2];
    ssize_t n, total = 0;
    enum send_result res;
    assert_non_null(x);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    memset(&w, 0, sizeof(w));
    c.fd = sv[0];
    c.w = &w;
    c.can_write = true;
    c.x = x;
    x->tunnel_fd = -1;
    x->status = 200;
    x->keep_alive = true;
    x->http10 = http10;
    x->ans = a;
    assert_true(send_prepare(&c));
    for (int turns = 0; (res = send_some(&c)) != SEND_DONE; turns++)
        assert_true(res == SEND_TURN && turns < 100);
    close(sv[0]);
    while ((n = read(sv[1], got + total, sizeof(got) - 1 - (size_t)total)) > 0)
        total += n;
    close(sv[1]);
    got[total] = '\0';
    exchange_free(x); /* and the answer */
    char *end = strstr(got, "\r\n\r\n");
    assert_non_null(end);
    snprintf(head, head_size, "%.*s", (int)(end + 4 - got), got);
    return end + 4;
}

static void a_spanned_body_ends_with_its_trailer(void **state)
{
    struct source s = source(5, "Repr-Digest: sha-256=:YWJj:\r\nX-More: 1\r\n");
    struct answer *a = answer_spans(ANSWER_SIZE_UNKNOWN, spans, &s);
    char head[1024];
    (void)state;
    answer_trailer(a, trailer, &s);
    const char *body = send_answer(a, false, head, sizeof(head));
    assert_non_null(strstr(head, "Transfer-Encoding: chunked\r\n"));
    assert_string_equal(body, "5\r\nhello\r\n5\r\n, wor\r\n2\r\nld\r\n"
                              "0\r\nRepr-Digest: sha-256=:YWJj:\r\nX-More: 1\r\n\r\n");
    assert_int_equal(s.asked, 1);
    close(s.fd);
}

static void a_read_body_ends_with_its_trailer(void **state)
{
    /* blocks of 3 bytes: its block buffer is too small for the trailer, which must still fit */
    struct source s = source(3, "Repr-Digest: sha-256=:YWJj:\r\n");
    struct answer *a = answer_read(ANSWER_SIZE_UNKNOWN, 3, reads, &s);
    char head[1024];
    (void)state;
    answer_trailer(a, trailer, &s);
    const char *body = send_answer(a, false, head, sizeof(head));
    assert_string_equal(body, "3\r\nhel\r\n3\r\nlo,\r\n3\r\n wo\r\n3\r\nrld\r\n"
                              "0\r\nRepr-Digest: sha-256=:YWJj:\r\n\r\n");
    assert_int_equal(s.asked, 1);
    close(s.fd);
}

static void no_trailer_is_the_plain_last_chunk(void **state)
{
    struct source s = source(64, NULL);
    char head[1024];
    (void)state;
    struct answer *a = answer_spans(ANSWER_SIZE_UNKNOWN, spans, &s);
    assert_string_equal(send_answer(a, false, head, sizeof(head)),
                        "c\r\nhello, world\r\n0\r\n\r\n");
    a = answer_read(ANSWER_SIZE_UNKNOWN, 64, reads, &s);
    assert_string_equal(send_answer(a, false, head, sizeof(head)),
                        "c\r\nhello, world\r\n0\r\n\r\n");
    a = answer_spans(ANSWER_SIZE_UNKNOWN, spans, &s);
    answer_trailer(a, trailer, &s); /* asked, says none */
    assert_string_equal(send_answer(a, false, head, sizeof(head)),
                        "c\r\nhello, world\r\n0\r\n\r\n");
    assert_int_equal(s.asked, 1);
    close(s.fd);
}

/* What a trailer function writes that is not trailer lines is dropped whole: the message still
 * ends where it should, and nothing in it starts another. */
static void broken_trailer_lines_are_dropped(void **state)
{
    static const char *const broken[] = {
        "X: 1\r\n\r\nHTTP/1.1 200 OK\r\n", /* an early end, then a forged answer */
        "no colon\r\n",
        ": no name\r\n",
        "X: bare LF\n",
        "X: no end",
        "X: a\rb\r\n",
        "Bad Name: 1\r\n",
    };
    char head[1024];
    (void)state;
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        struct source s = source(64, broken[i]);
        struct answer *a = answer_spans(ANSWER_SIZE_UNKNOWN, spans, &s);
        answer_trailer(a, trailer, &s);
        assert_string_equal(send_answer(a, false, head, sizeof(head)),
                            "c\r\nhello, world\r\n0\r\n\r\n");
        close(s.fd);
    }
    /* a function that says it wrote more than it may */
    struct source s = source(64, "X: 1\r\n");
    s.trailer_len = ANSWER_TRAILER_MAX + 1;
    struct answer *a = answer_read(ANSWER_SIZE_UNKNOWN, 64, reads, &s);
    answer_trailer(a, trailer, &s);
    assert_string_equal(send_answer(a, false, head, sizeof(head)),
                        "c\r\nhello, world\r\n0\r\n\r\n");
    close(s.fd);
}

/* Only a chunked body has a trailer section: one with a Content-Length, or an HTTP/1.0 one (the
 * close ends it), goes out as before and never asks. */
static void unchunked_bodies_never_ask(void **state)
{
    struct source s = source(5, "Repr-Digest: sha-256=:YWJj:\r\n");
    char head[1024];
    (void)state;
    struct answer *a = answer_spans(strlen(BODY), spans, &s);
    answer_trailer(a, trailer, &s);
    assert_string_equal(send_answer(a, false, head, sizeof(head)), BODY);
    assert_non_null(strstr(head, "Content-Length: 12\r\n"));
    a = answer_spans(ANSWER_SIZE_UNKNOWN, spans, &s);
    answer_trailer(a, trailer, &s);
    assert_string_equal(send_answer(a, true, head, sizeof(head)), BODY);
    assert_null(strstr(head, "chunked"));
    a = answer_read(ANSWER_SIZE_UNKNOWN, 4, reads, &s);
    answer_trailer(a, trailer, &s);
    assert_string_equal(send_answer(a, true, head, sizeof(head)), BODY);
    assert_int_equal(s.asked, 0);
    close(s.fd);
}

/* answer_header() adds a line only when its name is a token and its value holds no line end:
 * a name or value a request or upstream carried can never add a header of its own. */
static void a_header_that_could_split_the_head_is_refused(void **state)
{
    static const char *const bad_names[] = {"",  "X Y", "X:Y", "X\r\nY", "X\tY", "X\n", "(",  ")",
                                            "<", ">",   "@",   ",",      ";",    "\\",  "\"", "/",
                                            "[", "]",   "?",   "=",      "{",    "}"};
    struct answer *a = answer_copy(BODY, strlen(BODY));
    char name[16], out[64];
    (void)state;
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_false(answer_header(a, bad_names[i], "v"));
    assert_false(answer_header(a, "X-A", "v\r\nInjected: 1"));
    assert_false(answer_header(a, "X-A", "v\n"));
    assert_false(answer_header(a, "X-A", "\rv"));
    assert_null(answer_header_value(a, "X-A", out, sizeof(out)));
    assert_true(answer_header(a, "X-Odd.Name_1~!#$%&'*+-^`|", "a value: \t ; \"quoted\" (x)"));
    for (int i = 0; i < 60; i++) { /* past the first allocation, and its growths */
        snprintf(name, sizeof(name), "X-H%d", i);
        assert_true(answer_header(a, name, "0123456789abcdef"));
    }
    assert_string_equal(answer_header_value(a, "X-Odd.Name_1~!#$%&'*+-^`|", out, sizeof(out)),
                        "a value: \t ; \"quoted\" (x)");
    assert_string_equal(answer_header_value(a, "X-H0", out, sizeof(out)), "0123456789abcdef");
    assert_string_equal(answer_header_value(a, "X-H59", out, sizeof(out)), "0123456789abcdef");
    answer_put(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_spanned_body_ends_with_its_trailer),
        cmocka_unit_test(a_read_body_ends_with_its_trailer),
        cmocka_unit_test(no_trailer_is_the_plain_last_chunk),
        cmocka_unit_test(broken_trailer_lines_are_dropped),
        cmocka_unit_test(unchunked_bodies_never_ask),
        cmocka_unit_test(a_header_that_could_split_the_head_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
