"""/api/v1/status/ (KissCache's keys) and /metrics after a known sequence of requests."""

import os
import re
import threading
import time

from conftest import wait_downloading

KISSCACHE_KEYS = {
    "timestamp", "disk_usage", "disk_usage_percent", "disk_quota", "instance",
    "resources_scheduled", "resources_downloading", "resources_successes", "resources_failures",
    "resources_usage", "statistics_successes", "statistics_failures", "statistics_download",
    "statistics_upload", "statistics_requests", "version",
}


def test_status_counts_a_miss_a_hit_and_an_error(origin, start_arca):
    data = os.urandom(300000)
    url = origin.add("/s", data=data)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "10M")
    assert arca.fetch(url)[0] == 200
    assert arca.fetch(url)[0] == 200
    assert arca.fetch(origin.url("/missing"))[0] == 404
    s = arca.status()
    assert KISSCACHE_KEYS <= set(s)
    assert s["statistics_requests"] == 3
    assert s["statistics_successes"] == 2
    assert s["statistics_failures"] == 1
    assert s["statistics_download"] == len(data)
    assert s["statistics_upload"] == 2 * len(data)
    assert s["resources_successes"] == 1
    assert s["resources_failures"] == 1
    assert s["resources_downloading"] == 0
    assert s["resources_usage"] == 2
    assert s["disk_usage"] == len(data)
    assert s["disk_quota"] == 10 * 1024 * 1024
    # KissCache: round(disk_usage / disk_quota * 100), an integer (300000 / 10 MiB: 2.86 -> 3)
    assert s["disk_usage_percent"] == 3 and isinstance(s["disk_usage_percent"], int)
    assert s["instance"] == f"http://{arca.host}:{arca.port}/"
    assert s["pinned_objects"] == 0 and s["pinned_bytes"] == 0  # no rule pins it


def test_metrics_in_prometheus_text(origin, arca):
    data = os.urandom(100000)
    url = origin.add("/m", data=data)
    arca.fetch(url)
    arca.fetch(url)
    arca.get("/api/v1/fetch/")  # 400
    # a hit's bytes are counted when the engine completes the response, which may be just
    # after the client has read them all (seen under ThreadSanitizer)
    deadline = time.monotonic() + 3
    while (m := arca.metrics())["arca_served_bytes_total"] < 2 * len(data):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert m['arca_requests_total{result="miss"}'] == 1
    assert m['arca_requests_total{result="hit"}'] == 1
    assert m['arca_requests_total{result="error"}'] == 1
    assert m["arca_served_bytes_total"] == 2 * len(data)
    assert m["arca_downloaded_bytes_total"] == len(data)
    assert m['arca_objects{state="complete"}'] == 1
    assert m['arca_objects{state="downloading"}'] == 0
    assert m["arca_disk_usage_bytes"] == len(data)
    assert m["arca_disk_quota_bytes"] == 5 * 1024**3
    assert m["arca_active_downloads"] == 0
    assert m["arca_active_connections"] >= 1  # this very request
    assert m["arca_pinned_objects"] == 0 and m["arca_pinned_bytes"] == 0


def test_metrics_show_the_persistence_queues_drained_once_objects_are_durable(origin, arca):
    url = origin.add("/durable", data=os.urandom(300000))
    assert arca.fetch(url)[0] == 200
    # a hit is served only once the object's file is synced, renamed and its row written: by
    # then neither queue holds a job of its (usage flushes may come and go: wait for idle)
    deadline = time.monotonic() + 5
    while True:
        m = arca.metrics()
        depths = (m['arca_persist_queue_jobs{queue="ordered"}'],
                  m['arca_persist_queue_jobs{queue="sync"}'])
        if depths == (0, 0) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert depths == (0, 0)
    status, headers, _ = arca.fetch(url)
    assert status == 200 and headers["cache-status"].startswith("arca; hit")


def test_status_shows_a_download_in_progress(origin, arca):
    data = os.urandom(2 * 1024 * 1024)
    url = origin.add("/slow", data=data, rate=1024 * 1024)
    t = threading.Thread(target=arca.fetch, args=(url,))
    t.start()
    wait_downloading(arca, "/slow")  # its bytes are coming in
    s = arca.status()
    assert s["resources_downloading"] == 1 and s["resources_successes"] == 0
    assert arca.metrics()['arca_objects{state="downloading"}'] == 1
    assert arca.metrics()["arca_active_downloads"] == 1
    t.join(30)
    s = arca.status()
    assert s["resources_downloading"] == 0 and s["resources_successes"] == 1
    assert s["resources_scheduled"] == 0


def test_status_instance_is_the_base_url_the_client_used(arca):
    import json
    def instance(headers):
        return json.loads(arca.get("/api/v1/status/", headers=headers)[2])["instance"]
    assert instance({"Host": "cache.lab.example:8001"}) == "http://cache.lab.example:8001/"
    assert instance({"Host": "[::1]:8001"}) == "http://[::1]:8001/"
    # a Host that is not a host[:port] cannot put anything into the answer
    fallback = f"http://{arca.host}:{arca.port}/"
    for bad in ("evil.example/path", "a\"b", "x@y", "<script>", "h:1 h", "a" * 300, ""):
        assert instance({"Host": bad}) == fallback, bad
    # X-Forwarded-* from a client that is not a --trusted-proxy changes nothing
    assert instance({"Host": "c.example", "X-Forwarded-Proto": "https",
                     "X-Forwarded-Host": "evil.example"}) == "http://c.example/"


def test_status_instance_says_https_behind_a_trusted_proxy(start_arca):
    import json
    arca = start_arca("--trusted-proxy", "127.0.0.1/32")
    def instance(headers):
        return json.loads(arca.get("/api/v1/status/", headers=headers)[2])["instance"]
    assert instance({"Host": "cache.example", "X-Forwarded-Proto": "https",
                     "X-Forwarded-For": "10.0.0.7"}) == "https://cache.example/"
    assert instance({"Host": "cache.example", "X-Forwarded-Proto": "gopher",
                     "X-Forwarded-For": "10.0.0.7"}) == "http://cache.example/"


def test_disk_usage_percent_rounds_as_kisscache(origin, start_arca):
    # 1536 of 1 MiB is 0.146 %: 0; 6 KiB of 1 MiB is 0.59 %: 1 (Python's round, half to even)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "1M")
    assert arca.fetch(origin.add("/a", data=b"a" * 1536))[0] == 200
    assert arca.status()["disk_usage_percent"] == 0
    assert arca.fetch(origin.add("/b", data=b"b" * 4608))[0] == 200
    assert arca.status()["disk_usage_percent"] == 1


def test_threads_are_named_for_top(start_arca):
    """An operator's `top -H` shows which of arca's threads takes the CPU."""
    arca = start_arca("--threads", "2")
    want = {"arca-http0", "arca-http1", "arca-upstream", "arca-index", "arca-sync"}
    # each thread names itself as it starts: one may answer health before another has run
    # (seen under ThreadSanitizer on a loaded machine)
    deadline = time.monotonic() + 10
    while True:
        names = set()
        for tid in os.listdir(f"/proc/{arca.proc.pid}/task"):
            with open(f"/proc/{arca.proc.pid}/task/{tid}/comm") as f:
                names.add(f.read().strip())
        if want <= names or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert want <= names


def test_a_refused_client_is_no_failure_and_not_in_the_hit_ratio(origin, start_arca):
    """Issue 51: a 403 to a client outside --allow-network is counted as refused: not a failure,
    not an error, and the hit ratio (status page, `arca status`) leaves it out."""
    from test_cli import cli, server
    url = origin.add("/r", data=b"r" * 1000)
    open_arca = start_arca("--upstream-allow", "127.0.0.0/8")
    assert open_arca.fetch(url)[0] == 200 and open_arca.fetch(url)[0] == 200  # a miss, a hit
    shut = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "10.0.0.0/8",
                      data_dir=open_arca.data_dir + "-shut")
    for _ in range(2):
        assert shut.fetch(url)[0] == 403
    s = shut.status()
    assert s["statistics_refused"] == 2 and s["statistics_requests"] == 2
    assert s["statistics_failures"] == 0 and s["resources_failures"] == 0
    m = shut.metrics()
    assert m['arca_requests_total{result="refused"}'] == 2
    assert m['arca_requests_total{result="error"}'] == 0
    # every request refused: said so, and the refused counted where they are shown
    page = shut.get("/statistics/")[2].decode()
    assert ('<div class="value">none tried</div><div class="label">answered from disk: every '
            'request refused') in page
    assert 'id="refused"><div class="value">2</div>' in page
    out = cli("status", *server(shut)).stdout
    assert "requests   2, none tried: all refused" in out
    assert "refused    2 clients not allowed to fetch (403), 0 held down (503/429)" in out
    # the open one: a miss and a hit, 50 %, whatever the other refused
    assert "requests   2: 1 of 2 tried answered from disk (50.0 %)" in \
        cli("status", *server(open_arca)).stdout


def test_the_hit_ratio_counts_every_answer_from_disk(origin, start_arca):
    """The hit ratio's "answered from disk" counts what upstream did not send the body of:
    fresh hits, expired versions answered stale and versions renewed by a 304; a request joined
    to a download is not (its bytes came from upstream). It said 33.3 % for a miss, a hit and a
    304 renewal: fresh hits only."""
    from test_cli import cli, server
    from conftest import wait_age
    url = origin.add("/d", data=b"d" * 1000, etag='"d1"')
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    # the miss and the hit at the default ttl: with ttl=1s a second boundary falling between
    # them made the hit a renewal (the copy 1 s old by arca's whole-second clock)
    assert arca.fetch(url)[0] == 200  # a miss
    assert arca.fetch(url)[0] == 200  # a hit
    wait_age(arca, "/d", 1)  # then 1 s old: the request's ttl=1s renews it
    assert arca.fetch(url, ttl="1s")[0] == 200  # renewed by a 304
    s = arca.status()
    assert s["statistics_revalidated"] == 1 and s["statistics_hits"] == 1
    assert s["statistics_disk_answers"] == 2 and s["statistics_tried"] == 3
    assert "requests   3: 2 of 3 tried answered from disk (66.7 %)" in \
        cli("status", *server(arca)).stdout
    page = arca.get("/statistics/")[2].decode()
    assert ('id="hit-ratio"><div class="value">66.7 %</div><div class="label">answered from '
            'disk (2 of 3 tried)') in page


def test_an_hour_without_requests_reads_no_requests_not_zero(origin, arca):
    """Issue 51: the hourly hit ratio of an hour nobody asked anything is not 0 %."""
    url = origin.add("/h", data=b"h" * 100)
    assert arca.fetch(url)[0] == 200 and arca.fetch(url)[0] == 200
    page = arca.get("/statistics/")[2].decode()
    ratios = re.findall(r"— hit ratio: ([^<]+)</title>", page)
    assert len(ratios) == 48 and ratios[-1] == "50 %", ratios[-3:]
    assert set(ratios[:-1]) == {"no requests"}, set(ratios[:-1])
