"""An outsider's review of the registry mirror (issue 60) where it meets the rules (issue 52): a
client a rule refuses must cost the lab nothing upstream. Before this, /v2/ did the token dance
for the request (the registry's /v2/ ping, the realm asked with the lab's login) and only then
let the fetch course refuse the client: a client outside a rule's allow-network could make arca
log in to the realm for any repository scope it names, as often as it likes (each a token kept,
pushing out the tokens the lab's pulls use), and read the realm's refusals in its answer."""

import os

from registry import (assert_registry_error, build_image, scripted, start_mirror,  # noqa: F401
                      v2, write_config)
from test_registry_auth import NAME, PASSWORD, USER, write_secret


def test_a_client_a_rule_refuses_never_makes_arca_ask_the_registry_or_its_realm(
        start_arca, scripted, workdir):
    up = scripted(auth="token", users={USER: PASSWORD})
    up.add("team/secret", build_image(os.path.join(workdir, "s"), [4096], "v1"))
    up.add("library/open", build_image(os.path.join(workdir, "o"), [4096], "v1"))
    config = write_config(
        os.path.join(workdir, "arca.ini"),
        (f"registry {NAME}", {"url": up.url, "username": USER,
                              "password-file": write_secret(workdir, "pw", PASSWORD)}),
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
