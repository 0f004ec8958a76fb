"""What an operator reads in /metrics and on the statistics page: request duration histograms
by outcome (time to first byte and total), the build, and per-rule counters."""
import os
import re

import subprocess

from conftest import ARCA_BIN

ARCA_VERSION = subprocess.run([ARCA_BIN, "--version"], capture_output=True,
                              text=True).stdout.split()[-1]


def scrape(arca):
    text = arca.get("/metrics")[2].decode()
    for line in text.splitlines():  # every sample line is NAME{LABELS} VALUE
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[^}]*\})? -?[0-9.e+Inf-]+', line), line
    return text, arca.metrics()


def hist(m, outcome, phase):
    """The histogram's cumulative buckets by bound, its count and sum."""
    key = f'outcome="{outcome}",phase="{phase}"'
    buckets = {}
    for name, value in m.items():
        got = re.fullmatch(r'arca_request_duration_seconds_bucket\{' + re.escape(key) + r',le="([^"]+)"\}',
                           name)
        if got:
            buckets[float(got.group(1))] = value
    return (buckets, m.get(f"arca_request_duration_seconds_count{{{key}}}"),
            m.get(f"arca_request_duration_seconds_sum{{{key}}}"))


def test_durations_build_and_rules_in_metrics_and_on_the_statistics_page(origin, start_arca,
                                                                       workdir):
    data = os.urandom(300_000)
    fw = origin.add("/fw/image.bin", data=data)
    other = origin.add("/other/b.bin", data=b"x" * 1000)
    ini = os.path.join(workdir, "rules.ini")
    with open(ini, "w") as f:
        f.write(f"[rule firmware]\nmatch = {origin.url('/fw/')}\n")
    arca = start_arca("--config", ini, "--upstream-allow", "127.0.0.0/8")
    _, m = scrape(arca)
    assert not [k for k in m if k.startswith("arca_request_duration_seconds")]  # none yet
    for url in (fw, fw, other):
        assert arca.fetch(url)[0] == 200
    assert arca.fetch(origin.url("/missing"))[0] == 404
    text, m = scrape(arca)
    # the build
    build = [k for k in m if k.startswith("arca_build_info{")]
    assert len(build) == 1 and m[build[0]] == 1 and f'version="{ARCA_VERSION}"' in build[0], build
    # one hit, two misses, one error; first byte never after the end
    for outcome, n in (("hit", 1), ("miss", 2), ("error", 1)):
        for phase in ("first_byte", "total"):
            buckets, count, total = hist(m, outcome, phase)
            assert count == n and buckets[float("inf")] == n, (outcome, phase, buckets)
            bounds = sorted(buckets)
            assert [buckets[b] for b in bounds] == sorted(buckets[b] for b in bounds)  # cumulative
            assert total is not None and total >= 0
    assert hist(m, "miss", "first_byte")[2] <= hist(m, "miss", "total")[2]
    assert "# TYPE arca_request_duration_seconds histogram" in text
    # per rule: the two firmware requests, one a hit, their bytes; the other URL has no rule
    assert m['arca_rule_requests_total{rule="firmware"}'] == 2
    assert m['arca_rule_hits_total{rule="firmware"}'] == 1
    assert m['arca_rule_served_bytes_total{rule="firmware"}'] == 2 * len(data)
    assert [k for k in m if k.startswith("arca_rule_requests_total")] == \
        ['arca_rule_requests_total{rule="firmware"}']
    # the statistics page draws the percentiles of each outcome
    page = arca.get("/statistics/")[2].decode()
    for chart in ("latency-first-byte", "latency-total"):
        svg = re.search(rf'id="{chart}".*?</svg>', page, re.S)
        assert svg, chart
        for outcome in ("hit", "miss", "error"):
            assert outcome in svg.group(0), (chart, outcome)


def test_a_request_its_client_saw_end_is_in_the_counters_it_asks_next(origin, start_arca):
    """A client that got its answer, then asks for the counters, finds its request counted: a
    request is counted as its answer ends, just after its client's last byte, on another worker
    than the one answering the scrape (a check that fetches then scrapes at once saw the
    error's histogram empty in CI)."""
    small = origin.add("/small.bin", data=b"y" * 100)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--threads", "4")
    assert arca.fetch(small)[0] == 200
    total = 'arca_request_duration_seconds_count{outcome="hit",phase="total"}'
    for i in range(1, 501):
        assert arca.fetch(small)[0] == 200
        assert arca.metrics().get(total) == i, f"hit {i} not counted"
        assert arca.status()["statistics_upload"] == 100 * (i + 1), f"hit {i}'s bytes not counted"
