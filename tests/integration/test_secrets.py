"""Secrets in URLs stay secret: userinfo and signature parameters are redacted wherever arca
shows a URL (listings, pages, logs, admin answers), while the object is still fetched and kept
under the URL as given. The listings answer only clients that may fetch, or --ui-network."""

import http.client
import json
import os
import time

SECRET = "s3cr3tSIGvalue"
PASSWORD = "pa55word"


def signed(origin, path, data):
    origin.add(path, data=data)
    host = f"lab:{PASSWORD}@{origin.host}:{origin.port}"
    return (f"http://{host}{path}?X-Amz-Credential=AKIA%2F1&X-Amz-Date=20261122T000000Z"
            f"&X-Amz-Signature={SECRET}&token={SECRET}t")


def test_signatures_and_passwords_never_shown(origin, start_arca, workdir):
    token = "t" * 32
    with open(os.path.join(workdir, "token"), "w") as f:
        f.write(token + "\n")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--log-level", "debug",
                      "--admin-token-file", os.path.join(workdir, "token"))
    data = os.urandom(4000)
    good = signed(origin, "/image", data)
    bad = signed(origin, "/missing", b"")
    origin.objects.pop("/missing")
    assert arca.get("/api/v1/fetch/?url=" + good)[2] == data
    assert arca.get("/api/v1/fetch/?url=" + good)[2] == data  # the key is the whole URL: a hit
    assert origin.counts["/image"] == 1
    assert arca.get("/api/v1/fetch/?url=" + bad)[0] == 404
    shown = []
    for path in ("/api/v1/resources/?state=successes", "/api/v1/resources/?state=failures",
                 "/resources/successes/", "/resources/failures/", "/metrics",
                 "/api/v1/status/"):
        status, _, body = arca.get(path)
        assert status == 200, path
        shown.append(body.decode())
    rows = json.loads(shown[0])["resources"]
    # the key leaves the signature out (docs/CACHING.md, "Signed URLs"); the password is redacted
    assert "X-Amz-Signature" not in rows[0]["url"] and "REDACTED@" in rows[0]["url"]
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=10)
    conn.request("POST", "/api/v1/prefetch/", body=json.dumps([good]),
                 headers={"Authorization": "Bearer " + token})
    resp = conn.getresponse()
    shown.append(resp.read().decode())
    conn.close()
    assert resp.status == 202 and '"cached"' in shown[-1]
    assert arca.log_shows("/missing")
    shown.append(arca.read_log())
    for text in shown:
        assert SECRET not in text and PASSWORD not in text


def test_listings_answer_only_allowed_clients(origin, start_arca):
    closed = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "10.0.0.0/8")
    for path in ("/resources/", "/resources/successes/", "/api/v1/resources/?state=successes"):
        status, _, body = closed.get(path)
        assert status == 403 and b"--ui-network" in body, path
    for path in ("/api/v1/health/", "/api/v1/status/", "/metrics", "/", "/help/"):
        assert closed.get(path)[0] == 200, path
    opened = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "10.0.0.0/8",
                        "--ui-network", "127.0.0.0/8")
    assert opened.get("/resources/successes/")[0] == 200
    assert opened.get("/api/v1/resources/?state=successes")[0] == 200
    assert opened.fetch(origin.add("/x", data=b"x"))[0] == 403, "seeing is not fetching"


# Secrets under names that hold neither "token" nor "signature": API keys, JWTs, sessions, in the
# spellings and encodings clients use (issue 22, item 7).
SECRET_PARAMS = {"key": "k3yVALUE", "jwt": "eyJjwtVALUE", "auth": "au7hVALUE",
                 "api-key": "ap1VALUE", "X-API-Key": "xap1VALUE", "api%2Dkey": "encodedVALUE",
                 "sessionid": "s3ssVALUE", "pwd": "pwdVALUE"}


def access_fetch_lines(arca, n, timeout=5):
    """The access log's fetch lines once there are n (each is written once its response is
    over, a moment after the client has it)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in arca.read_log().splitlines() if '"GET /api/v1/fetch/' in l]
        if len(lines) >= n:
            return lines
        assert time.monotonic() < deadline, arca.read_log()
        time.sleep(0.05)


def test_api_keys_jwts_and_sessions_never_shown(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--log-level", "debug",
                      "--ui-network", "127.0.0.0/8")
    query = "&".join(f"{name}={value}" for name, value in SECRET_PARAMS.items()) + "&page=2"
    data = os.urandom(3000)
    url = origin.add("/artifact", data=data) + "?" + query
    missing = origin.url("/gone") + "?" + query
    assert arca.get("/api/v1/fetch/?url=" + url)[2] == data  # the unencoded form
    assert arca.fetch(url)[2] == data  # the encoded form: the same URL, a hit
    assert origin.counts["/artifact"] == 1
    assert arca.fetch(missing)[0] == 404
    assert arca.log_shows("/gone")
    rows = json.loads(arca.get("/api/v1/resources/?state=successes")[2])["resources"]
    failed = json.loads(arca.get("/api/v1/resources/?state=failures")[2])["resources"]
    assert len(rows) == 1 and len(failed) == 1
    # the listing still tells a lab which URL it is: harmless parameters stay
    assert "REDACTED" in rows[0]["url"] and "page=2" in rows[0]["url"]
    shown = [json.dumps(rows), json.dumps(failed)]
    for path in ("/resources/", "/resources/successes/", "/resources/failures/"):
        status, _, body = arca.get(path)
        assert status == 200, path
        shown.append(body.decode())
    assert len(access_fetch_lines(arca, 3)) == 3
    shown.append(arca.read_log())  # the access log and the log lines
    for text in shown:
        for value in SECRET_PARAMS.values():
            assert value not in text, (value, text)
