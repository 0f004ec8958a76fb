"""big-index's maintenance phase (issue 70, item 4): on a store of `count` objects and a tenth
more under two other paths, the resources listing's first page and the DELETE of one URL, then
random hits on the `count` at a fixed offered rate alone and beside each of what a lab's cache
does to a big store: the statistics page asked over and over, a purge by prefix of one tenth
(/old-purged/), an eviction at a quota lowered (SIGHUP) by the other tenth's bytes
(/old-evicted/, the least recently used). The hits never ask for what goes (the origin is closed: a
miss would be an error, and its retries the p99): a stall of the hits shows in their p99 beside
each against their p99 alone. And beside another program on the machine: a process spinning on
one core for the whole run (a compile beside the cache, a CI job on the lab's server).

The floor: the same round with the hits sent to nginx-static on the same files while arca does
the same maintenance (`floor`). nginx shares nothing of arca's but the machine and the files, so
its p99 beside each action is what that action's CPU and disk work leave any server on these
cores; arca's beyond it is arca's own (its locks, its threads)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from harness import INDEX_OBJECT_BYTES, Arca, rate_run, settled, warm_pages

TOKEN = "bench-admin-token-0123456789"


def _get_ms(url, headers=None):
    t0 = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                timeout=60) as r:
        r.read()
    return (time.monotonic() - t0) * 1000


def _delete_ms(base, url, headers):
    """Milliseconds of DELETE /api/v1/resources/?url=URL, which must find it cached."""
    query = urllib.parse.urlencode({"url": url})
    t0 = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(
            f"{base}/api/v1/resources/?{query}", method="DELETE", headers=headers),
            timeout=60) as r:
        if not json.loads(r.read()).get("purged"):
            raise RuntimeError(f"DELETE {url}: not purged")
    return (time.monotonic() - t0) * 1000


def _hits(hits_url, cfg, count):
    """The figures of one run of random hits at the offered rate, 3 s at least."""
    return rate_run(hits_url, cfg["index_rate"], max(cfg["index_seconds"], 3), count)


def _beside(hits_url, cfg, count, action):
    """The rate run's figures with `action()` started 1 s into it, in a thread of its own;
    the action's seconds too."""
    took, failed = {}, []

    def act():
        time.sleep(1.0)
        t0 = time.monotonic()
        try:
            action()
        except Exception as e:  # a failure is a figure's absence, said in the results
            failed.append(repr(e))
        took["s"] = time.monotonic() - t0

    t = threading.Thread(target=act)
    t.start()
    out = _hits(hits_url, cfg, count)
    t.join()
    if failed:
        raise RuntimeError(f"maintenance beside the hits failed: {failed[0]}")
    return out, took.get("s", float("nan"))


def _beside_hog(hits_url, cfg, count):
    """The rate run's figures with a process spinning on one core from before it to its end."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        return _hits(hits_url, cfg, count)
    finally:
        hog.kill()
        hog.wait()


def _forget(data_dir, dead_port, path):
    """Rows and files left under `path` after arca stopped, taken out so that the next build's
    round meets the store as this one did: how many there were."""
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"))
    like = f"http://127.0.0.1:{dead_port}{path}%"
    keys = [k for (k,) in db.execute("SELECT key FROM objects WHERE url LIKE ?", (like,))]
    for key in keys:
        try:
            os.unlink(os.path.join(data_dir, "objects", key[:2], key))
        except FileNotFoundError:
            pass
    db.execute("DELETE FROM objects WHERE url LIKE ?", (like,))
    db.commit()
    db.close()
    return len(keys)


def maintenance_round(work, cfg, data_dir, dead_port, count, name, make_index, binary,
                      floor=None):
    """arca (`binary`, its rounds named `name`) on the big store, its figures: listing_ms,
    delete_one_ms, then p99_ms_at_rate alone, p99_ms_hog beside a process spinning on one core,
    and p99_ms_stats, p99_ms_purge, p99_ms_evict beside each action, with purge_s and evict_s,
    the errors of the hits over the five runs (0: none missed), and what the purge and the
    eviction left (left_purged, left_evicted: taken out of the store after arca stops). It
    changes the store (a purge, an eviction): run last, on a store about to be removed.
    `make_index`: peers'. `floor`: an nginx serving the same files at /obj/, started, that takes
    the hits instead of arca (the module's floor; listing_ms and delete_one_ms are then nan)."""
    extra = max(count // 10, 1)
    make_index(data_dir, extra, dead_port, path="/old-purged/")
    make_index(data_dir, extra, dead_port, path="/old-evicted/", used_days_ago=30)
    os.sync()  # their files' writeback before, not during, the runs
    token, config = os.path.join(work, "admin-token"), os.path.join(work, f"{name}.ini")
    with open(token, "w") as f:
        f.write(TOKEN + "\n")
    with open(config, "w") as f:
        f.write(f"admin-token-file = {token}\n")
    a = Arca(work, data_dir, extra=["--config", config], binary=binary, name=name, start=False)
    t0 = time.monotonic()
    a.start()
    try:
        base = f"http://127.0.0.1:{a.port}"
        settled(a, t0)  # loaded, swept and checked, as a lab's cache is most of the day
        listing = max(_get_ms(f"{base}/api/v1/resources/?state=successes") for _ in range(3))
        # the admin's DELETE of one URL (every spelling of it goes: found by the spellings'
        # index, where a walk of the whole table took seconds at a million)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        delete_one = max(_delete_ms(base, f"http://127.0.0.1:{dead_port}/old-purged/{i}", auth)
                         for i in range(3))
        hits = f"{base}/api/v1/fetch/?url=http://127.0.0.1:{dead_port}/obj/"
        if floor:
            # measured all the same, so that the store meets every round's maintenance alike
            # (the DELETE takes 3 objects), but arca's: the floor's round is nginx's
            listing = delete_one = float("nan")
            hits = f"http://127.0.0.1:{floor.port}/obj/"
        warm_pages(os.path.join(data_dir, "objects"))  # as big-index's rounds (warm_pages)
        alone = _hits(hits, cfg, count)

        def statistics_pages():
            end = time.monotonic() + max(cfg["index_seconds"], 3) - 1.5
            while time.monotonic() < end:
                _get_ms(f"{base}/statistics/")
                time.sleep(0.05)

        hogged = _beside_hog(hits, cfg, count)
        stats, _ = _beside(hits, cfg, count, statistics_pages)

        def purge():
            prefix = urllib.parse.quote(f"http://127.0.0.1:{dead_port}/old-purged/", safe="")
            ask = urllib.request.Request(f"{base}/api/v1/purge/?prefix={prefix}", method="POST",
                                         data=b"", headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(ask, timeout=60) as r:
                r.read()

        purged, purge_s = _beside(hits, cfg, count, purge)
        with urllib.request.urlopen(f"{base}/api/v1/status/") as r:
            usage = json.loads(r.read())["disk_usage"]

        quota = usage - extra * INDEX_OBJECT_BYTES  # the least recently used tenth over it

        def evict():  # until the usage reaches it: at the disk's pace, 13-16 s at a million
            with open(config, "a") as f:
                f.write(f"quota = {quota}\n")
            os.kill(a.pid, signal.SIGHUP)
            while True:
                with urllib.request.urlopen(f"{base}/api/v1/status/") as r:
                    if json.loads(r.read())["disk_usage"] <= quota:
                        return
                time.sleep(0.01)

        evicted, evict_s = _beside(hits, cfg, count, evict)
        figures = {"listing_ms": listing, "delete_one_ms": delete_one,
                   "p99_ms_at_rate": alone["p99_ms"], "p99_ms_hog": hogged["p99_ms"],
                   "p99_ms_stats": stats["p99_ms"], "p99_ms_purge": purged["p99_ms"],
                   "purge_s": purge_s, "p99_ms_evict": evicted["p99_ms"], "evict_s": evict_s,
                   "errors_at_rate": sum(r["errors"]
                                         for r in (alone, hogged, stats, purged, evicted))}
    finally:
        a.stop()
        # what the purge and the eviction left (the eviction stops at the quota, whichever
        # objects it took), out of the store before the next build's round
        left_purged = _forget(data_dir, dead_port, "/old-purged/")
        left_evicted = _forget(data_dir, dead_port, "/old-evicted/")
    return figures | {"left_purged": left_purged, "left_evicted": left_evicted}
