"""What a scenario of the registry mirror (issue 60, docs/REGISTRY.md) stands on: images made
here (gzip'ed tar layers of random bytes, a config, a manifest, an index), a real upstream
(Debian's docker-registry, distribution 2.8), a scripted upstream for what the real one does not
do (a Bearer token realm, blobs redirected to a "CDN" port, 429, lies, going down) with a log of
every request it had, the files real clients read (registries.conf for skopeo and podman), and
plain-HTTP clients that pull as a registry client does: manifest, then config and layers, each
checked against its digest.

No network: every server is on a free loopback port, started and stopped by its scenario."""

import base64
import collections
import gzip
import hashlib
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SERVE_POLL, free_port, wait_for

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# what a client (containers/image, containerd) sends as Accept for a manifest
ACCEPT_ALL = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
API_VERSION = "registry/2.0"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"
DOCKER_REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
PODMAN = shutil.which("podman") or "/usr/bin/podman"


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- images ---------------------------------------------------------------------------------


@dataclass
class Blob:
    digest: str
    data: bytes
    media_type: str

    @property
    def size(self):
        return len(self.data)

    def descriptor(self):
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class Image:
    """An image as a registry holds it. `manifest` is the image manifest; `index`, when made,
    the index (or Docker manifest list) naming it, and `top` what the tag points at (the index
    when there is one, else the manifest). `oci_dir`: an OCI layout of it on disk (skopeo's
    oci:DIR:TAG), tagged `tag`."""

    tag: str
    layers: list
    config: Blob
    manifest: Blob
    index: Blob = None
    oci_dir: str = ""
    contents: list = field(default_factory=list)  # each layer's file bytes, uncompressed
    diff_ids: list = field(default_factory=list)  # each layer's uncompressed tar's digest

    @property
    def top(self):
        return self.index or self.manifest

    def blobs(self):
        """Config and layers: what a pull GETs under /blobs/."""
        return [self.config] + self.layers

    def manifests(self):
        return [m for m in (self.index, self.manifest) if m]

    def by_digest(self):
        return {b.digest: b for b in self.blobs() + self.manifests()}

    def layer_sha256s(self):
        return sorted(b.digest for b in self.layers)


def _layer_tar(name, content):
    """A gzip'ed tar holding one file: fixed mtimes, so a layer's digest is its bytes'."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(content), 1700000000, 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), digest_of(tar_bytes)


def build_image(dir, layers=(65536,), tag="latest", oci=False, index=False):
    """An image made here: each entry of `layers` is a file's bytes (or a size: that many random
    bytes) put in a gzip'ed tar layer of its own; a config naming their diff_ids; a Docker v2
    manifest (an OCI one with oci=True); with index=True an index (OCI) or manifest list
    (Docker) naming it for linux/amd64. Written as an OCI layout under `dir` too (the blobs
    under blobs/sha256/, the tag in index.json), which `skopeo copy oci:DIR:TAG` reads."""
    layer_type, config_type, manifest_type, index_type = \
        (OCI_LAYER, OCI_CONFIG, OCI_MANIFEST, OCI_INDEX) if oci else \
        (DOCKER_LAYER, DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_LIST)
    contents = [os.urandom(x) if isinstance(x, int) else bytes(x) for x in layers]
    blobs, diff_ids = [], []
    for n, content in enumerate(contents):
        gz, diff_id = _layer_tar(f"layer{n}.bin", content)
        blobs.append(Blob(digest_of(gz), gz, layer_type))
        diff_ids.append(diff_id)
    config_doc = {"architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/true"],
                             "Labels": {"arca.test": secrets.token_hex(8)}},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created_by": "arca test"} for _ in diff_ids]}
    config_data = json.dumps(config_doc, indent=2).encode()
    config = Blob(digest_of(config_data), config_data, config_type)
    manifest_doc = {"schemaVersion": 2, "mediaType": manifest_type,
                    "config": config.descriptor(), "layers": [b.descriptor() for b in blobs]}
    manifest_data = json.dumps(manifest_doc, indent=3).encode()
    manifest = Blob(digest_of(manifest_data), manifest_data, manifest_type)
    top = None
    if index:
        entry = manifest.descriptor() | {"platform": {"architecture": "amd64", "os": "linux"}}
        index_data = json.dumps({"schemaVersion": 2, "mediaType": index_type,
                                 "manifests": [entry]}, indent=3).encode()
        top = Blob(digest_of(index_data), index_data, index_type)
    image = Image(tag, blobs, config, manifest, top, dir, contents, diff_ids)
    _write_oci_layout(image)
    return image


def _write_oci_layout(image):
    root = os.path.join(image.oci_dir, "blobs", "sha256")
    os.makedirs(root, exist_ok=True)
    for blob in image.blobs() + image.manifests():
        with open(os.path.join(root, blob.digest.split(":", 1)[1]), "wb") as f:
            f.write(blob.data)
    ref = image.top.descriptor() | {"annotations":
                                    {"org.opencontainers.image.ref.name": image.tag}}
    with open(os.path.join(image.oci_dir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(image.oci_dir, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [ref]}, f)


def dir_layers(path):
    """The sha256s of the layer files `skopeo copy ... dir:PATH` wrote (each named by its
    digest's hex), checked: each file's bytes hash to its name."""
    with open(os.path.join(path, "manifest.json"), "rb") as f:
        manifest = json.load(f)
    out = []
    for layer in manifest["layers"]:
        hexd = layer["digest"].split(":", 1)[1]
        with open(os.path.join(path, hexd), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == hexd, layer["digest"]
        out.append(layer["digest"])
    return sorted(out)


# --- plain HTTP clients ---------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict  # lower-case names
    body: bytes
    complete: bool  # False: the body was cut before its declared end

    def json(self):
        return json.loads(self.body)

    def error_codes(self):
        """The codes of a registry's JSON error body ({"errors":[{"code":...}]})."""
        try:
            return [e.get("code") for e in self.json()["errors"]]
        except (ValueError, KeyError, TypeError):
            return []


def request(host, port, method, target, headers=None, timeout=30, body=None):
    """One request on a connection of its own, the body read to its end (or as far as it came:
    complete=False)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        got = {k.lower(): v for k, v in resp.getheaders()}
        try:
            data, complete = (resp.read() if method != "HEAD" else b""), True
        except http.client.IncompleteRead as e:
            data, complete = e.partial, False
        except (ConnectionResetError, TimeoutError):
            data, complete = b"", False
        return Answer(resp.status, got, data, complete)
    finally:
        conn.close()


def v2(arca, path, method="GET", headers=None, ns=None, timeout=30):
    """`method` of /v2/PATH at arca, with containerd's ?ns=NAME when given."""
    target = "/v2/" + path
    if ns is not None:
        target += ("&" if "?" in target else "?") + urllib.parse.urlencode({"ns": ns})
    return request(arca.host, arca.port, method, target, headers, timeout)


def manifest_headers(accept=ACCEPT_ALL):
    return {"Accept": accept}


def parse_challenge(value):
    """(scheme, {param: value}) of a WWW-Authenticate header."""
    scheme, _, rest = value.partition(" ")
    params = {}
    for part in _split_params(rest):
        k, _, v = part.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return scheme.lower(), params


def _split_params(text):
    out, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in out + [cur] if p.strip()]


class Puller:
    """A registry client in plain HTTP, as a lab's tooling pulls: it follows a Bearer challenge
    (with a login when given), follows redirects, and checks every blob's digest. `base` is the
    registry's http://HOST:PORT; `prefix` what goes after /v2/ before the repository (arca's
    path namespace, or ""); `ns` containerd's ?ns=."""

    def __init__(self, base, prefix="", ns=None, login=None):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.prefix = prefix.strip("/")
        self.ns = ns
        self.login = login
        self.token = None
        self.answers = []  # every Answer this client had, redirects and challenges included

    def target(self, repo, kind, ref):
        path = "/v2/" + "/".join(p for p in (self.prefix, repo, kind, ref) if p)
        if self.ns is not None:
            path += "?" + urllib.parse.urlencode({"ns": self.ns})
        return path

    def get(self, repo, kind, ref, method="GET", headers=None):
        """One request, through a Bearer challenge and redirects."""
        headers = dict(headers or {})
        target, host, port = self.target(repo, kind, ref), self.host, self.port
        authed = False
        for _ in range(6):
            h = dict(headers)
            if self.token and host == self.host and port == self.port:
                h["Authorization"] = "Bearer " + self.token
            a = request(host, port, method, target, h)
            self.answers.append(a)
            if a.status == 401 and not authed and "www-authenticate" in a.headers:
                authed = True
                self.token = self.fetch_token(a.headers["www-authenticate"])
                continue
            if a.status in (301, 302, 303, 307, 308):
                u = urllib.parse.urlsplit(a.headers["location"])
                host, port = u.hostname or host, u.port or port
                target = u.path + ("?" + u.query if u.query else "")
                continue
            return a
        raise AssertionError(f"{target}: too many redirects or challenges")

    def fetch_token(self, challenge):
        scheme, params = parse_challenge(challenge)
        assert scheme == "bearer", challenge
        u = urllib.parse.urlsplit(params["realm"])
        query = {k: params[k] for k in ("service", "scope") if k in params}
        headers = {}
        if self.login:
            cred = base64.b64encode(f"{self.login[0]}:{self.login[1]}".encode()).decode()
            headers["Authorization"] = "Basic " + cred
        a = request(u.hostname, u.port, "GET", u.path + "?" + urllib.parse.urlencode(query),
                    headers)
        assert a.status == 200, (a.status, a.body)
        doc = a.json()
        return doc.get("token") or doc.get("access_token")

    def pull(self, repo, ref):
        """Manifest (through an index to its linux/amd64 entry), config and layers: {digest:
        bytes} of every blob, each checked against its digest, and the top manifest's Answer."""
        top = self.get(repo, "manifests", ref, headers=manifest_headers())
        assert top.status == 200, (top.status, top.body[:300])
        doc = top.json()
        manifest = top
        if doc.get("mediaType") in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            entry = doc["manifests"][0]
            manifest = self.get(repo, "manifests", entry["digest"], headers=manifest_headers())
            assert manifest.status == 200, manifest.status
            assert digest_of(manifest.body) == entry["digest"]
            doc = manifest.json()
        got = {}
        for desc in [doc["config"]] + doc["layers"]:
            a = self.get(repo, "blobs", desc["digest"])
            assert a.status == 200 and a.complete, (desc["digest"], a.status, a.complete)
            assert digest_of(a.body) == desc["digest"], desc["digest"]
            got[desc["digest"]] = a.body
        return got, top


# --- the real upstream: docker-registry (distribution 2.8) ----------------------------------


class DockerRegistry:
    """Debian's docker-registry serving from a temp dir on a free loopback port, plain HTTP, no
    auth; stopped by its PID. access_log=True: it logs every request (gets() counts them)."""

    def __init__(self, access_log=False):
        self.dir = tempfile.mkdtemp(prefix="arca-registry-")
        self.proc = None
        self.access_log = access_log
        for _ in range(3):  # a port a parallel scenario's server took first: another one
            if self._start():
                return
        raise RuntimeError("docker-registry: its port was taken three times")

    def _start(self):
        self.port = free_port()
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: {"false" if self.access_log else "true"}
storage:
  filesystem:
    rootdirectory: {self.dir}/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{self.port}
""")
        self.log_path = os.path.join(self.dir, "registry.log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([DOCKER_REGISTRY, "serve", cfg], stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                a = request("127.0.0.1", self.port, "GET", "/v2/", timeout=2)
                if a.status == 200 and a.headers.get("docker-distribution-api-version") and \
                        self.proc.poll() is None:
                    return True
            except OSError:
                pass
            if self.proc.poll() is not None:
                with open(self.log_path, errors="replace") as f:
                    text = f.read()
                if "address already in use" in text:
                    return False
                raise RuntimeError(f"docker-registry did not start: {text[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("docker-registry did not answer /v2/ within 20 s")
            time.sleep(0.05)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"

    def push(self, image, repo, tag=None):
        push(self.url, image, repo, tag)

    def gets(self, path):
        """How many GETs of `path` its access log has (access_log=True; a request is logged
        once answered)."""
        assert self.access_log, "DockerRegistry(access_log=True) logs requests"
        with open(self.log_path, errors="replace") as f:
            return sum(f'"GET {path} HTTP/' in line for line in f)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def push(base, image, repo, tag=None):
    """Push `image` to the registry at `base` with the push API (monolithic blob uploads), the
    manifest by digest, then the tag (the index's when there is one)."""
    u = urllib.parse.urlsplit(base)
    host, port = u.hostname, u.port
    for blob in image.blobs():
        a = request(host, port, "HEAD", f"/v2/{repo}/blobs/{blob.digest}")
        if a.status == 200:
            continue
        a = request(host, port, "POST", f"/v2/{repo}/blobs/uploads/", body=b"")
        assert a.status == 202, (a.status, a.body)
        loc = urllib.parse.urlsplit(a.headers["location"])
        q = loc.query + ("&" if loc.query else "") + urllib.parse.urlencode({"digest": blob.digest})
        a = request(host, port, "PUT", f"{loc.path}?{q}", body=blob.data,
                    headers={"Content-Type": "application/octet-stream"})
        assert a.status == 201, (a.status, a.body)
    refs = [(image.manifest, image.manifest.digest)]
    if image.index:
        refs.append((image.index, image.index.digest))
    refs.append((image.top, tag or image.tag))
    for blob, ref in refs:
        a = request(host, port, "PUT", f"/v2/{repo}/manifests/{ref}", body=blob.data,
                    headers={"Content-Type": blob.media_type})
        assert a.status == 201, (ref, a.status, a.body)


def skopeo(*args, registries_conf=None, timeout=120, check=True):
    """skopeo with `args` (insecure registries over plain HTTP say so in their --*-tls-verify);
    with `registries_conf`, that file in place of the system's."""
    cmd = [SKOPEO]
    if registries_conf:
        cmd += ["--registries-conf", registries_conf]
    p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "HOME": tempfile.gettempdir()})
    if check:
        assert p.returncode == 0, f"skopeo {' '.join(args)}: {p.stderr[-1500:]}"
    return p


def skopeo_push(image, hostport, repo, tag=None):
    """`skopeo copy oci:DIR:TAG docker://HOSTPORT/REPO:TAG` over plain HTTP."""
    skopeo("copy", "--dest-tls-verify=false", f"oci:{image.oci_dir}:{image.tag}",
           f"docker://{hostport}/{repo}:{tag or image.tag}")


# --- registries.conf and containerd's ?ns= --------------------------------------------------


def registries_conf(path, prefix, mirror, unreachable="127.0.0.1:1"):
    """A registries.conf (v2) where images named under `prefix` (a registry host as clients
    write it: "registry.lab") are pulled from `mirror` ("127.0.0.1:ARCAPORT/NAME", arca's path
    namespace), plain HTTP. The registry's own location is `unreachable` (a port nothing
    listens on), so a client that falls back to it fails at once instead of going around arca
    unseen. Returns `path`."""
    with open(path, "w") as f:
        f.write(f"""unqualified-search-registries = []
short-name-mode = "disabled"

[[registry]]
prefix = "{prefix}"
location = "{unreachable}"
insecure = true

[[registry.mirror]]
location = "{mirror}"
insecure = true
""")
    return path


def ns_target(repo, kind, ref, ns):
    """What containerd sends a mirror its hosts.toml names: /v2/REPO/KIND/REF?ns=REGISTRY."""
    return f"/v2/{repo}/{kind}/{ref}?" + urllib.parse.urlencode({"ns": ns})


# --- the scripted upstream ------------------------------------------------------------------


@dataclass
class Req:
    """One request an upstream had."""

    server: str  # "registry", "token" (the realm) or "cdn"
    method: str
    path: str
    query: str
    headers: dict  # lower-case names
    status: int = 0


def _error(code, message=""):
    return json.dumps({"errors": [{"code": code, "message": message or code.lower(),
                                   "detail": None}]}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with self.server.upstream.lock:
            self.server.upstream.open_conns.add(self.connection)

    def finish(self):
        super().finish()
        with self.server.upstream.lock:
            self.server.upstream.open_conns.discard(self.connection)

    def handle_any(self):
        up = self.server.upstream
        u = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        req = Req(self.server.role, self.command, u.path, u.query,
                  {k.lower(): v for k, v in self.headers.items()})
        with up.lock:
            up.log.append(req)
        status, headers, body = up.answer(req)
        req.status = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.send_paced(body, up.rate if status in (200, 206) and req.server != "token"
                            and "/manifests/" not in req.path else 0)

    def send_paced(self, body, rate):
        """The body in 64 KiB pieces, at `rate` bytes a second when given (a download that
        lasts long enough for many clients to ask for it while it runs)."""
        t0 = time.monotonic()
        try:
            for off in range(0, len(body), 65536):
                if rate:
                    time.sleep(max(0, t0 + off / rate - time.monotonic()))
                self.wfile.write(body[off:off + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class ScriptedRegistry:
    """A registry of our own on a free loopback port, serving images added with add(), and
    what docker-registry does not: `auth` None (anonymous), "token" (a Bearer realm on a port of
    its own, `users` {name: password} required when given, tokens valid `token_ttl` s) or
    "basic" (`users` checked on every request); `cdn`: blob GETs answered 307 to a second port,
    which refuses any request carrying Authorization. Switches a scenario flips: throttled (429
    TOOMANYREQUESTS, or `throttle_status`, with `Retry-After: retry_after` when that is not
    None) to every /v2/ request, realm_throttled the same from its token realm, failing (that
    status, a 5xx, no Retry-After), basic_refusal (what a basic login it does not take gets:
    401, or 403 as a registry that knows the user and denies it), cdn_query (the redirect's
    query, a CDN's signature),
    cdn_failing (a status the CDN answers), go_down()/come_up(), and lies: lie_blob(),
    lie_manifest(), lie_digest_header(). Every request of every port is in `log`."""

    def __init__(self, auth=None, users=None, token_ttl=300, cdn=False, service="reg",
                 cdn_host="127.0.0.1"):
        self.auth, self.users, self.token_ttl, self.service = auth, dict(users or {}), \
            token_ttl, service
        self.repos = collections.defaultdict(lambda: {"manifests": {}, "blobs": {}})
        self.tokens = {}  # token: (scopes, expiry)
        self.log = []
        self.lock = threading.Lock()
        self.open_conns = set()
        self.throttled = False
        self.realm_throttled = False
        self.throttle_status = 429  # what `throttled` answers: 429, or a 503 with Retry-After
        self.retry_after = "1"  # the Retry-After of a throttled answer (None: no header)
        self.failing = None  # a status every /v2/ request gets (503...)
        self.basic_refusal = 401  # what a wrong basic login gets (403: denied)
        self.lying_blobs = set()  # digests whose bytes are served wrong
        self.lying_manifests = set()  # (repo, digest): body altered, headers say the digest
        self.lying_headers = set()  # (repo, ref): Docker-Content-Digest not the body's
        self.hidden = set()  # (repo, digest): answered 404 BLOB_UNKNOWN for that repo
        self.cdn_query = None  # the CDN redirect's query (None: expires=...&sig=...)
        self.cdn_failing = None  # a status every CDN request gets (500, 403...)
        self.rate = 0  # bytes a second of a blob's body, 0: as fast as it goes
        self.servers = {}
        self.port = self._serve("registry")
        self.token_port = self._serve("token") if auth == "token" else None
        self.cdn_host = cdn_host
        self.cdn_port = self._serve("cdn", host=cdn_host) if cdn else None

    def _serve(self, role, port=0, host="127.0.0.1"):
        server = ThreadingHTTPServer((host, port), _Handler)
        server.daemon_threads = True
        server.upstream, server.role = self, role
        threading.Thread(target=server.serve_forever, args=(SERVE_POLL,), daemon=True).start()
        self.servers[role] = server
        return server.server_address[1]

    # --- content ---

    def add(self, repo, image, tag=None):
        """Serve `image` under `repo`, its tag (or `tag`) pointing at its top manifest."""
        r = self.repos[repo]
        for blob in image.blobs():
            r["blobs"][blob.digest] = blob
        for m in image.manifests():
            r["manifests"][m.digest] = m
        r["manifests"][tag or image.tag] = image.top
        return image

    def retag(self, repo, tag, image):
        """Move `tag` to `image` (added to `repo` with it)."""
        self.add(repo, image, tag)

    # --- what a scenario reads ---

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"

    def requests(self, server="registry", method=None, path=None):
        with self.lock:
            return [r for r in self.log if r.server == server and
                    (method is None or r.method == method) and (path is None or r.path == path)]

    def count(self, method, path):
        return len(self.requests(method=method, path=path))

    def gets(self, path):
        return self.count("GET", path)

    def heads(self, path):
        return self.count("HEAD", path)

    def blob_gets(self, repo, digest):
        """GETs of the blob at the registry, plus GETs of it at the CDN (a redirected one
        counts once: its GET at the registry only redirects)."""
        if self.cdn_port:
            return len(self.requests("cdn", "GET", f"/cdn/{digest}"))
        return self.gets(f"/v2/{repo}/blobs/{digest}")

    def token_requests(self):
        return self.requests("token")

    def total(self):
        with self.lock:
            return len(self.log)

    def issued(self):
        with self.lock:
            return list(self.tokens)

    # --- switches ---

    def lie_blob(self, digest):
        self.lying_blobs.add(digest)

    def lie_manifest(self, repo, digest):
        self.lying_manifests.add((repo, digest))

    def lie_digest_header(self, repo, ref):
        self.lying_headers.add((repo, ref))

    def hide_blob(self, repo, digest):
        self.hidden.add((repo, digest))

    def go_down(self):
        """Stop listening and cut every open connection: arca's next connect is refused."""
        server = self.servers.pop("registry", None)
        if server:
            server.shutdown()
            server.server_close()
        with self.lock:
            for conn in list(self.open_conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def come_up(self):
        """Listen again on the same port."""
        wait_for(lambda: self._try_serve(), f"the upstream back on port {self.port}", 10)

    def _try_serve(self):
        try:
            self._serve("registry", self.port)
            return True
        except OSError:
            return False

    def stop(self):
        self.go_down()
        for server in list(self.servers.values()):
            server.shutdown()
            server.server_close()
        self.servers.clear()

    # --- answers ---

    def answer(self, req):
        if req.server == "token":
            return self._token(req)
        if req.server == "cdn":
            return self._cdn(req)
        if req.method not in ("GET", "HEAD"):
            return 405, self._json_headers(), _error("UNSUPPORTED")
        if self.throttled:
            return self._throttled(self._json_headers())
        if self.failing:
            return self.failing, self._json_headers(), _error("UNAVAILABLE")
        parts = req.path.split("/")
        if req.path == "/v2/" or req.path == "/v2":
            scope = None
        elif len(parts) >= 5 and parts[0] == "" and parts[1] == "v2":
            scope = "/".join(parts[2:-2])
        else:
            return 404, self._json_headers(), _error("NOT_FOUND")
        refused = self._check_auth(req, scope)
        if refused:
            return refused
        if scope is None:
            return 200, self._json_headers(), b"{}"
        kind, ref = parts[-2], parts[-1]
        repo = self.repos.get(scope)
        if kind == "manifests":
            return self._manifest(req, scope, repo, ref)
        if kind == "blobs":
            return self._blob(req, scope, repo, ref)
        if kind == "tags" and ref == "list":
            tags = sorted(t for t in (repo or {"manifests": {}})["manifests"] if ":" not in t)
            if repo is None:
                return 404, self._json_headers(), _error("NAME_UNKNOWN")
            return 200, self._json_headers(), json.dumps({"name": scope, "tags": tags}).encode()
        return 404, self._json_headers(), _error("NOT_FOUND")

    def _throttled(self, headers):
        if self.retry_after is not None:
            headers = headers | {"Retry-After": self.retry_after}
        code = "TOOMANYREQUESTS" if self.throttle_status == 429 else "UNAVAILABLE"
        return self.throttle_status, headers, _error(code)

    def _json_headers(self):
        return {"Content-Type": "application/json",
                "Docker-Distribution-API-Version": API_VERSION}

    def _challenge(self, scope):
        if self.auth == "basic":
            return 'Basic realm="reg"'
        realm = f"http://127.0.0.1:{self.token_port}/token"
        value = f'Bearer realm="{realm}",service="{self.service}"'
        if scope:
            value += f',scope="repository:{scope}:pull"'
        return value

    def _check_auth(self, req, scope):
        """None when the request may go on, else the 401 answer."""
        if not self.auth:
            return None
        given = req.headers.get("authorization", "")
        if self.auth == "basic":
            if given.startswith("Basic ") and self._basic_ok(given):
                return None
            if given.startswith("Basic ") and self.basic_refusal == 403:
                return 403, self._json_headers(), _error("DENIED", "access denied")
        elif given.startswith("Bearer "):
            with self.lock:
                scopes, expiry = self.tokens.get(given[7:], ((), 0))
            if time.monotonic() < expiry and (scope is None or scope in scopes):
                return None
        return (401, self._json_headers() | {"WWW-Authenticate": self._challenge(scope)},
                _error("UNAUTHORIZED", "authentication required"))

    def _basic_ok(self, value):
        try:
            user, _, password = base64.b64decode(value.split(" ", 1)[1]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return bool(self.users) and self.users.get(user) == password

    def _token(self, req):
        if self.realm_throttled:
            return self._throttled({"Content-Type": "application/json"})
        q = urllib.parse.parse_qs(req.query)
        if req.path != "/token" or q.get("service", [""])[0] != self.service:
            return 400, {"Content-Type": "application/json"}, b'{"details":"bad request"}'
        given = req.headers.get("authorization", "")
        if self.users and not (given.startswith("Basic ") and self._basic_ok(given)):
            return 401, {"Content-Type": "application/json",
                         "WWW-Authenticate": 'Basic realm="token"'}, b'{"details":"no"}'
        scopes = []
        for s in q.get("scope", []):
            for one in s.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind == "repository" and "pull" in actions.split(","):
                    scopes.append(name)
        token = "tok" + secrets.token_hex(20)
        with self.lock:
            self.tokens[token] = (tuple(scopes), time.monotonic() + self.token_ttl)
        doc = {"token": token, "access_token": token, "expires_in": self.token_ttl,
               "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    def _manifest(self, req, repo_name, repo, ref):
        m = repo and repo["manifests"].get(ref)
        if not m:
            return 404, self._json_headers(), _error("MANIFEST_UNKNOWN")
        body = m.data
        if (repo_name, ref) in self.lying_manifests:
            body = body + b"\n"
        digest = m.digest
        if (repo_name, ref) in self.lying_headers:
            digest = digest_of(body + b" ")
        return 200, {"Content-Type": m.media_type, "Docker-Content-Digest": digest,
                     "Docker-Distribution-API-Version": API_VERSION,
                     "Content-Length": str(len(body)), "ETag": f'"{digest}"'}, body

    def _blob(self, req, repo_name, repo, digest):
        blob = repo and repo["blobs"].get(digest)
        if not blob or (repo_name, digest) in self.hidden:
            return 404, self._json_headers(), _error("BLOB_UNKNOWN")
        if self.cdn_port and req.method == "GET":
            query = self.cdn_query or \
                f"expires={int(time.time()) + 600}&sig={secrets.token_hex(8)}"
            location = f"http://{self.cdn_host}:{self.cdn_port}/cdn/{digest}?{query}"
            return 307, {"Location": location, "Docker-Distribution-API-Version": API_VERSION,
                         "Content-Length": "0"}, b""
        return self._blob_bytes(req, blob, {"Docker-Distribution-API-Version": API_VERSION})

    def _blob_bytes(self, req, blob, extra):
        data = blob.data
        if blob.digest in self.lying_blobs:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        headers = extra | {"Content-Type": "application/octet-stream",
                           "Docker-Content-Digest": blob.digest, "Accept-Ranges": "bytes",
                           "ETag": f'"{blob.digest}"'}
        rng = req.headers.get("range", "")
        if rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            if a.isdigit() and int(a) < len(data) and (not b or b.isdigit()):
                first, last = int(a), min(int(b), len(data) - 1) if b else len(data) - 1
                headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
                headers["Content-Length"] = str(last + 1 - first)
                return 206, headers, data[first:last + 1]
        headers["Content-Length"] = str(len(data))
        return 200, headers, data

    def _cdn(self, req):
        if self.cdn_failing:
            return self.cdn_failing, {"Content-Type": "text/plain"}, b"the CDN fails\n"
        if "authorization" in req.headers:  # a CDN's signed URL carries its own right
            return 403, {"Content-Type": "text/plain"}, b"Authorization refused by the CDN\n"
        digest = req.path.rsplit("/", 1)[-1]
        for repo in self.repos.values():
            if digest in repo["blobs"]:
                return self._blob_bytes(req, repo["blobs"][digest], {})
        return 404, {"Content-Type": "text/plain"}, b"no such object\n"


def write_secret(dir, name, value):
    """A password file (0600), as [registry NAME] password-file = reads it."""
    path = os.path.join(dir, name)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


def mirror_with_login(start_arca, up, workdir, name, user, password, access_log=None):
    """arca mirroring `up` as registry `name` with the login `user` and `password` (its
    password-file in `workdir`, given in a [registry NAME] section): (arca, the file's path)."""
    path = write_secret(workdir, "lab.pw", password)
    config = write_config(os.path.join(workdir, "arca.ini"),
                          (f"registry {name}", {"url": up.url, "username": user,
                                                "password-file": path}))
    return start_mirror(start_arca, {}, config=config, access_log=access_log), path


def registry_entry(arca, name):
    """The status's entry of registry `name`: there must be one."""
    found = [r for r in arca.status()["registries"] if r["name"] == name]
    assert len(found) == 1, arca.status().get("registries")
    return found[0]


def write_config(path, *sections):
    """An INI file of `sections`, each (header, {key: value}) or a ready text."""
    with open(path, "w") as f:
        for s in sections:
            if isinstance(s, str):
                f.write(s.rstrip() + "\n\n")
                continue
            header, keys = s
            f.write(f"[{header}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "\n")
    return path


def podman_pull(workdir, reference, registries_conf, timeout=120):
    """`podman pull REFERENCE` as root into a store of its own under `workdir` (vfs: no
    overlay mount needed), reading `registries_conf`; (CompletedProcess, its image inspect
    as a dict or None)."""
    os.makedirs(os.path.join(workdir, "xdg"), mode=0o700, exist_ok=True)
    env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": registries_conf,
           "HOME": workdir, "XDG_RUNTIME_DIR": os.path.join(workdir, "xdg")}
    base = [PODMAN, "--root", os.path.join(workdir, "podman-root"), "--runroot",
            os.path.join(workdir, "podman-run"), "--storage-driver", "vfs"]
    p = subprocess.run(base + ["pull", "--tls-verify=false", reference], capture_output=True,
                       text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        return p, None
    q = subprocess.run(base + ["image", "inspect", reference], capture_output=True, text=True,
                       env=env, timeout=timeout)
    return p, (json.loads(q.stdout)[0] if q.returncode == 0 else None)


def podman_works(workdir):
    """None when podman can pull here (root, vfs); else why not, for a skip."""
    if not os.path.exists(PODMAN):
        return "podman is not installed (scripts/deps test installs it)"
    if os.geteuid() != 0:
        return "podman runs here as root only (no user namespace set up for the suite)"
    os.makedirs(os.path.join(workdir, "xdg"), mode=0o700, exist_ok=True)
    p = subprocess.run([PODMAN, "--root", os.path.join(workdir, "podman-root"), "--runroot",
                        os.path.join(workdir, "podman-run"), "--storage-driver", "vfs",
                        "images"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": workdir,
                            "XDG_RUNTIME_DIR": os.path.join(workdir, "xdg")})
    return None if p.returncode == 0 else f"podman cannot run here: {p.stderr.strip()[-300:]}"


# --- fixtures and arca ----------------------------------------------------------------------


@pytest.fixture
def docker_registry():
    """A real upstream: docker-registry on a free loopback port, stopped at teardown."""
    r = DockerRegistry()
    yield r
    r.stop()


@pytest.fixture
def scripted():
    """scripted(**kw) -> a ScriptedRegistry (its switches as keywords); all stopped at
    teardown."""
    made = []

    def make(**kw):
        made.append(ScriptedRegistry(**kw))
        return made[-1]

    yield make
    for up in made:
        up.stop()


def mirror_args(registries, default=None, config=None):
    """arca's options for `registries` ({NAME: URL}, each a --registry), --registry-default,
    --config."""
    args = []
    for name, url in registries.items():
        args += ["--registry", f"{name}={url}"]
    if default:
        args += ["--registry-default", default]
    if config:
        args += ["--config", config]
    return args


def start_mirror(start_arca, registries=None, *more, default=None, config=None,
                 allow="127.0.0.0/8", access_log=None, **kw):
    """arca mirroring `registries`, allowed to reach loopback upstreams (`allow`), writing
    its access log to `access_log` when given (then its .access_log)."""
    if access_log:
        more = ("--access-log", access_log) + more
    arca = start_arca("--upstream-allow", allow,
                      *mirror_args(registries or {}, default, config), *more, **kw)
    arca.access_log = access_log
    return arca


def pull_through_a_tier(start_arca, scripted, workdir, name):
    """A central and a site (--parent) mirroring one scripted registry (token auth) as `name`,
    and an image of two layers pulled through the site: (upstream, image, central, site)."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536, 90_000],
                                               "v1"))
    central = start_mirror(start_arca, {name: up.url}, name="central")
    site = start_mirror(start_arca, {name: up.url}, "--parent", central.base, name="site")
    got, _ = Puller(site.base, prefix=name).pull("library/demo", "v1")
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    return up, image, central, site


def assert_registry_error(answer, status, code):
    """A registry's error: that status, JSON, the code first in its errors."""
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    assert answer.error_codes()[:1] == [code], answer.body[:300]


def shown_by(arca, *extra_paths):
    """Every text arca shows about itself: its log, its access log when it has one, the status,
    the metrics, the listings and the pages (a secret must appear in none)."""
    texts = [arca.read_log()]
    if getattr(arca, "access_log", None) and os.path.exists(arca.access_log):
        with open(arca.access_log, errors="replace") as f:
            texts.append(f.read())
    for path in ("/api/v1/status/", "/metrics", "/api/v1/resources/?state=successes",
                 "/api/v1/resources/?state=failures", "/", "/help/", "/resources/",
                 "/resources/successes/", "/resources/failures/", "/statistics/",
                 *extra_paths):
        status, headers, body = arca.get(path)
        texts.append(f"{path} {status} {headers}\n" + body.decode(errors="replace"))
    return texts
