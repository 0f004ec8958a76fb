"""Resume never splices two versions (issue 22, item 4). Some origins (CDNs, object stores behind
a proxy) honour Range but ignore If-Range: asked to resume a file that has changed, they answer
206 with the new file's bytes. arca continues a cut body only when that 206 proves it is the
same representation (the strong ETag resumed with, or the very Last-Modified when that is a
strong validator, and the known total); otherwise clients already streaming the old version are
cut, and the download starts over from byte 0, so what is stored and served is one version,
whole."""

import email.utils
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Arca, read_to_end, sha256, SERVE_POLL
from test_admin import admin_arca, prefetch, wait_complete

LM1 = "Tue, 03 Nov 2026 10:00:00 GMT"
LM2 = "Wed, 04 Nov 2026 10:00:00 GMT"


class Version:
    def __init__(self, data, last_modified="", etag=""):
        self.data, self.last_modified, self.etag = data, last_modified, etag


class Changing(BaseHTTPRequestHandler):
    """One file whose version the test swaps; Range (bytes=N-) honoured, If-Range ignored."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def date_time_string(self, timestamp=None):
        # a frozen clock when asked: the answer's Date is then its Last-Modified's very second
        return self.server.date or super().date_time_string(timestamp)

    def do_GET(self):
        srv = self.server
        with srv.lock:
            index = len(srv.requests)
            srv.requests.append(dict(self.headers))
            if index in srv.swap_at:
                srv.version = srv.swap_at[index]
            v = srv.version
            cut = srv.cuts.pop(0) if srv.cuts else -1
        first = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit():
            first = int(rng[6:-1])
        body = v.data[first:]
        self.send_response(206 if first else 200)
        if v.etag:
            self.send_header("ETag", v.etag)
        if v.last_modified:
            self.send_header("Last-Modified", v.last_modified)
        if first:
            self.send_header("Content-Range", f"bytes {first}-{len(v.data) - 1}/{len(v.data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if cut >= 0:
            body = body[:cut]
        t0 = time.monotonic()
        try:
            for off in range(0, len(body), 65536):
                if srv.rate:
                    time.sleep(max(0, t0 + off / srv.rate - time.monotonic()))
                self.wfile.write(body[off:off + 65536])
                with srv.lock:
                    srv.sent += min(65536, len(body) - off)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def changing():
    """changing(version, cuts=[...], swap_at={request index: version}, rate=bytes/s) -> server"""
    servers = []

    def start(version, cuts=(), swap_at=None, rate=0, date=""):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Changing)
        srv.daemon_threads = True
        srv.lock = threading.Lock()
        srv.version, srv.cuts, srv.swap_at = version, list(cuts), dict(swap_at or {})
        srv.rate, srv.date, srv.requests, srv.sent = rate, date, [], 0
        srv.url = f"http://127.0.0.1:{srv.server_address[1]}/rootfs.ext4"
        threading.Thread(target=srv.serve_forever, args=(SERVE_POLL,), daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def stream(arca, url):
    conn, resp = arca.stream(url)
    try:
        body, complete = read_to_end(resp)
        return resp.status, body, complete
    finally:
        conn.close()


# (validators of the old version, of the new one): the Last-Modified alone, a weak ETag beside
# it (weak ETags never go into If-Range), and a strong ETag (If-Range ignored all the same)
CHANGES = {
    "last-modified": (("", LM1), ("", LM2)),
    "weak-etag": (('W/"1"', LM1), ('W/"2"', LM2)),
    "strong-etag": (('"1"', LM1), ('"2"', LM1)),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_file_changed_under_a_cut_download_is_fetched_again_whole(arca, changing, change):
    (etag1, lm1), (etag2, lm2) = CHANGES[change]
    old, new = os.urandom(4 << 20), os.urandom(4 << 20)  # one length: only validators differ
    origin = changing(Version(old, lm1, etag1), cuts=[1 << 20],
                      swap_at={1: Version(new, lm2, etag2)}, rate=4 << 20)
    status, body, complete = stream(arca, origin.url)
    # the client had old bytes when the change showed: it is cut, never handed a whole-looking
    # body of two halves
    assert status == 200 and not complete, "a spliced body was served as complete"
    assert body == old[:len(body)]
    assert origin.requests[1].get("Range", "").startswith("bytes="), "the cut body was resumed"
    # the next client gets the new version, whole; the cache holds it and nothing else
    status, _, body = arca.fetch(origin.url)
    assert status == 200 and sha256(body) == sha256(new)
    assert "Range" not in origin.requests[-1], "the new version was fetched from byte 0"
    requests = len(origin.requests)
    status, _, body = arca.fetch(origin.url)
    assert status == 200 and sha256(body) == sha256(new) and len(origin.requests) == requests
    assert arca.metrics()['arca_download_attempts_total{kind="restart"}'] >= 1


def test_curl_streaming_the_old_version_exits_18(arca, changing):
    old, new = os.urandom(4 << 20), os.urandom(4 << 20)
    origin = changing(Version(old, LM1), cuts=[1 << 20], swap_at={1: Version(new, LM2)},
                      rate=4 << 20)
    fetch = f"http://127.0.0.1:{arca.port}{arca.fetch_path(origin.url)}"
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", fetch],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 18, (p.returncode, p.stderr)  # CURLE_PARTIAL_FILE
    assert 0 < int(p.stdout) < len(old)
    assert sha256(arca.fetch(origin.url)[2]) == sha256(new)


def test_a_download_nobody_streams_starts_over_in_place(start_arca, workdir, changing):
    # a prefetch: no client holds anything of the old version, so the same download starts
    # over (nothing is cut, no failure) and the new version is what gets cached
    arca = admin_arca(start_arca, workdir)
    old, new = os.urandom(300000), os.urandom(300000)
    origin = changing(Version(old, LM1), cuts=[100000], swap_at={1: Version(new, LM2)})
    assert prefetch(arca, [origin.url])[0] == 202
    wait_complete(arca, 1)
    assert [r.get("Range") for r in origin.requests] == [None, "bytes=100000-", None]
    status, _, body = arca.fetch(origin.url)
    assert status == 200 and sha256(body) == sha256(new) and len(origin.requests) == 3
    assert arca.status()["resources_failures"] == 0


def test_an_unchanged_file_is_still_resumed(arca, changing):
    # the same origin, the file unchanged: the 206 names the Last-Modified resumed with
    data = os.urandom(2 << 20)
    origin = changing(Version(data, LM1, 'W/"same"'), cuts=[700000], rate=4 << 20)
    status, body, complete = stream(arca, origin.url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert [r.get("If-Range") for r in origin.requests] == [None, LM1]
    assert arca.metrics()['arca_download_attempts_total{kind="resume"}'] == 1


def test_a_last_modified_in_the_second_of_the_answer_is_not_resumed_on(arca, changing):
    # RFC 9110 8.8.2.2: a date within the second of the answer's Date is a weak validator (the
    # file may change again within that second and keep it). The origin's clock is frozen on
    # the file's date, and the file changes within that second.
    stamp = email.utils.formatdate(time.time() - 60, usegmt=True)
    old, new = os.urandom(300000), os.urandom(300000)
    origin = changing(Version(old, stamp), cuts=[100000], swap_at={1: Version(new, stamp)},
                      date=stamp)
    status, body, complete = stream(arca, origin.url)
    assert status == 200
    assert sha256(body) == sha256(new) if complete else body == old[:len(body)]
    assert sha256(arca.fetch(origin.url)[2]) == sha256(new)
    assert [r.get("Range") for r in origin.requests] == [None, None], "resumed on a weak date"


def interrupt(workdir, origin, until):
    """arca streams the file to a client and is killed (-9) once `until` bytes were sent."""
    data_dir = os.path.join(workdir, "data")
    first = Arca(workdir, ["--upstream-allow", "127.0.0.0/8"], data_dir).start()
    try:
        conn, _ = first.stream(origin.url)
        deadline = time.monotonic() + 30
        while origin.sent < until:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        conn.close()
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        first.stop()
    return data_dir


@pytest.mark.parametrize("change", ["last-modified", "weak-etag"])
def test_a_file_changed_across_a_kill_and_restart_is_fetched_again_whole(workdir, changing,
                                                                        change):
    (etag1, lm1), (etag2, lm2) = CHANGES[change]
    old, new = os.urandom(40 << 20), os.urandom(40 << 20)
    origin = changing(Version(old, lm1, etag1), rate=20 << 20)
    data_dir = interrupt(workdir, origin, 30 << 20)
    origin.rate, origin.version = 0, Version(new, lm2, etag2)
    second = Arca(workdir, ["--upstream-allow", "127.0.0.0/8"], data_dir).start()
    try:
        status, _, body = second.fetch(origin.url)
        assert status == 200 and sha256(body) == sha256(new), "old and new bytes spliced"
        assert second.metrics()["arca_restart_resumes_total"] == 1
        resume = origin.requests[1]
        assert resume["Range"].startswith("bytes=") and resume["If-Range"] == lm1
        assert "Range" not in origin.requests[-1]
        assert sha256(second.fetch(origin.url)[2]) == sha256(new)  # a hit, of the new version
    finally:
        second.stop()


def test_an_unchanged_file_is_resumed_after_a_restart(workdir, changing):
    data = os.urandom(40 << 20)
    origin = changing(Version(data, LM1), rate=20 << 20)
    data_dir = interrupt(workdir, origin, 30 << 20)
    origin.rate = 0
    sent = origin.sent
    second = Arca(workdir, ["--upstream-allow", "127.0.0.0/8"], data_dir).start()
    try:
        status, _, body = second.fetch(origin.url)
        assert status == 200 and sha256(body) == sha256(data)
        assert origin.requests[-1]["If-Range"] == LM1
        assert origin.sent - sent < len(data) - (10 << 20), "continued, not fetched again"
    finally:
        second.stop()



def test_a_body_with_a_weak_date_is_not_continued_after_a_restart(workdir, changing):
    # its Last-Modified is in the second of the answer's Date: nothing could prove a resume, so
    # none is recorded, and the next start fetches the (changed) file from byte 0
    stamp = email.utils.formatdate(time.time() - 60, usegmt=True)
    old, new = os.urandom(40 << 20), os.urandom(40 << 20)
    origin = changing(Version(old, stamp), rate=20 << 20, date=stamp)
    data_dir = interrupt(workdir, origin, 30 << 20)
    origin.rate, origin.version = 0, Version(new, stamp)
    second = Arca(workdir, ["--upstream-allow", "127.0.0.0/8"], data_dir).start()
    try:
        status, _, body = second.fetch(origin.url)
        assert status == 200 and sha256(body) == sha256(new)
        assert "Range" not in origin.requests[-1]
        assert second.metrics()["arca_restart_resumes_total"] == 0
    finally:
        second.stop()
