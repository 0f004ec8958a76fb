"""Every client's mirror setting names the registry its own way (issue 60, docs/REGISTRY.md,
"Which registry"): podman, CRI-O and skopeo put it first in the path (/v2/NAME/REPO/...),
containerd's hosts.toml adds ?ns=NAME, dockerd's registry-mirrors names none (the default
registry: --registry-default, docker.io unless said). Each way reaches the same upstream and
the same stored bytes; a registry named in the config file's [registry NAME] is one as
--registry's is."""

import json
import os
import subprocess

import registry as reg
from conftest import ARCA_BIN, wait_for
from registry import (Puller, build_image, scripted, start_mirror, v2,  # noqa: F401
                      write_config)


def test_path_namespace_ns_and_default_reach_one_upstream_once(start_arca, scripted, workdir):
    """The same image pulled by the path namespace, by ?ns= and by the default registry: the
    same bytes each time, and the upstream asked for each blob and for the tag once."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536, 150_000],
                                               "v1"))
    arca = start_mirror(start_arca, {"registry.lab": up.url}, default="registry.lab")
    for client in (Puller(arca.base, prefix="registry.lab"), Puller(arca.base, ns="registry.lab"),
                   Puller(arca.base)):
        got, top = client.pull("library/demo", "v1")
        assert top.headers["docker-content-digest"] == image.manifest.digest
        assert sorted(got) == sorted(b.digest for b in image.blobs())
    for blob in image.blobs():
        assert up.gets(f"/v2/library/demo/blobs/{blob.digest}") == 1, blob.digest
    assert up.gets("/v2/library/demo/manifests/v1") == 1


def test_each_name_its_own_upstream_default_docker_io_and_config_sections(start_arca, scripted,
                                                                          workdir):
    """Three upstreams holding a different image under the same name and tag: --registry
    docker.io=URL (the default registry when no --registry-default is given), --registry
    quay.lab=URL and a [registry ghcr.lab] section of the config file. Each naming gets its
    own upstream's image, and no upstream is asked for another's."""
    hub, quay, ghcr = scripted(), scripted(), scripted()
    images = {}
    for up, name in ((hub, "docker.io"), (quay, "quay.lab"), (ghcr, "ghcr.lab")):
        images[name] = up.add("library/demo", build_image(os.path.join(workdir, name), [4096],
                                                          "v1"))
    config = write_config(os.path.join(workdir, "arca.ini"),
                          ("registry ghcr.lab", {"url": ghcr.url}))
    arca = start_mirror(start_arca, {"docker.io": hub.url, "quay.lab": quay.url},
                        config=config)
    cases = [("docker.io", Puller(arca.base)),  # none named: docker.io
             ("docker.io", Puller(arca.base, prefix="docker.io")),
             ("docker.io", Puller(arca.base, ns="docker.io")),
             ("quay.lab", Puller(arca.base, prefix="quay.lab")),
             ("quay.lab", Puller(arca.base, ns="quay.lab")),
             ("ghcr.lab", Puller(arca.base, prefix="ghcr.lab")),
             ("ghcr.lab", Puller(arca.base, ns="ghcr.lab"))]
    for name, client in cases:
        got, top = client.pull("library/demo", "v1")
        assert top.headers["docker-content-digest"] == images[name].manifest.digest, name
        assert sorted(got) == sorted(b.digest for b in images[name].blobs()), name
    for up, name in ((hub, "docker.io"), (quay, "quay.lab"), (ghcr, "ghcr.lab")):
        assert up.gets("/v2/library/demo/manifests/v1") == 1, name
        others = [n for n in images if n != name]
        for other in others:
            for blob in images[other].blobs():
                assert up.count("GET", f"/v2/library/demo/blobs/{blob.digest}") == 0


def test_registry_default_names_the_registry_of_unnamed_requests(start_arca, scripted,
                                                                  workdir):
    """--registry-default quay.lab: a request naming no registry goes to quay.lab's upstream,
    not docker.io's (configured too); a repository whose first component is not a configured
    NAME and holds no dot is a repository of the default registry (library/demo, team/app)."""
    hub, quay = scripted(), scripted()
    hub.add("team/app", build_image(os.path.join(workdir, "h"), [4096], "v1"))
    image = quay.add("team/app", build_image(os.path.join(workdir, "q"), [4096], "v1"))
    arca = start_mirror(start_arca, {"docker.io": hub.url, "quay.lab": quay.url},
                        default="quay.lab")
    a = v2(arca, "team/app/manifests/v1", headers=reg.manifest_headers())
    assert a.status == 200 and a.headers["docker-content-digest"] == image.manifest.digest
    assert hub.total() == 0 and quay.gets("/v2/team/app/manifests/v1") == 1


def test_ns_names_a_registry_by_the_host_and_port_of_its_url(start_arca, scripted, workdir):
    """containerd writes ?ns= as the registry's host[:port] from the image reference
    (registry.lab.example:5000/team/tool:2 asks ?ns=registry.lab.example:5000), while podman's
    mirror location wants a NAME without a port: one NAME, `lab`, serves both, ?ns= matching
    the authority of its URL. The pulls are counted under `lab`; a host:port no configured
    registry's URL has is still NAME_UNKNOWN, and nothing is asked upstream for it."""
    up = scripted()
    image = up.add("team/tool", build_image(os.path.join(workdir, "i"), [4096, 20_000], "2"))
    arca = start_mirror(start_arca, {"lab": up.url})
    authority = up.url.split("://", 1)[1]  # 127.0.0.1:PORT
    for client in (Puller(arca.base, ns=authority), Puller(arca.base, prefix="lab")):
        got, top = client.pull("team/tool", "2")
        assert top.headers["docker-content-digest"] == image.manifest.digest
        assert sorted(got) == sorted(b.digest for b in image.blobs())
    assert up.gets("/v2/team/tool/manifests/2") == 1
    objects = 1 + len(image.blobs())
    lab = wait_for(lambda: (e := [r for r in arca.status()["registries"]
                                  if r["name"] == "lab"][0])["requests"] >= 2 * objects and e,
                   "both pulls counted under lab")
    assert (lab["pulls"], lab["requests"]) == (2, 2 * objects), lab
    before = up.total()
    host, port = authority.rsplit(":", 1)
    # a configured registry's URL names it (a site's arca asks so); another scheme's does not
    for ns in (f"{host}:{int(port) + 1}", host, f"https://{authority}"):
        reg.assert_registry_error(v2(arca, "team/tool/manifests/2", ns=ns), 404, "NAME_UNKNOWN")
    assert up.total() == before


def test_a_configured_registry_s_host_port_names_it_in_the_path_and_the_rules_test(
        start_arca, scripted, workdir):
    """An image written as `127.0.0.1:PORT/team/tool:2` (the way ctr and a newcomer write it) is
    the registry configured at that URL, as ?ns= reads it: in a /v2/ path's namespace and in
    `arca rules test` too (the new user's trial: both said it was not mirrored), and its pull is
    counted under the registry's NAME."""
    up = scripted()
    image = up.add("team/tool", build_image(os.path.join(workdir, "i"), [4096], "2"))
    arca = start_mirror(start_arca, {"lab": up.url})
    authority = up.url.split("://", 1)[1]  # 127.0.0.1:PORT
    a = v2(arca, f"{authority}/team/tool/manifests/2", headers=reg.manifest_headers())
    assert a.status == 200 and a.headers["docker-content-digest"] == image.manifest.digest
    assert up.gets("/v2/team/tool/manifests/2") == 1
    p = subprocess.run([ARCA_BIN, "rules", "test", "--json", "--registry", f"lab={up.url}",
                        f"{authority}/team/tool:2"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["url"] == f"{up.url}/v2/team/tool/manifests/2", p.stdout
