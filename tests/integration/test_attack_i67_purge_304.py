"""Attack (issue 67): a purge during the refresh of an expired copy, the refresh then answered 304
by the origin: the admin purged the copy (a bad release the origin replaced under the same
ETag, or a copy damaged here), and the purge's answer promised its bytes are not answered again
(API.md "Purge by prefix": purged "as a complete object is"). A client that asks after the purge
joins the refresh, whose If-None-Match carries the purged copy's validator: the 304 hands it the
purged bytes. A purged complete object would have been fetched whole (200, the new bytes)."""

import concurrent.futures
import json
import os
import threading
import time

from conftest import Arca, resource, wait_for
from test_purge_prefix import purge_prefix
from test_purge_trust import NEW, OLD, expired, gated, ini, joining


def files(workdir):
    out = []
    for root, _, names in os.walk(workdir):
        out += [os.path.join(root, n) for n in names if "objects" in root]
    return out


def test_a_304_after_a_purge_does_not_bring_back_the_purged_copy(workdir, origin):
    config = ini(workdir, "stale-if-error = 1h", "origin-failures = 0")
    arca = Arca(workdir, ["--config", config]).start()
    url = origin.add("/nightly/Image", data=OLD, etag='"v1"')
    t0 = time.monotonic()
    assert arca.fetch(url, ttl="1s")[2] == OLD
    expired(t0, 1)
    gate = threading.Event()
    gated(origin, "/nightly/Image", gate, data=NEW, etag='"v1"')  # same ETag, fixed bytes
    first = concurrent.futures.ThreadPoolExecutor(1).submit(arca.fetch, url, ttl="1s")
    wait_for(lambda: origin.counts["/nightly/Image"] == 2, "the refresh asked upstream")
    code, _, body = purge_prefix(arca, origin.url("/nightly/"))
    assert code == 200 and json.loads(body)["purged"] == 1, body
    late = joining(arca, arca.fetch, url, ttl="1s")
    wait_for(lambda: (resource(arca, "/nightly/Image", "downloading") or {}).get("usage", 0) >= 2,
             "the late client joined the refresh")  # see the test below
    gate.set()
    status, headers, got = late.result(30)
    first.result(30)
    wait_for(lambda: arca.status()["resources_downloading"] == 0, "the refresh ended")
    assert origin.counts["/nightly/Image"] == 3, "the refresh was not asked again whole"
    # the client that came after the purge's answer is not handed the purged bytes
    assert got == NEW, (status, headers["cache-status"], got[:16])
    # nothing of the purged copy is left: not in the table, not on disk, not after a restart
    assert arca.status()["resources_successes"] == 0
    assert arca.stop() == 0
    assert files(workdir) == []
    again = Arca(workdir, ["--config", config]).start()
    assert again.status()["resources_successes"] == 0
    again.stop()


def test_a_200_refresh_after_a_purge_leaves_nothing_of_either_copy(workdir, origin):
    config = ini(workdir, "stale-if-error = 1h", "origin-failures = 0")
    arca = Arca(workdir, ["--config", config]).start()
    url = origin.add("/nightly/Image", data=OLD, etag='"v1"')
    t0 = time.monotonic()
    assert arca.fetch(url, ttl="1s")[2] == OLD
    expired(t0, 1)
    gate = threading.Event()
    gated(origin, "/nightly/Image", gate, data=NEW, etag='"v2"')
    first = concurrent.futures.ThreadPoolExecutor(1).submit(arca.fetch, url, ttl="1s")
    wait_for(lambda: origin.counts["/nightly/Image"] == 2, "the refresh asked upstream")
    code, _, body = purge_prefix(arca, origin.url("/nightly/"))
    assert code == 200 and json.loads(body)["purged"] == 1, body
    late = joining(arca, arca.fetch, url, ttl="1s")
    # joined once its request is a use of the download (a connection accepted is not yet one:
    # released before, the download ends alone and the late client's miss keeps a new copy)
    wait_for(lambda: (resource(arca, "/nightly/Image", "downloading") or {}).get("usage", 0) >= 2,
             "the late client joined the refresh")
    gate.set()
    assert late.result(30)[2] == NEW and first.result(30)[2] == NEW
    wait_for(lambda: arca.status()["resources_downloading"] == 0, "the refresh ended")
    assert arca.status()["resources_successes"] == 0
    assert arca.stop() == 0
    assert files(workdir) == []
