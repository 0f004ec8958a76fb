"""A layer a repository's manifest lists is that repository's (issue 68, docs/REGISTRY.md,
"Digests"): a manifest arca fetched for repository R, its bytes checked, proves R has every
blob it lists, so those blobs answer for R from the store without asking the upstream, down,
throttled or refusing, across a restart. A blob R's manifests do not list still needs the
upstream's word for R, asked once and remembered."""

import os
import re

import registry as reg

from registry import (Puller, assert_registry_error, build_image, digest_of,  # noqa: F401
                      docker_registry, scripted, start_mirror, v2)
from conftest import wait_for
from registry import write_config, write_secret

NAME = "registry.lab"


def five_images(up, workdir):
    """Five repositories whose images share two base layers (as most images built FROM one
    base do), each with a layer and a config of its own."""
    base, mid = os.urandom(200_000), os.urandom(70_000)
    images = {}
    for i in range(5):
        repo = f"team/app{i}"
        images[repo] = up.add(repo, build_image(os.path.join(workdir, f"i{i}"),
                                                [base, mid, os.urandom(30_000 + i)], "v1"))
    return images


def pull_all(arca, images, turns=1):
    for _ in range(turns):
        for repo, image in images.items():
            got, _ = Puller(arca.base, prefix=NAME).pull(repo, "v1")
            assert sorted(got) == sorted(b.digest for b in image.blobs()), repo


def blob_requests(up):
    return [r for r in up.requests() if "/blobs/" in r.path]


def test_shared_layers_pull_whole_through_an_outage_and_a_rate_limit(start_arca, scripted,
                                                                     workdir):
    up = scripted(auth="token")
    images = five_images(up, workdir)
    data = os.path.join(workdir, "data")
    arca = start_mirror(start_arca, {NAME: up.url}, data_dir=data)
    pull_all(arca, images)
    shared = images["team/app0"].layers[:2]
    for repo in list(images)[1:]:  # the first repository brought the shared layers
        for blob in shared:
            path = f"/v2/{repo}/blobs/{blob.digest}"
            assert up.gets(path) == 0 and up.heads(path) == 0, (path, "its manifest lists it")

    up.go_down()
    pull_all(arca, images, turns=2)  # ten pulls, every one whole, the upstream away

    up.come_up()
    up.throttled = True
    before = len(blob_requests(up))
    pull_all(arca, images, turns=2)  # ten more under a 429 to everything
    assert len(blob_requests(up)) == before, blob_requests(up)[before:]

    # the links outlive a restart (the upstream still throttling)
    arca.stop()
    arca = start_mirror(start_arca, {NAME: up.url}, data_dir=data)
    for repo, image in images.items():
        for blob in image.blobs():
            a = v2(arca, f"{NAME}/{repo}/blobs/{blob.digest}")
            assert a.status == 200 and digest_of(a.body) == blob.digest, (repo, a.status)
    assert len(blob_requests(up)) == before


def test_a_blob_no_manifest_lists_is_confirmed_once_then_remembered(start_arca, scripted,
                                                                    workdir):
    up = scripted()
    image = build_image(os.path.join(workdir, "i"), [65536], "v1")
    up.add("library/public", image)
    up.add("team/other", image)
    arca = start_mirror(start_arca, {NAME: up.url})
    blob = image.layers[0]
    a = v2(arca, f"{NAME}/library/public/blobs/{blob.digest}")
    assert a.status == 200
    path = f"/v2/team/other/blobs/{blob.digest}"
    for turn in range(3):  # asked by digest alone: no manifest of team/other was seen
        a = v2(arca, f"{NAME}/team/other/blobs/{blob.digest}")
        assert a.status == 200 and digest_of(a.body) == blob.digest, turn
    assert up.heads(path) == 1 and up.gets(path) == 0, (up.heads(path), up.gets(path))
    up.go_down()
    a = v2(arca, f"{NAME}/team/other/blobs/{blob.digest}")
    assert a.status == 200 and digest_of(a.body) == blob.digest
    # a third repository was never confirmed: refused while the upstream is away
    a = v2(arca, f"{NAME}/team/third/blobs/{blob.digest}")
    assert a.status >= 500 and blob.data not in a.body, a.status


def test_a_manifest_lists_blobs_for_its_own_repository_only(start_arca, scripted, workdir):
    """A manifest of team/a listing a layer opens it to team/a, never to team/b, whose own
    manifests do not list it and whose upstream lacks it."""
    up = scripted()
    image = build_image(os.path.join(workdir, "i"), [65536, 40_000], "v1")
    up.add("team/a", image)
    arca = start_mirror(start_arca, {NAME: up.url})
    Puller(arca.base, prefix=NAME).pull("team/a", "v1")
    for blob in image.blobs():
        a = v2(arca, f"{NAME}/team/b/blobs/{blob.digest}")
        assert_registry_error(a, 404, "BLOB_UNKNOWN")
        assert blob.data not in a.body
        assert up.heads(f"/v2/team/b/blobs/{blob.digest}") == 1
    up.go_down()
    for blob in image.blobs():
        a = v2(arca, f"{NAME}/team/b/blobs/{blob.digest}")
        assert a.status != 200 and blob.data not in a.body, a.status


def test_a_manifest_by_digest_a_tag_brought_answers_while_the_upstream_is_down(
        start_arca, scripted, workdir):
    """dockerd's pull: HEAD of the tag, then the manifest by the digest it said. The tag's GET
    brought those bytes: with the upstream gone meanwhile, the digest answers from them."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1",
                                               index=True))
    arca = start_mirror(start_arca, {NAME: up.url}, "--registry-tag-ttl", "1s")
    head = v2(arca, f"{NAME}/library/demo/manifests/v1", "HEAD", reg.manifest_headers())
    assert head.status == 200 and head.headers["docker-content-digest"] == image.top.digest
    child = Puller(arca.base, prefix=NAME).get("library/demo", "manifests",
                                               image.manifest.digest,
                                               headers=reg.manifest_headers())
    assert child.status == 200
    up.go_down()
    # the tag's copy expires (its ttl a second): the tag answers stale, its digest from it
    wait_for(lambda: "stale-if-error" in v2(arca, f"{NAME}/library/demo/manifests/v1", "HEAD",
                                            reg.manifest_headers()).headers.get("cache-status",
                                                                                ""),
             "the tag answered stale, its refresh failed")
    for turn in range(2):  # and after a restart, which keeps no token
        for digest, data in ((image.top.digest, image.top.data),
                             (image.manifest.digest, image.manifest.data)):
            a = v2(arca, f"{NAME}/library/demo/manifests/{digest}",
                   headers=reg.manifest_headers())
            assert a.status == 200 and a.body == data, (turn, digest, a.status, a.body[:200])
            # a digest does not age with the tag that brought it: no stale answer, no ttl spent
            said = a.headers["cache-status"]
            assert "stale" not in said and int(re.search(r"ttl=(-?\d+)", said)[1]) > 1, said
            a = v2(arca, f"{NAME}/library/demo/manifests/{digest}", "HEAD",
                   reg.manifest_headers())
            assert a.status == 200 and a.headers["docker-content-digest"] == digest, turn
        arca.stop()
        arca = start_mirror(start_arca, {NAME: up.url}, "--registry-tag-ttl", "1s",
                            data_dir=arca.data_dir)
    for blob in image.blobs():
        a = v2(arca, f"{NAME}/library/demo/blobs/{blob.digest}")
        assert a.status != 200, "never fetched: nothing to answer from"


def test_skopeo_pulls_two_images_sharing_a_base_through_an_outage(start_arca, docker_registry,
                                                                  workdir):
    """A lab's two images built FROM one base, pushed to a real registry (docker-registry)
    and pulled with skopeo through arca; the registry stopped, both pull again whole: each
    one's layers, the shared base included, answer from arca's store."""
    base = os.urandom(300_000)
    images = {}
    for i, repo in enumerate(("team/app", "team/tool")):
        images[repo] = build_image(os.path.join(workdir, f"i{i}"), [base, os.urandom(90_000)],
                                   "v1")
        docker_registry.push(images[repo], repo)
    arca = start_mirror(start_arca, {NAME: docker_registry.url})
    conf = reg.registries_conf(os.path.join(workdir, "registries.conf"), NAME,
                               f"127.0.0.1:{arca.port}/{NAME}")
    for turn in ("warm", "outage"):
        for repo, image in images.items():
            out = os.path.join(workdir, f"{turn}-{repo.replace('/', '-')}")
            reg.skopeo("copy", f"docker://{NAME}/{repo}:v1", f"dir:{out}", registries_conf=conf)
            assert reg.dir_layers(out) == image.layer_sha256s(), (turn, repo)
        docker_registry.stop()


def test_linked_layers_answer_while_the_realm_refuses_the_login(start_arca, scripted, workdir):
    """The lab's login revoked at the registry's token realm (a password rotated upstream):
    what arca keeps of two images sharing a base still pulls whole, the shared base for both."""
    up = scripted(auth="token", users={"lab-bot": "old-password"})
    images = five_images(up, workdir)
    config = write_config(os.path.join(workdir, "arca.ini"), (
        f"registry {NAME}", {"url": up.url, "username": "lab-bot",
                             "password-file": write_secret(workdir, "pw", "old-password")}))
    arca = start_mirror(start_arca, config=config)
    pull_all(arca, images)
    up.users["lab-bot"] = "rotated"  # the realm refuses arca's login from now on
    with up.lock:
        up.tokens.clear()  # and every token it gave is revoked
    before = len(blob_requests(up))
    pull_all(arca, images)
    assert len(blob_requests(up)) == before
