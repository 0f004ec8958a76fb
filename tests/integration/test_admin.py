"""Admin API: prefetch and purge behind a bearer token (--admin-token-file)."""

import json
import os
import time

TOKEN = "lab-admin-token-0123456789"


def token_file(workdir, token=TOKEN):
    path = os.path.join(workdir, "admin-token")
    with open(path, "w") as f:
        f.write(token + "\n")
    return path


def admin_arca(start_arca, workdir):
    return start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file", token_file(workdir))


def prefetch(arca, urls, token=TOKEN, ttl=None):
    body = {"urls": urls, **({"ttl": ttl} if ttl else {})}
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn_status, _, answer = post(arca, "/api/v1/prefetch/", json.dumps(body).encode(), headers)
    return conn_status, answer


def post(arca, path, body, headers):
    import http.client
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def purge(arca, url, token=TOKEN):
    import urllib.parse
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return arca.get("/api/v1/resources/?" + urllib.parse.urlencode({"url": url}), headers,
                    method="DELETE")


def wait_complete(arca, n, timeout=10):
    deadline = time.monotonic() + timeout
    while arca.status()["resources_successes"] < n:
        assert time.monotonic() < deadline, "prefetch did not complete"
        time.sleep(0.05)


def test_admin_api_is_off_without_a_token_file(origin, arca):
    url = origin.add("/a", data=b"x" * 1000)
    status, answer = prefetch(arca, [url])
    assert status == 403 and b"--admin-token-file" in answer
    assert purge(arca, url)[0] == 403
    assert origin.counts["/a"] == 0


def test_admin_api_refuses_a_missing_or_wrong_token(origin, start_arca, workdir):
    url = origin.add("/a", data=b"x" * 1000)
    arca = admin_arca(start_arca, workdir)
    status, answer = prefetch(arca, [url], token=None)
    assert status == 401 and b"Bearer" in answer
    status, answer = prefetch(arca, [url], token=TOKEN + "x")
    assert status == 401 and b"wrong admin token" in answer
    status, headers, _ = purge(arca, url, token="nope")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert origin.counts["/a"] == 0


def test_prefetch_warms_the_cache_once(origin, start_arca, workdir):
    a, b = os.urandom(200000), os.urandom(50000)
    urls = [origin.add("/a", data=a), origin.add("/b", data=b)]
    arca = admin_arca(start_arca, workdir)
    status, answer = prefetch(arca, urls + [urls[0], "ftp://nope/x"], ttl="2h")
    assert status == 202
    results = [r["result"] for r in json.loads(answer)["results"]]
    assert results[:2] == ["started", "started"]
    assert results[2] in ("downloading", "cached")
    assert results[3] == "error"
    wait_complete(arca, 2)
    assert arca.fetch(urls[0])[2] == a and arca.fetch(urls[1])[2] == b
    assert origin.counts["/a"] == 1 and origin.counts["/b"] == 1
    assert arca.metrics()['arca_requests_total{result="hit"}'] == 2
    status, answer = prefetch(arca, [urls[0]])
    assert json.loads(answer)["results"][0]["result"] == "cached"


def test_prefetch_refuses_a_body_that_is_not_a_list_of_urls(start_arca, workdir):
    arca = admin_arca(start_arca, workdir)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for body in (b"not json", b"{}", b"[]", b'{"urls": ["http://x/"], "ttl": "soon"}'):
        status, _, answer = post(arca, "/api/v1/prefetch/", body, headers)
        assert status == 400, body
        assert answer.endswith(b"\n") and answer.count(b"\n") == 1
    status, _, _ = post(arca, "/api/v1/prefetch/", b"[" + b'"x",' * 300000 + b'"x"]', headers)
    assert status == 413


def test_purge_drops_one_object_and_the_next_request_fetches_it_again(origin, start_arca,
                                                                        workdir):
    data = os.urandom(300000)
    url = origin.add("/p", data=data)
    other = origin.add("/q", data=b"q" * 1000)
    arca = admin_arca(start_arca, workdir)
    assert arca.fetch(url)[2] == data and arca.fetch(other)[0] == 200
    status, _, answer = purge(arca, url)
    assert status == 200
    assert json.loads(answer) == {"url": url, "purged": True, "bytes": len(data)}
    assert arca.status()["resources_successes"] == 1
    assert arca.fetch(url)[2] == data
    assert origin.counts["/p"] == 2 and origin.counts["/q"] == 1
    assert arca.fetch(other)[0] == 200 and origin.counts["/q"] == 1
    assert purge(arca, origin.url("/never"))[0] == 404


def test_purge_survives_a_restart(origin, start_arca, workdir):
    url = origin.add("/p", data=b"p" * 5000)
    arca = admin_arca(start_arca, workdir)
    assert arca.fetch(url)[0] == 200
    assert purge(arca, url)[0] == 200
    assert arca.stop() == 0
    again = start_arca("--upstream-allow", "127.0.0.0/8", data_dir=arca.data_dir)
    assert again.status()["resources_successes"] == 0
    assert again.fetch(url)[0] == 200 and origin.counts["/p"] == 2


def test_purge_of_a_download_in_progress_is_refused(origin, start_arca, workdir):
    url = origin.add("/slow", data=b"s" * 400000, rate=200000)
    arca = admin_arca(start_arca, workdir)
    conn, resp = arca.stream(url)
    try:
        status, _, answer = purge(arca, url)
        assert status == 409 and b"downloading" in answer
        assert len(resp.read()) == 400000
    finally:
        conn.close()


def test_a_short_or_missing_token_file_stops_arca_with_one_line(workdir):
    import subprocess
    from conftest import ARCA_BIN, free_port
    for path, reason in ((token_file(workdir, "short"), "token too short (16 to 511"),
                         (os.path.join(workdir, "none"), "cannot read it")):
        out = subprocess.run([ARCA_BIN, "serve", "--listen", f"127.0.0.1:{free_port()}",
                              "--data-dir", os.path.join(workdir, "d"),
                              "--admin-token-file", path], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode == 1 and reason in out.stderr and out.stderr.count("\n") == 1


# --- GET /api/v1/resources/?url=: a download's outcome, without fetching it ------------------


def outcome(arca, url, token=TOKEN):
    import urllib.parse
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return arca.get("/api/v1/resources/?" + urllib.parse.urlencode({"url": url}), headers)


def test_outcome_tells_each_state_without_fetching(origin, start_arca, workdir):
    url = origin.add("/o", data=os.urandom(300000), rate=600000)
    missing = origin.url("/missing")
    arca = admin_arca(start_arca, workdir)
    status, _, body = outcome(arca, url)
    assert status == 200
    assert json.loads(body) == {"url": url, "state": "absent", "downloaded": 0,
                                "content_length": None}
    prefetch(arca, [url, missing])
    states = set()
    deadline = time.monotonic() + 10
    while "complete" not in states:
        assert time.monotonic() < deadline, states
        states.add(json.loads(outcome(arca, url)[2])["state"])
        time.sleep(0.02)
    assert states <= {"scheduled", "downloading", "complete"} and "downloading" in states
    assert json.loads(outcome(arca, url)[2]) == {"url": url, "state": "complete",
                                                 "downloaded": 300000, "content_length": 300000}
    failed = json.loads(outcome(arca, missing)[2])
    assert failed["state"] == "failed" and failed["status_code"] == 404
    assert failed["error"].startswith("upstream answered 404")
    s = arca.status()
    assert s["statistics_requests"] == 0 and s["statistics_upload"] == 0
    assert origin.counts["/o"] == 1 and origin.counts["/missing"] == 1
    assert purge(arca, url)[0] == 200
    assert json.loads(outcome(arca, url)[2])["state"] == "absent"
    assert origin.counts["/o"] == 1


def test_outcome_needs_the_token(origin, start_arca, workdir, arca):
    url = origin.add("/t", data=b"t" * 100)
    assert outcome(arca, url)[0] == 403  # no token file: the admin API is off
    admin = admin_arca(start_arca, workdir)
    status, headers, body = outcome(admin, url, token=None)
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert outcome(admin, url, token="nope")[0] == 401
    assert admin.get("/api/v1/resources/?url=", {"Authorization": f"Bearer {TOKEN}"})[0] == 400
    assert origin.counts["/t"] == 0


def test_outcome_keys_a_signed_url_as_prefetch_does_and_never_shows_the_signature(
        origin, start_arca, workdir):
    origin.add("/signed", data=b"s" * 5000)
    url = origin.url("/signed") + "?X-Amz-Signature=0123456789abcdef&x=1"
    arca = admin_arca(start_arca, workdir)
    assert prefetch(arca, [url])[0] == 202
    deadline = time.monotonic() + 10
    while (answer := outcome(arca, url)[2]) and json.loads(answer)["state"] != "complete":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert b"0123456789abcdef" not in answer
    assert json.loads(answer)["url"].startswith(origin.url("/signed") + "?X-Amz-Signature=")
    # another signature of the same URL is the same object, as prefetch keys it
    other = json.loads(outcome(arca, origin.url("/signed") + "?X-Amz-Signature=ffff&x=1")[2])
    assert other["state"] == "complete"


def wait_state(arca, url, state, timeout=10):
    deadline = time.monotonic() + timeout
    while json.loads(outcome(arca, url)[2])["state"] != state:
        assert time.monotonic() < deadline, f"{url} never {state}"
        time.sleep(0.02)


def test_a_prefetched_signed_object_stays_private(origin, start_arca, workdir):
    """What the admin prefetches through a signed URL is a capability's object, as if a client
    had fetched it (issue 23's second review: it was stored unmarked, and the bare URL got it)."""
    from test_digest_attacks import refused_or_cut
    from test_signed import PATH, add_signed, full_gets, probes, s3_url
    data = add_signed(origin)
    copy = origin.add("/attacker/copy", data=b"\0" * len(data))  # same length, the attacker's
    arca = admin_arca(start_arca, workdir)
    assert prefetch(arca, [s3_url(origin, nonce="admin")])[0] == 202
    wait_state(arca, origin.url(PATH), "complete")
    for attempt in ("before a restart", "after a restart"):
        status, headers, body = arca.fetch(origin.url(PATH))
        assert (status, body) == (403, b"upstream answered 403\n"), attempt
        assert headers["cache-status"] == "arca; fwd=uri-miss"
        assert arca.fetch(s3_url(origin, nonce="evil", forge=True))[0] == 403
        refused_or_cut(arca, copy, data)  # a digest is no key to it either
        assert arca.stop() == 0
        arca = start_arca("--upstream-allow", "127.0.0.0/8", data_dir=arca.data_dir)
    assert full_gets(origin) == 1 and probes(origin) == 4
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
