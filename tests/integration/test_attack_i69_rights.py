"""Who may fetch through a remote, and what a remote's configuration shows (issue 69,
docs/REMOTES.md): a client outside --allow-network, a rule's allow-network that narrows the
upstream URL (every spelling of its prefix through the remote path and through /+f/), two arcas
whose remotes name each other (a loop), and config errors that would echo a value holding a
secret. What a user sees: statuses, the origin's request log, check-config's words."""

import os
import subprocess

import pytest

from conftest import ARCA_BIN, free_port

PUBLIC = b"public file\n" * 50
PRIVATE = b"the boards' firmware: private\n" * 50


def ini(workdir, text):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write(text)
    return path


def serve(origin):
    origin.add("/repo/pub/file", data=PUBLIC)
    origin.add("/repo/private/fw.bin", data=PRIVATE)
    # an origin that reads // as / (nginx's merge_slashes) or ignores a ;parameter
    origin.add("/repo//private/fw.bin", data=PRIVATE)
    origin.add("/repo/private;x=1/fw.bin", data=PRIVATE)


def test_a_client_outside_allow_network_gets_nothing_through_a_remote(start_arca, origin, workdir):
    """--allow-network names another network: every path of every remote kind is 403 to the
    loopback client and nothing is asked of the origin; a rule that opens one prefix to all
    opens it through the remote path too, and only it."""
    serve(origin)
    config = ini(workdir, f"[rule pub]\nmatch = {origin.url('/repo/pub/')}\n"
                          "allow-network = all\n")
    arca = start_arca("--config", config, "--upstream-allow", "127.0.0.0/8",
                      "--allow-network", "10.9.0.0/16",
                      "--remote", f"files={origin.url('/repo')}",
                      "--remote", f"py:pypi={origin.url('/pypi')}")
    for target in ("/files/private/fw.bin", "/files/pub/../private/fw.bin",
                   f"/py/+f/http/127.0.0.1:{origin.port}/repo/private/fw.bin",
                   "/files/private/fw.bin?sha256=" + "0" * 64):
        status, _, body = arca.get(target)
        assert status in (400, 403), (target, status)
        assert body != PRIVATE
    status, _, body = arca.get("/files/pub/file")
    assert (status, body) == (200, PUBLIC)
    assert origin.counts["/repo/private/fw.bin"] == 0, origin.targets


def test_a_stranger_learns_nothing_of_a_remote_s_file_hosts_or_path_rules(start_arca, origin):
    """A client outside --allow-network (no rule lets anyone in) is refused before its path is
    read, as on the fetch API: a /+f/ host that is a file host and one that is not, a path with
    `..`, a bad query and a good path all answer the same 403, and the status names no remote."""
    serve(origin)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--allow-network", "10.9.0.0/16",
                      "--ui-network", "10.9.0.0/16", "--remote", f"files={origin.url('/repo')}",
                      "--remote", f"py:pypi={origin.url('/pypi')}")
    answers = {}
    for target in (f"/py/+f/http/127.0.0.1:{origin.port}/repo/pub/file",
                   "/py/+f/http/mirror.internal.lab:8443/x", "/py/+f/ftp/x/y",
                   "/files/../private/fw.bin", "/files/pub/file?x=1", "/files/pub/file"):
        status, _, body = arca.get(target)
        answers[target] = (status, body)
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values()))[0] == 403
    assert all(r["name"] is None and r["url"] is None for r in arca.status()["remotes"])
    assert origin.targets == []


@pytest.mark.parametrize("spelling", [
    "/files/private/fw.bin",
    "/files//private/fw.bin",
    "/files/%70rivate/fw.bin",
    "/files/private;x=1/fw.bin",
    "/files/private%2Ffw.bin",
    "/files/pub/%2e%2e/private/fw.bin",
    "/py/+f/http/127.0.0.1:{port}/repo/private/fw.bin",
    "/py/+f/http/127.0.0.1:{port}//repo/private/fw.bin",
    "/py/%2Bf/http/127.0.0.1%3A{port}/repo/private/fw.bin",
])
def test_a_rule_that_narrows_a_prefix_holds_through_every_remote_path(
        start_arca, origin, workdir, spelling):
    """A rule keeps the origin's /repo/private/ to another network: through the remote, in
    any spelling an origin may read as that folder, the loopback client gets no byte of it and
    the origin is not asked."""
    serve(origin)
    config = ini(workdir, f"[rule private]\nmatch = {origin.url('/repo/private/')}\n"
                          "allow-network = 10.9.0.0/16\n")
    arca = start_arca("--config", config, "--upstream-allow", "127.0.0.0/8",
                      "--remote", f"files={origin.url('/repo')}",
                      "--remote", f"py:pypi={origin.url('/pypi')}")
    target = spelling.format(port=origin.port)
    status, _, body = arca.get(target)
    assert status != 200 and body != PRIVATE, (target, status)
    private = [t for t in origin.targets if "private" in t]
    assert private == [], private


def test_two_arcas_whose_remotes_name_each_other_stop_at_once(start_arca, workdir):
    """arca A's remote is B's remote path and B's is A's: a request goes round once and is
    refused (508, or a refusal of arca's own address), not bounced until the slots run out;
    both still answer."""
    port_a, port_b = free_port(), free_port()
    a = start_arca("--upstream-allow", "127.0.0.0/8", "--remote",
                   f"loop=http://127.0.0.1:{port_b}/loop", port=port_a, name="a")
    b = start_arca("--upstream-allow", "127.0.0.0/8", "--remote",
                   f"loop=http://127.0.0.1:{port_a}/loop", port=port_b, name="b")
    status, _, _ = a.get("/loop/file", timeout=20)
    assert status in (403, 502, 504, 508), status
    assert a.get("/api/v1/health")[0] == 200 and b.get("/api/v1/health")[0] == 200
    requests = sum(r["requests"] for r in a.status()["remotes"] + b.status()["remotes"])
    assert requests <= 4, (a.status()["remotes"], b.status()["remotes"])


SECRET = "c2VjcmV0LWxhYi10b2tlbi0wMTIzNDU2Nzg5"


@pytest.mark.parametrize("section", [
    f"[remote x]\nurl = https://user:{SECRET}@mirror.lab/debian\n",
    f"[remote x]\nurl = https://mirror.lab/\nkind = pypi\nfile-hosts = user:{SECRET}@files\n",
    f"[remote x]\nurl = https://mirror.lab/\nkind = pypi\nfile-hosts = {SECRET.upper()}\n",
    f"[remote x]\nurl = https://mirror.lab/\nkind = {SECRET}\n",
    f"[remote {SECRET}/x]\nurl = https://mirror.lab/\n",
    f"[remote x]\nurl = https://mirror.lab/?token={SECRET}\n",
])
def test_a_remote_s_config_error_shows_none_of_its_value(workdir, section):
    """A remote's section with a secret in a value by mistake (credentials in its url or a
    file-hosts entry, a token pasted as its kind or name): check-config refuses it naming
    FILE:LINE, and none of the secret is in what it says."""
    path = ini(workdir, section)
    p = subprocess.run([ARCA_BIN, "check-config", "--config", path], capture_output=True,
                       text=True, timeout=30)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "arca.ini" in out, out
    assert not any(SECRET[i:i + 12] in out or SECRET.upper()[i:i + 12] in out
                   for i in range(len(SECRET) - 11)), out


def test_a_remote_s_option_error_shows_none_of_its_value(workdir):
    """On the command line, `--remote NAME=URL` with credentials in the url: refused, none of
    the secret said (a bad NAME or KIND is echoed: a command line shows in `ps` anyway)."""
    for value in (f"x=https://u:{SECRET}@mirror.lab/", f"x:apt=https://{SECRET}:@mirror.lab/"):
        p = subprocess.run([ARCA_BIN, "check-config", "--remote", value], capture_output=True,
                           text=True, timeout=30)
        out = p.stdout + p.stderr
        assert p.returncode != 0, (value, out)
        assert SECRET[:12] not in out and SECRET[-12:] not in out, (value, out)
