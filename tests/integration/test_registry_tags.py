"""A tag moves; a digest never does (issue 60, docs/REGISTRY.md, "What is kept, and how long").
A tag is fresh for what its rule says (rules match registry content by its upstream URL), then
revalidated with a HEAD: an unchanged digest costs no GET of the manifest (Docker Hub counts
a GET of a manifest as a pull, not a HEAD); a tag moved upstream is served as it now is."""

import json
import os
import subprocess
import time

import registry as reg
from conftest import ARCA_BIN, wait_clock
from registry import build_image, scripted, start_mirror, v2, write_config  # noqa: F401

NAME = "registry.lab"


def rules(workdir, up):
    return write_config(os.path.join(workdir, "arca.ini"),
                        ("rule tags", {"match": f"{up.url}/v2/", "ttl": "1s"}),
                        ("rule stable", {"match": f"{up.url}/v2/library/stable/",
                                         "ttl": "1h"}))


def pull_tag(arca, repo, tag="v1"):
    a = v2(arca, f"{NAME}/{repo}/manifests/{tag}", headers=reg.manifest_headers())
    assert a.status == 200, (a.status, a.body[:300])
    assert a.headers["docker-content-digest"] == reg.digest_of(a.body)
    return a


def test_an_expired_tag_is_revalidated_with_a_head_then_follows_a_move(start_arca, scripted,
                                                                       workdir):
    up = scripted()
    old = up.add("library/demo", build_image(os.path.join(workdir, "old"), [65536], "v1"))
    new = build_image(os.path.join(workdir, "new"), [70_000], "v1")
    arca = start_mirror(start_arca, {NAME: up.url}, config=rules(workdir, up))
    tag = "/v2/library/demo/manifests/v1"

    assert pull_tag(arca, "library/demo").body == old.manifest.data
    assert up.gets(tag) == 1
    # past its second of freshness, twice over: each pull by tag asks with a HEAD, no GET
    for _ in range(2):
        heads = up.heads(tag)
        wait_clock(int(time.time()) + 2)
        a = pull_tag(arca, "library/demo")
        assert a.body == old.manifest.data
        assert up.heads(tag) == heads + 1 and up.gets(tag) == 1, (up.heads(tag), up.gets(tag))
    # the tag moves upstream: once expired, the new manifest is served, and its layer
    up.retag("library/demo", "v1", new)
    wait_clock(int(time.time()) + 2)
    a = pull_tag(arca, "library/demo")
    assert a.body == new.manifest.data
    assert a.headers["docker-content-digest"] == new.manifest.digest
    assert up.gets(tag) == 2
    layer = new.layers[0]
    b = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
    assert b.status == 200 and reg.digest_of(b.body) == layer.digest
    # the old manifest by digest stays what it was
    c = v2(arca, f"{NAME}/library/demo/manifests/{old.manifest.digest}",
           headers=reg.manifest_headers())
    assert c.status == 200 and c.body == old.manifest.data


def test_a_fresh_tag_asks_nothing_upstream(start_arca, scripted, workdir):
    """Under a rule of an hour, a tag pulled again is answered from the cache: no HEAD, no
    GET; a manifest by digest never asks again either."""
    up = scripted()
    image = up.add("library/stable", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url}, config=rules(workdir, up))
    for _ in range(3):
        assert pull_tag(arca, "library/stable").body == image.manifest.data
        a = v2(arca, f"{NAME}/library/stable/manifests/{image.manifest.digest}",
               headers=reg.manifest_headers())
        assert a.status == 200 and a.body == image.manifest.data
    tag = "/v2/library/stable/manifests/v1"
    assert (up.gets(tag), up.heads(tag)) == (1, 0)
    by_digest = f"/v2/library/stable/manifests/{image.manifest.digest}"
    assert up.gets(by_digest) + up.heads(by_digest) <= 1


def test_with_no_rule_a_tag_follows_a_move_within_registry_tag_ttl(start_arca, scripted, workdir):
    """No rule at all: a tag is fresh for --registry-tag-ttl (default 1m, as `arca rules test`
    says), never --default-ttl's ten days, so a rebuilt tag reaches the lab; its digests and
    layers keep --default-ttl. SIGHUP reads the option again; a rule's ttl wins over it."""
    up = scripted()
    old = up.add("library/demo", build_image(os.path.join(workdir, "old"), [65536], "v1"))
    new = build_image(os.path.join(workdir, "new"), [70_000], "v1")
    kept = up.add("library/stable", build_image(os.path.join(workdir, "s"), [65536], "v1"))
    ini = write_config(os.path.join(workdir, "arca.ini"),
                       ("arca", {"registry-tag-ttl": "1s"}),
                       ("rule stable", {"match": f"{up.url}/v2/library/stable/", "ttl": "1h"}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=ini)
    tag = "/v2/library/demo/manifests/v1"
    assert pull_tag(arca, "library/demo").body == old.manifest.data
    assert pull_tag(arca, "library/stable").body == kept.manifest.data
    up.retag("library/demo", "v1", new)
    up.retag("library/stable", "v1", new)
    wait_clock(int(time.time()) + 2)
    a = pull_tag(arca, "library/demo")
    assert a.body == new.manifest.data, "the moved tag, past --registry-tag-ttl"
    assert (up.heads(tag), up.gets(tag)) == (1, 2), (up.heads(tag), up.gets(tag))
    assert pull_tag(arca, "library/stable").body == kept.manifest.data, "the rule's hour"
    assert up.heads("/v2/library/stable/manifests/v1") == 0

    def ttl_term(reference):
        p = subprocess.run([ARCA_BIN, "rules", "test", "--config", ini, "--registry",
                            f"{NAME}={up.url}", "--json", reference],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["terms"]["ttl"]
    assert ttl_term(f"{NAME}/library/demo:v1") == {"value": 1, "from": "--registry-tag-ttl"}
    assert ttl_term(f"{NAME}/library/demo@{new.manifest.digest}")["from"] == "--default-ttl"

    # an hour now: the tag stays as it is kept, upstream not asked
    with open(ini) as f:
        text = f.read()
    with open(ini, "w") as f:
        f.write(text.replace("registry-tag-ttl = 1s", "registry-tag-ttl = 1h"))
    arca.reload("SIGHUP: reloaded")
    wait_clock(int(time.time()) + 2)  # the kept copy's second is over: its next download keeps
    assert pull_tag(arca, "library/demo").body == new.manifest.data  # ... the new hour
    asked = (up.heads(tag), up.gets(tag))
    up.retag("library/demo", "v1", old)
    wait_clock(int(time.time()) + 2)
    assert pull_tag(arca, "library/demo").body == new.manifest.data
    assert (up.heads(tag), up.gets(tag)) == asked
