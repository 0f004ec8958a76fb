"""A cached object whose download followed redirects is given only to a client that may fetch
every URL they took it to, under the rules in force at each request (docs/CACHING.md "When
rules change", docs/SECURITY.md "A redirect into another rule").

An outsider fetched /to/secret2/s.bin (a redirect to /secret2/s.bin) before a rule made
/secret2/ the board's: its next request is refused as a download of it would be (`403
redirected to ..., under rule secret2's allow-network: not followed`), its answer shows nothing
of the target (no bytes, no Arca-Redirect, no validator), through the fetch prefix, the proxy,
a 304's conditions, an expired copy answering while its origin fails, a digest hit, a site that
holds the copy, and a parent that holds it for a site; the board still gets its hit."""

import http.client
import os

from conftest import one_request, resource, sha256, wait_age, wait_for
from test_rules import LOOPBACK, proxied, reload, rule, write
from tier import asked_by_children, members

OUTSIDER = {"X-Forwarded-For": "203.0.113.7"}
BOARD = {"X-Forwarded-For": "10.1.2.3"}


def config(workdir, name, *sections):
    """Every client may fetch but where a rule says otherwise; X-Forwarded-For names them."""
    return write(os.path.join(workdir, f"{name}.ini"), *sections,
                 arca=LOOPBACK + ("trusted-proxy = 127.0.0.1", "allow-network = all"))


def secret(origin):
    """/secret2/s.bin and /to/secret2/s.bin, which redirects to it: (its bytes, the URL)."""
    data = os.urandom(51_200)
    target = origin.add("/secret2/s.bin", data=data, etag='"s2"')
    return data, origin.add("/to/secret2/s.bin", redirect=target)


def prefixed(arca, url, headers=None):
    return arca.fetch(url, headers=headers)


def refused(answer, data, what, said=True):
    """A refusal that tells nothing of the target but what a download of the URL would say
    (`said`: this arca's own words; else a site's relaying its parent's)."""
    status, headers, body = answer
    assert status == 403 and (not said or (b"not followed" in body and b"rule secret2" in body)), \
        (what, status, headers.get("cache-status"), body[:200])
    assert data[:64] not in body, what
    for name in ("arca-redirect", "etag", "last-modified", "repr-digest", "age"):
        assert name not in headers, (what, name, headers[name])
    assert members(headers)[-1] == "arca; fwd=uri-miss", (what, headers.get("cache-status"))


def served(answer, data, what):
    status, headers, body = answer
    assert status == 200 and sha256(body) == sha256(data), (what, status, body[:200])
    assert "/secret2/s.bin" in headers.get("arca-redirect", ""), (what, headers)
    return headers


def test_a_cached_redirect_into_a_rule_made_since_is_refused_to_its_outsiders(
        start_arca, origin, workdir):
    data, url = secret(origin)
    copy = origin.add("/pub/copy.bin", data=data, etag='"copy"')
    path = config(workdir, "arca")
    arca = start_arca("--config", path)
    for get in (prefixed, proxied):
        served(get(arca, url, OUTSIDER), data, get)
    narrowed = rule("secret2", origin.url("/secret2/"), "allow-network = 10.0.0.0/8")
    config(workdir, "arca", narrowed)
    reload(arca)
    for get in (prefixed, proxied):
        refused(get(arca, url, OUTSIDER), data, get)
        refused(get(arca, url, {**OUTSIDER, "If-None-Match": '"s2"'}), data, (get, "304"))
        headers = served(get(arca, url, BOARD), data, (get, "board"))
        assert members(headers)[-1].startswith("arca; hit"), headers.get("cache-status")
    # the same bytes at another URL: the cached redirect is no digest hit for the outsider
    status, headers, body = arca.fetch(copy, OUTSIDER, sha256=sha256(data))
    assert status == 200 and sha256(body) == sha256(data)
    assert "digest-hit" not in headers.get("cache-status", "") and "arca-redirect" not in headers
    assert origin.counts["/to/secret2/s.bin"] == 1 and origin.counts["/secret2/s.bin"] == 1
    # expired, its origin failing: the copy answering stale is the board's alone
    config(workdir, "arca", narrowed, rule("to", origin.url("/to/"), "ttl = 1s"))
    reload(arca)
    wait_age(arca, "/to/secret2/s.bin", 1, headers=BOARD)  # a row the outsider is not shown
    origin.add("/to/secret2/s.bin", status=503)
    refused(prefixed(arca, url, OUTSIDER), data, "stale")
    headers = served(prefixed(arca, url, BOARD), data, "stale board")
    assert "fwd=stale" in members(headers)[-1], headers.get("cache-status")


def from_address(arca, url, address):
    """A fetch from `address` (a loopback address of the test's choosing), no proxy between."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30,
                                      source_address=(address, 0))
    return one_request(conn, "GET", arca.fetch_path(url))


def test_a_cached_redirect_is_judged_for_each_client_of_a_site_and_of_its_parent(
        start_tier, origin, workdir):
    data, url = secret(origin)
    parent = start_tier.arca("parent", "--config", config(workdir, "parent"))
    site = start_tier.arca("child", "--config", config(workdir, "site"), "--parent", parent.base)
    for get in (prefixed, proxied):
        served(get(site, url, OUTSIDER), data, get)
    # the site holds the copy: its own rule made since decides for its clients
    config(workdir, "site", rule("secret2", origin.url("/secret2/"), "allow-network = 10.0.0.0/8"))
    reload(site)
    for get in (prefixed, proxied):
        refused(get(site, url, OUTSIDER), data, get)
        headers = served(get(site, url, BOARD), data, (get, "board"))
        assert members(headers)[-1].startswith("arca; hit"), headers.get("cache-status")
    # a refusal drops nobody's copy (the board's row: the outsider's listing leaves it out)
    assert resource(site, "/to/secret2/s.bin", headers=BOARD) is not None
    # the parent holds the copy: its rule made since decides for the site that asks (127.0.0.1)
    config(workdir, "parent", rule("secret2", origin.url("/secret2/"),
                                   "allow-network = 127.0.0.2/32"))
    reload(parent)
    other = start_tier.arca("child", "--config", config(workdir, "other"), "--parent",
                            parent.base)
    before = len(asked_by_children(parent, url))
    refused(prefixed(other, url, OUTSIDER), data, "a site without the rule", said=False)
    wait_for(lambda: len(asked_by_children(parent, url)) > before, "the parent's access line")
    assert resource(other, "/to/secret2/s.bin", headers=BOARD) is None
    served(from_address(parent, url, "127.0.0.2"), data, "the parent's own board")
    assert origin.counts["/to/secret2/s.bin"] == 1 and origin.counts["/secret2/s.bin"] == 1
