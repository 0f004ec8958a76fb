"""`arca rules test` takes an image reference as well as a URL (issue 60, docs/COMMANDS.md,
"rules test"; docs/REGISTRY.md, "Rules"): `docker.io/library/debian:12` is the manifest URL
its registry is asked (https://registry-1.docker.io/v2/library/debian/manifests/12 for Docker
Hub, URL/v2/... for a --registry NAME=URL), and the rule matching that URL is named."""

import json
import os
import subprocess

from conftest import ARCA_BIN
from registry import write_config

HUB = "https://registry-1.docker.io"


def run(*args):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=10)


def rules_test(config, ref, *options):
    p = run("rules", "test", "--config", config, "--json", *options, ref)
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    return json.loads(p.stdout)


def test_rules_test_of_an_image_reference(workdir):
    lab = "http://127.0.0.1:5999"
    config = write_config(os.path.join(workdir, "arca.ini"),
                          ("rule hub-library", {"match": f"{HUB}/v2/library/", "ttl": "6h"}),
                          ("rule hub", {"match": f"{HUB}/v2/", "ttl": "1h"}),
                          ("rule lab", {"match": f"{lab}/v2/team/", "ttl": "5m"}))
    cases = [
        # (reference, options, the manifest URL, the rule)
        ("docker.io/library/debian:12", (), f"{HUB}/v2/library/debian/manifests/12",
         "hub-library"),
        ("docker.io/grafana/grafana:11.0.0", (), f"{HUB}/v2/grafana/grafana/manifests/11.0.0",
         "hub"),
        ("docker.io/library/debian@sha256:" + "b" * 64, (),
         f"{HUB}/v2/library/debian/manifests/sha256:" + "b" * 64, "hub-library"),
        ("registry.lab/team/app:1.0", ("--registry", f"registry.lab={lab}"),
         f"{lab}/v2/team/app/manifests/1.0", "lab"),
        # docker.io mirrored from a lab's own upstream: its URL, no rule of Docker Hub's
        ("docker.io/library/debian:12", ("--registry", f"docker.io={lab}"),
         f"{lab}/v2/library/debian/manifests/12", None),
    ]
    for ref, options, url, rule in cases:
        said = rules_test(config, ref, *options)
        assert said["url"] == url, (ref, said["url"])
        assert (said["rule"] or {}).get("name") == rule, (ref, said["rule"])
        if rule:
            assert said["rule"]["match"] in url
    # the text form names the rule and the URL
    p = run("rules", "test", "--config", config, "docker.io/library/debian:12")
    assert p.returncode == 0, p.stderr
    assert "rule hub-library" in p.stdout and f"{HUB}/v2/library/debian/manifests/12" in p.stdout
    # a reference of a registry not configured, or not a reference: one line, exit 2
    for bad in ("other.lab/team/app:1.0", "docker.io/Library/Debian:12", "docker.io/library/"):
        p = run("rules", "test", "--config", config, bad)
        assert p.returncode == 2 and p.stdout == "" and p.stderr.startswith("arca: "), \
            (bad, p.returncode, p.stderr)
        assert p.stderr.count("\n") == 1, p.stderr
