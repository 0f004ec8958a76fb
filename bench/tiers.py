"""A tier: children behind one parent arca, against the parent alone, then the parent killed
mid-download (tier)."""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
import urllib.request

from harness import ARCA, ARCA_BEFORE, Arca, LOADGEN, Nginx, file_sha256, write_random



def metric_total(server, name):
    """A metric of a running arca summed over its labels; None when it has no such metric (a
    build before it) or does not answer (killed)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    values = [float(v) for k, v in re.findall(r"^([^\s{]+)(?:\{[^}]*\})? (\S+)$", text, re.M)
              if k == name]
    return sum(values) if values else None

def tier_get(urls, clients, timeout, sha=False):
    """`clients` GETs at once, spread over `urls` (client i asks urls[i % len]) by one
    arca-loadgen, as in every phase; each client gets "t_start" and "t_done" on
    CLOCK_MONOTONIC and "url" its URL. None when they did not all end within `timeout`: a hang
    is a result here (the parent is killed under them), not something to wait out."""
    argv = [LOADGEN, "get", urls[0], "--clients", str(clients), "--threads", "2",
            *[a for u in urls[1:] for a in ("--also", u)], *(["--sha256"] if sha else [])]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return None
    if p.returncode:
        raise RuntimeError(f"arca-loadgen exited with {p.returncode}: {err}")
    run = json.loads(out)
    for x in run["clients"]:
        x.update(t_start=run["t0"] + x["start"], t_done=run["t0"] + x["done"],
                 url=urls[x["url"]])
    return run["clients"]

def kill_at(server, size, share, base, stop, out):
    """SIGKILL `server` (by its pid) once it has downloaded `share` of `size` bytes since its
    counter read `base`: `out` gets the share it had then. Polls its metrics every 20 ms."""
    while not stop.is_set():
        got = metric_total(server, "arca_downloaded_bytes_total")
        if got is None:
            return
        if got - base >= share * size:
            os.kill(server.pid, signal.SIGKILL)
            server.proc.wait()
            out.append((got - base) / size)
            return
        stop.wait(0.02)

def retry_cut(got, size, timeout):
    """Clients that were cut ask once more, as a lab's `curl --retry 1` would (a child that
    loses its parent starts over from the origin: its clients so far are cut). Per client,
    "retried" and its last attempt's end, status, bytes and sha256."""
    cut = [x for x in got if x["status"] == 200 and x["bytes"] < size]
    for url in {x["url"] for x in cut}:
        mine = [x for x in cut if x["url"] == url]
        again = tier_get([url], len(mine), timeout, sha=True) or []
        for x, y in zip(mine, again):
            x.update(retried=True, t_done=y["t_done"], status=y["status"], bytes=y["bytes"],
                     sha256=y["sha256"])
        for x in mine[len(again):]:  # the retry hung
            x.update(retried=True, t_done=float("nan"), status=0)
    return len(cut)

def tier_phase(www, origin, servers, path, size, clients, c, children=(), kill=None, sha=None):
    """One cold fan-out of `www/tier` under `path`: `clients` at once over `servers`; with
    `kill`, that parent arca SIGKILLed at c["kill_at"] of its download, each client's sha256
    checked and a cut client retried once. Returns its row and why it failed ("" if it did not):
    a client with wrong bytes, or not whole even after its retry."""
    os.symlink("tier", os.path.join(www, path[1:]))
    os.sync()  # no phase meets the writeback of the one before (the tier's writes 4 copies)
    fallbacks = [metric_total(s, "arca_parent_fallbacks_total") for s in children]
    watcher, killed, stop = None, [], threading.Event()
    if kill:
        base = metric_total(kill, "arca_downloaded_bytes_total")
        watcher = threading.Thread(target=kill_at, args=(kill, size, c["kill_at"], base, stop,
                                                         killed))
        watcher.start()
    got = tier_get([s.url(origin, path) for s in servers], clients, c["timeout"], sha=bool(sha))
    stop.set()
    if watcher:
        watcher.join()
    nan = float("nan")
    row = {"slowest_s": nan, "median_s": nan, "slowest_vs_parent_alone": nan,
           "origin_bytes_ratio": nan, "max_ttfb_ms": nan, "cut_clients": nan,
           "wrong_bytes": nan, "failed_clients": clients, "parent_fallbacks": nan,
           "killed_at_share": killed[0] if killed else nan}
    if got is None:
        return row, f"{path}: clients still running after {c['timeout']} s"
    row["max_ttfb_ms"] = max(1e3 * (x["ttfb"] - x["start"]) for x in got)
    row["cut_clients"] = retry_cut(got, size, c["timeout"]) if sha else \
        sum(1 for x in got if x["bytes"] != size)
    time.sleep(0.2)  # the origin's log lines land
    row["origin_bytes_ratio"] = origin.origin_bytes(path) / size
    after = [metric_total(s, "arca_parent_fallbacks_total") for s in children]
    if children and None not in fallbacks + after:
        row["parent_fallbacks"] = sum(after) - sum(fallbacks)
    secs = [x["t_done"] - x["t_start"] for x in got]
    whole = [x["status"] == 200 and x["bytes"] == size for x in got]
    wrong = [x for x, w in zip(got, whole) if w and sha and x.get("sha256") != sha]
    failed = [x for x, w in zip(got, whole) if not w or x in wrong]
    row.update(slowest_s=max(secs), median_s=statistics.median(secs), wrong_bytes=len(wrong),
               failed_clients=len(failed))
    why = f"{path}: {len(failed)} of {clients} clients failed, e.g. {failed[0]}" if failed \
        else ""
    if kill and not killed:
        why = f"{path}: the parent was not killed (its download never reached the share)"
    return row, why

def tier_round(work, www, origin, c, extra, sha, binary, tag, names, rows):
    """One round of the four phases on a fresh parent and children of `binary`, each phase on a
    URL of its own (`tag` tells rounds and builds apart; `sha`: the object's, for the killed
    phase); each phase's row is appended to rows[its name]. Returns why phases failed."""
    size, n, kids = c["size"], c["clients"], c["children"]
    parent = Arca(work, binary=binary, name=f"parent-{tag}", extra=extra)
    children = [Arca(work, binary=binary, name=f"child{i}-{tag}",
                     extra=extra + ("--parent", f"http://127.0.0.1:{parent.port}"))
                for i in range(kids)]
    failures = []
    try:
        phases = (([parent], n, {}), ([parent], n * kids, {}),
                  (children, n * kids, {"children": children}),
                  (children, n * kids, {"children": children, "kill": parent,
                                        "sha": sha}))
        done = []
        for name, (servers, clients, more) in zip(names, phases):
            row, why = tier_phase(www, origin, servers, f"/tier-{tag}-{len(done)}", size,
                                  clients, c, **more)
            done.append(row)
            failures += [f"{tag}, {name}: {why}"] if why else []
        for name, row in zip(names, done):
            row["slowest_vs_parent_alone"] = row["slowest_s"] / done[0]["slowest_s"]
            rows[name].append(row)
    finally:
        for s in children + [parent]:
            s.stop()
            shutil.rmtree(s.data_dir, ignore_errors=True)
    return failures

def tier(work, cfg, www):
    """Issue 54: one parent arca, children filling from it (--parent), c["clients"] clients on
    each asking the same cold object at once, against as many clients on the parent alone (the
    issue's reference) and against all the tier's clients on the parent alone (on this machine
    every client's bytes cross the same two cores: what that costs, without the tier); then
    the parent killed mid-run. Origin bytes per phase from the origin's log. Parent and
    children start fresh each round."""
    c = cfg["tier"]
    size, n, kids = c["size"], c["clients"], c["children"]
    write_random(os.path.join(www, "tier"), size)
    # not modified within the second of an answer: arca fills only an object whose validator
    # proves its pieces (until then the first phase went over one connection, the others not)
    os.utime(os.path.join(www, "tier"), (time.time() - 10, time.time() - 10))
    sha = file_sha256(os.path.join(www, "tier"))
    origin = Nginx(work, "origin", www=www, limit_rate=c["rate"])
    extra = tuple(c.get("arca_extra", ()))
    phases = (f"parent alone {n}", f"parent alone {n * kids}", f"tier {kids}×{n}",
              "tier, parent killed")  # clients
    # with ARCA_BEFORE, the older build's tier runs the same phases in every round (its rows
    # named "arca-before: …"); the two take turns going first, as in cold-fanout-digest
    builds = [("", ARCA)] + ([("arca-before: ", ARCA_BEFORE)] if ARCA_BEFORE else [])
    rows, failures = {b + k: [] for b, _ in builds for k in phases}, []
    try:
        for r in range(cfg["rounds"]):
            for label, binary in builds[r % 2:] + builds[:r % 2]:
                failures += tier_round(work, www, origin, c, extra, sha, binary,
                                       f"{r}{'-before' if label else ''}",
                                       [label + k for k in phases], rows)
        return {"metric": "slowest_vs_parent_alone", "higher_is_better": False,
                "unit": "× parent alone",
                "setup": f"{size >> 20} MiB at {c['rate']}B/s per origin connection (nginx "
                         f"limit_rate); one parent arca, {kids} children (--parent), {n} clients "
                         f"on each at once; against {n} and {n * kids} clients on the parent "
                         f"alone; then the parent SIGKILLed at {c['kill_at']:.0%} of its "
                         "download (every client's sha256 checked, a cut client retried once)",
                "rounds": rows, "failures": failures}
    finally:
        origin.stop()
