"""Sites and tiers (issue 54, docs/CLUSTER.md "Sites and tiers"): a site's arca (a child) asks
its central arca (the parent, --parent) for what it lacks, and every guarantee holds end to end.
One download per URL for the whole tree; Cache-Status lists the parent's member, then the
child's, and the child is fresh for what is left of the parent's freshness, never for more, nor
for a stale answer; a dead parent is passed over (the origin serves within seconds), held down
after three faults and used again once back; --parent-only never asks the origin; a loop ends in
a 508; a parent URL with credentials is refused at start; signed URLs go to a parent only over a
path trusted with their credentials, and are confirmed as without a tier; an https parent is
verified; sha256= decides its own answer only; a child's parallel fill and its resume after a
restart ask the parent; HAProxy in front of two parents; and `arca rules test` says which
parent is asked, as arca then does.

Who asked the origin: each arca adds its `Via: 1.1 host:PORT (arca)` to what it sends upstream,
so the origin's request shows the chain (the child's port, then the parent's) it came through.
What a parent was asked: its access log (tier.py)."""

import email.utils
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from cluster import HAProxy, on_node
from conftest import (ARCA_BIN, free_port, resource, sha256, wait_age, wait_downloading,
                      wait_for)
from test_rules import rule, rules_test, write
from test_signed import PATH as SIGNED_PATH, add_signed, full_gets, s3_url
from tier import (asked_by_children, fallback_metric, fetch_like_curl, full_fetch,
                  logged_fallback, members, parent_row, repr_digest, ttl_of, wait_fallback)

MIB = 1 << 20
WRONG = hashlib.sha256(b"not this body").hexdigest()
RANGES = {"Accept-Ranges": "bytes"}


def via_ports(headers):
    """The listening ports of the arcas a request came through, nearest the client first."""
    return [int(p) for p in re.findall(r":(\d+) \(arca\)", headers.get("Via", ""))]


def origin_chains(origin, path):
    """For each GET of `path` the origin had: the arcas (ports) it came through."""
    return [via_ports(h) for p, h in origin.requests if p == path]


def add(origin, path, size=300_000, **kw):
    """An object of `size` random bytes at `path`, with a strong ETag: (url, data)."""
    data = os.urandom(size)
    kw.setdefault("etag", f'"{sha256(data)[:16]}"')
    return origin.add(path, data=data, **kw), data


# --- one download for the tree ---------------------------------------------------------------


def test_an_empty_file_comes_through_the_parent_too(start_tier, origin):
    """A child asks "Range: bytes=0-" first; an empty body has no byte to range over, and the
    parent answers it whole (once a 416 sent every empty file to the origin)."""
    parent, (child,) = start_tier(1)
    url = origin.add("/empty/.stamp", data=b"", etag='"e"')
    for _ in range(2):  # the parent's miss (streamed), then its hit (complete)
        status, _, body, complete = full_fetch(child, url)
        assert status == 200 and complete and body == b""
        child.fetch(url)  # warm at the child meanwhile: nothing more asked
    row = parent_row(child)
    assert sum(row["fallbacks"].values()) == 0 and row["requests"] == 1, row
    assert origin.counts["/empty/.stamp"] == 1
    status, _, body, _ = full_fetch(parent, url, headers={"Range": "bytes=0-"})
    assert status == 200 and body == b""


def test_two_children_and_ten_clients_cost_the_origin_one_download(start_tier, origin):
    parent, children = start_tier(2)
    path = "/images/rootfs.ext4"
    url, data = add(origin, path, 6 * MIB, rate=6 * MIB)  # cold, and still coming while all ask
    results = []

    def client(child):
        results.append(full_fetch(child, url, timeout=60))

    threads = [threading.Thread(target=client, args=(c,)) for c in children for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 10
    for status, headers, body, complete in results:
        assert status == 200 and complete and sha256(body) == sha256(data), \
            (status, complete, len(body), headers.get("cache-status"))
    # the parent's one download; the children's come through it
    assert origin.counts[path] == 1 and origin.bytes_sent[path] == len(data)
    assert origin_chains(origin, path)[0][-1] == parent.port
    assert len(asked_by_children(parent, url, at_least=2)) == 2  # once per child
    for child in children:
        row = parent_row(child)
        assert (row["url"], row["from"], row["state"]) == (parent.base, "--parent", "up")
        assert (row["requests"], row["bytes"]) == (1, len(data)), row
        assert sum(row["fallbacks"].values()) == 0, row
        m = child.metrics()
        assert m[f'arca_parent_requests_total{{parent="{parent.base}"}}'] == 1
        assert m[f'arca_parent_bytes_total{{parent="{parent.base}"}}'] == len(data)
        assert m[f'arca_parent_up{{parent="{parent.base}"}}'] == 1
        # kept: a hit at the child, its digest the origin's bytes'
        status, headers, body = child.fetch(url)
        assert status == 200 and sha256(body) == sha256(data)
        assert headers["repr-digest"] == repr_digest(data)
    assert origin.counts[path] == 1


# --- Cache-Status and Age --------------------------------------------------------------------


def test_cache_status_names_both_caches_and_the_child_keeps_only_what_is_left(start_tier,
                                                                              origin):
    """A parent that has held an object for 3 of its 8 s: the child's copy is as old (Age) and
    fresh for the 5 s left, not for the child's own 10 days; once the parent's copy expires the
    child's has too, and the child asks again."""
    parent, (child,) = start_tier(1, parent_args=("--default-ttl", "8s"))
    path = "/fw/blob.bin"
    url, data = add(origin, path)
    assert parent.fetch(url)[0] == 200
    wait_age(parent, path, 3)
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    first = members(headers)
    assert len(first) == 2, headers.get("cache-status")
    assert re.fullmatch(r"arca; hit; ttl=\d+", first[0]), first
    assert ttl_of(first[0]) <= 5, first
    assert first[1].startswith("arca; fwd=uri-miss"), first
    assert ttl_of(first[1]) is not None and ttl_of(first[1]) <= ttl_of(first[0]), first
    assert int(headers["age"]) >= 3, headers

    # a hit at the child: the parent's member as it was told, then the child's own
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    second = members(headers)
    assert len(second) == 2 and second[0] == first[0], second
    assert re.fullmatch(r"arca; hit; ttl=\d+", second[1]), second
    assert 0 <= ttl_of(second[1]) <= ttl_of(first[0]), second
    assert int(headers["age"]) >= 3, headers
    assert len(asked_by_children(parent, url, at_least=1)) == 1

    # the parent's copy expires: the child's with it (ttls do not stack), so the child asks
    wait_age(parent, path, 8)
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert not members(headers)[-1].startswith("arca; hit"), headers.get("cache-status")
    assert len(asked_by_children(parent, url, at_least=2)) == 2
    assert full_fetch(child, url)[2] == data


def test_a_parents_stale_answer_is_never_kept_fresh_by_the_child(start_tier, origin):
    """The origin is down and the parent answers from its expired copy (--stale-if-error): the
    child serves those bytes saying they are stale, and its next client does not get a fresh
    hit: the child asks its parent again."""
    parent, (child,) = start_tier(1, parent_args=("--default-ttl", "2s", "--stale-if-error", "1d"))
    path = "/nightly/Image"
    url, data = add(origin, path)
    assert parent.fetch(url)[0] == 200
    origin.objects[path].status = 503
    wait_age(parent, path, 2)
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    said = members(headers)
    assert len(said) == 2, said
    assert "fwd=stale" in said[0] and ttl_of(said[0]) is not None and ttl_of(said[0]) <= 0, said
    # the child's own member: what it holds is expired too
    assert ttl_of(said[1]) is not None and ttl_of(said[1]) <= 0, said
    asked = len(asked_by_children(parent, url, at_least=1))
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert not re.match(r"arca; hit; ttl=\d", members(headers)[-1]), headers.get("cache-status")
    assert len(asked_by_children(parent, url, at_least=asked + 1)) == asked + 1
    assert origin.counts[path] >= 1  # the parent's own tries; the child never went past it
    assert all(chain[-1] == parent.port for chain in origin_chains(origin, path))


# --- a parent that fails ---------------------------------------------------------------------


def test_a_dead_parent_is_passed_over_held_down_and_used_again_once_back(start_tier, origin):
    parent, (child,) = start_tier(1)
    parent.stop(signal.SIGKILL)
    for i in range(4):
        path = f"/dead/{i}"
        url, data = add(origin, path)
        status, _, body, complete = full_fetch(child, url, timeout=15)
        assert status == 200 and complete and sha256(body) == sha256(data), (i, status)
        assert origin_chains(origin, path) == [[child.port]], "the origin, from the child"
        assert resource(child, path, "failures") is None
    assert logged_fallback(child, "refused")
    row = parent_row(child)
    # three refused in a row hold it down; the fourth download did not try it
    assert row["fallbacks"]["refused"] == 3 and row["fallbacks"]["down"] == 1, row
    assert row["state"] == "down" and row["down_since"] and row["failures"] >= 3, row
    assert row["requests"] == 0
    assert fallback_metric(child, parent.base, "refused") == 3
    assert child.metrics()[f'arca_parent_up{{parent="{parent.base}"}}'] == 0

    parent.start(keep_port=True)
    tries = iter(range(1000))

    def asked_again():
        path = f"/back/{next(tries)}"
        url, data = add(origin, path)
        status, _, body = child.fetch(url)
        assert status == 200 and sha256(body) == sha256(data)
        return asked_by_children(parent, url, at_least=1, timeout=1)

    # the hold (5 s) over, the next download asks it again
    wait_for(asked_again, "the restarted parent asked again", timeout=30, every=0.5)
    row = parent_row(child)
    assert row["state"] == "up" and row["down_since"] is None and row["failures"] == 0, row


def test_a_parent_killed_mid_download_leaves_the_clients_to_the_origin(start_tier, origin):
    """The parent dies while the child streams from it: its clients get the origin's bytes
    (a client cut when the child starts over asks again, as curl --retry does, and is never
    given a whole wrong body); the object is not failed."""
    parent, (child,) = start_tier(1)
    path = "/big/rootfs.img"
    url, data = add(origin, path, 8 * MIB, rate=4 * MIB)
    results = []
    threads = [threading.Thread(target=lambda: results.append(fetch_like_curl(child, url)))
               for _ in range(3)]
    for t in threads:
        t.start()
    wait_downloading(child, path, at_least=MIB)
    parent.stop(signal.SIGKILL)
    for t in threads:
        t.join()
    assert len(results) == 3
    for status, _, body, cuts in results:
        assert status == 200 and sha256(body) == sha256(data)
        assert all(len(cut) < len(data) for cut in cuts)
    assert logged_fallback(child, "cut")
    row = wait_fallback(child, "cut")
    assert sum(row["fallbacks"].values()) == 1, row
    assert resource(child, path, "failures") is None
    # the parent's download (cut by its death), then the child's own
    assert [chain[-1] for chain in origin_chains(origin, path)] == [parent.port, child.port]
    status, headers, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert headers["repr-digest"] == repr_digest(data)


def test_parent_only_never_asks_the_origin(start_tier, origin):
    parent, (child,) = start_tier(1, "--parent-only")
    path = "/only/fw.bin"
    url, data = add(origin, path)
    status, _, body = child.fetch(url)  # the parent up: through it
    assert status == 200 and sha256(body) == sha256(data)
    parent.stop(signal.SIGKILL)
    for i in range(2):
        path = f"/only/{i}"
        url, data = add(origin, path)
        status, _, body, _ = full_fetch(child, url, timeout=30)
        assert status in (502, 503) and data[:64] not in body, (status, body[:200])
        assert origin.counts[path] == 0
        assert resource(child, path) is None
    assert parent_row(child)["requests"] >= 1
    assert child.status()["parent"]["only"] is True
    # it is shown down, but still asked: the log says it is held, never passed over
    assert parent_row(child)["failures"] >= 3
    assert child.log_shows("failures in a row; held down (--parent-only: still asked, the only "
                           "source) for 5 s")
    assert "passed over" not in child.read_log()


def test_a_parent_whose_parent_is_the_child_ends_in_a_508_not_a_loop(start_tier, origin):
    """Two arcas each the other's parent: a request goes once round (Via), the arca that sees
    its own name in Via answers 508, and the other goes to the origin: the client gets the
    bytes, the origin is asked once."""
    a_port = free_port()
    b = start_tier.arca("parent", "--parent", f"http://127.0.0.1:{a_port}")
    a = start_tier.arca("child", "--parent", b.base, port=a_port)
    for arca, other, path in ((a, b, "/loop/a"), (b, a, "/loop/b")):
        url, data = add(origin, path)
        status, _, body = arca.fetch(url)
        assert status == 200 and sha256(body) == sha256(data), (path, status)
        # the origin once, asked by `other` after `arca`'s request came back to `arca`
        assert origin_chains(origin, path) == [[arca.port, other.port]], origin_chains(origin, path)
        refused = [x for x in asked_by_children(arca, url, at_least=1) if x.status == 508]
        assert len(refused) == 1, asked_by_children(arca, url)
        assert logged_fallback(other, "loop")
    assert parent_row(a)["fallbacks"]["loop"] == 1 and parent_row(b)["fallbacks"]["loop"] == 1


def run_arca(workdir, *args):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize("args,says", [
    (("--parent", "http://lab:s3cr3t-w0rd@127.0.0.1:9/"), "credentials"),
    (("--parent", "https://token@central.example:8443"), "credentials"),
    (("--parent-only",), "--parent"),
    (("--parent-trusted-http",), "--parent"),
    (("--parent", "ftp://central.example/"), "http"),
    (("--parent", "http://central.example/?x=s3cr3t-w0rd"), "query"),
])
def test_a_bad_parent_is_refused_at_start_in_one_line(workdir, args, says):
    for command in (("serve", "--listen", f"127.0.0.1:{free_port()}"), ("check-config",)):
        p = run_arca(workdir, *command, "--data-dir", os.path.join(workdir, "d"), *args)
        said = p.stdout + p.stderr
        assert p.returncode != 0, said
        assert p.stderr.startswith("arca: ") and p.stderr.count("\n") == 1, p.stderr
        assert says in p.stderr, p.stderr
        assert "s3cr3t" not in said and "token@" not in said, said


def test_a_rules_parent_with_credentials_is_refused_without_showing_them(workdir):
    config = write(os.path.join(workdir, "arca.ini"),
                   rule("central", "http://example.org/", "parent = http://u:s3cr3t@central/"))
    p = run_arca(workdir, "check-config", "--config", config)
    assert p.returncode != 0 and "central" in p.stderr, p.stderr
    assert "s3cr3t" not in p.stdout + p.stderr


# --- signed URLs -----------------------------------------------------------------------------


def test_a_signed_url_never_goes_to_a_plain_http_parent(start_tier, origin):
    parent, (child,) = start_tier(1)
    data = add_signed(origin)
    status, _, body = child.fetch(s3_url(origin, nonce="good"))
    assert status == 200 and sha256(body) == sha256(data)
    assert asked_by_children(parent) == []
    assert full_gets(origin) == 1 and origin_chains(origin, SIGNED_PATH) == [[child.port]]
    row = wait_fallback(child, "credentials")
    assert row["requests"] == 0, row


def test_a_signed_url_through_a_trusted_parent_is_confirmed_as_without_a_tier(start_tier,
                                                                              origin):
    """--parent-trusted-http: the signed URL goes to the parent whole; a forged signature never
    gets the bytes, at the child that has them nor at one that has not (the parent confirms it
    with the origin, whose 403 comes back); a good signature at the other child costs the
    origin a one-byte confirmation, not a download."""
    parent, (child, other) = start_tier(2, "--parent-trusted-http")
    data = add_signed(origin)
    good = s3_url(origin, nonce="good")
    status, _, body = child.fetch(good)
    assert status == 200 and sha256(body) == sha256(data)
    assert full_gets(origin) == 1
    assert origin_chains(origin, SIGNED_PATH) == [[child.port, parent.port]]
    assert origin.targets[0] == good[good.index(SIGNED_PATH):], "the signature went whole"
    for c in (child, other):
        status, _, body = c.fetch(s3_url(origin, nonce="evil", forge=True))
        assert status == 403 and data[:64] not in body, (c.name, status)
    status, _, body = other.fetch(s3_url(origin, nonce="other"))
    assert status == 200 and sha256(body) == sha256(data)
    assert full_gets(origin) == 1
    assert parent_row(child)["fallbacks"]["credentials"] == 0


# --- an https parent -------------------------------------------------------------------------


def test_an_https_parent_is_verified(start_tier, start_tls_arca, tls_files, origin, workdir):
    """A child with the test CA fills from the https parent (a signed URL too, no option
    needed); a child that cannot verify its certificate never sends it anything and goes to
    the origin (`refused`)."""
    access_log = os.path.join(workdir, "parent0-access.log")
    parent = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--access-log", access_log,
                            name="parent0")
    parent.access_log = access_log
    child = start_tier.arca("child", "--parent", parent.tls_base, "--ca-file", tls_files["ca"])
    stranger = start_tier.arca("child", "--parent", parent.tls_base)

    url, data = add(origin, "/tls/a")
    status, _, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert origin_chains(origin, "/tls/a") == [[child.port, parent.port]]
    assert parent_row(child)["requests"] == 1

    signed = add_signed(origin)
    status, _, body = child.fetch(s3_url(origin, nonce="tls"))
    assert status == 200 and sha256(body) == sha256(signed)
    assert origin_chains(origin, SIGNED_PATH) == [[child.port, parent.port]]

    url, data = add(origin, "/tls/b")
    status, _, body = stranger.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert origin_chains(origin, "/tls/b") == [[stranger.port]]
    assert logged_fallback(stranger, "refused")
    row = wait_fallback(stranger, "refused")
    assert row["requests"] == 0 and asked_by_children(parent, url) == []


# --- sha256= ---------------------------------------------------------------------------------


def test_sha256_through_the_tier_decides_its_own_answer_only(start_tier, origin):
    parent, (child,) = start_tier(1, "--digest-framing", "hold")
    path = "/sums/Image"
    url, data = add(origin, path, 2 * MIB)
    status, headers, body = child.fetch(url, sha256=WRONG)  # the first, cold
    assert status == 502 and data[:64] not in body, (status, body[:200])
    status, _, body = child.fetch(url, sha256=sha256(data))
    assert status == 200 and sha256(body) == sha256(data)
    status, _, body = child.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    status, _, body = child.fetch(url, sha256=WRONG)  # now a hit: refused up front
    assert status == 502 and b"sha256" in body
    # one download for the tree, through the parent; the wrong digest was nobody else's
    assert origin.counts[path] == 1 and origin_chains(origin, path)[0][-1] == parent.port
    status, _, body = parent.fetch(url, sha256=sha256(data))
    assert status == 200 and sha256(body) == sha256(data)
    assert sum(parent_row(child)["fallbacks"].values()) == 0


# --- a child's parallel fill and resume ------------------------------------------------------


def test_a_childs_parallel_fill_asks_its_parent_for_the_ranges(start_tier, origin):
    """The parent still downloads (its origin paced) while the child fills over 4 connections:
    the ranges go to the parent, which answers them from the one download it makes."""
    parent, (child,) = start_tier(1, "--fill-connections", "4", "--fill-min-size", "1M")
    path = "/fill/rootfs.img"
    url, data = add(origin, path, 20 * MIB, rate=10 * MIB, headers=RANGES)
    status, headers, body, complete = full_fetch(child, url, timeout=60)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts[path] == 1 and origin.bytes_sent[path] == len(data)
    assert origin_chains(origin, path) == [[child.port, parent.port]]
    asked = asked_by_children(parent, url, at_least=2)
    assert len(asked) >= 2 and all(a.status == 206 for a in asked), asked
    assert sum(a.size for a in asked) >= len(data)
    assert sum(parent_row(child)["fallbacks"].values()) == 0
    status, headers, body = child.fetch(url)
    assert status == 200 and headers["repr-digest"] == repr_digest(data)


def synced(arca, path):
    """What arca's index says is synced of its download of `path` (0: none yet)."""
    db = sqlite3.connect(f"file:{os.path.join(arca.data_dir, 'index.sqlite')}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT synced FROM objects WHERE state='fetching' AND url LIKE ?",
                         (f"%{path}",)).fetchone()
        return row[0] if row else 0
    finally:
        db.close()


def test_a_child_restarted_mid_download_resumes_from_its_parent(start_tier, origin):
    """kill -9 of the child once a part of its download is synced; restarted on its data dir,
    it asks its parent for the rest only (If-Range: the one validator the parent keeps for the
    object), and the origin is not asked again."""
    parent, (child,) = start_tier(1, "--fill-connections", "1")
    path = "/resume/rootfs.img"
    url, data = add(origin, path, 40 * MIB, rate=16 * MIB, chunk=256 << 10)
    conn, _ = child.stream(url)
    wait_for(lambda: synced(child, path), "a part of the child's download synced", timeout=20)
    conn.close()
    child.stop(signal.SIGKILL)
    child.start(keep_port=True)
    status, _, body, complete = full_fetch(child, url, timeout=60)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts[path] == 1
    assert child.metrics()["arca_restart_resumes_total"] == 1
    asked = asked_by_children(parent, url, at_least=2)
    assert len(asked) == 2, asked
    assert asked[-1].status == 206 and 0 < asked[-1].size < len(data), asked
    assert sum(parent_row(child)["fallbacks"].values()) == 0
    status, headers, body = child.fetch(url)
    assert status == 200 and headers["repr-digest"] == repr_digest(data)


@pytest.mark.parametrize("only", [False, True], ids=["plain", "parent-only"])
def test_a_restarted_child_resumes_from_its_parent_when_the_origin_gave_no_etag(
        start_tier, origin, only):
    """The origin gives no ETag (a Last-Modified an hour old): the parent's first answer, while
    it still downloads, carries no validator, and once its copy is complete it says
    "<sha256>". The child killed mid-download resumes on the date; the parent's 206 with its
    sha256 ETag continues the kept bytes (its digest vouches for the whole at the end): no lie,
    nothing counted against the parent, the origin asked once."""
    extra = ("--parent-only",) if only else ()
    parent, (child,) = start_tier(1, "--fill-connections", "1", *extra)
    path = "/resume/noetag.img"
    stamp = email.utils.formatdate(time.time() - 3600, usegmt=True)
    url, data = add(origin, path, 40 * MIB, rate=16 * MIB, chunk=256 << 10, etag="",
                    last_modified=stamp)
    conn, _ = child.stream(url)
    wait_for(lambda: synced(child, path), "a part of the child's download synced", timeout=20)
    conn.close()
    child.stop(signal.SIGKILL)
    # the parent's copy complete: its answers now carry its sha256 as ETag
    wait_for(lambda: resource(parent, path), "the parent's copy complete", timeout=30)
    child.start(keep_port=True)
    status, _, body, complete = full_fetch(child, url, timeout=60)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts[path] == 1
    assert child.metrics()["arca_restart_resumes_total"] == 1
    asked = asked_by_children(parent, url, at_least=2)
    assert len(asked) == 2 and asked[-1].status == 206, asked
    row = parent_row(child)
    assert sum(row["fallbacks"].values()) == 0 and row["failures"] == 0, row
    assert not child.log_shows("parent failed") and not child.log_shows("starting over"), \
        child.read_log()[-1500:]


# --- HAProxy in front of two parents ---------------------------------------------------------


def test_a_child_fills_from_two_parents_behind_haproxy_and_survives_one(start_tier, origin,
                                                                          workdir):
    parents = [start_tier.arca("parent"), start_tier.arca("parent")]
    proxy = HAProxy(workdir, parents)
    try:
        child = start_tier.arca("child", "--parent", f"http://127.0.0.1:{proxy.port}")
        objs = {}
        for i in range(16):
            url, data = add(origin, f"/ha/{i}", 50_000)
            objs[url] = data
            status, _, body = child.fetch(url)
            assert status == 200 and sha256(body) == sha256(data), (i, status)
            assert origin.counts[f"/ha/{i}"] == 1
        held = [on_node(p) for p in parents]
        assert held[0] | held[1] == set(objs) and not held[0] & held[1], held
        assert held[0] and held[1], "consistent hashing gave both parents a share"
        assert parent_row(child)["requests"] == 16

        parents[0].stop(signal.SIGKILL)
        for i in range(16, 24):
            url, data = add(origin, f"/ha/{i}", 50_000)
            status, _, body = child.fetch(url)
            assert status == 200 and sha256(body) == sha256(data), (i, status)
            assert origin.counts[f"/ha/{i}"] == 1
    finally:
        proxy.stop()


# --- the rules test --------------------------------------------------------------------------


def test_the_rules_test_says_which_parent_is_asked_and_arca_then_asks_it(start_tier, origin,
                                                                           workdir):
    central, regional = start_tier.arca("parent"), start_tier.arca("parent")
    config = write(os.path.join(workdir, "arca.ini"),
                   rule("direct", origin.url("/direct/"), "parent = none"),
                   rule("regional", origin.url("/regional/"), f"parent = {regional.base}"),
                   arca=("upstream-allow = 127.0.0.0/8", f"parent = {central.base}"))
    expected = {"/direct/a": (None, "rule direct"), "/regional/b": (regional, "rule regional"),
                "/other/c": (central, "--parent")}
    urls = {}
    for path, (parent, source) in expected.items():
        urls[path], _ = add(origin, path)
        said = rules_test(config, urls[path])
        assert said["terms"]["parent"] == \
            {"value": parent.base if parent else "none", "from": source}, said["terms"]
        kinds = [(s["kind"], s["url"]) for s in said["sources"]]
        if parent:
            assert kinds == [("parent", parent.base), ("origin", urls[path])], kinds
            assert said["sources"][0]["from"] == source
        else:
            assert kinds == [("origin", urls[path])], kinds

    child = start_tier.arca("child", "--config", config)
    for path, (parent, _) in expected.items():
        status, _, body = child.fetch(urls[path])
        assert status == 200 and sha256(body) == sha256(origin.objects[path].data)
        for p in (central, regional):
            assert len(asked_by_children(p, urls[path], at_least=int(p is parent),
                                         timeout=2)) == int(p is parent), (path, p.name)
        chain = origin_chains(origin, path)
        assert chain == ([[child.port, parent.port]] if parent else [[child.port]]), chain
    froms = {r["url"]: r["from"] for r in child.status()["parent"]["parents"]}
    assert froms == {central.base: "--parent", regional.base: "rule regional"}, froms
