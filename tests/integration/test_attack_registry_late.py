"""An outside attacker of the registry mirror's late changes (issue 60, docs/SECURITY.md's
registry section): a manifest by digest answered from a tag's bytes of the same repository."""

import json
import os
import subprocess

from conftest import ARCA_BIN

import registry as reg

from registry import (assert_registry_error, build_image, scripted,  # noqa: F401
                      start_mirror, v2)

NAME = "registry.lab"


def test_a_repository_named_a_manifests_x_is_no_twin_of_repository_a(
        start_arca, scripted, workdir):
    """`manifests` is a valid path component, so repository `team/manifests/x`'s tag URL
    (`/v2/team/manifests/x/manifests/v1`) starts with repository `team`'s manifests/ prefix.
    A client asking `team`'s manifest by that digest must not get `team/manifests/x`'s bytes
    unasked: the upstream says `team` lacks it (404)."""
    up = scripted()
    image = up.add("team/manifests/x", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    up.add("team/real", build_image(os.path.join(workdir, "j"), [4096], "v2"))
    arca = start_mirror(start_arca, {NAME: up.url})
    a = v2(arca, f"{NAME}/team/manifests/x/manifests/v1", headers=reg.manifest_headers())
    assert a.status == 200 and a.body == image.manifest.data, (a.status, a.body[:200])

    a = v2(arca, f"{NAME}/team/manifests/{image.manifest.digest}",
           headers=reg.manifest_headers())
    assert image.manifest.data not in a.body, a.status
    assert_registry_error(a, 404, "MANIFEST_UNKNOWN")
    assert up.gets(f"/v2/team/manifests/{image.manifest.digest}") == 1


def test_a_stranger_learns_no_configured_host_port_from_ns_refusals(start_arca, workdir):
    """?ns= now finds a registry by its URL's host[:port] too. A stranger (outside
    --allow-network, whose /v2/ path is read because a rule could let it in) probes
    host:port forms: the configured one, a neighbour port, its default-port, bracketed,
    upper-case, trailing-dot, userinfo, path and %-encoded spellings. Each gets the same
    refusal, so the lab's upstream addresses stay its own, and nothing is dialled."""
    config = reg.write_config(os.path.join(workdir, "arca.ini"),
                              ("rule open", {"match": "http://127.0.0.1:1/open/",
                                             "allow-network": "127.0.0.0/8"}))
    arca = start_mirror(start_arca, {NAME: "http://127.0.0.1:9"}, "--allow-network",
                        "10.0.0.0/8", "--ui-network", "10.0.0.0/8", config=config)
    seen = set()
    for ns in ("127.0.0.1:9", "127.0.0.1:10", "127.0.0.1", "127.0.0.1:80", "[127.0.0.1]:9",
               "127.0.0.1.:9", "u@127.0.0.1:9", "127.0.0.1:9/x", "127.0.0.1%3a9", "LOCALHOST:9",
               "::1", "[::1]:9", ""):
        a = v2(arca, "team/app/manifests/1", "GET", ns=ns)
        assert a.status == 403, (ns, a.status, a.body[:200])
        seen.add((a.status, a.body, a.headers.get("arca-error")))
    assert len(seen) == 1, seen


def test_a_manifest_answered_whole_still_takes_head_range_and_http_1_0(
        start_arca, scripted, workdir):
    """A manifest is answered only once complete now: a cold HEAD by tag, a cold Range by
    digest, and an HTTP/1.0 client each get a registry's answer, and the digest's own URL
    is then the tag's bytes (the upstream asked for the tag's manifest once)."""
    import socket
    up = scripted()
    image = up.add("team/app", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    m = image.manifest
    arca = start_mirror(start_arca, {NAME: up.url})
    head = v2(arca, f"{NAME}/team/app/manifests/v1", "HEAD", reg.manifest_headers())
    assert head.status == 200 and int(head.headers["content-length"]) == m.size, head
    assert head.headers["docker-content-digest"] == m.digest
    part = v2(arca, f"{NAME}/team/app/manifests/{m.digest}",
              headers=reg.manifest_headers() | {"Range": "bytes=0-9"})
    assert part.status in (200, 206), part.status
    assert part.body == (m.data[:10] if part.status == 206 else m.data), part.body[:40]
    with socket.create_connection((arca.host, arca.port), timeout=10) as s:
        s.sendall(f"GET /v2/{NAME}/team/app/manifests/v1 HTTP/1.0\r\n"
                  f"Accept: {reg.ACCEPT_ALL}\r\n\r\n".encode())
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    head_part, _, body = got.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.") and b" 200 " in head_part.split(b"\r\n")[0], got[:200]
    assert body == m.data
    assert up.gets(f"/v2/team/app/manifests/{m.digest}") == 0


def test_rules_test_of_a_tag_s_url_names_the_registry_tag_ttl_as_serve_applies_it():
    """`arca rules test` takes a URL or an image reference. Given a configured registry's
    manifest URL by tag, it must say the ttl serve gives it (--registry-tag-ttl, 1m), as it
    does for the image reference; by digest --default-ttl; a rule's ttl wins over both."""
    def ttl_of(*args):
        p = subprocess.run([ARCA_BIN, "rules", "test", "--json", "--registry",
                            "lab=http://127.0.0.1:5000", *args], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 0, (args, p.stderr)
        t = json.loads(p.stdout)["terms"]["ttl"]
        return t["value"], t["from"]
    digest = "sha256:" + "a" * 64
    for what in ("lab/team/app:v1", "http://127.0.0.1:5000/v2/team/app/manifests/v1",
                 "docker.io/library/debian:12",
                 "https://registry-1.docker.io/v2/library/debian/manifests/12"):
        value, source = ttl_of(what)
        assert value == 60 and "--registry-tag-ttl" in source, (what, value, source)
    for what in (f"lab/team/app@{digest}", f"http://127.0.0.1:5000/v2/team/app/manifests/{digest}"):
        value, source = ttl_of(what)
        assert value != 60 and "--default-ttl" in source, (what, value, source)


def test_clients_leaving_while_a_manifest_is_held_whole_leave_nothing_behind(
        start_arca, scripted, workdir):
    """A manifest is held until complete now: clients that hang up while a slow upstream
    sends it leave no parked request behind; the download ends, is kept, and the next
    client (by tag and by digest) gets it whole with one GET upstream."""
    import socket
    from conftest import wait_for
    up = scripted()
    image = up.add("team/app", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    m = image.manifest
    up.rate = max(1, m.size // 2)  # two seconds for the manifest's body
    arca = start_mirror(start_arca, {NAME: up.url})
    for _ in range(5):
        s = socket.create_connection((arca.host, arca.port), timeout=10)
        s.sendall(f"GET /v2/{NAME}/team/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n"
                  f"Accept: {reg.ACCEPT_ALL}\r\n\r\n".encode())
        s.close()
    wait_for(lambda: up.gets("/v2/team/app/manifests/v1") >= 1, "the download started")
    up.rate = 0
    a = v2(arca, f"{NAME}/team/app/manifests/v1", headers=reg.manifest_headers(), timeout=20)
    assert a.status == 200 and a.body == m.data, (a.status, a.body[:200])
    d = v2(arca, f"{NAME}/team/app/manifests/{m.digest}", headers=reg.manifest_headers())
    assert d.status == 200 and d.body == m.data
    assert up.gets("/v2/team/app/manifests/v1") == 1
    assert up.gets(f"/v2/team/app/manifests/{m.digest}") == 0
    wait_for(lambda: arca.status()["resources_downloading"] == 0, "no download left")


def test_a_client_a_rule_refuses_the_tag_gets_no_digest_from_the_tag_s_bytes(
        start_arca, scripted, workdir):
    """A rule lets only 127.0.0.2 fetch team/app's tag URL. That client pulls the tag; a
    client at 127.0.0.1 then asks the manifest by its digest (a URL no rule refuses it): the
    tag's bytes are not its twin (the client may not fetch that URL), so the upstream is asked
    for the digest's own URL, and its 404 is the client's answer."""
    import http.client
    up = scripted()
    image = up.add("team/app", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    m = image.manifest
    config = reg.write_config(os.path.join(workdir, "arca.ini"),
                              ("rule tag", {"match": f"{up.url}/v2/team/app/manifests/v1",
                                            "allow-network": "127.0.0.2/32"}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=10,
                                      source_address=("127.0.0.2", 0))
    conn.request("GET", f"/v2/{NAME}/team/app/manifests/v1", headers=reg.manifest_headers())
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == m.data
    conn.close()
    refused = v2(arca, f"{NAME}/team/app/manifests/v1", headers=reg.manifest_headers())
    assert refused.status == 403, refused.status
    up.repos["team/app"]["manifests"].pop(m.digest)  # the upstream no longer gives the digest
    a = v2(arca, f"{NAME}/team/app/manifests/{m.digest}", headers=reg.manifest_headers())
    assert m.data not in a.body, a.status
    assert a.status == 404, a.status
    assert up.gets(f"/v2/team/app/manifests/{m.digest}") == 1


def test_a_manifest_a_rule_keeps_not_is_still_answered_whole(start_arca, scripted, workdir):
    """A rule says `store = no` for the registry's URLs: a manifest held until complete must
    still be answered (by tag, by digest, GET and HEAD), each from the upstream, not hang."""
    up = scripted()
    image = up.add("team/app", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    m = image.manifest
    config = reg.write_config(os.path.join(workdir, "arca.ini"),
                              ("rule nostore", {"match": f"{up.url}/v2/", "store": "no"}))
    arca = start_mirror(start_arca, {NAME: up.url}, config=config)
    for ref in ("v1", m.digest, "v1", m.digest):
        for method in ("GET", "HEAD"):
            a = v2(arca, f"{NAME}/team/app/manifests/{ref}", method, reg.manifest_headers(),
                   timeout=10)
            assert a.status == 200 and a.complete, (ref, method, a.status)
            assert method == "HEAD" or a.body == m.data, (ref, a.body[:100])
            assert a.headers["docker-content-digest"] == m.digest
