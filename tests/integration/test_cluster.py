"""Three arca nodes behind the real HAProxy with the configuration arca ships
(contrib/haproxy/haproxy.cfg): each URL is downloaded once for the whole cluster and lives on
one node; one object asked for through different signed URLs or ttl values lands on one node; a
node killed mid-download is noticed, its clients can retry, and only its share is fetched
again; a drained node finishes its downloads and gets no new ones; a node that comes back gets
its URLs back and serves them from its disk; behind the proxy, --allow-network and the access
log use the client's address, and a forged X-Forwarded-For changes nothing."""

import hashlib
import os
import random
import signal
import threading
import time
import urllib.parse

import pytest
import requests

from cluster import HAProxy, on_node

from conftest import sha256, wait_downloading

N_URLS = 300


@pytest.fixture
def cluster(start_arca, workdir):
    """start(extra args...) -> (haproxy, nodes): three nodes trusting HAProxy's address, each
    with its own shutdown file and access log."""
    made = []

    def start(*extra):
        nodes = []
        for i in range(3):
            node = start_arca("--upstream-allow", "127.0.0.0/8", "--trusted-proxy", "127.0.0.1/32",
                              "--shutdown-file", os.path.join(workdir, f"drain{i}"),
                              "--access-log", os.path.join(workdir, f"access{i}.log"), *extra)
            node.access_log = os.path.join(workdir, f"access{i}.log")
            node.drain_file = os.path.join(workdir, f"drain{i}")
            nodes.append(node)
        proxy = HAProxy(workdir, nodes)
        made.append(proxy)
        return proxy, nodes

    yield start
    for p in made:
        p.stop()


def fetch_path(url, **params):
    return "/api/v1/fetch/?" + urllib.parse.urlencode({"url": url, **params})


def body_gets(origin, path):
    """GETs of `path` that asked for the body (not a one-byte confirmation)."""
    return sum(1 for p, h in origin.requests if p == path and "Range" not in h)


def add_objects(origin, n, size=20000):
    objs = {}
    for i in range(n):  # with an ETag, as S3 gives one: a signed URL's hit is confirmed by it
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32)
        objs[origin.add(f"/a/{i}.img", data=data, etag=f'"{sha256(data)[:32]}"')] = data
    return objs


def run_clients(proxy, urls, objs, clients=3):
    """Each client asks for every URL once, in its own order; every body must be right."""
    errors = []

    def client(seed):
        order = list(urls)
        random.Random(seed).shuffle(order)
        for u in order:
            status, _, body = proxy.get(fetch_path(u))
            if status != 200 or sha256(body) != sha256(objs[u]):
                errors.append((u, status))

    threads = [threading.Thread(target=client, args=(s,)) for s in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def fetch_lines(node, at_least=0, field=None):
    """The fetch requests in a node's access log (health checks left out): their URLs, or the
    `field`th word of each line. A line is written once its response is over, which may be a
    moment after the client has the whole body: wait up to 3 s for `at_least` lines."""
    deadline = time.monotonic() + 3
    while True:
        with open(node.access_log) as f:
            lines = [line for line in f if "/api/v1/fetch/" in line]
        if len(lines) >= at_least or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if field is not None:
        return [line.split(" ")[field] for line in lines]
    return [urllib.parse.unquote(line.split("url=", 1)[1].split(" ", 1)[0]) for line in lines]


def logged_clients(nodes, at_least):
    """The client addresses of the fetch lines of all nodes, sorted, once there are enough."""
    deadline = time.monotonic() + 3
    while True:
        found = sorted(sum((fetch_lines(n, field=0) for n in nodes), []))
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def placement(nodes):
    return [on_node(n) for n in nodes]


def test_each_url_is_downloaded_once_and_lives_on_one_node(cluster, origin):
    proxy, nodes = cluster()
    objs = add_objects(origin, N_URLS)
    run_clients(proxy, list(objs), objs)
    assert all(c == 1 for c in origin.counts.values()), max(origin.counts.values())
    assert len(origin.counts) == N_URLS  # origin requests ÷ distinct URLs = 1.00
    held = placement(nodes)
    assert set().union(*held) == set(objs)
    assert sum(len(h) for h in held) == N_URLS  # no URL on two nodes
    assert all(len(h) > N_URLS // 10 for h in held), [len(h) for h in held]
    print("URLs per node:", [len(h) for h in held])


def test_one_object_through_signed_urls_and_ttls_lands_on_one_node(cluster, origin):
    proxy, nodes = cluster()
    objs = add_objects(origin, 30)
    now = time.gmtime()
    for u in objs:
        for job in range(4):  # presigned for each job: its own credential and signature
            signed = (f"{u}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK{job}%2F"
                      f"{time.strftime('%Y%m%d', now)}%2Fus-east-1%2Fs3%2Faws4_request"
                      f"&X-Amz-Date={time.strftime('%Y%m%dT%H%M%SZ', now)}"
                      f"&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={job:064x}")
            ttl = ["1h", "2d", "90m", "7d"][job]
            path = "/api/v1/fetch/?" + urllib.parse.urlencode({"ttl": ttl}) + "&url=" + signed
            status, _, body = proxy.get(path)
            assert status == 200 and body == objs[u]
            status, _, body = proxy.get(fetch_path(u, ttl=ttl, sha256=sha256(objs[u])))
            assert status == 200 and body == objs[u]
    for u in objs:
        assert body_gets(origin, urllib.parse.urlsplit(u).path) == 1
    held = placement(nodes)
    assert sum(len(h) for h in held) == len(set().union(*held))  # each object on one node


def downloading_on(nodes, url, timeout=5):
    """The node downloading `url`, once one is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, n in enumerate(nodes):
            if url in n.get("/api/v1/resources/?state=downloading")[2].decode():
                return i
        time.sleep(0.05)
    raise AssertionError(f"no node downloads {url}")


@pytest.mark.long_scenario
def test_a_killed_node_is_noticed_and_only_its_share_is_fetched_again(cluster, origin):
    proxy, nodes = cluster()
    objs = add_objects(origin, N_URLS)
    run_clients(proxy, list(objs), objs, clients=1)
    held = placement(nodes)
    # a slow download on the node that owns it, cut by kill -9
    big = os.urandom(3 << 20)
    slow = origin.add("/slow/rootfs.ext4", data=big, rate=600000)  # 5 s
    got = {}

    def first_client():
        got["first"] = proxy.get(fetch_path(slow))

    t = threading.Thread(target=first_client)
    t.start()
    victim = downloading_on(nodes, slow)
    wait_downloading(nodes[victim], "/slow/rootfs.ext4", len(big) // 5)  # a second of it
    nodes[victim].stop(signal.SIGKILL)
    noticed = proxy.wait_state(f"node{victim + 1}", "DOWN", timeout=10)
    t.join()
    assert len(got["first"][2]) < len(big)  # its stream was cut
    assert noticed <= 3.0, noticed
    origin.objects["/slow/rootfs.ext4"].rate = 0  # the retry need not trickle
    status, _, body = proxy.get(fetch_path(slow))  # the client retries
    assert status == 200 and body == big
    # every URL again: only the dead node's share is downloaded again
    before = dict(origin.counts)
    run_clients(proxy, list(objs), objs, clients=1)
    refetched = {u for u in objs if origin.counts[urllib.parse.urlsplit(u).path] >
                 before[urllib.parse.urlsplit(u).path]}
    assert refetched == held[victim]
    share = len(refetched) / N_URLS
    print(f"HAProxy noticed the kill in {noticed:.2f} s; refetched {share:.3f} of the URLs "
          f"(the node held {len(held[victim])})")
    assert 0.1 < share < 0.6


def test_a_drained_node_finishes_its_downloads_and_gets_no_new_ones(cluster, origin):
    proxy, nodes = cluster()
    objs = add_objects(origin, 60)
    big = os.urandom(3 << 20)
    slow = origin.add("/slow/Image", data=big, rate=1000000)  # 3 s
    got = {}
    t = threading.Thread(target=lambda: got.update(r=proxy.get(fetch_path(slow))))
    t.start()
    drained = downloading_on(nodes, slow)
    open(nodes[drained].drain_file, "w").close()
    proxy.wait_state(f"node{drained + 1}", "DOWN", timeout=5)
    run_clients(proxy, list(objs), objs, clients=1)
    t.join()
    assert got["r"][0] == 200 and got["r"][2] == big  # the download in flight finished
    assert fetch_lines(nodes[drained], at_least=1) == [slow]  # and nothing new came its way
    held = placement(nodes)
    assert held[drained] == {slow}


def test_a_node_that_comes_back_gets_its_urls_and_serves_them_from_disk(cluster, origin):
    proxy, nodes = cluster()
    objs = add_objects(origin, 90)
    run_clients(proxy, list(objs), objs, clients=1)
    held = placement(nodes)
    back = 1
    nodes[back].stop(signal.SIGKILL)
    proxy.wait_state(f"node{back + 1}", "DOWN")
    run_clients(proxy, list(objs), objs, clients=1)  # its URLs, fetched by the others meanwhile
    nodes[back].start(keep_port=True)
    proxy.wait_state(f"node{back + 1}", "UP")
    counts = dict(origin.counts)
    hits = nodes[back].metrics().get("arca_requests_total{result=\"hit\"}", 0)
    run_clients(proxy, list(held[back]), objs, clients=1)
    assert dict(origin.counts) == counts  # from its disk: no download
    assert nodes[back].metrics()["arca_requests_total{result=\"hit\"}"] - hits == len(held[back])


def test_client_addresses_behind_the_proxy(cluster, origin, workdir):
    proxy, nodes = cluster("--allow-network", "127.0.0.5/32")
    url = origin.add("/x.img", data=b"x" * 1000)
    assert proxy.get(fetch_path(url), source="127.0.0.5")[0] == 200
    status, _, body = proxy.get(fetch_path(url), source="127.0.0.6")
    assert status == 403 and b"not allowed" in body
    # straight to a node from an address it does not trust: X-Forwarded-For is ignored
    import http.client
    for n in nodes:
        conn = http.client.HTTPConnection("127.0.0.1", n.port, source_address=("127.0.0.6", 0))
        conn.request("GET", fetch_path(url), headers={"X-Forwarded-For": "127.0.0.5"})
        assert conn.getresponse().status == 403
        conn.close()
    # through the proxy, a client's own X-Forwarded-For is not believed either
    status, _, _ = proxy.get(fetch_path(url), source="127.0.0.6",
                             headers={"X-Forwarded-For": "127.0.0.5"})
    assert status == 403
    # the client's address, never the proxy's own (127.0.0.1)
    assert logged_clients(nodes, 6) == ["127.0.0.5"] + ["127.0.0.6"] * 5


def test_cluster_status_shows_every_node_and_the_totals(cluster, origin):
    import subprocess
    from conftest import ARCA_BIN
    proxy, nodes = cluster()
    objs = add_objects(origin, 30)
    run_clients(proxy, list(objs), objs, clients=1)
    open(nodes[1].drain_file, "w").close()
    dead_port = nodes[2].port
    nodes[2].stop(signal.SIGKILL)
    servers = [f"http://127.0.0.1:{n.port or dead_port}" for n in nodes]
    p = subprocess.run([ARCA_BIN, "cluster-status", *sum((["--server", s] for s in servers), [])],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr  # a node is down
    rows = {line.split()[0]: line.split() for line in p.stdout.splitlines()[1:]}
    assert rows[servers[0]][1] == "up" and rows[servers[1]][1] == "draining"
    assert rows[servers[2]][1] == "down" and "Couldn't connect" in p.stdout
    import re

    def objects_of(name):  # the column after the disk's percentage
        line = next(l for l in p.stdout.splitlines() if l.startswith(name + " "))
        return int(re.search(r"\d+ %\s+(\d+)\s+\d+", line).group(1))

    objects = [objects_of(s) for s in servers[:2]]
    assert rows["total"][1] == "2/3" and objects_of("total") == sum(objects)
    assert sum(objects) == len(on_node(nodes[0])) + len(on_node(nodes[1]))


def test_the_ui_and_the_per_address_limit_behind_the_proxy(cluster, origin):
    proxy, nodes = cluster("--max-connections-per-ip", "2")
    for path in ("/", "/help/", "/static/arca.css", "/browse/", "/statistics/"):
        assert proxy.get(path, source="127.0.0.5")[0] == 200, path
    assert b'<code id="ip">127.0.0.5</code>' in proxy.get("/help/", source="127.0.0.5")[2]
    # three requests at once from one client: the node serves two for it, and another client
    # is not counted with it although all come over HAProxy's connections
    url = origin.add("/slow.img", data=os.urandom(400000), rate=200000)  # 2 s
    results = []

    def client(source):
        results.append((source, proxy.get(fetch_path(url), source=source)[0]))

    threads = [threading.Thread(target=client, args=(s,))
               for s in ("127.0.0.5", "127.0.0.5", "127.0.0.5", "127.0.0.6")]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert sorted(r for s, r in results if s == "127.0.0.5") == [200, 200, 429]
    assert [r for s, r in results if s == "127.0.0.6"] == [200]


def test_a_url_through_the_proxy_and_the_prefix_is_one_object_on_one_node(cluster, origin):
    """arca as the lab's http_proxy, behind HAProxy: proxy form and prefix form of a URL go to
    one node; a prefix URL naming the balancer, asked through it as a proxy, is served."""
    proxy, nodes = cluster()
    objs = add_objects(origin, 40)
    balancer = f"http://127.0.0.1:{proxy.port}"
    for i, url in enumerate(objs):
        if i % 2:  # half of them through the proxy first, the other half through the prefix
            assert requests.get(url, proxies={"http": balancer}, timeout=30).status_code == 200
        status, _, body = proxy.get(fetch_path(url))
        assert status == 200 and sha256(body) == sha256(objs[url])
        r = requests.get(url, proxies={"http": balancer}, timeout=30)
        assert r.status_code == 200 and sha256(r.content) == sha256(objs[url])
        # a board whose http_proxy is the balancer, asking for a prefix URL
        r = requests.get(balancer + fetch_path(url), proxies={"http": balancer}, timeout=30)
        assert r.status_code == 200 and sha256(r.content) == sha256(objs[url]), r.text
    assert all(c == 1 for c in origin.counts.values()), origin.counts
    held = placement(nodes)
    assert sum(len(h) for h in held) == len(objs)  # no URL on two nodes
