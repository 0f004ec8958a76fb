"""What arca shows of its HTTPS (--tls-listen): the status JSON's "tls", the arca_tls_ metrics,
`arca status`, the help and statistics pages, the access log's client certificate subject, an
absolute-form target naming the TLS address, and all of it after a SIGHUP swaps the certificate.
The certificates are made here and in conftest (tls_files) with the openssl command line."""

import calendar
import html
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import ARCA_BIN, PortTaken, free_port, wait_clock, wait_for

STAMP = "%Y-%m-%dT%H:%M:%SZ"
# the swapped certificate's subject: a space and HTML's specials, escaped on the pages
SWAPPED_SUBJECT = "/O=Lab <b>&/CN=arca swapped"
SWAPPED_RFC2253 = "CN=arca swapped,O=Lab \\<b\\>&"  # RFC 2253 escapes < and >
TLS_FAMILIES = ("arca_tls_certificate_expiry_seconds",
                "arca_tls_certificate_not_after_timestamp_seconds", "arca_tls_handshakes_total",
                "arca_tls_handshake_failures_total", "arca_tls_plain_http_refused_total",
                "arca_tls_kernel_offered", "arca_tls_kernel_connections_total")


def openssl(cwd, *args):
    return subprocess.run(["openssl", *args], check=True, capture_output=True, text=True,
                          cwd=cwd, timeout=60).stdout


@pytest.fixture(scope="module")
def lab():
    """A second CA ("CN=Lab sites CA") that signs a site's client certificate (its subject has
    a space: "/CN=site a/O=Lab") and the certificate a SIGHUP swaps in (127.0.0.1, 3 days)."""
    d = tempfile.mkdtemp(prefix="arca-lab-ca-")
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "lab.key", "-out",
            "lab.pem", "-days", "2", "-subj", "/CN=Lab sites CA")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, days, ext in (("client", "/CN=site a/O=Lab", "2", "client.ext"),
                                     ("swapped", SWAPPED_SUBJECT, "3", "server.ext")):
        openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", subject)
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "lab.pem", "-CAkey", "lab.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", days, "-extfile", ext)
    yield {k: os.path.join(d, f"{k}.pem") for k in ("lab", "client", "swapped")} | {
        "client_key": os.path.join(d, "client.key"), "swapped_key": os.path.join(d, "swapped.key")}
    shutil.rmtree(d, ignore_errors=True)


def cert_time(path, which):
    """The certificate's notBefore/notAfter (which: "startdate"/"enddate") in Unix seconds, as
    `openssl x509` prints it."""
    out = openssl(None, "x509", "-noout", f"-{which}", "-in", path).strip()
    return calendar.timegm(time.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"))


def iso(t):
    return time.strftime(STAMP, time.gmtime(t))


def start_tls(start_arca, cert, key, *args):
    """arca with one --tls-listen on a free loopback port (another if that one was taken)."""
    for attempt in range(3):
        port = free_port()
        try:
            arca = start_arca("--tls-listen", f"127.0.0.1:{port}", "--tls-cert", cert,
                              "--tls-key", key, *args)
        except PortTaken:
            if attempt == 2:
                raise
            continue
        arca.tls_port = port
        return arca


_contexts = {}


def tls_get(port, path, cafile, cert=None, session=None):
    """GET `path` over TLS (python's ssl, verifying `cafile`); (status, body, session,
    session_reused, the server certificate's subject as python reads it). A session resumes
    only in the context it came from: one context per CA and client certificate."""
    ctx = _contexts.get((cafile, cert))
    if ctx is None:
        ctx = _contexts[(cafile, cert)] = ssl.create_default_context(cafile=cafile)
        if cert:
            ctx.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Connection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return int(head.split()[1]), body, s.session, s.session_reused, subject


def left_texts(not_after, since, until):
    """What arca may say of `not_after` seen between two times (it counts from time(NULL), whole
    seconds from the kernel's coarse clock), in its one wording (the log, `arca status`, the
    pages): "DATE (N days left)", under two days "(N h left)", under two hours "(N min left)"."""
    date = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(not_after))
    spans = set()
    for left in range(not_after - int(until) - 1, not_after - int(since) + 2):
        spans.add(f"{left // 86400} days" if left >= 2 * 86400 else
                  f"{left // 3600} h" if left >= 7200 else f"{left // 60} min")
    return {f"{date} ({span} left)" for span in spans}


def expiry_texts(not_after, since, until):
    """What `arca status` may say of `not_after` between two times."""
    return {f"valid until {text}" for text in left_texts(not_after, since, until)}


def tls_of(arca):
    return arca.status()["tls"]


def wait_tls(arca, key, value, what=None):
    """Until the status's tls[key] is `value`; the status."""
    return wait_for(lambda: (t := tls_of(arca))[key] == value and t, what or f"tls {key} {value}")


def metrics_text(arca):
    return arca.get("/metrics")[2].decode()


def cli_status(arca):
    out = subprocess.run([ARCA_BIN, "status", "--server", f"http://127.0.0.1:{arca.port}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_without_tls_listen_tls_is_null_and_no_tls_metric(arca):
    assert arca.status()["tls"] is None
    assert "arca_tls_" not in metrics_text(arca)
    out = cli_status(arca)
    assert "HTTPS" not in out
    for path in ("/", "/help/", "/statistics/"):
        assert b'id="https' not in arca.get(path)[2] and b'id="tls' not in arca.get(path)[2]


def test_status_and_metrics_count_the_handshakes(start_arca, tls_files):
    before = time.time()
    arca = start_tls(start_arca, tls_files["cert"], tls_files["key"])
    port, ca = arca.tls_port, tls_files["ca"]
    t = tls_of(arca)
    not_after = cert_time(tls_files["cert"], "enddate")
    cert = t["certificate"]
    assert t["listen"] == [f"127.0.0.1:{port}"]
    assert cert["file"] == tls_files["cert"]
    assert cert["subject"] == "CN=localhost" and cert["issuer"] == "CN=arca test CA"
    assert cert["not_after"] == iso(not_after)
    assert cert["not_before"] == iso(cert_time(tls_files["cert"], "startdate"))
    left = not_after - time.time()
    assert left - 5 <= cert["expires_in_seconds"] <= left + 5
    assert 0 < cert["expires_in_seconds"] <= 2 * 86400  # the fixture's: 2 days
    loaded = calendar.timegm(time.strptime(cert["loaded_at"], STAMP))
    assert int(before) - 1 <= loaded <= time.time() + 1
    assert t["client_ca"] is None
    k = t["kernel_tls"]
    assert isinstance(k["offered"], bool) and k["connections"] == 0
    assert k["offered"] or k["why"]  # not offered: the reason
    assert (t["handshakes"], t["resumed"], t["handshake_failures"], t["no_client_certificate"],
            t["plain_http_refused"]) == (0, 0, 0, 0, 0)

    # a curl over TLS, verifying the test CA: one full handshake
    out = subprocess.run(["curl", "-sSf", "--cacert", ca, f"https://127.0.0.1:{port}/api/v1/"
                          "status/"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert '"instance":"https://127.0.0.1:%d/"' % port in out.stdout  # the scheme it was asked by
    wait_tls(arca, "handshakes", 1)
    # python's ssl: a connection, then another resuming its session (a ticket)
    status, _, session, reused, _ = tls_get(port, "/api/v1/health/", ca)
    assert status == 200 and not reused
    status, _, _, reused, _ = tls_get(port, "/api/v1/health/", ca, session=session)
    assert status == 200 and reused
    wait_tls(arca, "resumed", 1)
    # plain HTTP to the TLS port: refused with 400, saying why
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and b"HTTPS" in answer
    # garbage where a ClientHello belongs: the handshake fails, the connection is closed
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\x00\x01garbage, not TLS\r\n\r\n" * 4)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
    t = wait_tls(arca, "handshake_failures", 1)
    assert (t["handshakes"], t["resumed"], t["no_client_certificate"],
            t["plain_http_refused"]) == (3, 1, 0, 1)

    text = metrics_text(arca)
    for family in TLS_FAMILIES:
        assert f"# HELP {family} " in text and f"# TYPE {family} " in text, family
    m = arca.metrics()
    assert m['arca_tls_handshakes_total{kind="full"}'] == 2
    assert m['arca_tls_handshakes_total{kind="resumed"}'] == 1
    assert m['arca_tls_handshake_failures_total{reason="other"}'] == 1
    assert m['arca_tls_handshake_failures_total{reason="client_certificate"}'] == 0
    assert m["arca_tls_plain_http_refused_total"] == 1
    assert m["arca_tls_certificate_not_after_timestamp_seconds"] == not_after
    left = not_after - time.time()
    assert left - 5 <= m["arca_tls_certificate_expiry_seconds"] <= left + 5
    assert m["arca_tls_kernel_offered"] == (1 if k["offered"] else 0)
    if not k["offered"]:
        assert m["arca_tls_kernel_connections_total"] == 0

    # `arca status`: the HTTPS line, no client CA line
    since = time.time()
    out = cli_status(arca)
    lines = {f"HTTPS: 127.0.0.1:{port}, certificate CN=localhost, {expiry}; 3 handshakes "
             f"(1 resumed), 1 failed" for expiry in expiry_texts(not_after, since, time.time())}
    assert lines & set(out.splitlines()), out
    assert "client CA" not in out


def test_pages_show_the_https_address_and_the_certificate(start_arca, tls_files):
    arca = start_tls(start_arca, tls_files["cert"], tls_files["key"])
    port = arca.tls_port
    not_after = cert_time(tls_files["cert"], "enddate")
    since = time.time()
    page = arca.get("/help/")[2].decode()
    until = time.time()
    prefix = f"https://127.0.0.1:{port}/api/v1/fetch/?url="
    assert f'<pre id="https-prefix">{prefix}</pre>' in page
    assert f"curl -O -J '{prefix}https://example.com/Image'" in page
    assert '<code id="tls-subject">CN=localhost</code>' in page
    assert '<code id="tls-issuer">CN=arca test CA</code>' in page
    expiry = re.search(r'<span id="tls-expiry">([^<]*)</span>', page).group(1)
    assert expiry in left_texts(not_after, since, until)
    assert 'id="tls-client-ca"' not in page
    # the home page: the https example next to the plain one
    home = arca.get("/")[2].decode()
    assert f"curl -O -J 'http://127.0.0.1:{arca.port}/api/v1/fetch/?url=" in home
    assert f"<pre id=\"https-example\">curl -O -J '{prefix}" in home
    # the statistics page: the certificate and the counts
    stats = arca.get("/statistics/")[2].decode()
    assert '<code id="tls-subject">CN=localhost</code>' in stats
    assert re.search(r'<p id="tls-counts">0 handshakes \(0 resumed\), 0 failed', stats)
    # over TLS, the pages name arca by https://
    status, body, _, _, _ = tls_get(port, "/", tls_files["ca"])
    assert status == 200
    assert f"curl -O -J '{prefix}https://example.com/Image'" in body.decode()


def test_the_access_log_names_the_client_certificate(start_arca, tls_files, lab, workdir):
    log = os.path.join(workdir, "access.log")
    arca = start_tls(start_arca, tls_files["cert"], tls_files["key"], "--tls-client-ca",
                     lab["lab"], "--access-log", log)
    port, ca = arca.tls_port, tls_files["ca"]
    assert tls_of(arca)["client_ca"] == "CN=Lab sites CA"
    status, _, _, _, _ = tls_get(port, "/api/v1/status/?site", ca,
                                 cert=(lab["client"], lab["client_key"]))
    assert status == 200
    assert arca.get("/api/v1/status/?plain")[0] == 200
    # a client without a certificate is refused at the handshake, counted as such
    out = subprocess.run(["curl", "-sS", "--cacert", ca, f"https://127.0.0.1:{port}/api/v1/"
                          "status/?nocert"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    t = wait_tls(arca, "no_client_certificate", 1)
    assert t["handshake_failures"] == 1 and t["handshakes"] == 1

    def lines():
        with open(log) as f:
            return [l for l in f.read().splitlines() if "/api/v1/status/?" in l]
    got = wait_for(lambda: len(lines()) >= 2 and lines(), "two lines in the access log")
    assert len(got) == 2, got  # the refused one never made a request
    site = next(l for l in got if "?site" in l)
    plain = next(l for l in got if "?plain" in l)
    # the subject (RFC 2253: "O=Lab,CN=site a") as one field, its space escaped
    assert site.startswith("127.0.0.1 - O=Lab,CN=site\\x20a [")
    assert plain.startswith("127.0.0.1 - - [")
    m = arca.metrics()
    assert m['arca_tls_handshake_failures_total{reason="client_certificate"}'] == 1
    assert m['arca_tls_handshake_failures_total{reason="other"}'] == 0
    out = cli_status(arca)
    assert ("HTTPS client CA: CN=Lab sites CA (clients without a certificate it signed are "
            "refused)") in out.splitlines()
    assert '<code id="tls-client-ca">CN=Lab sites CA</code>' in arca.get("/help/")[2].decode()


def test_a_target_naming_the_tls_address_is_arca_itself(start_arca, tls_files):
    arca = start_tls(start_arca, tls_files["cert"], tls_files["key"], "--upstream-allow",
                     "127.0.0.0/8")
    port = arca.tls_port
    for scheme in ("https", "http"):
        for host in ("127.0.0.1", "localhost"):
            conn = socket.create_connection(("127.0.0.1", arca.port), timeout=10)
            conn.sendall(f"GET {scheme}://{host}:{port}/api/v1/status/ HTTP/1.1\r\n"
                         f"Host: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
            conn.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), (scheme, host, head)
            assert b"\r\nvia:" not in head.lower(), head  # arca's own route, not a proxy's fetch
            assert b'"version"' in body and b'"tls"' in body
    # the same sent to the TLS listener as an HTTPS proxy (curl -x https://...)
    status, body, _, _, _ = tls_get(port, f"https://127.0.0.1:{port}/api/v1/status/",
                                    tls_files["ca"])
    assert status == 200 and b'"version"' in body
    assert arca.status()["statistics_requests"] == 0  # nothing was fetched


def test_sighup_swaps_the_certificate_and_every_view_follows(start_arca, tls_files, lab,
                                                             workdir):
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    shutil.copy(tls_files["cert"], cert)
    shutil.copy(tls_files["key"], key)
    os.chmod(key, 0o600)
    arca = start_tls(start_arca, cert, key)
    port = arca.tls_port
    old = tls_of(arca)["certificate"]
    assert tls_get(port, "/api/v1/health/", tls_files["ca"])[4]["commonName"] == "localhost"
    # loaded_at is in seconds: the swap comes a second later, so that it shows
    wait_clock(calendar.timegm(time.strptime(old["loaded_at"], STAMP)) + 1)
    shutil.copy(lab["swapped"], cert + ".new")
    shutil.copy(lab["swapped_key"], key + ".new")
    os.replace(key + ".new", key)
    os.replace(cert + ".new", cert)
    arca.proc.send_signal(signal.SIGHUP)
    assert arca.log_shows("SIGHUP: HTTPS certificate", timeout=10)
    new = wait_for(lambda: (c := tls_of(arca)["certificate"])["subject"] == SWAPPED_RFC2253 and c,
                   "the swapped certificate in the status")
    assert new["issuer"] == "CN=Lab sites CA"
    assert new["loaded_at"] > old["loaded_at"]
    not_after = cert_time(lab["swapped"], "enddate")
    assert new["not_after"] == iso(not_after) != old["not_after"]
    assert arca.metrics()["arca_tls_certificate_not_after_timestamp_seconds"] == not_after
    # the next connection gets it (verified against the lab CA)
    status, _, _, _, subject = tls_get(port, "/api/v1/health/", lab["lab"])
    assert status == 200 and subject["commonName"] == "arca swapped"
    # the pages show it, escaped
    page = arca.get("/help/")[2].decode()
    assert f'<code id="tls-subject">{html.escape(SWAPPED_RFC2253)}</code>' in page
    assert "<b>" not in page
    since = time.time()
    out = cli_status(arca)
    assert any(f"certificate {SWAPPED_RFC2253}, {expiry}" in out
               for expiry in expiry_texts(not_after, since, time.time())), out


def test_arca_status_over_https_names_an_untrusted_certificate_and_takes_curls_ca_bundle(
        start_arca, tls_files):
    # the lab's CA is not in the system store: the trouble is the certificate, not a missing arca
    # (found by the new-user review: "is arca running there?"); CURL_CA_BUNDLE names the CA
    arca = start_tls(start_arca, tls_files["cert"], tls_files["key"])
    server = f"https://127.0.0.1:{arca.tls_port}"
    env = {k: v for k, v in os.environ.items() if k not in ("CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    out = subprocess.run([ARCA_BIN, "status", "--server", server], capture_output=True,
                         text=True, timeout=30, env=env)
    assert out.returncode != 0 and out.stdout == ""
    assert out.stderr.startswith(f"arca: {server}: its certificate is not trusted (")
    assert "--cacert FILE" in out.stderr and "is arca running" not in out.stderr
    assert out.stderr.count("\n") == 1
    out = subprocess.run([ARCA_BIN, "status", "--server", server], capture_output=True,
                         text=True, timeout=30, env={**env, "CURL_CA_BUNDLE": tls_files["ca"]})
    assert out.returncode == 0, out.stderr
    out = subprocess.run([ARCA_BIN, "status", "--server", server, "--cacert", tls_files["ca"]],
                         capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("arca ") and f" on {server}/" in out.stdout.splitlines()[0]
    assert f"HTTPS: 127.0.0.1:{arca.tls_port}, certificate CN=localhost, " in out.stdout
