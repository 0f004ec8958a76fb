"""Attack (issue 67): the expired copy a refresh replaces, purged, then kill -9 right after the
purge's answer: the next start neither lists nor answers it, and its file goes."""

import concurrent.futures
import json
import os
import signal
import threading
import time

from conftest import Arca, wait_for
from test_purge_prefix import purge_prefix
from test_purge_trust import OLD, expired, gated, ini


def objects_on_disk(workdir):
    out = []
    for root, _, names in os.walk(os.path.join(workdir, "data", "objects")):
        out += names
    return out


def test_kill_9_after_purging_a_refreshed_copy_brings_nothing_back(workdir, origin):
    config = ini(workdir, "stale-if-error = 1h", "origin-failures = 0")
    arca = Arca(workdir, ["--config", config]).start()
    url = origin.add("/nightly/Image", data=OLD, etag='"v1"')
    t0 = time.monotonic()
    assert arca.fetch(url, ttl="1s")[2] == OLD
    expired(t0, 1)
    gate = threading.Event()
    gated(origin, "/nightly/Image", gate, status=503)
    concurrent.futures.ThreadPoolExecutor(1).submit(arca.fetch, url, ttl="1s")
    wait_for(lambda: origin.counts["/nightly/Image"] == 2, "the refresh asked upstream")
    code, _, body = purge_prefix(arca, origin.url("/nightly/"))
    arca.proc.send_signal(signal.SIGKILL)
    arca.proc.wait(10)
    gate.set()
    assert code == 200 and json.loads(body)["purged"] == 1, body
    again = Arca(workdir, ["--config", config]).start()
    try:
        assert again.status()["resources_successes"] == 0
        status, _, got = again.fetch(url, ttl="1s")
        assert status == 503 and got != OLD, status
        wait_for(lambda: objects_on_disk(workdir) == [], "the purged copy's file removed")
    finally:
        again.stop()
