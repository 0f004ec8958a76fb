"""Attack on issue 67 (C): a stranger (outside --allow-network and --ui-network, let in by an
open rule) must learn nothing of arca's parent (test_stranger_words.py's promise). Yet an
object the site got from its parent answers the stranger with the parent's own Cache-Status
member, its --cache-name (the parent's host name by default): the parent named on every
download, whatever the failure words hide. And under a catch-all open rule the parent's place
is the one URL a stranger gets 403 for: a scan finds it."""

from conftest import free_port
from test_rules import config  # noqa: F401 (a fixture: the scenario's INI file)
from test_rules import proxied, rule, write

STRANGER = {"X-Forwarded-For": "203.0.113.9"}
ARCA = ("upstream-allow = 127.0.0.0/8", "trusted-proxy = 127.0.0.1", "download-retries = 0")
PARENT_NAME = "central-lab-host"


def test_a_stranger_is_not_told_the_parents_name_in_cache_status(origin, start_arca, config):
    central = start_arca("--upstream-allow", "127.0.0.0/8", name="central",
                         cache_name=PARENT_NAME)
    write(config, rule("open", origin.url("/pub/"), "allow-network = 0.0.0.0/0, ::/0"),
          arca=ARCA)
    site = start_arca("--config", config, "--parent", central.base, name="site")
    seen = {}
    for i, get in enumerate((lambda a, u, h: a.fetch(u, headers=h), proxied)):
        url = origin.add(f"/pub/a{i}.bin", data=b"x" * 1000)
        status, headers, body = get(site, url, STRANGER)
        assert status == 200 and body == b"x" * 1000, (status, body)
        assert central.status()["resources_successes"] == i + 1  # it came through the parent
        seen[i] = {k.lower(): v for k, v in headers.items()}
    leaks = {i: h for i, h in seen.items()
             if PARENT_NAME in "".join(f"{k}: {v}\n" for k, v in h.items())}
    assert leaks == {}, leaks
