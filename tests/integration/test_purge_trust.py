"""A purge keeps its promise where it meets older mechanisms (issue 67): the expired copy a refresh
is replacing goes with it (never answered stale, never restored when the refresh fails, gone
after a restart); the purge is answered once it is on disk (kill -9 right after the answer loses
nothing); a 404 in flight when the purge came is not kept as a negative answer."""

import concurrent.futures
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse

from conftest import Arca, wait_for
from test_admin import TOKEN, token_file
from test_negative_ttl import negative
from test_purge_prefix import purge_prefix

OLD, NEW = b"the bad release\n" * 64, b"the fixed release\n" * 64


def ini(workdir, *lines):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write(f"[arca]\nupstream-allow = 127.0.0.0/8\nadmin-token-file = {token_file(workdir)}\n"
                + "".join(line + "\n" for line in lines))
    return path


def gated(origin, path, gate, **kw):
    """`path` on the origin, each GET held until `gate` is set."""
    return origin.add(path, on_request=lambda obj, index: gate.wait(30), **kw)


def joining(arca, fetch, *args, **kw):
    """fetch(*args, **kw) in a thread of its own, once arca holds its connection (it counts in
    arca_active_connections: a download in flight is what it joins)."""
    seen = []

    def settled():  # a connection arca closes as its client leaves counts until it is closed
        seen.append(arca.metrics()["arca_active_connections"])
        return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]

    wait_for(settled, "arca's connections settled", timeout=30, every=0.05)
    pending = concurrent.futures.ThreadPoolExecutor(1).submit(fetch, *args, **kw)
    wait_for(lambda: arca.metrics()["arca_active_connections"] > seen[-1], "the client joined",
             timeout=30)
    return pending


def expired(t0, ttl):
    """Wait until an object fetched at t0 (monotonic) with `ttl` seconds has expired."""
    wait_for(lambda: time.monotonic() > t0 + ttl + 0.2, "the ttl to run out", timeout=ttl + 5)


def test_the_copy_a_refresh_replaces_is_purged_and_a_failed_refresh_does_not_bring_it_back(
        workdir, origin):
    config = ini(workdir, "stale-if-error = 1h", "origin-failures = 0")
    arca = Arca(workdir, ["--config", config]).start()
    url = origin.add("/nightly/Image", data=OLD)
    t0 = time.monotonic()
    assert arca.fetch(url, ttl="1s")[2] == OLD
    expired(t0, 1)
    # the refresh: upstream answers 503, slowly
    gate = threading.Event()
    gated(origin, "/nightly/Image", gate, status=503)
    first = concurrent.futures.ThreadPoolExecutor(1).submit(arca.fetch, url, ttl="1s")
    wait_for(lambda: origin.counts["/nightly/Image"] == 2, "the refresh asked upstream")
    code, _, body = purge_prefix(arca, origin.url("/nightly/"))
    answer = json.loads(body)
    assert code == 200 and answer["purged"] == 1 and answer["downloads_not_kept"] == 1, answer
    assert answer["bytes"] == len(OLD)
    # a client after the purge never gets the purged bytes, stale-while-slow or stale-if-error
    late = joining(arca, arca.fetch, url, ttl="1s")
    gate.set()
    status, headers, got = late.result(30)
    assert got != OLD and status == 503, (status, headers)
    first.result(30)
    wait_for(lambda: arca.status()["resources_downloading"] == 0, "the refresh ended")
    # nor after the refresh failed, in the listing, nor after a restart
    assert arca.status()["resources_successes"] == 0
    status, _, got = arca.fetch(url, ttl="1s")
    assert status == 503 and got != OLD
    assert arca.stop() == 0
    again = Arca(workdir, ["--config", config]).start()
    assert again.status()["resources_successes"] == 0
    status, _, got = again.fetch(url, ttl="1s")
    assert status == 503 and got != OLD
    origin.add("/nightly/Image", data=NEW)
    assert again.fetch(url)[2] == NEW
    again.stop()


def test_a_second_purge_during_the_next_refresh_finds_nothing_to_bring_back(workdir, origin):
    config = ini(workdir, "stale-if-error = 1h", "origin-failures = 0")
    arca = Arca(workdir, ["--config", config]).start()
    url = origin.add("/nightly/rootfs.ext4", data=OLD)
    t0 = time.monotonic()
    assert arca.fetch(url, ttl="1s")[2] == OLD
    expired(t0, 1)
    for round_ in range(2):
        gate = threading.Event()
        gated(origin, "/nightly/rootfs.ext4", gate, status=503)
        asked = origin.counts["/nightly/rootfs.ext4"]
        pending = concurrent.futures.ThreadPoolExecutor(1).submit(arca.fetch, url, ttl="1s")
        wait_for(lambda: origin.counts["/nightly/rootfs.ext4"] > asked, "the refresh began")
        purge_prefix(arca, origin.url("/nightly/"))
        gate.set()
        pending.result(30)
        wait_for(lambda: arca.status()["resources_downloading"] == 0, "the refresh ended")
        status, _, got = arca.fetch(url, ttl="1s")
        assert got != OLD, round_
    arca.stop()


def slow_index(workdir):
    """arca's environment with tests/integration/shims/slow_index_writes.c preloaded, and the
    flag file that turns its slow index writes on once created."""
    lib, flag = os.path.join(workdir, "slow_index_writes.so"), os.path.join(workdir, "slow-index")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", lib,
                    os.path.join(os.path.dirname(__file__), "shims", "slow_index_writes.c"),
                    "-ldl"], check=True, timeout=60)
    asan = os.environ.get("ASAN_OPTIONS", "")  # ASan wants to be first; the shim comes first
    return {"LD_PRELOAD": lib, "SLOW_INDEX_FLAG": flag,
            "ASAN_OPTIONS": f"{asan}:verify_asan_link_order=0".lstrip(":")}, flag


def filled(arca, origin, paths):
    for p in paths:
        origin.add(p, data=p.encode())
        assert arca.fetch(origin.url(p))[0] == 200


def killed_at_once(arca, answer):
    """kill -9 as soon as the answer came (it promised what it did is on disk), then the
    answer, for the caller to check."""
    arca.proc.send_signal(signal.SIGKILL)
    arca.proc.wait(10)
    return answer


def a_hit(arca, origin, path):
    before = origin.counts[path]
    assert arca.fetch(origin.url(path))[0] == 200
    return origin.counts[path] == before


def test_a_purge_answered_is_on_disk_kill_9_right_after_loses_none(workdir, origin):
    """The index's writes made slow (a busy disk): the purge's answer waits for its rows, and a
    kill -9 right after it loses none (before, every one of them came back)."""
    config = ini(workdir)
    env, flag = slow_index(workdir)
    arca = Arca(workdir, ["--config", config], env=env).start()
    paths = [f"/nightly/bad/f{i}" for i in range(20)]
    filled(arca, origin, paths)
    open(flag, "w").close()
    code, _, body = killed_at_once(arca, purge_prefix(arca, origin.url("/nightly/bad/")))
    assert code == 200 and json.loads(body)["purged"] == len(paths)
    again = Arca(workdir, ["--config", config]).start()
    assert again.status()["resources_successes"] == 0
    assert not a_hit(again, origin, paths[0])
    again.stop()


def test_a_404_in_flight_during_a_purge_is_not_kept_after_it(workdir, origin):
    config = ini(workdir, "negative-ttl = 1h")
    arca = Arca(workdir, ["--config", config]).start()
    gate = threading.Event()
    url = gated(origin, "/nightly/new.img", gate, status=404)
    pending = concurrent.futures.ThreadPoolExecutor(1).submit(arca.fetch, url)
    wait_for(lambda: origin.counts["/nightly/new.img"] == 1, "the download asked upstream")
    # published, then purged: the 404 said before the purge is not the word after it
    code, _, body = purge_prefix(arca, origin.url("/nightly/"))
    assert code == 200 and json.loads(body)["downloads_not_kept"] == 1
    gate.set()
    assert pending.result(30)[0] == 404
    origin.add("/nightly/new.img", data=NEW)
    status, headers, got = arca.fetch(url)
    assert status == 200 and got == NEW and not negative(headers)
    assert origin.counts["/nightly/new.img"] == 2
    arca.stop()


def test_a_delete_answered_is_on_disk_kill_9_right_after_loses_it(workdir, origin):
    """DELETE /api/v1/resources/?url= answers once its row is gone on disk too."""
    config = ini(workdir)
    env, flag = slow_index(workdir)
    arca = Arca(workdir, ["--config", config], env=env).start()
    filled(arca, origin, ["/release/old.img", "/release/bad.img", "/release/good.img"])
    open(flag, "w").close()

    def delete(path):
        query = urllib.parse.urlencode({"url": origin.url(path)})
        return arca.get(f"/api/v1/resources/?{query}", {"Authorization": f"Bearer {TOKEN}"},
                        method="DELETE")

    assert delete("/release/old.img")[0] == 200  # its removal keeps the index busy
    code, _, body = killed_at_once(arca, delete("/release/bad.img"))
    assert code == 200 and json.loads(body)["purged"], body
    again = Arca(workdir, ["--config", config]).start()
    assert not a_hit(again, origin, "/release/old.img")
    assert not a_hit(again, origin, "/release/bad.img")
    assert a_hit(again, origin, "/release/good.img")
    again.stop()


def test_a_purge_at_a_site_is_obeyed_by_its_parents_copies(workdir, origin, start_tier):
    """A site's purge reaches through its tier: the site asks its parent for nothing older than
    the purge, a copy or a kept 404 (the parent keeps them for its other sites)."""
    token = token_file(workdir)
    parent, (site,) = start_tier(1, "--negative-ttl", "1h", "--admin-token-file", token,
                                 parent_args=("--negative-ttl", "1h"))
    gone, bad = origin.url("/nightly/late.img"), origin.add("/nightly/Image", data=OLD,
                                                            etag='"old"')
    assert site.fetch(gone)[0] == 404 and site.fetch(bad)[2] == OLD
    assert negative(parent.fetch(gone)[1]) and parent.fetch(bad)[2] == OLD
    origin.add("/nightly/late.img", data=NEW)
    origin.add("/nightly/Image", data=NEW, etag='"new"')
    code, _, body = purge_prefix(site, origin.url("/nightly/"))
    assert code == 200 and json.loads(body)["purged"] == 1, body
    assert site.fetch(gone)[2] == NEW and site.fetch(bad)[2] == NEW
    assert origin.counts["/nightly/late.img"] == 2 and origin.counts["/nightly/Image"] == 2
    # one URL's purge the same
    origin.add("/nightly/Image", data=OLD, etag='"again"')
    query = urllib.parse.urlencode({"url": bad})
    assert site.get(f"/api/v1/resources/?{query}", {"Authorization": f"Bearer {TOKEN}"},
                    method="DELETE")[0] == 200
    assert site.fetch(bad)[2] == OLD and origin.counts["/nightly/Image"] == 3


def test_a_purge_of_one_url_takes_its_other_spellings(workdir, origin):
    arca = Arca(workdir, ["--config", ini(workdir, "negative-ttl = 1h")]).start()
    origin.add("/nightly/Image", data=OLD)
    spellings = [origin.url("/nightly/Image"), origin.url("//nightly/Image"),
                 f"http://127.1:{origin.port}/nightly/Image"]
    for url in spellings:
        assert arca.fetch(url)[2] == OLD
    missing = [origin.url("/nightly/dtb"), f"http://127.1:{origin.port}/nightly/dtb"]
    for url in missing:
        assert arca.fetch(url)[0] == 404
    origin.add("/nightly/Image", data=NEW)
    origin.add("/nightly/dtb", data=NEW)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for url in (spellings[1], missing[0]):
        query = urllib.parse.urlencode({"url": url})
        code, _, body = arca.get(f"/api/v1/resources/?{query}", headers, method="DELETE")
        assert code == 200 and json.loads(body)["purged"], body
    for url in spellings + missing:
        assert arca.fetch(url)[2] == NEW, url
    arca.stop()
