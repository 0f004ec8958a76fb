/* Units for the configured registries: --registry and --registry-default as config.c reads them
 * (config_registry.c), and the table registries.c builds from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "registry/registries.h"
#include "registry/reg_manifest.h"
#include "registry/reg_ref.h"
#include "unit_tmp.h"

static struct config cfg;

static enum config_action load(char *err, int argc, ...)
{
    char *argv[16] = {"arca", "serve"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[2 + i] = va_arg(ap, char *);
    va_end(ap);
    config_free(&cfg);
    return config_load(&cfg, argc + 2, argv, err);
}

static void options_read(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(
        load(err, 4, "--registry", "lab=http://Reg.Lab:5000/", "--registry", "docker.io"),
        CONFIG_SERVE);
    assert_int_equal(cfg.n_registries, 2);
    assert_string_equal(cfg.registries[0].name, "lab");
    assert_string_equal(cfg.registries[0].url, "http://reg.lab:5000");
    assert_string_equal(cfg.registries[1].url, "https://registry-1.docker.io");
    assert_int_equal(load(err, 2, "--registry", "lab"), CONFIG_ERROR);
    assert_non_null(strstr(err, "NAME=URL"));
    assert_int_equal(load(err, 2, "--registry", "x..y=http://h"), CONFIG_ERROR);
    assert_int_equal(load(err, 2, "--registry", "x:99999999=http://h"), CONFIG_ERROR);
    assert_int_equal(load(err, 2, "--registry", "host:5000=http://h"), CONFIG_SERVE);
    assert_int_equal(load(err, 2, "--registry-default", "lab"), CONFIG_ERROR);
    assert_non_null(strstr(err, "no such registry"));
    assert_int_equal(load(err, 2, "--registry-default", "docker.io"), CONFIG_SERVE);
    /* a NAME is given in one place */
    assert_int_equal(load(err, 4, "--registry", "lab=http://a", "--registry", "lab=http://b"),
                     CONFIG_ERROR);
    assert_non_null(strstr(err, "registry lab given twice on the command line"));
    assert_int_equal(load(err, 4, "--registry", "docker.io", "--registry", "lab=http://b"),
                     CONFIG_SERVE);
}

/* Two [registry lab] sections of one file: both places named; one section's keys are one. */
static void sections_once(void **state)
{
    char err[CONFIG_ERR_LEN];
    static const char one[] = "[registry lab]\nurl = http://a\nusername = u\n";
    char text[256];
    (void)state;
    config_free(&cfg);
    assert_int_equal(load(err, 0), CONFIG_SERVE);
    FILE *f = fmemopen((void *)one, strlen(one), "r");
    assert_int_equal(config_read_stream(&cfg, f, "a.ini", err), 0);
    fclose(f);
    assert_int_equal(cfg.n_registries, 1);
    snprintf(text, sizeof(text), "%s\n%s", one, one);
    assert_int_equal(load(err, 0), CONFIG_SERVE);
    f = fmemopen(text, strlen(text), "r");
    assert_int_equal(config_read_stream(&cfg, f, "a.ini", err), -1);
    fclose(f);
    assert_non_null(strstr(err, "registry lab given twice: at a.ini:1 and at a.ini:5"));
    config_free(&cfg);
}

/* Whether `a` asks something a repository holds (a manifest or a blob). */
static bool asks_content(const struct registry_ask *a)
{
    return a->r && (a->path.what == REG_MANIFEST || a->path.what == REG_BLOB);
}

static void table_built(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(
        load(err, 4, "--registry", "lab=http://127.0.0.1:5000", "--registry-default", "lab"),
        CONFIG_SERVE);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    assert_int_equal(registries_count(), 2); /* Docker Hub is known without being named */
    const struct registry *lab = registries_find("lab", 3), *hub = registries_find("docker.io", 9);
    assert_non_null(lab);
    assert_non_null(hub);
    assert_ptr_equal(registries_default(), lab);
    assert_true(hub->docker_hub && !lab->docker_hub);
    assert_string_equal(hub->url, "https://registry-1.docker.io");
    assert_ptr_equal(registries_for_url("http://127.0.0.1:5000/v2/x/blobs/y"), lab);
    assert_null(registries_for_url("http://127.0.0.1:5000/v2"));
    assert_null(registries_for_url("http://127.0.0.1:50000/v2/x"));
    assert_null(registries_find("la", 2));
    /* a pull: a manifest or a blob, never the tag list or /v2/ itself */
    struct registry_ask ask;
    assert_true(registries_ask_of("http://127.0.0.1:5000/v2/x/manifests/1.0", &ask) &&
                asks_content(&ask) && ask.r == lab);
    assert_true(
        registries_ask_of("http://127.0.0.1:5000/v2/a/b/blobs/sha256:"
                          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                          &ask) &&
        asks_content(&ask) && ask.r == lab);
    assert_false(registries_ask_of("http://127.0.0.1:5000/v2/x/tags/list", &ask) &&
                 asks_content(&ask));
    assert_false(registries_ask_of("http://127.0.0.1:5000/v2/", &ask) && asks_content(&ask));
    assert_false(registries_ask_of("http://127.0.0.1:5000/v2/x/blobs/md5:00", &ask) &&
                 asks_content(&ask));
    assert_false(registries_ask_of("http://127.0.0.1:5000/other/x/manifests/1", &ask) &&
                 asks_content(&ask));
    /* what a site asks its central: the /v2/ path as sent upstream, the registry by its URL */
    char t[200];
    assert_true(registries_parent_target("http://127.0.0.1:5000/v2/a/b/manifests/1.0", t, 200));
    assert_string_equal(t, "/v2/a/b/manifests/1.0?ns=http%3A%2F%2F127.0.0.1%3A5000");
    assert_true(
        registries_parent_target("https://registry-1.docker.io/v2/library/debian/blobs/sha256:"
                                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                 t, 200));
    assert_string_equal(t, "/v2/library/debian/blobs/sha256:"
                           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                           "?ns=https%3A%2F%2Fregistry-1.docker.io");
    assert_true(registries_parent_target("http://127.0.0.1:5000/v2/x/y/tags/list", t, 200));
    assert_string_equal(t, "/v2/x/y/tags/list?ns=http%3A%2F%2F127.0.0.1%3A5000");
    /* a one-component name: a central calling that registry docker.io reads it as library/x */
    assert_false(registries_parent_target("http://127.0.0.1:5000/v2/x/tags/list", t, 200));
    /* anything else is the fetch API's: a query, no registry path, another host, no room */
    assert_false(registries_parent_target("http://127.0.0.1:5000/v2/x/y/manifests/1?a=b", t, 200));
    assert_false(registries_parent_target("http://127.0.0.1:5000/v2/", t, 200));
    assert_false(
        registries_parent_target("https://registry-1.docker.io/v2/debian/manifests/12", t, 200));
    assert_false(registries_parent_target("http://127.0.0.1:5000/v2/X/y/manifests/1", t, 200));
    assert_false(registries_parent_target("http://127.0.0.1:5001/v2/x/y/manifests/1", t, 200));
    assert_false(registries_parent_target("http://127.0.0.1:5000/v2/x/y/manifests/1", t, 20));
    assert_ptr_equal(registries_at(0), lab);
    assert_null(registries_at(2));
    config_free(&cfg);
}

#define HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* What a URL asks of a registry's pull API, by the grammar: the repository as parsed (its
 * components may be "blobs" or "manifests"), the digest it names; nothing outside the grammar
 * (an encoded byte, an unknown path, a query but on a tag list) is the pull API, whatever
 * registry's /v2/ it lies under. */
static void what_a_url_asks(void **state)
{
    char err[CONFIG_ERR_LEN];
    struct registry_ask a;
    (void)state;
    assert_int_equal(load(err, 2, "--registry", "lab=http://127.0.0.1:5000"), CONFIG_SERVE);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    const struct registry *lab = registries_find("lab", 3);
    assert_true(registries_ask_of("http://127.0.0.1:5000/v2/x/manifests/1", &a));
    assert_ptr_equal(a.r, lab);
    assert_int_equal(a.path.what, REG_MANIFEST);
    assert_false(a.path.by_digest);
    assert_true(registries_ask_of("http://127.0.0.1:5000/v2/team/blobs/x/blobs/sha256:" HEX, &a));
    assert_int_equal(a.path.what, REG_BLOB);
    assert_string_equal(a.path.repo, "team/blobs/x");
    assert_true(a.path.by_digest && a.path.digest[0] == 0xe3 && a.path.digest[31] == 0x55);
    assert_true(registries_ask_of("http://127.0.0.1:5000/v2/a/manifests/sha256:" HEX, &a));
    assert_true(a.path.by_digest && a.path.what == REG_MANIFEST);
    assert_true(registries_ask_of("http://127.0.0.1:5000/v2/x/tags/list?n=10&last=b", &a));
    assert_int_equal(a.path.what, REG_TAGS);
    assert_true(registries_ask_of("http://127.0.0.1:5000/v2/", &a));
    assert_int_equal(a.path.what, REG_BASE);
    /* outside the grammar: no registry's, though under its /v2/ */
    static const char *const outside[] = {
        "http://127.0.0.1:5000/v2/..%2Finternal/secret.txt",
        "http://127.0.0.1:5000/v2/x%2Fy/manifests/1",
        "http://127.0.0.1:5000/v2/_catalog",
        "http://127.0.0.1:5000/v2/x/blobs/y",
        "http://127.0.0.1:5000/v2/x/blobs/sha512:00",
        "http://127.0.0.1:5000/v2/x/manifests/1?a=b",
        "http://127.0.0.1:5000/v2/x/manifests/1#f",
        "http://127.0.0.1:5000/v2/X/manifests/1",
        "http://127.0.0.1:5001/v2/x/manifests/1",
        "http://127.0.0.1:5000/v3/x/manifests/1",
    };
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        assert_false(registries_ask_of(outside[i], &a));
        assert_null(a.r);
    }
    config_free(&cfg);
}

/* containerd's ?ns=: a NAME, else the host[:port] of a configured URL as a reference writes it
 * (the scheme's default port left out); never another host's. */
/* Two registries whose URLs lie one under the other: a URL is the longer one's where it lies
 * under both. */
static void the_longest_url_wins(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(load(err, 4, "--registry", "top=http://127.0.0.1:5000", "--registry",
                          "team=http://127.0.0.1:5000/v2/team"),
                     CONFIG_SERVE);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    const struct registry *top = registries_find("top", 3), *team = registries_find("team", 4);
    assert_ptr_equal(registries_for_url("http://127.0.0.1:5000/v2/team/v2/x/manifests/1"), team);
    assert_ptr_equal(registries_for_url("http://127.0.0.1:5000/v2/team/x/manifests/1"), top);
    assert_ptr_equal(registries_for_url("http://127.0.0.1:5000/v2/x/manifests/1"), top);
    config_free(&cfg);
    assert_int_equal(load(err, 4, "--registry", "team=http://127.0.0.1:5000/v2/team", "--registry",
                          "top=http://127.0.0.1:5000"),
                     CONFIG_SERVE);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    team = registries_find("team", 4);
    assert_ptr_equal(registries_for_url("http://127.0.0.1:5000/v2/team/v2/x/manifests/1"), team);
    assert_ptr_equal(registries_for_url("http://127.0.0.1:5000/v2/x/blobs/y"),
                     registries_find("top", 3));
    config_free(&cfg);
}

static void ns_found(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(load(err, 6, "--registry", "lab=http://127.0.0.1:5000", "--registry",
                          "quay.lab=https://Quay.Lab:443/", "--registry",
                          "127.0.0.1:5000=http://h"),
                     CONFIG_SERVE);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    const struct registry *lab = registries_find("lab", 3), *quay = registries_find("quay.lab", 8);
    assert_ptr_equal(registries_for_ns("lab", 3), lab);
    /* a NAME first: the registry called 127.0.0.1:5000, not the one at that address */
    assert_ptr_equal(registries_for_ns("127.0.0.1:5000", 14),
                     registries_find("127.0.0.1:5000", 14));
    assert_ptr_equal(registries_for_ns("quay.lab", 8), quay);
    assert_ptr_equal(registries_for_ns("h", 1), registries_find("127.0.0.1:5000", 14));
    assert_ptr_equal(registries_for_ns("registry-1.docker.io", 20),
                     registries_find("docker.io", 9));
    /* a site's arca names a registry by its URL (normal form) */
    assert_ptr_equal(registries_for_ns("https://quay.lab", 16), quay);
    assert_ptr_equal(registries_for_ns("http://127.0.0.1:5000", 21), lab);
    assert_null(registries_for_ns("http://127.0.0.1:5000/", 22));
    assert_null(registries_for_ns("https://127.0.0.1:5000", 22));
    assert_null(registries_for_ns("quay.lab:443", 12));
    assert_null(registries_for_ns("127.0.0.1", 9));
    assert_null(registries_for_ns("127.0.0.1:500", 13));
    assert_null(registries_for_ns("", 0));
    assert_int_equal(load(err, 2, "--registry", "lab=http://127.0.0.1:5000"), CONFIG_SERVE);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    assert_ptr_equal(registries_for_ns("127.0.0.1:5000", 14), registries_find("lab", 3));
    config_free(&cfg);
}

/* A config file's text read after the command line's `argc` words. */
static int load_file(char *err, const char *text)
{
    assert_int_equal(load(err, 0), CONFIG_SERVE);
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int rc = config_read_stream(&cfg, f, "a.ini", err);
    fclose(f);
    return rc < 0 ? rc : config_finish(&cfg, err);
}

/* `aliases = HOST[:PORT], ...`: each a name of its registry, wherever a registry is named; an
 * alias another registry answers to (its NAME, alias, URL's host:port, Docker Hub's) refused. */
static void aliases_read(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(load_file(err, "[registry lab]\nurl = http://127.0.0.1:5000\n"
                                    "aliases = lab.example:5000 ,  mirror.lab\n"),
                     0);
    assert_int_equal(cfg.registries[0].n_aliases, 2);
    assert_string_equal(cfg.registries[0].aliases[0], "lab.example:5000");
    assert_string_equal(cfg.registries[0].aliases[1], "mirror.lab");
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    const struct registry *lab = registries_find("lab", 3);
    assert_ptr_equal(registries_for_ns("lab.example:5000", 16), lab);
    assert_ptr_equal(registries_for_ns("mirror.lab", 10), lab);
    assert_null(registries_for_ns("mirror.la", 9));
    assert_null(registries_find("mirror.lab", 10)); /* a NAME is a NAME */
    static const struct {
        const char *text, *says;
    } refused[] = {
        {"[registry a]\nurl = http://h1\naliases = x.lab\n[registry b]\nurl = http://h2\n"
         "aliases = x.lab\n",
         "registry a: alias x.lab names registry b too (an alias of it)"},
        {"[registry a]\nurl = http://h1\naliases = b\n[registry b]\nurl = http://h2\n",
         "alias b names registry b too (its NAME)"},
        {"[registry a]\nurl = http://h1\naliases = h2:81\n[registry b]\nurl = http://h2:81\n",
         "alias h2:81 names registry b too (its URL's host:port)"},
        {"[registry a]\nurl = http://h1\naliases = registry-1.docker.io\n",
         "names registry docker.io too"},
        {"[registry a]\nurl = http://h1\naliases = x.lab,,y.lab\n", "a: aliases"},
        {"[registry a]\nurl = http://h1\naliases = a,b,c,d,e,f,g,h,i\n", "at most 8"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(load_file(err, refused[i].text), -1);
        if (!strstr(err, refused[i].says))
            fail_msg("%s: %s", refused[i].says, err);
    }
    /* its own NAME or host:port as an alias says nothing new: taken */
    assert_int_equal(load_file(err, "[registry a]\nurl = http://h1:81\naliases = a, h1:81\n"), 0);
    config_free(&cfg);
}

/* An error check-config finds once every registry is in names the line to mend, as a rule's
 * does: an alias's clash its aliases line, two NAMEs of one URL, a missing url or login the
 * second registry's section; a --registry none (the command line says it). */
static void finish_errors_located(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    static const struct {
        const char *text, *says;
    } cases[] = {
        {"[registry a]\nurl = http://h1\n# the lab's other name\naliases = x.lab\n\n"
         "[registry b]\nurl = http://h2\naliases = x.lab\n",
         "a.ini:4: registry a: alias x.lab names registry b too (an alias of it): a name reaches "
         "one registry"},
        {"[registry a]\nurl = http://h1\n\n[registry b]\nurl = http://H1/\n",
         "a.ini:4: registry b: its URL is registry a's too: a name reaches one registry"},
        {"[registry a]\nurl = http://h1\n\n[registry b]\nusername = u\n",
         "a.ini:4: registry b: url missing"},
        {"[registry a]\nurl = http://h1\nusername = u\n",
         "a.ini:1: registry a: a login needs both username and password-file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(load_file(err, cases[i].text), -1);
        assert_string_equal(err, cases[i].says);
    }
    assert_int_equal(load(err, 4, "--registry", "a=http://h1", "--registry", "b=http://h1"),
                     CONFIG_ERROR);
    assert_string_equal(err,
                        "registry b: its URL is registry a's too: a name reaches one registry");
    config_free(&cfg);
}

/* An image reference: its registry by NAME, URL's host:port or alias (else the default), its
 * repository as the registry names it, its tag or digest, its manifest's URL. */
static void references_read(void **state)
{
    char err[CONFIG_ERR_LEN], why[200], url[600];
    struct registry_ask a;
    (void)state;
    assert_int_equal(load_file(err, "[registry lab]\nurl = http://127.0.0.1:5000\n"
                                    "aliases = lab.example:5000\n"),
                     0);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    static const struct {
        const char *ref, *url;
    } cases[] = {
        {"debian", "https://registry-1.docker.io/v2/library/debian/manifests/latest"},
        {"docker.io/library/debian:12",
         "https://registry-1.docker.io/v2/library/debian/manifests/12"},
        {"grafana/grafana:11", "https://registry-1.docker.io/v2/grafana/grafana/manifests/11"},
        {"lab/team/tool@sha256:" HEX, "http://127.0.0.1:5000/v2/team/tool/manifests/sha256:" HEX},
        {"lab/tool:2@sha256:" HEX, "http://127.0.0.1:5000/v2/tool/manifests/sha256:" HEX},
        {"127.0.0.1:5000/team/tool:2", "http://127.0.0.1:5000/v2/team/tool/manifests/2"},
        {"lab.example:5000/team/tool:2", "http://127.0.0.1:5000/v2/team/tool/manifests/2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(reg_ref_parse(cases[i].ref, &a, why, sizeof(why)), REG_OK);
        assert_true(reg_ref_url(&a, url, sizeof(url)));
        assert_string_equal(url, cases[i].url);
    }
    assert_int_equal(reg_ref_parse("lab/tool:2@sha256:" HEX, &a, why, sizeof(why)), REG_OK);
    assert_true(a.path.by_digest && a.path.digest[0] == 0xe3);
    assert_false(reg_ref_url(&a, url, 20));
    assert_int_equal(reg_ref_parse("nowhere.example/x:1", &a, why, sizeof(why)), REG_NAME_UNKNOWN);
    assert_string_equal(why, "registry 'nowhere.example' is not one arca mirrors");
    assert_int_equal(reg_ref_parse("lab.example:5001/x:1", &a, why, sizeof(why)), REG_NAME_UNKNOWN);
    assert_int_equal(reg_ref_parse("lab/Team:1", &a, why, sizeof(why)), REG_NAME_INVALID);
    assert_int_not_equal(reg_ref_parse("lab/team:", &a, why, sizeof(why)), REG_OK);
    assert_int_equal(reg_ref_parse("lab/team@sha256:ab", &a, why, sizeof(why)), REG_DIGEST_INVALID);
    assert_int_equal(reg_ref_parse("", &a, why, sizeof(why)), REG_NAME_INVALID);
    assert_null(a.r);
    config_free(&cfg);
}

/* What a manifest lists: an image's config and layers, an index's manifests, a v1's blobSums;
 * a digest of another algorithm left out; anything else unknown. */
static void manifests_read(void **state)
{
    struct reg_manifest m;
    (void)state;
    static const char image[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.docker.distribution.manifest.v2+json\","
        "\"config\":{\"digest\":\"sha256:" HEX "\"},\"layers\":[{\"digest\":\"sha256:" HEX "\"},"
        "{\"digest\":\"sha512:00\"},{\"digest\":\"sha256:" HEX "\"}]}";
    assert_int_equal(reg_manifest_read(image, strlen(image), &m), 0);
    assert_int_equal(m.kind, REG_MANIFEST_IMAGE);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.digests[2][31], 0x55);
    assert_string_equal(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
    reg_manifest_free(&m);
    static const char oci_index[] = "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" HEX
                                    "\",\"platform\":{\"os\":\"linux\"}}]}";
    assert_int_equal(reg_manifest_read(oci_index, strlen(oci_index), &m), 0);
    assert_int_equal(m.kind, REG_MANIFEST_INDEX);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.media_type, "");
    assert_string_equal(reg_manifest_kind_name(m.kind), "index");
    reg_manifest_free(&m);
    static const char v1[] =
        "{\"schemaVersion\":1,\"fsLayers\":[{\"blobSum\":\"sha256:" HEX "\"}]}";
    assert_int_equal(reg_manifest_read(v1, strlen(v1), &m), 0);
    assert_true(m.kind == REG_MANIFEST_IMAGE && m.n == 1);
    reg_manifest_free(&m);
    static const char *const unknown[] = {"", "[]", "{\"schemaVersion\":2}", "{\"a\":", "\"x\""};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_int_equal(reg_manifest_read(unknown[i], strlen(unknown[i]), &m), -1);
        assert_true(m.kind == REG_MANIFEST_UNKNOWN && m.n == 0 && !m.digests);
    }
}

/* Image pulls, blobs and requests: a GET of an image manifest (by tag or digest, not an index)
 * is a pull, a HEAD none; a blob's GET a blob; every request a request; hits and bytes of
 * manifests' and blobs' 2xx alone. */
static void answers_counted(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(load(err, 2, "--registry", "lab=http://127.0.0.1:5000"), CONFIG_SERVE);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    const struct registry *lab = registries_find("lab", 3);
    static const char image[] = "application/vnd.docker.distribution.manifest.v2+json",
                      index[] = "application/vnd.oci.image.index.v1+json";
    const struct registry_answered answers[] = {
        {REG_MANIFEST, false, 200, "HIT", image, 0},    /* dockerd's HEAD of the tag */
        {REG_MANIFEST, true, 200, "HIT", image, 500},   /* ... then its GET by digest */
        {REG_MANIFEST, true, 200, "MISS", index, 300},  /* skopeo's GET of an index */
        {REG_MANIFEST, true, 200, "MISS", image, 500},  /* ... then its entry */
        {REG_BLOB, true, 200, "MISS:origin", "", 1000}, /* a layer */
        {REG_BLOB, true, 206, "HIT", "", 10},           /* a range of it */
        {REG_BLOB, false, 200, "HIT", "", 0},           /* a blob's HEAD */
        {REG_MANIFEST, true, 404, "ERROR", "", 100},    /* no such tag */
        {REG_TAGS, true, 200, "MISS", "application/json", 40},
    };
    for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
        registries_count_answer(lab, &answers[i]);
    struct registry_counters *n = lab->counters;
    assert_int_equal(atomic_load(&n->pulls), 2);
    assert_int_equal(atomic_load(&n->blobs), 2);
    assert_int_equal(atomic_load(&n->requests), 9);
    assert_int_equal(atomic_load(&n->hits), 4);
    assert_int_equal(atomic_load(&n->bytes), 500 + 300 + 500 + 1000 + 10);
    assert_string_equal(registry_counter_name(8), "blobs");
    assert_string_equal(registry_counter_name(9), "requests");
    config_free(&cfg);
}

/* A SIGHUP reads each password file again: a changed one is swapped in (its generation raised,
 * its refusal forgotten), the same one is no change, one that cannot be read keeps the login. */
static void passwords_read_again(void **state)
{
    char err[CONFIG_ERR_LEN], path[UNIT_TMP_MAX] = "/tmp/arca-unit-pw-XXXXXX", login[300], why[300];
    uint64_t gen = 9;
    int fd = mkstemp(unit_tmp(path, sizeof(path)));
    (void)state;
    assert_true(fd >= 0 && write(fd, "first\n", 6) == 6);
    close(fd);
    assert_int_equal(load(err, 2, "--registry", "lab=http://127.0.0.1:5000"), CONFIG_SERVE);
    snprintf(cfg.registries[0].username, sizeof(cfg.registries[0].username), "bot");
    snprintf(cfg.registries[0].password_file, sizeof(cfg.registries[0].password_file), "%s", path);
    assert_int_equal(registries_init(&cfg, err, sizeof(err)), 0);
    const struct registry *lab = registries_find("lab", 3);
    assert_true(registries_login(lab, login, sizeof(login), &gen));
    assert_string_equal(login, "bot:first");
    assert_int_equal(gen, 0);
    assert_false(registries_login(registries_find("docker.io", 9), login, sizeof(login), NULL));
    assert_false(registries_login(lab, login, 5, NULL));
    registries_login_refused(lab, "registry lab refused the login of password-file x (401)");
    assert_true(registries_login_error(lab, why, sizeof(why)));
    assert_int_equal(registries_reread_passwords(), 0);
    assert_true(registries_login_error(lab, why, sizeof(why))); /* the same file: still refused */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("second\n", f);
    fclose(f);
    assert_int_equal(registries_reread_passwords(), 1);
    assert_int_equal(registries_login_gen(lab), 1);
    assert_true(registries_login(lab, login, sizeof(login), NULL));
    assert_string_equal(login, "bot:second");
    assert_false(registries_login_error(lab, why, sizeof(why)));
    unlink(path);
    assert_int_equal(registries_reread_passwords(), 0);
    assert_true(registries_login(lab, login, sizeof(login), &gen));
    assert_string_equal(login, "bot:second");
    assert_int_equal(gen, 1);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_read),    cmocka_unit_test(table_built),
        cmocka_unit_test(ns_found),        cmocka_unit_test(the_longest_url_wins),
        cmocka_unit_test(sections_once),   cmocka_unit_test(what_a_url_asks),
        cmocka_unit_test(answers_counted), cmocka_unit_test(passwords_read_again),
        cmocka_unit_test(aliases_read),    cmocka_unit_test(references_read),
        cmocka_unit_test(manifests_read),  cmocka_unit_test(finish_errors_located),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
