"""The client behind a --trusted-proxy is the rightmost X-Forwarded-For address that is not a
trusted proxy, however many lines and entries a client puts before the one its proxy appends:
--allow-network, the per-address limit and the access log all use that address. An entry arca
cannot read where the client should be makes the client unknown (refused), never the proxy
itself and never an address further left.

Here the scenario's own socket plays the proxy: it connects from 127.0.0.1 (trusted) and writes
the X-Forwarded-For lines a client sent, then the one the proxy appends."""

import http.client
import os
import threading
import time
import urllib.parse

import pytest

PROXY = "127.0.0.1"
ALLOWED, REAL = "127.0.0.5", "127.0.0.6"


@pytest.fixture
def behind_proxy(start_arca, workdir):
    """start(extra args...) -> arca trusting 127.0.0.1 as its proxy, with an access log file."""

    def start(*extra):
        a = start_arca("--upstream-allow", "127.0.0.0/8", "--trusted-proxy", f"{PROXY}/32",
                       "--access-log", os.path.join(workdir, "access.log"), *extra)
        a.access_log = os.path.join(workdir, "access.log")
        return a

    return start


def through_proxy(arca, path, xff_lines, timeout=30):
    """GET `path` from the proxy's address with these X-Forwarded-For lines, in order (the last
    one is the line the proxy appended): (status, body)."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=timeout,
                                      source_address=(PROXY, 0))
    try:
        conn.putrequest("GET", path)
        for value in xff_lines:
            conn.putheader("X-Forwarded-For", value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def fetch_path(url):
    return "/api/v1/fetch/?" + urllib.parse.urlencode({"url": url})


def logged_clients(arca, at_least):
    """The client addresses of the fetch lines in the access log, sorted, once there are
    `at_least` (a line is written once its response is over, a moment after the client has it:
    two requests in a row may be logged in either order)."""
    deadline = time.monotonic() + 5
    while True:
        with open(arca.access_log) as f:
            found = [line.split(" ")[0] for line in f if "/api/v1/fetch/" in line]
        if len(found) >= at_least:
            return sorted(found)
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_the_proxys_line_counts_after_many_forged_lines(behind_proxy, origin):
    arca = behind_proxy("--allow-network", f"{ALLOWED}/32")
    url = origin.add("/rootfs.img", data=b"r" * 4000)
    # the allowed client itself, through the proxy: the path works
    assert through_proxy(arca, fetch_path(url), [ALLOWED])[0] == 200
    for forged in (17, 40, 200):
        status, body = through_proxy(arca, fetch_path(url), [ALLOWED] * forged + [REAL])
        assert status == 403 and b"not allowed" in body, (forged, status)
    assert logged_clients(arca, 4) == sorted([ALLOWED] + [REAL] * 3)


def test_the_rightmost_entry_counts_in_a_long_line(behind_proxy, origin):
    arca = behind_proxy("--allow-network", f"{ALLOWED}/32")
    url = origin.add("/rootfs.img", data=b"r" * 4000)
    one_line = ", ".join([ALLOWED] * 300 + [REAL])
    assert through_proxy(arca, fetch_path(url), [one_line])[0] == 403
    # trusted hops to the right of the client are skipped
    hops = ", ".join([ALLOWED] + [PROXY] * 20)
    assert through_proxy(arca, fetch_path(url), [hops])[0] == 200
    # a chain of trusted hops longer than arca reads (16 lines, 64 entries) leaves the client
    # unknown: refused, logged as "-", never taken for the proxy
    assert through_proxy(arca, fetch_path(url), [ALLOWED] + [PROXY] * 20)[0] == 403
    assert through_proxy(arca, fetch_path(url), [", ".join([ALLOWED] + [PROXY] * 70)])[0] == 403
    assert logged_clients(arca, 4) == sorted([REAL, ALLOWED, "-", "-"])


@pytest.mark.parametrize("garbage", ["not-an-address", "", "127.0.0.5 127.0.0.6", "unknown",
                                     "127.0.0.6,", "[::1"])
def test_an_unreadable_client_entry_is_refused_not_skipped(behind_proxy, origin, garbage):
    # the proxy's own address is allowed (a lab network that holds it): an entry arca cannot
    # read must not make the request the proxy's, nor the forged address to its left
    arca = behind_proxy("--allow-network", f"{ALLOWED}/32", "--allow-network", f"{PROXY}/32")
    url = origin.add("/rootfs.img", data=b"r" * 4000)
    status, body = through_proxy(arca, fetch_path(url), [ALLOWED, garbage])
    assert status == 403 and b"names no readable address" in body
    status, _ = through_proxy(arca, fetch_path(url), [f"{ALLOWED}, {garbage}, {PROXY}"])
    assert status == 403
    assert logged_clients(arca, 2) == ["-", "-"]
    assert origin.counts["/rootfs.img"] == 0
    # the help page says why, instead of "you may not fetch" beside "every client may"
    status, body = through_proxy(arca, "/help/", [ALLOWED, garbage])
    assert status == 200 and b"named no readable address in X-Forwarded-For" in body


def test_the_per_address_limit_counts_the_real_client(behind_proxy, origin):
    arca = behind_proxy("--max-connections-per-ip", "1")
    url = origin.add("/slow.img", data=os.urandom(400000), rate=200000)  # 2 s
    results = []

    def client(forged):
        results.append(through_proxy(arca, fetch_path(url), [forged] * 17 + [REAL])[0])

    first = threading.Thread(target=client, args=("127.0.0.7",))
    first.start()
    deadline = time.monotonic() + 10
    while not origin.objects["/slow.img"].started:  # the first request is being served
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client("127.0.0.8")  # another forged address, the same client
    first.join()
    assert sorted(results) == [200, 429]
