"""Filling from a slow origin: a cold object over several connections (fill), an object that
changes during its fill (fill-change), the uplink cap (uplink-cap), and small hits beside the
readers of a large object (small-beside-large)."""
import json
import os
import subprocess
import threading
import time
import urllib.request

from harness import (ARCA, ARCA_BEFORE, Arca, LOADGEN, Nginx, arcas, check_clients, fetch_all, file_sha256,
    in_turn, loadgen, percentiles, timed_gets, write_random)



def probe_start(url, seconds=600.0):
    """arca-loadgen's probe: 4 KiB hits one at a time, each on a new connection, 2 ms apart, until
    `seconds` pass or its stdin closes (probe_end)."""
    return subprocess.Popen([LOADGEN, "probe", url, "--gap-ms", "2", "--seconds", str(seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

def probe_end(p, stop=True):
    """The probe's samples, [start (monotonic s), ms, ms of it the probe waited for a core],
    once it is told to stop (`stop`) or has run its seconds; a hit that failed fails the
    round."""
    if not stop:
        p.wait(timeout=600)
    out, _ = p.communicate(input="", timeout=60)
    samples = json.loads(out)["samples"]
    bad = [x for x in samples if not x[2]]
    if bad or not samples:
        raise RuntimeError(f"probe: {len(bad)} of {len(samples)} hits failed")
    return [(x[0], x[1], x[3]) for x in samples]

def probe_beside(server, origin, c):
    """Probe hits while c["readers"] clients read the large object whole. Only the hits that
    started and ended while every reader was reading count (in a smoke run's short reads there
    may be none: then those that started before the last reader ended). Returns their ms, the
    readers' bytes and seconds from the first start to the last end."""
    probe = probe_start(server.url(origin, "/small"))
    try:
        out = subprocess.run([LOADGEN, "get", server.url(origin, "/large"), "--clients",
                              str(c["readers"]), "--threads", "2"], capture_output=True,
                             text=True, timeout=900, check=True)
    finally:
        samples = probe_end(probe)
    run = json.loads(out.stdout)
    readers, t0 = run["clients"], run["t0"]
    check_clients(server.name, readers, c["size"])
    first, last = t0 + min(r["start"] for r in readers), t0 + max(r["done"] for r in readers)
    all_in, all_out = t0 + max(r["start"] for r in readers), t0 + min(r["done"] for r in readers)
    beside = ([(ms, w) for t, ms, w in samples if t >= all_in and t + ms / 1e3 <= all_out] or
              [(ms, w) for t, ms, w in samples if t <= last])
    return beside, c["size"] * len(readers), last - first

def beside_round(server, origin, c):
    """A round: the probe alone, then beside the readers c["runs"] times (the readers' share of
    the workers differs from run to run), their hits pooled."""
    alone = probe_start(server.url(origin, "/small"), c["idle_seconds"])
    idle = [(ms, w) for _, ms, w in probe_end(alone, stop=False)]
    beside, size, secs = [], 0, 0.0
    for _ in range(c["runs"]):
        hits, b, t = probe_beside(server, origin, c)
        beside, size, secs = beside + hits, size + b, secs + t
    if not beside:
        raise RuntimeError(f"{server.name}: no probe hit while the readers read")
    (idle50, idle99), (b50, b99) = percentiles([ms for ms, _ in idle]), percentiles(
        [ms for ms, _ in beside])
    # the same less what the probe waited for a core (the readers' threads and the server
    # share this machine's two; a lab's client has its own); an unknown wait (-1) takes
    # nothing off
    (_, sidle99), (_, sb99) = (percentiles([ms - max(w, 0) for ms, w in x])
                               for x in (idle, beside))
    return {"beside_p50_ms": b50, "beside_p99_ms": b99, "idle_p50_ms": idle50,
            "idle_p99_ms": idle99, "extra_p50_ms": b50 - idle50, "extra_p99_ms": b99 - idle99,
            "server_extra_p99_ms": sb99 - sidle99,
            "probe_waited_ms": sum(max(w, 0) for _, w in beside) / len(beside),
            "readers_gb_per_s": size / secs / 1e9, "beside_hits": len(beside)}

def small_beside_large(work, cfg, www):
    """Issue 44, part 3: a 4 KiB hit on an idle arca, then beside fast readers of a finished
    object (default send mode, mapped): does it wait for their turns, and what do the readers
    keep?"""
    c = cfg["beside"]
    write_random(os.path.join(www, "large"), c["size"])
    write_random(os.path.join(www, "small"), 4096)
    origin = Nginx(work, "origin", www=www, log=False)
    # with one worker every hit shares the readers' worker; with the default (one per CPU) a
    # new connection goes to the worker with the fewest connections when it has at least two
    # fewer than the one that accepted it (until 2026-11-29: whichever asked epoll first).
    # nginx serving the same files (sendfile) with as many workers: what the two cores the
    # readers, the probe and the server share leave a hit beside them, whatever the server.
    peers = arcas(work) + [Arca(work, binary=b, name=n + "-1worker", extra=("--threads", "1"))
                           for b, n in [(ARCA, "arca")] + ([(ARCA_BEFORE, "arca-before")]
                                                            if ARCA_BEFORE else [])]
    peers += [Nginx(work, "nginx-static", www=www, log=False),
              Nginx(work, "nginx-static-1worker", www=www, log=False, workers=1)]
    try:
        for s in peers:
            for _ in range(2):  # the second a hit of the finished object
                fetch_all(s.url(origin, "/large"), c["size"])
            fetch_all(s.url(origin, "/small"), 4096)
        rounds = {s.name: [] for s in peers}
        for _ in range(cfg["rounds"]):
            for s in peers:
                rounds[s.name].append(beside_round(s, origin, c))
        return {"metric": "beside_p50_ms", "higher_is_better": False, "unit": "ms",
                "setup": f"4 KiB hits, each on a new connection, 2 ms apart: alone, then beside "
                         f"{c['readers']} clients reading {c['size'] >> 20} MiB cached",
                "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def direct_seconds(argv):
    """Seconds a direct download (curl, aria2c) takes, its output dropped."""
    t0 = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, timeout=900)
    return time.monotonic() - t0

def fill_scenario(work, cfg, www):
    """Issue 44: a cold 1 GiB object from an origin that limits each connection (a far origin's
    per-flow limit): the slowest of 10 clients joined at the start through arca, against one
    direct curl and aria2c -x4 direct."""
    c = cfg["fill"]
    size, n = c["size"], c["clients"]
    write_random(os.path.join(www, "big"), size)
    origin = Nginx(work, "origin", www=www, limit_rate=c["rate"])
    peers = arcas(work)
    rows = {"curl direct": [], "aria2c -x4 direct": []} | {s.name: [] for s in peers}
    out = os.path.join(work, "dl")
    try:
        for r in range(c.get("rounds", cfg["rounds"])):
            url = f"http://127.0.0.1:{origin.port}/big"
            curl_s = direct_seconds(["curl", "-sSf", "-o", "/dev/null", url])
            aria_s = direct_seconds(["aria2c", "-x4", "-s4", "-k1M", "--file-allocation=none",
                                     "--allow-overwrite=true", "--console-log-level=warn",
                                     "--summary-interval=0", "-d", out, "-o", "big", url])
            os.unlink(os.path.join(out, "big"))
            rows["curl direct"].append({"slowest_vs_aria2c": curl_s / aria_s,
                                        "seconds": curl_s, "origin_bytes_ratio": 1.0,
                                        "max_ttfb_ms": 0.0})
            rows["aria2c -x4 direct"].append({"slowest_vs_aria2c": 1.0, "seconds": aria_s,
                                              "origin_bytes_ratio": 1.0, "max_ttfb_ms": 0.0})
            for s in in_turn(peers, r):
                path = f"/big-{r}-{s.name}"
                os.symlink("big", os.path.join(www, path[1:]))
                clients = loadgen(s.url(origin, path), n)
                check_clients(s.name, clients, size)
                time.sleep(0.2)  # the origin's log lines land
                slowest = max(cl["done"] - cl["start"] for cl in clients)
                rows[s.name].append({
                    "slowest_vs_aria2c": slowest / aria_s, "seconds": slowest,
                    "origin_bytes_ratio": origin.origin_bytes(path) / size,
                    "max_ttfb_ms": max(1e3 * (cl["ttfb"] - cl["start"]) for cl in clients)})
        return {"metric": "slowest_vs_aria2c", "higher_is_better": False, "unit": "× aria2c",
                "setup": f"{size >> 20} MiB at {c['rate']}B/s per origin connection (nginx "
                         f"limit_rate); {n} clients through arca at once, against one curl and "
                         "aria2c -x4 -s4 direct", "rounds": rows}
    finally:
        for s in reversed(peers + [origin]):
            s.stop()

def fill_change(work, cfg, www):
    """Issue 44: the file replaced (renamed over) while arca fills it over ranges, and the origin
    restarted (every connection cut): the ranges asked again with If-Range meet the new version.
    Every client gets one version whole or a cut answer, never a mix; arca keeps the new one."""
    c = cfg["fill"]
    size, n = c["change_size"], c["clients"]
    peers = [s for s in arcas(work)]
    rows = {s.name: [] for s in peers}
    try:
        for r in range(c.get("rounds", cfg["rounds"])):
            for s in peers:
                name = f"obj-{r}-{s.name}"
                write_random(os.path.join(www, name), size)
                old = file_sha256(os.path.join(www, name))
                write_random(os.path.join(www, name + ".new"), size)
                new = file_sha256(os.path.join(www, name + ".new"))
                # published seconds apart, as builds are: nginx's ETag (mtime and size) differs,
                # and neither was modified within the second of an answer (no fill then)
                now = time.time()
                os.utime(os.path.join(www, name), (now - 20, now - 20))
                os.utime(os.path.join(www, name + ".new"), (now - 10, now - 10))
                origin = Nginx(work, f"origin-{name}", www=www, limit_rate=c["rate"])
                url = s.url(origin, "/" + name)
                got = []
                t = threading.Thread(target=lambda: got.extend(
                    timed_gets([url] * n, [None] * n, n, keep_sha=True)))
                t.start()
                time.sleep(c["change_at"])
                os.rename(os.path.join(www, name + ".new"), os.path.join(www, name))
                origin.restart()
                t.join(600)
                kept = timed_gets([url], [None], 1, keep_sha=True)[0]
                rows[s.name].append({
                    "mixed_answers": sum(1 for g in got if g[1] == 200 and g[3] and
                                         g[2] not in (old, new)),
                    "whole_old": sum(1 for g in got if g[3] and g[2] == old),
                    "whole_new": sum(1 for g in got if g[3] and g[2] == new),
                    "cut": sum(1 for g in got if not g[3]),
                    "kept_is_new": 1.0 if kept[2] == new else 0.0,
                    "origin_bytes_ratio": origin.origin_bytes() / size})
                origin.stop()
        return {"metric": "mixed_answers", "higher_is_better": False, "unit": "answers",
                "setup": f"{size >> 20} MiB at {c['rate']}B/s per connection; the file renamed "
                         f"over and nginx restarted {c['change_at']} s into the fill; {n} "
                         "clients", "rounds": rows}
    finally:
        for s in reversed(peers):
            s.stop()

def hit_gbps(url, size, seconds):
    """One client reading a cached object again and again for `seconds`: GB/s."""
    done, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        with urllib.request.urlopen(url, timeout=60) as r:
            while chunk := r.read(1 << 20):
                done += len(chunk)
    return done / (time.monotonic() - t0) / 1e9

def uplink_cap(work, cfg, www):
    """Issue 44: --upstream-rate C with three cold downloads running (each filled over pieces):
    the upstream rate over the window against C, and a hit beside them against the same hit on
    an idle arca. With ARCA_BEFORE, the older build's rounds too, the two taking turns."""
    c = cfg["fill"]
    cap = parse_rate(c["cap"])
    builds = arcas(work, extra=("--upstream-rate", c["cap"]))
    rounds = c.get("rounds", cfg["rounds"])
    for i in range(3):
        write_random(os.path.join(www, f"cold{i}"), c["cap_size"])
        for r in range(rounds):  # a new name per round and build: cold each time
            for s in builds:
                os.symlink(f"cold{i}", os.path.join(www, f"cold{i}-{r}-{s.name}"))
    write_random(os.path.join(www, "hot"), c["hit_size"])
    for name in ("cold0", "cold1", "cold2", "hot"):  # not modified within an answer's second
        os.utime(os.path.join(www, name), (time.time() - 10, time.time() - 10))
    origin = Nginx(work, "origin", www=www, log=False)
    rows = {s.name: [] for s in builds}
    try:
        for r in range(rounds):
            for s in in_turn(builds, r):
                rows[s.name].append(uplink_cap_round(s, origin, c, cap, r))
        return {"metric": "rate_vs_cap", "higher_is_better": True, "unit": "× cap",
                "setup": f"--upstream-rate {c['cap']}, 3 cold downloads of "
                         f"{c['cap_size'] >> 20} MiB (each filled over pieces); the rate over "
                         f"{c['cap_seconds']} s, and a hit of {c['hit_size'] >> 20} MiB beside",
                "rounds": rows}
    finally:
        for s in reversed(builds):
            s.stop()
        origin.stop()

def uplink_cap_round(arca, origin, c, cap, r):
    """One build's round of uplink-cap: its hit alone, then beside its three cold downloads."""
    hot = arca.url(origin, "/hot")
    fetch_all(hot, c["hit_size"])
    idle = hit_gbps(hot, c["hit_size"], 2)
    urls = [arca.url(origin, f"/cold{i}-{r}-{arca.name}") for i in range(3)]
    threads = [threading.Thread(target=fetch_all, args=(u, c["cap_size"])) for u in urls]
    for t in threads:
        t.start()
    time.sleep(1)
    before, t0 = arca.metric("arca_downloaded_bytes_total"), time.monotonic()
    busy = hit_gbps(hot, c["hit_size"], c["cap_seconds"])
    rate = (arca.metric("arca_downloaded_bytes_total") - before) / (time.monotonic() - t0)
    for t in threads:
        t.join(900)
    return {"rate_vs_cap": rate / cap, "hit_vs_idle": busy / idle, "hit_gbps": busy,
            "idle_hit_gbps": idle}

def parse_rate(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].lower() in units else int(text)
