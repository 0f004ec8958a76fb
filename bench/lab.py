"""A lab's day: the bytes taken from the origin over a day of jobs (origin-bytes, with
presigned URLs), a bucket's listing (bucket-listing), a cluster behind HAProxy (cluster) and
expired objects and misses while their hosts are down (chaos)."""
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from harness import (ARCA_BEFORE, Arca, Nginx, ROOT, Varnish, fetch_all, file_sha256, parse_wrk, timed_gets,
    write_random)



def presign(origin_port, path, job, style):
    """A presigned URL as a lab's job gets it: a new signature (and credential) every time, in
    S3 SigV4, GCS or Azure style. The static origin ignores the query; only the keys matter."""
    sig = hashlib.sha256(f"{path}|{job}|{style}|{random.random()}".encode()).hexdigest()
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    q = {"s3": {"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": f"AKIA{job}/20261122/us-east-1/s3/aws4_request",
                "X-Amz-Date": now, "X-Amz-Expires": "3600", "X-Amz-SignedHeaders": "host",
                "X-Amz-Signature": sig},
         "gcs": {"X-Goog-Algorithm": "GOOG4-RSA-SHA256", "X-Goog-Credential": f"sa{job}",
                 "X-Goog-Date": now, "X-Goog-Expires": "3600", "X-Goog-SignedHeaders": "host",
                 "X-Goog-Signature": sig},
         "azure": {"sv": "2022-11-02", "sp": "r", "sr": "b", "se": "2030-01-01T00:00:00Z",
                   "sig": sig}}[style]
    return f"http://127.0.0.1:{origin_port}{path}?" + urllib.parse.urlencode(q)

class LabClient:
    """How one contender is asked: arca through its fetch API (with ttl and, where the job
    knows it, sha256), the HTTP caches by the URL itself."""

    def __init__(self, server, ttl):
        self.s, self.ttl = server, ttl
        self.arca = isinstance(server, Arca)

    def url(self, target, sha=None):
        if not self.arca:
            u = urllib.parse.urlsplit(target)
            return f"http://127.0.0.1:{self.s.port}{u.path}?{u.query}"
        q = {"url": target, "ttl": f"{self.ttl}s"} | ({"sha256": sha} if sha else {})
        return f"http://127.0.0.1:{self.s.port}/api/v1/fetch/?" + urllib.parse.urlencode(q)

    def get(self, target, size, sha=None):
        t0 = time.monotonic()
        with urllib.request.urlopen(self.url(target, sha), timeout=600) as r:
            n = 0
            while chunk := r.read(1 << 20):
                n += len(chunk)
        if n != size:
            raise RuntimeError(f"{self.s.name}: {target}: {n} bytes, expected {size}")
        return time.monotonic() - t0

def lab_jobs(client, origin, files, shas, first_job, jobs, afternoon):
    """Each job fetches every artifact through a URL presigned for it, four jobs at a time. In
    the morning every other job gives the digests (as LAVA jobs may); in the afternoon a new
    build republishes the same kernel under its own path, and its jobs give the digests."""
    import concurrent.futures

    def job(j):
        style = ("s3", "gcs", "azure")[j % 3]
        for name, size in files:
            path = f"/builds/{2 if afternoon and name == 'Image' else 1}/{name}"
            client.get(presign(origin.port, path, j, style), size,
                       shas[name] if afternoon or j % 2 else None)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(job, range(first_job, first_job + jobs)))

def lab_day(client, origin, files, shas, lab):
    """Morning jobs; a restart of the cache while a new artifact downloads (a clean restart:
    an upgrade); the afternoon's jobs after every object's ttl ran out."""
    lab_jobs(client, origin, files, shas, 0, lab["jobs"], False)
    big = presign(origin.port, "/builds/1/late.img", 999, "s3")
    size = dict(files)["rootfs.ext4"]
    import threading
    t = threading.Thread(target=lambda: _ignore(lambda: client.get(big, size)))
    before = client.s.metric("arca_downloaded_bytes_total") if client.arca else 0
    t.start()
    if client.arca:  # restarted a third of the way in (the HTTP caches are not restarted)
        while client.s.metric("arca_downloaded_bytes_total") - before < size // 3:
            time.sleep(0.01)
        client.s.stop()
        client.s.start()
    t.join()
    client.get(big, size)
    time.sleep(lab["ttl"] + 1.5)
    lab_jobs(client, origin, files, shas, lab["jobs"], lab["jobs"], True)

def _ignore(fn):
    try:
        fn()
    except Exception:
        pass  # the restart cut it: the point

def confirm_cost(client, origin, lab):
    """Latency of a hit through a signed URL not seen before (one confirmation upstream), and of
    a plain hit, on the small artifact: medians over the samples, in ms."""
    size = dict(lab["files"])["board.dtb"]
    signed, plain = [], []
    for i in range(lab["confirm_samples"]):
        signed.append(1e3 * client.get(presign(origin.port, "/builds/1/board.dtb", 10000 + i,
                                               "s3"), size))
        plain.append(1e3 * client.get(f"http://127.0.0.1:{origin.port}/builds/1/board.dtb", size))
    return statistics.median(signed), statistics.median(plain)

def origin_bytes_scenario(work, cfg, www):
    lab = cfg["lab"]
    files = lab["files"] + [("late.img", dict(lab["files"])["rootfs.ext4"])]
    shas = {}
    for d in ("1", "2"):
        os.makedirs(os.path.join(www, "builds", d), exist_ok=True)
    for name, size in files:
        path = os.path.join(www, "builds", "1", name)
        write_random(path, size)
        shas[name] = file_sha256(path)
    shutil.copy(os.path.join(www, "builds", "1", "Image"), os.path.join(www, "builds", "2", "Image"))
    distinct = sum(size for _, size in files)  # /builds/2/Image holds the same bytes
    lab_files = lab["files"]
    rounds = {}
    # a restart lets responses run for the grace period (1 s here), then sets the download aside
    grace = ("--grace-period", "1s")
    for make in (lambda: Arca(work, name="arca", extra=grace),
                 lambda: Arca(work, name="arca-exact-keys", extra=grace + ("--exact-keys",)),
                 *([lambda: Arca(work, binary=ARCA_BEFORE, name="arca-before", extra=grace)]
                   if ARCA_BEFORE else []),
                 lambda: "nginx-proxy-cache", lambda: "varnish"):
        for r in range(lab.get("rounds", cfg["rounds"])):
            origin = Nginx(work, f"origin-{len(rounds)}-{r}", www=www, limit_rate=lab["rate"])
            s = make()
            if s == "nginx-proxy-cache":
                s = Nginx(work, f"nginx-proxy-cache-{r}", origin=origin, valid=f"{lab['ttl']}s",
                          revalidate=True, log=False)
            elif s == "varnish":
                s = Varnish(os.path.join(work, f"v{r}"), origin, "2G", ttl=lab["ttl"])
            try:
                client = LabClient(s, lab["ttl"])
                lab_day(client, origin, lab_files, shas, lab)
                time.sleep(0.3)  # the origin's last log lines
                sent, reqs = origin.origin_bytes(), origin.requests()
                confirm_ms, hit_ms = (confirm_cost(client, origin, lab) if client.arca
                                      else (float("nan"), float("nan")))
                name = s.name if not isinstance(s, Nginx) else "nginx-proxy-cache"
                rounds.setdefault(name, []).append({
                    "origin_bytes_ratio": sent / distinct, "origin_requests": reqs,
                    "confirmed_hit_ms": confirm_ms, "plain_hit_ms": hit_ms})
            finally:
                s.stop()
                origin.stop()
                if isinstance(s, Arca):
                    shutil.rmtree(s.data_dir, ignore_errors=True)
    return {"metric": "origin_bytes_ratio", "higher_is_better": False, "unit": "× distinct",
            "setup": f"{2 * lab['jobs']} jobs × {len(lab['files'])} artifacts "
                     f"({distinct >> 20} MiB distinct), new presigned URL per job "
                     f"(S3/GCS/Azure), ttl {lab['ttl']} s, a restart mid-download (arca), "
                     "sha256 given by half the morning's jobs and all the afternoon's, whose "
                     "kernel a new build republished under its own path",
            "rounds": rounds}

def timed_get(url):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=300) as r:
        body = r.read()
    return (time.monotonic() - t0) * 1000, body

def s3_direct_listing(s3, bucket, prefix):
    """What a client without arca pays for the whole folder: ListObjectsV2 page after page,
    signed by botocore, through the same SigV4 check arca goes through. Returns (ms, keys)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client
    import xml.etree.ElementTree as ET
    import s3 as s3mod
    creds, token, keys = Credentials(s3mod.ACCESS, s3mod.SECRET), None, 0
    t0 = time.monotonic()
    while True:
        q = {"list-type": "2", "delimiter": "/", "prefix": prefix, "max-keys": "1000"}
        if token:
            q["continuation-token"] = token
        query = urllib.parse.urlencode(sorted(q.items()), quote_via=urllib.parse.quote, safe="-_.~")
        req = AWSRequest(method="GET", url=f"http://127.0.0.1:{s3.port}/{bucket}?{query}")
        S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", s3.port, timeout=300)
        conn.request("GET", f"/{bucket}?{query}", headers=dict(req.headers.items()))
        root = ET.fromstring(conn.getresponse().read())
        conn.close()
        local = {el.tag.rsplit("}", 1)[-1]: el for el in root}
        keys += sum(1 for el in root if el.tag.endswith("Contents"))
        if getattr(local.get("IsTruncated"), "text", "false") != "true":
            break
        token = local["NextContinuationToken"].text
    return (time.monotonic() - t0) * 1000, keys

def bucket_listing(work, cfg, www):
    """A folder of cfg's objects in S3 (s3rver behind the suite's SigV4 check): its first HTML
    page and its whole JSON document through arca, cold (a fresh arca, nothing cached) and warm
    (listing cache), against listing it straight from S3 page by page."""
    lc = cfg["listing"]
    subprocess.run([os.path.join(ROOT, "scripts", "test-tools")], check=True)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import s3 as s3mod
    s3 = s3mod.S3(buckets=["lab"])
    rounds = {}
    try:
        n = lc["objects"]
        s3.put_many("lab", [(f"builds/f{i:06d}.img", b"x" * (i % 97)) for i in range(n)],
                    workers=8)
        creds, ini = os.path.join(work, "s3.creds"), os.path.join(work, "buckets.ini")
        with open(creds, "w") as f:
            f.write(f"{s3mod.ACCESS}\n{s3mod.SECRET}\n")
        with open(ini, "w") as f:
            f.write(f"[bucket lab]\nurl = {s3.url('lab')}\ncredentials = {creds}\n")
        for r in range(lc.get("rounds", cfg["rounds"])):
            row = {}
            for kind in ("html", "json"):
                a = Arca(work, name=f"arca-{kind}-{r}", extra=("--config", ini))
                url = f"http://127.0.0.1:{a.port}/browse/lab/builds/"
                url += "?export=json" if kind == "json" else ""
                try:
                    before = a.metric('arca_bucket_list_pages_total{source="s3"}')
                    cold, body = timed_get(url)
                    if kind == "json":
                        assert len(json.loads(body)["files"]) == n
                    row[f"{kind}_cold_ms"] = cold
                    row[f"{kind}_cold_s3_requests"] = \
                        a.metric('arca_bucket_list_pages_total{source="s3"}') - before
                    row[f"{kind}_warm_ms"] = statistics.median(
                        timed_get(url)[0] for _ in range(lc["warm_samples"]))
                finally:
                    a.stop()
                    shutil.rmtree(a.data_dir, ignore_errors=True)
            rounds.setdefault("arca", []).append(row)
            ms, keys = s3_direct_listing(s3, "lab", "builds/")
            assert keys == n
            rounds.setdefault("s3-direct", []).append(
                {"html_cold_ms": float("nan"), "html_cold_s3_requests": float("nan"),
                 "html_warm_ms": float("nan"), "json_cold_ms": ms,
                 "json_cold_s3_requests": float((n + 999) // 1000), "json_warm_ms": ms})
    finally:
        s3.stop()
    return {"metric": "json_warm_ms", "higher_is_better": False, "unit": "ms",
            "setup": f"one folder of {lc['objects']} objects in s3rver behind the SigV4 check; "
                     "cold = a fresh arca, warm = its listing cache; s3-direct lists the folder "
                     "itself, page by page",
            "rounds": rounds}

def haproxy_in_front(work, nodes):
    """Debian's HAProxy with contrib/haproxy/haproxy.cfg, only its addresses changed: the test
    suite's launcher (tests/integration/cluster.py), without a log line per request."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import cluster
    os.makedirs(work)
    return cluster.HAProxy(work, nodes, log_requests=False)

def lb_url(lb, origin, path):
    return f"http://127.0.0.1:{lb.port}/api/v1/fetch/?url=http://127.0.0.1:{origin.port}{path}"

def fetch_many(base_urls, clients):
    """Every URL once, `clients` at a time; fails loudly on an error."""
    import concurrent.futures

    def one(u):
        with urllib.request.urlopen(u, timeout=120) as r:
            r.read()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, base_urls))

def holds(node, path):
    """Whether `node` has `path` complete (its most recently used objects come first)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{node.port}/api/v1/resources/"
                                "?state=successes") as r:
        return any(x["url"].endswith(path) for x in json.loads(r.read())["resources"])

def cluster_scenario(work, cfg, www):
    """Three arca nodes behind HAProxy (contrib/haproxy/haproxy.cfg): origin requests per URL,
    the share of URLs fetched again after kill -9 of a node and the time HAProxy took to notice,
    and warm hits through HAProxy against one node directly."""
    cc = cfg["cluster"]
    paths = [f"/c/{i:05d}" for i in range(cc["urls"])]
    os.makedirs(os.path.join(www, "c"), exist_ok=True)
    for p in paths:
        write_random(os.path.join(www, p.lstrip("/")), cc["size"])
    write_random(os.path.join(www, "small"), 4096)
    rounds = {}
    for r in range(cc.get("rounds", cfg["rounds"])):
        origin = Nginx(work, f"origin-{r}", www=www)
        nodes = [Arca(work, name=f"node{i}-{r}", extra=("--trusted-proxy", "127.0.0.1/32"))
                 for i in range(3)]
        lb = None
        try:
            lb = haproxy_in_front(os.path.join(work, f"lb{r}"), nodes)
            urls = [lb_url(lb, origin, p) for p in paths]
            start = origin.requests()  # the start-up probe's
            fetch_many(urls + urls, cc["clients"])
            per_url = (origin.requests() - start) / len(paths)
            victim = nodes[1]
            before = origin.requests()
            os.killpg(victim.proc.pid, signal.SIGKILL)
            t0 = time.monotonic()
            while lb.states().get("node2") != "DOWN":
                time.sleep(0.02)
            notice = time.monotonic() - t0
            fetch_many(urls, cc["clients"])
            share = (origin.requests() - before) / len(paths)
            victim.start()  # its old port: HAProxy knows it by that
            while lb.states().get("node2") != "UP":
                time.sleep(0.05)
            rps = {}
            fetch_all(lb_url(lb, origin, "/small"), 4096)
            owner = next(n for n in nodes if holds(n, "/small"))
            for name, url in (("via-haproxy", lb_url(lb, origin, "/small")),
                              ("one-node-direct", owner.url(origin, "/small"))):
                fetch_all(url, 4096)
                out = subprocess.run(["wrk", "-t2", "-c64", f"-d{cc['seconds']}s", "--latency", url],
                                     capture_output=True, text=True, check=True).stdout
                rps[name] = parse_wrk(out)[0]
            rounds.setdefault("cluster-via-haproxy", []).append(
                {"origin_requests_per_url": per_url, "refetched_share": share,
                 "notice_s": notice, "warm_hits_req_per_s": rps["via-haproxy"]})
            rounds.setdefault("one-node-direct", []).append(
                {"origin_requests_per_url": float("nan"), "refetched_share": float("nan"),
                 "notice_s": float("nan"), "warm_hits_req_per_s": rps["one-node-direct"]})
        finally:
            if lb:
                lb.stop()
            for n in nodes:
                n.stop()
                shutil.rmtree(n.data_dir, ignore_errors=True)
            origin.stop()
    return {"metric": "warm_hits_req_per_s", "higher_is_better": True, "unit": "req/s",
            "setup": f"3 nodes behind HAProxy 2.6 (contrib config), {cc['urls']} URLs of "
                     f"{cc['size'] >> 10} KiB each asked twice by {cc['clients']} clients; then "
                     "kill -9 of one node and every URL again; warm hits of a 4 KiB object with "
                     f"wrk -t2 -c64 for {cc['seconds']} s through HAProxy and to its node directly",
            "rounds": rounds}

class DeadHost:
    """A host that accepts connections and never answers (blackholed), or resets each at once
    (reset=True); it counts the connections it got."""

    def __init__(self, port=0, reset=False):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(1024)
        self.port, self.reset, self.held, self.accepted = self.sock.getsockname()[1], reset, [], 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                self.held.append(conn)

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()

def chaos(work, cfg, www):
    """Issue 43: expired objects whose origin is blackholed, against the same objects fresh;
    cold misses to a dead host with the hold (--origin-failures, default) and without."""
    c = cfg["chaos"]
    files = [f"obj{i}" for i in range(c["objects"])]
    for f in files:
        write_random(os.path.join(www, f), c["size"])
    shas = {f: file_sha256(os.path.join(www, f)) for f in files}
    fast = ("--retry-delay", "100ms")
    arca = Arca(work, extra=fast)
    held, unheld = Arca(work, extra=fast, name="arca-hold"), \
        Arca(work, extra=fast + ("--origin-failures", "0"), name="arca-no-hold")
    rows = {"fresh hit": [], "stale, origin blackholed": [], "misses, host held": [],
            "misses, not held": []}
    try:
        for r in range(cfg["rounds"]):
            origin = Nginx(work, f"origin{r}", www=www, log=False)
            urls = [arca.url(origin, f"/{f}") for f in files]
            for u in urls:  # cached for 2 s
                fetch_all(u + "&ttl=2s", c["size"])
            pick = [i % len(files) for i in range(c["clients"])]
            for name, blackhole in (("fresh hit", False), ("stale, origin blackholed", True)):
                if blackhole:
                    port = origin.port
                    origin.stop()
                    dead = DeadHost(port)
                    time.sleep(2.2)  # expired
                got = timed_gets([urls[i] for i in pick], [shas[files[i]] for i in pick],
                                 c["clients"])
                secs = [g[0] for g in got]
                rows[name].append({"max_seconds": max(secs), "median_seconds":
                                   statistics.median(secs),
                                   "origin_connections": dead.accepted if blackhole else 0,
                                   "wrong_answers": sum(1 for g in got
                                                        if g[1] != 200 or not g[2])})
            dead.stop()
            for name, a in (("misses, host held", held), ("misses, not held", unheld)):
                dead = DeadHost(reset=True)
                got = timed_gets([f"http://127.0.0.1:{a.port}/api/v1/fetch/?url=http://127.0.0.1:"
                                  f"{dead.port}/miss-{i}" for i in range(c["misses"])],
                                 [None] * c["misses"], 20)
                secs = [g[0] for g in got]
                rows[name].append({"max_seconds": max(secs), "median_seconds":
                                   statistics.median(secs), "origin_connections": dead.accepted,
                                   "wrong_answers": sum(1 for g in got if g[1] < 500)})
                dead.stop()
        return {"metric": "max_seconds", "higher_is_better": False, "unit": "s",
                "setup": f"{c['objects']} objects of {c['size'] >> 10} KiB, {c['clients']} clients "
                         f"once they expired with the origin blackholed, against the same fresh; "
                         f"{c['misses']} cold misses (20 at a time) to a host that resets every "
                         "connection, with --origin-failures 3 and 0 (--retry-delay 100ms)",
                "rounds": rows}
    finally:
        for s in (unheld, held, arca):
            s.stop()
