"""arca against its peers (nginx, Varnish, Squid) and its own variants: warm hits of large and
small objects (a rate, a log, the floor of a bare epoll server, a thousand rules), cold fan-out
(with digests too), idle connections and a big index at start."""
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import time
import urllib.error
import urllib.request

from maintenance import maintenance_round
from harness import (ARCA, ARCA_BEFORE, INDEX_OBJECT_BYTES, Arca, FLOOR, Nginx, Server, Squid,
    Varnish, anon_kib, arcas, check_clients, children_cpu, in_turn, fetch_all, file_sha256,
    free_port, has_option, hold_idle, idle_rounds, loadgen, loadgen_cpu, memory_floor_s,
    parse_wrk, rate_run, rss_kib, pageout_paused, settled, wait_http, warm_pages, write_random,
    wrk_rounds)



def warm_large(work, cfg, www):
    size = cfg["large"]
    write_random(os.path.join(www, "large"), size)
    origin = Nginx(work, "nginx-sendfile", www=www, log=False)
    # arca-mmap: the other --send-mode (the default, auto, sends a plain client the file by
    # sendfile), measured so the default is chosen by figures
    peers = [origin, Nginx(work, "nginx-proxy-cache", origin=origin, log=False),
             Varnish(work, origin, "4G"), Squid(work, origin), *arcas(work),
             Arca(work, name="arca-mmap", extra=("--send-mode", "mmap"))]
    try:
        for s in peers:
            fetch_all(s.url(origin, "/large"), size)
        rounds = {s.name: [] for s in peers}
        for _ in range(cfg["rounds"]):
            for s in peers:
                before = children_cpu()
                clients, cpu = loadgen_cpu(s.pid, s.url(origin, "/large"), cfg["large_clients"])
                client_cpu = children_cpu() - before
                check_clients(s.name, clients, size)
                secs = max(c["done"] for c in clients) - min(c["start"] for c in clients)
                total = size * len(clients)
                # the client's CPU too: on loopback part of the receiving is charged to whoever
                # sends, and sendfile leaves the client a copy out of cold page cache, so a
                # server's figure alone can move cost rather than save it
                rounds[s.name].append({"gb_per_s": total / secs / 1e9, "seconds": secs,
                                       "server_cpu_ns_per_byte": cpu * 1e9 / total,
                                       "client_cpu_ns_per_byte": client_cpu * 1e9 / total})
        return {"metric": "gb_per_s", "higher_is_better": True, "unit": "GB/s",
                "setup": f"{size >> 20} MiB cached, {cfg['large_clients']} concurrent clients",
                "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def small_object_peers(work, www):
    """nginx serving a 4 KiB file, and every contender with it cached: (origin, peers)."""
    write_random(os.path.join(www, "small"), 4096)
    origin = Nginx(work, "nginx-static", www=www, log=False)
    peers = [origin, Nginx(work, "nginx-proxy-cache", origin=origin, log=False),
             Varnish(work, origin, "1G"), Squid(work, origin), *arcas(work)]
    try:
        for s in peers:
            fetch_all(s.url(origin, "/small"), 4096)
    except BaseException:
        for s in reversed(peers):
            s.stop()
        raise
    return origin, peers

def warm_small(work, cfg, www):
    origin, peers = small_object_peers(work, www)
    try:
        rounds = wrk_rounds(peers, origin, cfg)
        return {"metric": "req_per_s", "higher_is_better": True, "unit": "req/s",
                "setup": "4 KiB cached, wrk -t2 -c64 (keep-alive), "
                         f"{cfg['small_seconds']} s per round", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

class Floor(Server):
    """arca-floor (bench/floor.c): answers every request head with the same 4 KiB, nothing else;
    mode "epoll" (arca's system calls per request) or "uring" (batched submission)."""

    def __init__(self, work, mode):
        super().__init__(work)
        self.name = f"floor-{mode}"
        self.spawn([FLOOR, str(self.port), mode], open(os.path.join(work, self.name + ".log"), "a"))
        wait_http(f"http://127.0.0.1:{self.port}/small", proc=self.proc)

def floor_modes():
    """The modes this build of arca-floor has: uring needs liburing-dev at build time."""
    modes = subprocess.run([FLOOR, "--modes"], capture_output=True, text=True,
                           check=True).stdout.split()
    if "uring" not in modes:
        print("warm-small-floor: arca-floor was built without liburing-dev; floor-uring left out",
              flush=True)
    return modes

def warm_small_floor(work, cfg, www):
    """warm-small's nginx and arca beside servers that only answer (arca-floor): how far a
    server could go on this machine with wrk on the same cores, and how close arca is."""
    write_random(os.path.join(www, "small"), 4096)
    origin = Nginx(work, "nginx-static", www=www, log=False)
    peers = [origin]
    try:
        peers.append(Arca(work))
        fetch_all(peers[-1].url(origin, "/small"), 4096)
        for mode in floor_modes():
            peers.append(Floor(work, mode))
        rounds = wrk_rounds(peers, origin, cfg)
        return {"metric": "req_per_s", "higher_is_better": True, "unit": "req/s",
                "setup": "4 KiB, wrk -t2 -c64 (keep-alive), "
                         f"{cfg['small_seconds']} s per round; floor-*: a fixed answer to every "
                         "request head, no parsing, no lookup", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def builds_beside_variants(work, cfg, www, variant, answer, nginx_log=True):
    """Warm small hits (as warm-small) on arca and, with ARCA_BEFORE, the older build, each
    beside a variant of itself (variant(name, binary): that Arca, or None when the build has
    none), all in one run (rounds interleaved). `answer`: the result without its rounds."""
    write_random(os.path.join(www, "small"), 4096)
    origin = Nginx(work, "nginx-static", www=www, log=nginx_log)
    builds = [("arca", ARCA)] + ([("arca-before", ARCA_BEFORE)] if ARCA_BEFORE else [])
    peers = [origin]
    try:
        for name, binary in builds:
            peers.append(Arca(work, binary=binary, name=name))
            other = variant(name, binary, origin)
            if other:
                peers.append(other)
        for s in peers[1:]:
            fetch_all(s.url(origin, "/small"), 4096)
        return {**answer, "rounds": wrk_rounds(peers[1:], origin, cfg)}
    finally:
        for s in reversed(peers):
            s.stop()

def warm_small_log(work, cfg, www):
    """What the access log costs: warm small hits with the log off and to a file."""
    return builds_beside_variants(
        work, cfg, www,
        lambda name, binary, origin: Arca(work, binary=binary, name=name + "-log",
                                          access_log=os.path.join(work, name + "-access.log")),
        {"metric": "req_per_s", "higher_is_better": True, "unit": "req/s",
         "setup": "4 KiB cached, wrk -t2 -c64 (keep-alive), "
                  f"{cfg['small_seconds']} s per round; NAME-log writes --access-log "
                  "to a file, NAME has it off"})

def rules_file(work, n, origin_port):
    """An INI file of `n` [rule NAME] sections, as a lab with many prefixes writes them: most on
    hosts of their own, a tenth on the origin's host (the hit's URL falls under the longest of
    those), a tenth behind host globs, a tenth naming who may fetch (so every hit is also asked
    under its folded spelling: rules/fold.c)."""
    path = os.path.join(work, f"rules-{n}.ini")
    with open(path, "w") as f:
        for i in range(n):
            if i % 10 == 0:
                match = f"http://127.0.0.1:{origin_port}/" + "/".join(["d"] * (i // 100)) + f"x{i}/"
            elif i % 10 == 1:
                match = f"https://*.bucket{i}.example.org/"
            else:
                match = f"https://host{i}.example.org/releases/{i}/"
            nets = "allow-network = 10.0.0.0/8\n" if i % 10 == 2 else ""
            f.write(f"[rule r{i}]\nmatch = {match}\nttl = {1 + i % 30}d\n{nets}\n")
        f.write(f"[rule small]\nmatch = http://127.0.0.1:{origin_port}/sm\nttl = 2d\n")
    return path

def warm_small_rules(work, cfg, www):
    """What rules cost a hit: warm small hits with none and with 1,000 [rule NAME] sections
    (the hit's URL under one of them). The issue's bound: at most 3 % more CPU a request."""
    def with_rules(name, binary, origin):
        if not has_option(binary, "rules test"):
            return None
        return Arca(work, binary=binary, name=name + "-1000-rules",
                    extra=["--config", rules_file(work, 1000, origin.port)])
    return builds_beside_variants(
        work, cfg, www, with_rules,
        {"metric": "server_cpu_us_per_req", "higher_is_better": False, "unit": "us",
         "setup": "4 KiB cached, wrk -t2 -c64 (keep-alive), "
                  f"{cfg['small_seconds']} s per round; NAME-1000-rules runs with 1,000 "
                  "[rule NAME] sections, the hit's URL under one"},
        nginx_log=False)

def warm_small_rate(work, cfg, www):
    """wrk keeps 64 requests in flight whatever the server does (closed loop): a faster server is
    measured at a higher load, and its p99 is mostly queueing. Here every contender gets the same
    offered load, open loop, and the tail is the server's own."""
    origin, peers = small_object_peers(work, www)
    rate, seconds = cfg["small_rate"], cfg["small_seconds"]
    try:
        rounds = {s.name: [] for s in peers}
        for _ in range(cfg["rounds"]):
            for s in peers:
                r = rate_run(s.url(origin, "/small"), rate, seconds)
                if r["errors"]:
                    raise RuntimeError(f"{s.name}: {r['errors']} of {r['due']} requests failed")
                rounds[s.name].append({k: r[k] for k in ("p99_ms", "p50_ms", "p999_ms",
                                                          "max_ms", "rate")})
        return {"metric": "p99_ms", "higher_is_better": False, "unit": "ms",
                "setup": f"4 KiB cached, {rate} req/s offered open loop over 64 keep-alive "
                         f"connections, {seconds} s per round", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def cold_fanout(work, cfg, www):
    size = cfg["cold"]
    write_random(os.path.join(www, "cold"), size)
    origin = Nginx(work, "origin", www=www, limit_rate=cfg["cold_rate"])
    others = [Nginx(work, "nginx-proxy-cache", origin=origin, log=False),
              Varnish(work, origin, "8G"), Squid(work, origin)]
    builds = arcas(work)
    peers = others + builds
    n, spread = cfg["cold_clients"], cfg["cold_spread"]
    try:
        rounds = {"direct": []} | {s.name: [] for s in peers}
        for r in range(cfg["rounds"]):
            # a new name per round and contender keeps every run cold
            path = f"/cold-{r}-direct"
            os.symlink("cold", os.path.join(www, path[1:]))
            direct, cpu = loadgen_cpu(origin.pid, f"http://127.0.0.1:{origin.port}{path}", 1)
            check_clients("direct", direct, size)
            direct_s = direct[0]["done"] - direct[0]["start"]
            # direct's server CPU is the origin's, sending the one download
            rounds["direct"].append({"seconds": direct_s, "slowest_vs_direct": 1.0,
                                     "origin_bytes_ratio": 1.0,
                                     "max_ttfb_ms": 1e3 * (direct[0]["ttfb"] - direct[0]["start"]),
                                     "server_cpu_s": cpu})
            for s in others + in_turn(builds, r):
                path = f"/cold-{r}-{s.name}"
                os.symlink("cold", os.path.join(www, path[1:]))
                clients, cpu = loadgen_cpu(s.pid, s.url(origin, path), n, spread)
                check_clients(s.name, clients, size)
                time.sleep(0.2)  # let the origin's log line land
                durations = [c["done"] - c["start"] for c in clients]
                ttfbs = [1e3 * (c["ttfb"] - c["start"]) for c in clients]
                rounds[s.name].append({
                    "origin_bytes_ratio": origin.origin_bytes(path) / size,
                    "slowest_vs_direct": max(durations) / direct_s,
                    "median_vs_direct": statistics.median(durations) / direct_s,
                    "max_ttfb_ms": max(ttfbs), "median_ttfb_ms": statistics.median(ttfbs),
                    "server_cpu_s": cpu, "seconds": max(c["done"] for c in clients)})
        return {"metric": "slowest_vs_direct", "higher_is_better": False, "unit": "× direct",
                "setup": f"{size >> 20} MiB at {cfg['cold_rate']}B/s per origin connection, "
                         f"{n} clients over {spread} s", "rounds": rounds}
    finally:
        for s in reversed(peers + [origin]):
            s.stop()

def idle_connections(work, cfg, www):
    write_random(os.path.join(www, "small"), 4096)
    origin = Nginx(work, "nginx-static", www=www, log=False)
    peers = [origin, Varnish(work, origin, "1G"), Squid(work, origin), *arcas(work)]
    n = cfg["idle"]
    try:
        for s in peers:
            fetch_all(s.url(origin, "/small"), 4096)
        rounds = idle_rounds(peers, cfg, n, "idle-connections",
                             lambda s: hold_idle(s, s.url(origin, "/small"), n))
        return {"metric": "kib_per_connection", "higher_is_better": False, "unit": "KiB",
                "setup": f"{n} idle keep-alive connections after one 4 KiB hit each",
                "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def make_index(data_dir, count, origin_port, path="/obj/", www=None, used_days_ago=None):
    """A data dir holding `count` complete 4 KiB objects (issue 70's hits), written the way arca
    writes them:
    arca creates the schema, the rows and files are filled in here. Like a cache that has run
    for a while: downloaded over 9 days, last used at random since, used 1 to 50 times, a few
    content types. (Rows all used at the same second would come back already in LRU order.)
    `www`: each file also hard-linked as www/obj/N, the same inode for nginx-static to serve.
    `used_days_ago`: every row last used that many days ago (older than any random one)."""
    a = Arca(os.path.dirname(data_dir), data_dir)
    a.stop()
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"))
    now, rng = int(time.time()), random.Random(count)
    types = ["application/octet-stream", "application/gzip", "application/x-xz",
             "application/x-tar"]
    if www:
        os.makedirs(os.path.join(www, "obj"))
    rows = []
    for i in range(count):
        url = f"http://127.0.0.1:{origin_port}{path}{i}"
        key = hashlib.sha256(url.encode()).hexdigest()
        # each path's own (one body under two paths would be twins: one file)
        body = f"{path}{i:064d}".ljust(INDEX_OBJECT_BYTES, ".").encode()
        os.makedirs(os.path.join(data_dir, "objects", key[:2]), exist_ok=True)  # arca's layout
        file = os.path.join(data_dir, "objects", key[:2], key)
        with open(file, "wb") as f:
            f.write(body)
        if www:
            os.link(file, os.path.join(www, "obj", str(i)))
        created = now - rng.randrange(9 * 86400)
        last_use = (rng.randrange(created, now + 1) if used_days_ago is None
                    else now - used_days_ago * 86400)
        rows.append((key, url, "complete", len(body), rng.choice(types),
                     hashlib.sha256(body).digest(), created, 10 * 86400,
                     last_use, rng.randrange(1, 51)))
        if len(rows) == 10000 or i == count - 1:
            db.executemany("INSERT INTO objects (key, url, state, length, content_type, sha256,"
                           " created, ttl, last_use, usage) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            rows = []
    db.commit()
    db.close()

def first_hit(a, url, timeout=60):
    """arca started on its index: seconds from exec to the first hit answered (a connection
    refused while it loads is tried again at once), and the answers other than 200 before it
    (a 5xx, or a miss: the origin port is closed)."""
    t0, errors = time.monotonic(), 0
    a.spawn(a.argv, a.log)
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                r.read()
                return time.monotonic() - t0, errors
        except urllib.error.HTTPError as e:
            errors += 1
            e.read()
        except (urllib.error.URLError, ConnectionError):
            if a.proc.poll() is not None:
                raise RuntimeError(f"{a.name} exited {a.proc.returncode} while starting")
        time.sleep(0.001)
    raise RuntimeError(f"{a.name}: no hit within {timeout} s of its start")

def hits_under_wrk(port, cfg, script):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{cfg['index_seconds']}s", "--latency", "-s",
                          script, f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)

def loaded(a, t0, timeout=60):
    """Seconds from t0 until the status says the index's rows are all in memory (a build
    without index_loading loaded them before it listened)."""
    while time.monotonic() - t0 < timeout:
        with urllib.request.urlopen(f"http://127.0.0.1:{a.port}/api/v1/status/") as r:
            if not json.loads(r.read()).get("index_loading"):
                return time.monotonic() - t0
        time.sleep(0.005)
    raise RuntimeError(f"{a.name}: index not loaded within {timeout} s")

def index_round(a, cfg, script, count, files):
    """Restart arca on its big index as a lab does (it ran on it, stopped, starts again): the
    first hit's time, the time until every row is loaded, the RSS then, the time until the
    start's work is done, then random hits, the objects' pages (`files`: the same inodes) read
    into memory first (warm_pages)."""
    # the index as this build's own clean stop leaves it, once its start's work is done, as a
    # lab's cache has run a while (stopped before a clean close's deferred check ends, it leaves
    # the check owed, and the next start checks the file before it serves)
    t0 = time.monotonic()
    a.start()
    settled(a, t0)
    a.stop()
    hit_url = f"http://127.0.0.1:{a.port}/api/v1/fetch/?url=http://127.0.0.1:{a.dead_port}/obj/0"
    t0 = time.monotonic()
    startup, early_errors = first_hit(a, hit_url)
    all_loaded = loaded(a, t0)
    rss, anon = rss_kib(a.pid), anon_kib(a.pid)
    settled_s = settled(a, t0)

    def requests():
        return sum(a.metric(f"arca_requests_total{{result=\"{k}\"}}")
                   for k in ("hit", "miss", "coalesced", "error"))

    warm_pages(files)
    hits0, req0 = a.metric("arca_requests_total{result=\"hit\"}"), requests()
    rps, p99, _ = hits_under_wrk(a.port, cfg, script)
    hits = a.metric("arca_requests_total{result=\"hit\"}") - hits0
    ratio = hits / max(requests() - req0, 1)  # of wrk's requests, before the rate run adds more
    # the same random hits at a fixed offered rate: the tail without wrk's queueing
    at_rate = rate_run(f"http://127.0.0.1:{a.port}/api/v1/fetch/?url=http://127.0.0.1:"
                       f"{a.dead_port}/obj/", cfg["index_rate"], cfg["index_seconds"], count)
    return {"first_hit_s": startup, "loaded_s": all_loaded, "errors_before_it": early_errors,
            "settled_s": settled_s, "hit_ratio": ratio, "req_per_s": rps, "p99_ms": p99, "rss_kib": rss,
            "anon_kib": anon, "p99_ms_at_rate": at_rate["p99_ms"], "errors_at_rate": at_rate["errors"]}

def static_round(n, cfg, script, count, files):
    """nginx-static on the same files (hard links, the same inodes): the floor of a hit."""
    warm_pages(files)
    rps, p99, _ = hits_under_wrk(n.port, cfg, script)
    at_rate = rate_run(f"http://127.0.0.1:{n.port}/obj/", cfg["index_rate"],
                       cfg["index_seconds"], count)
    nan = float("nan")  # what a server with no index of its own has no figure for
    return {"first_hit_s": nan, "loaded_s": nan, "errors_before_it": nan, "settled_s": nan,
            "hit_ratio": nan,
            "req_per_s": rps,
            "p99_ms": p99, "rss_kib": rss_kib(n.pid), "p99_ms_at_rate": at_rate["p99_ms"],
            "errors_at_rate": at_rate["errors"]}

def random_hits_script(path, prefix, count):
    """wrk's Lua: uniform random hits. Each wrk thread has its own Lua state: seeded alike (the
    same second), both threads asked for the same objects a moment apart, half the hits finding
    the object just used (arca's shared answers, the kernel's caches warm)."""
    with open(path, "w") as f:
        f.write(f"""local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + id)
end
request = function()
  return wrk.format(nil, "{prefix}" .. math.random(0, {count - 1}))
end
""")
    return path

def size_tag(count):
    return f"{count // 1000}k" if count >= 1000 else str(count)

def index_figures(rounds, sizes):
    """What issue 70 bounds, from the medians: hits and p99 at the largest store against the
    smallest (the same build), hits against nginx-static on the same files, the resident
    bytes per object beyond the smallest store, and the load at the largest store beside this
    machine's floor for its fresh memory (seconds, not ratios)."""
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in rounds.items()}
    small, large = sizes[0], sizes[-1]
    tag = size_tag
    out = {}
    for build in ("arca", "arca-before"):
        lo, hi = med.get(f"{build}-{tag(small)}"), med.get(f"{build}-{tag(large)}")
        if not lo or not hi or large == small:
            continue
        out[f"{build} hits {tag(large)}/{tag(small)}"] = hi["req_per_s"] / lo["req_per_s"]
        out[f"{build} p99 {tag(large)}/{tag(small)}"] = hi["p99_ms"] / lo["p99_ms"]
        out[f"{build} bytes/object beyond {tag(small)}"] = \
            (hi["rss_kib"] - lo["rss_kib"]) * 1024 / (large - small)
        # item 3: the load at the largest store, and the least its fresh memory alone costs
        # on this machine (two threads given as much, arca stopped: arca-floor --memory)
        out[f"{build}-{tag(large)} loaded s"] = hi["loaded_s"]
        out[f"{build}-{tag(large)} memory floor s"] = hi["memory_floor_s"]
        static = med.get(f"nginx-static-{tag(large)}")
        if static:
            out[f"{build} hits {tag(large)}/nginx-static"] = hi["req_per_s"] / static["req_per_s"]
    floor = med.get(f"nginx-static-{tag(large)}-maintenance", {})
    for build in ("arca", "arca-before", "nginx-static"):
        maint = med.get(f"{build}-{tag(large)}-maintenance")
        if not maint:
            continue
        # item 4: hits beside maintenance at the largest store, against its p99 alone, and
        # against the smallest store's p99 at the same rate (the issue's p99 bound)
        small_p99 = med.get(f"{build}-{tag(small)}", {}).get("p99_ms_at_rate", float("nan"))
        if build != "nginx-static":  # the floor's rounds have no listing nor DELETE of its own
            out[f"{build}-{tag(large)} listing first page ms"] = maint["listing_ms"]
            out[f"{build}-{tag(large)} DELETE of one URL ms"] = maint["delete_one_ms"]
        for what in ("hog", "stats", "purge", "evict"):
            if f"p99_ms_{what}" not in maint:
                continue  # a summary of rounds run before the figure was
            out[f"{build}-{tag(large)} p99 at rate beside {what}/alone"] = \
                maint[f"p99_ms_{what}"] / maint["p99_ms_at_rate"]
            out[f"{build}-{tag(large)} p99 at rate beside {what}/{tag(small)}'s"] = \
                maint[f"p99_ms_{what}"] / small_p99
            if build == "arca" and f"p99_ms_{what}" in floor:
                # arca's own share: its hits' p99 over nginx-static's beside the same action,
                # which this build did (big_index_rounds)
                out[f"{build}-{tag(large)} p99 at rate beside {what}/the floor's"] = \
                    maint[f"p99_ms_{what}"] / floor[f"p99_ms_{what}"]
    return out

def big_index(work, cfg, www):
    # a million files' pages kept in memory for the run, as a lab's server keeps them (harness);
    # a smoke run's few thousand are hit every second, which the pageout leaves alone
    with pageout_paused(max(cfg["index"]) >= 100_000) as paused:
        out = big_index_rounds(work, cfg)
    if paused:
        out["setup"] += f"; this machine's DAMON pageout ({paused} kdamond) paused for the run"
    return out

def big_index_rounds(work, cfg):
    dead_port = free_port()  # no origin: anything but a hit fails
    rounds, sizes = {}, sorted(cfg["index"])
    for count in sizes:
        tag = size_tag(count)
        data_dir, files = os.path.join(work, f"arca-{tag}"), os.path.join(work, f"www-{tag}")
        t0 = time.monotonic()
        make_index(data_dir, count, dead_port, www=files)
        os.sync()  # its files' writeback before, not during, the rounds (a million inodes)
        print(f"  big-index: {count} objects made in {time.monotonic() - t0:.0f} s", flush=True)
        script = random_hits_script(os.path.join(work, f"{tag}.lua"),
                                    f"/api/v1/fetch/?url=http://127.0.0.1:{dead_port}/obj/", count)
        static_script = random_hits_script(os.path.join(work, f"{tag}-static.lua"), "/obj/", count)
        # both binaries on the same data dir, one at a time (it is locked); each round starts them
        contenders = [Arca(work, data_dir, name=f"arca-{tag}", start=False)]
        if ARCA_BEFORE:
            contenders.append(Arca(work, data_dir, binary=ARCA_BEFORE,
                                   name=f"arca-before-{tag}", start=False))
        static = Nginx(work, f"nginx-static-{tag}", www=files, log=False)
        for a in contenders:
            rounds[a.name] = []
            a.dead_port = dead_port
        rounds[static.name] = []
        try:
            for r in range(cfg["index_rounds"]):
                # nginx-static first every other round: whoever goes second meets the inodes
                # and pages the first one's hits brought back into memory
                for c in in_turn(contenders + [static], r):
                    if c is static:
                        rounds[c.name].append(static_round(c, cfg, static_script, count, files))
                        continue
                    rounds[c.name].append(index_round(c, cfg, script, count, files))
                    c.stop()
                    # the least its load's fresh memory costs here, arca stopped (item 3)
                    rounds[c.name][-1]["memory_floor_s"] = \
                        memory_floor_s(rounds[c.name][-1]["anon_kib"])
            if count == sizes[-1]:  # last: each build purges and evicts (issue 70's item 4)
                # and arca's build purges and evicts while nginx-static takes the hits: the
                # machine's floor beside that maintenance (maintenance.py)
                for r in range(cfg["maintenance_rounds"]):
                    for a in in_turn(contenders + [static], r):
                        floor = static if a is static else None
                        builder = contenders[0] if floor else a
                        name = f"{a.name}-maintenance"
                        rounds.setdefault(name, []).append(maintenance_round(
                            work, cfg, data_dir, dead_port, count, name, make_index,
                            builder.argv[0], floor=floor))
        finally:
            for a in contenders:
                a.stop()
            static.stop()
        shutil.rmtree(data_dir)
        shutil.rmtree(files)
    # one table: each contender's row has every figure, nan where it has none
    fields = dict.fromkeys(k for rs in rounds.values() for r in rs for k in r)
    for rs in rounds.values():
        for r in rs:
            for k in fields:
                r.setdefault(k, float("nan"))
    return {"metric": "first_hit_s", "higher_is_better": False, "unit": "s",
            "setup": f"arca restarted on stores of {', '.join(str(c) for c in sizes)} small "
                     "objects (exec to the first hit; settled_s: until its start's work is "
                     "done and it idles), then uniform random hits under wrk -t2 -c64, then at "
                     f"{cfg['index_rate']} req/s offered (open loop); nginx-static on the same "
                     "files (hard links) as the floor; then, each build on the largest "
                     "store (-maintenance): the resources listing's first page, the DELETE of one "
                     "URL, and the p99 at "
                     "that rate alone and beside the statistics page, a purge by prefix of a "
                     "tenth more objects and the eviction of another tenth (quota lowered by "
                     "SIGHUP), never the hits' objects; nginx-static-N-maintenance: the same "
                     "rounds with arca's maintenance and nginx-static's hits (the machine's "
                     "floor beside each action)",
            "rounds": rounds, "ratios": index_figures(rounds, sizes)}

def cold_fanout_ref(work, cfg, www):
    return cold_fanout(work, cfg | cfg["cold_ref"], www)

def unique_copy(www, name, r):
    """A copy of `cold` with its first bytes made unique; returns its &sha256= query. A digest
    an object in the cache already has would be a digest hit (another URL's file, no download):
    until 2026-11-23 the -sha256 rounds after a plain one measured that, not a cold fan-out."""
    path = os.path.join(www, name)
    shutil.copyfile(os.path.join(www, "cold"), path)
    with open(path, "r+b") as f:
        f.write(f"{name}-{r}-{time.time_ns()}".encode().ljust(64, b"."))
    return "&sha256=" + file_sha256(path)

def cold_fanout_digest(work, cfg, www):
    """What a digest still to check costs a cold fan-out: every client asks with &sha256=.
    arca-sha256 streams it chunked (its last byte waits for the check), arca-hold-sha256
    (--digest-framing hold) answers once the object is complete and checked. arca without sha256
    is the reference; arca-before (ARCA_BEFORE) runs the same two, in the same order. Each
    round of each contender has content of its own (unique_copy), so a -sha256 digest is a miss
    and every contender's origin reads a file as new."""
    size = cfg["cold"]
    write_random(os.path.join(www, "cold"), size)
    digest = "&sha256="  # each -sha256 round's own, below
    origin = Nginx(work, "origin", www=www, limit_rate=cfg["cold_rate"])
    servers = arcas(work) + [Arca(work, name="arca-hold", extra=("--digest-framing", "hold"))]
    contenders = [("arca", servers[0], ""), ("arca-sha256", servers[0], digest),
                  ("arca-hold-sha256", servers[-1], digest)]
    before = []
    if ARCA_BEFORE:
        # The same order as arca's: a plain fan-out first, whose 1 GiB then syncs while the
        # digest clients run; without it arca-before-sha256 met an idle disk and arca-sha256 not.
        before = [("arca-before", servers[1], ""), ("arca-before-sha256", servers[1], digest)]
    n, spread = cfg["cold_clients"], cfg["cold_spread"]
    try:
        rounds = {name: [] for name, _, _ in contenders + before}
        for r in range(cfg["rounds"]):
            # The builds take turns going first: whoever follows another's 1 GiB meets its
            # writeback. In a fixed order arca's plain clients looked 1.15x slower than the old
            # build's (5 rounds) with the same code path; alternated they were even (4 rounds).
            order = contenders + before if r % 2 == 0 else before + contenders
            path = f"/cold-{r}-direct"
            os.symlink("cold", os.path.join(www, path[1:]))
            direct = loadgen(f"http://127.0.0.1:{origin.port}{path}", 1)
            direct_s = direct[0]["done"] - direct[0]["start"]
            for name, s, query in order:
                path = f"/cold-{r}-{name}"
                # Every contender's origin file is a new copy, read by the origin for the first
                # time: until 2026-11-24 only the -sha256 rounds had one, the plain rounds a
                # link to a file read many times (an origin, and a machine, in another state).
                digest_query = unique_copy(www, path[1:], r)
                if query:
                    query = digest_query
                clients, cpu = loadgen_cpu(s.pid, s.url(origin, path) + query, n, spread)
                check_clients(name, clients, size)
                os.unlink(os.path.join(www, path[1:]))  # 1 GiB each: not kept
                durations = [c["done"] - c["start"] for c in clients]
                rounds[name].append({"slowest_vs_direct": max(durations) / direct_s,
                                     "slowest_s": max(durations), "arca_cpu_s": cpu,
                                     "max_ttfb_ms": max(1e3 * (c["ttfb"] - c["start"])
                                                        for c in clients)})
        return {"metric": "slowest_vs_direct", "higher_is_better": False, "unit": "× direct",
                "setup": f"{size >> 20} MiB at {cfg['cold_rate']}B/s per origin connection, "
                         f"{n} clients over {spread} s; -sha256: every client asks with the "
                         "object's digest", "rounds": rounds}
    finally:
        for s in reversed(servers + [origin]):
            s.stop()

def digest_fanout(work, cfg, www):
    """Digest hits fanned out: an object is cached under one URL; 50 clients then ask another
    URL with the same content and its &sha256= (LAVA's jobs name the same artifact by several
    URLs). Each is answered from the cached file once upstream has confirmed its URL."""
    size, n, spread = cfg["large"], cfg["cold_clients"], cfg["cold_spread"]
    write_random(os.path.join(www, "cold"), size)
    digest = "&sha256=" + file_sha256(os.path.join(www, "cold"))
    origin = Nginx(work, "origin", www=www)
    servers = arcas(work)
    try:
        for s in servers:
            os.symlink("cold", os.path.join(www, f"first-{s.name}"))
            fetch_all(s.url(origin, f"/first-{s.name}") + digest, size)
        rounds = {s.name: [] for s in servers}
        for r in range(cfg["rounds"]):
            for s in servers if r % 2 == 0 else reversed(servers):
                path = f"/twin-{r}-{s.name}"
                os.symlink("cold", os.path.join(www, path[1:]))
                hits = s.metric("arca_digest_hits_total")
                clients, cpu = loadgen_cpu(s.pid, s.url(origin, path) + digest, n, spread)
                check_clients(s.name, clients, size)
                if s.metric("arca_digest_hits_total") - hits != n:
                    raise RuntimeError(f"{s.name}: not every client was a digest hit")
                durations = [c["done"] - c["start"] for c in clients]
                rounds[s.name].append({"slowest_s": max(durations), "arca_cpu_s": cpu,
                                       "cpu_ns_per_byte": 1e9 * cpu / (n * size)})
        return {"metric": "slowest_s", "higher_is_better": False, "unit": "s",
                "setup": f"{size >> 20} MiB cached under one URL, {n} clients over {spread} s "
                         "asking another URL with its &sha256=", "rounds": rounds}
    finally:
        for s in reversed(servers + [origin]):
            s.stop()
