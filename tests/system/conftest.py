"""What the system scenarios share: the Debian package, built once per run (scripts/package),
and the Debian 12 minbase root it installs into, made once by debootstrap with the package's
Depends and Recommends and kept as a tarball in ~/.cache/arca-tests/ (scripts/container uses
the same tarball: same names, same key). Making the root needs Debian's mirror, like
scripts/deps."""

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                     "arca-tests")
MIRROR = "http://deb.debian.org/debian"

# the scenarios' origin and helpers (tests/integration/conftest.py, loaded under its own name)
_spec = importlib.util.spec_from_file_location(
    "arca_integration_conftest", os.path.join(ROOT, "tests", "integration", "conftest.py"))
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
Origin, free_port, sha256 = _integration.Origin, _integration.free_port, _integration.sha256


def run(*argv, **kw):
    """argv's result; a failure says the command and its standard error."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def deb():
    out = tempfile.mkdtemp(prefix="arca-deb-")
    path = run(os.path.join(ROOT, "scripts", "package"), out).stdout.strip().splitlines()[-1]
    yield path
    shutil.rmtree(out, ignore_errors=True)


def dependencies(deb):
    """The package names of the .deb's Depends and Recommends (what apt installs with it),
    alternatives and versions left out."""
    names = set()
    for field in ("Depends", "Recommends"):
        for d in run("dpkg-deb", "-f", deb, field).stdout.split(","):
            if d.strip():
                names.add(re.split(r"[ (|]", d.strip())[0])
    return sorted(names)


def minbase_tarball(deb):
    """The cached Debian 12 minbase root with the package's dependencies, made if missing."""
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
    return tarball


def unpack(tarball):
    """A fresh copy of a root filesystem tarball, in a directory every user may enter."""
    root = tempfile.mkdtemp(prefix="arca-root-")
    run("tar", "-C", root, "-xf", tarball)
    os.chmod(root, 0o755)  # mkdtemp's is 0700
    return root
