"""A site's arca pulling through its central one (issue 60, "Once for the lab"; docs/REGISTRY.md):
the site asks the central's /v2/ as any registry client does, the registry named by its URL in
?ns=, so the central's registry course serves it (its login, its checks, its counters) and the
digest in the path is checked at both ends. A central that does not mirror that registry refuses
it; the site then asks the registry itself."""

import json
import os
import re
import subprocess
import time
import urllib.parse

from conftest import ARCA_BIN, wait_clock, wait_for
from registry import (Puller, build_image, pull_through_a_tier, scripted,  # noqa: F401
                      start_mirror)
from tier import parent_row

NAME = "registry.lab"


def site_lines(central):
    """The central's access-log lines of the site's requests: method, target, status."""
    return re.findall(r'"(GET|HEAD) (\S+) HTTP/1\.1" (\d{3})', central.read_log())


def test_a_site_asks_its_central_s_v2_for_each_manifest_and_blob(start_arca, scripted, workdir):
    up, image, central, site = pull_through_a_tier(start_arca, scripted, workdir, NAME)
    objects = 1 + len(image.blobs())  # the manifest by tag, the config and the layers
    lines = wait_for(lambda: len(site_lines(central)) >= objects and site_lines(central),
                     "the central's access-log lines")
    targets = [t for _, t, _ in lines]
    assert not [t for t in targets if t.startswith("/api/v1/fetch")], targets
    ns = urllib.parse.quote(up.url, safe="")  # the registry named by its URL, not its NAME
    for blob in image.blobs():
        assert f"/v2/library/demo/blobs/{blob.digest}?ns={ns}" in targets, targets
        assert up.blob_gets("library/demo", blob.digest) == 1, blob.digest
    assert f"/v2/library/demo/manifests/v1?ns={ns}" in targets, targets
    assert all(status.startswith("2") for _, _, status in lines), lines
    row = parent_row(site)
    assert sum(row["fallbacks"].values()) == 0 and row["requests"] >= objects, row


def test_a_central_that_does_not_mirror_the_registry_sends_the_site_to_it(start_arca, scripted,
                                                                         workdir):
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    central = start_mirror(start_arca, {"other": up.url + "/elsewhere"}, name="central")
    site = start_mirror(start_arca, {NAME: up.url}, "--parent", central.base, name="site")
    got, _ = Puller(site.base, prefix=NAME).pull("library/demo", "v1")
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    row = parent_row(site)
    assert row["fallbacks"]["status"] >= 1 and row["hits"] == 0, row
    # the central refused the name it does not mirror
    assert all(status == "404" for _, t, status in site_lines(central) if t.startswith("/v2/"))
    for blob in image.blobs():
        assert up.blob_gets("library/demo", blob.digest) == 1, blob.digest


def test_a_moved_tag_reaches_the_site_through_its_central(start_arca, scripted, workdir):
    """Past --registry-tag-ttl at both, the site asks the central again (its max-age the site's
    term), the central asks the registry with a HEAD, and the moved tag reaches the site's client;
    the registry is asked one GET per version of the tag."""
    up = scripted()
    old = up.add("library/demo", build_image(os.path.join(workdir, "old"), [65536], "v1"))
    new = build_image(os.path.join(workdir, "new"), [70_000], "v1")
    central = start_mirror(start_arca, {NAME: up.url}, "--registry-tag-ttl", "1s",
                           name="central")
    site = start_mirror(start_arca, {NAME: up.url}, "--parent", central.base,
                        "--registry-tag-ttl", "1s", name="site")
    puller = Puller(site.base, prefix=NAME)
    assert puller.get("library/demo", "manifests", "v1").body == old.manifest.data
    up.retag("library/demo", "v1", new)
    wait_clock(int(time.time()) + 2)
    got = puller.get("library/demo", "manifests", "v1")
    assert got.status == 200 and got.body == new.manifest.data
    assert got.headers["docker-content-digest"] == new.manifest.digest
    tag = "/v2/library/demo/manifests/v1"
    assert (up.heads(tag), up.gets(tag)) == (1, 2), (up.heads(tag), up.gets(tag))
    row = parent_row(site)
    assert sum(row["fallbacks"].values()) == 0, row


def test_rules_test_says_what_the_site_asks_its_central_for_an_image(workdir):
    """`arca rules test` names the ask serve makes of the parent for a registry's URL: its /v2/
    path with ?ns=, not its fetch API (the new user's finding)."""
    def sources(ref):
        p = subprocess.run([ARCA_BIN, "rules", "test", "--registry", f"{NAME}=http://127.0.0.1:5055",
                            "--parent", "http://127.0.0.1:8101", "--json", ref],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["sources"]
    parent = sources(f"{NAME}/lab/tool:1")[0]
    assert parent["kind"] == "parent", parent
    assert "/v2/lab/tool/manifests/1?ns=http%3A%2F%2F127.0.0.1%3A5055" in parent["sent"], parent
    other = sources("http://127.0.0.1:5055/files/a.bin")[0]
    assert "fetch API" in other["sent"], other
