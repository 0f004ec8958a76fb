"""nginx as an HTTPS origin of the remotes' scenarios (issue 69: apt, Go, PyPI): one nginx
process serving one or several server blocks, each on a free port of its loopback address with
its own access log. What the scenarios' helpers (aptrepo.py, goproxy.py, pypiindex.py) share:
the config, the start (another port when a parallel scenario took the chosen one first), the
error log when it fails, the access logs read back, the stop.

The caller gives what differs: what each server serves (a root, or directives of its own:
`location`s), the access log's format, lines of the http block (`map`s, `types`), the
certificate (conftest's tls_files, or a (cert, key) pair of its own).

No network: every server listens on a loopback address; stop() ends the process and removes the
directory it made."""

import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

from conftest import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# what nginx writes when a port it was given is taken (it exits after a few tries)
PORT_TAKEN = "Address already in use"


class Nginx:
    """nginx serving over HTTPS, as one process (master_process off: its PID is all there is
    to stop, and one process answers requests in turn, so a request logged means those
    answered before it are logged too).

    tls: conftest's tls_files ({"cert", "key", "ca"}) or a (cert, key) pair. Either `root`
    (one server, "main", on 127.0.0.1 serving that directory) or `servers`: {name: (address,
    directives)}, directives a string or a function of the server's port (chosen at each start)
    giving its lines beside listen, TLS and the access log. log_format: what follows `log_format
    NAME` (e.g. `'$status $request_uri'`); http: more lines of the http block. where: the
    directory for the config and logs (made; left to its owner); else a temp dir removed at
    stop()."""

    def __init__(self, tls, root=None, servers=None, log_format="'$status $request_uri'",
                 http="", where=None):
        assert (root is None) != (servers is None), "a root or servers"
        self.servers = servers or {"main": ("127.0.0.1", f"root {root};")}
        self.cert, self.key = (tls["cert"], tls["key"]) if isinstance(tls, dict) else tls
        self.ca = tls.get("ca") if isinstance(tls, dict) else None
        self.log_format, self.http = log_format, http
        self.own_dir = where is None
        self.dir = tempfile.mkdtemp(prefix="arca-nginx-") if where is None else where
        os.makedirs(self.dir, exist_ok=True)
        self.proc, self.ports = None, {}
        try:
            for _ in range(3):  # a port a parallel scenario's server took first: others
                if self._start():
                    return
            raise RuntimeError("nginx: its ports were taken three times")
        except BaseException:
            self.stop()
            raise

    def _server(self, name):
        address, directives = self.servers[name]
        port = self.ports[name]
        lines = directives(port) if callable(directives) else directives
        return f"""
  server {{
    listen {address}:{port} ssl;
    ssl_certificate {self.cert}; ssl_certificate_key {self.key};
    access_log {self.log_path(name)} arca;
    {lines}
  }}"""

    def _config(self):
        # root's nginx reads the scenarios' 0700 directories as root
        user = "user root;" if os.geteuid() == 0 else ""
        temp = " ".join(f"{t}_temp_path {self.dir}/{t};" for t in
                        ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        servers = "".join(self._server(name) for name in self.servers)
        return f"""daemon off; master_process off; {user}
pid {self.dir}/nginx.pid; error_log {self.dir}/error.log;
events {{ worker_connections 256; }}
http {{
  log_format arca {self.log_format};
  default_type application/octet-stream;
  {temp}
  {self.http}{servers}
}}
"""

    def _start(self):
        """Started on new free ports: True once it listens (it writes its pid file once every
        socket is bound), False when a port was taken first; raises on any other failure."""
        self.ports = {name: free_port(address) for name, (address, _) in self.servers.items()}
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self._config())
        for name in ("error.log", "stderr", "nginx.pid"):  # this start's, not the one before
            if os.path.exists(os.path.join(self.dir, name)):
                os.unlink(os.path.join(self.dir, name))
        with open(os.path.join(self.dir, "stderr"), "wb") as err:
            self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-e", "error.log", "-c", conf],
                                         stdout=err, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(self.dir, "nginx.pid")):
            if self.proc.poll() is not None:
                self.proc = None
                if PORT_TAKEN in self.errors():
                    return False
                raise RuntimeError(f"nginx did not start: {self.errors()[-800:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start within 10 s: {self.errors()[-800:]}")
            time.sleep(0.01)
        return True

    def errors(self):
        """What nginx said of its start and since: its error log and its stderr."""
        text = ""
        for name in ("error.log", "stderr"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def _name(self, name):
        return name if name is not None else next(iter(self.servers))

    @property
    def port(self):
        """The port of the (first) server."""
        return self.ports[self._name(None)]

    def url(self, path="/", name=None):
        """https://ADDRESS:PORT`path` of server `name` (the first unless told)."""
        name = self._name(name)
        return f"https://{self.servers[name][0]}:{self.ports[name]}{path}"

    def context(self):
        """A client's TLS context trusting the CA of tls_files."""
        return ssl.create_default_context(cafile=self.ca)

    def log_path(self, name=None):
        """The access log of server `name`."""
        return os.path.join(self.dir, f"{self._name(name)}.log")

    def lines(self, name=None):
        """The lines of server `name`'s access log so far (nginx writes one as a response's last
        byte went out: its client may have it a moment before)."""
        try:
            with open(self.log_path(name), encoding="utf-8", errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def stop(self):
        """The process ended (TERM, then KILL after 10 s), the temp dir removed. Idempotent."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
