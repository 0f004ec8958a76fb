"""Soak: 200 concurrent clients for a while (ARCA_SOAK_SECONDS, default 120) mixing hits,
misses, ranges, aborted downloads and upstream faults, against one arca with a small quota so
eviction runs too. arca's RSS and open descriptors are read when it is idle after a warm-up and
again when it is idle after the soak; they must not grow. Run with scripts/soak."""

import http.client
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

from conftest import (arca, origin, read_to_end, sha256, start_arca,  # noqa: E402,F401
                      workdir)

CLIENTS = 200
SECONDS = float(os.environ.get("ARCA_SOAK_SECONDS", "120"))


def rss_and_fds(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss * 1024, len(os.listdir(f"/proc/{pid}/fd"))


def settle(arca):
    """Wait until arca has no client connection and no download left."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = arca.metrics()
        if m["arca_active_connections"] <= 1 and m["arca_active_downloads"] == 0:
            return
        time.sleep(0.2)


class Mix:
    def __init__(self, origin, arca):
        self.origin, self.arca = origin, arca
        self.hot = {}
        for i in range(20):
            data = os.urandom(random.randrange(1000, 400_000))
            self.hot[origin.add(f"/hot{i}", data=data, etag=f'"h{i}"')] = data
        self.serial = 0
        self.lock = threading.Lock()
        self.counts = {"ok": 0, "aborted": 0, "failed": 0, "bad": 0}

    def new_url(self, **kw):
        with self.lock:
            self.serial += 1
            n = self.serial
        data = os.urandom(random.randrange(1000, 300_000))
        return self.origin.add(f"/cold{n}", data=data, etag=f'"c{n}"', **kw), data

    def one(self, rng):
        kind = rng.choices(["hit", "miss", "range", "abort", "fault"], [50, 15, 10, 10, 15])[0]
        if kind == "hit":
            url = rng.choice(list(self.hot))
            return self.full(url, self.hot[url])
        if kind == "miss":
            return self.full(*self.new_url())
        if kind == "fault":
            faults = rng.choice([[503], [("reset", 5000)], [("cut", 20000)], [429, ("cut", 100)]])
            return self.full(*self.new_url(faults=list(faults)))
        url = rng.choice(list(self.hot))
        if kind == "range":
            data = self.hot[url]
            first = rng.randrange(0, len(data))
            status, _, body = self.arca.fetch(url, headers={"Range": f"bytes={first}-"})
            good = (status == 206 and body == data[first:]) or (status == 200 and body == data)
            return "ok" if good else "bad"
        conn, resp = self.arca.stream(url)
        resp.read(1000)
        conn.close()
        return "aborted"

    def full(self, url, data):
        conn, resp = self.arca.stream(url)
        body, complete = read_to_end(resp)
        conn.close()
        if resp.status != 200:
            return "failed"
        return "ok" if complete and sha256(body) == sha256(data) else "bad"

    def client(self, seed, until):
        rng = random.Random(seed)
        while time.monotonic() < until:
            try:
                outcome = self.one(rng)
            except (OSError, http.client.HTTPException):
                outcome = "failed"
            with self.lock:
                self.counts[outcome] += 1

    def run(self, seconds):
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=self.client, args=(i, until)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def test_soak(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "64M",
                      "--max-connections-per-ip", "400")
    mix = Mix(origin, arca)
    mix.run(min(15, SECONDS / 4))  # warm-up: hot objects cached, pools and caches grown
    settle(arca)
    rss0, fds0 = rss_and_fds(arca.proc.pid)
    before = dict(mix.counts)
    mix.run(SECONDS)
    settle(arca)
    rss1, fds1 = rss_and_fds(arca.proc.pid)
    done = {k: mix.counts[k] - before[k] for k in mix.counts}
    print(f"\nsoak: {CLIENTS} clients, {SECONDS:.0f} s: {done}; "
          f"RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB; fds {fds0} -> {fds1}; "
          f"origin GETs {sum(origin.counts.values())}")
    assert done["bad"] == 0, "every complete body is byte-correct"
    assert done["ok"] > 1000
    assert fds1 <= fds0 + 2, "descriptors do not leak"
    assert rss1 <= rss0 * 1.25 + (8 << 20), "memory does not grow"
