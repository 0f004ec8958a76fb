"""The upstream side of the registry mirror (issue 60; docs/REGISTRY.md, "Credentials" and
"Blob redirects"; docs/SECURITY.md, "Registries upstream"): what test_registry_auth.py does not
show. A token the registry stops honouring is dropped and asked again once, the client never
seeing the 401; a registry URL asked through the fetch API (what a site's arca asks its central
one) is authorised by the arca that downloads it, its digest checked; a blob's CDN hop works
under a rule on the registry's URL, and fails where a rule's networks would let the CDN's bytes
out to clients the CDN's URL is not for; a probe of a registry's URL is a HEAD, never a GET."""

import os
import time

import registry as reg
from conftest import wait_clock, wait_for
from registry import (Puller, build_image, digest_of, scripted, start_mirror, v2,  # noqa: F401
                      write_config)

NAME = "registry.lab"


def test_a_token_the_registry_stops_honouring_is_asked_again_once(start_arca, scripted,
                                                                     workdir):
    """The registry forgets every token it gave (a key rotated, a token revoked): the next
    pull gets a 401 upstream, arca drops its token, asks the realm once more and goes on; the
    client sees 200 throughout."""
    up = scripted(auth="token")
    first = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    second = up.add("library/demo", build_image(os.path.join(workdir, "b"), [70_000], "v2"))
    arca = start_mirror(start_arca, {NAME: up.url})
    client = Puller(arca.base, prefix=NAME)
    got, _ = client.pull("library/demo", "v1")
    assert sorted(got) == sorted(x.digest for x in first.blobs())
    assert len(up.token_requests()) == 1
    with up.lock:
        up.tokens.clear()
    got, _ = client.pull("library/demo", "v2")
    assert sorted(got) == sorted(x.digest for x in second.blobs())
    assert all(a.status == 200 for a in client.answers), [a.status for a in client.answers]
    assert len(up.token_requests()) == 2
    # one 401 met upstream, the manifest's: every later request carried the new token
    refused = [r for r in up.requests() if r.status == 401 and r.path != "/v2/"]
    assert len(refused) == 1, [(r.method, r.path) for r in refused]


def test_the_fetch_api_of_a_registry_url_is_authorised_and_checked(start_arca, scripted,
                                                                   workdir):
    """A site's arca asks its central one for the registry's URL through the fetch API: the
    central does the token dance itself, and the bytes must be the digest the URL names; a
    lying upstream's blob is not served whole there either, nor kept."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536, 90_000],
                                               "v1"))
    central = start_mirror(start_arca, {NAME: up.url})
    good, bad = image.layers
    status, _, body = central.fetch(f"{up.url}/v2/library/demo/blobs/{good.digest}")
    assert status == 200 and digest_of(body) == good.digest
    assert len(up.token_requests()) == 1
    up.lie_blob(bad.digest)
    path = f"/v2/library/demo/blobs/{bad.digest}"
    for n in (1, 2):
        status, _, body = central.fetch(f"{up.url}{path}")
        assert status != 200 or digest_of(body) != bad.digest
        assert status != 200 or len(body) < bad.size
        assert up.gets(path) == n  # never kept
    # a site pulling through its central arca: every byte once upstream, the digest end to end
    site = start_mirror(start_arca, {NAME: up.url}, "--parent", central.base)
    client = Puller(site.base, prefix=NAME)
    up.lying_blobs.clear()
    got, _ = client.pull("library/demo", "v1")
    assert sorted(got) == sorted(x.digest for x in image.blobs())
    assert up.gets(f"/v2/library/demo/blobs/{good.digest}") == 1
    assert up.gets(f"/v2/library/demo/blobs/{bad.digest}") == 3
    assert up.gets("/v2/library/demo/manifests/v1") == 1
    # the site's one blob GET was the central's copy: the site never went to the registry
    assert len(site.read_log()) and "from registry" not in site.read_log()


def test_a_cdn_hop_under_a_rule_on_the_registry_url(start_arca, scripted, workdir):
    """A rule on the registry's URL (its ttl) leaves the CDN hop alone: the blob comes. A rule
    naming networks on the registry's URL keeps its bytes for those networks: a hop to a CDN
    the rule does not cover is not followed (403 naming the rule), never served, never kept."""
    up = scripted(auth="token", cdn=True)
    image = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536, 80_000],
                                               "v1"))
    ttl = write_config(os.path.join(workdir, "ttl.ini"),
                       ("rule hub", {"match": f"{up.url}/v2/", "ttl": "1h"}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=ttl)
    first, second = image.layers
    a = v2(arca, f"{NAME}/library/demo/blobs/{first.digest}")
    assert a.status == 200 and digest_of(a.body) == first.digest
    assert len(up.requests("cdn", "GET")) == 1
    arca.stop()

    nets = write_config(os.path.join(workdir, "nets.ini"),
                        ("rule hub", {"match": f"{up.url}/v2/", "allow-network": "127.0.0.0/8"}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=nets)
    a = v2(arca, f"{NAME}/library/demo/blobs/{second.digest}")
    assert a.status == 403 and "location" not in a.headers, (a.status, a.body[:300])
    assert b"redirected to" in a.body and b"under rule hu" in a.body, a.body[:400]
    assert len(up.requests("cdn", "GET")) == 1  # the second blob's hop never went


def test_a_probe_of_a_registry_url_is_a_head(start_arca, scripted, workdir):
    """A blob arca holds, asked for another repository, is confirmed with the upstream first
    (the other repository must have it): a HEAD, never a GET a registry counts as a pull."""
    up = scripted(auth="token")
    image = build_image(os.path.join(workdir, "a"), [65536], "v1")
    up.add("library/one", image)
    up.add("library/two", image)
    arca = start_mirror(start_arca, {NAME: up.url})
    layer = image.layers[0]
    a = v2(arca, f"{NAME}/library/one/blobs/{layer.digest}")
    assert a.status == 200 and digest_of(a.body) == layer.digest
    b = v2(arca, f"{NAME}/library/two/blobs/{layer.digest}")
    assert b.status == 200 and digest_of(b.body) == layer.digest
    two = f"/v2/library/two/blobs/{layer.digest}"
    assert up.gets(two) == 0 and up.heads(two) == 1, (up.gets(two), up.heads(two))
    assert [r.status for r in up.requests(method="HEAD", path=two)] == [200]
    wait_for(lambda: up.blob_gets("library/one", layer.digest) == 1, "one GET of the blob")


def test_a_registry_down_before_its_first_token_answers_a_kept_tag_stale(start_arca, scripted,
                                                                         workdir):
    """arca restarted (its tokens are not kept across a start) finds the registry down when it
    first asks for its challenge: the tag's kept manifest answers, stale and said so, as when
    the manifest's own request fails. Asked through the fetch API (a site's arca asking its
    central one), where the download alone does the dance."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    config = write_config(os.path.join(workdir, "arca.ini"),
                          ("rule tags", {"match": f"{up.url}/v2/", "ttl": "1s",
                                         "stale-if-error": "1h"}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    url = f"{up.url}/v2/library/demo/manifests/v1"
    status, _, body = arca.fetch(url)
    assert status == 200 and body == image.manifest.data
    arca.stop()
    up.go_down()
    arca.start()
    wait_clock(int(time.time()) + 2)
    status, headers, body = arca.fetch(url)
    assert status == 200 and body == image.manifest.data, (status, body[:300])
    assert "fwd=stale" in headers.get("cache-status", headers.get("Cache-Status", "")), headers
    assert len(up.token_requests()) == 1  # the first start's: none was to be had since
