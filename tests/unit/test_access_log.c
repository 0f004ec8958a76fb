/* Units for the access log (access_log.h): a line is formatted and escaped as it always was; lines
 * written by many threads at once all reach the file, whole and each thread's in order, past a
 * full ring; access_log_close writes everything queued before it returns; a reopened file gets
 * the lines that follow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/access_log.h"
#include "unit_tmp.h"

#define THREADS 8
#define LINES 3000 /* per thread: many times the ring's slots, so writers wait for room */

static char path[UNIT_TMP_MAX];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/arca-access-log-%d.log", (int)getpid());
    unit_tmp(path, sizeof(path));
    unlink(path);
    return 0;
}

static int teardown(void **state)
{
    char rotated[80];
    (void)state;
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    unlink(path);
    unlink(rotated);
    return 0;
}

/* The whole file, NUL-terminated (the caller frees it). */
static char *slurp(const char *name, size_t *len)
{
    FILE *f = fopen(name, "r");
    char *buf;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void open_log(void)
{
    char err[256];
    assert_int_equal(access_log_open(path, err, sizeof(err)), 0);
    assert_true(access_log_enabled());
}

static void lines_are_formatted_and_escaped_as_before(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4242)};
    size_t len;
    (void)state;
    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    open_log();
    access_log_write(&(struct access_entry){.client = (struct sockaddr *)&sin,
                                            .when = 86400 + 3723,
                                            .method = "GET",
                                            .uri = "/a\"b\\c\x01"
                                                   "d\xff",
                                            .version = "HTTP/1.1",
                                            .status = 200,
                                            .bytes = 4096,
                                            .referer = NULL,
                                            .agent = "evil\n1.2.3.4 - -",
                                            .cache = "HIT",
                                            .seconds = 0.0125});
    access_log_write(&(struct access_entry){.client = NULL,
                                            .when = 0,
                                            .method = "PO\"ST",
                                            .uri = "/x",
                                            .version = "HTTP/1.0",
                                            .status = 0,
                                            .bytes = -1,
                                            .referer = "http://r/",
                                            .agent = NULL,
                                            .cache = "-",
                                            .seconds = 2});
    access_log_close();
    assert_false(access_log_enabled());
    char *text = slurp(path, &len);
    assert_string_equal(text, "192.0.2.7 - - [02/Jan/1970:01:02:03 +0000] "
                              "\"GET /a\\x22b\\x5cc\\x01d\\xff HTTP/1.1\" 200 4096 \"-\" "
                              "\"evil\\x0a1.2.3.4 - -\" HIT 0.013\n"
                              "- - - [01/Jan/1970:00:00:00 +0000] \"PO\\x22ST /x HTTP/1.0\" - -1 "
                              "\"http://r/\" \"-\" - 2.000\n");
    free(text);
}

static void *writer(void *arg)
{
    long t = (long)arg;
    char uri[1100], pad[1001];
    memset(pad, 'x', 1000);
    pad[1000] = '\0';
    for (int i = 0; i < LINES; i++) {
        /* every fifth line longer than a slot holds in place: it goes by the heap */
        snprintf(uri, sizeof(uri), "/t%ld/%d/%.*s", t, i, i % 5 ? 1 : 1000, pad);
        access_log_write(&(struct access_entry){.when = 0,
                                                .method = "GET",
                                                .uri = uri,
                                                .version = "HTTP/1.1",
                                                .status = 200,
                                                .bytes = i,
                                                .cache = "MISS"});
    }
    return NULL;
}

/* Every line is whole (one request, its own fields), none is lost, and each thread's come in
 * the order it wrote them; close waited for all of them. */
static void concurrent_writers_lose_nothing_and_never_interleave(void **state)
{
    pthread_t th[THREADS];
    int next[THREADS] = {0};
    size_t len, count = 0;
    (void)state;
    open_log();
    for (long t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    access_log_close();
    char *text = slurp(path, &len), *save = NULL;
    assert_true(len > 0 && text[len - 1] == '\n'); /* the last line is whole too */
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int t, i, bytes;
        assert_int_equal(
            sscanf(line,
                   "- - - [01/Jan/1970:00:00:00 +0000] \"GET /t%d/%d/%*[x] HTTP/1.1\" 200 "
                   "%d \"-\" \"-\" MISS 0.000",
                   &t, &i, &bytes),
            3);
        assert_true(t >= 0 && t < THREADS);
        assert_int_equal(i, next[t]); /* in order, none missing */
        assert_int_equal(bytes, i);
        next[t]++;
        count++;
    }
    assert_int_equal(count, THREADS * LINES);
    free(text);
}

static void write_one(const char *uri)
{
    access_log_write(&(struct access_entry){
        .method = "GET", .uri = uri, .version = "HTTP/1.1", .status = 200, .cache = "HIT"});
}

/* logrotate: the file is renamed, then reopened; lines written after go to the new file. */
static void reopen_moves_later_lines_to_the_new_file(void **state)
{
    char rotated[80], err[256];
    size_t len;
    (void)state;
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    open_log();
    write_one("/before");
    assert_int_equal(rename(path, rotated), 0);
    assert_int_equal(access_log_reopen(err, sizeof(err)), 0);
    write_one("/after");
    access_log_close();
    char *old = slurp(rotated, &len), *fresh = slurp(path, &len);
    assert_non_null(strstr(old, "/before"));
    assert_null(strstr(old, "/after"));
    assert_non_null(strstr(fresh, "/after"));
    assert_null(strstr(fresh, "/before"));
    free(old);
    free(fresh);
}

static void write_from(const struct sockaddr_in *client, const char *uri, const char *agent)
{
    access_log_write(&(struct access_entry){.client = (const struct sockaddr *)client,
                                            .method = "GET",
                                            .uri = uri,
                                            .version = "HTTP/1.1",
                                            .status = 200,
                                            .agent = agent,
                                            .cache = "HIT"});
}

/* A thread keeps the last client, URI and User-Agent it formatted: what changes shows, whatever
 * came before (two ports of one client are one address; a signature is redacted every time). */
static void repeated_fields_read_as_written(void **state)
{
    struct sockaddr_in a1 = {.sin_family = AF_INET, .sin_port = htons(1)}, a2 = a1, b = a1;
    size_t len;
    (void)state;
    inet_pton(AF_INET, "192.0.2.1", &a1.sin_addr);
    inet_pton(AF_INET, "192.0.2.1", &a2.sin_addr);
    a2.sin_port = htons(2);
    inet_pton(AF_INET, "192.0.2.22", &b.sin_addr);
    open_log();
    write_from(&a1, "/f?url=http://h/x%3FX-Amz-Signature%3Dsecret", "ua\"1");
    write_from(&a2, "/f?url=http://h/x%3FX-Amz-Signature%3Dsecret", "ua\"1");
    write_from(&b, "/f?url=http://h/y", "ua\"1");
    write_from(&a1, "/f?url=http://h/x%3FX-Amz-Signature%3Dsecret", NULL);
    access_log_close();
    char *text = slurp(path, &len);
    assert_null(strstr(text, "secret"));
    const char *want[] = {"192.0.2.1 ", "192.0.2.1 ", "192.0.2.22 ", "192.0.2.1 "};
    const char *agents[] = {"\"ua\\x221\"", "\"ua\\x221\"", "\"ua\\x221\"", "\"-\""};
    char *line = text;
    for (int i = 0; i < 4; i++) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        assert_int_equal(strncmp(line, want[i], strlen(want[i])), 0);
        assert_non_null(strstr(line, agents[i]));
        assert_non_null(strstr(line, i == 2 ? "url=http://h/y " : "X-Amz-Signature"));
        line = end + 1;
    }
    free(text);
}

/* A URI of 3,000 '"' escapes to 12,000 bytes: the line is cut at a whole escape, and still ends
 * with its other fields. */
static void a_long_uri_is_cut_between_escapes(void **state)
{
    char uri[3002];
    size_t len;
    (void)state;
    uri[0] = '/';
    memset(uri + 1, '"', sizeof(uri) - 2);
    uri[sizeof(uri) - 1] = '\0';
    open_log();
    for (int i = 0; i < 2; i++) /* formatted, then from the thread's memo */
        write_from(NULL, uri, "agent");
    access_log_close();
    char *text = slurp(path, &len), *line = text;
    for (int i = 0; i < 2; i++) {
        char *end = strchr(line, '\n'), *path_start = strstr(line, "GET /"), *stop;
        assert_non_null(end);
        assert_true(end - line < 8192);
        assert_non_null(path_start);
        stop = strstr(path_start, " HTTP/1.1\" 200 0 \"-\" \"agent\" HIT 0.000");
        assert_non_null(stop);
        assert_int_equal((stop - (path_start + 5)) % 4, 0); /* only whole "\x22" */
        for (char *p = path_start + 5; p < stop; p += 4)
            assert_int_equal(strncmp(p, "\\x22", 4), 0);
        line = end + 1;
    }
    free(text);
}

static void off_writes_nothing(void **state)
{
    char err[256];
    (void)state;
    assert_int_equal(access_log_open("off", err, sizeof(err)), 0);
    assert_false(access_log_enabled());
    write_one("/nothing");
    access_log_close();
    assert_int_not_equal(access(path, F_OK), 0);
}

/* The third field (the combined format's remote user) is the client certificate's subject, one
 * token: a space, a quote, a backslash and every byte outside printable ASCII escaped, so that
 * the fields after it are where a reader of the format looks for them; "-" when there is none
 * (an empty subject too). */
static void a_client_certificate_subject_is_one_escaped_token(void **state)
{
    static const char *const users[] = {"CN=site a,O=Lab", "CN=\"q\"\\b\tc\x7f\xc3\xa9", "", NULL};
    size_t len;
    (void)state;
    open_log();
    for (int i = 0; i < 4; i++)
        access_log_write(&(struct access_entry){.when = 0,
                                                .user = users[i],
                                                .method = "GET",
                                                .uri = "/x",
                                                .version = "HTTP/1.1",
                                                .status = 200,
                                                .bytes = 1,
                                                .cache = "HIT"});
    access_log_close();
    char *text = slurp(path, &len);
    assert_string_equal(text,
                        "- - CN=site\\x20a,O=Lab [01/Jan/1970:00:00:00 +0000] \"GET /x HTTP/1.1\" "
                        "200 1 \"-\" \"-\" HIT 0.000\n"
                        "- - CN=\\x22q\\x22\\x5cb\\x09c\\x7f\\xc3\\xa9 [01/Jan/1970:00:00:00 "
                        "+0000] \"GET /x HTTP/1.1\" 200 1 \"-\" \"-\" HIT 0.000\n"
                        "- - - [01/Jan/1970:00:00:00 +0000] \"GET /x HTTP/1.1\" 200 1 \"-\" "
                        "\"-\" HIT 0.000\n"
                        "- - - [01/Jan/1970:00:00:00 +0000] \"GET /x HTTP/1.1\" 200 1 \"-\" "
                        "\"-\" HIT 0.000\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lines_are_formatted_and_escaped_as_before, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_writers_lose_nothing_and_never_interleave, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reopen_moves_later_lines_to_the_new_file, setup, teardown),
        cmocka_unit_test_setup_teardown(off_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(repeated_fields_read_as_written, setup, teardown),
        cmocka_unit_test_setup_teardown(a_long_uri_is_cut_between_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(a_client_certificate_subject_is_one_escaped_token, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
