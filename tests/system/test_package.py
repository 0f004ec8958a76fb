"""The Debian package of the nodes (scripts/package), installed with dpkg -i into a fresh
Debian 12 root made by debootstrap (conftest.py: made once, cached, unpacked anew), and started
there from its systemd unit's own command line, as the arca user, against an origin on
loopback; its logrotate config rotates the access log and arca goes on in a new file."""

import http.client
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (Origin, fetch_twice, free_port, minbase_tarball, run, unpack,
                      wait_healthy, wait_log_lines)


@pytest.fixture
def fresh_root(deb):
    """A Debian 12 minbase root with the package's dependencies, unpacked anew."""
    root = unpack(minbase_tarball(deb))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def exec_start(root):
    """The unit's ExecStart, as systemd would run it."""
    with open(os.path.join(root, "lib/systemd/system/arca.service")) as f:
        unit = f.read()
    return shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))


SYSTEMCTL = """#!/bin/sh
# systemd's part in the root: answers what the package's logrotate config asks, records it
echo "$(id -un): $*" >>/tmp/systemctl.calls
case "$*" in
    "-q is-active arca.service") exit 0 ;;
    "kill --signal=USR1 arca.service") kill -USR1 "$(cat /tmp/arca.pid)"; exit ;;
esac
exit 1
"""


def rotate_the_log(root, pid, port, url):
    """logrotate -f with the package's config, in the root, systemd played by a stub systemctl
    on PATH: the old lines go to access.log.1, arca's next line to a new access.log."""
    logs = os.path.join(root, "var/log/arca")
    assert os.path.exists(os.path.join(root, "etc/logrotate.d/arca"))
    os.makedirs(os.path.join(root, "run/systemd/system"), exist_ok=True)
    stub = os.path.join(root, "usr/local/sbin/systemctl")
    with open(stub, "w") as f:
        f.write(SYSTEMCTL)
    os.chmod(stub, 0o755)
    with open(os.path.join(root, "tmp/arca.pid"), "w") as f:
        f.write(str(pid))
    run("chroot", root, "logrotate", "-f", "/etc/logrotate.d/arca")
    with open(os.path.join(root, "tmp/systemctl.calls")) as f:
        assert f.read().splitlines() == ["root: -q is-active arca.service",
                                         "root: kill --signal=USR1 arca.service"]
    with open(os.path.join(logs, "access.log.1")) as f:
        assert f.read().count("/api/v1/fetch/") == 2
    deadline = time.monotonic() + 10
    while True:  # SIGUSR1 is handled asynchronously: fetch until the line lands in the new file
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/v1/fetch/?url=" + url)
        assert conn.getresponse().status == 200
        with open(os.path.join(logs, "access.log")) as f:
            if "/api/v1/fetch/" in f.read():
                break
        assert time.monotonic() < deadline, "arca did not reopen access.log"
        time.sleep(0.1)
    st = os.stat(os.path.join(logs, "access.log"))
    assert st.st_uid == os.stat(logs).st_uid and oct(st.st_mode & 0o777) == "0o640"
    # a fetch of the loop above may have landed in the old file before the reopen (SIGUSR1 is
    # asynchronous); once one landed in the new file, nothing more goes to the old one
    def fetches_in(name):
        with open(os.path.join(logs, name)) as f:
            return f.read().count("/api/v1/fetch/")
    old, new = fetches_in("access.log.1"), fetches_in("access.log")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/v1/fetch/?url=" + url)
    assert conn.getresponse().status == 200
    deadline = time.monotonic() + 10
    while fetches_in("access.log") == new:
        assert time.monotonic() < deadline, "the fetch after the reopen was not logged"
        time.sleep(0.05)
    assert fetches_in("access.log.1") == old


def assert_links_resolve(doc):
    """Every relative link of the installed README.md and docs/*.md names an installed file."""
    pages = ["README.md"] + ["docs/" + n for n in sorted(os.listdir(os.path.join(doc, "docs")))
                             if n.endswith(".md")]
    assert len(pages) > 10, pages
    for page in pages:
        with open(os.path.join(doc, page)) as f:
            text = f.read()
        links = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
        for link in links:
            if re.match(r"[a-z]+:", link):
                continue  # https://..., mailto:
            target = os.path.normpath(os.path.join(os.path.dirname(os.path.join(doc, page)), link))
            assert os.path.isfile(target), f"{page} links {link}, not installed"


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
    # the man page's SEE ALSO: README.md beside docs/, uncompressed, and every relative link
    # in them (a page, an image) resolving in the installed tree
    doc = os.path.join(root, "usr/share/doc/arca")
    assert_links_resolve(doc)
    for name in ("haproxy.cfg", "Containerfile", "compose.yaml"):
        assert os.path.exists(os.path.join(doc, "examples", name)), name
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
        wait_healthy(port, lambda: proc.poll() is None, lambda: open(log.name).read())
        url = fetch_twice(port, origin)
        owned = [os.stat(os.path.join(dp, f)).st_uid
                 for dp, _, fs in os.walk(os.path.join(root, "var/lib/arca")) for f in fs]
        assert owned and set(owned) == {int(passwd.split(":")[2])}  # written as arca
        wait_log_lines(lambda: open(os.path.join(root, "var/log/arca/access.log")).read(),
                       "/api/v1/fetch/", 2)
        rotate_the_log(root, proc.pid, port, url)
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
