"""A lab points its container clients at arca (issue 60, docs/REGISTRY.md, "The pull API"): arca
answers the registry API's reads as a registry does. /v2/ says 200 to anyone, so no client asks
for credentials; a manifest comes with its own media type and its Docker-Content-Digest, by tag
and by digest, to GET and HEAD; a blob with its digest; tags/list as the upstream has it; what
the upstream does not have is the registry's JSON 404."""

import http.client
import json
import os

import registry as reg
from registry import scripted  # noqa: F401 (a fixture)
from registry import API_VERSION, assert_registry_error, build_image, digest_of, start_mirror, v2

NAME = "registry.lab"


def test_v2_says_200_to_anyone_and_asks_no_credentials(start_arca, scripted):
    """`GET /v2/` (what every client asks first) is 200 with the API version, {} and no
    challenge, in each of the three namings; HEAD too; nothing reaches the upstream, even when
    the upstream itself wants a token."""
    up = scripted(auth="token")
    arca = start_mirror(start_arca, {NAME: up.url}, default=NAME)
    for a in (v2(arca, ""), v2(arca, "", ns=NAME), v2(arca, "", method="HEAD")):
        assert a.status == 200, (a.status, a.body)
        assert a.headers.get("docker-distribution-api-version") == API_VERSION
        assert "www-authenticate" not in a.headers
    a = v2(arca, "")
    assert a.headers["content-type"].startswith("application/json")
    assert json.loads(a.body) == {}
    assert up.total() == 0


def test_manifests_blobs_and_tags_as_a_registry_answers(start_arca, scripted, workdir):
    """A Docker manifest, an OCI index and the OCI manifest it names: each with its own media
    type as Content-Type, its digest as Docker-Content-Digest, its length; HEAD says the same
    with no body; blobs come whole with their digest; tags/list is the upstream's; an unknown
    tag is MANIFEST_UNKNOWN, an unknown blob BLOB_UNKNOWN, an unknown repository's tags
    NAME_UNKNOWN."""
    up = scripted()
    docker = up.add("library/demo", build_image(os.path.join(workdir, "d"), [65536, 100_000],
                                                "v1"))
    oci = up.add("library/demo", build_image(os.path.join(workdir, "o"), [70_000], "v2",
                                             oci=True, index=True))
    arca = start_mirror(start_arca, {NAME: up.url})
    base = f"{NAME}/library/demo"
    for ref, blob in (("v1", docker.manifest), ("v2", oci.index),
                      (oci.manifest.digest, oci.manifest), (docker.manifest.digest,
                                                            docker.manifest)):
        for method in ("GET", "HEAD", "GET"):  # the second GET is the cache's answer
            a = v2(arca, f"{base}/manifests/{ref}", method, reg.manifest_headers())
            assert a.status == 200, (ref, method, a.status, a.body[:200])
            assert a.headers["content-type"] == blob.media_type, (ref, a.headers)
            assert a.headers["docker-content-digest"] == blob.digest, (ref, a.headers)
            assert a.headers["docker-distribution-api-version"] == API_VERSION
            assert int(a.headers["content-length"]) == blob.size
            assert a.body == (blob.data if method == "GET" else b"")
    for blob in docker.blobs() + oci.blobs():
        for method in ("GET", "HEAD"):
            a = v2(arca, f"{base}/blobs/{blob.digest}", method)
            assert a.status == 200 and a.complete, (blob.digest, method, a.status)
            assert a.headers["docker-content-digest"] == blob.digest
            assert int(a.headers["content-length"]) == blob.size
            if method == "GET":
                assert digest_of(a.body) == blob.digest
    a = v2(arca, f"{base}/tags/list")
    assert a.status == 200 and a.json() == {"name": "library/demo", "tags": ["v1", "v2"]}

    assert_registry_error(v2(arca, f"{base}/manifests/nope", headers=reg.manifest_headers()),
                          404, "MANIFEST_UNKNOWN")
    assert_registry_error(v2(arca, f"{base}/blobs/{digest_of(b'never pushed')}"), 404,
                          "BLOB_UNKNOWN")
    assert_registry_error(v2(arca, f"{NAME}/library/absent/tags/list"), 404, "NAME_UNKNOWN")


def test_repeated_hits_keep_the_registry_headers_and_the_fetch_api_its_own(start_arca, scripted,
                                                                           workdir):
    """A hit answered many times goes out from one answer prepared for the object and shared by
    every plain hit (its headers built once, its file opened once): through /v2/ each copy still
    says what a registry says (the API version, the digest asked, a tag's digest from its body),
    through the fetch API for the same upstream URL none of it; bytes whole every time, HEAD's
    length the body's. The upstream is asked once for each."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [3 << 20], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    base = f"{NAME}/library/demo"
    layer = image.blobs()[-1]
    for path, blob, headers in ((f"blobs/{layer.digest}", layer, None),
                                ("manifests/v1", image.manifest, reg.manifest_headers())):
        fetch_url = f"{up.url}/v2/library/demo/{path}"
        for turn in range(6):
            a = v2(arca, f"{base}/{path}", "HEAD" if turn == 3 else "GET", headers)
            assert a.status == 200 and a.complete, (path, turn, a.status, a.body[:200])
            assert a.headers.get("docker-content-digest") == blob.digest, (path, turn, a.headers)
            assert a.headers.get("docker-distribution-api-version") == API_VERSION
            assert int(a.headers["content-length"]) == blob.size
            assert a.body == (b"" if turn == 3 else blob.data), (path, turn)
            status, got, body = arca.fetch(fetch_url)
            assert status == 200 and digest_of(body) == blob.digest, (path, turn, status)
            assert not any(k.startswith("docker-") for k in got), (path, turn, got)
        assert up.gets(f"/v2/library/demo/{path}") == 1, path
    # one connection, kept alive: a request's lines are its own, never the next one's
    conn = http.client.HTTPConnection(arca.host, arca.port, timeout=30)
    try:
        for target in (f"/v2/{base}/blobs/{layer.digest}", arca.fetch_path(
                f"{up.url}/v2/library/demo/blobs/{layer.digest}")) * 2:
            conn.request("GET", target)
            r = conn.getresponse()
            assert r.status == 200 and digest_of(r.read()) == layer.digest, (target, r.status)
            assert (r.getheader("Docker-Content-Digest") == layer.digest) == \
                target.startswith("/v2/"), (target, r.getheaders())
    finally:
        conn.close()
