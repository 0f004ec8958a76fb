"""Fetching: cold, hit, fan-out to concurrent clients, late joiners, aborts, HEAD, ranges."""

import base64
import hashlib
import os
import threading
import time

import pytest

from conftest import sha256, wait_age, wait_downloading


def test_cold_fetch_over_https_then_hit(tls_origin, tls_files, start_arca):
    data = os.urandom(3 * 1024 * 1024 + 17)
    url = tls_origin.add("/Image", data=data, content_type="application/x-kernel")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--ca-file", tls_files["ca"])

    status, headers, body = arca.fetch(url)
    assert status == 200
    assert sha256(body) == sha256(data)
    assert headers["content-type"] == "application/x-kernel"
    assert headers["content-length"] == str(len(data))

    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert headers["repr-digest"] == f"sha-256=:{digest}:"
    assert tls_origin.counts["/Image"] == 1


def test_fetch_without_trailing_slash_and_filename(origin, arca):
    url = origin.add("/dtb", data=b"dtb-bytes" * 100)
    status, _, body = arca.get(arca.fetch_path(url).replace("/fetch/?", "/fetch?"))
    assert status == 200 and body == b"dtb-bytes" * 100
    status, headers, body = arca.fetch(url, filename="board.dtb")
    assert status == 200 and body == b"dtb-bytes" * 100
    assert headers["content-disposition"] == "attachment; filename=board.dtb"
    assert origin.counts["/dtb"] == 1


def test_filename_with_quotes_cannot_break_the_header(origin, arca):
    url = origin.add("/f", data=b"x")
    status, headers, _ = arca.fetch(url, filename='a"b%0d%0aX-Evil:%201')
    assert status == 200
    assert "x-evil" not in headers
    # quotes and control bytes are stripped from the name, which is then quoted (a blank)
    assert headers["content-disposition"] == 'attachment; filename="abX-Evil: 1"'


def read_stream(arca, url, results, i, first_byte_at):
    conn, resp = arca.stream(url)
    first = resp.read(1)
    first_byte_at[i] = time.monotonic()
    results[i] = (resp.status, first + resp.read())
    conn.close()


def test_twenty_concurrent_cold_clients_share_one_download(origin, arca):
    data = os.urandom(4 * 1024 * 1024)
    url = origin.add("/rootfs", data=data, rate=2 * 1024 * 1024)  # about 2 s
    results, first = [None] * 20, [None] * 20
    threads = [threading.Thread(target=read_stream, args=(arca, url, results, i, first))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert origin.counts["/rootfs"] == 1
    for status, body in results:
        assert status == 200 and sha256(body) == sha256(data)
    origin_done = origin.finished_at("/rootfs")
    assert max(first) < origin_done, "every client got bytes before the origin finished"
    m = arca.metrics()
    assert m['arca_requests_total{result="miss"}'] == 1
    assert m['arca_requests_total{result="coalesced"}'] == 19


def test_late_joiner_gets_disk_then_tail(origin, arca):
    data = os.urandom(2 * 1024 * 1024)
    url = origin.add("/late", data=data, rate=1024 * 1024)
    results, first = [None] * 2, [None] * 2
    t0 = threading.Thread(target=read_stream, args=(arca, url, results, 0, first))
    t0.start()
    wait_downloading(arca, "/late", len(data) // 2)  # about half is on disk
    t1 = threading.Thread(target=read_stream, args=(arca, url, results, 1, first))
    t1.start()
    t0.join(60)
    t1.join(60)
    assert [r[0] for r in results] == [200, 200]
    assert all(sha256(r[1]) == sha256(data) for r in results)
    assert origin.counts["/late"] == 1


def test_client_abort_does_not_cancel_the_download(origin, arca):
    data = os.urandom(2 * 1024 * 1024)
    url = origin.add("/abort", data=data, rate=2 * 1024 * 1024)
    conn, resp = arca.stream(url)
    assert resp.status == 200
    resp.read(1000)
    conn.close()  # the board rebooted
    deadline = time.monotonic() + 20
    while arca.status()["resources_successes"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    status, _, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert origin.counts["/abort"] == 1


def test_head_gives_headers_only(origin, arca):
    data = os.urandom(100000)
    url = origin.add("/head", data=data, content_type="text/plain")
    status, headers, body = arca.fetch(url, method="HEAD")  # cold
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "text/plain"
    status, headers, _ = arca.fetch(url, method="HEAD")  # hit
    assert status == 200 and headers["content-length"] == str(len(data))
    status, _, body = arca.fetch(url)
    assert status == 200 and body == data
    assert origin.counts["/head"] == 1


def test_ranges_on_a_finished_object(origin, arca):
    data = os.urandom(10000)
    url = origin.add("/r", data=data)
    assert arca.fetch(url)[0] == 200
    cases = {"bytes=0-99": (0, 99), "bytes=9990-": (9990, 9999), "bytes=-10": (9990, 9999),
             "bytes=5000-20000": (5000, 9999)}
    for rng, (a, b) in cases.items():
        status, headers, body = arca.fetch(url, headers={"Range": rng})
        assert status == 206, rng
        assert headers["content-range"] == f"bytes {a}-{b}/10000"
        assert body == data[a : b + 1]
    status, headers, _ = arca.fetch(url, headers={"Range": "bytes=10000-"})
    assert status == 416 and headers["content-range"] == "bytes */10000"
    assert origin.counts["/r"] == 1


def test_range_on_an_object_still_downloading(origin, arca):
    data = os.urandom(3 * 1024 * 1024)
    url = origin.add("/rif", data=data, rate=1024 * 1024)
    results, first = [None], [None]
    t = threading.Thread(target=read_stream, args=(arca, url, results, 0, first))
    t.start()
    wait_downloading(arca, "/rif")
    # bytes near the end are not downloaded yet: the range waits for them
    status, headers, body = arca.fetch(url, headers={"Range": "bytes=3000000-3000099"})
    assert status == 206
    assert headers["content-range"] == f"bytes 3000000-3000099/{len(data)}"
    assert body == data[3000000:3000100]
    range_done = time.monotonic()
    t.join(60)
    assert range_done < origin.finished_at("/rif"), "served while still downloading"
    assert results[0][0] == 200 and sha256(results[0][1]) == sha256(data)
    assert origin.counts["/rif"] == 1


# sent from the file; large, by sendfile (auto, without a TLS listener) and from a mapping (mmap)
@pytest.mark.parametrize("size,mode", [(5000, "auto"), (2 * 1024 * 1024, "auto"),
                                       (2 * 1024 * 1024, "mmap")])
def test_repeated_hits_and_their_variants(origin, start_arca, size, mode):
    """Plain hits share one prepared answer; ranges, filenames, HEAD and a replaced object still
    get answers of their own."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--send-mode", mode)
    old, new = os.urandom(size), os.urandom(size)
    url = origin.add("/hot", data=old)
    assert arca.fetch(url, ttl="2s")[2] == old  # cold
    for _ in range(3):  # hits within the second (a small object) or from the second hit on
        # (a large one) share a prepared answer; the others are answered from the file
        status, headers, body = arca.fetch(url)
        assert status == 200 and body == old and headers["content-length"] == str(size)
    status, headers, body = arca.fetch(url, headers={"Range": "bytes=10-19"})
    assert status == 206 and body == old[10:20]
    status, headers, body = arca.fetch(url, filename="fw.bin")
    assert body == old and headers["content-disposition"] == "attachment; filename=fw.bin"
    status, headers, body = arca.fetch(url, method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(size)
    assert arca.fetch(url)[1]["content-disposition"] == "attachment; filename=hot", \
        "the plain answer names the URL's last segment, as before the named one"
    origin.add("/hot", data=new)
    wait_age(arca, "/hot", 2)  # the ttl runs out: the next request downloads the new bytes
    assert sha256(arca.fetch(url)[2]) == sha256(new)
    assert sha256(arca.fetch(url)[2]) == sha256(new)
    assert origin.counts["/hot"] == 2


def test_chunked_upstream_is_streamed_and_kept(origin, arca):
    data = os.urandom(500000)
    url = origin.add("/chunked", data=data, chunked=True, chunk=10000)
    status, headers, body = arca.fetch(url)
    assert status == 200 and body == data
    status, headers, body = arca.fetch(url)
    assert status == 200 and body == data and headers["content-length"] == str(len(data))
    assert origin.counts["/chunked"] == 1


@pytest.mark.parametrize("mode", ["auto", "mmap", "sendfile"])
def test_large_hits_and_ranges_in_each_send_mode(origin, start_arca, mode):
    data = os.urandom(3 * 1024 * 1024 + 5)  # above the 1 MiB mmap threshold
    url = origin.add("/big", data=data)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--send-mode", mode)
    assert arca.fetch(url)[2] == data  # cold
    assert arca.fetch(url)[2] == data  # hit
    status, headers, body = arca.fetch(url, headers={"Range": "bytes=1048570-2097160"})
    assert status == 206 and body == data[1048570:2097161]
    status, _, body = arca.fetch(url, headers={"Range": "bytes=-1048576"})
    assert status == 206 and body == data[-1048576:]
    assert origin.counts["/big"] == 1


def test_empty_body_is_cached(origin, arca):
    url = origin.add("/empty", data=b"")
    for _ in range(2):
        status, headers, body = arca.fetch(url)
        assert status == 200 and body == b"" and headers["content-length"] == "0"
    assert origin.counts["/empty"] == 1


def test_url_with_its_own_query_is_one_object(origin, arca):
    data = os.urandom(1000)
    origin.add("/q", data=data)
    url = origin.url("/q") + "?token=a&b=c"
    assert arca.fetch(url)[2] == data  # the url parameter is percent-encoded whole
    assert arca.fetch(url)[2] == data
    assert origin.counts["/q"] == 1
    assert origin.requests[0][0] == "/q"
