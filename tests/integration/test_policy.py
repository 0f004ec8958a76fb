"""Who may fetch (--allow-network) and where arca may fetch from (the SSRF policy)."""

import http.client
import os
import socket
import subprocess
import urllib.parse

import pytest

from conftest import ARCA_BIN, Origin
from test_forwarded import fetch_path


def test_allowed_network_admits_the_client(origin, start_arca):
    url = origin.add("/x", data=b"x")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "127.0.0.1/32")
    assert arca.fetch(url)[0] == 200


def test_client_outside_allowed_networks_gets_403(origin, start_arca):
    url = origin.add("/x", data=b"x")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "10.0.0.0/8",
                      "--allow-network", "fd00::/8")
    status, _, body = arca.fetch(url)
    assert status == 403 and body.endswith(b"\n")
    assert origin.counts["/x"] == 0
    assert arca.get("/api/v1/health/")[0] == 200, "only fetch is restricted"


def test_allowed_networks_apply_to_ipv6_clients(origin, start_arca):
    url = origin.add("/v6", data=b"six")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "::1/128",
                      host="::1")
    assert arca.fetch(url)[:3:2] == (200, b"six")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "127.0.0.0/8",
                      host="::1")
    assert arca.fetch(url)[0] == 403
    assert origin.counts["/v6"] == 1


def test_loopback_upstream_refused_by_default(origin, start_arca):
    url = origin.add("/internal", data=b"secret")
    arca = start_arca()
    for u in [url, origin.url("/internal", host="localhost"),
              origin.url("/internal", host="[::ffff:127.0.0.1]")]:
        status, _, body = arca.fetch(u)
        assert status == 403, u
        assert b"refused" in body
    assert origin.counts["/internal"] == 0, "no request reached the origin"


def test_link_local_metadata_address_refused(start_arca):
    arca = start_arca()
    status, _, body = arca.fetch("http://169.254.169.254/latest/meta-data/")
    assert status == 403 and b"169.254" in body


def test_arca_refuses_to_fetch_from_itself(start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    status, _, body = arca.fetch(f"http://127.0.0.1:{arca.port}/api/v1/health/")
    assert status == 403 and b"arca itself" in body


def test_the_unspecified_address_is_arca_itself_whatever_is_allowed(start_arca):
    """A connection to 0.0.0.0 (or ::) reaches this host's listeners: with every address allowed
    upstream, arca listening on 127.0.0.1 still never fetches from, nor tunnels into, itself."""
    arca = start_arca("--upstream-allow", "0.0.0.0/0", "--upstream-allow", "::/0")
    port = arca.port
    arca.stop()  # again on the same port, tunnels allowed to it
    arca.args += ["--connect-port", str(port)]
    arca.start(keep_port=True)
    for host in ("0.0.0.0", "0", "[::ffff:0.0.0.0]", "[::]"):
        status, _, body = arca.fetch(f"http://{host}:{port}/metrics")
        assert status == 403 and b"arca itself" in body, (host, status, body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"CONNECT 0.0.0.0:{port} HTTP/1.1\r\nHost: 0.0.0.0:{port}\r\n\r\n".encode())
        head = s.recv(4096).split(b"\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 403"), head


@pytest.fixture
def second_origin():
    o = Origin(host="127.0.0.2")
    yield o
    o.stop()


def test_redirect_to_a_refused_address_is_403(origin, second_origin, start_arca):
    target = origin.add("/target", data=b"internal")
    hop = second_origin.add("/hop", redirect=target)
    arca = start_arca("--upstream-allow", "127.0.0.2/32")  # only the redirecting host
    status, _, body = arca.fetch(hop)
    assert status == 403 and b"127.0.0.1" in body
    assert second_origin.counts["/hop"] == 1
    assert origin.counts["/target"] == 0


def test_redirects_are_followed_within_policy(origin, start_arca):
    data = os.urandom(1000)
    target = origin.add("/final", data=data)
    origin.add("/r1", redirect=origin.url("/r2"))
    origin.add("/r2", redirect=target)
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    status, _, body = arca.fetch(origin.url("/r1"))
    assert status == 200 and body == data


def test_a_chain_of_twelve_redirects_is_followed(origin, arca):
    # wget follows 20 by default; arca used to stop at 5
    data = os.urandom(500)
    target = origin.add("/end", data=data)
    for i in range(12):
        origin.add(f"/hop{i}", redirect=origin.url(f"/hop{i + 1}") if i < 11 else target)
    status, _, body = arca.fetch(origin.url("/hop0"))
    assert status == 200 and body == data


def test_redirect_loop_stops_after_max_redirects(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-redirects", "3")
    origin.add("/loop", redirect=origin.url("/loop"))
    status, _, body = arca.fetch(origin.url("/loop"))
    assert status == 502 and b"redirect" in body
    assert origin.counts["/loop"] == 4


def test_client_headers_are_not_forwarded_upstream(origin, arca):
    url = origin.add("/private", data=b"p")
    secret = {"Authorization": "Bearer lab-secret", "Cookie": "session=1", "X-Forwarded-For": "1.2.3.4"}
    assert arca.fetch(url, headers=secret)[0] == 200
    _, sent = origin.requests[-1]
    names = {k.lower() for k in sent}
    assert not names & {"authorization", "cookie", "x-forwarded-for", "range"}
    assert sent["User-Agent"].startswith("arca/")


def test_other_spellings_of_loopback_are_refused(origin, start_arca):
    origin.add("/alias", data=b"secret")
    arca = start_arca()
    port = origin.port
    for host in ["2130706433", "0x7f.1", "127.1", "0.0.0.0", "[::1]", "[::]",
                 "[0:0:0:0:0:ffff:7f00:1]"]:
        status, _, body = arca.fetch(f"http://{host}:{port}/alias")
        assert status in (403, 502), host  # refused, or not an address at all
        assert status == 403 or b"refused" not in body
    assert origin.counts["/alias"] == 0


def test_redirect_to_other_schemes_is_refused(origin, arca):
    for target in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/x"]:
        path = "/to-" + target.split(":")[0]
        origin.add(path, redirect=target)
        status, _, body = arca.fetch(origin.url(path))
        assert status == 502 and b"scheme" in body, target


# --- who may fetch by default: loopback and the private networks ---------------------------

PUBLIC, PRIVATE = "203.0.113.7", "10.1.2.3"


def as_client(arca, path, client):
    """GET `path` as `client`, through the scenario's own socket playing the trusted proxy on
    127.0.0.1 (started with --trusted-proxy 127.0.0.1), which names it in X-Forwarded-For:
    (status, body)."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    try:
        conn.request("GET", path, headers={"X-Forwarded-For": client})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_by_default_only_local_networks_fetch(origin, start_arca, workdir):
    url = origin.add("/rootfs.img", data=b"r" * 5000)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--trusted-proxy", "127.0.0.1")
    status, body = as_client(arca, fetch_path(url), PUBLIC)
    assert status == 403, body
    assert body.count(b"\n") == 1 and b"--allow-network" in body
    assert origin.counts["/rootfs.img"] == 0
    status, body = as_client(arca, fetch_path(url), PRIVATE)
    assert status == 200 and body == b"r" * 5000
    for client in ("192.168.7.7", "172.20.0.3", "100.64.1.1", "fd00::7", "::ffff:10.9.9.9"):
        assert as_client(arca, fetch_path(url), client)[0] == 200, client
    assert arca.fetch(url)[0] == 200  # loopback itself, no proxy
    # the listings of cached URLs follow who may fetch
    assert as_client(arca, "/api/v1/resources/", PUBLIC)[0] == 403
    assert as_client(arca, "/api/v1/resources/", PRIVATE)[0] == 200
    # where it is said: status JSON, arca status, the help page and the start-up log
    status = arca.status()
    assert status["allow_networks_default"] is True
    assert {"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
            "100.64.0.0/10", "fc00::/7", "fe80::/10"} <= set(status["allow_networks"])
    assert ("may fetch  loopback and private networks (the default: no --allow-network given):"
            "\n           127.0.0.0/8, ::1/128, 10.0.0.0/8,") in arca_status(arca)
    status, page = as_client(arca, "/help/", PUBLIC)
    assert status == 200 and b'class="no">may not</span>' in page
    assert b"The default (no <code>--allow-network</code> given)" in page
    assert b"<li><code>192.168.0.0/16</code></li>" in page
    assert arca.log_shows("may fetch: 127.0.0.0/8, ::1/128, 10.0.0.0/8")
    assert "(the default: loopback and private networks" in arca.read_log()


def arca_status(arca):
    """What `arca status` prints for this arca."""
    return subprocess.run([ARCA_BIN, "status", "--server", f"http://{arca.host}:{arca.port}"],
                          capture_output=True, text=True, timeout=30).stdout


def test_allow_network_all_lets_every_client_fetch(origin, start_arca):
    url = origin.add("/rootfs.img", data=b"r" * 5000)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--trusted-proxy", "127.0.0.1",
                      "--allow-network", "all")
    status, body = as_client(arca, fetch_path(url), PUBLIC)
    assert status == 200 and body == b"r" * 5000
    assert as_client(arca, fetch_path(url), "2001:db8::5")[0] == 200
    status = arca.status()
    assert status["allow_networks"] == ["0.0.0.0/0", "::/0"]
    assert status["allow_networks_default"] is False
    assert b"Every client may fetch" in arca.get("/help/")[2]
    assert arca.log_shows("may fetch: every client (--allow-network all)")
    # arca status says it as the log does, not as the two networks it stands for
    assert "may fetch  every client (--allow-network all)\n" in arca_status(arca)
    # a list of its own replaces the default: a private address outside it is refused
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--trusted-proxy", "127.0.0.1",
                      "--allow-network", "203.0.113.0/24")
    assert as_client(arca, fetch_path(url), PUBLIC)[0] == 200
    status, body = as_client(arca, fetch_path(url), PRIVATE)
    assert status == 403 and b"not in --allow-network" in body
    assert "may fetch  203.0.113.0/24 (--allow-network)\n" in arca_status(arca)
