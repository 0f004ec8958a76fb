"""bench/run's driver: arca against nginx, Varnish and Squid on loopback, interleaved rounds.

Each scenario starts its contenders once, then runs round after round with the contenders in
turn (A B C A B C ...), so that a slow minute of the machine hurts everyone alike. Raw figures go
to OUT/<date>-<scenario>.json, a plot to OUT/<date>-<scenario>.png, and all medians, ranges and
ratios arca/peer to OUT/<date>-summary.md. bench/README.md says what each contender is set to.
"""
import argparse
import atexit
import concurrent.futures
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCA = os.path.join(ROOT, "build", "arca")
# ARCA_BEFORE=path/to/an/older/arca adds it as contender "arca-before": before/after in one run
ARCA_BEFORE = os.environ.get("ARCA_BEFORE")
LOADGEN = os.path.join(ROOT, "build", "arca-loadgen")
FLOOR = os.path.join(ROOT, "build", "arca-floor")
TLSLOAD = os.path.join(ROOT, "build", "arca-tlsload")
MiB = 1 << 20

# The issue's sizes, and a smoke size that only proves the harness still works (.ci/run).
SIZES = {
    "full": dict(rounds=5, large=256 * MiB, large_clients=16, small_seconds=15,
                 cold=1024 * MiB, cold_rate="100m", cold_clients=50, cold_spread=5.0,
                 # the size the issue's reference figures for the peers were measured at
                 cold_ref=dict(cold=256 * MiB, cold_rate="30m", cold_clients=20,
                               cold_spread=2.0),
                 idle=10000, index=[100_000, 1_000_000], index_rounds=5, index_seconds=5,
                 small_rate=20000, index_rate=10000,
                 # origin-bytes: the lab day's artifacts (name, size) and jobs per half-day
                 lab=dict(files=[("Image", 32 * MiB), ("board.dtb", 96 << 10),
                                 ("modules.tar.xz", 64 * MiB), ("rootfs.ext4", 256 * MiB)],
                          jobs=12, ttl=4, rate="100m", confirm_samples=200),
                 # bucket-listing: one folder of that many objects in the suite's S3 (s3rver)
                 listing=dict(objects=10_000, warm_samples=5),
                 # cluster: URLs of 64 KiB through HAProxy to three nodes
                 cluster=dict(urls=3000, size=64 << 10, clients=8, seconds=10),
                 # chaos: expired objects with their origin blackholed; misses to a dead host
                 chaos=dict(objects=10, size=4 * MiB, clients=50, misses=200),
                 # fill: a far origin's per-flow limit (nginx limit_rate per connection)
                 fill=dict(size=1024 * MiB, rate="40m", clients=10, change_size=256 * MiB,
                           change_at=1.5, cap="50m", cap_size=1024 * MiB, cap_seconds=10,
                           hit_size=256 * MiB),
                 # small-beside-large: 4 KiB hits beside readers of a finished object
                 beside=dict(size=1024 * MiB, readers=8, runs=3, idle_seconds=3.0),
                 # tls-*: seconds of each handshake run (full, then resumed), its client
                 # threads, and the idle TLS connections held
                 tls=dict(handshake_seconds=10, handshake_threads=8, idle=2000),
                 # tier: one parent, three children, ten clients on each; the parent killed at
                 # kill_at of its download; a phase still running after timeout s fails. The
                 # origin's limit per connection: arca fills a cold 1 GiB over 4 connections in
                 # 32 MiB pieces, and nginx lets a request's first 1-2 s of bytes out at once
                 # (its clock counts whole seconds), so at 10m a piece takes 2-3 s and the
                 # download ~20 s; the tier's 30 clients then take ~1.6 GB/s off loopback,
                 # which two shared cores carry beside four arcas writing their copies (at
                 # cold-fanout's 100m its clients would measure the copying, not the tier)
                 tier=dict(size=1024 * MiB, rate="10m", children=3, clients=10, kill_at=0.3,
                           timeout=300)),
    "smoke": dict(rounds=1, large=8 * MiB, large_clients=4, small_seconds=1,
                  cold=8 * MiB, cold_rate="20m", cold_clients=5, cold_spread=0.3,
                  cold_ref=dict(cold=4 * MiB, cold_rate="10m", cold_clients=3, cold_spread=0.2),
                  idle=200, index=[2000], index_rounds=1, index_seconds=1,
                  small_rate=1000, index_rate=1000,
                  lab=dict(files=[("Image", 1 * MiB), ("board.dtb", 16 << 10),
                                  ("modules.tar.xz", 512 << 10), ("rootfs.ext4", 4 * MiB)],
                           jobs=3, ttl=2, rate="8m", confirm_samples=20, rounds=1),
                  # CI's smoke run proves the harness works; a contender that failed to hold
                  # every connection once (seen once on a CI machine, cause unknown) gets one
                  # more try there, with the failure printed
                  idle_retries=1,
                  listing=dict(objects=1200, warm_samples=2, rounds=1),
                  cluster=dict(urls=150, size=4096, clients=4, seconds=1, rounds=1),
                  chaos=dict(objects=3, size=256 << 10, clients=6, misses=20),
                  fill=dict(size=96 * MiB, rate="20m", clients=3, change_size=96 * MiB,
                            change_at=1.0, cap="20m", cap_size=64 * MiB, cap_seconds=2,
                            hit_size=16 * MiB, rounds=1),
                  beside=dict(size=32 * MiB, readers=4, runs=1, idle_seconds=0.3),
                  tls=dict(handshake_seconds=1, handshake_threads=4, idle=100),
                  # one connection (no fill): nginx lets a request's first second of bytes out
                  # at once, so the object is 4 s of the limit, its first second below 30 %
                  tier=dict(size=8 * MiB, rate="2m", children=3, clients=4, kill_at=0.3,
                            timeout=30)),
}


def ephemeral_ports():
    """The range the kernel picks connections' own ports from."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


_handed_out = set()


def free_port():
    """A port free now, in 2000-9999: below the kernel's ephemeral range, so that a server that
    takes a second to bind it (squid, varnishd) cannot lose it to the load generators' own
    connections, and below the test suite's (tests/integration/conftest.py: 10000 up to that
    range), which runs beside this one in scripts/test. Else a port the kernel picks."""
    top = min(10000, ephemeral_ports()[0])
    for _ in range(200):
        if top <= 2000:
            break
        port = random.randrange(2000, top)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def said(proc):
    """The end of what a server that spawn() started wrote, for an error message."""
    try:
        with open(proc.log_name, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 600))
            return "; its output ended:\n" + f.read().decode(errors="replace")
    except (AttributeError, TypeError, OSError):
        return ""


def wait_http(url, timeout=30.0, proc=None, context=None):
    """Poll until url answers (any status); returns seconds waited. `context`: an https URL's
    (tls_context)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}{said(proc)}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                r.read()
            return time.monotonic() - t0
        except urllib.error.HTTPError:
            return time.monotonic() - t0
        except OSError:
            time.sleep(0.001)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def process_tree(pid):
    """pid and its descendants (nginx's workers, varnishd's child, squid's kids)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_sum(pid, name, value):
    """Sum value(text of /proc/P/name) over pid's tree; processes that end meanwhile count 0."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/{name}") as f:
                total += value(f.read())
        except (OSError, AttributeError):
            pass
    return total


def rss_kib(pid):
    return tree_sum(pid, "status", lambda t: int(re.search(r"VmRSS:\s+(\d+)", t).group(1)))


def cpu_seconds(pid):
    def ticks(stat):  # utime + stime, counted after the command name, which may hold blanks
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return tree_sum(pid, "stat", ticks) / os.sysconf("SC_CLK_TCK")


def established(port):
    """Server-side ESTABLISHED TCP sockets on a local port."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    n += 1
    return n


# Every server started, so that a scenario that fails half-way (a contender that would not
# start) leaves none running: stop_all() at exit.
_spawned = []


def stop_all():
    for server in reversed(_spawned):
        server.stop()


class Server:
    """A contender (or the origin): started once per scenario, stopped by pid."""
    name = "?"

    tls_port = None  # its HTTPS port (tls-* scenarios), if it has one

    def __init__(self, work):
        self.work = work
        self.port = free_port()
        self.proc = None

    def spawn(self, argv, log):
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _spawned.append(self)
        self.proc.log_name = getattr(log, "name", None)

    @property
    def pid(self):
        return self.proc.pid

    def url(self, origin, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Nginx(Server):
    """nginx serving www/ with sendfile (the origin, and the 'practical limit' peer), or a
    proxy_cache in front of an origin. A contender has no access log (log=False), as no peer
    here has one: until 2026-11-24 nginx's peers wrote a line per request; an origin keeps its
    log, which origin_bytes() and requests() read."""

    def __init__(self, work, name, www=None, origin=None, limit_rate=None, valid="1h",
                 revalidate=False, log=True, tls=None):
        super().__init__(work)
        self.name, self.dir = name, os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "cache"))
        self.access_log = os.path.join(self.dir, "access.log")
        if origin:
            body = f"""proxy_cache_path {self.dir}/cache levels=1:2 keys_zone=arca:64m max_size=16g
                                          inactive=1h use_temp_path=off;
              server {{ listen 127.0.0.1:{self.port} backlog=4096;
                location / {{ proxy_pass http://127.0.0.1:{origin.port};
                  proxy_cache arca; proxy_cache_valid 200 {valid}; proxy_cache_lock on;
                  {"proxy_cache_revalidate on;" if revalidate else ""}
                  proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""
        else:
            rate = f"limit_rate {limit_rate};" if limit_rate else ""
            body = f"""server {{ listen 127.0.0.1:{self.port} backlog=4096; root {www}; {rate} }}"""
            if tls:  # the same files on an HTTPS port too (tls-*): nginx_tls_server says how
                self.tls_port = free_port()
                body += nginx_tls_server(self.tls_port, www, tls)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 2; worker_rlimit_nofile 65536;
pid {self.dir}/nginx.pid; error_log {self.dir}/error.log;
events {{ worker_connections 20000; }}
http {{
  log_format bytes '$request_uri $body_bytes_sent';
  access_log {self.access_log + " bytes" if log else "off"};
  sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 300s;
  client_body_temp_path {self.dir}; proxy_temp_path {self.dir}; fastcgi_temp_path {self.dir};
  uwsgi_temp_path {self.dir}; scgi_temp_path {self.dir};
  {body}
}}
""")
        self.conf = conf
        self.spawn(["nginx", "-c", conf, "-g", "daemon off; user root;"],
                   open(os.path.join(self.dir, "stdout"), "w"))
        wait_http(f"http://127.0.0.1:{self.port}/", proc=self.proc)

    def restart(self):
        """Stopped (every connection cut) and started again on the same port."""
        self.stop()
        self.spawn(["nginx", "-c", self.conf, "-g", "daemon off; user root;"],
                   open(os.path.join(self.dir, "stdout"), "a"))
        wait_http(f"http://127.0.0.1:{self.port}/", proc=self.proc)

    def origin_bytes(self, path=None):
        """Body bytes sent for `path` (a request URI), or for every request when None."""
        total = 0
        with open(self.access_log) as f:
            for line in f:
                uri, sent = line.split()
                total += int(sent) if path is None or uri == path else 0
        return total

    def requests(self):
        with open(self.access_log) as f:
            return sum(1 for _ in f)


    def tls_url(self, origin, path):
        return f"https://127.0.0.1:{self.tls_port}{path}"


class Varnish(Server):
    name = "varnish"

    def __init__(self, work, origin, storage, ttl=3600):
        super().__init__(work)
        d = os.path.join(work, "varnish")
        os.makedirs(d)
        self.spawn(["varnishd", "-F", "-j", "none", "-n", d, "-a", f"127.0.0.1:{self.port}",
                    "-b", f"127.0.0.1:{origin.port}", "-s", f"malloc,{storage}",
                    "-p", f"default_ttl={ttl}", "-p", "timeout_idle=300",
                    "-p", "listen_depth=4096"],
                   open(os.path.join(work, "varnish.log"), "w"))
        wait_http(f"http://127.0.0.1:{self.port}/", proc=self.proc)


class Squid(Server):
    name = "squid"

    def __init__(self, work, origin):
        super().__init__(work)
        d = os.path.join(work, "squid")
        os.makedirs(os.path.join(d, "cache"))
        conf = os.path.join(d, "squid.conf")
        with open(conf, "w") as f:
            f.write(f"""http_port 127.0.0.1:{self.port} accel defaultsite=127.0.0.1:{origin.port} no-vhost
cache_peer 127.0.0.1 parent {origin.port} 0 no-query no-digest originserver name=origin
http_access allow all
cache_dir ufs {d}/cache 16384 16 256
maximum_object_size 4 GB
collapsed_forwarding on
refresh_pattern . 60 20% 4320
client_idle_pconn_timeout 5 minutes
max_filedescriptors 65536
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log none
cache_store_log none
logfile_rotate 0
coredump_dir {d}
netdb_filename none
shutdown_lifetime 1 seconds
""")
        if os.getuid() == 0:
            shutil.chown(d, "proxy"), shutil.chown(os.path.join(d, "cache"), "proxy")
        subprocess.run(["squid", "-z", "-N", "-f", conf], check=True, capture_output=True)
        self.spawn(["squid", "-N", "-f", conf], open(os.path.join(d, "stdout"), "w"))
        wait_http(f"http://127.0.0.1:{self.port}/", proc=self.proc, timeout=60)


class Arca(Server):
    def __init__(self, work, data_dir=None, extra=(), binary=ARCA, name="arca", start=True,
                 access_log="off"):
        super().__init__(work)
        self.name = name
        self.data_dir = data_dir or os.path.join(work, name + "-data")
        self.argv = [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
                     self.data_dir, "--upstream-allow", "127.0.0.0/8", "--quota", "64G",
                     "--max-connections", "20000", "--max-connections-per-ip", "20000",
                     "--idle-timeout", "300s",
                     # no access log, like every peer here (when the build has the option);
                     # warm-small-log gives a file to measure what it costs
                     *(["--access-log", access_log] if has_option(binary, "--access-log")
                       else []),
                     *extra]
        self.log = open(os.path.join(work, name + ".log"), "a")
        if start:
            self.start()

    def start(self):
        t0 = time.monotonic()
        self.spawn(self.argv, self.log)
        wait_http(f"http://127.0.0.1:{self.port}/api/v1/health/", proc=self.proc)
        return time.monotonic() - t0

    def url(self, origin, path):
        return f"http://127.0.0.1:{self.port}/api/v1/fetch/?url=http://127.0.0.1:{origin.port}{path}"

    def tls_url(self, origin, path):
        return (f"https://127.0.0.1:{self.tls_port}/api/v1/fetch/"
                f"?url=http://127.0.0.1:{origin.port}{path}")

    def metric(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics") as r:
            text = r.read().decode()
        return sum(float(v) for k, v in re.findall(r"^(\S+) (\S+)$", text, re.M) if k == name)


def has_option(binary, option):
    """Whether an arca build knows `option` (an ARCA_BEFORE build may predate it)."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True)
    return option in out.stdout + out.stderr


def arcas(work):
    """arca, and the older build to compare it with when ARCA_BEFORE names one."""
    return [Arca(work)] + ([Arca(work, binary=ARCA_BEFORE, name="arca-before")]
                           if ARCA_BEFORE else [])


def fetch_all(url, expect_bytes, context=None):
    """One GET through a contender (warms it); fails loudly on a wrong size. `context`: an https
    URL's (tls_context)."""
    with urllib.request.urlopen(url, timeout=600, context=context) as r:
        n = 0
        while chunk := r.read(1 << 20):
            n += len(chunk)
    if n != expect_bytes:
        raise RuntimeError(f"{url}: {n} bytes, expected {expect_bytes}")


def loadgen(url, clients, spread=0.0, threads=2, timeout=900):
    out = subprocess.run([LOADGEN, "get", url, "--clients", str(clients), "--spread", str(spread),
                          "--threads", str(threads)], capture_output=True, text=True,
                         timeout=timeout, check=True)
    return json.loads(out.stdout)["clients"]


def children_cpu():
    """CPU seconds of this process's finished children (loadgen, wrk) so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loadgen_cpu(pid, url, clients, spread=0.0):
    """loadgen's clients, and the CPU seconds the server `pid` (its tree) spent while they ran."""
    before = cpu_seconds(pid)
    result = loadgen(url, clients, spread)
    return result, cpu_seconds(pid) - before


def check_clients(name, clients, size):
    bad = [c for c in clients if c["status"] != 200 or c["bytes"] != size]
    if bad:
        raise RuntimeError(f"{name}: {len(bad)} of {len(clients)} clients failed, e.g. {bad[0]}")


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


# --- scenarios -----------------------------------------------------------------------------------

def warm_large(work, cfg, www):
    size = cfg["large"]
    write_random(os.path.join(www, "large"), size)
    origin = Nginx(work, "nginx-sendfile", www=www, log=False)
    # arca-sendfile: the other --send-mode, measured so the default is chosen by figures
    peers = [origin, Nginx(work, "nginx-proxy-cache", origin=origin, log=False),
             Varnish(work, origin, "4G"), Squid(work, origin), *arcas(work),
             Arca(work, name="arca-sendfile", extra=("--send-mode", "sendfile"))]
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


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    p99_ms = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, p99_ms, int(errors.group(1)) if errors else 0


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


def wrk_rounds(contenders, origin, cfg, url=None):
    """Warm hits of /small under wrk, each contender in turn, cfg["rounds"] times. `url(s)`: the
    URL to ask contender s (default: its plain one)."""
    url = url or (lambda s: s.url(origin, "/small"))
    rounds = {s.name: [] for s in contenders}
    for _ in range(cfg["rounds"]):
        for s in contenders:
            before = cpu_seconds(s.pid)
            out = subprocess.run(["wrk", "-t2", "-c64", f"-d{cfg['small_seconds']}s",
                                  "--latency", url(s)],
                                 capture_output=True, text=True, check=True).stdout
            cpu = cpu_seconds(s.pid) - before
            rps, p99, errors = parse_wrk(out)
            if errors:
                raise RuntimeError(f"{s.name}: {errors} non-2xx answers under wrk")
            requests = int(re.search(r"(\d+) requests in", out).group(1))
            rounds[s.name].append({"req_per_s": rps, "p99_ms": p99,
                                   "server_cpu_us_per_req": 1e6 * cpu / max(requests, 1)})
    return rounds


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


def rate_run(url, rate, seconds, random_n=0):
    """arca-loadgen's open loop: latency percentiles at a fixed offered rate."""
    argv = [LOADGEN, "rate", url, "--rate", str(rate), "--seconds", str(seconds)]
    if random_n:
        argv += ["--random", str(random_n)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return json.loads(out.stdout)


def probe_start(url, seconds=600.0):
    """arca-loadgen's probe: 4 KiB hits one at a time, each on a new connection, 2 ms apart, until
    `seconds` pass or its stdin closes (probe_end)."""
    return subprocess.Popen([LOADGEN, "probe", url, "--gap-ms", "2", "--seconds", str(seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def probe_end(p, stop=True):
    """The probe's samples, [start (monotonic s), ms], once it is told to stop (`stop`) or has
    run its seconds; a hit that failed fails the round."""
    if not stop:
        p.wait(timeout=600)
    out, _ = p.communicate(input="", timeout=60)
    samples = json.loads(out)["samples"]
    bad = [x for x in samples if not x[2]]
    if bad or not samples:
        raise RuntimeError(f"probe: {len(bad)} of {len(samples)} hits failed")
    return [x[:2] for x in samples]


def percentiles(ms):
    """The median and p99 of a list of latencies (nearest rank, as arca-loadgen's rate mode)."""
    ms = sorted(ms)
    return [ms[int(p * (len(ms) - 1) + 0.5)] for p in (0.5, 0.99)]


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
    beside = ([ms for t, ms in samples if t >= all_in and t + ms / 1e3 <= all_out] or
              [ms for t, ms in samples if t <= last])
    return beside, c["size"] * len(readers), last - first


def beside_round(server, origin, c):
    """A round: the probe alone, then beside the readers c["runs"] times (the readers' share of
    the workers differs from run to run), their hits pooled."""
    alone = probe_start(server.url(origin, "/small"), c["idle_seconds"])
    idle = [ms for _, ms in probe_end(alone, stop=False)]
    beside, size, secs = [], 0, 0.0
    for _ in range(c["runs"]):
        hits, b, t = probe_beside(server, origin, c)
        beside, size, secs = beside + hits, size + b, secs + t
    if not beside:
        raise RuntimeError(f"{server.name}: no probe hit while the readers read")
    (idle50, idle99), (b50, b99) = percentiles(idle), percentiles(beside)
    return {"beside_p50_ms": b50, "beside_p99_ms": b99, "idle_p50_ms": idle50,
            "idle_p99_ms": idle99, "extra_p50_ms": b50 - idle50, "extra_p99_ms": b99 - idle99,
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
    # new connection goes to whichever worker asks epoll first, often one with fewer readers
    peers = arcas(work) + [Arca(work, binary=b, name=n + "-1worker", extra=("--threads", "1"))
                           for b, n in [(ARCA, "arca")] + ([(ARCA_BEFORE, "arca-before")]
                                                            if ARCA_BEFORE else [])]
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
    peers = [Nginx(work, "nginx-proxy-cache", origin=origin, log=False),
             Varnish(work, origin, "8G"),
             Squid(work, origin), *arcas(work)]
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
            for s in peers:
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


def hold_idle(s, url, n, client=(LOADGEN,), port=None):
    """Open n keep-alive connections to contender s, one hit each, and hold them: its RSS while
    they are held, and why not all of them were (None when they were). `client`: the program
    that holds them (arca-loadgen; arca-tlsload with its --ca for HTTPS), `port`: the one they
    go to (default s.port)."""
    held = subprocess.Popen([*client[:1], "idle", url, "--clients", str(n), *client[1:]],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    result = json.loads(held.stdout.readline())
    time.sleep(0.5)
    after, open_now = rss_kib(s.pid), established(port or s.port)
    held.stdin.close()
    held.wait()
    if result["open"] == n and open_now >= n:
        return after, None
    why = (f"{s.name}: {result['open']} answered, {open_now} held of {n} "
           f"(first failure: {result.get('first_error') or 'none'})")
    log = getattr(s, "log", None)
    if log:
        log.flush()
        with open(log.name, errors="replace") as f:
            why += "; its log ends: " + " | ".join(f.read().splitlines()[-5:])
    return after, why


def idle_rounds(peers, cfg, n, scenario, hold):
    """cfg["rounds"] rounds of each peer holding n idle connections (`hold(s)`: hold_idle's
    answer), tried again up to cfg["idle_retries"] times when not all were held. Servers keep
    freed memory (allocators rarely give it back), so every round is measured against the RSS
    each had before the first one: what holding n connections costs."""
    rounds = {s.name: [] for s in peers}
    before = {s.name: rss_kib(s.pid) for s in peers}
    for _ in range(cfg["rounds"]):
        for s in peers:
            for attempt in range(1 + cfg.get("idle_retries", 0)):
                after, why = hold(s)
                time.sleep(1)  # let the server see the closes before the next try
                if not why:
                    break
                print(f"{scenario}: {why}", file=sys.stderr)
            else:
                raise RuntimeError(why)
            rounds[s.name].append({"kib_per_connection": (after - before[s.name]) / n,
                                   "rss_before_kib": before[s.name], "rss_after_kib": after})
    return rounds


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


def make_index(data_dir, count, origin_port):
    """A data dir holding `count` complete 64-byte objects, written the way arca writes them:
    arca creates the schema, the rows and files are filled in here. Like a cache that has run
    for a while: downloaded over 9 days, last used at random since, used 1 to 50 times, a few
    content types. (Rows all used at the same second would come back already in LRU order.)"""
    a = Arca(os.path.dirname(data_dir), data_dir)
    a.stop()
    db = sqlite3.connect(os.path.join(data_dir, "index.sqlite"))
    now, rng = int(time.time()), random.Random(count)
    types = ["application/octet-stream", "application/gzip", "application/x-xz",
             "application/x-tar"]
    rows = []
    for i in range(count):
        url = f"http://127.0.0.1:{origin_port}/obj/{i}"
        key = hashlib.sha256(url.encode()).hexdigest()
        body = f"{i:064d}".encode()
        os.makedirs(os.path.join(data_dir, "objects", key[:2]), exist_ok=True)  # arca's layout
        with open(os.path.join(data_dir, "objects", key[:2], key), "wb") as f:
            f.write(body)
        created = now - rng.randrange(9 * 86400)
        rows.append((key, url, "complete", len(body), rng.choice(types),
                     hashlib.sha256(body).digest(), created, 10 * 86400,
                     rng.randrange(created, now + 1), rng.randrange(1, 51)))
        if len(rows) == 10000 or i == count - 1:
            db.executemany("INSERT INTO objects (key, url, state, length, content_type, sha256,"
                           " created, ttl, last_use, usage) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            rows = []
    db.commit()
    db.close()


def index_round(a, cfg, script):
    """Start arca on its big index; time it, then hit random objects."""
    startup = a.start()
    rss = rss_kib(a.pid)

    def requests():
        return sum(a.metric(f"arca_requests_total{{result=\"{k}\"}}")
                   for k in ("hit", "miss", "coalesced", "error"))

    hits0, req0 = a.metric("arca_requests_total{result=\"hit\"}"), requests()
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{cfg['index_seconds']}s", "--latency", "-s",
                          script, f"http://127.0.0.1:{a.port}"],
                         capture_output=True, text=True, check=True).stdout
    rps, p99, _ = parse_wrk(out)
    hits = a.metric("arca_requests_total{result=\"hit\"}") - hits0
    ratio = hits / max(requests() - req0, 1)  # of wrk's requests, before the rate run adds more
    # the same random hits at a fixed offered rate: the tail without wrk's queueing
    at_rate = rate_run(f"http://127.0.0.1:{a.port}/api/v1/fetch/?url=http://127.0.0.1:"
                       f"{a.dead_port}/obj/", cfg["index_rate"], cfg["index_seconds"], a.count)
    return {"startup_s": startup, "hit_ratio": ratio,
            "req_per_s": rps, "p99_ms": p99, "rss_kib": rss,
            "p99_ms_at_rate": at_rate["p99_ms"], "errors_at_rate": at_rate["errors"]}


def big_index(work, cfg, www):
    dead_port = free_port()  # no origin: anything but a hit fails
    rounds = {}
    for count in cfg["index"]:
        name = f"arca-{count // 1000}k"
        data_dir = os.path.join(work, name)
        t0 = time.monotonic()
        make_index(data_dir, count, dead_port)
        print(f"  {name}: index of {count} objects made in {time.monotonic() - t0:.0f} s",
              flush=True)
        script = os.path.join(work, f"{name}.lua")
        with open(script, "w") as f:
            f.write(f"""math.randomseed(os.time())
request = function()
  return wrk.format(nil, "/api/v1/fetch/?url=http://127.0.0.1:{dead_port}/obj/" ..
                         math.random(0, {count - 1}))
end
""")
        # both binaries on the same data dir, one at a time (it is locked); each round starts them
        contenders = [Arca(work, data_dir, name=name, start=False)]
        if ARCA_BEFORE:
            contenders.append(Arca(work, data_dir, binary=ARCA_BEFORE,
                                   name=f"arca-before-{count // 1000}k", start=False))
        for a in contenders:
            rounds[a.name] = []
            a.dead_port, a.count = dead_port, count
        try:
            for _ in range(cfg["index_rounds"]):
                for a in contenders:
                    rounds[a.name].append(index_round(a, cfg, script))
                    a.stop()
        finally:
            for a in contenders:
                a.stop()
        shutil.rmtree(data_dir)
    return {"metric": "startup_s", "higher_is_better": False, "unit": "s",
            "setup": "arca restarted on an index of small objects, then random hits under "
                     f"wrk -t2 -c64, then at {cfg['index_rate']} req/s offered (open loop)",
            "rounds": rounds}


def cold_fanout_ref(work, cfg, www):
    return cold_fanout(work, cfg | cfg["cold_ref"], www)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


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


# --- origin bytes: a lab day -------------------------------------------------------------------

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


def timed_gets(urls, shas, threads, keep_sha=False):
    """GET each URL (from `threads` threads at once): per request its seconds to the last byte,
    status and whether its body's sha256 is the one expected (shas[i], None: not checked).
    keep_sha: (seconds, status, the body's sha256, whether it came whole) instead."""
    out = [None] * len(urls)

    def one(i):
        t0 = time.monotonic()
        whole = True
        try:
            with urllib.request.urlopen(urls[i], timeout=600) as r:
                status = r.status
                try:
                    body = r.read()
                except http.client.IncompleteRead as e:
                    body, whole = e.partial, False
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        except (ConnectionError, OSError):
            body, status, whole = b"", 0, False
        digest = hashlib.sha256(body).hexdigest()
        if keep_sha:
            out[i] = (time.monotonic() - t0, status, digest, whole)
            return
        out[i] = (time.monotonic() - t0, status, shas[i] is None or digest == shas[i])

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(len(urls))))
    return out


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
    names = (f"parent alone {n}", f"parent alone {n * kids}", f"tier {kids}×{n}",
             "tier, parent killed")  # clients
    rows, failures = {k: [] for k in names}, []
    try:
        for r in range(cfg["rounds"]):
            parent = Arca(work, name=f"parent-{r}", extra=extra)
            children = [Arca(work, name=f"child{i}-{r}",
                             extra=extra + ("--parent", f"http://127.0.0.1:{parent.port}"))
                        for i in range(kids)]
            try:
                phases = (([parent], n, {}), ([parent], n * kids, {}),
                          (children, n * kids, {"children": children}),
                          (children, n * kids, {"children": children, "kill": parent,
                                                "sha": sha}))
                done = []
                for name, (servers, clients, more) in zip(names, phases):
                    row, why = tier_phase(www, origin, servers, f"/tier-{r}-{len(done)}", size,
                                          clients, c, **more)
                    done.append(row)
                    failures += [f"round {r}, {name}: {why}"] if why else []
                for name, row in zip(names, done):
                    row["slowest_vs_parent_alone"] = row["slowest_s"] / done[0]["slowest_s"]
                    rows[name].append(row)
            finally:
                for s in children + [parent]:
                    s.stop()
                    shutil.rmtree(s.data_dir, ignore_errors=True)
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
            for s in peers:
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
    an idle arca."""
    c = cfg["fill"]
    cap = parse_rate(c["cap"])
    for i in range(3):
        write_random(os.path.join(www, f"cold{i}"), c["cap_size"])
        for r in range(c.get("rounds", cfg["rounds"])):  # a new name per round: cold each time
            os.symlink(f"cold{i}", os.path.join(www, f"cold{i}-{r}"))
    write_random(os.path.join(www, "hot"), c["hit_size"])
    for name in ("cold0", "cold1", "cold2", "hot"):  # not modified within an answer's second
        os.utime(os.path.join(www, name), (time.time() - 10, time.time() - 10))
    origin = Nginx(work, "origin", www=www, log=False)
    arca = Arca(work, extra=("--upstream-rate", c["cap"]))
    rows = {"arca": []}
    try:
        for r in range(c.get("rounds", cfg["rounds"])):
            hot = arca.url(origin, "/hot")
            fetch_all(hot, c["hit_size"])
            idle = hit_gbps(hot, c["hit_size"], 2)
            urls = [arca.url(origin, f"/cold{i}-{r}") for i in range(3)]
            threads = [threading.Thread(target=fetch_all, args=(u, c["cap_size"]))
                       for u in urls]
            for t in threads:
                t.start()
            time.sleep(1)
            before, t0 = arca.metric("arca_downloaded_bytes_total"), time.monotonic()
            busy = hit_gbps(hot, c["hit_size"], c["cap_seconds"])
            rate = (arca.metric("arca_downloaded_bytes_total") - before) / \
                (time.monotonic() - t0)
            for t in threads:
                t.join(900)
            rows["arca"].append({"rate_vs_cap": rate / cap, "hit_vs_idle": busy / idle,
                                 "hit_gbps": busy, "idle_hit_gbps": idle})
        return {"metric": "rate_vs_cap", "higher_is_better": True, "unit": "× cap",
                "setup": f"--upstream-rate {c['cap']}, 3 cold downloads of "
                         f"{c['cap_size'] >> 20} MiB (each filled over pieces); the rate over "
                         f"{c['cap_seconds']} s, and a hit of {c['hit_size'] >> 20} MiB beside",
                "rounds": rows}
    finally:
        arca.stop()
        origin.stop()


def parse_rate(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].lower() in units else int(text)


# --- tls-* (issue 53): arca's HTTPS against nginx's, same certificate, ciphers and workers --------

def tls_files(work):
    """One certificate for every contender: ECDSA P-256, signed by a CA made here (openssl CLI),
    for 127.0.0.1 and localhost. Returns the paths of the CA, the certificate and its key."""
    d = os.path.join(work, "tls")
    os.makedirs(d, exist_ok=True)
    f = {k: os.path.join(d, k) for k in ("ca.pem", "ca.key", "cert.pem", "cert.key", "cert.csr",
                                         "ext.cnf")}
    with open(f["ext.cnf"], "w") as ext:
        ext.write("subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n"
                  "keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for argv in (["req", "-x509", *ec, "-keyout", f["ca.key"], "-out", f["ca.pem"], "-days", "7",
                  "-subj", "/CN=arca bench CA"],
                 ["req", "-new", *ec, "-keyout", f["cert.key"], "-out", f["cert.csr"],
                  "-subj", "/CN=localhost"],
                 ["x509", "-req", "-in", f["cert.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
                  "-CAcreateserial", "-out", f["cert.pem"], "-days", "7", "-extfile",
                  f["ext.cnf"]]):
        subprocess.run(["openssl", *argv], check=True, capture_output=True)
    return {"ca": f["ca.pem"], "cert": f["cert.pem"], "key": f["cert.key"]}


def tls12_ciphers():
    """arca's TLS 1.2 cipher list, read from src/tls/tls.c (TLS12_CIPHERS) so that nginx is
    given the same one whatever arca's becomes."""
    with open(os.path.join(ROOT, "src", "tls", "tls.c")) as f:
        m = re.search(r'#define TLS12_CIPHERS((?:\s*\\?\s*"[^"]*")+)', f.read())
    if not m:
        raise RuntimeError("src/tls/tls.c: no TLS12_CIPHERS")
    return "".join(re.findall(r'"([^"]*)"', m.group(1)))


def nginx_tls_server(port, www, tls):
    """nginx's HTTPS server block: arca's protocols and TLS 1.2 ciphers (TLS 1.3's suites are
    OpenSSL's defaults for both), stateless session tickets (OpenSSL's keys, made in the master
    and so shared by both workers) and no session cache, as arca (`off` rather than the default
    `none`: neither stores sessions, `off` also says so in the handshake, as arca's
    SSL_SESS_CACHE_OFF context does). sendfile stays on as for every nginx here: without kernel
    TLS nginx cannot use it on an SSL connection and reads the file into its buffers, which is
    how nginx runs TLS on this kernel."""
    return f"""
              server {{ listen 127.0.0.1:{port} ssl backlog=4096; root {www};
                ssl_certificate {tls["cert"]}; ssl_certificate_key {tls["key"]};
                ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers {tls12_ciphers()};
                ssl_session_tickets on; ssl_session_cache off; }}"""


def tls_context(tls):
    """Python's client context verifying against the bench's CA (warming, checks)."""
    return ssl.create_default_context(cafile=tls["ca"])


def tls_arcas(work, tls):
    """arca on an HTTPS port beside its plain one, `--threads 2` as nginx's two workers, and the
    older build when ARCA_BEFORE names one that has --tls-listen (else it is left out)."""
    builds = [("arca", ARCA)]
    if ARCA_BEFORE and has_option(ARCA_BEFORE, "--tls-listen"):
        builds.append(("arca-before", ARCA_BEFORE))
    elif ARCA_BEFORE:
        print("tls-*: ARCA_BEFORE has no --tls-listen; arca-before left out", flush=True)
    out = []
    for name, binary in builds:
        port = free_port()
        out.append(Arca(work, binary=binary, name=name,
                        extra=("--threads", "2", "--tls-listen", f"127.0.0.1:{port}",
                               "--tls-cert", tls["cert"], "--tls-key", tls["key"])))
        out[-1].tls_port = port
    return out


def tls_contenders(work, www, path, size):
    """nginx serving www/ over HTTPS (and plainly: arca's origin), and arca with www/`path`
    cached, both warmed by one HTTPS GET: (files, origin, contenders)."""
    tls = tls_files(work)
    origin = Nginx(work, "nginx-tls", www=www, log=False, tls=tls)
    peers = [origin]
    try:
        peers += tls_arcas(work, tls)
        for s in peers:
            fetch_all(s.tls_url(origin, path), size, context=tls_context(tls))
    except BaseException:
        for s in reversed(peers):
            s.stop()
        raise
    return tls, origin, peers


TLS_SETUP = ("one ECDSA P-256 certificate (CA made by openssl), TLS 1.2+1.3, arca's TLS 1.2 "
             "ciphers for nginx too, session tickets on and no session cache for both, arca "
             "--threads 2 and nginx worker_processes 2, no access log for either")


def tls_small(work, cfg, www):
    """Issue 53: 4 KiB hits over keep-alive TLS (wrk https://), arca against nginx."""
    write_random(os.path.join(www, "small"), 4096)
    _, origin, peers = tls_contenders(work, www, "/small", 4096)
    try:
        rounds = wrk_rounds(peers, origin, cfg, url=lambda s: s.tls_url(origin, "/small"))
        return {"metric": "req_per_s", "higher_is_better": True, "unit": "req/s",
                "setup": f"4 KiB cached, wrk -t2 -c64 https:// (keep-alive, TLS 1.3), "
                         f"{cfg['small_seconds']} s per round; {TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()


def tlsload_conn(s, url, tls, seconds, threads, resume):
    """arca-tlsload conn against s: its JSON, with the server's and the client's CPU µs a
    connection."""
    before, client_before = cpu_seconds(s.pid), children_cpu()
    out = subprocess.run([TLSLOAD, "conn", url, "--ca", tls["ca"], "--seconds", str(seconds),
                          "--threads", str(threads), *(["--resume"] if resume else [])],
                         capture_output=True, text=True, check=True, timeout=seconds + 120)
    cpu, client_cpu = cpu_seconds(s.pid) - before, children_cpu() - client_before
    r = json.loads(out.stdout)
    mode = "resumed" if resume else "full"
    if r["errors"] or not r["connections"]:
        raise RuntimeError(f"{s.name} ({mode}): {r['errors']} failed connections of "
                           f"{r['errors'] + r['connections']}: {r['first_error']}")
    if resume and r["resumed"] < 0.95 * r["connections"]:
        raise RuntimeError(f"{s.name}: only {r['resumed']} of {r['connections']} resumed")
    r["cpu_us"] = 1e6 * cpu / r["connections"]
    r["client_cpu_us"] = 1e6 * client_cpu / r["connections"]
    return r


def tls_handshake(work, cfg, www):
    """Issue 53: a new TLS 1.3 connection per 4 KiB hit (connect, handshake, GET, the server's
    close), full handshakes then resumed ones (each thread offers its previous session's
    ticket), arca against nginx. The main metric is the full handshakes' rate; the resumed
    rate's ratio is given beside it."""
    write_random(os.path.join(www, "small"), 4096)
    tls, origin, peers = tls_contenders(work, www, "/small", 4096)
    c = cfg["tls"]
    try:
        rounds, spoken = {s.name: [] for s in peers}, set()
        for _ in range(cfg["rounds"]):
            got = {s.name: {} for s in peers}
            for resume in (False, True):
                for s in peers:
                    r = tlsload_conn(s, s.tls_url(origin, "/small"), tls, c["handshake_seconds"],
                                     c["handshake_threads"], resume)
                    spoken.add(f"{r['protocol']} {r['cipher']}")
                    mode = "resumed" if resume else "full"
                    got[s.name].update({f"{mode}_conn_per_s": r["per_s"],
                                        f"{mode}_p99_ms": r["p99_ms"],
                                        f"{mode}_server_cpu_us_per_conn": r["cpu_us"],
                                        f"{mode}_client_cpu_us_per_conn": r["client_cpu_us"]})
                    if resume:
                        got[s.name]["resumed_share"] = r["resumed"] / r["connections"]
            for s in peers:
                rounds[s.name].append(got[s.name])
        if len(spoken) != 1:  # the same protocol and cipher for everyone, or no comparison
            raise RuntimeError(f"tls-handshake: the contenders negotiated {sorted(spoken)}")
        return {"metric": "full_conn_per_s", "higher_is_better": True, "unit": "conn/s",
                "also": ["resumed_conn_per_s"],
                "setup": f"a new connection per 4 KiB hit (arca-tlsload conn, {spoken.pop()}, "
                         f"{c['handshake_threads']} threads, the certificate verified), "
                         f"{c['handshake_seconds']} s full handshakes then "
                         f"{c['handshake_seconds']} s resumed (session tickets) per round; "
                         f"{TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()


def worker_cpu(s):
    """CPU seconds of each of s's workers: arca's arca-http* threads, nginx's worker processes
    (a listener's connections are shared among them by whichever asks first)."""
    def ticks(path):
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    out = []
    try:
        if isinstance(s, Arca):
            for t in sorted(os.listdir(f"/proc/{s.pid}/task")):
                with open(f"/proc/{s.pid}/task/{t}/comm") as f:
                    if f.read().startswith("arca-http"):
                        out.append(ticks(f"/proc/{s.pid}/task/{t}/stat"))
        else:
            out = [ticks(f"/proc/{p}/stat") for p in process_tree(s.pid)[1:]]
    except OSError:
        pass
    return out


def tls_large(work, cfg, www):
    """Issue 53: a cached 256 MiB object to 16 clients at once over TLS (arca-tlsload get): MB/s,
    and the server's CPU per byte (its /proc tree's CPU seconds over the bytes)."""
    size = cfg["large"]
    write_random(os.path.join(www, "large"), size)
    tls, origin, peers = tls_contenders(work, www, "/large", size)
    try:
        rounds = {s.name: [] for s in peers}
        for _ in range(cfg["rounds"]):
            for s in peers:
                before, client_before, workers = cpu_seconds(s.pid), children_cpu(), worker_cpu(s)
                out = subprocess.run([TLSLOAD, "get", s.tls_url(origin, "/large"), "--ca",
                                      tls["ca"], "--clients", str(cfg["large_clients"])],
                                     capture_output=True, text=True, check=True, timeout=900)
                cpu, client_cpu = cpu_seconds(s.pid) - before, children_cpu() - client_before
                workers = [b - a for a, b in zip(workers, worker_cpu(s))]
                res = json.loads(out.stdout)
                clients = res["clients"]
                if res["first_error"]:
                    print(f"tls-large: {s.name}: {res['first_error']}", file=sys.stderr)
                check_clients(s.name, clients, size)
                secs = max(c["done"] for c in clients) - min(c["start"] for c in clients)
                total = size * len(clients)
                # how the clients fell on the two workers: the figures above move with it
                rounds[s.name].append({"mb_per_s": total / secs / 1e6, "seconds": secs,
                                       "server_cpu_ns_per_byte": cpu * 1e9 / total,
                                       "client_cpu_ns_per_byte": client_cpu * 1e9 / total,
                                       "busiest_worker_share": max(workers) / sum(workers)
                                       if workers and sum(workers) else 0})
        return {"metric": "mb_per_s", "higher_is_better": True, "unit": "MB/s",
                "also": ["server_cpu_ns_per_byte"],
                "setup": f"{size >> 20} MiB cached, {cfg['large_clients']} concurrent clients "
                         f"(arca-tlsload get, TLS 1.3); {TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()


def tls_idle(work, cfg, www):
    """Issue 53: idle TLS keep-alive connections, each after one 4 KiB hit: the server's RSS
    growth a connection (its /proc tree), as idle-connections for plain ones."""
    write_random(os.path.join(www, "small"), 4096)
    tls, origin, peers = tls_contenders(work, www, "/small", 4096)
    n = cfg["tls"]["idle"]
    try:
        rounds = idle_rounds(peers, cfg, n, "tls-idle",
                             lambda s: hold_idle(s, s.tls_url(origin, "/small"), n,
                                                 client=(TLSLOAD, "--ca", tls["ca"]),
                                                 port=s.tls_port))
        return {"metric": "kib_per_connection", "higher_is_better": False, "unit": "KiB",
                "setup": f"{n} idle TLS 1.3 keep-alive connections after one 4 KiB hit each "
                         f"(arca-tlsload idle); {TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()


SCENARIOS = {"warm-large": warm_large, "warm-small": warm_small,
             "warm-small-log": warm_small_log, "warm-small-floor": warm_small_floor,
             "warm-small-rules": warm_small_rules,
             "cold-fanout": cold_fanout,
             "cold-fanout-ref": cold_fanout_ref, "cold-fanout-digest": cold_fanout_digest,
             "digest-fanout": digest_fanout,
             "idle-connections": idle_connections, "big-index": big_index,
             "warm-small-rate": warm_small_rate, "origin-bytes": origin_bytes_scenario,
             "bucket-listing": bucket_listing, "cluster": cluster_scenario, "chaos": chaos,
             "fill": fill_scenario, "fill-change": fill_change, "uplink-cap": uplink_cap,
             "small-beside-large": small_beside_large,
             "tls-small": tls_small, "tls-handshake": tls_handshake, "tls-large": tls_large,
             "tls-idle": tls_idle, "tier": tier}


def write_random(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MiB))
            f.write(chunk)
            left -= len(chunk)


# --- reporting -----------------------------------------------------------------------------------

def summarize(result):
    """Per contender: summary of every numeric field; ratios arca/peer on the main metric."""
    result["summary"] = {name: {k: summary([r[k] for r in rs]) for k in rs[0]}
                         for name, rs in result["rounds"].items()}
    m = result["metric"]
    if "arca" in result["summary"]:
        a = result["summary"]["arca"][m]["median"]
        result["ratios"] = {f"arca/{n}": a / s[m]["median"] for n, s in result["summary"].items()
                            if n != "arca" and s[m]["median"]}
        # a scenario with more than one figure the issue sets a bound on names them in "also"
        result["more_ratios"] = {
            f: {f"arca/{n}": result["summary"]["arca"][f]["median"] / s[f]["median"]
                for n, s in result["summary"].items() if n != "arca" and s[f]["median"]}
            for f in result.get("also", [])}
    return result


def markdown(results, cfg_name, date):
    lines = [f"# arca bench — {date} ({cfg_name} size)", "",
             f"Machine: {os.cpu_count()} CPUs, {os.uname().release}; everything on loopback, "
             "clients on the same cores. Median (min–max) over rounds.", ""]
    for name, res in results.items():
        lines += [f"## {name}", "", res["setup"], ""]
        fields = list(next(iter(res["summary"].values())).keys())
        lines.append("| contender | " + " | ".join(fields) + " |")
        lines.append("|---" * (len(fields) + 1) + "|")
        for who, s in res["summary"].items():
            cells = [f"{s[f]['median']:.4g} ({s[f]['min']:.4g}–{s[f]['max']:.4g})" for f in fields]
            lines.append(f"| {who} | " + " | ".join(cells) + " |")
        if res.get("ratios"):
            better = "higher" if res["higher_is_better"] else "lower"
            lines += ["", f"Ratios on {res['metric']} ({better} is better for arca): " +
                      ", ".join(f"{k} = {v:.2f}" for k, v in res["ratios"].items())]
        for field, ratios in res.get("more_ratios", {}).items():
            lines += ["", f"Ratios on {field}: " +
                      ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items())]
        if res.get("failures"):
            lines += ["", "Failed: " + "; ".join(res["failures"])]
        lines.append("")
    return "\n".join(lines)


def plot(res, name, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m, s = res["metric"], res["summary"]
    names = list(s)
    med = [s[n][m]["median"] for n in names]
    lo = [s[n][m]["median"] - s[n][m]["min"] for n in names]
    hi = [s[n][m]["max"] - s[n][m]["median"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(names, med, yerr=[lo, hi], capsize=4,
                  color=["#c0392b" if n.startswith("arca") else "#7f8c8d" for n in names])
    ax.bar_label(bars, labels=[f"{v:.3g}" for v in med], padding=3)
    ax.set_ylabel(f"{m} ({res['unit']}, {'higher' if res['higher_is_better'] else 'lower'} "
                  "is better)")
    ax.set_title(f"{name}: {res['setup']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    atexit.register(stop_all)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round (for .ci/run)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS), metavar="SCENARIO",
                    help="any of: " + ", ".join(SCENARIOS))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    cfg_name = "smoke" if args.smoke else "full"
    cfg = dict(SIZES[cfg_name])
    if args.rounds:
        cfg["rounds"] = cfg["index_rounds"] = args.rounds
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    os.makedirs(args.out, exist_ok=True)
    date = datetime.date.today().isoformat()
    work = tempfile.mkdtemp(prefix="arca-bench-")
    os.chmod(work, 0o755)  # nginx, varnish and squid workers read and write below it
    ran, failed = False, []
    try:
        for name in args.scenarios:
            t0 = time.monotonic()
            print(f"{name}: running", flush=True)
            sdir = os.path.join(work, name)
            os.makedirs(os.path.join(sdir, "www"))
            res = summarize(SCENARIOS[name](sdir, cfg, os.path.join(sdir, "www")))
            res["size"] = cfg_name
            with open(os.path.join(args.out, f"{date}-{name}.json"), "w") as f:
                json.dump(res, f, indent=1)
            plot(res, name, os.path.join(args.out, f"{date}-{name}.png"))
            print(f"{name}: done in {time.monotonic() - t0:.0f} s; " +
                  ", ".join(f"{k} {v:.2f}" for k, v in res.get("ratios", {}).items()), flush=True)
            shutil.rmtree(sdir)
            ran = True
            # a scenario that counts its failures (tier) has its figures written, then fails
            failed += [f"{name}: {why}" for why in res.get("failures", [])]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if ran:
            print(write_summary(args.out, date, cfg_name))
    if failed:
        print("failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


def write_summary(out, date, cfg_name):
    """The day's summary covers every scenario with results of that date and size in `out`."""
    results = {}
    for name in SCENARIOS:
        try:
            with open(os.path.join(out, f"{date}-{name}.json")) as f:
                res = json.load(f)
        except FileNotFoundError:
            continue
        if res.get("size") == cfg_name:
            results[name] = res
    text = markdown(results, cfg_name, date)
    with open(os.path.join(out, f"{date}-summary.md"), "w") as f:
        f.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
