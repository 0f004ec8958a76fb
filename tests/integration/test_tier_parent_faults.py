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
from rawparent import RawParent
from tier import (access_lines, asked_by_children, fallbacks, full_fetch, parent_row,
                  wait_fallback)

MIB = 1 << 20


# --- a parent killed mid-body, the origin without an ETag ------------------------------------


@pytest.mark.parametrize("validators", ["last-modified", "fresh-last-modified", "none",
                                        "none-chunked"])
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
          "none": {}, "none-chunked": {"chunked": True}}[validators]
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


# --- over-quota URLs never hold the parent down ----------------------------------------------


@pytest.mark.parametrize("limit", ["--quota", "--max-object-size"])
def test_urls_too_large_for_the_parent_never_hold_it_down(start_tier, origin, limit):
    """Five URLs whose length is above the parent's --quota (its 507) or --max-object-size
    (its 413): each is the URL's, said so by the parent's Cache-Status (detail=too-large).
    The site serves them from the origin, and the parent stays up: the next, normal download
    goes through it."""
    parent, (child,) = start_tier(1, parent_args=(limit, "1M"))
    for n in range(5):
        path = f"/big/{n}.img"
        data = os.urandom(2 * MIB)
        url = origin.add(path, data=data)
        status, _, body, complete = full_fetch(child, url)
        assert status == 200 and complete and sha256(body) == sha256(data), (n, status)
        assert origin.counts[path] == 2, "asked by the parent, then by the site"
    # the parent says why: the object is too large for it, not a disk of its failing
    status, headers, _ = parent.fetch(origin.url("/big/0.img"))
    assert status == (507 if limit == "--quota" else 413)
    assert headers["cache-status"] == "arca; fwd=uri-miss; detail=too-large", headers
    asked = asked_by_children(parent, at_least=5)
    assert [a.status for a in asked] == [507 if limit == "--quota" else 413] * 5, asked
    row = parent_row(child)
    assert row["state"] == "up" and row["failures"] == 0, row
    assert row["fallbacks"]["status"] == 5 and row["fallbacks"]["down"] == 0, row
    data = os.urandom(100_000)
    url = origin.add("/small/fw.bin", data=data)
    status, _, body, complete = full_fetch(child, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert len(asked_by_children(parent, url, at_least=1)) == 1
    assert origin.counts["/small/fw.bin"] == 1
    assert parent_row(child)["requests"] == 1


def test_a_parent_that_sent_more_than_the_origin_has_is_never_kept(origin, start_arca):
    """No length known (a chunked origin, no validator): a parent sends more bytes than the
    origin's whole body, then breaks off. The origin's body ends before the parent's bytes all
    came again: they go, and the object is the origin's alone (a client streaming the parent's
    copy is cut; asked again, it gets the origin's bytes), never the parent's longer body."""
    data = os.urandom(256 * 1024)
    url = origin.add("/plain/short.img", data=data, chunked=True)
    lie = data + os.urandom(256 * 1024)
    head = (b"HTTP/1.1 200 X\r\nContent-Type: application/octet-stream\r\n"
            b"Cache-Status: arca; fwd=uri-miss; ttl=3600\r\nTransfer-Encoding: chunked\r\n\r\n")
    p = RawParent(lambda t, h, i: [head, b"%x\r\n%s\r\n" % (len(lie), lie), 0.3])
    try:
        child = start_arca("--upstream-allow", "127.0.0.0/8", "--parent", p.base, name="child")
        status, _, body, complete = full_fetch(child, url, timeout=30)
        if not complete:
            assert len(body) <= len(lie)
            status, _, body, complete = full_fetch(child, url, timeout=30)
        assert status == 200 and complete and sha256(body) == sha256(data)
        assert fallbacks(child).get("cut") == 1 and origin.counts["/plain/short.img"] == 2
        assert child.log_shows("the bytes its parent sent are not the origin's")
        status, _, body = child.fetch(url)
        assert status == 200 and sha256(body) == sha256(data)
    finally:
        p.stop()
