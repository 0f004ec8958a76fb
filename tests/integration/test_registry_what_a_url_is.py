"""What a registry URL is, decided once (issue 66, docs/SECURITY.md "Registries upstream"): the
digest a blob's URL names is checked whichever source brought the bytes (a lying mirror, a lying
central arca: never kept, the registry's own bytes served); the lab's login goes only with the
pull API as the distribution grammar reads it (never `/v2/..%2Finternal/...`); a token's scope
is the repository as parsed (`team/blobs/x`); and what the store holds answers alike on every
route (/v2/, the fetch API, the proxy) once the login is refused. Each failed before its fix."""

import http.client
import os
import re
import signal
import time
from urllib.parse import urlsplit

import pytest

from conftest import Arca, read_to_end, sha256, wait_for
from rawparent import RawParent, http_answer
import registry as reg
from registry import Puller, build_image, digest_of, scripted, start_mirror, v2  # noqa: F401
from test_registry_auth import login_config
from tier import fallbacks, repr_digest

NAME = "registry.lab"


def proxied(arca, url):
    """A GET with `url` as its request line's target, as a client with http_proxy=arca sends
    it: (status, body)."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    try:
        conn.request("GET", url)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def an_image(up, workdir, repo="library/demo", sizes=(300_000,)):
    return up.add(repo, build_image(os.path.join(workdir, "i"), list(sizes), "v1"))


def test_a_lying_mirror_s_blob_is_never_kept(start_arca, scripted, workdir):
    """A --mirror of the registry answers a blob with other bytes: they are not the digest the
    URL names, so they go and the registry itself is asked; what is kept, and what every route
    serves after, is the registry's. Before: the mirror's bytes were kept ten days (the fetch
    API served them as a hit)."""
    up, liar = scripted(), scripted()
    image = an_image(up, workdir)
    liar.add("library/demo", image)
    layer = image.layers[0]
    liar.lie_blob(layer.digest)
    path = f"/v2/library/demo/blobs/{layer.digest}"
    arca = start_mirror(start_arca, {NAME: up.url},
                        "--mirror", f"^{re.escape(up.url)}/={liar.url}/")
    a = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
    if not (a.status == 200 and a.complete):  # cut once the lie was found: the next is whole
        a = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
    assert a.status == 200 and a.complete and digest_of(a.body) == layer.digest
    assert liar.gets(path) >= 1, "the mirror was never asked: the scenario proves nothing"
    assert up.gets(path) == 1
    status, _, body = arca.fetch(up.url + path)
    assert status == 200 and digest_of(body) == layer.digest
    assert up.gets(path) == 1  # kept: a hit on every route
    assert "not the digest their URL names" in arca.read_log()


def test_a_lying_central_s_blob_is_never_kept(start_arca, scripted, workdir):
    """A central arca (the site's --parent) answers a blob with other bytes and a Repr-Digest
    that matches them: its own digest vouches for them, the URL's does not. The site drops them,
    counts the central's fault and asks the registry; the next pull is right, from the store."""
    up = scripted()
    layer = an_image(up, workdir).layers[0]
    wrong = os.urandom(layer.size)
    central = RawParent(lambda target, headers, i: http_answer(200, [
        ("Content-Type", "application/octet-stream"), ("ETag", f'"{layer.digest}"'),
        ("Repr-Digest", repr_digest(wrong)), ("Cache-Status", "arca; hit; ttl=864000"),
        ("Docker-Content-Digest", layer.digest)], wrong))
    try:
        site = start_mirror(start_arca, {NAME: up.url}, "--parent", central.base, name="site")
        path = f"/v2/library/demo/blobs/{layer.digest}"
        a = v2(site, f"{NAME}/library/demo/blobs/{layer.digest}")
        if not (a.status == 200 and a.complete):
            a = v2(site, f"{NAME}/library/demo/blobs/{layer.digest}")
        assert a.status == 200 and a.complete and digest_of(a.body) == layer.digest
        assert central.asked, "the central was never asked: the scenario proves nothing"
        assert up.gets(path) == 1
        assert sum(fallbacks(site).values()) == 1, fallbacks(site)
        status, _, body = site.fetch(up.url + path)
        assert status == 200 and digest_of(body) == layer.digest
        assert up.gets(path) == 1
    finally:
        central.stop()


def test_the_login_never_goes_with_a_path_outside_the_pull_api(start_arca, scripted, workdir):
    """With the lab's login for a basic-auth registry, a client that may fetch asks the fetch
    API for other paths of that server under its /v2/: none of them carries the login (the
    registry answers them as any anonymous request). Before: `/v2/..%2Finternal/secret.txt`
    went with `Authorization: Basic` of the lab's account."""
    up = scripted(auth="basic", users={"lab-bot": "pw-Qx7vT2mK9sLr4Zb8"})
    image = an_image(up, workdir, sizes=(65536,))
    arca = start_mirror(start_arca, {}, config=login_config(workdir, up, "lab-bot",
                                                            "pw-Qx7vT2mK9sLr4Zb8"))
    got, _ = Puller(arca.base, prefix=NAME).pull("library/demo", "v1")  # the login is learnt
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    assert any(r.headers.get("authorization") for r in up.requests())
    outside = ["/v2/..%2Finternal/secret.txt", "/v2/_catalog", "/v2/library/demo/blobs/x",
               "/v2/library%2Fdemo/manifests/v1", "/v2/library/demo/manifests/v1?x=1"]
    for path in outside:
        status, _, _ = arca.fetch(up.url + path)
        assert status != 200, (path, status)
    asked = [r for r in up.requests() if r.path.startswith("/v2/") and
             not re.fullmatch(r"/v2/(library/demo/(manifests/[^/]+|blobs/sha256:[0-9a-f]{64}))?",
                              r.path)]
    assert asked, "no path outside the grammar reached the registry: the scenario proves nothing"
    for r in asked:
        assert "authorization" not in r.headers, (r.path, r.query)


def test_a_repository_named_with_blobs_in_it_is_pulled_from_a_token_registry(
        start_arca, scripted, workdir):
    """The token's scope is the repository as the grammar parses it: `team/blobs/x` (a
    component may be named `blobs`). Before: the scope was cut at the first `/blobs/`
    (`repository:team:pull`) and every request of that image was refused."""
    up = scripted(auth="token")
    image = an_image(up, workdir, repo="team/blobs/x", sizes=(65536, 70_000))
    arca = start_mirror(start_arca, {NAME: up.url})
    client = Puller(arca.base, prefix=NAME)
    got, _ = client.pull("team/blobs/x", "v1")
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    assert all(a.status == 200 for a in client.answers), [a.status for a in client.answers]
    scopes = {q for r in up.token_requests() for q in re.findall(r"scope=([^&]+)", r.query)}
    assert scopes == {"repository%3Ateam%2Fblobs%2Fx%3Apull"}, scopes


def test_a_refused_login_answers_alike_on_every_route(start_arca, scripted, workdir):
    """The lab's login is refused once the image is pulled (its password changed upstream, the
    token arca kept expired): a kept blob answers from the store on /v2/, the fetch API and the
    proxy alike (REGISTRY.md: what is kept by its digest answers whatever the realm does), and a
    blob arca never had is refused alike on the three, nothing served. Before: /v2/ refused the
    kept blob (401) while the fetch API and the proxy served it; then (the outside review) the
    tag's manifest asked by its digest answered on /v2/ alone (the others asked upstream: 401)."""
    up = scripted(auth="token", users={"lab-bot": "pw-Qx7vT2mK9sLr4Zb8"}, token_ttl=2)
    image = an_image(up, workdir, sizes=(65536,))
    other = an_image(up, os.path.join(workdir, "o"), repo="library/other", sizes=(70_000,))
    arca = start_mirror(start_arca, {}, config=login_config(workdir, up, "lab-bot",
                                                            "pw-Qx7vT2mK9sLr4Zb8"))
    got, _ = Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    up.users = {"lab-bot": "changed"}
    issued = up.issued()
    wait_for(lambda: all(up.tokens[t][1] < time.monotonic() for t in issued),
             "arca's tokens expired", 10)
    # a kept blob; the tag's manifest asked by its digest (the bytes the tag brought: /v2/ and
    # the others alike); a blob arca never had
    cases = ((f"library/demo/blobs/{image.layers[0].digest}", image.layers[0].data),
             (f"library/demo/manifests/{image.manifest.digest}", image.manifest.data),
             (f"library/other/blobs/{other.layers[0].digest}", None))
    for path, data in cases:
        url = f"{up.url}/v2/{path}"
        a = v2(arca, f"{NAME}/{path}", headers=reg.manifest_headers())
        status, _, body = arca.fetch(url)
        p_status, p_body = proxied(arca, url)
        print(path, a.status, status, p_status)
        if data is not None:
            for s, b in ((a.status, a.body), (status, body), (p_status, p_body)):
                assert s == 200 and sha256(b) == sha256(data), (path, s)
        else:
            assert 200 not in (a.status, status, p_status), (a.status, status, p_status)
            assert a.status == status == p_status, (a.status, status, p_status)


# a 60 MiB layer through a mirror, a restart and the registry: 51 s of a scenario pass's 60 on
# a slow day here, beside three others
@pytest.mark.long_scenario
def test_a_restart_resuming_a_lying_mirror_s_bytes_asks_the_registry_whole(workdir, scripted):
    """A --mirror lies about a large blob (its first byte flipped, its bytes slow); arca is
    killed mid-download, and starts again without the mirror: the resume asks the registry for
    the rest (`Range`), and the whole is not the digest the URL names, the kept prefix being
    the mirror's. The outside review: the download then failed ("the origin's bytes are not the
    digest", blaming the registry) and a second download was needed. Now the same download asks
    the registry for the whole at once: a client streaming the resumed bytes is cut (they went
    out before the check could run), never served them whole, and the next pull is right,
    from that download."""
    up, liar = scripted(), scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [60 << 20], "v1"))
    liar.add("library/demo", image)
    layer = image.layers[0]
    liar.lie_blob(layer.digest)
    liar.rate = 20 << 20
    data_dir = os.path.join(workdir, "data")
    url = f"{up.url}/v2/library/demo/blobs/{layer.digest}"
    args = ["--upstream-allow", "127.0.0.0/8", "--fill-connections", "1",
            "--registry", f"{NAME}={up.url}"]
    first = Arca(workdir, args + ["--mirror", f"^{re.escape(up.url)}/={liar.url}/"],
                 data_dir).start()
    try:
        conn, resp = first.stream(url)
        got, deadline = 0, time.monotonic() + 30
        while got < 40 << 20:  # a few of its chunks synced: what a restart resumes from
            assert time.monotonic() < deadline
            got += len(resp.read(1 << 20))
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        conn.close()
    finally:
        first.stop()
    second = Arca(workdir, args, data_dir).start()
    try:
        conn, resp = second.stream(url)
        cut = read_to_end(resp)
        conn.close()
        log = second.read_log()
        assert "resuming after the restart" in log, "nothing resumed: the scenario proves nothing"
        assert not (resp.status == 200 and cut[1] and digest_of(cut[0]) != layer.digest)
        assert "not the digest their URL names; starting over" in log, log[-2000:]
        status, _, body = second.fetch(url)
        assert status == 200 and digest_of(body) == layer.digest
        ranges = [r.headers.get("range") for r in up.requests(method="GET",
                                                               path=urlsplit(url).path)]
        assert len(ranges) == 2 and ranges[0] and ranges[1] in (None, "bytes=0-"), ranges
        assert second.fetch(url)[2] == body  # kept: no third ask
        assert len(up.requests(method="GET", path=urlsplit(url).path)) == 2
    finally:
        second.stop()
