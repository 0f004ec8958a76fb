"""Several arca nodes behind the real HAProxy (Debian's), configured by the file arca ships:
contrib/haproxy/haproxy.cfg with only its addresses changed (listening port, the nodes, the
runtime socket, logs to a file). Started and stopped by PID, like every server here."""

import csv
import io
import os
import re
import socket
import subprocess
import time
import http.client

from conftest import ROOT, free_port

CONTRIB = os.path.join(ROOT, "contrib", "haproxy", "haproxy.cfg")
HAPROXY = "/usr/sbin/haproxy"


class HAProxy:
    """log_requests=False: errors only, no line per request (bench/run's cluster scenario)."""

    def __init__(self, workdir, nodes, log_requests=True):
        if not os.path.exists(HAPROXY):
            raise RuntimeError("haproxy missing: run scripts/deps test")
        self.sock = os.path.join(workdir, "haproxy.sock")
        self.log_path = os.path.join(workdir, "haproxy.log")
        self.cfg = os.path.join(workdir, "haproxy.cfg")
        self.log_requests = log_requests
        for _ in range(3):  # a port a parallel scenario took first: other ports
            if self._start(nodes):
                return
        raise RuntimeError("haproxy: its ports were taken three times")

    def _start(self, nodes):
        self.port, self.stats_port = free_port(), free_port()
        with open(CONTRIB) as f:
            text = f.read()
        servers = "".join(f"    server node{i + 1} 127.0.0.1:{n.port}\n" for i, n in enumerate(nodes))
        text, n = re.subn(r"(    server node\d+ \S+\n)+", servers, text)
        assert n == 1, "contrib/haproxy/haproxy.cfg: its server lines moved"
        for old, new in (
                # SO_REUSEPORT would let a parallel scenario's haproxy bind the same port and
                # take half our clients; without it a taken port is "cannot bind socket"
                ("log /dev/log local0", "log stdout format raw local0\n    noreuseport"),
                         ("stats socket /run/haproxy/admin.sock", f"stats socket {self.sock}"),
                         ("bind :8001", f"bind 127.0.0.1:{self.port}"),
                         ("bind 127.0.0.1:8404", f"bind 127.0.0.1:{self.stats_port}"),
                         ("req.hdr(host) -i cache cache:8001",
                          f"req.hdr(host) -i 127.0.0.1:{self.port}")):
            assert old in text, old
            text = text.replace(old, new)
        if not self.log_requests:
            text = text.replace("option httplog", "option dontlog-normal")
        with open(self.cfg, "w") as f:
            f.write(text)
        self.log = open(self.log_path, "ab")
        logged = self.log.tell()
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.all_up(len(nodes)):
            if self.proc.poll() is not None and "cannot bind socket" in self.read_log()[logged:]:
                self.log.close()
                return False
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start: " + self.read_log()[-2000:])
            time.sleep(0.1)
        return True

    def command(self, line):
        """One command on HAProxy's runtime API (the stats socket)."""
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out.decode()
        finally:
            s.close()

    def states(self):
        """{"node1": "UP", ...} as HAProxy sees the nodes now."""
        try:
            text = self.command("show stat")
        except OSError:
            return {}
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {r["svname"]: r["status"] for r in rows
                if r["pxname"] == "arca" and r["svname"].startswith("node")}

    def all_up(self, n):
        st = self.states()
        return len(st) == n and all(v == "UP" for v in st.values())

    def wait_state(self, node, want, timeout=10):
        """Seconds until HAProxy shows `node` in state `want` (UP, DOWN, ...)."""
        t0 = time.monotonic()
        while not self.states().get(node, "").startswith(want):
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{node} not {want} after {timeout} s: {self.states()}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def get(self, path, source="127.0.0.1", headers=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0))
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            try:
                body = resp.read()
            except http.client.IncompleteRead as e:
                body = e.partial
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def on_node(node):
    """The URLs a node holds complete, from its resources listing (25 a page)."""
    import json
    urls, page = set(), 1
    while True:
        status, _, body = node.get(f"/api/v1/resources/?state=successes&page={page}")
        assert status == 200, body
        doc = json.loads(body)
        urls |= {r["url"] for r in doc["resources"]}
        if page >= doc["pages"]:
            return urls
        page += 1
