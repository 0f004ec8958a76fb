"""Bulk removals from a big store (issue 70) keep near the disk's pace. Each removal is a row's
delete and a file's unlink on the persistence thread. A lowered quota's eviction faster than
that took 100,000 of a million objects in 3.5 s while their removals took the thread 13 s: each
a job in memory meanwhile, the usage counting as free what the disk still held, a stop draining
them all first. A purge by prefix queued all of its removals at once: a download beginning
meanwhile, whose file is made in order behind them, waited 9.8 s for it. The big store is real
rows beside arca's own (test_big_start's), without files."""

import os
import sqlite3
import threading
import time

from conftest import wait_for
from test_admin import TOKEN, token_file
from test_big_start import add_bulk
from test_purge_prefix import purge_prefix
from test_reload import write_config

# rows over the quota: more than a tick's 32 holds of 1,024, so that an eviction ahead of the
# disk (30,000 jobs queued at once before store_evict_ahead) cannot pass for one that kept pace
BULK = 40_000

# store_evict_ahead (store_room.c), a tick's first hold (1,024 evictions, which always goes)
# and what the usage flush may queue beside them
QUEUE_BOUND = 8192 + 1024 + 256
# store_evict_ahead, and the slice of a purge's walk past it: a hold visits 1,024 slots, each
# with the objects its chain holds
PURGE_BOUND = 8192 + 2048
# rows purged: twice the bound, which a walk that queued them all at once would pass
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


def test_a_purge_of_a_big_prefix_keeps_near_the_disks_pace_while_a_download_begins(
        origin, start_arca, workdir):
    args = ("--upstream-allow", "127.0.0.0/8", "--admin-token-file", token_file(workdir))
    first = start_arca(*args)
    first.stop()
    add_bulk(first.data_dir, origin.url("/bulk/"), PURGE_BULK)
    arca = start_arca(*args, data_dir=first.data_dir)
    answer = {}

    def purge():
        answer["status"], _, answer["body"] = purge_prefix(arca, origin.url("/bulk/"), TOKEN)

    kernel = os.urandom(50000)
    url = origin.add("/kernel", data=kernel)
    got = {}

    def download():  # begun while the purge's removals are queued: its file is made behind them
        got["status"], _, got["body"] = arca.fetch(url)

    walk, lab = threading.Thread(target=purge), threading.Thread(target=download)
    walk.start()
    deepest, deadline = 0, time.monotonic() + 300
    while walk.is_alive():
        deepest = max(deepest, arca.metrics()["arca_purge_removals_queued"])
        if deepest and lab.ident is None:
            lab.start()
        assert time.monotonic() < deadline, "still purging"
        time.sleep(0.005)
    walk.join()
    assert answer["status"] == 200, answer
    assert b'"purged":%d' % PURGE_BULK in answer["body"].replace(b" ", b""), answer["body"]
    assert 0 < deepest <= PURGE_BOUND, f"{deepest:.0f} removals queued at once"
    lab.join()
    assert got["status"] == 200 and got["body"] == kernel
    assert origin.counts["/kernel"] == 1
    wait_for(lambda: arca.metrics()["arca_purge_removals_queued"] == 0,
             "the purge's files removed after its answer")
    arca.stop()
    assert bulk_rows_left(first.data_dir, origin.url("/bulk/")) == 0
