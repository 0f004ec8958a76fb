"""Scenario harness: a real origin (plain HTTP or HTTPS with a CA made here), the real arca
binary on a free loopback port, and clients. Every server is stopped and every temp dir removed
at teardown."""

import calendar
import collections
import hashlib
import http.client
import json
import os
import shutil
import signal
import random
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARCA_BIN = os.environ.get("ARCA_BIN", os.path.join(ROOT, "build", "arca"))
# What AddressSanitizer, LeakSanitizer and UBSan print; any of it in arca's log fails the test.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "Assertion `")
# How often a test's own HTTP server looks for shutdown() (serve_forever's default, 0.5 s, made
# each stop of one wait a quarter of a second on average).
SERVE_POLL = 0.02
# arca ended by one of these without a test sending it: a crash, whose log the failure shows
CRASH_SIGNALS = (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def without_ttl(cache_status):
    """A Cache-Status value without its members' `ttl=N` (seconds of freshness left, which the
    clock moves): what a test pins exactly. Every member about an object carries one; a test
    that needs the figure reads it with re."""
    return re.sub(r"; ttl=-?\d+", "", cache_status or "")


def _ephemeral_start():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def one_request(conn, method, target, headers=None, cut_is_partial=False):
    """(status, headers with lower-case names, body) of one request on `conn`, then closed.
    `cut_is_partial`: a body cut short is returned as far as it came (callers assert on its
    length); else the cut raises."""
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        try:
            body = resp.read() if method != "HEAD" else b""
        except http.client.IncompleteRead as e:
            if not cut_is_partial:
                raise
            body = e.partial
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def hold_port(host="127.0.0.1", port=0):
    """A socket bound to host:port (any free port for 0), never listening: a connection there
    is refused, as a dead host's is, and neither the kernel's bind(0) nor free_port() hands the
    port to another server while it is held. A port merely closed was taken by a parallel
    scenario's origin, which answered a "dead" host's requests with 404."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


@pytest.fixture
def refused_port():
    """A loopback port held refused for the scenario's length (hold_port)."""
    s = hold_port()
    yield s.getsockname()[1]
    s.close()


def format_host(host):
    """A host as a URL or --listen writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def free_port(host="127.0.0.1"):
    """A port free now, below the kernel's ephemeral range: a port the kernel picked for bind(0)
    can be taken next by any outgoing connection's local end (clients, arca's upstream, many at
    once when passes run side by side) before the server meant for it binds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    top = _ephemeral_start()
    for _ in range(100):
        port = random.randrange(10000, top)
        # a port handed out lately may not be bound yet: drawn again (once in about 20,000
        # draws), a scenario's two listeners met on one port ("--tls-listen ... overlaps
        # --listen", seen in a pass of 1,200 scenarios)
        if port in _recent_ports:
            continue
        with socket.socket(family) as s:
            try:
                s.bind((host, port))
                _recent_ports.append(port)
                return port
            except OSError:
                continue
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_recent_ports = collections.deque(maxlen=64)  # free_port()'s last answers


def own_address():
    """--listen on a free port: a check-config that must pass must not meet another arca at the
    default 8001 (it then fails: the address is held)."""
    return ("--listen", f"127.0.0.1:{free_port()}")


def listens(pid, port):
    """Whether process `pid` holds the listening TCP socket of `port` (its log may say nothing
    at --log-level error)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                col = line.split()
                if col[3] == "0A" and int(col[1].rsplit(":", 1)[1], 16) == port and col[9] in inodes:
                    return True
    return False


# --- origin ---------------------------------------------------------------------------------


@dataclass
class Obj:
    """What the origin serves at one path, and how."""

    data: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    rate: float = 0  # bytes per second, 0 = as fast as possible
    chunk: int = 65536
    chunked: bool = False  # Transfer-Encoding: chunked (length unknown to arca)
    truncate_at: int = -1  # close the connection after this many body bytes
    stall: float = 0  # accept, then say nothing for this long
    abort: bool = False  # accept, then reset the connection without a word
    redirect: str = ""  # answer 302 to this URL
    etag: str = ""  # sent as ETag; If-Range must match it (or last_modified) for a 206
    last_modified: str = ""
    headers: dict = field(default_factory=dict)  # more headers sent with every 200/206
    ranges: bool = True  # honour Range; False: always the whole body with 200
    # One entry per GET, consumed in order; then normal service. An entry is a status (int),
    # ("cut", n): n body bytes then a clean close; ("reset", n): n bytes then a TCP reset;
    # ("stall", n, seconds): n bytes then silence, then a close.
    faults: list = field(default_factory=list)
    on_request: object = None  # callable(obj, index) run as each GET begins (index from 0)
    forced_first: int = -1  # answer 206 from this byte even without a Range (a broken origin)
    overrun: int = 0  # a 206 sends this many bytes more than its Content-Range (a broken origin)
    # a threading.Event the body's last byte waits for (a download held open just before its
    # end, as long as a scenario needs; set it to let the body end)
    last_byte_gate: object = None
    # callable(query) -> None to serve, or a status to answer instead (a signature check)
    check: object = None
    conditional: bool = True  # answer If-None-Match / If-Modified-Since with 304 when they match
    started: list = field(default_factory=list)  # times each GET began
    finished: list = field(default_factory=list)  # times the last body byte was sent


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        origin = self.server.origin
        path = urllib.parse.urlsplit(self.path).path
        obj = origin.objects.get(path)
        with origin.lock:
            index = origin.counts[path]
            origin.counts[path] += 1
            self.request_index = len(origin.requests)
            origin.requests.append((path, dict(self.headers)))
            origin.targets.append(self.path)
        if obj is None:
            return self.reply(404, b"not found\n")
        obj.started.append(time.monotonic())
        if obj.on_request:
            obj.on_request(obj, index)
        fault = obj.faults.pop(0) if obj.faults else None
        refused = obj.check(urllib.parse.urlsplit(self.path).query) if obj.check else None
        if refused:
            return self.reply(refused, b"signature refused\n")
        if obj.stall:
            time.sleep(obj.stall)
            self.close_connection = True
            return
        if obj.abort:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if obj.redirect:
            self.send_response(302)
            self.send_header("Location", obj.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(fault, int) or obj.status != 200:
            return self.reply(fault if isinstance(fault, int) else obj.status, b"origin error\n")
        if obj.conditional and self.unmodified(obj):
            self.send_response(304)
            if obj.etag:
                self.send_header("ETag", obj.etag)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        first, last = self.range_bounds(obj)
        self.send_response(200 if first is None else 206)
        self.send_header("Content-Type", obj.content_type)
        if obj.etag:
            self.send_header("ETag", obj.etag)
        if obj.last_modified:
            self.send_header("Last-Modified", obj.last_modified)
        for name, value in obj.headers.items():
            self.send_header(name, value)
        if first is not None:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(obj.data)}")
        extra = os.urandom(obj.overrun) if first is not None else b""
        if obj.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length",
                             str((len(obj.data) if last is None else last + 1) - (first or 0)
                                 + len(extra)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        end = len(obj.data) if last is None else last + 1
        # a view, not a copy: copying 8 MiB twice (the slice, then the pieces) took this origin
        # 0.9 s under a CPU-heavy job, where fresh pages are dear, and a whole body's first byte
        # came that much after its headers, a fill's small ranges' at once
        body = memoryview(obj.data)[first or 0 : end]
        self.send_body(obj, bytes(body) + extra if extra else body, fault, path)

    def unmodified(self, obj):
        """RFC 9110 13.1.2/13.1.3: If-None-Match wins; If-Modified-Since is compared as text."""
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        if inm is not None:
            return bool(obj.etag) and obj.etag in [t.strip() for t in inm.split(",")]
        return ims is not None and bool(obj.last_modified) and ims == obj.last_modified

    def range_bounds(self, obj):
        """(first, last) of a 206 answer ("bytes=N-" or "bytes=N-M"), or (None, None) for the
        whole body."""
        if obj.forced_first >= 0:
            return obj.forced_first, len(obj.data) - 1
        rng, if_range = self.headers.get("Range", ""), self.headers.get("If-Range")
        if not obj.ranges or not rng.startswith("bytes=") or "-" not in rng or "," in rng:
            return None, None
        if if_range is not None and if_range not in (obj.etag, obj.last_modified):
            return None, None
        a, b = rng[6:].split("-", 1)
        if not a.isdigit() or (b and not b.isdigit()) or int(a) >= len(obj.data):
            return None, None
        return int(a), min(int(b), len(obj.data) - 1) if b else len(obj.data) - 1

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def send_body(self, obj, data, fault, path):
        limit = obj.truncate_at
        if fault:
            limit = fault[1]
        if limit >= 0:
            data = data[:limit]
        pieces = [data[off : off + obj.chunk] for off in range(0, len(data), obj.chunk)]
        if obj.last_byte_gate is not None and data:
            pieces[-1:] = [p for p in (pieces[-1][:-1], pieces[-1][-1:]) if p]
        t0 = time.monotonic()
        try:
            off = 0
            for piece in pieces:
                if obj.last_byte_gate is not None and off + len(piece) == len(data):
                    obj.last_byte_gate.wait(60)
                if obj.rate:  # pace before writing, so the last write is the last act
                    time.sleep(max(0, t0 + off / obj.rate - time.monotonic()))
                # counted as it is handed over: a client may have read it all before a count
                # made after the write would land
                with self.server.origin.lock:
                    self.server.origin.bytes_sent[path] += len(piece)
                    self.server.origin.request_bytes[self.request_index] += len(piece)
                if obj.chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                off += len(piece)
            if obj.chunked and limit < 0:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            if fault and fault[0] == "stall":
                time.sleep(fault[2])
            if fault and fault[0] == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
        except (BrokenPipeError, ConnectionResetError):
            return
        if limit < 0:
            obj.finished.append(time.monotonic())


class Origin:
    def __init__(self, host="127.0.0.1", tls=None):
        self.objects = {}
        self.counts = collections.Counter()
        self.bytes_sent = collections.Counter()  # body bytes written, per path
        self.request_bytes = collections.Counter()  # the same, per index in `requests`
        self.requests = []
        self.targets = []  # request targets as sent (path and query)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.server.origin = self
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls["cert"], tls["key"])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.host, self.port = host, self.server.server_address[1]
        self.held = None  # the port's placeholder after die()
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SERVE_POLL,),
                                       daemon=True)
        self.thread.start()

    def add(self, path, **kw):
        self.objects[path] = Obj(**kw)
        return self.url(path)

    def url(self, path, host=None):
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def finished_at(self, path):
        """When `path`'s first whole body went out (its handler's monotonic time). The handler
        notes it after the last byte went, so a client may hold every byte before it: waited
        for (CI's ASan run once read no note for one of three downloads just done)."""
        return wait_for(lambda: self.objects[path].finished,
                        f"the origin's note of {path}'s end")[0]

    def stop(self):
        """Stops serving and lets the port go (a port held by die() too)."""
        self.server.shutdown()
        self.server.server_close()
        if self.held is not None:
            self.held.close()
            self.held = None

    def die(self):
        """Stops serving as a dead host does: its port held (hold_port) until stop()."""
        self.stop()
        self.held = hold_port(self.host, self.port)


# --- arca -----------------------------------------------------------------------------------


def process_alive(pid):
    """Whether `pid` runs (a zombie, its parent not yet told, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """The run's last word, after xdist stopped its workers: what a worker's own end could not
    remove goes."""
    if not hasattr(session.config, "workerinput"):  # the run itself, not one of its workers
        from s3 import sweep_dead_backends  # here: s3.py imports this module

        sweep_dead_backends()


def pytest_configure(config):
    config.addinivalue_line("markers", "long_scenario: a scenario that does the work of many (a "
                            "crash at two dozen points, a cluster's every URL twice): twice the "
                            "run's time limit, so that it too ends within a third of its own")


def pytest_collection_modifyitems(config, items):
    """A long_scenario gets twice the --timeout given (scripts/test: SCENARIO_TIMEOUT, twice
    that under a sanitizer); the others keep it."""
    limit = config.getoption("timeout", None)
    if not limit:
        return
    for item in items:
        if item.get_closest_marker("long_scenario"):
            item.add_marker(pytest.mark.timeout(2 * float(limit)))


class PortTaken(RuntimeError):
    pass


# The arca servers the running scenario made (and those a longer-lived fixture lends it): a
# failure shows the end of each one's log.
_this_test = []
# Those it made itself, Arca(...) in its own course: stopped at its end if still running.
_made_in_this_test = []
# Lines of arca's log a failure shows (in the report, and in the run's closing summary).
LOG_TAIL = 12


@pytest.fixture(autouse=True)
def _arcas_of_this_test():
    """Every arca the scenario made is stopped at its end, those it made itself (Arca(...))
    too: a scenario that failed before its own stop() left them running."""
    _this_test.clear()
    _made_in_this_test.clear()  # a module's fixture made its own before: left to it
    yield
    for a in _made_in_this_test:  # its workdir may be gone already: stopped by its pid alone
        if a.proc is not None and a.proc.poll() is None:
            a.proc.terminate()
            try:
                a.proc.wait(20)
            except subprocess.TimeoutExpired:
                a.proc.kill()
                a.proc.wait()


def _log_tails():
    """The last LOG_TAIL lines of each log the scenario's servers wrote (once per file)."""
    out = []
    for path, arca in dict((a.log_path, a) for a in _this_test).items():
        try:
            with open(path, "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:  # a teardown's failure: the scenario's directory is gone
            text = arca.last_log
        if text is None:
            continue
        lines = text.splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("SUMMARY: ")), None)
        # a sanitizer's report ends in its legend: its SUMMARY line and what came before it
        out.append((path, lines[max(0, at + 1 - LOG_TAIL):at + 1] if at is not None
                    else lines[-LOG_TAIL:]))
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed scenario says what arca logged last: in its report, and in the file named by
    $ARCA_FAILURES (scripts/test prints it in the run's last lines, with the failed assertion)."""
    report = (yield).get_result()
    if not report.failed:
        return
    tails = _log_tails()
    for path, lines in tails:
        report.sections.append((f"arca's log ({path}), last lines", "\n".join(lines)))
    failures = os.environ.get("ARCA_FAILURES")
    if not failures:
        return
    message = report.longrepr.reprcrash.message if hasattr(report.longrepr, "reprcrash") \
        else str(report.longrepr)
    text = [f"{item.nodeid} ({report.when}): {message.splitlines()[0] if message else ''}"[:300]]
    for _, lines in tails[:1]:
        text += ["  arca's log, last lines:"] + [f"    {line[:200]}" for line in lines]
    with open(failures, "a") as f:  # one write per record: several workers may append
        f.write("\n".join(text) + "\n")


class Arca:
    """`name`: its log is workdir/NAME.log (a scenario with several servers, a parent arca and
    its children, tells their logs apart)."""

    def __init__(self, workdir, args=(), data_dir=None, host="127.0.0.1", env=None,
                 name="arca"):
        _this_test.append(self)
        _made_in_this_test.append(self)
        self.workdir = workdir
        self.env = env  # added to arca's environment
        self.host = host
        self.data_dir = data_dir or os.path.join(workdir, "data")
        self.args = list(args)
        self.proc = None
        self.port = None
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.last_log = None  # the log as stop() read it
        # its Cache-Status member's name: the scenarios pin "arca" (None: the default, the
        # host's name)
        self.cache_name = "arca"
        # start() returns once the index's rows are all in memory (a scenario about the load
        # itself says False): counts and listings are whole from then on
        self.wait_loaded = True

    def start(self, keep_port=False):
        """keep_port: come back on the port it had (a cluster node, known to HAProxy). A port
        that another server of a parallel scenario took between free_port() and arca's bind
        (s3rver takes a second to bind its own) is replaced by another, twice at most."""
        for attempt in range(3):
            self.port = self.port if keep_port and self.port else free_port(self.host)
            try:
                return self._start_once()
            except PortTaken:
                if keep_port or attempt == 2:
                    raise

    def command(self):
        """arca's command line (a subclass may run it another way)."""
        return [ARCA_BIN, "serve", "--listen", f"{format_host(self.host)}:{self.port}",
                "--data-dir", self.data_dir, "--grace-period", "5s",
                # short backoffs, so fault scenarios take seconds; a test may override
                "--retry-delay", "50ms"] + \
            (["--cache-name", self.cache_name] if self.cache_name else []) + self.args

    def _start_once(self):
        self.log = open(self.log_path, "ab")
        logged = self.log.tell()
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=self.log,
                                     env={**os.environ, **(self.env or {})})
        # an upper bound for a failure to be told, not a wait: under a sanitizer on a loaded
        # machine a config of 10,000 rules took more than 10 s to compile
        deadline = time.monotonic() + 30
        answered = None  # when health first answered
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                text = self.read_log()
                if "Address already in use" in text[logged:]:
                    self.proc = None
                    raise PortTaken(self.port)
                raise RuntimeError(f"arca exited {self.proc.returncode}: {text}")
            try:  # a connection that closes: it holds no place under a connection limit
                # the answer is ours only once our arca says it listens: the server of a
                # parallel scenario that took the port first answers health too, while ours
                # is still failing to bind it. arca logs it just after its workers start
                # (moments later under a sanitizer); at a quieter --log-level it never does,
                # and the kernel is asked (listens) once health has answered for half a second:
                # its socket table, read whole, took 40 ms with a pass's 4,000 sockets
                if self.get("/api/v1/health/", {"Connection": "close"})[0] in (200, 503):
                    answered = answered or time.monotonic()
                    if ("listening on" in self.read_log()[logged:] or
                            (time.monotonic() - answered > 0.5 and
                             listens(self.proc.pid, self.port))):
                        return self._loaded(logged) if self.wait_loaded else self
                time.sleep(0.01)
            except OSError:
                time.sleep(0.01)  # arca listens within 30 ms (plain) to 130 ms (TSan)
        raise RuntimeError("arca did not answer health within 30 s")

    def _loaded(self, logged, timeout=60):
        """Once the index's rows are all in memory: the log's "index loaded" line after
        `logged`, or (a quieter --log-level) the status's index_loading false. The log first:
        a request for the status would be in the access log the scenario reads."""
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            if "(index loaded in " in self.read_log()[logged:]:
                return self
            if time.monotonic() > started + 0.3:
                status, _, body = self.get("/api/v1/status/", {"Connection": "close"})
                if status != 200 or not json.loads(body).get("index_loading"):
                    return self
            time.sleep(0.01)
        raise RuntimeError(f"arca's index did not load within {timeout} s")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        log = self.last_log = self.read_log()  # the failure's record, once workdir is gone
        for marker in SANITIZER_MARKERS:
            if marker in log:
                at = log.index(marker)
                summary = re.search(r"^SUMMARY: .*$", log[at:], re.M)
                first = summary.group(0) if summary else log[at:].splitlines()[0]
                raise AssertionError(f"sanitizer report in arca's log: {first}\n" +
                                     log[at:at + 3000])
        if rc is not None and rc < 0 and -rc != sig and -rc in CRASH_SIGNALS:
            last = (log.strip().splitlines() or [""])[-1]
            raise AssertionError(f"arca died of signal {-rc}; its log ended: {last}\n"
                                 f"{log[-3000:]}")
        return rc

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_shows(self, text, timeout=3):
        """Whether `text` appears in the log within `timeout` (a failure is logged after the
        clients are told)."""
        deadline = time.monotonic() + timeout
        while text not in self.read_log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    @property
    def base(self):
        """Its base URL (what a child's --parent names)."""
        return f"http://{format_host(self.host)}:{self.port}"

    def get(self, path, headers=None, method="GET", timeout=30):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        return one_request(conn, method, path, headers, cut_is_partial=True)

    def stream(self, url, **params):
        """Open a fetch and return (connection, response) once the headers are in; the caller
        reads the body (see read_to_end) and closes the connection."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("GET", self.fetch_path(url, **params))
        return conn, conn.getresponse()

    def fetch_path(self, url, filename="", **params):
        q = urllib.parse.urlencode({"url": url, **params})
        return f"/api/v1/fetch/{filename}?{q}"

    def fetch(self, url, headers=None, method="GET", filename="", **params):
        return self.get(self.fetch_path(url, filename, **params), headers, method)

    def status(self):
        return json.loads(self.get("/api/v1/status/")[2])

    def reload(self, expect):
        """SIGHUP, then until the log says `expect` once more than before."""
        before = self.read_log().count(expect)
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.read_log().count(expect) > before, f"the log's {expect!r}")

    def metrics(self):
        out = {}
        for line in self.get("/metrics")[2].decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out


def read_to_end(resp):
    """(body, complete): complete is False when the stream was cut before its declared end
    (short Content-Length body, or chunked without the final chunk)."""
    try:
        return resp.read(), True
    except http.client.IncompleteRead as e:
        return e.partial, False


# --- waiting for a state ---------------------------------------------------------------------
# A scenario waits for what it needs (a byte count, a row, arca's clock), with a deadline,
# never for a time guessed long enough: a loaded machine makes every guess wrong some day.


def wait_for(check, what, timeout=10, every=0.02):
    """check()'s first true value, asked every `every` s; fails saying `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(every)
    return value


def resource(arca, path, state="successes", headers=None):
    """arca's listing row (/api/v1/resources/) of the object in `state` whose URL has this
    path, or None; asked with `headers` (a client a rule lets see it: X-Forwarded-For)."""
    rows = json.loads(arca.get(f"/api/v1/resources/?state={state}", headers)[2])["resources"]
    found = [r for r in rows if urllib.parse.urlsplit(r["url"]).path == path]
    assert len(found) <= 1, found
    return found[0] if found else None


def wait_clock(second, timeout=30):
    """Until arca's clock (time(NULL), whole seconds) reads `second` or later. time(NULL) reads
    the kernel's coarse clock, a tick behind time.time(): 50 ms past the second for that."""
    wait_for(lambda: time.time() >= second + 0.05, f"arca's clock at {second}", timeout, 0.05)


def wait_age(arca, path, age, field="created_at", timeout=30, headers=None):
    """Until arca's object at `path` is `age` seconds old by its own record (`field` of its
    listing row, read with `headers`: created_at, or last_usage), as arca counts: one with ttl T
    has expired once its age is T."""
    row = resource(arca, path, headers=headers)
    assert row, f"{path} is not in arca's listing"
    wait_clock(calendar.timegm(time.strptime(row[field], "%Y-%m-%dT%H:%M:%SZ")) + age, timeout)


def wait_downloading(arca, path, at_least=1, timeout=10):
    """arca's listing row of `path` once arca is downloading it and has `at_least` of its bytes
    (at least one: the origin's headers are in)."""
    def row():
        r = resource(arca, path, "downloading")
        return r if r and r["downloaded"] >= at_least else None
    return wait_for(row, f"{path} downloading with {at_least} bytes in", timeout)


def wait_not_listening(arca, timeout=10):
    """Until arca refuses new connections (it closes its listening socket as it drains)."""
    def refused():
        try:
            socket.create_connection((arca.host, arca.port), timeout=1).close()
            return False
        except ConnectionResetError:
            return False  # queued as the listening socket closed: ask again, refused then
        except ConnectionRefusedError:
            return True
    wait_for(refused, "arca stopped listening", timeout)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="arca-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def tls_files():
    """A CA and a server certificate for 127.0.0.1 and localhost, made with openssl."""
    d = tempfile.mkdtemp(prefix="arca-ca-")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=arca test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    yield {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "server.pem"),
           "key": os.path.join(d, "server.key")}
    shutil.rmtree(d, ignore_errors=True)


def stop_all(arcas):
    """Stop every arca, then raise the first one's failure (a sanitizer report, a crash): one
    arca's report must not leave the others running."""
    failures = []
    for a in arcas:
        try:
            a.stop()
        except AssertionError as e:
            failures.append(e)
    if failures:
        raise failures[0]


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.stop()


@pytest.fixture
def tls_origin(tls_files):
    o = Origin(tls=tls_files)
    yield o
    o.stop()


@pytest.fixture
def start_arca(workdir):
    """start_arca(*args) -> a running Arca; all are stopped at teardown."""
    started = []

    def start(*args, data_dir=None, host="127.0.0.1", env=None, name="arca", port=None,
              cache_name="arca", wait_loaded=True):
        # each its own data dir unless told: two servers may not share one
        data_dir = data_dir or os.path.join(workdir, f"data{len(started)}")
        a = Arca(workdir, args, data_dir, host, env, name)
        a.cache_name = cache_name
        a.wait_loaded = wait_loaded
        started.append(a)
        a.port = port  # a port chosen before (another server's options name it)
        return a.start(keep_port=port is not None)

    yield start
    stop_all(started)


@pytest.fixture
def start_tier(start_arca, workdir):
    """start_tier(n_children, *child_args, parent_args=(), parent=None) -> (parent, children):
    a parent arca (or the one given) and `n_children` arcas whose --parent it is, all allowed
    loopback upstreams, each with its own log (parent0.log, child0.log, ...) and access log
    (.access_log: a parent's says what its children asked, tier.py). start_tier.arca(kind,
    *args) starts one more, named kindN (a second parent, a child with other options)."""
    names = collections.Counter()

    def tier_arca(kind, *args, **kw):
        name = f"{kind}{names[kind]}"
        names[kind] += 1
        access_log = os.path.join(workdir, f"{name}-access.log")
        a = start_arca("--upstream-allow", "127.0.0.0/8", "--access-log", access_log, *args,
                       name=name, **kw)
        a.access_log = access_log
        return a

    def start(n_children=2, *child_args, parent_args=(), parent=None):
        parent = parent or tier_arca("parent", *parent_args)
        return parent, [tier_arca("child", "--parent", parent.base, *child_args)
                        for _ in range(n_children)]

    start.arca = tier_arca
    return start


@pytest.fixture
def arca(start_arca):
    """arca allowed to fetch from loopback origins, as every scenario here needs."""
    return start_arca("--upstream-allow", "127.0.0.0/8")


# --- HTTPS for clients (--tls-listen) ---------------------------------------------------------


class TlsArca(Arca):
    """arca with an HTTPS listener (--tls-listen on a free loopback port) beside its plain one.
    Its certificate and key are copies in the scenario's directory (cert_path, key_path), so a
    scenario can swap them and send SIGHUP."""

    def __init__(self, workdir, args, data_dir, ca, cert_path, key_path, env=None, name="arca"):
        super().__init__(workdir, args, data_dir, env=env, name=name)
        self.ca = ca
        self.cert_path, self.key_path = cert_path, key_path
        self.tls_port = None
        self.keep_tls_port = False

    def start(self, keep_port=False):
        self.keep_tls_port = keep_port
        return super().start(keep_port)

    def _start_once(self):
        if not (self.keep_tls_port and self.tls_port):
            self.tls_port = free_port()
        return super()._start_once()

    def command(self):
        return super().command() + ["--tls-listen", f"127.0.0.1:{self.tls_port}",
                                    "--tls-cert", self.cert_path, "--tls-key", self.key_path]

    @property
    def tls_base(self):
        return f"https://127.0.0.1:{self.tls_port}"

    def context(self, **kw):
        """A client context that verifies arca's certificate with the test CA."""
        ctx = ssl.create_default_context(cafile=self.ca)
        for name, value in kw.items():
            setattr(ctx, name, value)
        return ctx

    def tls_get(self, path, headers=None, method="GET", timeout=30, context=None):
        """(status, headers, body) of one request over HTTPS."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.tls_port, timeout=timeout,
                                           context=context or self.context())
        return one_request(conn, method, path, headers)

    def tls_fetch(self, url, headers=None, **params):
        return self.tls_get(self.fetch_path(url, **params), headers)

    def tls_status(self):
        """/api/v1/status/ asked over HTTPS."""
        return json.loads(self.tls_get("/api/v1/status/")[2])

    def tls_counters(self):
        """The status's "tls" object (handshakes, resumed, handshake_failures, ...)."""
        return self.status()["tls"]

    def peer_certificate(self, server_hostname="127.0.0.1"):
        """The certificate a new HTTPS connection is shown (verified by the test CA), as
        ssl.getpeercert() gives it."""
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as s:
            with self.context().wrap_socket(s, server_hostname=server_hostname) as t:
                return t.getpeercert()



def cert_subject(peercert):
    """'CN=...' of ssl.getpeercert()'s subject."""
    return ",".join(f"{k}={v}" for rdn in peercert["subject"] for k, v in rdn)


@pytest.fixture(scope="session")
def tls_pki(tls_files):
    """Certificates beside tls_files', made with the openssl CLI (`openssl ca` sets any dates):
    rotated_cert (another subject and serial for 127.0.0.1 and localhost, the same CA, its own
    key rotated_key), other_key (no certificate's), expired_cert and future_cert (server.key's,
    dated 2020 and 2090), broken_cert (PEM armour around garbage); a client CA (client_ca) with
    a client certificate (client_cert, client_key: CN=site-a) and another CA (stranger_ca) with
    its client certificate (stranger_cert, stranger_key: CN=site-b)."""
    d = tempfile.mkdtemp(prefix="arca-pki-")
    src = os.path.dirname(tls_files["ca"])

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    def path(name):
        return os.path.join(d, name)

    for name in ("ca.pem", "ca.key", "san.ext"):
        shutil.copy(os.path.join(src, name), path(name))
    os.mkdir(path("newcerts"))
    open(path("index.txt"), "w").close()
    with open(path("serial"), "w") as f:
        f.write("5300\n")
    with open(path("ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\n"
                "new_certs_dir = newcerts\ncertificate = ca.pem\nprivate_key = ca.key\n"
                "serial = serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
                "default_days = 2\n[any]\ncommonName = supplied\n")

    def sign(csr, out, *dates):
        run("ca", "-batch", "-config", "ca.cnf", "-notext", "-in", csr, "-out", out,
            "-extfile", "san.ext", *dates)

    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "rotated.key", "-out", "rotated.csr",
        "-subj", "/CN=arca rotated")
    sign("rotated.csr", "rotated.pem")
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "other.key")
    run("req", "-new", "-key", os.path.join(src, "server.key"), "-out", "dated.csr",
        "-subj", "/CN=arca dated")
    sign("dated.csr", "expired.pem", "-startdate", "20200101000000Z", "-enddate",
         "20200201000000Z")
    sign("dated.csr", "future.pem", "-startdate", "20900101000000Z", "-enddate",
         "20900201000000Z")
    with open(path("broken.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                "-----END CERTIFICATE-----\n")
    for ca, cn in (("client_ca", "site-a"), ("stranger_ca", "site-b")):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out",
            f"{ca}.pem", "-days", "2", "-subj", f"/CN=arca test {ca.replace('_', ' ')}")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{cn}.key", "-out",
            f"{cn}.csr", "-subj", f"/CN={cn}")
        run("x509", "-req", "-in", f"{cn}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{cn}.pem", "-days", "2")
    yield {**tls_files, "rotated_cert": path("rotated.pem"), "rotated_key": path("rotated.key"),
           "other_key": path("other.key"), "expired_cert": path("expired.pem"),
           "future_cert": path("future.pem"), "broken_cert": path("broken.pem"),
           "client_ca": path("client_ca.pem"), "client_cert": path("site-a.pem"),
           "client_key": path("site-a.key"), "stranger_ca": path("stranger_ca.pem"),
           "stranger_cert": path("site-b.pem"),
           "stranger_key": path("site-b.key")}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start_tls_arca(workdir, tls_files):
    """start_tls_arca(*args, cert=, key=) -> a running TlsArca serving HTTPS with copies of
    `cert` and `key` (tls_files' server certificate unless told); all stopped at teardown."""
    started = []

    def start(*args, cert=None, key=None, data_dir=None, env=None, name="arca"):
        n = len(started)
        cert_path = os.path.join(workdir, f"tls{n}-cert.pem")
        key_path = os.path.join(workdir, f"tls{n}-key.pem")
        shutil.copy(cert or tls_files["cert"], cert_path)
        shutil.copy(key or tls_files["key"], key_path)
        os.chmod(key_path, 0o600)
        a = TlsArca(workdir, args, data_dir or os.path.join(workdir, f"tlsdata{n}"),
                    tls_files["ca"], cert_path, key_path, env=env, name=name)
        started.append(a)
        return a.start()

    yield start
    stop_all(started)
