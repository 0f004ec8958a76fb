"""Request smuggling: a request whose framing or header lines another HTTP parser (a load
balancer in front of arca) could read differently is refused with one honest answer (a one-line
reason, as long as its Content-Length says) and the connection is closed, before any of its body
is read, so nothing hidden in it is ever answered. Each scenario writes raw bytes on a socket and
reads until arca closes it."""

import socket
import time
import urllib.parse

import pytest


def exchange(arca, data, wait=10):
    """Write `data` on a new connection and read until arca closes it, or for `wait` seconds:
    (responses, leftover bytes, closed). A response is (status line, headers, body), cut by its
    Content-Length."""
    got, closed = b"", False
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(data)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:  # a close with unread request bytes: a reset
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
    responses = []
    while b"\r\n\r\n" in got:
        head, got = got.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        headers = {k.lower(): v for k, v in headers.items()}
        length = int(headers.get("content-length", len(got)))
        responses.append((lines[0], headers, got[:length]))
        got = got[length:]
    return responses, got, closed


def refused(arca, data, status_line, reason):
    """`data` gets exactly one answer, `status_line` with a one-line body holding `reason`, and
    the connection is closed after it."""
    responses, rest, closed = exchange(arca, data)
    assert [r[0] for r in responses] == [status_line], responses
    _, headers, body = responses[0]
    assert body.endswith(b"\n") and body.count(b"\n") == 1 and reason.encode() in body, body
    assert int(headers["content-length"]) == len(body)
    assert headers.get("connection", "").lower() == "close"
    assert rest == b"" and closed


def smuggled_fetch(origin, path="/smuggled.img"):
    """A whole request for a fetch, to hide in another request's body: it must never reach the
    origin."""
    url = origin.add(path, data=b"s" * 1000)
    target = "/api/v1/fetch/?" + urllib.parse.urlencode({"url": url})
    return f"GET {target} HTTP/1.1\r\nHost: arca\r\n\r\n".encode()


def test_content_length_with_chunked_is_refused_and_its_body_never_answered(arca, origin):
    hidden = smuggled_fetch(origin)
    body = b"0\r\n\r\n" + hidden  # as chunked: empty, then the hidden request
    for order in ((b"Content-Length: %d\r\n" % len(body)) + b"Transfer-Encoding: chunked\r\n",
                  b"Transfer-Encoding: chunked\r\n" + (b"Content-Length: %d\r\n" % len(body))):
        refused(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n" + order + b"\r\n" + body,
                "HTTP/1.1 400 Bad Request", "Content-Length and Transfer-Encoding")
    assert origin.counts["/smuggled.img"] == 0


def test_two_content_lengths_are_refused(arca, origin):
    hidden = smuggled_fetch(origin)
    for lengths in ((0, len(hidden)), (len(hidden), 0), (len(hidden), len(hidden))):
        head = b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n"
        head += b"".join(b"Content-Length: %d\r\n" % n for n in lengths)
        refused(arca, head + b"\r\n" + hidden, "HTTP/1.1 400 Bad Request",
                "more than one Content-Length")
    assert origin.counts["/smuggled.img"] == 0


@pytest.mark.parametrize("value", [b"-1", b"1x", b"", b"5, 5", b"+5"])
def test_a_malformed_content_length_gets_an_honest_400(arca, value):
    refused(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\nContent-Length: " + value +
            b"\r\n\r\n", "HTTP/1.1 400 Bad Request", "Content-Length is not a number")


def test_a_content_length_beyond_any_body_gets_an_honest_413(arca):
    refused(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n"
            b"Content-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 413 Content Too Large", "Content-Length too large")


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"chunked, chunked", b"identity",
                                    b"chunked ", b"x-chunked", b"gzip"])
def test_a_transfer_coding_other_than_chunked_is_answered_501(arca, coding):
    refused(arca, b"POST /api/v1/prefetch/ HTTP/1.1\r\nHost: arca\r\nTransfer-Encoding: " +
            coding + b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.1 501 Not Implemented",
            "Transfer-Encoding other than chunked")


def test_two_transfer_encoding_lines_are_refused(arca):
    refused(arca, b"POST /api/v1/prefetch/ HTTP/1.1\r\nHost: arca\r\nTransfer-Encoding: chunked"
            b"\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request",
            "more than one Transfer-Encoding")


def test_chunked_in_http_1_0_is_refused(arca):
    refused(arca, b"POST /api/v1/prefetch/ HTTP/1.0\r\nHost: arca\r\nTransfer-Encoding: chunked"
            b"\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request", "Transfer-Encoding in HTTP/1.0")


@pytest.mark.parametrize("line, reason", [
    (b"X-Note: a\r\n folded", "folded header line"),
    (b"X-Note: a\r\n\tfolded", "folded header line"),
    (b"Transfer-Encoding: \r\n chunked", "folded header line"),
    (b"X-Note: a\x00b", "NUL in a header line"),
    (b"X-Note: a\x00\r\nX-Other: b", "NUL in a header line"),
    (b"X-Note: a\rb", "CR in a header line"),
    (b"X-Note\r: a", "invalid header name"),
    (b"Transfer-Encoding : chunked", "invalid header name"),
    (b"X Note: a", "invalid header name"),
    (b"X-Note: a\nX-Other: b", "mixed line ends"),
])
def test_malformed_header_lines_are_refused(arca, line, reason):
    refused(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n" + line + b"\r\nAccept: */*"
            b"\r\n\r\n", "HTTP/1.1 400 Bad Request", reason)
    # as the last line too (the blank line follows it)
    refused(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n" + line + b"\r\n\r\n",
            "HTTP/1.1 400 Bad Request", reason)


def test_a_line_beginning_with_nul_does_not_end_the_header(arca, origin):
    # a parser that takes such a line for the blank line (libmicrohttpd did) would read what
    # follows as a request of its own, where a proxy in front sees more header lines
    hidden = smuggled_fetch(origin)
    refused(arca, b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n\x00X-Note: a\r\n" + hidden,
            "HTTP/1.1 400 Bad Request", "NUL in a header line")
    refused(arca, b"GET /api/v1/health/ HTTP/1.1\r\n\x00\r\n" + hidden,
            "HTTP/1.1 400 Bad Request", "NUL in a header line")
    assert origin.counts["/smuggled.img"] == 0


def test_well_formed_requests_keep_their_connection(arca, origin):
    url = origin.add("/ok.img", data=b"k" * 3000)
    fetch = "/api/v1/fetch/?" + urllib.parse.urlencode({"url": url})
    pipeline = (b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\nX-Note:  spaced\t value \r\n\r\n"
                b"GET /api/v1/health/ HTTP/1.1\nHost: arca\nX-Empty:\n\n"  # bare LF lines
                b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\nContent-Length: 5\r\n\r\nhello"
                b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\nTransfer-Encoding: Chunked\r\n"
                b"\r\n5\r\nhello\r\n0\r\n\r\n" +
                f"GET {fetch} HTTP/1.1\r\nHost: arca\r\nConnection: close\r\n\r\n".encode())
    responses, rest, closed = exchange(arca, pipeline)
    assert [r[0] for r in responses] == ["HTTP/1.1 200 OK"] * 5 and rest == b"" and closed
    assert responses[4][2] == b"k" * 3000
