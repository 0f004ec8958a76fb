"""Every error status of the fetch API, each with a one-line reason, and sha256 checks."""

import hashlib
import os
import re
import socket
import threading
import time

from conftest import read_to_end, sha256, wait_age


def one_line(body):
    text = body.decode()
    assert text.endswith("\n") and text.count("\n") == 1 and len(text) > 5, text
    return text


def test_bad_requests_get_400(arca):
    for path in ["/api/v1/fetch/", "/api/v1/fetch/?url=",
                 "/api/v1/fetch/?url=ftp://example.com/x",
                 "/api/v1/fetch/?url=file:///etc/passwd", "/api/v1/fetch/?url=not%20a%20url",
                 "/api/v1/fetch/?url=http:///nohost",
                 "/api/v1/fetch/?url=http://127.0.0.1/x&ttl=5",
                 "/api/v1/fetch/?url=http://127.0.0.1/x&ttl=-1d",
                 "/api/v1/fetch/?url=http://127.0.0.1/x&sha256=abc"]:
        status, _, body = arca.get(path)
        assert status == 400, path
        one_line(body)
    assert arca.metrics()['arca_requests_total{result="error"}'] == 9


def test_unknown_endpoint_and_method(arca):
    assert arca.get("/nope")[0] == 404
    assert arca.get("/api/v1/fetch/?url=http://127.0.0.1/x", method="POST")[0] == 405


def test_upstream_status_is_passed_on_and_not_kept(origin, start_arca):
    # --origin-failures 0: every miss asks upstream again (test_hosts_down.py holds hosts down)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "2",
                      "--origin-failures", "0")
    url404 = origin.url("/missing")
    url500 = origin.add("/broken", status=500)
    status, _, body = arca.fetch(url404)
    assert status == 404 and "404" in one_line(body)
    assert origin.counts["/missing"] == 1, "404 is final: no retry"
    status, _, body = arca.fetch(url500)
    assert status == 500 and "500" in one_line(body)
    assert origin.counts["/broken"] == 3, "500 is retried, twice here"
    assert arca.fetch(url500)[0] == 500
    assert origin.counts["/broken"] == 6, "a failed object is not kept"


# "upstream failed after 3 attempts in 0.2 s: WHY"
FAILED_AFTER = re.compile(r"upstream failed after (\d+) attempts? in (\d+)\.(\d) s: (.*)")


def test_unreachable_upstream_is_502_after_its_attempts(start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    status, _, body = arca.fetch(f"http://127.0.0.1:{port}/x")
    assert status == 502
    said = FAILED_AFTER.fullmatch(one_line(body)[:-1])
    assert said, body
    assert said[1] == "3"  # the first attempt and 2 retries
    assert said[4].startswith("upstream unreachable: ")


def test_a_host_that_does_not_resolve_fails_at_once(arca):
    # Under the special-use domain "invalid." (RFC 6761): arca answers it without a resolver,
    # so nothing leaves the machine, and a name that does not resolve is never retried.
    started = time.monotonic()
    status, _, body = arca.fetch("http://no-such-host.invalid:8080/x")
    took = time.monotonic() - started
    assert status == 502
    said = FAILED_AFTER.fullmatch(one_line(body)[:-1])
    assert said, body
    assert said[1] == "1" and said[4] == "cannot resolve host no-such-host.invalid"
    assert took < 2, "no retries, no backoff"
    assert arca.metrics()['arca_download_attempts_total{kind="retry"}'] == 0


def test_retryable_status_failure_says_attempts_and_time(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--retry-delay", "200ms",
                      "--download-retries", "2")
    url = origin.add("/busy", status=503)
    status, _, body = arca.fetch(url)
    assert status == 503
    said = FAILED_AFTER.fullmatch(one_line(body)[:-1])
    assert said, body
    # backoffs of 200 ms then 400 ms lie between the three attempts
    assert said[1] == "3" and float(f"{said[2]}.{said[3]}") >= 0.6
    assert said[4] == "upstream answered 503"
    assert origin.counts["/busy"] == 3


def test_tls_verification_failure_is_502(tls_origin, arca):
    # arca was started without --ca-file: the test CA is not trusted
    url = tls_origin.add("/secret", data=b"x" * 100)
    status, _, body = arca.fetch(url)
    assert status == 502 and "TLS" in one_line(body)


def test_silent_upstream_times_out_with_504(origin, start_arca):
    url = origin.add("/stall", stall=4)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stall-timeout", "1s",
                      "--download-retries", "1")
    t0 = time.monotonic()
    status, _, body = arca.fetch(url)
    assert status == 504 and "timed out" in one_line(body)
    assert origin.counts["/stall"] == 2, "a stall is retried"
    assert time.monotonic() - t0 < 3.5


def test_truncated_body_is_cut_and_not_kept(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "0")
    data = os.urandom(1024 * 1024)
    url = origin.add("/trunc", data=data, truncate_at=300000)
    conn, resp = arca.stream(url)
    got, complete = read_to_end(resp)
    conn.close()
    assert not complete or resp.status != 200
    assert len(got) < len(data), "a truncated download never looks complete"
    status, _, body = arca.fetch(url)
    assert status in (200, 504)
    assert len(body) < len(data)
    assert origin.counts["/trunc"] == 2
    assert arca.status()["resources_successes"] == 0


def test_chunked_truncated_body_gets_no_final_chunk(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "0")
    data = os.urandom(500000)
    url = origin.add("/ctrunc", data=data, chunked=True, truncate_at=200000, chunk=10000,
                     rate=400000)  # the client is streaming when the origin breaks off
    conn, resp = arca.stream(url)
    assert resp.status == 200 and resp.getheader("transfer-encoding") == "chunked"
    _, complete = read_to_end(resp)
    conn.close()
    assert not complete, "the chunked stream must end without its final chunk"
    assert origin.counts["/ctrunc"] == 1
    assert arca.fetch(url)[0] in (200, 504)
    assert origin.counts["/ctrunc"] == 2, "the truncated object was not kept"


def test_object_larger_than_quota_is_507(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "1M")
    url = origin.add("/huge", data=os.urandom(2 * 1024 * 1024))
    status, _, body = arca.fetch(url)
    assert status == 507 and "quota" in one_line(body)
    assert arca.status()["disk_usage"] == 0


def test_chunked_object_crossing_quota_is_cut_and_not_kept(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "1M")
    data = os.urandom(3 * 1024 * 1024)
    url = origin.add("/growing", data=data, chunked=True, chunk=65536, rate=4 * 1024 * 1024)
    conn, resp = arca.stream(url)
    assert resp.status == 200  # streaming had begun when the quota was crossed
    _, complete = read_to_end(resp)
    conn.close()
    assert not complete
    deadline = time.monotonic() + 5
    while arca.status()["disk_usage"] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert arca.status()["disk_usage"] == 0
    assert arca.status()["resources_successes"] == 0


def use_a_b_c_then_a(arca, origin):
    """Three 1 MiB objects fetched a second apart, then /a again: /b is the least recently used.
    Returns their bodies."""
    blobs = {p: os.urandom(1024 * 1024) for p in ["/a", "/b", "/c"]}
    for p, d in blobs.items():
        origin.add(p, data=d)
        assert arca.fetch(origin.url(p))[0] == 200
        wait_age(arca, p, 1, field="last_usage")  # distinct last-use seconds
    assert arca.fetch(origin.url("/a"))[0] == 200
    return blobs


def assert_d_evicts_only_b(arca, origin, blobs):
    origin.add("/d", data=os.urandom(1024 * 1024))
    assert arca.fetch(origin.url("/d"))[0] == 200
    for p in ["/a", "/c"]:
        assert arca.fetch(origin.url(p))[2] == blobs[p]
    assert origin.counts["/a"] == 1 and origin.counts["/c"] == 1
    assert arca.fetch(origin.url("/b"))[2] == blobs["/b"]
    assert origin.counts["/b"] == 2, "/b was evicted"


def test_quota_evicts_least_recently_used(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "3M")
    blobs = use_a_b_c_then_a(arca, origin)
    assert_d_evicts_only_b(arca, origin, blobs)


def test_least_recently_used_order_survives_a_restart(origin, start_arca):
    first = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "3M")
    blobs = use_a_b_c_then_a(first, origin)
    assert first.stop() == 0
    # the index holds the rows in download order (/a first): the restart must order them by use
    second = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "3M",
                        data_dir=first.data_dir)
    assert_d_evicts_only_b(second, origin, blobs)


def test_sha256_match_is_kept(origin, arca):
    data = os.urandom(200000)
    url = origin.add("/good", data=data)
    status, _, body = arca.fetch(url, sha256=sha256(data))
    assert status == 200 and body == data
    assert arca.fetch(url, sha256=sha256(data))[2] == data
    assert origin.counts["/good"] == 1


def test_sha256_mismatch_never_delivers_a_complete_body(origin, arca):
    data = os.urandom(200000)
    url = origin.add("/bad", data=data)
    wrong = hashlib.sha256(b"something else").hexdigest()
    conn, resp = arca.stream(url, sha256=wrong)
    body, complete = read_to_end(resp)
    conn.close()
    assert not (complete and resp.status == 200 and body == data), \
        "a body failing its sha256 must not arrive complete"
    status, _, body = arca.fetch(url, sha256=wrong)
    assert status == 502 and b"sha256" in body, "now complete: refused before the headers"
    # the digest was the request's, not the object's: the body is kept and served to others
    assert arca.fetch(url)[2] == data and origin.counts["/bad"] == 1


def test_hit_with_different_sha256_is_502(origin, arca):
    data = os.urandom(1000)
    url = origin.add("/pinned", data=data)
    assert arca.fetch(url)[0] == 200
    status, _, body = arca.fetch(url, sha256=hashlib.sha256(b"other").hexdigest())
    assert status == 502 and "sha256" in one_line(body)


def test_waiting_clients_all_see_the_failure(origin, arca):
    url = origin.add("/late404", status=404)
    results = []

    def client():
        results.append(arca.fetch(url)[0])

    threads = [threading.Thread(target=client) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [404] * 5


def test_a_mirror_whose_name_does_not_resolve_is_passed_over_at_once(origin, start_arca):
    # the mirror's probe is answered like a download: no resolver, no wait
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--mirror",
                      f"^http://127\\.0\\.0\\.1:{origin.port}/pub/=http://mirror.invalid/pub/")
    url = origin.add("/pub/a.img", data=b"a" * 1000)
    started = time.monotonic()
    status, _, body = arca.fetch(url)
    assert status == 200 and body == b"a" * 1000
    assert time.monotonic() - started < 2
    assert origin.counts["/pub/a.img"] == 1
    assert arca.log_shows("cannot resolve host mirror.invalid")


def test_an_outage_reads_the_same_for_a_cached_signed_url(start_arca, origin):
    """A confirmation is asked like a download (its attempts, their backoff): with the origin
    answering 503, then stopped, a cached object's refused confirmation and an uncached URL's
    download give the same status, Cache-Status, length and words; only the time may differ."""
    from test_signed import add_signed, check_signature, s3_url

    # every attempt goes: the host is never held down here (test_hosts_down.py: once it is)
    arca = start_arca("--upstream-allow", "127.0.0.1/32", "--retry-delay", "10ms",
                      "--origin-failures", "0")
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    origin.add("/bucket/other", data=b"x" * 1000, check=check_signature("/bucket/other"))
    seen = lambda r: (r[0], r[1].get("cache-status"), r[1].get("content-length"),
                      re.sub(rb"(after|in) [0-9.]+ m?s", rb"\1 T", r[2]))
    for path in origin.objects:
        origin.objects[path].check = lambda query: 503
    cached = arca.fetch(s3_url(origin, nonce="n1"))
    uncached = arca.fetch(s3_url(origin, "/bucket/other", nonce="n1"))
    assert seen(cached) == seen(uncached), (cached, uncached)
    assert cached[0] == 503 and re.fullmatch(
        rb"upstream failed after 5 attempts in [0-9.]+ s: upstream answered 503\n", cached[2])
    origin.die()
    cached = arca.fetch(s3_url(origin, nonce="n2"))
    uncached = arca.fetch(s3_url(origin, "/bucket/other", nonce="n2"))
    assert seen(cached) == seen(uncached), (cached, uncached)
    assert cached[0] == 502 and cached[2].startswith(b"upstream failed after 5 attempts in ")
