"""The admin API reads its queries as strictly as the fetch API (issue 67): a URL given
unencoded is the last parameter and runs to the query's end, `&` and all, but for trailing
parameters of the endpoint's own; percent-encoded, it ends at the next `&`. A parameter the
endpoint does not take, or one given twice, is refused with 400 and one line: a target cut at
its first `&` must not purge another object than the one named."""

import json
import urllib.parse

from test_admin import TOKEN, admin_arca

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def cached(arca, origin, *queries):
    """Each URL of /f with these queries, fetched: an object each."""
    origin.add("/f", data=b"f" * 1000)
    urls = [origin.url(f"/f?{q}") for q in queries]
    for url in urls:
        assert arca.fetch(url)[0] == 200
    return urls


def hit(arca, origin, url):
    """Whether `url` is still cached: fetched again, the origin is not asked."""
    before = origin.counts["/f"]
    assert arca.fetch(url)[0] == 200
    return origin.counts["/f"] == before


def test_an_unencoded_url_is_purged_whole_not_cut_at_its_first_ampersand(origin, start_arca,
                                                                        workdir):
    arca = admin_arca(start_arca, workdir)
    short, whole = cached(arca, origin, "x=1", "x=1&y=2")
    status, _, body = arca.get(f"/api/v1/resources/?url={whole}", AUTH, "DELETE")
    assert status == 200 and json.loads(body)["url"] == whole, body
    assert arca.status()["resources_successes"] == 1
    assert hit(arca, origin, short) and not hit(arca, origin, whole)
    # its outcome is read the same way
    status, _, body = arca.get(f"/api/v1/resources/?url={whole}", AUTH)
    assert status == 200 and json.loads(body)["url"] == whole, body
    assert json.loads(body)["state"] == "complete"


def test_an_unencoded_prefix_runs_to_the_end_but_for_a_trailing_all(origin, start_arca,
                                                                   workdir):
    arca = admin_arca(start_arca, workdir)
    whole, ten = cached(arca, origin, "x=1&y=2", "x=10")
    status, _, body = arca.get(f"/api/v1/purge/?prefix={whole}&all=0", AUTH, "POST")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["prefix"] == whole and answer["purged"] == 1, answer
    assert hit(arca, origin, ten) and not hit(arca, origin, whole)


def test_unknown_or_repeated_parameters_are_refused_with_one_line(origin, start_arca, workdir):
    arca = admin_arca(start_arca, workdir)
    url, = cached(arca, origin, "x=1")
    enc = urllib.parse.quote(url, safe="")
    cases = [
        ("DELETE", f"/api/v1/resources/?url={enc}&force=1", "unknown parameter"),
        ("DELETE", f"/api/v1/resources/?url={enc}&url={enc}", "url given twice"),
        ("DELETE", f"/api/v1/resources/?force=1&url={url}", "unknown parameter"),
        ("GET", f"/api/v1/resources/?url={enc}&state=failures", "unknown parameter"),
        ("GET", f"/api/v1/resources/?url={enc}&url={enc}", "url given twice"),
        ("POST", f"/api/v1/purge/?prefix={enc}&prefix={enc}", "prefix given twice"),
        ("POST", f"/api/v1/purge/?prefix={enc}&al=1", "unknown parameter"),
        ("POST", f"/api/v1/purge/?prefix={enc}&all=0&all=1", "all given twice"),
        ("POST", f"/api/v1/purge/?all=0&prefix={url}&all=1", "all given twice"),
        ("GET", f"/api/v1/rules/?url={enc}&clients=127.0.0.1", "unknown parameter"),
        ("GET", f"/api/v1/rules/?client=127.0.0.1&url={enc}&client=127.0.0.2",
         "client given twice"),
    ]
    for method, path, reason in cases:
        status, _, body = arca.get(path, AUTH, method)
        assert status == 400 and body.count(b"\n") == 1 and reason.encode() in body, \
            (method, path, status, body)
    assert arca.status()["resources_successes"] == 1 and hit(arca, origin, url)
    # the same spellings, right, are taken
    status, _, body = arca.get(f"/api/v1/rules/?client=127.0.0.1&url={url}", AUTH)
    assert status == 200 and json.loads(body)["url"] == url, body
    assert arca.get(f"/api/v1/resources/?url={enc}", AUTH)[0] == 200
    status, _, body = arca.get(f"/api/v1/purge/?all=0&prefix={enc}", AUTH, "POST")
    assert status == 200 and json.loads(body)["purged"] == 1, body
