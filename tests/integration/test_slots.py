"""Download slots under load: one client's slow URLs leave the others their share of
--max-downloads, and waiting downloads start in turn across clients (SECURITY.md, "Download
slots"). A client is an address (behind --trusted-proxy, the forwarded one), an IPv6 one by its
/64."""

import http.client
import json
import os
import threading
import time
import urllib.parse

import pytest

from conftest import Origin, sha256

SLOTS = 4  # --max-downloads: all but a quarter, 3, is one client's share by default
SHARE = 3
DEADLINE = 10  # seconds a healthy cold download may take with the slow ones running


def ask(arca, url, client, timeout):
    """A fetch of `url` as `client` (how, source address or forwarded): its connection, the
    request sent, the answer not read."""
    how, addr = client
    source = (addr, 0) if how == "direct" else None
    headers = {"X-Forwarded-For": addr} if how == "forwarded" else {}
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=timeout,
                                      source_address=source)
    conn.request("GET", "/api/v1/fetch/?" + urllib.parse.urlencode({"url": url}),
                 headers=headers)
    return conn


def waiting_for(arca):
    """What each scheduled download waits for, as the listing says it."""
    status, _, body = arca.get("/api/v1/resources/?state=scheduled")
    assert status == 200, status
    return [r["waiting_for"] for r in json.loads(body)["resources"]]


def wait_for(cond, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# (how clients reach arca, the trickling client's addresses, another client's)
CLIENTS = {
    "addresses": ("direct", ["127.0.0.2"] * 6, "127.0.0.3"),
    # behind a proxy: six IPv6 addresses of one /64 are one client, the next /64 another
    "forwarded-ipv6": ("forwarded", [f"fd00:1:2:3::{i}" for i in range(1, 7)], "fd00:1:2:4::1"),
}


@pytest.mark.parametrize("clients", CLIENTS.values(), ids=CLIENTS.keys())
def test_a_clients_trickling_urls_leave_the_others_a_slot(origin, start_arca, clients):
    how, slow_clients, other = clients
    args = ["--upstream-allow", "127.0.0.0/8", "--max-downloads", str(SLOTS)]
    if how == "forwarded":
        args += ["--trusted-proxy", "127.0.0.1/32"]
    arca = start_arca(*args)
    # four origins (ports) trickling 2 bytes a second: each URL would hold a slot for minutes
    trickling = [Origin() for _ in range(4)]
    healthy = Origin()
    data = os.urandom(256 << 10)
    good = healthy.add("/tool.tar", data=data)
    held = []
    try:
        slow = [trickling[i % 4].add(f"/slow/{i}", data=b"x" * 600, rate=2, chunk=2)
                for i in range(len(slow_clients))]
        held = [ask(arca, url, (how, addr), 60) for url, addr in zip(slow, slow_clients)]
        # every slow URL is asked for (scheduled or downloading) and the first ones run
        wait_for(lambda: arca.status()["resources_scheduled"]
                 + arca.status()["resources_downloading"] == len(slow),
                 "the slow URLs are all asked for")
        started = lambda: sum(len(o.objects[urllib.parse.urlsplit(u).path].started)
                              for o, u in zip(trickling * 2, slow))
        wait_for(lambda: started() >= SHARE, "the slow downloads start")

        t0 = time.monotonic()
        conn = ask(arca, good, (how, other), DEADLINE)
        try:
            resp = conn.getresponse()
            body = resp.read()
        except TimeoutError:
            pytest.fail(f"another client's cold download did not start within {DEADLINE} s: "
                        f"{started()} slow downloads hold the {SLOTS} slots")
        finally:
            conn.close()
        took = time.monotonic() - t0
        assert resp.status == 200 and sha256(body) == sha256(data), resp.status
        assert took < DEADLINE
        # the trickling client holds its share, no more, while its other URLs wait
        assert started() == SHARE
    finally:
        for c in held:
            c.close()
        for o in trickling + [healthy]:
            o.stop()


def test_a_lone_client_gets_most_slots(origin, start_arca):
    # one client (a dispatcher, a prefetch batch, a proxy not trusted) asking as many slow URLs
    # as there are slots: three run at once, not two while two slots sit idle
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-downloads", str(SLOTS))
    release = threading.Event()
    slow = [origin.add(f"/lone/{i}", data=b"x" * 1000, on_request=lambda obj, i: release.wait(30))
            for i in range(SLOTS)]
    held = [ask(arca, url, ("direct", "127.0.0.2"), 30) for url in slow]
    try:
        started = lambda: sum(origin.counts[urllib.parse.urlsplit(u).path] for u in slow)
        wait_for(lambda: arca.status()["resources_scheduled"]
                 + arca.status()["resources_downloading"] == SLOTS, "the URLs are all asked for")
        wait_for(lambda: started() >= SHARE, f"{SHARE} of the lone client's downloads start")
        wait_for(lambda: arca.status()["resources_scheduled"] == SLOTS - SHARE,
                 "one slot is left for other clients")
        assert started() == SHARE
        # the listing says why the fourth waits while a slot is free
        assert waiting_for(arca) == ["max-downloads-per-client"]
        page = arca.get("/resources/scheduled/")[2].decode()
        assert "waits for a slot (--max-downloads-per-client)" in page
        release.set()
        for conn in held:
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
    finally:
        release.set()
        for conn in held:
            conn.close()


def test_waiting_downloads_start_in_turn_across_clients(origin, start_arca):
    # one slot: a client that asked for three URLs first does not go before another's one
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-downloads", "1")
    release = threading.Event()
    gate = origin.add("/gate", data=b"g", on_request=lambda obj, i: release.wait(30))
    first = [origin.add(f"/first/{i}", data=os.urandom(1000)) for i in range(3)]
    second = origin.add("/second", data=os.urandom(1000))
    held = [ask(arca, gate, ("direct", "127.0.0.4"), 30)]
    try:
        wait_for(lambda: origin.counts["/gate"] == 1, "the gate's download holds the slot")
        held += [ask(arca, url, ("direct", "127.0.0.2"), 30) for url in first]
        wait_for(lambda: arca.status()["resources_scheduled"] == 3, "the first client waits")
        held.append(ask(arca, second, ("direct", "127.0.0.3"), 30))
        wait_for(lambda: arca.status()["resources_scheduled"] == 4, "the second client waits")
        assert waiting_for(arca) == ["max-downloads"] * 4
        release.set()
        for conn in held:
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
        order = [path for path, _ in origin.requests]
        # the second client's turn comes after the first client's first download, not its last
        assert order[0] == "/gate" and order[2] == "/second", order
        assert sorted(order[1:2] + order[3:]) == ["/first/0", "/first/1", "/first/2"], order
    finally:
        release.set()
        for conn in held:
            conn.close()
