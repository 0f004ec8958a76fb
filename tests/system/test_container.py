"""The container image (scripts/container): built offline from the cached Debian root and the
.deb, its config as contrib/container/ says (port, volume, user, stop signal, entrypoint), and
run two ways, each fetching through arca from an origin on loopback and ending with SIGTERM:
with podman, where this machine lets it run containers (else that test is skipped, saying
why: see podman_run_options), and always as the image's root filesystem under chroot, as the image's user with the
image's entrypoint (the way test_package.py runs its root)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import (ROOT, Origin, fetch_twice, free_port, run, unpack,
                      wait_healthy, wait_log_lines)

PODMAN = "podman"
ENTRYPOINT = ["/usr/bin/arca", "serve", "--config", "/etc/arca/arca.ini", "--access-log", "-"]


@pytest.fixture(scope="module")
def built(deb):
    """scripts/container's output directory (rootfs.tar, Containerfile, compose.yaml) and the
    image it built with podman (which scripts/deps installs from Debian)."""
    out = tempfile.mkdtemp(prefix="arca-container-")
    name = f"localhost/arca-test-{os.getpid()}"
    image = run(os.path.join(ROOT, "scripts", "container"), "--deb", deb, "--name", name,
                out).stdout.strip().splitlines()[-1]
    yield out, image
    subprocess.run([PODMAN, "rmi", "-f", image, name + ":latest"], capture_output=True)
    shutil.rmtree(out, ignore_errors=True)


def containerfile(out):
    """The Containerfile's instructions, as (KEYWORD, argument) pairs."""
    with open(os.path.join(out, "Containerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    return [tuple(line.split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def test_the_image_is_built_from_scratch_and_says_how_to_run(built):
    out, image = built
    steps = containerfile(out)
    assert steps[0] == ("FROM", "scratch") and steps[1] == ("ADD", "rootfs.tar /")
    config = json.loads(run(PODMAN, "image", "inspect", image).stdout)[0]
    assert len(config["RootFS"]["Layers"]) == 1  # the root filesystem, nothing pulled under it
    cfg = config["Config"]
    assert cfg["ExposedPorts"] == {"8001/tcp": {}}
    assert cfg["Volumes"] == {"/var/lib/arca": {}}
    assert cfg["User"] == "arca"
    assert cfg["StopSignal"] == "SIGTERM"
    assert cfg["Entrypoint"] == ENTRYPOINT and not cfg.get("Cmd")
    # compose.yaml runs the image scripts/container tags, with the volume and the port
    with open(os.path.join(out, "compose.yaml")) as f:
        compose = f.read()
    assert re.search(r"^    image: localhost/arca:latest$", compose, re.M)
    assert re.search(r'^      - "8001:8001"$', compose, re.M)
    assert re.search(r"^      - arca-data:/var/lib/arca$", compose, re.M)
    assert re.search(r"^    stop_signal: SIGTERM$", compose, re.M)
    # nothing of the build host is baked in: its resolver, its name
    with tarfile.open(os.path.join(out, "rootfs.tar")) as tar:
        for name in ("./etc/resolv.conf", "./etc/hostname"):
            assert tar.getmember(name).size == 0, name


# arguments appended to the entrypoint: the test's port on loopback, its origin allowed
def overrides(port):
    return ["--listen", f"127.0.0.1:{port}", "--upstream-allow", "127.0.0.0/8"]


def podman_run_options():
    """podman's defaults, else what this machine needs. Without CAP_SYS_RESOURCE, podman's
    default limits (RLIMIT_NOFILE 1048576, RLIMIT_NPROC 4194304 for root) cannot be set: the
    limits asked are then the compose file's nofile 65536 and the host's nproc, each capped by
    the host's hard limit (and nproc by kernel.pid_max, above which this machine's runtimes
    failed too). crun refuses hybrid cgroups (v1 with a v2 mount holding controllers); runc,
    if installed, accepts them."""
    import resource

    def cap(limit, want):
        hard = resource.getrlimit(limit)[1]
        return want if hard == resource.RLIM_INFINITY else min(want, hard)

    with open("/proc/sys/kernel/pid_max") as f:
        nproc = cap(resource.RLIMIT_NPROC, int(f.read()))
    nofile = cap(resource.RLIMIT_NOFILE, 65536)
    limits = [f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}"]
    tries = [[], limits]
    if shutil.which("runc"):
        tries.append(["--runtime=runc", *limits])
    return tries


def test_the_container_serves_as_arca_and_stops_on_sigterm(built):
    out, image = built
    errors = []
    for options in podman_run_options():
        probe = subprocess.run([PODMAN, "run", "--rm", "--network=host", *options, image,
                                "--version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            break
        errors.append(" ".join(options) + ": " + probe.stderr.strip().splitlines()[-1])
    else:
        pytest.skip("this machine refuses to run containers: " + "; ".join(errors))
    print("podman run", " ".join(options) or "(podman's defaults)")  # what ran, for -rP
    port = free_port()
    origin = Origin()
    name = f"arca-test-{os.getpid()}"
    try:
        # the host's network: the origin and the test are on loopback
        run(PODMAN, "run", "-d", "--name", name, "--network=host", *options, image,
            *overrides(port))

        def alive():
            state = run(PODMAN, "inspect", "-f", "{{.State.Running}}", name).stdout.strip()
            return state == "true"

        def log():
            return subprocess.run([PODMAN, "logs", name], capture_output=True, text=True).stderr

        wait_healthy(port, alive, log)
        fetch_twice(port, origin)
        users = run(PODMAN, "top", name, "user", "args").stdout.splitlines()[1:]
        assert users and all(u.split()[0] == "arca" for u in users), users
        uid = run(PODMAN, "exec", name, "id", "-u").stdout.strip()
        owners = run(PODMAN, "exec", name, "find", "/var/lib/arca", "-type", "f",
                     "-printf", "%U\\n").stdout.split()
        assert owners and set(owners) == {uid}
        wait_log_lines(log, "/api/v1/fetch/", 2)  # the access log, on the container's log
        started = time.monotonic()
        run(PODMAN, "stop", "-t", "30", name)  # the image's stop signal, SIGTERM
        assert time.monotonic() - started < 15  # stopped by itself, not killed after 30 s
        assert run(PODMAN, "inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    finally:
        subprocess.run([PODMAN, "rm", "-f", "-v", name], capture_output=True)
        origin.stop()


def test_the_image_root_runs_its_entrypoint_as_its_user(built):
    out, _ = built
    steps = dict(containerfile(out))
    entrypoint = json.loads(steps["ENTRYPOINT"])
    assert entrypoint == ENTRYPOINT
    assert steps["STOPSIGNAL"] == "SIGTERM"
    root = unpack(os.path.join(out, "rootfs.tar"))
    origin = Origin()
    port = free_port()
    user = steps["USER"]
    log = open(os.path.join(root, "tmp", "arca.out"), "wb")
    proc = subprocess.Popen(["chroot", f"--userspec={user}:{user}", root, *entrypoint,
                             *overrides(port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_healthy(port, lambda: proc.poll() is None, lambda: open(log.name).read())
        fetch_twice(port, origin)
        uid = os.stat(os.path.join(root, "var/lib/arca")).st_uid
        owned = {os.stat(os.path.join(dp, f)).st_uid
                 for dp, _, fs in os.walk(os.path.join(root, "var/lib/arca")) for f in fs}
        assert owned == {uid} and uid != 0
        os.kill(proc.pid, getattr(signal, steps["STOPSIGNAL"]))
        proc.wait(15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        origin.stop()
    try:
        text = open(log.name).read()
        assert proc.returncode == 0, text
        assert text.count("/api/v1/fetch/") == 2  # the access log on stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
