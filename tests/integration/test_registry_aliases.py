"""The names clients use for a registry (issue 68, docs/REGISTRY.md "Which registry"): a
`[registry NAME]` section's `aliases = HOST[:PORT], ...` are names of that registry too, as its
NAME and its URL's host[:port] are, wherever a registry is named: podman's and skopeo's path
namespace (/v2/ALIAS/...), containerd's ?ns=ALIAS, `arca rules test ALIAS/REPO:TAG`, and an
image's purge. An alias two registries would answer to is refused at start, one line naming
both."""

import json
import os
import subprocess
import urllib.parse

import registry as reg
from conftest import ARCA_BIN, wait_for
from registry import Puller, build_image, scripted, skopeo, start_mirror, write_config  # noqa: F401
from test_admin import TOKEN, token_file


def run(*args, timeout=10):
    return subprocess.run([ARCA_BIN, *args], capture_output=True, text=True, timeout=timeout)


def test_an_alias_names_its_registry_in_paths_ns_rules_test_and_purge(start_arca, scripted,
                                                                      workdir):
    """The lab's registry is dialled at 127.0.0.1:PORT while its images are written
    registry.lab.example:5000/team/tool:2 (containerd's ?ns=) and registry.lab.example/...
    (skopeo's registries.conf prefix, arca's path namespace): both aliases reach the same
    upstream and the same stored bytes, one GET upstream per object, counted under `lab`;
    `arca rules test` reads the reference by either alias; the image is purged by an alias."""
    up = scripted()
    image = up.add("team/tool", build_image(os.path.join(workdir, "i"), [4096, 30_000], "2"))
    ini = write_config(os.path.join(workdir, "arca.ini"),
                       ("registry lab", {"url": up.url,
                                         "aliases": "registry.lab.example:5000, "
                                                    "registry.lab.example"}))
    arca = start_mirror(start_arca, {}, "--admin-token-file", token_file(workdir), config=ini)
    assert arca.log_shows(f"lab ({up.url}, also registry.lab.example:5000, registry.lab.example)")
    conf = reg.registries_conf(os.path.join(workdir, "registries.conf"), "registry.lab.example",
                               f"127.0.0.1:{arca.port}/registry.lab.example")
    skopeo("copy", "docker://registry.lab.example/team/tool:2", f"dir:{workdir}/out",
           registries_conf=conf)
    assert reg.dir_layers(os.path.join(workdir, "out")) == image.layer_sha256s()
    for client in (Puller(arca.base, ns="registry.lab.example:5000"),
                   Puller(arca.base, prefix="registry.lab.example:5000"),
                   Puller(arca.base, ns="registry.lab.example")):
        got, top = client.pull("team/tool", "2")
        assert top.headers["docker-content-digest"] == image.manifest.digest
        assert sorted(got) == sorted(b.digest for b in image.blobs())
    assert up.gets("/v2/team/tool/manifests/2") == 1
    for blob in image.blobs():
        assert up.gets(f"/v2/team/tool/blobs/{blob.digest}") == 1, blob.digest
    wait_for(lambda: [r for r in arca.status()["registries"] if r["name"] == "lab"][0]["pulls"]
             >= 4, "the pulls counted under lab")

    for ref in ("registry.lab.example:5000/team/tool:2", "registry.lab.example/team/tool:2",
                f"{up.hostport}/team/tool:2", "lab/team/tool:2"):
        p = run("rules", "test", "--json", "--config", ini, ref)
        assert p.returncode == 0, (ref, p.stderr)
        assert json.loads(p.stdout)["url"] == f"{up.url}/v2/team/tool/manifests/2", ref

    listing = json.loads(arca.get("/api/v1/images/")[2])
    assert [(i["registry"], i["repository"]) for i in listing["images"]] == \
        [("lab", "team/tool")], listing
    query = urllib.parse.urlencode({"image": "registry.lab.example:5000/team/tool:2"})
    status, _, body = arca.get(f"/api/v1/purge/?{query}",
                               {"Authorization": f"Bearer {TOKEN}"}, method="POST")
    assert status == 200, body
    assert json.loads(body)["registry"] == "lab"
    assert json.loads(arca.get("/api/v1/images/")[2])["images"] == []


def test_an_alias_two_registries_would_answer_to_is_refused(workdir):
    """An alias given to two registries, or equal to another registry's NAME or to the
    host[:port] of its URL, or outside a registry name's grammar: one line naming both
    registries (or the key); serve exits 2, check-config 1. Distinct aliases pass."""
    data = os.path.join(workdir, "data")
    a, b = "http://127.0.0.1:5001", "http://127.0.0.1:5002"
    cases = [
        ([("registry lab", {"url": a, "aliases": "mirror.lab, shared.lab"}),
          ("registry other", {"url": b, "aliases": "shared.lab"})],
         ["shared.lab", "lab", "other"]),
        ([("registry lab", {"url": a, "aliases": "other"}), ("registry other", {"url": b})],
         ["alias other", "lab", "other"]),
        ([("registry lab", {"url": a, "aliases": "127.0.0.1:5002"}),
          ("registry other", {"url": b})],
         ["127.0.0.1:5002", "lab", "other"]),
        ([("registry lab", {"url": a, "aliases": "docker.io"})], ["docker.io", "lab"]),
        # a file's value is not repeated in its error (it might be a secret): the key is named
        ([("registry lab", {"url": a, "aliases": "Mirror.Lab"})], ["lab: aliases", "HOST"]),
        ([("registry lab", {"url": a, "aliases": "a/b"})], ["lab: aliases", "HOST"]),
        ([("registry lab", {"url": a, "aliases": "x.lab,"})], ["lab: aliases", "HOST"]),
    ]
    for sections, says in cases:
        ini = write_config(os.path.join(workdir, "arca.ini"), *sections)
        for command, code in (("serve", 2), ("check-config", 1)):
            p = run(command, "--data-dir", data, "--listen", "127.0.0.1:1", "--config", ini)
            lines = p.stderr.strip().splitlines()
            assert p.returncode == code and len(lines) == 1, (command, sections, p.stderr)
            assert all(s in lines[0] for s in says), (says, lines)
    ini = write_config(os.path.join(workdir, "arca.ini"),
                       ("registry lab", {"url": a, "aliases": "mirror.lab, 10.1.2.3:5000"}),
                       ("registry other", {"url": b, "aliases": "other.lab"}))
    p = run("check-config", "--data-dir", data, "--config", ini)
    assert p.returncode == 0, p.stderr
