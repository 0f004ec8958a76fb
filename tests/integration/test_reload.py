"""SIGHUP: allowed networks, quota, default TTL and log level change without a restart; a bad
file changes nothing; options that need a restart are named in the log."""

import os
import re
import signal
import time

from conftest import wait_age

import pytest


def write_config(path, *lines):
    with open(path, "w") as f:
        f.write("[arca]\nupstream-allow = 127.0.0.0/8\n" + "".join(l + "\n" for l in lines))


@pytest.fixture
def config(workdir):
    return os.path.join(workdir, "arca.ini")


def reload(arca, expect="SIGHUP: reloaded"):
    marker = arca.read_log().count(expect)
    arca.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while arca.read_log().count(expect) == marker:
        assert time.monotonic() < deadline, arca.read_log()
        time.sleep(0.05)


def test_allowed_networks_change_on_sighup(origin, start_arca, config):
    url = origin.add("/n", data=b"n" * 1000)
    write_config(config, "allow-network = 127.0.0.0/8")
    arca = start_arca("--config", config)
    assert arca.fetch(url)[0] == 200
    write_config(config, "allow-network = 10.0.0.0/8", "allow-network = fd00::/8")
    reload(arca)
    assert arca.fetch(url)[0] == 403
    assert b"may not" in arca.get("/help/")[2]
    write_config(config)
    reload(arca)
    assert arca.fetch(url)[0] == 200
    assert origin.counts["/n"] == 1


def test_removing_allow_network_on_sighup_goes_back_to_the_local_networks(origin, start_arca,
                                                                          config):
    url = origin.add("/d", data=b"d" * 1000)
    write_config(config, "trusted-proxy = 127.0.0.1", "allow-network = all")
    arca = start_arca("--config", config)

    def fetch_as(client):
        return arca.fetch(url, headers={"X-Forwarded-For": client})[0]

    assert fetch_as("203.0.113.7") == 200
    write_config(config, "trusted-proxy = 127.0.0.1")
    reload(arca, "SIGHUP: reloaded (may fetch: 127.0.0.0/8, ::1/128, 10.0.0.0/8,")
    assert fetch_as("203.0.113.7") == 403
    assert fetch_as("10.1.2.3") == 200
    assert arca.status()["allow_networks_default"] is True
    write_config(config, "trusted-proxy = 127.0.0.1", "allow-network = all")
    reload(arca, "SIGHUP: reloaded (may fetch: every client (--allow-network all); ")
    assert fetch_as("203.0.113.7") == 200
    assert origin.counts["/d"] == 1


def test_a_shorter_default_ttl_applies_on_sighup(origin, start_arca, config):
    url = origin.add("/t", data=b"t" * 1000)
    write_config(config, "default-ttl = 10d")
    arca = start_arca("--config", config)
    assert arca.fetch(url)[0] == 200
    write_config(config, "default-ttl = 1s")
    reload(arca)
    wait_age(arca, "/t", 1)
    assert arca.fetch(url)[0] == 200
    assert origin.counts["/t"] == 2


def test_a_smaller_quota_evicts_on_sighup(origin, start_arca, config):
    urls = [origin.add(f"/q{i}", data=os.urandom(300000)) for i in range(3)]
    write_config(config, "quota = 10M")
    arca = start_arca("--config", config)
    for u in urls:
        assert arca.fetch(u)[0] == 200
    assert arca.status()["resources_successes"] == 3
    write_config(config, "quota = 500K")
    reload(arca)
    deadline = time.monotonic() + 5
    while arca.status()["resources_successes"] > 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    s = arca.status()
    assert s["disk_quota"] == 500 * 1024 and s["disk_usage"] <= 500 * 1024
    assert arca.fetch(urls[2])[0] == 200 and origin.counts["/q2"] == 1  # the most recent stays


def test_a_bad_file_on_sighup_keeps_the_running_configuration(origin, start_arca, config):
    url = origin.add("/b", data=b"b" * 1000)
    write_config(config, "allow-network = 127.0.0.0/8")
    arca = start_arca("--config", config)
    write_config(config, "allow-network = 10.0.0.0/8", "quota = lots")
    reload(arca, expect="keeping the running configuration")
    assert f"{config}:4: --quota" in arca.read_log()
    assert arca.fetch(url)[0] == 200
    assert arca.status()["disk_quota"] == 5 * 1024 ** 3


def test_log_level_reloads_and_restart_options_are_named(origin, start_arca, config):
    url = origin.add("/l", data=b"l" * 1000)
    write_config(config, "threads = 2")
    arca = start_arca("--config", config)
    write_config(config, "threads = 1", "log-level = debug")
    reload(arca)
    # a setting the operator should change: a warning, not an info line
    assert re.search(r"Z warning SIGHUP: --threads changed; it takes effect at restart\n",
                     arca.read_log())
    arca.fetch(url)
    assert arca.log_shows(f"debug fetch {url}: download started")


def test_the_reload_line_says_who_may_fetch_and_the_log_level(start_arca, config):
    write_config(config)
    arca = start_arca("--config", config)
    reload(arca)
    assert ("SIGHUP: reloaded (may fetch: 127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, "
            "192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16, fc00::/7, fe80::/10 (the default: "
            "loopback and private networks; --allow-network names others); log level info, "
            "quota 5368709120 bytes, default ttl 864000s, upstream rate none, stale-if-error 86400s, "
            "stale-while-revalidate 0s, no admin token, 0 rules)") in arca.read_log()
    write_config(config, "allow-network = 127.0.0.0/8", "log-level = error")
    reload(arca, "SIGHUP: reloaded (may fetch: 127.0.0.0/8; log level error,")
    write_config(config, "allow-network = 127.0.0.0/8", "allow-network = ::1/128")
    reload(arca, "SIGHUP: reloaded (may fetch: 127.0.0.0/8, ::1/128; log level info,")


def test_the_reload_line_shows_every_reloaded_value(start_arca, config):
    """Every option SIGHUP reloads is on its line: the stale windows and the uplink cap too (the
    first week's review found the stale windows missing)."""
    write_config(config)
    arca = start_arca("--config", config)
    write_config(config, "stale-if-error = 1h", "stale-while-revalidate = 30s",
                 "upstream-rate = 1M")
    reload(arca, "upstream rate 1048576 bytes/s")
    line = next(l for l in arca.read_log().splitlines() if "upstream rate 1048576" in l)
    assert ("upstream rate 1048576 bytes/s, stale-if-error 3600s, stale-while-revalidate 30s, "
            "no admin token, 0 rules)") in line, line
