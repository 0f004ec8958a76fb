"""AWS Signature Version 4 checked as S3 checks it, for the test suite's S3 server: s3rver does not
verify signatures (it accepts a wrong secret), so this layer between arca and s3rver does, and a
signing bug in arca fails a scenario as it would fail on AWS.

Written from AWS's published algorithm ("Create a signed AWS API request", and S3's "Signature
Calculations for the Authorization Header"): canonical request, string to sign, signing key
derived from the secret, date, region and service. Checked against botocore's signer in
test_s3_harness.py."""

import datetime
import hashlib
import hmac
import re
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = datetime.timedelta(minutes=15)  # what S3 allows between x-amz-date and now
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        k = _hmac(k, part)
    return k


def _encode(s, safe):
    return urllib.parse.quote(s, safe=safe)


def canonical_uri(path):
    """S3 encodes the path once: each byte outside A-Z a-z 0-9 - _ . ~ and '/' as %XX."""
    return _encode(urllib.parse.unquote(path), "/-_.~")


def canonical_query(query):
    pairs = [(_encode(k, "-_.~"), _encode(v, "-_.~"))
             for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_headers(headers, names):
    lower = {k.lower(): v for k, v in headers.items()}
    return "".join(f"{n}:{' '.join(str(lower.get(n, '')).split())}\n" for n in names)


def check(method, path, query, headers, credentials, now=None):
    """None when the request is signed right with one of `credentials` ({access key: secret}),
    else the S3 error code that AWS would answer with."""
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if auth is None:
        return "AccessDenied"
    m = AUTH_RE.match(auth.strip())
    if not m:
        return "AuthorizationHeaderMalformed"
    access, date, region, service, signed, signature = m.groups()
    if access not in credentials:
        return "InvalidAccessKeyId"
    lower = {k.lower(): v for k, v in headers.items()}
    amz_date = lower.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return "AccessDenied"
    now = now or datetime.datetime.now(datetime.timezone.utc)
    names = signed.split(";")
    if (not amz_date.startswith(date) or abs(now - when) > MAX_SKEW or "host" not in names
            or names != sorted(names)):
        return "RequestTimeTooSkewed" if abs(now - when) > MAX_SKEW else "AccessDenied"
    payload = lower.get("x-amz-content-sha256")
    if payload is None:
        return "AccessDenied"  # S3 requires it with header signing
    request = "\n".join([method, canonical_uri(path), canonical_query(query),
                         canonical_headers(headers, names), signed, payload])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope,
                         hashlib.sha256(request.encode()).hexdigest()])
    key = signing_key(credentials[access], date, region, service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else "SignatureDoesNotMatch"
