"""Negative answers kept briefly: `--negative-ttl DURATION` and a rule's `negative-ttl` keep a 404
or 410 from upstream for that long (off unless set), answered by arca with `Cache-Status: arca;
hit; ttl=N; detail=negative`, upstream not asked again within it. Never a 5xx, never past the
ttl, never for (nor to) a URL with credentials; through a parent tier the parent's 404 is kept
at the site the same way."""

import json
import os
import time
import urllib.parse

from conftest import ARCA_BIN, wait_for
from test_admin import TOKEN, token_file
from test_rules import rules_test
from tier import members

NEGATIVE = "arca; hit; ttl="


def negative(headers):
    """Whether the answer came from a kept negative answer (arca's own member says so)."""
    own = members(headers)[-1] if members(headers) else ""
    return own.startswith(NEGATIVE) and own.endswith("; detail=negative")


def test_a_404_is_kept_for_its_ttl_and_upstream_is_not_asked_again(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--negative-ttl", "3s")
    url = origin.url("/nightly/missing.img")
    status, headers, body = arca.fetch(url)
    assert status == 404 and members(headers) == ["arca; fwd=uri-miss"]
    t0 = time.monotonic()
    for _ in range(3):
        status, headers, again = arca.fetch(url)
        assert status == 404 and negative(headers), headers
        assert again == body  # the same one-line reason
    assert origin.counts["/nightly/missing.img"] == 1
    ttl = int(members(headers)[-1].split("ttl=")[1].split(";")[0])
    assert 0 < ttl <= 3
    # the file appears; never answered past the ttl: the origin is asked once it ran out
    origin.add("/nightly/missing.img", data=b"now here")
    wait_for(lambda: arca.fetch(url)[0] == 200, "the ttl to run out", timeout=10, every=0.2)
    assert time.monotonic() - t0 >= 2
    assert origin.counts["/nightly/missing.img"] == 2
    assert arca.fetch(url)[2] == b"now here" and origin.counts["/nightly/missing.img"] == 2


def test_a_410_is_kept_and_errors_are_not(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--negative-ttl", "1m",
                      "--origin-failures", "0")
    origin.add("/gone", status=410)
    for status in (500, 503, 403):
        origin.add(f"/e{status}", status=status)
    for _ in range(2):
        assert arca.fetch(origin.url("/gone"))[0] == 410
    assert origin.counts["/gone"] == 1
    for status in (500, 503, 403):
        for _ in range(2):
            code, headers, _ = arca.fetch(origin.url(f"/e{status}"))
            assert not negative(headers), (status, headers)
        assert origin.counts[f"/e{status}"] >= 2, status  # asked each time (a 5xx: retried too)


def test_off_unless_set(origin, arca):
    url = origin.url("/missing")
    for _ in range(3):
        status, headers, _ = arca.fetch(url)
        assert status == 404 and not negative(headers)
    assert origin.counts["/missing"] == 3


def test_never_for_nor_to_a_url_with_credentials(origin, start_arca):
    """A signed URL's 404 (its key is the bare URL) is never kept; a bare URL's kept 404 never
    answers a signed one, which upstream may well serve; userinfo and a token are credentials
    too."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--negative-ttl", "1m")
    path = "/bucket/private.img"
    signed = origin.url(path) + "?X-Amz-Signature=abcdef0123456789&X-Amz-Expires=600"
    for _ in range(2):
        status, headers, _ = arca.fetch(signed)
        assert status == 404 and not negative(headers)
    assert origin.counts[path] == 2
    # the bare URL's 404 is kept...
    assert arca.fetch(origin.url(path))[0] == 404
    assert negative(arca.fetch(origin.url(path))[1]) and origin.counts[path] == 3
    # ...and hides nothing from a signed request: upstream serves it to that one
    origin.add(path, data=b"private", check=lambda q: None if "X-Amz-Signature" in q else 404)
    status, _, body = arca.fetch(signed)
    assert status == 200 and body == b"private" and origin.counts[path] == 4
    for creds in (f"http://user:pw@{origin.host}:{origin.port}/u.img",
                  origin.url("/t.img") + "?token=0123456789abcdef"):
        for _ in range(2):
            assert not negative(arca.fetch(creds)[1]), creds
    assert origin.counts["/u.img"] == 2 and origin.counts["/t.img"] == 2


def test_never_for_a_parameter_the_key_rules_strip(origin, start_arca):
    """A parameter --key-rules leaves out of the key only signs the URL: a credential."""
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--negative-ttl", "1m",
                      "--key-rules", f"{origin.host}=grant")
    url = origin.url("/k.img") + "?grant=abc123"
    for _ in range(2):
        status, headers, _ = arca.fetch(url)
        assert status == 404 and not negative(headers)
    assert origin.counts["/k.img"] == 2


def ini(workdir, origin, *lines):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\n"
                f"admin-token-file = {token_file(workdir)}\n\n"
                f"[rule nightly]\nmatch = {origin.url('/nightly/')}\n" +
                "".join(line + "\n" for line in lines))
    return path


def test_a_rules_negative_ttl_and_the_rules_test(origin, start_arca, workdir):
    config = ini(workdir, origin, "negative-ttl = 1m")
    arca = start_arca("--config", config)
    for path in ("/nightly/a", "/release/a"):
        for _ in range(2):
            assert arca.fetch(origin.url(path))[0] == 404
    assert origin.counts["/nightly/a"] == 1 and origin.counts["/release/a"] == 2
    term = rules_test(config, origin.url("/nightly/a"))["terms"]["negative-ttl"]
    assert term == {"value": 60, "from": "rule nightly"}
    term = rules_test(config, origin.url("/release/a"))["terms"]["negative-ttl"]
    assert term == {"value": 0, "from": "--negative-ttl"}
    term = rules_test(config, origin.url("/nightly/a") + "?X-Amz-Signature=abc")["terms"]
    assert term["negative-ttl"]["value"] == 0 and "credentials" in term["negative-ttl"]["note"]
    import subprocess
    out = subprocess.run([ARCA_BIN, "rules", "test", "--config", config, origin.url("/nightly/a")],
                         capture_output=True, text=True, timeout=10).stdout
    assert any(line.split()[:3] == ["negative-ttl", "1m", "rule"] for line in out.splitlines()), out
    # a purge drops a kept negative answer as it drops an object
    headers = {"Authorization": f"Bearer {TOKEN}"}
    query = urllib.parse.urlencode({"url": origin.url("/nightly/a")})
    assert arca.get(f"/api/v1/resources/?{query}", headers, method="DELETE")[0] == 200
    assert not negative(arca.fetch(origin.url("/nightly/a"))[1])
    assert origin.counts["/nightly/a"] == 2
    assert negative(arca.fetch(origin.url("/nightly/a"))[1])
    query = urllib.parse.urlencode({"prefix": origin.url("/nightly/")})
    code, _, body = arca.get(f"/api/v1/purge/?{query}", headers, method="POST")
    assert code == 200 and json.loads(body)["purged"] == 0
    assert json.loads(body)["negative_answers"] == 1
    assert not negative(arca.fetch(origin.url("/nightly/a"))[1])
    assert origin.counts["/nightly/a"] == 3
    # the command line says so too
    assert negative(arca.fetch(origin.url("/nightly/a"))[1])
    out = subprocess.run([ARCA_BIN, "purge", "--server", arca.base, "--admin-token-file",
                          token_file(workdir), "--prefix", origin.url("/nightly/")],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "; 1 kept 404s dropped" in out.stdout, out


def test_a_bad_negative_ttl_is_refused(origin, workdir):
    import subprocess
    for args, said in ((["--negative-ttl", "soon"], "--negative-ttl"),
                       (["--negative-ttl", "2d"], "--negative-ttl")):
        out = subprocess.run([ARCA_BIN, "check-config", *args], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode != 0 and said in out.stderr and out.stderr.count("\n") == 1, \
            out.stderr
    out = subprocess.run([ARCA_BIN, "check-config", "--config",
                          ini(workdir, origin, "negative-ttl = 2d")],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 1 and "negative-ttl" in out.stderr and "0..1d" in out.stderr, \
        out.stderr


def test_through_a_parent_the_parents_404_is_kept_at_the_site(origin, start_tier):
    parent, children = start_tier(2, "--negative-ttl", "1m", parent_args=("--negative-ttl", "1m"))
    url = origin.url("/nightly/none.img")
    status, headers, _ = children[0].fetch(url)
    assert status == 404 and origin.counts["/nightly/none.img"] == 1
    # the site answers from its own kept answer: neither the parent nor the origin asked
    status, headers, _ = children[0].fetch(url)
    assert status == 404 and negative(headers)
    # another site asks the parent, which answers from its kept answer
    status, headers, _ = children[1].fetch(url)
    assert status == 404 and origin.counts["/nightly/none.img"] == 1
    assert negative(children[1].fetch(url)[1])
    assert origin.counts["/nightly/none.img"] == 1
    assert parent.metrics()['arca_requests_total{result="error"}'] == 2


def test_sighup_applies_a_new_negative_ttl(origin, start_arca, workdir):
    """--negative-ttl is reloaded as --default-ttl is: off, then 1m after a SIGHUP."""
    path = os.path.join(workdir, "reload.ini")
    with open(path, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\nnegative-ttl = 0\n")
    arca = start_arca("--config", path)
    url = origin.url("/gone/x")
    for _ in range(2):
        assert arca.fetch(url)[0] == 404
    assert origin.counts["/gone/x"] == 2  # off: each 404 asked upstream
    with open(path, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\nnegative-ttl = 1m\n")
    arca.reload("SIGHUP: reloaded")
    assert arca.fetch(url)[0] == 404
    status, headers, _ = arca.fetch(url)
    assert status == 404 and negative(headers), headers
    assert origin.counts["/gone/x"] == 3
