"""Attacks on a remote's paths (issue 69, docs/REMOTES.md "The paths"): a client spells a path
that leaves the remote's base in every way an upstream might read it (double escapes, `..;`,
backslashes, overlong UTF-8), names a host through `/+f/` that is no file host (userinfo,
`%40`, IPv6, ports, case, a trailing dot), uses `/+f/` on a remote that is not pypi to reach its
host outside the base, adds queries, methods, absolute-form targets. What a user sees: the
status, and the origin never asked for anything outside the remote's base (its request log)."""

import posixpath
import re
import socket
import urllib.parse

from conftest import sha256

BASE_DATA = b"inside the base\n" * 64
SECRET = b"outside the base: not through the remote\n" * 32


def raw(arca, target, method="GET", headers=()):
    """(status, body) of one request with `target` sent byte for byte (no client-side check or
    normalising); status 0 when arca closed without an answer."""
    head = f"{method} {target} HTTP/1.1\r\nHost: {arca.host}:{arca.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "Connection: close\r\n\r\n"
    with socket.create_connection((arca.host, arca.port), timeout=30) as s:
        s.sendall(head.encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(m.group(1)) if m else 0), data.partition(b"\r\n\r\n")[2]


def decoded_every_way(path):
    """`path` as the most lenient upstream could read it: percent-decoded until it stops
    changing, overlong UTF-8 dots and slashes read as such, backslashes as slashes, `;`
    parameters dropped, then its dot segments resolved."""
    p = path.encode("latin-1") if isinstance(path, str) else path
    for _ in range(5):
        q = urllib.parse.unquote_to_bytes(p)
        if q == p:
            break
        p = q
    for overlong, plain in ((b"\xc0\xae", b"."), (b"\xe0\x80\xae", b"."), (b"\xc0\xaf", b"/"),
                            (b"\xe0\x80\xaf", b"/"), (b"\xc1\x9c", b"\\")):
        p = p.replace(overlong, plain)
    p = p.replace(b"\\", b"/")
    p = b"/".join(seg.split(b";")[0] for seg in p.split(b"/"))
    return posixpath.normpath(p.decode("latin-1"))


def left_the_base(origin, base):
    """The targets the origin was asked that, read every way, are not under `base`."""
    return [t for t in origin.targets
            if not (decoded_every_way(t.split("?")[0]) + "/").startswith(base + "/")]


def start_remotes(start_arca, origin, *args):
    """A `files` remote at the origin's /repo, an `apt` one at /apt, a `go` one at /go and a
    `pypi` one at /pypi, all on the origin's one host."""
    origin.add("/repo/ok.bin", data=BASE_DATA)
    origin.add("/secret/file", data=SECRET)
    origin.add("/repo/sub/file", data=BASE_DATA)
    return start_arca("--upstream-allow", "127.0.0.0/8",
                      "--remote", f"files={origin.url('/repo')}",
                      "--remote", f"deb:apt={origin.url('/apt')}",
                      "--remote", f"gomod:go={origin.url('/go')}",
                      "--remote", f"py:pypi={origin.url('/pypi')}", *args)


TRAVERSALS = [
    "/files/../secret/file",
    "/files/%2e%2e/secret/file",
    "/files/.%2E/secret/file",
    "/files/sub/..%2f..%2fsecret/file",
    "/files/..;/secret/file",
    "/files/..;x=1/secret/file",
    "/files/.%3b/..%3b/secret/file",
    "/files/..\\secret\\file",
    "/files/sub\\..\\..\\secret/file",
    "/files/..%5csecret%5cfile",
    "/files/..%5Csecret/file",
    "/files//../secret/file",
    "/files/sub/../../secret/file",
    "/files/..",
    "/files/sub/..",
    # escaped twice: an upstream (or the proxy in front of it) that decodes again
    "/files/%252e%252e/secret/file",
    "/files/%252E%252E%252Fsecret%252Ffile",
    "/files/..%252f..%252fsecret/file",
    "/files/%25252e%25252e/secret/file",
    # ... past a long segment's first 256 bytes
    "/files/" + "A" * 300 + "%252f..%252f..%252fsecret/file",
    "/files/" + "%41" * 300 + "%252f..%252f..%252fsecret/file",
    "/files/" + "A" * 300 + "%25c0%25ae%25c0%25ae%252fsecret/file",
    # overlong UTF-8 for '.' and '/': never valid, read as dots by old decoders
    "/files/%c0%ae%c0%ae/secret/file",
    "/files/%c0%2e%c0%2e/secret/file",
    "/files/%e0%80%ae%e0%80%ae/secret/file",
    "/files/..%c0%afsecret/file",
    "/files/%c0%ae%c0%ae%c0%afsecret%c0%affile",
    # broken or control escapes
    "/files/%2e%2/secret",
    "/files/%u002e%u002e/secret/file",
    "/files/..%00/secret/file",
    "/files/..%09/secret/file",
]


def test_no_spelling_of_dot_dot_reaches_outside_the_remote_s_base(start_arca, origin):
    """Every spelling of `..` a lenient upstream would resolve is refused by arca (a 4xx), and
    the origin is never asked for a path that, read its way, leaves /repo; the base's own file
    still answers its bytes."""
    arca = start_remotes(start_arca, origin)
    status, body = raw(arca, "/files/ok.bin")
    assert (status, sha256(body)) == (200, sha256(BASE_DATA))
    answers = {t: raw(arca, t)[0] for t in TRAVERSALS}
    bad = {t: s for t, s in answers.items() if not 400 <= s < 500}
    assert not bad, bad
    assert left_the_base(origin, "/repo") == [], origin.targets
    assert origin.counts["/secret/file"] == 0


def test_proxy_form_targets_at_arca_itself_do_not_walk_a_remote(start_arca, origin):
    """An absolute-form target naming arca's own address is arca's own path (RFC 9112 3.2.2):
    its remote's file answers, and `..` in it is refused as in the origin-form; the origin is
    not asked outside the base."""
    arca = start_remotes(start_arca, origin)
    here = f"http://{arca.host}:{arca.port}"
    status, body = raw(arca, f"{here}/files/ok.bin")
    assert (status, body) == (200, BASE_DATA)
    for target in (f"{here}/files/../secret/file", f"{here}/files/%2e%2e/secret/file",
                   f"{here}/files/%252e%252e/secret/file", f"{here}/files/..\\secret"):
        status, _ = raw(arca, target)
        assert 400 <= status < 500, (target, status)
    assert left_the_base(origin, "/repo") == [], origin.targets


def test_plus_f_is_a_pypi_remote_s_alone(start_arca, origin):
    """`/+f/SCHEME/HOST/PATH` reaches the remote's host outside its base: what a pypi page's
    links need, and nothing another kind's clients ask. On a files, apt or go remote it is no
    way out of the base: never answered with a file outside it, never asked upstream there."""
    arca = start_remotes(start_arca, origin)
    host = f"127.0.0.1:{origin.port}"
    for name in ("files", "deb", "gomod"):
        for seg in ("+f", "%2Bf", "%2bf"):
            target = f"/{name}/{seg}/http/{host}/secret/file"
            status, body = raw(arca, target)
            assert status != 200 and body != SECRET, (target, status)
    assert origin.counts["/secret/file"] == 0, origin.targets


def test_plus_f_names_no_host_but_the_file_hosts(start_arca, origin):
    """A pypi remote's `/+f/` host segment spelt to reach another host (userinfo as is or
    escaped, another port, an IPv6 or decimal address, a trailing dot, a path or query or
    fragment hidden in it, another scheme) is refused 4xx and nothing is asked of the origin;
    its own host in capitals is its own host."""
    other = origin.port + 1 if origin.port < 65535 else origin.port - 1
    arca = start_remotes(start_arca, origin)
    host = f"127.0.0.1:{origin.port}"
    status, body = raw(arca, f"/py/+f/http/{host}/repo/ok.bin")
    assert (status, body) == (200, BASE_DATA)
    before = len(origin.targets)
    for seg in (f"{host}@127.0.0.2:{origin.port}", f"{host}%40127.0.0.2:{origin.port}",
                f"x%3Ay%40{host}", f"127.0.0.1:{other}", f"[::1]:{origin.port}",
                f"[::ffff:127.0.0.1]:{origin.port}", f"2130706433:{origin.port}",
                f"127.0.0.1.:{origin.port}", f"localhost:{origin.port}",
                f"{host}%2Fsecret%2Ffile%3F", f"{host}%23", f"{host}%3Fa=b",
                f"{host}%5C..", "", f"{host}:{origin.port}"):
        target = f"/py/+f/http/{seg}/secret/file"
        status, body = raw(arca, target)
        assert 400 <= status < 500, (target, status, body[:200])
    for scheme in ("ftp", "file", "gopher", "HTTP", "http%3A", ""):
        target = f"/py/+f/{scheme}/{host}/secret/file"
        status, body = raw(arca, target)
        assert 400 <= status < 500, (target, status, body[:200])
    assert origin.targets[before:] == [], origin.targets[before:]


def test_queries_methods_and_sha256(start_arca, origin):
    """A remote's query is arca's: sha256= alone. Anything else, repeated or besides it, is
    400 and not asked upstream; a wrong sha256 never answers the bytes whole; HEAD answers the
    headers of what GET answers, other methods 405."""
    arca = start_remotes(start_arca, origin)
    good = sha256(BASE_DATA)
    for q in (f"sha256={good}&x=1", f"x=1&sha256={good}", f"sha256={good}&sha256={good}",
              "x=1", "sha256=", f"sha256={good[:-1]}", f"sha256={good}0", f"sha256={good};x",
              f"SHA256={good}", f"sha256={good}%26x=1"):
        status, _ = raw(arca, f"/files/ok.bin?{q}")
        assert status == 400, (q, status)
    assert origin.counts["/repo/ok.bin"] == 0
    status, body = raw(arca, f"/files/ok.bin?sha256={good}")
    assert (status, body) == (200, BASE_DATA)
    status, body = raw(arca, f"/files/ok.bin?sha256={'0' * 64}")
    assert not (status == 200 and body == BASE_DATA), status
    status, body = raw(arca, "/files/ok.bin", method="HEAD")
    assert (status, body) == (200, b"")
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"):
        status, _ = raw(arca, "/files/ok.bin", method=method, headers=[("Content-Length", "0")])
        assert status == 405, (method, status)
    assert origin.counts["/repo/ok.bin"] == 1, origin.targets
