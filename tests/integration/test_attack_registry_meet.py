"""An outsider's review where the registry mirror (issue 60) meets arca's other features: the
shared answer of a hit, whose registry headers go out as each request's own head lines, on one
connection that mixes the /v2/ route, the fetch API and the proxy form; and what the registry
counters show, to whom (docs/SECURITY.md, "Actors": a stranger reads counters only)."""

import os
import signal
import socket
import sqlite3
import subprocess

import registry as reg
from conftest import ARCA_BIN, wait_for
from registry import API_VERSION, build_image, digest_of, scripted, start_mirror, v2  # noqa: F401
from tier import parent_row

NAME = "registry.corp.example"


def split_answers(data, n, body_of):
    """The heads ({name: [values]}, lower case) and bodies of `n` answers read back to back on
    one connection; body_of(i, status, headers) says whether answer i carries its body."""
    out = []
    for i in range(n):
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, (i, head[:300])
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        length = int(headers.get("content-length", ["0"])[0]) if body_of(i, status) else 0
        out.append((status, headers, data[:length]))
        data = data[length:]
    assert data == b"", data[:200]
    return out


def test_one_connection_mixing_v2_fetch_and_proxy_keeps_each_requests_head_lines(start_arca,
                                                                                 scripted,
                                                                                 workdir):
    """Pipelined on one kept-alive connection, in one write: /v2/ hits (GET, HEAD, a Range), the
    fetch API's and the proxy form's hits on the same upstream URL (one prepared answer shared by
    the plain ones), a proxy-form request naming arca's own /v2/, and a /v2/ refusal. Each answer
    carries its own request's lines only: the registry's headers on /v2/ answers alone, Via on
    the proxied one alone, never one request's on the next."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [5000], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    layer = image.layers[0]
    path = f"/v2/{NAME}/library/demo/blobs/{layer.digest}"
    upstream = f"{up.url}/v2/library/demo/blobs/{layer.digest}"
    for _ in range(3):  # a miss, then hits: those within its second share a prepared answer
        assert v2(arca, path[len("/v2/"):]).status == 200
    host = f"Host: {arca.host}:{arca.port}\r\n"
    reqs = [("GET", path, "", "v2"), ("GET", upstream, "", "proxy"),
            ("HEAD", path, "", "v2"), ("GET", arca.fetch_path(upstream), "", "fetch"),
            ("GET", f"http://{arca.host}:{arca.port}{path}", "", "v2"),
            ("GET", path, "Range: bytes=0-9\r\n", "v2"), ("GET", path + "x", "", "v2-refused"),
            ("GET", path, "", "v2"), ("GET", arca.fetch_path(upstream), "", "fetch")]
    wire = "".join(f"{m} {t} HTTP/1.1\r\n{host}{extra}\r\n" for m, t, extra, _ in reqs)
    with socket.create_connection((arca.host, arca.port), timeout=30) as s:
        s.sendall(wire.encode())
        data = b""
        while data.count(b"HTTP/1.1 ") < len(reqs) or not data.endswith(layer.data):
            chunk = s.recv(1 << 16)
            assert chunk, data[-300:]
            data += chunk
    answers = split_answers(data, len(reqs), lambda i, status: reqs[i][0] != "HEAD")
    for (method, target, extra, kind), (status, h, body) in zip(reqs, answers):
        what = (method, target[-40:], extra, status, h)
        via = h.get("via", [])
        assert len(via) == (kind == "proxy") and all(v.endswith(" (arca)") for v in via), what
        if kind == "v2-refused":
            assert status == 400 and h["docker-distribution-api-version"] == [API_VERSION], what
            assert "docker-content-digest" not in h, what
            continue
        assert status == (206 if extra else 200), what
        assert body == (b"" if method == "HEAD" else layer.data[:10] if extra else layer.data)
        registry_lines = kind == "v2"
        assert (h.get("docker-content-digest") == [layer.digest]) == registry_lines, what
        assert (h.get("docker-distribution-api-version") == [API_VERSION]) == registry_lines
        assert h["content-length"] == [str(10 if extra else layer.size)], what
    assert up.blob_gets("library/demo", layer.digest) == 1
    # each answered request counted once for the registry, whichever route it took (the proxy
    # form's and the fetch API's by their URL), the refusal in none: 3 + 8 requests, their GETs
    # blobs (the HEAD not), no image pull (no manifest asked)
    answered = 3 + sum(kind != "v2-refused" for *_, kind in reqs)
    gets = answered - sum(method == "HEAD" for method, *_ in reqs)
    e = wait_for(lambda: (r := arca.status()["registries"][0])["requests"] >= answered and r,
                 "the requests counted")
    assert (e["requests"], e["blobs"], e["pulls"]) == (answered, gets, 0), e
    assert e["hits"] == answered - 1, e


def test_a_stranger_reads_no_registry_name_on_the_statistics_page(start_arca, scripted,
                                                                  workdir):
    """A stranger (outside --allow-network and --ui-network) reads the statistics page: the
    registries card shows it each registry's counters, as the status and the metrics do, under
    its place in the list, never its name (the namespace podman's clients use: usually an
    internal host's). A client that may see URLs reads the name."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    data_dir = os.path.join(workdir, "data")
    lab = start_mirror(start_arca, {NAME: up.url}, data_dir=data_dir, name="lab")
    reg.Puller(lab.base, prefix=NAME).pull("library/demo", "v1")
    wait_for(lambda: lab.status()["registries"][0]["requests"] >= 1 + len(image.blobs()),
             "the pull counted")
    status, _, page = lab.get("/statistics/")
    assert status == 200 and NAME in page.decode()  # loopback: inside the default networks
    lab.stop()

    # the same arca, its networks now the lab's 10/8 alone: the test's loopback is a stranger
    outside = start_mirror(start_arca, {NAME: up.url}, "--allow-network", "10.0.0.0/8",
                           "--ui-network", "10.0.0.0/8", data_dir=data_dir, name="outside")
    status, _, page = outside.get("/statistics/")
    text = page.decode()
    assert status == 200 and "Registries" in text, text[-2000:]
    assert NAME not in text and up.url not in text, text[text.find("Registries"):][:600]
    assert "registry 1" in text and "pulls" in text, text[text.find("Registries"):][:600]


def test_arca_status_says_the_429s_a_registry_answered(start_arca, scripted, workdir):
    """`arca status` prints each registry's upstream refusals and, of them, the 429s the status
    JSON counts as `throttled`: an admin reading it sees the registry's rate limit met."""
    up = scripted()
    up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    up.throttled = True
    assert v2(arca, f"{NAME}/library/demo/manifests/v1").status != 200
    e = wait_for(lambda: (r := arca.status()["registries"][0])["throttled"] >= 1 and r,
                 "the 429 counted")
    p = subprocess.run([ARCA_BIN, "status", "--server", arca.base], capture_output=True,
                       text=True, timeout=10)
    line = [x for x in p.stdout.splitlines() if x.startswith(f"registry   {NAME}:")]
    assert p.returncode == 0 and len(line) == 1, p.stdout
    assert f"{e['refused']} upstream refusals ({e['throttled']} 429)" in line[0], (line, e)


def test_a_parents_counters_come_back_after_many_parents_before_it(start_tier, origin):
    """The counters' families share the index's rows ("parent URL WHAT", "registry NAME WHAT"),
    and a key no longer in use keeps its rows. A site that had many parents before its current
    one (a lab that moved its central around, rules' parents changed) finds the current one's
    counters after a restart as they were: the old rows neither push them out nor change them."""
    parent, (site,) = start_tier(1)
    data = os.urandom(20_000)
    assert site.fetch(origin.add("/p/blob", data=data))[0] == 200
    wait_for(lambda: parent_row(site)["requests"] == 1, "the ask counted")
    before = {k: parent_row(site)[k] for k in ("requests", "bytes", "hits")}
    assert site.stop() == 0
    db = sqlite3.connect(os.path.join(site.data_dir, "index.sqlite"))
    with db:
        kept = db.execute("SELECT name, value FROM counters WHERE name LIKE 'parent %'").fetchall()
        assert any(parent.base in name for name, _ in kept), kept
        # the rows of twenty parents of old, older than the current one's last save
        db.execute("DELETE FROM counters WHERE name LIKE 'parent %'")
        for n in range(20):
            for what in ("requests", "bytes", "hits"):
                db.execute("INSERT INTO counters (name, value) VALUES (?, 7)",
                           (f"parent http://old-central-{n}.lab:8001 {what}",))
        db.executemany("INSERT INTO counters (name, value) VALUES (?, ?)", kept)
        # and rows of registries no longer configured, some named like no registry can be
        for n in range(1000):
            db.execute("INSERT INTO counters (name, value) VALUES (?, 5)",
                       (f"registry old-{n}.lab pulls",))
        db.execute("INSERT INTO counters (name, value) VALUES ('registry  pulls', 9)")
        db.execute("INSERT INTO counters (name, value) VALUES ('registry pulls', 9)")
    db.close()
    site.start()
    after = parent_row(site)
    assert {k: after[k] for k in before} == before, after
    assert site.status()["registries"][0]["pulls"] == 0


def test_a_shared_hit_is_never_the_answer_of_a_client_the_rule_refuses(start_arca, scripted,
                                                                       workdir):
    """A rule keeps a team's images to the boards' network. A board pulls a layer many times
    (through /v2/ and the fetch API: one prepared answer shared by their hits); a client outside
    the rule, on the same arca, asks for the same layer through /v2/, the fetch API and the proxy
    form, GET and HEAD: refused each time, no byte and no registry header of the layer."""
    up = scripted()
    image = up.add("team/secret", build_image(os.path.join(workdir, "s"), [6000], "v1"))
    config = reg.write_config(os.path.join(workdir, "arca.ini"),
                              ("rule team", {"match": f"{up.url}/v2/team/",
                                             "allow-network": "10.99.0.0/16"}))
    arca = start_mirror(start_arca, {NAME: up.url}, "--trusted-proxy", "127.0.0.1/32",
                        config=config)
    layer = image.layers[0]
    path = f"{NAME}/team/secret/blobs/{layer.digest}"
    upstream = f"{up.url}/v2/team/secret/blobs/{layer.digest}"
    board, outsider = {"X-Forwarded-For": "10.99.0.7"}, {"X-Forwarded-For": "10.1.0.7"}
    for _ in range(3):
        a = v2(arca, path, headers=board)
        assert a.status == 200 and a.body == layer.data, (a.status, a.body[:200])
        status, _, body = arca.fetch(upstream, headers=board)
        assert status == 200 and body == layer.data
    for method in ("GET", "HEAD"):
        a = v2(arca, path, method, headers=outsider)
        assert a.status == 403 and layer.data not in a.body, (method, a.status)
        assert "docker-content-digest" not in a.headers and "repr-digest" not in a.headers
        status, headers, body = arca.fetch(upstream, headers=outsider, method=method)
        assert status == 403 and layer.data not in body, (method, status)
        assert "repr-digest" not in {k.lower() for k in headers}, headers
        p = reg.request(arca.host, arca.port, method, upstream, outsider)
        assert p.status == 403 and layer.data not in p.body, (method, p.status)
        assert "repr-digest" not in p.headers and len(p.headers.get("via", "")) > 0, p.headers
    assert up.blob_gets("team/secret", layer.digest) == 1


def test_a_stranger_learns_no_registry_name_from_v2s_refusals(start_arca, workdir):
    """A rule lets loopback fetch one unrelated URL, so /v2/ reads the path of a client outside
    --allow-network before refusing it. Such a stranger probes names in the namespace and in
    containerd's ?ns=, with a path after the name in the grammar or not: a configured registry
    and a name arca does not mirror get the same refusal, so the names stay the lab's (the
    status says them to it as null)."""
    config = reg.write_config(os.path.join(workdir, "arca.ini"),
                              ("rule open", {"match": "http://127.0.0.1:1/open/",
                                             "allow-network": "127.0.0.0/8"}))
    arca = start_mirror(start_arca, {NAME: "http://127.0.0.1:9"}, "--allow-network",
                        "10.0.0.0/8", "--ui-network", "10.0.0.0/8", config=config)
    seen = {}
    for name in (NAME, "absent.corp.example"):
        for method in ("GET", "HEAD"):
            # the path after the name well formed, and not (an upper-case component)
            for i, rest in enumerate(("team/app/manifests/1", "Team/app/manifests/1")):
                ns = v2(arca, rest, method, ns=name)
                path = v2(arca, f"{name}/{rest}", method)
                for a in (ns, path):
                    assert a.status == 403, (name, rest, method, a.status, a.body[:200])
                    seen.setdefault((method, i, a is ns), set()).add(
                        (a.status, a.body, a.headers.get("arca-error")))
    assert all(len(answers) == 1 for answers in seen.values()), seen
    assert all(r["name"] is None for r in arca.status()["registries"])


def test_a_kill_loses_no_saved_count_and_doubles_none(start_arca, scripted, workdir):
    """arca killed (SIGKILL, no stop's last save) after its counters reached the index: the
    restarted arca shows each registry counter as saved, none counted twice, and goes on from
    there (each save writes values, not increments)."""
    up = scripted()
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"), [4096], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    for _ in range(2):
        reg.Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    pulled = 2 * (1 + len(image.blobs()))  # requests: a manifest and the blobs, twice
    e = wait_for(lambda: (r := arca.status()["registries"][0])["requests"] >= pulled and r,
                 "the pulls counted")
    assert e["pulls"] == 2, e
    index = os.path.join(arca.data_dir, "index.sqlite")

    def saved():
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            return dict(db.execute("SELECT name, value FROM counters WHERE name LIKE ?",
                                   (f"registry {NAME} %",)).fetchall())
        finally:
            db.close()

    kept = ("pulls", "blobs", "requests", "hits", "bytes")
    wait_for(lambda: all(saved().get(f"registry {NAME} {k}") == e[k] for k in kept),
             "the counters saved")
    arca.stop(signal.SIGKILL)
    arca.start()
    again = arca.status()["registries"][0]
    assert {k: again[k] for k in kept} == {k: e[k] for k in kept}, (again, e)
    reg.Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
    wait_for(lambda: (r := arca.status()["registries"][0])["pulls"] == e["pulls"] + 1 and
             r["requests"] == e["requests"] + pulled // 2,
             "the next pull counted from the saved ones")
