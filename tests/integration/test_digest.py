"""&sha256= belongs to the request that gave it: it decides that answer only, never another
client's nor the object's. A request whose digest fails gets a cut that every HTTP/1.1 client
sees as a failure, python-requests included; requests without one keep their Content-Length."""

import hashlib
import http.client
import os
import threading
import time

import pytest
import requests

from conftest import read_to_end, resource, sha256, wait_downloading, wait_for

WRONG = hashlib.sha256(b"not this body").hexdigest()


def slow_object(origin, path, size=3 << 20, rate=6 << 20):
    data = os.urandom(size)
    return data, origin.add(path, data=data, rate=rate)


def stream_all(arca, url, results, key, **params):
    conn, resp = arca.stream(url, **params)
    body, complete = read_to_end(resp)
    results[key] = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, complete)
    conn.close()


def client(arca, url, results, key, **params):
    """A client streaming `url` in a thread: its answer lands in results[key]."""
    t = threading.Thread(target=stream_all, args=(arca, url, results, key), kwargs=params)
    t.start()
    return t


def joined(arca, url, results, key, **params):
    """A client that has its answer's headers (it has joined the download), reading the body in
    a thread: its answer lands in results[key]."""
    conn, resp = arca.stream(url, **params)

    def read():
        body, complete = read_to_end(resp)
        results[key] = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, complete)
        conn.close()
    t = threading.Thread(target=read)
    t.start()
    return t


def downloading(origin, path):
    """Wait until the origin has been asked for `path`: the download is running."""
    while origin.counts[path] == 0:
        time.sleep(0.005)


def test_a_wrong_digest_joining_cuts_only_its_own_answer(origin, arca):
    data, url = slow_object(origin, "/img")
    # the last byte waits until both have joined (a loaded machine once let the download end
    # first: the wrong digest was then told 502 up front, as it must be, and this failed)
    gate = origin.objects["/img"].last_byte_gate = threading.Event()
    results = {}
    plain = client(arca, url, results, "plain")
    downloading(origin, "/img")
    right = joined(arca, url, results, "right", sha256=sha256(data))
    wrong = joined(arca, url, results, "wrong", sha256=WRONG)
    gate.set()
    for t in (plain, right, wrong):
        t.join()

    status, _, body, complete = results["plain"]
    assert status == 200 and complete and sha256(body) == sha256(data), "no digest: untouched"
    status, _, body, complete = results["right"]
    assert status == 200 and complete and sha256(body) == sha256(data), "right digest: untouched"
    status, _, body, complete = results["wrong"]
    assert status == 200 and not complete and len(body) < len(data), \
        "a wrong digest joining a download must get a cut, never a complete body"
    # the object is what the origin served: kept, and a hit for everyone after
    status, _, body = arca.fetch(url)
    assert status == 200 and body == data and origin.counts["/img"] == 1
    assert arca.status()["resources_successes"] == 1


def test_a_wrong_digest_starting_the_download_does_not_decide_the_object(origin, arca):
    data, url = slow_object(origin, "/first")
    results = {}
    wrong = client(arca, url, results, "wrong", sha256=WRONG)
    downloading(origin, "/first")
    plain = client(arca, url, results, "plain")
    wrong.join()
    plain.join()
    assert not results["wrong"][3], "the request that gave the wrong digest sees a cut"
    status, _, body, complete = results["plain"]
    assert status == 200 and complete and body == data
    # kept: a request with the right digest is a hit, one with the wrong one a 502 up front
    status, headers, body = arca.fetch(url, sha256=sha256(data))
    assert status == 200 and body == data and headers["content-length"] == str(len(data))
    status, _, body = arca.fetch(url, sha256=WRONG)
    assert status == 502 and b"sha256" in body
    assert origin.counts["/first"] == 1


def test_framing_chunked_only_for_a_digest_still_to_check(origin, arca):
    data, url = slow_object(origin, "/framed")
    gate = origin.objects["/framed"].last_byte_gate = threading.Event()  # until it has joined
    results = {}
    plain = client(arca, url, results, "plain")
    downloading(origin, "/framed")
    digest = joined(arca, url, results, "digest", sha256=sha256(data))
    gate.set()
    digest.join()
    plain.join()
    _, headers, body, complete = results["plain"]
    assert headers.get("content-length") == str(len(data)), \
        "without sha256 the streamed answer keeps its Content-Length (progress bars, LAVA)"
    _, headers, body, complete = results["digest"]
    assert complete and body == data
    assert "content-length" not in headers and headers.get("transfer-encoding") == "chunked"


def test_python_requests_sees_a_digest_cut_as_an_error(origin, arca):
    data, url = slow_object(origin, "/lava")
    # requests the way LAVA's dispatcher uses it: stream=True, iter_content, no length check
    path = arca.fetch_path(url, sha256=WRONG)
    with pytest.raises(requests.exceptions.RequestException):
        with requests.get(f"http://{arca.host}:{arca.port}{path}", stream=True, timeout=30) as r:
            assert r.status_code == 200
            for _ in r.iter_content(65536):
                pass
    # and the same download with the right digest reads through without an error
    path = arca.fetch_path(url, sha256=sha256(data))
    r = requests.get(f"http://{arca.host}:{arca.port}{path}", timeout=30)
    assert r.status_code == 200 and r.content == data


def test_range_with_a_digest_waits_for_the_check(origin, arca):
    data, url = slow_object(origin, "/part")
    gate = origin.objects["/part"].last_byte_gate = threading.Event()  # until it has joined
    results = {}
    plain = client(arca, url, results, "plain")
    downloading(origin, "/part")
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    conn.request("GET", arca.fetch_path(url, sha256=WRONG), headers={"Range": "bytes=0-99"})
    resp = conn.getresponse()
    gate.set()
    body, complete = read_to_end(resp)
    conn.close()
    plain.join()
    assert resp.status == 206 and not complete and len(body) < 100, \
        "a range of a mismatching object must not arrive complete either"


def test_http10_with_a_digest_waits_for_the_whole_object(origin, arca):
    data, url = slow_object(origin, "/old")
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"
    conn.request("GET", arca.fetch_path(url, sha256=WRONG))
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 502, "HTTP/1.0 cannot show a cut: it is told before the headers"
    assert origin.counts["/old"] == 1


def test_access_log_marks_a_cut_answer(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    data, url = slow_object(origin, "/logged")
    results = {}
    stream_all(arca, url, results, "wrong", sha256=WRONG)
    assert not results["wrong"][3]
    assert arca.log_shows('" 200 ') and arca.log_shows(" CUT ")
    line = [l for l in arca.read_log().splitlines() if "sha256=" in l and '" 200 ' in l][0]
    assert " CUT " in line and " MISS " not in line


def test_hold_framing_answers_once_the_digest_is_checked(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--digest-framing", "hold")
    data, url = slow_object(origin, "/held")
    results = {}
    wrong = client(arca, url, results, "wrong", sha256=WRONG)
    downloading(origin, "/held")
    right = client(arca, url, results, "right", sha256=sha256(data))
    plain = client(arca, url, results, "plain")
    for t in (wrong, right, plain):
        t.join()
    assert results["wrong"][0] == 502, "held: the mismatch is told before any header"
    status, headers, body, complete = results["right"]
    assert status == 200 and complete and body == data
    assert headers["content-length"] == str(len(data)), "held answers keep their length"
    status, headers, body, complete = results["plain"]
    assert status == 200 and complete and body == data
    assert origin.counts["/held"] == 1


def test_a_wrong_digest_answered_502_says_so_in_cache_status(origin, start_arca):
    """Issue 51: the 502 for a wrong sha256 is no hit (RFC 9211): it says what happened,
    detail=digest-mismatch, after fwd=uri-miss when the object was just downloaded for it."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--digest-framing", "hold")
    data = os.urandom(100_000)
    url = origin.add("/dtb", data=data)
    status, headers, body = arca.fetch(url, sha256=WRONG)  # held: told once checked
    assert status == 502 and b"sha256" in body
    assert headers["cache-status"] == "arca; fwd=uri-miss; detail=digest-mismatch"
    status, headers, body = arca.fetch(url, sha256=WRONG)  # stored now: upstream not asked
    assert status == 502 and b"sha256" in body
    assert headers["cache-status"] == "arca; detail=digest-mismatch"
    assert "age" not in headers
    assert origin.counts["/dtb"] == 1
    assert arca.fetch(url, sha256=sha256(data))[1]["cache-status"].startswith("arca; hit; ttl=")


def test_a_wrong_digest_meeting_the_last_byte_never_gets_a_complete_body(origin, arca):
    """Issue 51's digest race, made wide: the origin holds the last byte. Wrong digests that
    joined before it, that come as it lands and the object is made durable, and after: each
    gets a cut 200 or a 502, never a complete 200; the right digest gets the file."""
    data = os.urandom(1 << 20)
    gate = threading.Event()
    url = origin.add("/edge", data=data, last_byte_gate=gate)
    results, answers, done = {}, [], threading.Event()
    right = client(arca, url, results, "right", sha256=sha256(data))
    wait_downloading(arca, "/edge", len(data) - 1)  # all but the last byte: the origin holds it
    held = joined(arca, url, results, "held", sha256=WRONG)

    def wrong_until_done():
        while not done.is_set():
            got = {}
            stream_all(arca, url, got, "a", sha256=WRONG)
            answers.append(got["a"])

    sprayers = [threading.Thread(target=wrong_until_done) for _ in range(3)]
    gate.set()
    for t in sprayers:  # their first requests meet the last byte as it lands
        t.start()
    wait_for(lambda: resource(arca, "/edge"), "/edge complete")
    after = len(answers)
    wait_for(lambda: len(answers) >= after + 6, "wrong digests after the end")
    done.set()
    for t in sprayers + [held, right]:
        t.join()
    assert results["right"][0] == 200 and results["right"][3] and results["right"][2] == data
    assert results["held"][0] == 200 and not results["held"][3] and \
        len(results["held"][2]) < len(data), "joined before the end: cut"
    whole = [(s, len(b)) for s, _, b, complete in answers if s == 200 and complete]
    assert whole == [], "a wrong digest got a complete 200"
    assert all(s in (200, 502) for s, _, _, _ in answers)
    assert sum(1 for s, _, _, _ in answers if s == 502) >= 6
    assert origin.counts["/edge"] == 1
