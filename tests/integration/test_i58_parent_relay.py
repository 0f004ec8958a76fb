"""A site's parent as a relay at an address or port the site does not know as its parent's
(docs/SECURITY.md "The parent as a relay"; the second outside review of issue 58, finding 1).

The central serves whatever the site's address may fetch, so a client refused a URL at the site
names the central's fetch API at another of its addresses (a central listening on 0.0.0.0) or
its other listener (--tls-listen beside --listen), with the refused URL in its query. The site
judges every URL a URL carries in its query for its client, as the URL itself: refused (403
naming the rule), through the prefix, the proxy, a redirect, a cached redirect's hops, a digest
hit and the listings. A CONNECT tunnel carries bytes the site cannot read: what holds there is
--connect-port's default and a central that requires client certificates."""

import http.client
import os
import socket
import ssl

from conftest import free_port, one_request, sha256
from test_rules import config  # noqa: F401 (a fixture: the scenario's INI file)
from test_rules import proxied, reload, rule, write

LOOPBACK = ("upstream-allow = 127.0.0.0/8",)
TRUSTED = ("trusted-proxy = 127.0.0.1",)  # X-Forwarded-For names the other clients
BOARD = {"X-Forwarded-For": "10.1.2.3"}  # inside the private rule's networks
OUTSIDER = {"X-Forwarded-For": "192.168.7.7"}  # inside --allow-network, outside the rule's


def private_rule(origin):
    return rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8")


def prefixed(arca, url, headers):
    return arca.fetch(url, headers=headers)


def wide_central(origin, start_arca, config, *site_lines, rules=True, parent=True):
    """A central on every address (arca's default) and a site naming it by 127.0.0.1 (or, not
    `parent`, a site that asks the origin itself and the central as any other origin); the
    firmware under rule private at the origin. The wrapper names the central at 127.0.0.2."""
    data = os.urandom(30_000)
    private = origin.add("/private/fw.bin", data=data)
    central = start_arca("--upstream-allow", "127.0.0.0/8", host="0.0.0.0", name="central")
    write(config, *((private_rule(origin),) if rules else ()),
          arca=LOOPBACK + TRUSTED + site_lines)
    named = ("--parent", f"http://127.0.0.1:{central.port}") if parent else ()
    site = start_arca("--config", config, *named, name="site")
    wrapped = f"http://127.0.0.2:{central.port}/api/v1/fetch/?url={private}?token=x"
    return site, central, private, wrapped, data


# --- the finding's scenarios ----------------------------------------------------------------

def test_another_address_of_the_parents_listener_is_still_the_parent(origin, start_arca,
                                                                     config):
    """The outsider names the central's fetch API at 127.0.0.2:P (the site knows 127.0.0.1:P):
    the URL it carries is rule private's, which the outsider may not fetch."""
    site, _, private, wrapped, data = wide_central(origin, start_arca, config)
    assert site.fetch(private, headers=OUTSIDER)[0] == 403
    for get in (prefixed, proxied):
        status, headers, body = get(site, wrapped, OUTSIDER)
        assert not (status == 200 and sha256(body) == sha256(data)), \
            (status, headers.get("cache-status"),
             "the outsider got rule private's firmware through another address of the parent")
        assert status == 403, (status, body[:300])
        said = body.decode(errors="replace") + headers.get("arca-error", "")
        assert "carries URL" in said and "rule private's allow-network" in said, said
        assert "token=x" not in said, said  # the carried URL's secret is not said
    assert origin.counts["/private/fw.bin"] == 0


def test_the_parents_other_listener_is_still_the_parent(origin, start_arca, start_tls_arca,
                                                       tls_files, config):
    """The central's HTTPS port (--tls-listen) beside the plain one the site names."""
    data = os.urandom(30_000)
    private = origin.add("/private/fw.bin", data=data)
    central = start_tls_arca("--upstream-allow", "127.0.0.0/8", name="central")
    write(config, private_rule(origin),
          arca=("upstream-allow = 127.0.0.0/8", f"ca-file = {tls_files['ca']}") + TRUSTED)
    site = start_arca("--config", config, "--parent", central.base, name="site")
    assert site.fetch(private, headers=OUTSIDER)[0] == 403
    wrapped = f"{central.tls_base}/api/v1/fetch/?url={private}?token=x"
    status, headers, body = site.fetch(wrapped, headers=OUTSIDER)
    assert not (status == 200 and sha256(body) == sha256(data)), \
        (status, headers.get("cache-status"), "the firmware through the parent's HTTPS port")
    assert status == 403, (status, body[:300])
    assert origin.counts["/private/fw.bin"] == 0


def tunnel(site, target, then=None):
    """CONNECT `target` through the site as the outsider: (head, the socket or None)."""
    s = socket.create_connection((site.host, site.port), timeout=10)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: x\r\n"
              "X-Forwarded-For: 192.168.7.7\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head and (got := s.recv(1)):
        head += got
    return head, s


def test_the_default_connect_port_keeps_a_tunnel_from_the_parents_other_address(
        origin, start_arca, config):
    """A tunnel carries bytes the site cannot judge (SECURITY.md, "The parent as a relay"):
    --connect-port's default (443 only) keeps the outsider from the central's port at any
    address."""
    site, central, private, _, data = wide_central(origin, start_arca, config)
    head, s = tunnel(site, f"127.0.0.2:{central.port}")
    with s:
        answer = b""
        if head.startswith(b"HTTP/1.1 200"):
            s.sendall(f"GET /api/v1/fetch/?url={private} HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\n\r\n".encode())
        while got := s.recv(65536):
            answer += got
    assert data not in answer
    assert head.startswith(b"HTTP/1.1 403"), head
    assert origin.counts["/private/fw.bin"] == 0


def test_a_central_that_requires_certificates_refuses_a_tunnelled_client(
        origin, start_arca, config, tls_files, tls_pki):
    """connect-port lets the central's HTTPS port (as 443 for a central over the WAN); the
    central listens for HTTPS on every address, plain HTTP on loopback only, and requires the
    sites' certificates (--tls-client-ca): the outsider tunnels to 127.0.0.2 (an address the
    site does not know as its parent's) and shows none, so the central refuses the handshake."""
    data = os.urandom(30_000)
    private = origin.add("/private/fw.bin", data=data)
    tls_port = free_port()
    central = start_arca("--upstream-allow", "127.0.0.0/8", "--tls-listen", f":{tls_port}",
                         "--tls-cert", tls_files["cert"], "--tls-key", tls_files["key"],
                         "--tls-client-ca", tls_pki["client_ca"], name="central")
    write(config, private_rule(origin),
          arca=LOOPBACK + TRUSTED + (f"connect-port = {tls_port}", f"ca-file = {tls_files['ca']}",
                                     f"parent-cert = {tls_pki['client_cert']}",
                                     f"parent-key = {tls_pki['client_key']}"))
    site = start_arca("--config", config, "--parent", f"https://127.0.0.1:{tls_port}",
                      name="site")
    status, _, body = site.fetch(private, headers=BOARD)  # the site itself is served
    assert status == 200 and body == data
    head, s = tunnel(site, f"127.0.0.2:{tls_port}")
    answer = b""
    with s:
        assert head.startswith(b"HTTP/1.1 200"), head  # the tunnel opens: raw bytes
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        try:
            with ctx.wrap_socket(s) as t:
                t.sendall(f"GET /api/v1/fetch/?url={private} HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n".encode())
                while got := t.recv(65536):
                    answer += got
        except (ssl.SSLError, OSError) as e:
            answer += repr(e).encode()
    assert data not in answer and b"HTTP/1.1 200" not in answer, answer[:300]
    assert origin.counts["/private/fw.bin"] == 1  # the board's download alone


# --- what inherits the judgement (terms_decide) ---------------------------------------------

def test_a_redirect_to_a_url_carrying_a_private_one_is_not_followed(origin, start_arca, config):
    """/pub/go, everyone's, redirects to the central's fetch API carrying rule private's URL:
    its bytes would go to every client /pub/go lets in. Not followed, for the board too. (A site
    asks the origin itself here: a parent would follow the redirect itself.)"""
    site, _, private, wrapped, data = wide_central(origin, start_arca, config, parent=False)
    go = origin.add("/pub/go", redirect=wrapped)
    for headers in (OUTSIDER, BOARD):
        for get in (prefixed, proxied):
            status, _, body = get(site, go, headers)
            assert status == 403 and data not in body, (status, body[:300])
            assert b"not followed" in body and b"token=x" not in body, body[:300]
    assert origin.counts["/private/fw.bin"] == 0


def test_a_cached_redirect_to_a_url_carrying_a_private_one_is_refused_once_a_rule_narrows(
        origin, start_arca, config):
    """Downloaded before rule private existed, /pub/go's hop (the wrapper) carries a URL the
    rule now keeps from the outsider: its hit is refused to it (hops), the board's served."""
    site, _, private, wrapped, data = wide_central(origin, start_arca, config, rules=False,
                                                   parent=False)
    go = origin.add("/pub/go", redirect=wrapped)
    status, _, body = site.fetch(go, headers=BOARD)
    assert status == 200 and body == data
    write(config, private_rule(origin), arca=LOOPBACK + TRUSTED)
    reload(site)
    for get in (prefixed, proxied):
        status, _, body = get(site, go, OUTSIDER)
        assert status == 403 and data not in body, (status, body[:300])
        assert get(site, go, BOARD)[0] == 200


def test_a_listing_and_a_digest_hit_keep_a_carried_private_url_from_the_outsider(
        origin, start_arca, config):
    """The board fetches the wrapper (it may fetch what it carries): the outsider's listings do
    not show it, and its digest request for another URL is not answered from it."""
    site, _, private, wrapped, data = wide_central(origin, start_arca, config)
    status, _, body = site.fetch(wrapped, headers=BOARD)
    assert status == 200 and body == data
    for listing in ("/api/v1/resources/?state=successes", "/resources/successes/"):
        status, _, body = site.get(listing, OUTSIDER)
        assert status == 200 and b"/private/" not in body and b"api/v1/fetch" not in body, \
            (listing, body[:600])
    assert b"/private/" in site.get("/api/v1/resources/?state=successes", BOARD)[2]
    other = origin.add("/pub/other.bin", data=os.urandom(1000))
    path = site.fetch_path(other, sha256=sha256(data))
    conn = http.client.HTTPConnection(site.host, site.port, timeout=30)
    status, _, body = one_request(conn, "GET", path, {**OUTSIDER}, cut_is_partial=True)
    assert data[:4096] not in body and sha256(body) != sha256(data), (status, len(body))
    assert site.metrics()["arca_digest_hits_total"] == 0
