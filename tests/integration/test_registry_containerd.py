"""A lab's nodes pull images with containerd (its `ctr`, as k3s and kubelet's CRI do) through
arca set as the registry's mirror in hosts.toml (`[host."http://cache:PORT"]`, the pull and
resolve capabilities: containerd adds `?ns=NAME` to each request, which names the registry),
with the registry's own `server` unreachable, so that nothing comes around arca (issue 60,
docs/REGISTRY.md, "containerd, k3s"). containerd runs as the scenario's own daemon (its root,
state and socket under the scenario's directory), stopped by its PID. What containerd keeps is
what the upstream holds, by digest; a second pull costs the upstream no blob."""

import os
import shutil
import signal
import subprocess

import pytest

from conftest import wait_for
from registry import build_image, scripted, start_mirror  # noqa: F401

NAME = "registry.lab"
CONTAINERD = shutil.which("containerd") or "/usr/bin/containerd"
CTR = shutil.which("ctr") or "/usr/bin/ctr"


def containerd_cannot_run():
    """None when a containerd of our own can run here; else why not, for a skip."""
    if not (os.path.exists(CONTAINERD) and os.path.exists(CTR)):
        return "containerd is not installed (scripts/deps test installs it)"
    if os.geteuid() != 0:
        return "containerd runs here as root only"
    return None


@pytest.fixture
def containerd(workdir):
    """A containerd of the scenario's own: its root, state and sockets under workdir (the CRI
    plugin off: no kubelet here); yields its socket's path; stopped by its PID."""
    why = containerd_cannot_run()
    if why:
        pytest.skip(why)
    base = os.path.join(workdir, "containerd")
    os.makedirs(base)
    sock = os.path.join(base, "c.sock")
    config = os.path.join(base, "config.toml")
    with open(config, "w") as f:
        f.write(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
                f'[debug]\n  address = "{base}/debug.sock"\n')
    log = open(os.path.join(workdir, "containerd.log"), "ab")
    proc = subprocess.Popen([CONTAINERD, "--config", config], stdout=log, stderr=log)
    try:
        def up():
            if proc.poll() is not None:
                pytest.skip(f"containerd cannot run here: it exited {proc.returncode}")
            return subprocess.run([CTR, "--address", sock, "version"], capture_output=True,
                                  timeout=10).returncode == 0
        wait_for(up, "containerd answering on its socket", 30)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def hosts_dir(workdir, arca, name=NAME):
    """containerd's certs.d: NAME/hosts.toml naming arca the mirror, the registry's own server
    a port where nothing listens."""
    d = os.path.join(workdir, "certs.d")
    os.makedirs(os.path.join(d, name), exist_ok=True)
    with open(os.path.join(d, name, "hosts.toml"), "w") as f:
        f.write('server = "https://127.0.0.1:1"\n\n'
                f'[host."http://127.0.0.1:{arca.port}"]\n'
                '  capabilities = ["pull", "resolve"]\n')
    return d


def ctr(sock, *args, timeout=120):
    p = subprocess.run([CTR, "--address", sock, *args], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, (args, p.stdout[-1000:], p.stderr[-2000:])
    return p.stdout


def pull(sock, certs, ref):
    """`ctr images pull` as a node does, unpacked (the native snapshotter: no overlay mount
    needed), which checks each layer's uncompressed bytes against the config's diff_ids."""
    return ctr(sock, "images", "pull", "--snapshotter", "native", "--hosts-dir", certs, ref)


def test_ctr_pulls_through_arca(start_arca, scripted, containerd, workdir):
    """ctr pulls an image with an index (two layers) by tag from a registry with a token realm,
    through arca: containerd asks with ?ns=NAME and never meets a challenge; what it keeps is
    every digest pushed. The image removed and pulled again by its digest: arca answers, the
    upstream gives no blob twice."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"),
                                               [65536, 300_000], "v1", index=True))
    access = os.path.join(workdir, "access.log")
    arca = start_mirror(start_arca, {NAME: up.url}, access_log=access)
    certs = hosts_dir(workdir, arca)
    pull(containerd, certs, f"{NAME}/library/demo:v1")
    assert image.index.digest in ctr(containerd, "images", "ls")
    kept = ctr(containerd, "content", "ls")
    for blob in image.blobs() + image.manifests():
        assert blob.digest in kept, (blob.digest, kept)
    def logged():  # the access log is written in batches, about 10 ms after each line
        with open(access) as f:
            return [line for line in f if "/v2/" in line]

    lines = wait_for(logged, "the pull's lines in the access log")
    assert all(f"?ns={NAME} " in line and '" 200 ' in line for line in lines), lines

    ctr(containerd, "images", "rm", "--sync", f"{NAME}/library/demo:v1")
    assert image.manifest.digest not in ctr(containerd, "content", "ls")
    pull(containerd, certs, f"{NAME}/library/demo@{image.index.digest}")
    assert image.index.digest in ctr(containerd, "images", "ls")
    for blob in image.blobs():
        assert up.blob_gets("library/demo", blob.digest) == 1, blob.digest
    assert up.gets(f"/v2/library/demo/manifests/{image.manifest.digest}") == 1


def test_ctr_pulls_a_lab_registrys_image_through_arca(start_arca, scripted, containerd,
                                                      workdir):
    """A lab's own registry, known to its clients as HOST:PORT (here the scripted upstream's
    127.0.0.1:PORT), mirrored by arca as `lab` (the NAME podman's mirror location needs, no
    port in it): ctr pulls HOST:PORT/team/tool:2 with a hosts.toml in the folder named for
    HOST:PORT, the registry's own server unreachable. containerd asks ?ns=HOST:PORT, which
    names `lab` by its URL; the pulls are counted under `lab`."""
    up = scripted()
    image = up.add("team/tool", build_image(os.path.join(workdir, "i"), [65536, 90_000], "2"))
    authority = up.url.split("://", 1)[1]  # what image references write: 127.0.0.1:PORT
    access = os.path.join(workdir, "access.log")
    arca = start_mirror(start_arca, {"lab": up.url}, access_log=access)
    certs = hosts_dir(workdir, arca, name=authority)
    pull(containerd, certs, f"{authority}/team/tool:2")
    kept = ctr(containerd, "content", "ls")
    for blob in image.blobs() + [image.manifest]:
        assert blob.digest in kept, (blob.digest, kept)

    def logged():  # the access log is written in batches, about 10 ms after each line
        with open(access) as f:
            lines = [line for line in f if "/v2/team/tool/" in line]
        return len(lines) >= 1 + len(image.blobs()) and lines

    lines = wait_for(logged, "the pull's lines in the access log")
    assert all("?ns=127.0.0.1" in line and '" 200 ' in line for line in lines), lines
    lab = wait_for(lambda: (e := [r for r in arca.status()["registries"]
                                  if r["name"] == "lab"][0])["blobs"] >= len(image.blobs()) and e,
                   "the pull counted under lab")
    assert lab["pulls"] == 1 and lab["blobs"] == len(image.blobs()), lab
    for blob in image.blobs():
        assert up.blob_gets("team/tool", blob.digest) == 1, blob.digest


def test_ctr_pulls_images_sharing_a_base_after_the_registry_went_down(start_arca, scripted,
                                                                      containerd, workdir):
    """Two images from one base pulled by ctr through arca, then removed (their content
    pruned); the registry stopped, ctr pulls both again whole: the shared base from arca's
    store for both repositories."""
    up = scripted(auth="token")
    base = os.urandom(250_000)
    images = {repo: up.add(repo, build_image(os.path.join(workdir, repo.replace("/", "-")),
                                             [base, os.urandom(50_000)], "v1"))
              for repo in ("team/app", "team/tool")}
    arca = start_mirror(start_arca, {NAME: up.url})
    certs = hosts_dir(workdir, arca)
    for turn in ("warm", "down"):
        for repo, image in images.items():  # one at a time: each asks arca for the base
            pull(containerd, certs, f"{NAME}/{repo}:v1")
            kept = ctr(containerd, "content", "ls")
            for blob in image.blobs():
                assert blob.digest in kept, (turn, repo, blob.digest)
            ctr(containerd, "images", "rm", "--sync", f"{NAME}/{repo}:v1")
            assert image.layers[0].digest not in ctr(containerd, "content", "ls")
        up.go_down()
