"""A site's terms hold through its parent (issue 58, items 2 and 3; docs/CLUSTER.md "What a
child asks and what it checks").

- A redirect the parent followed is judged by the site's rules, as the site judges one it
  follows itself: a redirect into a narrowing rule is refused (`403 ... not followed`) through
  the fetch prefix and the proxy alike, and nothing is kept under the redirecting URL. The
  parent says each URL its download went through (`Arca-Redirect`), secrets hidden.
- A site's `ttl` bounds what its parent answers it: its copy is as old as the parent's, and a
  copy the parent holds longer than the site's ttl is revalidated with the origin by the
  parent (the child asks `Cache-Control: max-age=<its ttl>`), without shortening the parent's
  copy for its other clients.
- A site's `store = no` is asked as `no-store`: the parent keeps nothing for it.
- A parent's answer it did not keep (`stored=?0`) gives the site no freshness."""

import os
import time

from conftest import resource, sha256, wait_age, wait_for
from test_rules import LOOPBACK, proxied, rule, write
from tier import asked_by_children, members

OUTSIDER = {"X-Forwarded-For": "203.0.113.7"}
BOARD = {"X-Forwarded-For": "10.1.2.3"}


def site_config(workdir, name, *sections):
    """Every client may fetch but where a rule says otherwise; X-Forwarded-For names them."""
    return write(os.path.join(workdir, f"{name}.ini"), *sections,
                 arca=LOOPBACK + ("trusted-proxy = 127.0.0.1", "allow-network = all"))


def versioned(origin, path, version):
    """`path` serves `version`'s bytes with its own ETag: its sha256."""
    data = (f"{path} version {version}\n".encode()) * 4096
    origin.add(path, data=data, etag=f'"{version}-{sha256(data)[:12]}"')
    return sha256(data)


def prefixed(arca, url, headers=None):
    return arca.fetch(url, headers=headers)


# --- item 2: a redirect the parent followed ---------------------------------------------------


def test_a_redirect_the_parent_followed_into_a_narrowing_rule_is_refused_at_the_site(
        start_tier, origin, workdir):
    data = os.urandom(100_000)
    private = origin.add("/private/fw.bin", data=data, etag='"fw1"')
    go = origin.add("/go", redirect=private + "?X-Amz-Signature=s3cr3tsig&X-Amz-Credential=AK")
    parent, _ = start_tier(0)
    config = site_config(workdir, "site",
                         rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"))
    site = start_tier.arca("child", "--config", config, "--parent", parent.base)
    # without a tier the site refuses it; through its parent it must too, for every way in
    for get in (prefixed, proxied):
        for who in (OUTSIDER, BOARD):
            status, headers, body = get(site, go, who)
            assert status == 403 and b"not followed" in body and b"/private/fw.bin" in body, \
                (get, who, status, body[:200])
            assert b"s3cr3tsig" not in body, body
    assert resource(site, "/go") is None and resource(site, "/private/fw.bin") is None
    # the parent asked once for the whole tree, and says where its download went, secrets hidden
    assert len(asked_by_children(parent, go, at_least=1)) >= 1
    status, headers, body = parent.fetch(go)
    assert status == 200 and sha256(body) == sha256(data)
    said = headers.get("arca-redirect", "")
    assert "/private/fw.bin" in said and "s3cr3tsig" not in said, said
    assert origin.counts["/go"] == 1 and origin.counts["/private/fw.bin"] == 1
    # the parent keeps where its download went across a restart: a hit there says it again
    parent.stop()
    parent.start(keep_port=True)
    status, _, body = prefixed(site, go, OUTSIDER)
    assert status == 403 and b"not followed" in body, (status, body[:200])
    assert origin.counts["/go"] == 1 and origin.counts["/private/fw.bin"] == 1
    # the board may fetch the private URL itself, through the parent (a hit there)
    status, _, body = prefixed(site, private, BOARD)
    assert status == 200 and sha256(body) == sha256(data)


def test_a_redirect_within_the_same_rule_through_the_parent_is_followed(start_tier, origin,
                                                                        workdir):
    data = os.urandom(50_000)
    target = origin.add("/pub/v2/Image", data=data, etag='"img"')
    go = origin.add("/pub/latest", redirect=target)
    parent, _ = start_tier(0)
    config = site_config(workdir, "site",
                         rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"))
    site = start_tier.arca("child", "--config", config, "--parent", parent.base)
    for get in (prefixed, proxied):
        status, _, body = get(site, go, OUTSIDER)
        assert status == 200 and sha256(body) == sha256(data), (get, status)
    assert origin.counts["/pub/latest"] == 1 and origin.counts["/pub/v2/Image"] == 1


# --- item 3: the site's ttl and store = no at its parent ---------------------------------------


def test_a_sites_short_ttl_is_honoured_by_its_parent(start_tier, origin, workdir):
    url = origin.url("/nightly/Image")
    v1 = versioned(origin, "/nightly/Image", 1)
    parent, _ = start_tier(0)
    config = site_config(workdir, "site", rule("nightly", origin.url("/nightly/"), "ttl = 2s"))
    site = start_tier.arca("child", "--config", config, "--parent", parent.base)
    status, _, body = site.fetch(url)
    assert status == 200 and sha256(body) == v1
    v2 = versioned(origin, "/nightly/Image", 2)
    for round in (1, 2):
        # past the site's ttl at both by their own records and clocks (3 s by the test's clock
        # from before the download fell short when the download began over a second late)
        for tier in (site, parent):
            wait_age(tier, "/nightly/Image", 2)
        for get in (prefixed, proxied):  # the site's fetch prefix, the site as an HTTP proxy
            status, headers, body = get(site, url)
            assert status == 200 and sha256(body) == v2, (round, get, headers.get("cache-status"))
    # the parent's copy keeps its own ttl for its other clients: a plain ask is a hit there
    status, headers, body = parent.fetch(url)
    assert status == 200 and sha256(body) == v2 and members(headers)[-1].startswith("arca; hit")
    assert origin.counts["/nightly/Image"] <= 3, origin.counts


def test_a_304_through_the_parent_does_not_renew_the_site_from_now(start_tier, origin, workdir):
    """The parent's copy is older than the site's ttl: the site's copy counts from when the
    parent downloaded it, so a second site asking later is not handed a fresh copy of old
    bytes."""
    url = origin.url("/nightly/zImage")
    v1 = versioned(origin, "/nightly/zImage", 1)
    parent, _ = start_tier(0)
    status, _, body = parent.fetch(url)
    assert status == 200 and sha256(body) == v1
    config = site_config(workdir, "site", rule("nightly", origin.url("/nightly/"), "ttl = 2s"))
    site = start_tier.arca("child", "--config", config, "--parent", parent.base)
    started = time.time()
    v2 = versioned(origin, "/nightly/zImage", 2)
    wait_for(lambda: time.time() >= started + 3, "3 s after the parent's download", 10)
    status, headers, body = site.fetch(url)
    assert status == 200 and sha256(body) == v2, headers.get("cache-status")


def test_a_sites_store_no_is_not_kept_at_its_parent(start_tier, origin, workdir):
    url = origin.url("/latest/index.json")
    v1 = versioned(origin, "/latest/index.json", 1)
    parent, _ = start_tier(0)
    config = site_config(workdir, "site", rule("latest", origin.url("/latest/"), "store = no"))
    site = start_tier.arca("child", "--config", config, "--parent", parent.base)
    status, headers, body = site.fetch(url)
    assert status == 200 and sha256(body) == v1
    wait_for(lambda: len(asked_by_children(parent, url)) >= 1, "the parent's access line")
    assert resource(parent, "/latest/index.json") is None
    v2 = versioned(origin, "/latest/index.json", 2)
    status, headers, body = site.fetch(url)
    assert status == 200 and sha256(body) == v2, headers.get("cache-status")
    assert origin.counts["/latest/index.json"] == 2


def test_an_answer_its_parent_did_not_keep_gives_the_site_no_freshness(start_tier, origin,
                                                                      workdir):
    url = origin.url("/latest/index.json")
    v1 = versioned(origin, "/latest/index.json", 1)
    config = site_config(workdir, "central", rule("latest", origin.url("/latest/"), "store = no"))
    parent, (site,) = start_tier(1, parent=start_tier.arca("parent", "--config", config))
    status, headers, body = site.fetch(url)
    assert status == 200 and sha256(body) == v1
    assert "stored=?0" in members(headers)[0], headers.get("cache-status")
    v2 = versioned(origin, "/latest/index.json", 2)
    status, headers, body = site.fetch(url)
    assert status == 200 and sha256(body) == v2, headers.get("cache-status")
    assert origin.counts["/latest/index.json"] == 2


def test_a_clients_max_age_refreshes_its_own_answer_only_as_client_ttl_lets_it(
        start_arca, origin, workdir):
    """What any client of a parent can do with the bounds a child sends: a max-age costs one
    revalidation with the origin (as a ttl= could already), and shortens nobody's copy; under
    `client-ttl = ignore` it does nothing, as a ttl= does nothing there."""
    url, fixed = origin.url("/tools/flash"), origin.url("/fixed/flash")
    versioned(origin, "/tools/flash", 1)
    versioned(origin, "/fixed/flash", 1)
    config = site_config(workdir, "central", rule("fixed", origin.url("/fixed/"),
                                                  "client-ttl = ignore"))
    central = start_arca("--config", config)
    for u in (url, fixed):
        assert central.fetch(u)[0] == 200
    v2 = versioned(origin, "/tools/flash", 2)
    status, headers, body = central.fetch(url, {"Cache-Control": "max-age=0"})
    assert status == 200 and sha256(body) == v2, headers.get("cache-status")
    assert origin.counts["/tools/flash"] == 2
    status, headers, body = central.fetch(url)  # the others' copy keeps its ttl: a hit
    assert status == 200 and sha256(body) == v2
    assert members(headers)[-1].startswith("arca; hit; ttl=86") and origin.counts["/tools/flash"] == 2
    status, headers, body = central.fetch(fixed, {"Cache-Control": "no-store, max-age=0"})
    assert status == 200 and members(headers)[-1].startswith("arca; hit")
    assert origin.counts["/fixed/flash"] == 1
