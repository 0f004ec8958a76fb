"""What a rule decided for a download survives a restart that cuts it: arca takes the download up
again by itself (nobody asks), and the object it completes is still pinned, still bound by its
rule's max-object-size. Found by the outside review of issue 58: a `pin = yes` release resumed
after kill -9 completed unpinned (`pinned_objects` 0), and the first eviction took it."""

import os
import signal
import sqlite3

from conftest import Arca, resource, sha256, wait_for

MIB = 1 << 20


def ini(workdir, *rule_lines, quota="64M"):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write(f"[arca]\nupstream-allow = 127.0.0.0/8\nquota = {quota}\nfill-connections = 1\n"
                "\n[rule release]\n" + "".join(line + "\n" for line in rule_lines))
    return path


def killed_mid_download(workdir, origin, path, config, until):
    """arca streaming `path`, SIGKILLed once the origin has sent `until` bytes and a part of it
    is synced. Returns the data dir."""
    data_dir = os.path.join(workdir, "data")
    first = Arca(workdir, ["--config", config], data_dir).start()
    try:
        conn, _ = first.stream(origin.url(path))
        wait_for(lambda: origin.bytes_sent[path] >= until, "the origin's bytes", timeout=30)
        wait_for(lambda: synced(data_dir) > 0, "a part synced", timeout=30)
        conn.close()
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        first.stop()
    origin.objects[path].rate = 0
    return data_dir


def synced(data_dir):
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"), timeout=5)
    try:
        row = db.execute("SELECT synced FROM objects WHERE state='fetching'").fetchone()
        return row[0] if row else 0
    finally:
        db.close()


def test_a_pinned_release_resumed_after_kill_stays_pinned_and_outlives_eviction(workdir, origin):
    release = os.urandom(40 * MIB)
    url = origin.add("/rel/fw.img", data=release, etag='"fw1"', rate=20 * MIB)
    config = ini(workdir, f"match = {origin.url('/rel/')}", "pin = yes")
    data_dir = killed_mid_download(workdir, origin, "/rel/fw.img", config, 20 * MIB)
    arca = Arca(workdir, ["--config", config], data_dir).start()
    try:
        # nobody asks: arca resumes it by itself, and it completes pinned
        wait_for(lambda: resource(arca, "/rel/fw.img"), "the resumed release complete", 60)
        assert arca.metrics()["arca_restart_resumes_total"] == 1
        assert origin.counts["/rel/fw.img"] == 2  # the first try, then the rest
        status = arca.status()
        assert (status["pinned_objects"], status["pinned_bytes"]) == (1, len(release)), status
        # two jobs' blobs fill the 64 MiB quota: the older blob goes, never the release, though
        # the release is the least recently used
        blobs = [os.urandom(14 * MIB) for _ in range(2)]
        for i, blob in enumerate(blobs):
            status, _, body = arca.fetch(origin.add(f"/jobs/{i}/blob", data=blob))
            assert status == 200 and sha256(body) == sha256(blob), i
            wait_for(lambda i=i: resource(arca, f"/jobs/{i}/blob"), f"blob {i} kept")
        wait_for(lambda: resource(arca, "/jobs/0/blob") is None, "the older blob evicted")
        status, _, body = arca.fetch(url)
        assert status == 200 and sha256(body) == sha256(release)
        assert origin.counts["/rel/fw.img"] == 2  # a hit: the release was kept
        assert arca.status()["pinned_objects"] == 1
    finally:
        arca.stop()


def test_a_resumed_download_keeps_its_rules_max_object_size(workdir, origin):
    # no length declared (chunked): the rule's bound is checked as the bytes come, after the
    # restart too; the store-wide one (unbounded here) would keep all of it
    image = os.urandom(40 * MIB)
    url = origin.add("/rel/big.img", data=image, etag='"b1"', rate=20 * MIB, chunked=True)
    config = ini(workdir, f"match = {origin.url('/rel/')}", "max-object-size = 30M")
    data_dir = killed_mid_download(workdir, origin, "/rel/big.img", config, 20 * MIB)
    arca = Arca(workdir, ["--config", config], data_dir).start()
    try:
        # nobody asks: the resumed download is refused past the rule's 30 MiB, never kept whole
        failed = wait_for(lambda: resource(arca, "/rel/big.img", state="failures"),
                          "the resumed download refused", 60)
        assert failed["status_code"] == 413, failed
        assert resource(arca, "/rel/big.img") is None
        assert arca.metrics()["arca_restart_resumes_total"] == 1
    finally:
        arca.stop()


def test_a_download_a_later_request_says_not_to_store_is_not_resumed(workdir, origin):
    # the terms change while it downloads (a SIGHUP's rule, then a client joining): its row
    # follows them, so the restart keeps nothing a rule now says not to store
    image = os.urandom(40 * MIB)
    url = origin.add("/rel/nightly.img", data=image, etag='"n1"', rate=20 * MIB)
    config = ini(workdir, f"match = {origin.url('/rel/')}", "pin = yes")
    data_dir = os.path.join(workdir, "data")
    first = Arca(workdir, ["--config", config], data_dir).start()
    try:
        conn, _ = first.stream(url)
        wait_for(lambda: synced(data_dir) > 0, "a part synced", timeout=30)
        ini(workdir, f"match = {origin.url('/rel/')}", "store = no")
        before = first.read_log().count("SIGHUP: reloaded")
        first.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: first.read_log().count("SIGHUP: reloaded") > before, "the reload")
        joined, _ = first.stream(url)
        wait_for(lambda: row_terms(data_dir) == (0, 1), "the row's new terms")
        conn.close()
        joined.close()
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        first.stop()
    origin.objects["/rel/nightly.img"].rate = 0
    arca = Arca(workdir, ["--config", config], data_dir).start()
    try:
        assert arca.metrics()["arca_restart_resumes_total"] == 0
        assert arca.status()["resources_downloading"] == 0
        wait_for(lambda: arca.status()["disk_usage"] == 0, "nothing of it kept")
        assert origin.counts["/rel/nightly.img"] == 1
    finally:
        arca.stop()


def row_terms(data_dir):
    """(pinned, not_stored) of the download's row."""
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"), timeout=5)
    try:
        return db.execute("SELECT pinned, not_stored FROM objects WHERE state='fetching'"
                          ).fetchone()
    finally:
        db.close()
