"""Bulk removals from a big store (issue 70) keep near the disk's pace. Each removal is a row's
delete and a file's unlink on the persistence thread. A lowered quota's eviction faster than
that took 100,000 of a million objects in 3.5 s while their removals took the thread 13 s: each
a job in memory meanwhile, the usage counting as free what the disk still held, a stop draining
them all first. A purge by prefix is answered once its rows are gone, its files removed after:
a walk that kept near the disk's pace had its answer wait for 20,000 unlinks. The big store is
real rows beside arca's own (test_big_start's), without files."""

import hashlib
import os
import signal
import sqlite3
import threading
import time

import pytest

from conftest import wait_for
from test_admin import TOKEN, token_file
from test_big_start import add_bulk
from test_disk_faults import FAULTS, faulty  # noqa: F401 (a fixture)
from test_purge_prefix import purge_prefix
from test_reload import write_config

# rows over the quota: more than a tick's 32 holds of 1,024, so that an eviction ahead of the
# disk (30,000 jobs queued at once before store_evict_ahead) cannot pass for one that kept pace
BULK = 40_000

# store_evict_ahead (store_room.c: removals owed to the disk, whatever its pace) and what the
# usage flush may queue beside them
QUEUE_BOUND = 8192 + 256
# rows purged: more than store_evict_ahead (8,192), the removals a walk once kept ahead of the
# disk before it went on
PURGE_BULK = 20_000


def bulk_rows_left(data_dir, prefix):
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"))
    left = db.execute("SELECT count(*) FROM objects WHERE url LIKE ?", (prefix + "%",)).fetchone()[0]
    db.close()
    return left


def test_a_lowered_quota_evicts_at_the_disks_pace_and_keeps_what_is_recent(
        origin, start_arca, workdir):
    config = os.path.join(workdir, "arca.ini")
    write_config(config)
    kernel = os.urandom(50000)
    url = origin.add("/kernel", data=kernel)
    first = start_arca("--config", config)
    assert first.fetch(url)[0] == 200
    first.stop()
    add_bulk(first.data_dir, origin.url("/bulk/"), BULK)  # used a day ago: the LRU's far end
    arca = start_arca("--config", config, data_dir=first.data_dir)
    usage = arca.status()["disk_usage"]
    assert usage == BULK * 4096 + 50000
    quota = usage - BULK * 4096  # every bulk row over it, the kernel under it
    write_config(config, f"quota = {quota}")
    arca.reload("SIGHUP: reloaded")
    deepest, deadline = 0, time.monotonic() + 300
    while True:
        depth = arca.metrics()['arca_persist_queue_jobs{queue="ordered"}']
        deepest = max(deepest, depth)
        if arca.status()["disk_usage"] <= quota:
            break
        assert time.monotonic() < deadline, f"still evicting; queue {depth}"
        time.sleep(0.005)
    assert deepest <= QUEUE_BOUND, f"{deepest:.0f} jobs queued at once"
    # nobody waited for the removals: they left the disk to the hits a share of the time
    # (persist/pace.h)
    assert arca.metrics()["arca_removals_paused_seconds_total"] > 0
    status, _, body = arca.fetch(url)
    assert status == 200 and body == kernel
    assert origin.counts["/kernel"] == 1  # a hit: the most recent object stayed
    arca.stop()  # drains what is queued: a bounded few
    assert bulk_rows_left(first.data_dir, origin.url("/bulk/")) == 0


@pytest.mark.skipif(not os.path.exists(FAULTS), reason=f"{FAULTS} is built with arca")
def test_a_purge_of_a_big_prefix_is_answered_once_its_rows_are_gone_while_its_files_wait(
        origin, faulty, workdir):
    start, arm = faulty
    args = ("--admin-token-file", token_file(workdir))
    first = start(*args)
    first.stop()
    add_bulk(first.data_dir, origin.url("/bulk/"), PURGE_BULK)
    arca = start(*args, data_dir=first.data_dir)
    # every unlink under this store's objects held from here on: the purge's files cannot go
    arm("SLOW_UNLINK", line=os.path.join(first.data_dir, "objects") + "/\n")
    answer = {}

    def purge():
        try:
            answer["status"], _, answer["body"] = purge_prefix(arca, origin.url("/bulk/"), TOKEN)
        except OSError as e:  # the client's own deadline
            answer["error"] = e

    walk = threading.Thread(target=purge)
    walk.start()
    walk.join(timeout=60)  # a walk that waited for the files would wait for as long as held
    assert not walk.is_alive() and answer.get("status") == 200, \
        f"the purge waited for its files: {answer}"
    assert b'"purged":%d' % PURGE_BULK in answer["body"].replace(b" ", b""), answer["body"]
    # answered with every file still to remove (the first unlink held), and the rows gone on
    # disk: kill -9 now, and the purged rows are not there
    wait_for(lambda: os.path.exists(os.path.join(workdir, "fault-SLOW_UNLINK.held")),
             "the purge's files begun after its answer")
    metrics = arca.metrics()
    assert metrics["arca_purge_removals_queued"] == PURGE_BULK
    # one of its jobs in the queue at a time for the files: a download's file made now would
    # wait behind one run of unlinks, not behind each job's. Beside it, through three of the
    # once-a-second saves of the counters, one save at most: the later ones bring it up to date
    # rather than queue one more (stats.c)
    deepest, seen_until = 0, time.monotonic() + 3
    while time.monotonic() < seen_until:
        deepest = max(deepest, arca.metrics()['arca_persist_queue_jobs{queue="ordered"}'])
        time.sleep(0.02)
    assert 1 <= deepest <= 2, f"{deepest:.0f} jobs queued behind the held unlink"
    arca.stop(signal.SIGKILL)
    assert bulk_rows_left(first.data_dir, origin.url("/bulk/")) == 0
    arm("SLOW_UNLINK", False)


def test_a_stop_right_after_a_big_purge_leaves_no_purged_file_past_the_restarts_sweep(
        origin, start_arca, workdir):
    """The purge is answered before its files go. A stop right after the answer goes on with
    them for a while (2 s) and leaves the rest to the next start's sweep, which removes every
    file no row names: none of the purge's is left after it, nor any of its rows."""
    args = ("--upstream-allow", "127.0.0.0/8", "--admin-token-file", token_file(workdir))
    first = start_arca(*args)
    first.stop()
    prefix = origin.url("/bulk/")
    add_bulk(first.data_dir, prefix, PURGE_BULK)
    files = []
    for i in range(PURGE_BULK):
        key = hashlib.sha256(f"{prefix}{i}".encode()).hexdigest()
        files.append(os.path.join(first.data_dir, "objects", key[:2], key))
        os.makedirs(os.path.dirname(files[-1]), exist_ok=True)
        with open(files[-1], "wb") as f:
            f.truncate(4096)
    arca = start_arca(*args, data_dir=first.data_dir, wait_loaded=True)
    status, _, body = purge_prefix(arca, prefix, TOKEN)
    assert status == 200 and b'"purged":%d' % PURGE_BULK in body.replace(b" ", b""), body
    assert arca.stop() == 0
    assert bulk_rows_left(first.data_dir, prefix) == 0
    again = start_arca(*args, data_dir=first.data_dir, wait_loaded=True)
    wait_for(lambda: not any(os.path.exists(f) for f in files),
             "the purged files removed by the stop or the restart's sweep", timeout=120,
             every=0.2)
    assert again.status()["resources_successes"] == 0
    again.stop()
