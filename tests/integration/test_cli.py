"""The client commands against a running arca, and check-config on files."""

import os
import socket
import subprocess

from conftest import ARCA_BIN, ROOT, free_port
from test_admin import TOKEN, admin_arca, token_file, wait_complete


def cli(*args, env=None):
    """arca's client, in an environment that names no server unless `env` does."""
    base = {k: v for k, v in os.environ.items() if k != "ARCA_SERVER"}
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=30,
                          env={**base, **(env or {})})


def server(arca):
    return ["--server", f"http://{arca.host}:{arca.port}"]


def test_status_prints_a_summary_of_the_running_server(origin, arca):
    url = origin.add("/a", data=b"a" * 2048)
    arca.fetch(url)
    arca.fetch(url)
    out = cli("status", *server(arca))
    assert out.returncode == 0, out.stderr
    assert "1 on disk" in out.stdout
    assert "pinned     0 objects, 0 B" in out.stdout  # nothing pinned without a rule
    assert "requests   2: 1 of 2 tried answered from disk (50.0 %)" in out.stdout
    assert "2.0 KiB downloaded" in out.stdout


def test_status_of_a_server_that_is_not_there_fails_in_one_line(workdir):
    from conftest import free_port
    out = cli("status", "--server", f"http://127.0.0.1:{free_port()}")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "arca:" in out.stderr


def test_every_client_command_that_reaches_no_server_names_it_and_the_option(workdir):
    """The address tried and how to name another, in one line, for the default server too."""
    from conftest import free_port
    there = f"http://127.0.0.1:{free_port()}"
    tokens = ["--admin-token-file", token_file(workdir)]
    for args, server in ((["status"], "http://127.0.0.1:8001"),
                         (["status", "--server", there], there),
                         (["prefetch", "--server", there, *tokens, "http://example.org/a"], there),
                         (["prefetch", "--server", there, *tokens, "--wait",
                           "http://example.org/a"], there),
                         (["purge", "--server", there, *tokens, "http://example.org/a"], there),
                         (["status", "--server", "http://no-such-host.invalid:8001"],
                          "http://no-such-host.invalid:8001")):
        if server.endswith(":8001") and "invalid" not in server:
            with socket.socket() as s:  # an arca of this machine's own would answer
                if s.connect_ex(("127.0.0.1", 8001)) == 0:
                    continue
        out = cli(*args)
        assert out.returncode == 1, (args, out.stderr)
        assert out.stderr.count("\n") == 1, (args, out.stderr)
        assert out.stderr.startswith(f"arca: no answer from {server}"), (args, out.stderr)
        assert "--server URL, ARCA_SERVER or --config FILE names another" in out.stderr, \
            (args, out.stderr)
        how = "(--server)" if "--server" in args else "(the default: no --server, ARCA_SERVER"
        assert how in out.stderr, (args, out.stderr)


def test_prefetch_and_purge_from_the_command_line(origin, start_arca, workdir):
    data = os.urandom(100000)
    url = origin.add("/img", data=data)
    arca = admin_arca(start_arca, workdir)
    tokens = ["--admin-token-file", token_file(workdir)]
    out = cli("prefetch", *server(arca), *tokens, url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["started", url]
    wait_complete(arca, 1)
    out = cli("prefetch", *server(arca), url, env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert out.stdout.split() == ["cached", url]
    out = cli("purge", *server(arca), *tokens, url)
    assert out.returncode == 0 and out.stdout == f"purged {url}\n"
    out = cli("purge", *server(arca), *tokens, url)
    assert out.returncode == 1 and out.stderr == f"arca: {url}: 404: not cached\n"
    assert origin.counts["/img"] == 1
    out = cli("purge", *server(arca), *tokens, url + "?X-Amz-Signature=0123456789abcdef")
    assert out.returncode == 1
    assert out.stderr == f"arca: {url}?X-Amz-Signature=REDACTED: 404: not cached\n"


def test_prefetch_with_a_wrong_token_says_so(origin, start_arca, workdir):
    arca = admin_arca(start_arca, workdir)
    out = cli("prefetch", *server(arca), origin.url("/x"), env={"ARCA_ADMIN_TOKEN": "wrong"})
    assert out.returncode == 1 and out.stderr == "arca: 401: wrong admin token\n"
    out = cli("prefetch", *server(arca), origin.url("/x"), env={"ARCA_ADMIN_TOKEN": ""})
    assert out.returncode == 1


def test_check_config_accepts_the_shipped_example(workdir):
    # serve would start with it where its paths are (check-config checks them: test_config_check)
    out = cli("check-config", "--config", os.path.join(ROOT, "contrib", "arca.ini"),
              "--data-dir", f"{workdir}/data", "--access-log", f"{workdir}/access.log",
              "--listen", f"127.0.0.1:{free_port()}")
    assert out.returncode == 0, out.stderr


def test_check_config_names_the_first_bad_line(workdir):
    path = os.path.join(workdir, "bad.ini")
    with open(path, "w") as f:
        f.write("[arca]\nquota = 5G\n\ndefault-ttl = soon\nthreads = many\n")
    out = cli("check-config", "--config", path)
    assert out.returncode == 1
    # the line's value is not shown (a file given by mistake may hold a secret): FILE:LINE is
    assert out.stderr == (f"arca: {path}:4: --default-ttl: expected <int>d|h|m|s, positive, "
                          "got (not shown)\n")
    assert cli("check-config").returncode == 2
    assert cli("check-config", "--config", os.path.join(workdir, "none.ini")).returncode == 1


# --- usage and arguments ---------------------------------------------------------------------


def absent_server():
    from conftest import free_port
    return ["--server", f"http://127.0.0.1:{free_port()}"]


def test_arca_alone_prints_usage_on_stderr_and_exits_2():
    out = subprocess.run([ARCA_BIN], capture_output=True, text=True, timeout=5)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith("usage: arca [serve] [OPTION...]\n")
    assert "arca prefetch [--server URL]" in out.stderr
    assert out.stderr.endswith("arca --help tells every option\n")


def test_extra_arguments_to_client_commands_are_errors(workdir):
    ini = os.path.join(workdir, "ok.ini")
    with open(ini, "w") as f:
        f.write("[arca]\nquota = 5G\n")
    cases = [
        (["status", *absent_server(), "extra"], "arca: status takes no argument: 'extra'\n"),
        (["cluster-status", *absent_server(), "x"],
         "arca: cluster-status takes no argument: 'x'\n"),
        (["purge", *absent_server(), "http://a/1", "http://a/2"],
         "arca: purge takes one URL, got 2\n"),
        (["status", *absent_server(), "--ttl", "1d"], "arca: status does not take --ttl\n"),
        (["purge", *absent_server(), "--wait", "http://a/1"], "arca: purge does not take --wait\n"),
        (["prefetch", *absent_server(), "--timeout", "5s", "http://a/1"],
         "arca: --timeout is for prefetch --wait\n"),
        (["status", "--bogus"], "arca: unknown option '--bogus'\n"),
        # serve's options exist: the client command does not take them
        (["status", "--allow-network", "10.0.0.0/8"],
         "arca: status does not take --allow-network (an option of arca serve)\n"),
        (["purge", "--quota=5G", "http://a/1"],
         "arca: purge does not take --quota (an option of arca serve)\n"),
        (["status", "--sever", "http://a"], "arca: unknown option '--sever'; did you mean --server?\n"),
        (["prefetch", *absent_server(), "-w", "http://a/1"], "arca: unknown option '-w'\n"),
        (["status", "--server"], "arca: --server needs a value\n"),
        (["status", *absent_server(), *absent_server()],
         "arca: status takes one --server (cluster-status takes several)\n"),
        (["purge", *absent_server(), *absent_server(), "http://a/1"],
         "arca: purge takes one --server (cluster-status takes several)\n"),
        (["status", "--version"], "arca: status does not take --version\n"),
        (["prefetch", *absent_server(), "--ttl", "1w", "http://a/1"],
         "arca: --ttl: expected <int>d|h|m|s, positive, got '1w'\n"),
        (["stauts"], "arca: unknown command 'stauts'; did you mean status?\n"),
        (["prefech", "http://a/1"], "arca: unknown command 'prefech'; did you mean prefetch?\n"),
    ]
    for args, said in cases:
        out = cli(*args)
        assert (out.returncode, out.stderr, out.stdout) == (2, said, ""), args
    # check-config's arguments are serve's options: anything else is a config that is not ok
    out = cli("check-config", "--config", ini, "extra")
    assert (out.returncode, out.stderr) == (1, "arca: unexpected argument 'extra'\n")


def test_arca_alone_prints_the_usage_the_docs_show():
    commands = open(os.path.join(ROOT, "docs", "COMMANDS.md")).read()
    block = commands.split("## Command line\n\n```\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([ARCA_BIN], capture_output=True, text=True, timeout=5)
    assert out.stderr == block
    # cluster-status asks the default server when none is given, as status does
    assert "arca cluster-status [--json] [--server URL ...]" in out.stderr
    assert "[--admin-token-file FILE]" in block.split("arca purge", 1)[1]
    help_text = subprocess.run([ARCA_BIN, "--help"], capture_output=True, text=True).stdout
    man = open(os.path.join(ROOT, "man", "arca.1.scd")).read()
    assert "arca cluster-status [--json] [--server URL ...]" in help_text
    assert "*arca cluster-status* [*--json*] [*--server* _URL_...]" in man


def test_client_command_help_is_the_help(workdir):
    out = cli("status", "--help")
    assert out.returncode == 0 and "arca prefetch" in out.stdout and out.stderr == ""


# --- --server forms --------------------------------------------------------------------------


def test_server_with_a_trailing_slash_or_without_a_scheme(origin, arca):
    for given in (f"http://{arca.host}:{arca.port}/", f"{arca.host}:{arca.port}",
                  f"http://{arca.host}:{arca.port}//"):
        out = cli("status", "--server", given)
        assert out.returncode == 0, (given, out.stderr)
        assert out.stdout.startswith("arca ")
    out = cli("cluster-status", "--server", f"http://{arca.host}:{arca.port}/")
    assert out.returncode == 0, out.stderr
    for bad in ("ftp://127.0.0.1:1", "", "http://", "http://h:1/?x=1", "http://h 1"):
        out = cli("status", "--server", bad)
        assert out.returncode == 2, bad
        assert out.stderr == (f"arca: --server '{bad}': expected http://HOST[:PORT][/PATH], "
                              "https://... or HOST[:PORT]\n"), bad


# --- prefetch --wait -------------------------------------------------------------------------


def test_prefetch_wait_reports_each_outcome_and_fails_when_one_failed(origin, start_arca,
                                                                      workdir):
    good = origin.add("/good", data=os.urandom(600000), rate=1024 * 1024)
    cached = origin.add("/cached", data=b"c" * 1000)
    missing = origin.url("/missing")
    arca = admin_arca(start_arca, workdir)
    assert arca.fetch(cached)[0] == 200
    out = cli("prefetch", "--wait", *server(arca), good, missing, cached,
              env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0] == f"downloaded   {good}"
    assert lines[1].startswith(f"failed       {missing}: 404: upstream answered 404")
    assert lines[2] == f"cached       {cached}"
    # the wait ended with the download: the object is on disk when the command returns
    s = arca.status()
    assert s["resources_successes"] == 2 and s["resources_downloading"] == 0
    assert origin.counts["/good"] == 1 and origin.counts["/cached"] == 1
    out = cli("prefetch", "--wait", *server(arca), good, env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert (out.returncode, out.stdout) == (0, f"cached       {good}\n")


def test_prefetch_wait_has_a_deadline(origin, start_arca, workdir):
    import time
    slow = origin.add("/slow", data=os.urandom(120000), rate=40000)
    arca = admin_arca(start_arca, workdir)
    t0 = time.monotonic()
    out = cli("prefetch", "--wait", "--timeout", "1s", *server(arca), slow,
              env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert time.monotonic() - t0 < 5
    assert out.returncode == 1
    assert out.stdout == f"timeout      {slow}: no outcome within 1s (the download goes on)\n"


def test_prefetch_wait_never_shows_a_signature(origin, start_arca, workdir):
    origin.add("/signed", data=b"s" * 5000)
    url = origin.url("/signed") + "?X-Amz-Signature=0123456789abcdef&x=1"
    arca = admin_arca(start_arca, workdir)
    out = cli("prefetch", "--wait", *server(arca), url, env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert out.returncode == 0, out.stderr
    assert "0123456789abcdef" not in out.stdout + out.stderr
    assert out.stdout.startswith("downloaded   " + origin.url("/signed") + "?X-Amz-Signature=")


def test_prefetch_wait_holds_no_object_in_memory(origin, start_arca, workdir):
    size = 48 << 20
    big = origin.add("/big", data=os.urandom(size), chunked=True)  # length unknown to arca
    arca = admin_arca(start_arca, workdir)
    peak = os.path.join(workdir, "peak")

    def peak_kib(*args):
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak, ARCA_BIN, *args,
                              *server(arca)], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "ARCA_ADMIN_TOKEN": TOKEN})
        with open(peak) as f:
            return out, int(f.read().split()[-1])

    # the same binary's own size (a sanitized build's runtime alone takes tens of MB)
    _, base = peak_kib("status")
    out, waited = peak_kib("prefetch", "--wait", big)
    assert (out.returncode, out.stdout) == (0, f"downloaded   {big}\n"), out.stderr
    assert waited - base < 16 << 10, (base, waited)  # far below the object's 48 MiB
    s = arca.status()
    assert s["statistics_upload"] == 0 and s["disk_usage"] >= size


def test_prefetch_wait_from_outside_allow_network_tells_the_outcome(origin, start_arca, workdir):
    url = origin.add("/outside", data=os.urandom(300000), rate=2 * 1024 * 1024)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir), "--allow-network", "10.0.0.0/8")
    out = cli("prefetch", "--wait", *server(arca), url, env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert (out.returncode, out.stdout) == (0, f"downloaded   {url}\n"), out.stderr


def test_prefetch_wait_neither_counts_a_request_nor_retries_a_failure(origin, start_arca,
                                                                      workdir):
    url = origin.add("/flaky", data=os.urandom(200000), rate=1024 * 1024)
    origin.objects["/flaky"].faults = [404]  # the first download fails, a second would not
    arca = admin_arca(start_arca, workdir)
    out = cli("prefetch", "--wait", *server(arca), url, env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert out.returncode == 1
    assert out.stdout.startswith(f"failed       {url}: 404: "), out.stdout
    assert origin.counts["/flaky"] == 1  # reported, not tried again
    s = arca.status()
    assert s["statistics_requests"] == 0 and s["statistics_upload"] == 0
    out = cli("prefetch", "--wait", *server(arca), url, env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert (out.returncode, out.stdout) == (0, f"downloaded   {url}\n"), out.stderr
    assert origin.counts["/flaky"] == 2 and arca.status()["statistics_requests"] == 0


def test_prefetch_without_wait_says_error_for_a_url_refused_at_once(origin, start_arca, workdir):
    arca = admin_arca(start_arca, workdir)
    out = cli("prefetch", *server(arca), "not a url", env={"ARCA_ADMIN_TOKEN": TOKEN})
    assert out.returncode == 1
    assert out.stdout.startswith("error ")


# --- cluster-status --json -------------------------------------------------------------------


def test_cluster_status_json_for_scripts(origin, arca):
    import json
    from conftest import free_port
    arca.fetch(origin.add("/j", data=b"j" * 4096))
    gone = f"http://127.0.0.1:{free_port()}"
    here = f"http://{arca.host}:{arca.port}"
    out = cli("cluster-status", "--json", "--server", here + "/", "--server", gone)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert [n["server"] for n in doc["nodes"]] == [here, gone]
    up, down = doc["nodes"]
    assert up["state"] == "up" and "error" not in up
    assert up["disk_usage"] == 4096 and up["resources_successes"] == 1
    assert up["disk_quota"] == 5 * 1024**3 and up["disk_usage_percent"] == 0
    assert up["statistics_download"] == 4096 and up["resources_downloading"] == 0
    assert down["state"] == "down" and down["error"]
    assert doc["total"]["nodes"] == 2 and doc["total"]["up"] == 1
    assert doc["total"]["disk_usage"] == 4096
    out = cli("cluster-status", "--json", "--server", here)
    assert out.returncode == 0 and json.loads(out.stdout)["total"]["up"] == 1


# --- errors that say what matters -------------------------------------------------------------


def arca_version():
    return subprocess.run([ARCA_BIN, "--version"], capture_output=True, text=True).stdout.split()[1]


def test_status_of_a_web_server_that_is_not_an_arca(origin):
    web = f"http://{origin.host}:{origin.port}"
    out = cli("status", "--server", web)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == f"arca: {web}: not an arca (/api/v1/status/ answered 404)\n"
    # the client says who it is (an access log shows arca/VERSION, not "-")
    assert "/api/v1/status/" in [path for path, _ in origin.requests]
    assert {h["User-Agent"] for _, h in origin.requests} == {f"arca/{arca_version()}"}
    out = cli("cluster-status", "--server", web)
    assert out.returncode == 1
    row = out.stdout.splitlines()[1].split(None, 2)
    assert row == [web, "down", "not an arca (/api/v1/status/ answered 404)"]


def test_status_at_a_path_where_arca_has_none(arca):
    given = f"http://{arca.host}:{arca.port}/arca/"
    out = cli("status", "--server", given)
    assert out.returncode == 1
    assert out.stderr == (f"arca: {given.rstrip('/')}: no arca status at this path "
                          "(/arca/api/v1/status/ answered 404)\n")


def test_status_of_a_draining_node_says_so_and_fails(workdir, start_arca):
    flag = os.path.join(workdir, "drain")
    arca = start_arca("--shutdown-file", flag)
    out = cli("status", *server(arca))
    assert out.returncode == 0, out.stderr
    assert "state      up\n" in out.stdout
    open(flag, "w").close()
    out = cli("status", *server(arca))
    assert out.returncode == 1
    assert ("state      draining (its shutdown file exists: health answers 503, new clients go "
            "elsewhere)\n") in out.stdout
    assert out.stdout.startswith("arca ")


# --- bad usage and bad files: said before anything is asked -----------------------------------


def test_rules_test_bad_usage_exits_2_as_the_other_commands_do(workdir):
    """An option rules test does not know, or one left without its value, is bad usage (2), as
    `arca status --bogus` is; a bad value is a configuration serve would refuse (1)."""
    for args, said in ((["--bogus"], "arca: unknown option '--bogus'\n"),
                       (["-x"], "arca: unknown option '-x'\n"),
                       (["--bogus=1"], "arca: unknown option '--bogus'\n"),
                       (["--quota"], "arca: --quota needs a value\n"),
                       (["--client"], None),
                       (["word"], None)):
        out = cli("rules", "test", *args, "http://x/")
        assert out.returncode == 2 and out.stdout == "", (args, out.returncode, out.stderr)
        assert out.stderr.startswith("arca: ") and (said is None or out.stderr == said), args
    for args in ([], ["test"]):
        assert cli("rules", *args).returncode == 2, args
    out = cli("rules", "test", "--quota", "5Q", "http://x/")
    assert (out.returncode, out.stderr) == (
        1, "arca: --quota: expected <int>[K|M|G|T], positive, got '5Q'\n")
    for command in ("status", "cluster-status", "prefetch", "purge"):
        out = cli(command, "--bogus", "http://x/")
        assert (out.returncode, out.stderr) == (2, "arca: unknown option '--bogus'\n"), command


def test_client_commands_refuse_a_swapped_or_mismatched_certificate_in_one_line(tls_pki):
    """--cert and --key are checked as --parent-cert and --parent-key are, before anything is
    asked: swapped files, or a key that is not the certificate's, are one line naming the file and
    what is wrong, exit 2 (not "no answer from ...; is arca running there?")."""
    cert, key, other = tls_pki["client_cert"], tls_pki["client_key"], tls_pki["other_key"]
    there = ["--server", f"https://127.0.0.1:{free_port()}"]
    cases = (
        (["--cert", key, "--key", cert],
         f"arca: --cert {key}: no PEM certificate in it, a private key instead (swapped with "
         "--key?)\n"),
        (["--cert", cert, "--key", other],
         f"arca: --key {other}: this key is not the one of the certificate in --cert {cert}\n"),
        (["--cert", cert, "--key", cert],
         f"arca: --key {cert}: no PEM private key in it (an encrypted key is refused: arca asks "
         "no passphrase)\n"),
    )
    for command, rest in (("status", []), ("cluster-status", []),
                          ("prefetch", ["http://example.org/a"]),
                          ("purge", ["http://example.org/a"])):
        for given, said in cases:
            out = cli(command, *there, *given, *rest, env={"ARCA_ADMIN_TOKEN": TOKEN})
            assert (out.returncode, out.stderr, out.stdout) == (2, said, ""), (command, given)
    # the right pair passes the check: the server's absence is what is said then
    out = cli("status", *there, "--cert", cert, "--key", key)
    assert out.returncode == 1 and out.stderr.startswith("arca: no answer from "), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr


def test_the_client_commands_find_their_server_without_server(start_arca, workdir):
    """Without --server: ARCA_SERVER, then the listen address of --config FILE (a wildcard asked
    on loopback), each said when nothing answers there; bad ones are usage errors (exit 2)."""
    arca = start_arca()
    url = f"http://127.0.0.1:{arca.port}"
    out = cli("status", env={"ARCA_SERVER": f"127.0.0.1:{arca.port}/"})
    assert out.returncode == 0, out.stderr
    assert f" on {url}/" in out.stdout.splitlines()[0], out.stdout
    ini = os.path.join(workdir, "site.ini")
    with open(ini, "w") as f:
        f.write(f"[arca]\nlisten = 0.0.0.0:{arca.port}\n")
    out = cli("status", "--config", ini)
    assert out.returncode == 0, out.stderr
    assert f" on {url}/" in out.stdout.splitlines()[0], out.stdout
    # the command line first: --server, then --config, over a job's ARCA_SERVER (an admin
    # token meant for the arca --config names never goes to another one)
    dead = f"http://127.0.0.1:{free_port()}"
    out = cli("status", "--server", url, env={"ARCA_SERVER": dead})
    assert out.returncode == 0, out.stderr
    out = cli("status", "--config", ini, env={"ARCA_SERVER": dead})
    assert out.returncode == 0, out.stderr
    out = cli("status", env={"ARCA_SERVER": dead})
    assert out.returncode == 1 and out.stderr.startswith(f"arca: no answer from {dead} (ARCA_SERVER)")
    with open(ini, "w") as f:
        f.write(f"listen = 127.0.0.1:{free_port()}\n")
    out = cli("status", "--config", ini)
    assert out.returncode == 1 and f"(listen in {ini})" in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1
    # bad input: one line, exit 2, nothing asked
    for args, env, says in ((["status"], {"ARCA_SERVER": "ftp://x"}, "arca: ARCA_SERVER 'ftp://x'"),
                            (["status"], {"ARCA_SERVER": "http://127.0.0.1:99999"},
                             "arca: ARCA_SERVER 'http://127.0.0.1:99999'"),
                            (["status", "--server", "bogus:xx"], None, "arca: --server 'bogus:xx'"),
                            (["status", "--server", "[::1]:0"], None, "arca: --server '[::1]:0'"),
                            (["status", "--config", ini + ".missing"], None, f"arca: --config {ini}.missing"),
                            (["status", "--server", url, "--cacert", ini + ".nope"], None,
                             f"arca: --cacert {ini}.nope: No such file or directory")):
        out = cli(*args, env=env)
        assert out.returncode == 2 and out.stderr.startswith(says), (args, out.stderr)
        assert out.stderr.count("\n") == 1, out.stderr
