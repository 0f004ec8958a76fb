"""Upstream faults: an origin that breaks on purpose (statuses, resets, cuts, stalls, ignored
ranges, changed validators) and what clients and the origin see through arca."""

import http.client
import os
import resource
import threading
import time

import pytest

from conftest import read_to_end, sha256

RETRYABLE = [408, 413, 425, 429, 500, 502, 503, 504, 507, 509, 529, 598]


def fetch_all(arca, url):
    """One client streaming the whole download: (status, body, complete)."""
    conn, resp = arca.stream(url)
    body, complete = read_to_end(resp)
    conn.close()
    return resp.status, body, complete


def range_requests(origin, path):
    return [(h.get("Range"), h.get("If-Range")) for p, h in origin.requests if p == path]


def resumed_at(origin, path, at_most, validator, attempt=1):
    """Check that request `attempt` (from 0) resumed with If-Range; a TCP reset may drop bytes
    that were in flight, so the offset can be below the cut. Returns the offset."""
    rng, if_range = range_requests(origin, path)[attempt]
    assert rng.startswith("bytes=") and rng.endswith("-") and if_range == validator
    offset = int(rng[6:-1])
    assert 0 < offset <= at_most
    return offset


def test_every_retryable_status_is_retried(origin, arca):
    data = os.urandom(20000)
    for code in RETRYABLE:
        url = origin.add(f"/s{code}", data=data, faults=[code])
        status, _, body = arca.fetch(url)
        assert status == 200 and sha256(body) == sha256(data), code
        assert origin.counts[f"/s{code}"] == 2, code
    assert arca.metrics()['arca_download_attempts_total{kind="retry"}'] == len(RETRYABLE)


def test_status_then_ok_backs_off(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--retry-delay", "300ms")
    obj_url = origin.add("/busy", data=b"k" * 5000, faults=[503, 503])
    status, _, body = arca.fetch(obj_url)
    assert status == 200 and body == b"k" * 5000
    t = origin.objects["/busy"].started
    assert len(t) == 3
    assert t[1] - t[0] >= 0.25 and t[2] - t[1] >= 0.55, "the delay doubles"


@pytest.mark.parametrize("fault", [("reset", 300000), ("cut", 300000), ("stall", 300000, 3)])
def test_cut_body_is_resumed_seamlessly(origin, start_arca, fault):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stall-timeout", "1s")
    data = os.urandom(1 << 20)
    url = origin.add("/img", data=data, etag='"v1"', faults=[fault], rate=4 << 20)
    status, body, complete = fetch_all(arca, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert range_requests(origin, "/img")[0] == (None, None)
    resumed_at(origin, "/img", 300000, '"v1"')
    assert arca.metrics()['arca_download_attempts_total{kind="resume"}'] == 1
    assert sha256(arca.fetch(url)[2]) == sha256(data) and origin.counts["/img"] == 2


def test_a_resume_longer_than_its_range_fails_the_object(origin, arca):
    # the 206 says bytes 300000-1048575 but sends 1000 bytes more: they must never be written
    data = os.urandom(1 << 20)
    url = origin.add("/long", data=data, etag='"v1"', faults=[("cut", 300000)], overrun=1000,
                     rate=4 << 20)
    status, body, complete = fetch_all(arca, url)
    assert not complete and len(body) < len(data)
    assert arca.log_shows("upstream sent more bytes than its Content-Length")
    assert arca.status()["resources_successes"] == 0


def test_resume_uses_last_modified_without_etag(origin, arca):
    data = os.urandom(400000)
    lm = "Tue, 03 Nov 2026 10:00:00 GMT"
    url = origin.add("/lm", data=data, last_modified=lm, faults=[("cut", 100000)])
    status, body, complete = fetch_all(arca, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert range_requests(origin, "/lm")[1] == ("bytes=100000-", lm)


def test_chunked_body_is_resumed(origin, arca):
    data = os.urandom(600000)
    url = origin.add("/chunks", data=data, chunked=True, chunk=10000, etag='"c"',
                     faults=[("reset", 250000)])
    status, body, complete = fetch_all(arca, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    resumed_at(origin, "/chunks", 250000, '"c"')


def test_range_ignored_after_bytes_were_sent_fails_the_object(origin, arca):
    data = os.urandom(1 << 20)
    url = origin.add("/norange", data=data, etag='"n"', ranges=False, rate=2 << 20,
                     faults=[("cut", 500000)])
    status, body, complete = fetch_all(arca, url)
    assert status == 200 and not complete and len(body) < len(data), \
        "a client already holding bytes must never get a spliced body"
    assert arca.status()["resources_failures"] == 1
    status, _, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data), "the failed object was not kept"


def test_range_ignored_before_any_byte_was_sent_restarts(origin, arca):
    data = os.urandom(300000)
    # one byte written is one byte held back: no client can have it yet
    url = origin.add("/restart", data=data, etag='"r"', ranges=False, faults=[("cut", 1)])
    status, body, complete = fetch_all(arca, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts["/restart"] == 2
    assert arca.metrics()['arca_download_attempts_total{kind="restart"}'] == 1


def test_changed_etag_after_bytes_were_sent_fails_then_serves_new_body(origin, arca):
    old, new = os.urandom(1 << 20), os.urandom(1 << 20)

    def replace(obj, index):
        if index == 1:
            obj.data, obj.etag = new, '"v2"'

    url = origin.add("/moving", data=old, etag='"v1"', rate=2 << 20, on_request=replace,
                     faults=[("reset", 400000)])
    status, body, complete = fetch_all(arca, url)
    assert not complete and body == old[: len(body)], "only bytes of the old body, then a cut"
    resumed_at(origin, "/moving", 400000, '"v1"')
    status, _, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(new)


def test_retries_exhausted_cut_the_stream_and_keep_nothing(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "2")
    data = os.urandom(1 << 20)
    url = origin.add("/flaky", data=data, etag='"f"', rate=4 << 20,
                     faults=[("reset", 100000), ("reset", 100000), ("reset", 100000)])
    status, body, complete = fetch_all(arca, url)
    assert status == 200 and not complete and len(body) < len(data)
    assert origin.counts["/flaky"] == 3
    status, _, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert origin.counts["/flaky"] == 4


def test_coalesced_clients_see_one_seamless_body_across_resumes(origin, arca):
    data = os.urandom(2 << 20)
    url = origin.add("/shared", data=data, etag='"s"', rate=8 << 20,
                     faults=[("reset", 500000), ("cut", 700000)])
    results = [None] * 8

    def client(i):
        results[i] = fetch_all(arca, url)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
        time.sleep(0.03)
    for t in threads:
        t.join()
    for status, body, complete in results:
        assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts["/shared"] == 3


def test_slow_trickle_is_not_a_stall(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stall-timeout", "1s")
    data = os.urandom(60000)
    url = origin.add("/trickle", data=data, rate=25000, chunk=2000)
    status, _, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert origin.counts["/trickle"] == 1


def test_download_timeout_is_final(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-timeout", "1s")
    url = origin.add("/slow", data=os.urandom(200000), rate=50000, chunk=5000)
    status, body, complete = fetch_all(arca, url)
    assert not complete
    assert origin.counts["/slow"] == 1, "a download past its deadline is not retried"
    assert arca.log_shows("download-timeout")


def test_a_retry_due_past_the_deadline_is_not_started(origin, start_arca):
    # the backoff (1.5 s) ends after the deadline (1 s): the retry must not run, let alone run
    # without a timeout (curl takes a timeout of 0 as none)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-timeout", "1s",
                      "--retry-delay", "1500ms")
    data = os.urandom(5000)
    url = origin.add("/late", data=data, faults=[503])
    status, _, body = arca.fetch(url)
    assert status == 504 and b"download-timeout" in body
    assert origin.counts["/late"] == 1, "no attempt starts after the deadline"


def test_object_size_limit(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-object-size", "100K")
    url = origin.add("/big", data=os.urandom(200000))
    status, _, body = arca.fetch(url)
    assert status == 413 and b"max-object-size" in body
    curl = origin.add("/bigchunked", data=os.urandom(200000), chunked=True, chunk=10000)
    status, body, complete = fetch_all(arca, curl)
    # the limit is found mid-body: a client that got headers first sees a cut stream
    assert status == 413 or (status == 200 and not complete and len(body) <= 100 * 1024)
    small = origin.add("/small", data=b"s" * 1000)
    assert arca.fetch(small)[0] == 200


def test_downloads_per_host_wait_their_turn(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-downloads-per-host", "1")
    data = os.urandom(300000)
    urls = [origin.add(f"/q{i}", data=data, rate=1 << 20) for i in range(3)]
    results = {}

    def client(u):
        results[u] = arca.fetch(u)

    threads = [threading.Thread(target=client, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r[0] == 200 and sha256(r[2]) == sha256(data) for r in results.values())
    spans = sorted((origin.objects[f"/q{i}"].started[0], origin.finished_at(f"/q{i}"))
                   for i in range(3))
    for (_, end), (start, _) in zip(spans, spans[1:]):
        # downloads take 0.3 s each; the slack covers the origin thread recording its end late
        assert start >= end - 0.1, "one download at a time from this host"


def test_https_origin_reset_is_resumed(tls_origin, tls_files, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--ca-file", tls_files["ca"])
    data = os.urandom(800000)
    url = tls_origin.add("/tls", data=data, etag='"t"', faults=[503, ("reset", 300000)])
    status, body, complete = fetch_all(arca, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert tls_origin.counts["/tls"] == 3
    resumed_at(tls_origin, "/tls", 300000, '"t"', attempt=2)


def test_a_hit_that_cannot_open_its_file_keeps_the_object(origin, arca):
    data = os.urandom(300000)
    url = origin.add("/kept", data=data)
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=10)
    conn.request("GET", arca.fetch_path(url))
    assert conn.getresponse().read() == data
    pid = arca.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    try:
        # no descriptor left for arca (a new one would be numbered 3 or more): a range hit,
        # which never takes a prepared answer, must open the file
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, hard))
        conn.request("GET", arca.fetch_path(url), headers={"Range": "bytes=0-99"})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 503 and b"Too many open files" in body
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        conn.close()
    status, _, body = arca.fetch(url)
    assert status == 200 and body == data
    assert origin.counts["/kept"] == 1, "a transient open() failure must not evict the object"


def test_unasked_partial_answer_is_not_kept(origin, arca):
    # an origin that answers 206 though nobody asked for a range
    url = origin.add("/part", data=os.urandom(10000), forced_first=5000)
    status, _, body = arca.fetch(url)
    assert status == 502 and b"206" in body
    assert arca.status()["resources_successes"] == 0


def test_bytes_before_a_stall_reach_the_client_while_the_origin_is_silent(origin, start_arca):
    # A client of a running download is sent 64 KiB at a time; the 24 KiB past the first 64
    # must not wait for bytes that do not come: they go out once a hold (20 ms) is over.
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stall-timeout", "60s")
    data = os.urandom(200_000)
    url = origin.add("/pause", data=data, etag='"p"', faults=[("stall", 90_000, 6)],
                     rate=200_000, chunk=8000)
    silent_until = time.monotonic() + 6
    conn, resp = arca.stream(url)
    got = b""
    try:
        while len(got) < 90_000 - 1 and time.monotonic() < silent_until:
            got += resp.read1(65536)  # the last byte written is held back while downloading
        arrived = time.monotonic()
        assert got == data[: len(got)] and len(got) >= 90_000 - 1
        assert arrived < silent_until, "the bytes waited for the origin to speak again"
        rest, complete = read_to_end(resp)
        assert complete and sha256(got + rest) == sha256(data)
    finally:
        conn.close()
