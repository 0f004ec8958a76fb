"""A parent's faults at a site (docs/CLUSTER.md "Sites and tiers"): a parent killed mid-body
cuts no client at the site whatever validators the origin gives (none, or a Last-Modified
only, as `python3 -m http.server`), and over-quota URLs, which any client can ask for, never
hold the parent down for the whole site."""

import email.utils
import os
import signal
import threading

import pytest

from conftest import resource, sha256, wait_downloading, wait_for
from tier import access_lines, asked_by_children, full_fetch, parent_row, wait_fallback

MIB = 1 << 20


# --- a parent killed mid-body, the origin without an ETag ------------------------------------


@pytest.mark.parametrize("validators", ["last-modified", "fresh-last-modified", "none"])
def test_a_parent_killed_mid_body_cuts_no_client_without_an_etag(start_tier, origin,
                                                                 validators):
    """The origin gives no ETag (a Last-Modified only; one of this second, as `python3 -m
    http.server` gives a file just written: no validator; or nothing): the parent is SIGKILLed
    while three clients stream from the site. Each client gets the whole object, sha256
    right, never cut; the site's access log says no CUT; its fallback reason is `cut`."""
    parent, (child,) = start_tier(1)
    path = f"/plain/{validators}.img"
    data = os.urandom(6 * MIB)
    kw = {"last-modified": {"last_modified": "Wed, 21 Oct 2015 07:28:00 GMT"},
          "fresh-last-modified": {"last_modified": email.utils.formatdate(usegmt=True)},
          "none": {}}[validators]
    url = origin.add(path, data=data, rate=3 * MIB, **kw)
    results = []

    def client():
        results.append(full_fetch(child, url, timeout=60))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    wait_downloading(child, path, at_least=MIB)
    os.kill(parent.proc.pid, signal.SIGKILL)
    parent.proc.wait()
    for t in threads:
        t.join()
    assert len(results) == 3
    for status, _, body, complete in results:
        assert status == 200 and complete, (status, len(body))
        assert sha256(body) == sha256(data)
    row = wait_fallback(child, "cut")
    assert sum(row["fallbacks"].values()) == 1, row
    assert resource(child, path, "failures") is None
    lines = [a for a in access_lines(child) if a.url == url]
    assert len(lines) == 3 and all(a.result != "CUT" and a.size == len(data) for a in lines), \
        lines
    assert child.metrics()['arca_download_attempts_total{kind="restart"}'] == 0
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
