"""Answers and listings that differ by client: a listing shows no object whose cached
redirects keep the client from it; a fetch answer or a bucket listing whose who-may-fetch
depends on the client's network says Cache-Control private, so a shared cache in front answers
no client with another's. Also guards the first review's fixes (secrets of refused hops, %3B
spellings, no-store, hidden buckets)."""

import os

from conftest import sha256
from test_rules import config  # noqa: F401 (a fixture: the scenario's INI file)
from test_rules import proxied, rule, write

TRUSTED = ("trusted-proxy = 127.0.0.1",)
BOARD = {"X-Forwarded-For": "10.1.2.3"}
OUTSIDER = {"X-Forwarded-For": "192.168.7.7"}


def private_rule(origin):
    return rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8")


def test_a_listing_shows_no_object_its_cached_redirects_keep_the_client_from(
        origin, start_arca, workdir):
    """A cached redirect into rule private (made after the download, SIGHUP) is refused to the
    outsider: "a client the object's redirects keep out learns nothing of it" (fetch.c's
    hops_refused). The listings filtered per client (/api/v1/resources/, /resources/) must not
    then show the outsider its row, its length, its key or the hop's URL."""
    import json
    from test_rules import reload
    data = os.urandom(12_345)
    target = origin.add("/private/fw.bin", data=data, etag='"p"')
    go = origin.add("/pub/go", redirect=target)
    path = os.path.join(workdir, "arca.ini")
    arca_lines = ("upstream-allow = 127.0.0.0/8", "allow-network = all") + TRUSTED
    write(path, arca=arca_lines)
    arca = start_arca("--config", path)
    assert arca.fetch(go, headers=BOARD)[0] == 200
    write(path, private_rule(origin), arca=arca_lines)
    reload(arca)
    assert arca.fetch(go, headers=OUTSIDER)[0] == 403
    for listing in ("/api/v1/resources/?state=successes", "/resources/successes/"):
        status, _, body = arca.get(listing, OUTSIDER)
        assert status == 200
        assert b"/pub/go" not in body and b"/private/" not in body and b"12345" not in body, \
            (listing, body[:600])
    status, _, body = arca.get("/api/v1/resources/?state=successes", BOARD)
    assert b"/pub/go" in body, body[:300]
    assert json.loads(body)["count"] >= 1


def test_a_fetch_answer_under_a_narrowing_rule_is_not_shareable(origin, start_arca, config):
    """Under rule private, the board gets the firmware and the outsider a 403: the answer
    differs by client as the listings do, so a shared cache in front (the load balancer arca
    trusts for X-Forwarded-For) must not keep the board's 200 for everyone. The origin said
    `Cache-Control: public, max-age=3600`; arca's answer to the board must say private (or
    no-store), not relay public."""
    data = os.urandom(5_000)
    private = origin.add("/private/fw.bin", data=data,
                         headers={"Cache-Control": "public, max-age=3600"})
    write(config, private_rule(origin), arca=("upstream-allow = 127.0.0.0/8",) + TRUSTED)
    arca = start_arca("--config", config)
    for get in (lambda a, u, h: a.fetch(u, headers=h), proxied):
        for _ in range(2):  # the miss, then the hit
            status, headers, body = get(arca, private, BOARD)
            assert status == 200 and body == data
            cc = headers.get("cache-control", "")
            assert "private" in cc or "no-store" in cc, (cc, headers.get("cache-status"))


def test_bucket_listings_that_differ_by_client_say_private(start_arca, workdir):
    """The buckets page and a bucket's folders differ by client where a rule hides a bucket or
    a folder (API.md: answers that differ by client say Cache-Control private or no-store, so
    that a shared cache in front answers no client with another's)."""
    from s3 import ACCESS, S3, SECRET
    s3 = S3(buckets=["lab", "vault"])
    try:
        s3.put("lab", "pub/a.bin", b"a" * 10)
        s3.put("lab", "board/b.bin", b"b" * 10)
        creds = os.path.join(workdir, "s3.creds")
        with open(creds, "w") as f:
            f.write(f"{ACCESS}\n{SECRET}\n")
        ini = os.path.join(workdir, "arca.ini")
        with open(ini, "w") as f:
            f.write("[arca]\nupstream-allow = 127.0.0.0/8\n")
            for name in ("lab", "vault"):
                f.write(f"\n[bucket {name}]\nurl = {s3.url(name)}\ncredentials = {creds}\n")
            f.write(f"\n[rule locked]\nmatch = {s3.url('vault')}/\n"
                    "allow-network = 127.0.0.2/32\n")
            f.write(f"\n[rule board]\nmatch = {s3.url('lab')}/board/\n"
                    "allow-network = 127.0.0.2/32\n")
        arca = start_arca("--config", ini)
        import http.client
        from conftest import one_request
        board = one_request(http.client.HTTPConnection(arca.host, arca.port, timeout=10,
                                                       source_address=("127.0.0.2", 0)),
                            "GET", "/browse/?export=json")
        assert b"vault" in board[2] and b"vault" not in arca.get("/browse/?export=json")[2]
        said = {}
        for path in ("/browse/", "/browse/?export=json", "/browse/lab/",
                     "/browse/lab/?export=json"):
            status, headers, body = arca.get(path)
            cc = headers.get("cache-control", "")
            if status == 200 and "private" not in cc and "no-store" not in cc:
                said[path] = cc
        assert not said, said
    finally:
        s3.stop()


def test_a_refused_cached_redirect_says_no_secret_of_the_url_it_names(origin, start_arca,
                                                                     workdir):
    """A redirect with a signed query, downloaded before rule private narrowed (SIGHUP): the
    outsider's hit is refused naming the hop (hops_refused). The reason (body, Arca-Error) must
    not carry the signature, credential or token the hop's URL held (SECURITY.md: secrets in
    URLs are hidden wherever arca writes one); nor may a HEAD or a Range tell the outsider of
    the object."""
    from test_rules import reload
    data = os.urandom(10_000)
    origin.add("/private/fw.bin", data=data, etag='"p"')
    target = origin.url("/private/fw.bin") + \
        "?X-Amz-Credential=AKIASEKRETKEY&X-Amz-Signature=deadbeefSEKRET&token=SEKRETTOKEN"
    go = origin.add("/pub/go", redirect=target)
    path = os.path.join(workdir, "arca.ini")
    arca_lines = ("upstream-allow = 127.0.0.0/8", "allow-network = all") + TRUSTED
    write(path, arca=arca_lines)
    arca = start_arca("--config", path)
    status, _, body = arca.fetch(go, headers=BOARD)
    assert status == 200 and body == data
    write(path, private_rule(origin), arca=arca_lines)
    reload(arca)
    for get in (lambda a, u, h: a.fetch(u, headers=h), proxied):
        status, headers, body = get(arca, go, OUTSIDER)
        said = body + headers.get("arca-error", "").encode()
        assert status == 403, (status, said[:300])
        assert b"SEKRET" not in said, said
    for method, extra in (("HEAD", {}), ("GET", {"Range": "bytes=0-9"}),
                          ("GET", {"If-None-Match": '"p"'})):
        import http.client
        conn = http.client.HTTPConnection(arca.host, arca.port, timeout=10)
        conn.request(method, go, headers={**OUTSIDER, **extra})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 403 and resp.getheader("ETag") is None, \
            (method, extra, resp.status, resp.getheaders())


def test_a_redirect_refused_at_download_says_no_secret_in_its_answer_nor_its_failure_row(
        origin, start_arca, config):
    """/pub/go (everyone's) redirects into rule private with a signed query: the download is
    refused, not followed (403 naming the hop). Neither the client's answer (body,
    Arca-Error) nor the failures listing another client reads may carry the hop's secrets."""
    origin.add("/private/fw.bin", data=os.urandom(1000))
    target = origin.url("/private/fw.bin") + \
        "?X-Amz-Credential=AKIASEKRETKEY&X-Amz-Signature=deadbeefSEKRET&token=SEKRETTOKEN"
    go = origin.add("/pub/go", redirect=target)
    write(config, private_rule(origin), arca=("upstream-allow = 127.0.0.0/8",) + TRUSTED)
    arca = start_arca("--config", config)
    for get in (lambda a, u, h: a.fetch(u, headers=h), proxied):
        status, headers, body = get(arca, go, BOARD)
        said = body + headers.get("arca-error", "").encode()
        assert status == 403 and b"SEKRET" not in said, (status, said)
    for listing in ("/api/v1/resources/?state=failures", "/resources/failures/"):
        status, _, body = arca.get(listing, OUTSIDER)
        assert b"SEKRET" not in body, (listing, body[:800])
    log = open(arca.log_path, "rb").read()
    assert b"SEKRET" not in log


def test_a_redirect_to_an_escaped_semicolon_spelling_of_a_private_url_is_not_followed(
        origin, start_arca, config):
    """%3B is ';' for who may fetch (PROXY.md, API.md): a redirect from a URL everyone may
    fetch to /private%3bx=1/fw.bin (served as /private/fw.bin by a Tomcat) takes the download
    into rule private, so it is not followed for the outsider."""
    data = os.urandom(20_000)
    for path in ("/private%3bx=1/fw.bin", "/pub/..%3B/private/fw.bin"):
        origin.add(path, data=data)
    write(config, private_rule(origin), arca=("upstream-allow = 127.0.0.0/8",) + TRUSTED)
    arca = start_arca("--config", config)
    for n, target in enumerate(("/private%3bx=1/fw.bin", "/pub/..%3B/private/fw.bin")):
        go = origin.add(f"/pub/go{n}", redirect=origin.url(target))
        for get in (lambda a, u, h: a.fetch(u, headers=h), proxied):
            status, headers, body = get(arca, go, OUTSIDER)
            assert not (status == 200 and body == data), (target, status,
                                                          headers.get("cache-status"))
            assert status == 403, (target, status, body[:200])


def test_a_no_store_revalidation_that_gets_new_bytes_leaves_the_copy_for_others(
        origin, start_arca, config):
    """API.md: `no-store` ... "a copy kept for other clients stays"; SECURITY.md: "a no-store
    removes no copy". The origin's file changes; one client asks `no-store, max-age=0`: its own
    answer is the new file, not kept. Every other client must still be answered from a kept
    copy (the old one, or the new one kept), never sent to the origin again by that ask."""
    obj = origin.add("/pub/InRelease", data=b"one" * 5000, etag='"v1"')
    write(config, arca=("upstream-allow = 127.0.0.0/8",))
    arca = start_arca("--config", config)
    assert arca.fetch(obj)[0] == 200
    origin.objects["/pub/InRelease"].data = b"two" * 5000
    origin.objects["/pub/InRelease"].etag = '"v2"'
    status, headers, body = arca.fetch(obj, headers={"Cache-Control": "no-store, max-age=0"})
    assert status == 200, (status, body[:200])
    asked = origin.counts["/pub/InRelease"]
    status, headers, body = arca.fetch(obj)
    assert status == 200
    assert origin.counts["/pub/InRelease"] == asked, \
        (headers.get("cache-status"), "one client's no-store removed the copy every client had")


def test_a_hidden_bucket_answers_every_spelling_as_an_unknown_one(start_arca, workdir):
    """CACHING.md / BUCKETS.md: a bucket the rules keep from a client answers it exactly as an
    unknown bucket. Every spelling and method the outsider may try: HEAD, bad query values
    (checked before or after the bucket is found?), an escaped name, doubled slashes."""
    import http.client
    from conftest import one_request
    from s3 import ACCESS, S3, SECRET
    s3 = S3(buckets=["lab", "vault"])
    try:
        s3.put("vault", "keys/a.pem", b"k" * 100)
        creds = os.path.join(workdir, "s3.creds")
        with open(creds, "w") as f:
            f.write(f"{ACCESS}\n{SECRET}\n")
        ini = os.path.join(workdir, "arca.ini")
        with open(ini, "w") as f:
            f.write("[arca]\nupstream-allow = 127.0.0.0/8\n")
            for name in ("lab", "vault"):
                f.write(f"\n[bucket {name}]\nurl = {s3.url(name)}\ncredentials = {creds}\n")
            f.write(f"\n[rule locked]\nmatch = {s3.url('vault')}/\n"
                    "allow-network = 127.0.0.2/32\n")
        arca = start_arca("--config", ini)

        def ask(method, path):
            conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
            return one_request(conn, method, path)

        told = []
        for method in ("GET", "HEAD"):
            for rest in ("", "/", "/?page=0", "/?page=x", "/?page=99999", "/?export=xml",
                         "/keys/?export=json&page=2", "/keys/a.pem?sha256=zz",
                         "/keys/a.pem?ttl=bogus", "/keys/a.pem?sha256=" + "0" * 64,
                         "/%6beys/a.pem", "//keys/a.pem", "/keys/../keys/a.pem"):
                unknown = ask(method, f"/browse/nosuch{rest}")
                hidden = ask(method, f"/browse/vault{rest}")
                same = hidden[0] == unknown[0] and \
                    hidden[2] == unknown[2].replace(b"nosuch", b"vault")
                if not same:
                    told.append((method, rest, unknown[0], hidden[0], hidden[2][:120]))
            for name in ("VAULT", "v%61ult"):
                unknown = ask(method, "/browse/nosuch2/")
                hidden = ask(method, f"/browse/{name}/")
                if hidden[0] != unknown[0]:
                    told.append((method, name, unknown[0], hidden[0], hidden[2][:120]))
        assert not told, told
    finally:
        s3.stop()
