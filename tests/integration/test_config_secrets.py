"""A config error never quotes a file's line (issue 67): an `include` (or `--config`) that
names a token file, a credentials file or a TLS key by mistake printed the token in the error
(`'TOKEN': expected KEY = VALUE`, `unknown option 'TOKEN'`), and on SIGHUP into arca's log,
where whoever reads the log (not the token file) learnt it. Each error says FILE:LINE and what
was wrong, and shows none of the line's text: not from check-config, not when serve starts, not
in the log after SIGHUP."""

import os
import subprocess

import pytest

from conftest import ARCA_BIN, Arca, free_port

SECRET = "c2VjcmV0LWxhYi10b2tlbi0wMTIzNDU2Nzg5"

# what a file given by mistake may hold, and where its secret is in it
FILES = {
    "token": SECRET + "\n",                              # --admin-token-file's
    "padded": SECRET + "==\n",                           # base64 padding: read as KEY = VALUE
    "login": f"svc-{SECRET}:{SECRET}\n",                 # a password file's user:password
    "value": f"quota = {SECRET}\n",                      # a value arca reads and refuses
    "ini": f"[{SECRET}]\nkey = 1\n",                     # an INI of another program's
    "rule": f"[rule {SECRET}/x]\nmatch = http://h/\n",   # a section arca reads and refuses
}


def run(*args):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=30)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def shows_nothing_of(text, secret=SECRET):
    """No piece of the secret (12 bytes of it anywhere) is in text."""
    return not any(secret[i:i + 12] in text for i in range(len(secret) - 11))


@pytest.mark.parametrize("kind", sorted(FILES))
def test_an_included_secret_is_never_shown(workdir, kind):
    secret = write(os.path.join(workdir, kind), FILES[kind])
    config = write(os.path.join(workdir, "arca.ini"), f"[arca]\nquota = 5G\ninclude = {kind}\n")
    for command in ("check-config", "serve"):
        p = run(command, "--config", config, "--data-dir", os.path.join(workdir, "data"),
                "--listen", f"127.0.0.1:{free_port()}")
        assert p.returncode != 0 and p.stderr.count("\n") == 1, (command, p.stderr)
        assert p.stderr.startswith(f"arca: {secret}:"), (command, p.stderr)
        assert shows_nothing_of(p.stdout + p.stderr), (command, p.stderr)
    # the file itself as --config: the same
    p = run("check-config", "--config", secret)
    assert p.returncode == 1 and shows_nothing_of(p.stderr), p.stderr


def test_a_tls_key_given_as_a_config_is_never_shown(workdir, tls_files):
    with open(tls_files["key"]) as f:
        lines = [line.strip() for line in f if not line.startswith("-----")]
    config = write(os.path.join(workdir, "arca.ini"), f"include = {tls_files['key']}\n")
    for args in (["--config", config], ["--config", tls_files["key"]]):
        p = run("check-config", *args)
        assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
        assert "not a KEY = VALUE line" in p.stderr, p.stderr
        assert not any(line[:12] in p.stderr for line in lines), p.stderr


def test_a_reload_into_a_secret_logs_none_of_it(workdir):
    token = write(os.path.join(workdir, "token"), FILES["padded"])
    config = write(os.path.join(workdir, "arca.ini"), "[arca]\nquota = 5G\n")
    arca = Arca(workdir, ["--config", config]).start()
    write(config, f"[arca]\nquota = 5G\ninclude = {token}\n")
    arca.reload("keeping the running configuration")
    log = arca.read_log()
    assert f"SIGHUP: {token}:1: unknown option (not shown); keeping the running" in log, log
    assert shows_nothing_of(log), log
    assert arca.status()["disk_quota"] == 5 << 30
    arca.stop()


@pytest.mark.parametrize("text, line", [
    ("listen = 127.0.0.1:8011\n[abc]\n", 2),         # a section with no key under it
    ("[arac]\nlisten = 127.0.0.1:8011\n", 1),        # said at the section's line, not its key's
    (f"[{SECRET}]\n", 1),                            # another program's INI, its name unshown
])
def test_an_unknown_section_is_refused_at_its_own_line(workdir, text, line):
    config = write(os.path.join(workdir, "typo.ini"), text)
    out = run("check-config", "--config", config)
    assert out.returncode == 1 and f"typo.ini:{line}: unknown section" in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and shows_nothing_of(out.stderr)
