"""What arca says of a registry (issue 68's new-user review; docs/REGISTRY.md "Credentials",
"When the upstream limits or fails", "Visible"): a refused login is the client's `401` (or
`403`) `DENIED` naming the registry and its password-file, basic auth or token realm alike,
and one error line in the log however many pulls meet it; a registry's hold is said once when
it starts, not as an error line per stale answer or refusal meanwhile; `arca status` and the
statistics page count its 429s among the held down; a failure names the registry (`registry
NAME: failed after …`), before a restart and after; the registry's counters count each
upstream refusal once and a revalidation only when its HEAD went."""

import os
import subprocess
import time

import pytest

import registry as reg
from conftest import ARCA_BIN, wait_clock, wait_for
from registry import (Puller, build_image, scripted, start_mirror, v2,  # noqa: F401
                      write_config)

NAME = "registry.lab"
USER = "lab-bot"
PASSWORD = "pw-Qv7Lm2Xc9Rt4Hs8"
WRONG = "pw-wrongWrong5521"


def entry(arca):
    return reg.registry_entry(arca, NAME)


def error_lines(arca, since=0):
    """arca's log lines at level error, past the first `since` characters."""
    return [x for x in arca.read_log()[since:].splitlines() if x.split(" ")[1:2] == ["error"]]


def refusals(up):
    """The upstream's refusals, of the registry and of its realm: a 4xx but 404 and a 5xx; a
    401 to a request with no Authorization is a challenge, not a refusal."""
    return [r for r in up.requests() + up.token_requests()
            if r.status >= 400 and r.status != 404 and
            not (r.status == 401 and "authorization" not in r.headers)]


def mirror_with_login(start_arca, up, workdir, password):
    return reg.mirror_with_login(start_arca, up, workdir, NAME, USER, password)


@pytest.mark.parametrize("auth,refusal", [("basic", 401), ("basic", 403), ("token", 401)])
def test_a_refused_login_is_denied_naming_the_registry_and_its_file(start_arca, scripted,
                                                                     workdir, auth, refusal):
    """A basic-auth registry refusing arca's login answers the client as a token realm
    refusing it does: its status (401, or 403 for a 403), DENIED, one line naming the
    registry and the password-file; never 502 UNAVAILABLE, which reads as an outage."""
    up = scripted(auth=auth, users={USER: PASSWORD})
    up.basic_refusal = refusal
    up.add("team/app", build_image(os.path.join(workdir, "a"), [4096], "v1"))
    arca, path = mirror_with_login(start_arca, up, workdir, WRONG)
    a = v2(arca, f"{NAME}/team/app/manifests/v1", headers=reg.manifest_headers())
    reg.assert_registry_error(a, refusal, "DENIED")
    said = a.headers["arca-error"]
    verb = "refused the login of" if refusal == 401 else "denied access to the login of"
    assert said.startswith(f"registry {NAME}") and \
        said.endswith(f" {verb} password-file {path} ({refusal})"), said
    assert a.json()["errors"][0]["message"] == said
    p = reg.skopeo("inspect", "--tls-verify=false",
                   f"docker://{arca.host}:{arca.port}/{NAME}/team/app:v1", check=False)
    # skopeo shows the registry's message (of a 502 it said only "unexpected HTTP status")
    assert p.returncode != 0 and "denied: " + said in p.stderr, p.stderr


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_a_refused_login_is_one_error_line_and_each_refusal_counted_once(start_arca, scripted,
                                                                         workdir, auth):
    """Five pulls meet the refused login: one error line in the log (when it is first
    refused), not one per pull; each pull asks the registry once (the same login is not sent
    again), and its `refused` counts each of the upstream's refusals once."""
    up = scripted(auth=auth, users={USER: PASSWORD})
    up.add("team/app", build_image(os.path.join(workdir, "a"), [4096], "v1"))
    arca, path = mirror_with_login(start_arca, up, workdir, WRONG)
    for n in range(5):
        wait_clock(int(time.time()) + 1.5)  # the realm's refusal is shared for a second
        a = v2(arca, f"{NAME}/team/app/manifests/v{n}", headers=reg.manifest_headers())
        assert a.status == 401, (a.status, a.body[:300])
    wait_for(lambda: entry(arca)["requests"] == 5, "the five requests counted")
    errors = wait_for(lambda: error_lines(arca), "the refusal's line in the log")
    assert len(errors) == 1 and path in errors[0] and NAME in errors[0], errors
    if auth == "basic":
        asked = [r for r in up.requests() if "/manifests/" in r.path]
        assert len(asked) == 5, [(r.path, r.status) for r in asked]
    assert entry(arca)["refused"] == len(refusals(up)), (entry(arca), len(refusals(up)))


def five_tags(start_arca, scripted, workdir):
    """Five tags of one repository pulled through arca, fresh 1 s then stale for an hour
    after: (upstream, images, arca)."""
    up = scripted()
    images = [up.add("library/demo", build_image(os.path.join(workdir, f"i{n}"), [4096],
                                                 f"v{n}")) for n in range(5)]
    config = write_config(os.path.join(workdir, "arca.ini"),
                          ("rule tags", {"match": f"{up.url}/v2/library/demo/manifests/",
                                         "ttl": "1s", "stale-if-error": "1h"}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    for image in images:
        got, _ = Puller(arca.base, prefix=NAME).pull("library/demo", image.tag)
        assert sorted(got) == sorted(b.digest for b in image.blobs())
    return up, images, arca


def test_a_hold_is_said_once_not_an_error_per_stale_answer(start_arca, scripted, workdir):
    """The registry answers 429 (Retry-After: 3600): five expired tags asked during its hold
    answer stale. The hold is said once, as it starts (a warning); no error line for any of the
    stale answers nor for the refusal of what is not kept; `revalidated` counts the one HEAD
    that went, not the four that met the hold; `arca status` and the statistics page count the
    held refusal among the held down, saying 429 beside 503."""
    up, images, arca = five_tags(start_arca, scripted, workdir)
    wait_clock(int(time.time()) + 2)  # every tag's 1 s is over
    revalidated, heads = entry(arca)["revalidated"], up.count("HEAD", None)
    since = len(arca.read_log())
    up.throttled, up.retry_after = True, "3600"
    for image in images:
        a = v2(arca, f"{NAME}/library/demo/manifests/{image.tag}",
               headers=reg.manifest_headers())
        assert a.status == 200 and a.body == image.manifest.data, (a.status, a.body[:300])
        assert "fwd=stale" in a.headers.get("cache-status", ""), a.headers
    a = v2(arca, f"{NAME}/library/demo/manifests/never-kept")
    reg.assert_registry_error(a, 429, "TOOMANYREQUESTS")
    assert up.count("HEAD", None) == heads + 1
    wait_for(lambda: entry(arca)["stale"] >= 5, "the stale answers counted")
    assert entry(arca)["revalidated"] == revalidated + 1, entry(arca)
    log = arca.read_log()[since:]
    assert [x for x in log.splitlines() if "held until" in x and " warning " in x], log
    assert error_lines(arca, since) == [], error_lines(arca, since)

    out = subprocess.run([ARCA_BIN, "status", "--server", arca.base], capture_output=True,
                         text=True, timeout=10).stdout
    assert "0 clients not allowed to fetch (403), 1 held down (503/429)" in out, out
    page = arca.get("/statistics/")[2].decode()
    assert "held down (503/429)" in page and "held down (503)" not in page


def test_a_genuine_failure_is_still_an_error_line(start_arca, scripted, workdir):
    """A download that fails (the registry answering 500 to an expired tag, no hold) is an
    error line each time: only what was said once is not repeated."""
    up, images, arca = five_tags(start_arca, scripted, workdir)
    wait_clock(int(time.time()) + 2)
    since = len(arca.read_log())
    up.failing = 500
    for image in images[:2]:
        a = v2(arca, f"{NAME}/library/demo/manifests/{image.tag}",
               headers=reg.manifest_headers())
        assert a.status == 200 and "fwd=stale" in a.headers.get("cache-status", "")
    errors = wait_for(lambda: len(error_lines(arca, since)) >= 2 and error_lines(arca, since),
                      "an error line per failed refresh")
    assert all("answered 500" in x for x in errors), errors


def failure_of(arca, tag):
    a = v2(arca, f"{NAME}/library/demo/manifests/{tag}", headers=reg.manifest_headers())
    assert a.status in (502, 503, 504), (a.status, a.body[:300])
    return a.headers["arca-error"]


def test_a_failure_names_the_registry_before_and_after_a_restart(start_arca, scripted,
                                                                  workdir):
    """The registry is down: what it never sent fails naming it (`registry NAME: failed after
    N attempts in S s: …`, as the rest of its messages name it, never "registry failed", which
    reads as arca failing), the same after a restart (when arca asks the registry's /v2/
    first), in the client's Arca-Error and the log alike."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    Puller(arca.base, prefix=NAME).pull("library/demo", image.tag)
    up.go_down()
    lead = f"registry {NAME}: failed after "
    before = failure_of(arca, "v2")
    assert before.startswith(lead), before
    arca.stop()
    arca.start()
    after = failure_of(arca, "v3")
    assert after.startswith(lead), after
    # the log is written after the answer: waited for, not read at once
    lines = wait_for(lambda: len(x := [y for y in error_lines(arca) if "/manifests/v" in y]) >= 2
                     and x, "both failures in the log")
    assert len(lines) == 2 and all(lead in x for x in lines), lines
    assert "registry failed" not in arca.read_log()


def test_a_503_without_retry_after_names_the_registry(start_arca, scripted, workdir):
    up = scripted()
    up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    up.failing = 503
    said = failure_of(arca, "v2")
    assert said.startswith(f"registry {NAME}: failed after ") and \
        said.endswith(" s: upstream answered 503"), said
