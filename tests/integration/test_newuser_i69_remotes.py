"""A lab admin's first day with remotes (issue 69), following docs/REMOTES.md: what the docs
promise and the first try found otherwise.

- "purges (`arca purge URL` ..., of the upstream URL) all apply": a pypi page asked by pip is
  kept in its JSON form (pip's Accept prefers it), apart from the HTML form. A purge of the
  page's upstream URL must drop both forms, not answer "404 not cached" for the copy pip gets.
- "`arca check-config` says why in one line (beginning `FILE:LINE:` where a file gave it)": a
  URL given to two remotes too.
- "a NAME ... given in one place": a `[remote NAME]` section that says `url` (or `kind`) twice
  is refused, as a `[bucket NAME]` or a `[rule NAME]` is, not read as its last line.
- The start-up log names the remotes as it names the registries: what /NAME/ reaches."""

import os
import subprocess

from conftest import ARCA_BIN
from pypiindex import JSON_TYPE, PIP_ACCEPT, pypi_index, remote_ini  # noqa: F401
from test_admin import TOKEN, purge, token_file

NAME = "pypi"


def check_config(workdir, text):
    """(exit status, stderr) of `arca check-config` on a file holding `text`."""
    path = os.path.join(workdir, "lab.ini")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([ARCA_BIN, "check-config", "--config", path], capture_output=True,
                       text=True, timeout=10)
    return p.returncode, p.stderr.strip(), path


def test_purging_a_page_s_upstream_url_drops_both_its_forms(start_arca, pypi_index, workdir):
    """pip's JSON form and a browser's HTML form of one page are kept apart; `arca purge` of the
    page's upstream URL answers 200 and drops both: each form asked again is asked upstream
    again."""
    index = pypi_index
    arca = start_arca("--config", remote_ini(workdir, index, NAME), "--ca-file", index.ca,
                      "--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))
    page = f"/{NAME}/simple/tinyproj/"
    for accept in (PIP_ACCEPT, "text/html"):
        assert arca.get(page, {"Accept": accept})[0] == 200
    assert index.wait_count("index", 2, "/simple/tinyproj/") == 2, index.log("index")

    status, _, answer = purge(arca, f"{index.url}/simple/tinyproj/")
    assert status == 200, answer

    for accept in (PIP_ACCEPT, "text/html"):
        assert arca.get(page, {"Accept": accept})[0] == 200
    assert index.wait_count("index", 4, "/simple/tinyproj/") == 4, index.log("index")
    assert index.count("index", "/simple/tinyproj/", JSON_TYPE) == 2, index.log("index")


def test_purging_the_json_form_alone_is_no_404(start_arca, pypi_index, workdir):
    """Only pip asked the page (its JSON form kept, no HTML form): the purge of its upstream URL
    drops it, answered 200, not "404 not cached"."""
    index = pypi_index
    arca = start_arca("--config", remote_ini(workdir, index, NAME), "--ca-file", index.ca,
                      "--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))
    page = f"/{NAME}/simple/tinyproj/"
    assert arca.get(page, {"Accept": PIP_ACCEPT})[0] == 200
    status, _, answer = purge(arca, f"{index.url}/simple/tinyproj/")
    assert status == 200, answer
    assert arca.get(page, {"Accept": PIP_ACCEPT})[0] == 200
    assert index.wait_count("index", 2, "/simple/tinyproj/", JSON_TYPE) == 2, index.log("index")


def test_a_url_given_to_two_remotes_is_refused_at_its_file_and_line(workdir):
    rc, err, path = check_config(workdir, "[remote deb]\nurl = https://deb.example/debian\n"
                                 "kind = apt\n\n[remote deb2]\nurl = https://deb.example/debian/\n")
    assert rc == 1, err
    assert err.startswith(f"arca: {path}:5: remote deb2: its URL is remote deb's too"), err


def test_a_key_given_twice_in_a_remote_section_is_refused(workdir):
    for key, first, second in (("url", "https://a.example/x", "https://b.example/y"),
                               ("kind", "apt", "files"),
                               ("file-hosts", "files.example", "other.example")):
        kind = "" if key == "kind" else "kind = pypi\n"
        rc, err, path = check_config(workdir, f"[remote lab]\n{kind}{key} = {first}\n"
                                     f"{key} = {second}\n" +
                                     ("url = https://a.example/x\n" if key != "url" else ""))
        line = 4 if kind else 3
        assert rc == 1, (key, err)
        assert err == (f"arca: {path}:{line}: remote lab: {key} given twice (first at line "
                       f"{line - 1})"), (key, err)


def test_the_start_up_log_names_the_remotes(start_arca, workdir):
    arca = start_arca("--remote", "debian:apt=https://deb.example/debian",
                      "--remote", "tools=http://tools.example:8080/mirror/")
    assert arca.log_shows("remotes served by path: debian (apt, https://deb.example/debian), "
                          "tools (files, http://tools.example:8080/mirror)"), arca.read_log()


def test_the_running_arca_s_rules_test_reads_a_remote_s_path(start_arca, workdir):
    """GET /api/v1/rules/?url=http://cache:8001/NAME/PATH answers what `arca rules test` prints
    for it (one function, API.md says): the upstream URL's terms, with its remote and class; a
    path the route refuses is refused with its reason."""
    import json
    import urllib.parse
    arca = start_arca("--remote", "debian:apt=https://deb.example/debian", "--admin-token-file",
                      token_file(workdir))
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def ask(url):
        return arca.get("/api/v1/rules/?" + urllib.parse.urlencode({"url": url}), auth)

    status, _, body = ask("http://cache:8001/debian/dists/bookworm/InRelease")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["url"] == "https://deb.example/debian/dists/bookworm/InRelease", answer
    assert answer["remote"] == {"name": "debian", "kind": "apt", "class": "metadata"}, answer
    assert answer["terms"]["ttl"] == {"value": 60, "from": "--remote-meta-ttl"}, answer
    cli = subprocess.run([ARCA_BIN, "rules", "test", "--json", "--remote",
                          "debian:apt=https://deb.example/debian",
                          "http://cache:8001/debian/dists/bookworm/InRelease"],
                         capture_output=True, text=True, timeout=10)
    assert cli.returncode == 0 and json.loads(cli.stdout)["remote"] == answer["remote"], cli
    # a path the route refuses (a '..' segment, however spelt) is refused with its reason
    status, _, body = ask("http://cache:8001/debian/pool/%2e%2e/%2e%2e/etc/passwd")
    assert status == 400 and b"remote debian: 400:" in body and b"base" in body, (status, body)
