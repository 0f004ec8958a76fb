"""A SIGHUP that changes who may connect (--tls-client-ca added, or a CA dropped) reaches the
connections already open: each is judged again by the new trust, as its handshake would be
today, and one the new trust refuses is closed once its current answer is out. Found by the
outside review of issue 58: a keep-alive connection opened without a certificate before a reload
that added --tls-client-ca was served 25 s later."""

import hashlib
import http.client
import os
import shutil
import socket
import ssl
import time

from conftest import sha256, wait_for

HEALTH = b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\n\r\n"


class KeepAlive:
    """One TLS connection to arca, asked one request at a time and kept open between them."""

    def __init__(self, arca, cert=None, ctx=None, session=None):
        ctx = ctx or arca.context()
        if cert:
            ctx.load_cert_chain(*cert)
        raw = socket.create_connection(("127.0.0.1", arca.tls_port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)

    def ask(self, request=HEALTH):
        """The answer's status on this same connection; None when arca closed it instead."""
        try:
            self.sock.sendall(request)
            resp = http.client.HTTPResponse(self.sock)
            resp.begin()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            return None

    def closed_within(self, seconds):
        """Whether arca closes the connection (close_notify, EOF or reset) within `seconds`,
        with no request asked."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:  # a reset, an EOF without close_notify
                return True
        return False

    def close(self):
        self.sock.close()


def write_ini(path, client_ca=None):
    with open(path, "w") as f:
        f.write("[arca]\n" + (f"tls-client-ca = {client_ca}\n" if client_ca else ""))


def refused_after_reload(arca):
    return arca.tls_counters()["refused_after_reload"]


def test_a_reload_adding_a_client_ca_closes_a_keep_alive_connection_without_a_certificate(
        start_tls_arca, tls_pki, workdir):
    ini = os.path.join(workdir, "arca.ini")
    write_ini(ini)
    arca = start_tls_arca("--config", ini)
    anyone = KeepAlive(arca)
    assert anyone.ask() == 200
    write_ini(ini, tls_pki["client_ca"])
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    # idle between requests: closed at once, long before any idle clock
    assert anyone.closed_within(5)
    assert anyone.ask() is None
    # a new connection shows a certificate the CA signed, or is refused at its handshake
    site_a = KeepAlive(arca, (tls_pki["client_cert"], tls_pki["client_key"]))
    assert site_a.ask() == 200 and site_a.ask() == 200
    assert KeepAlive(arca).ask() is None
    assert refused_after_reload(arca) == 1
    assert arca.metrics()["arca_tls_refused_after_reload_total"] == 1
    assert arca.log_shows("TLS connection from 127.0.0.1 refused: no client certificate "
                          "(--tls-client-ca asks for one now)")
    site_a.close()


def test_a_reload_dropping_a_ca_closes_its_clients_and_keeps_the_others(start_tls_arca, tls_pki,
                                                                        workdir):
    client_ca = os.path.join(workdir, "client-ca.pem")
    with open(client_ca, "wb") as f:  # both sites' CAs
        for ca in (tls_pki["client_ca"], tls_pki["stranger_ca"]):
            with open(ca, "rb") as g:
                f.write(g.read())
    arca = start_tls_arca("--tls-client-ca", client_ca)
    site_a = KeepAlive(arca, (tls_pki["client_cert"], tls_pki["client_key"]))
    site_b = KeepAlive(arca, (tls_pki["stranger_cert"], tls_pki["stranger_key"]))
    assert site_a.ask() == 200 and site_b.ask() == 200
    shutil.copy(tls_pki["stranger_ca"], client_ca)  # site A's CA is dropped
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    assert site_a.closed_within(5)
    assert site_a.ask() is None
    for _ in range(3):  # the same connection, served on
        assert site_b.ask() == 200
    assert not site_b.closed_within(0.5)
    assert refused_after_reload(arca) == 1
    # a reload that changes nothing of the trust closes nobody
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    assert site_b.ask() == 200
    assert refused_after_reload(arca) == 1
    site_b.close()


def test_an_answer_under_way_goes_out_whole_before_its_connection_is_closed(
        origin, start_tls_arca, tls_pki, workdir):
    body = hashlib.sha256(b"seed").digest() * (16 * 1024 * 1024 // 32)  # 16 MiB
    url = origin.add("/big.img", data=body)
    client_ca = os.path.join(workdir, "client-ca.pem")
    shutil.copy(tls_pki["client_ca"], client_ca)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--tls-client-ca", client_ca)
    site_a = KeepAlive(arca, (tls_pki["client_cert"], tls_pki["client_key"]))
    assert site_a.ask(f"GET {arca.fetch_path(url)} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == 200
    # the hit again, read slowly: arca is in the middle of its answer at the reload
    site_a.sock.sendall(f"GET {arca.fetch_path(url)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    resp = http.client.HTTPResponse(site_a.sock)
    resp.begin()
    first = resp.read(64 * 1024)
    shutil.copy(tls_pki["stranger_ca"], client_ca)
    arca.reload("SIGHUP: HTTPS certificate CN=localhost")
    wait_for(lambda: refused_after_reload(arca) == 1, "the connection judged again")
    rest = resp.read()
    assert resp.status == 200 and sha256(first + rest) == sha256(body)
    assert site_a.ask() is None  # then closed: its next request gets no answer
    assert origin.counts["/big.img"] == 1


def test_a_resumed_session_is_judged_too_and_a_new_certificate_alone_closes_nobody(
        start_tls_arca, tls_pki, workdir):
    client_ca = os.path.join(workdir, "client-ca.pem")
    shutil.copy(tls_pki["client_ca"], client_ca)
    arca = start_tls_arca("--tls-client-ca", client_ca)
    ctx = arca.context()
    ctx.load_cert_chain(tls_pki["client_cert"], tls_pki["client_key"])
    first = KeepAlive(arca, ctx=ctx)
    assert first.ask() == 200  # the ticket comes with the first answer (TLS 1.3)
    resumed = KeepAlive(arca, ctx=ctx, session=first.sock.session)
    assert resumed.sock.session_reused and resumed.ask() == 200
    # a new server certificate under the same client CA: every connection goes on
    shutil.copy(tls_pki["rotated_cert"], arca.cert_path)
    shutil.copy(tls_pki["rotated_key"], arca.key_path)
    arca.reload("SIGHUP: HTTPS certificate CN=arca rotated")
    assert first.ask() == 200 and resumed.ask() == 200
    assert refused_after_reload(arca) == 0
    # site A's CA dropped: the resumed connection is judged by the certificate it resumed with
    shutil.copy(tls_pki["stranger_ca"], client_ca)
    arca.reload("SIGHUP: HTTPS certificate CN=arca rotated")
    assert first.closed_within(5) and resumed.closed_within(5)
    assert refused_after_reload(arca) == 2
