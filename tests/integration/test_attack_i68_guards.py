"""GUARDS (attacks on issue 68 that held on this build; kept so they keep holding).

- A stranger (X-Forwarded-For outside --allow-network and --ui-network) under a rule that opens
  a registry with a refused login to everybody: its /v2/ answer names neither the registry nor
  the password file; the status gives it no password_file; the images listing is refused.
- Retry-After a registry sends that is huge, negative, a date long past or garbage: the hold
  is at most --registry-hold-max, and once it is over one request goes.
- A 429 with Retry-After from an origin that is no registry holds nothing.
- A purge by image with a reference over the size of any name, in unicode, given twice, or
  without the token: one line, 4xx, nothing deleted."""

import calendar
import os
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

from conftest import wait_for
from registry import (Puller, build_image, scripted, start_mirror, v2,  # noqa: F401
                      write_config, write_secret)
from test_admin import TOKEN, token_file
from test_registry_images import images, kept_urls

NAME = "registry.lab"
STRANGER = {"X-Forwarded-For": "203.0.113.9"}


def test_a_strangers_refused_login_answer_names_no_registry_nor_file(start_arca, scripted,
                                                                      workdir):
    up = scripted(auth="token", users={"bot": "right-password-123"})
    up.add("team/x", build_image(os.path.join(workdir, "i"), [3000], "1"))
    path = write_secret(workdir, "secret-lab-login.pw", "wrong-password-456")
    config = write_config(os.path.join(workdir, "arca.ini"),
                          (f"registry {NAME}", {"url": up.url, "username": "bot",
                                                "password-file": path}),
                          ("rule open", {"match": f"{up.url}/",
                                         "allow-network": "0.0.0.0/0, ::/0"}))
    arca = start_mirror(start_arca, {}, "--trusted-proxy", "127.0.0.1", config=config)
    board = v2(arca, f"{NAME}/team/x/manifests/1")
    assert board.status in (401, 403) and path in board.headers.get("arca-error", ""), board
    for ns in (None, NAME):
        a = v2(arca, f"{NAME}/team/x/manifests/1" if ns is None else "team/x/manifests/1",
               headers=STRANGER, ns=ns)
        seen = a.body + str(a.headers).encode()
        assert b"secret-lab-login" not in seen and NAME.encode() not in seen, seen
    status, _, body = arca.get("/api/v1/status", STRANGER)
    assert b"secret-lab-login" not in body and NAME.encode() not in body, body[:500]
    assert arca.get("/api/v1/images/", STRANGER)[0] == 403


def held_until(arca):
    e = arca.status()["registries"][0]
    return e.get("held_until") and calendar.timegm(time.strptime(e["held_until"],
                                                                 "%Y-%m-%dT%H:%M:%SZ"))


def test_retry_after_of_any_spelling_holds_at_most_hold_max(start_arca, scripted, workdir):
    up = scripted()
    arca = start_mirror(start_arca, {NAME: up.url}, "--registry-hold-max", "1s")
    up.throttled = True
    for n, value in enumerate(("99999999999999999999999", "-5", "Sun, 06 Nov 1994 08:49:37 GMT",
                               "Fri, 31 Dec 9999 23:59:59 GMT", "soon", "1e9", "")):
        up.retry_after = value
        before = up.total()
        a = v2(arca, f"{NAME}/team/x{n}/manifests/1")
        assert a.status == 429, (value, a.status)
        until = held_until(arca)
        assert not until or until <= time.time() + 2, (value, until)
        up.throttled = False
        # the hold over (1 s at most), a request goes, and one only
        wait_for(lambda: v2(arca, f"{NAME}/team/y{n}/manifests/1").status == 404,
                 f"the hold of Retry-After {value!r} over", 6)
        up.throttled = True
        assert up.total() - before <= 4, (value, up.total() - before)


class _Limiting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.asked.append(self.path)
        if self.path.startswith("/limited"):
            self.send_response(429)
            self.send_header("Retry-After", "3600")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def test_a_429_from_an_origin_that_is_no_registry_holds_nothing(start_arca, scripted, workdir):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Limiting)
    server.asked = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    up = scripted()
    arca = start_mirror(start_arca, {NAME: up.url}, "--download-retries", "0")
    status, _, _ = arca.fetch(f"{base}/limited/a")
    assert status >= 400
    status, _, body = arca.fetch(f"{base}/free/b")
    assert status == 200 and body == b"ok", (status, body)
    server.shutdown()


def purge(arca, query, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return arca.get(f"/api/v1/purge/?{query}", headers, method="POST")


def test_purge_by_image_refusals_delete_nothing(start_arca, scripted, workdir):
    up = scripted()
    up.add("team/a", build_image(os.path.join(workdir, "a"), [5000], "1"))
    arca = start_mirror(start_arca, {NAME: up.url}, "--admin-token-file", token_file(workdir))
    Puller(arca.base, prefix=NAME).pull("team/a", "1")
    before = kept_urls(arca)
    enc = urllib.parse.urlencode
    for query, want in ((enc({"image": f"{NAME}/team/a:1"}), 401),
                        (enc({"image": f"{NAME}/" + "a/" * 5000 + "x:1"}), 400),
                        (enc({"image": f"{NAME}/team/a:" + "1" * 200}), 400),
                        (enc({"image": f"{NAME}/tëam/a:1"}), 400),
                        (enc({"image": f"{NAME}/team/a:1"}) + "&" + enc({"image": "x:1"}), 400),
                        (enc({"image": f"{NAME}/team/a:1", "url": "http://x/"}), 400),
                        (enc({"image": f" {NAME}/team/a:1"}), 400),
                        (enc({"image": f"{NAME}/team/a:1#"}), 400)):
        status, _, body = purge(arca, query, token=None if want == 401 else TOKEN)
        assert status in (want, 414, 431) if len(query) > 8000 else status == want, \
            (query[:80], status, body[:200])
        assert body.count(b"\n") <= 1, body[:300]
    assert kept_urls(arca) == before
    assert len(images(arca)["images"]) == 1
