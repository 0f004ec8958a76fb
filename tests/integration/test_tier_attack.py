"""A parent that lies or fails (issue 54, "Bad input"; docs/SECURITY.md, the trust a child gives
its parent): a small HTTP server here answers the child's asks of the fetch API its own way:
wrong bytes under the right length, a Repr-Digest that is not its bytes' or none at all, a
Content-Range that is not what was asked, another ETag mid-fill, a redirect elsewhere, its own
503/507/508/403, silence, a cut. Each time the child's client ends up with the origin's bytes
(a body the child had streamed and then found wrong is cut, never completed: the client asks
again, as curl --retry does), the child counts a fallback for the right reason, and nothing wrong
is kept: the next answer is the origin's bytes, under the origin's digest. The same server,
answering honestly, shows what a child asks and that a trailer's digest is believed."""

import os
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ARCA_BIN, SERVE_POLL, free_port, resource, sha256, wait_for
from tier import (fallback_metric, fetch_like_curl, full_fetch, logged_fallback, members,
                  parent_row, repr_digest, wait_fallback)

MIB = 1 << 20
ETAG = '"v1"'
PIECE = 64 << 10


class LiarHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        liar = self.server.liar
        with liar.lock:
            liar.asked.append((self.path, dict(self.headers)))
        mode = liar.mode
        self.close_connection = True
        if mode == "stall":  # accepts, reads the request, never answers
            liar.release.wait(60)
            return
        if isinstance(mode, int):  # its own failure: no Cache-Status, as arca's own refusal
            return self.reply(mode, [("Content-Type", "text/plain")], b"the parent's own error\n")
        if mode == "redirect":
            return self.reply(302, [("Location", liar.elsewhere)], b"")
        first, last, ranged = self.bounds(len(liar.data))
        data, etag, digest, cr_first = liar.data, liar.etag, repr_digest(liar.data), first
        if mode in ("wrong-bytes", "consistent-liar"):
            data = liar.wrong
            if mode == "consistent-liar":
                digest = repr_digest(data)
        elif mode == "digest-mismatch":
            digest = repr_digest(b"another body")
        elif mode == "no-digest":
            digest = None
        elif mode == "content-range":  # a range that starts elsewhere than asked
            cr_first = first + 1000
        elif mode == "etag-mid-fill" and self.headers.get("If-Range"):
            etag = '"v2"'  # a fill's piece: another version
        headers = [("Content-Type", "application/octet-stream"), ("ETag", etag),
                   ("Accept-Ranges", "bytes"), ("Age", "0"),
                   ("Cache-Status", "arca; hit; ttl=3600")]
        if ranged:
            headers.append(("Content-Range", f"bytes {cr_first}-{last}/{len(data)}"))
        body = data[cr_first:last + 1]
        trailer = mode in ("honest-trailer", "trailer-mismatch")
        if digest and not trailer:
            headers.append(("Repr-Digest", digest))
        if trailer:
            digest = digest if mode == "honest-trailer" else repr_digest(b"another body")
            headers += [("Transfer-Encoding", "chunked"), ("Trailer", "Repr-Digest")]
        else:
            headers.append(("Content-Length", str(len(body))))
        self.send_response(206 if ranged else 200)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.send_body(liar, mode, body, trailer and digest)

    def bounds(self, total):
        """(first, last, ranged) of the Range asked ("bytes=A-" or "bytes=A-B")."""
        rng = self.headers.get("Range", "")
        if not rng.startswith("bytes="):
            return 0, total - 1, False
        a, b = rng[len("bytes="):].split("-", 1)
        return int(a), min(int(b), total - 1) if b else total - 1, True

    def reply(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_body(self, liar, mode, body, trailer_digest):
        """The body in pieces (paced when liar.rate), chunked when a trailer closes it; a cut,
        a reset or a stall halfway in the modes that say so."""
        stop_at = len(body) // 2 if mode in ("reset", "stall-mid-body") else len(body)
        if mode == "reset-after-headers":  # the child's clients have the headers: then a reset
            self.wfile.flush()
            liar.release.wait(0.5)
            stop_at, mode = 0, "reset"
        t0 = time.monotonic()
        try:
            for off in range(0, stop_at, PIECE):
                piece = body[off:min(off + PIECE, stop_at)]
                if liar.rate:
                    time.sleep(max(0, t0 + off / liar.rate - time.monotonic()))
                if liar.release.is_set():
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if trailer_digest
                                 else piece)
            if mode == "reset":
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                return
            if mode == "stall-mid-body":
                self.wfile.flush()
                liar.release.wait(60)
                return
            if trailer_digest:
                self.wfile.write(b"0\r\nRepr-Digest: %s\r\n\r\n" % trailer_digest.encode())
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


class LyingParent:
    """A parent arca's fetch API as `mode` answers it, with the origin's bytes (`data`) or
    others of the same length (`wrong`). `asked`: each request's (target, headers)."""

    def __init__(self, data, mode, elsewhere="", rate=0, etag=ETAG):
        self.data, self.mode, self.elsewhere, self.rate = data, mode, elsewhere, rate
        self.etag = etag
        self.wrong = bytes(b ^ 0x5A for b in data[:4096]) + data[4096:]
        self.asked = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends stalls and paced bodies at teardown
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), LiarHandler)
        self.server.daemon_threads = True
        self.server.liar = self
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SERVE_POLL,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def liar():
    """liar(data, mode, ...) -> a LyingParent, stopped at teardown."""
    made = []

    def start(*args, **kw):
        made.append(LyingParent(*args, **kw))
        return made[-1]

    yield start
    for p in made:
        p.stop()


def child_of(start_arca, parent, *args, port=None, name="child"):
    return start_arca("--upstream-allow", "127.0.0.0/8", "--parent", parent, "--stall-timeout",
                      "2s", *args, name=name, port=port)


def assert_kept_right(child, origin, path, url, data):
    """Nothing wrong kept: the object is the origin's, whole, not failed; a hit answers it."""
    row = wait_for(lambda: resource(child, path), f"{path} kept")
    assert row["content_length"] == len(data), row
    failed = resource(child, path, "failures")
    assert failed is None, f"listed as failed: {failed}"
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert headers["repr-digest"] == repr_digest(data)
    assert members(headers)[-1].startswith("arca; hit"), headers.get("cache-status")


# mode: (the fallback's reason, whether the lie shows before the child streams any byte)
LIES = {
    "wrong-bytes": ("digest", False),
    "digest-mismatch": ("digest", False),
    "no-digest": ("digest", False),
    "trailer-mismatch": ("digest", False),
    "content-range": ("lie", True),
    "redirect": ("status", True),
    503: ("status", True),
    507: ("status", True),
    508: ("loop", True),
    403: ("status", True),  # its own refusal: no Cache-Status says it is the origin's
    "stall": ("refused", True),
    "stall-mid-body": ("cut", False),
    "reset": ("cut", False),
}


@pytest.mark.parametrize("mode", list(LIES), ids=str)
def test_a_parent_that_lies_or_fails_is_passed_over_and_nothing_wrong_is_kept(
        origin, start_arca, liar, mode):
    reason, before_any_byte = LIES[mode]
    path = "/lab/rootfs.img"
    data = os.urandom(2 * MIB)
    url = origin.add(path, data=data, etag=ETAG)
    parent = liar(data, mode, elsewhere=origin.add("/elsewhere", data=b"elsewhere " * 100))
    child = child_of(start_arca, parent.base)

    status, headers, body, cuts = fetch_like_curl(child, url)
    assert status == 200 and sha256(body) == sha256(data), (status, len(body))
    # a body found wrong once streamed is cut, never whole; a lie seen first cuts nobody
    assert all(len(cut) < len(data) for cut in cuts)
    if before_any_byte:
        assert cuts == [], [len(c) for c in cuts]
    assert origin.counts[path] == 1 and origin.bytes_sent[path] == len(data)
    assert len(parent.asked) == 1, [a[0] for a in parent.asked]
    assert logged_fallback(child, reason), f"no '{reason}' fallback in the child's log"
    row = wait_fallback(child, reason)
    assert sum(row["fallbacks"].values()) == 1, row
    # a fault of the parent's own counts toward its hold (a lie, a digest, its own 5xx); a
    # loop is the configuration's (the parent's own parent is this child); a 4xx is about the
    # URL, and silence after the request or a cut may be its upstream's, relayed (any client
    # can ask for a URL that does that): none of these holds it down
    own = 0 if reason in ("loop", "cut") or mode in (403, "stall") else 1
    assert row["requests"] == 0 and row["bytes"] == 0 and row["failures"] == own, row
    assert fallback_metric(child, parent.base, reason) == 1
    assert_kept_right(child, origin, path, url, data)
    assert origin.counts[path] == 1 and len(parent.asked) == 1


def test_another_etag_mid_fill_is_a_lie_and_never_spliced(origin, start_arca, liar):
    """The first answer says ETag v1; the pieces of the child's parallel fill come as v2: the
    child drops them all and goes to the origin."""
    path = "/lab/big.img"
    data = os.urandom(8 * MIB)
    url = origin.add(path, data=data, etag=ETAG, headers={"Accept-Ranges": "bytes"})
    parent = liar(data, "etag-mid-fill", rate=2 * MIB)  # slow: the pieces are asked meanwhile
    child = child_of(start_arca, parent.base, "--fill-connections", "4", "--fill-min-size",
                     "1M")
    status, _, body, cuts = fetch_like_curl(child, url)
    assert status == 200 and sha256(body) == sha256(data)
    assert all(len(cut) < len(data) for cut in cuts)
    assert any(h.get("If-Range") for _, h in parent.asked), "no piece was asked of the parent"
    assert logged_fallback(child, "lie")
    row = wait_fallback(child, "lie")
    assert sum(row["fallbacks"].values()) == 1, row
    assert_kept_right(child, origin, path, url, data)


@pytest.mark.parametrize("mode", ["wrong-bytes", "no-digest", 503])
def test_under_parent_only_a_lying_parent_fails_the_client_and_nothing_is_kept(
        origin, start_arca, liar, mode):
    path = "/lab/fw.bin"
    data = os.urandom(MIB)
    url = origin.add(path, data=data, etag=ETAG)
    parent = liar(data, mode)
    child = child_of(start_arca, parent.base, "--parent-only")
    for _ in range(2):
        status, _, body, complete = full_fetch(child, url)
        assert not (complete and status == 200), (status, len(body))
        assert sha256(body) != sha256(parent.wrong)
    assert origin.counts[path] == 0
    assert resource(child, path) is None


@pytest.mark.parametrize("mode,held", [("wrong-bytes", True), ("no-digest", True),
                                       ("reset", True), ("reset-after-headers", False)])
def test_a_lie_found_before_any_client_read_a_byte_leaves_the_origins_copy(
        origin, start_arca, liar, mode, held):
    """The parent's answer is found wrong before any client was handed a byte (here a client
    whose sha256= holds its answer until the object is checked): the download starts over from
    the origin all the same. The origin gives no ETag, so the parent's is the sha256 of its
    copy (what an arca gives for a complete object): the origin's answer is another set of
    headers than the parent's, and must not be taken for the object changing under a resume."""
    path = "/lab/initrd"
    data = os.urandom(MIB)
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"
    url = origin.add(path, data=data, last_modified=stamp)
    parent = liar(data, mode, etag=f'"{sha256(data)}"')
    child = child_of(start_arca, parent.base, "--digest-framing", "hold")
    status, _, body, cuts = fetch_like_curl(child, url, **({"sha256": sha256(data)} if held
                                                            else {}))
    assert status == 200 and sha256(body) == sha256(data), (status, body[:200])
    assert origin.counts[path] == 1
    reason = LIES.get(mode, ("cut",))[0]
    assert logged_fallback(child, reason)
    assert wait_fallback(child, reason)["fallbacks"][reason] == 1
    assert_kept_right(child, origin, path, url, data)


def test_a_consistent_liar_is_caught_by_the_clients_sha256(origin, start_arca, liar):
    """What a child cannot check (docs/SECURITY.md): a parent that sends wrong bytes under their
    own digest. A client that names the sha256 it expects still never gets them whole."""
    path = "/lab/kernel"
    data = os.urandom(MIB)
    url = origin.add(path, data=data, etag=ETAG)
    parent = liar(data, "consistent-liar")
    child = child_of(start_arca, parent.base, "--digest-framing", "hold")
    status, _, body = child.fetch(url, sha256=sha256(data))
    assert status == 502 and b"sha256" in body, (status, body[:200])


def test_a_parent_that_is_the_child_itself_is_passed_over(origin, start_arca):
    """--parent naming the child's own listening address is refused at start, one line; named
    otherwise (localhost for 127.0.0.1), it is never asked (arca does not fetch from itself:
    `refused`) or asked once and answered 508 (`loop`); either way the origin serves, once."""
    port = free_port()
    run = subprocess.run([ARCA_BIN, "check-config", "--listen", f"127.0.0.1:{port}", "--parent",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "is this arca's own address" in run.stderr
    child = child_of(start_arca, f"http://localhost:{port}", port=port)
    path = "/lab/self"
    data = os.urandom(300_000)
    url = origin.add(path, data=data, etag=ETAG)
    status, _, body, complete = full_fetch(child, url, timeout=15)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts[path] == 1
    reason = "loop" if logged_fallback(child, "loop") else "refused"
    assert logged_fallback(child, reason)
    row = wait_fallback(child, reason)
    assert sum(row["fallbacks"].values()) == 1, row
    assert_kept_right(child, origin, path, url, data)


# --- an honest parent: what is asked, and what is believed ----------------------------------


@pytest.mark.parametrize("mode", ["honest", "honest-trailer"])
def test_the_ask_and_a_digest_in_a_header_or_a_trailer(origin, start_arca, liar, mode):
    """The child asks the fetch API for the client's URL whole (its query too) with its Via,
    Want-Repr-Digest and Range: bytes=0-; bytes whose sha256 is the parent's Repr-Digest (a
    header, or the trailer of a chunked body) are kept, the origin never asked."""
    path = "/lab/dtb"
    data = os.urandom(MIB)
    url = origin.add(path, data=data, etag=ETAG) + "?build=42&arch=arm64"
    parent = liar(data, mode)
    child = child_of(start_arca, parent.base)
    status, headers, body, complete = full_fetch(child, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts[path] == 0
    target, asked = parent.asked[0]
    split = urllib.parse.urlsplit(target)
    assert split.path == "/api/v1/fetch/"
    assert urllib.parse.parse_qs(split.query) == {"url": [url]}
    assert asked["Range"] == "bytes=0-"
    assert "sha-256" in asked["Want-Repr-Digest"]
    assert asked["Via"].endswith(f":{child.port} (arca)"), asked["Via"]
    assert_kept_right(child, origin, path, url, data)
    assert len(parent.asked) == 1
    # the parent's member, then the child's
    said = members(headers)
    assert said[0] == "arca; hit; ttl=3600" and said[1].startswith("arca; fwd=uri-miss"), said
    row = parent_row(child)
    assert (row["requests"], row["bytes"], row["hits"]) == (1, len(data), 1), row


def test_a_signed_url_is_asked_of_a_trusted_parent_whole(origin, start_arca, liar):
    """--parent-trusted-http: the signature goes to the parent (it must confirm the URL with the
    origin); without it, nothing goes to the parent."""
    path = "/lab/signed"
    data = os.urandom(300_000)
    url = origin.add(path, data=data, etag=ETAG) + \
        "?X-Amz-Credential=AKIA1&X-Amz-Signature=" + "ab" * 32
    trusted_parent, plain_parent = liar(data, "honest"), liar(data, "honest")
    trusted = child_of(start_arca, trusted_parent.base, "--parent-trusted-http")
    plain = child_of(start_arca, plain_parent.base, name="plain")
    status, _, body, _ = full_fetch(trusted, url)
    assert status == 200 and sha256(body) == sha256(data)
    query = urllib.parse.urlsplit(trusted_parent.asked[0][0]).query
    assert urllib.parse.parse_qs(query) == {"url": [url]}
    status, _, body, _ = full_fetch(plain, url)
    assert status == 200 and sha256(body) == sha256(data)
    assert plain_parent.asked == [] and origin.counts[path] == 1
    assert wait_fallback(plain, "credentials")["fallbacks"]["credentials"] == 1
