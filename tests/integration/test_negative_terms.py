"""A kept 404 is a cached answer under the same terms as any other (issue 67): a rule's store = no
keeps none; a request's Cache-Control (no-cache, max-age=0, no-store) and Pragma: no-cache ask
upstream again; through a tier a site's negative ttl bounds what its parent's kept 404 may
answer it (0: none), and a site keeps a parent's kept 404 only as long as the parent does."""

import os
import time

from conftest import wait_for
from test_negative_ttl import negative
from tier import members


def ini(workdir, origin, *lines):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\nnegative-ttl = 1h\n\n"
                f"[rule nightly]\nmatch = {origin.url('/nightly/')}\n" +
                "".join(line + "\n" for line in lines))
    return path


def ttl_of(headers):
    """The ttl=N of arca's own Cache-Status member."""
    return int(members(headers)[-1].split("ttl=")[1].split(";")[0])


def test_a_rule_that_stores_nothing_keeps_no_404(origin, start_arca, workdir):
    arca = start_arca("--config", ini(workdir, origin, "store = no"))
    url = origin.url("/nightly/missing.img")
    for _ in range(3):
        status, headers, _ = arca.fetch(url)
        assert status == 404 and not negative(headers), headers
    assert origin.counts["/nightly/missing.img"] == 3
    # the same file published: the next request sees it
    origin.add("/nightly/missing.img", data=b"here")
    assert arca.fetch(url)[2] == b"here"


def test_a_requests_cache_control_asks_upstream_again(origin, start_arca, workdir):
    arca = start_arca("--config", ini(workdir, origin))
    url = origin.url("/nightly/later.img")
    assert arca.fetch(url)[0] == 404
    assert negative(arca.fetch(url)[1])
    asked = origin.counts["/nightly/later.img"]
    for header in ({"Cache-Control": "no-cache"}, {"Cache-Control": "max-age=0"},
                   {"Cache-Control": "no-store"}, {"Pragma": "no-cache"}):
        status, headers, _ = arca.fetch(url, headers=header)
        assert status == 404 and not negative(headers), (header, headers)
        asked += 1
        assert origin.counts["/nightly/later.img"] == asked, header
    # a max-age the kept answer is younger than takes it
    assert negative(arca.fetch(url)[1])
    status, headers, _ = arca.fetch(url, headers={"Cache-Control": "max-age=600"})
    assert status == 404 and negative(headers)
    assert origin.counts["/nightly/later.img"] == asked
    # once published, a no-cache request gets the file at once
    origin.add("/nightly/later.img", data=b"published")
    assert arca.fetch(url, headers={"Cache-Control": "no-cache"})[2] == b"published"


def test_a_site_that_keeps_no_404_gets_none_of_its_parents(origin, start_tier):
    parent, children = start_tier(1, parent_args=("--negative-ttl", "30s"))
    site = children[0]  # --negative-ttl 0: the default
    url = origin.url("/nightly/none.img")
    for _ in range(3):
        status, headers, _ = site.fetch(url)
        assert status == 404 and not negative(headers), headers
        assert "detail=negative" not in headers.get("Cache-Status", ""), headers
    assert origin.counts["/nightly/none.img"] == 3
    # the parent's own clients still get its kept answer
    assert negative(parent.fetch(url)[1])


def test_a_site_keeps_its_parents_404_no_longer_than_the_parent(origin, start_tier):
    parent, children = start_tier(2, "--negative-ttl", "6s", parent_args=("--negative-ttl", "6s"))
    url = origin.url("/nightly/soon.img")
    t0 = time.monotonic()
    assert children[0].fetch(url)[0] == 404
    wait_for(lambda: time.monotonic() > t0 + 3.2, "three seconds", timeout=10)
    # the other site gets the parent's kept answer (its Age says how old), keeps it as old
    status, headers, _ = parent.fetch(url)
    assert status == 404 and negative(headers) and int(headers["age"]) >= 2, headers
    assert children[1].fetch(url)[0] == 404
    status, headers, _ = children[1].fetch(url)
    assert status == 404 and negative(headers)
    assert ttl_of(headers) <= 4, headers  # what the parent had left, not 6 s more
    assert origin.counts["/nightly/soon.img"] == 1
    origin.add("/nightly/soon.img", data=b"published")
    wait_for(lambda: time.monotonic() > t0 + 6.5, "the parent's ttl to run out", timeout=10)
    assert children[1].fetch(url)[2] == b"published"
