"""A lab's twenty runners start the same job at once and pull the same image, which arca has
never seen (issue 60, docs/REGISTRY.md, "Once for the lab"): the upstream is asked for each
layer once and for the tag once, every runner gets every layer whole, its sha256 right."""

import os
import threading

from registry import Puller, build_image, scripted, start_mirror  # noqa: F401

NAME = "registry.lab"
CLIENTS = 20


def test_twenty_clients_one_cold_image_each_layer_once(start_arca, scripted, workdir):
    up = scripted()
    # layers served at 4 MiB/s: the first runner's download is still going when the others ask
    up.rate = 4 << 20
    image = up.add("library/demo", build_image(os.path.join(workdir, "i"),
                                               [2_000_000, 1_000_000, 65536], "v1"))
    arca = start_mirror(start_arca, {NAME: up.url})
    start = threading.Barrier(CLIENTS)
    results, errors = [None] * CLIENTS, []

    def runner(i):
        try:
            start.wait(30)
            got, top = Puller(arca.base, prefix=NAME).pull("library/demo", "v1")
            results[i] = (top.headers.get("docker-content-digest"),
                          {d: len(b) for d, b in got.items()})
        except Exception as e:  # noqa: BLE001 - reported below, with the runner's number
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [], errors[:3]
    want = {b.digest: b.size for b in image.blobs()}
    assert all(r == (image.manifest.digest, want) for r in results), results[:2]
    for blob in image.blobs():
        assert up.gets(f"/v2/library/demo/blobs/{blob.digest}") == 1, blob.digest
    assert up.gets("/v2/library/demo/manifests/v1") == 1
