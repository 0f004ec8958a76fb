"""Attack on issue 67 (D): a DELETE of one URL now runs on an offload thread (http_purge_url ->
offload_start), sharing OFFLOAD_PER_CLIENT (8) and OFFLOAD_MAX (64) with CONNECT tunnels and
lookups. An admin's script purging a bad release's files in parallel (xargs -P 32 arca purge)
while a prefix purge of an old release runs gets 429 "too many tunnels and lookups under way
for your address" for about half of them (30 of 64 here; `arca purge` does not retry), where a
DELETE was answered on the worker before: a purge the admin trusts is refused, in words that
speak of tunnels. (Any 64 slow CONNECTs of other clients starve the admin's DELETE with 503 the
same way.)"""

import concurrent.futures
import threading

from test_admin import TOKEN, admin_arca

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_parallel_deletes_from_one_admin_are_all_answered(origin, start_arca, workdir):
    arca = admin_arca(start_arca, workdir)
    urls = [origin.add(f"/rel/{i}", data=b"r" * 20_000) for i in range(32)]
    bulk = [origin.add(f"/old/{i}", data=b"o" * 100) for i in range(300)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda u: arca.fetch(u)[0], urls + bulk)) == {200}
    statuses = {}

    def delete(url):
        statuses[url] = arca.get(f"/api/v1/resources/?url={url}", AUTH, "DELETE")[:3:2]

    threads = [threading.Thread(target=delete, args=(u,)) for u in urls]
    big = threading.Thread(target=lambda: arca.get(
        f"/api/v1/purge/?prefix={origin.url('/old/')}", AUTH, "POST"))
    big.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    big.join()
    refused = {u: s for u, s in statuses.items() if s[0] != 200}
    assert refused == {}, (len(refused), list(refused.values())[:3])
    assert arca.status()["resources_successes"] == 0
