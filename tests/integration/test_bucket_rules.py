"""A bucket's folders list to each client only what it may fetch (docs/BUCKETS.md "Errors and
access", docs/SECURITY.md "Rules (issue 52)"): a rule that names networks over a bucket's URL
prefix hides its files' names from the clients it refuses them, in /browse/'s HTML pages and in
?export=json, page after page; a folder whose every URL the rule refuses is neither listed nor
browsed (403), and a bucket likewise (it answers as an unknown bucket, 404); the clients it
lets in see everything, as without it. Two clients of one arca, told apart by their loopback
addresses, both in --allow-network."""

import http.client
import json
import os

import pytest

from conftest import one_request, sha256
from s3 import ACCESS, S3, SECRET

BOARD = "127.0.0.2"  # a lab board: the rules' allow-network names it alone
OUTSIDER = "127.0.0.1"  # another client of the lab: in --allow-network, in no rule's
PRIVATE = ("private/fw-secret-one.bin", "private/deep/fw-secret-two.bin",
           "private/fw-secret-three.bin")
MIXED_SECRET = ("mixed/secret-plan.txt", "mixed/secret-dir/secret-keys.txt")
OPEN = ("public/Image", "public/rootfs.ext4", "mixed/open.txt", "README")
VAULT = ("vault-secret-index.txt", "vault-sub/vault-secret-key.pem")
# in every name a rule keeps from the outsider, in no other
SECRET_WORDS = (b"secret", b"vault", b"private/")


@pytest.fixture
def s3():
    server = S3(buckets=["lab", "vault"])
    yield server
    server.stop()


def ask(arca, path, source):
    """(status, headers, body) of one GET of `path` sent from the loopback address `source`."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30,
                                      source_address=(source, 0))
    return one_request(conn, "GET", path)


def lab_arca(start_arca, workdir, s3):
    """Buckets lab and vault, both signed for; rule boards (lab's private/), rule plans (lab's
    mixed/secret-, a prefix that is no folder) and rule locked (the whole of bucket vault) let
    only the board fetch."""
    creds = os.path.join(workdir, "s3.creds")
    with open(creds, "w") as f:
        f.write(f"{ACCESS}\n{SECRET}\n")
    ini = os.path.join(workdir, "arca.ini")
    with open(ini, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\n")
        for name in ("lab", "vault"):
            f.write(f"\n[bucket {name}]\nurl = {s3.url(name)}\ncredentials = {creds}\n")
        for name, match in (("boards", s3.url("lab") + "/private/"),
                            ("plans", s3.url("lab") + "/mixed/secret-"),
                            ("locked", s3.url("vault") + "/")):
            f.write(f"\n[rule {name}]\nmatch = {match}\nallow-network = {BOARD}/32\n")
    return start_arca("--config", ini)


def no_secret(body, what):
    for word in SECRET_WORDS:
        assert word not in body, f"{what}: {word!r} listed to the outsider: {body[:600]!r}"


def json_names(body, prefix):
    doc = json.loads(body)
    return sorted(e["Url"].split(prefix, 1)[1] for e in doc["files"] + doc["folders"])


def test_a_folder_lists_the_outsider_only_what_it_may_fetch(start_arca, workdir, s3):
    """The outsider's listings of the bucket's root, of mixed/ and of private/ (HTML and JSON)
    name no file a rule refuses it, nor a folder whose every URL one refuses it; private/ itself
    is refused, as its files are. The board's listings show everything; /browse/ lists bucket
    vault to the board alone."""
    for key in PRIVATE + MIXED_SECRET + OPEN:
        s3.put("lab", key, key.encode() * 10)
    for key in VAULT:
        s3.put("vault", key, key.encode())
    arca = lab_arca(start_arca, workdir, s3)
    base = f"http://{arca.host}:{arca.port}/browse/lab/"

    status, headers, body = ask(arca, "/browse/lab/", OUTSIDER)
    assert status == 200, (status, body[:300])
    no_secret(body, "the root's page")
    assert b"public/" in body and b"mixed/" in body and b"README" in body
    assert b"2 folders and 1 file on this page" in body  # counted as shown
    assert "private" in headers["cache-control"], headers  # not one answer for every client
    status, _, body = ask(arca, "/browse/lab/?export=json", OUTSIDER)
    assert status == 200 and json_names(body, base) == ["README", "mixed/", "public/"], body
    status, _, body = ask(arca, "/browse/lab/mixed/", OUTSIDER)
    assert status == 200 and b"open.txt" in body, (status, body[:300])
    no_secret(body, "mixed/'s page")
    status, _, body = ask(arca, "/browse/lab/mixed/?export=json", OUTSIDER)
    assert status == 200 and json_names(body, base) == ["mixed/open.txt"], body
    for path in ("/browse/lab/private/", "/browse/lab/private/?export=json",
                 "/browse/lab/private/deep/", "/browse/lab/mixed/secret-dir/?export=json"):
        status, _, body = ask(arca, path, OUTSIDER)
        assert status == 403 and b"rule " in body, (path, status, body[:300])
        no_secret(body, path)
    for path in ("/browse/vault", "/browse/vault/", "/browse/vault/vault-sub/?export=json"):
        status, _, body = ask(arca, path, OUTSIDER)  # a bucket it may not know of
        assert status == 404 and body == b"unknown bucket 'vault'\n", (path, status, body[:300])
    status, _, body = ask(arca, "/browse/", OUTSIDER)
    assert status == 200 and b"/browse/lab/" in body and b"/browse/vault/" not in body, body
    status, _, body = ask(arca, "/browse/?export=json", OUTSIDER)
    assert status == 200 and b"/browse/vault/" not in body, body

    assert ask(arca, "/browse/lab/private/fw-secret-one.bin", OUTSIDER)[0] == 403
    assert ask(arca, "/browse/lab/mixed/secret-plan.txt", OUTSIDER)[0] == 403
    status, _, body = ask(arca, "/browse/lab/mixed/open.txt", OUTSIDER)
    assert status == 200 and sha256(body) == sha256(b"mixed/open.txt" * 10)

    status, _, body = ask(arca, "/browse/lab/?export=json", BOARD)
    assert json_names(body, base) == ["README", "mixed/", "private/", "public/"], body
    status, _, body = ask(arca, "/browse/lab/mixed/?export=json", BOARD)
    assert json_names(body, base) == ["mixed/open.txt", "mixed/secret-dir/",
                                      "mixed/secret-plan.txt"], body
    status, _, body = ask(arca, "/browse/lab/private/", BOARD)
    assert status == 200 and b"fw-secret-one.bin" in body and b"deep/" in body
    assert b"1 folder and 2 files on this page" in body
    status, _, body = ask(arca, "/browse/lab/private/?export=json", BOARD)
    assert json_names(body, base) == ["private/deep/", "private/fw-secret-one.bin",
                                      "private/fw-secret-three.bin"], body
    status, _, body = ask(arca, "/browse/", BOARD)
    assert status == 200 and b"/browse/vault/" in body
    status, _, body = ask(arca, "/browse/vault/vault-sub/", BOARD)
    assert status == 200 and b"vault-secret-key.pem" in body
    status, _, body = ask(arca, "/browse/lab/private/fw-secret-one.bin", BOARD)
    assert status == 200 and sha256(body) == sha256(PRIVATE[0].encode() * 10)


def test_a_long_folder_hides_its_refused_files_on_every_page(start_arca, workdir, s3):
    """A folder past one S3 page: the outsider's JSON document, streamed page after page (the
    next page asked of S3 while the answer waits), and its HTML pages name none of the files
    rule plans keeps from it, on whichever page they come; the board's name all of them."""
    opened = [f"mixed/n{i:04d}.txt" for i in range(700)]
    secret = [f"mixed/secret-{i:04d}.txt" for i in range(600)]  # S3's second page: secrets
    s3.put_many("lab", [(k, b"x") for k in opened + secret])
    arca = lab_arca(start_arca, workdir, s3)
    base = f"http://{arca.host}:{arca.port}/browse/lab/"
    status, _, body = ask(arca, "/browse/lab/mixed/?export=json", OUTSIDER)
    assert status == 200 and json_names(body, base) == opened
    no_secret(body, "the long folder's JSON")
    status, _, body = ask(arca, "/browse/lab/mixed/?export=json", BOARD)
    assert status == 200 and json_names(body, base) == sorted(opened + secret)
    for page in (1, 2):
        status, _, body = ask(arca, f"/browse/lab/mixed/?page={page}", OUTSIDER)
        assert status == 200, (page, status)
        no_secret(body, f"page {page}")
        status, _, body = ask(arca, f"/browse/lab/mixed/?page={page}", BOARD)
        assert status == 200 and (b"secret-0599.txt" in body) is (page == 2), page
