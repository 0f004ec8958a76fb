"""Attack on issue 68 item 6: "every query of a redirect target (any CDN signature: verify=,
X-Amz-*, sig=, token=, all of them) shown nowhere". terms_hop_shown keeps a hop's query
whole (url_redact's list only) when any parameter carries a URL, so a CDN whose signed URL
also carries one (a response-content-disposition, an origin URL, an Akamai-style
`md5=SIG` (nginx secure_link), `h=`/`hash=` beside a `src=https://...`) has its signature, under a name the
list does not know, shown in Arca-Redirect, the log, the access log and the listings."""

import os

from registry import build_image, scripted, shown_by, start_mirror, v2  # noqa: F401,F811

NAME = "registry.lab"


def test_a_cdn_signature_beside_a_carried_url_is_shown_nowhere(start_arca, scripted, workdir):
    secret = "SeCrEt" + os.urandom(8).hex()
    up = scripted(cdn=True)
    image = up.add("library/demo", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    # nginx's secure_link (md5=, expires=), a short-named HMAC beside the URL it signs
    up.cdn_query = (f"md5={secret}a&e=1700000000&h={secret}b&hash={secret}c"
                    "&src=http%3A%2F%2Forigin.example%2Fblob")
    arca = start_mirror(start_arca, {NAME: up.url}, "--log-level", "debug",
                        access_log=os.path.join(workdir, "access.log"))
    whole = v2(arca, f"{NAME}/library/demo/blobs/{image.config.digest}")
    assert whole.status == 200
    up.cdn_failing = 403
    failed = v2(arca, f"{NAME}/library/demo/blobs/{image.layers[0].digest}")
    assert failed.status >= 400
    texts = shown_by(arca) + [f"{a.status} {a.headers} " + a.body.decode(errors="replace")
                              for a in (whole, failed)]
    for text in texts:
        i = text.find(secret)
        assert i < 0, text[max(0, i - 300):i + 80]
