"""How a lab configures the registry mirror (docs/REGISTRY.md, "Setting it up"; docs/OPTIONS.md):
--registry NAME=URL, docker.io alone, [registry NAME] sections with url, username and
password-file, --registry-default. What is wrong is one line naming it, and arca does not start
(serve exits 2, check-config 1), a password never in it; what is right shows in the status
without its password."""

import json
import os
import subprocess

import pytest

from conftest import ARCA_BIN, own_address

SECRET = "pw-never-shown-7d1e"


def run(*args, timeout=10):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=timeout)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.mark.parametrize("args, says", [
    (["--registry", "lab"], "expected NAME=URL"),
    (["--registry", "Lab=http://127.0.0.1:5000"], "registry name 'Lab'"),
    (["--registry", "a/b=http://127.0.0.1:5000"], "registry name 'a/b'"),
    (["--registry", "lab=ftp://127.0.0.1:5000"], "registry lab: url"),
    (["--registry", f"lab=http://u:{SECRET}@127.0.0.1:5000"], "credentials"),
    (["--registry", "lab=http://127.0.0.1:5000/?x=1"], "registry lab: url"),
    (["--registry-default", "nowhere.lab"], "--registry-default nowhere.lab: no such registry"),
    (["--registry-default", "Bad Name"], "--registry-default"),
])
def test_bad_registry_options_are_one_line_and_arca_does_not_start(workdir, args, says):
    data = os.path.join(workdir, "data")
    for command, code in (("serve", 2), ("check-config", 1)):
        p = run(command, "--data-dir", data, "--listen", "127.0.0.1:1", *args)
        assert p.returncode == code, (command, p.returncode, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], p.stderr
        assert SECRET not in p.stderr + p.stdout


def test_registry_sections_in_the_config_file(workdir):
    data = os.path.join(workdir, "data")
    pw = write(os.path.join(workdir, "pw"), SECRET + "\n")
    cases = [
        (f"[registry lab]\nusername = bob\npassword-file = {pw}\n", "registry lab: url missing"),
        ("[registry lab]\nurl = http://127.0.0.1:5000\nusername = bob\n", "both username and"),
        (f"[registry lab]\nurl = http://127.0.0.1:5000\nusername = bob\npassword-file = "
         f"{workdir}/absent\n", "cannot read password file"),
        ("[registry lab]\nurl = http://127.0.0.1:5000\ntoken = x\n", "unknown key (not shown)"),
        ("registry-default = lab\n", "no such registry"),
    ]
    for text, says in cases:
        ini = write(os.path.join(workdir, "arca.ini"), text)
        p = run("check-config", "--data-dir", data, "--config", ini)
        assert p.returncode == 1 and says in p.stderr, (text, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and SECRET not in p.stderr
    ini = write(os.path.join(workdir, "arca.ini"),
                f"registry = docker.io\nregistry-default = lab\n\n[registry lab]\n"
                f"url = http://127.0.0.1:5000/\nusername = bob\npassword-file = {pw}\n")
    p = run("check-config", "--data-dir", data, "--config", ini, *own_address())
    assert p.returncode == 0, p.stderr


def test_the_status_names_each_registry_and_never_its_password(start_arca, workdir):
    pw = write(os.path.join(workdir, "pw"), SECRET + "\n")
    ini = write(os.path.join(workdir, "arca.ini"),
                f"[registry lab]\nurl = http://127.0.0.1:5000\nusername = bob\n"
                f"password-file = {pw}\n")
    arca = start_arca("--config", ini, "--registry-default", "lab")
    status = arca.status()
    by_name = {r["name"]: r for r in status["registries"]}
    assert set(by_name) == {"lab", "docker.io"}  # Docker Hub is always known
    assert by_name["lab"]["default"] and by_name["lab"]["login"]
    assert by_name["lab"]["url"] == "http://127.0.0.1:5000"
    assert by_name["docker.io"]["url"] == "https://registry-1.docker.io"
    assert not by_name["docker.io"]["default"] and not by_name["docker.io"]["login"]
    shown = json.dumps(status) + arca.get("/metrics")[2].decode() + \
        arca.get("/statistics/")[2].decode() + arca.read_log()
    assert SECRET not in shown and "bob" not in json.dumps(status)
    assert 'arca_registry_pulls_total{registry="lab"} 0' in shown
    # the start-up log says which registry a /v2/ request reaches
    assert arca.log_shows("registries mirrored under /v2/: lab (http://127.0.0.1:5000, the "
                          "default), docker.io (https://registry-1.docker.io)")
    p = run("--help")
    assert "--registry NAME=URL" in p.stdout and "--registry-default NAME" in p.stdout


def test_a_registry_name_given_twice_is_one_line_naming_both_places(workdir):
    """The same NAME twice (twice on the command line, on the command line and in a
    [registry NAME] section, in two sections, a `registry =` key and a section): which one
    would win, and whether a section's login would survive a second URL, is no question arca
    answers silently. One line naming both places; serve exits 2, check-config 1."""
    data = os.path.join(workdir, "data")
    pw = write(os.path.join(workdir, "pw"), SECRET + "\n")
    section = f"[registry lab]\nurl = http://127.0.0.1:5000\nusername = bob\npassword-file = {pw}\n"
    ini = write(os.path.join(workdir, "arca.ini"), section)
    two = write(os.path.join(workdir, "two.ini"), section + "\n" + section)
    key = write(os.path.join(workdir, "key.ini"), "registry = lab=http://127.0.0.1:5001\n\n" + section)
    cases = [
        (["--registry", "lab=http://127.0.0.1:5000", "--registry", "lab=http://127.0.0.1:5001"],
         ["the command line", "twice"]),
        (["--config", ini, "--registry", "lab="], [f"{ini}:1", "the command line"]),
        (["--registry", "lab=http://127.0.0.1:5001", "--config", ini],
         [f"{ini}:1", "the command line"]),
        (["--config", two], [f"{two}:1", f"{two}:6"]),
        (["--config", key], [f"{key}:1", f"{key}:3"]),
        (["--registry", "docker.io", "--registry", "docker.io=https://mirror.gcr.io"],
         ["docker.io", "twice"]),
    ]
    for args, says in cases:
        for command, code in (("serve", 2), ("check-config", 1)):
            p = run(command, "--data-dir", data, "--listen", "127.0.0.1:1", *args)
            lines = p.stderr.strip().splitlines()
            assert p.returncode == code and len(lines) == 1, (command, args, p.returncode,
                                                              p.stderr)
            assert "registry " in lines[0] and "given twice" in lines[0], (args, lines)
            assert all(s in lines[0] for s in says), (args, says, lines)
            assert SECRET not in p.stderr + p.stdout
    # one section's keys, however many, are one place; a --registry for another NAME is fine
    p = run("check-config", "--data-dir", data, "--config", ini, "--registry",
            "other.lab=http://127.0.0.1:5002", *own_address())
    assert p.returncode == 0, p.stderr
