"""Attack (issue 67): stale-while-revalidate answers an expired copy at once while its refresh
runs; a purge during that refresh must stop it answering."""

import concurrent.futures
import json
import threading
import time

from conftest import Arca, wait_for
from test_purge_prefix import purge_prefix
from test_purge_trust import NEW, OLD, expired, gated, ini, joining


def test_a_purge_stops_stale_while_revalidate_answering_the_purged_copy(workdir, origin):
    config = ini(workdir, "stale-while-revalidate = 1h", "origin-failures = 0")
    arca = Arca(workdir, ["--config", config]).start()
    url = origin.add("/nightly/Image", data=OLD)
    t0 = time.monotonic()
    assert arca.fetch(url, ttl="1s")[2] == OLD
    expired(t0, 1)
    gate = threading.Event()
    gated(origin, "/nightly/Image", gate, data=NEW)
    status, headers, got = arca.fetch(url, ttl="1s")
    assert got == OLD and "stale-while-revalidate" in headers["cache-status"], headers
    wait_for(lambda: origin.counts["/nightly/Image"] == 2, "the refresh asked upstream")
    code, _, body = purge_prefix(arca, origin.url("/nightly/"))
    assert code == 200 and json.loads(body)["purged"] == 1, body
    late = joining(arca, arca.fetch, url, ttl="1s")
    gate.set()
    status, headers, got = late.result(30)
    assert got == NEW, headers
    arca.stop()
