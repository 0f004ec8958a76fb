"""What a site arca (the child) shows of its parent arcas (--parent, a rule's `parent`): the
status JSON's "parent", the arca_parent_ metrics, `arca status`'s parent lines, and the
statistics and help pages' cards, escaped. A real origin, a real parent arca and a child: the
counts after a download the parent served, the parent killed (its faults, held down, the
fallbacks by reason, every client still served the right bytes from the origin), restarted."""

import calendar
import os
import re
import subprocess
import time

from conftest import ARCA_BIN, resource, sha256, wait_clock, wait_for

ALLOW = ("--upstream-allow", "127.0.0.0/8")
REASONS = ("refused", "status", "loop", "cut", "digest", "lie", "down", "credentials")
FAMILIES = ("arca_parent_requests_total", "arca_parent_bytes_total", "arca_parent_hits_total",
            "arca_parent_up", "arca_parent_fallbacks_total")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MIB3 = 3 * 1024 * 1024  # "3.0 MiB" in arca's words


def base(arca, path=""):
    return f"http://127.0.0.1:{arca.port}{path}"


def parents_of(arca):
    return arca.status()["parent"]


def entry(arca, url=None):
    """The child's status entry of its parent at `url` (the only one when None)."""
    found = [p for p in parents_of(arca)["parents"] if url is None or p["url"] == url]
    assert len(found) == 1, parents_of(arca)
    return found[0]


def status_text(arca):
    p = subprocess.run([ARCA_BIN, "status", "--server", base(arca)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def parent_lines(arca):
    return [line for line in status_text(arca).splitlines() if line.startswith("parent ")]


def page(arca, path):
    status, headers, body = arca.get(path)
    assert status == 200
    return body.decode()


def metric(arca, family, parent, **labels):
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return arca.metrics().get(f'{family}{{parent="{parent}"{extra}}}')


def check_metrics_text(text):
    """Each arca_parent_ family: one HELP, one TYPE, its samples together after them (the text
    format's rule), a sample per parent (per reason for the fallbacks)."""
    lines = text.splitlines()
    for family in FAMILIES:
        assert lines.count(f"# TYPE {family} " + ("gauge" if family == "arca_parent_up"
                                                  else "counter")) == 1, family
        at = [i for i, line in enumerate(lines) if line.startswith(family + "{")]
        assert at and at == list(range(at[0], at[0] + len(at))), family
        assert lines[at[0] - 1].startswith(f"# TYPE {family} ")


def fetch_ok(arca, url, data):
    status, _, body = arca.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)


def test_without_a_parent_nothing_is_said(origin, arca):
    url = origin.add("/a", data=b"a" * 1000)
    fetch_ok(arca, url, b"a" * 1000)
    assert parents_of(arca) is None
    assert "arca_parent_" not in arca.get("/metrics")[2].decode()
    assert parent_lines(arca) == []
    assert 'id="parent"' not in page(arca, "/statistics/")
    assert 'id="parent-help"' not in page(arca, "/help/")


def test_a_parent_that_served_is_counted_everywhere(origin, start_arca):
    data = os.urandom(MIB3)
    url = origin.add("/big", data=data)
    parent = start_arca(*ALLOW)
    child = start_arca(*ALLOW, "--parent", base(parent))
    p = parents_of(child)
    assert p == {"url": base(parent), "only": False, "trusted_http": False,
                 "parents": [{"url": base(parent), "from": "--parent", "state": "up",
                              "down_since": None, "failures": 0, "requests": 0, "bytes": 0,
                              "hits": 0, "fallbacks": {r: 0 for r in REASONS}}]}
    assert metric(child, "arca_parent_up", base(parent)) == 1
    assert metric(child, "arca_parent_requests_total", base(parent)) == 0

    # the parent holds it complete: the child's miss is the parent's hit, one origin download
    fetch_ok(parent, url, data)
    wait_for(lambda: resource(parent, "/big"), "the parent holds /big complete")
    fetch_ok(child, url, data)
    e = wait_for(lambda: (e := entry(child))["requests"] == 1 and e, "the parent's download counted")
    assert (e["state"], e["bytes"], e["hits"], e["failures"]) == ("up", MIB3, 1, 0)
    assert e["fallbacks"] == {r: 0 for r in REASONS}
    assert origin.counts["/big"] == 1

    text = child.get("/metrics")[2].decode()
    check_metrics_text(text)
    for family, value in (("arca_parent_requests_total", 1), ("arca_parent_bytes_total", MIB3),
                          ("arca_parent_hits_total", 1), ("arca_parent_up", 1)):
        assert metric(child, family, base(parent)) == value, family
    for reason in REASONS:
        assert metric(child, "arca_parent_fallbacks_total", base(parent), reason=reason) == 0

    assert parent_lines(child) == [
        f"parent     {base(parent)} (--parent): up; 1 request, 1 hit, 3.0 MiB; never fell back "
        "to the origin"]
    stats = page(child, "/statistics/")
    assert '<div class="card" id="parent">' in stats
    assert (f'<code>{base(parent)}</code></td><td>--parent</td><td class="state"><span '
            'class="yes">up</span></td><td class="num requests">1</td><td class="num hits">1'
            '</td><td class="num bytes">3.0 MiB</td><td class="fallbacks muted">none</td>') in stats
    assert f"it asks <code>{base(parent)}</code> (--parent) first" in page(child, "/help/")
    # the parent itself has no parent
    assert parents_of(parent) is None

    # cold at both: the parent downloads it once and streams it (its digest in the trailer); a
    # request counted, not a hit
    cold = os.urandom(100000)
    fetch_ok(child, origin.add("/cold", data=cold), cold)
    e = wait_for(lambda: (e := entry(child))["requests"] == 2 and e, "the cold download counted")
    assert (e["hits"], e["bytes"], e["failures"]) == (1, MIB3 + 100000, 0)
    assert e["fallbacks"] == {r: 0 for r in REASONS}
    assert origin.counts["/cold"] == 1
    assert metric(child, "arca_parent_hits_total", base(parent)) == 1
    assert metric(child, "arca_parent_requests_total", base(parent)) == 2


def test_a_parent_killed_is_held_down(origin, start_arca):
    objects = {f"/k{i}": os.urandom(4096 + i) for i in range(4)}
    urls = {path: origin.add(path, data=data) for path, data in objects.items()}
    parent = start_arca(*ALLOW)
    child = start_arca(*ALLOW, "--parent", base(parent))
    url = base(parent)
    parent.stop()
    before = time.time()

    # refused three times in a row: each download goes to the origin at once, right bytes
    for path in ("/k0", "/k1", "/k2"):
        fetch_ok(child, urls[path], objects[path])
    e = wait_for(lambda: (e := entry(child))["state"] == "down" and e, "the parent held down")
    assert e["failures"] == 3 and e["requests"] == 0
    assert e["fallbacks"] == {r: 3 if r == "refused" else 0 for r in REASONS}
    assert STAMP.match(e["down_since"])
    since = calendar.timegm(time.strptime(e["down_since"], "%Y-%m-%dT%H:%M:%SZ"))
    assert before - 1 <= since <= time.time() + 1

    # held down: passed over without being asked, counted as "down"
    fetch_ok(child, urls["/k3"], objects["/k3"])
    e = wait_for(lambda: (e := entry(child))["fallbacks"]["down"] == 1 and e, "a 'down' fallback")
    assert e["fallbacks"]["refused"] == 3
    assert all(origin.counts[p] == 1 for p in ("/k0", "/k1", "/k2", "/k3"))

    assert metric(child, "arca_parent_up", url) == 0
    assert metric(child, "arca_parent_fallbacks_total", url, reason="refused") == 3
    assert metric(child, "arca_parent_fallbacks_total", url, reason="down") == 1
    check_metrics_text(child.get("/metrics")[2].decode())
    lines = parent_lines(child)
    assert len(lines) == 1 and lines[0] == (
        f"parent     {url} (--parent): DOWN since {e['down_since']}, 3 failures in a row; "
        "0 requests, 0 hits, 0 B; fell back to the origin 4 times (refused 3, down 1)")
    stats = page(child, "/statistics/")
    assert '<div class="card warning" id="parent">' in stats
    assert '<span class="no">down</span> since ' in stats
    assert '<td class="fallbacks">4 (refused 3, down 1)</td>' in stats



def test_a_parent_back_is_shown_up_again(origin, start_arca):
    """Back on its port once its hold is over (PARENT_DOWN_MS, 5 s from down_since), a parent is
    asked again (the probe of its held host): up, its faults in a row forgotten, its fallbacks
    kept."""
    objects = {f"/b{i}": os.urandom(4096 + i) for i in range(4)}
    urls = {path: origin.add(path, data=data) for path, data in objects.items()}
    parent = start_arca(*ALLOW)
    child = start_arca(*ALLOW, "--parent", base(parent))
    url = base(parent)
    parent.stop()
    for path in ("/b0", "/b1", "/b2"):
        fetch_ok(child, urls[path], objects[path])
    e = wait_for(lambda: (e := entry(child))["state"] == "down" and e, "the parent held down")
    assert metric(child, "arca_parent_up", url) == 0

    parent.start(keep_port=True)
    fetch_ok(parent, urls["/b3"], objects["/b3"])
    wait_for(lambda: resource(parent, "/b3"), "the parent holds /b3 complete")
    wait_clock(calendar.timegm(time.strptime(e["down_since"], "%Y-%m-%dT%H:%M:%SZ")) + 6)
    fetch_ok(child, urls["/b3"], objects["/b3"])
    e = wait_for(lambda: (e := entry(child))["requests"] == 1 and e, "the parent asked again")
    assert (e["state"], e["down_since"], e["failures"], e["hits"], e["bytes"]) == \
        ("up", None, 0, 1, 4099)
    assert e["fallbacks"] == {r: 3 if r == "refused" else 0 for r in REASONS}
    assert origin.counts["/b3"] == 1
    assert metric(child, "arca_parent_up", url) == 1
    assert parent_lines(child) == [
        f"parent     {url} (--parent): up; 1 request, 1 hit, 4.0 KiB; fell back to the origin "
        "3 times (refused 3)"]
    assert '<div class="card" id="parent">' in page(child, "/statistics/")


def test_the_pages_escape_a_parent_and_its_fallbacks(origin, start_arca):
    """A parent URL with markup's specials a path may keep ('&', "'"): the pages escape it. Its
    parent arca has no route there: a 404 of its own (no Cache-Status), the parent's fault."""
    data = b"e" * 5000
    url = origin.add("/e", data=data)
    parent = start_arca(*ALLOW)
    child = start_arca(*ALLOW, "--parent", base(parent, "/a&b'c"))
    shown = parents_of(child)["url"]
    assert shown.startswith(base(parent, "/a")) and "<" not in shown
    fetch_ok(child, url, data)
    e = wait_for(lambda: (e := entry(child))["fallbacks"]["status"] == 1 and e,
                 "the parent's 404 counted")
    assert e["url"] == shown and e["requests"] == 0
    escaped = shown.replace("&", "&amp;").replace("'", "&#39;")
    stats, help_page = page(child, "/statistics/"), page(child, "/help/")
    for text in (stats, help_page):
        if "&" in shown or "'" in shown:
            assert shown not in text
        assert f"<code>{escaped}</code>" in text
    assert '<td class="fallbacks">1 (status 1)</td>' in stats
    assert metric(child, "arca_parent_fallbacks_total", shown, reason="status") == 1
    assert parent_lines(child) == [
        f"parent     {shown} (--parent): up; 0 requests, 0 hits, 0 B; fell back to the origin "
        "1 time (status 1)"]


def test_the_options_are_shown(start_arca):
    parent = start_arca(*ALLOW)
    child = start_arca(*ALLOW, "--parent", base(parent), "--parent-only", "--parent-trusted-http")
    p = parents_of(child)
    assert (p["only"], p["trusted_http"], p["url"]) == (True, True, base(parent))
    assert parent_lines(child) == [
        f"parent     {base(parent)} (--parent): up; 0 requests, 0 hits, 0 B; never passed over",
        "parent     --parent-only: misses never go to the origin directly; "
        "--parent-trusted-http: URLs with credentials may go to a plain http:// parent"]
    for path in ("/statistics/", "/help/"):
        text = page(child, path)
        assert 'id="parent-only"' in text and 'id="parent-trusted-http"' in text


def test_a_rules_parent_shows_once_asked(origin, start_arca, workdir):
    data = os.urandom(20000)
    url = origin.add("/r/x", data=data)
    parent = start_arca(*ALLOW)
    config = os.path.join(workdir, "arca.ini")
    with open(config, "w") as f:
        f.write(f"[rule site]\nmatch = {origin.url('/r/')}\nparent = {base(parent)}\n")
    child = start_arca(*ALLOW, "--config", config)
    assert parents_of(child) is None  # no --parent, and no download asked the rule's yet
    fetch_ok(parent, url, data)
    wait_for(lambda: resource(parent, "/r/x"), "the parent holds /r/x complete")
    fetch_ok(child, url, data)
    e = wait_for(lambda: (e := entry(child))["requests"] == 1 and e, "the rule's parent counted")
    assert (e["from"], e["url"], e["hits"], e["bytes"]) == ("rule site", base(parent), 1, 20000)
    p = parents_of(child)
    assert (p["url"], p["only"]) == (None, False)
    assert metric(child, "arca_parent_requests_total", base(parent)) == 1
    assert parent_lines(child)[0].startswith(f"parent     {base(parent)} (rule site): up; 1 request")
    assert "<td>rule site</td>" in page(child, "/statistics/")
    assert origin.counts["/r/x"] == 1
