"""What every bench scenario shares: the binaries and sizes, free ports, process and CPU
accounting, the contenders as servers (nginx, Varnish, Squid, arca) stopped at exit, the load
generators' runs and the summary of a list of figures. A scenario is a function
(work, cfg, www) -> result, registered in bench.py; bench/README.md says what each measures."""
import concurrent.futures
import contextlib
import glob
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
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCA = os.path.join(ROOT, "build", "arca")
# ARCA_BEFORE=path/to/an/older/arca adds it as contender "arca-before": before/after in one run
ARCA_BEFORE = os.environ.get("ARCA_BEFORE")
# the size of each object in big-index's stores and the maintenance rounds' (issue 70: 4 KiB hits)
INDEX_OBJECT_BYTES = 4096
LOADGEN = os.path.join(ROOT, "build", "arca-loadgen")
FLOOR = os.path.join(ROOT, "build", "arca-floor")
TLSLOAD = os.path.join(ROOT, "build", "arca-tlsload")
MiB = 1 << 20
# The sizes, and a smoke size that only proves the harness still works (scripts/test).
SIZES = {
    "full": dict(rounds=5, large=256 * MiB, large_clients=16, small_seconds=15,
                 cold=1024 * MiB, cold_rate="100m", cold_clients=50, cold_spread=5.0,
                 # the size the reference figures for the peers were measured at
                 cold_ref=dict(cold=256 * MiB, cold_rate="30m", cold_clients=20,
                               cold_spread=2.0),
                 idle=10000, index=[10_000, 200_000, 1_000_000], index_rounds=5, index_seconds=5,
                 # big-index's maintenance phase, each build in turn: its p99s move by 2-4x
                 # from one round to the next on this machine
                 maintenance_rounds=3,
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
                 beside=dict(size=1024 * MiB, readers=6, runs=3, idle_seconds=3.0),
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
                           timeout=300),
                 # purge-prefix: objects under the prefix, others hit meanwhile at `rate`
                 purge=dict(objects=100_000, others=10_000, rate=5000, seconds=4, rounds=3),
                 # remotes: a signed apt repository over HTTPS of `packages` packages, sizes
                 # growing geometrically from `smallest` to `largest`; `clients` apt-get at
                 # once, warm downloads repeated for `warm_seconds`; metadata fresh for `ttl` s
                 # in every cache (approx's can only be 30 s plus whole minutes)
                 remotes=dict(packages=50, smallest=20 << 10, largest=2 * MiB, clients=20,
                              warm_seconds=6, ttl=30),
                 # registry: one image of `layers` equal layers in docker-registry behind nginx
                 # at `rate` per connection; `clients` pulls at once, cold then warm
                 registry=dict(image=1024 * MiB, layers=5, rate="10m", clients=20,
                               warm_seconds=15,
                               # issue 68's outage round: `images` images sharing the `base`
                               # layers, a layer of `own` each; `pulls` at once per phase
                               outage=dict(images=5, base=[8 * MiB] * 3, own=4 * MiB,
                                           pulls=20))),
    "smoke": dict(rounds=1, large=8 * MiB, large_clients=4, small_seconds=1,
                  cold=8 * MiB, cold_rate="20m", cold_clients=5, cold_spread=0.3,
                  cold_ref=dict(cold=4 * MiB, cold_rate="10m", cold_clients=3, cold_spread=0.2),
                  idle=200, index=[500, 2000], index_rounds=1, index_seconds=1, maintenance_rounds=1,
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
                            timeout=30),
                  purge=dict(objects=2000, others=200, rate=500, seconds=2, rounds=1),
                  remotes=dict(packages=5, smallest=4 << 10, largest=256 << 10, clients=3,
                               warm_seconds=0.5, ttl=2),
                  registry=dict(image=8 * MiB, layers=5, rate="4m", clients=4,
                                warm_seconds=1,
                                outage=dict(images=5, base=[256 << 10] * 3, own=128 << 10,
                                            pulls=10))),
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

def anon_kib(pid):
    """Its anonymous resident memory (heap, tables), not its mapped files; nan when the kernel
    does not say (RssAnon: Linux 4.5) or the process has gone."""
    kib = tree_sum(pid, "status", lambda t: int(re.search(r"RssAnon:\s+(\d+)", t).group(1)))
    return kib if kib > 0 else float("nan")

def memory_floor_s(kib):
    """arca-floor --memory: the seconds this machine takes to give two threads `kib` of fresh
    memory (bench/floor.c), nan without a figure (none to give, or the floor failed)."""
    if not kib > 0:  # nan too
        return float("nan")
    try:
        out = subprocess.run([FLOOR, "--memory", str(int(kib))], capture_output=True,
                             text=True, timeout=60)
        return float(out.stdout) if out.returncode == 0 else float("nan")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return float("nan")

def cpu_seconds(pid):
    def ticks(stat):  # utime + stime, counted after the command name, which may hold blanks
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return tree_sum(pid, "stat", ticks) / os.sysconf("SC_CLK_TCK")

def warm_pages(directory):
    """Every file below `directory` read once: its pages in memory before a round of random hits
    over it, as a store hit all day keeps them. This machine's kernel pages out what went
    untouched for a minute (DAMON's pageout scheme, pageout_paused): between two rounds a
    million files' pages went to the disk, and random hits read them back whoever served them
    (nginx-static served a million files at 0.71 of its rate on ten thousand)."""
    find = subprocess.Popen(["find", directory, "-type", "f", "-print0"], stdout=subprocess.PIPE)
    subprocess.run(["xargs", "-0", "-P2", "-n1000", "cat"], stdin=find.stdout,
                   stdout=subprocess.DEVNULL, check=True)
    find.stdout.close()
    if find.wait() != 0:
        raise RuntimeError(f"find {directory} failed")

DAMON_STATES = "/sys/kernel/mm/damon/admin/kdamonds/*/state"

@contextlib.contextmanager
def pageout_paused(wanted=True):
    """This machine's kernel runs DAMON with a pageout scheme (a VM's memory saving, not a lab
    server's setting): file pages in memory regions touched at most once in 5 s for a minute are
    paged out, up to 128 MiB a second. Random hits over a million files touch each one every
    20-100 s, so from a minute after warm_pages their pages went out under the hits, whichever
    server had them (2026-11-30: 5 % of a million files out of memory right after a warm pass of
    60 s, by mincore; the hits' profile showed the virtio disk's doorbell). Paused meanwhile
    where this process may (root) and `wanted`, each kdamond it turned off turned on again after
    (said on stderr both times: a SIGKILL between leaves it off, `echo on` to the path restores
    it); yields how many it paused."""
    paused = []
    try:
        for state in sorted(glob.glob(DAMON_STATES)) if wanted else []:
            with open(state) as f:
                if f.read().strip() != "on":
                    continue  # off already: left as it is
            paused.append(state)  # before the write: an interrupt meanwhile still restores it
            try:
                with open(state, "w") as f:
                    f.write("off")
            except OSError:
                paused.pop()  # not root: the scenario runs as the machine is
                continue
            print(f"  pageout paused: {state}", file=sys.stderr, flush=True)
        yield len(paused)
    finally:
        for state in paused:
            try:
                with open(state, "w") as f:
                    f.write("on")
                print(f"  pageout on again: {state}", file=sys.stderr, flush=True)
            except OSError as e:
                print(f"  pageout NOT on again ({e}): echo on > {state}", file=sys.stderr,
                      flush=True)

def settled(a, t0, idle=0.02, timeout=180):
    """Seconds from t0 until arca is idle (under `idle` of a core over a second): the work a
    start leaves to do after the load (the orphan sweep, a clean close's deferred check) is
    over, and what follows measures the store as a lab's runs the rest of the day."""
    last = cpu_seconds(a.pid)
    while time.monotonic() - t0 < timeout:
        time.sleep(1.0)
        now = cpu_seconds(a.pid)
        if now - last < idle:
            return time.monotonic() - t0 - 1.0
        last = now
    raise RuntimeError(f"{a.name}: still busy {timeout} s after its start")

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
    """nginx serving www/ with sendfile (the origin, and the 'practical limit' peer), a
    proxy_cache in front of an origin, or (relay) a server relaying another as it answers, no
    cache, buffered in memory only. A contender has no access log (log=False), as no peer
    here has one: until 2026-11-24 nginx's peers wrote a line per request; an origin keeps its
    log, which origin_bytes() and requests() read. limit_rate: each connection's. log_format:
    the log line's fields, the request URI and body bytes sent first (origin_bytes reads those).
    workers: its worker processes (2, one a core here)."""

    def __init__(self, work, name, www=None, origin=None, limit_rate=None, valid="1h",
                 revalidate=False, log=True, tls=None, relay=None,
                 log_format="$request_uri $body_bytes_sent", workers=2):
        super().__init__(work)
        self.name, self.dir = name, os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "cache"))
        self.access_log = os.path.join(self.dir, "access.log")
        rate = f"limit_rate {limit_rate};" if limit_rate else ""
        if relay:
            body = f"""server {{ listen 127.0.0.1:{self.port} backlog=4096; {rate}
                location / {{ proxy_pass http://127.0.0.1:{relay.port}; proxy_max_temp_file_size 0;
                  proxy_set_header Host $http_host; proxy_http_version 1.1;
                  proxy_set_header Connection ""; }} }}"""
        elif origin:
            body = f"""proxy_cache_path {self.dir}/cache levels=1:2 keys_zone=arca:64m max_size=16g
                                          inactive=1h use_temp_path=off;
              server {{ listen 127.0.0.1:{self.port} backlog=4096;
                location / {{ proxy_pass http://127.0.0.1:{origin.port};
                  proxy_cache arca; proxy_cache_valid 200 {valid}; proxy_cache_lock on;
                  {"proxy_cache_revalidate on;" if revalidate else ""}
                  proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""
        else:
            body = f"""server {{ listen 127.0.0.1:{self.port} backlog=4096; root {www}; {rate} }}"""
            if tls:  # the same files on an HTTPS port too (tls-*): nginx_tls_server says how
                self.tls_port = free_port()
                body += nginx_tls_server(self.tls_port, www, tls)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes {workers}; worker_rlimit_nofile 65536;
pid {self.dir}/nginx.pid; error_log {self.dir}/error.log;
events {{ worker_connections 20000; }}
http {{
  log_format bytes '{log_format}';
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
                uri, sent = line.split()[:2]
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

def arcas(work, extra=()):
    """arca, and the older build to compare it with when ARCA_BEFORE names one, both started
    with `extra`."""
    return [Arca(work, extra=extra)] + (
        [Arca(work, binary=ARCA_BEFORE, name="arca-before", extra=extra)] if ARCA_BEFORE else [])

def in_turn(builds, r):
    """arcas()'s builds in round r's order: each goes first every other round. Whoever follows
    another's cold 1 GiB meets its writeback: in a fixed order the same code path looked 1.15x
    slower (cold-fanout-digest), and cold-fanout's 1.34x was not there alternated."""
    return builds if r % 2 == 0 else builds[::-1]

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

def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    p99_ms = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rps, p99_ms, int(errors.group(1)) if errors else 0

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

def rate_run(url, rate, seconds, random_n=0):
    """arca-loadgen's open loop: latency percentiles at a fixed offered rate."""
    argv = [LOADGEN, "rate", url, "--rate", str(rate), "--seconds", str(seconds)]
    if random_n:
        argv += ["--random", str(random_n)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return json.loads(out.stdout)

def percentiles(ms):
    """The median and p99 of a list of latencies (nearest rank, as arca-loadgen's rate mode)."""
    ms = sorted(ms)
    return [ms[int(p * (len(ms) - 1) + 0.5)] for p in (0.5, 0.99)]

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

def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()

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

def write_random(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MiB))
            f.write(chunk)
            left -= len(chunk)
