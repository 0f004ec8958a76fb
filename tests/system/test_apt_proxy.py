"""apt-get through arca as its HTTP proxy (docs/PROXY.md): the package scenario's
Debian 12 root, its sources replaced by one local repository a test origin serves, and
Acquire::http::Proxy pointing at build/arca on loopback. apt-get update and install go through
arca; a second root installs the same package from arca's copy, and the prefix form of the
package's URL is the same object."""

import email.utils
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from conftest import free_port, minbase_tarball, run, sha256, unpack, wait_age, wait_healthy

ARCA_BIN = os.environ.get("ARCA_BIN", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build",
    "arca"))
PACKAGE = "arca-proxy-probe"
POOL = f"/debian/pool/main/{PACKAGE}_1.0_all.deb"


def build_deb(workdir, payload):
    """A package of our own: one file, /usr/share/arca-proxy-probe/payload."""
    tree = os.path.join(workdir, "tree")
    os.makedirs(os.path.join(tree, "DEBIAN"))
    os.makedirs(os.path.join(tree, "usr", "share", PACKAGE))
    with open(os.path.join(tree, "usr", "share", PACKAGE, "payload"), "wb") as f:
        f.write(payload)
    with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: arca tests <tests@arca.invalid>\n"
                "Description: a package only arca's scenarios install\n")
    out = os.path.join(workdir, "probe.deb")
    run("dpkg-deb", "--root-owner-group", "--build", tree, out)
    with open(out, "rb") as f:
        return f.read()


def serve_repository(origin, deb):
    """dists/bookworm/{Release,main/binary-amd64/Packages} and the pool, on the origin."""
    packages = (f"Package: {PACKAGE}\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: arca tests <tests@arca.invalid>\n"
                f"Filename: pool/main/{PACKAGE}_1.0_all.deb\nSize: {len(deb)}\n"
                f"SHA256: {hashlib.sha256(deb).hexdigest()}\n"
                "Description: a package only arca's scenarios install\n\n").encode()
    release = ("Origin: arca-tests\nLabel: arca-tests\nSuite: bookworm\nCodename: bookworm\n"
               f"Date: {email.utils.formatdate(usegmt=True)}\nArchitectures: amd64\n"
               "Components: main\nSHA256:\n"
               f" {hashlib.sha256(packages).hexdigest()} {len(packages)} "
               "main/binary-amd64/Packages\n").encode()
    origin.add("/debian/dists/bookworm/Release", data=release, etag='"r1"')
    origin.add("/debian/dists/bookworm/main/binary-amd64/Packages", data=packages, etag='"p1"')
    origin.add(POOL, data=deb, etag='"d1"')


def point_apt_at(root, origin_port, arca_port):
    """Only the test repository, and arca as apt's proxy."""
    for name in ("sources.list", "sources.list.d"):
        path = os.path.join(root, "etc", "apt", name)
        if os.path.isdir(path):
            shutil.rmtree(path)
            os.makedirs(path)
        elif os.path.exists(path):
            os.remove(path)
    with open(os.path.join(root, "etc", "apt", "sources.list"), "w") as f:
        f.write(f"deb [trusted=yes] http://127.0.0.1:{origin_port}/debian bookworm main\n")
    with open(os.path.join(root, "etc", "apt", "apt.conf.d", "80arca"), "w") as f:
        f.write(f'Acquire::http::Proxy "http://127.0.0.1:{arca_port}";\n')


class Listing:
    """arca on `port` as the scenarios' waits ask it (conftest's wait_age reads its listing)."""

    def __init__(self, port):
        self.port = port

    def get(self, path, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()


def apt(root, *args):
    return run("chroot", root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", *args)


@pytest.fixture
def arca_proxy():
    workdir = tempfile.mkdtemp(prefix="arca-apt-")
    port = free_port()
    log = open(os.path.join(workdir, "arca.log"), "w")
    proc = subprocess.Popen([ARCA_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                             os.path.join(workdir, "data"), "--upstream-allow", "127.0.0.0/8"],
                            stdout=log, stderr=subprocess.STDOUT)

    def read_log():
        with open(os.path.join(workdir, "arca.log")) as f:
            return f.read()

    try:
        wait_healthy(port, lambda: proc.poll() is None, read_log)
        yield port, read_log
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_apt_get_installs_through_arca_and_a_second_root_hits(deb, arca_proxy, origin):
    port, read_log = arca_proxy
    workdir = tempfile.mkdtemp(prefix="arca-apt-repo-")
    roots = []
    try:
        payload = os.urandom(200_000)
        package = build_deb(workdir, payload)
        serve_repository(origin, package)
        for n in range(2):
            root = unpack(minbase_tarball(deb))
            roots.append(root)
            point_apt_at(root, origin.port, port)
            if n:
                # apt asks for Release with max-age=0 (arca: a 1 s ttl), which a copy 0 s old
                # satisfies (RFC 9111: its age is not greater than 0): when both updates fell
                # in one second, arca rightly answered a hit and the revalidation awaited
                # below never came. The copy is made 1 s old by arca's clock first.
                wait_age(Listing(port), "/debian/dists/bookworm/Release", 1)
            apt(root, "update")
            apt(root, "install", "-y", "--no-install-recommends", PACKAGE)
            with open(os.path.join(root, "usr", "share", PACKAGE, "payload"), "rb") as f:
                assert sha256(f.read()) == sha256(payload)
        # the package came from the origin once; the second root got arca's copy
        assert origin.counts[POOL] == 1
        # apt asks for its index files with max-age=0: they are revalidated. Under load the
        # origin may answer that revalidation after arca's patience (1.5 s): apt then got the
        # expired copy (stale-while-slow) and the refresh reaches the origin behind it.
        deadline = time.monotonic() + 30
        while origin.counts["/debian/dists/bookworm/Release"] < 2:
            assert time.monotonic() < deadline, read_log()
            time.sleep(0.05)
        # the prefix form of the package's URL is the same object
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        url = f"http://127.0.0.1:{origin.port}{POOL}"
        conn.request("GET", "/api/v1/fetch/?url=" + urllib.parse.quote(url, safe=""))
        resp = conn.getresponse()
        assert resp.status == 200 and sha256(resp.read()) == sha256(package)
        assert "hit" in resp.getheader("Cache-Status")
        assert origin.counts[POOL] == 1
        assert f'"GET {url} HTTP/1.1" 200' in read_log()
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
