"""Attack (issue 67): a kept 404 is documented as a cached answer under the request's terms
(CACHING.md "Negative answers": Cache-Control no-cache / max-age=0 / no-store and Pragma: no-cache
ask upstream again). Clients using arca as http_proxy (apt, pip) send exactly those headers."""

from test_negative_ttl import negative
from test_rules import proxied


def test_a_proxied_requests_cache_control_asks_upstream_again(origin, start_arca):
    arca = start_arca("--upstream-allow", "127.0.0.0/8", "--negative-ttl", "1h")
    url = origin.url("/dists/InRelease")
    assert proxied(arca, url)[0] == 404
    status, headers, _ = proxied(arca, url)
    assert status == 404 and negative(headers), headers
    kept = []
    for header in ({"Cache-Control": "no-cache"}, {"Cache-Control": "max-age=0"},
                   {"Cache-Control": "no-store"}, {"Pragma": "no-cache"}):
        status, headers, _ = proxied(arca, url, headers=header)
        if negative(headers):
            kept.append(header)
    assert kept == [], f"answered from the kept 404 though the request said {kept}"
