"""When the origin is down (issue 43, docs/CACHING.md "When the origin is down"): an expired
object whose refresh fails upstream (no answer, or 500/502/503/504) is answered from disk, at once
rather than after the retries, and says so; a verdict (404, 403, a new version) is never
overridden, and a stale answer goes only to a request that would have got the fresh one."""

import calendar
import json
import os
import signal
import time
import urllib.parse

import pytest

from conftest import sha256, wait_age, wait_for
from test_signed import s3_url


def expired(arca, origin, path, data, **kw):
    """An object cached with a 2 s ttl, once it has expired."""
    url = origin.add(path, data=data, **kw)
    assert arca.fetch(url, ttl="2s")[0] == 200
    wait_age(arca, path, 2)
    return url


def fetch_until(arca, url, done, timeout=20, **params):
    """Fetch `url` until done(status, headers) holds, or `timeout` s pass (a failed refresh is
    not tried again for STORE_STALE_RETRY_S, 10 s); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        status, headers, body = arca.fetch(url, **params)
        if done(status, headers) or time.monotonic() > deadline:
            return status, headers, body
        time.sleep(0.1)


def stale_answer(headers):
    status = headers.get("cache-status", "")
    return "fwd=stale" in status and "ttl=-" in status


FAILURES = {
    "503": lambda origin, obj: setattr(obj, "status", 503),
    "500": lambda origin, obj: setattr(obj, "status", 500),
    "504": lambda origin, obj: setattr(obj, "status", 504),
    # not a verdict on the object: "slow down", "the request took too long" (outside review)
    "429": lambda origin, obj: setattr(obj, "status", 429),
    "408": lambda origin, obj: setattr(obj, "status", 408),
    "refused": lambda origin, obj: origin.die(),
    "reset": lambda origin, obj: setattr(obj, "abort", True),
    "blackholed": lambda origin, obj: setattr(obj, "stall", 30),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_an_expired_object_answers_from_disk_when_its_origin_fails(arca, origin, failure):
    data = os.urandom(300_000)
    url = expired(arca, origin, "/Image", data, etag='"v1"')
    FAILURES[failure](origin, origin.objects["/Image"])
    began = time.monotonic()
    status, headers, body = arca.fetch(url)
    took = time.monotonic() - began
    assert status == 200 and sha256(body) == sha256(data)
    assert stale_answer(headers), headers
    if failure.isdigit():
        assert f"fwd-status={failure}" in headers["cache-status"]
    # not after 5 attempts and their backoffs (15 s and more), nor a blackhole's stall timeout
    assert took < 8, f"answered after {took:.1f} s"
    # the next client too, and the object is still whole on disk
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data) and stale_answer(headers)
    assert arca.metrics()['arca_stale_answers_total{cause="error"}'] + \
        arca.metrics()['arca_stale_answers_total{cause="slow"}'] >= 2


def test_without_a_validator_the_expired_copy_answers_too(arca, origin):
    data = os.urandom(50_000)
    url = expired(arca, origin, "/fw.bin", data)  # neither ETag nor Last-Modified
    origin.objects["/fw.bin"].status = 503
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data) and stale_answer(headers)
    assert "detail=stale-if-error" in headers["cache-status"]


def test_the_origin_back_renews_the_object(arca, origin):
    data = os.urandom(40_000)
    url = expired(arca, origin, "/dtb", data, etag='"d"')
    origin.objects["/dtb"].status = 503
    assert stale_answer(arca.fetch(url)[1])
    origin.objects["/dtb"].status = 200
    # within STORE_STALE_RETRY_S the failed refresh is not tried again; then it is, and a 304
    # makes the object fresh
    status, headers, body = fetch_until(arca, url, lambda s, h: not stale_answer(h), ttl="1h")
    assert status == 200 and body == data and not stale_answer(headers), headers
    assert arca.metrics()['arca_revalidations_total{result="unchanged"}'] >= 1
    assert stale_answer(arca.fetch(url)[1]) is False  # fresh for the hour asked


@pytest.mark.parametrize("verdict", [404, 410, 403])
def test_upstreams_verdict_is_never_overridden(arca, origin, verdict):
    data = os.urandom(20_000)
    url = expired(arca, origin, "/gone", data, etag='"g"')
    origin.objects["/gone"].status = verdict
    status, headers, _ = arca.fetch(url)
    assert status == verdict and not stale_answer(headers)
    # the object is gone with its file: the origin back, it is downloaded again
    origin.objects["/gone"].status = 200
    before = origin.counts["/gone"]
    assert arca.fetch(url)[2] == data
    assert origin.counts["/gone"] == before + 1
    assert arca.status()["disk_usage"] == len(data)


def test_a_new_version_is_downloaded_not_the_old_one_served(arca, origin):
    old, new = os.urandom(30_000), os.urandom(31_000)
    url = expired(arca, origin, "/rootfs", old, etag='"1"')
    origin.objects["/rootfs"].data, origin.objects["/rootfs"].etag = new, '"2"'
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(new) and not stale_answer(headers)


def test_stale_if_error_zero_never_answers_stale(start_arca, origin):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stale-if-error", "0",
                      "--download-retries", "0")
    url = expired(arca, origin, "/Image", b"k" * 1000, etag='"k"')
    origin.objects["/Image"].status = 503
    status, headers, _ = arca.fetch(url)
    assert status == 503 and not stale_answer(headers)


def test_an_unconfirmed_signed_url_never_gets_the_stale_copy(start_arca, origin):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--confirm-ttl", "1h")
    data = os.urandom(20_000)
    path = "/bucket/kernel/Image"
    signed = s3_url(origin, path, nonce="a")
    origin.add(path, data=data, etag='"s"')
    assert arca.fetch(signed, ttl="2s")[0] == 200
    wait_age(arca, path, 2)
    origin.die()
    # another credential's URL: upstream cannot confirm it, so it gets no bytes
    status, headers, body = arca.fetch(s3_url(origin, path, nonce="b"))
    assert status >= 500 and sha256(body) != sha256(data) and not stale_answer(headers)
    # the URL upstream accepted within --confirm-ttl gets the stale copy
    status, headers, body = arca.fetch(signed)
    assert status == 200 and sha256(body) == sha256(data) and stale_answer(headers)


def test_the_stale_copy_survives_kill_9_while_answering(start_arca, origin, workdir):
    data = os.urandom(2_000_000)
    data_dir = os.path.join(workdir, "kept")
    args = ("--upstream-allow", "127.0.0.0/8")
    arca = start_arca(*args, data_dir=data_dir)
    url = expired(arca, origin, "/big", data, etag='"b"')
    origin.objects["/big"].stall = 30  # blackholed: refreshes hang
    conn, resp = arca.stream(url)
    assert resp.status == 200 and stale_answer({k.lower(): v for k, v in resp.getheaders()})
    part = resp.read(100_000)
    arca.stop(signal.SIGKILL)  # while a stale answer streams and a refresh hangs
    conn.close()
    assert len(part) == 100_000
    again = start_arca(*args, data_dir=data_dir)
    status, headers, body = again.fetch(url)
    assert status == 200 and sha256(body) == sha256(data), "the expired copy is whole"


def test_a_stale_answer_is_logged_as_such(arca, origin):
    url = expired(arca, origin, "/log", b"l" * 500, etag='"l"')
    origin.objects["/log"].status = 503
    assert stale_answer(arca.fetch(url)[1])
    assert arca.log_shows(" STALE ")


def test_apt_through_the_proxy_gets_the_index_stale_when_the_mirror_is_down(arca, origin):
    from test_proxy import raw

    index = os.urandom(8_000)
    url = origin.add("/debian/dists/bookworm/InRelease", data=index, etag='"i"')
    apt = {"Cache-Control": "max-age=0"}  # what apt sends for index files
    assert raw(arca, "GET", url, apt)[0] == 200
    wait_age(arca, "/debian/dists/bookworm/InRelease", 1)  # max-age=0 made it a 1 s object
    origin.objects["/debian/dists/bookworm/InRelease"].status = 503
    status, headers, body = raw(arca, "GET", url, apt)
    assert status == 200 and body == index and stale_answer(headers)
    assert "(arca)" in headers["via"]


def test_stale_while_revalidate_answers_at_once_and_refreshes_once(start_arca, origin):
    import threading

    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stale-while-revalidate", "1h")
    data = os.urandom(100_000)
    url = expired(arca, origin, "/dtb", data, etag='"d"')
    obj = origin.objects["/dtb"]
    obj.stall = 2  # the refresh is slow: nobody waits for it
    before = origin.counts["/dtb"]
    answers = []
    clients = [threading.Thread(target=lambda: answers.append(arca.fetch(url)))
               for _ in range(8)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(30)
    assert len(answers) == 8
    for status, headers, body in answers:
        assert status == 200 and sha256(body) == sha256(data)
        assert "detail=stale-while-revalidate" in headers["cache-status"]
    # the refresh runs behind the answers: it may reach the origin after they are all in
    wait_for(lambda: origin.counts["/dtb"] - before >= 1, "the refresh reaches the origin")
    assert origin.counts["/dtb"] - before == 1, "one refresh for every request"
    assert arca.metrics()['arca_stale_answers_total{cause="revalidate"}'] == 8


def test_a_refresh_waiting_for_a_download_slot_answers_stale_too(start_arca, origin):
    # one download at a time to the host: the second refresh waits behind the first, which
    # hangs on a blackholed origin for the stall timeout; its client is not made to wait that out
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--max-downloads-per-host", "1")
    first, second = os.urandom(20_000), os.urandom(30_000)
    url1 = origin.add("/one", data=first, etag='"1"')
    url2 = origin.add("/two", data=second, etag='"2"')
    for url in (url1, url2):
        assert arca.fetch(url, ttl="2s")[0] == 200
    for path in ("/one", "/two"):
        wait_age(arca, path, 2)
    for obj in origin.objects.values():
        obj.stall = 30
    assert stale_answer(arca.fetch(url1)[1])
    began = time.monotonic()
    status, headers, body = arca.fetch(url2)
    assert status == 200 and body == second and stale_answer(headers)
    assert time.monotonic() - began < 8


@pytest.mark.parametrize("cache_control", ["must-revalidate", "no-cache", "no-store",
                                           "max-age=1, proxy-revalidate"])
def test_the_origins_must_revalidate_means_never_stale(start_arca, origin, cache_control):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "0")
    url = expired(arca, origin, "/mr", b"m" * 3000, etag='"m"',
                  headers={"Cache-Control": cache_control})
    origin.objects["/mr"].status = 503
    status, headers, _ = arca.fetch(url)
    assert status == 503 and not stale_answer(headers)


def test_the_origins_stale_if_error_sets_the_window(start_arca, origin):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--download-retries", "0")
    url = origin.add("/short", data=b"s" * 3000, etag='"s"',
                     headers={"Cache-Control": "max-age=60, stale-if-error=1"})
    assert arca.fetch(url, ttl="2s")[0] == 200
    wait_age(arca, "/short", 3)  # 1 s past its expiry: past the origin's 1 s, within a day
    origin.objects["/short"].status = 503
    status, headers, _ = arca.fetch(url)
    assert status == 503 and not stale_answer(headers)


def test_a_malformed_stale_if_error_is_ignored(arca, origin):
    data = os.urandom(3000)
    url = expired(arca, origin, "/odd", data, etag='"o"',
                  headers={"Cache-Control": "stale-if-error=soon, stale-while-revalidate=-5"})
    origin.objects["/odd"].status = 503
    status, headers, body = arca.fetch(url)
    assert status == 200 and body == data and stale_answer(headers)


def test_the_origins_stale_while_revalidate_answers_at_once(arca, origin):
    data = os.urandom(3000)
    url = expired(arca, origin, "/swr", data, etag='"w"',
                  headers={"Cache-Control": "stale-while-revalidate=600"})
    origin.objects["/swr"].stall = 3
    status, headers, body = arca.fetch(url)
    assert status == 200 and body == data
    assert "detail=stale-while-revalidate" in headers["cache-status"]


def test_the_origins_word_survives_a_restart(start_arca, origin, workdir):
    data_dir = os.path.join(workdir, "kept")
    args = ("--upstream-allow", "127.0.0.0/8", "--download-retries", "0")
    arca = start_arca(*args, data_dir=data_dir)
    url = origin.add("/mr", data=b"r" * 3000, etag='"r"',
                     headers={"Cache-Control": "must-revalidate"})
    assert arca.fetch(url, ttl="2s")[0] == 200
    arca.stop()
    again = start_arca(*args, data_dir=data_dir)
    wait_age(again, "/mr", 2)
    origin.objects["/mr"].status = 503
    status, headers, _ = again.fetch(url)
    assert status == 503 and not stale_answer(headers)


@pytest.mark.parametrize("etag", ['"v1"', ""])
def test_a_refresh_cut_mid_body_keeps_the_copy(arca, origin, etag):
    # the outside review's F1: the origin resends the file (200) and every attempt is reset
    # after 1000 bytes; the copy was deleted with the failed refresh
    old = os.urandom(300_000)
    url = expired(arca, origin, "/same", old, etag=etag, conditional=False)
    origin.objects["/same"].faults = [("reset", 1000)] * 5
    status, headers, body = arca.fetch(url)
    assert len(body) < len(old)  # the new body's client is cut, never handed a short file
    # the refresh goes on with its attempts (5): until the last has ended and the copy is back
    # (while a refresh runs, the copy it refreshes is out of the table and its usage)
    deadline = time.monotonic() + 20
    while (origin.counts["/same"] < 6 or arca.metrics()["arca_active_downloads"] or
           arca.status()["disk_usage"] != len(old)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert origin.counts["/same"] == 6 and arca.metrics()["arca_active_downloads"] == 0
    assert arca.status()["disk_usage"] == len(old), "the copy stays on disk"
    origin.objects["/same"].status = 503
    status, headers, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(old) and stale_answer(headers)


def test_a_copy_too_old_to_answer_is_kept_not_deleted(start_arca, origin):
    # the outside review's F3: any client's ttl shortens an object's life (KissCache's rule);
    # during an outage its copy, too old to answer stale, used to be deleted with the refresh
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stale-if-error", "2s",
                      "--download-retries", "0")
    data = os.urandom(100_000)
    url = origin.add("/pub", data=data, etag='"p"')
    assert arca.fetch(url)[0] == 200
    wait_age(arca, "/pub", 3)  # once its ttl is 1 s, 2 s past it: past the window
    origin.objects["/pub"].status = 503
    status, headers, _ = arca.fetch(url, ttl="1s")
    assert status == 503 and not stale_answer(headers)
    assert arca.status()["disk_usage"] == len(data), "kept for when the origin is back"
    origin.objects["/pub"].status = 200
    status, headers, body = fetch_until(arca, url, lambda s, h: s == 200)
    assert status == 200 and body == data
    assert origin.bytes_sent["/pub"] == len(data), "renewed by a 304, not downloaded again"


def test_a_stale_answer_is_counted_as_stale_not_as_a_hit(arca, origin):
    """Issue 51: an expired version's answer is its own result (STALE), never a hit."""
    data = os.urandom(30_000)
    url = expired(arca, origin, "/rescue.img", data, etag='"r"')
    origin.objects["/rescue.img"].status = 503
    status, headers, body = arca.fetch(url)
    assert status == 200 and body == data and stale_answer(headers)
    assert arca.status()["statistics_hits"] == 0
    metrics = arca.metrics()
    assert metrics['arca_requests_total{result="stale"}'] == 1
    assert metrics['arca_requests_total{result="hit"}'] == 0
    deadline = time.monotonic() + 5
    while " STALE " not in arca.read_log():
        assert time.monotonic() < deadline, arca.read_log()[-2000:]
        time.sleep(0.05)


def listed(arca):
    rows = json.loads(arca.get("/api/v1/resources/?state=successes")[2])["resources"]
    return {urllib.parse.urlsplit(r["url"]).path: r for r in rows}


def test_quota_pressure_evicts_the_expired_copy_before_a_fresh_one(origin, start_arca):
    """Issue 51: when room is needed, a copy kept past its ttl for stale-if-error goes before a
    fresh object, even one used less recently; its listing says until when it may answer stale."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--quota", "1M")
    fresh, old, new = (os.urandom(400_000) for _ in range(3))
    fresh_url = origin.add("/fresh.img", data=fresh)
    old_url = origin.add("/old.img", data=old, etag='"o"')
    new_url = origin.add("/new.img", data=new)
    assert arca.fetch(fresh_url, ttl="1h")[0] == 200
    assert arca.fetch(old_url, ttl="1s")[0] == 200  # used after the fresh one
    # expired, and a second more: the expiry sweep (every second) has seen it
    wait_age(arca, "/old.img", 3)
    row = listed(arca)["/old.img"]
    created = calendar.timegm(time.strptime(row["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
    until = calendar.timegm(time.strptime(row["stale_until"], "%Y-%m-%dT%H:%M:%SZ"))
    assert until == created + 1 + 86400  # its ttl, then --stale-if-error's default day
    assert "stale_until" not in listed(arca)["/fresh.img"]
    page = arca.get("/resources/?state=successes")[2].decode()
    assert "expired; answers stale until" in page
    assert arca.fetch(new_url, ttl="1h")[0] == 200  # no room for three
    assert set(listed(arca)) == {"/fresh.img", "/new.img"}
    assert arca.status()["resources_successes"] == 2
    assert arca.fetch(fresh_url)[2] == fresh and origin.counts["/fresh.img"] == 1
