"""Bucket listings (issue 16): /browse/, /browse/NAME/[FOLDER/] as HTML pages of S3's pages and as
tuxpub's JSON document (?export=json), against s3rver behind the SigV4 check (s3.py). Each
scenario asserts on what a user sees and on the ListObjectsV2 requests that reached S3."""

import email.utils
import html.parser
import json
import os
import threading
import time
import urllib.parse

import pytest

from conftest import wait_clock
from s3 import ACCESS, S3, SECRET


@pytest.fixture
def s3():
    server = S3(buckets=["lab"])
    yield server
    server.stop()


def bucket_arca(start_arca, workdir, s3, extra="", secret=SECRET):
    creds = os.path.join(workdir, "s3.creds")
    with open(creds, "w") as f:
        f.write(f"{ACCESS}\n{secret}\n")
    ini = os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write(f"[bucket lab]\nurl = {s3.url('lab')}\ncredentials = {creds}\n{extra}")
    return start_arca("--upstream-allow", "127.0.0.0/8", "--config", ini)


class Rows(html.parser.HTMLParser):
    """The listing table's rows: (kind, href, text), the parent folder's row left out."""

    def __init__(self):
        super().__init__()
        self.rows, self.kind, self.href, self.text, self.links = [], None, None, "", {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and a.get("class") in ("folder", "file"):
            self.kind = a["class"]
        elif tag == "a" and self.kind and self.href is None:
            self.href, self.text = a["href"], ""
        if tag == "a" and a.get("rel"):
            self.links[a["rel"]] = a["href"]

    def handle_data(self, data):
        if self.href is not None:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "a" and self.href is not None and self.kind:
            if self.text != "../":
                self.rows.append((self.kind, self.href, self.text))
            self.kind, self.href = None, None


def rows(body):
    p = Rows()
    p.feed(body.decode())
    return p.rows, p.links


def listing(arca, path):
    status, headers, body = arca.get(path)
    assert status == 200, (path, status, body[:200])
    return rows(body)


def test_a_folder_past_two_s3_pages_pages_and_json(start_arca, workdir, s3):
    keys = [f"big/f{i:05d}.txt" for i in range(2001)]  # with the two folders: 1000, 1000, 3
    s3.put_many("lab", [(k, k.encode()) for k in keys] +
                [("big/sub/x.bin", b"x"), ("big/zz/y.bin", b"y")])
    arca = bucket_arca(start_arca, workdir, s3)
    seen, page, pages = [], 1, 0
    while True:
        found, links = listing(arca, f"/browse/lab/big/?page={page}")
        pages += 1
        folders = [r for r in found if r[0] == "folder"]
        files = [r for r in found if r[0] == "file"]
        assert found == folders + files  # folders first on every page
        seen += found
        if page > 1:
            assert links["prev"] == f"?page={page - 1}"
        if "next" not in links:
            break
        assert links["next"] == f"?page={page + 1}"
        page += 1
    assert pages == 3  # S3's pages: 1000 entries each, the two folders among them
    names = [t for _, _, t in seen]
    assert len(names) == len(set(names)) == 2003
    assert sorted(t for k, _, t in seen if k == "file") == [k[4:] for k in keys]
    assert [t for k, _, t in seen if k == "folder"] == ["sub/", "zz/"]
    assert all(h == "/browse/lab/big/" + t for _, h, t in seen)
    assert s3.lists("lab") == [("big/", None)] + [("big/", t) for _, t in s3.lists("lab")[1:]]
    assert len(s3.lists("lab")) == 3
    assert arca.get("/browse/lab/big/?page=4")[0] == 404
    assert arca.get("/browse/lab/big/?page=0")[0] == 400
    status, headers, body = arca.get("/browse/lab/big/?export=json")
    assert status == 200 and headers["content-type"] == "application/json"
    doc = json.loads(body)
    urls = [f["Url"] for f in doc["files"]]
    base = f"http://{arca.host}:{arca.port}/browse/lab/big/"
    assert urls == [base + k[4:] for k in keys]  # every file, in order, once
    assert [f["Url"] for f in doc["folders"]] == [base + "sub/", base + "zz/"]
    assert len(s3.lists("lab")) == 3  # the pages the HTML walk left in the cache


def test_json_document_fields_and_types(start_arca, workdir, s3):
    s3.put("lab", "builds/1/Image", b"kernel" * 1000)
    s3.put("lab", "builds/1/dtbs/board.dtb", b"dtb")
    arca = bucket_arca(start_arca, workdir, s3)
    status, headers, body = arca.get("/browse/lab/builds/1/?export=json")
    assert status == 200
    doc = json.loads(body)
    assert set(doc) == {"files", "folders"}
    (f,), (d,) = doc["files"], doc["folders"]
    assert set(f) == {"Url", "Size", "LastModified", "ETag"} and set(d) == {"Url"}
    assert f["Url"] == f"http://{arca.host}:{arca.port}/browse/lab/builds/1/Image"
    assert d["Url"] == f"http://{arca.host}:{arca.port}/browse/lab/builds/1/dtbs/"
    assert f["Size"] == 6000 and isinstance(f["Size"], int)
    when = email.utils.parsedate_to_datetime(f["LastModified"])
    assert abs(when.timestamp() - time.time()) < 120
    assert f["ETag"].startswith('"') and f["ETag"].endswith('"')
    # the Url downloads the file through arca
    status, _, data = arca.get(urllib.parse.urlsplit(f["Url"]).path)
    assert status == 200 and data == b"kernel" * 1000
    status, _, body = arca.get("/browse/lab/builds/1/?export=csv")
    assert status == 501 and body.strip() == b"export=csv is not supported; export=json is"


ODD = ["dir with spaces/file name.img", "100%/a+b=c.txt", 'quote"and<angle>.dtb',
       "hash#and?query", "ünïcödé/€.bin", "long/" + "x" * 200 + ".img"]  # s3rver: a segment + its suffixes < 256 bytes


def test_nested_folders_and_odd_keys_are_listed_linked_and_fetched(start_arca, workdir, s3):
    # s3rver lists a folder only when it holds an object of its own (S3 has no such limit)
    s3.put_many("lab", [("odd/" + k, k.encode()) for k in ODD] + [
        ("odd/a/1.txt", b"1"), ("odd/a/b/2.txt", b"2"), ("odd/a/b/c/deep.txt", b"deep")])
    arca = bucket_arca(start_arca, workdir, s3)
    for key in ODD + ["a/b/c/deep.txt"]:
        folder, _, name = ("odd/" + key).rpartition("/")
        path = "/browse/lab/" + urllib.parse.quote(folder + "/", safe="/")
        status, _, body = arca.get(path)
        assert status == 200, key
        found, _ = rows(body)
        entry = [r for r in found if r[2] == name]
        assert entry and entry[0][0] == "file", (key, found)
        status, _, data = arca.get(entry[0][1])  # the link, as a browser follows it
        assert status == 200 and data == (key.encode() if key in ODD else b"deep"), key
    body = arca.get("/browse/lab/odd/")[2]
    assert b"<angle>" not in body and b"quote&quot;and&lt;angle&gt;.dtb" in body
    found, _ = rows(body)
    assert [t for k, _, t in found if k == "folder"] == [
        "100%/", "a/", "dir with spaces/", "long/", "ünïcödé/"]
    doc = json.loads(arca.get("/browse/lab/odd/?export=json")[2])
    names = {urllib.parse.unquote(urllib.parse.urlsplit(f["Url"]).path) for f in doc["files"]}
    assert names == {"/browse/lab/odd/" + k for k in ODD if "/" not in k}
    found, _ = listing(arca, "/browse/lab/odd/a/b/")
    assert found == [("folder", "/browse/lab/odd/a/b/c/", "c/"),
                     ("file", "/browse/lab/odd/a/b/2.txt", "2.txt")]
    assert b"1 folder and 1 file on this page" in arca.get("/browse/lab/odd/a/b/")[2]


def test_folder_markers_redirects_and_missing_folders(start_arca, workdir, s3):
    s3.put_many("lab", [("m/", b""), ("m/x.txt", b"x"), ("empty/", b""), ("top.txt", b"t")])
    arca = bucket_arca(start_arca, workdir, s3)
    found, _ = listing(arca, "/browse/lab/m/")
    assert found == [("file", "/browse/lab/m/x.txt", "x.txt")]  # the marker is not a file
    found, _ = listing(arca, "/browse/lab/")
    assert found == [("folder", "/browse/lab/empty/", "empty/"), ("folder", "/browse/lab/m/", "m/"),
                     ("file", "/browse/lab/top.txt", "top.txt")]
    assert listing(arca, "/browse/lab/empty/")[0] == []  # a marker alone: an empty folder
    status, headers, _ = arca.get("/browse/lab/m")
    assert status == 302 and headers["location"] == "/browse/lab/m/"
    status, headers, _ = arca.get("/browse/lab")
    assert status == 302 and headers["location"] == "/browse/lab/"
    status, _, body = arca.get("/browse/lab/nothing/")
    assert status == 404 and body.strip() == b"bucket lab has no folder 'nothing/'"
    status, _, body = arca.get("/browse/lab/nothing")
    assert status == 404 and body.strip() == b"bucket lab has no file or folder 'nothing'"
    assert arca.get("/browse/lab/top.txt")[2] == b"t"


def test_hide_root_and_the_buckets_page(start_arca, workdir, s3):
    s3.put_many("lab", [("team-a/Image", b"a"), ("team-b/Image", b"b")])
    arca = bucket_arca(start_arca, workdir, s3, "hide-root = true\n")
    status, _, body = arca.get("/browse/lab/")
    assert status == 200 and b"team-a" not in body and b"team-b" not in body
    assert rows(body)[0] == []
    assert json.loads(arca.get("/browse/lab/?export=json")[2]) == {"files": [], "folders": []}
    found, _ = listing(arca, "/browse/lab/team-a/")
    assert found == [("file", "/browse/lab/team-a/Image", "Image")]
    assert s3.lists("lab") == [("team-a/", None)]  # the root was never asked for
    status, _, body = arca.get("/browse/")
    assert status == 200 and b"/browse/lab/" not in body
    assert json.loads(arca.get("/browse/?export=json")[2]) == {"files": [], "folders": []}


def test_the_buckets_page_lists_visible_buckets(start_arca, workdir, s3):
    arca = bucket_arca(start_arca, workdir, s3)
    status, _, body = arca.get("/browse/")
    assert status == 200 and b'href="/browse/lab/"' in body
    assert b'href="/browse/"' in arca.get("/")[2]  # the navigation has Buckets
    doc = json.loads(arca.get("/browse/?export=json")[2])
    assert doc == {"files": [], "folders": [{"Url": f"http://{arca.host}:{arca.port}/browse/lab/"}]}


def test_listing_cache_and_its_expiry(start_arca, workdir, s3):
    s3.put("lab", "d/one.txt", b"1")
    arca = bucket_arca(start_arca, workdir, s3, "listing-ttl = 2s\n")
    status, headers, body = arca.get("/browse/lab/d/")
    listed = int(time.time())  # arca's listing was fetched in this second or before
    assert headers["cache-control"] == "max-age=2"
    s3.put("lab", "d/two.txt", b"2")
    found, _ = listing(arca, "/browse/lab/d/")  # cached: the new file is not seen yet
    assert [t for _, _, t in found] == ["one.txt"]
    assert json.loads(arca.get("/browse/lab/d/?export=json")[2])["files"][0]["Size"] == 1
    assert len(s3.lists("lab")) == 1
    wait_clock(listed + 2)  # the listing is 2 s old by arca's clock
    found, _ = listing(arca, "/browse/lab/d/")
    assert [t for _, _, t in found] == ["one.txt", "two.txt"]
    assert len(s3.lists("lab")) == 2


def test_concurrent_cold_listings_share_one_s3_request(start_arca, workdir, s3):
    s3.put_many("lab", [(f"c/{i}.bin", b"x") for i in range(1500)])
    arca = bucket_arca(start_arca, workdir, s3)
    results = []

    def client(i):
        path = "/browse/lab/c/?export=json" if i % 2 else "/browse/lab/c/"
        results.append(arca.get(path))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _, _ in results] == [200] * 12
    docs = [json.loads(b) for s, h, b in results if h["content-type"] == "application/json"]
    assert len(docs) == 6 and all(len(d["files"]) == 1500 for d in docs)
    assert len(s3.lists("lab")) == 2  # two pages, each asked for once
    status = arca.status()
    assert status["statistics_bucket_listings"] == 12
    assert status["statistics_bucket_list_requests"] == 2
    assert arca.metrics()['arca_bucket_list_pages_total{source="s3"}'] == 2


def test_listing_errors(start_arca, workdir, s3):
    s3.put("lab", "e/k.img", b"k")
    arca = bucket_arca(start_arca, workdir, s3, secret="not-the-secret")
    status, _, body = arca.get("/browse/lab/e/")
    assert status == 502 and body.strip() == b"bucket lab: access denied by S3"
    status, _, body = arca.get("/browse/lab/e/?export=json")
    assert status == 502 and b"not-the-secret" not in body
    assert "not-the-secret" not in arca.read_log()
    assert arca.get("/browse/nope/")[0] == 404
    assert arca.get("/browse/lab/e/?page=x")[0] == 400
    s3.stop()
    status, _, body = arca.get("/browse/lab/f/")
    assert status == 502 and body.startswith(b"bucket lab: S3 unreachable")


def test_a_prefix_limits_the_view(start_arca, workdir, s3):
    s3.put_many("lab", [("team-a/Image", b"a"), ("team-a/dtbs/x.dtb", b"x"),
                        ("team-b/Image", b"secret of b")])
    arca = bucket_arca(start_arca, workdir, s3, "prefix = team-a\n")
    found, _ = listing(arca, "/browse/lab/")
    assert found == [("folder", "/browse/lab/dtbs/", "dtbs/"), ("file", "/browse/lab/Image", "Image")]
    assert arca.get("/browse/lab/Image")[2] == b"a"
    assert s3.gets("/lab/team-a/Image") == (1, 1)
    assert arca.get("/browse/lab/team-b/Image")[0] == 404  # it is team-a/team-b/Image
    # a dot segment would leave the view (or the bucket) once the URL's path is normalized
    for path in ("/browse/lab/../team-b/Image", "/browse/lab/x/../../team-b/Image",
                 "/browse/lab/./Image", "/browse/lab/../", "/browse/lab/%2E%2E/team-b/Image"):
        status, _, body = arca.get(path)
        assert status == 400 and b"'..' segment" in body, path
    assert s3.gets("/lab/team-b/Image") == (0, 0) and s3.gets("/team-b/Image") == (0, 0)


def test_listing_pages_count_against_the_uplink_cap(start_arca, workdir, s3, origin):
    """--upstream-rate covers every byte arca takes from upstream: a listing's pages too (paid as
    they come: the download after them waits for their share of the cap)."""
    rate = 256 * 1024
    s3.put_many("lab", [(f"k{i:04d}-" + "x" * 200, b"x") for i in range(1000)])
    data = os.urandom(256 * 1024)
    url = origin.add("/after-listing", data=data)
    arca = bucket_arca(start_arca, workdir, s3, f"[arca]\nupstream-rate = {rate}\n")
    t0 = time.monotonic()
    listing(arca, "/browse/lab/")
    status, _, body = arca.fetch(url)
    elapsed = time.monotonic() - t0
    assert status == 200 and body == data
    pages = s3.bytes_sent["/lab"] + s3.bytes_sent["/lab/"]
    assert pages > 200 * 1000
    # the pages and the download at the cap, less the bucket's burst (64 KiB) and slack
    assert elapsed >= (pages + len(data) - 64 * 1024) / rate - 0.3, (elapsed, pages)
