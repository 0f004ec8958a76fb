"""A stranger learns nothing of arca's parent nor of its upstreams' addresses (issue 67, item 6;
docs/SECURITY.md "Who may fetch").

A client's rights are judged before anything about its URL is said: a stranger (outside
--allow-network and --ui-network) asking for `?url=http://<parent>/` gets the refusal it gets
for any URL, never "the URL names this arca's parent http://...". And upstream's own words
(curl's "Failed to connect to HOST port P", a parent's reason) go only to the clients that
may read the parents' names in the status already: a stranger let in by an open rule gets
one generic line with the same status; arca's log keeps the full reason.

The stranger is an address a --trusted-proxy names in X-Forwarded-For (TEST-NET-3, a header
only: nothing is sent there); a board is 127.0.0.1 itself, inside the default networks."""

import socket

from test_rules import config  # noqa: F401 (a fixture: the scenario's INI file)
from test_rules import proxied, rule, write
from test_signed import add_signed, s3_url

STRANGER = {"X-Forwarded-For": "203.0.113.9"}  # outside the default networks and --ui-network
ARCA = ("upstream-allow = 127.0.0.0/8", "trusted-proxy = 127.0.0.1",
        "download-retries = 0")
CURL_WORDS = (b"Failed to connect", b"Couldn't connect", b"Connection refused")


def prefixed(arca, url, headers=None):
    return arca.fetch(url, headers=headers)


def answer_text(headers, body):
    """What a client reads of an answer: its body and every header line, as bytes."""
    return body + "".join(f"{k}: {v}\n" for k, v in headers.items()).encode()


def assert_unnamed(port, headers, body):
    """Nothing of the upstream's address, port or curl's words in an answer."""
    seen = answer_text(headers, body)
    assert str(port).encode() not in seen and b"127.0.0.1" not in seen, seen
    assert not any(w in seen for w in CURL_WORDS), seen


def open_rule(origin, match=None):
    """A rule that lets everybody fetch its prefix: strangers too."""
    return rule("open", match or origin.url("/pub/"), "allow-network = 0.0.0.0/0, ::/0")


def test_a_stranger_asking_for_the_parents_url_gets_the_refusal_of_any_url(
        origin, start_arca, config):
    """A rule opens /pub/ to everybody, so strangers get past --allow-network to their URL's
    terms. A stranger names the parent's place: it was told "the URL names this arca's parent
    http://127.0.0.1:PORT" (the parent check ran before the client check). Now it gets what it
    gets for any URL no rule opens to it, status and body, through the prefix and the proxy;
    a board still gets the parent refusal, which names the parent."""
    central = start_arca("--upstream-allow", "127.0.0.0/8", name="central")
    write(config, open_rule(origin), arca=ARCA)
    site = start_arca("--config", config, "--parent", central.base, name="site")
    port = str(central.port).encode()
    for get in (prefixed, proxied):
        other = get(site, origin.url("/private/fw.bin"), STRANGER)
        assert other[0] == 403, (get.__name__, other)
        for url in (f"{central.base}/", f"{central.base}/api/v1/fetch/?url={origin.url('/x')}",
                    f"http://127.0.0.1:{central.port}/anything"):
            status, headers, body = get(site, url, STRANGER)
            assert (status, body) == (other[0], other[2]), (get.__name__, url, status, body)
            assert b"parent" not in body and port not in answer_text(headers, body), \
                (get.__name__, url, body)
        status, _, body = get(site, f"{central.base}/", None)  # a board: its own words
        assert status == 403 and b"names this arca's parent" in body and port in body, body


def test_a_stranger_under_a_catch_all_open_rule_is_not_told_the_parents_url(
        origin, start_arca, config):
    """`match = *` opens every URL to everybody: the stranger may ask for the parent's place,
    which is refused (a parent is never an origin), but in words that do not name the parent:
    the parent's URL is for the clients that read it in the status."""
    central = start_arca("--upstream-allow", "127.0.0.0/8", name="central")
    write(config, open_rule(origin, "*"), arca=ARCA)
    site = start_arca("--config", config, "--parent", central.base, name="site")
    port = str(central.port).encode()
    for get in (prefixed, proxied):
        status, headers, body = get(site, f"{central.base}/", STRANGER)
        assert status == 403, (get.__name__, status, body)
        assert b"parent" not in body and port not in answer_text(headers, body), \
            (get.__name__, body)
        status, _, body = get(site, f"{central.base}/", None)
        assert status == 403 and b"names this arca's parent" in body and port in body, body


def test_a_failing_parents_words_do_not_reach_a_stranger(origin, start_arca, config,
                                                         refused_port):
    """--parent-only with a parent on a closed port: a download answers 502 with the parent's
    failure. A stranger under the open rule read "parent failed after 1 attempt in 0.0 s:
    Failed to connect to 127.0.0.1 port P": the parent's address. Now it reads a generic line,
    same status, nothing of the parent's host or port in body or headers; a board reads the
    full words; arca's log keeps them. Once the parent is held down (3 failures), the
    stranger's 503 does not name it either."""
    port = refused_port
    url = origin.add("/pub/a.bin", data=b"x" * 1000)
    write(config, open_rule(origin), arca=ARCA)
    site = start_arca("--config", config, "--parent", f"http://127.0.0.1:{port}",
                      "--parent-only", name="site")
    for get in (prefixed, proxied):
        status, headers, body = get(site, url, STRANGER)
        assert status == 502, (get.__name__, status, body)
        assert_unnamed(port, headers, body)
        assert body.endswith(b": the parent could not be reached\n"), body
    status, _, body = prefixed(site, url, None)  # a board: the parent's own words
    assert status in (502, 503) and str(port).encode() in body, body
    assert site.log_shows(f"port {port}")
    for get in (prefixed, proxied):  # held down now (or probed again: a 502)
        status, headers, body = get(site, url, STRANGER)
        assert status in (502, 503), (get.__name__, status, body)
        assert_unnamed(port, headers, body)
        if status == 503:
            assert b"held down" in body and headers.get("retry-after"), (headers, body)
    assert origin.counts.get("/pub/a.bin", 0) == 0


def test_a_failing_origins_words_do_not_reach_a_stranger(origin, start_arca, config,
                                                         refused_port):
    """No parent; an open rule over a host whose port is closed: the stranger reads that the
    upstream could not be reached (502), never curl's words; a board reads them."""
    port = refused_port
    write(config, rule("open", f"http://127.0.0.1:{port}/", "allow-network = 0.0.0.0/0, ::/0"),
          arca=ARCA)
    site = start_arca("--config", config, name="site")
    url = f"http://127.0.0.1:{port}/pub/a.bin"
    for get in (prefixed, proxied):
        status, headers, body = get(site, url, STRANGER)
        assert status == 502, (get.__name__, status, body)
        assert_unnamed(port, headers, body)
        assert body.endswith(b": the upstream could not be reached\n"), body
    status, _, body = prefixed(site, url, None)
    assert status in (502, 503) and str(port).encode() in body, body


def test_a_failed_confirmation_does_not_tell_a_stranger_the_origins_words(
        origin, start_arca, config):
    """A signed object cached; its origin gone. A stranger under the open rule asking with
    another signature is confirmed first: the probe fails, and the stranger reads that the
    upstream could not be reached (502), the same whether the object was cached or not; a
    board reads curl's words."""
    write(config, rule("open", origin.url("/bucket/"), "allow-network = 0.0.0.0/0, ::/0"),
          arca=ARCA)
    site = start_arca("--config", config, name="site")
    data = add_signed(origin)
    assert site.fetch(s3_url(origin, nonce="good"))[2] == data
    origin.die()
    cached = site.fetch(s3_url(origin, nonce="evil", forge=True), STRANGER)
    uncached = site.fetch(s3_url(origin, "/bucket/other", nonce="evil", forge=True), STRANGER)
    for status, headers, body in (cached, uncached):
        assert status == 502, (status, body)
        assert_unnamed(origin.port, headers, body)
        assert body.endswith(b": the upstream could not be reached\n"), body
    status, _, body = site.fetch(s3_url(origin, nonce="evil2", forge=True))
    assert status in (502, 503) and str(origin.port).encode() in body, body


def test_a_redirect_refused_is_not_shown_to_a_stranger(origin, start_arca, config):
    """/pub/go redirects into /private/, which another rule keeps to the boards: the download
    is refused (403) for anyone, a redirect never leaving its rule's networks. A board reads
    where it led; the stranger the open rule lets in reads a refusal, not the origin's
    Location."""
    origin.add("/private/fw.bin", data=b"f" * 1000)
    go = origin.add("/pub/go", redirect=origin.url("/private/fw.bin"))
    write(config, open_rule(origin),
          rule("private", origin.url("/private/"), "allow-network = 10.0.0.0/8"), arca=ARCA)
    site = start_arca("--config", config, name="site")
    for get in (prefixed, proxied):
        status, headers, body = get(site, go, STRANGER)
        assert status == 403 and body == b"the download was refused\n", (get.__name__, body)
        assert b"private" not in answer_text(headers, body), (get.__name__, headers, body)
        status, _, body = get(site, go, None)
        assert status == 403 and b"redirected to" in body and b"private" in body, body
    assert origin.counts.get("/private/fw.bin", 0) == 0


def test_a_strangers_tunnel_to_the_parent_is_refused_as_any_tunnel(origin, start_arca, config):
    """CONNECT is for --allow-network's clients only (a rule never opens a tunnel): a stranger's
    CONNECT to the parent's place is refused as one to any other place, the parent unnamed."""
    central = start_arca("--upstream-allow", "127.0.0.0/8", name="central")
    write(config, open_rule(origin),
          arca=ARCA + (f"connect-port = {central.port}", f"connect-port = {origin.port}"))
    site = start_arca("--config", config, "--parent", central.base, name="site")
    answers = []
    for target in (f"127.0.0.1:{central.port}", f"127.0.0.1:{origin.port}"):
        with socket.create_connection((site.host, site.port), timeout=10) as s:
            s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: x\r\n"
                      f"X-Forwarded-For: 203.0.113.9\r\n\r\n".encode())
            answer = b""
            while True:
                got = s.recv(4096)
                if not got:
                    break
                answer += got
        answers.append(answer.split(b"\r\n", 1)[0] + b"\n" + answer.split(b"\r\n\r\n", 1)[-1])
    assert answers[0] == answers[1] and answers[0].startswith(b"HTTP/1.1 403"), answers
    assert b"parent" not in answers[0] and str(central.port).encode() not in answers[0], answers
