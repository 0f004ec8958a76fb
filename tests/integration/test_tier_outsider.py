"""What an outside review of the tier found (issue 54): a client's sha256= planting another
URL's bytes at a site through the parent's digest hit, a fill missing the digest of a parent's
copy completed meanwhile, lies that failed the object instead of going to the origin, long URLs
holding the parent down, a path-parameter credential sent to a plain parent, a ttl read inside
a quoted string. Each failed before its fix."""

import http.client
import os

import pytest

from conftest import sha256
from rawparent import RawParent, http_answer
from tier import fallbacks, full_fetch, parent_row, repr_digest


# --- F1: a client's sha256= plants another URL's bytes at the site ------------------------------


def test_f1_a_clients_sha256_plants_a_twin_at_the_site_through_the_parent(origin, start_tier):
    """docs/SECURITY.md "Shared objects and digests" (issue 22), through a tier. The attacker
    fetches its own file F (same length as the victim URL U) at site B, so the parent holds
    it; at site A it asks U&sha256=<F's>. The child passes sha256= on to the parent, which
    answers a digest hit (U confirmed by U's origin), and site A keeps F's bytes as U's object;
    a revalidation through the parent (304: the kept ETag is U's own) renews it."""
    size = 300_000
    real = os.urandom(size)
    evil = b"EVIL" * (size // 4)
    victim = origin.add("/lab/victim.img", data=real, etag='"real"')
    attacker = origin.add("/attacker/evil.img", data=evil, etag='"evil"')
    parent, (site_a, site_b) = start_tier(2)

    status, _, body, _ = full_fetch(site_b, attacker)
    assert status == 200 and body == evil
    status, headers, _, _ = full_fetch(site_a, victim, sha256=sha256(evil))
    print("attacker:", status, headers.get("cache-status"))

    status, headers, body, _ = full_fetch(site_a, victim)
    print("victim:", status, headers.get("cache-status"), body[:8])
    assert status == 200
    assert sha256(body) == sha256(real), "site A serves the attacker's bytes for the victim URL"


# --- F2: an honest parent, a fill, a slow site link ----------------------------------------------


def test_f2_a_fill_whose_last_piece_meets_the_parents_complete_copy(origin, start_tier):
    """The child's first ask meets the parent's download under way (chunked, digest promised as
    a trailer); the child fills in pieces over a slower link (--upstream-rate) and asks its
    last piece after the parent's copy is complete: that 206 carries Repr-Digest as a header,
    which fill.c never reads (only a piece's trailer). The child finds 'no Repr-Digest', cuts
    its client and downloads the object again from the origin."""
    size = 24 << 20
    data = os.urandom(size)
    url = origin.add("/lab/fill.img", data=data, etag='"f"', rate=24 << 20,
                     headers={"Accept-Ranges": "bytes"})
    parent, (child,) = start_tier(1, "--fill-connections", "4", "--fill-min-size", "1M",
                                  "--upstream-rate", "4M")
    status, _, body, complete = full_fetch(child, url, timeout=60)
    row = parent_row(child)
    print("child:", status, len(body), complete, row["fallbacks"],
          "origin requests:", origin.counts["/lab/fill.img"])
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert sum(row["fallbacks"].values()) == 0, row["fallbacks"]
    assert origin.counts["/lab/fill.img"] == 1


# --- F3: lies that fail the object instead of going to the origin --------------------------------

L = 1 << 20
DATA = os.urandom(L)


def _h(extra=()):
    return [("Content-Type", "application/octet-stream"), ("ETag", '"v1"'),
            ("Age", "0"), ("Cache-Status", "arca; hit; ttl=3600")] + list(extra)


LIES = {
    # the right digest in the head, another in the trailer: two digests, none believed
    "two-digests": lambda t, h, i: http_answer(
        206, _h([("Content-Range", f"bytes 0-{L-1}/{L}"), ("Repr-Digest", repr_digest(DATA)),
                 ("Trailer", "Repr-Digest")]), DATA, chunked=True,
        trailers=[b"Repr-Digest: " + repr_digest(b"other").encode()]),
    # a 304 to the child's first, unconditional, ask
    "304-unconditional": lambda t, h, i: http_answer(304, _h()),
    # a chunked 206 "bytes 0-(L-1)/L" that runs 1000 bytes past its total
    "chunked-past-total": lambda t, h, i: http_answer(
        206, _h([("Content-Range", f"bytes 0-{L-1}/{L}"), ("Trailer", "Repr-Digest")]),
        DATA + b"X" * 1000, chunked=True,
        trailers=[b"Repr-Digest: " + repr_digest(DATA).encode()]),
    # a 206 "bytes 0-(L-1)/L" whose Content-Length is half of it, digest of that half
    "short-206": lambda t, h, i: http_answer(
        206, _h([("Content-Range", f"bytes 0-{L-1}/{L}"), ("Content-Length", str(L // 2)),
                 ("Repr-Digest", repr_digest(DATA[:L // 2]))]), DATA[:L // 2]),
}


@pytest.mark.parametrize("mode", list(LIES))
def test_f3_a_lying_parent_is_passed_over_not_made_the_objects_failure(origin, start_arca, mode):
    url = origin.add("/lab/obj.img", data=DATA, etag='"v1"')
    p = RawParent(LIES[mode])
    try:
        child = start_arca("--upstream-allow", "127.0.0.0/8", "--parent", p.base,
                           "--stall-timeout", "2s", name="child")
        status, _, body, complete = full_fetch(child, url)
        if not complete:  # a lie found once its bytes streamed cuts them; the next is whole
            assert status == 200 and len(body) < L
            status, _, body, complete = full_fetch(child, url)
        print(mode, "->", status, len(body), complete, fallbacks(child),
              "origin:", origin.counts["/lab/obj.img"])
        assert status == 200 and complete and sha256(body) == sha256(DATA)
        assert origin.counts["/lab/obj.img"] == 1
        assert sum(fallbacks(child).values()) == 1
    finally:
        p.stop()


# --- F4: any client holds the parent down for the whole site -------------------------------------


def test_f4_three_long_urls_hold_the_parent_down_for_the_site(origin, start_tier):
    """The child percent-encodes every reserved byte of the client's URL: a URL of 4000 '/'
    fits the child's --max-url-length (8192) but not the parent's once encoded (12000). The
    parent's 414 carries no Cache-Status: 'the parent's own failure'. Three such requests (no
    server of the attacker's) and the site passes its parent over, doubling up to 60 s."""
    parent, (child,) = start_tier(1)
    origin.add("/lab/long", data=b"x" * 1000)
    for n in range(3):
        target = "/api/v1/fetch/?url=" + origin.url("/lab/long") + f"?n={n}&p=" + "/" * 4000
        conn = http.client.HTTPConnection(child.host, child.port, timeout=30)
        conn.request("GET", target)
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status == 200
    row = parent_row(child)
    print("parent row:", row["state"], row["failures"], row["fallbacks"])
    assert row["state"] == "up", row


# --- F5: a client's Via sends the site to the origin ---------------------------------------------


# --- F6: a path-parameter credential goes to a plain-http parent -------------------------------


def test_f6_a_session_id_path_parameter_never_reaches_a_plain_parent(origin, start_arca):
    """url_redact hides ';jsessionid=' in logs (a secret), but sources_credentials (through
    url_strip_secrets, query parameters only) does not see it: the URL goes whole to an
    http:// parent without --parent-trusted-http."""
    secret = "S3CR3TVALUE"
    origin.add("/p", data=b"x" * 100)
    url = origin.url("/p") + ";jsessionid=" + secret
    p = RawParent(lambda t, h, i: http_answer(503, []))
    try:
        child = start_arca("--upstream-allow", "127.0.0.0/8", "--parent", p.base, name="child")
        full_fetch(child, url)
        assert not any(secret in t for t, _ in p.asked), p.asked
        assert secret not in child.read_log()
    finally:
        p.stop()


# --- F7: the parent's ttl read inside a quoted string ----------------------------------------


@pytest.mark.parametrize("cs", ['arca; hit; detail="ttl=99999999"; ttl=5',
                                'arca; hit; ttl=5; detail="a, b"'])
def test_f7_the_parents_ttl_is_its_members_ttl_parameter(origin, start_arca, cs):
    url = origin.add("/lab/obj.img", data=DATA, etag='"v1"')
    p = RawParent(lambda t, h, i: http_answer(
        206, [("ETag", '"v1"'), ("Age", "0"), ("Cache-Status", cs),
              ("Content-Range", f"bytes 0-{L-1}/{L}"), ("Repr-Digest", repr_digest(DATA))], DATA))
    try:
        child = start_arca("--upstream-allow", "127.0.0.0/8", "--parent", p.base, name="child")
        status, headers, body, _ = full_fetch(child, url)
        assert status == 200 and body == DATA
        own = headers["cache-status"].split(", arca;")[-1]
        print(cs, "->", own)
        assert "ttl=5" in own or "ttl=4" in own, headers["cache-status"]
    finally:
        p.stop()


# --- answers that are no fault, and one that is too slow ---------------------------------------


def test_an_interim_answer_before_the_parents_is_no_fault(origin, start_arca):
    """A 103 Early Hints (any 1xx) comes before the final answer: the child waits for that."""
    url = origin.add("/lab/hints.img", data=DATA, etag='"v1"')
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    p = RawParent(lambda t, h, i: [early] + http_answer(
        206, _h([("Content-Range", f"bytes 0-{L-1}/{L}"), ("Repr-Digest", repr_digest(DATA))]),
        DATA))
    try:
        child = start_arca("--upstream-allow", "127.0.0.0/8", "--parent", p.base, name="child")
        status, _, body, complete = full_fetch(child, url)
        assert status == 200 and complete and sha256(body) == sha256(DATA)
        assert sum(fallbacks(child).values()) == 0 and origin.counts["/lab/hints.img"] == 0
    finally:
        p.stop()


def test_a_parent_trickling_bytes_is_passed_over(origin, start_arca):
    """Under 1 KiB/s for the parent's stall time (--stall-timeout 2s here, 15 s at most): the
    download goes to the origin, never held until --download-timeout."""
    url = origin.add("/lab/slow.img", data=DATA, etag='"v1"')
    head = http_answer(206, _h([("Content-Range", f"bytes 0-{L-1}/{L}"),
                                ("Content-Length", str(L))]))[0]
    p = RawParent(lambda t, h, i: [head] + [b"x" * 50, 0.2] * 600)
    try:
        child = start_arca("--upstream-allow", "127.0.0.0/8", "--parent", p.base,
                           "--stall-timeout", "2s", name="child")
        status, _, body, complete = full_fetch(child, url, timeout=30)
        if not complete:  # its clients had the trickle's first bytes: cut, then whole
            status, _, body, complete = full_fetch(child, url, timeout=30)
        assert status == 200 and complete and sha256(body) == sha256(DATA)
        # its trickle was not the origin's bytes: checked against the origin's first ones, they
        # went, and the origin's body was asked again from its first byte
        assert fallbacks(child).get("cut") == 1 and origin.counts["/lab/slow.img"] == 2
    finally:
        p.stop()


def test_a_parent_breaking_off_cuts_no_client(origin, start_arca):
    """The parent sends half the object, then its connection breaks (killed): the site asks
    the origin's whole body, checks its first half against what the parent sent, and streams
    on: its client never sees a cut, the object is the origin's."""
    url = origin.add("/lab/half.img", data=DATA, etag='"v1"')
    head = http_answer(206, _h([("Content-Range", f"bytes 0-{L-1}/{L}"),
                                ("Content-Length", str(L))]))[0]
    p = RawParent(lambda t, h, i: [head, DATA[:L // 2], 0.3])
    try:
        child = start_arca("--upstream-allow", "127.0.0.0/8", "--parent", p.base, name="child")
        status, _, body, complete = full_fetch(child, url, timeout=30)
        assert status == 200 and complete and sha256(body) == sha256(DATA)
        assert fallbacks(child).get("cut") == 1 and origin.counts["/lab/half.img"] == 1
        assert child.log_shows("its first bytes checked against the parent's")
    finally:
        p.stop()
