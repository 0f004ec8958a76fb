"""podman pulls through arca set as the registry's mirror in registries.conf
(CONTAINERS_REGISTRIES_CONF), from a real docker-registry (issue 60, docs/REGISTRY.md, "podman"):
the image podman stores has the pushed manifest's digest and the pushed layers. podman runs
here as root with its own store (vfs) under the scenario's directory; where it cannot run, the
scenario is skipped saying why (the other registry scenarios never are)."""

import os

import pytest

import registry as reg
from registry import build_image, docker_registry, scripted, start_mirror  # noqa: F401

NAME = "registry.lab"


def test_podman_pulls_through_arca(start_arca, docker_registry, workdir):
    why = reg.podman_works(workdir)
    if why:
        pytest.skip(why)
    image = build_image(os.path.join(workdir, "img"), [65536, 400_000], "v1", index=True)
    docker_registry.push(image, "library/demo")
    arca = start_mirror(start_arca, {NAME: docker_registry.url})
    conf = reg.registries_conf(os.path.join(workdir, "registries.conf"), NAME,
                               f"127.0.0.1:{arca.port}/{NAME}")
    p, inspect = reg.podman_pull(workdir, f"{NAME}/library/demo:v1", conf)
    assert p.returncode == 0, p.stderr[-1500:]
    assert inspect["Digest"] == image.index.digest or \
        inspect["Digest"] == image.manifest.digest, inspect["Digest"]
    assert inspect["RootFS"]["Layers"] == image.diff_ids
    # by digest too, once more through arca
    p, inspect = reg.podman_pull(workdir, f"{NAME}/library/demo@{image.manifest.digest}", conf)
    assert p.returncode == 0, p.stderr[-1500:]
    assert inspect["RootFS"]["Layers"] == image.diff_ids


def test_podman_pulls_images_sharing_a_base_through_an_outage_and_a_429(start_arca, scripted,
                                                                       workdir):
    """Two images built FROM one base on a registry with a token realm, pulled by podman
    through arca; then, the registry down, and then answering 429 to everything, podman pulls
    both again into a fresh store each time: whole, the shared base from arca's store, no blob
    asked upstream."""
    why = reg.podman_works(workdir)
    if why:
        pytest.skip(why)
    up = scripted(auth="token")
    base = os.urandom(250_000)
    images = {repo: up.add(repo, build_image(os.path.join(workdir, repo.replace("/", "-")),
                                             [base, os.urandom(60_000)], "v1"))
              for repo in ("team/app", "team/tool")}
    arca = start_mirror(start_arca, {NAME: up.url})
    conf = reg.registries_conf(os.path.join(workdir, "registries.conf"), NAME,
                               f"127.0.0.1:{arca.port}/{NAME}")
    blobs = lambda: [r for r in up.requests() if "/blobs/" in r.path]  # noqa: E731
    for turn in ("warm", "down", "throttled"):
        if turn == "down":
            up.go_down()
        if turn == "throttled":
            up.come_up()
            up.throttled = True
        before = len(blobs())
        for n, (repo, image) in enumerate(images.items()):
            store = os.path.join(workdir, f"{turn[0]}{n}")  # podman's runroot: 50 bytes at most
            p, inspect = reg.podman_pull(store, f"{NAME}/{repo}:v1", conf)
            assert p.returncode == 0, (turn, repo, p.stderr[-1500:])
            assert inspect["RootFS"]["Layers"] == image.diff_ids, (turn, repo)
        if turn != "warm":
            assert len(blobs()) == before, (turn, blobs()[before:])
