"""A lab's jobs pull images with skopeo (containers/image, as podman and CRI-O) through arca set
as the registry's mirror in registries.conf (`location = "cache:PORT/NAME"`, arca's path
namespace), from a real registry (Debian's docker-registry, distribution 2.8) as the upstream
(issue 60, docs/REGISTRY.md, "skopeo, podman"). What skopeo gets is what was pushed, bit for
bit, by tag and by digest, Docker and OCI; a second pull costs the upstream no blob."""

import json
import os

import registry as reg
from registry import (build_image, docker_registry, scripted, skopeo, start_mirror,  # noqa: F401
                      v2)

NAME = "registry.lab"


def conf_for(workdir, arca, name=NAME):
    return reg.registries_conf(os.path.join(workdir, "registries.conf"), name,
                               f"127.0.0.1:{arca.port}/{name}")


def test_skopeo_through_arca_from_docker_registry(start_arca, docker_registry, workdir):
    """skopeo inspect and skopeo copy of a Docker image with a manifest list and of an OCI
    image, by tag and by digest, through arca: the raw manifest is the pushed one byte for
    byte, the digest skopeo reports is the pushed one, and every layer file's sha256 is a
    pushed layer's."""
    docker = build_image(os.path.join(workdir, "docker"), [65536, 300_000, 1_000_000], "v1",
                         index=True)
    docker_registry.push(docker, "library/demo")
    oci = build_image(os.path.join(workdir, "oci"), [200_000, 65536], "v2", oci=True)
    reg.skopeo_push(oci, docker_registry.hostport, "team/app")
    arca = start_mirror(start_arca, {NAME: docker_registry.url})
    conf = conf_for(workdir, arca)

    raw = skopeo("inspect", "--raw", f"docker://{NAME}/library/demo:v1",
                 registries_conf=conf).stdout
    assert raw.encode() == docker.index.data
    # --no-tags: a tag list is asked of the registry's own location, never of a mirror
    doc = json.loads(skopeo("inspect", "--no-tags", f"docker://{NAME}/library/demo:v1",
                            registries_conf=conf).stdout)
    assert sorted(doc["Layers"]) == docker.layer_sha256s()
    cases = [(f"{NAME}/library/demo:v1", docker), (f"{NAME}/library/demo@{docker.index.digest}",
                                                    docker),
             (f"{NAME}/library/demo@{docker.manifest.digest}", docker),
             (f"{NAME}/team/app:v2", oci), (f"{NAME}/team/app@{oci.manifest.digest}", oci)]
    for n, (ref, image) in enumerate(cases):
        out = os.path.join(workdir, f"out{n}")
        skopeo("copy", f"docker://{ref}", f"dir:{out}", registries_conf=conf)
        assert reg.dir_layers(out) == image.layer_sha256s(), ref
        with open(os.path.join(out, "manifest.json"), "rb") as f:
            assert f.read() == image.manifest.data, ref
    # what skopeo got came through arca: arca holds the layers now
    for blob in docker.layers + oci.layers:
        repo = "library/demo" if blob in docker.layers else "team/app"
        a = v2(arca, f"{NAME}/{repo}/blobs/{blob.digest}")
        assert a.status == 200 and reg.digest_of(a.body) == blob.digest


def test_a_second_skopeo_pull_costs_the_upstream_no_blob(start_arca, scripted, workdir):
    """Two skopeo copies of one image by tag, then one by digest, through arca from the
    scripted upstream: each blob GET reaches the upstream once in all, the manifest by tag
    once."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"),
                                               [65536, 500_000, 2_000_000], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    conf = conf_for(workdir, arca)
    for n, ref in enumerate(("library/demo:v1", "library/demo:v1",
                             f"library/demo@{image.manifest.digest}")):
        out = os.path.join(workdir, f"out{n}")
        skopeo("copy", f"docker://{NAME}/{ref}", f"dir:{out}", registries_conf=conf)
        assert reg.dir_layers(out) == image.layer_sha256s()
    for blob in image.blobs():
        assert up.gets(f"/v2/library/demo/blobs/{blob.digest}") == 1, blob.digest
    assert up.gets("/v2/library/demo/manifests/v1") == 1
