"""Mirrors (issue 15, KissCache parity): for URLs matching --mirror REGEX, each mirror is asked in
order with a one-byte probe and the first that has the file serves the download; the origin is
the fallback. The cache key stays the URL the client asked for."""

import json

from conftest import Origin, free_port, sha256


def mirror_arg(origin, *mirrors):
    return ["--mirror", f"^http://127\\.0\\.0\\.1:{origin.port}/pub/=" +
            ",".join(m + "/mirror/pub/" for m in mirrors)]


def test_mirror_down_then_up_then_missing_the_file(start_arca, origin):
    data = b"linaro " * 100000
    mirror = Origin()
    try:
        dead = f"http://127.0.0.1:{free_port()}"
        arca = start_arca("--upstream-allow", "127.0.0.0/8",
                          *mirror_arg(origin, dead, f"http://127.0.0.1:{mirror.port}"))
        # down (the first mirror refuses connections, the second lacks the file): the origin
        url1 = origin.add("/pub/a.img", data=data)
        assert arca.fetch(url1)[2] == data
        assert origin.counts["/pub/a.img"] == 1 and mirror.counts["/mirror/pub/a.img"] == 1
        # up with the file: the origin is not asked at all
        url2 = origin.add("/pub/b.img", data=data)
        mirror.add("/mirror/pub/b.img", data=data)
        status, _, body = arca.fetch(url2)
        assert status == 200 and sha256(body) == sha256(data)
        assert origin.counts["/pub/b.img"] == 0
        assert mirror.bytes_sent["/mirror/pub/b.img"] == len(data) + 1  # probe + body
        # the key is the client's URL: a hit, listed under it
        assert arca.fetch(url2)[2] == data and mirror.counts["/mirror/pub/b.img"] == 2
        rows = json.loads(arca.get("/api/v1/resources/?state=successes")[2])["resources"]
        assert sorted(r["url"] for r in rows) == sorted([url1, url2])
        # mirror missing a file it had for another: the origin again
        url3 = origin.add("/pub/c.img", data=b"c" * 1000)
        assert arca.fetch(url3)[2] == b"c" * 1000
        assert origin.counts["/pub/c.img"] == 1
        assert arca.metrics()["arca_mirror_downloads_total"] == 1
        # URLs the rule does not match never touch the mirrors
        other = origin.add("/other", data=b"o")
        before = sum(mirror.counts.values())
        assert arca.fetch(other)[2] == b"o" and sum(mirror.counts.values()) == before
    finally:
        mirror.stop()


def test_bad_mirror_rules_stop_arca_with_a_reason(workdir):
    import subprocess

    from conftest import ARCA_BIN
    for value, reason in (("^http://h/", "expected REGEX=URL"),
                          ("([=http://m/", "not a regular expression"),
                          ("^x=http://m/,ftp://n/", "must be an http(s) URL"),
                          ("t" + "+" * 60 + "=http://m/", "cheap to compile"),
                          ("(a{100}){100}=http://m/", "cheap to compile")):
        p = subprocess.run([ARCA_BIN, "serve", "--data-dir", workdir, "--mirror", value],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode != 0 and reason in p.stderr, (value, p.stderr)


def test_a_mirror_that_does_not_answer_is_passed_over_for_a_while(start_arca, origin):
    # it accepts connections and closes them without a word: asked once, then left alone, so a
    # mirror that is down does not hold every download up
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        arca = start_arca("--upstream-allow", "127.0.0.0/8",
                          *mirror_arg(origin, f"http://127.0.0.1:{listener.getsockname()[1]}"))
        for i in range(3):
            url = origin.add(f"/pub/{i}.img", data=b"x" * 1000)
            assert arca.fetch(url)[2] == b"x" * 1000
        assert len(accepted) == 1
        assert arca.log_shows("does not serve it")
    finally:
        listener.close()
