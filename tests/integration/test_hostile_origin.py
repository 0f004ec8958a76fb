"""Attacker's scenarios for what an origin serves (issue 22, docs/SECURITY.md "Upstream bytes"):
a fetched body is shown under arca's own origin, beside its admin UI, so an origin's HTML must
never run there. Every answer carrying upstream bytes says `nosniff` and a sandboxing CSP, on
a miss, a joined download, a hit, a prepared hit, a range and a HEAD."""

from conftest import read_to_end

PAGE = b"<html><script>fetch('/api/v1/resources/').then(r => r.text()).then(alert)</script></html>"


def assert_inert(headers):
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert "sandbox" in [d.strip() for d in csp.split(";")]
    assert "default-src 'none'" in csp


def test_upstream_html_never_runs_on_arcas_origin(arca, origin):
    url = origin.add("/", data=PAGE, content_type="text/html")  # no file name to save as
    for _ in range(4):  # miss, hit from the file, then the prepared answer, twice
        status, headers, body = arca.fetch(url)
        assert status == 200 and body == PAGE
        assert headers["content-type"] == "text/html"
        assert_inert(headers)
    status, headers, _ = arca.fetch(url, method="HEAD")
    assert status == 200
    assert_inert(headers)
    status, headers, body = arca.fetch(url, {"Range": "bytes=0-5"})
    assert status == 206 and body == PAGE[:6]
    assert_inert(headers)


def test_a_streamed_html_answer_is_inert_too(arca, origin):
    body = PAGE * 2000
    url = origin.add("/page.html", data=body, content_type="text/html", rate=200000)
    conns = []
    try:
        for _ in range(2):  # the first starts the download, the second joins it
            conns.append(arca.stream(url))
        for conn, resp in conns:
            assert_inert({k.lower(): v for k, v in resp.getheaders()})
            got, complete = read_to_end(resp)
            assert complete and got == body
    finally:
        for conn, _ in conns:
            conn.close()
    assert origin.counts["/page.html"] == 1


def test_arcas_own_pages_keep_their_script(arca):
    status, headers, _ = arca.get("/")
    assert status == 200
    assert headers.get("x-content-type-options") == "nosniff"
    assert "sandbox" not in headers.get("content-security-policy", "")
