"""pip through a pypi remote (issue 69): `[remote pypi]` with `kind = pypi` and the index's URL,
and `pip download --index-url http://cache/pypi/simple/` (or a pip.conf saying so) gets the
index's files through arca, each asked of its host once however many clients want it. The
pages are rewritten so that their links lead to arca (`/pypi/PATH` for a file under the index's
URL, `/pypi/+f/https/HOST:PORT/PATH` for one on a file host) with the page's `#sha256=` kept
and checked as the file streams; a link to a host not in file-hosts is left pointing there.
The HTML (PEP 503) and JSON (PEP 691) forms of a page are kept apart. The index and its file
hosts are nginx over HTTPS with the test CA (pypiindex.py); the first scenario checks them with
pip alone.

What Debian 12's pip (23.0.1) does with a link, which the rewriting must suit: it quotes the
link's path again (`/+f/` is asked as `/%2Bf/`, `HOST:PORT` as `HOST%3APORT`), it asks a page
in JSON first (Accept: PIP_ACCEPT; other-proj has an HTML page only), and it takes a file's hash
from the first `sha256=` anywhere in the link's URL, to the URL's end: a link written
`...whl?sha256=H#sha256=H` is checked against `H#sha256=H` and fails."""

import http.client
import json
import os
import ssl
import subprocess
import urllib.parse

from conftest import ARCA_BIN, sha256
from pypiindex import (JSON_TYPE, PIP_ACCEPT, downloaded, json_files, page_links,  # noqa: F401
                       pip_download, pypi_index, remote_ini, write_pip_conf)

NAME = "pypi"
HTML_ACCEPT = "text/html"


def start_remote(start_arca, workdir, index, **kw):
    """arca with the index as its remote NAME (remote_ini's keywords), trusting the test CA."""
    return start_arca("--config", remote_ini(workdir, index, NAME, **kw), "--ca-file", index.ca,
                      "--upstream-allow", "127.0.0.0/8")


def simple_url(arca):
    return f"{arca.base}/{NAME}/simple/"


def get_page(arca, project, accept):
    """(status, headers, text) of the project's page through arca, asked with `accept`."""
    status, headers, body = arca.get(f"/{NAME}/simple/{project}/", {"Accept": accept})
    return status, headers, body.decode(errors="replace")


def get_whole(arca, target):
    """(status, body, complete) of a GET of `target` on arca: complete is False when the body
    stopped before its declared end (a short Content-Length, chunks without their last, a
    reset)."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        try:
            return resp.status, resp.read(), True
        except http.client.IncompleteRead as e:
            return resp.status, e.partial, False
        except OSError:
            return resp.status, b"", False
    finally:
        conn.close()


def direct_get(index, host, path, accept):
    """(status, headers, body) of `path` asked of the index's `host` itself, over HTTPS."""
    url = urllib.parse.urlsplit(index.base(host))
    conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30,
                                       context=ssl.create_default_context(cafile=index.ca))
    try:
        conn.request("GET", path, headers={"Accept": accept})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def target_of(url):
    """The request target (path and query) of an absolute URL."""
    s = urllib.parse.urlsplit(url)
    return s.path + (f"?{s.query}" if s.query else "")


def originals(index, *names):
    return {n: index.dists[n].sha256 for n in names}


def assert_pip_ok(p):
    assert p.returncode == 0, f"pip: {p.returncode}\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}"


TINY = "tinyproj-1.0-py3-none-any.whl"
OTHER = "other_proj-0.1-py3-none-any.whl"
BAD = "badproj-1.0-py3-none-any.whl"
STRAY = "strayproj-1.0-py3-none-any.whl"


def test_harness_pip_downloads_from_the_index_itself(pypi_index, workdir):
    """The harness, without arca: pip gets each file from the nginx index and its file hosts
    with the sha256 its page names (in JSON for a project that has it, in HTML for the other),
    reads data-requires-python (unpinned, tinyproj is 1.0: 2.0 is for Python 2), refuses the
    tampered file, and a pip.conf does what --index-url does. The pages answer HTML or JSON by
    Accept at one URL, with Vary: Accept."""
    index = pypi_index
    simple = f"{index.url}/simple/"
    p = pip_download(os.path.join(workdir, "d1"), "tinyproj==1.0", "other-proj==0.1",
                     "strayproj==1.0", index_url=simple, cert=index.ca)
    assert_pip_ok(p)
    assert downloaded(os.path.join(workdir, "d1")) == originals(index, TINY, OTHER, STRAY)
    assert index.wait_count("index", 1, "/simple/tinyproj/", JSON_TYPE) == 1
    conf = write_pip_conf(os.path.join(workdir, "pip.conf"), simple, cert=index.ca)
    p = pip_download(os.path.join(workdir, "d2"), "tinyproj", config=conf)
    assert_pip_ok(p)
    assert downloaded(os.path.join(workdir, "d2")) == originals(index, TINY)
    assert index.wait_count("files", 2, index.dists[TINY].path) == 2
    # the forms by Accept
    for accept, kind in ((HTML_ACCEPT, "text/html"), (PIP_ACCEPT, JSON_TYPE),
                         (JSON_TYPE, JSON_TYPE)):
        status, headers, body = direct_get(index, "index", "/simple/tinyproj/", accept)
        assert status == 200 and headers["content-type"].startswith(kind), (accept, headers)
        assert "accept" in headers.get("vary", "").lower(), headers
    status, headers, body = direct_get(index, "index", "/simple/other-proj/", PIP_ACCEPT)
    assert status == 200 and headers["content-type"].startswith("text/html"), headers
    # the tampered file: pip checks the page's sha256
    tampered = index.tamper(BAD)
    p = pip_download(os.path.join(workdir, "d3"), "badproj==1.0", index_url=simple,
                     cert=index.ca)
    assert p.returncode != 0 and "HASHES" in p.stderr, p.stderr[-1500:]
    assert sha256(tampered) not in downloaded(os.path.join(workdir, "d3")).values()


def test_pip_through_the_remote_twice_asks_each_file_of_its_host_once(
        start_arca, pypi_index, workdir):
    """Two clean pip downloads through arca, one with --index-url and one with a pip.conf:
    every file has the sha256 of the index's, and its host was asked for it once (the second
    run's are hits). The HTML page through arca links each file to arca, under /pypi/, its
    #sha256= and data-requires-python kept (unpinned, pip gets tinyproj 1.0), and every link
    answers the file's bytes, the sdist pip did not want too."""
    index = pypi_index
    arca = start_remote(start_arca, workdir, index)
    want = originals(index, TINY, OTHER)
    p = pip_download(os.path.join(workdir, "d1"), "tinyproj==1.0", "other-proj==0.1",
                     index_url=simple_url(arca))
    assert_pip_ok(p)
    assert downloaded(os.path.join(workdir, "d1")) == want
    conf = write_pip_conf(os.path.join(workdir, "pip.conf"), simple_url(arca))
    p = pip_download(os.path.join(workdir, "d2"), "tinyproj==1.0", "other-proj==0.1",
                     config=conf)
    assert_pip_ok(p)
    assert downloaded(os.path.join(workdir, "d2")) == want
    assert index.wait_count("files", 1, index.dists[TINY].path) == 1
    assert index.wait_count("index", 1, index.dists[OTHER].path) == 1
    p = pip_download(os.path.join(workdir, "d3"), "tinyproj", index_url=simple_url(arca))
    assert_pip_ok(p)
    assert downloaded(os.path.join(workdir, "d3")) == originals(index, TINY)

    page_url = f"{simple_url(arca)}tinyproj/"
    status, headers, text = get_page(arca, "tinyproj", HTML_ACCEPT)
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, headers)
    links = page_links(page_url, text)
    assert sorted(links) == sorted(d.filename for d in index.projects["tinyproj"]), text
    for d in index.projects["tinyproj"]:
        url, attrs = links[d.filename]
        assert url.startswith(f"{arca.base}/{NAME}/"), url
        assert urllib.parse.urlsplit(url).fragment == f"sha256={d.sha256}", url
        assert attrs.get("data-requires-python") == d.spec.requires_python, attrs
        status, body, complete = get_whole(arca, target_of(url))
        assert (status, complete, sha256(body)) == (200, True, d.sha256), (url, status)
        assert index.wait_count("files", 1, d.path) == 1, d.path
    # a file under the remote's URL: /pypi/ and its path there
    status, _, text = get_page(arca, "other-proj", HTML_ACCEPT)
    url, _ = page_links(f"{simple_url(arca)}other-proj/", text)[OTHER]
    assert status == 200 and url.startswith(arca.base), url
    # the page's sha256 rides in the path (pip reads the first "sha256=" anywhere in a link)
    digest = index.dists[OTHER].sha256
    assert urllib.parse.urlsplit(url).path == f"/{NAME}/+sha256/{digest}{index.dists[OTHER].path}", url


def test_json_and_html_forms_of_a_page_are_kept_apart(start_arca, pypi_index, workdir):
    """The project page asked in JSON (PEP 691) answers JSON whose files[].url lead to arca with
    hashes.sha256 and requires-python kept; the HTML form asked right after answers HTML, not
    the JSON kept for the same URL; each form asked again is the same answer, and the index was
    asked for each form once. Every answer says Vary: Accept."""
    index = pypi_index
    arca = start_remote(start_arca, workdir, index)
    page_url = f"{simple_url(arca)}tinyproj/"
    status, headers, text = get_page(arca, "tinyproj", JSON_TYPE)
    assert status == 200 and headers["content-type"].startswith(JSON_TYPE), (status, headers)
    assert "accept" in headers.get("vary", "").lower(), headers
    files = json_files(page_url, text)
    assert sorted(files) == sorted(d.filename for d in index.projects["tinyproj"]), text
    for d in index.projects["tinyproj"]:
        url, entry = files[d.filename]
        assert url.startswith(f"{arca.base}/{NAME}/"), url
        assert entry["hashes"]["sha256"] == d.sha256, entry
        assert entry["requires-python"] == d.spec.requires_python, entry
        status, body, complete = get_whole(arca, target_of(url))
        assert (status, complete, sha256(body)) == (200, True, d.sha256), (url, status)

    status, headers, html_text = get_page(arca, "tinyproj", HTML_ACCEPT)
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, headers)
    assert "accept" in headers.get("vary", "").lower(), headers
    assert not html_text.lstrip().startswith("{"), html_text[:200]
    assert sorted(page_links(page_url, html_text)) == sorted(files), html_text
    # pip's own Accept (JSON first) is the JSON form
    status, headers, again = get_page(arca, "tinyproj", PIP_ACCEPT)
    assert status == 200 and headers["content-type"].startswith(JSON_TYPE), headers
    assert json.loads(again) == json.loads(text)
    status, headers, again = get_page(arca, "tinyproj", HTML_ACCEPT)
    assert (status, again) == (200, html_text)
    assert index.wait_count("index", 1, "/simple/tinyproj/", JSON_TYPE) == 1, index.log("index")
    assert index.wait_count("index", 2, "/simple/tinyproj/") == 2, index.log("index")


def test_a_file_whose_bytes_are_not_the_page_s_sha256_is_never_delivered_whole(
        start_arca, pypi_index, workdir):
    """The files host serves other bytes than those its page's sha256 names: pip through arca
    fails, and a GET of the page's link through arca is refused or cut, never a 200 with the
    wrong bytes whole, the first time or after."""
    index = pypi_index
    arca = start_remote(start_arca, workdir, index)
    tampered = index.tamper(BAD)
    dest = os.path.join(workdir, "d1")
    p = pip_download(dest, "badproj==1.0", index_url=simple_url(arca))
    assert p.returncode != 0, p.stdout[-1500:]
    assert sha256(tampered) not in downloaded(dest).values()

    status, _, text = get_page(arca, "badproj", HTML_ACCEPT)
    assert status == 200, status
    url, _ = page_links(f"{simple_url(arca)}badproj/", text)[BAD]
    assert url.startswith(f"{arca.base}/{NAME}/"), url
    assert urllib.parse.urlsplit(url).fragment == f"sha256={index.dists[BAD].sha256}", url
    for _ in range(2):
        status, body, complete = get_whole(arca, target_of(url))
        assert not (status == 200 and complete), (status, len(body), sha256(body))
        assert sha256(body) != sha256(tampered) or not complete
    index.wait_count("files", 1, index.dists[BAD].path)  # asked, and its bytes refused


def test_a_link_to_a_host_not_in_file_hosts_is_left_pointing_there(
        start_arca, pypi_index, workdir):
    """strayproj's file is on a host file-hosts does not name: its link in both forms is the
    host's own URL, and pip through arca fetches it there itself (the stray host asked once,
    by pip). With no file-hosts at all, the files host's links are left too."""
    index = pypi_index
    arca = start_remote(start_arca, workdir, index)
    stray = index.dists[STRAY]
    page_url = f"{simple_url(arca)}strayproj/"
    status, _, text = get_page(arca, "strayproj", HTML_ACCEPT)
    assert status == 200, status
    assert page_links(page_url, text)[STRAY][0] == f"{stray.url}#sha256={stray.sha256}", text
    status, _, text = get_page(arca, "strayproj", JSON_TYPE)
    assert status == 200 and json_files(page_url, text)[STRAY][0] == stray.url, text
    p = pip_download(os.path.join(workdir, "d1"), "strayproj==1.0", index_url=simple_url(arca),
                     cert=index.ca)
    assert_pip_ok(p)
    assert downloaded(os.path.join(workdir, "d1")) == originals(index, STRAY)
    assert index.wait_count("stray", 1, stray.path) == 1

    bare = start_remote(start_arca, workdir, index, file_hosts=[])
    status, _, text = get_page(bare, "tinyproj", HTML_ACCEPT)
    assert status == 200, status
    links = page_links(f"{simple_url(bare)}tinyproj/", text)
    for d in index.projects["tinyproj"]:
        assert links[d.filename][0] == f"{d.url}#sha256={d.sha256}", links[d.filename]


def test_a_path_leaving_the_remote_s_base_is_refused_and_not_asked(
        start_arca, pypi_index, workdir):
    """`..` in any spelling (plain, %2e%2e, ..%2F) that leaves /pypi/'s base, or a file link's
    host root, is refused 400 and no host of the index is asked."""
    index = pypi_index
    arca = start_remote(start_arca, workdir, index)
    files = index.authority("files")
    for path in (f"/{NAME}/simple/../../etc/passwd", f"/{NAME}/../etc/passwd",
                 f"/{NAME}/%2e%2e/etc/passwd", f"/{NAME}/simple/%2E%2E/%2e%2e/etc/passwd",
                 f"/{NAME}/simple/..%2F..%2Fetc/passwd", f"/{NAME}/simple/..%2f..%2f",
                 f"/{NAME}/+f/https/{files}/packages/%2e%2e/%2e%2e/etc/passwd",
                 f"/{NAME}/+f/https/{files}/..%2F..%2Fetc/passwd"):
        status, _, body = arca.get(path)
        assert status == 400, (path, status, body[:200])
    for host in ("index", "files", "stray"):
        assert index.count(host) == 0, (host, index.log(host))


def test_a_file_link_reaches_only_the_file_hosts(start_arca, pypi_index, workdir):
    """/pypi/+f/ names a host: the files host's file answers its bytes, a host not in file-hosts
    (the stray one, or it behind the files host's name as userinfo) is refused without being
    asked: the remote is no open proxy."""
    index = pypi_index
    arca = start_remote(start_arca, workdir, index)
    tiny, stray = index.dists[TINY], index.dists[STRAY]
    files, elsewhere = index.authority("files"), index.authority("stray")
    status, body, complete = get_whole(
        arca, f"/{NAME}/+f/https/{files}{tiny.path}?sha256={tiny.sha256}")
    assert (status, complete, sha256(body)) == (200, True, tiny.sha256), status
    for target in (f"/{NAME}/+f/https/{elsewhere}{stray.path}",
                   f"/{NAME}/+f/https/{files}@{elsewhere}{stray.path}",
                   f"/{NAME}/+f/https/{files}%40{elsewhere}{stray.path}"):
        status, _, body = arca.get(target)
        assert 400 <= status < 500, (target, status, body[:200])
    assert index.count("stray") == 0, index.log("stray")


def test_rules_test_names_the_upstream_url_of_a_remote_path(workdir):
    """`arca rules test http://cache/pypi/...` names the URL arca asks for it: the remote's URL
    and the path below it for a page, the file host's URL for a /+f/ link."""
    ini = os.path.join(workdir, "remote.ini")
    with open(ini, "w") as f:
        f.write(f"[remote {NAME}]\nurl = https://127.0.0.1:8443\nkind = pypi\n"
                "file-hosts = 127.0.0.2:9443\n")
    for path, upstream in ((f"/{NAME}/simple/tinyproj/", "https://127.0.0.1:8443/simple/tinyproj/"),
                           (f"/{NAME}/+f/https/127.0.0.2:9443/packages/ab/{TINY}",
                            f"https://127.0.0.2:9443/packages/ab/{TINY}")):
        url = f"http://127.0.0.1:8001{path}"
        p = subprocess.run([ARCA_BIN, "rules", "test", "--config", ini, "--json", url],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
        assert json.loads(p.stdout)["url"] == upstream, p.stdout
        p = subprocess.run([ARCA_BIN, "rules", "test", "--config", ini, url],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and upstream in p.stdout, (p.stdout, p.stderr)
