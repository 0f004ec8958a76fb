""""Put this prefix in front of any URL": the encoded form (KissCache, LAVA's quote_plus) and the
unencoded one both reach the right upstream URL, one object per URL in its RFC 3986 normal form,
and clients that save files get a safe name."""

import os
import subprocess
import urllib.parse

import requests

from conftest import sha256


def raw_get(arca, query, filename=""):
    return arca.get(f"/api/v1/fetch/{filename}?{query}")


def test_unencoded_plus_reaches_the_origin_as_a_plus(origin, arca):
    data = os.urandom(3000)
    url = origin.add("/pool/linux_6.1.55-1+deb12u1_amd64.deb", data=data)
    status, _, body = raw_get(arca, "url=" + url)
    assert status == 200 and body == data
    assert origin.targets == ["/pool/linux_6.1.55-1+deb12u1_amd64.deb"]


def test_lava_quote_plus_form(origin, arca):
    # LAVA: http_url_format_string % quote_plus(url): a space is '+', a plus is %2B
    data = os.urandom(3000)
    origin.add("/my%20dir/a+b.img", data=data)
    target = origin.url("/my dir/a+b.img")
    status, _, body = raw_get(arca, "url=" + urllib.parse.quote_plus(target))
    assert status == 200 and body == data
    assert origin.targets == ["/my%20dir/a+b.img"]
    # and the same object when asked in the unencoded form
    assert raw_get(arca, "url=" + origin.url("/my%20dir/a+b.img"))[2] == data
    assert origin.counts["/my%20dir/a+b.img"] == 1


def test_unencoded_ampersand_stays_in_the_target(origin, arca):
    data = os.urandom(2000)
    url = origin.add("/signed", data=data)
    status, _, body = raw_get(arca, f"ttl=1d&url={url}?X-Amz-Credential=A%2FB&X-Amz-Date=1"
                                    "&sha256=" + sha256(data))
    assert status == 200 and body == data
    assert origin.targets == ["/signed?X-Amz-Credential=A%2FB&X-Amz-Date=1"]


def test_an_ampersand_after_an_encoded_url_is_refused_not_dropped(origin, arca):
    url = origin.add("/half", data=b"x")
    status, _, body = raw_get(arca, "url=" + urllib.parse.quote(url + "?a=1", safe="") + "&b=2")
    assert status == 400 and b"unknown parameter" in body
    assert origin.targets == [], "a different URL must never be fetched silently"


def test_nul_and_controls_are_refused(origin, arca):
    url = origin.add("/a", data=b"x")
    for query in ["url=" + url + "%00.jpg", "url=" + urllib.parse.quote(url + "\x00b", safe=""),
                  "url=" + url + "%0d%0aX-Injected:%201"]:
        status, _, body = raw_get(arca, query)
        assert status == 400 and b"control character" in body, query
    assert origin.targets == []


def test_equivalent_urls_are_one_object(origin, arca):
    data = os.urandom(4000)
    origin.add("/case/%7Eme", data=data)
    port = origin.port
    forms = [f"http://127.0.0.1:{port}/case/%7Eme", f"HTTP://127.0.0.1:{port}/case/%7eme",
             f"http://LOCALHOST:{port}/case/%7Eme#section"]
    # localhost is another host name than 127.0.0.1: two objects, each in one form
    for form in forms:
        assert arca.fetch(form)[2] == data, form
    assert origin.counts["/case/%7Eme"] == 2
    assert arca.status()["resources_successes"] == 2
    assert all("#" not in t for t in origin.targets), "the fragment is never sent"


def test_curl_remote_header_name_on_the_unnamed_route(origin, arca, workdir):
    data = os.urandom(5000)
    url = origin.add("/boards/Image", data=data)
    out = os.path.join(workdir, "curl-out")
    os.mkdir(out)
    subprocess.run(["curl", "-sSf", "-O", "-J",
                    f"http://{arca.host}:{arca.port}{arca.fetch_path(url)}"],
                   cwd=out, check=True, timeout=30)
    assert os.listdir(out) == ["Image"]
    with open(os.path.join(out, "Image"), "rb") as f:
        assert f.read() == data


def test_file_names_never_climb(origin, arca):
    url = origin.add("/x/..%2F..%2Fetc%2Fpasswd", data=b"y")
    _, headers, _ = arca.fetch(url)
    assert headers["content-disposition"] == "attachment; filename=etcpasswd"
    _, headers, _ = arca.get("/api/v1/fetch/..%5C..%5Cboot.img?url=" +
                             urllib.parse.quote(url, safe=""))
    assert headers["content-disposition"] == "attachment; filename=boot.img"
    # an encoded slash in arca's own path is refused outright (test_edges.py)
    status, _, body = arca.get("/api/v1/fetch/..%2F..%2Fboot.img?url=" +
                               urllib.parse.quote(url, safe=""))
    assert status == 400 and b"%2F" in body


def test_python_requests_params_form(origin, arca):
    data = os.urandom(1000)
    url = origin.add("/p", data=data)
    r = requests.get(f"http://{arca.host}:{arca.port}/api/v1/fetch",
                     params={"url": url + "?q=a b&c=d"}, timeout=30)
    assert r.status_code == 200 and r.content == data
    assert origin.targets == ["/p?q=a%20b&c=d"]


def test_a_host_that_is_no_host_name_is_the_clients_error(arca):
    # issue 23's review: it was a 502 "upstream failed after 1 attempt ...: URL using
    # bad/illegal format", as if upstream had failed
    for host in ("%3Cscript%3E.lab", "a*b.lab"):
        status, headers, body = arca.get("/api/v1/fetch/?url=http://" + host + "/x")
        assert status == 400, body
        assert body == (b"url has a host that is not a host name (letters, digits, '-', '.', "
                        b"'_', or an IP address in brackets)\n")
        assert "cache-status" not in headers


def test_a_port_out_of_range_or_a_bracketed_non_address_is_400(origin, arca):
    """Issue 23's second review: curl refused these after an attempt (502 `URL using
    bad/illegal format`); they are the client's error, said before upstream is asked."""
    for url, why in [("http://[::1]:99999/", b"url has a port out of range (1-65535)\n"),
                     ("http://127.0.0.1:0/", b"url has a port out of range (1-65535)\n"),
                     ("http://[1:2]/", b"url has a host in brackets that is not an IPv6 address\n")]:
        status, _, body = raw_get(arca, "url=" + urllib.parse.quote(url, safe=""))
        assert (status, body) == (400, why), url
