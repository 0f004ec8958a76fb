"""apt-get through an apt remote (issue 69), with the client settings docs/REMOTES.md gives: a
one-line sources.list and a deb822 .sources, each with signed-by, against a repository made
with apt-ftparchive, signed with a throwaway key and served by nginx over HTTPS with the test
CA (arca given --ca-file). Each apt-get has state directories of its own (APT_CONFIG), so two
"boards" are two configurations.

What a lab replacing apt-cacher-ng expects: a package two boards install is downloaded once; a
warm `apt-get update` costs the repository conditional requests only; an update right after
the repository was republished sees the new packages, never "Hash Sum mismatch", without
by-hash and with it (SHA256 by-hash: apt asks by the strongest hash the Release lists)."""

import hashlib
import os
import time
import subprocess

import pytest

from conftest import sha256, wait_clock
from pypiindex import Nginx, make_certificate

NAME = "debian"
SUITE = "stable"


def run(*args, env=None, cwd=None):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60, env=env, cwd=cwd)
    assert p.returncode == 0, f"{args[0]}: {p.returncode}\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}"
    return p.stdout + p.stderr


class AptRepo:
    """A signed apt repository (dists/stable/main, architectures amd64 and all) served over
    HTTPS by one nginx (pypiindex.Nginx's host "index", its access log counting each request).
    publish() (re)writes it: a .deb per package, the indexes, Release, InRelease."""

    def __init__(self, where, tls_files):
        self.where = where
        self.root = os.path.join(where, "repo")
        self.gnupg = os.path.join(where, "gnupg")
        os.makedirs(self.root)
        os.makedirs(self.gnupg, mode=0o700)
        self.env = dict(os.environ, GNUPGHOME=self.gnupg)
        run("gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "",
            "--quick-gen-key", "arca test repository <repo@example.invalid>", "rsa2048", "sign",
            "1d", env=self.env)
        self.key = os.path.join(where, "repo-key.gpg")
        with open(self.key, "wb") as f:
            f.write(subprocess.run(["gpg", "--export"], env=self.env, capture_output=True,
                                   check=True).stdout)
        self.debs = {}
        self.server = Nginx(where, "nginx", ["index"], lambda h, p: f"root {self.root};",
                            make_certificate(tls_files, where))

    @property
    def in_release(self):
        return os.path.join(self.root, "dists", SUITE, "InRelease")

    @property
    def url(self):
        return f"https://127.0.0.1:{self.server.ports['index']}"

    def _deb(self, package):
        tree = os.path.join(self.where, "build", package)
        os.makedirs(os.path.join(tree, "DEBIAN"))
        os.makedirs(os.path.join(tree, "usr", "share", package))
        with open(os.path.join(tree, "usr", "share", package, "data"), "wb") as f:
            f.write(hashlib.sha512(package.encode()).digest() * 2000)  # 128 KiB
        with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
            f.write(f"Package: {package}\nVersion: 1.0\nArchitecture: all\n"
                    f"Maintainer: arca tests <tests@example.invalid>\nDescription: {package}\n")
        path = f"pool/main/{package[0]}/{package}/{package}_1.0_all.deb"
        os.makedirs(os.path.dirname(os.path.join(self.root, path)), exist_ok=True)
        run("dpkg-deb", "-b", "-Zgzip", tree, os.path.join(self.root, path))
        with open(os.path.join(self.root, path), "rb") as f:
            self.debs[package] = (path, sha256(f.read()))

    def publish(self, *packages, by_hash=False):
        """Add `packages`, then write the indexes and sign the Release again (SHA512 left out
        of it, so that apt's by-hash is SHA256, the one arca checks)."""
        for p in packages:
            self._deb(p)
        dist = os.path.join(self.root, "dists", SUITE)
        no512 = ["-o", "APT::FTPArchive::SHA512=false"]
        for arch in ("amd64", "all"):
            folder = os.path.join(dist, "main", f"binary-{arch}")
            os.makedirs(folder, exist_ok=True)
            index = run("apt-ftparchive", *no512, "packages", "pool/main", cwd=self.root)
            index = "".join(line + "\n" for line in index.splitlines()
                            if not line.startswith("W:"))
            with open(os.path.join(folder, "Packages"), "w") as f:
                f.write(index)
            for tool in ("gzip", "xz"):
                run(tool, "-kf", os.path.join(folder, "Packages"))
            if by_hash:
                self._by_hash(folder)
        opts = [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in
                (("Suite", SUITE), ("Codename", SUITE), ("Architectures", "amd64 all"),
                 ("Components", "main"), ("Acquire-By-Hash", "yes" if by_hash else "no"))]
        release = run("apt-ftparchive", *no512, *opts, "release", dist)
        release = "".join(line + "\n" for line in release.splitlines()
                          if "by-hash" not in line and " Release" not in line)
        with open(os.path.join(dist, "Release"), "w") as f:
            f.write(release)
        run("gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "",
            "--clearsign", "-o", os.path.join(dist, "InRelease"), os.path.join(dist, "Release"),
            env=self.env)

    @staticmethod
    def _by_hash(folder):
        target = os.path.join(folder, "by-hash", "SHA256")
        os.makedirs(target, exist_ok=True)
        for name in ("Packages", "Packages.gz", "Packages.xz"):
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            with open(os.path.join(target, sha256(data)), "wb") as f:
                f.write(data)

    def requests(self, path, status=None):
        """How many requests of `path` the repository answered (with `status`)."""
        try:
            with open(self.server.log_path("index")) as f:
                lines = [line.split(" ") for line in f.read().splitlines()]
        except FileNotFoundError:
            return 0
        return sum(1 for w in lines if w[1] == path and (status is None or int(w[2]) == status))

    def stop(self):
        self.server.stop()
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, capture_output=True)


@pytest.fixture
def apt_repo(workdir, tls_files):
    if os.geteuid() != 0:
        pytest.skip("apt-get's own state directories need root here (APT::Sandbox::User)")
    repo = AptRepo(os.path.join(workdir, "apt"), tls_files)
    try:
        repo.publish("hello", "world")
        yield repo
    finally:
        repo.stop()


class AptClient:
    """apt-get with its own state, cache and sources under `root`; `sources` is what the
    sources file holds (SOURCES_LIST: sources.list, else sources.list.d/arca.sources)."""

    def __init__(self, root, sources, deb822):
        self.root = root
        for d in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
                  "etc/apt.conf.d", "etc/preferences.d", "log", "out"):
            os.makedirs(os.path.join(root, d))
        open(os.path.join(root, "state", "status"), "w").close()
        list_file = os.path.join(root, "etc", "sources.list")
        with open(list_file, "w") as f:
            f.write("" if deb822 else sources)
        if deb822:
            with open(os.path.join(root, "etc", "sources.list.d", "arca.sources"), "w") as f:
                f.write(sources)
        self.config = os.path.join(root, "apt.conf")
        with open(self.config, "w") as f:
            f.write(f'Dir::State "{root}/state";\nDir::State::status "{root}/state/status";\n'
                    f'Dir::Cache "{root}/cache";\nDir::Etc "{root}/etc";\n'
                    f'Dir::Etc::sourcelist "{list_file}";\n'
                    f'Dir::Etc::sourceparts "{root}/etc/sources.list.d";\n'
                    f'Dir::Log "{root}/log";\nAPT::Architecture "amd64";\n'
                    'APT::Sandbox::User "root";\nDebug::NoLocking "true";\n'
                    'Acquire::Languages "none";\n')

    def apt_get(self, *args):
        return run("apt-get", *args, env=dict(os.environ, APT_CONFIG=self.config),
                   cwd=os.path.join(self.root, "out"))

    def update(self):
        out = self.apt_get("update")
        assert "Hash Sum mismatch" not in out and "\nW:" not in out and "\nE:" not in out, out
        return out

    def download(self, package):
        self.apt_get("download", package)
        with open(os.path.join(self.root, "out", f"{package}_1.0_all.deb"), "rb") as f:
            return sha256(f.read())


def sources_of(arca, key, deb822):
    url = f"{arca.base}/{NAME}"
    if deb822:
        return (f"Types: deb\nURIs: {url}\nSuites: {SUITE}\nComponents: main\n"
                f"Signed-By: {key}\n")
    return f"deb [signed-by={key}] {url} {SUITE} main\n"


@pytest.fixture
def arca_for(start_arca, tls_files):
    """arca_for(repo) -> arca with the repository as its apt remote NAME, trusting the test
    CA."""
    def start(repo, *more):
        return start_arca("--remote", f"{NAME}:apt={repo.url}", "--ca-file", tls_files["ca"],
                          "--upstream-allow", "127.0.0.0/8", *more)
    return start


@pytest.mark.parametrize("deb822", [False, True], ids=["sources.list", "deb822"])
def test_two_boards_install_through_an_https_apt_remote(apt_repo, arca_for, workdir, deb822):
    """Two apt roots update and download the same package through arca: the bytes are the
    repository's, the .deb and the indexes were downloaded from it once, and InRelease was
    asked whole once (the second update's a conditional request, answered 304)."""
    arca = arca_for(apt_repo)
    boards = [AptClient(os.path.join(workdir, f"board{i}"),
                        sources_of(arca, apt_repo.key, deb822), deb822) for i in range(2)]
    path, digest = apt_repo.debs["hello"]
    for board in boards:
        board.update()
        assert board.download("hello") == digest
    assert apt_repo.requests(f"/{path}") == 1
    assert apt_repo.requests(f"/dists/{SUITE}/InRelease", 200) == 1
    assert apt_repo.requests(f"/dists/{SUITE}/main/binary-amd64/Packages.xz", 200) == 1
    row = [r for r in arca.status()["remotes"] if r["name"] == NAME]
    assert row and row[0]["kind"] == "apt" and row[0]["hits"] >= 1, row


@pytest.mark.parametrize("by_hash", [False, True], ids=["indexes", "by-hash"])
def test_an_update_right_after_a_republish_sees_the_new_packages(apt_repo, arca_for, workdir,
                                                                  by_hash):
    """The repository republished (a package added, the indexes and InRelease written again)
    right after an update: the next update once --remote-meta-ttl has passed gets the new
    indexes, with no Hash Sum mismatch, and the new package downloads."""
    arca = arca_for(apt_repo, "--remote-meta-ttl", "1s")
    apt_repo.publish(by_hash=by_hash)
    board = AptClient(os.path.join(workdir, "board"), sources_of(arca, apt_repo.key, False),
                      False)
    board.update()
    # nginx's validators (ETag: mtime and size; Last-Modified) see whole seconds: a Release
    # rewritten within the same second at the same size would be "not modified" to anyone
    wait_clock(int(os.stat(apt_repo.in_release).st_mtime) + 1)
    apt_repo.publish("newpkg", by_hash=by_hash)
    wait_clock(time.time() + 1.1)  # the InRelease kept past --remote-meta-ttl
    board.update()
    assert board.download("newpkg") == apt_repo.debs["newpkg"][1]
    if by_hash:
        assert apt_repo.requests(f"/dists/{SUITE}/main/binary-amd64/Packages.xz") == 0
