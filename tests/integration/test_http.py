"""The HTTP that real clients rely on: validators and conditional requests (wget -N, curl -z,
If-Range), and upstream headers that change what the bytes mean, replayed whole."""

import gzip
import os
import sqlite3
import subprocess
import threading

import requests

from conftest import read_to_end, sha256, wait_age, wait_downloading

LM = "Tue, 10 Nov 2026 08:00:00 GMT"
BEFORE = "Mon, 09 Nov 2026 08:00:00 GMT"
AFTER = "Wed, 11 Nov 2026 08:00:00 GMT"


def test_hits_carry_a_strong_etag_and_upstream_last_modified(origin, arca):
    data = os.urandom(3000)
    url = origin.add("/v", data=data, last_modified=LM, etag='"upstream-tag"')
    _, headers, _ = arca.fetch(url)
    assert headers["last-modified"] == LM and headers["etag"] == '"upstream-tag"'
    _, headers, body = arca.fetch(url)
    # the origin's strong ETag stays the object's one validator (issue 54)
    assert body == data and headers["etag"] == '"upstream-tag"'
    assert headers["last-modified"] == LM
    # an origin that gives none: the body's sha256 once complete
    url = origin.add("/n", data=data, last_modified=LM)
    arca.fetch(url)
    assert arca.fetch(url)[1]["etag"] == f'"{sha256(data)}"'


def test_if_none_match_and_if_modified_since(origin, arca):
    data = os.urandom(3000)
    url = origin.add("/c", data=data, last_modified=LM)
    arca.fetch(url)  # the miss: no ETag yet, the digest is known once the object completes
    etag = arca.fetch(url)[1]["etag"]
    status, headers, body = arca.fetch(url, headers={"If-None-Match": f'"x", {etag}'})
    assert status == 304 and body == b"" and headers["etag"] == etag
    assert arca.fetch(url, headers={"If-None-Match": 'W/' + etag})[0] == 304, "weak comparison"
    status, _, body = arca.fetch(url, headers={"If-None-Match": '"other"'})
    assert status == 200 and body == data
    # If-None-Match present: If-Modified-Since is not looked at (RFC 9110 13.2.2)
    assert arca.fetch(url, headers={"If-None-Match": '"other"', "If-Modified-Since": AFTER})[0] \
        == 200
    assert arca.fetch(url, headers={"If-Modified-Since": LM})[0] == 304
    assert arca.fetch(url, headers={"If-Modified-Since": AFTER}, method="HEAD")[0] == 304
    status, _, body = arca.fetch(url, headers={"If-Modified-Since": BEFORE})
    assert status == 200 and body == data
    assert arca.fetch(url, headers={"If-Modified-Since": "not a date"})[0] == 200
    assert origin.counts["/c"] == 1


def test_if_modified_since_without_last_modified_is_a_full_answer(origin, arca):
    url = origin.add("/nolm", data=b"n" * 100)
    arca.fetch(url)
    assert arca.fetch(url, headers={"If-Modified-Since": AFTER})[0] == 200


def test_if_range_with_a_stale_validator_gets_the_whole_body(origin, arca):
    data = os.urandom(5000)
    url = origin.add("/r", data=data, last_modified=LM)
    arca.fetch(url)
    etag = arca.fetch(url)[1]["etag"]
    rng = {"Range": "bytes=100-199"}
    status, _, body = arca.fetch(url, headers={**rng, "If-Range": etag})
    assert status == 206 and body == data[100:200]
    status, headers, body = arca.fetch(url, headers={**rng, "If-Range": '"stale"'})
    assert status == 200 and body == data and "content-range" not in headers, \
        "RFC 9110: a Range whose If-Range does not match MUST be ignored"
    assert arca.fetch(url, headers={**rng, "If-Range": "W/" + etag})[0] == 200, "weak never"
    assert arca.fetch(url, headers={**rng, "If-Range": LM})[0] == 206
    assert arca.fetch(url, headers={**rng, "If-Range": BEFORE})[0] == 200


def test_conditionals_on_a_downloading_object(origin, arca):
    data = os.urandom(2 << 20)
    url = origin.add("/slow", data=data, rate=2 << 20, last_modified=LM)
    results = {}

    def plain():
        conn, resp = arca.stream(url)
        results["plain"] = read_to_end(resp)
        conn.close()

    t = threading.Thread(target=plain)
    t.start()
    wait_downloading(arca, "/slow")  # its Last-Modified is in
    assert arca.fetch(url, headers={"If-Modified-Since": LM})[0] == 304
    status, _, body = arca.fetch(url, headers={"Range": "bytes=0-9", "If-Range": '"x"'})
    assert status == 200 and body == data, "no ETag yet: the If-Range cannot match"
    t.join()
    assert results["plain"] == (data, True)
    assert origin.counts["/slow"] == 1


def test_wget_timestamping_and_curl_time_cond_stop_downloading(origin, arca, workdir):
    data = os.urandom(20000)
    url = origin.add("/boards/rootfs.ext4", data=data, last_modified=LM)
    fetch = f"http://{arca.host}:{arca.port}/api/v1/fetch/rootfs.ext4?url={url}"
    out = os.path.join(workdir, f"rootfs.ext4?url={url.replace('/', '%2F')}")  # wget's name
    for _ in range(2):
        subprocess.run(["wget", "-q", "-N", fetch], cwd=workdir, check=True, timeout=30)
    with open(out, "rb") as f:
        assert f.read() == data
    assert os.stat(out).st_mtime == 1794297600  # wget set the file's time from Last-Modified
    served = arca.status()["statistics_upload"]
    subprocess.run(["curl", "-sSf", "-z", out, "-o", out + ".curl", fetch], check=True,
                   timeout=30)
    assert not os.path.exists(out + ".curl"), "curl -z: 304, nothing written"
    assert arca.status()["statistics_upload"] == served, "the second wget and curl got no body"
    assert origin.counts["/boards/rootfs.ext4"] == 1


def test_content_encoding_is_replayed(origin, arca):
    text = b"kernel config\n" * 2000
    packed = gzip.compress(text)
    url = origin.add("/config.gz", data=packed, content_type="text/plain",
                     headers={"Content-Encoding": "gzip"})
    for _ in range(2):  # the miss and the hit
        r = requests.get(f"http://{arca.host}:{arca.port}{arca.fetch_path(url)}", timeout=30)
        assert r.headers["Content-Encoding"] == "gzip" and r.content == text
    out = subprocess.run(["curl", "-sSf", "--compressed",
                          f"http://{arca.host}:{arca.port}{arca.fetch_path(url)}"],
                         check=True, capture_output=True, timeout=30).stdout
    assert out == text


def test_upstream_file_name_and_long_content_type(origin, arca):
    ctype = 'application/vnd.lab+json; profile="' + "x" * 250 + '"; charset=utf-8'
    url = origin.add("/dl?id=7", data=b"{}", content_type=ctype,
                     headers={"Content-Disposition": 'attachment; filename="dtb/../board.dtb"'})
    url = origin.url("/dl?id=7")
    origin.objects["/dl"] = origin.objects.pop("/dl?id=7")
    for _ in range(2):
        _, headers, _ = arca.fetch(url)
        assert headers["content-type"] == ctype, "no header value is cut short"
        assert headers["content-disposition"] == "attachment; filename=dtbboard.dtb"
    _, headers, _ = arca.fetch(url, filename="mine.dtb")
    assert headers["content-disposition"] == "attachment; filename=mine.dtb"


def test_a_copy_loaded_at_start_and_renewed_by_a_304_keeps_its_headers(origin, start_arca):
    """A row loaded at start keeps its header values in the object's own allocation (issue 70):
    the download a 304 renews it with answers with a copy of them, never with bytes of the
    expired version it replaces (freed once it goes: the ASan pass would report it), and so does
    every hit after; the origin is asked once in full, once conditionally."""
    data = os.urandom(30_000)
    url = origin.add("/fw.bin", data=data, etag='"fw1"', last_modified=LM,
                     content_type="application/x-firmware",
                     headers={"Content-Disposition": "attachment; filename=fw.bin"})
    first = start_arca("--upstream-allow", "127.0.0.0/8")
    status, before, body = first.fetch(url, ttl="2s")
    assert status == 200 and body == data
    assert first.stop() == 0
    again = start_arca("--upstream-allow", "127.0.0.0/8", data_dir=first.data_dir)
    wait_age(again, "/fw.bin", 2)
    for asked in range(2):  # the renewal, then a hit on the renewed copy
        status, headers, body = again.fetch(url, ttl="1h")
        assert status == 200 and sha256(body) == sha256(data)
        for name in ("content-type", "etag", "last-modified", "content-disposition"):
            assert headers[name] == before[name], (asked, name, headers)
    assert again.metrics()['arca_revalidations_total{result="unchanged"}'] == 1
    assert origin.counts["/fw.bin"] == 2


def test_replayed_headers_survive_a_restart_and_an_older_index_loads(origin, start_arca):
    data = gzip.compress(b"x" * 5000)
    url = origin.add("/img.gz", data=data, last_modified=LM,
                     headers={"Content-Encoding": "gzip",
                              "Content-Disposition": "inline; filename*=UTF-8''b%C3%A9.gz"})
    first = start_arca("--upstream-allow", "127.0.0.0/8")
    assert first.fetch(url)[2] == data
    assert first.stop() == 0
    second = start_arca("--upstream-allow", "127.0.0.0/8", data_dir=first.data_dir)
    status, headers, body = second.fetch(url)
    assert status == 200 and body == data
    assert headers["content-encoding"] == "gzip" and headers["last-modified"] == LM
    assert headers["content-disposition"] == 'attachment; filename="b\xc3\xa9.gz"'
    assert second.stop() == 0
    # an index written before these columns existed: its objects are still served
    db = sqlite3.connect(os.path.join(first.data_dir, "index.sqlite"))
    for column in ("content_encoding", "filename", "last_modified"):
        db.execute(f"ALTER TABLE objects DROP COLUMN {column}")
    db.commit()
    db.close()
    third = start_arca("--upstream-allow", "127.0.0.0/8", data_dir=first.data_dir)
    status, headers, body = third.fetch(url)
    assert status == 200 and body == data and "content-encoding" not in headers
    assert origin.counts["/img.gz"] == 1
