"""What a site says of its parent's refusals (docs/CLUSTER.md "Sites and tiers"): the parent's
own one-line reason comes with them, as the parent's, never as the origin's word: its rule
refusing the site ("parent refused: 403 Forbidden: client address not allowed ... rule
NAME ..."), and its rule refusing a redirect its download met ("parent answered 403: redirected
to URL, under rule NAME's allow-network: not followed"), where the site once said "upstream
answered 403"."""

import os

from conftest import resource, sha256
from test_rules import rule, write
from tier import full_fetch, logged_fallback


def central_with_rule(start_tier, workdir, origin, name, prefix):
    """A parent whose rule `name` lets only 10.0.0.0/8 fetch under `prefix` (the sites, on
    loopback, are left out)."""
    ini = write(os.path.join(workdir, "central.ini"),
                rule(name, origin.url(prefix), "allow-network = 10.0.0.0/8"))
    return start_tier.arca("parent", "--config", ini)


def test_a_parents_rule_refusing_the_site_is_said_with_its_reason(start_tier, workdir, origin):
    parent = central_with_rule(start_tier, workdir, origin, "secret2", "/secret2/")
    _, (site,) = start_tier(1, parent=parent)
    _, (only,) = start_tier(1, "--parent-only", "--download-retries", "0", parent=parent)
    url = origin.add("/secret2/s.bin", data=os.urandom(50_000))
    status, _, body, _ = full_fetch(site, url)  # the origin serves it: the parent refused
    assert status == 200
    assert site.log_shows("parent failed (status: parent refused: 403 Forbidden: client address "
                          "not allowed to fetch this URL: rule secret2"), site.read_log()[-1500:]
    assert logged_fallback(site, "status")
    status, _, body, _ = full_fetch(only, url)
    text = body.decode(errors="replace")
    assert status == 502, (status, text)
    assert text.startswith("parent refused: 403 Forbidden: client address not allowed to fetch "
                           "this URL: rule secret2"), text
    assert origin.counts["/secret2/s.bin"] == 1  # the plain site's fallback only


def test_a_parents_rule_refusing_a_redirect_is_the_parents_word(start_tier, workdir, origin):
    parent = central_with_rule(start_tier, workdir, origin, "private", "/private/")
    _, (site,) = start_tier(1, parent=parent)
    target = origin.add("/private/fw.bin", data=os.urandom(50_000))
    url = origin.add("/to/private/fw.bin", redirect=target)
    status, _, body = parent.fetch(url)
    said = body.decode().strip()
    assert status == 403 and said.startswith(f"redirected to {target}, under rule private"), said
    status, _, body, _ = full_fetch(site, url)
    text = body.decode(errors="replace").strip()
    assert status == 403 and text == f"parent answered 403: {said}", text
    row = resource(site, "/to/private/fw.bin", "failures")
    assert row and row["error"] == text, row
    assert origin.counts["/private/fw.bin"] == 0
