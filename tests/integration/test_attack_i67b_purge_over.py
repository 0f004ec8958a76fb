"""Attack on issue 67 (B): a purge by prefix, or a DELETE of one URL, must take what the admin
named and no more. It takes more: a prefix whose last segment has parameters (";v=2") is folded to the segment without them,
  then matched as a plain string prefix: "/pkg;v=2" purges "/pkgs/..." and "/pkg-old/...",
  which no spelling of "/pkg;v=2" names (the fold of a prefix may not shorten its last
  segment: url_purge_prefix, src/url/prefix.c)."""

import json
import urllib.parse

from test_admin import TOKEN, admin_arca

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fill(arca, origin, paths):
    for path in paths:
        origin.add(path, data=path.encode() * 100)
        assert arca.fetch(origin.url(path))[0] == 200, path


def still_hit(arca, origin, path):
    before = origin.counts[path]
    assert arca.fetch(origin.url(path))[0] == 200
    return origin.counts[path] == before


def test_a_prefix_with_segment_parameters_takes_no_other_path(origin, start_arca, workdir):
    arca = admin_arca(start_arca, workdir)
    named, others = "/pkg;v=2/a", ["/pkgs/a", "/pkg-old/a"]
    fill(arca, origin, [named, *others])
    query = urllib.parse.urlencode({"prefix": origin.url("/pkg;v=2")})
    status, _, body = arca.get(f"/api/v1/purge/?{query}", AUTH, "POST")
    assert status == 200, body
    assert not still_hit(arca, origin, named)
    gone = [p for p in others if not still_hit(arca, origin, p)]
    assert gone == [], (json.loads(body), gone)

