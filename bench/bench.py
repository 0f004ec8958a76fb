"""bench/run's driver: arca against nginx, Varnish and Squid on loopback, interleaved rounds.

Each scenario starts its contenders once, then runs round after round with the contenders in
turn (A B C A B C ...), so that a slow minute of the machine hurts everyone alike. Raw figures go
to OUT/<date>-<scenario>.json, a plot to OUT/<date>-<scenario>.png, and all medians, ranges and
ratios arca/peer to OUT/<date>-summary.md. bench/README.md says what each contender is set to.
"""
import argparse
import atexit
import datetime
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time

from harness import ROOT, SIZES, stop_all, summary
from peers import (big_index, cold_fanout, cold_fanout_digest, cold_fanout_ref, digest_fanout,
    idle_connections, warm_large, warm_small, warm_small_floor, warm_small_log,
    warm_small_rate, warm_small_rules)
from fills import fill_change, fill_scenario, small_beside_large, uplink_cap
from lab import bucket_listing, chaos, cluster_scenario, origin_bytes_scenario
from purge import purge_prefix
from registry import registry
from remotes import remotes
from tiers import tier
from tls import tls_handshake, tls_idle, tls_large, tls_small


SCENARIOS = {"warm-large": warm_large, "warm-small": warm_small,
             "warm-small-log": warm_small_log, "warm-small-floor": warm_small_floor,
             "warm-small-rules": warm_small_rules,
             "cold-fanout": cold_fanout,
             "cold-fanout-ref": cold_fanout_ref, "cold-fanout-digest": cold_fanout_digest,
             "digest-fanout": digest_fanout,
             "idle-connections": idle_connections, "big-index": big_index,
             "warm-small-rate": warm_small_rate, "origin-bytes": origin_bytes_scenario,
             "bucket-listing": bucket_listing, "cluster": cluster_scenario, "chaos": chaos,
             "fill": fill_scenario, "fill-change": fill_change, "uplink-cap": uplink_cap,
             "small-beside-large": small_beside_large,
             "tls-small": tls_small, "tls-handshake": tls_handshake, "tls-large": tls_large,
             "tls-idle": tls_idle, "tier": tier, "purge-prefix": purge_prefix,
             "registry": registry, "remotes": remotes}


def summarize(result):
    """Per contender: summary of every numeric field; ratios arca/peer on the main metric."""
    result["summary"] = {name: {k: summary([r[k] for r in rs]) for k in rs[0]}
                         for name, rs in result["rounds"].items()}
    m = result["metric"]
    if "arca" in result["summary"]:
        a = result["summary"]["arca"][m]["median"]
        result["ratios"] = {f"arca/{n}": a / s[m]["median"] for n, s in result["summary"].items()
                            if n != "arca" and s[m]["median"]}
        # a scenario with more than one figure the issue sets a bound on names them in "also"
        result["more_ratios"] = {
            f: {f"arca/{n}": result["summary"]["arca"][f]["median"] / s[f]["median"]
                for n, s in result["summary"].items() if n != "arca" and s[f]["median"]}
            for f in result.get("also", [])}
    return result

def markdown(results, cfg_name, date):
    lines = [f"# arca bench — {date} ({cfg_name} size)", "",
             f"Machine: {os.cpu_count()} CPUs, {os.uname().release}; everything on loopback, "
             "clients on the same cores. Median (min–max) over rounds.", ""]
    for name, res in results.items():
        lines += [f"## {name}", "", res["setup"], ""]
        fields = list(next(iter(res["summary"].values())).keys())
        lines.append("| contender | " + " | ".join(fields) + " |")
        lines.append("|---" * (len(fields) + 1) + "|")
        for who, s in res["summary"].items():
            cells = [f"{s[f]['median']:.4g} ({s[f]['min']:.4g}–{s[f]['max']:.4g})" for f in fields]
            lines.append(f"| {who} | " + " | ".join(cells) + " |")
        if res.get("ratios"):
            better = "higher" if res["higher_is_better"] else "lower"
            lines += ["", f"Ratios on {res['metric']} ({better} is better for arca): " +
                      ", ".join(f"{k} = {v:.2f}" for k, v in res["ratios"].items())]
        for field, ratios in res.get("more_ratios", {}).items():
            lines += ["", f"Ratios on {field}: " +
                      ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items())]
        if res.get("failures"):
            lines += ["", "Failed: " + "; ".join(res["failures"])]
        lines.append("")
    return "\n".join(lines)

def plot(res, name, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m, s = res["metric"], res["summary"]
    names = list(s)
    med = [s[n][m]["median"] for n in names]
    lo = [s[n][m]["median"] - s[n][m]["min"] for n in names]
    hi = [s[n][m]["max"] - s[n][m]["median"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(names, med, yerr=[lo, hi], capsize=4,
                  color=["#c0392b" if n.startswith("arca") else "#7f8c8d" for n in names])
    ax.bar_label(bars, labels=[f"{v:.3g}" for v in med], padding=3)
    ax.set_ylabel(f"{m} ({res['unit']}, {'higher' if res['higher_is_better'] else 'lower'} "
                  "is better)")
    ax.set_title(f"{name}: {res['setup']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

def main():
    atexit.register(stop_all)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round (for .ci/run)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS), metavar="SCENARIO",
                    help="any of: " + ", ".join(SCENARIOS))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    cfg_name = "smoke" if args.smoke else "full"
    cfg = dict(SIZES[cfg_name])
    if args.rounds:
        cfg["rounds"] = cfg["index_rounds"] = cfg["maintenance_rounds"] = args.rounds
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    os.makedirs(args.out, exist_ok=True)
    date = datetime.date.today().isoformat()
    work = tempfile.mkdtemp(prefix="arca-bench-")
    os.chmod(work, 0o755)  # nginx, varnish and squid workers read and write below it
    ran, failed = False, []
    try:
        for name in args.scenarios:
            t0 = time.monotonic()
            print(f"{name}: running", flush=True)
            sdir = os.path.join(work, name)
            os.makedirs(os.path.join(sdir, "www"))
            res = summarize(SCENARIOS[name](sdir, cfg, os.path.join(sdir, "www")))
            res["size"] = cfg_name
            with open(os.path.join(args.out, f"{date}-{name}.json"), "w") as f:
                json.dump(res, f, indent=1)
            plot(res, name, os.path.join(args.out, f"{date}-{name}.png"))
            print(f"{name}: done in {time.monotonic() - t0:.0f} s; " +
                  ", ".join(f"{k} {v:.2f}" for k, v in res.get("ratios", {}).items()), flush=True)
            shutil.rmtree(sdir)
            ran = True
            # a scenario that counts its failures (tier) has its figures written, then fails
            failed += [f"{name}: {why}" for why in res.get("failures", [])]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if ran:
            print(write_summary(args.out, date, cfg_name))
    if failed:
        print("failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0

def write_summary(out, date, cfg_name):
    """The day's summary covers every scenario with results of that date and size in `out`."""
    results = {}
    for name in SCENARIOS:
        try:
            with open(os.path.join(out, f"{date}-{name}.json")) as f:
                res = json.load(f)
        except FileNotFoundError:
            continue
        if res.get("size") == cfg_name:
            results[name] = res
    text = markdown(results, cfg_name, date)
    with open(os.path.join(out, f"{date}-summary.md"), "w") as f:
        f.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
