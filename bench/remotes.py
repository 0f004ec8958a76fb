"""remotes (issue 69): apt clients through a cache of a signed Debian repository
served over HTTPS: arca's `--remote debian:apt=URL` against Debian's apt-cacher-ng and approx.

The repository is made here: .deb packages of random content (dpkg-deb), their Packages index
(apt-ftparchive, with by-hash copies as Debian's archive has), a Release signed with a throwaway
key (InRelease and Release.gpg, gpg in a GNUPGHOME of its own), served by nginx over HTTPS with
a certificate of the run's CA; its access log (status, body bytes, the request's
If-Modified-Since, If-None-Match, Range and If-Range) is what the upstream sent and was asked.
Every cache is given the CA and the repository's https URL, and asked over plain HTTP at
/debian/. A client is apt-get with state, cache and configuration directories of its own
(nothing of /etc/apt read), the repository's key as `signed-by`. Each round, fresh caches: the
clients at once cold (`apt-get update`, then `apt-get download` of every package), warm
(`apt-get download` again, and curl fetching the pool URLs on one connection per client:
apt-get's own CPU bounds its rate), then, once the metadata's freshness has run out,
`apt-get update` again."""
import concurrent.futures
import grp
import hashlib
import os
import pwd
import re
import shutil
import statistics
import subprocess
import time

from harness import (ARCA, ARCA_BEFORE, MiB, Arca, Nginx, Server, children_cpu, tree_sum,
                     wait_http)
from tls import tls_files

GiB = 1 << 30
SUITE = "bench"
# the repository's log line: the two fields Nginx.origin_bytes reads, then what a revalidation is
LOG_FORMAT = ('$request_uri $body_bytes_sent $status "$http_if_modified_since" '
              '"$http_if_none_match" "$http_range" "$http_if_range"')
LOG_LINE = re.compile(r'^(\S+) (\d+) (\d+) "(.*)" "(.*)" "(.*)" "(.*)"$')
# what Debian's archive lists: MD5 and SHA256 (apt takes the strongest a Release lists)
HASHES = [a for h, on in (("MD5", "true"), ("SHA1", "false"), ("SHA256", "true"),
                          ("SHA512", "false")) for a in ("-o", f"APT::FTPArchive::{h}={on}")]


def run(argv, **kw):
    """A command that must succeed; its output in the error when it does not."""
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode:
        raise RuntimeError(f"{argv[0]} exited with {p.returncode}: {p.stderr[-800:]}")
    return p.stdout


# --- the repository --------------------------------------------------------------------------


def package_sizes(c):
    """c["packages"] payload sizes from c["smallest"] to c["largest"], growing geometrically
    (most packages small, a few large, as in an archive)."""
    n, lo, hi = c["packages"], c["smallest"], c["largest"]
    return [round(lo * (hi / lo) ** (i / max(n - 1, 1))) for i in range(n)]


def make_deb(build, pool, name, size):
    """One package, Architecture: all, whose only file is `size` random bytes (incompressible,
    as most of a real .deb's data is already compressed). Returns the .deb's path."""
    root = os.path.join(build, name)
    os.makedirs(os.path.join(root, "DEBIAN"))
    os.makedirs(os.path.join(root, "usr", "share", name))
    with open(os.path.join(root, "usr", "share", name, "payload"), "wb") as f:
        f.write(os.urandom(size))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {name}\nVersion: 1.0\nArchitecture: all\n"
                f"Maintainer: arca bench <bench@invalid>\nInstalled-Size: {size // 1024 + 1}\n"
                f"Section: misc\nPriority: optional\nDescription: arca bench package {name}\n"
                f" Random bytes, {size} of them.\n")
    d = os.path.join(pool, name[0], name)
    os.makedirs(d)
    deb = os.path.join(d, f"{name}_1.0_all.deb")
    run(["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "--build", root, deb])
    shutil.rmtree(root)
    return deb


def by_hash(d, names):
    """Copies of the index files `names` (in d) under d/by-hash/SHA256/<digest>, as Debian's
    archive has them (Acquire-By-Hash: apt then asks for those, immutable by their name)."""
    os.makedirs(os.path.join(d, "by-hash", "SHA256"))
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        shutil.copy(os.path.join(d, n), os.path.join(d, "by-hash", "SHA256", digest))


def sign(work, release_dir):
    """InRelease and Release.gpg for release_dir/Release, with a throwaway ed25519 key made in a
    GNUPGHOME of its own (its agent stopped after). Returns the public key's path (a binary
    keyring, apt's `signed-by`)."""
    home = os.path.join(work, "gnupg")
    os.makedirs(home, mode=0o700)
    env = dict(os.environ, GNUPGHOME=home)
    gpg = ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    release = os.path.join(release_dir, "Release")
    key = os.path.join(work, "bench-repo.gpg")
    try:
        run([*gpg, "--quick-gen-key", "arca bench repository <bench@invalid>", "ed25519",
             "sign", "never"], env=env)
        run([*gpg, "--output", key, "--export"], env=env)
        run([*gpg, "--output", os.path.join(release_dir, "InRelease"), "--clearsign", release],
            env=env)
        run([*gpg, "--output", os.path.join(release_dir, "Release.gpg"), "--armor",
             "--detach-sign", release], env=env)
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)
    return key


def make_repo(work, www, c):
    """The repository under www/debian: c["packages"] packages in pool/main, suite `bench`,
    component main, amd64 (the packages are `all`, listed in binary-amd64 as Debian's are).
    Returns (package names, [(pool path below /debian, size)] of their .debs, the signing key's
    path)."""
    top = os.path.join(www, "debian")
    build = os.path.join(work, "debs")
    names = [f"bench{i:02d}" for i in range(c["packages"])]
    debs = [make_deb(build, os.path.join(top, "pool", "main"), name, size)
            for name, size in zip(names, package_sizes(c))]
    shutil.rmtree(build)
    suite = os.path.join(top, "dists", SUITE)
    index = os.path.join(suite, "main", "binary-amd64")
    os.makedirs(index)
    packages = run(["apt-ftparchive", *HASHES, "packages", "pool/main"], cwd=top)
    with open(os.path.join(index, "Packages"), "w") as f:
        f.write(packages)
    run(["gzip", "-9kn", os.path.join(index, "Packages")])
    run(["xz", "-k", os.path.join(index, "Packages")])
    fields = dict(Origin="arca-bench", Label="arca-bench", Suite=SUITE, Codename=SUITE,
                  Architectures="amd64", Components="main", Description="arca bench repository",
                  **{"Acquire-By-Hash": "yes"})
    release = run(["apt-ftparchive", *HASHES,
                   *[a for k, v in fields.items()
                     for a in ("-o", f"APT::FTPArchive::Release::{k}={v}")],
                   "release", suite])
    with open(os.path.join(suite, "Release"), "w") as f:
        f.write(release)
    by_hash(index, ["Packages", "Packages.gz", "Packages.xz"])
    key = sign(work, suite)
    return names, [(d[len(top):], os.path.getsize(d)) for d in debs], key


class Repo(Nginx):
    """nginx serving the repository over HTTPS (tls_port; its plain port is unused), a line per
    request in its access log: the upstream's bytes, requests and revalidations."""

    def __init__(self, work, www, tls):
        super().__init__(work, "repo", www=www, tls=tls, log_format=LOG_FORMAT)
        self.url = f"https://127.0.0.1:{self.tls_port}/debian"

    def mark(self):
        """Where the log is now: since() reads the requests after it."""
        time.sleep(0.3)  # the last request's line lands
        return self.requests()

    def since(self, mark):
        """The requests logged after `mark`: (uri, body bytes, status, conditional: with
        If-Modified-Since or If-None-Match, ranged: with a Range) each."""
        time.sleep(0.3)
        with open(self.access_log) as f:
            lines = f.read().splitlines()[mark:]
        out = []
        for line in lines:
            m = LOG_LINE.match(line)
            if not m:
                raise RuntimeError(f"repo: unreadable log line {line!r}")
            uri, sent, status, ims, inm, ranged, _ = m.groups()
            out.append((uri, int(sent), int(status), (ims, inm) != ("-", "-"), ranged != "-"))
        return out


# --- the caches ------------------------------------------------------------------------------


def cpu_reaped(pid):
    """CPU seconds of pid's tree, with those of the children it has reaped (utime, stime,
    cutime, cstime): approx is a process per connection, ended by the time it is counted."""
    def ticks(stat):
        fields = stat.rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15])
    return tree_sum(pid, "stat", ticks) / os.sysconf("SC_CLK_TCK")


class ArcaRemote(Arca):
    """arca with the repository as remote `debian` of kind apt, trusting the run's CA."""

    def __init__(self, work, name, binary, repo, tls, ttl):
        super().__init__(work, name=name, binary=binary,
                         extra=("--remote", f"debian:apt={repo.url}", "--ca-file", tls["ca"],
                                "--remote-meta-ttl", f"{ttl}s"))
        self.base = f"http://127.0.0.1:{self.port}/debian"


class AptCacherNg(Server):
    """Debian's apt-cacher-ng 3.7 in the foreground, its configuration, cache and logs in a
    directory of its own: the repository as a remapped backend (`Remap-`: /debian to its https
    URL; as a proxy it would pass https through uncached), the run's CA as CAfile, metadata
    (its volatile files) fresh for `ttl` s (FreshIndexMaxAge). Its backend is named
    `localhost`: it checks the certificate's name as a DNS name only, and 127.0.0.1 (an IP SAN)
    fails ("certificate verify failed")."""
    name = "apt-cacher-ng"

    def __init__(self, work, name, repo, tls, ttl):
        super().__init__(work)
        self.name, self.dir = name, os.path.join(work, name)
        for d in ("conf", "cache", "log"):
            os.makedirs(os.path.join(self.dir, d))
        with open(os.path.join(self.dir, "conf", "acng.conf"), "w") as f:
            f.write(f"""CacheDir: {self.dir}/cache
LogDir: {self.dir}/log
SupportDir: /usr/lib/apt-cacher-ng
Port: {self.port}
BindAddress: 127.0.0.1
SocketPath: {self.dir}/socket
ForeGround: 1
Remap-benchrep: /debian ; {repo.url.replace("127.0.0.1", "localhost")}
CAfile: {tls["ca"]}
FreshIndexMaxAge: {ttl}
ReportPage: acng-report.html
ExThreshold: 4
""")
        self.spawn(["apt-cacher-ng", "-c", os.path.join(self.dir, "conf")],
                   open(os.path.join(self.dir, "stdout"), "w"))
        wait_http(f"http://127.0.0.1:{self.port}/acng-report.html", proc=self.proc)
        self.base = f"http://127.0.0.1:{self.port}/debian"


class Approx(Server):
    """Debian's approx 5.12, a process per connection as under inetd (systemd-socket-activate
    --inetd accepts and starts it), its cache in a directory of its own, the repository as
    `debian`; it downloads with curl, told the run's CA by CURL_CA_BUNDLE. Its InRelease is
    fresh while its age in whole minutes, rounded to the nearest, is at most $interval: for
    $interval N, N minutes and a half; `ttl` must be 30 s plus whole minutes."""
    name = "approx"

    def __init__(self, work, name, repo, tls, ttl):
        if ttl % 60 != 30:
            raise ValueError(f"approx: a freshness of {ttl} s is not one it can be given")
        super().__init__(work)
        self.name, self.dir = name, os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "cache"))
        conf = os.path.join(self.dir, "approx.conf")
        with open(conf, "w") as f:
            f.write(f"""$cache {self.dir}/cache
$interval {ttl // 60}
$user {pwd.getpwuid(os.getuid()).pw_name}
$group {grp.getgrgid(os.getgid()).gr_name}
debian {repo.url}
""")
        # systemd-socket-activate hands its children only the environment -E names
        self.spawn(["systemd-socket-activate", "--inetd", "--accept",
                    "-l", f"127.0.0.1:{self.port}", "-E", f"CURL_CA_BUNDLE={tls['ca']}",
                    "approx", "-c", conf], open(os.path.join(self.dir, "stdout"), "w"))
        wait_http(f"http://127.0.0.1:{self.port}/", proc=self.proc)
        self.base = f"http://127.0.0.1:{self.port}/debian"


# --- the clients -----------------------------------------------------------------------------


APT_CONF = """Dir::State "{d}/state";
Dir::State::status "{d}/status";
Dir::Cache "{d}/cache";
Dir::Etc "{d}/etc";
Dir::Etc::sourcelist "sources.list";
Dir::Etc::sourceparts "-";
Dir::Etc::parts "apt.conf.d";
Dir::Etc::preferencesparts "preferences.d";
Dir::Log "{d}/log";
Debug::NoLocking "1";
APT::Architecture "amd64";
APT::Architectures {{ "amd64"; }};
APT::Sandbox::User "{user}";
Acquire::Languages "none";
"""


class AptClient:
    """apt-get with directories of its own under d (read first through APT_CONFIG, so nothing of
    /etc/apt is read: its apt.conf.d is the empty d/etc/apt.conf.d), the cache's /debian/ as
    its only source, the repository's key as `signed-by`; `apt-get download` writes to d/down.
    The sandbox user is the current one (as root, apt would otherwise download as _apt)."""

    def __init__(self, d, base, key):
        self.d, self.down = d, os.path.join(d, "down")
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/apt.conf.d",
                    "etc/preferences.d", "log", "down"):
            os.makedirs(os.path.join(d, sub))
        open(os.path.join(d, "status"), "w").close()
        with open(os.path.join(d, "etc", "sources.list"), "w") as f:
            f.write(f"deb [signed-by={key}] {base} {SUITE} main\n")
        self.conf = os.path.join(d, "apt.conf")
        with open(self.conf, "w") as f:
            f.write(APT_CONF.format(d=d, user=pwd.getpwuid(os.getuid()).pw_name))
        self.env = dict(os.environ, APT_CONFIG=self.conf)

    def apt(self, *args):
        """apt-get ARGS, which must succeed without a warning (apt exits 0 after some failed
        fetches, with `W:` or `Err:` lines). Returns when it ended (time.monotonic())."""
        p = subprocess.run(["apt-get", "-q", *args], cwd=self.down, env=self.env,
                           capture_output=True, text=True, timeout=600)
        bad = [l for l in (p.stdout + p.stderr).splitlines() if l.startswith(("W:", "E:", "Err"))]
        if p.returncode or bad:
            raise RuntimeError(f"apt-get {args[0]} ({self.d}) exited with {p.returncode}: " +
                               " | ".join(bad or (p.stdout + p.stderr).splitlines()[-5:]))
        return time.monotonic()

    def clear(self):
        """The downloaded packages removed, for the next download to fetch them all."""
        for n in os.listdir(self.down):
            os.unlink(os.path.join(self.down, n))

    def check(self, names):
        """Every package downloaded (apt-get download checks each against the index's hash)."""
        got = [n for n in os.listdir(self.down) if n.endswith(".deb")]
        if len(got) != len(names):
            raise RuntimeError(f"{self.d}: {len(got)} packages downloaded of {len(names)}")


def at_once(clients, work):
    """work(client) for every client at once, a thread each; the wall seconds until the last one
    ended, and what each returned."""
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        out = list(pool.map(work, clients))
    return time.monotonic() - t0, out


def curl_at_once(base, paths, sizes, n):
    """n curl processes at once, each fetching every path of `paths` in turn over one kept-alive
    connection to the cache: a client far cheaper than apt-get. Every answer must be a 200 of
    the package's size. Returns the wall seconds."""
    argv = ["curl", "-sS", "-w", "%{http_code} %{size_download}\\n"]
    for p in paths:
        argv += ["-o", "/dev/null", base + p]
    t0 = time.monotonic()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    outs = [p.communicate(timeout=600) for p in procs]
    wall = time.monotonic() - t0
    want = [f"200 {size}" for size in sizes]
    for p, (out, err) in zip(procs, outs):
        if p.returncode or out.splitlines() != want:
            bad = [f"{path}: {got}" for path, got, w in zip(paths, out.splitlines(), want)
                   if got != w]
            raise RuntimeError(f"curl through {base}: exit {p.returncode}, {err.strip()} "
                               f"{'; '.join(bad[:3])}")
    return wall


# --- the phases of a round -------------------------------------------------------------------


def cold_phase(s, repo, clients, names, total):
    """Every client at once: `apt-get update`, then `apt-get download` of every package, through
    a fresh cache. What the upstream sent (all of it, and the pool's .debs alone) over the
    packages' bytes, its requests, the slowest client's seconds. Also returns when the last
    client's update ended: the metadata's freshness runs from about then."""
    mark, cpu = repo.mark(), cpu_reaped(s.pid)

    def one(c):
        updated = c.apt("update")
        c.apt("download", *names)
        return updated

    wall, updated = at_once(clients, one)
    cpu = cpu_reaped(s.pid) - cpu
    for c in clients:
        c.check(names)
    asked = repo.since(mark)
    return {"cold_s": wall, "cold_upstream_ratio": sum(a[1] for a in asked) / total,
            "cold_pool_ratio": sum(a[1] for a in asked if "/pool/" in a[0]) / total,
            "cold_upstream_requests": len(asked), "cold_cpu_s": cpu}, max(updated)


def passes(seconds, one):
    """one() again and again until `seconds` have passed (at least once): how many times, and
    the wall seconds they took. A pass of the warm phase is under a second of the caches' CPU,
    a few clock ticks: repeated, their CPU per GiB is read to a percent."""
    t0, n = time.monotonic(), 0
    while not n or time.monotonic() - t0 < seconds:
        one()
        n += 1
    return n, time.monotonic() - t0


def warm_phase(s, repo, clients, names, pool, seconds):
    """The same clients at once, `apt-get download` of every package again (their lists kept),
    then curl fetching the pool's URLs, one connection per client, as many clients; each in
    passes for `seconds`. Packages a second over the wall time, the cache's CPU seconds per GiB
    it sent and the clients' own (apt-get with its methods; curl), and anything asked upstream
    meanwhile (nothing, for a cache)."""
    total = sum(size for _, size in pool)
    gib = len(clients) * total / GiB  # what one pass serves

    def apt_pass():
        for c in clients:
            c.clear()
        at_once(clients, lambda c: c.apt("download", *names))
        for c in clients:
            c.check(names)

    def curl_pass():
        curl_at_once(s.base, [p for p, _ in pool], [n for _, n in pool], len(clients))

    mark, row = repo.mark(), {}
    for key, one in (("warm", apt_pass), ("curl", curl_pass)):
        cpu, client_cpu = cpu_reaped(s.pid), children_cpu()
        n, wall = passes(seconds, one)
        cpu, client_cpu = cpu_reaped(s.pid) - cpu, children_cpu() - client_cpu
        row |= {f"{key}_pkgs_per_s": n * len(clients) * len(names) / wall,
                f"{key}_cpu_s_per_gib": cpu / (n * gib),
                f"{key}_client_cpu_s_per_gib": client_cpu / (n * gib)}
    return row | {"warm_upstream_requests": len(repo.since(mark))}


def update_phase(s, repo, clients, stale_at):
    """Once the cache's metadata is no longer fresh (stale_at, time.monotonic()), every client's
    `apt-get update` at once: the requests it cost the upstream, how many of them conditional
    (If-Modified-Since or If-None-Match), answered 304, or ranged (apt-cacher-ng checks a file
    by asking for its last byte), and the bytes sent."""
    time.sleep(max(0.0, stale_at - time.monotonic()))
    mark = repo.mark()
    wall, _ = at_once(clients, lambda c: c.apt("update"))
    asked = repo.since(mark)
    return {"update_s": wall, "update_upstream_requests": len(asked),
            "update_conditional": sum(1 for a in asked if a[3]),
            "update_not_modified": sum(1 for a in asked if a[2] == 304),
            "update_ranged": sum(1 for a in asked if a[4]),
            "update_upstream_bytes": sum(a[1] for a in asked)}


# --- the scenario ----------------------------------------------------------------------------


def has_remote(binary):
    """Whether an arca build has --remote (issue 69): before it, arca is left out."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True)
    return re.search(r"--remote(?![\w-])", out.stdout + out.stderr) is not None


def contenders():
    """name -> the class that starts it, fresh: arca (and ARCA_BEFORE as arca-before) when the
    build has --remote, apt-cacher-ng, approx. Also the arca builds left out, with why."""
    out, left_out = {}, []
    for name, binary in (("arca", ARCA), ("arca-before", ARCA_BEFORE)):
        if binary and has_remote(binary):
            out[name] = lambda work, n, repo, tls, ttl, b=binary: ArcaRemote(work, n, b, repo,
                                                                            tls, ttl)
        elif binary:
            left_out.append(f"{name} ({binary}): unsupported, it has no --remote")
    return out | {"apt-cacher-ng": AptCacherNg, "approx": Approx}, left_out


def client_bound(rows):
    """A sentence naming the caches whose warm apt-get downloads were bound by apt-get: its own
    CPU per GiB more than twice the cache's (medians), on the two cores they share. "" if none."""
    def median(rs, k):
        return statistics.median(x[k] for x in rs)
    times = {n: median(rs, "warm_client_cpu_s_per_gib") / median(rs, "warm_cpu_s_per_gib")
             for n, rs in rows.items() if rs and median(rs, "warm_cpu_s_per_gib") > 0}
    bound = [f"{n} ({t:.1f}x)" for n, t in times.items() if t > 2]
    if not bound:
        return ""
    return ("warm apt-get downloads are bound by the clients: apt-get spent more CPU per GiB "
            "than the cache, on the same two cores, for " + ", ".join(bound) +
            "; curl_pkgs_per_s (curl, a connection per client) is the caches' own rate")


def remotes(work, cfg, www):
    """Issue 69's speed: each round fresh caches, each in turn (the order alternated round by
    round) cold then warm with its own apt clients, then every cache's warm `apt-get update`
    once its metadata's freshness (c["ttl"] s for all) has run out."""
    c = cfg["remotes"]
    names, pool, key = make_repo(work, www, c)
    total = sum(size for _, size in pool)
    tls = tls_files(work)
    repo = Repo(work, www, tls)
    starts, left_out = contenders()
    if c["ttl"] % 60 != 30:  # the smoke's 2 s: approx's freshness is whole minutes and a half
        del starts["approx"]
        left_out.append(f"approx: left out, it cannot be given {c['ttl']} s of freshness")
    for why in left_out:
        print(f"remotes: {why}", flush=True)
    rows = {name: [] for name in starts}
    try:
        for r in range(cfg["rounds"]):
            order = list(starts) if r % 2 == 0 else list(starts)[::-1]
            caches, clients, fresh = {}, {}, {}
            try:
                for name in order:
                    caches[name] = starts[name](work, f"{name}-{r}", repo, tls, c["ttl"])
                for name in order:
                    os.sync()  # no cache meets the writeback of the one before
                    clients[name] = [AptClient(os.path.join(work, f"clients-{name}-{r}", str(i)),
                                               caches[name].base, key)
                                     for i in range(c["clients"])]
                    cold, fresh[name] = cold_phase(caches[name], repo, clients[name], names, total)
                    rows[name].append(cold | warm_phase(caches[name], repo, clients[name], names,
                                                        pool, c["warm_seconds"]))
                for name in order:
                    rows[name][-1] |= update_phase(caches[name], repo, clients[name],
                                                   fresh[name] + c["ttl"] + 2)
            finally:
                for name, s in caches.items():
                    s.stop()
                    shutil.rmtree(getattr(s, "data_dir", None) or s.dir, ignore_errors=True)
                    shutil.rmtree(os.path.join(work, f"clients-{name}-{r}"), ignore_errors=True)
        note = client_bound(rows)
        if note:
            print(f"remotes: {note}", flush=True)
        return {"metric": "warm_pkgs_per_s", "higher_is_better": True, "unit": "packages/s",
                "also": ["curl_pkgs_per_s", "warm_cpu_s_per_gib", "curl_cpu_s_per_gib",
                         "cold_upstream_ratio", "update_upstream_requests"],
                "packages": len(pool), "packages_bytes": total, "left_out": left_out,
                "setup": f"a signed Debian repository ({len(pool)} packages, "
                         f"{pool[0][1] / 1024:.0f} KiB to {pool[-1][1] / MiB:.1f} MiB, "
                         f"{total / MiB:.1f} MiB) served by nginx over HTTPS; each round fresh "
                         f"caches, {c['clients']} apt-get clients at once cold (update, then "
                         f"download of every package), warm (download again, then curl "
                         f"fetching the pool's URLs, a connection per client: each in passes "
                         f"for {c['warm_seconds']} s), then a warm update once the metadata's "
                         f"{c['ttl']} s of freshness ran out"
                         + "".join(f"; {why}" for why in left_out) + (f". {note}" if note else ""),
                "rounds": rows}
    finally:
        repo.stop()
