"""purge-prefix: one purge by prefix of 100,000 objects while hits on other URLs go on."""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from harness import LOADGEN, Arca, free_port
from peers import make_index

TOKEN = "bench-admin-token-0123456789"


def metrics(a):
    """arca's request and hit counters and its ordered disk queue, from one /metrics answer."""
    with urllib.request.urlopen(f"http://127.0.0.1:{a.port}/metrics") as r:
        text = r.read().decode()
    values = dict(re.findall(r"^(\S+) (\S+)$", text, re.M))

    def m(name):
        return float(values.get(name, 0))
    requests = sum(m(f'arca_requests_total{{result="{k}"}}')
                   for k in ("hit", "miss", "coalesced", "error"))
    return requests, m('arca_requests_total{result="hit"}'), \
        m('arca_persist_queue_jobs{queue="ordered"}')


def purge_round(work, pc, dead_port, token):
    """A fresh data dir: pc["objects"] under /nightly/ and pc["others"] under /obj/; arca on it;
    an open-loop load of random /obj/ hits; 1 s in, the purge of /nightly/."""
    data_dir = os.path.join(work, "purge-data")
    shutil.rmtree(data_dir, ignore_errors=True)
    make_index(data_dir, pc["objects"], dead_port, path="/nightly/")
    make_index(data_dir, pc["others"], dead_port, path="/obj/")
    a = Arca(work, data_dir, extra=["--admin-token-file", token], name="arca")
    try:
        load = {}
        url = f"http://127.0.0.1:{a.port}/api/v1/fetch/?url=http://127.0.0.1:{dead_port}/obj/"

        def run_load():
            out = subprocess.run([LOADGEN, "rate", url, "--rate", str(pc["rate"]), "--seconds",
                                  str(pc["seconds"]), "--random", str(pc["others"])],
                                 capture_output=True, text=True, check=True,
                                 timeout=pc["seconds"] + 60)
            load.update(json.loads(out.stdout))

        t = threading.Thread(target=run_load)
        t.start()
        time.sleep(1.0)  # the load at its rate before the purge
        req0, hits0, _ = metrics(a)
        prefix = urllib.parse.quote(f"http://127.0.0.1:{dead_port}/nightly/", safe="")
        ask = urllib.request.Request(f"http://127.0.0.1:{a.port}/api/v1/purge/?prefix={prefix}",
                                     method="POST", data=b"",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        t0 = time.monotonic()
        with urllib.request.urlopen(ask, timeout=60) as r:
            answer = json.loads(r.read())
        purge_s = time.monotonic() - t0
        req1, hits1, _ = metrics(a)
        while metrics(a)[2] > 0:  # the files and rows: on the persistence thread
            time.sleep(0.01)
        drained_s = time.monotonic() - t0
        t.join()
        if answer["purged"] != pc["objects"]:
            raise RuntimeError(f"purged {answer['purged']} of {pc['objects']}")
        left = sum(len(f) for _, _, f in os.walk(os.path.join(data_dir, "objects")))
        if left != pc["others"]:
            raise RuntimeError(f"{left} object files left, expected {pc['others']}")
        during = req1 - req0
        return {"purge_s": purge_s, "drained_s": drained_s, "purged": answer["purged"],
                "hit_ratio_during": (hits1 - hits0) / max(during, 1),
                # the origin is dead: every answer but a hit is an error, over the whole load
                "hit_ratio_load": 1 - load["errors"] / max(load["answered"], 1),
                "req_per_s_during": during / max(purge_s, 1e-6),
                "p99_ms": load["p99_ms"], "max_ms": load.get("max_ms"),
                "errors": load["errors"], "offered_rate": pc["rate"]}
    finally:
        a.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def purge_prefix(work, cfg, www):
    pc = cfg["purge"]
    dead_port = free_port()  # no origin: anything but a hit fails
    token = os.path.join(work, "admin-token")
    with open(token, "w") as f:
        f.write(TOKEN + "\n")
    rounds = {"arca": []}
    for i in range(pc.get("rounds", cfg["rounds"])):
        rounds["arca"].append(purge_round(work, pc, dead_port, token))
        r = rounds["arca"][-1]
        print(f"  round {i + 1}: {r['purged']} purged in {r['purge_s']:.3f} s "
              f"(files and rows gone at {r['drained_s']:.2f} s), hit ratio during "
              f"{r['hit_ratio_during']:.4f}, {r['req_per_s_during']:.0f} req/s during, "
              f"load p99 {r['p99_ms']:.1f} ms, hit ratio {r['hit_ratio_load']:.4f}",
              flush=True)
    return {"metric": "purge_s", "higher_is_better": False, "unit": "s",
            "setup": f"{pc['objects']} small objects under one prefix and {pc['others']} beside "
                     f"(loaded as big-index's); random hits on the others at {pc['rate']} req/s "
                     "offered (open loop) while POST /api/v1/purge/ drops the prefix",
            "rounds": rounds}
