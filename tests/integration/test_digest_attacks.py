"""Attacker's scenarios for digest hits (issue 22, docs/SECURITY.md "Shared objects and digests"): a
client allowed to fetch, with an origin of its own, tries to make arca serve bytes of its choosing
to other clients of a URL, to read a private object by its digest, and to learn through `sha256`
whether a private object is cached. A digest hit answers only the request that carries the digest;
it never becomes the URL's object, and never crosses from a signed object."""

import base64
import hashlib
import os
import threading
import time

import pytest

from conftest import Origin, sha256
from test_signed import PATH, add_signed, check_signature, s3_url


def refused_or_cut(arca, url, secret):
    """Fetch `url` with the secret's sha256: the answer must never be the secret. The URL's own
    bytes are downloaded instead: a 502 when they are complete before the answer begins, else a
    body cut before its end (the digest decides at the last byte)."""
    status, _, body = arca.fetch(url, sha256=sha256(secret))
    assert secret[:4096] not in body
    assert status == 502 or (status == 200 and len(body) < len(secret)), (status, len(body))


def full_gets(origin, path):
    return sum(1 for p, h in origin.requests if p == path and h.get("Range") != "bytes=0-0")


def test_a_digest_hit_does_not_plant_bytes_for_a_later_plain_request(arca, origin):
    planted = os.urandom(100000)
    real = os.urandom(100000)  # same length: the confirmation's length check passes
    attacker = origin.add("/attacker/payload", data=planted)
    victim = origin.add("/vendor/Image", data=real, etag='"vendor-1"')
    assert arca.fetch(attacker)[2] == planted
    # the probe-only digest hit answers this request with the digest's bytes ...
    status, _, body = arca.fetch(victim, sha256=sha256(planted))
    assert status == 200 and sha256(body) == sha256(planted)
    assert arca.metrics()["arca_digest_hits_total"] == 1
    # ... but every other client of the URL gets what its origin serves
    for _ in range(2):
        status, headers, body = arca.fetch(victim)
        assert status == 200 and sha256(body) == sha256(real)
    assert headers["etag"] == '"vendor-1"'  # its origin's validator
    assert headers["repr-digest"] == "sha-256=:%s:" % base64.b64encode(
        hashlib.sha256(real).digest()).decode()
    assert full_gets(origin, "/vendor/Image") == 1


def test_a_digest_hit_on_a_chunked_url_does_not_plant_either(arca, origin):
    planted, real = os.urandom(70000), os.urandom(90000)
    attacker = origin.add("/attacker/payload", data=planted)
    # no length to compare: chunked, and a probe's range is answered with the whole body
    victim = origin.add("/vendor/rootfs", data=real, chunked=True, ranges=False)
    assert arca.fetch(attacker)[2] == planted
    status, _, body = arca.fetch(victim, sha256=sha256(planted))
    assert status == 200 and body == planted
    status, _, body = arca.fetch(victim)
    assert status == 200 and sha256(body) == sha256(real)
    assert full_gets(origin, "/vendor/rootfs") == 1


def test_a_digest_hit_leaves_no_object_a_revalidation_could_keep(start_arca, origin):
    # the URL's first real download is its own bytes, and a 304 later keeps those bytes
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    planted, real = os.urandom(50000), os.urandom(50000)
    attacker = origin.add("/attacker/payload", data=planted)
    victim = origin.add("/vendor/dtb", data=real, etag='"dtb-1"')
    assert arca.fetch(attacker)[2] == planted
    assert arca.fetch(victim, sha256=sha256(planted), ttl="1s")[2] == planted
    rows = arca.get("/api/v1/resources/?state=successes")[2].decode()
    assert "/vendor/dtb" not in rows  # the URL has no object of its own
    assert arca.fetch(victim, ttl="1s")[2] == real


def test_a_digest_never_unlocks_a_signed_object_for_another_url(arca, origin):
    private = add_signed(origin, size=1 << 20)
    assert arca.fetch(s3_url(origin))[2] == private  # a capability's object, now cached
    hostile = Origin()
    try:
        decoy = os.urandom(len(private))  # the attacker's URL answers 200, same length
        url = hostile.add("/steal", data=decoy)
        refused_or_cut(arca, url, private)  # downloaded from its own origin: other bytes
        assert hostile.counts["/steal"] == 1
    finally:
        hostile.stop()
    assert arca.metrics()["arca_digest_hits_total"] == 0


def test_sha256_is_no_oracle_for_a_private_object(arca, origin):
    private = add_signed(origin, size=1 << 20)
    assert arca.fetch(s3_url(origin))[2] == private
    forged = s3_url(origin, nonce="x", forge=True)
    right = arca.fetch(forged, sha256=sha256(private))
    wrong = arca.fetch(forged, sha256="0" * 64)
    plain = arca.fetch(forged)
    # authorisation comes first: the same refusal whatever the digest says
    assert right[0] == wrong[0] == plain[0] == 403
    assert right[2] == wrong[2] == plain[2]


def test_a_signed_url_may_still_use_a_public_twin_once_confirmed(arca, origin):
    # the other way round is safe: the signed URL is confirmed upstream, the twin is public
    data = bytes(range(256)) * 4096
    public = origin.add("/pub/Image", data=data)
    origin.add(PATH, data=data, check=check_signature(PATH))
    assert arca.fetch(public)[2] == data
    status, _, body = arca.fetch(s3_url(origin), sha256=sha256(data))
    assert status == 200 and body == data
    assert full_gets(origin, PATH) == 0
    assert arca.fetch(s3_url(origin, forge=True), sha256=sha256(data))[0] == 403


def test_a_forged_joiner_learns_nothing_of_how_a_private_download_ended(start_arca, origin):
    # a forged URL that joins a signed download still waiting for upstream's headers gets the
    # origin's refusal, not the download's own failure (which tells that it ran, and how it ended)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--stall-timeout", "1s",
                      "--download-retries", "0")
    origin.add(PATH, data=b"x" * 1000, check=check_signature(PATH), stall=3)
    results = {}

    def ask(name, url):
        results[name] = arca.fetch(url)[0]

    owner = threading.Thread(target=ask, args=("owner", s3_url(origin)))
    owner.start()
    deadline = time.monotonic() + 5
    while origin.counts[PATH] < 1:  # the download is waiting for headers
        assert time.monotonic() < deadline
        time.sleep(0.02)
    ask("forged", s3_url(origin, nonce="x", forge=True))
    owner.join()
    assert results["owner"] == 504
    assert results["forged"] == 403


@pytest.mark.parametrize("private", ["exact-keys", "userinfo", "token"])
def test_a_digest_never_unlocks_an_object_behind_any_credential(start_arca, origin, private):
    # a signature kept in the key (--exact-keys), user:password@, a token in the query: each is
    # a credential, and a digest is none (found by the review of issue 22's first fix)
    args = ["--exact-keys"] if private == "exact-keys" else []
    arca = start_arca("--upstream-allow", "127.0.0.0/8", *args)
    secret = os.urandom(200000)
    check = check_signature(PATH) if args else (lambda q: None if "good" in q else 403)
    origin.add(PATH, data=secret, check=check)
    if private == "exact-keys":
        url = s3_url(origin)
    elif private == "userinfo":
        url = origin.url(PATH).replace("://", "://alice:s3cr%2Ft@") + "?good"
    else:
        url = origin.url(PATH) + "?private_token=good"
    assert arca.fetch(url)[2] == secret
    decoy = origin.add("/same/evil.bin", data=os.urandom(len(secret)))
    refused_or_cut(arca, decoy, secret)
    assert arca.metrics()["arca_digest_hits_total"] == 0


def test_a_digest_hit_says_what_the_urls_own_origin_says_the_bytes_are(arca, origin):
    # the twin's type and coding are its origin's word on its own URL: an attacker's twin
    # labelled text/html + gzip must not make a client unpack (or render) a .gz artifact
    data = os.urandom(100000)
    seed = origin.add("/enc/seed", data=data, content_type="text/html",
                      headers={"Content-Encoding": "gzip"})
    victim = origin.add("/victim/release.img.gz", data=data, content_type="application/gzip",
                        headers={"Content-Disposition": 'attachment; filename="release.img.gz"'})
    assert arca.fetch(seed)[2] == data
    status, headers, body = arca.fetch(victim, sha256=sha256(data))
    assert status == 200 and body == data
    assert arca.metrics()["arca_digest_hits_total"] == 1
    assert headers["content-type"] == "application/gzip"
    assert "content-encoding" not in headers
    assert headers["content-disposition"] == "attachment; filename=release.img.gz"
