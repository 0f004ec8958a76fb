"""Attack (issue 67): a site keeps a parent's 404 with the parent's freshness (note_negative
takes obj->created/ttl once obj->parent_status is set). A 404 the parent did not keep (its
negative ttl 0) is the origin's fresh word: the site keeps it for its own --negative-ttl, as a
site without a parent does, whatever ttl= the client that happened to ask first gave."""

import time

from conftest import wait_for
from test_negative_ttl import negative


def test_a_sites_kept_404_does_not_depend_on_the_first_clients_ttl(origin, start_tier):
    parent, children = start_tier(1, "--negative-ttl", "1h")  # the parent keeps none
    site = children[0]
    url = origin.url("/nightly/missing.img")
    assert site.fetch(url, ttl="1s")[0] == 404  # a client with a short ttl asked first
    t0 = time.monotonic()
    status, headers, _ = site.fetch(url)
    assert status == 404 and negative(headers), headers
    wait_for(lambda: time.monotonic() > t0 + 2.2, "two seconds", timeout=10)
    status, headers, _ = site.fetch(url)
    assert status == 404 and negative(headers), ("kept 1 s, not --negative-ttl 1h", headers)
    assert origin.counts["/nightly/missing.img"] == 1


def test_without_a_parent_the_same_is_kept_an_hour(origin, start_arca):
    site = start_arca("--upstream-allow", "127.0.0.0/8", "--negative-ttl", "1h")
    url = origin.url("/nightly/missing.img")
    assert site.fetch(url, ttl="1s")[0] == 404
    t0 = time.monotonic()
    wait_for(lambda: time.monotonic() > t0 + 2.2, "two seconds", timeout=10)
    status, headers, _ = site.fetch(url)
    assert status == 404 and negative(headers), headers
    assert origin.counts["/nightly/missing.img"] == 1
