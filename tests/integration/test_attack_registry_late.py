"""An outside attacker of the registry mirror's late changes (issue 60, docs/SECURITY.md's
registry section): a manifest by digest answered from a tag's bytes of the same repository."""

import os

import registry as reg

from registry import (assert_registry_error, build_image, scripted,  # noqa: F401
                      start_mirror, v2)

NAME = "registry.lab"


def test_a_repository_named_a_manifests_x_is_no_twin_of_repository_a(
        start_arca, scripted, workdir):
    """`manifests` is a valid path component, so repository `team/manifests/x`'s tag URL
    (`/v2/team/manifests/x/manifests/v1`) starts with repository `team`'s manifests/ prefix.
    A client asking `team`'s manifest by that digest must not get `team/manifests/x`'s bytes
    unasked: the upstream says `team` lacks it (404)."""
    up = scripted()
    image = up.add("team/manifests/x", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    up.add("team/real", build_image(os.path.join(workdir, "j"), [4096], "v2"))
    arca = start_mirror(start_arca, {NAME: up.url})
    a = v2(arca, f"{NAME}/team/manifests/x/manifests/v1", headers=reg.manifest_headers())
    assert a.status == 200 and a.body == image.manifest.data, (a.status, a.body[:200])

    a = v2(arca, f"{NAME}/team/manifests/{image.manifest.digest}",
           headers=reg.manifest_headers())
    assert image.manifest.data not in a.body, a.status
    assert_registry_error(a, 404, "MANIFEST_UNKNOWN")
    assert up.gets(f"/v2/team/manifests/{image.manifest.digest}") == 1
