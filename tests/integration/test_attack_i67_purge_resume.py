"""Attack (issue 67): a purge meets a download resumed after a restart. The purge answered 200
(downloads_not_kept) and promised its answer is on disk: the resumed download is not kept, and
a kill -9 right after the answer does not bring it back at the next start."""

import json
import os
import signal
import threading

from conftest import Arca, wait_for
from test_purge_prefix import purge_prefix
from test_purge_trust import ini
from test_resume_restart import interrupt


def objects_on_disk(data_dir):
    out = []
    for root, _, names in os.walk(os.path.join(data_dir, "objects")):
        out += names
    return out


def test_a_purge_during_a_resumed_download_then_kill_9_resumes_nothing(workdir, origin):
    data = os.urandom(40 << 20)
    url = origin.add("/nightly/big.img", data=data, etag='"r1"', rate=20 << 20, chunk=256 << 10)
    data_dir, _ = interrupt(workdir, origin, "/nightly/big.img", 30 << 20, signal.SIGKILL)
    gate = threading.Event()
    origin.objects["/nightly/big.img"].on_request = lambda obj, index: gate.wait(30)
    asked = origin.counts["/nightly/big.img"]
    config = ini(workdir)
    second = Arca(workdir, ["--config", config, "--fill-connections", "1"], data_dir).start()
    wait_for(lambda: origin.counts["/nightly/big.img"] > asked, "the resume asked upstream")
    code, _, body = purge_prefix(second, origin.url("/nightly/"))
    second.proc.send_signal(signal.SIGKILL)
    second.proc.wait(10)
    gate.set()
    answer = json.loads(body)
    assert code == 200 and answer["downloads_not_kept"] == 1, answer
    asked = origin.counts["/nightly/big.img"]
    third = Arca(workdir, ["--config", config], data_dir).start()
    try:
        st = third.status()
        assert st["resources_downloading"] == 0 and st["resources_successes"] == 0, st
        assert origin.counts["/nightly/big.img"] == asked  # nothing resumed
        wait_for(lambda: objects_on_disk(data_dir) == [], "the partial file removed")
    finally:
        third.stop()


def test_a_purge_during_a_resumed_download_keeps_nothing(workdir, origin):
    data = os.urandom(40 << 20)
    url = origin.add("/nightly/big.img", data=data, etag='"r1"', rate=20 << 20, chunk=256 << 10)
    data_dir, _ = interrupt(workdir, origin, "/nightly/big.img", 30 << 20, signal.SIGKILL)
    gate = threading.Event()
    origin.objects["/nightly/big.img"].on_request = lambda obj, index: gate.wait(30)
    origin.objects["/nightly/big.img"].rate = 0
    asked = origin.counts["/nightly/big.img"]
    config = ini(workdir)
    second = Arca(workdir, ["--config", config, "--fill-connections", "1"], data_dir).start()
    wait_for(lambda: origin.counts["/nightly/big.img"] > asked, "the resume asked upstream")
    code, _, body = purge_prefix(second, origin.url("/nightly/"))
    assert code == 200 and json.loads(body)["downloads_not_kept"] == 1, body
    gate.set()
    wait_for(lambda: second.status()["resources_downloading"] == 0, "the resume ended", 30)
    assert second.status()["resources_successes"] == 0
    assert second.stop() == 0
    assert objects_on_disk(data_dir) == []
    third = Arca(workdir, ["--config", config], data_dir).start()
    try:
        assert third.status()["resources_successes"] == 0
        assert third.status()["resources_downloading"] == 0
    finally:
        third.stop()
