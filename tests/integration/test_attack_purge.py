"""An outsider's review of purge by prefix (issue 61): an object must not slip out of a purge
because of how the URL that cached it was spelt. A job that fetched a withdrawn nightly tree
through a URL with a login (`http://user:pw@host/nightly/…`) must not keep it served after the
admin purged `http://host/nightly/`."""

from test_admin import token_file
from test_purge_prefix import purge_prefix


def test_a_url_fetched_with_a_login_is_purged_with_its_hosts_prefix(workdir, origin,
                                                                     start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--admin-token-file",
                      token_file(workdir))
    path = "/nightly/2026-11-25/vmlinuz"
    origin.add(path, data=b"withdrawn" * 1000)
    bare = origin.url(path)
    login = f"http://user:pw@{origin.host}:{origin.port}{path}"
    assert arca.fetch(login)[0] == 200 and origin.counts[path] == 1
    status, _, body = purge_prefix(arca, origin.url("/nightly/"))
    assert status == 200 and b'"purged":1' in body, body
    # the login's spelling and the bare one are downloaded again: nothing was left behind
    assert arca.fetch(login)[0] == 200 and origin.counts[path] == 2
    assert arca.fetch(bare)[0] == 200
    # a prefix given with a login names the same objects as without it (and never shows it)
    status, _, body = purge_prefix(arca, f"http://admin:secret@{origin.host}:{origin.port}/nightly/")
    assert status == 200 and b'"purged":' in body and b"secret" not in body, body
    assert not body.startswith(b'{"prefix":"http://REDACTED'), body
    n = origin.counts[path]
    assert arca.fetch(bare)[0] == 200 and origin.counts[path] == n + 1
