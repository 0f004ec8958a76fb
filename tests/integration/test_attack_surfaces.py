"""An outsider's review of what a stranger reads (issue 60 meets issue 61's rule): a client
outside --allow-network and --ui-network gets counters only from the status and the metrics
(docs/SECURITY.md, "Actors"). Rule and parent names are hidden from it; a registry's name is
the lab's layout too (podman's namespace: usually the registry's host, an internal one)."""

import json

INTERNAL = "registry.corp.example"


def test_a_stranger_reads_no_registry_name(start_arca):
    arca = start_arca("--allow-network", "10.0.0.0/8", "--ui-network", "10.0.0.0/8",
                      "--registry", f"{INTERNAL}=http://127.0.0.1:9",
                      "--registry-default", INTERNAL)
    status, _, body = arca.get("/metrics")
    assert status == 200 and b"arca_registry_pulls_total{registry=" in body
    assert INTERNAL.encode() not in body and b"docker.io" not in body
    status, _, body = arca.get("/api/v1/status/")
    assert status == 200 and INTERNAL.encode() not in body
    registries = json.loads(body)["registries"]
    assert len(registries) == 2 and all(r["name"] is None for r in registries), registries
    assert "pulls" in registries[0] and "url" not in registries[0]
