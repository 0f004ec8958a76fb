"""An upstream that lies (issue 60, docs/REGISTRY.md, "Digests"; docs/SECURITY.md): a blob whose
bytes are not its digest, a manifest fetched by digest whose bytes are another's, a tag's
manifest whose Docker-Content-Digest disagrees with its body. arca never serves one whole (a
client gets an error or a body cut short: never all of a body that does not hash to what was
asked) and never keeps it (the next request asks the upstream again, and gets the truth once
the upstream tells it)."""

import os

import registry as reg
from registry import build_image, digest_of, scripted, start_mirror, v2  # noqa: F401

NAME = "registry.lab"


def assert_not_served_whole(a, digest):
    """An error, or a body cut short: never one the client takes as whole. A cut one may even
    hash to `digest` (the lie is the true bytes and one more, the one held back): its framing
    tells the client it is not whole, and it is not kept (the caller counts the asks)."""
    assert not (a.status == 200 and a.complete), \
        (a.status, a.complete, len(a.body), digest_of(a.body) == digest)


def test_a_blob_that_is_not_its_digest(start_arca, scripted, workdir):
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"),
                                               [65536, 1_500_000], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    for layer in image.layers:  # a small one (maybe held whole) and a large one (streamed)
        up.lie_blob(layer.digest)
        path = f"/v2/library/demo/blobs/{layer.digest}"
        for n in (1, 2):
            a = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
            assert_not_served_whole(a, layer.digest)
            assert up.gets(path) == n, (layer.size, up.gets(path))  # never kept
        up.lying_blobs.clear()
        a = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
        assert a.status == 200 and a.complete and digest_of(a.body) == layer.digest
        assert up.gets(path) == 3


def test_a_manifest_by_digest_that_is_not_its_digest(start_arca, scripted, workdir):
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    digest = image.manifest.digest
    up.lie_manifest("library/demo", digest)
    path = f"/v2/library/demo/manifests/{digest}"
    for n in (1, 2):
        a = v2(arca, f"{NAME}/library/demo/manifests/{digest}", headers=reg.manifest_headers())
        assert_not_served_whole(a, digest)
        assert up.gets(path) == n
    up.lying_manifests.clear()
    a = v2(arca, f"{NAME}/library/demo/manifests/{digest}", headers=reg.manifest_headers())
    assert a.status == 200 and a.body == image.manifest.data
    assert a.headers["docker-content-digest"] == digest


def test_a_tag_whose_digest_header_disagrees_with_its_body(start_arca, scripted, workdir):
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    up.lie_digest_header("library/demo", "v1")
    tag = "/v2/library/demo/manifests/v1"
    for n in (1, 2):
        a = v2(arca, f"{NAME}/library/demo/manifests/v1", headers=reg.manifest_headers())
        assert not (a.status == 200 and a.complete), (a.status, a.headers)
        assert up.gets(tag) == n
    up.lying_headers.clear()
    a = v2(arca, f"{NAME}/library/demo/manifests/v1", headers=reg.manifest_headers())
    assert a.status == 200 and a.body == image.manifest.data
    assert a.headers["docker-content-digest"] == image.manifest.digest
