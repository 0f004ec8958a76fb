"""What an apt scenario of the remotes (issue 69, `[remote NAME]` kind apt) stands on: a signed
Debian repository made here as an archive makes one (tiny .deb packages built with dpkg-deb,
indexes and Release by apt-ftparchive, by-hash copies, InRelease and Release.gpg signed with a
throwaway GnuPG key), served over HTTPS by nginx with an access log a scenario counts requests
in (each request's path as sent, status, If-Modified-Since, If-None-Match, bytes), and apt-get
run as a client with its own state, config and keyring: nothing of the machine's /etc/apt is
read, nothing outside its directory is written, no root rights are needed (`apt-get download`).

No network: every server is on a free loopback port, started and stopped by its scenario; the
GnuPG agent is ended and every directory removed at teardown."""

import gzip
import json
import lzma
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest

import nginx
from conftest import sha256, wait_for

ARCH = "amd64"
# name -> size of its one payload file: distinct sizes, one of a megabyte (random bytes: the
# .deb is as large)
PACKAGES = {"arca-tiny": 300, "arca-small": 4_000, "arca-mid": 60_000, "arca-wide": 250_000,
            "arca-big": 1_000_000}
# what apt-get says of a file that is not what the Release or the index says it is: its sums
# differ, or (before any sum is taken) its size
MISMATCH = ("Hash Sum mismatch", "File has unexpected size")


def mismatch(out):
    """Whether apt-get's output says a file was not the one its Release or index lists."""
    return any(text in out for text in MISMATCH)


# --- the repository -------------------------------------------------------------------------


@dataclass
class Deb:
    name: str
    version: str
    filename: str  # the pool path below the repository's root, as the Packages index says
    path: str  # the file on disk
    sha256: str
    size: int  # of the .deb
    payload: int  # bytes of its one file


class AptRepo:
    """A repository at `root`/`base` (the URL's path below the server's root), suite `suite`,
    component main, architecture amd64, signed by a key made for it (`keyring`: its public key,
    a binary keyring for `signed-by`). publish() writes the dists/ tree for the packages built
    so far; republish() changes packages and publishes again, keeping the previous by-hash
    files and pool files as an archive does for the clients still on the previous Release."""

    def __init__(self, root, base="mirror/debian", suite="stable", by_hash=True,
                 packages=None):
        self.root, self.base, self.suite = root, base.strip("/"), suite
        self.dir = os.path.join(root, self.base)
        self.by_hash = by_hash
        self.debs = {}  # name -> the Deb the current Packages index lists
        self.mtime = 0  # the time the last publish() gave its files
        os.makedirs(self.dir)
        self._work = tempfile.mkdtemp(prefix="arca-aptwork-")
        self.gnupghome = os.path.join(self._work, "gnupg")
        self.keyring = os.path.join(self._work, "archive-keyring.gpg")
        try:
            os.mkdir(self.gnupghome, 0o700)
            self.fingerprint = self._make_key(self.gnupghome, self.keyring)
            for name, size in (PACKAGES if packages is None else packages).items():
                self.build(name, size)
            self.publish()
        except BaseException:
            self.close()
            raise

    # -- GnuPG --

    def gpg(self, *args, home=None, **kw):
        return subprocess.run(["gpg", "--homedir", home or self.gnupghome, "--batch", "--yes",
                               "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "",
                               *args], check=True, capture_output=True, **kw)

    def _make_key(self, home, keyring):
        """A signing key without a passphrase in `home`, its public half in `keyring`: the
        key's fingerprint."""
        self.gpg("--quick-gen-key", "arca test archive <apt@arca.invalid>", "ed25519", "sign",
                 "never", home=home)
        cols = self.gpg("--list-keys", "--with-colons", home=home).stdout.decode()
        fpr = re.search(r"^fpr:+([0-9A-F]{40}):", cols, re.M)[1]
        with open(keyring, "wb") as f:
            f.write(self.gpg("--export", fpr, home=home).stdout)
        return fpr

    def other_key(self):
        """(GNUPGHOME, keyring) of a second key, not the one clients trust: what signs a
        forged InRelease."""
        home = os.path.join(self._work, "gnupg-other")
        if not os.path.isdir(home):
            os.mkdir(home, 0o700)
            self._make_key(home, os.path.join(self._work, "other-keyring.gpg"))
        return home, os.path.join(self._work, "other-keyring.gpg")

    # -- packages --

    def build(self, name, size, version="1.0"):
        """A .deb of `name` at `version` in the pool with one file of `size` random bytes (not
        listed before the next publish())."""
        tree = os.path.join(self._work, f"tree-{name}-{version}")
        os.makedirs(os.path.join(tree, "DEBIAN"))
        os.makedirs(os.path.join(tree, "usr", "share", "arca-test"))
        with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
            f.write(f"Package: {name}\nVersion: {version}\nArchitecture: {ARCH}\n"
                    "Maintainer: arca tests <apt@arca.invalid>\nSection: misc\n"
                    "Priority: optional\nDescription: a package of arca's apt scenarios\n"
                    f" {size} random bytes.\n")
        with open(os.path.join(tree, "usr", "share", "arca-test", name), "wb") as f:
            f.write(os.urandom(size))
        filename = f"pool/main/{name[0]}/{name}/{name}_{version}_{ARCH}.deb"
        path = os.path.join(self.dir, filename)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, path],
                       check=True, capture_output=True)
        shutil.rmtree(tree)
        with open(path, "rb") as f:
            data = f.read()
        self.debs[name] = Deb(name, version, filename, path, sha256(data), len(data), size)
        return self.debs[name]

    # -- the dists/ tree --

    @property
    def dists(self):
        return os.path.join(self.dir, "dists", self.suite)

    @property
    def binary(self):
        """The component's index directory, below dists/SUITE."""
        return os.path.join(self.dists, "main", f"binary-{ARCH}")

    def path(self, name):
        """The URL path (below the server's root) of a file of the repository."""
        return f"/{self.base}/{name}"

    def index_path(self, name="Packages.xz"):
        return self.path(f"dists/{self.suite}/main/binary-{ARCH}/{name}")

    def publish(self, by_hash=None):
        """Packages, Packages.gz and Packages.xz for the pool's listed packages, their by-hash
        copies (when by_hash), Release with SHA256 sums only (apt names a by-hash file by the
        strongest sum the Release has), InRelease and Release.gpg."""
        if by_hash is not None:
            self.by_hash = by_hash
        os.makedirs(self.binary, exist_ok=True)
        self._write_indexes()
        for name in ("Release", "InRelease", "Release.gpg"):  # else the Release lists the old one
            if os.path.exists(os.path.join(self.dists, name)):
                os.unlink(os.path.join(self.dists, name))
        release = self._release()
        with open(os.path.join(self.dists, "Release"), "wb") as f:
            f.write(release)
        if self.by_hash:
            self._by_hash(release.decode())
        self.sign()
        self._date_files()

    def _date_files(self):
        """The files of this publish dated a second after the previous publish's at least: a
        server's Last-Modified and ETag (nginx's: the time in seconds and the size) tell two
        publishes apart even within one second, as they do for an archive published at most
        every few hours; else a conditional request would be answered 304 with the new file
        changed."""
        self.mtime = max(math.floor(time.time()), self.mtime + 1)
        names = ["Release", "InRelease", "Release.gpg"] + [
            os.path.join("main", f"binary-{ARCH}", n)
            for n in ("Packages", "Packages.gz", "Packages.xz")]
        for name in names:
            os.utime(os.path.join(self.dists, name), (self.mtime, self.mtime))

    def _write_indexes(self):
        """The Packages index of the packages self.debs lists (an older version's .deb stays in
        the pool, unlisted, as an archive keeps it for a while)."""
        listed = os.path.join(self._work, "listed")
        shutil.rmtree(listed, ignore_errors=True)
        for deb in self.debs.values():  # apt-ftparchive lists a directory: links of the listed
            os.makedirs(os.path.join(listed, os.path.dirname(deb.filename)), exist_ok=True)
            os.link(deb.path, os.path.join(listed, deb.filename))
        text = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=listed, check=True,
                              capture_output=True).stdout
        shutil.rmtree(listed)
        # written beside then renamed: a request never reads half an index
        for name, data in (("Packages", text), ("Packages.gz", gzip.compress(text, mtime=0)),
                           ("Packages.xz", lzma.compress(text))):
            tmp = os.path.join(self.binary, f".{name}.new")
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(self.binary, name))

    def _release(self):
        opts = {"Origin": "arca-test", "Label": "arca-test", "Suite": self.suite,
                "Codename": self.suite, "Architectures": ARCH, "Components": "main",
                "Description": "arca's apt scenarios", "MD5": "false", "SHA1": "false",
                "SHA512": "false"}
        if self.by_hash:
            opts["Acquire-By-Hash"] = "yes"
        args = [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in opts.items()]
        return subprocess.run(["apt-ftparchive", *args, "release", "."], cwd=self.dists,
                              check=True, capture_output=True).stdout

    def _by_hash(self, release):
        """by-hash/SHA256/<sum> beside each index the Release lists (the earlier ones kept)."""
        for digest, rel in re.findall(r"^ ([0-9a-f]{64}) +\d+ (\S+)$", release, re.M):
            if "/" not in rel:
                continue
            src = os.path.join(self.dists, rel)
            dst_dir = os.path.join(os.path.dirname(src), "by-hash", "SHA256")
            os.makedirs(dst_dir, exist_ok=True)
            if not os.path.exists(os.path.join(dst_dir, digest)):
                shutil.copy(src, os.path.join(dst_dir, digest))

    def sign(self, home=None):
        """InRelease (clear-signed Release) and Release.gpg (detached), with the repository's
        key or the one in `home`."""
        release = os.path.join(self.dists, "Release")
        for out, how in (("InRelease", "--clearsign"), ("Release.gpg", "--detach-sign")):
            tmp = os.path.join(self.dists, f".{out}.new")
            self.gpg("--digest-algo", "SHA256", "--armor", how, "--output", tmp, release,
                     home=home)
            os.rename(tmp, os.path.join(self.dists, out))

    def republish(self, change=("arca-mid",), add=(), by_hash=None):
        """Each package of `change` at its next version (new bytes, the same size), each
        (name, size) of `add` new, then publish(): the new Release, indexes and by-hash copies,
        the previous ones' by-hash copies and .debs kept. The changed Debs."""
        changed = []
        for name in change:
            old = self.debs[name]
            major, minor = old.version.split(".")
            changed.append(self.build(name, old.payload, f"{major}.{int(minor) + 1}"))
        for name, size in add:
            changed.append(self.build(name, size))
        self.publish(by_hash)
        return changed

    def index_sha256(self, name="Packages.xz"):
        """The sum the current Release gives the index `name`."""
        with open(os.path.join(self.dists, "Release")) as f:
            rel = f"main/binary-{ARCH}/{name}"
            return re.search(rf"^ ([0-9a-f]{{64}}) +\d+ {re.escape(rel)}$", f.read(), re.M)[1]

    def read(self, rel):
        """The bytes of a file of the repository (a path below its root)."""
        with open(os.path.join(self.dir, rel), "rb") as f:
            return f.read()

    def close(self):
        """The agents gpg started for the keys' homes ended (gpgconf asks and returns; an agent
        removes its socket as it exits), then the work directory removed."""
        for home in (self.gnupghome, os.path.join(self._work, "gnupg-other")):
            if not os.path.isdir(home):
                continue
            sock = subprocess.run(["gpgconf", "--homedir", home, "--list-dirs", "agent-socket"],
                                  capture_output=True, text=True).stdout.strip()
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
            if sock:
                wait_for(lambda: not os.path.exists(sock), f"gpg-agent of {home} gone")
        shutil.rmtree(self._work, ignore_errors=True)


# --- nginx, the HTTPS origin -----------------------------------------------------------------


@dataclass
class Logged:
    """One request of nginx's access log."""
    method: str
    uri: str  # as the client sent it (not decoded, its query kept)
    status: int
    if_modified_since: str
    if_none_match: str
    bytes: int

    @property
    def conditional(self):
        return bool(self.if_modified_since or self.if_none_match)


class Nginx(nginx.Nginx):
    """nginx serving `root` over HTTPS (tls: conftest's tls_files, a certificate for
    127.0.0.1 that its CA signs) on a free loopback port, with ETag and Last-Modified (so it
    answers a conditional request 304), and an access log a line per request, written as the
    request ends: the method, the request target as sent, the status, If-Modified-Since,
    If-None-Match and the body's bytes, each escaped as in a JSON string."""

    def __init__(self, root, tls):
        super().__init__(tls, root=root, log_format=(
            "escape=json '$request_method\\t$request_uri\\t$status\\t'\n"
            "    '$http_if_modified_since\\t$http_if_none_match\\t$body_bytes_sent'"))

    def requests(self, since=0):
        """Every request logged (from the `since`-th on: a mark() taken before)."""
        out = []
        for line in self.lines()[since:]:  # each field escaped as in a JSON string (escape=json)
            method, uri, status, ims, inm, sent = (json.loads(f'"{v}"') for v in line.split("\t"))
            out.append(Logged(method, uri, int(status), ims, inm, int(sent)))
        return out

    def mark(self):
        """A position in the log: requests(since=mark) are those logged after it."""
        return len(self.requests())

    def gets(self, path, status=None, since=0):
        """How many GETs of `path` (the request target as sent) were logged, those answered
        `status` only when given."""
        return sum(r.method == "GET" and r.uri == path and (status is None or r.status == status)
                   for r in self.requests(since))

    def wait_gets(self, path, at_least=1, status=None, since=0, timeout=10):
        """The count of gets() once it is `at_least` (nginx logs a request once it has sent
        its last byte: a client may have it a moment before)."""
        return wait_for(lambda: (n := self.gets(path, status, since)) >= at_least and n,
                        f"{at_least} GET {path} in nginx's log", timeout)


# --- apt-get, the client ----------------------------------------------------------------------


class AptClient:
    """apt-get with its own state, cache, sources and config under `dir` (APT_CONFIG: the
    machine's apt.conf.d, sources and trusted keys are not read; no proxy), its own Packages
    lists: one machine of a lab. `ca`: the CA its https:// method trusts."""

    def __init__(self, dir, ca=None):
        self.dir = dir
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
                    "etc/trusted.gpg.d", "etc/preferences.d", "etc/apt.conf.d", "log",
                    "downloads"):
            os.makedirs(os.path.join(dir, sub), exist_ok=True)
        open(os.path.join(dir, "state", "status"), "w").close()
        open(os.path.join(dir, "etc", "sources.list"), "w").close()
        self.config = os.path.join(dir, "apt.conf")
        with open(self.config, "w") as f:
            f.write(self._apt_conf(ca))

    def _apt_conf(self, ca):
        d = self.dir
        settings = {
            "Dir::Etc::parts": f"{d}/etc/apt.conf.d", "Dir::Etc::main": f"{d}/etc/apt.conf",
            "Dir::State": f"{d}/state", "Dir::State::status": f"{d}/state/status",
            "Dir::Cache": f"{d}/cache", "Dir::Log": f"{d}/log",
            "Dir::Etc::sourcelist": f"{d}/etc/sources.list",
            "Dir::Etc::sourceparts": f"{d}/etc/sources.list.d",
            "Dir::Etc::trusted": f"{d}/etc/trusted.gpg",
            "Dir::Etc::trustedparts": f"{d}/etc/trusted.gpg.d",
            "Dir::Etc::preferences": f"{d}/etc/preferences",
            "Dir::Etc::preferencesparts": f"{d}/etc/preferences.d",
            "APT::Architecture": ARCH, "Debug::NoLocking": "1",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
            "Acquire::Languages": "none", "Acquire::Retries": "0",
            "Acquire::http::Proxy": "DIRECT", "Acquire::https::Proxy": "DIRECT",
            # a failure to fetch or verify anything is an error, not a warning with old lists
            "APT::Update::Error-Mode": "any",
            "Acquire::http::Timeout": "30", "Acquire::https::Timeout": "30",
        }
        if ca:
            settings["Acquire::https::CaInfo"] = ca
        lines = [f'{k} "{v}";' for k, v in settings.items() if v != ""]
        return "\n".join(lines + [f'APT::Architectures {{ "{ARCH}"; }};']) + "\n"

    def sources_line(self, url, suite, keyring, components="main"):
        """A one-line sources.list entry (etc/sources.list), replacing any source before."""
        self._clear_sources()
        with open(os.path.join(self.dir, "etc", "sources.list"), "w") as f:
            f.write(f"deb [signed-by={keyring}] {url} {suite} {components}\n")

    def sources_deb822(self, url, suite, keyring, components="main"):
        """A deb822 entry (etc/sources.list.d/arca.sources), replacing any source before."""
        self._clear_sources()
        with open(os.path.join(self.dir, "etc", "sources.list.d", "arca.sources"), "w") as f:
            f.write(f"Types: deb\nURIs: {url}\nSuites: {suite}\nComponents: {components}\n"
                    f"Signed-By: {keyring}\n")

    def _clear_sources(self):
        open(os.path.join(self.dir, "etc", "sources.list"), "w").close()
        parts = os.path.join(self.dir, "etc", "sources.list.d")
        for name in os.listdir(parts):
            os.unlink(os.path.join(parts, name))

    def run(self, *args, check=True, timeout=60):
        """apt-get ARGS in downloads/ (where `download` writes): the CompletedProcess, its
        output in .out (stdout and stderr); check: a non-zero exit or a warning fails."""
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(APT_CONFIG=self.config, LC_ALL="C", DEBIAN_FRONTEND="noninteractive")
        p = subprocess.run(["apt-get", "-q", *args], cwd=os.path.join(self.dir, "downloads"),
                           env=env, capture_output=True, text=True, timeout=timeout)
        p.out = p.stdout + p.stderr
        if check:
            assert p.returncode == 0 and not re.search(r"^(W|E|Err):", p.out, re.M), \
                f"apt-get {' '.join(args)} exited {p.returncode}:\n{p.out[-3000:]}"
        return p

    def update(self, check=True):
        return self.run("update", check=check)

    def inrelease(self):
        """The InRelease apt-get kept from its last update (its lists/ copy), None before."""
        lists = os.path.join(self.dir, "state", "lists")
        found = [n for n in os.listdir(lists) if n.endswith("_InRelease")]
        assert len(found) <= 1, found
        if not found:
            return None
        with open(os.path.join(lists, found[0]), "rb") as f:
            return f.read()

    def download(self, *names, check=True):
        """apt-get download NAMES: {name: sha256 of the .deb it wrote} (the files are removed,
        so that the next download fetches again); check=False and a failure: the
        CompletedProcess."""
        p = self.run("download", *names, check=check)
        if not check and p.returncode != 0:
            return p
        got = {}
        folder = os.path.join(self.dir, "downloads")
        for file in os.listdir(folder):
            with open(os.path.join(folder, file), "rb") as f:
                got[file.split("_")[0]] = sha256(f.read())
            os.unlink(os.path.join(folder, file))
        return got


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def apt_origin(tls_files):
    """apt_origin(by_hash=True, **AptRepo's keywords) -> (repo, nginx): a repository served
    over HTTPS by its own nginx; all stopped and removed at teardown."""
    undo = []  # what to undo at teardown, the last made first

    def make(**kw):
        root = tempfile.mkdtemp(prefix="arca-aptroot-")
        undo.append(lambda: shutil.rmtree(root, ignore_errors=True))
        repo = AptRepo(root, **kw)
        undo.append(repo.close)
        server = Nginx(root, tls_files)
        undo.append(server.stop)
        return repo, server

    yield make
    for step in reversed(undo):
        step()


@pytest.fixture
def apt_client(workdir, tls_files):
    """apt_client(name) -> an AptClient with its own state under workdir/apt-NAME, trusting
    the test CA for https:// sources."""
    def make(name="a"):
        return AptClient(os.path.join(workdir, f"apt-{name}"), ca=tls_files["ca"])
    return make


# --- arca with an apt remote -----------------------------------------------------------------


def write_remote_ini(path, name, url, kind="apt"):
    """An INI file with one `[remote NAME]` section (issue 69's config form)."""
    with open(path, "w") as f:
        f.write(f"[remote {name}]\nurl = {url}\nkind = {kind}\n")
    return path


def start_apt_remote(start_arca, workdir, ca, url, *more, name="debian", form="ini",
                     meta_ttl=None, **kw):
    """arca serving the repository at `url` as remote `name` of kind apt: from a `[remote
    NAME]` section of a --config file (form "ini") or from `--remote NAME:apt=URL` (form
    "option"), trusting `ca` for the HTTPS upstream, allowed loopback upstreams, with
    --remote-meta-ttl `meta_ttl` when given and an access log (.access_log). .remote: the base
    URL a client's sources.list names."""
    if form == "ini":
        conf = write_remote_ini(os.path.join(workdir, f"{name}-remote.ini"), name, url)
        remote = ("--config", conf)
    else:
        remote = ("--remote", f"{name}:apt={url}")
    access_log = os.path.join(workdir, f"access-{name}.log")
    ttl = ("--remote-meta-ttl", meta_ttl) if meta_ttl else ()
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--ca-file", ca, "--access-log",
                      access_log, *remote, *ttl, *more, **kw)
    arca.access_log = access_log
    arca.remote = f"{arca.base}/{name}"
    return arca


def remote_counters(arca, name="debian"):
    """The status JSON's counters of remote `name` (requests, hits, bytes, revalidated,
    stale)."""
    remotes = arca.status().get("remotes") or []
    entry = next((r for r in remotes if r.get("name") == name), None)
    assert entry, f"no remote {name!r} in arca's status: {remotes!r}"
    return entry
