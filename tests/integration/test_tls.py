"""HTTPS for clients (issue 53): arca terminates TLS itself on --tls-listen. Real clients (curl,
wget, python requests, aria2c) verify a CA the tests make; the prefix, the proxy, the pages and
the API answer over TLS as over plain HTTP, from one store; bad handshakes are closed and arca
goes on serving; sessions resume; SIGHUP rotates the certificate while a download streams, and a
bad file keeps the running one; a bad certificate stops start and check-config with one line;
--tls-client-ca refuses clients without a certificate it signed."""

import asyncio
import hashlib
import http.client
import os
import shutil
import socket
import re
import ssl
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import ARCA_BIN, SERVE_POLL, cert_subject, free_port, sha256, wait_for

BODY = os.urandom(300_000)


def no_proxy_env(**more):
    """The environment without the machine's proxies (loopback must not be proxied by accident),
    plus `more`."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(no_proxy="", NO_PROXY="", **more)
    return env


def run(cmd, env=None, timeout=60):
    return subprocess.run(cmd, capture_output=True, env=env or no_proxy_env(), timeout=timeout)


def serial_of(cert):
    """The certificate's serial as ssl.getpeercert() writes it (upper-case hex)."""
    out = run(["openssl", "x509", "-in", cert, "-noout", "-serial"]).stdout.decode()
    return out.strip().split("=", 1)[1].upper()


def closed_by_arca(s, within):
    """Whether arca closes `s` (EOF or reset) within `within` s; what it sends first (an alert,
    its handshake flight) is read and dropped."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            if not s.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def client_hello():
    """A real ClientHello, as python's OpenSSL writes it (TLS 1.2 and 1.3 offered)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def health_over_tls(arca, **kw):
    """arca answers its health check over HTTPS."""
    status, _, body = arca.tls_get("/api/v1/health/", **kw)
    return status == 200 and body == b"ok"


# --- 1. the prefix over TLS, with real clients ------------------------------------------------


def fetch_with(client, url, ca, workdir):
    """The body `client` gets for `url`, verifying the test CA (each client's own way)."""
    out = os.path.join(workdir, f"{client}.out")
    if client == "requests":
        r = requests.get(url, verify=ca, timeout=60)
        assert r.status_code == 200, r.status_code
        return r.content
    if client == "curl":
        cmd = ["curl", "-sSf", "--cacert", ca, "-o", out, url]
    elif client == "wget":
        cmd = ["wget", "-q", f"--ca-certificate={ca}", "-O", out, url]
    else:
        cmd = ["aria2c", "-q", f"--ca-certificate={ca}", "--allow-overwrite=true",
               "--auto-file-renaming=false", "-d", workdir, "-o", f"{client}.out", url]
    p = run(cmd)
    assert p.returncode == 0, (client, p.returncode, p.stderr)
    with open(out, "rb") as f:
        return f.read()


@pytest.mark.parametrize("client", ["curl", "wget", "requests", "aria2c"])
def test_a_client_fetches_through_the_prefix_over_tls_a_miss_then_a_hit(
        client, origin, start_tls_arca, tls_files, workdir):
    url = origin.add(f"/{client}.bin", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    prefix = f"{arca.tls_base}{arca.fetch_path(url)}"
    for _ in range(2):
        assert sha256(fetch_with(client, prefix, tls_files["ca"], workdir)) == sha256(BODY)
    assert origin.counts[f"/{client}.bin"] == 1
    m = arca.metrics()
    assert (m['arca_requests_total{result="miss"}'], m['arca_requests_total{result="hit"}']) \
        == (1, 1)
    assert arca.tls_counters()["handshakes"] >= 2


def test_the_plain_and_the_tls_port_share_one_store(origin, start_tls_arca):
    plain_first = origin.add("/plain-first", data=BODY)
    tls_first = origin.add("/tls-first", data=BODY[::-1])
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    assert arca.fetch(plain_first)[0] == 200
    status, headers, body = arca.tls_fetch(plain_first)
    assert (status, sha256(body)) == (200, sha256(BODY))
    assert headers["cache-status"].startswith("arca; hit")
    status, _, body = arca.tls_fetch(tls_first)
    assert (status, sha256(body)) == (200, sha256(BODY[::-1]))
    status, headers, body = arca.fetch(tls_first)
    assert (status, sha256(body)) == (200, sha256(BODY[::-1]))
    assert headers["cache-status"].startswith("arca; hit")
    assert (origin.counts["/plain-first"], origin.counts["/tls-first"]) == (1, 1)
    assert arca.status()["resources_successes"] == 2


def mapped_kib(arca):
    """{file: KiB resident} of the objects' files under arca's data directory that its process
    has mapped now (the index's own files aside). A mapping's pages are resident once they are
    read through it: sendfile and pread never fault them in."""
    out, name = {}, None
    root = os.path.realpath(arca.data_dir)
    with open(f"/proc/{arca.proc.pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = fields[-1] if len(fields) == 6 and fields[-1].startswith(root) and \
                    "index.sqlite" not in fields[-1] else None
                if name:
                    out.setdefault(name, 0)
            elif name and fields[0] == "Rss:":
                out[name] += int(fields[1])
    return out


def start_reading(arca, path, tls):
    """A connection (TLS or plain, with a small receive buffer) that asked for `path` and read its
    head and 64 KiB of its body, then stopped: the answer is held while it stays open. Returns
    (socket, bytes read)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(30)
    s.connect(("127.0.0.1", arca.tls_port if tls else arca.port))
    if tls:
        s = arca.context().wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: arca\r\nConnection: close\r\n\r\n".encode())
    got = b""
    while b"\r\n\r\n" not in got or len(got) - got.index(b"\r\n\r\n") < 65536:
        chunk = s.recv(65536)
        assert chunk, f"closed after {len(got)} bytes: {got[:200]!r}"
        got += chunk
    return s, got


def read_rest(s, got):
    while chunk := s.recv(1 << 20):
        got += chunk
    s.close()
    head, body = got.split(b"\r\n\r\n", 1)
    return head.split(b" ", 2)[1], body


def shared_large_hit(arca, origin, data):
    """A large object cached and hit until its hits share one answer; its fetch path."""
    url = origin.add("/large", data=data)
    for _ in range(3):  # a miss, a hit, then a hit that shares its answer
        assert sha256(arca.fetch(url)[2]) == sha256(data)
    return arca.fetch_path(url)


@pytest.mark.parametrize("mode", ["auto", "mmap", "sendfile"])
def test_a_large_hit_read_over_plain_and_tls_at_once_in_each_send_mode(origin, start_tls_arca,
                                                                       mode):
    # the answer a large object's hits share is mapped when a TLS connection may read it; in
    # auto the plain connections take its file by sendfile (never reading the mapping: none of
    # its pages resident) and the TLS ones OpenSSL encrypts read the mapping; in mmap every
    # connection reads it; in sendfile nothing is mapped. Both roads give the same bytes.
    data = os.urandom(3 * 1024 * 1024 + 5)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--send-mode", mode)
    path = shared_large_hit(arca, origin, data)
    plain = start_reading(arca, path, False)
    kib = mapped_kib(arca)
    if mode == "sendfile":
        assert kib == {}
    else:
        assert len(kib) == 1
        assert (list(kib.values())[0] > 0) == (mode == "mmap"), kib
    ktls = arca.tls_counters()["kernel_tls"]["offered"]
    tls = [start_reading(arca, path, True) for _ in range(2)]
    if mode == "auto" and not ktls:  # OpenSSL encrypts from the mapping
        assert list(mapped_kib(arca).values())[0] > 0
    for s, got in [plain] + tls:
        status, body = read_rest(s, got)
        assert (status, sha256(body)) == (b"200", sha256(data))
    assert origin.counts["/large"] == 1


@pytest.mark.parametrize("mode,mapped", [("auto", False), ("mmap", True)])
def test_without_a_tls_listener_auto_maps_nothing(origin, start_arca, mode, mapped):
    data = os.urandom(3 * 1024 * 1024 + 5)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--send-mode", mode)
    s, got = start_reading(arca, shared_large_hit(arca, origin, data), False)
    assert bool(mapped_kib(arca)) == mapped
    assert sha256(read_rest(s, got)[1]) == sha256(data)


def test_one_keep_alive_connection_to_a_slow_reader_carries_every_kind_of_answer(
        origin, start_tls_arca):
    """Small answers (head and body in one record), bodies past a record, a file hit many
    records long and a range of it, HEAD, errors: one after the other on one TLS connection
    whose reader has a tiny window (arca's writes find the socket full again and again)."""
    bodies = {"/small": b"s" * 100, "/medium": os.urandom(70_000), "/large": os.urandom(8 << 20)}
    urls = {path: origin.add(path, data=data) for path, data in bodies.items()}
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", arca.tls_port))
    conn = http.client.HTTPSConnection("127.0.0.1", arca.tls_port, timeout=30,
                                       context=arca.context())
    conn.sock = tls = arca.context().wrap_socket(raw, server_hostname="127.0.0.1")

    def ask(path, method="GET", headers=None):
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        answer = resp.status, resp.headers, resp.read()
        assert conn.sock is tls, f"{path}: arca closed the connection"
        return answer

    try:
        for _ in range(2):  # the misses, then the hits
            for path, data in bodies.items():
                status, headers, body = ask(arca.fetch_path(urls[path]))
                assert (status, sha256(body)) == (200, sha256(data)), path
            status, headers, body = ask(arca.fetch_path(urls["/large"]),
                                        headers={"Range": "bytes=1000-2000999"})
            assert (status, body) == (206, bodies["/large"][1000:2001000])
            status, headers, body = ask(arca.fetch_path(urls["/medium"]), "HEAD")
            assert (status, body, headers["Content-Length"]) == (200, b"", "70000")
            assert ask(arca.fetch_path(origin.url("/missing")))[0] == 404
            assert ask("/api/v1/health/")[2] == b"ok"
    finally:
        conn.close()
    assert all(origin.counts[path] == 1 for path in bodies), origin.counts
    assert arca.tls_counters()["handshakes"] == 1


def test_pipelined_requests_in_one_tls_record_are_all_answered(origin, start_tls_arca):
    """Three requests in one write: OpenSSL reads them all at once (read-ahead); arca answers
    each without waiting for more bytes from the socket."""
    url = origin.add("/piped", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    one = f"GET {arca.fetch_path(url)} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    last = b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", arca.tls_port)) as s:
        with arca.context().wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(one + one + last)
            t.settimeout(30)
            answer = b""
            while chunk := t.recv(1 << 20):
                answer += chunk
    assert answer.count(b"HTTP/1.1 200 ") == 3, answer[:300]
    assert answer.count(BODY) == 2 and answer.endswith(b"\r\n\r\nok")
    assert origin.counts["/piped"] == 1


def test_a_client_that_leaves_mid_download_harms_no_one(origin, start_tls_arca):
    url = origin.add("/left", data=os.urandom(16 << 20))
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    assert arca.tls_fetch(url)[0] == 200  # a hit from now on
    for how in ("close", "reset"):
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", arca.tls_port))
            t = arca.context().wrap_socket(s, server_hostname="127.0.0.1")
            t.sendall(f"GET {arca.fetch_path(url)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert t.recv(65536).startswith(b"HTTP/1.1 200 ")
            if how == "reset":
                t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.close()  # no close_notify either way
    status, _, body = arca.tls_fetch(url)
    assert status == 200 and len(body) == 16 << 20
    assert health_over_tls(arca)
    assert origin.counts["/left"] == 1


def test_several_tls_listeners_ipv4_and_ipv6_serve_the_same_store(origin, start_arca, tls_files):
    url = origin.add("/both", data=BODY)
    v4, v6 = free_port(), free_port("::1")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--tls-listen", f"127.0.0.1:{v4}",
                      "--tls-listen", f"[::1]:{v6}", "--tls-cert", tls_files["cert"],
                      "--tls-key", tls_files["key"])
    ctx = ssl.create_default_context(cafile=tls_files["ca"])
    for host, port in (("127.0.0.1", v4), ("::1", v6)):
        with socket.create_connection((host, port)) as s:
            # the certificate names localhost (and 127.0.0.1)
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(f"GET {arca.fetch_path(url)} HTTP/1.1\r\nHost: localhost\r\n"
                          "Connection: close\r\n\r\n".encode())
                answer = b""
                while chunk := t.recv(1 << 20):
                    answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and sha256(body) == sha256(BODY), host
    assert origin.counts["/both"] == 1
    assert arca.status()["tls"]["listen"] == [f"127.0.0.1:{v4}", f"[::1]:{v6}"]


# --- 2. the proxy mode over TLS (an HTTPS proxy) ----------------------------------------------


def test_curl_with_an_https_proxy_caches_an_http_url(origin, start_tls_arca, tls_files):
    url = origin.add("/proxied", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    proxy = arca.tls_base
    env = no_proxy_env(http_proxy=proxy, https_proxy=proxy, HTTPS_PROXY=proxy)
    for _ in range(2):
        p = run(["curl", "-sSf", "--proxy-cacert", tls_files["ca"], url], env=env)
        assert p.returncode == 0, p.stderr
        assert sha256(p.stdout) == sha256(BODY)
    assert origin.counts["/proxied"] == 1
    # the object the HTTPS proxy filled is the prefix's too
    status, headers, body = arca.fetch(url)
    assert (status, sha256(body)) == (200, sha256(BODY))
    assert headers["cache-status"].startswith("arca; hit")
    assert origin.counts["/proxied"] == 1


def test_curl_tunnels_to_an_https_origin_through_connect_inside_tls(tls_origin, start_tls_arca,
                                                                     tls_files):
    url = tls_origin.add("/tunnelled", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--connect-port",
                          str(tls_origin.port))
    env = no_proxy_env(https_proxy=arca.tls_base)
    for _ in range(2):  # a tunnel carries TLS bytes: not cached, each one is the origin's
        p = run(["curl", "-sSf", "--proxy-cacert", tls_files["ca"], "--cacert", tls_files["ca"],
                 url], env=env)
        assert p.returncode == 0, p.stderr
        assert sha256(p.stdout) == sha256(BODY)
    assert tls_origin.counts["/tunnelled"] == 2
    assert arca.metrics()['arca_tunnels_total{result="opened"}'] == 2


# --- 3. pages, API, metrics and health over TLS -----------------------------------------------


PAGES = ["/", "/help/", "/statistics/", "/resources/", "/static/arca.css", "/browse/",
         "/api/v1/health/", "/api/v1/status/", "/api/v1/resources/?state=successes",
         "/api/v1/rules/", "/metrics"]


def test_the_pages_the_api_metrics_and_health_answer_over_tls_as_over_plain(origin,
                                                                             start_tls_arca):
    url = origin.add("/listed", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    assert arca.tls_fetch(url)[0] == 200
    for path in PAGES:
        plain_status, plain, plain_body = arca.get(path)
        status, headers, body = arca.tls_get(path)
        assert (status, headers.get("content-type")) == \
            (plain_status, plain.get("content-type")), path
        assert status == (403 if path == "/api/v1/rules/" else 200), path  # rules: admin's
        if path.startswith("/api/v1/resources/"):
            assert b"/listed" in body
    assert arca.tls_get("/api/v1/health/")[2] == b"ok"
    assert arca.tls_get("/static/arca.css")[2] == arca.get("/static/arca.css")[2]
    assert arca.tls_counters()["listen"] == [f"127.0.0.1:{arca.tls_port}"]


def test_the_urls_arca_tells_a_tls_client_are_https_ones(start_tls_arca):
    """The status's instance and the pages' "how to ask" URLs are the base URL the client used:
    https:// on the TLS port (an http:// URL there is refused with 400)."""
    arca = start_tls_arca()
    assert arca.status()["instance"] == f"http://127.0.0.1:{arca.port}/"
    for page in ("/", "/help/"):
        body = arca.tls_get(page)[2].decode()
        assert f"{arca.tls_base}/api/v1/fetch/?url=" in body, page
        assert f"http://127.0.0.1:{arca.tls_port}" not in body, page
    assert arca.tls_status()["instance"] == f"{arca.tls_base}/"


# --- 4. bad input -----------------------------------------------------------------------------


def test_plain_http_to_the_tls_port_gets_400_saying_https_and_is_closed(start_tls_arca):
    arca = start_tls_arca()
    for request in (b"GET /api/v1/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                    b"GET /api/v1/fetch/?url=http://127.0.0.1/x HTTP/1.1\r\nHost: a\r\n\r\n"
                    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"):  # keep-alive asked: closed anyway
        with socket.create_connection(("127.0.0.1", arca.tls_port)) as s:
            s.sendall(request)
            s.settimeout(10)
            answer = b""
            while chunk := s.recv(65536):  # the end of the stream: closed, no hang
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), answer
        assert b"HTTPS" in body and b"https://" in body, body
        assert answer.count(b"HTTP/1.1 ") == 1, answer
    p = run(["curl", "-sS", f"http://127.0.0.1:{arca.tls_port}/"], timeout=10)
    assert b"this port speaks HTTPS" in p.stdout
    assert health_over_tls(arca)
    assert arca.tls_counters()["plain_http_refused"] == 3
    assert arca.metrics()["arca_tls_plain_http_refused_total"] == 3


def test_garbage_and_a_truncated_client_hello_are_closed_and_arca_serves_the_next(
        start_tls_arca):
    arca = start_tls_arca()
    hello = client_hello()
    # (none starts with an upper-case letter: that is plain HTTP's start, answered 400)
    for junk in (b"\x80" + os.urandom(2000), b"\x16\x03\x01\x00\x05hello" + os.urandom(100),
                 b"hello, are you there?\r\n\r\n", b"\x00" * 64, hello[: len(hello) // 2]):
        with socket.create_connection(("127.0.0.1", arca.tls_port)) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)  # and nothing more: the client is done
            assert closed_by_arca(s, 10), junk[:20]
        assert health_over_tls(arca)
    assert arca.proc.poll() is None
    assert arca.tls_counters()["handshake_failures"] >= 5


def test_a_client_that_stops_mid_handshake_is_closed_at_the_header_timeout(start_tls_arca):
    arca = start_tls_arca("--header-timeout", "1s")
    hello = client_hello()
    silent = socket.create_connection(("127.0.0.1", arca.tls_port))
    half = socket.create_connection(("127.0.0.1", arca.tls_port))
    half.sendall(hello[: len(hello) // 2])
    # a whole ClientHello, arca's answer read, and then no Finished from the client
    stopped = socket.create_connection(("127.0.0.1", arca.tls_port))
    stopped.sendall(hello)
    stopped.settimeout(10)
    assert stopped.recv(65536)[:1] == b"\x16"  # arca's ServerHello
    try:
        # the default idle timeout is 60 s: closed within seconds, it is the header timeout
        for name, s in (("silent", silent), ("half a hello", half), ("no Finished", stopped)):
            assert closed_by_arca(s, 10), name
    finally:
        for s in (silent, half, stopped):
            s.close()
    assert health_over_tls(arca)


# A burst of 600 handshakes from one Python thread, on a loaded machine under the sanitizer, runs
# for tens of seconds: its clients' budget, and the header timeout arca gives them, exceed that.
BURST_S = 90


async def one_handshake(port, ctx, results):
    """A new connection: handshake, a health check, the answer's status (or the error)."""

    async def ask():
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                       server_hostname="127.0.0.1")
        writer.write(b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
        writer.close()
        return answer

    try:
        answer = await asyncio.wait_for(ask(), BURST_S)
        results.append(answer.split(b" ", 2)[1].decode() if answer else "empty")
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
        results.append(type(e).__name__)


# The handshake counts against --header-timeout from the connection's accept (docs/TLS.md). The
# kernel completes all 600 connections at once, and the client sends its ClientHellos one after
# another as its one thread gets the CPU: on a loaded machine, most went out after 10 s (the
# default), and arca closed them as the option says (issue 66: 511 "empty"). So the burst is
# given a header timeout it does not reach: what is asserted is the engine's (every connection
# admitted completes its handshake), not the machine's speed.
@pytest.mark.parametrize("limits, outcomes", [
    # 128 connections per address by default: the next few are told 429, the others are closed
    # as they come (http_limits.c: REFUSED_PER_CLIENT); a refused one has REFUSED_HEAD_MS for
    # its head, and a handshake slower than that (600 at once under the sanitizer) is closed
    # then: its client, done with TLS 1.3's side of the handshake, reads the end ("empty"); a
    # client still writing when arca's close arrives sees its write refused (BrokenPipeError)
    ((), {"200", "429", "ConnectionResetError", "BrokenPipeError", "SSLEOFError", "empty"}),
    (("--max-connections-per-ip", "1000"), {"200"}),
])
def test_many_handshakes_at_once_complete_or_are_refused_cleanly(start_tls_arca, limits,
                                                                 outcomes):
    arca = start_tls_arca("--header-timeout", f"{BURST_S + 10}s", *limits)
    results = []

    async def all_at_once(n):
        ctx = arca.context()
        await asyncio.gather(*(one_handshake(arca.tls_port, ctx, results) for _ in range(n)))

    asyncio.run(all_at_once(600))
    counted = {r: results.count(r) for r in set(results)}
    assert set(counted) <= outcomes, counted
    assert counted.get("200", 0) >= 100, counted
    assert health_over_tls(arca)
    # each one answered went through a whole handshake, and the health check after them
    assert arca.tls_counters()["handshakes"] >= counted.get("200", 0) + counted.get("429", 0) + 1


def test_a_tls_1_2_renegotiation_attempt_fails_without_harm(start_tls_arca, tls_files):
    arca = start_tls_arca()
    client = subprocess.Popen(["openssl", "s_client", "-tls1_2", "-CAfile", tls_files["ca"],
                               "-connect", f"127.0.0.1:{arca.tls_port}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    said = []
    reader = threading.Thread(target=lambda: said.extend(iter(client.stdout.readline, b"")),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: b"Verify return code: 0" in b"".join(said), "the handshake", 20)
        client.stdin.write(b"R\n")  # s_client's command: renegotiate
        client.stdin.flush()
        # stdin kept open: s_client stops on arca's refusal, not on the end of its input
        client.wait(20)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        reader.join(5)
    out = b"".join(said)
    assert b"RENEGOTIATING" in out
    assert b"no renegotiation" in out, out[-500:]
    assert arca.proc.poll() is None
    assert health_over_tls(arca)
    assert arca.tls_counters()["handshakes"] == 2  # the first, and the health check's


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_1_0_and_1_1_clients_are_refused(start_tls_arca, version):
    arca = start_tls_arca()
    ctx = arca.context()
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # this client may offer them at all
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    with pytest.raises(ssl.SSLError) as refused:
        arca.tls_get("/api/v1/health/", context=ctx)
    assert "PROTOCOL_VERSION" in str(refused.value)  # arca's alert: protocol_version
    for newer in ("TLSv1_2", "TLSv1_3"):
        ctx = arca.context()
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, newer)
        with socket.create_connection(("127.0.0.1", arca.tls_port)) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                assert t.version() == newer.replace("_", ".")
    assert health_over_tls(arca)


def test_a_tls_1_2_client_offering_only_old_ciphers_is_refused(start_tls_arca):
    arca = start_tls_arca()
    for ciphers, served in (("AES128-SHA:AES256-SHA256", False),  # no forward secrecy, CBC
                            ("ECDHE-RSA-AES128-GCM-SHA256", True)):
        ctx = arca.context(maximum_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(ciphers)
        if served:
            assert health_over_tls(arca, context=ctx)
        else:
            with pytest.raises(ssl.SSLError) as refused:
                arca.tls_get("/api/v1/health/", context=ctx)
            assert "HANDSHAKE_FAILURE" in str(refused.value), refused.value


def test_an_sni_naming_another_host_is_served_with_the_one_certificate(start_tls_arca):
    arca = start_tls_arca()
    ctx = arca.context(check_hostname=False)  # the CA is still verified
    with socket.create_connection(("127.0.0.1", arca.tls_port)) as s:
        with ctx.wrap_socket(s, server_hostname="other.example.org") as t:
            assert cert_subject(t.getpeercert()) == "commonName=localhost"
            t.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: other.example.org\r\n"
                      b"Connection: close\r\n\r\n")
            answer = b""
            while chunk := t.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nok")


def test_a_client_offering_alpn_h2_only_still_gets_http_1_1(start_tls_arca, tls_files):
    arca = start_tls_arca()
    for offered, chosen in ((["h2"], None), (["h2", "http/1.1"], "http/1.1"),
                            (["http/1.1"], "http/1.1")):
        ctx = arca.context()
        ctx.set_alpn_protocols(offered)
        with socket.create_connection(("127.0.0.1", arca.tls_port)) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                assert t.selected_alpn_protocol() == chosen, offered
                t.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert t.recv(65536).startswith(b"HTTP/1.1 200 "), offered
    p = run(["curl", "-sS", "--http2", "-i", "--cacert", tls_files["ca"],
             f"{arca.tls_base}/api/v1/health/"])
    assert p.stdout.startswith(b"HTTP/1.1 200 "), p.stdout[:100]


# --- 5. session resumption --------------------------------------------------------------------


def health_session(arca, ctx, session=None):
    """A health check on a new connection offering `session`: (its session, whether reused)."""
    with socket.create_connection(("127.0.0.1", arca.tls_port)) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1", session=session) as t:
            t.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := t.recv(65536):  # TLS 1.3's ticket comes after the handshake
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ")
            return t.session, t.session_reused


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_a_session_resumes_also_across_a_sighup(start_tls_arca, tls_pki, version):
    arca = start_tls_arca()
    ctx = arca.context(maximum_version=getattr(ssl.TLSVersion, version))
    first, reused = health_session(arca, ctx)
    assert not reused
    assert health_session(arca, ctx, first)[1]
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    assert health_session(arca, ctx, first)[1]  # the ticket keys survived the reload
    # tls.h: the keys are not the certificate's, a new one resumes the sessions of the old
    swap(tls_pki["rotated_cert"], arca.cert_path)
    swap(tls_pki["rotated_key"], arca.key_path)
    arca.reload("SIGHUP: HTTPS certificate CN=arca rotated")
    assert health_session(arca, ctx, first)[1]
    assert not health_session(arca, ctx)[1]  # a client without a session: a full handshake
    counters = arca.tls_counters()
    assert (counters["handshakes"], counters["resumed"]) == (5, 3)


# --- 6. rotation by SIGHUP --------------------------------------------------------------------


GIB = 1 << 30
PATTERN = os.urandom(1 << 20)


class PatternHandler(BaseHTTPRequestHandler):
    """GET /big: SIZE bytes of PATTERN over and over (made as they are sent: no 1 GiB buffer)."""
    protocol_version = "HTTP/1.1"
    size = GIB

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.asked += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(self.size))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(self.size // len(PATTERN)):
                self.wfile.write(PATTERN)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def pattern_origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), PatternHandler)
    server.daemon_threads = True
    server.asked = 0
    thread = threading.Thread(target=server.serve_forever, args=(SERVE_POLL,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def pattern_sha256():
    h = hashlib.sha256()
    for _ in range(GIB // len(PATTERN)):
        h.update(PATTERN)
    return h.hexdigest()


def swap(src, dst):
    """Replace `dst` by a copy of `src` in one rename, as a certificate tool does."""
    shutil.copy(src, dst + ".new")
    os.replace(dst + ".new", dst)


def test_sighup_rotates_the_certificate_while_a_1_gib_download_streams(pattern_origin,
                                                                      start_tls_arca, tls_pki):
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    url = f"http://127.0.0.1:{pattern_origin.server_address[1]}/big"
    expected = pattern_sha256()
    conn = http.client.HTTPSConnection(
        "127.0.0.1", arca.tls_port, timeout=60, context=arca.context())
    try:
        conn.request("GET", arca.fetch_path(url))
        resp = conn.getresponse()
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == GIB
        assert cert_subject(conn.sock.getpeercert()) == "commonName=localhost"
        got, h = 0, hashlib.sha256()
        while got < 16 << 20:  # 16 MiB in; then the client stops reading for a while
            chunk = resp.read(1 << 20)
            h.update(chunk)
            got += len(chunk)
        swap(tls_pki["rotated_cert"], arca.cert_path)
        swap(tls_pki["rotated_key"], arca.key_path)
        arca.reload("SIGHUP: HTTPS certificate CN=arca rotated")
        seen = arca.peer_certificate()
        assert cert_subject(seen) == "commonName=arca rotated"
        assert seen["serialNumber"] == serial_of(tls_pki["rotated_cert"])
        while chunk := resp.read(1 << 20):  # the download goes on with the old certificate
            h.update(chunk)
            got += len(chunk)
    finally:
        conn.close()
    assert (got, h.hexdigest()) == (GIB, expected)
    assert pattern_origin.asked == 1
    status, headers, _ = arca.tls_get(arca.fetch_path(url), method="HEAD")
    assert status == 200 and headers["cache-status"].startswith("arca; hit")
    assert arca.tls_counters()["certificate"]["subject"] == "CN=arca rotated"


def test_a_bad_certificate_on_sighup_keeps_the_running_one(start_tls_arca, tls_pki):
    arca = start_tls_arca()
    running = serial_of(tls_pki["cert"])
    keeping = "; keeping the running configuration"
    for cert, key, why in (
            (tls_pki["broken_cert"], tls_pki["key"], "no PEM certificate in it"),
            (tls_pki["rotated_cert"], tls_pki["other_key"],
             "this key is not the one of the certificate"),
            (tls_pki["expired_cert"], tls_pki["key"],
             "the certificate (CN=arca dated) expired on 2020-02-01")):
        swap(cert, arca.cert_path)
        swap(key, arca.key_path)
        arca.reload(keeping)
        line = [l for l in arca.read_log().splitlines() if keeping in l][-1]
        assert why in line and "SIGHUP: " in line, line
        assert arca.peer_certificate()["serialNumber"] == running, why
        assert health_over_tls(arca)
    swap(tls_pki["rotated_cert"], arca.cert_path)
    swap(tls_pki["rotated_key"], arca.key_path)
    arca.reload("SIGHUP: HTTPS certificate CN=arca rotated")
    assert arca.peer_certificate()["serialNumber"] == serial_of(tls_pki["rotated_cert"])


# --- 7. start and check-config refuse a bad certificate ---------------------------------------


def as_nobody(*args):
    """arca run as nobody (root reads a chmod 000 file). A coverage build's complaints that
    nobody may not write its .gcda files are the build's, not arca's answer."""
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        ARCA_BIN, *args], capture_output=True, text=True, timeout=20)
    p.stderr = "".join(line for line in p.stderr.splitlines(True)
                       if not line.startswith("profiling:"))
    return p


def as_me(*args):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("case", ["missing", "unreadable", "not its key", "expired",
                                  "not yet valid", "no certificate", "swapped", "a directory"])
def test_start_and_check_config_refuse_a_bad_certificate_with_one_line(case, workdir, tls_pki):
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    shutil.copy(tls_pki["cert"], cert)
    shutil.copy(tls_pki["key"], key)
    runner, tls = as_me, ["--tls-cert", cert, "--tls-key", key]
    if case == "missing":
        os.remove(cert)
        expect = f"--tls-cert {cert}: cannot read it: No such file or directory"
    elif case == "unreadable":
        os.chmod(cert, 0)
        os.chmod(workdir, 0o755)
        os.chown(workdir, 65534, 65534)  # nobody's data dir: only the certificate is refused
        runner = as_nobody
        expect = f"--tls-cert {cert}: cannot read it: Permission denied"
    elif case == "not its key":
        shutil.copy(tls_pki["other_key"], key)
        expect = f"--tls-key {key}: this key is not the one of the certificate in --tls-cert"
    elif case == "expired":
        shutil.copy(tls_pki["expired_cert"], cert)
        expect = f"--tls-cert {cert}: the certificate (CN=arca dated) expired on 2020-02-01"
    elif case == "not yet valid":
        shutil.copy(tls_pki["future_cert"], cert)
        expect = f"--tls-cert {cert}: the certificate (CN=arca dated) is not valid until 2090-01-01"
    elif case == "swapped":  # the key given for the certificate (found by the new-user review)
        tls = ["--tls-cert", key, "--tls-key", cert]
        expect = (f"--tls-cert {key}: no PEM certificate in it, a private key instead (swapped "
                  "with --tls-key?)")
    elif case == "a directory":
        tls = ["--tls-cert", workdir, "--tls-key", key]
        expect = f"--tls-cert {workdir}: cannot read it: a directory"
    else:
        tls = []
        expect = "--tls-listen needs --tls-cert"
    args = ["--listen", f"127.0.0.1:{free_port()}", "--tls-listen", f"127.0.0.1:{free_port()}",
            "--data-dir", os.path.join(workdir, "data"), *tls]
    checked = runner("check-config", *args)
    served = runner("serve", *args)
    for p in (checked, served):
        assert p.returncode != 0, (p.returncode, p.stderr)
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("arca: "), p.stderr
        assert expect in p.stderr, p.stderr
    assert checked.stderr == served.stderr
    assert not os.path.exists(os.path.join(workdir, "data")), "serve went on"


def test_a_config_file_names_its_line_in_the_refusal(workdir, tls_pki):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write(f"[arca]\nlisten = 127.0.0.1:{free_port()}\n"
                f"tls-listen = 127.0.0.1:{free_port()}\n"
                f"tls-cert = {tls_pki['expired_cert']}\ntls-key = {tls_pki['key']}\n"
                f"data-dir = {workdir}/data\n")
    checked, served = as_me("check-config", "--config", path), as_me("serve", "--config", path)
    assert checked.returncode != 0 and served.returncode != 0
    assert checked.stderr == served.stderr == (
        f"arca: {path}:4: --tls-cert {tls_pki['expired_cert']}: the certificate (CN=arca dated) "
        "expired on 2020-02-01 00:00:00 UTC\n")


# --- 8. client certificates -------------------------------------------------------------------


def curl_with(arca, tls_pki, url, *cert):
    return run(["curl", "-sS", "-o", "/dev/stdout", "-w", "%{http_code}", "--cacert",
                tls_pki["ca"], *cert, url])


def test_client_certificates_signed_by_the_client_ca_only(origin, start_tls_arca, tls_pki):
    url = origin.add("/sites", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--tls-client-ca",
                          tls_pki["client_ca"])
    prefix = f"{arca.tls_base}{arca.fetch_path(url)}"
    good = ["--cert", tls_pki["client_cert"], "--key", tls_pki["client_key"]]
    p = curl_with(arca, tls_pki, prefix, *good)
    assert p.returncode == 0 and p.stdout[-3:] == b"200", p.stderr
    assert sha256(p.stdout[:-3]) == sha256(BODY)
    # no certificate, or one another CA signed: the handshake fails, no HTTP answer
    stranger = ["--cert", tls_pki["stranger_cert"], "--key", tls_pki["stranger_key"]]
    for cert in ([], stranger):
        p = curl_with(arca, tls_pki, prefix, *cert)
        assert p.returncode in (35, 56), (cert, p.returncode, p.stderr)
        assert p.stdout in (b"", b"000"), p.stdout[:100]
    r = requests.get(prefix, verify=tls_pki["ca"], cert=(tls_pki["client_cert"],
                                                          tls_pki["client_key"]), timeout=30)
    assert r.status_code == 200 and sha256(r.content) == sha256(BODY)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(prefix, verify=tls_pki["ca"], timeout=30)
    assert origin.counts["/sites"] == 1
    # a refusal is counted after its alert has left: the client may ask the status first
    counters = wait_for(lambda: ((c := arca.tls_counters())["handshake_failures"] >= 3
                                 and c["no_client_certificate"] >= 2 and c),
                        "three refused handshakes counted, two without a certificate")
    assert counters["client_ca"] == "CN=arca test client ca"
    # the admin learns who was refused and why (found by the new-user review: counters only);
    # one line a second at most, the rest counted into the next
    assert arca.log_shows("TLS handshake from 127.0.0.1 refused: ")
    log = arca.read_log()
    assert ("refused: no client certificate (--tls-client-ca asks for one)" in log
            or "more refused since" in log), log[-2000:]
    said = ("refused: its certificate CN=site-b is not one --tls-client-ca accepts (unable to get "
            "local issuer certificate)")
    deadline = time.monotonic() + 10
    while said not in arca.read_log():  # site-b's refusal is said within a second or two
        assert time.monotonic() < deadline, arca.read_log()[-2000:]
        curl_with(arca, tls_pki, prefix, *stranger)


def test_allow_network_still_applies_over_tls_with_a_good_client_certificate(
        origin, start_tls_arca, tls_pki):
    url = origin.add("/refused", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--tls-client-ca",
                          tls_pki["client_ca"], "--allow-network", "10.0.0.0/8")
    p = curl_with(arca, tls_pki, f"{arca.tls_base}{arca.fetch_path(url)}", "--cert",
                  tls_pki["client_cert"], "--key", tls_pki["client_key"])
    assert p.returncode == 0 and p.stdout[-3:] == b"403", (p.stdout, p.stderr)
    assert origin.counts["/refused"] == 0


def let_in(arca, ctx, session):
    """Whether a connection offering `session` gets a 200 to its health check."""
    try:
        with socket.create_connection(("127.0.0.1", arca.tls_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1", session=session) as t:
                t.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return t.recv(65536).startswith(b"HTTP/1.1 200 ")
    except (ssl.SSLError, ConnectionError):
        return False


def test_a_session_from_before_a_new_client_ca_resumes_nothing(start_tls_arca, tls_pki, workdir):
    # the ticket keys outlive a SIGHUP; a session made under the old client CA must not let its
    # client past the new one (found by the docs helper: it resumed, with no certificate asked)
    client_ca = os.path.join(workdir, "client-ca.pem")
    shutil.copy(tls_pki["client_ca"], client_ca)
    arca = start_tls_arca("--tls-client-ca", client_ca)
    sessions = {}
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = arca.context(maximum_version=version)
        ctx.load_cert_chain(tls_pki["client_cert"], tls_pki["client_key"])
        first, reused = health_session(arca, ctx)
        assert not reused and health_session(arca, ctx, first)[1]  # resumes under the same CA
        sessions[version] = (ctx, first)
    swap(tls_pki["stranger_ca"], client_ca)
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    for version, (ctx, first) in sessions.items():
        assert not let_in(arca, ctx, first), version  # a full handshake: site-a is refused
    site_b = arca.context()
    site_b.load_cert_chain(tls_pki["stranger_cert"], tls_pki["stranger_key"])
    assert not health_session(arca, site_b)[1]


def test_sighup_reads_the_client_ca_again(origin, start_tls_arca, tls_pki, workdir):
    url = origin.add("/ca", data=BODY)
    client_ca = os.path.join(workdir, "client-ca.pem")
    shutil.copy(tls_pki["client_ca"], client_ca)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--tls-client-ca", client_ca)
    prefix = f"{arca.tls_base}{arca.fetch_path(url)}"
    site_a = ["--cert", tls_pki["client_cert"], "--key", tls_pki["client_key"]]
    site_b = ["--cert", tls_pki["stranger_cert"], "--key", tls_pki["stranger_key"]]
    assert curl_with(arca, tls_pki, prefix, *site_a).stdout[-3:] == b"200"
    assert curl_with(arca, tls_pki, prefix, *site_b).returncode in (35, 56)
    swap(tls_pki["stranger_ca"], client_ca)
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    assert curl_with(arca, tls_pki, prefix, *site_a).returncode in (35, 56)
    assert curl_with(arca, tls_pki, prefix, *site_b).stdout[-3:] == b"200"
    assert arca.tls_counters()["client_ca"] == "CN=arca test stranger ca"
    swap(tls_pki["broken_cert"], client_ca)  # a broken CA file keeps the running one
    arca.reload("; keeping the running configuration")
    assert curl_with(arca, tls_pki, prefix, *site_b).stdout[-3:] == b"200"
    assert origin.counts["/ca"] == 1


def test_the_log_warns_of_a_certificate_near_its_end_and_of_a_client_ca_that_is_no_ca(
        start_tls_arca, tls_pki):
    # the test certificate lives two days: under 21, so the start and each SIGHUP say it (found
    # by the new-user review: the expiry was shown, never warned of); a leaf given as the
    # client CA can sign no client's certificate: said too
    arca = start_tls_arca("--tls-client-ca", tls_pki["client_cert"])
    assert arca.log_shows("warning HTTPS certificate CN=localhost valid until ")
    assert re.search(r"valid until \S+ \S+ UTC \(4[78] h left\): renew it, then SIGHUP",
                     arca.read_log()), arca.read_log()[-2000:]
    assert arca.log_shows(f"warning --tls-client-ca {tls_pki['client_cert']}: CN=site-a is not "
                          "a CA certificate: no client certificate is signed by it")
    before = arca.read_log().count(" h left): renew it")
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    deadline = time.monotonic() + 5
    while arca.read_log().count(" h left): renew it") < before + 1:  # said again after the reload
        assert time.monotonic() < deadline, arca.read_log()[-2000:]
        time.sleep(0.05)
    assert arca.read_log().count(" h left): renew it") == before + 1
