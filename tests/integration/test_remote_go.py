"""Go modules through arca (issue 69, docs/REMOTES.md): a remote of kind `go` in front of a static
module proxy (goproxy.py: nginx over HTTPS with the test CA), and the real go command with
GOPROXY=http://ARCA/go and a module cache of its own. `.info`, `.mod` and `.zip` are immutable
(one upstream download for every client), `@v/list` and `@latest` are metadata (fresh for
--remote-meta-ttl, then revalidated), `sumdb/...` passes through, a path leaving the base is
refused before it is asked upstream, and the remote's counters are in the status JSON."""

import hashlib
import http.client
import os

import pytest

from conftest import wait_for
from goproxy import (DEP, HELLO, SUMDB_LATEST, SUMDB_SUPPORTED, go_client,  # noqa: F401
                     go_proxy)

NAME = "go"



def remote_entry(status, name):
    """The status JSON's entry of remote `name` ({} when it has none): `remotes` is a list."""
    return next((r for r in status.get("remotes", []) if r.get("name") == name), {})

def start_go_remote(start_arca, workdir, proxy, ca, *args):
    """arca with `[remote go]` naming `proxy` (kind go), trusting the test CA."""
    ini = os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write(f"[remote {NAME}]\nurl = {proxy.url}\nkind = go\n")
    return start_arca("--config", ini, "--upstream-allow", "127.0.0.0/8", "--ca-file", ca, *args)


def goproxy_of(arca):
    return f"{arca.base}/{NAME}"


def raw_get(arca, target):
    """(status, body) of GET `target` sent as written (no client-side normalising)."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def module_files(v):
    return [v.path(ext) for ext in ("info", "mod", "zip")]


def check_download(got, v):
    """go's record of one module download is the origin's module: the zip it kept has the
    origin's bytes, the hashes it computed are those of the origin's zip and go.mod."""
    assert (got["Path"], got["Version"]) == (v.module, v.version), got
    with open(got["Zip"], "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == v.zip_sha256
    assert got["Sum"] == v.zip_sum and got["GoModSum"] == v.mod_sum, got
    assert os.path.isfile(os.path.join(got["Dir"], "go.mod"))


# --- the harness alone ----------------------------------------------------------------------


def test_harness_go_direct_against_the_proxy(go_proxy, go_client, tls_files):
    """The module proxy is one go accepts without arca: go mod download of hello v1.1.0 over
    HTTPS (the test CA) checks the zip (format and h1 hash), go list sees both versions, and a
    program requiring hello builds with hello and dep from the proxy. The origin's log counts
    each file once."""
    mods = go_proxy.mods
    go = go_client(go_proxy.url, ca=tls_files["ca"])
    [got] = go.download(f"{HELLO}@v1.1.0")
    check_download(got, mods["hello"])
    for path in module_files(mods["hello"]):
        assert go_proxy.count(path) == 1, (path, go_proxy.requests())
    assert go.versions(HELLO) == ["v1.0.0", "v1.1.0"]
    out = go.run_main('fmt.Println(hello.Hello())', [(HELLO, "v1.1.0")])
    assert out == "hello v1.1.0 dep v1.0.0\n"
    assert go_proxy.count(mods["dep"].path("zip")) == 1
    assert go_proxy.count(mods["hello"].path("zip")) == 1  # the module cache had it


# --- through arca ---------------------------------------------------------------------------


def test_go_downloads_through_arca_once(go_proxy, go_client, start_arca, workdir, tls_files):
    """Two go mod download of hello v1.1.0, each with a clean module cache, through arca: both
    get the origin's zip (sha256, h1 sum), the origin is asked each of .info, .mod and .zip
    once, and arca counts the second run's requests as hits. A program requiring hello builds
    through arca too (dep fetched through it)."""
    arca = start_go_remote(start_arca, workdir, go_proxy, tls_files["ca"])
    hello = go_proxy.mods["hello"]
    for _ in range(2):
        with go_client(goproxy_of(arca)) as go:
            [got] = go.download(f"{HELLO}@v1.1.0")
            check_download(got, hello)
    for path in module_files(hello):
        assert go_proxy.count(path) == 1, (path, go_proxy.requests())
        assert all(s == 200 for s, _, _ in go_proxy.requests(path))
    # the second run: every file a hit
    wait_for(lambda: remote_entry(arca.status(), NAME).get("hits", 0) >= 3,
             "the second run's 3 hits in the status JSON")

    with go_client(goproxy_of(arca)) as go:
        assert go.run_main('fmt.Println(hello.Hello())', [(HELLO, "v1.1.0")]) == \
            "hello v1.1.0 dep v1.0.0\n"
    assert go_proxy.count(go_proxy.mods["dep"].path("zip")) == 1
    assert go_proxy.count(hello.path("zip")) == 1


def test_go_list_is_metadata(go_proxy, go_client, start_arca, workdir, tls_files):
    """@v/list and @latest are metadata: with --remote-meta-ttl 1s, a version published on the
    origin (hello v1.2.0) is listed through arca once the second has passed (the list
    revalidated: a conditional request the origin answers 304 while unchanged), go list and
    go mod download see it; the immutable files of v1.1.0 are never asked again."""
    arca = start_go_remote(start_arca, workdir, go_proxy, tls_files["ca"],
                           "--remote-meta-ttl", "1s")
    hello = go_proxy.mods["hello"]
    tree = go_proxy.tree
    list_path, latest_path = tree.list_path(HELLO), tree.latest_path(HELLO)
    with go_client(goproxy_of(arca)) as go:
        assert go.versions(HELLO) == ["v1.0.0", "v1.1.0"]
        check_download(go.download(f"{HELLO}@v1.1.0")[0], hello)
    assert raw_get(arca, f"/{NAME}{latest_path}")[0] == 200

    # unchanged: once stale, the list is revalidated with a conditional request (a 304)
    wait_for(lambda: raw_get(arca, f"/{NAME}{list_path}")[0] == 200 and
             any(s == 304 for s, _, _ in go_proxy.requests(list_path)),
             "the origin's 304 to a revalidation of @v/list", timeout=15, every=0.2)

    v12 = tree.publish(HELLO, "v1.2.0", requires=[(DEP, "v1.0.0")])
    wait_for(lambda: b"v1.2.0" in raw_get(arca, f"/{NAME}{list_path}")[1],
             "v1.2.0 in @v/list through arca", timeout=15, every=0.2)
    wait_for(lambda: b"v1.2.0" in raw_get(arca, f"/{NAME}{latest_path}")[1],
             "v1.2.0 in @latest through arca", timeout=15, every=0.2)
    with go_client(goproxy_of(arca)) as go:
        assert go.versions(HELLO) == ["v1.0.0", "v1.1.0", "v1.2.0"]
        check_download(go.download(f"{HELLO}@v1.2.0")[0], v12)
        check_download(go.download(f"{HELLO}@v1.1.0")[0], hello)
    for path in module_files(hello) + module_files(v12):
        assert go_proxy.count(path) == 1, (path, go_proxy.requests())


def test_go_list_fresh_within_the_ttl(go_proxy, start_arca, workdir, tls_files):
    """Within --remote-meta-ttl the list is answered from the store: two GETs a moment apart
    ask the origin once, and a version published meanwhile is not listed yet."""
    arca = start_go_remote(start_arca, workdir, go_proxy, tls_files["ca"],
                           "--remote-meta-ttl", "1h")
    list_path = go_proxy.tree.list_path(HELLO)
    status, first = raw_get(arca, f"/{NAME}{list_path}")
    assert status == 200 and first == b"v1.0.0\nv1.1.0\n"
    go_proxy.tree.publish(HELLO, "v1.2.0")
    assert raw_get(arca, f"/{NAME}{list_path}") == (200, first)
    assert go_proxy.count(list_path) == 1


def test_go_sumdb_passes_through(go_proxy, start_arca, workdir, tls_files):
    """The checksum database's path is not kept: every GET of sumdb/sum.golang.org/supported
    through arca reaches the origin, and a changed `latest` is answered at once."""
    arca = start_go_remote(start_arca, workdir, go_proxy, tls_files["ca"])

    def settled():
        """No download in flight: a request sent as the last one's download ends would join it
        (one download for every client asking meanwhile), which is not what is counted here."""
        wait_for(lambda: arca.metrics().get('arca_objects{state="downloading"}') == 0,
                 "the last download ended")

    for n in (1, 2, 3):
        settled()
        assert raw_get(arca, f"/{NAME}{SUMDB_SUPPORTED}")[0] == 200
        assert go_proxy.count(SUMDB_SUPPORTED) == n, go_proxy.requests()
    settled()
    assert raw_get(arca, f"/{NAME}{SUMDB_LATEST}") == \
        (200, b"go.sum database tree\n1\nstand-in root hash\n")
    go_proxy.tree.put(SUMDB_LATEST, b"go.sum database tree\n2\nanother root hash\n")
    settled()
    assert raw_get(arca, f"/{NAME}{SUMDB_LATEST}") == \
        (200, b"go.sum database tree\n2\nanother root hash\n")
    assert go_proxy.count(SUMDB_LATEST) == 2


@pytest.mark.parametrize("target", [
    f"/{NAME}/../outside.txt",
    f"/{NAME}/%2e%2e/outside.txt",
    f"/{NAME}/%2E%2E/outside.txt",
    f"/{NAME}/example.test/..%2F..%2Foutside.txt",
    f"/{NAME}/example.test/%2e%2e%2f%2e%2e%2foutside.txt",
    f"/{NAME}/example.test/hello/@v/..%2F..%2F..%2F..%2Foutside.txt",
])
def test_go_path_leaving_the_base_refused(go_proxy, start_arca, workdir, tls_files, target):
    """A path that leaves the remote's base once decoded is refused 400 and never asked
    upstream (the origin holds a file there: outside.txt beside the proxy's base); the remote
    still answers a path inside it."""
    arca = start_go_remote(start_arca, workdir, go_proxy, tls_files["ca"])
    status, body = raw_get(arca, target)
    assert status == 400, (status, body[:200])
    assert b"outside the proxy's base" not in body
    list_path = go_proxy.tree.list_path(HELLO)
    assert raw_get(arca, f"/{NAME}{list_path}") == (200, b"v1.0.0\nv1.1.0\n")
    # nginx logs the URI as it came: what arca would have sent named outside.txt, however
    # spelled
    asked = go_proxy.requests()
    assert [uri for _, _, uri in asked] == [go_proxy.full(list_path)], asked


def test_go_remote_counted_in_status(go_proxy, go_client, start_arca, workdir, tls_files):
    """The status JSON's `remotes` has the remote `go` with its counters: after two go mod
    download runs of hello v1.1.0 (clean caches), requests is every request go made, twice
    what the origin was asked, hits the second run's, bytes at least the zips it sent."""
    arca = start_go_remote(start_arca, workdir, go_proxy, tls_files["ca"])
    hello = go_proxy.mods["hello"]
    with go_client(goproxy_of(arca)) as go:
        go.download(f"{HELLO}@v1.1.0")
    asked = len(go_proxy.requests())  # the first run: each of go's requests a miss
    assert asked == 3, go_proxy.requests()  # .info, .mod, .zip
    with go_client(goproxy_of(arca)) as go:
        go.download(f"{HELLO}@v1.1.0")
    assert len(go_proxy.requests()) == asked

    def counted():
        r = remote_entry(arca.status(), NAME) or None
        return r if r and r["requests"] == 2 * asked else None

    remote = wait_for(counted, "the remote's 6 requests in the status JSON")
    assert remote["hits"] == asked, remote
    assert remote["bytes"] >= len(hello.zip), remote
    for key in ("revalidated", "stale"):
        assert remote[key] == 0, remote
