"""The parent's side of a tier (issue 54): what any arca answers a child arca (or any client)
asking through its fetch API. One validator for the object's whole life (the origin's strong
ETag, before, while and after its download), so a resume or If-Range works throughout;
Repr-Digest as a trailer of a body streamed while the object downloads, for a request with
Want-Repr-Digest; ttl= and Age on every answer of an object. A child's side is the lead's
(test_tier*.py)."""

import base64
import hashlib
import os
import re
import socket
import threading

from conftest import read_to_end, sha256, wait_downloading, wait_for, without_ttl

WANT = {"Want-Repr-Digest": "sha-256=10"}


def repr_digest(data):
    return "sha-256=:%s:" % base64.b64encode(hashlib.sha256(data).digest()).decode()


def ttl_of(cache_status):
    """arca's member's ttl (the last member's), as an int."""
    return int(re.findall(r"; ttl=(-?\d+)", cache_status)[-1])


class Raw:
    """One request on a socket of its own, its answer read as a client reads it: the head, then
    the body with its chunks decoded and its trailer lines kept (http.client hides both)."""

    def __init__(self, arca, url, headers=None, version="HTTP/1.1", tls=False, **params):
        self.arca = arca
        if tls:  # arca's HTTPS listener, its certificate verified (a child's https:// parent)
            sock = socket.create_connection(("127.0.0.1", arca.tls_port), timeout=30)
            self.sock = arca.context().wrap_socket(sock, server_hostname="127.0.0.1")
        else:
            self.sock = socket.create_connection((arca.host, arca.port), timeout=30)
        self.buf = b""
        self.send(arca.fetch_path(url, **params), headers, version)

    def send(self, target, headers=None, version="HTTP/1.1", method="GET"):
        lines = [f"{method} {target} {version}", f"Host: {self.arca.host}:{self.arca.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.method = method
        line = self._line()
        self.status = int(line.split()[1])
        self.headers = self._fields()

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise EOFError
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _fields(self):
        fields = {}
        while line := self._line():
            name, value = line.decode().split(":", 1)
            assert name.lower() not in fields, line
            fields[name.lower()] = value.strip()
        return fields

    def body(self):
        """(body, trailer fields, complete): complete is False when the body was cut (a chunked
        one without its last chunk, or one shorter than its Content-Length)."""
        got = []
        try:
            if self.method == "HEAD":
                return b"", {}, True
            if self.headers.get("transfer-encoding") == "chunked":
                while size := int(self._line().split(b";")[0], 16):
                    got.append(self._take(size))
                    assert self._take(2) == b"\r\n"
                return b"".join(got), self._fields(), True
            if "content-length" in self.headers:
                return self._take(int(self.headers["content-length"])), {}, True
            while True:  # HTTP/1.0: the close ends it
                self._fill()
        except EOFError:
            framed = {"content-length", "transfer-encoding"} & set(self.headers)
            return b"".join(got) + self.buf, {}, not framed
        except (ConnectionResetError, socket.timeout):
            return b"".join(got), {}, False

    def close(self):
        self.sock.close()


def held(origin, path, data, **kw):
    """An object the origin sends whole but its last byte, held until the gate returned is set:
    a download that stays under way for as long as a scenario needs."""
    gate = threading.Event()
    return origin.add(path, data=data, last_byte_gate=gate, **kw), gate


def test_a_streamed_answer_that_wants_the_digest_ends_with_it(arca, origin):
    data = os.urandom(300_000)
    url, gate = held(origin, "/rootfs", data, etag='"v1"')
    try:
        wanting = Raw(arca, url, WANT)  # it starts the download
        assert wanting.status == 200
        h = wanting.headers
        assert h["transfer-encoding"] == "chunked" and "content-length" not in h
        assert h["trailer"] == "Repr-Digest" and "repr-digest" not in h
        assert h["etag"] == '"v1"'
        wait_downloading(arca, "/rootfs", len(data) - 1)
        # a client that does not ask keeps its Content-Length, and gets no trailer
        plain = Raw(arca, url)
        assert plain.headers["content-length"] == str(len(data))
        assert "trailer" not in plain.headers and "transfer-encoding" not in plain.headers
        # HTTP/1.0 has no chunks: its length stays, and it goes without the digest
        old = Raw(arca, url, WANT, version="HTTP/1.0")
        assert old.headers["content-length"] == str(len(data)) and "trailer" not in old.headers
    finally:
        gate.set()
    body, trailers, complete = wanting.body()
    assert complete and sha256(body) == sha256(data)
    assert trailers == {"repr-digest": repr_digest(data)}
    for other in (plain, old):
        body, trailers, complete = other.body()
        assert complete and body == data and trailers == {}
        other.close()
    # the message ended where it should: the connection goes on with the next answer
    wanting.send(arca.fetch_path(url), WANT)
    assert wanting.status == 200 and wanting.headers["repr-digest"] == repr_digest(data)
    assert wanting.headers["content-length"] == str(len(data)) and "trailer" not in wanting.headers
    assert wanting.body()[0] == data  # complete: the digest is in the head, no chunks
    wanting.close()
    assert origin.counts["/rootfs"] == 1


def test_the_trailer_goes_over_tls_too(start_tls_arca, origin):
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    data = os.urandom(300_000)
    url, gate = held(origin, "/tls", data, etag='"t1"')
    try:
        r = Raw(arca, url, WANT, tls=True)
        assert r.headers["transfer-encoding"] == "chunked" and r.headers["etag"] == '"t1"'
    finally:
        gate.set()
    body, trailers, complete = r.body()
    assert complete and body == data and trailers == {"repr-digest": repr_digest(data)}
    r.send(arca.fetch_path(url), WANT)  # the same connection goes on
    assert r.status == 200 and r.body()[0] == data
    r.close()


def test_a_range_gets_the_trailer_only_when_it_reaches_the_end(arca, origin):
    data = os.urandom(200_000)
    url, gate = held(origin, "/dtb", data, etag='"d1"')
    size = len(data)
    try:
        first = Raw(arca, url)
        wait_downloading(arca, "/dtb", size - 1)
        head = Raw(arca, url, {**WANT, "Range": "bytes=0-999"})
        tail = Raw(arca, url, {**WANT, "Range": "bytes=150000-", "If-Range": '"d1"'})
        for r, first_byte, last in ((head, 0, 999), (tail, 150000, size - 1)):
            assert r.status == 206
            assert r.headers["content-range"] == f"bytes {first_byte}-{last}/{size}"
            assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
        # a range that ends before the object's end is whole now, and says no digest
        body, trailers, complete = head.body()
        assert complete and body == data[:1000] and trailers == {}
    finally:
        gate.set()
    # one that reaches it (a child's resume) gets the whole object's digest
    body, trailers, complete = tail.body()
    assert complete and body == data[150000:] and trailers == {"repr-digest": repr_digest(data)}
    assert first.body()[0] == data
    for r in (first, head, tail):
        r.close()


def test_an_origin_with_no_length_gets_the_trailer_too(arca, origin):
    data = os.urandom(400_000)
    url, gate = held(origin, "/chunked", data, chunked=True, chunk=20_000)
    try:
        r = Raw(arca, url, WANT)
        assert r.headers["transfer-encoding"] == "chunked" and r.headers["trailer"] == "Repr-Digest"
        assert "etag" not in r.headers  # no ETag from the origin: none until the sha256
    finally:
        gate.set()
    body, trailers, complete = r.body()
    r.close()
    assert complete and body == data and trailers == {"repr-digest": repr_digest(data)}
    status, headers, _ = arca.fetch(url)
    assert status == 200 and headers["etag"] == f'"{sha256(data)}"'


def test_a_failed_download_cuts_the_body_and_says_no_digest(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "0")
    data = os.urandom(500_000)
    url = origin.add("/broken", data=data, truncate_at=200_000, rate=1_000_000)
    r = Raw(arca, url, WANT)
    assert r.status == 200 and r.headers["transfer-encoding"] == "chunked"
    body, trailers, complete = r.body()
    r.close()
    assert not complete and trailers == {} and len(body) < len(data)


def test_one_etag_before_while_and_after_the_download(arca, origin):
    data = os.urandom(300_000)
    url, gate = held(origin, "/kernel", data, etag='"k7"')
    sha_tag = f'"{sha256(data)}"'
    try:
        first = Raw(arca, url)
        assert first.headers["etag"] == '"k7"'
        wait_downloading(arca, "/kernel", len(data) - 1)
        # while downloading: If-Range with the ETag resumes, with another gets the whole body
        resume = Raw(arca, url, {"Range": "bytes=1000-1999", "If-Range": '"k7"'})
        assert resume.status == 206 and resume.headers["etag"] == '"k7"'
        assert resume.body()[0] == data[1000:2000]
        other = Raw(arca, url, {"Range": "bytes=1000-1999", "If-Range": '"k6"'})
        assert other.status == 200 and other.headers["etag"] == '"k7"'
        weak = Raw(arca, url, {"Range": "bytes=1000-1999", "If-Range": 'W/"k7"'})
        assert weak.status == 200  # a weak validator never validates a range
        same = Raw(arca, url, {"If-None-Match": '"k7"'})
        assert same.status == 304 and same.headers["etag"] == '"k7"'
    finally:
        gate.set()
    assert first.body()[0] == data
    for r in (first, resume, other, weak, same):
        r.close()
    wait_for(lambda: arca.fetch(url, method="HEAD")[1].get("repr-digest"), "the object complete")
    # after: the same validator; the sha256 tag arca once gave still validates too
    for tag in ('"k7"', sha_tag):
        status, headers, body = arca.fetch(url, headers={"Range": "bytes=10-19", "If-Range": tag})
        assert status == 206 and body == data[10:20] and headers["etag"] == '"k7"', tag
        status, headers, _ = arca.fetch(url, headers={"If-None-Match": tag})
        assert status == 304 and headers["etag"] == '"k7"', tag
    status, headers, body = arca.fetch(url, headers={"Range": "bytes=10-19", "If-Range": '"k6"'})
    assert status == 200 and body == data
    assert origin.counts["/kernel"] == 1


def test_a_weak_origin_etag_is_no_validator(arca, origin):
    data = os.urandom(100_000)
    url, gate = held(origin, "/weak", data, etag='W/"w1"')
    try:
        r = Raw(arca, url)
        assert "etag" not in r.headers  # a weak tag validates no range: none until the sha256
        wait_downloading(arca, "/weak", len(data) - 1)
        same = Raw(arca, url, {"If-None-Match": 'W/"w1"'})
        assert same.status == 304  # the origin's tag, compared weakly: still a match
        same.close()
    finally:
        gate.set()
    assert r.body()[0] == data
    r.close()
    wait_for(lambda: arca.fetch(url, method="HEAD")[1].get("repr-digest"), "the object complete")
    status, headers, _ = arca.fetch(url)
    assert status == 200 and headers["etag"] == f'"{sha256(data)}"'


def test_every_answer_of_an_object_says_its_freshness(arca, origin):
    data = os.urandom(200_000)
    url, gate = held(origin, "/initrd", data, etag='"i1"')
    try:
        conn, resp = arca.stream(url, ttl="2h")
        miss = resp.getheader("Cache-Status")
        assert without_ttl(miss) == "arca; fwd=uri-miss" and 7195 <= ttl_of(miss) <= 7200
        assert resp.getheader("Age") in ("0", "1")
        joined = Raw(arca, url, ttl="2h")
        joiner = joined.headers["cache-status"]
        assert without_ttl(joiner) == "arca; fwd=uri-miss; collapsed" and ttl_of(joiner) >= 7195
        assert joined.headers["age"] in ("0", "1")
    finally:
        gate.set()
    assert read_to_end(resp) == (data, True)
    conn.close()
    assert joined.body()[0] == data
    joined.close()
    status, headers, _ = arca.fetch(url, ttl="2h", method="HEAD")
    assert without_ttl(headers["cache-status"]) == "arca; hit" and 0 <= int(headers["age"]) <= 2
    # an error about a download holds nothing: no ttl, no Age
    status, headers, _ = arca.fetch(origin.url("/missing"))
    assert status == 404 and headers["cache-status"] == "arca; fwd=uri-miss"
    assert "age" not in headers
