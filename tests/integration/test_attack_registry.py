"""An outsider's review of the registry mirror (issue 60) where it meets the rules (issue 52): a
client a rule refuses must cost the lab nothing upstream. Before this, /v2/ did the token dance
for the request (the registry's /v2/ ping, the realm asked with the lab's login) and only then
let the fetch course refuse the client: a client outside a rule's allow-network could make arca
log in to the realm for any repository scope it names, as often as it likes (each a token kept,
pushing out the tokens the lab's pulls use), and read the realm's refusals in its answer."""

import os
import ssl
import threading
from http.server import ThreadingHTTPServer

import pytest

from conftest import SERVE_POLL
from registry import (Puller, ScriptedRegistry, _Handler, assert_registry_error,  # noqa: F401
                      build_image, manifest_headers, scripted, start_mirror, v2, write_config)
from test_registry_auth import NAME, PASSWORD, USER, login_config, login_section


def test_a_client_a_rule_refuses_never_makes_arca_ask_the_registry_or_its_realm(
        start_arca, scripted, workdir):
    up = scripted(auth="token", users={USER: PASSWORD})
    up.add("team/secret", build_image(os.path.join(workdir, "s"), [4096], "v1"))
    up.add("library/open", build_image(os.path.join(workdir, "o"), [4096], "v1"))
    config = write_config(
        os.path.join(workdir, "arca.ini"), login_section(workdir, up),
        # the team's images are for the boards' network only; loopback is not in it
        ("rule team", {"match": f"{up.url}/v2/team/", "allow-network": "10.99.0.0/16"}))
    arca = start_mirror(start_arca, {}, config=config)
    for i in range(5):
        for kind, ref in (("manifests", "v1"), ("tags", "list")):
            a = v2(arca, f"{NAME}/team/secret{i}/{kind}/{ref}")
            assert_registry_error(a, 403, "DENIED")
        assert v2(arca, f"{NAME}/team/secret{i}/blobs/sha256:{'a' * 64}", "HEAD").status == 403
    assert up.total() == 0, [(r.server, r.method, r.path) for r in up.log]
    assert arca.status()["registries"][0]["tokens"] == 0
    # a repository no rule narrows is pulled as before: the dance happens for it
    a = v2(arca, f"{NAME}/library/open/manifests/v1")
    assert a.status == 200, a.body[:200]
    assert len(up.token_requests()) == 1


@pytest.mark.parametrize("only", [False, True], ids=["parent", "parent-only"])
def test_a_site_pulls_a_private_image_with_its_centrals_login_alone(start_arca, scripted,
                                                                    workdir, only):
    """Two tiers as CLUSTER.md sets them up: the central holds the lab's login to the registry
    (its realm gives no token without it), the site names the registry and its --parent, no
    password. The site's pull is the central's: its own dance failing refuses nothing; with
    --parent-only the site never asks the registry nor its realm for itself."""
    up = scripted(auth="token", users={USER: PASSWORD})
    image = up.add("team/app", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    config = login_config(workdir, up, name="central.ini")
    central = start_mirror(start_arca, {}, config=config, name="central")
    site = start_mirror(start_arca, {NAME: up.url}, "--parent", central.base,
                        *(["--parent-only"] if only else []), name="site")
    client = Puller(site.base, prefix=NAME)
    got, _ = client.pull("team/app", "v1")
    assert sorted(got) == sorted(x.digest for x in image.blobs())
    granted = [r for r in up.token_requests() if "authorization" in r.headers]
    assert len(granted) == 1  # the central's, with the login
    if only:
        assert len(up.token_requests()) == 1 and up.count("GET", "/v2/") == 1


def test_a_kept_blob_answers_after_a_restart_while_the_registry_is_down(start_arca, scripted,
                                                                        workdir):
    """What never changes needs no upstream: a layer kept by its digest answers from the store
    when arca, restarted (its tokens are not kept), finds the registry down."""
    up = scripted(auth="token")
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    for blob in image.blobs():
        assert v2(arca, f"{NAME}/library/demo/blobs/{blob.digest}").status == 200
    arca.stop()
    up.go_down()
    arca.start()
    for blob in image.blobs():
        a = v2(arca, f"{NAME}/library/demo/blobs/{blob.digest}")
        assert a.status == 200 and a.body == blob.data, (a.status, a.body[:200])


class TlsRegistry(ScriptedRegistry):
    """The scripted registry answering over https (the test CA), its token realm plain http:
    what a registry (or whoever answers for it) names in its challenge."""

    def __init__(self, tls, **kw):
        self.tls = tls
        super().__init__(**kw)

    def _serve(self, role, port=0, host="127.0.0.1"):
        server = ThreadingHTTPServer((host, port), _Handler)
        if role == "registry":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls["cert"], self.tls["key"])
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        server.upstream, server.role = self, role
        threading.Thread(target=server.serve_forever, args=(SERVE_POLL,), daemon=True).start()
        self.servers[role] = server
        return server.server_address[1]

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"


def test_the_login_never_goes_to_a_plain_http_realm_of_an_https_registry(start_arca, workdir,
                                                                         tls_files):
    """The admin names the registry by https://; its challenge names a token realm over plain
    http. arca does not send the lab's password there in the clear (basic auth on the wire):
    the pull is refused with one line saying why."""
    up = TlsRegistry(tls_files, auth="token", users={USER: PASSWORD})
    try:
        up.add("team/app", build_image(os.path.join(workdir, "a"), [4096], "v1"))
        config = login_config(workdir, up)
        arca = start_mirror(start_arca, {}, "--ca-file", tls_files["ca"], config=config)
        a = v2(arca, f"{NAME}/team/app/manifests/v1", headers=manifest_headers())
        assert up.count("GET", "/v2/") == 1  # the https registry was reached
        assert not [r for r in up.token_requests() if "authorization" in r.headers]
        assert a.status >= 400 and "plain http" in a.headers.get("arca-error", ""), \
            (a.status, a.headers.get("arca-error"))
    finally:
        up.stop()


def test_a_layers_digest_never_hands_a_private_layer_to_another_url(start_arca, scripted,
                                                                     origin, workdir):
    """The lab's login opens a private repository to arca; its layer's digest is in a build
    log. A client that does not know the repository (or that it is kept) gives the digest
    with a URL of its own origin, which answers the one-byte confirmation as the layer's
    length: the layer must not come out under that URL. arca's login is a credential, as a
    bucket's signature is (docs/SECURITY.md, "Shared objects and digests")."""
    up = scripted(auth="token", users={USER: PASSWORD})
    image = up.add("team/private", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    config = login_config(workdir, up)
    arca = start_mirror(start_arca, {}, config=config)
    layer = image.layers[0]
    assert v2(arca, f"{NAME}/team/private/blobs/{layer.digest}").status == 200
    origin.add("/x.tar.gz", data=b"\0" * layer.size)
    status, _, body = arca.fetch(origin.url("/x.tar.gz"), sha256=layer.digest[7:])
    assert layer.data not in body and body != layer.data, status
