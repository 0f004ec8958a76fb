"""The suite's S3: s3rver (the npm package, pinned, installed by scripts/test-tools into
tests/.node/) behind a SigV4-checking proxy of our own (sigv4.py), both on free loopback ports.
The proxy counts the requests and body bytes that reach S3.

Each S3() is a proxy of its own, started and stopped by its scenario (stopping it is S3 going
down for arca); behind them, one s3rver per test process (a pytest worker) holds every S3()'s
buckets under names of their own ("s3-7-lab" for S3 number 7's "lab"), which its proxy puts
into the paths it forwards and takes out of the answers. s3rver is started once per process
and stopped at its exit: starting a node process for each scenario cost 30 CPU seconds a pass.
A process killed first (xdist kills a worker not done 10 s after the run's end) leaves its
s3rver and directory, named by its PID, to sweep_dead_backends: at the run's end (conftest's
pytest_sessionfinish), and at any later s3rver's start."""

import atexit
import collections
import http.client
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sigv4
from conftest import SERVE_POLL, free_port, process_alive

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S3RVER = os.path.join(ROOT, "tests", ".node", "node_modules", "s3rver", "bin", "s3rver.js")
# The directory of a test process's s3rver: DIR_PREFIX<its PID>-XXXX, holding data/ (the
# buckets) and server.pid (s3rver's), for sweep_dead_backends
DIR_PREFIX = "arca-s3-"
# s3rver knows one access key, S3RVER; it is told to let any secret through, and the check in
# front of it is the one that holds it to SECRET
ACCESS, SECRET = "S3RVER", "arca-test-secret"


def sweep_dead_backends():
    """Removes each s3rver directory whose test process is gone, killed before it could (xdist
    kills a worker still running 10 s after the run's end: a CI run left two arca-s3-*
    directories of 25 buckets), and stops the s3rver its server.pid names when that process
    still runs on the directory (an s3rver outlives its worker: a session of its own)."""
    top = tempfile.gettempdir()
    for name in os.listdir(top):
        if not name.startswith(DIR_PREFIX):
            continue
        pid, dash, _ = name[len(DIR_PREFIX):].partition("-")
        if not dash or not pid.isdecimal() or process_alive(int(pid)):
            continue
        path = os.path.join(top, name)
        try:
            with open(os.path.join(path, "server.pid")) as f:
                server = int(f.read())
            with open(f"/proc/{server}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    os.killpg(server, signal.SIGKILL)
        except (OSError, ValueError):
            pass  # none written, or gone
        shutil.rmtree(path, ignore_errors=True)


class Checker(BaseHTTPRequestHandler):
    """Forwards a request to s3rver only when its signature is right; else answers as S3 does."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with self.server.s3.lock:  # stop() cuts kept-alive connections: S3 is down for all
            self.server.s3.open_conns.add(self.connection)

    def finish(self):
        super().finish()
        with self.server.s3.lock:
            self.server.s3.open_conns.discard(self.connection)

    def handle_any(self):
        s3 = self.server.s3
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        refused = None if s3.anonymous else sigv4.check(self.command, path, query, headers,
                                                         s3.credentials)
        with s3.lock:
            s3.requests.append((self.command, path, query, refused))
        if refused:
            xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{refused}</Code>"
                   "<Message>refused by the test's SigV4 check</Message></Error>").encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            self.wfile.write(xml)
            return
        conn = http.client.HTTPConnection("127.0.0.1", s3.backend_port, timeout=60)
        try:
            conn.request(self.command, s3.backend_path(self.path), body=body or None,
                         headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "keep-alive",
                                     "content-length"):
                    self.send_header(k, v)
            data = resp.read()
            if resp.status >= 300 or not path.strip("/").count("/"):
                data = s3.from_backend(data)  # a listing or an error: never an object's bytes
            if self.command == "HEAD":
                data, length = b"", resp.getheader("Content-Length")
            else:
                length = str(len(data))
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                # counted as it is handed over, as conftest's Origin does: arca may have read
                # it all, and its client asserted, before a count made after the write lands
                with s3.lock:
                    s3.bytes_sent[path] += len(data)
                self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any


class _Backend:
    """This process's s3rver, started by the first S3() and stopped at exit."""
    proc = port = dir = None
    numbers = itertools.count(1)
    lock = threading.Lock()

    @classmethod
    def get(cls):
        with cls.lock:
            if cls.proc is None or cls.proc.poll() is not None:
                if not os.path.exists(S3RVER):
                    raise RuntimeError(f"{S3RVER} missing: scripts/test-tools installs it")
                cls.stop()  # one that died: its directory goes before the next one's is made
                sweep_dead_backends()  # and those of test processes killed before
                cls.dir = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")
                for _ in range(3):  # a port another parallel scenario took first: another one
                    if cls._start():
                        break
                else:
                    raise RuntimeError("s3rver: its port was taken three times")
                atexit.register(cls.stop)
            return cls.port

    @classmethod
    def _start(cls):
        """s3rver on a free port; False when that port was taken before s3rver bound it."""
        cls.port = free_port()
        args = ["node", "--openssl-legacy-provider", S3RVER, "-d", cls.data(), "-a", "127.0.0.1",
                "-p", str(cls.port), "--silent", "--no-vhost-buckets",
                "--allow-mismatched-signatures"]
        cls.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True)
        with open(os.path.join(cls.dir, "server.pid"), "w") as f:  # sweep_dead_backends
            f.write(str(cls.proc.pid))
        deadline = time.monotonic() + 20
        while True:
            try:  # s3rver's answer to / is its bucket list: anything else is another server
                conn = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=2)
                conn.request("GET", "/")
                body = conn.getresponse().read()
                conn.close()
                if b"ListAllMyBucketsResult" in body and cls.proc.poll() is None:
                    return True
                raise OSError("not s3rver")
            except OSError:
                if cls.proc.poll() is not None or time.monotonic() > deadline:
                    err = cls.proc.stderr.read().decode(errors="replace") if cls.proc.poll() else ""
                    if "EADDRINUSE" in err or "not s3rver" in err:
                        return False
                    cls.stop()
                    raise RuntimeError(f"s3rver did not start: {err[-500:]}")
                time.sleep(0.05)

    @classmethod
    def data(cls):
        """s3rver's directory: its buckets (beside it in cls.dir, server.pid)."""
        return os.path.join(cls.dir, "data")

    @classmethod
    def stop(cls):
        if cls.proc and cls.proc.poll() is None:
            os.killpg(cls.proc.pid, signal.SIGTERM)
            try:
                cls.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(cls.proc.pid, signal.SIGKILL)
                cls.proc.wait()
        cls.proc = None
        if cls.dir:
            shutil.rmtree(cls.dir, ignore_errors=True)
            cls.dir = None


class S3:
    def __init__(self, buckets=("lab",), anonymous=False):
        self.credentials = {ACCESS: SECRET}
        self.anonymous = anonymous
        self.requests, self.bytes_sent = [], collections.Counter()
        self.open_conns = set()
        self.lock = threading.Lock()
        self.server = None
        self.backend_port = _Backend.get()
        self.prefix = f"s3-{next(_Backend.numbers)}-"
        self.buckets = set(buckets)
        for b in buckets:  # made on s3rver under this S3's names for them
            assert self.to_backend("PUT", "/" + b) == 200, b
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Checker)
        self.server.daemon_threads = True
        self.server.s3 = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SERVE_POLL,),
                                       daemon=True)
        self.thread.start()

    def backend_path(self, path):
        """A request's path (and query) as s3rver knows it: the bucket under its name there."""
        bucket, sep, rest = path[1:].partition("/")
        name, q, query = bucket.partition("?")
        if name not in self.buckets:
            return path
        return "/" + self.prefix + name + q + query + sep + rest

    def to_backend(self, method, path):
        """The status s3rver answers `method` on `path` (an S3 one: backend_path's names),
        asked directly, past the check."""
        conn = http.client.HTTPConnection("127.0.0.1", self.backend_port, timeout=30)
        try:
            conn.request(method, self.backend_path(path))
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def from_backend(self, body):
        """A listing's or an error's body as S3 would give it: the bucket under its own name."""
        return body.replace(self.prefix.encode(), b"")

    def put(self, bucket, key, data):
        """Store an object as a client would: a botocore-signed PUT through the check."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        import urllib.parse
        path = f"/{bucket}/" + urllib.parse.quote(key, safe="/-_.~")
        req = AWSRequest(method="PUT", url=f"http://127.0.0.1:{self.port}{path}", data=data)
        S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("PUT", path, body=data, headers=dict(req.headers.items()))
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, (key, resp.status)
        finally:
            conn.close()

    def put_many(self, bucket, items):
        """Store many objects fast, for a scenario's setup: written straight into s3rver's
        directory as its PUT writes them (the object, its MD5 and its metadata: s3rver 3.7.1's
        layout, pinned by tests/s3rver.lock), which it reads at each request. Its PUT took 4 ms
        of CPU an object: the listings' 4,500 objects cost 20 to 30 CPU seconds a pass. The
        signed path is put()'s, and arca's own requests always go through the check."""
        import hashlib
        import urllib.parse

        assert items and bucket in self.buckets, (bucket, len(items))
        root = os.path.join(_Backend.data(), self.prefix + bucket)
        for key, data in items:
            # a key that would write outside its bucket's directory is put() one's (S3 allows it)
            assert not key.startswith("/") and ".." not in key.split("/"), key
            folder, _, name = key.rpartition("/")
            base = os.path.join(root, folder, name + "._S3rver_")
            os.makedirs(os.path.dirname(base), exist_ok=True)
            with open(base + "object", "wb") as f:
                f.write(data)
            with open(base + "object.md5", "w") as f:
                f.write(hashlib.md5(data).hexdigest())
            with open(base + "metadata.json", "w") as f:
                f.write('{\n  "content-type": "binary/octet-stream"\n}')
        # s3rver itself must see them: a layout it no longer reads fails here, not as a listing
        key = items[-1][0]
        assert self.to_backend("HEAD", f"/{bucket}/" + urllib.parse.quote(key, safe="/-_.~")) \
            == 200, f"s3rver does not see {key!r} written in its directory"

    def lists(self, bucket):
        """ListObjectsV2 requests of `bucket` that reached the check: (prefix, token) each."""
        import urllib.parse
        with self.lock:
            found = [r for r in self.requests if r[0] == "GET" and r[1] in (f"/{bucket}",
                                                                            f"/{bucket}/")
                     and "list-type=2" in r[2]]
        out = []
        for r in found:
            q = urllib.parse.parse_qs(r[2], keep_blank_values=True)
            out.append((q.get("prefix", [""])[0], q.get("continuation-token", [None])[0]))
        return out

    def gets(self, path):
        """GETs of `path` (as sent) that reached the check, and how many it let through."""
        with self.lock:
            hits = [r for r in self.requests if r[0] == "GET" and r[1] == path]
        return len(hits), sum(1 for r in hits if r[3] is None)

    def url(self, bucket):
        """The bucket's path-style URL, as arca's --bucket takes it."""
        return f"http://127.0.0.1:{self.port}/{bucket}"

    def stop(self):
        """S3 down: the proxy stops and its kept-alive connections are cut (s3rver, shared,
        goes on for the other scenarios of this process)."""
        if getattr(self, "server", None):
            self.server.shutdown()
            self.server.server_close()
            self.server = None
            with self.lock:
                for conn in list(self.open_conns):
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
