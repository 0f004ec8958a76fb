"""A dead host is known, not rediscovered by every request (issue 43, docs/CACHING.md "When the
origin is down"): after --origin-failures attempts in a row whose connection was refused or timed
out, cold misses for the host fail at once with 503, Retry-After and a reason naming it; one probe
at a time tries it again, and the first answer clears it. Other hosts are never slowed; what one
URL does after its request went (a reset, a stall, a 5xx) never holds its host down."""

import json
import os
import re
import socket
import threading
import time
from http.server import ThreadingHTTPServer

from conftest import Handler, Origin, SERVE_POLL, free_port, sha256, wait_age, wait_for
from test_cli import cli, server
from test_stale import fetch_until, stale_answer

FAST = ("--upstream-allow", "127.0.0.0/8", "--retry-delay", "50ms")


def held_down(arca, origin, path="/first"):
    """Stop origin (its connections refused) and ask for `path` until arca holds its host down."""
    origin.die()
    status, headers, body = arca.fetch(origin.url(path))
    assert status in (502, 503), (status, body)
    deadline = time.monotonic() + 10
    while arca.status()["upstream_hosts_down"] != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert arca.status()["upstream_hosts_down"] == 1


def revive(origin):
    """origin answers again on its port (a new server: held_down stopped the old one)."""
    origin.stop()  # lets go of the port held_down's die() kept
    origin.server = ThreadingHTTPServer((origin.host, origin.port), Handler)
    origin.server.daemon_threads = True
    origin.server.origin = origin
    origin.thread = threading.Thread(target=origin.server.serve_forever, args=(SERVE_POLL,),
                                     daemon=True)
    origin.thread.start()


def test_cold_misses_for_a_dead_host_fail_at_once_and_say_why(start_arca, origin):
    arca = start_arca(*FAST)
    t0 = time.monotonic()
    held_down(arca, origin)
    answers = [arca.fetch(origin.url(f"/x{i}")) for i in range(20)]
    # one probe at a time tries the host again, the first a second after the hold, then twice
    # as long each time (hosts.h): a machine slow enough to take seconds over these (ASan on a
    # loaded one) sees a miss that was the probe answer with the probe's own failure
    probes = [body.decode() for status, headers, body in answers if status != 503]
    assert len(probes) <= 1 + int(time.monotonic() - t0), probes
    assert all("upstream unreachable" in reason for reason in probes), probes
    for status, headers, body in answers:
        if status != 503:
            continue
        assert int(headers["retry-after"]) >= 1
        reason = body.decode()
        assert f"upstream host http://127.0.0.1:{origin.port} is down since" in reason
        assert re.search(r"\(\d+ failures in a row\)", reason), reason
    assert len(answers) - len(probes) >= 17
    assert arca.metrics()["arca_upstream_hosts_down"] == 1
    assert arca.metrics()["arca_held_down_failures_total"] >= 17
    # what the status shows: the host, since when, how many failures
    (down,) = arca.status()["upstream_hosts_down_list"]
    assert down["host"] == f"http://127.0.0.1:{origin.port}" and down["failures"] >= 3
    out = cli("status", *server(arca))
    assert "1 host held down" in out.stdout and f"127.0.0.1:{origin.port} down since" in out.stdout
    page = arca.get("/statistics/")[2].decode()
    assert 'id="hosts-down"' in page and f"http://127.0.0.1:{origin.port}" in page


def test_other_hosts_are_never_slowed(start_arca, origin):
    arca = start_arca(*FAST)
    held_down(arca, origin)
    other = Origin()
    try:
        data = os.urandom(100_000)
        status, headers, body = arca.fetch(other.add("/ok", data=data))
        assert status == 200 and sha256(body) == sha256(data)
        assert arca.status()["upstream_hosts_down"] == 1
    finally:
        other.stop()


def test_the_first_answer_clears_the_host(start_arca, origin):
    arca = start_arca(*FAST)
    held_down(arca, origin)
    data = os.urandom(10_000)
    origin.add("/back", data=data)
    origin.add("/x1", data=b"x")
    revive(origin)
    # the probe is due within a few seconds (1 s, doubling): until it has gone, misses fail
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, body = arca.fetch(origin.url("/back"))
        if status == 200:
            break
        assert status == 503
        time.sleep(0.3)
    assert status == 200 and body == data
    assert arca.status()["upstream_hosts_down"] == 0
    assert arca.fetch(origin.url("/x1"))[0] == 200  # no longer refused at once


def test_an_expired_object_of_a_dead_host_answers_stale_at_once(start_arca, origin):
    arca = start_arca(*FAST)
    data = os.urandom(50_000)
    url = origin.add("/kernel", data=data, etag='"k"')
    assert arca.fetch(url, ttl="2s")[0] == 200
    held_down(arca, origin)
    wait_age(arca, "/kernel", 2)
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert "fwd=stale" in headers["cache-status"]


def test_origin_failures_zero_never_holds_a_host(start_arca, origin):
    arca = start_arca(*FAST, "--origin-failures", "0")
    origin.die()
    for p in ("/a", "/b"):
        status, _, body = arca.fetch(origin.url(p))
        assert status == 502
    assert b"after 5 attempts" in body  # every attempt went: 1 and --download-retries 4
    assert arca.status()["upstream_hosts_down"] == 0


def test_a_held_down_host_reads_the_same_for_a_cached_signed_url(start_arca, origin):
    """A signed URL's confirmation to a host held down fails at once as an uncached URL's miss
    does: same status, Retry-After, Cache-Status and words, so the answer tells nothing of what
    is cached (and no stale copy goes to a URL upstream never accepted)."""
    from test_signed import add_signed, check_signature, s3_url

    arca = start_arca(*FAST, "--confirm-ttl", "1s")
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    origin.add("/bucket/other", data=b"x" * 1000, check=check_signature("/bucket/other"))
    held_down(arca, origin)
    seen = lambda r: (r[0], r[1].get("cache-status"), r[1].get("retry-after") is not None,
                      re.sub(rb"in [0-9]+ s", b"in T s", r[2]))
    cached = arca.fetch(s3_url(origin, nonce="n1"))
    uncached = arca.fetch(s3_url(origin, "/bucket/other", nonce="n1"))
    assert seen(cached) == seen(uncached), (cached, uncached)
    assert cached[0] == 503 and sha256(cached[2]) != sha256(data)


def test_a_broken_url_answering_500_never_holds_its_host_down(start_arca, origin):
    # any client could ask for it: a 500 is one URL's trouble, not the host's
    arca = start_arca(*FAST)
    origin.add("/broken", status=500)
    for _ in range(3):
        assert arca.fetch(origin.url("/broken"))[0] == 500
    assert arca.status()["upstream_hosts_down"] == 0
    data = os.urandom(5_000)
    assert arca.fetch(origin.add("/fine", data=data))[2] == data


def test_the_download_that_finds_a_host_dead_stops_there(start_arca, origin):
    # default --retry-delay 1s: attempts at 0, 1 and 3 s hold the host down; the download ends
    # there with its own failure, instead of two more attempts (and a probe) up to 15 s
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    url = origin.url("/dead")
    origin.die()
    began = time.monotonic()
    status, _, body = arca.fetch(url)
    took = time.monotonic() - began
    assert status == 502 and b"after 3 attempts" in body, body
    assert took < 8, f"{took:.1f} s"
    assert arca.status()["upstream_hosts_down"] == 1


def test_a_route_answering_502_never_holds_its_host_down(start_arca, origin):
    # the outside review's attack: one request for such a route made 5 failed attempts and held
    # the host down; then a request a second won every probe. An answer is one URL's word.
    arca = start_arca(*FAST)
    origin.add("/broken-route", data=b"", status=502)
    for _ in range(5):
        assert arca.fetch(origin.url("/broken-route"))[0] == 502
    assert arca.status()["upstream_hosts_down"] == 0
    data = os.urandom(5_000)
    assert arca.fetch(origin.add("/fine", data=data))[2] == data


def test_a_probe_redirected_to_a_refused_address_clears_the_host(start_arca, origin):
    # the outside review's attack: the probe's attempt ended refused by the address policy (a
    # redirect to arca itself), the "probe out" mark stayed and every miss got 503 until a
    # restart. A redirect is an answer: the host is up.
    arca = start_arca(*FAST)
    held_down(arca, origin)
    origin.add("/hop", redirect=f"http://127.0.0.1:{arca.port}/metrics")
    data = os.urandom(5_000)
    origin.add("/fine", data=data)
    revive(origin)
    # misses fail at once until the probe is due (1 s); the probe is this route's attempt
    status, _, body = fetch_until(arca, origin.url("/hop"), lambda s, h: s != 503)
    assert status == 403, (status, body)
    status, _, body = fetch_until(arca, origin.url("/fine"), lambda s, h: s != 503)
    assert status == 200 and body == data, (status, body)
    assert arca.status()["upstream_hosts_down"] == 0


def test_a_route_reset_after_the_request_never_holds_its_host_down(start_arca, origin):
    # the outside review's attack: a route that resets once it has read the request (nginx's
    # `return 444`), asked every 0.1 s by one client, held a healthy host down: another
    # client's new URLs got 503, and an expired copy was answered stale while the origin served
    # a new version. The connection was made and the request sent: the host is up.
    arca = start_arca(*FAST)
    old, new = os.urandom(20_000), os.urandom(21_000)
    url = origin.add("/index", data=old, etag='"1"')
    assert arca.fetch(url, ttl="2s")[0] == 200
    reset = origin.add("/444", data=b"x", abort=True)
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            arca.fetch(reset)
            stop.wait(0.1)

    client = threading.Thread(target=hammer, daemon=True)
    client.start()
    try:
        deadline = time.monotonic() + 20
        while origin.counts["/444"] < 3:  # as many resets as held a host down before
            assert time.monotonic() < deadline, "the resetting route was not asked"
            time.sleep(0.05)
        wait_age(arca, "/index", 2)
        origin.objects["/index"].data, origin.objects["/index"].etag = new, '"2"'
        status, headers, body = arca.fetch(url)
        assert status == 200 and sha256(body) == sha256(new) and not stale_answer(headers)
        files = {f"/new{i}": os.urandom(2_000) for i in range(30)}
        for path, data in files.items():
            status, _, body = arca.fetch(origin.add(path, data=data))
            assert status == 200 and body == data, (path, status, body)
        assert arca.status()["upstream_hosts_down"] == 0
    finally:
        stop.set()
        client.join()


def test_a_full_table_of_dead_hosts_still_holds_a_new_outage(start_arca, origin):
    # the outside review's attack: 261 dead ports filled the table of hosts for good, and a real
    # outage afterwards was never held. The oldest entry makes room for the new one.
    arca = start_arca(*FAST, "--origin-failures", "1", "--download-retries", "0")
    origin.die()  # nothing listens on its port any more: a connection there is refused
    held = {}  # dead ports held bound, never listening: refused, and no parallel server's
    try:
        while len(held) < 256:
            port, s = free_port(), socket.socket()
            try:
                s.bind(("127.0.0.1", port))
                held.setdefault(port, s)
            except OSError:  # taken between free_port() and here
                s.close()
        for port in set(held) - {origin.port}:
            assert arca.fetch(f"http://127.0.0.1:{port}/x")[0] == 502
    finally:
        for s in held.values():
            s.close()
    assert arca.status()["upstream_hosts_down"] >= 250
    assert arca.fetch(origin.url("/lab"))[0] == 502
    status, headers, body = arca.fetch(origin.url("/lab"))
    assert status == 503 and "retry-after" in headers, (status, body)
    assert f"http://127.0.0.1:{origin.port}" in [d["host"] for d in
                                                 arca.status()["upstream_hosts_down_list"]]


def test_a_confirmation_probe_redirected_to_a_refused_address_clears_the_host(start_arca, origin):
    # the same attack through a signed URL's confirmation (a probe of its own, not a download)
    from test_signed import PATH, add_signed, s3_url

    arca = start_arca(*FAST, "--confirm-ttl", "1s")
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    held_down(arca, origin)
    origin.objects[PATH].redirect = f"http://127.0.0.1:{arca.port}/metrics"
    revive(origin)
    status, _, body = fetch_until(arca, s3_url(origin, nonce="n1"), lambda s, h: s != 503)
    assert status != 200 and sha256(body) != sha256(data), (status, body)
    origin.objects[PATH].redirect = ""
    status, _, body = fetch_until(arca, s3_url(origin, nonce="n2"), lambda s, h: s != 503)
    assert status == 200 and sha256(body) == sha256(data), (status, body)
    assert arca.status()["upstream_hosts_down"] == 0


def failures_listed(arca):
    """The failures listing: its count (counts.failures) and its rows' URLs."""
    doc = json.loads(arca.get("/api/v1/resources/?state=failures&limit=100")[2])
    return {"count": doc["counts"]["failures"], "rows": [r["url"] for r in doc["resources"]]}


def test_held_down_refusals_are_counted_apart_not_as_failed_downloads(start_arca, origin):
    """Issue 51: a 503 for a host held down is its own result (statistics_held_down,
    arca_requests_total{result="held_down"}): not a download that failed, not an error, not in
    the hit ratio; and the status says since when the host is down as an ISO date."""
    arca = start_arca(*FAST)
    other = Origin()
    try:
        url = other.add("/ok", data=b"ok" * 100)
        assert arca.fetch(url)[0] == 200 and arca.fetch(url)[0] == 200  # a miss, a hit
        held_down(arca, origin)
        before, m_before = arca.status(), arca.metrics()
        failed_before = failures_listed(arca)
        answers = [arca.fetch(origin.url(f"/x{i}"))[0] for i in range(10)]
        held = answers.count(503)
        tried = len(answers) - held  # a probe let through fails as a download
        assert held >= 8, answers
        s, m = arca.status(), arca.metrics()
        assert s["statistics_held_down"] - before["statistics_held_down"] == held
        assert m['arca_requests_total{result="held_down"}'] - \
            m_before['arca_requests_total{result="held_down"}'] == held
        assert s["resources_failures"] - before["resources_failures"] == tried
        # the failures listing holds the downloads tried, as resources_failures counts them
        listed = failures_listed(arca)
        assert listed["count"] - failed_before["count"] == tried, listed
        assert len(listed["rows"]) - len(failed_before["rows"]) == tried, listed
        assert listed["count"] == s["resources_failures"]
        assert s["statistics_failures"] - before["statistics_failures"] == tried
        assert m['arca_requests_total{result="error"}'] - \
            m_before['arca_requests_total{result="error"}'] == tried
        (down,) = s["upstream_hosts_down_list"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", down["since"]), down
        assert down["since"] <= s["timestamp"]
        # the hit ratio: one hit of the requests arca tried (not the held down ones)
        tried = s["statistics_requests"] - s["statistics_held_down"]
        assert s["statistics_tried"] == tried
        ratio = s["statistics_hits"] / tried
        out = cli("status", *server(arca)).stdout
        assert f"of {tried} tried answered from disk ({100 * ratio:.1f} %)" in out
        assert f"0 clients not allowed to fetch (403), {s['statistics_held_down']} held " \
            "down (503/429)" in out
        assert ratio > s["statistics_hits"] / s["statistics_requests"]
        page = arca.get("/statistics/")[2].decode()
        assert f'id="held-down"><div class="value">{s["statistics_held_down"]}</div>' in page
        assert f'id="hit-ratio"><div class="value">{100 * ratio:.1f} %' in page
    finally:
        other.stop()


def test_a_held_down_answer_says_upstream_was_not_asked(start_arca, origin, workdir):
    """A 503 for a host held down says what happened: `Cache-Status: arca; detail=held-down`
    (no fwd: upstream was never asked; it said fwd=uri-miss, "downloaded for this request"),
    and the access log's HELD_DOWN, the metrics' word (it said ERROR)."""
    path = os.path.join(workdir, "access.log")
    arca = start_arca(*FAST, "--access-log", path)
    held_down(arca, origin)
    status, headers, _ = fetch_until(arca, origin.url("/held"), lambda s, h: s == 503 and
                                     h.get("retry-after") is not None)
    assert headers["cache-status"] == "arca; detail=held-down", headers
    deadline = time.monotonic() + 5
    while not re.search(r'"GET /api/v1/fetch/\?url=\S+held HTTP/1.1" 503 .* HELD_DOWN ',
                        open(path).read()):
        assert time.monotonic() < deadline, open(path).read()
        time.sleep(0.05)


def test_a_held_host_back_up_is_probed_within_the_slots_and_the_rest_fail_at_once(start_arca,
                                                                                  origin):
    """The second and third outside reviews of issue 51: once a held host's probe fell due, its
    downloads all waited for a download slot (the probe runs within the limits), and every
    request for the host hung behind another client's slow download; refusing them all at once
    instead left a host back up held as long as the lab stayed busy. One of the host's downloads
    waits for a slot to be the probe; the others are refused at once; the probe clears it."""
    arca = start_arca(*FAST, "--max-downloads", "1")
    slow_origin = Origin()
    gate = threading.Event()
    try:
        slow = slow_origin.add("/slow", data=os.urandom(1000), last_byte_gate=gate)
        held_down(arca, origin)
        data = os.urandom(20_000)
        origin.add("/back", data=data)
        revive(origin)  # the host is back; arca learns it from its probe
        holder = threading.Thread(target=arca.fetch, args=(slow,), daemon=True)
        holder.start()  # another client's download takes the one slot until the gate opens
        wait_for(lambda: arca.status()["resources_downloading"] == 1, "the slot taken")
        wait_for(lambda: arca.status()["upstream_hosts_down_list"][0]["next_probe_ms"] <= 0,
                 "the probe due")
        probe = threading.Thread(target=lambda: results.append(arca.fetch(origin.url("/back"))),
                                 daemon=True)
        results = []
        probe.start()  # it waits for the slot, to be the host's probe
        wait_for(lambda: arca.status()["resources_scheduled"] == 1, "the probe waits for a slot")
        for i in range(3):  # the host's other downloads meanwhile: refused at once
            t0 = time.monotonic()
            status, headers, body = arca.get(arca.fetch_path(origin.url(f"/due{i}")), timeout=10)
            assert status == 503 and headers["cache-status"] == "arca; detail=held-down", \
                (status, body)
            assert time.monotonic() - t0 < 5, "a held host's request waited for a slot"
        assert arca.status()["resources_scheduled"] == 1
        gate.set()  # the slot frees: the waiting download probes, the host is up again
        probe.join(30)
        assert results and results[0][0] == 200 and results[0][2] == data, results
        assert arca.status()["upstream_hosts_down"] == 0
        assert arca.fetch(origin.url("/back"))[2] == data
    finally:
        gate.set()
        slow_origin.stop()


def test_a_held_host_gets_no_piece_requests(start_arca, origin):
    """Every request to upstream asks the host hold (issue 52): a fill's pieces too. The held
    host's probe is a download large enough to be filled in parallel; its host stays held until
    that attempt ends, so none of its pieces is asked: it comes over its own connection alone,
    one GET without a Range at the origin."""
    arca = start_arca(*FAST, "--fill-min-size", "1M")
    held_down(arca, origin)
    data = os.urandom(2 << 20)
    # paced: the download's own connection is still under way as its pieces would be asked
    url = origin.add("/big", data=data, etag='"big"', headers={"Accept-Ranges": "bytes"},
                     rate=1 << 20)
    revive(origin)
    before = arca.metrics()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, body = arca.fetch(url)
        if status == 200:
            break
        assert status == 503  # refused at once until the probe is due
        time.sleep(0.3)
    assert status == 200 and sha256(body) == sha256(data)
    assert [h.get("Range", "") for p, h in origin.requests if p == "/big"] == [""]
    after = arca.metrics()
    assert after["arca_fills_total"] == before["arca_fills_total"] + 1  # a fill began
    assert after["arca_fill_ranges_total"] == before["arca_fill_ranges_total"]  # no piece asked
    assert after["arca_fill_stops_total"] == before["arca_fill_stops_total"] + 1
    assert arca.status()["upstream_hosts_down"] == 0  # the probe's answer cleared it
