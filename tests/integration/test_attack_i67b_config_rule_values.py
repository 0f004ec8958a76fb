"""Attack on issue 67 (B, config errors): "no error line quotes a value from a file" holds for
[arca] keys and for a rule key's own refusal, but a rule's values judged when its section ends
(ttl, client-ttl, store, pin, allow-network, outgoing-address, match...) are still quoted:
"rule r: ttl: expected <int>d|h|m|s, positive, got 'SECRET'", in check-config, at start and on
SIGHUP in the log. The checks run past on_ini_line's keep_line_out (src/config/config_file.c;
the rule's values are judged in config_rules.c)."""

import os
import subprocess

import pytest

from conftest import ARCA_BIN

SECRET = "c2VjcmV0LWxhYi10b2tlbi0wMTIzNDU2Nzg5"


@pytest.mark.parametrize("key", ["ttl", "client-ttl", "store", "allow-network",
                                 "outgoing-address", "negative-ttl", "match"])
def test_a_rules_refused_value_is_not_shown(workdir, key):
    path = os.path.join(workdir, "arca.ini")
    match = "" if key == "match" else "match = http://h/\n"
    with open(path, "w") as f:
        f.write(f"[rule r]\n{match}{key} = {SECRET}\n")
    p = subprocess.run([ARCA_BIN, "check-config", "--config", path], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and f"{path}:" in p.stderr, p.stderr
    assert SECRET[:12] not in p.stdout + p.stderr, p.stderr
