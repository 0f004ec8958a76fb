"""Outgoing address (Squid's tcp_outgoing_address, nginx's proxy_bind): --outgoing-address ADDR
binds every upstream connection to ADDR, so an origin's or a parent's allow list can name the
site; a rule's outgoing-address does so for its prefix. Checked at start: an address of this
host, else one line and exit 2. An IPv4 address is never used to reach an IPv6 upstream."""

import json
import os
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ARCA_BIN, free_port, sha256, wait_for


class PeerOrigin:
    """An origin on 127.0.0.1 (or ::1) that answers every path with its bytes and records the
    peer address of each request, as its access log would show it."""

    def __init__(self, host="127.0.0.1"):
        self.peers = []
        self.data = os.urandom(40_000)
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                origin.peers.append((self.path, self.client_address[0]))
                self.send_response(200)
                self.send_header("Content-Length", str(len(origin.data)))
                self.end_headers()
                self.wfile.write(origin.data)

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self.server = Server((host, free_port(host)), Handler)
        self.host, self.port = host, self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer_origin():
    o = PeerOrigin()
    yield o
    o.stop()


def peers_of(origin, prefix):
    return {peer for path, peer in origin.peers if path.startswith(prefix)}


def test_downloads_leave_from_the_outgoing_address(start_arca, peer_origin):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--outgoing-address", "127.0.0.2")
    status, _, body = arca.fetch(peer_origin.url("/fw/a.bin"))
    assert status == 200 and sha256(body) == sha256(peer_origin.data)
    assert peers_of(peer_origin, "/fw/") == {"127.0.0.2"}
    assert arca.log_shows("upstream connections leave from 127.0.0.2")


def test_a_rules_address_for_its_prefix_and_the_options_for_the_rest(start_arca, peer_origin,
                                                                     workdir):
    ini = os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\noutgoing-address = 127.0.0.2\n\n"
                f"[rule lab]\nmatch = {peer_origin.url('/lab/')}\n"
                "outgoing-address = 127.0.0.3\n")
    p = subprocess.run([ARCA_BIN, "rules", "test", "--config", ini, "--json",
                        peer_origin.url("/lab/x")], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["terms"]["outgoing-address"] == \
        {"value": "127.0.0.3", "from": "rule lab"}, p.stdout
    arca = start_arca("--config", ini)
    for path in ("/lab/one", "/other/two"):
        status, _, body = arca.fetch(peer_origin.url(path))
        assert status == 200 and sha256(body) == sha256(peer_origin.data), path
    assert peers_of(peer_origin, "/lab/") == {"127.0.0.3"}
    assert peers_of(peer_origin, "/other/") == {"127.0.0.2"}


@pytest.mark.parametrize("value, why", [
    ("192.0.2.77", "192.0.2.77 is not an address of this host"),
    ("example.org", "expected an IPv4 or IPv6 address of this host, or one of each "
                    "(ADDR4,ADDR6), got 'example.org'"),
    ("127.0.0.2,127.0.0.3", "expected an IPv4 or IPv6 address of this host, or one of each "
                            "(ADDR4,ADDR6), got '127.0.0.2,127.0.0.3'"),
])
def test_an_address_not_of_this_host_is_one_line_and_exit_2(value, why, workdir):
    p = subprocess.run([ARCA_BIN, "serve", "--data-dir", os.path.join(workdir, "d"),
                        "--outgoing-address", value], capture_output=True, text=True,
                       timeout=10)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"arca: --outgoing-address: {why}\n")
    p = subprocess.run([ARCA_BIN, "check-config", "--outgoing-address", value],
                       capture_output=True, text=True, timeout=10)
    assert (p.returncode, p.stderr) == (1, f"arca: --outgoing-address: {why}\n")


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv4_address_is_never_used_for_an_ipv6_upstream(start_arca):
    origin = PeerOrigin("::1")
    try:
        arca = start_arca("--upstream-allow", "::1/128", "--outgoing-address", "127.0.0.2")
        status, headers, body = arca.fetch(origin.url("/v6"))
        assert status == 403 and origin.peers == [], (status, body)  # as a refused address
        assert b"--outgoing-address has no IPv6 address to leave from" in body, body
        both = start_arca("--upstream-allow", "::1/128", "--outgoing-address", "127.0.0.2,::1")
        status, _, body = both.fetch(origin.url("/v6-both"))
        assert status == 200 and origin.peers == [("/v6-both", "::1")]
    finally:
        origin.stop()


def test_a_sites_asks_reach_its_parent_from_the_outgoing_address(start_tier, peer_origin):
    """The parent's access log (its allow list's view) sees the site's outgoing address."""
    parent, (site,) = start_tier(1, "--outgoing-address", "127.0.0.2")
    status, _, body = site.fetch(peer_origin.url("/tier/a.bin"))
    assert status == 200 and sha256(body) == sha256(peer_origin.data)
    wait_for(lambda: os.path.getsize(parent.access_log) > 0, "the parent's access line")
    with open(parent.access_log) as f:
        clients = {line.split(" ", 1)[0] for line in f if "/api/v1/fetch/" in line}
    assert clients == {"127.0.0.2"}, clients
    assert peers_of(peer_origin, "/tier/") == {"127.0.0.1"}  # the parent's own, unbound
