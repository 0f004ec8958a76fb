"""What a scenario of Go modules through arca (issue 69, kind `go`) stands on: a static module
proxy tree written here (the GOPROXY protocol's files: `<module>/@v/list`, `@v/<version>.info`,
`.mod`, `.zip`, `<module>/@latest`, and a `sumdb/` path), served by nginx over HTTPS with the
scenarios' CA, with an access log of every request it answered; and the real `go` command in an
environment of its own (GOPATH, module and build caches, HOME in a temp dir, no network: only
the proxy it is given).

The module zips follow the module zip format (golang.org/x/mod/zip): every file under
`module@version/`, go.mod at the top, no vendor/ or nested modules; `zip_sum` and `mod_sum` are
the `h1:` hashes go computes of them (its go.sum lines), so a scenario can check that what go
extracted is what the origin made.

No network: nginx (nginx.py) listens on a free loopback port, started and stopped by its
scenario."""

import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import stat
import subprocess
import tempfile
import zipfile

import pytest

import nginx
from conftest import wait_for

GO = shutil.which("go") or "/usr/bin/go"
# a fixed module time: .info's Time, and the zips' entries' dates (reproducible bytes)
MODULE_TIME = "2024-01-02T03:04:05Z"
ZIP_DATE = (2024, 1, 2, 3, 4, 6)
# The proxy's variables that a caller's environment must not lend go (a real proxy, the user's
# settings, a network toolchain switch).
GO_ENV_DROPPED = ("GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GONOSUMCHECK", "GOSUMDB",
                  "GOFLAGS", "GOPATH", "GOMODCACHE", "GOCACHE", "GOENV", "GOTOOLCHAIN",
                  "GOINSECURE", "GOVCS", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                  "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
                  "SSL_CERT_FILE", "SSL_CERT_DIR")


# --- modules --------------------------------------------------------------------------------


def escape_path(path):
    """A module path or version as the proxy protocol spells it: each upper-case letter as `!`
    and its lower case (module.EscapePath)."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in path)


def go_mod(module, requires=()):
    """A go.mod: `requires` is (module, version) pairs."""
    text = f"module {module}\n\ngo 1.19\n"
    if requires:
        text += "\nrequire (\n" + "".join(f"\t{m} {v}\n" for m, v in requires) + ")\n"
    return text.encode()


def h1_hash(files):
    """go's `h1:` hash (dirhash.Hash1) of `files`, (name, bytes) pairs: a sha256 over the
    sorted lines `<sha256 hex>  <name>\\n`, in base64."""
    summary = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                      for name, data in sorted(files))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def zip_sum(zip_bytes):
    """The h1 hash go records for a module zip (go.sum's `module version h1:...` line): the
    zip's files by their names in the zip, prefix included."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as z:
        return h1_hash([(i.filename, z.read(i)) for i in z.infolist()])


def mod_sum(mod_bytes):
    """The h1 hash go records for a go.mod (go.sum's `module version/go.mod h1:...`)."""
    return h1_hash([("go.mod", mod_bytes)])


def module_zip(module, version, files):
    """A module zip: `files` ({path: bytes}, go.mod among them) each under `module@version/`
    (the module path as written, not escaped), stored in sorted order with a fixed date so the
    same module makes the same bytes."""
    assert "go.mod" in files, "a module zip holds its go.mod"
    for path in files:
        assert not path.startswith(("vendor/", "/")) and ".." not in path.split("/"), path
        assert path == "go.mod" or not path.endswith("/go.mod"), "no nested module: " + path
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{module}@{version}/{path}", ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[path])
    return out.getvalue()


def package_source(module, version, imports=()):
    """A Go file of package `name` (the module path's last element) with a Version constant and
    a Hello function; `imports` are module paths whose Hello it calls."""
    name = module.rsplit("/", 1)[-1]
    calls = "".join(f' + " " + {m.rsplit("/", 1)[-1]}.Hello()' for m in imports)
    head = "".join(f'import "{m}"\n' for m in imports)
    return (f"// Package {name} is a test module made by arca's scenarios.\npackage {name}\n\n"
            f"{head}\nconst Version = \"{version}\"\n\n"
            f"func Hello() string {{ return \"{name} \" + Version{calls} }}\n").encode()


class ModuleVersion:
    """One published version: its four files' bytes and where they are under the proxy."""

    def __init__(self, module, version, mod, zip_bytes, info):
        self.module, self.version = module, version
        self.mod, self.zip, self.info = mod, zip_bytes, info

    def path(self, ext):
        """Its `ext` file's path below the proxy's base: `<module>/@v/<version>.<ext>`."""
        return f"/{escape_path(self.module)}/@v/{escape_path(self.version)}.{ext}"

    @property
    def zip_sha256(self):
        return hashlib.sha256(self.zip).hexdigest()

    @property
    def zip_sum(self):
        return zip_sum(self.zip)

    @property
    def mod_sum(self):
        return mod_sum(self.mod)


class ProxyTree:
    """A static GOPROXY tree in `root`/`base` (what nginx serves under /`base`), beside a file
    outside it (`root`/outside.txt, at /outside.txt: what a path leaving the base would reach).
    publish() adds a version and rewrites the module's list and @latest, each by a rename, so
    a reader never sees half a file."""

    def __init__(self, root, base="mods"):
        self.root, self.base = root, base
        self.dir = os.path.join(root, base)
        self.versions = {}  # module -> [ModuleVersion] in publication order
        os.makedirs(self.dir, exist_ok=True)
        self._write(os.path.join(root, "outside.txt"), b"outside the proxy's base\n")

    @staticmethod
    def _write(path, data):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def file(self, path):
        """The file of `path`, a path below the base (as ModuleVersion.path gives)."""
        return os.path.join(self.dir, path.lstrip("/"))

    def publish(self, module, version, requires=(), files=None):
        """Publish `module` at `version` (requiring `requires`, (module, version) pairs; its
        source calls theirs): .info, .mod, .zip, then the list and @latest. `files` replaces the
        made source ({path: bytes}, go.mod added)."""
        mod = go_mod(module, requires)
        files = dict(files or {f"{module.rsplit('/', 1)[-1]}.go":
                               package_source(module, version, [m for m, _ in requires])})
        files["go.mod"] = mod
        info = json.dumps({"Version": version, "Time": MODULE_TIME}).encode()
        v = ModuleVersion(module, version, mod, module_zip(module, version, files), info)
        for ext, data in (("info", info), ("mod", mod), ("zip", v.zip)):
            self._write(self.file(v.path(ext)), data)
        self.versions.setdefault(module, []).append(v)
        self._write(self.file(self.list_path(module)),
                    "".join(f"{x.version}\n" for x in self.versions[module]).encode())
        self._write(self.file(self.latest_path(module)), info)
        return v

    @staticmethod
    def list_path(module):
        return f"/{escape_path(module)}/@v/list"

    @staticmethod
    def latest_path(module):
        return f"/{escape_path(module)}/@latest"

    def put(self, path, data):
        """Any file below the base (a sumdb answer), replaced by a rename."""
        self._write(self.file(path), data)


HELLO, DEP = "example.test/hello", "example.test/dep"
SUMDB_SUPPORTED = "/sumdb/sum.golang.org/supported"
SUMDB_LATEST = "/sumdb/sum.golang.org/latest"


def standard_tree(tree):
    """The scenarios' modules: example.test/dep v1.0.0, example.test/hello v1.0.0 and v1.1.0
    (v1.1.0 requires dep v1.0.0 and calls it), and the checksum database's `supported` (an
    empty 200, as proxy.golang.org answers) and `latest` (a tree note's stand-in). Returns
    {"dep": v, "hello1": v, "hello": v} (hello is v1.1.0)."""
    dep = tree.publish(DEP, "v1.0.0")
    hello1 = tree.publish(HELLO, "v1.0.0")
    hello = tree.publish(HELLO, "v1.1.0", requires=[(DEP, "v1.0.0")])
    tree.put(SUMDB_SUPPORTED, b"")
    tree.put(SUMDB_LATEST, b"go.sum database tree\n1\nstand-in root hash\n")
    return {"dep": dep, "hello1": hello1, "hello": hello}


# --- the origin: nginx ----------------------------------------------------------------------


class GoProxy:
    """nginx serving a ProxyTree over HTTPS (the test CA's server certificate for 127.0.0.1) on
    a free loopback port, logging `<status> <bytes sent> <request URI as sent>` per request:
    requests() reads it. url is the proxy's base (https://127.0.0.1:PORT/mods): what GOPROXY
    or a remote's url names."""

    def __init__(self, tls, tree=None):
        self.work = tempfile.mkdtemp(prefix="arca-goproxy-")
        self.server = None
        self.barriers = 0
        try:
            self.tree = tree or ProxyTree(os.path.join(self.work, "www"))
            self.server = nginx.Nginx(
                tls, root=self.tree.root, log_format="'$status $body_bytes_sent $request_uri'",
                http="types { application/json info; application/zip zip; text/plain mod; }")
            self.ctx = self.server.context()
        except BaseException:
            self.stop()
            raise

    @property
    def port(self):
        return self.server.port

    @property
    def url(self):
        return self.server.url(f"/{self.tree.base}")

    def full(self, path):
        """The request URI nginx logs for `path` below the base."""
        return f"/{self.tree.base}{path}"

    def _barrier(self):
        """Until nginx has logged every request it answered before now: nginx writes a line
        just after a response's last byte, so a client (arca) can have the body, and answer
        its own client, before the line is there. nginx.Nginx is one process serving requests
        in turn, so once a request of our own sent now is logged, those answered before it
        are too."""
        self.barriers += 1
        uri = f"/barrier-{self.barriers}"
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.ctx)
        try:
            conn.request("GET", uri)
            conn.getresponse().read()
        finally:
            conn.close()
        wait_for(lambda: any(line.endswith(f" {uri}") for line in self.server.lines()),
                 "nginx logging a request")

    def requests(self, path=None):
        """(status, bytes, uri) of every request answered so far, or of those for `path` below
        the base."""
        self._barrier()
        out = []
        for line in self.server.lines():
            status, sent, uri = line.split(" ", 2)
            if not uri.startswith("/barrier-") and (path is None or uri == self.full(path)):
                out.append((int(status), int(sent), uri))
        return out

    def count(self, path):
        """How many requests for `path` below the base it answered."""
        return len(self.requests(path))

    def stop(self):
        if self.server:
            self.server.stop()
        self.server = None
        shutil.rmtree(self.work, ignore_errors=True)


# --- the client: go -------------------------------------------------------------------------


def _rmtree_read_only(path):
    """Remove a tree that go made read-only (its extracted modules are 0444 in 0555 dirs)."""
    def unlock(func, p, _exc):
        os.chmod(os.path.dirname(p), stat.S_IRWXU)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, stat.S_IRWXU)
        func(p)
    if os.path.exists(path):
        shutil.rmtree(path, onerror=unlock)


class GoClient:
    """The go command with a home of its own: GOPATH, GOMODCACHE, GOCACHE and HOME in a temp
    dir, a module (`go mod init example.test/client`) to run in, GOPROXY=`proxy` and nothing
    else (no direct fallback, GOSUMDB=off, GOTOOLCHAIN=local, GOFLAGS=-mod=mod), and, for an
    HTTPS proxy, `ca` as the only trusted CA (SSL_CERT_FILE). Each GoClient is a clean module
    cache; close() (or the with block's end) removes it, read-only files and all."""

    def __init__(self, proxy, ca=None):
        self.dir = tempfile.mkdtemp(prefix="arca-go-")
        self.modcache = os.path.join(self.dir, "gopath", "pkg", "mod")
        self.module_dir = os.path.join(self.dir, "client")
        os.makedirs(self.module_dir)
        env = {k: v for k, v in os.environ.items() if k not in GO_ENV_DROPPED}
        env.update(GOPATH=os.path.join(self.dir, "gopath"), GOMODCACHE=self.modcache,
                   GOCACHE=os.path.join(self.dir, "gocache"), HOME=os.path.join(self.dir, "home"),
                   GOENV=os.path.join(self.dir, "goenv"), GOFLAGS="-mod=mod", GOPROXY=proxy,
                   GOSUMDB="off", GOTOOLCHAIN="local",
                   GO111MODULE="on", GOVCS="*:off", CGO_ENABLED="0")
        if ca:
            env["SSL_CERT_FILE"] = ca
        self.env = env
        try:
            self.go("mod", "init", "example.test/client")
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def go(self, *args, check=True, timeout=120):
        """go ARGS in the client module: the CompletedProcess (text); a failure raises with
        its stderr unless check=False."""
        p = subprocess.run([GO, *args], cwd=self.module_dir, env=self.env, text=True,
                           capture_output=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"go {' '.join(args)} exited {p.returncode}:\n{p.stderr}"
                                 f"{p.stdout}")
        return p

    def download(self, *targets):
        """`go mod download -json TARGETS`: one dict per module (Path, Version, Info, GoMod,
        Zip, Dir, Sum, GoModSum; Error on a failure, which raises)."""
        p = self.go("mod", "download", "-json", *targets, check=False)
        out = []
        dec, text = json.JSONDecoder(), p.stdout.strip()
        while text:
            obj, end = dec.raw_decode(text)
            out.append(obj)
            text = text[end:].lstrip()
        errors = [o["Error"] for o in out if o.get("Error")]
        if p.returncode != 0 or errors:
            raise AssertionError(f"go mod download {' '.join(targets)} exited {p.returncode}: "
                                 f"{errors}\n{p.stderr}")
        return out

    def versions(self, module):
        """`go list -m -versions MODULE`: the versions the proxy lists."""
        p = self.go("list", "-m", "-versions", module)
        return p.stdout.split()[1:]

    def run_main(self, body, requires):
        """`go run .` of a main package whose main() is `body` (fmt and the required modules'
        packages imported), the module requiring `requires` ((module, version) pairs): its
        output. go fetches what the build needs (and adds go.sum lines: -mod=mod)."""
        imports = "".join(f'\t"{m}"\n' for m in ["fmt"] + [m for m, _ in requires])
        with open(os.path.join(self.module_dir, "main.go"), "w") as f:
            f.write(f"package main\n\nimport (\n{imports})\n\nfunc main() {{\n\t{body}\n}}\n")
        self.go("mod", "edit", *[f"-require={m}@{v}" for m, v in requires])
        return self.go("run", ".").stdout

    def close(self):
        """`go clean -modcache`, then the whole temp dir (read-only files included)."""
        if os.path.isdir(self.modcache):
            self.go("clean", "-modcache", check=False)
        _rmtree_read_only(self.dir)


@pytest.fixture
def go_proxy(tls_files):
    """A GoProxy of standard_tree's modules (its versions in go_proxy.mods), stopped at
    teardown."""
    p = GoProxy(tls_files)
    try:
        p.mods = standard_tree(p.tree)
    except BaseException:
        p.stop()
        raise
    yield p
    p.stop()


@pytest.fixture
def go_client():
    """go_client(proxy, ca=None) -> a GoClient (a clean module cache each); all removed at
    teardown."""
    made = []

    def make(proxy, ca=None):
        c = GoClient(proxy, ca)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
