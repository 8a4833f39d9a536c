"""The check for a key given twice, made once a batch where it can be: the same refusals as
the exact check of each line alone, however keys are spelled, spaced or repeated."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.catalog import Catalog
from payoff.core.errors import RecordError
from payoff.records import _first_repeated_key, decode_record, plain_lines
from payoff.service.ingest import build_batch

BASE = {
    "id": "e1",
    "time": "2026-11-03T10:00:00Z",
    "customer": "acme",
    "kind": "llm",
    "provider": "openai",
    "model": "gpt-4o",
    "input_tokens": 10,
    "output_tokens": 3,
    "visible": False,
}
# Separators a key may have before its value, and spellings of a key: the plain bytes or an
# escape of its first letter (the same key to a decoder).
SEPARATORS = (":", " :", ": ", "\t:", "\r\n:", "\n:")
_CATALOG = Catalog()


def _spelled(key: str, escaped: bool) -> str:
    return f"\\u{ord(key[0]):04x}{key[1:]}" if escaped and key else key


@st.composite
def keyed_objects(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> str:
    """A JSON object of `pairs` (key, encoded value), some given again, spelled and spaced
    as drawn."""
    given = list(pairs)
    for _ in range(draw(st.integers(0, 2))):
        if given:
            given.insert(draw(st.integers(0, len(given))), draw(st.sampled_from(given)))
    parts = []
    for key, value in given:
        escaped = draw(st.booleans()) and draw(st.booleans())
        separator = draw(st.sampled_from(SEPARATORS)) if draw(st.booleans()) else ":"
        parts.append(f'"{_spelled(key, escaped)}"{separator}{value}')
    return "{" + ",".join(parts) + "}"


@st.composite
def record_lines(draw: st.DrawFn) -> bytes:
    """A usage record line, valid or not, perhaps giving a key twice at the top, in its
    attributes or in a provider's usage object, with string values that look like keys."""
    texts = st.sampled_from(["plan", '":"', ": x", 'a":', "id", '\\"id\\":', " :"])
    attributes = [
        (k, json.dumps(draw(texts)))
        for k in draw(
            st.lists(
                st.sampled_from(["step", "id", "tool", "kind", "st\u00e9p"]),
                max_size=3,
                unique=True,
            )
        )
    ]
    pairs = [(key, json.dumps(value)) for key, value in BASE.items()]
    if attributes:
        pairs.append(("attributes", draw(keyed_objects(attributes))))
    if draw(st.booleans()):
        pairs = [p for p in pairs if p[0] not in ("input_tokens", "output_tokens")]
        details = draw(keyed_objects([("cached_tokens", "1"), ("audio_tokens", "0")]))
        usage = [("prompt_tokens", "5"), ("completion_tokens", "1"),
                 ("prompt_tokens_details", details)]  # fmt: skip
        pairs += [("usage_format", '"openai.chat"'), ("usage", draw(keyed_objects(usage)))]
    return draw(keyed_objects(pairs)).encode() + draw(st.sampled_from([b"", b"\n"]))


def _verdict(line: bytes) -> tuple[str, str | None] | None:
    try:
        decode_record(line)
    except RecordError as exc:
        return exc.reason, exc.field
    return None


@settings(max_examples=400, deadline=None)
@given(st.lists(record_lines(), min_size=1, max_size=6))
def test_a_batch_refuses_exactly_the_lines_the_exact_check_refuses(lines: list[bytes]) -> None:
    built = build_batch(_CATALOG, None, list(enumerate(lines, start=1)))
    refused = {p.line: (p.reason, p.field) for p in built.problems}
    for number, line in enumerate(lines, start=1):
        assert refused.get(number) == _verdict(line), line
        try:
            json.loads(line)
        except ValueError:
            continue
        repeated = _first_repeated_key(line)
        if repeated is not None:  # the exact check, on the line alone
            assert refused[number] == (
                "given twice in one object (which one counts would be a guess)",
                repeated,
            ), line
        elif number in refused:
            assert "given twice" not in refused[number][0], line


def _plain_alone(line: bytes) -> bool:
    """A line is plain, checked on its own."""
    if b"\\" in line or b"\t" in line or b"\r" in line or b" :" in line:
        return False
    return line.find(b"\n", 0, len(line) - 1) < 0


@given(st.lists(st.binary(max_size=8).map(lambda b: b.replace(b"\x00", b" ")), max_size=6))
def test_a_batch_is_plain_only_when_each_of_its_lines_is(lines: list[bytes]) -> None:
    if plain_lines(lines):
        assert all(_plain_alone(line) for line in lines)


def test_a_line_spaced_before_a_colon_is_found_in_a_batch_of_plain_ones() -> None:
    plain = b'{"id":"a","time":"2026-11-03T10:00:00Z","customer":"acme","kind":"tool"}\n'
    spaced = b'{"id" :"b","id":"c","time":"2026-11-03T10:00:00Z","customer":"acme"}\n'
    assert plain_lines([plain, plain])
    assert not plain_lines([plain, spaced, plain])
    built = build_batch(_CATALOG, None, [(1, plain), (2, spaced), (3, plain)])
    assert [(p.line, p.field) for p in built.problems] == [(2, "id")]
