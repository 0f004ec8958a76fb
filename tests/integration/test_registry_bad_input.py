"""What a registry mirror refuses (issue 60, docs/REGISTRY.md, "Bad input"; docs/SECURITY.md):
pushes (405 UNSUPPORTED: arca mirrors, it is no registry to push to), names outside the
distribution grammar (400 NAME_INVALID: `..`, `%2e`, upper case, empty components), digests
that are malformed or of an algorithm arca does not know (400 DIGEST_INVALID), a registry not
configured (404 NAME_UNKNOWN); each the registry's JSON error, and nothing asked upstream."""

import os

import pytest

import registry as reg
from registry import (assert_registry_error, build_image, scripted, start_mirror,  # noqa: F401
                      v2)

NAME = "registry.lab"
HEX = "a" * 64


@pytest.fixture
def mirror(start_arca, scripted, workdir):
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url}, default=NAME)
    return arca, up, image


def test_pushes_are_405_unsupported(mirror):
    arca, up, image = mirror
    paths = ["/v2/", f"/v2/{NAME}/library/demo/blobs/uploads/",
             f"/v2/{NAME}/library/demo/blobs/uploads/some-uuid",
             f"/v2/{NAME}/library/demo/manifests/v1",
             f"/v2/{NAME}/library/demo/blobs/{image.layers[0].digest}",
             "/v2/library/demo/manifests/v1", f"/v2/library/demo/blobs/uploads/?ns={NAME}"]
    for path in paths:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            a = reg.request(arca.host, arca.port, method, path, body=b"{}",
                            headers={"Content-Type": reg.DOCKER_MANIFEST})
            assert_registry_error(a, 405, "UNSUPPORTED")
            assert "GET" in a.headers.get("allow", ""), (method, path, a.headers)
    assert up.total() == 0


@pytest.mark.parametrize("repo", [
    "library/../etc", "library/%2e%2e/etc", "library/%2E%2E/etc", "library/./demo",
    "Library/Demo", "library/DEMO", "library//demo", "/library/demo", "library/demo/",
    "-library/demo", "library/demo_", "library/de%2fmo", "library/de%00mo", "library/de%20mo",
    "library/" + "a" * 256,
])
def test_names_outside_the_grammar_are_400_name_invalid(mirror, repo):
    arca, up, image = mirror
    for kind, ref in (("manifests", "v1"), ("blobs", image.layers[0].digest),
                      ("tags", "list")):
        for target in (f"{NAME}/{repo}/{kind}/{ref}", f"{repo}/{kind}/{ref}"):
            a = reg.request(arca.host, arca.port, "GET", "/v2/" + target)
            assert_registry_error(a, 400, "NAME_INVALID")
        a = v2(arca, f"{repo}/{kind}/{ref}", ns=NAME)
        assert_registry_error(a, 400, "NAME_INVALID")
    assert up.total() == 0


@pytest.mark.parametrize("digest", [
    "sha256:" + HEX[:63], "sha256:" + HEX + "a", "sha256:" + "A" * 64, "sha256:" + "g" * 64,
    "sha256:", "sha256", "md5:" + "a" * 32, "sha1:" + "a" * 40, "SHA256:" + HEX,
    ":" + HEX, "sha256:%2e%2e",
])
def test_bad_digests_are_400_digest_invalid(mirror, digest):
    arca, up, image = mirror
    targets = [f"{NAME}/library/demo/blobs/{digest}"]
    if ":" in digest:  # without one it is a tag's name as a manifest's reference
        targets.append(f"{NAME}/library/demo/manifests/{digest}")
    for target in targets:
        assert_registry_error(v2(arca, target), 400, "DIGEST_INVALID")
    assert_registry_error(v2(arca, f"library/demo/blobs/{digest}", ns=NAME), 400,
                          "DIGEST_INVALID")
    assert up.total() == 0


def test_a_tag_outside_the_grammar_is_400_tag_invalid(mirror):
    arca, up, image = mirror
    for tag in ("a" * 129, ".hidden", "-v1", "v%2F1"):
        assert_registry_error(v2(arca, f"{NAME}/library/demo/manifests/{tag}"), 400,
                              "TAG_INVALID")
    assert up.total() == 0


def test_a_registry_not_configured_is_404_name_unknown(mirror):
    """A first path component with a dot or a port is a registry's name (as docker names
    images): one not configured is NAME_UNKNOWN, never a repository of the default registry;
    ?ns= naming one not configured too."""
    arca, up, image = mirror
    for target in ("other.lab/library/demo/manifests/v1", "quay.io/library/demo/manifests/v1",
                   "localhost:5000/library/demo/manifests/v1",
                   f"other.lab/library/demo/blobs/{image.layers[0].digest}",
                   "other.lab/library/demo/tags/list"):
        assert_registry_error(v2(arca, target), 404, "NAME_UNKNOWN")
    for ns in ("other.lab", "quay.io", "localhost:5000"):
        assert_registry_error(v2(arca, "library/demo/manifests/v1", ns=ns), 404, "NAME_UNKNOWN")
    assert up.total() == 0


def test_a_manifest_over_4_mib_is_refused(start_arca, scripted, workdir):
    """An upstream's "manifest" of 5 MiB: the client gets a 4xx JSON error, not the bytes,
    and arca does not keep it (a second request asks again)."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    huge = image.manifest.data[:-1] + b" " * (5 << 20) + b"}"
    big = reg.Blob(reg.digest_of(huge), huge, reg.DOCKER_MANIFEST)
    up.repos["library/demo"]["manifests"]["big"] = big
    arca = start_mirror(start_arca, {NAME: up.url})
    for _ in range(2):
        a = v2(arca, f"{NAME}/library/demo/manifests/big", headers=reg.manifest_headers())
        assert 400 <= a.status < 500 and a.error_codes(), (a.status, a.body[:200])
        assert len(a.body) < 4 << 20
    # by digest it is refused too
    a = v2(arca, f"{NAME}/library/demo/manifests/{big.digest}", headers=reg.manifest_headers())
    assert 400 <= a.status < 500 and a.error_codes(), (a.status, a.body[:200])


def test_a_path_that_is_no_registry_path_names_the_three_that_are(mirror):
    """/v2/_catalog (which a mirror does not serve) and other paths outside the pull API: the
    refusal names the paths the API has, the tag list among them."""
    arca, up, _ = mirror
    for path in ("_catalog", f"{NAME}/library/demo/other/v1"):
        a = v2(arca, path)
        assert_registry_error(a, 400, "NAME_INVALID")
        said = a.headers.get("arca-error", "")
        for part in ("/manifests/", "/blobs/", "/tags/list"):
            assert part in said, said
    assert up.total() == 0
