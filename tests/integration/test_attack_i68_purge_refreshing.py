"""Attack on issue 68's purge by image (docs/API.md "Images"): "every blob those manifests list
that no other kept manifest lists" goes, "a base layer another image shares stays".

The purge reads the kept manifests with store_walk_kept, which visits OBJ_COMPLETE objects
only. A tag whose ttl has passed and whose revalidation is under way is a new object in the
fetching state, its kept manifest hanging off it as its stale copy: for the purge it is not
kept. Purging team/a while team/b:1 revalidates (a slow HEAD upstream) drops the base layer
team/b's manifest lists; the revalidation then renews team/b:1 (same digest), and with the
upstream down team/b can no longer be pulled whole, though the purge answer said nothing of
it and the listing shows team/b. Expected: the shared layer stays (kept_shared 1)."""

import json
import threading
import time

from conftest import wait_for
from registry import Puller, scripted, start_mirror, v2  # noqa: F401
from test_admin import token_file
from test_registry_images import by_repo, images, purge_image, two_images_sharing_a_base

NAME = "lab"


def slow_heads(up, path):
    """Make the upstream hold HEADs of `path` until the returned event is set."""
    release = threading.Event()
    answer = up.answer

    def held(req):
        if req.method == "HEAD" and req.path == path:
            release.wait(20)
        return answer(req)
    up.answer = held
    return release


def revalidating(arca, up, repo, tag):
    """`repo:tag`, pulled more than its 1 s tag ttl ago, asked by a client on a thread: its
    revalidation's HEAD hangs upstream until the returned event is set (join the thread)."""
    path = f"/v2/{repo}/manifests/{tag}"
    release = slow_heads(up, path)
    pulled = time.monotonic()
    wait_for(lambda: time.monotonic() > pulled + 1.5, f"{repo}:{tag} past its 1 s tag ttl", 5)
    t = threading.Thread(target=lambda: v2(arca, f"{NAME}/{repo}/manifests/{tag}"))
    t.start()
    wait_for(lambda: up.heads(path) >= 1, f"{repo}'s HEAD upstream", 10)
    return release, t


def test_purge_keeps_a_base_layer_a_revalidating_tag_lists(start_arca, scripted, workdir):
    up = scripted()
    a, b = two_images_sharing_a_base(workdir, up.add)
    arca = start_mirror(start_arca, {NAME: up.url}, "--admin-token-file", token_file(workdir),
                        "--registry-tag-ttl", "1s")
    for repo in ("team/a", "team/b"):
        Puller(arca.base, prefix=NAME).pull(repo, "1")
    base = a.layers[0].digest
    release = slow_heads(up, "/v2/team/b/manifests/1")
    pulled = time.monotonic()
    wait_for(lambda: time.monotonic() > pulled + 1.5, "team/b:1 past its 1 s tag ttl", 5)
    # a client asks team/b:1: its revalidation (a HEAD) hangs upstream meanwhile
    got = {}
    t = threading.Thread(target=lambda: got.setdefault(
        "b", v2(arca, f"{NAME}/team/b/manifests/1", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})))
    t.start()
    wait_for(lambda: up.heads("/v2/team/b/manifests/1") >= 1, "team/b's HEAD upstream", 10)
    status, body = purge_image(arca, f"{NAME}/team/a:1")
    release.set()
    t.join(30)
    assert status == 200, body
    said = json.loads(body)
    up.go_down()
    blob = v2(arca, f"{NAME}/team/b/blobs/{base}")
    assert said["kept_shared"] == 1 and blob.status == 200, (said, blob.status,
                                                             blob.body[:200])


def test_purge_of_a_revalidating_tag_drops_it(start_arca, scripted, workdir):
    """The same blind spot from the other side: team/b:1 is kept (its expired copy answers
    while its HEAD upstream hangs), yet `purge lab/team/b:1` answers 404 "not cached" and
    deletes nothing; the revalidation then renews it, and the image an admin withdrew goes on
    being served from the store. Expected: the purge takes it (200)."""
    up = scripted()
    two_images_sharing_a_base(workdir, up.add)
    arca = start_mirror(start_arca, {NAME: up.url}, "--admin-token-file", token_file(workdir),
                        "--registry-tag-ttl", "1s")
    Puller(arca.base, prefix=NAME).pull("team/b", "1")
    path = "/v2/team/b/manifests/1"
    release, t = revalidating(arca, up, "team/b", "1")
    status, body = purge_image(arca, f"{NAME}/team/b:1")
    release.set()
    t.join(30)
    assert status == 200, (status, body)
    assert json.loads(body)["manifests"] >= 1, body
    assert (NAME, "team/b") not in by_repo(images(arca))
    # the HEAD's same digest renewed nothing: the next request fetches the manifest afresh
    gets = up.gets(path)
    got = v2(arca, f"{NAME}/team/b/manifests/1")
    assert got.status == 200 and up.gets(path) > gets, (got.status, up.gets(path), gets)


def test_the_listing_keeps_an_image_whose_tag_revalidates(start_arca, scripted, workdir):
    """While team/b:1's revalidation waits for the registry, its expired manifest is still
    kept (a 304 or the same digest renews it): the listing shows team/b, its tag and blobs, as
    before the ttl ran out, not an image gone."""
    up = scripted()
    _, b = two_images_sharing_a_base(workdir, up.add)
    arca = start_mirror(start_arca, {NAME: up.url}, "--registry-tag-ttl", "1s")
    Puller(arca.base, prefix=NAME).pull("team/b", "1")
    before = by_repo(images(arca))[(NAME, "team/b")]
    release, t = revalidating(arca, up, "team/b", "1")
    try:
        row = by_repo(images(arca)).get((NAME, "team/b"))
    finally:
        release.set()
        t.join(30)
    assert row is not None, "team/b missing from the listing while its tag revalidates"
    assert row["tags"] == {"1": b.manifest.digest}, row
    assert (row["blobs"], row["bytes"]) == (before["blobs"], before["bytes"]), (row, before)
