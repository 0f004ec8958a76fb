"""Digest hits and shared files (issue 15): a request with &sha256= for a URL not cached is
answered from any complete object with that digest, after one confirming request of that URL
upstream (a digest alone never unlocks a file); identical objects share one file on disk and
count once against the quota."""

import hashlib
import json
import os
import time
import urllib.parse

from conftest import sha256


def gets(origin, path):
    """(full GETs, one-byte confirmations) the origin saw for path."""
    full = sum(1 for p, h in origin.requests if p == path and h.get("Range") != "bytes=0-0")
    return full, sum(1 for p, h in origin.requests if p == path and h.get("Range") == "bytes=0-0")


def inode(arca, url):
    key = hashlib.sha256(url.encode()).hexdigest()
    return os.stat(os.path.join(arca.data_dir, "objects", key[:2], key)).st_ino


def wait_for(cond, timeout=5):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_known_digest_under_another_url_is_not_downloaded_again(arca, origin):
    data = os.urandom(3 << 20)
    a = origin.add("/builds/1/Image", data=data, etag='"x"')
    b = origin.add("/builds/2/Image", data=data, etag='"y"')
    digest = sha256(data)
    assert arca.fetch(a, sha256=digest)[2] == data
    for hits in (1, 2):  # each request with the digest: confirmed, never downloaded
        status, headers, body = arca.fetch(b, sha256=digest)
        assert status == 200 and sha256(body) == digest
        assert gets(origin, "/builds/2/Image") == (0, hits)
        assert arca.metrics()["arca_digest_hits_total"] == hits
    assert origin.bytes_sent["/builds/2/Image"] == 2
    # the digest answered those requests only: b's own object comes from b's own download
    assert arca.fetch(b)[2] == data and gets(origin, "/builds/2/Image") == (1, 2)
    rows = json.loads(arca.get("/api/v1/resources/?state=successes")[2])["resources"]
    assert sorted(r["url"] for r in rows) == sorted([a, b])
    # then one file under both names, counted once
    wait_for(lambda: inode(arca, a) == inode(arca, b))
    assert arca.status()["disk_usage"] == len(data)


def test_a_digest_alone_never_unlocks_a_file(arca, origin):
    data = os.urandom(100000)
    a = origin.add("/pub/fw.bin", data=data)
    assert arca.fetch(a)[2] == data
    secret = origin.url("/private/fw.bin")  # upstream has nothing there
    status, _, body = arca.fetch(secret, sha256=sha256(data))
    assert status == 404 and data[:100] not in body
    forbidden = origin.add("/denied/fw.bin", data=data, status=403)
    status, headers, body = arca.fetch(forbidden, sha256=sha256(data))
    assert status == 403
    # worded as any download's refusal: nothing tells that a twin was there to be confirmed
    assert body == arca.fetch(origin.add("/denied/other.bin", status=403))[2]
    assert headers["x-content-type-options"] == "nosniff"
    assert arca.metrics()["arca_digest_hits_total"] == 0


def test_upstream_serving_another_length_is_downloaded(arca, origin):
    data, other = os.urandom(50000), os.urandom(60000)
    a = origin.add("/a", data=data)
    b = origin.add("/b", data=other)
    assert arca.fetch(a)[2] == data
    # the client claims b has a's digest; upstream's length says otherwise: downloaded, and cut
    status, _, body = arca.fetch(b, sha256=sha256(data))
    assert gets(origin, "/b") == (1, 1)
    assert body != data


def test_identical_downloads_share_one_file_and_count_once(arca, origin):
    data = os.urandom(2 << 20)
    urls = [origin.add(f"/mirror{i}/rootfs.img", data=data) for i in range(3)]
    for u in urls:
        assert arca.fetch(u)[2] == data
    wait_for(lambda: len({inode(arca, u) for u in urls}) == 1)
    assert arca.status()["disk_usage"] == len(data)
    # names go one by one; the file and its single count stay while one is left
    token_free = json.loads(arca.get("/api/v1/resources/?state=successes")[2])["count"]
    assert token_free == 3


def test_purging_one_twin_keeps_the_others(start_arca, origin, workdir):
    with open(os.path.join(workdir, "token"), "w") as f:
        f.write("t" * 32 + "\n")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      os.path.join(workdir, "token"))
    data = os.urandom(1 << 20)
    a, b = origin.add("/a", data=data), origin.add("/b", data=data)
    assert arca.fetch(a)[2] == data and arca.fetch(b)[2] == data
    wait_for(lambda: inode(arca, a) == inode(arca, b))
    auth = {"Authorization": "Bearer " + "t" * 32}

    def purge(url):
        return arca.get("/api/v1/resources/?" + urllib.parse.urlencode({"url": url}), auth,
                        method="DELETE")[0]

    assert purge(a) == 200
    assert arca.status()["disk_usage"] == len(data)
    assert arca.fetch(b)[2] == data and origin.counts["/b"] == 1
    assert purge(b) == 200
    assert arca.status()["disk_usage"] == 0


def test_twins_count_once_after_a_restart(start_arca, origin):
    data = os.urandom(1 << 20)
    first = start_arca("--upstream-allow", "127.0.0.0/8")
    a, b = origin.add("/a", data=data), origin.add("/b", data=data)
    assert first.fetch(a)[2] == data and first.fetch(b)[2] == data
    wait_for(lambda: inode(first, a) == inode(first, b))
    assert first.stop() == 0
    again = start_arca("--upstream-allow", "127.0.0.0/8", data_dir=first.data_dir)
    assert again.status()["disk_usage"] == len(data)
    assert again.fetch(a)[2] == data and again.fetch(b)[2] == data
    assert origin.counts["/a"] == 1 and origin.counts["/b"] == 1


def test_a_digest_hit_says_what_its_own_url_said(arca, origin):
    # the twin's bytes, but the URL's own Last-Modified and file name, never the twin's
    data = os.urandom(1 << 20)
    a = origin.add("/a/kernel", data=data, last_modified="Mon, 02 Nov 2026 10:00:00 GMT",
                   headers={"Content-Disposition": 'attachment; filename="a-kernel.bin"'})
    b = origin.add("/b/Image", data=data, last_modified="Tue, 03 Nov 2026 10:00:00 GMT")
    assert arca.fetch(a)[2] == data
    status, headers, body = arca.fetch(b, sha256=sha256(data))
    assert status == 200 and body == data
    assert headers["last-modified"] == "Tue, 03 Nov 2026 10:00:00 GMT"
    assert headers["content-disposition"] == "attachment; filename=Image"
    assert headers["etag"] == f'"{sha256(data)}"'
    # and a plain hit on a afterwards keeps a's own (the digest hit left no prepared answer)
    for _ in range(3):
        status, headers, body = arca.fetch(a)
        assert body == data and headers["content-disposition"] == "attachment; filename=a-kernel.bin"
    assert gets(origin, "/b/Image") == (0, 1)


def test_restarts_remove_no_file_of_twins(start_arca, origin):
    # two names of one file are no orphans: no start sweeps (or reports) a file of theirs
    data = os.urandom(1 << 20)
    a, b = origin.add("/a", data=data), origin.add("/b", data=data)
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    assert arca.fetch(a)[2] == data and arca.fetch(b)[2] == data
    wait_for(lambda: inode(arca, a) == inode(arca, b))
    objects = os.path.join(arca.data_dir, "objects")

    def files():
        return sorted(n for _, _, names in os.walk(objects) for n in names)

    before = files()
    assert len(before) == 2
    for _ in range(2):
        assert arca.stop() == 0
        arca.start()
        assert arca.fetch(a)[2] == data and arca.fetch(b)[2] == data
        assert arca.log_shows("objects", timeout=5)
        wait_for(lambda: files() == before)
    assert "no index row points to" not in arca.read_log()
    assert inode(arca, a) == inode(arca, b)
    assert origin.counts["/a"] == 1 and origin.counts["/b"] == 1
