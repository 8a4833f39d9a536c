"""The webhook signature scheme, pure: no clock, no ledger."""

from __future__ import annotations

import pytest

from payoff.core.errors import SignatureError
from payoff.core.signatures import parse_header, sign, signature_header, verify

BODY = b'{"record":"attestation","id":"a1"}'
NOW = 1_800_000_000


def test_a_good_signature_returns_its_timestamp() -> None:
    assert verify(signature_header(["s1"], NOW, BODY), BODY, ["s1"], NOW) == NOW


def test_the_signature_covers_timestamp_and_body() -> None:
    header = signature_header(["s1"], NOW, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, BODY + b" ", ["s1"], NOW)
    forged = header.replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(forged, BODY, ["s1"], NOW)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-300, True), (-301, False), (300, True), (301, False)]
)
def test_timestamps_within_300_seconds_either_way(offset: int, accepted: bool) -> None:
    header = signature_header(["s1"], NOW + offset, BODY)
    if accepted:
        verify(header, BODY, ["s1"], NOW)
    else:
        with pytest.raises(SignatureError, match=r"old|future"):
            verify(header, BODY, ["s1"], NOW)


def test_rotation_any_signature_under_any_current_secret() -> None:
    both = signature_header(["old", "new"], NOW, BODY)
    assert verify(both, BODY, ["new"], NOW) == NOW
    assert verify(both, BODY, ["old"], NOW) == NOW
    with pytest.raises(SignatureError):
        verify(signature_header(["old"], NOW, BODY), BODY, ["new"], NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=abc", "no t="),
        (f"t={NOW}", "no v1="),
        ("t=soon,v1=ab", "unix seconds"),
        ("t=-5,v1=ab", "unix seconds"),
        ("garbage", "name=value"),
        (f"t={NOW},v1=é", "does not match"),
    ],
)
def test_malformed_headers_say_what_is_wrong(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(header, BODY, ["s1"], NOW)


def test_unknown_schemes_are_skipped_and_signatures_are_bounded() -> None:
    good = sign("s1", NOW, BODY)
    assert parse_header(f"t={NOW},v0=zz,v1={good}") == (NOW, [good])
    many = ",".join(["v1=00"] * 20)
    assert len(parse_header(f"t={NOW},{many}")[1]) == 8


def test_no_secret_no_trust() -> None:
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify(signature_header(["s1"], NOW, BODY), BODY, [], NOW)
