"""podman pulls through arca set as the registry's mirror in registries.conf
(CONTAINERS_REGISTRIES_CONF), from a real docker-registry (issue 60, docs/REGISTRY.md, "podman"):
the image podman stores has the pushed manifest's digest and the pushed layers. podman runs
here as root with its own store (vfs) under the scenario's directory; where it cannot run, the
scenario is skipped saying why (the other registry scenarios never are)."""

import os

import pytest

import registry as reg
from registry import build_image, docker_registry, start_mirror  # noqa: F401

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
