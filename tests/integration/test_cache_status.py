"""What happened, on every fetch answer (issue 23): RFC 9211 Cache-Status with arca's name and the
freshness left (ttl), Age on every answer of an object, and the origin's strong ETag as the
object's one validator, from its download on (issue 54)."""

import os
import re
import time

from conftest import read_to_end, sha256, wait_age, without_ttl


def wait_for(predicate, timeout=5, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_download_then_hits(arca, origin):
    data = b"rootfs " * 200000
    url = origin.add("/rootfs.ext4", data=data, etag='"r1"', rate=2_000_000)
    conn, resp = arca.stream(url, ttl="1h")
    try:
        assert resp.status == 200
        assert without_ttl(resp.getheader("Cache-Status")) == "arca; fwd=uri-miss"
        # a download's freshness counts from its start: a tier's child keeps as much
        assert 3595 <= int(re.search(r"; ttl=(-?\d+)", resp.getheader("Cache-Status"))[1]) <= 3600
        assert resp.getheader("Age") in ("0", "1")
        # the origin's strong ETag is the object's one validator, before and after it completes
        assert resp.getheader("ETag") == '"r1"'
        body, complete = read_to_end(resp)
        assert complete and sha256(body) == sha256(data)
    finally:
        conn.close()

    status, headers, body = arca.fetch(url)
    assert status == 200 and body == data
    name, hit, ttl = headers["cache-status"].split("; ")
    assert (name, hit) == ("arca", "hit")
    assert ttl.startswith("ttl=") and 3595 <= int(ttl[4:]) <= 3600
    assert 0 <= int(headers["age"]) <= 2
    assert headers["etag"] == '"r1"'

    for method, extra, want in (("HEAD", {}, 200), ("GET", {"Range": "bytes=0-9"}, 206),
                                ("GET", {"If-None-Match": headers["etag"]}, 304),
                                # the sha256 tag arca once answered with validates it too
                                ("GET", {"If-None-Match": '"%s"' % sha256(data)}, 304),
                                ("GET", {"Range": "bytes=999999999-"}, 416)):
        status, h, _ = arca.fetch(url, headers=extra, method=method)
        assert status == want, (method, extra)
        assert h["cache-status"].startswith("arca; hit; ttl="), (method, extra)
        assert "age" in h, (method, extra)
    assert origin.counts["/rootfs.ext4"] == 1


def test_an_origins_malformed_etag_never_reaches_a_client(arca, origin):
    # issue 23's review: a streamed answer carried the origin's ETag as it came, control bytes
    # included; one that is not an RFC 9110 entity-tag is dropped
    data = b"dtb " * 100000
    for i, etag in enumerate(('"a\x7fb\x01"', "no-quotes", '"a"b"')):
        url = origin.add(f"/bad-etag-{i}", data=data, etag=etag, rate=2_000_000)
        conn, resp = arca.stream(url)
        try:
            assert resp.status == 200 and resp.getheader("ETag") is None, etag
            body, complete = read_to_end(resp)
            assert complete and sha256(body) == sha256(data)
        finally:
            conn.close()
        assert arca.fetch(url)[1]["etag"] == '"%s"' % sha256(data)  # arca's own, on a hit


def test_age_grows_on_repeated_hits(arca, origin):
    """Repeated plain hits share one prepared answer: it must not keep the Age it was built
    with."""
    url = origin.add("/dtb", data=b"d" * 5000)
    assert arca.fetch(url)[0] == 200
    ages = []

    def aged():
        status, headers, _ = arca.fetch(url)
        assert status == 200 and headers["cache-status"].startswith("arca; hit")
        ages.append(int(headers["age"]))
        return ages[-1] >= 2

    wait_for(aged, timeout=6, what="Age 2")
    assert ages == sorted(ages) and len(ages) > 3
    assert origin.counts["/dtb"] == 1


def test_a_client_that_joins_a_download_is_collapsed(arca, origin):
    data = b"x" * 400000
    url = origin.add("/Image", data=data, rate=200_000)  # 2 s: the second client joins it
    first = arca.stream(url)
    second = None
    try:
        assert without_ttl(first[1].getheader("Cache-Status")) == "arca; fwd=uri-miss"
        second = arca.stream(url)
        assert without_ttl(second[1].getheader("Cache-Status")) == "arca; fwd=uri-miss; collapsed"
        for _, resp in (first, second):
            body, complete = read_to_end(resp)
            assert complete and body == data
    finally:
        first[0].close()
        if second:
            second[0].close()
    assert origin.counts["/Image"] == 1


def test_a_revalidation_says_what_upstream_answered(arca, origin):
    url = origin.add("/initrd", data=b"v1" * 1000, etag='"1"')
    assert arca.fetch(url, ttl="1s")[0] == 200
    wait_age(arca, "/initrd", 1)
    status, headers, body = arca.fetch(url, ttl="1s")
    assert status == 200 and body == b"v1" * 1000
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=304"
    # as old as the stored copy (the confirmation asked about the URL, not the bytes' age)
    assert 0 <= int(headers["age"]) <= 2

    origin.objects["/initrd"].data, origin.objects["/initrd"].etag = b"v2" * 1000, '"2"'
    wait_age(arca, "/initrd", 1)  # the renewed copy, by arca's record
    status, headers, body = arca.fetch(url, ttl="1h")
    assert status == 200 and body == b"v2" * 1000
    assert without_ttl(headers["cache-status"]) == "arca; fwd=stale; fwd-status=200"
    assert arca.fetch(url)[1]["cache-status"].startswith("arca; hit; ttl=")


def test_failures_say_upstream_was_asked_and_refusals_say_nothing(arca, origin):
    status, headers, _ = arca.fetch(origin.url("/missing"))
    assert status == 404 and headers["cache-status"] == "arca; fwd=uri-miss"
    # arca's own refusals are not cache answers (RFC 9211: none on locally generated responses)
    status, headers, _ = arca.fetch(origin.url("/x"), ttl="soon")
    assert status == 400 and "cache-status" not in headers and "age" not in headers
    status, headers, _ = arca.fetch("http://127.0.0.1:1/x".replace("http", "gopher"))
    assert status == 400 and "cache-status" not in headers


def test_a_digest_hit_says_upstream_was_asked(arca, origin):
    data = b"same bytes " * 1000
    first = origin.add("/a/file", data=data)
    other = origin.add("/b/file", data=data)
    assert arca.fetch(first)[0] == 200
    status, headers, body = arca.fetch(other, sha256=sha256(data))
    assert status == 200 and body == data
    # the other URL was only confirmed (a one-byte GET, 206): the bytes are the cached twin's
    assert without_ttl(headers["cache-status"]) == \
        "arca; fwd=uri-miss; fwd-status=206; detail=digest-hit"
    assert 0 <= int(headers["age"]) <= 2  # the twin's bytes, as old as they are
    assert origin.bytes_sent["/b/file"] <= 1


def test_bucket_files_say_the_same(start_arca, workdir):
    from s3 import S3
    from test_buckets import browse, with_bucket

    s3 = S3(buckets=["lab"])
    try:
        s3.put("lab", "builds/1/Image", b"kernel" * 1000)
        arca = with_bucket(start_arca, workdir, s3)
        status, headers, _ = arca.get(browse("builds/1/Image"))
        assert status == 200 and without_ttl(headers["cache-status"]) == "arca; fwd=uri-miss"
        status, headers, _ = arca.get(browse("builds/1/Image"), method="HEAD")
        assert status == 200 and headers["cache-status"].startswith("arca; hit; ttl=")
        assert "age" in headers
        status, headers, _ = arca.get(browse("builds/1/missing"))
        assert status == 404
    finally:
        s3.stop()


def test_refusals_tell_nothing_of_what_is_cached(arca, origin):
    """A forged signature for a cached object and one for an object never fetched get the same
    Cache-Status, and neither an Age, a ttl nor a validator of the cached object."""
    from test_signed import add_signed, check_signature, s3_url

    add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="good"))[0] == 200
    other = "/bucket/kernel/other"
    origin.add(other, data=b"o" * 100, etag='"o1"', check=check_signature(other))
    for url in (s3_url(origin, nonce="evil", forge=True),  # cached: its confirmation is refused
                s3_url(origin, path=other, nonce="evil", forge=True)):  # not cached: a download
        status, headers, _ = arca.fetch(url)
        assert status == 403
        assert headers["cache-status"] == "arca; fwd=uri-miss"
        assert not {"age", "etag", "repr-digest", "last-modified"} & set(headers)


def test_a_signed_urls_hit_says_upstream_confirmed_it(arca, origin):
    from test_signed import add_signed, s3_url

    data = add_signed(origin)
    assert arca.fetch(s3_url(origin, nonce="first"))[0] == 200
    second = s3_url(origin, nonce="second")
    status, headers, body = arca.fetch(second)
    assert status == 200 and body == data
    assert without_ttl(headers["cache-status"]) in ("arca; fwd=request; fwd-status=206",
                                       "arca; fwd=request; fwd-status=200")
    # as old as the stored copy (the confirmation asked about the URL, not the bytes' age)
    assert 0 <= int(headers["age"]) <= 2
    # accepted once, remembered: a plain hit from now on
    status, headers, _ = arca.fetch(second)
    assert headers["cache-status"].startswith("arca; hit; ttl=") and "age" in headers


def test_an_answer_a_no_store_ask_did_not_keep_says_so(arca, origin, start_tier):
    """`Cache-Control: no-store` (what a child arca asks for its `store = no` URL): the download
    it starts is not kept, and its answer says so (`stored=?0`), at the parent of a site too."""
    url = origin.add("/pub/ns1.txt", data=b"ns1 " * 1000, etag='"ns1"')
    status, headers, _ = arca.fetch(url, {"Cache-Control": "no-store, max-age=0"})
    assert status == 200
    assert without_ttl(headers["cache-status"]) == "arca; fwd=uri-miss; stored=?0"
    assert re.search(r"; ttl=\d+$", headers["cache-status"]), headers["cache-status"]
    status, headers, _ = arca.fetch(url)  # not kept: the next request goes to the origin
    assert status == 200 and without_ttl(headers["cache-status"]) == "arca; fwd=uri-miss"
    assert origin.counts["/pub/ns1.txt"] == 2
    # a site's store = no: its parent's member says it kept nothing
    parent, _ = start_tier(0)
    rules = os.path.join(parent.workdir, "site-rules.ini")
    with open(rules, "w") as f:
        f.write(f"[rule latest]\nmatch = {origin.url('/latest/')}\nstore = no\n")
    site = start_tier.arca("child", "--config", rules, "--parent", parent.base)
    latest = origin.add("/latest/index.json", data=b"{}" * 100, etag='"l1"')
    status, headers, _ = site.fetch(latest)
    members = [m.strip() for m in headers["cache-status"].split(",")]
    assert status == 200 and len(members) == 2, headers["cache-status"]
    assert [without_ttl(m) for m in members] == ["arca; fwd=uri-miss; stored=?0"] * 2, members
