"""arca does the upstream's auth (issue 60, docs/REGISTRY.md, "Credentials"; docs/SECURITY.md):
the Bearer realm's dance anonymously or with [registry NAME]'s username and password-file,
basic auth where the upstream wants it, one token per scope kept while it is valid, a new one
once it has expired; blobs redirected to a CDN are followed by arca, never by the client, and
the CDN never sees the registry's Authorization. The password and the tokens never appear in
arca's log, access log, status, metrics, listings, pages, nor in any answer a client gets."""

import base64
import os
import time

import registry as reg
from conftest import wait_for
from registry import (Puller, build_image, digest_of, scripted, shown_by,  # noqa: F401
                      start_mirror, v2, write_config, write_secret)

NAME = "registry.lab"
USER = "lab-bot"
PASSWORD = "pw-Qx7vT2mK9sLr4Zb8"


def login_section(workdir, up, user=USER, password=PASSWORD):
    """The [registry NAME] section of `up` with the lab's login (its password in a file)."""
    return (f"registry {NAME}", {"url": up.url, "username": user,
                                 "password-file": write_secret(workdir, "pw", password)})


def login_config(workdir, up, user=USER, password=PASSWORD, name="arca.ini"):
    return write_config(os.path.join(workdir, name), login_section(workdir, up, user, password))


def assert_never_shown(arca, up, answers, password=None):
    """No issued token, no password (nor its base64 login) in anything arca shows or answered."""
    secrets = list(up.issued())
    if password:
        secrets += [password, base64.b64encode(f"{USER}:{password}".encode()).decode()]
    assert secrets
    texts = shown_by(arca) + [f"{a.status} {a.headers} " + a.body.decode(errors="replace")
                              for a in answers]
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text[:300])


def test_anonymous_token_realm_one_token_per_scope(start_arca, scripted, workdir):
    """An upstream that wants a Bearer token for everything (Docker Hub's anonymous pulls):
    clients pull through arca without ever seeing a 401; the token is asked once for the
    repository's scope however many blobs and tags are pulled, once more for another
    repository; no token shows anywhere."""
    up = scripted(auth="token")
    a1 = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536, 100_000], "v1"))
    a2 = up.add("library/demo", build_image(os.path.join(workdir, "b"), [80_000], "v2"))
    b = up.add("team/app", build_image(os.path.join(workdir, "c"), [70_000], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url}, "--log-level", "debug",
                        access_log=os.path.join(workdir, "access.log"))
    client = Puller(arca.base, prefix=NAME)
    for repo, image in (("library/demo", a1), ("library/demo", a2)):
        got, top = client.pull(repo, image.tag)
        assert top.headers["docker-content-digest"] == image.manifest.digest
        assert sorted(got) == sorted(x.digest for x in image.blobs())
    scopes = [r.query for r in up.token_requests()]
    assert len(scopes) == 1 and "scope=repository%3Alibrary%2Fdemo%3Apull" in scopes[0], scopes
    got, _ = client.pull("team/app", "v1")
    assert sorted(got) == sorted(x.digest for x in b.blobs())
    assert len(up.token_requests()) == 2
    assert all(a.status == 200 for a in client.answers), [a.status for a in client.answers]
    assert all("www-authenticate" not in a.headers for a in client.answers)
    assert all("authorization" not in r.headers for r in up.requests("token"))
    assert_never_shown(arca, up, client.answers)


def test_login_from_the_config_file_and_a_new_token_once_expired(start_arca, scripted, workdir):
    """A realm that gives tokens only to USER with PASSWORD (a private repository), tokens
    valid five seconds: arca logs in with [registry NAME]'s username and password-file; once
    the token has expired a pull still works, with one new token; neither the password nor a
    token shows anywhere. (With tokens of one second, kept 0.8 s, the first pull under ASan on
    a loaded machine outlasted its token.)"""
    up = scripted(auth="token", users={USER: PASSWORD}, token_ttl=5)
    first = up.add("team/private", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    second = up.add("team/private", build_image(os.path.join(workdir, "b"), [70_000], "v2"))
    arca = start_mirror(start_arca, {}, "--log-level", "debug",
                        access_log=os.path.join(workdir, "access.log"),
                        config=login_config(workdir, up))
    client = Puller(arca.base, prefix=NAME)
    got, _ = client.pull("team/private", "v1")
    assert sorted(got) == sorted(x.digest for x in first.blobs())
    tokens = up.token_requests()
    assert len(tokens) == 1
    assert tokens[0].headers["authorization"] == "Basic " + base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()
    # the token's second is over (the upstream's own clock says so), then a pull of what
    # arca does not have yet
    issued = up.issued()[0]
    wait_for(lambda: time.monotonic() > up.tokens[issued][1], "the token expired", 10)
    got, _ = client.pull("team/private", "v2")
    assert sorted(got) == sorted(x.digest for x in second.blobs())
    assert len(up.token_requests()) == 2
    assert all(a.status == 200 for a in client.answers)
    assert_never_shown(arca, up, client.answers, PASSWORD)


def test_a_wrong_password_is_refused_and_not_shown(start_arca, scripted, workdir):
    """The realm refuses arca's login: the client gets the registry's JSON error, not the
    image, and the (wrong) password shows nowhere."""
    up = scripted(auth="token", users={USER: PASSWORD})
    up.add("team/private", build_image(os.path.join(workdir, "a"), [4096], "v1"))
    wrong = "pw-wrongWrong0451"
    arca = start_mirror(start_arca, {}, "--log-level", "debug",
                        access_log=os.path.join(workdir, "access.log"),
                        config=login_config(workdir, up, password=wrong))
    a = v2(arca, f"{NAME}/team/private/manifests/v1")
    assert a.status in (401, 403, 502), (a.status, a.body)
    assert a.error_codes(), a.body
    assert up.issued() == []
    for text in shown_by(arca) + [f"{a.headers} " + a.body.decode(errors="replace")]:
        assert wrong not in text and PASSWORD not in text


def test_basic_auth_upstream(start_arca, scripted, workdir):
    """An upstream that takes basic auth on every request (a lab's own registry behind
    htpasswd): arca sends [registry NAME]'s login; the client needs none."""
    up = scripted(auth="basic", users={USER: PASSWORD})
    image = up.add("team/app", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    arca = start_mirror(start_arca, {}, "--log-level", "debug",
                        access_log=os.path.join(workdir, "access.log"),
                        config=login_config(workdir, up))
    client = Puller(arca.base, prefix=NAME)
    got, _ = client.pull("team/app", "v1")
    assert sorted(got) == sorted(x.digest for x in image.blobs())
    assert all(a.status == 200 for a in client.answers)
    texts = shown_by(arca) + [f"{a.headers} " + a.body.decode(errors="replace")
                              for a in client.answers]
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for text in texts:
        assert PASSWORD not in text and login not in text


def test_blobs_redirected_to_a_cdn_are_followed_by_arca(start_arca, scripted, workdir):
    """A token realm and every blob GET answered 307 to a CDN (Docker Hub's Cloudflare, S3):
    the client gets 200 and the bytes, never a redirect; the CDN is asked once per blob and
    never sees an Authorization header; the token shows nowhere."""
    up = scripted(auth="token", cdn=True)
    image = up.add("library/demo", build_image(os.path.join(workdir, "a"),
                                               [65536, 500_000], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url}, "--log-level", "debug",
                        access_log=os.path.join(workdir, "access.log"))
    clients = [Puller(arca.base, prefix=NAME), Puller(arca.base, prefix=NAME)]
    for client in clients:
        got, _ = client.pull("library/demo", "v1")
        assert sorted(got) == sorted(x.digest for x in image.blobs())
    answers = clients[0].answers + clients[1].answers
    assert all(a.status == 200 and "location" not in a.headers for a in answers)
    for blob in image.blobs():
        assert up.blob_gets("library/demo", blob.digest) == 1, blob.digest
    cdn = up.requests("cdn")
    assert cdn and all("authorization" not in r.headers for r in cdn)
    assert all(r.status in (200, 206) for r in cdn), [r.status for r in cdn]
    assert_never_shown(arca, up, answers)


def test_a_redirect_the_upstream_policy_refuses_is_not_followed(start_arca, scripted,
                                                                 workdir):
    """The CDN a blob is redirected to is on 127.0.0.2, outside --upstream-allow 127.0.0.1/32:
    arca does not go there; the client gets an error, never the blob nor the redirect."""
    up = scripted(cdn=True, cdn_host="127.0.0.2")
    image = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url}, allow="127.0.0.1/32")
    layer = image.layers[0]
    a = v2(arca, f"{NAME}/library/demo/blobs/{layer.digest}")
    assert a.status >= 400 and "location" not in a.headers, (a.status, a.headers)
    assert a.error_codes(), a.body[:300]
    assert up.requests("cdn") == []


def test_warm_hits_while_the_token_is_kept_ask_nothing_and_past_it_a_new_one(start_arca,
                                                                            scripted, workdir):
    """A /v2/ request whose registry needs nothing more (its token for the scope kept with its
    margin) goes straight to the store: warm hits of the manifest by digest and of every blob
    ask neither the registry nor its realm. Once the token has expired, the tag's revalidation
    asks the realm for a new token first and the upstream takes it (no 401 on the way): the
    client gets the same manifest, its digest and its blobs."""
    up = scripted(auth="token", token_ttl=6)  # kept 4.8 s (a fifth of its life before)
    image = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536, 90_000],
                                               "v1"))
    arca = start_mirror(start_arca, {NAME: up.url}, "--registry-tag-ttl", "1s")
    client = Puller(arca.base, prefix=NAME)
    got, top = client.pull("library/demo", "v1")
    assert sorted(got) == sorted(x.digest for x in image.blobs())
    asked = up.total()
    assert len(up.token_requests()) == 1
    for _ in range(10):
        a = client.get("library/demo", "manifests", image.manifest.digest,
                       headers=reg.manifest_headers())
        assert a.status == 200 and a.body == image.manifest.data, a.status
        assert a.headers["docker-content-digest"] == image.manifest.digest
        for blob in image.blobs():
            a = client.get("library/demo", "blobs", blob.digest)
            assert a.status == 200 and digest_of(a.body) == blob.digest, a.status
            assert a.headers["docker-content-digest"] == blob.digest
    assert up.total() == asked, [(r.server, r.method, r.path) for r in up.log[asked:]]
    issued = up.issued()[0]
    wait_for(lambda: time.monotonic() > up.tokens[issued][1], "the token expired", 10)
    tag = "/v2/library/demo/manifests/v1"
    before = len(up.requests(path=tag))
    a = client.get("library/demo", "manifests", "v1", headers=reg.manifest_headers())
    assert a.status == 200 and a.body == image.manifest.data, (a.status, a.body[:200])
    assert a.headers["docker-content-digest"] == image.manifest.digest
    assert len(up.token_requests()) == 2
    revalidations = up.requests(path=tag)[before:]
    assert revalidations and all(r.status == 200 for r in revalidations), \
        [(r.method, r.status) for r in revalidations]
    assert revalidations[0].headers["authorization"] == "Bearer " + up.issued()[1]
