"""The Debian package of the nodes (scripts/package), installed with dpkg -i into a fresh
Debian 12 root made by debootstrap, and started there from its systemd unit's own command line,
as the arca user, against an origin on loopback. The root is made once per set of dependencies
and kept as a tarball in ~/.cache/arca-tests/ (each run unpacks a fresh copy); making it needs
Debian's mirror, like scripts/deps."""

import hashlib
import http.client
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import Origin, free_port, sha256  # noqa: E402

CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                     "arca-tests")
MIRROR = "http://deb.debian.org/debian"


def run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def deb():
    out = tempfile.mkdtemp(prefix="arca-deb-")
    path = run(os.path.join(ROOT, "scripts", "package"), out).stdout.strip().splitlines()[-1]
    yield path
    shutil.rmtree(out, ignore_errors=True)


def dependencies(deb):
    """The package names of the .deb's Depends (alternatives and versions left out)."""
    depends = run("dpkg-deb", "-f", deb, "Depends").stdout
    return sorted({re.split(r"[ (|]", d.strip())[0] for d in depends.split(",")})


@pytest.fixture
def fresh_root(deb):
    """A Debian 12 minbase root with the package's dependencies, unpacked anew."""
    deps = dependencies(deb)
    key = hashlib.sha256(",".join(deps).encode()).hexdigest()[:16]
    tarball = os.path.join(CACHE, f"bookworm-minbase-{key}.tar")
    if not os.path.exists(tarball):
        os.makedirs(CACHE, exist_ok=True)
        made = tempfile.mkdtemp(prefix="arca-debootstrap-")
        try:
            run("debootstrap", "--variant=minbase", "--include=" + ",".join(deps), "bookworm",
                made, MIRROR)
            run("tar", "-C", made, "-cf", tarball + ".part", ".")
            os.rename(tarball + ".part", tarball)
        finally:
            shutil.rmtree(made, ignore_errors=True)
    root = tempfile.mkdtemp(prefix="arca-root-")
    run("tar", "-C", root, "-xf", tarball)
    os.chmod(root, 0o755)  # a root directory every user may enter (mkdtemp's is 0700)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def exec_start(root):
    """The unit's ExecStart, as systemd would run it."""
    with open(os.path.join(root, "lib/systemd/system/arca.service")) as f:
        unit = f.read()
    return shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))


def test_the_package_installs_and_runs_from_its_unit(deb, fresh_root):
    root = fresh_root
    shutil.copy(deb, os.path.join(root, "tmp"))
    name = os.path.basename(deb)
    assert re.fullmatch(r"arca_\d+\.\d+\.\d+_amd64\.deb", name)
    run("chroot", root, "dpkg", "-i", "/tmp/" + name)
    # the arca system user, its directories, the conffile
    passwd = run("chroot", root, "getent", "passwd", "arca").stdout
    assert passwd.split(":")[5] == "/var/lib/arca" and passwd.strip().endswith("/usr/sbin/nologin")
    for d in ("var/lib/arca", "var/log/arca"):
        st = os.stat(os.path.join(root, d))
        assert st.st_uid == int(passwd.split(":")[2]) and oct(st.st_mode & 0o777) == "0o750"
    conffiles = run("chroot", root, "dpkg-query", "-W", "-f=${Conffiles}", "arca").stdout
    assert "/etc/arca/arca.ini" in conffiles
    assert os.path.exists(os.path.join(root, "usr/share/man/man1/arca.1.gz"))
    # the admin's part: where to listen, and an upstream on loopback (the test's origin)
    ini = os.path.join(root, "etc/arca/arca.ini")
    port = free_port()
    with open(ini) as f:
        text = f.read().replace("listen = 0.0.0.0:8001", f"listen = 127.0.0.1:{port}")
    with open(ini, "w") as f:
        f.write(text + "upstream-allow = 127.0.0.0/8\n")
    run("chroot", root, "arca", "check-config", "--config", "/etc/arca/arca.ini")
    argv = exec_start(root)
    assert argv == ["/usr/bin/arca", "serve", "--config", "/etc/arca/arca.ini"]
    origin = Origin()
    log = open(os.path.join(root, "tmp", "arca.out"), "wb")
    proc = subprocess.Popen(["chroot", "--userspec=arca:arca", root, *argv], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        data = os.urandom(300000)
        url = origin.add("/Image", data=data)
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/v1/health/")
                assert conn.getresponse().status == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    open(log.name).read()
                time.sleep(0.1)
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/api/v1/fetch/?url=" + url)
            resp = conn.getresponse()
            assert resp.status == 200 and sha256(resp.read()) == sha256(data)
        assert origin.counts["/Image"] == 1
        owned = [os.stat(os.path.join(dp, f)).st_uid
                 for dp, _, fs in os.walk(os.path.join(root, "var/lib/arca")) for f in fs]
        assert owned and set(owned) == {int(passwd.split(":")[2])}  # written as arca
        with open(os.path.join(root, "var/log/arca/access.log")) as f:
            assert f.read().count("/api/v1/fetch/") == 2
        assert proc.poll() is None, open(log.name).read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()
        origin.stop()
    assert proc.returncode == 0, open(log.name).read()
    # purge: the cache, the logs and the user go
    run("chroot", root, "dpkg", "--purge", "arca")
    assert not os.path.exists(os.path.join(root, "var/lib/arca"))
    assert subprocess.run(["chroot", root, "getent", "passwd", "arca"]).returncode != 0
