"""dockerd pulls through arca set as its `registry-mirrors` (daemon.json; here its
--registry-mirror), as LAVA's docker device and most CI runners pull (issue 60, docs/REGISTRY.md,
"dockerd"). dockerd's mirrors serve Docker Hub's images only, so arca mirrors the name
`docker.io`, here from a real docker-registry on loopback: a one-component name (`hello`) is
Docker Hub's `library/hello`. dockerd runs as the scenario's own daemon (root; its data, exec
root, pidfile and socket under the scenario's directory; no bridge, no iptables, vfs storage;
its managed containerd under its exec root), one for the file, stopped by its PID, leaving no
process and no mount. Its proxy variables name a port where nothing listens, so that the
fallback to Docker Hub dockerd makes when the mirror fails never leaves the machine."""

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import conftest
import registry as reg
from conftest import Arca, stop_all, wait_for
from registry import assert_registry_error

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client: /usr/local/bin/docker may be another one
HUB = "docker.io"
NOWHERE = "http://127.0.0.1:1"  # a proxy nothing listens on: Docker Hub is never reached


class Dockerd:
    """A dockerd of its own under `dir`, its mirror `mirror`; docker(*args) runs the client on
    its socket."""

    def __init__(self, dir, mirror):
        self.dir = dir
        os.makedirs(dir)
        self.sock = os.path.join(dir, "docker.sock")
        self.log_path = os.path.join(dir, "dockerd.log")
        config = os.path.join(dir, "daemon.json")  # not the machine's /etc/docker/daemon.json
        with open(config, "w") as f:
            json.dump({"registry-mirrors": [mirror]}, f)
        env = {**os.environ, "HTTP_PROXY": NOWHERE, "HTTPS_PROXY": NOWHERE,
               "NO_PROXY": "127.0.0.1"}
        self.client_env = {**os.environ, "DOCKER_CONFIG": os.path.join(dir, "client"),
                           "DOCKER_HOST": f"unix://{self.sock}"}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [DOCKERD, "--config-file", config, "--data-root", os.path.join(dir, "data"),
             "--exec-root", os.path.join(dir, "exec"), "--pidfile", os.path.join(dir, "pid"),
             "-H", f"unix://{self.sock}", "--bridge=none", "--iptables=false",
             "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
             "--userland-proxy=false", "--storage-driver=vfs", "--log-level=debug"],
            stdout=log, stderr=log, env=env, start_new_session=True)
        log.close()

        def up():
            assert self.proc.poll() is None, \
                f"dockerd exited {self.proc.returncode}: {self.log()[-1500:]}"
            return self.docker("version", check=False).returncode == 0
        try:
            wait_for(up, "dockerd answering on its socket", 30, 0.05)
        except BaseException:
            self.stop()
            raise

    def docker(self, *args, check=True):
        p = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120,
                           env=self.client_env)
        assert not check or p.returncode == 0, (args, p.stdout[-1000:], p.stderr[-1500:])
        return p

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM by its PID (dockerd stops its containerd); then no process of it (dockerd,
        containerd, a shim) and no mount under its directory may remain."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"dockerd did not stop within 30 s: {self.log()[-1500:]}")
        wait_for(lambda: not processes_under(self.dir), "dockerd's containerd gone", 20)
        assert not mounts_under(self.dir), mounts_under(self.dir)


def processes_under(dir):
    """The command lines of the processes of dockerd's (dockerd, containerd, its shims, the
    docker-proxy) naming `dir`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if os.path.basename(argv[0]).startswith(("dockerd", "containerd", "docker-")) and \
                any(dir in a for a in argv):
            found.append(f"{pid}: {' '.join(argv)}")
    return found


def mounts_under(dir):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if dir in line]


def require_dockerd():
    """Fails (nothing is skipped silently) where Debian's docker.io is not installed; skips,
    saying why, where the suite does not run as root (dockerd runs as root only)."""
    if not (os.path.exists(DOCKERD) and os.path.exists(DOCKER)):
        pytest.fail("dockerd (Debian's docker.io) is needed: run scripts/deps test")
    if os.geteuid() != 0:
        pytest.skip("dockerd runs here as root only")


class Lab:
    """The upstream (docker-registry, its requests logged) holding library/hello:1.0 and
    lab/tool:2, arca mirroring it as docker.io, and dockerd with arca as its mirror."""

    def __init__(self, dir):
        self.dir = dir
        self.upstream = self.arca = self.dockerd = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        self.upstream = reg.DockerRegistry(access_log=True)
        self.images = {}
        for repo, tag, layers in (("library/hello", "1.0", [65536]),
                                  ("lab/tool", "2", [65536, 200_000])):
            image = reg.build_image(os.path.join(self.dir, repo.replace("/", "-")), layers,
                                    tag)
            self.upstream.push(image, repo)
            self.images[repo] = image
        self.access_log = os.path.join(self.dir, "access.log")
        self.arca = Arca(self.dir, ["--upstream-allow", "127.0.0.0/8", "--access-log",
                                    self.access_log,
                                    *reg.mirror_args({HUB: self.upstream.url})],
                         os.path.join(self.dir, "arca-data"))
        self.arca.start()
        self.dockerd = Dockerd(os.path.join(self.dir, "dockerd"),
                               f"http://127.0.0.1:{self.arca.port}")

    def counters(self):
        return next(r for r in self.arca.status()["registries"] if r["name"] == HUB)

    def access_lines(self):
        with open(self.access_log) as f:
            return [line for line in f if "/v2/" in line]

    def stop(self):
        try:
            if self.dockerd:
                self.dockerd.stop()
        finally:
            if self.upstream:
                self.upstream.stop()
            stop_all([a for a in (self.arca,) if a])


@pytest.fixture(scope="module")
def lab_once():
    require_dockerd()
    dir = tempfile.mkdtemp(prefix="arca-dockerd-")
    lab = None
    try:
        lab = Lab(dir)
        yield lab
    finally:
        try:
            if lab:
                lab.stop()
        finally:
            shutil.rmtree(dir, ignore_errors=True)


@pytest.fixture
def lab(lab_once):
    conftest._this_test.append(lab_once.arca)  # a failure shows arca's log's tail
    return lab_once


def pulled(lab, name, image):
    """`docker pull NAME`, then what dockerd keeps of it: its RootFS layers are the pushed
    layers' diff_ids, its repo digest the pushed manifest's."""
    lab.dockerd.docker("pull", name)
    inspect = json.loads(lab.dockerd.docker("image", "inspect", name).stdout)[0]
    assert inspect["RootFS"]["Layers"] == image.diff_ids, inspect["RootFS"]
    assert any(d.endswith("@" + image.manifest.digest) for d in inspect["RepoDigests"]), \
        inspect["RepoDigests"]
    assert inspect["Id"] == image.config.digest
    return inspect


def asked_once(lab, blobs):
    """Each blob and each tag GET once at the upstream (it logs a request once it has
    answered), no manifest by its digest: arca answers that from the tag's bytes."""
    for path in [f"/v2/{repo}/blobs/{blob.digest}" for repo, blob in blobs] + \
            [f"/v2/{repo}/manifests/{image.tag}" for repo, image in lab.images.items()]:
        wait_for(lambda: lab.upstream.gets(path) >= 1, f"{path} asked upstream")
        assert lab.upstream.gets(path) == 1, path
    for repo, image in lab.images.items():
        assert lab.upstream.gets(f"/v2/{repo}/manifests/{image.manifest.digest}") == 0, repo


def blob_lines(lab, blobs, times):
    """The access log's /v2/ lines once each blob's GET is in it `times` times (it is written
    in batches, about 10 ms after each line)."""
    def complete():
        lines = lab.access_lines()
        return all(sum(f"/blobs/{b.digest} " in x for x in lines) == times
                   for _, b in blobs) and lines
    return wait_for(complete, f"each blob's GET {times} time(s) in the access log")


def of_images(lines):
    """The access log's lines of requests for hello and lab/tool."""
    return [x for x in lines if " /v2/library/hello/" in x or " /v2/lab/tool/" in x]


def test_dockerd_pulls_docker_hub_images_through_arca(lab):
    """`docker pull hello:1.0` (Docker Hub's library/hello: dockerd asks a mirror for
    library/hello itself) and `docker pull lab/tool:2` through arca: dockerd keeps the pushed
    layers; the upstream gave each blob once; arca counts the pulls. Removed and pulled again:
    all from arca's store, the upstream asked nothing more."""
    hello, tool = lab.images["library/hello"], lab.images["lab/tool"]
    blobs = [("library/hello", b) for b in hello.blobs()] + \
            [("lab/tool", b) for b in tool.blobs()]
    before = lab.counters()
    pulled(lab, "hello:1.0", hello)
    pulled(lab, "lab/tool:2", tool)
    asked_once(lab, blobs)
    first = blob_lines(lab, blobs, 1)
    after = lab.counters()
    # per image: the tag's HEAD, the manifest's GET by its digest (a hit: the tag brought
    # it), each blob's GET; an image pull each (the manifest's GET, not the HEAD)
    delta = {k: after[k] - before[k] for k in ("pulls", "blobs", "requests", "hits")}
    assert delta == {"pulls": 2, "blobs": len(blobs), "requests": 2 * 2 + len(blobs),
                     "hits": 2}, (before, after)
    v2 = of_images(first)
    assert len(v2) == 2 * 2 + len(blobs), v2
    assert all('" 200 ' in x for x in v2), v2
    assert all(("MISS:origin" in x) != ("/manifests/sha256:" in x) for x in v2), v2

    lab.dockerd.docker("rmi", "hello:1.0", "lab/tool:2")
    assert lab.dockerd.docker("images", "-q").stdout.strip() == ""
    pulled(lab, "hello:1.0", hello)
    pulled(lab, "lab/tool:2", tool)
    again_lines = blob_lines(lab, blobs, 2)[len(first):]
    again = lab.counters()
    # dockerd skips the manifest's GET when its containerd has not yet collected the copy
    # it kept: 0 to 2 manifests (as many image pulls), the HEADs and blobs always, everything
    # a hit
    requests = again["requests"] - after["requests"]
    assert requests == 2 + len(blobs) + again["pulls"] - after["pulls"], (after, again)
    assert again["blobs"] - after["blobs"] == len(blobs), (after, again)
    assert again["hits"] - after["hits"] == requests, (after, again)
    v2 = of_images(again_lines)
    assert all('" 200 ' in x and " HIT " in x for x in v2), v2
    asked_once(lab, blobs)


def test_dockerd_when_arca_refuses(lab):
    """An image the upstream lacks: arca answers MANIFEST_UNKNOWN; dockerd takes any error of
    a mirror as a reason to try Docker Hub itself (here a proxy that refuses: nothing leaves
    the machine), and the pull fails with the hub's error, arca's only in dockerd's log.
    Nothing is kept."""
    missing = "/v2/library/nothere/manifests/1"
    # a one-component name is Docker Hub's library/ one: arca asks library/nothere
    assert_registry_error(reg.v2(lab.arca, "nothere/manifests/1"), 404, "MANIFEST_UNKNOWN")
    wait_for(lambda: lab.upstream.gets(missing) == 1, "library/nothere asked upstream")
    p = lab.dockerd.docker("pull", "nothere:1", check=False)
    assert p.returncode != 0, p.stdout
    assert 'Get "https://registry-1.docker.io/v2/"' in p.stderr, p.stderr
    log = lab.dockerd.log()
    mirror = f"Trying to pull nothere from http://127.0.0.1:{lab.arca.port}/ v2"
    refused = "Attempting next endpoint for pull after error: manifest unknown: " \
              "upstream answered 404"
    hub = "Trying to pull nothere from https://registry-1.docker.io v2"
    assert mirror in log and refused in log and hub in log, log[-3000:]
    assert log.index(mirror) < log.index(refused) < log.index(hub)
    assert lab.dockerd.docker("images", "-q", "nothere").stdout.strip() == ""
    # dockerd names Docker Hub's library/ itself; its HEAD then its GET, each a 404
    lines = wait_for(lambda: len(x := [y for y in lab.access_lines()
                                       if "/v2/library/nothere/" in y]) == 2 and x,
                     "dockerd's requests in the access log")
    # (the access log is in the order requests end: two connections' may swap)
    assert sorted(x.split('"')[1].split()[0] for x in lines) == ["GET", "HEAD"], lines
    assert all('" 404 ' in x for x in lines), lines
    # a 404 is not kept: the upstream was asked again for each
    wait_for(lambda: lab.upstream.gets(missing) == 3, "dockerd's asks of library/nothere")
