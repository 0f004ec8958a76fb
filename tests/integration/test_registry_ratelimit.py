"""A registry's rate limit is respected, not retried (issue 68, item 2; docs/REGISTRY.md, "When
the upstream limits or fails"). A 429 (or a 503 with Retry-After) from the registry, its /v2/
ping or its token realm holds that registry for what its Retry-After asks, at most
--registry-hold-max: the 429 reaches its client at once (one request upstream, no retries);
during the hold nothing is asked of the registry nor of its realm, what is kept answers (an
expired tag stale, said so), the rest gets 429 TOOMANYREQUESTS at once with the Retry-After
left; when the hold ends one request goes, whatever the clients waiting. The log says the hold
when it starts, and so do the status JSON and `arca status`."""

import concurrent.futures
import calendar
import os
import re
import subprocess
import time

import registry as reg
from conftest import ARCA_BIN, wait_clock, wait_for
from registry import Puller, build_image, scripted, start_mirror, v2, write_config  # noqa: F401

NAME = "registry.lab"


def mirrored(start_arca, scripted, workdir, *more, auth="token"):
    """An image pulled once through arca by its tag (fresh 1 s, stale for an hour after):
    (upstream, image, arca)."""
    up = scripted(auth=auth)
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536, 90_000],
                                               "v1"))
    config = write_config(os.path.join(workdir, "arca.ini"),
                          ("rule tag", {"match": f"{up.url}/v2/library/demo/manifests/v1",
                                        "ttl": "1s", "stale-if-error": "1h"}))
    arca = start_mirror(start_arca, {NAME: up.url}, *more, config=config,
                        access_log=os.path.join(workdir, "access.log"))
    got, _ = Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    return up, image, arca


def asked(up):
    """Every request the upstream had: the registry's, its realm's, its CDN's."""
    return up.total()


def refused_at_once(a, most):
    """A 429 TOOMANYREQUESTS in the registry's words, its Retry-After at most `most` s."""
    reg.assert_registry_error(a, 429, "TOOMANYREQUESTS")
    assert 0 < int(a.headers["retry-after"]) <= most, a.headers


def entry(arca):
    return arca.status()["registries"][0]


def held_until(arca):
    """The wall-clock second the status says the registry's hold ends (it must say one)."""
    e = entry(arca)
    assert e.get("held_until"), e
    return calendar.timegm(time.strptime(e["held_until"], "%Y-%m-%dT%H:%M:%SZ"))


def test_a_429_holds_the_registry_kept_content_answers_the_rest_429_at_once(
        start_arca, scripted, workdir):
    up, image, arca = mirrored(start_arca, scripted, workdir)
    wait_clock(int(time.time()) + 2)  # the tag's 1 s is over
    up.throttled, up.retry_after = True, "3600"
    path = "/v2/library/demo/manifests/v2"
    a = v2(arca, f"{NAME}/library/demo/manifests/v2", headers=reg.manifest_headers())
    refused_at_once(a, 600)  # cut to the default --registry-hold-max, 10m
    assert up.gets(path) == 1, up.gets(path)  # not retried
    before = asked(up)

    # twenty more clients: not kept, each 429 at once, nothing asked upstream nor of the realm
    for n in range(5):
        refused_at_once(v2(arca, f"{NAME}/library/demo/manifests/x{n}"), 600)
        refused_at_once(v2(arca, f"{NAME}/team/other{n}/manifests/v1"), 600)  # a new scope
        refused_at_once(v2(arca, f"{NAME}/library/demo/blobs/sha256:{n:064x}"), 600)
        refused_at_once(v2(arca, f"{NAME}/library/demo/tags/list"), 600)
    status, headers, _ = arca.fetch(f"{up.url}/v2/library/demo/manifests/v3")
    assert status == 429 and 0 < int(headers["retry-after"]) <= 600, (status, headers)
    a = reg.request(arca.host, arca.port, "GET", f"{up.url}/v2/library/demo/manifests/v4")
    assert a.status == 429 and 0 < int(a.headers["retry-after"]) <= 600, (a.status, a.headers)
    assert asked(up) == before

    # kept content answers: blobs from the store, the manifest by digest from the bytes its tag
    # brought, the tag stale
    for blob in image.blobs():
        b = v2(arca, f"{NAME}/library/demo/blobs/{blob.digest}")
        assert b.status == 200 and reg.digest_of(b.body) == blob.digest, (b.status, b.body)
    m = v2(arca, f"{NAME}/library/demo/manifests/{image.manifest.digest}",
           headers=reg.manifest_headers())
    assert m.status == 200 and m.body == image.manifest.data
    t = v2(arca, f"{NAME}/library/demo/manifests/v1", headers=reg.manifest_headers())
    assert t.status == 200 and t.body == image.manifest.data, (t.status, t.body[:300])
    assert "fwd=stale" in t.headers.get("cache-status", ""), t.headers
    assert asked(up) == before

    # said: one line in the log, the status JSON and `arca status`
    lines = [line for line in arca.read_log().splitlines() if "asked of it meanwhile" in line]
    assert len(lines) == 1 and NAME in lines[0] and "held until" in lines[0], lines
    assert "429" in lines[0], lines
    assert held_until(arca) <= time.time() + 601
    assert "429" in entry(arca)["hold"], entry(arca)
    p = subprocess.run([ARCA_BIN, "status", "--server", arca.base], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and "held until" in p.stdout, p.stdout

    def stale_logged():
        with open(arca.access_log) as f:
            return any("library/demo/manifests/v1" in line and "STALE" in line for line in f)

    wait_for(stale_logged, "the stale tag's line in the access log")


def test_the_hold_ends_at_registry_hold_max_then_one_request_goes(start_arca, scripted,
                                                                  workdir):
    """Retry-After: 3600 cut to --registry-hold-max 2s: the hold ends about 2 s later, and one
    request goes then, however many clients ask at that moment; still limited, it holds the
    registry again; answering, the pulls go on."""
    up, image, arca = mirrored(start_arca, scripted, workdir, "--registry-hold-max", "2s")
    up.throttled, up.retry_after = True, "3600"
    refused_at_once(v2(arca, f"{NAME}/library/demo/manifests/v2"), 2)
    first = asked(up)
    wait_clock(held_until(arca) + 1, timeout=10)

    def ask_ten():
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            return list(pool.map(lambda n: v2(arca, f"{NAME}/library/demo/manifests/y{n}"),
                                 range(10)))

    answers = ask_ten()  # the hold is over: one of them is the one request
    assert all(a.status == 429 for a in answers), [a.status for a in answers]
    assert asked(up) == first + 1, [(r.server, r.path) for r in up.requests()[-12:]]
    answers = ask_ten()  # limited again: held again, nothing asked
    assert all(a.status == 429 for a in answers), [a.status for a in answers]
    assert asked(up) == first + 1

    up.throttled = False
    wait_clock(held_until(arca) + 1, timeout=10)
    got, _ = Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    wait_for(lambda: not entry(arca).get("held_until"), "the hold no longer shown")


def test_a_realm_answering_429_holds_its_registry(start_arca, scripted, workdir):
    """The token realm's 429 is the registry's limit: the client gets it at once, and nothing
    more is asked of the registry or its realm during the hold."""
    up = scripted(auth="token")
    up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    up.realm_throttled, up.retry_after = True, "120"
    refused_at_once(v2(arca, f"{NAME}/library/demo/manifests/v1"), 120)
    assert len(up.token_requests()) == 1, len(up.token_requests())
    before = asked(up)
    for n in range(10):
        refused_at_once(v2(arca, f"{NAME}/library/demo/manifests/v1"), 120)
        refused_at_once(v2(arca, f"{NAME}/team/app{n}/manifests/v1"), 120)
    assert asked(up) == before
    assert "429" in entry(arca)["hold"], entry(arca)


def test_a_503_with_retry_after_holds_one_without_is_retried_as_before(start_arca, scripted,
                                                                         workdir):
    up, _, arca = mirrored(start_arca, scripted, workdir, auth=None)
    # without Retry-After: an outage as before, retried, and asked again by the next request
    up.failing = 503
    path = "/v2/library/demo/manifests/v2"
    a = v2(arca, f"{NAME}/library/demo/manifests/v2")
    assert a.status in (502, 503) and "retry-after" not in a.headers, (a.status, a.headers)
    retried = up.gets(path)
    assert retried >= 2, retried
    assert v2(arca, f"{NAME}/library/demo/manifests/v2").status in (502, 503)
    assert up.gets(path) > retried
    assert not entry(arca).get("held_until"), entry(arca)
    # with one (an HTTP-date, a minute from now): held, the first client told at once
    up.failing = None
    up.throttled, up.throttle_status = True, 503
    up.retry_after = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    before = up.gets(path)
    a = v2(arca, f"{NAME}/library/demo/manifests/v2")
    assert a.status in (429, 503) and 0 < int(a.headers["retry-after"]) <= 61, (a.status,
                                                                                  a.headers)
    assert up.gets(path) == before + 1
    total = asked(up)
    for n in range(5):
        refused_at_once(v2(arca, f"{NAME}/library/demo/manifests/z{n}"), 61)
    assert asked(up) == total
    line = [x for x in arca.read_log().splitlines() if "asked of it meanwhile" in x]
    assert len(line) == 1 and "503" in line[0] and "held until" in line[0], line


def test_registry_hold_max_is_a_config_key_reloaded_by_sighup(start_arca, scripted, workdir):
    up = scripted()
    up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    config = os.path.join(workdir, "arca.ini")
    write_config(config, "registry-hold-max = 1h")
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    write_config(config, "registry-hold-max = 3s")
    arca.reload("SIGHUP: reloaded")
    up.throttled, up.retry_after = True, "3600"
    refused_at_once(v2(arca, f"{NAME}/library/demo/manifests/v1"), 3)
    assert "cut to --registry-hold-max 3 s" in entry(arca)["hold"], entry(arca)


def test_a_lower_registry_hold_max_at_sighup_shortens_a_running_hold(start_arca, scripted,
                                                                    workdir):
    """An admin who finds the registry held for an hour lowers registry-hold-max and sends
    SIGHUP: the running hold ends by the new cap from its start, said in the log and the
    status, and then one request goes upstream."""
    up = scripted()
    up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    config = os.path.join(workdir, "arca.ini")
    write_config(config, "registry-hold-max = 1h")
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    up.throttled, up.retry_after = True, "3600"
    refused_at_once(v2(arca, f"{NAME}/library/demo/manifests/v1"), 3600)
    assert "cut to" not in (entry(arca)["hold"] or "")
    write_config(config, "registry-hold-max = 2s")
    arca.reload("SIGHUP: reloaded")
    assert "cut to --registry-hold-max 2 s" in entry(arca)["hold"], entry(arca)
    assert arca.log_shows("now held until")
    up.throttled = False
    path = "/v2/library/demo/manifests/v1"
    before = up.gets(path)
    a = wait_for(lambda: (r := v2(arca, f"{NAME}/library/demo/manifests/v1")).status == 200 and r,
                 "the hold over by the new cap", timeout=15)
    assert a.status == 200 and up.gets(path) == before + 1, (up.gets(path), before)
