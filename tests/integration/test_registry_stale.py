"""The upstream limits or fails (issue 60, docs/REGISTRY.md, "When the upstream limits or
fails"; docs/CACHING.md, "When the origin is down"): Docker Hub's 429 toomanyrequests, a 5xx,
or no answer at all. A tag arca knew is answered with its last known manifest, stale and said
so (Cache-Status: arca; fwd=stale ... as any stale answer), within the stale windows; past
them, the registry's JSON error, never the old manifest."""

import os
import time

import pytest

import registry as reg
from conftest import wait_clock
from registry import build_image, scripted, start_mirror, v2, write_config  # noqa: F401

NAME = "registry.lab"
TAG = "/v2/library/demo/manifests/v1"


def pulled_once(start_arca, scripted, workdir, stale_if_error):
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    config = write_config(os.path.join(workdir, "arca.ini"),
                          ("rule tags", {"match": f"{up.url}/v2/", "ttl": "1s",
                                         "stale-if-error": stale_if_error}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    a = pull(arca)
    assert a.status == 200 and a.body == image.manifest.data
    for blob in image.blobs():
        b = v2(arca, f"{NAME}/library/demo/blobs/{blob.digest}")
        assert b.status == 200 and reg.digest_of(b.body) == blob.digest
    return up, image, arca


def pull(arca):
    return v2(arca, f"{NAME}/library/demo/manifests/v1", headers=reg.manifest_headers())


def assert_stale(a, image):
    assert a.status == 200, (a.status, a.body[:300])
    assert a.body == image.manifest.data
    assert a.headers["docker-content-digest"] == image.manifest.digest
    assert a.headers["content-type"] == image.manifest.media_type
    assert "fwd=stale" in a.headers.get("cache-status", ""), a.headers


def test_429_5xx_and_down_answer_the_last_manifest_stale(start_arca, scripted, workdir):
    up, image, arca = pulled_once(start_arca, scripted, workdir, "1h")
    wait_clock(int(time.time()) + 2)
    up.throttled = True
    a = pull(arca)
    assert_stale(a, image)
    assert "fwd-status=429" in a.headers["cache-status"], a.headers
    assert up.count("GET", TAG) + up.count("HEAD", TAG) >= 2  # it did ask, and was refused
    # its layers, pulled before, are digests: served from the cache while the upstream
    # refuses
    for blob in image.blobs():
        b = v2(arca, f"{NAME}/library/demo/blobs/{blob.digest}")
        assert b.status == 200 and reg.digest_of(b.body) == blob.digest
    up.throttled, up.failing = False, 503
    assert_stale(pull(arca), image)
    up.failing = None
    up.go_down()
    assert_stale(pull(arca), image)


def test_past_the_stale_window_an_error_never_the_old_manifest(start_arca, scripted, workdir):
    up, image, arca = pulled_once(start_arca, scripted, workdir, "1s")
    up.go_down()
    wait_clock(int(time.time()) + 4)  # 1 s fresh, 1 s stale, and a second more
    a = pull(arca)
    assert a.status in (502, 503, 504), (a.status, a.body[:300])
    assert a.body != image.manifest.data and a.error_codes(), a.body[:300]
    up.come_up()
    up.throttled = True
    a = pull(arca)
    assert a.status in (429, 502, 503), (a.status, a.body[:300])
    assert a.body != image.manifest.data and a.error_codes(), a.body[:300]


def restarted_while(start_arca, scripted, workdir, stale_if_error, outage):
    """An image pulled through arca, arca stopped, the upstream gone down (or answering 429 to
    everything), arca started again on the same data dir: it knows no challenge and no token,
    and cannot learn them."""
    up, image, arca = pulled_once(start_arca, scripted, workdir, stale_if_error)
    arca.stop()
    if outage == "down":
        up.go_down()
    else:
        up.throttled = True
    arca.start()
    return up, image, arca


@pytest.mark.parametrize("outage", ["down", "429"])
def test_after_a_restart_with_the_upstream_failing_the_kept_tag_answers_stale(
        start_arca, scripted, workdir, outage):
    up, image, arca = restarted_while(start_arca, scripted, workdir, "1h", outage)
    wait_clock(int(time.time()) + 2)  # past the tag's 1 s
    pings = up.gets("/v2/")
    a = pull(arca)
    assert_stale(a, image)
    if outage == "429":
        assert "fwd-status=429" in a.headers["cache-status"], a.headers
        # the request's own ask for its authorisation and its download's are one
        assert up.gets("/v2/") == pings + 1, up.gets("/v2/")
    for blob in image.blobs():
        b = v2(arca, f"{NAME}/library/demo/blobs/{blob.digest}")
        assert b.status == 200 and reg.digest_of(b.body) == blob.digest, (b.status, b.body[:300])
    assert arca.status()["registries"][0]["stale"] >= 1
    # a kept layer asked for another repository still needs the upstream's word, which it
    # cannot give: refused, none of its bytes out
    layer = image.layers[0]
    b = v2(arca, f"{NAME}/library/other/blobs/{layer.digest}")
    assert b.status >= 400 and b.error_codes() and layer.data not in b.body, (b.status, b.body)


def test_after_a_restart_past_the_stale_window_an_error(start_arca, scripted, workdir):
    _, image, arca = restarted_while(start_arca, scripted, workdir, "1s", "down")
    wait_clock(int(time.time()) + 4)  # 1 s fresh, 1 s stale, and a second more
    a = pull(arca)
    assert a.status in (502, 503, 504), (a.status, a.body[:300])
    assert a.body != image.manifest.data and a.error_codes(), a.body[:300]
