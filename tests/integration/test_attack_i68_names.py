"""Attack on issue 68 item 4 (docs/REGISTRY.md "Setting it up": "a name reaches one registry,
never the first of two; the error names both registries"). Two registries whose URLs are one
URL (or one host:port) start: the host:port both answer to in `?ns=`, `arca rules test` and a
purge reaches the first of the two, and every upstream URL (the object key, the rules' match,
the links, the counters) is the first's, whichever NAME the client gave: a client naming the
anonymous `pub` is pulled with `priv`'s login. Expected: refused at start, as a shared alias
is."""

import os
import subprocess

from conftest import ARCA_BIN
from registry import write_config, write_secret


def test_two_registries_of_one_url_are_refused_at_start(workdir):
    secret = write_secret(workdir, "priv.pw", "pw-0123456789abcdef")
    for second in ("http://127.0.0.1:5000", "http://127.0.0.1:5000/"):
        config = write_config(os.path.join(workdir, "arca.ini"),
                              ("registry pub", {"url": "http://127.0.0.1:5000"}),
                              ("registry priv", {"url": second, "username": "bot",
                                                 "password-file": secret}))
        p = subprocess.run([ARCA_BIN, "check-config", "--config", config, "--upstream-allow",
                            "127.0.0.0/8"], capture_output=True, text=True, timeout=10)
        assert p.returncode != 0 and "pub" in p.stderr and "priv" in p.stderr, \
            (second, p.returncode, p.stdout, p.stderr)
