"""Bucket files through the cache (issue 16, first part): GET|HEAD /browse/NAME/KEY streams an
object of a configured S3 bucket through the same store as /api/v1/fetch/, its requests signed
by arca (SigV4) and checked as AWS checks them (s3.py). Listings: test_bucket_listings.py."""

import hashlib
import os
import subprocess
import threading
import urllib.parse

import pytest

from conftest import ARCA_BIN, sha256, wait_age
from s3 import ACCESS, S3, SECRET


@pytest.fixture
def s3():
    server = S3(buckets=["lab"])
    yield server
    server.stop()


def creds(workdir, secret=SECRET):
    path = os.path.join(workdir, "s3.creds")
    with open(path, "w") as f:
        f.write(f"{ACCESS}\n{secret}\n")
    return path


def with_bucket(start_arca, workdir, s3, secret=SECRET, *extra):
    ini = os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write(f"[bucket lab]\nurl = {s3.url('lab')}\ncredentials = {creds(workdir, secret)}\n")
    return start_arca("--upstream-allow", "127.0.0.0/8", "--config", ini, *extra)


def browse(key):
    return "/browse/lab/" + urllib.parse.quote(key, safe="/")


def test_twenty_clients_one_s3_get(start_arca, workdir, s3):
    data = os.urandom(20 << 20)
    s3.put("lab", "builds/1/rootfs.img", data)
    arca = with_bucket(start_arca, workdir, s3)
    results = []

    def client():
        results.append(arca.get(browse("builds/1/rootfs.img")))

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _, _ in results] == [200] * 20
    assert all(sha256(b) == sha256(data) for _, _, b in results)
    assert s3.gets("/lab/builds/1/rootfs.img") == (1, 1)  # one GET reached S3, signed right
    status, headers, body = arca.get(browse("builds/1/rootfs.img"))
    assert status == 200 and body == data and s3.gets("/lab/builds/1/rootfs.img") == (1, 1)
    # S3's strong ETag is the file's one validator, while it downloaded and once cached
    assert {h["etag"] for _, h, _ in results} == {headers["etag"]} and "repr-digest" in headers
    # a Range, a HEAD and a sha256 on the cached file
    status, headers, body = arca.get(browse("builds/1/rootfs.img"), {"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    assert arca.get(browse("builds/1/rootfs.img"), method="HEAD")[1]["content-length"] == str(len(data))
    assert arca.get(browse("builds/1/rootfs.img") + "?sha256=" + "0" * 64)[0] == 502


@pytest.mark.parametrize("key", [
    "dir with spaces/file name.img", "100%/a+b=c.txt", 'quote"and<angle>.dtb', "hash#and?query",
    "ünïcödé/€.bin", "long/" + "x" * 200 + ".img",
])
def test_odd_keys_are_fetched(start_arca, workdir, s3, key):
    data = hashlib.sha256(key.encode()).digest() * 100
    s3.put("lab", key, data)
    arca = with_bucket(start_arca, workdir, s3)
    status, _, body = arca.get(browse(key))
    assert status == 200 and body == data


def test_wrong_credentials_and_s3_down(start_arca, workdir, s3):
    s3.put("lab", "k.img", b"secret data")
    arca = with_bucket(start_arca, workdir, s3, "not-the-secret")
    status, _, body = arca.get(browse("k.img"))
    assert status == 502 and body.strip() == b"bucket lab: access denied by S3"
    assert "not-the-secret" not in arca.read_log()
    s3.stop()
    status, _, body = arca.get(browse("other.img"))
    assert status == 502 and b"secret" not in body


def test_unknown_bucket_and_listings(start_arca, workdir, s3):
    arca = with_bucket(start_arca, workdir, s3)
    status, _, body = arca.get("/browse/nope/k.img")
    assert status == 404 and b"unknown bucket 'nope'" in body
    assert arca.get("/browse/lab/")[0] == 200  # an empty bucket's root: an empty listing
    assert arca.get("/browse/lab/k.img", method="POST")[0] == 405


def test_a_session_token_is_sent_and_signed(start_arca, workdir, s3):
    s3.put("lab", "t.img", b"with token")
    path = os.path.join(workdir, "token.creds")
    with open(path, "w") as f:
        f.write(f"  {ACCESS}  \n{SECRET}\r\nFQoGZXIvYXdzEEXAMPLETOKEN\n")  # blanks trimmed
    ini = os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write(f"[bucket lab]\nurl = {s3.url('lab')}\ncredentials = {path}\n")
    seen = []
    import sigv4
    check = sigv4.check

    def spy(method, p, query, headers, creds, now=None):
        seen.append({k.lower(): v for k, v in headers.items()})
        return check(method, p, query, headers, creds, now)

    sigv4.check = spy
    try:
        arca = start_arca("--upstream-allow", "127.0.0.0/8", "--config", ini)
        assert arca.get(browse("t.img"))[2] == b"with token"
    finally:
        sigv4.check = check
    assert seen[-1]["x-amz-security-token"] == "FQoGZXIvYXdzEEXAMPLETOKEN"
    assert "x-amz-security-token" in seen[-1]["authorization"]  # among the signed headers


def test_credentials_from_the_environment(start_arca, workdir, s3):
    s3.put("lab", "env.img", b"from env")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--bucket", f"lab={s3.url('lab')}",
                      env={"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET})
    assert arca.get(browse("env.img"))[2] == b"from env"


@pytest.mark.parametrize("ini,reason", [
    ("[bucket lab]\nregion = us-east-1\n", "bucket lab: url missing"),
    ("[bucket lab]\nurl = ftp://h/b\n", "bucket lab: url must be the bucket's path-style"),
    ("[bucket lab]\nurl = https://h/\n", "bucket lab: url must be the bucket's path-style"),
    ("[bucket lab]\nurl = https://h/b\ncredentials = /nonexistent\n",
     "bucket lab: cannot read credentials file '/nonexistent'"),
    ("[bucket b/x]\nurl = https://h/b\n", "bucket name (not shown): 1-63"),
    ("[bucket lab]\nurl = https://h/b\nhide-root = maybe\n", "bucket lab: hide-root: expected true or false"),
    ("[bucket lab]\nurl = https://h/b\ncolour = red\n", "bucket lab: unknown key (not shown)"),
    ("[bucket lab]\nurl = https://h/b\ncredentials = ONE_LINE\n",
     "needs an access key id and a secret"),
])
def test_bad_bucket_definitions_stop_arca_with_a_reason(workdir, ini, reason):
    path = os.path.join(workdir, "bad.ini")
    one_line = os.path.join(workdir, "one.creds")
    with open(one_line, "w") as f:
        f.write("AKIAONLYANID\n")
    with open(path, "w") as f:
        f.write(ini.replace("ONE_LINE", one_line))
    for argv in ([ARCA_BIN, "serve", "--data-dir", workdir, "--config", path],
                 [ARCA_BIN, "check-config", "--config", path]):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        assert p.returncode != 0 and reason in p.stderr, (argv[1], p.stderr)
    p = subprocess.run([ARCA_BIN, "serve", "--data-dir", workdir, "--bucket", "lab"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "--bucket: expected NAME=URL" in p.stderr


def test_an_object_changed_in_s3_is_fetched_again_after_its_ttl(start_arca, workdir, s3):
    s3.put("lab", "k/Image", b"version 1" * 1000)
    arca = with_bucket(start_arca, workdir, s3)
    path = browse("k/Image") + "?ttl=2s"
    assert arca.get(path)[2] == b"version 1" * 1000
    s3.put("lab", "k/Image", b"version 2" * 1000)  # a new ETag
    assert arca.get(path)[2] == b"version 1" * 1000  # within its ttl: the cached copy
    assert s3.gets("/lab/k/Image") == (1, 1)
    wait_age(arca, "/lab/k/Image", 2)
    status, headers, body = arca.get(path)
    assert status == 200 and body == b"version 2" * 1000
    assert s3.gets("/lab/k/Image") == (2, 2) and s3.bytes_sent["/lab/k/Image"] == 18000
    wait_age(arca, "/lab/k/Image", 2)  # unchanged this time: S3 answers the conditional GET with 304, no body
    assert arca.get(path)[2] == b"version 2" * 1000
    assert s3.gets("/lab/k/Image") == (3, 3) and s3.bytes_sent["/lab/k/Image"] == 18000


def test_a_signed_for_buckets_file_with_a_known_digest_is_fetched_as_itself(start_arca, workdir,
                                                                          s3, origin):
    # a twin is confirmed by an unsigned probe, which S3 refuses for a bucket arca signs for:
    # the file must still come (from S3, signed), not S3's 403 to the probe
    data = os.urandom(300000)
    s3.put("lab", "fw/blob.bin", data)
    arca = with_bucket(start_arca, workdir, s3)
    twin = origin.add("/public/blob.bin", data=data)
    assert arca.fetch(twin)[2] == data
    status, _, body = arca.get(browse("fw/blob.bin") + "?sha256=" + sha256(data))
    assert status == 200 and body == data
