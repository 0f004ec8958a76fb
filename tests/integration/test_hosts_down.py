"""A dead host is known, not rediscovered by every request (issue 43, docs/CACHING.md "When the
origin is down"): after --origin-failures failed attempts in a row, cold misses for the host fail
at once with 503, Retry-After and a reason naming it; one probe at a time tries it again, and the
first answer clears it. Other hosts are never slowed."""

import os
import re
import time

from conftest import Origin, sha256, wait_age
from test_cli import cli, server

FAST = ("--upstream-allow", "127.0.0.0/8", "--retry-delay", "50ms")


def held_down(arca, origin, path="/first"):
    """Make origin's host fail (a reset to every request) until arca holds it down."""
    for p in ("/first",) + tuple(f"/x{i}" for i in range(20)):
        origin.add(p, data=b"x", abort=True)
    status, headers, body = arca.fetch(origin.url(path))
    assert status in (502, 503), (status, body)
    deadline = time.monotonic() + 10
    while arca.status()["upstream_hosts_down"] != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert arca.status()["upstream_hosts_down"] == 1


def test_cold_misses_for_a_dead_host_fail_at_once_and_say_why(start_arca, origin):
    arca = start_arca(*FAST)
    held_down(arca, origin)
    before = sum(origin.counts.values())
    answers = [arca.fetch(origin.url(f"/x{i}")) for i in range(20)]
    asked = sum(origin.counts.values()) - before
    for status, headers, body in answers:
        assert status == 503
        assert int(headers["retry-after"]) >= 1
        reason = body.decode()
        assert f"upstream host http://127.0.0.1:{origin.port} is down since" in reason
        assert re.search(r"\(\d+ failures in a row\)", reason), reason
    # a probe at most once a second (then less often): not one request per miss
    assert asked <= 3, f"{asked} requests reached the dead host for 20 misses"
    assert arca.metrics()["arca_upstream_hosts_down"] == 1
    assert arca.metrics()["arca_held_down_failures_total"] >= 17
    # what the status shows: the host, since when, how many failures
    (down,) = arca.status()["upstream_hosts_down_list"]
    assert down["host"] == f"http://127.0.0.1:{origin.port}" and down["failures"] >= 3
    out = cli("status", *server(arca))
    assert "1 host held down" in out.stdout and f"127.0.0.1:{origin.port} down since" in out.stdout
    page = arca.get("/statistics/")[2].decode()
    assert 'id="hosts-down"' in page and f"http://127.0.0.1:{origin.port}" in page


def test_other_hosts_are_never_slowed(start_arca, origin):
    arca = start_arca(*FAST)
    held_down(arca, origin)
    other = Origin()
    try:
        data = os.urandom(100_000)
        status, headers, body = arca.fetch(other.add("/ok", data=data))
        assert status == 200 and sha256(body) == sha256(data)
        assert arca.status()["upstream_hosts_down"] == 1
    finally:
        other.stop()


def test_the_first_answer_clears_the_host(start_arca, origin):
    arca = start_arca(*FAST)
    held_down(arca, origin)
    data = os.urandom(10_000)
    origin.add("/back", data=data)
    for p in list(origin.objects):
        origin.objects[p].abort = False
    # the probe is due within a few seconds (1 s, doubling): until it has gone, misses fail
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, body = arca.fetch(origin.url("/back"))
        if status == 200:
            break
        assert status == 503
        time.sleep(0.3)
    assert status == 200 and body == data
    assert arca.status()["upstream_hosts_down"] == 0
    assert arca.fetch(origin.url("/x1"))[0] == 200  # no longer refused at once


def test_an_expired_object_of_a_dead_host_answers_stale_at_once(start_arca, origin):
    arca = start_arca(*FAST)
    data = os.urandom(50_000)
    url = origin.add("/kernel", data=data, etag='"k"')
    assert arca.fetch(url, ttl="2s")[0] == 200
    held_down(arca, origin)
    wait_age(arca, "/kernel", 2)
    origin.objects["/kernel"].abort = True
    before = origin.counts["/kernel"]
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert "fwd=stale" in headers["cache-status"]
    assert origin.counts["/kernel"] - before <= 1  # at most the host's probe


def test_origin_failures_zero_never_holds_a_host(start_arca, origin):
    arca = start_arca(*FAST, "--origin-failures", "0")
    for p in ("/a", "/b"):
        origin.add(p, data=b"x", abort=True)
    for p in ("/a", "/b"):
        assert arca.fetch(origin.url(p))[0] == 502
    assert arca.status()["upstream_hosts_down"] == 0
    assert origin.counts["/b"] == 5  # every attempt went: 1 and --download-retries 4


def test_a_held_down_host_reads_the_same_for_a_cached_signed_url(start_arca, origin):
    """A signed URL's confirmation to a host held down fails at once as an uncached URL's miss
    does: same status, Retry-After, Cache-Status and words, so the answer tells nothing of what
    is cached (and no stale copy goes to a URL upstream never accepted)."""
    from test_signed import add_signed, check_signature, s3_url

    arca = start_arca(*FAST, "--confirm-ttl", "1s")
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    origin.add("/bucket/other", data=b"x" * 1000, check=check_signature("/bucket/other"))
    held_down(arca, origin)
    seen = lambda r: (r[0], r[1].get("cache-status"), r[1].get("retry-after") is not None,
                      re.sub(rb"in [0-9]+ s", b"in T s", r[2]))
    cached = arca.fetch(s3_url(origin, nonce="n1"))
    uncached = arca.fetch(s3_url(origin, "/bucket/other", nonce="n1"))
    assert seen(cached) == seen(uncached), (cached, uncached)
    assert cached[0] == 503 and sha256(cached[2]) != sha256(data)


def test_a_broken_url_answering_500_never_holds_its_host_down(start_arca, origin):
    # any client could ask for it: a 500 is one URL's trouble, not the host's
    arca = start_arca(*FAST)
    origin.add("/broken", status=500)
    for _ in range(3):
        assert arca.fetch(origin.url("/broken"))[0] == 500
    assert arca.status()["upstream_hosts_down"] == 0
    data = os.urandom(5_000)
    assert arca.fetch(origin.add("/fine", data=data))[2] == data


def test_the_download_that_finds_a_host_dead_stops_there(start_arca, origin):
    # default --retry-delay 1s: attempts at 0, 1 and 3 s hold the host down; the download ends
    # there with its own failure, instead of two more attempts (and a probe) up to 15 s
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    url = origin.add("/dead", data=b"x", abort=True)
    began = time.monotonic()
    status, _, body = arca.fetch(url)
    took = time.monotonic() - began
    assert status == 502 and b"after 3 attempts" in body, body
    assert origin.counts["/dead"] == 3
    assert took < 8, f"{took:.1f} s"
    assert arca.status()["upstream_hosts_down"] == 1


def test_a_route_answering_502_never_holds_its_host_down(start_arca, origin):
    # the outside review's attack: one request for such a route made 5 failed attempts and held
    # the host down; then a request a second won every probe. An answer is one URL's word.
    arca = start_arca(*FAST)
    origin.add("/broken-route", data=b"", status=502)
    for _ in range(5):
        assert arca.fetch(origin.url("/broken-route"))[0] == 502
    assert arca.status()["upstream_hosts_down"] == 0
    data = os.urandom(5_000)
    assert arca.fetch(origin.add("/fine", data=data))[2] == data
