"""The registry scenarios' harness (registry.py) against itself, no arca: an image made here is
what skopeo and a plain-HTTP client pull back from a real docker-registry and from the scripted
upstream (its token realm, its CDN, its switches), and registries.conf's mirror is what skopeo
and podman follow. The mirror scenarios (test_registry_*.py) stand on it: a harness bug must
fail here, not pass as an arca bug."""

import json
import os

import pytest

import registry as reg
from registry import docker_registry  # noqa: F401 (a fixture)
from registry import Puller, ScriptedRegistry, build_image, digest_of, skopeo


def test_docker_registry_takes_a_push_and_gives_the_image_back(docker_registry, workdir):
    """skopeo pushes an OCI image made here and a Docker one with an index goes through the
    push API; skopeo inspect, skopeo copy and a plain client get each layer's bytes back."""
    oci = build_image(os.path.join(workdir, "oci"), [65536, 300_000], "v1", oci=True)
    reg.skopeo_push(oci, docker_registry.hostport, "library/demo")
    doc = json.loads(skopeo("inspect", "--tls-verify=false",
                            f"docker://{docker_registry.hostport}/library/demo:v1").stdout)
    assert doc["Digest"] == oci.manifest.digest and sorted(doc["Layers"]) == oci.layer_sha256s()

    docker = build_image(os.path.join(workdir, "docker"), [100_000, b"x" * 70_000], "v2",
                         index=True)
    docker_registry.push(docker, "library/demo")
    got, top = Puller(docker_registry.url).pull("library/demo", "v2")
    assert top.headers["content-type"] == reg.DOCKER_LIST
    assert top.headers["docker-content-digest"] == docker.index.digest == digest_of(top.body)
    assert top.headers["docker-distribution-api-version"] == reg.API_VERSION
    assert sorted(got) == sorted(b.digest for b in docker.blobs())
    out = os.path.join(workdir, "out")
    skopeo("copy", "--src-tls-verify=false",
           f"docker://{docker_registry.hostport}/library/demo@{docker.index.digest}", f"dir:{out}")
    assert reg.dir_layers(out) == docker.layer_sha256s()


def test_scripted_upstream_token_realm_cdn_and_log(workdir):
    """A client that follows the Bearer realm with a login gets the image, each blob from the
    CDN without its Authorization; the token is asked once; a wrong login, an expired token
    and a token of another scope get 401; the CDN refuses Authorization; the log counts it."""
    image = build_image(os.path.join(workdir, "img"), [65536, 200_000], "v1")
    up = ScriptedRegistry(auth="token", users={"alice": "pw-right"}, cdn=True, token_ttl=300)
    try:
        up.add("library/demo", image)
        got, top = Puller(up.url, login=("alice", "pw-right")).pull("library/demo", "v1")
        assert top.headers["docker-content-digest"] == image.manifest.digest
        assert sorted(got) == sorted(b.digest for b in image.blobs())
        assert len(up.token_requests()) == 1
        for b in image.blobs():
            assert up.blob_gets("library/demo", b.digest) == 1
            assert up.gets(f"/v2/library/demo/blobs/{b.digest}") == 1  # the 307
        assert all("authorization" not in r.headers for r in up.requests("cdn"))
        # anonymous, or the wrong password: no token
        with pytest.raises(AssertionError):
            Puller(up.url, login=("alice", "wrong")).pull("library/demo", "v1")
        with pytest.raises(AssertionError):
            Puller(up.url).pull("library/demo", "v1")
        # a token of another repository, and a CDN asked with Authorization
        token = up.issued()[0]
        a = reg.request("127.0.0.1", up.port, "GET", "/v2/library/other/manifests/v1",
                        {"Authorization": "Bearer " + token})
        assert a.status == 401 and a.error_codes() == ["UNAUTHORIZED"]
        assert 'scope="repository:library/other:pull"' in a.headers["www-authenticate"]
        a = reg.request("127.0.0.1", up.cdn_port, "GET", f"/cdn/{image.config.digest}",
                        {"Authorization": "Bearer " + token})
        assert a.status == 403
        # an expired token
        up.tokens[token] = (up.tokens[token][0], 0)
        a = reg.request("127.0.0.1", up.port, "GET", "/v2/library/demo/manifests/v1",
                        {"Authorization": "Bearer " + token})
        assert a.status == 401
    finally:
        up.stop()


def test_scripted_upstream_switches(workdir):
    """429, a 5xx, down and back, the lies and a blob hidden from one repository, each as a
    client sees it."""
    image = build_image(os.path.join(workdir, "img"), [65536], "v1")
    up = ScriptedRegistry()
    try:
        up.add("library/demo", image)
        up.add("team/b", image)
        path = "/v2/library/demo/manifests/v1"
        a = reg.request("127.0.0.1", up.port, "HEAD", path)
        assert a.status == 200 and a.body == b""
        assert a.headers["docker-content-digest"] == image.manifest.digest
        assert int(a.headers["content-length"]) == image.manifest.size
        assert (up.heads(path), up.gets(path)) == (1, 0)
        up.throttled = True
        a = reg.request("127.0.0.1", up.port, "GET", path)
        assert a.status == 429 and a.error_codes() == ["TOOMANYREQUESTS"]
        up.throttled, up.failing = False, 503
        assert reg.request("127.0.0.1", up.port, "GET", path).status == 503
        up.failing = None
        up.go_down()
        with pytest.raises(ConnectionRefusedError):
            reg.request("127.0.0.1", up.port, "GET", path, timeout=5)
        up.come_up()
        assert reg.request("127.0.0.1", up.port, "GET", path).status == 200
        layer = image.layers[0]
        up.lie_blob(layer.digest)
        a = reg.request("127.0.0.1", up.port, "GET", f"/v2/library/demo/blobs/{layer.digest}")
        assert a.status == 200 and a.headers["docker-content-digest"] == layer.digest
        assert len(a.body) == layer.size and digest_of(a.body) != layer.digest
        up.lie_manifest("library/demo", image.manifest.digest)
        a = reg.request("127.0.0.1", up.port, "GET",
                        f"/v2/library/demo/manifests/{image.manifest.digest}")
        assert a.headers["docker-content-digest"] == image.manifest.digest
        assert digest_of(a.body) != image.manifest.digest
        up.lie_digest_header("library/demo", "v1")
        a = reg.request("127.0.0.1", up.port, "GET", path)
        assert a.body == image.manifest.data
        assert a.headers["docker-content-digest"] != image.manifest.digest
        up.hide_blob("team/b", image.config.digest)
        a = reg.request("127.0.0.1", up.port, "GET", f"/v2/team/b/blobs/{image.config.digest}")
        assert a.status == 404 and a.error_codes() == ["BLOB_UNKNOWN"]
        a = reg.request("127.0.0.1", up.port, "GET", "/v2/team/b/tags/list")
        assert a.json() == {"name": "team/b", "tags": ["v1"]}
    finally:
        up.stop()


def test_registries_conf_mirror_is_followed_by_skopeo(workdir):
    """registries.conf's mirror (here the scripted upstream itself, no namespace) is what
    skopeo pulls from (podman's half: test_registry_podman.py); the registry's own location
    is never reached."""
    image = build_image(os.path.join(workdir, "img"), [65536, 150_000], "v1")
    up = ScriptedRegistry()
    try:
        up.add("library/demo", image)
        conf = reg.registries_conf(os.path.join(workdir, "registries.conf"), "registry.lab",
                                   up.hostport)
        out = os.path.join(workdir, "out")
        skopeo("copy", "docker://registry.lab/library/demo:v1", f"dir:{out}",
               registries_conf=conf)
        assert reg.dir_layers(out) == image.layer_sha256s()
        assert up.gets("/v2/library/demo/manifests/v1") >= 1
    finally:
        up.stop()
