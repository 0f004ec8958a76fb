"""The web pages without a browser (what a client with JavaScript off gets) and the JSON
listing behind them: states, orders, paging, escaping."""

import json
import os
import re
import subprocess
import urllib.parse

from conftest import ARCA_BIN, ROOT

# arca fetches (and lists) a URL's normal form, where <, > and " are percent-encoded: & and ' are
# what still reaches a page as they are
SCRIPT_URL_TAIL = "?name=<script>alert(1)</script>&o='x'"


def listing(arca, **params):
    status, _, body = arca.get("/api/v1/resources/?" + urllib.parse.urlencode(params))
    return status, json.loads(body) if status == 200 else body


def test_listing_pages_and_orders_the_cached_objects(origin, arca):
    urls = [origin.add(f"/o{i:02d}", data=os.urandom(1000 + 37 * ((i * 7) % 30)))
            for i in range(30)]
    for u in urls:
        assert arca.fetch(u)[0] == 200
    status, first = listing(arca, state="successes", order="url")
    assert status == 200
    assert (first["count"], first["pages"], first["per_page"]) == (30, 2, 25)
    assert first["counts"] == {"scheduled": 0, "downloading": 0, "successes": 30, "failures": 0}
    _, second = listing(arca, state="successes", order="url", page=2)
    got = [r["url"] for r in first["resources"] + second["resources"]]
    assert got == sorted(urls)
    _, by_size = listing(arca, state="successes", order="-content_length")
    sizes = [r["content_length"] for r in by_size["resources"]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 1000 + 37 * 29
    row = by_size["resources"][0]
    assert row["downloaded"] == row["content_length"] and row["status_code"] == 200
    assert row["usage"] == 1 and row["created_at"].endswith("Z")


def test_listing_pages_of_equal_sizes_never_overlap(origin, arca):
    # ties on the order are broken by key: every page sorted, each object on exactly one page
    # (the sort moves the rows it sorts: each row's key is compared where it is now)
    urls = [origin.add(f"/same{i:03d}", data=os.urandom(4096)) for i in range(80)]
    for u in urls:
        assert arca.fetch(u)[0] == 200
    for order in ("content_length", "-content_length"):
        keys = []
        for page in (1, 2, 3, 4):
            status, got = listing(arca, state="successes", order=order, page=page)
            assert status == 200, (order, page)
            keys += [r["key"] for r in got["resources"]]
        assert len(keys) == 80 and len(set(keys)) == 80, order
        assert keys == sorted(keys), order


def test_listing_refuses_bad_queries_in_one_line(arca):
    for params, status in (({"state": "lost"}, 400), ({"order": "colour"}, 400),
                           ({"page": "0"}, 400), ({"page": "x"}, 400), ({"page": "2"}, 404)):
        got, body = listing(arca, **params)
        assert got == status, params
        assert body.count(b"\n") == 1
    assert listing(arca)[1]["state"] == "successes"
    assert listing(arca)[1]["order"] == "-last_usage"


def test_listing_shows_downloads_in_progress_and_failures(origin, arca):
    url = origin.add("/slow", data=b"s" * 600000, rate=300000)
    conn, resp = arca.stream(url)
    try:
        head = resp.read(1000)  # arca has written at least this much
        _, down = listing(arca, state="downloading")
        assert down["order"] == "url" and down["count"] == 1
        r = down["resources"][0]
        assert r["url"] == url and r["content_length"] == 600000
        assert 0 < r["downloaded"] < 600000
        page = arca.get("/resources/downloading/")[2].decode()
        assert "<progress value=" in page and 'max="600000"' in page
        assert "data-live=\"/api/v1/resources/?state=downloading" in page
        assert len(head + resp.read()) == 600000
    finally:
        conn.close()
    arca.fetch(origin.url("/gone"))
    _, failed = listing(arca, state="failures")
    assert [(r["url"], r["status_code"]) for r in failed["resources"]] == \
        [(origin.url("/gone"), 404)]


def test_a_url_holding_a_script_tag_is_shown_as_text(origin, arca):
    origin.add("/x", data=b"x" * 100)
    good = origin.url("/x") + SCRIPT_URL_TAIL
    bad = origin.url("/nothing") + SCRIPT_URL_TAIL
    assert arca.fetch(good)[0] == 200 and arca.fetch(bad)[0] == 404
    for state in ("successes", "failures"):
        status, headers, body = arca.get(f"/resources/{state}/")
        page = body.decode()
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "<script>alert" not in page
        assert "?name=%3Cscript%3Ealert(1)%3C/script%3E&amp;o=&#39;x&#39;" in page
        assert "script-src 'self'" in headers["content-security-policy"]
    home = arca.get("/", headers={"Host": "cache<b>:8001"})[2].decode()
    assert "cache&lt;b&gt;:8001" in home and "cache<b>" not in home


def test_every_page_is_readable_without_javascript(origin, arca):
    url = origin.add("/r", data=b"r" * 5000)
    arca.fetch(url)
    arca.fetch(url)
    pages = {path: arca.get(path) for path in
             ("/", "/help/", "/resources/", "/resources/successes/", "/statistics/")}
    for path, (status, headers, body) in pages.items():
        assert status == 200, path
        assert body.startswith(b"<!DOCTYPE html>") and body.rstrip().endswith(b"</html>")
    assert "/api/v1/fetch/?url=" in pages["/"][2].decode()
    assert "127.0.0.1" in pages["/help/"][2].decode()
    assert url in pages["/resources/successes/"][2].decode()
    stats = pages["/statistics/"][2].decode()
    assert re.search(r'id="hit-ratio"><div class="value">50\.0 %', stats)
    bars = re.findall(r'<rect class="bar served" [^>]*height="([\d.]+)"', stats)
    assert len(bars) == 48 and float(bars[-1]) > 0  # this hour's bytes served are drawn
    assert 'id="disk"' in stats
    for asset, kind in (("/static/arca.css", "text/css"), ("/static/arca.js", "text/javascript")):
        status, headers, _ = arca.get(asset)
        assert status == 200 and headers["content-type"].startswith(kind)
    assert arca.get("/static/../arca.ini")[0] == 404


def test_hourly_traffic_survives_a_restart(origin, start_arca):
    url = origin.add("/h", data=b"h" * 3500)
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    arca.fetch(url)
    assert arca.stop() == 0
    again = start_arca(data_dir=arca.data_dir)
    stats = again.get("/statistics/")[2].decode()
    titles = re.findall(r"— served to clients: ([^<]+)</title>", stats)
    assert titles[-1] == "3.4 KiB"
    assert '<div class="value">1</div><div class="label">object on disk</div>' in stats
    # the byte axis is cut at round values: 0 to 5 KiB in fifths, not in quarters (1.2, 3.8)
    ticks = re.findall(r'<text class="tick"[^>]*text-anchor="end">([^<]+)</text>', stats)
    assert ticks[:6] == ["0 B", "1.0 KiB", "2.0 KiB", "3.0 KiB", "4.0 KiB", "5.0 KiB"], ticks


def entries(text, start):
    """{option: its entry} for the lines of text that start with `start` + an option: each entry
    runs on over the lines that follow until the next option or a blank line. A man page entry
    may name two options (*--cert* _FILE_, *--key* _FILE_): each gets the entry."""
    found, current = {}, []
    for line in text.splitlines():
        m = re.match(re.escape(start) + r"(--[a-z][a-z-]+)", line)
        if m:
            current = [m.group(1)] + re.findall(r", \*(--[a-z][a-z-]+)\*", line)
            for option in current:
                found[option] = line
        elif current and line.strip() and not line.startswith(("*", "|")):
            for option in current:
                found[option] += " " + line.strip()
        else:
            current = []
    return found


def test_option_table_man_page_and_help_agree():
    """docs/OPTIONS.md's table is the one list of options: --help and the man page name the same
    options, no more and no fewer, and where the table gives a default value, --help and the man
    page give that value beside the word default."""
    help_text = subprocess.run([ARCA_BIN, "--help"], capture_output=True, text=True).stdout
    in_help = entries(help_text, "  ")
    with open(os.path.join(ROOT, "man", "arca.1.scd")) as f:
        in_man = entries(f.read(), "*")
    with open(os.path.join(ROOT, "docs", "OPTIONS.md")) as f:
        rows = [line.split(" | ") for line in f.read().splitlines() if line.startswith("| `--")]
    # a row may name two options (`--cert FILE`, `--key FILE`)
    heads = [re.findall(r"`(--[a-z-]+)", row[0]) for row in rows]
    table = {option: row[1] for row, names in zip(rows, heads) for option in names}
    assert sum(map(len, heads)) == len(table), "an option has two rows in docs/OPTIONS.md"
    options = set(re.findall(r"--[a-z][a-z-]+", help_text)) - {"--help", "--version"}
    assert len(options) >= 30
    assert set(in_help) == options, "an option --help names is not described by it"
    assert sorted(options - set(table)) == [], "options of --help missing in docs/OPTIONS.md"
    assert sorted(set(table) - options) == [], "docs/OPTIONS.md names options --help does not know"
    assert sorted(options - set(in_man)) == [], "options of --help missing in man/arca.1.scd"
    assert sorted(set(in_man) - options) == [], "man/arca.1.scd names options --help does not know"
    for option, default in table.items():
        value = re.fullmatch(r"`([^`]+)`", default)
        if not value:  # none, off, all, CPUs (max 16): said in words, each place its own
            continue
        said = re.escape(value.group(1))
        near = said + r".{0,40}default|default.{0,40}" + said
        for where, text in (("--help", in_help[option]),
                            ("man/arca.1.scd", re.sub(r"[_*]", "", in_man[option]))):
            assert re.search(near, text), f"{option}: {where} does not give the default {default}"


def test_failures_listing_survives_a_restart_and_keeps_the_last_256(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8")
    for i in range(260):
        assert arca.fetch(origin.url(f"/missing/{i:03d}"))[0] == 404
    assert listing(arca, state="failures")[1]["count"] == 256
    assert arca.stop() == 0
    again = start_arca(data_dir=arca.data_dir)
    _, failed = listing(again, state="failures", order="url")
    assert failed["count"] == 256
    first = failed["resources"][0]
    assert first["url"] == origin.url("/missing/004")  # the four oldest made room
    assert first["status_code"] == 404 and first["error"] == "upstream answered 404"
    page = again.get("/resources/failures/?order=-url")[2].decode()
    assert page.index(origin.url("/missing/259")) < page.index(origin.url("/missing/258"))
