"""Attacks on a pypi remote's pages (issue 69, docs/REMOTES.md "pypi, links through arca"): a
hostile index answers pages built to make arca's rewriting blow up (short links under a long
<base>, a JSON page of empty objects) or to inject markup through entities and quotes; a client
tries to reach or keep the JSON form's object (its key ends `#pypi-json`) past a purge. What a
user sees: statuses, the page's links and tags as a parser reads them, arca's memory high-water
mark (/proc), the index's request log."""

import html.parser
import json
import os
import urllib.parse

from conftest import sha256
from pypiindex import JSON_TYPE, json_files, page_links, pypi_index, remote_ini  # noqa: F401
from test_admin import purge, token_file
from test_purge_prefix import purge_prefix

NAME = "py"
MiB = 1 << 20


def high_water(arca):
    """arca's resident memory high-water mark, bytes (VmHWM)."""
    with open(f"/proc/{arca.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def start_py(start_arca, origin, *args):
    return start_arca("--upstream-allow", "127.0.0.0/8",
                      "--remote", f"{NAME}:pypi={origin.url('/pypi')}", *args)


def test_a_page_of_short_links_under_a_long_base_is_not_grown_a_thousandfold(start_arca, origin):
    """A page of 20,000 one-byte links after an 8 KB <base href> (200 KB): rewritten, each link
    would carry the base (160 MB, made again at every request). arca answers it refused (502) or
    no more than a few times its size, its memory stays within tens of MB, and it still
    answers."""
    base = origin.url("/pypi/") + "a" * 8000 + "/"
    page = f'<base href="{base}">'.encode() + b"<a href=&>" * 20000
    origin.add("/pypi/simple/big/", data=page, content_type="text/html")
    arca = start_py(start_arca, origin)
    before = high_water(arca)
    status, _, body = arca.get(f"/{NAME}/simple/big/", {"Accept": "text/html"})
    assert status == 502 or (status == 200 and len(body) <= 4 * len(page) + 65536), \
        (status, len(body))
    assert high_water(arca) - before < 64 * MiB, (high_water(arca) - before) // MiB
    assert arca.get("/api/v1/health")[0] == 200


def test_a_json_page_of_empty_objects_is_refused_before_it_is_parsed(start_arca, origin):
    """A PEP 691 page whose files[] is 2.5 million `{}` (7.5 MB): parsed, its tree would take
    about 80 times its size. arca refuses it (502) without building it: its memory grows by
    little more than the page; a real page of the same kind still answers, rewritten."""
    hostile = b'{"meta":{"api-version":"1.0"},"name":"x","files":[' + \
        b",".join([b"{}"] * 2_500_000) + b"]}"
    origin.add("/pypi/simple/hostile/", data=hostile, content_type=JSON_TYPE)
    digest = "ab" * 32
    real = json.dumps({"meta": {"api-version": "1.0"}, "name": "real", "files": [
        {"filename": f"real-{i}.whl", "url": f"../../packages/real-{i}.whl",
         "hashes": {"sha256": digest}, "requires-python": ">=3.8", "yanked": False}
        for i in range(2000)]}).encode()
    origin.add("/pypi/simple/real/", data=real, content_type=JSON_TYPE)
    arca = start_py(start_arca, origin)
    before = high_water(arca)
    status, _, _ = arca.get(f"/{NAME}/simple/hostile/", {"Accept": JSON_TYPE})
    assert status == 502, status
    assert high_water(arca) - before < 64 * MiB, (high_water(arca) - before) // MiB
    status, headers, body = arca.get(f"/{NAME}/simple/real/", {"Accept": JSON_TYPE})
    assert status == 200, status
    files = json.loads(body)["files"]
    assert len(files) == 2000
    assert files[7]["url"] == f"/{NAME}/+sha256/{digest}/packages/real-7.whl", files[7]


class Tags(html.parser.HTMLParser):
    """Every start tag with its attribute names, in order, and the <a> hrefs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.hrefs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, [k for k, _ in attrs]))
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))

    handle_startendtag = handle_starttag


def tags_of(text):
    t = Tags()
    t.feed(text)
    t.close()
    return t


HOSTILE_LINKS = [
    '<a href="x.whl&quot; onmouseover=&quot;alert(1)">1</a>',
    "<a href='x.whl&#39; onclick=&#39;alert(2)'>2</a>",
    '<a href="x.whl&#x22;&#x3e;&#x3c;script&#x3e;alert(3)&#x3c;/script&#x3e;">3</a>',
    "<a href=x.whl&#34;onfocus=alert(4)>4</a>",
    '<a href="x.whl&#0;&#x110000;&#xD800;">5</a>',
    '<a href="javascript:alert(6)">6</a>',
    '<a href="data:text/html,<script>alert(7)</script>">7</a>',
    '<a href="/api/v1/purge/?prefix=http://">8</a>',
    '<a href="../../../../api/v1/status/">9</a>',
    '<a href="http://127.0.0.1:1/internal">10</a>',
    '<a href="x.whl#sha256=' + "A" * 64 + '&quot;>11">11</a>',
    '<a href="&#x2e;&#x2e;/&#x2e;&#x2e;/&#x2e;&#x2e;/secret">12</a>',
    '<a\thref\n=\n"x.whl"\nonclick=13>13</a>',
    '<a href=x.whl"onclick=14>14</a>',
    '<A HREF="X.WHL" HREF="/evil">15</A>',
]


def test_entities_and_quotes_in_links_inject_no_markup(start_arca, origin):
    """A hostile page's links, spelt to break out of their attribute once arca writes them back
    (entities for quotes and brackets, an unquoted value, a NUL, a second href): the page arca
    serves has the same tags with the same attributes, in order, as the index's; every link is
    arca's own path under /py/ or left absolute; the answer runs no script (sandbox CSP,
    nosniff); a <base href> is written back empty."""
    page = ('<!DOCTYPE html><html><head><base href="http://evil.example/"></head><body>\n' +
            "\n".join(HOSTILE_LINKS) + "\n</body></html>\n")
    origin.add("/pypi/simple/h/", data=page.encode(), content_type="text/html")
    arca = start_py(start_arca, origin)
    status, headers, body = arca.get(f"/{NAME}/simple/h/", {"Accept": "text/html"})
    assert status == 200, status
    assert "sandbox" in headers.get("content-security-policy", ""), headers
    assert headers.get("x-content-type-options") == "nosniff", headers
    served, sent = tags_of(body.decode()), tags_of(page)
    assert served.tags == sent.tags, (served.tags, sent.tags)
    assert 'href=""' in body.decode() and "evil.example/\"" not in body.decode()
    for href in served.hrefs:
        assert href.startswith(f"/{NAME}/") or urllib.parse.urlsplit(href).scheme in \
            ("http", "https", "javascript", "data"), href
        assert not href.startswith("/api/"), href


def json_form(arca, project, accept=JSON_TYPE):
    status, headers, body = arca.get(f"/{NAME}/simple/{project}/", {"Accept": accept})
    assert status == 200, (status, body[:200])
    return headers, body.decode()


def rewrite_index_page(index, project, marker):
    """The index's pages of `project` (both forms) from now on name `marker` as a file."""
    where = os.path.join(index.www["index"], "simple", project)
    with open(os.path.join(where, "index.json")) as f:
        doc = json.load(f)
    doc["files"].append({"filename": marker, "url": f"../../packages/{marker}",
                         "hashes": {"sha256": "cd" * 32}})
    with open(os.path.join(where, "index.json"), "w") as f:
        json.dump(doc, f)
    with open(os.path.join(where, "index.html")) as f:
        text = f.read()
    with open(os.path.join(where, "index.html"), "w") as f:
        f.write(text.replace("</body>", f'<a href="../../packages/{marker}">{marker}</a></body>'))


def start_index_remote(start_arca, workdir, index):
    ini = remote_ini(workdir, index, NAME)
    return start_arca("--config", ini, "--ca-file", index.ca, "--upstream-allow", "127.0.0.0/8",
                      "--admin-token-file", token_file(workdir))


def test_a_purge_of_a_page_takes_its_json_form_too(start_arca, workdir, pypi_index):
    """The admin purges a project's page (a release withdrawn upstream): by its URL and by a
    prefix. pip asks the JSON form first: after either purge both forms are the index's new
    page, never the one kept before."""
    index = pypi_index
    arca = start_index_remote(start_arca, workdir, index)
    page = f"{index.url}/simple/tinyproj/"
    for n, how in enumerate(("url", "prefix")):
        json_form(arca, "tinyproj")
        json_form(arca, "tinyproj", "text/html")
        marker = f"withdrawn{n}-1.0-py3-none-any.whl"
        rewrite_index_page(index, "tinyproj", marker)
        if how == "url":
            status, _, body = purge(arca, page)
        else:
            status, _, body = purge_prefix(arca, f"{index.url}/simple/tinyproj")
        assert status == 200, body
        _, text = json_form(arca, "tinyproj")
        assert marker in json_files(f"{arca.base}/{NAME}/simple/tinyproj/", text), (how, text)
        _, text = json_form(arca, "tinyproj", "text/html")
        assert marker in page_links(f"{arca.base}/{NAME}/simple/tinyproj/", text), (how, text)


def test_the_json_form_s_key_is_no_url_a_client_can_name(start_arca, workdir, pypi_index):
    """A client names the page's URL with `#pypi-json` (escaped or not) on the fetch API and
    through the proxy: never the JSON form's object (the fragment is cut, an escaped '#' is
    another path); the pages through the remote stay each its own form, the index asked for
    the JSON form once."""
    index = pypi_index
    arca = start_index_remote(start_arca, workdir, index)
    page = f"{index.url}/simple/tinyproj/"
    headers, text = json_form(arca, "tinyproj")
    assert headers["content-type"].startswith(JSON_TYPE), headers
    for url in (page + "#pypi-json", page + "%23pypi-json", page + "%2523pypi-json"):
        status, hdrs, body = arca.fetch(url)
        assert not hdrs.get("content-type", "").startswith(JSON_TYPE), (url, status, hdrs)
        assert sha256(body) != sha256(text.encode())
    for target in (page + "#pypi-json", page + "%23pypi-json"):
        status, hdrs, body = arca.get(target)  # absolute-form: the proxy
        assert not hdrs.get("content-type", "").startswith(JSON_TYPE), (target, status, hdrs)
    headers, again = json_form(arca, "tinyproj")
    assert headers["content-type"].startswith(JSON_TYPE) and again == text
    headers, html_text = json_form(arca, "tinyproj", "text/html")
    assert headers["content-type"].startswith("text/html"), headers
    assert index.count("index", "/simple/tinyproj/", JSON_TYPE) == 1, index.log("index")


def test_a_page_asked_through_an_outer_files_remote_links_to_paths_that_answer(
        start_arca, origin):
    """A `files` remote at the origin's root and a `pypi` one at its /pypi: the page asked by
    the outer path is the pypi remote's URL, rewritten (one URL, one kind), its links under
    the outer remote's path with no /+f/ or /+sha256/ (a files remote's path is its
    upstream's), and each link answers the file's bytes."""
    wheel = b"PK\x03\x04 wheel " * 500
    origin.add("/pypi/packages/p-1.0-py3-none-any.whl", data=wheel)
    origin.add("/other/p-1.0.tar.gz", data=wheel[::-1])
    page = (f'<a href="../../packages/p-1.0-py3-none-any.whl#sha256={sha256(wheel)}">w</a>'
            f'<a href="{origin.url("/other/p-1.0.tar.gz")}#sha256={sha256(wheel[::-1])}">s</a>')
    origin.add("/pypi/simple/p/", data=page.encode(), content_type="text/html")
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--remote", f"all={origin.url('')}",
                      "--remote", f"{NAME}:pypi={origin.url('/pypi')}")
    status, _, body = arca.get("/all/pypi/simple/p/", {"Accept": "text/html"})
    assert status == 200, status
    hrefs = tags_of(body.decode()).hrefs
    assert [h.split("#")[0] for h in hrefs] == ["/all/pypi/packages/p-1.0-py3-none-any.whl",
                                                "/all/other/p-1.0.tar.gz"], hrefs
    for href, data in zip(hrefs, (wheel, wheel[::-1])):
        status, _, got = arca.get(href.split("#")[0])
        assert (status, sha256(got)) == (200, sha256(data)), href
