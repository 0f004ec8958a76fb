"""A scenario's body run in a network namespace of its own, where extra addresses on loopback
stand for the host's LAN addresses and nothing can leave the machine (no route but loopback).

run("module:function", *args) runs that function of a module here (tests/integration/) in a
fresh namespace: `unshare -n` as root, else `unshare -rn` (a user namespace, where the kernel
allows one), else `sudo -n unshare -n`. The function starts its own origin and arca (conftest's
Origin and Arca, stopped before it returns) and asserts; its failure comes back with its
traceback. Where no namespace can be made, the scenario is skipped, saying why."""

import importlib
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"


def _unshare():
    """The command that makes a network namespace here, or None."""
    candidates = [["unshare", "-n"]] if os.geteuid() == 0 else [["unshare", "-rn"],
                                                               ["sudo", "-n", "unshare", "-n"]]
    for argv in candidates:
        if subprocess.run(argv + ["true"], capture_output=True, timeout=30).returncode == 0:
            return argv
    return None


def run(target, *args, timeout=120):
    argv = _unshare()
    if argv is None:
        pytest.skip("no network namespace can be made here (unshare -n: not root, and neither "
                    "user namespaces nor sudo -n allowed)")
    # sudo keeps little of the environment: what arca and the sanitizers are told goes along
    passed = [f"{k}={os.environ[k]}" for k in ("ARCA_BIN", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                                               "TSAN_OPTIONS", "LSAN_OPTIONS") if k in os.environ]
    done = subprocess.run(argv + ["env", f"PYTHONPATH={HERE}", "PYTHONDONTWRITEBYTECODE=1",
                                  *passed, PYTHON, os.path.abspath(__file__), target, *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{target} in its namespace:\n{done.stdout}{done.stderr}"
    return done.stdout


def ip(*args):
    """`ip` inside the namespace (loopback up, addresses added)."""
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


if __name__ == "__main__":
    module, function = sys.argv[1].split(":")
    ip("link", "set", "lo", "up")
    getattr(importlib.import_module(module), function)(*sys.argv[2:])
