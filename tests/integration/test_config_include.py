"""Rules once for the tree: `include = FILE` in the INI file reads FILE at that point (a glob's
files in sorted order, a relative name from the including file's folder), so a central and its
sites share one rules.d/. check-config and the start-up log list every file read; SIGHUP reads
the includes again. A loop, a missing file or a glob matching nothing is one line naming the
including file and line."""

import json
import os
import signal
import subprocess

from conftest import ARCA_BIN, own_address, wait_for


def run(*args, timeout=10):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=timeout)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def rules_test(config, url):
    p = run("rules", "test", "--config", config, "--client", "127.0.0.1", "--json", url)
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    return json.loads(p.stdout)


def shared_tree(workdir):
    """/etc/arca as CLUSTER.md lays it out: arca.ini including rules.d/*.ini (two rules files,
    and a README beside them that the glob leaves out)."""
    etc = os.path.join(workdir, "etc")
    write(f"{etc}/rules.d/20-releases.ini",
          "[rule releases]\nmatch = http://origin.test/releases/\nttl = 30d\n")
    write(f"{etc}/rules.d/10-nightly.ini",
          "[rule nightly]\nmatch = http://origin.test/nightly/\nttl = 5m\n")
    write(f"{etc}/rules.d/README", "not INI\n")
    main = write(f"{etc}/arca.ini",
                 "[arca]\nupstream-allow = 127.0.0.0/8\ninclude = rules.d/*.ini\n")
    return etc, main


def test_a_glob_include_brings_every_rule_and_check_config_names_each_file(workdir):
    etc, main = shared_tree(workdir)
    p = run("check-config", "--config", main, *own_address())
    assert p.returncode == 0, p.stderr
    assert p.stdout == (f"{main}, {etc}/rules.d/10-nightly.ini, {etc}/rules.d/20-releases.ini: "
                        "ok\n")
    assert rules_test(main, "http://origin.test/nightly/x")["rule"]["name"] == "nightly"
    assert rules_test(main, "http://origin.test/releases/x")["rule"]["name"] == "releases"


def test_an_include_in_a_rule_section_reads_there_and_the_section_goes_on(workdir):
    """An include below [rule a] reads its file at that point (its own sections); the keys
    after it are still rule a's."""
    etc = os.path.join(workdir, "etc")
    write(f"{etc}/more.ini", "[rule b]\nmatch = http://origin.test/b/\nttl = 1h\n")
    main = write(f"{etc}/arca.ini", "[rule a]\nmatch = http://origin.test/a/\n"
                 "include = more.ini\nttl = 2h\n")
    p = run("check-config", "--config", main, *own_address())
    assert p.returncode == 0 and p.stdout == f"{main}, {etc}/more.ini: ok\n", p.stderr
    a = rules_test(main, "http://origin.test/a/x")
    assert a["rule"]["name"] == "a" and a["terms"]["ttl"]["value"] == 7200, a
    assert rules_test(main, "http://origin.test/b/x")["rule"]["name"] == "b"


def test_an_include_loop_is_refused_with_its_chain(workdir):
    etc = os.path.join(workdir, "etc")
    a = f"{etc}/a.ini"
    write(f"{etc}/b.ini", "include = a.ini\n")
    write(a, "[arca]\nquota = 1G\ninclude = b.ini\n")
    for command in ("check-config", "serve"):
        p = run(command, "--config", a)
        assert p.returncode != 0 and p.stdout == "", (p.returncode, p.stdout)
        assert p.stderr == (f"arca: {etc}/b.ini:1: include loop: {a} includes {etc}/b.ini "
                            f"includes {a}\n"), p.stderr


def test_a_missing_include_and_a_glob_matching_nothing_name_file_and_line(workdir):
    etc = os.path.join(workdir, "etc")
    main = write(f"{etc}/arca.ini", "[arca]\nquota = 1G\ninclude = nope.ini\n")
    p = run("check-config", "--config", main, *own_address())
    assert (p.returncode, p.stderr) == (
        1, f"arca: {main}:3: include {etc}/nope.ini: cannot read config file: No such file or "
           "directory\n"), p.stderr
    write(main, "[arca]\n\ninclude = rules.d/*.ini\n")
    p = run("check-config", "--config", main, *own_address())
    assert (p.returncode, p.stderr) == (
        1, f"arca: {main}:3: include {etc}/rules.d/*.ini: no file matches\n"), p.stderr
    write(main, "[arca]\ninclude =\n")
    p = run("check-config", "--config", main, *own_address())
    assert (p.returncode, p.stderr) == (1, f"arca: {main}:2: include: a file name or glob "
                                           "expected\n"), p.stderr


def test_two_configs_merge_and_check_config_names_both(workdir):
    """Two --config: each read where it is given; later values override, rules add up."""
    etc, main = shared_tree(workdir)
    site = write(f"{etc}/site.ini", "[arca]\nquota = 2G\n")
    p = run("check-config", "--config", main, "--config", site, *own_address())
    assert p.returncode == 0, p.stderr
    assert p.stdout == (f"{main}, {etc}/rules.d/10-nightly.ini, {etc}/rules.d/20-releases.ini, "
                        f"{site}: ok\n")


def test_serve_logs_every_file_and_sighup_reads_the_includes_again(workdir, start_arca):
    etc, main = shared_tree(workdir)
    arca = start_arca("--config", main)
    assert arca.log_shows(f"starting, config {main}, {etc}/rules.d/10-nightly.ini, "
                          f"{etc}/rules.d/20-releases.ini\n")
    assert arca.log_shows("rules: 2 in force")
    write(f"{etc}/rules.d/30-extra.ini",
          "[rule extra]\nmatch = http://origin.test/extra/\nttl = 1m\n")
    arca.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP: reloaded" in arca.read_log(), "the reload", 5)
    assert arca.log_shows(", 3 rules)\n")
