"""A digest is no key to another repository (issue 60, docs/REGISTRY.md, "What is kept";
docs/SECURITY.md): arca stores a blob's bytes once per digest, but serves them for a repository
only once the upstream said that repository has the blob (a HEAD, no second download). A digest
learnt from a public repository does not open a private one the upstream does not give it."""

import os

import registry as reg

from registry import (assert_registry_error, build_image, digest_of, scripted,  # noqa: F401
                      start_mirror, v2)

NAME = "registry.lab"


def test_a_cached_blob_is_served_for_another_repository_only_if_upstream_has_it(
        start_arca, scripted, workdir):
    up = scripted()
    image = build_image(os.path.join(workdir, "i"), [65536, 300_000], "v1")
    up.add("library/public", image)
    up.add("team/private", image)
    for blob in image.blobs():  # the private repository does not hold these (any more)
        up.hide_blob("team/private", blob.digest)
    arca = start_mirror(start_arca, {NAME: up.url})
    for blob in image.blobs():
        a = v2(arca, f"{NAME}/library/public/blobs/{blob.digest}")
        assert a.status == 200 and digest_of(a.body) == blob.digest

    for blob in image.blobs():
        for repo in ("team/private", "team/never-heard-of"):
            for method in ("GET", "HEAD"):
                a = v2(arca, f"{NAME}/{repo}/blobs/{blob.digest}", method)
                if method == "GET":
                    assert_registry_error(a, 404, "BLOB_UNKNOWN")
                assert a.status == 404 and blob.data not in a.body, (repo, method, a.status)
            path = f"/v2/{repo}/blobs/{blob.digest}"
            assert up.count("HEAD", path) + up.gets(path) >= 1, path  # the upstream was asked

    # the private repository gets the blobs upstream: served from the bytes arca holds, the
    # upstream asked with a HEAD, never a second GET of the bytes
    up.hidden.clear()
    for blob in image.blobs():
        a = v2(arca, f"{NAME}/team/private/blobs/{blob.digest}")
        assert a.status == 200 and digest_of(a.body) == blob.digest
        assert a.headers["docker-content-digest"] == blob.digest
        assert up.gets(f"/v2/team/private/blobs/{blob.digest}") == 0, blob.digest
        assert up.heads(f"/v2/team/private/blobs/{blob.digest}") >= 1
        assert up.gets(f"/v2/library/public/blobs/{blob.digest}") == 1


def test_a_manifest_by_digest_after_its_tag_is_the_tag_s_bytes_for_that_repository_only(
        start_arca, scripted, workdir):
    """dockerd and containerd ask a tag with a HEAD, then its manifest by the digest it said:
    arca already holds those bytes (the tag's GET), so the manifest by digest costs the
    upstream nothing more (Docker Hub counts each manifest GET as a pull), and is answered as
    a registry does. Another repository asking the same digest is not answered from them: the
    upstream is asked for that repository (it lacks it: 404)."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    head = v2(arca, f"{NAME}/library/demo/manifests/v1", "HEAD", reg.manifest_headers())
    assert head.status == 200 and head.headers["docker-content-digest"] == image.manifest.digest
    for turn in range(2):
        a = v2(arca, f"{NAME}/library/demo/manifests/{image.manifest.digest}",
               headers=reg.manifest_headers())
        assert a.status == 200 and a.body == image.manifest.data, (turn, a.status, a.body[:200])
        assert a.headers["content-type"] == image.manifest.media_type, a.headers
        assert a.headers["docker-content-digest"] == image.manifest.digest
        assert int(a.headers["content-length"]) == image.manifest.size
    assert up.gets("/v2/library/demo/manifests/v1") == 1
    assert up.gets(f"/v2/library/demo/manifests/{image.manifest.digest}") == 0

    a = v2(arca, f"{NAME}/team/other/manifests/{image.manifest.digest}",
           headers=reg.manifest_headers())
    assert_registry_error(a, 404, "MANIFEST_UNKNOWN")
    assert up.gets(f"/v2/team/other/manifests/{image.manifest.digest}") == 1
