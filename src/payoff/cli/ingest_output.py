"""What `payoff ingest` tells a person: the first problems, a count of the rest, and a hint
when the input is not JSON Lines at all."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

import msgspec

if TYPE_CHECKING:
    from payoff.problems import Problem

PROBLEMS_SHOWN = 20
"""Rejections and conflicts printed; the rest are counted (and all kept with --rejects)."""
HEAD_BYTES = 4096
"""Bytes of an input read ahead, without consuming them, to recognise its format."""

JSON_LINES = "payoff ingest reads JSON Lines: one JSON object a line"
JSON_ARRAY_HINT = f"{JSON_LINES}; convert with `jq -c '.[]'`"
CSV_HINT = f"{JSON_LINES}, not CSV; write each row as an object (fields in docs/records.md)"


def input_hint(head: bytes) -> str | None:
    """What to do when the start of an input shows it is a JSON array or CSV, else None."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        return JSON_ARRAY_HINT
    first_line = text.split(b"\n", 1)[0]
    if first_line and not first_line.startswith(b"{") and b"," in first_line:
        return CSV_HINT  # a header line with commas
    return None


def peek_head(stream: BinaryIO) -> bytes:
    """The first HEAD_BYTES of a stream, left unread (b"" when the stream cannot tell)."""
    peek = getattr(stream, "peek", None)
    if peek is not None:
        head: bytes = peek(HEAD_BYTES)
        return head[:HEAD_BYTES]
    if not stream.seekable():
        return b""
    position = stream.tell()
    head = stream.read(HEAD_BYTES)
    stream.seek(position)
    return head


def problem_line(problem: Problem) -> str:
    where = f"{problem.source}:{problem.line}"
    field = f" field `{problem.field}`:" if problem.field else ""
    return f"{where} id={problem.id or '?'} {problem.status}:{field} {problem.reason}"


class ProblemLog:
    """Keeps the first PROBLEMS_SHOWN problems to print and counts the others; with a
    rejects file, writes every one there as it comes."""

    def __init__(self, rejects_file: BinaryIO | None) -> None:
        self.rejects_file = rejects_file
        self.shown: list[str] = []
        self.not_shown = 0

    def add(self, problem: Problem) -> None:
        if self.rejects_file is not None:
            self.rejects_file.write(msgspec.json.encode(problem.as_dict()) + b"\n")
        if len(self.shown) < PROBLEMS_SHOWN:
            self.shown.append(problem_line(problem))
        else:
            self.not_shown += 1

    def lines(self, rejects_name: str | None) -> list[str]:
        """The problems to print, and what became of the rest."""
        if not self.not_shown:
            return self.shown
        rest = f"... and {self.not_shown:,} more"
        rest += f" in {rejects_name}" if rejects_name else "; --rejects FILE keeps all"
        return [*self.shown, rest]
