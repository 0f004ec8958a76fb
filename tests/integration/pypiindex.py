"""A package index for the pip scenarios (issue 69), as pypi.org is one: pages on one host,
files on another. The distributions are made here (wheels with zipfile, an sdist with tarfile:
no network, no build backend), the pages written for them in both forms a client may ask for,
PEP 503's HTML and PEP 691's JSON, at the same URL (nginx picks by the request's Accept and says
`Vary: Accept`). Three HTTPS servers with a certificate of the scenarios' test CA:

    index   https://127.0.0.1:PORT   /simple/ and /simple/PROJECT/ pages, and files of its own
                                     under /packages/ (a link under the remote's URL)
    files   https://127.0.0.2:PORT   the files the pages link to on a second host (what
                                     files.pythonhosted.org is to pypi.org): named in file-hosts
    stray   https://127.0.0.3:PORT   a host arca is not told of: its links are left pointing there

The index is one nginx, the files and stray hosts a second (stop one, the other stays up). Each
host keeps its access log: count() says how often a path was asked, and with which Accept.

Projects (PROJECTS): tinyproj 1.0 (wheel and sdist, requires-python >=3.7) and 2.0 (a wheel for
Python <3 only: an unpinned `pip download tinyproj` must read data-requires-python to get 1.0),
other-proj 0.1 (an HTML page only, its wheel on the index host behind a relative link), badproj
1.0 (tamper() changes its bytes on the files host after the page gave their sha256) and
strayproj 1.0 (its wheel on the stray host).

The fixture: pypi_index -> a running PypiIndex in the scenario's workdir, stopped at teardown.
Clients: pip_download() runs Debian's pip with nothing of the machine's configuration;
page_links() and json_files() read a page as pip does; remote_ini() writes arca's [remote]
section for the index."""

import base64
import dataclasses
import gzip
import hashlib
import html
import html.parser
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.parse
import zipfile

import pytest

import nginx
from conftest import sha256, wait_for

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# pip 23's Accept for a page: JSON first, HTML after (what pip_download sends through arca)
PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; "
              "q=0.1, text/html; q=0.01")
HOSTS = {"index": "127.0.0.1", "files": "127.0.0.2", "stray": "127.0.0.3"}
# a fixed time for every member of an archive: the same bytes on every run
EPOCH = (2024, 1, 2, 3, 4, 5)


@dataclasses.dataclass(frozen=True)
class Spec:
    """One distribution file of a project: its version, its kind (wheel or sdist), its
    requires-python and the host that serves it."""

    project: str
    version: str
    kind: str = "wheel"
    requires_python: str = ">=3.7"
    host: str = "files"


# project -> (its files, whether it has a JSON page too)
PROJECTS = {
    "tinyproj": ([Spec("tinyproj", "1.0"), Spec("tinyproj", "1.0", "sdist"),
                  Spec("tinyproj", "2.0", requires_python="<3")], True),
    "other-proj": ([Spec("other-proj", "0.1", host="index")], False),
    "badproj": ([Spec("badproj", "1.0")], True),
    "strayproj": ([Spec("strayproj", "1.0", host="stray")], True),
}


@dataclasses.dataclass
class Dist:
    """A file the index lists: `data` are the bytes its page's sha256 names, `url` where the
    page links it (absolute), `href` the link as written (relative on the index host), `disk`
    the file its host serves."""

    spec: Spec
    filename: str
    data: bytes
    url: str
    href: str
    disk: str

    @property
    def sha256(self):
        return sha256(self.data)

    @property
    def path(self):
        """The URL's path on its host (what that host's access log shows)."""
        return urllib.parse.urlsplit(self.url).path


# --- the distributions ----------------------------------------------------------------------


def dist_name(project):
    """The name in a file's name (PEP 427 and the sdist's): `-` made `_`."""
    return project.replace("-", "_")


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _metadata(spec):
    return (f"Metadata-Version: 2.1\nName: {spec.project}\nVersion: {spec.version}\n"
            f"Summary: a test distribution of arca's scenarios\n"
            f"Requires-Python: {spec.requires_python}\n").encode()


def wheel_bytes(spec):
    """A pure-Python wheel: the package's __init__.py, METADATA, WHEEL and RECORD (each member
    with its sha256 and size, RECORD's own line without)."""
    name = dist_name(spec.project)
    info = f"{name}-{spec.version}.dist-info"
    members = {
        f"{name}/__init__.py": f'__version__ = "{spec.version}"\n'.encode(),
        f"{info}/METADATA": _metadata(spec),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: arca-tests\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
    }
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in members.items())
    members[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for path, data in members.items():
            z.writestr(zipfile.ZipInfo(path, EPOCH), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def sdist_bytes(spec):
    """A source distribution: PKG-INFO, pyproject.toml and the package, in NAME-VER/."""
    top = f"{dist_name(spec.project)}-{spec.version}"
    members = {
        "PKG-INFO": _metadata(spec),
        "pyproject.toml": b'[build-system]\nrequires = ["setuptools"]\n'
                          b'build-backend = "setuptools.build_meta"\n',
        f"{dist_name(spec.project)}/__init__.py": f'__version__ = "{spec.version}"\n'.encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for path, data in members.items():
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime = len(data), time.mktime(EPOCH + (0, 0, -1))
            t.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), mtime=0)


def filename_of(spec):
    base = f"{dist_name(spec.project)}-{spec.version}"
    return f"{base}-py3-none-any.whl" if spec.kind == "wheel" else f"{base}.tar.gz"


# --- the pages ------------------------------------------------------------------------------


def html_page(project, dists):
    """PEP 503's project page: one anchor per file, its sha256 in the fragment and its
    requires-python in data-requires-python, both HTML-escaped."""
    links = "".join(
        f'    <a href="{html.escape(d.href + "#sha256=" + d.sha256)}" data-requires-python='
        f'"{html.escape(d.spec.requires_python)}">{html.escape(d.filename)}</a><br/>\n'
        for d in dists)
    return (f"<!DOCTYPE html>\n<html>\n  <head>\n"
            f'    <meta name="pypi:repository-version" content="1.0">\n'
            f"    <title>Links for {html.escape(project)}</title>\n  </head>\n  <body>\n"
            f"    <h1>Links for {html.escape(project)}</h1>\n{links}  </body>\n</html>\n")


def json_page(project, dists):
    """PEP 691's project page: each file's url (as the HTML links it), hashes and
    requires-python."""
    return json.dumps({
        "meta": {"api-version": "1.0"}, "name": project,
        "files": [{"filename": d.filename, "url": d.href, "hashes": {"sha256": d.sha256},
                   "requires-python": d.spec.requires_python} for d in dists],
    }, indent=1)


def root_pages(projects):
    """/simple/ in both forms: every project."""
    links = "".join(f'    <a href="/simple/{p}/">{p}</a>\n' for p in projects)
    page = f"<!DOCTYPE html>\n<html>\n  <body>\n{links}  </body>\n</html>\n"
    return page, json.dumps({"meta": {"api-version": "1.0"},
                             "projects": [{"name": p} for p in projects]})


# --- the servers ----------------------------------------------------------------------------


def make_certificate(tls_files, where):
    """(certificate, key) for 127.0.0.1, .2 and .3, signed by the scenarios' test CA (its key
    beside ca.pem)."""
    ca_dir = os.path.dirname(tls_files["ca"])
    cert, key = os.path.join(where, "hosts.pem"), os.path.join(where, "hosts.key")
    ext = os.path.join(where, "hosts.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,DNS:localhost\n")
    csr = os.path.join(where, "hosts.csr")
    for args in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", "/CN=arca test package index"],
                 ["x509", "-req", "-in", csr, "-CA", tls_files["ca"], "-CAkey",
                  os.path.join(ca_dir, "ca.key"), "-set_serial", str(int(time.time() * 1e6)),
                  "-out", cert, "-days", "2", "-extfile", ext]):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    return cert, key


class Nginx(nginx.Nginx):
    """One nginx (nginx.py's) with a server block per host name given, each on a free port of
    its address with its own access log (DIR/NAME.log: method, path, status, body bytes and
    Accept per request), in `where`/`name`; `$simple_form` is the page form (html, json) the
    request's Accept asks for."""

    def __init__(self, where, name, hosts, block, tls):
        """hosts: the names (of HOSTS) it serves; block(name, port) -> that server's
        directives beside listen, ssl and the log; tls: (certificate, key)."""
        servers = {h: (HOSTS[h], lambda port, h=h: block(h, port)) for h in hosts}
        super().__init__(tls, servers=servers, where=os.path.join(where, name),
                         log_format="'$request_method $request_uri $status $body_bytes_sent "
                                    "$http_accept'",
                         http="""map $http_accept $simple_form {
    default html;
    "~application/vnd\\.pypi\\.simple\\.v1\\+json" json;
  }""")


class PypiIndex:
    """The index, the files host and the stray host, built in `where` and served (see the
    module's comment). dists: every Dist by file name; projects: project -> its Dists."""

    def __init__(self, where, tls_files):
        self.where = where
        self.ca = tls_files["ca"]
        self.www = {h: os.path.join(where, "www", h) for h in HOSTS}
        for d in self.www.values():
            os.makedirs(d)
        self.tls = make_certificate(tls_files, where)
        self.index = self.files = None
        try:
            self.files = Nginx(where, "files-nginx", ("files", "stray"), self._file_block,
                               self.tls)
            self.index = Nginx(where, "index-nginx", ("index",), self._index_block, self.tls)
            self._build()
        except BaseException:
            self.stop()
            raise

    # the servers' directives
    def _file_block(self, host, port):
        return f"root {self.www[host]};"

    def _index_block(self, host, port):
        return f"""root {self.www[host]};
    location /simple/ {{
      types {{ text/html html; {JSON_TYPE} json; }}
      index index.$simple_form index.html;
      add_header Vary Accept always;
    }}"""

    def base(self, host):
        """https://ADDRESS:PORT of `host` (index, files, stray)."""
        server = self.index if host == "index" else self.files
        return f"https://{HOSTS[host]}:{server.ports[host]}"

    def authority(self, host):
        """ADDRESS:PORT of `host`, as file-hosts names it."""
        return self.base(host).split("://", 1)[1]

    @property
    def url(self):
        """The index's URL: the remote's url = (its pages are under /simple/)."""
        return self.base("index")

    def _place(self, spec):
        """Where `spec`'s file lives: (absolute URL, the link the page writes, path on disk).
        The files and stray hosts as PyPI's, under /packages/XX/ of the sha256; the index
        host's own under /packages/, linked relatively from its page."""
        data = wheel_bytes(spec) if spec.kind == "wheel" else sdist_bytes(spec)
        name = filename_of(spec)
        path = (f"/packages/{name}" if spec.host == "index"
                else f"/packages/{sha256(data)[:2]}/{sha256(data)[2:4]}/{name}")
        url = self.base(spec.host) + path
        href = f"../..{path}" if spec.host == "index" else url
        disk = os.path.join(self.www[spec.host], path.lstrip("/"))
        os.makedirs(os.path.dirname(disk), exist_ok=True)
        with open(disk, "wb") as f:
            f.write(data)
        return Dist(spec, name, data, url, href, disk)

    def _build(self):
        self.projects, self.dists = {}, {}
        simple = os.path.join(self.www["index"], "simple")
        for project, (specs, with_json) in PROJECTS.items():
            dists = [self._place(s) for s in specs]
            self.projects[project] = dists
            self.dists.update((d.filename, d) for d in dists)
            os.makedirs(os.path.join(simple, project))
            _write(os.path.join(simple, project, "index.html"), html_page(project, dists))
            if with_json:
                _write(os.path.join(simple, project, "index.json"), json_page(project, dists))
        page, listing = root_pages(PROJECTS)
        _write(os.path.join(simple, "index.html"), page)
        _write(os.path.join(simple, "index.json"), listing)

    def page_path(self, project):
        return f"/simple/{project}/"

    def tamper(self, filename):
        """The files host serves other bytes of the same length for `filename` from now on
        (its page still names the sha256 of Dist.data): the bytes it serves."""
        d = self.dists[filename]
        data = d.data[::-1]
        assert data != d.data
        with open(d.disk, "wb") as f:
            f.write(data)
        return data

    def log(self, host):
        """(method, path, status, Accept) of every request `host` has answered so far."""
        server = self.index if host == "index" else self.files
        out = []
        for line in server.lines(host):
            method, path, status, _, accept = line.split(" ", 4)
            out.append((method, path, int(status), accept))
        return out

    def count(self, host, path=None, accept=None):
        """How many requests `host` answered (for `path`; with an Accept that contains
        `accept`)."""
        return sum(1 for _, p, _, a in self.log(host)
                   if (path is None or p == path) and (accept is None or accept in a))

    def wait_count(self, host, at_least, path=None, accept=None, timeout=10):
        """count() once it reaches `at_least` (nginx logs a request after its last byte went
        out, which its client may have read first)."""
        return wait_for(lambda: (n := self.count(host, path, accept)) >= at_least and n,
                        f"{at_least} requests of {host} for {path}", timeout)

    def stop(self):
        for server in (self.index, self.files):
            if server:
                server.stop()


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def pypi_index(workdir, tls_files):
    """A running PypiIndex in the scenario's workdir, stopped at teardown."""
    index = PypiIndex(os.path.join(workdir, "pypi"), tls_files)
    yield index
    index.stop()


# --- clients --------------------------------------------------------------------------------


def remote_ini(workdir, index, name="pypi", file_hosts=None, more=()):
    """arca's config file with a [remote NAME] section of kind pypi for `index` (file-hosts:
    the files host unless told), and `more` lines in it."""
    hosts = [index.authority("files")] if file_hosts is None else file_hosts
    path = os.path.join(workdir, f"remote-{name}.ini")
    with open(path, "w") as f:
        f.write(f"[remote {name}]\nurl = {index.url}\nkind = pypi\n" +
                (f"file-hosts = {', '.join(hosts)}\n" if hosts else "") +
                "".join(line + "\n" for line in more))
    return path


def pip_env(home, config=None):
    """An environment for pip with nothing of the machine's: no PIP_* variable, no proxy, no
    CA bundle of requests' (REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE win over --cert), HOME its
    own, and the config file `config` (none unless told: /dev/null)."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("PIP_") and not k.lower().endswith("_proxy")
           and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env.update(HOME=home, PIP_CONFIG_FILE=config or os.devnull, NO_PROXY="*")
    return env


def pip_download(dest, *requirements, index_url=None, cert=None, config=None, timeout=120):
    """`python3 -m pip download --no-deps` of `requirements` into `dest` (made here), wheels
    only (an sdist would need a build backend from the network): from `index_url` with
    --isolated, or (config, index_url None) from what the pip.conf `config` says. cert: a CA
    bundle for HTTPS. The CompletedProcess."""
    os.makedirs(dest, exist_ok=True)
    args = ["/usr/bin/python3", "-m", "pip", "download", "--no-deps", "--no-cache-dir",
            "--disable-pip-version-check", "--no-input", "--retries", "0", "--timeout", "20",
            "--only-binary", ":all:", "--progress-bar", "off", "-d", dest]
    if index_url:  # a plain-HTTP index is a trusted host to pip (it warns else)
        url = urllib.parse.urlsplit(index_url)
        args += ["--isolated", "--index-url", index_url]
        args += ["--trusted-host", url.hostname] if url.scheme == "http" else []
    if cert:
        args += ["--cert", cert]
    home = os.path.join(dest, ".home")
    os.makedirs(home, exist_ok=True)
    p = subprocess.run(args + list(requirements), capture_output=True, text=True,
                       timeout=timeout, env=pip_env(home, config))
    shutil.rmtree(home, ignore_errors=True)
    return p


def write_pip_conf(path, index_url, cert=None):
    """A pip.conf as a lab writes it for arca: [global] index-url and trusted-host."""
    host = urllib.parse.urlsplit(index_url).hostname
    with open(path, "w") as f:
        f.write(f"[global]\nindex-url = {index_url}\n" +
                (f"trusted-host = {host}\n" if index_url.startswith("http:") else "") +
                (f"cert = {cert}\n" if cert else ""))
    return path


def downloaded(dest):
    """{file name: sha256} of what pip left in `dest`."""
    out = {}
    for name in os.listdir(dest):
        path = os.path.join(dest, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = sha256(f.read())
    return out


class _Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.anchors = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.anchors.append(dict(attrs))


def page_links(page_url, text):
    """{file name (the anchor's href's last segment): (absolute URL with its fragment, the
    anchor's attributes unescaped)} of an HTML page, read as pip reads it."""
    parser = _Anchors()
    parser.feed(text)
    out = {}
    for attrs in parser.anchors:
        url = urllib.parse.urljoin(page_url, attrs.get("href", ""))
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        out[name] = (url, attrs)
    return out


def json_files(page_url, text):
    """{filename: (absolute URL, the file's entry)} of a PEP 691 page."""
    page = json.loads(text)
    return {f["filename"]: (urllib.parse.urljoin(page_url, f["url"]), f) for f in page["files"]}
