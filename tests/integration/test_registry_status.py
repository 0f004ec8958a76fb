"""What an admin sees of each registry (issue 60, docs/API.md, "Registries"; docs/REGISTRY.md,
"Visible"): the status JSON's `registries` (one entry per NAME: its url and its counters), the
metrics (arca_registry_* labelled registry="NAME"), `arca status`, the statistics page, and an
access log whose line names the image, the reference and the cache outcome. The counters
persist across restarts, kept per registry NAME, and a central arca counts the pulls its sites
ask of it ("Once for the lab")."""

import os
import subprocess
import time

import registry as reg
from conftest import ARCA_BIN, wait_clock, wait_for
from registry import (Puller, build_image, pull_through_a_tier, scripted,  # noqa: F401
                      start_mirror, v2, write_config)

NAME = "registry.lab"
COUNTERS = ("pulls", "hits", "bytes", "revalidated", "stale", "refused", "throttled", "tokens",
            "blobs", "requests")


def entry(arca, name=NAME):
    found = [r for r in arca.status()["registries"] if r["name"] == name]
    assert len(found) == 1, arca.status().get("registries")
    return found[0]


def counts(arca, name=NAME):
    e = entry(arca, name)
    return {c: e[c] for c in COUNTERS}


def test_each_registry_in_status_metrics_pages_and_access_log(start_arca, scripted, workdir):
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"),
                                               [65536, 200_000], "v1"))
    config = write_config(os.path.join(workdir, "arca.ini"),
                          # the tag's manifest only: a blob kept 1 s would be revalidated,
                          # not a hit, when a loaded machine takes a second between the pulls
                          ("rule tags", {"match": f"{up.url}/v2/library/demo/manifests/",
                                         "ttl": "1s"}))
    arca = start_mirror(start_arca, {NAME: up.url, "quay.lab": "http://127.0.0.1:1"},
                        config=config, access_log=os.path.join(workdir, "access.log"))
    counters = ("pulls", "blobs", "requests", "hits", "bytes", "revalidated", "stale",
                "throttled")
    first = entry(arca)
    assert first["url"] == up.url and all(first[c] == 0 for c in counters), first
    assert entry(arca, "quay.lab")["pulls"] == 0

    for _ in range(2):  # a cold pull, then a warm one
        Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    objects = 1 + len(image.blobs())  # a request is counted as it ends, after its last byte
    e = wait_for(lambda: (e := entry(arca))["requests"] >= 2 * objects and e, "the pulls counted")
    assert e["pulls"] == 2 and e["blobs"] == 2 * len(image.blobs()) and e["hits"] >= 1, e
    assert e["bytes"] >= sum(b.size for b in image.blobs()), e
    # expired, revalidated with a HEAD; then expired and the upstream says 429: stale
    wait_clock(int(time.time()) + 2)
    assert v2(arca, f"{NAME}/library/demo/manifests/v1").status == 200
    assert entry(arca)["revalidated"] >= 1
    wait_clock(int(time.time()) + 2)
    up.throttled = True
    a = v2(arca, f"{NAME}/library/demo/manifests/v1")
    assert a.status == 200 and "fwd=stale" in a.headers.get("cache-status", "")
    # the 429 is counted by the download that met it, which may end after the stale answer
    wait_for(lambda: (e := entry(arca))["stale"] >= 1 and e["throttled"] >= 1,
             "the stale answer and the 429 counted")
    assert entry(arca, "quay.lab")["pulls"] == 0

    metrics = arca.metrics()
    ours = [k for k in metrics if k.startswith("arca_registry_") and f'registry="{NAME}"' in k]
    assert ours, sorted(k for k in metrics if "registry" in k)
    p = subprocess.run([ARCA_BIN, "status", "--server", arca.base], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and NAME in p.stdout, p.stdout
    status, _, page = arca.get("/statistics/")
    assert status == 200 and NAME in page.decode()

    def logged():  # the access log is written in batches, about 10 ms after each line
        with open(arca.access_log) as f:
            lines = [line for line in f if "/v2/" in line]
        stale = any("library/demo/manifests/v1" in line and "STALE" in line for line in lines)
        return stale and lines

    lines = wait_for(logged, "the stale manifest's line in the access log")
    blob = image.layers[0].digest
    hits = [line for line in lines if f"library/demo/blobs/{blob}" in line]
    assert len(hits) == 2, lines
    assert " MISS:origin " in hits[0] and " HIT " in hits[1], hits  # where a miss came from
    assert any("library/demo/manifests/v1" in line and "STALE" in line for line in lines), lines


def test_the_counters_persist_across_restarts_and_reloads(start_arca, scripted, workdir):
    """A stop (SIGTERM) and a start on the same data dir find each registry's counters as they
    were, and they go on from there; a SIGHUP keeps them. A registry dropped from the options is
    not shown, and its counts come back with it."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url, "quay.lab": "http://127.0.0.1:1"})
    for _ in range(2):  # a cold pull, then a warm one
        Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    up.throttled = True
    assert v2(arca, f"{NAME}/library/demo/manifests/v2").status != 200
    pulled = 1 + len(image.blobs())  # a request is counted as it ends, after its last byte
    wait_for(lambda: (e := entry(arca))["throttled"] >= 1 and e["requests"] >= 2 * pulled + 1,
             "the pulls and the 429 counted")
    up.throttled = False
    wait_for(lambda: arca.metrics()["arca_active_downloads"] == 0, "no download left running")
    before = counts(arca)
    assert before["pulls"] == 2 and before["blobs"] == 2 * len(image.blobs()), before
    assert before["hits"] >= 2 and before["tokens"] >= 1, before
    assert before["bytes"] >= 2 * sum(b.size for b in image.blobs()), before

    arca.stop()
    arca.start()
    assert counts(arca) == before
    assert counts(arca, "quay.lab")["pulls"] == 0
    assert arca.metrics()[f'arca_registry_pulls_total{{registry="{NAME}"}}'] == before["pulls"]
    arca.reload("SIGHUP: reloaded")
    assert counts(arca) == before
    Puller(arca.base, prefix=NAME).pull("library/demo", "v1")  # they go on from the kept ones
    wait_for(lambda: counts(arca)["requests"] >= before["requests"] + pulled, "the pull counted")
    after = counts(arca)
    assert after["pulls"] > before["pulls"] and after["hits"] > before["hits"], (before, after)
    arca.stop()

    other = start_mirror(start_arca, {"quay.lab": "http://127.0.0.1:1"},
                         data_dir=arca.data_dir)
    assert NAME not in [r["name"] for r in other.status()["registries"]]
    other.stop()
    again = start_mirror(start_arca, {NAME: up.url}, data_dir=arca.data_dir)
    assert counts(again) == after


def test_a_central_counts_the_pulls_of_its_sites(start_arca, scripted, workdir):
    """A site's arca pulls through its central one (its /v2/, test_registry_tier.py): the
    central's registry counts them, each request once (one image pull, its blobs), and the
    upstream is asked once per blob."""
    up, image, central, site = pull_through_a_tier(start_arca, scripted, workdir, NAME)
    objects = 1 + len(image.blobs())  # the manifest, the config and the layers
    size = sum(b.size for b in image.blobs())
    # a request is counted as it ends, a moment after its client has the last byte
    wait_for(lambda: entry(site)["requests"] >= objects, "the site's pulls counted")
    s = entry(site)
    assert (s["pulls"], s["blobs"], s["requests"]) == (1, objects - 1, objects), s
    c = wait_for(lambda: (e := entry(central))["requests"] >= objects and e,
                 "the site's pulls counted at the central")
    assert (c["pulls"], c["blobs"], c["requests"]) == (1, objects - 1, objects), c
    assert c["hits"] == 0 and c["bytes"] >= size, c
    for blob in image.blobs():
        assert up.blob_gets("library/demo", blob.digest) == 1, blob.digest

    # a pull from the central's own /v2/ (the fetch course inside): each request counted once
    Puller(central.base, prefix=NAME).pull("library/demo", "v1")
    c2 = wait_for(lambda: (e := entry(central))["requests"] >= 2 * objects and e,
                  "the central's own pull counted")
    assert (c2["pulls"], c2["requests"]) == (2, 2 * objects) and c2["hits"] >= objects - 1, c2
    assert c2["bytes"] >= 2 * size, c2
    for blob in image.blobs():
        assert up.blob_gets("library/demo", blob.digest) == 1, blob.digest


def test_arca_status_shows_every_registry_before_any_pull(start_arca, scripted, workdir):
    """An admin confirming a set-up before any job pulled: `arca status` has a line for each
    registry a /v2/ request can reach (each --registry, a [registry NAME] section, Docker Hub
    always), zeros included, and the status JSON lists the same ones."""
    up = scripted()
    config = write_config(os.path.join(workdir, "arca.ini"),
                          ("registry ghcr.lab", {"url": "http://127.0.0.1:2"}))
    arca = start_mirror(start_arca, {NAME: up.url, "quay.lab": "http://127.0.0.1:1"},
                        config=config)
    names = {NAME, "quay.lab", "ghcr.lab", "docker.io"}
    assert {r["name"] for r in arca.status()["registries"]} == names
    p = subprocess.run([ARCA_BIN, "status", "--server", arca.base], capture_output=True,
                       text=True, timeout=10)
    lines = [x for x in p.stdout.splitlines() if x.startswith("registry ")]
    assert p.returncode == 0 and len(lines) == len(names), p.stdout
    for name in names:
        line = [x for x in lines if x.split()[1] == f"{name}:"]
        assert len(line) == 1 and ": 0 pulls, 0 blobs, 0 requests, 0 hits, 0 B;" in line[0], \
            (name, lines)
