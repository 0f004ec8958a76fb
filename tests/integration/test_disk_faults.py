"""What arca does when the disk or a library fails where it rarely does: a directory that cannot
be synced, an index COMMIT that fails, a transfer curl will not start, a file's open held while
its file is replaced. The faults come from tests/faults/faults.c (LD_PRELOAD), armed while a file
exists."""

import base64
import os
import signal

import pytest

from conftest import ARCA_BIN, read_to_end

FAULTS = os.environ.get("ARCA_FAULTS_LIB",
                        os.path.join(os.path.dirname(ARCA_BIN), "libarcafaults.so"))

pytestmark = pytest.mark.skipif(not os.path.exists(FAULTS),
                                reason=f"{FAULTS} is built with arca: run meson compile")


@pytest.fixture
def faulty(start_arca, workdir):
    """start(*args) -> (arca, arm): arm(name, on, line) arms or disarms one fault of faults.c
    (`line`: the armed file's first line, for a fault that reads one)."""
    triggers = {name: os.path.join(workdir, "fault-" + name)
                for name in ("DIR_FSYNC", "WAL_WRITE", "MULTI_ADD", "SLOW_OPEN", "SLOW_UNLINK")}
    env = {"LD_PRELOAD": FAULTS, f"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
           ":verify_asan_link_order=0"}
    env.update({"ARCA_FAULT_" + name: path for name, path in triggers.items()})

    def arm(name, on=True, line=""):
        if on:
            with open(triggers[name], "w") as f:
                f.write(line)
        elif os.path.exists(triggers[name]):
            os.unlink(triggers[name])

    def start(*args, data_dir=None):
        return start_arca("--upstream-allow", "127.0.0.0/8", *args, data_dir=data_dir, env=env)

    return start, arm


def test_a_directory_that_cannot_be_synced_fails_the_object(origin, faulty):
    start, arm = faulty
    arca = start()
    data = os.urandom(100000)
    # Sent over half a second, so the client has its 200 and is streaming when the object fails
    # at the end (unpaced, the download could fail before the answer began: a 500, not a cut).
    url = origin.add("/img", data=data, rate=200000)
    for i in range(256):  # its key directory is there: only the object's own entry fails
        os.makedirs(os.path.join(arca.data_dir, "objects", f"{i:02x}"), exist_ok=True)
    arm("DIR_FSYNC")
    conn, resp = arca.stream(url)
    assert resp.status == 200
    body, complete = read_to_end(resp)
    conn.close()
    assert not complete, "an object whose directory entry may be lost is never delivered whole"
    assert arca.log_shows("cannot sync the object's directory")
    arm("DIR_FSYNC", False)
    status, _, body = arca.fetch(url)
    assert status == 200 and body == data
    assert origin.counts["/img"] == 2, "the object that could not be made durable was not kept"


def test_a_key_directory_that_cannot_be_synced_starts_no_object(origin, faulty):
    start, arm = faulty
    arca = start()
    data = os.urandom(1000)
    url = origin.add("/img", data=data)
    arm("DIR_FSYNC")  # the first file of a key makes its directory, whose name must be synced
    status, _, body = arca.fetch(url)
    assert status == 500 and b"cannot create object file" in body
    # not left behind unsynced, for the next file to use without syncing its name
    assert os.listdir(os.path.join(arca.data_dir, "objects")) == []
    arm("DIR_FSYNC", False)
    status, _, body = arca.fetch(url)
    assert status == 200 and body == data


def test_a_transfer_curl_will_not_start_is_an_error_not_a_hang(origin, faulty):
    start, arm = faulty
    arca = start()
    url = origin.add("/x", data=b"x" * 1000)
    arm("MULTI_ADD")
    status, _, body = arca.get(arca.fetch_path(url), timeout=10)
    assert status == 500 and b"cannot start the upstream request" in body
    arm("MULTI_ADD", False)
    assert arca.fetch(url)[0] == 200
    assert arca.status()["resources_downloading"] == 0


def test_objects_completed_after_a_failed_commit_survive_a_crash(origin, faulty):
    # A COMMIT left open would take every later row with it. SQLite 3.40 rolls a WAL COMMIT back
    # itself on a full disk or an I/O error (what can be provoked here); index_commit rolls back
    # whatever it leaves open, for the other codes.
    start, arm = faulty
    arca = start()
    first, second = os.urandom(5000), os.urandom(5000)
    a = origin.add("/a", data=first)
    b = origin.add("/b", data=second)
    assert arca.fetch(a)[2] == first
    arm("WAL_WRITE")
    assert arca.fetch(a)[2] == first  # a hit: its usage is flushed within a second, and fails
    assert arca.log_shows("index:", timeout=5)
    arm("WAL_WRITE", False)
    assert arca.fetch(b)[2] == second  # its row must be committed, not left in a transaction
    arca.proc.send_signal(signal.SIGKILL)
    arca.proc.wait()
    arca.stop()
    again = start(data_dir=arca.data_dir)
    assert again.fetch(b)[2] == second and again.fetch(a)[2] == first
    assert origin.counts["/b"] == 1 and origin.counts["/a"] == 1, \
        "objects completed after a failed COMMIT survive a crash"


def test_a_hit_opening_its_file_as_a_new_version_takes_its_place_sends_one_version(
        origin, faulty, workdir):
    # A hit looks its object up under the store's lock and opens the object's file once the
    # lock is dropped (store/lookup.c). faults.c's SLOW_OPEN holds that open; meanwhile the
    # object is purged and downloaded again, longer, its file renamed over the old one. The
    # hit's answer is then one version whole, its headers and its bytes alike: never the old
    # version's length and digest over the new bytes.
    import hashlib
    import threading
    from conftest import wait_for
    from test_admin import purge, token_file
    start, arm = faulty
    # two workers: the one held in the open, and one for the purge and the new download
    arca = start("--admin-token-file", token_file(workdir), "--threads", "2")
    old, new = os.urandom(50000), os.urandom(80000)
    url = origin.add("/v", data=old)
    assert arca.fetch(url)[2] == old
    key = hashlib.sha256(url.encode()).hexdigest()
    arm("SLOW_OPEN", line=f"{key[:2]}/{key}\n")
    held = os.path.join(workdir, "fault-SLOW_OPEN.held")
    answers = []
    # a Range: never a shared prepared answer, which would need no open
    hit = threading.Thread(target=lambda: answers.append(
        arca.get(arca.fetch_path(url), {"Range": "bytes=0-"})))
    hit.start()
    try:
        wait_for(lambda: os.path.exists(held), "the hit held in its file's open")
        origin.add("/v", data=new)
        assert purge(arca, url)[0] == 200
        assert arca.fetch(url)[2] == new  # renamed over the file the hit is opening
    finally:
        arm("SLOW_OPEN", False)  # the hit's open goes on
        hit.join(30)
    status, headers, body = answers[0]
    assert status == 206 and body in (old, new), (status, len(body))
    assert headers["content-range"] == f"bytes 0-{len(body) - 1}/{len(body)}"
    digest = headers["repr-digest"]
    assert digest.startswith("sha-256=:") and base64.b64decode(digest[9:-1]) == \
        hashlib.sha256(body).digest(), "the headers are the version the bytes are"
