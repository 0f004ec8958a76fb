"""Caches that say who they are: --cache-name (default: the host's name) names arca's own
Cache-Status member (RFC 9211), so a two-tier answer reads `central; hit, site-a; fwd=...`; the
access log's result says where a miss's bytes came from (parent, mirror or origin); the
start-up log names the parents; the parent's counters persist across a restart."""

import os
import re
import socket
import subprocess

import pytest

from conftest import ARCA_BIN, Origin, sha256, wait_for, without_ttl
from tier import access_lines, parent_row


def log_results(arca, path):
    """The access log's results for fetches of `path`, in order (a line is written once its
    answer is over)."""
    return [a.result for a in access_lines(arca) if a.url.endswith(path)]


def test_a_two_tier_answer_names_both_caches_and_each_log_says_where_bytes_came_from(
        start_tier, origin):
    parent, (site_a, site_b) = start_tier(2, parent_args=("--cache-name", "central"))
    for site, name in ((site_a, "site-a"), (site_b, "site-b")):
        site.stop()
        site.args += ["--cache-name", name]
        site.start()
    data = os.urandom(50_000)
    url = origin.add("/fw/image.bin", data=data)

    status, headers, body = site_a.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert without_ttl(headers["cache-status"]) == "central; fwd=uri-miss, site-a; fwd=uri-miss"
    # a request's line is queued as it ends, just after its client's last byte: the misses'
    # lines are in before the hits are asked, so each log's order is its requests'
    wait_for(lambda: log_results(site_a, "/fw/image.bin"), "site A's first line")
    wait_for(lambda: log_results(parent, "/fw/image.bin"), "the central's first line")
    status, headers, body = site_b.fetch(url)
    assert status == 200 and sha256(body) == sha256(data)
    assert without_ttl(headers["cache-status"]) == "central; hit, site-b; fwd=uri-miss"
    status, headers, _ = site_a.fetch(url)
    assert without_ttl(headers["cache-status"]) == "central; fwd=uri-miss, site-a; hit"
    assert origin.counts["/fw/image.bin"] == 1

    wait_for(lambda: len(log_results(site_a, "/fw/image.bin")) == 2, "site A's two lines")
    assert log_results(site_a, "/fw/image.bin") == ["MISS:parent", "HIT"]
    wait_for(lambda: len(log_results(parent, "/fw/image.bin")) == 2, "the central's two lines")
    assert log_results(parent, "/fw/image.bin") == ["MISS:origin", "HIT"]
    assert site_a.log_shows(f"parent: {parent.base} (--parent)\n")


def test_a_miss_from_a_mirror_says_mirror(start_arca, origin, workdir):
    mirror = Origin()
    try:
        data = os.urandom(20_000)
        url = origin.add("/pub/a.img", data=b"the origin's")
        mirror.add("/mirror/pub/a.img", data=data)
        log = os.path.join(workdir, "access.log")
        arca = start_arca("--upstream-allow", "127.0.0.0/8", "--access-log", log, "--mirror",
                          f"^http://127\\.0\\.0\\.1:{origin.port}/pub/="
                          f"http://127.0.0.1:{mirror.port}/mirror/pub/")
        arca.access_log = log
        status, _, body = arca.fetch(url)
        assert status == 200 and body == data
        wait_for(lambda: log_results(arca, "/pub/a.img"), "the access log line")
        assert log_results(arca, "/pub/a.img") == ["MISS:mirror"]
    finally:
        mirror.stop()


def test_the_default_name_is_the_hosts(start_arca, origin):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", cache_name=None)
    host = socket.gethostname()
    name = host if re.fullmatch(r"[A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]*", host) else f'"{host}"'
    _, headers, _ = arca.fetch(origin.add("/x", data=b"x" * 100))
    assert without_ttl(headers["cache-status"]) == f"{name}; fwd=uri-miss"


@pytest.mark.parametrize("name", ["site a", "site\x01a", "1site", "site,a", "site;a", "",
                                  "site\"a"])
def test_a_name_cache_status_cannot_carry_is_one_line_and_exit_2(name, workdir):
    p = subprocess.run([ARCA_BIN, "serve", "--data-dir", os.path.join(workdir, "d"),
                        "--cache-name", name], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout)
    assert p.stderr.startswith("arca: --cache-name: '") and p.stderr.count("\n") == 1, p.stderr
    assert "\x01" not in p.stderr
    assert "is not a name Cache-Status can carry" in p.stderr


def test_the_parents_counters_persist_across_a_restart(start_tier, origin):
    parent, (site,) = start_tier(1)
    data = os.urandom(30_000)
    url = origin.add("/p/blob", data=data)
    assert site.fetch(url)[0] == 200
    assert site.fetch(origin.add("/p/other", data=data))[0] == 200

    wait_for(lambda: parent_row(site)["requests"] == 2, "the two asks counted")
    before = {k: parent_row(site)[k] for k in ("requests", "bytes", "hits", "fallbacks")}
    assert before["hits"] == 0 and before["bytes"] == 2 * len(data), before
    assert site.stop() == 0
    site.start()
    after = parent_row(site)
    assert {k: after[k] for k in ("requests", "bytes", "hits", "fallbacks")} == before, after
    metrics = site.metrics()
    assert metrics[f'arca_parent_requests_total{{parent="{parent.base}"}}'] == 2
