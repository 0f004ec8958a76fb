"""A digest hit holds every rule (issue 58, docs/SECURITY.md "Shared objects and digests"): a
request with &sha256= for a URL not cached is answered from another URL's object only when this
client may fetch that object's own URL (its terms decided for this client, as a request for it
would be), and never from an object downloaded with credentials of any kind (a bucket arca signs
for included). Digests are public (SHA256SUMS, job definitions, build logs): a digest is no
credential, through the prefix, the proxy, a bucket or a site."""

import http.client
import os
import signal

import pytest

from conftest import one_request, sha256, wait_for
from s3 import ACCESS, S3, SECRET

BOARD = "127.0.0.2"  # a lab board: rule private's allow-network names it alone
OUTSIDER = "127.0.0.1"  # another client of the lab: in --allow-network, not in the rule's
SIZE = 200_000


def ask(arca, target, source):
    """(status, headers, body) of one GET of `target` (a path, or a URL in proxy form) sent from
    the loopback address `source`: two clients of one arca told apart by their addresses."""
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30,
                                      source_address=(source, 0))
    return one_request(conn, "GET", target, cut_is_partial=True)


def prefixed(arca, url, source, **params):
    return ask(arca, arca.fetch_path(url, **params), source)


def proxied(arca, url, source, **params):
    """As a client with http_proxy=arca asks: a plain URL in proxy form, and a prefix URL (the
    only way to give a digest) as a proxy-form target naming arca itself."""
    if not params:
        return ask(arca, url, source)
    return ask(arca, f"http://{arca.host}:{arca.port}" + arca.fetch_path(url, **params), source)


def digest_hits(arca):
    return arca.metrics()["arca_digest_hits_total"]


def full_gets(origin, path):
    return sum(1 for p, h in origin.requests if p == path and h.get("Range") != "bytes=0-0")


def not_the_secret(answer, secret):
    """A digest request for a URL whose own bytes are not the secret: never the secret, whole or
    in part. Its own bytes are downloaded instead, and their digest is not the one given: 502
    when they are complete before the answer begins, else a body cut before its end."""
    status, _, body = answer
    leaked = secret[:4096] in body or sha256(body) == sha256(secret)
    assert not leaked, f"the secret came back: {status}, {len(body)} bytes"
    assert status == 502 or (status == 200 and len(body) < len(secret)), (status, len(body))


def write_ini(path, *sections, arca=()):
    text = "[arca]\nupstream-allow = 127.0.0.0/8\n" + "".join(line + "\n" for line in arca)
    text += "".join("\n" + s for s in sections)
    with open(path, "w") as f:
        f.write(text)
    return path


def private_rule(origin, *more):
    return (f"[rule private]\nmatch = {origin.url('/private/')}\n"
            f"allow-network = {BOARD}/32\n" + "".join(line + "\n" for line in more))


def reload(arca):
    before = arca.read_log().count("SIGHUP: reloaded")
    arca.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: arca.read_log().count("SIGHUP: reloaded") > before, "the reload", 5)


@pytest.fixture
def lab(origin, start_arca, workdir):
    """A lab's arca whose rule `private` lets the board alone fetch /private/, and pins what it
    keeps; the board has fetched the firmware there. (arca, firmware bytes, firmware URL)."""
    firmware = os.urandom(SIZE)
    fw = origin.add("/private/fw.bin", data=firmware)
    arca = start_arca("--config", write_ini(os.path.join(workdir, "lab.ini"),
                                            private_rule(origin, "pin = yes")))
    status, _, body = prefixed(arca, fw, BOARD)
    assert status == 200 and body == firmware
    return arca, firmware, fw


@pytest.mark.parametrize("get", [prefixed, proxied], ids=["prefix", "proxy"])
def test_a_digest_never_hands_a_rules_private_object_to_a_client_the_rule_refuses(
        lab, origin, get):
    """The outside review's finding: the outsider, refused 403 on the firmware's URL, asked
    ?sha256=<its digest>&url=<any URL answering 2xx> and got the firmware whole (digest-hit)."""
    arca, firmware, fw = lab
    status, _, body = get(arca, fw, OUTSIDER)
    assert status == 403 and firmware[:4096] not in body
    own = os.urandom(SIZE)  # the outsider's own file, of the firmware's length
    mine = origin.add("/pub/mine.bin", data=own)
    not_the_secret(get(arca, mine, OUTSIDER, sha256=sha256(firmware)), firmware)
    assert digest_hits(arca) == 0
    # its own URL is its own file: downloaded, served as itself
    status, _, body = get(arca, mine, OUTSIDER)
    assert status == 200 and body == own
    # the board, which the rule lets in, still gets the firmware by its digest: one confirming
    # request of the URL it gives, no download (the hit the outsider must not have)
    theirs = origin.add("/pub/board.bin", data=os.urandom(SIZE))
    status, headers, body = get(arca, theirs, BOARD, sha256=sha256(firmware))
    assert status == 200 and body == firmware
    assert digest_hits(arca) == 1 and full_gets(origin, "/pub/board.bin") == 0
    # a digest hit acts on nothing of its twin: the firmware is still the rule's, pinned
    assert arca.status()["pinned_objects"] == 1


def test_a_restart_between_the_fetch_and_the_digest_changes_nothing(lab, origin):
    """The objects come back from the index: who may fetch is decided at each digest hit from
    the twin's URL, nothing to lose in a restart."""
    arca, firmware, fw = lab
    arca.stop()
    arca.start()
    not_the_secret(prefixed(arca, origin.add("/pub/mine.bin", data=os.urandom(SIZE)), OUTSIDER,
                            sha256=sha256(firmware)), firmware)
    status, _, body = prefixed(arca, origin.add("/pub/board.bin", data=os.urandom(SIZE)), BOARD,
                               sha256=sha256(firmware))
    assert status == 200 and body == firmware and digest_hits(arca) == 1
    assert arca.status()["pinned_objects"] == 1


def test_a_public_twin_answers_when_a_private_one_is_found_first(lab, origin):
    """The same bytes under a public URL too: the digest index holds both, the private one met
    first (the newest is first on its chain); the outsider may have the public one, so the hit
    is taken from it, not refused."""
    arca, firmware, fw = lab
    public = origin.add("/pub/fw-copy.bin", data=firmware)
    assert prefixed(arca, public, OUTSIDER)[2] == firmware
    # the private copy fetched again after the public one: the newest object of that digest
    origin.add("/private/fw2.bin", data=firmware)
    assert prefixed(arca, origin.url("/private/fw2.bin"), BOARD)[2] == firmware
    status, _, body = prefixed(arca, origin.add("/pub/mine.bin", data=os.urandom(SIZE)),
                               OUTSIDER, sha256=sha256(firmware))
    assert status == 200 and body == firmware and digest_hits(arca) == 1
    assert full_gets(origin, "/pub/mine.bin") == 0


def test_a_rule_narrowed_by_sighup_holds_for_objects_cached_before(origin, start_arca, workdir):
    """The firmware was cached while no rule covered it; a SIGHUP then narrows its prefix: the
    outsider's digest hit is decided under the rules in force, not those of the download."""
    firmware = os.urandom(SIZE)
    fw = origin.add("/private/fw.bin", data=firmware)
    ini = os.path.join(workdir, "lab.ini")
    arca = start_arca("--config", write_ini(ini))
    assert prefixed(arca, fw, BOARD)[2] == firmware
    write_ini(ini, private_rule(origin))
    reload(arca)
    assert prefixed(arca, fw, OUTSIDER)[0] == 403
    not_the_secret(prefixed(arca, origin.add("/pub/mine.bin", data=os.urandom(SIZE)), OUTSIDER,
                            sha256=sha256(firmware)), firmware)
    assert digest_hits(arca) == 0


def test_an_object_its_rule_says_not_to_keep_answers_no_digest(origin, start_arca, workdir):
    """A rule `store = no` set by SIGHUP over an object cached before: the object is no longer
    kept (its next lookup removes it), so it answers no other URL either."""
    index = os.urandom(SIZE)
    url = origin.add("/dists/InRelease", data=index)
    ini = os.path.join(workdir, "lab.ini")
    arca = start_arca("--config", write_ini(ini))
    assert prefixed(arca, url, OUTSIDER)[2] == index
    write_ini(ini, f"[rule index]\nmatch = {origin.url('/dists/')}\nstore = no\n")
    reload(arca)
    not_the_secret(prefixed(arca, origin.add("/pub/mine.bin", data=os.urandom(SIZE)), OUTSIDER,
                            sha256=sha256(index)), index)
    assert digest_hits(arca) == 0


def test_a_digest_hit_holds_the_size_its_own_urls_rule_allows(origin, start_arca, workdir):
    """Rule dtbs lets no object under it be over 1 MiB. A 2 MiB file is cached elsewhere; a URL
    under dtbs answering 2 MiB gets no digest hit from it (its rule's size holds: 413, as its
    own download is refused), while a URL outside the rule does."""
    data = os.urandom(2 << 20)
    huge = origin.add("/images/huge.img", data=data)
    arca = start_arca("--config", write_ini(
        os.path.join(workdir, "lab.ini"),
        f"[rule dtbs]\nmatch = {origin.url('/dtbs/')}\nmax-object-size = 1M\n"))
    assert prefixed(arca, huge, OUTSIDER)[2] == data
    status, _, body = prefixed(arca, origin.add("/dtbs/huge.dtb", data=os.urandom(2 << 20)),
                               OUTSIDER, sha256=sha256(data))
    assert status == 413 and data[:4096] not in body and digest_hits(arca) == 0
    status, _, body = prefixed(arca, origin.add("/images/other.img", data=os.urandom(2 << 20)),
                               OUTSIDER, sha256=sha256(data))
    assert status == 200 and body == data and digest_hits(arca) == 1


# --- a bucket arca signs for --------------------------------------------------------------------

MEMBER = "127.0.0.1"  # in --allow-network: browses the bucket (and reads arca's status)
STRANGER = "127.0.0.3"  # outside it: may only fetch what rule `public` opens


@pytest.fixture
def s3():
    server = S3(buckets=["lab"])
    yield server
    server.stop()


def bucket_ini(workdir, s3, origin, bucket=True):
    """--allow-network names the member alone; rule public opens one origin's /pub/ to all
    (a stranger's own server, as far as arca knows)."""
    creds = os.path.join(workdir, "s3.creds")
    with open(creds, "w") as f:
        f.write(f"{ACCESS}\n{SECRET}\n")
    sections = [f"[rule public]\nmatch = {origin.url('/pub/')}\nallow-network = all\n"]
    if bucket:
        sections.append(f"[bucket lab]\nurl = {s3.url('lab')}\ncredentials = {creds}\n")
    return write_ini(os.path.join(workdir, "arca.ini"), *sections,
                     arca=(f"allow-network = {MEMBER}/32",))


def test_a_bucket_file_is_never_another_urls_twin(start_arca, workdir, s3, origin):
    """The outside review's second finding: no rule at all, a [bucket] arca signs for. A
    stranger refused on /browse/lab/... asked ?sha256=<the file's digest>&url=<its own server>
    and got the private file: the signature is in headers, not in the URL, so the object counted
    as shareable. A file under a bucket arca signs for answers no other URL, for anyone, and
    that holds after a restart; once the bucket is dropped from the configuration, the rules
    still keep the file from the stranger."""
    secret = os.urandom(SIZE)
    s3.put("lab", "fw/secret.bin", secret)
    arca = start_arca("--config", bucket_ini(workdir, s3, origin))
    status, _, body = ask(arca, "/browse/lab/fw/secret.bin", MEMBER)
    assert status == 200 and body == secret
    status, _, body = ask(arca, "/browse/lab/fw/secret.bin", STRANGER)
    assert status == 403 and secret[:4096] not in body
    # a public twin still answers, so a digest hit is possible here (the control)
    shared = os.urandom(SIZE)
    assert prefixed(arca, origin.add("/pub/tool.bin", data=shared), STRANGER)[2] == shared
    status, _, body = prefixed(arca, origin.add("/pub/tool-copy.bin", data=os.urandom(SIZE)),
                               STRANGER, sha256=sha256(shared))
    assert status == 200 and body == shared and digest_hits(arca) == 1

    asked = [0]

    def nobody_gets_it(who):
        asked[0] += 1
        url = origin.add(f"/pub/mine-{asked[0]}.bin", data=os.urandom(SIZE))
        not_the_secret(prefixed(arca, url, who, sha256=sha256(secret)), secret)

    for who in (STRANGER, MEMBER):  # the member may browse it, but by its own URL only
        nobody_gets_it(who)
    arca.stop()  # the object comes back from the index: still under the bucket's URL
    arca.start()
    for who in (STRANGER, MEMBER):
        nobody_gets_it(who)
    assert digest_hits(arca) == 1
    # the bucket taken out of the configuration: its files are cached URLs like any, a digest
    # answers from one only to a client that may fetch its URL, and the stranger may not
    arca.stop()
    arca.args[arca.args.index("--config") + 1] = bucket_ini(workdir, s3, origin, bucket=False)
    arca.start()
    nobody_gets_it(STRANGER)
    assert digest_hits(arca) == 1


# --- a site with --parent ---------------------------------------------------------------------


def test_a_sites_own_digest_hit_holds_the_sites_rule(origin, start_tier, workdir):
    """The rule is the site's, the parent has none: the board fetched the firmware through the
    site, which keeps it; the outsider at the site gets no digest hit from it (a site never
    sends sha256= on to its parent: this is the site's own), the board does."""
    firmware = os.urandom(SIZE)
    fw = origin.add("/private/fw.bin", data=firmware)
    ini = write_ini(os.path.join(workdir, "site.ini"), private_rule(origin))
    parent, (site,) = start_tier(1, "--config", ini)
    status, _, body = prefixed(site, fw, BOARD)
    assert status == 200 and body == firmware
    assert prefixed(site, fw, OUTSIDER)[0] == 403
    not_the_secret(prefixed(site, origin.add("/pub/mine.bin", data=os.urandom(SIZE)), OUTSIDER,
                            sha256=sha256(firmware)), firmware)
    assert digest_hits(site) == 0
    status, _, body = prefixed(site, origin.add("/pub/board.bin", data=os.urandom(SIZE)), BOARD,
                               sha256=sha256(firmware))
    assert status == 200 and body == firmware and digest_hits(site) == 1
