"""A resolver's blip is not a name that does not exist (issue 23's review): curl reports both as
"could not resolve host", so a name that did not resolve is asked once more after about a second
before the download fails with `cannot resolve host NAME`. A resolver shim (LD_PRELOAD, built
here with cc) answers for the test names: `flaky.lab` fails its first lookups with EAI_AGAIN and
then resolves to 127.0.0.1; `gone.lab` never resolves (EAI_NONAME)."""

import os
import re
import shutil
import subprocess
import time

import pytest

SHIM = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
static atomic_int flaky_calls;
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
            dlsym(RTLD_NEXT, "getaddrinfo");
    if (node && !strcmp(node, "gone.lab"))
        return EAI_NONAME;
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
    env = dict(os.environ, LD_PRELOAD=shim, SHIM_FLAKY_FAILS=str(fails))
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
