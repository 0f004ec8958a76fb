"""Per-prefix rules (issue 52, docs/CACHING.md "Rules"): `[rule NAME]` sections of the INI file
say, per URL prefix, how its objects are cached (ttl, what a client's ttl= may do, stored or
not, pinned, max size, who may fetch); the longest matching prefix wins, in the normal form arca
keys by; SIGHUP reloads them and a broken one changes nothing; check-config names a bad one's
file, line and rule; and `arca rules test` (and GET /api/v1/rules/) says which rule applies and
why, with the code that serves, so what it says is what arca then does."""

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import urllib.parse

import pytest

from conftest import (ARCA_BIN, own_address, read_to_end, resource, sha256, wait_age,
                      wait_downloading, wait_for, without_ttl)

DAY = 86400
DEFAULT_TTL = 10 * DAY  # --default-ttl's default
LOOPBACK = ("upstream-allow = 127.0.0.0/8",)  # the origins here are on loopback
TOKEN = "rules-admin-token-0123456789"


# --- the configuration --------------------------------------------------------------------


def rule(name, match, *lines):
    """A `[rule NAME]` section: its match, then its other keys."""
    return f"[rule {name}]\nmatch = {match}\n" + "".join(line + "\n" for line in lines)


def write(path, *sections, arca=LOOPBACK):
    """An INI file: the [arca] section's lines, then each section, a blank line between."""
    text = "[arca]\n" + "".join(line + "\n" for line in arca)
    text += "".join("\n" + section for section in sections)
    with open(path, "w") as f:
        f.write(text)
    return path


def line_of(path, text):
    """The number (from 1) of the first line of `path` that reads `text`: what an error or the
    rules test names."""
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip() == text:
                return number
    raise AssertionError(f"{text!r} is not a line of {path}")


@pytest.fixture
def config(workdir):
    return os.path.join(workdir, "arca.ini")


def token_file(workdir):
    path = os.path.join(workdir, "admin-token")
    with open(path, "w") as f:
        f.write(TOKEN + "\n")
    return path


def reload(arca, expect="SIGHUP: reloaded"):
    """SIGHUP, then wait until the log says `expect` once more than before."""
    before = arca.read_log().count(expect)
    arca.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: arca.read_log().count(expect) > before, f"the log saying {expect!r}", 5)


# --- the clients --------------------------------------------------------------------------


def run(*args, timeout=60):
    """`arca ARGS`, run to its end. The timeout only guards against a hang: checking 10,000
    rules takes 0.3 s plain and 3 s under ThreadSanitizer, and beside the other passes on a
    loaded machine TSan's took more than 10 s (the earlier bound), so the bound is no figure."""
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=timeout)


def rules_test(config, url, *options, client="127.0.0.1"):
    """`arca rules test --json`'s answer for `url`, as a dict (options: serve's, before the
    URL)."""
    p = run("rules", "test", "--config", config, "--client", client, "--json", *options, url)
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    return json.loads(p.stdout)


def proxied(arca, url, headers=None):
    """A GET with `url` as the request line's target, as a client with http_proxy=arca sends
    it."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    try:
        conn.request("GET", url, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def tunnel(arca, host, port, headers=None):
    """The status of a CONNECT to host:port through arca."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=10)
    try:
        conn.request("CONNECT", f"{host}:{port}", headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


def prefixed(arca, url, headers=None):
    return arca.fetch(url, headers=headers)


def hit_ttl(headers):
    """The seconds of freshness a hit's Cache-Status says are left; None: not a hit."""
    m = re.fullmatch(r"arca; hit; ttl=(\d+)", headers.get("cache-status", ""))
    return int(m.group(1)) if m else None


def conditional_gets(origin, path):
    return [h for p, h in origin.requests if p == path and "If-None-Match" in h]


def settled(arca, path):
    """Until arca is no longer downloading `path` (a request then finds what was kept, never a
    download to join)."""
    wait_for(lambda: resource(arca, path, "downloading") is None, f"{path}'s download over")


def kept(arca, path):
    """arca's listing row of `path` once it is complete on disk."""
    return wait_for(lambda: resource(arca, path), f"{path} kept")


# --- the scenarios ------------------------------------------------------------------------


def test_a_nightly_rule_revalidates_after_1s_while_other_urls_keep_the_default_ttl(
        origin, start_arca, config):
    """A lab's nightly builds change every night under the same URL: a rule gives their prefix
    a 1 s ttl, so once that second is over the next request asks the origin (a conditional GET:
    the same build is a 304, no body crosses the uplink), while a release beside it, under no
    rule, stays a hit for --default-ttl."""
    nightly_data, release_data = os.urandom(100_000), os.urandom(100_000)
    nightly = origin.add("/nightly/latest/Image", data=nightly_data, etag='"n1"')
    release = origin.add("/releases/24.04/Image", data=release_data, etag='"r1"')
    write(config, rule("nightly", origin.url("/nightly/"), "ttl = 1s"))
    arca = start_arca("--config", config)
    for url, data in ((nightly, nightly_data), (release, release_data)):
        status, headers, body = arca.fetch(url)
        assert status == 200 and sha256(body) == sha256(data)
        assert without_ttl(headers["cache-status"]) == "arca; fwd=uri-miss"
    assert kept(arca, "/nightly/latest/Image")["ttl"] == 1
    assert kept(arca, "/releases/24.04/Image")["ttl"] == DEFAULT_TTL

    wait_age(arca, "/nightly/latest/Image", 1)
    status, headers, body = arca.fetch(nightly)
    assert status == 200 and sha256(body) == sha256(nightly_data)
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    cond = conditional_gets(origin, "/nightly/latest/Image")
    assert len(cond) == 1 and cond[0]["If-None-Match"] == '"n1"'
    assert origin.bytes_sent["/nightly/latest/Image"] == len(nightly_data)  # once

    status, headers, body = arca.fetch(release)
    assert status == 200 and sha256(body) == sha256(release_data)
    assert DEFAULT_TTL - 60 < hit_ttl(headers) <= DEFAULT_TTL, headers
    assert origin.counts["/releases/24.04/Image"] == 1


def test_client_ttl_ignored_under_a_release_rule_and_clamped_under_another(
        origin, start_arca, config):
    """A release never changes: its rule keeps it 30 days whatever ttl= a job's URL carries
    (client-ttl = ignore). Boards' files may be kept between 1 and 2 hours: a job asking ttl=1s
    gets an hour, one asking 30 days gets two hours (client-ttl = 1h-2h)."""
    rel_data, dtb_data = os.urandom(50_000), os.urandom(20_000)
    rel = origin.add("/releases/24.04/rootfs.ext4", data=rel_data, etag='"r"')
    dtb = origin.add("/boards/rpi4/board.dtb", data=dtb_data, etag='"d"')
    long_asked = origin.add("/boards/rpi5/board.dtb", data=os.urandom(20_000), etag='"d5"')
    write(config, rule("releases", origin.url("/releases/"), "ttl = 30d", "client-ttl = ignore"),
          rule("boards", origin.url("/boards/"), "client-ttl = 1h-2h"))
    arca = start_arca("--config", config)
    for url in (rel, dtb):
        assert arca.fetch(url, ttl="1s")[0] == 200
    assert arca.fetch(long_asked, ttl="30d")[0] == 200
    assert kept(arca, "/releases/24.04/rootfs.ext4")["ttl"] == 30 * DAY
    assert kept(arca, "/boards/rpi4/board.dtb")["ttl"] == 3600
    assert kept(arca, "/boards/rpi5/board.dtb")["ttl"] == 7200

    wait_age(arca, "/releases/24.04/rootfs.ext4", 2)  # 1 s would have expired it
    status, headers, body = arca.fetch(rel, ttl="1s")
    assert status == 200 and sha256(body) == sha256(rel_data)
    assert 1_000_000 < hit_ttl(headers) <= 30 * DAY, headers
    assert origin.counts["/releases/24.04/rootfs.ext4"] == 1

    status, headers, body = arca.fetch(dtb, ttl="1s")
    assert status == 200 and sha256(body) == sha256(dtb_data)
    assert 3000 < hit_ttl(headers) <= 3600, headers
    assert origin.counts["/boards/rpi4/board.dtb"] == 1


def test_a_pinned_object_survives_an_eviction_storm(origin, start_arca, config):
    """Every job boots the same kernel: a rule pins it, so a burst of one-off downloads that
    fills the quota many times over evicts them among themselves and never the kernel, though
    it is the least recently used. The pinned total is in the status and the metrics."""
    size = 200 * 1024
    kernel = os.urandom(size)
    boot = origin.add("/boot/Image", data=kernel, etag='"k"')
    write(config, rule("boot", origin.url("/boot/"), "pin = yes"),
          arca=LOOPBACK + ("quota = 1M",))
    assert rules_test(config, boot)["terms"]["pin"] == {"value": True, "from": "rule boot"}
    assert rules_test(config, origin.url("/jobs/0/blob"))["terms"]["pin"]["value"] is False
    arca = start_arca("--config", config)
    assert arca.fetch(boot)[0] == 200
    kept(arca, "/boot/Image")
    for i in range(20):  # 4 MiB through a 1 MiB quota
        data = os.urandom(size)
        status, _, body = arca.fetch(origin.add(f"/jobs/{i}/blob", data=data))
        assert status == 200 and sha256(body) == sha256(data), i
        kept(arca, f"/jobs/{i}/blob")

    status, headers, body = arca.fetch(boot)
    assert status == 200 and sha256(body) == sha256(kernel)
    assert hit_ttl(headers) is not None, headers
    assert origin.counts["/boot/Image"] == 1
    assert resource(arca, "/jobs/0/blob") is None and resource(arca, "/jobs/1/blob") is None
    assert resource(arca, "/jobs/19/blob") is not None
    status = arca.status()
    assert status["disk_usage"] <= 1024 * 1024 and status["resources_successes"] <= 5, status
    assert (status["pinned_objects"], status["pinned_bytes"]) == (1, size)
    assert arca.metrics()["arca_pinned_bytes"] == size


def test_store_no_streams_to_the_clients_asking_and_keeps_nothing(origin, start_arca, config):
    """An index page or a redirecting `latest` must never be kept: under `store = no` two
    clients asking while it downloads share one upstream GET and get the same bytes, and once
    it is over nothing is on disk: the next request asks the origin again."""
    data = os.urandom(400_000)
    gate = threading.Event()  # the origin holds the last byte until both clients are in
    url = origin.add("/index/latest", data=data, rate=1_000_000, last_byte_gate=gate)
    write(config, rule("index", origin.url("/index/"), "store = no"))
    arca = start_arca("--config", config)
    first = second = None
    try:
        first = arca.stream(url)
        wait_downloading(arca, "/index/latest", 100_000)
        second = arca.stream(url)
        assert first[1].status == 200 and second[1].status == 200
        assert without_ttl(first[1].getheader("Cache-Status")) == "arca; fwd=uri-miss; stored=?0"
        assert without_ttl(second[1].getheader("Cache-Status")) == "arca; fwd=uri-miss; collapsed; stored=?0"
        gate.set()
        for conn, resp in (first, second):
            body, complete = read_to_end(resp)
            assert complete and sha256(body) == sha256(data)
    finally:
        gate.set()
        for pair in (first, second):
            if pair:
                pair[0].close()
    assert origin.counts["/index/latest"] == 1

    settled(arca, "/index/latest")
    assert resource(arca, "/index/latest") is None
    wait_for(lambda: arca.status()["disk_usage"] == 0, "nothing of it on disk")
    assert arca.status()["resources_successes"] == 0
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert without_ttl(headers["cache-status"]) == "arca; fwd=uri-miss; stored=?0"
    assert origin.counts["/index/latest"] == 2


def test_allow_network_per_prefix_widens_and_narrows(origin, start_arca, workdir):
    """A lab open to 10/8 lets any loopback client fetch its flashing tools (a rule widens
    --allow-network under one prefix), and its public images to anyone; a lab with the default
    networks keeps a private bucket to 10/8 and 192.168/16 (a rule narrows, its keys adding up)
    and a quarantined prefix to nobody, however its URLs are spelled (`%61` for `a`, `//`). The
    proxy form is refused and allowed as the prefix."""
    data = os.urandom(20_000)
    for path in ("/tools/flash", "/firmware/blob", "/public/Image", "/private/key.bin",
                 "/quarantine/x"):
        origin.add(path, data=data)
    trusted = ("trusted-proxy = 127.0.0.1",)  # X-Forwarded-For names other clients
    widened = write(os.path.join(workdir, "widened.ini"),
                    rule("tools", origin.url("/tools/"), "allow-network = 127.0.0.0/8"),
                    rule("public", origin.url("/public/"), "allow-network = all"),
                    arca=LOOPBACK + trusted + ("allow-network = 10.0.0.0/8",))
    arca = start_arca("--config", widened)
    for get in (prefixed, proxied):
        status, _, body = get(arca, origin.url("/tools/flash"))
        assert status == 200 and sha256(body) == sha256(data), get
        assert get(arca, origin.url("/firmware/blob"))[0] == 403, get
    assert origin.counts["/tools/flash"] == 1 and origin.counts["/firmware/blob"] == 0
    assert prefixed(arca, origin.url("/public/Image"), {"X-Forwarded-For": "203.0.113.7"})[0] \
        == 200
    # outside the rules --allow-network still decides
    assert prefixed(arca, origin.url("/firmware/blob"), {"X-Forwarded-For": "10.1.2.3"})[0] == 200

    narrowed = write(os.path.join(workdir, "narrowed.ini"),
                     rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8",
                          "allow-network = 192.168.0.0/16"),
                     rule("quarantine", origin.url("/quarantine/"), "allow-network = none"),
                     arca=LOOPBACK + trusted + (f"connect-port = {origin.port}",))
    lab = start_arca("--config", narrowed)
    answers = []  # every status `lab` gave

    def ask(get, path, client=None):
        answers.append(get(lab, origin.url(path),
                           {"X-Forwarded-For": client} if client else None)[0])
        return answers[-1]

    for get in (prefixed, proxied):
        assert ask(get, "/private/key.bin") == 403, get
        assert ask(get, "/public/Image") == 200, get
    for client, want in (("10.1.2.3", 200), ("192.168.7.7", 200),
                         ("172.16.0.1", 403)):  # a default network, not the rule's
        assert ask(prefixed, "/private/key.bin", client) == want, client
    for client in ("127.0.0.1", "10.1.2.3"):
        assert ask(prefixed, "/quarantine/x", client) == 403, client
    # spellings arca keys apart but an origin may serve as the same file are refused alike
    # (the outside review's walk around a narrowing rule); the lab's own networks still may
    # (what the origin is sent is the normal form: "/public//..//private" is "/public//private")
    assert origin.counts["/private/key.bin"] == 1 and origin.counts["/quarantine/x"] == 0
    for spelling in ("/priv%61te/key.bin", "//private/key.bin", "/public/%2E%2E/private/key.bin"):
        asked = sum(origin.counts.values())
        assert ask(prefixed, spelling) == 403, spelling
        assert sum(origin.counts.values()) == asked, spelling  # refused before any download
        assert ask(prefixed, spelling, "10.1.2.3") != 403, spelling
    # a redirect into the private prefix is not followed (the outside review's first finding):
    # its bytes would go to every client of the URL asked, for everyone a 403 saying so
    origin.add("/go", redirect=origin.url("/private/key.bin"))
    asked = origin.counts["/private/key.bin"]
    for get in (prefixed, proxied):
        status, _, body = get(lab, origin.url("/go"))  # a failed download, not a refused client
        assert status == 403 and b"not followed" in body, (get, body)
    assert origin.counts["/private/key.bin"] == asked and origin.counts["/go"] >= 1
    # nor is a tunnel to that host: it would pass every rule (the review's third finding)
    for host in ("127.0.0.1", "127.1"):
        assert tunnel(lab, host, origin.port) == 403, host
        answers.append(403)
    refused = answers.count(403)
    assert lab.status()["statistics_refused"] == refused


def test_a_rule_changed_by_sighup_applies_to_cached_objects_and_a_broken_one_changes_nothing(
        origin, start_arca, config):
    """An admin shortens a rule's ttl from 30 days to 1 s and sends SIGHUP: the object cached
    under the old rule expires by the new one from its next request on (a rule's ttl shortens a
    cached object's life). A file with a broken rule then changes nothing: the log names the
    file, line and rule, and the running rules (1 s) go on applying."""
    data = os.urandom(60_000)
    url = origin.add("/releases/fw.bin", data=data, etag='"f"')
    prefix = origin.url("/releases/")
    write(config, rule("releases", prefix, "ttl = 30d"))
    arca = start_arca("--config", config)
    assert arca.fetch(url)[0] == 200
    kept(arca, "/releases/fw.bin")
    assert 30 * DAY - 60 < hit_ttl(arca.fetch(url)[1]) <= 30 * DAY

    write(config, rule("releases", prefix, "ttl = 1s"))
    reload(arca)
    wait_age(arca, "/releases/fw.bin", 1)
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    assert origin.counts["/releases/fw.bin"] == 2

    write(config, rule("releases", prefix, "ttl = 30d", "store = maybe"))
    reload(arca, "keeping the running configuration")
    line = line_of(config, "store = maybe")
    assert re.search(rf"SIGHUP: {re.escape(config)}:{line}: rule releases: .*; keeping the "
                     "running configuration$", arca.read_log(), re.M), arca.read_log()[-2000:]
    # renewed for 1 s by the 304: hits say so, then it is asked again (30 d would keep it a hit)
    answers = []

    def asked_again():
        answers.append(arca.fetch(url)[1])
        return hit_ttl(answers[-1]) is None

    wait_for(asked_again, "the object expired again under the running rule", 5, 0.1)
    assert all(hit_ttl(h) <= 1 for h in answers[:-1]), answers
    assert without_ttl(answers[-1]["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    assert origin.counts["/releases/fw.bin"] == 3


def test_check_config_and_serve_refuse_a_bad_rule_naming_file_line_and_rule(
        workdir, start_arca, origin, config):
    """A rule that cannot do what it says is refused before anything runs, by check-config and
    by serve alike, in one line naming the file, the line and the rule; a file of 10,000 rules
    (a lab with a rule per host) is accepted and serve starts with it."""
    args = (*own_address(), "--data-dir", os.path.join(workdir, "data"),
            "--access-log", "off")
    good = "match = http://snapshots.example.org/nightly/"
    cases = [
        # (the rule's lines, the rule named, the line at fault, words its reason holds)
        ("[rule nightly]\n" f"{good}\ntll = 1d\n", "nightly", "tll = 1d",
         ("unknown key (not shown)", "ttl")),
        ("[rule nightly]\n" f"{good}\nttl = soon\n", "nightly", "ttl = soon", ("(not shown)",)),
        ("[rule nightly]\n" f"{good}\nclient-ttl = 2h-1h\n", "nightly", "client-ttl = 2h-1h",
         ()),
        ("[rule nightly]\n" f"{good}\nfill-connections = 65\n", "nightly",
         "fill-connections = 65", ()),
        ("[rule nightly]\n" f"{good}\nallow-network = 10.0.0.0/33\n", "nightly",
         "allow-network = 10.0.0.0/33", ()),
        ("[rule nightly]\n" f"{good}\npin = maybe\n", "nightly", "pin = maybe", ("(not shown)",)),
        ("[rule ftp]\nmatch = ftp://x/\n", "ftp", "match = ftp://x/", ("not an http://",)),
        ("[rule glob]\nmatch = http://www.*.example.org/\n", "glob",
         "match = http://www.*.example.org/", ()),
        ("[rule query]\nmatch = http://example.org/a?b=1\n", "query",
         "match = http://example.org/a?b=1", ()),
        ("[rule once]\nmatch = http://example.org/x/\n\n"
         "[rule twice]\nmatch = HTTP://Example.ORG:80/y/../x/\n", "twice",
         "match = HTTP://Example.ORG:80/y/../x/", ()),
        ("[rule lost]\nttl = 1d\n", "lost", "[rule lost]", ("match",)),
    ]
    for text, name, at, words in cases:
        path = write(config, text, arca=())
        line = line_of(path, at)
        p = run("check-config", "--config", path, *args)
        assert p.returncode != 0 and p.stdout == "", (text, p.returncode, p.stdout)
        said = re.fullmatch(rf"arca: {re.escape(path)}:{line}: rule {name}: (.+)\n", p.stderr)
        assert said, (text, p.stderr)
        for word in words:
            assert word in said.group(1), (text, p.stderr)
        if name == "twice":  # both lines named: the first rule's too
            first = (line_of(path, "[rule once]"), line_of(path, "match = http://example.org/x/"))
            assert any(re.search(rf"\b{n}\b", said.group(1)) for n in first), p.stderr
        served = run("serve", "--config", path, *args)
        assert served.returncode != 0 and served.stderr == p.stderr, (text, served.stderr)

    # `https://example.org` is the prefix `https://example.org/`: accepted
    path = write(config, "[rule bare]\nmatch = https://example.org\n", arca=())
    p = run("check-config", "--config", path, *args)
    assert (p.returncode, p.stdout) == (0, f"{path}: ok\n"), p.stderr

    # 10,000 rules, one per host, and one for the origin
    hosts = "".join(f"[rule h{i}]\nmatch = https://h{i}.example.org/\nttl = 1d\n\n"
                    for i in range(10_000))
    path = write(config, hosts, rule("origin", origin.url("/"), "ttl = 1h"))
    p = run("check-config", "--config", path, *args)
    assert (p.returncode, p.stdout) == (0, f"{path}: ok\n"), p.stderr
    said = rules_test(path, "https://h7777.example.org/images/Image")
    assert said["rule"]["name"] == "h7777" and said["terms"]["ttl"]["value"] == DAY
    arca = start_arca("--config", path)
    url = origin.add("/Image", data=os.urandom(10_000))
    assert arca.fetch(url)[0] == 200
    kept(arca, "/Image")
    assert 3000 < hit_ttl(arca.fetch(url)[1]) <= 3600
    assert origin.counts["/Image"] == 1


def test_the_rules_test_says_what_arca_then_does(origin, start_arca, workdir, config):
    """An admin asks `arca rules test` which rule applies to a URL and what it decides; for a
    set of URLs (a nightly, a release, an index never stored, a private prefix, none) what it
    says is what arca then does: the ttl a hit carries, stored or not, refused or not. The text
    form names the rule and its line, and GET /api/v1/rules/ gives the CLI's JSON to the admin
    alone."""
    write(config, rule("nightly", origin.url("/nightly/"), "ttl = 1s"),
          rule("releases", origin.url("/releases/"), "ttl = 30d"),
          rule("index", origin.url("/index/"), "store = no"),
          rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"))
    expected = {  # path: (the rule, its ttl, stored, 127.0.0.1 may fetch)
        "/nightly/Image": ("nightly", 1, True, True),
        "/releases/24.04/rootfs.ext4": ("releases", 30 * DAY, True, True),
        "/index/latest": ("index", DEFAULT_TTL, False, True),
        "/private/fw.bin": ("private", DEFAULT_TTL, True, False),
        "/other/file": (None, DEFAULT_TTL, True, True),
    }
    bodies, said = {}, {}
    for path, (name, ttl, store, allowed) in expected.items():
        bodies[path] = os.urandom(30_000)
        url = origin.add(path, data=bodies[path], etag=f'"{len(said)}"')
        s = said[path] = rules_test(config, url)
        assert (s["url"], s["key"]) == (url, url)
        if name is None:
            assert s["rule"] is None
        else:
            assert s["rule"] == {"name": name, "file": config,
                                 "line": line_of(config, f"[rule {name}]"),
                                 "match": origin.url("/" + path.split("/")[1] + "/")}
        assert s["terms"]["ttl"]["value"] == ttl, (path, s["terms"]["ttl"])
        assert s["terms"]["ttl"]["from"] == \
            (f"rule {name}" if name in ("nightly", "releases") else "--default-ttl")
        assert s["terms"]["store"]["value"] is store
        assert s["allowed"] is allowed
        assert s["losers"] == []
        assert [(src["kind"], src["url"]) for src in s["sources"]] == [("origin", url)]
        for term in ("client-ttl", "stale-if-error", "stale-while-revalidate", "pin",
                     "max-object-size", "fill-connections", "fill-min-size", "allow-network"):
            assert {"value", "from"} <= set(s["terms"][term]), (path, term)
    assert said["/index/latest"]["terms"]["store"]["from"] == "rule index"
    assert said["/private/fw.bin"]["terms"]["allow-network"] == \
        {"value": ["10.0.0.0/8"], "from": "rule private"}

    arca = start_arca("--config", config, "--admin-token-file", token_file(workdir))
    for path, s in said.items():
        url, data = origin.url(path), bodies[path]
        status, _, body = arca.fetch(url)
        if not s["allowed"]:
            assert status == 403 and origin.counts[path] == 0, path
            continue
        assert status == 200 and sha256(body) == sha256(data), path
        ttl = s["terms"]["ttl"]["value"]
        if not s["terms"]["store"]["value"]:
            settled(arca, path)
            assert resource(arca, path) is None
            assert arca.fetch(url)[0] == 200 and origin.counts[path] == 2, path
            continue
        assert kept(arca, path)["ttl"] == ttl, path
        status, headers, body = arca.fetch(url)
        assert status == 200 and sha256(body) == sha256(data), path
        left = hit_ttl(headers)
        if left is None:  # a ttl shorter than the time between the two requests
            assert ttl <= 1 and headers["cache-status"].startswith("arca; fwd=stale"), headers
        else:
            assert max(0, ttl - 60) <= left <= ttl, (path, headers)

    # the text form: the rule, where it is written, and each term's origin
    p = run("rules", "test", "--config", config, origin.url("/nightly/Image"))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "nightly" in p.stdout and "rule nightly" in p.stdout
    assert f"{config}:{line_of(config, '[rule nightly]')}" in p.stdout, p.stdout
    # a URL that is not one: one line, as other client commands refuse bad input
    p = run("rules", "test", "--config", config, "not a url")
    assert p.returncode == 2 and p.stdout == "" and p.stderr.startswith("arca: "), p.stderr
    assert p.stderr.count("\n") == 1, p.stderr
    # mirrors come first, the origin last
    release = origin.url("/releases/24.04/rootfs.ext4")
    mirror = f"^http://127\\.0\\.0\\.1:{origin.port}/releases/=http://mirror.lab.example/rel/"
    sources = rules_test(config, release, "--mirror", mirror)["sources"]
    assert [s["kind"] for s in sources] == ["mirror", "origin"], sources
    assert sources[0]["url"] == "http://mirror.lab.example/rel/24.04/rootfs.ext4", sources
    assert sources[1]["url"] == release

    # the API's answer is the CLI's, to the admin alone
    for path, s in said.items():
        query = urllib.parse.urlencode({"url": origin.url(path), "client": "127.0.0.1"})
        status, _, body = arca.get(f"/api/v1/rules/?{query}",
                                   {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and json.loads(body) == s, (path, body)
    # a fetch URL pasted unencoded is read whole, as /api/v1/fetch/ reads it (the new user's
    # review: its &b=2 was dropped), a trailing client= apart
    pasted = origin.url("/nightly/Image?a=1&b=2")
    status, _, body = arca.get(f"/api/v1/rules/?url={pasted}&client=127.0.0.1",
                               {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body)["url"] == pasted, body
    assert json.loads(body)["client"] == "127.0.0.1"
    assert arca.get(f"/api/v1/rules/?{query}")[0] in (401, 403)
    assert arca.get(f"/api/v1/rules/?{query}",
                    {"Authorization": "Bearer not-the-token-0123456789"})[0] == 401


def test_the_longest_prefix_wins_in_the_normal_form_arca_keys_by(origin, start_arca, config,
                                                                  workdir):
    """Rules for a whole origin, for /a/ and for /a/b/: a URL under /a/b/ gets the longest, also
    written with a dot segment and a %-escape (matched as arca keys it, the form it fetches),
    and the rules test lists the two rules that lose. Between hosts a named host beats a `*.`
    glob, a longer glob a shorter one, and `https://example.org` never covers
    `example.org.evil.com`."""
    write(config, rule("root", origin.url("/"), "ttl = 1d"),
          rule("a", origin.url("/a/"), "ttl = 2d"),
          rule("ab", origin.url("/a/b/"), "ttl = 3d"),
          # written with a dot segment and a lower-case escape: matched in its normal form
          rule("tilde", origin.url("/c/./d/%7e/"), "ttl = 4d"))
    # (as written, the path arca fetches and keys, the ttl of the rule that wins)
    fetched = [(origin.url("/a/b/x"), "/a/b/x", 3 * DAY),
               (f"http://127.0.0.1:{origin.port}/a/./b/%78", "/a/b/%78", 3 * DAY),
               (f"http://127.0.0.1:{origin.port}/c/d/%7e/f", "/c/d/%7E/f", 4 * DAY)]
    bodies = {path: os.urandom(10_000) for _, path, _ in fetched}
    for path, data in bodies.items():  # %78 stays an escape in arca's key (docs/API.md)
        origin.add(path, data=data)
    arca = start_arca("--config", config)

    s = rules_test(config, fetched[0][0])
    assert s["rule"]["name"] == "ab" and s["terms"]["ttl"]["value"] == 3 * DAY
    assert [(l["name"], l["line"]) for l in s["losers"]] == \
        [("a", line_of(config, "[rule a]")), ("root", line_of(config, "[rule root]"))]
    assert s["losers"][0]["match"] == origin.url("/a/")
    s = rules_test(config, fetched[1][0])
    assert s["url"] == origin.url("/a/b/%78") and s["rule"]["name"] == "ab"
    assert [l["name"] for l in s["losers"]] == ["a", "root"]
    s = rules_test(config, fetched[2][0])
    assert s["rule"]["name"] == "tilde" and s["rule"]["match"] == origin.url("/c/d/%7E/")

    for written, path, ttl in fetched:
        assert arca.fetch(written)[0] == 200, written
        kept(arca, path)
        status, headers, body = arca.fetch(written)
        assert status == 200 and sha256(body) == sha256(bodies[path]), written
        assert ttl - DAY < hit_ttl(headers) <= ttl, (written, headers)
        assert origin.counts[path] == 1, written
    assert "/a/b/%78" in origin.targets and "/c/d/%7E/f" in origin.targets

    hosts = write(os.path.join(workdir, "hosts.ini"),
                  rule("any-org", "http://*.org/"),
                  rule("example-glob", "http://*.example.org/"),
                  rule("www", "http://www.example.org/"),
                  rule("bare", "https://example.org"))
    for url, winner, losers in (
            ("http://www.example.org/f", "www", ["example-glob", "any-org"]),
            ("http://cdn.example.org/f", "example-glob", ["any-org"]),
            ("http://example.org/f", "any-org", []),  # `*.` is never the bare domain
            ("https://example.org/f", "bare", []),
            ("https://example.org.evil.com/f", None, [])):
        s = rules_test(hosts, url)
        assert (s["rule"] or {}).get("name") == winner, (url, s["rule"])
        assert [l["name"] for l in s["losers"]] == losers, (url, s["losers"])
    assert rules_test(hosts, "https://example.org/f")["rule"]["match"] == "https://example.org/"


def test_max_object_size_per_rule(origin, start_arca, config):
    """A prefix of small files may not bring a 2 MiB one (max-object-size = 1M under its rule):
    it is refused as an object over --max-object-size is, while the same file elsewhere is
    served."""
    data = os.urandom(2 * 1024 * 1024)
    small_only = origin.add("/dtbs/huge.dtb", data=data)
    elsewhere = origin.add("/images/huge.img", data=data)
    write(config, rule("dtbs", origin.url("/dtbs/"), "max-object-size = 1M"))
    assert rules_test(config, small_only)["terms"]["max-object-size"] == \
        {"value": 1024 * 1024, "from": "rule dtbs"}
    arca = start_arca("--config", config)
    status, _, body = arca.fetch(small_only)
    assert status == 413, (status, body[:200])
    assert resource(arca, "/dtbs/huge.dtb") is None
    status, _, body = arca.fetch(elsewhere)
    assert status == 200 and sha256(body) == sha256(data)


def test_a_rule_inside_a_narrowing_rule_is_warned_of_naming_what_decides(workdir):
    """check-config warns of a rule that names no networks inside one that narrows, naming what
    the admin may have meant (--allow-network's, or the catch-all's); never inside a rule that
    lets everyone in: that prefix is meant open."""
    def warnings(*sections):
        path = write(os.path.join(workdir, "nested.ini"), *sections, arca=())
        p = run("check-config", "--config", path, *own_address())
        assert p.returncode == 0, p.stderr
        return [line for line in p.stderr.splitlines() if "names no allow-network" in line]

    big = rule("big", "https://a.example/pub/big/", "ttl = 1d")
    assert warnings(rule("pub", "https://a.example/pub/", "allow-network = all"), big) == []
    said = warnings(rule("pub", "https://a.example/pub/", "allow-network = 10.0.0.0/8"), big)
    assert len(said) == 1 and said[0].endswith(
        "rule pub's networks decide who may fetch there, not --allow-network's"), said
    said = warnings(rule("pub", "https://a.example/pub/", "allow-network = 10.0.0.0/8"), big,
                    rule("every", "*", "allow-network = 10.20.0.0/16"))
    assert len(said) == 1 and said[0].endswith(
        "rule pub's networks decide who may fetch there, not rule every's (match = *)"), said
