"""An object's uses and last use come back after a restart, a stop's and a kill -9's, from the
usage journal beside the index (issue 70: hits no longer rewrite their rows); a purged URL
fetched again starts from its new copy's figures, never the purged one's."""

import json
import os
import signal
import sqlite3

from conftest import Arca, resource, wait_for
from test_admin import token_file
from test_purge_prefix import purge_prefix

DATA = b"a kernel\n" * 512


def ini(workdir):
    path = os.path.join(workdir, "arca.ini")
    with open(path, "w") as f:
        f.write(f"[arca]\nupstream-allow = 127.0.0.0/8\nadmin-token-file = {token_file(workdir)}\n")
    return path


def journal_size(arca):
    try:
        return os.path.getsize(os.path.join(arca.data_dir, "index.sqlite-usage"))
    except FileNotFoundError:
        return 0


def row_state(arca, url):
    """The state of `url`'s row in arca's index, read beside it (None: no row)."""
    db = sqlite3.connect(f"file:{os.path.join(arca.data_dir, 'index.sqlite')}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT state FROM objects WHERE url=?", (url,)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


def used(arca, url, times):
    for _ in range(times):
        status, _, body = arca.fetch(url)
        assert status == 200 and body == DATA


def figures(arca):
    row = resource(arca, "/nightly/Image")
    assert row, "the object is not listed"
    return row["usage"], row["last_usage"]


def test_uses_come_back_after_a_stop_and_after_a_kill_9(workdir, origin):
    config = ini(workdir)
    url = origin.add("/nightly/Image", data=DATA)
    arca = Arca(workdir, ["--config", config]).start()
    used(arca, url, 4)
    before = figures(arca)
    assert before[0] >= 4
    arca.stop()
    arca = Arca(workdir, ["--config", config]).start()
    assert figures(arca) == before
    # two more uses, written in a quiet second: a kill -9 after it loses neither
    size = journal_size(arca)
    used(arca, url, 2)
    wait_for(lambda: journal_size(arca) > size, "the uses written to the journal", timeout=30)
    after = figures(arca)
    assert after[0] == before[0] + 2
    arca.stop(signal.SIGKILL)
    arca = Arca(workdir, ["--config", config]).start()
    assert figures(arca) == after
    assert origin.counts["/nightly/Image"] == 1
    arca.stop()


def test_a_purged_url_fetched_again_has_its_new_copy_s_uses_after_a_kill_9(workdir, origin):
    """The purged copy's uses are in the journal, the new copy's row says 1 use and none of its
    own has been written yet when arca is killed: the start reads the new row's figure."""
    config = ini(workdir)
    url = origin.add("/nightly/Image", data=DATA)
    arca = Arca(workdir, ["--config", config]).start()
    used(arca, url, 6)
    size = journal_size(arca)
    wait_for(lambda: journal_size(arca) > size, "the uses written to the journal", timeout=30)
    old = figures(arca)[0]
    assert old >= 6
    code, _, body = purge_prefix(arca, origin.url("/nightly/"))
    assert code == 200 and json.loads(body)["purged"] == 1
    used(arca, url, 1)
    wait_for(lambda: row_state(arca, url) == "complete", "the new copy's row written", timeout=30)
    new = figures(arca)[0]
    assert new < old
    arca.stop(signal.SIGKILL)
    arca = Arca(workdir, ["--config", config]).start()
    assert figures(arca)[0] <= new  # its row's, or its uses since: never the purged copy's
    status, _, body = arca.fetch(url)
    assert status == 200 and body == DATA
    assert origin.counts["/nightly/Image"] == 2
    arca.stop()
