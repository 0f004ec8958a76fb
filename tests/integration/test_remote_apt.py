"""apt through a remote (issue 69, `[remote NAME]` of kind apt): a lab's machines name
`http://cache/debian` in their sources and arca answers what the HTTPS repository answers, one
upstream download for every machine. Real clients: apt-get with its own state against a
repository made with apt-ftparchive and signed with a throwaway key, served by nginx over HTTPS
(aptrepo.py). The origin's access log says what arca asked; apt-get says whether what it got
was the repository's (it checks every InRelease signature, index sum and package sum).

The harness_ scenarios run apt-get against nginx directly: they pass without arca, and show
that a broken answer (a stale index, a forged InRelease, a changed .deb) does fail apt-get, so
that the remote scenarios can fail."""

import math
import os
import re
import subprocess
import time
import urllib.request

import pytest

from aptrepo import (PACKAGES, apt_client, apt_origin, mismatch,  # noqa: F401 (fixtures)
                     remote_counters, start_apt_remote, write_remote_ini)
from conftest import ARCA_BIN, ROOT, free_port, sha256, wait_clock, wait_for, without_ttl

SUITE = "stable"
CHANGED = "arca-mid"  # the package a republish gives a new version


def repo_url(nginx, repo):
    """The repository's URL at the origin: what a `[remote debian]` section's url names."""
    return nginx.url(f"/{repo.base}")


def shas(repo, *names):
    return {n: repo.debs[n].sha256 for n in (names or repo.debs)}


def fetched(nginx, path, since=0):
    """GETs of `path` that the origin answered with its bytes (200)."""
    return nginx.gets(path, 200, since)


def remote(start_arca, workdir, tls_files, nginx, repo, *more, **kw):
    return start_apt_remote(start_arca, workdir, tls_files["ca"], repo_url(nginx, repo), *more,
                            **kw)


def client_of(apt_client, name, url, repo, deb822=False):
    c = apt_client(name)
    (c.sources_deb822 if deb822 else c.sources_line)(url, SUITE, repo.keyring)
    return c


# --- the harness, without arca ---------------------------------------------------------------


@pytest.mark.parametrize("by_hash", [True, False], ids=["by-hash", "no-by-hash"])
def test_harness_apt_get_takes_the_repository_from_the_https_origin(apt_origin, apt_client,
                                                                     by_hash):
    """A sources.list line and a deb822 .sources file, each with signed-by: apt-get update
    verifies the InRelease, takes the index by its sum (by-hash) or by its name, and
    apt-get download writes every .deb the repository built."""
    repo, ng = apt_origin(by_hash=by_hash)
    for name, deb822 in (("line", False), ("deb822", True)):
        c = client_of(apt_client, name, repo_url(ng, repo), repo, deb822)
        c.update()
        assert c.inrelease() == repo.read(f"dists/{SUITE}/InRelease")
        assert c.download(*PACKAGES) == shas(repo)
    index = repo.index_path(f"by-hash/SHA256/{repo.index_sha256()}" if by_hash
                            else "Packages.xz")
    assert ng.wait_gets(index, 2, 200) == 2, [r.uri for r in ng.requests()]
    for deb in repo.debs.values():
        assert ng.wait_gets(repo.path(deb.filename), 2, 200) == 2
    assert max(d.size for d in repo.debs.values()) > 1_000_000


def test_harness_apt_get_fails_on_what_a_broken_cache_could_answer(apt_origin, apt_client):
    """What a remote must never answer makes apt-get fail, so that the remote scenarios can
    fail: an index older than the InRelease (Hash Sum mismatch or a size mismatch), an
    InRelease changed after it was signed (BADSIG), one signed by another key (NO_PUBKEY), a
    keyring in signed-by that is not the repository's, a .deb not the one the index lists."""
    repo, ng = apt_origin(by_hash=False)
    url = repo_url(ng, repo)
    indexes = ("Packages", "Packages.gz", "Packages.xz")
    old = {n: repo.read(f"dists/{SUITE}/main/binary-amd64/{n}") for n in indexes}
    repo.republish()
    for name, data in old.items():
        with open(os.path.join(repo.binary, name), "wb") as f:
            f.write(data)
    p = client_of(apt_client, "stale", url, repo).update(check=False)
    assert p.returncode != 0 and mismatch(p.out), p.out

    repo.publish()
    inrelease = os.path.join(repo.dists, "InRelease")
    with open(inrelease) as f:
        text = f.read()
    with open(inrelease, "w") as f:
        f.write(text.replace("Label: arca-test", "Label: arca-evil"))
    os.unlink(os.path.join(repo.dists, "Release.gpg"))
    p = client_of(apt_client, "forged", url, repo).update(check=False)
    assert p.returncode != 0 and "BADSIG" in p.out, p.out

    repo.publish()
    home, stranger_keyring = repo.other_key()
    repo.sign(home=home)
    p = client_of(apt_client, "stranger", url, repo).update(check=False)
    assert p.returncode != 0 and "NO_PUBKEY" in p.out, p.out

    repo.publish()
    c = apt_client("wrong-keyring")
    c.sources_deb822(url, SUITE, stranger_keyring)
    p = c.update(check=False)
    assert p.returncode != 0 and "NO_PUBKEY" in p.out, p.out

    c = client_of(apt_client, "deb", url, repo)
    c.update()
    deb = repo.debs["arca-wide"]
    with open(deb.path, "r+b") as f:
        f.seek(deb.size // 2)
        byte = f.read(1)
        f.seek(deb.size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    p = c.download("arca-wide", check=False)
    assert p.returncode != 0 and "Hash Sum mismatch" in p.out, p.out


def test_harness_republish_keeps_the_previous_by_hash_indexes_and_debs(apt_origin, apt_client):
    """republish(): a new version of a package and a new package listed by a new Release, the
    previous by-hash index and .deb still served (a client on the previous InRelease gets
    them); without by-hash, a Release without Acquire-By-Hash and apt-get asks the index by
    its name."""
    repo, ng = apt_origin()
    c = client_of(apt_client, "a", repo_url(ng, repo), repo)
    c.update()
    before, old_sum = repo.debs[CHANGED], repo.index_sha256()
    assert c.download(CHANGED) == {CHANGED: before.sha256}
    changed = repo.republish(change=[CHANGED], add=[("arca-new", 2_000)])
    assert [d.name for d in changed] == [CHANGED, "arca-new"] and changed[0].version == "1.1"
    assert repo.index_sha256() != old_sum
    listed = re.findall(r"^ [0-9a-f]{64} +\d+ (\S+)$", repo.read(f"dists/{SUITE}/Release").decode(),
                        re.M)
    assert listed == [f"main/binary-amd64/{n}" for n in ("Packages", "Packages.gz", "Packages.xz")]
    ctx = ng.context()
    for path in (repo.index_path(f"by-hash/SHA256/{old_sum}"), repo.path(before.filename)):
        with urllib.request.urlopen(ng.url(path), context=ctx) as r:
            assert r.status == 200
    c.update()
    assert c.download(CHANGED, "arca-new") == shas(repo, CHANGED, "arca-new")
    assert ng.wait_gets(repo.index_path(f"by-hash/SHA256/{repo.index_sha256()}"), 1, 200)

    repo.republish(change=[CHANGED], by_hash=False)
    assert b"Acquire-By-Hash" not in repo.read(f"dists/{SUITE}/Release")
    mark = ng.mark()
    c.update()
    assert c.download(CHANGED) == shas(repo, CHANGED)
    assert ng.wait_gets(repo.index_path("Packages.xz"), 1, 200, since=mark)


def test_harness_nginx_answers_a_conditional_request_304_and_logs_its_validators(apt_origin,
                                                                                  apt_client):
    """A second apt-get update asks the InRelease with If-Modified-Since and nginx answers 304;
    an If-None-Match with the ETag nginx sent is answered 304 too; the log says which."""
    repo, ng = apt_origin()
    c = client_of(apt_client, "a", repo_url(ng, repo), repo)
    c.update()
    mark = ng.mark()
    c.update()
    path = repo.path(f"dists/{SUITE}/InRelease")
    wait_for(lambda: ng.requests(mark), "the second update's request in nginx's log")
    seen = ng.requests(mark)
    assert [(r.uri, r.status, bool(r.if_modified_since)) for r in seen] == [(path, 304, True)]
    with urllib.request.urlopen(ng.url(path), context=ng.context()) as r:
        etag = r.headers["ETag"]
    req = urllib.request.Request(ng.url(path), headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=ng.context())
    assert e.value.code == 304
    wait_for(lambda: ng.requests(mark)[-1].if_none_match == etag, "the If-None-Match logged")


# --- through arca ----------------------------------------------------------------------------


def test_cold_then_warm_each_package_comes_from_the_origin_once(apt_origin, apt_client,
                                                                start_arca, workdir, tls_files):
    """Two machines update and download the same five packages through `[remote debian]`:
    each gets the repository's bytes, the origin sent each .deb, the index and the InRelease
    once (any later InRelease request a conditional one answered 304), and the second
    machine's downloads were hits."""
    repo, ng = apt_origin()
    arca = remote(start_arca, workdir, tls_files, ng, repo)
    a = client_of(apt_client, "a", arca.remote, repo)
    a.update()
    assert a.download(*PACKAGES) == shas(repo)
    for deb in repo.debs.values():
        ng.wait_gets(repo.path(deb.filename), 1, 200)

    b = client_of(apt_client, "b", arca.remote, repo)
    b.update()
    before = remote_counters(arca)
    assert b.download(*PACKAGES) == shas(repo)
    after = remote_counters(arca)
    assert (after["requests"] - before["requests"], after["hits"] - before["hits"]) == \
        (len(PACKAGES), len(PACKAGES)), (before, after)

    for deb in repo.debs.values():
        assert fetched(ng, repo.path(deb.filename)) == 1, deb.filename
    assert fetched(ng, repo.index_path(f"by-hash/SHA256/{repo.index_sha256()}")) == 1
    inrelease = [r for r in ng.requests() if r.uri == repo.path(f"dists/{SUITE}/InRelease")]
    assert inrelease[0].status == 200 and all(r.conditional and r.status == 304
                                              for r in inrelease[1:]), inrelease
    assert all(r.uri.startswith(f"/{repo.base}/") for r in ng.requests()), ng.requests()

    big = max(repo.debs.values(), key=lambda d: d.size)
    status, headers, body = arca.get(f"/debian/{big.filename}")
    assert (status, sha256(body)) == (200, big.sha256)
    assert without_ttl(headers.get("cache-status")).startswith("arca; hit"), headers


# each leaves /debian once decoded (`..` a segment of its own, %2e%2e, an encoded slash)
OUT_OF_BASE = ["/debian/../x", "/debian/..", "/debian/%2e%2e/x", "/debian/%2E%2E/x",
               "/debian/.%2e/x", "/debian/dists/..%2F..%2Fetc", "/debian/dists/..%2f..%2f..%2fx",
               "/debian/dists/stable/../../../x", "/debian/pool/%2e%2e/%2e%2e/%2e%2e/x"]


def test_a_path_that_leaves_the_remote_base_is_refused_400_and_never_asked(
        apt_origin, start_arca, workdir, tls_files):
    """`..` after decoding, however spelled, is refused 400 and never reaches the origin
    (whose root has an `x` and an `etc` beside the repository, that a request which left the
    base would get)."""
    repo, ng = apt_origin()
    for trap in ("x", "etc", "mirror/x", "mirror/etc"):
        with open(os.path.join(repo.root, trap), "w") as f:
            f.write("outside the remote's base\n")
    arca = remote(start_arca, workdir, tls_files, ng, repo)
    status, _, body = arca.get(f"/debian/dists/{SUITE}/InRelease")
    assert (status, body) == (200, repo.read(f"dists/{SUITE}/InRelease"))
    mark = ng.mark()
    for target in OUT_OF_BASE:
        status, _, body = arca.get(target)
        assert status == 400, (target, status, body[:200])
    deb = repo.debs["arca-tiny"]  # a request after them that does reach the origin
    status, _, body = arca.get(f"/debian/{deb.filename}")
    assert (status, sha256(body)) == (200, deb.sha256)
    ng.wait_gets(repo.path(deb.filename), 1, since=mark)
    assert [r.uri for r in ng.requests(mark)] == [repo.path(deb.filename)]


@pytest.mark.parametrize("by_hash", [True, False], ids=["by-hash", "no-by-hash"])
def test_an_update_right_after_a_republish_never_meets_a_hash_sum_mismatch(
        apt_origin, apt_client, start_arca, workdir, tls_files, by_hash):
    """The repository is republished (a package's new version) right after a machine's update.
    Within the meta ttl, a new machine's update and download agree with each other, whichever
    InRelease arca gave it. Then the case the issue names: arca's InRelease past its ttl (it
    was kept first, by a client that asked only the InRelease), its index still within its own
    (kept 3 s later, by the first machine's update): the InRelease comes back new, and the
    index, older than the InRelease it is listed by, must be fetched again, not answered: no
    "Hash Sum mismatch", the new version downloaded. With by-hash the new index has a new
    name; without, the same name. The ttl leaves the two machines' updates and downloads 15 s
    (a loaded machine's apt took more than 3; a slow one's, beside a whole test run, 14)."""
    ttl, apart = 18, 3
    repo, ng = apt_origin(by_hash=by_hash)
    arca = remote(start_arca, workdir, tls_files, ng, repo, meta_ttl=f"{ttl}s")
    status, _, body = arca.get(f"/debian/dists/{SUITE}/InRelease")
    assert (status, body) == (200, repo.read(f"dists/{SUITE}/InRelease"))
    # arca's copy is past its ttl from this + ttl on at the latest (a clock of whole seconds
    # or finer)
    inrelease_kept = time.time()
    wait_clock(inrelease_kept + apart)
    # arca's copy of the index, kept during the update below, is within its ttl until this +
    # ttl at least
    index_kept = math.floor(time.time())
    a = client_of(apt_client, "a", arca.remote, repo)
    a.update()
    v1, old_inrelease = repo.debs[CHANGED], repo.read(f"dists/{SUITE}/InRelease")
    assert a.download(CHANGED) == {CHANGED: v1.sha256}

    (v2,) = repo.republish(change=[CHANGED])
    new_inrelease = repo.read(f"dists/{SUITE}/InRelease")
    b = client_of(apt_client, "b", arca.remote, repo)
    b.update()
    seen = b.inrelease()
    assert seen in (old_inrelease, new_inrelease)
    assert b.download(CHANGED) == {CHANGED: (v1 if seen == old_inrelease else v2).sha256}

    wait_clock(inrelease_kept + ttl)
    began = time.time()
    p = a.update()
    assert not mismatch(p.out), p.out
    assert a.inrelease() == new_inrelease
    assert a.download(CHANGED) == {CHANGED: v2.sha256}
    assert began < index_kept + ttl - 1, \
        "the update began when arca's index was past its ttl too: the case was not tried"


def test_a_warm_update_costs_the_origin_only_conditional_requests(apt_origin, apt_client,
                                                                  start_arca, workdir,
                                                                  tls_files):
    """Once the metadata is past --remote-meta-ttl, an update (a new machine's, whose apt-get
    asks every index, then the first one's again) costs the origin conditional requests only,
    each answered 304: the InRelease and the index (no by-hash: the index is metadata under its
    name), and nothing of the pool for the packages downloaded again."""
    repo, ng = apt_origin(by_hash=False)
    arca = remote(start_arca, workdir, tls_files, ng, repo, meta_ttl="1s")
    a = client_of(apt_client, "a", arca.remote, repo)
    a.update()
    assert a.download("arca-tiny", "arca-big") == shas(repo, "arca-tiny", "arca-big")
    kept = time.time()
    for deb in (repo.debs["arca-tiny"], repo.debs["arca-big"]):
        ng.wait_gets(repo.path(deb.filename), 1, 200)
    wait_clock(kept + 1)  # every metadata copy of arca's past its ttl (whole seconds or finer)
    mark = ng.mark()
    b = client_of(apt_client, "b", arca.remote, repo)
    b.update()
    assert b.download("arca-tiny", "arca-big") == shas(repo, "arca-tiny", "arca-big")
    a.update()
    inrelease, index = repo.path(f"dists/{SUITE}/InRelease"), repo.index_path("Packages.xz")
    wait_for(lambda: {inrelease, index} <= {r.uri for r in ng.requests(mark)},
             "the InRelease and the index revalidated")
    seen = ng.requests(mark)
    assert all(r.conditional and r.status == 304 for r in seen), seen
    assert not [r for r in seen if "/pool/" in r.uri], seen


def test_an_update_within_the_meta_ttl_asks_the_origin_nothing(apt_origin, apt_client,
                                                              start_arca, workdir, tls_files):
    """apt sends `Cache-Control: max-age=0` with every index it asks, meant for a proxy that
    knows nothing of repositories: on a remote's path the kind decides, so a second machine's
    update within --remote-meta-ttl is answered from the store: the InRelease is not asked
    again, and the index at most once more with a conditional request (when it was made in
    the same second as its InRelease, which arca cannot tell apart from just before it)."""
    repo, ng = apt_origin(by_hash=False)
    arca = remote(start_arca, workdir, tls_files, ng, repo, meta_ttl="1h")
    a = client_of(apt_client, "a", arca.remote, repo)
    a.update()
    inrelease = repo.path(f"dists/{SUITE}/InRelease")
    ng.wait_gets(inrelease, 1, 200)
    mark = ng.mark()
    b = client_of(apt_client, "b", arca.remote, repo)
    b.update()
    assert b.inrelease() == repo.read(f"dists/{SUITE}/InRelease")
    seen = ng.requests(mark)
    assert all(r.conditional and r.status == 304 and r.uri != inrelease for r in seen), seen
    assert len(seen) <= 1, seen
    assert remote_counters(arca)["hits"] >= 1  # its InRelease


def test_a_deb822_sources_file_with_signed_by_works_through_arca(apt_origin, apt_client,
                                                                 start_arca, workdir,
                                                                 tls_files):
    """A deb822 .sources entry (URIs: the remote's URL on arca, Signed-By: the repository's
    keyring), the remote given as `--remote debian:apt=URL`: update and download through arca,
    each .deb the repository's, the index asked by its sum."""
    repo, ng = apt_origin()
    arca = remote(start_arca, workdir, tls_files, ng, repo, form="option")
    c = client_of(apt_client, "a", arca.remote, repo, deb822=True)
    c.update()
    assert c.inrelease() == repo.read(f"dists/{SUITE}/InRelease")
    assert c.download(*PACKAGES) == shas(repo)
    assert fetched(ng, repo.index_path(f"by-hash/SHA256/{repo.index_sha256()}")) == 1
    assert remote_counters(arca)["requests"] >= 2 + len(PACKAGES)


# --- names ------------------------------------------------------------------------------------


UPSTREAM = "https://127.0.0.1:9/debian"


def own_segments():
    """arca's own first path segments, read from its routes (so that a route added later is
    refused as a remote's name too)."""
    with open(os.path.join(ROOT, "src", "web", "routes.c")) as f:
        found = set(re.findall(r'\{"/([A-Za-z0-9_.-]+)', f.read()))
    assert {"api", "v2", "browse", "static", "metrics", "help", "statistics",
            "resources"} <= found, found
    return sorted(found)


def arca_run(*args, timeout=10):
    """arca ARGS: the CompletedProcess; one that runs past `timeout` (serve started) fails."""
    try:
        return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"arca {' '.join(args)} was still running after {timeout} s: it started")


def refused(workdir, args, control, *says):
    """`control` (the same form with an accepted name) passes check-config; `args` are refused
    by check-config and by serve, each with the same one line saying one of `says` (a word)."""
    data = os.path.join(workdir, "data")
    common = ["--listen", f"127.0.0.1:{free_port()}", "--data-dir", data]
    ok = arca_run("check-config", *common, *control)
    assert ok.returncode == 0, f"the accepted form was refused: {ok.stderr}"
    check = arca_run("check-config", *common, *args)
    assert check.returncode != 0 and check.stderr.count("\n") == 1, check.stderr
    assert any(re.search(rf"(?<![A-Za-z0-9_-]){re.escape(word)}(?![A-Za-z0-9_-])", check.stderr)
               for word in says), check.stderr
    serve = arca_run("serve", *common, *args)
    assert serve.returncode != 0 and serve.stderr == check.stderr, serve.stderr
    return check.stderr


@pytest.mark.parametrize("name", ["api", "v2", "static"])
def test_a_remote_named_like_arcas_own_paths_is_refused_at_start(workdir, name):
    """`[remote api]` in a config file, `--remote v2=URL`, `--remote static:apt=URL`: refused
    by check-config and at start with one line naming the name (the file and its line for the
    INI), the same name `debian` accepted."""
    ini = write_remote_ini(os.path.join(workdir, f"{name}.ini"), name, UPSTREAM)
    control = write_remote_ini(os.path.join(workdir, "debian.ini"), "debian", UPSTREAM)
    line = refused(workdir, ["--config", ini], ["--config", control], name)
    assert re.search(rf"{re.escape(ini)}:\d+:", line), line
    refused(workdir, ["--remote", f"{name}={UPSTREAM}"], ["--remote", f"debian={UPSTREAM}"],
            name)
    refused(workdir, ["--remote", f"{name}:apt={UPSTREAM}"],
            ["--remote", f"debian:apt={UPSTREAM}"], name)


def test_every_first_segment_of_arcas_own_is_refused_as_a_remote_name(workdir):
    """Every route's first segment (read from src/web/routes.c) is refused by check-config."""
    for segment in own_segments():
        refused(workdir, ["--remote", f"{segment}={UPSTREAM}"],
                ["--remote", f"debian={UPSTREAM}"], segment)


def test_a_remote_given_twice_or_with_a_bad_url_is_refused_at_start(workdir):
    """The same name given twice, a URL that is not an http(s) URL: refused as an own name is,
    the line naming the remote or its URL."""
    refused(workdir, ["--remote", f"debian={UPSTREAM}", "--remote", f"debian:apt={UPSTREAM}2"],
            ["--remote", f"debian={UPSTREAM}", "--remote", f"ubuntu:apt={UPSTREAM}2"],
            "debian")
    refused(workdir, ["--remote", "debian=not-a-url"], ["--remote", f"debian={UPSTREAM}"],
            "debian", "not-a-url")
