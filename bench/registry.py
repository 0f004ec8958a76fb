"""The registry mirror (issue 60, docs/REGISTRY.md) against distribution's own proxy mode
(registry): one cold image pulled by twenty clients at once, then warm pulls in a loop.

The upstream is Debian's docker-registry (distribution 2.8, filesystem storage) holding an image
made here (random, incompressible layers pushed with the registry's push API), behind an nginx
that relays it (`proxy_pass`, no cache, buffered in memory only) at a far registry's rate per connection
and whose access log gives the bytes the upstream sent. A pull is what a registry client does:
the manifest by tag with the clients' Accept header (its body checked against its digest), then
the config and every layer, each on a connection of its own, read whole by arca-loadgen. The
outage round (issue 68): five small images sharing their base layers, each pulled once through
a fresh cache, then pulled again with the upstream's port taken by a stand-in that drops every
connection, then by one that answers 429 to everything: how many pulls came whole, and what was
asked upstream meanwhile."""
import concurrent.futures
import hashlib
import http.client
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse

from harness import (ARCA, ARCA_BEFORE, LOADGEN, MiB, Arca, Nginx, Server, children_cpu, cpu_seconds,
                     wait_http)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# what containers/image and containerd send as Accept for a manifest
ACCEPT = ", ".join(("application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.oci.image.index.v1+json", DOCKER_MANIFEST,
                    "application/vnd.docker.distribution.manifest.list.v2+json"))
REPO, TAG = "bench/image", "latest"
GiB = 1 << 30


def request(port, method, target, body=None, headers=None, timeout=600):
    """One HTTP/1.1 exchange on a connection of its own: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


class DockerRegistry(Server):
    """Debian's docker-registry on filesystem storage: the upstream, or with `remote` (a URL)
    distribution's pull-through proxy of it. No access log, as no contender here writes one."""

    def __init__(self, work, name, remote=None):
        super().__init__(work)
        self.name, self.dir = name, os.path.join(work, name)
        os.makedirs(self.dir)
        proxy = f"proxy:\n  remoteurl: {remote}\n" if remote else ""
        conf = os.path.join(self.dir, "config.yml")
        with open(conf, "w") as f:
            f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.dir}/data
http:
  addr: 127.0.0.1:{self.port}
{proxy}""")
        self.spawn(["docker-registry", "serve", conf],
                   open(os.path.join(self.dir, "stdout"), "w"))
        wait_http(f"http://127.0.0.1:{self.port}/v2/", proc=self.proc)

    def blob_url(self, digest, repo=REPO):
        return f"http://127.0.0.1:{self.port}/v2/{repo}/blobs/{digest}"

    def manifest_target(self, repo=REPO):
        return f"/v2/{repo}/manifests/{TAG}"


class RegistryFront(Nginx):
    """nginx relaying the upstream registry at `rate` per connection (limit_rate: a far
    registry's per-flow limit), with an access log of the body bytes it sent."""

    def __init__(self, work, upstream, rate):
        super().__init__(work, "upstream", relay=upstream, limit_rate=rate)

    def sent(self):
        """Body bytes the upstream has sent so far, every request."""
        return self.origin_bytes()

    def blob_url(self, digest):
        return f"http://127.0.0.1:{self.port}/v2/{REPO}/blobs/{digest}"

    def manifest_target(self):
        return f"/v2/{REPO}/manifests/{TAG}"


class ArcaMirror(Arca):
    """arca mirroring the upstream as registry `lab`, pulled by path namespace."""

    def __init__(self, work, name, front, binary=ARCA, more=()):
        super().__init__(work, name=name, binary=binary,
                         extra=("--registry", f"lab=http://127.0.0.1:{front.port}", *more))

    def blob_url(self, digest, repo=REPO):
        return f"http://127.0.0.1:{self.port}/v2/lab/{repo}/blobs/{digest}"

    def manifest_target(self, repo=REPO):
        return f"/v2/lab/{repo}/manifests/{TAG}"


class StaticImage(Nginx):
    """nginx sending the image's files as static ones (sendfile), the paths a pull asks: what a
    server that only sends files does on this machine, the warm phase's floor beside the
    caches (no cold phase: it has the image from the start)."""

    def __init__(self, work, manifest, blobs):
        www = os.path.join(work, "static")
        for d in ("blobs", "manifests"):
            os.makedirs(os.path.join(www, "v2", REPO, d))
        for digest, path, _ in blobs:
            os.rename(path, os.path.join(www, "v2", REPO, "blobs", digest))
        with open(os.path.join(www, "v2", REPO, "manifests", TAG), "wb") as f:
            f.write(manifest)
        super().__init__(work, "nginx-static", www=www, log=False)

    def blob_url(self, digest):
        return f"http://127.0.0.1:{self.port}/v2/{REPO}/blobs/{digest}"

    def manifest_target(self):
        return f"/v2/{REPO}/manifests/{TAG}"


def random_blob(path, size):
    """A file of `size` random bytes: (digest, path, size)."""
    h, left = hashlib.sha256(), size
    with open(path, "wb") as f:
        while left:
            chunk = os.urandom(min(left, 4 * MiB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return "sha256:" + h.hexdigest(), path, size


def image_of(d, layers, config_name="config"):
    """A config naming `layers` ((digest, path, size) each) and a Docker v2 manifest listing
    them, the config written under d. Returns (manifest bytes, [(digest, path, size)] of config
    then layers)."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers",
                                    "diff_ids": [digest for digest, _, _ in layers]}}).encode()
    config_path = os.path.join(d, config_name)
    with open(config_path, "wb") as f:
        f.write(config)
    blobs = [("sha256:" + hashlib.sha256(config).hexdigest(), config_path, len(config))] + layers
    types = [DOCKER_CONFIG] + [DOCKER_LAYER] * len(layers)
    descriptors = [{"mediaType": t, "digest": digest, "size": size}
                   for t, (digest, _, size) in zip(types, blobs)]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": descriptors[0], "layers": descriptors[1:]}).encode()
    return manifest, blobs


def make_image(work, sizes):
    """Layers of random bytes (a registry checks digests, not that a layer is a tar), a config
    naming them, a Docker v2 manifest: files under work/image/, and the manifest's descriptor
    list. Returns (manifest bytes, [(digest, path, size)] of config then layers)."""
    d = os.path.join(work, "image")
    os.makedirs(d)
    return image_of(d, [random_blob(os.path.join(d, f"layer{n}"), size)
                        for n, size in enumerate(sizes)])


def push(registry, manifest, blobs, repo=REPO):
    """The registry's push API: each blob in one monolithic upload, then the manifest by tag."""
    for digest, path, size in blobs:
        status, headers, _ = request(registry.port, "POST", f"/v2/{repo}/blobs/uploads/", b"")
        if status != 202:
            raise RuntimeError(f"push: upload start answered {status}")
        loc = urllib.parse.urlsplit(headers["Location"])
        loc = loc.path + (f"?{loc.query}" if loc.query else "")
        with open(path, "rb") as f:
            status, _, body = request(registry.port, "PUT",
                                      f"{loc}{'&' if '?' in loc else '?'}digest={digest}", f,
                                      {"Content-Length": str(size),
                                       "Content-Type": "application/octet-stream"})
        if status != 201:
            raise RuntimeError(f"push: {digest} answered {status}: {body[:200]}")
    status, _, body = request(registry.port, "PUT", f"/v2/{repo}/manifests/{TAG}", manifest,
                              {"Content-Type": DOCKER_MANIFEST})
    if status != 201:
        raise RuntimeError(f"push: the manifest answered {status}: {body[:200]}")


def get_manifest(server, want):
    """The manifest by tag, as a client asks it: its body must be `want`."""
    status, _, body = request(server.port, "GET", server.manifest_target(),
                              headers={"Accept": ACCEPT})
    if status != 200 or body != want:
        raise RuntimeError(f"{server.name}: the manifest answered {status}, "
                           f"{len(body)} bytes{'' if status != 200 else ' not the pushed ones'}")


def run_loadgen(urls, clients, sha):
    p = subprocess.Popen([LOADGEN, "get", urls[0], "--clients", str(clients), "--threads", "2",
                          *[a for u in urls[1:] for a in ("--also", u)],
                          *(["--sha256"] if sha else [])],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p

def finish_loadgen(p, blobs):
    """The clients of one arca-loadgen run, each checked: a 200 with the blob's size (and with
    --sha256 its digest)."""
    out, err = p.communicate(timeout=1800)
    if p.returncode:
        raise RuntimeError(f"arca-loadgen exited with {p.returncode}: {err}")
    run = json.loads(out)
    for x in run["clients"]:
        digest, _, size = blobs[x["url"]]
        if x["status"] != 200 or x["bytes"] != size or \
                x.get("sha256", digest[7:]) != digest[7:]:
            raise RuntimeError(f"a client got {x['status']}, {x['bytes']} bytes of {size}, "
                               f"sha256 {x.get('sha256', 'unchecked')}")
        x["end"] = run["t0"] + x["done"]
    return run["clients"]

def pulls(server, manifest, blobs, n, checked):
    """n pulls at once: n manifests (threads), then every pull's config and layers on a
    connection each (pull k's are clients k*B .. k*B+B-1, B = config + layers). The first
    `checked` pulls hash their blobs (arca-loadgen --sha256, OpenSSL), the others count bytes.
    Returns each pull's seconds from the start of the batch to its last byte."""
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        list(pool.map(lambda _: get_manifest(server, manifest), range(n)))
    urls = [server.blob_url(digest) for digest, _, _ in blobs]
    runs = [run_loadgen(urls, k * len(blobs), sha) for k, sha in
            ((checked, True), (n - checked, False)) if k]
    ends = []
    for p in runs:
        got = finish_loadgen(p, blobs)
        ends += [max(x["end"] for x in got[i:i + len(blobs)]) - t0
                 for i in range(0, len(got), len(blobs))]
    return ends

def cold_round(server, front, manifest, blobs, c, image):
    """c["clients"] pulls of the cold image at once: the slowest's seconds and the upstream's
    bytes over the image's."""
    before, cpu = front.sent(), cpu_seconds(server.pid)
    n = 1 if server is front else c["clients"]
    # one client hashes what it got, the others count bytes: twenty clients each hashing 1 GiB
    # on the server's two cores measured their SHA-256 (20 GiB of it), not the fan-out; a
    # pull's sizes are checked for every client, and a lying upstream is the scenarios' to show
    ends = pulls(server, manifest, blobs, n, 1)
    time.sleep(0.3)  # the front's last log lines land
    return {"slowest_s": max(ends), "upstream_bytes_ratio": (front.sent() - before) / image,
            "cold_server_cpu_s": cpu_seconds(server.pid) - cpu if server is not front
            else float("nan")}

def warm_round(server, front, manifest, blobs, c, image):
    """Batches of c["clients"] pulls at once for c["warm_seconds"]: pulls a second, the
    server's CPU seconds per GiB it sent (one pull a batch checks its hashes) and the requests a
    pull cost the upstream (distribution asks for the manifest on every pull by tag)."""
    cpu, t0, done, asked = cpu_seconds(server.pid), time.monotonic(), 0, front.requests()
    clients = children_cpu()  # arca-loadgen's runs (every server here is waited only at its stop)
    while not done or time.monotonic() - t0 < c["warm_seconds"]:
        pulls(server, manifest, blobs, c["clients"], 1)
        done += c["clients"]
    wall, cpu = time.monotonic() - t0, cpu_seconds(server.pid) - cpu
    clients = children_cpu() - clients
    time.sleep(0.3)  # the front's last log lines land
    return {"pulls_per_s": done / wall, "cpu_s_per_gib": cpu / (done * image / GiB),
            "client_cpu_s_per_gib": clients / (done * image / GiB),
            "warm_upstream_requests_per_pull": (front.requests() - asked) / done}


# --- the outage round (issue 68) -------------------------------------------------------------


def make_outage_images(work, upstream, o):
    """o["images"] images in repositories bench/app0, bench/app1, ...: the same base layers
    (random bytes, o["base"] their sizes) then a layer and a config of their own, pushed to the
    upstream. Returns [(repo, manifest bytes, [(digest, path, size)])]; the files are removed."""
    d = os.path.join(work, "outage")
    os.makedirs(d)
    base = [random_blob(os.path.join(d, f"base{n}"), size) for n, size in enumerate(o["base"])]
    images = []
    for i in range(o["images"]):
        repo = f"bench/app{i}"
        manifest, blobs = image_of(d, base + [random_blob(os.path.join(d, f"own{i}"), o["own"])],
                                   f"config{i}")
        push(upstream, manifest, blobs, repo)
        images.append((repo, manifest, [(digest, None, size) for digest, _, size in blobs]))
    shutil.rmtree(d)
    return images


class Outage:
    """The upstream during an outage, on the front's port once the front is stopped: `down`
    accepts every connection and closes it at once (a stopped registry's port would refuse it
    unseen: here each attempt is counted), `429` answers every request 429 TOOMANYREQUESTS with
    Retry-After: 3600. stop() says how many connections (down) or requests (429) it had."""

    def __init__(self, port, mode):
        self.mode, self.count, self.lock = mode, 0, threading.Lock()
        outage = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self):
                if outage.mode != "down":
                    return super().handle()
                outage.add()  # closed at once, unanswered

            def do_any(self):
                outage.add()
                body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS",
                                               "message": "too many requests"}]}).encode()
                self.send_response(429)
                self.send_header("Content-Type", "application/json")
                self.send_header("Retry-After", "3600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_any

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address, daemon_threads, request_queue_size = True, True, 1024

            def handle_error(self, request, client_address):
                pass  # a client that hung up on a 429: nothing to report

        deadline = time.monotonic() + 10
        while True:  # the front's port, just let go
            try:
                self.server = Server(("127.0.0.1", port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def add(self):
        with self.lock:
            self.count += 1

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        return self.count


def outage_pulls(server, images, n):
    """n pulls at once, pull k of image k mod len(images): the manifest by tag (threads), then
    each image's config and layers by arca-loadgen (--sha256: these images are small), counted,
    never raised on. Returns (pulls whole: manifest and every blob right, slowest pull's s)."""
    t0 = time.monotonic()
    which = [k % len(images) for k in range(n)]

    def manifest_ok(i):
        repo, manifest, _ = images[i]
        try:
            status, _, body = request(server.port, "GET", server.manifest_target(repo),
                                      headers={"Accept": ACCEPT}, timeout=300)
            return status == 200 and body == manifest
        except OSError:
            return False

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        whole = list(pool.map(manifest_ok, which))
    ends = [time.monotonic() - t0] * n
    runs = []
    for i, (repo, _, blobs) in enumerate(images):
        pulls_of = [k for k in range(n) if which[k] == i]
        if pulls_of:
            urls = [server.blob_url(digest, repo) for digest, _, _ in blobs]
            runs.append((pulls_of, blobs, run_loadgen(urls, len(pulls_of) * len(blobs), True)))
    for pulls_of, blobs, p in runs:
        out, _ = p.communicate(timeout=1800)
        run = json.loads(out) if p.returncode == 0 else {"t0": 0, "clients": []}
        for j, k in enumerate(pulls_of):
            mine = run["clients"][j * len(blobs):(j + 1) * len(blobs)]
            whole[k] = whole[k] and len(mine) == len(blobs) and all(
                x["status"] == 200 and x["bytes"] == blobs[x["url"]][2] and
                x.get("sha256") == blobs[x["url"]][0][7:] for x in mine)
            if mine:
                ends[k] = max(ends[k], max(run["t0"] + x["done"] for x in mine) - t0)
    return sum(whole), max(ends)


def outage_round(server, front, images, o):
    """Each image pulled once through `server` (a fresh cache) with the upstream up, then
    o["pulls"] pulls at once with the upstream down, then as many with it answering 429 to
    everything; the front back after. The issue's bound: every pull whole, nothing asked
    upstream during the outage."""
    # one after the other, as a lab pulls them over a day: each next image's base layers are
    # then another repository's blobs already kept (pulled at once, each repository's would be
    # its own download)
    if sum(outage_pulls(server, [image], 1)[0] for image in images) != len(images):
        raise RuntimeError(f"{server.name}: an image of the outage round did not pull whole "
                           "with the upstream up")
    row, stand_in = {}, None
    front.stop()
    try:
        for mode, key in (("down", "down"), ("429", "throttled")):
            stand_in = Outage(front.port, mode)
            whole, slowest = outage_pulls(server, images, o["pulls"])
            row |= {f"{key}_pulls_whole": whole, f"{key}_upstream_requests": stand_in.stop(),
                    f"{key}_slowest_s": slowest}
            stand_in = None
    finally:
        if stand_in:
            stand_in.stop()
        front.restart()
    return row


def registry(work, cfg, www):
    """Issue 60's speed: arca's mirror against distribution's proxy (a second docker-registry,
    `proxy: remoteurl:` the upstream) and `direct` (one client pulling from the upstream).
    Cold: fresh caches each round, twenty clients at once. Warm: one arca and one proxy warmed
    with a pull, then batches of twenty pulls for some seconds each round."""
    c = cfg["registry"]
    sizes = [c["image"] // c["layers"]] * c["layers"]
    sizes[-1] += c["image"] - sum(sizes)
    upstream = DockerRegistry(work, "upstream-registry")
    front = RegistryFront(work, upstream, c["rate"])
    manifest, blobs = make_image(work, sizes)
    push(upstream, manifest, blobs)
    static = StaticImage(work, manifest, blobs)
    shutil.rmtree(os.path.join(work, "image"))
    outage_images = make_outage_images(work, upstream, c["outage"])
    image_bytes = len(manifest) + sum(size for _, _, size in blobs)
    remote = f"http://127.0.0.1:{front.port}"
    nan = float("nan")
    no_outage = {f"{k}_{f}": nan for k in ("down", "throttled")
                 for f in ("pulls_whole", "upstream_requests", "slowest_s")}
    # ARCA_BEFORE: an older arca beside, before/after in one run
    arcas = {"arca": ARCA} | ({"arca-before": ARCA_BEFORE} if ARCA_BEFORE else {})
    # warm only: nginx-static, and arca with the other --send-mode (a mapping's copy is most of
    # a warm blob's CPU; the default, auto, sends plain clients the file by sendfile, which
    # leaves the client a copy out of page cache: the default is chosen by figures)
    warm_only = {"nginx-static": static,
                 "arca-mmap": ArcaMirror(work, "arca-mmap-warm", front,
                                         more=("--send-mode", "mmap"))}
    rows = {name: [] for name in (*arcas, "distribution", "direct", *warm_only)}
    warm = {name: ArcaMirror(work, f"{name}-warm", front, binary) for name, binary in arcas.items()}
    warm["distribution"] = DockerRegistry(work, "distribution-warm", remote)
    for s in list(warm.values()) + [warm_only["arca-mmap"]]:
        pulls(s, manifest, blobs, 1, 1)
    try:
        for r in range(cfg["rounds"]):
            os.sync()  # no round meets the writeback of the one before
            direct = cold_round(front, front, manifest, blobs, c, image_bytes)
            rows["direct"].append(direct | {"slowest_vs_direct": 1.0, "pulls_per_s": nan,
                                            "cpu_s_per_gib": nan, "client_cpu_s_per_gib": nan,
                                            "warm_upstream_requests_per_pull": nan} | no_outage)
            # alternated: no contender always runs first, beside the last one's writeback
            for name in (list(warm) if r % 2 == 0 else list(warm)[::-1]):
                os.sync()
                s = ArcaMirror(work, f"{name}-{r}", front, arcas[name]) if name in arcas else \
                    DockerRegistry(work, f"distribution-{r}", remote)
                try:
                    cold = cold_round(s, front, manifest, blobs, c, image_bytes)
                    # the fresh cache, then its outage round (the front back after it)
                    cold |= outage_round(s, front, outage_images, c["outage"])
                finally:
                    s.stop()
                    shutil.rmtree(getattr(s, "data_dir", None) or s.dir, ignore_errors=True)
                cold["slowest_vs_direct"] = cold["slowest_s"] / direct["slowest_s"]
                rows[name].append(cold | warm_round(warm[name], front, manifest, blobs, c,
                                                    image_bytes))
            for name in (list(warm_only) if r % 2 == 0 else list(warm_only)[::-1]):
                rows[name].append(
                    {"slowest_s": nan, "upstream_bytes_ratio": nan, "cold_server_cpu_s": nan} |
                    no_outage | {"slowest_vs_direct": nan} |
                    warm_round(warm_only[name], front, manifest, blobs, c, image_bytes))
        return {"metric": "pulls_per_s", "higher_is_better": True, "unit": "warm pulls/s",
                "also": ["cpu_s_per_gib", "slowest_vs_direct", "upstream_bytes_ratio"],
                "outage_pulls": c["outage"]["pulls"],
                "setup": f"an image of {c['layers']} layers, {c['image'] / GiB:.3g} GiB, in "
                         f"docker-registry behind nginx at {c['rate']}B/s per connection; "
                         f"{c['clients']} clients pull it cold at once (fresh caches), then "
                         f"batches of {c['clients']} warm pulls for {c['warm_seconds']} s; "
                         f"nginx-static: the image's files sent by nginx (sendfile), warm only; "
                         f"arca-mmap: arca with --send-mode mmap, warm only; "
                         f"outage: {c['outage']['images']} images sharing "
                         f"{len(c['outage']['base'])} base layers, each pulled once through the "
                         f"fresh cache, then {c['outage']['pulls']} pulls at once with the "
                         f"upstream down (down_*: pulls whole, connections it got), then as many "
                         f"with it answering 429 (throttled_*)",
                "rounds": rows}
    finally:
        for s in list(warm.values()) + list(warm_only.values()) + [front, upstream]:
            s.stop()
