"""Digests and consistency through remotes (issue 69, docs/REMOTES.md "What each kind keeps"):
an apt upstream that serves other bytes under a by-hash name, a client that asks a pypi file
with a wrong /+sha256/ to poison it for the others (before and while it downloads), and an apt
suite whose InRelease and indexes change together: a client that read the new InRelease must
never get the index it replaced. What a user sees: statuses, bodies (sha256), the origin's
request counts."""

import os
import threading

from conftest import sha256, wait_for

INDEX_V1 = b"Package: hello\nVersion: 1.0\n\n" * 40
INDEX_V2 = b"Package: hello\nVersion: 2.0\n\n" * 40
WHEEL = b"PK\x03\x04 a wheel's bytes " * 4000


def release(index):
    return b"Origin: lab\nSHA256:\n " + sha256(index).encode() + b" %d main/binary-amd64/Packages\n" \
        % len(index)


def whole(arca, target):
    """(status, body, complete) of a GET."""
    status, headers, body = arca.get(target)
    length = headers.get("content-length")
    return status, body, length is None or int(length) == len(body)


def test_an_apt_by_hash_name_never_answers_other_bytes(start_arca, origin):
    """The upstream serves other bytes under by-hash/SHA256/H (a broken mirror, a tampered
    file): through the remote path and the fetch API the client never gets them whole with a
    200, each asking upstream again (nothing kept); once upstream serves the right bytes, they
    answer."""
    good = INDEX_V1
    path = f"/apt/dists/bookworm/main/binary-amd64/by-hash/SHA256/{sha256(good)}"
    origin.add(path, data=INDEX_V2)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--remote",
                      f"deb:apt={origin.url('/apt')}")
    target = "/deb" + path[len("/apt"):]
    for _ in range(2):
        status, body, complete = whole(arca, target)
        assert not (status == 200 and complete and body == INDEX_V2), status
        status, _, body = arca.fetch(origin.url(path))
        assert not (status == 200 and body == INDEX_V2), status
    assert origin.counts[path] >= 2, origin.counts[path]
    origin.add(path, data=good)
    status, body, complete = whole(arca, target)
    assert (status, complete, sha256(body)) == (200, True, sha256(good))


def test_a_wrong_sha256_from_one_client_poisons_nothing_for_the_others(start_arca, origin):
    """A client asks a pypi file with a wrong /+sha256/ (and another with a wrong ?sha256=),
    first alone, then while a client with the right digest is downloading it slowly: the wrong
    ones never get the bytes whole, the right one and a client without a digest get the file,
    and the origin is asked for it no more than twice."""
    origin.add("/pypi/packages/w.whl", data=WHEEL, rate=200_000)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--remote",
                      f"py:pypi={origin.url('/pypi')}")
    right, wrong = sha256(WHEEL), "0" * 64
    status, body, complete = whole(arca, f"/py/+sha256/{wrong}/packages/w.whl")
    assert not (status == 200 and complete), status
    results = {}

    def get(key, target):
        results[key] = whole(arca, target)

    t_right = threading.Thread(target=get, args=("right", f"/py/+sha256/{right}/packages/w.whl"))
    t_right.start()
    wait_for(lambda: origin.counts["/pypi/packages/w.whl"] >= 1, "the download begun")
    threads = [threading.Thread(target=get, args=args) for args in (
        ("wrong", f"/py/+sha256/{wrong}/packages/w.whl"),
        ("query", f"/py/packages/w.whl?sha256={wrong}"),
        ("plain", "/py/packages/w.whl"))]
    for t in threads:
        t.start()
    for t in [t_right] + threads:
        t.join(60)
    for key in ("right", "plain"):
        status, body, complete = results[key]
        assert (status, complete, sha256(body)) == (200, True, right), (key, status, len(body))
    for key in ("wrong", "query"):
        status, body, complete = results[key]
        assert not (status == 200 and complete), (key, status)
    assert origin.counts["/pypi/packages/w.whl"] <= 2, origin.counts
    status, body, complete = whole(arca, "/py/packages/w.whl")
    assert (status, complete, sha256(body)) == (200, True, right)


def test_a_client_that_read_the_new_inrelease_never_gets_the_old_index(start_arca, origin,
                                                                       workdir):
    """An apt suite changes upstream (InRelease and Packages together). Through the remote,
    once a client reads the new InRelease, Packages is the new one too, though a rule gives
    the indexes an hour's life and InRelease lives a second."""
    suite = "/apt/dists/bookworm"
    origin.add(f"{suite}/InRelease", data=release(INDEX_V1), etag='"r1"')
    origin.add(f"{suite}/main/binary-amd64/Packages", data=INDEX_V1, etag='"p1"')
    config = os.path.join(workdir, "arca.ini")
    with open(config, "w") as f:
        f.write(f"[rule indexes]\nmatch = {origin.url(suite + '/main/')}\nttl = 1h\n")
    arca = start_arca("--config", config, "--upstream-allow", "127.0.0.0/8",
                      "--remote-meta-ttl", "1s", "--remote", f"deb:apt={origin.url('/apt')}")
    rel, pkg = "/deb/dists/bookworm/InRelease", "/deb/dists/bookworm/main/binary-amd64/Packages"
    assert arca.get(rel)[2] == release(INDEX_V1)
    assert arca.get(pkg)[2] == INDEX_V1
    origin.add(f"{suite}/InRelease", data=release(INDEX_V2), etag='"r2"')
    origin.add(f"{suite}/main/binary-amd64/Packages", data=INDEX_V2, etag='"p2"')
    wait_for(lambda: arca.get(rel)[2] == release(INDEX_V2), "the new InRelease", timeout=10,
             every=0.2)
    status, _, body = arca.get(pkg)
    assert (status, body) == (200, INDEX_V2), (status, body[:40])


def test_an_apt_suite_asked_through_an_outer_files_remote_stays_consistent(start_arca, origin,
                                                                           workdir):
    """A `files` remote at the origin's root and an `apt` one at its /apt: one URL, one kind,
    whichever remote's path a client asks it by. Through /all/apt/... the index (a rule keeps
    it an hour) is bounded by its InRelease as through /deb/...: a client that read the new
    InRelease gets the new Packages by the outer path too."""
    suite = "/apt/dists/bookworm"
    origin.add(f"{suite}/InRelease", data=release(INDEX_V1), etag='"r1"')
    origin.add(f"{suite}/main/binary-amd64/Packages", data=INDEX_V1, etag='"p1"')
    config = os.path.join(workdir, "arca.ini")
    with open(config, "w") as f:
        f.write(f"[rule indexes]\nmatch = {origin.url(suite + '/main/')}\nttl = 1h\n")
    arca = start_arca("--config", config, "--upstream-allow", "127.0.0.0/8",
                      "--remote-meta-ttl", "1s", "--remote", f"all={origin.url('')}",
                      "--remote", f"deb:apt={origin.url('/apt')}")
    rel = "/all/apt/dists/bookworm/InRelease"
    pkg = "/all/apt/dists/bookworm/main/binary-amd64/Packages"
    assert arca.get(rel)[2] == release(INDEX_V1)
    assert arca.get(pkg)[2] == INDEX_V1
    origin.add(f"{suite}/InRelease", data=release(INDEX_V2), etag='"r2"')
    origin.add(f"{suite}/main/binary-amd64/Packages", data=INDEX_V2, etag='"p2"')
    wait_for(lambda: arca.get(rel)[2] == release(INDEX_V2), "the new InRelease", timeout=10,
             every=0.2)
    status, _, body = arca.get(pkg)
    assert (status, body) == (200, INDEX_V2), (status, body[:40])
