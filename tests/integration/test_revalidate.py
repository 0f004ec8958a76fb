"""Revalidation (issue 15): an expired object with an ETag or Last-Modified is asked for again
conditionally. 304: it is renewed and no body crosses the uplink; 200: the new body replaces it,
streamed like any miss; concurrent requests share one revalidation."""

import re
import threading
import time

from conftest import resource, sha256, wait_age, without_ttl


def body_gets(origin, path):
    """GETs the origin answered with a body (200 or 206), not 304."""
    return sum(1 for p, h in origin.requests if p == path and "If-None-Match" not in h
               and "If-Modified-Since" not in h)


def conditional_gets(origin, path):
    return [h for p, h in origin.requests
            if p == path and ("If-None-Match" in h or "If-Modified-Since" in h)]


def test_an_unchanged_file_is_renewed_without_its_body(arca, origin):
    data = b"kernel " * 300000
    url = origin.add("/Image", data=data, etag='"k1"')
    assert arca.fetch(url, ttl="1s")[2] == data
    wait_age(arca, "/Image", 1)
    status, headers, body = arca.fetch(url, ttl="1h")
    assert status == 200 and sha256(body) == sha256(data)
    assert origin.bytes_sent["/Image"] == len(data)  # once
    cond = conditional_gets(origin, "/Image")
    assert len(cond) == 1 and cond[0]["If-None-Match"] == '"k1"'
    assert arca.metrics()['arca_revalidations_total{result="unchanged"}'] == 1
    # renewed for the request's ttl (1h): a hit now, nothing asked
    wait_age(arca, "/Image", 1)
    assert arca.fetch(url)[2] == data
    assert len(origin.requests) == 2
    assert headers["etag"] == '"k1"'  # the origin's strong ETag: the object's one validator


def test_last_modified_alone_revalidates(arca, origin):
    data = b"dtb" * 1000
    lm = "Tue, 01 Sep 2026 10:00:00 GMT"
    url = origin.add("/board.dtb", data=data, last_modified=lm)
    assert arca.fetch(url, ttl="1s")[2] == data
    wait_age(arca, "/board.dtb", 1)
    assert arca.fetch(url)[2] == data
    cond = conditional_gets(origin, "/board.dtb")
    assert len(cond) == 1 and cond[0]["If-Modified-Since"] == lm
    assert origin.bytes_sent["/board.dtb"] == len(data)


def test_a_changed_file_replaces_the_cached_one(arca, origin):
    old, new = b"old" * 100000, b"new!" * 120000
    url = origin.add("/rootfs", data=old, etag='"1"')
    assert arca.fetch(url, ttl="1s")[2] == old
    origin.objects["/rootfs"].data, origin.objects["/rootfs"].etag = new, '"2"'
    wait_age(arca, "/rootfs", 1)
    status, _, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(new)
    assert arca.fetch(url)[2] == new  # the new version is cached
    assert origin.bytes_sent["/rootfs"] == len(old) + len(new)
    assert arca.metrics()['arca_revalidations_total{result="changed"}'] == 1


def test_concurrent_requests_share_one_revalidation(arca, origin):
    data = b"fw" * 200000
    url = origin.add("/fw.bin", data=data, etag='"f"')
    assert arca.fetch(url, ttl="1s")[2] == data
    wait_age(arca, "/fw.bin", 1)
    origin.objects["/fw.bin"].stall = 0
    results = []

    def client():
        results.append(arca.fetch(url))

    threads = [threading.Thread(target=client) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s == 200 and b == data for s, _, b in results)
    assert len(conditional_gets(origin, "/fw.bin")) == 1
    assert origin.bytes_sent["/fw.bin"] == len(data)


def test_without_a_validator_the_file_is_downloaded_again(arca, origin):
    data = b"plain" * 1000
    url = origin.add("/plain", data=data)
    assert arca.fetch(url, ttl="1s")[2] == data
    wait_age(arca, "/plain", 1)
    assert arca.fetch(url)[2] == data
    assert conditional_gets(origin, "/plain") == []
    assert origin.bytes_sent["/plain"] == 2 * len(data)


def test_a_revalidation_that_fails_drops_the_object(arca, origin):
    data = b"x" * 5000
    url = origin.add("/gone", data=data, etag='"g"')
    assert arca.fetch(url, ttl="1s")[2] == data
    origin.objects["/gone"].status = 404
    wait_age(arca, "/gone", 1)
    assert arca.fetch(url)[0] == 404
    origin.objects["/gone"].status = 200
    assert arca.fetch(url)[2] == data


def test_a_304_is_counted_and_logged_as_revalidated_not_as_a_miss(arca, origin):
    """Issue 51: a renewal by 304 is its own result (nginx's REVALIDATED): in the access log,
    the status and the metrics; the misses count the downloads only."""
    data = b"initrd " * 20000
    url = origin.add("/initrd", data=data, etag='"i1"')
    assert arca.fetch(url, ttl="1s")[0] == 200
    wait_age(arca, "/initrd", 1)
    status, headers, body = arca.fetch(url, ttl="1h")
    assert status == 200 and body == data
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    assert len(conditional_gets(origin, "/initrd")) == 1
    status = arca.status()
    assert status["statistics_revalidated"] == 1 and status["statistics_hits"] == 0
    metrics = arca.metrics()
    assert metrics['arca_requests_total{result="revalidated"}'] == 1
    assert metrics['arca_requests_total{result="miss"}'] == 1  # the first download alone
    line = re.compile(r'"GET /api/v1/fetch/\?url=\S+ttl=1h HTTP/1.1" 200 %d .* (\w+) \d+\.\d{3}$'
                      % len(data), re.M)
    deadline = time.monotonic() + 5
    while not line.search(arca.read_log()):
        assert time.monotonic() < deadline, arca.read_log()[-2000:]
        time.sleep(0.05)
    assert line.search(arca.read_log()).group(1) == "REVALIDATED"


def test_a_revalidated_object_counts_each_request_once(arca, origin):
    """The listing's usage is the requests an object answered: a request renewed by a 304 is
    one use, not two (the new user's review: the expired copy's count and the renewal's both
    took it)."""
    data = b"dtb " * 5000
    url = origin.add("/board.dtb", data=data, etag='"d1"')
    assert arca.fetch(url, ttl="1s")[0] == 200
    for _ in range(2):
        wait_age(arca, "/board.dtb", 1)
        _, headers, _ = arca.fetch(url, ttl="1s")
        assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    assert arca.fetch(url, ttl="1h")[0] == 200
    assert resource(arca, "/board.dtb")["usage"] == 4
