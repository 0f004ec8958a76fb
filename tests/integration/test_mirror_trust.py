"""Mirrors never stand in for the origin's authorisation (issue 22, item 5). A signed URL is a
capability the origin checks; a mirror has the file but cannot check it. So for a signed URL
arca asks the origin first (the one-byte probe), and goes to the mirrors only once the origin
has accepted the signature; a refusal gets the origin's status. The mirror is asked for the URL
without its signature: the client's capability is never shown to another host."""

import os
import urllib.parse

import pytest

from conftest import Origin, read_to_end, sha256
from test_signed import check_signature, s3_url

PATH = "/pub/kernel/Image"
SIGNING = {"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
           "x-amz-signedheaders", "x-amz-signature"}


@pytest.fixture
def mirror():
    m = Origin()
    yield m
    m.stop()


def with_mirror(start_arca, origin, mirror, *args):
    rule = f"^http://127\\.0\\.0\\.1:{origin.port}/pub/=http://127.0.0.1:{mirror.port}/mirror/pub/"
    return start_arca("--upstream-allow", "127.0.0.0/8", "--mirror", rule, *args)


def signed_file(origin, mirror, size=1 << 20):
    data = bytes(range(256)) * (size // 256)
    origin.add(PATH, data=data, etag='"k1"', check=check_signature(PATH))
    mirror.add("/mirror" + PATH, data=data, etag='"k1"')
    return data


def params(target):
    return {k.lower() for k in urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)}


def origin_gets(origin):
    return [(h.get("Range"), t) for (p, h), t in zip(origin.requests, origin.targets) if p == PATH]


def test_a_forged_signature_is_refused_though_a_mirror_has_the_file(start_arca, origin, mirror):
    arca = with_mirror(start_arca, origin, mirror)
    data = signed_file(origin, mirror)
    status, _, body = arca.fetch(s3_url(origin, PATH, nonce="evil", forge=True))
    assert status == 403 and data[:64] not in body
    assert b"upstream answered 403\n" == body
    assert mirror.targets == [], "the mirror was asked before the origin accepted the signature"
    assert [r for r, _ in origin_gets(origin)] == ["bytes=0-0"]
    # nothing was kept: a good signature afterwards downloads (from the mirror)
    status, _, body = arca.fetch(s3_url(origin, PATH, nonce="good"))
    assert status == 200 and sha256(body) == sha256(data)


def test_an_expired_signature_is_refused_too(start_arca, origin, mirror):
    import time
    arca = with_mirror(start_arca, origin, mirror)
    signed_file(origin, mirror)
    url = s3_url(origin, PATH, nonce="old", start=int(time.time()) - 7200, life=60)
    assert arca.fetch(url)[0] == 403
    assert mirror.targets == []


def test_a_valid_signature_is_served_by_the_mirror_without_it(start_arca, origin, mirror):
    arca = with_mirror(start_arca, origin, mirror)
    data = signed_file(origin, mirror)
    good = s3_url(origin, PATH, nonce="good")  # once: its X-Amz-Date is the second it was made
    status, _, body = arca.fetch(good)
    assert status == 200 and sha256(body) == sha256(data)
    # the origin saw the one-byte probe only; the mirror served the bytes
    assert [r for r, _ in origin_gets(origin)] == ["bytes=0-0"]
    assert origin.bytes_sent[PATH] == 1
    assert mirror.bytes_sent["/mirror" + PATH] == len(data) + 1  # its probe + the body
    # no signing parameter, nor anything else of the signature, went to the mirror
    for target in mirror.targets:
        assert not params(target) & SIGNING, target
        assert "AKIAgood" not in target
    assert arca.metrics()["arca_mirror_downloads_total"] == 1
    # the accepted URL is a hit now, and another signed URL of it is confirmed with the origin
    assert arca.fetch(good)[2] == data
    assert arca.fetch(s3_url(origin, PATH, nonce="evil", forge=True))[0] == 403
    assert sum(1 for _, t in origin_gets(origin) if "X-Amz-Signature" in t) == 2


def test_exact_keys_never_send_the_signature_to_a_mirror(start_arca, origin, mirror):
    # the key is the whole URL then, signature included: the mirror's URL is still without it
    arca = with_mirror(start_arca, origin, mirror, "--exact-keys")
    data = signed_file(origin, mirror)
    status, _, body = arca.fetch(s3_url(origin, PATH, nonce="good"))
    assert status == 200 and sha256(body) == sha256(data)
    assert mirror.targets and all(not params(t) & SIGNING for t in mirror.targets)
    assert arca.fetch(s3_url(origin, PATH, nonce="evil", forge=True))[0] == 403
    assert len(mirror.targets) == 2  # the first download's probe and GET: nothing for the forgery


def test_an_unsigned_url_still_goes_straight_to_the_mirror(start_arca, origin, mirror):
    # no signature, no capability to check: the origin is not asked at all, as before
    arca = with_mirror(start_arca, origin, mirror)
    data = b"public " * 10000
    origin.add("/pub/public.img", data=data)
    mirror.add("/mirror/pub/public.img", data=data)
    assert arca.fetch(origin.url("/pub/public.img"))[2] == data
    assert origin.counts["/pub/public.img"] == 0


def test_a_buckets_credentials_never_reach_a_mirror(start_arca, workdir, mirror):
    # arca signs a bucket's requests itself (SigV4, maybe with a session token): a mirror that
    # serves one of its files gets a plain GET, never the bucket's Authorization or token
    from s3 import ACCESS, S3, SECRET
    s3 = S3(buckets=["lab"])
    try:
        data = os.urandom(300000)
        s3.put("lab", "builds/1/Image", data)
        mirror.add("/mirror/lab/builds/1/Image", data=data)
        creds = os.path.join(workdir, "s3.creds")
        with open(creds, "w") as f:
            f.write(f"{ACCESS}\n{SECRET}\nsession-token-for-s3-only\n")
        ini = os.path.join(workdir, "arca.ini")
        with open(ini, "w") as f:
            f.write(f"[bucket lab]\nurl = {s3.url('lab')}\ncredentials = {creds}\n")
        port = urllib.parse.urlsplit(s3.url("lab")).port
        rule = (f"^http://127\\.0\\.0\\.1:{port}/lab/="
                f"http://127.0.0.1:{mirror.port}/mirror/lab/")
        arca = start_arca("--upstream-allow", "127.0.0.0/8", "--config", ini, "--mirror", rule)
        status, _, body = arca.get("/browse/lab/builds/1/Image")
        assert status == 200 and sha256(body) == sha256(data)
        assert mirror.bytes_sent["/mirror/lab/builds/1/Image"] == len(data) + 1
        for _, headers in mirror.requests:
            names = {k.lower() for k in headers}
            assert "authorization" not in names, headers
            assert not any(n.startswith("x-amz-") for n in names), headers
    finally:
        s3.stop()


def token_check(good):
    """The origin's side of a token in the query (not a signature scheme arca knows)."""
    def check(query):
        q = dict(urllib.parse.parse_qsl(query))
        return None if q.get("access_token") == good and q.get("X-API-Key") == good else 403
    return check


@pytest.mark.parametrize("token, status", [("right", 200), ("wrong", 403)])
def test_a_token_in_the_query_is_checked_by_the_origin_and_never_sent_to_a_mirror(
        start_arca, origin, mirror, token, status):
    # the same for credentials arca knows no scheme of: a token, an API key, userinfo
    arca = with_mirror(start_arca, origin, mirror)
    data = os.urandom(300000)
    origin.add(PATH, data=data, check=token_check("right"))
    mirror.add("/mirror" + PATH, data=data)
    url = origin.url(PATH) + f"?access_token={token}&X-API-Key={token}&v=3"
    got, _, body = arca.fetch(url)
    assert got == status
    assert [r for r, _ in origin_gets(origin)] == ["bytes=0-0"]  # the origin decided
    if status == 200:
        assert sha256(body) == sha256(data) and mirror.counts["/mirror" + PATH] == 2
    else:
        assert b"upstream answered 403\n" == body and mirror.targets == []
    for target in mirror.targets:
        assert "access_token" not in target and "X-API-Key" not in target and token not in target
        assert params(target) == {"v"}


def test_signed_urls_served_by_a_mirror_keep_the_origins_validators(start_arca, origin, mirror):
    # a mirror is another server: its ETag is its own. The object keeps the origin's, which later
    # signed URLs are confirmed against, so they are hits, and a job joining the download through
    # another signed URL is not told "another version" (found by the review of issue 22's fix)
    arca = with_mirror(start_arca, origin, mirror)
    data = bytes(range(256)) * 4096
    origin.add(PATH, data=data, etag='"origin-1"', check=check_signature(PATH))
    mirror.add("/mirror" + PATH, data=data, etag='"mirror-7"', rate=1 << 20)
    first = arca.stream(s3_url(origin, PATH, nonce="a"))
    try:
        joined = arca.fetch(s3_url(origin, PATH, nonce="b"))
        body, complete = read_to_end(first[1])
    finally:
        first[0].close()
    assert complete and body == data
    assert joined[0] == 200 and joined[2] == data
    for nonce in ("c", "d"):
        status, _, body = arca.fetch(s3_url(origin, PATH, nonce=nonce))
        assert status == 200 and body == data
    assert mirror.counts["/mirror" + PATH] == 2  # its probe and the one download
    assert arca.metrics()["arca_confirm_changed_total"] == 0


def test_a_mirror_with_another_length_than_the_origin_is_passed_over(start_arca, origin, mirror):
    arca = with_mirror(start_arca, origin, mirror)
    data = signed_file(origin, mirror, size=1 << 18)
    mirror.objects["/mirror" + PATH].data = data + b"stale tail"
    status, _, body = arca.fetch(s3_url(origin, PATH, nonce="good"))
    assert status == 200 and body == data
    assert mirror.counts["/mirror" + PATH] == 1  # asked, not used
    assert origin.bytes_sent[PATH] == 1 + len(data)  # the probe, then the download
