"""A resolver's blip is not a name that does not exist (issue 23's review): curl reports both as
"could not resolve host", so a name that did not resolve is asked once more after about a second
before the download fails with `cannot resolve host NAME`. A resolver shim (LD_PRELOAD, built
here with cc) answers for the test names: `flaky.lab` fails its first lookups with EAI_AGAIN and
then resolves to 127.0.0.1; `gone.lab` never resolves (EAI_NONAME); each `blip-*.lab` fails its
first lookup (EAI_AGAIN) and then resolves to 127.0.0.1, so a fresh name per case makes a blip
without waiting out curl's DNS cache."""

import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import sha256

SHIM = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
static atomic_int flaky_calls;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static char blipped[64][64];
/* Whether `node` is a blip-*.lab name asked for the first time. */
static int first_blip(const char *node)
{
    size_t len = strlen(node);
    int first = 1;
    if (strncmp(node, "blip-", 5) || len < 9 || len >= 64 || strcmp(node + len - 4, ".lab"))
        return 0;
    while (atomic_flag_test_and_set(&lock))
        ;
    for (int i = 0; i < 64 && first; i++) {
        if (!strcmp(blipped[i], node))
            first = 0;
        else if (!blipped[i][0]) {
            strcpy(blipped[i], node);
            break;
        }
    }
    atomic_flag_clear(&lock);
    return first;
}
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
            dlsym(RTLD_NEXT, "getaddrinfo");
    if (node && !strcmp(node, "gone.lab"))
        return EAI_NONAME;
    if (node && !strncmp(node, "blip-", 5)) {
        if (first_blip(node))
            return EAI_AGAIN;
        node = "127.0.0.1";
    }
    if (node && !strcmp(node, "flaky.lab")) {
        const char *fails = getenv("SHIM_FLAKY_FAILS");
        if (atomic_fetch_add(&flaky_calls, 1) < (fails ? atoi(fails) : 0))
            return EAI_AGAIN;
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}
'''

FAILED_AFTER = re.compile(r"upstream failed after (\d+) attempts? in (\d+\.\d) s: (.*)")


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler for the resolver shim")
    d = tmp_path_factory.mktemp("shim")
    (d / "shim.c").write_text(SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(d / "shim.so"), str(d / "shim.c"), "-ldl"],
                   check=True)
    return str(d / "shim.so")


def start(start_arca, shim, fails=0, *args):
    # a sanitized arca wants its runtime first: the shim comes before it, which is harmless here
    env = dict(os.environ, LD_PRELOAD=shim, SHIM_FLAKY_FAILS=str(fails),
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    return start_arca("--upstream-allow", "127.0.0.0/8", *args, env=env)


def test_a_resolver_blip_is_asked_again(start_arca, shim, origin):
    arca = start(start_arca, shim, 1)
    origin.add("/Image", data=b"k" * 5000)
    started = time.monotonic()
    status, _, body = arca.fetch(f"http://flaky.lab:{origin.port}/Image")
    assert status == 200 and body == b"k" * 5000
    assert 0.8 <= time.monotonic() - started < 5  # one lookup again, after about a second


def test_a_name_that_does_not_resolve_fails_in_about_a_second(start_arca, shim):
    arca = start(start_arca, shim)
    started = time.monotonic()
    status, _, body = arca.fetch("http://gone.lab/x")
    took = time.monotonic() - started
    assert status == 502 and took < 2.5, (took, body)
    said = FAILED_AFTER.fullmatch(body.decode()[:-1])
    assert said and said[1] == "2" and said[3] == "cannot resolve host gone.lab", body


def test_a_redirect_to_a_name_that_does_not_resolve_names_that_host(start_arca, shim, origin):
    arca = start(start_arca, shim)
    url = origin.add("/moved", redirect="http://gone.lab/elsewhere")
    status, _, body = arca.fetch(url)
    assert status == 502
    assert body.decode().endswith(": cannot resolve host gone.lab\n"), body


def digest_twin(arca, origin, data=b"twin " * 1000):
    """A cached object and another URL with the same bytes: asked for with its digest, the other
    URL is a digest hit, confirmed with upstream by a one-byte request (a probe)."""
    assert arca.fetch(origin.add("/a/file", data=data))[0] == 200
    origin.add("/b/file", data=data)
    return data


def test_a_resolver_blip_does_not_fail_a_confirmation(start_arca, shim, origin):
    arca = start(start_arca, shim)
    data = digest_twin(arca, origin)
    started = time.monotonic()
    status, headers, body = arca.fetch(f"http://blip-digest.lab:{origin.port}/b/file",
                                       sha256=sha256(data))
    assert status == 200 and body == data, body[:200]
    assert headers["cache-status"].endswith("detail=digest-hit")
    assert 0.8 <= time.monotonic() - started < 5  # asked again after about a second


def test_a_confirmation_of_a_name_that_does_not_resolve_reads_as_a_download(start_arca, shim,
                                                                            origin):
    arca = start(start_arca, shim)
    data = digest_twin(arca, origin)
    started = time.monotonic()
    status, _, body = arca.fetch(f"http://gone.lab:{origin.port}/b/file", sha256=sha256(data))
    assert status == 502 and time.monotonic() - started < 2.5, body
    said = FAILED_AFTER.fullmatch(body.decode()[:-1])
    assert said and said[1] == "2" and said[3] == "cannot resolve host gone.lab", body
    downloaded = arca.fetch(f"http://gone.lab:{origin.port}/c/file")
    assert (downloaded[0], len(downloaded[2])) == (status, len(body)), downloaded
