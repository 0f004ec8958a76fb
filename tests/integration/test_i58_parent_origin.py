"""A site's parent is never an origin, and what differs by client is never one answer for all
(docs/SECURITY.md "Rules (issue 52)", docs/CLUSTER.md "Parents"; the outside review of issue
58, findings 1 and 3 and its notes).

- The site's parent as a relay around the site's rules: a client refused a URL at the site
  names the central's own fetch API as the origin URL (with a `token=` so the site does not
  send it to a plain parent), is redirected there, or tunnels to the central through CONNECT;
  the central sees the site's address, which it must let fetch everything the site's boards
  may. A URL, a redirect or a tunnel to a parent's place is refused (403).
- Answers that differ by client (the listings, the status JSON, the metrics and the pages
  where rules name networks) say Cache-Control private (or no-store), so a shared cache in
  front never answers one client with another's.
- `%3B` in a path segment is a `;` for who may fetch; a proxied `max-age=1e3` is no max-age;
  a bucket hidden from a client answers it as an unknown bucket."""

import http.client
import os
import socket
import time

import pytest

from conftest import one_request, sha256, wait_for
from s3 import ACCESS, S3, SECRET
from test_rules import config  # noqa: F401 (a fixture: the scenario's INI file)
from test_rules import proxied, rule, write

LOOPBACK = ("upstream-allow = 127.0.0.0/8",)
TRUSTED = ("trusted-proxy = 127.0.0.1",)  # X-Forwarded-For names the other clients
BOARD = {"X-Forwarded-For": "10.1.2.3"}  # inside the private rule's networks
OUTSIDER = {"X-Forwarded-For": "192.168.7.7"}  # inside --allow-network, outside the rule's
PARENT = b"names this arca's parent"


def prefixed(arca, url, headers=None):
    return arca.fetch(url, headers=headers)


def private_rule(origin):
    return rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8")


def site_and_central(origin, start_arca, config, *lines):
    """A central arca (no rules: it lets its sites fetch everything, as a central must for the
    boards behind them) and a site whose rule `private` lets only the boards fetch."""
    central = start_arca("--upstream-allow", "127.0.0.0/8", name="central")
    write(config, private_rule(origin), arca=LOOPBACK + TRUSTED + lines)
    site = start_arca("--config", config, "--parent", central.base, name="site")
    return central, site


def test_the_parents_fetch_api_named_as_an_origin_does_not_walk_around_a_sites_rule(
        origin, start_arca, config):
    """The outsider, refused `/private/fw.bin` at the site, asks the site for the central's
    own fetch URL of it: `url=http://CENTRAL/api/v1/fetch/?url=<private>?token=x`. The
    `token=` makes the URL one the site does not send to a plain-HTTP parent, so the site
    fetched it from its "origin", the central's fetch API: the central saw the site's address,
    fetched the firmware, and the site handed it to the outsider. Now refused (403: the URL it
    carries is not the outsider's), through the prefix and the proxy, the central asked
    nothing; the board still gets the firmware through the parent."""
    data = os.urandom(30_000)
    private = origin.add("/private/fw.bin", data=data)
    central, site = site_and_central(origin, start_arca, config)
    assert prefixed(site, private, OUTSIDER)[0] == 403
    for wrapped in (f"{central.base}/api/v1/fetch/?url={private}?token=x",
                    f"{central.base}/api/v1/fetch/fw.bin?url={private}?X-Amz-Signature=1",
                    f"http://localhost:{central.port}/api/v1/fetch/?url={private}?token=x"):
        for get in (prefixed, proxied):
            status, headers, body = get(site, wrapped, OUTSIDER)
            assert not (status == 200 and sha256(body) == sha256(data)), \
                (get.__name__, wrapped, status, headers.get("cache-status"),
                 "the outsider got rule private's firmware through the central's fetch API")
            # the client is judged first (test_stranger_words.py): the URL the query carries
            # refuses it, whatever the URL around it names (test_i58_parent_relay.py)
            assert status == 403 and b"carries URL" in body, (get.__name__, wrapped, status, body)
    assert origin.counts["/private/fw.bin"] == 0  # the central was never asked
    status, _, body = prefixed(site, private, BOARD)
    assert status == 200 and sha256(body) == sha256(data)
    assert origin.counts["/private/fw.bin"] == 1  # through the parent, which keeps it
    assert central.fetch(private)[1].get("cache-status", "").startswith("arca; hit")


def test_a_redirect_to_the_parent_is_not_followed(origin, start_arca, config):
    """An origin URL no rule names redirects to the central's fetch API for the private
    firmware: the site follows no redirect to its parent's place (403, naming the parent)."""
    data = os.urandom(30_000)
    private = origin.add("/private/fw.bin", data=data)
    central, site = site_and_central(origin, start_arca, config)
    go = origin.add("/go", redirect=f"{central.base}/api/v1/fetch/?url={private}")
    for get in (prefixed, proxied):
        status, headers, body = get(site, f"{go}?token=x", OUTSIDER)
        assert not (status == 200 and sha256(body) == sha256(data)), \
            (get.__name__, status, headers.get("cache-status"), "followed to the parent")
        assert status == 403 and PARENT in body, (get.__name__, status, body)
    assert origin.counts["/private/fw.bin"] == 0


def test_a_tunnel_to_the_parent_does_not_walk_around_a_sites_rule(origin, start_arca, config):
    """The same through CONNECT: the central listens on a port CONNECT may reach (443, where a
    central over the WAN answers https://), so the outsider tunnels through the site to it and
    asks the central itself, which sees the site's address. A tunnel to a host a rule names is
    refused (SECURITY.md, "A CONNECT tunnel past the rules"); the parent serves every URL the
    site's rules name, so a tunnel to it is refused (403, naming the parent)."""
    data = os.urandom(30_000)
    private = origin.add("/private/fw.bin", data=data)
    central = start_arca("--upstream-allow", "127.0.0.0/8", name="central")
    write(config, private_rule(origin),
          arca=LOOPBACK + TRUSTED + (f"connect-port = {central.port}",))  # as 443 is
    site = start_arca("--config", config, "--parent", central.base, name="site")
    for target in (f"127.0.0.1:{central.port}", f"localhost:{central.port}"):
        s = socket.create_connection((site.host, site.port), source_address=("127.0.0.7", 0),
                                     timeout=10)
        with s:
            s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                got = s.recv(1)
                if not got:
                    break
                head += got
            answer = b""
            if head.startswith(b"HTTP/1.1 200"):
                s.sendall(f"GET /api/v1/fetch/?url={private} HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n".encode())
            while got := s.recv(65536):
                answer += got
        assert data not in answer, (answer[:60], "the outsider got the firmware through a "
                                    "tunnel to the site's parent, which saw the site's address")
        assert head.startswith(b"HTTP/1.1 403"), (target, head, answer)
        assert PARENT in answer or "localhost" in target, (target, answer)
    assert origin.counts["/private/fw.bin"] == 0


def test_answers_that_differ_by_client_are_never_one_for_every_client(origin, start_arca,
                                                                      config):
    """Where rules name networks, /api/v1/resources/ and /resources/ list each client what it
    may fetch, and the status JSON, metrics, statistics and help pages show a stranger the
    parents' counters only: answers that differ by client. Each says `Cache-Control: private`
    (no-store for the HTML pages), so that a shared cache in front (the load balancer arca
    trusts for X-Forwarded-For) never answers one client with another's."""
    data = os.urandom(5_000)
    private = origin.add("/private/fw.bin", data=data)
    central, site = site_and_central(origin, start_arca, config)
    assert prefixed(site, private, BOARD)[0] == 200
    wait_for(lambda: private.encode() in site.get("/api/v1/resources/", BOARD)[2], "listed")
    for path in ("/api/v1/resources/", "/api/v1/resources/?state=successes",
                 "/api/v1/status/", "/metrics", "/resources/", "/statistics/", "/help/"):
        status, headers, _ = site.get(path, BOARD)
        said = headers.get("cache-control", "")
        assert status == 200 and ("private" in said or "no-store" in said), \
            (path, status, said, "an answer for this client alone may be cached for all")


def test_an_escaped_semicolon_is_a_path_parameter_for_who_may_fetch(origin, start_arca, config):
    """`%3B` (`%3b`) is `;` to Tomcat, Jetty and Spring once decoded: `/private%3bx=1/a.bin`
    and `/pub/..%3B/private/a.bin` are served as `/private/a.bin`, so the outsider is refused
    them under rule private, before any download; the board fetches them, and the origin is
    asked the URL as the client wrote it."""
    data = os.urandom(20_000)
    spellings = ("/private%3bx=1/a.bin", "/private%3Bx=1/a.bin", "/pub/..%3b/private/a.bin",
                 "/pub/..%3B/private/a.bin")
    for path in spellings:
        origin.add(path, data=data)
    write(config, private_rule(origin), arca=LOOPBACK + TRUSTED)
    arca = start_arca("--config", config)
    for get in (prefixed, proxied):
        for path in spellings:
            asked = sum(origin.counts.values())
            status, _, body = get(arca, origin.url(path), OUTSIDER)
            assert status == 403 and b"rule private" in body, (get.__name__, path, status, body)
            assert sum(origin.counts.values()) == asked, (get.__name__, path)
    for path in spellings:
        status, _, body = prefixed(arca, origin.url(path), BOARD)
        assert status == 200 and sha256(body) == sha256(data), (path, status, body[:200])
    assert origin.targets and not any(";" in t for t in origin.targets), origin.targets


def test_a_proxied_max_age_is_read_as_delta_seconds_only(origin, start_arca, config):
    """`Cache-Control: max-age=1e3` is no delta-seconds (RFC 9111 1.2.2: digits only): it is
    ignored, never read as max-age=1. An object 2 s old is then answered from the cache; a
    true `max-age=1` still revalidates it."""
    origin.add("/apt/InRelease", data=b"index" * 1000, etag='"i1"')
    url = origin.url("/apt/InRelease")
    write(config, arca=LOOPBACK)
    arca = start_arca("--config", config)
    assert proxied(arca, url)[0] == 200
    born = time.monotonic()
    wait_for(lambda: time.monotonic() - born > 2.2, "the copy 2 s old", 5)
    for value in ("max-age=1e3", "max-age=1.5e3", "max-age=+5", "max-age=1x"):
        status, headers, _ = proxied(arca, url, {"Cache-Control": value})
        assert status == 200 and origin.counts["/apt/InRelease"] == 1, \
            (value, headers.get("cache-status"), "a malformed max-age was read as a number")
    assert proxied(arca, url, {"Cache-Control": "max-age=1"})[0] == 200
    assert origin.counts["/apt/InRelease"] == 2  # a true max-age=1 revalidates


@pytest.fixture
def s3():
    server = S3(buckets=["lab", "vault"])
    yield server
    server.stop()


def test_a_hidden_bucket_answers_as_an_unknown_one(start_arca, workdir, s3):
    """Bucket vault is the board's alone (rule locked): its name is not on the outsider's
    buckets page, and /browse/vault, /browse/vault/ and below answer the outsider exactly as a
    bucket that does not exist (status and body), never a 302 or a 403 naming a rule."""
    s3.put("vault", "keys/a.pem", b"k" * 100)
    creds = os.path.join(workdir, "s3.creds")
    with open(creds, "w") as f:
        f.write(f"{ACCESS}\n{SECRET}\n")
    ini = os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\n")
        for name in ("lab", "vault"):
            f.write(f"\n[bucket {name}]\nurl = {s3.url(name)}\ncredentials = {creds}\n")
        f.write(f"\n[rule locked]\nmatch = {s3.url('vault')}/\nallow-network = 127.0.0.2/32\n")
    arca = start_arca("--config", ini)

    def ask(path, source):
        conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30,
                                          source_address=(source, 0))
        return one_request(conn, "GET", path)

    for rest in ("", "/", "/keys/", "/keys/a.pem", "/?export=json"):
        unknown = ask(f"/browse/nosuch{rest}", "127.0.0.1")
        hidden = ask(f"/browse/vault{rest}", "127.0.0.1")
        assert unknown[0] == 404 and hidden[0] == unknown[0], (rest, hidden[0], hidden[2][:200])
        assert hidden[2] == unknown[2].replace(b"nosuch", b"vault"), (rest, hidden[2][:200])
    assert ask("/browse/vault", "127.0.0.2")[0] == 302  # the board's bucket, as before
    status, _, body = ask("/browse/vault/keys/a.pem", "127.0.0.2")
    assert status == 200 and body == b"k" * 100
