"""Images handled as images (issue 68, docs/API.md "Images", docs/COMMANDS.md "images"): GET
/api/v1/images/ and `arca images` list what the store keeps of each repository pulled through
/v2/ (its registry's NAME, its tags and their manifest digests, the digests kept without a
tag, the bytes its manifests and the blobs they list take, when it was last pulled), each
client seeing only what it may fetch; `arca purge IMAGE` and POST /api/v1/purge/?image=REF drop
a tag's or a digest's manifests, an index's children and the blobs no other kept manifest
lists: a base layer another image shares stays, and answers that image from the store."""

import json
import os
import signal
import subprocess
import urllib.parse

import registry as reg
from conftest import ARCA_BIN, wait_for
from registry import (Puller, build_image, docker_registry, scripted, skopeo,  # noqa: F401
                      start_mirror, write_config)
from test_admin import TOKEN, token_file

NAME = "lab"


def images(arca, *query):
    status, headers, body = arca.get("/api/v1/images/" + ("?" + "&".join(query) if query
                                                          else ""))
    assert status == 200, (status, body[:300])
    assert headers.get("cache-control") == "private", headers
    return json.loads(body)


def by_repo(listing):
    return {(i["registry"], i["repository"]): i for i in listing["images"]}


def purge_image(arca, ref, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query = urllib.parse.urlencode({"image": ref})
    status, _, body = arca.get(f"/api/v1/purge/?{query}", headers, method="POST")
    return status, body


def kept_urls(arca):
    """Every URL the successes listing shows (all its pages)."""
    urls, page = set(), 1
    while True:
        status, _, body = arca.get(f"/api/v1/resources/?state=successes&page={page}")
        assert status == 200, body
        doc = json.loads(body)
        urls |= {r["url"] for r in doc["resources"]}
        if page >= doc["pages"]:
            return urls
        page += 1


def two_images_sharing_a_base(workdir, up_add):
    """team/a:1 and team/b:1, whose first layer is the same bytes (one digest), the rest their
    own; `up_add(repo, image)` puts each in the upstream."""
    base = os.urandom(120_000)
    a = build_image(os.path.join(workdir, "a"), [base, 40_000], "1")
    b = build_image(os.path.join(workdir, "b"), [base, 50_000, 30_000], "1")
    assert a.layers[0].digest == b.layers[0].digest
    up_add("team/a", a)
    up_add("team/b", b)
    return a, b


def image_bytes(image):
    return sum(m.size for m in image.manifests()) + sum(b.size for b in image.blobs())


def cli(*args, timeout=30):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=timeout)


def test_the_images_listing_from_docker_registry(start_arca, docker_registry, workdir):
    """Two images sharing a base layer and an OCI image with an index, pushed to Debian's
    docker-registry, pulled through arca (skopeo for one, plain GETs for the others): the
    listing has one entry per repository, under the registry's NAME, each tag with the digest
    of the manifest it names, an index's child among the digests kept without a tag, the bytes
    of its manifests and the blobs they list, and when it was last pulled; `arca images` prints
    the same as a table."""
    a, b = two_images_sharing_a_base(workdir, lambda repo, i: docker_registry.push(i, repo))
    c = build_image(os.path.join(workdir, "c"), [70_000], "v2", oci=True, index=True)
    docker_registry.push(c, "team/c")
    arca = start_mirror(start_arca, {NAME: docker_registry.url})
    conf = reg.registries_conf(os.path.join(workdir, "registries.conf"), "registry.lab",
                               f"127.0.0.1:{arca.port}/{NAME}")
    skopeo("copy", "docker://registry.lab/team/a:1", f"dir:{workdir}/out-a",
           registries_conf=conf)
    for repo, tag in (("team/b", "1"), ("team/c", "v2")):
        Puller(arca.base, prefix=NAME).pull(repo, tag)

    listing = wait_for(lambda: (doc := images(arca)) and len(doc["images"]) == 3 and doc,
                       "three images listed")
    rows = by_repo(listing)
    assert set(rows) == {(NAME, "team/a"), (NAME, "team/b"), (NAME, "team/c")}, rows
    for repo, image in (("team/a", a), ("team/b", b)):
        row = rows[(NAME, repo)]
        assert row["tags"] == {"1": image.manifest.digest}, row
        assert row["untagged"] == [], row
        assert row["bytes"] == image_bytes(image), (repo, row["bytes"], image_bytes(image))
        assert row["last_pulled"], row
    row = rows[(NAME, "team/c")]
    assert row["tags"] == {"v2": c.index.digest}, row
    assert row["untagged"] == [c.manifest.digest], row
    assert row["bytes"] == image_bytes(c), row
    kinds = {m["digest"]: m["kind"] for m in row["manifests"]}
    assert kinds == {c.index.digest: "index", c.manifest.digest: "manifest"}, row
    assert listing["count"] == 3 and listing["truncated"] is False, listing

    p = cli("images", "--server", arca.base)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["REGISTRY", "REPOSITORY", "TAG"], p.stdout
    for repo, image in (("team/a", a), ("team/b", b)):
        line = [ln for ln in lines if f" {repo} " in ln]
        assert line and image.manifest.digest[:19] in line[0] and NAME in line[0], p.stdout


def test_purge_an_image_keeps_the_base_layer_another_image_lists(start_arca, scripted,
                                                                    workdir):
    """Both images pulled; `arca purge lab/team/a:1` drops team/a's manifest and its own
    layer and config, not the base layer team/b lists: team/b pulls again from the store alone
    (no GET upstream), while team/a's next pull asks the upstream for its own blobs again, never
    for the shared one. The answer says what went and what stayed shared; the listing loses
    team/a."""
    up = scripted()
    a, b = two_images_sharing_a_base(workdir, up.add)
    arca = start_mirror(start_arca, {NAME: up.url}, "--admin-token-file", token_file(workdir))
    for repo in ("team/a", "team/b"):
        Puller(arca.base, prefix=NAME).pull(repo, "1")
    base = a.layers[0].digest
    assert up.gets(f"/v2/team/a/blobs/{base}") + up.gets(f"/v2/team/b/blobs/{base}") == 1

    p = cli("purge", "--server", arca.base, "--admin-token-file", token_file(workdir),
            f"{NAME}/team/a:1")
    assert p.returncode == 0, p.stderr
    assert "team/a" in p.stdout and "1 shared" in p.stdout, p.stdout
    said = wait_for(lambda: (NAME, "team/a") not in by_repo(doc := images(arca)) and doc,
                    "team/a gone from the listing")
    assert set(by_repo(said)) == {(NAME, "team/b")}
    urls = kept_urls(arca)
    assert not any("/team/a/manifests/" in u for u in urls), urls
    for blob in (a.config, a.layers[1]):
        assert not any(blob.digest in u for u in urls), (blob.digest, urls)
    assert any(base in u for u in urls), urls

    gets_before = {p: up.gets(p) for p in
                   [f"/v2/team/{r}/blobs/{x.digest}" for r, i in (("a", a), ("b", b))
                    for x in i.blobs()]}
    Puller(arca.base, prefix=NAME).pull("team/b", "1")
    for path, n in gets_before.items():
        if "/team/b/" in path:
            assert up.gets(path) == n, path  # the store answered team/b whole
    Puller(arca.base, prefix=NAME).pull("team/a", "1")
    assert up.gets("/v2/team/a/manifests/1") == 2
    for blob in (a.config, a.layers[1]):
        assert up.gets(f"/v2/team/a/blobs/{blob.digest}") == 2, blob.digest
    assert up.gets(f"/v2/team/a/blobs/{base}") + up.gets(f"/v2/team/b/blobs/{base}") == 1


def test_purge_by_digest_takes_the_index_and_its_children(start_arca, scripted, workdir):
    """An OCI index pulled by tag (its child manifest by digest after it): a purge by the
    index's digest takes the tag's object, the child manifest and every blob the child lists,
    none shared; the JSON answer counts them, their bytes, and nothing kept as shared."""
    up = scripted()
    c = up.add("team/c", build_image(os.path.join(workdir, "c"), [70_000, 20_000], "v2",
                                     oci=True, index=True))
    arca = start_mirror(start_arca, {NAME: up.url}, "--admin-token-file", token_file(workdir))
    Puller(arca.base, prefix=NAME).pull("team/c", "v2")
    status, body = purge_image(arca, f"{NAME}/team/c@{c.index.digest}")
    assert status == 200, body
    said = json.loads(body)
    assert said["registry"] == NAME and said["repository"] == "team/c", said
    assert said["manifests"] == 2 and said["blobs"] == len(c.blobs()), said
    assert said["kept_shared"] == 0 and said["bytes"] == image_bytes(c), said
    assert not any("/team/c/" in u for u in kept_urls(arca))
    assert images(arca)["images"] == []


def test_purge_refusals_delete_nothing(start_arca, scripted, workdir):
    """Without the token: the admin API's 401, nothing deleted. A malformed reference (a NUL,
    a line break in it too), a registry arca does not mirror: 400 and one line; an image not
    kept: 404. `arca purge` says
    the same in one line, exit 2 for a reference it cannot take. The store keeps every object
    through all of it."""
    up = scripted()
    two_images_sharing_a_base(workdir, up.add)
    arca = start_mirror(start_arca, {NAME: up.url}, "--admin-token-file", token_file(workdir))
    for repo in ("team/a", "team/b"):
        Puller(arca.base, prefix=NAME).pull(repo, "1")
    before = kept_urls(arca)
    assert purge_image(arca, f"{NAME}/team/a:1", token=None)[0] == 401
    assert purge_image(arca, f"{NAME}/team/a:1", token="wrong-token-0123456789")[0] == 401
    for ref, status in ((f"{NAME}/Team/A:1", 400), (f"{NAME}/team/a:", 400),
                        (f"{NAME}/team/a@sha256:abc", 400), ("", 400),
                        ("nowhere.example/team/a:1", 400), ("http://h/x", 400),
                        (f"{NAME}/team/a:1\x00x", 400), ("\r\nX: 1.x/team/a:1", 400),
                        (f"{NAME}/team/a:2", 404), (f"{NAME}/team/zz:1", 404)):
        got, body = purge_image(arca, ref)
        assert got == status, (ref, got, body)
        assert body.decode().count("\n") == 1 and body.strip(), (ref, body)
    for ref in ("nowhere.example/team/a:1", f"{NAME}/team/a@sha256:abc"):
        p = cli("purge", "--server", arca.base, "--admin-token-file", token_file(workdir), ref)
        assert p.returncode == 2 and p.stdout == "", (ref, p.returncode, p.stdout, p.stderr)
        assert p.stderr.startswith("arca: ") and p.stderr.count("\n") == 1, p.stderr
    assert kept_urls(arca) == before
    assert {r for r in by_repo(images(arca))} == {(NAME, "team/a"), (NAME, "team/b")}


def test_the_listing_shows_a_client_only_what_it_may_fetch(start_arca, scripted, workdir):
    """A rule lets only 10.0.0.0/8 fetch team/b (read on SIGHUP, after both were pulled): the
    listing asked from 127.0.0.1 shows team/a alone; bad pages are 400 and 404."""
    up = scripted()
    two_images_sharing_a_base(workdir, up.add)
    config = write_config(os.path.join(workdir, "arca.ini"), "")
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    for repo in ("team/a", "team/b"):
        Puller(arca.base, prefix=NAME).pull(repo, "1")
    assert len(images(arca)["images"]) == 2
    write_config(config, ("rule b-is-private", {"match": f"{up.url}/v2/team/b/",
                                                 "allow-network": "10.0.0.0/8"}))
    arca.reload("SIGHUP: reloaded")
    assert set(by_repo(images(arca))) == {(NAME, "team/a")}
    assert arca.get("/api/v1/images/?page=0")[0] == 400
    assert arca.get("/api/v1/images/?page=2")[0] == 404


def test_a_docker_hub_short_name_is_purged_and_stays_purged_after_kill_9(start_arca, scripted,
                                                                         workdir):
    """docker.io mirrored from the scripted upstream, the default registry: `demo:1` is
    library/demo's tag 1, as docker reads it. Its purge is answered once the rows are gone on
    disk: a kill -9 right after it, and the restarted arca lists nothing, keeps no object of it,
    and pulls it from the upstream again."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "d"), [30_000], "1"))
    arca = start_mirror(start_arca, {"docker.io": up.url}, "--admin-token-file",
                        token_file(workdir))
    Puller(arca.base).pull("library/demo", "1")
    assert set(by_repo(images(arca))) == {("docker.io", "library/demo")}
    status, body = purge_image(arca, "demo:1")
    assert status == 200, body
    said = json.loads(body)
    assert said["repository"] == "library/demo" and said["blobs"] == len(image.blobs()), said
    arca.stop(signal.SIGKILL)
    arca.start()
    assert images(arca)["images"] == [] and kept_urls(arca) == set()
    Puller(arca.base).pull("library/demo", "1")
    assert up.gets("/v2/library/demo/manifests/1") == 2
