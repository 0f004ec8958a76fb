"""Signed URLs (issue 15, docs/CACHING.md "Signed URLs"): every presigned URL of one file is one
cache key, so the file crosses the uplink once; a hit through a URL arca has not seen accepted is
confirmed with upstream first (a one-byte request with that exact URL), so a forged or expired
signature never gets the cached object."""

import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse

import pytest

from conftest import sha256, wait_age, wait_downloading, without_ttl

SECRET = b"test-secret"
PATH = "/bucket/kernel/Image"


def stamp(t):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def mac(path, expires, nonce):
    return hmac.new(SECRET, f"{path}|{expires}|{nonce}".encode(), hashlib.sha256).hexdigest()


def s3_url(origin, path=PATH, nonce="a", life=3600, start=None, forge=False, extra=""):
    """An S3 SigV4-style presigned URL: the signature covers the path, the expiry and the
    credential (nonce), as AWS's does."""
    start = int(time.time()) - 5 if start is None else start
    sig = mac(path, start + life, nonce)
    if forge:
        sig = "0" * 64
    q = urllib.parse.urlencode({
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"AKIA{nonce}/20261122/us-east-1/s3/aws4_request",
        "X-Amz-Date": stamp(start), "X-Amz-Expires": str(life),
        "X-Amz-SignedHeaders": "host", "X-Amz-Signature": sig})
    return origin.url(path) + "?" + (extra + "&" if extra else "") + q


def gcs_url(origin, path=PATH, nonce="g"):
    start = int(time.time()) - 5
    q = urllib.parse.urlencode({
        "X-Goog-Algorithm": "GOOG4-RSA-SHA256", "X-Goog-Credential": f"sa-{nonce}",
        "X-Goog-Date": stamp(start), "X-Goog-Expires": "600", "X-Goog-SignedHeaders": "host",
        "X-Goog-Signature": mac(path, start + 600, nonce)})
    return origin.url(path) + "?" + q


def azure_url(origin, path=PATH, nonce="z"):
    end = int(time.time()) + 3600
    q = urllib.parse.urlencode({
        "sv": "2022-11-02", "sp": "r", "sr": "b", "spr": "https,http", "skoid": nonce,
        "se": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)), "sig": mac(path, end, nonce)})
    return origin.url(path) + "?" + q


def check_signature(path):
    """The origin's side: 403 unless the URL carries a valid, unexpired signature of any of the
    three styles."""

    def check(query):
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        now = time.time()
        if "X-Amz-Signature" in q:
            start = time.mktime(time.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - time.timezone
            expires, nonce, sig = (int(start) + int(q["X-Amz-Expires"]),
                                   q["X-Amz-Credential"].split("/")[0][4:], q["X-Amz-Signature"])
        elif "X-Goog-Signature" in q:
            start = time.mktime(time.strptime(q["X-Goog-Date"], "%Y%m%dT%H%M%SZ")) - time.timezone
            expires, nonce, sig = (int(start) + int(q["X-Goog-Expires"]),
                                   q["X-Goog-Credential"][3:], q["X-Goog-Signature"])
        elif "sig" in q:
            end = time.mktime(time.strptime(q["se"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            expires, nonce, sig = int(end), q["skoid"], q["sig"]
        else:
            return 403
        if expires < now or not hmac.compare_digest(sig, mac(path, expires, nonce)):
            return 403
        return None

    return check


def full_gets(origin, path=PATH):
    """GETs of the whole body (not the one-byte confirmations)."""
    return sum(1 for p, h in origin.requests if p == path and h.get("Range") != "bytes=0-0")


def probes(origin, path=PATH):
    return sum(1 for p, h in origin.requests if p == path and h.get("Range") == "bytes=0-0")


def add_signed(origin, size=2 << 20, etag='"v1"'):
    data = bytes(range(256)) * (size // 256)
    origin.add(PATH, data=data, etag=etag, check=check_signature(PATH))
    return data


def test_twenty_signed_urls_download_the_file_once(arca, origin):
    data = add_signed(origin)
    urls = [s3_url(origin, nonce=f"n{i}") for i in range(20)]
    urls += [gcs_url(origin), azure_url(origin)]
    for url in urls:
        status, headers, body = arca.fetch(url)
        assert status == 200 and sha256(body) == sha256(data)
    assert full_gets(origin) == 1
    # each other URL was asked once, for one byte
    assert probes(origin) == len(urls) - 1
    assert origin.bytes_sent[PATH] == len(data) + len(urls) - 1
    m = arca.metrics()
    assert m["arca_signed_hits_total"] == len(urls) - 1
    assert m['arca_confirmations_total{outcome="accepted"}'] == len(urls) - 1
    # one resource, listed without its signature
    rows = json.loads(arca.get("/api/v1/resources/?state=successes")[2])["resources"]
    assert [r["url"] for r in rows] == [origin.url(PATH)]


def test_a_confirmed_url_is_not_asked_again(arca, origin):
    data = add_signed(origin)
    first, second = s3_url(origin, nonce="one"), s3_url(origin, nonce="two")
    assert arca.fetch(first)[0] == 200
    for _ in range(5):
        status, _, body = arca.fetch(second)
        assert status == 200 and body == data
    for _ in range(3):  # the URL that downloaded was accepted by upstream with its body
        assert arca.fetch(first)[0] == 200
    assert full_gets(origin) == 1
    assert probes(origin) == 1


def test_forged_or_expired_signature_gets_403_though_cached(arca, origin):
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    forged = s3_url(origin, nonce="evil", forge=True)
    status, _, body = arca.fetch(forged)
    assert status == 403 and data[:64] not in body
    assert body == b"upstream answered 403\n"  # as a refused download: nothing says "cached"
    expired = s3_url(origin, nonce="old", start=int(time.time()) - 7200, life=60)
    status, _, body = arca.fetch(expired)
    assert status == 403 and data[:64] not in body
    # refusals are not remembered as grants: asked again, refused again
    assert arca.fetch(forged)[0] == 403
    assert full_gets(origin) == 1
    assert arca.metrics()['arca_confirmations_total{outcome="refused"}'] == 3


def test_a_forged_signature_joining_a_download_gets_403(arca, origin):
    data = bytes(range(256)) * 4096 * 2
    origin.add(PATH, data=data, etag='"v1"', check=check_signature(PATH), rate=1 << 20)
    conn, resp = arca.stream(s3_url(origin, nonce="good"))
    try:
        wait_downloading(arca, PATH)  # the download runs
        status, _, body = arca.fetch(s3_url(origin, nonce="evil", forge=True))
        assert status == 403 and len(body) < 200
        body = resp.read()
        assert sha256(body) == sha256(data)
    finally:
        conn.close()
    assert full_gets(origin) == 1


def test_a_changed_file_behind_a_new_signature_is_fetched_again(arca, origin):
    add_signed(origin, etag='"v1"')
    assert arca.fetch(s3_url(origin, nonce="a"))[0] == 200
    new = b"new kernel " * 50000
    origin.objects[PATH].data, origin.objects[PATH].etag = new, '"v2"'
    status, _, body = arca.fetch(s3_url(origin, nonce="b"))
    assert status == 200 and sha256(body) == sha256(new)
    assert full_gets(origin) == 2
    assert arca.metrics()["arca_confirm_changed_total"] == 1
    # the new version is the cached one now
    assert arca.fetch(s3_url(origin, nonce="c"))[2] == new
    assert full_gets(origin) == 2


def test_other_parameters_stay_in_the_key(arca, origin):
    add_signed(origin)
    a = s3_url(origin, nonce="a", extra="versionId=1")
    b = s3_url(origin, nonce="b", extra="versionId=2")
    assert arca.fetch(a)[0] == 200 and arca.fetch(b)[0] == 200
    assert full_gets(origin) == 2


@pytest.mark.parametrize("option,downloads,asked", [
    ("--exact-keys", 3, 0),  # KissCache's keying: one download per signed URL
    ("--trust-signed-urls", 1, 0),  # one download, hits never confirmed
])
def test_exact_keys_and_trusted_signed_urls(start_arca, origin, option, downloads, asked):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", option)
    data = add_signed(origin)
    for i in range(3):
        assert arca.fetch(s3_url(origin, nonce=f"n{i}"))[2] == data
    assert full_gets(origin) == downloads and probes(origin) == asked


def test_key_rules_drop_a_custom_token(start_arca, origin):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--key-rules", "127.0.0.1=token")
    data = b"x" * 10000
    origin.add("/f", data=data, etag='"t"')
    for tok in ("a", "b", "c"):
        assert arca.fetch(origin.url("/f") + f"?token={tok}")[2] == data
    assert sum(1 for p, h in origin.requests if p == "/f" and "Range" not in h) == 1
    assert arca.metrics()["arca_signed_hits_total"] == 2


def test_the_unsigned_url_of_a_signed_object_is_confirmed_too(start_arca, origin):
    # the key of a signed URL is the unsigned one: asked for as it is, it must not get the
    # object upstream refuses it (S3 answers 403 without a signature), also after a restart
    arca = start_arca("--upstream-allow", "127.0.0.1/32")
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    status, _, body = arca.fetch(origin.url(PATH))
    assert status == 403 and data[:64] not in body
    assert arca.stop() == 0
    again = start_arca("--upstream-allow", "127.0.0.1/32", data_dir=arca.data_dir)
    status, _, body = again.fetch(origin.url(PATH))
    assert status == 403 and data[:64] not in body
    assert again.fetch(s3_url(origin, nonce="other"))[2] == data
    assert full_gets(origin) == 1


def test_a_public_object_stays_public(arca, origin):
    # downloaded through its plain URL: plain requests are hits as before, signed ones confirmed
    data = b"public" * 1000
    url = origin.add("/pub/file", data=data, etag='"p"')
    assert arca.fetch(url)[2] == data
    assert arca.fetch(url)[2] == data
    assert arca.metrics()['arca_confirmations_total{outcome="accepted"}'] == 0


# Issue 23, outside review: a request's ttl acts on a cached object only once the request is
# authorised, so a forged signature with &ttl=1s cannot make arca throw the private file away.
@pytest.mark.parametrize("attacker", ["forged", "unsigned"])
def test_a_short_ttl_from_an_unconfirmed_url_evicts_nothing(arca, origin, attacker):
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    wait_age(arca, PATH, 1)  # older than the attacker's ttl
    url = s3_url(origin, nonce="evil", forge=True) if attacker == "forged" else origin.url(PATH)
    for _ in range(2):
        assert arca.fetch(url, ttl="1s")[0] == 403
    status, headers, body = arca.fetch(s3_url(origin, nonce="other"))
    assert status == 200 and sha256(body) == sha256(data)
    assert full_gets(origin) == 1, "the stored version stayed: a confirmation, no download"
    assert without_ttl(headers["cache-status"]) == "arca; fwd=request; fwd-status=206"
    conditional = [h for p, h in origin.requests if p == PATH and "If-None-Match" in h]
    assert conditional == [], "nor a revalidation: the attacker's ttl was not kept"


def test_a_confirmed_url_with_a_short_ttl_revalidates(arca, origin):
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    wait_age(arca, PATH, 1)
    status, headers, body = arca.fetch(s3_url(origin, nonce="other"), ttl="1s")
    assert status == 200 and body == data
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    assert full_gets(origin) == 2  # the conditional GET (304, no body) after the confirmation
    assert origin.bytes_sent[PATH] == len(data) + 1


def refusal(status, headers, body):
    return status, headers.get("cache-status"), headers.get("content-length"), body


def test_a_refused_signed_url_reads_the_same_cached_or_not(arca, origin):
    data = add_signed(origin)
    origin.add("/bucket/other", data=b"x" * 1000, etag='"o"', check=check_signature("/bucket/other"))
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    cached = refusal(*arca.fetch(s3_url(origin, nonce="evil", forge=True)))
    uncached = refusal(*arca.fetch(s3_url(origin, "/bucket/other", nonce="evil", forge=True)))
    assert cached == uncached
    assert cached[0] == 403 and cached[3] == b"upstream answered 403\n"
    assert cached[1] == "arca; fwd=uri-miss"


def test_an_unreachable_origin_reads_the_same_cached_or_not(start_arca, origin):
    arca = start_arca("--upstream-allow", "127.0.0.1/32", "--download-retries", "0")
    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[2] == data
    origin.die()
    cached = refusal(*arca.fetch(s3_url(origin, nonce="evil", forge=True)))
    uncached = refusal(*arca.fetch(s3_url(origin, "/bucket/other", nonce="evil", forge=True)))
    strip = lambda r: (r[0], r[1], re.sub(rb"after [0-9.]+ m?s|in [0-9.]+ s", b"T", r[3]))
    assert strip(cached) == strip(uncached), (cached, uncached)
    assert cached[0] == 502


def slow_refusals(origin, seconds=1.0):
    """A distant origin: its refusal of a bad signature takes a while to come."""
    check = check_signature(PATH)

    def slow(query):
        refused = check(query)
        if refused:
            time.sleep(seconds)
        return refused

    origin.objects[PATH].check = slow


@pytest.mark.parametrize("attacker", ["forged", "unsigned"])
def test_a_valid_url_joining_a_refused_download_gets_the_file(arca, origin, attacker):
    """A download started by a URL the origin refuses is that URL's failure, not the next
    client's: a valid URL that joined it fetches the file itself (issue 23's second review)."""
    data = add_signed(origin)
    slow_refusals(origin)
    bad = s3_url(origin, nonce="evil", forge=True) if attacker == "forged" else origin.url(PATH)
    refused = {}
    thread = threading.Thread(target=lambda: refused.update(answer=arca.fetch(bad)))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while origin.counts[PATH] < 1:  # the bad URL's download is on its way
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status, headers, body = arca.fetch(s3_url(origin, nonce="good"))
    finally:
        thread.join()
    assert refused["answer"][:1] == (403,) and refused["answer"][2] == b"upstream answered 403\n"
    assert status == 200 and sha256(body) == sha256(data), (status, body[:100])
    assert full_gets(origin) == 2  # the refused one and the valid one's own


def test_a_granted_url_shortens_the_life_it_asks_for(arca, origin):
    """docs/API.md: a request's ttl shortens the object's life once it is authorised, and a URL
    accepted before is authorised at once (issue 23's second review: its ttl was dropped)."""
    data = add_signed(origin)
    a, b = s3_url(origin, nonce="one"), s3_url(origin, nonce="two")
    assert arca.fetch(a)[2] == data
    assert arca.fetch(b)[2] == data  # confirmed: b is accepted from now on
    status, headers, _ = arca.fetch(b, ttl="2s")  # keep it 2 s at most
    assert headers["cache-status"].startswith("arca; hit")
    wait_age(arca, PATH, 2)
    status, headers, body = arca.fetch(a)  # a plain request of an accepted URL, 2 s later
    assert status == 200 and body == data
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    assert full_gets(origin) == 2  # the download and a revalidation (304)


def test_a_confirmed_joiner_shortens_the_life_it_asks_for(arca, origin):
    data = bytes(range(256)) * 4096 * 2
    origin.add(PATH, data=data, etag='"v1"', check=check_signature(PATH), rate=4 << 20)
    conn, resp = arca.stream(s3_url(origin, nonce="one"))
    try:
        status, headers, body = arca.fetch(s3_url(origin, nonce="two"), ttl="2s")  # joins
        assert status == 200 and body == data and resp.read() == data
    finally:
        conn.close()
    assert full_gets(origin) == 1
    wait_age(arca, PATH, 2)
    status, headers, body = arca.fetch(s3_url(origin, nonce="one"))
    assert status == 200 and body == data
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
