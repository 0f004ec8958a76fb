"""The outside review of a site asking its central's /v2/ (test_registry_tier.py): where the
tier meets the registry's naming. A site's registry is named to its central by its URL, so a
central mirroring another registry under the same NAME, or its own Docker Hub for a site's
private "docker.io", never answers for it; and the tier's loop check holds on /v2/ as on the
fetch API."""

import os
import socket

from registry import Puller, build_image, manifest_headers, scripted, start_mirror  # noqa: F401
from tier import parent_row

from conftest import free_port

NAME = "registry.lab"


def test_a_central_mirroring_another_registry_under_the_name_never_answers_for_it(
        start_arca, scripted, workdir):
    """Site: NAME = registry A; central: NAME = registry B, both holding library/demo:v1. The
    site's client gets A's image (B's checked out against B's own digests, so nothing else would
    have told them apart)."""
    up_a, up_b = scripted(), scripted()
    a = up_a.add("library/demo", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    up_b.add("library/demo", build_image(os.path.join(workdir, "b"), [70_000], "v1"))
    central = start_mirror(start_arca, {NAME: up_b.url}, name="central")
    site = start_mirror(start_arca, {NAME: up_a.url}, "--parent", central.base, name="site")
    got, top = Puller(site.base, prefix=NAME).pull("library/demo", "v1")
    assert top.body == a.manifest.data, "registry B's manifest answered for registry A"
    assert sorted(got) == sorted(b.digest for b in a.blobs())
    assert up_b.gets("/v2/library/demo/manifests/v1") == 0
    assert parent_row(site)["fallbacks"]["status"] >= 1


def test_a_site_s_own_docker_io_is_never_asked_of_the_central_s_docker_hub(start_arca, scripted,
                                                                         workdir):
    """Site: docker.io = the lab's own registry; central: Docker Hub, known without being
    named. The central never sends the site's image names to Docker Hub."""
    up = scripted()
    a = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    central = start_mirror(start_arca, {"other": up.url + "/x"}, name="central")
    site = start_mirror(start_arca, {"docker.io": up.url}, "--parent", central.base,
                        "--registry-default", "docker.io", name="site")
    got = Puller(site.base).get("library/demo", "manifests", "v1", headers=manifest_headers())
    assert got.status == 200 and got.body == a.manifest.data
    assert "fetch https://registry-1.docker.io" not in central.read_log()


def test_two_arcas_each_the_other_s_parent_see_the_loop_on_v2(start_arca, scripted, workdir):
    """A's parent is B and B's is A: a /v2/ pull through A is seen as a loop by its Via (as the
    fetch API's is), not waited on until the stall limit, and the registry is asked once."""
    up = scripted()
    a_img = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    p1, p2 = free_port(), free_port()
    b = start_mirror(start_arca, {NAME: up.url}, "--parent", f"http://127.0.0.1:{p1}", name="b",
                     port=p2)
    a = start_mirror(start_arca, {NAME: up.url}, "--parent", f"http://127.0.0.1:{p2}", name="a",
                     port=p1)
    got = Puller(a.base, prefix=NAME).get("library/demo", "manifests", "v1",
                                          headers=manifest_headers())
    assert got.status == 200 and got.body == a_img.manifest.data
    loops = parent_row(a)["fallbacks"]["loop"] + parent_row(b)["fallbacks"]["loop"]
    refused = parent_row(a)["fallbacks"]["refused"] + parent_row(b)["fallbacks"]["refused"]
    assert loops >= 1 and refused == 0, (parent_row(a), parent_row(b))
    assert up.gets("/v2/library/demo/manifests/v1") == 1


def test_a_one_component_name_is_never_read_as_docker_hub_s_library_at_the_central(
        start_arca, scripted, workdir):
    """The lab's registry is `lab` at the site and `docker.io` at the central, which reads a
    one-component name `demo` as Docker Hub's `library/demo`: the site's client gets `demo`,
    never `library/demo` (both consistent with their own digests)."""
    up = scripted()
    demo = up.add("demo", build_image(os.path.join(workdir, "d"), [65536], "v1"))
    up.add("library/demo", build_image(os.path.join(workdir, "l"), [70_000], "v1"))
    central = start_mirror(start_arca, {"docker.io": up.url}, name="central")
    site = start_mirror(start_arca, {"lab": up.url}, "--parent", central.base, name="site")
    got, top = Puller(site.base, prefix="lab").pull("demo", "v1")
    assert top.body == demo.manifest.data, "library/demo's manifest answered for demo"
    assert sorted(got) == sorted(b.digest for b in demo.blobs())
    assert up.gets("/v2/library/demo/manifests/v1") == 0


def test_a_via_naming_this_arca_on_v2_costs_the_registry_nothing(start_arca, scripted, workdir):
    """A /v2/ request whose Via names this arca (a loop, or a forged one) is refused 508 before
    the registry's ping and realm are asked, as a refused client costs nothing upstream."""
    up = scripted(auth="token")
    up.add("library/demo", build_image(os.path.join(workdir, "d"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    via = f"1.1 {socket.gethostname()}:{arca.port} (arca)"
    got = Puller(arca.base, prefix=NAME).get("library/demo", "manifests", "v1",
                                             headers={**manifest_headers(), "Via": via})
    assert got.status == 508, (got.status, got.body[:200])
    assert up.total() == 0, [(r.server, r.method, r.path) for r in up.log]
