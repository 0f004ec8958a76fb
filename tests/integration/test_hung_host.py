"""A hung host is held; a resetting route on a live host holds nothing (docs/CACHING.md, "When
the origin is down"). Silence or a reset after the request went is one URL's word as much as
its host's: any client can ask for a route that resets. So arca asks the host itself: when an
attempt ends that way, one check of the host's root (any HTTP answer, a 404 too, is a live host)
decides. A process that hangs (the kernel still completes the handshake, nothing ever answers)
is held after its first failures, and its cold misses are answered at once; a live host whose
one route resets is never held, and its other URLs are served."""

import os
import re
import socket
import threading
import time

from conftest import wait_for

FAST = ("--upstream-allow", "127.0.0.0/8", "--retry-delay", "50ms", "--stall-timeout", "1s")


class HungOrigin:
    """A listening socket whose process accepts connections and never reads or answers them
    (a hung server: the kernel completes the handshake). Counts the connections it accepted."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.held.append(conn)  # never read, never answered, kept open

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.stopped.set()
        self.thread.join()
        for c in self.held:
            c.close()
        self.sock.close()


def test_a_hung_origin_is_held_and_its_cold_misses_are_answered_at_once(start_arca):
    hung = HungOrigin()
    try:
        arca = start_arca(*FAST)
        began = time.monotonic()
        answers = []
        for i in range(20):
            t0 = time.monotonic()
            status, headers, body = arca.fetch(hung.url(f"/miss{i}"))
            answers.append((status, time.monotonic() - t0, headers, body))
            assert time.monotonic() - began < 30, \
                f"{i + 1} cold misses of a hung host took {time.monotonic() - began:.0f} s"
        # the first misses wait out its silence; after them the host is held
        held = [a for a in answers if a[0] == 503]
        assert len(held) >= 15, [(a[0], round(a[1], 1)) for a in answers]
        for status, took, headers, body in held:
            assert took < 2, f"a held host's miss took {took:.1f} s"
            assert int(headers["retry-after"]) >= 1
            assert headers["cache-status"] == "arca; detail=held-down"
            reason = body.decode()
            assert f"upstream host http://127.0.0.1:{hung.port} is down since" in reason, reason
            assert "accepts connections but answers nothing" in reason, reason
            assert re.search(r"\(\d+ failures in a row", reason), reason
        assert len(hung.held) <= 10, f"{len(hung.held)} connections for 20 misses"
        assert arca.metrics()["arca_upstream_hosts_down"] == 1
        (down,) = arca.status()["upstream_hosts_down_list"]
        assert down["host"] == f"http://127.0.0.1:{hung.port}" and down["hung"] is True
    finally:
        hung.stop()


def test_a_resetting_route_on_a_live_host_holds_nothing(start_arca, origin):
    arca = start_arca(*FAST)
    reset = origin.add("/reset", data=b"x", abort=True)
    stop = threading.Event()
    sprayed = []

    def spray():  # one client: new URLs of the resetting route, ten a second
        i = 0
        while not stop.is_set():
            sprayed.append(arca.fetch(f"{reset}?n={i}")[0])
            i += 1
            stop.wait(0.1)

    client = threading.Thread(target=spray, daemon=True)
    client.start()
    try:
        wait_for(lambda: origin.counts["/reset"] >= 10, "the resetting route asked", timeout=20)
        files = {f"/fine{i}": os.urandom(3_000) for i in range(10)}
        for path, data in files.items():
            t0 = time.monotonic()
            status, _, body = arca.fetch(origin.add(path, data=data))
            assert status == 200 and body == data, (path, status, body)
            assert time.monotonic() - t0 < 5, f"{path} waited {time.monotonic() - t0:.1f} s"
            assert arca.status()["upstream_hosts_down"] == 0
        assert arca.metrics()["arca_upstream_hosts_down"] == 0
        assert 503 not in sprayed, sprayed
        # the host was asked about itself, not once per reset
        assert origin.counts["/"] <= origin.counts["/reset"], dict(origin.counts)
    finally:
        stop.set()
        client.join()
