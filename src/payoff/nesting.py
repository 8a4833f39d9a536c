"""One nesting bound for every JSON input: records (files, HTTP bodies, attestations, the SDK),
request bodies, OTLP JSON exports and plan files.

Decoders recurse once per level of arrays and objects: a few kilobytes nested thousands deep
exhaust the interpreter's stack, and end as a 500 or as a message about recursion. So every
input is measured first, without recursion, and refused past MAX_DEPTH levels with a
sentence that says so (and, for a record, the field at fault). Real inputs nest far less: a
record 4 levels, a plan 5, an OTLP export about 12.

The measure reads the brackets outside strings. Escaped backslashes and quotes are dropped
first, so that every quote left opens or closes a string; then only quotes and brackets are
kept, empty strings dropped, strings holding brackets dropped, and the running depth of what
is left is its nesting. Every step is a C loop (bytes.replace, translate, one regex over the
few strings that hold brackets, accumulate): a 32 MiB export is measured in a fraction of
the time it takes to decode.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

MAX_DEPTH = 64
"""Levels of nested arrays and objects a JSON input may have (the outermost counts 1)."""

_QUOTES_AND_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING_OF_BRACKETS = re.compile(rb'"[^"]*"')
_STEP = [0] * 256
for _opener in b"[{":
    _STEP[_opener] = 1
for _closer in b"]}":
    _STEP[_closer] = -1
_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*(:)?|[\[\]{}]')


def too_deep(data: bytes | str) -> bool:
    """Whether a JSON text nests deeper than MAX_DEPTH (read as JSON reads it, whether valid
    or not: up to its first fault, the measure is the decoder's)."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False  # it cannot nest deeper than it has openers: the common case, quickly
    plain = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = plain.translate(None, _QUOTES_AND_BRACKETS).replace(b'""', b"")
    brackets = _STRING_OF_BRACKETS.sub(b"", marks)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH


def deep_field(data: bytes | str) -> str | None:
    """The top-level key whose value nests past MAX_DEPTH (None when the text is no object or
    none does). Reads token by token: for inputs of a record's size, once found too deep."""
    raw = data.encode() if isinstance(data, str) else data
    depth, key = 0, None
    for token in _TOKEN.finditer(raw):
        if token.group(2) is not None and depth == 1:
            key = _key_text(token.group(1))
        elif token.group(0) in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return key
        elif token.group(0) in (b"]", b"}"):
            depth -= 1
    return None


def _key_text(escaped: bytes) -> str:
    try:
        text = json.loads(b'"' + escaped + b'"')
    except ValueError:
        return escaped.decode("utf-8", "replace")
    return text if isinstance(text, str) else str(text)


def too_deep_reason() -> str:
    """The refusal's words, the same for every input."""
    return f"nests deeper than {MAX_DEPTH} levels of arrays and objects"
