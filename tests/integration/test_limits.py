"""Limits against abuse: connections in total and per address, header size and time, url
length. Each refusal is a status with a one-line reason, and arca keeps serving others."""

import http.client
import os
import select
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import ARCA_BIN, sha256


def raw(arca, data, timeout=5):
    """Send raw bytes on a new connection; return what came back before the close."""
    with socket.create_connection((arca.host, arca.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                piece = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not piece:
                break
            out += piece
        return out


def status_of(response):
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else None


def health_request():
    return b"GET /api/v1/health/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def test_header_size_limit_gives_431(start_arca):
    arca = start_arca("--max-header-size", "8K")
    ok = raw(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 7000 +
             b"\r\nConnection: close\r\n\r\n")
    assert status_of(ok) == 200
    for size in (9000, 30000, 200000):  # just past the limit, then far past it
        big = raw(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * size +
                  b"\r\n\r\n")
        assert status_of(big) == 431, size
        assert b"\r\n\r\nrequest header too large\n" in big, size
    assert arca.metrics()["arca_limited_requests_total"] == 3, "each is counted as refused"
    assert arca.get("/api/v1/health/")[0] == 200


def test_long_url_gives_414(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-url-length", "200")
    status, _, body = arca.fetch(origin.url("/" + "u" * 300))
    assert status == 414 and body.count(b"\n") == 1 and b"max-url-length" in body
    assert origin.counts.total() == 0
    huge = raw(arca, b"GET /api/v1/fetch/?url=http://a/" + b"x" * 300000 + b" HTTP/1.1\r\n\r\n")
    assert status_of(huge) in (414, 431)


@pytest.mark.parametrize("option,status", [("--max-connections-per-ip", 429),
                                           ("--max-connections", 503)])
def test_connections_beyond_a_limit_are_told_why(origin, start_arca, option, status):
    arca = start_arca(option, "3", "--upstream-allow", "127.0.0.0/8")
    # three places taken by downloads being served (answered: surely counted, never idle)
    url = origin.add("/slow", data=os.urandom(48_000), rate=12_000, chunk=4000)
    held = [arca.stream(url) for _ in range(3)]
    try:
        refused = raw(arca, health_request())
        assert status_of(refused) == status and option[2:].encode() in refused
    finally:
        for conn, _ in held:
            conn.close()
    deadline = time.monotonic() + 5
    while status_of(raw(arca, health_request())) != 200:
        assert time.monotonic() < deadline, "room again once others closed"


def test_slowloris_is_cut_at_the_header_deadline(start_arca):
    arca = start_arca("--header-timeout", "1s")
    with socket.create_connection((arca.host, arca.port), timeout=10) as s:
        s.sendall(b"GET /api/v1/health/ HTTP/1.1\r\n")
        t0 = time.monotonic()
        closed_after = None
        while time.monotonic() - t0 < 6:
            try:
                s.sendall(b"X-Slow: 1\r\n")  # a header line every 200 ms: never idle
                s.settimeout(0.2)
                if s.recv(100) == b"":
                    closed_after = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - t0
                break
    assert closed_after is not None and closed_after < 3, closed_after
    assert arca.metrics()["arca_limited_requests_total"] >= 1


def test_kept_alive_connection_outlives_the_header_deadline(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--header-timeout", "1s")
    url = origin.add("/ka", data=b"k" * 1000)
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=10)
    try:
        conn.request("GET", arca.fetch_path(url))
        assert conn.getresponse().read() == b"k" * 1000
        time.sleep(2)  # idle between requests is governed by --idle-timeout (60 s)
        conn.request("GET", arca.fetch_path(url))
        resp = conn.getresponse()
        assert resp.status == 200 and sha256(resp.read()) == sha256(b"k" * 1000)
    finally:
        conn.close()


def test_limit_options_are_checked():
    for args in (["--max-header-size", "10"], ["--max-connections", "0"],
                 ["--download-retries", "-1"], ["--retry-delay", "5"],
                 ["--max-object-size", "big"], ["--header-timeout", "0s"],
                 ["--max-downloads-per-client", "-1"]):
        p = subprocess.run([ARCA_BIN, "serve", *args], capture_output=True, text=True, timeout=10)
        assert p.returncode != 0 and p.stderr.count("\n") == 1 and args[0] in p.stderr, args


def test_refusals_by_a_limit_are_counted_as_limited(origin, start_arca, workdir):
    """arca_limited_requests_total counts every request a limit refused: a URL past
    --max-url-length (414) and a prefetch body past its size (413) too, as its HELP says."""
    token = os.path.join(workdir, "token")
    with open(token, "w") as f:
        f.write("limits-admin-token-0123456789\n")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-url-length", "200",
                      "--admin-token-file", token)
    assert arca.fetch(origin.url("/" + "u" * 300))[0] == 414
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    conn.request("POST", "/api/v1/prefetch/", b"[" + b'"x",' * 300000 + b'"x"]',
                 {"Authorization": "Bearer limits-admin-token-0123456789"})
    assert conn.getresponse().status == 413
    conn.close()
    assert arca.metrics()["arca_limited_requests_total"] == 2


def test_a_strangers_bare_connections_never_cut_the_labs_downloads(origin, start_arca):
    """The outside review of issue 51: a first fix let a newcomer at a full --max-connections
    cut the busiest client's oldest connection, decided at accept time: an address outside
    --allow-network, sending no request at all, cut the lab's downloads (and an unframed answer
    cut so ends like a whole one for HTTP/1.0). A busy connection is never cut for a new one."""
    arca = start_arca("--max-connections", "6", "--upstream-allow", "127.0.0.0/8",
                      "--allow-network", "127.0.0.1/32")
    url = origin.add("/slow", data=b"x" * 600, rate=2, chunk=2)
    ask = f"GET /api/v1/fetch/?{urllib.parse.urlencode({'url': url})} HTTP/1.1\r\nHost: a\r\n\r\n"
    lab, strangers = [], []
    try:
        for _ in range(6):
            s = socket.create_connection((arca.host, arca.port), timeout=10,
                                         source_address=("127.0.0.1", 0))
            s.sendall(ask.encode())
            assert s.recv(12) == b"HTTP/1.1 200"
            lab.append(s)
        for _ in range(6):
            strangers.append(socket.create_connection((arca.host, arca.port), timeout=10,
                                                      source_address=("127.0.0.66", 0)))
        strangers[-1].sendall(ask.encode())  # once it is answered, all six have been accepted
        assert strangers[-1].recv(12) in (b"HTTP/1.1 503", b"HTTP/1.1 403")
        # the lab's answers go on: for a second (two of the origin's chunks), none ends
        deadline = time.monotonic() + 1
        while (left := deadline - time.monotonic()) > 0:
            for s in select.select(lab, [], [], left)[0]:
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    data = b""
                assert data, "a lab download was cut for a stranger's bare connection"
    finally:
        for s in lab + strangers:
            s.close()
