"""What the outside review of issue 53's HTTPS listener found (on aff6270), each a scenario that
failed then:

- a pipelining client whose requests reach arca in two bursts over TLS got no answer to the
  second burst until the idle timeout closed the connection (io.c's stale `tls_drained`);
- a FIFO named by --tls-cert hung check-config and start, and at SIGHUP the main thread, after
  which SIGTERM no longer stopped arca;
- a site's issuing CA (an intermediate) alone in --tls-client-ca admitted nobody, not even that
  site's clients;
- a client certificate whose subject is long lost its CN from the access log."""

import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import ARCA_BIN, free_port, wait_for

REQ = b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\n\r\n"


class RawTls:
    """A TLS client over memory BIOs on a plain socket: the test chooses which records go in
    which TCP write, so that OpenSSL's read-ahead on arca's side finds exactly what it is given."""

    def __init__(self, arca):
        self.sock = socket.create_connection(("127.0.0.1", arca.tls_port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = arca.context().wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                assert data, "arca closed the handshake"
                self.inc.write(data)
        self.flush()

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def records(self, *plaintexts):
        """Each plaintext sealed in a record of its own, all sent in one write."""
        for p in plaintexts:
            self.obj.write(p)
        self.flush()

    def answers_within(self, want, seconds):
        """How many "HTTP/1.1 200" answers come before `seconds` pass without one (or `want`)."""
        got, buf, last = 0, b"", time.monotonic()
        while got < want and time.monotonic() - last < seconds:
            try:
                data = self.obj.read(65536)
            except ssl.SSLWantReadError:
                self.sock.settimeout(max(0.001, seconds - (time.monotonic() - last)))
                try:
                    raw = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if not raw:
                    break
                self.inc.write(raw)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            buf += data
            n = buf.count(b"HTTP/1.1 200")
            if n:
                got += n
                buf = buf[buf.rfind(b"HTTP/1.1 200") + 12:]
                last = time.monotonic()
        return got


def test_pipelined_requests_that_arrive_in_two_bursts_are_all_answered(origin, start_tls_arca):
    """Burst 1: a request arca answers slowly (a miss from an origin sending 2 KB/s) and a second
    one, each in its own record, in one TCP write: arca's read-ahead takes both, its first
    SSL_read is short (the socket is empty: tls_drained), the second record waits in OpenSSL.
    Burst 2 comes while the slow answer is prepared: its EPOLLIN edge sets can_read. Once the
    first answer is out, arca reads the second record out of OpenSSL's buffer with no socket read,
    and the stale tls_drained clears can_read: burst 2 stays in the kernel, with no edge to come.
    What should happen: 3 answers at once. What happens: 2, then nothing until the idle timeout
    (here 20 s) closes the connection."""
    slow = origin.add("/slow", data=b"s" * 3000, rate=2000, chunk=500)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--idle-timeout", "20s")
    c = RawTls(arca)
    c.records(f"GET {arca.fetch_path(slow)} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), REQ)
    # the next burst comes while arca waits on the origin
    wait_for(lambda: origin.counts["/slow"] == 1, "arca asks the origin for the slow answer")
    c.records(REQ)
    assert c.answers_within(3, seconds=6) == 3


def test_a_fifo_as_tls_cert_is_refused_in_one_line_not_waited_on(workdir, tls_files):
    fifo = os.path.join(workdir, "cert.pem")
    os.mkfifo(fifo)
    args = ["--listen", f"127.0.0.1:{free_port()}", "--tls-listen", f"127.0.0.1:{free_port()}",
            "--tls-cert", fifo, "--tls-key", tls_files["key"],
            "--data-dir", os.path.join(workdir, "data")]
    try:
        p = subprocess.run([ARCA_BIN, "check-config", *args], capture_output=True, text=True,
                           timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("check-config waits forever on a FIFO named by --tls-cert")
    assert p.returncode != 0 and p.stderr.count("\n") == 1 and fifo in p.stderr, p.stderr


def test_sigterm_still_stops_arca_after_a_sighup_that_finds_a_fifo(start_tls_arca):
    arca = start_tls_arca()
    os.remove(arca.cert_path)
    os.mkfifo(arca.cert_path)
    arca.proc.send_signal(signal.SIGHUP)
    assert arca.log_shows("not a regular file", timeout=10)  # refused at once, not waited on
    assert arca.log_shows("; keeping the running configuration")
    arca.proc.send_signal(signal.SIGTERM)
    try:
        arca.proc.wait(15)
    except subprocess.TimeoutExpired:
        arca.proc.kill()
        arca.proc.wait()
        pytest.fail("the SIGHUP's fopen of the FIFO holds the main thread: SIGTERM is never read")
    assert "--tls-cert" in arca.read_log()


def make_chain(workdir):
    """A lab root, two sites' issuing CAs under it, a client certificate from each."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=workdir)

    with open(os.path.join(workdir, "ca.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    with open(os.path.join(workdir, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "2", "-subj", "/CN=Lab Root", "-keyout", "root.key", "-out", "root.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for s in ("a", "b"):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN=site {s} CA", "-keyout", f"site{s}.key", "-out", f"site{s}.csr")
        run("x509", "-req", "-in", f"site{s}.csr", "-CA", "root.pem", "-CAkey", "root.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ca.ext", "-out", f"site{s}.pem")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN=client {s}", "-keyout", f"client{s}.key", "-out", f"client{s}.csr")
        run("x509", "-req", "-in", f"client{s}.csr", "-CA", f"site{s}.pem", "-CAkey",
            f"site{s}.key", "-CAcreateserial", "-days", "2", "-extfile", "client.ext",
            "-out", f"client{s}.pem")
        with open(os.path.join(workdir, f"client{s}-chain.pem"), "w") as out:
            for part in (f"client{s}.pem", f"site{s}.pem"):
                with open(os.path.join(workdir, part)) as f:
                    out.write(f.read())
    return lambda name: os.path.join(workdir, name)


def test_a_sites_issuing_ca_alone_admits_that_sites_clients_and_no_other(start_tls_arca,
                                                                         workdir):
    """TLS.md: "a CA per site makes [revocation] cheap". With the sites' CAs under one lab root
    (the usual private PKI), --tls-client-ca naming site A's CA admits nobody (OpenSSL wants a
    self-signed anchor: no X509_V_FLAG_PARTIAL_CHAIN), and naming the root as well admits every
    site, so that dropping site B's CA from the file shuts nobody out."""
    path = make_chain(workdir)
    arca = start_tls_arca("--tls-client-ca", path("sitea.pem"))

    def status_with(site):
        ctx = arca.context()
        ctx.load_cert_chain(path(f"client{site}-chain.pem"), path(f"client{site}.key"))
        try:
            return arca.tls_get("/api/v1/health/", context=ctx)[0]
        except (ssl.SSLError, OSError):
            return None

    assert status_with("b") is None
    assert status_with("a") == 200
    # the root in the file too: every site under it is admitted, as the root says
    with open(path("both.pem"), "w") as out:
        for part in ("root.pem", "sitea.pem"):
            with open(path(part)) as f:
                out.write(f.read())
    arca2 = start_tls_arca("--tls-client-ca", path("both.pem"))
    ctx = arca2.context()
    ctx.load_cert_chain(path("clientb-chain.pem"), path("clientb.key"))
    assert arca2.tls_get("/api/v1/health/", context=ctx)[0] == 200


def test_the_access_log_keeps_a_long_subjects_cn(start_tls_arca, tls_pki, workdir):
    """A certificate whose DN lists CN first and then many OUs prints (RFC 2253, last RDN first)
    with the CN at the end: the 256-byte subject buffer (io.c's handshake_done) cuts it off, so
    the access log names no one; two such clients look alike."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=workdir)

    ous = "".join(f"/OU=unit{i:03d}" for i in range(40))
    with open(os.path.join(workdir, "c.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=the-real-client" + ous, "-keyout", "long.key", "-out", "long.csr")
    ca_key = os.path.join(os.path.dirname(tls_pki["client_ca"]), "client_ca.key")
    run("x509", "-req", "-in", "long.csr", "-CA", tls_pki["client_ca"], "-CAkey", ca_key,
        "-CAcreateserial", "-days", "1", "-extfile", "c.ext", "-out", "long.pem")
    log = os.path.join(workdir, "access.log")
    arca = start_tls_arca("--tls-client-ca", tls_pki["client_ca"], "--access-log", log)
    ctx = arca.context()
    ctx.load_cert_chain(os.path.join(workdir, "long.pem"), os.path.join(workdir, "long.key"))
    assert arca.tls_get("/api/v1/status/", context=ctx)[0] == 200

    def last_line():
        with open(log) as f:
            lines = f.read().splitlines()
        return lines[-1] if lines else ""

    wait_for(lambda: "/api/v1/status/" in last_line(), "the request's line is written")
    assert "the-real-client" in last_line(), last_line()
