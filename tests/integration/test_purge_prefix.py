"""Purge by prefix: POST /api/v1/purge/?prefix=URL (admin token) and `arca purge --prefix URL`.
A withdrawn nightly tree goes in one call: every object under the prefix, pinned ones too, and
nothing else; a download under way finishes for its clients but is not kept; a prefix that
matches every URL needs all=1; a restart finds them gone."""

import json
import os
import subprocess
import threading
import urllib.parse

from conftest import ARCA_BIN, Arca, read_to_end, sha256, wait_downloading, wait_for
from test_admin import TOKEN, token_file

NIGHTLY = "/nightly/2026-11-25/"


def ini(workdir, origin):
    """A rule pins the nightly tree: a purge is the admin's word, pinned or not."""
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write(f"[arca]\nupstream-allow = 127.0.0.0/8\nadmin-token-file = {token_file(workdir)}\n"
                f"\n[rule nightly]\nmatch = {origin.url('/nightly/')}\npin = yes\n")
    return path


def purge_prefix(arca, prefix, token=TOKEN, **extra):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query = urllib.parse.urlencode({"prefix": prefix, **extra})
    return arca.get(f"/api/v1/purge/?{query}", headers, method="POST")


def fill(arca, origin, paths):
    for path in paths:
        origin.add(path, data=path.encode() * 100)
        assert arca.fetch(origin.url(path))[0] == 200


def hits(arca, origin, paths):
    """Each path fetched again: whether the origin was left alone (a hit)."""
    before = {p: origin.counts[p] for p in paths}
    for p in paths:
        assert arca.fetch(origin.url(p))[0] == 200
    return {p: origin.counts[p] == before[p] for p in paths}


def test_a_prefix_purge_drops_exactly_the_objects_under_it(workdir, origin):
    arca = Arca(workdir, ["--config", ini(workdir, origin)]).start()
    under = [NIGHTLY + "a.img", NIGHTLY + "dtb/b.dtb", NIGHTLY + "c%20d.txt"]
    beside = ["/nightly/2026-11-24/a.img", "/nightly/2026-11-25.txt", "/release/a.img"]
    fill(arca, origin, under + beside)
    status = arca.status()
    assert status["resources_successes"] == 6 and status["pinned_objects"] == 5
    size = sum(len(p.encode() * 100) for p in under)

    code, _, body = purge_prefix(arca, origin.url(NIGHTLY))
    assert code == 200, body
    answer = json.loads(body)
    assert answer == {"prefix": origin.url(NIGHTLY), "purged": 3, "bytes": size,
                      "downloads_not_kept": 0, "negative_answers": 0, "left": 0}
    status = arca.status()
    assert status["resources_successes"] == 3 and status["pinned_objects"] == 2
    # the ones beside it are still hits; the purged ones come from the origin again
    assert hits(arca, origin, beside) == {p: True for p in beside}
    assert hits(arca, origin, under) == {p: False for p in under}
    # purged again: nothing under it but what was fetched since
    code, _, body = purge_prefix(arca, origin.url(NIGHTLY) + "dtb")
    assert code == 200 and json.loads(body)["purged"] == 1
    arca.stop()


def test_a_prefix_purge_is_kept_across_a_restart(workdir, origin):
    config = ini(workdir, origin)
    arca = Arca(workdir, ["--config", config]).start()
    under, beside = [NIGHTLY + f"f{i}" for i in range(20)], ["/release/keep"]
    fill(arca, origin, under + beside)
    assert json.loads(purge_prefix(arca, origin.url(NIGHTLY))[2])["purged"] == 20
    assert arca.stop() == 0
    again = Arca(workdir, ["--config", config]).start()
    assert again.status()["resources_successes"] == 1
    # the purged files: removed by the stop, or else by the start's sweep of files no row names
    wait_for(lambda: sum(len(files) for _, _, files in
                         os.walk(os.path.join(workdir, "data", "objects"))) == 1,
             "only the kept object's file on disk")
    assert hits(again, origin, beside) == {beside[0]: True}
    assert hits(again, origin, under[:2]) == {p: False for p in under[:2]}
    again.stop()


def test_a_download_under_way_finishes_for_its_clients_but_is_not_kept(workdir, origin):
    arca = Arca(workdir, ["--config", ini(workdir, origin)]).start()
    data = os.urandom(400000)
    gate = threading.Event()
    url = origin.add(NIGHTLY + "big.img", data=data, last_byte_gate=gate)
    conn, resp = arca.stream(url)
    wait_downloading(arca, NIGHTLY + "big.img")
    code, _, body = purge_prefix(arca, origin.url(NIGHTLY))
    assert code == 200 and json.loads(body)["downloads_not_kept"] == 1
    # a client joining after the purge is served from the same download, which is not kept
    conn2, resp2 = arca.stream(url)
    gate.set()
    for c, r in ((conn, resp), (conn2, resp2)):
        got, complete = read_to_end(r)
        c.close()
        assert complete and sha256(got) == sha256(data)
    wait_for(lambda: arca.status()["resources_downloading"] == 0, "the download ended")
    assert arca.status()["resources_successes"] == 0
    assert arca.fetch(url)[2] == data and origin.counts[NIGHTLY + "big.img"] == 2
    arca.stop()


def test_bad_prefixes_are_refused_with_one_line(workdir, origin):
    arca = Arca(workdir, ["--config", ini(workdir, origin)]).start()
    fill(arca, origin, [NIGHTLY + "a"])
    cases = [("ftp://host/x", "prefix must be an http:// or https:// URL"),
             ("/nightly/", "prefix must be an http:// or https:// URL"),
             ("http://", "prefix names no host: it matches every URL (all=1, or arca purge --all,"),
             ("https:///", "prefix names no host"),
             ("http://host/a\x01", "")]
    for prefix, reason in cases:
        code, _, body = purge_prefix(arca, prefix)
        assert code == 400, prefix
        assert body.count(b"\n") == 1 and reason.encode() in body, (prefix, body)
    code, _, body = arca.get("/api/v1/purge/", {"Authorization": f"Bearer {TOKEN}"}, "POST")
    assert code == 400 and b"missing prefix parameter" in body
    assert arca.status()["resources_successes"] == 1
    # all=1 says the admin means it: every http:// URL
    code, _, body = purge_prefix(arca, "http://", all="1")
    assert code == 200 and json.loads(body)["purged"] == 1
    arca.stop()


def test_a_prefix_purge_needs_the_admin_token(workdir, origin, start_arca):
    arca = Arca(workdir, ["--config", ini(workdir, origin)]).start()
    fill(arca, origin, [NIGHTLY + "a"])
    assert purge_prefix(arca, origin.url(NIGHTLY), token=None)[0] == 401
    assert purge_prefix(arca, origin.url(NIGHTLY), token="wrong-token-0123456789")[0] == 401
    assert arca.get(f"/api/v1/purge/?prefix={origin.url(NIGHTLY)}", method="GET")[0] == 405
    assert arca.status()["resources_successes"] == 1
    arca.stop()
    off = start_arca("--upstream-allow", "127.0.0.0/8")
    assert purge_prefix(off, origin.url(NIGHTLY))[0] == 403


def cli(*args, env=None):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "ARCA_ADMIN_TOKEN": "", **(env or {})})


def test_arca_purge_prefix_from_the_command_line(workdir, origin):
    arca = Arca(workdir, ["--config", ini(workdir, origin)]).start()
    fill(arca, origin, [NIGHTLY + "a", NIGHTLY + "b", "/release/c"])
    server = ["--server", arca.base, "--admin-token-file", token_file(workdir)]
    out = cli("purge", *server, "--prefix", origin.url(NIGHTLY))
    assert out.returncode == 0, out.stderr
    size = len((NIGHTLY + "a").encode() * 100) * 2
    assert out.stdout == f"purged 2 objects ({size} bytes) under {origin.url(NIGHTLY)}\n"
    assert arca.status()["resources_successes"] == 1
    # bad usage: 2, said before anything is asked
    for args, said in ((["--prefix", "ftp://x/"], "prefix must be an http:// or https:// URL"),
                       (["--prefix", "http://"], "prefix names no host"),
                       (["--prefix", origin.url("/a"), origin.url("/b")],
                        "purge takes a URL or --prefix URL, not both"),
                       (["--all", origin.url("/a")], "--all is for purge --prefix")):
        out = cli("purge", *server, *args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and said in out.stderr, \
            (args, out.stderr)
    # a refusal: 1
    out = cli("purge", "--server", arca.base, "--prefix", origin.url(NIGHTLY),
              env={"ARCA_ADMIN_TOKEN": "wrong-token-0123456789"})
    # about the caller, not the URL: said without it (issue 67: it read as the origin's word)
    assert out.returncode == 1 and out.stderr == "arca: 401: wrong admin token\n", out.stderr
    out = cli("purge", *server, "--prefix", "http://", "--all")
    assert out.returncode == 0 and out.stdout.startswith("purged 1 object ("), out.stderr
    assert arca.status()["resources_successes"] == 0
    arca.stop()
