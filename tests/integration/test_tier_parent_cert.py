"""A site's certificate for its parent (docs/CLUSTER.md "Sites and tiers", docs/TLS.md): a
central arca that requires client certificates (--tls-client-ca) serves the sites that show
one (--parent-cert/--parent-key, or a rule's parent-cert/parent-key), one origin download for
two sites; a site without one is refused by the parent, and says so as the parent's refusal
(never the origin's), in its fallback and under --parent-only in its 502; start and
check-config refuse bad files in one line; a SIGHUP reads them again; and the client commands
show a certificate too (arca status --cert --key)."""

import os
import shutil
import signal
import subprocess

import pytest

from conftest import ARCA_BIN, free_port, sha256, wait_for
from test_tls import as_me, as_nobody
from test_signed import PATH as SIGNED_PATH, add_signed, s3_url
from tier import asked_by_children, full_fetch, parent_row, wait_fallback


def central(start_tls_arca, tls_pki, workdir, *args):
    """A parent over HTTPS that requires a certificate its client CA signed."""
    access_log = os.path.join(workdir, "central-access.log")
    parent = start_tls_arca("--upstream-allow", "127.0.0.0/8", "--access-log", access_log,
                            "--tls-client-ca", tls_pki["client_ca"], *args, name="central")
    parent.access_log = access_log
    return parent


def site(start_tier, parent, tls_pki, *args, cert=True):
    """A site whose parent is `parent` over HTTPS (the test CA verifies it), showing site-a's
    certificate when `cert`."""
    shown = ["--parent-cert", tls_pki["client_cert"], "--parent-key", tls_pki["client_key"]]
    return start_tier.arca("site", "--parent", parent.tls_base, "--ca-file", tls_pki["ca"],
                           *(shown if cert else []), *args)


def add(origin, path, size=200_000):
    data = os.urandom(size)
    return origin.add(path, data=data, etag=f'"{sha256(data)[:16]}"'), data


def test_two_sites_with_their_certificate_cost_the_origin_one_download(
        start_tier, start_tls_arca, tls_pki, workdir, origin):
    parent = central(start_tls_arca, tls_pki, workdir)
    a, b = site(start_tier, parent, tls_pki), site(start_tier, parent, tls_pki)
    url, data = add(origin, "/lab/rootfs.img")
    for s in (a, b):
        status, _, body, complete = full_fetch(s, url)
        assert status == 200 and complete and sha256(body) == sha256(data)
        row = parent_row(s)
        assert row["requests"] == 1 and sum(row["fallbacks"].values()) == 0, row
    assert origin.counts["/lab/rootfs.img"] == 1
    asked = asked_by_children(parent, url, at_least=2)
    assert [x.status for x in asked] == [206, 206] and [x.result for x in asked][1] == "HIT"
    assert parent.tls_counters()["no_client_certificate"] == 0


def test_a_site_without_a_certificate_says_the_parent_refused_it(
        start_tier, start_tls_arca, tls_pki, workdir, origin):
    parent = central(start_tls_arca, tls_pki, workdir)
    bare = site(start_tier, parent, tls_pki, cert=False)
    url, data = add(origin, "/lab/fw.bin")
    status, _, body, complete = full_fetch(bare, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert origin.counts["/lab/fw.bin"] == 1 and asked_by_children(parent, url) == []
    row = wait_fallback(bare, "refused")
    assert row["requests"] == 0, row
    assert bare.log_shows("parent failed (refused: parent refused the TLS handshake: "), \
        bare.read_log()[-1500:]
    assert bare.log_shows("--parent-cert"), bare.read_log()[-1500:]


def test_a_site_whose_certificate_the_parent_refuses_is_told_which(
        start_tier, start_tls_arca, tls_pki, workdir, origin):
    """The site shows a certificate another CA signed: the hint names that file, never "show
    it one" (it did)."""
    parent = central(start_tls_arca, tls_pki, workdir)
    stranger = start_tier.arca("site", "--parent", parent.tls_base, "--ca-file", tls_pki["ca"],
                               "--parent-cert", tls_pki["stranger_cert"], "--parent-key",
                               tls_pki["stranger_key"])
    url, data = add(origin, "/lab/stranger.bin")
    status, _, body, complete = full_fetch(stranger, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert stranger.log_shows("(the parent's client CA does not accept the certificate shown, "
                              f"{tls_pki['stranger_cert']})"), stranger.read_log()[-1500:]
    assert "show it one" not in stranger.read_log()


def test_under_parent_only_the_parents_refusal_is_the_502s_reason(
        start_tier, start_tls_arca, tls_pki, workdir, origin):
    parent = central(start_tls_arca, tls_pki, workdir)
    bare = site(start_tier, parent, tls_pki, "--parent-only", "--download-retries", "0",
                cert=False)
    url, _ = add(origin, "/lab/only.bin")
    status, _, body, _ = full_fetch(bare, url)
    assert status == 502, (status, body[:300])
    text = body.decode(errors="replace")
    assert "parent refused the TLS handshake" in text and "upstream" not in text, text
    assert text.rstrip().endswith("(show it one: --parent-cert, --parent-key)"), text
    assert origin.counts["/lab/only.bin"] == 0


def test_a_parents_own_403_is_said_as_the_parents(start_tier, start_tls_arca, tls_pki,
                                                    workdir, origin):
    """The central's --allow-network leaves the site out: its 403 (no Cache-Status: its own
    refusal) is the parent's, in the fallback's line and under --parent-only in the 502."""
    parent = central(start_tls_arca, tls_pki, workdir, "--allow-network", "10.0.0.0/8")
    a = site(start_tier, parent, tls_pki)
    only = site(start_tier, parent, tls_pki, "--parent-only", "--download-retries", "0")
    url, data = add(origin, "/lab/403.bin")
    status, _, body, _ = full_fetch(a, url)
    assert status == 200 and sha256(body) == sha256(data)
    assert a.log_shows("parent failed (status: parent refused: 403 "), a.read_log()[-1500:]
    url, _ = add(origin, "/lab/403-only.bin")
    status, _, body, _ = full_fetch(only, url)
    text = body.decode(errors="replace")
    assert status == 502 and "parent refused: 403 " in text, (status, text)
    assert origin.counts["/lab/403-only.bin"] == 0


def test_under_parent_only_a_signed_urls_confirmation_shows_the_certificate_too(
        start_tier, start_tls_arca, tls_pki, workdir, origin):
    """--parent-only: a cached signed object asked with another signature is confirmed through
    the parent's fetch API, which is shown the site's certificate as the download was."""
    parent = central(start_tls_arca, tls_pki, workdir)
    s = site(start_tier, parent, tls_pki, "--parent-only")
    data = add_signed(origin)
    for nonce in ("a", "b"):
        status, _, body, complete = full_fetch(s, s3_url(origin, nonce=nonce))
        assert status == 200 and complete and sha256(body) == sha256(data), (nonce, status, body[:200])
    assert origin.counts[SIGNED_PATH] >= 2  # the download, then the parent's confirmation
    asked = asked_by_children(parent, at_least=2)
    assert [a.status for a in asked] == [206, 206], asked  # the download, the confirmation
    assert s.metrics()["arca_signed_hits_total"] == 1


def test_under_parent_only_a_confirmation_the_parent_refuses_is_the_parents_502(
        start_tier, start_tls_arca, tls_pki, workdir, origin):
    """The site holds a signed object; the central then leaves the site out (--allow-network,
    SIGHUP): a confirmation of another signature gets the parent's own 403, which the site's
    client gets as a 502 saying the parent refused, never as the origin's 403."""
    ini = os.path.join(workdir, "central.ini")
    with open(ini, "w") as f:
        f.write("[arca]\n")
    parent = central(start_tls_arca, tls_pki, workdir, "--config", ini)
    s = site(start_tier, parent, tls_pki, "--parent-only", "--download-retries", "0")
    data = add_signed(origin)
    status, _, body, _ = full_fetch(s, s3_url(origin, nonce="a"))
    assert status == 200 and sha256(body) == sha256(data)
    with open(ini, "w") as f:
        f.write("[arca]\nallow-network = 10.0.0.0/8\n")
    parent.reload("SIGHUP: reloaded")
    status, _, body, _ = full_fetch(s, s3_url(origin, nonce="b"))
    text = body.decode(errors="replace")
    assert status == 502 and "parent refused: 403 Forbidden" in text, (status, text)
    assert "upstream" not in text, text


def test_a_rules_parent_shows_the_rules_certificate(start_tier, start_tls_arca, tls_pki,
                                                    workdir, origin):
    parent = central(start_tls_arca, tls_pki, workdir)
    url, data = add(origin, "/ruled/fw.bin")
    ini = os.path.join(workdir, "site.ini")
    with open(ini, "w") as f:
        f.write(f"[rule central]\nmatch = {origin.url('/ruled/')}\nparent = {parent.tls_base}\n"
                f"parent-cert = {tls_pki['client_cert']}\nparent-key = {tls_pki['client_key']}\n")
    s = start_tier.arca("site", "--config", ini, "--ca-file", tls_pki["ca"])
    status, _, body, complete = full_fetch(s, url)
    assert status == 200 and complete and sha256(body) == sha256(data)
    assert len(asked_by_children(parent, url, at_least=1)) == 1
    assert parent_row(s)["requests"] == 1


def test_sighup_reads_the_parent_certificate_again(start_tier, start_tls_arca, tls_pki,
                                                   workdir, origin):
    """The site starts with a certificate the central's CA did not sign (refused), the files
    are swapped for site-a's, SIGHUP: the next download goes through the parent."""
    parent = central(start_tls_arca, tls_pki, workdir)
    cert, key = os.path.join(workdir, "pc.pem"), os.path.join(workdir, "pk.pem")
    shutil.copy(tls_pki["stranger_cert"], cert)
    shutil.copy(tls_pki["stranger_key"], key)
    s = start_tier.arca("site", "--parent", parent.tls_base, "--ca-file", tls_pki["ca"],
                        "--parent-cert", cert, "--parent-key", key)
    url, data = add(origin, "/hup/a")
    status, _, body, _ = full_fetch(s, url)
    assert status == 200 and sha256(body) == sha256(data)
    assert parent_row(s)["requests"] == 0 and asked_by_children(parent, url) == []
    shutil.copy(tls_pki["client_cert"], cert)
    shutil.copy(tls_pki["client_key"], key)
    before = s.read_log().count("SIGHUP: reloaded")
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: s.read_log().count("SIGHUP: reloaded") > before, "the reload")
    url, data = add(origin, "/hup/b")
    status, _, body, _ = full_fetch(s, url)
    assert status == 200 and sha256(body) == sha256(data)
    assert len(asked_by_children(parent, url, at_least=1)) == 1
    assert parent_row(s)["requests"] == 1


@pytest.mark.parametrize("case", ["missing", "unreadable", "not its key", "cert without key",
                                  "key without cert", "no parent", "swapped", "rule's key",
                                  "rule without parent"])
def test_start_and_check_config_refuse_a_bad_parent_certificate(case, workdir, tls_pki):
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    shutil.copy(tls_pki["client_cert"], cert)
    shutil.copy(tls_pki["client_key"], key)
    runner = as_me
    given = ["--parent", "https://central.lab:8443", "--parent-cert", cert, "--parent-key", key]
    rule = None
    if case == "missing":
        os.remove(cert)
        expect = f"--parent-cert {cert}: cannot read it: No such file or directory"
    elif case == "unreadable":
        os.chmod(key, 0)
        os.chmod(workdir, 0o755)
        os.chown(workdir, 65534, 65534)
        runner = as_nobody
        expect = f"--parent-key {key}: cannot read it: Permission denied"
    elif case == "not its key":
        shutil.copy(tls_pki["other_key"], key)
        expect = f"--parent-key {key}: this key is not the one of the certificate in --parent-cert"
    elif case == "cert without key":
        given = given[:4]
        expect = "--parent-cert needs --parent-key (its private key)"
    elif case == "key without cert":
        given = given[:2] + given[4:]
        expect = "--parent-key needs --parent-cert (the certificate it goes with)"
    elif case == "no parent":
        given = given[2:]
        expect = "--parent-cert is given but no --parent URL"
    elif case == "swapped":
        given = given[:2] + ["--parent-cert", key, "--parent-key", cert]
        expect = f"--parent-cert {key}: no PEM certificate in it, a private key instead"
    elif case == "rule's key":
        shutil.copy(tls_pki["other_key"], key)
        given = []
        rule = ("[rule c]\nmatch = https://lab.example/\nparent = https://central.lab:8443\n"
                f"parent-cert = {cert}\nparent-key = {key}\n")
        expect = (":5: rule c: parent-key " + key + ": this key is not the one of the "
                  "certificate in parent-cert")
    else:
        given = []
        rule = f"[rule c]\nmatch = https://lab.example/\nparent-cert = {cert}\nparent-key = {key}\n"
        expect = ":3: rule c: parent-cert is for the parent the rule names: parent = URL"
    args = ["--listen", f"127.0.0.1:{free_port()}", "--data-dir", os.path.join(workdir, "data"),
            *given]
    if rule:
        ini = os.path.join(workdir, "arca.ini")
        with open(ini, "w") as f:
            f.write(rule)
        args += ["--config", ini]
    checked, served = runner("check-config", *args), runner("serve", *args)
    for p in (checked, served):
        assert p.returncode != 0, (p.returncode, p.stderr)
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("arca: "), p.stderr
        assert expect in p.stderr, p.stderr
    assert checked.stderr == served.stderr
    assert not os.path.exists(os.path.join(workdir, "data")), "serve went on"


def test_arca_status_shows_a_certificate_to_a_central_requiring_one(start_tls_arca, tls_pki,
                                                                    workdir):
    parent = central(start_tls_arca, tls_pki, workdir)
    env = dict(os.environ, CURL_CA_BUNDLE=tls_pki["ca"])

    def status(*args):
        return subprocess.run([ARCA_BIN, "status", "--server", parent.tls_base, *args],
                              capture_output=True, text=True, timeout=30, env=env)

    p = status("--cert", tls_pki["client_cert"], "--key", tls_pki["client_key"])
    assert p.returncode == 0, p.stderr
    assert "up" in p.stdout, p.stdout
    p = status()
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert "refused the TLS handshake" in p.stderr and "--cert" in p.stderr, p.stderr
    p = status("--cert", tls_pki["client_cert"])
    assert p.returncode == 2 and "--cert needs --key" in p.stderr, p.stderr
    p = status("--cert", os.path.join(workdir, "nope.pem"), "--key", tls_pki["client_key"])
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert "nope.pem" in p.stderr, p.stderr
