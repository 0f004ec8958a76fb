"""Honest counters and lists (issue 68, docs/REGISTRY.md "Visible"; docs/API.md "Registries"):
a registry's `pulls` are image pulls (a client's GET of an image manifest, by tag or by digest:
a HEAD never, an index or manifest list never, so that dockerd's HEAD of a tag then GET by
digest is one pull, and a multi-platform image pulled for one platform is one), `blobs` the
blob GETs answered, `requests` every request of its pull API; `tags/list` is kept for
--registry-tag-ttl as a tag's manifest is; and no query of a redirect's target (a CDN's
signature) is shown anywhere."""

import os
import subprocess
import time

from conftest import ARCA_BIN, wait_for
from registry import (Puller, build_image, manifest_headers, scripted, shown_by,  # noqa: F401
                      start_mirror, v2, write_config)

NAME = "registry.lab"


def entry(arca):
    found = [r for r in arca.status()["registries"] if r["name"] == NAME]
    assert len(found) == 1, arca.status().get("registries")
    return found[0]


def dockerd_pull(arca, repo, tag):
    """As dockerd and containerd pull: a HEAD of the tag, then its manifest by the digest it
    said (through an index to its first entry), then the blobs. Requests made."""
    made = 1
    head = v2(arca, f"{NAME}/{repo}/manifests/{tag}", "HEAD", manifest_headers())
    assert head.status == 200, head.status
    digest = head.headers["docker-content-digest"]
    while True:
        a = v2(arca, f"{NAME}/{repo}/manifests/{digest}", headers=manifest_headers())
        made += 1
        assert a.status == 200, a.status
        doc = a.json()
        if "manifests" not in doc:
            break
        digest = doc["manifests"][0]["digest"]
    for desc in [doc["config"]] + doc["layers"]:
        assert v2(arca, f"{NAME}/{repo}/blobs/{desc['digest']}").status == 200
        made += 1
    return made


def test_eight_image_pulls_count_eight(start_arca, scripted, workdir):
    """Eight image pulls (two clients' ways, plain images and one behind an index, cold and
    warm): pulls 8, blobs the blob GETs, requests every request (the tag lists and a refused
    one among them); the metrics, `arca status` and the statistics page say the same."""
    up = scripted()
    plain = up.add("library/plain", build_image(os.path.join(workdir, "a"), [65536, 9000], "v1"))
    indexed = up.add("team/multi", build_image(os.path.join(workdir, "b"), [70_000], "v1",
                                               oci=True, index=True))
    arca = start_mirror(start_arca, {NAME: up.url})
    client = Puller(arca.base, prefix=NAME)
    requests = blobs = 0
    for repo, image in (("library/plain", plain), ("team/multi", indexed)) * 2:
        before = len(client.answers)
        client.pull(repo, image.tag)  # GET the tag (and the index's entry), then the blobs
        requests += len(client.answers) - before
        blobs += len(image.blobs())
        requests += dockerd_pull(arca, repo, image.tag)
        blobs += len(image.blobs())
    assert v2(arca, f"{NAME}/library/plain/tags/list").status == 200
    assert v2(arca, f"{NAME}/library/plain/manifests/nosuchtag").status == 404
    requests += 2
    e = wait_for(lambda: (e := entry(arca))["requests"] >= requests and e,
                 "every request counted (each as it ends)")
    assert (e["pulls"], e["blobs"], e["requests"]) == (8, blobs, requests), e
    assert e["hits"] >= blobs // 2 and e["bytes"] >= 4 * sum(
        b.size for b in plain.blobs() + indexed.blobs()), e
    metrics = arca.metrics()
    for word, value in (("pulls", 8), ("blobs", blobs), ("requests", requests)):
        assert metrics[f'arca_registry_{word}_total{{registry="{NAME}"}}'] == value, word
    p = subprocess.run([ARCA_BIN, "status", "--server", arca.base], capture_output=True,
                       text=True, timeout=10)
    line = [x for x in p.stdout.splitlines() if x.startswith(f"registry   {NAME}:")]
    assert len(line) == 1 and f"8 pulls, {blobs} blobs, {requests} requests" in line[0], \
        p.stdout
    status, _, page = arca.get("/statistics/")
    assert status == 200 and f"8 pulls, {blobs} blobs, {requests} requests" in page.decode()

    arca.stop()  # kept per NAME across a restart, the new counters too
    arca.start()
    again = entry(arca)
    assert (again["pulls"], again["blobs"], again["requests"]) == (8, blobs, requests), again


def test_a_tag_list_is_fresh_for_the_registry_tag_ttl(start_arca, scripted, workdir):
    """A tag pushed upstream shows in tags/list once --registry-tag-ttl has passed (not ten
    days later, --default-ttl's); within it the list is answered from the store."""
    up = scripted()
    up.add("team/app", build_image(os.path.join(workdir, "a"), [4096], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url}, "--registry-tag-ttl", "2s")
    path = f"{NAME}/team/app/tags/list"
    first = v2(arca, path)
    assert first.status == 200 and first.json()["tags"] == ["v1"], first.body
    assert v2(arca, path).json()["tags"] == ["v1"]
    assert up.gets("/v2/team/app/tags/list") == 1  # the second from the store
    up.add("team/app", build_image(os.path.join(workdir, "b"), [4096], "v2"))
    t0 = time.monotonic()
    wait_for(lambda: v2(arca, path).json()["tags"] == ["v1", "v2"], "the new tag listed", 15,
             every=0.2)
    assert time.monotonic() - t0 < 10


def cdn_mirror(start_arca, scripted, workdir, cdn_host="127.0.0.1", cdn_rule=False):
    """A scripted registry redirecting blobs to a CDN whose signed URL's query holds a secret
    (in each of its parameters), and arca mirroring it; with `cdn_rule`, a rule giving the
    CDN's URLs an allow-network of their own (a redirect there is not followed)."""
    secret = "SeCrEt" + os.urandom(8).hex()
    up = scripted(cdn=True, cdn_host=cdn_host)
    config = None
    if cdn_rule:
        config = write_config(os.path.join(workdir, "rules.ini"),
                              ("rule cdn", {"match": f"http://{cdn_host}:{up.cdn_port}/",
                                            "allow-network": "10.0.0.0/8"}))
    image = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    up.cdn_query = (f"verify=1700000000-{secret}&X-Amz-Signature={secret}x"
                    f"&Expires=1700000000&sig={secret}y&Key-Pair-Id=K{secret}&other={secret}z")
    arca = start_mirror(start_arca, {NAME: up.url}, "--log-level", "debug", config=config,
                        access_log=os.path.join(workdir, "access.log"))
    return up, image, arca, secret


def assert_shown_nowhere(arca, secret, answers):
    texts = shown_by(arca) + [f"{a.status} {a.headers} " + a.body.decode(errors="replace")
                              for a in answers]
    for text in texts:
        assert secret not in text, text[max(0, text.find(secret) - 300):text.find(secret) + 80]


def test_a_cdn_signature_is_shown_nowhere(start_arca, scripted, workdir):
    """A blob redirected to a CDN's signed URL, pulled whole; then the CDN answers 500, or 403,
    to another: the answers (their Arca-Redirect and Arca-Error), the registry's error body,
    arca's log, its access log, the failures listing, the status and the pages hold no byte of
    the redirect's query (any parameter: verify=, X-Amz-*, sig=, Expires, Key-Pair-Id, an
    unknown one)."""
    for cdn_status in (500, 403):
        here = os.path.join(workdir, str(cdn_status))
        os.makedirs(here)
        up, image, arca, secret = cdn_mirror(start_arca, scripted, here)
        whole = v2(arca, f"{NAME}/library/demo/blobs/{image.config.digest}")
        assert whole.status == 200 and whole.body == image.config.data, whole.status
        up.cdn_failing = cdn_status
        layer = image.layers[0]
        a = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
        assert a.status >= 400 and a.error_codes(), (a.status, a.body[:300])
        assert len(up.requests("cdn")) >= 2, "the CDN was asked"
        wait_for(lambda: layer.digest.encode() in arca.get(
            "/api/v1/resources/?state=failures")[2], "the failure listed")
        assert_shown_nowhere(arca, secret, [whole, a])
        arca.stop()


def test_a_redirect_not_followed_is_told_without_its_query(start_arca, scripted, workdir):
    """A CDN under a rule whose allow-network the registry's URL does not share: the redirect
    is not followed, and the refusal names the hop without its query, in the client's
    Arca-Error, the log and the failures listing."""
    up, image, arca, secret = cdn_mirror(start_arca, scripted, workdir, "127.0.0.2", True)
    layer = image.layers[0]
    a = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
    said = a.headers.get("arca-error", "")
    assert a.status == 403 and said.startswith("redirected to "), (a.status, said)
    assert f"127.0.0.2:{up.cdn_port}/cdn/{layer.digest}?REDACTED" in said, said
    wait_for(lambda: layer.digest.encode() in arca.get(
        "/api/v1/resources/?state=failures")[2], "the failure listed")
    assert_shown_nowhere(arca, secret, [a])
