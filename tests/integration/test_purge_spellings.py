"""Purge by prefix (issue 67): every spelling of a path that the rules fold together goes with
the one the admin names: `/file//P/`, `//file/P/`, `/file/P;v=1/`, host 127.1 or
[::ffff:127.0.0.1] for 127.0.0.1. An origin serves them as one file, so a purge that left one
behind would leave a withdrawn file served. A prefix that ends in a cut escape ("%", "%4")
matches nothing: it is refused rather than purging nothing silently."""

import json
import subprocess

import pytest

from conftest import ARCA_BIN
from test_admin import TOKEN, token_file
from test_purge_prefix import purge_prefix


def arca_with_token(start_arca, workdir):
    return start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))


def spellings(origin):
    """Six URLs of files under /file/P/, each spelt another way, and the path the origin files
    each under (Python's server reads a leading "//" as "/")."""
    port = origin.port
    return {f"http://127.0.0.1:{port}/file/P/a": "/file/P/a",
            f"http://127.0.0.1:{port}/file//P/b": "/file//P/b",
            f"http://127.0.0.1:{port}//file/P/c": "/file/P/c",
            f"http://127.0.0.1:{port}/file/P;v=1/d": "/file/P;v=1/d",
            f"http://127.1:{port}/file/P/e": "/file/P/e",
            f"http://[::ffff:127.0.0.1]:{port}/file/P/f": "/file/P/f"}


def fill(arca, origin, urls):
    for url, path in urls.items():
        origin.add(path, data=url.encode() * 50)
        status, _, body = arca.fetch(url)
        assert status == 200 and body == url.encode() * 50, (url, status, body)
        assert origin.counts[path] == 1, url


@pytest.mark.parametrize("spelling", ["http://127.0.0.1:{port}/file/P/",
                                      "http://[::ffff:127.0.0.1]:{port}//file/P;v=1/",
                                      "http://127.1:{port}/file%2F%2FP/"])
def test_a_prefix_purge_takes_every_spelling_of_its_path(workdir, origin, start_arca, spelling):
    arca = arca_with_token(start_arca, workdir)
    urls = spellings(origin)
    beside = {f"http://127.0.0.1:{origin.port}/file/Q/a": "/file/Q/a",
              f"http://127.0.0.1:{origin.port}/file/PP/a": "/file/PP/a"}
    fill(arca, origin, {**urls, **beside})
    assert arca.status()["resources_successes"] == 8
    status, _, body = purge_prefix(arca, spelling.format(port=origin.port))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["purged"] == 6, answer
    # the prefix matched is the folded one, and nothing is said to be out of its reach
    assert answer["prefix"] == f"http://127.0.0.1:{origin.port}/file/P/" and \
        "not_matched" not in answer, answer
    assert arca.status()["resources_successes"] == 2
    # every spelling is asked of the origin again; the files beside it are still hits
    for url, path in {**urls, **beside}.items():
        assert arca.fetch(url)[0] == 200
    assert {url: origin.counts[path] for url, path in urls.items()} == {u: 2 for u in urls}
    assert {url: origin.counts[path] for url, path in beside.items()} == {u: 1 for u in beside}


def test_a_prefix_that_ends_in_a_cut_escape_is_refused(workdir, origin, start_arca):
    arca = arca_with_token(start_arca, workdir)
    fill(arca, origin, {origin.url("/file/A"): "/file/A"})
    for prefix in (origin.url("/file/%4"), origin.url("/file/%"), origin.url("/file/%e")):
        status, _, body = purge_prefix(arca, prefix)
        assert status == 400 and body.count(b"\n") == 1 and b"cut escape" in body, (prefix, body)
    assert arca.status()["resources_successes"] == 1
    # the whole escape is a prefix like any other: %41 is A
    status, _, body = purge_prefix(arca, origin.url("/file/%41"))
    assert status == 200 and json.loads(body)["purged"] == 1, body
    # the command line refuses it before asking (bad usage: 2)
    out = subprocess.run([ARCA_BIN, "purge", "--server", arca.base, "--admin-token-file",
                          token_file(workdir), "--prefix", origin.url("/file/%4")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cut escape" in out.stderr, \
        out.stderr


def test_a_prefix_with_a_query_says_what_it_cannot_match(workdir, origin, start_arca):
    arca = arca_with_token(start_arca, workdir)
    fill(arca, origin, {origin.url("/list?b=2&a=1"): "/list"})
    status, _, body = purge_prefix(arca, origin.url("/list?a=1&b=2"))
    answer = json.loads(body)
    assert status == 200 and answer["purged"] == 0, body
    assert "query" in answer["not_matched"], answer
    out = subprocess.run([ARCA_BIN, "purge", "--server", arca.base, "--admin-token-file",
                          token_file(workdir), "--prefix", origin.url("/list?a=1&b=2")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "; not matched: the query as written" in out.stdout, \
        (out.stdout, out.stderr)
    status, _, body = purge_prefix(arca, origin.url("/list?b=2"))
    assert status == 200 and json.loads(body)["purged"] == 1, body
