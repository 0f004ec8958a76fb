"""What a scenario of a tier (issue 54, docs/CLUSTER.md "Sites and tiers") looks at: what a
parent arca was asked by its children (its access log), what a child says of its parent (the
status's "parent", the metrics, the log's fallback line), each cache's Cache-Status member, and
a client that reads to the end and says whether its body was whole."""

import base64
import hashlib
import http.client
import re
import time
import urllib.parse
from dataclasses import dataclass

from conftest import wait_for

# what a child's ask of its parent carries as User-Agent
CHILD_AGENT = "arca/"
REASONS = ("refused", "status", "loop", "cut", "digest", "lie", "down", "credentials")

ACCESS_LINE = re.compile(r'"GET (\S+) HTTP/1\.[01]" (\d{3}) (\S+) "[^"]*" "([^"]*)" (\S+)')


@dataclass
class Asked:
    """One fetch line of an arca's access log."""

    url: str  # the url= asked (percent-decoded)
    status: int
    size: int  # body bytes sent
    agent: str
    result: str  # HIT, MISS, CUT, ...


def access_lines(arca):
    """The fetch requests in `arca`'s access log (its .access_log)."""
    out = []
    with open(arca.access_log) as f:
        for line in f:
            m = ACCESS_LINE.search(line)
            if not m or not m.group(1).startswith("/api/v1/fetch/"):
                continue
            query = urllib.parse.urlsplit(m.group(1)).query
            url = urllib.parse.parse_qs(query).get("url", [""])[0]
            out.append(Asked(url, int(m.group(2)), int(m.group(3)) if m.group(3).isdigit() else 0,
                             m.group(4), m.group(5)))
    return out


def asked_by_children(parent, url=None, at_least=0, timeout=5):
    """The fetch requests `parent` had from child arcas (their User-Agent), of `url` when given.
    A line is written once its answer is over, a moment after the child has it: with
    `at_least`, wait for that many (up to `timeout` s; fewer are returned after it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [a for a in access_lines(parent) if a.agent.startswith(CHILD_AGENT)
                 and (url is None or a.url == url)]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def parent_row(child, index=0):
    """The child's status entry of its parent: url, from, state, down_since, failures,
    requests, bytes, hits, fallbacks by reason."""
    doc = child.status()
    assert doc.get("parent"), f"the status says no parent: {doc.get('parent')!r}"
    return doc["parent"]["parents"][index]


def fallbacks(child, index=0):
    return parent_row(child, index)["fallbacks"]


def wait_fallback(child, reason, count=1, timeout=10):
    """Until the child's status counts `count` fallbacks for `reason`; its row then."""
    def counted():
        row = parent_row(child)
        return row if row["fallbacks"][reason] >= count else None
    return wait_for(counted, f"{count} fallback(s) for {reason!r} in the child's status",
                    timeout)


def logged_fallback(child, reason):
    """Whether the child logged a fallback to the origin for `reason` (parent.c's line)."""
    return child.log_shows(f"parent failed ({reason}:")


def fallback_metric(child, parent_url, reason):
    return child.metrics().get(
        f'arca_parent_fallbacks_total{{parent="{parent_url}",reason="{reason}"}}', 0)


def members(headers):
    """The Cache-Status members of an answer, in order (the farthest cache's first)."""
    return [m.strip() for m in headers.get("cache-status", "").split(",") if m.strip()]


def ttl_of(member):
    """The ttl= of one Cache-Status member (None: none)."""
    m = re.search(r"; ttl=(-?\d+)", member)
    return int(m.group(1)) if m else None


def repr_digest(data):
    """The Repr-Digest a complete object of these bytes carries."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def full_fetch(arca, url, headers=None, timeout=30, **params):
    """(status, headers, body, complete) of one fetch read to its end: complete is False when
    the body was cut before its declared end (Content-Length short, or chunked without its
    last chunk)."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=timeout)
    try:
        conn.request("GET", arca.fetch_path(url, **params), headers=headers or {})
        resp = conn.getresponse()
        got = {k.lower(): v for k, v in resp.getheaders()}
        try:
            body, complete = resp.read(), True
        except http.client.IncompleteRead as e:
            body, complete = e.partial, False
        except (ConnectionResetError, TimeoutError):
            body, complete = b"", False
        return resp.status, got, body, complete
    finally:
        conn.close()


def fetch_like_curl(arca, url, tries=3, **params):
    """A client that asks again when its body is cut (curl --retry): (status, headers, body of
    the last answer, the cut bodies before it). A body cut is what a child does to its clients
    when what it streamed from its parent proves wrong: never a whole wrong body."""
    cuts = []
    for _ in range(tries):
        status, headers, body, complete = full_fetch(arca, url, **params)
        if complete:
            return status, headers, body, cuts
        cuts.append(body)
    raise AssertionError(f"{url}: cut {tries} times")
