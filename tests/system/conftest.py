"""What the system scenarios share: the Debian package, built once per run (scripts/package),
and the Debian 12 minbase root it installs into (scripts/debian-root: made once per machine,
shared with scripts/container). Making the root needs Debian's mirror, like scripts/deps."""

import http.client
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                     "arca-tests")

# the scenarios' origin and helpers (tests/integration/conftest.py, loaded under its own name)
_spec = importlib.util.spec_from_file_location(
    "arca_integration_conftest", os.path.join(ROOT, "tests", "integration", "conftest.py"))
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
Origin, free_port, sha256 = _integration.Origin, _integration.free_port, _integration.sha256
origin = _integration.origin  # the scenarios' origin fixture, for system scenarios too
wait_age = _integration.wait_age  # until an object is N s old by arca's own clock and record


# Making the Debian root once per machine (debootstrap from the mirror, then dpkg unpacking ~100
# packages one by one) took over 600 s on a fresh 2-core machine beside the scenario passes.
DEBOOTSTRAP_TIMEOUT = 1800


def run(*argv, timeout=600, **kw):
    """argv's result; a failure says the command and its standard error."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def deb():
    out = tempfile.mkdtemp(prefix="arca-deb-")
    try:  # removed also when the build fails
        yield run(os.path.join(ROOT, "scripts", "package"), out).stdout.strip().splitlines()[-1]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def minbase_tarball(deb):
    """The cached Debian 12 minbase root with the package's dependencies (scripts/debian-root:
    made if missing, or waited for while scripts/test makes it)."""
    return run(os.path.join(ROOT, "scripts", "debian-root"), deb,
               timeout=DEBOOTSTRAP_TIMEOUT).stdout.strip().splitlines()[-1]


def unpack(tarball):
    """A fresh copy of a root filesystem tarball, in a directory every user may enter."""
    root = tempfile.mkdtemp(prefix="arca-root-")
    run("tar", "-C", root, "-xf", tarball)
    os.chmod(root, 0o755)  # mkdtemp's is 0700
    return root


def wait_healthy(port, alive, log):
    """Until the arca on `port` answers its health check; `alive()` false or 15 s fail with
    `log()`."""
    deadline = time.monotonic() + 15
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/health/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        assert alive() and time.monotonic() < deadline, log()
        time.sleep(0.1)


def wait_log_lines(read, needle, n):
    """Until the access log `read()` returns holds `n` lines with `needle`: its thread writes
    lines in batches, within about 10 ms of the answer (docs/OPERATIONS.md, "Access log"). 5 s
    fail."""
    deadline = time.monotonic() + 5
    while (text := read()).count(needle) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text.count(needle) == n, text


def fetch_twice(port, origin):
    """An artifact fetched twice through the arca on `port`: the same bytes, one origin request.
    Returns its URL."""
    data = os.urandom(300000)
    url = origin.add("/Image", data=data)
    for _ in range(2):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/v1/fetch/?url=" + url)
        resp = conn.getresponse()
        assert resp.status == 200 and sha256(resp.read()) == sha256(data)
    assert origin.counts["/Image"] == 1
    return url
