"""A CONNECT to one of arca's own listeners is arca serving itself: a LAVA worker with
https_proxy=http://cache:8001 in its environment and an https://cache:8443/api/v1/fetch/ URL
tunnels through the plain listener to the TLS one, which serves the fetch with its usual rules.
The tunnelled connection is the client's, not arca's: who may fetch is judged by the client's
own address, never by the loopback address the tunnel comes from (else CONNECT to self would be
a way around --allow-network and a rule's allow-network). Found by the two-site lab of issue 58:
`CONNECT to port 8443 refused`."""

import os
import socket
import subprocess

from conftest import free_port, sha256, wait_for

BODY = os.urandom(300_000)


def no_proxy_env(**more):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(no_proxy="", NO_PROXY="", **more)
    return env


def curl_via(arca, url, tls_files, source="127.0.0.1"):
    """curl `url` with https_proxy set to arca's plain listener, from `source`: (CONNECT's
    status, the answer's status, body)."""
    env = no_proxy_env(https_proxy=f"http://127.0.0.1:{arca.port}")
    p = subprocess.run(["curl", "-sS", "--interface", source, "--cacert", tls_files["ca"],
                        "-o", "/dev/stdout", "-w", "\n%{http_connect} %{http_code}", url],
                       capture_output=True, env=env, timeout=60)
    body, _, codes = p.stdout.rpartition(b"\n")
    connect, code = codes.decode().split()
    return int(connect), int(code), body


def config(workdir, *lines):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\n" + "".join(l + "\n" for l in lines))
    return path


def test_https_proxy_through_the_plain_listener_reaches_the_tls_one(origin, start_tls_arca,
                                                                    tls_files):
    url = origin.add("/rootfs.img", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    for host in ("127.0.0.1", "localhost"):  # an address, and a name of this machine
        connect, code, body = curl_via(arca, f"https://{host}:{arca.tls_port}"
                                             f"{arca.fetch_path(url)}", tls_files,
                                       source="127.0.0.3")
        assert (connect, code) == (200, 200), (host, connect, code, body[:200])
        assert sha256(body) == sha256(BODY)
    assert origin.counts["/rootfs.img"] == 1  # the second a hit, as any fetch's
    assert arca.metrics()['arca_tunnels_total{result="opened"}'] == 2
    # the fetch inside is the client's own: the access log names its address, not arca's
    def fetches():  # a line is written once its answer is done: maybe after curl has it
        return [line for line in arca.read_log().splitlines()
                if "/api/v1/fetch/?url=" in line and '" 200 ' in line]
    wait_for(lambda: len(fetches()) == 2, "both fetches logged")
    assert all(line.startswith("127.0.0.3 ") for line in fetches()), fetches()


def test_a_rule_refusing_a_client_refuses_it_through_a_tunnel_to_arca_too(origin, start_tls_arca,
                                                                          tls_files, workdir):
    url = origin.add("/private/fw.bin", data=BODY)
    arca = start_tls_arca("--config", config(
        workdir, "", "[rule private]", f"match = {origin.url('/private/')}",
        "allow-network = 127.0.0.1/32"))
    target = f"https://127.0.0.1:{arca.tls_port}{arca.fetch_path(url)}"
    # the outsider (127.0.0.2) is refused by the rule inside the tunnel: the tunnel comes from
    # arca's own 127.0.0.1, which the rule lets in, but it is judged as the outsider's
    connect, code, body = curl_via(arca, target, tls_files, source="127.0.0.2")
    assert (connect, code) == (200, 403), (connect, code, body[:200])
    assert b"rule private" in body, body[:300]
    assert origin.counts["/private/fw.bin"] == 0
    # the board the rule names gets the bytes the same way
    connect, code, body = curl_via(arca, target, tls_files, source="127.0.0.1")
    assert (connect, code) == (200, 200) and sha256(body) == sha256(BODY)
    connect, code, body = curl_via(arca, target, tls_files, source="127.0.0.2")
    assert (connect, code) == (200, 403)  # nor the copy now kept
    assert origin.counts["/private/fw.bin"] == 1


def test_an_outsider_refused_by_allow_network_is_refused_at_the_connect(origin, start_tls_arca,
                                                                       tls_files):
    url = origin.add("/fw.bin", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "127.0.0.1/32")
    connect, code, _ = curl_via(arca, f"https://127.0.0.1:{arca.tls_port}{arca.fetch_path(url)}",
                                tls_files, source="127.0.0.2")
    assert connect == 403 and code in (0, 403), (connect, code)
    assert origin.counts["/fw.bin"] == 0


def raw_connect(arca, target):
    with socket.create_connection(("127.0.0.1", arca.port), timeout=10) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def test_tunnels_out_turned_off_still_reach_arca_itself(origin, start_tls_arca, tls_files):
    url = origin.add("/fw.bin", data=BODY)
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--connect-port", "none")
    connect, code, body = curl_via(arca, f"https://127.0.0.1:{arca.tls_port}"
                                         f"{arca.fetch_path(url)}", tls_files)
    assert (connect, code) == (200, 200) and sha256(body) == sha256(BODY)
    answer = raw_connect(arca, f"127.0.0.1:{origin.port}")  # a tunnel out: none
    assert answer.startswith(b"HTTP/1.1 403 ") and b"--connect-port none" in answer, answer


def test_connect_to_other_ports_and_addresses_is_refused_as_before(start_tls_arca):
    arca = start_tls_arca("--upstream-allow", "127.0.0.0/8")
    other = free_port()
    for target in (f"127.0.0.1:{other}",  # no listener of arca's
                   f"127.0.0.5:{arca.tls_port}"):  # arca's port, not an address it listens on
        answer = raw_connect(arca, target)
        port = target.rsplit(":", 1)[1]
        assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
        assert f"CONNECT to port {port} refused".encode() in answer, answer[:300]


def test_a_tunnel_to_the_plain_listener_is_judged_as_its_client_too(origin, start_tls_arca,
                                                                   workdir):
    # a tunnel inside a tunnel, from the outsider: each connection arca makes to itself is the
    # outsider's, however deep
    url = origin.add("/private/fw.bin", data=BODY)
    arca = start_tls_arca("--config", config(
        workdir, "", "[rule private]", f"match = {origin.url('/private/')}",
        "allow-network = 127.0.0.1/32"))
    me = f"127.0.0.1:{arca.port}"
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", arca.port))
        for _ in range(2):
            s.sendall(f"CONNECT {me} HTTP/1.1\r\nHost: {me}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            assert head.startswith(b"HTTP/1.1 200 "), head
        s.sendall(f"GET {arca.fetch_path(url)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                  .encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:300]
    assert origin.counts["/private/fw.bin"] == 0
    # both CONNECTs and the fetch are the outsider's in the access log (a tunnel's line comes
    # as it ends)
    wait_for(lambda: arca.read_log().count("127.0.0.2 - - ") == 3, "three lines of 127.0.0.2")
    assert "127.0.0.1 - - " not in arca.read_log()
