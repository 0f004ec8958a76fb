"""arca's own HTTP/1.1 engine, as a client meets it on the wire: a request body sent chunked
after `Expect: 100-continue`, a client that half-closes, HTTP/1.0 keep-alive, answers in order
behind a request that must wait, a stalled client that cannot hold up the others of its worker,
idle connections closed at --idle-timeout, bodies refused at their head or cut when late, a cut
HTTP/1.0 answer that must not look whole, and the workers' short slice of the CPU. Each scenario
writes raw bytes on sockets."""

import hashlib
import json
import os
import socket
import time
import urllib.parse

from test_admin import TOKEN, token_file, wait_complete


def read_all(s, wait=10):
    """Read until the peer closes (or `wait` seconds)."""
    got, deadline = b"", time.monotonic() + wait
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            piece = s.recv(65536)
        except socket.timeout:
            break
        if not piece:
            return got, True
        got += piece
    return got, False


def read_until(s, marker, wait=10):
    got, deadline = b"", time.monotonic() + wait
    while marker not in got:
        assert time.monotonic() < deadline, got
        s.settimeout(max(0.01, deadline - time.monotonic()))
        piece = s.recv(65536)
        assert piece, got
        got += piece
    return got


def read_to_error(s, wait=15):
    """(bytes, the OSError that ended them or None): read until the peer closes or resets."""
    got = b""
    s.settimeout(wait)
    try:
        while piece := s.recv(65536):
            got += piece
    except OSError as e:
        return got, e
    return got, None


def responses(data):
    """(status line, headers, body) of each response in `data`, bodies cut by Content-Length."""
    out = []
    while b"\r\n\r\n" in data:
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        out.append((lines[0], headers, data[:length]))
        data = data[length:]
    return out


def fetch_target(url):
    return "/api/v1/fetch/?" + urllib.parse.urlencode({"url": url})


def test_a_chunked_body_after_100_continue_reaches_its_handler(start_arca, workdir, origin):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))
    url = origin.add("/prefetched.img", data=b"p" * 5000)
    body = json.dumps({"urls": [url]}).encode()
    head = (f"POST /api/v1/prefetch/ HTTP/1.1\r\nHost: arca\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(head)
        assert read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        half = len(body) // 2  # in two chunks, the second with an extension
        s.sendall(b"%x\r\n%s\r\n%x;note=x\r\n%s\r\n0\r\n\r\n" %
                  (half, body[:half], len(body) - half, body[half:]))
        got, closed = read_all(s)
    [(status, _, answer)] = responses(got)
    assert status == "HTTP/1.1 202 Accepted" and closed, got
    assert json.loads(answer)["results"], answer
    wait_complete(arca, 1)
    assert origin.counts["/prefetched.img"] == 1


def test_a_client_that_half_closes_still_gets_its_answers(arca, origin):
    url = origin.add("/half.img", data=b"h" * 300000)
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(f"GET {fetch_target(url)} HTTP/1.1\r\nHost: arca\r\n\r\n"
                  "GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n\r\n".encode())
        s.shutdown(socket.SHUT_WR)
        got, closed = read_all(s)
    answers = responses(got)
    assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 2 and closed
    assert hashlib.sha256(answers[0][2]).hexdigest() == hashlib.sha256(b"h" * 300000).hexdigest()
    assert answers[1][2] == b"ok"


def test_http_1_0_keep_alive_keeps_the_connection(arca):
    with socket.create_connection((arca.host, arca.port)) as s:
        for _ in range(3):
            s.sendall(b"GET /api/v1/health/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            got = read_until(s, b"\r\n\r\nok")
            [(status, headers, body)] = responses(got)
            assert status == "HTTP/1.1 200 OK" and body == b"ok"
            assert headers["connection"].lower() == "keep-alive"
        s.sendall(b"GET /api/v1/health/ HTTP/1.0\r\n\r\n")  # no keep-alive: closed after
        got, closed = read_all(s)
    assert responses(got)[0][2] == b"ok" and closed


def test_pipelined_requests_are_answered_in_order_behind_one_that_waits(arca, origin):
    """The first request waits for its download (its connection suspended); the health checks
    sent behind it on the same connection are answered after it, not before."""
    url = origin.add("/slow.img", data=b"w" * 200000, rate=400000)
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(f"GET {fetch_target(url)} HTTP/1.1\r\nHost: arca\r\n\r\n".encode() +
                  b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n\r\n" * 2 +
                  b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\nConnection: close\r\n\r\n")
        got, closed = read_all(s, wait=20)
    answers = responses(got)
    assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 4 and closed
    assert answers[0][2] == b"w" * 200000
    assert [a[2] for a in answers[1:]] == [b"ok"] * 3


def test_a_stalled_client_does_not_hold_up_the_others_of_its_worker(start_arca, origin):
    """One worker thread; one client asks for 64 MiB and never reads. Others on the same worker
    still get the whole object and quick answers."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--threads", "1")
    data = bytes(range(256)) * (256 * 1024)
    url = origin.add("/big.img", data=data)
    stalled = socket.create_connection((arca.host, arca.port))
    try:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(f"GET {fetch_target(url)} HTTP/1.1\r\nHost: arca\r\n\r\n".encode())
        status, _, body = arca.fetch(url)
        assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
        assert arca.get("/api/v1/health/")[0] == 200
    finally:
        stalled.close()
    assert origin.counts["/big.img"] == 1


def test_an_idle_keep_alive_connection_is_closed_at_the_idle_timeout(start_arca):
    arca = start_arca("--idle-timeout", "1s")
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n\r\n")
        assert responses(read_until(s, b"\r\n\r\nok"))[0][2] == b"ok"
        got, closed = read_all(s, wait=10)  # nothing more is sent: arca closes it
    assert got == b"" and closed
    assert arca.get("/api/v1/health/")[0] == 200


def test_a_connection_closed_by_its_wake_up_is_not_touched_by_its_own_event(start_arca, origin):
    """One worker; clients wait for downloads that end in a 404 while they keep writing bytes
    behind their request. The wake-up that answers and closes a connection and that
    connection's own socket event can come in one epoll batch: the event must find it closed,
    not freed (the attack review's use-after-free; ASan run of the scenarios sees it), and
    every client gets its answer (not a reset: the close lingers)."""
    import threading
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--threads", "1")
    gate, stop = threading.Event(), threading.Event()
    for i in range(40):  # the origin answers once the clients are writing behind their requests
        origin.add(f"/gone-{i}.img", status=404, on_request=lambda obj, index: gate.wait(30))
    socks = [socket.create_connection((arca.host, arca.port)) for _ in range(40)]

    def trickle():
        while not stop.is_set():
            for s in socks:
                try:
                    s.send(b"X")
                except OSError:
                    pass
            time.sleep(0.002)
    t = threading.Thread(target=trickle)
    try:
        for i, s in enumerate(socks):
            s.sendall(f"GET {fetch_target(origin.url(f'/gone-{i}.img'))} HTTP/1.1\r\n"
                      "Host: arca\r\nConnection: close\r\n\r\n".encode())
        t.start()
        deadline = time.monotonic() + 10
        while sum(origin.counts.values()) < 8:  # the first downloads are held at the origin
            assert time.monotonic() < deadline, origin.counts
            time.sleep(0.02)
        gate.set()
        for s in socks:
            got, _ = read_all(s, wait=10)
            assert got.startswith(b"HTTP/1.1 404 "), got[:80]
    finally:
        gate.set()
        stop.set()
        if t.is_alive():
            t.join()
        for s in socks:
            s.close()
    assert arca.get("/api/v1/health/")[0] == 200


def test_a_body_its_route_cannot_take_is_refused_at_its_head(start_arca, workdir):
    """No byte of such a body is read and no 100 Continue invites it: the answer comes at once,
    before the client has sent any of it, and the connection closes after it. A chunked body
    says no size: it is refused once it outgrows the route's limit. A small body a route does
    not take is still read and dropped, the connection kept."""
    arca = start_arca("--admin-token-file", token_file(workdir))
    refused = [  # (request head, status line, reason)
        ("POST /api/v1/health/ HTTP/1.1\r\nContent-Length: 10000000\r\n"
         "Expect: 100-continue\r\n", "HTTP/1.1 405 Method Not Allowed", "method POST not allowed"),
        ("GET /api/v1/status/ HTTP/1.1\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n",
         "HTTP/1.1 413 Content Too Large", "this endpoint takes no request body"),
        (f"POST /api/v1/prefetch/ HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
         "Content-Length: 2000000\r\nExpect: 100-continue\r\n",
         "HTTP/1.1 413 Content Too Large", "request body larger than 1048576 bytes"),
        # a client without the admin token cannot make arca hold a prefetch list (the review)
        ("POST /api/v1/prefetch/ HTTP/1.1\r\nAuthorization: Bearer not-the-token\r\n"
         "Content-Length: 1000000\r\nExpect: 100-continue\r\n",
         "HTTP/1.1 401 Unauthorized", "wrong admin token"),
    ]
    for head, status, reason in refused:
        with socket.create_connection((arca.host, arca.port)) as s:
            s.sendall(f"{head}Host: arca\r\n\r\n".encode())
            got, closed = read_all(s)
        [(line, headers, body)] = responses(got)
        assert (line, body.decode().strip()) == (status, reason) and closed, got
        assert headers["connection"] == "close"
    with socket.create_connection((arca.host, arca.port)) as s:  # a chunked body says no size
        s.sendall(b"GET /api/v1/status/ HTTP/1.1\r\nHost: arca\r\nTransfer-Encoding: chunked"
                  b"\r\n\r\n" + b"4000\r\n" + b"c" * 0x4000 + b"\r\n")
        for _ in range(4):  # 80 KiB of chunks in all: refused once 64 KiB came
            try:
                s.sendall(b"4000\r\n" + b"c" * 0x4000 + b"\r\n")
            except OSError:
                break
        got, closed = read_all(s)
    [(line, _, body)] = responses(got)
    assert (line, body) == ("HTTP/1.1 413 Content Too Large",
                            b"request body larger than its endpoint takes\n") and closed
    assert arca.metrics()["arca_limited_requests_total"] == 3, "each 413 is a limit's refusal"
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\nContent-Length: 5\r\n\r\nhello"
                  b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\nConnection: close\r\n\r\n")
        got, closed = read_all(s)
    assert [(a[0], a[2]) for a in responses(got)] == [("HTTP/1.1 200 OK", b"ok")] * 2 and closed


def test_a_trickled_body_is_cut_at_the_header_timeout(start_arca, workdir):
    """A body sent a byte at a time restarts no clock: it is due within --header-timeout, as
    its head was, and the connection is closed when it is late."""
    arca = start_arca("--admin-token-file", token_file(workdir), "--header-timeout", "1s")
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(f"POST /api/v1/prefetch/ HTTP/1.1\r\nHost: arca\r\nAuthorization: Bearer "
                  f"{TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
                  .encode())
        deadline, closed = time.monotonic() + 15, False
        while not closed and time.monotonic() < deadline:
            try:
                s.send(b" ")
                s.settimeout(0.2)
                closed = s.recv(4096) == b""
            except socket.timeout:
                pass
            except OSError:
                closed = True
        assert closed, "a trickled body holds its connection"
    assert arca.metrics()["arca_limited_requests_total"] == 1


def test_a_cut_answer_to_an_http_1_0_client_ends_with_a_reset(start_arca, origin):
    """An HTTP/1.0 answer of unknown length ends with the close: a download cut while it streams
    must not end with a plain close, which the client would take for the whole object."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "0")
    data = os.urandom(500000)
    url = origin.add("/cut10.img", data=data, chunked=True, truncate_at=200000, chunk=10000,
                     rate=400000)  # the client is streaming when the origin breaks off
    with socket.create_connection((arca.host, arca.port)) as s:
        s.sendall(f"GET {fetch_target(url)} HTTP/1.0\r\n\r\n".encode())
        got, error = read_to_error(s)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length" not in got.lower()[:500]
    assert len(got.split(b"\r\n\r\n", 1)[1]) < len(data)
    assert isinstance(error, ConnectionResetError), "a cut answer looked whole to the client"


def test_an_http_1_0_answer_cut_by_the_idle_clock_ends_with_a_reset(start_arca, origin):
    """The same when arca closes for the idle timeout a client that stopped reading while its
    download still ran: the close must not look like the end (found by the attack review)."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--idle-timeout", "1s")
    data = os.urandom(32 * 1024 * 1024)
    url = origin.add("/idle10.img", data=data, chunked=True, rate=8000000)  # about 4 s
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((arca.host, arca.port))
        s.sendall(f"GET {fetch_target(url)} HTTP/1.0\r\n\r\n".encode())
        head = read_until(s, b"\r\n\r\n")
        # the client stops reading: arca's socket fills, its idle clock runs out and it closes
        # (then only the metrics request's own connection is open)
        deadline = time.monotonic() + 15
        while arca.metrics()["arca_active_connections"] > 1:
            assert time.monotonic() < deadline, "arca never closed the client that stopped reading"
            time.sleep(0.1)
        got, error = read_to_error(s)
        got = head + got
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and len(got) < len(data)
    assert isinstance(error, ConnectionResetError), "a cut answer looked whole to the client"


def test_quiet_keep_alive_connections_closed_at_the_idle_timeout_are_not_counted_as_limited(
        start_arca):
    """A connection quiet for --idle-timeout is closed by the engine: no limit refused anything,
    so arca_limited_requests_total stays 0 (the watchdog's header deadline, due at the same
    moment, used to win about half the time; found by the attack review)."""
    arca = start_arca("--idle-timeout", "1s")
    socks = [socket.create_connection((arca.host, arca.port)) for _ in range(8)]
    try:
        for s in socks:  # answered 70 ms apart: their deadlines fall at every phase of both clocks
            s.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: arca\r\n\r\n")
            assert responses(read_until(s, b"\r\n\r\nok"))[0][2] == b"ok"
            time.sleep(0.07)
        for s in socks:
            assert read_all(s, wait=10) == (b"", True)
    finally:
        for s in socks:
            s.close()
    assert arca.metrics()["arca_limited_requests_total"] == 0


def wait_stopped(pid, wait=10):
    """Until every thread of `pid` is stopped: SIGSTOP is sent at once but taken later, and a
    thread not yet stopped would see the bytes sent meanwhile one by one."""
    deadline = time.monotonic() + wait
    tasks = f"/proc/{pid}/task"
    while True:
        states = []
        for t in os.listdir(tasks):
            with open(f"{tasks}/{t}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        if all(st in ("T", "t") for st in states):
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.005)


def test_a_pipelining_client_gets_one_answer_a_turn_and_the_others_theirs_between(
        start_arca, workdir, origin):
    """One worker. While arca is stopped, client A pipelines 100 hits and client B sends one;
    arca wakes to both at once. A's answers all fit in its socket, so nothing makes arca stop
    for room: it must still go to B after A's first answer, not after A's hundredth (a client
    that pipelines and reads fast held its worker for the whole pipeline)."""
    import signal
    from test_logs import read_file, wait_lines
    log = os.path.join(workdir, "access.log")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--threads", "1", "--access-log", log)
    a_url, b_url = origin.add("/a", data=b"a" * 100), origin.add("/b", data=b"b" * 100)
    assert arca.fetch(a_url)[0] == 200 and arca.fetch(b_url)[0] == 200  # cached: hits answer now
    wait_lines(lambda: read_file(log), 2)
    head = "GET {} HTTP/1.1\r\nHost: arca\r\n\r\n"
    with socket.create_connection((arca.host, arca.port)) as a, \
            socket.create_connection((arca.host, arca.port)) as b:
        # both accepted (and on the one worker) before arca stops
        for s, url in ((a, a_url), (b, b_url)):
            s.sendall(head.format(fetch_target(url)).encode())
            read_until(s, b"b" * 100 if s is b else b"a" * 100)
        arca.proc.send_signal(signal.SIGSTOP)
        try:
            wait_stopped(arca.proc.pid)
            a.sendall(head.format(fetch_target(a_url)).encode() * 100)
            b.sendall(head.format(fetch_target(b_url)).encode())
        finally:
            arca.proc.send_signal(signal.SIGCONT)
        read_until(b, b"b" * 100)
        got, deadline = b"", time.monotonic() + 10
        while got.count(b"a" * 100) < 100:
            assert time.monotonic() < deadline, got.count(b"a" * 100)
            a.settimeout(max(0.01, deadline - time.monotonic()))
            got += a.recv(1 << 20)
    lines = wait_lines(lambda: read_file(log), 2 + 2 + 101)[4:]
    order = ["/b" in urllib.parse.unquote(line["request"]) for line in lines]
    assert order.count(True) == 1 and order.index(True) <= 2, order.index(True)


def test_a_burst_of_connections_is_spread_over_the_workers_and_each_is_answered(start_arca):
    """The listening socket wakes one worker, which took a whole burst: a CI job's 64 keep-alive
    connections at once were all served on one core. Each goes to the worker with the fewest
    now, handed over by the one that accepted it; bursts of connections opened at once, again
    and again, are each answered (a hand-over whose wake-up was lost left its client waiting)."""
    arca = start_arca("--threads", "4")
    held = []
    for _ in range(64):
        s = socket.create_connection((arca.host, arca.port))
        held.append(s)
    for s in held:  # all connected first, then each asks
        s.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\n\r\n")
    for s in held:
        assert responses(read_until(s, b"\r\n\r\nok"))[0][2] == b"ok"
    m = arca.metrics()
    per_worker = [m[f'arca_worker_connections{{worker="{i}"}}'] for i in range(4)]
    # 64 and the metrics' own (within two of each other: a worker keeps one it accepted on a tie)
    assert sum(per_worker) >= 65 and min(per_worker) >= 14, per_worker
    for s in held:
        s.close()
    for _ in range(100):  # bursts of 16 short connections
        burst = [socket.create_connection((arca.host, arca.port)) for _ in range(16)]
        for s in burst:
            s.sendall(b"GET /api/v1/health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for s in burst:
            got, closed = read_all(s, wait=5)
            assert closed and responses(got)[0][2] == b"ok", got
            s.close()


# sched_getattr(2) by architecture: Python has no wrapper
SCHED_GETATTR = {"x86_64": 315, "aarch64": 275}


def sched_attr(tid):
    """(nice, runtime ns) of thread `tid` as sched_getattr reports them: a fair thread's runtime
    is its slice on Linux 6.12 and later, 0 before."""
    import ctypes
    import platform
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(48)
    if libc.syscall(SCHED_GETATTR[platform.machine()], tid, buf, 48, 0) != 0:
        raise OSError(ctypes.get_errno(), f"sched_getattr({tid})")
    _size, _policy, _flags, nice, _prio, runtime = struct.unpack_from("IIQiIQ", buf.raw)
    return nice, runtime


def test_the_workers_ask_for_a_short_slice_and_the_other_threads_keep_theirs(start_arca):
    """On a core shared with a busy thread (a purge's unlinks, a compile beside arca), a worker
    woken by a request runs at once only with a slice shorter than that thread's (EEVDF): the
    workers ask for 0.1 ms, the kernel's least; the threads that work in bulk keep the default,
    and every thread the nice arca was started with."""
    import platform
    import pytest
    if platform.machine() not in SCHED_GETATTR:
        pytest.skip(f"no sched_getattr number known for {platform.machine()}")
    default = sched_attr(0)[1]
    if default == 0:
        pytest.skip("this kernel has no custom slices (Linux before 6.12): nothing to ask for")
    arca = start_arca("--threads", "2")
    pid = arca.proc.pid
    deadline = time.monotonic() + 10
    while True:  # each worker asks as it starts: one may answer health before the other ran
        attrs = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                attrs[f.read().strip()] = sched_attr(int(tid))
        workers = [attrs.get(n, (0, 0))[1] for n in ("arca-http0", "arca-http1")]
        if workers == [100_000, 100_000] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert workers == [100_000, 100_000], attrs
    assert attrs["arca-upstream"][1] == attrs["arca-index"][1] == default, attrs
    assert {nice for nice, _ in attrs.values()} == {os.getpriority(os.PRIO_PROCESS, 0)}, attrs
