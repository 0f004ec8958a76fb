"""A hold is about a route, decided on what the route does for everyone (issue 67, item 5; docs/
CACHING.md, "When the origin is down"). The outside review's attacks, each a scenario that failed
at main:

- holds were keyed by host and port alone: a rule's prefix leaving from its own outgoing-address
  (the only address a partner's firewall lets in) got 503 for 18 of 20 downloads while another
  client's URLs on the same host, leaving from the default address, were reset; and a route
  that hangs from one address took the host away from the other;
- on an origin whose `/` closes without answering, one client spraying resetting URLs got every
  other client's new URL 503 (20 of 20); and where `/` stalls, one client's stalling URLs held a
  host that answered everyone else.

A route is the host, its port and the address its connections leave from; what one client's URLs
do holds nothing while the route answers the others, and a root that closes without a word is a
live process, not a hung one."""

import hashlib
import os
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port, sha256, wait_for
from test_cli import cli, server

FAST = ("--upstream-allow", "127.0.0.0/8", "--retry-delay", "50ms", "--stall-timeout", "1s")


def body_of(path):
    """The bytes a PeerOrigin serves at `path`."""
    return hashlib.sha256(path.encode()).digest() * 1000


class PeerOrigin:
    """An origin on 127.0.0.1 that answers by the address a request comes from, as a partner's
    firewall would: a request from one of `answers` gets 200 and its path's bytes; any other's
    is read, then `mode`: "reset" (closed with a TCP reset, not a word) or "hang" (never
    answered, kept open: a hung process, as far as that address can tell). Records (path, peer)
    of every request."""

    def __init__(self, answers, mode):
        self.peers = []
        self.stopped = threading.Event()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                peer = self.client_address[0]
                origin.peers.append((self.path, peer))
                self.close_connection = True
                if peer not in answers and mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    return
                if peer not in answers:
                    origin.stopped.wait(30)
                    return
                data = body_of(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def asked(self, prefix, peer):
        return sum(1 for path, p in self.peers if path.startswith(prefix) and p == peer)

    def stop(self):
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def partner_config(workdir, origin):
    """arca's config: the partner's prefix leaves from 127.0.0.2, every other URL from the
    kernel's choice (127.0.0.1 towards a loopback origin)."""
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write(f"[rule partner]\nmatch = {origin.url('/partner/')}\n"
                "outgoing-address = 127.0.0.2\n")
    return path


class Spray:
    """One client asking for new URLs made by `url_of(i)`, one after another, until stopped:
    the statuses it got."""

    def __init__(self, arca, url_of):
        self.statuses = []
        self.stop_event = threading.Event()

        def run():
            i = 0
            while not self.stop_event.is_set():
                self.statuses.append(arca.fetch(url_of(i))[0])
                i += 1

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join()


def test_a_partners_route_is_not_held_for_another_clients_resets(start_arca, workdir):
    origin = PeerOrigin(answers={"127.0.0.2"}, mode="reset")
    try:
        arca = start_arca("--config", partner_config(workdir, origin), *FAST,
                          "--download-retries", "1")
        spray = Spray(arca, lambda i: origin.url(f"/other/{i}"))
        try:
            wait_for(lambda: len(spray.statuses) >= 10, "the other client's URLs answered",
                     timeout=20)
            answers = [arca.fetch(origin.url(f"/partner/{i}")) for i in range(20)]
        finally:
            spray.stop()
        statuses = [a[0] for a in answers]
        assert statuses == [200] * 20, statuses
        for i, (_, _, body) in enumerate(answers):
            assert sha256(body) == sha256(body_of(f"/partner/{i}")), i
        assert {p for path, p in origin.peers if path.startswith("/partner/")} == {"127.0.0.2"}
        assert 200 not in spray.statuses  # the other client's URLs failed, its own trouble
    finally:
        origin.stop()


def test_a_hung_route_holds_only_the_address_it_leaves_from(start_arca, workdir):
    origin = PeerOrigin(answers={"127.0.0.1"}, mode="hang")
    try:
        arca = start_arca("--config", partner_config(workdir, origin), *FAST,
                          "--download-retries", "1")
        status, _, body = arca.fetch(origin.url("/partner/a"))
        assert status in (502, 504), (status, body)
        wait_for(lambda: arca.status()["upstream_hosts_down"] == 1, "the partner's route held")
        (down,) = arca.status()["upstream_hosts_down_list"]
        assert down["host"] == f"http://127.0.0.1:{origin.port}", down
        assert down["outgoing_address"] == "127.0.0.2" and down["hung"] is True, down
        # its root was asked from the address the route leaves from, not the kernel's choice
        assert ("/", "127.0.0.2") in origin.peers and ("/", "127.0.0.1") not in origin.peers
        status, headers, body = arca.fetch(origin.url("/partner/b"))
        assert status == 503 and headers["cache-status"] == "arca; detail=held-down", status
        assert (f"upstream host http://127.0.0.1:{origin.port} (leaving from 127.0.0.2) is "
                "down since") in body.decode(), body
        # the same host from the default address: every download served
        for i in range(20):
            status, _, body = arca.fetch(origin.url(f"/lab/{i}"))
            assert status == 200 and sha256(body) == sha256(body_of(f"/lab/{i}")), (i, status)
        assert arca.status()["upstream_hosts_down"] == 1  # the partner's route is still held
        page = arca.get("/statistics/")[2].decode()
        assert 'id="hosts-down"' in page and "(leaving from 127.0.0.2)" in page
        out = cli("status", *server(arca)).stdout
        assert f"127.0.0.1:{origin.port} (leaving from 127.0.0.2) down since" in out, out
    finally:
        origin.stop()


def test_resetting_urls_hold_nothing_when_the_root_resets_too(start_arca, origin):
    arca = start_arca(*FAST, "--download-retries", "1")
    origin.add("/", data=b"x", abort=True)  # nginx's `location = / { return 444; }`
    bad = origin.add("/bad", data=b"x", abort=True)
    sprayed = [arca.fetch(f"{bad}?n={i}")[0] for i in range(20)]
    assert origin.counts["/"] >= 1  # the host was asked about itself
    files = {f"/good{i}": os.urandom(3_000) for i in range(20)}
    answers = {path: arca.fetch(origin.add(path, data=data)) for path, data in files.items()}
    statuses = [a[0] for a in answers.values()]
    assert statuses == [200] * 20, statuses
    for path, (_, _, body) in answers.items():
        assert body == files[path], path
    assert 503 not in sprayed, sprayed
    assert arca.status()["upstream_hosts_down"] == 0
    assert arca.metrics()["arca_upstream_hosts_down"] == 0


@pytest.mark.timeout(60)
def test_one_clients_stalling_urls_hold_nothing_while_the_route_answers(start_arca, origin):
    arca = start_arca(*FAST, "--download-retries", "1")
    origin.add("/", data=b"x", stall=5)  # the root stalls too: its check would say "hung"
    slow = origin.add("/slow", data=b"x", stall=5)
    first = os.urandom(3_000)
    status, _, body = arca.fetch(origin.add("/first", data=first))  # another client's, served
    assert status == 200 and body == first
    spray = [threading.Thread(target=lambda i=i: arca.fetch(f"{slow}?n={i}"), daemon=True)
             for i in range(5)]
    for t in spray:
        t.start()
    for t in spray:
        t.join()
    assert origin.counts["/slow"] >= 5
    files = {f"/good{i}": os.urandom(3_000) for i in range(20)}
    statuses = []
    for path, data in files.items():
        status, _, body = arca.fetch(origin.add(path, data=data))
        statuses.append(status)
        assert status != 200 or body == data, path
    assert statuses == [200] * 20, statuses
    assert arca.status()["upstream_hosts_down"] == 0
    # a route that answered within the minute is not asked about itself at each stall
    assert origin.counts["/"] == 0, dict(origin.counts)
