"""Attacker's scenarios for what an origin serves (issue 22, docs/SECURITY.md "Upstream bytes"):
a fetched body is shown under arca's own origin, beside its admin UI, so an origin's HTML must
never run there. Every answer carrying upstream bytes says `nosniff` and a sandboxing CSP, on
a miss, a joined download, a hit, a prepared hit, a range and a HEAD."""

import os
import socket
import threading

import pytest

from conftest import read_to_end, sha256

PAGE = b"<html><script>fetch('/api/v1/resources/').then(r => r.text()).then(alert)</script></html>"


def assert_inert(headers):
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert "sandbox" in [d.strip() for d in csp.split(";")]
    assert "default-src 'none'" in csp


def test_upstream_html_never_runs_on_arcas_origin(arca, origin):
    url = origin.add("/", data=PAGE, content_type="text/html")  # no file name to save as
    for _ in range(4):  # a miss, then hits: those within its second share a prepared answer
        status, headers, body = arca.fetch(url)
        assert status == 200 and body == PAGE
        assert headers["content-type"] == "text/html"
        assert_inert(headers)
    status, headers, _ = arca.fetch(url, method="HEAD")
    assert status == 200
    assert_inert(headers)
    status, headers, body = arca.fetch(url, {"Range": "bytes=0-5"})
    assert status == 206 and body == PAGE[:6]
    assert_inert(headers)


def test_a_streamed_html_answer_is_inert_too(arca, origin):
    body = PAGE * 2000
    url = origin.add("/page.html", data=body, content_type="text/html", rate=200000)
    conns = []
    try:
        for _ in range(2):  # the first starts the download, the second joins it
            conns.append(arca.stream(url))
        for conn, resp in conns:
            assert_inert({k.lower(): v for k, v in resp.getheaders()})
            got, complete = read_to_end(resp)
            assert complete and got == body
    finally:
        for conn, _ in conns:
            conn.close()
    assert origin.counts["/page.html"] == 1


def test_arcas_own_pages_keep_their_script(arca):
    status, headers, _ = arca.get("/")
    assert status == 200
    assert headers.get("x-content-type-options") == "nosniff"
    assert "sandbox" not in headers.get("content-security-policy", "")


def odd_status_origin(line, body):
    """An origin answering every request with `line` as its status line (one connection each)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                req = b""
                while b"\r\n\r\n" not in req and (d := c.recv(4096)):
                    req += d
                c.sendall(line + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    threading.Thread(target=serve, daemon=True).start()
    return srv


@pytest.mark.parametrize("line", [b"HTTP/1.1 200OK", b"HTTP/1.1 200\tOK", b"HTTP/1.1  200 OK",
                                  b"http/1.1 200 OK"])
def test_a_status_line_curl_reads_is_read_the_same(arca, line):
    """An origin curl serves must not fail through arca: odd but readable status lines."""
    body = os.urandom(3000)
    srv = odd_status_origin(line, body)
    try:
        status, _, got = arca.fetch(f"http://127.0.0.1:{srv.getsockname()[1]}/odd")
    finally:
        srv.close()
    assert (status, sha256(got)) == (200, sha256(body))
