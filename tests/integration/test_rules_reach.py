"""Where a rule that names networks reaches (docs/CACHING.md "Rules", docs/SECURITY.md "Rules
(issue 52)"): a path parameter (`;x=1`, `..;`) does not take a URL out of its rule; a rule inside
a private prefix that names no networks does not reopen it (and the admin is warned); a
catch-all rule (`match = *`) denies by default while prefixes widen; and what a client may not
fetch it does not read either: not in the listings, and a stranger reads the parents' counters,
never their addresses nor the rules that name them."""

import json
import os
import re

from conftest import sha256, wait_for
from test_rules import config  # noqa: F401 (a fixture: the scenario's INI file)
from test_rules import line_of, prefixed, proxied, reload, rule, rules_test, run, tunnel, write

LOOPBACK = ("upstream-allow = 127.0.0.0/8",)
TRUSTED = ("trusted-proxy = 127.0.0.1",)  # X-Forwarded-For names the other clients
BOARD = {"X-Forwarded-For": "10.1.2.3"}  # inside the private rule's networks
STRANGER = {"X-Forwarded-For": "203.0.113.7"}  # outside --allow-network and --ui-network


def fetch_as(get, arca, url, headers=None):
    """A fetch through the prefix or the proxy, as the client `headers` name (None: loopback,
    a client of the default networks but of no rule's)."""
    return get(arca, url, dict(headers) if headers else None)


def listed(arca, headers=None, state="successes"):
    """The URLs of /api/v1/resources/ as this client reads them."""
    status, _, body = arca.get(f"/api/v1/resources/?state={state}", headers)
    assert status == 200, body
    return [r["url"] for r in json.loads(body)["resources"]]


def test_path_parameters_stay_under_the_rule_they_name(origin, start_arca, config):
    """Tomcat, Jetty and Spring serve /private/a.bin for /private;x=1/a.bin and for
    /pub/..;/private/a.bin: an outsider refused on the one is refused on the others, before any
    download, through the prefix and the proxy; the board still gets all three; and the rules
    test says the same."""
    data = os.urandom(20_000)
    spellings = ("/private/a.bin", "/private;x=1/a.bin", "/pub/..;/private/a.bin",
                 "/private/a.bin;jsessionid=1", "/pub;/..;x/private/a.bin")
    for path in spellings:  # an origin that drops path parameters serves one file for each
        origin.add(path, data=data)
    write(config, rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"),
          arca=LOOPBACK + TRUSTED)
    for path in spellings:
        said = rules_test(config, origin.url(path))
        assert said["allowed"] is False and said["allowed_from"] == "rule private", (path, said)
        assert rules_test(config, origin.url(path), client="10.1.2.3")["allowed"] is True, path
    arca = start_arca("--config", config)
    for get in (prefixed, proxied):
        for path in spellings:
            asked = sum(origin.counts.values())
            status, _, body = fetch_as(get, arca, origin.url(path))
            assert status == 403 and b"rule private" in body, (get, path, status, body)
            assert sum(origin.counts.values()) == asked, (get, path)  # refused before a download
            status, _, body = fetch_as(get, arca, origin.url(path), BOARD)
            assert status == 200 and sha256(body) == sha256(data), (get, path, status)


def test_a_rule_inside_a_private_prefix_keeps_it_private_and_is_warned_of(
        origin, start_arca, config):
    """Under `private` (the boards' networks) an admin adds `big`, a size limit and nothing
    else: it takes `private`'s networks (an outsider is refused there, the board is not), and
    check-config, the start-up log and a reload's log warn, naming both rules."""
    data = os.urandom(20_000)
    origin.add("/private/big/rootfs.ext4", data=data)
    write(config, rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"),
          rule("big", origin.url("/private/big/"), "max-object-size = 1G"),
          arca=LOOPBACK + TRUSTED)
    big, private = line_of(config, "[rule big]"), line_of(config, "[rule private]")
    p = run("check-config", "--config", config, "--data-dir", os.path.join(config + ".d"))
    assert p.returncode == 0 and p.stdout == f"{config}: ok\n", (p.returncode, p.stderr)
    warning = re.search(rf"^arca: warning: {re.escape(config)}:{big}: rule big .*$", p.stderr,
                        re.M)
    assert warning and "rule private" in warning.group(0) and f":{private}" in warning.group(0), \
        p.stderr
    said = rules_test(config, origin.url("/private/big/rootfs.ext4"))
    assert said["rule"]["name"] == "big" and said["allowed"] is False, said
    assert said["allowed_from"] == "rule private", said
    assert said["terms"]["allow-network"] == {"value": ["10.0.0.0/8"], "from": "rule private"}
    assert said["terms"]["max-object-size"]["from"] == "rule big"

    arca = start_arca("--config", config)
    assert re.search(r"warning.*rule big .*rule private", arca.read_log()), arca.read_log()
    for get in (prefixed, proxied):
        status, _, body = fetch_as(get, arca, origin.url("/private/big/rootfs.ext4"))
        assert status == 403 and b"rule private" in body, (get, status, body)
        status, _, body = fetch_as(get, arca, origin.url("/private/big/rootfs.ext4"), BOARD)
        assert status == 200 and sha256(body) == sha256(data), (get, status)
    assert origin.counts["/private/big/rootfs.ext4"] == 1  # the board's, then a hit

    write(config, rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"),
          rule("big", origin.url("/private/big/"), "max-object-size = 1G"),
          rule("nightly", origin.url("/private/nightly/"), "ttl = 1h"),
          arca=LOOPBACK + TRUSTED)
    reload(arca)
    assert re.search(r"warning.*rule nightly .*rule private", arca.read_log()), arca.read_log()


def test_a_catch_all_rule_denies_by_default_and_prefixes_widen(origin, start_arca, config):
    """`match = *` covers every URL and any longer match wins over it: a lab lets only its
    boards fetch (the catch-all's networks), but its public images to anyone (a rule that
    widens), and a rule that only sets a ttl stays the boards'. The proxy and the prefix alike,
    no tunnel past it, and the rules test says so."""
    data = os.urandom(10_000)
    for path in ("/public/Image", "/other/file", "/nightly/Image"):
        origin.add(path, data=data)
    write(config, rule("boards", "*", "allow-network = 10.0.0.0/8", "ttl = 2d"),
          rule("public", origin.url("/public/"), "allow-network = all"),
          rule("nightly", origin.url("/nightly/"), "ttl = 1h"),
          arca=LOOPBACK + TRUSTED + (f"connect-port = {origin.port}",))
    p = run("check-config", "--config", config, "--data-dir", os.path.join(config + ".d"))
    assert p.returncode == 0 and p.stdout == f"{config}: ok\n", (p.returncode, p.stderr)
    expected = {  # path: (its rule, 127.0.0.1 may fetch, the stranger may, the board may)
        "/public/Image": ("public", True, True, True),
        "/other/file": ("boards", False, False, True),
        "/nightly/Image": ("nightly", False, False, True),
    }
    for path, (name, loopback, _, board) in expected.items():
        said = rules_test(config, origin.url(path))
        assert said["rule"]["name"] == name and said["allowed"] is loopback, (path, said)
        assert rules_test(config, origin.url(path), client="10.1.2.3")["allowed"] is board
    said = rules_test(config, origin.url("/public/Image"))
    assert [r["name"] for r in said["losers"]] == ["boards"], said
    assert said["losers"][0]["match"] == "*"
    assert rules_test(config, origin.url("/other/file"))["terms"]["ttl"] == \
        {"value": 2 * 86400, "from": "rule boards"}

    arca = start_arca("--config", config)
    for get in (prefixed, proxied):
        for path, (_, loopback, stranger, board) in expected.items():
            for client, want in ((None, loopback), (STRANGER, stranger), (BOARD, board)):
                status, _, body = fetch_as(get, arca, origin.url(path), client)
                assert (status == 200) is want, (get, path, client, status, body)
                if want:
                    assert sha256(body) == sha256(data)
                else:
                    assert status == 403, (get, path, client, status)
    assert tunnel(arca, "127.0.0.1", origin.port) == 403

    # `http://*/` is still no match, and the refusal names the one that is
    write(config, rule("all", "http://*/", "ttl = 1d"), arca=LOOPBACK)
    p = run("check-config", "--config", config, "--data-dir", os.path.join(config + ".d"))
    assert p.returncode == 1 and "match = *" in p.stderr, p.stderr


def test_the_listings_show_a_client_only_what_it_may_fetch(origin, start_arca, config):
    """A client a rule refuses does not read the rule's URLs in /api/v1/resources/ nor on the
    /resources/ pages; the board, which fetched them, does; both read the public ones."""
    data = os.urandom(10_000)
    for path in ("/private/fw.bin", "/public/Image"):
        origin.add(path, data=data)
    write(config, rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"),
          arca=LOOPBACK + TRUSTED)
    arca = start_arca("--config", config)
    assert arca.fetch(origin.url("/private/fw.bin"), BOARD)[0] == 200
    assert arca.fetch(origin.url("/public/Image"))[0] == 200
    private, public = origin.url("/private/fw.bin"), origin.url("/public/Image")
    wait_for(lambda: {private, public} <= set(listed(arca, BOARD)), "both kept")
    assert listed(arca) == [public]
    status, _, page = arca.get("/resources/")
    assert status == 200 and public.encode() in page and b"/private/" not in page, page
    status, _, page = arca.get("/resources/", BOARD)
    assert status == 200 and private.encode() in page, page


def test_a_stranger_reads_the_parents_counters_never_their_addresses(
        origin, start_arca, config):
    """A site asks a central arca (--parent) and, for a vendor's prefix, another (a rule's
    `parent`). A stranger reads the status JSON, the metrics and the pages' counters of both,
    never their addresses nor the rule that names one; a client of the site reads them all."""
    central = start_arca("--upstream-allow", "127.0.0.0/8", name="central")
    regional = start_arca("--upstream-allow", "127.0.0.0/8", name="regional")
    for path in ("/a", "/vendor/b"):
        origin.add(path, data=os.urandom(5_000))
    write(config, rule("vendor", origin.url("/vendor/"), f"parent = {regional.base}"),
          arca=LOOPBACK + TRUSTED)
    site = start_arca("--config", config, "--parent", central.base, name="site")
    assert site.fetch(origin.url("/a"))[0] == 200
    assert site.fetch(origin.url("/vendor/b"))[0] == 200
    wait_for(lambda: len((site.status()["parent"] or {}).get("parents", [])) == 2,
             "both parents known")
    secrets = (f":{central.port}", f":{regional.port}", "vendor")

    def answers(headers):
        status = json.loads(site.get("/api/v1/status/", headers)[2])
        texts = {"status": json.dumps(status)}
        for path in ("/metrics", "/statistics/", "/help/"):
            code, _, body = site.get(path, headers)
            assert code == 200, (path, code)
            texts[path] = body.decode()
        return status, texts

    status, texts = answers(STRANGER)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, (where, secret)
    parents = status["parent"]["parents"]  # the counters are still there
    assert len(parents) == 2 and sum(p["requests"] for p in parents) == 2, parents
    assert texts["/metrics"].count("arca_parent_requests_total{") == 2, texts["/metrics"]
    assert "arca_build_info{version=" in texts["/metrics"] and "openssl=" not in texts["/metrics"]

    status, texts = answers(None)
    assert {p["url"] for p in status["parent"]["parents"]} == {central.base, regional.base}
    assert {p["from"] for p in status["parent"]["parents"]} == {"--parent", "rule vendor"}
    for where, text in texts.items():
        for secret in secrets[:2] if where == "/metrics" else secrets:  # labels: URLs alone
            assert secret in text, (where, secret)
    assert "openssl=" in texts["/metrics"]  # the libraries' versions: to who may see URLs
