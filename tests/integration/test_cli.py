"""The client commands against a running arca, and check-config on files."""

import os
import subprocess

from conftest import ARCA_BIN, ROOT, free_port
from test_admin import TOKEN, admin_arca, token_file, wait_complete


def cli(*args, env=None):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def server(arca):
    return ["--server", f"http://{arca.host}:{arca.port}"]


def test_status_prints_a_summary_of_the_running_server(origin, arca):
    url = origin.add("/a", data=b"a" * 2048)
    arca.fetch(url)
    arca.fetch(url)
    out = cli("status", *server(arca))
    assert out.returncode == 0, out.stderr
    assert "1 on disk" in out.stdout
    assert "requests   2, 50.0 % answered from disk" in out.stdout
    assert "2.0 KiB downloaded" in out.stdout


def test_status_of_a_server_that_is_not_there_fails_in_one_line(workdir):
    from conftest import free_port
    out = cli("status", "--server", f"http://127.0.0.1:{free_port()}")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "arca:" in out.stderr


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
    assert out.returncode == 1 and out.stderr == "arca: 404: not cached\n"
    assert origin.counts["/img"] == 1


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
    assert out.stderr == (f"arca: {path}:4: --default-ttl: expected <int>d|h|m|s, positive, "
                          "got 'soon'\n")
    assert cli("check-config").returncode == 2
    assert cli("check-config", "--config", os.path.join(workdir, "none.ini")).returncode == 1
