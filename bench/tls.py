"""tls-* (issue 53): arca's HTTPS against nginx's, same certificate, ciphers and workers: small
hits, handshakes (full and resumed), large bodies and idle TLS connections."""
import json
import os
import ssl
import subprocess
import sys

from harness import (ARCA, ARCA_BEFORE, Arca, Nginx, TLSLOAD, check_clients, children_cpu, cpu_seconds,
    fetch_all, free_port, has_option, hold_idle, idle_rounds, process_tree, write_random,
    wrk_rounds)



def tls_files(work):
    """One certificate for every contender: ECDSA P-256, signed by a CA made here (openssl CLI),
    for 127.0.0.1 and localhost. Returns the paths of the CA, the certificate and its key."""
    d = os.path.join(work, "tls")
    os.makedirs(d, exist_ok=True)
    f = {k: os.path.join(d, k) for k in ("ca.pem", "ca.key", "cert.pem", "cert.key", "cert.csr",
                                         "ext.cnf")}
    with open(f["ext.cnf"], "w") as ext:
        ext.write("subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n"
                  "keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for argv in (["req", "-x509", *ec, "-keyout", f["ca.key"], "-out", f["ca.pem"], "-days", "7",
                  "-subj", "/CN=arca bench CA"],
                 ["req", "-new", *ec, "-keyout", f["cert.key"], "-out", f["cert.csr"],
                  "-subj", "/CN=localhost"],
                 ["x509", "-req", "-in", f["cert.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
                  "-CAcreateserial", "-out", f["cert.pem"], "-days", "7", "-extfile",
                  f["ext.cnf"]]):
        subprocess.run(["openssl", *argv], check=True, capture_output=True)
    return {"ca": f["ca.pem"], "cert": f["cert.pem"], "key": f["cert.key"]}

def tls_context(tls):
    """Python's client context verifying against the bench's CA (warming, checks)."""
    return ssl.create_default_context(cafile=tls["ca"])

def tls_arcas(work, tls):
    """arca on an HTTPS port beside its plain one, `--threads 2` as nginx's two workers, and the
    older build when ARCA_BEFORE names one that has --tls-listen (else it is left out)."""
    builds = [("arca", ARCA)]
    if ARCA_BEFORE and has_option(ARCA_BEFORE, "--tls-listen"):
        builds.append(("arca-before", ARCA_BEFORE))
    elif ARCA_BEFORE:
        print("tls-*: ARCA_BEFORE has no --tls-listen; arca-before left out", flush=True)
    out = []
    for name, binary in builds:
        port = free_port()
        out.append(Arca(work, binary=binary, name=name,
                        extra=("--threads", "2", "--tls-listen", f"127.0.0.1:{port}",
                               "--tls-cert", tls["cert"], "--tls-key", tls["key"])))
        out[-1].tls_port = port
    return out

def tls_contenders(work, www, path, size):
    """nginx serving www/ over HTTPS (and plainly: arca's origin), and arca with www/`path`
    cached, both warmed by one HTTPS GET: (files, origin, contenders)."""
    tls = tls_files(work)
    origin = Nginx(work, "nginx-tls", www=www, log=False, tls=tls)
    peers = [origin]
    try:
        peers += tls_arcas(work, tls)
        for s in peers:
            fetch_all(s.tls_url(origin, path), size, context=tls_context(tls))
    except BaseException:
        for s in reversed(peers):
            s.stop()
        raise
    return tls, origin, peers

TLS_SETUP = ("one ECDSA P-256 certificate (CA made by openssl), TLS 1.2+1.3, arca's TLS 1.2 "
             "ciphers for nginx too, session tickets on and no session cache for both, arca "
             "--threads 2 and nginx worker_processes 2, no access log for either")

def tls_small(work, cfg, www):
    """Issue 53: 4 KiB hits over keep-alive TLS (wrk https://), arca against nginx."""
    write_random(os.path.join(www, "small"), 4096)
    _, origin, peers = tls_contenders(work, www, "/small", 4096)
    try:
        rounds = wrk_rounds(peers, origin, cfg, url=lambda s: s.tls_url(origin, "/small"))
        return {"metric": "req_per_s", "higher_is_better": True, "unit": "req/s",
                "setup": f"4 KiB cached, wrk -t2 -c64 https:// (keep-alive, TLS 1.3), "
                         f"{cfg['small_seconds']} s per round; {TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def tlsload_conn(s, url, tls, seconds, threads, resume):
    """arca-tlsload conn against s: its JSON, with the server's and the client's CPU µs a
    connection."""
    before, client_before = cpu_seconds(s.pid), children_cpu()
    out = subprocess.run([TLSLOAD, "conn", url, "--ca", tls["ca"], "--seconds", str(seconds),
                          "--threads", str(threads), *(["--resume"] if resume else [])],
                         capture_output=True, text=True, check=True, timeout=seconds + 120)
    cpu, client_cpu = cpu_seconds(s.pid) - before, children_cpu() - client_before
    r = json.loads(out.stdout)
    mode = "resumed" if resume else "full"
    if r["errors"] or not r["connections"]:
        raise RuntimeError(f"{s.name} ({mode}): {r['errors']} failed connections of "
                           f"{r['errors'] + r['connections']}: {r['first_error']}")
    if resume and r["resumed"] < 0.95 * r["connections"]:
        raise RuntimeError(f"{s.name}: only {r['resumed']} of {r['connections']} resumed")
    r["cpu_us"] = 1e6 * cpu / r["connections"]
    r["client_cpu_us"] = 1e6 * client_cpu / r["connections"]
    return r

def tls_handshake(work, cfg, www):
    """Issue 53: a new TLS 1.3 connection per 4 KiB hit (connect, handshake, GET, the server's
    close), full handshakes then resumed ones (each thread offers its previous session's
    ticket), arca against nginx. The main metric is the full handshakes' rate; the resumed
    rate's ratio is given beside it."""
    write_random(os.path.join(www, "small"), 4096)
    tls, origin, peers = tls_contenders(work, www, "/small", 4096)
    c = cfg["tls"]
    try:
        rounds, spoken = {s.name: [] for s in peers}, set()
        for _ in range(cfg["rounds"]):
            got = {s.name: {} for s in peers}
            for resume in (False, True):
                for s in peers:
                    r = tlsload_conn(s, s.tls_url(origin, "/small"), tls, c["handshake_seconds"],
                                     c["handshake_threads"], resume)
                    spoken.add(f"{r['protocol']} {r['cipher']}")
                    mode = "resumed" if resume else "full"
                    got[s.name].update({f"{mode}_conn_per_s": r["per_s"],
                                        f"{mode}_p99_ms": r["p99_ms"],
                                        f"{mode}_server_cpu_us_per_conn": r["cpu_us"],
                                        f"{mode}_client_cpu_us_per_conn": r["client_cpu_us"]})
                    if resume:
                        got[s.name]["resumed_share"] = r["resumed"] / r["connections"]
            for s in peers:
                rounds[s.name].append(got[s.name])
        if len(spoken) != 1:  # the same protocol and cipher for everyone, or no comparison
            raise RuntimeError(f"tls-handshake: the contenders negotiated {sorted(spoken)}")
        return {"metric": "full_conn_per_s", "higher_is_better": True, "unit": "conn/s",
                "also": ["resumed_conn_per_s"],
                "setup": f"a new connection per 4 KiB hit (arca-tlsload conn, {spoken.pop()}, "
                         f"{c['handshake_threads']} threads, the certificate verified), "
                         f"{c['handshake_seconds']} s full handshakes then "
                         f"{c['handshake_seconds']} s resumed (session tickets) per round; "
                         f"{TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def worker_cpu(s):
    """CPU seconds of each of s's workers: arca's arca-http* threads, nginx's worker processes
    (a listener's connections are shared among them by whichever asks first)."""
    def ticks(path):
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    out = []
    try:
        if isinstance(s, Arca):
            for t in sorted(os.listdir(f"/proc/{s.pid}/task")):
                with open(f"/proc/{s.pid}/task/{t}/comm") as f:
                    if f.read().startswith("arca-http"):
                        out.append(ticks(f"/proc/{s.pid}/task/{t}/stat"))
        else:
            out = [ticks(f"/proc/{p}/stat") for p in process_tree(s.pid)[1:]]
    except OSError:
        pass
    return out

def tls_large(work, cfg, www):
    """Issue 53: a cached 256 MiB object to 16 clients at once over TLS (arca-tlsload get): MB/s,
    and the server's CPU per byte (its /proc tree's CPU seconds over the bytes)."""
    size = cfg["large"]
    write_random(os.path.join(www, "large"), size)
    tls, origin, peers = tls_contenders(work, www, "/large", size)
    try:
        rounds = {s.name: [] for s in peers}
        for _ in range(cfg["rounds"]):
            for s in peers:
                before, client_before, workers = cpu_seconds(s.pid), children_cpu(), worker_cpu(s)
                out = subprocess.run([TLSLOAD, "get", s.tls_url(origin, "/large"), "--ca",
                                      tls["ca"], "--clients", str(cfg["large_clients"])],
                                     capture_output=True, text=True, check=True, timeout=900)
                cpu, client_cpu = cpu_seconds(s.pid) - before, children_cpu() - client_before
                workers = [b - a for a, b in zip(workers, worker_cpu(s))]
                res = json.loads(out.stdout)
                clients = res["clients"]
                if res["first_error"]:
                    print(f"tls-large: {s.name}: {res['first_error']}", file=sys.stderr)
                check_clients(s.name, clients, size)
                secs = max(c["done"] for c in clients) - min(c["start"] for c in clients)
                total = size * len(clients)
                # how the clients fell on the two workers: the figures above move with it
                rounds[s.name].append({"mb_per_s": total / secs / 1e6, "seconds": secs,
                                       "server_cpu_ns_per_byte": cpu * 1e9 / total,
                                       "client_cpu_ns_per_byte": client_cpu * 1e9 / total,
                                       "busiest_worker_share": max(workers) / sum(workers)
                                       if workers and sum(workers) else 0})
        return {"metric": "mb_per_s", "higher_is_better": True, "unit": "MB/s",
                "also": ["server_cpu_ns_per_byte"],
                "setup": f"{size >> 20} MiB cached, {cfg['large_clients']} concurrent clients "
                         f"(arca-tlsload get, TLS 1.3); {TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()

def tls_idle(work, cfg, www):
    """Issue 53: idle TLS keep-alive connections, each after one 4 KiB hit: the server's RSS
    growth a connection (its /proc tree), as idle-connections for plain ones."""
    write_random(os.path.join(www, "small"), 4096)
    tls, origin, peers = tls_contenders(work, www, "/small", 4096)
    n = cfg["tls"]["idle"]
    try:
        rounds = idle_rounds(peers, cfg, n, "tls-idle",
                             lambda s: hold_idle(s, s.tls_url(origin, "/small"), n,
                                                 client=(TLSLOAD, "--ca", tls["ca"]),
                                                 port=s.tls_port))
        return {"metric": "kib_per_connection", "higher_is_better": False, "unit": "KiB",
                "setup": f"{n} idle TLS 1.3 keep-alive connections after one 4 KiB hit each "
                         f"(arca-tlsload idle); {TLS_SETUP}", "rounds": rounds}
    finally:
        for s in reversed(peers):
            s.stop()
