"""A restart serves at once (issue 70): the index's rows go into memory while arca answers, and
what is on disk is a hit from the first request. The big index is real rows written beside
arca's own (its schema, its keys), most of them without files: a row is trusted until its
object's first hit. Each scenario asserts that its requests came before the load had reached
them (the log's count of rows looked up ahead), so that none passes for want of a window."""

import concurrent.futures
import hashlib
import json
import os
import re
import signal
import sqlite3
import threading
import time

from conftest import ARCA_BIN, sha256, wait_for
from test_admin import TOKEN, token_file

# rows: loading them takes a tenth of a second at least, the requests a few ms; a sanitized
# build loads several times slower, so fewer give it the same window (and the run its minutes)
BULK = 40_000 if re.search(r"build-(asan|tsan|debug)", ARCA_BIN) else 100_000


def cached_and_stopped(origin, start_arca, workdir, paths):
    """An arca that fetched `paths` and stopped (a clean close). Returns (arca, {url: body})."""
    bodies = {origin.add(p, data=os.urandom(20000)): None for p in paths}
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))
    for url in bodies:
        status, _, body = arca.fetch(url)
        assert status == 200
        bodies[url] = body
    arca.stop()
    return arca, bodies


def add_bulk(data_dir, prefix, n=BULK):
    """n complete rows under `prefix`, fresh, used long ago (the LRU's far end), no files."""
    now = int(time.time())
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"))
    def row(i):
        url = f"{prefix}{i}"
        key = hashlib.sha256(url.encode()).hexdigest()
        return (key, url, "complete", 4096, "application/octet-stream",
                hashlib.sha256(key.encode()).digest(), now, 86400, now - 86400, 1)
    rows = (row(i) for i in range(n))
    with db:
        db.executemany("INSERT INTO objects (key, url, state, length, content_type, sha256,"
                       " created, ttl, last_use, usage) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    db.close()


def looked_up_ahead(arca, since):
    """The store's line once loaded (in the log after `since` characters): rows looked up
    before the load reached them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"index loaded in [\d.]+ s; (\d+) looked up",
                      arca.read_log()[since:])
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError(arca.read_log())


def restarted(start_arca, first, workdir, wait_loaded=False):
    """The same data dir again; returns (arca, where its lines begin in the shared log)."""
    since = len(first.read_log())
    return start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir), data_dir=first.data_dir,
                      wait_loaded=wait_loaded), since


def test_objects_on_disk_are_hits_while_the_index_loads(origin, start_arca, workdir):
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/kernel", "/dtb"])
    add_bulk(first.data_dir, origin.url("/bulk/"))
    arca, since = restarted(start_arca, first, workdir)
    for url, body in bodies.items():
        status, _, got = arca.fetch(url)
        assert status == 200 and sha256(got) == sha256(body), url
    assert origin.counts["/kernel"] == 1 and origin.counts["/dtb"] == 1, "never asked again"
    assert looked_up_ahead(arca, since) >= 2, "the hits came while the index loaded"
    status = arca.status()
    assert status["index_loading"] is False
    assert status["resources_successes"] == BULK + 2
    assert status["statistics_hits"] == 2


def test_a_purge_while_the_index_loads_keeps_its_word(origin, start_arca, workdir):
    """A URL purged before the loader reached its row stays purged (the loader's copy is
    dropped); a prefix purge waits for the load and takes the rows not loaded yet too (a
    tenth of them: a hundred thousand removals take minutes under ThreadSanitizer)."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/gone", "/kept"])
    add_bulk(first.data_dir, origin.url("/bulk/"), BULK - BULK // 10)
    add_bulk(first.data_dir, origin.url("/tenth/"), BULK // 10)
    arca, since = restarted(start_arca, first, workdir)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    gone = origin.url("/gone")
    status, _, body = arca.get(f"/api/v1/resources/?url={gone}", auth, method="DELETE",
                               timeout=120)
    assert status == 200 and json.loads(body)["purged"] is True, body
    status, _, body = arca.get(f"/api/v1/purge/?prefix={origin.url('/tenth/')}", auth,
                               method="POST", timeout=120)
    assert status == 200 and json.loads(body)["purged"] == BULK // 10, body
    assert looked_up_ahead(arca, since) >= 1, "the purge came while the index loaded"
    status = arca.status()
    assert status["resources_successes"] == BULK - BULK // 10 + 1, status  # and /kept
    _, _, body = arca.get(f"/api/v1/resources/?url={gone}", auth)
    assert json.loads(body)["state"] == "absent", body
    assert arca.fetch(gone)[0] == 200 and origin.counts["/gone"] == 2
    # and a restart finds them gone: the rows went before the answers
    arca.stop()
    again, _ = restarted(start_arca, first, workdir, wait_loaded=True)
    # /kept, /gone fetched again, and the rows no purge named
    assert again.status()["resources_successes"] == BULK - BULK // 10 + 2


def test_damage_found_after_start_moves_the_index_aside_at_the_next(origin, start_arca,
                                                                     workdir):
    """A clean close lets the next start trust the file at once; its check then runs after the
    rows. Damage the check finds (here a page of the key index, the file's times put back as
    bit rot would leave them) is logged, and the next start moves the index aside."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/k"])
    index = os.path.join(first.data_dir, "index.sqlite")
    assert os.path.exists(index + ".clean")
    db = sqlite3.connect(index)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name="
                      "'sqlite_autoindex_objects_1'").fetchone()[0]
    db.close()
    times = os.stat(index)
    with open(index, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(os.urandom(page_size))
    os.utime(index, ns=(times.st_atime_ns, times.st_mtime_ns))
    arca, _ = restarted(start_arca, first, workdir)
    assert arca.log_shows("integrity check failed: what loaded is served; the next start moves "
                          "the index aside", timeout=30), arca.read_log()
    arca.stop()
    again, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert "moved aside" in again.read_log()[since:]
    assert any(n.startswith("index.sqlite.corrupt-") for n in os.listdir(first.data_dir))
    status, _, body = again.fetch(origin.url("/k"))
    assert status == 200 and sha256(body) == sha256(bodies[origin.url("/k")])
    assert origin.counts["/k"] == 2, "nothing from the damaged index was served"


def test_a_crash_has_the_index_checked_before_serving_a_clean_stop_not(origin, start_arca,
                                                                      workdir):
    """A clean stop leaves index.sqlite.clean: the next start serves at once and says no check;
    after kill -9 there is none, and the start checks the index first and says so."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/c"])
    checked = "not as a clean stop left it: checked in"
    assert os.path.exists(os.path.join(first.data_dir, "index.sqlite.clean"))
    arca, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert checked not in arca.read_log()[since:]
    assert not os.path.exists(os.path.join(first.data_dir, "index.sqlite.clean"))
    arca.stop(signal.SIGKILL)
    again, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert checked in again.read_log()[since:]
    url, body = next(iter(bodies.items()))
    status, _, got = again.fetch(url)
    assert status == 200 and sha256(got) == sha256(body) and origin.counts["/c"] == 1


def test_a_row_whose_key_is_not_its_urls_is_never_served(origin, start_arca, workdir):
    """An object keeps its key's first 4 bytes and makes the rest from its URL: a row of the
    index whose key is not its URL's sha256 (damage, a hand's edit: here /d/1's row given /d/2's
    URL) would be found by neither, and its image row, its removal and the sweep would name /d/2's
    key. The start says it, serves none of it and deletes the row; /d/2 answers its own bytes,
    a digest request for /d/1's bytes is no hit on /d/2's, and a clean stop and start keep it so."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/d/1", "/d/2"])
    u1, u2 = origin.url("/d/1"), origin.url("/d/2")
    x = bodies[u1]
    k1 = hashlib.sha256(u1.encode()).hexdigest()
    db = sqlite3.connect(os.path.join(first.data_dir, "index.sqlite"))
    with db:
        db.execute("UPDATE objects SET url=? WHERE key=?", (u2, k1))
    db.close()
    os.unlink(os.path.join(first.data_dir, "index.sqlite.clean"))  # a hand's edit: not trusted
    arca, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert arca.log_shows("1 complete row of the index named a key that is not their URL's "
                          "sha256")
    assert "never served; 1 deleted" in arca.read_log()[since:]
    for _ in range(2):
        status, _, got = arca.fetch(u2)
        assert status == 200 and sha256(got) == sha256(bodies[u2])
        status, _, got = arca.fetch(origin.add("/d/3", data=x), sha256=sha256(x))
        assert status == 200 and got == x and origin.counts["/d/3"] == 1, "fetched, not a hit"
        arca.stop()
        rows = sqlite3.connect(os.path.join(first.data_dir, "index.sqlite")).execute(
            "SELECT key, url FROM objects").fetchall()
        assert all(k == hashlib.sha256(u.encode()).hexdigest() for k, u in rows), rows
        arca, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert origin.counts["/d/2"] == 1 and origin.counts["/d/1"] == 1
    status, _, got = arca.fetch(u1)  # its row gone: fetched again
    assert status == 200 and got == x and origin.counts["/d/1"] == 2


def test_a_damaged_images_row_is_never_served(origin, start_arca, workdir):
    """A clean stop's image carries no checksum of its records: one whose key is another URL's
    (a byte of /d/1's key made /d/2's) is checked as SQLite's rows are, never served; /d/2
    answers its own bytes, /d/1 is fetched again, and no good file is swept."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/d/1", "/d/2"])
    u1, u2 = origin.url("/d/1"), origin.url("/d/2")
    k1, k2 = (hashlib.sha256(u.encode()).digest() for u in (u1, u2))
    image = os.path.join(first.data_dir, "index.sqlite.image")
    with open(image, "rb") as f:
        data = f.read()
    assert data.count(k1) == 1
    st = os.stat(image)
    with open(image, "wb") as f:
        f.write(data.replace(k1, k2))
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))  # as the clean stop left it
    arca, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert arca.log_shows("1 complete row of the index named a key that is not their URL's "
                          "sha256")
    status, _, got = arca.fetch(u2)
    assert status == 200 and sha256(got) == sha256(bodies[u2]) and origin.counts["/d/2"] == 1
    status, _, got = arca.fetch(u1)
    assert status == 200 and sha256(got) == sha256(bodies[u1])
    assert os.path.exists(os.path.join(first.data_dir, "objects", k2.hex()[:2], k2.hex()))


def test_a_second_row_of_one_key_is_not_a_second_object(origin, start_arca, workdir):
    """SQLite keeps a key as text and the same digits as a blob apart (two rows under its primary
    key), and both read back as the same key: the load puts one object in the table, not two."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/u"])
    u = origin.url("/u")
    k = hashlib.sha256(u.encode()).hexdigest()
    db = sqlite3.connect(os.path.join(first.data_dir, "index.sqlite"))
    with db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(objects)")]
        row = list(db.execute("SELECT * FROM objects WHERE key=?", (k,)).fetchone())
        row[cols.index("key")] = k.encode()  # the same digits, as a blob
        db.execute(f"INSERT INTO objects VALUES ({','.join('?' * len(row))})", row)
    db.close()
    os.unlink(os.path.join(first.data_dir, "index.sqlite.clean"))
    arca, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert arca.status()["resources_successes"] == 1, arca.status()
    status, _, got = arca.fetch(u)
    assert status == 200 and sha256(got) == sha256(bodies[u]) and origin.counts["/u"] == 1


def test_an_empty_cache_stops_clean_every_time(origin, start_arca, workdir):
    """A start on a clean stop's index owes its check; an index without rows (a new cache, the
    README's first run) skipped the load and the check with it: every other stop left no clean
    mark ("none left: the check this start owed the index did not end") and the next start
    checked the index as a crash's. Four stops in a row, each clean, each start serving at once."""
    first, _ = cached_and_stopped(origin, start_arca, workdir, [])
    clean = os.path.join(first.data_dir, "index.sqlite.clean")
    for _ in range(3):
        assert os.path.exists(clean)
        arca, since = restarted(start_arca, first, workdir, wait_loaded=True)
        arca.stop()
        log = arca.read_log()[since:]
        assert "not as a clean stop left it" not in log and "none left" not in log, log


def test_a_stop_before_the_owed_check_leaves_the_index_unmarked(origin, start_arca, workdir):
    """A clean stop's index is trusted and owes its check after the load; a stop that comes
    first (here during the load) must not mark it clean again, or damage would never be found:
    the next start checks it before serving."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/o"])
    add_bulk(first.data_dir, origin.url("/bulk/"))
    # written since the clean stop: this start checks it first, then marks it clean at its stop
    arca, _ = restarted(start_arca, first, workdir, wait_loaded=True)
    arca.stop()
    clean = os.path.join(first.data_dir, "index.sqlite.clean")
    assert os.path.exists(clean)
    arca, since = restarted(start_arca, first, workdir)  # trusted: its check comes after the load
    assert arca.fetch(origin.url("/o"))[0] == 200
    arca.stop()
    assert "index loaded in" not in arca.read_log()[since:], "the stop came during the load"
    assert not os.path.exists(clean)
    again, since = restarted(start_arca, first, workdir, wait_loaded=True)
    assert "not as a clean stop left it: checked in" in again.read_log()[since:]
    assert origin.counts["/o"] == 1


IMAGED = "its rows from the image a clean stop left"


def checked_after_load(arca, since):
    """Waits for the log to say the check a trusted index owes ran (its stop may then mark it
    clean and leave an image); a stop before it would leave neither."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "after its rows loaded" in arca.read_log()[since:]:
            return
        time.sleep(0.02)
    raise AssertionError(arca.read_log()[since:])


def test_a_clean_stop_leaves_an_image_the_next_start_loads_from(origin, start_arca, workdir):
    """A clean stop writes its objects' rows beside the index (index.sqlite.image); the next
    start reads them instead of SQLite's rows and serves each as before the restart: the same
    bytes and headers, no origin request. An object purged before the stop stays purged. The
    image is read once: a crash after that start leaves none, and the start after the crash
    checks the index first and reads its rows."""
    paths = ["/img/a", "/img/b", "/img/c"]
    for p in paths:
        origin.add(p, data=os.urandom(30000), content_type="application/x-xz",
                   etag=f'"{p}"', last_modified="Tue, 01 Sep 2026 10:00:00 GMT",
                   headers={"Content-Disposition": 'attachment; filename="img.xz"'})
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))
    before = {}
    for p in paths:
        status, headers, body = arca.fetch(origin.url(p))
        assert status == 200
        before[p] = (sha256(body), {k: headers.get(k) for k in
                                    ("Content-Type", "Last-Modified", "Content-Disposition",
                                     "ETag")})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = arca.get(f"/api/v1/resources/?url={origin.url('/img/c')}", auth,
                               method="DELETE")
    assert status == 200 and json.loads(body)["purged"] is True, body
    arca.stop()
    image = os.path.join(arca.data_dir, "index.sqlite.image")
    assert os.path.exists(image)

    again, since = restarted(start_arca, arca, workdir, wait_loaded=True)
    assert IMAGED in again.read_log()[since:], again.read_log()[since:]
    assert not os.path.exists(image), "read once"
    for p in ("/img/a", "/img/b"):
        status, headers, body = again.fetch(origin.url(p))
        assert status == 200 and sha256(body) == before[p][0], p
        assert {k: headers.get(k) for k in before[p][1]} == before[p][1], headers
        assert origin.counts[p] == 1, "a hit, not a download"
    assert again.status()["resources_successes"] == 2
    status, _, body = again.fetch(origin.url("/img/c"))
    assert status == 200 and sha256(body) == before["/img/c"][0]
    assert origin.counts["/img/c"] == 2, "purged before the stop: fetched again"

    checked_after_load(again, since)
    again.stop(signal.SIGKILL)
    assert not os.path.exists(image), "a crash leaves none"
    third, since = restarted(start_arca, arca, workdir, wait_loaded=True)
    log = third.read_log()[since:]
    assert "not as a clean stop left it: checked in" in log and IMAGED not in log, log
    for p in paths:
        assert third.fetch(origin.url(p))[0] == 200
    assert [origin.counts[p] for p in paths] == [1, 1, 2]
    third.stop()
    assert os.path.exists(image), "a clean stop after a checked start leaves one"


def test_an_index_changed_while_arca_was_down_is_read_not_its_image(origin, start_arca,
                                                                    workdir):
    """An admin's hand on the index while arca is down (here a row deleted with sqlite3) changes
    the file: the next start reads the index, never the image of what it was, so the deleted
    row's object is not served from the image; the image is removed unread."""
    first, bodies = cached_and_stopped(origin, start_arca, workdir, ["/h/kept", "/h/dropped"])
    index = os.path.join(first.data_dir, "index.sqlite")
    assert os.path.exists(index + ".image")
    db = sqlite3.connect(index)
    with db:
        db.execute("DELETE FROM objects WHERE url=?", (origin.url("/h/dropped"),))
    db.close()
    arca, since = restarted(start_arca, first, workdir, wait_loaded=True)
    log = arca.read_log()[since:]
    assert IMAGED not in log and "not as a clean stop left it: checked in" in log, log
    assert not os.path.exists(index + ".image")
    assert arca.status()["resources_successes"] == 1
    for url, body in bodies.items():
        status, _, got = arca.fetch(url)
        assert status == 200 and sha256(got) == sha256(body)
    assert origin.counts["/h/kept"] == 1 and origin.counts["/h/dropped"] == 2


def test_a_refresh_in_flight_at_the_stop_keeps_its_copy_in_the_image(origin, start_arca,
                                                                      workdir):
    """A stop while an expired object's refresh waits on its origin: the refresh is set aside,
    the expired copy's row stays the index's complete one, and the image holds it too (it was
    one row short, so no image was left). The next start loads from the image and has the copy,
    with its bytes."""
    old = os.urandom(40000)
    gate = threading.Event()
    url = origin.add("/r/x", data=old, etag='"v1"',
                     on_request=lambda obj, index: index == 1 and gate.wait(30))
    other = origin.add("/r/y", data=os.urandom(1000))
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))
    t0 = time.monotonic()
    assert arca.fetch(url, ttl="1s")[0] == 200
    assert arca.fetch(other)[0] == 200
    wait_for(lambda: time.monotonic() > t0 + 1.2, "the ttl to run out", timeout=10)
    refresh = concurrent.futures.ThreadPoolExecutor(1).submit(arca.fetch, url, ttl="1s")
    wait_for(lambda: origin.counts["/r/x"] == 2, "the refresh to ask upstream")
    arca.stop()
    gate.set()
    refresh.exception(timeout=30)  # its client is cut off by the stop: whatever it got
    assert os.path.exists(os.path.join(arca.data_dir, "index.sqlite.image"))
    again, since = restarted(start_arca, arca, workdir, wait_loaded=True)
    assert IMAGED in again.read_log()[since:], again.read_log()[since:]
    assert again.status()["resources_successes"] == 2
    status, _, body = again.fetch(url)
    assert status == 200 and sha256(body) == sha256(old)
    assert again.fetch(other)[0] == 200 and origin.counts["/r/y"] == 1
