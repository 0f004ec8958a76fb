"""A download waiting out its backoff between retries holds no slot on its host (SECURITY.md,
"Download slots"): one client asking for URLs that reset, ten new ones a second, does not keep
another client's new URL on the same host waiting behind downloads that sleep."""

import os
import threading
import time

from test_slots import ask, waiting_for


def test_a_clients_resetting_urls_backing_off_hold_no_slot_on_their_host(origin, start_arca):
    # the defaults: --max-downloads-per-host 8, --download-retries 4, --retry-delay 1s doubling
    # (1+2+4+8: a resetting URL's download lives ~15 s, nearly all of it backing off)
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--retry-delay", "1s")
    stop = threading.Event()
    conns = []

    def spray():
        i = 0
        while not stop.is_set():
            url = origin.add(f"/reset{i}", data=b"x", abort=True)
            try:
                conns.append(ask(arca, url, ("direct", "127.0.0.2"), timeout=30))
            except OSError:
                pass
            i += 1
            stop.wait(0.1)

    sprayer = threading.Thread(target=spray, daemon=True)
    sprayer.start()
    try:
        deadline = time.monotonic() + 20
        # the sprayer's downloads are at a limit (the host's, or its share of --max-downloads):
        # its new URLs wait for a slot
        while sum(p.startswith("/reset") for p in origin.counts) < 8 or not waiting_for(arca):
            assert time.monotonic() < deadline, "the resetting URLs took no slot"
            time.sleep(0.05)
        for i in range(3):
            data = os.urandom(5_000)
            url = origin.add(f"/wanted{i}", data=data)
            began = time.monotonic()
            conn = ask(arca, url, ("direct", "127.0.0.3"), timeout=30)
            resp = conn.getresponse()
            body = resp.read()
            took = time.monotonic() - began
            conn.close()
            assert resp.status == 200 and body == data, (resp.status, body[:200])
            assert took < 1.0, f"another client's new URL waited {took:.1f} s for a slot"
    finally:
        stop.set()
        sprayer.join()
        for c in conns:
            c.close()
