"""Signed webhooks: `payoff-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.

The scheme is the one payment providers use for webhooks. The signed text binds the
timestamp to the exact bytes received, so neither can be changed alone; the timestamp
bounds how long a captured request can be replayed (the receiver also refuses a repeated
record id). Several `v1` values may be sent: a sender rotating its secret signs with the old
and the new one, and the request is good when any of them matches any current secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from payoff.core.errors import SignatureError

SIGNATURE_HEADER = "payoff-signature"
TOLERANCE_S = 300
"""How far the signed timestamp may be from the receiver's clock, either way."""
MAX_SIGNATURES = 8
"""v1 values looked at in one header: enough for any rotation, bounded against abuse."""
SCHEME = "v1"


def sign(secret: str, timestamp_s: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`."""
    message = str(timestamp_s).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp_s: int, body: bytes) -> str:
    """The header value a sender puts on `body`, signed with each of `secrets`."""
    parts = [f"t={timestamp_s}"] + [f"{SCHEME}={sign(s, timestamp_s, body)}" for s in secrets]
    return ",".join(parts)


def parse_header(header: str | None) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header; other schemes are skipped (senders may add some)."""
    if not header:
        raise SignatureError(f"missing `{SIGNATURE_HEADER}` header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            # The item is not echoed: it may be a signature, which never goes into a reply.
            raise SignatureError(f"`{SIGNATURE_HEADER}` header: an item is not name=value")
        if name == "t":
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise SignatureError(f"`{SIGNATURE_HEADER}` header: t must be unix seconds")
            timestamp = int(value)
        elif name == SCHEME and len(signatures) < MAX_SIGNATURES:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError(f"`{SIGNATURE_HEADER}` header has no t= timestamp")
    if not signatures:
        raise SignatureError(f"`{SIGNATURE_HEADER}` header has no {SCHEME}= signature")
    return timestamp, signatures


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    now_s: int,
    tolerance_s: int = TOLERANCE_S,
) -> int:
    """Check a signed body; return its signed timestamp, or raise SignatureError saying why.

    Every signature is compared with every secret in constant time, so how long a check
    takes tells nothing about how close a forged signature came.
    """
    timestamp_s, signatures = parse_header(header)
    if timestamp_s < now_s - tolerance_s:
        raise SignatureError(
            f"signature timestamp is {now_s - timestamp_s} s old; at most {tolerance_s} s allowed"
        )
    if timestamp_s > now_s + tolerance_s:
        raise SignatureError(
            f"signature timestamp is {timestamp_s - now_s} s in the future; "
            f"at most {tolerance_s} s allowed"
        )
    if not secrets:
        raise SignatureError("no webhook secret is set for this customer")
    matched = False
    for secret in secrets:
        expected = sign(secret, timestamp_s, body).encode()
        for candidate in signatures:
            # Bytes, so that a non-ASCII candidate is a mismatch rather than a TypeError.
            matched |= hmac.compare_digest(expected, candidate.lower().encode())
    if not matched:
        raise SignatureError("signature does not match the body under any current secret")
    return timestamp_s
