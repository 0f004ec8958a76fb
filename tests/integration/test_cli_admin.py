"""The admin token of the client commands that need it (prefetch, purge URL, purge --prefix,
purge IMAGE; docs/COMMANDS.md, "prefetch and purge"): --admin-token-file FILE, else
$ARCA_ADMIN_TOKEN, else the admin-token-file of the configuration --config names (the server's
own option, in the file the command reads the server's address from). No token at all is bad
usage: exit 2, one line, nothing asked."""

import os
import subprocess

from conftest import ARCA_BIN, Arca, free_port
from test_admin import TOKEN, token_file, wait_complete

IMAGE = "lab/team/a:1"  # a registry the ini names; no image of it is kept


def cli(*args, env=None):
    """arca's client with no ARCA_SERVER nor ARCA_ADMIN_TOKEN unless `env` gives them."""
    base = {k: v for k, v in os.environ.items() if k not in ("ARCA_SERVER", "ARCA_ADMIN_TOKEN")}
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=30,
                          env={**base, **(env or {})})


def site_ini(workdir, port, token_path=None, name="arca.ini"):
    """What a lab's arca.ini says: its listen address, its admin token file (a line of its own,
    the 3rd), the upstreams it may reach and a registry it mirrors."""
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(f"[arca]\nlisten = 127.0.0.1:{port}\n")
        if token_path:
            f.write(f"admin-token-file = {token_path}\n")
        f.write("upstream-allow = 127.0.0.0/8\n\n"
                f"[registry lab]\nurl = http://127.0.0.1:{free_port()}\n")
    return path


def site_arca(workdir):
    """An arca started from its own arca.ini, token file and all."""
    port = free_port()
    ini = site_ini(workdir, port, token_file(workdir))
    arca = Arca(workdir, ["--config", ini])
    arca.port = port
    arca.start(keep_port=True)
    return arca, ini


def test_every_admin_command_takes_the_token_from_the_config_it_reads_the_server_from(
        workdir, origin):
    """`arca purge --config arca.ini lab/team/a:1` once said "give --admin-token-file FILE or
    set ARCA_ADMIN_TOKEN" although arca.ini names the token file: each admin command reads it."""
    arca, ini = site_arca(workdir)
    url = origin.add("/nightly/a", data=os.urandom(5000))
    out = cli("prefetch", "--config", ini, url)
    assert out.returncode == 0 and out.stdout.split() == ["started", url], out.stderr
    wait_complete(arca, 1)
    out = cli("purge", "--config", ini, url)
    assert out.returncode == 0 and out.stdout == f"purged {url}\n", out.stderr
    out = cli("purge", "--config", ini, "--prefix", origin.url("/nightly/"))
    assert out.returncode == 0 and out.stdout.startswith("purged 0 objects"), out.stderr
    # the token was taken: the server's word is about the image, not the caller
    out = cli("purge", "--config", ini, IMAGE)
    assert out.returncode == 1 and out.stderr.startswith(f"arca: {IMAGE}: 404: not cached"), out.stderr
    # with --server too (an https:// address the file's plain listen does not give): its token
    out = cli("purge", "--server", arca.base, "--config", ini, url)
    assert out.returncode == 1 and out.stderr == f"arca: {url}: 404: not cached\n", out.stderr
    assert origin.counts["/nightly/a"] == 1


def test_the_command_line_and_the_environment_come_before_the_configs_token(workdir, origin):
    arca, ini = site_arca(workdir)
    url = origin.add("/a", data=b"a" * 100)
    wrong = os.path.join(workdir, "wrong-token")
    with open(wrong, "w") as f:
        f.write("wrong-token-0123456789\n")
    for args, env in ((["--admin-token-file", wrong], None),
                      ([], {"ARCA_ADMIN_TOKEN": "wrong-token-0123456789"})):
        out = cli("purge", "--config", ini, *args, url, env=env)
        assert out.returncode == 1 and out.stderr == "arca: 401: wrong admin token\n", \
            (args, out.stderr)
    out = cli("purge", "--config", ini, url, env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert out.returncode == 1 and out.stderr == f"arca: {url}: 404: not cached\n", out.stderr


def test_no_admin_token_is_bad_usage_in_one_line_and_nothing_is_asked(workdir, origin):
    """Exit 2 (docs/COMMANDS.md: 2 bad usage), one line naming every way to give it; the server
    is not asked (a dead port: "no answer" would be exit 1)."""
    dead = free_port()
    bare = site_ini(workdir, dead, name="bare.ini")
    missing = os.path.join(workdir, "no-such-token")
    broken = site_ini(workdir, dead, missing, name="broken.ini")
    url = origin.url("/a")
    for command in (["prefetch", url], ["purge", url], ["purge", "--prefix", url],
                    ["purge", IMAGE]):
        for where in (["--config", bare], ["--server", f"127.0.0.1:{dead}"]):
            out = cli(*command, *where)
            assert out.returncode == 2, (command, where, out.stderr)
            assert out.stderr.count("\n") == 1, (command, where, out.stderr)
            assert out.stderr.startswith("arca: no admin token: give --admin-token-file FILE"), \
                (command, where, out.stderr)
            assert "ARCA_ADMIN_TOKEN" in out.stderr and "admin-token-file" in out.stderr
        # a token file named but unreadable: its line, exit 2
        out = cli(*command, "--config", broken)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (command, out.stderr)
        assert out.stderr.startswith(
            f"arca: {broken}:3: --admin-token-file {missing}: cannot read it:"), out.stderr
        out = cli(*command, "--server", f"127.0.0.1:{dead}", "--admin-token-file", missing)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (command, out.stderr)
        assert out.stderr.startswith(f"arca: --admin-token-file {missing}: cannot read it:"), \
            out.stderr
