"""The access log (combined format + cache result + duration), --access-log, --log-level and
SIGHUP's reopening of the log file."""

import json
import os
import re
import signal
import socket
import threading
import time

from conftest import wait_downloading

# host - - [date] "request" status bytes "referer" "agent" CACHE seconds
LINE = re.compile(r'^(?P<client>\S+) - - \[(?P<date>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
                  r'"(?P<request>[^"]*)" (?P<status>\d{3}|-) (?P<bytes>\d+) '
                  r'"(?P<referer>[^"]*)" "(?P<agent>[^"]*)" (?P<cache>HIT|MISS:origin|COALESCED|ERROR|-) '
                  r'(?P<seconds>\d+\.\d{3})$')


def access_lines(text):
    return [m.groupdict() for m in map(LINE.match, text.splitlines()) if m]


def wait_lines(read, n, timeout=5):
    deadline = time.monotonic() + timeout
    while len(access_lines(read())) < n:
        assert time.monotonic() < deadline, read()
        time.sleep(0.05)
    return access_lines(read())


def read_file(path):
    with open(path) as f:
        return f.read()


def test_each_request_gets_one_line_with_its_cache_result(origin, arca):
    data = os.urandom(500000)
    # 2 s of download: the second client joins it even on a loaded machine (at 1 MB/s, a CI run
    # beside a debootstrap once saw the download over before the second client's request came)
    url = origin.add("/k", data=data, rate=250000)
    results = []
    clients = [threading.Thread(target=lambda: results.append(arca.fetch(url)[0]))
               for _ in range(2)]
    clients[0].start()
    wait_downloading(arca, "/k")
    clients[1].start()
    for c in clients:
        c.join()
    arca.fetch(url, headers={"Referer": "http://lab/job/1", "User-Agent": 'lava "dispatcher"'})
    arca.fetch(origin.url("/missing"))
    arca.get("/api/v1/status/")
    # A line is written once its response is over, which may come a moment after the client
    # has it, even after the next request's line (a CI run saw the 404's after the status's):
    # wait for all five, then take each by what it was.
    deadline = time.monotonic() + 5
    while True:
        lines = access_lines(arca.read_log())
        fetches = [l for l in lines if "/api/v1/fetch" in l["request"]]
        status = [l for l in lines if l["request"].startswith("GET /api/v1/status/")]
        if len(fetches) == 4 and status:
            break
        assert time.monotonic() < deadline, arca.read_log()
        time.sleep(0.05)
    by_cache = {l["cache"]: l for l in fetches}
    # a miss says where its bytes came from (here: the origin)
    assert sorted(by_cache) == ["COALESCED", "ERROR", "HIT", "MISS:origin"]
    assert [by_cache[c]["status"] for c in ("MISS:origin", "COALESCED", "HIT", "ERROR")] == \
        ["200", "200", "200", "404"]
    assert all(int(by_cache[c]["bytes"]) == len(data)
               for c in ("MISS:origin", "COALESCED", "HIT"))
    assert float(by_cache["MISS:origin"]["seconds"]) >= 1.5  # 500 kB at 250 kB/s
    assert by_cache["MISS:origin"]["request"].startswith("GET /api/v1/fetch/?url=http") and \
        by_cache["MISS:origin"]["request"].endswith(" HTTP/1.1")
    assert by_cache["HIT"]["referer"] == "http://lab/job/1"
    assert by_cache["HIT"]["agent"] == r"lava \x22dispatcher\x22"  # a quote cannot end the field
    assert status[0]["cache"] == "-"


def test_a_client_cannot_forge_a_log_line(arca):
    arca.get("/nothing?x=%0a1.2.3.4", headers={"User-Agent": "a\x7fb"})
    deadline = time.monotonic() + 5
    while not [l for l in access_lines(arca.read_log()) if "/nothing" in l["request"]]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    line = [l for l in access_lines(arca.read_log()) if "/nothing" in l["request"]][0]
    assert line["status"] == "404" and line["agent"] == r"a\x7fb"
    assert "\n1.2.3.4" not in arca.read_log()


def test_access_log_to_a_file_is_reopened_on_sighup(origin, start_arca, workdir):
    path = os.path.join(workdir, "access.log")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--access-log", path)
    url = origin.add("/r", data=b"r" * 1000)
    arca.fetch(url)
    assert len(wait_lines(lambda: read_file(path), 1)) == 1  # the fetch; not the health checks
    os.rename(path, path + ".1")  # what logrotate does
    arca.proc.send_signal(signal.SIGHUP)
    assert arca.log_shows("SIGHUP: reloaded")
    arca.fetch(url)
    lines = wait_lines(lambda: read_file(path), 1)
    assert [l["cache"] for l in lines] == ["HIT"]
    assert not access_lines(arca.read_log())  # nothing went to stderr


def test_health_checks_are_logged_only_when_asked(start_arca, workdir):
    """A load balancer polls /api/v1/health/ every second: by default its requests are not in the
    access log (start_arca itself polled it until arca answered)."""
    quiet_log, chatty_log = (os.path.join(workdir, n) for n in ("quiet.log", "chatty.log"))
    quiet = start_arca("--access-log", quiet_log)
    chatty = start_arca("--access-log", chatty_log, "--log-health-checks")
    for a in (quiet, chatty):
        assert a.get("/api/v1/health/")[0] == 200
        assert a.get("/api/v1/health")[0] == 200
        assert a.get("/api/v1/status/")[0] == 200
    lines = wait_lines(lambda: read_file(quiet_log), 1)
    assert [l["request"] for l in lines] == ["GET /api/v1/status/ HTTP/1.1"]
    # the readiness polls (one or more) and ours; lines of requests on separate connections may
    # be written in either order
    def requests():
        return [l["request"] for l in access_lines(read_file(chatty_log))]
    deadline = time.monotonic() + 5
    while not ("GET /api/v1/status/ HTTP/1.1" in requests() and
               "GET /api/v1/health HTTP/1.1" in requests() and
               requests().count("GET /api/v1/health/ HTTP/1.1") >= 2):
        assert time.monotonic() < deadline, requests()
        time.sleep(0.05)
    assert set(requests()) == {"GET /api/v1/health/ HTTP/1.1", "GET /api/v1/health HTTP/1.1",
                               "GET /api/v1/status/ HTTP/1.1"}


def test_hostile_requests_to_the_health_path_are_logged(start_arca, workdir):
    """Only a health check (GET or HEAD answered 200 or 503) is left out of the access log: a
    POST, a DELETE or a request smuggling attempt on its path is an admin's business."""
    path = os.path.join(workdir, "access.log")
    arca = start_arca("--access-log", path)
    assert arca.get("/api/v1/health/", method="HEAD")[0] == 200
    assert arca.get("/api/v1/health/", method="DELETE")[0] >= 400
    with socket.create_connection(("127.0.0.1", arca.port)) as s:
        s.sendall(b"POST /api/v1/health/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert arca.get("/api/v1/status/")[0] == 200
    deadline = time.monotonic() + 5
    while len(access_lines(read_file(path))) < 3:
        assert time.monotonic() < deadline, read_file(path)
        time.sleep(0.05)
    lines = sorted((l["request"], l["status"]) for l in access_lines(read_file(path)))
    assert [r for r, _ in lines] == ["DELETE /api/v1/health/ HTTP/1.1",
                                     "GET /api/v1/status/ HTTP/1.1",
                                     "POST /api/v1/health/ HTTP/1.1"], lines
    assert dict((r.split()[0], s) for r, s in lines)["POST"] == "400"


def test_access_log_off_and_log_levels(origin, start_arca):
    url = origin.add("/d", data=b"d" * 1000)
    quiet = start_arca("--upstream-allow", "127.0.0.0/8", "--access-log", "off",
                       "--log-level", "error")
    quiet.fetch(url)
    quiet.fetch(origin.url("/missing"))
    assert quiet.log_shows("error fetch")
    log = quiet.read_log()
    assert not access_lines(log) and " info " not in log
    chatty = start_arca("--upstream-allow", "127.0.0.0/8", "--log-level", "debug")
    chatty.fetch(url)
    assert chatty.log_shows(f"debug fetch {url}: download started")
    assert chatty.log_shows(f"debug fetch {url}: download ended after 1 attempt(s)")


def test_start_up_lines_read_as_written(origin, start_arca):
    """An IPv6 address is in brackets, as --listen takes it ([::1]:8011, not ::1:8011), and one
    object is "1 object"."""
    url = origin.add("/one", data=b"1" * 100)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--upstream-allow", "::1/128",
                      host="::1")
    assert arca.fetch(url)[0] == 200
    arca.stop()
    arca.start(keep_port=True)
    log = arca.read_log()
    assert f" info listening on [::1]:{arca.port}\n" in log, log
    assert re.search(r" info store: 1 object, \d+ bytes in ", log), log
    # the loopback warning names the address as --listen writes it too
    arca = start_arca("--upstream-allow", "127.0.0.0/8", host="::")
    arca.stop()
    assert "while it listens on [::]: every client" in arca.read_log()


def test_a_warning_is_logged_at_warning_level(start_arca):
    """Listening on every address with loopback opened upstream is a setting to change: said with
    the level "warning", shown at the default level and at --log-level warning, not at error."""
    warnings = []
    for level in ("info", "warning", "error"):  # the servers share arca.log: lines add up
        arca = start_arca("--upstream-allow", "127.0.0.0/8", "--log-level", level,
                          host="0.0.0.0")
        arca.stop()
        lines = [l for l in arca.read_log().splitlines() if "host's loopback" in l]
        warnings.append(len(lines))
    assert warnings == [1, 2, 2], warnings
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ warning --upstream-allow lets arca "
                        r"fetch from this host's loopback while it listens on 0\.0\.0\.0: .*",
                        lines[0]), lines[0]


def test_a_bad_log_level_or_unwritable_access_log_stops_arca_with_one_line(workdir):
    import subprocess
    from conftest import ARCA_BIN, free_port
    for args, reason in ((["--log-level", "loud"], "--log-level: expected error, warning, info or debug"),
                         (["--access-log", "/nonexistent/dir/a.log"], "--access-log")):
        out = subprocess.run([ARCA_BIN, "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir",
                              os.path.join(workdir, "d"), *args], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode != 0 and reason in out.stderr and out.stderr.count("\n") == 1


def test_sigusr1_reopens_the_access_log_and_reloads_nothing(origin, start_arca, workdir):
    """logrotate's signal: a nightly rotation must not apply a half-edited config (SIGHUP
    reloads it), so SIGUSR1 only reopens the access log."""
    path, ini = os.path.join(workdir, "access.log"), os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write("[arca]\nquota = 5G\nupstream-allow = 127.0.0.0/8\n")
    arca = start_arca("--config", ini, "--access-log", path)
    url = origin.add("/u", data=b"u" * 1000)
    arca.fetch(url)
    assert len(wait_lines(lambda: read_file(path), 1)) == 1
    with open(ini, "w") as f:  # an edit under way
        f.write("[arca]\nquota = 1G\nupstream-allow = 127.0.0.0/8\n")
    os.rename(path, path + ".1")
    arca.proc.send_signal(signal.SIGUSR1)
    assert arca.log_shows("SIGUSR1: access log reopened")
    arca.fetch(url)
    assert [l["cache"] for l in wait_lines(lambda: read_file(path), 1)] == ["HIT"]
    assert len(access_lines(read_file(path + ".1"))) == 1
    assert json.loads(arca.get("/api/v1/status/")[2])["disk_quota"] == 5 << 30
    assert "SIGHUP" not in arca.read_log()


def test_a_reopen_that_fails_says_where_lines_go_and_loses_none(origin, start_arca, workdir):
    """The log's directory moved away (a rotation gone wrong): SIGUSR1 cannot open the file
    again, says so and where lines go, and every line still lands in the file open before."""
    logdir = os.path.join(workdir, "logs")
    os.mkdir(logdir)
    arca = start_arca("--upstream-allow", "127.0.0.0/8",
                      "--access-log", os.path.join(logdir, "access.log"))
    url = origin.add("/moved", data=b"m" * 1000)
    arca.fetch(url)
    # a request's line is queued as it ends, just after its client's last byte: the miss's
    # is in before the hit is asked, so the two lines' order is the requests'
    assert len(wait_lines(lambda: read_file(os.path.join(logdir, "access.log")), 1)) == 1
    os.rename(logdir, logdir + ".old")
    arca.proc.send_signal(signal.SIGUSR1)
    assert arca.log_shows("SIGUSR1: --access-log " + os.path.join(logdir, "access.log")
                          + ": No such file or directory; lines go on to the file open before")
    arca.fetch(url)
    moved = os.path.join(logdir + ".old", "access.log")
    assert [l["cache"] for l in wait_lines(lambda: read_file(moved), 2)] == ["MISS:origin", "HIT"]


def test_a_hit_left_early_counts_the_bytes_it_was_sent(origin, start_arca):
    """A client that leaves a cached object's answer early: its access-log line and
    arca_served_bytes_total count what arca sent it, not 0 (nor the whole object)."""
    import urllib.parse
    arca = start_arca("--upstream-allow", "127.0.0.1/32")
    data = os.urandom(32 * 1024 * 1024)
    url = origin.add("/left.img", data=data)
    assert arca.fetch(url)[0] == 200  # cached whole
    before = arca.metrics()["arca_served_bytes_total"]
    target = "/api/v1/fetch/?" + urllib.parse.urlencode({"url": url})
    with socket.create_connection((arca.host, arca.port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: arca\r\n\r\n".encode())
        got = b""
        while len(got) < 1024 * 1024:
            piece = s.recv(65536)
            assert piece, got[:200]
            got += piece
    # closed with unread bytes: a reset, which arca's next write meets
    deadline = time.monotonic() + 10
    while True:
        lines = [l for l in access_lines(arca.read_log()) if "left.img" in l["request"]]
        if len(lines) == 2:
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    sent = int(lines[1]["bytes"])
    assert lines[1]["cache"] == "HIT" and lines[1]["status"] == "200"
    assert 1024 * 1024 - len(got.split(b"\r\n\r\n", 1)[0]) <= sent < len(data), sent
    assert arca.metrics()["arca_served_bytes_total"] == before + sent


def ask(arca, path, agent):
    """The whole answer to one request on a connection of its own, which arca closes: when the
    answer ends, arca has let go of the connection."""
    with socket.create_connection((arca.host, arca.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n"
                  "Connection: close\r\n\r\n".encode())
        out = b""
        while (piece := s.recv(65536)):
            out += piece
        return out


def test_a_health_check_refused_at_its_head_is_not_logged(origin, start_arca, workdir):
    """A load balancer's poll refused by --max-connections (503 before it is routed) is a poll
    all the same: left out, as the polls answered 200 are (an outside review found it logged)."""
    path = os.path.join(workdir, "access.log")
    arca = start_arca("--access-log", path, "--max-connections", "2",
                      "--upstream-allow", "127.0.0.0/8")
    # the two places taken by downloads being served (answered: surely counted, never idle)
    url = origin.add("/slow", data=os.urandom(48_000), rate=12_000, chunk=4000)
    held = [arca.stream(url) for _ in range(2)]
    try:
        assert ask(arca, "/api/v1/health/", "refused-poll").startswith(b"HTTP/1.1 503")
        assert ask(arca, "/nothing", "refused-other").startswith(b"HTTP/1.1 503")
    finally:
        for conn, _ in held:
            conn.close()
    # the refused request that is not a poll is logged; once it is there, the poll would be too
    deadline = time.monotonic() + 5
    while "refused-other" not in read_file(path):
        assert time.monotonic() < deadline, read_file(path)
        time.sleep(0.05)
    assert "refused-poll" not in read_file(path)


def test_the_log_says_why_an_object_was_removed(origin, start_arca, workdir):
    """Issue 51: `store: removed URL` says why: expired, evicted for room, purged, replaced."""
    from test_admin import purge, token_file
    from test_stale import wait_age
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "1M", "--stale-if-error",
                      "0", "--admin-token-file", token_file(workdir))
    gone = origin.add("/gone", data=b"g" * 100)  # no validator, nothing answers stale: expires
    assert arca.fetch(gone, ttl="1s")[0] == 200
    assert arca.log_shows(f"store: removed {gone} (expired)", timeout=10), arca.read_log()
    rep = origin.add("/rep", data=b"v1" * 50, etag='"v1"')
    assert arca.fetch(rep, ttl="1s")[0] == 200
    wait_age(arca, "/rep", 1)
    origin.objects["/rep"].data, origin.objects["/rep"].etag = b"v2" * 50, '"v2"'
    assert arca.fetch(rep)[2] == b"v2" * 50
    assert arca.log_shows(f"store: removed {rep} (replaced by a new version)"), arca.read_log()
    purged = origin.add("/purged", data=b"p" * 100)
    assert arca.fetch(purged)[0] == 200
    assert purge(arca, purged)[0] == 200
    assert arca.log_shows(f"store: removed {purged} (purged)"), arca.read_log()
    big = [origin.add(f"/big{i}", data=os.urandom(400_000)) for i in range(3)]
    for url in big:
        assert arca.fetch(url)[0] == 200
    assert arca.log_shows(f"store: removed {big[0]} (evicted for room)"), arca.read_log()


def test_an_expired_copy_the_origin_refuses_is_logged_as_removed(origin, start_arca):
    """An expired copy whose refresh the origin answers 404 or 501 (a verdict on the object, not
    an outage) goes from the listing and the disk: the log says so and why, as for every object
    taken off the disk (it said only `error fetch URL: 404 upstream answered 404`)."""
    from test_stale import wait_age
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    for path, status in (("/refused404", 404), ("/refused501", 501)):
        url = origin.add(path, data=b"r" * 100, etag=f'"{path}"')
        assert arca.fetch(url, ttl="1s")[0] == 200
        wait_age(arca, path, 1)
        origin.objects[path].status = status
        assert arca.fetch(url)[0] == status
        assert arca.log_shows(f"store: removed {url} (refresh failed: upstream answered {status})",
                              timeout=10), arca.read_log()


def test_refused_clients_are_logged_refused_and_counted(origin, start_arca, workdir):
    """A client outside --allow-network is REFUSED in the access log (the metrics' word), not
    ERROR, whether it fetched, sent an absolute-form request naming arca or a CONNECT; each is
    counted in statistics_refused (the CONNECT was logged `-` and counted nowhere but tunnels,
    the absolute-form request on arca's port, which arca must resolve to know whether it names
    arca, was counted nowhere)."""
    from test_proxy import open_tunnel
    path = os.path.join(workdir, "access.log")
    arca = start_arca("--access-log", path, "--upstream-allow", "127.0.0.0/8",
                      "--allow-network", "10.0.0.0/8")
    assert arca.fetch(origin.add("/r", data=b"r"))[0] == 403
    with socket.create_connection((arca.host, arca.port), timeout=10) as s:
        s.sendall(f"GET http://name.invalid:{arca.port}/x HTTP/1.1\r\nHost: name.invalid:"
                  f"{arca.port}\r\nConnection: close\r\n\r\n".encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 403")
    s, status, _ = open_tunnel(arca, "127.0.0.1:443")
    s.close()
    assert status.startswith(b"HTTP/1.1 403"), status
    st = arca.status()
    assert st["statistics_refused"] == 3 and st["statistics_requests"] == 2, st
    want = [r'"GET /api/v1/fetch/\?url=\S+ HTTP/1.1" 403 .* REFUSED ',
            rf'"GET http://name.invalid:{arca.port}/x HTTP/1.1" 403 .* REFUSED ',
            r'"CONNECT 127.0.0.1:443 HTTP/1.1" 403 .* REFUSED ']
    deadline = time.monotonic() + 5
    while not all(re.search(w, read_file(path)) for w in want):
        assert time.monotonic() < deadline, read_file(path)
        time.sleep(0.05)
    assert " ERROR " not in read_file(path)
