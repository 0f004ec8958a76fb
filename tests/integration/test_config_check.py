"""`arca check-config` means "arca serve will start": each reason serve would refuse to start is
reported by both, in one line naming the option, the file and its line. INI comments, option
errors that say what is wrong."""

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import ARCA_BIN, ROOT, free_port


def run(*args, timeout=10):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=timeout)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def lab(workdir):
    """A config that serve accepts here: its own data dir, log and port, a bucket with
    credentials, the comments of docs/BUCKETS.md's example."""
    creds = write(os.path.join(workdir, "lab.creds"), "AKIAEXAMPLE\nsecret\n")
    token = write(os.path.join(workdir, "token"), "0123456789abcdef\n")
    port = free_port()

    def config(extra="", bucket=""):
        return write(os.path.join(workdir, "arca.ini"), (
            "# arca, as docs/BUCKETS.md shows it\n"
            "[arca]\n"
            f"listen = 127.0.0.1:{port}   # loopback only\n"
            f"data-dir = {workdir}/data ; the objects\n"
            f"access-log = {workdir}/access.log\n"
            f"admin-token-file = {token}\n"
            f"{extra}"
            "\n[bucket lkft]\n"
            "url = http://127.0.0.1:4568/storage.lkft.org\n"
            "region = us-east-1\n"
            f"credentials = {creds}   # access key id, secret, optional session token: one a line\n"
            "hide-root = true\n"
            "listing-ttl = 5m\n"
            f"{bucket}"))
    config.port = port
    config.token = token
    return config


def service_user():
    """Whether this machine has the service's user (the Debian package's `arca`)."""
    try:
        pwd.getpwnam("arca")
        return True
    except KeyError:
        return False


def root_note(*args):
    """What check-config adds on an ok when run as root (the suite runs as root), where the
    service's user exists: the advice to run it as that user."""
    if not service_user():
        return ""
    return ("arca: note: checked with root's rights; serve runs as the service's user: "
            f"sudo -u arca arca check-config {' '.join(args)}\n")


def serve_refuses(path, line):
    """serve with the config fails at once with the same line check-config printed."""
    p = run("serve", "--config", path)
    assert p.returncode != 0 and p.stderr == line, p.stderr


def test_the_docs_bucket_example_with_comments_is_ok_and_serve_starts(lab):
    path = lab()
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stdout, p.stderr) == (0, f"{path}: ok\n",
                                                  root_note("--config", path))
    with serving(path, lab.port):
        pass


@contextlib.contextmanager
def serving(path, port):
    """arca serve --config path, answering its health check on port, until the block ends."""
    serve = subprocess.Popen([ARCA_BIN, "serve", "--config", path], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert serve.poll() is None and time.monotonic() < deadline, serve.returncode
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health/") as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.05)
        yield serve
    finally:
        serve.terminate()
        serve.communicate(timeout=10)


def test_check_before_a_reload_accepts_the_running_arcas_address(lab):
    """The running arca holds the address; SIGHUP keeps it: the check says ok, with a note."""
    path = lab()
    with serving(path, lab.port):
        p = run("check-config", "--config", path)
        assert (p.returncode, p.stdout, p.stderr) == (
            0, f"{path}: ok\n",
            f"arca: note: {path}:3: --listen 127.0.0.1:{lab.port}: cannot listen: Address "
            "already in use (a running arca: SIGHUP keeps its address)\n"
            + root_note("--config", path))


@pytest.mark.parametrize("token_text, why", [
    (None, "cannot read it: No such file or directory"),
    ("short\n", "token too short (16 to 511 characters)"),
])
def test_a_bad_admin_token_file_is_named_with_its_line(lab, workdir, token_text, why):
    path = lab()
    if token_text is None:
        os.unlink(lab.token)
    else:
        write(lab.token, token_text)
    line = f"arca: {path}:6: --admin-token-file {lab.token}: {why}\n"
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stdout, p.stderr) == (1, "", line)
    serve_refuses(path, line)


def test_an_access_log_in_a_missing_directory(lab, workdir):
    path = lab(extra=f"access-log = {workdir}/nowhere/access.log\n")
    p = run("check-config", "--config", path)
    # the key given twice is found first: then, with the duplicate gone, the directory
    assert (p.returncode, p.stderr) == (
        1, f"arca: {path}:7: --access-log given twice (first at line 5)\n")
    text = open(path).read().replace(f"access-log = {workdir}/access.log\n", "")
    write(path, text)
    line = (f"arca: {path}:6: --access-log {workdir}/nowhere/access.log: directory "
            f"{workdir}/nowhere: No such file or directory\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (1, line)
    serve_refuses(path, line)
    assert not os.path.exists(os.path.join(workdir, "data")), "serve stopped before the store"


def test_an_access_log_directory_arca_may_not_write(lab, workdir):
    ro = os.path.join(workdir, "ro")
    os.mkdir(ro, 0o555)
    os.chmod(workdir, 0o755)
    path = lab()
    text = open(path).read().replace(f"access-log = {workdir}/access.log",
                                     f"access-log = {ro}/access.log")
    write(path, text)
    for f in (path, lab.token, os.path.join(workdir, "lab.creds")):
        os.chmod(f, 0o644)
    # as root every directory is writable: ask as nobody, who owns the data dir
    data = os.path.join(workdir, "data")
    os.mkdir(data)
    os.chown(data, 65534, 65534)
    p = as_nobody("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (
        1, f"arca: {path}:5: --access-log {ro}/access.log: directory {ro}: "
           "Permission denied\n")


def test_a_data_dir_that_cannot_be_created(lab, workdir):
    path = lab()
    text = open(path).read().replace(f"data-dir = {workdir}/data",
                                     f"data-dir = {workdir}/no/such/data")
    write(path, text)
    line = (f"arca: {path}:4: --data-dir {workdir}/no/such/data: cannot create it: "
            "No such file or directory\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (1, line)
    serve_refuses(path, line)
    write(os.path.join(workdir, "file"), "")
    p = run("check-config", "--config", path, "--data-dir", f"{workdir}/file")
    assert (p.returncode, p.stderr) == (
        1, f"arca: --data-dir {workdir}/file: not a directory\n")
    # a parent that takes no directories, whoever asks (/proc: root's access() said writable)
    p = run("check-config", "--config", path, "--data-dir", "/proc/arca-data")
    assert (p.returncode, p.stderr) == (
        1, "arca: --data-dir /proc/arca-data: cannot create it: No such file or directory\n")
    assert not os.path.exists("/proc/arca-data")


def test_a_listen_address_in_use(lab):
    path = lab()
    with socket.socket() as s:
        s.bind(("127.0.0.1", lab.port))
        s.listen(1)
        line = (f"arca: {path}:3: --listen 127.0.0.1:{lab.port}: cannot listen: "
                "Address already in use\n")
        p = run("check-config", "--config", path)
        assert (p.returncode, p.stderr) == (1, line)
        serve_refuses(path, line)
    assert run("check-config", "--config", path).returncode == 0


def test_bucket_errors_carry_their_line(lab, workdir):
    path = lab(bucket="prefix = /abs\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (
        1, f"arca: {path}:14: bucket lkft: prefix: a key prefix without a leading '/'\n")
    path = lab(bucket="[bucket empty]\nregion = eu-west-1\n")
    line = f"arca: {path}:14: bucket empty: url missing\n"
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (1, line)
    serve_refuses(path, line)
    path = lab()
    os.unlink(os.path.join(workdir, "lab.creds"))
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (
        1, f"arca: {path}:11: bucket lkft: cannot read credentials file "
           f"'{workdir}/lab.creds'\n")


def test_a_key_given_twice_is_reported(lab):
    path = lab(extra="quota = 1G\nquota = 2G\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (1, f"arca: {path}:8: --quota given twice (first at line 7)\n")


def test_check_config_takes_serves_options(lab, workdir):
    """The options given after --config override it, as for serve: check the command line a
    unit file runs."""
    path = lab()
    p = run("check-config", "--config", path, "--data-dir", f"{workdir}/no/such")
    assert p.returncode == 1 and p.stderr.startswith(f"arca: --data-dir {workdir}/no/such:")
    args = ("--listen", f"127.0.0.1:{lab.port}", "--data-dir", f"{workdir}/d2", "--access-log",
            "off")
    p = run("check-config", *args)
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", root_note(*args))
    assert not os.path.exists(f"{workdir}/d2"), "check-config creates nothing"
    p = run("check-config", "--bogus")
    assert (p.returncode, p.stderr) == (1, "arca: unknown option '--bogus'\n")


def test_check_config_checks_options_alone_and_with_a_file_as_serve_merges_them(lab, workdir):
    """No file needed: the options alone are what serve would get."""
    p = run("check-config", "--quota", "5X")
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == "arca: --quota: expected <int>[K|M|G|T], positive, got '5X'\n"
    mine = ("--listen", f"127.0.0.1:{lab.port}", "--data-dir", f"{workdir}/d3", "--access-log",
            "off")
    p = run("check-config", *mine, "--quota", "5G")
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", root_note(*mine, "--quota", "5G"))
    # a file and options: each checked, the options after --config override the file
    path = lab(extra="quota = 1G\n")
    p = run("check-config", "--config", path, "--quota", "5X")
    assert p.returncode == 1 and p.stderr.startswith("arca: --quota: expected"), p.stderr
    p = run("check-config", "--config", path, "--quota", "5G")
    assert (p.returncode, p.stdout) == (0, f"{path}: ok\n"), p.stderr
    path = lab(extra="quota = 5X\n")
    p = run("check-config", "--config", path, "--quota", "5G")
    assert p.returncode == 1 and p.stderr.startswith(f"arca: {path}:7: --quota"), p.stderr
    serve_refuses(path, p.stderr)
    # nothing to check: the usage says options alone are enough
    p = run("check-config")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "options alone (arca check-config --quota 5G)" in p.stderr
    assert "arca check-config [--config FILE] [OPTIONS]" in run("--help").stdout


def test_option_errors_say_what_is_wrong():
    p = run("serve", "--bogus")
    assert (p.returncode, p.stdout, p.stderr) == (2, "", "arca: unknown option '--bogus'\n")
    p = run("serve", "--exact-key")
    assert (p.returncode, p.stderr) == (
        2, "arca: unknown option '--exact-key'; did you mean --exact-keys?\n")
    p = run("serve", "--log-health-check")
    assert (p.returncode, p.stderr) == (
        2, "arca: unknown option '--log-health-check'; did you mean --log-health-checks?\n")
    for args in (["-h"], ["serve", "-h"], ["--help"]):
        p = run(*args)
        assert p.returncode == 0 and p.stdout.startswith("usage: arca [serve]"), args


def as_nobody(*args):
    """arca run as nobody. An arca built with coverage counters complains on stderr that nobody
    may not write its .gcda files: those lines are the build's, not arca's answer."""
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        ARCA_BIN, *args], capture_output=True, text=True, timeout=10)
    p.stderr = "".join(line for line in p.stderr.splitlines(True)
                       if not line.startswith("profiling:"))
    return p


def test_check_config_as_root_says_it_checked_with_roots_rights(lab, workdir):
    """serve runs as the service's user: root's ok would approve paths arca cannot write."""
    path = lab()
    p = run("check-config", "--config", path)
    assert os.geteuid() == 0, "this scenario runs as root, as the test suite does"
    # the advice names the service's user: only where it exists (sudo -u arca fails elsewhere)
    note = ("arca: note: checked with root's rights; serve runs as the service's user: "
            f"sudo -u arca arca check-config --config {path}\n") if service_user() else ""
    assert (p.returncode, p.stdout, p.stderr) == (0, f"{path}: ok\n", note)
    os.chmod(workdir, 0o755)
    for f in (path, lab.token, os.path.join(workdir, "lab.creds")):
        os.chmod(f, 0o644)
    os.chown(workdir, 65534, 65534)
    p = as_nobody("check-config", "--config", path)
    assert (p.returncode, p.stdout, p.stderr) == (0, f"{path}: ok\n", "")


@pytest.mark.parametrize("args, line", [
    (["--retry-delay", "1h"], "--retry-delay: '1h' is out of range (1ms..30s)"),
    (["--retry-delay", "31s"], "--retry-delay: '31s' is out of range (1ms..30s)"),
    (["--retry-delay", "1x"], "--retry-delay: expected <int>ms|s|m, positive, got '1x'"),
    (["--default-ttl", "36501d"], "--default-ttl: '36501d' is out of range (1s..36500d)"),
    (["--keep-expired", "99999999999999d"],
     "--keep-expired: '99999999999999d' is out of range (1s..36500d)"),
    (["--stall-timeout", "2d"], "--stall-timeout: '2d' is out of range (1s..1d)"),
    (["--max-header-size", "2M"], "--max-header-size: '2M' is out of range (1K..1M)"),
    (["--threads", "300"], "--threads: '300' is out of range (1..256)"),
])
def test_a_bound_is_refused_with_its_range_not_capped(args, line):
    p = run("serve", *args)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"arca: {line}\n")


def test_file_errors_say_why(lab, workdir):
    p = run("check-config", "--config", f"{workdir}/nonexistent.ini")
    assert (p.returncode, p.stderr) == (
        1, f"arca: {workdir}/nonexistent.ini: cannot read config file: "
           "No such file or directory\n")
    p = run("check-config", "--config", lab(), "--admin-token-file", f"{workdir}/nonexist")
    assert (p.returncode, p.stderr) == (
        1, f"arca: --admin-token-file {workdir}/nonexist: cannot read it: "
           "No such file or directory\n")


def test_a_switch_without_value_says_what_is_expected(lab):
    path = lab(extra="exact-keys\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (
        1, f"arca: {path}:7: exact-keys: expected 'exact-keys = true' (or false)\n")
    path = lab(extra="quota\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (1, f"arca: {path}:7: quota: expected 'quota = VALUE'\n")


@pytest.mark.parametrize("word, on", [("true", True), ("yes", True), ("on", True), ("1", True),
                                      ("false", False), ("no", False), ("off", False),
                                      ("0", False)])
def test_booleans_take_the_usual_words(lab, word, on):
    path = lab(extra=f"exact-keys = {word}\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (0, root_note("--config", path))
    p = run("serve", "--exact-keys=maybe")
    assert (p.returncode, p.stderr) == (
        2, "arca: --exact-keys: expected true or false (yes/no, on/off, 1/0), got 'maybe'\n")


def test_a_data_dir_in_use_by_another_arca(lab, workdir):
    """serve refuses a data dir another arca holds; so does check-config, unless that arca is
    the running one answering at this config's address (SIGHUP will reload it)."""
    path = lab()
    with serving(path, lab.port):
        other_port = free_port()
        p = run("check-config", "--config", path, "--listen", f"127.0.0.1:{other_port}")
        line = f"arca: {path}:4: --data-dir {workdir}/data: in use by another arca\n"
        assert (p.returncode, p.stderr) == (1, line)
        p = run("serve", "--config", path, "--listen", f"127.0.0.1:{other_port}")
        assert p.returncode == 1 and p.stderr == line, p.stderr
        p = run("check-config", "--config", path)
        assert p.returncode == 0, p.stderr


def test_a_different_arca_at_the_address_is_not_the_running_one(lab, workdir):
    """An arca answering at the address but holding another data dir is not the one SIGHUP
    reloads: the address in use is an error."""
    path = lab()
    with serving(path, lab.port):
        p = run("check-config", "--config", path, "--data-dir", f"{workdir}/other")
        # the usual slip (a check from another folder, ./arca-data) is named with its way out
        assert (p.returncode, p.stderr) == (
            1, f"arca: {path}:3: --listen 127.0.0.1:{lab.port}: cannot listen: Address already "
               f"in use (an arca runs there with another data dir than {workdir}/other: give the "
               "--data-dir it runs with)\n")


def test_options_without_a_command_serve(lab):
    """`arca --config FILE` serves, as `arca serve --config FILE` does (scripts rely on it)."""
    path = lab()
    p = run("--help")
    assert p.stdout.startswith("usage: arca [serve] [OPTION...]"), p.stdout
    serve = subprocess.Popen([ARCA_BIN, "--config", path], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert serve.poll() is None and time.monotonic() < deadline
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{lab.port}/api/v1/health/") as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.05)
    finally:
        serve.terminate()
        serve.communicate(timeout=10)


def test_what_is_no_config_file_is_refused_not_read_as_an_empty_one(workdir):
    # an empty config is everyone allowed on every address: a file arca could not read must
    # never become one (outside review: a directory, NULs and /dev/zero all read as empty)
    nuls = os.path.join(workdir, "zero.ini")
    with open(nuls, "wb") as f:
        f.write(b"\0" * 4096)
    inner = os.path.join(workdir, "inner.ini")
    with open(inner, "wb") as f:
        f.write(b"[arca]\nquota = 2G\0junk\nlog-level = info\n")
    big = write(os.path.join(workdir, "big.ini"), "[arca]\n" + "; padding\n" * 120000)
    cases = [
        (workdir, f"arca: {workdir}: cannot read config file: not a regular file\n"),
        ("/dev/zero", "arca: /dev/zero: cannot read config file: not a regular file\n"),
        (nuls, f"arca: {nuls}:1: a NUL byte: not a text file\n"),
        (inner, f"arca: {inner}:2: a NUL byte: not a text file\n"),
        (big, f"arca: {big}: cannot read config file: larger than 1 MiB\n"),
    ]
    for path, said in cases:
        for command in ("check-config", "serve"):
            p = run(command, "--config", path)
            assert (p.returncode != 0, p.stderr) == (True, said), (command, path)


def test_an_indented_line_continues_no_value(workdir):
    # inih would read it as the previous key's value going on: a second network, unannounced
    path = write(os.path.join(workdir, "a.ini"),
                 "[arca]\nallow-network = 10.0.0.0/8\n  0.0.0.0/0\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stderr) == (
        1, f"arca: {path}:3: not a KEY = VALUE line (a value never goes on over lines)\n")
    # indentation alone is no continuation: an indented key = value is a key = value
    path = write(os.path.join(workdir, "b.ini"),
                 f"[arca]\n  quota = 5G\n  data-dir = {workdir}/d\n"
                 f"  listen = 127.0.0.1:{free_port()}\n  access-log = off\n")
    p = run("check-config", "--config", path)
    assert (p.returncode, p.stdout) == (0, f"{path}: ok\n"), p.stderr


def test_a_fifo_config_is_refused_without_blocking(workdir, start_arca):
    # opening a FIFO for reading waits for a writer: check-config hung, and so did serve's SIGHUP
    # (then SIGTERM too, queued behind it)
    fifo = os.path.join(workdir, "fifo.ini")
    os.mkfifo(fifo)
    p = run("check-config", "--config", fifo, timeout=5)
    assert (p.returncode, p.stderr) == (
        1, f"arca: {fifo}: cannot read config file: not a regular file\n")
    live = write(os.path.join(workdir, "live.ini"), "[arca]\nquota = 5G\n")
    arca = start_arca("--config", live)
    os.unlink(live)
    os.mkfifo(live)
    arca.proc.send_signal(signal.SIGHUP)
    assert arca.log_shows("not a regular file; keeping the running configuration")
    arca.proc.send_signal(signal.SIGTERM)
    assert arca.proc.wait(10) == 0


def test_a_parent_the_address_policy_refuses_is_warned_of(workdir):
    """A parent on loopback (a trial on one host) is refused by the address policy unless
    --upstream-allow covers it (docs/CLUSTER.md, "Sites and tiers"): every ask to it would be
    refused. check-config still says ok (serve starts), with one warning naming the parent, its
    address and the option that lets it in; the same for a rule's parent; none once allowed."""
    port, parent = free_port(), f"https://127.0.0.1:{free_port()}"
    ini = write(os.path.join(workdir, "arca.ini"),
                "[rule lab]\nmatch = http://lab.example/\n"
                f"parent = http://127.0.0.2:{free_port()}/central\n"
                "[rule off]\nmatch = http://off.example/\nparent = none\n")
    base = ["--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(workdir, "data"),
            "--parent", parent, "--config", ini]
    p = run("check-config", *base)
    assert p.returncode == 0 and p.stdout == f"{ini}: ok\n", p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 2, p.stderr
    assert lines[0] == (
        f"arca: warning: --parent {parent}: upstream address 127.0.0.1 refused (127.0.0.0/8; "
        "see --upstream-allow): every ask to the parent will be refused; add --upstream-allow "
        "127.0.0.1/32 (or a network holding it)"), lines[0]
    assert lines[1].startswith(f"arca: warning: {ini}:3: rule lab: parent http://127.0.0.2:"), \
        lines[1]
    assert "add --upstream-allow 127.0.0.2/32" in lines[1], lines[1]
    p = run("check-config", *base, "--upstream-allow", "127.0.0.0/8")
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    assert not os.path.exists(os.path.join(workdir, "data"))
